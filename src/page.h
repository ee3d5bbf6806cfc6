/* page.h: one page of a crawl: fetch it (again, after transient failures), find its
 * links, write its pairs to the output as one block, and offer the links worth following
 * to the frontier.
 *
 * Ownership: page_spawn() takes the frontier item and one permit of the crawl's
 * semaphore; the page gives both back when it ends. */
#ifndef AREQ_PAGE_H
#define AREQ_PAGE_H

#include "crawl.h"

/* Spawns the page task as a child of the run task. 0, or -ENOMEM with the item and the
 * permit still the caller's. */
int page_spawn(crawl *c, struct frontier_item *it);

#endif
