#include "writer.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"

/* Where a submitted block ends, in bytes through this writer, and what writing it whole
 * counts for. */
struct mark {
    uint64_t end;
    size_t count;
};

/* The most buffers one write request carries. libuv splits a request of more than
 * sysconf(_SC_IOV_MAX) buffers (1024 on Linux) into several write(2)s, and a batch on an
 * O_APPEND descriptor must be one. */
#if defined(IOV_MAX) && IOV_MAX < 1024
#define MAX_BUFS IOV_MAX
#else
#define MAX_BUFS 1024
#endif

/* A taken block shorter than this is copied onto the last queued chunk instead of becoming
 * a chunk of its own: a chunk costs a buffer in a write and its allocation's slack. */
#define SMALL_BLOCK 4096

/* Copies are gathered into the last chunk while it holds less than this, or while they fit
 * in its memory: beyond, growing it would copy what it holds. */
#define MAX_GROWN_CHUNK ((size_t)64 << 10)

struct writer {
    uv_loop_t *loop;
    uv_file fd;
    int owns_fd;         /* not for standard output */
    int at_start;        /* the file was empty when opened */
    int append;
    int regular;         /* a regular file: a cut block can be truncated away */
    int cut_line;        /* an append found a cut last line and began a new one */
    int to_truncate;     /* what a replaced file held is still to be cut away */
    uv_fs_t req;
    int busy;            /* a request is in flight */
    /* What is queued, oldest first from chunk_head: blocks taken from callers as they are
     * (no copy: a write of several buffers takes them as they lie), and copies of small
     * ones gathered together. The request in flight points into the first chunks_busy
     * chunks, which must stay put until it is back; the others may grow. */
    struct buf chunks;   /* struct buf */
    size_t chunk_head;
    size_t head_done;    /* bytes of the head chunk already written */
    size_t chunks_busy;
    size_t queued;       /* bytes in the chunks not yet written: the backlog */
    struct buf marks;    /* struct mark, one per block not yet written whole, from mark_head */
    size_t mark_head;
    struct buf iov;      /* uv_buf_t: the buffers of the next file write */
    size_t piece;        /* bytes of the stream write in flight */
    char staging[PIPE_BUF]; /* a pipe piece gathered from several chunks */
    off_t start_size;    /* the file's size once writer_start() is done */
    uint64_t bytes_written;   /* through this writer */
    uint64_t bytes_committed; /* of those, up to the end of the last whole block */
    size_t count_written;     /* the counts of the blocks written whole */
    int error;
    int closing, closed;
    int abandoned;
    task *closer;
    task *room_waiter;
    writer_error_fn on_error;
    void *on_error_ctx;

    /* A pipe or socket is written on the loop, never from a pool thread: a stalled reader
     * must not hold the pool (it scans pages), nor keep the process from exiting. */
    int use_stream;
    int stream_open;
    int stream_closing;  /* uv_close() called on the pipe */
    struct out_stream *stream;
};

/* The pipe handle and its write request live apart from the writer: a writer destroyed
 * early (a run that fails to start) leaves them to their close callback, which frees them. */
struct out_stream {
    uv_pipe_t pipe;
    uv_write_t req;
    writer *w;    /* NULL once the writer is gone */
    uv_file fd;
    int fd_flags; /* the descriptor's status flags before uv_pipe_open */
};

static void start_next(writer *w);

static struct buf *chunk_at(const writer *w, size_t i)
{
    return (struct buf *)(void *)w->chunks.data + i;
}

static size_t nchunks(const writer *w)
{
    return w->chunks.len / sizeof(struct buf);
}

static struct mark *mark_at(const writer *w, size_t i)
{
    return (struct mark *)(void *)w->marks.data + i;
}

static size_t nmarks(const writer *w)
{
    return w->marks.len / sizeof(struct mark);
}

/* Drops the entries before `head` of an array of `size`-byte entries once they are half
 * of it, so that it does not grow with everything ever queued. */
static void compact(struct buf *a, size_t *head, size_t size)
{
    if (*head == a->len / size) {
        a->len = 0;
        *head = 0;
    } else if (*head >= 64 && *head * 2 >= a->len / size) {
        buf_consume(a, *head * size);
        *head = 0;
    }
}

/* Frees the chunks from index `from` on, none of them in flight: what was queued and will
 * not be written (an error, an abandoned reader). */
static void drop_chunks_from(writer *w, size_t from)
{
    size_t n = nchunks(w);
    for (size_t i = from; i < n; i++) {
        struct buf *c = chunk_at(w, i);
        w->queued -= c->len - (i == w->chunk_head ? w->head_done : 0);
        buf_finish(c);
    }
    w->chunks.len = from * sizeof(struct buf);
    if (from == w->chunk_head) {
        w->head_done = 0;
        compact(&w->chunks, &w->chunk_head, sizeof(struct buf));
    }
}

static void drop_unsent(writer *w)
{
    drop_chunks_from(w, w->chunk_head + w->chunks_busy);
}

static void wake_room_waiter(writer *w)
{
    if (w->room_waiter == NULL)
        return;
    if (w->error == 0 && !w->abandoned && writer_backlog(w) >= WRITER_BACKLOG_MAX)
        return;
    task *t = w->room_waiter;
    w->room_waiter = NULL;
    task_wake(t, 0);
}

/* `n` queued bytes reached the output: free the chunks they used up, and count the blocks
 * now whole. */
static void advance(writer *w, size_t n)
{
    w->bytes_written += n;
    w->queued -= n;
    while (n > 0) {
        struct buf *c = chunk_at(w, w->chunk_head);
        size_t left = c->len - w->head_done;
        if (n < left) {
            w->head_done += n;
            break;
        }
        n -= left;
        buf_finish(c);
        w->chunk_head++;
        w->head_done = 0;
    }
    compact(&w->chunks, &w->chunk_head, sizeof(struct buf));
    while (w->mark_head < nmarks(w) && mark_at(w, w->mark_head)->end <= w->bytes_written) {
        struct mark *m = mark_at(w, w->mark_head++);
        w->count_written += m->count;
        w->bytes_committed = m->end;
    }
    compact(&w->marks, &w->mark_head, sizeof(struct mark));
    wake_room_waiter(w);
}

/* A full disk can take part of a block before it refuses the rest: the output then ends in
 * a cut line. Cut the file back to the end of the last whole block, provided nobody else
 * (another appender) has written to it since, which its size tells. */
static void cut_back_to_whole_block(writer *w)
{
    if (!w->regular || w->bytes_committed == w->bytes_written)
        return;
    struct stat st;
    off_t expected = w->start_size + (off_t)w->bytes_written;
    if (fstat(w->fd, &st) == 0 && st.st_size == expected &&
        ftruncate(w->fd, w->start_size + (off_t)w->bytes_committed) == 0)
        w->bytes_written = w->bytes_committed;
}

static void fail(writer *w, int err)
{
    if (w->error != 0)
        return;
    w->error = err;
    cut_back_to_whole_block(w);
    drop_unsent(w);
    wake_room_waiter(w);
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

static void on_stream_closed(uv_handle_t *h)
{
    struct out_stream *st = h->data;
    writer *w = st->w;
    /* Standard output's open file description is shared with whoever started us (a shell
     * pipeline may write to it after we exit): hand it back as blocking as it was. */
    if (st->fd <= STDERR_FILENO && st->fd_flags >= 0 && !(st->fd_flags & O_NONBLOCK))
        fcntl(st->fd, F_SETFL, st->fd_flags);
    free(st);
    if (w == NULL)
        return;
    w->stream = NULL;
    w->stream_open = 0;
    w->busy = 0;
    finish_close(w);
}

static void on_written(uv_fs_t *req)
{
    writer *w = req->data;
    ssize_t n = req->result;
    uv_fs_req_cleanup(req);
    w->busy = 0;
    w->chunks_busy = 0;
    if (n < 0) {
        fail(w, (int)n);
    } else {
        advance(w, (size_t)n);
        if (w->abandoned)
            drop_unsent(w); /* the rest of a short write: nothing more is written */
    }
    start_next(w);
}

static void on_stream_written(uv_write_t *req, int status)
{
    struct out_stream *st = req->data;
    writer *w = st->w;
    if (w == NULL)
        return;
    w->busy = 0;
    w->chunks_busy = 0;
    if (status == UV_ECANCELED) {
        drop_unsent(w); /* abandoned: the piece never reached the pipe */
    } else if (status < 0) {
        fail(w, status);
    } else {
        advance(w, w->piece);
    }
    if (!w->stream_closing)
        start_next(w);
}

/* The last newline in the first `span` bytes of p, plus one; 0 if there is none. */
static size_t through_last_newline(const char *p, size_t span)
{
    for (size_t i = span; i > 0; i--)
        if (p[i - 1] == '\n')
            return i;
    return 0;
}

/* The next piece of what is queued for a pipe: whole lines of at most PIPE_BUF bytes,
 * which a pipe takes whole or not at all, so that output cut short by a stalled reader
 * (see writer_abandon) still ends with a whole line. A line longer than that goes alone.
 * Lines that run across chunks are gathered into `staging` (*in_chunk is then 0). */
static size_t next_piece(writer *w, const char **piece, int *in_chunk)
{
    struct buf *c = chunk_at(w, w->chunk_head);
    const char *p = c->data + w->head_done;
    size_t left = c->len - w->head_done;
    *piece = p;
    *in_chunk = 1;
    if (left < PIPE_BUF && w->chunk_head + 1 < nchunks(w)) {
        size_t got = 0;
        for (size_t i = w->chunk_head; i < nchunks(w) && got < PIPE_BUF; i++) {
            struct buf *d = chunk_at(w, i);
            size_t from = i == w->chunk_head ? w->head_done : 0;
            size_t n = d->len - from < PIPE_BUF - got ? d->len - from : PIPE_BUF - got;
            memcpy(w->staging + got, d->data + from, n);
            got += n;
        }
        size_t n = through_last_newline(w->staging, got);
        if (n > left) {
            *piece = w->staging;
            *in_chunk = 0;
            return n;
        }
    }
    size_t n = through_last_newline(p, left < PIPE_BUF ? left : PIPE_BUF);
    if (n > 0)
        return n;
    const char *nl = memchr(p, '\n', left);
    return nl != NULL ? (size_t)(nl - p) + 1 : left;
}

/* Writes pieces at once while the pipe takes them; queues the first it refuses. */
static int write_stream(writer *w)
{
    while (w->queued > 0) {
        const char *p;
        int in_chunk;
        size_t n = next_piece(w, &p, &in_chunk);
        if (n > WRITER_MAX_WRITE)
            n = WRITER_MAX_WRITE;
        uv_buf_t b = uv_buf_init((char *)p, (unsigned)n);
        int rc = uv_try_write((uv_stream_t *)&w->stream->pipe, &b, 1);
        if (rc == (int)n) {
            advance(w, n);
            continue;
        }
        if (rc < 0 && rc != UV_EAGAIN)
            return rc;
        if (rc > 0) {
            advance(w, (size_t)rc); /* frees no chunk p points into: less than n went */
            n -= (size_t)rc;
            b = uv_buf_init((char *)p + rc, (unsigned)n);
        }
        w->piece = n;
        rc = uv_write(&w->stream->req, (uv_stream_t *)&w->stream->pipe, &b, 1,
                      on_stream_written);
        if (rc != 0)
            return rc;
        w->busy = 1;
        w->chunks_busy = in_chunk ? 1 : 0;
        return 0;
    }
    return 0;
}

/* One request for the chunks from the head on: a single write(2) of up to MAX_BUFS
 * buffers and WRITER_MAX_WRITE bytes. */
static int write_file(writer *w)
{
    size_t k = nchunks(w) - w->chunk_head;
    if (k > MAX_BUFS)
        k = MAX_BUFS;
    w->iov.len = 0;
    int rc = buf_reserve(&w->iov, k * sizeof(uv_buf_t));
    if (rc != 0)
        return rc;
    uv_buf_t *bufs = (uv_buf_t *)(void *)w->iov.data;
    size_t total = 0, i = 0;
    for (; i < k && total < WRITER_MAX_WRITE; i++) {
        struct buf *c = chunk_at(w, w->chunk_head + i);
        size_t from = i == 0 ? w->head_done : 0;
        size_t n = c->len - from;
        if (n > WRITER_MAX_WRITE - total)
            n = WRITER_MAX_WRITE - total; /* uv_buf_t holds an unsigned length */
        bufs[i] = uv_buf_init(c->data + from, (unsigned)n);
        total += n;
    }
    w->req.data = w;
    rc = uv_fs_write(w->loop, &w->req, w->fd, bufs, (unsigned)i, -1, on_written);
    if (rc != 0)
        return rc;
    w->busy = 1;
    w->chunks_busy = i;
    return 0;
}

static void on_truncated(uv_fs_t *req)
{
    writer *w = req->data;
    int rc = (int)req->result;
    uv_fs_req_cleanup(req);
    w->busy = 0;
    if (rc < 0)
        fail(w, rc);
    start_next(w);
}

/* Keeps exactly one request in flight: the truncation of a replaced file, then the next
 * write of what is queued, else the close that was asked for. */
static void start_next(writer *w)
{
    if (w->busy)
        return;
    if (w->to_truncate) {
        w->to_truncate = 0;
        w->req.data = w;
        int rc = uv_fs_ftruncate(w->loop, &w->req, w->fd, 0, on_truncated);
        if (rc == 0) {
            w->busy = 1;
            return;
        }
        fail(w, rc);
    }
    if (w->queued > 0 && w->error == 0 && !w->abandoned) {
        int rc = w->use_stream ? write_stream(w) : write_file(w);
        if (rc != 0)
            fail(w, rc);
        if (w->busy)
            return;
    }
    if (w->closing && !w->closed) {
        if (w->stream_open) {
            if (!w->stream_closing) {
                w->stream_closing = 1;
                uv_close((uv_handle_t *)&w->stream->pipe, on_stream_closed);
            }
            w->busy = 1;
            return;
        }
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
    buf_init(&w->chunks);
    buf_init(&w->marks);
    buf_init(&w->iov);
    if (strcmp(path, "-") == 0) {
        w->fd = STDOUT_FILENO;
    } else {
        /* Appending reads the last byte, to find a cut last line. A replaced file is not
         * opened with O_TRUNC but truncated by the first request, on the pool: freeing the
         * 23 MB that the last run of a benchmark left took 10-14 ms (strace -T), during
         * which the loop would start no transfer. */
        int flags = O_CREAT | O_CLOEXEC | (append ? O_RDWR | O_APPEND : O_WRONLY);
        uv_fs_t req;
        /* Synchronous: it runs once, before any transfer, and its error ends the run. */
        int fd = uv_fs_open(NULL, &req, path, flags, 0666, NULL);
        uv_fs_req_cleanup(&req);
        if (fd == UV_EACCES && append) {
            /* Write-only for us: append without looking at the last byte. */
            flags = (flags & ~O_RDWR) | O_WRONLY;
            fd = uv_fs_open(NULL, &req, path, flags, 0666, NULL);
            uv_fs_req_cleanup(&req);
        }
        if (fd < 0) {
            free(w);
            return fd;
        }
        w->fd = fd;
        w->owns_fd = 1;
    }
    w->at_start = 1;
    w->append = append && w->owns_fd;
    struct stat st;
    if (fstat(w->fd, &st) == 0) {
        w->regular = S_ISREG(st.st_mode);
        if (w->regular && !w->append && w->owns_fd)
            w->to_truncate = st.st_size > 0; /* start_size stays 0, what it will be */
        else if (w->regular)
            w->start_size = st.st_size;
        if (append && w->owns_fd && st.st_size > 0)
            w->at_start = 0;
    }
    struct out_stream *os;
    if (uv_guess_handle(w->fd) == UV_NAMED_PIPE && (os = calloc(1, sizeof *os)) != NULL) {
        os->fd = w->fd;
        os->fd_flags = fcntl(w->fd, F_GETFL);
        os->pipe.data = os->req.data = os;
        if (uv_pipe_init(loop, &os->pipe, 0) != 0) {
            free(os);
        } else if (uv_pipe_open(&os->pipe, w->fd) != 0) {
            uv_close((uv_handle_t *)&os->pipe, on_stream_closed); /* writes from the pool */
        } else {
            os->w = w;
            w->stream = os;
            w->use_stream = 1;
            w->stream_open = 1;
            w->owns_fd = 0; /* closing the handle closes it (never 0 to 2) */
        }
    }
    *out = w;
    return 0;
}

/* Writes all of data now, on the loop's thread: only for the few bytes writer_start()
 * writes under the lock. 0 or -errno. */
static int write_all_now(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, data, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

int writer_start(writer *w, const char *header, size_t len)
{
    if (!w->append || !w->regular) {
        /* Truncated or new, or not a file: nobody else writes here. */
        return len > 0 && w->at_start ? writer_submit(w, header, len) : 0;
    }
    /* Appending: the size seen, and the header or newline written for it, must not be
     * another areq appender's too. flock is advisory: it orders areq runs only. */
    if (flock(w->fd, LOCK_EX) != 0)
        return -errno;
    int rc = 0;
    struct stat st;
    if (fstat(w->fd, &st) != 0) {
        rc = -errno;
    } else if (st.st_size == 0) {
        w->at_start = 1;
        if (len > 0)
            rc = write_all_now(w->fd, header, len);
    } else {
        char last;
        w->at_start = 0;
        if (pread(w->fd, &last, 1, st.st_size - 1) == 1 && last != '\n') {
            w->cut_line = 1;
            rc = write_all_now(w->fd, "\n", 1);
        }
    }
    if (rc == 0 && fstat(w->fd, &st) == 0)
        w->start_size = st.st_size;
    flock(w->fd, LOCK_UN);
    if (rc != 0)
        fail(w, rc);
    return rc;
}

int writer_cut_line(const writer *w)
{
    return w->cut_line;
}

void writer_on_error(writer *w, writer_error_fn fn, void *ctx)
{
    w->on_error = fn;
    w->on_error_ctx = ctx;
}

/* Adds a chunk at the end of the queue, taking `c`'s memory. Room was reserved. */
static void push_chunk(writer *w, struct buf *c)
{
    buf_append(&w->chunks, c, sizeof *c);
    buf_init(c);
}

/* Queues a block with what it counts for: taken from `take` (which is left empty) unless
 * it is small and can join the last chunk, else copied from `data`. An abandoned writer
 * drops it, as it dropped what was queued: the page is no failure. */
static int submit(writer *w, const char *data, size_t len, struct buf *take, size_t count)
{
    int rc = w->error != 0 ? w->error : w->closing && !w->abandoned ? -EPIPE : 0;
    if (rc == 0 && !w->abandoned && len > 0) {
        /* The last chunk may grow unless the request in flight points into it, and as
         * long as growing it copies little. */
        rc = buf_reserve(&w->marks, sizeof(struct mark));
        if (rc == 0)
            rc = buf_reserve(&w->chunks, sizeof(struct buf)); /* may move the chunks */
        size_t n = nchunks(w);
        struct buf *tail = n > w->chunk_head + w->chunks_busy ? chunk_at(w, n - 1) : NULL;
        if (tail != NULL && tail->len + len >= tail->cap && tail->len >= MAX_GROWN_CHUNK)
            tail = NULL;
        if (rc == 0 && take != NULL && (tail == NULL || len >= SMALL_BLOCK)) {
            push_chunk(w, take);
        } else if (rc == 0 && tail != NULL) {
            rc = buf_append(tail, data, len);
        } else if (rc == 0) {
            struct buf copy;
            buf_init(&copy);
            rc = buf_append(&copy, data, len);
            if (rc == 0)
                push_chunk(w, &copy);
        }
        if (rc == 0) {
            w->queued += len;
            struct mark m = {.end = w->bytes_written + w->queued, .count = count};
            buf_append(&w->marks, &m, sizeof m); /* room was reserved */
            start_next(w);
        }
    }
    if (take != NULL)
        buf_finish(take);
    return rc;
}

int writer_submit_counted(writer *w, const char *data, size_t len, size_t count)
{
    return submit(w, data, len, NULL, count);
}

int writer_submit_buf(writer *w, struct buf *b, size_t count)
{
    return submit(w, b->data, b->len, b, count);
}

int writer_submit(writer *w, const char *data, size_t len)
{
    return writer_submit_counted(w, data, len, 0);
}

size_t writer_count_written(const writer *w)
{
    return w->count_written;
}

static void room_unwait(task *t)
{
    writer *w = t->wait_on;
    w->room_waiter = NULL;
}

enum task_wait writer_wait_room(writer *w, task *t)
{
    if (w->error != 0 || w->abandoned || writer_backlog(w) < WRITER_BACKLOG_MAX) {
        t->wait_rc = 0;
        return TASK_READY;
    }
    w->room_waiter = t;
    t->wait_on = w;
    task_suspend(t, room_unwait);
    return TASK_SUSPENDED;
}

void writer_abandon(writer *w)
{
    if (w->abandoned)
        return;
    w->abandoned = 1;
    drop_unsent(w);
    wake_room_waiter(w);
    /* A piece waiting for the pipe was refused whole (see next_piece): dropping it leaves
     * whole lines. A file write in flight ends on its own. */
    if (w->use_stream && w->stream_open && w->busy) {
        w->closing = 1;
        w->stream_closing = 1;
        uv_close((uv_handle_t *)&w->stream->pipe, on_stream_closed);
    }
}

static void writer_unwait(task *t)
{
    writer *w = t->wait_on;
    w->closer = NULL;
}

enum task_step writer_close(writer *w, task *t)
{
    w->closing = 1;
    w->closer = t;
    t->wait_on = w;
    task_suspend(t, writer_unwait);
    if (w->closed) {
        finish_close(w);
        return TASK_PENDING;
    }
    start_next(w);
    return TASK_PENDING;
}

int writer_at_start(const writer *w)
{
    return w->at_start;
}

uint64_t writer_offset_submitted(const writer *w)
{
    return (uint64_t)w->start_size + w->bytes_written + writer_backlog(w);
}

uint64_t writer_offset_whole(const writer *w)
{
    return (uint64_t)w->start_size + w->bytes_committed;
}

int writer_dup_sync_fd(const writer *w)
{
    if (!w->regular || w->use_stream)
        return -1;
    return fcntl(w->fd, F_DUPFD_CLOEXEC, 3);
}

int writer_error(const writer *w)
{
    return w->error;
}

size_t writer_backlog(const writer *w)
{
    return w->queued;
}

int writer_idle(const writer *w)
{
    return !w->busy && w->queued == 0;
}

void writer_destroy(writer *w)
{
    if (w == NULL)
        return;
    if (w->stream != NULL) {
        /* Destroyed without a completed close (a run that failed to start): the loop
         * must run again for the handle, which then frees itself. */
        w->stream->w = NULL;
        if (!w->stream_closing)
            uv_close((uv_handle_t *)&w->stream->pipe, on_stream_closed);
    }
    if (w->owns_fd) {
        /* A run that ends before the loop ran leaves a replaced file empty all the same,
         * as opening it with O_TRUNC did. */
        if (w->to_truncate && ftruncate(w->fd, 0) != 0)
            w->error = -errno; /* nobody is left to tell */
        uv_fs_t req;
        uv_fs_close(NULL, &req, w->fd, NULL);
        uv_fs_req_cleanup(&req);
    }
    for (size_t i = w->chunk_head; i < nchunks(w); i++)
        buf_finish(chunk_at(w, i));
    buf_finish(&w->chunks);
    buf_finish(&w->marks);
    buf_finish(&w->iov);
    free(w);
}
