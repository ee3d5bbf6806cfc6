/* fingerprint.h: a fast 64-bit fingerprint of a body, to tell a changed page from an
 * unchanged one between runs (the crawl-state store keeps it).
 *
 * Not a cryptographic digest (digest.h is): a server that wants to hide a change can answer
 * 304 anyway, so nothing is gained by resisting collisions made on purpose, and the odds of
 * an accidental one are about 2^-64 a page. What matters is speed: it runs over every byte
 * of every page of a --state run, on the thread that scans them. A pure function of the
 * bytes (the same on every host), so a store can be read on another machine. */
#ifndef AREQ_FINGERPRINT_H
#define AREQ_FINGERPRINT_H

#include <stddef.h>
#include <stdint.h>

uint64_t fingerprint(const void *data, size_t len);

/* The same fingerprint taken as the bytes arrive, in pieces of any size: fingerprint_end()
 * gives what fingerprint() gives for all of them at once. Taking each piece as it comes
 * in reads it while it is still in the cache; the whole body read again later came from
 * memory (scenario A: 23.6 ms of the loop's time a first run with --state, perf). The
 * state is the caller's, plain data: no allocation, nothing to free. */
struct fingerprint_state {
    uint64_t lane[4];
    uint64_t len;             /* bytes taken */
    unsigned char held[64];   /* the start of a block still short of 64 bytes */
    size_t nheld;
};

void fingerprint_start(struct fingerprint_state *f);
void fingerprint_add(struct fingerprint_state *f, const void *data, size_t len);
uint64_t fingerprint_end(const struct fingerprint_state *f);

#endif
