/* test_fingerprint.c: the body fingerprint tells apart what a changed page looks like
 * (one byte changed anywhere, blocks swapped, bytes added or cut, zero padding) and is a
 * pure function of the bytes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fingerprint.h"
#include "seen.h"

static unsigned char *page_like(size_t n, unsigned seed)
{
    unsigned char *b = malloc(n + 1);
    assert_non_null(b);
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        b[i] = (unsigned char)(' ' + (seed >> 16) % 95);
    }
    return b;
}

/* Every single-byte change, at every position of a body longer than a few 64-byte
 * blocks and with a tail, changes the fingerprint; and so does each bit of a byte. */
static void test_every_byte_counts(void **st)
{
    (void)st;
    size_t n = 64 * 5 + 23;
    unsigned char *b = page_like(n, 1);
    uint64_t h = fingerprint(b, n);
    assert_true(fingerprint(b, n) == h); /* the same bytes, the same answer */
    seen_set all;
    seen_init(&all);
    assert_true(seen_add(&all, h) == 1);
    for (size_t i = 0; i < n; i++) {
        for (int bit = 0; bit < 8; bit++) {
            b[i] ^= (unsigned char)(1u << bit);
            uint64_t g = fingerprint(b, n);
            b[i] ^= (unsigned char)(1u << bit);
            assert_true(g != h);
            /* and no two of these changes look alike either */
            assert_int_equal(seen_add(&all, g), 1);
        }
    }
    seen_finish(&all);
    free(b);
}

/* A page whose blocks moved (a reordered list) is a changed page. */
static void test_order_counts(void **st)
{
    (void)st;
    size_t n = 64 * 8;
    unsigned char *b = page_like(n, 2);
    uint64_t h = fingerprint(b, n);
    for (size_t i = 0; i < 7; i++) {
        unsigned char tmp[64];
        memcpy(tmp, b + 64 * i, 64);
        memmove(b + 64 * i, b + 64 * (i + 1), 64);
        memcpy(b + 64 * (i + 1), tmp, 64);
        assert_true(fingerprint(b, n) != h);
        memcpy(tmp, b + 64 * i, 64); /* swap back */
        memmove(b + 64 * i, b + 64 * (i + 1), 64);
        memcpy(b + 64 * (i + 1), tmp, 64);
        assert_true(fingerprint(b, n) == h);
    }
    /* the lanes of one block trade places too */
    unsigned char tmp[16];
    memcpy(tmp, b, 16);
    memcpy(b, b + 16, 16);
    memcpy(b + 16, tmp, 16);
    assert_true(fingerprint(b, n) != h);
    free(b);
}

/* Bytes added or cut, including zero bytes where the tail is padded with zeros, and
 * the empty body. */
static void test_length_counts(void **st)
{
    (void)st;
    unsigned char z[200] = {0};
    seen_set all;
    seen_init(&all);
    for (size_t n = 0; n <= sizeof z; n++)
        assert_int_equal(seen_add(&all, fingerprint(z, n)), 1);
    unsigned char *b = page_like(300, 3);
    for (size_t n = 1; n <= 300; n++) /* (n = 0 is the empty body, counted above) */
        assert_int_equal(seen_add(&all, fingerprint(b, n)), 1);
    seen_finish(&all);
    free(b);
}

/* A pure function of the bytes: the value of a fixed input is fixed (a store written on one
 * host is read on another), whatever the buffer's alignment. */
static void test_stable(void **st)
{
    (void)st;
    const char *text = "<a href=\"/p/00001.html\">one</a> and a little more text, "
                       "to go past one block of sixty-four bytes.";
    size_t n = strlen(text);
    uint64_t h = fingerprint(text, n);
    char *shifted = malloc(n + 8);
    assert_non_null(shifted);
    for (size_t off = 1; off < 8; off++) {
        memcpy(shifted + off, text, n);
        assert_true(fingerprint(shifted + off, n) == h);
    }
    free(shifted);
    assert_true(h == UINT64_C(0xB2954EEE7E5F7B1C));
}

/* Taken in pieces, as a body arrives, the fingerprint is the one of the whole: pieces of
 * every size from 1 to past two blocks, and in irregular runs, over bodies whose length
 * falls everywhere in a block. */
static void test_pieces_add_up(void **st)
{
    (void)st;
    unsigned char *b = page_like(1000, 7);
    for (size_t n = 0; n <= 1000; n += n < 200 ? 1 : 37) {
        uint64_t whole = fingerprint(b, n);
        for (size_t piece = 1; piece <= 130; piece += piece < 70 ? 1 : 13) {
            struct fingerprint_state f;
            fingerprint_start(&f);
            for (size_t at = 0; at < n; at += piece)
                fingerprint_add(&f, b + at, n - at < piece ? n - at : piece);
            assert_true(fingerprint_end(&f) == whole);
        }
        struct fingerprint_state f;
        fingerprint_start(&f);
        unsigned seed = (unsigned)n;
        for (size_t at = 0; at < n;) {
            seed = seed * 1103515245u + 12345u;
            size_t piece = (seed >> 16) % 150; /* zero-length pieces too */
            if (piece > n - at)
                piece = n - at;
            fingerprint_add(&f, b + at, piece);
            at += piece;
        }
        assert_true(fingerprint_end(&f) == whole);
        assert_true(fingerprint_end(&f) == whole); /* ending reads, never changes, the state */
    }
    free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_byte_counts),
        cmocka_unit_test(test_order_counts),
        cmocka_unit_test(test_length_counts),
        cmocka_unit_test(test_stable),
        cmocka_unit_test(test_pieces_add_up),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
