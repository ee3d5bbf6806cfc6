/* page.h: one page of a crawl, as a request with a result: the page task fetches the URL
 * (again, after transient failures), scans it for links, writes its pairs to the output as
 * one block, and hands back what happened (struct page_result) to the callback it was given,
 * as libuv pairs a request with its callback. The page keeps no books: counting, the
 * --failures file, following links and giving back the URL are the caller's, in the callback.
 * With --save, the page also writes its body under the save directory as it arrives.
 *
 * Ownership: the caller owns everything the config and the target point to, which must
 * outlive the page (until its callback has returned). The page allocates itself and frees
 * itself after its callback; the result and what it points to are the page's, valid only
 * during the callback. */
#ifndef AREQ_PAGE_H
#define AREQ_PAGE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "digest.h"
#include "format.h"
#include "http.h"
#include "links.h"
#include "save.h"
#include "state.h"
#include "task.h"
#include "writer.h"

/* --save (issue 15): what every page shares for saving bodies, borrowed. */
struct page_save {
    saver *saver;
    const char *types;    /* --save-types, or NULL: every type */
    unsigned path_flags;  /* enum savepath_flags */
    int manifest;         /* the saver has a manifest: each body's SHA-256 is wanted */
    int no_scan;          /* nothing needs the links (-o /dev/null, no --depth): HTML is
                             saved like any other body, not scanned */
    size_t *held_bytes;   /* body bytes all pages hold until saved: the run's counter, 0 at
                             the start, touched only on the loop */
    /* A failure that ends all saving (a full disk, a read-only directory), met saving
     * `url`: the run's owner reports the first, and ends the run. The page then ends
     * PAGE_UNWRITTEN. */
    void (*fatal)(void *ctx, int err, const char *url);
    void *ctx;
};

/* What every page of a run shares, borrowed. */
struct page_config {
    http_client *http;
    writer *out;
    const links_extractor *extractor;
    unsigned url_flags;  /* enum url_flags, for resolving links */
    enum format format;
    unsigned retries;    /* extra attempts after a transient failure */
    uint64_t *rng;       /* xorshift64* state for backoff jitter (never 0), the caller's */
    /* Set (by any thread's reader, from the loop) once nothing more can reach the output:
     * a scan not yet begun is then skipped, and its page ends as cancelled. NULL: never. */
    const atomic_int *output_lost;
    const struct page_save *save; /* NULL: bodies are not saved */
    /* What a crawl-state store needs of a fetched page, which costs a little, so only when
     * asked: a fingerprint of its body (result.body_hash), and its targets in output order
     * (result.targets). */
    int hash_bodies;
    int keep_targets;
};

/* The URL to fetch, borrowed. */
struct page_target {
    const char *url;      /* normalised; the source of the pairs */
    size_t len;
    unsigned depth;
    const char *found_on; /* for the failure record, or NULL */
    int follow;           /* keep the links worth following */
    void *tag;            /* the caller's, handed back to the callback */
    /* The validators of the copy the caller holds, or NULL: sent as If-None-Match and
     * If-Modified-Since, so that the server may answer 304 (PAGE_NOT_MODIFIED). */
    const char *if_none_match;
    const char *if_modified_since;
    /* The stored copy those validators are of, or NULL: on a 304 its pairs are written as
     * its fetch wrote them and its links offered to follow, off the loop as a scan is
     * (PAGE_NOT_MODIFIED with `replayed`). The page decodes its targets
     * (state_record_targets): the caller must not touch it while the page runs. */
    struct state_record *stored;
};

/* Appends the lines of `stored` (its targets decoded), as a fetch of `source` at `depth`
 * wrote them, to block; *pairs says how many. 0 or -ENOMEM. */
int page_format_stored(enum format format, struct buf *block, const char *source, size_t len,
                       const struct state_page *stored, unsigned depth, size_t *pairs);

enum page_outcome {
    PAGE_CANCELLED, /* stopped before it had a result: nothing to count */
    PAGE_OK,        /* fetched, scanned, its block handed to the writer */
    PAGE_SKIPPED,   /* fetched, but not HTML */
    PAGE_SAVED,     /* fetched and saved (--save), not HTML: nothing to scan */
    PAGE_FAILED,    /* an HTTP or transport failure, or the scan failed: see failure */
    PAGE_UNWRITTEN, /* the writer refused the block: the writer's owner reports that */
    PAGE_NOT_MODIFIED, /* a 304 to the target's validators: with target.stored, its pairs
                          were written and its links are in follow (`replayed`); without,
                          nothing was written, and what to write is the caller's */
};

struct page_result {
    enum page_outcome outcome;
    size_t pairs;    /* lines written (PAGE_OK, or PAGE_NOT_MODIFIED replayed) */
    size_t bad;      /* hrefs that could not be parsed (PAGE_OK) */
    size_t retries;  /* attempts made again */
    int nofollow;    /* <meta name="robots" content="nofollow"> */
    int saved;       /* the body was saved (PAGE_OK or PAGE_SAVED) */
    int replayed;    /* PAGE_NOT_MODIFIED: target.stored was written (pairs, follow) */
    struct buf follow; /* links to follow, each NUL-terminated, fragments cut (PAGE_OK, or
                          PAGE_NOT_MODIFIED replayed) */
    struct format_failure failure; /* PAGE_FAILED: what to note in a --failures file */
    char error[128]; /* failure.error's words */

    /* Of the last attempt's final response, whatever the outcome (NULL / 0 for none). */
    const char *final_url;
    long status;
    const char *etag;          /* as sent, to send back next time; see http.h */
    const char *last_modified;
    int unsolicited_304;       /* a 304 came without validators asked for it (PAGE_FAILED) */
    /* With cfg->hash_bodies, for PAGE_OK: a fingerprint of the body as decoded, its
     * fingerprint() in the first 8 bytes (little-endian), the rest 0. */
    int has_body_hash;
    unsigned char body_hash[DIGEST_SIZE];
    /* With cfg->keep_targets, for PAGE_OK: its targets in output order, each NUL-terminated,
     * one per pair written. */
    struct buf targets;
};

/* Appends `target` (a resolved link of a page) to a list of links to follow, each
 * NUL-terminated, if it is an http(s) URL, without its fragment, which names a part of the
 * same page: what a scan offers to follow, and what a stored page's targets give back.
 * 0 (kept or not a web URL) or -ENOMEM. */
int page_keep_to_follow(struct buf *follow, const char *target, size_t len);

/* Called once, from the loop, when the page has finished; `arg` is page_spawn's, and
 * `target` a copy of its target. */
typedef void page_done_fn(void *arg, const struct page_target *target,
                          const struct page_result *r);

/* Spawns a page task on `s`, a child of `parent` (or NULL). 0, or -ENOMEM with nothing
 * started. */
int page_spawn(task_sched *s, task *parent, const struct page_config *cfg,
               const struct page_target *target, page_done_fn *done, void *arg);

#endif
