/* test_robots.c: table-driven tests for robots.c.
 *
 * Rows marked RFC come from RFC 9309: section 5.1 (the simple example, for each of its
 * crawlers), 5.2 (longest match), figure 2 (merged groups), figure 3 (the "*" fallback),
 * figure 4 (percent-encoded paths) and figure 6 (percent-encoded special characters). Rows
 * marked Google follow the examples of Google's robots.txt documentation, whose matching
 * RFC 9309 standardised. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "robots.h"

/* AddressSanitizer's memmem interceptor checks the whole haystack on every call, and the
 * matcher calls memmem once a segment: test_pathological_patterns, linear in robots.c,
 * becomes quadratic in the interceptor (3.7 s of CPU where the matcher needs 0.16 s, under
 * the 2 s bound even on an idle machine). The check is turned off for this program only;
 * ASAN_OPTIONS still overrides it, and without AddressSanitizer nothing calls this. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
    return "intercept_memmem=0";
}

struct allow_row {
    const char *txt;
    const char *product; /* NULL: "areq" */
    const char *path;
    int expect; /* 1 allowed, 0 disallowed */
};

/* RFC 9309 section 5.1, as printed (without the figure's closing "EOF" marker). */
#define RFC51                                                                                  \
    "User-Agent: *\n"                                                                          \
    "Disallow: *.gif$\n"                                                                       \
    "Disallow: /example/\n"                                                                    \
    "Allow: /publications/\n"                                                                  \
    "\n"                                                                                       \
    "User-Agent: foobot\n"                                                                     \
    "Disallow:/\n"                                                                             \
    "Allow:/example/page.html\n"                                                               \
    "Allow:/example/allowed.gif\n"                                                             \
    "\n"                                                                                       \
    "User-Agent: barbot\n"                                                                     \
    "User-Agent: bazbot\n"                                                                     \
    "Disallow: /example/page.html\n"                                                           \
    "\n"                                                                                       \
    "User-Agent: quxbot\n"

/* RFC 9309 section 5.2. */
#define RFC52                                                                                  \
    "User-Agent: foobot\n"                                                                     \
    "Allow: /example/page/\n"                                                                  \
    "Disallow: /example/page/disallowed.gif\n"

/* RFC 9309 figure 2: two groups for the same token are merged. */
#define FIG2                                                                                   \
    "user-agent: ExampleBot\n"                                                                 \
    "disallow: /foo\n"                                                                         \
    "disallow: /bar\n"                                                                         \
    "\n"                                                                                       \
    "user-agent: ExampleBot\n"                                                                 \
    "disallow: /baz\n"

/* RFC 9309 figure 3: no group names ExampleBot, so "*" applies. */
#define FIG3                                                                                   \
    "user-agent: *\n"                                                                          \
    "disallow: /foo\n"                                                                         \
    "disallow: /bar\n"                                                                         \
    "\n"                                                                                       \
    "user-agent: BazBot\n"                                                                     \
    "disallow: /baz\n"

#define UA "User-agent: areq\n"

static const struct allow_row allow_rows[] = {
    /* RFC 5.1: crawlers without a group of their own get "*". */
    {RFC51, NULL, "/", 1},
    {RFC51, NULL, "/foo.gif", 0},
    {RFC51, NULL, "/a/b/c.gif", 0},
    {RFC51, NULL, "/foo.gif?size=2", 1}, /* '$' anchors: ".gif" is not at the end */
    {RFC51, NULL, "/foo.gifs", 1},
    {RFC51, NULL, "/example/", 0},
    {RFC51, NULL, "/example/deep/page", 0},
    {RFC51, NULL, "/example", 1},
    {RFC51, NULL, "/publications/", 1},
    {RFC51, NULL, "/publications/cover.gif", 1}, /* "/publications/" is longer than "*.gif" */
    /* RFC 5.1: foobot. */
    {RFC51, "foobot", "/", 0},
    {RFC51, "foobot", "/example/page.html", 1},
    {RFC51, "foobot", "/example/allowed.gif", 1},
    {RFC51, "foobot", "/example/other.html", 0},
    {RFC51, "foobot", "/publications/", 0},
    {RFC51, "FooBot", "/example/other.html", 0}, /* the token is matched case-insensitively */
    /* RFC 5.1: one group for barbot and bazbot. */
    {RFC51, "barbot", "/example/page.html", 0},
    {RFC51, "barbot", "/example/page.html.bak", 0},
    {RFC51, "barbot", "/example/other.html", 1},
    {RFC51, "barbot", "/foo.gif", 1}, /* its own group, so not the "*" rules */
    {RFC51, "bazbot", "/example/page.html", 0},
    {RFC51, "bazbot", "/", 1},
    /* RFC 5.1: quxbot's group is empty and allows everything, "*" notwithstanding. */
    {RFC51, "quxbot", "/example/page.html", 1},
    {RFC51, "quxbot", "/foo.gif", 1},
    /* RFC 5.2. */
    {RFC52, "foobot", "/example/page/disallowed.gif", 0},
    {RFC52, "foobot", "/example/page/disallowed.gif.old", 0},
    {RFC52, "foobot", "/example/page/allowed.gif", 1},
    {RFC52, "foobot", "/elsewhere", 1},
    /* RFC figures 2 and 3. */
    {FIG2, "ExampleBot", "/foo", 0},
    {FIG2, "ExampleBot", "/baz", 0},
    {FIG2, "examplebot", "/bar/x", 0},
    {FIG2, "ExampleBot", "/qux", 1},
    {FIG3, "ExampleBot", "/foo", 0},
    {FIG3, "ExampleBot", "/baz", 1},
    {FIG3, "BazBot", "/baz", 0},
    {FIG3, "BazBot", "/foo", 1},

    /* Group selection for "areq". */
    {"User-agent: *\nDisallow: /\n\n" UA "Disallow: /private\n", NULL, "/public", 1},
    {"User-agent: *\nDisallow: /\n\n" UA "Disallow: /private\n", NULL, "/private/x", 0},
    {"User-agent: AREQ\nDisallow: /x\n", NULL, "/x", 0},
    {"User-agent: aReQ\nDisallow: /x\n", NULL, "/x", 0},
    {"User-agent: areq/1.0\nDisallow: /x\n", NULL, "/x", 0}, /* the token ends at '/' */
    {"User-agent: areq/1.0 (+https://areq.example)\nDisallow: /x\n", NULL, "/x", 0},
    {"User-agent: areqbot\nDisallow: /x\nUser-agent: *\nDisallow: /y\n", NULL, "/x", 1},
    {"User-agent: areqbot\nDisallow: /x\nUser-agent: *\nDisallow: /y\n", NULL, "/y", 0},
    {"User-agent: areq-bot\nDisallow: /x\n", NULL, "/x", 1},
    {"User-agent: areq_x\nDisallow: /x\n", NULL, "/x", 1},
    {"User-agent: are\nDisallow: /x\n", NULL, "/x", 1},
    {"User-agent: Mozilla/5.0 areq\nDisallow: /x\n", NULL, "/x", 1},
    {"User-agent: *bot\nDisallow: /x\n", NULL, "/x", 1}, /* not the "*" group */
    /* Groups for areq are merged, whatever lies between them. */
    {UA "Disallow: /foo\n\nUser-agent: other\nDisallow: /other\n\n" UA "Disallow: /baz\n", NULL,
     "/baz", 0},
    {UA "Disallow: /foo\n\nUser-agent: other\nDisallow: /other\n\n" UA "Disallow: /baz\n", NULL,
     "/foo", 0},
    {UA "Disallow: /foo\n\nUser-agent: other\nDisallow: /other\n\n" UA "Disallow: /baz\n", NULL,
     "/other", 1},
    /* Consecutive user-agent lines share a group; blank lines and other records between
     * them do not end it. */
    {"User-agent: other\nUser-agent: areq\nDisallow: /m\n", NULL, "/m", 0},
    {"User-agent: other\n\nUser-agent: areq\nDisallow: /m\n", NULL, "/m", 0},
    {"User-agent: other\nSitemap: https://h.example/s.xml\n" UA "Disallow: /m\n", NULL, "/m", 0},
    {UA "Sitemap: https://h.example/s.xml\nDisallow: /s\n", NULL, "/s", 0},
    /* A user-agent line after a rule starts a new group. */
    {UA "Disallow: /a\nUser-agent: other\nDisallow: /b\n", NULL, "/b", 1},
    {UA "Disallow: /a\nUser-agent: other\nDisallow: /b\n", NULL, "/a", 0},
    {UA "Crawl-delay: 1\nUser-agent: other\nDisallow: /b\n", NULL, "/b", 1},
    /* Rules outside any group are ignored. */
    {"Disallow: /\n", NULL, "/x", 1},
    {"Disallow: /a\n" UA "Disallow: /b\n", NULL, "/a", 1},
    {"Disallow: /a\n" UA "Disallow: /b\n", NULL, "/b", 0},
    {"Disallow: /a\nUser-agent: *\nDisallow: /b\n", NULL, "/a", 1},
    /* No group for areq and no "*" group, or no group at all: no rules apply. */
    {"User-agent: other\nDisallow: /\n", NULL, "/x", 1},
    {"", NULL, "/x", 1},
    {"# nothing but a comment\n", NULL, "/x", 1},
    /* Our group without a matching rule, or without rules: allowed. */
    {"User-agent: *\nDisallow: /\n" UA "Allow: /pub\n", NULL, "/pub/x", 1},
    {"User-agent: *\nDisallow: /\n" UA "Allow: /pub\n", NULL, "/other", 1},
    {"User-agent: *\nDisallow: /\n" UA, NULL, "/other", 1},

    /* Longest match; allow wins a tie, in either order. */
    {UA "Allow: /p\nDisallow: /p\n", NULL, "/p", 1},
    {UA "Disallow: /p\nAllow: /p\n", NULL, "/page", 1},
    {UA "Disallow: /folder/\nAllow: /folder/page\n", NULL, "/folder/page", 1},
    {UA "Disallow: /folder/\nAllow: /folder/page\n", NULL, "/folder/other", 0},
    {UA "Allow: /folder/\nDisallow: /folder/page\n", NULL, "/folder/page.html", 0},
    {UA "Allow: /folder/\nDisallow: /folder/page\n", NULL, "/folder/x", 1},
    {UA "Allow: /p\nDisallow: /\n", NULL, "/page", 1},                /* Google */
    {UA "Allow: /$\nDisallow: /\n", NULL, "/", 1},                    /* Google */
    {UA "Allow: /$\nDisallow: /\n", NULL, "/page.htm", 0},            /* Google */
    {UA "Allow: /page\nDisallow: /*.html\n", NULL, "/page.html", 0},  /* Google */
    {UA "Allow: /page\nDisallow: /*.html\n", NULL, "/page.php", 1},
    {UA "Allow: /page\nDisallow: /*.ph\n", NULL, "/page.php", 1},     /* equal length */

    /* Wildcards and the end anchor. */
    {UA "Disallow: /fish*\n", NULL, "/fish", 0},                      /* Google */
    {UA "Disallow: /fish*\n", NULL, "/fishheads/yummy.html", 0},      /* Google */
    {UA "Disallow: /fish*\n", NULL, "/Fish.asp", 1},                  /* Google */
    {UA "Disallow: /fish*\n", NULL, "/catfish", 1},                   /* Google */
    {UA "Disallow: /*.php\n", NULL, "/folder/filename.php?parameters", 0}, /* Google */
    {UA "Disallow: /*.php\n", NULL, "/windows.PHP", 1},               /* Google */
    {UA "Disallow: /*.php$\n", NULL, "/filename.php", 0},             /* Google */
    {UA "Disallow: /*.php$\n", NULL, "/filename.php?parameters", 1},  /* Google */
    {UA "Disallow: /*.php$\n", NULL, "/filename.php/", 1},            /* Google */
    {UA "Disallow: /fish*.php\n", NULL, "/fishheads/catfish.php?parameters", 0}, /* Google */
    {UA "Disallow: /fish*.php\n", NULL, "/Fish.PHP", 1},              /* Google */
    {UA "Disallow: /this/*/exactly\n", NULL, "/this/a/b/exactly", 0}, /* RFC 2.2.3 */
    {UA "Disallow: /this/*/exactly\n", NULL, "/this/exactly", 1},
    {UA "Disallow: /this/path/exactly$\n", NULL, "/this/path/exactly", 0}, /* RFC 2.2.3 */
    {UA "Disallow: /this/path/exactly$\n", NULL, "/this/path/exactly/", 1},
    {UA "Disallow: /a*b*c$\n", NULL, "/a-b-c-b-c", 0}, /* the last 'c' must end the path */
    {UA "Disallow: /a*b*c$\n", NULL, "/a-b-c-b-", 1},
    {UA "Disallow: /a**b\n", NULL, "/axxb", 0},
    {UA "Disallow: *\n", NULL, "/anything", 0},
    {UA "Disallow: /*\n", NULL, "/", 0},
    {UA "Disallow: /$\n", NULL, "/", 0},
    {UA "Disallow: /$\n", NULL, "/x", 1},
    {UA "Disallow: $\n", NULL, "/", 1},          /* an empty pattern, anchored or not */
    {UA "Disallow: /a$b\n", NULL, "/a$b", 0},    /* '$' before the end is literal */
    {UA "Disallow: /a$b\n", NULL, "/a%24b", 0},
    {UA "Disallow: /a$b\n", NULL, "/ab", 1},
    {UA "Disallow: private/\n", NULL, "/private/x", 0}, /* a missing leading '/' */
    {UA "Disallow: /Private\n", NULL, "/private", 1},   /* case-sensitive */

    /* Percent-encoding (RFC figures 4 and 6). */
    {UA "Disallow: /foo/bar?baz=quz\n", NULL, "/foo/bar?baz=quz", 0},
    {UA "Disallow: /foo/bar?baz=https%3A%2F%2Ffoo.bar\n", NULL,
     "/foo/bar?baz=https%3a%2f%2ffoo.bar", 0},
    {UA "Disallow: /foo/bar?baz=https%3A%2F%2Ffoo.bar\n", NULL,
     "/foo/bar?baz=https%3A%2F%2Ffoo.bar", 0},
    {UA "Disallow: /foo/bar/\xE3\x83\x84\n", NULL, "/foo/bar/%E3%83%84", 0},
    {UA "Disallow: /foo/bar/\xE3\x83\x84\n", NULL, "/foo/bar/%e3%83%84", 0},
    {UA "Disallow: /foo/bar/%E3%83%84\n", NULL, "/foo/bar/%E3%83%84", 0},
    {UA "Disallow: /foo/bar/%e3%83%84\n", NULL, "/foo/bar/%E3%83%84", 0},
    {UA "Disallow: /foo/bar/%62%61%7A\n", NULL, "/foo/bar/baz", 0},
    {UA "Disallow: /foo/bar/baz\n", NULL, "/foo/bar/%62%61%7A", 0},
    {UA "Disallow: /foo/bar%3Fbaz\n", NULL, "/foo/bar%3fbaz", 0},
    {UA "Disallow: /foo/bar%3Fbaz\n", NULL, "/foo/bar?baz", 1}, /* reserved: not the same */
    {UA "Disallow: /foo/bar?baz\n", NULL, "/foo/bar%3Fbaz", 1},
    {UA "Disallow: /a%2Fb\n", NULL, "/a/b", 1},
    {UA "Disallow: /a%2fb\n", NULL, "/a%2Fb", 0},
    {UA "Disallow: /path/file-with-a-%2A.html\n", NULL, "/path/file-with-a-*.html", 0},
    {UA "Disallow: /path/file-with-a-%2A.html\n", NULL, "/path/file-with-a-x.html", 1},
    {UA "Disallow: /path/foo-%24\n", NULL, "/path/foo-$", 0},
    {UA "Disallow: /path/foo-%24\n", NULL, "/path/foo-", 1}, /* not an anchor */
    {UA "Disallow: /%7Euser\n", NULL, "/~user/x", 0},
    {UA "Disallow: /~user\n", NULL, "/%7euser", 0},
    {UA "Disallow: /100%\n", NULL, "/100%25", 0}, /* a lone '%' is itself */
    {UA "Disallow: /a b\n", NULL, "/a%20b", 0},
    {UA "Disallow: /a|b\n", NULL, "/a%7Cb", 0},

    /* Empty values match nothing. */
    {UA "Disallow:\n", NULL, "/", 1},
    {UA "Disallow:   \n", NULL, "/x", 1},
    {"User-agent: *\nDisallow: /\n" UA "Disallow:\n", NULL, "/x", 1},
    {UA "Allow:\nDisallow: /\n", NULL, "/x", 0},

    /* Comments, line endings, white space, spelling. */
    {"# hello\n" UA "# between\nDisallow: /c # trailing\n", NULL, "/c", 0},
    {"# hello\n" UA "# between\nDisallow: /c # trailing\n", NULL, "/d", 1},
    {"User-agent: areq # us\nDisallow: /c#x\n", NULL, "/cx", 0},
    {"# User-agent: areq\nDisallow: /c\n", NULL, "/c", 1}, /* commented out: no group */
    {"User-agent: areq\r\nDisallow: /crlf\r\n", NULL, "/crlf", 0},
    {"User-agent: areq\rDisallow: /cr\r", NULL, "/cr", 0},
    {"User-agent: other\r\n\r\nUser-agent: areq\rDisallow: /mix\n", NULL, "/mix", 0},
    {"  User-agent:\tareq  \n\t Disallow :  /ws  \n", NULL, "/ws", 0},
    {"USER-AGENT: areq\nDISALLOW: /up\n", NULL, "/up", 0},
    {"user-agent:areq\ndisallow:/low\n", NULL, "/low", 0},
    {"User-agent: areq\nDisallow: /eof", NULL, "/eof", 0}, /* no final line break */
    {"\xEF\xBB\xBFUser-agent: areq\nDisallow: /bom\n", NULL, "/bom", 0},
    {"useragent: areq\nDisallow: /ua\n", NULL, "/ua", 0},
    {"User agent: areq\nDisallow: /ua\n", NULL, "/ua", 0},
    {"User-agent areq\nDisallow /nocolon\n", NULL, "/nocolon", 0},
    {UA "Disalow: /typo\n", NULL, "/typo", 0},
    {UA "Disallow/x\n", NULL, "/x", 1}, /* no separator: not a rule */
    {UA "Host: h.example\nNoindex: /n\nDisallow: /d\n", NULL, "/n", 1},
    {UA "Host: h.example\nNoindex: /n\nDisallow: /d\n", NULL, "/d", 0},

    /* /robots.txt is always allowed. */
    {"User-agent: *\nDisallow: /\n", NULL, "/robots.txt", 1},
    {"User-agent: *\nDisallow: /\n", NULL, "/robots.txt.bak", 0},
    {"User-agent: *\nDisallow: /\n", NULL, "/", 0},
};

static void test_allow_table(void **state)
{
    (void)state;
    size_t failures = 0;
    for (size_t i = 0; i < sizeof allow_rows / sizeof allow_rows[0]; i++) {
        const struct allow_row *row = &allow_rows[i];
        const char *product = row->product ? row->product : "areq";
        robots *r = NULL;
        int rc = robots_parse(row->txt, strlen(row->txt), product, &r);
        if (rc != 0) {
            print_error("row %zu: robots_parse returned %d\n", i, rc);
            failures++;
            continue;
        }
        int got = robots_allowed(r, row->path, strlen(row->path));
        if (got != row->expect) {
            print_error("row %zu: %s %s: got %d, want %d\n---\n%s---\n", i, product, row->path,
                        got, row->expect, row->txt);
            failures++;
        }
        robots_destroy(r);
    }
    assert_int_equal(failures, 0);
}

struct delay_row {
    const char *txt;
    double expect;
};

static const struct delay_row delay_rows[] = {
    {UA "Crawl-delay: 5\n", 5},
    {UA "Crawl-delay: 0.5\n", 0.5},
    {UA "Crawl-delay: .25\n", 0.25},
    {UA "Crawl-delay: 2.\n", 2},
    {UA "Crawl-delay: 0\n", 0},
    {UA "crawl-delay:3 # be gentle\n", 3},
    {UA "Crawl-delay: 1000\n", ROBOTS_MAX_CRAWL_DELAY},
    {UA "Crawl-delay: 99999999999999999999999999999999999999\n", ROBOTS_MAX_CRAWL_DELAY},
    {UA "Crawl-delay: abc\n", -1},
    {UA "Crawl-delay: 5s\n", -1},
    {UA "Crawl-delay: 5 seconds\n", -1},
    {UA "Crawl-delay: -3\n", -1},
    {UA "Crawl-delay: +3\n", -1},
    {UA "Crawl-delay: 1e3\n", -1},
    {UA "Crawl-delay: inf\n", -1},
    {UA "Crawl-delay: nan\n", -1},
    {UA "Crawl-delay: .\n", -1},
    {UA "Crawl-delay:\n", -1},
    {UA "Crawl-delay: 1,5\n", -1},
    {UA "Crawl-delay: junk\nCrawl-delay: 4\n", 4}, /* garbage skipped, the next one used */
    {UA "Crawl-delay: 4\nCrawl-delay: 8\n", 4},    /* the first one wins */
    {"User-agent: *\nCrawl-delay: 3\n" UA "Crawl-delay: 7\n", 7},
    {UA "Crawl-delay: 7\nUser-agent: *\nCrawl-delay: 3\n", 7},
    {"User-agent: *\nCrawl-delay: 3\n" UA "Disallow: /x\n", -1}, /* per group */
    {"User-agent: *\nCrawl-delay: 2\n", 2},
    {"User-agent: other\nCrawl-delay: 3\n", -1},
    {"Crawl-delay: 9\n" UA "Disallow: /\n", -1},
    {UA "Disallow: /x\n", -1},
    {"", -1},
};

static void test_crawl_delay_table(void **state)
{
    (void)state;
    size_t failures = 0;
    for (size_t i = 0; i < sizeof delay_rows / sizeof delay_rows[0]; i++) {
        robots *r = NULL;
        assert_int_equal(robots_parse(delay_rows[i].txt, strlen(delay_rows[i].txt), "areq", &r),
                         0);
        double got = robots_crawl_delay(r);
        if (got != delay_rows[i].expect) {
            print_error("delay row %zu: got %g, want %g\n", i, got, delay_rows[i].expect);
            failures++;
        }
        robots_destroy(r);
    }
    assert_int_equal(failures, 0);
}

static int allowed(const robots *r, const char *path)
{
    return robots_allowed(r, path, strlen(path));
}

static void test_allow_all_disallow_all(void **state)
{
    (void)state;
    robots *a = NULL;
    robots *d = NULL;
    assert_int_equal(robots_allow_all(&a), 0);
    assert_int_equal(robots_disallow_all(&d), 0);
    assert_int_equal(allowed(a, "/"), 1);
    assert_int_equal(allowed(a, "/private?x=1"), 1);
    assert_int_equal(allowed(d, "/"), 0);
    assert_int_equal(allowed(d, "/x"), 0);
    assert_int_equal(allowed(d, "/robots.txt"), 1);
    assert_true(robots_crawl_delay(a) == -1);
    assert_true(robots_crawl_delay(d) == -1);
    assert_int_equal(robots_rule_count(a), 0);
    assert_int_equal(robots_rule_count(d), 0);
    robots_destroy(a);
    robots_destroy(d);
    robots_destroy(NULL);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    robots *r = NULL;
    const char *txt = UA "Disallow: /x\n";
    assert_int_equal(robots_parse(txt, strlen(txt), NULL, &r), -EINVAL);
    assert_int_equal(robots_parse(txt, strlen(txt), "", &r), -EINVAL);
    assert_int_equal(robots_parse(txt, strlen(txt), "areq/1.0", &r), -EINVAL);
    assert_int_equal(robots_parse(txt, strlen(txt), "areq bot", &r), -EINVAL);
    assert_int_equal(robots_parse(NULL, 5, "areq", &r), -EINVAL);
    assert_int_equal(robots_parse(txt, strlen(txt), "areq", NULL), -EINVAL);
    assert_null(r);
    assert_int_equal(robots_parse(NULL, 0, "areq", &r), 0); /* an empty body */
    assert_int_equal(allowed(r, "/x"), 1);
    robots_destroy(r);

    assert_int_equal(robots_parse(txt, strlen(txt), "areq", &r), 0);
    assert_int_equal(robots_allowed(r, "", 0), -EINVAL);
    assert_int_equal(robots_allowed(r, NULL, 0), -EINVAL);
    assert_int_equal(allowed(r, "x"), -EINVAL);
    assert_int_equal(allowed(NULL, "/x"), -EINVAL);
    assert_true(robots_crawl_delay(NULL) == -1);
    robots_destroy(r);
}

/* Only the rules of the applicable groups are kept. */
static void test_keeps_only_applicable_rules(void **state)
{
    (void)state;
    const char *txt = "User-agent: *\nDisallow: /a\nDisallow: /b\nDisallow: /c\n"
                      "User-agent: other\nDisallow: /d\n"
                      "User-agent: areq\nDisallow: /e\nAllow: /f\n"
                      "User-agent: AREQ\nDisallow: /g\n";
    robots *r = NULL;
    assert_int_equal(robots_parse(txt, strlen(txt), "areq", &r), 0);
    assert_int_equal(robots_rule_count(r), 3);
    robots_destroy(r);
    assert_int_equal(robots_parse(txt, strlen(txt), "nobody", &r), 0);
    assert_int_equal(robots_rule_count(r), 3);
    robots_destroy(r);
    assert_int_equal(robots_parse(txt, strlen(txt), "other", &r), 0);
    assert_int_equal(robots_rule_count(r), 1);
    robots_destroy(r);
}

/* NUL bytes and invalid UTF-8 are bytes like any other; they never end the parse. */
static void test_nul_and_invalid_utf8(void **state)
{
    (void)state;
    static const char txt[] = "User-agent: areq\n"
                              "Dis\0allow: /z\n"
                              "Disallow: /a\0b\n"
                              "Disallow: /\xff\xfe\n"
                              "Disallow: /c\n";
    robots *r = NULL;
    assert_int_equal(robots_parse(txt, sizeof txt - 1, "areq", &r), 0);
    assert_int_equal(robots_rule_count(r), 3);
    assert_int_equal(allowed(r, "/z"), 1);
    assert_int_equal(allowed(r, "/a%00b"), 0);
    assert_int_equal(allowed(r, "/a"), 1);
    assert_int_equal(allowed(r, "/%FF%FE"), 0);
    assert_int_equal(allowed(r, "/%ff%fe/x"), 0);
    assert_int_equal(allowed(r, "/c"), 0);
    assert_int_equal(robots_allowed(r, "/a\0b", 4), 0);
    robots_destroy(r);
}

static char *pad_to(char *p, size_t *used, size_t target)
{
    /* Comment lines of 64 bytes, then one shorter one to land exactly on target. */
    while (*used < target) {
        size_t n = target - *used;
        if (n > 64)
            n = 64;
        if (n == 1) {
            *p++ = '\n';
        } else {
            *p++ = '#';
            memset(p, 'x', n - 2);
            p += n - 2;
            *p++ = '\n';
        }
        *used += n;
    }
    return p;
}

/* Builds "User-agent: areq\nDisallow: /\n", comments up to `at` bytes, then `line`. */
static char *body_with_line_at(size_t at, const char *line, size_t total, size_t *len)
{
    char *body = malloc(total);
    assert_non_null(body);
    const char *head = UA "Disallow: /\n";
    size_t used = strlen(head);
    memcpy(body, head, used);
    char *p = pad_to(body + used, &used, at);
    size_t n = strlen(line);
    memcpy(p, line, n);
    used += n;
    p += n;
    p = pad_to(p, &used, total);
    (void)p;
    *len = used;
    return body;
}

static void test_parse_limit(void **state)
{
    (void)state;
    size_t len;
    robots *r = NULL;

    /* A rule ending right at the limit applies. */
    const char *early = "Allow: /early\n";
    char *body = body_with_line_at(ROBOTS_MAX_BYTES - strlen(early), early,
                                   ROBOTS_MAX_BYTES + 4096, &len);
    assert_int_equal(robots_parse(body, len, "areq", &r), 0);
    assert_int_equal(allowed(r, "/early"), 1);
    robots_destroy(r);
    free(body);

    /* A rule after the limit does not. */
    body = body_with_line_at(ROBOTS_MAX_BYTES + 100, "Allow: /late\n", ROBOTS_MAX_BYTES + 4096,
                             &len);
    assert_int_equal(robots_parse(body, len, "areq", &r), 0);
    assert_int_equal(allowed(r, "/late"), 0);
    robots_destroy(r);
    free(body);

    /* A rule cut by the limit is dropped whole: cut, "Allow: /abcdef" would be
     * "Allow: /abc" and allow "/abc". */
    const char *cut = "Allow: /abcdef\n";
    body = body_with_line_at(ROBOTS_MAX_BYTES - 11, cut, ROBOTS_MAX_BYTES + 4096, &len);
    assert_int_equal(robots_parse(body, len, "areq", &r), 0);
    assert_int_equal(allowed(r, "/abc"), 0);
    assert_int_equal(allowed(r, "/abcdef"), 0);
    robots_destroy(r);
    free(body);

    /* A 10 MB body: only its first 500 KiB count, and that quickly. */
    size_t big = 10 * 1000 * 1000;
    body = body_with_line_at(5 * 1000 * 1000, "Allow: /deep\n", big, &len);
    clock_t t0 = clock();
    assert_int_equal(robots_parse(body, len, "areq", &r), 0);
    double secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
    assert_int_equal(allowed(r, "/deep"), 0);
    assert_int_equal(allowed(r, "/robots.txt"), 1);
    assert_true(secs < 2.0);
    robots_destroy(r);
    free(body);
}

/* Patterns built to make a backtracking matcher take exponential (or merely quadratic)
 * time must still be answered at once. */
static void test_pathological_patterns(void **state)
{
    (void)state;
    const size_t plen = 200 * 1000;
    char *path = malloc(plen + 2);
    assert_non_null(path);
    path[0] = '/';
    memset(path + 1, 'a', plen);
    path[plen + 1] = '\0';

    /* One pattern with many stars, and one of ~400 KiB: "/" then "*a" repeated. */
    size_t many = 200 * 1000;
    size_t tlen = strlen(UA) + strlen("Disallow: /*a*a*a*a*a*a*a*a*b\nDisallow: /") + 2 * many + 4;
    char *txt = malloc(tlen + 1);
    assert_non_null(txt);
    char *p = txt;
    p += sprintf(p, "%sDisallow: /*a*a*a*a*a*a*a*a*b\nDisallow: /", UA);
    for (size_t i = 0; i < many - 1; i++) {
        *p++ = '*';
        *p++ = 'a';
    }
    p += sprintf(p, "*b\n");
    assert_true((size_t)(p - txt) <= tlen);

    robots *r = NULL;
    clock_t t0 = clock();
    assert_int_equal(robots_parse(txt, (size_t)(p - txt), "areq", &r), 0);
    assert_int_equal(robots_rule_count(r), 2);
    for (int i = 0; i < 20; i++)
        assert_int_equal(robots_allowed(r, path, plen + 1), 1);
    path[plen] = 'b';
    assert_int_equal(robots_allowed(r, path, plen + 1), 0);
    double secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
    robots_destroy(r);

    /* Long literal segments that almost match everywhere. */
    const char *seg = UA "Disallow: /*aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab$\n";
    t0 = clock();
    assert_int_equal(robots_parse(seg, strlen(seg), "areq", &r), 0);
    path[plen] = 'a';
    for (int i = 0; i < 20; i++)
        assert_int_equal(robots_allowed(r, path, plen + 1), 1);
    secs += (double)(clock() - t0) / CLOCKS_PER_SEC;
    robots_destroy(r);

    free(txt);
    free(path);
    assert_true(secs < 2.0);
}

/* Issue 16 item 7: 23,000 wildcard rules and 1,000 paths took the loop seconds when every
 * path was compared with every rule. The work is counted, not timed: each path meets only
 * the few rules that share a piece with it, and the verdicts stay those of the rules. */
static void test_many_rules_few_comparisons(void **state)
{
    (void)state;
    enum { NRULES = 23000, NPATHS = 1000 };
    struct {
        char *data;
        size_t len;
    } txt = {0};
    FILE *f = open_memstream(&txt.data, &txt.len);
    assert_non_null(f);
    fprintf(f, "User-agent: *\nDisallow: /private/\nAllow: /private/open*\n");
    for (int k = 0; k < NRULES; k++)
        if (k % 100 != 0)
            fprintf(f, "Disallow: /*&k=%d$\n", k);
    for (int k = 0; k < 200; k++)
        fprintf(f, "Disallow: /*.ext%d\n", k);
    assert_int_equal(fclose(f), 0);
    robots *r = NULL;
    assert_int_equal(robots_parse(txt.data, txt.len, "areq", &r), 0);
    free(txt.data);
    assert_int_equal(robots_rule_count(r), 2 + NRULES - NRULES / 100 + 200);

    size_t most = 0, total = 0;
    char path[128];
    for (int k = 0; k < NPATHS; k++) {
        static const char *const forms[] = {"/slow?delay=0&k=%d", "/slow?delay=0&k=%d&more",
                                            "/private/x%d", "/private/open%d", "/f%d.ext7"};
        for (size_t form = 0; form < sizeof forms / sizeof forms[0]; form++) {
            snprintf(path, sizeof path, forms[form], k);
            size_t tried = SIZE_MAX;
            int got = robots_allowed_counted(r, path, strlen(path), &tried);
            int want = form == 0 ? k % 100 == 0 : form == 1 || form == 3;
            if (got != want)
                fail_msg("%s: %d, expected %d", path, got, want);
            if (tried > most)
                most = tried;
            total += tried;
        }
    }
    /* Compared with all rules, each path would cost up to 23,000 comparisons. */
    if (most > 8)
        fail_msg("a path was compared with %zu rules", most);
    assert_true(total < 3 * 5 * NPATHS);
    robots_destroy(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_allow_table),
        cmocka_unit_test(test_crawl_delay_table),
        cmocka_unit_test(test_allow_all_disallow_all),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_keeps_only_applicable_rules),
        cmocka_unit_test(test_nul_and_invalid_utf8),
        cmocka_unit_test(test_parse_limit),
        cmocka_unit_test(test_pathological_patterns),
        cmocka_unit_test(test_many_rules_few_comparisons),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
