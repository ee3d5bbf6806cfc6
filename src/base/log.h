/* log.h: messages to standard error, filtered by verbosity.
 *
 * One process-wide level, set once by main before the run: messages are a property of the
 * whole run, and threading a context through every module for them would obscure more than
 * it helps. Owns nothing. */
#ifndef AREQ_LOG_H
#define AREQ_LOG_H

enum log_level {
    LOG_QUIET = -1, /* only fatal errors */
    LOG_NORMAL = 0, /* failures and the summary */
    LOG_VERBOSE = 1 /* and a line per URL */
};

void log_set_level(enum log_level level);
enum log_level log_get_level(void);

/* Something to run before any message is written (the progress line clears itself), or
 * NULL. */
void log_set_interrupt(void (*fn)(void *ctx), void *ctx);

/* "areq: ..." whatever the level: for errors that end the run. */
void log_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "areq: ..." unless quiet: failures of single URLs, the summary. */
void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Exactly as formatted (no prefix) unless quiet: "FILE:LINE: reason". */
void log_plain(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "areq: ..." only when verbose. */
void log_verbose(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
