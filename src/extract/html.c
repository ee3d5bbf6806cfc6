/* html.c: the tokenizer, a browser's view of start tags and their attributes (WHATWG HTML
 * tokenizer, 13.2.5) reduced to what finds URLs: tags, their attributes, comments, and the
 * elements whose content is raw text. pcre2's JIT finds each place the tokenizer's state can
 * change; the C code here reads what is there and moves past it. */
#include "html.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

/* Every construct that can change the tokenizer's state starts with '<' and one of these: a
 * start tag, an end tag or stray "</", a comment or doctype, a processing instruction. Any
 * other '<' is text, so the search skips it and the text around it with no C code running. */
static const char scan_pattern[] = "<[!/?A-Za-z]";

/* Far more than the pattern above needs; bounds the work per match all the same. */
#define MATCH_LIMIT 10000000u
#define DEPTH_LIMIT 100000u

struct html_tokenizer {
    pcre2_code *code;
    pcre2_match_context *mctx; /* limits only; never changed after create, so shareable */
    int jit;                   /* code was JIT-compiled */
};

int html_tokenizer_create(html_tokenizer **out, char *err, size_t errlen)
{
    if (out == NULL || (err == NULL && errlen > 0))
        return -EINVAL;
    *out = NULL;
    if (errlen > 0)
        err[0] = '\0';
    html_tokenizer *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return -ENOMEM;
    int errcode;
    PCRE2_SIZE erroff;
    t->code = pcre2_compile((PCRE2_SPTR)scan_pattern, PCRE2_ZERO_TERMINATED, PCRE2_NEVER_UTF,
                            &errcode, &erroff, NULL);
    if (t->code == NULL) {
        html_tokenizer_destroy(t);
        if (errcode == PCRE2_ERROR_NOMEMORY)
            return -ENOMEM;
        if (errlen > 0)
            snprintf(err, errlen, "the tokenizer's pattern: pcre2 error %d", errcode);
        return -EINVAL;
    }
    /* Without JIT (a platform pcre2 cannot JIT for) pcre2_match() interprets the same
     * pattern: slower, never wrong. */
    t->jit = pcre2_jit_compile(t->code, PCRE2_JIT_COMPLETE) == 0;
    t->mctx = pcre2_match_context_create(NULL);
    if (t->mctx == NULL) {
        html_tokenizer_destroy(t);
        return -ENOMEM;
    }
    pcre2_set_match_limit(t->mctx, MATCH_LIMIT);
    pcre2_set_depth_limit(t->mctx, DEPTH_LIMIT);
    *out = t;
    return 0;
}

void html_tokenizer_destroy(html_tokenizer *t)
{
    if (t == NULL)
        return;
    pcre2_match_context_free(t->mctx);
    pcre2_code_free(t->code);
    free(t);
}

enum {
    C_WS = 1,    /* HTML white space: tab, LF, FF, CR, space */
    C_SLASH = 2,
    C_GT = 4,
    C_EQ = 8,
};

static const unsigned char cls[256] = {
    ['\t'] = C_WS, ['\n'] = C_WS, ['\f'] = C_WS, ['\r'] = C_WS, [' '] = C_WS,
    ['/'] = C_SLASH, ['>'] = C_GT, ['='] = C_EQ,
};

/* ASCII letters only: what may follow '<' (or "</") to open a tag. */
static int is_letter(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int name_is(const unsigned char *p, size_t n, const char *lower)
{
    size_t i = 0;
    for (; i < n; i++) {
        unsigned char c = p[i];
        if ((unsigned)(c - 'A') < 26u)
            c |= 0x20;
        if (lower[i] == '\0' || c != (unsigned char)lower[i])
            return 0;
    }
    return lower[i] == '\0';
}

int html_name_is(const char *p, size_t n, const char *lower)
{
    return name_is((const unsigned char *)p, n, lower);
}

/* The elements whose content the tokenizer reads as text up to their end tag (RAWTEXT, RCDATA
 * and script data), so markup inside them is not markup. plaintext has no end tag at all.
 * script comes first because skip_script() handles it. */
static const char *const raw_text_names[] = {
    "script", "style", "textarea", "title", "xmp", "iframe", "noembed", "noframes", "plaintext",
};

static const char *raw_text_name(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < sizeof(raw_text_names) / sizeof(raw_text_names[0]); i++)
        if (name_is(p, n, raw_text_names[i]))
            return raw_text_names[i];
    return NULL;
}

/* Whether "name" (any case) starts at `at` and ends at white space, '/' or '>', as a tag name
 * must for the raw-text states to act on it. */
static int tag_name_at(const unsigned char *h, size_t len, size_t at, const char *name, size_t n)
{
    return len - at > n && name_is(h + at, n, name) && (cls[h[at + n]] & (C_WS | C_SLASH | C_GT));
}

/* Returns where the raw text that starts at `at` ends: the '<' of the first "</name" (any case)
 * followed by white space, '/' or '>', or the end of the page. The end tag itself is left for
 * the main loop, which reads it like any other. */
static size_t skip_raw_text(const unsigned char *h, size_t len, size_t at, const char *name)
{
    size_t n = strlen(name);
    if (strcmp(name, "plaintext") == 0)
        return len;
    while (at < len) {
        const unsigned char *lt = memchr(h + at, '<', len - at);
        if (lt == NULL)
            break;
        size_t i = (size_t)(lt - h);
        if (i + 1 < len && h[i + 1] == '/' && tag_name_at(h, len, i + 2, name, n))
            return i;
        at = i + 1;
    }
    return len;
}

/* skip_raw_text() for script, whose content has escape states of its own (13.2.5.4, 15-31):
 * after "<!--", a "<script" makes the next "</script" part of the script rather than its
 * end, which is how legacy pages document.write() a script from inside a script. */
static size_t skip_script(const unsigned char *h, size_t len, size_t at)
{
    enum { DATA, ESCAPED, DOUBLE_ESCAPED } state = DATA;
    size_t i = at;
    while (i < len) {
        if (state == DATA) {
            const unsigned char *lt = memchr(h + i, '<', len - i);
            if (lt == NULL)
                break;
            i = (size_t)(lt - h);
            if (i + 1 < len && h[i + 1] == '/' && tag_name_at(h, len, i + 2, "script", 6))
                return i;
            if (len - i >= 4 && memcmp(h + i, "<!--", 4) == 0) {
                state = ESCAPED;
                i += 2; /* its dashes count towards "-->", so "<!-->" opens and closes */
            } else {
                i++;
            }
            continue;
        }
        if (h[i] == '-' && len - i >= 3 && h[i + 1] == '-' && h[i + 2] == '>') {
            state = DATA;
            i += 3;
            continue;
        }
        if (h[i] == '<' && i + 1 < len) {
            if (state == ESCAPED && h[i + 1] == '/' && tag_name_at(h, len, i + 2, "script", 6))
                return i;
            if (state == ESCAPED && tag_name_at(h, len, i + 1, "script", 6)) {
                state = DOUBLE_ESCAPED;
                i += 7;
                continue;
            }
            if (state == DOUBLE_ESCAPED && h[i + 1] == '/' &&
                tag_name_at(h, len, i + 2, "script", 6)) {
                state = ESCAPED;
                i += 8;
                continue;
            }
        }
        i++;
    }
    return len;
}

/* Returns the end of the comment whose "<!--" is at `at`: after "-->" or "--!>", right after
 * "<!-->" or "<!--->" (abruptly closed empty comments), or the end of the page. */
static size_t skip_comment(const unsigned char *h, size_t len, size_t at)
{
    size_t data = at + 4; /* the closing dashes may not be the opening ones, but for those two */
    if (data < len && h[data] == '>')
        return data + 1;
    if (len - data >= 2 && h[data] == '-' && h[data + 1] == '>')
        return data + 2;
    for (size_t i = data; i < len;) {
        const unsigned char *gt = memchr(h + i, '>', len - i);
        if (gt == NULL)
            break;
        size_t j = (size_t)(gt - h);
        if (j >= data + 2 && h[j - 1] == '-' && h[j - 2] == '-')
            return j + 1;
        if (j >= data + 3 && h[j - 1] == '!' && h[j - 2] == '-' && h[j - 3] == '-')
            return j + 1;
        i = j + 1;
    }
    return len;
}

/* Returns the offset after the first '>' at or after `at` (the end of a bogus comment or a
 * doctype), or the end of the page. */
static size_t skip_past_gt(const unsigned char *h, size_t len, size_t at)
{
    const unsigned char *gt = at < len ? memchr(h + at, '>', len - at) : NULL;
    return gt == NULL ? len : (size_t)(gt - h) + 1;
}

/* Reads the tag whose name starts at `at`, as the tokenizer's tag, attribute name and value
 * states do, reporting each attribute to `hd` when it is a start tag (hd != NULL). Returns the
 * offset after its '>'; 0 when the page ends inside the tag (an unterminated quote, say),
 * where the tokenizer drops the tag and there is nothing after it; or 0 with *stop set when a
 * callback stops the scan. */
static size_t read_tag(const unsigned char *h, size_t len, size_t at, struct html_tag *t,
                       const struct html_handler *hd, int *stop)
{
    const unsigned char *p = h + at, *end = h + len;
    t->name = (const char *)p;
    while (p < end && !(cls[*p] & (C_WS | C_SLASH | C_GT)))
        p++;
    t->len = (size_t)(p - (const unsigned char *)t->name);

    for (;;) {
        /* Before an attribute name: a '/' not followed by '>' is only a parse error. */
        while (p < end && (cls[*p] & (C_WS | C_SLASH)))
            p++;
        if (p == end)
            return 0;
        if (*p == '>')
            return (size_t)(p - h) + 1;

        /* The name's first character may be anything left, even '=' or a quote. */
        const unsigned char *name = p++;
        while (p < end && !(cls[*p] & (C_WS | C_SLASH | C_GT | C_EQ)))
            p++;
        size_t name_len = (size_t)(p - name);

        while (p < end && (cls[*p] & C_WS))
            p++;
        if (p == end)
            return 0;
        const unsigned char *value = NULL;
        size_t value_len = 0;
        if (*p == '=') {
            p++;
            while (p < end && (cls[*p] & C_WS))
                p++;
            if (p == end)
                return 0;
            value = p;
            if (*p == '"' || *p == '\'') {
                const unsigned char *q = memchr(p + 1, *p, (size_t)(end - p - 1));
                if (q == NULL)
                    return 0;
                value = p + 1;
                value_len = (size_t)(q - value);
                p = q + 1;
            } else {
                /* Unquoted; straight after '=', a '>' ends the tag and leaves the value
                 * empty. */
                while (p < end && !(cls[*p] & (C_WS | C_GT)))
                    p++;
                value_len = (size_t)(p - value);
            }
        } /* else no value; what follows is '/', '>' or the next name */
        if (hd != NULL) {
            int rc = hd->attr(hd->ctx, t, (const char *)name, name_len, (const char *)value,
                              value_len);
            if (rc != 0) {
                *stop = rc;
                return 0;
            }
        }
    }
}

/* Handles the start tag whose name starts at `at`: reports it, then skips the content of a
 * raw-text element. Returns where scanning resumes; a callback's stop value goes to *stop
 * (and the scan resumes at the end of the page). */
static size_t start_tag(const unsigned char *h, size_t len, size_t at,
                        const struct html_handler *hd, int *stop)
{
    struct html_tag t;
    size_t next = read_tag(h, len, at, &t, hd, stop);
    if (next == 0)
        return len;
    int rc = hd->tag_end(hd->ctx, &t);
    if (rc != 0) {
        *stop = rc;
        return len;
    }
    if (t.len >= 3 && t.len <= 9) {
        const char *raw = raw_text_name((const unsigned char *)t.name, t.len);
        if (raw == raw_text_names[0])
            next = skip_script(h, len, next);
        else if (raw != NULL)
            next = skip_raw_text(h, len, next, raw);
    }
    return next;
}

int html_errno_from_pcre2(int rc)
{
    switch (rc) {
    case PCRE2_ERROR_NOMEMORY:
        return -ENOMEM;
    case PCRE2_ERROR_MATCHLIMIT:
    case PCRE2_ERROR_DEPTHLIMIT:
    case PCRE2_ERROR_HEAPLIMIT:
    case PCRE2_ERROR_JIT_STACKLIMIT:
        return -ERANGE; /* the page made the pattern do too much work */
    default:
        return -EIO;
    }
}

int html_scan(const html_tokenizer *tk, const char *html, size_t len, const struct html_handler *hd)
{
    if (tk == NULL || hd == NULL || hd->attr == NULL || hd->tag_end == NULL ||
        (html == NULL && len > 0))
        return -EINVAL;
    if (len == 0)
        return 0;
    const unsigned char *h = (const unsigned char *)html;
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(tk->code, NULL);
    if (md == NULL)
        return -ENOMEM;
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
    int result = 0;
    size_t pos = 0;

    while (pos < len && result == 0) {
        int rc = tk->jit ? pcre2_jit_match(tk->code, (PCRE2_SPTR)html, len, pos, 0, md, tk->mctx)
                         : pcre2_match(tk->code, (PCRE2_SPTR)html, len, pos, 0, md, tk->mctx);
        if (rc == PCRE2_ERROR_NOMATCH)
            break;
        if (rc < 0) {
            result = html_errno_from_pcre2(rc);
            break;
        }
        size_t at = ov[0];
        unsigned char c = h[at + 1]; /* the pattern matched two bytes */
        if (is_letter(c)) {
            pos = start_tag(h, len, at + 1, hd, &result);
        } else if (c == '!') {
            if (len - at >= 4 && h[at + 2] == '-' && h[at + 3] == '-')
                pos = skip_comment(h, len, at);
            else
                pos = skip_past_gt(h, len, at + 2); /* doctype, CDATA, bogus comment */
        } else if (c == '/' && at + 2 < len && is_letter(h[at + 2])) {
            struct html_tag t; /* an end tag: attributes are tokenized, then dropped */
            pos = read_tag(h, len, at + 2, &t, NULL, &result);
            if (pos == 0)
                pos = len;
        } else if (c == '/' && at + 2 == len) {
            pos = len; /* "</" at the very end is text */
        } else {
            pos = skip_past_gt(h, len, at + 2); /* "<?...>", "</>", "</ ...>" */
        }
    }
    pcre2_match_data_free(md);
    return result;
}
