/* filter.c: --include/--exclude patterns, compiled once and matched against each URL a page
 * offers to the frontier. */
#include "filter.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

/* A filter runs once per discovered link on a URL of at most a few KiB, so far less work than
 * a page scan may do is plenty; a pattern that needs more is one the user will want to hear
 * about. */
#define FILTER_MATCH_LIMIT 1000000u
#define FILTER_DEPTH_LIMIT 100000u /* per URL byte, roughly, for patterns like (a|b)* */
#define FILTER_HEAP_LIMIT (16 * 1024) /* KiB, what bounds the interpreter's frames in fact */

struct filter {
    pcre2_code *code;
    pcre2_match_context *mctx; /* limits only; never changed after create, so shareable */
    /* Match data for one call at a time, which takes it by setting `busy`. One pair is all a
     * yes/no answer needs, and pcre2 (10.41 on) keeps the interpreter's frames in it between
     * calls, so a reused one allocates nothing. */
    pcre2_match_data *md;
    atomic_bool busy;
};

int filter_create(const char *pattern, filter **out, char *err, size_t errlen)
{
    if (out == NULL || pattern == NULL || (err == NULL && errlen > 0))
        return -EINVAL;
    *out = NULL;
    if (errlen > 0)
        err[0] = '\0';

    filter *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return -ENOMEM;
    atomic_init(&f->busy, false);

    /* Byte mode, with no way for the pattern to turn UTF on: URLs may hold any byte, and a
     * UTF-mode match on invalid UTF-8 fails instead of answering. */
    int errcode, rc;
    PCRE2_SIZE erroff;
    f->code = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, PCRE2_NEVER_UTF, &errcode,
                            &erroff, NULL);
    if (f->code == NULL) {
        rc = errcode == PCRE2_ERROR_NOMEMORY ? -ENOMEM : -EINVAL;
        if (rc == -EINVAL && errlen > 0) {
            PCRE2_UCHAR msg[256];
            if (pcre2_get_error_message(errcode, msg, sizeof(msg)) < 0)
                snprintf((char *)msg, sizeof(msg), "error %d", errcode);
            snprintf(err, errlen, "%s at offset %zu", (const char *)msg, (size_t)erroff);
        }
        goto fail;
    }
    /* No JIT: a filter sees one short URL at a time, where the interpreter costs well under a
     * microsecond, and JIT code loads whole aligned words past the end of the subject, which
     * for a URL in a larger buffer means bytes nobody wrote (harmless, but valgrind rightly
     * cannot tell). The heap limit below is what bounds the interpreter. */

    rc = -ENOMEM;
    f->mctx = pcre2_match_context_create(NULL);
    f->md = pcre2_match_data_create(1, NULL);
    if (f->mctx == NULL || f->md == NULL)
        goto fail;
    pcre2_set_match_limit(f->mctx, FILTER_MATCH_LIMIT);
    pcre2_set_depth_limit(f->mctx, FILTER_DEPTH_LIMIT);
    pcre2_set_heap_limit(f->mctx, FILTER_HEAP_LIMIT);
    *out = f;
    return 0;

fail:
    filter_destroy(f);
    return rc;
}

void filter_destroy(filter *f)
{
    if (f == NULL)
        return;
    pcre2_match_data_free(f->md);
    pcre2_match_context_free(f->mctx);
    pcre2_code_free(f->code);
    free(f);
}

int filter_match(const filter *f, const char *s, size_t len)
{
    if (f == NULL || (s == NULL && len > 0))
        return -EINVAL;
    /* `busy` is the one thing a match changes in the filter; the filter came from calloc, so
     * writing it through a pointer that had const cast away is defined. */
    atomic_bool *busy = (atomic_bool *)&f->busy;
    int borrowed = !atomic_exchange_explicit(busy, true, memory_order_acquire);
    pcre2_match_data *md = borrowed ? f->md : pcre2_match_data_create(1, NULL);
    if (md == NULL)
        return -ENOMEM;

    int rc = pcre2_match(f->code, (PCRE2_SPTR)(s != NULL ? s : ""), len, 0, 0, md, f->mctx);

    if (borrowed)
        atomic_store_explicit(busy, false, memory_order_release);
    else
        pcre2_match_data_free(md);
    if (rc >= 0) /* 0 is a match whose offsets did not all fit the one pair */
        return 1;
    switch (rc) {
    case PCRE2_ERROR_NOMATCH:
        return 0;
    case PCRE2_ERROR_NOMEMORY:
        return -ENOMEM;
    case PCRE2_ERROR_MATCHLIMIT:
    case PCRE2_ERROR_DEPTHLIMIT:
    case PCRE2_ERROR_HEAPLIMIT:
        return -ERANGE; /* the URL made the pattern do too much work */
    default:
        return -EIO;
    }
}
