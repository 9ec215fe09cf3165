/*
 * logbatch_same.h — for tests: whether two parses of log-batch bodies gave
 * the same answer (return code, message, and on success every field of the
 * result: run id, series with their columns bit for bit, params, tags).
 * Shared by tests/unit/test_logbatch.c and tests/fuzz/fuzz_logbatch.c,
 * which compare the fast parser against the general one.
 */
#ifndef TALLY_TESTS_LOGBATCH_SAME_H
#define TALLY_TESTS_LOGBATCH_SAME_H

#include <string.h>

#include "logbatch.h"

static int lb_same_kvs(const tally_kv *a, const tally_kv *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(a[i].key, b[i].key) != 0 || strcmp(a[i].value, b[i].value) != 0)
            return 0;
    return 1;
}

/* 1 when rc_a with a and rc_b with b are the same answer. */
static int lb_same(int rc_a, const tally_logbatch *a, int rc_b, const tally_logbatch *b)
{
    if (rc_a != rc_b)
        return 0;
    if (rc_a != 0)
        return rc_a != -1 || strcmp(a->message, b->message) == 0;
    if (a->run_id_len != b->run_id_len || strcmp(a->run_id, b->run_id) != 0 ||
        a->n_metrics != b->n_metrics || a->n_series != b->n_series ||
        a->n_params != b->n_params || a->n_tags != b->n_tags)
        return 0;
    for (size_t i = 0; i < a->n_series; i++) {
        const tally_series_batch *x = &a->series[i], *y = &b->series[i];
        if (x->key_len != y->key_len || memcmp(x->key, y->key, x->key_len) != 0 ||
            x->n_points != y->n_points || x->run_id_len != y->run_id_len ||
            memcmp(x->run_id, y->run_id, x->run_id_len) != 0)
            return 0;
        size_t n = x->n_points;
        if (memcmp(x->steps, y->steps, n * sizeof *x->steps) != 0 ||
            memcmp(x->timestamps_ms, y->timestamps_ms, n * sizeof *x->timestamps_ms) != 0 ||
            memcmp(x->values, y->values, n * sizeof *x->values) != 0)
            return 0;
    }
    return lb_same_kvs(a->params, b->params, a->n_params) &&
           lb_same_kvs(a->tags, b->tags, a->n_tags);
}

#endif /* TALLY_TESTS_LOGBATCH_SAME_H */
