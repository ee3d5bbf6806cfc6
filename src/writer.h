/* writer.h: appends blocks of output to a file or standard output through libuv's fs API.
 *
 * A block handed to writer_submit() reaches the file whole and contiguous: there is only
 * ever one write in flight, blocks are concatenated in the order submitted, and a file
 * opened for appending gets each batch in a single write(2) on an O_APPEND descriptor.
 * The first error is sticky: later submissions are refused with it.
 *
 * Ownership: the writer copies what it is given (writer_submit_buf takes it). It is created by writer_open() and freed
 * by writer_destroy(), which must come after writer_close() has completed and the loop has
 * run its requests out. */
#ifndef AREQ_WRITER_H
#define AREQ_WRITER_H

#include <stddef.h>
#include <uv.h>

#include "task.h"

typedef struct writer writer;

/* Called once, from the loop, when a write first fails (EPIPE for a reader that went away,
 * ENOSPC for a full disk, ...). */
typedef void (*writer_error_fn)(void *ctx, int err);

/* Opens `path` ("-" is standard output), truncating it unless `append`. Returns 0 or a
 * negative errno. */
int writer_open(uv_loop_t *loop, const char *path, int append, writer **out);
void writer_on_error(writer *w, writer_error_fn fn, void *ctx);

/* Queues a block. 0, or the sticky error (negative errno): the block was not taken. */
int writer_submit(writer *w, const char *data, size_t len);

/* Issue 16 item 10: the same, taking the block itself: when nothing else is waiting, `b`'s
 * memory becomes the writer's without a copy, so that a large block is not held twice.
 * `b` is left empty (initialised) whatever the result. */
struct buf;
int writer_submit_buf(writer *w, struct buf *b);

/* Inside a step: writes out everything queued and closes the file. TASK_PENDING; on
 * resume task_wait_rc() is 0 or the first error. Cancelling the waiting task does not
 * stop the writing; it only stops the wait. */
int writer_close(writer *w, task *t);

/* Whether the output held nothing when it was opened (always so without `append`, and for
 * standard output): the place for a header line. */
int writer_at_start(const writer *w);

int writer_error(const writer *w);
/* Bytes handed over and not yet written: lets callers hold back when the disk is slow. */
size_t writer_backlog(const writer *w);
void writer_destroy(writer *w); /* accepts NULL */

#endif
