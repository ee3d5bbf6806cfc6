/* test_digest.c: SHA-256 against FIPS 180-4's published examples, whole and in pieces. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "digest.h"

static const char *hex_of(const char *data, size_t len, char out[DIGEST_HEX_SIZE])
{
    unsigned char sum[DIGEST_SIZE];
    assert_int_equal(digest_sha256(data, len, sum), 0);
    digest_hex(sum, out);
    return out;
}

static void test_known_answers(void **state)
{
    (void)state;
    char hex[DIGEST_HEX_SIZE];
    assert_string_equal(hex_of("", 0, hex),
                        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    assert_string_equal(hex_of("abc", 3, hex),
                        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    assert_string_equal(hex_of(two, strlen(two), hex),
                        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

/* A million 'a's fed in uneven pieces, then the same context reset and reused. */
static void test_pieces_and_reset(void **state)
{
    (void)state;
    static char block[1000];
    memset(block, 'a', sizeof block);
    digest *d = digest_new();
    assert_non_null(d);
    for (int round = 0; round < 2; round++) {
        size_t left = 1000000, step = 1;
        while (left > 0) {
            size_t n = step < left ? step : left;
            if (n > sizeof block)
                n = sizeof block;
            assert_int_equal(digest_update(d, block, n), 0);
            left -= n;
            step = step * 7 % 997 + 1;
        }
        unsigned char sum[DIGEST_SIZE];
        char hex[DIGEST_HEX_SIZE];
        assert_int_equal(digest_final(d, sum), 0);
        digest_hex(sum, hex);
        assert_string_equal(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
        assert_int_equal(digest_reset(d), 0);
    }
    digest_free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_answers),
        cmocka_unit_test(test_pieces_and_reset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
