/* crawl.h: the run. A feeder task streams the input lists into the frontier; a dispatcher
 * task takes from it the URLs that may be fetched now, admits each through a semaphore of
 * --concurrency permits, and spawns a page task for it (page.h), whose completion callback
 * keeps the books; with --depth, a page's links come back into the frontier (admit.h).
 * Before the first page of an origin, when recursing, a robots task fetches its robots.txt.
 * The run task is the parent of them all: it ends when they have, after closing the
 * output.
 *
 * Ownership: the caller owns the crawl struct and everything its options point to (the
 * http client, the writer, the extractor, the filters, the list of paths), all of which
 * must outlive the run. crawl_init/crawl_finish manage what the crawl allocates itself. */
#ifndef AREQ_CRAWL_H
#define AREQ_CRAWL_H

#include <stddef.h>
#include <stdint.h>

#include "format.h"
#include "frontier.h"
#include "http.h"
#include "input.h"
#include "filter.h"
#include "links.h"
#include "page.h"
#include "seen.h"
#include "state.h"
#include "task.h"
#include "writer.h"

enum crawl_scope {
    SCOPE_HOST = 0, /* the host the chain of links started from */
    SCOPE_DOMAIN,   /* its registrable domain (Public Suffix List) */
    SCOPE_ANY,
};

/* The memory the frontier's URLs may hold before links stop being admitted (frontier_bytes):
 * at about 130 bytes a URL, a million URLs, which keeps a crawl of link-dense pages well
 * under 200 MB instead of growing by gigabytes. */
#define CRAWL_QUEUE_BUDGET_DEFAULT ((size_t)128 << 20)

struct crawl_options {
    size_t concurrency;
    unsigned retries;          /* extra attempts after a transient failure */
    unsigned url_flags;        /* enum url_flags */
    enum format format;
    unsigned depth;            /* links followed this many hops from the lists */
    enum crawl_scope scope;
    const void *psl;           /* the Public Suffix List (a psl_ctx_t, the caller's, outliving
                                  the crawl); needed for SCOPE_DOMAIN */
    const filter *const *include; /* a followed URL must match one, if any */
    size_t ninclude;
    const filter *const *exclude; /* and none of these */
    size_t nexclude;
    size_t max_pages;          /* pages fetched at most; 0 = no limit */
    int robots;                /* obey robots.txt when recursing */
    size_t per_host;           /* transfers to one origin at once; 0 = no cap */
    uint64_t delay_ms;         /* between requests to one origin */
    size_t queue_budget;       /* bytes for queued URLs; 0 = CRAWL_QUEUE_BUDGET_DEFAULT */
    http_client *http;
    writer *out;
    const links_extractor *extractor;
    const char *const *urls;   /* URLs given as arguments, queued before the lists */
    size_t nurls;
    char *const *inputs;       /* list paths, "-" for standard input */
    int *input_fds;            /* each list, opened once (reader_open_list); the crawl owns
                                  them from crawl_init on and closes every one */
    size_t ninputs;
    writer *failures;          /* --failures: a JSON line per failed URL, or NULL */
    /* --state (issue 14): the store, opened by the caller, its run begun; or NULL. */
    state *state;
    unsigned char options_hash[DIGEST_SIZE]; /* of the options that change what a page
                                                yields: a stored page counts only if equal */
    int64_t resume_run;        /* > 0: the unfinished run being resumed: its pages are done */
    int replay_writes;         /* write the done pages' pairs again (-o -: nothing was kept) */
    int64_t now;               /* the run's wall clock for the store, Unix seconds */
    int64_t max_age_s;         /* --max-age: a page fetched this recently is not requested */
    /* The output, --changes and --failures files, to fdatasync before each commit (by
     * enum state_file); -1: none. */
    int sync_fds[STATE_NFILES];
    writer *changes;           /* --changes: what changed, a line each, or NULL */
    /* Resuming: fingerprints (seen_hash) of the lines kept in the --failures file, which
     * are not written again when found again (a bad list line is read again); or NULL. */
    const seen_set *failures_kept;
    const struct page_save *save; /* --save, or NULL */
};

struct crawl_stats {
    size_t ok;        /* fetched and scanned */
    size_t failed;    /* bad input lines, HTTP errors, transport errors */
    size_t skipped;   /* fetched but not HTML */
    size_t pairs;     /* lines written */
    size_t links_bad; /* hrefs that could not be parsed */
    size_t retries;   /* attempts made again after a transient failure */
    size_t started;   /* page tasks spawned */
    size_t finished;  /* page tasks ended */
    size_t before_slot; /* with --state, started but not yet given a transfer slot: asking
                           the store or waiting for a slot (not in flight) */
    size_t bad_lines; /* input lines reported and skipped (also counted failed) */
    size_t queued;    /* URLs put in the frontier, listed and found */
    size_t disallowed; /* dropped by robots.txt */
    size_t unfetched; /* left in the frontier by --max-pages */
    size_t over_budget; /* links to follow not queued: the frontier was at its budget */
    /* --state */
    size_t not_modified; /* answered 304: the stored pairs were written */
    size_t same_body;    /* answered 200 with the body stored before */
    size_t changed;      /* answered 200 with another body than the one stored */
    size_t new_pages;    /* not in the store before (or stored with other options) */
    size_t resumed;      /* done by the unfinished run resumed: not fetched again */
    size_t reused;       /* --max-age: not requested, the stored pairs written */
    size_t unsolicited_304; /* 304s to requests without validators (failures) */
    size_t etag_churn;   /* a new ETag for the same body */
    size_t saved;     /* bodies saved (--save), HTML pages among them */
    size_t saved_only; /* of those, the ones not scanned (not HTML) */
};

typedef struct crawl {
    task t;                    /* the run task; result 0, or why it stopped early */
    task feeder;               /* a child of the run: the lists into the frontier */
    task dispatcher;           /* a child of the run: the frontier into page tasks */
    struct crawl_options opt;
    struct crawl_stats stats;
    int input_error;           /* a list could not be read to its end */
    int lists_read;            /* every list has been read: the total is known */

    task_sem slots;            /* transfers: pages and robots.txt files (-c) */
    task_sem lookahead;        /* with --state, pages asking the store before a slot */
    seen_set seen;             /* every URL queued, by fingerprint */
    frontier *frontier;
    task_event changed;        /* a page or robots.txt ended, or the feeder queued a URL:
                                  the frontier may move (the dispatcher waits on it) */
    task_event room;           /* URLs left the frontier: the feeder may read on */
    size_t lines_this_turn;    /* listed URLs the feeder admitted since it last yielded
                                  (a turn of the feeder's, not of the loop) */
    uint64_t rng;              /* for backoff jitter */
    atomic_int output_lost;    /* crawl_output_lost() was called: read by scans on the pool */
    struct page_config pages;  /* what every page shares; points at rng, so the crawl
                                  stays where crawl_init put it */
    size_t next_url;
    size_t next_input;
    struct reader *in;
    struct input_line line;
    struct buf pending_url;    /* a normalised input URL */
    struct frontier_item *admitting; /* waiting for a permit */
    struct frontier_host *robots_host; /* waiting for a permit */
    size_t disallowed_seen;    /* URLs robots.txt dropped, for pacing the checks */
    int store_error;           /* a commit to --state failed: the run stops, exit 3 */
    uint64_t commit_at_ms;     /* when the last commit was started */
} crawl;

/* 0, -EINVAL for SCOPE_DOMAIN without a Public Suffix List, or -ENOMEM. */
int crawl_init(crawl *c, const struct crawl_options *o);
void crawl_finish(crawl *c);

/* Schedules the run task on `s`. When it is done (task_is_done(&c->t)) every page task has
 * finished and the writer has been closed. */
void crawl_start(crawl *c, task_sched *s);

/* Nothing more can be written (the output failed): stops the run, and pages fetched but
 * not yet scanned are not scanned. */
void crawl_output_lost(crawl *c, int reason);

/* Stops the run: no new URLs, transfers in flight cancelled, complete blocks kept. */
void crawl_stop(crawl *c, int reason);

/* How much of each file the store's commits cover is written whole (0 for one the run does
 * not write), by enum state_file. */
void crawl_files_whole(const crawl *c, uint64_t whole[STATE_NFILES]);

/* Whether `url` (normalised, found on the page `found_on` names, whose chain
 * began at `root`) may be followed, and if so queues it at `depth`. 1 queued, 0 not, -ENOMEM. */
int crawl_follow(crawl *c, const char *url, size_t len, unsigned depth,
                 const struct frontier_host *root, struct frontier_ref *found_on);

/* What two hosts must share to be in one --scope domain: the registrable domain of `host`
 * (a normalised host name) by `psl` (a psl_ctx_t, or NULL), or the whole host for an IP
 * address, for a bare public suffix and without a list. Points into `host`. */
const char *crawl_domain_key(const void *psl, const char *host);

#endif
