/* The command line as a table: one row per option, with typed handlers, in the manner of
 * curl's tool_getparam.c. The parser, --help, the shell completions and the tests that keep
 * the README and the man page in step all read the same rows. */
#include "options.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <arpa/inet.h>

#include "config.h"
#include "save.h"

/* ---- the context of one parse ---- */

struct parse {
    struct options *o;
    char *err;
    size_t errlen;
    const char *file;    /* the configuration file being read, or NULL for argv */
    unsigned long line;
    const char *spelled; /* the option as written, for messages: "--concurrency", "-c" */
};

static int fail(struct parse *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A usage error, placed at FILE:LINE when it comes from a file. */
static int fail(struct parse *p, const char *fmt, ...)
{
    size_t used = 0;
    if (p->file != NULL && p->errlen > 0) {
        int n = snprintf(p->err, p->errlen, "%s:%lu: ", p->file, p->line);
        used = n < 0 ? 0 : (size_t)n < p->errlen ? (size_t)n : p->errlen - 1;
    }
    if (used < p->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(p->err + used, p->errlen - used, fmt, ap);
        va_end(ap);
    }
    return OPTIONS_USAGE;
}

static int no_memory(struct parse *p)
{
    snprintf(p->err, p->errlen, "out of memory");
    return OPTIONS_NO_MEMORY;
}

/* A value that must outlive the parse: argv's strings do; a file's line does not. */
static const char *keep(struct parse *p, const char *val)
{
    if (p->file == NULL)
        return val;
    char **grown = realloc(p->o->owned, (p->o->nowned + 1) * sizeof *grown);
    if (grown == NULL)
        return NULL;
    p->o->owned = grown;
    char *copy = strdup(val);
    if (copy != NULL)
        p->o->owned[p->o->nowned++] = copy;
    return copy;
}

static int append_to(struct parse *p, const char ***list, size_t *n, const char *val)
{
    const char *v = keep(p, val);
    if (v == NULL)
        return no_memory(p);
    const char **grown = realloc(*list, (*n + 1) * sizeof *grown);
    if (grown == NULL)
        return no_memory(p);
    *list = grown;
    (*list)[(*n)++] = v;
    return 0;
}

/* ---- value parsers ---- */

/* Whole numbers within [lo, hi]. */
static int parse_count(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

/* A size in bytes with an optional k, M or G suffix (powers of 1024, as curl's
 * --max-filesize takes them), up to 1 TiB. */
static int parse_size(const char *s, unsigned long long *out)
{
    char *end;
    errno = 0;
    if (*s < '0' || *s > '9')
        return -1;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || end == s)
        return -1;
    unsigned shift = 0;
    switch (*end) {
    case '\0': break;
    case 'k': case 'K': shift = 10; end++; break;
    case 'm': case 'M': shift = 20; end++; break;
    case 'g': case 'G': shift = 30; end++; break;
    default: return -1;
    }
    if (*end != '\0' || v > (1ULL << 40) >> shift)
        return -1;
    *out = v << shift;
    return 0;
}

/* Seconds: non-negative, finite, fractions allowed, at most a day. */
static int parse_seconds(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno != 0 || end == s || *end != '\0' || !isfinite(v) || v < 0 || v > 86400)
        return -1;
    *out = v;
    return 0;
}

/* A duration: a number with s, m, h, d or w (seconds without one), fractions allowed,
 * from 1 second to 10 years. */
static int parse_duration(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno != 0 || end == s || !isfinite(v) || v <= 0 || *s == '-' || *s == '+')
        return -1;
    double unit = 1;
    switch (*end) {
    case '\0': break;
    case 's': unit = 1; end++; break;
    case 'm': unit = 60; end++; break;
    case 'h': unit = 3600; end++; break;
    case 'd': unit = 86400; end++; break;
    case 'w': unit = 7 * 86400; end++; break;
    default: return -1;
    }
    v *= unit;
    if (*end != '\0' || v < 1 || v > 10.0 * 366 * 86400)
        return -1;
    *out = v;
    return 0;
}

static int is_web_url(const char *s)
{
    return strncasecmp(s, "http://", 7) == 0 || strncasecmp(s, "https://", 8) == 0;
}

/* ---- the table ---- */

struct option_def;
typedef int (*option_fn)(struct parse *p, const struct option_def *d, const char *val);

enum value_kind {
    VALUE_NONE,  /* a switch */
    VALUE_TEXT,  /* anything */
    VALUE_FILE,  /* a file name: completed as one */
    VALUE_DIR,
    VALUE_WORDS, /* one of `words` */
};

struct option_def {
    const char *name;   /* long form without dashes; NULL for a heading */
    char letter;        /* short form, or 0 */
    enum value_kind kind;
    const char *meta;   /* the value's name in --help */
    const char *words;  /* VALUE_WORDS: the choices, separated by spaces */
    option_fn set;
    size_t field;       /* where the generic handlers store the value */
    long lo, hi;        /* bounds for counts; the value for flags */
    const char *expect; /* what a good value looks like, for messages */
    const char *help;
};

#define FIELD(type, o, d) (*(type *)(void *)((char *)(o) + (d)->field))
#define AT(m) offsetof(struct options, m)

static int bad_value(struct parse *p, const struct option_def *d, const char *val)
{
    return fail(p, "invalid --%s '%s' (%s)", d->name, val, d->expect);
}

static int set_long(struct parse *p, const struct option_def *d, const char *val)
{
    long n;
    if (parse_count(val, d->lo, d->hi, &n) != 0)
        return bad_value(p, d, val);
    FIELD(long, p->o, d) = n;
    return 0;
}

static int set_size_t(struct parse *p, const struct option_def *d, const char *val)
{
    long n;
    if (parse_count(val, d->lo, d->hi, &n) != 0)
        return bad_value(p, d, val);
    FIELD(size_t, p->o, d) = (size_t)n;
    return 0;
}

static int set_seconds(struct parse *p, const struct option_def *d, const char *val)
{
    if (parse_seconds(val, &FIELD(double, p->o, d)) != 0)
        return bad_value(p, d, val);
    return 0;
}

static int set_bytes(struct parse *p, const struct option_def *d, const char *val)
{
    if (parse_size(val, &FIELD(unsigned long long, p->o, d)) != 0)
        return bad_value(p, d, val);
    return 0;
}

static int set_queue(struct parse *p, const struct option_def *d, const char *val)
{
    unsigned long long v;
    if (parse_size(val, &v) != 0 || v < (64ULL << 10))
        return bad_value(p, d, val);
    p->o->max_queue = v;
    return 0;
}

static int set_flag(struct parse *p, const struct option_def *d, const char *val)
{
    (void)val;
    FIELD(int, p->o, d) = (int)d->lo;
    return 0;
}

static int set_text(struct parse *p, const struct option_def *d, const char *val)
{
    const char *v = keep(p, val);
    if (v == NULL)
        return no_memory(p);
    FIELD(const char *, p->o, d) = v;
    return 0;
}

static int set_nonempty(struct parse *p, const struct option_def *d, const char *val)
{
    if (val[0] == '\0')
        return fail(p, "--%s needs %s", d->name, d->expect);
    return set_text(p, d, val);
}

/* The place of `val` among the row's words, or -1. */
static int choice_index(const struct option_def *d, const char *val)
{
    size_t len = strlen(val);
    int i = 0;
    for (const char *w = d->words; *w != '\0'; i++) {
        size_t n = strcspn(w, " ");
        if (n == len && len > 0 && memcmp(w, val, n) == 0)
            return i;
        w += n;
        w += *w == ' ';
    }
    return -1;
}

/* --scope: each word of the row paired with its value by name, so that the row's words may
 * come in any order. A word of the row missing here is refused (test_options tries each). */
static int set_scope(struct parse *p, const struct option_def *d, const char *val)
{
    static const struct {
        const char *word;
        enum options_scope scope;
    } scopes[] = {
        {"host", OPTIONS_SCOPE_HOST},
        {"domain", OPTIONS_SCOPE_DOMAIN},
        {"any", OPTIONS_SCOPE_ANY},
    };
    if (choice_index(d, val) >= 0) {
        for (size_t i = 0; i < sizeof scopes / sizeof scopes[0]; i++) {
            if (strcmp(val, scopes[i].word) == 0) {
                p->o->scope = scopes[i].scope;
                return 0;
            }
        }
    }
    return bad_value(p, d, val);
}

static int set_duration(struct parse *p, const struct option_def *d, const char *val)
{
    if (parse_duration(val, &FIELD(double, p->o, d)) != 0)
        return bad_value(p, d, val);
    return 0;
}

static int set_format(struct parse *p, const struct option_def *d, const char *val)
{
    if (format_parse(val, &p->o->format) != 0)
        return bad_value(p, d, val);
    return 0;
}

static int add_include(struct parse *p, const struct option_def *d, const char *val)
{
    if (val[0] == '\0')
        return fail(p, "--%s needs a regular expression", d->name);
    return append_to(p, &p->o->include, &p->o->ninclude, val);
}

static int add_exclude(struct parse *p, const struct option_def *d, const char *val)
{
    if (val[0] == '\0')
        return fail(p, "--%s needs a regular expression", d->name);
    return append_to(p, &p->o->exclude, &p->o->nexclude, val);
}

static int set_user_agent(struct parse *p, const struct option_def *d, const char *val)
{
    /* A line break would end the header and start another one of the user's. */
    if (strpbrk(val, "\r\n") != NULL)
        return fail(p, "invalid --%s: it holds a line break", d->name);
    return set_text(p, d, val);
}

static int add_header(struct parse *p, const struct option_def *d, const char *val)
{
    /* curl's forms: "Name: value", or "Name;" for a header with an empty value. */
    size_t name = strcspn(val, ":;");
    if (name == 0 || val[name] == '\0' || strpbrk(val, "\r\n") != NULL ||
        (val[name] == ';' && val[name + 1] != '\0'))
        return bad_value(p, d, val);
    return append_to(p, &p->o->headers, &p->o->nheaders, val);
}

static int is_ip_address(const char *s, size_t len)
{
    char text[INET6_ADDRSTRLEN + 2];
    unsigned char addr[sizeof(struct in6_addr)];
    if (len >= 2 && s[0] == '[' && s[len - 1] == ']') {
        s++;
        len -= 2;
        if (len >= sizeof text)
            return 0;
        memcpy(text, s, len);
        text[len] = '\0';
        return inet_pton(AF_INET6, text, addr) == 1;
    }
    if (len == 0 || len >= sizeof text)
        return 0;
    memcpy(text, s, len);
    text[len] = '\0';
    return inet_pton(AF_INET, text, addr) == 1 || inet_pton(AF_INET6, text, addr) == 1;
}

/* curl's HOST:PORT:ADDR[,ADDR...], checked here so that a typo is a usage error rather
 * than a silent fall-back to DNS. */
static int add_resolve(struct parse *p, const struct option_def *d, const char *val)
{
    const char *s = val[0] == '+' ? val + 1 : val;
    const char *c1 = strchr(s, ':');
    const char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
    long port;
    char portbuf[8];
    if (c1 == NULL || c2 == NULL || c1 == s || (size_t)(c2 - c1 - 1) >= sizeof portbuf)
        return bad_value(p, d, val);
    memcpy(portbuf, c1 + 1, (size_t)(c2 - c1 - 1));
    portbuf[c2 - c1 - 1] = '\0';
    if (parse_count(portbuf, 1, 65535, &port) != 0)
        return bad_value(p, d, val);
    const char *a = c2 + 1;
    do {
        size_t n = strcspn(a, ",");
        if (!is_ip_address(a, n))
            return fail(p, "invalid --%s '%s': '%.*s' is not an IP address", d->name, val,
                        (int)n, a);
        a += n;
    } while (*a++ == ',');
    return append_to(p, &p->o->resolve, &p->o->nresolve, val);
}

static int add_cookie(struct parse *p, const struct option_def *d, const char *val)
{
    (void)d;
    return append_to(p, &p->o->cookies, &p->o->ncookies, val);
}

static int set_user(struct parse *p, const struct option_def *d, const char *val)
{
    if (strchr(val, ':') == NULL)
        return fail(p, "invalid --%s '%s' (%s)", d->name, val, d->expect);
    return set_text(p, d, val);
}

static int set_netrc_file(struct parse *p, const struct option_def *d, const char *val)
{
    p->o->netrc = 1;
    return set_nonempty(p, d, val);
}

static int set_ip_version(struct parse *p, const struct option_def *d, const char *val)
{
    (void)val;
    p->o->ip_version = (int)d->lo;
    return 0;
}

static int set_speed_limit(struct parse *p, const struct option_def *d, const char *val)
{
    int rc = set_long(p, d, val);
    /* curl's rule: a limit without a time is measured over 30 s. */
    if (rc == 0 && p->o->speed_time == 0)
        p->o->speed_time = 30;
    return rc;
}

static int set_speed_time(struct parse *p, const struct option_def *d, const char *val)
{
    int rc = set_long(p, d, val);
    if (rc == 0 && p->o->speed_limit == 0)
        p->o->speed_limit = 1;
    return rc;
}

static int set_verbosity(struct parse *p, const struct option_def *d, const char *val)
{
    (void)val;
    p->o->verbosity = (int)d->lo;
    return 0;
}

static int add_input(struct parse *p, const struct option_def *d, const char *val)
{
    if (val[0] == '\0')
        return fail(p, "--%s needs a file name", d->name);
    const char *v = keep(p, val);
    if (v == NULL)
        return no_memory(p);
    char **grown = realloc(p->o->inputs, (p->o->ninputs + 1) * sizeof *grown);
    if (grown == NULL)
        return no_memory(p);
    p->o->inputs = grown;
    /* The list never writes through these; the type is the crawl's. */
    p->o->inputs[p->o->ninputs++] = (char *)(uintptr_t)v;
    return 0;
}

static int add_url(struct parse *p, const struct option_def *d, const char *val)
{
    if (!is_web_url(val))
        return fail(p, "invalid --%s '%s' (an absolute http:// or https:// URL)", d->name, val);
    return append_to(p, &p->o->urls, &p->o->nurls, val);
}

/* --save-types: media types, "image/" and a star for a whole family, checked now. */
static int set_save_types(struct parse *p, const struct option_def *d, const char *val)
{
    char bad[64];
    if (save_types_check(val, bad, sizeof bad) != 0)
        return fail(p, "invalid --%s '%s': '%s' is not a media type (%s)", d->name, val, bad,
                    d->expect);
    return set_text(p, d, val);
}

static int read_config(struct parse *p, const struct option_def *d, const char *val);

static int no_config(struct parse *p, const struct option_def *d, const char *val)
{
    (void)val;
    return fail(p, "--%s must be the first argument", d->name);
}

static int ask_help(struct parse *p, const struct option_def *d, const char *val)
{
    (void)p, (void)d, (void)val;
    return OPTIONS_HELP;
}

static int ask_version(struct parse *p, const struct option_def *d, const char *val)
{
    (void)p, (void)d, (void)val;
    return OPTIONS_VERSION;
}

static int ask_completion(struct parse *p, const struct option_def *d, const char *val)
{
    if (choice_index(d, val) < 0)
        return bad_value(p, d, val);
    p->o->completion = keep(p, val);
    return p->o->completion != NULL ? OPTIONS_COMPLETION : no_memory(p);
}

#define HEADING(text) {.help = text}

static const struct option_def table[] = {
    HEADING("Input"),
    {"input-file", 'i', VALUE_FILE, "FILE", NULL, add_input, 0, 0, 0, "a file name",
     "read URLs from FILE, one a line (- is standard input); repeatable. An argument that "
     "is not an http(s) URL names such a file too (default urls.txt)"},
    {"url", 0, VALUE_TEXT, "URL", NULL, add_url, 0, 0, 0, "an http(s) URL",
     "fetch URL, as an argument that starts with http:// or https:// does; repeatable"},
    {"config", 'K', VALUE_FILE, "FILE", NULL, read_config, 0, 0, 0, "a file name",
     "read options from FILE as curl does: one a line, long names with or without the "
     "dashes, a value after a space, = or :, in double quotes if it has spaces, # comments"},
    {"no-config", 0, VALUE_NONE, NULL, NULL, no_config, 0, 0, 0, NULL,
     "do not read $XDG_CONFIG_HOME/areq/areqrc (else ~/.config/areq/areqrc); only as "
     "the first argument"},

    HEADING("Fetching"),
    {"concurrency", 'c', VALUE_TEXT, "N", NULL, set_size_t, AT(concurrency), 1, 100000,
     "a whole number from 1 to 100000", "transfers in flight at most (default 100, 1-100000)"},
    {"timeout", 't', VALUE_TEXT, "SECONDS", NULL, set_seconds, AT(timeout_s), 0, 0,
     "seconds, e.g. 30 or 0.5", "limit for a whole transfer (default 30; 0 = none)"},
    {"connect-timeout", 0, VALUE_TEXT, "SECONDS", NULL, set_seconds, AT(connect_timeout_s),
     0, 0, "seconds, e.g. 10 or 0.5", "limit for connecting (default 10)"},
    {"speed-limit", 'Y', VALUE_TEXT, "BYTES", NULL, set_speed_limit, AT(speed_limit), 1,
     1L << 30, "bytes a second, a whole number from 1",
     "abandon a transfer slower than BYTES a second for --speed-time (default: no such "
     "rule; --timeout bounds every transfer)"},
    {"speed-time", 'y', VALUE_TEXT, "SECONDS", NULL, set_speed_time, AT(speed_time), 1,
     86400, "whole seconds from 1 to 86400",
     "how long a transfer may stay under --speed-limit (default 30 when a limit is set; "
     "alone, it sets a limit of 1 byte a second)"},
    {"max-redirs", 0, VALUE_TEXT, "N", NULL, set_long, AT(max_redirs), 0, 1000,
     "a whole number from 0 to 1000", "redirects followed at most (default 10)"},
    {"retries", 0, VALUE_TEXT, "N", NULL, set_long, AT(retries), 0, 100,
     "a whole number from 0 to 100",
     "attempts again after a transient failure: refused, reset, timed out, 408, 429, 5xx "
     "(default 2)"},
    {"max-size", 0, VALUE_TEXT, "SIZE", NULL, set_bytes, AT(max_size), 0, 0,
     "bytes, or with k, M or G, up to 1024G",
     "largest body, decoded; k, M, G suffixes (default 10M; 0 = no limit)"},

    HEADING("Recursion"),
    {"depth", 'd', VALUE_TEXT, "N", NULL, set_long, AT(depth), 0, 1000,
     "a whole number from 0 to 1000", "follow links N hops from the listed URLs (default 0)"},
    {"scope", 0, VALUE_WORDS, "SCOPE", "host domain any", set_scope, 0, 0, 0,
     "host, domain or any",
     "which links are followed: host (default: the host the chain started from), domain "
     "(its registrable domain; an IP address is its own) or any"},
    {"include", 0, VALUE_TEXT, "REGEX", NULL, add_include, 0, 0, 0, NULL,
     "follow only URLs matching one such pcre2 pattern"},
    {"exclude", 0, VALUE_TEXT, "REGEX", NULL, add_exclude, 0, 0, 0, NULL,
     "never follow URLs matching it; both repeatable"},
    {"max-pages", 0, VALUE_TEXT, "N", NULL, set_long, AT(max_pages), 1, 1000000000,
     "a whole number from 1", "fetch N pages at most (default: no limit)"},
    {"max-queue", 0, VALUE_TEXT, "SIZE", NULL, set_queue, AT(max_queue), 0, 0,
     "bytes, or with k, M or G, from 64k to 1024G",
     "memory for URLs waiting to be fetched; past it, links are not followed, with a "
     "message and a count (default 128M)"},
    {"no-robots", 0, VALUE_NONE, NULL, NULL, set_flag, AT(robots), 0, 0, NULL,
     "ignore robots.txt (obeyed when recursing)"},
    {"per-host", 0, VALUE_TEXT, "N", NULL, set_long, AT(per_host), 1, 100000,
     "a whole number from 1 to 100000",
     "transfers to one host at once (default 8 when recursing, else no limit)"},
    {"delay", 0, VALUE_TEXT, "SECONDS", NULL, set_seconds, AT(delay_s), 0, 0,
     "seconds, e.g. 1 or 0.25", "between requests to one host (default 0)"},

    HEADING("HTTP"),
    {"user-agent", 'A', VALUE_TEXT, "TEXT", NULL, set_user_agent, AT(user_agent), 0, 0, NULL,
     "User-Agent header (default areq/" AREQ_VERSION ")"},
    {"header", 'H', VALUE_TEXT, "'NAME: VALUE'", NULL, add_header, 0, 0, 0,
     "expected 'Name: value'", "an extra request header; repeatable"},
    {"proxy", 'x', VALUE_TEXT, "URL", NULL, set_text, AT(proxy), 0, 0, NULL,
     "proxy for every transfer (default: the http_proxy, https_proxy and no_proxy "
     "variables)"},
    {"cookie", 'b', VALUE_FILE, "FILE|DATA", NULL, add_cookie, 0, 0, 0, NULL,
     "send cookies: DATA with an = is 'NAME=VALUE; ...', else a cookie file to read (one "
     "that does not exist yet starts an empty jar); cookies set by servers are kept and "
     "sent for the rest of the run; repeatable"},
    {"cookie-jar", 0, VALUE_FILE, "FILE", NULL, set_nonempty, AT(cookie_jar), 0, 0,
     "a file name", "write every cookie to FILE (Netscape format) at the end of the run"},
    {"user", 'u', VALUE_TEXT, "USER:PASSWORD", NULL, set_user, AT(user), 0, 0,
     "USER:PASSWORD", "credentials for every server (HTTP basic authentication)"},
    {"netrc", 0, VALUE_NONE, NULL, NULL, set_flag, AT(netrc), 1, 0, NULL,
     "take credentials for each host from ~/.netrc"},
    {"netrc-file", 0, VALUE_FILE, "FILE", NULL, set_netrc_file, AT(netrc_file), 0, 0,
     "a file name", "the same from FILE"},
    {"resolve", 0, VALUE_TEXT, "HOST:PORT:ADDR", NULL, add_resolve, 0, 0, 0,
     "HOST:PORT:ADDR[,ADDR...]", "connect to ADDR for HOST and PORT, without DNS; repeatable"},
    {"ipv4", '4', VALUE_NONE, NULL, NULL, set_ip_version, 0, 4, 0, NULL,
     "resolve names to IPv4 addresses only"},
    {"ipv6", '6', VALUE_NONE, NULL, NULL, set_ip_version, 0, 6, 0, NULL,
     "resolve names to IPv6 addresses only"},
    {"cacert", 0, VALUE_FILE, "FILE", NULL, set_nonempty, AT(cacert), 0, 0, "a file name",
     "trust the CA certificates in FILE (PEM) instead of the system's (default: "
     "$CURL_CA_BUNDLE or $SSL_CERT_FILE when set)"},
    {"capath", 0, VALUE_DIR, "DIR", NULL, set_nonempty, AT(capath), 0, 0, "a directory",
     "trust the CA certificates in DIR, named by hash (default: $SSL_CERT_DIR when set)"},
    {"insecure", 'k', VALUE_NONE, NULL, NULL, set_flag, AT(insecure), 1, 0, NULL,
     "do not verify TLS certificates and host names"},

    HEADING("Links"),
    {"pattern", 'P', VALUE_TEXT, "REGEX", NULL, set_nonempty, AT(pattern), 0, 0,
     "a regular expression",
     "find links with this pcre2 pattern instead of the built-in HTML scan; its first "
     "group is the link"},
    {"all-schemes", 0, VALUE_NONE, NULL, NULL, set_flag, AT(all_schemes), 1, 0, NULL,
     "also write targets such as mailto: and javascript:"},
    {"keep-fragments", 0, VALUE_NONE, NULL, NULL, set_flag, AT(keep_fragments), 1, 0, NULL,
     "keep #fragments, and links to a fragment of the page"},

    HEADING("Output"),
    {"output", 'o', VALUE_FILE, "FILE", NULL, set_nonempty, AT(output), 0, 0, "a file name",
     "where pairs go (default foundurls.txt; - is stdout)"},
    {"format", 'f', VALUE_WORDS, "FORMAT", "tsv csv jsonl", set_format, 0, 0, 0,
     "tsv, csv or jsonl", "tsv, csv (RFC 4180) or jsonl (default tsv)"},
    {"append", 'a', VALUE_NONE, NULL, NULL, set_flag, AT(append), 1, 0, NULL,
     "add to FILE instead of replacing it (a header only when it is new or empty)"},
    {"no-header", 0, VALUE_NONE, NULL, NULL, set_flag, AT(header), 0, 0, NULL,
     "omit the header line"},
    {"failures", 0, VALUE_FILE, "FILE", NULL, set_nonempty, AT(failures), 0, 0, "a file name",
     "write each failed URL to FILE as a JSON object a line: url, kind, status or error, "
     "attempts, depth, the page it was found on"},
    /* Issue 14: memory between runs. */
    {"state", 0, VALUE_FILE, "FILE", NULL, set_nonempty, AT(state), 0, 0, "a file name",
     "remember pages in FILE (SQLite, created on first use): ask again conditionally, "
     "write stored pairs for unchanged pages, resume an unfinished run"},
    {"fresh", 0, VALUE_NONE, NULL, NULL, set_flag, AT(fresh), 1, 0, NULL,
     "with --state, start over instead of resuming an unfinished run"},
    {"changes", 0, VALUE_FILE, "FILE", NULL, set_nonempty, AT(changes), 0, 0, "a file name",
     "with --state, write what changed since the pages were last seen: added and removed "
     "pairs, new, gone, failing and recovered pages (empty: nothing changed)"},
    {"max-age", 0, VALUE_TEXT, "DURATION", NULL, set_duration, AT(max_age_s), 0, 0,
     "a duration such as 90m, 12h or 1d",
     "with --state, do not request pages fetched less than DURATION ago (s, m, h, d, w); "
     "write their stored pairs"},
    /* Saving bodies (issue 15). */
    {"save", 0, VALUE_DIR, "DIR", NULL, set_nonempty, AT(save_dir), 0, 0, "a directory",
     "write every 2xx body fetched under DIR as HOST[:PORT]/PATH (index.html for a path "
     "ending in /), made when missing; pairs are still written (with -o /dev/null and "
     "no --depth, pages are only saved, not scanned)"},
    {"save-types", 0, VALUE_TEXT, "LIST", NULL, set_save_types, AT(save_types), 0, 0,
     "comma-separated media types such as text/html,image/*",
     "save only bodies of these media types (comma-separated; image/* for every image)"},
    {"flat", 0, VALUE_NONE, NULL, NULL, set_flag, AT(flat), 1, 0, NULL,
     "save every body directly in DIR under the last segment of its URL, x.1.png and so "
     "on when a name is taken"},
    {"manifest", 0, VALUE_FILE, "FILE", NULL, set_nonempty, AT(manifest), 0, 0, "a file name",
     "write a JSON object a line to FILE for each body saved: url, final_url, path, "
     "bytes, type, sha256"},

    HEADING("Messages"),
    {"verbose", 'v', VALUE_NONE, NULL, NULL, set_verbosity, 0, 1, 0, NULL,
     "a line per URL fetched"},
    {"quiet", 'q', VALUE_NONE, NULL, NULL, set_verbosity, 0, -1, 0, NULL,
     "only fatal errors (failures still go to --failures)"},
    {"progress", 0, VALUE_NONE, NULL, NULL, set_flag, AT(progress), 1, 0, NULL,
     "a status line on stderr, even when it is not a terminal (default: only on a "
     "terminal)"},
    {"no-progress", 0, VALUE_NONE, NULL, NULL, set_flag, AT(progress), 0, 0, NULL,
     "no status line"},
    {"completion", 0, VALUE_WORDS, "SHELL", "bash zsh fish", ask_completion, 0, 0, 0, "bash, zsh or fish",
     "print a completion script for SHELL"},
    {"help", 'h', VALUE_NONE, NULL, NULL, ask_help, 0, 0, 0, NULL, "this help"},
    {"version", 'V', VALUE_NONE, NULL, NULL, ask_version, 0, 0, 0, NULL, "print the version"},
};

#define NTABLE (sizeof table / sizeof table[0])

/* ---- finding a row ---- */

static const struct option_def *by_letter(char c)
{
    for (size_t i = 0; i < NTABLE; i++)
        if (table[i].name != NULL && table[i].letter == c && c != 0)
            return &table[i];
    return NULL;
}

/* Edit distance with transpositions (optimal string alignment), for suggestions. */
static size_t distance(const char *a, size_t la, const char *b, size_t lb)
{
    enum { MAX = 64 };
    if (la >= MAX || lb >= MAX)
        return SIZE_MAX;
    size_t d[MAX][MAX];
    for (size_t i = 0; i <= la; i++)
        d[i][0] = i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = j;
    for (size_t i = 1; i <= la; i++) {
        for (size_t j = 1; j <= lb; j++) {
            size_t cost = a[i - 1] != b[j - 1];
            size_t best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best)
                best = d[i][j - 1] + 1;
            if (d[i - 1][j - 1] + cost < best)
                best = d[i - 1][j - 1] + cost;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                d[i - 2][j - 2] + 1 < best)
                best = d[i - 2][j - 2] + 1;
            d[i][j] = best;
        }
    }
    return d[la][lb];
}

/* The nearest long option to a misspelt one, or NULL when none is near enough. */
static const struct option_def *nearest(const char *name, size_t len)
{
    const struct option_def *best = NULL;
    size_t best_d = len <= 4 ? 1 : len <= 8 ? 2 : 3;
    for (size_t i = 0; i < NTABLE; i++) {
        if (table[i].name == NULL)
            continue;
        size_t d = distance(name, len, table[i].name, strlen(table[i].name));
        if (d <= best_d && (best == NULL || d < best_d)) {
            best = &table[i];
            best_d = d;
        }
    }
    return best;
}

/* An exact long name, else an unambiguous prefix of one, as getopt_long takes them. */
static int by_name(struct parse *p, const char *name, size_t len, const char *dashes,
                   const struct option_def **out)
{
    const struct option_def *found = NULL;
    size_t matches = 0;
    for (size_t i = 0; i < NTABLE; i++) {
        const char *n = table[i].name;
        if (n == NULL || strncmp(n, name, len) != 0)
            continue;
        if (n[len] == '\0') {
            *out = &table[i];
            return 0;
        }
        found = &table[i];
        matches++;
    }
    if (matches == 1 && len > 0) {
        *out = found;
        return 0;
    }
    if (matches > 1 && len > 0)
        return fail(p, "option '%s%.*s' is ambiguous", dashes, (int)len, name);
    const struct option_def *near = nearest(name, len);
    if (near != NULL)
        return fail(p, "unknown option '%s%.*s' (did you mean '%s%s'?)", dashes, (int)len, name,
                    dashes, near->name);
    return fail(p, "unknown option '%s%.*s'", dashes, (int)len, name);
}

static int apply(struct parse *p, const struct option_def *d, const char *val)
{
    if (d->kind == VALUE_NONE && val != NULL)
        return fail(p, "option '%s' takes no value", p->spelled);
    if (d->kind != VALUE_NONE && val == NULL)
        return fail(p, "option '%s' needs a value", p->spelled);
    return d->set(p, d, val);
}

/* ---- the command line ---- */

static int positional(struct parse *p, char *arg)
{
    if (is_web_url(arg))
        return append_to(p, &p->o->urls, &p->o->nurls, arg);
    char **grown = realloc(p->o->inputs, (p->o->ninputs + 1) * sizeof *grown);
    if (grown == NULL)
        return no_memory(p);
    p->o->inputs = grown;
    p->o->inputs[p->o->ninputs++] = arg;
    return 0;
}

int options_apply_argv(struct options *o, int argc, char **argv, char *err, size_t errlen)
{
    struct parse p = {.o = o, .err = err, .errlen = errlen};
    int only_files = 0;
    char spelled[3] = "-?";
    for (int i = 1; i < argc; i++) {
        char *a = argv[i];
        int rc;
        if (only_files || a[0] != '-' || a[1] == '\0') {
            rc = positional(&p, a);
        } else if (strcmp(a, "--") == 0) {
            only_files = 1;
            continue;
        } else if (a[1] == '-') {
            const char *name = a + 2;
            const char *eq = strchr(name, '=');
            size_t len = eq ? (size_t)(eq - name) : strlen(name);
            const struct option_def *d = NULL;
            if (i == 1 && strcmp(a, "--no-config") == 0)
                continue; /* main has already acted on it */
            if ((rc = by_name(&p, name, len, "--", &d)) != 0)
                return rc;
            char full[80];
            snprintf(full, sizeof full, "--%s", d->name);
            p.spelled = full;
            const char *val = eq ? eq + 1 : NULL;
            if (val == NULL && d->kind != VALUE_NONE && i + 1 < argc)
                val = argv[++i];
            rc = apply(&p, d, val);
        } else {
            rc = 0;
            for (size_t j = 1; a[j] != '\0' && rc == 0; j++) {
                const struct option_def *d = by_letter(a[j]);
                if (d == NULL)
                    return fail(&p, "unknown option '-%c'", a[j]);
                spelled[1] = a[j];
                p.spelled = spelled;
                const char *val = NULL;
                if (d->kind != VALUE_NONE) {
                    if (a[j + 1] != '\0')
                        val = a + j + 1;
                    else if (i + 1 < argc)
                        val = argv[++i];
                    rc = apply(&p, d, val);
                    break;
                }
                rc = apply(&p, d, NULL);
            }
        }
        if (rc != 0)
            return rc;
    }
    return OPTIONS_RUN;
}

/* ---- configuration files ---- */

/* Reads a double-quoted value at *s (past the quote) into out, with curl's escapes. */
static int unquote(char **s, char *out)
{
    char *r = *s;
    for (;;) {
        char c = *r++;
        if (c == '\0')
            return -1;
        if (c == '"')
            break;
        if (c == '\\' && *r != '\0') {
            c = *r++;
            switch (c) {
            case 't': c = '\t'; break;
            case 'n': c = '\n'; break;
            case 'r': c = '\r'; break;
            case 'v': c = '\v'; break;
            default: break;
            }
        }
        *out++ = c;
    }
    *out = '\0';
    *s = r;
    return 0;
}

/* One line of a configuration file: "name value", "name = value", "--name: value",
 * "-x value", or a switch alone. */
static int config_line(struct parse *p, char *line)
{
    char *s = line + strspn(line, " \t");
    s[strcspn(s, "\r\n")] = '\0';
    if (*s == '\0' || *s == '#')
        return 0;
    char *name = s;
    size_t len = strcspn(s, " \t=:");
    s += len;
    s += strspn(s, " \t");
    if (*s == '=' || *s == ':') {
        s++;
        s += strspn(s, " \t");
    }
    name[len] = '\0'; /* only now: it may have been the separator just passed */
    char *val = NULL;
    if (*s == '"') {
        s++;
        val = s;
        if (unquote(&s, val) != 0)
            return fail(p, "a value in double quotes has no closing quote");
    } else if (*s != '\0' && *s != '#') {
        val = s;
        s += strcspn(s, " \t");
        if (*s != '\0')
            *s++ = '\0';
    }
    s += strspn(s, " \t");
    if (*s != '\0' && *s != '#')
        return fail(p, "unexpected '%s' after the value of '%s' (put a value with spaces in "
                       "double quotes)", s, name);

    const struct option_def *d = NULL;
    char spelled[80];
    int rc;
    if (name[0] == '-' && name[1] != '-') {
        if (name[1] == '\0' || name[2] != '\0' || (d = by_letter(name[1])) == NULL)
            return fail(p, "unknown option '%s'", name);
    } else {
        const char *bare = name[0] == '-' ? name + 2 : name;
        if (strcmp(bare, "no-config") == 0)
            return fail(p, "--no-config must be the first argument on the command line");
        /* A file spells out the whole name: an abbreviation there would break when an
         * option is added. */
        for (size_t i = 0; i < NTABLE && d == NULL; i++)
            if (table[i].name != NULL && strcmp(table[i].name, bare) == 0)
                d = &table[i];
        if (d == NULL) {
            const struct option_def *near = nearest(bare, strlen(bare));
            if (near != NULL)
                return fail(p, "unknown option '%s' (did you mean '%s'?)", bare, near->name);
            return fail(p, "unknown option '%s'", bare);
        }
    }
    snprintf(spelled, sizeof spelled, "--%s", d->name);
    p->spelled = spelled;
    rc = apply(p, d, val);
    return rc;
}

#define CONFIG_DEPTH_MAX 8

int options_apply_file(struct options *o, const char *path, int missing_ok, char *err,
                       size_t errlen)
{
    struct parse p = {.o = o, .err = err, .errlen = errlen};
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
    if (f == NULL) {
        if (missing_ok && errno == ENOENT)
            return OPTIONS_RUN;
        snprintf(err, errlen, "cannot read the configuration file %s: %s", path, strerror(errno));
        return OPTIONS_USAGE;
    }
    if (o->config_depth >= CONFIG_DEPTH_MAX) {
        if (f != stdin)
            fclose(f);
        snprintf(err, errlen, "%s: configuration files include each other too deeply", path);
        return OPTIONS_USAGE;
    }
    o->config_depth++;
    p.file = strcmp(path, "-") == 0 ? "standard input" : path;
    char *line = NULL;
    size_t cap = 0;
    int rc = OPTIONS_RUN;
    while (rc == OPTIONS_RUN && getline(&line, &cap, f) >= 0) {
        p.line++;
        if (strlen(line) > 0 && memchr(line, '\0', strlen(line)) != NULL)
            continue;
        rc = config_line(&p, line);
    }
    if (rc == OPTIONS_RUN && ferror(f))
        rc = fail(&p, "read error: %s", strerror(errno));
    free(line);
    o->config_depth--;
    if (f != stdin)
        fclose(f);
    return rc;
}

static int read_config(struct parse *p, const struct option_def *d, const char *val)
{
    if (val[0] == '\0')
        return fail(p, "--%s needs a file name", d->name);
    /* A nested file reports its own lines; keep ours for a failure to open it. */
    char inner[512];
    int rc = options_apply_file(p->o, val, 0, inner, sizeof inner);
    if (rc == OPTIONS_USAGE && p->file != NULL && strncmp(inner, "cannot read", 11) == 0)
        return fail(p, "%s", inner);
    if (rc != OPTIONS_RUN)
        snprintf(p->err, p->errlen, "%s", inner);
    return rc;
}

int options_default_config(char *out, size_t cap)
{
    const char *xdg = getenv("XDG_CONFIG_HOME");
    const char *home = getenv("HOME");
    int n;
    if (xdg != NULL && xdg[0] == '/')
        n = snprintf(out, cap, "%s/areq/areqrc", xdg);
    else if (home != NULL && home[0] != '\0')
        n = snprintf(out, cap, "%s/.config/areq/areqrc", home);
    else
        return -1;
    return n > 0 && (size_t)n < cap ? 0 : -1;
}

/* ---- the whole parse ---- */

void options_init(struct options *o)
{
    *o = (struct options){
        .concurrency = 100,
        .max_redirs = 10,
        .timeout_s = 30,
        .connect_timeout_s = 10,
        .retries = 2,
        .max_size = 10ULL << 20,
        .output = "foundurls.txt",
        .header = 1,
        .progress = -1,
        .scope = OPTIONS_SCOPE_HOST,
        .robots = 1,
        .per_host = -1,
        .max_queue = 128ULL << 20,
    };
}

int options_finish_parse(struct options *o, char *err, size_t errlen)
{
    static char default_input[] = "urls.txt";
    if (o->save_dir == NULL && (o->flat || o->save_types != NULL || o->manifest != NULL)) {
        snprintf(err, errlen, "%s needs --save DIR",
                 o->flat ? "--flat" : o->save_types != NULL ? "--save-types" : "--manifest");
        return OPTIONS_USAGE;
    }
    if (o->ninputs == 0 && o->nurls == 0) {
        o->inputs = malloc(sizeof *o->inputs);
        if (o->inputs == NULL) {
            snprintf(err, errlen, "out of memory");
            return OPTIONS_NO_MEMORY;
        }
        o->inputs[0] = default_input;
        o->ninputs = 1;
    }
    return OPTIONS_RUN;
}

int options_parse(int argc, char **argv, struct options *o, char *err, size_t errlen)
{
    options_init(o);
    int rc = options_apply_argv(o, argc, argv, err, errlen);
    if (rc != OPTIONS_RUN)
        return rc;
    return options_finish_parse(o, err, errlen);
}

void options_finish(struct options *o)
{
    free(o->inputs);
    o->inputs = NULL;
    o->ninputs = 0;
    free(o->urls);
    o->urls = NULL;
    o->nurls = 0;
    free(o->headers);
    o->headers = NULL;
    o->nheaders = 0;
    free(o->include);
    o->include = NULL;
    o->ninclude = 0;
    free(o->exclude);
    o->exclude = NULL;
    o->nexclude = 0;
    free(o->resolve);
    o->resolve = NULL;
    o->nresolve = 0;
    free(o->cookies);
    o->cookies = NULL;
    o->ncookies = 0;
    for (size_t i = 0; i < o->nowned; i++)
        free(o->owned[i]);
    free(o->owned);
    o->owned = NULL;
    o->nowned = 0;
}

/* ---- help ---- */

enum { HELP_WIDTH = 79, HELP_COLUMN = 29 };

/* "  -c, --concurrency N" */
static void option_synopsis(const struct option_def *d, char *out, size_t cap)
{
    char sh[8] = "    ";
    if (d->letter != 0)
        snprintf(sh, sizeof sh, "-%c, ", d->letter);
    snprintf(out, cap, "  %s--%s%s%s", sh, d->name, d->meta ? " " : "", d->meta ? d->meta : "");
}

static void wrap(FILE *out, const char *text, size_t column, size_t width)
{
    size_t at = column;
    const char *s = text;
    int first = 1;
    while (*s != '\0') {
        size_t word = strcspn(s, " ");
        if (!first && at + 1 + word > width) {
            fprintf(out, "\n%*s", (int)column, "");
            at = column;
            first = 1;
        }
        if (!first) {
            fputc(' ', out);
            at++;
        }
        fwrite(s, 1, word, out);
        at += word;
        first = 0;
        s += word;
        s += strspn(s, " ");
    }
    fputc('\n', out);
}

void options_print_help(FILE *out)
{
    fprintf(out,
            "Usage: areq [OPTIONS] [URL|FILE...]\n"
            "Fetch each URL given (an argument starting with http:// or https://) and every\n"
            "URL listed in each FILE (default urls.txt; - is standard input), find the links\n"
            "in each HTML page, and write source<TAB>target pairs.\n");
    for (size_t i = 0; i < NTABLE; i++) {
        const struct option_def *d = &table[i];
        if (d->name == NULL) {
            fprintf(out, "\n%s:\n", d->help);
            continue;
        }
        char syn[96];
        option_synopsis(d, syn, sizeof syn);
        size_t len = strlen(syn);
        if (len + 2 > HELP_COLUMN)
            fprintf(out, "%s\n%*s", syn, HELP_COLUMN, "");
        else
            fprintf(out, "%s%*s", syn, (int)(HELP_COLUMN - len), "");
        wrap(out, d->help, HELP_COLUMN, HELP_WIDTH);
    }
    fprintf(out, "\n"
                 "Options are also read from $XDG_CONFIG_HOME/areq/areqrc (else\n"
                 "~/.config/areq/areqrc) first, unless --no-config comes first.\n"
                 "\n"
                 "Exit status: 0 all URLs done, 1 some URL failed, 2 usage or input error,\n"
                 "3 output error, 130 interrupted, 143 terminated.\n");
}

/* ---- completions ---- */

/* A short description for a completion menu: the help up to its first pause, without
 * the characters the shells' syntax would take for its own. */
static void brief(const char *help, char *out, size_t cap)
{
    size_t n = strcspn(help, "(;:");
    size_t o = 0;
    for (size_t i = 0; i < n && o + 1 < cap; i++) {
        char c = help[i];
        if (strchr("[]'\"\\`$", c) != NULL)
            continue;
        out[o++] = c;
    }
    while (o > 0 && out[o - 1] == ' ')
        o--;
    out[o] = '\0';
}

static void print_bash(FILE *out)
{
    fprintf(out, "# bash completion for areq; generated by 'areq --completion bash'\n"
                 "_areq()\n{\n"
                 "    local cur=${COMP_WORDS[COMP_CWORD]} prev=\n"
                 "    (( COMP_CWORD > 0 )) && prev=${COMP_WORDS[COMP_CWORD-1]}\n"
                 "    case $prev in\n");
    for (int pass = 0; pass < 4; pass++) {
        enum value_kind want[] = {VALUE_FILE, VALUE_DIR, VALUE_WORDS, VALUE_TEXT};
        for (size_t i = 0; i < NTABLE; i++) {
            const struct option_def *d = &table[i];
            if (d->name == NULL || d->kind != want[pass])
                continue;
            fprintf(out, "        ");
            if (d->letter != 0)
                fprintf(out, "-%c|", d->letter);
            fprintf(out, "--%s)\n            ", d->name);
            switch (d->kind) {
            case VALUE_FILE: fprintf(out, "COMPREPLY=($(compgen -f -- \"$cur\"))"); break;
            case VALUE_DIR: fprintf(out, "COMPREPLY=($(compgen -d -- \"$cur\"))"); break;
            case VALUE_WORDS:
                fprintf(out, "COMPREPLY=($(compgen -W '%s' -- \"$cur\"))", d->words);
                break;
            default: fprintf(out, "COMPREPLY=()"); break;
            }
            fprintf(out, "\n            return ;;\n");
        }
    }
    fprintf(out, "    esac\n"
                 "    if [[ $cur == -* ]]; then\n"
                 "        COMPREPLY=($(compgen -W '");
    int first = 1;
    for (size_t i = 0; i < NTABLE; i++) {
        if (table[i].name == NULL)
            continue;
        fprintf(out, "%s--%s", first ? "" : " ", table[i].name);
        first = 0;
        if (table[i].letter != 0)
            fprintf(out, " -%c", table[i].letter);
    }
    fprintf(out, "' -- \"$cur\"))\n"
                 "    else\n"
                 "        COMPREPLY=($(compgen -f -- \"$cur\"))\n"
                 "    fi\n"
                 "}\n"
                 "complete -o filenames -F _areq areq\n");
}

static void print_zsh(FILE *out)
{
    fprintf(out, "#compdef areq\n"
                 "# zsh completion for areq; generated by 'areq --completion zsh'\n"
                 "_arguments -s -S \\\n");
    for (size_t i = 0; i < NTABLE; i++) {
        const struct option_def *d = &table[i];
        if (d->name == NULL)
            continue;
        char desc[96];
        brief(d->help, desc, sizeof desc);
        const char *action = "";
        char words[64] = "";
        switch (d->kind) {
        case VALUE_FILE: action = "_files"; break;
        case VALUE_DIR: action = "_files -/"; break;
        case VALUE_WORDS:
            snprintf(words, sizeof words, "(%s)", d->words);
            action = words;
            break;
        default: action = " "; break;
        }
        const char *meta = d->meta ? d->meta : "";
        char metaclean[32];
        brief(meta, metaclean, sizeof metaclean);
        if (d->letter != 0 && d->kind != VALUE_NONE)
            fprintf(out, "  '*'{-%c+,--%s=}'[%s]:%s:%s' \\\n", d->letter, d->name, desc,
                    metaclean, action);
        else if (d->letter != 0)
            fprintf(out, "  '*'{-%c,--%s}'[%s]' \\\n", d->letter, d->name, desc);
        else if (d->kind != VALUE_NONE)
            fprintf(out, "  '*--%s=[%s]:%s:%s' \\\n", d->name, desc, metaclean, action);
        else
            fprintf(out, "  '*--%s[%s]' \\\n", d->name, desc);
    }
    fprintf(out, "  '*:URL or list file:_files'\n");
}

static void print_fish(FILE *out)
{
    fprintf(out, "# fish completion for areq; generated by 'areq --completion fish'\n");
    for (size_t i = 0; i < NTABLE; i++) {
        const struct option_def *d = &table[i];
        if (d->name == NULL)
            continue;
        char desc[96];
        brief(d->help, desc, sizeof desc);
        fprintf(out, "complete -c areq");
        if (d->letter != 0)
            fprintf(out, " -s %c", d->letter);
        fprintf(out, " -l %s", d->name);
        switch (d->kind) {
        case VALUE_FILE: fprintf(out, " -r -F"); break;
        case VALUE_DIR: fprintf(out, " -x -a '(__fish_complete_directories)'"); break;
        case VALUE_WORDS: fprintf(out, " -x -a '%s'", d->words); break;
        case VALUE_TEXT: fprintf(out, " -x"); break;
        case VALUE_NONE: break;
        }
        fprintf(out, " -d '%s'\n", desc);
    }
}

int options_print_completion(FILE *out, const char *shell)
{
    if (strcmp(shell, "bash") == 0)
        print_bash(out);
    else if (strcmp(shell, "zsh") == 0)
        print_zsh(out);
    else if (strcmp(shell, "fish") == 0)
        print_fish(out);
    else
        return -1;
    return 0;
}

/* ---- hints ---- */

void options_url_hint(const char *arg, char *out, size_t cap)
{
    out[0] = '\0';
    /* host[:port][/path]: labels of letters, digits and hyphens, at least two, the last
     * of letters (a top-level domain), and not a usual extension of a list file. */
    size_t host = strcspn(arg, "/:?#");
    if (host == 0 || host > 253)
        return;
    size_t labels = 1, last = 0;
    for (size_t i = 0; i < host; i++) {
        char c = arg[i];
        if (c == '.') {
            if (i == 0 || arg[i - 1] == '.')
                return;
            labels++;
            last = i + 1;
        } else if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                     (c >= '0' && c <= '9') || c == '-')) {
            return;
        }
    }
    if (labels < 2 || last >= host)
        return;
    for (size_t i = last; i < host; i++)
        if (!((arg[i] >= 'a' && arg[i] <= 'z') || (arg[i] >= 'A' && arg[i] <= 'Z')))
            return;
    static const char *const list_ext[] = {"txt", "lst", "list", "csv", "tsv", "urls", "in",
                                           "dat", "log", "json", "jsonl", "md", "out", "conf"};
    if (arg[host] == '\0')
        for (size_t i = 0; i < sizeof list_ext / sizeof list_ext[0]; i++)
            if (strcasecmp(arg + last, list_ext[i]) == 0)
                return;
    snprintf(out, cap, " (to fetch it as a URL, write https://%s)", arg);
}
