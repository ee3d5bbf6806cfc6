/* The libcurl multi interface on a libuv loop. The traps this wiring avoids are listed in
 * shared/notes/curl-on-libuv.md; each is marked below where it is handled. */
#include "http.h"

#include <curl/curl.h>
#include <errno.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "seen.h"

/* One per socket that libcurl asked us to watch. Freed only in its close callback, since
 * libuv may still reference it until then. */
struct poll_ctx {
    uv_poll_t poll;
    curl_socket_t fd;
    int events;        /* what libcurl asked to watch */
    int watching;      /* the events the poll is started with; 0: stopped */
    int idle;          /* libcurl let go of the socket (CURL_POLL_REMOVE), still open */
    http_client *client;
};

struct http_client {
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t timer;  /* libcurl's one timeout */
    uv_idle_t kick;    /* a 0 ms timeout, run on the next loop turn */
    struct http_options opt;

    /* fd -> poll context, so that the close-socket callback can stop a poll before the
     * descriptor is closed and possibly reused. */
    struct poll_ctx **polls;
    size_t npolls;

    struct curl_slist *headers; /* the same list for every transfer */
    struct curl_slist *resolve; /* --resolve entries, likewise */
    char *proxy;
    /* The strings of c->opt that the caller need not keep: ours, copied. */
    char *cacert, *capath, *cookie_data, *user, *netrc_file;
    CURLSH *share;              /* the cookie jar every transfer uses, or NULL */
    X509_STORE *trust;          /* the CA certificates, parsed once; NULL: libcurl's way */
    int share_trust;            /* trust is (to be) loaded and shared: see load_trust() */
    int caller_validators;      /* the extra headers hold If-None-Match or If-Modified-Since,
                                   so a 304 to any transfer was asked for */

    CURL **spare;      /* easy handles ready for reuse */
    size_t nspare, spare_cap;
    size_t running;    /* transfers added to the multi handle and not yet removed */
    /* Fingerprints of the origins ("scheme://authority") where a transfer has ended, so that
     * a connection to them may be idle in the pool: see configure(). */
    seen_set origins_done;
    long recv_buffer;  /* CURLOPT_BUFFERSIZE for every transfer; 0: libcurl's 16 KiB */

    int open_handles;  /* timer and kick not yet closed: the client is freed at 0 */
};

/* ---- poll contexts ---- */

static void on_poll_closed(uv_handle_t *h)
{
    free(h->data);
}

/* Stops watching fd. Trap: a poll left active on a closed fd makes libuv abort on EBADF,
 * or assert when the number is reused. */
static void poll_forget(http_client *c, curl_socket_t fd)
{
    if (fd < 0 || (size_t)fd >= c->npolls || c->polls[fd] == NULL)
        return;
    struct poll_ctx *ctx = c->polls[fd];
    c->polls[fd] = NULL;
    /* uv_close stops the poll itself; a uv_poll_stop before it would cost one more
     * epoll_ctl(DEL) per socket (libuv removes the fd on every stop and start). */
    uv_close((uv_handle_t *)&ctx->poll, on_poll_closed);
}

static void drain_done(http_client *c);

static void on_poll(uv_poll_t *h, int status, int events);

/* Starts or changes the poll to `events`, when it is not watching them already: libuv's
 * uv_poll_start takes the fd out of epoll and puts it back every time. */
static int watch(struct poll_ctx *ctx, int events)
{
    if (ctx->watching == events)
        return 0;
    int rc = uv_poll_start(&ctx->poll, events, on_poll);
    ctx->watching = rc == 0 ? events : 0;
    return rc;
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    struct poll_ctx *ctx = h->data;
    http_client *c = ctx->client;
    curl_socket_t fd = ctx->fd;
    /* An idle connection that turns readable was closed by the peer (or broke): libcurl
     * finds out itself before it uses it again. Watched no more, lest epoll report it on
     * every turn. */
    if (ctx->idle) {
        uv_poll_stop(h);
        ctx->watching = 0;
        return;
    }
    int flags = 0;
    /* Trap: an error may come with no events; libcurl must hear of it. With the error alone
     * it gives up without a look ("select/poll returned error"); letting it read as well
     * surfaces the real cause (a reset, say) and any data that came before it. */
    if (status < 0)
        flags = CURL_CSELECT_ERR | CURL_CSELECT_IN;
    if (events & UV_READABLE)
        flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
        flags |= CURL_CSELECT_OUT;
    int running;
    curl_multi_socket_action(c->multi, fd, flags, &running);
    /* libuv stops a poll that reported an error. If libcurl still wants the socket (it read
     * data that came before the error), watch it again, or the transfer would sit until
     * its timeout; the next poll brings the error itself. */
    if (status < 0 && (size_t)fd < c->npolls && c->polls[fd] == ctx &&
        !uv_is_active((uv_handle_t *)&ctx->poll)) {
        ctx->watching = 0;
        if (!ctx->idle)
            watch(ctx, ctx->events);
    }
    drain_done(c);
}

static int grow_polls(http_client *c, curl_socket_t fd)
{
    size_t n = c->npolls ? c->npolls : 256;
    while (n <= (size_t)fd)
        n *= 2;
    struct poll_ctx **p = realloc(c->polls, n * sizeof *p);
    if (p == NULL)
        return -ENOMEM;
    memset(p + c->npolls, 0, (n - c->npolls) * sizeof *p);
    c->polls = p;
    c->npolls = n;
    return 0;
}

/* Whether `fd`, which libcurl no longer wants watched, is the socket of a connection it has
 * kept in its pool, and so will close through on_curl_close_socket. That matters because
 * libcurl closes some sockets without that callback, and a poll that outlives its socket
 * makes libuv abort (EBADF from epoll_ctl) or watch a stranger that got the same number.
 * In libcurl 7.88 to 8.4 those are the resolver thread's socketpair (REMOVE, then close)
 * and any socket still connecting when it is given up: a happy-eyeballs attempt that
 * lost, or every attempt of a transfer stopped while connecting (closed first, REMOVE
 * after; test_crawl's test_stop_in_any_state_gives_everything_back aborted in 4 runs of 5
 * when such polls were kept). A socket becomes the connection's own (conn->sock[]) only
 * once connected, and from then on libcurl closes it through the callback (cf-socket.c
 * socket_close). CURLINFO_ACTIVESOCKET names exactly that socket, and only once the
 * transfer is complete and its connection was kept ("let libcurl close the socket", says
 * its manual): anything else is not ours to keep, so the answer is no. (libcurl finds it by
 * walking its pool, as curl_multi_remove_handle does for every transfer anyway.) */
static int stays_in_pool(CURL *easy, curl_socket_t fd)
{
    curl_socket_t kept = CURL_SOCKET_BAD;
    return easy != NULL && curl_easy_getinfo(easy, CURLINFO_ACTIVESOCKET, &kept) == CURLE_OK &&
           kept == fd;
}

/* A pooled connection is usually taken up again within a turn or two: its context stays,
 * watching only for the peer to close it (on_poll), so that taking it up again costs no
 * epoll_ctl. Closing the poll and making it again cost 9,772 epoll_ctl and 1,917 ioctl
 * (and a malloc a poll) for 2,000 transfers at -c 100; kept, 702 and 103. It goes when
 * libcurl closes the socket (on_curl_close_socket). */
static void keep_idle(http_client *c, struct poll_ctx *ctx)
{
    ctx->idle = 1;
    if (ctx->watching != 0 && watch(ctx, UV_READABLE) != 0) {
        poll_forget(c, ctx->fd);
        return;
    }
    /* Nothing waits on an idle connection: it keeps no loop running (uv_ref and uv_unref
     * set a flag, they do not count, so taking it up again simply refs it). */
    uv_unref((uv_handle_t *)&ctx->poll);
}

/* CURLMOPT_SOCKETFUNCTION. Trap: returning -1 aborts every transfer, so only a failure
 * to watch the socket at all does. */
static int on_curl_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    (void)socketp;
    http_client *c = userp;
    if (what == CURL_POLL_REMOVE) {
        /* Trap: REMOVE does not mean closed; the same fd may come back. */
        struct poll_ctx *ctx = (size_t)fd < c->npolls ? c->polls[fd] : NULL;
        if (ctx != NULL && stays_in_pool(easy, fd))
            keep_idle(c, ctx);
        else
            poll_forget(c, fd);
        return 0;
    }
    if ((size_t)fd >= c->npolls && grow_polls(c, fd) != 0)
        return -1;
    struct poll_ctx *ctx = c->polls[fd];
    if (ctx == NULL) {
        ctx = malloc(sizeof *ctx);
        if (ctx == NULL)
            return -1;
        if (uv_poll_init_socket(c->loop, &ctx->poll, fd) != 0) {
            free(ctx);
            return -1;
        }
        ctx->fd = fd;
        ctx->client = c;
        ctx->watching = 0;
        ctx->idle = 0;
        ctx->poll.data = ctx;
        c->polls[fd] = ctx;
    }
    if (ctx->idle)
        uv_ref((uv_handle_t *)&ctx->poll);
    ctx->idle = 0;
    int events = 0;
    if (what & CURL_POLL_IN)
        events |= UV_READABLE;
    if (what & CURL_POLL_OUT)
        events |= UV_WRITABLE;
    ctx->events = events;
    return watch(ctx, events) == 0 ? 0 : -1;
}

/* CURLOPT_CLOSESOCKETFUNCTION: stop the poll before the descriptor goes away. */
static int on_curl_close_socket(void *clientp, curl_socket_t fd)
{
    poll_forget(clientp, fd);
    return close(fd);
}

/* ---- libcurl's timer ---- */

static void socket_action_timeout(http_client *c)
{
    int running;
    curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    /* Trap: a transfer can end here (its own timeout, say); reap it now. */
    drain_done(c);
}

static void on_timer(uv_timer_t *h)
{
    socket_action_timeout(h->data);
}

static void on_kick(uv_idle_t *h)
{
    uv_idle_stop(h);
    socket_action_timeout(h->data);
}

/* CURLMOPT_TIMERFUNCTION. Trap: never call socket_action from here (it recurses), keep one
 * timer (each call replaces it), and run a 0 ms timeout on the next loop turn through an
 * idle handle, because a zero uv_timer restarted from a timer callback can spin inside
 * one turn in libuv before 1.48. */
static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    http_client *c = userp;
    uv_timer_stop(&c->timer);
    uv_idle_stop(&c->kick);
    if (timeout_ms == 0)
        uv_idle_start(&c->kick, on_kick);
    else if (timeout_ms > 0)
        uv_timer_start(&c->timer, on_timer, (uint64_t)timeout_ms, 0);
    return 0;
}

/* ---- transfers ---- */

static int is_2xx(long status)
{
    return status >= 200 && status < 300;
}

/* The fingerprint of the origin of `url`: its scheme and authority, up to the path. URLs
 * here are normalised (lower-case scheme and host, no default port), so one origin has one
 * spelling; a URL with no "://" counts as its own origin. */
static uint64_t origin_of(const char *url)
{
    const char *sep = strstr(url, "://");
    size_t len = strlen(url);
    if (sep != NULL)
        len = (size_t)(sep + 3 - url) + strcspn(sep + 3, "/?#");
    return seen_hash(url, len);
}

/* Notes that a transfer to `url` has ended. Only a hint for configure(): when the set cannot
 * grow, that origin keeps getting fresh connections, which is slower, never wrong. */
static void origin_done(http_client *c, const char *url)
{
    if (url != NULL)
        (void)seen_add(&c->origins_done, origin_of(url));
}

/* Bytes kept past a body of declared length: more than any word a scanner loads at once. */
#define BODY_SLACK 64

/* A sink callback's negative answer stops the transfer. 1 when it did. */
static int sink_failed(http_request *r, int rc)
{
    if (rc >= 0)
        return 0;
    r->sink_error = rc;
    r->aborted_as = HTTP_TRANSPORT;
    r->abort_why = "cannot save the body";
    return 1;
}

/* Asks the sink what it wants of a 2xx body. 0 to go on, -1 when the transfer must stop
 * (aborted_as says why). */
static int sink_start(http_request *r)
{
    const char *ct = NULL;
    if (r->easy != NULL)
        curl_easy_getinfo(r->easy, CURLINFO_CONTENT_TYPE, &ct);
    r->sink_started = 1;
    int rc = r->sink->start(r->sink->ctx, ct);
    if (sink_failed(r, rc))
        return -1;
    r->sink_mode = rc;
    if (rc == 0) {
        r->aborted_as = HTTP_TYPE_REFUSED;
        return -1;
    }
    return 0;
}

static size_t on_curl_write(char *data, size_t size, size_t nmemb, void *userp)
{
    http_request *r = userp;
    size_t n = size * nmemb;
    long status = 0;
    curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
    if (r->bytes == 0 && is_2xx(status) && r->sink != NULL) {
        if (sink_start(r) != 0)
            return 0;
    } else if (r->bytes == 0 && is_2xx(status) && r->accept != NULL) {
        /* The headers of the final response are complete by the first body byte. */
        const char *ct = NULL;
        curl_easy_getinfo(r->easy, CURLINFO_CONTENT_TYPE, &ct);
        if (!r->accept(ct)) {
            r->aborted_as = HTTP_TYPE_REFUSED;
            return 0;
        }
    }
    int keep = r->sink == NULL || (r->sink_mode & HTTP_SINK_KEEP);
    if (r->bytes == 0 && is_2xx(status) && keep) {
        /* One allocation of the declared size instead of doubling through it: fewer copies
         * and page faults. Only a hint: a body may still grow past it, or stop short. Exact,
         * plus a little for scanners that read whole words: a doubled block would leave up
         * to half of itself as slack for record_results() to zero (74 KB pages: 57 KB each,
         * 7% of all instructions in callgrind). */
        curl_off_t declared = -1;
        curl_easy_getinfo(r->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &declared);
        size_t cap = r->keep_first > 0 ? r->keep_first : r->client->opt.max_body;
        if (declared > 0 && (cap == 0 || (size_t)declared <= cap))
            (void)buf_reserve_exact(&r->body, (size_t)declared + BODY_SLACK);
    }
    if (r->keep_first > 0 && r->bytes + n > r->keep_first) {
        /* Enough read: keep the head, stop the transfer, and record_results() calls it
         * complete. */
        size_t room = r->keep_first - r->bytes;
        r->bytes = r->keep_first;
        r->truncated = 1;
        if (is_2xx(status) && buf_append(&r->body, data, room) != 0) {
            snprintf(r->error, sizeof r->error, "out of memory for the body");
            r->aborted_as = HTTP_TRANSPORT;
        } else if (is_2xx(status) && r->fingerprint) {
            fingerprint_add(&r->fp, data, room);
        }
        return 0;
    }
    r->bytes += n;
    if (r->keep_first == 0 && r->client->opt.max_body > 0 && r->bytes > r->client->opt.max_body) {
        /* The cap is on decoded bytes, which MAXFILESIZE cannot see. */
        r->aborted_as = HTTP_TOO_BIG;
        return 0;
    }
    if (!is_2xx(status))
        return n; /* an error page: read it to keep the connection, but keep nothing */
    if ((r->sink_mode & HTTP_SINK_STREAM) && sink_failed(r, r->sink->write(r->sink->ctx, data, n)))
        return 0;
    if (keep && buf_append(&r->body, data, n) != 0) {
        r->abort_why = "out of memory for the body";
        r->aborted_as = HTTP_TRANSPORT;
        return 0;
    }
    if (keep && r->fingerprint)
        fingerprint_add(&r->fp, data, n);
    return n;
}

/* CURLOPT_HEADERFUNCTION: sees every header line, of every response of a redirect chain
 * and every trailer line, which is where HTTP_HEADER_BYTES_MAX is enforced. */
static size_t on_curl_header(char *data, size_t size, size_t nitems, void *userp)
{
    (void)data;
    http_request *r = userp;
    size_t n = size * nitems;
    r->header_bytes += n;
    if (r->header_bytes > HTTP_HEADER_BYTES_MAX) {
        r->aborted_as = HTTP_TRANSPORT;
        r->abort_why = "response headers too large (over 256 KiB, trailers and redirects "
                       "included)";
        return 0; /* a short count makes libcurl stop the transfer */
    }
    return n;
}

/* ---- validators (conditional requests) ---- */

/* Whether a validator can go into a request header as it is: not empty, bounded, and no
 * control character (a CR or LF would end the header and start another). Bytes above 0x7E
 * are allowed: RFC 9110's obs-text, which an ETag may hold. */
static int validator_ok(const char *v)
{
    if (v == NULL || v[0] == '\0')
        return 0;
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)v; *p != '\0'; p++, n++) {
        if (n >= HTTP_VALIDATOR_MAX || *p < 0x20 || *p == 0x7F)
            return 0;
    }
    return 1;
}

/* An IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT", RFC 9110 5.6.7), the form servers send:
 * told by its shape, because curl_getdate() took 11,000 instructions a call (sscanf), 4.5%
 * of an unchanged --state re-run of 2,000 pages. Other forms go to curl_getdate(). */
static int is_fixdate(const char *v)
{
    static const char shape[] = "Aaa, 00 Aaa 0000 00:00:00 GMT";
    if (strlen(v) != sizeof shape - 1)
        return 0;
    for (size_t i = 0; i < sizeof shape - 1; i++) {
        char c = v[i], want = shape[i];
        int ok = want == 'A'   ? c >= 'A' && c <= 'Z'
                 : want == 'a' ? c >= 'a' && c <= 'z'
                 : want == '0' ? c >= '0' && c <= '9'
                               : c == want;
        if (!ok)
            return 0;
    }
    return 1;
}

/* The final response's one `name` header if it can be sent back, copied; else NULL. Two
 * values for a name that has one (RFC 9110) leave us unable to tell which is right. */
static char *validator_of(CURL *e, const char *name, int is_date)
{
    struct curl_header *h = NULL;
    if (curl_easy_header(e, name, 0, CURLH_HEADER, -1, &h) != CURLHE_OK || h->amount != 1 ||
        !validator_ok(h->value))
        return NULL;
    /* A Last-Modified that is not a date would only be ignored when sent back. */
    if (is_date && !is_fixdate(h->value) && curl_getdate(h->value, NULL) == -1)
        return NULL;
    return strdup(h->value); /* out of memory: none, so the next run fetches in full */
}

static int header_is(const char *h, const char *name)
{
    size_t n = strlen(name);
    return strncasecmp(h, name, n) == 0 && (h[n] == ':' || h[n] == ';' || h[n] == ' ');
}

/* Whether the caller's extra header `h` ("Name: value" or "Name;") is a validator. */
static int is_validator_header(const char *h)
{
    return header_is(h, "If-None-Match") || header_is(h, "If-Modified-Since");
}

static int append_header(struct curl_slist **list, const char *name, const char *value)
{
    char line[HTTP_VALIDATOR_MAX + 32];
    snprintf(line, sizeof line, "%s: %s", name, value);
    struct curl_slist *l = curl_slist_append(*list, line);
    if (l == NULL)
        return -ENOMEM;
    *list = l;
    return 0;
}

/* A conditional transfer's own header list: the client's, then its validators, which
 * replace any of the same name among the client's (two would leave the server to pick one).
 * libcurl keeps only the pointer, so the list lives in the request until the transfer is
 * detached (drop_request_headers); curl_easy_reset on the next use of the handle forgets
 * it, so no later transfer sends these validators. */
static int build_request_headers(const http_client *c, http_request *r)
{
    struct curl_slist *list = NULL;
    int rc = 0;
    int inm = validator_ok(r->if_none_match), ims = validator_ok(r->if_modified_since);
    for (const struct curl_slist *h = c->headers; h != NULL && rc == 0; h = h->next) {
        if ((inm && header_is(h->data, "If-None-Match")) ||
            (ims && header_is(h->data, "If-Modified-Since")))
            continue;
        struct curl_slist *l = curl_slist_append(list, h->data);
        if (l == NULL)
            rc = -ENOMEM;
        else
            list = l;
    }
    if (rc == 0 && inm)
        rc = append_header(&list, "If-None-Match", r->if_none_match);
    if (rc == 0 && ims)
        rc = append_header(&list, "If-Modified-Since", r->if_modified_since);
    if (rc != 0) {
        curl_slist_free_all(list);
        return rc;
    }
    r->request_headers = list;
    return 0;
}

static void drop_request_headers(http_request *r)
{
    curl_slist_free_all(r->request_headers);
    r->request_headers = NULL;
}

static CURL *take_easy(http_client *c)
{
    if (c->nspare > 0) {
        CURL *e = c->spare[--c->nspare];
        /* curl_easy_reset drops the list of cookie files without freeing it (libcurl 7.88;
         * valgrind: 17 bytes lost a reuse); a NULL name frees it, and leaves a shared jar
         * alone. */
        if (c->share != NULL)
            curl_easy_setopt(e, CURLOPT_COOKIEFILE, NULL);
        curl_easy_reset(e);
        return e;
    }
    return curl_easy_init();
}

static void give_back_easy(http_client *c, CURL *e)
{
    if (c->nspare == c->spare_cap) {
        size_t cap = c->spare_cap ? c->spare_cap * 2 : 64;
        CURL **s = realloc(c->spare, cap * sizeof *s);
        if (s == NULL) {
            curl_easy_cleanup(e);
            return;
        }
        c->spare = s;
        c->spare_cap = cap;
    }
    c->spare[c->nspare++] = e;
}

/* See configure(). */
#define KEEP_OPEN_MAX 1024

/* CURLOPT_SSL_CTX_FUNCTION: every TLS connection verifies against the one store. */
static CURLcode on_ssl_ctx(CURL *e, void *ssl_ctx, void *store)
{
    (void)e;
    SSL_CTX_set1_cert_store(ssl_ctx, store); /* takes a reference: the store is shared */
    return CURLE_OK;
}

static int load_trust(http_client *c);

static int configure(http_client *c, http_request *r, CURL *e)
{
    const struct http_options *o = &c->opt;
    CURLcode rc = CURLE_OK;
#define SET(opt, val) \
    if (rc == CURLE_OK) \
    rc = curl_easy_setopt(e, opt, val)
    SET(CURLOPT_URL, r->url);
    SET(CURLOPT_PRIVATE, r);
    SET(CURLOPT_WRITEFUNCTION, on_curl_write);
    SET(CURLOPT_WRITEDATA, r);
    SET(CURLOPT_HEADERFUNCTION, on_curl_header);
    SET(CURLOPT_HEADERDATA, r);
    SET(CURLOPT_ERRORBUFFER, r->error);
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_FOLLOWLOCATION, 1L);
    SET(CURLOPT_MAXREDIRS, o->max_redirs);
    /* Nothing but the web, also through redirects: no file://, no other protocol. */
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_TIMEOUT_MS, o->timeout_ms);
    SET(CURLOPT_CONNECTTIMEOUT_MS, o->connect_timeout_ms);
    /* Only when asked for: a rule of its own would fail a server that is merely slow to
     * start, which --timeout allows. */
    if (o->speed_time > 0) {
        SET(CURLOPT_LOW_SPEED_LIMIT, o->speed_limit);
        SET(CURLOPT_LOW_SPEED_TIME, o->speed_time);
    }
    SET(CURLOPT_ACCEPT_ENCODING, "");
    /* Waiting to multiplex on a connection in progress pays only where ALPN settles it at
     * the handshake: on plain http, curl learns a connection cannot multiplex only from
     * its first response, so every transfer to the host would wait behind a slow one. */
    if (strncasecmp(r->url, "https:", 6) == 0)
        SET(CURLOPT_PIPEWAIT, 1L);
    /* libcurl 7.88 looks for a connection to reuse by walking every connection to the
     * host: with thousands in flight to one host that is quadratic, and it finds nothing
     * while none has been released (10,000 transfers at once: 2.9 s -> 2.1 s). Until a
     * transfer to this origin has ended, all its connections are busy, so looking is
     * wasted. Not on https, where a busy HTTP/2 connection may still carry another stream. */
    int plain_http = strncasecmp(r->url, "http:", 5) == 0;
    if (plain_http && !seen_contains(&c->origins_done, origin_of(r->url)))
        SET(CURLOPT_FRESH_CONNECT, 1L);
    /* libcurl 7.88 also walks every cached connection, busy ones included, each time a
     * transfer that left its connection open is removed (to close connect-only ones): with
     * 10,000 plain-http transfers in flight, 30% of all CPU went there (perf: 18% + 12% in
     * two loops under curl_multi_remove_handle). Beyond KEEP_OPEN_MAX transfers in flight,
     * a transfer gets a connection of its own and closes it: a loopback connect costs
     * about what one walk of 10,000 does, and the pool stays small enough that reuse
     * is cheap again once the crowd is gone. Not on https, where HTTP/2 carries many
     * transfers on one connection and the walk is short. */
    if (c->running >= KEEP_OPEN_MAX && plain_http) {
        SET(CURLOPT_FRESH_CONNECT, 1L);
        SET(CURLOPT_FORBID_REUSE, 1L);
    }
    if (c->recv_buffer > 0)
        SET(CURLOPT_BUFFERSIZE, c->recv_buffer);
    SET(CURLOPT_USERAGENT, o->user_agent);
    struct curl_slist *headers = c->headers;
    if (rc == CURLE_OK && r->conditional) {
        if (build_request_headers(c, r) != 0)
            rc = CURLE_OUT_OF_MEMORY;
        headers = r->request_headers;
    }
    if (headers != NULL)
        SET(CURLOPT_HTTPHEADER, headers);
    if (c->proxy != NULL)
        SET(CURLOPT_PROXY, c->proxy);
    if (o->insecure) {
        SET(CURLOPT_SSL_VERIFYPEER, 0L);
        SET(CURLOPT_SSL_VERIFYHOST, 0L);
    }
    if (c->share_trust && c->trust == NULL && strncasecmp(r->url, "https:", 6) == 0 &&
        load_trust(c) != 0)
        c->share_trust = 0; /* the system's default did not load: libcurl reads it itself */
    if (c->trust != NULL) {
        /* No file for libcurl to read: on_ssl_ctx hands every connection the store. */
        SET(CURLOPT_CAINFO, NULL);
        SET(CURLOPT_CAPATH, NULL);
        SET(CURLOPT_SSL_CTX_FUNCTION, on_ssl_ctx);
        SET(CURLOPT_SSL_CTX_DATA, c->trust);
    } else {
        if (c->cacert != NULL)
            SET(CURLOPT_CAINFO, c->cacert);
        if (c->capath != NULL)
            SET(CURLOPT_CAPATH, c->capath);
    }
    if (c->resolve != NULL)
        SET(CURLOPT_RESOLVE, c->resolve);
    if (o->ip_version != 0) {
        SET(CURLOPT_IPRESOLVE,
            o->ip_version == 4 ? (long)CURL_IPRESOLVE_V4 : (long)CURL_IPRESOLVE_V6);
    }
    if (c->share != NULL) {
        SET(CURLOPT_SHARE, c->share);
        /* An empty name turns the cookie engine on without reading a file: the files
         * were read into the shared jar once, when the client was created. */
        SET(CURLOPT_COOKIEFILE, "");
    }
    if (c->cookie_data != NULL)
        SET(CURLOPT_COOKIE, c->cookie_data);
    if (c->user != NULL)
        SET(CURLOPT_USERPWD, c->user);
    if (o->netrc) {
        SET(CURLOPT_NETRC, (long)CURL_NETRC_REQUIRED);
        if (c->netrc_file != NULL)
            SET(CURLOPT_NETRC_FILE, c->netrc_file);
    }
    SET(CURLOPT_CLOSESOCKETFUNCTION, on_curl_close_socket);
    SET(CURLOPT_CLOSESOCKETDATA, c);
    if (o->max_body > 0 && r->keep_first == 0)
        SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)o->max_body);
#undef SET
    return rc == CURLE_OK ? 0 : (int)rc;
}

/* What happened, in our words, where libcurl's would mislead: its header cap reports "Out
 * of memory", and a body its decoder rejects "Failed writing received data to disk" or a
 * decoder's internals. NULL where libcurl's text says it well enough. */
static const char *own_words(const http_request *r, CURLcode result)
{
    switch (result) {
    case CURLE_OUT_OF_MEMORY:
        /* Before the first body byte, that is libcurl refusing a header line longer than its
         * limit (100 KiB) rather than running out of memory. */
        return r->bytes == 0 ? "response headers too large (a header line over 100 KiB)"
                             : "out of memory";
    case CURLE_BAD_CONTENT_ENCODING:
        return "body could not be decoded (corrupt data for its Content-Encoding)";
    case CURLE_WRITE_ERROR:
        /* Our write and header callbacks say why they stop (aborted_as): a write error
         * without that comes from libcurl's decoders. */
        return "body could not be decoded (corrupt data for its Content-Encoding)";
    default:
        return NULL;
    }
}

static void record_results(http_request *r, CURLcode result)
{
    CURL *e = r->easy;
    r->curl_code = (int)result;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &r->status);
    curl_off_t retry_after = 0;
    /* libcurl parses both forms, seconds and HTTP date, into seconds from now. */
    if (curl_easy_getinfo(e, CURLINFO_RETRY_AFTER, &retry_after) == CURLE_OK && retry_after > 0)
        r->retry_after_s = (long)(retry_after > 86400 ? 86400 : retry_after);
    const char *s = NULL;
    if (curl_easy_getinfo(e, CURLINFO_EFFECTIVE_URL, &s) == CURLE_OK && s != NULL)
        r->final_url = strdup(s);
    s = NULL;
    if (curl_easy_getinfo(e, CURLINFO_CONTENT_TYPE, &s) == CURLE_OK && s != NULL)
        snprintf(r->content_type, sizeof r->content_type, "%s", s);
    free(r->etag);
    free(r->last_modified);
    r->etag = validator_of(e, "ETag", 0);
    r->last_modified = validator_of(e, "Last-Modified", 1);

    if (r->truncated && r->aborted_as == HTTP_OK && result == CURLE_WRITE_ERROR)
        result = CURLE_OK; /* stopped at keep_first on purpose */
    /* An empty body never reached the write callback: its sink is asked now. */
    if (r->sink != NULL && !r->sink_started && result == CURLE_OK && is_2xx(r->status))
        (void)sink_start(r);
    if (r->aborted_as != HTTP_OK && (result == CURLE_WRITE_ERROR || result == CURLE_OK)) {
        r->outcome = r->aborted_as;
        /* Ours, not what libcurl wrote about the callback's short count. */
        if (r->abort_why != NULL)
            snprintf(r->error, sizeof r->error, "%s", r->abort_why);
    } else if (result == CURLE_FILESIZE_EXCEEDED) {
        r->outcome = HTTP_TOO_BIG;
    } else if (result != CURLE_OK) {
        r->outcome = HTTP_TRANSPORT;
        const char *ours = own_words(r, result);
        if (ours != NULL)
            snprintf(r->error, sizeof r->error, "%s", ours);
        else if (r->error[0] == '\0')
            snprintf(r->error, sizeof r->error, "%s", curl_easy_strerror(result));
    } else if (r->status == 304 && r->conditional) {
        r->outcome = HTTP_NOT_MODIFIED;
    } else if (!is_2xx(r->status)) {
        r->outcome = HTTP_STATUS;
        r->unsolicited_304 = r->status == 304 && !r->client->caller_validators;
    } else if (r->sink == NULL && r->accept != NULL &&
               !r->accept(r->content_type[0] ? r->content_type : NULL)) {
        r->outcome = HTTP_TYPE_REFUSED;
    } else if (r->final_url == NULL) {
        r->outcome = HTTP_TRANSPORT;
        snprintf(r->error, sizeof r->error, "out of memory");
    } else {
        r->outcome = HTTP_OK;
    }
    if (r->outcome != HTTP_OK) {
        buf_finish(&r->body);
    } else {
        buf_zero_slack(&r->body);
        if (r->fingerprint)
            r->body_fingerprint = fingerprint_end(&r->fp);
    }
}

/* Detaches a transfer from the multi handle and keeps its easy handle for the next one. */
static void release_easy(http_request *r)
{
    http_client *c = r->client;
    curl_multi_remove_handle(c->multi, r->easy);
    c->running--;
    give_back_easy(c, r->easy);
    r->easy = NULL;
    drop_request_headers(r);
}

/* Trap: called after every socket_action, and reaps whatever ended, whether or not
 * anything is still "running". Tasks are only marked ready here, never run. */
static void drain_done(http_client *c)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(c->multi, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        http_request *r = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&r);
        CURLcode result = msg->data.result;
        record_results(r, result);
        release_easy(r);
        /* Whatever connections it used may now wait in the pool for the next transfer. */
        origin_done(c, r->url);
        if (r->final_url != NULL && strcmp(r->final_url, r->url) != 0)
            origin_done(c, r->final_url);
        task *t = r->waiter;
        r->waiter = NULL;
        task_wake(t, 0);
    }
}

/* The waiting task was cancelled: stop the transfer. Runs from the task scheduler, so
 * never inside a libcurl callback (which would be CURLM_RECURSIVE_API_CALL). */
static void http_unwait(task *t)
{
    http_request *r = t->wait_on;
    release_easy(r);
    r->waiter = NULL;
    r->outcome = HTTP_CANCELLED;
}

enum task_step http_fetch(http_client *c, http_request *r, task *t)
{
    r->client = c;
    r->waiter = t;
    r->aborted_as = HTTP_OK;
    r->abort_why = NULL;
    r->header_bytes = 0;
    r->sink_mode = r->sink_error = r->sink_started = 0;
    r->unsolicited_304 = 0;
    r->conditional = validator_ok(r->if_none_match) || validator_ok(r->if_modified_since);
    fingerprint_start(&r->fp);
    CURL *e = take_easy(c);
    if (e == NULL) {
        snprintf(r->error, sizeof r->error, "out of memory");
        r->outcome = HTTP_TRANSPORT;
        task_wake(t, 0);
        return TASK_PENDING;
    }
    r->easy = e;
    int rc = configure(c, r, e);
    CURLMcode mrc = CURLM_OK;
    if (rc == 0)
        mrc = curl_multi_add_handle(c->multi, e);
    if (rc != 0 || mrc != CURLM_OK) {
        snprintf(r->error, sizeof r->error, "%s",
                 rc != 0 ? curl_easy_strerror((CURLcode)rc) : curl_multi_strerror(mrc));
        r->outcome = HTTP_TRANSPORT;
        give_back_easy(c, e);
        r->easy = NULL;
        drop_request_headers(r);
        task_wake(t, 0);
        return TASK_PENDING;
    }
    c->running++;
    t->wait_on = r;
    task_suspend(t, http_unwait);
    return TASK_PENDING;
}

int http_is_transient(const http_request *r)
{
    switch (r->outcome) {
    case HTTP_STATUS:
        switch (r->status) {
        case 408: case 429: case 500: case 502: case 503: case 504:
            return 1;
        }
        return 0;
    case HTTP_TRANSPORT:
        switch ((CURLcode)r->curl_code) {
        case CURLE_COULDNT_CONNECT:
        case CURLE_OPERATION_TIMEDOUT:
        case CURLE_RECV_ERROR:
        case CURLE_SEND_ERROR:
        case CURLE_GOT_NOTHING:
        case CURLE_PARTIAL_FILE:
            return 1;
        default:
            return 0;
        }
    default:
        return 0;
    }
}

void http_request_init(http_request *r, const char *url)
{
    *r = (http_request){.url = url, .retry_after_s = -1};
    buf_init(&r->body);
}

void http_request_finish(http_request *r)
{
    buf_finish(&r->body);
    free(r->final_url);
    r->final_url = NULL;
    free(r->etag);
    r->etag = NULL;
    free(r->last_modified);
    r->last_modified = NULL;
    drop_request_headers(r);
}

const char *http_describe(const http_request *r, char *scratch, size_t scratch_len)
{
    switch (r->outcome) {
    case HTTP_OK:
        snprintf(scratch, scratch_len, "HTTP %ld", r->status);
        return scratch;
    case HTTP_STATUS:
        snprintf(scratch, scratch_len, "HTTP %ld", r->status);
        return scratch;
    case HTTP_TYPE_REFUSED:
        snprintf(scratch, scratch_len, "type not accepted (%s)",
                 r->content_type[0] ? r->content_type : "no type");
        return scratch;
    case HTTP_TOO_BIG:
        return "body exceeds --max-size";
    case HTTP_TRANSPORT:
        return r->error;
    case HTTP_CANCELLED:
        return "cancelled";
    case HTTP_NOT_MODIFIED:
        return "not modified (HTTP 304)";
    }
    return "unknown outcome";
}

/* ---- the client ---- */

/* Each easy handle keeps a receive buffer of CURLOPT_BUFFERSIZE for its life. Even when a
 * response is small, two of its pages become resident (the first, and the last, where
 * malloc puts the next chunk's header): with 10,000 transfers in flight and the default
 * 16 KiB that was 80 MB of a 180 MB peak (massif: 16.2 KB a transfer requested under
 * Curl_preconnect; smaps: 165 MB of heap resident). So the buffers share a budget, and
 * below 16 KiB a buffer shrinks with the number of transfers in flight, down to libcurl's
 * minimum of 1 KiB, where a buffer no longer spans pages of its own. Larger bodies then
 * take more reads, which costs far less than the memory would at that concurrency. */
#define RECV_BUFFER_BUDGET (10L << 20)
#define RECV_BUFFER_MAX (16L << 10)
#define RECV_BUFFER_MIN 1024L

static long recv_buffer_size(size_t max_transfers)
{
    if (max_transfers == 0)
        return 0;
    long size = RECV_BUFFER_BUDGET / (long)max_transfers;
    if (size >= RECV_BUFFER_MAX)
        return 0;
    return size < RECV_BUFFER_MIN ? RECV_BUFFER_MIN : size;
}

/* What http_client_create copied from its options. */
static void free_copies(http_client *c)
{
    curl_slist_free_all(c->headers);
    curl_slist_free_all(c->resolve);
    free(c->proxy);
    free(c->cacert);
    free(c->capath);
    free(c->cookie_data);
    free(c->user);
    free(c->netrc_file);
    if (c->share != NULL)
        curl_share_cleanup(c->share);
    X509_STORE_free(c->trust);
    seen_finish(&c->origins_done);
}



static int copy_string(const char *s, char **out)
{
    *out = NULL;
    return s != NULL && (*out = strdup(s)) == NULL ? -ENOMEM : 0;
}

/* libcurl 7.88 reads and parses the CA bundle anew for every TLS connection: strace showed
 * 21 opens of the bundle for 20 connections (its CA cache did not take), each a parse of
 * the whole file, the system's 140 KB of PEM included. So the client parses the CA file
 * once, with libcurl's own default when none is named, into a store that every
 * connection's SSL_CTX shares (on_ssl_ctx). Only with libcurl on OpenSSL, where that
 * callback exists; elsewhere libcurl is given the names as usual. A file the user named
 * is read when the client is created, so that a bad one is a usage error; the system's
 * default, and files named by the environment, only for the first https transfer, so that
 * a run over plain http never pays for them (parsing Debian's bundle costs about 45 ms of
 * CPU: 15% of an unchanged --state re-run of 2,000 pages, in a profile of one where
 * $CURL_CA_BUNDLE was set, as it is on many CI machines and containers). 0, or -EBADMSG when the file holds no certificate OpenSSL can read. */
static int can_share_trust(const struct http_options *o)
{
    const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);
    return !o->insecure && v->ssl_version != NULL && strncmp(v->ssl_version, "OpenSSL/", 8) == 0;
}

static int load_trust(http_client *c)
{
    char *file = NULL, *dir = NULL;
    if (c->cacert == NULL && c->capath == NULL) {
        CURL *e = curl_easy_init();
        if (e == NULL)
            return -ENOMEM;
        curl_easy_getinfo(e, CURLINFO_CAINFO, &file);
        curl_easy_getinfo(e, CURLINFO_CAPATH, &dir);
        int rc = copy_string(file, &c->cacert) == 0 && copy_string(dir, &c->capath) == 0
                     ? 0 : -ENOMEM;
        curl_easy_cleanup(e);
        if (rc != 0)
            return rc;
    }
    X509_STORE *store = X509_STORE_new();
    if (store == NULL)
        return -ENOMEM;
    if ((c->cacert != NULL && X509_STORE_load_file(store, c->cacert) != 1) ||
        (c->capath != NULL && X509_STORE_load_path(store, c->capath) != 1)) {
        X509_STORE_free(store);
        return -EBADMSG;
    }
    c->trust = store;
    return 0;
}

/* One jar for the whole run, filled from the cookie files now: a file named on every
 * transfer would be read again by each. */
static int start_cookie_jar(http_client *c, const struct http_options *o)
{
    c->share = curl_share_init();
    if (c->share == NULL ||
        curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_COOKIE) != CURLSHE_OK)
        return -ENOMEM;
    if (o->ncookie_files == 0)
        return 0;
    CURL *e = curl_easy_init();
    if (e == NULL)
        return -ENOMEM;
    CURLcode rc = curl_easy_setopt(e, CURLOPT_SHARE, c->share);
    for (size_t i = 0; i < o->ncookie_files && rc == CURLE_OK; i++)
        rc = curl_easy_setopt(e, CURLOPT_COOKIEFILE, o->cookie_files[i]);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(e, CURLOPT_COOKIELIST, "RELOAD");
    curl_easy_cleanup(e);
    return rc == CURLE_OK ? 0 : -EIO;
}

int http_client_save_cookies(http_client *c, const char *path)
{
    if (c == NULL || c->share == NULL)
        return 0;
    /* libcurl says nothing when it cannot write the jar: find out first. */
    FILE *f = fopen(path, "a");
    if (f == NULL)
        return -errno;
    fclose(f);
    CURL *e = curl_easy_init();
    if (e == NULL)
        return -ENOMEM;
    CURLcode rc = curl_easy_setopt(e, CURLOPT_SHARE, c->share);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(e, CURLOPT_COOKIEJAR, path);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(e, CURLOPT_COOKIELIST, "FLUSH");
    curl_easy_cleanup(e);
    return rc == CURLE_OK ? 0 : -EIO;
}

static void on_client_handle_closed(uv_handle_t *h)
{
    http_client *c = h->data;
    if (--c->open_handles == 0) {
        free_copies(c);
        free(c->polls);
        free(c);
    }
}

int http_client_create(uv_loop_t *loop, const struct http_options *o, http_client **out)
{
    http_client *c = calloc(1, sizeof *c);
    if (c == NULL)
        return -ENOMEM;
    seen_init(&c->origins_done);
    c->loop = loop;
    c->opt = *o;
    c->opt.headers = NULL; /* the caller's array need not outlive us: see c->headers */
    for (size_t i = 0; i < o->nheaders; i++) {
        if (is_validator_header(o->headers[i]))
            c->caller_validators = 1;
        struct curl_slist *l = curl_slist_append(c->headers, o->headers[i]);
        if (l == NULL)
            goto fail_alloc;
        c->headers = l;
    }
    for (size_t i = 0; i < o->nresolve; i++) {
        struct curl_slist *l = curl_slist_append(c->resolve, o->resolve[i]);
        if (l == NULL)
            goto fail_alloc;
        c->resolve = l;
    }
    c->opt.resolve = NULL;
    c->opt.cookie_files = NULL;
    if (copy_string(o->proxy, &c->proxy) != 0 || copy_string(o->cacert, &c->cacert) != 0 ||
        copy_string(o->capath, &c->capath) != 0 ||
        copy_string(o->cookie_data, &c->cookie_data) != 0 ||
        copy_string(o->user, &c->user) != 0 || copy_string(o->netrc_file, &c->netrc_file) != 0)
        goto fail_alloc;
    int early = o->cookies ? start_cookie_jar(c, o) : 0;
    c->share_trust = can_share_trust(o);
    if (early == 0 && c->share_trust && (o->cacert != NULL || o->capath != NULL) &&
        !o->ca_from_environment)
        early = load_trust(c);
    if (early != 0) {
        free_copies(c);
        free(c);
        return early;
    }
    c->multi = curl_multi_init();
    if (c->multi == NULL) {
        free_copies(c);
        free(c);
        return -EIO;
    }
    int rc = uv_timer_init(loop, &c->timer);
    if (rc != 0)
        goto fail_multi;
    c->timer.data = c;
    c->open_handles++;
    rc = uv_idle_init(loop, &c->kick);
    if (rc != 0)
        goto fail_timer;
    c->kick.data = c;
    c->open_handles++;

    curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
    /* Keep a connection per transfer in flight; the default (4 x handles added) would
     * close keep-alive connections to many hosts too early. */
    if (o->max_connects > 0)
        curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS, (long)o->max_connects);
    c->recv_buffer = recv_buffer_size(o->max_connects);
    *out = c;
    return 0;

fail_timer:
    uv_close((uv_handle_t *)&c->timer, on_client_handle_closed);
    curl_multi_cleanup(c->multi);
    return rc; /* the close callback frees c */
fail_multi:
    curl_multi_cleanup(c->multi);
    free_copies(c);
    free(c);
    return rc;
fail_alloc:
    free_copies(c);
    free(c);
    return -ENOMEM;
}

void http_client_destroy(http_client *c)
{
    if (c == NULL)
        return;
    /* Trap: libcurl calls the socket and close-socket callbacks from here, so the poll
     * table must still exist; the loop must run afterwards for the close callbacks. */
    curl_multi_cleanup(c->multi);
    c->multi = NULL;
    for (size_t i = 0; i < c->nspare; i++)
        curl_easy_cleanup(c->spare[i]);
    free(c->spare);
    c->spare = NULL;
    c->nspare = 0;
    for (size_t fd = 0; fd < c->npolls; fd++)
        poll_forget(c, (curl_socket_t)fd);
    uv_timer_stop(&c->timer);
    uv_idle_stop(&c->kick);
    uv_close((uv_handle_t *)&c->timer, on_client_handle_closed);
    uv_close((uv_handle_t *)&c->kick, on_client_handle_closed);
}
