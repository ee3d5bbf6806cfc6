/* digest.h: SHA-256 of bytes that arrive in pieces.
 *
 * For what must name a body by its content where others check it: the downloader's
 * manifest, and the options hash of the crawl-state store. (The store's "has this page
 * changed" uses fingerprint.h instead: SHA-256 of every body was half of what a first
 * --state run cost, and nobody outside areq compares that fingerprint.) A digest is owned
 * by its caller, fed with digest_update as
 * the bytes arrive (so a body never needs to be whole in memory), and read once with
 * digest_final. The only module besides http.c that touches OpenSSL (its libcrypto). */
#ifndef AREQ_DIGEST_H
#define AREQ_DIGEST_H

#include <stddef.h>

enum { DIGEST_SIZE = 32, DIGEST_HEX_SIZE = 2 * DIGEST_SIZE + 1 };

typedef struct digest digest;

/* A new SHA-256 context, or NULL when out of memory. */
digest *digest_new(void);
/* Starts over, as if new. 0 or -ENOMEM. */
int digest_reset(digest *d);
/* Feeds len bytes. 0, or -ENOMEM (the context is then unusable until digest_reset). */
int digest_update(digest *d, const void *data, size_t len);
/* Writes the DIGEST_SIZE-byte sum of everything fed since new or reset. 0 or -ENOMEM. */
int digest_final(digest *d, unsigned char out[DIGEST_SIZE]);
void digest_free(digest *d);

/* The sum of one buffer at once. 0 or -ENOMEM. */
int digest_sha256(const void *data, size_t len, unsigned char out[DIGEST_SIZE]);
/* out gets 64 lowercase hex digits and a NUL. */
void digest_hex(const unsigned char sum[DIGEST_SIZE], char out[DIGEST_HEX_SIZE]);

#endif
