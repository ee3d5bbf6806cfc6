/* fuzz_input.c: libFuzzer harness for the URL-list splitter (src/io/input.c).
 *
 * Input: two control bytes, then the list.
 *   byte 0  the line limit: 0x80 and up the default (64 KiB), else (byte & 0x3F) + 1 bytes,
 *           small enough for the fuzzer to reach the over-long path
 *   byte 1  seeds the sizes of the chunks the list is fed in (1 to 64 bytes, sometimes more),
 *           so lines, CRLFs and the BOM arrive split at every place
 * Seeds are list files with those two bytes in front.
 *
 * Beyond the per-line rules of input.h, the lines handed out are compared with what a
 * splitter that sees the whole list at once, written plainly here, hands out: chunking must
 * never change the result. */
#include <stddef.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

#include "fuzz_check.h"
#include "input.h"

struct line {
    const char *text; /* into the list; NULL for an error */
    size_t len;
    unsigned long lineno;
    int error; /* 0, or which of the ERR_ reasons */
};

enum { ERR_NONE, ERR_LONG, ERR_NUL, ERR_UTF8 };

static int is_blank(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

/* RFC 3629 UTF-8, decoded the slow way: a code point at a time. */
static int utf8_ok(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        size_t more;
        uint32_t cp, min;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            more = 1, cp = c & 0x1F, min = 0x80;
        } else if ((c & 0xF0) == 0xE0) {
            more = 2, cp = c & 0x0F, min = 0x800;
        } else if ((c & 0xF8) == 0xF0) {
            more = 3, cp = c & 0x07, min = 0x10000;
        } else {
            return 0;
        }
        if (n - i <= more)
            return 0;
        for (size_t k = 1; k <= more; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return 0;
            cp = cp << 6 | (s[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        i += more + 1;
    }
    return 1;
}

/* The reference: the whole list at once. Returns how many lines it wrote to `out`. */
static size_t reference(const char *list, size_t len, size_t max_line, struct line *out)
{
    size_t count = 0;
    unsigned long lineno = 0;
    if (len >= 3 && memcmp(list, "\xEF\xBB\xBF", 3) == 0) {
        list += 3;
        len -= 3;
    }
    size_t at = 0;
    while (at < len) {
        const char *s = list + at;
        const char *nl = memchr(s, '\n', len - at);
        size_t raw = nl != NULL ? (size_t)(nl - s) : len - at;
        at += raw + 1;
        lineno++;

        size_t counted = raw > 0 && s[raw - 1] == '\r' ? raw - 1 : raw;
        int error = counted > max_line          ? ERR_LONG
                    : memchr(s, '\0', raw)      ? ERR_NUL
                    : !utf8_ok((const unsigned char *)s, raw) ? ERR_UTF8
                                                 : ERR_NONE;
        if (error != ERR_NONE) {
            out[count++] = (struct line){NULL, 0, lineno, error};
            continue;
        }
        while (raw > 0 && is_blank((unsigned char)s[0]))
            s++, raw--;
        while (raw > 0 && is_blank((unsigned char)s[raw - 1]))
            raw--;
        if (raw > 0 && s[0] != '#')
            out[count++] = (struct line){s, raw, lineno, ERR_NONE};
    }
    return count;
}

struct run {
    input_lines il;
    const struct line *want;
    size_t nwant, got;
    unsigned long last_lineno;
};

/* Takes every line the splitter has ready and checks it against the reference. */
static void drain(struct run *r, int at_eof)
{
    struct input_line line;
    while (input_lines_next(&r->il, &line, at_eof) == 1) {
        CHECK(line.lineno > r->last_lineno);
        r->last_lineno = line.lineno;
        if (line.error != NULL) {
            CHECK(line.text == NULL);
        } else {
            const unsigned char *t = (const unsigned char *)line.text;
            CHECK(t != NULL && line.len > 0);
            CHECK(line.len <= r->il.max_line);
            CHECK(memchr(t, '\0', line.len) == NULL);
            CHECK(utf8_ok(t, line.len));
            CHECK(!is_blank(t[0]) && !is_blank(t[line.len - 1]));
            CHECK(memchr(t, '\n', line.len) == NULL);
            CHECK(t[0] != '#');
        }

        CHECK(r->got < r->nwant);
        const struct line *w = &r->want[r->got++];
        CHECK(line.lineno == w->lineno);
        switch (w->error) {
        case ERR_NONE:
            CHECK(line.error == NULL);
            CHECK(line.len == w->len && memcmp(line.text, w->text, w->len) == 0);
            break;
        case ERR_LONG:
            CHECK(line.error == r->il.too_long);
            break;
        case ERR_NUL:
            CHECK(line.error != NULL && strcmp(line.error, "NUL byte in line") == 0);
            break;
        case ERR_UTF8:
            CHECK(line.error != NULL && strcmp(line.error, "invalid UTF-8") == 0);
            break;
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    size_t max_line = data[0] >= 0x80 ? INPUT_MAX_LINE : (size_t)(data[0] & 0x3F) + 1;
    uint32_t rng = 0x9E3779B9u ^ data[1];
    const char *list = (const char *)data + 2;
    size_t len = size - 2;

    /* At most one line per byte, plus the last. */
    struct line *want = malloc((len + 1) * sizeof *want);
    CHECK(want != NULL);
    struct run r = {.want = want, .nwant = reference(list, len, max_line, want)};
    input_lines_init(&r.il, max_line);

    size_t at = 0;
    while (at < len) {
        /* xorshift32: cheap, and the same chunks for the same input. */
        rng ^= rng << 13;
        rng ^= rng >> 17;
        rng ^= rng << 5;
        size_t chunk = (rng & 7) == 0 ? (rng >> 8) % 4096 + 1 : (rng >> 8) % 64 + 1;
        if (chunk > len - at)
            chunk = len - at;
        CHECK(input_lines_feed(&r.il, list + at, chunk) == 0);
        at += chunk;
        /* input.c keeps the unterminated last line to max_line + 2 bytes however it is fed. */
        CHECK(r.il.pending.len - r.il.tail <= r.il.max_line + 2);
        drain(&r, 0);
    }
    drain(&r, 1);
    CHECK(r.got == r.nwant);

    input_lines_finish(&r.il);
    free(want);
    return 0;
}
