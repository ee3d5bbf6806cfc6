/* seen.h: a set of 64-bit fingerprints of strings, for de-duplication at about 16 bytes an
 * entry. The strings themselves are never stored, so two different strings that share a
 * fingerprint (odds about n^2 / 2^65 for n entries) count as one.
 *
 * A small set is one table. A large one is split into SEEN_SHARDS tables that grow one at a
 * time, so that growing never needs much more memory than the set already holds: with a
 * single table, the old and the doubled table are alive together, 24 bytes an entry at
 * the peak instead of 16.
 *
 * Ownership: the caller owns the struct (seen_init/seen_finish); the set owns its tables. */
#ifndef AREQ_SEEN_H
#define AREQ_SEEN_H

#include <stddef.h>
#include <stdint.h>

#define SEEN_SHARD_BITS 6
#define SEEN_SHARDS (1u << SEEN_SHARD_BITS)

/* One open-addressing table with linear probing; 0 marks an empty slot. */
typedef struct seen_table {
    uint64_t *slots;
    size_t cap;  /* a power of two, or 0 before the first add */
    size_t used; /* fingerprints in slots */
} seen_table;

typedef struct seen_set {
    seen_table one;      /* the only table while shards is NULL; unused after */
    seen_table *shards;  /* SEEN_SHARDS tables once the set is large, else NULL */
    size_t count;        /* fingerprints in the set, 0 included */
    int has_zero;        /* the fingerprint 0 cannot live in a slot */
} seen_set;

/* A well-mixed 64-bit fingerprint of `len` bytes (not a cryptographic hash). */
uint64_t seen_hash(const void *data, size_t len);

void seen_init(seen_set *s);
void seen_finish(seen_set *s);

/* Returns 1 when fp was new (and is now in), 0 when it was already in, -ENOMEM. */
int seen_add(seen_set *s, uint64_t fp);
int seen_contains(const seen_set *s, uint64_t fp);

/* Makes room for fp, so that the next seen_add(s, fp) cannot fail (a caller that must not
 * fail after some irreversible step reserves before it). 0 or -ENOMEM. */
int seen_reserve(seen_set *s, uint64_t fp);

/* Empties the set but keeps its tables for reuse. */
void seen_clear(seen_set *s);

#endif
