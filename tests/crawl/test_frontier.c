/* Tests for the frontier: origins, turns, politeness limits, levels and robots.txt gating.
 * Every case builds a fresh frontier and drives time by hand. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "frontier.h"
#include "robots.h"

/* ---- helpers ---- */

static frontier *make(size_t per_host, uint64_t delay_ms, int use_robots)
{
    struct frontier_limits l = {.per_host = per_host, .delay_ms = delay_ms, .robots = use_robots};
    frontier *f = NULL;
    assert_int_equal(frontier_create(&l, &f), 0);
    assert_non_null(f);
    return f;
}

static struct frontier_host *host(frontier *f, const char *url)
{
    struct frontier_host *h = NULL;
    assert_int_equal(frontier_host_of(f, url, strlen(url), &h), 0);
    assert_non_null(h);
    return h;
}

/* Queues `url` at `depth`, its own origin being the chain's root. */
static struct frontier_host *push(frontier *f, const char *url, unsigned depth)
{
    struct frontier_host *h = host(f, url);
    assert_int_equal(frontier_push(f, h, url, strlen(url), depth, h, NULL), 0);
    return h;
}

/* frontier_next, dropping what robots.txt disallows as the crawl does, and starting what
 * it hands out at once (frontier_started), as the crawl does when a slot is free. */
static enum frontier_next next_allowed(frontier *f, uint64_t now, struct frontier_item **it,
                                       uint64_t *wake)
{
    enum frontier_next r;
    while ((r = frontier_next(f, now, it, wake)) == FRONTIER_DISALLOWED)
        frontier_drop(f, *it);
    if (r == FRONTIER_ITEM)
        frontier_started(f, *it, now);
    return r;
}

static struct frontier_item *expect_item(frontier *f, uint64_t now, const char *url)
{
    struct frontier_item *it = NULL;
    uint64_t wake = 12345;
    enum frontier_next r = next_allowed(f, now, &it, &wake);
    if (r != FRONTIER_ITEM)
        fail_msg("at %llu: expected %s, got %s", (unsigned long long)now, url,
                 r == FRONTIER_WAIT ? "FRONTIER_WAIT" : "FRONTIER_EMPTY");
    assert_non_null(it);
    assert_string_equal(it->url, url);
    assert_int_equal(it->len, strlen(url));
    return it;
}

static void expect_wait(frontier *f, uint64_t now, uint64_t wake_at)
{
    struct frontier_item *it = NULL;
    uint64_t wake = 12345;
    enum frontier_next r = next_allowed(f, now, &it, &wake);
    if (r == FRONTIER_ITEM)
        fail_msg("at %llu: expected FRONTIER_WAIT, got %s", (unsigned long long)now, it->url);
    assert_int_equal(r, FRONTIER_WAIT);
    if (wake != wake_at)
        fail_msg("at %llu: wake_at %llu, expected %llu", (unsigned long long)now,
                 (unsigned long long)wake, (unsigned long long)wake_at);
}

static void expect_empty(frontier *f, uint64_t now)
{
    struct frontier_item *it = NULL;
    uint64_t wake = 12345;
    enum frontier_next r = next_allowed(f, now, &it, &wake);
    if (r == FRONTIER_ITEM)
        fail_msg("at %llu: expected FRONTIER_EMPTY, got %s", (unsigned long long)now, it->url);
    assert_int_equal(r, FRONTIER_EMPTY);
}

static struct frontier_stats stats(const frontier *f)
{
    struct frontier_stats s;
    frontier_get_stats(f, &s);
    return s;
}

static robots *rules(const char *body)
{
    robots *r = NULL;
    assert_int_equal(robots_parse(body, strlen(body), "areq", &r), 0);
    assert_non_null(r);
    return r;
}

static robots *allow_all(void)
{
    robots *r = NULL;
    assert_int_equal(robots_allow_all(&r), 0);
    return r;
}

static robots *disallow_all(void)
{
    robots *r = NULL;
    assert_int_equal(robots_disallow_all(&r), 0);
    return r;
}

/* ---- origins ---- */

static const struct {
    const char *url;
    const char *origin;
    const char *name;
} origin_cases[] = {
    {"http://example.com/", "http://example.com", "example.com"},
    {"http://example.com/a/b?c=d", "http://example.com", "example.com"},
    {"http://example.com", "http://example.com", "example.com"},
    {"http://example.com?q=1", "http://example.com", "example.com"},
    {"https://example.com:8443/x", "https://example.com:8443", "example.com"},
    {"http://user:secret@example.com:8080/p", "http://example.com:8080", "example.com"},
    {"http://user@example.com/", "http://example.com", "example.com"},
    {"http://a%40b:c@example.com/", "http://example.com", "example.com"},
    {"http://[::1]:8080/x", "http://[::1]:8080", "[::1]"},
    {"http://[2001:db8::1]/", "http://[2001:db8::1]", "[2001:db8::1]"},
    {"https://u:p@[2001:db8::2]:8443/a?b", "https://[2001:db8::2]:8443", "[2001:db8::2]"},
    {"http://127.0.0.1:3000/", "http://127.0.0.1:3000", "127.0.0.1"},
    {"http://xn--bcher-kva.example/", "http://xn--bcher-kva.example", "xn--bcher-kva.example"},
};

static void test_host_of_splits(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof origin_cases / sizeof origin_cases[0]; i++) {
        frontier *f = make(0, 0, 0);
        struct frontier_host *h = host(f, origin_cases[i].url);
        if (strcmp(h->origin, origin_cases[i].origin) != 0 ||
            strcmp(h->name, origin_cases[i].name) != 0)
            fail_msg("%s: origin %s name %s, expected %s and %s", origin_cases[i].url, h->origin,
                     h->name, origin_cases[i].origin, origin_cases[i].name);
        assert_null(h->scope);
        frontier_destroy(f);
    }
}

/* Issue 13 point 9: the caller's scope key is written by the frontier, through the const
 * pointer an item's root is held by; the first key stays, and a host of another frontier
 * is refused. */
static void test_host_set_scope(void **state)
{
    (void)state;
    frontier *f = make(0, 0, 0), *other = make(0, 0, 0);
    const struct frontier_host *h = host(f, "http://www.example.com/a");
    assert_null(h->scope);
    assert_int_equal(frontier_host_set_scope(f, h, "example.com"), 0);
    assert_string_equal(h->scope, "example.com");
    assert_int_equal(frontier_host_set_scope(f, h, "www.example.com"), 0);
    assert_string_equal(h->scope, "example.com");
    assert_int_equal(frontier_host_set_scope(other, h, "example.com"), -EINVAL);
    host(other, "http://other.example/");
    assert_int_equal(frontier_host_set_scope(other, h, "example.com"), -EINVAL);
    frontier_destroy(other);
    frontier_destroy(f);
}

static void test_host_of_respects_len(void **state)
{
    (void)state;
    frontier *f = make(0, 0, 0);
    const char *url = "http://example.com:8080/path";
    struct frontier_host *h = NULL;
    /* Only "http://example.com" is the URL; what follows must not be read. */
    assert_int_equal(frontier_host_of(f, url, strlen("http://example.com"), &h), 0);
    assert_string_equal(h->origin, "http://example.com");
    assert_string_equal(h->name, "example.com");
    frontier_destroy(f);
}

static void test_host_of_einval(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "example.com/a",
        "example.com:8080/a",
        "mailto:someone@example.com",
        "http:/example.com/",
        "http:example.com",
        "http:",
        "http://",
        "http:///path",
        "http://user@/path",
    };
    frontier *f = make(0, 0, 1);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        static struct frontier_host untouched;
        struct frontier_host *h = &untouched;
        int rc = frontier_host_of(f, bad[i], strlen(bad[i]), &h);
        if (rc != -EINVAL)
            fail_msg("\"%s\": %d, expected -EINVAL", bad[i], rc);
        assert_ptr_equal(h, &untouched);
    }
    /* No origin was created along the way, so none wants its robots.txt. */
    assert_null(frontier_robots_wanted(f));
    frontier_destroy(f);
}

static void test_same_origin_same_host(void **state)
{
    (void)state;
    frontier *f = make(0, 0, 0);
    struct frontier_host *a = host(f, "http://example.com/");
    assert_ptr_equal(host(f, "http://example.com/other?x=1"), a);
    assert_ptr_equal(host(f, "http://example.com"), a);
    assert_ptr_equal(host(f, "http://user:pw@example.com/x"), a);
    struct frontier_host *port = host(f, "http://example.com:8080/");
    assert_ptr_not_equal(port, a);
    assert_string_equal(port->name, a->name);
    assert_ptr_equal(host(f, "http://example.com:8080/y"), port);
    struct frontier_host *tls = host(f, "https://example.com/");
    assert_ptr_not_equal(tls, a);
    assert_ptr_not_equal(tls, port);
    struct frontier_host *other = host(f, "http://example.org/");
    assert_ptr_not_equal(other, a);
    struct frontier_host *v6 = host(f, "http://[::1]/");
    assert_ptr_not_equal(v6, host(f, "http://[::1]:8080/"));
    assert_ptr_equal(v6, host(f, "http://[::1]/z"));
    frontier_destroy(f);
}

enum { MANY = 700 };

static void test_many_origins_keep_pointers(void **state)
{
    (void)state;
    frontier *f = make(0, 0, 0);
    static struct frontier_host *seen[MANY];
    char url[64];
    for (int i = 0; i < MANY; i++) {
        snprintf(url, sizeof url, "http://host%d.example/", i);
        seen[i] = host(f, url);
        for (int j = 0; j < i; j += 97)
            assert_ptr_not_equal(seen[i], seen[j]);
        /* Every other origin also gets a URL, so queues survive the table's growth. */
        if (i % 2 == 0)
            assert_int_equal(frontier_push(f, seen[i], url, strlen(url), 0, seen[i], NULL), 0);
    }
    for (int i = 0; i < MANY; i++) {
        char name[32];
        snprintf(url, sizeof url, "http://host%d.example/again", i);
        snprintf(name, sizeof name, "host%d.example", i);
        assert_ptr_equal(host(f, url), seen[i]);
        assert_string_equal(seen[i]->name, name);
    }
    assert_int_equal(stats(f).queued, MANY / 2);
    frontier_set_input_open(f, 0);
    for (int i = 0; i < MANY; i += 2) {
        snprintf(url, sizeof url, "http://host%d.example/", i);
        struct frontier_item *it = expect_item(f, 0, url);
        assert_ptr_equal(it->host, seen[i]);
        frontier_done(f, it, 0);
    }
    expect_empty(f, 0);
    frontier_destroy(f);
}

/* ---- order ---- */

static void test_item_fields(void **state)
{
    (void)state;
    frontier *f = make(0, 0, 0);
    struct frontier_host *root = host(f, "http://start.example/");
    struct frontier_host *h = host(f, "http://example.com/");
    const char *url = "http://example.com/page?x=1#not-this";
    size_t len = strlen("http://example.com/page?x=1");
    assert_int_equal(frontier_push(f, h, url, len, 0, root, NULL), 0);
    struct frontier_item *it = expect_item(f, 0, "http://example.com/page?x=1");
    assert_ptr_equal(it->host, h);
    assert_ptr_equal(it->root, root);
    assert_int_equal(it->depth, 0);
    frontier_done(f, it, 0);
    frontier_destroy(f);
}

static void test_fifo_per_origin(void **state)
{
    (void)state;
    frontier *f = make(0, 0, 0);
    push(f, "http://a.example/1", 0);
    push(f, "http://a.example/2", 0);
    push(f, "http://a.example/3", 0);
    frontier_set_input_open(f, 0);
    struct frontier_item *it[3];
    it[0] = expect_item(f, 0, "http://a.example/1");
    it[1] = expect_item(f, 0, "http://a.example/2");
    it[2] = expect_item(f, 0, "http://a.example/3");
    expect_wait(f, 0, UINT64_MAX);
    for (int i = 0; i < 3; i++)
        frontier_done(f, it[i], 0);
    expect_empty(f, 0);
    frontier_destroy(f);
}

static void test_origins_take_turns(void **state)
{
    (void)state;
    frontier *f = make(0, 0, 0);
    /* All of A first, then all of B: the frontier still alternates. */
    push(f, "http://a.example/1", 0);
    push(f, "http://a.example/2", 0);
    push(f, "http://a.example/3", 0);
    push(f, "http://b.example/1", 0);
    push(f, "http://b.example/2", 0);
    push(f, "http://b.example/3", 0);
    static const char *const order[] = {
        "http://a.example/1", "http://b.example/1", "http://a.example/2",
        "http://b.example/2", "http://a.example/3", "http://b.example/3",
    };
    struct frontier_item *it[6];
    for (int i = 0; i < 6; i++)
        it[i] = expect_item(f, 0, order[i]);
    for (int i = 0; i < 6; i++)
        frontier_done(f, it[i], 0);
    frontier_set_input_open(f, 0);
    expect_empty(f, 0);
    frontier_destroy(f);
}

static void test_turns_three_origins_uneven(void **state)
{
    (void)state;
    frontier *f = make(0, 0, 0);
    push(f, "http://a.example/1", 0);
    push(f, "http://a.example/2", 0);
    push(f, "http://a.example/3", 0);
    push(f, "http://b.example/1", 0);
    push(f, "http://c.example/1", 0);
    push(f, "http://c.example/2", 0);
    static const char *const order[] = {
        "http://a.example/1", "http://b.example/1", "http://c.example/1",
        "http://a.example/2", "http://c.example/2", "http://a.example/3",
    };
    for (int i = 0; i < 6; i++)
        frontier_done(f, expect_item(f, 0, order[i]), 0);
    frontier_set_input_open(f, 0);
    expect_empty(f, 0);
    frontier_destroy(f);
}

/* ---- per_host ---- */

static void test_per_host_cap(void **state)
{
    (void)state;
    frontier *f = make(2, 0, 0);
    for (int i = 1; i <= 5; i++) {
        char url[32];
        snprintf(url, sizeof url, "http://a.example/%d", i);
        push(f, url, 0);
    }
    frontier_set_input_open(f, 0);
    struct frontier_item *a1 = expect_item(f, 0, "http://a.example/1");
    struct frontier_item *a2 = expect_item(f, 0, "http://a.example/2");
    expect_wait(f, 0, UINT64_MAX);
    expect_wait(f, 5000, UINT64_MAX); /* time alone does not help */
    assert_int_equal(stats(f).in_flight, 2);
    assert_int_equal(stats(f).queued, 3);

    /* A at its cap does not hold B back, neither queued before nor after. */
    push(f, "http://b.example/1", 0);
    push(f, "http://b.example/2", 0);
    struct frontier_item *b1 = expect_item(f, 10, "http://b.example/1");
    struct frontier_item *b2 = expect_item(f, 10, "http://b.example/2");
    expect_wait(f, 10, UINT64_MAX);
    frontier_done(f, b1, 11);
    frontier_done(f, b2, 11);
    expect_wait(f, 11, UINT64_MAX);

    frontier_done(f, a2, 20);
    struct frontier_item *a3 = expect_item(f, 20, "http://a.example/3");
    expect_wait(f, 20, UINT64_MAX);
    frontier_done(f, a1, 30);
    struct frontier_item *a4 = expect_item(f, 30, "http://a.example/4");
    expect_wait(f, 30, UINT64_MAX);
    frontier_done(f, a3, 40);
    struct frontier_item *a5 = expect_item(f, 40, "http://a.example/5");
    expect_wait(f, 40, UINT64_MAX);
    frontier_done(f, a4, 50);
    expect_wait(f, 50, UINT64_MAX);
    frontier_done(f, a5, 60);
    expect_empty(f, 60);
    frontier_destroy(f);
}

static void test_per_host_cap_push_while_busy(void **state)
{
    (void)state;
    /* An origin at its cap with nothing queued; a URL pushed then waits for a done. */
    frontier *f = make(1, 0, 0);
    push(f, "http://a.example/1", 0);
    struct frontier_item *a1 = expect_item(f, 0, "http://a.example/1");
    push(f, "http://a.example/2", 0);
    expect_wait(f, 0, UINT64_MAX);
    push(f, "http://b.example/1", 0);
    struct frontier_item *b1 = expect_item(f, 0, "http://b.example/1");
    frontier_done(f, a1, 1);
    struct frontier_item *a2 = expect_item(f, 1, "http://a.example/2");
    frontier_done(f, a2, 2);
    frontier_done(f, b1, 2);
    frontier_set_input_open(f, 0);
    expect_empty(f, 2);
    frontier_destroy(f);
}

/* ---- delay_ms ---- */

static void test_delay_spaces_one_origin_only(void **state)
{
    (void)state;
    frontier *f = make(0, 1000, 0);
    push(f, "http://a.example/1", 0);
    push(f, "http://a.example/2", 0);
    push(f, "http://a.example/3", 0);
    struct frontier_item *a1 = expect_item(f, 100, "http://a.example/1");
    expect_wait(f, 100, 1100);
    frontier_done(f, a1, 150); /* the delay runs from the start, not the end */
    expect_wait(f, 150, 1100);

    /* Another origin is not held back by A's delay. */
    push(f, "http://b.example/1", 0);
    struct frontier_item *b1 = expect_item(f, 200, "http://b.example/1");
    expect_wait(f, 200, 1100);
    expect_wait(f, 1099, 1100);

    struct frontier_item *a2 = expect_item(f, 1100, "http://a.example/2");
    expect_wait(f, 1100, 2100);
    /* Late: the next start counts from the actual one. */
    struct frontier_item *a3 = expect_item(f, 2500, "http://a.example/3");
    frontier_done(f, a2, 2500);
    frontier_done(f, a3, 2600);
    frontier_done(f, b1, 2600);
    frontier_set_input_open(f, 0);
    expect_empty(f, 2600);
    frontier_destroy(f);
}

/* An item held before its request starts (waiting for a slot, or for a store's answer):
 * the origin's delay runs from the start, and nothing more of that origin comes out
 * before it, so that two held items never start together. Other origins go on. */
static void test_delay_counts_from_the_start_of_a_held_item(void **state)
{
    (void)state;
    frontier *f = make(0, 1000, 0);
    push(f, "http://a.example/1", 0);
    push(f, "http://a.example/2", 0);
    push(f, "http://b.example/1", 0);
    struct frontier_item *it = NULL;
    uint64_t wake = 0;
    assert_int_equal(frontier_next(f, 0, &it, &wake), FRONTIER_ITEM);
    struct frontier_item *a1 = it;
    assert_string_equal(a1->url, "http://a.example/1");
    /* Held: A hands out nothing more, even past its delay; B is not held back. */
    struct frontier_item *b1 = expect_item(f, 10, "http://b.example/1");
    expect_wait(f, 1500, UINT64_MAX);
    frontier_started(f, a1, 2000);
    expect_wait(f, 2000, 3000);
    expect_wait(f, 2999, 3000);
    struct frontier_item *a2 = expect_item(f, 3000, "http://a.example/2");
    frontier_done(f, a1, 3000);
    frontier_done(f, a2, 3000);
    frontier_done(f, b1, 3000);
    frontier_set_input_open(f, 0);
    expect_empty(f, 3000);
    frontier_destroy(f);
}

/* A held item given back unstarted (reused from a store, cancelled): no request was made,
 * so the origin's next item may start at once, by the clock of its last real start. */
static void test_delay_unstarted_item_leaves_the_clock(void **state)
{
    (void)state;
    frontier *f = make(0, 1000, 0);
    push(f, "http://a.example/1", 0);
    push(f, "http://a.example/2", 0);
    push(f, "http://a.example/3", 0);
    struct frontier_item *a1 = expect_item(f, 0, "http://a.example/1"); /* started at 0 */
    struct frontier_item *it = NULL;
    uint64_t wake = 0;
    assert_int_equal(frontier_next(f, 1000, &it, &wake), FRONTIER_ITEM);
    struct frontier_item *a2 = it;
    expect_wait(f, 1200, UINT64_MAX);
    frontier_done(f, a2, 1200); /* never started */
    struct frontier_item *a3 = expect_item(f, 1200, "http://a.example/3");
    expect_wait(f, 1200, UINT64_MAX); /* drained; a3 is in flight */
    frontier_done(f, a1, 1300);
    frontier_done(f, a3, 1300);
    frontier_set_input_open(f, 0);
    expect_empty(f, 1300);
    frontier_destroy(f);
}

static void test_delay_earliest_wake_of_several(void **state)
{
    (void)state;
    frontier *f = make(0, 1000, 0);
    push(f, "http://a.example/1", 0);
    push(f, "http://a.example/2", 0);
    push(f, "http://b.example/1", 0);
    push(f, "http://b.example/2", 0);
    struct frontier_item *a1 = expect_item(f, 0, "http://a.example/1");
    struct frontier_item *b1 = expect_item(f, 300, "http://b.example/1");
    expect_wait(f, 300, 1000);
    struct frontier_item *a2 = expect_item(f, 1000, "http://a.example/2");
    expect_wait(f, 1000, 1300);
    struct frontier_item *b2 = expect_item(f, 1300, "http://b.example/2");
    frontier_done(f, a1, 1300);
    frontier_done(f, b1, 1300);
    frontier_done(f, a2, 1300);
    frontier_done(f, b2, 1300);
    frontier_set_input_open(f, 0);
    expect_empty(f, 1300);
    frontier_destroy(f);
}

static void test_delay_applies_to_url_pushed_later(void **state)
{
    (void)state;
    /* A's queue ran empty after a start; a URL pushed within the delay still waits. */
    frontier *f = make(0, 1000, 0);
    push(f, "http://a.example/1", 0);
    struct frontier_item *a1 = expect_item(f, 5000, "http://a.example/1");
    push(f, "http://a.example/2", 0);
    expect_wait(f, 5200, 6000);
    struct frontier_item *a2 = expect_item(f, 6000, "http://a.example/2");
    frontier_done(f, a1, 6000);
    frontier_done(f, a2, 6000);
    frontier_destroy(f);
}

static void test_delay_many_origins_wake_in_order(void **state)
{
    (void)state;
    /* Origins started one after another, each with its own Crawl-delay in a scrambled
     * order, come due in order of start plus delay. */
    enum { N = 37 };
    frontier *f = make(0, 0, 1);
    char url[64], body[64];
    struct frontier_host *h[N];
    for (int i = 0; i < N; i++) {
        for (int k = 1; k <= 2; k++) {
            snprintf(url, sizeof url, "http://h%d.example/%d", i, k);
            h[i] = push(f, url, 0);
        }
    }
    frontier_set_input_open(f, 0);
    uint64_t due[N];
    for (int i = 0; i < N; i++) {
        int tenths = (i * 17) % N + 1; /* a permutation of 1..N */
        snprintf(body, sizeof body, "User-agent: *\nCrawl-delay: %d.%d\n", tenths / 10,
                 tenths % 10);
        assert_ptr_equal(frontier_robots_wanted(f), h[i]);
        frontier_robots_known(f, h[i], rules(body), 0);
        due[i] = (uint64_t)i + (uint64_t)tenths * 100;
    }
    for (int i = 0; i < N; i++) {
        snprintf(url, sizeof url, "http://h%d.example/1", i);
        frontier_done(f, expect_item(f, (uint64_t)i, url), (uint64_t)i);
    }
    for (int round = 0; round < N; round++) {
        int first = -1;
        for (int i = 0; i < N; i++) {
            if (due[i] != UINT64_MAX && (first < 0 || due[i] < due[first]))
                first = i;
        }
        expect_wait(f, due[first] - 1, due[first]);
        snprintf(url, sizeof url, "http://h%d.example/2", first);
        frontier_done(f, expect_item(f, due[first], url), due[first]);
        due[first] = UINT64_MAX;
    }
    expect_empty(f, 10000);
    frontier_destroy(f);
}

static void test_crawl_delay_exact_ms(void **state)
{
    (void)state;
    /* Decimal Crawl-delays are whole milliseconds, not a hair under. */
    static const struct {
        const char *value;
        uint64_t ms;
    } cases[] = {
        {"2.01", 2010}, {"0.035", 35}, {"1.001", 1001}, {"32.3", 32300}, {"0.3", 300},
        {"7", 7000},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        frontier *f = make(0, 0, 1);
        struct frontier_host *a = push(f, "http://a.example/1", 0);
        push(f, "http://a.example/2", 0);
        char body[64];
        snprintf(body, sizeof body, "User-agent: *\nCrawl-delay: %s\n", cases[i].value);
        assert_ptr_equal(frontier_robots_wanted(f), a);
        frontier_robots_known(f, a, rules(body), 0);
        frontier_done(f, expect_item(f, 1000, "http://a.example/1"), 1000);
        expect_wait(f, 1000, 1000 + cases[i].ms);
        frontier_done(f, expect_item(f, 1000 + cases[i].ms, "http://a.example/2"), 0);
        frontier_destroy(f);
    }
}

static void test_delay_and_cap(void **state)
{
    (void)state;
    frontier *f = make(1, 1000, 0);
    push(f, "http://a.example/1", 0);
    push(f, "http://a.example/2", 0);
    push(f, "http://a.example/3", 0);
    struct frontier_item *it = expect_item(f, 0, "http://a.example/1");
    expect_wait(f, 0, UINT64_MAX); /* at its cap: only a done helps */
    frontier_done(f, it, 200);
    expect_wait(f, 200, 1000); /* free again, but spaced */
    it = expect_item(f, 1000, "http://a.example/2");
    expect_wait(f, 3000, UINT64_MAX); /* the delay has passed; the cap has not */
    frontier_done(f, it, 3000);
    it = expect_item(f, 3000, "http://a.example/3");
    frontier_done(f, it, 3100);
    frontier_set_input_open(f, 0);
    expect_empty(f, 3100);
    frontier_destroy(f);
}

/* ---- levels ---- */

static void test_level1_waits_for_level0_and_input(void **state)
{
    (void)state;
    frontier *f = make(0, 0, 0);
    push(f, "http://a.example/", 0);
    push(f, "http://b.example/", 0);
    push(f, "http://a.example/x", 1); /* found while depth 0 is still queued */
    struct frontier_item *a = expect_item(f, 0, "http://a.example/");
    push(f, "http://b.example/y", 1); /* found while depth 0 is in flight */
    struct frontier_item *b = expect_item(f, 0, "http://b.example/");
    expect_wait(f, 0, UINT64_MAX);
    assert_int_equal(stats(f).level, 0);

    frontier_done(f, a, 1);
    expect_wait(f, 1, UINT64_MAX);
    frontier_done(f, b, 2);
    /* Level 0 all done, but the input is still open: more depth-0 URLs may come. */
    expect_wait(f, 2, UINT64_MAX);
    expect_wait(f, 100000, UINT64_MAX);
    push(f, "http://c.example/", 0);
    struct frontier_item *c = expect_item(f, 3, "http://c.example/");
    frontier_set_input_open(f, 0);
    expect_wait(f, 3, UINT64_MAX); /* input closed, but c is in flight */
    assert_int_equal(stats(f).level, 0);
    frontier_done(f, c, 4);

    struct frontier_item *x = expect_item(f, 4, "http://a.example/x");
    assert_int_equal(x->depth, 1);
    assert_int_equal(stats(f).level, 1);
    struct frontier_item *y = expect_item(f, 4, "http://b.example/y");
    assert_int_equal(y->depth, 1);
    frontier_done(f, x, 5);
    frontier_done(f, y, 5);
    expect_empty(f, 5);
    frontier_destroy(f);
}

static void test_input_closed_first_then_done(void **state)
{
    (void)state;
    frontier *f = make(0, 0, 0);
    push(f, "http://a.example/", 0);
    frontier_set_input_open(f, 0);
    struct frontier_item *a = expect_item(f, 0, "http://a.example/");
    push(f, "http://a.example/1", 1);
    expect_wait(f, 0, UINT64_MAX);
    frontier_done(f, a, 1);
    frontier_done(f, expect_item(f, 1, "http://a.example/1"), 2);
    expect_empty(f, 2);
    frontier_destroy(f);
}

static void test_level2_after_level1(void **state)
{
    (void)state;
    frontier *f = make(0, 0, 0);
    push(f, "http://a.example/", 0);
    frontier_set_input_open(f, 0);
    struct frontier_item *root = expect_item(f, 0, "http://a.example/");
    push(f, "http://a.example/1a", 1);
    push(f, "http://b.example/1b", 1);
    frontier_done(f, root, 1);

    struct frontier_item *l1a = expect_item(f, 1, "http://a.example/1a");
    push(f, "http://a.example/2a", 2);
    struct frontier_item *l1b = expect_item(f, 1, "http://b.example/1b");
    push(f, "http://c.example/2c", 2);
    expect_wait(f, 1, UINT64_MAX);
    frontier_done(f, l1a, 2);
    expect_wait(f, 2, UINT64_MAX); /* 1b still in flight */
    assert_int_equal(stats(f).level, 1);
    frontier_done(f, l1b, 3);

    struct frontier_item *l2a = expect_item(f, 3, "http://a.example/2a");
    assert_int_equal(stats(f).level, 2);
    struct frontier_item *l2c = expect_item(f, 3, "http://c.example/2c");
    assert_int_equal(l2c->depth, 2);
    frontier_done(f, l2a, 4);
    frontier_done(f, l2c, 4);
    expect_empty(f, 4);
    assert_int_equal(stats(f).level, 2);
    frontier_destroy(f);
}

static void test_empty_ends(void **state)
{
    (void)state;
    frontier *f = make(0, 0, 0);
    expect_empty(f, 0); /* nothing queued, held or in flight */
    frontier_set_input_open(f, 0);
    expect_empty(f, 0);
    frontier_destroy(f);

    /* A level that holds nothing below it ends the crawl. */
    f = make(0, 0, 0);
    push(f, "http://a.example/", 0);
    frontier_set_input_open(f, 0);
    struct frontier_item *it = expect_item(f, 0, "http://a.example/");
    expect_wait(f, 0, UINT64_MAX);
    frontier_done(f, it, 1);
    expect_empty(f, 1);
    expect_empty(f, 2);
    assert_int_equal(stats(f).level, 0);
    frontier_destroy(f);
}

static void test_skip_empty_level(void **state)
{
    (void)state;
    frontier *f = make(0, 0, 0);
    push(f, "http://a.example/", 0);
    struct frontier_item *root = expect_item(f, 0, "http://a.example/");
    /* Only depth 2 is held: depth 1 has nothing. */
    push(f, "http://a.example/deep", 2);
    frontier_done(f, root, 1);
    expect_wait(f, 1, UINT64_MAX); /* input still open */
    frontier_set_input_open(f, 0);
    struct frontier_item *deep = expect_item(f, 1, "http://a.example/deep");
    assert_int_equal(deep->depth, 2);
    assert_int_equal(stats(f).level, 2);
    frontier_done(f, deep, 2);
    expect_empty(f, 2);
    frontier_destroy(f);

    /* Nothing at depth 0 at all. */
    f = make(0, 0, 0);
    push(f, "http://b.example/deep", 2);
    push(f, "http://b.example/deeper", 3);
    expect_wait(f, 0, UINT64_MAX);
    frontier_set_input_open(f, 0);
    deep = expect_item(f, 0, "http://b.example/deep");
    expect_wait(f, 0, UINT64_MAX);
    frontier_done(f, deep, 0);
    frontier_done(f, expect_item(f, 0, "http://b.example/deeper"), 0);
    assert_int_equal(stats(f).level, 3);
    expect_empty(f, 0);
    frontier_destroy(f);
}

static void test_released_level_keeps_turns_and_delay(void **state)
{
    (void)state;
    /* A released level goes through the same turns and spacing as the first one. */
    frontier *f = make(0, 1000, 0);
    push(f, "http://a.example/", 0);
    frontier_set_input_open(f, 0);
    struct frontier_item *root = expect_item(f, 0, "http://a.example/");
    push(f, "http://a.example/1", 1);
    push(f, "http://a.example/2", 1);
    push(f, "http://b.example/1", 1);
    frontier_done(f, root, 10);
    struct frontier_item *b1 = expect_item(f, 500, "http://b.example/1");
    expect_wait(f, 500, 1000); /* a.example started at 0 */
    struct frontier_item *a1 = expect_item(f, 1000, "http://a.example/1");
    expect_wait(f, 1000, 2000);
    struct frontier_item *a2 = expect_item(f, 2000, "http://a.example/2");
    frontier_done(f, b1, 2000);
    frontier_done(f, a1, 2000);
    frontier_done(f, a2, 2000);
    expect_empty(f, 2000);
    frontier_destroy(f);
}

/* ---- robots.txt ---- */

static void test_robots_wanted_once_in_order(void **state)
{
    (void)state;
    frontier *f = make(0, 0, 1);
    /* Only looked up (a scope check does that): its server is never asked. */
    struct frontier_host *looked = host(f, "http://looked.example/");
    struct frontier_host *a = push(f, "http://a.example/", 0);
    struct frontier_host *b = push(f, "http://b.example/x", 0);
    assert_ptr_equal(push(f, "http://a.example/again", 0), a);
    struct frontier_host *c = push(f, "http://c.example/", 0);
    struct frontier_host *a8080 = push(f, "http://a.example:8080/", 0);
    assert_ptr_equal(frontier_robots_wanted(f), a);
    assert_ptr_equal(frontier_robots_wanted(f), b);
    push(f, "http://b.example/more", 0); /* queued again: not wanted again */
    assert_ptr_equal(frontier_robots_wanted(f), c);
    assert_ptr_equal(frontier_robots_wanted(f), a8080);
    assert_null(frontier_robots_wanted(f));
    struct frontier_host *d = push(f, "http://d.example/", 0);
    assert_ptr_equal(frontier_robots_wanted(f), d);
    assert_null(frontier_robots_wanted(f));
    /* Its first URL makes the looked-up origin worth a request. */
    assert_ptr_equal(push(f, "http://looked.example/page", 0), looked);
    assert_ptr_equal(frontier_robots_wanted(f), looked);
    assert_null(frontier_robots_wanted(f));
    frontier_robots_known(f, a, allow_all(), 0);
    frontier_robots_known(f, b, allow_all(), 0);
    frontier_robots_known(f, c, allow_all(), 0);
    frontier_robots_known(f, a8080, allow_all(), 0);
    frontier_robots_known(f, d, allow_all(), 0);
    frontier_robots_known(f, looked, allow_all(), 0);
    frontier_destroy(f);
}

static void test_robots_not_used(void **state)
{
    (void)state;
    frontier *f = make(0, 0, 0);
    push(f, "http://a.example/", 0);
    assert_null(frontier_robots_wanted(f));
    frontier_done(f, expect_item(f, 0, "http://a.example/"), 0);
    frontier_destroy(f);
}

static void test_robots_gate_pages(void **state)
{
    (void)state;
    frontier *f = make(0, 0, 1);
    struct frontier_host *a = push(f, "http://a.example/1", 0);
    push(f, "http://a.example/2", 0);
    expect_wait(f, 0, UINT64_MAX); /* wanted, not yet handed out */
    assert_ptr_equal(frontier_robots_wanted(f), a);
    expect_wait(f, 0, UINT64_MAX); /* being fetched */
    expect_wait(f, 99999, UINT64_MAX);
    assert_int_equal(stats(f).queued, 2);

    /* Another origin whose rules are known is not held back. */
    struct frontier_host *b = push(f, "http://b.example/1", 0);
    assert_ptr_equal(frontier_robots_wanted(f), b);
    frontier_robots_known(f, b, allow_all(), 10);
    struct frontier_item *b1 = expect_item(f, 10, "http://b.example/1");
    expect_wait(f, 10, UINT64_MAX);

    frontier_robots_known(f, a, allow_all(), 20);
    struct frontier_item *a1 = expect_item(f, 20, "http://a.example/1");
    struct frontier_item *a2 = expect_item(f, 20, "http://a.example/2");
    frontier_done(f, a1, 30);
    frontier_done(f, a2, 30);
    frontier_done(f, b1, 30);
    frontier_set_input_open(f, 0);
    expect_empty(f, 30);
    assert_int_equal(stats(f).disallowed, 0);
    frontier_destroy(f);
}

static void test_robots_known_before_pages(void **state)
{
    (void)state;
    /* Rules may come before the origin has anything queued. */
    frontier *f = make(0, 0, 1);
    struct frontier_host *a = host(f, "http://a.example/");
    assert_null(frontier_robots_wanted(f)); /* nothing queued: not asked for */
    frontier_robots_known(f, a, rules("User-agent: *\nDisallow: /no\n"), 0);
    push(f, "http://a.example/no", 0);
    push(f, "http://a.example/yes", 0);
    frontier_done(f, expect_item(f, 0, "http://a.example/yes"), 0);
    assert_int_equal(stats(f).disallowed, 1);
    frontier_set_input_open(f, 0);
    expect_empty(f, 0);
    frontier_destroy(f);
}

static void test_robots_disallowed_dropped(void **state)
{
    (void)state;
    frontier *f = make(0, 0, 1);
    struct frontier_host *a = push(f, "http://a.example/", 0);
    push(f, "http://a.example/private/x", 0);
    push(f, "http://a.example/a?secret=1", 0);
    push(f, "http://a.example/a", 0);
    push(f, "http://a.example/public", 0);
    push(f, "http://a.example/private", 0);
    push(f, "http://a.example/search?q=x&page=2", 0);
    push(f, "http://a.example/search", 0);
    frontier_set_input_open(f, 0);
    assert_ptr_equal(frontier_robots_wanted(f), a);
    frontier_robots_known(f, a,
                          rules("User-agent: *\n"
                                "Disallow: /private\n"
                                "Disallow: /a?secret\n"
                                "Disallow: /*page=\n"),
                          0);
    static const char *const allowed[] = {
        "http://a.example/", "http://a.example/a", "http://a.example/public",
        "http://a.example/search",
    };
    for (size_t i = 0; i < sizeof allowed / sizeof allowed[0]; i++)
        frontier_done(f, expect_item(f, 0, allowed[i]), 0);
    expect_empty(f, 0);
    struct frontier_stats s = stats(f);
    assert_int_equal(s.disallowed, 4);
    assert_int_equal(s.queued, 0);
    assert_int_equal(s.in_flight, 0);
    frontier_destroy(f);
}

static void test_robots_disallow_all_one_origin(void **state)
{
    (void)state;
    frontier *f = make(0, 0, 1);
    struct frontier_host *a = push(f, "http://a.example/", 0);
    push(f, "http://a.example/1", 0);
    struct frontier_host *b = push(f, "http://b.example/", 0);
    push(f, "http://a.example/2", 0);
    push(f, "http://b.example/1", 0);
    frontier_set_input_open(f, 0);
    assert_ptr_equal(frontier_robots_wanted(f), a);
    assert_ptr_equal(frontier_robots_wanted(f), b);
    frontier_robots_known(f, a, disallow_all(), 0);
    frontier_robots_known(f, b, allow_all(), 0);
    struct frontier_item *b0 = expect_item(f, 0, "http://b.example/");
    struct frontier_item *b1 = expect_item(f, 0, "http://b.example/1");
    expect_wait(f, 0, UINT64_MAX);
    assert_int_equal(stats(f).disallowed, 3);
    frontier_done(f, b0, 1);
    /* A deeper page of the disallowed origin is dropped too. */
    push(f, "http://a.example/3", 1);
    frontier_done(f, b1, 1);
    expect_empty(f, 1);
    assert_int_equal(stats(f).disallowed, 4);
    frontier_destroy(f);
}

static void test_robots_crawl_delay(void **state)
{
    (void)state;
    frontier *f = make(0, 500, 1);
    struct frontier_host *a = push(f, "http://a.example/1", 0);
    push(f, "http://a.example/2", 0);
    push(f, "http://a.example/3", 0);
    struct frontier_host *b = push(f, "http://b.example/1", 0);
    push(f, "http://b.example/2", 0);
    frontier_set_input_open(f, 0);
    assert_ptr_equal(frontier_robots_wanted(f), a);
    assert_ptr_equal(frontier_robots_wanted(f), b);
    frontier_robots_known(f, a, rules("User-agent: *\nCrawl-delay: 2\n"), 1000);
    /* Shorter than the configured delay: the configured one stands. */
    frontier_robots_known(f, b, rules("User-agent: *\nCrawl-delay: 0.1\n"), 1000);

    struct frontier_item *a1 = expect_item(f, 1000, "http://a.example/1");
    struct frontier_item *b1 = expect_item(f, 1000, "http://b.example/1");
    expect_wait(f, 1000, 1500);
    struct frontier_item *b2 = expect_item(f, 1500, "http://b.example/2");
    expect_wait(f, 1500, 3000);
    expect_wait(f, 2999, 3000);
    struct frontier_item *a2 = expect_item(f, 3000, "http://a.example/2");
    expect_wait(f, 3000, 5000);
    struct frontier_item *a3 = expect_item(f, 5000, "http://a.example/3");
    frontier_done(f, a1, 5000);
    frontier_done(f, a2, 5000);
    frontier_done(f, a3, 5000);
    frontier_done(f, b1, 5000);
    frontier_done(f, b2, 5000);
    expect_empty(f, 5000);
    frontier_destroy(f);
}

static void test_robots_crawl_delay_without_configured_delay(void **state)
{
    (void)state;
    frontier *f = make(0, 0, 1);
    struct frontier_host *a = push(f, "http://a.example/1", 0);
    push(f, "http://a.example/2", 0);
    assert_ptr_equal(frontier_robots_wanted(f), a);
    frontier_robots_known(f, a, rules("User-agent: areq\nCrawl-delay: 1.5\n"), 0);
    struct frontier_item *a1 = expect_item(f, 0, "http://a.example/1");
    expect_wait(f, 0, 1500);
    struct frontier_item *a2 = expect_item(f, 1500, "http://a.example/2");
    frontier_done(f, a1, 1500);
    frontier_done(f, a2, 1500);
    frontier_destroy(f);
}

static void test_robots_wanted_for_held_level(void **state)
{
    (void)state;
    frontier *f = make(0, 0, 1);
    struct frontier_host *a = push(f, "http://a.example/", 0);
    assert_ptr_equal(frontier_robots_wanted(f), a);
    frontier_robots_known(f, a, allow_all(), 0);
    struct frontier_item *root = expect_item(f, 0, "http://a.example/");

    /* c.example is first seen at depth 1, held while level 0 runs; its robots.txt can be
     * fetched in the meantime. */
    struct frontier_host *c = push(f, "http://c.example/page", 1);
    assert_ptr_equal(frontier_robots_wanted(f), c);
    assert_null(frontier_robots_wanted(f));
    frontier_robots_known(f, c, rules("User-agent: *\nDisallow: /page\n"), 5);
    push(f, "http://c.example/other", 1);
    frontier_set_input_open(f, 0);
    expect_wait(f, 5, UINT64_MAX);
    frontier_done(f, root, 6);
    frontier_done(f, expect_item(f, 6, "http://c.example/other"), 7);
    assert_int_equal(stats(f).disallowed, 1);
    expect_empty(f, 7);
    frontier_destroy(f);
}

static void test_robots_pending_at_released_level(void **state)
{
    (void)state;
    /* A level released while an origin's rules are still unknown waits for them. */
    frontier *f = make(0, 0, 1);
    struct frontier_host *a = push(f, "http://a.example/", 0);
    frontier_set_input_open(f, 0);
    assert_ptr_equal(frontier_robots_wanted(f), a);
    frontier_robots_known(f, a, allow_all(), 0);
    struct frontier_item *root = expect_item(f, 0, "http://a.example/");
    struct frontier_host *c = push(f, "http://c.example/x", 1);
    frontier_done(f, root, 1);
    expect_wait(f, 1, UINT64_MAX);
    assert_int_equal(stats(f).level, 1);
    assert_ptr_equal(frontier_robots_wanted(f), c);
    expect_wait(f, 2, UINT64_MAX);
    frontier_robots_known(f, c, allow_all(), 3);
    frontier_done(f, expect_item(f, 3, "http://c.example/x"), 4);
    expect_empty(f, 4);
    frontier_destroy(f);
}

/* ---- stats ---- */

static void assert_stats(const frontier *f, size_t queued, size_t in_flight, size_t disallowed,
                         unsigned level)
{
    struct frontier_stats s = stats(f);
    if (s.queued != queued || s.in_flight != in_flight || s.disallowed != disallowed ||
        s.level != level)
        fail_msg("stats queued %zu in_flight %zu disallowed %zu level %u, expected %zu %zu %zu %u",
                 s.queued, s.in_flight, s.disallowed, s.level, queued, in_flight, disallowed,
                 level);
}

static void test_stats_scenario(void **state)
{
    (void)state;
    frontier *f = make(0, 0, 1);
    assert_stats(f, 0, 0, 0, 0);
    struct frontier_host *a = push(f, "http://a.example/", 0);
    push(f, "http://a.example/secret", 0);
    assert_stats(f, 2, 0, 0, 0);
    push(f, "http://a.example/d1", 1);
    push(f, "http://a.example/d2", 2);
    assert_stats(f, 4, 0, 0, 0); /* held levels count as queued */
    assert_ptr_equal(frontier_robots_wanted(f), a);
    frontier_robots_known(f, a, rules("User-agent: *\nDisallow: /secret\n"), 0);
    struct frontier_item *root = expect_item(f, 0, "http://a.example/");
    assert_stats(f, 3, 1, 0, 0);
    frontier_set_input_open(f, 0);
    expect_wait(f, 0, UINT64_MAX); /* drops /secret on the way */
    assert_stats(f, 2, 1, 1, 0);
    frontier_done(f, root, 1);
    assert_stats(f, 2, 0, 1, 0);
    struct frontier_item *d1 = expect_item(f, 1, "http://a.example/d1");
    assert_stats(f, 1, 1, 1, 1);
    push(f, "http://a.example/d2b", 2);
    assert_stats(f, 2, 1, 1, 1);
    frontier_done(f, d1, 2);
    struct frontier_item *d2 = expect_item(f, 2, "http://a.example/d2");
    assert_stats(f, 1, 1, 1, 2);
    struct frontier_item *d2b = expect_item(f, 2, "http://a.example/d2b");
    assert_stats(f, 0, 2, 1, 2);
    frontier_done(f, d2, 3);
    frontier_done(f, d2b, 3);
    assert_stats(f, 0, 0, 1, 2);
    expect_empty(f, 3);
    frontier_destroy(f);
}

/* ---- life ---- */

static void test_destroy_null(void **state)
{
    (void)state;
    frontier_destroy(NULL);
}

static void test_destroy_with_everything_outstanding(void **state)
{
    (void)state;
    /* Queued, held, handed out and never given back, delayed, waiting for robots.txt, with
     * rules known and with rules being fetched: destroy frees all of it (ASan and valgrind
     * check). */
    frontier *f = make(1, 1000, 1);
    struct frontier_host *a = push(f, "http://a.example/1", 0);
    push(f, "http://a.example/2", 0);
    struct frontier_host *b = push(f, "http://b.example/1", 0);
    push(f, "http://b.example/2", 0);
    push(f, "http://b.example/3", 0);
    push(f, "http://c.example/1", 0); /* its robots.txt never wanted */
    push(f, "http://a.example/held1", 1);
    push(f, "http://b.example/held2", 2);
    push(f, "http://d.example/held3", 3);
    assert_ptr_equal(frontier_robots_wanted(f), a);
    assert_ptr_equal(frontier_robots_wanted(f), b);
    frontier_robots_known(f, a, rules("User-agent: *\nCrawl-delay: 3\n"), 0);
    frontier_robots_known(f, b, allow_all(), 0);
    struct frontier_item *a1 = expect_item(f, 0, "http://a.example/1");
    struct frontier_item *b1 = expect_item(f, 0, "http://b.example/1");
    frontier_done(f, b1, 5);
    struct frontier_item *b2 = expect_item(f, 1000, "http://b.example/2");
    (void)a1;
    (void)b2;
    assert_stats(f, 6, 2, 0, 0);
    frontier_destroy(f);
}

static void test_destroy_fresh(void **state)
{
    (void)state;
    frontier *f = make(0, 0, 1);
    host(f, "http://a.example/"); /* wanted, never handed out */
    frontier_destroy(f);
}

/* An item keeps where it was found for as long as it lives, and lets go of it when given
 * back, or when the frontier is destroyed with it outstanding (ASan and valgrind see leaks). */
static void test_found_on_is_shared_and_released(void **state)
{
    (void)state;
    frontier *f = make(0, 0, 0);
    struct frontier_ref *page = frontier_ref_create("http://a.example/page", 21);
    assert_non_null(page);
    struct frontier_host *h;
    const char *u1 = "http://a.example/1", *u2 = "http://a.example/2";
    assert_int_equal(frontier_host_of(f, u1, strlen(u1), &h), 0);
    assert_int_equal(frontier_push(f, h, u1, strlen(u1), 0, h, page), 0);
    assert_int_equal(frontier_push(f, h, u2, strlen(u2), 0, h, page), 0);
    assert_int_equal(page->refs, 3);
    frontier_ref_release(page); /* the items keep it */
    assert_string_equal(page->text, "http://a.example/page");
    struct frontier_item *it = NULL;
    uint64_t wake;
    assert_int_equal(frontier_next(f, 0, &it, &wake), FRONTIER_ITEM);
    assert_ptr_equal(it->found_on, page);
    assert_string_equal(it->found_on->text, "http://a.example/page");
    frontier_done(f, it, 0);
    assert_int_equal(page->refs, 1);
    assert_int_equal(frontier_next(f, 0, &it, &wake), FRONTIER_ITEM);
    frontier_destroy(f); /* frees the one handed out, and the reference with it */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_host_of_splits),
        cmocka_unit_test(test_host_set_scope),
        cmocka_unit_test(test_host_of_respects_len),
        cmocka_unit_test(test_host_of_einval),
        cmocka_unit_test(test_same_origin_same_host),
        cmocka_unit_test(test_many_origins_keep_pointers),
        cmocka_unit_test(test_item_fields),
        cmocka_unit_test(test_fifo_per_origin),
        cmocka_unit_test(test_origins_take_turns),
        cmocka_unit_test(test_turns_three_origins_uneven),
        cmocka_unit_test(test_per_host_cap),
        cmocka_unit_test(test_per_host_cap_push_while_busy),
        cmocka_unit_test(test_delay_spaces_one_origin_only),
        cmocka_unit_test(test_delay_counts_from_the_start_of_a_held_item),
        cmocka_unit_test(test_delay_unstarted_item_leaves_the_clock),
        cmocka_unit_test(test_delay_earliest_wake_of_several),
        cmocka_unit_test(test_delay_applies_to_url_pushed_later),
        cmocka_unit_test(test_delay_many_origins_wake_in_order),
        cmocka_unit_test(test_delay_and_cap),
        cmocka_unit_test(test_level1_waits_for_level0_and_input),
        cmocka_unit_test(test_input_closed_first_then_done),
        cmocka_unit_test(test_level2_after_level1),
        cmocka_unit_test(test_empty_ends),
        cmocka_unit_test(test_skip_empty_level),
        cmocka_unit_test(test_released_level_keeps_turns_and_delay),
        cmocka_unit_test(test_robots_wanted_once_in_order),
        cmocka_unit_test(test_robots_not_used),
        cmocka_unit_test(test_robots_gate_pages),
        cmocka_unit_test(test_robots_known_before_pages),
        cmocka_unit_test(test_robots_disallowed_dropped),
        cmocka_unit_test(test_robots_disallow_all_one_origin),
        cmocka_unit_test(test_robots_crawl_delay),
        cmocka_unit_test(test_robots_crawl_delay_without_configured_delay),
        cmocka_unit_test(test_crawl_delay_exact_ms),
        cmocka_unit_test(test_robots_wanted_for_held_level),
        cmocka_unit_test(test_robots_pending_at_released_level),
        cmocka_unit_test(test_stats_scenario),
        cmocka_unit_test(test_destroy_null),
        cmocka_unit_test(test_destroy_with_everything_outstanding),
        cmocka_unit_test(test_destroy_fresh),
        cmocka_unit_test(test_found_on_is_shared_and_released),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
