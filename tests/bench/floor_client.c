/* floor_client: the least any HTTP client can do for a list of URLs, as a yardstick.
 *
 * It opens non-blocking TCP connections on one thread with raw epoll, sends a fixed GET per
 * URL, reads each answer to EOF without parsing it (beyond "HTTP/1.x 2xx" at the start) and
 * closes: no libuv, no libcurl, no DNS, no TLS, no keep-alive, no output. Whatever time and
 * CPU it needs on a machine is the lower bound for any client there, so scenario B of
 * tests/bench/run.py runs it beside areq, curl and wget2 and their figures can be read against
 * it. It is a bench tool, not a test, and not installed.
 *
 * Usage: floor_client [-c N] LIST
 *
 * LIST holds one URL a line, each "http://A.B.C.D:PORT/path" (numeric IPv4, explicit port);
 * blank lines and lines starting with '#' are skipped, and a fragment is not sent. Up to N
 * connections (default: every URL at once) are open at a time; each one that ends starts the
 * next URL. At the end it prints one line to standard output; its times count from the first
 * socket(), after the list is read. Exit status: 0 all answers were 2xx, 1 some failed (could
 * not connect, reset, or not a 2xx HTTP/1.x answer), 2 usage or input error. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum exit_status {
    EXIT_ALL_OK = 0,
    EXIT_SOME_FAILED = 1,
    EXIT_USAGE = 2, /* also: a list that cannot be read or holds a line it cannot use */
};

/* Failures reported one by one before the rest are only counted. */
#define MAX_REPORTED 10

/* One URL of the list, with its request ready to send. */
struct url {
    struct sockaddr_in addr;
    size_t req_off; /* into run.reqs */
    size_t req_len;
    unsigned long line;
};

enum conn_state {
    CONN_FREE = 0,
    CONN_SENDING, /* connect in progress or part of the request still to send */
    CONN_READING,
};

/* One open connection, indexed by its descriptor. The first bytes of the answer are kept to
 * check its status line: "HTTP/1.1 200" is 12 bytes. */
#define HEAD_LEN 12
struct conn {
    size_t url;
    size_t sent;
    unsigned char state;
    unsigned char head_len;
    char head[HEAD_LEN];
};

struct run {
    const char *list_name;
    struct url *urls;
    size_t n_urls, urls_cap;
    char *reqs; /* every request, back to back */
    size_t reqs_len, reqs_cap;

    struct conn *conns; /* by descriptor; grown to fit the largest one */
    size_t conns_cap;
    int epfd;
    size_t limit;  /* connections open at a time */
    size_t next;   /* the next URL to start */
    size_t active; /* connections open now */
    size_t ok, failed;
    unsigned long long bytes;
    double t0, last_sent;
};

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Returns array p of *cap items of `size` bytes, reallocated if need be to hold `need` (> 0)
 * items: its capacity doubles from `first`, and new items are zeroed. NULL when out of memory;
 * p is then unchanged. */
static void *grow(void *p, size_t *cap, size_t need, size_t size, size_t first)
{
    if (need <= *cap)
        return p;
    size_t n = *cap ? *cap : first;
    while (n < need) {
        if (n > SIZE_MAX / 2 / size)
            return NULL;
        n *= 2;
    }
    char *q = realloc(p, n * size);
    if (!q)
        return NULL;
    memset(q + *cap * size, 0, (n - *cap) * size);
    *cap = n;
    return q;
}

/* ---------------------------------------------------------------- reading the list */

/* Parses "http://A.B.C.D:PORT[/path]" and appends the URL and its request. Returns 0, or
 * -1 with *why set to what is wrong (or "out of memory"). */
static int add_url(struct run *r, const char *s, unsigned long line, const char **why)
{
    static const char scheme[] = "http://";
    if (strncmp(s, scheme, sizeof scheme - 1) != 0) {
        *why = "not an http:// URL";
        return -1;
    }
    const char *host = s + sizeof scheme - 1;
    const char *colon = strchr(host, ':');
    size_t host_len = colon ? (size_t)(colon - host) : 0;
    char host_str[INET_ADDRSTRLEN];
    struct sockaddr_in addr = {.sin_family = AF_INET};
    if (!colon || host_len == 0 || host_len >= sizeof host_str) {
        *why = "host must be a numeric IPv4 address followed by :PORT";
        return -1;
    }
    memcpy(host_str, host, host_len);
    host_str[host_len] = '\0';
    if (inet_pton(AF_INET, host_str, &addr.sin_addr) != 1) {
        *why = "host must be a numeric IPv4 address followed by :PORT";
        return -1;
    }

    const char *p = colon + 1;
    unsigned long port = 0;
    size_t digits = 0;
    for (; *p >= '0' && *p <= '9' && digits < 6; p++, digits++)
        port = port * 10 + (unsigned long)(*p - '0');
    if (digits == 0 || port == 0 || port > 65535 || (*p != '\0' && *p != '/')) {
        *why = "port must be a number from 1 to 65535, followed by the path or the end";
        return -1;
    }
    addr.sin_port = htons((uint16_t)port);

    /* The request line must stay one line: no spaces or control bytes in the path. */
    const char *path = *p ? p : "/";
    size_t path_len = strcspn(path, "#");
    for (size_t i = 0; i < path_len; i++) {
        unsigned char c = (unsigned char)path[i];
        if (c <= ' ' || c == 0x7f) {
            *why = "space or control character in the path";
            return -1;
        }
    }

    size_t authority_len = (size_t)(p - host);
    size_t need = path_len + authority_len + 64;
    char *reqs = grow(r->reqs, &r->reqs_cap, r->reqs_len + need, 1, 1 << 16);
    if (reqs)
        r->reqs = reqs;
    struct url *urls = grow(r->urls, &r->urls_cap, r->n_urls + 1, sizeof *r->urls, 1024);
    if (urls)
        r->urls = urls;
    if (!reqs || !urls) {
        *why = "out of memory";
        return -1;
    }
    int len = snprintf(r->reqs + r->reqs_len, need,
                       "GET %.*s HTTP/1.1\r\nHost: %.*s\r\nConnection: close\r\n\r\n",
                       (int)path_len, path, (int)authority_len, host);
    if (len < 0 || (size_t)len >= need) {
        *why = "request too long";
        return -1;
    }
    r->urls[r->n_urls++] = (struct url){
        .addr = addr, .req_off = r->reqs_len, .req_len = (size_t)len, .line = line};
    r->reqs_len += (size_t)len;
    return 0;
}

/* Reads every URL of the list; 0, or -1 after saying on stderr which line is wrong. */
static int read_list(struct run *r)
{
    FILE *f = fopen(r->list_name, "r");
    if (!f) {
        fprintf(stderr, "floor_client: %s: %s\n", r->list_name, strerror(errno));
        return -1;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    unsigned long lineno = 0;
    int rc = 0;
    while ((n = getline(&line, &cap, f)) >= 0) {
        lineno++;
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = '\0';
        if (n == 0 || line[0] == '#')
            continue;
        const char *why;
        if (strlen(line) != (size_t)n) {
            why = "NUL byte in the line";
        } else if (add_url(r, line, lineno, &why) == 0) {
            continue;
        }
        fprintf(stderr, "floor_client: %s:%lu: %s\n", r->list_name, lineno, why);
        rc = -1;
        break;
    }
    if (rc == 0 && ferror(f)) {
        fprintf(stderr, "floor_client: %s: %s\n", r->list_name, strerror(errno));
        rc = -1;
    }
    free(line);
    fclose(f);
    return rc;
}

/* ---------------------------------------------------------------- the connections */

/* Counts URL u as failed, and says why for the first few. */
static void fail(struct run *r, size_t u, const char *what, int err)
{
    r->failed++;
    if (r->failed <= MAX_REPORTED)
        fprintf(stderr, "floor_client: %s:%lu: %s%s%s\n", r->list_name, r->urls[u].line, what,
                err ? ": " : "", err ? strerror(err) : "");
    else if (r->failed == MAX_REPORTED + 1)
        fprintf(stderr, "floor_client: (further failures are only counted)\n");
}

static void finish(struct run *r, int fd)
{
    close(fd); /* also takes it out of the epoll set: nothing else holds the descriptor */
    r->conns[fd].state = CONN_FREE;
    r->active--;
}

/* Opens connections until `limit` are open or no URL is left. A URL whose connection cannot
 * even start counts as failed, except when the process is out of descriptors while others
 * are open: then the URL waits and fewer connections are kept open from now on. */
static void start_more(struct run *r)
{
    while (r->active < r->limit && r->next < r->n_urls) {
        size_t u = r->next;
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            if ((errno == EMFILE || errno == ENFILE) && r->active > 0) {
                fprintf(stderr, "floor_client: out of descriptors at %zu connections; "
                                "keeping at most that many open\n", r->active);
                r->limit = r->active;
                return;
            }
            r->next++;
            fail(r, u, "socket", errno);
            continue;
        }
        r->next++;
        struct conn *conns = grow(r->conns, &r->conns_cap, (size_t)fd + 1, sizeof *r->conns, 1024);
        if (!conns) {
            close(fd);
            fail(r, u, "out of memory", 0);
            continue;
        }
        r->conns = conns;
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        /* EINTR: the connection still goes on in the background, like EINPROGRESS. */
        if (connect(fd, (const struct sockaddr *)&r->urls[u].addr, sizeof r->urls[u].addr) != 0 &&
            errno != EINPROGRESS && errno != EINTR) {
            int err = errno;
            close(fd);
            fail(r, u, "connect", err);
            continue;
        }
        /* Writable means connected (or failed: send() then says how). */
        struct epoll_event ev = {.events = EPOLLOUT, .data.fd = fd};
        if (epoll_ctl(r->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
            int err = errno;
            close(fd);
            fail(r, u, "epoll_ctl", err);
            continue;
        }
        r->conns[fd] = (struct conn){.url = u, .state = CONN_SENDING};
        r->active++;
    }
}

/* Sends what is left of the request; once it is all out, waits for the answer instead. */
static void on_writable(struct run *r, int fd)
{
    struct conn *c = &r->conns[fd];
    const struct url *u = &r->urls[c->url];
    while (c->sent < u->req_len) {
        ssize_t n = send(fd, r->reqs + u->req_off + c->sent, u->req_len - c->sent, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return; /* still EPOLLOUT: the rest goes when there is room */
        if (n < 0) {
            /* including a connect that failed: ECONNREFUSED, ETIMEDOUT, ... */
            fail(r, c->url, c->sent ? "send" : "connect", errno);
            finish(r, fd);
            return;
        }
        c->sent += (size_t)n;
    }
    r->last_sent = now() - r->t0;
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
    if (epoll_ctl(r->epfd, EPOLL_CTL_MOD, fd, &ev) != 0) {
        fail(r, c->url, "epoll_ctl", errno);
        finish(r, fd);
        return;
    }
    c->state = CONN_READING;
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* True if the answer starts like "HTTP/1.1 200". */
static int status_ok(const struct conn *c)
{
    const char *h = c->head;
    return c->head_len == HEAD_LEN && memcmp(h, "HTTP/1.", 7) == 0 && is_digit(h[7]) &&
           h[8] == ' ' && h[9] == '2' && is_digit(h[10]) && is_digit(h[11]);
}

/* Reads once (the loop is level-triggered: more data or EOF wakes it again); at EOF, judges
 * the answer and makes room for the next URL. */
static void on_readable(struct run *r, int fd)
{
    static char buf[1 << 16];
    struct conn *c = &r->conns[fd];
    ssize_t n;
    do
        n = recv(fd, buf, sizeof buf, 0);
    while (n < 0 && errno == EINTR);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return;
    if (n < 0) {
        fail(r, c->url, "recv", errno);
        finish(r, fd);
        return;
    }
    if (n > 0) {
        r->bytes += (unsigned long long)n;
        if (c->head_len < HEAD_LEN) {
            size_t room = (size_t)HEAD_LEN - c->head_len;
            size_t take = room < (size_t)n ? room : (size_t)n;
            memcpy(c->head + c->head_len, buf, take);
            c->head_len = (unsigned char)(c->head_len + take);
        }
        return;
    }
    if (status_ok(c))
        r->ok++;
    else
        fail(r, c->url, c->head_len ? "not a 2xx HTTP/1.x answer" : "closed without an answer", 0);
    finish(r, fd);
}

static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl); /* best effort: EMFILE is handled in start_more() */
    }
}

static int usage(void)
{
    fprintf(stderr, "usage: floor_client [-c N] LIST\n"
                    "  LIST: one URL a line, http://A.B.C.D:PORT/path\n"
                    "  -c N: connections open at a time (default: all URLs at once)\n");
    return EXIT_USAGE;
}

int main(int argc, char **argv)
{
    struct run r = {.epfd = -1};
    size_t concurrency = 0;
    int opt;
    while ((opt = getopt(argc, argv, "c:h")) != -1) {
        if (opt != 'c')
            return usage();
        char *end;
        errno = 0;
        unsigned long long v = strtoull(optarg, &end, 10);
        if (errno || end == optarg || *end || v == 0 || optarg[0] == '-') {
            fprintf(stderr, "floor_client: -c %s: expected a positive number\n", optarg);
            return EXIT_USAGE;
        }
        concurrency = (size_t)v;
    }
    if (optind != argc - 1)
        return usage();
    r.list_name = argv[optind];

    int status = EXIT_USAGE;
    if (read_list(&r) != 0)
        goto out;
    r.limit = concurrency && concurrency < r.n_urls ? concurrency : r.n_urls;
    raise_nofile();
    r.epfd = epoll_create1(EPOLL_CLOEXEC);
    if (r.epfd < 0) {
        fprintf(stderr, "floor_client: epoll_create1: %s\n", strerror(errno));
        goto out;
    }

    r.t0 = now();
    start_more(&r);
    struct epoll_event evs[1024];
    while (r.active > 0) {
        int k = epoll_wait(r.epfd, evs, (int)(sizeof evs / sizeof evs[0]), -1);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            fprintf(stderr, "floor_client: epoll_wait: %s\n", strerror(errno));
            goto out;
        }
        for (int i = 0; i < k; i++) {
            int fd = evs[i].data.fd;
            /* An error or hangup shows as readable or writable too: send()/recv() report it. */
            if (r.conns[fd].state == CONN_SENDING)
                on_writable(&r, fd);
            else if (r.conns[fd].state == CONN_READING)
                on_readable(&r, fd);
        }
        start_more(&r);
    }
    double done = now() - r.t0;

    printf("floor_client: %zu URLs, %zu ok, %zu failed, %.1f MB, last request sent at %.2f s, "
           "done %.2f s\n",
           r.n_urls, r.ok, r.failed, (double)r.bytes / 1e6, r.last_sent, done);
    status = r.failed ? EXIT_SOME_FAILED : EXIT_ALL_OK;
out:
    if (r.epfd >= 0)
        close(r.epfd);
    free(r.conns);
    free(r.reqs);
    free(r.urls);
    return status;
}
