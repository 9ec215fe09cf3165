/*
 * point_order.h — the orders the query layer sorts points by, in one place so
 * history pages, page tokens and MLflow's sampled answers agree bit for bit.
 * Private to query/.
 *
 *   order           key, compared left to right           used by
 *   --------------  ------------------------------------  ------------------------
 *   engine step     step, timestamp, value bits (uint64)  TALLY_HISTORY_BY_STEP: the
 *                                                         engine iterator's order
 *   time            timestamp, step, value (numeric)      TALLY_HISTORY_BY_TIME,
 *                                                         MLflow get-history(-bulk)
 *   step numeric    step, timestamp, value (numeric)      get-history-bulk-interval
 *
 * "value (numeric)" is MLflow's numeric order made total:
 *   -inf < ... < -0.0 < +0.0 < ... < +inf < NaN,
 * i.e. IEEE-754 totalOrder on non-NaN values (so -0.0 sorts just before +0.0,
 * which compare equal numerically), every NaN after every number (MLflow
 * sorts NaN after real numbers, §4.1), and NaNs among themselves by their
 * bits as uint64. Two values tie only when their bits are equal.
 *
 * Invariants:
 *  (1) Each comparator is a total order on (step, timestamp, value bits):
 *      it returns 0 exactly when the two points are equal bit for bit, so an
 *      exact duplicate is adjacent to its twin after sorting and a last point
 *      (step, ts, value bits) is a unique resume key.
 *  (2) tally__value_rank is monotone in the numeric order above and equal
 *      for two values only if both are NaN (the bits then break the tie).
 */
#ifndef TALLY_QUERY_POINT_ORDER_H
#define TALLY_QUERY_POINT_ORDER_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tally/engine.h"

static inline uint64_t tally__value_bits(double v)
{
    uint64_t b;
    memcpy(&b, &v, 8);
    return b;
}

/* A uint64 that orders values numerically, NaN last (invariant 2). */
static inline uint64_t tally__value_rank(double v)
{
    uint64_t b = tally__value_bits(v);
    if ((b & 0x7FF0000000000000ull) == 0x7FF0000000000000ull && (b & 0x000FFFFFFFFFFFFFull))
        return UINT64_MAX; /* NaN, any sign or payload */
    return (b >> 63) ? ~b : (b | 0x8000000000000000ull);
}

#define TALLY__CMP(a, b) ((a) < (b) ? -1 : (a) > (b))

static inline int tally__value_cmp(double a, double b)
{
    uint64_t ra = tally__value_rank(a), rb = tally__value_rank(b);
    if (ra != rb)
        return TALLY__CMP(ra, rb);
    uint64_t ba = tally__value_bits(a), bb = tally__value_bits(b);
    return TALLY__CMP(ba, bb);
}

/* (step, timestamp, value bits): the engine's order. */
static inline int tally__cmp_engine(const tally_point *a, const tally_point *b)
{
    if (a->step != b->step)
        return TALLY__CMP(a->step, b->step);
    if (a->timestamp_ms != b->timestamp_ms)
        return TALLY__CMP(a->timestamp_ms, b->timestamp_ms);
    uint64_t ba = tally__value_bits(a->value), bb = tally__value_bits(b->value);
    return TALLY__CMP(ba, bb);
}

/* (timestamp, step, numeric value): MLflow's get-history order. */
static inline int tally__cmp_time(const tally_point *a, const tally_point *b)
{
    if (a->timestamp_ms != b->timestamp_ms)
        return TALLY__CMP(a->timestamp_ms, b->timestamp_ms);
    if (a->step != b->step)
        return TALLY__CMP(a->step, b->step);
    return tally__value_cmp(a->value, b->value);
}

/* (step, timestamp, numeric value): MLflow's sampled-history order. */
static inline int tally__cmp_step_numeric(const tally_point *a, const tally_point *b)
{
    if (a->step != b->step)
        return TALLY__CMP(a->step, b->step);
    if (a->timestamp_ms != b->timestamp_ms)
        return TALLY__CMP(a->timestamp_ms, b->timestamp_ms);
    return tally__value_cmp(a->value, b->value);
}

static inline int tally__qsort_time(const void *a, const void *b)
{
    return tally__cmp_time(a, b);
}

static inline int tally__qsort_step_numeric(const void *a, const void *b)
{
    return tally__cmp_step_numeric(a, b);
}

/* Removes exact duplicates (bit-equal points) from a sorted array; returns
 * the new count. Sorted by any comparator above, twins are adjacent. */
static inline size_t tally__dedupe_sorted(tally_point *p, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (k && p[k - 1].step == p[i].step && p[k - 1].timestamp_ms == p[i].timestamp_ms &&
            tally__value_bits(p[k - 1].value) == tally__value_bits(p[i].value))
            continue;
        p[k++] = p[i];
    }
    return k;
}

/* qsort, after a check that the array is not in order already: the common
 * case, since blocks are sealed in step order. */
static inline void tally__sort_unless_sorted(void *base, size_t n, size_t size,
                                             int (*cmp)(const void *, const void *))
{
    const char *p = base;
    for (size_t i = 1; i < n; i++) {
        if (cmp(p + (i - 1) * size, p + i * size) > 0) {
            qsort(base, n, size, cmp);
            return;
        }
    }
}

#endif /* TALLY_QUERY_POINT_ORDER_H */
