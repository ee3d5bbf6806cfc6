/* save.h: writing fetched bodies under the --save directory, safely.
 *
 * A saver holds the directory open; every name below it is reached from that descriptor
 * one component at a time, each opened with O_NOFOLLOW (and made with mkdirat when
 * missing), so that no symbolic link planted in the tree is ever followed and nothing is
 * written outside it. The names come from savepath.h, which never yields "..", "." or an
 * empty name, so a walk of single names cannot climb out (openat2's RESOLVE_BENEATH would
 * add nothing to that).
 *
 * A body goes to a temporary file in its target directory, and is put in place by
 * save_commit() only when the caller knows it is complete: a failed, truncated, cancelled or
 * too-big transfer is save_abort()ed, which drops the temporary file and leaves a good
 * earlier copy as it was. Where the file system allows (O_TMPFILE: ext4, xfs, btrfs, tmpfs)
 * the temporary file has no name until it is linked into place, so even SIGKILL leaves
 * nothing behind; a replacement is linked under a temporary name and renamed over the old
 * copy (a window of microseconds). Elsewhere it is a named ".areq-*.part" file, renamed into
 * place. rename is atomic, so two runs saving into one directory at once never leave a torn
 * file (the later rename wins). Named temporary files that a killed run left are removed
 * by a later run the first time it saves into their directory, and only those: see
 * stale_temp() in save.c for why a live run's are never taken.
 *
 * Collisions, resolved so that the tree does not depend on the order of the fetches:
 *   - a file `a` where a directory `a` is needed (http://h/a, then http://h/a/b) is moved to
 *     `a/index.html`, and a body for `a` when the directory exists goes to `a/index.html`;
 *   - so several URLs of a run can be bound for one path: http://h/a (moved there),
 *     http://h/a/ (index.html supplied for a '/') and http://h/a/index.html (the name
 *     spelled out), or two URLs whose names decode alike (http and https, %2F and %252F).
 *     One body ends there whatever the order they come in: the one whose URL spells the
 *     name, else the one given index.html for its '/', else the one moved there; between
 *     two of one kind, the URL that sorts first (strcmp). The saver remembers, for each
 *     path it put a body at in this run, whose body it is and of which kind; a body that
 *     loses is not put in place (save_commit() says SAVE_YIELDED), one that wins replaces
 *     the loser's. A file from an earlier run is replaced by any body of this run, so a
 *     later run with the same URLs ends with the same tree. Only bodies given a URL
 *     (save_begin) take part;
 *   - with SAVE_FLAT, a name already taken in this run by another URL gets a counter before
 *     its extension (x.png, x.1.png, x.2.png ...): no URL's body overwrites another's. The
 *     same URL saved again takes its own name back.
 *
 * Every call blocks (page.c says where they run, and why). save_begin() and save_commit() may
 * be called from several threads at once, each with its own save_file; saver_record() and
 * saver_destroy() from one.
 *
 * Ownership: the caller owns the saver (saver_open/saver_destroy) and each save_file from
 * save_begin() until save_commit() or save_abort(), which free it. A save_file must end
 * before its saver is destroyed. */
#ifndef AREQ_SAVE_H
#define AREQ_SAVE_H

#include <stddef.h>

#include "buf.h"

enum save_flags {
    SAVE_FLAT = 1u << 0, /* every file directly in the directory (paths from SAVEPATH_FLAT) */
    SAVE_NAMED_TEMP = 1u << 1, /* named temporary files even where O_TMPFILE works (tests) */
    SAVE_LINK_BY_PROC = 1u << 2, /* link nameless ones through /proc/self/fd only (tests) */
};

typedef struct saver saver;
typedef struct save_file save_file;

/* Opens `dir`, making it (and its parents) when missing, and checks that a file can be
 * made in it. 0, or a negative errno (the directory cannot be made, opened or written). */
int saver_open(const char *dir, unsigned flags, saver **out);
/* Accepts NULL. */
void saver_destroy(saver *s);

/* --manifest: opens (replacing) `path`, to which saver_record() appends. 0 or a negative
 * errno. */
int saver_open_manifest(saver *s, const char *path);
/* Appends a line to the manifest, if there is one, with write(2), whole. 0 or a negative
 * errno. */
int saver_record(saver *s, const char *line, size_t len);

/* Whether a body of `content_type` (as sent, parameters and all; NULL when none, which
 * counts as application/octet-stream) is to be saved under `types`: a comma-separated list
 * of media types, where a star subtype matches any ("image/" and a star: every image
 * type) and a star for both matches every type; NULL means every type.
 * Letter case and spaces around items do not matter. */
int save_type_wanted(const char *types, const char *content_type);
/* Checks such a list: 0, or -EINVAL with the first bad item copied to `bad`. */
int save_types_check(const char *types, char *bad, size_t cap);

/* Makes the directories of `rel` (a savepath_map() path) and opens a temporary file in the
 * last. `url` (or NULL) names the body for the collision rules. 0, or a negative errno: -ELOOP
 * when a symbolic link (or anything but a directory or a regular file) is in the way. */
int save_begin(saver *s, const char *rel, const char *url, save_file **out);

/* Appends to the temporary file; small pieces are gathered into larger writes, so a
 * failure to write them may come from a later call or from save_commit(). 0 or a negative
 * errno (the file is then still open: the caller aborts it). */
int save_write(save_file *f, const void *data, size_t len);

/* Bytes written so far. */
unsigned long long save_bytes(const save_file *f);

/* save_commit(): the body was complete, but another URL's body holds its path by the rule
 * above (save.h, collisions), so it was not put in place. Not a failure. */
enum { SAVE_YIELDED = 1 };

/* Renames the temporary file into place, and appends the path it took, relative to the
 * directory, to `final_rel` (NULL: not wanted). Frees `f` whatever happens. 0,
 * SAVE_YIELDED, or a negative errno; after either of the last two the temporary file is
 * gone, any earlier copy untouched and `final_rel` as it was. */
int save_commit(save_file *f, struct buf *final_rel);

/* Removes the temporary file and frees `f`. Accepts NULL. */
void save_abort(save_file *f);

/* Whether the body of `rel` (a savepath_map() path) is saved: 1 when a regular file is at
 * its place (or at its index.html, where the name is a directory), else 0. Only complete
 * bodies are ever renamed into place, so 1 means a whole body, from this run or an earlier
 * one. Follows no link, makes nothing.
 *
 * The hook for --state (issue 14's store): a resumed run should send a URL's stored
 * validators only when this is 1, so that a 304 (which leaves the file as it is) means the
 * saved copy is current, and a file that is missing is fetched whole again. */
int save_exists(saver *s, const char *rel);

/* Whether an error of this module means no body can be saved any more (a full disk, a
 * directory that became read-only), rather than that one body cannot be (its name, a
 * symbolic link in its way). */
int save_error_is_fatal(int err);

/* The same for an error of save_begin() or save_commit() on `s`: a permission error
 * (EACCES, EPERM) there is fatal only when the directory itself cannot take a new file any
 * more; one directory below it that is not writable is that body's failure. Blocks (it may
 * make and remove a file in the directory). */
int save_failure_is_fatal(saver *s, int err);

#endif
