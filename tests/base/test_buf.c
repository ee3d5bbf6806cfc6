/* Tests for the growable byte buffer. After every operation the buffer must hold its
 * invariants: len < cap whenever memory is held, and data[len] == '\0'. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "buf.h"

static void check_invariants(const struct buf *b)
{
    if (b->data == NULL) {
        assert_int_equal(b->len, 0);
        assert_int_equal(b->cap, 0);
        return;
    }
    assert_true(b->len < b->cap);
    assert_int_equal(b->data[b->len], '\0');
}

static void check_contents(const struct buf *b, const char *want)
{
    check_invariants(b);
    assert_int_equal(b->len, strlen(want));
    assert_non_null(b->data);
    assert_memory_equal(b->data, want, b->len);
    assert_string_equal(b->data, want);
}

static void test_init_is_empty(void **state)
{
    (void)state;
    struct buf b;
    memset(&b, 0xA5, sizeof b);
    buf_init(&b);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, 0);
    buf_finish(&b);
    check_invariants(&b);
}

static void test_append_and_append_str(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b);
    assert_int_equal(buf_append(&b, "hello", 5), 0);
    check_contents(&b, "hello");
    assert_int_equal(buf_append_str(&b, ", world"), 0);
    check_contents(&b, "hello, world");
    /* Only `len` bytes are taken, even from a longer string. */
    assert_int_equal(buf_append(&b, "!?xyz", 1), 0);
    check_contents(&b, "hello, world!");
    buf_finish(&b);
    check_invariants(&b);
}

static void test_append_nothing_still_terminates(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b);
    assert_int_equal(buf_append(&b, "", 0), 0);
    assert_non_null(b.data); /* a C string can be had even from an empty buffer */
    check_contents(&b, "");
    assert_int_equal(buf_append_str(&b, ""), 0);
    check_contents(&b, "");
    buf_finish(&b);
}

static void test_append_keeps_embedded_nul(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b);
    assert_int_equal(buf_append(&b, "a\0b", 3), 0);
    assert_int_equal(b.len, 3);
    assert_memory_equal(b.data, "a\0b\0", 4);
    check_invariants(&b);
    buf_finish(&b);
}

static void test_putc_grows_byte_by_byte(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b);
    size_t grows = 0, last_cap = 0;
    for (size_t i = 0; i < 10000; i++) {
        assert_int_equal(buf_putc(&b, (char)('a' + i % 26)), 0);
        assert_int_equal(b.len, i + 1);
        check_invariants(&b);
        if (b.cap != last_cap) {
            grows++;
            last_cap = b.cap;
        }
    }
    for (size_t i = 0; i < 10000; i++)
        assert_int_equal(b.data[i], (char)('a' + i % 26));
    /* Geometric growth: a handful of reallocations, not one per byte. */
    assert_true(grows <= 16);
    buf_finish(&b);
}

static void test_reserve(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b);
    assert_int_equal(buf_reserve(&b, 0), 0);
    assert_non_null(b.data);
    assert_true(b.cap >= 1); /* room for the NUL */
    check_contents(&b, ""); /* memory just got: already a C string */

    assert_int_equal(buf_append_str(&b, "abc"), 0);
    assert_int_equal(buf_reserve(&b, 1000), 0);
    assert_true(b.cap >= 3 + 1000 + 1);
    check_contents(&b, "abc"); /* reserving keeps what is there */

    /* Having reserved, appending that much must not move the data. */
    char *before = b.data;
    size_t cap = b.cap;
    char block[1000];
    memset(block, 'x', sizeof block);
    assert_int_equal(buf_append(&b, block, sizeof block), 0);
    assert_ptr_equal(b.data, before);
    assert_int_equal(b.cap, cap);
    assert_int_equal(b.len, 1003);
    check_invariants(&b);

    /* A reservation already covered changes nothing. */
    assert_int_equal(buf_reserve(&b, b.cap - b.len - 1), 0);
    assert_int_equal(b.cap, cap);
    buf_finish(&b);
}

static void test_reserve_too_much_fails_cleanly(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b);
    assert_int_equal(buf_append_str(&b, "keep"), 0);
    assert_int_equal(buf_reserve(&b, SIZE_MAX), -ENOMEM);
    assert_int_equal(buf_reserve(&b, SIZE_MAX - 2), -ENOMEM);
    assert_int_equal(buf_append(&b, "x", SIZE_MAX / 2), -ENOMEM);
    check_contents(&b, "keep"); /* a failed growth leaves the buffer as it was */
    buf_finish(&b);
}

static void test_truncate(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        size_t to;
        const char *want;
    } rows[] = {
        {"hello", 3, "hel"},
        {"hello", 0, ""},
        {"hello", 5, "hello"},   /* its own length: no change */
        {"hello", 99, "hello"},  /* longer than held: no change */
        {"", 0, ""},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        struct buf b;
        buf_init(&b);
        assert_int_equal(buf_append_str(&b, rows[i].in), 0);
        size_t cap = b.cap;
        buf_truncate(&b, rows[i].to);
        check_contents(&b, rows[i].want);
        assert_int_equal(b.cap, cap);
        buf_finish(&b);
    }
}

static void test_truncate_empty_unallocated(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b);
    buf_truncate(&b, 0);
    buf_truncate(&b, 10);
    check_invariants(&b);
    assert_null(b.data);
}

static void test_consume(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        size_t n;
        const char *want;
    } rows[] = {
        {"hello world", 0, "hello world"},
        {"hello world", 6, "world"},
        {"hello world", 10, "d"},
        {"hello world", 11, ""},
        {"hello world", 1000, ""},
        {"", 3, ""},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        struct buf b;
        buf_init(&b);
        assert_int_equal(buf_append_str(&b, rows[i].in), 0);
        char *mem = b.data;
        buf_consume(&b, rows[i].n);
        check_contents(&b, rows[i].want);
        assert_ptr_equal(b.data, mem); /* moved within, never reallocated */
        buf_finish(&b);
    }
}

/* Consuming from the front repeatedly, as a stream parser does, keeps order. */
static void test_consume_in_steps(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(buf_putc(&b, (char)('0' + i % 10)), 0);
    size_t off = 0;
    while (b.len > 0) {
        size_t n = b.len < 7 ? b.len : 7;
        for (size_t k = 0; k < b.len; k++)
            assert_int_equal(b.data[k], (char)('0' + (off + k) % 10));
        buf_consume(&b, n);
        off += n;
        check_invariants(&b);
    }
    assert_int_equal(off, 1000);
    buf_finish(&b);
}

static void test_consume_unallocated(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b);
    buf_consume(&b, 0);
    buf_consume(&b, 5);
    check_invariants(&b);
    assert_null(b.data);
}

static void test_clear_keeps_memory(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b);
    char block[500];
    memset(block, 'q', sizeof block);
    assert_int_equal(buf_append(&b, block, sizeof block), 0);
    char *mem = b.data;
    size_t cap = b.cap;
    buf_clear(&b);
    check_contents(&b, "");
    assert_ptr_equal(b.data, mem);
    assert_int_equal(b.cap, cap);
    /* Refilling to the same size reuses the memory. */
    assert_int_equal(buf_append(&b, block, sizeof block), 0);
    assert_ptr_equal(b.data, mem);
    assert_int_equal(b.cap, cap);
    buf_finish(&b);

    buf_init(&b);
    buf_clear(&b); /* nothing held: still fine */
    check_invariants(&b);
    assert_null(b.data);
}

static void test_detach(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b);
    assert_int_equal(buf_append_str(&b, "take me"), 0);
    char *mem = b.data;
    char *s = buf_detach(&b);
    assert_ptr_equal(s, mem);
    assert_string_equal(s, "take me");
    /* The buffer is empty and no longer refers to the handed-over memory. */
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, 0);
    /* It is usable again, with new memory. */
    assert_int_equal(buf_append_str(&b, "again"), 0);
    check_contents(&b, "again");
    assert_ptr_not_equal(b.data, s);
    free(s); /* the caller owns it: ASan reports a leak or double free otherwise */
    buf_finish(&b);
}

static void test_detach_never_allocated_is_null(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b);
    assert_null(buf_detach(&b));
    check_invariants(&b);
}

/* Word-at-a-time scanners may load the bytes past the contents: after buf_zero_slack they
 * are all defined (zero), and the contents are untouched. */
static void test_zero_slack(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b);
    buf_zero_slack(&b); /* nothing allocated: a no-op */
    assert_int_equal(buf_append(&b, "abcdefghij", 10), 0);
    memset(b.data + b.len, 0x5a, b.cap - b.len);
    buf_zero_slack(&b);
    assert_memory_equal(b.data, "abcdefghij", 10);
    for (size_t i = b.len; i < b.cap; i++)
        assert_int_equal(b.data[i], 0);
    buf_finish(&b);
}

/* A known size is taken exactly, not rounded up to a power of two; appending past it still
 * grows the buffer, and a reservation within the capacity changes nothing. */
static void test_reserve_exact(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b);
    assert_int_equal(buf_append(&b, "abc", 3), 0);
    assert_int_equal(buf_reserve_exact(&b, 74000), 0);
    assert_int_equal(b.cap, 3 + 74000 + 1);
    assert_memory_equal(b.data, "abc", 4); /* contents and terminator kept */
    char *before = b.data;
    assert_int_equal(buf_reserve_exact(&b, 100), 0);
    assert_ptr_equal(b.data, before);
    assert_int_equal(b.cap, 3 + 74000 + 1);
    char chunk[1000];
    memset(chunk, 'x', sizeof chunk);
    for (int i = 0; i < 75; i++)
        assert_int_equal(buf_append(&b, chunk, sizeof chunk), 0);
    assert_int_equal(b.len, 3 + 75000);
    assert_true(b.cap > b.len);
    check_invariants(&b);
    size_t len = b.len;
    assert_int_equal(buf_reserve_exact(&b, SIZE_MAX - 10), -ENOMEM);
    assert_int_equal(b.len, len);
    check_invariants(&b);
    buf_finish(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_is_empty),
        cmocka_unit_test(test_append_and_append_str),
        cmocka_unit_test(test_append_nothing_still_terminates),
        cmocka_unit_test(test_append_keeps_embedded_nul),
        cmocka_unit_test(test_putc_grows_byte_by_byte),
        cmocka_unit_test(test_reserve),
        cmocka_unit_test(test_reserve_too_much_fails_cleanly),
        cmocka_unit_test(test_truncate),
        cmocka_unit_test(test_truncate_empty_unallocated),
        cmocka_unit_test(test_consume),
        cmocka_unit_test(test_consume_in_steps),
        cmocka_unit_test(test_consume_unallocated),
        cmocka_unit_test(test_clear_keeps_memory),
        cmocka_unit_test(test_detach),
        cmocka_unit_test(test_detach_never_allocated_is_null),
        cmocka_unit_test(test_zero_slack),
        cmocka_unit_test(test_reserve_exact),
    };
    return cmocka_run_group_tests_name("buf", tests, NULL, NULL);
}
