/* url_resolve_tool: resolves "base<TAB>href" lines from stdin with url.c, for url_diff.js.
 *
 * In both fields "\\", "\t", "\n", "\r" and "\xHH" stand for a backslash, a tab, LF, CR and
 * any byte, so that a value can hold what would end a line or a field. For each line it
 * prints "OK<TAB>url", "FILTERED" or "ERROR". When the href is an absolute http(s) URL
 * ("http://..." in any case, with either slash), it also normalises it as an input line and
 * prints "INCONSISTENT<TAB>resolved<TAB>input" if the two ways disagree.
 *
 * Usage: url_resolve_tool [-k]   (-k: URL_KEEP_FRAGMENT) */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "url.h"

static int hex(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes the escapes of s[0..n) into `out`. 0, or -1 for a malformed escape. */
static int unescape(const char *s, size_t n, struct buf *out)
{
    buf_clear(out);
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '\\' && i + 1 < n) {
            char e = s[++i];
            if (e == 't') {
                c = '\t';
            } else if (e == 'n') {
                c = '\n';
            } else if (e == 'r') {
                c = '\r';
            } else if (e == '\\') {
                c = '\\';
            } else if (e == 'x' && i + 2 < n && hex(s[i + 1]) >= 0 && hex(s[i + 2]) >= 0) {
                c = (char)(hex(s[i + 1]) << 4 | hex(s[i + 2]));
                i += 2;
            } else {
                return -1;
            }
        }
        if (buf_putc(out, c) != 0)
            return -1;
    }
    return 0;
}

/* True if s[0..n), as the URL parser cleans it, starts with "http://" or "https://" in any
 * case and with either slash: a URL that does not depend on its base. */
static bool is_absolute_http(const char *s, size_t n)
{
    char head[9];
    size_t k = 0;
    size_t i = 0;
    while (i < n && (unsigned char)s[i] <= 0x20)
        i++;
    for (; i < n && k < sizeof head - 1; i++) {
        if (s[i] != '\t' && s[i] != '\n' && s[i] != '\r')
            head[k++] = s[i] == '\\' ? '/' : s[i];
    }
    head[k] = '\0';
    return strncasecmp(head, "http://", 7) == 0 || strncasecmp(head, "https://", 8) == 0;
}

int main(int argc, char **argv)
{
    unsigned flags = argc > 1 && strcmp(argv[1], "-k") == 0 ? URL_KEEP_FRAGMENT : 0;
    struct buf base_text, href, out, input;
    buf_init(&base_text);
    buf_init(&href);
    buf_init(&out);
    buf_init(&input);
    char *cached = NULL; /* the escaped base text `base` was made from */
    url_base *base = NULL;
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    int status = 0;
    while ((got = getline(&line, &cap, stdin)) > 0) {
        size_t n = (size_t)got;
        if (line[n - 1] == '\n')
            line[--n] = '\0';
        char *tab = memchr(line, '\t', n);
        if (tab == NULL) {
            fprintf(stderr, "url_resolve_tool: no tab in line: %s\n", line);
            status = 2;
            break;
        }
        *tab = '\0';
        if (cached == NULL || strcmp(cached, line) != 0) {
            url_base_destroy(base);
            base = NULL;
            free(cached);
            cached = strdup(line);
            if (cached == NULL || unescape(line, strlen(line), &base_text) != 0 ||
                url_base_create(base_text.data, base_text.len, &base) != 0) {
                fprintf(stderr, "url_resolve_tool: bad base: %s\n", line);
                status = 2;
                break;
            }
        }
        const char *h = tab + 1;
        if (unescape(h, n - (size_t)(h - line), &href) != 0) {
            fprintf(stderr, "url_resolve_tool: bad escape: %s\n", h);
            status = 2;
            break;
        }
        const char *text = href.data != NULL ? href.data : "";
        buf_clear(&out);
        int rc = url_resolve(base, text, href.len, flags, &out);
        if (is_absolute_http(text, href.len)) {
            buf_clear(&input);
            const char *why;
            int irc = url_normalize_input(text, href.len, &input, &why);
            /* Input lines lose their fragment; compare without it. */
            size_t rlen = out.len;
            if (rc == URL_OK && (flags & URL_KEEP_FRAGMENT)) {
                const char *hash = memchr(out.data, '#', out.len);
                if (hash != NULL)
                    rlen = (size_t)(hash - out.data);
            }
            bool same = (rc == URL_OK) == (irc == 0) &&
                        (irc != 0 || (rlen == input.len && memcmp(out.data, input.data, rlen) == 0));
            if (!same) {
                const char *r = rc == URL_OK ? out.data : "ERROR";
                printf("INCONSISTENT\t%.*s\t%s\n", (int)(rc == URL_OK ? rlen : strlen(r)), r,
                       irc == 0 ? input.data : "ERROR");
                continue;
            }
        }
        if (rc == URL_OK)
            printf("OK\t%s\n", out.data);
        else if (rc == URL_FILTERED)
            printf("FILTERED\n");
        else if (rc == -EINVAL)
            printf("ERROR\n");
        else
            printf("FAIL %d\n", rc);
    }
    free(line);
    free(cached);
    url_base_destroy(base);
    buf_finish(&base_text);
    buf_finish(&href);
    buf_finish(&out);
    buf_finish(&input);
    return status;
}
