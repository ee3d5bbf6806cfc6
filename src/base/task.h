/* task.h: stackless, coroutine-style tasks over a libuv loop.
 *
 * A task is a frame struct that embeds `struct task` as its first member (every value that
 * must survive a suspension lives in the frame) and a step function that switches on
 * `t->state`. A step returns TASK_PENDING after arranging to be woken (an operation below
 * has suspended it, or it yielded) or task_finish(t, rc), which is TASK_FINISHED.
 *
 * Two kinds of answer, two types, so that mixing them up draws a warning (-Wenum-compare,
 * -Wenum-conversion): a step function answers the scheduler with `enum task_step`; a wait
 * that may complete at once (semaphore, event, queue, join, reader, writer room) answers
 * its caller with `enum task_wait`, and the caller returns TASK_PENDING on TASK_SUSPENDED
 * or falls through on TASK_READY. Operations that always suspend (yield, sleep, a shielded
 * wait, http_fetch, writer_close) return TASK_PENDING, for the step to return as it is.
 *
 * Nothing here runs task code from inside another callback: operations that complete (a
 * semaphore released, a child finished, a transfer done) only mark the task ready, and the
 * scheduler resumes ready tasks from its own loop handle. That is what keeps libcurl's
 * callbacks non-reentrant and lets any callback call task_wake() or task_cancel().
 *
 * Cancellation: task_cancel() sets t->error (the first reason sticks) and spreads to every
 * live child. A task suspended on an operation is detached from it and resumed with
 * task_wait_rc() == the reason; a running or ready task sees t->error at its next resume.
 * A task must check task_cancelled() at each resume and finish promptly when it is set.
 *
 * Ownership: the caller owns every frame and must keep it alive until its `on_done`
 * callback has run (on_done may free it); the scheduler owns nothing but its handles. A
 * parent must not finish while it has live children (join them first). */
#ifndef AREQ_TASK_H
#define AREQ_TASK_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

/* What a step function returns to the scheduler. */
enum task_step {
    TASK_PENDING = 0,  /* suspended: something will wake it */
    TASK_FINISHED = 1, /* finished: task_finish() was called */
};

/* What a wait primitive returns to the step that called it. */
enum task_wait {
    TASK_READY = 0,     /* completed at once, task_wait_rc() says how: fall through */
    TASK_SUSPENDED = 1, /* the task is suspended: the step returns TASK_PENDING */
};

typedef struct task task;
typedef struct task_sched task_sched;
typedef enum task_step (*task_step_fn)(task *t);
typedef void (*task_done_fn)(task *t);
/* Detaches a suspended task from what it waits on; called by the scheduler, never from
 * inside a libuv or libcurl callback of the operation itself. */
typedef void (*task_unwait_fn)(task *t);

/* A deadline or sleep entry in the scheduler's timer heap. */
struct task_timer {
    uint64_t due;   /* absolute, uv_now() milliseconds */
    size_t slot;    /* index in the heap, or SIZE_MAX when not armed */
    task *owner;
};

struct task {
    task_step_fn step;
    task_done_fn on_done; /* may be NULL; may free the frame */
    task_sched *sched;
    int state;            /* the step function's label */
    int result;           /* set by task_finish */
    int error;            /* cancellation reason (negative errno), sticky; 0 = none */
    int wait_rc;          /* outcome of the operation last waited on */
    unsigned flags;

    task_unwait_fn unwait; /* set while suspended on an operation */
    void *wait_on;         /* the semaphore or queue it waits on */
    void *wait_slot;       /* an item handed over by a queue */
    task *wait_prev, *wait_next; /* membership of one waiter list */

    task *parent;
    task *first_child, *prev_sibling, *next_sibling;
    size_t live_children;

    task *next_ready;
    struct task_timer deadline; /* cancels the task with -ETIMEDOUT */
    struct task_timer sleep;    /* wakes the task */
};

/* A FIFO list of suspended tasks (semaphore and queue waiters). */
struct task_waitlist {
    task *head, *tail;
};

struct task_sched {
    uv_loop_t *loop;
    uv_idle_t runner;   /* active only while tasks are ready */
    uv_timer_t timer;   /* armed for the earliest entry of the heap */
    task *ready_head, *ready_tail;
    struct task_timer **heap;
    size_t heap_len, heap_cap;
    int closing;
};

/* Sets up the scheduler's handles on `loop`. 0 or a negative libuv error. */
int task_sched_init(task_sched *s, uv_loop_t *loop);
/* Closes the handles; the loop must run once more for their close callbacks. Every task
 * must have finished. */
void task_sched_close(task_sched *s);

/* Prepares a frame; call before task_spawn. */
void task_init(task *t, task_step_fn step, task_done_fn on_done);

/* Schedules `t` to run. With a parent, `t` is its child: the parent's cancellation spreads
 * to it and task_join() waits for it. */
void task_spawn(task_sched *s, task *t, task *parent);

/* Inside a step: records the result and returns TASK_FINISHED. */
enum task_step task_finish(task *t, int rc);

/* Inside a step: suspends until every child has finished (TASK_SUSPENDED), or returns
 * TASK_READY at once when there are none, so that the caller can fall through. */
enum task_wait task_join(task *t);

/* Inside a step: resumes the task on a later loop turn. Returns TASK_PENDING. */
enum task_step task_yield(task *t);

/* Inside a step: suspends for `ms` milliseconds. Returns TASK_PENDING. */
enum task_step task_sleep(task *t, uint64_t ms);

/* Cancels `t` at the absolute time `due` (uv_now() ms) with -ETIMEDOUT; 0 disarms. */
void task_set_deadline(task *t, uint64_t due);

/* Marks `t` and its live children cancelled with `reason` (negative errno). Safe from any
 * callback and on a finished task's children; a no-op on a finished task. */
void task_cancel(task *t, int reason);

static inline int task_cancelled(const task *t) { return t->error; }
static inline int task_wait_rc(const task *t) { return t->wait_rc; }

/* Whether `t` has finished: its step returned TASK_FINISHED and its on_done has run (or is
 * running). For the frame's owner, after the loop has run; only while the frame lives. */
int task_is_done(const task *t);

/* For operations built on the task layer (semaphore, queue, http, writer, reader):
 * task_suspend records how to detach `t` (`unwait` must not be NULL) when it is cancelled;
 * task_wake completes the wait with `rc` and makes `t` ready. task_wake may be called from
 * any callback. */
void task_suspend(task *t, task_unwait_fn unwait);
void task_wake(task *t, int rc);

/* Inside a step: suspends until task_wake(), on a wait that cannot be called back (a work
 * item running on the thread pool). A cancellation is seen only once it has been woken, so
 * the wait must be short. Returns TASK_PENDING. */
enum task_step task_suspend_shielded(task *t);

void task_waitlist_push(struct task_waitlist *l, task *t);
task *task_waitlist_pop(struct task_waitlist *l);
void task_waitlist_remove(struct task_waitlist *l, task *t);

/* A counting semaphore. */
typedef struct task_sem {
    size_t permits;
    struct task_waitlist waiters;
} task_sem;

void task_sem_init(task_sem *sem, size_t permits);
/* Inside a step: takes a permit. Returns TASK_READY when it got one at once (fall through),
 * else TASK_SUSPENDED; on resume, task_wait_rc() is 0 when the permit is held, or the
 * cancellation reason when it is not. */
enum task_wait task_sem_acquire(task_sem *sem, task *t);
void task_sem_release(task_sem *sem);

/* An event with at most one waiter: "something changed, look again". A signal with no
 * waiter is remembered, so a change between looking and waiting is never lost. */
typedef struct task_event {
    task *waiter;
    int pending;
} task_event;

/* Inside a step: returns TASK_READY at once if a signal is pending (consuming it); else
 * suspends until task_event_signal() or until `timeout_ms` has passed (UINT64_MAX: no
 * timeout) and returns TASK_SUSPENDED. On resume task_wait_rc() is 0 either way, or the
 * cancellation reason. */
enum task_wait task_event_wait(task_event *ev, task *t, uint64_t timeout_ms);
void task_event_signal(task_event *ev);

/* A bounded FIFO queue of pointers, with blocking put and get, and close. */
typedef struct task_queue {
    void **items;
    size_t cap, head, len;
    int closed;
    struct task_waitlist getters, putters;
} task_queue;

/* 0 or -ENOMEM. */
int task_queue_init(task_queue *q, size_t cap);
void task_queue_finish(task_queue *q);
/* Inside a step: appends `item`. TASK_READY when it was stored at once; else
 * TASK_SUSPENDED and, on resume, task_wait_rc() is 0 (stored), -EPIPE (queue closed: not
 * stored) or the cancellation reason (not stored). On a closed queue: -EPIPE in
 * t->wait_rc, TASK_READY. */
enum task_wait task_queue_put(task_queue *q, task *t, void *item);
/* Inside a step: takes the oldest item into *t->wait_slot. TASK_READY at once when there
 * was one (or the queue is closed and empty: wait_rc -EPIPE); else TASK_SUSPENDED and on
 * resume wait_rc is 0 with the item in wait_slot, -EPIPE, or the cancellation reason. */
enum task_wait task_queue_get(task_queue *q, task *t);
/* Wakes every waiter with -EPIPE; items already queued can still be taken. */
void task_queue_close(task_queue *q);

#endif
