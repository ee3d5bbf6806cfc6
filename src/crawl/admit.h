/* admit.h: the one way into the frontier for a URL, listed or found on a page. Admission
 * checks that the URL is new, finds its host, asks the caller's policy (scope, filters,
 * budget) and queues it; the URL is marked seen only once it is queued, so that a failure
 * on the way (out of memory) leaves it unseen, to be admitted when it comes again.
 *
 * Ownership: the caller owns the seen set, the frontier and found_on; admission borrows them
 * for the call. */
#ifndef AREQ_ADMIT_H
#define AREQ_ADMIT_H

#include <stddef.h>

#include "frontier.h"
#include "seen.h"

/* The caller's policy for a new URL whose host is `h` and whose chain began at `root`: 1
 * queue it, 0 turn it away (it stays unseen: it may be admitted when found again), or a
 * negative error, passed back. */
typedef int admit_policy_fn(void *arg, const struct frontier_host *h,
                            const struct frontier_host *root, const char *url, size_t len);

struct admit_url {
    const char *url;  /* normalised */
    size_t len;
    unsigned depth;
    const struct frontier_host *root; /* where the chain began; NULL: the URL's own host */
    struct frontier_ref *found_on;    /* the caller's, or NULL */
    const char *listed_at;            /* with found_on NULL: where the URL was listed, made
                                         into the item's found_on; or NULL */
    admit_policy_fn *policy;          /* NULL: every new URL is queued */
    void *policy_arg;
};

/* 1 queued, 0 seen before or turned away by the policy, the policy's error, -ENOMEM, or
 * frontier_host_of's error for a URL without a host. On any error the URL is not seen. */
int admit(seen_set *seen, frontier *f, const struct admit_url *u);

#endif
