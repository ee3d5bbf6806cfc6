/* url.c: parsing, resolution and normalisation of http(s) URLs.
 *
 * This is the WHATWG URL parser cut down to the two schemes areq fetches, writing the
 * normalised result straight into the caller's buffer. A base is parsed once, into its
 * normalised text and the offsets of its path and query; a link then costs one pass over its
 * own bytes:
 *
 *   clean    trim C0 controls and space, drop tab/LF/CR (copied only when there are any);
 *   classify scheme, then "//host" (any two of '/' and '\'), "/path", "?query", "#fragment",
 *            "" or a relative path. A scheme equal to the base's makes the rest relative
 *            ("http:foo" is "foo"); another special scheme makes it absolute ("https:foo" is
 *            https://foo/), after any number of slashes;
 *   build    copy the part of the base the reference keeps, then the reference's own parts,
 *            escaping and upper-casing escapes on the fly. Dot segments are removed in place:
 *            ".." cuts the output back to its previous '/'.
 *
 * Hosts: ASCII names are lower-cased and checked byte by byte; percent-encoded or non-ASCII
 * names (and "xn--" labels, which must be valid punycode) go through idna.c. Names that end
 * in a number are IPv4 addresses in any of WHATWG's forms; bracketed ones IPv6 addresses.
 *
 * Deliberate differences from a browser, all in the direction of a stricter printed form:
 * escapes get upper-case hex; one escape set serves path, query and fragment (so '`', '{', '}'
 * are escaped in a query and "'" is not); the fragment is dropped unless URL_KEEP_FRAGMENT;
 * hosts holding '"', '`', '{' or '}', which WHATWG lets through, are refused, since a host
 * cannot be escaped and url.h promises never to print those bytes raw. */
#include "url.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "idna.h"

enum scheme { SCHEME_NONE, SCHEME_HTTP, SCHEME_HTTPS, SCHEME_OTHER };

struct url_base {
    char *url; /* normalised, never with a fragment */
    size_t len;
    enum scheme scheme;
    size_t path;  /* url[path] == '/': the path starts here, after the authority */
    size_t dir;   /* url[path..dir): the path without its last '/' and what follows it */
    size_t query; /* url[query] == '?', or len when there is no query */
};

/* What resolve() is resolving. */
enum mode {
    MODE_LINK,  /* an href against a base */
    MODE_BASE,  /* a <base href>: a fragment-only value means the base itself */
    MODE_INPUT, /* an input line: must be an absolute http(s) URL, no base */
};

static const char why_not_http[] = "not an absolute http or https URL";
static const char why_no_host[] = "URL has no host";
static const char why_bad_host[] = "bad host name";
static const char why_bad_port[] = "bad port number";
static const char why_nomem[] = "out of memory";

static const char hexdigits[] = "0123456789ABCDEF";

static bool is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static bool is_hex(unsigned char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static unsigned hex_value(unsigned char c)
{
    return is_digit(c) ? (unsigned)(c - '0') : (unsigned)((c | 0x20) - 'a' + 10);
}

static bool is_alpha(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static unsigned char to_lower(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c + ('a' - 'A')) : c;
}

static unsigned char to_upper(unsigned char c)
{
    return c >= 'a' && c <= 'z' ? (unsigned char)(c - ('a' - 'A')) : c;
}

/* What each byte is to the resolver. The hot loops test one table entry where they tested a
 * chain of comparisons per byte (callgrind, a scan of 800 pages of 74 KB: must_escape() and
 * write_escaped() were 11% of all instructions). The compiler computes the table from the
 * expressions the rules are written in. */
enum {
    B_ESC_URL = 1 << 0,      /* must_escape() */
    B_ESC_USERINFO = 1 << 1, /* must_escape() and what would end a user name or password */
    B_ESC_MINIMAL = 1 << 2,  /* space, controls and non-ASCII */
    B_SLASH = 1 << 3,        /* '/' or '\': special URLs take both */
    B_PERCENT = 1 << 4,
    B_TAB_NL = 1 << 5,       /* tab, LF, CR: dropped wherever they are */
};

/* The bytes url.h promises never to print raw. A browser's sets differ by component (it
 * leaves '`', '{', '}' alone in a query, and escapes "'" there); one set for all components
 * keeps the rule simple and every printed URL safe to split on white space. */
#define MUST_ESCAPE(c) \
    ((c) <= 0x20 || (c) >= 0x7F || (c) == '"' || (c) == '<' || (c) == '>' || (c) == '`' || \
     (c) == '{' || (c) == '}')
#define ESCAPE_IN_USERINFO(c) \
    (MUST_ESCAPE(c) || (c) == '/' || (c) == ':' || (c) == ';' || (c) == '=' || (c) == '@' || \
     (c) == '[' || (c) == '\\' || (c) == ']' || (c) == '^' || (c) == '|')
#define BYTE_CLASS(c) \
    ((MUST_ESCAPE(c) ? B_ESC_URL : 0) | (ESCAPE_IN_USERINFO(c) ? B_ESC_USERINFO : 0) | \
     ((c) <= 0x20 || (c) >= 0x7F ? B_ESC_MINIMAL : 0) | \
     ((c) == '/' || (c) == '\\' ? B_SLASH : 0) | ((c) == '%' ? B_PERCENT : 0) | \
     ((c) == '\t' || (c) == '\n' || (c) == '\r' ? B_TAB_NL : 0))
#define BYTE_CLASS4(c) BYTE_CLASS(c), BYTE_CLASS((c) + 1), BYTE_CLASS((c) + 2), BYTE_CLASS((c) + 3)
#define BYTE_CLASS16(c) \
    BYTE_CLASS4(c), BYTE_CLASS4((c) + 4), BYTE_CLASS4((c) + 8), BYTE_CLASS4((c) + 12)
#define BYTE_CLASS64(c) \
    BYTE_CLASS16(c), BYTE_CLASS16((c) + 16), BYTE_CLASS16((c) + 32), BYTE_CLASS16((c) + 48)

static const unsigned char byte_class[256] = {
    BYTE_CLASS64(0), BYTE_CLASS64(64), BYTE_CLASS64(128), BYTE_CLASS64(192),
};

static bool is_slash(char c)
{
    return byte_class[(unsigned char)c] & B_SLASH;
}

static bool must_escape(unsigned char c)
{
    return byte_class[c] & B_ESC_URL;
}

/* WHATWG's forbidden domain code points, ASCII being all a host holds by the time this is
 * asked, plus the bytes url.h promises to escape, which a host cannot escape. */
static bool bad_in_host(unsigned char c)
{
    return must_escape(c) || c == '#' || c == '%' || c == '/' || c == ':' || c == '?' ||
           c == '@' || c == '[' || c == '\\' || c == ']' || c == '^' || c == '|';
}

/* Forgets everything appended to `out` since it was `len` long. */
static void truncate_to(struct buf *out, size_t len)
{
    out->len = len;
    if (out->data != NULL)
        out->data[len] = '\0';
}

/* Which bytes put_escaped() encodes. */
enum esc {
    ESC_URL,      /* must_escape() */
    ESC_USERINFO, /* must_escape() and what would end a user name or password early */
    ESC_MINIMAL,  /* space, controls and non-ASCII only: another scheme's URL, as written */
};

static unsigned escape_bit(enum esc set)
{
    switch (set) {
    case ESC_USERINFO:
        return B_ESC_USERINFO;
    case ESC_MINIMAL:
        return B_ESC_MINIMAL;
    default:
        return B_ESC_URL;
    }
}

/* Writes s[0..n) at d with the bytes of `set` percent-encoded and the hex of existing escapes
 * in upper case (except in ESC_MINIMAL, which changes nothing else); a '%' not followed by
 * two hex digits is kept, as browsers keep it. d has room for 3 * n bytes. Returns the end.
 * Runs of bytes that need nothing are copied whole: in a link, that is nearly all of it. */
static char *write_escaped(char *d, const char *s, size_t n, enum esc set)
{
    unsigned escape = escape_bit(set);
    unsigned stop = escape | (set != ESC_MINIMAL ? B_PERCENT : 0);
    size_t i = 0;
    for (;;) {
        size_t run = i;
        while (run < n && !(byte_class[(unsigned char)s[run]] & stop))
            run++;
        memcpy(d, s + i, run - i);
        d += run - i;
        if (run == n)
            return d;
        unsigned char c = (unsigned char)s[run];
        i = run + 1;
        if (c == '%' && set != ESC_MINIMAL && n - run >= 3 &&
            is_hex((unsigned char)s[run + 1]) && is_hex((unsigned char)s[run + 2])) {
            d[0] = '%';
            d[1] = (char)to_upper((unsigned char)s[run + 1]);
            d[2] = (char)to_upper((unsigned char)s[run + 2]);
            d += 3;
            i = run + 3;
        } else if (byte_class[c] & escape) {
            d[0] = '%';
            d[1] = hexdigits[c >> 4];
            d[2] = hexdigits[c & 15];
            d += 3;
        } else {
            *d++ = (char)c; /* a '%' that starts no escape */
        }
    }
}

/* Appends s[0..n) as write_escaped() writes it. 0 or -ENOMEM. */
static int put_escaped(struct buf *out, const char *s, size_t n, enum esc set)
{
    if (n > SIZE_MAX / 4)
        return -ENOMEM;
    int rc = buf_reserve(out, 3 * n);
    if (rc != 0)
        return rc;
    char *d = write_escaped(out->data + out->len, s, n, set);
    out->len = (size_t)(d - out->data);
    *d = '\0';
    return 0;
}

/* Appends `c` and then s[0..n) escaped: a query or a fragment with its mark. */
static int put_marked(struct buf *out, char c, const char *s, size_t n)
{
    int rc = buf_putc(out, c);
    return rc != 0 ? rc : put_escaped(out, s, n, ESC_URL);
}

/* 1 for a "." segment, 2 for "..", with %2e counting as a dot as the WHATWG parser counts
 * it; 0 otherwise. */
static int dot_segment(const char *s, size_t n)
{
    if (n == 0 || n > 6 || (s[0] != '.' && s[0] != '%'))
        return 0;
    int dots = 0;
    size_t i = 0;
    while (i < n) {
        if (s[i] == '.') {
            i++;
        } else if (n - i >= 3 && s[i] == '%' && s[i + 1] == '2' && (s[i + 2] | 0x20) == 'e') {
            i += 3;
        } else {
            return 0;
        }
        if (++dots > 2)
            return 0;
    }
    return dots;
}

/* Appends the segments of p[0..n) (separated by '/' or '\') to the path the output holds
 * from `start` on: "/a/b" for the segments a and b, nothing for none. A ".." segment drops
 * the last one; "." and ".." at the end leave a trailing '/', as WHATWG's path state does.
 * 0 or -ENOMEM. */
static int put_segments(struct buf *out, size_t start, const char *p, size_t n)
{
    if (n > SIZE_MAX / 4)
        return -ENOMEM;
    int rc = buf_reserve(out, 3 * n + 1);
    if (rc != 0)
        return rc;
    char *first = out->data + start;
    char *d = out->data + out->len;
    size_t i = 0;
    for (;;) {
        size_t j = i;
        while (j < n && !is_slash(p[j]))
            j++;
        int dots = dot_segment(p + i, j - i);
        if (dots == 2) {
            while (d > first && d[-1] != '/')
                d--;
            if (d > first)
                d--;
        }
        if (dots == 0) {
            *d++ = '/';
            d = write_escaped(d, p + i, j - i, ESC_URL);
        } else if (j == n) {
            *d++ = '/'; /* "/a/.." names the directory "/", as "/a/" does */
        }
        if (j == n)
            break;
        i = j + 1;
    }
    out->len = (size_t)(d - out->data);
    *d = '\0';
    return 0;
}

/* Parses the IPv6 address s[0..n) (without brackets) as the WHATWG URL Standard does, into
 * eight 16-bit pieces. Zone identifiers are refused, as browsers refuse them. */
static bool parse_ipv6(const char *s, size_t n, uint16_t piece[8])
{
    memset(piece, 0, 8 * sizeof piece[0]);
    size_t i = 0;
    int k = 0, compress = -1;
    if (n > 0 && s[0] == ':') {
        if (n < 2 || s[1] != ':')
            return false;
        i = 2;
        compress = ++k;
    }
    while (i < n) {
        if (k == 8)
            return false;
        if (s[i] == ':') {
            if (compress >= 0)
                return false;
            i++;
            compress = ++k;
            continue;
        }
        unsigned value = 0;
        size_t digits = 0;
        while (digits < 4 && i < n && is_hex((unsigned char)s[i])) {
            value = value * 16 + hex_value((unsigned char)s[i]);
            i++;
            digits++;
        }
        if (i < n && s[i] == '.') {
            /* An IPv4 address in the last two pieces: four decimal numbers, no leading 0. */
            if (digits == 0 || k > 6)
                return false;
            i -= digits;
            int numbers = 0;
            while (i < n) {
                if (numbers > 0) {
                    if (s[i] != '.' || numbers == 4)
                        return false;
                    i++;
                }
                if (i >= n || !is_digit((unsigned char)s[i]))
                    return false;
                int v = -1;
                while (i < n && is_digit((unsigned char)s[i])) {
                    if (v == 0)
                        return false;
                    v = (v < 0 ? 0 : v * 10) + (s[i] - '0');
                    if (v > 255)
                        return false;
                    i++;
                }
                piece[k] = (uint16_t)(piece[k] << 8 | v);
                if (++numbers == 2 || numbers == 4)
                    k++;
            }
            if (numbers != 4)
                return false;
            break;
        }
        if (i < n && s[i] == ':') {
            if (++i == n)
                return false;
        } else if (i < n) {
            return false;
        }
        piece[k++] = (uint16_t)value;
    }
    if (compress >= 0) {
        /* Move the pieces after "::" to the end. */
        int moved = k - compress;
        memmove(piece + 8 - moved, piece + compress, (size_t)moved * sizeof piece[0]);
        memset(piece + compress, 0, (size_t)(8 - moved - compress) * sizeof piece[0]);
    } else if (k != 8) {
        return false;
    }
    return true;
}

/* Appends the bracketed IPv6 literal s[0..n) (without brackets) as the WHATWG URL Standard
 * serialises it: lower-case hex, no leading zeros, the first longest run of two or more zero
 * pieces as "::". 0, -EINVAL or -ENOMEM. */
static int put_ipv6(struct buf *out, const char *s, size_t n)
{
    uint16_t piece[8];
    if (!parse_ipv6(s, n, piece))
        return -EINVAL;
    int compress = -1, longest = 1;
    for (int k = 0; k < 8;) {
        int end = k;
        while (end < 8 && piece[end] == 0)
            end++;
        if (end - k > longest) {
            compress = k;
            longest = end - k;
        }
        k = end > k ? end : k + 1;
    }
    int rc = buf_reserve(out, 41);
    if (rc != 0)
        return rc;
    char *d = out->data + out->len;
    *d++ = '[';
    for (int k = 0; k < 8; k++) {
        if (k == compress) {
            *d++ = ':';
            if (k == 0)
                *d++ = ':';
            k += longest - 1;
            continue;
        }
        bool lead = true;
        for (int shift = 12; shift >= 0; shift -= 4) {
            unsigned x = piece[k] >> shift & 15;
            if (x != 0 || shift == 0 || !lead) {
                *d++ = "0123456789abcdef"[x];
                lead = false;
            }
        }
        if (k != 7)
            *d++ = ':';
    }
    *d++ = ']';
    out->len = (size_t)(d - out->data);
    *d = '\0';
    return 0;
}

/* WHATWG's IPv4 number parser: decimal, octal after a leading 0, hex after 0x. Values past
 * 2^32 are saturated there, which is out of range wherever they appear. */
static bool ipv4_number(const char *s, size_t n, uint64_t *value)
{
    if (n == 0)
        return false;
    unsigned radix = 10;
    if (n >= 2 && s[0] == '0' && (s[1] | 0x20) == 'x') {
        radix = 16;
        s += 2;
        n -= 2;
    } else if (n >= 2 && s[0] == '0') {
        radix = 8;
        s++;
        n--;
    }
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        unsigned digit;
        if (radix == 16 && is_hex(c))
            digit = hex_value(c);
        else if (is_digit(c) && (unsigned)(c - '0') < radix)
            digit = (unsigned)(c - '0');
        else
            return false;
        v = v * radix + digit;
        if (v > UINT32_MAX)
            v = (uint64_t)UINT32_MAX + 1;
    }
    *value = v;
    return true;
}

/* WHATWG's "ends in a number": the last label (before a trailing '.') is all digits or
 * parses as an IPv4 number. Such a host must be an IPv4 address. */
static bool ends_in_number(const char *s, size_t n)
{
    if (n > 0 && s[n - 1] == '.')
        n--;
    size_t start = n;
    while (start > 0 && s[start - 1] != '.')
        start--;
    if (start == n)
        return false;
    bool digits = true;
    for (size_t i = start; i < n && digits; i++)
        digits = is_digit((unsigned char)s[i]);
    uint64_t ignored;
    return digits || ipv4_number(s + start, n - start, &ignored);
}

/* Rewrites the host the output holds from `start` on, which ends in a number, as a dotted
 * IPv4 address ("0x7f.1" is 127.0.0.1). 0 or -EINVAL. */
static int rewrite_ipv4(struct buf *out, size_t start)
{
    const char *s = out->data + start;
    size_t n = out->len - start;
    if (s[n - 1] == '.')
        n--; /* one trailing dot is allowed */
    uint64_t part[4];
    int parts = 0;
    size_t i = 0;
    for (;;) {
        size_t j = i;
        while (j < n && s[j] != '.')
            j++;
        if (parts == 4 || !ipv4_number(s + i, j - i, &part[parts]))
            return -EINVAL;
        parts++;
        if (j == n)
            break;
        i = j + 1;
    }
    uint64_t addr = part[parts - 1];
    if (addr >= (uint64_t)1 << (8 * (5 - parts)))
        return -EINVAL;
    for (int k = 0; k < parts - 1; k++) {
        if (part[k] > 255)
            return -EINVAL;
        addr += part[k] << (8 * (3 - k));
    }
    char *d = out->data + start; /* put_host() left room for "255.255.255.255" */
    for (int k = 3; k >= 0; k--) {
        unsigned byte = (unsigned)(addr >> (8 * k)) & 255;
        if (byte >= 100)
            *d++ = (char)('0' + byte / 100);
        if (byte >= 10)
            *d++ = (char)('0' + byte / 10 % 10);
        *d++ = (char)('0' + byte % 10);
        if (k > 0)
            *d++ = '.';
    }
    out->len = (size_t)(d - out->data);
    *d = '\0';
    return 0;
}

/* True if one of the labels of s[0..n) starts with "xn--" in any case: it must be checked
 * as punycode. */
static bool has_ace_label(const char *s, size_t n)
{
    for (size_t i = 0; i + 4 <= n; i++) {
        if ((i == 0 || s[i - 1] == '.') && (s[i] | 0x20) == 'x' && (s[i + 1] | 0x20) == 'n' &&
            s[i + 2] == '-' && s[i + 3] == '-')
            return true;
    }
    return false;
}

/* The host parser's slow path: percent-decodes h[0..n), and appends it in its ASCII form. */
static int put_domain_decoded(struct buf *out, const char *h, size_t n)
{
    struct buf name;
    buf_init(&name);
    int rc = buf_reserve(&name, n);
    if (rc != 0)
        return rc;
    bool ascii = true;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)h[i];
        if (c == '%' && n - i >= 3 && is_hex((unsigned char)h[i + 1]) &&
            is_hex((unsigned char)h[i + 2])) {
            c = (unsigned char)(hex_value((unsigned char)h[i + 1]) << 4 |
                                hex_value((unsigned char)h[i + 2]));
            i += 2;
        }
        ascii = ascii && c < 0x80;
        name.data[name.len++] = (char)c;
    }
    name.data[name.len] = '\0';
    if (ascii && !has_ace_label(name.data, name.len)) {
        rc = buf_reserve(out, name.len);
        if (rc == 0) {
            for (size_t i = 0; i < name.len; i++)
                out->data[out->len++] = (char)to_lower((unsigned char)name.data[i]);
            out->data[out->len] = '\0';
        }
    } else {
        rc = idna_to_ascii(name.data, name.len, out);
    }
    buf_finish(&name);
    return rc;
}

/* Appends the host h[0..n) of an http(s) URL as the WHATWG host parser reads it. 0, -EINVAL
 * with *why set, or -ENOMEM. */
static int put_host(struct buf *out, const char *h, size_t n, const char **why)
{
    *why = why_bad_host;
    if (n == 0) {
        *why = why_no_host;
        return -EINVAL;
    }
    if (h[0] == '[')
        return h[n - 1] == ']' ? put_ipv6(out, h + 1, n - 2) : -EINVAL;

    size_t start = out->len;
    /* 16 spare bytes: room for rewrite_ipv4() whatever the host's length. */
    int rc = buf_reserve(out, n + 16);
    if (rc != 0)
        return rc;
    char *d = out->data + start;
    bool slow = false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)h[i];
        if (c >= 0x80 || c == '%') {
            slow = true;
            break;
        }
        d[i] = (char)to_lower(c);
    }
    if (slow || has_ace_label(h, n)) {
        rc = put_domain_decoded(out, h, n);
        if (rc != 0)
            return rc;
        if ((rc = buf_reserve(out, 16)) != 0)
            return rc;
    } else {
        out->len += n;
        out->data[out->len] = '\0';
    }

    const char *s = out->data + start;
    size_t len = out->len - start;
    if (len == 0)
        return -EINVAL; /* nothing left once UTS #46 dropped the code points it ignores */
    for (size_t i = 0; i < len; i++) {
        if (bad_in_host((unsigned char)s[i]))
            return -EINVAL;
    }
    return ends_in_number(s, len) ? rewrite_ipv4(out, start) : 0;
}

/* Appends the userinfo s[0..n) (without its '@'), and its '@', unless both user name and
 * password are empty. User name and password are escaped apart, so that only the first ':'
 * separates them; an empty password is dropped with its ':', as browsers drop it. */
static int put_userinfo(struct buf *out, const char *s, size_t n)
{
    const char *colon = memchr(s, ':', n);
    size_t user = colon != NULL ? (size_t)(colon - s) : n;
    size_t pass = colon != NULL ? n - user - 1 : 0;
    if (user == 0 && pass == 0)
        return 0;
    int rc = put_escaped(out, s, user, ESC_USERINFO);
    if (rc == 0 && pass > 0 && (rc = buf_putc(out, ':')) == 0)
        rc = put_escaped(out, colon + 1, pass, ESC_USERINFO);
    return rc != 0 ? rc : buf_putc(out, '@');
}

/* Appends ":port" for the port s[0..n) unless it is empty or the scheme's default. Digits
 * only, at most 65535, leading zeros allowed (and dropped). 0, -EINVAL or -ENOMEM. */
static int put_port(struct buf *out, const char *s, size_t n, enum scheme scheme)
{
    unsigned long port = 0;
    for (size_t i = 0; i < n; i++) {
        if (!is_digit((unsigned char)s[i]))
            return -EINVAL;
        port = port * 10 + (unsigned long)(s[i] - '0');
        if (port > 65535)
            return -EINVAL;
    }
    if (n == 0 || port == (scheme == SCHEME_HTTPS ? 443ul : 80ul))
        return 0;
    int rc = buf_reserve(out, 6);
    if (rc != 0)
        return rc;
    char digits[5];
    int k = 0;
    do {
        digits[k++] = (char)('0' + port % 10);
        port /= 10;
    } while (port > 0);
    out->data[out->len++] = ':';
    while (k > 0)
        out->data[out->len++] = digits[--k];
    out->data[out->len] = '\0';
    return 0;
}

/* Appends "scheme://authority" and the path and query of r[0..n), which is what follows
 * the slashes of an absolute URL or a network-path reference, fragment cut off. 0, -EINVAL
 * with *why set, or -ENOMEM. */
static int put_absolute(struct buf *out, enum scheme scheme, const char *r, size_t n,
                        const char **why)
{
    size_t auth = 0;
    while (auth < n && !is_slash(r[auth]) && r[auth] != '?')
        auth++;
    /* The last '@' ends the userinfo; put_userinfo escapes the others. */
    size_t host = auth;
    while (host > 0 && r[host - 1] != '@')
        host--;
    int rc = buf_append_str(out, scheme == SCHEME_HTTPS ? "https://" : "http://");
    if (rc == 0 && host > 0)
        rc = put_userinfo(out, r, host - 1);
    if (rc != 0)
        return rc;

    /* A ':' outside brackets starts the port. */
    size_t colon = host;
    bool bracket = false;
    while (colon < auth && (r[colon] != ':' || bracket)) {
        if (r[colon] == '[')
            bracket = true;
        else if (r[colon] == ']')
            bracket = false;
        colon++;
    }
    if ((rc = put_host(out, r + host, colon - host, why)) != 0)
        return rc;
    if (colon < auth && (rc = put_port(out, r + colon + 1, auth - colon - 1, scheme)) != 0) {
        if (rc == -EINVAL)
            *why = why_bad_port;
        return rc;
    }

    const char *q = memchr(r + auth, '?', n - auth);
    size_t query = q != NULL ? (size_t)(q - r) : n;
    size_t path = auth < query ? auth + 1 : auth; /* after the path's first slash */
    if ((rc = put_segments(out, out->len, r + path, query - path)) != 0)
        return rc;
    return q != NULL ? put_marked(out, '?', q + 1, n - query - 1) : 0;
}

static enum scheme scheme_of(const char *s, size_t n)
{
    if (n == 4 && strncasecmp(s, "http", 4) == 0)
        return SCHEME_HTTP;
    if (n == 5 && strncasecmp(s, "https", 5) == 0)
        return SCHEME_HTTPS;
    return SCHEME_OTHER;
}

/* Length of the scheme at the start of s[0..n) (without its ':'), or 0 if there is none. */
static size_t scheme_len(const char *s, size_t n)
{
    if (n == 0 || !is_alpha((unsigned char)s[0]))
        return 0;
    for (size_t i = 1; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == ':')
            return i;
        if (!is_alpha(c) && !is_digit(c) && c != '+' && c != '-' && c != '.')
            return 0;
    }
    return 0;
}

/* Appends another scheme's URL s[0..n) as written, its scheme (slen bytes) lower-cased and
 * only white space, controls and non-ASCII escaped. */
static int put_other(struct buf *out, const char *s, size_t n, size_t slen)
{
    int rc = buf_reserve(out, slen);
    if (rc != 0)
        return rc;
    for (size_t i = 0; i < slen; i++)
        out->data[out->len++] = (char)to_lower((unsigned char)s[i]);
    out->data[out->len] = '\0';
    return put_escaped(out, s + slen, n - slen, ESC_MINIMAL);
}

/* What a reference without a scheme of its own, or with the base's, keeps of the base. */
enum kind {
    KIND_SAME,     /* "": the whole base (with a fragment, the document itself) */
    KIND_QUERY,    /* "?q": the base up to its query */
    KIND_ROOT,     /* "/p": the base's scheme and authority */
    KIND_RELATIVE, /* "p": the base up to its path's last '/' */
    KIND_ABSOLUTE, /* "//host" or another scheme: only the scheme, if that */
};

/* Resolves the clean reference s[0..n) (trimmed, no tab/LF/CR) against `b` (NULL in
 * MODE_INPUT) and appends the result to `out`. URL_OK, URL_FILTERED, or a negative error
 * with *why set; on anything but URL_OK `out` keeps its old length. */
static int resolve_clean(const url_base *b, const char *s, size_t n, unsigned flags,
                         enum mode mode, struct buf *out, const char **why)
{
    const char *hash = memchr(s, '#', n);
    size_t frag = hash != NULL ? (size_t)(hash - s) : n;
    size_t slen = scheme_len(s, frag);
    enum scheme scheme = slen > 0 ? scheme_of(s, slen) : SCHEME_NONE;
    size_t old_len = out->len;
    int rc;

    if (scheme == SCHEME_OTHER || (scheme == SCHEME_NONE && mode == MODE_INPUT)) {
        *why = why_not_http;
        if (mode != MODE_LINK)
            return -EINVAL;
        if (!(flags & URL_ALL_SCHEMES))
            return URL_FILTERED;
        rc = put_other(out, s, n, slen);
        goto done;
    }

    /* r[0..rn): the reference after its scheme, without its fragment. */
    const char *r = s + (slen > 0 ? slen + 1 : 0);
    size_t rn = (size_t)(s + frag - r);
    enum kind kind;
    if (scheme != SCHEME_NONE && (b == NULL || scheme != b->scheme))
        kind = KIND_ABSOLUTE;
    else if (rn >= 2 && is_slash(r[0]) && is_slash(r[1]))
        kind = KIND_ABSOLUTE;
    else if (rn >= 1 && is_slash(r[0]))
        kind = KIND_ROOT;
    else if (rn == 0)
        kind = KIND_SAME;
    else if (r[0] == '?')
        kind = KIND_QUERY;
    else
        kind = KIND_RELATIVE;

    bool keep_fragment = hash != NULL && (flags & URL_KEEP_FRAGMENT) && mode == MODE_LINK;
    if (kind == KIND_SAME && hash != NULL && mode == MODE_LINK && !keep_fragment)
        return URL_FILTERED; /* a link to the document itself */

    switch (kind) {
    case KIND_SAME:
        rc = buf_append(out, b->url, b->len);
        break;
    case KIND_QUERY:
        rc = buf_append(out, b->url, b->query);
        if (rc == 0)
            rc = put_marked(out, '?', r + 1, rn - 1);
        break;
    case KIND_ROOT:
    case KIND_RELATIVE: {
        size_t keep = kind == KIND_ROOT ? b->path : b->dir;
        size_t skip = kind == KIND_ROOT ? 1 : 0;
        const char *q = memchr(r, '?', rn);
        size_t query = q != NULL ? (size_t)(q - r) : rn;
        rc = buf_append(out, b->url, keep);
        if (rc == 0)
            rc = put_segments(out, old_len + b->path, r + skip, query - skip);
        if (rc == 0 && q != NULL)
            rc = put_marked(out, '?', q + 1, rn - query - 1);
        break;
    }
    default: {
        size_t skip = 0;
        while (skip < rn && is_slash(r[skip]))
            skip++;
        rc = put_absolute(out, scheme != SCHEME_NONE ? scheme : b->scheme, r + skip, rn - skip,
                          why);
        break;
    }
    }
    if (rc == 0 && keep_fragment)
        rc = put_marked(out, '#', hash + 1, n - frag - 1);

done:
    if (rc == -ENOMEM)
        *why = why_nomem;
    if (rc != 0)
        truncate_to(out, old_len);
    return rc;
}

static bool is_tab_or_newline(unsigned char c)
{
    return byte_class[c] & B_TAB_NL;
}

/* resolve_clean() for a raw value: trims C0 controls and space at both ends and drops
 * tab/LF/CR everywhere, as the WHATWG parser does. */
static int resolve(const url_base *b, const char *href, size_t len, unsigned flags,
                   enum mode mode, struct buf *out, const char **why)
{
    while (len > 0 && (unsigned char)href[0] <= 0x20) {
        href++;
        len--;
    }
    while (len > 0 && (unsigned char)href[len - 1] <= 0x20)
        len--;
    size_t i = 0;
    while (i < len && !is_tab_or_newline((unsigned char)href[i]))
        i++;
    if (i == len)
        return resolve_clean(b, href, len, flags, mode, out, why);

    /* Rare: only now is a copy worth making. */
    struct buf clean;
    buf_init(&clean);
    int rc = buf_reserve(&clean, len);
    if (rc != 0) {
        *why = why_nomem;
        return rc;
    }
    for (i = 0; i < len; i++) {
        if (!is_tab_or_newline((unsigned char)href[i]))
            clean.data[clean.len++] = href[i];
    }
    rc = resolve_clean(b, clean.data, clean.len, flags, mode, out, why);
    buf_finish(&clean);
    return rc;
}

int url_normalize_input(const char *text, size_t len, struct buf *out, const char **why)
{
    const char *ignored;
    int rc = resolve(NULL, text, len, 0, MODE_INPUT, out, why != NULL ? why : &ignored);
    return rc < 0 ? rc : 0;
}

/* Makes a base of the normalised absolute URL `url` (NUL-terminated at url[len]), taking
 * ownership of it. */
static void base_init(url_base *b, char *url, size_t len)
{
    b->url = url;
    b->len = len;
    b->scheme = strncmp(url, "https:", 6) == 0 ? SCHEME_HTTPS : SCHEME_HTTP;
    /* A normalised URL has "://", then an authority without '/' or '?', then a path
     * starting with '/' and holding no '?'. */
    b->path = (size_t)(strchr(strstr(url, "://") + 3, '/') - url);
    const char *q = strchr(url + b->path, '?');
    b->query = q != NULL ? (size_t)(q - url) : len;
    b->dir = b->query - 1;
    while (url[b->dir] != '/')
        b->dir--;
}

/* Resolves `href` (against `b` in MODE_BASE, or alone in MODE_INPUT) into a new base. */
static int base_from(url_base *next, const url_base *b, const char *href, size_t len,
                     enum mode mode)
{
    struct buf text;
    buf_init(&text);
    const char *why;
    int rc = resolve(b, href, len, 0, mode, &text, &why);
    if (rc == URL_FILTERED)
        rc = -EINVAL; /* a base of another scheme would leave nothing to crawl */
    if (rc != 0) {
        buf_finish(&text);
        return rc;
    }
    size_t n = text.len;
    base_init(next, buf_detach(&text), n);
    return 0;
}

int url_base_create(const char *url, size_t len, url_base **out)
{
    url_base *b = malloc(sizeof *b);
    if (b == NULL)
        return -ENOMEM;
    int rc = base_from(b, NULL, url, len, MODE_INPUT);
    if (rc != 0) {
        free(b);
        return rc;
    }
    *out = b;
    return 0;
}

void url_base_destroy(url_base *b)
{
    if (b == NULL)
        return;
    free(b->url);
    free(b);
}

int url_base_rebase(url_base *b, const char *href, size_t len)
{
    url_base next;
    int rc = base_from(&next, b, href, len, MODE_BASE);
    if (rc != 0)
        return rc;
    /* Nothing can fail from here on. */
    free(b->url);
    *b = next;
    return 0;
}

int url_resolve(const url_base *b, const char *href, size_t len, unsigned flags, struct buf *out)
{
    const char *why;
    return resolve(b, href, len, flags, MODE_LINK, out, &why);
}
