/* progress.h: one status line on standard error, redrawn in place while the run goes on:
 * done of total (once the lists are read to the end), in flight, failed, pages a second,
 * elapsed time.
 *
 * Ownership: created and destroyed by its caller; it reads the crawl's counters (which
 * must outlive it) and owns only its timer, which it closes on destroy (the loop must run
 * once more before the memory is freed). */
#ifndef AREQ_PROGRESS_H
#define AREQ_PROGRESS_H

#include <uv.h>

#include "crawl.h"

typedef struct progress progress;

/* Starts drawing (at once, then every few tenths of a second). `ansi` says the stream is
 * a terminal, where the line can be cleared with an escape sequence rather than spaces.
 * 0 or a negative error. */
int progress_start(uv_loop_t *loop, const crawl *c, int ansi, progress **out);

/* Erases the line, for the summary or for good. */
void progress_clear(progress *p);

/* Erases the line and stops; frees after the loop has closed the timer. Accepts NULL. */
void progress_destroy(progress *p);

#endif
