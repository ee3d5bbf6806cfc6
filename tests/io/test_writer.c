/* Tests of the output writer. Each case runs on a fresh loop with a scheduler, in a fresh
 * temporary directory, and ends by checking that uv_loop_close() returns 0: the writer
 * left no request behind. A task submits blocks and awaits writer_close(); the file is then
 * read back and compared byte for byte. */
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
#include <unistd.h>

#include <cmocka.h>

#include "buf.h"
#include "task.h"
#include "test_loop.h"
#include "writer.h"

struct env {
    uv_loop_t loop;
    task_sched sched;
    char dir[64];
    char path[128];
};

static int setup(void **state)
{
    struct env *e = calloc(1, sizeof *e);
    assert_non_null(e);
    test_loop_open(&e->loop, &e->sched);
    strcpy(e->dir, "/tmp/areq-test-writer-XXXXXX");
    assert_non_null(mkdtemp(e->dir));
    snprintf(e->path, sizeof e->path, "%s/out.txt", e->dir);
    *state = e;
    return 0;
}

static int teardown(void **state)
{
    struct env *e = *state;
    task_sched_close(&e->sched);
    test_loop_drain_and_close(&e->loop);
    unlink(e->path);
    assert_int_equal(rmdir(e->dir), 0);
    free(e);
    return 0;
}

static void run(struct env *e)
{
    uv_run(&e->loop, UV_RUN_DEFAULT);
}

/* The whole file, NUL-terminated, in a buffer the caller finishes. */
static void slurp(const char *path, struct buf *out)
{
    buf_init(out);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        assert_int_equal(buf_append(out, chunk, n), 0);
    assert_false(ferror(f));
    fclose(f);
    assert_int_equal(buf_reserve(out, 0), 0); /* an empty file still reads as "" */
}

static void spit(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
    assert_int_equal(fclose(f), 0);
}

static void assert_file_is(const char *path, const char *data, size_t len)
{
    struct buf got;
    slurp(path, &got);
    assert_int_equal(got.len, len);
    assert_memory_equal(got.data, data, len);
    buf_finish(&got);
}

/* ---- a task that submits its blocks, then closes the writer ---- */

#define MAX_BLOCKS 16

struct producer {
    task t;
    writer *w;
    const char *blocks[MAX_BLOCKS]; /* ends at the first NULL, unless `big` is set */
    const char *big;                /* one block of big_len bytes instead */
    size_t big_len;
    int yield_between;              /* one block per loop turn instead of all at once */
    size_t next;
    int submit_rc[MAX_BLOCKS + 1];
    size_t backlog_after_submit;    /* writer_backlog() right after the last submission */
    int close_rc;
    int closed;
};

static enum task_step producer_step(task *t)
{
    struct producer *p = (struct producer *)t;
    switch (t->state) {
    case 0:
        if (p->big != NULL) {
            p->submit_rc[0] = writer_submit(p->w, p->big, p->big_len);
        } else {
            while (p->next < MAX_BLOCKS && p->blocks[p->next] != NULL) {
                size_t i = p->next++;
                p->submit_rc[i] = writer_submit(p->w, p->blocks[i], strlen(p->blocks[i]));
                if (p->yield_between && p->next < MAX_BLOCKS && p->blocks[p->next] != NULL)
                    return task_yield(t);
            }
        }
        p->backlog_after_submit = writer_backlog(p->w);
        t->state = 1;
        return writer_close(p->w, t);
    case 1:
        p->closed = 1;
        p->close_rc = task_wait_rc(t);
        return task_finish(t, p->close_rc);
    }
    return task_finish(t, -EINVAL);
}

static void start_producer(struct env *e, struct producer *p)
{
    task_init(&p->t, producer_step, NULL);
    task_spawn(&e->sched, &p->t, NULL);
}

static size_t concat(const char *const *blocks, char *out, size_t cap)
{
    size_t len = 0;
    for (size_t i = 0; i < MAX_BLOCKS && blocks[i] != NULL; i++) {
        size_t n = strlen(blocks[i]);
        assert_true(len + n < cap);
        memcpy(out + len, blocks[i], n);
        len += n;
    }
    out[len] = '\0';
    return len;
}

/* ---- writer_start: the header, and appends onto a cut line (issue 16) ---- */

struct start_row {
    const char *name;
    const char *before; /* NULL: no file */
    int append;
    const char *after;
    int cut_line;
};

static const struct start_row start_rows[] = {
    {"new file", NULL, 1, "H\n", 0},
    {"empty file", "", 1, "H\n", 0},
    {"whole lines", "a\tb\n", 1, "a\tb\n", 0},
    {"a cut last line starts a new one", "a\tb\nc\td", 1, "a\tb\nc\td\n", 1},
    {"CRLF records are whole", "a,b\r\n", 1, "a,b\r\n", 0},
    {"replacing", "a\tb", 0, "H\n", 0},
};

static void test_start_writes_header_or_repairs(void **state)
{
    struct env *e = *state;
    for (size_t r = 0; r < sizeof start_rows / sizeof start_rows[0]; r++) {
        const struct start_row *row = &start_rows[r];
        unlink(e->path);
        if (row->before != NULL)
            spit(e->path, row->before);
        struct producer p = {.blocks = {NULL}};
        assert_int_equal(writer_open(&e->loop, e->path, row->append, &p.w), 0);
        assert_int_equal(writer_start(p.w, "H\n", 2), 0);
        assert_int_equal(writer_cut_line(p.w), row->cut_line);
        start_producer(e, &p);
        run(e);
        assert_true(p.closed);
        assert_int_equal(p.close_rc, 0);
        assert_file_is(e->path, row->after, strlen(row->after));
        writer_destroy(p.w);
    }
}

static void test_counts_what_was_written_whole(void **state)
{
    struct env *e = *state;
    struct producer p = {.blocks = {NULL}};
    assert_int_equal(writer_open(&e->loop, e->path, 0, &p.w), 0);
    assert_int_equal(writer_start(p.w, "H\n", 2), 0);
    assert_int_equal(writer_submit_counted(p.w, "a\t1\na\t2\n", 8, 2), 0);
    assert_int_equal(writer_submit_counted(p.w, "b\t1\n", 4, 1), 0);
    assert_int_equal(writer_count_written(p.w), 0); /* handed over, not yet written */
    start_producer(e, &p);
    run(e);
    assert_int_equal(p.close_rc, 0);
    assert_int_equal(writer_count_written(p.w), 3);
    writer_destroy(p.w);

    struct producer q = {.blocks = {NULL}};
    assert_int_equal(writer_open(&e->loop, "/dev/full", 0, &q.w), 0);
    assert_int_equal(writer_submit_counted(q.w, "a\t1\n", 4, 1), 0);
    start_producer(e, &q);
    run(e);
    assert_int_equal(q.close_rc, -ENOSPC);
    assert_int_equal(writer_count_written(q.w), 0);
    writer_destroy(q.w);
}

/* ---- order and contiguity ---- */

struct blocks_row {
    const char *name;
    int yield_between;
    const char *blocks[MAX_BLOCKS];
};

static const struct blocks_row block_rows[] = {
    {"nothing", 0, {NULL}},
    {"one block", 0, {"source_url\tparsed_url\n"}},
    {"several blocks in one turn", 0,
     {"source_url\tparsed_url\n", "http://a/\thttp://a/x\n", "http://a/\thttp://a/y\n",
      "http://b/\thttp://c/\n", "tail without newline"}},
    {"one block per turn", 1,
     {"1\n", "22\n", "333\n", "4444\n", "55555\n", "666666\n", "7777777\n", "88888888\n"}},
    {"empty blocks in between", 0, {"a", "", "b", "", "", "c\n"}},
    {"bytes are not text", 0, {"\xff\xfe", "\t\r\n", "\x80"}},
};

static void test_blocks_arrive_concatenated_in_order(void **state)
{
    struct env *e = *state;
    for (size_t r = 0; r < sizeof block_rows / sizeof block_rows[0]; r++) {
        const struct blocks_row *row = &block_rows[r];
        print_message("  row: %s\n", row->name);
        struct producer p = {.yield_between = row->yield_between};
        memcpy(p.blocks, row->blocks, sizeof p.blocks);
        assert_int_equal(writer_open(&e->loop, e->path, 0, &p.w), 0);
        start_producer(e, &p);
        run(e);
        assert_true(p.closed);
        assert_int_equal(p.close_rc, 0);
        for (size_t i = 0; i < MAX_BLOCKS && row->blocks[i] != NULL; i++)
            assert_int_equal(p.submit_rc[i], 0);
        assert_int_equal(writer_error(p.w), 0);
        assert_int_equal(writer_backlog(p.w), 0);
        writer_destroy(p.w);

        char want[512];
        size_t len = concat(row->blocks, want, sizeof want);
        assert_file_is(e->path, want, len);
    }
}

/* ---- truncating and appending ---- */

static void test_open_truncates_existing_file(void **state)
{
    struct env *e = *state;
    spit(e->path, "old content that is longer than the new one\nsecond old line\n");
    struct producer p = {.blocks = {"source_url\tparsed_url\n", "new\n"}};
    assert_int_equal(writer_open(&e->loop, e->path, 0, &p.w), 0);
    start_producer(e, &p);
    run(e);
    assert_int_equal(p.close_rc, 0);
    writer_destroy(p.w);
    const char want[] = "source_url\tparsed_url\nnew\n";
    assert_file_is(e->path, want, sizeof want - 1);
}

static void test_open_truncates_even_with_nothing_written(void **state)
{
    struct env *e = *state;
    spit(e->path, "old\n");
    struct producer p = {.blocks = {NULL}};
    assert_int_equal(writer_open(&e->loop, e->path, 0, &p.w), 0);
    start_producer(e, &p);
    run(e);
    assert_int_equal(p.close_rc, 0);
    writer_destroy(p.w);
    assert_file_is(e->path, "", 0);
}

/* The truncation is the writer's first request, not part of writer_open(): a replaced file
 * of many megabytes takes milliseconds to free, which the loop would spend before its first
 * transfer (issue 15). */
static void test_truncation_waits_for_the_loop(void **state)
{
    struct env *e = *state;
    spit(e->path, "old content\n");
    struct producer p = {.blocks = {"new\n"}};
    assert_int_equal(writer_open(&e->loop, e->path, 0, &p.w), 0);
    assert_file_is(e->path, "old content\n", 12); /* not cut: no request before a submission */
    assert_int_equal(writer_start(p.w, "H\n", 2), 0);
    assert_int_equal(writer_offset_submitted(p.w), 2); /* counted from the empty file */
    start_producer(e, &p);
    run(e);
    assert_int_equal(p.close_rc, 0);
    assert_int_equal(writer_offset_whole(p.w), 6);
    writer_destroy(p.w);
    assert_file_is(e->path, "H\nnew\n", 6);
}

/* A writer let go before the loop ran (a run that fails to start) still leaves the file
 * it replaced empty, as opening with O_TRUNC did; and one abandoned with the truncation in
 * flight is idle only once that is back (settle_output() in run.c waits for it). */
static void test_truncation_without_the_loop_and_abandoned(void **state)
{
    struct env *e = *state;
    spit(e->path, "old\n");
    writer *w = NULL;
    assert_int_equal(writer_open(&e->loop, e->path, 0, &w), 0);
    writer_destroy(w);
    assert_file_is(e->path, "", 0);

    spit(e->path, "old\n");
    assert_int_equal(writer_open(&e->loop, e->path, 0, &w), 0);
    assert_int_equal(writer_start(w, "H\n", 2), 0); /* the truncation starts */
    writer_abandon(w);                              /* drops the header */
    assert_int_equal(writer_backlog(w), 0);
    assert_false(writer_idle(w));
    while (!writer_idle(w))
        uv_run(&e->loop, UV_RUN_ONCE);
    writer_destroy(w);
    assert_file_is(e->path, "", 0);
}

static void test_append_keeps_old_content(void **state)
{
    struct env *e = *state;
    spit(e->path, "old line\n");
    struct producer p = {.blocks = {"new 1\n", "new 2\n"}};
    assert_int_equal(writer_open(&e->loop, e->path, 1, &p.w), 0);
    start_producer(e, &p);
    run(e);
    assert_int_equal(p.close_rc, 0);
    writer_destroy(p.w);

    /* And a second appending writer adds after the first. */
    struct producer q = {.blocks = {"new 3\n"}, .yield_between = 1};
    assert_int_equal(writer_open(&e->loop, e->path, 1, &q.w), 0);
    start_producer(e, &q);
    run(e);
    assert_int_equal(q.close_rc, 0);
    writer_destroy(q.w);
    const char want[] = "old line\nnew 1\nnew 2\nnew 3\n";
    assert_file_is(e->path, want, sizeof want - 1);
}

static void test_append_creates_missing_file(void **state)
{
    struct env *e = *state;
    struct producer p = {.blocks = {"first\n"}};
    assert_int_equal(writer_open(&e->loop, e->path, 1, &p.w), 0);
    start_producer(e, &p);
    run(e);
    assert_int_equal(p.close_rc, 0);
    writer_destroy(p.w);
    assert_file_is(e->path, "first\n", 6);
}

/* ---- errors ---- */

static int error_calls;
static int error_seen;
static void *error_ctx_seen;

static void on_error(void *ctx, int err)
{
    error_calls++;
    error_seen = err;
    error_ctx_seen = ctx;
}

static void test_full_disk_is_reported_once_and_sticks(void **state)
{
    struct env *e = *state;
    error_calls = 0;
    error_seen = 0;
    error_ctx_seen = NULL;
    struct producer p = {.blocks = {"a\n", "b\n", "c\n"}, .yield_between = 1};
    assert_int_equal(writer_open(&e->loop, "/dev/full", 0, &p.w), 0);
    int ctx;
    writer_on_error(p.w, on_error, &ctx);
    start_producer(e, &p);
    run(e);

    assert_true(p.closed);
    assert_int_equal(p.close_rc, UV_ENOSPC);
    assert_int_equal(p.close_rc, -ENOSPC);
    assert_int_equal(p.t.result, -ENOSPC);
    assert_int_equal(error_calls, 1);
    assert_int_equal(error_seen, -ENOSPC);
    assert_ptr_equal(error_ctx_seen, &ctx);
    assert_int_equal(writer_error(p.w), -ENOSPC);
    /* The first submission always is taken; the error is found by the write behind it. */
    assert_int_equal(p.submit_rc[0], 0);

    /* Sticky: later submissions are refused with the first error, and nothing new is
     * reported. */
    assert_int_equal(writer_submit(p.w, "more\n", 5), -ENOSPC);
    assert_int_equal(writer_submit(p.w, "", 0), -ENOSPC);
    assert_int_equal(error_calls, 1);
    assert_int_equal(writer_backlog(p.w), 0); /* what was queued is dropped */
    writer_destroy(p.w);
}

static void test_open_in_missing_directory(void **state)
{
    struct env *e = *state;
    char path[192];
    snprintf(path, sizeof path, "%s/no/such/dir/out.txt", e->dir);
    writer *w = (writer *)&path; /* must not be touched on failure */
    assert_int_equal(writer_open(&e->loop, path, 0, &w), -ENOENT);
    assert_ptr_equal(w, (writer *)&path);
    assert_int_equal(writer_open(&e->loop, path, 1, &w), -ENOENT);
    assert_ptr_equal(w, (writer *)&path);
}

static void test_open_a_directory_fails(void **state)
{
    struct env *e = *state;
    writer *w = NULL;
    assert_int_equal(writer_open(&e->loop, e->dir, 0, &w), -EISDIR);
    assert_null(w);
}

static void test_submit_after_close_is_refused(void **state)
{
    struct env *e = *state;
    struct producer p = {.blocks = {"x\n"}};
    assert_int_equal(writer_open(&e->loop, e->path, 0, &p.w), 0);
    start_producer(e, &p);
    run(e);
    assert_int_equal(p.close_rc, 0);
    assert_int_equal(writer_submit(p.w, "late\n", 5), -EPIPE);
    writer_destroy(p.w);
    assert_file_is(e->path, "x\n", 2);
}

/* ---- size and backlog ---- */

static void test_large_block_arrives_whole(void **state)
{
    struct env *e = *state;
    size_t len = (size_t)8 << 20;
    char *big = malloc(len);
    assert_non_null(big);
    uint32_t x = 2463534242u; /* xorshift: no repeating period a lost chunk could hide in */
    for (size_t i = 0; i < len; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        big[i] = (char)x;
    }
    struct producer p = {.big = big, .big_len = len};
    assert_int_equal(writer_open(&e->loop, e->path, 0, &p.w), 0);
    start_producer(e, &p);
    run(e);
    assert_int_equal(p.submit_rc[0], 0);
    assert_int_equal(p.close_rc, 0);
    assert_int_equal(p.backlog_after_submit, len); /* handed over, nothing written yet */
    assert_int_equal(writer_backlog(p.w), 0);
    writer_destroy(p.w);
    assert_file_is(e->path, big, len);
    free(big);
}

static void test_backlog_counts_queued_bytes_and_drains(void **state)
{
    struct env *e = *state;
    struct producer p = {.blocks = {"0123456789", "01234567890123456789", "abc"}};
    assert_int_equal(writer_open(&e->loop, e->path, 0, &p.w), 0);
    assert_int_equal(writer_backlog(p.w), 0);
    start_producer(e, &p);
    run(e);
    assert_int_equal(p.backlog_after_submit, 33);
    assert_int_equal(writer_backlog(p.w), 0);
    writer_destroy(p.w);
}

/* Backlog drains between batches too, not only at close. */
struct drainer {
    task t;
    writer *w;
    int round;
    size_t seen[4];
    int close_rc;
};

static enum task_step drainer_step(task *t)
{
    struct drainer *d = (struct drainer *)t;
    switch (t->state) {
    case 0:
        if (d->round < 4) {
            d->seen[d->round++] = writer_backlog(d->w);
            assert_int_equal(writer_submit(d->w, "line\n", 5), 0);
            return task_sleep(t, 20); /* plenty for 5 bytes to reach a local file */
        }
        d->seen[3] = writer_backlog(d->w);
        t->state = 1;
        return writer_close(d->w, t);
    case 1:
        d->close_rc = task_wait_rc(t);
        return task_finish(t, 0);
    }
    return task_finish(t, -EINVAL);
}

static void test_backlog_drains_between_writes(void **state)
{
    struct env *e = *state;
    struct drainer d = {0};
    assert_int_equal(writer_open(&e->loop, e->path, 0, &d.w), 0);
    task_init(&d.t, drainer_step, NULL);
    task_spawn(&e->sched, &d.t, NULL);
    run(e);
    for (int i = 0; i < 4; i++)
        assert_int_equal(d.seen[i], 0);
    assert_int_equal(d.close_rc, 0);
    writer_destroy(d.w);
    assert_file_is(e->path, "line\nline\nline\nline\n", 20);
}

/* Cancelling the task that waits in writer_close stops the wait, not the writing. */
static void test_cancelled_close_still_writes(void **state)
{
    struct env *e = *state;
    struct producer p = {.blocks = {"kept 1\n", "kept 2\n"}};
    assert_int_equal(writer_open(&e->loop, e->path, 0, &p.w), 0);
    start_producer(e, &p);
    uv_run(&e->loop, UV_RUN_NOWAIT); /* it submits and suspends in writer_close */
    assert_false(p.closed);
    task_cancel(&p.t, -ECANCELED);
    run(e);
    assert_true(p.closed);
    assert_int_equal(p.close_rc, -ECANCELED);
    assert_int_equal(writer_error(p.w), 0);
    writer_destroy(p.w);
    assert_file_is(e->path, "kept 1\nkept 2\n", 14);
}

/* ---- blocks handed over while a write is in flight (issue 15: no copy on the loop) ---- */

/* Line `i` of the many-blocks cases: lengths from 1 to 300 bytes, so that blocks of a few
 * lines fall either side of the 4 KiB below which a taken block is copied. */
static void put_line(struct buf *b, size_t i)
{
    char line[320];
    size_t len = 1 + (i * 7919) % 300;
    for (size_t k = 0; k + 1 < len; k++)
        line[k] = (char)('a' + (i + k) % 26);
    line[len - 1] = '\n';
    assert_int_equal(buf_append(b, line, len), 0);
}

/* 3,000 blocks taken in one turn behind an 8 MiB write: more blocks than one write of
 * several buffers takes (1024), small ones that join the block before them and large ones
 * that stay apart, all reaching the file in order, each counted once. */
static void test_many_taken_blocks_behind_a_write(void **state)
{
    struct env *e = *state;
    size_t big_len = (size_t)8 << 20, nblocks = 3000, line = 0;
    char *big = malloc(big_len);
    assert_non_null(big);
    memset(big, 'x', big_len);
    big[big_len - 1] = '\n';
    struct buf want;
    buf_init(&want);
    assert_int_equal(buf_append(&want, big, big_len), 0);

    struct producer p = {.blocks = {NULL}};
    assert_int_equal(writer_open(&e->loop, e->path, 0, &p.w), 0);
    assert_int_equal(writer_submit(p.w, big, big_len), 0); /* in flight from here on */
    size_t counted = 0;
    for (size_t i = 0; i < nblocks; i++) {
        struct buf b;
        buf_init(&b);
        size_t lines = i % 5 == 0 ? 40 : 1 + i % 4; /* 40 lines: about 6 KB */
        for (size_t k = 0; k < lines; k++)
            put_line(&b, line++);
        assert_int_equal(buf_append(&want, b.data, b.len), 0);
        assert_int_equal(writer_submit_buf(p.w, &b, lines), 0);
        assert_null(b.data); /* taken, or copied and freed */
        counted += lines;
    }
    assert_int_equal(writer_backlog(p.w), want.len);
    assert_int_equal(writer_offset_submitted(p.w), want.len);
    start_producer(e, &p);
    run(e);
    assert_int_equal(p.close_rc, 0);
    assert_int_equal(writer_backlog(p.w), 0);
    assert_int_equal(writer_count_written(p.w), counted);
    assert_int_equal(writer_offset_whole(p.w), want.len);
    writer_destroy(p.w);
    assert_file_is(e->path, want.data, want.len);
    buf_finish(&want);
    free(big);
}

/* A pipe takes whole lines of up to PIPE_BUF bytes at a time, also when a piece gathers
 * lines from the end of one block and the start of the next: with a reader that never
 * reads, what reached the pipe before the writer was abandoned is a prefix of the blocks
 * that ends with a whole line. Block sizes vary by `variant`, which moves where the pipe
 * fills: after a piece from inside a block, or after one that ran across blocks. */
static void abandon_on_a_full_pipe(struct env *e, size_t variant)
{
    char fifo[160];
    snprintf(fifo, sizeof fifo, "%s/fifo", e->dir);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    int rfd = open(fifo, O_RDONLY | O_NONBLOCK); /* so that opening for writing does not wait */
    assert_true(rfd >= 0);

    /* Full to begin with, so that the blocks queue up behind the first write. */
    int fill = open(fifo, O_WRONLY | O_NONBLOCK);
    assert_true(fill >= 0);
    char zs[4096];
    memset(zs, 'Z', sizeof zs);
    size_t filled = 0;
    ssize_t n;
    while ((n = write(fill, zs, sizeof zs)) > 0)
        filled += (size_t)n;
    close(fill);

    struct producer p = {.blocks = {NULL}};
    assert_int_equal(writer_open(&e->loop, fifo, 0, &p.w), 0);
    struct buf want;
    buf_init(&want);
    for (size_t i = 0, line = variant; want.len < ((size_t)256 << 10); i++) {
        struct buf b;
        buf_init(&b);
        /* taken whole (4 KiB or more): lines run across blocks */
        while (b.len < 4096 + (i + variant) % 3 * 1000 + variant * 97)
            put_line(&b, line++);
        assert_int_equal(buf_append(&want, b.data, b.len), 0);
        assert_int_equal(writer_submit_buf(p.w, &b, 0), 0);
    }
    char chunk[65536];
    size_t room = filled * 5 / 8; /* some 10 pages of the pipe's 16 */
    assert_int_equal(read(rfd, chunk, room), (ssize_t)room);
    for (int turn = 0; turn < 4; turn++)
        uv_run(&e->loop, UV_RUN_NOWAIT); /* the pipe fills again and refuses the rest */
    writer_abandon(p.w);
    start_producer(e, &p);
    run(e);
    assert_true(p.closed);
    assert_int_equal(writer_backlog(p.w), 0);
    writer_destroy(p.w);

    struct buf got;
    buf_init(&got);
    while ((n = read(rfd, chunk, sizeof chunk)) > 0)
        assert_int_equal(buf_append(&got, chunk, (size_t)n), 0);
    close(rfd);
    unlink(fifo);
    assert_true(got.len > filled - room);
    assert_int_equal(got.data[filled - room - 1], 'Z');
    buf_consume(&got, filled - room);
    assert_true(got.len > 0);
    assert_true(got.len < want.len);
    assert_memory_equal(got.data, want.data, got.len);
    assert_int_equal(got.data[got.len - 1], '\n');
    buf_finish(&got);
    buf_finish(&want);
}

static void test_pipe_gets_whole_lines_across_blocks(void **state)
{
    for (size_t variant = 0; variant < 16; variant++)
        abandon_on_a_full_pipe(*state, variant);
}

/* The same blocks through a pipe that is read: all of them arrive, in order. */
struct pipe_reader {
    uv_thread_t thread;
    int fd;
    struct buf got;
};

static void read_all(void *arg)
{
    struct pipe_reader *r = arg;
    char chunk[4096];
    ssize_t n;
    while ((n = read(r->fd, chunk, sizeof chunk)) != 0) {
        if (n < 0) {
            if (errno == EAGAIN) {
                usleep(1000);
                continue;
            }
            break;
        }
        if (buf_append(&r->got, chunk, (size_t)n) != 0)
            break;
    }
}

static void test_pipe_gets_every_block_in_order(void **state)
{
    struct env *e = *state;
    char fifo[160];
    snprintf(fifo, sizeof fifo, "%s/fifo", e->dir);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    struct pipe_reader r = {.fd = open(fifo, O_RDONLY | O_NONBLOCK)};
    assert_true(r.fd >= 0);
    buf_init(&r.got);

    struct producer p = {.blocks = {NULL}};
    assert_int_equal(writer_open(&e->loop, fifo, 0, &p.w), 0);
    assert_int_equal(uv_thread_create(&r.thread, read_all, &r), 0);
    struct buf want;
    buf_init(&want);
    for (size_t i = 0, line = 0; want.len < ((size_t)1 << 20); i++) {
        struct buf b;
        buf_init(&b);
        while (b.len < (i % 2 == 0 ? 100 : 4096 + i % 5 * 1000)) /* copied, or taken */
            put_line(&b, line++);
        assert_int_equal(buf_append(&want, b.data, b.len), 0);
        assert_int_equal(writer_submit_buf(p.w, &b, 1), 0);
    }
    start_producer(e, &p);
    run(e);
    assert_int_equal(p.close_rc, 0);
    writer_destroy(p.w);
    assert_int_equal(uv_thread_join(&r.thread), 0);
    close(r.fd);
    unlink(fifo);
    assert_int_equal(r.got.len, want.len);
    assert_memory_equal(r.got.data, want.data, want.len);
    buf_finish(&r.got);
    buf_finish(&want);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_blocks_arrive_concatenated_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_start_writes_header_or_repairs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_counts_what_was_written_whole, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_truncates_existing_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_truncates_even_with_nothing_written, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncation_waits_for_the_loop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncation_without_the_loop_and_abandoned, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_append_keeps_old_content, setup, teardown),
        cmocka_unit_test_setup_teardown(test_append_creates_missing_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_disk_is_reported_once_and_sticks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_in_missing_directory, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_a_directory_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_submit_after_close_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_large_block_arrives_whole, setup, teardown),
        cmocka_unit_test_setup_teardown(test_backlog_counts_queued_bytes_and_drains, setup, teardown),
        cmocka_unit_test_setup_teardown(test_backlog_drains_between_writes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancelled_close_still_writes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_taken_blocks_behind_a_write, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pipe_gets_whole_lines_across_blocks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pipe_gets_every_block_in_order, setup, teardown),
    };
    return cmocka_run_group_tests_name("writer", tests, NULL, NULL);
}
