/* Tests of the output formats: each row is a pair and the exact line each format makes. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "format.h"

struct row {
    const char *source, *target;
    size_t target_len; /* 0: strlen(target) */
    long status;
    unsigned depth;
    const char *tsv, *csv, *jsonl;
};

static const struct row rows[] = {
    {"http://a/", "http://a/b", 0, 200, 0,
     "http://a/\thttp://a/b\n",
     "http://a/,http://a/b\r\n",
     "{\"source\":\"http://a/\",\"target\":\"http://a/b\",\"status\":200,\"depth\":0}\n"},
    {"http://a/", "http://a/?x=1,2", 0, 203, 3,
     "http://a/\thttp://a/?x=1,2\n",
     "http://a/,\"http://a/?x=1,2\"\r\n",
     "{\"source\":\"http://a/\",\"target\":\"http://a/?x=1,2\",\"status\":203,\"depth\":3}\n"},
    /* --all-schemes targets may hold what CSV and JSON must escape. */
    {"http://a/", "javascript:alert(\"x\")", 0, 200, 0,
     "http://a/\tjavascript:alert(\"x\")\n",
     "http://a/,\"javascript:alert(\"\"x\"\")\"\r\n",
     "{\"source\":\"http://a/\",\"target\":\"javascript:alert(\\\"x\\\")\",\"status\":200,\"depth\":0}\n"},
    {"http://a/", "x:a\\b\x01\x1f", 0, 0, 1,
     "http://a/\tx:a\\b\x01\x1f\n",
     "http://a/,x:a\\b\x01\x1f\r\n",
     "{\"source\":\"http://a/\",\"target\":\"x:a\\\\b\\u0001\\u001f\",\"depth\":1}\n"},
    {"http://a/", "x:\r\n\t", 0, 500, 0,
     "http://a/\tx:\r\n\t\n",
     "http://a/,\"x:\r\n\t\"\r\n",
     "{\"source\":\"http://a/\",\"target\":\"x:\\r\\n\\t\",\"status\":500,\"depth\":0}\n"},
    /* A span is not a C string: bytes after target_len must not be read as part of it. */
    {"http://a/", "http://a/cut,HERE\"", 10, 200, 0,
     "http://a/\thttp://a/c\n",
     "http://a/,http://a/c\r\n",
     "{\"source\":\"http://a/\",\"target\":\"http://a/c\",\"status\":200,\"depth\":0}\n"},
    {"http://a/", "", 0, 200, 0,
     "http://a/\t\n",
     "http://a/,\r\n",
     "{\"source\":\"http://a/\",\"target\":\"\",\"status\":200,\"depth\":0}\n"},
};

static void test_rows(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        const struct row *r = &rows[i];
        const char *want[] = {r->tsv, r->csv, r->jsonl};
        size_t tlen = r->target_len ? r->target_len : strlen(r->target);
        struct format_origin origin = {.status = r->status, .depth = r->depth};
        for (int f = FORMAT_TSV; f <= FORMAT_JSONL; f++) {
            struct buf b;
            buf_init(&b);
            assert_int_equal(buf_append_str(&b, "kept|"), 0);
            assert_int_equal(format_pair((enum format)f, &b, r->source, strlen(r->source),
                                         r->target, tlen, &origin), 0);
            assert_true(b.len >= 5);
            assert_memory_equal(b.data, "kept|", 5);
            if (b.len - 5 != strlen(want[f]) || memcmp(b.data + 5, want[f], b.len - 5) != 0)
                fail_msg("row %zu, format %d: got [%s], want [%s]", i, f, b.data + 5, want[f]);
            buf_finish(&b);
        }
    }
}

static void test_headers(void **state)
{
    (void)state;
    static const char *want[] = {"source_url\tparsed_url\n", "source_url,parsed_url\r\n", ""};
    for (int f = FORMAT_TSV; f <= FORMAT_JSONL; f++) {
        struct buf b;
        buf_init(&b);
        assert_int_equal(format_header((enum format)f, &b), 0);
        assert_int_equal(b.len, strlen(want[f]));
        if (b.len > 0)
            assert_string_equal(b.data, want[f]);
        buf_finish(&b);
    }
}

static void test_parse(void **state)
{
    (void)state;
    enum format f = FORMAT_JSONL;
    assert_int_equal(format_parse("tsv", &f), 0);
    assert_int_equal(f, FORMAT_TSV);
    assert_int_equal(format_parse("csv", &f), 0);
    assert_int_equal(f, FORMAT_CSV);
    assert_int_equal(format_parse("jsonl", &f), 0);
    assert_int_equal(f, FORMAT_JSONL);
    static const char *bad[] = {"", "json", "TSV", "tsv ", "ndjson", "csv\n"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        f = FORMAT_CSV;
        assert_int_equal(format_parse(bad[i], &f), -EINVAL);
        assert_int_equal(f, FORMAT_CSV);
    }
}

/* --manifest lines: every member, null for a missing type, escapes as in the rest. */
static void test_saved(void **state)
{
    (void)state;
    struct buf out;
    buf_init(&out);
    struct format_saved rec = {
        .url = "http://a/x?q=\"1\"",
        .final_url = "http://a/y",
        .path = "a/x?q=\"1\"",
        .bytes = 5000000000ULL,
        .type = NULL,
        .sha256 = "00ff",
    };
    assert_int_equal(format_saved(&out, &rec), 0);
    assert_string_equal(out.data,
                        "{\"url\":\"http://a/x?q=\\\"1\\\"\",\"final_url\":\"http://a/y\","
                        "\"path\":\"a/x?q=\\\"1\\\"\",\"bytes\":5000000000,\"type\":null,"
                        "\"sha256\":\"00ff\"}\n");
    buf_finish(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_saved),
        cmocka_unit_test(test_rows),
        cmocka_unit_test(test_headers),
        cmocka_unit_test(test_parse),
    };
    return cmocka_run_group_tests_name("format", tests, NULL, NULL);
}
