/* test_links.c: the link extractor against a table of pages, plus user patterns and big inputs;
 * the URL filters are tested in test_filter.c. */
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
#include "links.h"

/* Expected links are joined with '\n', a base link prefixed "BASE ", a robots nofollow meta's
 * content "NOFOLLOW " (the table's extractor asks for those); NONE (no links at all)
 * is told apart from a single empty value, "". */
#define NONE NULL
#define FFFD "\xEF\xBF\xBD"

struct row {
    const char *html;
    size_t len; /* from sizeof, so rows may hold NUL bytes */
    const char *want;
};

#define ROW(h, w) {h, sizeof(h) - 1, w}

static const struct row rows[] = {
    /* quoting */
    ROW("<a href=\"x\">", "x"),
    ROW("<a href='x'>", "x"),
    ROW("<a href=x>", "x"),
    ROW("<a href=x/y>", "x/y"),
    ROW("<a href=x/>", "x/"),
    ROW("<a href=x/ >", "x/"),
    ROW("<a href=\"a'b\">", "a'b"),
    ROW("<a href='a\"b'>", "a\"b"),
    ROW("<a href=a\"b'c>", "a\"b'c"),
    ROW("<a href=\"a>b\">", "a>b"),
    ROW("<a href='a>b'>", "a>b"),
    ROW("<a href=\"a b\tc\">", "a b\tc"),
    ROW("<a href=\"\">", ""),
    ROW("<a href=''>", ""),
    ROW("<a href=\"\"><a href=z>", "\nz"),
    ROW("<a href=>", ""),
    ROW("<a href = >", ""),
    /* white space around '=', letter case, tags over several lines */
    ROW("<a href = \"x\" >", "x"),
    ROW("<a href\t=\n'x'>", "x"),
    ROW("<a\nhref\r\n=\f\"x\"\n>", "x"),
    ROW("<a\n  class=\"c\"\n  href=\"x\"\n  id=y\n>", "x"),
    ROW("<a\thref=x>", "x"),
    ROW("<a\fhref=x>", "x"),
    ROW("<a\rhref=x>", "x"),
    ROW("<A HREF=\"x\">", "x"),
    ROW("<a HrEf=x>", "x"),
    ROW("<LINK Href=x>", "x"),
    /* only whole attribute names */
    ROW("<a data-href=\"x\">", NONE),
    ROW("<link hreflang=\"en\" href=\"y\">", "y"),
    ROW("<a xhref=x>", NONE),
    ROW("<a hrefx=x>", NONE),
    ROW("<a href-x=1 href=y>", "y"),
    ROW("<a =href=x>", NONE),
    ROW("<a \"href\"=x>", NONE),
    ROW("<a 'href'=x>", NONE),
    ROW("<a\x0bhref=x>", NONE), /* VT is not HTML white space: it is part of the tag name */
    /* href text that is not an attribute */
    ROW("<a title=\"x href=y\">", NONE),
    ROW("<a title='href=y' href=z>", "z"),
    ROW("<a title=href=y>", NONE),
    ROW("<a title=\"<a href=y>\" href=z>", "z"),
    ROW("<p>href=x</p>", NONE),
    ROW("href=\"x\"", NONE),
    ROW("<a id=1/href=x>", NONE),
    /* attribute separators */
    ROW("<a/href=x>", "x"),
    ROW("<a id=\"1\"/href=x>", "x"),
    ROW("<a id=\"1\"href=x>", "x"),
    ROW("<a id='1'href=\"x\">", "x"),
    ROW("<a / / href=x / >", "x"),
    ROW("<a href=x <a href=y>", "x"),
    /* comments */
    ROW("<!-- <a href=x> -->", NONE),
    ROW("<!-- <a href=x> --> <a href=y>", "y"),
    ROW("<!--> <a href=x>", "x"),
    ROW("<!---> <a href=x>", "x"),
    ROW("<!----> <a href=x>", "x"),
    ROW("<!-----> <a href=x>", "x"),
    ROW("<!-- <a href=x>", NONE),
    ROW("<!--", NONE),
    ROW("<!-- a --!> <a href=x>", "x"),
    ROW("<!--x--!><a href=y>", "y"),
    ROW("<!-- -- > <a href=x> -->", NONE),
    ROW("<!-- --!x <a href=x> -->", NONE),
    ROW("<!-- <!-- nested --> <a href=y>", "y"),
    ROW("<!---- <a href=x> -->", NONE),
    ROW("<!-- - -> <a href=x> -- >", NONE),
    ROW("<!-x href=x><a href=y>", "y"),
    ROW("<!-- \0 --><a href=x>", "x"),
    ROW("<!-- <a href=x> --><!-- <a href=y> --><a href=z>", "z"),
    /* raw text elements */
    ROW("<script><a href=x></script><a href=y>", "y"),
    ROW("<script>var s = \"<a href='x'>\";</SCRIPT ><a href=y>", "y"),
    ROW("<SCRIPT type=\"text/javascript\"><a href=x></script\n><a href=y>", "y"),
    ROW("<script><a href=x></scripts><a href=y></script><a href=z>", "z"),
    ROW("<script><a href=x>", NONE),
    ROW("<script></script", NONE),
    ROW("<script>if (a<b) x = '</s'; <a href=x></Script><a href=y>", "y"),
    ROW("<script><!-- </script><a href=y>", "y"),
    ROW("<script/><a href=x></script><a href=y>", "y"),
    ROW("<script><!--<script></script><a href=x></script><a href=y>", "y"),
    ROW("<SCRIPT><!--<Script ></SCRIPT><a href=x></sCrIpT\t><a href=y>", "y"),
    ROW("<script><!--<script>--></script><a href=y>", "y"),
    ROW("<script><!--></script><a href=y>", "y"),
    ROW("<script><!---></script><a href=y>", "y"),
    ROW("<script><!--<scripts></script><a href=y>", "y"),
    ROW("<script><!--<script></script>--><a href=x></script><a href=y>", "y"),
    ROW("<script><!--<script><a href=x></script>", NONE),
    ROW("<script></script foo=\">\" href=q><a href=y>", "y"),
    ROW("<scripts><a href=x>", "x"),
    ROW("<script src=a href=s></script>", "s"),
    ROW("<style>a{} <a href=x></style><a href=y>", "y"),
    ROW("<style></STYLE/><a href=y>", "y"),
    ROW("<STYLE><!-- <a href=x> --></Style>--><a href=y>", "y"),
    ROW("<textarea><a href=x></textarea><a href=y>", "y"),
    ROW("<textarea><!--</textarea><a href=y>-->", "y"),
    ROW("<title><a href=x></TiTlE><a href=y>", "y"),
    ROW("<title href=t>x</title>", "t"),
    ROW("<xmp><a href=x></xmp><a href=y>", "y"),
    ROW("<iframe><a href=x></iframe><a href=y>", "y"),
    ROW("<noembed><a href=x></noembed><a href=y>", "y"),
    ROW("<noframes><a href=x></noframes><a href=y>", "y"),
    ROW("<plaintext><a href=x></plaintext><a href=y>", NONE),
    ROW("<noscript><a href=x></noscript>", "x"),
    ROW("<script href=\"a\"<a href=y>", "a"),
    /* the first base element only */
    ROW("<base href=\"/b/\"><a href=x>", "BASE /b/\nx"),
    ROW("<base href=a><base href=b>", "BASE a"),
    ROW("<a href=x><base href=b><a href=y>", "x\nBASE b\ny"),
    ROW("<base target=_top><base href=b>", "BASE b"),
    ROW("<BASE HREF=b>", "BASE b"),
    ROW("<base href><base href=b><a href=c>", "c"),
    ROW("<base href=\"\"><base href=b>", "BASE "),
    ROW("<base href=b><link href=c>", "BASE b\nc"),
    ROW("<basefont href=x><base href=b>", "x\nBASE b"),
    ROW("</base href=x><base href=y>", "BASE y"),
    ROW("<base href=\"&amp;\">", "BASE &"),
    ROW("<base href=\"x", NONE),
    ROW("<!-- <base href=x> --><base href=y>", "BASE y"),
    /* duplicate attributes: the first one counts */
    ROW("<a href=x href=y>", "x"),
    ROW("<a HREF=x href=y>", "x"),
    ROW("<a href href=y>", NONE),
    ROW("<a href=\"x\"href=\"y\">", "x"),
    ROW("<a id=1 href=x href=y><a href=z>", "x\nz"),
    /* attributes without a value */
    ROW("<a href>", NONE),
    ROW("<a href >", NONE),
    ROW("<a href/>", NONE),
    ROW("<a href target=x>", NONE),
    ROW("<a href\n>", NONE),
    /* tag names */
    ROW("< a href=x>", NONE),
    ROW("<1 href=x>", NONE),
    ROW("<a1 href=x>", "x"),
    ROW("<my-element href=x>", "x"),
    ROW("<svg:a href=x>", "x"),
    ROW("<area href=x><link href=y><div href=z>", "x\ny\nz"),
    ROW("<a\0 href=x>", "x"),
    ROW("<<a href=x>", "x"),
    ROW("<a<a href=x>", "x"),
    ROW("a < b <a href=x>", "x"),
    ROW("<img src=x><a name=y>", NONE),
    ROW("<a href=1><img src=x><link href=2><area href=3>", "1\n2\n3"),
    ROW("", NONE),
    /* incomplete tags and the end of the page */
    ROW("<a href=x", NONE),
    ROW("<a href=\"x", NONE),
    ROW("<a href=\"x\"", NONE),
    ROW("<a href=\"x\" ", NONE),
    ROW("<a href=", NONE),
    ROW("<a href", NONE),
    ROW("<a href='x><a href=y>", NONE),
    ROW("<a href=x><a href=\"y><a href=z>", "x"),
    ROW("<a href=x><", "x"),
    ROW("<a href=x></", "x"),
    ROW("<a href=x></a", "x"),
    ROW("<a href=x><!", "x"),
    ROW("<a href=x><!-", "x"),
    ROW("<a href=x><?", "x"),
    ROW("<a href=x><a", "x"),
    /* end tags, doctype, processing instructions, bogus comments */
    ROW("</a href=x>", NONE),
    ROW("</a href=x><a href=y>", "y"),
    ROW("</a title=\">\" href=x><a href=y>", "y"),
    ROW("</a\nhref=x\n>", NONE),
    ROW("<!DOCTYPE html><a href=x>", "x"),
    ROW("<!DOCTYPE html PUBLIC \"-//W3C//DTD\"><a href=y>", "y"),
    ROW("<!doctype href=x>", NONE),
    ROW("<?xml version=\"1.0\" href=\"x\"?><a href=y>", "y"),
    ROW("<?php echo \"<a href=x>\" ?>", NONE),
    ROW("</ a href=x><a href=y>", "y"),
    ROW("</><a href=y>", "y"),
    ROW("</1 href=x><a href=y>", "y"),
    ROW("<![CDATA[<a href=x>]]><a href=y>", "y"),
    /* character references: numeric */
    ROW("<a href=\"&#47;\">", "/"),
    ROW("<a href=\"&#x2F;\">", "/"),
    ROW("<a href=\"&#X2f;\">", "/"),
    ROW("<a href=\"&#47x\">", "/x"),
    ROW("<a href=\"&#x2fz\">", "/z"),
    ROW("<a href=\"&#65;&#x42;&#0067;\">", "ABC"),
    ROW("<a href=\"&#x000000000041;\">", "A"),
    ROW("<a href=\"&#0;\">", FFFD),
    ROW("<a href=\"&#xD800;\">", FFFD),
    ROW("<a href=\"&#xdfff;\">", FFFD),
    ROW("<a href=\"&#x110000;\">", FFFD),
    ROW("<a href=\"&#99999999999999999999;\">", FFFD),
    ROW("<a href=\"&#x10FFFF;\">", "\xF4\x8F\xBF\xBF"),
    ROW("<a href=\"&#x1F600;\">", "\xF0\x9F\x98\x80"),
    ROW("<a href=\"&#x80;\">", "\xE2\x82\xAC"),
    ROW("<a href=\"&#x81;\">", "\xC2\x81"),
    ROW("<a href=\"&#150;\">", "\xE2\x80\x93"),
    ROW("<a href=\"&#x9F;\">", "\xC5\xB8"),
    ROW("<a href=\"&#xA0;\">", "\xC2\xA0"),
    ROW("<a href=\"&#;\">", "&#;"),
    ROW("<a href=\"&#x;\">", "&#x;"),
    ROW("<a href=\"&#xg\">", "&#xg"),
    ROW("<a href=\"&#\">", "&#"),
    /* character references: named */
    ROW("<a href=\"a&amp;b\">", "a&b"),
    ROW("<a href=\"&lt;&gt;&quot;&apos;\">", "<>\"'"),
    ROW("<a href=\"&eacute;\">", "\xC3\xA9"),
    ROW("<a href=\"&AMP;\">", "&"),
    ROW("<a href=\"&notin;\">", "\xE2\x88\x89"),
    ROW("<a href=\"&NotNestedGreaterGreater;\">", "\xE2\xAA\xA2\xCC\xB8"),
    ROW("<a href=\"&CounterClockwiseContourIntegral;\">", "\xE2\x88\xB3"),
    ROW("<a href=\"?a=1&copy=2\">", "?a=1&copy=2"),
    ROW("<a href=\"?a=1&copy2\">", "?a=1&copy2"),
    ROW("<a href=\"&copy\">", "\xC2\xA9"),
    ROW("<a href=\"&copy x\">", "\xC2\xA9 x"),
    ROW("<a href=\"&copy;2\">", "\xC2\xA9" "2"),
    ROW("<a href=\"&copy/\">", "\xC2\xA9/"),
    ROW("<a href=\"&amp\">", "&"),
    ROW("<a href=\"x?a&ampb\">", "x?a&ampb"),
    ROW("<a href=\"&lt\">", "<"),
    ROW("<a href=\"&lt=\">", "&lt="),
    ROW("<a href=\"&notit;\">", "&notit;"),
    ROW("<a href=\"&ampamp;\">", "&ampamp;"),
    ROW("<a href=\"&eacute\">", "\xC3\xA9"),
    ROW("<a href=\"&bogus;\">", "&bogus;"),
    ROW("<a href=\"&hellip\">", "&hellip"), /* no legacy form without ';' */
    ROW("<a href=\"&\">", "&"),
    ROW("<a href=\"&&amp;\">", "&&"),
    ROW("<a href=\"a&b=c\">", "a&b=c"),
    ROW("<a href=\"&;\">", "&;"),
    ROW("<a href=&amp;x>", "&x"),
    ROW("<a href='&quot;'>", "\""),
    ROW("<a href=\"/p?x=1&amp;y=2\">", "/p?x=1&y=2"),
    ROW("<a href=\"&aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa;\">",
        "&aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa;"),
    /* NUL bytes and invalid UTF-8 */
    ROW("\0<a href=x>\0<a href=y>", "x\ny"),
    ROW("<a href=\"a\0b\">", "a" FFFD "b"),
    ROW("<a href=x\0y>", "x" FFFD "y"),
    ROW("<a \0href=x>", NONE),
    ROW("<a href=\"\xff\xfe\x80\">", "\xff\xfe\x80"),
    ROW("\xff\xfe<a href=\xc3(>", "\xc3("),
    ROW("<a href=\"\xed\xa0\x80&amp;\">", "\xed\xa0\x80&"),
    ROW("<\xc3\xa9 href=x>", NONE),
    /* meta robots nofollow: attribute order, case, quoting */
    ROW("<meta name=\"robots\" content=\"nofollow\">", "NOFOLLOW nofollow"),
    ROW("<meta content=\"nofollow\" name=\"robots\">", "NOFOLLOW nofollow"),
    ROW("<meta charset=utf-8 content='nofollow' id=m name='robots'>", "NOFOLLOW nofollow"),
    ROW("<META NAME=\"ROBOTS\" CONTENT=\"NOFOLLOW\">", "NOFOLLOW NOFOLLOW"),
    ROW("<Meta Name=\"Robots\" Content=\"NoFollow\">", "NOFOLLOW NoFollow"),
    ROW("<meta name=robots content=nofollow>", "NOFOLLOW nofollow"),
    ROW("<meta name=robots content=nofollow />", "NOFOLLOW nofollow"),
    ROW("<meta name=\"robots\" content=\"nofollow\"/>", "NOFOLLOW nofollow"),
    ROW("<meta\n  name = \"robots\"\n  content = \"nofollow\"\n>", "NOFOLLOW nofollow"),
    /* meta robots: the content's tokens */
    ROW("<meta name=\"robots\" content=\"noindex, nofollow\">", "NOFOLLOW noindex, nofollow"),
    ROW("<meta name=\"robots\" content=\"noindex,nofollow\">", "NOFOLLOW noindex,nofollow"),
    ROW("<meta name=\"robots\" content=\"nofollow,noindex\">", "NOFOLLOW nofollow,noindex"),
    ROW("<meta name=\"robots\" content=\" \tnofollow\r\f\">", "NOFOLLOW  \tnofollow\r\f"),
    ROW("<meta name=\"robots\" content=\"noarchive nofollow\">", "NOFOLLOW noarchive nofollow"),
    ROW("<meta name=\"robots\" content=\"none\">", "NOFOLLOW none"),
    ROW("<meta name=\"robots\" content=\"max-snippet:20, NONE\">", "NOFOLLOW max-snippet:20, NONE"),
    ROW("<meta name=\"robots\" content=\"noindex\">", NONE),
    ROW("<meta name=\"robots\" content=\"index, follow\">", NONE),
    ROW("<meta name=\"robots\" content=\"nofollowed\">", NONE),
    ROW("<meta name=\"robots\" content=\"no-follow\">", NONE),
    ROW("<meta name=\"robots\" content=\"no follow\">", NONE),
    ROW("<meta name=\"robots\" content=\"nonetheless\">", NONE),
    ROW("<meta name=\"robots\" content=\"\">", NONE),
    ROW("<meta name=\"robots\" content>", NONE),
    ROW("<meta name=\"robots\">", NONE),
    ROW("<meta content=\"nofollow\">", NONE),
    ROW("<meta name content=\"nofollow\">", NONE),
    /* meta robots: which metas */
    ROW("<meta name=\"googlebot\" content=\"nofollow\">", NONE),
    ROW("<meta name=\"robots2\" content=\"nofollow\">", NONE),
    ROW("<meta http-equiv=\"robots\" content=\"nofollow\">", NONE),
    ROW("<meta property=\"robots\" content=\"nofollow\">", NONE),
    ROW("<meta name=\"areq\" content=\"nofollow\">", "NOFOLLOW nofollow"),
    ROW("<meta name=\"AReq\" content=\"none\">", "NOFOLLOW none"),
    ROW("<meta name=\"areq\" content=\"noindex\">", NONE),
    ROW("<metas name=\"robots\" content=\"nofollow\">", NONE),
    ROW("<div name=\"robots\" content=\"nofollow\">", NONE),
    ROW("</meta name=\"robots\" content=\"nofollow\">", NONE),
    ROW("<meta name=\"robots\" content=\"nofollow\"", NONE),
    /* meta robots: duplicate attributes, the first one counts */
    ROW("<meta name=robots name=x content=nofollow>", "NOFOLLOW nofollow"),
    ROW("<meta name=x name=robots content=nofollow>", NONE),
    ROW("<meta name=robots content=index content=nofollow>", NONE),
    /* meta robots: character references */
    ROW("<meta name=\"robots\" content=\"no&#102;ollow\">", "NOFOLLOW nofollow"),
    ROW("<meta name=\"r&#x6F;bots\" content=\"nofollow\">", "NOFOLLOW nofollow"),
    ROW("<meta name=\"robots\" content=\"noindex&comma;nofollow\">", "NOFOLLOW noindex,nofollow"),
    /* meta robots: only real tags */
    ROW("<!-- <meta name=\"robots\" content=\"nofollow\"> -->", NONE),
    ROW("<script><meta name=\"robots\" content=\"nofollow\"></script>", NONE),
    ROW("<script>document.write('<meta name=robots content=none>')</script>", NONE),
    ROW("<title><meta name=robots content=nofollow></title>", NONE),
    ROW("<textarea><meta name=robots content=nofollow></textarea>", NONE),
    ROW("<meta title='<meta name=robots content=nofollow>'>", NONE),
    ROW("<!-- <meta name=robots content=nofollow> --><meta name=robots content=none>", "NOFOLLOW none"),
    /* meta robots: once per document, in document order with links */
    ROW("<meta name=robots content=nofollow><meta name=robots content=none>", "NOFOLLOW nofollow"),
    ROW("<meta name=robots content=noindex><meta name=robots content=nofollow>", "NOFOLLOW nofollow"),
    ROW("<meta name=areq content=none><meta name=robots content=nofollow>", "NOFOLLOW none"),
    ROW("<a href=x><meta name=robots content=nofollow><a href=y>", "x\nNOFOLLOW nofollow\ny"),
    ROW("<base href=b><meta name=robots content=none><base href=c>", "BASE b\nNOFOLLOW none"),
    ROW("<meta name=robots content=nofollow href=h>", "h\nNOFOLLOW nofollow"),
};

struct collect {
    struct buf out;
    size_t count;
    int stop_after; /* stop the scan after this many links, with 42; 0 never */
};

static int collect_fn(void *ctx, enum links_kind kind, const char *value, size_t len)
{
    struct collect *c = ctx;
    if (c->count++ > 0)
        assert_int_equal(buf_putc(&c->out, '\n'), 0);
    if (kind == LINKS_BASE)
        assert_int_equal(buf_append_str(&c->out, "BASE "), 0);
    else if (kind == LINKS_NOFOLLOW)
        assert_int_equal(buf_append_str(&c->out, "NOFOLLOW "), 0);
    assert_int_equal(buf_append(&c->out, value, len), 0);
    if (c->stop_after > 0 && c->count == (size_t)c->stop_after)
        return 42;
    return 0;
}

static size_t count_links(const char *want)
{
    if (want == NULL)
        return 0;
    size_t n = 1;
    for (const char *p = want; *p != '\0'; p++)
        n += *p == '\n';
    return n;
}

/* Scans a copy of exactly `len` bytes, so the sanitizer catches any read past the page. */
static int scan_exact(const links_extractor *x, const char *html, size_t len, struct collect *c)
{
    char *copy = malloc(len > 0 ? len : 1);
    assert_non_null(copy);
    if (len > 0)
        memcpy(copy, html, len);
    int rc = links_scan(x, copy, len, collect_fn, c);
    free(copy);
    return rc;
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

static void test_table(void **state)
{
    (void)state;
    links_extractor *x;
    char err[256];
    assert_int_equal(links_extractor_create_flags(NULL, LINKS_REPORT_NOFOLLOW, &x, err, sizeof(err)),
                     0);
    int failures = 0;
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        const struct row *r = &rows[i];
        struct collect c = {.count = 0};
        buf_init(&c.out);
        int rc = scan_exact(x, r->html, r->len, &c);
        const char *got = c.out.data != NULL ? c.out.data : "";
        size_t want_count = count_links(r->want);
        const char *want = r->want != NULL ? r->want : "";
        if (rc != 0 || c.count != want_count || strlen(want) != c.out.len ||
            memcmp(want, got, c.out.len) != 0) {
            failures++;
            fprintf(stderr, "row %zu: ", i);
            print_escaped(r->html, r->len);
            fprintf(stderr, "\n  want %zu: ", want_count);
            print_escaped(want, strlen(want));
            fprintf(stderr, "\n  got  %zu: ", c.count);
            print_escaped(got, c.out.len);
            fprintf(stderr, " (rc %d)\n", rc);
        }
        buf_finish(&c.out);
    }
    fprintf(stderr, "%zu rows, %d failed\n", sizeof(rows) / sizeof(rows[0]), failures);
    links_extractor_destroy(x);
    assert_int_equal(failures, 0);
}

/* Runs one page through an extractor and compares the joined links. */
static void expect_links(const links_extractor *x, const char *html, size_t len, const char *want,
                         size_t want_count)
{
    struct collect c = {.count = 0};
    buf_init(&c.out);
    assert_int_equal(scan_exact(x, html, len, &c), 0);
    assert_int_equal(c.count, want_count);
    assert_memory_equal(c.out.data != NULL ? c.out.data : "", want, strlen(want) + 1);
    buf_finish(&c.out);
}

static void test_user_pattern(void **state)
{
    (void)state;
    links_extractor *x;
    char err[256];
    assert_int_equal(links_extractor_create("src=\"([^\"]*)\"", &x, err, sizeof(err)), 0);
    const char page[] = "<img src=\"a&amp;b\"><img src=\"c\"><!-- src=\"d\" --><a href=e>";
    expect_links(x, page, sizeof(page) - 1, "a&b\nc\nd", 3);
    links_extractor_destroy(x);

    /* A group that did not take part in a match reports nothing for that match. */
    assert_int_equal(links_extractor_create("a(b)?", &x, err, sizeof(err)), 0);
    expect_links(x, "ab a ab", 7, "b\nb", 2);
    links_extractor_destroy(x);

    /* Invalid UTF-8 and NUL bytes are just bytes; (*UTF) is refused at compile time. */
    assert_int_equal(links_extractor_create("u=(\\S+)", &x, err, sizeof(err)), 0);
    const char odd[] = "u=\xff\xfe u=a\0b";
    expect_links(x, odd, sizeof(odd) - 1, "\xff\xfe\na" FFFD "b", 2);
    links_extractor_destroy(x);
    assert_int_equal(links_extractor_create("(*UTF)(a)", &x, err, sizeof(err)), -EINVAL);
    assert_null(x);
}

static void test_user_pattern_errors(void **state)
{
    (void)state;
    links_extractor *x = (links_extractor *)&x;
    char err[256];
    assert_int_equal(links_extractor_create("src=\"[^\"]*\"", &x, err, sizeof(err)), -EINVAL);
    assert_null(x);
    assert_non_null(strstr(err, "capturing group"));

    assert_int_equal(links_extractor_create("src=\"(", &x, err, sizeof(err)), -EINVAL);
    assert_null(x);
    assert_non_null(strstr(err, "missing closing parenthesis"));
    assert_non_null(strstr(err, "offset 6"));

    /* A short error buffer is truncated, not overrun. */
    char small[8];
    assert_int_equal(links_extractor_create("(", &x, small, sizeof(small)), -EINVAL);
    assert_int_equal(strlen(small), sizeof(small) - 1);
    assert_int_equal(links_extractor_create("(", &x, NULL, 0), -EINVAL);

    assert_int_equal(links_extractor_create(NULL, NULL, err, sizeof(err)), -EINVAL);
    links_extractor_destroy(NULL);
}

static void test_user_pattern_empty_matches(void **state)
{
    (void)state;
    links_extractor *x;
    char err[256];
    /* Same matches as Perl or Python's findall: empty ones included, each position once. */
    assert_int_equal(links_extractor_create("(x*)", &x, err, sizeof(err)), 0);
    expect_links(x, "axxb", 4, "\nxx\n\n", 4);
    links_extractor_destroy(x);

    assert_int_equal(links_extractor_create("()", &x, err, sizeof(err)), 0);
    expect_links(x, "abc", 3, "\n\n\n", 4);
    links_extractor_destroy(x);

    /* An empty match, then a non-empty one at the same place (both fill group 1). */
    assert_int_equal(links_extractor_create("(?|(?=a)()|(a))", &x, err, sizeof(err)), 0);
    expect_links(x, "aa", 2, "\na\n\na", 4);
    links_extractor_destroy(x);

    assert_int_equal(links_extractor_create("\\b(\\w*)", &x, err, sizeof(err)), 0);
    expect_links(x, "ab cd", 5, "ab\n\ncd\n", 4);
    links_extractor_destroy(x);
}

static void test_callback_stops_scan(void **state)
{
    (void)state;
    links_extractor *x;
    char err[256];
    assert_int_equal(links_extractor_create(NULL, &x, err, sizeof(err)), 0);
    struct collect c = {.count = 0, .stop_after = 2};
    buf_init(&c.out);
    const char page[] = "<a href=1><a href=2><a href=3>";
    assert_int_equal(links_scan(x, page, sizeof(page) - 1, collect_fn, &c), 42);
    assert_int_equal(c.count, 2);
    buf_finish(&c.out);

    /* The base rule is per scan: a second scan with the same extractor sees its base again. */
    expect_links(x, "<base href=b>", 13, "BASE b", 1);
    expect_links(x, "<base href=b>", 13, "BASE b", 1);

    assert_int_equal(links_scan(x, NULL, 0, collect_fn, &c), 0);
    assert_int_equal(links_scan(x, NULL, 1, collect_fn, &c), -EINVAL);
    assert_int_equal(links_scan(NULL, page, 1, collect_fn, &c), -EINVAL);
    assert_int_equal(links_scan(x, page, 1, NULL, &c), -EINVAL);
    links_extractor_destroy(x);

    assert_int_equal(links_extractor_create("href=(\\w)", &x, err, sizeof(err)), 0);
    c = (struct collect){.count = 0, .stop_after = 1};
    buf_init(&c.out);
    assert_int_equal(links_scan(x, page, sizeof(page) - 1, collect_fn, &c), 42);
    assert_int_equal(c.count, 1);
    buf_finish(&c.out);
    links_extractor_destroy(x);
}

static void test_nofollow_opt_in(void **state)
{
    (void)state;
    const char page[] = "<a href=x><meta name=robots content=nofollow><a href=y>";
    links_extractor *x;
    char err[256];

    /* Callers that know only HREF and BASE never see the new kind. */
    assert_int_equal(links_extractor_create(NULL, &x, err, sizeof(err)), 0);
    expect_links(x, page, sizeof(page) - 1, "x\ny", 2);
    links_extractor_destroy(x);
    assert_int_equal(links_extractor_create_flags(NULL, 0, &x, err, sizeof(err)), 0);
    expect_links(x, page, sizeof(page) - 1, "x\ny", 2);
    links_extractor_destroy(x);

    /* A user's pattern reports its matches only, whatever the flags. */
    assert_int_equal(
        links_extractor_create_flags("href=(\\w)", LINKS_REPORT_NOFOLLOW, &x, err, sizeof(err)), 0);
    expect_links(x, page, sizeof(page) - 1, "x\ny", 2);
    links_extractor_destroy(x);

    x = (links_extractor *)&x;
    assert_int_equal(links_extractor_create_flags(NULL, 1u << 7, &x, err, sizeof(err)), -EINVAL);
    assert_null(x);

    /* The once-per-document rule is per scan, and the callback can stop the scan on it. */
    assert_int_equal(links_extractor_create_flags(NULL, LINKS_REPORT_NOFOLLOW, &x, err, sizeof(err)),
                     0);
    expect_links(x, page, sizeof(page) - 1, "x\nNOFOLLOW nofollow\ny", 3);
    expect_links(x, page, sizeof(page) - 1, "x\nNOFOLLOW nofollow\ny", 3);
    struct collect c = {.count = 0, .stop_after = 2};
    buf_init(&c.out);
    assert_int_equal(links_scan(x, page, sizeof(page) - 1, collect_fn, &c), 42);
    assert_int_equal(c.count, 2);
    buf_finish(&c.out);
    links_extractor_destroy(x);
}

struct span_check {
    const char *doc;
    size_t len;
    int inside;
    int outside;
};

static int span_fn(void *ctx, enum links_kind kind, const char *value, size_t len)
{
    struct span_check *s = ctx;
    (void)kind;
    if (value >= s->doc && value + len <= s->doc + s->len)
        s->inside++;
    else
        s->outside++;
    return 0;
}

static void test_zero_copy(void **state)
{
    (void)state;
    links_extractor *x;
    char err[256];
    assert_int_equal(links_extractor_create(NULL, &x, err, sizeof(err)), 0);
    const char page[] = "<a href=/plain><a href=\"/a&amp;b\"><base href='/c'>";
    struct span_check s = {page, sizeof(page) - 1, 0, 0};
    assert_int_equal(links_scan(x, page, s.len, span_fn, &s), 0);
    assert_int_equal(s.inside, 2);
    assert_int_equal(s.outside, 1);
    links_extractor_destroy(x);
}

static void test_huge_value(void **state)
{
    (void)state;
    const size_t big = 1024 * 1024;
    for (int quoted = 0; quoted < 2; quoted++) {
        struct buf page;
        buf_init(&page);
        assert_int_equal(buf_append_str(&page, quoted ? "<a href=\"" : "<a href="), 0);
        assert_int_equal(buf_reserve(&page, big), 0);
        memset(page.data + page.len, 'v', big);
        page.len += big;
        assert_int_equal(buf_append_str(&page, quoted ? "\">text<a href=after>" : ">text<a href=after>"), 0);

        links_extractor *x;
        char err[256];
        assert_int_equal(links_extractor_create(NULL, &x, err, sizeof(err)), 0);
        struct collect c = {.count = 0};
        buf_init(&c.out);
        assert_int_equal(scan_exact(x, page.data, page.len, &c), 0);
        assert_int_equal(c.count, 2);
        assert_int_equal(c.out.len, big + 1 + 5);
        for (size_t i = 0; i < big; i++)
            if (c.out.data[i] != 'v')
                fail_msg("byte %zu of the big value is %d", i, c.out.data[i]);
        assert_memory_equal(c.out.data + big, "\nafter", 6);
        buf_finish(&c.out);
        links_extractor_destroy(x);
        buf_finish(&page);
    }
}

struct count_check {
    size_t count;
    int bad;
};

static int count_fn(void *ctx, enum links_kind kind, const char *value, size_t len)
{
    struct count_check *c = ctx;
    char want[32];
    int n = snprintf(want, sizeof(want), "/p/%zu?a=1&b", c->count);
    if (kind != LINKS_HREF || len != (size_t)n || memcmp(value, want, len) != 0)
        c->bad++;
    c->count++;
    return 0;
}

static void test_many_links(void **state)
{
    (void)state;
    const size_t n = 200000;
    struct buf page;
    buf_init(&page);
    assert_int_equal(buf_append_str(&page, "<!DOCTYPE html><html><body><ul>\n"), 0);
    for (size_t i = 0; i < n; i++) {
        char line[128];
        int len = snprintf(line, sizeof(line),
                           "<li class=\"item\"><a href=\"/p/%zu?a=1&amp;b\" title=\"t\">link</a>\n",
                           i);
        assert_int_equal(buf_append(&page, line, (size_t)len), 0);
    }
    assert_int_equal(buf_append_str(&page, "</ul></body></html>\n"), 0);

    links_extractor *x;
    char err[256];
    assert_int_equal(links_extractor_create(NULL, &x, err, sizeof(err)), 0);
    struct count_check c = {0, 0};
    assert_int_equal(links_scan(x, page.data, page.len, count_fn, &c), 0);
    assert_int_equal(c.count, n);
    assert_int_equal(c.bad, 0);
    links_extractor_destroy(x);
    buf_finish(&page);
}

static int ignore_fn(void *ctx, enum links_kind kind, const char *value, size_t len)
{
    (void)kind;
    (void)value;
    (void)len;
    ++*(size_t *)ctx;
    return 0;
}

/* Pages built to make a backtracking or restarting scanner go quadratic: each must be scanned
 * in one linear pass (the test would take minutes otherwise). */
static void test_adversarial(void **state)
{
    (void)state;
    static const struct {
        const char *unit;
        size_t links;
    } cases[] = {
        {"<a href=", 0},  {"<", 0},         {"<<<<", 0},    {"<a href=\"", 0},
        {"<!--", 0},      {"<!-", 0},       {"--", 0},      {"</", 0},
        {"<script>", 0},  {"<a ", 0},       {"&amp", 0},    {"<a href=x>", 1},
        {"<a b=\"", 0},   {"</script", 0},  {"=", 0},       {"<a href='x' ", 0},
    };
    const size_t size = 1024 * 1024;
    links_extractor *x;
    char err[256];
    assert_int_equal(links_extractor_create(NULL, &x, err, sizeof(err)), 0);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t unit = strlen(cases[i].unit), reps = size / unit;
        char *page = malloc(reps * unit);
        assert_non_null(page);
        for (size_t r = 0; r < reps; r++)
            memcpy(page + r * unit, cases[i].unit, unit);
        size_t count = 0;
        assert_int_equal(links_scan(x, page, reps * unit, ignore_fn, &count), 0);
        assert_int_equal(count, cases[i].links * reps);
        free(page);
    }
    links_extractor_destroy(x);
}

/* ---- the table of rules ---- */

/* Adding a kind of link is adding a row: the built-in rules plus img src find the images,
 * while the built-in extractor (what areq uses) still finds only the hrefs. */
static void test_rules_one_more_row(void **state)
{
    (void)state;
    struct links_rule rules[LINKS_RULES_MAX];
    assert_true(links_builtin_nrules < LINKS_RULES_MAX);
    memcpy(rules, links_builtin_rules, links_builtin_nrules * sizeof(rules[0]));
    size_t n = links_builtin_nrules;
    rules[n++] = (struct links_rule){"img", "src", LINKS_HREF};

    links_extractor *x;
    char err[256];
    assert_int_equal(links_extractor_create_rules(rules, n, LINKS_REPORT_NOFOLLOW, &x, err,
                                                  sizeof(err)),
                     0);
    const char page[] = "<base href=/b/><img src=a.png><a href=b><IMG SRC='c&amp;d' src=e>"
                        "<script src=s.js></script><img href=h src=i><img src=j href=k>"
                        "<meta name=robots content=nofollow><img src>";
    expect_links(x, page, sizeof(page) - 1,
                 "BASE /b/\na.png\nb\nc&d\nh\ni\nj\nk\nNOFOLLOW nofollow", 9);
    links_extractor_destroy(x);

    assert_int_equal(links_extractor_create_flags(NULL, LINKS_REPORT_NOFOLLOW, &x, err,
                                                  sizeof(err)),
                     0);
    expect_links(x, page, sizeof(page) - 1, "BASE /b/\nb\nh\nk\nNOFOLLOW nofollow", 5);
    links_extractor_destroy(x);
}

/* A rule for an element overrides the "*" rule of its attribute; without a "*" rule, other
 * elements' attributes of that name are nothing. */
static void test_rules_elements(void **state)
{
    (void)state;
    links_extractor *x;
    char err[256];
    const struct links_rule only_a[] = {{"a", "href", LINKS_HREF}, {"area", "href", LINKS_HREF}};
    assert_int_equal(links_extractor_create_rules(only_a, 2, 0, &x, err, sizeof(err)), 0);
    const char page[] = "<a href=x><link href=y><AREA HREF=z><base href=b><abbr href=w>";
    expect_links(x, page, sizeof(page) - 1, "x\nz", 2);
    links_extractor_destroy(x);

    /* The rows' order does not matter: base's own rule wins over "*" either way. */
    const struct links_rule reversed[] = {{"base", "href", LINKS_BASE}, {"*", "href", LINKS_HREF}};
    assert_int_equal(links_extractor_create_rules(reversed, 2, 0, &x, err, sizeof(err)), 0);
    expect_links(x, page, sizeof(page) - 1, "x\ny\nz\nBASE b\nw", 5);
    links_extractor_destroy(x);

    /* No rules: a scan that finds nothing. */
    assert_int_equal(links_extractor_create_rules(NULL, 0, 0, &x, err, sizeof(err)), 0);
    expect_links(x, page, sizeof(page) - 1, "", 0);
    links_extractor_destroy(x);

    /* The built-in table is what links_extractor_create uses. */
    assert_int_equal(links_builtin_nrules, 4);
    assert_string_equal(links_builtin_rules[0].tag, "*");
    assert_string_equal(links_builtin_rules[0].attr, "href");
}

static void test_rules_errors(void **state)
{
    (void)state;
    links_extractor *x;
    char err[256];
    static const struct {
        struct links_rule rules[2];
        size_t n;
        const char *why;
    } bad[] = {
        {{{"a", "HREF", LINKS_HREF}}, 1, "lower-case name"},
        {{{"A", "href", LINKS_HREF}}, 1, "lower-case name"},
        {{{"a", "", LINKS_HREF}}, 1, "lower-case name"},
        {{{"a", NULL, LINKS_HREF}}, 1, "lower-case name"},
        {{{NULL, "href", LINKS_HREF}}, 1, "lower-case name"},
        {{{"a", "hr ef", LINKS_HREF}}, 1, "lower-case name"},
        {{{"a", "href", (enum links_kind)9}}, 1, "unknown kind"},
        {{{"a", "href", LINKS_HREF}, {"a", "href", LINKS_BASE}}, 2, "two rules"},
        {{{"*", "href", LINKS_HREF}, {"*", "href", LINKS_HREF}}, 2, "two rules"},
        {{{"meta", "content", LINKS_NOFOLLOW}}, 1, "pair"},
        {{{"meta", "name", LINKS_NOFOLLOW}, {"link", "content", LINKS_NOFOLLOW}}, 2, "pair"},
        {{{"meta", "name", LINKS_NOFOLLOW}, {"meta", "href", LINKS_NOFOLLOW}}, 2, "pair"},
        {{{"*", "name", LINKS_NOFOLLOW}, {"*", "content", LINKS_NOFOLLOW}}, 2, "pair"},
        {{{"a", "x123456789012345678901234567890123456789012345678901234567890123",
           LINKS_HREF}},
         1, "64 bytes"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        x = (links_extractor *)&x;
        assert_int_equal(links_extractor_create_rules(bad[i].rules, bad[i].n, 0, &x, err,
                                                      sizeof(err)),
                         -EINVAL);
        assert_null(x);
        if (strstr(err, bad[i].why) == NULL)
            fail_msg("bad rule %zu: \"%s\" does not say \"%s\"", i, err, bad[i].why);
    }
    struct links_rule many[LINKS_RULES_MAX + 1];
    char names[LINKS_RULES_MAX + 1][8];
    for (size_t i = 0; i < LINKS_RULES_MAX + 1; i++) {
        snprintf(names[i], sizeof(names[i]), "a%zu", i);
        many[i] = (struct links_rule){"*", names[i], LINKS_HREF};
    }
    assert_int_equal(links_extractor_create_rules(many, LINKS_RULES_MAX, 0, &x, err, sizeof(err)),
                     0);
    const char page[] = "<p a0=x A31=y a32=z>";
    expect_links(x, page, sizeof(page) - 1, "x\ny", 2);
    links_extractor_destroy(x);
    assert_int_equal(
        links_extractor_create_rules(many, LINKS_RULES_MAX + 1, 0, &x, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "too many"));
    assert_int_equal(links_extractor_create_rules(NULL, 1, 0, &x, err, sizeof(err)), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_user_pattern),
        cmocka_unit_test(test_user_pattern_errors),
        cmocka_unit_test(test_user_pattern_empty_matches),
        cmocka_unit_test(test_callback_stops_scan),
        cmocka_unit_test(test_nofollow_opt_in),
        cmocka_unit_test(test_zero_copy),
        cmocka_unit_test(test_huge_value),
        cmocka_unit_test(test_many_links),
        cmocka_unit_test(test_adversarial),
        cmocka_unit_test(test_rules_one_more_row),
        cmocka_unit_test(test_rules_elements),
        cmocka_unit_test(test_rules_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
