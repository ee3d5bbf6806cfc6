/* url.c: resolution and normalisation of URLs on top of curl's URL API.
 *
 * curl does the RFC 3986 merge of a reference with its base. What curl does not do, or does
 * differently from a browser, is handled on either side of it:
 *
 *   before curl  the WHATWG clean-up of the raw value (trim, drop tab/LF/CR), the scheme and
 *                slash rules of special schemes ("http:foo", "\\host", "////host"), the
 *                fragment (curl 7.88 resolves "#x" and "" wrongly), the merge of a relative
 *                path with the base's directory (curl 7.88 loses the "//" of ".//x"), and
 *                percent-encoding of bytes curl would refuse (space, controls, non-ASCII);
 *   after curl   lower-case host, WHATWG IPv6 serialisation, empty userinfo dropped, dot
 *                segments spelled with %2e, upper-case escape hex, an empty query kept.
 *
 * The base is parsed by curl once, in url_base_create; each link costs one curl_url_dup, one
 * curl_url_set and one curl_url_get. */
#include "url.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum scheme { SCHEME_NONE, SCHEME_HTTP, SCHEME_HTTPS, SCHEME_OTHER };

struct url_base {
    CURLU *h;         /* the base as curl parsed it; copied for every link */
    char *url;        /* its normalised text, never with a fragment */
    size_t len;
    size_t dir, dir_len; /* url[dir..dir+dir_len): its path up to the last '/' */
    enum scheme scheme;
};

/* What resolve() should do with the reference it is given. */
enum mode {
    MODE_LINK,  /* an href against a base */
    MODE_INPUT, /* an input line: must be an absolute http(s) URL, no base */
};

static const char why_not_http[] = "not an absolute http or https URL";
static const char why_malformed[] = "malformed URL";
static const char why_no_host[] = "URL has no host";
static const char why_bad_host[] = "bad host name";
static const char why_bad_port[] = "bad port number";
static const char why_idn[] = "international host names are not supported yet";
static const char why_nomem[] = "out of memory";

static const char hexdigits[] = "0123456789ABCDEF";

static bool is_hex(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
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

/* The bytes url.h promises never to print raw. A browser's sets differ by component (it
 * leaves '`', '{', '}' alone in a query, and escapes "'" there); one set for all components
 * keeps the rule simple and every printed URL safe to split on white space. */
static bool must_escape(unsigned char c)
{
    return c <= 0x20 || c >= 0x7F || c == '"' || c == '<' || c == '>' || c == '`' || c == '{' ||
           c == '}';
}

static bool is_slash(char c)
{
    return c == '/' || c == '\\';
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

static bool escape_for(enum esc set, unsigned char c)
{
    switch (set) {
    case ESC_USERINFO:
        if (strchr("/:;=@[\\]^|", c) != NULL && c != '\0')
            return true;
        return must_escape(c);
    case ESC_MINIMAL:
        return c <= 0x20 || c >= 0x7F;
    default:
        return must_escape(c);
    }
}

/* Appends s[0..n) with the bytes of `set` percent-encoded and the hex of existing escapes in
 * upper case (except in ESC_MINIMAL, which changes nothing else); a '%' not followed by two
 * hex digits is kept, as browsers keep it. With `backslash`, '\' is written as '/' (the
 * path of a special scheme). 0 or -ENOMEM. */
static int put_escaped(struct buf *out, const char *s, size_t n, enum esc set, bool backslash)
{
    if (n > SIZE_MAX / 4)
        return -ENOMEM;
    int rc = buf_reserve(out, 3 * n);
    if (rc != 0)
        return rc;
    char *d = out->data + out->len;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '%' && set != ESC_MINIMAL && n - i >= 3 && is_hex((unsigned char)s[i + 1]) &&
            is_hex((unsigned char)s[i + 2])) {
            *d++ = '%';
            *d++ = (char)to_upper((unsigned char)s[i + 1]);
            *d++ = (char)to_upper((unsigned char)s[i + 2]);
            i += 2;
        } else if (escape_for(set, c)) {
            *d++ = '%';
            *d++ = hexdigits[c >> 4];
            *d++ = hexdigits[c & 15];
        } else if (backslash && c == '\\') {
            *d++ = '/';
        } else {
            *d++ = (char)c;
        }
    }
    out->len = (size_t)(d - out->data);
    *d = '\0';
    return 0;
}

/* 1 for a "." segment, 2 for "..", with %2e counting as a dot as the WHATWG parser counts
 * it; 0 otherwise. */
static int dot_segment(const char *s, size_t n)
{
    int dots = 0;
    size_t i = 0;
    while (i < n && dots < 3) {
        if (s[i] == '.') {
            i++;
        } else if (n - i >= 3 && s[i] == '%' && s[i + 1] == '2' &&
                   to_lower((unsigned char)s[i + 2]) == 'e') {
            i += 3;
        } else {
            return 0;
        }
        dots++;
    }
    return dots <= 2 ? dots : 0;
}

/* Appends the absolute path p[0..n) (p[0] == '/') with dot segments removed and escapes
 * normalised. curl has removed literal dot segments already; this pass catches the
 * percent-encoded ones, which curl leaves and browsers do not. */
static int put_path(struct buf *out, const char *p, size_t n)
{
    size_t start = out->len;
    size_t i = 0;
    int rc;
    while (i < n) {
        size_t j = i + 1;
        while (j < n && p[j] != '/')
            j++;
        const char *seg = p + i + 1;
        size_t seglen = j - i - 1;
        int dots = dot_segment(seg, seglen);
        if (dots == 2) {
            size_t len = out->len;
            while (len > start && out->data[len - 1] != '/')
                len--;
            if (len > start)
                len--;
            truncate_to(out, len);
        }
        if (dots == 0) {
            if ((rc = buf_putc(out, '/')) != 0 ||
                (rc = put_escaped(out, seg, seglen, ESC_URL, false)) != 0)
                return rc;
        } else if (j >= n) {
            /* "/a/.." names the directory "/", as "/a/" does. */
            if ((rc = buf_putc(out, '/')) != 0)
                return rc;
        }
        i = j;
    }
    return out->len == start ? buf_putc(out, '/') : 0;
}

/* Appends the bracketed IPv6 literal s[0..n) (without brackets) as the WHATWG URL Standard
 * serialises it: lower-case hex, no leading zeros, the longest run of zero pieces as "::".
 * Zone identifiers are refused, as browsers refuse them. 0, -EINVAL or -ENOMEM. */
static int put_ipv6(struct buf *out, const char *s, size_t n)
{
    char text[INET6_ADDRSTRLEN + 1];
    unsigned char addr[16];
    if (n >= sizeof text || memchr(s, '%', n) != NULL)
        return -EINVAL;
    memcpy(text, s, n);
    text[n] = '\0';
    if (inet_pton(AF_INET6, text, addr) != 1)
        return -EINVAL;

    unsigned piece[8];
    for (int k = 0; k < 8; k++)
        piece[k] = (unsigned)addr[2 * k] << 8 | addr[2 * k + 1];
    int compress = -1, longest = 1;
    for (int k = 0; k < 8;) {
        if (piece[k] != 0) {
            k++;
            continue;
        }
        int end = k;
        while (end < 8 && piece[end] == 0)
            end++;
        if (end - k > longest) {
            compress = k;
            longest = end - k;
        }
        k = end;
    }

    char res[48];
    size_t len = 0;
    res[len++] = '[';
    bool ignore0 = false;
    for (int k = 0; k < 8; k++) {
        if (ignore0 && piece[k] == 0)
            continue;
        ignore0 = false;
        if (k == compress) {
            res[len++] = ':';
            if (k == 0)
                res[len++] = ':';
            ignore0 = true;
            continue;
        }
        len += (size_t)snprintf(res + len, sizeof res - len, "%x", piece[k]);
        if (k != 7)
            res[len++] = ':';
    }
    res[len++] = ']';
    return buf_append(out, res, len);
}

/* Appends host s[0..n), as curl returned it (percent-decoded), in lower case. Refuses the
 * code points the WHATWG URL Standard forbids in a domain (curl lets '|' through) and, until
 * IDNA support arrives, anything not ASCII. */
static int put_host(struct buf *out, const char *s, size_t n, const char **why)
{
    if (n >= 2 && s[0] == '[' && s[n - 1] == ']') {
        int rc = put_ipv6(out, s + 1, n - 2);
        if (rc == -EINVAL)
            *why = why_bad_host;
        return rc;
    }
    if (n == 0) {
        *why = why_no_host;
        return -EINVAL;
    }
    int rc = buf_reserve(out, n);
    if (rc != 0)
        return rc;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x80) {
            *why = why_idn;
            return -EINVAL;
        }
        if (c <= 0x20 || c == 0x7F || strchr("#/:<>?@[\\]^|%", c) != NULL) {
            *why = why_bad_host;
            return -EINVAL;
        }
        out->data[out->len++] = (char)to_lower(c);
    }
    out->data[out->len] = '\0';
    return 0;
}

/* Appends the userinfo s[0..n) (without its '@'): user name and password escaped apart, so
 * that only the first ':' separates them. */
static int put_userinfo(struct buf *out, const char *s, size_t n)
{
    const char *colon = memchr(s, ':', n);
    size_t user = colon != NULL ? (size_t)(colon - s) : n;
    int rc = put_escaped(out, s, user, ESC_USERINFO, false);
    if (rc != 0 || colon == NULL)
        return rc;
    if ((rc = buf_putc(out, ':')) != 0)
        return rc;
    return put_escaped(out, colon + 1, n - user - 1, ESC_USERINFO, false);
}

/* Appends the URL curl produced, u[0..n), normalised (see the top of the file). Returns 0,
 * -EINVAL with *why set, or -ENOMEM. */
static int put_curl_url(struct buf *out, const char *u, size_t n, bool empty_query,
                        const char **why)
{
    const char *end = u + n;
    const char *p = memchr(u, ':', n);
    if (p == NULL || end - p < 3 || p[1] != '/' || p[2] != '/') {
        *why = why_malformed;
        return -EINVAL;
    }
    int rc = buf_reserve(out, (size_t)(p - u) + 3);
    if (rc != 0)
        return rc;
    for (const char *s = u; s < p; s++)
        out->data[out->len++] = (char)to_lower((unsigned char)*s);
    memcpy(out->data + out->len, "://", 4);
    out->len += 3;

    const char *auth = p + 3;
    const char *auth_end = auth;
    while (auth_end < end && *auth_end != '/' && *auth_end != '?' && *auth_end != '#')
        auth_end++;
    const char *host = auth;
    for (const char *s = auth; s < auth_end; s++)
        if (*s == '@')
            host = s + 1;
    if (host > auth) {
        /* Browsers drop an empty password, and the '@' when nothing is left. */
        const char *ui_end = host - 1;
        const char *colon = memchr(auth, ':', (size_t)(ui_end - auth));
        if (colon != NULL && colon + 1 == ui_end)
            ui_end = colon;
        if (ui_end > auth) {
            if ((rc = put_userinfo(out, auth, (size_t)(ui_end - auth))) != 0 ||
                (rc = buf_putc(out, '@')) != 0)
                return rc;
        }
    }
    const char *host_end = auth_end;
    if (host < auth_end && *host == '[') {
        const char *close = memchr(host, ']', (size_t)(auth_end - host));
        if (close == NULL) {
            *why = why_bad_host;
            return -EINVAL;
        }
        host_end = close + 1;
    } else {
        const char *colon = memchr(host, ':', (size_t)(auth_end - host));
        if (colon != NULL)
            host_end = colon;
    }
    if ((rc = put_host(out, host, (size_t)(host_end - host), why)) != 0)
        return rc;
    /* curl has already made the port canonical and dropped a default one. */
    if ((rc = buf_append(out, host_end, (size_t)(auth_end - host_end))) != 0)
        return rc;

    const char *path_end = auth_end;
    while (path_end < end && *path_end != '?' && *path_end != '#')
        path_end++;
    if (path_end > auth_end)
        rc = put_path(out, auth_end, (size_t)(path_end - auth_end));
    else
        rc = buf_putc(out, '/');
    if (rc != 0)
        return rc;

    const char *query_end = path_end;
    while (query_end < end && *query_end != '#')
        query_end++;
    if (query_end > path_end)
        rc = put_escaped(out, path_end, (size_t)(query_end - path_end), ESC_URL, false);
    else if (empty_query)
        rc = buf_putc(out, '?'); /* curl 7.88 drops an empty query; a browser keeps it */
    return rc;
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
        if (!is_alpha(c) && !(c >= '0' && c <= '9') && c != '+' && c != '-' && c != '.')
            return 0;
    }
    return 0;
}

/* Appends, for curl, the part of a reference that follows its slashes: authority, path and
 * query, s[0..n) (fragment already cut off). Userinfo, path and query get their escapes
 * normalised and the bytes curl refuses encoded; a backslash is '/' up to the query. The
 * host and port are left raw for curl to judge, once the bytes it cannot see are refused.
 * Sets *empty_query when the query is present but empty. */
static int put_authority_ref(struct buf *out, const char *s, size_t n, bool *empty_query,
                             const char **why)
{
    size_t auth_end = 0;
    while (auth_end < n && s[auth_end] != '/' && s[auth_end] != '\\' && s[auth_end] != '?')
        auth_end++;
    size_t host = 0;
    for (size_t i = 0; i < auth_end; i++)
        if (s[i] == '@')
            host = i + 1;
    int rc;
    if (host > 0 && (rc = put_userinfo(out, s, host - 1)) != 0)
        return rc;
    if (host > 0 && (rc = buf_putc(out, '@')) != 0)
        return rc;
    /* curl reads a C string: a NUL here would end the URL early, so judge such bytes now. */
    for (size_t i = host; i < auth_end; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x80 || c <= 0x20 || c == 0x7F) {
            *why = c >= 0x80 ? why_idn : why_bad_host;
            return -EINVAL;
        }
    }
    if ((rc = buf_append(out, s + host, auth_end - host)) != 0)
        return rc;
    const char *q = memchr(s + auth_end, '?', n - auth_end);
    size_t query = q != NULL ? (size_t)(q - s) : n;
    if ((rc = put_escaped(out, s + auth_end, query - auth_end, ESC_URL, true)) != 0)
        return rc;
    *empty_query = q != NULL && query + 1 == n;
    return put_escaped(out, s + query, n - query, ESC_URL, false);
}

/* Maps a curl error to ours. */
static int curl_error(CURLUcode uc, const char **why)
{
    switch (uc) {
    case CURLUE_OUT_OF_MEMORY:
        *why = why_nomem;
        return -ENOMEM;
    case CURLUE_NO_HOST:
        *why = why_no_host;
        return -EINVAL;
    case CURLUE_BAD_PORT_NUMBER:
        *why = why_bad_port;
        return -EINVAL;
    case CURLUE_BAD_HOSTNAME:
    case CURLUE_BAD_IPV6:
        *why = why_bad_host;
        return -EINVAL;
    default:
        *why = why_malformed;
        return -EINVAL;
    }
}

/* Resolves the raw reference href[0..len) against `b` (NULL in MODE_INPUT) and appends the
 * result to `out`. URL_OK, URL_FILTERED, or a negative error with *why set; on anything but
 * URL_OK `out` keeps its old length. `clean` (the value without tab/LF/CR, when it had any)
 * and `scratch` (the text handed to curl) are working memory the caller owns. */
static int resolve(const url_base *b, const char *href, size_t len, unsigned flags, enum mode mode,
                   struct buf *out, struct buf *clean, struct buf *scratch, const char **why)
{
    /* WHATWG: trim C0 controls and space at both ends, drop tab/LF/CR everywhere. */
    while (len > 0 && (unsigned char)href[0] <= 0x20) {
        href++;
        len--;
    }
    while (len > 0 && (unsigned char)href[len - 1] <= 0x20)
        len--;
    buf_clear(clean);
    buf_clear(scratch);
    int rc;
    for (size_t i = 0; i < len; i++) {
        if (href[i] == '\t' || href[i] == '\n' || href[i] == '\r') {
            for (size_t j = 0; j < len; j++) {
                if (href[j] != '\t' && href[j] != '\n' && href[j] != '\r' &&
                    (rc = buf_putc(clean, href[j])) != 0)
                    return rc;
            }
            href = clean->data != NULL ? clean->data : "";
            len = clean->len;
            break;
        }
    }
    size_t old_len = out->len;

    const char *hash = memchr(href, '#', len);
    size_t frag = hash != NULL ? (size_t)(hash - href) : len;
    size_t slen = scheme_len(href, frag);
    enum scheme scheme = slen > 0 ? scheme_of(href, slen) : SCHEME_NONE;

    if (scheme == SCHEME_OTHER || (scheme == SCHEME_NONE && mode == MODE_INPUT)) {
        if (mode == MODE_INPUT || !(flags & URL_ALL_SCHEMES)) {
            *why = why_not_http;
            return mode == MODE_INPUT ? -EINVAL : URL_FILTERED;
        }
        rc = buf_reserve(out, slen + 1);
        if (rc != 0)
            return rc;
        for (size_t i = 0; i < slen; i++)
            out->data[out->len++] = (char)to_lower((unsigned char)href[i]);
        out->data[out->len] = '\0';
        rc = put_escaped(out, href + slen, len - slen, ESC_MINIMAL, false);
        if (rc != 0)
            truncate_to(out, old_len);
        return rc != 0 ? rc : URL_OK;
    }

    /* A special scheme equal to the base's makes the rest a relative reference ("http:foo"
     * is "foo"); otherwise the authority follows, after any number of slashes. */
    size_t body = scheme != SCHEME_NONE ? slen + 1 : 0;
    bool absolute = scheme != SCHEME_NONE && (b == NULL || scheme != b->scheme);
    if (!absolute && frag - body >= 2 && is_slash(href[body]) && is_slash(href[body + 1]))
        absolute = true; /* a network-path reference: "//host", "\\host", "////host" */
    if (!absolute && body == frag) {
        /* Empty, or fragment only: the document itself. curl 7.88 gets these wrong. */
        if (hash != NULL && !(flags & URL_KEEP_FRAGMENT))
            return URL_FILTERED;
        if ((rc = buf_append(out, b->url, b->len)) != 0)
            goto fail;
        if (hash != NULL && (flags & URL_KEEP_FRAGMENT) &&
            (rc = put_escaped(out, hash, len - frag, ESC_URL, false)) != 0)
            goto fail;
        return URL_OK;
    }

    bool empty_query = false;
    if (absolute) {
        while (body < frag && is_slash(href[body]))
            body++;
        if (scheme != SCHEME_NONE) {
            rc = buf_append_str(scratch, scheme == SCHEME_HTTPS ? "https://" : "http://");
        } else {
            rc = buf_append(scratch, "//", 2);
        }
        if (rc == 0)
            rc = put_authority_ref(scratch, href + body, frag - body, &empty_query, why);
        if (rc != 0)
            return rc;
    } else {
        const char *rel = href + body;
        size_t n = frag - body;
        const char *q = memchr(rel, '?', n);
        size_t query = q != NULL ? (size_t)(q - rel) : n;
        /* The merge of RFC 3986, 5.2.3, done here: curl 7.88 strips a leading "./" or
         * "../" of a relative path itself and loses the empty segment in ".//x", and would
         * read "a:b" as a scheme. curl resolves the absolute path it gets correctly. */
        if (query > 0 && !is_slash(rel[0]) &&
            (rc = buf_append(scratch, b->url + b->dir, b->dir_len)) != 0)
            return rc;
        if ((rc = put_escaped(scratch, rel, query, ESC_URL, true)) != 0 ||
            (rc = put_escaped(scratch, rel + query, n - query, ESC_URL, false)) != 0)
            return rc;
        empty_query = q != NULL && query + 1 == n;
    }

    CURLU *h = b != NULL ? curl_url_dup(b->h) : curl_url();
    if (h == NULL)
        return -ENOMEM;
    char *res = NULL;
    CURLUcode uc = curl_url_set(h, CURLUPART_URL, scratch->data, 0);
    if (uc == CURLUE_OK)
        uc = curl_url_get(h, CURLUPART_URL, &res, CURLU_NO_DEFAULT_PORT);
    curl_url_cleanup(h);
    if (uc != CURLUE_OK)
        return curl_error(uc, why);
    rc = put_curl_url(out, res, strlen(res), empty_query, why);
    curl_free(res);
    if (rc != 0)
        goto fail;
    if (hash != NULL && (flags & URL_KEEP_FRAGMENT) &&
        (rc = put_escaped(out, hash, len - frag, ESC_URL, false)) != 0)
        goto fail;
    return URL_OK;

fail:
    if (rc == -ENOMEM)
        *why = why_nomem;
    truncate_to(out, old_len);
    return rc;
}

int url_normalize_input(const char *text, size_t len, struct buf *out, const char **why)
{
    const char *ignored;
    if (why == NULL)
        why = &ignored;
    struct buf clean, scratch;
    buf_init(&clean);
    buf_init(&scratch);
    size_t old_len = out->len;
    int rc = resolve(NULL, text, len, 0, MODE_INPUT, out, &clean, &scratch, why);
    buf_finish(&clean);
    buf_finish(&scratch);
    if (rc == -ENOMEM)
        *why = why_nomem; /* not every path out of resolve() says so */
    if (rc < 0)
        truncate_to(out, old_len);
    return rc < 0 ? rc : 0;
}

/* Makes a base of the normalised absolute URL `url` (NUL-terminated at url[len]), taking
 * ownership of it on success. */
static int base_init(url_base *b, char *url, size_t len)
{
    CURLU *h = curl_url();
    if (h == NULL)
        return -ENOMEM;
    CURLUcode uc = curl_url_set(h, CURLUPART_URL, url, 0);
    if (uc != CURLUE_OK) {
        curl_url_cleanup(h);
        return uc == CURLUE_OUT_OF_MEMORY ? -ENOMEM : -EINVAL;
    }
    b->h = h;
    b->url = url;
    b->len = len;
    b->scheme = strncmp(url, "https:", 6) == 0 ? SCHEME_HTTPS : SCHEME_HTTP;
    /* A normalised URL has "://", a path starting with '/', and no '?' before it. */
    const char *path = strchr(strstr(url, "://") + 3, '/');
    size_t path_len = strcspn(path, "?");
    size_t dir_len = path_len;
    while (path[dir_len - 1] != '/')
        dir_len--;
    b->dir = (size_t)(path - url);
    b->dir_len = dir_len;
    return 0;
}

/* Normalises `text` as an input URL and makes a base of it in *b. */
static int base_from(url_base *b, const char *text, size_t len)
{
    struct buf norm;
    buf_init(&norm);
    const char *why;
    int rc = url_normalize_input(text, len, &norm, &why);
    if (rc != 0) {
        buf_finish(&norm);
        return rc;
    }
    size_t n = norm.len;
    char *url = buf_detach(&norm);
    rc = base_init(b, url, n);
    if (rc != 0)
        free(url);
    return rc;
}

int url_base_create(const char *url, size_t len, url_base **out)
{
    url_base *b = malloc(sizeof *b);
    if (b == NULL)
        return -ENOMEM;
    int rc = base_from(b, url, len);
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
    curl_url_cleanup(b->h);
    free(b->url);
    free(b);
}

int url_base_rebase(url_base *b, const char *href, size_t len)
{
    struct buf resolved, clean, scratch;
    buf_init(&resolved);
    buf_init(&clean);
    buf_init(&scratch);
    const char *why;
    /* Keeping the fragment means "#x" resolves (to the base) instead of being filtered;
     * base_from drops it again. */
    int rc = resolve(b, href, len, URL_KEEP_FRAGMENT, MODE_LINK, &resolved, &clean, &scratch, &why);
    buf_finish(&clean);
    buf_finish(&scratch);
    if (rc == URL_FILTERED)
        rc = -EINVAL; /* a base of another scheme would leave nothing to crawl */
    url_base next;
    if (rc == 0)
        rc = base_from(&next, resolved.data, resolved.len);
    buf_finish(&resolved);
    if (rc != 0)
        return rc;
    /* Nothing can fail from here on. */
    curl_url_cleanup(b->h);
    free(b->url);
    *b = next;
    return 0;
}

int url_resolve(const url_base *b, const char *href, size_t len, unsigned flags, struct buf *out)
{
    const char *why;
    struct buf clean, scratch;
    buf_init(&clean);
    buf_init(&scratch);
    int rc = resolve(b, href, len, flags, MODE_LINK, out, &clean, &scratch, &why);
    buf_finish(&clean);
    buf_finish(&scratch);
    return rc;
}
