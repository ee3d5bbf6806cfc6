#include "options.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

enum {
    OPT_MAX_REDIRS = 256,
    OPT_CONNECT_TIMEOUT,
    OPT_NO_HEADER,
    OPT_ALL_SCHEMES,
    OPT_KEEP_FRAGMENTS,
    OPT_RETRIES,
    OPT_MAX_SIZE,
    OPT_PROGRESS,
    OPT_NO_PROGRESS,
    OPT_SCOPE,
    OPT_INCLUDE,
    OPT_EXCLUDE,
    OPT_MAX_PAGES,
    OPT_NO_ROBOTS,
    OPT_PER_HOST,
    OPT_DELAY,
};

static const char short_options[] = ":c:t:o:P:f:aA:H:x:kd:vqhV";

static const struct option long_options[] = {
    {"concurrency", required_argument, NULL, 'c'},
    {"max-redirs", required_argument, NULL, OPT_MAX_REDIRS},
    {"timeout", required_argument, NULL, 't'},
    {"connect-timeout", required_argument, NULL, OPT_CONNECT_TIMEOUT},
    {"output", required_argument, NULL, 'o'},
    {"no-header", no_argument, NULL, OPT_NO_HEADER},
    {"all-schemes", no_argument, NULL, OPT_ALL_SCHEMES},
    {"keep-fragments", no_argument, NULL, OPT_KEEP_FRAGMENTS},
    {"pattern", required_argument, NULL, 'P'},
    {"format", required_argument, NULL, 'f'},
    {"append", no_argument, NULL, 'a'},
    {"user-agent", required_argument, NULL, 'A'},
    {"header", required_argument, NULL, 'H'},
    {"proxy", required_argument, NULL, 'x'},
    {"insecure", no_argument, NULL, 'k'},
    {"progress", no_argument, NULL, OPT_PROGRESS},
    {"no-progress", no_argument, NULL, OPT_NO_PROGRESS},
    {"depth", required_argument, NULL, 'd'},
    {"scope", required_argument, NULL, OPT_SCOPE},
    {"include", required_argument, NULL, OPT_INCLUDE},
    {"exclude", required_argument, NULL, OPT_EXCLUDE},
    {"max-pages", required_argument, NULL, OPT_MAX_PAGES},
    {"no-robots", no_argument, NULL, OPT_NO_ROBOTS},
    {"per-host", required_argument, NULL, OPT_PER_HOST},
    {"delay", required_argument, NULL, OPT_DELAY},
    {"retries", required_argument, NULL, OPT_RETRIES},
    {"max-size", required_argument, NULL, OPT_MAX_SIZE},
    {"verbose", no_argument, NULL, 'v'},
    {"quiet", no_argument, NULL, 'q'},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {NULL, 0, NULL, 0},
};

void options_print_help(void)
{
    printf("Usage: areq [OPTIONS] [FILE...]\n"
           "Fetch every URL listed in FILE (default urls.txt; - is standard input), find the\n"
           "links in each HTML page, and write source<TAB>target pairs.\n"
           "\n"
           "Fetching:\n"
           "  -c, --concurrency N        transfers in flight at most (default 100, 1-100000)\n"
           "  -t, --timeout SECONDS      limit for a whole transfer (default 30; 0 = none)\n"
           "      --connect-timeout SECONDS\n"
           "                             limit for connecting (default 10)\n"
           "      --max-redirs N         redirects followed at most (default 10)\n"
           "      --retries N            attempts again after a transient failure: refused,\n"
           "                             reset, timed out, 408, 429, 5xx (default 2)\n"
           "      --max-size SIZE        largest body, decoded; k, M, G suffixes (default 10M;\n"
           "                             0 = no limit)\n"
           "\n"
           "Recursion:\n"
           "  -d, --depth N              follow links N hops from the listed URLs (default 0)\n"
           "      --scope SCOPE          which links are followed: host (default: the host\n"
           "                             the chain started from), domain (its registrable\n"
           "                             domain) or any\n"
           "      --include REGEX        follow only URLs matching one such pcre2 pattern\n"
           "      --exclude REGEX        never follow URLs matching it; both repeatable\n"
           "      --max-pages N          fetch N pages at most (default: no limit)\n"
           "      --no-robots            ignore robots.txt (obeyed when recursing)\n"
           "      --per-host N           transfers to one host at once (default 8 when\n"
           "                             recursing, else no limit)\n"
           "      --delay SECONDS        between requests to one host (default 0)\n"
           "\n"
           "HTTP:\n"
           "  -A, --user-agent TEXT      User-Agent header (default areq/" AREQ_VERSION ")\n"
           "  -H, --header 'NAME: VALUE' an extra request header; repeatable\n"
           "  -x, --proxy URL            proxy for every transfer (default: the http_proxy,\n"
           "                             https_proxy and no_proxy variables)\n"
           "  -k, --insecure             do not verify TLS certificates and host names\n"
           "\n"
           "Links:\n"
           "  -P, --pattern REGEX        find links with this pcre2 pattern instead of the\n"
           "                             built-in HTML scan; its first group is the link\n"
           "      --all-schemes          also write targets such as mailto: and javascript:\n"
           "      --keep-fragments       keep #fragments, and links to a fragment of the page\n"
           "\n"
           "Output:\n"
           "  -o, --output FILE          where pairs go (default foundurls.txt; - is stdout)\n"
           "  -f, --format FORMAT        tsv, csv (RFC 4180) or jsonl (default tsv)\n"
           "  -a, --append               add to FILE instead of replacing it (a header only\n"
           "                             when it is new or empty)\n"
           "      --no-header            omit the header line\n"
           "\n"
           "Messages:\n"
           "  -v, --verbose              a line per URL fetched\n"
           "  -q, --quiet                only fatal errors\n"
           "      --progress             a status line on stderr, even when it is not a\n"
           "                             terminal (default: only on a terminal)\n"
           "      --no-progress          no status line\n"
           "  -h, --help                 this help\n"
           "  -V, --version              print the version\n"
           "\n"
           "Exit status: 0 all URLs done, 1 some URL failed, 2 usage or input error,\n"
           "3 output error, 130 interrupted, 143 terminated.\n");
}

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

int options_parse(int argc, char **argv, struct options *o, char *err, size_t errlen)
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
        .robots = 1,
        .per_host = -1,
    };
    opterr = 0;
    /* 0, not 1: glibc then forgets the place inside a cluster such as "-hv" where an
     * earlier parse stopped, which it would otherwise go on reading from. */
    optind = 0;
    int ch;
    long n;
    while ((ch = getopt_long(argc, argv, short_options, long_options, NULL)) != -1) {
        switch (ch) {
        case 'c':
            if (parse_count(optarg, 1, 100000, &n) != 0) {
                snprintf(err, errlen, "invalid --concurrency '%s' (a whole number from 1 to 100000)", optarg);
                return OPTIONS_USAGE;
            }
            o->concurrency = (size_t)n;
            break;
        case OPT_MAX_REDIRS:
            if (parse_count(optarg, 0, 1000, &n) != 0) {
                snprintf(err, errlen, "invalid --max-redirs '%s' (a whole number from 0 to 1000)", optarg);
                return OPTIONS_USAGE;
            }
            o->max_redirs = n;
            break;
        case 't':
            if (parse_seconds(optarg, &o->timeout_s) != 0) {
                snprintf(err, errlen, "invalid --timeout '%s' (seconds, e.g. 30 or 0.5)", optarg);
                return OPTIONS_USAGE;
            }
            break;
        case OPT_CONNECT_TIMEOUT:
            if (parse_seconds(optarg, &o->connect_timeout_s) != 0) {
                snprintf(err, errlen, "invalid --connect-timeout '%s' (seconds, e.g. 10 or 0.5)", optarg);
                return OPTIONS_USAGE;
            }
            break;
        case 'o':
            if (optarg[0] == '\0') {
                snprintf(err, errlen, "--output needs a file name");
                return OPTIONS_USAGE;
            }
            o->output = optarg;
            break;
        case OPT_NO_HEADER:
            o->header = 0;
            break;
        case 'f':
            if (format_parse(optarg, &o->format) != 0) {
                snprintf(err, errlen, "invalid --format '%s' (tsv, csv or jsonl)", optarg);
                return OPTIONS_USAGE;
            }
            break;
        case 'a':
            o->append = 1;
            break;
        case 'A':
            /* A line break would end the header and start another one of the user's. */
            if (strpbrk(optarg, "\r\n") != NULL) {
                snprintf(err, errlen, "invalid --user-agent: it holds a line break");
                return OPTIONS_USAGE;
            }
            o->user_agent = optarg;
            break;
        case 'H': {
            /* curl's forms: "Name: value", or "Name;" for a header with an empty value. */
            size_t name = strcspn(optarg, ":;");
            if (name == 0 || optarg[name] == '\0' || strpbrk(optarg, "\r\n") != NULL ||
                (optarg[name] == ';' && optarg[name + 1] != '\0')) {
                snprintf(err, errlen, "invalid --header '%s' (expected 'Name: value')", optarg);
                return OPTIONS_USAGE;
            }
            const char **h = realloc(o->headers, (o->nheaders + 1) * sizeof *h);
            if (h == NULL) {
                snprintf(err, errlen, "out of memory");
                return OPTIONS_USAGE;
            }
            o->headers = h;
            o->headers[o->nheaders++] = optarg;
            break;
        }
        case 'x':
            o->proxy = optarg;
            break;
        case 'k':
            o->insecure = 1;
            break;
        case OPT_PROGRESS:
            o->progress = 1;
            break;
        case OPT_NO_PROGRESS:
            o->progress = 0;
            break;
        case 'd':
            if (parse_count(optarg, 0, 1000, &n) != 0) {
                snprintf(err, errlen, "invalid --depth '%s' (a whole number from 0 to 1000)", optarg);
                return OPTIONS_USAGE;
            }
            o->depth = n;
            break;
        case OPT_SCOPE: {
            static const char *const scopes[] = {"host", "domain", "any"};
            int found = -1;
            for (int i = 0; i < 3; i++)
                if (strcmp(optarg, scopes[i]) == 0)
                    found = i;
            if (found < 0) {
                snprintf(err, errlen, "invalid --scope '%s' (host, domain or any)", optarg);
                return OPTIONS_USAGE;
            }
            o->scope = found;
            break;
        }
        case OPT_INCLUDE:
        case OPT_EXCLUDE: {
            const char ***list = ch == OPT_INCLUDE ? &o->include : &o->exclude;
            size_t *count = ch == OPT_INCLUDE ? &o->ninclude : &o->nexclude;
            if (optarg[0] == '\0') {
                snprintf(err, errlen, "--%s needs a regular expression",
                         ch == OPT_INCLUDE ? "include" : "exclude");
                return OPTIONS_USAGE;
            }
            const char **grown = realloc(*list, (*count + 1) * sizeof *grown);
            if (grown == NULL) {
                snprintf(err, errlen, "out of memory");
                return OPTIONS_USAGE;
            }
            *list = grown;
            (*list)[(*count)++] = optarg;
            break;
        }
        case OPT_MAX_PAGES:
            if (parse_count(optarg, 1, 1000000000, &n) != 0) {
                snprintf(err, errlen, "invalid --max-pages '%s' (a whole number from 1)", optarg);
                return OPTIONS_USAGE;
            }
            o->max_pages = n;
            break;
        case OPT_NO_ROBOTS:
            o->robots = 0;
            break;
        case OPT_PER_HOST:
            if (parse_count(optarg, 1, 100000, &n) != 0) {
                snprintf(err, errlen, "invalid --per-host '%s' (a whole number from 1 to 100000)", optarg);
                return OPTIONS_USAGE;
            }
            o->per_host = n;
            break;
        case OPT_DELAY:
            if (parse_seconds(optarg, &o->delay_s) != 0) {
                snprintf(err, errlen, "invalid --delay '%s' (seconds, e.g. 1 or 0.25)", optarg);
                return OPTIONS_USAGE;
            }
            break;
        case OPT_RETRIES:
            if (parse_count(optarg, 0, 100, &n) != 0) {
                snprintf(err, errlen, "invalid --retries '%s' (a whole number from 0 to 100)", optarg);
                return OPTIONS_USAGE;
            }
            o->retries = n;
            break;
        case OPT_MAX_SIZE:
            if (parse_size(optarg, &o->max_size) != 0) {
                snprintf(err, errlen, "invalid --max-size '%s' (bytes, or with k, M or G, up to 1024G)", optarg);
                return OPTIONS_USAGE;
            }
            break;
        case OPT_ALL_SCHEMES:
            o->all_schemes = 1;
            break;
        case OPT_KEEP_FRAGMENTS:
            o->keep_fragments = 1;
            break;
        case 'P':
            if (optarg[0] == '\0') {
                snprintf(err, errlen, "--pattern needs a regular expression");
                return OPTIONS_USAGE;
            }
            o->pattern = optarg;
            break;
        case 'v':
            o->verbosity = 1;
            break;
        case 'q':
            o->verbosity = -1;
            break;
        case 'h':
            return OPTIONS_HELP;
        case 'V':
            return OPTIONS_VERSION;
        case ':':
            snprintf(err, errlen, "option '%s' needs a value", argv[optind - 1]);
            return OPTIONS_USAGE;
        default:
            /* Inside a cluster such as "-xv", optind has not moved past it yet. */
            if (optopt > 0 && optopt < 256 && (optopt == ':' || !strchr(short_options, optopt)))
                snprintf(err, errlen, "unknown option '-%c'", optopt);
            else
                snprintf(err, errlen, "unknown option '%s'", argv[optind - 1]);
            return OPTIONS_USAGE;
        }
    }
    static char *default_input[] = {"urls.txt"};
    if (optind < argc) {
        o->ninputs = (size_t)(argc - optind);
        o->inputs = malloc(o->ninputs * sizeof *o->inputs);
        if (o->inputs == NULL) {
            snprintf(err, errlen, "out of memory");
            return OPTIONS_USAGE;
        }
        memcpy(o->inputs, argv + optind, o->ninputs * sizeof *o->inputs);
    } else {
        o->ninputs = 1;
        o->inputs = malloc(sizeof *o->inputs);
        if (o->inputs == NULL) {
            snprintf(err, errlen, "out of memory");
            return OPTIONS_USAGE;
        }
        o->inputs[0] = default_input[0];
    }
    return OPTIONS_RUN;
}

void options_finish(struct options *o)
{
    free(o->inputs);
    o->inputs = NULL;
    free(o->headers);
    o->headers = NULL;
    o->nheaders = 0;
    free(o->include);
    o->include = NULL;
    o->ninclude = 0;
    free(o->exclude);
    o->exclude = NULL;
    o->nexclude = 0;
}
