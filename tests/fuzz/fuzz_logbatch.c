/*
 * fuzz_logbatch.c — libFuzzer target for log-batch's parsers and validator
 * (server/logbatch.c, the general one over jsmn tokens, and
 * server/logbatch_fast.c, one pass for the common shape).
 *
 * The input is a request body. Parsing must never crash or read outside it
 * (a private copy of exactly its size, not NUL-terminated), and:
 *  - a rejected body leaves a message; out-of-memory is the only other
 *    failure;
 *  - if the server's strict JSON parser (json_in.c, RFC 8259) accepts the
 *    body, logbatch must not call it malformed JSON (the syntax check over
 *    jsmn's tokens is at least as permissive as the grammar);
 *  - an accepted batch obeys every rule it claims to check: counts within
 *    MLflow's limits, the run id rule, every series' key passes the key
 *    rule, the series hold exactly n_metrics points with no key twice,
 *    params have distinct keys;
 *  - the server's parse (the fast parser, then the general one when it
 *    declines) and the general parser alone give the same answer: return
 *    code, message and every field of the result (logbatch_same.h);
 *  - parsing the same bytes again with the same (warm) state gives the same
 *    answer: scratch reuse does not leak between requests.
 *
 * Seeds: tests/fuzz/corpus/fuzz_logbatch/ (generated, not committed).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json_in.h"
#include "logbatch_internal.h"
#include "logbatch_same.h"

#define CHECK(cond)                                                                           \
    do {                                                                                      \
        if (!(cond))                                                                          \
            abort();                                                                          \
    } while (0)

static tally_logbatch lb;         /* kept warm across inputs, as a worker thread's is */
static tally_logbatch lb_general; /* the general parser alone, as warm */
static int lb_ready;

static void check_result(const tally_logbatch *b)
{
    CHECK(b->n_metrics <= TALLY_LB_MAX_METRICS && b->n_params <= TALLY_LB_MAX_PARAMS &&
          b->n_tags <= TALLY_LB_MAX_TAGS &&
          b->n_metrics + b->n_params + b->n_tags <= TALLY_LB_MAX_TOTAL);
    CHECK(b->run_id && strlen(b->run_id) == b->run_id_len && b->run_id_len >= 1);
    char msg[512];
    size_t pts = 0;
    for (size_t i = 0; i < b->n_series; i++) {
        const tally_series_batch *s = &b->series[i];
        CHECK(s->run_id == b->run_id && s->n_points >= 1);
        CHECK(tally__key_check(s->key, s->key_len, "Metric", "key", msg, sizeof msg) == 0);
        for (size_t j = 0; j < i; j++)
            CHECK(!(b->series[j].key_len == s->key_len &&
                    memcmp(b->series[j].key, s->key, s->key_len) == 0));
        for (uint32_t k = 0; k < s->n_points; k++)
            CHECK(s->timestamps_ms[k] >= 0);
        pts += s->n_points;
    }
    CHECK(pts == b->n_metrics);
    for (size_t i = 0; i < b->n_params; i++) {
        CHECK(tally__key_check(b->params[i].key, strlen(b->params[i].key), "Param", "key", msg,
                               sizeof msg) == 0);
        for (size_t j = 0; j < i; j++)
            CHECK(strcmp(b->params[i].key, b->params[j].key) != 0);
    }
    for (size_t i = 0; i < b->n_tags; i++)
        CHECK(tally__key_check(b->tags[i].key, strlen(b->tags[i].key), "Tag", "key", msg,
                               sizeof msg) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!lb_ready) {
        tally_logbatch_init(&lb);
        tally_logbatch_init(&lb_general);
        lb_ready = 1;
    }
    char *copy = malloc(size ? size : 1);
    if (!copy)
        return 0;
    memcpy(copy, data, size);
    int rc = tally_logbatch_parse(&lb, copy, size);
    CHECK(rc == 0 || rc == -1 || rc == TALLY_ENOMEM);
    if (rc == -1)
        CHECK(lb.message[0] != 0);
    if (rc == 0)
        check_result(&lb);
    int rc_general = tally__logbatch_parse_general(&lb_general, copy, size);
    CHECK(lb_same(rc, &lb, rc_general, &lb_general));
    tally_logbatch_trim(&lb_general);

    /* Differential: valid JSON per json_in is never "not valid JSON". */
    tally_json_arena *a = tally_json_arena_new(64u << 20);
    int exempt = size >= 3 && memcmp(copy, "\xEF\xBB\xBF", 3) == 0; /* BOM: the handler strips it */
    for (size_t i = 0; i < size && !exempt; i++) {
        if (copy[i] == ' ' || copy[i] == '\t' || copy[i] == '\n' || copy[i] == '\r')
            continue;
        exempt = copy[i] == '"'; /* double-encoded: the inner document may be bad */
        break;
    }
    if (a && size > 0 && !exempt) {
        tally_json_error err;
        if (tally_json_parse(a, copy, size, &err) && rc == -1)
            CHECK(strcmp(lb.message, "Malformed request: the body is not valid JSON") != 0);
    }
    tally_json_arena_free(a);

    /* Same bytes, warm state: same answer. */
    char first[sizeof lb.message];
    memcpy(first, lb.message, sizeof first);
    size_t n_metrics = lb.n_metrics, n_series = lb.n_series;
    int rc2 = tally_logbatch_parse(&lb, copy, size);
    CHECK(rc2 == rc);
    if (rc == -1)
        CHECK(strcmp(first, lb.message) == 0);
    if (rc == 0)
        CHECK(lb.n_metrics == n_metrics && lb.n_series == n_series);
    tally_logbatch_trim(&lb);
    free(copy);
    return 0;
}
