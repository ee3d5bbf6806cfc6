/* filter.h: the user's --include/--exclude patterns, tested against normalised URLs.
 *
 * Ownership: a filter is created and destroyed by its caller. A filter may be used from many
 * threads at once: one call at a time borrows match data kept in the filter (no allocation),
 * and a call that finds it borrowed allocates its own for that call. */
#ifndef AREQ_FILTER_H
#define AREQ_FILTER_H

#include <stddef.h>

typedef struct filter filter;

/* Compiles a user's pcre2 pattern in byte mode: "(*UTF)" is refused and URLs need not be
 * valid UTF-8; "(?i)" and the other inline options work as in pcre2. Returns 0, -ENOMEM, or
 * -EINVAL with pcre2's message and the offset in err (for example "missing closing
 * parenthesis at offset 4"; the caller names the option). */
int filter_create(const char *pattern, filter **out, char *err, size_t errlen);

/* Returns 1 when the pattern matches somewhere in [s, s+len) (unanchored, like grep), 0 when
 * not, or a negative error: -ERANGE when the URL makes the pattern exceed pcre2's limits,
 * -ENOMEM, -EINVAL for bad arguments. s need not be NUL-terminated. */
int filter_match(const filter *f, const char *s, size_t len);

void filter_destroy(filter *f); /* accepts NULL */

#endif
