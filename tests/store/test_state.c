/* Tests of the crawl-state store, each on a fresh temporary database: pages round-trip
 * (targets, validators, hashes); a commit takes only the pages its files' lengths cover;
 * files that are not ours, newer or damaged are refused and left byte for byte as they
 * were; a second opener, in this process or another, is turned away by the lock. */
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
#include <unistd.h>

#include <cmocka.h>

#include "buf.h"
#include "state.h"
#include "task.h"
#include "test_loop.h"

struct env {
    char dir[64];
    char path[128];
};

static int setup(void **st)
{
    struct env *e = calloc(1, sizeof *e);
    assert_non_null(e);
    strcpy(e->dir, "/tmp/areq-test-state-XXXXXX");
    assert_non_null(mkdtemp(e->dir));
    snprintf(e->path, sizeof e->path, "%s/state.db", e->dir);
    *st = e;
    return 0;
}

static int teardown(void **st)
{
    struct env *e = *st;
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", e->dir);
    assert_int_equal(system(cmd), 0);
    free(e);
    return 0;
}

static const unsigned char cmd_hash[DIGEST_SIZE] = {1, 2, 3};
static const unsigned char opt_hash[DIGEST_SIZE] = {9, 8, 7};

/* A run whose only file is its output: that many bytes long now, written whole, and the
 * descriptor to fdatasync before a commit. */
#define STARTING(n) (&(const struct state_files){.kept = {1}, .bytes = {(n)}})
#define OUTPUT(n) ((const uint64_t[STATE_NFILES]){(n), 0, 0})
#define SYNC(fd) ((const int[STATE_NFILES]){(fd), -1, -1})

static state *open_ok(const char *path)
{
    state *s = NULL;
    char why[512] = "";
    int rc = state_open(path, &s, why, sizeof why);
    if (rc != 0)
        fail_msg("state_open: %d: %s", rc, why);
    return s;
}

static struct state_page page(const char *url, const char *targets, size_t targets_len,
                              uint64_t end)
{
    size_t n = 0;
    for (size_t i = 0; i < targets_len; i++)
        n += targets[i] == '\0';
    return (struct state_page){
        .url = url,
        .url_len = strlen(url),
        .final_url = url,
        .outcome = STATE_PAGE_OK,
        .status = 200,
        .etag = "\"v1\"",
        .last_modified = "Sun, 06 Dec 2026 01:00:00 GMT",
        .has_body_hash = 1,
        .body_hash = {0xaa, 0xbb},
        .targets = targets,
        .targets_len = targets_len,
        .ntargets = n,
        .depth = 1,
        .fetched_at = 1000,
        .changed_at = 900,
        .output_end = end,
    };
}

/* What is put comes back: every field, the targets in their order. */
static void test_round_trip(void **st)
{
    struct env *e = *st;
    state *s = open_ok(e->path);
    assert_false(state_knew_pages(s)); /* a new store: the run's lookups are not made */
    struct state_run run;
    assert_int_equal(state_last_run(s, &run), 0);
    assert_int_equal(state_run_begin(s, 0, cmd_hash, opt_hash, STARTING(0), 100), 0);
    static const char t[] = "http://a.test/x/1\0http://a.test/x/12\0http://b.test/\0"
                            "http://a.test/x/1#f\0";
    struct state_page p = page("http://a.test/", t, sizeof t - 1, 50);
    assert_int_equal(state_page_put(s, &p), 0);
    struct state_page q = page("http://a.test/none", "", 0, 50);
    q.outcome = STATE_PAGE_FAILED;
    q.status = 404;
    q.error = "HTTP 404";
    q.etag = q.last_modified = NULL;
    q.has_body_hash = 0;
    assert_int_equal(state_page_put(s, &q), 0);
    assert_int_equal(state_pending(s), 2);
    assert_int_equal(state_commit_now(s, OUTPUT(50), NULL, 1), 0);
    assert_int_equal(state_pending(s), 0);
    state_close(s);

    s = open_ok(e->path);
    assert_true(state_knew_pages(s));
    assert_int_equal(state_last_run(s, &run), 1);
    assert_false(run.open);
    assert_int_equal(run.files.bytes[STATE_OUTPUT], 50);
    assert_memory_equal(run.command_hash, cmd_hash, DIGEST_SIZE);
    struct state_record r;
    state_record_init(&r);
    assert_int_equal(state_page_get(s, "http://a.test/", 14, &r), 1);
    assert_string_equal(r.page.url, "http://a.test/");
    assert_string_equal(r.page.final_url, "http://a.test/");
    assert_string_equal(r.page.etag, "\"v1\"");
    assert_string_equal(r.page.last_modified, "Sun, 06 Dec 2026 01:00:00 GMT");
    assert_null(r.page.error);
    assert_int_equal(r.page.outcome, STATE_PAGE_OK);
    assert_int_equal(r.page.status, 200);
    assert_true(r.page.has_body_hash);
    assert_int_equal(r.page.body_hash[1], 0xbb);
    /* The targets come encoded, and are decoded when asked for: as lines after a prefix
     * (what a 304 writes), or as the list. */
    assert_null(r.page.targets);
    struct buf lines;
    buf_init(&lines);
    size_t count = 0;
    assert_int_equal(state_record_lines(&r, "S\t", 2, &lines, &count), 0);
    assert_int_equal(count, 4);
    assert_string_equal(lines.data, "S\thttp://a.test/x/1\nS\thttp://a.test/x/12\n"
                                    "S\thttp://b.test/\nS\thttp://a.test/x/1#f\n");
    buf_finish(&lines);
    assert_int_equal(state_record_targets(&r), 0);
    assert_int_equal(r.page.targets_len, sizeof t - 1);
    assert_memory_equal(r.page.targets, t, sizeof t - 1);
    assert_int_equal(r.page.ntargets, 4);
    assert_int_equal(r.page.depth, 1);
    assert_int_equal(r.page.fetched_at, 1000);
    assert_int_equal(r.page.changed_at, 900);
    assert_memory_equal(r.page.options_hash, opt_hash, DIGEST_SIZE);
    assert_int_equal(r.page.run, run.id);

    assert_int_equal(state_page_get(s, "http://a.test/none", 18, &r), 1);
    assert_int_equal(r.page.outcome, STATE_PAGE_FAILED);
    assert_string_equal(r.page.error, "HTTP 404");
    assert_null(r.page.etag);
    assert_false(r.page.has_body_hash);
    assert_int_equal(state_record_targets(&r), 0);
    assert_int_equal(r.page.targets_len, 0);

    assert_int_equal(state_page_get(s, "http://a.test/other", 19, &r), 0);
    state_record_finish(&r);
    state_close(s);
}

/* A commit takes the pages whose lines the recorded output length covers, no more; the
 * run stays open until finished, and a page put again replaces its row. */
static void test_commit_covers(void **st)
{
    struct env *e = *st;
    state *s = open_ok(e->path);
    assert_int_equal(state_run_begin(s, 0, cmd_hash, opt_hash, STARTING(7), 100), 0);
    int64_t id = state_run_id(s);
    struct state_page a = page("http://a.test/1", "", 0, 10);
    struct state_page b = page("http://a.test/2", "", 0, 20);
    struct state_page c = page("http://a.test/3", "", 0, 30);
    assert_int_equal(state_page_put(s, &a), 0);
    assert_int_equal(state_page_put(s, &b), 0);
    assert_int_equal(state_page_put(s, &c), 0);
    assert_int_equal(state_commit_now(s, OUTPUT(25), NULL, 1), -EINVAL); /* c is not covered */
    assert_int_equal(state_commit_now(s, OUTPUT(25), NULL, 0), 0);
    assert_int_equal(state_pending(s), 1);
    state_close(s); /* c is lost, as in a crash */

    s = open_ok(e->path);
    struct state_run run;
    assert_int_equal(state_last_run(s, &run), 1);
    assert_true(run.open);
    assert_int_equal(run.id, id);
    /* Not 25: what lies past b's lines is c's, which a resumed run writes again. */
    assert_int_equal(run.files.bytes[STATE_OUTPUT], 20);
    struct state_record r;
    state_record_init(&r);
    assert_int_equal(state_page_get(s, "http://a.test/2", 15, &r), 1);
    assert_int_equal(state_page_get(s, "http://a.test/3", 15, &r), 0);

    /* Resumed: the same run id; c comes now, and a again with a new ETag. */
    assert_int_equal(state_run_begin(s, id, cmd_hash, opt_hash, STARTING(20), 200), 0);
    assert_int_equal(state_page_put(s, &c), 0);
    a.etag = "\"v2\"";
    assert_int_equal(state_page_put(s, &a), 0);
    assert_int_equal(state_commit_now(s, OUTPUT(40), NULL, 1), 0);
    assert_int_equal(state_last_run(s, &run), 1);
    assert_false(run.open);
    assert_int_equal(state_page_get(s, "http://a.test/1", 15, &r), 1);
    assert_string_equal(r.page.etag, "\"v2\"");
    state_record_finish(&r);
    state_close(s);
}

/* Long lists come back as they went in, whatever their targets share with which of the
 * ones before them: links of several sites interleaved, repeats, one a prefix of the
 * other, the empty string, and a target longer than a varint's first byte counts. */
static void test_targets_round_trip(void **st)
{
    struct env *e = *st;
    state *s = open_ok(e->path);
    assert_int_equal(state_run_begin(s, 0, cmd_hash, opt_hash, STARTING(0), 100), 0);
    struct buf list;
    buf_init(&list);
    static const char *const sites[] = {"http://a.test/p/", "https://www.example.org/blog/",
                                        "http://a.test/q/", "ftp://f.test/"};
    char one[600];
    for (unsigned i = 0; i < 500; i++) {
        unsigned k = (i * 7 + i / 3) % 5;
        if (k == 4 && i % 11 == 0)
            one[0] = '\0'; /* the empty target */
        else if (k == 4)
            snprintf(one, sizeof one, "%s%0*u", sites[i % 4], (int)(300 + i % 50), i);
        else
            snprintf(one, sizeof one, "%s%05u.html", sites[k], i % 37);
        assert_int_equal(buf_append(&list, one, strlen(one) + 1), 0);
    }
    struct state_page p = page("http://a.test/", list.data, list.len, 0);
    assert_int_equal(state_page_put(s, &p), 0);
    /* The list is the caller's: changed after the put, the put's copy is what is stored. */
    struct buf encoded;
    buf_init(&encoded);
    assert_int_equal(state_encode_targets(list.data, list.len, &encoded), 0);
    assert_true(encoded.len < list.len);
    char *mine = malloc(list.len);
    assert_non_null(mine);
    memcpy(mine, list.data, list.len);
    struct state_page q = page("http://a.test/2", mine, list.len, 0);
    q.ntargets = 500;
    assert_int_equal(state_page_put(s, &q), 0);
    memset(mine, 'x', list.len);
    free(mine);
    assert_int_equal(state_commit_now(s, OUTPUT(0), NULL, 1), 0);
    static const char *const urls[] = {"http://a.test/", "http://a.test/2"};
    for (int i = 0; i < 2; i++) {
        struct state_record r;
        state_record_init(&r);
        assert_int_equal(state_page_get(s, urls[i], strlen(urls[i]), &r), 1);
        assert_int_equal(state_record_targets(&r), 0);
        assert_int_equal(r.page.targets_len, list.len);
        assert_memory_equal(r.page.targets, list.data, list.len);
        assert_int_equal(r.page.ntargets, 500);
        assert_int_equal(state_record_targets(&r), 0); /* once decoded, it stays */
        assert_memory_equal(r.page.targets, list.data, list.len);
        state_record_finish(&r);
    }
    buf_finish(&encoded);
    buf_finish(&list);
    state_close(s);
}

/* The --changes and --failures files (issue 14): a page is committed only once its lines
 * are whole in all three files, and each commit records, for each file, the length that
 * holds the lines of the pages committed and no others'; a file the run does not keep is
 * recorded as none, at once when a resumed run drops it. */
static void test_commit_records_each_file(void **st)
{
    struct env *e = *st;
    state *s = open_ok(e->path);
    const struct state_files all = {.kept = {1, 1, 1}, .bytes = {7, 0, 0}};
    assert_int_equal(state_run_begin(s, 0, cmd_hash, opt_hash, &all, 100), 0);
    int64_t id = state_run_id(s);
    struct state_page a = page("http://a.test/1", "", 0, 10);
    a.changes_end = 5;
    struct state_page b = page("http://a.test/2", "", 0, 20);
    b.changes_end = 5;
    b.failures_end = 30;
    struct state_page c = page("http://a.test/3", "", 0, 30);
    c.changes_end = 12;
    c.failures_end = 30;
    assert_int_equal(state_page_put(s, &a), 0);
    assert_int_equal(state_page_put(s, &b), 0);
    assert_int_equal(state_page_put(s, &c), 0);
    /* c's output is whole, its --changes lines are not. */
    const uint64_t whole[STATE_NFILES] = {30, 5, 30};
    assert_int_equal(state_commit_now(s, whole, NULL, 1), -EINVAL);
    assert_int_equal(state_commit_now(s, whole, NULL, 0), 0);
    assert_int_equal(state_pending(s), 1);
    state_close(s);

    s = open_ok(e->path);
    struct state_run run;
    assert_int_equal(state_last_run(s, &run), 1);
    assert_true(run.open);
    assert_true(run.files.kept[STATE_CHANGES] && run.files.kept[STATE_FAILURES]);
    /* The output's bytes 20..30 are c's: cut away on resume, as c is fetched again. */
    assert_int_equal(run.files.bytes[STATE_OUTPUT], 20);
    assert_int_equal(run.files.bytes[STATE_CHANGES], 5);
    assert_int_equal(run.files.bytes[STATE_FAILURES], 30);
    struct state_record r;
    state_record_init(&r);
    assert_int_equal(state_page_get(s, "http://a.test/2", 15, &r), 1);
    assert_int_equal(state_page_get(s, "http://a.test/3", 15, &r), 0);
    state_record_finish(&r);

    /* Resumed without --changes: none recorded from the start, before any commit. */
    const struct state_files no_changes = {.kept = {1, 0, 1}, .bytes = {20, 0, 30}};
    assert_int_equal(state_run_begin(s, id, cmd_hash, opt_hash, &no_changes, 200), 0);
    assert_int_equal(state_last_run(s, &run), 1);
    assert_false(run.files.kept[STATE_CHANGES]);
    assert_true(run.files.kept[STATE_FAILURES]);
    assert_int_equal(run.files.bytes[STATE_FAILURES], 30);
    c.changes_end = 0;
    c.output_end = 31;
    c.failures_end = 31;
    assert_int_equal(state_page_put(s, &c), 0);
    /* Everything queued is covered: where c ends, not what follows (--failures lines of
     * no page, found again by a resumed run). */
    const uint64_t end[STATE_NFILES] = {31, 0, 45};
    assert_int_equal(state_commit_now(s, end, NULL, 1), 0);
    assert_int_equal(state_last_run(s, &run), 1);
    assert_false(run.open);
    assert_int_equal(run.files.bytes[STATE_OUTPUT], 31);
    assert_false(run.files.kept[STATE_CHANGES]);
    assert_int_equal(run.files.bytes[STATE_FAILURES], 31);

    /* A new run without either file: none recorded. */
    assert_int_equal(state_run_begin(s, 0, cmd_hash, opt_hash, STARTING(0), 300), 0);
    assert_int_equal(state_last_run(s, &run), 1);
    assert_true(run.files.kept[STATE_OUTPUT]);
    assert_false(run.files.kept[STATE_CHANGES] || run.files.kept[STATE_FAILURES]);
    state_close(s);
}

/* Each file is made durable before a commit records its length: one that cannot be (here
 * a descriptor that is not open) fails the commit, naming it, and nothing is recorded. */
static void test_commit_syncs_each_file(void **st)
{
    struct env *e = *st;
    state *s = open_ok(e->path);
    const struct state_files all = {.kept = {1, 1, 1}};
    assert_int_equal(state_run_begin(s, 0, cmd_hash, opt_hash, &all, 100), 0);
    struct state_page a = page("http://a.test/1", "", 0, 10);
    a.failures_end = 4;
    assert_int_equal(state_page_put(s, &a), 0);
    int fd = open(e->path, O_RDONLY);
    assert_true(fd >= 0);
    close(fd); /* its number is not open now */
    const uint64_t whole[STATE_NFILES] = {10, 0, 4};
    const int sync[STATE_NFILES] = {-1, -1, fd};
    assert_int_equal(state_commit_now(s, whole, sync, 0), STATE_E_IO);
    assert_non_null(strstr(state_error(s), "--failures"));
    struct state_run run;
    assert_int_equal(state_last_run(s, &run), 1);
    assert_int_equal(run.files.bytes[STATE_FAILURES], 0);
    struct state_record r;
    state_record_init(&r);
    assert_int_equal(state_page_get(s, "http://a.test/1", 15, &r), 0);
    state_record_finish(&r);
    state_close(s);
}

/* A page put with same_content keeps its stored targets, hash and outcome; the rest is
 * written (validators, times, the run). */
static void test_same_content(void **st)
{
    struct env *e = *st;
    state *s = open_ok(e->path);
    assert_int_equal(state_run_begin(s, 0, cmd_hash, opt_hash, STARTING(0), 100), 0);
    static const char t[] = "http://a.test/x\0http://a.test/y\0";
    struct state_page a = page("http://a.test/", t, sizeof t - 1, 0);
    assert_int_equal(state_page_put(s, &a), 0);
    assert_int_equal(state_commit_now(s, OUTPUT(0), NULL, 1), 0);
    assert_int_equal(state_run_begin(s, 0, cmd_hash, opt_hash, STARTING(0), 200), 0);
    struct state_page b = page("http://a.test/", NULL, 0, 0);
    b.same_content = 1;
    b.etag = "\"v2\"";
    b.fetched_at = 2000;
    assert_int_equal(state_page_put(s, &b), 0);
    assert_int_equal(state_commit_now(s, OUTPUT(0), NULL, 1), 0);
    struct state_record r;
    state_record_init(&r);
    assert_int_equal(state_page_get(s, "http://a.test/", 14, &r), 1);
    assert_int_equal(state_record_targets(&r), 0);
    assert_int_equal(r.page.targets_len, sizeof t - 1);
    assert_memory_equal(r.page.targets, t, sizeof t - 1);
    assert_true(r.page.has_body_hash);
    assert_string_equal(r.page.etag, "\"v2\"");
    assert_int_equal(r.page.fetched_at, 2000);
    assert_int_equal(r.page.run, state_run_id(s));
    state_record_finish(&r);
    state_close(s);
}

/* The frames in a store's WAL: its header, then a 24-byte header and a page for each. */
static long wal_frames(const char *path)
{
    char wal[160];
    snprintf(wal, sizeof wal, "%s-wal", path);
    struct stat st;
    if (stat(wal, &st) != 0 || st.st_size < 32)
        return 0;
    return (long)((st.st_size - 32) / (24 + 4096));
}

/* An unchanged re-run writes each page's visit, not its row: 400 pages found unchanged
 * (a 304 with the same validators, at the same depth) come to 4 WAL pages here; the
 * layout before schema 3, which rewrote their rows, came to 20. */
static void test_unchanged_page_writes_only_its_visit(void **st)
{
    struct env *e = *st;
    enum { N = 400 };
    char urls[N][40];
    state *s = open_ok(e->path);
    assert_int_equal(state_run_begin(s, 0, cmd_hash, opt_hash, STARTING(0), 100), 0);
    static const char t[] = "http://a.test/x\0http://a.test/y\0";
    for (int i = 0; i < N; i++) {
        snprintf(urls[i], sizeof urls[i], "http://a.test/page/%04d.html", i);
        struct state_page p = page(urls[i], t, sizeof t - 1, 0);
        assert_int_equal(state_page_put(s, &p), 0);
    }
    assert_int_equal(state_commit_now(s, OUTPUT(0), NULL, 1), 0);
    state_close(s);
    assert_int_equal(wal_frames(e->path), 0); /* the close checkpointed it */

    s = open_ok(e->path);
    assert_int_equal(state_run_begin(s, 0, cmd_hash, opt_hash, STARTING(0), 200), 0);
    int64_t run = state_run_id(s);
    long before = wal_frames(e->path);
    for (int i = 0; i < N; i++) {
        struct state_page p = page(urls[i], NULL, 0, 0);
        p.same_content = 1;
        p.fetched_at = 2000;
        assert_int_equal(state_page_put(s, &p), 0);
    }
    assert_int_equal(state_commit_now(s, OUTPUT(0), NULL, 0), 0);
    long written = wal_frames(e->path) - before;
    assert_in_range(written, 1, 8);
    struct state_record r;
    state_record_init(&r);
    for (int i = 0; i < N; i += 37) {
        assert_int_equal(state_page_get(s, urls[i], strlen(urls[i]), &r), 1);
        assert_int_equal(r.page.fetched_at, 2000);
        assert_int_equal(r.page.run, run);
        assert_string_equal(r.page.etag, "\"v1\"");
        assert_int_equal(state_record_targets(&r), 0);
        assert_memory_equal(r.page.targets, t, sizeof t - 1);
    }
    state_record_finish(&r);
    state_close(s);
}

static int count_page(void *arg, const struct state_page *p)
{
    (void)p;
    (*(int *)arg)++;
    return 0;
}

/* state_each_page walks the pages of one run only. */
static void test_each_page(void **st)
{
    struct env *e = *st;
    state *s = open_ok(e->path);
    assert_int_equal(state_run_begin(s, 0, cmd_hash, opt_hash, STARTING(0), 100), 0);
    int64_t first = state_run_id(s);
    struct state_page a = page("http://a.test/1", "", 0, 0);
    struct state_page b = page("http://a.test/2", "", 0, 0);
    assert_int_equal(state_page_put(s, &a), 0);
    assert_int_equal(state_page_put(s, &b), 0);
    assert_int_equal(state_commit_now(s, OUTPUT(0), NULL, 1), 0);
    assert_int_equal(state_run_begin(s, 0, cmd_hash, opt_hash, STARTING(0), 100), 0);
    int64_t second = state_run_id(s);
    assert_true(second > first);
    assert_int_equal(state_page_put(s, &b), 0);
    assert_int_equal(state_commit_now(s, OUTPUT(0), NULL, 0), 0);
    int n = 0;
    assert_int_equal(state_each_page(s, first, count_page, &n), 0);
    assert_int_equal(n, 1); /* b moved to the second run */
    n = 0;
    assert_int_equal(state_each_page(s, second, count_page, &n), 0);
    assert_int_equal(n, 1);
    state_close(s);
}

static void committed(void *arg, int status)
{
    *(int *)arg = status + 1000;
}

/* The asynchronous commit runs on the store's thread and calls back on the loop; a second
 * one while it is in flight is refused. */
static void test_commit_async(void **st)
{
    struct env *e = *st;
    uv_loop_t loop;
    task_sched sched;
    test_loop_open(&loop, &sched);
    state *s = open_ok(e->path);
    assert_int_equal(state_run_begin(s, 0, cmd_hash, opt_hash, STARTING(0), 100), 0);
    struct state_page a = page("http://a.test/1", "http://a.test/2\0", 16, 10);
    assert_int_equal(state_page_put(s, &a), 0);
    int out = open(e->dir, O_RDONLY | O_DIRECTORY); /* something to fdatasync */
    int status = -1;
    assert_int_equal(state_commit(s, &loop, OUTPUT(10), SYNC(out), 1, committed, &status), 0);
    assert_true(state_commit_busy(s));
    assert_int_equal(state_commit(s, &loop, OUTPUT(10), SYNC(out), 1, committed, &status), -EBUSY);
    task_sched_close(&sched);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0); /* until the commit's callback */
    assert_int_equal(status, 1000);
    state_detach(s); /* the store's handle goes, or the loop could not close */
    test_loop_drain_and_close(&loop);
    assert_int_equal(status, 1000);
    close(out);
    struct state_record r;
    state_record_init(&r);
    assert_int_equal(state_page_get(s, "http://a.test/1", 15, &r), 1);
    assert_int_equal(state_record_targets(&r), 0);
    assert_string_equal(r.page.targets, "http://a.test/2");
    state_record_finish(&r);
    state_close(s);
}

/* robots.txt round-trips, body bytes and all, and a second put replaces the first. */
static void test_robots(void **st)
{
    struct env *e = *st;
    state *s = open_ok(e->path);
    assert_int_equal(state_run_begin(s, 0, cmd_hash, opt_hash, STARTING(0), 100), 0);
    struct state_robots_record r;
    state_robots_record_init(&r);
    assert_int_equal(state_robots_get(s, "http://a.test", &r), 0);
    static const char body[] = "User-agent: *\nDisallow: /x\n\0tail";
    struct state_robots a = {.origin = "http://a.test", .status = 200, .etag = "\"r1\"",
                             .body = body, .body_len = sizeof body - 1, .fetched_at = 5};
    assert_int_equal(state_robots_put(s, &a), 0);
    assert_int_equal(state_commit_now(s, OUTPUT(0), NULL, 0), 0);
    assert_int_equal(state_robots_get(s, "http://a.test", &r), 1);
    assert_int_equal(r.robots.status, 200);
    assert_string_equal(r.robots.etag, "\"r1\"");
    assert_null(r.robots.last_modified);
    assert_int_equal(r.robots.body_len, sizeof body - 1);
    assert_memory_equal(r.robots.body, body, sizeof body - 1);
    assert_int_equal(r.robots.fetched_at, 5);
    struct state_robots b = {.origin = "http://a.test", .status = 404, .fetched_at = 9};
    assert_int_equal(state_robots_put(s, &b), 0);
    assert_int_equal(state_commit_now(s, OUTPUT(0), NULL, 0), 0);
    assert_int_equal(state_robots_get(s, "http://a.test", &r), 1);
    assert_int_equal(r.robots.status, 404);
    assert_null(r.robots.etag);
    assert_int_equal(r.robots.body_len, 0);
    state_robots_record_finish(&r);
    state_close(s);
}

static void write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static void read_file(const char *path, struct buf *out)
{
    buf_init(out);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    char tmp[4096];
    size_t n;
    while ((n = fread(tmp, 1, sizeof tmp, f)) > 0)
        assert_int_equal(buf_append(out, tmp, n), 0);
    fclose(f);
}

/* Opening `path` fails with `expect`, the message names the file, and the file is left
 * byte for byte as it was, with no WAL beside it. */
static void refused(const char *path, int expect, const char *words)
{
    struct buf before, after;
    read_file(path, &before);
    state *s = NULL;
    char why[512] = "";
    assert_int_equal(state_open(path, &s, why, sizeof why), expect);
    assert_null(s);
    assert_non_null(strstr(why, path));
    if (strstr(why, words) == NULL)
        fail_msg("'%s' does not say '%s'", why, words);
    read_file(path, &after);
    assert_int_equal(after.len, before.len);
    assert_memory_equal(after.data, before.data, before.len);
    char wal[200];
    snprintf(wal, sizeof wal, "%s-wal", path);
    assert_int_equal(access(wal, F_OK), -1);
    buf_finish(&before);
    buf_finish(&after);
}

static void test_foreign_text(void **st)
{
    struct env *e = *st;
    static const char text[] = "http://a.test/\thttp://b.test/\n";
    write_file(e->path, text, sizeof text - 1);
    refused(e->path, STATE_E_FOREIGN, "not an SQLite database");
}

/* An SQLite file of another program that sets its own application_id: refused on the
 * header alone. (One without an id is tested end to end, with the sqlite3 tool.) */
static void test_foreign_sqlite(void **st)
{
    struct env *e = *st;
    unsigned char h[1024] = "SQLite format 3";
    h[16] = 0x04; /* page size 1024 */
    h[18] = h[19] = 1;
    memcpy(h + 68, "ABCD", 4);
    write_file(e->path, h, sizeof h);
    refused(e->path, STATE_E_FOREIGN, "another program");
}

static void patch(const char *path, long at, const void *bytes, size_t n)
{
    int fd = open(path, O_WRONLY);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, bytes, n, at), (ssize_t)n);
    close(fd);
}

static void make_store(const char *path)
{
    state *s = open_ok(path);
    assert_int_equal(state_run_begin(s, 0, cmd_hash, opt_hash, STARTING(0), 100), 0);
    struct state_page a = page("http://a.test/1", "http://a.test/2\0", 16, 0);
    assert_int_equal(state_page_put(s, &a), 0);
    assert_int_equal(state_commit_now(s, OUTPUT(0), NULL, 1), 0);
    state_close(s);
}

static void test_newer_schema(void **st)
{
    struct env *e = *st;
    make_store(e->path);
    static const unsigned char v99[4] = {0, 0, 0, 99};
    patch(e->path, 60, v99, 4); /* user_version */
    refused(e->path, STATE_E_NEWER, "newer areq");
}

/* Garbage over the schema (the rest of the first page): found on open, file untouched. */
static void test_corrupt(void **st)
{
    struct env *e = *st;
    make_store(e->path);
    unsigned char junk[2000];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (unsigned char)(i * 37 + 11);
    patch(e->path, 100, junk, sizeof junk);
    refused(e->path, STATE_E_CORRUPT, "damaged");
}

/* A second opener, in this process or in another one, is turned away while the first
 * holds the store, and gets it once the first has closed it. */
static void test_lock(void **st)
{
    struct env *e = *st;
    state *s = open_ok(e->path);
    state *t = NULL;
    char why[512] = "";
    assert_int_equal(state_open(e->path, &t, why, sizeof why), STATE_E_LOCKED);
    assert_non_null(strstr(why, "in use by another areq run"));
    /* The failed opener closed its descriptor: the first one's locks, SQLite's included,
     * must still hold, so a commit still works and another process is still refused. */
    assert_int_equal(state_run_begin(s, 0, cmd_hash, opt_hash, STARTING(0), 100), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        state *c = NULL;
        char w[512];
        _exit(state_open(e->path, &c, w, sizeof w) == STATE_E_LOCKED ? 0 : 1);
    }
    int ws;
    assert_int_equal(waitpid(pid, &ws, 0), pid);
    assert_true(WIFEXITED(ws));
    assert_int_equal(WEXITSTATUS(ws), 0);
    state_close(s);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        state *c = NULL;
        char w[512];
        int rc = state_open(e->path, &c, w, sizeof w);
        state_close(c);
        _exit(rc == 0 ? 0 : 1);
    }
    assert_int_equal(waitpid(pid, &ws, 0), pid);
    assert_true(WIFEXITED(ws));
    assert_int_equal(WEXITSTATUS(ws), 0);
}

/* A path that does not exist is created; a directory that does not exist is an error,
 * and nothing is created. */
static void test_create_only_when_missing(void **st)
{
    struct env *e = *st;
    char bad[200];
    snprintf(bad, sizeof bad, "%s/no/such/dir/state.db", e->dir);
    state *s = NULL;
    char why[512] = "";
    assert_true(state_open(bad, &s, why, sizeof why) < 0);
    assert_non_null(strstr(why, bad));
    s = open_ok(e->path);
    state_close(s);
    struct stat sb;
    assert_int_equal(stat(e->path, &sb), 0);
    assert_true(sb.st_size > 0);
}

/* Lookups for test_lookups: each answer in the order it came. */
struct answers {
    int order[64];
    int n;
};

struct asked {
    struct state_lookup look;
    char url[64];
    int index;
    int calls;
    struct answers *answers;
};

static void answered(struct state_lookup *l)
{
    struct asked *a = l->arg;
    a->calls++;
    a->answers->order[a->answers->n++] = a->index;
}

/* Asks the store for a->url, afresh. */
static void ask(state *s, uv_loop_t *loop, struct asked *a)
{
    state_lookup_finish(&a->look);
    state_lookup_init(&a->look);
    a->look.url = a->url;
    a->look.len = strlen(a->url);
    a->look.done = answered;
    a->look.arg = a;
    assert_int_equal(state_lookup_start(s, loop, &a->look), 0);
}

/* A loop whose task scheduler is closed at once (lookups need none; its handles close on
 * the loop's next run, so it must outlive that) and the store at `path`, its run 0 begun:
 * what the lookup tests start from. */
static state *open_for_lookups(const char *path, uv_loop_t *loop, task_sched *sched)
{
    test_loop_open(loop, sched);
    task_sched_close(sched);
    state *s = open_ok(path);
    assert_int_equal(state_run_begin(s, 0, cmd_hash, opt_hash, STARTING(0), 100), 0);
    return s;
}

/* Lookups are answered off the loop, each once, in the order asked, as state_page_get
 * answers: pages known with their record, unknown ones 0, and a page committed on the
 * commit thread while lookups are in flight is seen by a lookup asked after its commit.
 * The loop ends by itself once every answer is in: an idle store keeps no loop alive. */
static void test_lookups(void **st)
{
    struct env *e = *st;
    uv_loop_t loop;
    task_sched sched;
    state *s = open_for_lookups(e->path, &loop, &sched);
    char url[64];
    for (int i = 0; i < 40; i++) {
        snprintf(url, sizeof url, "http://a.test/%d", i);
        struct state_page p = page(url, "http://a.test/t\0http://a.test/u\0", 32, 10);
        p.etag = i % 2 ? "\"odd\"" : "\"even\"";
        assert_int_equal(state_page_put(s, &p), 0);
    }
    assert_int_equal(state_commit_now(s, OUTPUT(10), NULL, 0), 0);

    struct answers answers = {0};
    static struct asked asked[48];
    for (int i = 0; i < 48; i++) {
        struct asked *a = &asked[i];
        /* 40-47: never stored. */
        snprintf(a->url, sizeof a->url, "http://a.test/%d", i);
        a->index = i;
        a->calls = 0;
        a->answers = &answers;
        state_lookup_init(&a->look);
        ask(s, &loop, a);
    }
    assert_int_equal(answers.n, 0); /* answered on the loop, never inside the start */
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(answers.n, 48);
    for (int i = 0; i < 48; i++) {
        struct asked *a = &asked[i];
        assert_int_equal(answers.order[i], i);
        assert_int_equal(a->calls, 1);
        if (i < 40) {
            assert_int_equal(a->look.rc, 1);
            assert_string_equal(a->look.rec.page.url, a->url);
            assert_string_equal(a->look.rec.page.etag, i % 2 ? "\"odd\"" : "\"even\"");
            assert_int_equal(a->look.rec.page.ntargets, 2);
            assert_int_equal(state_record_targets(&a->look.rec), 0);
            assert_memory_equal(a->look.rec.page.targets, "http://a.test/t\0http://a.test/u\0",
                                32);
        } else {
            assert_int_equal(a->look.rc, 0);
        }
    }

    /* A commit in flight on the commit thread, and lookups on the reader thread. */
    struct state_page late = page("http://a.test/late", "http://a.test/x\0", 16, 20);
    assert_int_equal(state_page_put(s, &late), 0);
    int out = open(e->dir, O_RDONLY | O_DIRECTORY);
    int status = -1;
    assert_int_equal(state_commit(s, &loop, OUTPUT(20), SYNC(out), 0, committed, &status), 0);
    answers.n = 0;
    for (int i = 0; i < 8; i++)
        ask(s, &loop, &asked[i]);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(status, 1000);
    assert_int_equal(answers.n, 8);
    for (int i = 0; i < 8; i++)
        assert_int_equal(asked[i].look.rc, 1);
    struct asked *a = &asked[47];
    strcpy(a->url, "http://a.test/late");
    ask(s, &loop, a);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(a->look.rc, 1);
    assert_int_equal(a->look.rec.page.output_end, 0); /* get only fills what is stored */
    assert_int_equal(state_record_targets(&a->look.rec), 0);
    assert_string_equal(a->look.rec.page.targets, "http://a.test/x");

    state_detach(s);
    test_loop_drain_and_close(&loop);
    close(out);
    for (int i = 0; i < 48; i++)
        state_lookup_finish(&asked[i].look);
    /* After the threads have stopped, the synchronous reads still answer. */
    struct state_record r;
    state_record_init(&r);
    assert_int_equal(state_page_get(s, "http://a.test/3", 15, &r), 1);
    assert_string_equal(r.page.etag, "\"odd\"");
    state_record_finish(&r);
    state_close(s);
}

/* A lookup's record gets its memory on the thread that asks (the loop), as much as the
 * largest row read so far, so that the reader thread only fills it (state_lookup_start);
 * a row larger than that still comes back whole, grown on the reader. */
static void test_lookup_room(void **st)
{
    struct env *e = *st;
    uv_loop_t loop;
    task_sched sched;
    state *s = open_for_lookups(e->path, &loop, &sched);
    /* Targets that share little, so that the stored list stays long: 20 KB and 200 KB. */
    struct buf lists[2];
    static const size_t want[2] = {20000, 200000};
    static const char *const urls[2] = {"http://a.test/mid", "http://a.test/big"};
    for (int k = 0; k < 2; k++) {
        buf_init(&lists[k]);
        char one[64];
        for (unsigned i = 0; lists[k].len < want[k]; i++) {
            snprintf(one, sizeof one, "http://h%u.test/%08x", i * 2654435761u % 9973,
                     i * 2246822519u);
            assert_int_equal(buf_append(&lists[k], one, strlen(one) + 1), 0);
        }
        struct state_page p = page(urls[k], lists[k].data, lists[k].len, 10);
        assert_int_equal(state_page_put(s, &p), 0);
    }
    assert_int_equal(state_commit_now(s, OUTPUT(10), NULL, 0), 0);

    struct answers answers = {0};
    static struct asked asked[4];
    static const int which[4] = {0, 0, 1, 1}; /* mid, mid again, big, big again */
    for (int i = 0; i < 4; i++) {
        struct asked *a = &asked[i];
        snprintf(a->url, sizeof a->url, "%s", urls[which[i]]);
        a->index = i;
        a->answers = &answers;
        state_lookup_init(&a->look);
        ask(s, &loop, a);
        size_t room = a->look.rec.mem.cap;
        if (i == 0)
            assert_true(room >= 4096); /* some room before anything was read */
        if (i == 1 || i == 2) /* as much as the 20 KB row read before */
            assert_true(room > asked[0].look.rec.mem.len);
        if (i == 3) /* not as much as the 200 KB one: the room has a ceiling */
            assert_true(room < asked[2].look.rec.mem.len);
        assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
        assert_int_equal(a->calls, 1);
        assert_int_equal(a->look.rc, 1);
        assert_int_equal(state_record_targets(&a->look.rec), 0);
        assert_int_equal(a->look.rec.page.targets_len, lists[which[i]].len);
        assert_memory_equal(a->look.rec.page.targets, lists[which[i]].data,
                            lists[which[i]].len);
    }
    state_detach(s);
    test_loop_drain_and_close(&loop);
    for (int i = 0; i < 4; i++)
        state_lookup_finish(&asked[i].look);
    for (int k = 0; k < 2; k++)
        buf_finish(&lists[k]);
    state_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_targets_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_commit_covers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_commit_records_each_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_commit_syncs_each_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_same_content, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unchanged_page_writes_only_its_visit, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_each_page, setup, teardown),
        cmocka_unit_test_setup_teardown(test_commit_async, setup, teardown),
        cmocka_unit_test_setup_teardown(test_robots, setup, teardown),
        cmocka_unit_test_setup_teardown(test_foreign_text, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lookups, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lookup_room, setup, teardown),
        cmocka_unit_test_setup_teardown(test_foreign_sqlite, setup, teardown),
        cmocka_unit_test_setup_teardown(test_newer_schema, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lock, setup, teardown),
        cmocka_unit_test_setup_teardown(test_create_only_when_missing, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
