/* links.c: the link extractor, a browser's view of href attributes (WHATWG HTML tokenizer,
 * 13.2.5) reduced to what finds links: tags, their attributes, comments, and the elements
 * whose content is raw text. */
#include "links.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "buf.h"
#include "entities.h"

/* Generous for any sane link pattern, yet bounds the work a pathological one does per match. */
#define MATCH_LIMIT 10000000u
#define DEPTH_LIMIT 100000u
#define JIT_STACK_START (32 * 1024)
#define JIT_STACK_MAX (1024 * 1024)

/* Every construct that can change the tokenizer's state starts with '<' and one of these: a
 * start tag, an end tag or stray "</", a comment or doctype, a processing instruction. Any
 * other '<' is text, so the search skips it and the text around it with no C code running. */
static const char builtin_pattern[] = "<[!/?A-Za-z]";

struct links_extractor {
    pcre2_code *code;
    pcre2_match_context *mctx; /* limits only; never changed after create, so shareable */
    int jit;                   /* code was JIT-compiled */
    int user;                  /* a caller's pattern rather than the built-in scan */
    unsigned flags;            /* enum links_flags */
};

struct scan {
    const links_extractor *x;
    links_fn fn;
    void *ctx;
    struct buf scratch; /* decoded values, reused */
    int base_seen;
    int want_nofollow; /* LINKS_REPORT_NOFOLLOW, and not yet reported */
};

/* Compiles `src` in byte mode, with no way for the pattern to turn UTF on: pages and URLs are
 * often not valid UTF-8, and a UTF-mode match on such input fails instead of scanning it.
 * Returns 0, -ENOMEM, or -EINVAL with "<prefix>pcre2's message at offset N" in err. */
static int compile(const char *src, const char *prefix, pcre2_code **code, char *err,
                   size_t errlen)
{
    int errcode;
    PCRE2_SIZE erroff;
    *code = pcre2_compile((PCRE2_SPTR)src, PCRE2_ZERO_TERMINATED, PCRE2_NEVER_UTF, &errcode,
                          &erroff, NULL);
    if (*code != NULL)
        return 0;
    if (errcode == PCRE2_ERROR_NOMEMORY)
        return -ENOMEM;
    if (errlen > 0) {
        PCRE2_UCHAR msg[256];
        if (pcre2_get_error_message(errcode, msg, sizeof(msg)) < 0)
            snprintf((char *)msg, sizeof(msg), "error %d", errcode);
        snprintf(err, errlen, "%s%s at offset %zu", prefix, (const char *)msg, (size_t)erroff);
    }
    return -EINVAL;
}

int links_extractor_create(const char *pattern, links_extractor **out, char *err, size_t errlen)
{
    return links_extractor_create_flags(pattern, 0, out, err, errlen);
}

int links_extractor_create_flags(const char *pattern, unsigned flags, links_extractor **out,
                                 char *err, size_t errlen)
{
    if (out == NULL || (err == NULL && errlen > 0))
        return -EINVAL;
    *out = NULL;
    if (errlen > 0)
        err[0] = '\0';
    if ((flags & ~(unsigned)LINKS_REPORT_NOFOLLOW) != 0)
        return -EINVAL;

    links_extractor *x = calloc(1, sizeof(*x));
    if (x == NULL)
        return -ENOMEM;
    x->user = pattern != NULL;
    x->flags = flags;

    int rc = compile(x->user ? pattern : builtin_pattern, "link pattern: ", &x->code, err, errlen);
    if (rc != 0) {
        links_extractor_destroy(x);
        return rc;
    }

    if (x->user) {
        uint32_t groups = 0;
        pcre2_pattern_info(x->code, PCRE2_INFO_CAPTURECOUNT, &groups);
        if (groups == 0) {
            if (errlen > 0)
                snprintf(err, errlen, "link pattern: has no capturing group for the link");
            links_extractor_destroy(x);
            return -EINVAL;
        }
    }

    /* Without JIT (a platform pcre2 cannot JIT for, or a pattern JIT rejects) pcre2_match()
     * interprets the same pattern: slower, never wrong. */
    x->jit = pcre2_jit_compile(x->code, PCRE2_JIT_COMPLETE) == 0;

    x->mctx = pcre2_match_context_create(NULL);
    if (x->mctx == NULL) {
        links_extractor_destroy(x);
        return -ENOMEM;
    }
    pcre2_set_match_limit(x->mctx, MATCH_LIMIT);
    pcre2_set_depth_limit(x->mctx, DEPTH_LIMIT);
    *out = x;
    return 0;
}

void links_extractor_destroy(links_extractor *x)
{
    if (x == NULL)
        return;
    pcre2_match_context_free(x->mctx);
    pcre2_code_free(x->code);
    free(x);
}

/* Maps a pcre2 match error to this module's negative errno codes. */
static int errno_from_pcre2(int rc)
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

/* Points *out at an attribute value with its character references decoded: the span in the
 * page when it needs no decoding (the usual case, and no copy), else the decoded text in the
 * scan's scratch buffer, which the next call reuses. */
static int decode(struct scan *s, const char *value, size_t len, const char **out,
                  size_t *out_len)
{
    if (memchr(value, '&', len) == NULL && memchr(value, '\0', len) == NULL) {
        *out = value;
        *out_len = len;
        return 0;
    }
    buf_clear(&s->scratch);
    int rc = entities_decode_attr(value, len, &s->scratch);
    if (rc != 0)
        return rc;
    *out = s->scratch.data != NULL ? s->scratch.data : "";
    *out_len = s->scratch.len;
    return 0;
}

/* Hands one value to the callback, decoded. */
static int emit(struct scan *s, enum links_kind kind, const char *value, size_t len)
{
    const char *v;
    size_t n;
    int rc = decode(s, value, len, &v, &n);
    return rc != 0 ? rc : s->fn(s->ctx, kind, v, n);
}

/* ---- the built-in scan ---- */

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

/* Whether p[0..n) spells `lower` in any ASCII case. OR-ing 0x20 folds only the letters here,
 * since `lower` holds nothing but lower-case letters. */
static int name_is(const unsigned char *p, size_t n, const char *lower)
{
    size_t i = 0;
    for (; i < n; i++)
        if (lower[i] == '\0' || (p[i] | 0x20) != (unsigned char)lower[i])
            return 0;
    return lower[i] == '\0';
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

/* An attribute the scan looks for. HTML keeps the first of duplicate attributes, so once
 * `present` is set a later one of the same name changes nothing. */
struct attr {
    const unsigned char *value; /* NULL when the attribute has no value */
    size_t len;
    int present;
};

struct tag {
    const unsigned char *name;
    size_t name_len;
    struct attr href;
    struct attr meta_name, content; /* only read for <meta> when the caller asks */
};

/* Reads the tag whose name starts at `at`, as the tokenizer's tag, attribute name and value
 * states do; `meta` asks for the name and content attributes of a <meta> tag as well as href.
 * Returns the offset after its '>', or 0 when the page ends inside the tag (an unterminated
 * quote, say): then the tokenizer drops the tag and there is nothing after it. */
static size_t read_tag(const unsigned char *h, size_t len, size_t at, struct tag *t, int meta)
{
    const unsigned char *p = h + at, *end = h + len;
    t->name = p;
    while (p < end && !(cls[*p] & (C_WS | C_SLASH | C_GT)))
        p++;
    t->name_len = (size_t)(p - t->name);
    t->href = t->meta_name = t->content = (struct attr){NULL, 0, 0};
    meta = meta && name_is(t->name, t->name_len, "meta");

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
        struct attr *want = NULL;
        if (name_len == 4 && name_is(name, 4, "href"))
            want = &t->href;
        else if (meta && name_len == 4 && name_is(name, 4, "name"))
            want = &t->meta_name;
        else if (meta && name_len == 7 && name_is(name, 7, "content"))
            want = &t->content;
        if (want != NULL && want->present)
            want = NULL;
        else if (want != NULL)
            want->present = 1;

        while (p < end && (cls[*p] & C_WS))
            p++;
        if (p == end)
            return 0;
        if (*p != '=')
            continue; /* no value; what follows is '/', '>' or the next name */
        p++;
        while (p < end && (cls[*p] & C_WS))
            p++;
        if (p == end)
            return 0;

        const unsigned char *value = p;
        size_t value_len;
        if (*p == '"' || *p == '\'') {
            const unsigned char *q = memchr(p + 1, *p, (size_t)(end - p - 1));
            if (q == NULL)
                return 0;
            value = p + 1;
            value_len = (size_t)(q - value);
            p = q + 1;
        } else {
            /* Unquoted; straight after '=', a '>' ends the tag and leaves the value empty. */
            while (p < end && !(cls[*p] & (C_WS | C_GT)))
                p++;
            value_len = (size_t)(p - value);
        }
        if (want != NULL) {
            want->value = value;
            want->len = value_len;
        }
    }
}

/* Whether a decoded robots content value holds "nofollow" or "none" (which means "noindex,
 * nofollow") as one of its comma or white space separated tokens, in any case. */
static int robots_nofollow(const unsigned char *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        while (i < n && (p[i] == ',' || (cls[p[i]] & C_WS)))
            i++;
        size_t start = i;
        while (i < n && p[i] != ',' && !(cls[p[i]] & C_WS))
            i++;
        if (name_is(p + start, i - start, "nofollow") || name_is(p + start, i - start, "none"))
            return 1;
    }
    return 0;
}

/* Reports a <meta> that tells robots not to follow the page's links: name "robots", or our
 * own product token "areq", compared in any case after decoding, as robots metas are. */
static int meta_nofollow(struct scan *s, const struct tag *t)
{
    if (t->meta_name.value == NULL || t->content.value == NULL)
        return 0;
    const char *v;
    size_t n;
    int rc = decode(s, (const char *)t->meta_name.value, t->meta_name.len, &v, &n);
    if (rc != 0)
        return rc;
    const unsigned char *u = (const unsigned char *)v;
    if (!name_is(u, n, "robots") && !name_is(u, n, "areq"))
        return 0;
    rc = decode(s, (const char *)t->content.value, t->content.len, &v, &n);
    if (rc != 0 || !robots_nofollow((const unsigned char *)v, n))
        return rc;
    s->want_nofollow = 0; /* once per document */
    return s->fn(s->ctx, LINKS_NOFOLLOW, v, n);
}

/* Handles the start tag whose name starts at `at`: reports its href, then skips the content
 * of a raw-text element. Returns where scanning resumes; a callback's stop value or an error
 * goes to *stop (and the scan resumes at the end of the page). */
static size_t start_tag(struct scan *s, const unsigned char *h, size_t len, size_t at, int *stop)
{
    struct tag t;
    size_t next = read_tag(h, len, at, &t, s->want_nofollow);
    if (next == 0)
        return len;

    int rc = 0;
    if (t.href.present) {
        if (name_is(t.name, t.name_len, "base")) {
            /* Only the first base element with an href sets the base URL (an href without
             * a value makes it the page's own URL, which is what the caller assumes anyway). */
            if (!s->base_seen) {
                s->base_seen = 1;
                if (t.href.value != NULL)
                    rc = emit(s, LINKS_BASE, (const char *)t.href.value, t.href.len);
            }
        } else if (t.href.value != NULL) {
            rc = emit(s, LINKS_HREF, (const char *)t.href.value, t.href.len);
        }
    }
    if (rc == 0 && t.meta_name.present)
        rc = meta_nofollow(s, &t);
    if (rc != 0) {
        *stop = rc;
        return len;
    }

    if (t.name_len >= 3 && t.name_len <= 9) {
        const char *raw = raw_text_name(t.name, t.name_len);
        if (raw == raw_text_names[0])
            next = skip_script(h, len, next);
        else if (raw != NULL)
            next = skip_raw_text(h, len, next, raw);
    }
    return next;
}

/* The built-in scan: pcre2 finds each construct that could change the tokenizer's state, and
 * the code here reads it and moves past it. Returns 0, the callback's value, or an error. */
static int scan_builtin(struct scan *s, const char *html, size_t len)
{
    const links_extractor *x = s->x;
    const unsigned char *h = (const unsigned char *)html;
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(x->code, NULL);
    if (md == NULL)
        return -ENOMEM;
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
    int result = 0;
    size_t pos = 0;

    while (pos < len && result == 0) {
        int rc = x->jit ? pcre2_jit_match(x->code, (PCRE2_SPTR)html, len, pos, 0, md, x->mctx)
                        : pcre2_match(x->code, (PCRE2_SPTR)html, len, pos, 0, md, x->mctx);
        if (rc == PCRE2_ERROR_NOMATCH)
            break;
        if (rc < 0) {
            result = errno_from_pcre2(rc);
            break;
        }
        size_t at = ov[0];
        unsigned char c = h[at + 1]; /* the pattern matched two bytes */
        if (is_letter(c)) {
            pos = start_tag(s, h, len, at + 1, &result);
        } else if (c == '!') {
            if (len - at >= 4 && h[at + 2] == '-' && h[at + 3] == '-')
                pos = skip_comment(h, len, at);
            else
                pos = skip_past_gt(h, len, at + 2); /* doctype, CDATA, bogus comment */
        } else if (c == '/' && at + 2 < len && is_letter(h[at + 2])) {
            struct tag t; /* an end tag: attributes are tokenized, then dropped */
            pos = read_tag(h, len, at + 2, &t, 0);
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

/* ---- a caller's pattern ---- */

/* Reports group 1 of every match of the caller's pattern, in order, each match found after the
 * previous one ends. Returns 0, the callback's value, or an error (-ERANGE when the page makes
 * the pattern exceed pcre2's limits). */
static int scan_user(struct scan *s, const char *html, size_t len)
{
    const links_extractor *x = s->x;
    int result = 0;
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(x->code, NULL);
    /* The JIT stack is per scan because scans may run in parallel; a context of our own
     * carries it, so the shared one stays untouched. */
    pcre2_match_context *mctx = pcre2_match_context_copy(x->mctx);
    pcre2_jit_stack *stack = x->jit ? pcre2_jit_stack_create(JIT_STACK_START, JIT_STACK_MAX, NULL)
                                    : NULL;
    if (md == NULL || mctx == NULL || (x->jit && stack == NULL)) {
        result = -ENOMEM;
        goto out;
    }
    if (stack != NULL)
        pcre2_jit_stack_assign(mctx, NULL, stack);

    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
    size_t start = 0;
    uint32_t opts = 0;
    while (start <= len) {
        int rc = pcre2_match(x->code, (PCRE2_SPTR)html, len, start, opts, md, mctx);
        if (rc == PCRE2_ERROR_NOMATCH) {
            if (opts == 0)
                break;
            /* Nothing but an empty match at `start`: step over one byte and search on. */
            opts = 0;
            start++;
            continue;
        }
        if (rc < 0) {
            result = errno_from_pcre2(rc);
            break;
        }
        if (rc > 1 && ov[2] != PCRE2_UNSET && ov[3] >= ov[2]) {
            result = emit(s, LINKS_HREF, html + ov[2], ov[3] - ov[2]);
            if (result != 0)
                break;
        }
        if (ov[1] > ov[0] && ov[1] > start) {
            start = ov[1];
            opts = 0;
        } else {
            /* An empty match (or one \K left ending where it began): look for a non-empty one
             * at the same place before moving on, so the scan always advances. */
            start = ov[1] > start ? ov[1] : start;
            opts = PCRE2_NOTEMPTY_ATSTART | PCRE2_ANCHORED;
        }
    }
out:
    pcre2_jit_stack_free(stack);
    pcre2_match_context_free(mctx);
    pcre2_match_data_free(md);
    return result;
}

int links_scan(const links_extractor *x, const char *html, size_t len, links_fn fn, void *ctx)
{
    if (x == NULL || fn == NULL || (html == NULL && len > 0))
        return -EINVAL;
    if (len == 0)
        return 0;
    struct scan s = {
        .x = x,
        .fn = fn,
        .ctx = ctx,
        .base_seen = 0,
        .want_nofollow = !x->user && (x->flags & LINKS_REPORT_NOFOLLOW),
    };
    buf_init(&s.scratch);
    int rc = x->user ? scan_user(&s, html, len) : scan_builtin(&s, html, len);
    buf_finish(&s.scratch);
    return rc;
}
