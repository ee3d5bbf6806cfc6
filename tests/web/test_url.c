/* test_url.c: table-driven tests for url.c.
 *
 * Expected values were checked against Node.js's WHATWG URL parser (new URL(href, base)).
 * Where areq deliberately differs, the row says what a browser produces: escapes get
 * upper-case hex, the fragment is dropped unless URL_KEEP_FRAGMENT, '`', '{', '}' are escaped
 * in a query too (and "'" is not), other schemes are filtered unless URL_ALL_SCHEMES (and
 * then only white space, controls and non-ASCII get escaped), hosts holding '"', '`', '{' or
 * '}' are refused (a host cannot be escaped), and libidn2's IDNA2008 rules (hyphens, label
 * length) and transitional retry decide a few international names differently. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>

#include "buf.h"
#include "url.h"

#define K URL_KEEP_FRAGMENT
#define A URL_ALL_SCHEMES

/* The base as a page would give it: upper-case host, a fragment; both normalised away. */
#define B1 "http://Example.COM/a/b/c?q=1#frag"
#define B2 "https://secure.example:443/dir/"
#define B3 "http://[::1]:8080/a/"
#define B4 "http://u:p@h.example/x"
#define B5 "http://h.example"

struct resolve_row {
    const char *base;
    const char *href;
    unsigned flags;
    const char *expect; /* NULL when nothing is appended */
    int rc;
};

static const struct resolve_row resolve_rows[] = {
    {B1, "d", 0, "http://example.com/a/b/d", URL_OK},
    {B1, "./d", 0, "http://example.com/a/b/d", URL_OK},
    {B1, "d/", 0, "http://example.com/a/b/d/", URL_OK},
    {B1, "../d", 0, "http://example.com/a/d", URL_OK},
    {B1, "../../d", 0, "http://example.com/d", URL_OK},
    {B1, "../../../d", 0, "http://example.com/d", URL_OK},
    {B1, "../../../../d", 0, "http://example.com/d", URL_OK},
    {B1, "/d", 0, "http://example.com/d", URL_OK},
    {B1, "/d/./e/../f", 0, "http://example.com/d/f", URL_OK},
    {B1, ".", 0, "http://example.com/a/b/", URL_OK},
    {B1, "..", 0, "http://example.com/a/", URL_OK},
    {B1, "./", 0, "http://example.com/a/b/", URL_OK},
    {B1, "../", 0, "http://example.com/a/", URL_OK},
    {B1, "?y=2", 0, "http://example.com/a/b/c?y=2", URL_OK},
    {B1, "?", 0, "http://example.com/a/b/c?", URL_OK},
    {B1, "d?y=2", 0, "http://example.com/a/b/d?y=2", URL_OK},
    {B1, "//other.example/p", 0, "http://other.example/p", URL_OK},
    {B1, "//Other.Example:8080/p?x", 0, "http://other.example:8080/p?x", URL_OK},
    {B1, "https://other.example/x", 0, "https://other.example/x", URL_OK},
    {B1, "HTTP://WWW.EXAMPLE.COM/X/Y", 0, "http://www.example.com/X/Y", URL_OK},
    {B1, "HtTpS://Host/", 0, "https://host/", URL_OK},
    {B1, "http://example.com:80/p", 0, "http://example.com/p", URL_OK},
    {B1, "https://example.com:443/p", 0, "https://example.com/p", URL_OK},
    {B1, "http://example.com:443/p", 0, "http://example.com:443/p", URL_OK},
    {B1, "https://example.com:80/p", 0, "https://example.com:80/p", URL_OK},
    {B1, "http://example.com:8080/p", 0, "http://example.com:8080/p", URL_OK},
    {B1, "http://example.com:/p", 0, "http://example.com/p", URL_OK},
    {B1, "http://example.com:0080/p", 0, "http://example.com/p", URL_OK},
    {B1, "%2e%2e/d", 0, "http://example.com/a/d", URL_OK},
    {B1, "%2E%2E/%2e%2e/d", 0, "http://example.com/d", URL_OK},
    {B1, "e/%2e/f", 0, "http://example.com/a/b/e/f", URL_OK},
    {B1, ".%2e/d", 0, "http://example.com/a/d", URL_OK},
    {B1, "%2e./d", 0, "http://example.com/a/d", URL_OK},
    {B1, "d/%2e%2e", 0, "http://example.com/a/b/", URL_OK},
    {B1, "%7e%2fx%3a", 0, "http://example.com/a/b/%7E%2Fx%3A", URL_OK}, /* WHATWG: http://example.com/a/b/%7e%2fx%3a */
    {B1, "d?a=%2f%3d", 0, "http://example.com/a/b/d?a=%2F%3D", URL_OK}, /* WHATWG: http://example.com/a/b/d?a=%2f%3d */
    {B1, "a b", 0, "http://example.com/a/b/a%20b", URL_OK},
    {B1, "d?a b", 0, "http://example.com/a/b/d?a%20b", URL_OK},
    {B1, "d\"q\"", 0, "http://example.com/a/b/d%22q%22", URL_OK},
    {B1, "d<x>", 0, "http://example.com/a/b/d%3Cx%3E", URL_OK},
    {B1, "d?<x>", 0, "http://example.com/a/b/d?%3Cx%3E", URL_OK},
    {B1, "d`{}", 0, "http://example.com/a/b/d%60%7B%7D", URL_OK},
    {B1, "d?`{}", 0, "http://example.com/a/b/d?%60%7B%7D", URL_OK}, /* WHATWG: http://example.com/a/b/d?`{} */
    {B1, "\xc3\xa9t\xc3\xa9", 0, "http://example.com/a/b/%C3%A9t%C3%A9", URL_OK},
    {B1, "d?\xc3\xa9", 0, "http://example.com/a/b/d?%C3%A9", URL_OK},
    {B1, "%", 0, "http://example.com/a/b/%", URL_OK},
    {B1, "%zz/%4", 0, "http://example.com/a/b/%zz/%4", URL_OK},
    {B1, "d?%", 0, "http://example.com/a/b/d?%", URL_OK},
    {B1, " d ", 0, "http://example.com/a/b/d", URL_OK},
    {B1, "\n\t d\r\n", 0, "http://example.com/a/b/d", URL_OK},
    {B1, "d\te", 0, "http://example.com/a/b/de", URL_OK},
    {B1, "d\ne?x\r=1", 0, "http://example.com/a/b/de?x=1", URL_OK},
    {B1, "\x01\x02" "d\x1f", 0, "http://example.com/a/b/d", URL_OK},
    {B1, "d\x01" "e", 0, "http://example.com/a/b/d%01e", URL_OK},
    {B1, "d\x7f" "e", 0, "http://example.com/a/b/d%7Fe", URL_OK},
    {B1, "\\d\\e", 0, "http://example.com/d/e", URL_OK},
    {B1, "d\\e\\..\\f", 0, "http://example.com/a/b/d/f", URL_OK},
    {B1, "\\\\other.example\\p", 0, "http://other.example/p", URL_OK},
    {B1, "/\\other.example/p", 0, "http://other.example/p", URL_OK},
    {B1, "d?a\\b", 0, "http://example.com/a/b/d?a\\b", URL_OK},
    {B1, "#x", 0, NULL, URL_FILTERED}, /* WHATWG: http://example.com/a/b/c?q=1#x */
    {B1, "  #x ", 0, NULL, URL_FILTERED}, /* WHATWG: http://example.com/a/b/c?q=1#x */
    {B1, "d#x", 0, "http://example.com/a/b/d", URL_OK}, /* WHATWG: http://example.com/a/b/d#x */
    {B1, "mailto:a@b.example", 0, NULL, URL_FILTERED}, /* WHATWG: mailto:a@b.example */
    {B1, "javascript:void(0)", 0, NULL, URL_FILTERED}, /* WHATWG: javascript:void(0) */
    {B1, "java\tscript:x", 0, NULL, URL_FILTERED}, /* WHATWG: javascript:x */
    {B1, "tel:+1555", 0, NULL, URL_FILTERED}, /* WHATWG: tel:+1555 */
    {B1, "ftp://x.example/f", 0, NULL, URL_FILTERED}, /* WHATWG: ftp://x.example/f */
    {B1, "file:///etc/passwd", 0, NULL, URL_FILTERED}, /* WHATWG: file:///etc/passwd */
    {B1, "data:text/plain,hi", 0, NULL, URL_FILTERED}, /* WHATWG: data:text/plain,hi */
    {B1, "", 0, "http://example.com/a/b/c?q=1", URL_OK},
    {B1, "   ", 0, "http://example.com/a/b/c?q=1", URL_OK},
    {B1, "\t\n", 0, "http://example.com/a/b/c?q=1", URL_OK},
    {B1, "http://user:pass@host.example/p", 0, "http://user:pass@host.example/p", URL_OK},
    {B1, "http://User@Host.Example/", 0, "http://User@host.example/", URL_OK},
    {B1, "http://@host.example/", 0, "http://host.example/", URL_OK},
    {B1, "http://u:@host.example/", 0, "http://u@host.example/", URL_OK},
    {B1, "http://a%20b:c%2f@host/", 0, "http://a%20b:c%2F@host/", URL_OK}, /* WHATWG: http://a%20b:c%2f@host/ */
    {B1, "http://[::1]/", 0, "http://[::1]/", URL_OK},
    {B1, "http://[::1]:8080/p", 0, "http://[::1]:8080/p", URL_OK},
    {B1, "http://[::1]:80/p", 0, "http://[::1]/p", URL_OK},
    {B1, "http://[2001:DB8::A]/", 0, "http://[2001:db8::a]/", URL_OK},
    {B1, "http://[0:0:0:0:0:0:0:1]/", 0, "http://[::1]/", URL_OK},
    {B1, "http://[bad", 0, NULL, -EINVAL},
    {B1, "http://[1:2:3]/", 0, NULL, -EINVAL},
    {B1, "http://[::1%25eth0]/", 0, NULL, -EINVAL},
    {B1, "http://x:99999/", 0, NULL, -EINVAL},
    {B1, "http://x:65536/", 0, NULL, -EINVAL},
    {B1, "http://x:65535/", 0, "http://x:65535/", URL_OK},
    {B1, "http://x:-1/", 0, NULL, -EINVAL},
    {B1, "http://x:8a/", 0, NULL, -EINVAL},
    {B1, "http://a b.com/", 0, NULL, -EINVAL},
    {B1, "http://a<b/", 0, NULL, -EINVAL},
    {B1, "http://a^b/", 0, NULL, -EINVAL},
    {B1, "http://a|b/", 0, NULL, -EINVAL},
    {B1, "http://", 0, NULL, -EINVAL},
    {B1, "http:///", 0, NULL, -EINVAL},
    {B1, "//", 0, NULL, -EINVAL},
    {B1, "http:", 0, "http://example.com/a/b/c?q=1", URL_OK},
    {B1, "http:d", 0, "http://example.com/a/b/d", URL_OK},
    {B1, "https:d", 0, "https://d/", URL_OK},
    {B1, "http:/d", 0, "http://example.com/d", URL_OK},
    {B1, "http:\\\\other\\p", 0, "http://other/p", URL_OK},
    {B1, "http://EX%41MPLE.com/", 0, "http://example.com/", URL_OK},
    {B1, "http://\xc3\xa9.example/", 0, "http://xn--9ca.example/", URL_OK},
    {B1, "http://%C3%A9.example/", 0, "http://xn--9ca.example/", URL_OK},
    {B1, "http://example.com?x", 0, "http://example.com/?x", URL_OK},
    {B1, "http://example.com", 0, "http://example.com/", URL_OK},
    {B1, "1a:b", 0, "http://example.com/a/b/1a:b", URL_OK},
    {B1, "a:b", 0, NULL, URL_FILTERED}, /* WHATWG: a:b */
    {B1, "./a:b", 0, "http://example.com/a/b/a:b", URL_OK},
    {B1, "d;p?q", 0, "http://example.com/a/b/d;p?q", URL_OK},
    {B1, "http://0x7f.1/", 0, "http://127.0.0.1/", URL_OK},
    {B1, "http://127.0.0.1:8080/", 0, "http://127.0.0.1:8080/", URL_OK},
    {B1, "http://example.com./", 0, "http://example.com./", URL_OK},
    {B1, "//other.example", 0, "http://other.example/", URL_OK},
    {B1, "?a=1&b=2#x", 0, "http://example.com/a/b/c?a=1&b=2", URL_OK}, /* WHATWG: http://example.com/a/b/c?a=1&b=2#x */
    {B1, "d?q=%2F%2f", 0, "http://example.com/a/b/d?q=%2F%2F", URL_OK}, /* WHATWG: http://example.com/a/b/d?q=%2F%2f */
    {B1, "%41", 0, "http://example.com/a/b/%41", URL_OK},
    {B1, "d?q='", 0, "http://example.com/a/b/d?q='", URL_OK}, /* WHATWG: http://example.com/a/b/d?q=%27 */
    {B1, "http://h/a/b/../../../../c", 0, "http://h/c", URL_OK},
    {B1, "http://h/%2e%2e/%2e%2e/x", 0, "http://h/x", URL_OK},
    {B1, "http://h/a/..", 0, "http://h/", URL_OK},
    {B1, "http://h/a/./", 0, "http://h/a/", URL_OK},
    {B1, "http://h//a//b", 0, "http://h//a//b", URL_OK},
    {B1, "http://h/a/%2e%2", 0, "http://h/a/%2E%2", URL_OK}, /* WHATWG: http://h/a/%2e%2 */
    {B1, "http://h/?a=%7e#%7e", 0, "http://h/?a=%7E", URL_OK}, /* WHATWG: http://h/?a=%7e#%7e */
    {B1, "#x", K, "http://example.com/a/b/c?q=1#x", URL_OK},
    {B1, "#", K, "http://example.com/a/b/c?q=1#", URL_OK},
    {B1, "d#x", K, "http://example.com/a/b/d#x", URL_OK},
    {B1, "d#a b", K, "http://example.com/a/b/d#a%20b", URL_OK},
    {B1, "d#%7e", K, "http://example.com/a/b/d#%7E", URL_OK}, /* WHATWG: http://example.com/a/b/d#%7e */
    {B1, "d#x#y", K, "http://example.com/a/b/d#x#y", URL_OK},
    {B1, "http://example.com#f", K, "http://example.com/#f", URL_OK},
    {B1, "  #x ", K, "http://example.com/a/b/c?q=1#x", URL_OK},
    {B1, "mailto:a@b.example", A, "mailto:a@b.example", URL_OK},
    {B1, "javascript:void(0)", A, "javascript:void(0)", URL_OK},
    {B1, " JavaScript:alert(1) ", A, "javascript:alert(1)", URL_OK},
    {B1, "data:text/plain,hi there", A, "data:text/plain,hi%20there", URL_OK}, /* WHATWG: data:text/plain,hi there */
    {B1, "tel:+1 555", A, "tel:+1%20555", URL_OK}, /* WHATWG: tel:+1 555 */
    {B1, "ftp://x.example/f", A, "ftp://x.example/f", URL_OK},
    {B1, "a:b", A, "a:b", URL_OK},
    {B1, "mailto:x@y#frag", A, "mailto:x@y#frag", URL_OK},
    {B1, "java\tscript:a\nb", A, "javascript:ab", URL_OK},
    {B1, "#x", A, NULL, URL_FILTERED}, /* WHATWG: http://example.com/a/b/c?q=1#x */
    {B1, "d#x", A, "http://example.com/a/b/d", URL_OK}, /* WHATWG: http://example.com/a/b/d#x */
    {B1, "data:\xc3\xa9\x01", A, "data:%C3%A9", URL_OK},
    {B1, "#x", K | A, "http://example.com/a/b/c?q=1#x", URL_OK},
    {B1, "mailto:a@b#c", K | A, "mailto:a@b#c", URL_OK},
    {B2, "//x.example/p", 0, "https://x.example/p", URL_OK},
    {B2, "http:d", 0, "http://d/", URL_OK},
    {B2, "https:d", 0, "https://secure.example/dir/d", URL_OK},
    {B2, "x", 0, "https://secure.example/dir/x", URL_OK},
    {B2, "http://secure.example:443/", 0, "http://secure.example:443/", URL_OK},
    {B3, "b", 0, "http://[::1]:8080/a/b", URL_OK},
    {B3, "../../z", 0, "http://[::1]:8080/z", URL_OK},
    {B3, "//[::1]/", 0, "http://[::1]/", URL_OK},
    {B4, "y", 0, "http://u:p@h.example/y", URL_OK},
    {B4, "//h2.example/", 0, "http://h2.example/", URL_OK},
    {B5, "x", 0, "http://h.example/x", URL_OK},
    {B5, "?q", 0, "http://h.example/?q", URL_OK},
    {B5, "", 0, "http://h.example/", URL_OK},
    {B5, "#f", 0, NULL, URL_FILTERED}, /* WHATWG: http://h.example/#f */
    {B1, ".//x", 0, "http://example.com/a/b//x", URL_OK},
    {B1, "..//x", 0, "http://example.com/a//x", URL_OK},
    {B1, "d/.//x", 0, "http://example.com/a/b/d//x", URL_OK},
    {B1, "http://a@b@host.example/", 0, "http://a%40b@host.example/", URL_OK},
    {B1, "http://u:p:q@host.example/", 0, "http://u:p%3Aq@host.example/", URL_OK},
    {B1, "http://[x]@host.example/", 0, "http://%5Bx%5D@host.example/", URL_OK},
    {B1, "http://u%3a:p@host.example/", 0, "http://u%3A:p@host.example/", URL_OK}, /* WHATWG: http://u%3a:p@host.example/ */
    /* International names, in their ASCII form. */
    {B1, "http://B\xc3\xbc" "cher.example/", 0, "http://xn--bcher-kva.example/", URL_OK},
    {B1, "http://\xc3\x89XAMPLE.com", 0, "http://xn--xample-9ua.com/", URL_OK},
    {B1, "http://%C3%A9.example/", 0, "http://xn--9ca.example/", URL_OK},
    {B1, "http://%c3%a9.example/p?q", 0, "http://xn--9ca.example/p?q", URL_OK},
    {B1, "http://xn--bcher-kva.example/", 0, "http://xn--bcher-kva.example/", URL_OK},
    {B1, "http://XN--BCHER-KVA.Example/", 0, "http://xn--bcher-kva.example/", URL_OK},
    {B1, "http://xn--a.com/", 0, NULL, -EINVAL},
    {B1, "http://fa\xc3\x9f.de/", 0, "http://xn--fa-hia.de/", URL_OK},
    {B1, "http://\xe4\xbe\x8b\xe3\x81\x88.\xe3\x83\x86\xe3\x82\xb9\xe3\x83\x88/", 0, "http://xn--r8jz45g.xn--zckzah/", URL_OK},
    {B1, "http://\xd0\xbc\xd0\xb8\xd1\x80.\xd1\x80\xd1\x84/", 0, "http://xn--h1ahn.xn--p1ai/", URL_OK},
    {B1, "http://\xe2\x85\xb7.com/", 0, "http://viii.com/", URL_OK},
    {B1, "http://exam\xc2\xadple.com/", 0, "http://example.com/", URL_OK},
    {B1, "http://a\xe3\x80\x82" "b.\xc3\xbc/", 0, "http://a.b.xn--tda/", URL_OK},
    {B1, "http://\xef\xbc\x91\xef\xbc\x92\xef\xbc\x97.0.0.1/", 0, "http://127.0.0.1/", URL_OK},
    {B1, "http://a\xef\xbc\x85" "b.\xc3\xbc/", 0, NULL, -EINVAL},
    {B1, "http://%c3.com/", 0, NULL, -EINVAL},
    {B1, "http://\xc3.com/", 0, NULL, -EINVAL},
    {B1, "http://user@B\xc3\xbc" "cher.example:8080/p", 0, "http://user@xn--bcher-kva.example:8080/p", URL_OK},
    {B1, "http://\xe2\x98\x83.net/", 0, "http://xn--n3h.net/", URL_OK},
    {B1, "//B\xc3\xbc" "cher.example/x", 0, "http://xn--bcher-kva.example/x", URL_OK},
    {B1, "http://a\xe2\x80\x8d" "b.com/", 0, "http://ab.com/", URL_OK}, /* WHATWG: failure; refused by non-transitional UTS #46, the transitional retry drops the joiner */
    {B1, "http://ab--\xc3\xbc.com/", 0, NULL, -EINVAL}, /* WHATWG: http://xn--ab---3ra.com/; libidn2 applies IDNA2008's hyphen rules */
    /* IPv4 addresses in WHATWG's number forms: a host that ends in a number must be one. */
    {B1, "http://0x7f.0.0.1/", 0, "http://127.0.0.1/", URL_OK},
    {B1, "http://1.2.3.4.5/", 0, NULL, -EINVAL},
    {B1, "http://1.2.3/", 0, "http://1.2.0.3/", URL_OK},
    {B1, "http://1.2/", 0, "http://1.0.0.2/", URL_OK},
    {B1, "http://4294967295/", 0, "http://255.255.255.255/", URL_OK},
    {B1, "http://4294967296/", 0, NULL, -EINVAL},
    {B1, "http://0xffffffff/", 0, "http://255.255.255.255/", URL_OK},
    {B1, "http://017700000001/", 0, "http://127.0.0.1/", URL_OK},
    {B1, "http://0300.0250.0.1/", 0, "http://192.168.0.1/", URL_OK},
    {B1, "http://09/", 0, NULL, -EINVAL},
    {B1, "http://0x/", 0, "http://0.0.0.0/", URL_OK},
    {B1, "http://1.2.3.4./", 0, "http://1.2.3.4/", URL_OK},
    {B1, "http://1.2.3.4../", 0, "http://1.2.3.4../", URL_OK},
    {B1, "http://a.1/", 0, NULL, -EINVAL},
    {B1, "http://1.a/", 0, "http://1.a/", URL_OK},
    {B1, "http://256.0.0.1/", 0, NULL, -EINVAL},
    {B1, "http://1.0x1000000/", 0, NULL, -EINVAL},
    {B1, "http://%31%32%37.0.0.1/", 0, "http://127.0.0.1/", URL_OK},
    /* IPv6 addresses, compressed and in lower case. */
    {B1, "http://[0:0::1]/", 0, "http://[::1]/", URL_OK},
    {B1, "http://[1:0:0:0:0:0:0:0]/", 0, "http://[1::]/", URL_OK},
    {B1, "http://[1:0:0:2:0:0:0:3]/", 0, "http://[1:0:0:2::3]/", URL_OK},
    {B1, "http://[0:1:0:1:0:1:0:1]/", 0, "http://[0:1:0:1:0:1:0:1]/", URL_OK},
    {B1, "http://[::]/", 0, "http://[::]/", URL_OK},
    {B1, "http://[::ffff:1.2.3.4]/", 0, "http://[::ffff:102:304]/", URL_OK},
    {B1, "http://[1::02.3.4.5]/", 0, NULL, -EINVAL},
    {B1, "http://[1::2::3]/", 0, NULL, -EINVAL},
    {B1, "http://[1:2:3:4:5:6:7:8:9]/", 0, NULL, -EINVAL},
    {B1, "http://[12345::]/", 0, NULL, -EINVAL},
    {B1, "http://[::1]x/", 0, NULL, -EINVAL},
    {B1, "http://[FFFF::ABCD]:0443/", 0, "http://[ffff::abcd]:443/", URL_OK},
    {B1, "http://[1:2:3:4:5:6:7::]/", 0, "http://[1:2:3:4:5:6:7:0]/", URL_OK},
    /* Forbidden host code points, before or after percent-decoding; ports. */
    {B1, "http://a%zz/", 0, NULL, -EINVAL},
    {B1, "http://a%00b/", 0, NULL, -EINVAL},
    {B1, "http://a%2fb/", 0, NULL, -EINVAL},
    {B1, "http://a]b/", 0, NULL, -EINVAL},
    {B1, "http://a\"b/", 0, NULL, -EINVAL}, /* WHATWG: http://a"b/; a host cannot be escaped */
    {B1, "http://a`b/", 0, NULL, -EINVAL}, /* WHATWG: http://a`b/; a host cannot be escaped */
    {B1, "http://a{b/", 0, NULL, -EINVAL}, /* WHATWG: http://a{b/; a host cannot be escaped */
    {B1, "http://a_b*c/", 0, "http://a_b*c/", URL_OK},
    {B1, "http://a\x7f" "b/", 0, NULL, -EINVAL},
    {B1, "http://a%20b/", 0, NULL, -EINVAL},
    {B1, "http://:80/", 0, NULL, -EINVAL},
    {B1, "http://u@/", 0, NULL, -EINVAL},
    {B1, "http://:p@host/", 0, "http://:p@host/", URL_OK},
    {B1, "http://x:00000000000000000080/", 0, "http://x/", URL_OK},
    {B1, "http://x:99999999999999999999/", 0, NULL, -EINVAL},
    {B1, "http://x: 80/", 0, NULL, -EINVAL},
    /* More resolution. */
    {B1, "http:/\\x/y", 0, "http://x/y", URL_OK},
    {B1, "http:///x", 0, "http://x/", URL_OK},
    {B1, "/\\/x/y", 0, "http://x/y", URL_OK},
    {B1, "a/../..", 0, "http://example.com/a/", URL_OK},
    {B1, "a/./b/.", 0, "http://example.com/a/b/a/b/", URL_OK},
    {B1, "%2e%2e%2e/d", 0, "http://example.com/a/b/%2E%2E%2E/d", URL_OK}, /* WHATWG: http://example.com/a/b/%2e%2e%2e/d */
    {B1, ".../d", 0, "http://example.com/a/b/.../d", URL_OK},
    {B1, "d/..%2f", 0, "http://example.com/a/b/d/..%2F", URL_OK}, /* WHATWG: http://example.com/a/b/d/..%2f */
    {B1, "a/%2e%2E", 0, "http://example.com/a/b/", URL_OK},
    {B1, "d#{}`", 0, "http://example.com/a/b/d", URL_OK}, /* WHATWG: http://example.com/a/b/d#{}%60 */
    {B1, "d#{}`", K, "http://example.com/a/b/d#%7B%7D%60", URL_OK}, /* WHATWG: http://example.com/a/b/d#{}%60 */
    {B1, "http://B\xc3\xbc" "cher.example/#\xc3\xa9", K, "http://xn--bcher-kva.example/#%C3%A9", URL_OK},
    {B1, "?x#y", 0, "http://example.com/a/b/c?x", URL_OK}, /* WHATWG: http://example.com/a/b/c?x#y */
    {B1, "d?#x", 0, "http://example.com/a/b/d?", URL_OK}, /* WHATWG: http://example.com/a/b/d?#x */
    {B1, "d??x", 0, "http://example.com/a/b/d??x", URL_OK},
    {B1, "/?x", 0, "http://example.com/?x", URL_OK},
    {B2, "../../../x", 0, "https://secure.example/x", URL_OK},
    {B2, "?", 0, "https://secure.example/dir/?", URL_OK},
    {B2, "https://Secure.Example:8443/", 0, "https://secure.example:8443/", URL_OK},
    {B3, "?q", 0, "http://[::1]:8080/a/?q", URL_OK},
    {B3, "/", 0, "http://[::1]:8080/", URL_OK},
    {B4, "?q", 0, "http://u:p@h.example/x?q", URL_OK},
    {B4, "http://h.example/", 0, "http://h.example/", URL_OK},
    {B5, "../x/./y/..", 0, "http://h.example/x/", URL_OK},
    {B5, "..", 0, "http://h.example/", URL_OK},
    {B1, "http://\xc3\xbc.com:8080/p", 0, "http://xn--tda.com:8080/p", URL_OK},
    {B1, "http://A.B.C./d", 0, "http://a.b.c./d", URL_OK},
};

/* Text already in the buffer, which every call must leave alone. */
static const char prefix[] = "kept|";

/* The promise of url.h: nothing printed holds white space, a control or a non-ASCII byte. */
static void assert_printable(const char *s, size_t n, const char *what)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c >= 0x7F)
            fail_msg("%s: byte 0x%02x at %zu in \"%s\"", what, c, i, s);
    }
}

static void check_row(const url_base *b, const struct resolve_row *row, size_t index)
{
    struct buf out;
    buf_init(&out);
    assert_int_equal(buf_append_str(&out, prefix), 0);
    int rc = url_resolve(b, row->href, strlen(row->href), row->flags, &out);
    if (rc != row->rc)
        fail_msg("row %zu (%s): rc %d, want %d; got \"%s\"", index, row->href, rc, row->rc,
                 out.data + sizeof prefix - 1);
    assert_memory_equal(out.data, prefix, sizeof prefix - 1);
    const char *got = out.data + sizeof prefix - 1;
    size_t got_len = out.len - (sizeof prefix - 1);
    if (row->expect == NULL) {
        if (got_len != 0)
            fail_msg("row %zu (%s): appended \"%s\", want nothing", index, row->href, got);
    } else {
        if (strcmp(got, row->expect) != 0 || got_len != strlen(row->expect))
            fail_msg("row %zu (%s): \"%s\", want \"%s\"", index, row->href, got, row->expect);
        assert_printable(got, got_len, row->href);
    }
    assert_int_equal(out.data[out.len], '\0');
    buf_finish(&out);
}

static void test_resolve_table(void **state)
{
    (void)state;
    size_t n = sizeof resolve_rows / sizeof resolve_rows[0];
    assert_true(n >= 250);
    for (size_t i = 0; i < n; i++) {
        url_base *b = NULL;
        const char *base = resolve_rows[i].base;
        assert_int_equal(url_base_create(base, strlen(base), &b), 0);
        check_row(b, &resolve_rows[i], i);
        url_base_destroy(b);
    }
}

/* One base serves many links, and a link's result never depends on the one before. */
static void test_resolve_reuses_base(void **state)
{
    (void)state;
    url_base *b = NULL;
    assert_int_equal(url_base_create(B1, strlen(B1), &b), 0);
    for (int round = 0; round < 2; round++) {
        for (size_t i = 0; i < sizeof resolve_rows / sizeof resolve_rows[0]; i++) {
            if (strcmp(resolve_rows[i].base, B1) == 0)
                check_row(b, &resolve_rows[i], i);
        }
    }
    url_base_destroy(b);
}

/* Values with a NUL inside need an explicit length. */
static void test_resolve_embedded_nul(void **state)
{
    (void)state;
    url_base *b = NULL;
    assert_int_equal(url_base_create(B1, strlen(B1), &b), 0);
    struct buf out;
    buf_init(&out);
    assert_int_equal(url_resolve(b, "d\0e?x\0y", 7, 0, &out), URL_OK);
    assert_string_equal(out.data, "http://example.com/a/b/d%00e?x%00y");
    assert_printable(out.data, out.len, "nul");
    buf_clear(&out);
    /* The length, not a NUL, ends the value. */
    assert_int_equal(url_resolve(b, "dxyz", 1, 0, &out), URL_OK);
    assert_string_equal(out.data, "http://example.com/a/b/d");
    buf_clear(&out);
    assert_int_equal(url_resolve(b, "http://a\0b/", 11, 0, &out), -EINVAL);
    assert_int_equal(out.len, 0);
    buf_finish(&out);
    url_base_destroy(b);
}

struct input_row {
    const char *text;
    const char *expect; /* NULL for an error */
    const char *why;    /* the reason given for an error */
};

static const struct input_row input_rows[] = {
    {"http://example.com", "http://example.com/", NULL},
    {"HTTPS://Example.COM:443/a/../b?x#f", "https://example.com/b?x", NULL},
    {"http://example.com:8080/%7e/./x", "http://example.com:8080/%7E/x", NULL},
    {"http://Example.com:80", "http://example.com/", NULL},
    {"https://example.com:80/", "https://example.com:80/", NULL},
    {"http://[::1]/", "http://[::1]/", NULL},
    {"http://[2001:DB8:0:0:0:0:0:1]:8443/x", "http://[2001:db8::1]:8443/x", NULL},
    {"http://user:pw@h.example/", "http://user:pw@h.example/", NULL},
    {"http:example.com", "http://example.com/", NULL},
    {"http:\\\\example.com\\a\\b", "http://example.com/a/b", NULL},
    {"http://h.example/ a b?c d", "http://h.example/%20a%20b?c%20d", NULL},
    {"http://h.example/\xc3\xa9", "http://h.example/%C3%A9", NULL},
    {"http://h.example/%2e%2E/x/%2e", "http://h.example/x/", NULL},
    {"http://h.example?", "http://h.example/?", NULL},
    {"http://EX%41MPLE.com", "http://example.com/", NULL},
    {"  http://example.com/  ", "http://example.com/", NULL},
    {"/relative/path", NULL, "not an absolute http or https URL"},
    {"relative", NULL, "not an absolute http or https URL"},
    {"example.com/page", NULL, "not an absolute http or https URL"},
    {"//example.com/", NULL, "not an absolute http or https URL"},
    {"#frag", NULL, "not an absolute http or https URL"},
    {"", NULL, "not an absolute http or https URL"},
    {"ftp://x", NULL, "not an absolute http or https URL"},
    {"mailto:a@b.example", NULL, "not an absolute http or https URL"},
    {"javascript:alert(1)", NULL, "not an absolute http or https URL"},
    {"file:///etc/passwd", NULL, "not an absolute http or https URL"},
    {"http://", NULL, "URL has no host"},
    {"https:///", NULL, "URL has no host"},
    {"http://[bad", NULL, "bad host name"},
    {"http://a b.com/", NULL, "bad host name"},
    {"http://a|b.com/", NULL, "bad host name"},
    {"http://x:99999/", NULL, "bad port number"},
    {"http://x:8a/", NULL, "bad port number"},
    {"http://\xc3\xa9.example/", "http://xn--9ca.example/", NULL},
    {"http://B\xc3\xbc" "cher.Example/", "http://xn--bcher-kva.example/", NULL},
    {"http://0x7f.1:8080", "http://127.0.0.1:8080/", NULL},
    {"http://[0:0::1]", "http://[::1]/", NULL},
    {"http://x:00000000000000000080/", "http://x/", NULL},
    {"https:example.com/p", "https://example.com/p", NULL},
    {"http:///x", "http://x/", NULL},
    {"http://1.2.3.4.5/", NULL, "bad host name"},
    {"http://xn--a.com/", NULL, "bad host name"},
    {"http://a%zz/", NULL, "bad host name"},
    {"http://a{b/", NULL, "bad host name"},
    {"http://[1::2::3]/", NULL, "bad host name"},
    {"http://u@/", NULL, "URL has no host"},
    {"http://:80/", NULL, "URL has no host"},
    {"http://x:99999999999999999999/", NULL, "bad port number"},
};

static void test_normalize_input_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof input_rows / sizeof input_rows[0]; i++) {
        const struct input_row *row = &input_rows[i];
        struct buf out;
        buf_init(&out);
        assert_int_equal(buf_append_str(&out, prefix), 0);
        const char *why = NULL;
        int rc = url_normalize_input(row->text, strlen(row->text), &out, &why);
        const char *got = out.data + sizeof prefix - 1;
        if (row->expect != NULL) {
            if (rc != 0 || strcmp(got, row->expect) != 0)
                fail_msg("input %zu (%s): rc %d \"%s\" (%s), want \"%s\"", i, row->text, rc, got,
                         rc != 0 ? why : "", row->expect);
            assert_printable(got, strlen(got), row->text);
        } else {
            if (rc >= 0 || out.len != sizeof prefix - 1)
                fail_msg("input %zu (%s): rc %d \"%s\", want an error", i, row->text, rc, got);
            assert_int_equal(rc, -EINVAL);
            assert_non_null(why);
            if (strcmp(why, row->why) != 0)
                fail_msg("input %zu (%s): why \"%s\", want \"%s\"", i, row->text, why, row->why);
        }
        buf_finish(&out);
    }
}

/* True if `href` starts with "http://" or "https://" in any case and with either slash: an
 * absolute URL, whose meaning does not depend on the base. */
static bool is_absolute_http(const char *href)
{
    char head[9];
    size_t k = 0;
    for (const char *p = href; *p != '\0' && k < sizeof head - 1; p++)
        head[k++] = *p == '\\' ? '/' : *p;
    head[k] = '\0';
    return strncasecmp(head, "http://", 7) == 0 || strncasecmp(head, "https://", 8) == 0;
}

/* An absolute URL comes out the same whether it is an input line or a link. */
static void test_input_matches_resolve(void **state)
{
    (void)state;
    size_t checked = 0;
    for (size_t i = 0; i < sizeof resolve_rows / sizeof resolve_rows[0]; i++) {
        const struct resolve_row *row = &resolve_rows[i];
        if (!is_absolute_http(row->href))
            continue;
        url_base *b = NULL;
        assert_int_equal(url_base_create(row->base, strlen(row->base), &b), 0);
        struct buf link, input;
        buf_init(&link);
        buf_init(&input);
        int rc = url_resolve(b, row->href, strlen(row->href), 0, &link);
        const char *why = NULL;
        int irc = url_normalize_input(row->href, strlen(row->href), &input, &why);
        if ((rc == URL_OK) != (irc == 0) ||
            (rc == URL_OK && strcmp(link.data, input.data) != 0))
            fail_msg("row %zu (%s): link rc %d \"%s\", input rc %d \"%s\"", i, row->href, rc,
                     rc == URL_OK ? link.data : "", irc, irc == 0 ? input.data : why);
        buf_finish(&link);
        buf_finish(&input);
        url_base_destroy(b);
        checked++;
    }
    for (size_t i = 0; i < sizeof input_rows / sizeof input_rows[0]; i++) {
        const struct input_row *row = &input_rows[i];
        url_base *b = NULL;
        assert_int_equal(url_base_create(B1, strlen(B1), &b), 0);
        struct buf link;
        buf_init(&link);
        int rc = url_resolve(b, row->text, strlen(row->text), 0, &link);
        if (is_absolute_http(row->text) &&
            (row->expect != NULL ? rc != URL_OK || strcmp(link.data, row->expect) != 0
                                 : rc != -EINVAL))
            fail_msg("input %zu (%s): as a link rc %d \"%s\"", i, row->text, rc,
                     link.data != NULL ? link.data : "");
        buf_finish(&link);
        url_base_destroy(b);
    }
    assert_true(checked >= 100);
}

static void test_base_create_errors(void **state)
{
    (void)state;
    static const char *const bad[] = {"", "relative/path", "mailto:a@b", "ftp://x/", "http://", "http://[::1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        url_base *b = (url_base *)&b; /* must not be written on failure */
        assert_int_equal(url_base_create(bad[i], strlen(bad[i]), &b), -EINVAL);
        assert_ptr_equal(b, (url_base *)&b);
    }
    url_base_destroy(NULL);
}

/* Resolves `href` against `b` and compares with `expect`. */
static void assert_resolves(const url_base *b, const char *href, const char *expect)
{
    struct buf out;
    buf_init(&out);
    assert_int_equal(url_resolve(b, href, strlen(href), 0, &out), URL_OK);
    assert_string_equal(out.data, expect);
    buf_finish(&out);
}

static void test_rebase(void **state)
{
    (void)state;
    url_base *b = NULL;
    const char *start = "http://a.example/x/y";
    assert_int_equal(url_base_create(start, strlen(start), &b), 0);
    assert_resolves(b, "z", "http://a.example/x/z");

    /* A relative <base href> resolves against the current base. */
    assert_int_equal(url_base_rebase(b, "/other/", 7), 0);
    assert_resolves(b, "z", "http://a.example/other/z");
    assert_resolves(b, "", "http://a.example/other/");

    /* Its fragment does not stay in the base; white space and case are cleaned up. */
    const char *next = " \t//B.Example/q/r?s#t ";
    assert_int_equal(url_base_rebase(b, next, strlen(next)), 0);
    assert_resolves(b, "", "http://b.example/q/r?s");
    assert_resolves(b, "../z", "http://b.example/z");

    /* A fragment-only or empty href leaves the base as it was. */
    assert_int_equal(url_base_rebase(b, "#frag", 5), 0);
    assert_resolves(b, "", "http://b.example/q/r?s");
    assert_int_equal(url_base_rebase(b, "", 0), 0);
    assert_resolves(b, "z", "http://b.example/q/z");

    /* Failures leave the base unchanged. */
    static const char *const bad[] = {"mailto:x@y", "javascript:void(0)", "http://[bad", "http://x:99999/",
                                      "//", "http://\xc3\xa9\x80.example/"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(url_base_rebase(b, bad[i], strlen(bad[i])), -EINVAL);
        assert_resolves(b, "z", "http://b.example/q/z");
    }

    /* Another scheme, a port, %2e segments: everything is normalised as a link is. */
    const char *tls = "HTTPS://C.example:8443/a/%2E%2e/b/";
    assert_int_equal(url_base_rebase(b, tls, strlen(tls)), 0);
    assert_resolves(b, "z", "https://c.example:8443/b/z");
    assert_resolves(b, "//d.example/", "https://d.example/");
    assert_resolves(b, "http:z", "http://z/");
    url_base_destroy(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resolve_table),
        cmocka_unit_test(test_resolve_reuses_base),
        cmocka_unit_test(test_resolve_embedded_nul),
        cmocka_unit_test(test_normalize_input_table),
        cmocka_unit_test(test_input_matches_resolve),
        cmocka_unit_test(test_base_create_errors),
        cmocka_unit_test(test_rebase),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
