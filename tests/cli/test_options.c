/* Tests of command-line parsing. Each row is an argument vector and what must come of it:
 * the result and, for a run, the parsed fields, spelled as the changes from the defaults
 * ("concurrency=5 inputs=a,b"); for bad usage, words the message must contain. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "options.h"

#define MAX_ARGS 16

struct row {
    const char *args[MAX_ARGS]; /* after the program name; ends at the first NULL */
    int want;
    const char *fields; /* OPTIONS_RUN: changes from DEFAULTS */
    const char *err[2]; /* OPTIONS_USAGE: each must appear in the message */
};

static const char DEFAULTS[] = "concurrency=100 max_redirs=10 timeout=30 connect_timeout=10 "
                               "output=foundurls.txt header=1 verbosity=0 all_schemes=0 "
                               "keep_fragments=0 pattern=- retries=2 max_size=10485760 format=0 append=0 "
                               "agent=- headers= proxy=- insecure=0 progress=-1 speed=0/0 cacert=- capath=- "
                               "resolve= ip=0 cookies= jar=- user=- netrc=0 netrc_file=- "
                               "failures=- queue=134217728 urls= inputs=urls.txt";

static const struct row rows[] = {
    /* defaults */
    {{NULL}, OPTIONS_RUN, "", {NULL}},

    /* concurrency */
    {{"-c", "5"}, OPTIONS_RUN, "concurrency=5", {NULL}},
    {{"-c5"}, OPTIONS_RUN, "concurrency=5", {NULL}},
    {{"--concurrency=7"}, OPTIONS_RUN, "concurrency=7", {NULL}},
    {{"--concurrency", "8"}, OPTIONS_RUN, "concurrency=8", {NULL}},
    {{"-c", "1"}, OPTIONS_RUN, "concurrency=1", {NULL}},
    {{"-c", "100000"}, OPTIONS_RUN, "concurrency=100000", {NULL}},
    {{"-c", "3", "-c", "4"}, OPTIONS_RUN, "concurrency=4", {NULL}},
    {{"-c", "0"}, OPTIONS_USAGE, NULL, {"--concurrency", "'0'"}},
    {{"-c", "100001"}, OPTIONS_USAGE, NULL, {"--concurrency", "'100001'"}},
    {{"-c", "abc"}, OPTIONS_USAGE, NULL, {"--concurrency", "'abc'"}},
    {{"-c", ""}, OPTIONS_USAGE, NULL, {"--concurrency", "''"}},
    {{"-c", "5x"}, OPTIONS_USAGE, NULL, {"--concurrency", "'5x'"}},
    {{"-c", "-5"}, OPTIONS_USAGE, NULL, {"--concurrency", "'-5'"}},
    {{"-c", "2.5"}, OPTIONS_USAGE, NULL, {"--concurrency", NULL}},
    {{"-c", "99999999999999999999999"}, OPTIONS_USAGE, NULL, {"--concurrency", NULL}},
    {{"--concurrency="}, OPTIONS_USAGE, NULL, {"--concurrency", "''"}},

    /* timeouts */
    {{"-t", "0.5"}, OPTIONS_RUN, "timeout=0.5", {NULL}},
    {{"--timeout=45"}, OPTIONS_RUN, "timeout=45", {NULL}},
    {{"-t", "0"}, OPTIONS_RUN, "timeout=0", {NULL}},
    {{"-t", "86400"}, OPTIONS_RUN, "timeout=86400", {NULL}},
    {{"--timeout=abc"}, OPTIONS_USAGE, NULL, {"--timeout", "'abc'"}},
    {{"-t", "-1"}, OPTIONS_USAGE, NULL, {"--timeout", "'-1'"}},
    {{"-t", "86401"}, OPTIONS_USAGE, NULL, {"--timeout", NULL}},
    {{"-t", "inf"}, OPTIONS_USAGE, NULL, {"--timeout", NULL}},
    {{"-t", "nan"}, OPTIONS_USAGE, NULL, {"--timeout", NULL}},
    {{"-t", "1s"}, OPTIONS_USAGE, NULL, {"--timeout", "'1s'"}},
    {{"-t", ""}, OPTIONS_USAGE, NULL, {"--timeout", NULL}},
    {{"--connect-timeout", "2.5"}, OPTIONS_RUN, "connect_timeout=2.5", {NULL}},
    {{"--connect-timeout=0.25"}, OPTIONS_RUN, "connect_timeout=0.25", {NULL}},
    {{"--connect-timeout", "x"}, OPTIONS_USAGE, NULL, {"--connect-timeout", "'x'"}},
    {{"--connect-timeout", "-0.5"}, OPTIONS_USAGE, NULL, {"--connect-timeout", NULL}},

    /* redirects */
    {{"--max-redirs", "0"}, OPTIONS_RUN, "max_redirs=0", {NULL}},
    {{"--max-redirs=1000"}, OPTIONS_RUN, "max_redirs=1000", {NULL}},
    {{"--max-redirs", "1001"}, OPTIONS_USAGE, NULL, {"--max-redirs", "'1001'"}},
    {{"--max-redirs", "-1"}, OPTIONS_USAGE, NULL, {"--max-redirs", "'-1'"}},

    /* output */
    {{"-o", "-"}, OPTIONS_RUN, "output=-", {NULL}},
    {{"-o", "pairs.tsv"}, OPTIONS_RUN, "output=pairs.tsv", {NULL}},
    {{"--output=x.tsv"}, OPTIONS_RUN, "output=x.tsv", {NULL}},
    {{"-o", ""}, OPTIONS_USAGE, NULL, {"--output", NULL}},
    {{"--output="}, OPTIONS_USAGE, NULL, {"--output", NULL}},
    {{"--no-header"}, OPTIONS_RUN, "header=0", {NULL}},

    /* messages */
    {{"-v"}, OPTIONS_RUN, "verbosity=1", {NULL}},
    {{"--verbose"}, OPTIONS_RUN, "verbosity=1", {NULL}},
    {{"-q"}, OPTIONS_RUN, "verbosity=-1", {NULL}},
    {{"--quiet"}, OPTIONS_RUN, "verbosity=-1", {NULL}},
    {{"-v", "-q"}, OPTIONS_RUN, "verbosity=-1", {NULL}}, /* the last one wins */
    {{"-qv"}, OPTIONS_RUN, "verbosity=1", {NULL}},

    /* inputs */
    {{"a.txt"}, OPTIONS_RUN, "inputs=a.txt", {NULL}},
    {{"-c", "5", "a.txt", "b.txt"}, OPTIONS_RUN, "concurrency=5 inputs=a.txt,b.txt", {NULL}},
    {{"a.txt", "-c", "5", "b.txt"}, OPTIONS_RUN, "concurrency=5 inputs=a.txt,b.txt", {NULL}},
    {{"-"}, OPTIONS_RUN, "inputs=-", {NULL}},
    {{"-", "a.txt", "-"}, OPTIONS_RUN, "inputs=-,a.txt,-", {NULL}},
    {{"--", "-v"}, OPTIONS_RUN, "inputs=-v", {NULL}},
    {{"-q", "--", "-v", "--no-header", "--"}, OPTIONS_RUN, "verbosity=-1 inputs=-v,--no-header,--",
     {NULL}},
    {{"--"}, OPTIONS_RUN, "", {NULL}},
    {{"-c", "2", "-t", "1.5", "--connect-timeout", "3", "--max-redirs", "4", "-o", "o.tsv",
      "--no-header", "-v", "in.txt"}, OPTIONS_RUN,
     "concurrency=2 timeout=1.5 connect_timeout=3 max_redirs=4 output=o.tsv header=0 "
     "verbosity=1 inputs=in.txt", {NULL}},

    /* unknown options and missing values */
    {{"--bogus"}, OPTIONS_USAGE, NULL, {"unknown option", "--bogus"}},
    {{"--bogus=1", "a.txt"}, OPTIONS_USAGE, NULL, {"unknown option", "--bogus"}},
    {{"-Z"}, OPTIONS_USAGE, NULL, {"unknown option", "-Z"}},
    {{"-Zv"}, OPTIONS_USAGE, NULL, {"unknown option", "-Z"}},
    {{"-vZ"}, OPTIONS_USAGE, NULL, {"unknown option", "Z"}},
    {{"a.txt", "-Z"}, OPTIONS_USAGE, NULL, {"unknown option", "-Z"}},
    {{"--con=3"}, OPTIONS_USAGE, NULL, {"--con", NULL}}, /* ambiguous */
    {{"--conc=3"}, OPTIONS_RUN, "concurrency=3", {NULL}},   /* unambiguous prefix */
    {{"--no-header=1"}, OPTIONS_USAGE, NULL, {"--no-header", NULL}},
    {{"-c"}, OPTIONS_USAGE, NULL, {"-c", "needs a value"}},
    {{"--concurrency"}, OPTIONS_USAGE, NULL, {"--concurrency", "needs a value"}},
    {{"a.txt", "-t"}, OPTIONS_USAGE, NULL, {"-t", "needs a value"}},
    {{"-o"}, OPTIONS_USAGE, NULL, {"-o", "needs a value"}},
    {{"--connect-timeout"}, OPTIONS_USAGE, NULL, {"--connect-timeout", "needs a value"}},
    {{"--max-redirs"}, OPTIONS_USAGE, NULL, {"--max-redirs", "needs a value"}},

    /* help and version stop the parse where they stand */
    {{"-h"}, OPTIONS_HELP, NULL, {NULL}},
    {{"--help"}, OPTIONS_HELP, NULL, {NULL}},
    {{"-V"}, OPTIONS_VERSION, NULL, {NULL}},
    {{"--version"}, OPTIONS_VERSION, NULL, {NULL}},
    {{"a.txt", "-c", "9", "-h"}, OPTIONS_HELP, NULL, {NULL}},
    {{"-h", "-c", "abc"}, OPTIONS_HELP, NULL, {NULL}},
    {{"-c", "abc", "-h"}, OPTIONS_USAGE, NULL, {"--concurrency", NULL}},
    {{"-V", "-h"}, OPTIONS_VERSION, NULL, {NULL}},
    {{"--", "-h"}, OPTIONS_RUN, "inputs=-h", {NULL}},

    /* links */
    {{"--all-schemes"}, OPTIONS_RUN, "all_schemes=1", {NULL}},
    {{"--keep-fragments"}, OPTIONS_RUN, "keep_fragments=1", {NULL}},
    {{"--all-schemes", "--keep-fragments"}, OPTIONS_RUN, "all_schemes=1 keep_fragments=1", {NULL}},
    {{"-P", "href=(x)"}, OPTIONS_RUN, "pattern=href=(x)", {NULL}},
    {{"--pattern=src=(.*)", "f.txt"}, OPTIONS_RUN, "pattern=src=(.*) inputs=f.txt", {NULL}},
    {{"-P", ""}, OPTIONS_USAGE, NULL, {"--pattern", NULL}},
    {{"-P"}, OPTIONS_USAGE, NULL, {"needs a value", NULL}},
    {{"--all-schemes=yes"}, OPTIONS_USAGE, NULL, {"--all-schemes", NULL}},

    /* faults */
    {{"--retries", "0"}, OPTIONS_RUN, "retries=0", {NULL}},
    {{"--retries=100"}, OPTIONS_RUN, "retries=100", {NULL}},
    {{"--retries", "101"}, OPTIONS_USAGE, NULL, {"--retries", "'101'"}},
    {{"--retries", "-1"}, OPTIONS_USAGE, NULL, {"--retries", NULL}},
    {{"--max-size", "0"}, OPTIONS_RUN, "max_size=0", {NULL}},
    {{"--max-size", "1000"}, OPTIONS_RUN, "max_size=1000", {NULL}},
    {{"--max-size", "512k"}, OPTIONS_RUN, "max_size=524288", {NULL}},
    {{"--max-size", "3M"}, OPTIONS_RUN, "max_size=3145728", {NULL}},
    {{"--max-size=2G"}, OPTIONS_RUN, "max_size=2147483648", {NULL}},
    {{"--max-size", "1024G"}, OPTIONS_RUN, "max_size=1099511627776", {NULL}},
    {{"--max-size", "1025G"}, OPTIONS_USAGE, NULL, {"--max-size", NULL}},
    {{"--max-size", "10MB"}, OPTIONS_USAGE, NULL, {"--max-size", "'10MB'"}},
    {{"--max-size", "-1"}, OPTIONS_USAGE, NULL, {"--max-size", NULL}},
    {{"--max-size", "M"}, OPTIONS_USAGE, NULL, {"--max-size", NULL}},
    {{"--max-size", " 5"}, OPTIONS_USAGE, NULL, {"--max-size", NULL}},

    /* output and HTTP */
    {{"-f", "csv"}, OPTIONS_RUN, "format=1", {NULL}},
    {{"--format=jsonl"}, OPTIONS_RUN, "format=2", {NULL}},
    {{"-f", "tsv"}, OPTIONS_RUN, "format=0", {NULL}},
    {{"-f", "json"}, OPTIONS_USAGE, NULL, {"--format", "'json'"}},
    {{"-f", "CSV"}, OPTIONS_USAGE, NULL, {"--format", NULL}},
    {{"-a"}, OPTIONS_RUN, "append=1", {NULL}},
    {{"--append", "-o", "x.tsv"}, OPTIONS_RUN, "append=1 output=x.tsv", {NULL}},
    {{"-A", "bot/1.0"}, OPTIONS_RUN, "agent=bot/1.0", {NULL}},
    {{"--user-agent="}, OPTIONS_RUN, "agent=", {NULL}},
    {{"-A", "ua\r\nX-Injected: 1"}, OPTIONS_USAGE, NULL, {"--user-agent", "line break"}},
    {{"-A", "ua\nx"}, OPTIONS_USAGE, NULL, {"--user-agent", NULL}},
    {{"-H", "X-A:1", "--header", "X-B:2"}, OPTIONS_RUN, "headers=X-A:1|X-B:2", {NULL}},
    {{"-H", "X-Empty;"}, OPTIONS_RUN, "headers=X-Empty;", {NULL}},
    {{"-H", "Accept:"}, OPTIONS_RUN, "headers=Accept:", {NULL}},
    {{"-H", "novalue"}, OPTIONS_USAGE, NULL, {"--header", "'novalue'"}},
    {{"-H", ": x"}, OPTIONS_USAGE, NULL, {"--header", NULL}},
    {{"-H", "X-A: 1\r\nX-B: 2"}, OPTIONS_USAGE, NULL, {"--header", NULL}},
    {{"-H", "X;y"}, OPTIONS_USAGE, NULL, {"--header", NULL}},
    {{"-x", "http://127.0.0.1:3128"}, OPTIONS_RUN, "proxy=http://127.0.0.1:3128", {NULL}},
    {{"--proxy", ""}, OPTIONS_RUN, "proxy=", {NULL}},
    {{"-k"}, OPTIONS_RUN, "insecure=1", {NULL}},
    {{"--insecure", "-kq"}, OPTIONS_RUN, "insecure=1 verbosity=-1", {NULL}},
    {{"--progress"}, OPTIONS_RUN, "progress=1", {NULL}},
    {{"--no-progress"}, OPTIONS_RUN, "progress=0", {NULL}},
    {{"--progress", "--no-progress"}, OPTIONS_RUN, "progress=0", {NULL}},

    /* URLs as arguments; lists named by -i or by any other argument */
    {{"https://example.org/"}, OPTIONS_RUN, "urls=https://example.org/ inputs=", {NULL}},
    {{"HTTP://A.example/x", "l.txt", "http://b.example/"}, OPTIONS_RUN,
     "urls=HTTP://A.example/x|http://b.example/ inputs=l.txt", {NULL}},
    {{"-i", "list", "--input-file=-"}, OPTIONS_RUN, "inputs=list,-", {NULL}},
    {{"-i", ""}, OPTIONS_USAGE, NULL, {"--input-file", NULL}},
    {{"--url", "http://a.example/"}, OPTIONS_RUN, "urls=http://a.example/ inputs=", {NULL}},
    {{"--url", "a.example/"}, OPTIONS_USAGE, NULL, {"--url", "http"}},
    {{"ftp://a.example/"}, OPTIONS_RUN, "inputs=ftp://a.example/", {NULL}},

    /* speed rule, as curl's -Y/-y */
    {{"-Y", "100"}, OPTIONS_RUN, "speed=100/30", {NULL}},
    {{"-y", "5"}, OPTIONS_RUN, "speed=1/5", {NULL}},
    {{"--speed-limit=10", "--speed-time=3"}, OPTIONS_RUN, "speed=10/3", {NULL}},
    {{"-Y", "0"}, OPTIONS_USAGE, NULL, {"--speed-limit", "'0'"}},
    {{"-y", "x"}, OPTIONS_USAGE, NULL, {"--speed-time", "'x'"}},

    /* TLS, names, cookies, credentials */
    {{"--cacert", "ca.pem", "--capath", "/etc/ssl/certs"}, OPTIONS_RUN,
     "cacert=ca.pem capath=/etc/ssl/certs", {NULL}},
    {{"--cacert", ""}, OPTIONS_USAGE, NULL, {"--cacert", NULL}},
    {{"--resolve", "a.test:443:127.0.0.1"}, OPTIONS_RUN, "resolve=a.test:443:127.0.0.1", {NULL}},
    {{"--resolve", "a.test:80:[::1],127.0.0.2", "--resolve", "+b:8080:127.0.0.3"}, OPTIONS_RUN,
     "resolve=a.test:80:[::1],127.0.0.2|+b:8080:127.0.0.3", {NULL}},
    {{"--resolve", "a.test:443"}, OPTIONS_USAGE, NULL, {"--resolve", "'a.test:443'"}},
    {{"--resolve", "a.test:http:127.0.0.1"}, OPTIONS_USAGE, NULL, {"--resolve", NULL}},
    {{"--resolve", "a.test:0:127.0.0.1"}, OPTIONS_USAGE, NULL, {"--resolve", NULL}},
    {{"--resolve", ":80:127.0.0.1"}, OPTIONS_USAGE, NULL, {"--resolve", NULL}},
    {{"--resolve", "a.test:80:localhost"}, OPTIONS_USAGE, NULL, {"'localhost'", "IP address"}},
    {{"--resolve", "a.test:80:127.0.0.1,"}, OPTIONS_USAGE, NULL, {"--resolve", NULL}},
    {{"-4"}, OPTIONS_RUN, "ip=4", {NULL}},
    {{"-4", "--ipv6"}, OPTIONS_RUN, "ip=6", {NULL}},
    {{"-b", "jar.txt", "--cookie", "a=1; b=2", "--cookie-jar", "out.txt"}, OPTIONS_RUN,
     "cookies=jar.txt|a=1;_b=2 jar=out.txt", {NULL}},
    {{"-u", "me:secret"}, OPTIONS_RUN, "user=me:secret", {NULL}},
    {{"-u", "me"}, OPTIONS_USAGE, NULL, {"--user", "USER:PASSWORD"}},
    {{"--netrc"}, OPTIONS_RUN, "netrc=1", {NULL}},
    {{"--netrc-file", "n"}, OPTIONS_RUN, "netrc=1 netrc_file=n", {NULL}},
    {{"--failures", "f.jsonl"}, OPTIONS_RUN, "failures=f.jsonl", {NULL}},

    /* suggestions */
    {{"--depht", "2"}, OPTIONS_USAGE, NULL, {"'--depht'", "did you mean '--depth'"}},
    {{"--concurency=2"}, OPTIONS_USAGE, NULL, {"did you mean '--concurrency'", NULL}},
    {{"--no-robot"}, OPTIONS_RUN, "", {NULL}}, /* a prefix of --no-robots */
    {{"--max-queue", "64k"}, OPTIONS_RUN, "queue=65536", {NULL}},
    {{"--max-queue", "1k"}, OPTIONS_USAGE, NULL, {"--max-queue", "'1k'"}},
    {{"--xyzzy"}, OPTIONS_USAGE, NULL, {"unknown option '--xyzzy'", NULL}},
    {{"-q", "--no-config"}, OPTIONS_USAGE, NULL, {"--no-config", "first"}},
    {{"--completion", "bash"}, OPTIONS_COMPLETION, NULL, {NULL}},
    {{"--completion", "tcsh"}, OPTIONS_USAGE, NULL, {"--completion", "'tcsh'"}},
};

/* ---- the fields as one comparable string ---- */

static void describe(const struct options *o, char *out, size_t cap)
{
    char headers[256] = "";
    for (size_t i = 0; i < o->nheaders; i++) {
        strncat(headers, i > 0 ? "|" : "", sizeof headers - strlen(headers) - 1);
        strncat(headers, o->headers[i], sizeof headers - strlen(headers) - 1);
    }
    char resolve[256] = "", cookies[256] = "", urls[256] = "";
    for (size_t i = 0; i < o->nresolve; i++) {
        strncat(resolve, i > 0 ? "|" : "", sizeof resolve - strlen(resolve) - 1);
        strncat(resolve, o->resolve[i], sizeof resolve - strlen(resolve) - 1);
    }
    for (size_t i = 0; i < o->ncookies; i++) {
        strncat(cookies, i > 0 ? "|" : "", sizeof cookies - strlen(cookies) - 1);
        strncat(cookies, o->cookies[i], sizeof cookies - strlen(cookies) - 1);
    }
    for (char *c = cookies; *c != '\0'; c++)
        if (*c == ' ')
            *c = '_'; /* the rows split fields at spaces */
    for (size_t i = 0; i < o->nurls; i++) {
        strncat(urls, i > 0 ? "|" : "", sizeof urls - strlen(urls) - 1);
        strncat(urls, o->urls[i], sizeof urls - strlen(urls) - 1);
    }
    int n = snprintf(out, cap,
                     "concurrency=%zu max_redirs=%ld timeout=%g connect_timeout=%g output=%s "
                     "header=%d verbosity=%d all_schemes=%d keep_fragments=%d pattern=%s retries=%ld max_size=%llu format=%d append=%d agent=%s headers=%s proxy=%s "
                     "insecure=%d progress=%d speed=%ld/%ld cacert=%s capath=%s resolve=%s "
                     "ip=%d cookies=%s jar=%s user=%s netrc=%d netrc_file=%s failures=%s "
                     "queue=%llu urls=%s inputs=",
                     o->concurrency, o->max_redirs, o->timeout_s, o->connect_timeout_s, o->output,
                     o->header, o->verbosity, o->all_schemes, o->keep_fragments,
                     o->pattern ? o->pattern : "-", o->retries, o->max_size, (int)o->format,
                     o->append, o->user_agent ? o->user_agent : "-", headers,
                     o->proxy ? o->proxy : "-", o->insecure, o->progress, o->speed_limit,
                     o->speed_time, o->cacert ? o->cacert : "-", o->capath ? o->capath : "-",
                     resolve, o->ip_version, cookies, o->cookie_jar ? o->cookie_jar : "-",
                     o->user ? o->user : "-", o->netrc, o->netrc_file ? o->netrc_file : "-",
                     o->failures ? o->failures : "-", o->max_queue, urls);
    assert_true(n > 0 && (size_t)n < cap);
    for (size_t i = 0; i < o->ninputs; i++) {
        size_t len = strlen(out);
        n = snprintf(out + len, cap - len, "%s%s", i > 0 ? "," : "", o->inputs[i]);
        assert_true(n > 0 && (size_t)n < cap - len);
    }
}

/* DEFAULTS with each "key=value" of `changes` put in place of the default. */
static void expected(const char *changes, char *out, size_t cap)
{
    char fields[48][128];
    size_t nfields = 0;
    char tmp[1024];
    assert_true(strlen(DEFAULTS) < sizeof tmp);
    strcpy(tmp, DEFAULTS);
    for (char *f = strtok(tmp, " "); f != NULL; f = strtok(NULL, " ")) {
        assert_true(nfields < 48 && strlen(f) < sizeof fields[0]);
        strcpy(fields[nfields++], f);
    }
    assert_true(strlen(changes) < sizeof tmp);
    strcpy(tmp, changes);
    for (char *c = strtok(tmp, " "); c != NULL; c = strtok(NULL, " ")) {
        size_t key = (size_t)(strchr(c, '=') - c) + 1;
        size_t i = 0;
        while (i < nfields && strncmp(fields[i], c, key) != 0)
            i++;
        assert_true(i < nfields); /* a misspelt key in a row */
        strcpy(fields[i], c);
    }
    out[0] = '\0';
    for (size_t i = 0; i < nfields; i++) {
        if (i > 0)
            strncat(out, " ", cap - strlen(out) - 1);
        strncat(out, fields[i], cap - strlen(out) - 1);
    }
}

static void format_args(const struct row *r, char *out, size_t cap)
{
    out[0] = '\0';
    for (size_t i = 0; i < MAX_ARGS && r->args[i] != NULL; i++) {
        strncat(out, " '", cap - strlen(out) - 1);
        strncat(out, r->args[i], cap - strlen(out) - 1);
        strncat(out, "'", cap - strlen(out) - 1);
    }
}

static void test_rows(void **state)
{
    (void)state;
    for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++) {
        const struct row *row = &rows[r];
        char shown[512];
        format_args(row, shown, sizeof shown);
        print_message("  areq%s\n", shown);

        /* getopt_long permutes the vector, never the strings: they may be literals. */
        char *argv[MAX_ARGS + 2];
        int argc = 0;
        argv[argc++] = "areq";
        for (size_t i = 0; i < MAX_ARGS && row->args[i] != NULL; i++)
            argv[argc++] = (char *)row->args[i];
        argv[argc] = NULL;

        struct options o;
        char err[256];
        memset(err, 0, sizeof err);
        int rc = options_parse(argc, argv, &o, err, sizeof err);
        assert_int_equal(rc, row->want);

        if (rc == OPTIONS_RUN) {
            char got[1024], want[1024];
            describe(&o, got, sizeof got);
            expected(row->fields, want, sizeof want);
            assert_string_equal(got, want);
            assert_true(o.ninputs + o.nurls >= 1);
        } else if (rc == OPTIONS_USAGE) {
            assert_true(strlen(err) > 0);
            for (int i = 0; i < 2; i++) {
                if (row->err[i] != NULL && strstr(err, row->err[i]) == NULL)
                    fail_msg("message \"%s\" lacks \"%s\"", err, row->err[i]);
            }
        }
        options_finish(&o);
        assert_null(o.inputs);
    }
}

/* Inputs point into argv, as the header says, in the order given. */
static void test_inputs_point_into_argv(void **state)
{
    (void)state;
    char a[] = "a.txt", b[] = "b.txt", c[] = "-c", five[] = "5";
    char *argv[] = {"areq", a, c, five, b, NULL};
    struct options o;
    char err[128];
    assert_int_equal(options_parse(5, argv, &o, err, sizeof err), OPTIONS_RUN);
    assert_int_equal(o.ninputs, 2);
    assert_ptr_equal(o.inputs[0], a);
    assert_ptr_equal(o.inputs[1], b);
    options_finish(&o);
    options_finish(&o); /* a second finish is harmless */
}

/* A parse that stops inside a cluster of short options ("-hv" stops at h) must leave
 * nothing behind for the next parse. */
static void test_parse_is_repeatable(void **state)
{
    (void)state;
    struct options o;
    char err[128];
    char *first[] = {"areq", "-hv", NULL};
    assert_int_equal(options_parse(2, first, &o, err, sizeof err), OPTIONS_HELP);
    options_finish(&o);

    char *second[] = {"areq", "x.txt", NULL};
    assert_int_equal(options_parse(2, second, &o, err, sizeof err), OPTIONS_RUN);
    assert_int_equal(o.verbosity, 0);
    assert_int_equal(o.ninputs, 1);
    assert_string_equal(o.inputs[0], "x.txt");
    options_finish(&o);

    char *third[] = {"areq", "-c", "abc", "-q", NULL};
    assert_int_equal(options_parse(4, third, &o, err, sizeof err), OPTIONS_USAGE);
    options_finish(&o);
    char *fourth[] = {"areq", NULL};
    assert_int_equal(options_parse(1, fourth, &o, err, sizeof err), OPTIONS_RUN);
    assert_int_equal(o.verbosity, 0);
    assert_int_equal(o.concurrency, 100);
    assert_string_equal(o.inputs[0], "urls.txt");
    options_finish(&o);
}

/* A short message buffer truncates the message and never overruns (ASan would say so). */
static void test_short_error_buffer(void **state)
{
    (void)state;
    struct options o;
    char *err = malloc(8);
    assert_non_null(err);
    char *argv[] = {"areq", "-c", "a-long-bad-value", NULL};
    assert_int_equal(options_parse(3, argv, &o, err, 8), OPTIONS_USAGE);
    assert_int_equal(strlen(err), 7);
    options_finish(&o);
    free(err);
}

/* ---- configuration files ---- */

static char config_path[64];

static void write_config(const char *text)
{
    strcpy(config_path, "/tmp/areq-test-config-XXXXXX");
    int fd = mkstemp(config_path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_config_file(void **state)
{
    (void)state;
    write_config("# a comment\n"
                 "\n"
                 "  concurrency 5\n"
                 "--timeout=2.5\n"
                 "header: \"X-A: one two\"\n"
                 "-v\n"
                 "url = http://a.example/\n"
                 "no-header   # trailing comment\n"
                 "user-agent \"q\\\"uote\"\n"
                 "include \"a b\"\n");
    struct options o;
    char err[256] = "";
    options_init(&o);
    assert_int_equal(options_apply_file(&o, config_path, 0, err, sizeof err), OPTIONS_RUN);
    /* The command line comes after the file and wins. */
    char *argv[] = {"areq", "-c", "7", "list.txt", NULL};
    assert_int_equal(options_apply_argv(&o, 4, argv, err, sizeof err), OPTIONS_RUN);
    assert_int_equal(options_finish_parse(&o, err, sizeof err), OPTIONS_RUN);
    unlink(config_path);
    assert_int_equal(o.concurrency, 7);
    assert_true(o.timeout_s == 2.5);
    assert_int_equal(o.nheaders, 1);
    assert_string_equal(o.headers[0], "X-A: one two");
    assert_int_equal(o.verbosity, 1);
    assert_int_equal(o.nurls, 1);
    assert_string_equal(o.urls[0], "http://a.example/");
    assert_int_equal(o.header, 0);
    assert_string_equal(o.user_agent, "q\"uote");
    assert_int_equal(o.ninclude, 1);
    assert_string_equal(o.include[0], "a b");
    assert_int_equal(o.ninputs, 1);
    assert_string_equal(o.inputs[0], "list.txt");
    options_finish(&o);
}

static void expect_config_error(const char *text, const char *want1, const char *want2)
{
    write_config(text);
    struct options o;
    char err[512] = "";
    options_init(&o);
    int rc = options_apply_file(&o, config_path, 0, err, sizeof err);
    print_message("  %s -> %s\n", text, err);
    assert_int_equal(rc, OPTIONS_USAGE);
    char where[96];
    snprintf(where, sizeof where, "%s:%s", config_path, want1);
    if (strstr(err, where) == NULL)
        fail_msg("message \"%s\" lacks \"%s\"", err, where);
    if (strstr(err, want2) == NULL)
        fail_msg("message \"%s\" lacks \"%s\"", err, want2);
    options_finish(&o);
    unlink(config_path);
}

static void test_config_errors(void **state)
{
    (void)state;
    expect_config_error("verbose\ndepht 2\n", "2:", "did you mean 'depth'");
    expect_config_error("concurrency\n", "1:", "needs a value");
    expect_config_error("concurrency 5 6\n", "1:", "unexpected '6'");
    expect_config_error("\n\nheader \"X: 1\n", "3:", "no closing quote");
    expect_config_error("no-header yes\n", "1:", "takes no value");
    expect_config_error("concurrency 0\n", "1:", "invalid --concurrency '0'");
    expect_config_error("-Z\n", "1:", "unknown option '-Z'");
    expect_config_error("conc 5\n", "1:", "unknown option 'conc'"); /* no prefixes in files */
    expect_config_error("no-config\n", "1:", "first argument");
    expect_config_error("config /nonexistent/areq.conf\n", "1:", "cannot read");

    /* A file that includes itself stops at a depth, with a message. */
    write_config("");
    FILE *f = fopen(config_path, "w");
    assert_non_null(f);
    fprintf(f, "config %s\n", config_path);
    fclose(f);
    struct options o;
    char err[512] = "";
    options_init(&o);
    assert_int_equal(options_apply_file(&o, config_path, 0, err, sizeof err), OPTIONS_USAGE);
    assert_non_null(strstr(err, "too deeply"));
    options_finish(&o);
    unlink(config_path);

    /* The default file may be missing; a named one may not. */
    options_init(&o);
    assert_int_equal(options_apply_file(&o, "/nonexistent/areqrc", 1, err, sizeof err),
                     OPTIONS_RUN);
    assert_int_equal(options_apply_file(&o, "/nonexistent/areqrc", 0, err, sizeof err),
                     OPTIONS_USAGE);
    assert_non_null(strstr(err, "/nonexistent/areqrc"));
    options_finish(&o);
}

static void test_default_config_path(void **state)
{
    (void)state;
    char path[256];
    setenv("XDG_CONFIG_HOME", "/x/conf", 1);
    setenv("HOME", "/home/u", 1);
    assert_int_equal(options_default_config(path, sizeof path), 0);
    assert_string_equal(path, "/x/conf/areq/areqrc");
    /* A relative XDG_CONFIG_HOME is invalid by the specification: ignored. */
    setenv("XDG_CONFIG_HOME", "rel", 1);
    assert_int_equal(options_default_config(path, sizeof path), 0);
    assert_string_equal(path, "/home/u/.config/areq/areqrc");
    unsetenv("XDG_CONFIG_HOME");
    unsetenv("HOME");
    assert_int_equal(options_default_config(path, sizeof path), -1);
}

/* ---- what is derived from the table ---- */

/* Every long option of --help is in each completion script, and the other way round. */
static void test_completions_cover_help(void **state)
{
    (void)state;
    char *help = NULL;
    size_t help_len = 0;
    FILE *f = open_memstream(&help, &help_len);
    options_print_help(f);
    fclose(f);
    static const char *const shells[] = {"bash", "zsh", "fish"};
    for (size_t s = 0; s < 3; s++) {
        char *script = NULL;
        size_t len = 0;
        f = open_memstream(&script, &len);
        assert_int_equal(options_print_completion(f, shells[s]), 0);
        fclose(f);
        size_t found = 0;
        for (const char *h = strstr(help, "--"); h != NULL; h = strstr(h + 2, "--")) {
            if (h == help || h[-1] != ' ')
                continue;
            char name[64];
            size_t n = strspn(h + 2, "abcdefghijklmnopqrstuvwxyz0123456789-");
            if (n == 0 || n >= sizeof name)
                continue;
            memcpy(name, h + 2, n);
            name[n] = '\0';
            char spelled[80];
            snprintf(spelled, sizeof spelled, s == 2 ? "-l %s " : "--%s", name);
            if (strstr(script, spelled) == NULL)
                fail_msg("the %s completion lacks %s", shells[s], name);
            found++;
        }
        assert_true(found > 40);
        free(script);
    }
    free(help);
    assert_int_equal(options_print_completion(stdout, "tcsh"), -1);
}

static void test_url_hint(void **state)
{
    (void)state;
    char hint[256];
    options_url_hint("example.org/page", hint, sizeof hint);
    assert_non_null(strstr(hint, "https://example.org/page"));
    options_url_hint("www.example.com", hint, sizeof hint);
    assert_non_null(strstr(hint, "https://www.example.com"));
    options_url_hint("localhost:8080/x", hint, sizeof hint);
    assert_string_equal(hint, ""); /* one label: as likely a file as a host */
    static const char *const files[] = {"urls.txt", "list", "my.list", "a b.org/x", "../l.txt",
                                        "dir/urls.txt", "x.json", "1.2.3.4.5", ""};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        options_url_hint(files[i], hint, sizeof hint);
        if (hint[0] != '\0')
            fail_msg("'%s' got a hint: %s", files[i], hint);
    }
}

/* Issue 13: --scope is an enum options_scope of its own, each word mapped by name; every
 * word the row offers must land on its value, and nothing else is taken. */
static void test_scope_words(void **state)
{
    (void)state;
    static const struct {
        const char *word;
        int rc;
        enum options_scope scope;
    } cases[] = {
        {NULL, OPTIONS_RUN, OPTIONS_SCOPE_HOST}, /* the default */
        {"host", OPTIONS_RUN, OPTIONS_SCOPE_HOST},
        {"domain", OPTIONS_RUN, OPTIONS_SCOPE_DOMAIN},
        {"any", OPTIONS_RUN, OPTIONS_SCOPE_ANY},
        {"Domain", OPTIONS_USAGE, OPTIONS_SCOPE_HOST},
        {"dom", OPTIONS_USAGE, OPTIONS_SCOPE_HOST},
        {"", OPTIONS_USAGE, OPTIONS_SCOPE_HOST},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *argv[] = {"areq", "--scope", (char *)cases[i].word, "http://example.com/", NULL};
        int argc = 4;
        if (cases[i].word == NULL) {
            argv[1] = "http://example.com/";
            argv[2] = NULL;
            argc = 2;
        }
        struct options o;
        char err[256] = "";
        int rc = options_parse(argc, argv, &o, err, sizeof err);
        if (rc != cases[i].rc)
            fail_msg("--scope '%s': %d (%s), expected %d", cases[i].word ? cases[i].word : "-",
                     rc, err, cases[i].rc);
        if (rc == OPTIONS_RUN)
            assert_int_equal(o.scope, cases[i].scope);
        else
            assert_non_null(strstr(err, "--scope"));
        options_finish(&o);
    }
}

int main(void)
{
    /* Rows rely on GNU getopt_long permuting file names past the options. */
    unsetenv("POSIXLY_CORRECT");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rows),
        cmocka_unit_test(test_scope_words),
        cmocka_unit_test(test_config_file),
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_default_config_path),
        cmocka_unit_test(test_completions_cover_help),
        cmocka_unit_test(test_url_hint),
        cmocka_unit_test(test_inputs_point_into_argv),
        cmocka_unit_test(test_parse_is_repeatable),
        cmocka_unit_test(test_short_error_buffer),
    };
    return cmocka_run_group_tests_name("options", tests, NULL, NULL);
}
