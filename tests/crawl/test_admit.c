/* Tests of admission (admit.h): a URL comes into the frontier once, and a failure on the
 * way in leaves it unseen. Allocation failures are injected by linking this test with
 * -Wl,--wrap for malloc, calloc and realloc: the wrappers fail the Nth call from the moment
 * a case arms them, which reaches every allocation admission makes, one after another. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "admit.h"
#include "frontier.h"
#include "seen.h"

/* ---- failing allocations ---- */

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t n);

static long allocs_left = -1; /* allocations let through before one fails; -1: none fails */
static int failed_one;

static int fail_now(void)
{
    if (allocs_left < 0)
        return 0;
    if (allocs_left-- > 0)
        return 0;
    failed_one = 1;
    allocs_left = -1; /* one failure a call of admit(): the next try should succeed */
    return 1;
}

void *__wrap_malloc(size_t n)
{
    return fail_now() ? NULL : __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t size)
{
    return fail_now() ? NULL : __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t n)
{
    return fail_now() ? NULL : __real_realloc(p, n);
}

static void fail_after(long n)
{
    failed_one = 0;
    allocs_left = n;
}

/* ---- cases ---- */

static size_t queued(const frontier *f)
{
    struct frontier_stats fs;
    frontier_get_stats(f, &fs);
    return fs.queued;
}

/* Admits `u` with the Nth allocation failing, for N = 0, 1, ... until one goes through
 * without a failure: after every failure the URL must still be admissible, once. */
static void admit_through_every_failure(struct admit_url u, unsigned depth_of_root_url)
{
    int went_through = 0;
    for (long n = 0; n < 100 && !went_through; n++) {
        struct frontier_limits limits = {0};
        frontier *f;
        seen_set seen;
        assert_int_equal(frontier_create(&limits, &f), 0);
        seen_init(&seen);
        struct frontier_host *root = NULL;
        if (depth_of_root_url != (unsigned)-1) {
            static const char start[] = "http://127.0.0.1:1/start";
            assert_int_equal(frontier_host_of(f, start, sizeof start - 1, &root), 0);
            u.root = root;
        }
        fail_after(n);
        int rc = admit(&seen, f, &u);
        allocs_left = -1;
        if (!failed_one) {
            assert_int_equal(rc, 1);
            went_through = 1;
        } else {
            assert_int_equal(rc, -ENOMEM);
            assert_int_equal(queued(f), 0);
            /* Not marked seen: the next time the URL comes, it is queued. */
            assert_int_equal(admit(&seen, f, &u), 1);
        }
        assert_int_equal(queued(f), 1);
        assert_int_equal(admit(&seen, f, &u), 0); /* once only */
        assert_int_equal(queued(f), 1);
        seen_finish(&seen);
        frontier_destroy(f);
    }
    assert_true(went_through);
}

static void listed_url_survives_out_of_memory(void **state)
{
    (void)state;
    static const char url[] = "http://127.0.0.1:1/listed";
    struct admit_url u = {.url = url, .len = sizeof url - 1, .listed_at = "list.txt:3"};
    admit_through_every_failure(u, (unsigned)-1);
}

static void found_url_survives_out_of_memory(void **state)
{
    (void)state;
    static const char url[] = "http://127.0.0.1:2/found";
    struct frontier_ref *on = frontier_ref_create("http://127.0.0.1:1/start", 24);
    assert_non_null(on);
    /* Depth 2: the frontier holds it back in a level it must first allocate. */
    struct admit_url u = {.url = url, .len = sizeof url - 1, .depth = 2, .found_on = on};
    admit_through_every_failure(u, 0);
    frontier_ref_release(on);
}

static int refuse_count;

static int refuse_first(void *arg, const struct frontier_host *h,
                        const struct frontier_host *root, const char *url, size_t len)
{
    (void)arg;
    (void)url;
    (void)len;
    assert_ptr_equal(h, root); /* a listed URL's chain begins at its own host */
    return refuse_count++ == 0 ? 0 : 1;
}

static void policy_refusal_leaves_url_unseen(void **state)
{
    (void)state;
    static const char url[] = "http://127.0.0.1:1/policy";
    struct frontier_limits limits = {0};
    frontier *f;
    seen_set seen;
    assert_int_equal(frontier_create(&limits, &f), 0);
    seen_init(&seen);
    struct admit_url u = {.url = url, .len = sizeof url - 1, .policy = refuse_first};
    assert_int_equal(admit(&seen, f, &u), 0);
    assert_int_equal(queued(f), 0);
    assert_int_equal(admit(&seen, f, &u), 1);
    assert_int_equal(admit(&seen, f, &u), 0);
    assert_int_equal(refuse_count, 2); /* the seen URL never reaches the policy */
    assert_int_equal(queued(f), 1);
    seen_finish(&seen);
    frontier_destroy(f);
}

static void url_without_host_is_an_error(void **state)
{
    (void)state;
    static const char url[] = "file:///etc/passwd";
    struct frontier_limits limits = {0};
    frontier *f;
    seen_set seen;
    assert_int_equal(frontier_create(&limits, &f), 0);
    seen_init(&seen);
    struct admit_url u = {.url = url, .len = sizeof url - 1};
    int rc = admit(&seen, f, &u);
    assert_true(rc < 0 && rc != -ENOMEM);
    assert_false(seen_contains(&seen, seen_hash(url, sizeof url - 1)));
    seen_finish(&seen);
    frontier_destroy(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(listed_url_survives_out_of_memory),
        cmocka_unit_test(found_url_survives_out_of_memory),
        cmocka_unit_test(policy_refusal_leaves_url_unseen),
        cmocka_unit_test(url_without_host_is_an_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
