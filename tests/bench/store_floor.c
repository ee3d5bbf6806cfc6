/* store_floor: what the crawl-state store alone costs for a run's pages, as a yardstick.
 *
 * It reads areq's TSV output (a header, then source<TAB>target lines, each page's lines
 * together, as areq writes them) and puts every page into a new store, as a first run with
 * --state does: its record, with validators and a body fingerprint like nginx's, and its
 * targets in output order, committed every N pages, then the store closed (its last
 * checkpoint). The store's own work, through its own API (src/store/state.h), committed
 * as the crawl commits: on the store's commit thread (state_commit), which also
 * checkpoints the WAL once a commit leaves it long, and the last commit on this thread
 * (state_commit_now), as run.c's close_state does, then the threads stopped. No HTTP, no scan,
 * no body fingerprint, no output written (so no fdatasync of it). Each commit is waited
 * for before the next page is put: the crawl overlaps them.
 * tests/bench/state.py runs it beside the crawls to show how much of a first run's cost
 * the store's writes alone are. A bench tool, not a test, and not installed.
 *
 * Usage: store_floor [-n PAGES_PER_COMMIT] OUTPUT.tsv STATE.db
 *
 * STATE.db must not exist. Default 100 pages a commit: about what a first run of scenario
 * A commits each time (16-25 commits of its 2,000 pages, one each 10 ms at most: crawl.c,
 * COMMIT_EVERY_MS; counted as the output's fdatasyncs, perf, 3 runs). Prints one
 * line: "pages N commits C cpu_ms X wall_ms Y", the times from before the store is opened
 * to after it is closed (the output is read and split into pages before). Exit status 0,
 * or 2 with a message on standard error. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <uv.h>

#include "buf.h"
#include "state.h"

static double cpu_ms(void)
{
    struct rusage r;
    getrusage(RUSAGE_SELF, &r);
    return (double)(r.ru_utime.tv_sec + r.ru_stime.tv_sec) * 1e3 +
           (double)(r.ru_utime.tv_usec + r.ru_stime.tv_usec) / 1e3;
}

static double wall_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

/* The whole file, NUL-terminated. */
static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    struct buf b;
    buf_init(&b);
    char chunk[1 << 16];
    size_t n;
    int rc = 0;
    while (rc == 0 && (n = fread(chunk, 1, sizeof chunk, f)) > 0)
        rc = buf_append(&b, chunk, n);
    int bad = ferror(f) || rc != 0 || buf_putc(&b, '\0') != 0;
    fclose(f);
    if (bad) {
        buf_finish(&b);
        return NULL;
    }
    *len = b.len - 1;
    return b.data;
}

/* A page as read from the output: its URL, its targets (NUL-separated, as state_page_put
 * takes them), how many, and where its lines end in the output. */
struct page {
    char *url;
    size_t url_len;
    size_t targets, targets_len; /* in the shared buffer of targets */
    size_t ntargets;
    uint64_t output_end;
};

struct pages {
    struct page *v;
    size_t n, cap;
    struct buf targets;
};

static int add_page(struct pages *ps, const char *source, size_t len, size_t targets,
                    size_t ntargets, uint64_t output_end)
{
    if (ps->n == ps->cap) {
        size_t cap = ps->cap > 0 ? ps->cap * 2 : 1024;
        struct page *v = realloc(ps->v, cap * sizeof *v);
        if (v == NULL)
            return -ENOMEM;
        ps->v = v;
        ps->cap = cap;
    }
    char *url = strndup(source, len); /* the store's strings are NUL-terminated */
    if (url == NULL)
        return -ENOMEM;
    ps->v[ps->n++] = (struct page){url, len, targets, ps->targets.len - targets, ntargets,
                                   output_end};
    return 0;
}

/* Reads the pages of `tsv` (len bytes, after `header` bytes), before anything is timed. */
static int read_pages(struct pages *ps, const char *tsv, size_t len, size_t header)
{
    const char *src = NULL;
    size_t src_len = 0, ntargets = 0, targets = 0;
    uint64_t end_of_page = header;
    int rc = 0;
    for (size_t at = header; rc == 0 && at < len;) {
        const char *line = tsv + at;
        const char *nl = memchr(line, '\n', len - at);
        size_t n = nl != NULL ? (size_t)(nl - line) : len - at;
        const char *tab = memchr(line, '\t', n);
        if (tab == NULL) {
            fprintf(stderr, "store_floor: byte %zu: a line without a tab\n", at);
            return -EINVAL;
        }
        size_t sl = (size_t)(tab - line);
        if (src != NULL && (sl != src_len || memcmp(line, src, sl) != 0)) {
            rc = add_page(ps, src, src_len, targets, ntargets, end_of_page);
            targets = ps->targets.len;
            ntargets = 0;
        }
        src = line;
        src_len = sl;
        if (rc == 0)
            rc = buf_append(&ps->targets, tab + 1, n - sl - 1);
        if (rc == 0)
            rc = buf_putc(&ps->targets, '\0');
        ntargets++;
        at += n + (nl != NULL);
        end_of_page = at;
    }
    if (rc == 0 && src != NULL)
        rc = add_page(ps, src, src_len, targets, ntargets, end_of_page);
    return rc;
}

/* A commit's outcome, handed back on the loop. */
static void committed(void *arg, int status)
{
    *(int *)arg = status;
}

/* One commit as the crawl makes it (crawl.c, maybe_commit): on the store's commit thread,
 * which checkpoints the WAL after it when the WAL has grown long (state.c,
 * checkpoint_if_long). state_commit_now does not: committing on this thread alone left
 * every checkpoint to the close, where a first run makes one per commit or two. Waited
 * for here. 0 or the commit's error. */
static int commit_on_thread(state *s, uv_loop_t *loop, const uint64_t whole[STATE_NFILES])
{
    int status = 1;
    int rc = state_commit(s, loop, whole, NULL, 0, committed, &status);
    if (rc != 0)
        return rc;
    while (status == 1)
        uv_run(loop, UV_RUN_ONCE);
    return status;
}

/* Puts every page into the store as a first run does, committing each `per_commit` pages
 * and at the end. The validators and the fingerprint vary with the page, as a server's
 * would. */
static int put_all(state *s, uv_loop_t *loop, const struct pages *ps, unsigned per_commit,
                   unsigned long *commits)
{
    static const unsigned char digest[DIGEST_SIZE]; /* the options' hash: any value */
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < ps->n; i++) {
        const struct page *pg = &ps->v[i];
        char etag[32];
        snprintf(etag, sizeof etag, "\"65a1b2c3-%zx\"", 0x12000 + i);
        struct state_page p = {
            .url = pg->url,
            .url_len = pg->url_len,
            .final_url = pg->url,
            .outcome = STATE_PAGE_OK,
            .status = 200,
            .etag = etag,
            .last_modified = "Sun, 06 Dec 2026 10:00:00 GMT",
            .has_body_hash = 1,
            .targets = ps->targets.data + pg->targets,
            .targets_len = pg->targets_len,
            .ntargets = pg->ntargets,
            .fetched_at = 1765015200,
            .changed_at = 1765015200,
            .output_end = pg->output_end,
        };
        memcpy(p.body_hash, &i, sizeof i < DIGEST_SIZE ? sizeof i : DIGEST_SIZE);
        memcpy(p.options_hash, digest, DIGEST_SIZE);
        rc = state_page_put(s, &p);
        int last = i + 1 == ps->n;
        if (rc == 0 && ((i + 1) % per_commit == 0 || last)) {
            uint64_t whole[STATE_NFILES] = {pg->output_end, 0, 0};
            ++*commits;
            /* The last as close_state (run.c) makes it: here, the commit thread idle. */
            rc = last ? state_commit_now(s, whole, NULL, 1) : commit_on_thread(s, loop, whole);
        }
    }
    return rc;
}

int main(int argc, char **argv)
{
    unsigned per_commit = 100;
    int i = 1;
    if (argc > 2 && strcmp(argv[1], "-n") == 0) {
        char *end;
        unsigned long n = strtoul(argv[2], &end, 10);
        if (*end != '\0' || n == 0 || n > 1000000) {
            fprintf(stderr, "store_floor: -n %s: pages a commit, 1 to 1000000\n", argv[2]);
            return 2;
        }
        per_commit = (unsigned)n;
        i = 3;
    }
    if (argc - i != 2) {
        fprintf(stderr, "usage: store_floor [-n PAGES_PER_COMMIT] OUTPUT.tsv STATE.db\n");
        return 2;
    }
    const char *tsv_path = argv[i], *db_path = argv[i + 1];
    struct stat st;
    if (stat(db_path, &st) == 0) {
        fprintf(stderr, "store_floor: %s exists: it times a new store\n", db_path);
        return 2;
    }
    size_t len = 0;
    char *tsv = slurp(tsv_path, &len);
    if (tsv == NULL) {
        fprintf(stderr, "store_floor: cannot read %s: %s\n", tsv_path, strerror(errno));
        return 2;
    }
    static const char header[] = "source_url\tparsed_url\n";
    size_t skip = len >= sizeof header - 1 && memcmp(tsv, header, sizeof header - 1) == 0
                      ? sizeof header - 1
                      : 0;
    struct pages ps = {0};
    buf_init(&ps.targets);
    int rc = read_pages(&ps, tsv, len, skip);
    free(tsv);
    /* An output without a pair (a crawl that failed, a header alone) would time a store
     * with nothing in it and print a floor of about zero as if it were one. */
    if (rc == 0 && ps.n == 0) {
        fprintf(stderr, "store_floor: %s: no pages (no source<TAB>target line)\n", tsv_path);
        rc = -EINVAL;
    }
    char why[512] = "out of memory reading the output";

    unsigned long commits = 0;
    uv_loop_t loop;
    int loop_rc = uv_loop_init(&loop);
    if (rc == 0 && loop_rc != 0) {
        rc = loop_rc;
        snprintf(why, sizeof why, "cannot start an event loop: %s", uv_strerror(loop_rc));
    }
    double c0 = cpu_ms(), w0 = wall_ms();
    state *s = NULL;
    if (rc == 0)
        rc = state_open(db_path, &s, why, sizeof why);
    if (rc == 0) {
        static const unsigned char digest[DIGEST_SIZE];
        struct state_files start = {.kept = {1}, .bytes = {skip}};
        rc = state_run_begin(s, 0, digest, digest, &start, 1765015200);
        if (rc == 0)
            rc = put_all(s, &loop, &ps, per_commit, &commits);
        if (rc != 0)
            snprintf(why, sizeof why, "%s", state_error(s));
        state_detach(s); /* after a failed commit on the thread, too */
        uv_run(&loop, UV_RUN_DEFAULT);
        state_close(s);
    }
    double c1 = cpu_ms(), w1 = wall_ms();
    if (loop_rc == 0)
        uv_loop_close(&loop);

    for (size_t k = 0; k < ps.n; k++)
        free(ps.v[k].url);
    free(ps.v);
    buf_finish(&ps.targets);
    if (rc != 0) {
        fprintf(stderr, "store_floor: %s\n", rc == -EINVAL ? "bad input" : why);
        return 2;
    }
    printf("pages %zu commits %lu cpu_ms %.2f wall_ms %.2f\n", ps.n, commits, c1 - c0, w1 - w0);
    return 0;
}
