#include "frontier.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "seen.h"

struct item_list {
    struct frontier_item *head, *tail;
    size_t n;
};

/* Every item is allocated behind one of these, out of the caller's sight: while it is
 * handed out it links the item into the frontier's list of items out, so that
 * frontier_destroy() can free those never given back. */
struct out_link {
    struct out_link *prev, *next;
};

_Static_assert(sizeof(struct out_link) % _Alignof(struct frontier_item) == 0,
               "an item right behind its link must be aligned");

static struct out_link *link_of(struct frontier_item *it)
{
    return (struct out_link *)it - 1;
}

static struct frontier_item *item_of(struct out_link *l)
{
    return (struct frontier_item *)(l + 1);
}

static void item_free(struct frontier_item *it)
{
    frontier_ref_release(it->found_on);
    free(link_of(it));
}

struct frontier_ref *frontier_ref_create(const char *text, size_t len)
{
    struct frontier_ref *r = malloc(sizeof *r + len + 1);
    if (r == NULL)
        return NULL;
    r->refs = 1;
    memcpy(r->text, text, len);
    r->text[len] = '\0';
    return r;
}

void frontier_ref_release(struct frontier_ref *r)
{
    if (r != NULL && --r->refs == 0)
        free(r);
}

/* What one item costs the heap: its block, plus malloc's header and rounding (glibc: 8
 * bytes of header, 16-byte steps). An estimate that errs high, for the memory budget. */
static size_t item_bytes(size_t len)
{
    size_t n = sizeof(struct out_link) + sizeof(struct frontier_item) + len + 1 + 8;
    return (n + 15) & ~(size_t)15;
}

struct frontier {
    struct frontier_limits limits;

    /* Origins by name: open addressing on the origin string's hash. */
    struct frontier_host **hosts;
    size_t hosts_cap, nhosts;

    /* Origins with a URL that may start now, in turn order. */
    struct frontier_host *ready_head, *ready_tail;
    /* Origins waiting for their next start time: a min-heap on next_start. */
    struct frontier_host **delayed;
    size_t ndelayed, delayed_cap;
    /* Origins whose robots.txt is wanted, in order of first sight. */
    struct frontier_host *wanted_head, *wanted_tail;

    unsigned level;          /* the depth being released */
    size_t level_queued;     /* at `level`, in the origins' queues */
    size_t level_in_flight;  /* at `level`, handed out */
    struct item_list *held;  /* held[d]: depth d > level, not yet released */
    size_t nheld;
    size_t held_total;
    int input_open;
    size_t disallowed;
    size_t bytes;            /* item_bytes() of every item queued, held or handed out */
    struct out_link out;     /* items handed out, not yet given back (circular) */
};

/* ---- the delayed heap ---- */

static void heap_set(frontier *f, size_t i, struct frontier_host *h)
{
    f->delayed[i] = h;
    h->heap_slot = i;
}

static void heap_up(frontier *f, size_t i)
{
    struct frontier_host *h = f->delayed[i];
    while (i > 0) {
        size_t up = (i - 1) / 2;
        if (f->delayed[up]->next_start <= h->next_start)
            break;
        heap_set(f, i, f->delayed[up]);
        i = up;
    }
    heap_set(f, i, h);
}

static void heap_down(frontier *f, size_t i)
{
    struct frontier_host *h = f->delayed[i];
    for (;;) {
        size_t l = 2 * i + 1, best = i;
        uint64_t best_t = h->next_start;
        if (l < f->ndelayed && f->delayed[l]->next_start < best_t) {
            best = l;
            best_t = f->delayed[l]->next_start;
        }
        if (l + 1 < f->ndelayed && f->delayed[l + 1]->next_start < best_t)
            best = l + 1;
        if (best == i)
            break;
        heap_set(f, i, f->delayed[best]);
        i = best;
    }
    heap_set(f, i, h);
}

static int heap_push(frontier *f, struct frontier_host *h)
{
    if (f->ndelayed == f->delayed_cap) {
        size_t cap = f->delayed_cap ? f->delayed_cap * 2 : 16;
        struct frontier_host **d = realloc(f->delayed, cap * sizeof *d);
        if (d == NULL)
            return -ENOMEM;
        f->delayed = d;
        f->delayed_cap = cap;
    }
    heap_set(f, f->ndelayed++, h);
    heap_up(f, h->heap_slot);
    return 0;
}

static struct frontier_host *heap_pop(frontier *f)
{
    struct frontier_host *top = f->delayed[0];
    f->ndelayed--;
    if (f->ndelayed > 0) {
        heap_set(f, 0, f->delayed[f->ndelayed]);
        heap_down(f, 0);
    }
    top->heap_slot = SIZE_MAX;
    return top;
}

/* ---- turn order ---- */

/* Puts an idle origin where its state says: in the turn order, at its cap, waiting for
 * its next start or for its robots.txt, or idle when it has nothing queued or its item
 * has yet to start (frontier_started). */
static void schedule(frontier *f, struct frontier_host *h, uint64_t now)
{
    if (h->state != HOST_IDLE)
        return;
    if (h->queued == 0 || h->unstarted != NULL)
        return;
    if (h->robots_state != ROBOTS_NOT_USED && h->robots_state != ROBOTS_KNOWN) {
        h->state = HOST_ROBOTS;
        return;
    }
    if (f->limits.per_host > 0 && h->in_flight >= f->limits.per_host) {
        h->state = HOST_BUSY;
        return;
    }
    if (now < h->next_start && heap_push(f, h) == 0) {
        /* Without memory for the heap entry it is let through early: politeness gives
         * way before the crawl stalls. */
        h->state = HOST_DELAYED;
        return;
    }
    h->state = HOST_READY;
    h->next_ready = NULL;
    if (f->ready_tail != NULL)
        f->ready_tail->next_ready = h;
    else
        f->ready_head = h;
    f->ready_tail = h;
}

static struct frontier_host *pop_ready(frontier *f)
{
    struct frontier_host *h = f->ready_head;
    if (h == NULL)
        return NULL;
    f->ready_head = h->next_ready;
    if (f->ready_head == NULL)
        f->ready_tail = NULL;
    h->next_ready = NULL;
    h->state = HOST_IDLE;
    return h;
}

/* ---- origins ---- */

/* Splits a normalised URL into its origin ("scheme://host[:port]", no userinfo) and host
 * name. 0 or -EINVAL. */
static int split_origin(const char *url, size_t len, struct buf *origin, const char **name,
                        size_t *name_len)
{
    const char *end = url + len;
    const char *sep = memchr(url, ':', len);
    if (sep == NULL || end - sep < 3 || sep[1] != '/' || sep[2] != '/')
        return -EINVAL;
    const char *auth = sep + 3;
    const char *auth_end = auth;
    while (auth_end < end && *auth_end != '/' && *auth_end != '?' && *auth_end != '#')
        auth_end++;
    const char *at = NULL;
    for (const char *p = auth; p < auth_end; p++)
        if (*p == '@')
            at = p;
    const char *host = at ? at + 1 : auth;
    if (host == auth_end)
        return -EINVAL;
    const char *host_end = host;
    if (*host == '[') {
        while (host_end < auth_end && *host_end != ']')
            host_end++;
        if (host_end < auth_end)
            host_end++;
    } else {
        while (host_end < auth_end && *host_end != ':')
            host_end++;
    }
    buf_clear(origin);
    if (buf_append(origin, url, (size_t)(auth - url)) != 0 ||
        buf_append(origin, host, (size_t)(auth_end - host)) != 0)
        return -ENOMEM;
    *name = host;
    *name_len = (size_t)(host_end - host);
    return 0;
}

static size_t slot_of(const frontier *f, const char *origin, size_t len)
{
    size_t mask = f->hosts_cap - 1;
    size_t i = (size_t)seen_hash(origin, len) & mask;
    while (f->hosts[i] != NULL &&
           (strlen(f->hosts[i]->origin) != len || memcmp(f->hosts[i]->origin, origin, len) != 0))
        i = (i + 1) & mask;
    return i;
}

static int grow_hosts(frontier *f)
{
    size_t old_cap = f->hosts_cap;
    struct frontier_host **old = f->hosts;
    size_t cap = old_cap ? old_cap * 2 : 64;
    f->hosts = calloc(cap, sizeof *f->hosts);
    if (f->hosts == NULL) {
        f->hosts = old;
        return -ENOMEM;
    }
    f->hosts_cap = cap;
    for (size_t i = 0; i < old_cap; i++) {
        if (old[i] != NULL)
            f->hosts[slot_of(f, old[i]->origin, strlen(old[i]->origin))] = old[i];
    }
    free(old);
    return 0;
}

int frontier_host_of(frontier *f, const char *url, size_t len, struct frontier_host **out)
{
    struct buf origin;
    buf_init(&origin);
    const char *name;
    size_t name_len;
    int rc = split_origin(url, len, &origin, &name, &name_len);
    if (rc != 0)
        goto out;
    if ((f->nhosts + 1) * 4 > f->hosts_cap * 3 && (rc = grow_hosts(f)) != 0)
        goto out;
    size_t i = slot_of(f, origin.data, origin.len);
    if (f->hosts[i] == NULL) {
        struct frontier_host *h = calloc(1, sizeof *h);
        if (h == NULL || (h->name = strndup(name, name_len)) == NULL) {
            free(h);
            rc = -ENOMEM;
            goto out;
        }
        h->origin = buf_detach(&origin);
        h->heap_slot = SIZE_MAX;
        h->delay_ms = f->limits.delay_ms;
        if (f->limits.robots)
            h->robots_state = ROBOTS_UNASKED;
        f->hosts[i] = h;
        f->nhosts++;
    }
    *out = f->hosts[i];
out:
    buf_finish(&origin);
    return rc;
}

int frontier_host_set_scope(frontier *f, const struct frontier_host *host, const char *key)
{
    if (f->hosts_cap == 0)
        return -EINVAL;
    /* The frontier's own pointer to the host, found by its origin, rather than a cast
     * that takes the const off the caller's. */
    struct frontier_host *h = f->hosts[slot_of(f, host->origin, strlen(host->origin))];
    if (h != host)
        return -EINVAL;
    if (h->scope != NULL)
        return 0;
    h->scope = strdup(key);
    return h->scope != NULL ? 0 : -ENOMEM;
}

/* ---- items and levels ---- */

static void list_append(struct item_list *l, struct frontier_item *it)
{
    it->next = NULL;
    if (l->tail != NULL)
        l->tail->next = it;
    else
        l->head = it;
    l->tail = it;
    l->n++;
}

static void enqueue(frontier *f, struct frontier_item *it, uint64_t now)
{
    struct frontier_host *h = it->host;
    it->next = NULL;
    if (h->tail != NULL)
        h->tail->next = it;
    else
        h->head = it;
    h->tail = it;
    h->queued++;
    f->level_queued++;
    schedule(f, h, now);
}

int frontier_push(frontier *f, struct frontier_host *host, const char *url, size_t len,
                  unsigned depth, const struct frontier_host *root,
                  struct frontier_ref *found_on)
{
    struct out_link *l = malloc(sizeof *l + sizeof(struct frontier_item) + len + 1);
    if (l == NULL)
        return -ENOMEM;
    struct frontier_item *it = item_of(l);
    if (host->robots_state == ROBOTS_UNASKED) {
        /* Its first URL: now its robots.txt is worth a request. */
        host->robots_state = ROBOTS_WANTED;
        if (f->wanted_tail != NULL)
            f->wanted_tail->next_wanted = host;
        else
            f->wanted_head = host;
        f->wanted_tail = host;
    }
    it->host = host;
    it->root = root;
    it->found_on = found_on;
    if (found_on != NULL)
        found_on->refs++;
    it->depth = depth;
    it->len = len;
    memcpy(it->url, url, len);
    it->url[len] = '\0';
    /* Nothing below fails but the growth of `held`, which takes the count back. */
    f->bytes += item_bytes(len);
    if (depth <= f->level) {
        /* Depth 0 while level 0 is open, the only way to come in at the current level;
         * anything shallower can no longer happen. Time 0: a new URL never waits for a
         * delay it has not yet incurred, and schedule() only compares against it. */
        enqueue(f, it, 0);
        return 0;
    }
    if (depth >= f->nheld) {
        size_t n = depth + 1;
        struct item_list *held = realloc(f->held, n * sizeof *held);
        if (held == NULL) {
            f->bytes -= item_bytes(len);
            item_free(it);
            return -ENOMEM;
        }
        memset(held + f->nheld, 0, (n - f->nheld) * sizeof *held);
        f->held = held;
        f->nheld = n;
    }
    list_append(&f->held[depth], it);
    f->held_total++;
    return 0;
}

void frontier_set_input_open(frontier *f, int open)
{
    f->input_open = open;
}

/* Level done: release the next one that holds anything. 1 when something was released. */
static int advance_level(frontier *f, uint64_t now)
{
    if (f->level_queued > 0 || f->level_in_flight > 0 || (f->level == 0 && f->input_open))
        return 0;
    while (f->held_total > 0) {
        f->level++;
        if (f->level >= f->nheld)
            continue;
        struct item_list *l = &f->held[f->level];
        f->held_total -= l->n;
        struct frontier_item *it = l->head;
        *l = (struct item_list){0};
        while (it != NULL) {
            struct frontier_item *next = it->next;
            enqueue(f, it, now);
            it = next;
        }
        if (f->level_queued > 0)
            return 1;
    }
    return 0;
}

/* The path and query of a normalised URL, for robots.txt. */
static const char *path_of(const struct frontier_item *it, size_t *len)
{
    const char *sep = strstr(it->url, "://");
    const char *p = sep ? strchr(sep + 3, '/') : NULL;
    if (p == NULL) {
        *len = 1;
        return "/";
    }
    *len = it->len - (size_t)(p - it->url);
    return p;
}

enum frontier_next frontier_next(frontier *f, uint64_t now, struct frontier_item **out,
                                 uint64_t *wake_at)
{
    for (;;) {
        while (f->ndelayed > 0 && f->delayed[0]->next_start <= now) {
            struct frontier_host *h = heap_pop(f);
            h->state = HOST_IDLE;
            schedule(f, h, now);
        }
        struct frontier_host *h = pop_ready(f);
        if (h == NULL) {
            if (advance_level(f, now))
                continue;
            if (f->level_queued == 0 && f->level_in_flight == 0 && f->held_total == 0)
                return FRONTIER_EMPTY;
            *wake_at = f->ndelayed > 0 ? f->delayed[0]->next_start : UINT64_MAX;
            return FRONTIER_WAIT;
        }
        struct frontier_item *it = h->head;
        h->head = it->next;
        if (h->head == NULL)
            h->tail = NULL;
        h->queued--;
        f->level_queued--;
        size_t plen;
        const char *path = path_of(it, &plen);
        /* An error deciding (out of memory) counts as no: robots.txt errs on staying out. */
        if (h->rules != NULL && robots_allowed(h->rules, path, plen) != 1) {
            f->disallowed++;
            schedule(f, h, now);
            it->next = NULL;
            *out = it;
            return FRONTIER_DISALLOWED;
        }
        h->in_flight++;
        f->level_in_flight++;
        if (h->delay_ms > 0)
            h->unstarted = it; /* the delay is counted from its start */
        schedule(f, h, now);
        it->next = NULL;
        struct out_link *l = link_of(it);
        l->prev = f->out.prev;
        l->next = &f->out;
        f->out.prev->next = l;
        f->out.prev = l;
        *out = it;
        return FRONTIER_ITEM;
    }
}

void frontier_started(frontier *f, struct frontier_item *it, uint64_t now)
{
    struct frontier_host *h = it->host;
    if (h->unstarted != it)
        return;
    h->unstarted = NULL;
    h->next_start = now + h->delay_ms;
    schedule(f, h, now);
}

void frontier_done(frontier *f, struct frontier_item *it, uint64_t now)
{
    struct frontier_host *h = it->host;
    h->in_flight--;
    h->finished++;
    f->level_in_flight--;
    if (h->unstarted == it)
        h->unstarted = NULL; /* no request was made: the origin's clock stands */
    if (h->state == HOST_BUSY)
        h->state = HOST_IDLE;
    schedule(f, h, now);
    struct out_link *l = link_of(it);
    l->prev->next = l->next;
    l->next->prev = l->prev;
    f->bytes -= item_bytes(it->len);
    item_free(it);
}

void frontier_drop(frontier *f, struct frontier_item *it)
{
    f->bytes -= item_bytes(it->len);
    item_free(it);
}

/* ---- robots.txt ---- */

struct frontier_host *frontier_robots_wanted(frontier *f)
{
    struct frontier_host *h = f->wanted_head;
    if (h == NULL)
        return NULL;
    f->wanted_head = h->next_wanted;
    if (f->wanted_head == NULL)
        f->wanted_tail = NULL;
    h->next_wanted = NULL;
    h->robots_state = ROBOTS_FETCHING;
    return h;
}

void frontier_robots_known(frontier *f, struct frontier_host *h, robots *rules, uint64_t now)
{
    robots_destroy(h->rules);
    h->rules = rules;
    h->robots_state = ROBOTS_KNOWN;
    double delay = rules != NULL ? robots_crawl_delay(rules) : -1;
    /* Rounded: "2.01" parses to a hair under 2.01, which truncation would make 2009 ms. */
    uint64_t delay_ms = delay > 0 ? (uint64_t)(delay * 1000 + 0.5) : 0;
    if (delay_ms > h->delay_ms)
        h->delay_ms = delay_ms;
    if (h->state == HOST_ROBOTS) {
        h->state = HOST_IDLE;
        schedule(f, h, now);
    }
}

/* ---- life ---- */

int frontier_create(const struct frontier_limits *l, frontier **out)
{
    frontier *f = calloc(1, sizeof *f);
    if (f == NULL)
        return -ENOMEM;
    f->limits = *l;
    f->input_open = 1;
    f->out.prev = f->out.next = &f->out;
    if (grow_hosts(f) != 0) {
        free(f);
        return -ENOMEM;
    }
    *out = f;
    return 0;
}

static void free_items(struct frontier_item *it)
{
    while (it != NULL) {
        struct frontier_item *next = it->next;
        item_free(it);
        it = next;
    }
}

void frontier_destroy(frontier *f)
{
    if (f == NULL)
        return;
    for (size_t i = 0; i < f->hosts_cap; i++) {
        struct frontier_host *h = f->hosts[i];
        if (h == NULL)
            continue;
        free_items(h->head);
        robots_destroy(h->rules);
        free(h->origin);
        free(h->name);
        free(h->scope);
        free(h->robots_failure);
        free(h);
    }
    for (size_t d = 0; d < f->nheld; d++)
        free_items(f->held[d].head);
    while (f->out.next != &f->out) {
        struct out_link *l = f->out.next;
        f->out.next = l->next;
        item_free(item_of(l));
    }
    free(f->held);
    free(f->hosts);
    free(f->delayed);
    free(f);
}

void frontier_get_stats(const frontier *f, struct frontier_stats *out)
{
    *out = (struct frontier_stats){
        .queued = f->level_queued + f->held_total,
        .held = f->held_total,
        .in_flight = f->level_in_flight,
        .disallowed = f->disallowed,
        .level = f->level,
        .bytes = f->bytes,
    };
}

size_t frontier_bytes(const frontier *f)
{
    return f->bytes;
}

size_t frontier_item_bytes(size_t len)
{
    return item_bytes(len);
}
