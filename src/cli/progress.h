/* progress.h: one status line on standard error, redrawn in place while the run goes on:
 * done of total (once the lists are read to the end), in flight, failed, pages a second,
 * elapsed time.
 *
 * Ownership: created and destroyed by its caller; it reads the crawl's counters and writes
 * to the caller's stream (both must outlive it) and owns only its timer, which it closes on
 * destroy (the loop must run once more before the memory is freed). */
#ifndef AREQ_PROGRESS_H
#define AREQ_PROGRESS_H

#include <stddef.h>
#include <stdio.h>
#include <uv.h>

#include "crawl.h"

typedef struct progress progress;

/* Starts drawing on `to` (standard error in areq; any stream in a test), at once and then
 * every few tenths of a second. `ansi` says the stream is a terminal, where the line can be
 * cleared with an escape sequence rather than spaces. 0 or a negative error. */
int progress_start(uv_loop_t *loop, const crawl *c, FILE *to, int ansi, progress **out);

/* The text of the line (no "\r", no clearing) for counters `s` after `elapsed_s` seconds;
 * the total appears once `lists_read`. Writes at most size - 1 characters and a NUL (size
 * must be at least 1) and returns how many it wrote. What each tick draws; public so that
 * the format can be tested without a clock. */
size_t progress_format(char *line, size_t size, const struct crawl_stats *s, int lists_read,
                       double elapsed_s);

/* Erases the line, for the summary or for good. */
void progress_clear(progress *p);

/* Erases the line and stops; frees after the loop has closed the timer. Accepts NULL. */
void progress_destroy(progress *p);

#endif
