/* fuzz_links.c: libFuzzer harness for the link extractor (src/extract/links.c, src/extract/html.c,
 * src/extract/entities.c).
 *
 * The whole input is the page. Its first byte also picks the extractor and when the callback
 * stops the scan, so the seeds can be plain HTML ('<' = 0x3C picks the built-in scan and
 * never stops):
 *   bits 0-1  0: the built-in scan; 1-3: one of the user patterns below
 *   bits 2-5  15: never stop; n < 15: stop (return STOP) at the link after the n-th
 *   bit 6     with the built-in scan: also report <meta name=robots> nofollow
 *
 * Every value handed to the callback is read in full, so ASan catches a span that leaves the
 * page or the scratch buffer; the checks below are what links.h promises about them. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fuzz_check.h"
#include "links.h"

#define STOP 4242 /* what the callback returns to stop a scan: no error code is this */

/* Decoding grows a value by at most 3x: a NUL byte becomes U+FFFD (3 bytes); a numeric
 * reference is at least as long as the UTF-8 it yields ("&#0", 3 bytes, to U+FFFD); the
 * largest named growth is "&nLt;" (5 bytes) to U+226A U+20D2 (6 bytes). */
#define MAX_GROWTH 3

static const char *const patterns[4] = {
    NULL, /* the built-in scan */
    "href=\"(.*?)\"",
    "(?i)src\\s*=\\s*'([^']*)'",
    /* Matches an empty group after most '<' and '&', and \K makes the match start where the
     * group does: exercises the scan's handling of empty matches and of references. */
    "[<&]\\K([\\w&#;]*)",
};

/* extractors[4] is the built-in scan with LINKS_REPORT_NOFOLLOW. */
static links_extractor *extractors[5];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    char err[256];
    for (size_t i = 0; i < 4; i++) {
        if (links_extractor_create(patterns[i], &extractors[i], err, sizeof err) != 0) {
            fprintf(stderr, "fuzz_links: pattern %zu: %s\n", i, err);
            abort();
        }
    }
    CHECK(links_extractor_create_flags(NULL, LINKS_REPORT_NOFOLLOW, &extractors[4], err,
                                       sizeof err) == 0);
    return 0;
}

struct scan_state {
    uintptr_t page, page_end;
    size_t page_len;
    int user;
    int nofollow_wanted, nofollow_seen;
    unsigned stop_after; /* 15: never */
    unsigned links;
    int base_seen;
    uintptr_t last_end; /* end of the last value that pointed into the page */
    volatile unsigned sum;
};

/* Whether s[0..n) holds `word` (lower case) in any ASCII case: an independent, looser check
 * of the extractor's token rule. */
static int holds_word(const char *s, size_t n, const char *word)
{
    size_t w = strlen(word);
    for (size_t i = 0; i + w <= n; i++) {
        size_t k = 0;
        while (k < w && (s[i + k] | 0x20) == word[k])
            k++;
        if (k == w)
            return 1;
    }
    return 0;
}

static int on_link(void *ctx, enum links_kind kind, const char *value, size_t len)
{
    struct scan_state *st = ctx;

    CHECK(kind == LINKS_HREF || kind == LINKS_BASE || kind == LINKS_NOFOLLOW);
    if (kind == LINKS_NOFOLLOW) {
        CHECK(st->nofollow_wanted); /* opt-in, and never for a user's pattern */
        CHECK(!st->nofollow_seen);  /* once per document */
        st->nofollow_seen = 1;
        CHECK(holds_word(value, len, "nofollow") || holds_word(value, len, "none"));
    }
    if (kind == LINKS_BASE) {
        CHECK(!st->user);      /* a user pattern's matches are all LINKS_HREF */
        CHECK(!st->base_seen); /* only the first <base href> counts */
        st->base_seen = 1;
    }
    CHECK(value != NULL);

    uintptr_t v = (uintptr_t)value;
    if (v >= st->page && v <= st->page_end) {
        /* Undecoded: a span of the page, after the previous one (document order). */
        CHECK(len <= st->page_end - v);
        /* A <meta>'s content may come before its href in the tag: only links are ordered. */
        if (kind != LINKS_NOFOLLOW) {
            CHECK(v >= st->last_end);
            st->last_end = v + len;
        }
    } else {
        CHECK(len <= MAX_GROWTH * st->page_len);
    }

    /* NUL bytes and "&#0;" both decode to U+FFFD, so no value holds a NUL. */
    CHECK(memchr(value, '\0', len) == NULL);
    for (size_t i = 0; i < len; i++)
        st->sum += (unsigned char)value[i];

    if (st->stop_after != 15 && st->links == st->stop_after)
        return STOP;
    st->links++;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    /* Scanned in place, with no slack after it, so ASan catches any over-read by the scan's
     * C code. pcre2's JIT needs no slack here: it may load an aligned block reaching past
     * the end (hence buf_zero_slack, for valgrind), but an aligned load never crosses into
     * the next page, and ASan does not instrument JIT code, so it reports nothing. */
    unsigned mode = data[0] & 3;
    int nofollow = mode == 0 && (data[0] & 0x40);
    struct scan_state st = {
        .page = (uintptr_t)data,
        .page_end = (uintptr_t)data + size,
        .page_len = size,
        .user = mode != 0,
        .nofollow_wanted = nofollow,
        .stop_after = (data[0] >> 2) & 15,
        .last_end = (uintptr_t)data,
    };
    int rc = links_scan(extractors[nofollow ? 4 : mode], (const char *)data, size, on_link, &st);

    if (rc == STOP) {
        CHECK(st.links == st.stop_after);
    } else {
        CHECK(st.stop_after == 15 || st.links <= st.stop_after);
        /* The built-in scan cannot fail but for memory; a user pattern may hit pcre2's
         * limits on a page that makes it backtrack too much. */
        CHECK(rc == 0 || rc == -ENOMEM || (st.user && rc == -ERANGE));
    }
    return 0;
}
