/* test_loop.h: the libuv loop and task scheduler that the cmocka suites run their cases on.
 *
 * Every suite that drives the loop checks at teardown that the code under test left no
 * handle or request behind: after the loop has run out of work, uv_loop_close() returns 0.
 * These two calls hold that check in one place.
 *
 * Ownership: the caller owns both structs (usually inside its per-case state); open
 * initialises them, and drain_and_close leaves them finished. Both fail the current case
 * through cmocka's asserts, so they are for setup and teardown functions only. */
#ifndef AREQ_TEST_LOOP_H
#define AREQ_TEST_LOOP_H

#include <uv.h>

#include "task.h"

void test_loop_open(uv_loop_t *loop, task_sched *sched);

/* Runs the loop until nothing is active (asserting uv_run returns 0, so nobody stopped it
 * with work left) and asserts that uv_loop_close() finds nothing open. The scheduler must be
 * closed first, and so must everything else the case created on the loop. */
void test_loop_drain_and_close(uv_loop_t *loop);

#endif
