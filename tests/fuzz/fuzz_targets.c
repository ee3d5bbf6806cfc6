/* fuzz_targets.c: libFuzzer harness for decoding a page's stored targets (src/store/state.c,
 * state_record_targets), the front-coded list a `targets.list` blob holds.
 *
 * Two checks per input (and, with each, that state_record_lines gives the same list as
 * lines, or refuses it alike):
 *   1. The whole input as a blob, as a damaged or hostile store would hold it: decoding
 *      answers 0, -EINVAL or -ENOMEM, never reads outside the blob (the input is an exact
 *      heap copy, so AddressSanitizer sees any over-read), and a list it accepts is whole:
 *      NUL-terminated targets that fill page.targets_len exactly.
 *   2. The input's lines as targets, encoded here by a plain reference of the format
 *      (varint(shared * 4 + back - 1), varint(rest), rest; `back` one of the four before,
 *      picked by the target's bytes, `shared` at most the prefix the two have in common):
 *      the decoder must give back exactly those targets. The store's own encoder picks the
 *      best of the four; any choice must decode the same. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "state.h"

enum { BACK = 4, MAX_TARGETS = 256 };

static size_t put_varint(unsigned char *at, uint64_t v)
{
    size_t n = 0;
    do {
        at[n++] = (unsigned char)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v != 0);
    return n;
}

/* The same list as lines (state_record_lines, which a 304 writes from): each target
 * after a prefix and before a newline, exactly those of the decoded list; refused when
 * the list is, leaving what was in the buffer as it was. */
static void check_lines(const struct state_record *rec, int rc)
{
    static const char prefix[] = "http://s.test/\t";
    struct buf out;
    buf_init(&out);
    CHECK(buf_append(&out, "kept", 4) == 0);
    size_t count = 0;
    int lrc = state_record_lines(rec, prefix, sizeof prefix - 1, &out, &count);
    if (rc != 0) {
        CHECK(lrc == rc || lrc == -ENOMEM);
        CHECK(out.len == 4 && memcmp(out.data, "kept", 4) == 0);
    } else if (lrc == 0) {
        const char *t = rec->page.targets, *end = t + rec->page.targets_len;
        const char *l = out.data + 4;
        size_t k = 0;
        for (; t < end; k++) {
            size_t tl = strlen(t);
            CHECK(memcmp(l, prefix, sizeof prefix - 1) == 0);
            l += sizeof prefix - 1;
            CHECK(memcmp(l, t, tl) == 0 && l[tl] == '\n');
            l += tl + 1;
            t += tl + 1;
        }
        CHECK(k == count && l == out.data + out.len && *l == '\0');
    } else {
        CHECK(lrc == -ENOMEM);
    }
    buf_finish(&out);
}

/* Decodes `blob` as the store would; returns its answer, with the record for checking. */
static int decode(const unsigned char *blob, size_t len, struct state_record *rec)
{
    state_record_init(rec);
    rec->encoded = blob;
    rec->encoded_len = len;
    int rc = state_record_targets(rec);
    CHECK(rc == 0 || rc == -EINVAL || rc == -ENOMEM);
    if (rc == 0) {
        const char *t = rec->page.targets;
        CHECK(t != NULL);
        CHECK(rec->page.targets_len == 0 || t[rec->page.targets_len - 1] == '\0');
        /* Decoding again is a no-op. */
        CHECK(state_record_targets(rec) == 0);
    }
    check_lines(rec, rc);
    return rc;
}

static void check_raw(const uint8_t *data, size_t size)
{
    unsigned char *copy = malloc(size > 0 ? size : 1);
    if (copy == NULL)
        return;
    memcpy(copy, data, size);
    struct state_record rec;
    decode(copy, size, &rec);
    state_record_finish(&rec);
    free(copy);
}

static void check_round_trip(const uint8_t *data, size_t size)
{
    /* The targets: the input's lines, NUL bytes made 'x' (a target holds none). */
    char *plain = malloc(size + 1);
    const char *starts[MAX_TARGETS];
    size_t lens[MAX_TARGETS], n = 0;
    unsigned char *blob = malloc(size * 2 + MAX_TARGETS * 20 + 1);
    if (plain == NULL || blob == NULL)
        goto out;
    size_t plain_len = 0, start = 0;
    for (size_t i = 0; i <= size && n < MAX_TARGETS; i++) {
        if (i == size || data[i] == '\n') {
            starts[n] = plain + start;
            lens[n] = plain_len - start;
            plain[plain_len++] = '\0';
            start = plain_len;
            n++;
            if (i == size)
                break;
            continue;
        }
        plain[plain_len++] = data[i] != 0 ? (char)data[i] : 'x';
    }
    size_t blob_len = 0;
    for (size_t k = 0; k < n; k++) {
        size_t back = 1, shared = 0;
        if (k > 0) {
            size_t pick = lens[k] > 0 ? (unsigned char)starts[k][0] : k;
            size_t most = k < BACK ? k : BACK;
            back = 1 + pick % most;
            const char *other = starts[k - back];
            size_t max = lens[k] < lens[k - back] ? lens[k] : lens[k - back];
            while (shared < max && other[shared] == starts[k][shared])
                shared++;
            /* Less than all it could share is as valid. */
            if (lens[k] > 1 && (unsigned char)starts[k][lens[k] - 1] % 3 == 0)
                shared /= 2;
        }
        blob_len += put_varint(blob + blob_len, (uint64_t)shared * BACK + back - 1);
        blob_len += put_varint(blob + blob_len, lens[k] - shared);
        memcpy(blob + blob_len, starts[k] + shared, lens[k] - shared);
        blob_len += lens[k] - shared;
    }
    struct state_record rec;
    int rc = decode(blob, blob_len, &rec);
    CHECK(rc == 0 || rc == -ENOMEM);
    if (rc == 0) {
        CHECK(rec.page.targets_len == plain_len);
        CHECK(memcmp(rec.page.targets, plain, plain_len) == 0);
    }
    state_record_finish(&rec);
out:
    free(plain);
    free(blob);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_raw(data, size);
    check_round_trip(data, size);
    return 0;
}
