#include "admit.h"

#include <errno.h>
#include <string.h>

int admit(seen_set *seen, frontier *f, const struct admit_url *u)
{
    uint64_t fp = seen_hash(u->url, u->len);
    if (seen_contains(seen, fp))
        return 0;
    struct frontier_host *h;
    int rc = frontier_host_of(f, u->url, u->len, &h);
    if (rc != 0)
        return rc;
    const struct frontier_host *root = u->root != NULL ? u->root : h;
    if (u->policy != NULL && (rc = u->policy(u->policy_arg, h, root, u->url, u->len)) <= 0)
        return rc;
    /* The work that can fail comes first: room in the seen set for this fingerprint, the
     * place it was listed at, the item itself. */
    if ((rc = seen_reserve(seen, fp)) != 0)
        return rc;
    struct frontier_ref *made = NULL;
    struct frontier_ref *found_on = u->found_on;
    if (found_on == NULL && u->listed_at != NULL) {
        if ((made = frontier_ref_create(u->listed_at, strlen(u->listed_at))) == NULL)
            return -ENOMEM;
        found_on = made;
    }
    rc = frontier_push(f, h, u->url, u->len, u->depth, root, found_on);
    frontier_ref_release(made); /* the item holds its own reference */
    if (rc != 0)
        return rc;
    /* Nothing below may fail: the URL is queued, and seen_add has its room reserved. */
    seen_add(seen, fp);
    return 1;
}
