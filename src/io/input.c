#include "input.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* Lines are split in input_lines_next(), but input_lines_feed() is what keeps memory
 * bounded: it never lets the unterminated line at the end of `pending` grow past
 * max_line + 2 bytes. That many bytes without an LF prove the line is over-long even if its
 * last kept byte is the CR of a CRLF, so the splitter can still report it, and everything
 * after them up to the next LF is dropped on arrival. */

static const unsigned char bom[3] = {0xEF, 0xBB, 0xBF};

/* Keeps max_line + 2 from overflowing whatever the caller asks for. */
#define LIMIT_CAP (SIZE_MAX / 4)

void input_lines_init(input_lines *il, size_t max_line)
{
    if (max_line == 0)
        max_line = INPUT_MAX_LINE;
    if (max_line > LIMIT_CAP)
        max_line = LIMIT_CAP;
    buf_init(&il->pending);
    il->start = 0;
    il->scanned = 0;
    il->tail = 0;
    il->max_line = max_line;
    il->lineno = 0;
    il->discarding = 0;
    il->at_start = 1;
    /* Whole KiB read better in a message a person will see; the default is 64 KiB. */
    if (max_line % 1024 == 0)
        snprintf(il->too_long, sizeof il->too_long, "line longer than %zu KiB",
                 max_line / 1024);
    else
        snprintf(il->too_long, sizeof il->too_long, "line longer than %zu bytes", max_line);
}

void input_lines_finish(input_lines *il)
{
    buf_finish(&il->pending);
}

/* Drops the bytes already split off, but only once they are at least as many as the bytes
 * that must move: each byte is then moved at most once on average, never O(n^2). */
static void compact(input_lines *il)
{
    size_t n = il->start;
    if (n == 0 || n < il->pending.len - n)
        return;
    buf_consume(&il->pending, n);
    il->start = 0;
    il->scanned = il->scanned > n ? il->scanned - n : 0;
    il->tail = il->tail > n ? il->tail - n : 0;
}

/* Strips a BOM that may arrive split over several calls. Returns how many bytes of `data`
 * it took; sets *held when every byte so far may still be part of a BOM (they wait in
 * `pending`, which then holds at most two bytes). */
static int take_bom(input_lines *il, const char *data, size_t len, size_t *used, int *held)
{
    size_t have = il->pending.len; /* BOM bytes matched by earlier calls */
    size_t m = 0;

    *used = 0;
    *held = 0;
    while (have + m < sizeof bom && m < len && (unsigned char)data[m] == bom[have + m])
        m++;
    if (have + m == sizeof bom) {
        /* next() may have looked at the held bytes already. */
        buf_clear(&il->pending);
        il->scanned = 0;
        il->at_start = 0;
        *used = m;
        return 0;
    }
    if (m == len) {
        *held = 1;
        *used = m;
        return buf_append(&il->pending, data, len);
    }
    /* Not a BOM: whatever was held is ordinary text at the start of the first line. */
    il->at_start = 0;
    return 0;
}

/* The last LF in data, or NULL. Reads usually end just after one, so this seldom goes far;
 * GNU memrchr does the same but is not standard C. */
static const char *last_lf(const char *data, size_t len)
{
    while (len > 0) {
        if (data[--len] == '\n')
            return data + len;
    }
    return NULL;
}

int input_lines_feed(input_lines *il, const char *data, size_t len)
{
    if (len == 0)
        return 0;

    if (il->at_start) {
        size_t used;
        int held;
        int rc = take_bom(il, data, len, &used, &held);
        if (rc != 0 || held)
            return rc;
        data += used;
        len -= used;
    }

    if (il->discarding) {
        const char *nl = memchr(data, '\n', len);
        if (nl == NULL)
            return 0;
        /* The LF stays: it ends the truncated line that next() has yet to report. */
        il->discarding = 0;
        len -= (size_t)(nl - data);
        data = nl;
    }
    if (len == 0)
        return 0;

    compact(il);

    size_t limit = il->max_line + 2;
    size_t old_len = il->pending.len;
    const char *nl = last_lf(data, len);
    size_t head = nl != NULL ? (size_t)(nl - data) + 1 : 0; /* bytes up to the last LF */
    size_t have = nl != NULL ? 0 : old_len - il->tail;     /* of the new tail line */
    size_t keep = len;

    if (have + (len - head) >= limit) {
        keep = head + (have < limit ? limit - have : 0);
        il->discarding = 1;
    }
    int rc = buf_append(&il->pending, data, keep);
    if (rc != 0) {
        il->discarding = 0;
        return rc;
    }
    if (nl != NULL)
        il->tail = old_len + head;
    return 0;
}

/* Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing above U+10FFFF. The
 * second byte's range is what rules those out, so it is checked per lead byte. */
static int utf8_valid(const unsigned char *s, size_t len)
{
    size_t i = 0;

    while (i < len) {
        /* URL lists are mostly ASCII: skip it a word at a time. */
        while (len - i >= 8) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            if (w & UINT64_C(0x8080808080808080))
                break;
            i += 8;
        }
        if (i == len)
            break;
        unsigned char c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t n;
        unsigned char lo = 0x80, hi = 0xBF;
        if (c >= 0xC2 && c <= 0xDF) {
            n = 1;
        } else if (c >= 0xE0 && c <= 0xEF) {
            n = 2;
            if (c == 0xE0)
                lo = 0xA0; /* below is overlong */
            else if (c == 0xED)
                hi = 0x9F; /* above is a surrogate */
        } else if (c >= 0xF0 && c <= 0xF4) {
            n = 3;
            if (c == 0xF0)
                lo = 0x90; /* below is overlong */
            else if (c == 0xF4)
                hi = 0x8F; /* above is past U+10FFFF */
        } else {
            return 0; /* a continuation byte, C0/C1 (always overlong) or F5..FF */
        }
        if (len - i <= n)
            return 0;
        if (s[i + 1] < lo || s[i + 1] > hi)
            return 0;
        for (size_t k = 2; k <= n; k++)
            if ((s[i + k] & 0xC0) != 0x80)
                return 0;
        i += n + 1;
    }
    return 1;
}

static int is_blank(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

int input_lines_next(input_lines *il, struct input_line *out, int at_eof)
{
    for (;;) {
        char *base = il->pending.data;
        size_t end = il->pending.len;
        size_t from = il->scanned > il->start ? il->scanned : il->start;
        const char *nl = from < end ? memchr(base + from, '\n', end - from) : NULL;
        size_t line_end, next;

        if (nl != NULL) {
            line_end = (size_t)(nl - base);
            next = line_end + 1;
        } else {
            il->scanned = end;
            if (!at_eof || il->start == end)
                return 0;
            il->at_start = 0; /* a held BOM prefix was text after all */
            line_end = end;
            next = end;
        }

        const char *s = base + il->start;
        size_t raw = line_end - il->start;
        il->start = next;
        il->scanned = next;
        il->lineno++;

        /* The limit is on the raw line; a CR before its end is part of the terminator. */
        size_t counted = raw > 0 && s[raw - 1] == '\r' ? raw - 1 : raw;
        const char *error = NULL;
        if (counted > il->max_line)
            error = il->too_long;
        else if (memchr(s, '\0', raw) != NULL)
            error = "NUL byte in line";
        else if (!utf8_valid((const unsigned char *)s, raw))
            error = "invalid UTF-8";
        if (error != NULL) {
            out->text = NULL;
            out->len = 0;
            out->lineno = il->lineno;
            out->error = error;
            return 1;
        }

        while (raw > 0 && is_blank((unsigned char)s[0])) {
            s++;
            raw--;
        }
        while (raw > 0 && is_blank((unsigned char)s[raw - 1]))
            raw--;
        if (raw == 0 || s[0] == '#')
            continue;

        out->text = s;
        out->len = raw;
        out->lineno = il->lineno;
        out->error = NULL;
        return 1;
    }
}
