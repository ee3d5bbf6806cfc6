/* Tests of the saver on a real directory: temporary files renamed into place, nothing left
 * by an abort, no symbolic link followed, and the collision rules of save.h. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>
#include <uv.h>

#include "save.h"

static char root[64];

static int setup(void **state)
{
    (void)state;
    snprintf(root, sizeof root, "/tmp/areq-test-save-XXXXXX");
    return mkdtemp(root) == NULL ? -1 : 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    return system(cmd) == 0 ? 0 : -1;
}

static char *path_of(const char *rel)
{
    static char p[512];
    snprintf(p, sizeof p, "%s/%s", root, rel);
    return p;
}

static void put(const char *rel, const char *text)
{
    FILE *f = fopen(path_of(rel), "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void assert_file(const char *rel, const char *text)
{
    char got[256] = "";
    FILE *f = fopen(path_of(rel), "r");
    if (f == NULL)
        fail_msg("%s: missing", rel);
    size_t n = fread(got, 1, sizeof got - 1, f);
    got[n] = '\0';
    fclose(f);
    assert_string_equal(got, text);
}

/* Entries in a directory of the tree, "." and ".." aside. */
static int entries(const char *rel)
{
    char cmd[600];
    for (int want = 0; want < 16; want++) {
        snprintf(cmd, sizeof cmd, "test $(ls -A '%s' | wc -l) -eq %d", path_of(rel), want);
        if (system(cmd) == 0)
            return want;
    }
    return -1;
}

static int save(saver *s, const char *rel, const char *url, const char *body, struct buf *got)
{
    save_file *f;
    int rc = save_begin(s, rel, url, &f);
    if (rc != 0)
        return rc;
    rc = save_write(f, body, strlen(body));
    if (rc != 0) {
        save_abort(f);
        return rc;
    }
    return save_commit(f, got);
}

/* Run with flags 0 (a nameless temporary file where the kernel has O_TMPFILE, as /tmp does)
 * and SAVE_NAMED_TEMP (the fallback: a named one). */
static void commit_and_abort(unsigned flags)
{
    saver *s;
    assert_int_equal(saver_open(path_of("d/e"), flags, &s), 0); /* made, parents too */
    struct buf got;
    buf_init(&got);
    assert_int_equal(save(s, "h/x/y.txt", "u", "one", &got), 0);
    assert_string_equal(got.data, "h/x/y.txt");
    assert_file("d/e/h/x/y.txt", "one");
    /* An aborted body leaves nothing, and a good copy stays. */
    save_file *f;
    assert_int_equal(save_begin(s, "h/x/y.txt", "u", &f), 0);
    assert_int_equal(save_write(f, "partial", 7), 0);
    /* y.txt, and the temporary file where it has a name */
    assert_int_equal(entries("d/e/h/x"), flags & SAVE_NAMED_TEMP ? 2 : 1);
    save_abort(f);
    assert_int_equal(entries("d/e/h/x"), 1);
    assert_file("d/e/h/x/y.txt", "one");
    /* A complete one replaces it. */
    assert_int_equal(save(s, "h/x/y.txt", "u", "two", NULL), 0);
    assert_file("d/e/h/x/y.txt", "two");
    assert_int_equal(entries("d/e/h/x"), 1);
    /* A name that became a directory: the body is its index.html, replaced too. */
    assert_int_equal(save(s, "h/x/z/w", "u", "w", NULL), 0);
    assert_int_equal(save(s, "h/x/z", "u", "z1", NULL), 0);
    assert_int_equal(save(s, "h/x/z", "u", "z2", NULL), 0);
    assert_file("d/e/h/x/z/index.html", "z2");
    assert_int_equal(entries("d/e/h/x/z"), 2);
    saver_destroy(s);
    buf_finish(&got);
}

static void test_commit_and_abort(void **state)
{
    (void)state;
    commit_and_abort(0);
}

/* Where AT_EMPTY_PATH is refused (older kernels, without CAP_DAC_READ_SEARCH). */
static void test_commit_and_abort_by_proc(void **state)
{
    (void)state;
    commit_and_abort(SAVE_LINK_BY_PROC);
}

static void test_commit_and_abort_named(void **state)
{
    (void)state;
    commit_and_abort(SAVE_NAMED_TEMP);
}

/* The name of the temporary file a saver makes in `rel` (a directory of the tree, with
 * its '/'), with its counter cut off: ".areq-WHERE-PID-". */
static void temp_prefix(const char *rel, char *out, size_t cap)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "ls -A '%s' | grep '^\\.areq-.*\\.part$'", path_of(rel));
    FILE *ls = popen(cmd, "r");
    assert_non_null(ls);
    assert_non_null(fgets(out, (int)cap, ls));
    pclose(ls);
    char *third = strchr(strchr(out + 6, '-') + 1, '-');
    assert_non_null(third);
    third[1] = '\0';
}

static pid_t dead_pid(void)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(0);
    assert_int_equal(waitpid(pid, NULL, 0), pid);
    return pid;
}

static void put_aged(const char *rel, time_t age)
{
    put(rel, "left");
    struct timespec t[2] = {{time(NULL) - age, 0}, {time(NULL) - age, 0}};
    assert_int_equal(utimensat(AT_FDCWD, path_of(rel), t, 0), 0);
}

/* A later run removes the temporary files of runs that are gone, and only those (save.c,
 * stale_temp), the first time it saves into their directory. */
static void test_stale_temporary_files(void **state)
{
    (void)state;
    saver *s;
    /* Where this process runs, as the names say it: from a named file left open. */
    assert_int_equal(saver_open(path_of("t"), SAVE_NAMED_TEMP, &s), 0);
    save_file *f;
    assert_int_equal(save_begin(s, "h/keep", "u", &f), 0);
    char me[96], name[160];
    temp_prefix("t/h", me, sizeof me);
    save_abort(f);
    saver_destroy(s);
    char *where_end = strchr(me + 6, '-');
    int where_len = (int)(where_end - me);

    put("t/h/outside", "untouched");
    /* this host, a dead run: stale however new */
    snprintf(name, sizeof name, "t/h/%.*s-%ld-7.part", where_len, me, (long)dead_pid());
    put_aged(name, 0);
    char dead[160];
    snprintf(dead, sizeof dead, "%s", name);
    /* this host, a live run (our parent): kept however old */
    snprintf(name, sizeof name, "t/h/%.*s-%ld-7.part", where_len, me, (long)getppid());
    put_aged(name, 24 * 3600);
    char live[160];
    snprintf(live, sizeof live, "%s", name);
    /* another host or namespace, and an older version's name: by age only */
    put_aged("t/h/.areq-0123456789abcdef-1-1.part", 60);
    put_aged("t/h/.areq-0123456789abcdef-2-1.part", 2 * 3600);
    put_aged("t/h/.areq-0123456789abcdef-3.part", 60);
    put_aged("t/h/.areq-0123456789abcdef-4.part", 2 * 3600);
    /* not ours to remove: a link and a directory with such names, and other names */
    char target[512];
    snprintf(target, sizeof target, "%s", path_of("t/h/outside"));
    assert_int_equal(symlink(target, path_of("t/h/.areq-0123456789abcdef-5.part")), 0);
    snprintf(name, sizeof name, "t/h/%.*s-%ld-8.part", where_len, me, (long)dead_pid());
    assert_int_equal(mkdir(path_of(name), 0777), 0);
    put_aged("t/h/.areq-x.partial", 2 * 3600);
    put_aged("t/h/areq-0123456789abcdef-4.part", 2 * 3600);

    assert_int_equal(saver_open(path_of("t"), 0, &s), 0);
    assert_int_equal(save(s, "h/a", "u", "a", NULL), 0);
    saver_destroy(s);
    struct stat st;
    assert_int_equal(lstat(path_of(dead), &st), -1);
    assert_int_equal(lstat(path_of(live), &st), 0);
    assert_int_equal(lstat(path_of("t/h/.areq-0123456789abcdef-1-1.part"), &st), 0);
    assert_int_equal(lstat(path_of("t/h/.areq-0123456789abcdef-2-1.part"), &st), -1);
    assert_int_equal(lstat(path_of("t/h/.areq-0123456789abcdef-3.part"), &st), 0);
    assert_int_equal(lstat(path_of("t/h/.areq-0123456789abcdef-4.part"), &st), -1);
    assert_int_equal(lstat(path_of("t/h/.areq-0123456789abcdef-5.part"), &st), 0);
    assert_int_equal(lstat(path_of(name), &st), 0);
    assert_file("t/h/outside", "untouched");
    assert_file("t/h/a", "a");
    /* a, outside, the live one, two by age, the link, the directory, two other names */
    assert_int_equal(entries("t/h"), 9);
}

/* A link planted in the tree is never followed, as a directory or as the file. */
static void test_symlinks(void **state)
{
    (void)state;
    assert_int_equal(mkdir(path_of("out"), 0777), 0);
    assert_int_equal(mkdir(path_of("d"), 0777), 0);
    put("out/victim", "untouched");
    char target[512];
    snprintf(target, sizeof target, "%s", path_of("out"));
    assert_int_equal(symlink(target, path_of("d/h")), 0);
    assert_int_equal(mkdir(path_of("d/g"), 0777), 0);
    snprintf(target, sizeof target, "%s", path_of("out/victim"));
    assert_int_equal(symlink(target, path_of("d/g/f")), 0);
    saver *s;
    assert_int_equal(saver_open(path_of("d"), 0, &s), 0);
    assert_int_equal(save(s, "h/victim", "u", "evil", NULL), -ELOOP);
    assert_int_equal(save(s, "h/new", "u", "evil", NULL), -ELOOP);
    assert_int_equal(save(s, "g/f", "u", "evil", NULL), -ELOOP);
    assert_file("out/victim", "untouched");
    assert_int_equal(entries("out"), 1);
    assert_int_equal(entries("d/g"), 1); /* the link, and no temporary file */
    saver_destroy(s);
}

/* `a` the file and `a/b`: the same tree whichever comes first. */
static void test_file_and_directory(void **state)
{
    (void)state;
    saver *s;
    assert_int_equal(saver_open(path_of("one"), 0, &s), 0);
    struct buf got;
    buf_init(&got);
    assert_int_equal(save(s, "h/a", "u1", "file a", &got), 0);
    assert_string_equal(got.data, "h/a");
    assert_int_equal(save(s, "h/a/b", "u2", "file b", NULL), 0);
    saver_destroy(s);
    assert_file("one/h/a/index.html", "file a");
    assert_file("one/h/a/b", "file b");

    assert_int_equal(saver_open(path_of("two"), 0, &s), 0);
    assert_int_equal(save(s, "h/a/b", "u2", "file b", NULL), 0);
    buf_clear(&got);
    assert_int_equal(save(s, "h/a", "u1", "file a", &got), 0);
    assert_string_equal(got.data, "h/a/index.html");
    saver_destroy(s);
    assert_file("two/h/a/index.html", "file a");
    assert_file("two/h/a/b", "file b");
    buf_finish(&got);
}

/* After the four bodies of test_rule_*: "h/a/" holds the index and "h/a/b", nothing else. */
static void assert_rule_held(const char *dir)
{
    char rel[64];
    snprintf(rel, sizeof rel, "%s/h/a/index.html", dir);
    assert_file(rel, "http://h/a/index.html");
    snprintf(rel, sizeof rel, "%s/h/a/b", dir);
    assert_file(rel, "http://h/a/b");
    snprintf(rel, sizeof rel, "%s/h/a", dir);
    assert_int_equal(entries(rel), 2);
}

/* The collision rule of save.h: four URLs, three of them bound for h/a/index.html (/a
 * moved there, /a/ given index.html, /a/index.html by name), in every order, saved one
 * after another and with all begun before any is committed: always the same tree. */
static void test_rule_whatever_the_order(void **state)
{
    (void)state;
    static const char *const urls[4] = {"http://h/a", "http://h/a/", "http://h/a/index.html",
                                         "http://h/a/b"};
    static const char *const rels[4] = {"h/a", "h/a/index.html", "h/a/index.html", "h/a/b"};
    for (int run = 0; run < 48; run++) {
        /* The run's order: permutation run % 24, by its factorial digits. */
        int order[4], left[4] = {0, 1, 2, 3};
        for (int i = 0, code = run % 24, n = 4; i < 4; i++, n--) {
            int fact = n == 4 ? 6 : n == 3 ? 2 : 1;
            int pick = code / fact;
            code %= fact;
            order[i] = left[pick];
            memmove(left + pick, left + pick + 1, sizeof(int) * (size_t)(n - pick - 1));
        }
        int interleaved = run >= 24;
        char dir[32];
        snprintf(dir, sizeof dir, "t%d", run);
        saver *s;
        assert_int_equal(saver_open(path_of(dir), 0, &s), 0);
        save_file *f[4];
        for (int i = 0; i < 4; i++) {
            int u = order[i];
            if (!interleaved) {
                int rc = save(s, rels[u], urls[u], urls[u], NULL);
                assert_true(rc == 0 || rc == SAVE_YIELDED);
                continue;
            }
            assert_int_equal(save_begin(s, rels[u], urls[u], &f[u]), 0);
            assert_int_equal(save_write(f[u], urls[u], strlen(urls[u])), 0);
        }
        for (int i = 0; interleaved && i < 4; i++) {
            int rc = save_commit(f[order[i]], NULL);
            assert_true(rc == 0 || rc == SAVE_YIELDED);
        }
        saver_destroy(s);
        assert_rule_held(dir);
    }
}

/* The rule with the four bodies committed from four threads at once, as the pool does. */
struct racer {
    saver *s;
    const char *rel, *url;
    uv_barrier_t *start;
    int rc;
};

static void race_one(void *arg)
{
    struct racer *r = arg;
    uv_barrier_wait(r->start);
    r->rc = save(r->s, r->rel, r->url, r->url, NULL);
}

static void test_rule_from_threads(void **state)
{
    (void)state;
    static const char *const urls[4] = {"http://h/a", "http://h/a/", "http://h/a/index.html",
                                         "http://h/a/b"};
    static const char *const rels[4] = {"h/a", "h/a/index.html", "h/a/index.html", "h/a/b"};
    for (int round = 0; round < 40; round++) {
        char dir[32];
        snprintf(dir, sizeof dir, "r%d", round);
        saver *s;
        assert_int_equal(saver_open(path_of(dir), 0, &s), 0);
        uv_barrier_t start;
        assert_int_equal(uv_barrier_init(&start, 4), 0);
        struct racer racers[4];
        uv_thread_t threads[4];
        for (int i = 0; i < 4; i++) {
            racers[i] = (struct racer){.s = s, .rel = rels[i], .url = urls[i], .start = &start};
            assert_int_equal(uv_thread_create(&threads[i], race_one, &racers[i]), 0);
        }
        for (int i = 0; i < 4; i++)
            assert_int_equal(uv_thread_join(&threads[i]), 0);
        for (int i = 0; i < 4; i++)
            if (racers[i].rc != 0 && racers[i].rc != SAVE_YIELDED)
                fail_msg("%s: %s", urls[i], strerror(-racers[i].rc));
        uv_barrier_destroy(&start);
        saver_destroy(s);
        assert_rule_held(dir);
    }
}

/* What each kind of body gets, and a later run into the same directory. */
static void test_rule_yields_and_ties(void **state)
{
    (void)state;
    saver *s;
    struct buf got;
    buf_init(&got);
    assert_int_equal(saver_open(path_of("d"), 0, &s), 0);
    assert_int_equal(save(s, "h/a/index.html", "http://h/a/index.html", "named", NULL), 0);
    /* The losers: nothing appended to `got`, nothing left behind. */
    assert_int_equal(save(s, "h/a/index.html", "http://h/a/", "index", &got), SAVE_YIELDED);
    assert_int_equal(save(s, "h/a", "http://h/a", "moved", &got), SAVE_YIELDED);
    assert_int_equal(got.len, 0);
    assert_file("d/h/a/index.html", "named");
    assert_int_equal(entries("d/h/a"), 1);
    /* The same URL again takes its place back. */
    assert_int_equal(save(s, "h/a/index.html", "http://h/a/index.html", "named 2", NULL), 0);
    assert_file("d/h/a/index.html", "named 2");
    /* One kind, two URLs (http and https decode alike): the one that sorts first. */
    assert_int_equal(save(s, "h/n", "https://h/n", "https", NULL), 0);
    assert_int_equal(save(s, "h/n", "http://h/n", "http", NULL), 0);
    assert_int_equal(save(s, "h/n", "https://h/n", "https", NULL), SAVE_YIELDED);
    assert_file("d/h/n", "http");
    /* Without a URL a body takes no part: the last one is there (the old behaviour). */
    assert_int_equal(save(s, "h/z", NULL, "one", NULL), 0);
    assert_int_equal(save(s, "h/z", NULL, "two", NULL), 0);
    assert_file("d/h/z", "two");
    saver_destroy(s);
    /* A later run knows nothing of the earlier one's bodies: any body replaces them, and
     * the same URLs in another order end the same. */
    assert_int_equal(saver_open(path_of("d"), 0, &s), 0);
    assert_int_equal(save(s, "h/n", "https://h/n", "https", NULL), 0);
    assert_file("d/h/n", "https");
    assert_int_equal(save(s, "h/n", "http://h/n", "http", NULL), 0);
    assert_file("d/h/n", "http");
    assert_int_equal(save(s, "h/a", "http://h/a", "moved", &got), 0);
    assert_string_equal(got.data, "h/a/index.html");
    assert_int_equal(save(s, "h/a/index.html", "http://h/a/", "index", NULL), 0);
    assert_int_equal(save(s, "h/a/index.html", "http://h/a/index.html", "named", NULL), 0);
    assert_file("d/h/a/index.html", "named");
    saver_destroy(s);
    buf_finish(&got);
}

/* The --state hook: a body counts as saved only once it is in place, never through a link. */
static void test_exists(void **state)
{
    (void)state;
    saver *s;
    assert_int_equal(saver_open(path_of("x"), 0, &s), 0);
    assert_int_equal(save_exists(s, "h/a/b.png"), 0);
    save_file *f;
    assert_int_equal(save_begin(s, "h/a/b.png", "u", &f), 0);
    assert_int_equal(save_write(f, "x", 1), 0);
    assert_int_equal(save_exists(s, "h/a/b.png"), 0); /* not yet complete */
    assert_int_equal(save_commit(f, NULL), 0);
    assert_int_equal(save_exists(s, "h/a/b.png"), 1);
    assert_int_equal(save(s, "h/a", "u2", "dir's page", NULL), 0); /* a is a directory */
    assert_int_equal(save_exists(s, "h/a"), 1);
    char target[512];
    snprintf(target, sizeof target, "%s", path_of("x/h/a"));
    assert_int_equal(symlink(target, path_of("x/h/l")), 0);
    assert_int_equal(save_exists(s, "h/l/b.png"), 0);
    assert_int_equal(save_exists(s, "h/l"), 0);
    saver_destroy(s);
}

static void test_flat(void **state)
{
    (void)state;
    saver *s;
    assert_int_equal(saver_open(path_of("f"), SAVE_FLAT, &s), 0);
    struct buf got;
    buf_init(&got);
    assert_int_equal(save(s, "x.png", "http://a/x.png", "a", NULL), 0);
    assert_int_equal(save(s, "x.png", "http://b/x.png", "b", &got), 0);
    assert_string_equal(got.data, "x.1.png");
    buf_clear(&got);
    assert_int_equal(save(s, "x.png", "http://c/x.png", "c", &got), 0);
    assert_string_equal(got.data, "x.2.png");
    /* The same URL again takes its own name back. */
    buf_clear(&got);
    assert_int_equal(save(s, "x.png", "http://b/x.png", "b2", &got), 0);
    assert_string_equal(got.data, "x.1.png");
    assert_int_equal(save(s, "x", "http://a/x", "d", NULL), 0);
    assert_int_equal(save(s, "x", "http://b/x", "e", NULL), 0);
    saver_destroy(s);
    assert_file("f/x.png", "a");
    assert_file("f/x.1.png", "b2");
    assert_file("f/x.2.png", "c");
    assert_file("f/x", "d");
    assert_file("f/x.1", "e");
    assert_int_equal(entries("f"), 5);
    buf_finish(&got);
}

static void test_not_writable(void **state)
{
    (void)state;
    saver *s;
    put("plain", "x");
    assert_int_equal(saver_open(path_of("plain"), 0, &s), -ENOTDIR);
    assert_int_equal(saver_open(path_of("plain/sub"), 0, &s), -ENOTDIR);
    if (geteuid() != 0) {
        assert_int_equal(mkdir(path_of("ro"), 0555), 0);
        assert_int_equal(saver_open(path_of("ro"), 0, &s), -EACCES);
    }
    assert_true(save_error_is_fatal(-ENOSPC));
    assert_false(save_error_is_fatal(-ENAMETOOLONG));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_commit_and_abort, setup, teardown),
        cmocka_unit_test_setup_teardown(test_commit_and_abort_by_proc, setup, teardown),
        cmocka_unit_test_setup_teardown(test_commit_and_abort_named, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stale_temporary_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_symlinks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_and_directory, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rule_whatever_the_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rule_yields_and_ties, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rule_from_threads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exists, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flat, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_writable, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
