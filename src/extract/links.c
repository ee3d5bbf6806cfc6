/* links.c: the link extractor. html.c's tokenizer reports every start tag's attributes; a
 * table of rules (tag, attribute) -> kind, sorted by attribute for a binary search, picks the
 * ones that hold links, and each kind has a small reader here. A user's pcre2 pattern (-P)
 * replaces the whole scan. */
#include "links.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "buf.h"
#include "entities.h"
#include "html.h"

/* Generous for any sane link pattern, yet bounds the work a pathological one does per match. */
#define MATCH_LIMIT 10000000u
#define DEPTH_LIMIT 100000u
#define JIT_STACK_START (32 * 1024)
#define JIT_STACK_MAX (1024 * 1024)

/* What areq reads today. A row per (element, attribute); see struct links_rule. */
const struct links_rule links_builtin_rules[] = {
    {"*", "href", LINKS_HREF},
    {"base", "href", LINKS_BASE},
    {"meta", "name", LINKS_NOFOLLOW},
    {"meta", "content", LINKS_NOFOLLOW},
};
const size_t links_builtin_nrules = sizeof(links_builtin_rules) / sizeof(links_builtin_rules[0]);

/* A row of the caller's table, ready for the search. */
struct rule {
    const char *tag;  /* NULL for "*" */
    size_t tag_len;
    const char *attr;
    size_t attr_len;
    unsigned slot;    /* the row's index in the caller's table */
};

/* The rules for one attribute name: rules[first, first + count). */
struct attr_entry {
    const char *name;
    size_t len;
    unsigned first, count;
};

struct links_extractor {
    int user;       /* a caller's pattern rather than the built-in scan */
    unsigned flags; /* enum links_flags */

    /* A caller's pattern. */
    pcre2_code *code;
    pcre2_match_context *mctx; /* limits only; never changed after create, so shareable */
    int jit;                   /* code was JIT-compiled */

    /* The built-in scan. */
    html_tokenizer *tokenizer;
    struct rule rules[LINKS_RULES_MAX]; /* in rule_order() */
    size_t nrules;
    struct attr_entry attrs[LINKS_RULES_MAX]; /* each attribute name once, in rule_order() */
    size_t nattrs;
    enum links_kind kind[LINKS_RULES_MAX]; /* by slot */
    uint32_t link_slots;       /* slots of kinds that are links (HREF, BASE) */
    int meta_name, meta_content; /* the slots of the LINKS_NOFOLLOW pair, or -1 */
    /* Bit n set: some rule's attribute is n bytes long. Most attributes of a page (class, id,
     * style, ...) are turned away by this one test, before any name is compared. */
    uint64_t attr_lens;
};

/* The values of the current start tag's attributes that rules pick, by slot. */
struct value {
    const char *name; /* where the attribute is in the page: its order */
    const char *value; /* NULL when the attribute has none */
    size_t len;
};

struct scan {
    const links_extractor *x;
    links_fn fn;
    void *ctx;
    struct buf scratch; /* decoded values, reused */
    int base_seen;
    int want_nofollow;  /* LINKS_REPORT_NOFOLLOW, and not yet reported */
    uint32_t present;   /* slots the current tag has set (HTML keeps the first of a name) */
    struct value values[LINKS_RULES_MAX];
};

/* Compiles `src` in byte mode, with no way for the pattern to turn UTF on: pages are often not
 * valid UTF-8, and a UTF-mode match on such input fails instead of scanning it. Returns 0,
 * -ENOMEM, or -EINVAL with "link pattern: pcre2's message at offset N" in err. */
static int compile(const char *src, pcre2_code **code, char *err, size_t errlen)
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
        snprintf(err, errlen, "link pattern: %s at offset %zu", (const char *)msg,
                 (size_t)erroff);
    }
    return -EINVAL;
}

/* The order of the search: by attribute name, shorter first (a length compares faster than
 * bytes do); then rules for a named element before the one for "*", which they override. */
static int rule_order(const void *a, const void *b)
{
    const struct rule *ra = a, *rb = b;
    if (ra->attr_len != rb->attr_len)
        return ra->attr_len < rb->attr_len ? -1 : 1;
    int c = strcmp(ra->attr, rb->attr);
    if (c != 0)
        return c;
    if ((ra->tag == NULL) != (rb->tag == NULL))
        return ra->tag == NULL ? 1 : -1; /* a rule for the element itself wins over "*" */
    if (ra->tag == NULL)
        return 0;
    return strcmp(ra->tag, rb->tag);
}

static int valid_name(const char *s)
{
    if (s == NULL || *s == '\0')
        return 0;
    for (; *s != '\0'; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '-' || *s == ':'))
            return 0;
    return 1;
}

/* Checks the caller's rules and files them for the search. -EINVAL with a message. */
static int load_rules(links_extractor *x, const struct links_rule *rules, size_t n, char *err,
                      size_t errlen)
{
    const char *why = NULL;
    x->meta_name = x->meta_content = -1;
    const char *meta_tag = NULL;
    if (n > LINKS_RULES_MAX)
        why = "too many rules";
    for (size_t i = 0; why == NULL && i < n; i++) {
        const struct links_rule *r = &rules[i];
        int any = r->tag != NULL && strcmp(r->tag, "*") == 0;
        if (r->tag == NULL || (!any && !valid_name(r->tag)) || !valid_name(r->attr)) {
            why = "a rule's element or attribute name is not a lower-case name";
            break;
        }
        size_t len = strlen(r->attr);
        x->rules[i] = (struct rule){any ? NULL : r->tag, any ? 0 : strlen(r->tag), r->attr, len,
                                    (unsigned)i};
        x->kind[i] = r->kind;
        if (len < 64)
            x->attr_lens |= (uint64_t)1 << len;
        else
            why = "a rule's attribute name is 64 bytes or longer";
        switch (r->kind) {
        case LINKS_HREF:
        case LINKS_BASE:
            x->link_slots |= (uint32_t)1 << i;
            break;
        case LINKS_NOFOLLOW: {
            int *slot = strcmp(r->attr, "name") == 0      ? &x->meta_name
                        : strcmp(r->attr, "content") == 0 ? &x->meta_content
                                                          : NULL;
            if (slot == NULL || *slot >= 0 || any || (meta_tag && strcmp(meta_tag, r->tag) != 0))
                why = "a nofollow rule is not one of a name and content pair for one element";
            else
                *slot = (int)i;
            meta_tag = r->tag;
            break;
        }
        default:
            why = "a rule has an unknown kind";
        }
    }
    if (why == NULL && (x->meta_name >= 0) != (x->meta_content >= 0))
        why = "a nofollow rule is not one of a name and content pair for one element";
    if (why == NULL) {
        x->nrules = n;
        qsort(x->rules, n, sizeof(x->rules[0]), rule_order);
        for (size_t i = 0; i < n; i++) {
            const struct rule *r = &x->rules[i];
            if (i > 0 && rule_order(&x->rules[i - 1], r) == 0)
                why = "two rules for one element and attribute";
            struct attr_entry *last = x->nattrs > 0 ? &x->attrs[x->nattrs - 1] : NULL;
            if (last != NULL && strcmp(last->name, r->attr) == 0)
                last->count++;
            else
                x->attrs[x->nattrs++] = (struct attr_entry){r->attr, r->attr_len, (unsigned)i, 1};
        }
    }
    if (why == NULL)
        return 0;
    if (errlen > 0)
        snprintf(err, errlen, "link rules: %s", why);
    return -EINVAL;
}

static int create(const char *pattern, const struct links_rule *rules, size_t nrules,
                  unsigned flags, links_extractor **out, char *err, size_t errlen)
{
    if (out == NULL || (err == NULL && errlen > 0) || (rules == NULL && nrules > 0))
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
    int rc;
    if (!x->user) {
        rc = load_rules(x, rules, nrules, err, errlen);
        if (rc == 0)
            rc = html_tokenizer_create(&x->tokenizer, err, errlen);
        if (rc != 0)
            goto fail;
        *out = x;
        return 0;
    }

    rc = compile(pattern, &x->code, err, errlen);
    if (rc != 0)
        goto fail;
    uint32_t groups = 0;
    pcre2_pattern_info(x->code, PCRE2_INFO_CAPTURECOUNT, &groups);
    if (groups == 0) {
        if (errlen > 0)
            snprintf(err, errlen, "link pattern: has no capturing group for the link");
        rc = -EINVAL;
        goto fail;
    }
    /* Without JIT (a platform pcre2 cannot JIT for, or a pattern JIT rejects) pcre2_match()
     * interprets the same pattern: slower, never wrong. */
    x->jit = pcre2_jit_compile(x->code, PCRE2_JIT_COMPLETE) == 0;
    rc = -ENOMEM;
    x->mctx = pcre2_match_context_create(NULL);
    if (x->mctx == NULL)
        goto fail;
    pcre2_set_match_limit(x->mctx, MATCH_LIMIT);
    pcre2_set_depth_limit(x->mctx, DEPTH_LIMIT);
    *out = x;
    return 0;

fail:
    links_extractor_destroy(x);
    return rc;
}

int links_extractor_create(const char *pattern, links_extractor **out, char *err, size_t errlen)
{
    return links_extractor_create_flags(pattern, 0, out, err, errlen);
}

int links_extractor_create_flags(const char *pattern, unsigned flags, links_extractor **out,
                                 char *err, size_t errlen)
{
    return create(pattern, links_builtin_rules, links_builtin_nrules, flags, out, err, errlen);
}

int links_extractor_create_rules(const struct links_rule *rules, size_t nrules, unsigned flags,
                                 links_extractor **out, char *err, size_t errlen)
{
    return create(NULL, rules, nrules, flags, out, err, errlen);
}

void links_extractor_destroy(links_extractor *x)
{
    if (x == NULL)
        return;
    html_tokenizer_destroy(x->tokenizer);
    pcre2_match_context_free(x->mctx);
    pcre2_code_free(x->code);
    free(x);
}

int links_accepts_type(const char *ct)
{
    if (ct == NULL)
        return 1;
    while (*ct == ' ' || *ct == '\t')
        ct++;
    size_t n = strcspn(ct, "; \t");
    if (n == 0)
        return 1;
    return (n == 9 && strncasecmp(ct, "text/html", 9) == 0) ||
           (n == 21 && strncasecmp(ct, "application/xhtml+xml", 21) == 0);
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

/* ---- the built-in scan: the rules, and a reader for each kind ---- */

/* The rule for attribute p[0..n) of `tag`, or NULL: a binary search for the attribute's name
 * (folded to lower case once, n < 64), then the first of its rules whose element matches. */
static const struct rule *find_rule(const links_extractor *x, const struct html_tag *tag,
                                    const char *p, size_t n)
{
    char key[64];
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        key[i] = (char)((unsigned)(c - 'A') < 26u ? c | 0x20 : c);
    }
    size_t lo = 0, hi = x->nattrs;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const struct attr_entry *a = &x->attrs[mid];
        int c = n < a->len ? -1 : n > a->len;
        for (size_t i = 0; c == 0 && i < n; i++)
            if (key[i] != a->name[i])
                c = (unsigned char)key[i] < (unsigned char)a->name[i] ? -1 : 1;
        if (c == 0) {
            for (unsigned i = a->first; i < a->first + a->count; i++) {
                const struct rule *r = &x->rules[i];
                if (r->tag == NULL ||
                    (r->tag_len == tag->len && html_name_is(tag->name, tag->len, r->tag)))
                    return r;
            }
            return NULL;
        }
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

static int on_attr(void *ctx, const struct html_tag *tag, const char *name, size_t name_len,
                   const char *value, size_t value_len)
{
    struct scan *s = ctx;
    const links_extractor *x = s->x;
    if (name_len >= 64 || !((x->attr_lens >> name_len) & 1))
        return 0;
    const struct rule *r = find_rule(x, tag, name, name_len);
    if (r == NULL || (s->present & ((uint32_t)1 << r->slot)))
        return 0;
    s->present |= (uint32_t)1 << r->slot;
    s->values[r->slot] = (struct value){name, value, value_len};
    return 0;
}

/* Whether a decoded robots content value holds "nofollow" or "none" (which means "noindex,
 * nofollow") as one of its comma or white space separated tokens, in any case. */
static int is_token_separator(char c)
{
    return c == ',' || c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r';
}

static int robots_nofollow(const char *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        while (i < n && is_token_separator(p[i]))
            i++;
        size_t start = i;
        while (i < n && !is_token_separator(p[i]))
            i++;
        if (html_name_is(p + start, i - start, "nofollow") ||
            html_name_is(p + start, i - start, "none"))
            return 1;
    }
    return 0;
}

/* Reports a <meta> that tells robots not to follow the page's links: name "robots", or our
 * own product token "areq", compared in any case after decoding, as robots metas are. */
static int meta_nofollow(struct scan *s, const struct value *name, const struct value *content)
{
    if (name->value == NULL || content->value == NULL)
        return 0;
    const char *v;
    size_t n;
    int rc = decode(s, name->value, name->len, &v, &n);
    if (rc != 0)
        return rc;
    if (!html_name_is(v, n, "robots") && !html_name_is(v, n, "areq"))
        return 0;
    rc = decode(s, content->value, content->len, &v, &n);
    if (rc != 0 || !robots_nofollow(v, n))
        return rc;
    s->want_nofollow = 0; /* once per document */
    return s->fn(s->ctx, LINKS_NOFOLLOW, v, n);
}

/* A start tag is complete: its links in document order, then what the page asks of robots. */
static int on_tag_end(void *ctx, const struct html_tag *tag)
{
    (void)tag;
    struct scan *s = ctx;
    const links_extractor *x = s->x;
    uint32_t present = s->present;
    if (present == 0)
        return 0;
    s->present = 0;

    int rc = 0;
    for (uint32_t links = present & x->link_slots; links != 0 && rc == 0;) {
        unsigned first = 0;
        const char *at = NULL;
        for (uint32_t m = links; m != 0; m &= m - 1) {
            unsigned slot = (unsigned)__builtin_ctz(m);
            if (at == NULL || s->values[slot].name < at) {
                at = s->values[slot].name;
                first = slot;
            }
        }
        links &= ~((uint32_t)1 << first);
        const struct value *v = &s->values[first];
        if (x->kind[first] == LINKS_BASE) {
            /* Only the first base element with an href sets the base URL (an href without a
             * value makes it the page's own URL, which is what the caller assumes anyway). */
            if (s->base_seen)
                continue;
            s->base_seen = 1;
        }
        if (v->value != NULL)
            rc = emit(s, x->kind[first], v->value, v->len);
    }
    if (rc == 0 && s->want_nofollow && x->meta_name >= 0 &&
        (present & ((uint32_t)1 << x->meta_name)) && (present & ((uint32_t)1 << x->meta_content)))
        rc = meta_nofollow(s, &s->values[x->meta_name], &s->values[x->meta_content]);
    return rc;
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
            result = html_errno_from_pcre2(rc);
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
    int rc;
    if (x->user) {
        rc = scan_user(&s, html, len);
    } else {
        struct html_handler h = {.attr = on_attr, .tag_end = on_tag_end, .ctx = &s};
        rc = html_scan(x->tokenizer, html, len, &h);
    }
    buf_finish(&s.scratch);
    return rc;
}
