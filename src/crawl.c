#include "crawl.h"

#include <errno.h>
#include <libpsl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "page.h"
#include "reader.h"
#include "robots.h"
#include "url.h"

/* How many URLs the run reads ahead of what the frontier can release: enough to find other
 * origins when one is held back by its limits, bounded so that a long list is streamed. */
static size_t read_ahead(const crawl *c)
{
    return c->opt.concurrency * 2 > 1024 ? c->opt.concurrency * 2 : 1024;
}

static uint64_t now_ms(const crawl *c)
{
    return uv_now(c->t.sched->loop);
}

/* ---- scope ---- */

/* The key two hosts must share for a link between them to be in scope. Cached on the host
 * (it is derived from the name alone, so caching through a const pointer is sound). */
static const char *scope_key(crawl *c, const struct frontier_host *host)
{
    struct frontier_host *h = (struct frontier_host *)host;
    if (h->scope != NULL)
        return h->scope;
    const char *key = h->name;
    if (c->opt.scope == SCOPE_DOMAIN && c->psl != NULL) {
        /* An IP address or a bare public suffix has no registrable domain: the host
         * itself is the widest scope then. */
        const char *domain = psl_registrable_domain(c->psl, h->name);
        if (domain != NULL)
            key = domain;
    }
    h->scope = strdup(key);
    return h->scope != NULL ? h->scope : h->name;
}

static int in_scope(crawl *c, const struct frontier_host *h, const struct frontier_host *root)
{
    if (c->opt.scope == SCOPE_ANY || h == root)
        return 1;
    return strcmp(scope_key(c, h), scope_key(c, root)) == 0;
}

static int passes_filters(const crawl *c, const char *url, size_t len)
{
    for (size_t i = 0; i < c->opt.nexclude; i++)
        if (links_filter_match(c->opt.exclude[i], url, len) == 1)
            return 0;
    if (c->opt.ninclude == 0)
        return 1;
    for (size_t i = 0; i < c->opt.ninclude; i++)
        if (links_filter_match(c->opt.include[i], url, len) == 1)
            return 1;
    return 0;
}

int crawl_follow(crawl *c, const char *url, size_t len, unsigned depth,
                 const struct frontier_host *root)
{
    if (c->opt.max_pages > 0 && c->stats.queued >= c->opt.max_pages)
        return 0;
    uint64_t fp = seen_hash(url, len);
    if (seen_contains(&c->seen, fp))
        return 0;
    struct frontier_host *h;
    int rc = frontier_host_of(c->frontier, url, len, &h);
    if (rc != 0)
        return rc == -ENOMEM ? rc : 0;
    /* Only what is followed is marked seen: a URL out of one start host's scope may be in
     * another's. */
    if (!in_scope(c, h, root) || !passes_filters(c, url, len))
        return 0;
    if ((rc = seen_add(&c->seen, fp)) < 0 || (rc = frontier_push(c->frontier, h, url, len, depth, root)) != 0)
        return rc;
    c->stats.queued++;
    return 1;
}

/* ---- robots.txt ---- */

struct robots_fetch {
    task t;
    crawl *c;
    struct frontier_host *host;
    char *url;
    http_request req;
};

/* RFC 9309: rules from a 2xx; a 4xx means no rules; a 5xx or no answer means stay out. */
static robots *rules_from(const http_request *r, const char **verdict)
{
    robots *rules = NULL;
    if (r->outcome == HTTP_OK &&
        robots_parse(r->body.data ? r->body.data : "", r->body.len, "areq", &rules) == 0) {
        *verdict = "rules read";
        return rules;
    }
    if (r->outcome == HTTP_STATUS && r->status >= 400 && r->status < 500) {
        *verdict = "none, all allowed";
        robots_allow_all(&rules);
        return rules;
    }
    *verdict = "unavailable, all disallowed";
    robots_disallow_all(&rules);
    return rules;
}

static int robots_step(task *t)
{
    struct robots_fetch *f = (struct robots_fetch *)t;
    crawl *c = f->c;
    if (t->state == 0) {
        t->state = 1;
        f->req.any_type = 1; /* robots.txt is text/plain */
        return http_fetch(c->opt.http, &f->req, t);
    }
    const char *verdict;
    robots *rules = rules_from(&f->req, &verdict);
    char why[128];
    log_verbose("%s: %s: %s", f->url, http_describe(&f->req, why, sizeof why), verdict);
    /* Without memory for rules, none is the cautious answer. */
    frontier_robots_known(c->frontier, f->host, rules, now_ms(c));
    return task_finish(t, 0);
}

static void robots_done(task *t)
{
    struct robots_fetch *f = (struct robots_fetch *)t;
    crawl *c = f->c;
    http_request_finish(&f->req);
    free(f->url);
    free(f);
    task_sem_release(&c->slots);
    task_event_signal(&c->changed);
}

/* Takes one permit of the caller's. 0 or -ENOMEM. */
static int spawn_robots(crawl *c, struct frontier_host *h)
{
    struct robots_fetch *f = calloc(1, sizeof *f);
    size_t n = strlen(h->origin) + sizeof "/robots.txt";
    if (f == NULL || (f->url = malloc(n)) == NULL) {
        free(f);
        return -ENOMEM;
    }
    snprintf(f->url, n, "%s/robots.txt", h->origin);
    f->c = c;
    f->host = h;
    http_request_init(&f->req, f->url);
    task_init(&f->t, robots_step, robots_done);
    task_spawn(c->t.sched, &f->t, &c->t);
    return 0;
}

/* ---- the lists ---- */

/* Checks one input line and queues it. Bad lines are reported by FILE:LINE. */
static void take_line(crawl *c)
{
    const struct input_line *l = &c->line;
    const char *name = reader_name(c->in);
    const char *why = NULL;
    int rc = 0;
    if (l->error != NULL) {
        why = l->error;
    } else {
        buf_clear(&c->pending_url);
        if (url_normalize_input(l->text, l->len, &c->pending_url, &why) != 0) {
            if (why == NULL)
                why = "not a valid URL";
        } else {
            struct frontier_host *h;
            uint64_t fp = seen_hash(c->pending_url.data, c->pending_url.len);
            if (seen_contains(&c->seen, fp))
                return; /* listed before: fetched once */
            rc = frontier_host_of(c->frontier, c->pending_url.data, c->pending_url.len, &h);
            if (rc == 0 && (rc = seen_add(&c->seen, fp)) >= 0)
                rc = frontier_push(c->frontier, h, c->pending_url.data, c->pending_url.len, 0, h);
            if (rc == 0) {
                c->stats.queued++;
                return;
            }
            why = rc == -ENOMEM ? "out of memory" : "URL has no host";
        }
    }
    log_plain("%s:%lu: %s", name, l->lineno, why);
    c->stats.failed++;
    c->stats.bad_lines++;
}

static void close_input(crawl *c)
{
    reader_close(c->in);
    c->in = NULL;
}

/* ---- the run ---- */

enum {
    RUN_STEP,         /* decide what to do next */
    RUN_OPEN,         /* open the next list */
    RUN_READ,         /* ask for a line */
    RUN_LINE,         /* a line (or the end of a list) is in */
    RUN_ADMIT_PAGE,   /* a permit for c->admitting */
    RUN_ADMIT_ROBOTS, /* a permit for c->robots_host */
    RUN_WAITED,       /* something may have changed */
    RUN_JOIN,
    RUN_JOINED,
    RUN_CLOSED,
};

/* Gives up what the run holds when it stops early. */
static void drop_pending(crawl *c)
{
    if (c->admitting != NULL) {
        frontier_done(c->frontier, c->admitting, now_ms(c));
        c->admitting = NULL;
    }
    if (c->robots_host != NULL) {
        robots *none = NULL;
        robots_disallow_all(&none);
        frontier_robots_known(c->frontier, c->robots_host, none, now_ms(c));
        c->robots_host = NULL;
    }
}

/* With nothing to start now: read on, finish, or wait for a change. Returns TASK_PENDING
 * when the task waits, else TASK_DONE to go round again. */
static int idle(crawl *c, task *t, enum frontier_next what, uint64_t wake_at)
{
    struct frontier_stats fs;
    frontier_get_stats(c->frontier, &fs);
    if (!c->lists_read && fs.queued < read_ahead(c)) {
        t->state = c->in != NULL ? RUN_READ : RUN_OPEN;
        return TASK_DONE;
    }
    if (what == FRONTIER_EMPTY && c->lists_read) {
        t->state = RUN_JOIN;
        return TASK_DONE;
    }
    uint64_t now = now_ms(c);
    uint64_t timeout = wake_at == UINT64_MAX ? UINT64_MAX : wake_at > now ? wake_at - now : 0;
    t->state = RUN_WAITED;
    if (timeout == 0)
        return task_yield(t);
    return task_event_wait(&c->changed, t, timeout);
}

static int run_step(task *t)
{
    crawl *c = (crawl *)t;
    for (;;) {
        if (task_cancelled(t) && t->state < RUN_ADMIT_PAGE) {
            drop_pending(c);
            t->state = RUN_JOIN;
        }
        switch (t->state) {
        case RUN_STEP: {
            /* A reader slower than the crawl (a stalled `-o -`) must not make the writer
             * hold the whole output: start nothing new until it has taken some. */
            if (writer_backlog(c->opt.out) >= WRITER_BACKLOG_MAX) {
                t->state = RUN_WAITED;
                if (writer_wait_room(c->opt.out, t) == TASK_PENDING)
                    return TASK_PENDING;
                break;
            }
            struct frontier_host *h = frontier_robots_wanted(c->frontier);
            if (h != NULL) {
                c->robots_host = h;
                t->state = RUN_ADMIT_ROBOTS;
                if (task_sem_acquire(&c->slots, t) == TASK_PENDING)
                    return TASK_PENDING;
                break;
            }
            struct frontier_item *it = NULL;
            uint64_t wake_at = UINT64_MAX;
            enum frontier_next what = frontier_next(c->frontier, now_ms(c), &it, &wake_at);
            if (what == FRONTIER_ITEM) {
                if (c->opt.max_pages > 0 && c->stats.started >= c->opt.max_pages) {
                    frontier_done(c->frontier, it, now_ms(c));
                    c->stats.unfetched++;
                    break;
                }
                c->admitting = it;
                t->state = RUN_ADMIT_PAGE;
                if (task_sem_acquire(&c->slots, t) == TASK_PENDING)
                    return TASK_PENDING;
                break;
            }
            if (idle(c, t, what, wake_at) == TASK_PENDING)
                return TASK_PENDING;
            break;
        }
        case RUN_OPEN: {
            if (c->next_input == c->opt.ninputs) {
                c->lists_read = 1;
                frontier_set_input_open(c->frontier, 0);
                t->state = RUN_STEP;
                break;
            }
            size_t i = c->next_input++;
            const char *path = c->opt.inputs[i];
            int fd = c->opt.input_fds[i];
            c->opt.input_fds[i] = -1; /* the reader's now */
            int rc = reader_open(c->t.sched->loop, fd, strcmp(path, "-") == 0 ? "<stdin>" : path,
                                 &c->in);
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
            take_line(c);
            t->state = RUN_STEP;
            break;
        }
        case RUN_ADMIT_PAGE:
        case RUN_ADMIT_ROBOTS: {
            int robots_fetch = t->state == RUN_ADMIT_ROBOTS;
            t->state = RUN_STEP;
            if (task_wait_rc(t) != 0) {
                /* Cancelled while waiting: no permit came. */
                drop_pending(c);
                t->state = RUN_JOIN;
                break;
            }
            if (task_cancelled(t)) {
                task_sem_release(&c->slots);
                drop_pending(c);
                t->state = RUN_JOIN;
                break;
            }
            int rc = robots_fetch ? spawn_robots(c, c->robots_host) : page_spawn(c, c->admitting);
            if (rc != 0) {
                task_sem_release(&c->slots);
                log_error("out of memory");
                c->stats.failed++;
                drop_pending(c);
                break;
            }
            c->admitting = NULL;
            c->robots_host = NULL;
            break;
        }
        case RUN_WAITED:
            t->state = RUN_STEP;
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
            {
                struct frontier_stats fs;
                frontier_get_stats(c->frontier, &fs);
                c->stats.disallowed = fs.disallowed;
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

int crawl_init(crawl *c, const struct crawl_options *o)
{
    *c = (crawl){.opt = *o};
    task_init(&c->t, run_step, NULL);
    task_sem_init(&c->slots, o->concurrency);
    seen_init(&c->seen);
    buf_init(&c->pending_url);
    c->rng = uv_hrtime() | 1; /* never 0: xorshift would stay there */
    struct frontier_limits limits = {
        .per_host = o->per_host,
        .delay_ms = o->delay_ms,
        .robots = o->robots && o->depth > 0,
    };
    if (o->scope == SCOPE_DOMAIN)
        c->psl = psl_latest(NULL);
    if (frontier_create(&limits, &c->frontier) != 0) {
        crawl_finish(c);
        return -ENOMEM;
    }
    return 0;
}

void crawl_finish(crawl *c)
{
    /* Lists a stopped run never reached. */
    for (size_t i = c->next_input; i < c->opt.ninputs && c->opt.input_fds != NULL; i++) {
        if (c->opt.input_fds[i] > STDERR_FILENO)
            close(c->opt.input_fds[i]);
        c->opt.input_fds[i] = -1;
    }
    frontier_destroy(c->frontier);
    c->frontier = NULL;
    psl_free(c->psl);
    c->psl = NULL;
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
