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
    FILE *to;       /* the caller's */
    int ansi;
    size_t shown;   /* characters of the line now on screen, 0 when none */
    uint64_t started;
};

size_t progress_format(char *line, size_t size, const struct crawl_stats *s, int lists_read,
                       double elapsed_s)
{
    size_t done = s->ok + s->failed + s->skipped + s->saved_only;
    /* Transfers: with --state, pages not yet given a slot are under way but not in flight. */
    size_t under_way = s->started > s->finished ? s->started - s->finished : 0;
    size_t in_flight = under_way > s->before_slot ? under_way - s->before_slot : 0;
    char total[32] = "";
    if (lists_read)
        snprintf(total, sizeof total, "/%zu", s->started + s->bad_lines);
    int n = snprintf(line, size,
                     "areq: %zu%s done, %zu in flight, %zu failed, %.1f pages/s, %.1f s", done,
                     total, in_flight, s->failed, elapsed_s > 0 ? (double)s->ok / elapsed_s : 0.0,
                     elapsed_s);
    if (n < 0) {
        line[0] = '\0';
        return 0;
    }
    return (size_t)n < size ? (size_t)n : size - 1;
}

static void draw(progress *p)
{
    double elapsed = (double)(uv_hrtime() - p->started) / 1e9;
    char line[160];
    size_t len = progress_format(line, sizeof line, &p->c->stats, p->c->lists_read, elapsed);
    /* On a terminal the rest of an older, longer line is cleared with EL; elsewhere
     * (--progress into a file or pipe) with spaces, which any reader copes with. */
    if (p->ansi)
        fprintf(p->to, "\r%s\033[K", line);
    else
        fprintf(p->to, "\r%s%*s", line, p->shown > len ? (int)(p->shown - len) : 0, "");
    fflush(p->to);
    p->shown = len;
}

void progress_clear(progress *p)
{
    if (p == NULL || p->shown == 0)
        return;
    if (p->ansi)
        fputs("\r\033[K", p->to);
    else
        fprintf(p->to, "\r%*s\r", (int)p->shown, "");
    fflush(p->to);
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

int progress_start(uv_loop_t *loop, const crawl *c, FILE *to, int ansi, progress **out)
{
    progress *p = calloc(1, sizeof *p);
    if (p == NULL)
        return -ENOMEM;
    p->c = c;
    p->to = to;
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
