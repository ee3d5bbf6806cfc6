/* main.c: wires the modules together for one run and owns the exit status. */
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include <uv.h>

#include "config.h"
#include "crawl.h"
#include "http.h"
#include "links.h"
#include "log.h"
#include "options.h"
#include "progress.h"
#include "task.h"
#include "url.h"
#include "writer.h"

/* The exit statuses scripts can rely on; documented in --help and the man page. */
enum exit_status {
    EXIT_ALL_DONE = 0,
    EXIT_SOME_FAILED = 1,
    EXIT_USAGE = 2,     /* also: an input list that cannot be read */
    EXIT_OUTPUT = 3,
    EXIT_INTERRUPTED = 130,
    EXIT_TERMINATED = 143,
};

struct run {
    uv_loop_t loop;
    task_sched sched;
    uv_signal_t sigint, sigterm;
    int signal;            /* the first signal received, or 0 */
    int write_error;
    crawl crawl;
    http_client *http;
    writer *out;
    writer *failures;      /* --failures, or NULL */
    progress *progress;
    const char *output_name;
    const char *cookie_jar;
};

static void on_signal(uv_signal_t *h, int signum)
{
    struct run *r = h->data;
    if (r->signal == 0)
        r->signal = signum;
    crawl_stop(&r->crawl, -ECANCELED);
}

static void on_write_error(void *ctx, int err)
{
    struct run *r = ctx;
    r->write_error = err;
    /* A reader that went away (`areq -o - | head`) is an ordinary end, not worth a word. */
    if (err != UV_EPIPE)
        log_fatal("cannot write %s: %s", r->output_name, uv_strerror(err));
    crawl_stop(&r->crawl, err);
}

/* The run is over: let go of everything that keeps the loop alive. */
static void on_crawl_done(task *t)
{
    struct run *r = (struct run *)((char *)t - offsetof(struct run, crawl));
    uv_close((uv_handle_t *)&r->sigint, NULL);
    uv_close((uv_handle_t *)&r->sigterm, NULL);
    progress_destroy(r->progress);
    r->progress = NULL;
    if (r->cookie_jar != NULL) {
        int rc = http_client_save_cookies(r->http, r->cookie_jar);
        if (rc != 0) {
            log_fatal("cannot write the cookie jar %s: %s", r->cookie_jar, uv_strerror(rc));
            r->write_error = rc;
        }
    }
    http_client_destroy(r->http);
    r->http = NULL;
    task_sched_close(&r->sched);
}

/* Every transfer may hold a socket (and a resolver's descriptors while it looks up a
 * name), so the soft limit must be well above the concurrency. Returns the concurrency
 * that fits, warning when the hard limit forces it lower. */
static size_t fit_open_files(size_t concurrency)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return concurrency;
    const rlim_t reserve = 64;
    rlim_t want = (rlim_t)concurrency * 2 + reserve;
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want) {
        rlim_t cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= want ? want : rl.rlim_max;
        struct rlimit raised = {.rlim_cur = cur, .rlim_max = rl.rlim_max};
        if (setrlimit(RLIMIT_NOFILE, &raised) == 0)
            rl.rlim_cur = cur;
    }
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < (rlim_t)concurrency + reserve) {
        size_t fits = rl.rlim_cur > reserve * 2 ? (size_t)(rl.rlim_cur - reserve) : 1;
        log_error("--concurrency %zu needs about %zu open files, but the hard limit "
                  "(ulimit -Hn) is %llu; running %zu at a time instead",
                  concurrency, concurrency + (size_t)reserve, (unsigned long long)rl.rlim_max,
                  fits);
        return fits;
    }
    return concurrency;
}

static int check_inputs(const struct options *o)
{
    for (size_t i = 0; i < o->ninputs; i++) {
        if (strcmp(o->inputs[i], "-") == 0)
            continue;
        FILE *f = fopen(o->inputs[i], "r");
        if (f == NULL) {
            int err = errno;
            char hint[300];
            options_url_hint(o->inputs[i], hint, sizeof hint);
            log_fatal("cannot read %s: %s%s", o->inputs[i], strerror(err), hint);
            return -1;
        }
        fclose(f);
    }
    return 0;
}

/* The compiled forms of the user's patterns: the extractor, --include and --exclude. */
struct patterns {
    links_extractor *extractor;
    links_filter **include, **exclude;
    size_t ninclude, nexclude;
};

static void free_patterns(struct patterns *p)
{
    links_extractor_destroy(p->extractor);
    for (size_t i = 0; i < p->ninclude; i++)
        links_filter_destroy(p->include[i]);
    for (size_t i = 0; i < p->nexclude; i++)
        links_filter_destroy(p->exclude[i]);
    free(p->include);
    free(p->exclude);
}

static int compile_filters(const char *option, const char **src, size_t n, links_filter ***out,
                           size_t *nout)
{
    char err[256];
    *out = calloc(n ? n : 1, sizeof **out);
    if (*out == NULL) {
        log_fatal("out of memory");
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (links_filter_create(src[i], &(*out)[i], err, sizeof err) != 0) {
            log_fatal("invalid --%s '%s': %s", option, src[i], err);
            return -1;
        }
        *nout = i + 1;
    }
    return 0;
}

/* Bad patterns are usage errors, found before anything is fetched. */
static int compile_patterns(const struct options *o, struct patterns *p)
{
    char err[256];
    if (links_extractor_create_flags(o->pattern, LINKS_REPORT_NOFOLLOW, &p->extractor, err,
                                     sizeof err) != 0) {
        if (o->pattern != NULL)
            log_fatal("invalid --pattern: %s", err);
        else
            log_fatal("cannot build the link extractor: %s", err);
        return -1;
    }
    if (compile_filters("include", o->include, o->ninclude, &p->include, &p->ninclude) != 0 ||
        compile_filters("exclude", o->exclude, o->nexclude, &p->exclude, &p->nexclude) != 0)
        return -1;
    return 0;
}

/* Where TLS trust comes from: the options, else the variables the curl tool reads. A
 * file or directory that cannot be read is a usage error now rather than a failed
 * handshake for every https URL later. */
static int pick_ca(const struct options *o, const char **cacert, const char **capath)
{
    const char *file_from = "--cacert", *dir_from = "--capath";
    *cacert = o->cacert;
    *capath = o->capath;
    if (*cacert == NULL && *capath == NULL) {
        const char *v;
        if ((v = getenv("CURL_CA_BUNDLE")) != NULL && v[0] != '\0') {
            *cacert = v;
            file_from = "$CURL_CA_BUNDLE";
        } else {
            if ((v = getenv("SSL_CERT_DIR")) != NULL && v[0] != '\0') {
                *capath = v;
                dir_from = "$SSL_CERT_DIR";
            }
            if ((v = getenv("SSL_CERT_FILE")) != NULL && v[0] != '\0') {
                *cacert = v;
                file_from = "$SSL_CERT_FILE";
            }
        }
    }
    if (*cacert != NULL) {
        FILE *f = fopen(*cacert, "r");
        if (f == NULL) {
            log_fatal("cannot read the CA certificates %s (%s): %s", *cacert, file_from,
                      strerror(errno));
            return -1;
        }
        fclose(f);
    }
    if (*capath != NULL) {
        DIR *d = opendir(*capath);
        if (d == NULL) {
            log_fatal("cannot read the CA directory %s (%s): %s", *capath, dir_from,
                      strerror(errno));
            return -1;
        }
        closedir(d);
    }
    return 0;
}

/* -b values: those with an '=' are cookies to send, joined as curl joins them; the others
 * are files to read, of which one that does not exist yet is an empty jar (the usual
 * first run of `-b jar -c jar`), but one that exists and cannot be read is an error. */
struct cookie_args {
    const char **files;
    size_t nfiles;
    char *data;
};

static int split_cookies(const struct options *o, struct cookie_args *out)
{
    *out = (struct cookie_args){0};
    if (o->ncookies == 0)
        return 0;
    out->files = calloc(o->ncookies, sizeof *out->files);
    size_t data_len = 1;
    for (size_t i = 0; i < o->ncookies; i++)
        data_len += strlen(o->cookies[i]) + 2;
    out->data = calloc(1, data_len);
    if (out->files == NULL || out->data == NULL) {
        log_fatal("out of memory");
        return -1;
    }
    for (size_t i = 0; i < o->ncookies; i++) {
        const char *v = o->cookies[i];
        if (strchr(v, '=') != NULL) {
            if (out->data[0] != '\0')
                strcat(out->data, "; ");
            strcat(out->data, v);
            continue;
        }
        FILE *f = fopen(v, "r");
        if (f == NULL && errno != ENOENT) {
            log_fatal("cannot read the cookie file %s: %s", v, strerror(errno));
            return -1;
        }
        if (f != NULL)
            fclose(f);
        out->files[out->nfiles++] = v;
    }
    if (out->data[0] == '\0') {
        free(out->data);
        out->data = NULL;
    }
    return 0;
}

static void free_cookies(struct cookie_args *c)
{
    free(c->files);
    free(c->data);
}

static int check_netrc(const struct options *o)
{
    if (o->netrc_file == NULL)
        return 0;
    FILE *f = fopen(o->netrc_file, "r");
    if (f == NULL) {
        log_fatal("cannot read the netrc file %s: %s", o->netrc_file, strerror(errno));
        return -1;
    }
    fclose(f);
    return 0;
}

static int run(const struct options *o)
{
    struct run r = {.output_name = strcmp(o->output, "-") == 0 ? "standard output" : o->output,
                    .cookie_jar = o->cookie_jar};
    int status = EXIT_ALL_DONE;
    size_t concurrency = fit_open_files(o->concurrency);

    const char *cacert, *capath;
    struct cookie_args cookies;
    int bad = pick_ca(o, &cacert, &capath) != 0 || check_netrc(o) != 0;
    if (split_cookies(o, &cookies) != 0 || bad) {
        free_cookies(&cookies);
        return EXIT_USAGE;
    }
    struct patterns pat = {0};
    if (compile_patterns(o, &pat) != 0) {
        free_patterns(&pat);
        free_cookies(&cookies);
        return EXIT_USAGE;
    }
    int rc;
    if (uv_loop_init(&r.loop) != 0) {
        log_fatal("cannot start the event loop");
        free_patterns(&pat);
        return EXIT_USAGE;
    }
    struct http_options ho = {
        .timeout_ms = (long)(o->timeout_s * 1000),
        .connect_timeout_ms = (long)(o->connect_timeout_s * 1000),
        .max_redirs = o->max_redirs,
        .max_body = (size_t)o->max_size,
        .max_connects = concurrency,
        .user_agent = o->user_agent ? o->user_agent : "areq/" AREQ_VERSION,
        .headers = o->headers,
        .nheaders = o->nheaders,
        .proxy = o->proxy,
        .insecure = o->insecure,
        .cacert = cacert,
        .capath = capath,
        .speed_limit = o->speed_limit,
        .speed_time = o->speed_time,
        .resolve = o->resolve,
        .nresolve = o->nresolve,
        .ip_version = o->ip_version,
        .cookies = o->ncookies > 0 || o->cookie_jar != NULL,
        .cookie_files = cookies.files,
        .ncookie_files = cookies.nfiles,
        .cookie_data = cookies.data,
        .user = o->user,
        .netrc = o->netrc,
        .netrc_file = o->netrc_file,
    };
    rc = http_client_create(&r.loop, &ho, &r.http);
    if (rc == 0)
        rc = task_sched_init(&r.sched, &r.loop);
    /* Before the output is opened: a usage error leaves no output file behind. */
    if (rc == -EBADMSG) {
        log_fatal("no CA certificate could be read from %s%s%s", cacert ? cacert : "",
                  cacert && capath ? " or " : "", capath ? capath : "");
        status = EXIT_USAGE;
        goto out_writer;
    }
    if (rc != 0) {
        log_fatal("cannot start: %s", uv_strerror(rc));
        http_client_destroy(r.http);
        status = EXIT_USAGE;
        goto out_writer;
    }
    uv_signal_init(&r.loop, &r.sigint);
    uv_signal_init(&r.loop, &r.sigterm);
    r.sigint.data = r.sigterm.data = &r;
    uv_signal_start(&r.sigint, on_signal, SIGINT);
    uv_signal_start(&r.sigterm, on_signal, SIGTERM);

    rc = writer_open(&r.loop, o->output, o->append, &r.out);
    if (rc != 0) {
        log_fatal("cannot write %s: %s", r.output_name, uv_strerror(rc));
        status = EXIT_OUTPUT;
        goto out_http;
    }
    writer_on_error(r.out, on_write_error, &r);
    if (o->failures != NULL) {
        rc = writer_open(&r.loop, o->failures, 0, &r.failures);
        if (rc != 0) {
            log_fatal("cannot write %s: %s", o->failures, uv_strerror(rc));
            status = EXIT_OUTPUT;
            goto out_http;
        }
        writer_on_error(r.failures, on_write_error, &r);
    }
    if (o->header && writer_at_start(r.out)) {
        struct buf header;
        buf_init(&header);
        rc = format_header(o->format, &header);
        if (rc == 0 && header.len > 0)
            rc = writer_submit(r.out, header.data, header.len);
        buf_finish(&header);
        if (rc != 0) {
            status = EXIT_OUTPUT;
            goto out_http;
        }
    }


    struct crawl_options co = {
        .concurrency = concurrency,
        .retries = (unsigned)o->retries,
        .format = o->format,
        .url_flags = (o->all_schemes ? URL_ALL_SCHEMES : 0u) |
                     (o->keep_fragments ? URL_KEEP_FRAGMENT : 0u),
        .depth = (unsigned)o->depth,
        .scope = (enum crawl_scope)o->scope,
        .include = (const links_filter *const *)pat.include,
        .ninclude = pat.ninclude,
        .exclude = (const links_filter *const *)pat.exclude,
        .nexclude = pat.nexclude,
        .max_pages = (size_t)o->max_pages,
        .robots = o->robots,
        /* Politeness matters when areq picks the URLs itself; a listed URL was chosen by
         * the user, who may ask for a cap. */
        .per_host = o->per_host >= 0 ? (size_t)o->per_host : o->depth > 0 ? 8 : 0,
        .delay_ms = (uint64_t)(o->delay_s * 1000),
        .http = r.http,
        .out = r.out,
        .extractor = pat.extractor,
        .urls = o->urls,
        .nurls = o->nurls,
        .inputs = o->inputs,
        .ninputs = o->ninputs,
        .failures = r.failures,
        .queue_budget = (size_t)o->max_queue,
    };
    if (crawl_init(&r.crawl, &co) != 0) {
        log_fatal("out of memory");
        status = EXIT_USAGE;
        goto out_http;
    }
    r.crawl.t.on_done = on_crawl_done;
    uint64_t started = uv_hrtime();
    /* The status line is for people: on a terminal, unless quiet or told otherwise. */
    int tty = isatty(STDERR_FILENO);
    if (o->progress == 1 || (o->progress == -1 && tty && o->verbosity >= 0)) {
        if (progress_start(&r.loop, &r.crawl, tty, &r.progress) != 0)
            r.progress = NULL; /* a missing status line is no reason to stop */
    }
    crawl_start(&r.crawl, &r.sched);
    uv_run(&r.loop, UV_RUN_DEFAULT);
    double seconds = (double)(uv_hrtime() - started) / 1e9;

    const struct crawl_stats *s = &r.crawl.stats;
    if (!task_is_done(&r.crawl.t))
        log_fatal("internal error: the run stopped with work left");
    if (r.signal == 0 && r.write_error != UV_EPIPE) {
        char extra[128] = "";
        if (s->disallowed > 0 || s->unfetched > 0)
            snprintf(extra, sizeof extra, " (%zu disallowed by robots.txt, %zu left by --max-pages)",
                     s->disallowed, s->unfetched);
        /* Links turned away by the frontier's memory budget (--max-queue). */
        if (s->over_budget > 0) {
            size_t used = strlen(extra);
            snprintf(extra + used, sizeof extra - used, " (%zu links not followed: memory budget)",
                     s->over_budget);
        }
        log_error("%zu ok, %zu failed, %zu skipped, %zu pairs written, %.2f s%s", s->ok,
                  s->failed, s->skipped, s->pairs, seconds, extra);
    }

    if (r.write_error != 0 || writer_error(r.out) != 0 ||
        (r.failures != NULL && writer_error(r.failures) != 0))
        status = EXIT_OUTPUT;
    else if (r.signal == SIGINT)
        status = EXIT_INTERRUPTED;
    else if (r.signal == SIGTERM)
        status = EXIT_TERMINATED;
    else if (r.crawl.input_error != 0)
        status = EXIT_USAGE;
    else if (s->failed > 0 || !task_is_done(&r.crawl.t))
        status = EXIT_SOME_FAILED;
    crawl_finish(&r.crawl);
    goto out_writer;

out_http:
    /* Nothing has run: let the handles go as the end of a run would. */
    on_crawl_done(&r.crawl.t);
out_writer:
    writer_destroy(r.out);
    writer_destroy(r.failures);
    uv_run(&r.loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&r.loop) != 0)
        log_fatal("internal error: handles left open at exit");
    free_patterns(&pat);
    free_cookies(&cookies);
    return status;
}

/* glibc hands the top of the heap back to the kernel whenever 128 KiB of it are free, and
 * a crawl frees a body of tens of kilobytes after every page, only to allocate the next:
 * each time its pages fault in anew. perf of a -d 2 crawl (5,817 pages of 74 KB): 9.8% of
 * the loop thread in page faults and 4% in brk. Keeping up to 64 MiB of free heap costs no
 * more than the peak the run already reached. */
static void tune_malloc(void)
{
#ifdef __GLIBC__
    mallopt(M_TRIM_THRESHOLD, 64 << 20);
    mallopt(M_TOP_PAD, 4 << 20);
    /* Setting a trim threshold also freezes glibc's mmap threshold at 128 KiB, which it
     * otherwise raises to the largest block freed: every pair block or write batch past
     * that size would then be a fresh mapping, faulted in and unmapped each time (scenario
     * A went from 0.17 s to 0.27 s). Blocks up to 32 MiB come from the heap instead. */
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
#endif
}

/* libuv's pool, which scans pages, has 4 threads by default, whatever the machine. The loop
 * thread keeps a core busy with I/O, so more scanning threads than the other cores only
 * add wake-ups and context switches: on 2 cores, areq -d 2 over the 2,000-page benchmark
 * site took a median 0.40 s with 4 threads, 0.36 s with 2 and 0.33 s with 1 (7 runs
 * each). UV_THREADPOOL_SIZE, when the user sets it, wins. Must run before the pool's
 * first use. */
static void size_thread_pool(void)
{
    if (getenv("UV_THREADPOOL_SIZE") != NULL)
        return;
    unsigned cpus = uv_available_parallelism();
    char n[16];
    snprintf(n, sizeof n, "%u", cpus > 2 ? cpus - 1 : 1);
    setenv("UV_THREADPOOL_SIZE", n, 0);
}

/* The default configuration file (unless --no-config comes first), then the arguments. */
static int parse_command_line(int argc, char **argv, struct options *o, char *err, size_t len)
{
    options_init(o);
    int rc = OPTIONS_RUN;
    char path[4096];
    if (!(argc > 1 && strcmp(argv[1], "--no-config") == 0) &&
        options_default_config(path, sizeof path) == 0)
        rc = options_apply_file(o, path, 1, err, len);
    if (rc == OPTIONS_RUN)
        rc = options_apply_argv(o, argc, argv, err, len);
    if (rc == OPTIONS_RUN)
        rc = options_finish_parse(o, err, len);
    return rc;
}

int main(int argc, char **argv)
{
    struct options o;
    char err[1024];
    tune_malloc();
    size_thread_pool();
    switch (parse_command_line(argc, argv, &o, err, sizeof err)) {
    case OPTIONS_HELP:
        options_print_help(stdout);
        options_finish(&o);
        return EXIT_ALL_DONE;
    case OPTIONS_COMPLETION:
        options_print_completion(stdout, o.completion);
        options_finish(&o);
        return EXIT_ALL_DONE;
    case OPTIONS_NO_MEMORY:
        log_fatal("%s", err);
        options_finish(&o);
        return EXIT_USAGE;
    case OPTIONS_VERSION:
        printf("areq %s\n", AREQ_VERSION);
        options_finish(&o);
        return EXIT_ALL_DONE;
    case OPTIONS_USAGE:
        log_fatal("%s", err);
        fprintf(stderr, "Try 'areq --help' for more information.\n");
        options_finish(&o);
        return EXIT_USAGE;
    default:
        break;
    }
    log_set_level(o.verbosity < 0 ? LOG_QUIET : o.verbosity > 0 ? LOG_VERBOSE : LOG_NORMAL);
    if (check_inputs(&o) != 0) {
        options_finish(&o);
        return EXIT_USAGE;
    }
    /* A reader that closes our output must show up as EPIPE from write, not kill us. */
    signal(SIGPIPE, SIG_IGN);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        log_fatal("cannot initialise libcurl");
        options_finish(&o);
        return EXIT_USAGE;
    }
    int status = run(&o);
    curl_global_cleanup();
    options_finish(&o);
    return status;
}
