/* savepath.h: where --save puts the body of a URL, as a path relative to the save directory.
 * Pure: it computes names and touches no file system (save.h does that).
 *
 * The layout is wget -x's, so that a saved site is browsable: HOST[:PORT]/PATH, with
 * index.html for a path ending in '/', the query kept in the last name after a '?', the
 * fragment dropped. With SAVEPATH_FLAT, only the last name, directly in the save directory.
 *
 * Every name is percent-decoded, so that a file is found where a browser looks for it, and
 * then made safe: whatever the URL holds, the result is a relative path whose names are
 * joined by '/' and each of which
 *   - is not empty, not "." and not "..",
 *   - holds no '/', no '\\', no NUL and no other control character (each written as %XX),
 *   - is valid UTF-8 (a byte that is not part of a character is written as %XX, so that
 *     the name is text, which --manifest's JSON can hold),
 *   - is at most SAVEPATH_NAME_MAX bytes (a longer one keeps its head and ends in '~' and
 *     16 hex digits of the SHA-256 of the whole name, so that two long names stay apart).
 * So "/a/%2e%2e/b" is a/%2E%2E/b, "/a%2Fb" is the one name a%2Fb, and "/a//b" is a/b.
 *
 * Ownership: the result is appended to a caller-owned struct buf. */
#ifndef AREQ_SAVEPATH_H
#define AREQ_SAVEPATH_H

#include <stddef.h>

#include "buf.h"

/* NAME_MAX of Linux file systems (ext4, xfs, btrfs, tmpfs): bytes in one name. */
enum { SAVEPATH_NAME_MAX = 255 };

enum savepath_flags {
    SAVEPATH_FLAT = 1u << 0, /* the last name only (--flat) */
};

/* Appends the relative path for `url` (an absolute http(s) URL, as areq normalises them)
 * to `out`. 0, -EINVAL for a URL that is not http(s) or has no host, or -ENOMEM; on error
 * `out` keeps its old length. */
int savepath_map(const char *url, size_t len, unsigned flags, struct buf *out);

/* Whether the last name savepath_map() gives `url` is the index.html it supplies for a path
 * that is empty or ends in '/' (1), rather than a name the URL spells (0: so also for
 * http://h/d/index.html, and for anything that is not an http(s) URL). save.c ranks the
 * bodies that collide at one name by this (save.h). */
int savepath_supplies_index(const char *url, size_t len);

#endif
