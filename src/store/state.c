#include "state.h"

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

/* "areq" in ASCII: PRAGMA application_id, at offset 68 of the file's header. */
#define STATE_APPLICATION_ID 0x61726571

static const char schema_sql[] =
    "CREATE TABLE page ("
    " id INTEGER PRIMARY KEY,"   /* explicit, so that VACUUM keeps it: targets refer to it */
    " url TEXT NOT NULL UNIQUE," /* as queued, normalised */
    " final_url TEXT,"
    " outcome INTEGER NOT NULL," /* enum state_outcome */
    " status INTEGER NOT NULL,"
    " error TEXT,"
    " etag TEXT,"
    " last_modified TEXT,"
    " body_hash BLOB,"           /* a fingerprint (page.h), or NULL */
    " ntargets INTEGER NOT NULL,"
    " depth INTEGER NOT NULL,"
    " nofollow INTEGER NOT NULL,"
    " changed_at INTEGER NOT NULL,"
    " options_hash BLOB NOT NULL);"
    /* A page's targets apart from its row: a run that finds a page unchanged (a 304)
     * rewrites the row, and SQLite rewrites a row whole; with the blob in it, an unchanged
     * re-run of scenario A wrote 8 MB of WAL and its last commit was 18% of its profile. */
    "CREATE TABLE targets ("
    " page INTEGER PRIMARY KEY," /* page.id */
    " list BLOB NOT NULL);"      /* front-coded, in output order (see state_encode_targets) */
    /* What every run writes for every page it saw, apart from the row for the same reason
     * as the targets, and more so: a 304 changes nothing else. With the run and the fetch
     * time in the page rows, an unchanged re-run of scenario A wrote 1.2 MB to the WAL and
     * the file (152 WAL pages in its last commit alone), then 0.3 MB (both with a commit
     * each 50 ms); per page, a row of about 200 bytes against a visit and its index entry
     * of about 40 (test_state.c). */
    "CREATE TABLE visit ("
    " page INTEGER PRIMARY KEY," /* page.id */
    " run INTEGER NOT NULL,"     /* the run that last fetched or revalidated it */
    " fetched_at INTEGER NOT NULL);"
    "CREATE INDEX visit_run ON visit(run);"
    "CREATE TABLE robots ("
    " origin TEXT PRIMARY KEY, status INTEGER NOT NULL, etag TEXT, last_modified TEXT,"
    " body BLOB, fetched_at INTEGER NOT NULL);"
    "CREATE TABLE run ("
    " id INTEGER PRIMARY KEY, command_hash BLOB NOT NULL, options_hash BLOB NOT NULL,"
    " started_at INTEGER NOT NULL, finished_at INTEGER,"
    /* Each file's length the last commit made durable; NULL: the run keeps no such file. */
    " output_bytes INTEGER NOT NULL, changes_bytes INTEGER, failures_bytes INTEGER);";

/* What read_row() reads, in its order. */
#define PAGE_SELECT                                                                          \
    "SELECT url, final_url, outcome, status, error, etag, last_modified, body_hash, "     \
    "targets.list, ntargets, depth, nofollow, visit.fetched_at, changed_at, options_hash, " \
    "visit.run FROM page JOIN visit ON visit.page = page.id "                               \
    "LEFT JOIN targets ON targets.page = page.id "

/* A page waiting for its commit: the record and copies of everything it points to, its
 * targets as the caller had them (plain, each NUL-terminated): the commit encodes them. */
struct pending {
    struct pending *next;
    struct state_page p;
    size_t bytes;
    char data[];
};

/* A robots.txt waiting for its commit, with copies of what it points to. */
struct pending_robots {
    struct pending_robots *next;
    struct state_robots r;
    char data[];
};

/* A thread of the store's own, and what wakes it and, back on the loop, its caller: a
 * commit waits for fdatasync and SQLite's checkpoints, and a read may wait for the disk;
 * on libuv's pool, whose threads scan pages, either held every scan behind it. `lock`
 * guards the hand-over between the two sides (what each thread's section below says). */
struct worker {
    uv_thread_t thread;
    uv_mutex_t lock;
    uv_cond_t wake;
    uv_async_t done; /* ref'd only while the loop waits for an answer */
    int up, quit;
    int start_error; /* a start that failed: not tried again, `done` may still be closing */
};

/* A lookup's room (state_lookup_start): about a page of 150 links (a row of scenario A is
 * 3.2 KB), up to what few pages need. */
enum { ROW_ROOM_MIN = 4096, ROW_ROOM_MAX = 64 << 10 };

struct state {
    char *path;
    int lock_fd;              /* flock held on the file; closed after SQLite has let go */
    sqlite3 *rd;              /* reads: the reader thread, or the caller under rd_lock */
    sqlite3 *wr;              /* commits (the commit thread while one is in flight) */
    sqlite3_stmt *get_page, *each_page, *last_run, *get_robots;
    sqlite3_stmt *put_page, *put_targets, *put_visit, *touch_page, *touch_visit, *update_run;
    sqlite3_stmt *finish_run, *put_robots;
    uv_mutex_t rd_lock;       /* rd and its statements, between the reader and the caller */
    int rd_lock_up;
    int64_t run;
    int knew_pages;           /* the page table had a row when the store was opened */
    unsigned char options_hash[DIGEST_SIZE];
    int kept[STATE_NFILES];        /* the run's files whose lengths are recorded */
    uint64_t ends[STATE_NFILES];   /* each file's length as the last commit recorded it */

    struct pending *head, *tail; /* queued, in output order */
    size_t npending, pending_bytes;
    struct pending_robots *robots; /* queued robots.txt files, any order */

    struct buf blob;          /* the commit's, for a page's targets as encoded */

    /* The commit thread, started by the first state_commit and stopped by state_detach.
     * committer.lock guards `job` and `result`. */
    struct worker committer;
    int job;
    int wal_pages;            /* in the WAL after the last commit (wal_grew) */

    /* A commit in flight: its pages, its arguments and its answer. */
    int busy;
    struct pending *batch;
    struct pending_robots *robots_batch;
    int sync_fds[STATE_NFILES];
    uint64_t record[STATE_NFILES]; /* the lengths this commit records */
    int finish;
    int result;
    state_commit_fn *cb;
    void *cb_arg;

    /* The reader thread, started by the first state_lookup_start and stopped by
     * state_detach. reader.lock guards both lists, each oldest first. */
    struct worker reader;
    struct state_lookup *asked, *asked_tail;       /* for the reader */
    struct state_lookup *answered, *answered_tail; /* for the loop */
    size_t lookups;           /* started and not yet answered on the loop */
    size_t row_room;          /* what a lookup's record is given before it is asked */
    /* The loop's own: lookups started in this turn of the loop, handed to the reader all
     * at once before the loop waits (hand_over, a prepare handle active only while some
     * are held), so that a turn that starts many pages wakes the reader once. */
    struct state_lookup *held, *held_tail;
    uv_prepare_t hand_over;
    int hand_over_up;

    char why[512];
};

static int say(char *why, size_t whylen, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int say(char *why, size_t whylen, int rc, const char *fmt, ...)
{
    if (whylen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, whylen, fmt, ap);
        va_end(ap);
    }
    return rc;
}

/* SQLite's answer in our terms, with its words in `why`. */
static int sql_fail_in(state *s, sqlite3 *db, int code, const char *doing, char *why,
                       size_t whylen)
{
    int rc;
    switch (code & 0xff) {
    case SQLITE_NOMEM:
        rc = -ENOMEM;
        break;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
        rc = STATE_E_CORRUPT;
        break;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        rc = STATE_E_LOCKED;
        break;
    default:
        rc = STATE_E_IO;
        break;
    }
    /* SQLite says "disk I/O error" for a full disk where it maps or grows the -shm file
     * (opening a store in WAL mode): the system's word says which. */
    int sys = db != NULL && (code & 0xff) == SQLITE_IOERR ? sqlite3_system_errno(db) : 0;
    say(why, whylen, rc, "state file %s: %s: %s%s%s%s%s", s->path, doing,
        db != NULL ? sqlite3_errmsg(db) : sqlite3_errstr(code), sys != 0 ? " (" : "",
        sys != 0 ? strerror(sys) : "", sys != 0 ? ")" : "",
        rc == STATE_E_CORRUPT ? " (the file is damaged; it was left as it is)" : "");
    return rc;
}

/* The same, in s->why: for the thread that owns the store (or a commit it waits for). */
static int sql_fail(state *s, sqlite3 *db, int code, const char *doing)
{
    return sql_fail_in(s, db, code, doing, s->why, sizeof s->why);
}

const char *state_error(const state *s)
{
    return s->why;
}

/* ---- targets, front-coded ---- */

static int get_varint(const unsigned char **p, const unsigned char *end, uint64_t *out)
{
    /* One byte, mostly: a target's shared length and back, and its rest, are small. */
    if (*p < end && !(**p & 0x80)) {
        *out = *(*p)++;
        return 0;
    }
    uint64_t v = 0;
    for (unsigned shift = 0; *p < end && shift < 64; shift += 7) {
        unsigned char c = *(*p)++;
        v |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) {
            *out = v;
            return 0;
        }
    }
    return -EINVAL;
}

static size_t put_varint_at(unsigned char *at, uint64_t v)
{
    size_t n = 0;
    do {
        at[n++] = (unsigned char)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v != 0);
    return n;
}

/* How many of the first `max` bytes of a and b agree: eight at a time, since neighbouring
 * targets share some 30 bytes (callgrind: the byte loop made encoding 163 instructions a
 * target), and within the first eight that differ, the first byte that does is where the
 * lowest set bit of their difference falls (the highest, on a big-endian host): a byte
 * loop there ended in a mispredicted branch for each of the four targets compared, and
 * encoding scenario A's 300,000 targets took 24.4 ms where this takes 17.7 (the lists of
 * a run's output, encoded ten times over, same bytes out). */
static size_t common_prefix(const char *a, const char *b, size_t max)
{
    size_t i = 0;
    while (i + 8 <= max) {
        uint64_t x, y;
        memcpy(&x, a + i, 8);
        memcpy(&y, b + i, 8);
        uint64_t differ = x ^ y;
        if (differ != 0) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
            return i + (size_t)(__builtin_clzll(differ) / 8);
#else
            return i + (size_t)(__builtin_ctzll(differ) / 8);
#endif
        }
        i += 8;
    }
    while (i < max && a[i] == b[i])
        i++;
    return i;
}

/* A page's targets share most of their bytes with one of the few before them (same site,
 * same folders; a page's links to its own site and to others often alternate): each is
 * stored as which of the last TARGETS_BACK it shares most with, how much, and the rest:
 * varint(shared * TARGETS_BACK + back - 1), varint(rest), rest. On scenario A's pages
 * (links to the site itself and to several others, interleaved) that is 19 bytes a target
 * where sharing with the one before only took 24 (the store's bytes are what its commits
 * write, twice with the checkpoint). Appends to out. */
enum { TARGETS_BACK = 4 };

int state_encode_targets(const char *t, size_t len, struct buf *out)
{
    /* Room for half the plain list at once, about what it comes to (2.9 KB of 6 a page
     * on scenario A), rather than a dozen doublings from nothing. */
    if (buf_reserve(out, len / 2) != 0)
        return -ENOMEM;
    const char *before[TARGETS_BACK] = {0};
    size_t before_len[TARGETS_BACK] = {0};
    const char *end = t + len;
    for (size_t k = 0; t < end; k++) {
        size_t n = strlen(t);
        size_t shared = 0, back = 1;
        for (size_t b = 1; b <= TARGETS_BACK && b <= k; b++) {
            size_t i = (k - b) % TARGETS_BACK;
            size_t max = n < before_len[i] ? n : before_len[i];
            if (max <= shared)
                continue;
            size_t m = common_prefix(t, before[i], max);
            if (m > shared) {
                shared = m;
                back = b;
            }
        }
        /* Two varints of at most 10 bytes each, and the rest. */
        int rc = buf_reserve(out, n - shared + 20);
        if (rc != 0)
            return rc;
        unsigned char *at = (unsigned char *)out->data + out->len;
        size_t used = put_varint_at(at, (uint64_t)shared * TARGETS_BACK + back - 1);
        used += put_varint_at(at + used, n - shared);
        memcpy(at + used, t + shared, n - shared);
        out->len += used + n - shared;
        before[k % TARGETS_BACK] = t;
        before_len[k % TARGETS_BACK] = n;
        t += n + 1;
    }
    return 0;
}

/* One entry of an encoded list, the k-th: which target before it shares its prefix (`from`,
 * an index into the TARGETS_BACK ring), how much, and the rest's bytes. */
struct entry {
    size_t from, shared, rest;
    const unsigned char *bytes;
};

/* Reads the k-th entry at *p, given the lengths of the targets before it. 0, or -EINVAL
 * when the blob is damaged: a varint cut short, a rest beyond the blob, or a prefix shared
 * with a target before the first or longer than that target. (A rest holding a NUL or a
 * newline is damage too, which decode_lines finds.) */
static int read_entry(const unsigned char **p, const unsigned char *end, size_t k,
                      const size_t before_len[TARGETS_BACK], struct entry *e)
{
    uint64_t ref, rest;
    if (get_varint(p, end, &ref) != 0 || get_varint(p, end, &rest) != 0 ||
        rest > (uint64_t)(end - *p))
        return -EINVAL;
    size_t back = (size_t)(ref % TARGETS_BACK) + 1;
    uint64_t shared = ref / TARGETS_BACK;
    e->from = (k - back) % TARGETS_BACK;
    if (shared > 0 && (back > k || shared > before_len[e->from]))
        return -EINVAL;
    e->shared = (size_t)shared;
    e->rest = (size_t)rest;
    e->bytes = *p;
    *p += rest;
    return 0;
}

/* The plain size of an encoded list (each target and its NUL), or SIZE_MAX when the blob
 * is damaged (read_entry; unchecked, a damaged blob asked buf_reserve for petabytes: "out
 * of memory" rather than "damaged"); *count, how many targets it holds. */
static size_t decoded_size(const unsigned char *p, const unsigned char *end, size_t *count)
{
    size_t before_len[TARGETS_BACK] = {0};
    size_t total = 0, k = 0;
    struct entry e;
    for (; p < end; k++) {
        if (read_entry(&p, end, k, before_len, &e) != 0)
            return SIZE_MAX;
        size_t n = e.shared + e.rest;
        if (total > SIZE_MAX / 2 - n - 1)
            return SIZE_MAX;
        total += n + 1;
        before_len[k % TARGETS_BACK] = n;
    }
    *count = k;
    return total;
}

/* Appends the targets to out, each as `prefix`, the target and `end_with`; *count, how
 * many. 0, -EINVAL (damaged: out is as it was) or -ENOMEM. */
static int decode_lines(const void *blob, size_t len, const char *prefix, size_t prefix_len,
                        char end_with, struct buf *out, size_t *count)
{
    const unsigned char *p = blob, *end = p + len;
    *count = 0;
    if (len == 0)
        return 0;
    /* Sized once, which also checks every entry: grown target by target, the record was
     * copied over as it doubled. */
    size_t n = 0, size = decoded_size(p, end, &n);
    if (size == SIZE_MAX)
        return -EINVAL;
    if (prefix_len > 0 && (n > (SIZE_MAX / 2 - size) / prefix_len))
        return -ENOMEM;
    if (buf_reserve(out, size + n * prefix_len) != 0)
        return -ENOMEM;
    /* Where the last TARGETS_BACK targets start in out, and their lengths: a target's
     * shared prefix is copied from the one it names, already written. */
    size_t before[TARGETS_BACK] = {0}, before_len[TARGETS_BACK] = {0};
    struct entry e;
    size_t at = out->len;
    char *d = out->data;
    for (size_t k = 0; p < end; k++) {
        if (read_entry(&p, end, k, before_len, &e) != 0)
            return -EINVAL; /* not after decoded_size; kept so this loop stands alone */
        if (prefix_len > 0) {
            memcpy(d + at, prefix, prefix_len);
            at += prefix_len;
        }
        if (e.shared > 0)
            memcpy(d + at, d + before[e.from], e.shared);
        memcpy(d + at + e.shared, e.bytes, e.rest);
        /* A target is a C string: one holding a NUL would decode as two, and its line would
         * not be its pair. For lines, one look over all of them at the end finds it. */
        if (end_with == '\0' && memchr(e.bytes, '\0', e.rest) != NULL)
            return -EINVAL;
        /* Nor does a target hold a newline (url.h: resolving drops them): as a line it
         * would be two, one without its source, and the links read back from the lines
         * (page.c) would be out of step. */
        if (memchr(e.bytes, '\n', e.rest) != NULL)
            return -EINVAL;
        before[k % TARGETS_BACK] = at;
        before_len[k % TARGETS_BACK] = e.shared + e.rest;
        at += e.shared + e.rest;
        d[at++] = end_with;
    }
    if (end_with != '\0' && memchr(d + out->len, '\0', at - out->len) != NULL)
        return -EINVAL;
    out->len = at;
    out->data[at] = '\0';
    *count = n;
    return 0;
}

/* Appends the targets, each NUL-terminated, to out. 0, -EINVAL (damaged) or -ENOMEM. */
static int decode_targets(const void *blob, size_t len, struct buf *out)
{
    size_t n;
    return decode_lines(blob, len, NULL, 0, '\0', out, &n);
}

/* ---- records ---- */

void state_record_init(struct state_record *r)
{
    memset(r, 0, sizeof *r);
    buf_init(&r->mem);
    buf_init(&r->plain);
}

void state_record_finish(struct state_record *r)
{
    buf_finish(&r->mem);
    buf_finish(&r->plain);
    state_record_init(r);
}

int state_record_lines(const struct state_record *rec, const char *prefix, size_t prefix_len,
                       struct buf *out, size_t *count)
{
    return decode_lines(rec->encoded, rec->encoded_len, prefix, prefix_len, '\n', out, count);
}

int state_record_targets(struct state_record *rec)
{
    if (rec->decoded)
        return 0;
    buf_clear(&rec->plain);
    int rc = decode_targets(rec->encoded, rec->encoded_len, &rec->plain);
    if (rc != 0)
        return rc;
    rec->decoded = 1;
    rec->page.targets = rec->plain.data != NULL ? rec->plain.data : "";
    rec->page.targets_len = rec->plain.len;
    return 0;
}

/* A text column copied into mem; its offset, or SIZE_MAX for NULL. */
static int keep_text(sqlite3_stmt *st, int col, struct buf *mem, size_t *at)
{
    *at = SIZE_MAX;
    if (sqlite3_column_type(st, col) == SQLITE_NULL)
        return 0;
    const unsigned char *t = sqlite3_column_text(st, col);
    int n = sqlite3_column_bytes(st, col);
    if (t == NULL)
        return -ENOMEM;
    *at = mem->len;
    int rc = buf_append(mem, t, (size_t)n);
    return rc != 0 ? rc : buf_putc(mem, '\0');
}

static void copy_hash(sqlite3_stmt *st, int col, unsigned char out[DIGEST_SIZE], int *has)
{
    const void *h = sqlite3_column_blob(st, col);
    int ok = h != NULL && sqlite3_column_bytes(st, col) == DIGEST_SIZE;
    if (ok)
        memcpy(out, h, DIGEST_SIZE);
    else
        memset(out, 0, DIGEST_SIZE);
    if (has != NULL)
        *has = ok;
}

/* The row `st` is on, into rec (columns in PAGE_SELECT order), its targets encoded: see
 * state_record_targets. */
static int read_row(sqlite3_stmt *st, struct state_record *rec)
{
    struct state_page *p = &rec->page;
    struct buf *mem = &rec->mem;
    buf_clear(mem);
    memset(p, 0, sizeof *p);
    rec->decoded = 0;
    rec->encoded = NULL;
    rec->encoded_len = 0;
    size_t url, final_url, error, etag, lm, targets;
    int rc = keep_text(st, 0, mem, &url);
    if (rc == 0)
        rc = keep_text(st, 1, mem, &final_url);
    if (rc == 0)
        rc = keep_text(st, 4, mem, &error);
    if (rc == 0)
        rc = keep_text(st, 5, mem, &etag);
    if (rc == 0)
        rc = keep_text(st, 6, mem, &lm);
    targets = mem->len;
    size_t encoded_len = (size_t)sqlite3_column_bytes(st, 8);
    const void *encoded = sqlite3_column_blob(st, 8);
    if (rc == 0 && encoded_len > 0)
        rc = buf_append(mem, encoded, encoded_len);
    if (rc != 0)
        return rc;
    if (url == SIZE_MAX)
        return -EINVAL;
    /* Pointers only now: the appends above may have moved the memory. */
    const char *base = mem->data;
    p->url = base + url;
    p->url_len = strlen(p->url);
    p->final_url = final_url != SIZE_MAX ? base + final_url : NULL;
    p->outcome = (enum state_outcome)sqlite3_column_int(st, 2);
    p->status = (long)sqlite3_column_int64(st, 3);
    p->error = error != SIZE_MAX ? base + error : NULL;
    p->etag = etag != SIZE_MAX ? base + etag : NULL;
    p->last_modified = lm != SIZE_MAX ? base + lm : NULL;
    copy_hash(st, 7, p->body_hash, &p->has_body_hash);
    rec->encoded = base + targets;
    rec->encoded_len = encoded_len;
    p->targets = NULL;
    p->targets_len = 0;
    p->ntargets = (size_t)sqlite3_column_int64(st, 9);
    p->depth = (unsigned)sqlite3_column_int(st, 10);
    p->nofollow = sqlite3_column_int(st, 11);
    p->fetched_at = sqlite3_column_int64(st, 12);
    p->changed_at = sqlite3_column_int64(st, 13);
    copy_hash(st, 14, p->options_hash, NULL);
    p->run = sqlite3_column_int64(st, 15);
    return 0;
}

/* ---- opening ---- */

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Reads the file's own header, before SQLite sees it: what is not ours is refused without
 * SQLite ever having it open for writing. 0 (ours, or empty), or STATE_E_*. */
static int check_header(state *s, char *why, size_t whylen, int *empty)
{
    struct stat st;
    if (fstat(s->lock_fd, &st) != 0)
        return say(why, whylen, -errno, "cannot read the state file %s: %s", s->path,
                   strerror(errno));
    *empty = st.st_size == 0;
    if (*empty)
        return 0;
    unsigned char h[100];
    ssize_t n = pread(s->lock_fd, h, sizeof h, 0);
    if (n < 0)
        return say(why, whylen, -errno, "cannot read the state file %s: %s", s->path,
                   strerror(errno));
    if (n < (ssize_t)sizeof h || memcmp(h, "SQLite format 3", 16) != 0)
        return say(why, whylen, STATE_E_FOREIGN,
                   "%s is not an areq state file (not an SQLite database); it was left as "
                   "it is", s->path);
    /* The header may be older than the WAL beside it (a first run killed before its first
     * checkpoint leaves application_id 0 here): only another program's id is final now;
     * check_identity asks SQLite, which reads through the WAL. */
    uint32_t app = be32(h + 68);
    if (app != STATE_APPLICATION_ID && app != 0)
        return say(why, whylen, STATE_E_FOREIGN,
                   "%s is not an areq state file (an SQLite database of another program); "
                   "it was left as it is", s->path);
    return 0;
}

static int pragma_int(state *s, const char *sql, int64_t *out)
{
    sqlite3_stmt *st = NULL;
    int code = sqlite3_prepare_v2(s->wr, sql, -1, &st, NULL);
    if (code == SQLITE_OK && (code = sqlite3_step(st)) == SQLITE_ROW) {
        *out = sqlite3_column_int64(st, 0);
        code = SQLITE_OK;
    }
    sqlite3_finalize(st);
    return code == SQLITE_OK ? 0 : sql_fail(s, s->wr, code, "cannot read");
}

/* Whether the database SQLite sees (the file and its WAL, or its rolled back journal) is
 * ours and not newer; *empty when it has no page at all, as a first run stopped while
 * committing its schema leaves it once SQLite has rolled that back. 0 or STATE_E_*, with the message in s->why. */
static int check_identity(state *s, int *empty)
{
    int64_t app = 0, version = 0, pages = 0;
    int rc = pragma_int(s, "PRAGMA application_id", &app);
    if (rc == 0)
        rc = pragma_int(s, "PRAGMA user_version", &version);
    if (rc == 0)
        rc = pragma_int(s, "PRAGMA page_count", &pages);
    if (rc != 0)
        return rc;
    /* No page at all: a creation that was rolled back. Anything else is someone's. */
    *empty = pages == 0;
    if (*empty)
        return 0;
    if (app != STATE_APPLICATION_ID)
        return say(s->why, sizeof s->why, STATE_E_FOREIGN,
                   "%s is not an areq state file (an SQLite database of another program); "
                   "it was left as it is", s->path);
    if (version > STATE_SCHEMA_VERSION)
        return say(s->why, sizeof s->why, STATE_E_NEWER,
                   "%s was written by a newer areq (state schema %lld; this one knows %d); it "
                   "was left as it is", s->path, (long long)version, STATE_SCHEMA_VERSION);
    /* The store is unreleased: an earlier layout is refused rather than migrated. */
    if (version >= 1 && version < STATE_SCHEMA_VERSION)
        return say(s->why, sizeof s->why, STATE_E_OLDER,
                   "%s was written by an earlier areq (state schema %lld; this one reads %d "
                   "only); it was left as it is: remove it to start over", s->path,
                   (long long)version, STATE_SCHEMA_VERSION);
    if (version < 1)
        return say(s->why, sizeof s->why, STATE_E_CORRUPT,
                   "%s is an areq state file without a schema (damaged?); it was left as it is",
                   s->path);
    return 0;
}

/* Takes the file: opens it (creating it only when the path does not exist) and locks it. */
static int take_file(state *s, char *why, size_t whylen)
{
    int fd = open(s->path, O_RDWR | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) {
        fd = open(s->path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd < 0 && errno == EEXIST) /* created meanwhile by another run */
            fd = open(s->path, O_RDWR | O_CLOEXEC);
    }
    if (fd < 0)
        return say(why, whylen, -errno, "cannot open the state file %s: %s", s->path,
                   strerror(errno));
    s->lock_fd = fd;
    struct stat st;
    if (fstat(fd, &st) == 0 && !S_ISREG(st.st_mode))
        return say(why, whylen, STATE_E_FOREIGN, "%s is not an areq state file (not a regular "
                   "file)", s->path);
    /* flock and SQLite's fcntl locks are separate on Linux: this one says "a run", SQLite's
     * say "a transaction". */
    if (flock(fd, LOCK_EX | LOCK_NB) != 0)
        return say(why, whylen, errno == EWOULDBLOCK ? STATE_E_LOCKED : -errno,
                   errno == EWOULDBLOCK ? "the state file %s is in use by another areq run"
                                        : "cannot lock the state file %s: %s",
                   s->path, strerror(errno));
    return 0;
}

static int exec(state *s, sqlite3 *db, const char *sql, const char *doing)
{
    int code = sqlite3_exec(db, sql, NULL, NULL, NULL);
    return code == SQLITE_OK ? 0 : sql_fail(s, db, code, doing);
}

static int open_connection(state *s, sqlite3 **db)
{
    int code = sqlite3_open_v2(s->path, db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
    if (code != SQLITE_OK)
        return sql_fail(s, *db, code, "cannot open");
    sqlite3_extended_result_codes(*db, 1);
    sqlite3_busy_timeout(*db, 5000);
    /* WAL and NORMAL: a commit is safe from a crash at once and from a power cut once the
     * WAL is checkpointed; a power cut can cost the last commits, never consistency, and the
     * resume protocol only trusts what a commit recorded. */
    return exec(s, *db, "PRAGMA synchronous=NORMAL; PRAGMA journal_size_limit=16777216",
                "cannot configure");
}

static int prepare(state *s, sqlite3 *db, const char *sql, sqlite3_stmt **st)
{
    int code = sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL);
    return code == SQLITE_OK ? 0 : sql_fail(s, db, code, "cannot read the schema");
}

static int create_schema(state *s)
{
    char pragmas[128];
    snprintf(pragmas, sizeof pragmas, "PRAGMA application_id=%d; PRAGMA user_version=%d;",
             STATE_APPLICATION_ID, STATE_SCHEMA_VERSION);
    int rc = exec(s, s->wr, "BEGIN IMMEDIATE", "cannot create");
    if (rc == 0)
        rc = exec(s, s->wr, schema_sql, "cannot create");
    if (rc == 0)
        rc = exec(s, s->wr, pragmas, "cannot create");
    if (rc == 0)
        return exec(s, s->wr, "COMMIT", "cannot create");
    sqlite3_exec(s->wr, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

static int wal_grew(void *arg, sqlite3 *db, const char *name, int pages);

/* Whether the page table has a row. */
static int has_pages(state *s, int *out)
{
    sqlite3_stmt *st;
    int rc = prepare(s, s->rd, "SELECT EXISTS (SELECT 1 FROM page)", &st);
    if (rc != 0)
        return rc;
    int code = sqlite3_step(st);
    if (code == SQLITE_ROW)
        *out = sqlite3_column_int(st, 0);
    else
        rc = sql_fail(s, s->rd, code, "cannot read");
    sqlite3_finalize(st);
    return rc;
}

int state_open(const char *path, state **out, char *why, size_t whylen)
{
    *out = NULL;
    state *s = calloc(1, sizeof *s);
    if (s == NULL || (s->path = strdup(path)) == NULL) {
        free(s);
        return say(why, whylen, -ENOMEM, "out of memory");
    }
    s->lock_fd = -1;
    s->row_room = ROW_ROOM_MIN;
    buf_init(&s->blob);
    if (uv_mutex_init(&s->rd_lock) != 0) {
        state_close(s);
        return say(why, whylen, -ENOMEM, "out of memory");
    }
    s->rd_lock_up = 1;
    int empty = 0;
    int rc = take_file(s, why, whylen);
    if (rc == 0)
        rc = check_header(s, why, whylen, &empty);
    if (rc != 0) {
        state_close(s);
        return rc;
    }
    rc = open_connection(s, &s->wr);
    if (rc == 0)
        sqlite3_wal_hook(s->wr, wal_grew, s); /* and no autocheckpoint: see wal_grew */
    if (rc == 0 && !empty)
        rc = check_identity(s, &empty);
    /* Past this point the file is ours (or empty): SQLite may write to it. A new store
     * gets its schema before it is switched to WAL, so that the file's own header says
     * whose it is from the first commit on. */
    if (rc == 0 && empty)
        rc = create_schema(s);
    if (rc == 0)
        rc = exec(s, s->wr, "PRAGMA journal_mode=WAL", "cannot switch to WAL");
    if (rc == 0)
        rc = open_connection(s, &s->rd);
    if (rc == 0)
        rc = prepare(s, s->rd, PAGE_SELECT "WHERE url = ?1", &s->get_page);
    if (rc == 0)
        rc = prepare(s, s->rd, PAGE_SELECT "WHERE visit.run = ?1", &s->each_page);
    if (rc == 0)
        rc = prepare(s, s->rd,
                     "SELECT id, finished_at IS NULL, command_hash, output_bytes, "
                     "changes_bytes, failures_bytes FROM run ORDER BY id DESC LIMIT 1",
                     &s->last_run);
    if (rc == 0)
        rc = prepare(s, s->wr,
                     "INSERT INTO page (url, final_url, outcome, status, error, etag, "
                     "last_modified, body_hash, ntargets, depth, nofollow, changed_at, "
                     "options_hash) VALUES "
                     "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?10, ?11, ?12, ?14, ?15) "
                     "ON CONFLICT(url) DO UPDATE SET final_url = ?2, outcome = ?3, "
                     "status = ?4, error = ?5, etag = ?6, last_modified = ?7, body_hash = ?8, "
                     "ntargets = ?10, depth = ?11, nofollow = ?12, changed_at = ?14, "
                     "options_hash = ?15 RETURNING id",
                     &s->put_page);
    if (rc == 0)
        rc = prepare(s, s->wr,
                     "INSERT INTO visit (page, run, fetched_at) VALUES (?1, ?2, ?3) "
                     "ON CONFLICT(page) DO UPDATE SET run = ?2, fetched_at = ?3",
                     &s->put_visit);
    if (rc == 0)
        rc = prepare(s, s->wr, "INSERT OR REPLACE INTO targets (page, list) VALUES (?1, ?2)",
                     &s->put_targets);
    if (rc == 0)
        rc = prepare(s, s->wr,
                     /* The row is written only when one of these changed: SQLite
                      * rewrites a row, and dirties its page, for an update that changes
                      * nothing. The visit is written apart (touch_visit) either way. */
                     "UPDATE page SET etag = ?2, last_modified = ?3, depth = ?4, nofollow = ?5, "
                     "changed_at = ?7 WHERE url = ?1 AND (etag IS NOT ?2 OR last_modified IS "
                     "NOT ?3 OR depth IS NOT ?4 OR nofollow IS NOT ?5 OR changed_at IS NOT ?7)",
                     &s->touch_page);
    if (rc == 0)
        rc = prepare(s, s->wr,
                     "INSERT INTO visit (page, run, fetched_at) SELECT id, ?2, ?3 FROM page "
                     "WHERE url = ?1 ON CONFLICT(page) DO UPDATE SET run = excluded.run, "
                     "fetched_at = excluded.fetched_at", &s->touch_visit);
    if (rc == 0)
        rc = prepare(s, s->rd,
                     "SELECT origin, status, etag, last_modified, body, fetched_at FROM robots "
                     "WHERE origin = ?1", &s->get_robots);
    if (rc == 0)
        rc = prepare(s, s->wr,
                     "INSERT OR REPLACE INTO robots (origin, status, etag, last_modified, body, "
                     "fetched_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)", &s->put_robots);
    if (rc == 0)
        rc = prepare(s, s->wr,
                     "UPDATE run SET output_bytes = ?2, changes_bytes = ?3, failures_bytes = ?4 "
                     "WHERE id = ?1", &s->update_run);
    if (rc == 0)
        rc = prepare(s, s->wr, "UPDATE run SET finished_at = ?2 WHERE id = ?1", &s->finish_run);
    if (rc == 0) {
        /* A damaged file often passes the header and the schema: one real read of the
         * run table, which every later run needs, finds more of them now. */
        struct state_run r;
        int found = state_last_run(s, &r);
        rc = found < 0 ? found : 0;
    }
    if (rc == 0)
        rc = has_pages(s, &s->knew_pages);
    if (rc != 0) {
        say(why, whylen, rc, "%s", s->why);
        state_close(s);
        return rc;
    }
    *out = s;
    return 0;
}

static void drop_pending(struct pending *p)
{
    while (p != NULL) {
        struct pending *next = p->next;
        free(p);
        p = next;
    }
}

static void drop_robots(struct pending_robots *p)
{
    while (p != NULL) {
        struct pending_robots *next = p->next;
        free(p);
        p = next;
    }
}

void state_close(state *s)
{
    if (s == NULL)
        return;
    sqlite3_finalize(s->get_page);
    sqlite3_finalize(s->each_page);
    sqlite3_finalize(s->last_run);
    sqlite3_finalize(s->put_page);
    sqlite3_finalize(s->put_targets);
    sqlite3_finalize(s->touch_page);
    sqlite3_finalize(s->touch_visit);
    sqlite3_finalize(s->put_visit);
    sqlite3_finalize(s->update_run);
    sqlite3_finalize(s->finish_run);
    sqlite3_finalize(s->get_robots);
    sqlite3_finalize(s->put_robots);
    sqlite3_close(s->rd);
    sqlite3_close(s->wr);
    /* Only now: closing our descriptor while SQLite held its POSIX locks on the file would
     * have dropped them. */
    if (s->lock_fd >= 0)
        close(s->lock_fd);
    drop_pending(s->head);
    drop_pending(s->batch);
    drop_robots(s->robots);
    drop_robots(s->robots_batch);
    buf_finish(&s->blob);
    if (s->rd_lock_up)
        uv_mutex_destroy(&s->rd_lock);
    free(s->path);
    free(s);
}

/* ---- runs ---- */

static int last_run(state *s, struct state_run *out);

int state_last_run(state *s, struct state_run *out)
{
    uv_mutex_lock(&s->rd_lock);
    int rc = last_run(s, out);
    uv_mutex_unlock(&s->rd_lock);
    return rc;
}

static int last_run(state *s, struct state_run *out)
{
    sqlite3_stmt *st = s->last_run;
    int code = sqlite3_step(st);
    int rc = 0;
    if (code == SQLITE_ROW) {
        out->id = sqlite3_column_int64(st, 0);
        out->open = sqlite3_column_int(st, 1);
        copy_hash(st, 2, out->command_hash, NULL);
        for (int i = 0; i < STATE_NFILES; i++) {
            out->files.kept[i] = sqlite3_column_type(st, 3 + i) != SQLITE_NULL;
            out->files.bytes[i] = (uint64_t)sqlite3_column_int64(st, 3 + i);
        }
        rc = 1;
    } else if (code != SQLITE_DONE) {
        rc = sql_fail(s, s->rd, code, "cannot read");
    }
    sqlite3_reset(st);
    return rc;
}

/* Binds the lengths of the run's files from column `col` on: NULL for one not kept. */
static void bind_lengths(state *s, sqlite3_stmt *st, int col, const uint64_t bytes[STATE_NFILES])
{
    for (int i = 0; i < STATE_NFILES; i++) {
        if (s->kept[i])
            sqlite3_bind_int64(st, col + i, (sqlite3_int64)bytes[i]);
        else
            sqlite3_bind_null(st, col + i);
    }
}

static int update_lengths(state *s, const uint64_t bytes[STATE_NFILES])
{
    sqlite3_stmt *st = s->update_run;
    sqlite3_bind_int64(st, 1, s->run);
    bind_lengths(s, st, 2, bytes);
    int code = sqlite3_step(st);
    sqlite3_reset(st);
    return code == SQLITE_DONE ? 0 : sql_fail(s, s->wr, code, "cannot write");
}

int state_run_begin(state *s, int64_t resume_id, const unsigned char command_hash[DIGEST_SIZE],
                    const unsigned char options_hash[DIGEST_SIZE],
                    const struct state_files *start, int64_t now)
{
    memcpy(s->options_hash, options_hash, DIGEST_SIZE);
    for (int i = 0; i < STATE_NFILES; i++) {
        s->kept[i] = i == STATE_OUTPUT || start->kept[i];
        s->ends[i] = start->bytes[i];
    }
    if (resume_id > 0) {
        s->run = resume_id;
        /* A file started afresh, or no longer written, must not keep the length the
         * unfinished run recorded for it until this run's first commit. */
        return update_lengths(s, s->ends);
    }
    sqlite3_stmt *st = NULL;
    int code = sqlite3_prepare_v2(s->wr,
                                  "INSERT INTO run (command_hash, options_hash, started_at, "
                                  "output_bytes, changes_bytes, failures_bytes) "
                                  "VALUES (?1, ?2, ?3, ?4, ?5, ?6)", -1, &st, NULL);
    if (code == SQLITE_OK) {
        sqlite3_bind_blob(st, 1, command_hash, DIGEST_SIZE, SQLITE_STATIC);
        sqlite3_bind_blob(st, 2, options_hash, DIGEST_SIZE, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, now);
        bind_lengths(s, st, 4, s->ends);
        code = sqlite3_step(st);
    }
    sqlite3_finalize(st);
    if (code != SQLITE_DONE)
        return sql_fail(s, s->wr, code, "cannot start a run");
    s->run = sqlite3_last_insert_rowid(s->wr);
    return 0;
}

int state_knew_pages(const state *s)
{
    return s->knew_pages;
}

int64_t state_run_id(const state *s)
{
    return s->run;
}

/* ---- pages ---- */

/* The stored page for `url` into rec, on whichever thread holds rd_lock; a failure's words
 * in `why`. */
static int get_page(state *s, const char *url, size_t len, struct state_record *rec,
                    char *why, size_t whylen)
{
    sqlite3_stmt *st = s->get_page;
    sqlite3_bind_text(st, 1, url, (int)len, SQLITE_STATIC);
    int code = sqlite3_step(st);
    int rc = 0;
    if (code == SQLITE_ROW)
        rc = read_row(st, rec) == 0 ? 1 : -ENOMEM;
    else if (code != SQLITE_DONE)
        rc = sql_fail_in(s, s->rd, code, "cannot read", why, whylen);
    if (rc == -ENOMEM)
        say(why, whylen, rc, "out of memory");
    /* Reset at once: an open read would keep the WAL from being checkpointed. */
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc;
}

static int each_page(state *s, int64_t run, state_page_fn *fn, void *arg);

int state_page_get(state *s, const char *url, size_t len, struct state_record *rec)
{
    uv_mutex_lock(&s->rd_lock);
    int rc = get_page(s, url, len, rec, s->why, sizeof s->why);
    uv_mutex_unlock(&s->rd_lock);
    return rc;
}

int state_each_page(state *s, int64_t run, state_page_fn *fn, void *arg)
{
    uv_mutex_lock(&s->rd_lock);
    int rc = each_page(s, run, fn, arg);
    uv_mutex_unlock(&s->rd_lock);
    return rc;
}

static int each_page(state *s, int64_t run, state_page_fn *fn, void *arg)
{
    sqlite3_stmt *st = s->each_page;
    struct state_record rec;
    state_record_init(&rec);
    sqlite3_bind_int64(st, 1, run);
    int rc = 0, code;
    while (rc == 0 && (code = sqlite3_step(st)) == SQLITE_ROW) {
        rc = read_row(st, &rec);
        if (rc == 0)
            rc = state_record_targets(&rec);
        /* A damaged list costs its page its targets, not the pass over the others. */
        if (rc == -EINVAL)
            rc = 0;
        if (rc == 0)
            rc = fn(arg, &rec.page);
    }
    if (rc == 0 && code != SQLITE_DONE)
        rc = sql_fail(s, s->rd, code, "cannot read");
    sqlite3_reset(st);
    state_record_finish(&rec);
    return rc;
}

static size_t text_size(const char *t)
{
    return t != NULL ? strlen(t) + 1 : 0;
}

static const char *copy_text(char **at, const char *t)
{
    if (t == NULL)
        return NULL;
    size_t n = strlen(t) + 1;
    memcpy(*at, t, n);
    const char *copy = *at;
    *at += n;
    return copy;
}

int state_page_put(state *s, const struct state_page *p)
{
    /* The plain list is copied and encoded by the commit, on the commit thread: encoding
     * on libuv's pool, right after the scan, had made the pool (the run's critical path on
     * 2 cores) 7% busier on a first run of scenario A (perf, 5 kHz, call graphs: 105 of
     * the pool's 1,434 samples), while the commit thread sat idle most of the run. */
    size_t list_len = p->same_content ? 0 : p->targets_len; /* a 304's row keeps its list */
    size_t bytes = p->url_len + 1 + text_size(p->final_url) + text_size(p->error) +
                   text_size(p->etag) + text_size(p->last_modified) + list_len;
    struct pending *e = malloc(sizeof *e + bytes);
    if (e == NULL)
        return -ENOMEM;
    e->next = NULL;
    e->bytes = bytes;
    e->p = *p;
    char *at = e->data;
    memcpy(at, p->url, p->url_len);
    at[p->url_len] = '\0';
    e->p.url = at;
    at += p->url_len + 1;
    e->p.final_url = copy_text(&at, p->final_url);
    e->p.error = copy_text(&at, p->error);
    e->p.etag = copy_text(&at, p->etag);
    e->p.last_modified = copy_text(&at, p->last_modified);
    if (list_len > 0)
        memcpy(at, p->targets, list_len);
    e->p.targets = at;
    e->p.targets_len = list_len;
    memcpy(e->p.options_hash, s->options_hash, DIGEST_SIZE);
    e->p.run = s->run;
    if (s->tail != NULL)
        s->tail->next = e;
    else
        s->head = e;
    s->tail = e;
    s->npending++;
    s->pending_bytes += bytes;
    return 0;
}

static void bind_text(sqlite3_stmt *st, int col, const char *t);

/* ---- robots.txt ---- */

void state_robots_record_init(struct state_robots_record *r)
{
    memset(&r->robots, 0, sizeof r->robots);
    buf_init(&r->mem);
}

void state_robots_record_finish(struct state_robots_record *r)
{
    buf_finish(&r->mem);
    memset(&r->robots, 0, sizeof r->robots);
}

static int robots_get(state *s, const char *origin, struct state_robots_record *rec);

int state_robots_get(state *s, const char *origin, struct state_robots_record *rec)
{
    uv_mutex_lock(&s->rd_lock);
    int rc = robots_get(s, origin, rec);
    uv_mutex_unlock(&s->rd_lock);
    return rc;
}

static int robots_get(state *s, const char *origin, struct state_robots_record *rec)
{
    sqlite3_stmt *st = s->get_robots;
    sqlite3_bind_text(st, 1, origin, -1, SQLITE_STATIC);
    int code = sqlite3_step(st);
    int rc = 0;
    if (code == SQLITE_ROW) {
        struct buf *mem = &rec->mem;
        buf_clear(mem);
        size_t o, etag, lm;
        rc = keep_text(st, 0, mem, &o);
        if (rc == 0)
            rc = keep_text(st, 2, mem, &etag);
        if (rc == 0)
            rc = keep_text(st, 3, mem, &lm);
        size_t body = mem->len, body_len = (size_t)sqlite3_column_bytes(st, 4);
        const void *b = sqlite3_column_blob(st, 4);
        if (rc == 0 && body_len > 0)
            rc = buf_append(mem, b, body_len);
        if (rc == 0)
            rc = buf_putc(mem, '\0');
        if (rc == 0) {
            struct state_robots *r = &rec->robots;
            r->origin = mem->data + o;
            r->status = (long)sqlite3_column_int64(st, 1);
            r->etag = etag != SIZE_MAX ? mem->data + etag : NULL;
            r->last_modified = lm != SIZE_MAX ? mem->data + lm : NULL;
            r->body = mem->data + body;
            r->body_len = body_len;
            r->fetched_at = sqlite3_column_int64(st, 5);
            rc = 1;
        } else {
            rc = -ENOMEM;
        }
    } else if (code != SQLITE_DONE) {
        rc = sql_fail(s, s->rd, code, "cannot read");
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc;
}

int state_robots_put(state *s, const struct state_robots *r)
{
    size_t bytes = text_size(r->origin) + text_size(r->etag) + text_size(r->last_modified) +
                   r->body_len;
    struct pending_robots *e = malloc(sizeof *e + bytes);
    if (e == NULL)
        return -ENOMEM;
    e->r = *r;
    char *at = e->data;
    e->r.origin = copy_text(&at, r->origin);
    e->r.etag = copy_text(&at, r->etag);
    e->r.last_modified = copy_text(&at, r->last_modified);
    if (r->body_len > 0)
        memcpy(at, r->body, r->body_len);
    e->r.body = at;
    e->next = s->robots;
    s->robots = e;
    return 0;
}

static int put_robots(state *s, const struct state_robots *r)
{
    sqlite3_stmt *st = s->put_robots;
    bind_text(st, 1, r->origin);
    sqlite3_bind_int64(st, 2, r->status);
    bind_text(st, 3, r->etag);
    bind_text(st, 4, r->last_modified);
    sqlite3_bind_blob(st, 5, r->body_len > 0 ? r->body : "", (int)r->body_len, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, r->fetched_at);
    int code = sqlite3_step(st);
    sqlite3_reset(st);
    return code == SQLITE_DONE ? 0 : sql_fail(s, s->wr, code, "cannot write");
}

size_t state_pending(const state *s)
{
    return s->npending;
}

size_t state_pending_bytes(const state *s)
{
    return s->pending_bytes;
}

/* ---- commits ---- */

static void bind_text(sqlite3_stmt *st, int col, const char *t)
{
    if (t != NULL)
        sqlite3_bind_text(st, col, t, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, col);
}

/* A page's visit: the run that saw it, and when. */
static int step_visit(state *s, sqlite3_stmt *st, const struct state_page *p)
{
    sqlite3_bind_int64(st, 2, p->run);
    sqlite3_bind_int64(st, 3, p->fetched_at);
    int code = sqlite3_step(st);
    sqlite3_reset(st);
    return code == SQLITE_DONE ? 0 : sql_fail(s, s->wr, code, "cannot write");
}

/* A page whose content is as stored: its targets stay, its row changes only where the
 * answer changed it (new validators, another depth), and its visit is written. */
static int touch_one(state *s, const struct state_page *p)
{
    sqlite3_stmt *st = s->touch_page;
    sqlite3_bind_text(st, 1, p->url, (int)p->url_len, SQLITE_STATIC);
    bind_text(st, 2, p->etag);
    bind_text(st, 3, p->last_modified);
    sqlite3_bind_int(st, 4, (int)p->depth);
    sqlite3_bind_int(st, 5, p->nofollow);
    sqlite3_bind_int64(st, 7, p->changed_at);
    int code = sqlite3_step(st);
    sqlite3_reset(st);
    if (code != SQLITE_DONE)
        return sql_fail(s, s->wr, code, "cannot write");
    st = s->touch_visit;
    sqlite3_bind_text(st, 1, p->url, (int)p->url_len, SQLITE_STATIC);
    return step_visit(s, st, p);
}

/* A page with its row and its (already encoded) targets. */
static int put_one(state *s, const struct state_page *p)
{
    if (p->same_content)
        return touch_one(s, p);
    sqlite3_stmt *st = s->put_page;
    sqlite3_bind_text(st, 1, p->url, (int)p->url_len, SQLITE_STATIC);
    bind_text(st, 2, p->final_url);
    sqlite3_bind_int(st, 3, (int)p->outcome);
    sqlite3_bind_int64(st, 4, p->status);
    bind_text(st, 5, p->error);
    bind_text(st, 6, p->etag);
    bind_text(st, 7, p->last_modified);
    if (p->has_body_hash)
        sqlite3_bind_blob(st, 8, p->body_hash, DIGEST_SIZE, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 8);
    sqlite3_bind_int64(st, 10, (sqlite3_int64)p->ntargets);
    sqlite3_bind_int(st, 11, (int)p->depth);
    sqlite3_bind_int(st, 12, p->nofollow);
    sqlite3_bind_int64(st, 14, p->changed_at);
    sqlite3_bind_blob(st, 15, p->options_hash, DIGEST_SIZE, SQLITE_STATIC);
    int code = sqlite3_step(st);
    sqlite3_int64 id = code == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    if (code == SQLITE_ROW)
        code = sqlite3_step(st);
    sqlite3_reset(st);
    if (code != SQLITE_DONE)
        return sql_fail(s, s->wr, code, "cannot write");
    sqlite3_bind_int64(s->put_visit, 1, id);
    int rc = step_visit(s, s->put_visit, p);
    if (rc != 0)
        return rc;
    /* Out of memory here fails the whole commit, not just this page: the output length
     * the commit records covers the page's lines, and a page left out of it would be
     * fetched again on resume and its lines written twice. */
    buf_clear(&s->blob);
    if (state_encode_targets(p->targets != NULL ? p->targets : "", p->targets_len, &s->blob) != 0)
        return say(s->why, sizeof s->why, -ENOMEM,
                   "state file %s: out of memory encoding the targets of %s", s->path, p->url);
    st = s->put_targets;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_blob(st, 2, s->blob.len > 0 ? s->blob.data : "", (int)s->blob.len,
                      SQLITE_STATIC);
    code = sqlite3_step(st);
    sqlite3_reset(st);
    return code == SQLITE_DONE ? 0 : sql_fail(s, s->wr, code, "cannot write");
}

static int step_run(state *s, sqlite3_stmt *st, int64_t value)
{
    sqlite3_bind_int64(st, 1, s->run);
    sqlite3_bind_int64(st, 2, value);
    int code = sqlite3_step(st);
    sqlite3_reset(st);
    return code == SQLITE_DONE ? 0 : sql_fail(s, s->wr, code, "cannot write");
}

/* The transaction of one commit, on whichever thread runs it. */
static int commit_batch(state *s)
{
    static const char *const what[STATE_NFILES] = {"the output", "the --changes file",
                                                   "the --failures file"};
    for (int i = 0; i < STATE_NFILES; i++) {
        if (s->sync_fds[i] >= 0 && fdatasync(s->sync_fds[i]) != 0 && errno != EINVAL &&
            errno != EROFS)
            return say(s->why, sizeof s->why, STATE_E_IO,
                       "cannot make %s durable before committing to %s: %s", what[i], s->path,
                       strerror(errno));
    }
    int rc = exec(s, s->wr, "BEGIN IMMEDIATE", "cannot write");
    for (struct pending *p = s->batch; rc == 0 && p != NULL; p = p->next)
        rc = put_one(s, &p->p);
    if (s->blob.cap > ((size_t)1 << 20)) /* a link-dense page's need not stay */
        buf_finish(&s->blob);
    for (struct pending_robots *p = s->robots_batch; rc == 0 && p != NULL; p = p->next)
        rc = put_robots(s, &p->r);
    if (rc == 0)
        rc = update_lengths(s, s->record);
    if (rc == 0 && s->finish)
        rc = step_run(s, s->finish_run, (int64_t)time(NULL));
    if (rc == 0)
        rc = exec(s, s->wr, "COMMIT", "cannot commit");
    if (rc != 0 && !sqlite3_get_autocommit(s->wr))
        sqlite3_exec(s->wr, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

/* SQLite's own autocheckpoint ran in whichever commit made the WAL 1,000 pages long, the
 * last commit of a run too, and the close at the end of a run copies into the file
 * whatever the WAL still holds: both on the loop, where the end of the run waits (8-34 ms
 * of the last commit on scenario A, by where the threshold fell). So the store counts the
 * WAL's pages itself (wal_grew) and the commit thread checkpoints after any commit that
 * leaves WAL_CHECKPOINT_PAGES or more (256 KB of 4 KB pages), so that the close has little
 * left to copy. PASSIVE: it never waits for a reader. */
enum { WAL_CHECKPOINT_PAGES = 64 };

static int wal_grew(void *arg, sqlite3 *db, const char *name, int pages)
{
    (void)db;
    (void)name;
    state *s = arg;
    s->wal_pages = pages;
    return SQLITE_OK;
}

static int checkpoint_if_long(state *s)
{
    if (s->wal_pages < WAL_CHECKPOINT_PAGES)
        return 0;
    int code = sqlite3_wal_checkpoint_v2(s->wr, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    s->wal_pages = 0;
    return code == SQLITE_OK || code == SQLITE_BUSY ? 0
                                                    : sql_fail(s, s->wr, code, "cannot checkpoint");
}

/* Whether every line of the page is written whole, in each file. */
static int covered(const struct state_page *p, const uint64_t whole[STATE_NFILES])
{
    return p->output_end <= whole[STATE_OUTPUT] && p->changes_end <= whole[STATE_CHANGES] &&
           p->failures_end <= whole[STATE_FAILURES];
}

/* Moves the queued pages that `whole` covers into the batch, and picks the lengths the
 * commit records: where the last page covered ends in each file. Past that, a file may
 * hold lines of a page that is not covered (its output written, its --changes line not
 * yet) or not even queued (its lines were taken, then another file failed), which a
 * resumed run writes again; a --failures line of no page there is found again. */
static int take_batch(state *s, const uint64_t whole[STATE_NFILES], int finish)
{
    struct pending *last = NULL;
    for (struct pending *p = s->head; p != NULL && covered(&p->p, whole); p = p->next)
        last = p;
    if (finish && (last != s->tail))
        return -EINVAL;
    memcpy(s->record, s->ends, sizeof s->record);
    if (last != NULL) {
        s->record[STATE_OUTPUT] = last->p.output_end;
        s->record[STATE_CHANGES] = last->p.changes_end;
        s->record[STATE_FAILURES] = last->p.failures_end;
        s->batch = s->head;
        s->head = last->next;
        last->next = NULL;
        if (s->head == NULL)
            s->tail = NULL;
        for (struct pending *p = s->batch; p != NULL; p = p->next) {
            s->npending--;
            s->pending_bytes -= p->bytes;
        }
    }
    s->robots_batch = s->robots;
    s->robots = NULL;
    s->finish = finish;
    return 0;
}

/* What the next commit needs to do its work on whichever thread. */
static void set_sync(state *s, const int sync_fds[STATE_NFILES])
{
    for (int i = 0; i < STATE_NFILES; i++)
        s->sync_fds[i] = sync_fds != NULL ? sync_fds[i] : -1;
}

/* A commit is over: `rc` 0 when it was made. */
static void end_batch(state *s, int rc)
{
    if (rc == 0)
        memcpy(s->ends, s->record, sizeof s->ends);
    drop_pending(s->batch);
    s->batch = NULL;
    drop_robots(s->robots_batch);
    s->robots_batch = NULL;
}

int state_commit_now(state *s, const uint64_t whole[STATE_NFILES],
                     const int sync_fds[STATE_NFILES], int finish)
{
    if (s->busy)
        return -EBUSY;
    int rc = take_batch(s, whole, finish);
    if (rc != 0)
        return rc;
    set_sync(s, sync_fds);
    rc = commit_batch(s);
    end_batch(s, rc);
    return rc;
}

/* ---- the store's threads ---- */

static int worker_try_start(struct worker *w, uv_loop_t *loop, uv_thread_cb run,
                            uv_async_cb done, state *s)
{
    int rc = uv_mutex_init(&w->lock);
    if (rc != 0)
        return rc;
    rc = uv_cond_init(&w->wake);
    if (rc != 0) {
        uv_mutex_destroy(&w->lock);
        return rc;
    }
    rc = uv_async_init(loop, &w->done, done);
    if (rc == 0) {
        w->done.data = s;
        uv_unref((uv_handle_t *)&w->done);
        w->quit = 0;
        rc = uv_thread_create(&w->thread, run, s);
        if (rc == 0) {
            w->up = 1;
            return 0;
        }
        uv_close((uv_handle_t *)&w->done, NULL);
    }
    uv_cond_destroy(&w->wake);
    uv_mutex_destroy(&w->lock);
    return rc;
}

static int worker_start(struct worker *w, uv_loop_t *loop, uv_thread_cb run, uv_async_cb done,
                        state *s)
{
    /* Tried once: the handle a failed start closed is the loop's until the loop has run
     * its close, and initialised again before that it broke libuv's handle queue (an
     * abort in uv__finish_close on the next visit); nor would a second try fare better. */
    if (w->start_error != 0)
        return w->start_error;
    int rc = worker_try_start(w, loop, run, done, s);
    if (rc != 0)
        w->start_error = rc;
    return rc;
}

/* Signals the thread under the lock: it waits on `wake` for a job or `quit`. */
static void worker_signal(struct worker *w)
{
    uv_cond_signal(&w->wake);
}

static void worker_stop(struct worker *w)
{
    if (!w->up)
        return;
    uv_mutex_lock(&w->lock);
    w->quit = 1;
    worker_signal(w);
    uv_mutex_unlock(&w->lock);
    uv_thread_join(&w->thread);
    uv_close((uv_handle_t *)&w->done, NULL);
    uv_cond_destroy(&w->wake);
    uv_mutex_destroy(&w->lock);
    w->up = 0;
}

/* The commit thread: one commit at a time, handed over by state_commit. */
static void commit_thread(void *arg)
{
    state *s = arg;
    struct worker *w = &s->committer;
    uv_mutex_lock(&w->lock);
    for (;;) {
        while (!s->job && !w->quit)
            uv_cond_wait(&w->wake, &w->lock);
        if (!s->job)
            break;
        s->job = 0;
        uv_mutex_unlock(&w->lock);
        int result = commit_batch(s);
        if (result == 0)
            result = checkpoint_if_long(s);
        /* Handed back under the lock, which commit_done takes too: the batch is freed
         * there, and only the lock tells a race detector (or a reader) that this
         * thread is through with it (uv_async_send's ordering lives in libuv's atomics,
         * which ThreadSanitizer does not see: 112 reports on test_state.py). */
        uv_mutex_lock(&w->lock);
        s->result = result;
        uv_async_send(&w->done);
    }
    uv_mutex_unlock(&w->lock);
}

/* On the loop, once the commit thread is through. */
static void commit_done(uv_async_t *h)
{
    state *s = h->data;
    if (!s->busy)
        return;
    uv_mutex_lock(&s->committer.lock);
    int result = s->result;
    uv_mutex_unlock(&s->committer.lock);
    s->busy = 0;
    /* Idle, the handle must not keep the loop from ending. */
    uv_unref((uv_handle_t *)&s->committer.done);
    end_batch(s, result);
    s->cb(s->cb_arg, result);
}

void state_detach(state *s)
{
    if (s == NULL)
        return;
    worker_stop(&s->committer);
    worker_stop(&s->reader);
    if (s->hand_over_up) {
        uv_close((uv_handle_t *)&s->hand_over, NULL);
        s->hand_over_up = 0;
    }
}

int state_commit(state *s, uv_loop_t *loop, const uint64_t whole[STATE_NFILES],
                 const int sync_fds[STATE_NFILES], int finish, state_commit_fn *cb, void *arg)
{
    if (s->busy)
        return -EBUSY;
    int rc = s->committer.up ? 0 : worker_start(&s->committer, loop, commit_thread, commit_done, s);
    /* No commit thread (the system would not start one: a container at its limit of
     * threads, an address space too small for another stack): committed here, as the
     * lookups are read here without a reader thread. A run at 10 ms a commit needed the
     * thread within any run longer than that, and had stopped with exit 3. */
    if (rc != 0) {
        rc = state_commit_now(s, whole, sync_fds, finish);
        return rc == 0 ? checkpoint_if_long(s) : rc; /* else the WAL grows to the close */
    }
    rc = take_batch(s, whole, finish);
    if (rc != 0)
        return rc;
    set_sync(s, sync_fds);
    s->cb = cb;
    s->cb_arg = arg;
    s->busy = 1;
    uv_ref((uv_handle_t *)&s->committer.done);
    uv_mutex_lock(&s->committer.lock);
    s->job = 1;
    worker_signal(&s->committer);
    uv_mutex_unlock(&s->committer.lock);
    return 0;
}

/* ---- lookups, on the reader thread ---- */

/* Appends the list first..last to the list *head..*tail (the two lists of lookups). */
static void append_lookups(struct state_lookup **head, struct state_lookup **tail,
                           struct state_lookup *first, struct state_lookup *last)
{
    if (*tail != NULL)
        (*tail)->next = first;
    else
        *head = first;
    *tail = last;
}

/* The reader thread: answers whatever lookups are waiting, oldest first, and hands them
 * back all at once. */
static void reader_thread(void *arg)
{
    state *s = arg;
    struct worker *w = &s->reader;
    uv_mutex_lock(&w->lock);
    for (;;) {
        while (s->asked == NULL && !w->quit)
            uv_cond_wait(&w->wake, &w->lock);
        struct state_lookup *batch = s->asked, *last = s->asked_tail;
        if (batch == NULL)
            break;
        s->asked = s->asked_tail = NULL;
        uv_mutex_unlock(&w->lock);
        uv_mutex_lock(&s->rd_lock);
        /* One read transaction for the batch: on its own, each lookup took and dropped
         * the WAL's read lock, two fcntl(2) calls (strace -c: 3,686 of them for the 2,000
         * lookups of an unchanged re-run of scenario A). Without it, each lookup still
         * reads on its own. */
        int txn = batch->next != NULL &&
                  sqlite3_exec(s->rd, "BEGIN", NULL, NULL, NULL) == SQLITE_OK;
        for (struct state_lookup *l = batch; l != NULL; l = l->next)
            l->rc = get_page(s, l->url, l->len, &l->rec, l->why, sizeof l->why);
        if (txn)
            sqlite3_exec(s->rd, "COMMIT", NULL, NULL, NULL);
        uv_mutex_unlock(&s->rd_lock);
        /* Under the lock, as commit_thread hands back its batch. */
        uv_mutex_lock(&w->lock);
        append_lookups(&s->answered, &s->answered_tail, batch, last);
        uv_async_send(&w->done);
    }
    uv_mutex_unlock(&w->lock);
}

/* On the loop: the answers so far, each to its caller. */
static void lookups_answered(uv_async_t *h)
{
    state *s = h->data;
    uv_mutex_lock(&s->reader.lock);
    struct state_lookup *l = s->answered;
    s->answered = s->answered_tail = NULL;
    uv_mutex_unlock(&s->reader.lock);
    while (l != NULL) {
        struct state_lookup *next = l->next;
        l->next = NULL;
        /* Idle, the handle must not keep the loop from ending. */
        if (--s->lookups == 0)
            uv_unref((uv_handle_t *)&s->reader.done);
        if (l->rec.mem.len >= s->row_room && l->rec.mem.len < ROW_ROOM_MAX)
            s->row_room = l->rec.mem.len + 1;
        l->done(l); /* may free l */
        l = next;
    }
}

void state_lookup_init(struct state_lookup *l)
{
    memset(l, 0, sizeof *l);
    state_record_init(&l->rec);
}

void state_lookup_finish(struct state_lookup *l)
{
    state_record_finish(&l->rec);
}

/* On the loop, before it waits: what this turn asked, to the reader. */
static void hand_over_lookups(uv_prepare_t *h)
{
    state *s = h->data;
    uv_prepare_stop(h);
    uv_mutex_lock(&s->reader.lock);
    append_lookups(&s->asked, &s->asked_tail, s->held, s->held_tail);
    worker_signal(&s->reader);
    uv_mutex_unlock(&s->reader.lock);
    s->held = s->held_tail = NULL;
}

int state_lookup_start(state *s, uv_loop_t *loop, struct state_lookup *l)
{
    int rc = s->reader.up ? 0 : worker_start(&s->reader, loop, reader_thread, lookups_answered, s);
    if (rc == 0 && !s->hand_over_up) {
        rc = uv_prepare_init(loop, &s->hand_over);
        s->hand_over.data = s;
        s->hand_over_up = rc == 0;
    }
    if (rc != 0)
        return rc;
    l->next = NULL;
    l->rc = 0;
    l->why[0] = '\0';
    /* The record's memory comes from here, the loop, so that the reader thread only fills
     * it. Grown there, it came from the reader's malloc arena, and the loop, which frees
     * records, waited for that arena's lock whenever the reader held it: 62 of the loop's
     * 77 sleeps in an unchanged re-run of scenario A (perf, sched_switch call graphs),
     * some of them for as long as the reader was preempted. Room for the largest row read
     * so far; a larger one still grows on the reader. Without the room, it is only slower. */
    (void)buf_reserve_exact(&l->rec.mem, s->row_room);
    if (s->lookups++ == 0)
        uv_ref((uv_handle_t *)&s->reader.done);
    append_lookups(&s->held, &s->held_tail, l, l);
    if (!uv_is_active((uv_handle_t *)&s->hand_over))
        uv_prepare_start(&s->hand_over, hand_over_lookups);
    return 0;
}

int state_commit_busy(const state *s)
{
    return s->busy;
}
