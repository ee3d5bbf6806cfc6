/* robots.c: robots.txt parsing and matching after RFC 9309.
 *
 * A body is read twice. The first pass only learns whether any group names our product
 * token (and whether any names "*"); the second collects the rules of the groups that
 * apply. That way only one set of patterns is ever stored.
 *
 * Patterns and paths are compared in one canonical form, so that "%62" and "b", or "%e3"
 * and "%E3", or a raw UTF-8 byte and its escape, compare equal (section 2.2.2):
 *   - an escape of an unreserved character (ALPHA DIGIT - . _ ~) is decoded;
 *   - every other escape is kept, with upper-case hex;
 *   - unreserved and reserved characters are kept as they are, except '*' and '$';
 *   - anything else (controls, space, '"', '<', '>', '\\', '^', '`', '{', '|', '}', '%' not
 *     starting an escape, bytes >= 0x80) is escaped.
 * '*' and '$' are special in patterns, so a path's raw '*' and '$' become "%2A" and "%24",
 * which is how a pattern spells them literally (section 2.2.3, figure 6). In a pattern, '*'
 * stays the wildcard and only a final '$' anchors; a '$' anywhere else is literal.
 * Other reserved characters keep their meaning: "/a%3Fb" does not match "/a?b". */
#include "robots.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"

/* Canonical patterns take at most three bytes per input byte, and all of them together
 * stay addressable with 32-bit offsets. */
_Static_assert((uint64_t)ROBOTS_MAX_BYTES * 3 + 1 < UINT32_MAX, "rule offsets are 32-bit");

enum mode {
    MODE_RULES,
    MODE_ALLOW_ALL,
    MODE_DISALLOW_ALL,
};

struct rule {
    uint32_t off; /* into robots.patterns */
    uint32_t len; /* of the canonical pattern, without the anchoring '$' */
    bool allow;
    bool anchored; /* the pattern ended in '$': it must reach the end of the path */
};

/* Bytes of the pieces of literal segments a rule may be filed under; see build_index(). */
#define KEY_MAX 4
/* Keys a path of n canonical bytes looks up: its pieces, its prefixes and its suffixes. */
#define KEYS_PER_BYTE (KEY_MAX + 2)

/* One bucket of the index: the rules filed under `key`, by_key[first .. first + n). */
struct bucket {
    uint64_t key; /* from key_end(); 0 for an empty slot */
    uint32_t first;
    uint32_t n;
};

struct robots {
    enum mode mode;
    char *patterns;     /* every rule's canonical pattern, back to back */
    struct rule *rules; /* most specific first; see rule_order() */
    size_t nrules;
    double crawl_delay; /* -1 for none */

    /* The index, so that a path is compared with a handful of rules, not all of them.
     * Each rule is filed under one key, something every path it matches must hold: a
     * piece of at most KEY_MAX bytes of one of its literal segments, its literal head
     * as the path's start, or, when anchored, its literal tail as the path's end. */
    struct bucket *buckets; /* open addressing, a power of two of them */
    size_t bucket_mask;
    uint32_t *by_key;       /* rule numbers, grouped by key, ascending in each group */
    uint32_t *always;       /* rules without a literal byte ("*"): tried for every path */
    size_t nalways;
    size_t longest_head;    /* of the heads and tails rules are filed under: longer */
    size_t longest_tail;    /* prefixes and suffixes of a path need no lookup */
};

enum line_kind {
    LINE_OTHER, /* blank, comment, unknown key (Sitemap, Host...), or unparseable */
    LINE_AGENT,
    LINE_ALLOW,
    LINE_DISALLOW,
    LINE_DELAY,
};

enum target {
    TARGET_NONE, /* the first pass: collect nothing */
    TARGET_PRODUCT,
    TARGET_STAR,
};

/* What the second pass collects into. */
struct builder {
    struct buf patterns;
    struct rule *rules;
    size_t nrules;
    size_t cap;
    double crawl_delay;
};

struct scan {
    const char *product;
    size_t product_len;
    enum target target;
    bool saw_product; /* some user-agent line names the product */
    bool saw_star;    /* some user-agent line is "*" */
    struct builder *b;
};

static bool is_alpha(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

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
    if (is_digit(c))
        return c - '0';
    return (unsigned)(c | 0x20) - 'a' + 10;
}

static unsigned char to_lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c | 0x20) : c;
}

static bool is_ws(unsigned char c)
{
    return c == ' ' || c == '\t';
}

/* The characters of a product token (section 2.2.1); also used to read keys. */
static bool is_ident(unsigned char c)
{
    return is_alpha(c) || c == '-' || c == '_';
}

static bool is_unreserved(unsigned char c)
{
    return is_alpha(c) || is_digit(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

static bool is_reserved(unsigned char c)
{
    return c != '\0' && strchr(":/?#[]@!$&'()*+,;=", c) != NULL;
}

/* ASCII-only, so that no locale can make "I" and "i" differ. */
static bool ascii_ieq(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (to_lower((unsigned char)a[i]) != to_lower((unsigned char)b[i]))
            return false;
    return true;
}

static char *put_escape(char *d, unsigned c)
{
    static const char hex[] = "0123456789ABCDEF";
    *d++ = '%';
    *d++ = hex[c >> 4];
    *d++ = hex[c & 15];
    return d;
}

/* Writes the canonical form of s[0..n) at d (room for 3n bytes) and returns the end. In a
 * pattern a raw '*' is the wildcard; in a path it is a literal, written "%2A". */
static char *canonicalize(char *d, const char *s, size_t n, bool pattern)
{
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n; i++) {
        unsigned c = u[i];
        if (c == '%' && i + 2 < n && is_hex(u[i + 1]) && is_hex(u[i + 2])) {
            c = hex_value(u[i + 1]) << 4 | hex_value(u[i + 2]);
            i += 2;
            if (is_unreserved((unsigned char)c))
                *d++ = (char)c;
            else
                d = put_escape(d, c);
        } else if (c == '*' && pattern) {
            *d++ = '*';
        } else if (is_unreserved((unsigned char)c) ||
                   (is_reserved((unsigned char)c) && c != '*' && c != '$')) {
            *d++ = (char)c;
        } else {
            d = put_escape(d, c);
        }
    }
    return d;
}

/* Whether canonical pattern p[0..plen) matches canonical path s[0..n) from its first byte.
 * The pattern is literal segments split by '*'. Placing each segment at its leftmost
 * occurrence after the previous one is never worse than any other placement, so nothing is
 * ever retried, and each search starts where the last one ended. glibc's memmem is linear
 * in what it passes over, so a match costs O(plen + n) even for a pattern of thousands of
 * "*a" against a long run of 'a', which takes exponential time by naive backtracking. */
static bool pattern_matches(const char *p, size_t plen, bool anchored, const char *s, size_t n)
{
    const char *star = memchr(p, '*', plen);
    size_t head = star ? (size_t)(star - p) : plen;
    if (head > n || memcmp(p, s, head) != 0)
        return false;
    if (star == NULL)
        return !anchored || head == n;

    const char *end = p + plen;
    const char *seg = star + 1;
    size_t pos = head;
    for (;;) {
        const char *next = memchr(seg, '*', (size_t)(end - seg));
        if (next == NULL)
            break;
        size_t seglen = (size_t)(next - seg);
        if (seglen > 0) {
            const char *hit = memmem(s + pos, n - pos, seg, seglen);
            if (hit == NULL)
                return false;
            pos = (size_t)(hit - s) + seglen;
        }
        seg = next + 1;
    }
    size_t tail = (size_t)(end - seg);
    if (anchored)
        return tail <= n - pos && memcmp(seg, s + n - tail, tail) == 0;
    return tail == 0 || memmem(s + pos, n - pos, seg, tail) != NULL;
}

/* Orders rules so that the first one matching a path is the one section 2.2.2 picks: most
 * octets first (the anchoring '$' counts as one), allow before disallow among equals. */
static int rule_order(const void *a, const void *b)
{
    const struct rule *x = a;
    const struct rule *y = b;
    size_t xs = (size_t)x->len + x->anchored;
    size_t ys = (size_t)y->len + y->anchored;
    if (xs != ys)
        return xs > ys ? -1 : 1;
    if (x->allow != y->allow)
        return x->allow ? -1 : 1;
    return x->off < y->off ? -1 : (x->off > y->off); /* qsort is not stable */
}

static int add_rule(struct builder *b, const char *v, size_t n, bool allow)
{
    bool anchored = n > 0 && v[n - 1] == '$';
    if (anchored)
        n--;
    if (n == 0)
        return 0; /* an empty value matches nothing: "Disallow:" forbids nothing */
    /* A pattern must start with '/'. "Disallow: private/" most likely means "/private/";
     * taken literally it could never match, since every path starts with '/'. */
    bool slash = v[0] != '/' && v[0] != '*';

    if (b->nrules == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 16;
        struct rule *rules = realloc(b->rules, cap * sizeof *rules);
        if (rules == NULL)
            return -ENOMEM;
        b->rules = rules;
        b->cap = cap;
    }
    int rc = buf_reserve(&b->patterns, 3 * n + 1);
    if (rc < 0)
        return rc;

    char *start = b->patterns.data + b->patterns.len;
    char *d = start;
    if (slash)
        *d++ = '/';
    d = canonicalize(d, v, n, true);
    size_t len = (size_t)(d - start);
    b->rules[b->nrules++] = (struct rule){
        .off = (uint32_t)b->patterns.len,
        .len = (uint32_t)len,
        .allow = allow,
        .anchored = anchored,
    };
    b->patterns.len += len;
    b->patterns.data[b->patterns.len] = '\0';
    return 0;
}

/* A plain decimal: digits, optionally a '.' and more digits ("2", "0.5", ".5"). Signs,
 * exponents, "inf", "nan" and trailing words are refused; strtod would take most of them,
 * and its idea of the decimal point depends on the locale. */
static bool parse_delay(const char *v, size_t n, double *out)
{
    size_t i = 0;
    bool digits = false;
    double x = 0;
    while (i < n && is_digit((unsigned char)v[i])) {
        x = x * 10 + (v[i++] - '0');
        digits = true;
    }
    if (i < n && v[i] == '.') {
        double scale = 0.1;
        for (i++; i < n && is_digit((unsigned char)v[i]); i++) {
            x += (v[i] - '0') * scale;
            scale /= 10;
            digits = true;
        }
    }
    if (!digits || i != n)
        return false;
    *out = x > ROBOTS_MAX_CRAWL_DELAY ? ROBOTS_MAX_CRAWL_DELAY : x;
    return true;
}

static const struct {
    const char *name;
    enum line_kind kind;
} keys[] = {
    {"user-agent", LINE_AGENT},
    {"useragent", LINE_AGENT},
    {"allow", LINE_ALLOW},
    {"disallow", LINE_DISALLOW},
    {"disalow", LINE_DISALLOW}, /* misspellings seen in the wild (section 2.2.4) */
    {"dissallow", LINE_DISALLOW},
    {"dissalow", LINE_DISALLOW},
    {"crawl-delay", LINE_DELAY},
    {"crawldelay", LINE_DELAY},
};

static enum line_kind key_kind(const char *k, size_t n)
{
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (strlen(keys[i].name) == n && ascii_ieq(k, keys[i].name, n))
            return keys[i].kind;
    return LINE_OTHER;
}

static size_t skip_ws(const char *s, size_t i, size_t n)
{
    while (i < n && is_ws((unsigned char)s[i]))
        i++;
    return i;
}

/* Splits one line (without its line break) into a kind and a trimmed value. Accepts
 * "key: value", white space around the colon, and "key value" without a colon, and reads
 * "User agent" as "User-agent". */
static enum line_kind read_line(const char *s, size_t n, const char **value, size_t *vlen)
{
    /* No pattern may hold '#' (section 2.2), so one always starts a comment. */
    const char *hash = memchr(s, '#', n);
    if (hash != NULL)
        n = (size_t)(hash - s);

    size_t k = skip_ws(s, 0, n);
    size_t p = k;
    while (p < n && is_ident((unsigned char)s[p]))
        p++;
    enum line_kind kind = key_kind(s + k, p - k);
    size_t q = skip_ws(s, p, n);
    if (p - k == 4 && ascii_ieq(s + k, "user", 4) && q > p && n - q >= 5 &&
        ascii_ieq(s + q, "agent", 5) && (n - q == 5 || !is_ident((unsigned char)s[q + 5]))) {
        kind = LINE_AGENT;
        p = q + 5;
        q = skip_ws(s, p, n);
    }
    if (kind == LINE_OTHER)
        return LINE_OTHER;
    if (q < n && s[q] == ':')
        q = skip_ws(s, q + 1, n);
    else if (q == p && q < n)
        return LINE_OTHER; /* "Disallow/x", "Allow=..." */

    while (n > q && is_ws((unsigned char)s[n - 1]))
        n--;
    *value = s + q;
    *vlen = n - q;
    return kind;
}

enum agent {
    AGENT_OTHER,
    AGENT_PRODUCT,
    AGENT_STAR,
};

/* A user-agent value names the product when it starts with the product token and the
 * token ends there: a product token holds only letters, '_' and '-' (section 2.2.1), so
 * "areq/1.0" names areq and "areqbot" does not. */
static enum agent agent_of(const struct scan *sc, const char *v, size_t n)
{
    size_t i = 0;
    while (i < n && is_ident((unsigned char)v[i]))
        i++;
    if (i == 0)
        return (n >= 1 && v[0] == '*' && (n == 1 || !is_ident((unsigned char)v[1])))
                   ? AGENT_STAR
                   : AGENT_OTHER;
    if (i == sc->product_len && ascii_ieq(v, sc->product, i))
        return AGENT_PRODUCT;
    return AGENT_OTHER;
}

/* The bytes to parse: at most ROBOTS_MAX_BYTES, and then only whole lines. */
static size_t parse_limit(const char *body, size_t len)
{
    if (len <= ROBOTS_MAX_BYTES)
        return len;
    size_t n = ROBOTS_MAX_BYTES;
    if (body[n] == '\n' || body[n] == '\r')
        return n; /* the last line ends right at the limit */
    while (n > 0 && body[n - 1] != '\n' && body[n - 1] != '\r')
        n--;
    return n;
}

/* Walks the lines of body[0..len), keeping track of groups (section 2.1): a user-agent
 * line after a rule starts a new group, consecutive user-agent lines share one, and lines
 * before the first user-agent line belong to none. Blank lines and unknown keys change
 * nothing. A Crawl-delay line counts as a rule here, as in most parsers that read it.
 * Records what the first pass needs in sc; adds the rules of the groups for sc->target to
 * sc->b. 0 or -ENOMEM. */
static int scan_body(struct scan *sc, const char *body, size_t len)
{
    bool in_agents = false; /* the last group line was a user-agent line */
    bool in_group = false;
    bool for_product = false; /* the current group names the product */
    bool for_star = false;
    size_t i = 0;

    if (len >= 3 && memcmp(body, "\xEF\xBB\xBF", 3) == 0)
        i = 3; /* a UTF-8 byte order mark */
    while (i < len) {
        size_t start = i;
        while (i < len && body[i] != '\n' && body[i] != '\r')
            i++;
        size_t end = i;
        if (i < len && body[i] == '\r' && i + 1 < len && body[i + 1] == '\n')
            i++;
        if (i < len)
            i++;

        const char *v = NULL;
        size_t vn = 0;
        enum line_kind kind = read_line(body + start, end - start, &v, &vn);
        if (kind == LINE_OTHER)
            continue;
        if (kind == LINE_AGENT) {
            if (!in_agents) {
                in_agents = in_group = true;
                for_product = for_star = false;
            }
            enum agent a = agent_of(sc, v, vn);
            if (a == AGENT_PRODUCT)
                for_product = sc->saw_product = true;
            else if (a == AGENT_STAR)
                for_star = sc->saw_star = true;
            continue;
        }

        in_agents = false;
        bool applies = (sc->target == TARGET_PRODUCT && for_product) ||
                       (sc->target == TARGET_STAR && for_star);
        if (!in_group || !applies)
            continue;
        if (kind == LINE_DELAY) {
            double d;
            if (sc->b->crawl_delay < 0 && parse_delay(v, vn, &d))
                sc->b->crawl_delay = d;
            continue;
        }
        int rc = add_rule(sc->b, v, vn, kind == LINE_ALLOW);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* ---- the index ----
 *
 * A rule can only match a path that starts with its literal head (what comes before its
 * first '*'), contains each of its literal segments, and, when anchored, ends with its
 * literal tail. So filing each rule under one of those, and looking up every piece,
 * prefix and suffix of the path, finds every rule that may match. Of a rule's keys the
 * one fewest rules share is chosen, so that 23,000 rules such as "*&id=1234$" or
 * "/shop/1234/" spread over thousands of buckets, and a path meets the few rules filed
 * under what it holds. A path costs KEYS_PER_BYTE lookups a byte, plus one comparison for
 * each rule of the buckets it hits. Rules whose every key is shared with many others
 * (single-letter segments, say, between a head of "/" and no anchor) still share buckets;
 * the comparisons are then as many as a plain scan makes, never more.
 *
 * Keys are 64-bit hashes. Two keys that collide only merge two buckets: a rule met by
 * mistake is compared and does not match. */

enum key_kind {
    KEY_PIECE = 1,
    KEY_HEAD,
    KEY_TAIL, /* hashed from its last byte backwards, so that suffixes extend leftwards */
};

static uint64_t key_start(enum key_kind kind)
{
    return 0xcbf29ce484222325ULL ^ (uint64_t)kind; /* FNV-1a's basis, one per kind */
}

static uint64_t key_add(uint64_t h, unsigned char c)
{
    return (h ^ c) * 0x100000001b3ULL;
}

/* The key of a hash in progress: mixed, and never 0, which marks an empty slot. */
static uint64_t key_end(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return h != 0 ? h : 1;
}

static uint64_t key_of(enum key_kind kind, const char *p, size_t n)
{
    uint64_t h = key_start(kind);
    for (size_t i = 0; i < n; i++)
        h = key_add(h, (unsigned char)(kind == KEY_TAIL ? p[n - 1 - i] : p[i]));
    return key_end(h);
}

struct counts;

/* What a rule is filed under, for build_index(). */
struct rarest {
    const struct counts *c;
    uint64_t key; /* 0 while none */
    uint32_t n;
    size_t len;
    enum key_kind kind;
};

static size_t key_hash(uint64_t k)
{
    return (size_t)k; /* already mixed */
}

/* Counts of pieces while the index is built: key -> how many times pieces of rules are it. */
struct counts {
    uint64_t *keys;
    uint32_t *n;
    size_t mask, used;
};

static size_t counts_slot(const struct counts *c, uint64_t k)
{
    size_t i = key_hash(k) & c->mask;
    while (c->keys[i] != 0 && c->keys[i] != k)
        i = (i + 1) & c->mask;
    return i;
}

static int counts_grow(struct counts *c)
{
    size_t cap = c->keys ? (c->mask + 1) * 2 : 256;
    struct counts g = {.keys = calloc(cap, sizeof *g.keys), .n = calloc(cap, sizeof *g.n),
                       .mask = cap - 1, .used = c->used};
    if (g.keys == NULL || g.n == NULL) {
        free(g.keys);
        free(g.n);
        return -ENOMEM;
    }
    for (size_t i = 0; c->keys && i <= c->mask; i++) {
        if (c->keys[i] == 0)
            continue;
        size_t j = counts_slot(&g, c->keys[i]);
        g.keys[j] = c->keys[i];
        g.n[j] = c->n[i];
    }
    free(c->keys);
    free(c->n);
    *c = g;
    return 0;
}

/* Calls fn for each key rule ru may be filed under: its head, its tail when anchored, and
 * each run of KEY_MAX bytes of a literal segment, or the whole segment when it is
 * shorter. Stops at and returns fn's first nonzero result. */
static int each_key(const struct rule *ru, const char *patterns,
                    int (*fn)(void *ctx, uint64_t key, enum key_kind kind, size_t len),
                    void *ctx)
{
    const char *p = patterns + ru->off;
    size_t plen = ru->len;
    const char *first = memchr(p, '*', plen);
    size_t head = first ? (size_t)(first - p) : plen;
    int rc = 0;
    if (head > 0 && (rc = fn(ctx, key_of(KEY_HEAD, p, head), KEY_HEAD, head)) != 0)
        return rc;
    if (ru->anchored) {
        size_t tail = 0;
        while (tail < plen && p[plen - 1 - tail] != '*')
            tail++;
        if (tail > 0 && (rc = fn(ctx, key_of(KEY_TAIL, p + plen - tail, tail), KEY_TAIL, tail)) != 0)
            return rc;
    }
    size_t i = 0;
    while (i < plen) {
        const char *star = memchr(p + i, '*', plen - i);
        size_t end = star ? (size_t)(star - p) : plen;
        size_t seg = end - i;
        if (seg > 0 && seg < KEY_MAX && (rc = fn(ctx, key_of(KEY_PIECE, p + i, seg), KEY_PIECE, seg)) != 0)
            return rc;
        for (size_t j = i; seg >= KEY_MAX && j + KEY_MAX <= end; j++)
            if ((rc = fn(ctx, key_of(KEY_PIECE, p + j, KEY_MAX), KEY_PIECE, KEY_MAX)) != 0)
                return rc;
        i = end + 1;
    }
    return 0;
}

static int count_piece(void *ctx, uint64_t key, enum key_kind kind, size_t len)
{
    (void)kind;
    (void)len;
    struct counts *c = ctx;
    if ((c->used + 1) * 4 > (c->mask + 1) * 3 && counts_grow(c) != 0)
        return -ENOMEM;
    size_t i = counts_slot(c, key);
    if (c->keys[i] == 0) {
        c->keys[i] = key;
        c->used++;
    }
    if (c->n[i] < UINT32_MAX)
        c->n[i]++;
    return 0;
}

static int pick_rarest(void *ctx, uint64_t key, enum key_kind kind, size_t len)
{
    struct rarest *r = ctx;
    uint32_t n = r->c->n[counts_slot(r->c, key)];
    if (r->key == 0 || n < r->n) {
        r->key = key;
        r->n = n;
        r->kind = kind;
        r->len = len;
    }
    return 0;
}

static size_t bucket_slot(const robots *r, uint64_t k)
{
    size_t i = key_hash(k) & r->bucket_mask;
    while (r->buckets[i].key != 0 && r->buckets[i].key != k)
        i = (i + 1) & r->bucket_mask;
    return i;
}

/* Files every rule of r under its rarest piece. 0 or -ENOMEM (r unchanged then). */
static int build_index(robots *r)
{
    int rc = -ENOMEM;
    struct counts c = {0};
    uint64_t *chosen = malloc(r->nrules * sizeof *chosen);
    if (chosen == NULL || counts_grow(&c) != 0)
        goto out;
    for (size_t i = 0; i < r->nrules; i++)
        if (each_key(&r->rules[i], r->patterns, count_piece, &c) != 0)
            goto out;

    size_t nkeys = 0, nalways = 0;
    for (size_t i = 0; i < r->nrules; i++) {
        struct rarest pick = {.c = &c};
        each_key(&r->rules[i], r->patterns, pick_rarest, &pick);
        chosen[i] = pick.key;
        nalways += pick.key == 0;
        if (pick.key != 0 && pick.kind == KEY_HEAD && pick.len > r->longest_head)
            r->longest_head = pick.len;
        if (pick.key != 0 && pick.kind == KEY_TAIL && pick.len > r->longest_tail)
            r->longest_tail = pick.len;
    }
    /* Reuse the counts as "rules filed under this key", now that every pick is made. */
    memset(c.n, 0, (c.mask + 1) * sizeof *c.n);
    for (size_t i = 0; i < r->nrules; i++) {
        if (chosen[i] == 0)
            continue;
        uint32_t *n = &c.n[counts_slot(&c, chosen[i])];
        nkeys += *n == 0;
        (*n)++;
    }

    size_t cap = 16;
    while (cap < nkeys * 2)
        cap *= 2;
    r->buckets = calloc(cap, sizeof *r->buckets);
    r->by_key = malloc((r->nrules - nalways + 1) * sizeof *r->by_key);
    r->always = malloc((nalways + 1) * sizeof *r->always);
    if (r->buckets == NULL || r->by_key == NULL || r->always == NULL)
        goto fail;
    r->bucket_mask = cap - 1;
    uint32_t next = 0;
    for (size_t i = 0; i <= c.mask; i++) {
        if (c.keys[i] == 0 || c.n[i] == 0)
            continue;
        struct bucket *b = &r->buckets[bucket_slot(r, c.keys[i])];
        *b = (struct bucket){.key = c.keys[i], .first = next};
        next += c.n[i];
    }
    for (size_t i = 0; i < r->nrules; i++) {
        if (chosen[i] == 0) {
            r->always[r->nalways++] = (uint32_t)i;
            continue;
        }
        struct bucket *b = &r->buckets[bucket_slot(r, chosen[i])];
        r->by_key[b->first + b->n++] = (uint32_t)i;
    }
    rc = 0;
    goto out;
fail:
    free(r->buckets);
    free(r->by_key);
    free(r->always);
    r->buckets = NULL;
    r->by_key = r->always = NULL;
    r->nalways = r->longest_head = r->longest_tail = 0;
out:
    free(c.keys);
    free(c.n);
    free(chosen);
    return rc;
}

static int make(enum mode mode, robots **out)
{
    robots *r = calloc(1, sizeof *r);
    if (r == NULL)
        return -ENOMEM;
    r->mode = mode;
    r->crawl_delay = -1;
    *out = r;
    return 0;
}

int robots_parse(const char *body, size_t len, const char *product, robots **out)
{
    if (out == NULL || product == NULL || (body == NULL && len > 0))
        return -EINVAL;
    size_t plen = strlen(product);
    if (plen == 0)
        return -EINVAL;
    for (size_t i = 0; i < plen; i++)
        if (!is_ident((unsigned char)product[i]))
            return -EINVAL;

    len = parse_limit(body, len);
    struct scan sc = {.product = product, .product_len = plen, .target = TARGET_NONE};
    int rc = scan_body(&sc, body, len); /* collects nothing, so cannot fail */
    if (rc < 0)
        return rc;

    robots *r;
    rc = make(MODE_RULES, &r);
    if (rc < 0)
        return rc;
    /* Section 2.2.1: the groups naming us, else the "*" groups, else no rules at all. A
     * group naming us that has no rules still wins over "*": it allows everything. */
    sc.target = sc.saw_product ? TARGET_PRODUCT : sc.saw_star ? TARGET_STAR : TARGET_NONE;
    if (sc.target == TARGET_NONE) {
        *out = r;
        return 0;
    }

    struct builder b = {.crawl_delay = -1};
    buf_init(&b.patterns);
    sc.b = &b;
    rc = scan_body(&sc, body, len);
    if (rc < 0)
        goto fail_builder;

    if (b.nrules > 0) {
        struct rule *fit = realloc(b.rules, b.nrules * sizeof *fit);
        if (fit != NULL)
            b.rules = fit;
        qsort(b.rules, b.nrules, sizeof *b.rules, rule_order);
    }
    r->patterns = buf_detach(&b.patterns);
    r->rules = b.rules;
    r->nrules = b.nrules;
    r->crawl_delay = b.crawl_delay;
    if (r->nrules > 0 && build_index(r) != 0) {
        robots_destroy(r);
        return -ENOMEM;
    }
    *out = r;
    return 0;

fail_builder:
    buf_finish(&b.patterns);
    free(b.rules);
    free(r);
    return rc;
}

int robots_allow_all(robots **out)
{
    if (out == NULL)
        return -EINVAL;
    return make(MODE_ALLOW_ALL, out);
}

int robots_disallow_all(robots **out)
{
    if (out == NULL)
        return -EINVAL;
    return make(MODE_DISALLOW_ALL, out);
}

void robots_destroy(robots *r)
{
    if (r == NULL)
        return;
    free(r->patterns);
    free(r->rules);
    free(r->buckets);
    free(r->by_key);
    free(r->always);
    free(r);
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Above this many bucket hits for one path, repeats are found with a bitmap. */
#define SORT_HITS_MAX 256

static size_t hit(const robots *r, uint64_t key, uint32_t *hits, size_t nhits)
{
    size_t slot = bucket_slot(r, key);
    if (r->buckets[slot].key != 0)
        hits[nhits++] = (uint32_t)slot;
    return nhits;
}

/* The first rule (in rule_order) of those in the buckets hit by s[0..n) and in r->always
 * that matches, or r->nrules for none. `hits` has room for KEYS_PER_BYTE * n slots. */
static size_t first_match(const robots *r, const char *s, size_t n, uint32_t *hits,
                          size_t *tried)
{
    size_t nhits = 0;
    uint64_t head = key_start(KEY_HEAD), tail = key_start(KEY_TAIL);
    for (size_t i = 0; i < n; i++) {
        if (i < r->longest_head) {
            head = key_add(head, (unsigned char)s[i]);
            nhits = hit(r, key_end(head), hits, nhits);
        }
        if (i < r->longest_tail) {
            tail = key_add(tail, (unsigned char)s[n - 1 - i]);
            nhits = hit(r, key_end(tail), hits, nhits);
        }
        for (size_t len = 1; len <= KEY_MAX && i + len <= n; len++)
            nhits = hit(r, key_of(KEY_PIECE, s + i, len), hits, nhits);
    }
    /* A piece may occur many times in a path: each bucket is searched once. Sorting finds
     * the repeats among a few hits; among many (a long path of one repeated letter hits
     * the same few buckets at every byte) a bitmap of the buckets does it in one pass. */
    unsigned char *seen = nhits > SORT_HITS_MAX ? calloc(r->bucket_mask / 8 + 1, 1) : NULL;
    if (seen != NULL) {
        size_t kept = 0;
        for (size_t i = 0; i < nhits; i++) {
            uint32_t slot = hits[i];
            if (!(seen[slot / 8] & (1u << (slot % 8)))) {
                seen[slot / 8] |= (unsigned char)(1u << (slot % 8));
                hits[kept++] = slot;
            }
        }
        nhits = kept;
        free(seen);
    } else {
        qsort(hits, nhits, sizeof *hits, cmp_u32); /* also without memory for the bitmap */
    }

    size_t best = r->nrules;
    for (size_t i = 0; i <= nhits; i++) {
        const uint32_t *list;
        size_t count;
        if (i == nhits) {
            list = r->always;
            count = r->nalways;
        } else {
            if (i > 0 && hits[i] == hits[i - 1])
                continue; /* sorted: a repeat */
            const struct bucket *b = &r->buckets[hits[i]];
            list = r->by_key + b->first;
            count = b->n;
        }
        /* Ascending: once one rule matches, the rest of its bucket comes after it. */
        for (size_t j = 0; j < count && list[j] < best; j++) {
            const struct rule *ru = &r->rules[list[j]];
            (*tried)++;
            if (pattern_matches(r->patterns + ru->off, ru->len, ru->anchored, s, n))
                best = list[j];
        }
    }
    return best;
}

int robots_allowed(const robots *r, const char *path, size_t len)
{
    size_t tried;
    return robots_allowed_counted(r, path, len, &tried);
}

int robots_allowed_counted(const robots *r, const char *path, size_t len, size_t *tried)
{
    *tried = 0;
    if (r == NULL || path == NULL || len == 0 || path[0] != '/')
        return -EINVAL;
    if (len == 11 && memcmp(path, "/robots.txt", 11) == 0)
        return 1; /* section 2.2.2: implicitly allowed */
    if (r->mode == MODE_DISALLOW_ALL)
        return 0;
    if (r->mode == MODE_ALLOW_ALL || r->nrules == 0)
        return 1;

    /* The canonical path (at most 3 bytes a byte), then room for the buckets it hits. */
    char small[256 * (3 + 3 * KEYS_PER_BYTE * sizeof(uint32_t))];
    char *s = small;
    if (len > 256) {
        if (len > SIZE_MAX / (3 + 3 * KEYS_PER_BYTE * sizeof(uint32_t)))
            return -ENOMEM;
        s = malloc(len * (3 + 3 * KEYS_PER_BYTE * sizeof(uint32_t)));
        if (s == NULL)
            return -ENOMEM;
    }
    size_t n = (size_t)(canonicalize(s, path, len, false) - s);
    /* Aligned for uint32_t past the largest canonical form of `len` bytes. */
    size_t at = (3 * len + sizeof(uint32_t) - 1) / sizeof(uint32_t) * sizeof(uint32_t);
    uint32_t *hits = (uint32_t *)(void *)(s + at);

    size_t best = first_match(r, s, n, hits, tried);
    int verdict = best == r->nrules ? 1 : r->rules[best].allow; /* no rule: allowed */
    if (s != small)
        free(s);
    return verdict;
}

double robots_crawl_delay(const robots *r)
{
    return r != NULL ? r->crawl_delay : -1;
}

size_t robots_rule_count(const robots *r)
{
    return r != NULL ? r->nrules : 0;
}
