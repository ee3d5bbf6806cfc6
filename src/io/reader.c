#include "reader.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CHUNK (64 * 1024)

struct reader {
    uv_loop_t *loop;
    const char *name;
    input_lines lines;
    int eof;
    int error;

    int use_stream;
    int read_here; /* a regular file: read on the loop, at once (see reader_next) */
    uv_file fd;
    int owns_fd;
    uv_fs_t req;
    int req_busy;
    union {
        uv_handle_t handle;
        uv_stream_t stream;
        uv_pipe_t pipe;
        uv_tty_t tty;
    } in;
    int stream_open;

    task *waiter;
    struct input_line *out;
    int closing;
    char chunk[CHUNK];
};

static void maybe_free(reader *r)
{
    if (!r->closing || r->req_busy || r->stream_open)
        return;
    if (r->owns_fd)
        close(r->fd);
    input_lines_finish(&r->lines);
    free(r);
}

/* With the waiter suspended and new bytes (or the end) in: answer it if a line is now at
 * hand, else ask for more. */
static void serve_waiter(reader *r);

static void ask_for_more(reader *r);
static void on_stream_closed(uv_handle_t *h);

static void on_fs_read(uv_fs_t *req)
{
    reader *r = req->data;
    ssize_t n = req->result;
    uv_fs_req_cleanup(req);
    r->req_busy = 0;
    if (r->closing) {
        maybe_free(r);
        return;
    }
    if (n < 0)
        r->error = (int)n;
    else if (n == 0)
        r->eof = 1;
    else if (input_lines_feed(&r->lines, r->chunk, (size_t)n) != 0)
        r->error = -ENOMEM;
    serve_waiter(r);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    (void)suggested;
    reader *r = h->data;
    *b = uv_buf_init(r->chunk, sizeof r->chunk);
}

static void on_stream_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    (void)b;
    reader *r = s->data;
    if (n == 0)
        return; /* EAGAIN */
    uv_read_stop(s);
    if (n == UV_EOF)
        r->eof = 1;
    else if (n < 0)
        r->error = (int)n;
    else if (input_lines_feed(&r->lines, r->chunk, (size_t)n) != 0)
        r->error = -ENOMEM;
    serve_waiter(r);
}

static void ask_for_more(reader *r)
{
    if (r->use_stream) {
        int rc = uv_read_start(&r->in.stream, on_alloc, on_stream_read);
        if (rc != 0 && rc != UV_EALREADY) {
            r->error = rc;
            serve_waiter(r);
        }
        return;
    }
    if (r->req_busy)
        return;
    uv_buf_t b = uv_buf_init(r->chunk, sizeof r->chunk);
    r->req.data = r;
    int rc = uv_fs_read(r->loop, &r->req, r->fd, &b, 1, -1, on_fs_read);
    if (rc != 0) {
        r->error = rc;
        serve_waiter(r);
        return;
    }
    r->req_busy = 1;
}

/* Tries to answer from what is buffered. 1 when *out (or the end, or an error) is the
 * answer, with the outcome in *rc; 0 when more bytes are needed. */
static int answer(reader *r, struct input_line *out, int *rc)
{
    if (r->error != 0) {
        *rc = r->error;
        return 1;
    }
    if (input_lines_next(&r->lines, out, r->eof)) {
        *rc = 1;
        return 1;
    }
    if (r->eof) {
        *rc = 0;
        return 1;
    }
    return 0;
}

static void serve_waiter(reader *r)
{
    if (r->waiter == NULL)
        return;
    int rc;
    if (!answer(r, r->out, &rc)) {
        ask_for_more(r);
        return;
    }
    task *t = r->waiter;
    r->waiter = NULL;
    task_wake(t, rc);
}

static void reader_unwait(task *t)
{
    reader *r = t->wait_on;
    r->waiter = NULL;
    if (r->use_stream && r->stream_open)
        uv_read_stop(&r->in.stream);
    /* A file read in flight cannot be called back; its bytes are kept for later. */
}

/* One chunk of a regular file, read at once. */
static void read_chunk_here(reader *r)
{
    ssize_t n;
    do
        n = read(r->fd, r->chunk, sizeof r->chunk);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        r->error = -errno;
    else if (n == 0)
        r->eof = 1;
    else if (input_lines_feed(&r->lines, r->chunk, (size_t)n) != 0)
        r->error = -ENOMEM;
}

enum task_wait reader_next(reader *r, task *t, struct input_line *line)
{
    int rc;
    /* A regular file is read here rather than on libuv's pool. A read of it waits for the
     * disk at worst, never for a writer; on the pool, which has one thread on two cores,
     * it waited behind whatever came first: the truncation of a replaced output (7 ms
     * before the first request of a re-run of scenario A, perf trace, while the loop sat
     * idle) and, later in a run, every page queued for scanning. Each pass either finds
     * a line or reads on (or ends, or fails), so the loop ends. */
    int ready;
    while (!(ready = answer(r, line, &rc)) && r->read_here)
        read_chunk_here(r);
    if (ready) {
        t->wait_rc = rc;
        return TASK_READY;
    }
    r->waiter = t;
    r->out = line;
    t->wait_on = r;
    task_suspend(t, reader_unwait);
    ask_for_more(r);
    return TASK_SUSPENDED;
}

int reader_open_list(const char *path)
{
    if (strcmp(path, "-") == 0)
        return STDIN_FILENO;
    /* O_NONBLOCK: opening a FIFO for reading would otherwise wait, outside the loop and
     * deaf to signals, for its writer. The stream read later waits on the loop instead. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return -errno;
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
        close(fd);
        return -EISDIR;
    }
    return fd;
}

int reader_open(uv_loop_t *loop, int fd, const char *name, reader **out)
{
    reader *r = calloc(1, sizeof *r);
    if (r == NULL) {
        if (fd > STDERR_FILENO)
            close(fd);
        return -ENOMEM;
    }
    r->loop = loop;
    r->name = name;
    r->fd = fd;
    input_lines_init(&r->lines, INPUT_MAX_LINE);
    int rc = 0;
    struct stat st;
    int known = fstat(fd, &st) == 0;
    if (known && S_ISDIR(st.st_mode)) {
        rc = -EISDIR;
        goto fail;
    }
    /* A pipe, FIFO, socket or terminal may stay idle for as long as its writer likes: read
     * from the pool, it would hold the pool's only thread and starve the scanning and the
     * writing of pages already fetched. Read it as a stream, on the loop. */
    uv_handle_type type = uv_guess_handle(fd);
    r->in.handle.data = r;
    if (type == UV_NAMED_PIPE || type == UV_TCP || type == UV_UDP) {
        if (uv_pipe_init(loop, &r->in.pipe, 0) == 0) {
            if (uv_pipe_open(&r->in.pipe, fd) == 0) {
                r->use_stream = 1;
            } else {
                /* Read from the pool after all; the reader lives until the handle closed. */
                r->stream_open = 1;
                uv_close(&r->in.handle, on_stream_closed);
            }
        }
    } else if (type == UV_TTY) {
        r->use_stream = uv_tty_init(loop, &r->in.tty, fd, 1) == 0;
    }
    if (r->use_stream)
        r->stream_open = 1; /* closing the handle closes fd (libuv leaves 0 to 2 alone) */
    else
        r->owns_fd = fd > STDERR_FILENO;
    r->read_here = !r->use_stream && known && S_ISREG(st.st_mode);
    *out = r;
    return 0;
fail:
    if (fd > STDERR_FILENO)
        close(fd);
    input_lines_finish(&r->lines);
    free(r);
    return rc;
}

const char *reader_name(const reader *r)
{
    return r->name;
}

static void on_stream_closed(uv_handle_t *h)
{
    reader *r = h->data;
    r->stream_open = 0;
    maybe_free(r);
}

void reader_close(reader *r)
{
    if (r == NULL)
        return;
    r->closing = 1;
    r->waiter = NULL;
    if (r->stream_open && r->use_stream) {
        uv_read_stop(&r->in.stream);
        uv_close(&r->in.handle, on_stream_closed);
        return;
    }
    maybe_free(r); /* or its close callback, for a handle given up on at open */
}
