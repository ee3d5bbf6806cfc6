/* fuzz_check.h: the one assertion the fuzz harnesses use.
 *
 * assert() vanishes under NDEBUG and says little; this one always runs, names the broken
 * invariant, and aborts, which libFuzzer reports as a crash and saves the input for. */
#ifndef AREQ_FUZZ_CHECK_H
#define AREQ_FUZZ_CHECK_H

#include <stdio.h>
#include <stdlib.h>

#define CHECK(cond)                                                                            \
    do {                                                                                       \
        if (!(cond)) {                                                                         \
            fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__, #cond);       \
            abort();                                                                           \
        }                                                                                      \
    } while (0)

#endif
