/* state.h: the crawl-state store (--state FILE), an SQLite database that remembers, between
 * runs, what each page yielded: its validators, a hash of its body, its targets in output
 * order, and which run wrote it, so that a later run can ask conditionally, write the
 * stored pairs on a 304, resume an interrupted run exactly once and say what changed.
 *
 * This is the only module that includes sqlite3.h. The file is created on first use (only
 * when the path does not exist), in WAL mode, with an application id and a schema version
 * checked on every open; a file that is not an areq store, is newer or is corrupt is
 * refused with a message and never written. One run at a time: an flock(2) on the file,
 * held from before SQLite opens it until after SQLite has closed it (a descriptor of ours
 * on the file is therefore never closed while SQLite's POSIX locks are held; closing one
 * would drop them).
 *
 * Threads: the store has two of its own, so that neither the loop nor libuv's pool (where
 * pages are scanned) ever waits on SQLite. A crawl's page lookups (state_lookup_start) are
 * answered on the reader thread, in whatever batches they queue up in; the other reads
 * (state_page_get, state_each_page, state_robots_get, state_last_run), for the start of a
 * run, robots.txt and tests, run on the caller's thread on the same connection, taking
 * turns with the reader. Writes are collected by state_page_put on the caller's thread
 * (which encodes a page's targets there) and committed in batches by state_commit, whose
 * transaction (and an fdatasync of the run's files before it) runs on the commit thread, on
 * a second connection. Every function is called from one thread, the loop's.
 *
 * Ownership: state_open creates the store, state_close frees it (NULL accepted; no commit
 * or lookup may be in flight). A store that has committed with state_commit or looked up
 * with state_lookup_start holds handles on that loop: state_detach lets go of them (and
 * stops the threads) before the loop is closed. A record filled by state_page_get or a
 * lookup points into its own `mem`, which the caller finishes with state_record_finish
 * (state_lookup_finish). state_page_put copies what it is given. */
#ifndef AREQ_STATE_H
#define AREQ_STATE_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "buf.h"
#include "digest.h"

typedef struct state state;

/* The schema this build writes; a file with another user_version is refused. 2: targets
 * in a table of their own, front-coded against the best of the four before them, and body
 * fingerprints; schema 1's lists decode to other targets. 3: each page's run and fetch
 * time in a narrow table of their own (visit), which is all a 304 writes. */
enum { STATE_SCHEMA_VERSION = 3 };

/* state_open's failures beyond errno values, each with its message in `why`. */
enum {
    STATE_E_LOCKED = -10001,  /* another run holds the file */
    STATE_E_FOREIGN = -10002, /* not an SQLite database, or not areq's */
    STATE_E_NEWER = -10003,   /* written by a newer areq */
    STATE_E_OLDER = -10006,   /* written by an earlier areq, in a layout this one cannot read */
    STATE_E_CORRUPT = -10004, /* SQLite says it is damaged */
    STATE_E_IO = -10005,      /* SQLite could not read or write it (full disk, ...) */
};

enum state_outcome {
    STATE_PAGE_OK = 0,     /* fetched and scanned: targets hold its pairs */
    STATE_PAGE_SKIPPED = 1, /* not HTML */
    STATE_PAGE_FAILED = 2, /* an HTTP or transport failure: status / error say which */
};

/* One page as the store keeps it. Strings are NUL-terminated; NULL for none. */
struct state_page {
    const char *url;           /* the key: the URL as queued (normalised) */
    size_t url_len;
    const char *final_url;
    enum state_outcome outcome;
    long status;               /* HTTP status, 0 for none */
    const char *error;
    const char *etag;
    const char *last_modified;
    int has_body_hash;
    unsigned char body_hash[DIGEST_SIZE];
    const char *targets;       /* each NUL-terminated, in output order */
    size_t targets_len;
    size_t ntargets;
    unsigned depth;
    int nofollow;
    int64_t fetched_at;        /* Unix seconds */
    int64_t changed_at;        /* when its targets or body last changed */
    unsigned char options_hash[DIGEST_SIZE];
    int64_t run;               /* the run that wrote it (get only) */
    /* Put only: where each file of the run stands once this page's lines in it are
     * written (see struct state_files); 0 for a file the run does not write. */
    uint64_t output_end;
    uint64_t changes_end;
    uint64_t failures_end;
    int same_content;          /* put only: outcome, final URL, status, body and targets are
                                  as stored (a 304): only the rest is written */
};

/* A page read back: `page` points into `mem`. state_page_get leaves the targets encoded
 * (page.targets NULL, page.targets_len 0) until state_record_targets decodes them into
 * `plain`: a 304 needs them only to write them, which the page does off the loop. */
struct state_record {
    struct state_page page;
    struct buf mem;
    struct buf plain;
    const void *encoded;
    size_t encoded_len;
    int decoded;
};

void state_record_init(struct state_record *r);
void state_record_finish(struct state_record *r);

/* Opens or creates the store at `path`. 0, or a negative errno or STATE_E_* with a
 * sentence naming the file in `why`. */
int state_open(const char *path, state **out, char *why, size_t whylen);
void state_close(state *s);

/* The files a run writes whose lengths every commit records, so that a resumed run can cut
 * each back to what the pages committed wrote there and append: the output, the --changes
 * file and the --failures file (issue 14). */
enum state_file { STATE_OUTPUT, STATE_CHANGES, STATE_FAILURES, STATE_NFILES };

/* Where a run's files stand. */
struct state_files {
    int kept[STATE_NFILES];       /* the run writes it to a file that can be cut back (the
                                     output is always recorded); 0 is stored as NULL */
    uint64_t bytes[STATE_NFILES]; /* its length */
};

/* The latest run, as the store knows it. */
struct state_run {
    int64_t id;
    int open;                  /* never finished: a run to resume */
    struct state_files files;  /* each file's length its last commit made durable */
    unsigned char command_hash[DIGEST_SIZE];
};

/* 1 with *out filled, 0 when the store has no run yet, or a negative error. */
int state_last_run(state *s, struct state_run *out);

/* Starts a run (committed at once): a new one, or `resume_id` again. Pages put from now on
 * carry `options_hash` and the run's id. `start`: which files the run keeps and their
 * lengths now, recorded at once (a resumed run whose --changes file starts afresh must not
 * leave the unfinished run's length behind). 0 or a negative error. */
int state_run_begin(state *s, int64_t resume_id, const unsigned char command_hash[DIGEST_SIZE],
                    const unsigned char options_hash[DIGEST_SIZE],
                    const struct state_files *start, int64_t now);
int64_t state_run_id(const state *s);

/* Whether the store held any page when it was opened. A run asks about each URL once, so
 * in a store that held none (a new one) every lookup of the run answers 0, and need not
 * be made. */
int state_knew_pages(const state *s);

/* Decodes rec's targets into page.targets and page.targets_len, once; on any thread that
 * has the record to itself. 0, -ENOMEM, or -EINVAL for a damaged list. */
int state_record_targets(struct state_record *rec);

/* Appends rec's targets to out as lines, each `prefix`, the target and a newline, straight
 * from the stored list (a TSV pair is its source and a tab, then the target): what decoding
 * them (state_record_targets) and writing each took, in one pass. *count: how many; on any
 * thread that has the record. 0, -ENOMEM, or -EINVAL for a damaged list (out as it was). */
int state_record_lines(const struct state_record *rec, const char *prefix, size_t prefix_len,
                       struct buf *out, size_t *count);

/* The stored page for `url`: 1 with *rec filled (its targets still encoded: see
 * state_record_targets), 0 when unknown, or a negative error. */
int state_page_get(state *s, const char *url, size_t len, struct state_record *rec);

/* state_page_get off the loop: the page's row is read on the store's reader thread, and
 * `done` is called on the loop with rec and rc filled as state_page_get fills and answers
 * them (a failure's message in `why`, not in state_error). A lookup waits behind no commit,
 * and the loop behind no read of the disk. The caller sets url, len, done and arg after
 * state_lookup_init, and keeps the struct and the URL until `done` has been called, which
 * it is exactly once for every lookup started. Lookups are answered in the order started. */
struct state_lookup {
    const char *url;
    size_t len;
    void (*done)(struct state_lookup *l); /* may free l */
    void *arg;
    struct state_record rec;
    int rc;
    char why[256];
    struct state_lookup *next; /* the store's */
};

void state_lookup_init(struct state_lookup *l);
void state_lookup_finish(struct state_lookup *l);
/* 0 when started, or a negative libuv error when the reader thread cannot be started
 * (`done` is then not called). */
int state_lookup_start(state *s, uv_loop_t *loop, struct state_lookup *l);

/* Calls fn for every page the run `run` wrote, in no particular order; a non-zero answer
 * stops and is returned. Records handed to fn are valid only during the call; a page
 * whose stored list is damaged comes with page.targets NULL. */
typedef int state_page_fn(void *arg, const struct state_page *p);
int state_each_page(state *s, int64_t run, state_page_fn *fn, void *arg);

/* Queues a page for the next commit that covers its output_end, changes_end and
 * failures_end. 0 or -ENOMEM. */
int state_page_put(state *s, const struct state_page *p);

/* Appends `targets` (each NUL-terminated, in output order) to out as the store keeps them
 * (what the commit thread does to each page's list): a pure function, for any thread, for
 * tests and the fuzzer. 0 or -ENOMEM. */
int state_encode_targets(const char *targets, size_t len, struct buf *out);

/* robots.txt of one origin as last fetched (RFC 9309: reused for at most 24 hours). */
struct state_robots {
    const char *origin;        /* scheme://host[:port] */
    long status;               /* 2xx: rules in body; 4xx: none */
    const char *etag;
    const char *last_modified;
    const char *body;          /* what was kept of it (its first 500 KiB and a byte) */
    size_t body_len;
    int64_t fetched_at;        /* when it was last fetched whole (not revalidated) */
};

struct state_robots_record {
    struct state_robots robots;
    struct buf mem;
};

void state_robots_record_init(struct state_robots_record *r);
void state_robots_record_finish(struct state_robots_record *r);

/* The stored robots.txt of `origin`: 1 with *rec filled, 0 when none, or a negative error. */
int state_robots_get(state *s, const char *origin, struct state_robots_record *rec);
/* Queues it for the next commit, whatever output length that covers. 0 or -ENOMEM. */
int state_robots_put(state *s, const struct state_robots *r);

/* Pages queued and not yet handed to a commit, and their bytes. */
size_t state_pending(const state *s);
size_t state_pending_bytes(const state *s);

/* Commits, in one transaction, the queued pages (a prefix of the queue) whose ends are all
 * within `whole` (each file's length written whole), and records for each file the length
 * that holds exactly the lines of the pages committed so far: where the last page covered
 * ends there (a line that belongs to no page, as --failures has for a bad list line, is
 * found again by a resumed run, which writes it unless it was kept). With `finish`, also
 * marks the run finished (every queued page must be covered). First, each `sync_fds` >= 0
 * (NULL: none) is fdatasync'd, so that the bytes recorded are on disk before the record
 * is. Runs on the store's thread; `cb` is called on the loop with 0 or a negative error
 * (STATE_E_IO for a full disk or an I/O error: the store keeps its previous commit).
 * 0 when started, -EBUSY while another commit is in flight. When the store's thread
 * cannot be started, the commit is made on the calling thread as state_commit_now makes
 * it, and its result is returned (0, or the error, with the message in state_error);
 * `cb` is then not called. */
typedef void state_commit_fn(void *arg, int status);
int state_commit(state *s, uv_loop_t *loop, const uint64_t whole[STATE_NFILES],
                 const int sync_fds[STATE_NFILES], int finish, state_commit_fn *cb, void *arg);
/* Stops the commit and reader threads and closes their handles on the loop (the loop must
 * run once more for those closes before it is closed). No commit or lookup may be in
 * flight; later commits must use state_commit_now, later reads state_page_get. NULL, or a
 * store that never committed or looked up on a loop, is accepted. */
void state_detach(state *s);

/* The same, on the calling thread, for the end of a run and for tests. */
int state_commit_now(state *s, const uint64_t whole[STATE_NFILES],
                     const int sync_fds[STATE_NFILES], int finish);
int state_commit_busy(const state *s);

/* The message of the last failure, naming the file. */
const char *state_error(const state *s);

#endif
