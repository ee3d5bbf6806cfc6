#include "seen.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Odd constants with bits spread evenly: multiplying by them moves every input bit into
 * many higher output bits. */
#define K0 UINT64_C(0x9E3779B97F4A7C15) /* 2^64 / golden ratio */
#define K1 UINT64_C(0xC4CEB9FE1A85EC53)
#define K2 UINT64_C(0x87C37B91114253D5)

#define INITIAL_CAP 16

/* The single table doubles up to this size (1 MiB, about 92,000 entries), and its next
 * growth splits it into SEEN_SHARDS tables instead. Below it, a set costs one allocation,
 * which matters for page.c's many per-page sets of a few hundred links, and the transient
 * of a doubling is at most 3 MiB; above it, that transient is what sharding removes. */
#define SPLIT_CAP ((size_t)1 << 17)

/* A shard starts at its share of the table the split replaces a doubling of, so the split
 * itself costs no more memory than that doubling would have (1 + 2 MiB at the peak). */
#define SHARD_MIN_CAP (2 * SPLIT_CAP / SEEN_SHARDS)

static uint64_t rotl(uint64_t x, unsigned r)
{
    return (x << r) | (x >> (64 - r));
}

/* memcpy keeps loads legal at any alignment and compiles to a plain load where allowed.
 * The byte order is the host's: fingerprints never leave the process. */
static uint64_t load(const unsigned char *p, size_t n)
{
    uint64_t w = 0;
    memcpy(&w, p, n);
    return w;
}

/* Scrambles a word before it meets the state, so that words differing in a few bits do not
 * cancel each other out, then folds it in. */
static uint64_t absorb(uint64_t h, uint64_t w)
{
    w *= K1;
    w = rotl(w, 31);
    w *= K2;
    h ^= w;
    h = rotl(h, 27);
    return h * K0 + 0x6A09E667u;
}

/* The multiplies above push entropy upwards only; this spreads it back over all 64 bits so
 * that every input bit flips each output bit with odds near 1/2 (splitmix64's finaliser). */
static uint64_t avalanche(uint64_t h)
{
    h ^= h >> 30;
    h *= UINT64_C(0xBF58476D1CE4E5B9);
    h ^= h >> 27;
    h *= UINT64_C(0x94D049BB133111EB);
    h ^= h >> 31;
    return h;
}

uint64_t seen_hash(const void *data, size_t len)
{
    const unsigned char *p = data;
    size_t left = len;
    uint64_t a = K2 ^ ((uint64_t)len * K0);
    uint64_t b = K1;

    /* Two independent lanes let the multiplies of neighbouring words overlap. */
    while (left >= 16) {
        a = absorb(a, load(p, 8));
        b = absorb(b, load(p + 8, 8));
        p += 16;
        left -= 16;
    }
    uint64_t h = absorb(a, b);
    if (left >= 8) {
        h = absorb(h, load(p, 8));
        p += 8;
        left -= 8;
    }
    /* Zero padding is told apart from real zero bytes by the length mixed in. */
    if (left > 0)
        h = absorb(h, load(p, left));
    return avalanche(h ^ (uint64_t)len);
}

void seen_init(seen_set *s)
{
    s->one = (seen_table){NULL, 0, 0};
    s->shards = NULL;
    s->count = 0;
    s->has_zero = 0;
}

void seen_finish(seen_set *s)
{
    free(s->one.slots);
    if (s->shards != NULL) {
        for (size_t k = 0; k < SEEN_SHARDS; k++)
            free(s->shards[k].slots);
        free(s->shards);
    }
    seen_init(s);
}

/* Callers may pass fingerprints that are not hashes (counters, say): mixing again costs a
 * multiply and keeps such keys from piling up in one shard or one run of slots. */
static uint64_t mix(uint64_t fp)
{
    return fp * K0;
}

/* The top bits of a product are its best mixed, so they pick the shard. */
static size_t shard_of(uint64_t h)
{
    return (size_t)(h >> (64 - SEEN_SHARD_BITS));
}

/* Bits 0..31 of h, folded with bits 32..63. The shard bits (58..63) only reach index bits
 * 26 and up, and there they are the same for every entry of a shard: XORing a constant
 * permutes the slots, so a shard's entries still spread over all of them. */
static size_t home(uint64_t h, size_t mask)
{
    return (size_t)(h ^ (h >> 32)) & mask;
}

/* The slot holding fp (mixed: h), or the empty slot where it belongs. A table is never
 * full, so the loop ends. */
static size_t probe(const seen_table *t, uint64_t h, uint64_t fp)
{
    size_t mask = t->cap - 1;
    size_t i = home(h, mask);
    while (t->slots[i] != 0 && t->slots[i] != fp)
        i = (i + 1) & mask;
    return i;
}

/* Keep the load at most 0.7: linear probing slows sharply past that. */
static int needs_room(const seen_table *t)
{
    return t->cap == 0 || (t->used + 1) * 10 > t->cap * 7;
}

/* Stores fp, known to be absent, into a table with room for it. */
static void place(seen_table *t, uint64_t fp)
{
    t->slots[probe(t, mix(fp), fp)] = fp;
    t->used++;
}

static int grow(seen_table *t)
{
    size_t cap = t->cap ? t->cap * 2 : INITIAL_CAP;
    if (cap < t->cap || cap > SIZE_MAX / sizeof *t->slots)
        return -ENOMEM;
    uint64_t *slots = calloc(cap, sizeof *slots);
    if (slots == NULL)
        return -ENOMEM;
    seen_table bigger = {slots, cap, 0};
    for (size_t i = 0; i < t->cap; i++)
        if (t->slots[i] != 0)
            place(&bigger, t->slots[i]);
    free(t->slots);
    *t = bigger;
    return 0;
}

/* Moves the single table's entries into SEEN_SHARDS new tables. On -ENOMEM the set is left
 * as it was. */
static int split(seen_set *s)
{
    const seen_table *one = &s->one;
    seen_table *shards = calloc(SEEN_SHARDS, sizeof *shards);
    if (shards == NULL)
        return -ENOMEM;
    /* Size each shard for what it will hold rather than for an even share: keys that
     * crowd into one shard must not fill it before it gets the chance to grow. */
    for (size_t i = 0; i < one->cap; i++)
        if (one->slots[i] != 0)
            shards[shard_of(mix(one->slots[i]))].used++;
    for (size_t k = 0; k < SEEN_SHARDS; k++) {
        size_t cap = SHARD_MIN_CAP;
        while (shards[k].used * 10 > cap * 7)
            cap *= 2;
        shards[k].slots = calloc(cap, sizeof *shards[k].slots);
        if (shards[k].slots == NULL) {
            while (k > 0)
                free(shards[--k].slots);
            free(shards);
            return -ENOMEM;
        }
        shards[k].cap = cap;
        shards[k].used = 0;
    }
    for (size_t i = 0; i < one->cap; i++)
        if (one->slots[i] != 0)
            place(&shards[shard_of(mix(one->slots[i]))], one->slots[i]);
    free(s->one.slots);
    s->one = (seen_table){NULL, 0, 0};
    s->shards = shards;
    return 0;
}

static seen_table *table_of(seen_set *s, uint64_t h)
{
    return s->shards != NULL ? &s->shards[shard_of(h)] : &s->one;
}

/* Grows the table h belongs in until it can take one more entry; the single table is split
 * rather than doubled past SPLIT_CAP. A loop, because after a split the shard may itself
 * need to grow (only with keys that crowd into it). */
static int make_room(seen_set *s, uint64_t h)
{
    for (;;) {
        seen_table *t = table_of(s, h);
        if (!needs_room(t))
            return 0;
        int rc = s->shards == NULL && t->cap >= SPLIT_CAP ? split(s) : grow(t);
        if (rc != 0)
            return rc;
    }
}

int seen_add(seen_set *s, uint64_t fp)
{
    if (fp == 0) {
        if (s->has_zero)
            return 0;
        s->has_zero = 1;
        s->count++;
        return 1;
    }
    uint64_t h = mix(fp);
    seen_table *t = table_of(s, h);
    size_t i = 0;
    if (t->cap != 0) {
        i = probe(t, h, fp);
        if (t->slots[i] == fp)
            return 0;
    }
    if (needs_room(t)) {
        int rc = make_room(s, h);
        if (rc != 0)
            return rc;
        t = table_of(s, h);
        i = probe(t, h, fp);
    }
    t->slots[i] = fp;
    t->used++;
    s->count++;
    return 1;
}

int seen_reserve(seen_set *s, uint64_t fp)
{
    if (fp == 0)
        return 0; /* kept in a flag, not a slot */
    uint64_t h = mix(fp);
    return needs_room(table_of(s, h)) ? make_room(s, h) : 0;
}

int seen_contains(const seen_set *s, uint64_t fp)
{
    if (fp == 0)
        return s->has_zero;
    uint64_t h = mix(fp);
    const seen_table *t = s->shards != NULL ? &s->shards[shard_of(h)] : &s->one;
    if (t->cap == 0)
        return 0;
    return t->slots[probe(t, h, fp)] == fp;
}

static void empty(seen_table *t)
{
    if (t->slots != NULL)
        memset(t->slots, 0, t->cap * sizeof *t->slots);
    t->used = 0;
}

void seen_clear(seen_set *s)
{
    empty(&s->one);
    if (s->shards != NULL)
        for (size_t k = 0; k < SEEN_SHARDS; k++)
            empty(&s->shards[k]);
    s->count = 0;
    s->has_zero = 0;
}
