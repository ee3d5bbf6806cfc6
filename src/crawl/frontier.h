/* frontier.h: the URLs waiting to be fetched.
 *
 * URLs are queued per origin (scheme, host and port), so that the politeness limits of one
 * origin (connections at once, spacing between requests, its robots.txt) hold that origin
 * back without holding up the others; origins take turns.
 *
 * URLs are released level by level: those at depth d+1 only once every URL at depth d has
 * been fetched (and, for depth 0, once the input lists are read to the end). That costs a
 * little overlap at each level's end, and buys exactness: a page's depth is its
 * breadth-first distance from the start URLs, whatever order transfers finish in, so that
 * --depth fetches exactly the pages a breadth-first walk would.
 *
 * The frontier does no I/O and reads no clock: callers pass the time in, which keeps it
 * testable and its decisions repeatable.
 *
 * Ownership: the frontier owns its hosts and items. An item handed out by frontier_next()
 * is the caller's until it gives it back with frontier_done(). Host pointers stay valid as
 * long as the frontier lives. */
#ifndef AREQ_FRONTIER_H
#define AREQ_FRONTIER_H

#include <stddef.h>
#include <stdint.h>

#include "robots.h"

typedef struct frontier frontier;

enum frontier_host_state {
    HOST_IDLE,     /* nothing queued */
    HOST_READY,    /* in the turn order */
    HOST_BUSY,     /* at its connection cap */
    HOST_DELAYED,  /* waiting for its next start time */
    HOST_ROBOTS,   /* waiting for its robots.txt */
};

enum frontier_robots_state {
    ROBOTS_NOT_USED,
    ROBOTS_UNASKED,  /* robots are obeyed, but nothing of this origin is queued yet */
    ROBOTS_WANTED,   /* to be fetched: frontier_robots_wanted() hands it out */
    ROBOTS_FETCHING,
    ROBOTS_KNOWN,
};

struct frontier_item;

struct frontier_host {
    char *origin;          /* "http://example.com:8080", the key */
    char *name;            /* "example.com" */
    char *scope;           /* the caller's scope key (e.g. registrable domain), or NULL;
                              set with frontier_host_set_scope() */
    size_t finished;       /* transfers of this origin given back so far */
    char *robots_failure;  /* the caller's: why its robots.txt could not be read, or NULL;
                              freed with the host */
    int robots_failure_told; /* the caller's: the failure has been reported */

    /* Private to frontier.c. */
    struct frontier_item *head, *tail;
    size_t queued, in_flight;
    uint64_t next_start;   /* ms: earliest start of the next request */
    uint64_t delay_ms;
    struct frontier_item *unstarted; /* with a delay: handed out, its request not begun */
    enum frontier_host_state state;
    enum frontier_robots_state robots_state;
    robots *rules;
    struct frontier_host *next_ready, *next_wanted;
    size_t heap_slot;
};

/* Where URLs were found: the page (or "FILE:LINE"), shared by every item pushed with it and
 * freed with the last of them. */
struct frontier_ref {
    size_t refs;
    char text[];
};

struct frontier_item {
    struct frontier_item *next;
    struct frontier_host *host;
    const struct frontier_host *root; /* the host the chain of links started from */
    struct frontier_ref *found_on;    /* where it was found, or NULL */
    unsigned depth;
    size_t len;
    char url[];                       /* normalised, NUL-terminated */
};

struct frontier_limits {
    size_t per_host;   /* transfers to one origin at once; 0 = no cap */
    uint64_t delay_ms; /* between the starts of two requests to one origin */
    int robots;        /* fetch each origin's robots.txt and obey it */
};

struct frontier_stats {
    size_t queued;        /* waiting now, held levels included */
    size_t held;          /* of those, links held back until their level's turn */
    size_t in_flight;     /* handed out, not yet given back */
    size_t disallowed;    /* dropped by robots.txt */
    unsigned level;       /* the depth being released */
    size_t bytes;         /* frontier_bytes() */
};

int frontier_create(const struct frontier_limits *l, frontier **out);
void frontier_destroy(frontier *f); /* accepts NULL; frees items not given back, too */

/* The origin of `url` (a normalised absolute URL), created on first sight. 0, -EINVAL for
 * a URL without an authority, or -ENOMEM. */
int frontier_host_of(frontier *f, const char *url, size_t len, struct frontier_host **out);

/* Records the caller's scope key of `h` (a copy, freed with the host) unless one is set
 * already. For a host the caller holds only by a const pointer (an item's root): the hosts
 * are the frontier's, so the write is its to make. 0, -ENOMEM, or -EINVAL when `h` is not
 * one of this frontier's hosts. */
int frontier_host_set_scope(frontier *f, const struct frontier_host *h, const char *key);

/* Queues `url` at `depth` for `host` (from frontier_host_of), remembering the chain's root
 * host and, when `found_on` is not NULL, where it was found (the item takes a reference).
 * The caller has already decided it is new and in scope. 0 or -ENOMEM. */
int frontier_push(frontier *f, struct frontier_host *host, const char *url, size_t len,
                  unsigned depth, const struct frontier_host *root,
                  struct frontier_ref *found_on);

/* A place to name as found_on, holding one reference for the caller. NULL: no memory. */
struct frontier_ref *frontier_ref_create(const char *text, size_t len);
void frontier_ref_release(struct frontier_ref *r); /* accepts NULL */

/* While the input is open, more depth-0 URLs may come, so depth 1 is held back. */
void frontier_set_input_open(frontier *f, int open);

enum frontier_next {
    FRONTIER_ITEM,  /* *out is the URL to fetch now */
    FRONTIER_WAIT,  /* URLs are queued or in flight, but none may start now */
    FRONTIER_EMPTY, /* nothing queued, held or in flight: with the input closed, the end */
    FRONTIER_DISALLOWED, /* *out is a URL its robots.txt disallows, already counted: the
                            caller reports it and hands it back with frontier_drop() */
};

/* The next URL that may be fetched at `now` (ms). With FRONTIER_WAIT, *wake_at is the
 * earliest time at which one may, or UINT64_MAX when only frontier_done(),
 * frontier_started() or frontier_robots_known() can change that. Each URL that robots.txt
 * disallows comes out on its own as FRONTIER_DISALLOWED, so that a caller can tell why and
 * pace the checks (only the URL about to be released is ever matched against the rules). */
enum frontier_next frontier_next(frontier *f, uint64_t now, struct frontier_item **out,
                                 uint64_t *wake_at);

/* The item's request begins (at `now`). An origin's delay runs from here, not from when
 * its item was handed out: a caller may hold an item a while first (until a transfer slot
 * is free, or a store has answered), and two items held like that would start together.
 * So with a delay, an origin hands out nothing more until its item has started (or come
 * back with frontier_done, unstarted, which leaves the origin's clock as it was). */
void frontier_started(frontier *f, struct frontier_item *it, uint64_t now);

/* Gives back an item: its transfer has ended (at `now`), or it never started. Frees it. */
void frontier_done(frontier *f, struct frontier_item *it, uint64_t now);

/* Gives back an item that came out as FRONTIER_DISALLOWED. Frees it. */
void frontier_drop(frontier *f, struct frontier_item *it);

/* An origin whose robots.txt must be fetched before any of its pages, or NULL. An origin
 * is wanted from its first queued URL (one only looked up, for a scope check say, costs
 * its server nothing) and handed out once; its pages wait until frontier_robots_known(). */
struct frontier_host *frontier_robots_wanted(frontier *f);

/* The rules for `h` are known (the frontier owns `rules` from now on; robots_allow_all()
 * for a 4xx, robots_disallow_all() for a 5xx or no answer, as RFC 9309 says). Its
 * Crawl-delay, if longer than the configured delay, spaces its requests. */
void frontier_robots_known(frontier *f, struct frontier_host *h, robots *rules, uint64_t now);

void frontier_get_stats(const frontier *f, struct frontier_stats *out);

/* Heap bytes held by the URLs queued, held back and in flight (an estimate that errs high),
 * which is what grows with a crawl: callers keep it under a budget. */
size_t frontier_bytes(const frontier *f);
/* What frontier_push() of a URL of `len` bytes adds to frontier_bytes(). */
size_t frontier_item_bytes(size_t len);

#endif
