/* test_progress.c: the status line: its text (progress_format, no clock involved) and how it
 * is drawn, redrawn and cleared on a terminal and elsewhere (progress_start on a memory
 * stream).
 *
 * The elapsed time and the rate depend on the clock, so drawn lines are matched with a
 * pattern there; nothing here measures time. */
#include <regex.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "crawl.h"
#include "log.h"
#include "progress.h"
#include "test_loop.h"

/* ---- The text ---- */

static void expect_format(const struct crawl_stats *s, int lists_read, double elapsed,
                          const char *expect)
{
    char line[160];
    size_t n = progress_format(line, sizeof line, s, lists_read, elapsed);
    assert_string_equal(line, expect);
    assert_int_equal(n, strlen(expect));
}

static void test_format_empty(void **state)
{
    (void)state;
    struct crawl_stats s = {0};
    /* No time has passed: a rate of 0, not a division by zero. */
    expect_format(&s, 0, 0.0, "areq: 0 done, 0 in flight, 0 failed, 0.0 pages/s, 0.0 s");
    expect_format(&s, 1, 0.0, "areq: 0/0 done, 0 in flight, 0 failed, 0.0 pages/s, 0.0 s");
}

/* Done counts every ending (fetched, failed, skipped); the total, once the lists are read,
 * is every page task plus the bad lines that never became one; the rate counts only the
 * pages fetched. */
static void test_format_counts(void **state)
{
    (void)state;
    struct crawl_stats s = {.ok = 5, .failed = 2, .skipped = 1, .started = 10, .finished = 7,
                            .bad_lines = 1, .pairs = 99, .retries = 4, .queued = 50};
    expect_format(&s, 0, 2.0, "areq: 8 done, 3 in flight, 2 failed, 2.5 pages/s, 2.0 s");
    expect_format(&s, 1, 2.0, "areq: 8/11 done, 3 in flight, 2 failed, 2.5 pages/s, 2.0 s");
    expect_format(&s, 1, 0.5, "areq: 8/11 done, 3 in flight, 2 failed, 10.0 pages/s, 0.5 s");
}

/* Finished ahead of started (counters read between two updates) shows 0 in flight, not a
 * wrapped-around size_t. */
static void test_format_in_flight_never_negative(void **state)
{
    (void)state;
    struct crawl_stats s = {.started = 3, .finished = 4};
    expect_format(&s, 0, 1.0, "areq: 0 done, 0 in flight, 0 failed, 0.0 pages/s, 1.0 s");
}

/* A line longer than the buffer is cut, NUL-terminated, and its length says what is there. */
static void test_format_truncates(void **state)
{
    (void)state;
    struct crawl_stats s = {.ok = SIZE_MAX / 4, .failed = SIZE_MAX / 4, .skipped = 7,
                            .started = SIZE_MAX / 2, .bad_lines = 3};
    char full[400];
    size_t n = progress_format(full, sizeof full, &s, 1, 1e-9);
    assert_int_equal(n, strlen(full));
    char cut[41];
    assert_true(n > sizeof cut);
    memset(cut, 'x', sizeof cut);
    assert_int_equal(progress_format(cut, sizeof cut, &s, 1, 1e-9), sizeof cut - 1);
    assert_int_equal(cut[sizeof cut - 1], '\0');
    assert_memory_equal(cut, full, sizeof cut - 1);

    char one[1] = {'x'};
    assert_int_equal(progress_format(one, sizeof one, &s, 1, 1.0), 0);
    assert_int_equal(one[0], '\0');
}

/* ---- Drawing ---- */

struct env {
    uv_loop_t loop;
    task_sched sched;
    crawl c;          /* only its counters are read */
    FILE *to;
    char *text;       /* what has been written to `to`, once flushed */
    size_t len;
    size_t seen;      /* of text, the part a step has already looked at */
};

static int setup(void **state)
{
    struct env *e = calloc(1, sizeof *e);
    assert_non_null(e);
    test_loop_open(&e->loop, &e->sched);
    e->to = open_memstream(&e->text, &e->len);
    assert_non_null(e->to);
    *state = e;
    return 0;
}

static int teardown(void **state)
{
    struct env *e = *state;
    task_sched_close(&e->sched);
    test_loop_drain_and_close(&e->loop);
    fclose(e->to);
    free(e->text);
    free(e);
    return 0;
}

/* What was written since the last call. A static copy: valid until the next call. */
static const char *news(struct env *e)
{
    static char copy[4096];
    fflush(e->to);
    size_t n = e->len - e->seen;
    assert_true(n < sizeof copy);
    memcpy(copy, e->text + e->seen, n);
    copy[n] = '\0';
    e->seen = e->len;
    return copy;
}

static void assert_matches(const char *text, const char *pattern)
{
    regex_t re;
    assert_int_equal(regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB), 0);
    int rc = regexec(&re, text, 0, NULL, 0);
    regfree(&re);
    if (rc != 0)
        fail_msg("\"%s\" does not match /%s/", text, pattern);
}

#define RATE_AND_TIME "[0-9]+\\.[0-9] pages/s, [0-9]+\\.[0-9] s"

/* Counts the line's redraws while the loop runs: the progress timer must not keep the loop
 * alive, so a timer of the test's own keeps it going until a tick has drawn `want` lines. */
struct watch {
    uv_timer_t timer;
    struct env *e;
    size_t draws;
    size_t want;
    int rounds;
};

static void on_watch(uv_timer_t *h)
{
    struct watch *w = h->data;
    fflush(w->e->to);
    size_t draws = 0;
    for (size_t i = 0; i < w->e->len; i++)
        draws += w->e->text[i] == '\r';
    w->draws = draws;
    /* 10 s at most (a tick is due every 250 ms), however slow the machine. */
    if (draws >= w->want || ++w->rounds >= 200)
        uv_timer_stop(h);
}

static size_t wait_for_draws(struct env *e, size_t want)
{
    struct watch w = {.e = e, .want = want};
    assert_int_equal(uv_timer_init(&e->loop, &w.timer), 0);
    w.timer.data = &w;
    assert_int_equal(uv_timer_start(&w.timer, on_watch, 50, 50), 0);
    uv_run(&e->loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&w.timer, NULL);
    uv_run(&e->loop, UV_RUN_DEFAULT);
    return w.draws;
}

/* Not a terminal: the line is drawn at once, redrawn on a tick, padded with spaces over a
 * longer line it replaces, and cleared with spaces. */
static void test_draw_plain(void **state)
{
    struct env *e = *state;
    e->c.stats = (struct crawl_stats){.ok = 123456, .failed = 234567, .started = 400000,
                                      .finished = 357023};
    progress *p = NULL;
    assert_int_equal(progress_start(&e->loop, &e->c, e->to, 0, &p), 0);
    const char *first = news(e);
    assert_matches(first, "^\rareq: 358023 done, 42977 in flight, 234567 failed, " RATE_AND_TIME
                          "$");
    size_t first_len = strlen(first) - 1;

    /* Fewer digits: the next draw is shorter, and spaces cover the rest of the old one. */
    e->c.stats = (struct crawl_stats){.ok = 1, .started = 2, .finished = 1};
    e->c.lists_read = 1;
    assert_true(wait_for_draws(e, 2) >= 2);
    /* The first redraw is the one that covers the long line (later ones pad no more). */
    const char *text = news(e);
    assert_int_equal(text[0], '\r');
    size_t shown = strcspn(text + 1, "\r");
    assert_int_equal(shown, first_len);
    char trimmed[200];
    size_t n = shown;
    while (n > 0 && text[n] == ' ')
        n--;
    memcpy(trimmed, text + 1, n);
    trimmed[n] = '\0';
    assert_true(n < first_len);
    assert_matches(trimmed, "^areq: 1/2 done, 1 in flight, 0 failed, " RATE_AND_TIME "$");
    /* What the latest draw wrote, less the spaces that covered the old line. */
    const char *last = strrchr(text, '\r') + 1;
    size_t last_len = strlen(last);
    while (last_len > 0 && last[last_len - 1] == ' ')
        last_len--;

    /* Cleared with as many spaces as there are characters (the padding is blank already),
     * the cursor back at the margin; once. */
    progress_clear(p);
    char expect[200];
    snprintf(expect, sizeof expect, "\r%*s\r", (int)last_len, "");
    assert_string_equal(news(e), expect);
    progress_clear(p);
    assert_string_equal(news(e), "");

    /* Destroying a cleared line writes nothing more. */
    progress_destroy(p);
    assert_string_equal(news(e), "");
}

/* A terminal: each draw ends with "erase to end of line", and clearing is one escape. */
static void test_draw_terminal(void **state)
{
    struct env *e = *state;
    e->c.stats = (struct crawl_stats){.ok = 3, .skipped = 1, .started = 4, .finished = 4};
    e->c.lists_read = 1;
    progress *p = NULL;
    assert_int_equal(progress_start(&e->loop, &e->c, e->to, 1, &p), 0);
    assert_matches(news(e), "^\rareq: 4/4 done, 0 in flight, 0 failed, " RATE_AND_TIME
                            "\033\\[K$");

    /* Shorter or not, a redraw pads nothing: the escape clears the rest. */
    e->c.stats = (struct crawl_stats){0};
    assert_true(wait_for_draws(e, 2) >= 2);
    const char *last = strrchr(news(e), '\r');
    assert_non_null(last);
    assert_matches(last, "^\rareq: 0/0 done, 0 in flight, 0 failed, " RATE_AND_TIME
                         "\033\\[K$");

    /* Destroy clears what is shown. */
    progress_destroy(p);
    assert_string_equal(news(e), "\r\033[K");
}

/* A message through log.c first clears the line (so that it starts at the margin); once the
 * line is gone, messages no longer touch the stream. */
static void test_log_clears_the_line(void **state)
{
    struct env *e = *state;
    progress *p = NULL;
    assert_int_equal(progress_start(&e->loop, &e->c, e->to, 1, &p), 0);
    assert_matches(news(e), "^\rareq: 0 done");
    log_error("test_progress: a message over the status line");
    assert_string_equal(news(e), "\r\033[K");
    progress_destroy(p);
    assert_string_equal(news(e), "");
    uv_run(&e->loop, UV_RUN_DEFAULT); /* frees it: a message reaching it now would be a
                                         use after free */
    log_error("test_progress: a message after the status line");
    assert_string_equal(news(e), "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format_empty),
        cmocka_unit_test(test_format_counts),
        cmocka_unit_test(test_format_in_flight_never_negative),
        cmocka_unit_test(test_format_truncates),
        cmocka_unit_test_setup_teardown(test_draw_plain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_draw_terminal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_clears_the_line, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
