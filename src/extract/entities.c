/* entities.c: HTML5 character references in attribute values (WHATWG HTML, 13.2.5.72-80). */
#include "entities.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

#define REPLACEMENT 0xFFFDu

/* Numeric references to 0x80-0x9F name the Windows-1252 characters of those bytes, because
 * that is what pages labelled ISO-8859-1 meant; 0 marks the five left as they are. */
static const uint16_t c1_remap[32] = {
    0x20AC, 0,      0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021,
    0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0,      0x017D, 0,
    0,      0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
    0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0,      0x017E, 0x0178,
};

/* ASCII only, as the tokenizer's definition of a reference name is. */
static int is_alnum(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* The digit's value in base 10 or 16, or -1 when it is not a digit of that base. */
static int digit_value(unsigned char c, int hex)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (hex && c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (hex && c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Appends code point `cp` (at most U+10FFFF, never a surrogate) as UTF-8. 0 or -ENOMEM. */
static int put_utf8(struct buf *out, uint32_t cp)
{
    char b[4];
    size_t n;
    if (cp < 0x80) {
        b[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        b[0] = (char)(0xC0 | (cp >> 6));
        b[1] = (char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        b[0] = (char)(0xE0 | (cp >> 12));
        b[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        b[2] = (char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        b[0] = (char)(0xF0 | (cp >> 18));
        b[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        b[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        b[3] = (char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    return buf_append(out, b, n);
}

/* Parses a numeric reference; `s` points just after "&#". Returns how many bytes of `s` it
 * used (0 when no digit follows, so "&#" stays literal) and the code point it stands for. */
static size_t numeric_ref(const unsigned char *s, size_t len, uint32_t *cp)
{
    size_t i = 0;
    int hex = 0;
    if (i < len && (s[i] == 'x' || s[i] == 'X')) {
        hex = 1;
        i++;
    }
    size_t digits_at = i;
    uint32_t v = 0;
    int d;
    while (i < len && (d = digit_value(s[i], hex)) >= 0) {
        /* Saturate: every value past U+10FFFF ends up as U+FFFD anyway. */
        v = v > 0x10FFFF ? v : v * (hex ? 16u : 10u) + (uint32_t)d;
        i++;
    }
    if (i == digits_at)
        return 0;
    if (i < len && s[i] == ';')
        i++; /* optional: a missing ';' is only a parse error */
    if (v == 0 || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        v = REPLACEMENT;
    else if (v >= 0x80 && v <= 0x9F && c1_remap[v - 0x80] != 0)
        v = c1_remap[v - 0x80];
    *cp = v;
    return i;
}

/* Parses a named reference; `s` points just after "&". Returns how many bytes it used, or 0
 * to leave the '&' literal. The longest name that matches wins; a name matched without its
 * ';' is left literal when an alphanumeric or '=' follows, so query strings such as
 * "?a=1&copy=2" survive (the attribute-value rule of 13.2.5.73). */
static size_t named_ref(const unsigned char *s, size_t len, const char **utf8, size_t *n)
{
    size_t run = 0;
    /* No name is longer than the table's longest, so a longer run cannot match. */
    while (run < len && run <= entities__max_name_len && is_alnum(s[run]))
        run++;
    if (run == 0)
        return 0;
    if (run < len && s[run] == ';' && run + 1 <= entities__max_name_len &&
        entities__lookup((const char *)s, run + 1, utf8, n))
        return run + 1;
    /* A ';'-less match shorter than the run is followed by an alphanumeric, so only the whole
     * run can decode here. */
    if (run <= entities__max_legacy_len && (run == len || s[run] != '=') &&
        entities__lookup((const char *)s, run, utf8, n))
        return run;
    return 0;
}

int entities_decode_attr(const char *in, size_t len, struct buf *out)
{
    const unsigned char *s = (const unsigned char *)in;
    size_t i = 0;
    int rc = buf_reserve(out, len); /* the usual size; appends grow it for U+FFFD and the like */
    if (rc != 0)
        return rc;
    while (i < len) {
        size_t start = i;
        while (i < len && s[i] != '&' && s[i] != '\0')
            i++;
        rc = buf_append(out, s + start, i - start);
        if (rc != 0 || i == len)
            return rc;
        if (s[i] == '\0') {
            rc = put_utf8(out, REPLACEMENT);
            i++;
        } else if (i + 1 < len && s[i + 1] == '#') {
            uint32_t cp;
            size_t used = numeric_ref(s + i + 2, len - i - 2, &cp);
            if (used == 0) {
                rc = buf_append(out, "&#", 2);
                i += 2;
            } else {
                rc = put_utf8(out, cp);
                i += 2 + used;
            }
        } else {
            const char *utf8;
            size_t n;
            size_t used = named_ref(s + i + 1, len - i - 1, &utf8, &n);
            if (used == 0) {
                rc = buf_putc(out, '&');
                i++;
            } else {
                rc = buf_append(out, utf8, n);
                i += 1 + used;
            }
        }
        if (rc != 0)
            return rc;
    }
    return 0;
}
