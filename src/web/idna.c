/* idna.c: the only file that includes libidn2. */
#include "idna.h"

#include <errno.h>
#include <idn2.h>
#include <stdlib.h>
#include <string.h>

int idna_to_ascii(const char *name, size_t len, struct buf *out)
{
    /* libidn2 wants a C string; a NUL inside the name is no domain anyway. */
    if (memchr(name, '\0', len) != NULL)
        return -EINVAL;
    char small[256];
    char *text = len < sizeof small ? small : malloc(len + 1);
    if (text == NULL)
        return -ENOMEM;
    memcpy(text, name, len);
    text[len] = '\0';

    char *ascii = NULL;
    int rc = idn2_to_ascii_8z(text, &ascii, IDN2_NONTRANSITIONAL);
    if (rc != IDN2_OK && rc != IDN2_MALLOC)
        rc = idn2_to_ascii_8z(text, &ascii, IDN2_TRANSITIONAL);
    if (text != small)
        free(text);
    if (rc == IDN2_MALLOC)
        return -ENOMEM;
    if (rc != IDN2_OK)
        return -EINVAL;

    size_t n = strlen(ascii);
    int err = buf_reserve(out, n);
    if (err == 0) {
        char *d = out->data + out->len;
        for (size_t i = 0; i < n; i++) {
            char c = ascii[i];
            d[i] = c >= 'A' && c <= 'Z' ? (char)(c + ('a' - 'A')) : c;
        }
        out->len += n;
        out->data[out->len] = '\0';
    }
    idn2_free(ascii);
    return err;
}
