/* fuzz_robots.c: libFuzzer harness for robots.txt parsing and matching (src/web/robots.c).
 *
 * Two checks per input:
 *   1. The whole input as a robots.txt body: parsing and matching never fail but for
 *      memory, whatever the bytes.
 *   2. The input as rules and paths over a small alphabet, written into a robots.txt by
 *      the harness: every verdict must be the one a plain reference gives, a dynamic-
 *      programming matcher of RFC 9309's '*' and '$' applied to every rule with the
 *      longest-match precedence of section 2.2.2. The alphabet ("/abc.-" and '*') is one
 *      that robots.c's canonical form leaves as it is, so that the reference can work on
 *      the text it wrote. A small alphabet makes patterns share pieces, which is what
 *      robots.c's index must get right.
 *
 * Input layout for check 2: records separated by bytes whose low three bits are 7. The
 * first byte's low five bits say how many of the records are rules; the rest are paths.
 * A rule record's first byte says allow (bit 3) and anchored (bit 4); every other byte
 * picks a character (its value modulo 7 in "/abc.-*"; paths use "/abc.-" only, where
 * '*' would be a literal). */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "robots.h"

#define MAX_RULES 32
#define MAX_TEXT 96 /* bytes of a rule or path; keeps the reference cheap */
#define MAX_PATHS 64

struct ref_rule {
    char pat[MAX_TEXT + 2]; /* as robots.c stores it: a leading '/' added where it would */
    size_t len;
    bool allow;
    bool anchored;
};

/* Whether pattern p[0..plen) ('*' any run of bytes) matches path s[0..n) from its start:
 * the whole path when anchored, else a prefix of it. row[j]: p[0..i) matches s[0..j). */
static bool ref_match(const char *p, size_t plen, bool anchored, const char *s, size_t n)
{
    bool row[MAX_TEXT + 2];
    row[0] = true;
    for (size_t j = 1; j <= n; j++)
        row[j] = false;
    for (size_t i = 0; i < plen; i++) {
        bool prev_diag = row[0]; /* row[j - 1] before this step */
        if (p[i] == '*') {
            /* '*' matches s[0..j) if the pattern before it matches any s[0..k), k <= j. */
            for (size_t j = 1; j <= n; j++)
                row[j] = row[j] || row[j - 1];
        } else {
            row[0] = false;
            for (size_t j = 1; j <= n; j++) {
                bool here = prev_diag && s[j - 1] == p[i];
                prev_diag = row[j];
                row[j] = here;
            }
        }
    }
    if (anchored)
        return row[n];
    for (size_t j = 0; j <= n; j++)
        if (row[j])
            return true;
    return false;
}

/* Section 2.2.2: the most octets decide (the '$' counts), allow winning a tie; no match
 * allows. */
static int ref_allowed(const struct ref_rule *rules, size_t nrules, const char *s, size_t n)
{
    size_t best_len = 0;
    int verdict = 1;
    bool found = false;
    for (size_t i = 0; i < nrules; i++) {
        const struct ref_rule *r = &rules[i];
        if (!ref_match(r->pat, r->len, r->anchored, s, n))
            continue;
        size_t len = r->len + r->anchored;
        if (!found || len > best_len || (len == best_len && r->allow && !verdict)) {
            best_len = len;
            verdict = r->allow;
            found = true;
        }
    }
    return verdict;
}

static void check_raw(const uint8_t *data, size_t size)
{
    robots *r = NULL;
    int rc = robots_parse((const char *)data, size, "areq", &r);
    CHECK(rc == 0 || rc == -ENOMEM);
    if (rc != 0)
        return;
    static const char *const paths[] = {"/", "/a", "/a/b.html?x=1", "/%2A$*"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        int v = robots_allowed(r, paths[i], strlen(paths[i]));
        CHECK(v == 0 || v == 1);
    }
    CHECK(robots_allowed(r, "/robots.txt", 11) == 1);
    robots_destroy(r);
}

static bool is_sep(uint8_t b)
{
    return (b & 7) == 7;
}

static void check_against_reference(const uint8_t *data, size_t size)
{
    static const char pattern_chars[] = "/abc.-*";
    static const char path_chars[] = "/abc.-";
    if (size == 0)
        return;
    size_t want_rules = data[0] & 31;

    struct ref_rule rules[MAX_RULES];
    size_t nrules = 0;
    char body[64 + MAX_RULES * (MAX_TEXT + 16)];
    size_t blen = (size_t)snprintf(body, sizeof body, "User-agent: *\n");

    size_t i = 1;
    /* The rules. */
    while (nrules < want_rules && i < size) {
        uint8_t flags = data[i++];
        char text[MAX_TEXT + 1];
        size_t n = 0;
        while (i < size && !is_sep(data[i])) {
            if (n < MAX_TEXT)
                text[n++] = pattern_chars[data[i] % 7];
            i++;
        }
        i++; /* the separator */
        bool allow = flags & 8, anchored = flags & 16;
        blen += (size_t)snprintf(body + blen, sizeof body - blen, "%s: %.*s%s\n",
                                 allow ? "Allow" : "Disallow", (int)n, text,
                                 anchored ? "$" : "");
        if (n == 0)
            continue; /* "Disallow:" and "Disallow: $" are no rules */
        struct ref_rule *r = &rules[nrules++];
        r->len = 0;
        if (text[0] != '/' && text[0] != '*')
            r->pat[r->len++] = '/'; /* robots.c reads "a/" as "/a/" */
        memcpy(r->pat + r->len, text, n);
        r->len += n;
        r->allow = allow;
        r->anchored = anchored;
    }

    robots *rb = NULL;
    int rc = robots_parse(body, blen, "areq", &rb);
    CHECK(rc == 0 || rc == -ENOMEM);
    if (rc != 0)
        return;
    CHECK(robots_rule_count(rb) == nrules);

    /* The paths; an empty record is "/". */
    for (size_t npaths = 0; i <= size && npaths < MAX_PATHS; npaths++) {
        char path[MAX_TEXT + 2];
        size_t n = 0;
        path[n++] = '/';
        while (i < size && !is_sep(data[i])) {
            if (n <= MAX_TEXT)
                path[n++] = path_chars[data[i] % 6];
            i++;
        }
        i++;
        size_t tried = 0;
        int got = robots_allowed_counted(rb, path, n, &tried);
        if (got == -ENOMEM)
            continue;
        int want = ref_allowed(rules, nrules, path, n);
        if (got != want) {
            fprintf(stderr, "path %.*s: robots.c says %d, the reference %d; rules:\n%.*s",
                    (int)n, path, got, want, (int)blen, body);
            CHECK(got == want);
        }
        CHECK(tried <= nrules);
    }
    robots_destroy(rb);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_raw(data, size);
    check_against_reference(data, size);
    return 0;
}
