/* options.h: the command line and configuration files.
 *
 * Every option is one row of a table in options.c (long name, short form, the value's name,
 * help text, handler): --help, the shell completions and the checks of the README and the
 * man page are all derived from that table, so none of them can drift from the parser.
 *
 * Ownership: options_parse() and options_apply_*() fill a caller-owned struct. Its strings
 * point into argv, or into copies the struct owns (values read from a configuration file),
 * or are static defaults. options_finish() frees everything the struct owns. */
#ifndef AREQ_OPTIONS_H
#define AREQ_OPTIONS_H

#include <stddef.h>
#include <stdio.h>

#include "format.h"

/* --scope. The options keep an enum of their own so that options.h needs no crawl.h; run.c
 * maps each value to crawl's enum crawl_scope with a switch, and options.c each word to a
 * value by name, so that no order is relied on. */
enum options_scope {
    OPTIONS_SCOPE_HOST,   /* the host the chain of links started from (the default) */
    OPTIONS_SCOPE_DOMAIN, /* its registrable domain */
    OPTIONS_SCOPE_ANY,
};

struct options {
    size_t concurrency;
    long max_redirs;
    double timeout_s;         /* 0 = none */
    double connect_timeout_s;
    long speed_limit;         /* bytes a second; a slower transfer ... */
    long speed_time;          /* ... for this many seconds is abandoned; 0 = no such rule */
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
    const char *cacert;       /* CA bundle (PEM); NULL: $CURL_CA_BUNDLE, $SSL_CERT_FILE, system */
    const char *capath;       /* directory of CA certificates; NULL: $SSL_CERT_DIR, system */
    const char **resolve;     /* --resolve HOST:PORT:ADDR[,ADDR...], in order */
    size_t nresolve;
    int ip_version;           /* 0 any, 4 or 6 */
    const char **cookies;     /* -b values: a file to read, or "NAME=VALUE; ..." to send */
    size_t ncookies;
    const char *cookie_jar;   /* -c: where the cookies go at the end, or NULL */
    const char *user;         /* -u USER:PASSWORD, or NULL */
    int netrc;                /* take credentials from ~/.netrc (or netrc_file) */
    const char *netrc_file;
    int progress;             /* -1: when stderr is a terminal; 0 never; 1 always */
    long depth;               /* hops followed from the listed URLs; 0 = none */
    enum options_scope scope;
    const char **include;     /* --include patterns, in order */
    size_t ninclude;
    const char **exclude;     /* --exclude patterns */
    size_t nexclude;
    long max_pages;           /* 0 = no limit */
    unsigned long long max_queue; /* bytes of URLs waiting to be fetched, at most */
    int robots;               /* obey robots.txt when recursing */
    long per_host;            /* -1: 8 when recursing, else no cap */
    double delay_s;           /* between requests to one host */
    const char *failures;     /* --failures FILE: a JSON line per failed URL, or NULL */
    /* Issue 14: memory between runs. */
    const char *state;        /* --state FILE: the crawl-state store, or NULL */
    int fresh;                /* --fresh: do not resume an unfinished run of the store */
    const char *changes;      /* --changes FILE, or NULL */
    double max_age_s;         /* --max-age: pages fetched this recently are not requested; 0 */
    const char *save_dir;     /* --save DIR: every 2xx body written under DIR, or NULL */
    const char *save_types;   /* --save-types: media types saved; NULL: every type */
    int flat;                 /* --flat: every file directly in DIR */
    const char *manifest;     /* --manifest FILE: a JSON line per body saved, or NULL */
    const char **urls;        /* absolute http(s) URLs given as arguments, in order */
    size_t nurls;
    char **inputs;            /* list files; "urls.txt" when neither a list nor a URL is named */
    size_t ninputs;

    /* Private to options.c. */
    char **owned;             /* copies of values read from configuration files */
    size_t nowned;
    const char *completion;   /* --completion SHELL */
    int config_depth;         /* -K inside -K */
};

enum options_result {
    OPTIONS_RUN = 0,
    OPTIONS_HELP = 1,       /* --help was asked for: print it, exit 0 */
    OPTIONS_VERSION = 2,    /* --version */
    OPTIONS_COMPLETION = 3, /* --completion SHELL: print the script, exit 0 */
    OPTIONS_USAGE = -1,     /* bad usage: the message is in err */
    OPTIONS_NO_MEMORY = -2, /* out of memory: not the user's fault */
};

/* The defaults, then argv. Reads no configuration file but those named by -K. */
int options_parse(int argc, char **argv, struct options *o, char *err, size_t errlen);

/* The same in steps, for main: defaults; then, unless argv[1] is --no-config, the default
 * configuration file; then argv; then options_finish_parse(). Each returns an
 * enum options_result; a message goes to err as "FILE:LINE: ..." for files. */
void options_init(struct options *o);
int options_apply_file(struct options *o, const char *path, int missing_ok, char *err,
                       size_t errlen);
int options_apply_argv(struct options *o, int argc, char **argv, char *err, size_t errlen);
int options_finish_parse(struct options *o, char *err, size_t errlen);

/* The default configuration file: $XDG_CONFIG_HOME/areq/areqrc, else
 * $HOME/.config/areq/areqrc. Writes it into out; 0, or -1 when neither variable is set
 * or the name does not fit. */
int options_default_config(char *out, size_t cap);

/* Frees what the struct owns; safe after any result, and twice. */
void options_finish(struct options *o);

void options_print_help(FILE *out);
/* The completion script for "bash", "zsh" or "fish". 0, or -1 for another shell. */
int options_print_completion(FILE *out, const char *shell);

/* For a list file that cannot be opened: when `arg` looks like a host name with a path
 * (example.org/page), a hint that says how to make it a URL. Writes "" otherwise. */
void options_url_hint(const char *arg, char *out, size_t cap);

#endif
