#include "page.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "digest.h"
#include "links.h"
#include "log.h"
#include "savepath.h"
#include "seen.h"
#include "url.h"

/* ---- scanning a body ---- */

/* What one scan of a body needs. Filled on a thread of libuv's pool: it touches nothing
 * but itself, the page's body and the page's config, which does not change during a run. */
struct scan {
    const struct page_config *cfg;
    const char *source;
    size_t source_len;
    url_base *base;
    struct format_origin origin;
    struct buf target;  /* the link being resolved */
    struct buf block;   /* the page's lines */
    struct buf follow;  /* links to offer the frontier, each NUL-terminated */
    struct buf written;  /* with cfg->keep_targets: the targets written, each NUL-terminated */
    int following;      /* the page is shallow enough for its links to be followed */
    int nofollow;       /* <meta name="robots" content="nofollow"> */
    seen_set targets;
    size_t links;       /* hrefs seen */
    size_t pairs;       /* lines in block */
    size_t bad;         /* hrefs that could not be parsed */
    int base_taken;     /* the first <base href> has been applied */
};

struct page {
    task t;
    const struct page_config *cfg;
    struct page_target target;
    page_done_fn *done;
    void *done_arg;
    struct page_result result;
    http_request req;
    unsigned attempt;         /* 0 for the first */
    uv_work_t work;           /* the scan, off the loop */
    struct scan scan;
    int scan_rc;
    int html;                 /* the body is scanned (so it is kept whole in req.body) */
    int replay;               /* a 304: target.stored is written instead of a scan */
    /* --save */
    struct http_sink sink;    /* the body's type, and a non-HTML body as it arrives */
    int want_save;            /* the body's type is one to save */
    struct buf held;          /* a non-HTML body held until it ends or outgrows HOLD_MAX */
    save_file *file;          /* a body too large to hold, being streamed to its file */
    digest *sum;              /* its SHA-256 as it streams, for --manifest */
    int in_pool;              /* the body is saved on the pool, with the scan */
    int save_rc;              /* what that came to */
    struct buf saved_as;      /* and where it went, relative to the directory */
    unsigned char saved_sum[DIGEST_SIZE];
};

enum { SCAN_RESCAN = 1 }; /* a <base> came after links: resolve them all again */

int page_keep_to_follow(struct buf *follow, const char *target, size_t len)
{
    int web = (len > 7 && memcmp(target, "http://", 7) == 0) ||
              (len > 8 && memcmp(target, "https://", 8) == 0);
    if (!web)
        return 0;
    const char *hash = memchr(target, '#', len);
    int rc = buf_append(follow, target, hash ? (size_t)(hash - target) : len);
    return rc != 0 ? rc : buf_putc(follow, '\0');
}

/* Keeps a target to follow after the scan (a nofollow meta may still come). */
static int keep_to_follow(struct scan *s)
{
    if (!s->following)
        return 0;
    return page_keep_to_follow(&s->follow, s->target.data, s->target.len);
}

static int on_link(void *ctx, enum links_kind kind, const char *value, size_t len)
{
    struct scan *s = ctx;
    if (kind == LINKS_NOFOLLOW) {
        s->nofollow = 1;
        return 0;
    }
    if (kind == LINKS_BASE) {
        if (s->base_taken)
            return 0;
        s->base_taken = 1;
        /* An unparsable base leaves the document's own URL in force, as in a browser. */
        if (url_base_rebase(s->base, value, len) != 0)
            return 0;
        /* The base applies to every link of the document, also those before it. */
        return s->links > 0 ? SCAN_RESCAN : 0;
    }
    if (kind != LINKS_HREF)
        return 0;
    s->links++;
    buf_clear(&s->target);
    int rc = url_resolve(s->base, value, len, s->cfg->url_flags, &s->target);
    if (rc != URL_OK) {
        if (rc == -ENOMEM)
            return rc;
        if (rc < 0)
            s->bad++;
        return 0;
    }
    int added = seen_add(&s->targets, seen_hash(s->target.data, s->target.len));
    if (added <= 0)
        return added;
    rc = format_pair(s->cfg->format, &s->block, s->source, s->source_len, s->target.data,
                     s->target.len, &s->origin);
    if (rc == 0)
        rc = keep_to_follow(s);
    if (rc == 0 && s->cfg->keep_targets) {
        rc = buf_append(&s->written, s->target.data, s->target.len);
        if (rc == 0)
            rc = buf_putc(&s->written, '\0');
    }
    if (rc != 0)
        return rc;
    s->pairs++;
    return 0;
}

/* Scans a fetched body into a block of lines. 0 or a negative error. */
static int scan_body(const http_request *r, struct scan *s)
{
    int rc = url_base_create(r->final_url, strlen(r->final_url), &s->base);
    if (rc != 0)
        return rc;
    for (;;) {
        rc = links_scan(s->cfg->extractor, r->body.data ? r->body.data : "", r->body.len,
                        on_link, s);
        if (rc != SCAN_RESCAN)
            break;
        buf_clear(&s->block);
        buf_clear(&s->follow);
        buf_clear(&s->written);
        seen_clear(&s->targets);
        s->links = s->pairs = s->bad = 0;
    }
    return rc;
}

/* Fills the result's failure record, for the caller's --failures file. */
static void set_failure(struct page *p, const char *kind, const char *error)
{
    const http_request *r = &p->req;
    struct page_result *res = &p->result;
    res->outcome = PAGE_FAILED;
    snprintf(res->error, sizeof res->error, "%s", error);
    res->failure = (struct format_failure){
        .url = p->target.url,
        .kind = kind,
        .status = r->status,
        .curl_code = r->curl_code,
        .error = res->error,
        .attempts = p->attempt + 1,
        .depth = p->target.depth,
        .found_on = p->target.found_on,
    };
}

static const char *failure_kind(const http_request *r)
{
    switch (r->outcome) {
    case HTTP_STATUS: return "http";
    case HTTP_TOO_BIG: return "too-big";
    default: return "transport";
    }
}

int page_format_stored(enum format format, struct buf *block, const char *source, size_t len,
                       const struct state_page *stored, unsigned depth, size_t *pairs)
{
    struct format_origin origin = {.status = stored->status, .depth = depth};
    const char *t = stored->targets, *end = t + stored->targets_len;
    size_t n = 0;
    /* The TSV lines' size, at least, at once: grown by doubling, the block was copied
     * over and over (realloc, 9% of an unchanged re-run of scenario A). The stored count
     * is only a hint, bounded by the list itself (a target is a byte and its NUL at
     * least): a damaged one asked for terabytes, and the page's pairs were lost. */
    size_t count = stored->ntargets < stored->targets_len / 2 ? stored->ntargets
                                                              : stored->targets_len / 2;
    int rc = buf_reserve(block, stored->targets_len + count * (len + 2));
    for (; t < end && rc == 0; n++) {
        size_t tl = strlen(t);
        rc = format_pair(format, block, source, len, t, tl, &origin);
        t += tl + 1;
    }
    *pairs = rc == 0 ? n : 0;
    return rc;
}

/* replay_stored for TSV, whose line is the source, a tab, the target and a newline as they
 * are (format.c): written straight from the stored list. Decoding it first and formatting
 * each pair took 100 M instructions of an unchanged re-run of scenario A on the pool
 * (callgrind: read_entry 29 M, state_record_targets 19 M, format_pair 20 M, memcpy 13 M,
 * strlen 7 M). The links to follow are read back from the lines. */
static int replay_stored_lines(struct page *p)
{
    struct scan *s = &p->scan;
    struct buf prefix, *b = &s->block;
    buf_init(&prefix);
    int rc = buf_append(&prefix, s->source, s->source_len);
    if (rc == 0)
        rc = buf_putc(&prefix, '\t');
    size_t start = b->len;
    if (rc == 0)
        rc = state_record_lines(p->target.stored, prefix.data, prefix.len, b, &s->pairs);
    buf_finish(&prefix);
    if (rc != 0) {
        s->pairs = 0;
        return rc;
    }
    /* A target holds no newline (url.h: resolving drops them, and the store refuses a
     * list with one as damaged), so each line ends where the next begins. */
    const char *l = b->data + start, *end = b->data + b->len;
    size_t skip = s->source_len + 1;
    for (size_t k = 0; s->following && k < s->pairs && l + skip <= end; k++) {
        const char *t = l + skip, *nl = memchr(t, '\n', (size_t)(end - t));
        if (nl == NULL)
            break;
        rc = page_keep_to_follow(&s->follow, t, (size_t)(nl - t));
        if (rc != 0)
            return rc;
        l = nl + 1;
    }
    return 0;
}

/* A 304's stored pairs, formatted as its scan would have made them, and its links to
 * follow: a scan's work without the body, and like a scan on the pool when large (on an
 * unchanged re-run the loop did all of it: 80 M of 458 M instructions, callgrind). */
static int replay_stored(struct page *p)
{
    struct scan *s = &p->scan;
    if (p->cfg->format == FORMAT_TSV)
        return replay_stored_lines(p);
    int rc = state_record_targets(p->target.stored);
    if (rc != 0)
        return rc;
    const struct state_page *st = &p->target.stored->page;
    rc = page_format_stored(p->cfg->format, &s->block, s->source, s->source_len, st,
                            p->target.depth, &s->pairs);
    const char *t = st->targets, *end = t + st->targets_len;
    for (; rc == 0 && s->following && t < end; t += strlen(t) + 1)
        rc = page_keep_to_follow(&s->follow, t, strlen(t));
    return rc;
}

/* Reports a response that has no links to give. 1 when it was one, else 0. */
static int report_unscanned(struct page *p)
{
    http_request *r = &p->req;
    char why[128];
    if (r->outcome == HTTP_NOT_MODIFIED) {
        p->result.outcome = PAGE_NOT_MODIFIED;
        log_verbose("%s: not modified (HTTP 304)", p->target.url);
        return p->target.stored == NULL; /* else its stored pairs are written, see replay */
    }
    if (r->outcome == HTTP_TYPE_REFUSED) {
        p->result.outcome = PAGE_SKIPPED;
        log_verbose("%s: skipped: not HTML (%s)", p->target.url,
                    r->content_type[0] ? r->content_type : "no type");
        return 1;
    }
    if (r->outcome != HTTP_OK) {
        const char *what = http_describe(r, why, sizeof why);
        log_error("%s: %s", p->target.url, what);
        set_failure(p, failure_kind(r), what);
        return 1;
    }
    return 0;
}

/* Bodies below this are scanned on the loop: about 8 µs of work at 1 GB/s. */
#define SCAN_ON_POOL_MIN 8192
/* A 304's stored pairs below this are written from the loop: formatting a pair and
 * offering its link take some 200 instructions, so 64 of them are about the hand-off's
 * cost. */
#define REPLAY_ON_POOL_MIN 64

static void scan_init(struct page *p)
{
    p->scan = (struct scan){
        .cfg = p->cfg,
        .source = p->target.url,
        .source_len = p->target.len,
        .origin = {.status = p->req.status, .depth = p->target.depth},
        .following = p->target.follow,
    };
    buf_init(&p->scan.target);
    buf_init(&p->scan.block);
    buf_init(&p->scan.follow);
    buf_init(&p->scan.written);
    seen_init(&p->scan.targets);
}

static void scan_finish(struct scan *s)
{
    url_base_destroy(s->base);
    s->base = NULL;
    seen_finish(&s->targets);
    buf_finish(&s->written);
    buf_finish(&s->follow);
    buf_finish(&s->block);
    buf_finish(&s->target);
}

/* With cfg->hash_bodies, the body's fingerprint (fingerprint.h says why not SHA-256),
 * taken by the transfer as the body came in (http.h's `fingerprint`): on the loop, not in
 * the scan, since the pool thread that scans is the busiest thread of a run (perf on
 * scenario A: 55% of the samples, the loop 45%). */
static void fingerprint_body(struct page *p)
{
    if (!p->cfg->hash_bodies)
        return;
    uint64_t h = p->req.body_fingerprint;
    memset(p->result.body_hash, 0, sizeof p->result.body_hash);
    for (int i = 0; i < 8; i++)
        p->result.body_hash[i] = (unsigned char)(h >> (8 * i));
    p->result.has_body_hash = 1;
}

/* On a thread of the pool. */
static void scan_work(uv_work_t *w)
{
    struct page *p = w->data;
    /* With the output gone (a reader that closed `-o -`), scans queued behind this one
     * would only keep the run from ending: under valgrind, a hundred link-dense pages
     * fetched before the reader left took 16 s to scan for nothing. */
    if (p->cfg->output_lost != NULL && atomic_load(p->cfg->output_lost))
        p->scan_rc = -ECANCELED;
    else if (p->replay)
        p->scan_rc = replay_stored(p);
    else
        p->scan_rc = scan_body(&p->req, &p->scan);
    /* What only the scan needed goes now, before the page waits for the loop: the set of
     * targets is 16 bytes or more a link. */
    seen_finish(&p->scan.targets);
    buf_finish(&p->scan.target);
}

static void scan_after(uv_work_t *w, int status)
{
    struct page *p = w->data;
    if (status != 0)
        p->scan_rc = status;
    task_wake(&p->t, 0);
}

/* Back on the loop: the page's block goes to the writer, and its links to the result. */
static void publish(struct page *p)
{
    struct scan *s = &p->scan;
    struct page_result *res = &p->result;
    const http_request *r = &p->req;
    int rc = p->scan_rc;
    /* The writer takes the block itself rather than a copy: a link-dense page's lines are
     * four times its size, and were held twice (issue 16 item 10). */
    if (rc == 0 && s->block.len > 0)
        rc = writer_submit_buf(p->cfg->out, &s->block, s->pairs);
    if (rc == -ECANCELED) {
        res->outcome = PAGE_CANCELLED; /* not scanned: the output was gone */
    } else if (rc == 0 && p->replay) {
        res->outcome = PAGE_NOT_MODIFIED;
        res->replayed = 1;
        res->pairs = s->pairs;
        res->nofollow = p->target.stored->page.nofollow;
        res->follow = s->follow;
        buf_init(&s->follow);
    } else if (rc == 0) {
        res->outcome = PAGE_OK;
        res->pairs = s->pairs;
        res->bad = s->bad;
        res->nofollow = s->nofollow;
        log_verbose("%s: HTTP %ld, %zu bytes, %zu links, %zu unparsable%s", p->target.url,
                    r->status, r->bytes, s->pairs, s->bad, s->nofollow ? ", nofollow" : "");
        /* The links change hands rather than being copied. */
        res->follow = s->follow;
        buf_init(&s->follow);
        res->targets = s->written;
        buf_init(&s->written);
    } else if (writer_error(p->cfg->out) == 0) {
        const char *what = rc == -ENOMEM ? "out of memory" : "cannot scan the page";
        log_error("%s: %s", p->target.url, what);
        set_failure(p, "scan", what);
    } else {
        /* A writer error is reported once, for the run, by whoever owns the writer. */
        res->outcome = PAGE_UNWRITTEN;
    }
    scan_finish(s);
}

/* ---- saving the body (--save) ---- */

/* Where the file work runs. Measured on this machine (ext4 on a virtio disk, 2 shared cores,
 * strace -T over 2,000 bodies of 74 KB): creating a file took 440 us at the median and up to
 * 12 ms, a write(2) of 16 KiB into the page cache 14 us, a rename 19 us. Creating files on
 * the loop's thread stalled every transfer for 2,000 x 0.44 ms, longer than curl -Z took to
 * fetch the lot. So a body is held in memory while it arrives (HTML is anyway, to be
 * scanned), and once it is complete a work item on libuv's pool makes its directories and
 * file, writes it and renames it into place, while the loop goes on moving bytes; an HTML
 * page is scanned by the same work item. Only a body larger than HOLD_MAX (or arriving while
 * HOLD_BUDGET is held by others) is streamed instead: its file is made on the loop, and its
 * pieces are written there as they come (gathered by save.c into blocking write(2)s of
 * 128 KiB into the page cache), so memory stays flat whatever its size: 18 MiB of peak RSS
 * for a 4 GiB body. A disk slower than the network then holds the loop in write(2) while
 * the kernel throttles dirty pages; handing those writes to the pool as well would need a
 * copy of each piece or curl_easy_pause() until it is written, and is left for when that
 * case matters. */
enum {
    HOLD_MAX = 256 << 10,   /* a body held whole: larger ones are streamed */
    HOLD_BUDGET = 32 << 20, /* held by all pages at once */
};

static void release_held(struct page *p)
{
    *p->cfg->save->held_bytes -= p->held.len;
    buf_finish(&p->held);
}

/* Forgets a body that will not be saved (a failed or cancelled attempt). */
static void drop_file(struct page *p)
{
    save_abort(p->file);
    p->file = NULL;
    if (p->cfg->save != NULL)
        release_held(p);
}

/* The sink's start: keep the body if it is HTML (it is scanned, and saved from there), and
 * take a non-HTML body of a type to save as it arrives. */
static int on_body_start(void *ctx, const char *content_type)
{
    struct page *p = ctx;
    drop_file(p);
    int html = !p->cfg->save->no_scan && links_accepts_type(content_type);
    p->want_save = save_type_wanted(p->cfg->save->types, content_type);
    if (html)
        return HTTP_SINK_KEEP;
    return p->want_save ? HTTP_SINK_STREAM : 0;
}

/* A body outgrew what may be held: its file is made now, and what was held goes first. */
static int start_streaming(struct page *p)
{
    const struct page_save *sv = p->cfg->save;
    struct buf rel;
    buf_init(&rel);
    int rc = savepath_map(p->target.url, p->target.len, sv->path_flags, &rel);
    if (rc == 0)
        rc = save_begin(sv->saver, rel.data, p->target.url, &p->file);
    buf_finish(&rel);
    if (rc == 0 && sv->manifest) {
        if (p->sum == NULL)
            rc = (p->sum = digest_new()) != NULL ? 0 : -ENOMEM;
        else
            rc = digest_reset(p->sum);
    }
    if (rc == 0 && p->held.len > 0) {
        rc = save_write(p->file, p->held.data, p->held.len);
        if (rc == 0 && sv->manifest)
            rc = digest_update(p->sum, p->held.data, p->held.len);
    }
    release_held(p);
    return rc;
}

static int on_body_data(void *ctx, const char *data, size_t len)
{
    struct page *p = ctx;
    const struct page_save *sv = p->cfg->save;
    if (p->file == NULL) {
        if (p->held.len + len <= HOLD_MAX && *sv->held_bytes + len <= HOLD_BUDGET) {
            int rc = buf_append(&p->held, data, len);
            if (rc == 0)
                *sv->held_bytes += len;
            return rc;
        }
        int rc = start_streaming(p);
        if (rc != 0)
            return rc;
    }
    int rc = save_write(p->file, data, len);
    if (rc == 0 && sv->manifest)
        rc = digest_update(p->sum, data, len);
    return rc;
}

/* On a thread of the pool: the whole body (held, or HTML in req.body) into its file. Touches
 * the page's own fields and the saver, which is made for it. */
static void save_on_pool(struct page *p)
{
    const struct page_save *sv = p->cfg->save;
    const struct buf *body = p->html ? &p->req.body : &p->held;
    const char *data = body->data != NULL ? body->data : "";
    struct buf rel;
    buf_init(&rel);
    save_file *f = NULL;
    int rc = savepath_map(p->target.url, p->target.len, sv->path_flags, &rel);
    if (rc == 0)
        rc = save_begin(sv->saver, rel.data, p->target.url, &f);
    buf_finish(&rel);
    if (rc == 0)
        rc = save_write(f, data, body->len);
    if (rc == 0 && sv->manifest)
        rc = digest_sha256(data, body->len, p->saved_sum);
    if (rc == 0) {
        rc = save_commit(f, &p->saved_as);
        f = NULL;
    }
    save_abort(f);
    p->save_rc = rc;
}

/* A body that could not be saved: that URL's failure, or, when nothing more can be saved,
 * the run's (its owner reports it and ends the run). */
static void report_save_failure(struct page *p, int err)
{
    const struct page_save *sv = p->cfg->save;
    if (save_failure_is_fatal(sv->saver, err)) {
        sv->fatal(sv->ctx, err, p->target.url);
        p->result.outcome = PAGE_UNWRITTEN;
        return;
    }
    char what[128];
    snprintf(what, sizeof what, "cannot save the body: %s",
             err == -ELOOP ? "a symbolic link or special file is in the way" : strerror(-err));
    log_error("%s: %s", p->target.url, what);
    set_failure(p, "save", what);
}

/* A body is in place: its line goes to the manifest. 0, or -1 after reporting that the
 * manifest cannot be written. */
static int record_saved(struct page *p, const char *rel, unsigned long long bytes,
                        const unsigned char sum[DIGEST_SIZE])
{
    const struct page_save *sv = p->cfg->save;
    const http_request *r = &p->req;
    int rc = 0;
    if (sv->manifest) {
        char hex[DIGEST_HEX_SIZE];
        digest_hex(sum, hex);
        struct format_saved rec = {
            .url = p->target.url,
            .final_url = r->final_url,
            .path = rel,
            .bytes = bytes,
            .type = r->content_type[0] ? r->content_type : NULL,
            .sha256 = hex,
        };
        struct buf line;
        buf_init(&line);
        rc = format_saved(&line, &rec);
        if (rc == 0)
            rc = saver_record(sv->saver, line.data, line.len);
        buf_finish(&line);
        /* The body is in place: a manifest that cannot be written is the run's failure. */
        if (rc != 0 && rc != -ENOMEM && !save_error_is_fatal(rc))
            rc = -EIO;
    }
    if (rc != 0) {
        report_save_failure(p, rc);
        return -1;
    }
    p->result.saved = 1;
    log_verbose("%s: saved as %s (%llu bytes)", p->target.url, rel, bytes);
    return 0;
}

/* What save_commit() came to: the body in place, that URL's failure, or (issue 15's
 * collision rule, save.h) another URL's body holding its path, which is no failure.
 * 0, or -1 after reporting. */
static int after_commit(struct page *p, int rc, const char *rel, unsigned long long bytes,
                        const unsigned char sum[DIGEST_SIZE])
{
    if (rc == SAVE_YIELDED) {
        log_verbose("%s: not saved: another URL's body holds its name (SAVING in areq(1))",
                    p->target.url);
        return 0;
    }
    if (rc != 0) {
        report_save_failure(p, rc);
        return -1;
    }
    return record_saved(p, rel, bytes, sum);
}

/* A streamed body is complete and 2xx: it takes its place. 0, or -1 after reporting. */
static int keep_streamed(struct page *p)
{
    unsigned long long bytes = save_bytes(p->file);
    unsigned char sum[DIGEST_SIZE] = {0};
    struct buf rel;
    buf_init(&rel);
    int rc = p->cfg->save->manifest ? digest_final(p->sum, sum) : 0;
    if (rc == 0)
        rc = save_commit(p->file, &rel);
    else
        save_abort(p->file);
    p->file = NULL;
    rc = after_commit(p, rc, rel.data, bytes, sum);
    buf_finish(&rel);
    return rc;
}

/* Back on the loop after save_on_pool(). 0, or -1 after reporting. */
static int finish_pool_save(struct page *p)
{
    unsigned long long bytes = p->html ? p->req.body.len : p->held.len;
    release_held(p);
    int rc = after_commit(p, p->save_rc, p->saved_as.data, bytes, p->saved_sum);
    buf_finish(&p->saved_as);
    return rc;
}

/* The pool's work for a page: its save, then its scan. */
static void page_work(uv_work_t *w)
{
    struct page *p = w->data;
    if (p->in_pool)
        save_on_pool(p);
    if (p->html)
        scan_work(w);
}

/* ---- retries ---- */

/* A uniform 64-bit random number (xorshift64*): jitter needs spread, not secrecy. */
static uint64_t next_random(uint64_t *rng)
{
    *rng ^= *rng >> 12;
    *rng ^= *rng << 25;
    *rng ^= *rng >> 27;
    return *rng * 0x2545F4914F6CDD1DULL;
}

enum { BACKOFF_BASE_MS = 500, BACKOFF_CAP_MS = 60000 };

/* How long to wait before attempt `attempt` (1-based) again: Retry-After when the server
 * gave one (up to a minute), else exponential backoff from 0.5 s with full jitter, so that
 * many URLs failing together do not come back together. */
static uint64_t backoff_ms(uint64_t *rng, const http_request *r, unsigned attempt)
{
    if (r->retry_after_s >= 0) {
        uint64_t ms = (uint64_t)r->retry_after_s * 1000;
        return ms < BACKOFF_CAP_MS ? ms : BACKOFF_CAP_MS;
    }
    uint64_t ceiling = BACKOFF_BASE_MS;
    for (unsigned i = 1; i < attempt && ceiling < BACKOFF_CAP_MS; i++)
        ceiling *= 2;
    if (ceiling > BACKOFF_CAP_MS)
        ceiling = BACKOFF_CAP_MS;
    return next_random(rng) % (ceiling + 1);
}

/* ---- the task ---- */

enum page_state { PAGE_FETCH, PAGE_FETCHED, PAGE_BACKED_OFF, PAGE_SCANNED };

/* Every state change of a page goes through here, so that a trace of it (a build with
 * -DAREQ_TRACE_STATES) is this one line. */
static void page_set_state(struct page *p, enum page_state next)
{
#ifdef AREQ_TRACE_STATES
    static const char *const names[] = {"FETCH", "FETCHED", "BACKED_OFF", "SCANNED"};
    log_plain("page %s: %s -> %s", p->target.url, names[p->t.state], names[next]);
#endif
    p->t.state = (int)next;
}

static enum task_step page_step(task *t)
{
    struct page *p = (struct page *)t;
    const struct page_config *cfg = p->cfg;
    switch (t->state) {
    case PAGE_BACKED_OFF:
        http_request_finish(&p->req);
        http_request_init(&p->req, p->target.url);
        /* fall through */
    case PAGE_FETCH:
        if (task_cancelled(t))
            return task_finish(t, task_cancelled(t));
        page_set_state(p, PAGE_FETCHED);
        p->req.accept = links_accepts_type; /* a page is worth its body only if we can scan it */
        if (cfg->save != NULL) {
            /* ... or save it: the sink decides, by type, instead. */
            p->sink = (struct http_sink){.start = on_body_start, .write = on_body_data, .ctx = p};
            p->req.sink = &p->sink;
            p->want_save = 0;
        }
        p->req.if_none_match = p->target.if_none_match;
        p->req.if_modified_since = p->target.if_modified_since;
        p->req.fingerprint = cfg->hash_bodies;
        return http_fetch(cfg->http, &p->req, t);
    case PAGE_FETCHED:
        /* Only a whole 2xx body is saved: anything else leaves no file behind. */
        if (p->req.outcome != HTTP_OK)
            drop_file(p);
        if (p->req.outcome == HTTP_CANCELLED)
            return task_finish(t, task_cancelled(t));
        if (!task_cancelled(t) && p->attempt < cfg->retries && http_is_transient(&p->req)) {
            p->attempt++;
            p->result.retries++;
            uint64_t ms = backoff_ms(cfg->rng, &p->req, p->attempt);
            char why[128];
            log_verbose("%s: %s; trying again in %.1f s (retry %u of %u)", p->target.url,
                        http_describe(&p->req, why, sizeof why), (double)ms / 1000, p->attempt,
                        cfg->retries);
            page_set_state(p, PAGE_BACKED_OFF);
            return task_sleep(t, ms);
        }
        if (p->req.sink_error != 0) {
            report_save_failure(p, p->req.sink_error);
            return task_finish(t, task_cancelled(t));
        }
        /* A transfer that ended before the cancellation still counts: its block is whole. */
        if (report_unscanned(p))
            return task_finish(t, task_cancelled(t));
        /* 204 and 205 carry no content (RFC 9110 15.3.5, 15.3.6): there is no body to
         * save, and an earlier copy must not become an empty file. */
        if (p->req.status == 204 || p->req.status == 205) {
            p->want_save = 0;
            drop_file(p);
        }
        p->replay = p->req.outcome == HTTP_NOT_MODIFIED;
        p->in_pool = p->want_save && p->file == NULL && !p->replay;
        if (p->file != NULL && keep_streamed(p) != 0)
            return task_finish(t, task_cancelled(t));
        p->html = p->req.sink == NULL || (p->req.sink_mode & HTTP_SINK_KEEP) || p->replay;
        if (!p->html && !p->in_pool) {
            /* streamed, and not HTML: nothing to scan (or, no content: nothing to save) */
            p->result.outcome = p->want_save ? PAGE_SAVED : PAGE_SKIPPED;
            return task_finish(t, task_cancelled(t));
        }
        if (p->html) {
            scan_init(p);
            if (p->replay) {
                p->scan.origin.status = p->target.stored->page.status;
                p->scan.following = p->target.follow && !p->target.stored->page.nofollow;
            } else {
                fingerprint_body(p);
            }
        }
        page_set_state(p, PAGE_SCANNED);
        p->work.data = p;
        /* Scanning runs on the pool so that the loop keeps moving bytes meanwhile. The
         * wait is shielded: a running work item cannot be called back, and the page must
         * outlive it; a scan takes microseconds, so a stop still comes promptly.
         * A small body is scanned here: the hand-off (a futex wake, a context switch and an
         * async send back) costs more than its scan (10,000 pages of 600 bytes: 11,700
         * futex calls for microseconds of work). */
        if ((p->in_pool || p->req.body.len >= SCAN_ON_POOL_MIN ||
             (p->replay && p->target.stored->page.ntargets >= REPLAY_ON_POOL_MIN)) &&
            uv_queue_work(t->sched->loop, &p->work, page_work, scan_after) == 0)
            return task_suspend_shielded(t);
        page_work(&p->work);
        /* fall through */
    case PAGE_SCANNED:
        if (p->replay && p->scan_rc == -EINVAL && !task_cancelled(t)) {
            /* The stored list is damaged (state_record_targets): asked again without
             * validators, the page's pairs come from its body, and its record is
             * rewritten. Once: without target.stored a 304 is not replayed. */
            scan_finish(&p->scan);
            p->replay = 0;
            p->target.stored = NULL;
            p->target.if_none_match = p->target.if_modified_since = NULL;
            page_set_state(p, PAGE_BACKED_OFF);
            return task_yield(t);
        }
        if (p->in_pool && finish_pool_save(p) != 0) {
            if (p->html)
                scan_finish(&p->scan);
            return task_finish(t, task_cancelled(t));
        }
        if (!p->html) {
            p->result.outcome = PAGE_SAVED;
            return task_finish(t, task_cancelled(t));
        }
        /* The body is no longer needed: let it go before the block is written. */
        buf_finish(&p->req.body);
        publish(p);
        return task_finish(t, task_cancelled(t));
    }
    return task_finish(t, -EINVAL);
}

static void page_done(task *t)
{
    struct page *p = (struct page *)t;
    drop_file(p);
    digest_free(p->sum);
    buf_finish(&p->saved_as);
    struct page_result *res = &p->result;
    const http_request *r = &p->req;
    /* Lent for the callback: the request owns them until it is finished below. */
    res->final_url = r->final_url;
    res->status = r->status;
    res->etag = r->etag;
    res->last_modified = r->last_modified;
    res->unsolicited_304 = r->unsolicited_304;
    p->done(p->done_arg, &p->target, res);
    http_request_finish(&p->req);
    buf_finish(&res->follow);
    buf_finish(&res->targets);
    free(p);
}

int page_spawn(task_sched *s, task *parent, const struct page_config *cfg,
               const struct page_target *target, page_done_fn *done, void *arg)
{
    struct page *p = calloc(1, sizeof *p);
    if (p == NULL)
        return -ENOMEM;
    p->cfg = cfg;
    p->target = *target;
    p->done = done;
    p->done_arg = arg;
    p->result.outcome = PAGE_CANCELLED;
    buf_init(&p->result.follow);
    buf_init(&p->held);
    buf_init(&p->saved_as);
    buf_init(&p->result.targets);
    task_init(&p->t, page_step, page_done);
    http_request_init(&p->req, target->url);
    task_spawn(s, &p->t, parent);
    return 0;
}
