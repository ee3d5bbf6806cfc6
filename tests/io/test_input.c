/* Tests for the URL list splitter. Most cases are rows of input bytes and the lines expected
 * from them, each written "lineno:text" or "lineno:!error"; every row is fed whole, one
 * byte at a time and in a few odd chunk sizes, and must come out the same every time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "input.h"

#define MAX_OUT 16

/* Spells out the length so that rows may hold NUL bytes. */
#define IN(s) s, sizeof(s) - 1

struct row {
    const char *name;
    const char *in;
    size_t len;
    size_t max_line; /* 0: INPUT_MAX_LINE */
    const char *want[MAX_OUT]; /* ends at the first NULL */
};

#define LONG8 "line longer than 8 bytes"

static const struct row rows[] = {
    {"empty", IN(""), 0, {NULL}},
    {"one line", IN("http://a/\n"), 0, {"1:http://a/"}},
    {"last line without newline", IN("http://a/\nhttp://b/"), 0,
     {"1:http://a/", "2:http://b/"}},
    {"lone last line", IN("http://a/"), 0, {"1:http://a/"}},
    {"CRLF", IN("http://a/\r\nhttp://b/\r\n"), 0, {"1:http://a/", "2:http://b/"}},
    {"CRLF at eof without LF", IN("a\r\nb\r"), 0, {"1:a", "2:b"}},
    {"lone CR inside a line", IN("a\rb\n"), 0, {"1:a\rb"}},
    {"lone CRs at the edges", IN("\ra\r\r\n"), 0, {"1:a"}},
    {"CR alone is not a line end", IN("a\rb\rc"), 0, {"1:a\rb\rc"}},
    {"trim", IN(" \t\f\vhttp://a/ \t\f\v\r\n"), 0, {"1:http://a/"}},
    {"inner space kept", IN("  a b  \n"), 0, {"1:a b"}},
    {"blank lines counted", IN("\n\n  \n\t\r\nhttp://a/\n\n"), 0, {"5:http://a/"}},
    {"only blank", IN(" \n\r\n\n"), 0, {NULL}},
    {"comments", IN("# one\n#\n   # indented\n\t#tab\nhttp://a/#frag\n"), 0,
     {"5:http://a/#frag"}},
    {"comment without newline", IN("a\n  # end"), 0, {"1:a"}},
    {"BOM at start", IN("\xEF\xBB\xBFhttp://a/\n"), 0, {"1:http://a/"}},
    {"BOM then comment", IN("\xEF\xBB\xBF# c\nhttp://a/\n"), 0, {"2:http://a/"}},
    {"BOM alone", IN("\xEF\xBB\xBF"), 0, {NULL}},
    {"BOM then newline", IN("\xEF\xBB\xBF\nb"), 0, {"2:b"}},
    {"BOM only at the very start", IN("a\n\xEF\xBB\xBF" "b\n"), 0,
     {"1:a", "2:\xEF\xBB\xBF" "b"}},
    {"BOM after a space is text", IN(" \xEF\xBB\xBF" "a\n"), 0, {"1:\xEF\xBB\xBF" "a"}},
    {"second BOM is text", IN("\xEF\xBB\xBF\xEF\xBB\xBF" "a"), 0, {"1:\xEF\xBB\xBF" "a"}},
    {"partial BOM at eof", IN("\xEF\xBB"), 0, {"1:!invalid UTF-8"}},
    {"partial BOM then text", IN("\xEF\xBB" "a\nb\n"), 0, {"1:!invalid UTF-8", "2:b"}},
    {"one byte of BOM then LF", IN("\xEF\nb"), 0, {"1:!invalid UTF-8", "2:b"}},

    /* max_line 8: the limit is on the raw line, without its LF or CRLF. */
    {"exactly the limit", IN("12345678\n"), 8, {"1:12345678"}},
    {"exactly the limit, CRLF", IN("12345678\r\nb"), 8, {"1:12345678", "2:b"}},
    {"exactly the limit at eof", IN("12345678"), 8, {"1:12345678"}},
    {"exactly the limit, CR at eof", IN("12345678\r"), 8, {"1:12345678"}},
    {"one over", IN("123456789\n"), 8, {"1:!" LONG8}},
    {"one over at eof", IN("a\n123456789"), 8, {"1:a", "2:!" LONG8}},
    {"raw, not trimmed", IN("  123456 \n"), 8, {"1:!" LONG8}},
    {"two CRs count one", IN("1234567\r\r\n"), 8, {"1:1234567"}},
    {"over-long in the middle", IN("a\n# c\n0123456789abcdefghijklmnopqrstuvwxyz\nb\n\nc"), 8,
     {"1:a", "3:!" LONG8, "4:b", "6:c"}},
    {"over-long CRLF", IN("0123456789abcdef\r\nb\r\n"), 8, {"1:!" LONG8, "2:b"}},
    {"over-long with CR at the cut", IN("123456789\r\r\r\r\r\nb\n"), 8, {"1:!" LONG8, "2:b"}},
    {"CR at the cut then LF", IN("12345678\r\nb\n"), 8, {"1:12345678", "2:b"}},
    {"over-long then over-long", IN("aaaaaaaaaaaaaaaaaaaa\nbbbbbbbbbbbbbbbbbbbbbbb\nc\n"), 8,
     {"1:!" LONG8, "2:!" LONG8, "3:c"}},
    {"over-long blank line", IN("                    \na\n"), 8, {"1:!" LONG8, "2:a"}},
    {"over-long comment", IN("# a long comment here\na\n"), 8, {"1:!" LONG8, "2:a"}},
    {"over-long beats NUL", IN("0123\0" "56789xyz\na\n"), 8, {"1:!" LONG8, "2:a"}},
    {"over-long beats UTF-8", IN("\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xFF\na\n"), 8,
     {"1:!" LONG8, "2:a"}},
    {"over-long after BOM", IN("\xEF\xBB\xBF" "123456789\nb"), 8, {"1:!" LONG8, "2:b"}},
    {"limit after BOM", IN("\xEF\xBB\xBF" "12345678\nb"), 8, {"1:12345678", "2:b"}},

    {"NUL byte", IN("a\0b\nc\n"), 0, {"1:!NUL byte in line", "2:c"}},
    {"NUL alone", IN("\0"), 0, {"1:!NUL byte in line"}},
    {"NUL in a comment", IN("# \0\nc"), 0, {"1:!NUL byte in line", "2:c"}},
    {"NUL at the edge is not blank", IN("a \0\n"), 0, {"1:!NUL byte in line"}},

    {"UTF-8 two to four bytes", IN("http://\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80/\n"), 0,
     {"1:http://\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80/"}},
    {"UTF-8 edges", IN("\xC2\x80\n\xDF\xBF\n\xE0\xA0\x80\n\xED\x9F\xBF\n\xEE\x80\x80\n"
                       "\xEF\xBF\xBF\n\xF0\x90\x80\x80\n\xF4\x8F\xBF\xBF\n"), 0,
     {"1:\xC2\x80", "2:\xDF\xBF", "3:\xE0\xA0\x80", "4:\xED\x9F\xBF", "5:\xEE\x80\x80",
      "6:\xEF\xBF\xBF", "7:\xF0\x90\x80\x80", "8:\xF4\x8F\xBF\xBF"}},
    {"overlong two bytes", IN("\xC0\xAF\n\xC1\xBF\nok\n"), 0,
     {"1:!invalid UTF-8", "2:!invalid UTF-8", "3:ok"}},
    {"overlong three and four bytes", IN("\xE0\x80\xAF\n\xE0\x9F\xBF\n\xF0\x80\x80\xAF\n"
                                         "\xF0\x8F\xBF\xBF\n"), 0,
     {"1:!invalid UTF-8", "2:!invalid UTF-8", "3:!invalid UTF-8", "4:!invalid UTF-8"}},
    {"surrogates", IN("\xED\xA0\x80\n\xED\xBF\xBF\nx\xED\xB0\x80y\n"), 0,
     {"1:!invalid UTF-8", "2:!invalid UTF-8", "3:!invalid UTF-8"}},
    {"above U+10FFFF", IN("\xF4\x90\x80\x80\n\xF5\x80\x80\x80\n\xF7\xBF\xBF\xBF\n"), 0,
     {"1:!invalid UTF-8", "2:!invalid UTF-8", "3:!invalid UTF-8"}},
    {"bytes never in UTF-8", IN("\xF8\x88\x80\x80\x80\n\xFE\n\xFF\n"), 0,
     {"1:!invalid UTF-8", "2:!invalid UTF-8", "3:!invalid UTF-8"}},
    {"stray continuation", IN("a\x80\n\xBF\n"), 0, {"1:!invalid UTF-8", "2:!invalid UTF-8"}},
    {"truncated at eof", IN("a\n\xE2\x82"), 0, {"1:a", "2:!invalid UTF-8"}},
    {"truncated four at eof", IN("\xF0\x9F\x98"), 0, {"1:!invalid UTF-8"}},
    {"truncated before LF", IN("\xE2\x82\nb\n"), 0, {"1:!invalid UTF-8", "2:b"}},
    {"truncated before ASCII", IN("\xE2\x82" "a\n\xC3 \n"), 0,
     {"1:!invalid UTF-8", "2:!invalid UTF-8"}},
    {"after a long ASCII run", IN("http://example.com/path/\xC3\n"), 0, {"1:!invalid UTF-8"}},
    {"invalid UTF-8 in a comment", IN("# caf\xE9\nb\n"), 0, {"1:!invalid UTF-8", "2:b"}},
};

struct got {
    char *line[MAX_OUT + 1];
    size_t n;
};

static void got_free(struct got *g)
{
    for (size_t i = 0; i < g->n; i++)
        free(g->line[i]);
    g->n = 0;
}

/* Formats one line as the rows spell them. */
static void keep(struct got *g, const struct input_line *l)
{
    assert_true(g->n < MAX_OUT + 1);
    size_t len = l->error != NULL ? strlen(l->error) : l->len;
    char *s = malloc(len + 32);
    assert_non_null(s);
    int n = snprintf(s, 32, "%lu:", l->lineno);
    if (l->error != NULL) {
        assert_null(l->text);
        s[n++] = '!';
        memcpy(s + n, l->error, len);
    } else {
        assert_non_null(l->text);
        memcpy(s + n, l->text, len);
    }
    s[n + len] = '\0';
    g->line[g->n++] = s;
}

static void drain(input_lines *il, struct got *g, int at_eof)
{
    struct input_line l;
    while (input_lines_next(il, &l, at_eof) == 1)
        keep(g, &l);
}

/* Feeds `len` bytes in pieces of `chunk` (0: all at once). With `lazy`, lines are only taken
 * at the end, so the splitter must bound its memory on its own. */
static void split(const char *in, size_t len, size_t max_line, size_t chunk, int lazy,
                  struct got *g)
{
    input_lines il;
    input_lines_init(&il, max_line);
    if (chunk == 0)
        chunk = len ? len : 1;
    for (size_t off = 0; off < len; off += chunk) {
        size_t n = len - off < chunk ? len - off : chunk;
        /* A private copy puts the end of each piece right before the allocator's redzone. */
        char *piece = malloc(n);
        assert_non_null(piece);
        memcpy(piece, in + off, n);
        assert_int_equal(input_lines_feed(&il, piece, n), 0);
        free(piece);
        if (!lazy)
            drain(&il, g, 0);
    }
    drain(&il, g, 1);
    /* Once finished, it stays finished. */
    struct input_line l;
    assert_int_equal(input_lines_next(&il, &l, 1), 0);
    input_lines_finish(&il);
}

static void check_row(const struct row *r, size_t chunk, int lazy)
{
    struct got g = {.n = 0};
    split(r->in, r->len, r->max_line, chunk, lazy, &g);
    size_t want = 0;
    while (want < MAX_OUT && r->want[want] != NULL)
        want++;
    int ok = g.n == want;
    for (size_t i = 0; ok && i < want; i++)
        ok = strcmp(g.line[i], r->want[i]) == 0;
    if (!ok) {
        print_error("row \"%s\", chunk %zu%s:\n", r->name, chunk, lazy ? ", lazy" : "");
        for (size_t i = 0; i < g.n || i < want; i++)
            print_error("  got %-30s want %s\n", i < g.n ? g.line[i] : "-",
                        i < want ? r->want[i] : "-");
    }
    got_free(&g);
    assert_true(ok);
}

static void test_rows_whole(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        check_row(&rows[i], 0, 0);
}

static void test_rows_byte_at_a_time(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        check_row(&rows[i], 1, 0);
        check_row(&rows[i], 1, 1);
    }
}

static void test_rows_odd_chunks(void **state)
{
    (void)state;
    static const size_t chunks[] = {2, 3, 5, 7, 11};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        for (size_t c = 0; c < sizeof chunks / sizeof chunks[0]; c++) {
            check_row(&rows[i], chunks[c], 0);
            check_row(&rows[i], chunks[c], 1);
        }
}

/* Every split point of every row: the output must not depend on where a read ends. */
static void test_rows_every_split(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        const struct row *r = &rows[i];
        struct got whole = {.n = 0};
        split(r->in, r->len, r->max_line, 0, 0, &whole);
        for (size_t cut = 0; cut <= r->len; cut++) {
            struct got g = {.n = 0};
            input_lines il;
            input_lines_init(&il, r->max_line);
            assert_int_equal(input_lines_feed(&il, r->in, cut), 0);
            drain(&il, &g, 0);
            assert_int_equal(input_lines_feed(&il, r->in + cut, r->len - cut), 0);
            drain(&il, &g, 1);
            input_lines_finish(&il);
            assert_int_equal(g.n, whole.n);
            for (size_t k = 0; k < g.n; k++)
                assert_string_equal(g.line[k], whole.line[k]);
            got_free(&g);
        }
        got_free(&whole);
    }
}

static void test_default_limit_message(void **state)
{
    (void)state;
    size_t n = INPUT_MAX_LINE + 1;
    char *in = malloc(n + 16);
    assert_non_null(in);
    memcpy(in, "a\n", 2);
    memset(in + 2, 'x', n);
    memcpy(in + 2 + n, "\nb\n", 3);
    struct got g = {.n = 0};
    split(in, n + 5, 0, 4096, 0, &g);
    assert_int_equal(g.n, 3);
    assert_string_equal(g.line[0], "1:a");
    assert_string_equal(g.line[1], "2:!line longer than 64 KiB");
    assert_string_equal(g.line[2], "3:b");
    got_free(&g);

    /* INPUT_MAX_LINE itself is fine. */
    memcpy(in + 2 + INPUT_MAX_LINE, "\nb\n", 3);
    split(in, INPUT_MAX_LINE + 5, 0, 1000, 1, &g);
    assert_int_equal(g.n, 3);
    assert_int_equal(strlen(g.line[1]), 2 + INPUT_MAX_LINE);
    got_free(&g);
    free(in);
}

/* 64 MiB of one line, fed in reads of various sizes and never drained until the end: the
 * buffer must stay near the limit, and the lines after it must be numbered right. */
static void test_over_long_memory_bounded(void **state)
{
    (void)state;
    static const size_t reads[] = {1, 4096, 65536, 1 << 20};
    char *block = malloc(1 << 20);
    assert_non_null(block);
    memset(block, 'x', 1 << 20);

    for (size_t r = 0; r < sizeof reads / sizeof reads[0]; r++) {
        for (int lazy = 0; lazy <= 1; lazy++) {
            input_lines il;
            struct got g = {.n = 0};
            input_lines_init(&il, 0);
            assert_int_equal(input_lines_feed(&il, "a\n#\n", 4), 0);
            size_t total = reads[r] == 1 ? (size_t)1 << 20 : (size_t)64 << 20;
            for (size_t off = 0; off < total; off += reads[r]) {
                assert_int_equal(input_lines_feed(&il, block, reads[r]), 0);
                if (!lazy)
                    drain(&il, &g, 0);
                assert_true(il.pending.cap <= 2 * INPUT_MAX_LINE + 64);
            }
            assert_int_equal(input_lines_feed(&il, "\r\nb\n", 4), 0);
            drain(&il, &g, 1);
            assert_int_equal(g.n, 3);
            assert_string_equal(g.line[0], "1:a");
            assert_string_equal(g.line[1], "3:!line longer than 64 KiB");
            assert_string_equal(g.line[2], "4:b");
            got_free(&g);
            input_lines_finish(&il);
        }
    }
    free(block);
}

/* A line handed out stays valid until the next feed, even while later lines are taken. */
static void test_text_points_into_buffer(void **state)
{
    (void)state;
    input_lines il;
    struct input_line a, b;
    input_lines_init(&il, 0);
    assert_int_equal(input_lines_feed(&il, IN(" http://a/ \nhttp://b/\n")), 0);
    assert_int_equal(input_lines_next(&il, &a, 0), 1);
    assert_int_equal(input_lines_next(&il, &b, 0), 1);
    assert_int_equal(input_lines_next(&il, &b, 0), 0);
    assert_int_equal(input_lines_next(&il, &b, 1), 0);
    assert_int_equal(a.len, 9);
    assert_memory_equal(a.text, "http://a/", 9);
    assert_null(a.error);
    assert_int_equal(a.lineno, 1);
    input_lines_finish(&il);
}

static void test_next_without_feed(void **state)
{
    (void)state;
    input_lines il;
    struct input_line l;
    input_lines_init(&il, 0);
    assert_int_equal(input_lines_next(&il, &l, 0), 0);
    assert_int_equal(input_lines_next(&il, &l, 1), 0);
    assert_int_equal(input_lines_feed(&il, "", 0), 0);
    assert_int_equal(input_lines_next(&il, &l, 1), 0);
    input_lines_finish(&il);
}

/* Processor time, not wall-clock time: the bound below is on the work done, which other
 * programs sharing a busy machine do not lengthen. */
static double now(void)
{
    return (double)clock() / CLOCKS_PER_SEC;
}

/* 1,000,000 URL lines read in 64 KiB pieces. The limit is loose so that sanitizer builds
 * pass; the figure printed is what to look at. */
static void test_million_lines(void **state)
{
    (void)state;
    const size_t lines = 1000000;
    char *in = malloc(lines * 48);
    assert_non_null(in);
    size_t len = 0;
    for (size_t i = 0; i < lines; i++)
        len += (size_t)sprintf(in + len, i % 10 == 0 ? "  http://example.com/p/%zu\r\n"
                                                     : "http://example.com/p/%zu\n", i);

    double t0 = now();
    input_lines il;
    struct input_line l;
    size_t got = 0, bytes = 0;
    input_lines_init(&il, 0);
    for (size_t off = 0; off < len; off += 65536) {
        size_t n = len - off < 65536 ? len - off : 65536;
        assert_int_equal(input_lines_feed(&il, in + off, n), 0);
        while (input_lines_next(&il, &l, 0) == 1) {
            got++;
            bytes += l.len;
        }
    }
    while (input_lines_next(&il, &l, 1) == 1)
        got++;
    double t1 = now();
    input_lines_finish(&il);

    assert_int_equal(got, lines);
    assert_true(bytes > lines * 20);
    print_message("split %zu lines (%zu bytes) in %.1f ms\n", got, len, (t1 - t0) * 1e3);
    assert_true(t1 - t0 < 2.0);
    free(in);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rows_whole),
        cmocka_unit_test(test_rows_byte_at_a_time),
        cmocka_unit_test(test_rows_odd_chunks),
        cmocka_unit_test(test_rows_every_split),
        cmocka_unit_test(test_default_limit_message),
        cmocka_unit_test(test_over_long_memory_bounded),
        cmocka_unit_test(test_text_points_into_buffer),
        cmocka_unit_test(test_next_without_feed),
        cmocka_unit_test(test_million_lines),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
