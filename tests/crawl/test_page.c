/* Tests of one page (page.h) against the loopback fixture server (tests/fixture/server.py,
 * started once for the group): the page fetches, scans and writes, and its callback gets
 * what happened. Each case runs on a fresh loop, client, writer and output file, and must
 * leave nothing behind: uv_loop_close() returns 0 at teardown. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <curl/curl.h>

#include "digest.h"
#include "fixture_server.h"
#include "http.h"
#include "links.h"
#include "log.h"
#include "fingerprint.h"
#include "page.h"
#include "seen.h"
#include "task.h"
#include "test_loop.h"
#include "url.h"
#include "writer.h"

static struct fixture_server server;
static int port;

static int start_server(void **state)
{
    (void)state;
    if (fixture_server_start(&server, NULL) != 0)
        return -1;
    port = server.port;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    log_set_level(LOG_QUIET); /* pages name their failures on stderr; keep cmocka's own */
    return 0;
}

static int stop_server(void **state)
{
    (void)state;
    fixture_server_stop(&server);
    curl_global_cleanup();
    return 0;
}

/* What the callback saw, copied out of the page's result. */
struct seen_result {
    int called;
    enum page_outcome outcome;
    size_t pairs, bad, retries;
    int nofollow;
    char follow[1024];  /* the links to follow, NUL-separated */
    size_t follow_len;
    char kind[32], error[128], found_on[64];
    long status;
    unsigned attempts;
    void *tag;
    /* issue 14: what a state store would keep */
    char final_url[256], etag[300], last_modified[64];
    long http_status;
    int unsolicited_304;
    int has_body_hash;
    unsigned char body_hash[DIGEST_SIZE];
    char targets[1024];
    size_t targets_len;
};

struct env {
    uv_loop_t loop;
    task_sched sched;
    http_client *client;
    struct http_options http_opt;
    links_extractor *extractor;
    writer *out;
    char dir[64];
    char out_path[96];
    uint64_t rng;
    struct page_config cfg;
    struct seen_result got;
    const char *if_none_match, *if_modified_since; /* for run_page's target */
};

static int setup(void **state)
{
    struct env *e = calloc(1, sizeof *e);
    assert_non_null(e);
    test_loop_open(&e->loop, &e->sched);
    e->http_opt = (struct http_options){
        .timeout_ms = 10000,
        .connect_timeout_ms = 5000,
        .max_redirs = 5,
        .max_connects = 100,
        .user_agent = "areq-test",
    };
    assert_int_equal(http_client_create(&e->loop, &e->http_opt, &e->client), 0);
    char err[256];
    assert_int_equal(links_extractor_create_flags(NULL, LINKS_REPORT_NOFOLLOW, &e->extractor, err,
                                                  sizeof err), 0);
    snprintf(e->dir, sizeof e->dir, "/tmp/areq-test-page-XXXXXX");
    assert_non_null(mkdtemp(e->dir));
    snprintf(e->out_path, sizeof e->out_path, "%s/out.tsv", e->dir);
    assert_int_equal(writer_open(&e->loop, e->out_path, 0, &e->out), 0);
    e->rng = 88172645463325252u;
    e->cfg = (struct page_config){
        .http = e->client,
        .out = e->out,
        .extractor = e->extractor,
        .format = FORMAT_TSV,
        .retries = 0,
        .rng = &e->rng,
    };
    *state = e;
    return 0;
}

static int teardown(void **state)
{
    struct env *e = *state;
    writer_destroy(e->out);
    links_extractor_destroy(e->extractor);
    http_client_destroy(e->client);
    task_sched_close(&e->sched);
    test_loop_drain_and_close(&e->loop);
    unlink(e->out_path);
    rmdir(e->dir);
    free(e);
    return 0;
}

static void on_page_done(void *arg, const struct page_target *target,
                         const struct page_result *r)
{
    struct seen_result *g = arg;
    g->called++;
    g->outcome = r->outcome;
    g->pairs = r->pairs;
    g->bad = r->bad;
    g->retries = r->retries;
    g->nofollow = r->nofollow;
    g->tag = target->tag;
    assert_true(r->follow.len <= sizeof g->follow);
    if (r->follow.len > 0)
        memcpy(g->follow, r->follow.data, r->follow.len);
    g->follow_len = r->follow.len;
    snprintf(g->final_url, sizeof g->final_url, "%s", r->final_url ? r->final_url : "(null)");
    snprintf(g->etag, sizeof g->etag, "%s", r->etag ? r->etag : "(null)");
    snprintf(g->last_modified, sizeof g->last_modified, "%s",
             r->last_modified ? r->last_modified : "(null)");
    g->http_status = r->status;
    g->unsolicited_304 = r->unsolicited_304;
    g->has_body_hash = r->has_body_hash;
    memcpy(g->body_hash, r->body_hash, DIGEST_SIZE);
    assert_true(r->targets.len <= sizeof g->targets);
    if (r->targets.len > 0)
        memcpy(g->targets, r->targets.data, r->targets.len);
    g->targets_len = r->targets.len;
    if (r->outcome == PAGE_FAILED) {
        snprintf(g->kind, sizeof g->kind, "%s", r->failure.kind);
        snprintf(g->error, sizeof g->error, "%s", r->failure.error);
        snprintf(g->found_on, sizeof g->found_on, "%s",
                 r->failure.found_on != NULL ? r->failure.found_on : "(null)");
        g->status = r->failure.status;
        g->attempts = r->failure.attempts;
    }
}

/* ---- a parent that runs one page, then closes the output ---- */

struct parent {
    task t;
    struct env *e;
    struct page_target target;
    int spawn_rc;
    int close_rc;
};

static enum task_step parent_step(task *t)
{
    struct parent *p = (struct parent *)t;
    switch (t->state) {
    case 0:
        p->spawn_rc = page_spawn(t->sched, t, &p->e->cfg, &p->target, on_page_done, &p->e->got);
        t->state = 1;
        if (task_join(t) == TASK_SUSPENDED)
            return TASK_PENDING;
        /* fall through */
    case 1:
        /* A cancellation wakes a join early; the page ends promptly. */
        if (t->live_children > 0) {
            if (task_join(t) == TASK_SUSPENDED)
                return TASK_PENDING;
        }
        t->state = 2;
        return writer_close(p->e->out, t);
    case 2:
        p->close_rc = task_wait_rc(t);
        return task_finish(t, 0);
    }
    return task_finish(t, -EINVAL);
}

static void cancel_parent(uv_timer_t *timer)
{
    struct parent *p = timer->data;
    task_cancel(&p->t, -ECANCELED);
}

static void on_timer_closed(uv_handle_t *h)
{
    (void)h;
}

/* Runs a page for `path` on the fixture server, cancelling it after `cancel_ms` (0:
 * never). The URL goes into `url`. */
static void run_page(struct env *e, const char *path, int follow, uint64_t cancel_ms,
                     char *url, size_t url_size)
{
    snprintf(url, url_size, "http://127.0.0.1:%d%s", port, path);
    static int tag;
    struct parent p = {
        .e = e,
        .target = {.url = url, .len = strlen(url), .depth = 1, .found_on = "list.txt:7",
                   .follow = follow, .tag = &tag, .if_none_match = e->if_none_match,
                   .if_modified_since = e->if_modified_since},
    };
    task_init(&p.t, parent_step, NULL);
    task_spawn(&e->sched, &p.t, NULL);
    uv_timer_t timer;
    if (cancel_ms > 0) {
        uv_timer_init(&e->loop, &timer);
        timer.data = &p;
        uv_timer_start(&timer, cancel_parent, cancel_ms, 0);
    }
    uv_run(&e->loop, UV_RUN_DEFAULT);
    if (cancel_ms > 0) {
        uv_close((uv_handle_t *)&timer, on_timer_closed);
        uv_run(&e->loop, UV_RUN_DEFAULT);
    }
    assert_true(task_is_done(&p.t));
    assert_int_equal(p.spawn_rc, 0);
    assert_int_equal(p.close_rc, 0);
    assert_int_equal(e->got.called, 1);
    assert_ptr_equal(e->got.tag, &tag);
}

static void assert_output_is(const struct env *e, const char *want)
{
    FILE *f = fopen(e->out_path, "rb");
    assert_non_null(f);
    char got[4096];
    size_t n = fread(got, 1, sizeof got - 1, f);
    fclose(f);
    got[n] = '\0';
    assert_string_equal(got, want);
}

/* ---- cases ---- */

static void test_page_writes_its_pairs_and_hands_back_links(void **state)
{
    struct env *e = *state;
    e->cfg.url_flags = URL_KEEP_FRAGMENT; /* written with its fragment, followed without */
    char url[256];
    run_page(e, "/page?href=a.html&href=/b.html%23part&href=a.html", 1, 0, url, sizeof url);
    assert_int_equal(e->got.outcome, PAGE_OK);
    assert_int_equal(e->got.pairs, 2); /* a.html once */
    assert_int_equal(e->got.retries, 0);
    assert_false(e->got.nofollow);
    char want[1024];
    int n = snprintf(want, sizeof want, "%s\thttp://127.0.0.1:%d/a.html\n%s\thttp://127.0.0.1:%d/b.html#part\n",
                     url, port, url, port);
    assert_true(n > 0);
    assert_output_is(e, want);
    /* To follow: without the fragment, which names a part of the same page. */
    n = snprintf(want, sizeof want, "http://127.0.0.1:%d/a.html%chttp://127.0.0.1:%d/b.html%c",
                 port, '\0', port, '\0');
    assert_int_equal(e->got.follow_len, (size_t)n);
    assert_memory_equal(e->got.follow, want, (size_t)n);
}

static void test_page_not_following_keeps_no_links(void **state)
{
    struct env *e = *state;
    char url[256];
    run_page(e, "/page?href=a.html", 0, 0, url, sizeof url);
    assert_int_equal(e->got.outcome, PAGE_OK);
    assert_int_equal(e->got.pairs, 1);
    assert_int_equal(e->got.follow_len, 0);
}

static void test_404_is_a_failure_with_its_record(void **state)
{
    struct env *e = *state;
    char url[256];
    run_page(e, "/status/404", 1, 0, url, sizeof url);
    assert_int_equal(e->got.outcome, PAGE_FAILED);
    assert_string_equal(e->got.kind, "http");
    assert_string_equal(e->got.error, "HTTP 404");
    assert_string_equal(e->got.found_on, "list.txt:7");
    assert_int_equal(e->got.status, 404);
    assert_int_equal(e->got.attempts, 1);
    assert_int_equal(e->got.follow_len, 0);
    assert_output_is(e, "");
}

static void test_retry_then_success(void **state)
{
    struct env *e = *state;
    e->cfg.retries = 2;
    char path[96], url[256];
    snprintf(path, sizeof path, "/flaky?key=page-%d-%ld&fails=1", (int)getpid(), (long)uv_hrtime());
    run_page(e, path, 1, 0, url, sizeof url);
    assert_int_equal(e->got.outcome, PAGE_OK);
    assert_int_equal(e->got.retries, 1);
    assert_int_equal(e->got.pairs, 1);
}

static void test_nofollow_is_handed_back(void **state)
{
    struct env *e = *state;
    char url[256];
    run_page(e, "/nofollow.html", 1, 0, url, sizeof url);
    assert_int_equal(e->got.outcome, PAGE_OK);
    assert_true(e->got.nofollow);
    assert_true(e->got.pairs > 0); /* its pairs are still written */
}

static void test_cancelled_page_has_no_result(void **state)
{
    struct env *e = *state;
    char url[256];
    run_page(e, "/stall?hold=30", 1, 200, url, sizeof url);
    assert_int_equal(e->got.outcome, PAGE_CANCELLED);
    assert_int_equal(e->got.pairs, 0);
    assert_output_is(e, "");
}

/* ---- conditional requests and what a state store keeps (issue 14) ---- */

#define LM_DATE "Tue, 14 Nov 2023 22:13:20 GMT"
#define FIXED "/cond14/fixed?etag=%22abc%22&lm=Tue,%2014%20Nov%202023%2022:13:20%20GMT"


/* What page.c keeps of a body (page.h): its fingerprint in the first 8 bytes, little-endian. */
static void body_fingerprint(const char *body, size_t len, unsigned char out[DIGEST_SIZE])
{
    uint64_t h = fingerprint(body, len);
    memset(out, 0, DIGEST_SIZE);
    for (int i = 0; i < 8; i++)
        out[i] = (unsigned char)(h >> (8 * i));
}

static void test_page_hands_back_validators_hash_and_targets(void **state)
{
    struct env *e = *state;
    e->cfg.url_flags = URL_KEEP_FRAGMENT;
    e->cfg.hash_bodies = 1;
    e->cfg.keep_targets = 1;
    char url[256];
    /* /html answers its body verbatim, so its hash is known. */
    static const char body[] = "<a href=\"a.html\"><a href=\"/b.html#part\"><a href=\"a.html\">";
    run_page(e, "/html?body=%3Ca%20href%3D%22a.html%22%3E%3Ca%20href%3D%22/b.html%23part%22%3E"
                "%3Ca%20href%3D%22a.html%22%3E", 0, 0, url, sizeof url);
    assert_int_equal(e->got.outcome, PAGE_OK);
    assert_int_equal(e->got.pairs, 2);
    assert_string_equal(e->got.final_url, url);
    assert_int_equal(e->got.http_status, 200);
    assert_string_equal(e->got.etag, "(null)");
    assert_true(e->got.has_body_hash);
    unsigned char want_hash[DIGEST_SIZE];
    body_fingerprint(body, strlen(body), want_hash);
    assert_memory_equal(e->got.body_hash, want_hash, DIGEST_SIZE);
    /* Every target written, in output order, fragments kept as written; even when not
     * following. */
    char want[512];
    int n = snprintf(want, sizeof want, "http://127.0.0.1:%d/a.html%chttp://127.0.0.1:%d/b.html#part%c",
                     port, '\0', port, '\0');
    assert_int_equal(e->got.targets_len, (size_t)n);
    assert_memory_equal(e->got.targets, want, (size_t)n);
}

/* A body large enough to be scanned on libuv's pool is hashed there. */
static void test_page_large_body_is_hashed(void **state)
{
    struct env *e = *state;
    e->cfg.hash_bodies = 1;
    char url[256];
    run_page(e, "/huge?size=20000", 0, 0, url, sizeof url);
    assert_int_equal(e->got.outcome, PAGE_OK);
    assert_true(e->got.has_body_hash);
    /* /huge repeats this line, cut at the size (server.py r_huge). */
    static const char unit[] = "<p>filler text to make a large page <a href=\"huge.html\">h</a></p>\n";
    char *body = malloc(20000);
    assert_non_null(body);
    for (size_t i = 0; i < 20000; i++)
        body[i] = unit[i % (sizeof unit - 1)];
    unsigned char want[DIGEST_SIZE];
    body_fingerprint(body, 20000, want);
    free(body);
    assert_memory_equal(e->got.body_hash, want, DIGEST_SIZE);
}

static void test_page_validators_are_handed_back(void **state)
{
    struct env *e = *state;
    char url[256];
    run_page(e, FIXED, 0, 0, url, sizeof url);
    assert_int_equal(e->got.outcome, PAGE_OK);
    assert_string_equal(e->got.etag, "\"abc\"");
    assert_string_equal(e->got.last_modified, LM_DATE);
    /* Not asked for: neither hash nor targets. */
    assert_false(e->got.has_body_hash);
    assert_int_equal(e->got.targets_len, 0);
}

static void test_page_not_modified_writes_nothing(void **state)
{
    struct env *e = *state;
    e->cfg.hash_bodies = 1;
    e->cfg.keep_targets = 1;
    e->if_none_match = "\"abc\"";
    char url[256];
    run_page(e, FIXED, 1, 0, url, sizeof url);
    assert_int_equal(e->got.outcome, PAGE_NOT_MODIFIED);
    assert_int_equal(e->got.http_status, 304);
    assert_int_equal(e->got.pairs, 0);
    assert_int_equal(e->got.follow_len, 0);
    assert_int_equal(e->got.targets_len, 0);
    assert_false(e->got.has_body_hash);
    assert_false(e->got.unsolicited_304);
    assert_string_equal(e->got.etag, "\"abc\"");
    assert_output_is(e, "");
}

static void test_page_not_modified_since(void **state)
{
    struct env *e = *state;
    e->if_modified_since = LM_DATE;
    char url[256];
    run_page(e, FIXED, 1, 0, url, sizeof url);
    assert_int_equal(e->got.outcome, PAGE_NOT_MODIFIED);
    assert_output_is(e, "");
}

static void test_page_changed_is_fetched_and_written(void **state)
{
    struct env *e = *state;
    e->if_none_match = "\"old\"";
    char url[256];
    run_page(e, FIXED, 0, 0, url, sizeof url);
    assert_int_equal(e->got.outcome, PAGE_OK);
    assert_int_equal(e->got.pairs, 1);
    char want[512];
    snprintf(want, sizeof want, "%s\thttp://127.0.0.1:%d/cond14/fixed.html\n", url, port);
    assert_output_is(e, want);
}

static void test_page_unsolicited_304_fails_and_says_so(void **state)
{
    struct env *e = *state;
    char url[256];
    run_page(e, "/status/304", 1, 0, url, sizeof url);
    assert_int_equal(e->got.outcome, PAGE_FAILED);
    assert_string_equal(e->got.kind, "http");
    assert_string_equal(e->got.error, "HTTP 304");
    assert_true(e->got.unsolicited_304);
    assert_output_is(e, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_page_writes_its_pairs_and_hands_back_links, setup, teardown),
        cmocka_unit_test_setup_teardown(test_page_not_following_keeps_no_links, setup, teardown),
        cmocka_unit_test_setup_teardown(test_404_is_a_failure_with_its_record, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retry_then_success, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nofollow_is_handed_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancelled_page_has_no_result, setup, teardown),
        cmocka_unit_test_setup_teardown(test_page_hands_back_validators_hash_and_targets, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_page_large_body_is_hashed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_page_validators_are_handed_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_page_not_modified_writes_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_page_not_modified_since, setup, teardown),
        cmocka_unit_test_setup_teardown(test_page_changed_is_fetched_and_written, setup, teardown),
        cmocka_unit_test_setup_teardown(test_page_unsolicited_304_fails_and_says_so, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, start_server, stop_server);
}
