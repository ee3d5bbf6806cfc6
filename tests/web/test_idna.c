/* test_idna.c: table-driven tests for idna.c, the ASCII form of international host names.
 *
 * Expected forms follow UTS #46 non-transitional processing (what browsers do), with
 * libidn2's IDNA2008 hyphen and label-length rules on top, which refuse a few names a
 * browser would take (e.g. "ab--cd"); idna.h says so. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "buf.h"
#include "idna.h"

/* A name given as a literal, so that an embedded NUL keeps its place in the length. */
#define NAME(s) s, sizeof(s) - 1

struct idna_row {
    const char *name;
    size_t len;
    const char *expect; /* NULL when refused */
    int rc;
};

static const struct idna_row rows[] = {
    /* ASCII names pass through, in lower case. */
    {NAME("example.com"), "example.com", 0},
    {NAME("EXAMPLE.Com"), "example.com", 0},
    {NAME("a_b.example"), "a_b.example", 0},
    {NAME("x"), "x", 0},
    {NAME(""), "", 0},
    /* Already punycode: kept, and folded to lower case. */
    {NAME("xn--bcher-kva.example"), "xn--bcher-kva.example", 0},
    {NAME("XN--BCHER-KVA.example"), "xn--bcher-kva.example", 0},
    /* Non-ASCII labels become punycode; upper case folds first. */
    {NAME("bücher.example"), "xn--bcher-kva.example", 0},
    {NAME("BÜCHER.example"), "xn--bcher-kva.example", 0},
    {NAME("ü.ü"), "xn--tda.xn--tda", 0},
    /* Non-transitional: ß stays ß (transitional processing would give "fass.de"). */
    {NAME("faß.de"), "xn--fa-hia.de", 0},
    /* UTS #46 mapping: an ideographic full stop separates labels, compatibility forms map,
     * a zero-width space is ignored, a combining sequence is composed (NFC). */
    {NAME("日本語。jp"), "xn--wgv71a119e.jp", 0},
    {NAME("Ⅻ.example"), "xii.example", 0},
    {NAME("ℌ.example"), "h.example", 0},
    {NAME("a\xe2\x80\x8b" "b.example"), "ab.example", 0},
    {NAME("a\xcc\x88.example"), "xn--4ca.example", 0},
    {NAME("ǅ.example"), "xn--d-toa.example", 0},
    /* A zero-width joiner or non-joiner kept by non-transitional processing where its
     * context rule (CONTEXTJ) refuses it: the transitional retry maps it away. After a
     * virama it is allowed and kept. */
    {NAME("a\xe2\x80\x8d" "b.example"), "ab.example", 0},
    {NAME("a\xe2\x80\x8c" "b.example"), "ab.example", 0},
    {NAME("\xe0\xa4\x95\xe0\xa5\x8d\xe2\x80\x8d.example"), "xn--11b6iy14e.example", 0},
    /* Refused: not UTF-8, a NUL inside, hyphens where IDNA2008 forbids them, punycode that
     * does not decode. */
    {NAME("\xff.example"), NULL, -EINVAL},
    {NAME("\xc3"), NULL, -EINVAL},
    {NAME("a\0b.example"), NULL, -EINVAL},
    {NAME("-abc.example"), NULL, -EINVAL},
    {NAME("abc-.example"), NULL, -EINVAL},
    {NAME("ab--cd.example"), NULL, -EINVAL},
    {NAME("-bücher.example"), NULL, -EINVAL},
    {NAME("bü--cher.example"), NULL, -EINVAL},
    {NAME("xn--a.example"), NULL, -EINVAL},
    {NAME("xn--zz.example"), NULL, -EINVAL},
};

/* Each row appended after a prefix: the prefix stays, the result follows it, and a refused
 * name leaves the buffer exactly as it was. */
static void test_rows(void **state)
{
    (void)state;
    static const char prefix[] = "http://";
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        const struct idna_row *r = &rows[i];
        struct buf out;
        buf_init(&out);
        assert_int_equal(buf_append_str(&out, prefix), 0);
        int rc = idna_to_ascii(r->name, r->len, &out);
        if (rc != r->rc)
            fail_msg("row %zu (%.*s): rc %d, expected %d", i, (int)r->len, r->name, rc, r->rc);
        if (r->expect != NULL) {
            assert_int_equal(out.len, strlen(prefix) + strlen(r->expect));
            assert_memory_equal(out.data, prefix, strlen(prefix));
            assert_string_equal(out.data + strlen(prefix), r->expect);
        } else {
            assert_int_equal(out.len, strlen(prefix));
            assert_string_equal(out.data, prefix);
        }
        buf_finish(&out);
    }
}

/* Labels of 63 octets are the most DNS allows, counted after punycode. */
static void test_label_length(void **state)
{
    (void)state;
    char name[80];
    struct buf out;
    buf_init(&out);

    memset(name, 'a', 63);
    assert_int_equal(idna_to_ascii(name, 63, &out), 0);
    assert_int_equal(out.len, 63);
    buf_clear(&out);
    memset(name, 'a', 64);
    assert_int_equal(idna_to_ascii(name, 64, &out), -EINVAL);
    assert_int_equal(out.len, 0);

    /* "ü" and 60 letters: 61 characters, but more than 63 octets as punycode. */
    memcpy(name, "\xc3\xbc", 2);
    memset(name + 2, 'a', 60);
    assert_int_equal(idna_to_ascii(name, 62, &out), -EINVAL);
    assert_int_equal(out.len, 0);
    buf_finish(&out);
}

/* A name of 256 bytes or more is copied to the heap rather than the stack buffer: the
 * result must not depend on which. Soft hyphens (U+00AD) are ignored by UTS #46, so the
 * long input still makes a short, valid name. */
static void test_long_input(void **state)
{
    (void)state;
    char name[400];
    size_t n = 0;
    name[n++] = 'b';
    for (int i = 0; i < 150; i++) {
        memcpy(name + n, "\xc2\xad", 2);
        n += 2;
    }
    static const char tail[] = "ÜCHER.example";
    memcpy(name + n, tail, sizeof tail - 1);
    n += sizeof tail - 1;
    assert_true(n >= 256);

    struct buf out;
    buf_init(&out);
    assert_int_equal(idna_to_ascii(name, n, &out), 0);
    assert_string_equal(out.data, "xn--bcher-kva.example");

    /* And refused the same way: a NUL at the end of a long name. */
    buf_clear(&out);
    name[n - 1] = '\0';
    assert_int_equal(idna_to_ascii(name, n, &out), -EINVAL);
    assert_int_equal(out.len, 0);
    buf_finish(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rows),
        cmocka_unit_test(test_label_length),
        cmocka_unit_test(test_long_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
