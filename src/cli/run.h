/* run.h: one run of areq from parsed options. Wires the loop, the scheduler, the HTTP
 * client, the writers, the extractor and the crawl together, runs them to the end and
 * answers with the exit status. main.c parses the arguments and sets up the process around
 * it; the crawl tests drive the same wiring through run_init() and run_finish().
 *
 * Ownership: `struct areq_run` is the caller's memory; run_init() fills it and everything
 * it points to is the run's, let go by run_finish(). The options must outlive the run. */
#ifndef AREQ_RUN_H
#define AREQ_RUN_H

#include <stdint.h>
#include <uv.h>

#include "crawl.h"
#include "http.h"
#include "filter.h"
#include "links.h"
#include "options.h"
#include "page.h"
#include "progress.h"
#include "state.h"
#include "save.h"
#include "task.h"
#include "writer.h"

/* The exit statuses scripts can rely on; documented in --help and the man page. */
enum exit_status {
    EXIT_ALL_DONE = 0,
    EXIT_SOME_FAILED = 1,
    EXIT_USAGE = 2,     /* also: an input list that cannot be read */
    EXIT_OUTPUT = 3,
    EXIT_INTERRUPTED = 130,
    EXIT_TERMINATED = 143,
};

/* Where a run gets what it would otherwise take from the system; NULL members (or no hooks
 * at all) mean the system's. For tests. */
struct run_hooks {
    /* The Public Suffix List for --scope domain (a psl_ctx_t the run frees with psl_free),
     * or NULL when it cannot be had. Default: psl_latest(NULL). */
    void *(*load_psl)(void);
};

struct areq_run {
    const struct options *opt;
    uv_loop_t loop;
    task_sched sched;
    uv_signal_t sigint, sigterm;
    uv_timer_t grace;      /* after a signal: how long a stalled reader may hold the end */
    unsigned open_handles; /* which of sigint, sigterm and grace need closing */
    int signal;            /* the first signal received, or 0 */
    int write_error;
    crawl crawl;
    int crawl_owns_inputs; /* input_fds went to crawl_init, which closes them */
    http_client *http;
    writer *out;
    writer *failures;      /* --failures, or NULL */
    writer *changes;       /* --changes, or NULL */
    progress *progress;
    const char *output_name;
    int *input_fds;        /* the lists, opened once; the crawl's once crawl_init is done */
    struct run_patterns {
        links_extractor *extractor;
        filter **include, **exclude;
        size_t ninclude, nexclude;
    } pat;
    struct run_cookies {
        const char **files;
        size_t nfiles;
        char *data;
    } cookies;
    void *psl;             /* for --scope domain, else NULL */
    state *state;          /* --state, or NULL */
    int sync_fds[STATE_NFILES]; /* the output, --changes and --failures files, for the
                                   store's fdatasync; -1: none */
    seen_set failures_kept; /* resuming: the lines kept in the --failures file */
    saver *saver;          /* --save, or NULL */
    struct page_save save; /* what the pages share for --save */
    size_t save_held;      /* its held_bytes */
    int save_error;        /* the first failure that ended all saving, or 0 */
    uint64_t started;      /* uv_hrtime() when the crawl was started */
    int leaked_handles;    /* uv_loop_close() found handles open at the end */
};

/* Opens the lists and the output, checks every option that can be checked before anything
 * is fetched, and schedules the crawl on r->loop (nothing runs until the loop does).
 * Returns EXIT_ALL_DONE (0): the caller runs r->loop and then calls run_finish(). Any
 * other value is an exit status, after the message; everything has been let go then and
 * run_finish() must not be called. `hooks` may be NULL. */
int run_init(struct areq_run *r, const struct options *o, const struct run_hooks *hooks);

/* After r->loop has run out of work: prints the summary, lets everything go, closes the
 * loop and returns the exit status. The caller must have closed its own handles on the
 * loop first. */
int run_finish(struct areq_run *r);

/* The whole run: run_init(), the loop, run_finish(). The exit status. */
int run_areq(const struct options *o);

#endif
