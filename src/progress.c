#include "progress.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

enum { TICK_MS = 250 };

struct progress {
    uv_timer_t timer;
    const crawl *c;
    int ansi;
    size_t shown;   /* characters of the line now on screen, 0 when none */
    uint64_t started;
};

static void draw(progress *p)
{
    const struct crawl_stats *s = &p->c->stats;
    double elapsed = (double)(uv_hrtime() - p->started) / 1e9;
    size_t done = s->ok + s->failed + s->skipped;
    size_t in_flight = s->started > s->finished ? s->started - s->finished : 0;
    char total[32] = "";
    if (p->c->lists_read)
        snprintf(total, sizeof total, "/%zu", s->started + s->bad_lines);
    char line[160];
    int n = snprintf(line, sizeof line,
                     "areq: %zu%s done, %zu in flight, %zu failed, %.1f pages/s, %.1f s", done,
                     total, in_flight, s->failed, elapsed > 0 ? (double)s->ok / elapsed : 0.0,
                     elapsed);
    if (n < 0)
        return;
    size_t len = (size_t)n < sizeof line ? (size_t)n : sizeof line - 1;
    /* On a terminal the rest of an older, longer line is cleared with EL; elsewhere
     * (--progress into a file or pipe) with spaces, which any reader copes with. */
    if (p->ansi)
        fprintf(stderr, "\r%s\033[K", line);
    else
        fprintf(stderr, "\r%s%*s", line, p->shown > len ? (int)(p->shown - len) : 0, "");
    fflush(stderr);
    p->shown = len;
}

void progress_clear(progress *p)
{
    if (p == NULL || p->shown == 0)
        return;
    if (p->ansi)
        fputs("\r\033[K", stderr);
    else
        fprintf(stderr, "\r%*s\r", (int)p->shown, "");
    fflush(stderr);
    p->shown = 0;
}

/* Before any message: clear the line so that the message starts at the margin; the next
 * tick draws it again below. */
static void before_log(void *ctx)
{
    progress_clear(ctx);
}

static void on_tick(uv_timer_t *h)
{
    draw(h->data);
}

int progress_start(uv_loop_t *loop, const crawl *c, int ansi, progress **out)
{
    progress *p = calloc(1, sizeof *p);
    if (p == NULL)
        return -ENOMEM;
    p->c = c;
    p->ansi = ansi;
    p->started = uv_hrtime();
    int rc = uv_timer_init(loop, &p->timer);
    if (rc != 0) {
        free(p);
        return rc;
    }
    p->timer.data = p;
    /* The line is a spectator: it must never keep the run alive. */
    uv_unref((uv_handle_t *)&p->timer);
    uv_timer_start(&p->timer, on_tick, TICK_MS, TICK_MS);
    log_set_interrupt(before_log, p);
    draw(p); /* at least once, however short the run */
    *out = p;
    return 0;
}

static void on_closed(uv_handle_t *h)
{
    free(h->data);
}

void progress_destroy(progress *p)
{
    if (p == NULL)
        return;
    log_set_interrupt(NULL, NULL);
    progress_clear(p);
    uv_timer_stop(&p->timer);
    uv_close((uv_handle_t *)&p->timer, on_closed);
}
