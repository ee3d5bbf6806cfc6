/* links.h: finds the links of an HTML document, without copying it: a table of rules says
 * which attributes of which elements hold what kind of link, and html.h's tokenizer finds the
 * attributes. (The --include/--exclude filters are filter.h.)
 *
 * Ownership: a links_extractor is created and destroyed by its caller; it copies the rows of a
 * table of rules, not the names they point to. An extractor is read-only once created, so many
 * scans may use it at once, from any thread: each scan allocates and frees its own match data.
 * The spans handed to the callback point into the caller's document (or, for values that held
 * character references, into a scratch buffer of the scan) and are valid only until the
 * callback returns. */
#ifndef AREQ_LINKS_H
#define AREQ_LINKS_H

#include <stddef.h>

typedef struct links_extractor links_extractor;

/* What a value is, which also says how it is read. */
enum links_kind {
    LINKS_HREF = 0, /* a URL to a link's target (an href attribute of any element) */
    LINKS_BASE = 1, /* the URL of the document's first <base> element with an href */
    /* The content of the first <meta name="robots"> (or name="areq") whose content holds the
     * token "nofollow" or "none": the page asks crawlers not to follow its links. Only with
     * LINKS_REPORT_NOFOLLOW, and never for a user's pattern. Its rules come in a pair, the
     * element's name attribute and its content attribute. */
    LINKS_NOFOLLOW = 2,
};

/* One row of the table: the `attr` attribute of a `tag` element holds a value of `kind`. Both
 * names are lower case, letters, digits, '-' and ':' only; tag "*" is any element for which no
 * row names that element and attribute. Adding a kind of link (img src, say) is adding a row. */
struct links_rule {
    const char *tag;
    const char *attr;
    enum links_kind kind;
};

/* At most this many rules in a table. */
#define LINKS_RULES_MAX 32

/* The rules the built-in scan uses: every href, the <base> href, and <meta> robots. */
extern const struct links_rule links_builtin_rules[];
extern const size_t links_builtin_nrules;

/* Flags for links_extractor_create_flags(). Kinds beyond HREF and BASE are opt-in, so a
 * caller that treats every other kind as a link keeps working. */
enum links_flags {
    LINKS_REPORT_NOFOLLOW = 1 << 0,
};

/* Called once per link, in document order, with the attribute value after HTML character
 * references are decoded (not trimmed: that is the URL parser's job). Returning non-zero
 * stops the scan, and links_scan returns that value. */
typedef int (*links_fn)(void *ctx, enum links_kind kind, const char *value, size_t len);

/* Compiles the built-in extractor (pattern == NULL) or a user's pcre2 pattern whose first
 * capturing group is the link (then every match is LINKS_HREF and values are decoded the
 * same way). Returns 0, -ENOMEM, or -EINVAL with a message naming the problem in err. */
int links_extractor_create(const char *pattern, links_extractor **out, char *err, size_t errlen);
/* The same, with `flags` from enum links_flags (links_extractor_create passes 0). Flags that
 * only concern the built-in scan are ignored with a pattern. Unknown flags are -EINVAL. */
int links_extractor_create_flags(const char *pattern, unsigned flags, links_extractor **out,
                                 char *err, size_t errlen);
/* The built-in scan with a table of its own instead of links_builtin_rules. The rows are
 * copied; the names they point to are borrowed and must outlive the extractor (string
 * literals, as a rule). When one tag has several links, they come in document order. -EINVAL
 * for a bad table (a name with other characters, an unknown kind, more than LINKS_RULES_MAX
 * rules, a LINKS_NOFOLLOW rule without its pair, two rules for one element and attribute),
 * with the reason in err. */
int links_extractor_create_rules(const struct links_rule *rules, size_t nrules, unsigned flags,
                                 links_extractor **out, char *err, size_t errlen);
void links_extractor_destroy(links_extractor *x); /* accepts NULL */

/* Whether a body of this Content-Type (NULL or empty: none) is one the extractor reads: text/html,
 * application/xhtml+xml, or no type at all, what a browser would render as HTML. Letter case
 * and parameters (";charset=...") do not matter. Fits http_request's accept. */
int links_accepts_type(const char *content_type);

/* Scans `html` (not NUL-terminated; may contain NUL bytes and invalid UTF-8, which never
 * stop the scan). Returns 0, the callback's non-zero value, or a negative error. */
int links_scan(const links_extractor *x, const char *html, size_t len, links_fn fn, void *ctx);

#endif
