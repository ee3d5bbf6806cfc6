#include "crawl.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "reader.h"
#include "url.h"

/* ---- a page: fetch, scan, resolve, hand one block to the writer ---- */

struct page {
    task t;
    crawl *c;
    char *url; /* normalised source */
    http_request req;
    unsigned attempt; /* 0 for the first */
};

/* What one scan of a body needs; lives on the stack of scan_page(). */
struct scan {
    crawl *c;
    const char *source;
    size_t source_len;
    url_base *base;
    struct format_origin origin;
    struct buf target; /* the link being resolved */
    struct buf block;  /* the page's lines */
    seen_set targets;
    size_t links;      /* hrefs seen */
    size_t pairs;      /* lines in block */
    size_t bad;        /* hrefs that could not be parsed */
    int base_taken;    /* the first <base href> has been applied */
};

enum { SCAN_RESCAN = 1 }; /* a <base> came after links: resolve them all again */

static int on_link(void *ctx, enum links_kind kind, const char *value, size_t len)
{
    struct scan *s = ctx;
    if (kind == LINKS_BASE) {
        if (s->base_taken)
            return 0;
        s->base_taken = 1;
        /* An unparsable base leaves the document's own URL in force, as in a browser. */
        if (url_base_rebase(s->base, value, len) != 0)
            return 0;
        /* The base applies to every link of the document, also those before it. */
        return s->links > 0 ? SCAN_RESCAN : 0;
    }
    s->links++;
    buf_clear(&s->target);
    int rc = url_resolve(s->base, value, len, s->c->opt.url_flags, &s->target);
    if (rc != URL_OK) {
        if (rc == -ENOMEM)
            return rc;
        if (rc < 0)
            s->bad++;
        return 0;
    }
    int added = seen_add(&s->targets, seen_hash(s->target.data, s->target.len));
    if (added <= 0)
        return added;
    rc = format_pair(s->c->opt.format, &s->block, s->source, s->source_len, s->target.data,
                     s->target.len, &s->origin);
    if (rc != 0)
        return rc;
    s->pairs++;
    return 0;
}

/* Scans a fetched body into a block of lines. 0 or a negative error. */
static int scan_page(struct page *p, struct scan *s)
{
    crawl *c = p->c;
    const http_request *r = &p->req;
    int rc = url_base_create(r->final_url, strlen(r->final_url), &s->base);
    if (rc != 0)
        return rc;
    for (;;) {
        rc = links_scan(c->opt.extractor, r->body.data ? r->body.data : "", r->body.len, on_link, s);
        if (rc != SCAN_RESCAN)
            break;
        buf_clear(&s->block);
        seen_clear(&s->targets);
        s->links = s->pairs = s->bad = 0;
    }
    return rc;
}

static void process_page(struct page *p)
{
    crawl *c = p->c;
    http_request *r = &p->req;
    char why[128];
    if (r->outcome == HTTP_NOT_HTML) {
        c->stats.skipped++;
        log_verbose("%s: skipped: %s", p->url, http_describe(r, why, sizeof why));
        return;
    }
    if (r->outcome != HTTP_OK) {
        c->stats.failed++;
        log_error("%s: %s", p->url, http_describe(r, why, sizeof why));
        return;
    }
    struct scan s = {.c = c, .source = p->url, .source_len = strlen(p->url),
                     .origin = {.status = r->status, .depth = 0}};
    buf_init(&s.target);
    buf_init(&s.block);
    seen_init(&s.targets);
    int rc = scan_page(p, &s);
    if (rc == 0 && s.block.len > 0)
        rc = writer_submit(c->opt.out, s.block.data, s.block.len);
    if (rc == 0) {
        c->stats.ok++;
        c->stats.pairs += s.pairs;
        c->stats.links_bad += s.bad;
        log_verbose("%s: HTTP %ld, %zu bytes, %zu links, %zu unparsable", p->url, r->status,
                    r->bytes, s.pairs, s.bad);
    } else if (writer_error(c->opt.out) == 0) {
        /* A writer error is reported once, for the run, by whoever owns the writer. */
        c->stats.failed++;
        log_error("%s: %s", p->url, rc == -ENOMEM ? "out of memory" : "cannot scan the page");
    }
    url_base_destroy(s.base);
    seen_finish(&s.targets);
    buf_finish(&s.block);
    buf_finish(&s.target);
}

/* A uniform 64-bit random number (xorshift64*): jitter needs spread, not secrecy. */
static uint64_t next_random(crawl *c)
{
    c->rng ^= c->rng >> 12;
    c->rng ^= c->rng << 25;
    c->rng ^= c->rng >> 27;
    return c->rng * 0x2545F4914F6CDD1DULL;
}

enum { BACKOFF_BASE_MS = 500, BACKOFF_CAP_MS = 60000 };

/* How long to wait before attempt `attempt` (1-based) again: Retry-After when the server
 * gave one (up to a minute), else exponential backoff from 0.5 s with full jitter, so that
 * many URLs failing together do not come back together. */
static uint64_t backoff_ms(crawl *c, const http_request *r, unsigned attempt)
{
    if (r->retry_after_s >= 0) {
        uint64_t ms = (uint64_t)r->retry_after_s * 1000;
        return ms < BACKOFF_CAP_MS ? ms : BACKOFF_CAP_MS;
    }
    uint64_t ceiling = BACKOFF_BASE_MS;
    for (unsigned i = 1; i < attempt && ceiling < BACKOFF_CAP_MS; i++)
        ceiling *= 2;
    if (ceiling > BACKOFF_CAP_MS)
        ceiling = BACKOFF_CAP_MS;
    return next_random(c) % (ceiling + 1);
}

enum { PAGE_FETCH, PAGE_FETCHED, PAGE_BACKED_OFF };

static int page_step(task *t)
{
    struct page *p = (struct page *)t;
    crawl *c = p->c;
    switch (t->state) {
    case PAGE_BACKED_OFF:
        http_request_finish(&p->req);
        http_request_init(&p->req, p->url);
        /* fall through */
    case PAGE_FETCH:
        if (task_cancelled(t))
            return task_finish(t, task_cancelled(t));
        t->state = PAGE_FETCHED;
        return http_fetch(c->opt.http, &p->req, t);
    case PAGE_FETCHED:
        if (p->req.outcome == HTTP_CANCELLED)
            return task_finish(t, task_cancelled(t));
        if (!task_cancelled(t) && p->attempt < c->opt.retries && http_is_transient(&p->req)) {
            p->attempt++;
            c->stats.retries++;
            uint64_t ms = backoff_ms(c, &p->req, p->attempt);
            char why[128];
            log_verbose("%s: %s; trying again in %.1f s (retry %u of %u)", p->url,
                        http_describe(&p->req, why, sizeof why), (double)ms / 1000, p->attempt,
                        c->opt.retries);
            t->state = PAGE_BACKED_OFF;
            return task_sleep(t, ms);
        }
        /* A transfer that ended before the cancellation still counts: its block is whole. */
        process_page(p);
        return task_finish(t, task_cancelled(t));
    }
    return task_finish(t, -EINVAL);
}

static void page_done(task *t)
{
    struct page *p = (struct page *)t;
    crawl *c = p->c;
    http_request_finish(&p->req);
    free(p->url);
    free(p);
    c->stats.finished++;
    task_sem_release(&c->slots);
}

/* Takes ownership of the permit the run task holds. 0 or -ENOMEM. */
static int spawn_page(crawl *c)
{
    struct page *p = calloc(1, sizeof *p);
    if (p == NULL)
        return -ENOMEM;
    p->c = c;
    p->url = buf_detach(&c->pending_url);
    task_init(&p->t, page_step, page_done);
    http_request_init(&p->req, p->url);
    task_spawn(c->t.sched, &p->t, &c->t);
    c->stats.started++;
    return 0;
}

/* ---- the run: lists in, pages out ---- */

/* Checks one input line. 1 when it is a new URL, now in pending_url; 0 when it was
 * reported or is a duplicate. */
static int take_line(crawl *c)
{
    const struct input_line *l = &c->line;
    const char *name = reader_name(c->in);
    if (l->error != NULL) {
        log_plain("%s:%lu: %s", name, l->lineno, l->error);
        c->stats.failed++;
        c->stats.bad_lines++;
        return 0;
    }
    const char *why = NULL;
    buf_clear(&c->pending_url);
    if (url_normalize_input(l->text, l->len, &c->pending_url, &why) != 0) {
        log_plain("%s:%lu: %s", name, l->lineno, why ? why : "not a valid URL");
        c->stats.failed++;
        c->stats.bad_lines++;
        return 0;
    }
    int added = seen_add(&c->seen, seen_hash(c->pending_url.data, c->pending_url.len));
    if (added < 0) {
        log_plain("%s:%lu: out of memory", name, l->lineno);
        c->stats.failed++;
        return 0;
    }
    return added;
}

enum { RUN_OPEN, RUN_READ, RUN_LINE, RUN_ADMITTED, RUN_JOIN, RUN_JOINED, RUN_CLOSED };

static void close_input(crawl *c)
{
    reader_close(c->in);
    c->in = NULL;
}

static int run_step(task *t)
{
    crawl *c = (crawl *)t;
    for (;;) {
        if (task_cancelled(t) && t->state < RUN_JOIN) {
            if (t->state == RUN_ADMITTED && task_wait_rc(t) == 0)
                task_sem_release(&c->slots); /* the permit came with the cancellation */
            t->state = RUN_JOIN;
        }
        switch (t->state) {
        case RUN_OPEN: {
            if (c->next_input == c->opt.ninputs) {
                c->lists_read = 1;
                t->state = RUN_JOIN;
                break;
            }
            const char *path = c->opt.inputs[c->next_input++];
            int rc = reader_open(c->t.sched->loop, path, &c->in);
            if (rc != 0) {
                log_fatal("cannot read %s: %s", path, uv_strerror(rc));
                c->input_error = rc;
                break;
            }
            t->state = RUN_READ;
            break;
        }
        case RUN_READ:
            t->state = RUN_LINE;
            if (reader_next(c->in, t, &c->line) == TASK_PENDING)
                return TASK_PENDING;
            break;
        case RUN_LINE: {
            int rc = task_wait_rc(t);
            if (rc <= 0) {
                if (rc < 0) {
                    log_fatal("cannot read %s: %s", reader_name(c->in), uv_strerror(rc));
                    c->input_error = rc;
                }
                close_input(c);
                t->state = RUN_OPEN;
                break;
            }
            t->state = RUN_READ;
            if (!take_line(c))
                break;
            t->state = RUN_ADMITTED;
            if (task_sem_acquire(&c->slots, t) == TASK_PENDING)
                return TASK_PENDING;
            break;
        }
        case RUN_ADMITTED:
            if (spawn_page(c) != 0) {
                task_sem_release(&c->slots);
                log_error("%s: out of memory", c->pending_url.data);
                c->stats.failed++;
            }
            t->state = RUN_READ;
            break;
        case RUN_JOIN:
            if (c->in != NULL)
                close_input(c);
            t->state = RUN_JOINED;
            if (task_join(t) == TASK_PENDING)
                return TASK_PENDING;
            break;
        case RUN_JOINED:
            /* A cancellation wakes a join early; the cancelled pages finish promptly. */
            if (t->live_children > 0) {
                t->state = RUN_JOIN;
                break;
            }
            t->state = RUN_CLOSED;
            return writer_close(c->opt.out, t);
        case RUN_CLOSED:
            return task_finish(t, task_cancelled(t));
        default:
            return task_finish(t, -EINVAL);
        }
    }
}

void crawl_init(crawl *c, const struct crawl_options *o)
{
    *c = (crawl){.opt = *o};
    task_init(&c->t, run_step, NULL);
    task_sem_init(&c->slots, o->concurrency);
    seen_init(&c->seen);
    c->rng = uv_hrtime() | 1; /* never 0: xorshift would stay there */
    buf_init(&c->pending_url);
}

void crawl_finish(crawl *c)
{
    seen_finish(&c->seen);
    buf_finish(&c->pending_url);
}

void crawl_start(crawl *c, task_sched *s)
{
    task_spawn(s, &c->t, NULL);
}

void crawl_stop(crawl *c, int reason)
{
    task_cancel(&c->t, reason);
}
