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

/* Slots over all of a set's tables, whether it is one table or sharded. */
static size_t total_cap(const seen_set *s)
{
    size_t cap = s->one.cap;
    if (s->shards != NULL)
        for (size_t k = 0; k < SEEN_SHARDS; k++)
            cap += s->shards[k].cap;
    return cap;
}

/* Every table within the 0.7 load, and the tables together holding every entry but 0. */
static void check_tables(const seen_set *s)
{
    size_t used = s->one.used;
    assert_true(s->one.used * 10 <= s->one.cap * 7);
    if (s->shards != NULL) {
        assert_int_equal(s->one.cap, 0); /* the single table is gone once split */
        for (size_t k = 0; k < SEEN_SHARDS; k++) {
            assert_true(s->shards[k].used * 10 <= s->shards[k].cap * 7);
            used += s->shards[k].used;
        }
    }
    assert_int_equal(used + (size_t)s->has_zero, s->count);
}

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
    assert_int_equal(s.one.cap, 16);
    assert_null(s.shards);
    seen_finish(&s);
}

static void test_zero_fingerprint(void **state)
{
    (void)state;
    seen_set s;
    seen_init(&s);
    assert_int_equal(seen_add(&s, 0), 1);
    assert_int_equal(s.one.cap, 0); /* zero never needs a slot */
    assert_null(s.shards);
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
        if (i % 97 == 0)
            check_tables(&s); /* load stays at most 0.7 */
    }
    assert_int_equal(s.count, n);
    check_tables(&s);
    assert_non_null(s.shards);
    assert_int_equal(total_cap(&s), 262144); /* the split cost what a doubling would */
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
    assert_null(s.shards);
    uint64_t *slots = s.one.slots;
    size_t cap = s.one.cap;
    seen_clear(&s);
    assert_int_equal(s.count, 0);
    assert_ptr_equal(s.one.slots, slots);
    assert_int_equal(s.one.cap, cap);
    for (uint64_t i = 1; i <= 1000; i++)
        assert_false(seen_contains(&s, seen_hash(&i, sizeof i)));
    for (uint64_t i = 1; i <= 1000; i++)
        assert_int_equal(seen_add(&s, seen_hash(&i, sizeof i)), 1);
    assert_ptr_equal(s.one.slots, slots);
    seen_finish(&s);
}

/* splitmix64: a bijection of 64-bit words, so distinct inputs give distinct keys. */
static uint64_t scramble(uint64_t x)
{
    x += UINT64_C(0x9E3779B97F4A7C15);
    x = (x ^ (x >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    x = (x ^ (x >> 27)) * UINT64_C(0x94D049BB133111EB);
    return x ^ (x >> 31);
}

/* White box: seen.c picks a key's shard from the top bits of fp * K0, so multiplying by the
 * inverse of K0 makes keys that all share one shard. Should that mixing change, these keys
 * are still distinct and the checks on them still hold; only test_one_shard's assertion
 * that they crowd one shard tells that they no longer test the crowding. */
#define K0 UINT64_C(0x9E3779B97F4A7C15)
#define CROWDED_SHARD 37

static uint64_t inverse(uint64_t a) /* mod 2^64, for odd a: Newton's iteration */
{
    uint64_t x = a; /* right in the low 3 bits; each step doubles that */
    for (int i = 0; i < 5; i++)
        x *= 2 - a * x;
    return x;
}

/* The i-th key (i >= 1) of a family; within a family, distinct i give distinct non-zero
 * keys, and the families keep clear of each other (checked by the counts). */
enum { RANDOM, SAME_TOP_BITS, ONLY_TOP_BITS, ONE_SHARD };

static uint64_t key(int family, uint64_t i)
{
    const uint64_t odd = UINT64_C(0x5851F42D4C957F2D);
    switch (family) {
    case RANDOM:
        return scramble(i);
    case SAME_TOP_BITS: /* the top 16 bits shared, the low 48 a bijection of i */
        return UINT64_C(0xABCD) << 48 | ((i * odd) & ((UINT64_C(1) << 48) - 1));
    case ONLY_TOP_BITS: /* the low 40 bits all zero */
        return i << 40;
    default: /* ONE_SHARD */
        return inverse(K0) * (((uint64_t)CROWDED_SHARD << 58) |
                              ((i * odd) & ((UINT64_C(1) << 58) - 1)));
    }
}

/* Adds keys 1..n of each family, then checks that all are in, that re-adding changes
 * nothing, and that keys n+1..2n of each family are not in. */
static void check_families(seen_set *s, const int *families, size_t nfam, uint64_t n)
{
    size_t before = s->count;
    for (uint64_t i = 1; i <= n; i++)
        for (size_t f = 0; f < nfam; f++) {
            assert_true(key(families[f], i) != 0);
            assert_int_equal(seen_add(s, key(families[f], i)), 1);
        }
    assert_int_equal(s->count, before + nfam * n);
    check_tables(s);
    for (uint64_t i = 1; i <= n; i++)
        for (size_t f = 0; f < nfam; f++) {
            assert_true(seen_contains(s, key(families[f], i)));
            assert_int_equal(seen_add(s, key(families[f], i)), 0);
        }
    assert_int_equal(s->count, before + nfam * n);
    for (uint64_t i = n + 1; i <= 2 * n; i++)
        for (size_t f = 0; f < nfam; f++)
            assert_false(seen_contains(s, key(families[f], i)));
    check_tables(s);
}

static void test_many_keys(void **state)
{
    (void)state;
    static const int families[] = {RANDOM, SAME_TOP_BITS, ONLY_TOP_BITS};
    seen_set s;
    seen_init(&s);
    check_families(&s, families, 3, 100000); /* 300,000 keys */
    assert_non_null(s.shards);
    /* Random keys spread over the shards: none holds twice its share. */
    for (size_t k = 0; k < SEEN_SHARDS; k++)
        assert_true(s.shards[k].used < 2 * s.count / SEEN_SHARDS);
    seen_finish(&s);
}

/* All keys in one shard: the split must size that shard for them (not for 1/64 of them),
 * and the shard then grows alone like a single table. */
static void test_one_shard(void **state)
{
    (void)state;
    static const int families[] = {ONE_SHARD};
    seen_set s;
    seen_init(&s);
    /* Right at the split: the add that split must still find its shard within 0.7. */
    uint64_t n = 0;
    while (s.shards == NULL)
        assert_int_equal(seen_add(&s, key(ONE_SHARD, ++n)), 1);
    check_tables(&s);
    assert_int_equal(s.shards[CROWDED_SHARD].used, n);
    seen_finish(&s);

    check_families(&s, families, 1, 300000);
    assert_non_null(s.shards);
    assert_int_equal(s.shards[CROWDED_SHARD].used, 300000);
    /* The others stay at their starting size. */
    assert_int_equal(total_cap(&s) - s.shards[CROWDED_SHARD].cap, 63 * 4096);
    seen_finish(&s);
}

/* A set stays one table while small (page.c keeps many of about 150 links), and the switch
 * to shards, whenever it comes, keeps every entry and the 0 fingerprint. */
static void test_small_then_split(void **state)
{
    (void)state;
    seen_set s;
    seen_init(&s);
    for (uint64_t i = 1; i <= 150; i++)
        assert_int_equal(seen_add(&s, key(RANDOM, i)), 1);
    assert_null(s.shards);
    assert_int_equal(s.one.cap, 256);

    assert_int_equal(seen_add(&s, 0), 1);
    uint64_t n = 150;
    while (s.shards == NULL) {
        assert_true(s.one.cap <= 131072); /* the single table stops at 1 MiB */
        n++;
        assert_int_equal(seen_add(&s, key(RANDOM, n)), 1);
    }
    /* The add that split is the first past 0.7 of 131072 slots. */
    assert_int_equal(n, 131072 * 7 / 10 + 1);
    assert_int_equal(s.count, n + 1);
    assert_int_equal(total_cap(&s), 262144);
    check_tables(&s);
    assert_true(seen_contains(&s, 0));
    assert_int_equal(seen_add(&s, 0), 0);
    for (uint64_t i = 1; i <= n; i++) {
        assert_true(seen_contains(&s, key(RANDOM, i)));
        assert_int_equal(seen_add(&s, key(RANDOM, i)), 0);
    }
    for (uint64_t i = n + 1; i <= 2 * n; i++)
        assert_false(seen_contains(&s, key(RANDOM, i)));
    assert_int_equal(s.count, n + 1);
    seen_finish(&s);
    assert_null(s.shards);
    assert_int_equal(s.count, 0);
}

/* Clearing a sharded set keeps its shards; it then works as a fresh set. */
static void test_clear_sharded(void **state)
{
    (void)state;
    static const int families[] = {RANDOM, ONE_SHARD};
    static const int others[] = {SAME_TOP_BITS};
    seen_set s;
    seen_init(&s);
    check_families(&s, families, 2, 100000);
    assert_int_equal(seen_add(&s, 0), 1);
    assert_non_null(s.shards);
    seen_table *shards = s.shards;
    size_t cap = total_cap(&s);

    seen_clear(&s);
    assert_int_equal(s.count, 0);
    assert_ptr_equal(s.shards, shards);
    assert_int_equal(total_cap(&s), cap);
    check_tables(&s);
    assert_false(seen_contains(&s, 0));
    for (uint64_t i = 1; i <= 100000; i++) {
        assert_false(seen_contains(&s, key(RANDOM, i)));
        assert_false(seen_contains(&s, key(ONE_SHARD, i)));
    }
    check_families(&s, others, 1, 100000);
    assert_ptr_equal(s.shards, shards);
    assert_int_equal(total_cap(&s), cap); /* fewer keys than before: no growth */
    assert_false(seen_contains(&s, key(RANDOM, 1)));
    assert_int_equal(seen_add(&s, 0), 1);
    assert_int_equal(s.count, 100001);
    seen_finish(&s);
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

/* Processor time, not wall-clock time: the bound below is on the work done, which other
 * programs sharing a busy machine do not lengthen. */
static double now(void)
{
    return (double)clock() / CLOCKS_PER_SEC;
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
                  "%zu slots, %.1f bytes/entry\n",
                  (t1 - t0) * 1e3, (t3 - t2) * 1e3, total_cap(&s),
                  (double)(total_cap(&s) * sizeof(uint64_t)) / (double)s.count);
    assert_true(total_cap(&s) * sizeof(uint64_t) / s.count <= 24);
    assert_true(t1 - t0 < 5.0);
    seen_finish(&s);
}

/* A reservation adds nothing, and leaves the table with room: the add that follows it
 * never grows a table (it could fail then), across doublings and the split into shards. */
static void test_reserve(void **state)
{
    (void)state;
    seen_set s;
    seen_init(&s);
    assert_int_equal(seen_reserve(&s, 0), 0);
    assert_false(seen_contains(&s, 0));
    for (uint64_t i = 1; i <= 200000; i++) {
        assert_int_equal(seen_reserve(&s, i), 0);
        assert_false(seen_contains(&s, i));
        assert_int_equal(s.count, i - 1);
        size_t cap = total_cap(&s);
        assert_int_equal(seen_add(&s, i), 1);
        assert_int_equal(total_cap(&s), cap);
    }
    check_tables(&s);
    seen_finish(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_add_contains_duplicates),
        cmocka_unit_test(test_zero_fingerprint),
        cmocka_unit_test(test_reserve),
        cmocka_unit_test(test_growth),
        cmocka_unit_test(test_clear_keeps_table),
        cmocka_unit_test(test_many_keys),
        cmocka_unit_test(test_one_shard),
        cmocka_unit_test(test_small_then_split),
        cmocka_unit_test(test_clear_sharded),
        cmocka_unit_test(test_hash_basics),
        cmocka_unit_test(test_hash_avalanche),
        cmocka_unit_test(test_million_urls),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
