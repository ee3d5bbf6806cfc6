/* test_html.c: the tokenizer against a table of pages, written as the (tag, attribute, value)
 * reports it makes; a callback that stops the scan; bad arguments. The link cases in
 * test_links.c run through this tokenizer too, by way of the extractor's rules. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "buf.h"
#include "html.h"

struct row {
    const char *html;
    size_t len; /* from sizeof, so rows may hold NUL bytes */
    /* Reports joined with '|': "tag name=value" for an attribute with a value, "tag name"
     * for one without, "tag>" for the end of a start tag. */
    const char *want;
};

#define ROW(h, w) {h, sizeof(h) - 1, w}

static const struct row rows[] = {
    ROW("", ""),
    ROW("text only", ""),
    ROW("<a href=\"x\" class=y>", "a href=x|a class=y|a>"),
    ROW("<A HREF='x'>", "A HREF=x|A>"), /* names as written: comparing is the caller's */
    ROW("<a href>", "a href|a>"),
    ROW("<a href=>", "a href=|a>"),
    ROW("<a href = \"x y\" >", "a href=x y|a>"),
    ROW("<a href=1 href=2>", "a href=1|a href=2|a>"), /* duplicates too: the first counts */
    ROW("<img/src=a/>", "img src=a/|img>"),
    ROW("<div data-x='a>b' id=q>", "div data-x=a>b|div id=q|div>"),
    ROW("<p =x>", "p =x|p>"),
    ROW("<br/>", "br>"),
    ROW("<a\nhref\r\n=\f\"x\"\n>", "a href=x|a>"),
    ROW("<a href=\"x&amp;y\">", "a href=x&amp;y|a>"), /* raw: references are not decoded */
    ROW("<a b=\"\0\">", "a b=\0|a>"),
    /* the page ends inside a tag: attributes read so far, but no end */
    ROW("<a href=x", "a href=x"),
    ROW("<a href=x id", "a href=x"), /* a name is reported once what follows it is known */
    ROW("<a href=\"x", ""),
    ROW("<a href=", ""),
    ROW("<a", ""),
    /* not start tags */
    ROW("</a href=x><p>", "p>"),
    ROW("<!-- <a href=x> --><b>", "b>"),
    ROW("<!--><a>", "a>"),
    ROW("<!---><a>", "a>"),
    ROW("<!-- x --!><a>", "a>"),
    ROW("<!DOCTYPE html><a>", "a>"),
    ROW("<![CDATA[<a href=x>]]><b>", "b>"), /* a bogus comment up to the first '>' */
    ROW("<?php x ?><a>", "a>"),
    ROW("< a><1a><a>", "a>"),
    ROW("</ x><a>", "a>"),
    ROW("</", ""),
    /* raw text */
    ROW("<script><a href=x></script><b c=d>", "script>|b c=d|b>"),
    ROW("<script><!--<script></script><a></script><b>", "script>|b>"),
    ROW("<style>a{}<a href=x></STYLE ><b>", "style>|b>"),
    ROW("<textarea><a href=x></textarea><b>", "textarea>|b>"),
    ROW("<title><a></titlex></title><b>", "title>|b>"),
    ROW("<plaintext><a href=x></plaintext><b>", "plaintext>"),
    ROW("<script src=s><a>", "script src=s|script>"),
};

static int on_attr(void *ctx, const struct html_tag *tag, const char *name, size_t name_len,
                   const char *value, size_t value_len)
{
    struct buf *out = ctx;
    if (out->len > 0)
        assert_int_equal(buf_putc(out, '|'), 0);
    assert_int_equal(buf_append(out, tag->name, tag->len), 0);
    assert_int_equal(buf_putc(out, ' '), 0);
    assert_int_equal(buf_append(out, name, name_len), 0);
    if (value != NULL) {
        assert_int_equal(buf_putc(out, '='), 0);
        assert_int_equal(buf_append(out, value, value_len), 0);
    }
    return 0;
}

static int on_tag_end(void *ctx, const struct html_tag *tag)
{
    struct buf *out = ctx;
    if (out->len > 0)
        assert_int_equal(buf_putc(out, '|'), 0);
    assert_int_equal(buf_append(out, tag->name, tag->len), 0);
    assert_int_equal(buf_putc(out, '>'), 0);
    return 0;
}

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

static size_t want_len(const struct row *r)
{
    /* The one row with a NUL in its reports spells it out. */
    return strcmp(r->want, "a b=") == 0 ? 8 : strlen(r->want);
}

static void test_table(void **state)
{
    (void)state;
    html_tokenizer *t;
    char err[128];
    assert_int_equal(html_tokenizer_create(&t, err, sizeof err), 0);
    int failures = 0;
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        const struct row *r = &rows[i];
        /* Exactly the page's bytes, so the sanitizer catches a read past it. */
        char *copy = malloc(r->len > 0 ? r->len : 1);
        assert_non_null(copy);
        memcpy(copy, r->html, r->len);
        struct buf out;
        buf_init(&out);
        struct html_handler h = {.attr = on_attr, .tag_end = on_tag_end, .ctx = &out};
        int rc = html_scan(t, copy, r->len, &h);
        size_t wl = want_len(r);
        if (rc != 0 || out.len != wl || (wl > 0 && memcmp(out.data, r->want, wl) != 0)) {
            failures++;
            fprintf(stderr, "row %zu: ", i);
            print_escaped(r->html, r->len);
            fprintf(stderr, "\n  want: ");
            print_escaped(r->want, wl);
            fprintf(stderr, "\n  got:  ");
            print_escaped(out.data != NULL ? out.data : "", out.len);
            fprintf(stderr, " (rc %d)\n", rc);
        }
        buf_finish(&out);
        free(copy);
    }
    fprintf(stderr, "%zu rows, %d failed\n", sizeof(rows) / sizeof(rows[0]), failures);
    html_tokenizer_destroy(t);
    assert_int_equal(failures, 0);
}

struct stopper {
    int attrs, ends;
    int stop_at_attr, stop_at_end; /* 1-based; 0 never */
};

static int stop_attr(void *ctx, const struct html_tag *tag, const char *name, size_t name_len,
                     const char *value, size_t value_len)
{
    (void)tag, (void)name, (void)name_len, (void)value, (void)value_len;
    struct stopper *s = ctx;
    return ++s->attrs == s->stop_at_attr ? 7 : 0;
}

static int stop_end(void *ctx, const struct html_tag *tag)
{
    (void)tag;
    struct stopper *s = ctx;
    return ++s->ends == s->stop_at_end ? 8 : 0;
}

static void test_stop(void **state)
{
    (void)state;
    html_tokenizer *t;
    assert_int_equal(html_tokenizer_create(&t, NULL, 0), 0);
    const char page[] = "<a x=1 y=2><b z=3><c>";

    struct stopper s = {.stop_at_attr = 2};
    struct html_handler h = {.attr = stop_attr, .tag_end = stop_end, .ctx = &s};
    assert_int_equal(html_scan(t, page, sizeof page - 1, &h), 7);
    assert_int_equal(s.attrs, 2);
    assert_int_equal(s.ends, 0); /* a stopped tag never ends */

    s = (struct stopper){.stop_at_end = 2};
    assert_int_equal(html_scan(t, page, sizeof page - 1, &h), 8);
    assert_int_equal(s.attrs, 3);
    assert_int_equal(s.ends, 2);

    s = (struct stopper){0};
    assert_int_equal(html_scan(t, page, sizeof page - 1, &h), 0);
    assert_int_equal(s.attrs, 3);
    assert_int_equal(s.ends, 3);
    html_tokenizer_destroy(t);
}

static void test_arguments(void **state)
{
    (void)state;
    html_tokenizer *t;
    char err[16];
    assert_int_equal(html_tokenizer_create(NULL, err, sizeof err), -EINVAL);
    assert_int_equal(html_tokenizer_create(&t, NULL, 1), -EINVAL);
    assert_int_equal(html_tokenizer_create(&t, err, sizeof err), 0);
    struct buf out;
    buf_init(&out);
    struct html_handler h = {.attr = on_attr, .tag_end = on_tag_end, .ctx = &out};
    struct html_handler half = {.attr = on_attr, .ctx = &out};
    assert_int_equal(html_scan(NULL, "<a>", 3, &h), -EINVAL);
    assert_int_equal(html_scan(t, NULL, 3, &h), -EINVAL);
    assert_int_equal(html_scan(t, "<a>", 3, NULL), -EINVAL);
    assert_int_equal(html_scan(t, "<a>", 3, &half), -EINVAL);
    assert_int_equal(html_scan(t, NULL, 0, &h), 0);
    assert_int_equal(out.len, 0);
    buf_finish(&out);
    html_tokenizer_destroy(t);
    html_tokenizer_destroy(NULL);

    assert_true(html_name_is("HrEf", 4, "href"));
    assert_false(html_name_is("hre", 3, "href"));
    assert_false(html_name_is("hrefs", 5, "href"));
    assert_true(html_name_is("Accept-Charset", 14, "accept-charset"));
    assert_false(html_name_is("\x0d", 1, "-")); /* only letters fold */
    assert_false(html_name_is("\x1a", 1, ":"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_stop),
        cmocka_unit_test(test_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
