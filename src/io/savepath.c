/* URL -> relative path under the save directory (see savepath.h for the rules). */
#include "savepath.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "digest.h"

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Whether a byte may stand in a name as itself: '/' would split it, '\\' is a separator
 * to other systems (and to a Samba share of the tree), NUL ends it, and control bytes are
 * no one's idea of a file name. */
static int plain_byte(unsigned char c)
{
    return c != '/' && c != '\\' && c >= 0x20 && c != 0x7f;
}

static int put_byte(struct buf *name, unsigned char c)
{
    if (plain_byte(c))
        return buf_putc(name, (char)c);
    char esc[4];
    snprintf(esc, sizeof esc, "%%%02X", c);
    return buf_append(name, esc, 3);
}

/* Appends `len` bytes of a URL part to `name`, percent-decoded when `decode` is set, each
 * byte that may not stand as itself escaped. */
static int put_part(struct buf *name, const char *s, size_t len, int decode)
{
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (decode && c == '%' && i + 2 < len && hex_value(s[i + 1]) >= 0 &&
            hex_value(s[i + 2]) >= 0) {
            c = (unsigned char)(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2]));
            i += 2;
        }
        rc = put_byte(name, c);
    }
    return rc;
}

/* The length of the UTF-8 sequence at s[0..n), or 0 when it is not a valid one (an
 * overlong form, a surrogate, beyond U+10FFFF, cut short, a stray continuation byte). */
static size_t utf8_sequence(const unsigned char *s, size_t n)
{
    if (s[0] < 0x80)
        return 1;
    size_t len = s[0] >= 0xC2 && s[0] <= 0xDF   ? 2
                 : s[0] >= 0xE0 && s[0] <= 0xEF ? 3
                 : s[0] >= 0xF0 && s[0] <= 0xF4 ? 4
                                                : 0;
    if (len == 0 || len > n)
        return 0;
    for (size_t i = 1; i < len; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    if ((s[0] == 0xE0 && s[1] < 0xA0) || (s[0] == 0xED && s[1] > 0x9F) ||
        (s[0] == 0xF0 && s[1] < 0x90) || (s[0] == 0xF4 && s[1] > 0x8F))
        return 0;
    return len;
}

/* Writes each byte of the name that starts at `start` that is not part of valid UTF-8 as
 * %XX: a name is text (a browser shows it, --manifest writes it as a JSON string, which
 * can only hold Unicode), and "%FF" in a URL is no character. */
static int escape_bad_utf8(struct buf *name, size_t start)
{
    const unsigned char *s = (const unsigned char *)name->data + start;
    size_t n = name->len - start, i = 0;
    while (i < n) {
        size_t len = utf8_sequence(s + i, n - i);
        if (len == 0)
            break;
        i += len;
    }
    if (i == n)
        return 0;
    struct buf fixed;
    buf_init(&fixed);
    int rc = 0;
    for (i = 0; rc == 0 && i < n;) {
        size_t len = utf8_sequence(s + i, n - i);
        if (len > 0) {
            rc = buf_append(&fixed, (const char *)s + i, len);
            i += len;
        } else {
            char esc[4];
            snprintf(esc, sizeof esc, "%%%02X", s[i]);
            rc = buf_append(&fixed, esc, 3);
            i++;
        }
    }
    if (rc == 0) {
        buf_truncate(name, start);
        rc = buf_append(name, fixed.data, fixed.len);
    }
    buf_finish(&fixed);
    return rc;
}

/* "." and ".." would name this directory or its parent: their dots are written as %2E. */
static int neutralise_dots(struct buf *name, size_t start)
{
    size_t n = name->len - start;
    const char *s = name->data + start;
    if (!((n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.')))
        return 0;
    buf_truncate(name, start);
    return buf_append(name, n == 1 ? "%2E" : "%2E%2E", 3 * n);
}

/* Bytes of a shortened name before its "~" and hash. */
enum { HASH_HEX = 16, SHORT_HEAD = SAVEPATH_NAME_MAX - 1 - HASH_HEX };

/* Cuts the name that starts at `start` to SAVEPATH_NAME_MAX bytes when it is longer: its
 * head, cut where no UTF-8 sequence is split, "~", and the start of its SHA-256. */
static int fit_name(struct buf *out, size_t start)
{
    size_t n = out->len - start;
    if (n <= SAVEPATH_NAME_MAX)
        return 0;
    unsigned char sum[DIGEST_SIZE];
    char hex[DIGEST_HEX_SIZE];
    int rc = digest_sha256(out->data + start, n, sum);
    if (rc != 0)
        return rc;
    digest_hex(sum, hex);
    size_t head = SHORT_HEAD;
    while (head > 0 && ((unsigned char)out->data[start + head] & 0xC0) == 0x80)
        head--;
    buf_truncate(out, start + head);
    rc = buf_putc(out, '~');
    return rc != 0 ? rc : buf_append(out, hex, HASH_HEX);
}

/* Appends one name (a '/' first unless it is the first), made from a URL part. */
static int add_name(struct buf *out, const char *s, size_t len, int decode)
{
    if (out->len > 0 && buf_putc(out, '/') != 0)
        return -ENOMEM;
    size_t start = out->len;
    int rc = put_part(out, s, len, decode);
    if (rc == 0)
        rc = escape_bad_utf8(out, start);
    if (rc == 0)
        rc = neutralise_dots(out, start);
    if (rc == 0)
        rc = fit_name(out, start);
    return rc;
}

/* The last name: the last segment decoded (index.html when there is none), then '?' and
 * the query as it was sent, with only what may not stand in a name escaped. */
static int add_last(struct buf *out, const char *seg, size_t seg_len, const char *query,
                    size_t query_len, int has_query)
{
    if (out->len > 0 && buf_putc(out, '/') != 0)
        return -ENOMEM;
    size_t start = out->len;
    int rc = 0;
    if (seg_len == 0) {
        rc = buf_append_str(out, "index.html");
    } else {
        rc = put_part(out, seg, seg_len, 1);
        if (rc == 0)
            rc = neutralise_dots(out, start);
    }
    if (rc == 0 && has_query && query_len > 0) {
        rc = buf_putc(out, '?');
        if (rc == 0)
            rc = put_part(out, query, query_len, 0);
    }
    if (rc == 0)
        rc = escape_bad_utf8(out, start);
    return rc != 0 ? rc : fit_name(out, start);
}

/* The length of url's "http://" or "https://", or 0 for any other scheme. */
static size_t scheme_length(const char *url, size_t len)
{
    if (len >= 7 && strncasecmp(url, "http://", 7) == 0)
        return 7;
    if (len >= 8 && strncasecmp(url, "https://", 8) == 0)
        return 8;
    return 0;
}

static int map(const char *url, size_t len, unsigned flags, struct buf *out)
{
    size_t skip = scheme_length(url, len);
    if (skip == 0)
        return -EINVAL;
    const char *end = url + len;
    const char *auth = url + skip;
    const char *p = auth;
    while (p < end && *p != '/' && *p != '?' && *p != '#')
        p++;
    /* No user name or password in a directory name. */
    const char *host = auth;
    for (const char *q = auth; q < p; q++)
        if (*q == '@')
            host = q + 1;
    if (host == p)
        return -EINVAL;
    const char *path = p;
    const char *path_end = path;
    while (path_end < end && *path_end != '?' && *path_end != '#')
        path_end++;
    const char *query = path_end, *query_end = path_end;
    int has_query = path_end < end && *path_end == '?';
    if (has_query) {
        query = path_end + 1;
        query_end = query;
        while (query_end < end && *query_end != '#')
            query_end++;
    }

    /* The last segment: after the last '/' of the path (all of it when it has none). */
    const char *last = path_end;
    while (last > path && last[-1] != '/')
        last--;
    int rc = 0;
    if (!(flags & SAVEPATH_FLAT)) {
        rc = add_name(out, host, (size_t)(p - host), 0);
        const char *seg = path;
        while (rc == 0 && seg < last) {
            const char *slash = memchr(seg, '/', (size_t)(last - seg));
            size_t n = (size_t)(slash - seg);
            if (n > 0) /* "a//b" is a/b: an empty name cannot be made */
                rc = add_name(out, seg, n, 1);
            seg = slash + 1;
        }
    }
    if (rc == 0)
        rc = add_last(out, last, (size_t)(path_end - last), query, (size_t)(query_end - query),
                      has_query);
    return rc;
}

int savepath_map(const char *url, size_t len, unsigned flags, struct buf *out)
{
    size_t mark = out->len;
    /* A relative path of its own: the names are joined to whatever `out` holds only
     * through this sub-buffer's length, so build from an empty state. */
    struct buf path;
    buf_init(&path);
    int rc = map(url, len, flags, &path);
    if (rc == 0)
        rc = buf_append(out, path.data, path.len);
    buf_finish(&path);
    if (rc != 0)
        buf_truncate(out, mark);
    return rc;
}

int savepath_supplies_index(const char *url, size_t len)
{
    size_t skip = scheme_length(url, len);
    if (skip == 0)
        return 0;
    /* As map() reads it: the path runs from the first '/' after the authority to the
     * query or fragment, and its last segment is what follows its last '/'. */
    size_t path = skip;
    while (path < len && url[path] != '/' && url[path] != '?' && url[path] != '#')
        path++;
    size_t end = path;
    while (end < len && url[end] != '?' && url[end] != '#')
        end++;
    return end == path || url[end - 1] == '/';
}
