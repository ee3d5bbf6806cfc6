#include "log.h"

#include <stdarg.h>
#include <stdio.h>

static enum log_level current = LOG_NORMAL;
static void (*interrupt_fn)(void *ctx);
static void *interrupt_ctx;

void log_set_interrupt(void (*fn)(void *ctx), void *ctx)
{
    interrupt_fn = fn;
    interrupt_ctx = ctx;
}

void log_set_level(enum log_level level)
{
    current = level;
}

enum log_level log_get_level(void)
{
    return current;
}

/* One fprintf per message, so that a line is never split by another writer of stderr. */
static void emit(const char *prefix, const char *fmt, va_list ap)
{
    char line[4096];
    vsnprintf(line, sizeof line, fmt, ap);
    if (interrupt_fn != NULL)
        interrupt_fn(interrupt_ctx);
    fprintf(stderr, "%s%s\n", prefix, line);
}

void log_fatal(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    emit("areq: ", fmt, ap);
    va_end(ap);
}

void log_error(const char *fmt, ...)
{
    if (current < LOG_NORMAL)
        return;
    va_list ap;
    va_start(ap, fmt);
    emit("areq: ", fmt, ap);
    va_end(ap);
}

void log_plain(const char *fmt, ...)
{
    if (current < LOG_NORMAL)
        return;
    va_list ap;
    va_start(ap, fmt);
    emit("", fmt, ap);
    va_end(ap);
}

void log_verbose(const char *fmt, ...)
{
    if (current < LOG_VERBOSE)
        return;
    va_list ap;
    va_start(ap, fmt);
    emit("areq: ", fmt, ap);
    va_end(ap);
}
