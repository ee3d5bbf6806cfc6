/* html.h: an HTML tokenizer reduced to what finds URLs: it reports each start tag's
 * attributes as (tag, attribute, value) spans, and knows comments, doctypes, end tags and the
 * elements whose content is raw text (WHATWG HTML 13.2.5), so that nothing inside those is
 * taken for markup. What an attribute means is the caller's business (links.c keeps a table).
 *
 * Ownership: a tokenizer is created and destroyed by its caller, and is read-only once
 * created, so many scans may use it at once, from any thread: each scan allocates and frees
 * its own match data. Every span handed to a callback points into the caller's document and
 * is raw: character references are not decoded. */
#ifndef AREQ_HTML_H
#define AREQ_HTML_H

#include <stddef.h>

typedef struct html_tokenizer html_tokenizer;

/* A start tag's name, as written (any letter case). */
struct html_tag {
    const char *name;
    size_t len;
};

/* What a scan reports. A callback's non-zero return stops the scan, and html_scan returns
 * that value. */
struct html_handler {
    /* One attribute of a start tag, in document order; `value` is NULL when the attribute has
     * none ("<a href>"). Duplicates are reported too: HTML keeps the first of an element's
     * attributes of one name, and so must the caller. A tag the page ends inside (an
     * unterminated quote, say) is dropped by HTML, yet its attributes have been reported by
     * then: act on them in `tag_end`, which such a tag never reaches. */
    int (*attr)(void *ctx, const struct html_tag *tag, const char *name, size_t name_len,
                const char *value, size_t value_len);
    /* The '>' of the start tag whose attributes were just reported. */
    int (*tag_end)(void *ctx, const struct html_tag *tag);
    void *ctx;
};

/* 0, -ENOMEM, or -EINVAL with a message in err (pcre2 refusing the scan's own pattern). */
int html_tokenizer_create(html_tokenizer **out, char *err, size_t errlen);
void html_tokenizer_destroy(html_tokenizer *t); /* accepts NULL */

/* Scans `html` (not NUL-terminated; may contain NUL bytes and invalid UTF-8, which never stop
 * the scan). Returns 0, a callback's non-zero value, or a negative error. */
int html_scan(const html_tokenizer *t, const char *html, size_t len, const struct html_handler *h);

/* Whether p[0..n) spells `lower` (which holds no upper-case letter) in any ASCII letter case,
 * as HTML compares tag and attribute names. */
int html_name_is(const char *p, size_t n, const char *lower);

/* A pcre2 match error as the extractor's negative errno: -ENOMEM, -ERANGE for a page that
 * made a pattern do too much work, else -EIO. For links.c's -P patterns too. */
int html_errno_from_pcre2(int rc);

#endif
