/* seen.h: a set of 64-bit fingerprints of strings, for de-duplication at about 16 bytes an
 * entry. The strings themselves are never stored, so two different strings that share a
 * fingerprint (odds about n^2 / 2^65 for n entries) count as one.
 *
 * Ownership: the caller owns the struct (seen_init/seen_finish); the set owns its table. */
#ifndef AREQ_SEEN_H
#define AREQ_SEEN_H

#include <stddef.h>
#include <stdint.h>

typedef struct seen_set {
    uint64_t *slots; /* open addressing; 0 marks an empty slot */
    size_t cap;      /* a power of two, or 0 before the first add */
    size_t count;
    int has_zero;    /* the fingerprint 0 cannot live in a slot */
} seen_set;

/* A well-mixed 64-bit fingerprint of `len` bytes (not a cryptographic hash). */
uint64_t seen_hash(const void *data, size_t len);

void seen_init(seen_set *s);
void seen_finish(seen_set *s);

/* Returns 1 when fp was new (and is now in), 0 when it was already in, -ENOMEM. */
int seen_add(seen_set *s, uint64_t fp);
int seen_contains(const seen_set *s, uint64_t fp);

/* Empties the set but keeps its table for reuse. */
void seen_clear(seen_set *s);

#endif
