/* http.h: HTTP transfers for tasks, by libcurl's multi interface driven from the libuv loop.
 *
 * This is the only module that includes curl's multi API. One http_client holds one multi
 * handle (so one connection pool, one DNS cache, HTTP/2 multiplexing) and a free list of
 * easy handles, which transfers reuse. It does not limit how many transfers run at once:
 * callers admit transfers with a semaphore, so that none waits inside libcurl while its
 * own timeout runs.
 *
 * Ownership: the caller owns each http_request (init/finish) and must keep it alive until
 * the transfer has completed or been cancelled. What a completed request holds (body,
 * final_url, etag, last_modified) belongs to the request and is freed by
 * http_request_finish(). The client is
 * created and destroyed by its caller; after http_client_destroy() the loop must run once
 * more to finish closing its handles, after which its memory is freed. */
#ifndef AREQ_HTTP_H
#define AREQ_HTTP_H

#include <stddef.h>
#include <uv.h>

#include "buf.h"
#include "fingerprint.h"
#include "task.h"

struct http_options {
    long timeout_ms;         /* whole transfer; 0 = none */
    long connect_timeout_ms;
    long max_redirs;
    size_t max_body;         /* decoded bytes; 0 = no cap */
    size_t max_connects;     /* size of the connection cache */
    const char *user_agent;
    const char *const *headers; /* extra request headers, "Name: value"; copied */
    size_t nheaders;
    const char *proxy;       /* NULL: libcurl's proxy variables (http_proxy, ...) apply */
    int insecure;            /* skip TLS certificate and host name checks */
    const char *cacert;      /* CA bundle to trust instead of the system's, or NULL */
    const char *capath;      /* directory of CA certificates, or NULL */
    int ca_from_environment; /* cacert/capath came from $CURL_CA_BUNDLE and the like: read
                                them at the first https transfer, as the system's default
                                is, instead of when the client is created */
    long speed_limit;        /* bytes a second: a slower transfer ... */
    long speed_time;         /* ... for this many seconds fails; 0: no such rule */
    const char *const *resolve; /* "HOST:PORT:ADDR" entries that replace DNS; copied */
    size_t nresolve;
    int ip_version;          /* 0 any, 4 or 6 */
    int cookies;             /* keep one cookie jar for every transfer of the client */
    const char *const *cookie_files; /* read into the jar at the start; copied */
    size_t ncookie_files;
    const char *cookie_data; /* "NAME=VALUE; ..." sent with every request, or NULL */
    const char *user;        /* "USER:PASSWORD" for basic authentication, or NULL */
    int netrc;               /* credentials from ~/.netrc, or netrc_file */
    const char *netrc_file;
};

/* Header and trailer bytes one transfer may receive, over all its redirects. libcurl 7.88
 * bounds a header line and (as patched by Debian) the headers of one response, but not
 * chunked trailers: an endless trailer grew past 1 GB in seconds. 256 KiB is far beyond
 * any real response and small enough that 10,000 transfers cannot exhaust memory. */
#define HTTP_HEADER_BYTES_MAX (256u << 10)

/* The longest validator (ETag or Last-Modified value) kept from a response or sent in a
 * request. Real ones are a quoted hash or a date, well under 100 bytes; a longer one is
 * junk that would only bloat a store and every request that repeats it. */
#define HTTP_VALIDATOR_MAX 256

enum http_outcome {
    HTTP_OK = 0,      /* 2xx of a content type the request accepts: body holds it */
    HTTP_STATUS,      /* a final response that is not 2xx: `status` says which */
    HTTP_TYPE_REFUSED, /* 2xx of a type the request's accept() refused: stopped at the
                          headers, `content_type` says which */
    HTTP_TOO_BIG,     /* the body is larger than max_body */
    HTTP_TRANSPORT,   /* no usable response: `error` holds curl's text */
    HTTP_CANCELLED,   /* the waiting task was cancelled: the transfer was stopped */
    HTTP_NOT_MODIFIED, /* a 304 to a request that carried a validator (if_none_match or
                          if_modified_since): no body; the caller's copy stands. A 304 to a
                          request without one is HTTP_STATUS, with unsolicited_304 set */
};

typedef struct http_client http_client;

/* Whether the caller wants a 2xx body of this Content-Type (as the server sent it, parameters
 * and all; NULL when the response has none). 1 yes, 0 no. Asked at the first body byte and
 * again when the transfer ends, so it must give the same answer each time. */
typedef int (*http_accept_fn)(const char *content_type);

/* Issue 15: where a 2xx body goes as it arrives, for a caller that saves it. With a sink,
 * the request's accept() is not asked: the sink's start() decides. */
enum http_sink_mode {
    HTTP_SINK_KEEP = 1 << 0,   /* keep the body in `body`, as without a sink */
    HTTP_SINK_STREAM = 1 << 1, /* hand each piece to write() as it arrives */
};

struct http_sink {
    /* At the first byte of a 2xx body (or at the end of an empty one), with its
     * Content-Type (NULL when it has none): the enum http_sink_mode bits wanted, 0 for
     * none (the outcome is then HTTP_TYPE_REFUSED), or a negative errno, which stops the
     * transfer (HTTP_TRANSPORT, with sink_error set). Runs inside libcurl's callback: it
     * must not call back into http.h. */
    int (*start)(void *ctx, const char *content_type);
    /* The body's bytes, in order, when start() asked for HTTP_SINK_STREAM. 0, or a
     * negative errno, which stops the transfer as above. Same rule as start(). */
    int (*write)(void *ctx, const char *data, size_t len);
    void *ctx;
};

typedef struct http_request {
    const char *url;          /* borrowed; must outlive the transfer */
    http_accept_fn accept;    /* NULL: any type (robots.txt); else asked before the body */
    size_t keep_first;        /* > 0: keep only this many body bytes, whatever max_body
                                 says, and end a longer transfer there as complete, with
                                 `truncated` set (robots.txt: its first 500 KiB count) */
    const struct http_sink *sink; /* NULL: none; borrowed, must outlive the transfer */
    /* Validators from an earlier response, borrowed, NULL for none: sent as If-None-Match
     * and If-Modified-Since on this transfer only (and its redirects). One that is empty,
     * longer than HTTP_VALIDATOR_MAX or holds a control character is not sent. */
    const char *if_none_match;
    const char *if_modified_since;
    /* Set: the body kept is fingerprinted (fingerprint.h) as it arrives, each piece while
     * it is still in the cache, into body_fingerprint. */
    int fingerprint;

    /* Results, set when the transfer ends. */
    enum http_outcome outcome;
    long status;              /* HTTP status of the final response, 0 if none */
    struct buf body;          /* decoded body (HTTP_OK only) */
    char *final_url;          /* where the body came from, after redirects */
    char content_type[128];
    char error[256];          /* curl's message for HTTP_TRANSPORT */
    size_t bytes;             /* body bytes received, decoded */
    long retry_after_s;       /* the final response's Retry-After, in seconds; -1 if none */
    int curl_code;            /* libcurl's result (a CURLcode), 0 when it had none */
    int truncated;            /* the body was cut at keep_first */
    int sink_mode;            /* what the sink's start() asked for; 0 before it was asked */
    int sink_error;           /* the negative errno that a sink callback stopped it with */
    /* The final response's validators as the server sent them, to send back next time;
     * NULL when it sent none, more than one, or one that could not be sent back (over
     * HTTP_VALIDATOR_MAX, a control character, a Last-Modified that is not a date). */
    char *etag;
    char *last_modified;
    uint64_t body_fingerprint; /* with `fingerprint`, for HTTP_OK: fingerprint() of body */
    int unsolicited_304;      /* a 304 answered a request that had no validator at all
                                 (none of ours, none in the caller's extra headers): a
                                 server fault, outcome HTTP_STATUS, for the caller to count */

    /* Private to http.c. */
    void *easy;
    http_client *client;
    task *waiter;
    int aborted_as;           /* outcome decided by a callback that stopped the transfer */
    const char *abort_why;    /* and its message for `error`, a static string, or NULL */
    size_t header_bytes;      /* header and trailer bytes received, redirects included */
    int sink_started;         /* the sink's start() has been asked */
    int conditional;          /* this transfer carries a validator of ours */
    void *request_headers;    /* its own header list (a curl_slist) when conditional */
    struct fingerprint_state fp; /* of the body so far, with `fingerprint` */
} http_request;

/* 0 or a negative error (libuv's, or -ENOMEM, or -EIO when libcurl refuses). */
int http_client_create(uv_loop_t *loop, const struct http_options *o, http_client **out);
/* Every transfer must have ended. Accepts NULL. */
void http_client_destroy(http_client *c);

/* Writes the client's cookies to `path` (Netscape format, as curl's --cookie-jar does).
 * Every transfer must have ended. 0 or a negative errno. */
int http_client_save_cookies(http_client *c, const char *path);

void http_request_init(http_request *r, const char *url);
void http_request_finish(http_request *r);

/* Inside a step: starts the transfer and returns TASK_PENDING. On resume task_wait_rc() is 0
 * with the outcome in `r`, or the cancellation reason, in which case the transfer has been
 * stopped and r->outcome is HTTP_CANCELLED. On an immediate failure (out of memory, libcurl
 * refusing the URL) it sets the outcome, wakes the task at once and still returns
 * TASK_PENDING, so that callers have one path. */
enum task_step http_fetch(http_client *c, http_request *r, task *t);

/* Whether the outcome may well be different a moment later: a refused or timed-out
 * connection, a reset, a transfer that timed out, or the statuses 408, 429, 500, 502, 503
 * and 504. Abandoned bodies (too big, a refused type) and cancellations are not. */
int http_is_transient(const http_request *r);

/* A short description of an outcome for messages: "HTTP 404", curl's text, ... Returns a
 * pointer into `r` or a static string. */
const char *http_describe(const http_request *r, char *scratch, size_t scratch_len);

#endif
