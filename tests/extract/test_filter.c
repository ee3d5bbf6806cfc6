/* test_filter.c: --include/--exclude filters against a table of patterns and URLs, spans that
 * are not NUL-terminated, pcre2's limits, several threads sharing one filter, and errors. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "filter.h"

static void print_escaped(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch >= 0x20 && ch < 0x7f && ch != '\\')
            fputc(ch, stderr);
        else
            fprintf(stderr, "\\x%02x", ch);
    }
}

static const struct filter_row {
    const char *pattern;
    const char *url;
    int want;
} filter_rows[] = {
    /* unanchored: any part of the URL */
    {"example", "https://example.com/", 1},
    {"/blog/", "https://example.com/blog/post-1", 1},
    {"/blog/", "https://example.com/blogs", 0},
    {"", "https://example.com/", 1},
    {"", "", 1},
    {"x", "", 0},
    /* anchors */
    {"^https://", "https://example.com/", 1},
    {"^https://", "http://example.com/https://", 0},
    {"\\.pdf$", "https://example.com/a.pdf", 1},
    {"\\.pdf$", "https://example.com/a.pdf?x=1", 0},
    {"^https://example\\.com/$", "https://example.com/", 1},
    {"^https://example\\.com/$", "https://example.com/a", 0},
    {"\\Ahttps:", "https://a/", 1},
    {"a\\z", "https://x/a", 1},
    /* alternation */
    {"\\.(jpe?g|png|gif)$", "https://x/a.jpeg", 1},
    {"\\.(jpe?g|png|gif)$", "https://x/a.png", 1},
    {"\\.(jpe?g|png|gif)$", "https://x/a.svg", 0},
    {"^https?://(www\\.)?example\\.(com|org)/", "http://www.example.org/x", 1},
    {"^https?://(www\\.)?example\\.(com|org)/", "https://example.net/x", 0},
    /* case: sensitive unless (?i) */
    {"PDF", "https://x/a.pdf", 0},
    {"(?i)PDF", "https://x/a.pdf", 1},
    {"(?i)^HTTPS://EXAMPLE", "https://example.com/", 1},
    {"(?i:/Admin)/x", "https://h/ADMIN/x", 1},
    {"(?i:/Admin)/x", "https://h/ADMIN/X", 0},
    /* character classes */
    {"/page/[0-9]+$", "https://x/page/42", 1},
    {"/page/[0-9]+$", "https://x/page/4a", 0},
    {"\\d{4}/\\d{2}/", "https://x/2024/05/post", 1},
    {"[?&]sessionid=", "https://x/a?b=1&sessionid=2", 1},
    {"[?&]sessionid=", "https://x/a?xsessionid=2", 0},
    {"[^a-z0-9/:.]", "https://x.com/abc", 0},
    {"[^a-z0-9/:.]", "https://x.com/a_b", 1},
    {"^[[:alpha:]]+:", "https://x/", 1},
    /* dots: any byte but newline unless escaped */
    {"example.com", "https://exampleXcom/", 1},
    {"example\\.com", "https://exampleXcom/", 0},
    {"a.c", "https://x/a\xff" "c", 1},
    {"^.*$", "https://x/a\xff\xfe", 1},
    /* repetition and the like */
    {"/(a|b)*c$", "https://x/ababc", 1},
    {"^[^?]*\\?", "https://x/a", 0},
    {"%2[Ff]", "https://x/a%2fb", 1},
};

static void test_filter_table(void **state)
{
    (void)state;
    int failures = 0;
    for (size_t i = 0; i < sizeof(filter_rows) / sizeof(filter_rows[0]); i++) {
        const struct filter_row *r = &filter_rows[i];
        filter *f;
        char err[256];
        int rc = filter_create(r->pattern, &f, err, sizeof(err));
        if (rc != 0) {
            failures++;
            fprintf(stderr, "filter row %zu: /%s/ does not compile: %s\n", i, r->pattern, err);
            continue;
        }
        /* Exactly the URL's bytes, so the sanitizer catches a read past it. */
        size_t len = strlen(r->url);
        char *copy = malloc(len > 0 ? len : 1);
        assert_non_null(copy);
        memcpy(copy, r->url, len);
        int got = filter_match(f, copy, len);
        int again = filter_match(f, copy, len); /* the reused match data */
        if (got != r->want || again != r->want) {
            failures++;
            fprintf(stderr, "filter row %zu: /%s/ on \"", i, r->pattern);
            print_escaped(r->url, len);
            fprintf(stderr, "\": want %d, got %d then %d\n", r->want, got, again);
        }
        free(copy);
        filter_destroy(f);
    }
    fprintf(stderr, "%zu filter rows, %d failed\n", sizeof(filter_rows) / sizeof(filter_rows[0]),
            failures);
    assert_int_equal(failures, 0);
}

static void test_filter_span(void **state)
{
    (void)state;
    filter *f;
    char err[256];
    /* Only [s, s+len) counts: a NUL inside is a byte, what follows is not the URL. */
    assert_int_equal(filter_create("b$", &f, err, sizeof(err)), 0);
    assert_int_equal(filter_match(f, "a/b/c", 3), 1);
    assert_int_equal(filter_match(f, "a/b/c", 5), 0);
    assert_int_equal(filter_match(f, "a\0b", 3), 1);
    assert_int_equal(filter_match(f, NULL, 0), 0);
    assert_int_equal(filter_match(f, NULL, 1), -EINVAL);
    assert_int_equal(filter_match(NULL, "b", 1), -EINVAL);
    filter_destroy(f);
}

static void test_filter_limits(void **state)
{
    (void)state;
    filter *f;
    char err[256];
    /* Catastrophic backtracking ends with an error, not a hang. */
    assert_int_equal(filter_create("^(a+)+$", &f, err, sizeof(err)), 0);
    char url[64];
    memset(url, 'a', sizeof(url) - 1);
    url[sizeof(url) - 1] = 'b';
    assert_int_equal(filter_match(f, url, sizeof(url)), -ERANGE);
    assert_int_equal(filter_match(f, url, sizeof(url) - 1), 1);
    filter_destroy(f);

    /* Deep repetition over a long URL: the interpreter's frames stay within the heap limit. */
    assert_int_equal(filter_create("^(?:(a)|b)*$", &f, err, sizeof(err)), 0);
    size_t n = 4000;
    char *long_url = malloc(n);
    assert_non_null(long_url);
    for (size_t i = 0; i < n; i++)
        long_url[i] = i % 2 ? 'a' : 'b';
    assert_int_equal(filter_match(f, long_url, n), 1);
    long_url[n - 1] = 'c';
    assert_int_equal(filter_match(f, long_url, n), 0);
    free(long_url);
    filter_destroy(f);
}

struct filter_thread {
    const filter *f;
    int bad;
};

static void *filter_thread_main(void *arg)
{
    struct filter_thread *t = arg;
    for (int i = 0; i < 20000; i++) {
        char url[64];
        int n = snprintf(url, sizeof(url), "https://x/%d/%s", i, i % 3 ? "a.png" : "b.html");
        if (filter_match(t->f, url, (size_t)n) != (i % 3 != 0))
            t->bad++;
    }
    return NULL;
}

/* One filter, several threads at once: whoever finds the filter's match data taken uses
 * match data of its own, and every answer is still right. */
static void test_filter_threads(void **state)
{
    (void)state;
    filter *f;
    char err[256];
    assert_int_equal(filter_create("(?i)\\.(png|jpe?g)$", &f, err, sizeof(err)), 0);
    struct filter_thread t[4];
    pthread_t id[4];
    for (int i = 0; i < 4; i++) {
        t[i] = (struct filter_thread){f, 0};
        assert_int_equal(pthread_create(&id[i], NULL, filter_thread_main, &t[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(id[i], NULL), 0);
        assert_int_equal(t[i].bad, 0);
    }
    filter_destroy(f);
}

static void test_filter_errors(void **state)
{
    (void)state;
    filter *f = (filter *)&f;
    char err[256];
    assert_int_equal(filter_create("(abc", &f, err, sizeof(err)), -EINVAL);
    assert_null(f);
    assert_non_null(strstr(err, "missing closing parenthesis"));
    assert_non_null(strstr(err, "offset 4"));

    assert_int_equal(filter_create("a[b", &f, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "missing terminating ]"));
    assert_non_null(strstr(err, "offset 3"));

    assert_int_equal(filter_create("*a", &f, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "quantifier does not follow a repeatable item"));
    assert_non_null(strstr(err, "offset 0"));

    assert_int_equal(filter_create("a\\", &f, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "\\ at end of pattern"));

    /* Byte mode only. */
    assert_int_equal(filter_create("(*UTF)a", &f, err, sizeof(err)), -EINVAL);
    assert_null(f);
    assert_true(strlen(err) > 0);

    /* A short error buffer is truncated, not overrun; no buffer at all is fine. */
    char small[8];
    assert_int_equal(filter_create("(", &f, small, sizeof(small)), -EINVAL);
    assert_int_equal(strlen(small), sizeof(small) - 1);
    assert_int_equal(filter_create("(", &f, NULL, 0), -EINVAL);

    assert_int_equal(filter_create(NULL, &f, err, sizeof(err)), -EINVAL);
    assert_int_equal(filter_create("a", NULL, err, sizeof(err)), -EINVAL);
    assert_int_equal(filter_create("a", &f, NULL, 1), -EINVAL);
    filter_destroy(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_filter_table),
        cmocka_unit_test(test_filter_span),
        cmocka_unit_test(test_filter_limits),
        cmocka_unit_test(test_filter_threads),
        cmocka_unit_test(test_filter_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
