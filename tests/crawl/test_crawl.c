/* Tests of the crawl pipeline, driven in-process through the run's own wiring (run.c: the
 * scheduler, http client, writer, extractor and one run task, as areq runs them) against the loopback fixture server (tests/fixture/
 * server.py, started once for the group with a request log). Each case runs on a fresh loop
 * with its own list and output file, and must leave nothing behind: uv_loop_close() returns
 * 0 at teardown. URLs carry a per-case path so that the shared request log tells cases apart. */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <unistd.h>
#include <cmocka.h>
#include <curl/curl.h>
#include <libpsl.h>

#include "crawl.h"
#include "fixture_server.h"
#include "log.h"
#include "options.h"
#include "run.h"
#include "task.h"
#include "writer.h"

/* ---- the fixture server, one for the group ---- */

static struct fixture_server server;
static int port;
static char server_dir[] = "/tmp/areq-test-crawl-XXXXXX";
static char server_log[sizeof server_dir + 16];

static int start_server(void **state)
{
    (void)state;
    if (mkdtemp(server_dir) == NULL)
        return -1;
    snprintf(server_log, sizeof server_log, "%s/requests", server_dir);
    char *args[] = {"--log", server_log, NULL};
    if (fixture_server_start(&server, args) != 0)
        return -1;
    port = server.port;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    /* Failures of single URLs are expected here; keep the test output to cmocka's own. */
    log_set_level(LOG_QUIET);
    return 0;
}

static int stop_server(void **state)
{
    (void)state;
    fixture_server_stop(&server);
    curl_global_cleanup();
    unlink(server_log);
    rmdir(server_dir);
    return 0;
}

/* ---- one run, through run.c ---- */

struct env {
    struct areq_run run;
    struct options opt;
    int running;         /* run_init succeeded: teardown must run_finish */
    uv_timer_t watchdog; /* stops a run that hangs, so that the case fails instead */
    uv_timer_t poll;     /* optional: a case's own timer */
    int poll_started;
    int watchdog_fired;
    uint64_t stopped_at; /* uv_hrtime() when a case called crawl_stop, or 0 */
    char dir[64];
    char list_path[96];
    char out_path[96];
    char *inputs[1];
};

enum { WATCHDOG_MS = 20000 };

static void close_if_open(uv_handle_t *h)
{
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static void on_watchdog(uv_timer_t *h)
{
    struct env *e = h->data;
    e->watchdog_fired = 1;
    crawl_stop(&e->run.crawl, -ETIMEDOUT);
}

static int setup(void **state)
{
    struct env *e = calloc(1, sizeof *e);
    assert_non_null(e);
    snprintf(e->dir, sizeof e->dir, "%s/case-XXXXXX", server_dir);
    assert_non_null(mkdtemp(e->dir));
    snprintf(e->list_path, sizeof e->list_path, "%s/list", e->dir);
    snprintf(e->out_path, sizeof e->out_path, "%s/out", e->dir);
    e->inputs[0] = e->list_path;
    *state = e;
    return 0;
}

static int teardown(void **state)
{
    struct env *e = *state;
    if (e->running) {
        /* The case's own handles; run_finish closes the loop and checks it is empty. */
        close_if_open((uv_handle_t *)&e->watchdog);
        if (e->poll_started)
            close_if_open((uv_handle_t *)&e->poll);
        run_finish(&e->run);
        assert_false(e->run.leaked_handles);
    }
    unlink(e->list_path);
    unlink(e->out_path);
    rmdir(e->dir);
    free(e);
    return 0;
}

/* The options of a case: the list, `output`, `concurrency` permits, no retries, no header
 * line (the cases compare blocks) and no status line. */
static void set_options(struct env *e, const char *output, size_t concurrency)
{
    options_init(&e->opt);
    e->opt.inputs = e->inputs;
    e->opt.ninputs = 1;
    e->opt.output = output;
    e->opt.concurrency = concurrency;
    e->opt.retries = 0;
    e->opt.header = 0;
    e->opt.progress = 0;
    e->opt.timeout_s = 10;
    e->opt.connect_timeout_s = 5;
    e->opt.max_redirs = 5;
    e->opt.user_agent = "areq-test";
}

/* Starts a run with e->opt; the case then runs the loop. */
static void start_run(struct env *e)
{
    assert_int_equal(run_init(&e->run, &e->opt, NULL), EXIT_ALL_DONE);
    e->running = 1;
    assert_int_equal(uv_timer_init(&e->run.loop, &e->watchdog), 0);
    e->watchdog.data = e;
    uv_timer_start(&e->watchdog, on_watchdog, WATCHDOG_MS, 0);
    uv_unref((uv_handle_t *)&e->watchdog); /* must not keep a finished run's loop alive */
}

/* A case's own timer on the run's loop, firing after `ms` (and every `repeat` ms). It does
 * not keep a finished run's loop alive either. */
static void start_poll(struct env *e, uv_timer_cb cb, uint64_t ms, uint64_t repeat)
{
    assert_int_equal(uv_timer_init(&e->run.loop, &e->poll), 0);
    e->poll_started = 1;
    e->poll.data = e;
    uv_timer_start(&e->poll, cb, ms, repeat);
    uv_unref((uv_handle_t *)&e->poll);
}

/* Writes the list: one line per argument, up to NULL. */
static void write_list(struct env *e, ...)
{
    FILE *f = fopen(e->list_path, "w");
    assert_non_null(f);
    va_list ap;
    va_start(ap, e);
    for (const char *line; (line = va_arg(ap, const char *)) != NULL;)
        fprintf(f, "%s\n", line);
    va_end(ap);
    assert_int_equal(fclose(f), 0);
}

/* A URL on the fixture server, in a static ring of buffers so that a list can be written
 * from several calls in one expression. */
static const char *at(const char *fmt, ...)
{
    static char ring[64][512];
    static size_t next;
    char *u = ring[next++ % 64];
    int n = snprintf(u, sizeof ring[0], "http://127.0.0.1:%d", port);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(u + n, sizeof ring[0] - (size_t)n, fmt, ap);
    va_end(ap);
    return u;
}

/* Starts the run on `output` with `concurrency` permits; the case then runs the loop. */
static void start_crawl(struct env *e, const char *output, size_t concurrency)
{
    set_options(e, output, concurrency);
    start_run(e);
}

/* Runs the loop until it ends, which it must do by itself once the run is over. */
static void run_crawl(struct env *e)
{
    uv_run(&e->run.loop, UV_RUN_DEFAULT);
    assert_false(e->watchdog_fired);
    assert_true(task_is_done(&e->run.crawl.t));
}

static double now_s(void)
{
    return (double)uv_hrtime() / 1e9;
}

/* The whole of a file (caller frees), NUL-terminated. */
static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    size_t cap = 4096, n = 0;
    char *data = malloc(cap);
    assert_non_null(data);
    for (size_t got; (got = fread(data + n, 1, cap - n - 1, f)) > 0;) {
        n += got;
        if (cap - n - 1 == 0) {
            cap *= 2;
            data = realloc(data, cap);
            assert_non_null(data);
        }
    }
    fclose(f);
    data[n] = '\0';
    if (len != NULL)
        *len = n;
    return data;
}

/* ---- reading the server's request log ---- */

struct logged {
    int is_req; /* REQ, else END */
    char target[512];
    double when;
};

/* Calls fn for every REQ and END line whose target contains `tag`, in log order. */
static void scan_log(const char *tag, void (*fn)(const struct logged *, void *), void *ctx)
{
    char *text = slurp(server_log, NULL);
    for (char *line = strtok(text, "\n"); line != NULL; line = strtok(NULL, "\n")) {
        char *field[8];
        size_t nf = 0;
        for (char *p = line; nf < 8;) {
            field[nf++] = p;
            p = strchr(p, '\t');
            if (p == NULL)
                break;
            *p++ = '\0';
        }
        /* REQ conn method target time | END conn method target status time */
        int is_req = strcmp(field[0], "REQ") == 0;
        if ((is_req && nf != 5) || (!is_req && (strcmp(field[0], "END") != 0 || nf != 6)))
            continue;
        if (strstr(field[3], tag) == NULL)
            continue;
        struct logged l = {.is_req = is_req, .when = strtod(field[nf - 1], NULL)};
        snprintf(l.target, sizeof l.target, "%s", field[3]);
        fn(&l, ctx);
    }
    free(text);
}

struct count_req {
    const char *target;
    int n;
};

static void count_one(const struct logged *l, void *ctx)
{
    struct count_req *c = ctx;
    if (l->is_req && strcmp(l->target, c->target) == 0)
        c->n++;
}

/* How many times the server was asked for `target` (a path with its query). */
static int requests_for(const char *target)
{
    struct count_req c = {.target = target};
    scan_log(target, count_one, &c);
    return c.n;
}

/* ---- checking the output ---- */

struct expect {
    const char *source;      /* as the crawl normalises it */
    const char *targets[8];  /* every pair it must write, any order; NULL-terminated */
    int seen[8];
    int block_done;          /* a later line came from another source */
};

/* Checks that `out` is a concatenation of whole blocks, one per expected source (in any
 * order), each block's lines contiguous and its targets exactly the expected ones, once
 * each. Returns the number of lines. */
static size_t check_blocks(const char *out, size_t len, struct expect *ex, size_t nex)
{
    if (len > 0)
        assert_int_equal(out[len - 1], '\n');
    size_t lines = 0;
    struct expect *current = NULL;
    for (const char *p = out; p < out + len;) {
        const char *nl = memchr(p, '\n', (size_t)(out + len - p));
        assert_non_null(nl);
        const char *tab = memchr(p, '\t', (size_t)(nl - p));
        if (tab == NULL || memchr(tab + 1, '\t', (size_t)(nl - tab - 1)) != NULL)
            fail_msg("line %zu is not source<TAB>target: %.*s", lines + 1, (int)(nl - p), p);
        size_t slen = (size_t)(tab - p), tlen = (size_t)(nl - tab - 1);
        struct expect *x = NULL;
        for (size_t i = 0; i < nex; i++) {
            if (strlen(ex[i].source) == slen && memcmp(ex[i].source, p, slen) == 0)
                x = &ex[i];
        }
        if (x == NULL)
            fail_msg("line %zu has an unexpected source: %.*s", lines + 1, (int)(nl - p), p);
        if (x != current) {
            if (current != NULL)
                current->block_done = 1;
            if (x->block_done)
                fail_msg("the lines of %s are not contiguous", x->source);
            current = x;
        }
        size_t k = 0;
        while (x->targets[k] != NULL &&
               !(strlen(x->targets[k]) == tlen && memcmp(x->targets[k], tab + 1, tlen) == 0))
            k++;
        if (x->targets[k] == NULL)
            fail_msg("%s: unexpected target %.*s", x->source, (int)tlen, tab + 1);
        if (x->seen[k]++)
            fail_msg("%s: target %s written twice", x->source, x->targets[k]);
        lines++;
        p = nl + 1;
    }
    for (size_t i = 0; i < nex; i++) {
        for (size_t k = 0; ex[i].targets[k] != NULL; k++) {
            if (!ex[i].seen[k])
                fail_msg("%s: target %s missing", ex[i].source, ex[i].targets[k]);
        }
    }
    return lines;
}

/* A port nothing listens on: one that was free a moment ago. */
static int refused_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(s >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(getsockname(s, (struct sockaddr *)&a, &len), 0);
    close(s);
    return ntohs(a.sin_port);
}

/* ---- cases ---- */

/* Good pages, a duplicate, a bad line, a 404 and a refused connection in one list. */
static void test_mixed_list(void **state)
{
    struct env *e = *state;
    char refused[64];
    snprintf(refused, sizeof refused, "http://127.0.0.1:%d/page/mixed/refused", refused_port());
    /* Page one repeats a generated link, so it has 2 unique targets out of 3 hrefs. */
    const char *one = at("/page/mixed/one?links=2&href=l0.html");
    const char *two = at("/page/mixed/two?links=3");
    const char *three = at("/page/mixed/three?links=4&href=l3.html&href=l1.html");
    char dup[600];
    snprintf(dup, sizeof dup, "   %s  ", one);
    write_list(e, one, two, "# a comment is no line", dup, "not a url", three,
               at("/status/404?mixed"), refused, NULL);
    start_crawl(e, e->out_path, 4);
    run_crawl(e);

    assert_int_equal(e->run.crawl.t.result, 0);
    assert_int_equal(e->run.crawl.input_error, 0);
    assert_int_equal(e->run.crawl.stats.ok, 3);
    assert_int_equal(e->run.crawl.stats.failed, 3);
    assert_int_equal(e->run.crawl.stats.skipped, 0);
    assert_int_equal(e->run.crawl.stats.pairs, 2 + 3 + 4);
    assert_int_equal(e->run.write_error, 0);

    struct expect ex[] = {
        {.source = one, .targets = {at("/page/mixed/l0.html"), at("/page/mixed/l1.html")}},
        {.source = two,
         .targets = {at("/page/mixed/l0.html"), at("/page/mixed/l1.html"),
                     at("/page/mixed/l2.html")}},
        {.source = three,
         .targets = {at("/page/mixed/l0.html"), at("/page/mixed/l1.html"),
                     at("/page/mixed/l2.html"), at("/page/mixed/l3.html")}},
    };
    size_t len;
    char *out = slurp(e->out_path, &len);
    assert_null(strstr(out, "source_url")); /* no header: the caller writes that */
    assert_int_equal(check_blocks(out, len, ex, 3), e->run.crawl.stats.pairs);
    free(out);

    assert_int_equal(requests_for("/page/mixed/one?links=2&href=l0.html"), 1);
    assert_int_equal(requests_for("/page/mixed/two?links=3"), 1);
    assert_int_equal(requests_for("/status/404?mixed"), 1);
}

/* A fetched body that is not HTML is counted as skipped and never scanned. */
static void test_not_html_is_skipped(void **state)
{
    struct env *e = *state;
    const char *page = at("/page/skip/p?links=1");
    write_list(e, at("/binary"), at("/text"), page, NULL);
    start_crawl(e, e->out_path, 4);
    run_crawl(e);

    assert_int_equal(e->run.crawl.t.result, 0);
    assert_int_equal(e->run.crawl.stats.skipped, 2);
    assert_int_equal(e->run.crawl.stats.ok, 1);
    assert_int_equal(e->run.crawl.stats.failed, 0);
    assert_int_equal(e->run.crawl.stats.pairs, 1);
    struct expect ex[] = {{.source = page, .targets = {at("/page/skip/l0.html")}}};
    size_t len;
    char *out = slurp(e->out_path, &len);
    assert_null(strstr(out, "from-binary"));
    assert_null(strstr(out, "from-text"));
    assert_int_equal(check_blocks(out, len, ex, 1), 1);
    free(out);
}

enum { SLOW_N = 6, SLOW_PERMITS = 2 };
#define SLOW_DELAY 0.2

struct overlap {
    double req[SLOW_N * 2];
    size_t n;
};

static void note_req(const struct logged *l, void *ctx)
{
    struct overlap *o = ctx;
    if (l->is_req && o->n < sizeof o->req / sizeof o->req[0])
        o->req[o->n++] = l->when;
}

/* --concurrency bounds the transfers in flight: six 0.2 s pages two at a time take three
 * rounds, and the server never has more than two of them at once. */
static void test_concurrency_bounds_transfers(void **state)
{
    struct env *e = *state;
    FILE *f = fopen(e->list_path, "w");
    assert_non_null(f);
    for (int i = 0; i < SLOW_N; i++)
        fprintf(f, "%s\n", at("/slow?delay=0.2&k=bound-%d", i));
    assert_int_equal(fclose(f), 0);
    double t0 = now_s();
    start_crawl(e, e->out_path, SLOW_PERMITS);
    run_crawl(e);
    double took = now_s() - t0;

    assert_int_equal(e->run.crawl.t.result, 0);
    assert_int_equal(e->run.crawl.stats.ok, SLOW_N);
    assert_int_equal(e->run.crawl.stats.pairs, SLOW_N);
    assert_true(took >= SLOW_DELAY * SLOW_N / SLOW_PERMITS);

    /* A page is answered no sooner than SLOW_DELAY after its request was read, and a permit
     * comes free only once it has been, so the requests read within any SLOW_DELAY window
     * were all in flight together. */
    struct overlap o = {.n = 0};
    scan_log("k=bound-", note_req, &o);
    assert_int_equal(o.n, SLOW_N);
    size_t most = 0;
    for (size_t i = 0; i < o.n; i++) {
        size_t together = 0;
        for (size_t j = 0; j < o.n; j++)
            together += o.req[j] <= o.req[i] && o.req[j] > o.req[i] - SLOW_DELAY;
        if (together > most)
            most = together;
    }
    assert_int_equal(most, SLOW_PERMITS);
}

enum { POLL_MS = 10 };

/* Stops the run once the three fast pages are in. */
static void on_poll(uv_timer_t *h)
{
    struct env *e = h->data;
    if (e->run.crawl.stats.ok < 3)
        return;
    uv_timer_stop(h);
    e->stopped_at = uv_hrtime();
    crawl_stop(&e->run.crawl, -ECANCELED);
}

/* Stopping a run cancels the stalled transfers at once and keeps the blocks already made. */
static void test_stop_cancels_stalled_transfers(void **state)
{
    struct env *e = *state;
    const char *fast[] = {at("/page/stop/a?links=1"), at("/page/stop/b?links=2"),
                          at("/page/stop/c?links=3")};
    write_list(e, at("/stall?hold=30&stop=1"), at("/stall?hold=30&stop=2"),
               at("/stall?hold=30&stop=3"), fast[0], fast[1], fast[2], NULL);
    start_crawl(e, e->out_path, 6);
    start_poll(e, on_poll, POLL_MS, POLL_MS);
    run_crawl(e);
    double since_stop = (double)(uv_hrtime() - e->stopped_at) / 1e9;

    assert_true(e->stopped_at != 0);
    assert_true(since_stop < 10.0); /* the stalls hold 30 s; 10 s spares a busy machine */
    assert_int_equal(e->run.crawl.t.result, -ECANCELED);
    assert_int_equal(e->run.crawl.stats.ok, 3);
    assert_int_equal(e->run.crawl.stats.failed, 0); /* a cancelled transfer is not a failed URL */
    assert_int_equal(e->run.crawl.stats.pairs, 1 + 2 + 3);
    struct expect ex[] = {
        {.source = fast[0], .targets = {at("/page/stop/l0.html")}},
        {.source = fast[1], .targets = {at("/page/stop/l0.html"), at("/page/stop/l1.html")}},
        {.source = fast[2],
         .targets = {at("/page/stop/l0.html"), at("/page/stop/l1.html"),
                     at("/page/stop/l2.html")}},
    };
    size_t len;
    char *out = slurp(e->out_path, &len);
    assert_int_equal(check_blocks(out, len, ex, 3), 6);
    assert_null(strstr(out, "stall"));
    free(out);
}

static void on_stop_timer(uv_timer_t *h)
{
    struct env *e = h->data;
    e->stopped_at = uv_hrtime();
    crawl_stop(&e->run.crawl, -ECANCELED);
}

/* Stopping a run whose list is waiting for a permit (one, held by a stalled transfer) ends it
 * just as promptly, and admits nothing more. */
static void test_stop_while_waiting_for_a_permit(void **state)
{
    struct env *e = *state;
    write_list(e, at("/stall?hold=30&permit=1"), at("/page/permit/a?links=1"),
               at("/page/permit/b?links=1"), NULL);
    start_crawl(e, e->out_path, 1);
    start_poll(e, on_stop_timer, 200, 0);
    run_crawl(e);

    assert_true(e->stopped_at != 0);
    assert_true((double)(uv_hrtime() - e->stopped_at) / 1e9 < 10.0); /* as above */
    assert_int_equal(e->run.crawl.t.result, -ECANCELED);
    assert_int_equal(e->run.crawl.stats.ok, 0);
    assert_int_equal(e->run.crawl.stats.failed, 0);
    assert_int_equal(requests_for("/page/permit/a?links=1"), 0);
    size_t len;
    char *out = slurp(e->out_path, &len);
    assert_int_equal(len, 0);
    free(out);
}

/* Review of issue 13 point 3 (the feeder and the dispatcher): a run stopped at any moment
 * gives back everything its tasks held. Each stop lands in another state of the three tasks
 * (the run not yet started, the feeder reading or waiting for room in a full frontier, the
 * dispatcher waiting for robots.txt, a permit, a politeness delay or a change), and after
 * each one every permit is back exactly once, nothing is left handed out of the frontier,
 * the list is closed, and both children have ended. */
enum { STOP_LIST_STALLS = 3, STOP_LIST_PAGES = 1300 };

static void stop_at(uint64_t ms, size_t permits, int recurse, double delay_s)
{
    void *state = NULL;
    assert_int_equal(setup(&state), 0);
    struct env *e = state;
    FILE *f = fopen(e->list_path, "w");
    assert_non_null(f);
    for (int i = 0; i < STOP_LIST_STALLS; i++)
        fprintf(f, "%s\n", at("/stall?hold=30&anystop=%d", i));
    /* Another origin: with both permits held by the stalls, its robots.txt waits for one. */
    fprintf(f, "http://localhost:%d/page/anystop/other?links=2\n", port);
    for (int i = 0; i < STOP_LIST_PAGES; i++)
        fprintf(f, "%s\n", at("/page/anystop/%d/p?links=2", i));
    assert_int_equal(fclose(f), 0);
    set_options(e, e->out_path, permits);
    e->opt.depth = recurse;
    e->opt.delay_s = delay_s;
    start_run(e);
    uv_update_time(&e->run.loop); /* from now, not from when the loop was made */
    start_poll(e, on_stop_timer, ms, 0);
    run_crawl(e);

    crawl *c = &e->run.crawl;
    assert_int_equal(c->t.result, -ECANCELED);
    assert_true(task_is_done(&c->feeder));
    assert_true(task_is_done(&c->dispatcher));
    assert_int_equal(c->slots.permits, permits);
    assert_null(c->slots.waiters.head);
    assert_null(c->admitting);
    assert_null(c->robots_host);
    assert_null(c->in);
    struct frontier_stats fs;
    frontier_get_stats(c->frontier, &fs);
    assert_int_equal(fs.in_flight, 0);
    assert_int_equal(c->stats.started, c->stats.finished);
    assert_int_equal(teardown(&state), 0);
}

static void test_stop_in_any_state_gives_everything_back(void **state)
{
    (void)state;
    static const uint64_t at_ms[] = {0, 1, 2, 5, 10, 20, 50, 150};
    for (size_t i = 0; i < sizeof at_ms / sizeof at_ms[0]; i++) {
        stop_at(at_ms[i], 2, 0, 0);
        stop_at(at_ms[i], 2, 1, 0);
        stop_at(at_ms[i], 2, 1, 0.05);
        stop_at(at_ms[i], 1, 1, 0); /* a robots.txt waits for the one permit */
    }
}

/* A <base href> after some links applies to them too: the page is scanned again. A second
 * <base> is ignored. */
static void test_late_base_applies_to_earlier_links(void **state)
{
    struct env *e = *state;
    /* <a href="one.html">1</a><a href="/root.html">r</a>
     * <base href="http://example.com/base/dir/"><a href="two.html">2</a>
     * <base href="/other/"><a href="three.html">3</a><a href="one.html">again</a> */
    const char *page = at(
        "/html/late-base/index.html?body="
        "%%3Ca%%20href%%3D%%22one.html%%22%%3E1%%3C%%2Fa%%3E"
        "%%3Ca%%20href%%3D%%22%%2Froot.html%%22%%3Er%%3C%%2Fa%%3E"
        "%%3Cbase%%20href%%3D%%22http%%3A%%2F%%2Fexample.com%%2Fbase%%2Fdir%%2F%%22%%3E"
        "%%3Ca%%20href%%3D%%22two.html%%22%%3E2%%3C%%2Fa%%3E"
        "%%3Cbase%%20href%%3D%%22%%2Fother%%2F%%22%%3E"
        "%%3Ca%%20href%%3D%%22three.html%%22%%3E3%%3C%%2Fa%%3E"
        "%%3Ca%%20href%%3D%%22one.html%%22%%3Eagain%%3C%%2Fa%%3E");
    write_list(e, page, NULL);
    start_crawl(e, e->out_path, 2);
    run_crawl(e);

    assert_int_equal(e->run.crawl.t.result, 0);
    assert_int_equal(e->run.crawl.stats.ok, 1);
    assert_int_equal(e->run.crawl.stats.pairs, 4);
    struct expect ex[] = {{.source = page,
                           .targets = {"http://example.com/base/dir/one.html",
                                       "http://example.com/root.html",
                                       "http://example.com/base/dir/two.html",
                                       "http://example.com/base/dir/three.html"}}};
    size_t len;
    char *out = slurp(e->out_path, &len);
    assert_int_equal(check_blocks(out, len, ex, 1), 4);
    /* In document order. */
    const char *a = strstr(out, "\thttp://example.com/base/dir/one.html\n"),
               *b = strstr(out, "\thttp://example.com/root.html\n"),
               *c = strstr(out, "\thttp://example.com/base/dir/two.html\n"),
               *d = strstr(out, "\thttp://example.com/base/dir/three.html\n");
    assert_true(a != NULL && a < b && b < c && c < d);
    free(out);
}

/* An output that cannot be written stops the run (as run.c wires it), stalled transfers and
 * all, and the loop ends. */
static void test_write_error_stops_the_run(void **state)
{
    struct env *e = *state;
    if (access("/dev/full", W_OK) != 0)
        skip();
    write_list(e, at("/page/full/a?links=2"), at("/stall?hold=30&full=1"), NULL);
    double t0 = now_s();
    start_crawl(e, "/dev/full", 4);
    run_crawl(e);

    assert_true(now_s() - t0 < 10.0); /* the stall holds 30 s; 10 s spares a busy machine */
    assert_int_equal(e->run.write_error, UV_ENOSPC);
    assert_int_equal(writer_error(e->run.out), UV_ENOSPC);
    assert_int_equal(e->run.crawl.t.result, UV_ENOSPC);
}

static void *no_psl(void)
{
    return NULL;
}

/* Issue 13 point 9: --scope domain without a Public Suffix List is a usage error before
 * anything is fetched or written, not a quiet fall back to host scope. */
static void test_domain_scope_without_psl_is_a_usage_error(void **state)
{
    struct env *e = *state;
    write_list(e, at("/page/nopsl/a?links=1"), NULL);
    set_options(e, e->out_path, 2);
    e->opt.depth = 1;
    e->opt.scope = OPTIONS_SCOPE_DOMAIN;
    struct run_hooks hooks = {.load_psl = no_psl};
    assert_int_equal(run_init(&e->run, &e->opt, &hooks), EXIT_USAGE);
    assert_int_equal(access(e->out_path, F_OK), -1);
    assert_int_equal(requests_for("/page/nopsl/a?links=1"), 0);
}

/* The crawl itself refuses domain scope without the list it needs. */
static void test_crawl_domain_scope_needs_psl(void **state)
{
    (void)state;
    crawl c;
    struct crawl_options co = {.concurrency = 1, .depth = 1, .scope = SCOPE_DOMAIN};
    assert_int_equal(crawl_init(&c, &co), -EINVAL);
}

/* Issue 16 item 10: once the frontier's URLs would exceed the budget, links are turned
 * away and counted, and the frontier stays within it; a link is never marked seen when it
 * was turned away. Needs no loop: crawl_follow() only queues. */
static void test_queue_budget_stops_admission(void **state)
{
    (void)state;
    enum { BUDGET = 8192, LINKS = 1000 };
    crawl c;
    struct crawl_options co = {.concurrency = 1, .depth = 3, .scope = SCOPE_ANY,
                               .queue_budget = BUDGET};
    assert_int_equal(crawl_init(&c, &co), 0);
    size_t admitted = 0;
    char url[64];
    for (int i = 0; i < LINKS; i++) {
        int n = snprintf(url, sizeof url, "http://127.0.0.1:9/budget/%04d.html", i);
        int rc = crawl_follow(&c, url, (size_t)n, 1, NULL, NULL);
        assert_true(rc == 0 || rc == 1);
        admitted += (size_t)rc;
    }
    size_t one = frontier_item_bytes(strlen(url));
    assert_true(admitted > 0);
    assert_int_equal(admitted, BUDGET / one);
    assert_int_equal(c.stats.queued, admitted);
    assert_int_equal(c.stats.over_budget, LINKS - admitted);
    assert_true(frontier_bytes(c.frontier) <= BUDGET);
    struct frontier_stats fs;
    frontier_get_stats(c.frontier, &fs);
    assert_int_equal(fs.queued, admitted);
    /* Turned away, not forgotten: with room again it is queued. */
    c.opt.queue_budget = (size_t)BUDGET + one;
    int n = snprintf(url, sizeof url, "http://127.0.0.1:9/budget/%04d.html", LINKS - 1);
    assert_int_equal(crawl_follow(&c, url, (size_t)n, 1, NULL, NULL), 1);
    crawl_finish(&c);
}

/* The default applies when the caller leaves the budget at 0. */
static void test_queue_budget_default(void **state)
{
    (void)state;
    crawl c;
    struct crawl_options co = {.concurrency = 1, .depth = 1, .scope = SCOPE_ANY};
    assert_int_equal(crawl_init(&c, &co), 0);
    assert_int_equal(c.opt.queue_budget, CRAWL_QUEUE_BUDGET_DEFAULT);
    crawl_finish(&c);
}

/* Issue 16 item 2: the Public Suffix List gives every IPv4 address ending in ".0.1" the
 * registrable domain "0.1"; --scope domain must keep each address to itself. */
static void test_domain_key_of_addresses(void **state)
{
    (void)state;
    psl_ctx_t *psl = psl_latest(NULL);
    assert_non_null(psl);
    static const struct {
        const char *host, *key;
    } cases[] = {
        {"127.0.0.1", "127.0.0.1"},
        {"10.0.0.1", "10.0.0.1"},
        {"192.168.0.1", "192.168.0.1"},
        {"[::1]", "[::1]"},
        {"[2001:db8::1]", "[2001:db8::1]"},
        {"www.example.co.uk", "example.co.uk"},
        {"a.b.example.com", "example.com"},
        {"localhost", "localhost"},
        {"co.uk", "co.uk"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        assert_string_equal(crawl_domain_key(psl, cases[i].host), cases[i].key);
    assert_string_equal(crawl_domain_key(NULL, "www.example.com"), "www.example.com");
    psl_free(psl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_domain_key_of_addresses),
        cmocka_unit_test_setup_teardown(test_mixed_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_html_is_skipped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrency_bounds_transfers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_cancels_stalled_transfers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_while_waiting_for_a_permit, setup, teardown),
        cmocka_unit_test(test_stop_in_any_state_gives_everything_back),
        cmocka_unit_test_setup_teardown(test_late_base_applies_to_earlier_links, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_write_error_stops_the_run, setup, teardown),
        cmocka_unit_test_setup_teardown(test_domain_scope_without_psl_is_a_usage_error, setup,
                                        teardown),
        cmocka_unit_test(test_crawl_domain_scope_needs_psl),
        cmocka_unit_test(test_queue_budget_stops_admission),
        cmocka_unit_test(test_queue_budget_default),
    };
    return cmocka_run_group_tests_name("crawl", tests, start_server, stop_server);
}
