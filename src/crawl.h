/* crawl.h: the pipeline. A run task streams the input lists, admits each new URL through a
 * semaphore of --concurrency permits and spawns a page task for it; a page task fetches
 * the URL, finds its links, resolves and normalises them, and hands the page's pairs to
 * the writer as one block.
 *
 * Ownership: the caller owns the crawl struct and everything its options point to (the
 * http client, the writer, the extractor, the list of paths), all of which must outlive
 * the run. crawl_init/crawl_finish manage what the crawl allocates itself. */
#ifndef AREQ_CRAWL_H
#define AREQ_CRAWL_H

#include <stddef.h>
#include <stdint.h>

#include "format.h"
#include "http.h"
#include "input.h"
#include "links.h"
#include "seen.h"
#include "task.h"
#include "writer.h"

struct crawl_options {
    size_t concurrency;
    unsigned retries;          /* extra attempts after a transient failure */
    unsigned url_flags;        /* enum url_flags */
    enum format format;
    http_client *http;
    writer *out;
    const links_extractor *extractor;
    char *const *inputs;       /* list paths, "-" for standard input */
    size_t ninputs;
};

struct crawl_stats {
    size_t ok;       /* fetched and scanned */
    size_t failed;   /* bad input lines, HTTP errors, transport errors */
    size_t skipped;  /* fetched but not HTML */
    size_t pairs;    /* lines written */
    size_t links_bad; /* hrefs that could not be parsed */
    size_t retries;   /* attempts made again after a transient failure */
    size_t started;   /* page tasks spawned */
    size_t finished;  /* page tasks ended */
    size_t bad_lines; /* input lines reported and skipped (also counted failed) */
};

typedef struct crawl {
    task t;                    /* the run task; result 0, or why it stopped early */
    struct crawl_options opt;
    struct crawl_stats stats;
    int input_error;           /* a list could not be read to its end */
    int lists_read;            /* every list has been read: the total is known */

    /* Private to crawl.c. */
    task_sem slots;
    seen_set seen;             /* every input URL taken, by fingerprint */
    size_t next_input;
    struct reader *in;
    struct input_line line;
    struct buf pending_url;    /* normalised, waiting for a permit */
    uint64_t rng;              /* for backoff jitter */
} crawl;

void crawl_init(crawl *c, const struct crawl_options *o);
void crawl_finish(crawl *c);

/* Schedules the run task on `s`. When it is done (task_is_done(&c->t)) every page task has
 * finished and the writer has been closed. */
void crawl_start(crawl *c, task_sched *s);

/* Stops the run: no new URLs, transfers in flight cancelled, complete blocks kept. */
void crawl_stop(crawl *c, int reason);

#endif
