#include "crawl.h"

#include <arpa/inet.h>
#include <errno.h>
#include <libpsl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "admit.h"
#include "log.h"
#include "reader.h"
#include "robots.h"
#include "save.h"
#include "savepath.h"
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

/* Notes a failed URL in the --failures file, if there is one. The caller counts it and
 * names it on stderr. */
static void record_failure(crawl *c, const struct format_failure *f)
{
    if (c->opt.failures == NULL)
        return;
    struct buf line;
    buf_init(&line);
    /* A line that cannot be had (out of memory, a failed writer) costs the file that line
     * only; the failure is still counted and named on stderr. A resumed run finds the
     * failures that are no page's again (a bad list line, a listed URL robots.txt
     * disallows): one kept from the unfinished run is not written twice. A page's own
     * line cannot be among those kept: a page kept is done, and not fetched again. */
    if (format_failure(&line, f) == 0 &&
        (c->opt.failures_kept == NULL ||
         !seen_contains(c->opt.failures_kept, seen_hash(line.data, line.len))))
        writer_submit(c->opt.failures, line.data, line.len);
    buf_finish(&line);
}

/* ---- scope ---- */

/* An IPv4 address, or an IPv6 one in brackets as URLs write it. */
static int is_ip_literal(const char *host)
{
    struct in_addr a4;
    return host[0] == '[' || inet_pton(AF_INET, host, &a4) == 1;
}

const char *crawl_domain_key(const void *psl, const char *host)
{
    /* The Public Suffix List knows nothing of addresses: it would give 127.0.0.1 and
     * 10.0.0.1 the same "registrable domain", 0.1. An address is a scope of its own. A
     * bare public suffix has no registrable domain either: the host itself is the
     * widest scope then. */
    if (psl == NULL || is_ip_literal(host))
        return host;
    const char *domain = psl_registrable_domain(psl, host);
    return domain != NULL ? domain : host;
}

/* The key two hosts must share for a link between them to be in scope. Cached on the host
 * by the frontier, which owns it (the key is derived from the name alone). */
static const char *scope_key(crawl *c, const struct frontier_host *h)
{
    if (h->scope != NULL)
        return h->scope;
    const char *key = h->name;
    if (c->opt.scope == SCOPE_DOMAIN)
        key = crawl_domain_key(c->opt.psl, h->name);
    /* Without memory for the copy, the key (which points into the name) still answers;
     * it is worked out again next time. */
    if (frontier_host_set_scope(c->frontier, h, key) != 0)
        return key;
    return h->scope;
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
        if (filter_match(c->opt.exclude[i], url, len) == 1)
            return 0;
    if (c->opt.ninclude == 0)
        return 1;
    for (size_t i = 0; i < c->opt.ninclude; i++)
        if (filter_match(c->opt.include[i], url, len) == 1)
            return 1;
    return 0;
}

/* Whether queueing a URL of `len` bytes would take the frontier over its memory budget; if
 * so, counts it, and says so once for the run. The seam for the state store: once one
 * exists, the URL is spilled to it here instead of being dropped. */
static int over_budget(crawl *c, size_t len)
{
    if (frontier_bytes(c->frontier) + frontier_item_bytes(len) <= c->opt.queue_budget)
        return 0;
    if (c->stats.over_budget++ == 0)
        log_error("the queue of URLs to fetch reached its memory budget (%zu KiB): links "
                  "found from now on are not followed (the summary counts them)",
                  c->opt.queue_budget >> 10);
    return 1;
}

/* The policy for a link: in scope, through the filters, within the budget. Only what is
 * followed is marked seen: a URL out of one start host's scope may be in another's, and a
 * link turned away by the budget may still be queued when found again after the frontier
 * has shrunk. */
static int follow_policy(void *arg, const struct frontier_host *h,
                         const struct frontier_host *root, const char *url, size_t len)
{
    crawl *c = arg;
    if (!in_scope(c, h, root) || !passes_filters(c, url, len))
        return 0;
    return !over_budget(c, len);
}

int crawl_follow(crawl *c, const char *url, size_t len, unsigned depth,
                 const struct frontier_host *root, struct frontier_ref *found_on)
{
    if (c->opt.max_pages > 0 && c->stats.queued >= c->opt.max_pages)
        return 0;
    struct admit_url u = {
        .url = url,
        .len = len,
        .depth = depth,
        .root = root,
        .found_on = found_on,
        .policy = follow_policy,
        .policy_arg = c,
    };
    int rc = admit(&c->seen, c->frontier, &u);
    if (rc == 1)
        c->stats.queued++;
    /* A link without a host is no link to follow; only memory is worth an error. */
    return rc < 0 && rc != -ENOMEM ? 0 : rc;
}

/* ---- robots.txt ---- */

struct robots_fetch {
    task t;
    crawl *c;
    struct frontier_host *host;
    char *url;
    http_request req;
    int revalidating;          /* --state: asked with the stored copy's validators */
    struct state_robots_record stored;
};

/* RFC 9309 section 2.4: a cached robots.txt is not used for more than 24 hours. */
enum { ROBOTS_REUSE_S = 24 * 3600 };

/* With --state: ask with the validators of a stored copy fetched less than a day ago. */
static void robots_revalidate(crawl *c, struct robots_fetch *f)
{
    if (c->opt.state == NULL)
        return;
    int rc = state_robots_get(c->opt.state, f->host->origin, &f->stored);
    const struct state_robots *r = &f->stored.robots;
    if (rc == 1 && r->status >= 200 && r->status < 300 && r->fetched_at <= c->opt.now &&
        c->opt.now - r->fetched_at < ROBOTS_REUSE_S &&
        (r->etag != NULL || r->last_modified != NULL)) {
        f->req.if_none_match = r->etag;
        f->req.if_modified_since = r->last_modified;
        f->revalidating = 1;
    }
}

/* With --state: keeps a robots.txt that said something (rules, or none: a 4xx). */
static void robots_remember(crawl *c, const struct robots_fetch *f)
{
    const http_request *r = &f->req;
    if (c->opt.state == NULL ||
        !(r->outcome == HTTP_OK || (r->outcome == HTTP_STATUS && r->status >= 400 &&
                                    r->status < 500)))
        return;
    struct state_robots keep = {
        .origin = f->host->origin,
        .status = r->status,
        .etag = r->etag,
        .last_modified = r->last_modified,
        .body = r->outcome == HTTP_OK ? r->body.data : NULL,
        .body_len = r->outcome == HTTP_OK ? r->body.len : 0,
        .fetched_at = c->opt.now,
    };
    if (state_robots_put(c->opt.state, &keep) != 0)
        log_error("%s: out of memory for the state store", f->url);
}

/* RFC 9309: rules from a 2xx; a 4xx means no rules; a 5xx or no answer means stay out.
 * *failed says that the file could not be read. */
static robots *rules_from(const http_request *r, const char **verdict, int *failed)
{
    robots *rules = NULL;
    *failed = 0;
    if (r->outcome == HTTP_OK &&
        robots_parse(r->body.data ? r->body.data : "", r->body.len, "areq", &rules) == 0) {
        *verdict = r->truncated ? "rules of its first 500 KiB read" : "rules read";
        return rules;
    }
    if (r->outcome == HTTP_STATUS && r->status >= 400 && r->status < 500) {
        *verdict = "none, all allowed";
        robots_allow_all(&rules);
        return rules;
    }
    *verdict = "unavailable, all disallowed";
    *failed = 1;
    robots_disallow_all(&rules);
    return rules;
}

enum robots_state { ROBOTS_FETCH = 0 /* where task_init starts a task */, ROBOTS_FETCHED };

/* Every state change of a robots.txt fetch goes through here (see run_set_state). */
static void robots_set_state(struct robots_fetch *f, enum robots_state next)
{
#ifdef AREQ_TRACE_STATES
    log_plain("robots %s: %d -> %d", f->url, f->t.state, (int)next);
#endif
    f->t.state = (int)next;
}

static enum task_step robots_step(task *t)
{
    struct robots_fetch *f = (struct robots_fetch *)t;
    crawl *c = f->c;
    if (t->state == ROBOTS_FETCH) {
        robots_set_state(f, ROBOTS_FETCHED);
        f->req.accept = NULL; /* any type: robots.txt is text/plain, and not always labelled */
        /* RFC 9309 section 2.5: at least the first 500 KiB are parsed, whatever
         * --max-size says; one byte more tells robots_parse that the file goes on, so
         * that it drops a cut last line. */
        f->req.keep_first = ROBOTS_MAX_BYTES + 1;
        robots_revalidate(c, f);
        return http_fetch(c->opt.http, &f->req, t);
    }
    const char *verdict;
    int failed = 0;
    robots *rules = NULL;
    if (f->req.outcome == HTTP_NOT_MODIFIED && f->revalidating) {
        /* The stored copy stands, for what is left of its day. */
        const struct state_robots *r = &f->stored.robots;
        if (robots_parse(r->body, r->body_len, "areq", &rules) != 0)
            robots_disallow_all(&rules);
        verdict = "not modified: the stored rules";
    } else {
        rules = rules_from(&f->req, &verdict, &failed);
        robots_remember(c, f);
    }
    char why[128];
    const char *how = http_describe(&f->req, why, sizeof why);
    log_verbose("%s: %s: %s", f->url, how, verdict);
    /* Kept for the messages that name what robots.txt stopped; without memory for it
     * they say less. */
    if (failed && f->host->robots_failure == NULL)
        f->host->robots_failure = strdup(how);
    /* Without memory for rules, none is the cautious answer. */
    frontier_robots_known(c->frontier, f->host, rules, now_ms(c));
    return task_finish(t, 0);
}

/* A URL robots.txt keeps us from. A listed one was asked for by name: its loss is a
 * failure, named. One found by a link is counted in the summary; when robots.txt could
 * not be read, its origin and the reason are named once, since every later link to that
 * origin meets the same fate. */
static void report_disallowed(crawl *c, const struct frontier_item *it)
{
    struct frontier_host *h = it->host;
    if (it->depth == 0) {
        char why[300];
        if (h->robots_failure != NULL) {
            snprintf(why, sizeof why, "not fetched: %s/robots.txt: %s", h->origin,
                     h->robots_failure);
            h->robots_failure_told = 1;
        } else {
            snprintf(why, sizeof why, "disallowed by robots.txt");
        }
        c->stats.failed++;
        log_error("%s: %s", it->url, why);
        struct format_failure f = {
            .url = it->url,
            .kind = "robots",
            .error = why,
            .depth = it->depth,
            .found_on = it->found_on != NULL ? it->found_on->text : NULL,
        };
        record_failure(c, &f);
        return;
    }
    if (h->robots_failure != NULL && !h->robots_failure_told) {
        h->robots_failure_told = 1;
        log_error("%s/robots.txt: %s: links to %s are not followed", h->origin,
                  h->robots_failure, h->origin);
    }
}

static void robots_done(task *t)
{
    struct robots_fetch *f = (struct robots_fetch *)t;
    crawl *c = f->c;
    http_request_finish(&f->req);
    state_robots_record_finish(&f->stored);
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
    state_robots_record_init(&f->stored);
    http_request_init(&f->req, f->url);
    task_init(&f->t, robots_step, robots_done);
    task_spawn(c->t.sched, &f->t, &c->t);
    return 0;
}

/* ---- pages ---- */

/* Offers the links of the page `url` (at `depth`, its chain begun at `root`) to the
 * frontier. */
static void follow_links_of(crawl *c, const char *url, size_t url_len, unsigned depth,
                            const struct frontier_host *root, const struct buf *follow)
{
    const char *u = follow->data;
    const char *end = u + follow->len;
    if (u == end)
        return;
    /* One copy of this page's URL, shared by the links it queues, for --failures. */
    struct frontier_ref *from = frontier_ref_create(url, url_len);
    while (from != NULL && u < end) {
        size_t len = strlen(u);
        if (crawl_follow(c, u, len, depth + 1, root, from) < 0)
            break;
        u += len + 1;
    }
    if (u < end)
        log_error("%s: out of memory for the links to follow", url);
    frontier_ref_release(from);
}

static void follow_links(crawl *c, const struct frontier_item *it, const struct buf *follow)
{
    follow_links_of(c, it->url, it->len, it->depth, it->root, follow);
}

/* ---- the state store (--state, issue 14) ---- */

/* A page with --state: a task of its own that asks the store what it knew of the page (on
 * the store's reader thread, so that the loop never waits on SQLite), decides how to ask
 * for it, and is then the parent of the page task, which it outlives: the page's callback
 * reads the record, and the visit's on_done frees it. Without --state there is no visit,
 * and a page's tag is its item. */
enum visit_state {
    VISIT_LOOKUP,    /* the store is asked */
    VISIT_LOOKED_UP, /* its answer is in `look` */
    VISIT_SLOT,      /* waiting for a transfer slot */
    VISIT_PAGE,      /* the page, if any, was started: joined */
};

struct visit {
    task t;         /* first: the frame is the task's */
    crawl *c;
    struct frontier_item *it;
    int known;      /* the store has a row for it */
    int comparable; /* ... written with these options: its pairs are what a fetch yields */
    int reused;     /* --max-age: not requested; the stored pairs stand */
    int holds_slot; /* one of c->slots, given back by page_completed */
    struct state_lookup look; /* look.rec: its targets decoded only when needed (see
                                 page_completed) */
};

static void visit_set_state(struct visit *v, enum visit_state next);

static void visit_free(struct visit *v)
{
    if (v == NULL)
        return;
    state_lookup_finish(&v->look);
    free(v);
}

/* Writes a page's stored pairs as its fetch wrote them: the same lines in the same order,
 * one block. 0 or the writer's error; *pairs says how many. */
static int write_stored(crawl *c, const char *source, size_t len, const struct state_page *p,
                        unsigned depth, size_t *pairs)
{
    struct buf block;
    buf_init(&block);
    size_t n = 0;
    int rc = page_format_stored(c->opt.format, &block, source, len, p, depth, &n);
    if (rc == 0 && block.len > 0)
        rc = writer_submit_buf(c->opt.out, &block, n);
    buf_finish(&block);
    *pairs = rc == 0 ? n : 0;
    return rc;
}

/* Follows a page's stored targets as its scan would have offered them
 * (page_keep_to_follow). */
static void follow_stored(crawl *c, const char *url, size_t len, unsigned depth,
                          const struct frontier_host *root, const struct state_page *p)
{
    struct buf follow;
    buf_init(&follow);
    const char *end = p->targets + p->targets_len;
    int rc = 0;
    for (const char *t = p->targets; t < end && rc == 0;) {
        size_t tl = strlen(t);
        rc = page_keep_to_follow(&follow, t, tl);
        t += tl + 1;
    }
    if (rc != 0)
        log_error("%s: out of memory for the links to follow", url);
    else
        follow_links_of(c, url, len, depth, root, &follow);
    buf_finish(&follow);
}

/* A commit failed: the store keeps its last good commit, and the run stops (exit 3). */
static void store_failed(crawl *c, int rc)
{
    if (c->store_error == 0) {
        c->store_error = rc;
        log_fatal("%s", state_error(c->opt.state));
    }
    if (!task_is_done(&c->t))
        crawl_stop(c, -EIO);
}

static void committed(void *arg, int status)
{
    crawl *c = arg;
    if (status != 0)
        store_failed(c, status);
}

/* A commit every 10 ms at most (or sooner when much is queued), on the store's thread: it
 * records the pages whose lines are whole in the output, and that length. Small and
 * frequent, so that the commits overlap the crawl and what the end of the run waits for
 * on the loop is small: the last commit, and the close's checkpoint, which must first
 * sync whatever the WAL holds. On scenario A (2,000 pages in about 0.3 s) the last commit
 * took 8-15 ms at 250 ms, 3-22 at 100 and 1-7 at 50 (5 runs each). Since a 304 writes
 * only a visit row, an unchanged re-run's commits at 50 ms stayed under the checkpoint
 * threshold (WAL_CHECKPOINT_PAGES in state.c): the close synced the run's whole WAL, and
 * the time from the last answer to the exit was 20-25 ms (4 runs), 8-10 at 10 ms. Re-run
 * medians, 10 against 50 ms, three alternated series of 41-61 rounds: -7.1%, -6.5%, -8.5%;
 * first runs -4.0%, +1.7%, -1.0%. */
enum { COMMIT_EVERY_MS = 10 };
#define COMMIT_PENDING_MAX ((size_t)4 << 20)

void crawl_files_whole(const crawl *c, uint64_t whole[STATE_NFILES])
{
    whole[STATE_OUTPUT] = writer_offset_whole(c->opt.out);
    whole[STATE_CHANGES] = c->opt.changes != NULL ? writer_offset_whole(c->opt.changes) : 0;
    whole[STATE_FAILURES] = c->opt.failures != NULL ? writer_offset_whole(c->opt.failures) : 0;
}

static void maybe_commit(crawl *c)
{
    state *st = c->opt.state;
    if (st == NULL || c->store_error != 0 || state_commit_busy(st))
        return;
    uint64_t now = now_ms(c);
    if (now - c->commit_at_ms < COMMIT_EVERY_MS && state_pending_bytes(st) < COMMIT_PENDING_MAX)
        return;
    c->commit_at_ms = now;
    uint64_t whole[STATE_NFILES];
    crawl_files_whole(c, whole);
    int rc = state_commit(st, c->t.sched->loop, whole, c->opt.sync_fds, 0, committed, c);
    if (rc != 0 && rc != -EBUSY)
        store_failed(c, rc);
}

static int same_targets(const struct state_page *a, const char *targets, size_t len)
{
    return a->targets_len == len && (len == 0 || memcmp(a->targets, targets, len) == 0);
}

/* ---- --changes ---- */

static int put_change(struct buf *out, const char *what, const char *a, size_t alen,
                      const char *b, size_t blen)
{
    int rc = buf_append_str(out, what);
    if (rc == 0)
        rc = buf_putc(out, '\t');
    if (rc == 0)
        rc = buf_append(out, a, alen);
    if (rc == 0 && b != NULL) {
        rc = buf_putc(out, '\t');
        if (rc == 0)
            rc = buf_append(out, b, blen);
    }
    return rc != 0 ? rc : buf_putc(out, '\n');
}

/* One line per target of `list` that `other` lacks, as `what`. */
static int put_difference(struct buf *out, const char *what, const char *source, size_t len,
                          const char *list, size_t list_len, const char *other, size_t other_len)
{
    seen_set have;
    seen_init(&have);
    int rc = 0;
    for (const char *t = other, *end = other + other_len; t < end && rc >= 0; t += strlen(t) + 1)
        rc = seen_add(&have, seen_hash(t, strlen(t)));
    for (const char *t = list, *end = list + list_len; t < end && rc >= 0; t += strlen(t) + 1) {
        size_t tl = strlen(t);
        if (!seen_contains(&have, seen_hash(t, tl)))
            rc = put_change(out, what, source, len, t, tl);
    }
    seen_finish(&have);
    return rc < 0 ? rc : 0;
}

/* What changed on a page since it was last seen, for --changes (the man page defines each
 * word): `old` is the stored page or NULL, `now` the page as it will be stored. */
static void note_changes(crawl *c, const struct visit *v, const struct state_page *old,
                         const struct state_page *now, enum page_outcome outcome)
{
    if (c->opt.changes == NULL)
        return;
    struct buf out;
    buf_init(&out);
    const char *url = now->url;
    size_t len = now->url_len;
    int rc = 0;
    int was_ok = old != NULL && old->outcome == STATE_PAGE_OK;
    if (outcome == PAGE_OK) {
        if (old == NULL || old->outcome == STATE_PAGE_SKIPPED)
            rc = put_change(&out, "new", url, len, NULL, 0);
        else if (old->outcome == STATE_PAGE_FAILED)
            rc = put_change(&out, "recovered", url, len, NULL, 0);
        /* Pairs only against pairs found the same way: other options yield other pairs. */
        if (rc == 0 && old != NULL && old->outcome != STATE_PAGE_SKIPPED && v->comparable) {
            rc = put_difference(&out, "added", url, len, now->targets, now->targets_len,
                                old->targets, old->targets_len);
            if (rc == 0)
                rc = put_difference(&out, "removed", url, len, old->targets, old->targets_len,
                                    now->targets, now->targets_len);
        }
    } else if (outcome == PAGE_FAILED && was_ok) {
        int gone = now->status == 404 || now->status == 410;
        rc = put_change(&out, gone ? "gone" : "failing", url, len, NULL, 0);
        if (rc == 0 && gone && v->comparable)
            rc = put_difference(&out, "removed", url, len, old->targets, old->targets_len,
                                "", 0);
    }
    if (rc == 0 && out.len > 0)
        rc = writer_submit(c->opt.changes, out.data, out.len);
    if (rc == -ENOMEM)
        log_error("%s: out of memory for --changes", url);
    buf_finish(&out);
}

/* Records what became of a page, for the next commit that covers its lines. Its block,
 * if any, was handed to the writer just before (publish, then this callback, in one
 * step of the loop), so the writer's submitted offset is exactly where its lines end. */
static void remember(crawl *c, struct visit *v, const struct page_target *t,
                     const struct page_result *r)
{
    const struct state_page *old = v->known ? &v->look.rec.page : NULL;
    struct state_page p = {0};
    switch (r->outcome) {
    case PAGE_OK: {
        const char *targets = r->targets.data != NULL ? r->targets.data : "";
        p = (struct state_page){
            .outcome = STATE_PAGE_OK,
            .final_url = r->final_url,
            .status = r->status,
            .etag = r->etag,
            .last_modified = r->last_modified,
            .has_body_hash = r->has_body_hash,
            .targets = targets,
            .targets_len = r->targets.len,
            .ntargets = r->pairs,
            .nofollow = r->nofollow,
            .changed_at = c->opt.now,
        };
        memcpy(p.body_hash, r->body_hash, DIGEST_SIZE);
        int was_ok = old != NULL && old->outcome == STATE_PAGE_OK;
        int same_body = was_ok && old->has_body_hash && r->has_body_hash &&
                        memcmp(old->body_hash, r->body_hash, DIGEST_SIZE) == 0;
        if (was_ok && (same_body || same_targets(old, targets, r->targets.len)))
            p.changed_at = old->changed_at;
        if (!v->comparable)
            c->stats.new_pages++;
        else if (same_body)
            c->stats.same_body++;
        else
            c->stats.changed++;
        if (same_body && old->etag != NULL && r->etag != NULL && strcmp(old->etag, r->etag) != 0)
            c->stats.etag_churn++;
        break;
    }
    case PAGE_NOT_MODIFIED:
        if (old == NULL)
            return;
        p = *old;
        /* A 304 may bring fresher validators (RFC 9110 15.4.5); --max-age asked nothing. */
        if (r->etag != NULL)
            p.etag = r->etag;
        if (r->last_modified != NULL)
            p.last_modified = r->last_modified;
        p.same_content = 1; /* the stored row keeps its targets */
        break;
    case PAGE_SKIPPED:
    case PAGE_SAVED: /* a body saved, not scanned: no pairs, and done for a resumed run */
        p = (struct state_page){.outcome = STATE_PAGE_SKIPPED, .final_url = r->final_url,
                                .status = r->status, .changed_at = c->opt.now};
        break;
    case PAGE_FAILED:
        /* What was last seen of it stays, to compare with when it comes back. */
        if (old != NULL)
            p = *old;
        else
            p.changed_at = c->opt.now;
        p.outcome = STATE_PAGE_FAILED;
        p.status = r->failure.status;
        p.error = r->error;
        /* Gone (404, 410): its pairs are gone with it, and listed as removed; one that
         * fails otherwise keeps them, to compare with when it comes back. */
        if (p.status == 404 || p.status == 410) {
            p.targets = "";
            p.targets_len = p.ntargets = 0;
            p.has_body_hash = 0;
        }
        break;
    case PAGE_CANCELLED:
    case PAGE_UNWRITTEN:
        return; /* not done: a resumed run fetches it */
    }
    p.url = t->url;
    p.url_len = t->len;
    p.depth = t->depth;
    if (!v->reused)
        p.fetched_at = c->opt.now;
    /* A --changes or --failures file that failed (a full disk) takes no more lines, and
     * its offsets no longer move: the page is left undone, as one whose pairs the output
     * did not take, for a resumed run to do again. */
    if ((c->opt.changes != NULL && writer_error(c->opt.changes) != 0) ||
        (c->opt.failures != NULL && writer_error(c->opt.failures) != 0))
        return;
    /* Its --failures line, if any, was handed over before this (page_completed). */
    p.output_end = writer_offset_submitted(c->opt.out);
    note_changes(c, v, old, &p, r->outcome);
    if (c->opt.changes != NULL)
        p.changes_end = writer_offset_submitted(c->opt.changes);
    if (c->opt.failures != NULL)
        p.failures_end = writer_offset_submitted(c->opt.failures);
    if (state_page_put(c->opt.state, &p) != 0)
        log_error("%s: out of memory for the state store", t->url);
}

/* A 304, or a page --max-age did not ask for: its stored pairs go out as a fetch would
 * have written them, and its stored targets are followed. The page did both for a 304 it
 * had the stored pairs of (`replayed`: follow is in r); here, the rest. PAGE_OK, or
 * PAGE_UNWRITTEN. */
static enum page_outcome unchanged(crawl *c, struct visit *v, const struct page_target *t,
                                   const struct page_result *r, size_t *pairs)
{
    const struct state_page *old = &v->look.rec.page;
    if (!r->replayed) {
        if (write_stored(c, t->url, t->len, old, t->depth, pairs) != 0)
            return PAGE_UNWRITTEN;
        if (t->follow && !old->nofollow)
            follow_stored(c, t->url, t->len, t->depth, v->it->root, old);
    }
    if (v->reused)
        c->stats.reused++;
    else
        c->stats.not_modified++;
    return PAGE_OK;
}

/* The stored record's targets, decoded (state_page_get leaves them encoded). A list that
 * cannot be read leaves the page as if the store had not known it. */
static void decode_stored(struct visit *v)
{
    int rc = state_record_targets(&v->look.rec);
    if (rc == 0)
        return;
    log_error("%s: %s reading its stored targets; taken as a new page", v->it->url,
              rc == -ENOMEM ? "out of memory" : "a damaged list");
    v->known = v->comparable = 0;
}

/* A page's completion: all of its bookkeeping happens here. */
static void page_completed(void *arg, const struct page_target *target,
                           const struct page_result *r)
{
    crawl *c = arg;
    struct visit *v = c->opt.state != NULL ? target->tag : NULL;
    struct frontier_item *it = v != NULL ? v->it : target->tag;
    c->stats.retries += r->retries;
    c->stats.saved += r->saved != 0;
    enum page_outcome outcome = r->outcome;
    size_t pairs = r->pairs;
    /* What compares with the stored targets or writes them here needs them decoded; a 304
     * the page wrote itself needs nothing more of them. */
    if (v != NULL && v->known && !r->replayed)
        decode_stored(v);
    if (outcome == PAGE_NOT_MODIFIED)
        outcome = v != NULL && v->known ? unchanged(c, v, target, r, &pairs) : PAGE_OK;
    switch (outcome) {
    case PAGE_OK:
        c->stats.ok++;
        c->stats.pairs += pairs;
        c->stats.links_bad += r->bad;
        if (!r->nofollow)
            follow_links(c, it, &r->follow);
        break;
    case PAGE_SKIPPED:
        c->stats.skipped++;
        break;
    case PAGE_SAVED:
        c->stats.saved_only++;
        break;
    case PAGE_FAILED:
        c->stats.failed++;
        c->stats.unsolicited_304 += r->unsolicited_304 != 0;
        record_failure(c, &r->failure);
        break;
    case PAGE_NOT_MODIFIED: /* made PAGE_OK above */
    case PAGE_CANCELLED:
    case PAGE_UNWRITTEN: /* the writer's owner reports its error, once */
        break;
    }
    if (v != NULL) {
        if (outcome != PAGE_UNWRITTEN)
            remember(c, v, target, r);
        maybe_commit(c); /* the visit, the page's parent, frees itself when it ends */
    }
    frontier_done(c->frontier, it, now_ms(c));
    c->stats.finished++;
    if (v == NULL || v->holds_slot)
        task_sem_release(&c->slots);
    task_event_signal(&c->changed);
}

/* What the store's answer says of the page. A read that failed costs this page its
 * validators, not the run. */
static void take_answer(crawl *c, struct visit *v)
{
    int rc = v->look.rc;
    if (rc < 0)
        log_error("%s: %s", v->it->url, v->look.why[0] != '\0' ? v->look.why : strerror(-rc));
    v->known = rc == 1;
    v->comparable = v->known &&
                    memcmp(v->look.rec.page.options_hash, c->opt.options_hash, DIGEST_SIZE) == 0;
}

/* Without --save, yes; with it, whether the page's body is saved where --save puts it. */
static int saved_in_place(crawl *c, const struct frontier_item *it)
{
    const struct page_save *sv = c->opt.save;
    if (sv == NULL)
        return 1;
    struct buf rel;
    buf_init(&rel);
    int in_place = savepath_map(it->url, it->len, sv->path_flags, &rel) == 0 &&
                   save_exists(sv->saver, rel.data) == 1;
    buf_finish(&rel);
    return in_place;
}

static struct page_target target_of(crawl *c, struct frontier_item *it, void *tag)
{
    return (struct page_target){
        .url = it->url,
        .len = it->len,
        .depth = it->depth,
        .found_on = it->found_on != NULL ? it->found_on->text : NULL,
        .follow = it->depth < c->opt.depth,
        .tag = tag,
    };
}

/* The page's request begins: --delay counts from here (frontier_started), not from when
 * the dispatcher took the page, which may then wait for a slot and, with --state, for the
 * store. The dispatcher may be waiting on that origin: it looks again. */
static void request_started(crawl *c, struct frontier_item *it)
{
    frontier_started(c->frontier, it, now_ms(c));
    task_event_signal(&c->changed);
}

/* Completes a page that was not fetched: reused under --max-age (PAGE_NOT_MODIFIED), or
 * never started (PAGE_CANCELLED). */
static void complete_unfetched(crawl *c, const struct page_target *target,
                               enum page_outcome outcome)
{
    struct page_result r = {.outcome = outcome};
    buf_init(&r.follow);
    buf_init(&r.targets);
    page_completed(c, target, &r);
}

/* The store has answered: reuse the stored pairs, or start the page, asking conditionally
 * when what is stored can stand for its answer. */
static void start_visit(crawl *c, struct visit *v)
{
    struct frontier_item *it = v->it;
    struct page_target target = target_of(c, it, v);
    if (task_cancelled(&v->t) || !v->holds_slot) {
        complete_unfetched(c, &target, PAGE_CANCELLED);
        return;
    }
    take_answer(c, v);
    if (v->comparable && v->look.rec.page.outcome == STATE_PAGE_OK) {
        const struct state_page *old = &v->look.rec.page;
        int fresh = c->opt.max_age_s > 0 && old->fetched_at <= c->opt.now &&
                    c->opt.now - old->fetched_at < c->opt.max_age_s;
        /* Its pairs are written from here: decoded now, so that a damaged list is fetched
         * whole instead (decode_stored says so) rather than standing for no pairs. */
        if (fresh)
            decode_stored(v);
        if (fresh && v->known) {
            /* Fresh enough: not asked for at all; completed here as a 304 would be. */
            v->reused = 1;
            complete_unfetched(c, &target, PAGE_NOT_MODIFIED);
            return;
        }
        /* With --save, a 304 leaves the saved file as it is: ask conditionally only when
         * the body is in place, else fetch it whole (save.h, save_exists). */
        if (v->known && saved_in_place(c, it)) {
            target.if_none_match = old->etag;
            target.if_modified_since = old->last_modified;
            target.stored = &v->look.rec;
        }
    }
    if (page_spawn(v->t.sched, &v->t, &c->pages, &target, page_completed, c) != 0) {
        log_error("%s: out of memory", it->url);
        c->stats.failed++;
        complete_unfetched(c, &target, PAGE_CANCELLED);
        return;
    }
    request_started(c, it);
}

static void looked_up(struct state_lookup *l)
{
    struct visit *v = l->arg;
    task_wake(&v->t, 0);
}

static enum task_step visit_step(task *t)
{
    struct visit *v = (struct visit *)t;
    crawl *c = v->c;
    switch ((enum visit_state)t->state) {
    case VISIT_LOOKUP:
        visit_set_state(v, VISIT_LOOKED_UP);
        /* A store that held no page knows none of the run's (each URL is visited once):
         * the first run of a new store asks nothing (v->look.rc stays 0), and wakes no
         * thread for each page (3,600 more context switches and 47 ms more CPU on
         * scenario A, /usr/bin/time). */
        if (state_knew_pages(c->opt.state)) {
            /* Shielded: the answer comes whatever happens, and soon; a cancellation is
             * seen when it has. */
            if (state_lookup_start(c->opt.state, t->sched->loop, &v->look) == 0)
                return task_suspend_shielded(t);
            /* No reader thread (the system would not start one): asked here. */
            v->look.rc = state_page_get(c->opt.state, v->it->url, v->it->len, &v->look.rec);
            if (v->look.rc < 0)
                snprintf(v->look.why, sizeof v->look.why, "%s", state_error(c->opt.state));
        }
        /* fall through */
    case VISIT_LOOKED_UP:
        /* Only now a transfer slot: a page that held one while the store answered kept a
         * connection idle for that long, and the run waited on its lookups (an unchanged
         * re-run of scenario A: the loop slept 23-45 ms of it in epoll_wait, against
         * 0.3 ms for the same 2,000 requests answered 404 without a store). */
        visit_set_state(v, VISIT_SLOT);
        if (task_sem_acquire(&c->slots, t) == TASK_SUSPENDED)
            return TASK_PENDING;
        /* fall through */
    case VISIT_SLOT:
        task_sem_release(&c->lookahead);
        c->stats.before_slot--;
        v->holds_slot = task_wait_rc(t) == 0; /* else cancelled: start_visit says so */
        start_visit(c, v);
        visit_set_state(v, VISIT_PAGE);
        if (task_join(t) == TASK_SUSPENDED)
            return TASK_PENDING;
        /* fall through */
    case VISIT_PAGE:
        return task_finish(t, 0);
    }
    return task_finish(t, -EINVAL);
}

static void visit_done(task *t)
{
    visit_free((struct visit *)t);
}

/* Takes the item and one permit of the caller's (page_permits). 0, or -ENOMEM with both
 * still the caller's. With --state the page starts once the store has answered and a slot
 * is free (visit_step). */
static int spawn_page(crawl *c, struct frontier_item *it)
{
    if (c->opt.state != NULL) {
        struct visit *v = calloc(1, sizeof *v);
        if (v == NULL)
            return -ENOMEM;
        task_init(&v->t, visit_step, visit_done);
        v->c = c;
        v->it = it;
        state_lookup_init(&v->look);
        v->look.url = it->url;
        v->look.len = it->len;
        v->look.done = looked_up;
        v->look.arg = v;
        task_spawn(c->t.sched, &v->t, &c->t);
        c->stats.started++;
        c->stats.before_slot++;
        return 0;
    }
    struct page_target target = target_of(c, it, it);
    int rc = page_spawn(c->t.sched, &c->t, &c->pages, &target, page_completed, c);
    if (rc == 0) {
        c->stats.started++;
        request_started(c, it);
    }
    return rc;
}

/* ---- resuming (--state) ---- */

/* The first pass over the pages the unfinished run committed: they are done. Their lines
 * are in the output already (kept up to the length that run committed), unless the
 * output is a stream, where they are written again. */
static int resume_page(void *arg, const struct state_page *p)
{
    crawl *c = arg;
    if (seen_add(&c->seen, seen_hash(p->url, p->url_len)) < 0)
        return -ENOMEM;
    c->stats.queued++;
    c->stats.started++;
    c->stats.finished++;
    c->stats.resumed++;
    switch (p->outcome) {
    case STATE_PAGE_OK:
        c->stats.ok++;
        if (p->targets == NULL) {
            log_error("%s: its stored targets are damaged: its links are not followed "
                      "again%s", p->url, c->opt.replay_writes ? ", nor its pairs written" : "");
            break;
        }
        if (c->opt.replay_writes) {
            size_t pairs;
            if (write_stored(c, p->url, p->url_len, p, p->depth, &pairs) == 0)
                c->stats.pairs += pairs;
        }
        break;
    case STATE_PAGE_SKIPPED:
        c->stats.skipped++;
        break;
    case STATE_PAGE_FAILED:
        c->stats.failed++;
        break;
    }
    return 0;
}

/* The second pass, once every done page is seen: their stored links are offered again,
 * so that the crawl goes on where it stopped. A page's own host stands for the host its
 * chain began at: with --scope host or domain, every page of a chain is in the root's
 * scope, so the two answer alike. */
static int resume_links(void *arg, const struct state_page *p)
{
    crawl *c = arg;
    if (p->outcome != STATE_PAGE_OK || p->nofollow || p->depth >= c->opt.depth ||
        p->targets == NULL)
        return 0;
    struct frontier_host *h;
    if (frontier_host_of(c->frontier, p->url, p->url_len, &h) != 0)
        return 0;
    follow_stored(c, p->url, p->url_len, p->depth, h, p);
    return 0;
}

static void resume(crawl *c)
{
    if (c->opt.state == NULL || c->opt.resume_run <= 0)
        return;
    int rc = state_each_page(c->opt.state, c->opt.resume_run, resume_page, c);
    if (rc != 0) {
        c->store_error = rc;
        log_fatal("%s", rc == -ENOMEM ? "out of memory" : state_error(c->opt.state));
    }
}

/* The second pass waits until the lists are read: a listed URL is at depth 0, and a done
 * page's link to it, offered first, would take it at a deeper level (whose links a
 * clean run follows and this one would not). The links are held back until the lists end
 * anyway. Pages this run committed meanwhile come round too: their links are seen. */
static void resume_follow(crawl *c)
{
    if (c->opt.state == NULL || c->opt.resume_run <= 0 || c->store_error != 0)
        return;
    int rc = state_each_page(c->opt.state, c->opt.resume_run, resume_links, c);
    if (rc != 0) {
        c->store_error = rc;
        log_fatal("%s", rc == -ENOMEM ? "out of memory" : state_error(c->opt.state));
        crawl_stop(c, -EIO);
    }
}

/* ---- the lists ---- */

/* Checks one listed URL (a line of `name`, or an argument) and queues it. A bad one is
 * reported as NAME:LINE. */
static void admit_listed(crawl *c, const char *name, unsigned long lineno, const char *text,
                         size_t len, const char *error)
{
    const char *why = error;
    int rc = 0;
    if (why == NULL) {
        buf_clear(&c->pending_url);
        if (url_normalize_input(text, len, &c->pending_url, &why) != 0) {
            if (why == NULL)
                why = "not a valid URL";
        } else {
            /* Where it was listed, for --failures only: a list of millions of URLs should
             * not pay for it otherwise. */
            char at[512];
            if (c->opt.failures != NULL) {
                int n = snprintf(at, sizeof at, "%s:%lu", name, lineno);
                if (n <= 0 || (size_t)n >= sizeof at)
                    at[0] = '\0';
            }
            struct admit_url u = {
                .url = c->pending_url.data,
                .len = c->pending_url.len,
                .listed_at = c->opt.failures != NULL ? at : NULL,
            };
            rc = admit(&c->seen, c->frontier, &u);
            if (rc >= 0) {
                if (rc == 1)
                    c->stats.queued++;
                return; /* queued, or listed before: fetched once */
            }
            why = rc == -ENOMEM ? "out of memory" : "URL has no host";
        }
    }
    log_plain("%s:%lu: %s", name, lineno, why);
    c->stats.failed++;
    c->stats.bad_lines++;
    if (c->opt.failures != NULL) {
        char where[512];
        snprintf(where, sizeof where, "%s:%lu", name, lineno);
        buf_clear(&c->pending_url);
        if (buf_append(&c->pending_url, text != NULL ? text : "", text != NULL ? len : 0) == 0) {
            struct format_failure f = {.url = c->pending_url.data ? c->pending_url.data : "",
                                       .kind = "input", .error = why, .found_on = where};
            record_failure(c, &f);
        }
    }
}

/* Checks one input line and queues it. */
static void take_line(crawl *c)
{
    const struct input_line *l = &c->line;
    admit_listed(c, reader_name(c->in), l->lineno, l->text, l->error != NULL ? 0 : l->len,
                 l->error);
}

static void close_input(crawl *c)
{
    reader_close(c->in);
    c->in = NULL;
}

/* ---- the three tasks ----
 *
 * The run task (c->t) starts two children and then waits for every child to end:
 *   - the feeder reads the arguments and the lists into the frontier, keeping read_ahead()
 *     listed URLs waiting there, so that a list of any length is streamed;
 *   - the dispatcher takes from the frontier what may start now, admits each through the
 *     --concurrency semaphore and spawns its robots.txt or page task, as a child of the run
 *     task so that the run's join waits for those too; it ends once the lists are read and
 *     the frontier is empty, or when the run is stopped.
 * Then the run closes the output and the --failures file. A cancellation of the run spreads
 * to all of its children (task.h), so each of them stops on its own.
 *
 * Each task's state changes in one place, set_state(): a build with -DAREQ_TRACE_STATES
 * prints every change there, as curl's mstate() does. */

/* URLs dropped by robots.txt in one turn of the loop at most. */
#define DISALLOWED_PER_TURN 64
/* Listed URLs the feeder admits in one turn of the loop at most, so that the dispatcher
 * starts the first transfers while a long list is still being read. */
#define LINES_PER_TURN 256

enum feed_state {
    FEED_NEXT, /* where task_init starts: room for more? then the next argument or list */
    FEED_LINE, /* a line (or the end of a list) is in */
};

enum dispatch_state {
    DISPATCH_NEXT,         /* where task_init starts: decide what to start next */
    DISPATCH_PAGE_PERMIT,  /* a permit for c->admitting came, or the wait was cancelled */
    DISPATCH_ROBOTS_PERMIT, /* a permit for c->robots_host came, or the wait was cancelled */
};

enum run_state {
    RUN_START,  /* where task_init starts: spawn the feeder and the dispatcher */
    RUN_JOINED, /* the children may all have ended */
    RUN_OUTPUT_CLOSED, /* the output is closed; now the --failures file */
    RUN_FAILURES_CLOSED, /* and the --changes file */
    RUN_CLOSED,
};

#ifdef AREQ_TRACE_STATES
static const char *state_name(const char *const *names, size_t n, int state)
{
    return state >= 0 && (size_t)state < n ? names[state] : "?";
}
#endif

/* The one place where a task of the run changes state. */
static void set_state(task *t, const char *role, const char *const *names, size_t n, int next)
{
#ifdef AREQ_TRACE_STATES
    log_plain("%s: %s -> %s", role, state_name(names, n, t->state), state_name(names, n, next));
#else
    (void)role;
    (void)names;
    (void)n;
#endif
    t->state = next;
}

#define NAMES(...) (const char *const[]){__VA_ARGS__}, \
    sizeof (const char *const[]){__VA_ARGS__} / sizeof(const char *)

static void feed_set_state(crawl *c, enum feed_state next)
{
    set_state(&c->feeder, "feeder", NAMES("NEXT", "LINE"), (int)next);
}

static void dispatch_set_state(crawl *c, enum dispatch_state next)
{
    set_state(&c->dispatcher, "dispatcher", NAMES("NEXT", "PAGE_PERMIT", "ROBOTS_PERMIT"),
              (int)next);
}

static void visit_set_state(struct visit *v, enum visit_state next)
{
    set_state(&v->t, "visit", NAMES("LOOKUP", "LOOKED_UP", "SLOT", "PAGE"), (int)next);
}

static void run_set_state(crawl *c, enum run_state next)
{
    set_state(&c->t, "run", NAMES("START", "JOINED", "OUTPUT_CLOSED", "FAILURES_CLOSED", "CLOSED"), (int)next);
}

static crawl *crawl_of_feeder(task *t)
{
    return (crawl *)((char *)t - offsetof(crawl, feeder));
}

static crawl *crawl_of_dispatcher(task *t)
{
    return (crawl *)((char *)t - offsetof(crawl, dispatcher));
}

/* ---- the feeder: lists into the frontier ---- */

/* Whether the frontier has room for more listed URLs. Links held back for a deeper level
 * do not count: they wait for the lists to end, so counting them could stop the reading
 * that would let them go (a list of 1,500 pages with two links each under -d 1 did stall
 * once 1,024 links were held). Their memory is bounded by the queue budget instead. */
static int frontier_has_room(const crawl *c)
{
    struct frontier_stats fs;
    frontier_get_stats(c->frontier, &fs);
    return fs.queued - fs.held < read_ahead(c);
}

/* Every list has been read: the frontier learns that no more depth-0 URLs will come. */
static void lists_done(crawl *c)
{
    resume_follow(c);
    c->lists_read = 1;
    frontier_set_input_open(c->frontier, 0);
    task_event_signal(&c->changed);
}

/* Opens the next list. 0 when one is open, 1 when none is left; a list that cannot be read
 * is reported and passed over. */
static int open_next_list(crawl *c)
{
    while (c->next_input < c->opt.ninputs) {
        size_t i = c->next_input++;
        const char *path = c->opt.inputs[i];
        int fd = c->opt.input_fds[i];
        c->opt.input_fds[i] = -1; /* the reader's now */
        int rc = reader_open(c->t.sched->loop, fd, strcmp(path, "-") == 0 ? "<stdin>" : path,
                             &c->in);
        if (rc == 0)
            return 0;
        log_fatal("cannot read %s: %s", path, uv_strerror(rc));
        c->input_error = rc;
    }
    return 1;
}

static enum task_step feed_step(task *t)
{
    crawl *c = crawl_of_feeder(t);
    for (;;) {
        if (task_cancelled(t)) {
            if (c->in != NULL)
                close_input(c);
            return task_finish(t, 0);
        }
        switch ((enum feed_state)t->state) {
        case FEED_NEXT:
            if (!frontier_has_room(c)) {
                /* The dispatcher signals `room` as it takes URLs out. */
                if (task_event_wait(&c->room, t, UINT64_MAX) == TASK_SUSPENDED)
                    return TASK_PENDING;
                continue;
            }
            if (c->lines_this_turn >= LINES_PER_TURN) {
                c->lines_this_turn = 0;
                return task_yield(t);
            }
            if (c->next_url < c->opt.nurls) {
                const char *u = c->opt.urls[c->next_url++];
                admit_listed(c, "argument", c->next_url, u, strlen(u), NULL);
                c->lines_this_turn++;
                task_event_signal(&c->changed);
                continue;
            }
            if (c->in == NULL && open_next_list(c) != 0) {
                lists_done(c);
                return task_finish(t, 0);
            }
            feed_set_state(c, FEED_LINE);
            if (reader_next(c->in, t, &c->line) == TASK_SUSPENDED)
                return TASK_PENDING;
            continue;
        case FEED_LINE: {
            feed_set_state(c, FEED_NEXT);
            int rc = task_wait_rc(t);
            if (rc <= 0) {
                if (rc < 0) {
                    log_fatal("cannot read %s: %s", reader_name(c->in), uv_strerror(rc));
                    c->input_error = rc;
                }
                close_input(c);
                continue;
            }
            take_line(c);
            c->lines_this_turn++;
            task_event_signal(&c->changed);
            continue;
        }
        }
        return task_finish(t, -EINVAL);
    }
}

/* ---- the dispatcher: from the frontier to page and robots tasks ---- */

/* Gives up what the dispatcher holds when it stops early. */
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

/* What one look at the frontier decided. */
enum dispatch_next {
    DISPATCH_GO_ROUND,  /* look again at once */
    DISPATCH_SUSPENDED, /* return TASK_PENDING: a wait, a yield */
    DISPATCH_END,       /* the lists are read and the frontier is empty */
};

static enum dispatch_next from_wait(enum task_wait w)
{
    return w == TASK_SUSPENDED ? DISPATCH_SUSPENDED : DISPATCH_GO_ROUND;
}

/* A URL left the frontier without being fetched, or was handed out: the feeder may read
 * on. */
static void took_from_frontier(crawl *c)
{
    task_event_signal(&c->room);
}

/* What the dispatcher holds for a page it starts: a transfer slot, or with --state a place
 * among the pages asking the store, each of which takes a slot once answered (visit_step):
 * so the answers for the next pages are in before slots come free. */
static task_sem *page_permits(crawl *c)
{
    return c->opt.state != NULL ? &c->lookahead : &c->slots;
}

/* Decides what to start next: a robots.txt, a page, or nothing now. */
static enum dispatch_next look(crawl *c)
{
    task *t = &c->dispatcher;
    /* A reader slower than the crawl (a stalled `-o -`) must not make the writer hold the
     * whole output: start nothing new until it has taken some. */
    if (writer_backlog(c->opt.out) >= WRITER_BACKLOG_MAX)
        return from_wait(writer_wait_room(c->opt.out, t));
    struct frontier_host *h = frontier_robots_wanted(c->frontier);
    if (h != NULL) {
        c->robots_host = h;
        dispatch_set_state(c, DISPATCH_ROBOTS_PERMIT);
        return from_wait(task_sem_acquire(&c->slots, t));
    }
    struct frontier_item *it = NULL;
    uint64_t wake_at = UINT64_MAX;
    switch (frontier_next(c->frontier, now_ms(c), &it, &wake_at)) {
    case FRONTIER_DISALLOWED:
        report_disallowed(c, it);
        frontier_drop(c->frontier, it);
        took_from_frontier(c);
        /* Every check costs a match against the rules: let the loop breathe between
         * batches of them. */
        if (++c->disallowed_seen % DISALLOWED_PER_TURN == 0) {
            task_yield(t);
            return DISPATCH_SUSPENDED;
        }
        return DISPATCH_GO_ROUND;
    case FRONTIER_ITEM:
        took_from_frontier(c);
        if (c->opt.max_pages > 0 && c->stats.started >= c->opt.max_pages) {
            frontier_done(c->frontier, it, now_ms(c));
            c->stats.unfetched++;
            return DISPATCH_GO_ROUND;
        }
        c->admitting = it;
        dispatch_set_state(c, DISPATCH_PAGE_PERMIT);
        return from_wait(task_sem_acquire(page_permits(c), t));
    case FRONTIER_EMPTY:
        if (c->lists_read)
            return DISPATCH_END;
        break;
    case FRONTIER_WAIT:
        break;
    }
    /* Nothing to start now: wait for a page, a robots.txt or the feeder to change that,
     * or for the politeness delay that holds the next URL back. */
    uint64_t now = now_ms(c);
    if (wake_at != UINT64_MAX && wake_at <= now) {
        task_yield(t);
        return DISPATCH_SUSPENDED;
    }
    return from_wait(task_event_wait(&c->changed, t,
                                     wake_at == UINT64_MAX ? UINT64_MAX : wake_at - now));
}

/* A permit came, or the wait for it was cancelled: start what it was for. */
static enum dispatch_next admitted(crawl *c)
{
    task *t = &c->dispatcher;
    int robots_fetch = t->state == DISPATCH_ROBOTS_PERMIT;
    task_sem *permits = robots_fetch ? &c->slots : page_permits(c);
    dispatch_set_state(c, DISPATCH_NEXT);
    if (task_wait_rc(t) != 0)
        return DISPATCH_GO_ROUND; /* cancelled while waiting: no permit came */
    if (task_cancelled(t)) {
        task_sem_release(permits);
        return DISPATCH_GO_ROUND;
    }
    int rc = robots_fetch ? spawn_robots(c, c->robots_host) : spawn_page(c, c->admitting);
    if (rc != 0) {
        task_sem_release(permits);
        log_error("out of memory");
        c->stats.failed++;
        drop_pending(c);
        return DISPATCH_GO_ROUND;
    }
    c->admitting = NULL;
    c->robots_host = NULL;
    return DISPATCH_GO_ROUND;
}

static enum task_step dispatch_step(task *t)
{
    crawl *c = crawl_of_dispatcher(t);
    for (;;) {
        enum dispatch_next next;
        switch ((enum dispatch_state)t->state) {
        case DISPATCH_NEXT:
            /* Only here, with no permit waited for, may a cancellation end the task at
             * once: a permit wait's answer says whether a permit is held. */
            if (task_cancelled(t)) {
                drop_pending(c);
                return task_finish(t, 0);
            }
            next = look(c);
            break;
        case DISPATCH_PAGE_PERMIT:
        case DISPATCH_ROBOTS_PERMIT:
            next = admitted(c);
            break;
        default:
            return task_finish(t, -EINVAL);
        }
        if (next == DISPATCH_SUSPENDED)
            return TASK_PENDING;
        if (next == DISPATCH_END)
            return task_finish(t, 0);
    }
}

/* ---- the run ---- */

static enum task_step run_step(task *t)
{
    crawl *c = (crawl *)t;
    for (;;) {
        switch ((enum run_state)t->state) {
        case RUN_START:
            task_spawn(t->sched, &c->feeder, t);
            task_spawn(t->sched, &c->dispatcher, t);
            run_set_state(c, RUN_JOINED);
            if (task_join(t) == TASK_SUSPENDED)
                return TASK_PENDING;
            continue;
        case RUN_JOINED:
            /* A cancellation wakes a join early; the children stop promptly. */
            if (t->live_children > 0) {
                if (task_join(t) == TASK_SUSPENDED)
                    return TASK_PENDING;
                continue;
            }
            {
                struct frontier_stats fs;
                frontier_get_stats(c->frontier, &fs);
                c->stats.disallowed = fs.disallowed;
            }
            run_set_state(c, RUN_OUTPUT_CLOSED);
            return writer_close(c->opt.out, t);
        case RUN_OUTPUT_CLOSED:
            run_set_state(c, RUN_FAILURES_CLOSED);
            if (c->opt.failures != NULL)
                return writer_close(c->opt.failures, t);
            continue;
        case RUN_FAILURES_CLOSED:
            run_set_state(c, RUN_CLOSED);
            if (c->opt.changes != NULL)
                return writer_close(c->opt.changes, t);
            continue;
        case RUN_CLOSED:
            return task_finish(t, task_cancelled(t));
        }
        return task_finish(t, -EINVAL);
    }
}

int crawl_init(crawl *c, const struct crawl_options *o)
{
    *c = (crawl){.opt = *o};
    atomic_init(&c->output_lost, 0);
    if (c->opt.queue_budget == 0)
        c->opt.queue_budget = CRAWL_QUEUE_BUDGET_DEFAULT;
    task_init(&c->t, run_step, NULL);
    task_init(&c->feeder, feed_step, NULL);
    task_init(&c->dispatcher, dispatch_step, NULL);
    task_sem_init(&c->slots, o->concurrency);
    task_sem_init(&c->lookahead, o->concurrency);
    seen_init(&c->seen);
    buf_init(&c->pending_url);
    c->rng = uv_hrtime() | 1; /* never 0: xorshift would stay there */
    c->pages = (struct page_config){
        .http = o->http,
        .out = o->out,
        .extractor = o->extractor,
        .url_flags = o->url_flags,
        .format = o->format,
        .retries = o->retries,
        .rng = &c->rng,
        .output_lost = &c->output_lost,
        .hash_bodies = o->state != NULL,
        .keep_targets = o->state != NULL,
        .save = o->save,
    };
    struct frontier_limits limits = {
        .per_host = o->per_host,
        .delay_ms = o->delay_ms,
        .robots = o->robots && o->depth > 0,
    };
    if (frontier_create(&limits, &c->frontier) != 0) {
        crawl_finish(c);
        return -ENOMEM;
    }
    /* Without the list every host would be a domain of its own: host scope by another
     * name, which is not what was asked for. */
    if (o->scope == SCOPE_DOMAIN && o->psl == NULL) {
        crawl_finish(c);
        return -EINVAL;
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
    seen_finish(&c->seen);
    buf_finish(&c->pending_url);
}

void crawl_start(crawl *c, task_sched *s)
{
    c->commit_at_ms = uv_now(s->loop);
    resume(c);
    task_spawn(s, &c->t, NULL);
    if (c->store_error != 0)
        crawl_stop(c, -EIO);
}

void crawl_stop(crawl *c, int reason)
{
    task_cancel(&c->t, reason);
}

void crawl_output_lost(crawl *c, int reason)
{
    atomic_store(&c->output_lost, 1);
    crawl_stop(c, reason);
}
