/* writer.h: appends blocks of output to a file or standard output through libuv's fs API.
 *
 * A block handed to writer_submit() reaches the file whole and contiguous: there is only
 * ever one write in flight, blocks are concatenated in the order submitted, and a file
 * opened for appending gets each batch (up to WRITER_MAX_WRITE bytes and 1024 blocks) in a
 * single write(2) of several buffers on an O_APPEND descriptor. The first error is sticky: later submissions are refused with
 * it. Whole blocks or nothing: when a write fails part-way (a full disk), a regular file is
 * cut back to the end of the last whole block, and only whole blocks are counted.
 *
 * A pipe or socket is written on the loop in whole lines of at most PIPE_BUF bytes (a pipe
 * takes such a write whole or not at all), so that writer_abandon() leaves whole lines even
 * when the reader has stalled; files and terminals are written from libuv's pool.
 *
 * Ownership: the writer copies what it is given (writer_submit_buf takes it instead, and
 * writes it from where it lies). It is
 * created by writer_open() and freed by writer_destroy(), which should come after
 * writer_close() has completed and the loop has run its requests out; destroyed sooner, it
 * leaves a pipe handle to close, and the loop must run once more. */
#ifndef AREQ_WRITER_H
#define AREQ_WRITER_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "task.h"

typedef struct writer writer;

/* What the writer may hold for a slow reader before the crawl stops admitting pages
 * (writer_wait_room). The pages in flight can still hand over their blocks, so the bound is
 * this plus what --concurrency pages produce. */
#define WRITER_BACKLOG_MAX ((size_t)4 << 20)

/* The most one write(2) is asked to take: uv_buf_t holds an unsigned length. */
#define WRITER_MAX_WRITE ((size_t)1 << 30)

/* Called once, from the loop, when a write first fails (EPIPE for a reader that went away,
 * ENOSPC for a full disk, ...). */
typedef void (*writer_error_fn)(void *ctx, int err);

/* Opens `path` ("-" is standard output), truncating it unless `append`. Returns 0 or a
 * negative errno. The truncation itself is the first request on the pool (or, should the
 * loop never run it, done by writer_destroy). */
int writer_open(uv_loop_t *loop, const char *path, int append, writer **out);
void writer_on_error(writer *w, writer_error_fn fn, void *ctx);

/* Writes the header when the output is empty. For --append onto a regular file it takes
 * an flock(2) around looking at the file and writing, so that of many areq appenders
 * starting on a new file exactly one writes the header; and an append onto a file whose
 * last line is cut starts on a new line (writer_cut_line says so). Call once, before any
 * submission; `len` 0 for no header. 0 or a negative errno (also made the sticky error). */
int writer_start(writer *w, const char *header, size_t len);
int writer_cut_line(const writer *w);

/* Queues a block. 0, or the sticky error (negative errno): the block was not taken. */
int writer_submit(writer *w, const char *data, size_t len);
/* The same, with what the block counts for (its pairs) once written whole. */
int writer_submit_counted(writer *w, const char *data, size_t len, size_t count);
/* The sum of the counts of the blocks written whole so far. */
size_t writer_count_written(const writer *w);

/* Inside a step: TASK_READY at once while the backlog is below WRITER_BACKLOG_MAX (or the
 * writer has failed or been abandoned), else TASK_SUSPENDED until it is; task_wait_rc() is 0,
 * or the cancellation reason. One waiter at a time. */
enum task_wait writer_wait_room(writer *w, task *t);

/* Gives up on the reader (a signal's grace period is over): drops what is queued, and a
 * pipe write still waiting for the reader; later submissions are dropped too (and return
 * 0). writer_close() then completes at once, bar a file write in flight. */
void writer_abandon(writer *w);

/* writer_submit_counted, taking the block itself: `b`'s memory becomes the writer's without
 * a copy, also while a write is in flight (a block under 4 KiB is copied onto the last one
 * queued instead), so that the loop copies nothing and a large block is not held twice.
 * `b` is left empty (initialised) whatever the result. */
struct buf;
int writer_submit_buf(writer *w, struct buf *b, size_t count);

/* Inside a step: writes out everything queued and closes the file. TASK_PENDING; on
 * resume task_wait_rc() is 0 or the first error. Cancelling the waiting task does not
 * stop the writing; it only stops the wait. */
enum task_step writer_close(writer *w, task *t);

/* Whether the output held nothing when it was opened (always so without `append`, and for
 * standard output): the place for a header line. */
int writer_at_start(const writer *w);

/* Where the output stands, for the crawl-state store's resume protocol (issue 14). For a
 * regular file these are offsets in it (what an append found there counts); otherwise
 * bytes handed over. _submitted: once every block submitted so far is written; _whole:
 * the end of the last block written whole, which is what a crash leaves. */
uint64_t writer_offset_submitted(const writer *w);
uint64_t writer_offset_whole(const writer *w);
/* A new descriptor of a regular file output, for fdatasync from another thread (the
 * caller closes it), or -1 for anything else. */
int writer_dup_sync_fd(const writer *w);

int writer_error(const writer *w);
/* Bytes handed over and not yet written: lets callers hold back when the disk is slow. */
size_t writer_backlog(const writer *w);
/* Nothing queued and no request in flight (a write, or the truncation of a replaced file,
 * which writer_abandon() does not stop): the writer may be destroyed. */
int writer_idle(const writer *w);
void writer_destroy(writer *w); /* accepts NULL */

#endif
