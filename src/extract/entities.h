/* entities.h: decodes HTML character references the way HTML5 does inside attribute values.
 *
 * Ownership: the caller owns the output buffer; the table behind entities__lookup() is static
 * and generated at build time by src/gen_entities.py. */
#ifndef AREQ_ENTITIES_H
#define AREQ_ENTITIES_H

#include <stddef.h>

#include "buf.h"

/* Appends `in` to `out` with numeric and named character references decoded as in an HTML5
 * attribute value (UTF-8 output, the attribute rule for named references without ';', U+0000
 * replaced by U+FFFD). Bytes that are not part of a reference, including invalid UTF-8, are
 * copied unchanged. Returns 0 or -ENOMEM. */
int entities_decode_attr(const char *in, size_t len, struct buf *out);

/* Internal, defined by the generated table: looks up a name (without the '&', with its ';' if
 * it has one). Returns 1 and the UTF-8 replacement, or 0 when no reference has that name. */
int entities__lookup(const char *name, size_t len, const char **utf8, size_t *utf8_len);
extern const size_t entities__max_name_len;   /* longest name, ';' included */
extern const size_t entities__max_legacy_len; /* longest name valid without ';' */

#endif
