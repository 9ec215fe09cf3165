/*
 * fuzz_registry_source.c — libFuzzer target for the model version source
 * checks (server/registry_source.h), which read untrusted request text.
 *
 *   garbage     the input (as a NUL-terminated copy of exactly its bytes)
 *               through has_dotdot, decode_once, local_path and path_inside:
 *               no crash, no read past the copy; local_path points into it.
 *   stability   if has_dotdot(s) is 0, it is 0 for decode_once(s) too
 *               (invariant (2)): decoding once more cannot uncover a "..".
 *   containment a path is inside itself and inside "/"; path + "/x" is inside
 *               path; "<path>x" is not inside "<path>/" unless path is "/".
 *
 * Seeds: tests/fuzz/corpus/fuzz_registry_source/.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "registry_source.h"

#define CHECK(cond)                                                                           \
    do {                                                                                      \
        if (!(cond))                                                                          \
            abort();                                                                          \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    char *d = malloc(size + 1);
    char *longer = malloc(size + 3);
    if (!s || !d || !longer) {
        free(s);
        free(d);
        free(longer);
        return 0;
    }
    memcpy(s, data, size);
    s[size] = 0;
    size_t n = strlen(s); /* stops at an embedded NUL, as a C string would */

    int bad = tally_registry_source_has_dotdot(s);
    CHECK(bad == 0 || bad == 1);
    int changed = tally_registry_source_decode_once(s, d);
    CHECK(strlen(d) <= n);
    CHECK(changed || strcmp(d, s) == 0);
    if (bad == 0)
        CHECK(tally_registry_source_has_dotdot(d) == 0);

    const char *p = tally_registry_source_local_path(s);
    if (p)
        CHECK(p >= s && p <= s + n);

    CHECK(tally_registry_source_path_inside(s, s));
    if (n && s[0] == '/')
        CHECK(tally_registry_source_path_inside(s, "/"));
    memcpy(longer, s, n);
    memcpy(longer + n, "/x", 3);
    CHECK(tally_registry_source_path_inside(longer, s) || n == 0);
    free(s);
    free(d);
    free(longer);
    return 0;
}
