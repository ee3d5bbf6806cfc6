/* main.c: the process around a run: its setup, the command line, and the exit status
 * (the run's wiring is run.c). */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "config.h"
#include "log.h"
#include "options.h"
#include "run.h"

/* Started with descriptor 0, 1 or 2 closed (by cron, a daemon, `>&-`), the descriptors
 * libuv opens for itself would take those numbers, and it asserts when it later closes
 * them as if they were ours; our own output would land in its files. /dev/null in their
 * place keeps the numbers taken. Runs before anything else opens a file. 0 or -errno. */
static int reopen_closed_std_fds(void)
{
    for (int fd = STDIN_FILENO; fd <= STDERR_FILENO; fd++) {
        if (fcntl(fd, F_GETFD) != -1 || errno != EBADF)
            continue;
        /* The lowest free number is fd: every one below it is open by now. */
        int got = open("/dev/null", fd == STDIN_FILENO ? O_RDONLY : O_WRONLY);
        if (got < 0)
            return -errno;
        if (got != fd) {
            close(got);
            return -EBADF;
        }
    }
    return 0;
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
 * each). With --save the pool also makes, writes and links every file (page.c), which
 * on 2 cores put 62% of the run's CPU on that one thread against the loop's 38% (perf,
 * scenario S of tests/bench/save.py on a tmpfs): the pool, not the loop, was the critical
 * path, so saving gets a thread per core. Not more: the file work is CPU in the kernel
 * (on ext4, 59% of all samples in __ext4_new_inode's search for a free inode), not waits
 * that extra threads could overlap. UV_THREADPOOL_SIZE, when the user sets it, wins. Must
 * run before the pool's first use. */
static void size_thread_pool(int saving)
{
    if (getenv("UV_THREADPOOL_SIZE") != NULL)
        return;
    unsigned cpus = uv_available_parallelism();
    unsigned threads = saving ? (cpus > 2 ? cpus : 2) : (cpus > 2 ? cpus - 1 : 1);
    char n[16];
    snprintf(n, sizeof n, "%u", threads);
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
    if (reopen_closed_std_fds() != 0)
        return EXIT_USAGE; /* with no stderr to say so on */
    tune_malloc();
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
    size_thread_pool(o.save_dir != NULL);
    /* A reader that closes our output must show up as EPIPE from write, not kill us. */
    signal(SIGPIPE, SIG_IGN);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        log_fatal("cannot initialise libcurl");
        options_finish(&o);
        return EXIT_USAGE;
    }
    int status = run_areq(&o);
    curl_global_cleanup();
    options_finish(&o);
    return status;
}
