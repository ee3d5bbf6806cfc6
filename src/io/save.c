/* Saving bodies under one directory without following links (see save.h). */
#include "save.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "savepath.h"
#include "seen.h"

struct saver {
    int root;           /* the directory, open */
    unsigned flags;
    atomic_ullong counter; /* for temporary names; files are saved from several threads */
    uint64_t salt;      /* likewise, so that two runs pick different names */
    int manifest;       /* --manifest, or -1 */
    /* SAVE_FLAT: names taken in this run, and (name, URL) pairs, so that a URL saved
     * again takes back its own name and no other. */
    seen_set names, owners;
    uv_mutex_t claims;  /* guards names and owners */
};

struct save_file {
    saver *s;
    int dir;            /* where the file goes: the root, or a directory opened below it */
    int fd;             /* the temporary file */
    char tmp[48];       /* its name */
    char *name;         /* the final name in `dir` */
    char *prefix;       /* the directories of the relative path, with a '/' at the end */
    char *url;          /* SAVE_FLAT only */
    unsigned long long bytes;
    char *stage;        /* small pieces gathered into one write(2) of STAGE_SIZE */
    size_t staged;
};

/* libcurl hands a body over in pieces of its receive buffer (16 KiB here): gathered, a
 * 4 GiB body took 1/8 of the write(2) calls (8.9 s -> see tests/bench/save.py L). */
enum { STAGE_SIZE = 128 << 10 };

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

static void temp_name(saver *s, char out[48])
{
    snprintf(out, 48, ".areq-%016llx-%llu.part", (unsigned long long)s->salt,
             atomic_fetch_add(&s->counter, 1));
}

/* A new temporary file in `dir`. The fd, or a negative errno. */
static int open_temp(saver *s, int dir, char name[48])
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

int saver_open(const char *dir, unsigned flags, saver **out)
{
    *out = NULL;
    if (dir == NULL || dir[0] == '\0')
        return -EINVAL;
    saver *s = calloc(1, sizeof *s);
    if (s == NULL)
        return -ENOMEM;
    s->flags = flags;
    s->manifest = -1;
    s->root = -1;
    seen_init(&s->names);
    seen_init(&s->owners);
    if (uv_mutex_init(&s->claims) != 0) {
        free(s);
        return -ENOMEM;
    }
    if (getrandom(&s->salt, sizeof s->salt, 0) != (ssize_t)sizeof s->salt)
        s->salt = (uint64_t)getpid() << 32 ^ (uint64_t)(uintptr_t)s;
    int rc = make_parents(dir);
    if (rc == 0) {
        s->root = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (s->root < 0)
            rc = -errno;
    }
    /* Whether files can be made here is found now, before anything is fetched. */
    if (rc == 0) {
        char probe[48];
        int fd = open_temp(s, s->root, probe);
        if (fd < 0) {
            rc = fd;
        } else {
            close(fd);
            unlinkat(s->root, probe, 0);
        }
    }
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
    uv_mutex_destroy(&s->claims);
    free(s);
}

/* Moves the regular file `name` in `dir` to `name/index.html`, so that a directory can
 * take its name (save.h, collisions). 0 or a negative errno. */
static int file_into_directory(saver *s, int dir, const char *name)
{
    char aside[48];
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

/* What `name` in `dir` is, without following a link: S_IFDIR, S_IFREG, another type, 0 for
 * nothing, or a negative errno. */
static int kind_of(int dir, const char *name)
{
    struct stat st;
    if (fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
        return errno == ENOENT ? 0 : -errno;
    return (int)(st.st_mode & S_IFMT);
}

/* Opens (making it when missing) the directory `name` in `dir`, never through a link. The
 * fd, or a negative errno; -ELOOP when something other than a directory or a regular
 * file has the name. */
static int open_subdir(saver *s, int dir, const char *name)
{
    for (int tries = 0; tries < 4; tries++) {
        int fd = openat(dir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd >= 0)
            return fd;
        int err = errno;
        if (err == ENOENT) {
            if (mkdirat(dir, name, DIR_MODE) != 0 && errno != EEXIST)
                return -errno;
            continue;
        }
        if (err != ENOTDIR && err != ELOOP)
            return -err;
        int kind = kind_of(dir, name);
        if (kind < 0)
            return kind;
        if (kind == S_IFREG) {
            int rc = file_into_directory(s, dir, name);
            if (rc != 0)
                return rc;
            continue;
        }
        if (kind != 0 && kind != S_IFDIR)
            return -ELOOP; /* a symbolic link, a FIFO, a socket: never followed or replaced */
    }
    return -EAGAIN; /* the tree kept changing under us */
}

void save_abort(save_file *f)
{
    if (f == NULL)
        return;
    if (f->fd >= 0) {
        close(f->fd);
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
    if ((s->flags & SAVE_FLAT) && url != NULL)
        f->url = strdup(url);
    int rc = f->name == NULL || f->prefix == NULL || ((s->flags & SAVE_FLAT) && f->url == NULL)
                 ? -ENOMEM
                 : 0;
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
        int sub = open_subdir(s, f->dir, part);
        if (sub < 0) {
            rc = sub;
            break;
        }
        if (f->dir != s->root)
            close(f->dir);
        f->dir = sub;
        p += n + 1;
    }
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
    if (f->staged == 0 && len >= STAGE_SIZE)
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

/* "x.png" with counter 2 is "x.2.png"; "x" is "x.2". */
static char *numbered(const char *name, unsigned n)
{
    const char *dot = strrchr(name, '.');
    size_t stem = dot != NULL && dot != name ? (size_t)(dot - name) : strlen(name);
    size_t len = strlen(name) + 24;
    char *out = malloc(len);
    if (out != NULL)
        snprintf(out, len, "%.*s.%u%s", (int)stem, name, n, name + stem);
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
        if (strlen(f->name) + 12 > SAVEPATH_NAME_MAX)
            return -ENAMETOOLONG;
        name = numbered(f->name, n);
        if (name == NULL)
            return -ENOMEM;
    }
}

int save_commit(save_file *f, struct buf *final_rel)
{
    int rc = f->staged > 0 ? flush_stage(f) : 0;
    if (close(f->fd) != 0 && errno != EINTR && rc == 0)
        rc = -errno; /* NFS and some others report a failed write only here */
    f->fd = -1;
    int dir = f->dir;
    int sub = -1;
    const char *name = f->name;
    int into_dir = 0;
    if (rc == 0 && (f->s->flags & SAVE_FLAT) && f->url != NULL) {
        uv_mutex_lock(&f->s->claims);
        rc = claim_flat_name(f);
        uv_mutex_unlock(&f->s->claims);
        name = f->name;
    }
    if (rc == 0) {
        int kind = kind_of(dir, name);
        if (kind == S_IFDIR && !(f->s->flags & SAVE_FLAT)) {
            /* The name is a directory already: the body is its index.html. */
            sub = openat(dir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub < 0)
                rc = -errno;
            into_dir = 1;
        } else if (kind < 0) {
            rc = kind;
        } else if (kind != 0 && kind != S_IFREG) {
            rc = kind == S_IFDIR ? -EISDIR : -ELOOP;
        }
    }
    /* Room for the name first: after the rename, nothing may fail. */
    if (rc == 0 && final_rel != NULL)
        rc = buf_reserve(final_rel, strlen(f->prefix) + strlen(name) + sizeof "/index.html");
    if (rc == 0 && renameat(dir, f->tmp, into_dir ? sub : dir, into_dir ? "index.html" : name) != 0)
        rc = -errno;
    if (sub >= 0)
        close(sub);
    if (rc != 0) {
        unlinkat(dir, f->tmp, 0);
    } else if (final_rel != NULL) {
        /* Reserved above: these cannot fail. */
        (void)buf_append_str(final_rel, f->prefix);
        (void)buf_append_str(final_rel, name);
        if (into_dir)
            (void)buf_append_str(final_rel, "/index.html");
    }
    if (f->dir != f->s->root)
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
