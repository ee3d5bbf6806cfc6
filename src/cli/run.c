/* run.c: one run of areq, from parsed options to the exit status (see run.h). */
#include "run.h"

#include <dirent.h>
#include <errno.h>
#include <libpsl.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "config.h"
#include "digest.h"
#include "format.h"
#include "log.h"
#include "reader.h"
#include "savepath.h"
#include "url.h"

/* After a signal, the output already produced goes out, but a reader that does not take it
 * (`areq -o - | (sleep 40; cat)`) must not hold the end of the run for longer than this. */
enum { SIGNAL_GRACE_MS = 2000 };

static void on_grace_over(uv_timer_t *h)
{
    struct areq_run *r = h->data;
    writer_abandon(r->out);
}

static void on_signal(uv_signal_t *h, int signum)
{
    struct areq_run *r = h->data;
    if (r->signal == 0) {
        r->signal = signum;
        uv_timer_start(&r->grace, on_grace_over, SIGNAL_GRACE_MS, 0);
    } else {
        writer_abandon(r->out); /* asked twice: no more waiting */
    }
    crawl_stop(&r->crawl, -ECANCELED);
}

static void on_write_error(void *ctx, int err)
{
    struct areq_run *r = ctx;
    r->write_error = err;
    /* A reader that went away (`areq -o - | head`) is an ordinary end, not worth a word. */
    if (err != UV_EPIPE)
        log_fatal("cannot write %s: %s", r->output_name, uv_strerror(err));
    if (writer_error(r->out) != 0)
        crawl_output_lost(&r->crawl, err);
    else
        crawl_stop(&r->crawl, err); /* the --failures file; the pairs still go out */
}

/* --save: nothing more can be saved (a full disk, a read-only directory). The first such
 * failure is named, the run stops (transfers in flight leave no file) and ends with
 * EXIT_OUTPUT. */
static void on_save_failed(void *ctx, int err, const char *url)
{
    struct areq_run *r = ctx;
    if (r->save_error != 0)
        return;
    r->save_error = err;
    log_fatal("cannot save into %s: %s (saving %s)", r->opt->save_dir, strerror(-err), url);
    crawl_stop(&r->crawl, err);
}

/* Whether `path` names /dev/null (under any name): a run that saves and writes its pairs
 * there only downloads, and need not scan. */
static int is_dev_null(const char *path)
{
    struct stat a, b;
    return strcmp(path, "-") != 0 && stat(path, &a) == 0 && stat("/dev/null", &b) == 0 &&
           S_ISCHR(a.st_mode) && a.st_rdev == b.st_rdev;
}

/* Opens the --save directory and the manifest. 0, or -1 after the message. */
static int open_saver(struct areq_run *r, const struct options *o)
{
    if (o->save_dir == NULL)
        return 0;
    /* AREQ_SAVE_NAMED_TEMP: the tests' way to reach the fallback for file systems without
     * O_TMPFILE (save.h) on one that has it. */
    unsigned flags = (o->flat ? SAVE_FLAT : 0) |
                     (getenv("AREQ_SAVE_NAMED_TEMP") != NULL ? SAVE_NAMED_TEMP : 0);
    int rc = saver_open(o->save_dir, flags, &r->saver);
    if (rc != 0) {
        log_fatal("cannot save into %s: %s", o->save_dir, strerror(-rc));
        return -1;
    }
    if (o->manifest != NULL && (rc = saver_open_manifest(r->saver, o->manifest)) != 0) {
        log_fatal("cannot write %s: %s", o->manifest, strerror(-rc));
        return -1;
    }
    r->save = (struct page_save){
        .saver = r->saver,
        .types = o->save_types,
        .path_flags = o->flat ? SAVEPATH_FLAT : 0,
        .manifest = o->manifest != NULL,
        .no_scan = o->depth == 0 && is_dev_null(o->output),
        .held_bytes = &r->save_held,
        .fatal = on_save_failed,
        .ctx = r,
    };
    return 0;
}

enum { SIGINT_OPEN = 1u << 0, SIGTERM_OPEN = 1u << 1, GRACE_OPEN = 1u << 2 };

/* Lets go of the handles that would keep the loop alive. */
static void close_handles(struct areq_run *r)
{
    if (r->open_handles & SIGINT_OPEN)
        uv_close((uv_handle_t *)&r->sigint, NULL);
    if (r->open_handles & SIGTERM_OPEN)
        uv_close((uv_handle_t *)&r->sigterm, NULL);
    if (r->open_handles & GRACE_OPEN)
        uv_close((uv_handle_t *)&r->grace, NULL);
    r->open_handles = 0;
}

/* The run is over: let go of everything that keeps the loop alive. */
static void end_run(struct areq_run *r)
{
    close_handles(r);
    progress_destroy(r->progress);
    r->progress = NULL;
    if (r->opt->cookie_jar != NULL) {
        int rc = http_client_save_cookies(r->http, r->opt->cookie_jar);
        if (rc != 0) {
            log_fatal("cannot write the cookie jar %s: %s", r->opt->cookie_jar,
                      uv_strerror(rc));
            r->write_error = rc;
        }
    }
    http_client_destroy(r->http);
    r->http = NULL;
    task_sched_close(&r->sched);
}

static void on_crawl_done(task *t)
{
    end_run((struct areq_run *)((char *)t - offsetof(struct areq_run, crawl)));
}

/* SIGINT and SIGTERM end the run in order (what is fetched is written); the grace timer
 * bounds how long that may take. 0 or a negative libuv error, with whatever was opened
 * noted in r->open_handles. */
static int catch_signals(struct areq_run *r)
{
    r->sigint.data = r->sigterm.data = r->grace.data = r;
    int rc = uv_timer_init(&r->loop, &r->grace);
    if (rc != 0)
        return rc;
    r->open_handles |= GRACE_OPEN;
    if ((rc = uv_signal_init(&r->loop, &r->sigint)) != 0)
        return rc;
    r->open_handles |= SIGINT_OPEN;
    if ((rc = uv_signal_init(&r->loop, &r->sigterm)) != 0)
        return rc;
    r->open_handles |= SIGTERM_OPEN;
    if ((rc = uv_signal_start(&r->sigint, on_signal, SIGINT)) != 0)
        return rc;
    return uv_signal_start(&r->sigterm, on_signal, SIGTERM);
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

/* Opens every list once, up front: a missing list is a usage error found before anything is
 * fetched, and a FIFO's bytes would be lost to a second open. fds[i] is -1 for each list
 * not opened. 0, or -1 after the message. */
static int open_inputs(const struct options *o, int *fds)
{
    for (size_t i = 0; i < o->ninputs; i++)
        fds[i] = -1;
    for (size_t i = 0; i < o->ninputs; i++) {
        fds[i] = reader_open_list(o->inputs[i]);
        if (fds[i] < 0) {
            char hint[300];
            options_url_hint(o->inputs[i], hint, sizeof hint);
            log_fatal("cannot read %s: %s%s", o->inputs[i], strerror(-fds[i]), hint);
            fds[i] = -1;
            return -1;
        }
    }
    return 0;
}

static void close_inputs(const struct options *o, int *fds)
{
    for (size_t i = 0; i < o->ninputs; i++)
        if (fds[i] > STDERR_FILENO)
            close(fds[i]);
}

/* `-o urls.txt urls.txt` would truncate the list before a line of it is read (and with
 * --append, read its own output for ever). Compared by device and inode, so that another
 * name for the same file (a link, a relative path, /dev/stdin) is caught too. 0, or -1
 * after the message. */
static int check_not_written(const struct options *o, const int *fds, const char *path,
                             const char *what)
{
    struct stat out;
    if (path == NULL || (strcmp(path, "-") == 0 ? fstat(STDOUT_FILENO, &out) != 0
                                                : stat(path, &out) != 0))
        return 0; /* a new file cannot be a list */
    if (!S_ISREG(out.st_mode))
        return 0;
    for (size_t i = 0; i < o->ninputs; i++) {
        struct stat in;
        if (fstat(fds[i], &in) == 0 && in.st_dev == out.st_dev && in.st_ino == out.st_ino) {
            log_fatal("%s is both an input list and %s: refusing to overwrite it",
                      o->inputs[i], what);
            return -1;
        }
    }
    return 0;
}

/* The same for every file the run writes: a --failures or --changes file replaces a list
 * as the output does (rev14c). */
static int check_not_output(const struct options *o, const int *fds)
{
    if (check_not_written(o, fds, o->output, "the output") != 0 ||
        check_not_written(o, fds, o->failures, "an output (--failures)") != 0 ||
        check_not_written(o, fds, o->changes, "an output (--changes)") != 0)
        return -1;
    return 0;
}

static void free_patterns(struct run_patterns *p)
{
    links_extractor_destroy(p->extractor);
    for (size_t i = 0; i < p->ninclude; i++)
        filter_destroy(p->include[i]);
    for (size_t i = 0; i < p->nexclude; i++)
        filter_destroy(p->exclude[i]);
    free(p->include);
    free(p->exclude);
}

static int compile_filters(const char *option, const char **src, size_t n, filter ***out,
                           size_t *nout)
{
    char err[256];
    *out = calloc(n ? n : 1, sizeof **out);
    if (*out == NULL) {
        log_fatal("out of memory");
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (filter_create(src[i], &(*out)[i], err, sizeof err) != 0) {
            log_fatal("invalid --%s '%s': %s", option, src[i], err);
            return -1;
        }
        *nout = i + 1;
    }
    return 0;
}

/* Bad patterns are usage errors, found before anything is fetched. */
static int compile_patterns(const struct options *o, struct run_patterns *p)
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

/* Where TLS trust comes from: the options, else the variables the curl tool reads
 * (*from_environment: then http.c parses them only for the first https transfer). A
 * file or directory that cannot be read is a usage error now rather than a failed
 * handshake for every https URL later. */
static int pick_ca(const struct options *o, const char **cacert, const char **capath,
                   int *from_environment)
{
    *from_environment = o->cacert == NULL && o->capath == NULL;
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
static int split_cookies(const struct options *o, struct run_cookies *out)
{
    *out = (struct run_cookies){0};
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

static void free_cookies(struct run_cookies *c)
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
/* ---- the state store (--state, issue 14) ---- */

static void feed_text(digest *d, const char *text)
{
    /* Length first, so that ("ab", "c") and ("a", "bc") differ. */
    size_t n = text != NULL ? strlen(text) : (size_t)-1;
    digest_update(d, &n, sizeof n);
    if (text != NULL)
        digest_update(d, text, n);
}

static void feed_number(digest *d, long long v)
{
    digest_update(d, &v, sizeof v);
}

/* The options that change what a page yields, its pairs and the links worth following:
 * a page stored under other ones is fetched plainly and its pairs are not reused. */
static void feed_page_options(digest *d, const struct options *o)
{
    feed_text(d, "areq page options 1");
    feed_text(d, o->pattern);
    feed_number(d, o->all_schemes);
    feed_number(d, o->keep_fragments);
    feed_number(d, (long long)o->scope);
    feed_number(d, (long long)o->ninclude);
    for (size_t i = 0; i < o->ninclude; i++)
        feed_text(d, o->include[i]);
    feed_number(d, (long long)o->nexclude);
    for (size_t i = 0; i < o->nexclude; i++)
        feed_text(d, o->exclude[i]);
    feed_number(d, o->robots);
}

/* *What* a run was asked to do, for telling whether an unfinished run is this one
 * again: the page options, and the lists, URLs, depth, limits and output. */
static int command_hashes(const struct options *o, unsigned char options[DIGEST_SIZE],
                          unsigned char command[DIGEST_SIZE])
{
    digest *d = digest_new();
    if (d == NULL)
        return -ENOMEM;
    feed_page_options(d, o);
    int rc = digest_final(d, options);
    if (rc == 0)
        rc = digest_reset(d);
    if (rc == 0) {
        feed_text(d, "areq command 1");
        feed_page_options(d, o);
        feed_number(d, o->depth);
        feed_number(d, o->max_pages);
        feed_text(d, o->output);
        feed_number(d, (long long)o->format);
        feed_number(d, o->header);
        feed_number(d, o->append);
        for (size_t i = 0; i < o->nurls; i++)
            feed_text(d, o->urls[i]);
        feed_text(d, "lists");
        for (size_t i = 0; i < o->ninputs; i++)
            feed_text(d, o->inputs[i]);
        rc = digest_final(d, command);
    }
    digest_free(d);
    return rc;
}

/* Whether two paths name one file: the same string, or the same device and inode. */
static int same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    if (strcmp(a, b) == 0)
        return 1;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
           sa.st_ino == sb.st_ino;
}

/* The store must not be a file this run writes: opening that would cut the store. 0, or
 * -1 after the message. */
static int check_state_apart(const struct options *o)
{
    const char *written[] = {strcmp(o->output, "-") != 0 ? o->output : NULL, o->failures,
                             o->changes, o->cookie_jar};
    static const char *const what[] = {"the output", "the --failures file",
                                       "the --changes file", "the cookie jar"};
    for (size_t i = 0; i < sizeof written / sizeof *written; i++) {
        if (written[i] != NULL && same_file(o->state, written[i])) {
            log_fatal("--state %s is also %s: refusing to overwrite it", o->state, what[i]);
            return -1;
        }
    }
    return 0;
}

/* The options that only mean something with a store. 0, or -1 after the message. */
static int check_state_options(const struct options *o)
{
    if (o->state != NULL)
        return check_state_apart(o);
    const char *alone = o->fresh ? "--fresh" : o->changes ? "--changes"
                        : o->max_age_s > 0 ? "--max-age" : NULL;
    if (alone == NULL)
        return 0;
    log_fatal("%s needs --state FILE", alone);
    return -1;
}

/* What the store says about this run: whether it resumes an unfinished one, and from
 * which output length. */
struct resume_plan {
    int64_t run;           /* > 0: resume it */
    uint64_t output_bytes; /* keep this much of the output */
    /* By enum state_file, for --changes and --failures: append to what the unfinished run
     * committed there (the file is cut back to it), rather than replace the file. */
    int append[STATE_NFILES];
};

/* Cuts a file a resumed run goes on writing back to `keep` bytes, the length the unfinished
 * run's last commit recorded of it. 1 when cut; 0 when it is not what that run left, with
 * *wrong saying how (missing, not a regular file, shorter than that); -1 after the message
 * when it cannot be cut. */
static int cut_back(const char *path, uint64_t keep, const char **wrong)
{
    struct stat st;
    *wrong = NULL;
    if (stat(path, &st) != 0)
        *wrong = "missing";
    else if (!S_ISREG(st.st_mode))
        *wrong = "not a regular file";
    else if ((uint64_t)st.st_size < keep)
        *wrong = "shorter than that";
    if (*wrong != NULL)
        return 0;
    if (truncate(path, (off_t)keep) != 0) {
        log_fatal("cannot resume: cannot cut %s back to %llu bytes: %s", path,
                  (unsigned long long)keep, strerror(errno));
        return -1;
    }
    return 1;
}

/* A resumed run's --changes or --failures file `path` (NULL: none named): cut back to the
 * length the unfinished run committed, to be appended to (1), or replaced (0), saying so,
 * when what is there cannot be trusted: that run wrote no such file (its lines of the pages
 * it did are lost: they cannot be found again), or it is missing or shorter. On standard
 * output nothing can be cut: 0. -1 after the message. */
static int plan_kept_file(const char *state_path, const char *option, const char *path,
                          const struct state_run *last, enum state_file which)
{
    if (path == NULL || strcmp(path, "-") == 0)
        return 0;
    if (!last->files.kept[which]) {
        log_error("%s: the unfinished run being resumed wrote no %s file: %s starts afresh, "
                  "without the lines of the pages that run did", state_path, option, path);
        return 0;
    }
    const char *wrong;
    int cut = cut_back(path, last->files.bytes[which], &wrong);
    if (cut == 0)
        log_error("%s: the unfinished run being resumed committed %llu bytes of %s %s, which "
                  "is %s: it cannot be trusted and starts afresh", state_path,
                  (unsigned long long)last->files.bytes[which], option, path, wrong);
    return cut;
}

/* Resuming onto a kept --failures file: the fingerprints of its lines, so that a failure
 * found again (a bad list line is read again) is not written twice. No two lines of one
 * run are alike (a list line names its FILE:LINE, and a URL is fetched once), so a set
 * does. 0, or -1 after the message. */
static int read_kept_failures(struct areq_run *r, const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        log_fatal("cannot resume: cannot read %s: %s", path, strerror(errno));
        return -1;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int rc = 0;
    while (rc >= 0 && (n = getline(&line, &cap, f)) > 0)
        rc = seen_add(&r->failures_kept, seen_hash(line, (size_t)n));
    int failed = ferror(f);
    free(line);
    fclose(f);
    if (rc < 0 || failed) {
        log_fatal("cannot resume: cannot read %s: %s", path,
                  rc < 0 ? "out of memory" : "read error");
        return -1;
    }
    return 0;
}

/* Opens the store and decides whether this run resumes the last one. A file that is not
 * a store, is newer, damaged or in use: exit 2 (the message names it). */
static int open_state(struct areq_run *r, unsigned char options_hash[DIGEST_SIZE],
                      unsigned char command_hash[DIGEST_SIZE], struct resume_plan *plan)
{
    const struct options *o = r->opt;
    *plan = (struct resume_plan){0};
    char why[600];
    int rc = state_open(o->state, &r->state, why, sizeof why);
    if (rc != 0) {
        log_fatal("%s", why);
        return -1;
    }
    if (command_hashes(o, options_hash, command_hash) != 0) {
        log_fatal("out of memory");
        return -1;
    }
    struct state_run last;
    rc = state_last_run(r->state, &last);
    if (rc < 0) {
        log_fatal("%s", state_error(r->state));
        return -1;
    }
    if (rc == 0 || !last.open || o->fresh)
        return 0;
    if (memcmp(last.command_hash, command_hash, DIGEST_SIZE) != 0) {
        log_error("%s: the unfinished run there was another command: starting over",
                  o->state);
        return 0;
    }
    if (strcmp(o->output, "-") != 0) {
        /* What the unfinished run wrote past its last commit is written again. */
        const char *wrong;
        int cut = cut_back(o->output, last.files.bytes[STATE_OUTPUT], &wrong);
        if (cut < 0)
            return -1;
        if (cut == 0) {
            log_error("%s: cannot resume: %s is not the output the unfinished run left "
                      "(%llu bytes): starting over", o->state, o->output,
                      (unsigned long long)last.files.bytes[STATE_OUTPUT]);
            return 0;
        }
    }
    int changes = plan_kept_file(o->state, "--changes", o->changes, &last, STATE_CHANGES);
    int failures = plan_kept_file(o->state, "--failures", o->failures, &last, STATE_FAILURES);
    if (changes < 0 || failures < 0)
        return -1;
    if (failures > 0 && read_kept_failures(r, o->failures) != 0)
        return -1;
    plan->run = last.id;
    plan->output_bytes = last.files.bytes[STATE_OUTPUT];
    plan->append[STATE_CHANGES] = changes;
    plan->append[STATE_FAILURES] = failures;
    log_verbose("%s: resuming the unfinished run %lld", o->state, (long long)last.id);
    return 0;
}

/* The end of a run with a store: the last commit, which closes the run when it ended
 * complete. 0, or -1 after the message. */
static int close_state(struct areq_run *r, int complete)
{
    if (r->state == NULL || r->crawl.store_error != 0)
        return r->state == NULL ? 0 : -1;
    uint64_t whole[STATE_NFILES];
    crawl_files_whole(&r->crawl, whole);
    /* A finished run is never resumed (the next one rewrites the output), so its last
     * commit need not wait for its files to reach the disk; an open one must. */
    int rc = state_commit_now(r->state, whole, NULL, complete);
    if (rc == -EINVAL) /* some pages' lines never made it whole: the run stays open */
        rc = state_commit_now(r->state, whole, r->sync_fds, 0);
    if (rc != 0) {
        log_fatal("%s", rc == -ENOMEM ? "out of memory" : state_error(r->state));
        return -1;
    }
    const struct crawl_stats *s = &r->crawl.stats;
    log_verbose("state %s: %zu not modified (304), %zu unchanged (same body), %zu changed, "
                "%zu new, %zu done before (resumed), %zu not requested (--max-age); %zu "
                "304s without validators, %zu new ETags for the same body", r->opt->state,
                s->not_modified, s->same_body, s->changed, s->new_pages, s->resumed, s->reused,
                s->unsolicited_304, s->etag_churn);
    return 0;
}

/* A start that fails after writer_start() may leave the header's write (or the truncation
 * before it) in flight on the pool, and its request lives in the writer: the writer may be
 * let go only once it is back. Nothing more is written, and no error of it reaches a crawl
 * that never started. */
static void settle_output(struct areq_run *r)
{
    writer_on_error(r->out, NULL, NULL);
    writer_abandon(r->out);
    while (!writer_idle(r->out) && writer_error(r->out) == 0)
        uv_run(&r->loop, UV_RUN_ONCE);
}

/* Lets go of what run_init() took, the loop last. */
static void release(struct areq_run *r)
{
    writer_destroy(r->out);
    writer_destroy(r->failures);
    writer_destroy(r->changes);
    r->out = r->failures = r->changes = NULL;
    if (!r->crawl_owns_inputs)
        close_inputs(r->opt, r->input_fds);
    state_detach(r->state); /* its handle on the loop closes in the run below */
    uv_run(&r->loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&r->loop) != 0) {
        log_fatal("internal error: handles left open at exit");
        r->leaked_handles = 1;
    }
    free_patterns(&r->pat);
    free_cookies(&r->cookies);
    psl_free(r->psl);
    r->psl = NULL;
    free(r->input_fds);
    r->input_fds = NULL;
    for (int i = 0; i < STATE_NFILES; i++) {
        if (r->sync_fds[i] >= 0)
            close(r->sync_fds[i]);
        r->sync_fds[i] = -1;
    }
    seen_finish(&r->failures_kept);
    state_close(r->state);
    r->state = NULL;
    saver_destroy(r->saver);
    r->saver = NULL;
}

/* The same, for a failure before the loop was started. */
static int give_up_early(struct areq_run *r, int status)
{
    free_patterns(&r->pat);
    free_cookies(&r->cookies);
    psl_free(r->psl);
    if (r->input_fds != NULL)
        close_inputs(r->opt, r->input_fds);
    free(r->input_fds);
    seen_finish(&r->failures_kept);
    state_close(r->state);
    r->state = NULL;
    return status;
}

/* For a failure once the loop runs; `end`: the handles are open and must be let go as the
 * end of a run would. */
static int give_up(struct areq_run *r, int status, int end)
{
    if (end)
        end_run(r);
    release(r);
    return status;
}

/* The options' --scope in crawl's terms. A switch without a default, so that a value added
 * to either enum and not mapped here draws a -Wswitch warning (an error in CI). */
static enum crawl_scope crawl_scope_of(enum options_scope scope)
{
    switch (scope) {
    case OPTIONS_SCOPE_HOST:
        return SCOPE_HOST;
    case OPTIONS_SCOPE_DOMAIN:
        return SCOPE_DOMAIN;
    case OPTIONS_SCOPE_ANY:
        return SCOPE_ANY;
    }
    return SCOPE_HOST; /* not reached: options.c stores only the values above */
}

/* Writes the output's header, or mends a cut last line of one appended to. 0, or -1
 * after the message. */
static int start_output(struct areq_run *r, const struct options *o)
{
    struct buf header;
    buf_init(&header);
    int rc = o->header ? format_header(o->format, &header) : 0;
    if (rc == 0)
        rc = writer_start(r->out, header.data, header.len);
    buf_finish(&header);
    if (rc != 0) {
        log_fatal("cannot write %s: %s", r->output_name, uv_strerror(rc));
        return -1;
    }
    if (writer_cut_line(r->out))
        log_error("%s ended in a cut line: appending from a new line", r->output_name);
    return 0;
}

/* With --state, the run begins in the store, with where its files stand. 0, or -1 after
 * the message. */
static int begin_run(struct areq_run *r, const struct resume_plan *plan,
                     const unsigned char command_hash[DIGEST_SIZE],
                     const unsigned char options_hash[DIGEST_SIZE])
{
    if (r->state == NULL)
        return 0;
    /* A --changes or --failures file is recorded when it can be cut back on resume: a
     * regular file (one whose descriptor can be had for fdatasync). */
    writer *files[STATE_NFILES] = {r->out, r->changes, r->failures};
    struct state_files start = {.kept = {0}};
    for (int i = 0; i < STATE_NFILES; i++) {
        if (files[i] == NULL)
            continue;
        r->sync_fds[i] = writer_dup_sync_fd(files[i]);
        start.kept[i] = r->sync_fds[i] >= 0;
        start.bytes[i] = writer_offset_whole(files[i]);
    }
    int rc = state_run_begin(r->state, plan->run, command_hash, options_hash, &start,
                             (int64_t)time(NULL));
    if (rc != 0) {
        log_fatal("%s", state_error(r->state));
        settle_output(r);
        return -1;
    }
    return 0;
}

int run_init(struct areq_run *r, const struct options *o, const struct run_hooks *hooks)
{
    *r = (struct areq_run){
        .opt = o,
        .output_name = strcmp(o->output, "-") == 0 ? "standard output" : o->output,
        .sync_fds = {-1, -1, -1},
    };
    seen_init(&r->failures_kept);
    if (check_state_options(o) != 0)
        return EXIT_USAGE;
    r->input_fds = calloc(o->ninputs ? o->ninputs : 1, sizeof *r->input_fds);
    if (r->input_fds == NULL) {
        log_fatal("out of memory");
        return EXIT_USAGE;
    }
    if (open_inputs(o, r->input_fds) != 0 || check_not_output(o, r->input_fds) != 0)
        return give_up_early(r, EXIT_USAGE);
    size_t concurrency = fit_open_files(o->concurrency);

    const char *cacert, *capath;
    int ca_from_environment;
    int bad = pick_ca(o, &cacert, &capath, &ca_from_environment) != 0 || check_netrc(o) != 0;
    if (split_cookies(o, &r->cookies) != 0 || bad || compile_patterns(o, &r->pat) != 0)
        return give_up_early(r, EXIT_USAGE);
    if (o->scope == OPTIONS_SCOPE_DOMAIN) {
        r->psl = hooks != NULL && hooks->load_psl != NULL ? hooks->load_psl()
                                                          : psl_latest(NULL);
        /* Without it every host would be a domain of its own: host scope, silently. */
        if (r->psl == NULL) {
            log_fatal("--scope domain needs the Public Suffix List, which could not be "
                      "loaded (is the publicsuffix package installed?)");
            return give_up_early(r, EXIT_USAGE);
        }
    }
    /* Before the output is opened: a store that cannot be used is a usage error, and
     * resuming decides how the output is opened. */
    unsigned char options_hash[DIGEST_SIZE], command_hash[DIGEST_SIZE];
    struct resume_plan plan = {0};
    if (o->state != NULL && open_state(r, options_hash, command_hash, &plan) != 0)
        return give_up_early(r, EXIT_USAGE);
    if (uv_loop_init(&r->loop) != 0) {
        log_fatal("cannot start the event loop");
        return give_up_early(r, EXIT_USAGE);
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
        .ca_from_environment = ca_from_environment,
        .speed_limit = o->speed_limit,
        .speed_time = o->speed_time,
        .resolve = o->resolve,
        .nresolve = o->nresolve,
        .ip_version = o->ip_version,
        .cookies = o->ncookies > 0 || o->cookie_jar != NULL,
        .cookie_files = r->cookies.files,
        .ncookie_files = r->cookies.nfiles,
        .cookie_data = r->cookies.data,
        .user = o->user,
        .netrc = o->netrc,
        .netrc_file = o->netrc_file,
    };
    int rc = http_client_create(&r->loop, &ho, &r->http);
    if (rc == 0)
        rc = task_sched_init(&r->sched, &r->loop);
    /* Before the output is opened: a usage error leaves no output file behind. */
    if (rc == -EBADMSG) {
        log_fatal("no CA certificate could be read from %s%s%s", cacert ? cacert : "",
                  cacert && capath ? " or " : "", capath ? capath : "");
        return give_up(r, EXIT_USAGE, 0);
    }
    if (rc != 0) {
        log_fatal("cannot start: %s", uv_strerror(rc));
        http_client_destroy(r->http);
        return give_up(r, EXIT_USAGE, 0);
    }
    rc = catch_signals(r);
    if (rc != 0) {
        log_fatal("cannot catch SIGINT and SIGTERM: %s", uv_strerror(rc));
        return give_up(r, EXIT_USAGE, 1);
    }

    if (open_saver(r, o) != 0)
        return give_up(r, EXIT_OUTPUT, 1);

    /* A resumed run adds to what the unfinished one committed (cut back to that). */
    rc = writer_open(&r->loop, o->output, o->append || plan.run > 0, &r->out);
    if (rc != 0) {
        log_fatal("cannot write %s: %s", r->output_name, uv_strerror(rc));
        return give_up(r, EXIT_OUTPUT, 1);
    }
    writer_on_error(r->out, on_write_error, r);
    if (o->failures != NULL) {
        rc = writer_open(&r->loop, o->failures, plan.append[STATE_FAILURES], &r->failures);
        if (rc != 0) {
            log_fatal("cannot write %s: %s", o->failures, uv_strerror(rc));
            return give_up(r, EXIT_OUTPUT, 1);
        }
        writer_on_error(r->failures, on_write_error, r);
    }
    if (o->changes != NULL) {
        /* Replaced: an empty file says that nothing changed (a resumed run appends to
         * what the unfinished one committed, cut back to it). */
        rc = writer_open(&r->loop, o->changes, plan.append[STATE_CHANGES], &r->changes);
        if (rc != 0) {
            log_fatal("cannot write %s: %s", o->changes, uv_strerror(rc));
            return give_up(r, EXIT_OUTPUT, 1);
        }
        writer_on_error(r->changes, on_write_error, r);
    }
    /* A replaced output is cut to nothing by the writer's first request, the header's, on
     * the pool; the store's first commit, which syncs a new WAL and its folder, then
     * waited behind that truncation on ext4 (7.5 ms of the loop before the first request
     * of an unchanged re-run of scenario A, strace). So a run that replaces its files
     * begins in the store first; one that appends records its files' lengths once the
     * output is started (a cut last line mended). */
    int appending = o->append || plan.run > 0;
    if (!appending && begin_run(r, &plan, command_hash, options_hash) != 0)
        return give_up(r, EXIT_OUTPUT, 1);
    if (start_output(r, o) != 0)
        return give_up(r, EXIT_OUTPUT, 1);
    if (appending && begin_run(r, &plan, command_hash, options_hash) != 0)
        return give_up(r, EXIT_OUTPUT, 1);

    struct crawl_options co = {
        .concurrency = concurrency,
        .retries = (unsigned)o->retries,
        .format = o->format,
        .url_flags = (o->all_schemes ? URL_ALL_SCHEMES : 0u) |
                     (o->keep_fragments ? URL_KEEP_FRAGMENT : 0u),
        .depth = (unsigned)o->depth,
        .scope = crawl_scope_of(o->scope),
        .psl = r->psl,
        .include = (const filter *const *)r->pat.include,
        .ninclude = r->pat.ninclude,
        .exclude = (const filter *const *)r->pat.exclude,
        .nexclude = r->pat.nexclude,
        .max_pages = (size_t)o->max_pages,
        .robots = o->robots,
        /* Politeness matters when areq picks the URLs itself; a listed URL was chosen by
         * the user, who may ask for a cap. */
        .per_host = o->per_host >= 0 ? (size_t)o->per_host : o->depth > 0 ? 8 : 0,
        .delay_ms = (uint64_t)(o->delay_s * 1000),
        .http = r->http,
        .out = r->out,
        .extractor = r->pat.extractor,
        .urls = o->urls,
        .nurls = o->nurls,
        .inputs = o->inputs,
        .input_fds = r->input_fds,
        .ninputs = o->ninputs,
        .failures = r->failures,
        .queue_budget = (size_t)o->max_queue,
        .state = r->state,
        .resume_run = plan.run,
        .replay_writes = plan.run > 0 && strcmp(o->output, "-") == 0,
        .now = (int64_t)time(NULL),
        .max_age_s = (int64_t)o->max_age_s,
        .changes = r->changes,
        .failures_kept = plan.append[STATE_FAILURES] ? &r->failures_kept : NULL,
        .save = r->saver != NULL ? &r->save : NULL,
    };
    if (r->state != NULL)
        memcpy(co.options_hash, options_hash, DIGEST_SIZE);
    memcpy(co.sync_fds, r->sync_fds, sizeof co.sync_fds);
    r->crawl_owns_inputs = 1;
    if (crawl_init(&r->crawl, &co) != 0) {
        log_fatal("out of memory");
        settle_output(r);
        return give_up(r, EXIT_USAGE, 1);
    }
    r->crawl.t.on_done = on_crawl_done;
    r->started = uv_hrtime();
    /* The status line is for people: on a terminal, unless quiet or told otherwise. */
    int tty = isatty(STDERR_FILENO);
    if (o->progress == 1 || (o->progress == -1 && tty && o->verbosity >= 0)) {
        if (progress_start(&r->loop, &r->crawl, stderr, tty, &r->progress) != 0)
            r->progress = NULL; /* a missing status line is no reason to stop */
    }
    crawl_start(&r->crawl, &r->sched);
    return EXIT_ALL_DONE;
}

int run_finish(struct areq_run *r)
{
    double seconds = (double)(uv_hrtime() - r->started) / 1e9;
    int status = EXIT_ALL_DONE;
    const struct crawl_stats *s = &r->crawl.stats;
    if (!task_is_done(&r->crawl.t))
        log_fatal("internal error: the run stopped with work left");
    if (r->signal == 0 && r->write_error != UV_EPIPE) {
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
        /* What reached the output whole, not what was handed over: a full disk takes less. */
        char saved[48] = "";
        if (r->saver != NULL)
            snprintf(saved, sizeof saved, ", %zu saved", s->saved);
        log_error("%zu ok, %zu failed, %zu skipped%s, %zu pairs written, %.2f s%s", s->ok,
                  s->failed, s->skipped, saved, writer_count_written(r->out), seconds, extra);
    }

    int complete = r->signal == 0 && r->write_error == 0 && writer_error(r->out) == 0 &&
                   task_is_done(&r->crawl.t) && r->crawl.t.result == 0;
    int store_failed = close_state(r, complete) != 0;

    if (r->write_error != 0 || r->save_error != 0 || writer_error(r->out) != 0 ||
        store_failed || (r->failures != NULL && writer_error(r->failures) != 0) ||
        (r->changes != NULL && writer_error(r->changes) != 0))
        status = EXIT_OUTPUT;
    else if (r->signal == SIGINT)
        status = EXIT_INTERRUPTED;
    else if (r->signal == SIGTERM)
        status = EXIT_TERMINATED;
    else if (r->crawl.input_error != 0)
        status = EXIT_USAGE;
    else if (s->failed > 0 || !task_is_done(&r->crawl.t))
        status = EXIT_SOME_FAILED;
    crawl_finish(&r->crawl);
    release(r);
    return status;
}

int run_areq(const struct options *o)
{
    struct areq_run r;
    int status = run_init(&r, o, NULL);
    if (status != EXIT_ALL_DONE)
        return status;
    uv_run(&r.loop, UV_RUN_DEFAULT);
    return run_finish(&r);
}
