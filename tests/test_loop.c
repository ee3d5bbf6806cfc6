#include "test_loop.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

void test_loop_open(uv_loop_t *loop, task_sched *sched)
{
    assert_int_equal(uv_loop_init(loop), 0);
    assert_int_equal(task_sched_init(sched, loop), 0);
}

void test_loop_drain_and_close(uv_loop_t *loop)
{
    assert_int_equal(uv_run(loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(loop), 0);
}
