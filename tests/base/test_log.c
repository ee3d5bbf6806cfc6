/* Tests of the log module: which level lets which message through, the "areq: " prefix, and
 * that every message reaches standard error as exactly one line. Standard error is pointed
 * at a temporary file for the duration of each capture and restored afterwards. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "log.h"

/* ---- capturing standard error ---- */

struct capture {
    int saved; /* the real standard error */
    int fd;    /* the temporary file it points at meanwhile */
};

static void capture_begin(struct capture *cap)
{
    char path[] = "/tmp/areq-test-log-XXXXXX";
    cap->fd = mkstemp(path);
    assert_true(cap->fd >= 0);
    unlink(path);
    fflush(stderr);
    cap->saved = dup(STDERR_FILENO);
    assert_true(cap->saved >= 0);
    assert_int_equal(dup2(cap->fd, STDERR_FILENO), STDERR_FILENO);
}

/* Restores standard error and returns what was written to it meanwhile (caller frees). */
static char *capture_end(struct capture *cap, size_t *len)
{
    fflush(stderr);
    assert_int_equal(dup2(cap->saved, STDERR_FILENO), STDERR_FILENO);
    close(cap->saved);
    off_t size = lseek(cap->fd, 0, SEEK_END);
    assert_true(size >= 0);
    char *text = malloc((size_t)size + 1);
    assert_non_null(text);
    assert_int_equal(pread(cap->fd, text, (size_t)size, 0), size);
    text[size] = '\0';
    close(cap->fd);
    *len = (size_t)size;
    return text;
}

/* ---- the four entry points, called through one signature ---- */

typedef void (*log_call)(const char *msg);

static void call_fatal(const char *msg) { log_fatal("%s", msg); }
static void call_error(const char *msg) { log_error("%s", msg); }
static void call_plain(const char *msg) { log_plain("%s", msg); }
static void call_verbose(const char *msg) { log_verbose("%s", msg); }

/* What one call wrote to standard error at `level` (caller frees). */
static char *emitted(enum log_level level, log_call call, const char *msg, size_t *len)
{
    log_set_level(level);
    struct capture cap;
    capture_begin(&cap);
    call(msg);
    return capture_end(&cap, len);
}

static size_t count_char(const char *s, size_t len, char c)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += s[i] == c;
    return n;
}

static int reset_level(void **state)
{
    (void)state;
    log_set_level(LOG_NORMAL);
    return 0;
}

/* ---- cases ---- */

static void test_level_round_trips(void **state)
{
    (void)state;
    static const enum log_level levels[] = {LOG_QUIET, LOG_NORMAL, LOG_VERBOSE};
    for (size_t i = 0; i < sizeof levels / sizeof levels[0]; i++) {
        log_set_level(levels[i]);
        assert_int_equal(log_get_level(), levels[i]);
    }
}

/* Each entry point at each level: whether it prints, and exactly what. */
static void test_filtering_and_prefixes(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        log_call call;
        enum log_level level;
        const char *want; /* NULL: nothing at all */
    } rows[] = {
        {"fatal", call_fatal, LOG_QUIET, "areq: the message\n"},
        {"fatal", call_fatal, LOG_NORMAL, "areq: the message\n"},
        {"fatal", call_fatal, LOG_VERBOSE, "areq: the message\n"},
        {"error", call_error, LOG_QUIET, NULL},
        {"error", call_error, LOG_NORMAL, "areq: the message\n"},
        {"error", call_error, LOG_VERBOSE, "areq: the message\n"},
        {"plain", call_plain, LOG_QUIET, NULL},
        {"plain", call_plain, LOG_NORMAL, "the message\n"},
        {"plain", call_plain, LOG_VERBOSE, "the message\n"},
        {"verbose", call_verbose, LOG_QUIET, NULL},
        {"verbose", call_verbose, LOG_NORMAL, NULL},
        {"verbose", call_verbose, LOG_VERBOSE, "areq: the message\n"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        size_t len;
        char *got = emitted(rows[i].level, rows[i].call, "the message", &len);
        const char *want = rows[i].want ? rows[i].want : "";
        if (strcmp(got, want) != 0)
            fail_msg("log_%s at level %d wrote \"%s\", want \"%s\"", rows[i].name,
                     (int)rows[i].level, got, want);
        free(got);
    }
}

/* Formatting goes through printf, so arguments are expanded within the one line. */
static void test_formats_arguments(void **state)
{
    (void)state;
    log_set_level(LOG_NORMAL);
    struct capture cap;
    capture_begin(&cap);
    log_plain("%s:%lu: %s", "list.txt", 7ul, "not a valid URL");
    log_error("%zu ok, %d failed", (size_t)3, 2);
    size_t len;
    char *got = capture_end(&cap, &len);
    assert_string_equal(got, "list.txt:7: not a valid URL\nareq: 3 ok, 2 failed\n");
    free(got);
}

/* A message far longer than the line buffer is cut short, but still one whole line with its
 * prefix: neither split in two nor left without its newline. */
static void test_long_message_is_one_truncated_line(void **state)
{
    (void)state;
    enum { LONG = 10000 };
    char *msg = malloc(LONG + 1);
    assert_non_null(msg);
    memset(msg, 'x', LONG);
    msg[LONG] = '\0';
    static const log_call calls[] = {call_fatal, call_error, call_plain, call_verbose};
    for (size_t i = 0; i < sizeof calls / sizeof calls[0]; i++) {
        size_t len;
        char *got = emitted(LOG_VERBOSE, calls[i], msg, &len);
        assert_true(len > 0);
        assert_int_equal(count_char(got, len, '\n'), 1);
        assert_int_equal(got[len - 1], '\n');
        assert_true(len < LONG); /* truncated */
        const char *body = calls[i] == call_plain ? got : got + strlen("areq: ");
        if (calls[i] != call_plain)
            assert_memory_equal(got, "areq: ", strlen("areq: "));
        size_t body_len = len - 1 - (size_t)(body - got);
        assert_true(body_len > 1000); /* kept a useful part of it */
        assert_int_equal(count_char(body, body_len, 'x'), body_len);
        free(got);
    }
    free(msg);
}

/* Several messages in a row come out as as many lines, in order. */
static void test_one_line_per_message(void **state)
{
    (void)state;
    log_set_level(LOG_VERBOSE);
    struct capture cap;
    capture_begin(&cap);
    log_fatal("one");
    log_error("two");
    log_plain("three");
    log_verbose("four");
    log_plain("%s", "");
    size_t len;
    char *got = capture_end(&cap, &len);
    assert_string_equal(got, "areq: one\nareq: two\nthree\nareq: four\n\n");
    free(got);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_level_round_trips, reset_level),
        cmocka_unit_test_teardown(test_filtering_and_prefixes, reset_level),
        cmocka_unit_test_teardown(test_formats_arguments, reset_level),
        cmocka_unit_test_teardown(test_long_message_is_one_truncated_line, reset_level),
        cmocka_unit_test_teardown(test_one_line_per_message, reset_level),
    };
    return cmocka_run_group_tests_name("log", tests, NULL, NULL);
}
