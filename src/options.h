/* options.h: the command line.
 *
 * Ownership: options_parse() fills a caller-owned struct whose strings point into argv
 * (or are static defaults); options_finish() frees the list of inputs it allocates. */
#ifndef AREQ_OPTIONS_H
#define AREQ_OPTIONS_H

#include <stddef.h>

#include "format.h"

struct options {
    size_t concurrency;
    long max_redirs;
    double timeout_s;         /* 0 = none */
    double connect_timeout_s;
    long retries;             /* extra attempts after a transient failure */
    unsigned long long max_size; /* bytes of a decoded body; 0 = no cap */
    const char *output;       /* "-" = standard output */
    enum format format;
    int append;               /* add to the output file instead of replacing it */
    int header;
    int all_schemes;          /* keep mailto:, javascript:, ... targets */
    int keep_fragments;       /* keep #fragments and fragment-only links */
    const char *pattern;      /* a pcre2 pattern replacing the built-in extractor, or NULL */
    int verbosity;            /* -1 quiet, 0 normal, 1 verbose */
    const char *user_agent;   /* NULL: areq/VERSION */
    const char **headers;     /* -H values, in order */
    size_t nheaders;
    const char *proxy;        /* NULL: libcurl's usual proxy variables apply */
    int insecure;             /* no TLS certificate or host name checks */
    int progress;             /* -1: when stderr is a terminal; 0 never; 1 always */
    long depth;               /* hops followed from the listed URLs; 0 = none */
    int scope;                /* enum crawl_scope: 0 host, 1 domain, 2 any */
    const char **include;     /* --include patterns, in order */
    size_t ninclude;
    const char **exclude;     /* --exclude patterns */
    size_t nexclude;
    long max_pages;           /* 0 = no limit */
    int robots;               /* obey robots.txt when recursing */
    long per_host;            /* -1: 8 when recursing, else no cap */
    double delay_s;           /* between requests to one host */
    char **inputs;            /* at least one: "urls.txt" when none is named */
    size_t ninputs;
};

enum options_result {
    OPTIONS_RUN = 0,
    OPTIONS_HELP = 1,    /* --help was asked for: print it, exit 0 */
    OPTIONS_VERSION = 2, /* --version */
    OPTIONS_USAGE = -1,  /* bad usage: the message is in err */
};

int options_parse(int argc, char **argv, struct options *o, char *err, size_t errlen);
/* Frees what options_parse allocated; safe after any result of it. */
void options_finish(struct options *o);
void options_print_help(void);

#endif
