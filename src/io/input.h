/* input.h: splits the bytes of a URL list into lines, one URL a line.
 *
 * Rules: a leading UTF-8 BOM is ignored; lines end in LF or CRLF (a last line may lack it);
 * surrounding white space is trimmed; blank lines and lines whose first non-blank character
 * is '#' are skipped without a word. A line longer than the limit, or holding a NUL byte or
 * invalid UTF-8, is handed out with `error` set to the reason, and never buffered whole.
 *
 * Ownership: the caller owns the input_lines struct (init/finish). The text of a line handed
 * out points into the splitter's own buffer and stays valid until the next call on it. */
#ifndef AREQ_INPUT_H
#define AREQ_INPUT_H

#include <stddef.h>

#include "buf.h"

#define INPUT_MAX_LINE (64 * 1024)

struct input_line {
    const char *text;    /* trimmed, not NUL-terminated; NULL when error is set */
    size_t len;
    unsigned long lineno; /* 1-based */
    const char *error;   /* NULL, or a reason that lives as long as the splitter:
                            "line longer than 64 KiB", "NUL byte in line", "invalid UTF-8" */
};

typedef struct input_lines {
    struct buf pending;      /* bytes fed; those before `start` are split off already */
    size_t start;            /* first byte not yet split off; compacted away lazily */
    size_t scanned;          /* bytes from `start` up to here hold no LF */
    size_t tail;             /* where the last, unterminated line in `pending` begins */
    size_t max_line;
    unsigned long lineno;    /* lines completed so far */
    int discarding;          /* the tail line is over-long: drop bytes up to the next LF */
    int at_start;            /* no byte past a possible BOM yet; `pending` holds its prefix */
    char too_long[48];       /* the reason for over-long lines, made from max_line */
} input_lines;

/* max_line bounds a line's raw length (without its LF or CRLF); 0 means INPUT_MAX_LINE. */
void input_lines_init(input_lines *il, size_t max_line);
void input_lines_finish(input_lines *il);

/* Adds bytes read from the list. 0 or -ENOMEM. Invalidates the last line handed out. */
int input_lines_feed(input_lines *il, const char *data, size_t len);

/* Hands out the next line worth a word (a URL line, or a bad line with `error` set).
 * Returns 1 with *out filled, or 0 when more bytes are needed; with at_eof set, 0 means the
 * list is finished (a last line without a newline is handed out first). */
int input_lines_next(input_lines *il, struct input_line *out, int at_eof);

#endif
