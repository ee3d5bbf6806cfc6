#include "task.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>

enum {
    F_DONE = 1u << 0,    /* finished: task_is_done() */
    F_READY = 1u << 1,   /* in the ready list */
    F_JOINING = 1u << 2, /* suspended in task_join */
};

/* ---- the timer heap: deadlines and sleeps share one uv_timer_t ---- */

static int timer_before(const struct task_timer *a, const struct task_timer *b)
{
    return a->due < b->due;
}

static void heap_place(task_sched *s, size_t i, struct task_timer *e)
{
    s->heap[i] = e;
    e->slot = i;
}

static void heap_sift_up(task_sched *s, size_t i)
{
    struct task_timer *e = s->heap[i];
    while (i > 0) {
        size_t up = (i - 1) / 2;
        if (!timer_before(e, s->heap[up]))
            break;
        heap_place(s, i, s->heap[up]);
        i = up;
    }
    heap_place(s, i, e);
}

static void heap_sift_down(task_sched *s, size_t i)
{
    struct task_timer *e = s->heap[i];
    for (;;) {
        size_t l = 2 * i + 1, best = i;
        const struct task_timer *best_e = e;
        if (l < s->heap_len && timer_before(s->heap[l], best_e)) {
            best = l;
            best_e = s->heap[l];
        }
        if (l + 1 < s->heap_len && timer_before(s->heap[l + 1], best_e))
            best = l + 1;
        if (best == i)
            break;
        heap_place(s, i, s->heap[best]);
        i = best;
    }
    heap_place(s, i, e);
}

static void on_timer(uv_timer_t *h);

/* Points the one uv_timer_t at the earliest entry; stopped (and so not keeping the loop
 * alive) when there is none. */
static void timer_rearm(task_sched *s)
{
    if (s->heap_len == 0 || s->closing) {
        uv_timer_stop(&s->timer);
        return;
    }
    uint64_t now = uv_now(s->loop);
    uint64_t due = s->heap[0]->due;
    uv_timer_start(&s->timer, on_timer, due > now ? due - now : 0, 0);
}

static void timer_disarm(task_sched *s, struct task_timer *e)
{
    if (e->slot == SIZE_MAX)
        return;
    const struct task_timer *old_top = s->heap[0];
    size_t i = e->slot;
    e->slot = SIZE_MAX;
    s->heap_len--;
    if (i != s->heap_len) {
        /* The last entry fills the hole and may belong above or below it. */
        struct task_timer *moved = s->heap[s->heap_len];
        heap_place(s, i, moved);
        heap_sift_down(s, i);
        heap_sift_up(s, moved->slot);
    }
    if (s->heap_len == 0 || s->heap[0] != old_top)
        timer_rearm(s);
}

/* 0 or -ENOMEM. */
static int timer_arm(task_sched *s, struct task_timer *e, uint64_t due)
{
    timer_disarm(s, e);
    if (s->heap_len == s->heap_cap) {
        size_t cap = s->heap_cap ? s->heap_cap * 2 : 64;
        struct task_timer **heap = realloc(s->heap, cap * sizeof *heap);
        if (heap == NULL)
            return -ENOMEM;
        s->heap = heap;
        s->heap_cap = cap;
    }
    e->due = due;
    heap_place(s, s->heap_len++, e);
    heap_sift_up(s, e->slot);
    if (e->slot == 0)
        timer_rearm(s);
    return 0;
}

/* ---- the ready list ---- */

static void on_runner(uv_idle_t *h);

static void make_ready(task *t)
{
    if (t->flags & (F_READY | F_DONE))
        return;
    task_sched *s = t->sched;
    t->flags |= F_READY;
    t->next_ready = NULL;
    if (s->ready_tail != NULL)
        s->ready_tail->next_ready = t;
    else
        s->ready_head = t;
    s->ready_tail = t;
    if (!uv_is_active((uv_handle_t *)&s->runner) && !s->closing)
        uv_idle_start(&s->runner, on_runner);
}

static void complete(task *t)
{
    task_sched *s = t->sched;
    /* A parent that finishes before its children would leave them pointing at freed
     * memory; the frames' owners guarantee this never happens. */
    assert(t->live_children == 0);
    t->flags |= F_DONE;
    timer_disarm(s, &t->deadline);
    timer_disarm(s, &t->sleep);

    task *p = t->parent;
    if (p != NULL) {
        if (t->prev_sibling != NULL)
            t->prev_sibling->next_sibling = t->next_sibling;
        else
            p->first_child = t->next_sibling;
        if (t->next_sibling != NULL)
            t->next_sibling->prev_sibling = t->prev_sibling;
        t->parent = t->prev_sibling = t->next_sibling = NULL;
        if (--p->live_children == 0 && (p->flags & F_JOINING))
            task_wake(p, 0);
    }
    if (t->on_done != NULL)
        t->on_done(t);
}

static void run_one(task *t)
{
    t->flags &= ~F_READY;
    if (t->flags & F_DONE)
        return;
    /* Still suspended on an operation: it was queued by task_cancel, so detach it here,
     * outside of whatever callback did the cancelling. */
    if (t->unwait != NULL) {
        task_unwait_fn unwait = t->unwait;
        t->unwait = NULL;
        unwait(t);
        t->wait_on = NULL;
        t->wait_rc = t->error;
    }
    if (t->step(t) == TASK_FINISHED)
        complete(t);
}

/* Runs the tasks that were ready when the turn began; those made ready meanwhile wait for
 * the next turn, so that I/O is polled between batches. */
static void on_runner(uv_idle_t *h)
{
    task_sched *s = h->data;
    task *t = s->ready_head;
    s->ready_head = s->ready_tail = NULL;
    while (t != NULL) {
        task *next = t->next_ready;
        run_one(t);
        t = next;
    }
    if (s->ready_head == NULL)
        uv_idle_stop(&s->runner);
}

static void on_timer(uv_timer_t *h)
{
    task_sched *s = h->data;
    uint64_t now = uv_now(s->loop);
    while (s->heap_len > 0 && s->heap[0]->due <= now) {
        struct task_timer *e = s->heap[0];
        task *t = e->owner;
        timer_disarm(s, e);
        if (e == &t->deadline) {
            task_cancel(t, -ETIMEDOUT);
        } else {
            /* Detach from whatever else the sleep was combined with (an event). */
            task_unwait_fn unwait = t->unwait;
            t->unwait = NULL;
            if (unwait != NULL)
                unwait(t);
            task_wake(t, 0);
        }
    }
    timer_rearm(s);
}

/* ---- the scheduler ---- */

int task_sched_init(task_sched *s, uv_loop_t *loop)
{
    s->loop = loop;
    s->ready_head = s->ready_tail = NULL;
    s->heap = NULL;
    s->heap_len = s->heap_cap = 0;
    s->closing = 0;
    int rc = uv_idle_init(loop, &s->runner);
    if (rc != 0)
        return rc;
    rc = uv_timer_init(loop, &s->timer);
    if (rc != 0) {
        uv_close((uv_handle_t *)&s->runner, NULL);
        return rc;
    }
    s->runner.data = s;
    s->timer.data = s;
    return 0;
}

void task_sched_close(task_sched *s)
{
    s->closing = 1;
    uv_close((uv_handle_t *)&s->runner, NULL);
    uv_close((uv_handle_t *)&s->timer, NULL);
    free(s->heap);
    s->heap = NULL;
    s->heap_len = s->heap_cap = 0;
}

/* ---- tasks ---- */

void task_init(task *t, task_step_fn step, task_done_fn on_done)
{
    *t = (task){
        .step = step,
        .on_done = on_done,
        .deadline = {.slot = SIZE_MAX, .owner = t},
        .sleep = {.slot = SIZE_MAX, .owner = t},
    };
}

void task_spawn(task_sched *s, task *t, task *parent)
{
    t->sched = s;
    if (parent != NULL) {
        t->parent = parent;
        t->next_sibling = parent->first_child;
        if (parent->first_child != NULL)
            parent->first_child->prev_sibling = t;
        parent->first_child = t;
        parent->live_children++;
        /* A child born to a cancelled parent is cancelled from the start. */
        if (parent->error != 0 && t->error == 0)
            t->error = parent->error;
    }
    make_ready(t);
}

enum task_step task_finish(task *t, int rc)
{
    t->result = rc;
    return TASK_FINISHED;
}

int task_is_done(const task *t)
{
    return (t->flags & F_DONE) != 0;
}

static void join_unwait(task *t)
{
    t->flags &= ~F_JOINING;
}

enum task_wait task_join(task *t)
{
    if (t->live_children == 0) {
        t->wait_rc = 0;
        return TASK_READY;
    }
    t->flags |= F_JOINING;
    task_suspend(t, join_unwait);
    return TASK_SUSPENDED;
}

enum task_step task_yield(task *t)
{
    t->wait_rc = 0;
    make_ready(t);
    return TASK_PENDING;
}

static void sleep_unwait(task *t)
{
    timer_disarm(t->sched, &t->sleep);
}

enum task_step task_sleep(task *t, uint64_t ms)
{
    if (timer_arm(t->sched, &t->sleep, uv_now(t->sched->loop) + ms) != 0) {
        /* No memory for the heap entry: waking at once is the safe degradation. */
        return task_yield(t);
    }
    task_suspend(t, sleep_unwait);
    return TASK_PENDING;
}

void task_set_deadline(task *t, uint64_t due)
{
    if (due == 0) {
        timer_disarm(t->sched, &t->deadline);
        return;
    }
    if (timer_arm(t->sched, &t->deadline, due) != 0)
        task_cancel(t, -ENOMEM);
}

void task_cancel(task *t, int reason)
{
    if (t->flags & F_DONE)
        return;
    if (t->error == 0)
        t->error = reason;
    for (task *c = t->first_child; c != NULL; c = c->next_sibling)
        task_cancel(c, reason);
    if (t->unwait != NULL)
        make_ready(t);
}

void task_suspend(task *t, task_unwait_fn unwait)
{
    /* A NULL here would read as "not waiting" and let a cancellation resume the task while
     * the operation still holds it: that is task_suspend_shielded(), said out loud. */
    assert(unwait != NULL);
    t->unwait = unwait;
}

enum task_step task_suspend_shielded(task *t)
{
    /* No unwait: task_cancel() only marks the task, and run_one() leaves it be until the
     * operation's own task_wake(). */
    t->unwait = NULL;
    return TASK_PENDING;
}

void task_wake(task *t, int rc)
{
    t->unwait = NULL;
    t->wait_on = NULL;
    t->wait_rc = rc;
    make_ready(t);
}

/* ---- waiter lists ---- */

void task_waitlist_push(struct task_waitlist *l, task *t)
{
    t->wait_next = NULL;
    t->wait_prev = l->tail;
    if (l->tail != NULL)
        l->tail->wait_next = t;
    else
        l->head = t;
    l->tail = t;
}

void task_waitlist_remove(struct task_waitlist *l, task *t)
{
    if (t->wait_prev != NULL)
        t->wait_prev->wait_next = t->wait_next;
    else
        l->head = t->wait_next;
    if (t->wait_next != NULL)
        t->wait_next->wait_prev = t->wait_prev;
    else
        l->tail = t->wait_prev;
    t->wait_prev = t->wait_next = NULL;
}

task *task_waitlist_pop(struct task_waitlist *l)
{
    task *t = l->head;
    if (t != NULL)
        task_waitlist_remove(l, t);
    return t;
}

/* ---- semaphore ---- */

void task_sem_init(task_sem *sem, size_t permits)
{
    sem->permits = permits;
    sem->waiters.head = sem->waiters.tail = NULL;
}

static void sem_unwait(task *t)
{
    task_sem *sem = t->wait_on;
    task_waitlist_remove(&sem->waiters, t);
}

enum task_wait task_sem_acquire(task_sem *sem, task *t)
{
    if (sem->permits > 0 && sem->waiters.head == NULL) {
        sem->permits--;
        t->wait_rc = 0;
        return TASK_READY;
    }
    t->wait_on = sem;
    task_waitlist_push(&sem->waiters, t);
    task_suspend(t, sem_unwait);
    return TASK_SUSPENDED;
}

void task_sem_release(task_sem *sem)
{
    /* The permit passes straight to the first waiter, so a late arrival cannot take it. */
    task *w = task_waitlist_pop(&sem->waiters);
    if (w != NULL)
        task_wake(w, 0);
    else
        sem->permits++;
}

/* ---- event ---- */

static void event_unwait(task *t)
{
    task_event *ev = t->wait_on;
    if (ev->waiter == t)
        ev->waiter = NULL;
    timer_disarm(t->sched, &t->sleep);
}

enum task_wait task_event_wait(task_event *ev, task *t, uint64_t timeout_ms)
{
    if (ev->pending) {
        ev->pending = 0;
        t->wait_rc = 0;
        return TASK_READY;
    }
    if (timeout_ms != UINT64_MAX &&
        timer_arm(t->sched, &t->sleep, uv_now(t->sched->loop) + timeout_ms) != 0) {
        task_yield(t); /* no memory for the timer: look again next turn */
        return TASK_SUSPENDED;
    }
    ev->waiter = t;
    t->wait_on = ev;
    task_suspend(t, event_unwait);
    return TASK_SUSPENDED;
}

void task_event_signal(task_event *ev)
{
    task *t = ev->waiter;
    if (t == NULL) {
        ev->pending = 1;
        return;
    }
    ev->waiter = NULL;
    timer_disarm(t->sched, &t->sleep);
    task_wake(t, 0);
}

/* ---- bounded queue ---- */

int task_queue_init(task_queue *q, size_t cap)
{
    *q = (task_queue){0};
    if (cap == 0)
        cap = 1;
    q->items = calloc(cap, sizeof *q->items);
    if (q->items == NULL)
        return -ENOMEM;
    q->cap = cap;
    return 0;
}

void task_queue_finish(task_queue *q)
{
    free(q->items);
    q->items = NULL;
}

static void queue_get_unwait(task *t)
{
    task_queue *q = t->wait_on;
    task_waitlist_remove(&q->getters, t);
}

static void queue_put_unwait(task *t)
{
    task_queue *q = t->wait_on;
    task_waitlist_remove(&q->putters, t);
    t->wait_slot = NULL;
}

enum task_wait task_queue_put(task_queue *q, task *t, void *item)
{
    if (q->closed) {
        t->wait_rc = -EPIPE;
        return TASK_READY;
    }
    task *getter = task_waitlist_pop(&q->getters);
    if (getter != NULL) {
        getter->wait_slot = item;
        task_wake(getter, 0);
    } else if (q->len < q->cap) {
        q->items[(q->head + q->len) % q->cap] = item;
        q->len++;
    } else {
        t->wait_on = q;
        t->wait_slot = item;
        task_waitlist_push(&q->putters, t);
        task_suspend(t, queue_put_unwait);
        return TASK_SUSPENDED;
    }
    t->wait_rc = 0;
    return TASK_READY;
}

enum task_wait task_queue_get(task_queue *q, task *t)
{
    if (q->len > 0) {
        t->wait_slot = q->items[q->head];
        q->head = (q->head + 1) % q->cap;
        q->len--;
        task *putter = task_waitlist_pop(&q->putters);
        if (putter != NULL) {
            q->items[(q->head + q->len) % q->cap] = putter->wait_slot;
            q->len++;
            putter->wait_slot = NULL;
            task_wake(putter, 0);
        }
        t->wait_rc = 0;
        return TASK_READY;
    }
    if (q->closed) {
        t->wait_slot = NULL;
        t->wait_rc = -EPIPE;
        return TASK_READY;
    }
    t->wait_on = q;
    task_waitlist_push(&q->getters, t);
    task_suspend(t, queue_get_unwait);
    return TASK_SUSPENDED;
}

void task_queue_close(task_queue *q)
{
    q->closed = 1;
    task *w;
    while ((w = task_waitlist_pop(&q->getters)) != NULL) {
        w->wait_slot = NULL;
        task_wake(w, -EPIPE);
    }
    while ((w = task_waitlist_pop(&q->putters)) != NULL) {
        w->wait_slot = NULL;
        task_wake(w, -EPIPE);
    }
}
