/*
 * fuzz_artifact_path.c — libFuzzer target for the artifact path checks
 * (server/artifact_path.c, mlflow-rest-api.md §4.8), the first line of
 * defence of every artifact endpoint.
 *
 *   the input, cut at its first NUL, is a client path: when
 *   tally_artifact_path_check accepts it, the normal form must be safe —
 *   no ".." or "." segment, no empty segment, no leading or trailing '/',
 *   no '\\', '#' or NUL — and checking it again must accept it unchanged
 *   (the check is idempotent, so no second decoding can turn it unsafe).
 *   The same input as the tail of a mlflow-artifacts: URI through
 *   tally_artifact_uri_rel must give a path with the same properties.
 *
 * Seeds: tests/fuzz/corpus/fuzz_artifact_path/.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "artifact_path.h"

#define CHECK(cond)                                                                           \
    do {                                                                                      \
        if (!(cond))                                                                          \
            abort();                                                                          \
    } while (0)

static void check_safe(const char *p)
{
    size_t n = strlen(p);
    CHECK(!strchr(p, '\\') && !strchr(p, '#'));
    if (n == 0)
        return;
    CHECK(p[0] != '/' && p[n - 1] != '/');
    CHECK(!strstr(p, "//"));
    const char *seg = p;
    for (;;) {
        const char *slash = strchr(seg, '/');
        size_t len = slash ? (size_t)(slash - seg) : strlen(seg);
        CHECK(len > 0);
        CHECK(!(len == 2 && seg[0] == '.' && seg[1] == '.'));
        CHECK(!(len == 1 && seg[0] == '.'));
        if (!slash)
            break;
        seg = slash + 1;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *in = malloc(size + 1);
    if (!in)
        return 0;
    memcpy(in, data, size);
    in[size] = 0;
    char out[4096], again[4096];
    if (tally_artifact_path_check(in, out, sizeof out) == 0) {
        check_safe(out);
        CHECK(tally_artifact_path_check(out, again, sizeof again) == 0);
        CHECK(strcmp(out, again) == 0);
    }
    /* As a URI: the bytes before the first '|' are the URI's path, the rest
     * the relative path (a fresh copy, NUL-terminated). */
    char *bar = strchr(in, '|');
    char uri[4200];
    const char *rel = "";
    if (bar) {
        *bar = 0;
        rel = bar + 1;
    }
    snprintf(uri, sizeof uri, "mlflow-artifacts:%s", in);
    char joined[8192];
    if (tally_artifact_uri_rel(uri, rel, joined, sizeof joined) == 0)
        check_safe(joined);
    free(in);
    return 0;
}
