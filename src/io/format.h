/* format.h: how pairs are written: tab-separated (the reference program's format),
 * CSV per RFC 4180, or JSON Lines.
 *
 * Ownership: everything is appended to a caller-owned struct buf; nothing is kept. */
#ifndef AREQ_FORMAT_H
#define AREQ_FORMAT_H

#include <stddef.h>

#include "buf.h"

enum format {
    FORMAT_TSV = 0,
    FORMAT_CSV,
    FORMAT_JSONL,
};

/* Parses "tsv", "csv" or "jsonl". 0 or -EINVAL. */
int format_parse(const char *name, enum format *out);

/* The header line, if the format has one (JSON Lines has none). 0 or -ENOMEM. */
int format_header(enum format f, struct buf *out);

/* Where a pair came from: the page's HTTP status (0 if unknown) and its depth in the
 * crawl (0 for listed URLs). */
struct format_origin {
    long status;
    unsigned depth;
};

/* One line for one pair. 0 or -ENOMEM (out keeps its old length). */
int format_pair(enum format f, struct buf *out, const char *source, size_t source_len,
                const char *target, size_t target_len, const struct format_origin *origin);

/* A URL that failed, for --failures: one JSON object a line. */
struct format_failure {
    const char *url;
    const char *kind;     /* "http", "transport", "too-big", "input", "robots", "scan",
                             "save" */
    long status;          /* HTTP status of the last response, 0 if none */
    int curl_code;        /* libcurl's error code, 0 if none */
    const char *error;    /* what went wrong, in words */
    unsigned attempts;    /* requests made, retries included; 0 if none was */
    unsigned depth;
    const char *found_on; /* the page that linked to it, "FILE:LINE" for a list, or NULL */
};

/* {"url":...,"kind":...,"status":...,"curl_code":...,"error":...,"attempts":...,
 * "depth":...,"found_on":...}\n. 0 or -ENOMEM (out keeps its old length). */
int format_failure(struct buf *out, const struct format_failure *f);

/* A body saved by --save, for --manifest. */
struct format_saved {
    const char *url;       /* as requested */
    const char *final_url; /* after redirects */
    const char *path;      /* relative to the save directory */
    unsigned long long bytes;
    const char *type;      /* the Content-Type as sent, or NULL */
    const char *sha256;    /* 64 hex digits */
};

/* {"url":...,"final_url":...,"path":...,"bytes":...,"type":...,"sha256":...}\n.
 * 0 or -ENOMEM (out keeps its old length). */
int format_saved(struct buf *out, const struct format_saved *s);

#endif
