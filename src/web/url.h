/* url.h: parsing, resolution and normalisation of the URLs areq reads and writes.
 *
 * Every URL areq prints goes through here, so every printed URL is normalised the same way:
 * scheme and host in lower case, default port dropped, dot segments removed, an empty path
 * written as "/", percent escapes in upper-case hex, characters that must be escaped (space,
 * '"', '<', '>', '`', '{', '}', control characters, bytes >= 0x80) percent-encoded, and the
 * fragment removed unless URL_KEEP_FRAGMENT. No normalised URL holds a tab, CR, LF or NUL.
 *
 * Ownership: a url_base is created and destroyed by its caller and keeps its own copy of
 * what it was made from. Results are appended to a caller-owned struct buf; nothing is
 * returned that the caller must free besides what url_base_create hands out. */
#ifndef AREQ_URL_H
#define AREQ_URL_H

#include <stddef.h>

#include "buf.h"

enum url_flags {
    URL_KEEP_FRAGMENT = 1 << 0, /* keep "#..." and fragment-only links */
    URL_ALL_SCHEMES = 1 << 1,   /* keep targets of schemes other than http(s), as written */
};

/* Results of url_resolve(). Errors are negative. */
enum url_result {
    URL_OK = 0,
    URL_FILTERED = 1, /* well-formed but not wanted: another scheme, or fragment-only */
};

/* Normalises an absolute http or https URL read from an input line (already trimmed).
 * Appends it to `out` and returns 0; or returns a negative error (out untouched beyond its
 * old length) and points *why at a static, human-readable reason such as
 * "not an absolute http or https URL". */
int url_normalize_input(const char *text, size_t len, struct buf *out, const char **why);

typedef struct url_base url_base;

/* Parses the absolute URL a document came from. 0, -EINVAL or -ENOMEM. */
int url_base_create(const char *url, size_t len, url_base **out);
void url_base_destroy(url_base *b); /* accepts NULL */

/* Makes `href` (resolved against the current base) the new base, as <base href> does.
 * 0, or a negative error with the base unchanged. */
int url_base_rebase(url_base *b, const char *href, size_t len);

/* Resolves the raw attribute value `href` (character references already decoded; may hold
 * surrounding white space, tabs and newlines, which are dropped as the WHATWG URL parser
 * drops them) against `b`, normalises it and appends it to `out`.
 * Returns URL_OK, URL_FILTERED (nothing appended), or a negative error (-EINVAL for a value
 * that cannot be parsed, -ENOMEM); on error `out` keeps its old length. */
int url_resolve(const url_base *b, const char *href, size_t len, unsigned flags, struct buf *out);

#endif
