/* reader.h: reads a URL list from a file or standard input without ever waiting on the loop
 * for a writer, and hands it out a line at a time (split by input.h's rules).
 *
 * A regular file is read in chunks on the loop, at once (reader_next says why); a pipe,
 * FIFO, socket or terminal is read as a stream on the loop, so that an idle producer holds
 * no pool thread and a run can be stopped while its input is idle; anything else (a
 * device) with libuv's fs API on the pool. Reading is driven by the consumer: the next
 * chunk is asked for only when the lines of the last one are used up, so a list of any
 * length costs one chunk of memory.
 *
 * Ownership: the caller creates the reader with reader_open() and gives it up with
 * reader_close(), which frees it once libuv is done with it (the loop must run). Lines
 * handed out point into the reader and stay valid until the next reader_next(). */
#ifndef AREQ_READER_H
#define AREQ_READER_H

#include <uv.h>

#include "input.h"
#include "task.h"

typedef struct reader reader;

/* Opens the list at `path` ("-" is standard input, descriptor 0) without waiting for a
 * FIFO's writer. The descriptor, or a negative errno (-EISDIR for a directory). */
int reader_open_list(const char *path);

/* Reads the list open on `fd`, which the reader owns from here on, whatever the outcome
 * (descriptors 0 to 2 are never closed). `name` is for messages and must outlive the
 * reader. A list is opened once, by the caller: a FIFO's bytes would be lost to a second
 * open. 0 or a negative errno (-EISDIR for a directory). */
int reader_open(uv_loop_t *loop, int fd, const char *name, reader **out);

/* The list's name for messages: its path, or "<stdin>". */
const char *reader_name(const reader *r);

/* Inside a step: the next line. Returns TASK_READY when the answer is at hand, else
 * TASK_SUSPENDED until it is. Either way, task_wait_rc() then says: 1, a line is in *line
 * (its `error` may be set); 0, the list is finished; negative, a read error; or the
 * cancellation reason. */
enum task_wait reader_next(reader *r, task *t, struct input_line *line);

/* A task waiting in reader_next() must have been resumed (cancel it first): the reader
 * does not wake it, and may be freed at once. */
void reader_close(reader *r);

#endif
