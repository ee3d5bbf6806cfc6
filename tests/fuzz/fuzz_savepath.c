/* fuzz_savepath.c: libFuzzer harness for the --save layout (src/io/savepath.c).
 *
 * Input: one control byte, then the rest of a URL after "http://h/" (byte 0 odd: the whole
 * input is the URL instead, so that schemes and hosts are reached too). Whatever the bytes,
 * every result of savepath_map(), in the tree and with SAVEPATH_FLAT, must keep the rules of
 * savepath.h: a relative path of names joined by '/', none empty, "." or "..", none longer
 * than SAVEPATH_NAME_MAX, none holding '\\', NUL or another control byte; flat, one name;
 * and the same URL always maps to the same path. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "savepath.h"

static void check_path(const struct buf *out, size_t from, int flat)
{
    const char *s = out->data + from;
    size_t len = out->len - from;
    CHECK(len > 0);
    CHECK(s[0] != '/');
    CHECK(strlen(s) == len); /* no NUL inside */
    size_t names = 0;
    while (*s != '\0') {
        size_t n = strcspn(s, "/");
        CHECK(n > 0 && n <= SAVEPATH_NAME_MAX);
        CHECK(!(n == 1 && s[0] == '.'));
        CHECK(!(n == 2 && s[0] == '.' && s[1] == '.'));
        for (size_t i = 0; i < n; i++) {
            unsigned char c = (unsigned char)s[i];
            CHECK(c >= 0x20 && c != 0x7f && c != '\\');
        }
        names++;
        s += n;
        if (*s == '/') {
            s++;
            CHECK(*s != '\0'); /* no trailing '/' */
        }
    }
    if (flat)
        CHECK(names == 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int whole = data[0] & 1;
    data++, size--;
    static const char prefix[] = "http://h/";
    size_t plen = whole ? 0 : sizeof prefix - 1;
    char *url = malloc(plen + size + 1);
    if (url == NULL)
        return 0;
    memcpy(url, prefix, plen);
    memcpy(url + plen, data, size);
    url[plen + size] = '\0';
    for (int flat = 0; flat <= 1; flat++) {
        struct buf a, b;
        buf_init(&a);
        buf_init(&b);
        CHECK(buf_append_str(&a, "x") == 0);
        int rc = savepath_map(url, plen + size, flat ? SAVEPATH_FLAT : 0, &a);
        if (rc == 0) {
            check_path(&a, 1, flat);
            CHECK(savepath_map(url, plen + size, flat ? SAVEPATH_FLAT : 0, &b) == 0);
            CHECK(b.len == a.len - 1 && memcmp(b.data, a.data + 1, b.len) == 0);
        } else {
            CHECK(rc == -22 /* EINVAL */ || rc == -12 /* ENOMEM */);
            CHECK(a.len == 1); /* left as it was */
        }
        buf_finish(&a);
        buf_finish(&b);
    }
    free(url);
    return 0;
}
