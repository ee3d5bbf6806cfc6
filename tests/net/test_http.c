/* Tests of the curl/libuv bridge against the loopback fixture server (tests/fixture/
 * server.py, started once for the group). Each case runs on a fresh loop and client and
 * must leave nothing behind: uv_loop_close() returns 0 at teardown. */
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
#include <sys/wait.h>
#include <netinet/in.h>
#include <unistd.h>
#include <cmocka.h>
#include <curl/curl.h>

#include "fixture_server.h"
#include "http.h"
#include "links.h"
#include "task.h"
#include "test_loop.h"

static struct fixture_server server;
static int port;

static int start_server(void **state)
{
    (void)state;
    if (fixture_server_start(&server, NULL) != 0)
        return -1;
    port = server.port;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    return 0;
}

static int stop_server(void **state)
{
    (void)state;
    fixture_server_stop(&server);
    curl_global_cleanup();
    return 0;
}

struct env {
    uv_loop_t loop;
    task_sched sched;
    http_client *client;
    struct http_options opt;
};

static struct http_options default_options(void)
{
    return (struct http_options){
        .timeout_ms = 10000,
        .connect_timeout_ms = 5000,
        .max_redirs = 5,
        .max_body = 0,
        .max_connects = 100,
        .user_agent = "areq-test",
    };
}

static int setup_with(void **state, struct http_options o)
{
    struct env *e = calloc(1, sizeof *e);
    assert_non_null(e);
    test_loop_open(&e->loop, &e->sched);
    e->opt = o;
    assert_int_equal(http_client_create(&e->loop, &e->opt, &e->client), 0);
    *state = e;
    return 0;
}

static int setup(void **state)
{
    return setup_with(state, default_options());
}

/* Limits far beyond anything the test waits for, so that only the cancellation can end the
 * transfer: under ASan on a loaded machine, the 5 s connect and 10 s transfer limits of
 * default_options() once ended it first. */
static int setup_patient(void **state)
{
    struct http_options o = default_options();
    o.timeout_ms = 120000;
    o.connect_timeout_ms = 120000;
    return setup_with(state, o);
}

static int setup_capped(void **state)
{
    struct http_options o = default_options();
    o.max_body = 100 * 1000;
    return setup_with(state, o);
}

static int setup_short_timeout(void **state)
{
    struct http_options o = default_options();
    o.timeout_ms = 300;
    return setup_with(state, o);
}

static int teardown(void **state)
{
    struct env *e = *state;
    http_client_destroy(e->client);
    task_sched_close(&e->sched);
    test_loop_drain_and_close(&e->loop);
    free(e);
    return 0;
}

/* ---- a task that fetches one URL ---- */

struct fetch {
    task t;
    http_client *client;
    char url[512];
    http_accept_fn accept; /* what the request accepts: HTML, as a page does, unless a case says */
    const char *if_none_match, *if_modified_since; /* validators to send, or NULL */
    http_request req;
    int resumed_rc;
};

static enum task_step fetch_step(task *t)
{
    struct fetch *f = (struct fetch *)t;
    if (t->state == 0) {
        t->state = 1;
        http_request_init(&f->req, f->url);
        f->req.accept = f->accept;
        f->req.if_none_match = f->if_none_match;
        f->req.if_modified_since = f->if_modified_since;
        return http_fetch(f->client, &f->req, t);
    }
    f->resumed_rc = task_wait_rc(t);
    return task_finish(t, 0);
}

static void start_fetch(struct env *e, struct fetch *f, const char *fmt, ...)
{
    memset(f, 0, sizeof *f);
    f->client = e->client;
    f->accept = links_accepts_type;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f->url, sizeof f->url, fmt, ap);
    va_end(ap);
    task_init(&f->t, fetch_step, NULL);
    task_spawn(&e->sched, &f->t, NULL);
}

/* Fetches a path on the fixture server and runs the loop until it is done. */
static void fetch_path(struct env *e, struct fetch *f, const char *path)
{
    start_fetch(e, f, "http://127.0.0.1:%d%s", port, path);
    uv_run(&e->loop, UV_RUN_DEFAULT);
    assert_true(task_is_done(&f->t));
    assert_int_equal(f->resumed_rc, 0);
}

static double now_s(void)
{
    return (double)uv_hrtime() / 1e9;
}

static void test_html_page(void **state)
{
    struct env *e = *state;
    struct fetch f;
    fetch_path(e, &f, "/page?href=a.html&href=/b.html");
    assert_int_equal(f.req.outcome, HTTP_OK);
    assert_int_equal(f.req.status, 200);
    assert_non_null(strstr(f.req.body.data, "href=\"a.html\""));
    assert_int_equal(f.req.bytes, f.req.body.len);
    assert_string_equal(f.req.final_url, f.url);
    assert_non_null(strstr(f.req.content_type, "text/html"));
    http_request_finish(&f.req);
}

static void test_404_is_a_status_failure_without_body(void **state)
{
    struct env *e = *state;
    struct fetch f;
    fetch_path(e, &f, "/status/404");
    assert_int_equal(f.req.outcome, HTTP_STATUS);
    assert_int_equal(f.req.status, 404);
    assert_int_equal(f.req.body.len, 0);
    char scratch[64];
    assert_string_equal(http_describe(&f.req, scratch, sizeof scratch), "HTTP 404");
    http_request_finish(&f.req);
}

static void test_500_is_a_status_failure(void **state)
{
    struct env *e = *state;
    struct fetch f;
    fetch_path(e, &f, "/status/500");
    assert_int_equal(f.req.outcome, HTTP_STATUS);
    assert_int_equal(f.req.status, 500);
    http_request_finish(&f.req);
}

static void test_redirect_gives_final_url(void **state)
{
    struct env *e = *state;
    struct fetch f;
    fetch_path(e, &f, "/redirect?to=/page/sub/x.html&code=301");
    assert_int_equal(f.req.outcome, HTTP_OK);
    char want[128];
    snprintf(want, sizeof want, "http://127.0.0.1:%d/page/sub/x.html", port);
    assert_string_equal(f.req.final_url, want);
    http_request_finish(&f.req);
}

static void test_redirect_loop_fails(void **state)
{
    struct env *e = *state;
    struct fetch f;
    fetch_path(e, &f, "/loop");
    assert_int_equal(f.req.outcome, HTTP_TRANSPORT);
    assert_non_null(strcasestr(f.req.error, "redirect"));
    http_request_finish(&f.req);
}

static void test_redirect_to_file_scheme_is_refused(void **state)
{
    struct env *e = *state;
    struct fetch f;
    fetch_path(e, &f, "/redirect-file");
    assert_int_equal(f.req.outcome, HTTP_TRANSPORT);
    assert_int_equal(f.req.body.len, 0);
    http_request_finish(&f.req);
}

static void test_content_types(void **state)
{
    struct env *e = *state;
    static const struct {
        const char *path;
        enum http_outcome want;
    } rows[] = {
        {"/binary", HTTP_TYPE_REFUSED},
        {"/text", HTTP_TYPE_REFUSED},
        {"/no-content-type", HTTP_OK},
        {"/xhtml", HTTP_OK},
        {"/html?body=%3Ca%20href%3Dx%3E&ctype=TEXT/HTML;%20charset=utf-8", HTTP_OK},
        {"/html?body=x&ctype=text/htmlx", HTTP_TYPE_REFUSED},
        {"/html?body=x&ctype=application/json", HTTP_TYPE_REFUSED},
        {"/html?body=&ctype=image/png", HTTP_TYPE_REFUSED}, /* empty body: decided at the end */
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        struct fetch f;
        fetch_path(e, &f, rows[i].path);
        if (f.req.outcome != rows[i].want)
            fail_msg("%s: outcome %d, want %d", rows[i].path, f.req.outcome, rows[i].want);
        if (rows[i].want == HTTP_TYPE_REFUSED)
            assert_int_equal(f.req.body.len, 0);
        http_request_finish(&f.req);
    }
}

/* What a request accepts is the caller's to say: asked once with the final response's type
 * as sent (NULL without one); NULL accepts anything, as robots.txt does. */
static char asked_type[128];
static int asked_count;

static int accept_text_plain(const char *ct)
{
    asked_count++;
    snprintf(asked_type, sizeof asked_type, "%s", ct != NULL ? ct : "(none)");
    return ct != NULL && strncmp(ct, "text/plain", 10) == 0;
}

static void fetch_accepting(struct env *e, struct fetch *f, const char *path, http_accept_fn fn)
{
    start_fetch(e, f, "http://127.0.0.1:%d%s", port, path);
    f->accept = fn; /* read when the task first runs, in uv_run */
    uv_run(&e->loop, UV_RUN_DEFAULT);
    assert_true(task_is_done(&f->t));
    assert_int_equal(f->resumed_rc, 0);
}

static void test_request_says_what_it_accepts(void **state)
{
    struct env *e = *state;
    struct fetch f;
    fetch_accepting(e, &f, "/binary", NULL);
    assert_int_equal(f.req.outcome, HTTP_OK);
    assert_true(f.req.body.len > 256);
    http_request_finish(&f.req);

    asked_count = 0;
    fetch_accepting(e, &f, "/text", accept_text_plain);
    assert_int_equal(f.req.outcome, HTTP_OK);
    assert_non_null(strstr(f.req.body.data, "from-text"));
    assert_true(asked_count >= 1);
    assert_non_null(strstr(asked_type, "text/plain"));
    http_request_finish(&f.req);

    fetch_accepting(e, &f, "/binary", accept_text_plain);
    assert_int_equal(f.req.outcome, HTTP_TYPE_REFUSED);
    assert_int_equal(f.req.body.len, 0);
    assert_string_equal(asked_type, "application/octet-stream");
    char why[128];
    assert_string_equal(http_describe(&f.req, why, sizeof why),
                        "type not accepted (application/octet-stream)");
    assert_false(http_is_transient(&f.req));
    http_request_finish(&f.req);

    fetch_accepting(e, &f, "/no-content-type", accept_text_plain);
    assert_int_equal(f.req.outcome, HTTP_TYPE_REFUSED);
    assert_string_equal(asked_type, "(none)");
    http_request_finish(&f.req);

    /* Not asked about a response that is not 2xx. */
    asked_count = 0;
    fetch_accepting(e, &f, "/status/404", accept_text_plain);
    assert_int_equal(f.req.outcome, HTTP_STATUS);
    assert_int_equal(asked_count, 0);
    http_request_finish(&f.req);
}

static void test_slow_response_times_out(void **state)
{
    struct env *e = *state;
    struct fetch f;
    double t0 = now_s();
    fetch_path(e, &f, "/slow?delay=10");
    double took = now_s() - t0;
    assert_int_equal(f.req.outcome, HTTP_TRANSPORT);
    assert_non_null(strcasestr(f.req.error, "timed out"));
    /* 0.3 s, not the page's 10 s: the upper bound leaves a loaded machine (and the
     * sanitizers) seconds to spare, as no wall-clock margin of a fraction of one would. */
    assert_true(took >= 0.25 && took < 5.0);
    http_request_finish(&f.req);
}

static void test_close_mid_body_fails(void **state)
{
    struct env *e = *state;
    struct fetch f;
    fetch_path(e, &f, "/close-mid-body");
    assert_int_equal(f.req.outcome, HTTP_TRANSPORT);
    http_request_finish(&f.req);
}

/* A reset must be named as one: an error passed to libcurl alone would only say
 * "select/poll returned error". */
static void test_reset_mid_body_is_named(void **state)
{
    struct env *e = *state;
    struct fetch f;
    fetch_path(e, &f, "/reset");
    assert_int_equal(f.req.outcome, HTTP_TRANSPORT);
    if (strcasestr(f.req.error, "reset") == NULL)
        fail_msg("error text does not name the reset: %s", f.req.error);
    assert_true(http_is_transient(&f.req));
    http_request_finish(&f.req);
}

static void test_garbage_reply_fails(void **state)
{
    struct env *e = *state;
    struct fetch f;
    fetch_path(e, &f, "/garbage");
    assert_int_equal(f.req.outcome, HTTP_TRANSPORT);
    http_request_finish(&f.req);
}

static void test_refused_port_fails(void **state)
{
    struct env *e = *state;
    /* A port that was free a moment ago: bind, learn it, close. */
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(getsockname(s, (struct sockaddr *)&a, &len), 0);
    close(s);
    struct fetch f;
    start_fetch(e, &f, "http://127.0.0.1:%d/", ntohs(a.sin_port));
    uv_run(&e->loop, UV_RUN_DEFAULT);
    assert_int_equal(f.req.outcome, HTTP_TRANSPORT);
    assert_non_null(strcasestr(f.req.error, "connect"));
    http_request_finish(&f.req);
}

static void test_body_over_cap_is_abandoned(void **state)
{
    struct env *e = *state;
    static const char *paths[] = {"/huge?size=50000000", "/huge?size=50000000&chunked=1",
                                  "/gzip-bomb?size=100000000"};
    for (size_t i = 0; i < 3; i++) {
        struct fetch f;
        double t0 = now_s();
        fetch_path(e, &f, paths[i]);
        assert_int_equal(f.req.outcome, HTTP_TOO_BIG);
        assert_int_equal(f.req.body.len, 0);
        assert_true(now_s() - t0 < 5.0);
        http_request_finish(&f.req);
    }
}

static void on_cancel_timer(uv_timer_t *h)
{
    task_cancel(h->data, -ECANCELED);
    uv_close((uv_handle_t *)h, NULL);
}

static void test_cancel_stops_a_stalled_transfer(void **state)
{
    struct env *e = *state;
    struct fetch f;
    start_fetch(e, &f, "http://127.0.0.1:%d/stall?hold=30", port);
    uv_timer_t timer;
    uv_timer_init(&e->loop, &timer);
    timer.data = &f.t;
    uv_timer_start(&timer, on_cancel_timer, 100, 0);
    double t0 = now_s();
    uv_run(&e->loop, UV_RUN_DEFAULT);
    assert_true(task_is_done(&f.t));
    assert_int_equal(f.resumed_rc, -ECANCELED);
    assert_int_equal(f.req.outcome, HTTP_CANCELLED);
    assert_true(now_s() - t0 < 10.0); /* the stall holds 30 s; 10 s spares a busy machine */
    http_request_finish(&f.req);
}

/* Many transfers at once over one multi handle, each completing with its own result, and
 * handles reused across two waves. */
static void test_many_concurrent_transfers(void **state)
{
    struct env *e = *state;
    enum { N = 200 };
    struct fetch *f = calloc(N, sizeof *f);
    assert_non_null(f);
    for (int wave = 0; wave < 2; wave++) {
        for (int i = 0; i < N; i++) {
            if (i % 10 == 9)
                start_fetch(e, &f[i], "http://127.0.0.1:%d/status/404", port);
            else
                start_fetch(e, &f[i], "http://127.0.0.1:%d/page/%d-%d?links=3", port, wave, i);
        }
        uv_run(&e->loop, UV_RUN_DEFAULT);
        for (int i = 0; i < N; i++) {
            assert_true(task_is_done(&f[i].t));
            if (i % 10 == 9) {
                assert_int_equal(f[i].req.outcome, HTTP_STATUS);
            } else {
                assert_int_equal(f[i].req.outcome, HTTP_OK);
                assert_string_equal(f[i].req.final_url, f[i].url);
                assert_non_null(strstr(f[i].req.body.data, "l2.html"));
            }
            http_request_finish(&f[i].req);
        }
    }
    free(f);
}

/* ---- conditional requests (issue 14) ---- */

#define LM_DATE "Tue, 14 Nov 2023 22:13:20 GMT"
#define LM_QUERY "lm=Tue,%2014%20Nov%202023%2022:13:20%20GMT"

/* Fetches `path` sending the given validators (NULL: none), accepting any type. */
static void fetch_conditional(struct env *e, struct fetch *f, const char *path,
                              const char *inm, const char *ims)
{
    start_fetch(e, f, "http://127.0.0.1:%d%s", port, path);
    f->accept = NULL;
    f->if_none_match = inm;
    f->if_modified_since = ims;
    uv_run(&e->loop, UV_RUN_DEFAULT);
    assert_true(task_is_done(&f->t));
    assert_int_equal(f->resumed_rc, 0);
}

static void test_validators_are_captured(void **state)
{
    struct env *e = *state;
    struct fetch f;
    fetch_conditional(e, &f, "/cond14/fixed?etag=%22abc%22&" LM_QUERY, NULL, NULL);
    assert_int_equal(f.req.outcome, HTTP_OK);
    assert_string_equal(f.req.etag, "\"abc\"");
    assert_string_equal(f.req.last_modified, LM_DATE);
    assert_false(f.req.unsolicited_304);
    http_request_finish(&f.req);
    assert_null(f.req.etag);
    assert_null(f.req.last_modified);

    /* None sent: none kept. */
    fetch_conditional(e, &f, "/page?links=1", NULL, NULL);
    assert_int_equal(f.req.outcome, HTTP_OK);
    assert_null(f.req.etag);
    assert_null(f.req.last_modified);
    http_request_finish(&f.req);
}

static void test_matching_validator_gives_not_modified(void **state)
{
    struct env *e = *state;
    static const char *path = "/cond14/fixed?etag=%22abc%22&" LM_QUERY;
    struct fetch f;
    fetch_conditional(e, &f, path, "\"abc\"", NULL);
    assert_int_equal(f.req.outcome, HTTP_NOT_MODIFIED);
    assert_int_equal(f.req.status, 304);
    assert_int_equal(f.req.body.len, 0);
    assert_false(f.req.unsolicited_304);
    assert_false(http_is_transient(&f.req));
    /* A 304 carries the validators too: the caller may keep the newer ones. */
    assert_string_equal(f.req.etag, "\"abc\"");
    assert_string_equal(f.req.last_modified, LM_DATE);
    char why[64];
    assert_string_equal(http_describe(&f.req, why, sizeof why), "not modified (HTTP 304)");
    http_request_finish(&f.req);

    fetch_conditional(e, &f, path, NULL, LM_DATE);
    assert_int_equal(f.req.outcome, HTTP_NOT_MODIFIED);
    http_request_finish(&f.req);

    /* Through a redirect the validators go along, and the 304 is the final response's. */
    fetch_conditional(e, &f, "/redirect?to=/cond14/fixed%3Fetag%3D%2522abc%2522&code=301",
                      "\"abc\"", NULL);
    assert_int_equal(f.req.outcome, HTTP_NOT_MODIFIED);
    assert_non_null(strstr(f.req.final_url, "/cond14/fixed?etag="));
    assert_string_equal(f.req.etag, "\"abc\"");
    http_request_finish(&f.req);

    /* Changed: a 200 with the body. */
    fetch_conditional(e, &f, path, "\"old\"", LM_DATE);
    assert_int_equal(f.req.outcome, HTTP_OK);
    assert_non_null(strstr(f.req.body.data, "fixed.html"));
    http_request_finish(&f.req);
}

/* A 304 to a request without validators is a server fault, not a success. */
static void test_unsolicited_304_is_a_status_failure(void **state)
{
    struct env *e = *state;
    struct fetch f;
    fetch_conditional(e, &f, "/status/304", NULL, NULL);
    assert_int_equal(f.req.outcome, HTTP_STATUS);
    assert_int_equal(f.req.status, 304);
    assert_true(f.req.unsolicited_304);
    http_request_finish(&f.req);

    /* The same answer to a conditional request is what was asked for. */
    fetch_conditional(e, &f, "/status/304", "\"x\"", NULL);
    assert_int_equal(f.req.outcome, HTTP_NOT_MODIFIED);
    assert_false(f.req.unsolicited_304);
    http_request_finish(&f.req);

    /* Other statuses are not flagged. */
    fetch_conditional(e, &f, "/status/404", NULL, NULL);
    assert_int_equal(f.req.outcome, HTTP_STATUS);
    assert_false(f.req.unsolicited_304);
    http_request_finish(&f.req);
}

static const char *const extra_header[] = {"X-Extra: kept"};

static int setup_extra_header(void **state)
{
    struct http_options o = default_options();
    o.headers = extra_header;
    o.nheaders = 1;
    return setup_with(state, o);
}

/* Validators go on their own transfer only: the next transfer, on the same (reused) easy
 * handle, sends none, and the client's own headers go with both. */
static void test_validators_are_sent_once(void **state)
{
    struct env *e = *state;
    struct fetch f;
    fetch_conditional(e, &f, "/echo", "\"v1\"", LM_DATE);
    assert_int_equal(f.req.outcome, HTTP_OK);
    assert_non_null(strstr(f.req.body.data, "If-None-Match: \"v1\"\n"));
    assert_non_null(strstr(f.req.body.data, "If-Modified-Since: " LM_DATE "\n"));
    assert_non_null(strstr(f.req.body.data, "X-Extra: kept\n"));
    http_request_finish(&f.req);

    for (int i = 0; i < 2; i++) {
        fetch_conditional(e, &f, "/echo", NULL, NULL);
        assert_int_equal(f.req.outcome, HTTP_OK);
        assert_null(strcasestr(f.req.body.data, "If-None-Match"));
        assert_null(strcasestr(f.req.body.data, "If-Modified-Since"));
        assert_non_null(strstr(f.req.body.data, "X-Extra: kept\n"));
        http_request_finish(&f.req);
    }
}

/* Validators that cannot be sent back are neither kept nor sent. */
static void test_junk_validators_are_dropped(void **state)
{
    struct env *e = *state;
    char path[1024];
    static const char *const unusable[] = {
        "/cond14/fixed?etag=%22a%22&etag=%22b%22&lm=not%20a%20date", /* two ETags, no date */
        "/cond14/fixed?etag=&lm=",                                    /* empty */
        NULL,                                                          /* too long: below */
    };
    for (size_t i = 0; i < 3; i++) {
        if (unusable[i] != NULL) {
            snprintf(path, sizeof path, "%s", unusable[i]);
        } else {
            int n = snprintf(path, sizeof path, "/cond14/fixed?etag=");
            memset(path + n, 'x', HTTP_VALIDATOR_MAX + 1);
            path[n + HTTP_VALIDATOR_MAX + 1] = '\0';
        }
        struct fetch f;
        fetch_conditional(e, &f, path, NULL, NULL);
        assert_int_equal(f.req.outcome, HTTP_OK);
        if (f.req.etag != NULL || f.req.last_modified != NULL)
            fail_msg("%s: kept etag %s, last_modified %s", path, f.req.etag,
                     f.req.last_modified);
        http_request_finish(&f.req);
    }

    /* The longest allowed is kept. */
    int n = snprintf(path, sizeof path, "/cond14/fixed?etag=");
    memset(path + n, 'y', HTTP_VALIDATOR_MAX);
    path[n + HTTP_VALIDATOR_MAX] = '\0';
    struct fetch f;
    fetch_conditional(e, &f, path, NULL, NULL);
    assert_non_null(f.req.etag);
    assert_int_equal(strlen(f.req.etag), HTTP_VALIDATOR_MAX);
    http_request_finish(&f.req);

    /* A validator holding a line break would forge a header: it is not sent (the other
     * one is), and with none left the request is not conditional (so a 304 to it would be
     * unsolicited). */
    fetch_conditional(e, &f, "/echo", "\"x\"\r\nX-Forged: 1", LM_DATE);
    assert_int_equal(f.req.outcome, HTTP_OK);
    assert_null(strcasestr(f.req.body.data, "X-Forged"));
    assert_null(strcasestr(f.req.body.data, "If-None-Match"));
    assert_non_null(strstr(f.req.body.data, "If-Modified-Since: " LM_DATE "\n"));
    http_request_finish(&f.req);
    fetch_conditional(e, &f, "/echo", "\"x\"", "\x01");
    assert_int_equal(f.req.outcome, HTTP_OK);
    assert_non_null(strstr(f.req.body.data, "If-None-Match: \"x\"\n"));
    assert_null(strcasestr(f.req.body.data, "If-Modified-Since"));
    http_request_finish(&f.req);
    fetch_conditional(e, &f, "/status/304", "\"x\"\n", NULL);
    assert_int_equal(f.req.outcome, HTTP_STATUS);
    assert_true(f.req.unsolicited_304);
    http_request_finish(&f.req);
}

static const char *const caller_validator[] = {"If-None-Match: \"mine\""};

static int setup_caller_validator(void **state)
{
    struct http_options o = default_options();
    o.headers = caller_validator;
    o.nheaders = 1;
    return setup_with(state, o);
}

/* With -H If-None-Match the caller asked for a 304 itself: not a fault of the server, and
 * not a result of ours either (the caller has no copy we know of). On a transfer of ours,
 * our validator replaces the caller's of that name. */
static void test_caller_validators(void **state)
{
    struct env *e = *state;
    struct fetch f;
    fetch_conditional(e, &f, "/status/304", NULL, NULL);
    assert_int_equal(f.req.outcome, HTTP_STATUS);
    assert_false(f.req.unsolicited_304);
    http_request_finish(&f.req);

    /* Ours replace the caller's of the same name on our transfer, not the others. */
    fetch_conditional(e, &f, "/echo", "\"ours\"", NULL);
    assert_non_null(strstr(f.req.body.data, "If-None-Match: \"ours\"\n"));
    assert_null(strstr(f.req.body.data, "mine"));
    http_request_finish(&f.req);
    fetch_conditional(e, &f, "/echo", NULL, LM_DATE);
    assert_non_null(strstr(f.req.body.data, "If-None-Match: \"mine\"\n"));
    assert_non_null(strstr(f.req.body.data, "If-Modified-Since: " LM_DATE "\n"));
    http_request_finish(&f.req);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_html_page, setup, teardown),
        cmocka_unit_test_setup_teardown(test_404_is_a_status_failure_without_body, setup, teardown),
        cmocka_unit_test_setup_teardown(test_500_is_a_status_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redirect_gives_final_url, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redirect_loop_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redirect_to_file_scheme_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_request_says_what_it_accepts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_content_types, setup, teardown),
        cmocka_unit_test_setup_teardown(test_slow_response_times_out, setup_short_timeout, teardown),
        cmocka_unit_test_setup_teardown(test_close_mid_body_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reset_mid_body_is_named, setup, teardown),
        cmocka_unit_test_setup_teardown(test_garbage_reply_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_port_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_body_over_cap_is_abandoned, setup_capped, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_stops_a_stalled_transfer, setup_patient,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_many_concurrent_transfers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_validators_are_captured, setup, teardown),
        cmocka_unit_test_setup_teardown(test_matching_validator_gives_not_modified, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_unsolicited_304_is_a_status_failure, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_validators_are_sent_once, setup_extra_header,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_junk_validators_are_dropped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_caller_validators,
                                        setup_caller_validator, teardown),
    };
    return cmocka_run_group_tests_name("http", tests, start_server, stop_server);
}
