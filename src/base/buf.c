#include "buf.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void buf_init(struct buf *b)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void buf_finish(struct buf *b)
{
    free(b->data);
    buf_init(b);
}

/* Makes room for `extra` more bytes and the NUL: exactly that much when `exact`, else by
 * doubling, so that appending byte by byte stays linear. */
static int reserve(struct buf *b, size_t extra, int exact)
{
    if (extra > SIZE_MAX / 2 - b->len - 1)
        return -ENOMEM;
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return 0;
    size_t cap = need;
    if (!exact) {
        cap = b->cap ? b->cap : 64;
        while (cap < need)
            cap *= 2;
    }
    char *data = realloc(b->data, cap);
    if (data == NULL)
        return -ENOMEM;
    data[b->len] = '\0'; /* fresh memory must be a C string too */
    b->data = data;
    b->cap = cap;
    return 0;
}

int buf_reserve(struct buf *b, size_t extra)
{
    return reserve(b, extra, 0);
}

int buf_reserve_exact(struct buf *b, size_t extra)
{
    return reserve(b, extra, 1);
}

int buf_append(struct buf *b, const void *data, size_t len)
{
    int rc = buf_reserve(b, len);
    if (rc != 0)
        return rc;
    if (len > 0)
        memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
    return 0;
}

int buf_append_str(struct buf *b, const char *s)
{
    return buf_append(b, s, strlen(s));
}

int buf_putc(struct buf *b, char c)
{
    return buf_append(b, &c, 1);
}

void buf_clear(struct buf *b)
{
    b->len = 0;
    if (b->data != NULL)
        b->data[0] = '\0';
}

void buf_truncate(struct buf *b, size_t len)
{
    if (len >= b->len)
        return;
    b->len = len;
    b->data[len] = '\0';
}

void buf_zero_slack(struct buf *b)
{
    if (b->data != NULL)
        memset(b->data + b->len, 0, b->cap - b->len);
}

void buf_consume(struct buf *b, size_t n)
{
    if (n >= b->len) {
        buf_clear(b);
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
    b->data[b->len] = '\0';
}

char *buf_detach(struct buf *b)
{
    char *data = b->data;
    buf_init(b);
    return data;
}
