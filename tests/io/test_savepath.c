/* Tests of the --save layout: each row is a URL and the relative path it must get, in the
 * tree and with --flat. The hostile rows are the point: whatever a URL holds, no name may
 * be empty, ".", "..", or hold '/', '\\' or a control byte. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "savepath.h"

struct row {
    const char *url;
    const char *tree; /* NULL: refused with -EINVAL */
    const char *flat;
};

static const struct row rows[] = {
    /* The layout. */
    {"http://a.example/", "a.example/index.html", "index.html"},
    {"http://a.example", "a.example/index.html", "index.html"},
    {"http://a.example/x/y.png", "a.example/x/y.png", "y.png"},
    {"http://a.example/x/", "a.example/x/index.html", "index.html"},
    {"http://a.example:8080/x", "a.example:8080/x", "x"},
    {"https://a.example/x", "a.example/x", "x"},
    {"http://user:pw@a.example/x", "a.example/x", "x"},
    {"http://[::1]:8080/x", "[::1]:8080/x", "x"},
    {"http://a.example/x#frag", "a.example/x", "x"},
    /* The query stays in the name, escaped only where a name needs it. */
    {"http://a.example/s?q=1&r=2", "a.example/s?q=1&r=2", "s?q=1&r=2"},
    {"http://a.example/?q=1", "a.example/index.html?q=1", "index.html?q=1"},
    {"http://a.example/s?a/b\\c", "a.example/s?a%2Fb%5Cc", "s?a%2Fb%5Cc"},
    {"http://a.example/s?", "a.example/s", "s"},
    {"http://a.example/s?q=%2e%2e/x#f", "a.example/s?q=%2e%2e%2Fx", "s?q=%2e%2e%2Fx"},
    /* Percent-decoding, so that a browser finds the file. */
    {"http://a.example/caf%C3%A9/a%20b.txt", "a.example/caf\xc3\xa9/a b.txt", "a b.txt"},
    {"http://a.example/100%", "a.example/100%", "100%"},
    {"http://a.example/%zz%4", "a.example/%zz%4", "%zz%4"},
    /* Hostile names: each lands inside the directory, as a harmless name. */
    {"http://a.example/%2e%2e/%2E%2E/x", "a.example/%2E%2E/%2E%2E/x", "x"},
    {"http://a.example/a/%2e", "a.example/a/%2E", "%2E"},
    {"http://a.example/a/%2e%2e", "a.example/a/%2E%2E", "%2E%2E"},
    {"http://a.example/..", "a.example/%2E%2E", "%2E%2E"},
    {"http://a.example/./x", "a.example/%2E/x", "x"},
    {"http://a.example/%2e./x", "a.example/%2E%2E/x", "x"},
    {"http://a.example/...", "a.example/...", "..."},
    {"http://a.example/a%2Fb", "a.example/a%2Fb", "a%2Fb"},
    {"http://a.example/a%2f..%2f..%2fetc%2fpasswd", "a.example/a%2F..%2F..%2Fetc%2Fpasswd",
     "a%2F..%2F..%2Fetc%2Fpasswd"},
    {"http://a.example/a%5Cb\\c", "a.example/a%5Cb%5Cc", "a%5Cb%5Cc"},
    {"http://a.example/..%5C..%5Cx", "a.example/..%5C..%5Cx", "..%5C..%5Cx"},
    {"http://a.example/a%00b", "a.example/a%00b", "a%00b"},
    {"http://a.example/a%0d%0Ab%7f", "a.example/a%0D%0Ab%7F", "a%0D%0Ab%7F"},
    {"http://a.example//etc/passwd", "a.example/etc/passwd", "passwd"},
    {"http://a.example/a//b///c", "a.example/a/b/c", "c"},
    {"http://a.example/%2fetc/x", "a.example/%2Fetc/x", "x"},
    {"http://a.example/x/..%2f", "a.example/x/..%2F", "..%2F"},
    /* Not a web URL, or no host: refused. */
    {"ftp://a.example/x", NULL, NULL},
    {"http:///x", NULL, NULL},
    {"http://user@/x", NULL, NULL},
    {"a.example/x", NULL, NULL},
};

static void check(const char *url, unsigned flags, const char *want)
{
    struct buf out;
    buf_init(&out);
    assert_int_equal(buf_append_str(&out, "keep"), 0);
    int rc = savepath_map(url, strlen(url), flags, &out);
    if (want == NULL) {
        if (rc != -EINVAL)
            fail_msg("%s: expected -EINVAL, got %d (%s)", url, rc, out.data);
        assert_string_equal(out.data, "keep");
    } else {
        if (rc != 0)
            fail_msg("%s: expected %s, got %d", url, want, rc);
        if (strcmp(out.data + 4, want) != 0)
            fail_msg("%s%s: expected %s, got %s", url, flags ? " (flat)" : "", want,
                     out.data + 4);
    }
    buf_finish(&out);
}

static void test_rows(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        check(rows[i].url, 0, rows[i].tree);
        check(rows[i].url, SAVEPATH_FLAT, rows[i].flat);
    }
}

/* Every name of a result obeys the rules, whatever bytes the URL held. */
static void assert_safe(const char *url, const char *path)
{
    const char *s = path;
    if (*s == '/')
        fail_msg("%s: absolute path %s", url, path);
    while (*s != '\0') {
        size_t n = strcspn(s, "/");
        if (n == 0 || n > SAVEPATH_NAME_MAX || (n == 1 && s[0] == '.') ||
            (n == 2 && s[0] == '.' && s[1] == '.'))
            fail_msg("%s: bad name in %s", url, path);
        for (size_t i = 0; i < n; i++)
            if ((unsigned char)s[i] < 0x20 || s[i] == '\\' || s[i] == 0x7f)
                fail_msg("%s: bad byte in %s", url, path);
        s += n;
        s += *s == '/';
    }
}

static void test_every_byte(void **state)
{
    (void)state;
    char url[64];
    struct buf out;
    buf_init(&out);
    for (int c = 0; c < 256; c++) {
        for (int form = 0; form < 3; form++) {
            /* raw (where it can be), encoded, and doubled as a dot-like name */
            if (form == 0 && (c == 0 || c == '#' || c == '?'))
                continue;
            int n = form == 0 ? snprintf(url, sizeof url, "http://h/a/%c/b", c)
                  : form == 1 ? snprintf(url, sizeof url, "http://h/a/%%%02x/b", c)
                              : snprintf(url, sizeof url, "http://h/%%%02X%%%02X", c, c);
            buf_clear(&out);
            assert_int_equal(savepath_map(url, (size_t)n, 0, &out), 0);
            assert_safe(url, out.data);
            buf_clear(&out);
            assert_int_equal(savepath_map(url, (size_t)n, SAVEPATH_FLAT, &out), 0);
            assert_safe(url, out.data);
            if (strchr(out.data, '/') != NULL)
                fail_msg("%s: flat path %s has a directory", url, out.data);
        }
    }
    buf_finish(&out);
}

/* A name past NAME_MAX keeps its head and gets a hash, and two that share a head differ. */
static void test_long_names(void **state)
{
    (void)state;
    char url[2048], url2[2048];
    char seg[1001];
    memset(seg, 'x', 1000);
    seg[1000] = '\0';
    snprintf(url, sizeof url, "http://h/d/%s?1", seg);
    snprintf(url2, sizeof url2, "http://h/d/%s?2", seg);
    struct buf a, b;
    buf_init(&a);
    buf_init(&b);
    assert_int_equal(savepath_map(url, strlen(url), 0, &a), 0);
    assert_int_equal(savepath_map(url2, strlen(url2), 0, &b), 0);
    assert_safe(url, a.data);
    assert_int_equal(strlen(a.data), strlen("h/d/") + SAVEPATH_NAME_MAX);
    assert_memory_equal(a.data, "h/d/xxxx", 8);
    assert_int_equal(a.data[strlen(a.data) - 17], '~');
    assert_string_not_equal(a.data, b.data);
    /* The same URL always gets the same name. */
    buf_clear(&b);
    assert_int_equal(savepath_map(url, strlen(url), 0, &b), 0);
    assert_string_equal(a.data, b.data);
    /* A long directory name too, and a UTF-8 sequence is not cut in two. */
    char *p = url + snprintf(url, sizeof url, "http://h/");
    for (int i = 0; i < 200; i++)
        p += snprintf(p, 8, "%%C3%%A9");
    snprintf(p, 8, "/f");
    buf_clear(&a);
    assert_int_equal(savepath_map(url, strlen(url), 0, &a), 0);
    assert_safe(url, a.data);
    const char *name = a.data + 2;
    size_t n = strcspn(name, "/");
    assert_true(n <= SAVEPATH_NAME_MAX);
    assert_int_equal(name[n - 17], '~');
    assert_int_equal((unsigned char)name[n - 18], 0xa9); /* ends on a whole é */
    assert_string_equal(name + n, "/f");
    buf_finish(&a);
    buf_finish(&b);
}

/* Which last names are the index.html that savepath_map() supplies (save.h ranks by it). */
static void test_supplies_index(void **state)
{
    (void)state;
    static const struct {
        const char *url;
        int supplied;
    } rows[] = {
        {"http://h", 1},
        {"http://h/", 1},
        {"http://h?q=1", 1},
        {"https://h:8080/d/", 1},
        {"http://h/d/?q=/x", 1},
        {"http://h/d/#frag", 1},
        {"http://h/d", 0},
        {"http://h/d/index.html", 0},
        {"http://h/d?q=/", 0},
        {"http://h/d#/", 0},
        {"ftp://h/d/", 0},
        {"u", 0},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        const char *u = rows[i].url;
        if (savepath_supplies_index(u, strlen(u)) != rows[i].supplied)
            fail_msg("%s: %d", u, !rows[i].supplied);
        /* It agrees with the name savepath_map() gives, where it gives one. */
        struct buf out;
        buf_init(&out);
        if (savepath_map(u, strlen(u), 0, &out) == 0 && !rows[i].supplied) {
            const char *last = strrchr(out.data, '/');
            assert_true(last == NULL || strncmp(last, "/index.html", 11) != 0 ||
                        strstr(u, "index.html") != NULL);
        }
        buf_finish(&out);
    }
    /* Only `len` bytes are read: the '/' past them does not count. */
    assert_int_equal(savepath_supplies_index("http://h/d/", 10), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rows),
        cmocka_unit_test(test_every_byte),
        cmocka_unit_test(test_long_names),
        cmocka_unit_test(test_supplies_index),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
