/* idna.h: international domain names in their ASCII (punycode) form.
 *
 * This is the "domain to ASCII" step of the WHATWG URL Standard's host parser, done by
 * libidn2: UTS #46 mapping (case folding, ignored and mapped code points, ideographic full
 * stops) and non-transitional processing, as browsers do, falling back to transitional
 * processing when that fails. libidn2 also applies IDNA2008's hyphen and label-length rules,
 * which WHATWG leaves out; names that break them are refused.
 *
 * Ownership: the result is appended to a caller-owned struct buf. */
#ifndef AREQ_IDNA_H
#define AREQ_IDNA_H

#include <stddef.h>

#include "buf.h"

/* Appends the ASCII form of the UTF-8 domain name[0..len), in lower case. Returns 0,
 * -EINVAL (not valid UTF-8, or refused by UTS #46; `out` keeps its length) or -ENOMEM. */
int idna_to_ascii(const char *name, size_t len, struct buf *out);

#endif
