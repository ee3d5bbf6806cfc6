/* Tests of the task layer: every case runs on a fresh loop and ends by checking that
 * uv_loop_close() returns 0, i.e. that the layer left no handle or request behind. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "task.h"
#include "test_loop.h"

struct env {
    uv_loop_t loop;
    task_sched sched;
};

static int setup(void **state)
{
    struct env *e = calloc(1, sizeof *e);
    assert_non_null(e);
    test_loop_open(&e->loop, &e->sched);
    *state = e;
    return 0;
}

static int teardown(void **state)
{
    struct env *e = *state;
    task_sched_close(&e->sched);
    test_loop_drain_and_close(&e->loop);
    free(e);
    return 0;
}

static void run(struct env *e)
{
    uv_run(&e->loop, UV_RUN_DEFAULT);
}

/* ---- a task that records each resume, for ordering checks ---- */

static int trace[64];
static size_t trace_len;

static void note(int v)
{
    if (trace_len < sizeof trace / sizeof trace[0])
        trace[trace_len++] = v;
}

struct simple {
    task t;
    int id;
    int yields;
    int done_calls;
};

static enum task_step simple_step(task *t)
{
    struct simple *f = (struct simple *)t;
    note(f->id);
    if (f->yields > 0) {
        f->yields--;
        return task_yield(t);
    }
    return task_finish(t, f->id * 10);
}

static void simple_done(task *t)
{
    ((struct simple *)t)->done_calls++;
}

static void test_spawn_runs_and_finishes(void **state)
{
    struct env *e = *state;
    trace_len = 0;
    struct simple s = {.id = 7};
    task_init(&s.t, simple_step, simple_done);
    task_spawn(&e->sched, &s.t, NULL);
    assert_false(task_is_done(&s.t)); /* spawning never runs task code */
    run(e);
    assert_true(task_is_done(&s.t));
    assert_int_equal(s.t.result, 70);
    assert_int_equal(s.done_calls, 1);
}

static void test_yield_interleaves_tasks(void **state)
{
    struct env *e = *state;
    trace_len = 0;
    struct simple a = {.id = 1, .yields = 2}, b = {.id = 2, .yields = 2};
    task_init(&a.t, simple_step, NULL);
    task_init(&b.t, simple_step, NULL);
    task_spawn(&e->sched, &a.t, NULL);
    task_spawn(&e->sched, &b.t, NULL);
    run(e);
    int want[] = {1, 2, 1, 2, 1, 2};
    assert_int_equal(trace_len, 6);
    assert_memory_equal(trace, want, sizeof want);
}

/* ---- await one child, gather many ---- */

struct parent {
    task t;
    struct simple kids[50];
    size_t nkids;
    int sum;
    int joins;
};

static enum task_step parent_step(task *t)
{
    struct parent *p = (struct parent *)t;
    switch (t->state) {
    case 0:
        for (size_t i = 0; i < p->nkids; i++) {
            p->kids[i] = (struct simple){.id = (int)i + 1, .yields = (int)(i % 4)};
            task_init(&p->kids[i].t, simple_step, NULL);
            task_spawn(t->sched, &p->kids[i].t, t);
        }
        t->state = 1;
        if (task_join(t) == TASK_SUSPENDED)
            return TASK_PENDING;
        /* fall through */
    case 1:
        p->joins++;
        for (size_t i = 0; i < p->nkids; i++) {
            assert_true(task_is_done(&p->kids[i].t));
            p->sum += p->kids[i].t.result;
        }
        return task_finish(t, 0);
    }
    return task_finish(t, -EINVAL);
}

static void test_await_one_child(void **state)
{
    struct env *e = *state;
    struct parent p = {.nkids = 1};
    task_init(&p.t, parent_step, NULL);
    task_spawn(&e->sched, &p.t, NULL);
    run(e);
    assert_true(task_is_done(&p.t));
    assert_int_equal(p.sum, 10);
    assert_int_equal(p.joins, 1);
    assert_int_equal(p.t.live_children, 0);
}

static void test_gather_many_children(void **state)
{
    struct env *e = *state;
    struct parent p = {.nkids = 50};
    task_init(&p.t, parent_step, NULL);
    task_spawn(&e->sched, &p.t, NULL);
    run(e);
    assert_true(task_is_done(&p.t));
    assert_int_equal(p.sum, 10 * (50 * 51 / 2));
    assert_int_equal(p.joins, 1);
}

static void test_join_without_children_falls_through(void **state)
{
    struct env *e = *state;
    struct parent p = {.nkids = 0};
    task_init(&p.t, parent_step, NULL);
    task_spawn(&e->sched, &p.t, NULL);
    run(e);
    assert_true(task_is_done(&p.t));
    assert_int_equal(p.joins, 1);
}

/* ---- semaphore ---- */

static int in_section, max_in_section;

struct worker {
    task t;
    task_sem *sem;
    uint64_t hold_ms;
    int got_permit;
};

static enum task_step worker_step(task *t)
{
    struct worker *w = (struct worker *)t;
    switch (t->state) {
    case 0:
        t->state = 1;
        if (task_sem_acquire(w->sem, t) == TASK_SUSPENDED)
            return TASK_PENDING;
        /* fall through */
    case 1:
        if (task_wait_rc(t) != 0)
            return task_finish(t, task_wait_rc(t));
        w->got_permit = 1;
        if (task_cancelled(t)) {
            task_sem_release(w->sem);
            return task_finish(t, task_cancelled(t));
        }
        if (++in_section > max_in_section)
            max_in_section = in_section;
        t->state = 2;
        return task_sleep(t, w->hold_ms);
    case 2:
        in_section--;
        task_sem_release(w->sem);
        return task_finish(t, task_cancelled(t) ? task_cancelled(t) : 0);
    }
    return task_finish(t, -EINVAL);
}

static void test_semaphore_bounds_concurrency(void **state)
{
    struct env *e = *state;
    task_sem sem;
    task_sem_init(&sem, 2);
    struct worker w[6];
    in_section = max_in_section = 0;
    for (int i = 0; i < 6; i++) {
        w[i] = (struct worker){.sem = &sem, .hold_ms = 5};
        task_init(&w[i].t, worker_step, NULL);
        task_spawn(&e->sched, &w[i].t, NULL);
    }
    run(e);
    assert_int_equal(max_in_section, 2);
    for (int i = 0; i < 6; i++) {
        assert_true(task_is_done(&w[i].t));
        assert_int_equal(w[i].t.result, 0);
    }
    assert_int_equal(sem.permits, 2);
}

/* A permit granted by release passes to the waiter even if the waiter is cancelled before
 * it runs: it must see wait_rc 0 (holding it) and the cancellation both. */
static void test_semaphore_grant_then_cancel_keeps_permit(void **state)
{
    struct env *e = *state;
    task_sem sem;
    task_sem_init(&sem, 0);
    struct worker w = {.sem = &sem, .hold_ms = 1};
    task_init(&w.t, worker_step, NULL);
    task_spawn(&e->sched, &w.t, NULL);
    uv_run(&e->loop, UV_RUN_NOWAIT); /* it runs and waits for a permit */
    assert_false(task_is_done(&w.t));
    task_sem_release(&sem);
    task_cancel(&w.t, -ECANCELED);
    run(e);
    assert_true(w.got_permit);
    assert_int_equal(w.t.result, -ECANCELED);
    assert_int_equal(sem.permits, 1);
}

/* ---- cancellation spreads to children waiting on anything ---- */

struct canceller {
    task t;
    struct worker kids[3];
    task_sem *sem;
    int join_rounds;
};

static enum task_step canceller_step(task *t)
{
    struct canceller *c = (struct canceller *)t;
    switch (t->state) {
    case 0:
        for (int i = 0; i < 3; i++) {
            c->kids[i] = (struct worker){.sem = c->sem, .hold_ms = 1};
            task_init(&c->kids[i].t, worker_step, NULL);
            task_spawn(t->sched, &c->kids[i].t, t);
        }
        t->state = 1;
        /* fall through */
    case 1:
        c->join_rounds++;
        if (task_join(t) == TASK_SUSPENDED)
            return TASK_PENDING; /* a cancel resumes us early: join again until empty */
        return task_finish(t, task_cancelled(t));
    }
    return task_finish(t, -EINVAL);
}

static void test_cancel_spreads_to_children(void **state)
{
    struct env *e = *state;
    task_sem sem;
    task_sem_init(&sem, 0); /* nobody can ever get in */
    struct canceller c = {.sem = &sem};
    task_init(&c.t, canceller_step, NULL);
    task_spawn(&e->sched, &c.t, NULL);
    uv_run(&e->loop, UV_RUN_NOWAIT);
    uv_run(&e->loop, UV_RUN_NOWAIT);
    for (int i = 0; i < 3; i++)
        assert_false(task_is_done(&c.kids[i].t));
    task_cancel(&c.t, -ECANCELED);
    run(e);
    assert_true(task_is_done(&c.t));
    assert_int_equal(c.t.result, -ECANCELED);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(c.kids[i].t.result, -ECANCELED);
        assert_false(c.kids[i].got_permit);
    }
    assert_null(sem.waiters.head); /* cancelled waiters were detached */
    assert_int_equal(sem.permits, 0);
    assert_true(c.join_rounds >= 2);
}

static void test_child_of_cancelled_parent_starts_cancelled(void **state)
{
    struct env *e = *state;
    struct parent p = {.nkids = 0};
    task_init(&p.t, parent_step, NULL);
    p.t.sched = &e->sched;
    task_cancel(&p.t, -ECANCELED);
    struct simple kid = {.id = 1};
    task_init(&kid.t, simple_step, NULL);
    task_spawn(&e->sched, &kid.t, &p.t);
    assert_int_equal(task_cancelled(&kid.t), -ECANCELED);
    run(e);
    assert_true(task_is_done(&kid.t));
    assert_int_equal(p.t.live_children, 0);
}

/* A shielded wait (one that cannot be called back, such as a work item on the pool): a
 * cancellation marks the task but leaves it suspended until the operation wakes it. */
struct shielded {
    task t;
    int resumes;
    int woke_rc;
};

static enum task_step shielded_step(task *t)
{
    struct shielded *s = (struct shielded *)t;
    s->resumes++;
    if (t->state == 0) {
        t->state = 1;
        return task_suspend_shielded(t);
    }
    s->woke_rc = task_wait_rc(t);
    return task_finish(t, task_cancelled(t));
}

static void test_shielded_wait_outlasts_cancel(void **state)
{
    struct env *e = *state;
    struct shielded s = {.resumes = 0};
    task_init(&s.t, shielded_step, NULL);
    task_spawn(&e->sched, &s.t, NULL);
    uv_run(&e->loop, UV_RUN_NOWAIT);
    assert_int_equal(s.resumes, 1);
    task_cancel(&s.t, -ECANCELED);
    for (int i = 0; i < 3; i++)
        uv_run(&e->loop, UV_RUN_NOWAIT);
    assert_int_equal(s.resumes, 1); /* still held by the operation */
    assert_false(task_is_done(&s.t));
    task_wake(&s.t, 7);
    run(e);
    assert_int_equal(s.resumes, 2);
    assert_int_equal(s.woke_rc, 7);
    assert_true(task_is_done(&s.t));
    assert_int_equal(s.t.result, -ECANCELED);
}

/* ---- timeouts and sleeps ---- */

struct sleeper {
    task t;
    uint64_t ms;
    uint64_t woke_at;
    int id;
};

static enum task_step sleeper_step(task *t)
{
    struct sleeper *s = (struct sleeper *)t;
    if (t->state == 0) {
        t->state = 1;
        return task_sleep(t, s->ms);
    }
    s->woke_at = uv_now(t->sched->loop);
    note(s->id);
    return task_finish(t, task_wait_rc(t));
}

static void test_sleeps_wake_in_time_order(void **state)
{
    struct env *e = *state;
    trace_len = 0;
    struct sleeper s[3] = {{.ms = 30, .id = 3}, {.ms = 10, .id = 1}, {.ms = 20, .id = 2}};
    uint64_t start = uv_now(&e->loop);
    for (int i = 0; i < 3; i++) {
        task_init(&s[i].t, sleeper_step, NULL);
        task_spawn(&e->sched, &s[i].t, NULL);
    }
    run(e);
    int want[] = {1, 2, 3};
    assert_int_equal(trace_len, 3);
    assert_memory_equal(trace, want, sizeof want);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(s[i].t.result, 0);
        assert_true(s[i].woke_at - start >= s[i].ms);
    }
}

static void test_deadline_cancels_a_sleep(void **state)
{
    struct env *e = *state;
    trace_len = 0;
    struct sleeper s = {.ms = 5000, .id = 1};
    task_init(&s.t, sleeper_step, NULL);
    task_spawn(&e->sched, &s.t, NULL);
    uint64_t start = uv_now(&e->loop);
    task_set_deadline(&s.t, start + 20);
    run(e);
    assert_int_equal(s.t.result, -ETIMEDOUT);
    assert_int_equal(task_cancelled(&s.t), -ETIMEDOUT);
    assert_true(s.woke_at - start >= 20);
    assert_true(s.woke_at - start < 1000);
}

static void test_deadline_disarmed_when_task_finishes(void **state)
{
    struct env *e = *state;
    struct sleeper s = {.ms = 5, .id = 1};
    task_init(&s.t, sleeper_step, NULL);
    task_spawn(&e->sched, &s.t, NULL);
    task_set_deadline(&s.t, uv_now(&e->loop) + 10000);
    uint64_t start = uv_now(&e->loop);
    run(e); /* would last 10 s if the deadline kept the loop alive */
    uv_update_time(&e->loop);
    assert_int_equal(s.t.result, 0);
    assert_true(uv_now(&e->loop) - start < 1000);
}

/* ---- bounded queue ---- */

struct producer {
    task t;
    task_queue *q;
    intptr_t next, count;
    int blocked;
};

static enum task_step producer_step(task *t)
{
    struct producer *p = (struct producer *)t;
    if (t->state == 1 && task_wait_rc(t) != 0)
        return task_finish(t, task_wait_rc(t));
    t->state = 1;
    while (p->next < p->count) {
        intptr_t v = ++p->next;
        if (task_queue_put(p->q, t, (void *)v) == TASK_SUSPENDED) {
            p->blocked++;
            return TASK_PENDING;
        }
        if (task_wait_rc(t) != 0)
            return task_finish(t, task_wait_rc(t));
    }
    task_queue_close(p->q);
    return task_finish(t, 0);
}

struct consumer {
    task t;
    task_queue *q;
    intptr_t got[200];
    size_t ngot;
    int end_rc;
};

static enum task_step consumer_step(task *t)
{
    struct consumer *c = (struct consumer *)t;
    for (;;) {
        if (t->state == 1) {
            t->state = 0;
            if (task_wait_rc(t) != 0) {
                c->end_rc = task_wait_rc(t);
                return task_finish(t, 0);
            }
            c->got[c->ngot++] = (intptr_t)t->wait_slot;
            if (c->ngot % 7 == 0)
                return task_yield(t); /* let the queue fill up */
        }
        t->state = 1;
        if (task_queue_get(c->q, t) == TASK_SUSPENDED)
            return TASK_PENDING;
    }
}

static void test_queue_preserves_order_and_blocks_when_full(void **state)
{
    struct env *e = *state;
    task_queue q;
    assert_int_equal(task_queue_init(&q, 3), 0);
    struct producer p = {.q = &q, .count = 100};
    struct consumer c = {.q = &q};
    task_init(&p.t, producer_step, NULL);
    task_init(&c.t, consumer_step, NULL);
    task_spawn(&e->sched, &p.t, NULL);
    task_spawn(&e->sched, &c.t, NULL);
    run(e);
    assert_int_equal(p.t.result, 0);
    assert_int_equal(c.ngot, 100);
    for (size_t i = 0; i < 100; i++)
        assert_int_equal(c.got[i], (intptr_t)i + 1);
    assert_int_equal(c.end_rc, -EPIPE);
    assert_true(p.blocked > 0); /* capacity 3 really held the producer back */
    task_queue_finish(&q);
}

static void test_queue_getter_cancelled_is_detached(void **state)
{
    struct env *e = *state;
    task_queue q;
    assert_int_equal(task_queue_init(&q, 2), 0);
    struct consumer c = {.q = &q};
    task_init(&c.t, consumer_step, NULL);
    task_spawn(&e->sched, &c.t, NULL);
    uv_run(&e->loop, UV_RUN_NOWAIT);
    assert_non_null(q.getters.head);
    task_cancel(&c.t, -ECANCELED);
    run(e);
    assert_true(task_is_done(&c.t));
    assert_int_equal(c.end_rc, -ECANCELED);
    assert_null(q.getters.head);
    task_queue_finish(&q);
}

static void test_queue_put_on_closed_queue_fails(void **state)
{
    (void)state;
    task_queue q;
    task t;
    assert_int_equal(task_queue_init(&q, 2), 0);
    task_queue_close(&q);
    assert_int_equal(task_queue_put(&q, &t, (void *)1), TASK_READY);
    assert_int_equal(t.wait_rc, -EPIPE);
    assert_int_equal(q.len, 0);
    task_queue_finish(&q);
}

/* ---- event ---- */

struct waiter {
    task t;
    task_event *ev;
    uint64_t timeout;
    int wakes;
    uint64_t woke_at;
};

static enum task_step waiter_step(task *t)
{
    struct waiter *w = (struct waiter *)t;
    if (t->state == 1) {
        w->wakes++;
        w->woke_at = uv_now(t->sched->loop);
        return task_finish(t, task_wait_rc(t));
    }
    t->state = 1;
    if (task_event_wait(w->ev, t, w->timeout) == TASK_SUSPENDED)
        return TASK_PENDING;
    return task_yield(t); /* pending signal consumed: resume through the same path */
}

static void on_signal_timer(uv_timer_t *h)
{
    task_event_signal(h->data);
    uv_close((uv_handle_t *)h, NULL);
}

static void test_event_signal_wakes_before_timeout(void **state)
{
    struct env *e = *state;
    task_event ev = {0};
    struct waiter w = {.ev = &ev, .timeout = 5000};
    task_init(&w.t, waiter_step, NULL);
    task_spawn(&e->sched, &w.t, NULL);
    uv_timer_t timer;
    uv_timer_init(&e->loop, &timer);
    timer.data = &ev;
    uv_timer_start(&timer, on_signal_timer, 20, 0);
    uint64_t start = uv_now(&e->loop);
    run(e); /* would last 5 s if the timeout stayed armed */
    assert_int_equal(w.wakes, 1);
    assert_int_equal(w.t.result, 0);
    assert_true(w.woke_at - start < 1000);
    assert_null(ev.waiter);
    assert_int_equal(e->sched.heap_len, 0);
}

static void test_event_timeout_detaches_waiter(void **state)
{
    struct env *e = *state;
    task_event ev = {0};
    struct waiter w = {.ev = &ev, .timeout = 20};
    task_init(&w.t, waiter_step, NULL);
    task_spawn(&e->sched, &w.t, NULL);
    uint64_t start = uv_now(&e->loop);
    run(e);
    assert_int_equal(w.wakes, 1);
    assert_true(w.woke_at - start >= 20);
    assert_null(ev.waiter); /* a later signal must not touch the finished task */
    task_event_signal(&ev);
    assert_int_equal(ev.pending, 1);
}

static void test_event_signal_before_wait_is_kept(void **state)
{
    struct env *e = *state;
    task_event ev = {0};
    task_event_signal(&ev);
    struct waiter w = {.ev = &ev, .timeout = UINT64_MAX};
    task_init(&w.t, waiter_step, NULL);
    task_spawn(&e->sched, &w.t, NULL);
    run(e); /* no timeout and no later signal: only the kept one can end it */
    assert_int_equal(w.wakes, 1);
    assert_int_equal(ev.pending, 0);
}

static void test_event_wait_cancelled(void **state)
{
    struct env *e = *state;
    task_event ev = {0};
    struct waiter w = {.ev = &ev, .timeout = 5000};
    task_init(&w.t, waiter_step, NULL);
    task_spawn(&e->sched, &w.t, NULL);
    uv_run(&e->loop, UV_RUN_NOWAIT);
    assert_ptr_equal(ev.waiter, &w.t);
    task_cancel(&w.t, -ECANCELED);
    run(e);
    assert_int_equal(w.t.result, -ECANCELED);
    assert_null(ev.waiter);
    assert_int_equal(e->sched.heap_len, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_spawn_runs_and_finishes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_yield_interleaves_tasks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_await_one_child, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gather_many_children, setup, teardown),
        cmocka_unit_test_setup_teardown(test_join_without_children_falls_through, setup, teardown),
        cmocka_unit_test_setup_teardown(test_semaphore_bounds_concurrency, setup, teardown),
        cmocka_unit_test_setup_teardown(test_semaphore_grant_then_cancel_keeps_permit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_spreads_to_children, setup, teardown),
        cmocka_unit_test_setup_teardown(test_child_of_cancelled_parent_starts_cancelled, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sleeps_wake_in_time_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deadline_cancels_a_sleep, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shielded_wait_outlasts_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deadline_disarmed_when_task_finishes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_preserves_order_and_blocks_when_full, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_getter_cancelled_is_detached, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_put_on_closed_queue_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_event_signal_wakes_before_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_event_timeout_detaches_waiter, setup, teardown),
        cmocka_unit_test_setup_teardown(test_event_signal_before_wait_is_kept, setup, teardown),
        cmocka_unit_test_setup_teardown(test_event_wait_cancelled, setup, teardown),
    };
    return cmocka_run_group_tests_name("task", tests, NULL, NULL);
}
