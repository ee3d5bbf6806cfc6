/* buf.h: a growable byte buffer.
 *
 * Ownership: the caller owns the struct (buf_init/buf_finish); the buffer owns `data`,
 * which buf_detach() hands over to the caller (free() it). `data` is always NUL-terminated
 * when non-NULL, so a buffer holding text can be passed to functions wanting a C string. */
#ifndef AREQ_BUF_H
#define AREQ_BUF_H

#include <stddef.h>

struct buf {
    char *data;
    size_t len;
    size_t cap;
};

void buf_init(struct buf *b);
void buf_finish(struct buf *b);

/* Makes room for `extra` more bytes (plus the terminating NUL). 0 or -ENOMEM. */
int buf_reserve(struct buf *b, size_t extra);

/* As buf_reserve(), but when it must grow it takes exactly what is asked instead of
 * doubling: for a size known in advance, such as a declared Content-Length. Doubling would
 * leave up to half the block as slack that buf_zero_slack() then has to write. */
int buf_reserve_exact(struct buf *b, size_t extra);
int buf_append(struct buf *b, const void *data, size_t len);
int buf_append_str(struct buf *b, const char *s);
int buf_putc(struct buf *b, char c);

/* Forgets the contents but keeps the memory for reuse. */
void buf_clear(struct buf *b);

/* Cuts the contents back to `len` bytes (no more than it holds). */
void buf_truncate(struct buf *b, size_t len);

/* Zeroes the allocated bytes past the contents. Scanners that load whole aligned words
 * (pcre2's JIT does) may look at them; zeroed, they are defined for valgrind. */
void buf_zero_slack(struct buf *b);

/* Drops the first `n` bytes, moving the rest to the front. */
void buf_consume(struct buf *b, size_t n);

/* Hands the data to the caller (NULL if nothing was ever stored) and leaves the buffer
 * empty. */
char *buf_detach(struct buf *b);

#endif
