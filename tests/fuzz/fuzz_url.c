/* fuzz_url.c: libFuzzer harness for URL resolution and normalisation (src/web/url.c).
 *
 * Input: one flags byte, then "BASE\nHREF". The flags byte's low two bits are the url_resolve
 * flags (URL_KEEP_FRAGMENT | URL_ALL_SCHEMES), so seeds start with '0'..'3'. Everything after
 * the flags byte also goes to url_normalize_input as one input line. HREF may hold more
 * newlines: the resolver drops them, as a browser does.
 *
 * The checks are what url.h promises of every URL areq prints, plus two consistency rules:
 * a printed URL is a fixed point (normalising or resolving it again changes nothing), and a
 * link areq would print is usable as a <base href>. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "buf.h"
#include "fuzz_check.h"
#include "url.h"

static int is_http(const char *s, size_t n)
{
    return (n >= 7 && memcmp(s, "http://", 7) == 0) || (n >= 8 && memcmp(s, "https://", 8) == 0);
}

/* url.h: no normalised URL holds a control character, space or a byte >= 0x80 (other
 * schemes included); an http(s) one also has '"', '<', '>', '`', '{', '}' escaped. */
static void check_printable(const char *s, size_t n)
{
    int http = is_http(s, n);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        CHECK(c > 0x20 && c < 0x7F);
        if (http)
            CHECK(strchr("\"<>`{}", c) == NULL);
    }
}

static int same(const struct buf *a, size_t a_from, const struct buf *b, size_t b_from)
{
    return a->len - a_from == b->len - b_from &&
           memcmp(a->data + a_from, b->data + b_from, a->len - a_from) == 0;
}

static void check_normalize(const char *text, size_t len)
{
    struct buf out, again;
    buf_init(&out);
    buf_init(&again);
    const char *why = NULL;
    int rc = url_normalize_input(text, len, &out, &why);
    if (rc != 0) {
        CHECK(rc == -EINVAL || rc == -ENOMEM);
        CHECK(why != NULL);
        CHECK(out.len == 0);
        goto out;
    }
    CHECK(is_http(out.data, out.len));
    check_printable(out.data, out.len);

    rc = url_normalize_input(out.data, out.len, &again, &why);
    CHECK(rc == 0);
    CHECK(same(&out, 0, &again, 0));
out:
    buf_finish(&again);
    buf_finish(&out);
}

/* Resolves href against b into a buffer that already holds a prefix, as the crawler's
 * buffers do, and checks the result. Returns url_resolve's code; *res gets the URL. */
static int check_resolve(const url_base *b, const char *href, size_t len, unsigned flags,
                         struct buf *res)
{
    static const char prefix[] = "prefix ";
    struct buf out, again;
    buf_init(&out);
    buf_init(&again);
    CHECK(buf_append_str(&out, prefix) == 0);
    size_t from = sizeof prefix - 1;

    int rc = url_resolve(b, href, len, flags, &out);
    CHECK(out.len >= from && memcmp(out.data, prefix, from) == 0);
    if (rc != URL_OK) {
        CHECK(rc == URL_FILTERED || rc == -EINVAL || rc == -ENOMEM);
        CHECK(out.len == from); /* nothing appended */
        goto out;
    }
    const char *u = out.data + from;
    size_t n = out.len - from;
    CHECK(n > 0);
    check_printable(u, n);
    if (!(flags & URL_ALL_SCHEMES))
        CHECK(is_http(u, n));
    if (is_http(u, n) && !(flags & URL_KEEP_FRAGMENT))
        CHECK(memchr(u, '#', n) == NULL);

    CHECK(buf_append_str(&again, prefix) == 0);
    rc = url_resolve(b, u, n, flags, &again);
    CHECK(rc == URL_OK);
    CHECK(same(&out, from, &again, from));

    buf_clear(res);
    CHECK(buf_append(res, u, n) == 0);
    rc = URL_OK;
out:
    buf_finish(&again);
    buf_finish(&out);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    unsigned flags = data[0] & (URL_KEEP_FRAGMENT | URL_ALL_SCHEMES);
    const char *text = (const char *)data + 1;
    size_t len = size - 1;

    check_normalize(text, len);

    const char *nl = memchr(text, '\n', len);
    if (nl == NULL)
        return 0;
    size_t base_len = (size_t)(nl - text);
    const char *href = nl + 1;
    size_t href_len = len - base_len - 1;

    /* A base is made of what url_normalize_input accepts, and only of that. */
    struct buf norm;
    buf_init(&norm);
    const char *why;
    int normalized = url_normalize_input(text, base_len, &norm, &why) == 0;
    buf_finish(&norm);
    url_base *b = NULL;
    int rc = url_base_create(text, base_len, &b);
    CHECK(rc == 0 || rc == -EINVAL || rc == -ENOMEM);
    if (rc != -ENOMEM)
        CHECK((rc == 0) == normalized);
    if (rc != 0)
        return 0;

    struct buf res, self, plain, now;
    buf_init(&res);
    buf_init(&self);
    buf_init(&plain);
    buf_init(&now);

    /* The empty reference is the document itself: the base as normalised. */
    CHECK(check_resolve(b, "", 0, 0, &self) == URL_OK);
    check_resolve(b, href, href_len, flags, &res);

    /* <base href> takes what the link resolves to, without its fragment. */
    int plain_rc = check_resolve(b, href, href_len, 0, &plain);
    rc = url_base_rebase(b, href, href_len);
    CHECK(rc == 0 || rc == -EINVAL || rc == -ENOMEM);
    if (plain_rc == URL_OK && rc != -ENOMEM)
        CHECK(rc == 0); /* a link areq would print can be a base */
    CHECK(check_resolve(b, "", 0, 0, &now) == URL_OK);
    if (rc != 0)
        CHECK(same(&now, 0, &self, 0)); /* a failed rebase leaves the base as it was */
    else if (plain_rc == URL_OK)
        CHECK(same(&now, 0, &plain, 0));

    buf_finish(&now);
    buf_finish(&plain);
    buf_finish(&self);
    buf_finish(&res);
    url_base_destroy(b);
    return 0;
}
