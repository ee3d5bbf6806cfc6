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

#endif
