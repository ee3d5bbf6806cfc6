/* robots.h: the rules of a robots.txt file (RFC 9309) for one crawler, and the answer to
 * "may this path be fetched".
 *
 * Parsing keeps only what applies to the given product token: the rules of every group
 * whose user-agent line names the token (case-insensitively), or failing that of every "*"
 * group, or none at all (everything allowed). Patterns are stored once, normalised, in one
 * buffer; nothing points into the caller's body after robots_parse returns.
 *
 * Ownership: robots_parse, robots_allow_all and robots_disallow_all hand out a robots that
 * the caller frees with robots_destroy. A robots is read-only once made, so any number of
 * threads may query it at once. */
#ifndef AREQ_ROBOTS_H
#define AREQ_ROBOTS_H

#include <stddef.h>

typedef struct robots robots;

/* Bytes of a body that are parsed; RFC 9309 section 2.5 asks for at least 500 KiB. A line
 * cut by the limit is dropped whole, so a truncated rule is never applied. */
#define ROBOTS_MAX_BYTES (500 * 1024)

/* Crawl-delay values above this many seconds are lowered to it. */
#define ROBOTS_MAX_CRAWL_DELAY 60.0

/* Parses `len` bytes of a robots.txt body (not NUL-terminated; NUL bytes, invalid UTF-8
 * and any line endings are tolerated) for `product`, a product token of letters, '_' and
 * '-' such as "areq". A user-agent line names the token when its value starts with the
 * token followed by anything but a letter, '_' or '-' ("areq", "AREQ", "areq/1.0"; not
 * "areqbot"). 0, -EINVAL (bad token, or body NULL with len > 0) or -ENOMEM. */
int robots_parse(const char *body, size_t len, const char *product, robots **out);

/* What a caller uses when there are no rules to read: allow-all for a robots.txt that is
 * "unavailable" (HTTP 4xx), disallow-all for one that is "unreachable" (5xx, network
 * errors); RFC 9309 section 2.3.1. 0 or -ENOMEM. */
int robots_allow_all(robots **out);
int robots_disallow_all(robots **out);

void robots_destroy(robots *r); /* accepts NULL */

/* Whether `path` (`len` bytes: the path and query of a normalised URL, starting with '/',
 * without fragment) may be fetched: 1 allowed, 0 disallowed, -EINVAL for a NULL robots or
 * a path not starting with '/', -ENOMEM (only paths of more than 256 bytes allocate).
 * The longest matching pattern decides, allow winning a tie; "/robots.txt" is always
 * allowed, even by robots_disallow_all. */
int robots_allowed(const robots *r, const char *path, size_t len);

/* robots_allowed, also telling in *tried how many rules the path was compared with: an
 * index keeps that to the few rules that share a piece with the path, however many rules
 * there are. */
int robots_allowed_counted(const robots *r, const char *path, size_t len, size_t *tried);

/* Seconds from the first valid Crawl-delay line of the applicable groups (a decimal number
 * such as "2" or "0.5", at most ROBOTS_MAX_CRAWL_DELAY), or -1 when there is none. */
double robots_crawl_delay(const robots *r);

/* Number of allow and disallow rules kept (0 for allow-all and disallow-all). */
size_t robots_rule_count(const robots *r);

#endif
