/* Tests for the fingerprint set and its hash. */
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

#include "seen.h"

static void test_empty(void **state)
{
    (void)state;
    seen_set s;
    seen_init(&s);
    assert_int_equal(seen_contains(&s, 1), 0);
    assert_int_equal(seen_contains(&s, 0), 0);
    seen_clear(&s); /* before any table exists */
    assert_int_equal(s.count, 0);
    seen_finish(&s);
    seen_finish(&s); /* finish leaves an empty set behind */
}

static void test_add_contains_duplicates(void **state)
{
    (void)state;
    seen_set s;
    seen_init(&s);
    assert_int_equal(seen_add(&s, 42), 1);
    assert_int_equal(seen_add(&s, 42), 0);
    assert_int_equal(seen_add(&s, UINT64_MAX), 1);
    assert_int_equal(seen_add(&s, 7), 1);
    assert_int_equal(seen_add(&s, UINT64_MAX), 0);
    assert_int_equal(s.count, 3);
    assert_true(seen_contains(&s, 42));
    assert_true(seen_contains(&s, 7));
    assert_true(seen_contains(&s, UINT64_MAX));
    assert_false(seen_contains(&s, 43));
    assert_false(seen_contains(&s, 0));
    assert_int_equal(s.cap, 16);
    seen_finish(&s);
}

static void test_zero_fingerprint(void **state)
{
    (void)state;
    seen_set s;
    seen_init(&s);
    assert_int_equal(seen_add(&s, 0), 1);
    assert_int_equal(s.cap, 0); /* zero never needs a slot */
    assert_true(seen_contains(&s, 0));
    assert_int_equal(seen_add(&s, 0), 0);
    assert_int_equal(s.count, 1);
    assert_false(seen_contains(&s, 1));
    assert_int_equal(seen_add(&s, 1), 1);
    assert_int_equal(s.count, 2);
    seen_clear(&s);
    assert_false(seen_contains(&s, 0));
    assert_int_equal(seen_add(&s, 0), 1);
    seen_finish(&s);
}

/* Keys that hash badly on their own (a counter, and multiples of the table size) must still
 * spread, grow the table and all stay findable. */
static void check_many(uint64_t step)
{
    const uint64_t n = 100000;
    seen_set s;
    seen_init(&s);
    for (uint64_t i = 1; i <= n; i++) {
        assert_int_equal(seen_add(&s, i * step), 1);
        assert_true(s.count * 10 <= s.cap * 7); /* load stays at most 0.7 */
    }
    assert_int_equal(s.count, n);
    assert_int_equal(s.cap, 262144);
    for (uint64_t i = 1; i <= n; i++) {
        assert_true(seen_contains(&s, i * step));
        assert_int_equal(seen_add(&s, i * step), 0);
    }
    for (uint64_t i = n + 1; i <= 2 * n; i++)
        assert_false(seen_contains(&s, i * step));
    assert_int_equal(s.count, n);
    seen_finish(&s);
}

static void test_growth(void **state)
{
    (void)state;
    check_many(1);
    check_many(UINT64_C(1) << 20);
    check_many(UINT64_C(0x9E3779B97F4A7C15));
}

static void test_clear_keeps_table(void **state)
{
    (void)state;
    seen_set s;
    seen_init(&s);
    for (uint64_t i = 1; i <= 1000; i++)
        assert_int_equal(seen_add(&s, seen_hash(&i, sizeof i)), 1);
    uint64_t *slots = s.slots;
    size_t cap = s.cap;
    seen_clear(&s);
    assert_int_equal(s.count, 0);
    assert_ptr_equal(s.slots, slots);
    assert_int_equal(s.cap, cap);
    for (uint64_t i = 1; i <= 1000; i++)
        assert_false(seen_contains(&s, seen_hash(&i, sizeof i)));
    for (uint64_t i = 1; i <= 1000; i++)
        assert_int_equal(seen_add(&s, seen_hash(&i, sizeof i)), 1);
    assert_ptr_equal(s.slots, slots);
    seen_finish(&s);
}

static void test_hash_basics(void **state)
{
    (void)state;
    /* Same bytes, same fingerprint, wherever they sit in memory. */
    static const char text[] = "http://example.com/some/path?q=1";
    size_t len = sizeof text - 1;
    uint64_t want = seen_hash(text, len);
    for (size_t off = 0; off < 16; off++) {
        char *p = malloc(len + off);
        assert_non_null(p);
        memcpy(p + off, text, len);
        assert_true(seen_hash(p + off, len) == want);
        free(p);
    }
    /* Reads stop at len: exactly-sized copies sit right before ASan's redzone. */
    for (size_t n = 0; n <= len; n++) {
        char *p = malloc(n ? n : 1);
        assert_non_null(p);
        memcpy(p, text, n);
        assert_true(seen_hash(p, n) == seen_hash(text, n));
        free(p);
    }
    assert_true(seen_hash(NULL, 0) == seen_hash("", 0));

    /* Every prefix, and runs of zero bytes of every length, are told apart. */
    static const char zeros[64];
    seen_set s;
    seen_init(&s);
    for (size_t n = 0; n <= len; n++)
        assert_int_equal(seen_add(&s, seen_hash(text, n)), 1);
    for (size_t n = 1; n <= sizeof zeros; n++)
        assert_int_equal(seen_add(&s, seen_hash(zeros, n)), 1);
    seen_finish(&s);
}

/* Flipping any one input bit should flip each output bit about half the time. */
static void test_hash_avalanche(void **state)
{
    (void)state;
    unsigned char buf[40];
    unsigned long flips[64] = {0};
    unsigned long trials = 0;
    uint64_t x = 1;
    for (int round = 0; round < 200; round++) {
        for (size_t i = 0; i < sizeof buf; i++) {
            x = x * 6364136223846793005u + 1442695040888963407u;
            buf[i] = (unsigned char)(x >> 56);
        }
        for (size_t len = 1; len <= sizeof buf; len += 13) {
            uint64_t h = seen_hash(buf, len);
            for (size_t bit = 0; bit < len * 8; bit++) {
                buf[bit / 8] ^= (unsigned char)(1u << (bit % 8));
                uint64_t d = h ^ seen_hash(buf, len);
                buf[bit / 8] ^= (unsigned char)(1u << (bit % 8));
                for (int k = 0; k < 64; k++)
                    flips[k] += (d >> k) & 1;
                trials++;
            }
        }
    }
    for (int k = 0; k < 64; k++) {
        double p = (double)flips[k] / (double)trials;
        if (p < 0.48 || p > 0.52)
            print_error("output bit %d flips with odds %.3f\n", k, p);
        assert_true(p >= 0.48 && p <= 0.52);
    }
}

static double now(void)
{
    struct timespec ts;
    timespec_get(&ts, TIME_UTC); /* C11; clock_gettime would need POSIX */
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A million sequential URLs, the case a crawler sees most, must not collide; the time and
 * memory printed are the figures to watch (the limits are loose for sanitizer builds). */
static void test_million_urls(void **state)
{
    (void)state;
    const size_t n = 1000000;
    char url[64];
    seen_set s;
    seen_init(&s);

    double t0 = now();
    for (size_t i = 0; i < n; i++) {
        int len = snprintf(url, sizeof url, "http://h/p/%zu", i);
        assert_int_equal(seen_add(&s, seen_hash(url, (size_t)len)), 1);
    }
    double t1 = now();
    assert_int_equal(s.count, n);

    /* Longer, realistic URLs that differ only deep inside. */
    seen_clear(&s);
    double t2 = now();
    for (size_t i = 0; i < n; i++) {
        int len = snprintf(url, sizeof url, "https://www.example.com/articles/%zu/index.html", i);
        assert_int_equal(seen_add(&s, seen_hash(url, (size_t)len)), 1);
    }
    double t3 = now();
    for (size_t i = 0; i < n; i += 997) {
        int len = snprintf(url, sizeof url, "https://www.example.com/articles/%zu/index.html", i);
        assert_true(seen_contains(&s, seen_hash(url, (size_t)len)));
    }

    print_message("1M short URLs: %.1f ms; 1M long URLs: %.1f ms (snprintf included); "
                  "cap %zu, %.1f bytes/entry\n",
                  (t1 - t0) * 1e3, (t3 - t2) * 1e3, s.cap,
                  (double)(s.cap * sizeof *s.slots) / (double)s.count);
    assert_true(s.cap * sizeof *s.slots / s.count <= 24);
    assert_true(t1 - t0 < 5.0);
    seen_finish(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_add_contains_duplicates),
        cmocka_unit_test(test_zero_fingerprint),
        cmocka_unit_test(test_growth),
        cmocka_unit_test(test_clear_keeps_table),
        cmocka_unit_test(test_hash_basics),
        cmocka_unit_test(test_hash_avalanche),
        cmocka_unit_test(test_million_urls),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
