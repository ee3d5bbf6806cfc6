/* digest.c: SHA-256 by OpenSSL's EVP interface, which picks the CPU's SHA extensions where
 * they exist; a context is allocated once per digest and reused across bodies. */
#include "digest.h"

#include <errno.h>
#include <stdlib.h>

#include <openssl/evp.h>

struct digest {
    EVP_MD_CTX *ctx;
};

int digest_reset(digest *d)
{
    return EVP_DigestInit_ex(d->ctx, EVP_sha256(), NULL) == 1 ? 0 : -ENOMEM;
}

digest *digest_new(void)
{
    digest *d = malloc(sizeof *d);
    if (d == NULL)
        return NULL;
    d->ctx = EVP_MD_CTX_new();
    if (d->ctx == NULL || digest_reset(d) != 0) {
        digest_free(d);
        return NULL;
    }
    return d;
}

int digest_update(digest *d, const void *data, size_t len)
{
    if (len == 0)
        return 0;
    return EVP_DigestUpdate(d->ctx, data, len) == 1 ? 0 : -ENOMEM;
}

int digest_final(digest *d, unsigned char out[DIGEST_SIZE])
{
    unsigned int n = 0;
    if (EVP_DigestFinal_ex(d->ctx, out, &n) != 1 || n != DIGEST_SIZE)
        return -ENOMEM;
    return 0;
}

void digest_free(digest *d)
{
    if (d == NULL)
        return;
    EVP_MD_CTX_free(d->ctx);
    free(d);
}

int digest_sha256(const void *data, size_t len, unsigned char out[DIGEST_SIZE])
{
    digest *d = digest_new();
    if (d == NULL)
        return -ENOMEM;
    int rc = digest_update(d, data, len);
    if (rc == 0)
        rc = digest_final(d, out);
    digest_free(d);
    return rc;
}

void digest_hex(const unsigned char sum[DIGEST_SIZE], char out[DIGEST_HEX_SIZE])
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < DIGEST_SIZE; i++) {
        out[2 * i] = hex[sum[i] >> 4];
        out[2 * i + 1] = hex[sum[i] & 15];
    }
    out[2 * DIGEST_SIZE] = '\0';
}
