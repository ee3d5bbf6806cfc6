#include "writer.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"

struct writer {
    uv_loop_t *loop;
    uv_file fd;
    int owns_fd;         /* not for standard output */
    int at_start;        /* the file was empty when opened */
    uv_fs_t req;
    int busy;            /* a request is in flight */
    struct buf pending;  /* submitted, not yet being written */
    struct buf inflight; /* being written */
    size_t written;      /* of inflight */
    int error;
    int closing, closed;
    task *closer;
    writer_error_fn on_error;
    void *on_error_ctx;
};

static void start_next(writer *w);

/* `written` counts into `inflight`, so the two are reset together: writer_backlog()
 * subtracts one from the other. */
static void drop_inflight(writer *w)
{
    buf_clear(&w->inflight);
    w->written = 0;
}

static void fail(writer *w, int err)
{
    if (w->error != 0)
        return;
    w->error = err;
    buf_clear(&w->pending);
    if (w->on_error != NULL)
        w->on_error(w->on_error_ctx, err);
}

static void finish_close(writer *w)
{
    w->closed = 1;
    if (w->closer != NULL) {
        task *t = w->closer;
        w->closer = NULL;
        task_wake(t, w->error);
    }
}

static void on_closed(uv_fs_t *req)
{
    writer *w = req->data;
    if (req->result < 0)
        fail(w, (int)req->result);
    uv_fs_req_cleanup(req);
    w->busy = 0;
    finish_close(w);
}

static void on_written(uv_fs_t *req)
{
    writer *w = req->data;
    ssize_t n = req->result;
    uv_fs_req_cleanup(req);
    w->busy = 0;
    if (n < 0) {
        fail(w, (int)n);
        drop_inflight(w);
    } else {
        w->written += (size_t)n;
        if (w->written >= w->inflight.len)
            drop_inflight(w);
    }
    start_next(w);
}

/* Keeps exactly one request in flight: the rest of a short write, else the next batch,
 * else the close that was asked for. */
static void start_next(writer *w)
{
    if (w->busy)
        return;
    if (w->inflight.len == 0 && w->pending.len > 0 && w->error == 0) {
        struct buf t = w->inflight;
        w->inflight = w->pending;
        w->pending = t;
        w->written = 0;
    }
    if (w->inflight.len > 0 && w->error == 0) {
        uv_buf_t b = uv_buf_init(w->inflight.data + w->written,
                                 (unsigned)(w->inflight.len - w->written));
        w->req.data = w;
        int rc = uv_fs_write(w->loop, &w->req, w->fd, &b, 1, -1, on_written);
        if (rc == 0) {
            w->busy = 1;
            return;
        }
        fail(w, rc);
        drop_inflight(w);
    }
    if (w->closing && !w->closed) {
        if (w->owns_fd) {
            w->req.data = w;
            if (uv_fs_close(w->loop, &w->req, w->fd, on_closed) == 0) {
                w->busy = 1;
                w->owns_fd = 0;
                return;
            }
        }
        finish_close(w);
    }
}

int writer_open(uv_loop_t *loop, const char *path, int append, writer **out)
{
    writer *w = calloc(1, sizeof *w);
    if (w == NULL)
        return -ENOMEM;
    w->loop = loop;
    buf_init(&w->pending);
    buf_init(&w->inflight);
    if (strcmp(path, "-") == 0) {
        w->fd = STDOUT_FILENO;
    } else {
        int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (append ? O_APPEND : O_TRUNC);
        uv_fs_t req;
        /* Synchronous: it runs once, before any transfer, and its error ends the run. */
        int fd = uv_fs_open(NULL, &req, path, flags, 0666, NULL);
        uv_fs_req_cleanup(&req);
        if (fd < 0) {
            free(w);
            return fd;
        }
        w->fd = fd;
        w->owns_fd = 1;
    }
    w->at_start = 1;
    if (append && w->owns_fd) {
        uv_fs_t req;
        if (uv_fs_fstat(NULL, &req, w->fd, NULL) == 0 && req.statbuf.st_size > 0)
            w->at_start = 0;
        uv_fs_req_cleanup(&req);
    }
    *out = w;
    return 0;
}

void writer_on_error(writer *w, writer_error_fn fn, void *ctx)
{
    w->on_error = fn;
    w->on_error_ctx = ctx;
}

int writer_submit(writer *w, const char *data, size_t len)
{
    if (w->error != 0)
        return w->error;
    if (w->closing)
        return -EPIPE;
    int rc = buf_append(&w->pending, data, len);
    if (rc != 0)
        return rc;
    start_next(w);
    return 0;
}

int writer_submit_buf(writer *w, struct buf *b)
{
    int rc = 0;
    if (w->error != 0)
        rc = w->error;
    else if (w->closing)
        rc = -EPIPE;
    else if (w->pending.len == 0) {
        buf_finish(&w->pending);
        w->pending = *b;
        buf_init(b);
        start_next(w);
        return 0;
    } else if ((rc = buf_append(&w->pending, b->data, b->len)) == 0) {
        start_next(w);
    }
    buf_finish(b);
    return rc;
}

static void writer_unwait(task *t)
{
    writer *w = t->wait_on;
    w->closer = NULL;
}

int writer_close(writer *w, task *t)
{
    w->closing = 1;
    w->closer = t;
    t->wait_on = w;
    task_suspend(t, writer_unwait);
    start_next(w);
    return TASK_PENDING;
}

int writer_at_start(const writer *w)
{
    return w->at_start;
}

int writer_error(const writer *w)
{
    return w->error;
}

size_t writer_backlog(const writer *w)
{
    return w->pending.len + (w->inflight.len - w->written);
}

void writer_destroy(writer *w)
{
    if (w == NULL)
        return;
    if (w->owns_fd) {
        uv_fs_t req;
        uv_fs_close(NULL, &req, w->fd, NULL);
        uv_fs_req_cleanup(&req);
    }
    buf_finish(&w->pending);
    buf_finish(&w->inflight);
    free(w);
}
