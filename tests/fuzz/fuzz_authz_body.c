/*
 * fuzz_authz_body.c — libFuzzer target for authz.c's reading of the
 * resource parameter from a JSON body (tally__authz_body_field), the lookup
 * that decides which run or experiment a request is checked against.
 *
 *   fast == full   for every body, the fast path for large bodies (one SIMD
 *                  count of the names' common prefix, then stop at the first
 *                  top-level match) gives the same answer and value as the
 *                  full top-level scan, whenever the full scan can read the
 *                  body at all (a body it cannot read is refused by the
 *                  handler too). The input is tried as is and padded past
 *                  the fast path's 4 KiB threshold with a leading member.
 *   found values   a found value never holds a NUL and fits its buffer.
 *
 * The first input byte picks the names (run ids, experiment ids, model name).
 * Seeds: tests/fuzz/corpus/fuzz_authz_body/.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "authz.h"

#define CHECK(cond)                                                                           \
    do {                                                                                      \
        if (!(cond))                                                                          \
            abort();                                                                          \
    } while (0)

static const char *const RUN[] = {"run_id", "runId", "run_uuid", "runUuid", NULL};
static const char *const EXP[] = {"experiment_id", "experimentId", NULL};
static const char *const NAME[] = {"name", NULL};

static void compare(const char *body, size_t len, const char *const *names)
{
    char fast[512], full[512];
    int a = tally__authz_body_field(body, len, names, fast, sizeof fast, 0);
    int b = tally__authz_body_field(body, len, names, full, sizeof full, 1);
    if (b == -2)
        return; /* unreadable: the handler refuses it as well */
    CHECK(a == b);
    if (a == 1) {
        CHECK(strcmp(fast, full) == 0);
        CHECK(strlen(fast) < sizeof fast);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const char *const *names = data[0] % 3 == 0 ? RUN : data[0] % 3 == 1 ? EXP : NAME;
    data++;
    size--;
    char *copy = malloc(size + 1);
    if (!copy)
        return 0;
    memcpy(copy, data, size);
    copy[size] = 0;
    compare(copy, size, names);
    /* Padded: {"pad":"xxxx…", + the input after its first byte. */
    size_t pad = 4200, n = 8 + pad + 2 + size;
    char *big = malloc(n + 1);
    if (big && size > 0) {
        size_t o = 0;
        memcpy(big + o, "{\"pad\":\"", 8);
        o += 8;
        memset(big + o, 'x', pad);
        o += pad;
        memcpy(big + o, "\",", 2);
        o += 2;
        memcpy(big + o, copy + 1, size - 1);
        o += size - 1;
        big[o] = 0;
        compare(big, o, names);
    }
    free(big);
    free(copy);
    return 0;
}
