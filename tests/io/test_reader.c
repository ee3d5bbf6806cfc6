/* Tests of the URL list reader: files and standard input (a pipe, or a file) read through
 * reader_next() inside a task. Each case runs on a fresh loop with a scheduler and ends by
 * checking that uv_loop_close() returns 0: the reader left no handle or request behind.
 * Lines are collected as "lineno:text" or "lineno:!error", one per line, so a whole run
 * compares as one string. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "buf.h"
#include "reader.h"
#include "task.h"
#include "test_loop.h"

/* Opens a list the way the run does: once, then hands the descriptor to the reader. */
static int open_path(uv_loop_t *loop, const char *path, reader **out)
{
    int fd = reader_open_list(path);
    if (fd < 0)
        return fd;
    return reader_open(loop, fd, strcmp(path, "-") == 0 ? "<stdin>" : path, out);
}

struct env {
    uv_loop_t loop;
    task_sched sched;
    char dir[64];
    char path[128];
    int saved_stdin; /* -1 unless a case put something else on fd 0 */
};

static int setup(void **state)
{
    struct env *e = calloc(1, sizeof *e);
    assert_non_null(e);
    test_loop_open(&e->loop, &e->sched);
    strcpy(e->dir, "/tmp/areq-test-reader-XXXXXX");
    assert_non_null(mkdtemp(e->dir));
    snprintf(e->path, sizeof e->path, "%s/urls.txt", e->dir);
    e->saved_stdin = -1;
    *state = e;
    return 0;
}

/* Puts the real standard input back, even when a case failed half-way. */
static void restore_stdin(struct env *e)
{
    if (e->saved_stdin < 0)
        return;
    assert_int_equal(dup2(e->saved_stdin, STDIN_FILENO), STDIN_FILENO);
    close(e->saved_stdin);
    e->saved_stdin = -1;
}

static int teardown(void **state)
{
    struct env *e = *state;
    task_sched_close(&e->sched);
    test_loop_drain_and_close(&e->loop);
    restore_stdin(e);
    unlink(e->path);
    assert_int_equal(rmdir(e->dir), 0);
    free(e);
    return 0;
}

static void run(struct env *e)
{
    uv_run(&e->loop, UV_RUN_DEFAULT);
}

static void write_file(const char *path, const char *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static void write_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, data, len);
        assert_true(n > 0);
        data += n;
        len -= (size_t)n;
    }
}

/* Puts `fd` on standard input, keeping the real one for restore_stdin(). */
static void replace_stdin(struct env *e, int fd)
{
    assert_true(e->saved_stdin < 0);
    e->saved_stdin = dup(STDIN_FILENO);
    assert_true(e->saved_stdin >= 0);
    assert_int_equal(dup2(fd, STDIN_FILENO), STDIN_FILENO);
    close(fd);
}

/* ---- a task that reads every line ---- */

struct consumer {
    task t;
    reader *r;
    struct input_line line;
    struct buf got;   /* "lineno:text\n" or "lineno:!error\n" per line */
    size_t nlines;
    int pending;      /* times reader_next suspended */
    int end_rc;       /* the last task_wait_rc(): 0 end, negative error or cancellation */
    int ended;
};

static void keep(struct consumer *c)
{
    const struct input_line *l = &c->line;
    char num[32];
    snprintf(num, sizeof num, "%lu:", l->lineno);
    assert_int_equal(buf_append_str(&c->got, num), 0);
    if (l->error != NULL) {
        assert_null(l->text);
        assert_int_equal(buf_putc(&c->got, '!'), 0);
        assert_int_equal(buf_append_str(&c->got, l->error), 0);
    } else {
        assert_non_null(l->text);
        assert_int_equal(buf_append(&c->got, l->text, l->len), 0);
    }
    assert_int_equal(buf_putc(&c->got, '\n'), 0);
    c->nlines++;
}

static enum task_step consumer_step(task *t)
{
    struct consumer *c = (struct consumer *)t;
    for (;;) {
        if (t->state == 1) {
            t->state = 0;
            int rc = task_wait_rc(t);
            if (rc == 1)
                keep(c); /* handed out: it counts even if a cancel came with it */
            if (rc != 1 || task_cancelled(t)) {
                c->end_rc = rc == 1 ? task_cancelled(t) : rc;
                c->ended = 1;
                return task_finish(t, c->end_rc);
            }
        }
        t->state = 1;
        if (reader_next(c->r, t, &c->line) == TASK_SUSPENDED) {
            c->pending++;
            return TASK_PENDING;
        }
    }
}

static void consumer_start(struct env *e, struct consumer *c, reader *r)
{
    c->r = r;
    buf_init(&c->got);
    task_init(&c->t, consumer_step, NULL);
    task_spawn(&e->sched, &c->t, NULL);
}

/* Reads `r` to the end and closes it; the text of every line is left in *got. */
static int read_all(struct env *e, reader *r, struct buf *got)
{
    struct consumer c = {0};
    consumer_start(e, &c, r);
    run(e);
    assert_true(c.ended);
    assert_true(task_is_done(&c.t));
    reader_close(r);
    run(e); /* lets libuv finish with the reader so that it is freed */
    *got = c.got;
    return c.end_rc;
}

/* ---- files, as rows of bytes and the lines expected ---- */

#define IN(s) s, sizeof(s) - 1

struct row {
    const char *name;
    const char *in;
    size_t len;
    const char *want; /* the lines as collected */
};

static const struct row rows[] = {
    {"empty file", IN(""), ""},
    {"one line", IN("http://a/\n"), "1:http://a/\n"},
    {"several lines", IN("http://a/\nhttp://b/x?y=1\nhttps://c/\n"),
     "1:http://a/\n2:http://b/x?y=1\n3:https://c/\n"},
    {"no trailing newline", IN("http://a/\nhttp://b/"), "1:http://a/\n2:http://b/\n"},
    {"only a line without newline", IN("http://a/"), "1:http://a/\n"},
    {"CRLF and trimming", IN("  http://a/ \r\n\thttp://b/\r\n"), "1:http://a/\n2:http://b/\n"},
    {"comments and blanks skipped, numbers kept", IN("# list\n\n   \nhttp://a/\n  # x\n\nhttp://b/\n"),
     "4:http://a/\n7:http://b/\n"},
    {"only comments and blanks", IN("# a\n\n  # b\n\n"), ""},
    {"bad lines", IN("http://a/\nbad\0line\nhttp://b/\n\xff\xfe\nhttp://c/"),
     "1:http://a/\n2:!NUL byte in line\n3:http://b/\n4:!invalid UTF-8\n5:http://c/\n"},
    {"BOM", IN("\xEF\xBB\xBFhttp://a/\n"), "1:http://a/\n"},
};

static void test_files(void **state)
{
    struct env *e = *state;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        print_message("  row: %s\n", rows[i].name);
        write_file(e->path, rows[i].in, rows[i].len);
        reader *r = NULL;
        assert_int_equal(open_path(&e->loop, e->path, &r), 0);
        assert_non_null(r);
        struct buf got;
        assert_int_equal(read_all(e, r, &got), 0);
        assert_int_equal(buf_reserve(&got, 0), 0);
        assert_string_equal(got.data, rows[i].want);
        buf_finish(&got);
    }
}

static void test_empty_file_ends_at_once(void **state)
{
    struct env *e = *state;
    write_file(e->path, "", 0);
    reader *r;
    assert_int_equal(open_path(&e->loop, e->path, &r), 0);
    struct consumer c = {0};
    consumer_start(e, &c, r);
    run(e);
    assert_true(c.ended);
    assert_int_equal(c.end_rc, 0);
    assert_int_equal(c.nlines, 0);
    assert_true(c.pending <= 1); /* one read finds the end */
    reader_close(r);
    run(e);
    buf_finish(&c.got);
}

/* Well past the 64 KiB chunk, so that lines straddle chunk boundaries. */
static void test_large_file_read_in_order(void **state)
{
    struct env *e = *state;
    enum { N = 20000 };
    struct buf in, want;
    buf_init(&in);
    buf_init(&want);
    for (int i = 1; i <= N; i++) {
        char line[96];
        int n = snprintf(line, sizeof line, "http://example.com/page/%d?q=%d\n", i, i * 7);
        assert_int_equal(buf_append(&in, line, (size_t)n), 0);
        n = snprintf(line, sizeof line, "%d:http://example.com/page/%d?q=%d\n", i, i, i * 7);
        assert_int_equal(buf_append(&want, line, (size_t)n), 0);
    }
    assert_true(in.len > 8 * 64 * 1024);
    write_file(e->path, in.data, in.len);

    reader *r;
    assert_int_equal(open_path(&e->loop, e->path, &r), 0);
    struct consumer c = {0};
    consumer_start(e, &c, r);
    run(e);
    assert_int_equal(c.end_rc, 0);
    assert_int_equal(c.nlines, N);
    assert_int_equal(c.got.len, want.len);
    assert_memory_equal(c.got.data, want.data, want.len);
    assert_int_equal(c.pending, 0); /* a regular file is read at once, on the loop */
    reader_close(r);
    run(e);
    buf_finish(&c.got);
    buf_finish(&in);
    buf_finish(&want);
}

static void test_over_long_line_across_chunks(void **state)
{
    struct env *e = *state;
    struct buf in;
    buf_init(&in);
    assert_int_equal(buf_append_str(&in, "http://a/\n"), 0);
    for (int i = 0; i < 200000; i++)
        assert_int_equal(buf_putc(&in, 'x'), 0);
    assert_int_equal(buf_append_str(&in, "\nhttp://b/\n"), 0);
    write_file(e->path, in.data, in.len);
    buf_finish(&in);

    reader *r;
    assert_int_equal(open_path(&e->loop, e->path, &r), 0);
    struct buf got;
    assert_int_equal(read_all(e, r, &got), 0);
    assert_string_equal(got.data, "1:http://a/\n2:!line longer than 64 KiB\n3:http://b/\n");
    buf_finish(&got);
}

/* ---- opening ---- */

static void test_open_missing_file(void **state)
{
    struct env *e = *state;
    char path[192];
    snprintf(path, sizeof path, "%s/no-such-file.txt", e->dir);
    reader *r = NULL;
    assert_int_equal(open_path(&e->loop, path, &r), -ENOENT);
    assert_null(r);
    snprintf(path, sizeof path, "%s/no/such/dir/urls.txt", e->dir);
    assert_int_equal(open_path(&e->loop, path, &r), -ENOENT);
    assert_null(r);
}

static void test_open_directory(void **state)
{
    struct env *e = *state;
    reader *r = NULL;
    assert_int_equal(open_path(&e->loop, e->dir, &r), -EISDIR);
    assert_null(r);
}

static void test_name_is_path(void **state)
{
    struct env *e = *state;
    write_file(e->path, "x\n", 2);
    reader *r;
    assert_int_equal(open_path(&e->loop, e->path, &r), 0);
    assert_string_equal(reader_name(r), e->path);
    reader_close(r); /* closed without ever being read */
    run(e);
}

static void test_close_null(void **state)
{
    (void)state;
    reader_close(NULL);
}

/* ---- standard input ---- */

static void test_stdin_pipe(void **state)
{
    struct env *e = *state;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    replace_stdin(e, fds[0]);
    const char text[] = "http://a/\n# comment\n\nhttp://b/\r\n  http://c/  \nhttp://d/";
    write_all(fds[1], text, sizeof text - 1);
    close(fds[1]);

    reader *r;
    assert_int_equal(open_path(&e->loop, "-", &r), 0);
    assert_string_equal(reader_name(r), "<stdin>");
    struct buf got;
    assert_int_equal(read_all(e, r, &got), 0);
    assert_string_equal(got.data, "1:http://a/\n4:http://b/\n5:http://c/\n6:http://d/\n");
    buf_finish(&got);
    restore_stdin(e);
}

/* A writer that drips a long list into the pipe from another thread, in bursts that split
 * lines, so that the stream is read across many partial reads and more than one chunk. */
struct dripper {
    int fd;
    const char *data;
    size_t len;
};

static void drip(void *arg)
{
    struct dripper *d = arg;
    size_t off = 0, step = 1;
    while (off < d->len) {
        size_t n = d->len - off < step ? d->len - off : step;
        write_all(d->fd, d->data + off, n);
        off += n;
        step = step * 3 + 1; /* 1, 4, 13, ... bytes: odd cuts, growing to whole chunks */
        if (step > 100000)
            step = 7;
        if (off < 2000)
            uv_sleep(1);
    }
    close(d->fd);
}

static void test_stdin_pipe_dripped(void **state)
{
    struct env *e = *state;
    enum { N = 12000 };
    struct buf in, want;
    buf_init(&in);
    buf_init(&want);
    for (int i = 1; i <= N; i++) {
        char line[64];
        int n = snprintf(line, sizeof line, "http://h%d.example/\n", i);
        assert_int_equal(buf_append(&in, line, (size_t)n), 0);
        n = snprintf(line, sizeof line, "%d:http://h%d.example/\n", i, i);
        assert_int_equal(buf_append(&want, line, (size_t)n), 0);
    }
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    replace_stdin(e, fds[0]);
    reader *r;
    assert_int_equal(open_path(&e->loop, "-", &r), 0);

    struct dripper d = {.fd = fds[1], .data = in.data, .len = in.len};
    uv_thread_t th;
    assert_int_equal(uv_thread_create(&th, drip, &d), 0);
    struct buf got;
    int rc = read_all(e, r, &got);
    assert_int_equal(uv_thread_join(&th), 0);
    assert_int_equal(rc, 0);
    assert_int_equal(got.len, want.len);
    assert_memory_equal(got.data, want.data, want.len);
    buf_finish(&got);
    buf_finish(&in);
    buf_finish(&want);
    restore_stdin(e);
}

/* A regular file on standard input is read like any file. */
static void test_stdin_file(void **state)
{
    struct env *e = *state;
    write_file(e->path, IN("http://a/\n\nhttp://b/\n"));
    int fd = open(e->path, O_RDONLY);
    assert_true(fd >= 0);
    replace_stdin(e, fd);
    reader *r;
    assert_int_equal(open_path(&e->loop, "-", &r), 0);
    assert_string_equal(reader_name(r), "<stdin>");
    struct buf got;
    assert_int_equal(read_all(e, r, &got), 0);
    assert_string_equal(got.data, "1:http://a/\n3:http://b/\n");
    buf_finish(&got);
    restore_stdin(e);
}

/* ---- cancellation: an idle standard input must not hold a run ---- */

struct cancel_ctx {
    uv_timer_t cancel_timer; /* cancels the reading task */
    uv_timer_t guard_timer;  /* ends the input if the cancel did not take: fail, not hang */
    task *target;
    int write_fd;
    int guard_fired;
    uint64_t cancelled_at;
};

static void on_cancel_timer(uv_timer_t *h)
{
    struct cancel_ctx *x = h->data;
    x->cancelled_at = uv_now(h->loop);
    task_cancel(x->target, -ECANCELED);
    uv_close((uv_handle_t *)h, NULL);
}

static void on_guard_timer(uv_timer_t *h)
{
    struct cancel_ctx *x = h->data;
    x->guard_fired = 1;
    close(x->write_fd);
    x->write_fd = -1;
}

static void test_cancel_while_stdin_is_idle(void **state)
{
    struct env *e = *state;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    replace_stdin(e, fds[0]);
    reader *r;
    assert_int_equal(open_path(&e->loop, "-", &r), 0);

    struct consumer c = {0};
    consumer_start(e, &c, r);
    struct cancel_ctx x = {.target = &c.t, .write_fd = fds[1]};
    assert_int_equal(uv_timer_init(&e->loop, &x.cancel_timer), 0);
    assert_int_equal(uv_timer_init(&e->loop, &x.guard_timer), 0);
    x.cancel_timer.data = x.guard_timer.data = &x;
    uint64_t start = uv_now(&e->loop);
    assert_int_equal(uv_timer_start(&x.cancel_timer, on_cancel_timer, 20, 0), 0);
    assert_int_equal(uv_timer_start(&x.guard_timer, on_guard_timer, 3000, 0), 0);
    uv_unref((uv_handle_t *)&x.guard_timer); /* only the reader may keep the loop alive */

    run(e); /* returns only once nothing is left waiting on standard input */
    assert_false(x.guard_fired);
    assert_true(c.ended);
    assert_int_equal(c.pending, 1);
    assert_int_equal(c.nlines, 0);
    assert_int_equal(c.end_rc, -ECANCELED);
    assert_int_equal(c.t.result, -ECANCELED);
    assert_true(x.cancelled_at - start >= 20);

    uv_close((uv_handle_t *)&x.guard_timer, NULL);
    reader_close(r);
    run(e);
    if (x.write_fd >= 0)
        close(x.write_fd);
    buf_finish(&c.got);
    restore_stdin(e);
}

/* After a cancelled wait the reader is still usable: a second task reads on, and between
 * them they see every line once, in order. */
struct canceller {
    task t;
    task *target;
};

static enum task_step canceller_step(task *t)
{
    struct canceller *k = (struct canceller *)t;
    task_cancel(k->target, -ECANCELED);
    return task_finish(t, 0);
}

static void test_cancelled_stream_wait_loses_nothing(void **state)
{
    struct env *e = *state;
    /* All of it fits in a pipe's buffer (64 KiB on Linux): written before the reading. */
    enum { N = 3000 };
    struct buf in, want;
    buf_init(&in);
    buf_init(&want);
    for (int i = 1; i <= N; i++) {
        char line[64];
        int n = snprintf(line, sizeof line, "http://x/%d\n", i);
        assert_int_equal(buf_append(&in, line, (size_t)n), 0);
        n = snprintf(line, sizeof line, "%d:http://x/%d\n", i, i);
        assert_int_equal(buf_append(&want, line, (size_t)n), 0);
    }
    assert_true(in.len < 60000);
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    assert_int_equal(write(fds[1], in.data, in.len), (ssize_t)in.len);
    close(fds[1]);
    replace_stdin(e, fds[0]);
    reader *r;
    assert_int_equal(open_path(&e->loop, "-", &r), 0);

    /* The consumer suspends on the first read; the canceller runs in the same turn. */
    struct consumer a = {0};
    consumer_start(e, &a, r);
    struct canceller k = {.target = &a.t};
    task_init(&k.t, canceller_step, NULL);
    task_spawn(&e->sched, &k.t, NULL);
    run(e);
    assert_true(a.ended);
    assert_int_equal(a.pending, 1);
    assert_int_equal(a.end_rc, -ECANCELED);

    struct consumer b = {0};
    consumer_start(e, &b, r);
    run(e);
    assert_int_equal(b.end_rc, 0);
    assert_int_equal(a.nlines + b.nlines, N);
    assert_int_equal(buf_append(&a.got, b.got.data, b.got.len), 0);
    assert_int_equal(a.got.len, want.len);
    assert_memory_equal(a.got.data, want.data, want.len);
    reader_close(r);
    run(e);
    buf_finish(&a.got);
    buf_finish(&b.got);
    buf_finish(&in);
    buf_finish(&want);
    restore_stdin(e);
}

/* Closing while a read on the pool is still in flight (a device: neither a regular file
 * nor a stream) defers the free to its callback. */
static void test_close_with_read_in_flight(void **state)
{
    struct env *e = *state;
    reader *r;
    assert_int_equal(open_path(&e->loop, "/dev/null", &r), 0);
    struct consumer a = {0};
    consumer_start(e, &a, r);
    struct canceller k = {.target = &a.t};
    task_init(&k.t, canceller_step, NULL);
    task_spawn(&e->sched, &k.t, NULL);
    /* One turn: the consumer asks for a read and is cancelled; the next turn detaches it. */
    while (!a.ended)
        uv_run(&e->loop, UV_RUN_ONCE);
    reader_close(r);
    run(e);
    buf_finish(&a.got);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_file_ends_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_large_file_read_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_over_long_line_across_chunks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_missing_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_directory, setup, teardown),
        cmocka_unit_test_setup_teardown(test_name_is_path, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_null, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stdin_pipe, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stdin_pipe_dripped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stdin_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_while_stdin_is_idle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancelled_stream_wait_loses_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_with_read_in_flight, setup, teardown),
    };
    return cmocka_run_group_tests_name("reader", tests, NULL, NULL);
}
