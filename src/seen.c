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
    s->slots = NULL;
    s->cap = 0;
    s->count = 0;
    s->has_zero = 0;
}

void seen_finish(seen_set *s)
{
    free(s->slots);
    seen_init(s);
}

/* Callers may pass fingerprints that are not hashes (counters, say): mixing again costs a
 * multiply and keeps such keys from piling up in one run of slots. */
static size_t home(uint64_t fp, size_t mask)
{
    uint64_t h = fp * K0;
    return (size_t)(h ^ (h >> 32)) & mask;
}

/* The slot holding fp, or the empty slot where it belongs. The table is never full. */
static size_t probe(const uint64_t *slots, size_t mask, uint64_t fp)
{
    size_t i = home(fp, mask);
    while (slots[i] != 0 && slots[i] != fp)
        i = (i + 1) & mask;
    return i;
}

static int grow(seen_set *s)
{
    size_t cap = s->cap ? s->cap * 2 : INITIAL_CAP;
    if (cap < s->cap || cap > SIZE_MAX / sizeof *s->slots)
        return -ENOMEM;
    uint64_t *slots = calloc(cap, sizeof *slots);
    if (slots == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < s->cap; i++)
        if (s->slots[i] != 0)
            slots[probe(slots, cap - 1, s->slots[i])] = s->slots[i];
    free(s->slots);
    s->slots = slots;
    s->cap = cap;
    return 0;
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
    size_t i = 0;
    if (s->cap != 0) {
        i = probe(s->slots, s->cap - 1, fp);
        if (s->slots[i] == fp)
            return 0;
    }
    /* Keep the load at most 0.7: linear probing slows sharply past that. */
    size_t used = s->count - (size_t)s->has_zero;
    if (s->cap == 0 || (used + 1) * 10 > s->cap * 7) {
        int rc = grow(s);
        if (rc != 0)
            return rc;
        i = probe(s->slots, s->cap - 1, fp);
    }
    s->slots[i] = fp;
    s->count++;
    return 1;
}

int seen_contains(const seen_set *s, uint64_t fp)
{
    if (fp == 0)
        return s->has_zero;
    if (s->cap == 0)
        return 0;
    return s->slots[probe(s->slots, s->cap - 1, fp)] == fp;
}

void seen_clear(seen_set *s)
{
    if (s->slots != NULL)
        memset(s->slots, 0, s->cap * sizeof *s->slots);
    s->count = 0;
    s->has_zero = 0;
}
