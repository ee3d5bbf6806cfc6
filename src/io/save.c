/* Saving bodies under one directory without following links (see save.h). */
#include "save.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "savepath.h"
#include "seen.h"

enum { TEMP_NAME_MAX = 80 };

/* How a body came by its path in the tree, best first (save.h, collisions): the URL spells
 * the name, the name is the index.html supplied for a URL ending in '/', or the body's own
 * name is a directory and it was put (or moved) into it as its index.html. */
enum rank { RANK_NAMED, RANK_INDEX, RANK_MOVED };

/* The body of this run that holds a path of the tree, and by which right. */
struct claim {
    uint64_t key; /* seen_hash() of the relative path */
    int rank;
    char *url;    /* owned; NULL marks an empty slot */
};

struct saver {
    int root;           /* the directory, open */
    unsigned flags;
    atomic_ullong counter; /* for temporary names; files are saved from several threads */
    uint64_t where;     /* this kernel boot and pid namespace (see temp_name) */
    int named_temp;     /* temporary files have names: O_TMPFILE's cannot be linked here */
    int link_empty_path; /* nameless files are linked with AT_EMPTY_PATH, not by /proc */
    int manifest;       /* --manifest, or -1 */
    /* SAVE_FLAT: names taken in this run, and (name, URL) pairs, so that a URL saved
     * again takes back its own name and no other. */
    seen_set names, owners;
    uv_mutex_t claims;  /* guards names and owners, and swept */
    seen_set swept;     /* directories (by relative path) already rid of stale files */
    /* The tree (not SAVE_FLAT): who holds each path that this run put a body at, an
     * open-addressing table guarded by `claims`, so that a body ready later takes a path
     * only when the rule gives it the path, whatever the order. */
    struct claim *held;
    size_t held_cap, held_used;
};

struct save_file {
    saver *s;
    int dir;            /* where the file goes: the root, or a directory opened below it */
    int fd;             /* the temporary file */
    char tmp[TEMP_NAME_MAX]; /* its name, or "" while it has none (O_TMPFILE) */
    char *name;         /* the final name in `dir` */
    char *prefix;       /* the directories of the relative path, with a '/' at the end */
    char *url;          /* for the collision rules; NULL when the caller gave none */
    unsigned long long bytes;
    char *stage;        /* small pieces gathered into one write(2) of STAGE_SIZE */
    size_t staged;
};

/* libcurl hands a body over in pieces of its receive buffer (16 KiB here): gathered, a
 * 4 GiB body took 1/8 of the write(2) calls (8.9 s -> see tests/bench/save.py L). */
enum { STAGE_SIZE = 128 << 10 };
/* A piece at least this large goes to write(2) as it is, when nothing is staged: a body
 * held whole (page.c hands one over in one piece, up to 256 KiB) would otherwise be copied
 * into the stage first, 148 MB of copies in scenario S of tests/bench/save.py. */
enum { DIRECT_MIN = 32 << 10 };

enum { DIR_MODE = 0777, FILE_MODE = 0666 }; /* less the umask, as any program's files */

/* mkdir -p, for the directory the user named (whose own path may well hold links). */
static int make_parents(const char *dir)
{
    char *path = strdup(dir);
    if (path == NULL)
        return -ENOMEM;
    int rc = 0;
    for (char *p = path + 1; rc == 0; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char was = *p;
        *p = '\0';
        if (mkdir(path, DIR_MODE) != 0 && errno != EEXIST)
            rc = -errno;
        *p = was;
        if (was == '\0')
            break;
    }
    free(path);
    return rc;
}

/* Temporary names carry where and by whom they were made, ".areq-WHERE-PID-N.part", so that
 * a later run can tell a file left by a killed run from one that a live run is writing
 * (stale_temp). WHERE is a hash of this kernel's boot id and of our pid namespace: a pid
 * means something only within both. */
static void temp_name(saver *s, char out[TEMP_NAME_MAX])
{
    snprintf(out, TEMP_NAME_MAX, ".areq-%016llx-%ld-%llu.part", (unsigned long long)s->where,
             (long)getpid(), atomic_fetch_add(&s->counter, 1));
}

/* A new named temporary file in `dir`. The fd, or a negative errno. */
static int open_named_temp(saver *s, int dir, char name[TEMP_NAME_MAX])
{
    for (int tries = 0; tries < 16; tries++) {
        temp_name(s, name);
        int fd = openat(dir, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                        FILE_MODE);
        if (fd >= 0 || errno != EEXIST)
            return fd >= 0 ? fd : -errno;
    }
    return -EEXIST;
}

/* A new temporary file in `dir`: without a name (O_TMPFILE) where the file system has that,
 * so that a run killed mid-body leaves nothing behind (the kernel frees a nameless file when
 * its last descriptor closes); else a named one, and `name` says which. The fd, or a
 * negative errno. "." is `dir` itself, already opened without following links. */
static int open_temp(saver *s, int dir, char name[TEMP_NAME_MAX])
{
    if (!s->named_temp) {
        int fd = openat(dir, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, FILE_MODE);
        if (fd >= 0) {
            name[0] = '\0';
            return fd;
        }
        /* The file system (or an old kernel) has no O_TMPFILE: EOPNOTSUPP, or EISDIR and
         * EINVAL where the flag is not known. Anything else is a real failure. */
        if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL)
            return -errno;
    }
    return open_named_temp(s, dir, name);
}

/* Gives the nameless file `fd` the name `name` in `dir`. linkat never replaces a name
 * (EEXIST then) and does not follow a link at `name`. AT_EMPTY_PATH links the descriptor
 * itself, but only with CAP_DAC_READ_SEARCH (or a kernel that lets the opener do it);
 * /proc/self/fd/N works for anyone with /proc mounted, at the price of resolving that path
 * (3% of a saving run's CPU in path_lookupat, perf, scenario S on a tmpfs). probe_root()
 * finds which one works. 0 or a negative errno. */
static int link_nameless(const saver *s, int fd, int dir, const char *name)
{
    if (s->link_empty_path)
        return linkat(fd, "", dir, name, AT_EMPTY_PATH) == 0 ? 0 : -errno;
    char proc[40];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
    return linkat(AT_FDCWD, proc, dir, name, AT_SYMLINK_FOLLOW) == 0 ? 0 : -errno;
}

/* Whether a file can be made in the root, and how a nameless one is linked there
 * (link_empty_path), if at all (else named_temp is set for the run). 0 or a negative
 * errno. */
static int probe_root(saver *s)
{
    char name[TEMP_NAME_MAX];
    int fd = open_temp(s, s->root, name);
    if (fd < 0)
        return fd;
    int rc = 0;
    if (name[0] == '\0') {
        /* Linked under a temporary name, which also tells that a name can be made. */
        temp_name(s, name);
        s->link_empty_path = !(s->flags & SAVE_LINK_BY_PROC);
        rc = link_nameless(s, fd, s->root, name);
        if (s->link_empty_path && (rc == -ENOENT || rc == -EPERM)) {
            s->link_empty_path = 0;
            rc = link_nameless(s, fd, s->root, name);
        }
        if (rc == -ENOENT || rc == -EPERM || rc == -EXDEV) {
            /* No /proc and no capability: the nameless file could never be kept. */
            close(fd);
            s->named_temp = 1;
            fd = open_named_temp(s, s->root, name);
            if (fd < 0)
                return fd;
            rc = 0;
        }
    }
    close(fd);
    if (rc == 0)
        unlinkat(s->root, name, 0);
    return rc;
}

/* This kernel boot and pid namespace, hashed (temp_name), or a random number when they
 * cannot be read (then no other run's pid is ever judged: stale_temp goes by age). */
static uint64_t where_we_run(void)
{
    char id[128] = "";
    size_t len = 0;
    int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        ssize_t n = read(fd, id, 64);
        len = n > 0 ? (size_t)n : 0;
        close(fd);
    }
    ssize_t ns = len > 0 ? readlink("/proc/self/ns/pid", id + len, sizeof id - len - 1) : -1;
    uint64_t where;
    if (ns > 0)
        where = seen_hash(id, len + (size_t)ns);
    else if (getrandom(&where, sizeof where, 0) != (ssize_t)sizeof where)
        where = (uint64_t)getpid() << 32 ^ (uint64_t)time(NULL);
    return where;
}

int saver_open(const char *dir, unsigned flags, saver **out)
{
    *out = NULL;
    if (dir == NULL || dir[0] == '\0')
        return -EINVAL;
    saver *s = calloc(1, sizeof *s);
    if (s == NULL)
        return -ENOMEM;
    s->flags = flags;
    s->named_temp = (flags & SAVE_NAMED_TEMP) != 0;
    s->manifest = -1;
    s->root = -1;
    seen_init(&s->names);
    seen_init(&s->owners);
    seen_init(&s->swept);
    if (uv_mutex_init(&s->claims) != 0) {
        free(s);
        return -ENOMEM;
    }
    s->where = where_we_run();
    int rc = make_parents(dir);
    if (rc == 0) {
        s->root = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (s->root < 0)
            rc = -errno;
    }
    /* Whether files can be made here is found now, before anything is fetched. */
    if (rc == 0)
        rc = probe_root(s);
    if (rc != 0) {
        saver_destroy(s);
        return rc;
    }
    *out = s;
    return 0;
}

void saver_destroy(saver *s)
{
    if (s == NULL)
        return;
    if (s->root >= 0)
        close(s->root);
    if (s->manifest >= 0)
        close(s->manifest);
    seen_finish(&s->names);
    seen_finish(&s->owners);
    seen_finish(&s->swept);
    for (size_t i = 0; i < s->held_cap; i++)
        free(s->held[i].url);
    free(s->held);
    uv_mutex_destroy(&s->claims);
    free(s);
}

/* What `name` in `dir` is, without following a link: S_IFDIR, S_IFREG, another type, 0 for
 * nothing, or a negative errno. */
static int kind_of(int dir, const char *name)
{
    struct stat st;
    if (fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
        return errno == ENOENT ? 0 : -errno;
    return (int)(st.st_mode & S_IFMT);
}

/* ---- who holds a path of the tree (struct claim); all under s->claims ---- */

/* The key of the relative path a[0..a_len) b c. 0 or -ENOMEM. */
static int path_key(const char *a, size_t a_len, const char *b, const char *c, uint64_t *key)
{
    struct buf path;
    buf_init(&path);
    int rc = buf_append(&path, a, a_len);
    if (rc == 0)
        rc = buf_append_str(&path, b);
    if (rc == 0)
        rc = buf_append_str(&path, c);
    if (rc == 0)
        *key = seen_hash(path.data, path.len);
    buf_finish(&path);
    return rc;
}

/* The slot of `key`: its claim, or the empty slot where it would go. held_cap > 0. */
static struct claim *claim_slot(saver *s, uint64_t key)
{
    size_t mask = s->held_cap - 1;
    size_t i = (size_t)key & mask;
    while (s->held[i].url != NULL && s->held[i].key != key)
        i = (i + 1) & mask;
    return &s->held[i];
}

static const struct claim *claim_find(saver *s, uint64_t key)
{
    if (s->held_cap == 0)
        return NULL;
    const struct claim *c = claim_slot(s, key);
    return c->url != NULL ? c : NULL;
}

/* Room for one more claim, so that the claim_put() after a body is in place cannot fail.
 * Moves the slots: claim_find() again after it. 0 or -ENOMEM. */
static int claim_reserve(saver *s)
{
    if ((s->held_used + 1) * 2 <= s->held_cap)
        return 0;
    size_t old_cap = s->held_cap, cap = old_cap > 0 ? old_cap * 2 : 64;
    struct claim *old = s->held, *grown = calloc(cap, sizeof *grown);
    if (grown == NULL)
        return -ENOMEM;
    s->held = grown;
    s->held_cap = cap;
    for (size_t i = 0; i < old_cap; i++)
        if (old[i].url != NULL)
            *claim_slot(s, old[i].key) = old[i];
    free(old);
    return 0;
}

/* `url` (the table owns it now) holds the path of `key` by `rank`. After claim_reserve(). */
static void claim_put(saver *s, uint64_t key, int rank, char *url)
{
    struct claim *c = claim_slot(s, key);
    if (c->url == NULL)
        s->held_used++;
    free(c->url);
    *c = (struct claim){.key = key, .rank = rank, .url = url};
}

/* The rule (save.h): a body takes a path from the one that holds it (NULL: none of this
 * run) when it has the better rank, or the same rank and a URL that sorts first (or is the
 * same URL, saved again). Whatever the order they come in, the same body ends there. */
static int claim_wins(const struct claim *held, int rank, const char *url)
{
    if (held == NULL || rank != held->rank)
        return held == NULL || rank < held->rank;
    return strcmp(url, held->url) <= 0;
}

/* Moves the regular file `name` in `dir` to `name/index.html`, so that a directory can
 * take its name (save.h, collisions). 0 or a negative errno. */
static int move_into_directory(saver *s, int dir, const char *name)
{
    char aside[TEMP_NAME_MAX];
    temp_name(s, aside);
    if (renameat(dir, name, dir, aside) != 0)
        return -errno;
    int rc = 0;
    if (mkdirat(dir, name, DIR_MODE) != 0 && errno != EEXIST)
        rc = -errno;
    int sub = rc == 0 ? openat(dir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) : -1;
    if (rc == 0 && sub < 0)
        rc = -errno;
    if (rc == 0 && renameat(dir, aside, sub, "index.html") != 0)
        rc = -errno;
    if (sub >= 0)
        close(sub);
    if (rc != 0)
        renameat(dir, aside, dir, name); /* put it back, if the name is still free */
    return rc;
}

/* The same, for the file at `path` (its relative path, path_len bytes) of the tree: under
 * the lock, so that no commit puts a body in between, and with its claim, so that the body
 * moved keeps it, now by RANK_MOVED. 0 when the file was moved or is no longer there (the
 * caller looks again), or a negative errno. */
static int file_into_directory(saver *s, int dir, const char *name, const char *path,
                               size_t path_len)
{
    uint64_t from = 0, to = 0;
    int rc = path_key(path, path_len, "", "", &from);
    if (rc == 0)
        rc = path_key(path, path_len, "/index.html", "", &to);
    if (rc != 0)
        return rc;
    char *url = NULL;
    uv_mutex_lock(&s->claims);
    /* Another thread may have moved it since the caller looked. */
    int kind = kind_of(dir, name);
    if (kind != S_IFREG) {
        uv_mutex_unlock(&s->claims);
        return kind < 0 ? kind : 0;
    }
    if (claim_find(s, from) != NULL) {
        rc = claim_reserve(s);
        if (rc == 0 && (url = strdup(claim_find(s, from)->url)) == NULL)
            rc = -ENOMEM;
    }
    if (rc == 0)
        rc = move_into_directory(s, dir, name);
    if (rc == 0 && url != NULL) {
        /* The claim on `from` stays: that name is a directory now, never a body's place. */
        claim_put(s, to, RANK_MOVED, url);
        url = NULL;
    }
    uv_mutex_unlock(&s->claims);
    free(url);
    return rc;
}

/* Opens (making it when missing) the directory `name` in `dir`, never through a link;
 * `path` (path_len bytes) is its relative path. The fd, or a negative errno; -ELOOP when
 * something other than a directory or a regular file has the name. */
static int open_subdir(saver *s, int dir, const char *name, const char *path, size_t path_len)
{
    for (int tries = 0; tries < 4; tries++) {
        int fd = openat(dir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd >= 0)
            return fd;
        int err = errno;
        if (err == ENOENT) {
            /* Under the lock, so that a commit never finds a name free that then becomes a
             * directory before its body is put there (save_commit). Once a directory,
             * always one: this is the only time the lock is taken for it. */
            uv_mutex_lock(&s->claims);
            int made = mkdirat(dir, name, DIR_MODE) == 0 || errno == EEXIST ? 0 : -errno;
            uv_mutex_unlock(&s->claims);
            if (made != 0)
                return made;
            continue;
        }
        if (err != ENOTDIR && err != ELOOP)
            return -err;
        int kind = kind_of(dir, name);
        if (kind < 0)
            return kind;
        if (kind == S_IFREG) {
            int rc = file_into_directory(s, dir, name, path, path_len);
            if (rc != 0)
                return rc;
            continue;
        }
        if (kind != 0 && kind != S_IFDIR)
            return -ELOOP; /* a symbolic link, a FIFO, a socket: never followed or replaced */
    }
    return -EAGAIN; /* the tree kept changing under us */
}

/* Named temporary files untouched for this long, whose run cannot be judged by its pid,
 * are taken for a dead run's. A live run writes a streamed body as it arrives and a held
 * one at once, so only a transfer that stalls this long (a --speed-time far above its
 * default) on another host could lose its temporary file, and then only its own body. */
enum { STALE_AGE = 60 * 60 };

/* Whether `name` (a ".areq-*.part" regular file in a saved directory, with status `st`) was
 * left by a run that is gone. Safe with several runs saving into one directory at once:
 *   - a name made by a run on this kernel boot in this pid namespace (its WHERE is ours)
 *     is stale only when its pid is dead (kill(pid, 0) says ESRCH). A pid that was reused
 *     looks alive, which only keeps a dead run's file a while longer; EPERM (another user's
 *     live process) is alive too;
 *   - any other name (another host on a shared file system, another container, a reboot
 *     since, or the names of older versions, ".areq-HEX-N.part") has no pid we can ask
 *     about: it is stale when it is older than STALE_AGE. */
static int stale_temp(const saver *s, const char *name, const struct stat *st, time_t now)
{
    unsigned long long where = 0;
    long pid = 0;
    int end = 0;
    if (sscanf(name, ".areq-%16llx-%ld-%n", &where, &pid, &end) == 2 && end > 0 &&
        where == s->where && pid > 0) {
        if (pid == (long)getpid())
            return 0;
        return kill((pid_t)pid, 0) != 0 && errno == ESRCH;
    }
    return now - st->st_mtime >= STALE_AGE;
}

static int is_temp_name(const char *name)
{
    size_t len = strlen(name);
    return len > sizeof ".areq-" + sizeof ".part" && strncmp(name, ".areq-", 6) == 0 &&
           strcmp(name + len - 5, ".part") == 0;
}

/* Removes the stale temporary files (stale_temp) in the directory `dir` of the tree, named
 * `rel` (its path with a '/' at the end, "" for the root), once in a run: the first time a
 * body is saved there. Only regular files: a link or a directory with such a name is left
 * alone, and unlinkat removes a name, never what a link points to. Best effort: a file that
 * cannot be removed stays, and the body is saved all the same. */
static void sweep_once(saver *s, int dir, const char *rel)
{
    uint64_t key = seen_hash(rel, strlen(rel));
    uv_mutex_lock(&s->claims);
    int first = !seen_contains(&s->swept, key) && seen_reserve(&s->swept, key) == 0;
    if (first)
        (void)seen_add(&s->swept, key);
    uv_mutex_unlock(&s->claims);
    if (!first)
        return;
    int fd = openat(dir, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (d == NULL) {
        if (fd >= 0)
            close(fd);
        return;
    }
    time_t now = time(NULL);
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if ((e->d_type != DT_REG && e->d_type != DT_UNKNOWN) || !is_temp_name(e->d_name))
            continue;
        struct stat st;
        if (fstatat(dir, e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) &&
            stale_temp(s, e->d_name, &st, now))
            unlinkat(dir, e->d_name, 0);
    }
    closedir(d);
}

void save_abort(save_file *f)
{
    if (f == NULL)
        return;
    if (f->fd >= 0) {
        close(f->fd);
        if (f->tmp[0] != '\0')
            unlinkat(f->dir, f->tmp, 0);
    }
    if (f->dir >= 0 && f->dir != f->s->root)
        close(f->dir);
    free(f->name);
    free(f->prefix);
    free(f->url);
    free(f->stage);
    free(f);
}

int save_begin(saver *s, const char *rel, const char *url, save_file **out)
{
    *out = NULL;
    save_file *f = calloc(1, sizeof *f);
    if (f == NULL)
        return -ENOMEM;
    f->s = s;
    f->fd = -1;
    f->dir = s->root;
    const char *last = strrchr(rel, '/');
    last = last != NULL ? last + 1 : rel;
    f->name = strdup(last);
    f->prefix = strndup(rel, (size_t)(last - rel));
    if (url != NULL)
        f->url = strdup(url);
    int rc = f->name == NULL || f->prefix == NULL || (url != NULL && f->url == NULL) ? -ENOMEM : 0;
    if (rc == 0 && (f->name[0] == '\0' || rel[0] == '/'))
        rc = -EINVAL; /* savepath.h never makes these */
    char part[SAVEPATH_NAME_MAX + 1];
    for (const char *p = rel; rc == 0 && p < last;) {
        size_t n = strcspn(p, "/");
        if (n == 0 || n > SAVEPATH_NAME_MAX || (n == 1 && p[0] == '.') ||
            (n == 2 && p[0] == '.' && p[1] == '.')) {
            rc = -EINVAL;
            break;
        }
        memcpy(part, p, n);
        part[n] = '\0';
        int sub = open_subdir(s, f->dir, part, rel, (size_t)(p - rel) + n);
        if (sub < 0) {
            rc = sub;
            break;
        }
        if (f->dir != s->root)
            close(f->dir);
        f->dir = sub;
        p += n + 1;
    }
    if (rc == 0)
        sweep_once(s, f->dir, f->prefix);
    if (rc == 0) {
        f->fd = open_temp(s, f->dir, f->tmp);
        if (f->fd < 0)
            rc = f->fd;
    }
    if (rc != 0) {
        save_abort(f);
        return rc;
    }
    *out = f;
    return 0;
}

static int write_all(save_file *f, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t n = write(f->fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int flush_stage(save_file *f)
{
    int rc = write_all(f, f->stage, f->staged);
    f->staged = 0;
    return rc;
}

int save_write(save_file *f, const void *data, size_t len)
{
    f->bytes += len;
    if (f->staged == 0 && len >= DIRECT_MIN)
        return write_all(f, data, len);
    if (f->stage == NULL && (f->stage = malloc(STAGE_SIZE)) == NULL)
        return -ENOMEM;
    const char *p = data;
    while (len > 0) {
        size_t n = STAGE_SIZE - f->staged < len ? STAGE_SIZE - f->staged : len;
        memcpy(f->stage + f->staged, p, n);
        f->staged += n;
        p += n;
        len -= n;
        if (f->staged == STAGE_SIZE) {
            int rc = flush_stage(f);
            if (rc != 0)
                return rc;
        }
    }
    return 0;
}

unsigned long long save_bytes(const save_file *f)
{
    return f->bytes;
}

/* "x.png" with counter 2 is "x.2.png"; "x" is "x.2". A name that would grow beyond
 * SAVEPATH_NAME_MAX loses the end of its stem (cut where no UTF-8 sequence is split)
 * instead, so that a long name (savepath.h's shortened ones are 255 bytes) can be
 * numbered too; the claim loop keeps the result apart from every other name. */
static char *numbered(const char *name, unsigned n)
{
    char num[16];
    size_t num_len = (size_t)snprintf(num, sizeof num, ".%u", n);
    size_t len = strlen(name);
    const char *dot = strrchr(name, '.');
    size_t stem = dot != NULL && dot != name ? (size_t)(dot - name) : len;
    if (len - stem + num_len >= SAVEPATH_NAME_MAX)
        stem = len; /* an "extension" that long is part of the name */
    size_t ext = len - stem;
    size_t room = SAVEPATH_NAME_MAX - num_len - ext;
    if (stem > room) {
        stem = room;
        while (stem > 0 && ((unsigned char)name[stem] & 0xC0) == 0x80)
            stem--;
    }
    char *out = malloc(stem + num_len + ext + 1);
    if (out != NULL)
        snprintf(out, stem + num_len + ext + 1, "%.*s%s%s", (int)stem, name, num, name + len - ext);
    return out;
}

static uint64_t owner_hash(const char *name, const char *url)
{
    uint64_t a = seen_hash(name, strlen(name));
    uint64_t b = seen_hash(url, strlen(url));
    return a ^ (b * 0x9E3779B97F4A7C15ULL + (a << 6) + (a >> 2));
}

/* SAVE_FLAT: the name this URL's body takes: its own, or the first numbered one that no
 * other URL took in this run. 0 or -ENOMEM. */
static int claim_flat_name(save_file *f)
{
    saver *s = f->s;
    char *name = f->name;
    for (unsigned n = 1;; n++) {
        uint64_t owner = owner_hash(name, f->url);
        uint64_t taken = seen_hash(name, strlen(name));
        if (seen_contains(&s->owners, owner) || !seen_contains(&s->names, taken)) {
            if (seen_reserve(&s->names, taken) != 0 || seen_reserve(&s->owners, owner) != 0) {
                if (name != f->name)
                    free(name);
                return -ENOMEM;
            }
            (void)seen_add(&s->names, taken);
            (void)seen_add(&s->owners, owner);
            if (name != f->name) {
                free(f->name);
                f->name = name;
            }
            return 0;
        }
        if (name != f->name)
            free(name);
        name = numbered(f->name, n);
        if (name == NULL)
            return -ENOMEM;
    }
}

/* Puts the nameless file `fd` at `name` in `dir`: a link when the name is free, else a link
 * under a temporary name renamed over what is there (linkat never replaces a name). 0 or a
 * negative errno, and then nothing changed. */
static int place_nameless(saver *s, int fd, int dir, const char *name)
{
    int rc = link_nameless(s, fd, dir, name);
    if (rc != -EEXIST)
        return rc;
    char tmp[TEMP_NAME_MAX];
    for (int tries = 0; tries < 16 && rc == -EEXIST; tries++) {
        temp_name(s, tmp);
        rc = link_nameless(s, fd, dir, tmp);
    }
    if (rc != 0)
        return rc;
    if (renameat(dir, tmp, dir, name) != 0) {
        rc = -errno;
        unlinkat(dir, tmp, 0);
    }
    return rc;
}

/* Where the body of `f` goes: `name` in `dir` itself, or, when that name is a directory
 * (not with SAVE_FLAT), its index.html, with *sub that directory opened. 0 or a negative
 * errno. */
static int find_place(save_file *f, int dir, const char *name, int *into_dir, int *sub)
{
    *into_dir = 0;
    *sub = -1;
    int kind = kind_of(dir, name);
    if (kind == S_IFDIR && !(f->s->flags & SAVE_FLAT)) {
        *into_dir = 1;
        *sub = openat(dir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        return *sub >= 0 ? 0 : -errno;
    }
    if (kind < 0)
        return kind;
    if (kind != 0 && kind != S_IFREG)
        return kind == S_IFDIR ? -EISDIR : -ELOOP;
    return 0;
}

/* Whether the body of `f` may take its place in the tree (the rule, claim_wins): 0 with the
 * key and rank to claim it by, and room for the claim made; SAVE_YIELDED; or -ENOMEM.
 * Under s->claims. */
static int may_take(save_file *f, int into_dir, uint64_t *key, int *rank)
{
    saver *s = f->s;
    *rank = into_dir ? RANK_MOVED
            : savepath_supplies_index(f->url, strlen(f->url)) ? RANK_INDEX
                                                               : RANK_NAMED;
    int rc = path_key(f->prefix, strlen(f->prefix), f->name, into_dir ? "/index.html" : "", key);
    if (rc == 0)
        rc = claim_reserve(s);
    if (rc == 0 && !claim_wins(claim_find(s, *key), *rank, f->url))
        rc = SAVE_YIELDED;
    return rc;
}

/* The common case, a name that nothing holds yet: the nameless file of `f` linked there as
 * a file (not into a directory of that name), when the rule lets it take that name, with
 * *placed set. A link that succeeds shows that the name was free, so the ruling for a file
 * was the right one; this saves find_place()'s look at the name (one fstatat per body:
 * 3% of a pool thread's samples in tests/bench/save.py S), and the lock is held for one
 * directory lookup instead of two. When the name is taken (EEXIST), or the rule would not
 * give it to this body as a file, nothing was done and *placed is 0: the caller looks at
 * what is there. Under s->claims when ruled. 0 or a negative errno. */
static int link_where_free(save_file *f, int dir, const char *name, uint64_t *key, int *rank,
                           int *placed)
{
    *placed = 0;
    if (f->url != NULL && !(f->s->flags & SAVE_FLAT)) {
        int rc = may_take(f, 0, key, rank);
        if (rc == SAVE_YIELDED)
            return 0;
        if (rc != 0)
            return rc;
    }
    int rc = link_nameless(f->s, f->fd, dir, name);
    if (rc == 0)
        *placed = 1;
    return rc == -EEXIST ? 0 : rc;
}

int save_commit(save_file *f, struct buf *final_rel)
{
    saver *s = f->s;
    int rc = f->staged > 0 ? flush_stage(f) : 0;
    int nameless = f->tmp[0] == '\0';
    if (!nameless) {
        if (close(f->fd) != 0 && errno != EINTR && rc == 0)
            rc = -errno; /* NFS and some others report a failed write only here */
        f->fd = -1;
    }
    int dir = f->dir;
    int sub = -1;
    int into_dir = 0;
    int flat = (s->flags & SAVE_FLAT) != 0;
    if (rc == 0 && flat && f->url != NULL) {
        uv_mutex_lock(&s->claims);
        rc = claim_flat_name(f);
        uv_mutex_unlock(&s->claims);
    }
    const char *name = f->name;
    /* In the tree, ruling whether the body takes its place and putting it there are one
     * step under the lock, as are moves of a file into its directory and the making of
     * directories (open_subdir): so bodies bound for one path are ruled in the rule's
     * order, never in the order they were ready, and no name turns into a directory
     * between find_place() and the link or rename. */
    int ruled = !flat && f->url != NULL;
    uint64_t key = 0;
    int rank = 0;
    if (ruled)
        uv_mutex_lock(&s->claims);
    /* Room for the name first: after the file takes its place, nothing may fail. */
    if (rc == 0 && final_rel != NULL)
        rc = buf_reserve(final_rel, strlen(f->prefix) + strlen(name) + sizeof "/index.html");
    int placed = 0;
    if (rc == 0 && nameless)
        rc = link_where_free(f, dir, name, &key, &rank, &placed);
    if (rc == 0 && !placed)
        rc = find_place(f, dir, name, &into_dir, &sub);
    if (rc == 0 && !placed && ruled)
        rc = may_take(f, into_dir, &key, &rank);
    int to_dir = into_dir ? sub : dir;
    const char *to_name = into_dir ? "index.html" : name;
    if (rc == 0 && !placed) {
        if (nameless)
            rc = place_nameless(s, f->fd, to_dir, to_name);
        else if (renameat(dir, f->tmp, to_dir, to_name) != 0)
            rc = -errno;
    }
    if (rc == 0 && ruled) {
        claim_put(s, key, rank, f->url); /* reserved by may_take() */
        f->url = NULL;
    }
    if (ruled)
        uv_mutex_unlock(&s->claims);
    if (sub >= 0)
        close(sub);
    if (nameless) {
        /* Closed only now, once linked. The file systems with O_TMPFILE report no write
         * error at close (NFS, which may, has no O_TMPFILE), so this cannot fail late. */
        close(f->fd);
        f->fd = -1;
    }
    if (rc != 0) {
        if (!nameless)
            unlinkat(dir, f->tmp, 0);
    } else if (final_rel != NULL) {
        /* Reserved above: these cannot fail. */
        (void)buf_append_str(final_rel, f->prefix);
        (void)buf_append_str(final_rel, name);
        if (into_dir)
            (void)buf_append_str(final_rel, "/index.html");
    }
    if (f->dir != s->root)
        close(f->dir);
    f->dir = -1;
    free(f->name);
    free(f->prefix);
    free(f->url);
    free(f->stage);
    free(f);
    return rc;
}

int save_exists(saver *s, const char *rel)
{
    const char *last = strrchr(rel, '/');
    last = last != NULL ? last + 1 : rel;
    int dir = s->root;
    char part[SAVEPATH_NAME_MAX + 1];
    for (const char *p = rel; p < last;) {
        size_t n = strcspn(p, "/");
        if (n == 0 || n > SAVEPATH_NAME_MAX)
            break;
        memcpy(part, p, n);
        part[n] = '\0';
        int sub = openat(dir, part, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (dir != s->root)
            close(dir);
        if (sub < 0)
            return 0;
        dir = sub;
        p += n + 1;
    }
    int kind = last[0] != '\0' ? kind_of(dir, last) : 0;
    if (kind == S_IFDIR) {
        int sub = openat(dir, last, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        kind = sub >= 0 ? kind_of(sub, "index.html") : 0;
        if (sub >= 0)
            close(sub);
    }
    if (dir != s->root)
        close(dir);
    return kind == S_IFREG;
}

int save_error_is_fatal(int err)
{
    switch (-err) {
    case ENOSPC:
    case EDQUOT:
    case EROFS:
    case EIO:
    case EACCES:
    case EPERM:
        return 1;
    default:
        return 0;
    }
}

int save_failure_is_fatal(saver *s, int err)
{
    if (err != -EACCES && err != -EPERM)
        return save_error_is_fatal(err);
    char probe[TEMP_NAME_MAX];
    int fd = open_named_temp(s, s->root, probe);
    if (fd < 0)
        return 1;
    close(fd);
    unlinkat(s->root, probe, 0);
    return 0;
}

int saver_open_manifest(saver *s, const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, FILE_MODE);
    if (fd < 0)
        return -errno;
    if (s->manifest >= 0)
        close(s->manifest);
    s->manifest = fd;
    return 0;
}

int saver_record(saver *s, const char *line, size_t len)
{
    while (s->manifest >= 0 && len > 0) {
        ssize_t n = write(s->manifest, line, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        line += n;
        len -= (size_t)n;
    }
    return 0;
}

/* One item of a --save-types list, without surrounding spaces: [start, end). */
static void trim(const char **start, const char **end)
{
    while (*start < *end && (**start == ' ' || **start == '\t'))
        (*start)++;
    while (*end > *start && ((*end)[-1] == ' ' || (*end)[-1] == '\t'))
        (*end)--;
}

static int token_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("!#$&-^_.+", c) != NULL);
}

/* type/subtype, a type with a star for its subtype, or a star for both. */
static int good_item(const char *s, size_t n)
{
    const char *slash = memchr(s, '/', n);
    if (slash == NULL || slash == s || slash == s + n - 1)
        return 0;
    size_t tn = (size_t)(slash - s), sn = n - tn - 1;
    const char *sub = slash + 1;
    int type_star = tn == 1 && s[0] == '*', sub_star = sn == 1 && sub[0] == '*';
    if (type_star && !sub_star)
        return 0;
    for (size_t i = 0; !type_star && i < tn; i++)
        if (!token_char(s[i]))
            return 0;
    for (size_t i = 0; !sub_star && i < sn; i++)
        if (!token_char(sub[i]))
            return 0;
    return 1;
}

int save_types_check(const char *types, char *bad, size_t cap)
{
    const char *p = types;
    for (;;) {
        const char *end = p + strcspn(p, ",");
        const char *a = p, *b = end;
        trim(&a, &b);
        if (!good_item(a, (size_t)(b - a))) {
            snprintf(bad, cap, "%.*s", (int)(b - a), a);
            return -EINVAL;
        }
        if (*end == '\0')
            return 0;
        p = end + 1;
    }
}

int save_type_wanted(const char *types, const char *content_type)
{
    if (types == NULL)
        return 1;
    const char *ct = content_type != NULL ? content_type : "";
    while (*ct == ' ' || *ct == '\t')
        ct++;
    size_t ct_len = strcspn(ct, "; \t");
    if (ct_len == 0) {
        ct = "application/octet-stream";
        ct_len = strlen(ct);
    }
    const char *ct_slash = memchr(ct, '/', ct_len);
    size_t ct_type = ct_slash != NULL ? (size_t)(ct_slash - ct) : ct_len;
    for (const char *p = types;;) {
        const char *end = p + strcspn(p, ",");
        const char *a = p, *b = end;
        trim(&a, &b);
        size_t n = (size_t)(b - a);
        if (n == 3 && memcmp(a, "*/*", 3) == 0)
            return 1;
        if (n >= 2 && a[n - 2] == '/' && a[n - 1] == '*') {
            if (n - 2 == ct_type && strncasecmp(a, ct, ct_type) == 0)
                return 1;
        } else if (n == ct_len && strncasecmp(a, ct, n) == 0) {
            return 1;
        }
        if (*end == '\0')
            return 0;
        p = end + 1;
    }
}
