/*
 * appender.c — per-point appends on top of tally_engine_append. Points are
 * grouped per series in a small open-addressing table of growable columns
 * and sent as one batch when flush_points are buffered or on flush.
 * Invariant: after a flush returns (success or error) the appender is empty.
 */
#include <string.h>
#include <xxhash.h>

#include "alloc.h"
#include "internal.h"

typedef struct app_series {
    uint64_t hash;       /* of run, 0, key */
    char *run, *key;
    size_t run_len, key_len;
    int64_t *steps, *ts; /* cap entries each */
    double *vals;
    uint32_t n, cap;
} app_series;

struct tally_appender {
    tally_engine *e;
    uint32_t flush_points;
    app_series *slots;      /* open addressing, slot_cap entries */
    size_t slot_cap, n_used;
    uint32_t n_buffered;
    tally_series_batch *batch; /* scratch for flush */
    size_t batch_cap;
};

int tally_appender_new(tally_engine *e, uint32_t flush_points, tally_appender **out)
{
    if (!e || !out)
        return TALLY_EINVAL;
    tally_appender *a = tally__calloc(1, sizeof *a);
    if (!a)
        return TALLY_ENOMEM;
    a->e = e;
    a->flush_points = flush_points ? flush_points : 65536;
    a->slot_cap = 64;
    a->slots = tally__calloc(a->slot_cap, sizeof *a->slots);
    if (!a->slots) {
        tally__free(a);
        return TALLY_ENOMEM;
    }
    *out = a;
    return 0;
}

static void free_slots(app_series *slots, size_t cap)
{
    for (size_t i = 0; i < cap; i++) {
        tally__free(slots[i].run);
        tally__free(slots[i].key);
        tally__free(slots[i].steps);
        tally__free(slots[i].ts);
        tally__free(slots[i].vals);
    }
    tally__free(slots);
}

void tally_appender_free(tally_appender *a)
{
    if (!a)
        return;
    free_slots(a->slots, a->slot_cap);
    tally__free(a->batch);
    tally__free(a);
}

static app_series *slot_for(tally_appender *a, uint64_t h, const char *run, size_t run_len,
                            const char *key, size_t key_len)
{
    size_t mask = a->slot_cap - 1;
    for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
        app_series *s = &a->slots[i];
        if (!s->run)
            return s;
        if (s->hash == h && s->run_len == run_len && s->key_len == key_len &&
            memcmp(s->run, run, run_len) == 0 && memcmp(s->key, key, key_len) == 0)
            return s;
    }
}

static int grow_slots(tally_appender *a)
{
    size_t cap = a->slot_cap * 2;
    app_series *ns = tally__calloc(cap, sizeof *ns);
    if (!ns)
        return TALLY_ENOMEM;
    for (size_t i = 0; i < a->slot_cap; i++) {
        app_series *s = &a->slots[i];
        if (!s->run)
            continue;
        for (size_t j = (size_t)s->hash & (cap - 1);; j = (j + 1) & (cap - 1)) {
            if (!ns[j].run) {
                ns[j] = *s;
                break;
            }
        }
    }
    tally__free(a->slots);
    a->slots = ns;
    a->slot_cap = cap;
    return 0;
}

int tally_appender_add(tally_appender *a, const char *run_id, size_t run_id_len, const char *key,
                       size_t key_len, int64_t step, int64_t timestamp_ms, double value)
{
    if (!a || !run_id || !key || !run_id_len || !key_len || run_id_len > 1024 || key_len > 1024)
        return TALLY_EINVAL;
    uint64_t h = tally_series_id_of(run_id, run_id_len, key, key_len);
    app_series *s = slot_for(a, h, run_id, run_id_len, key, key_len);
    if (!s->run) {
        if ((a->n_used + 1) * 2 > a->slot_cap) {
            if (grow_slots(a))
                return TALLY_ENOMEM;
            s = slot_for(a, h, run_id, run_id_len, key, key_len);
        }
        s->run = tally__strndup(run_id, run_id_len);
        s->key = tally__strndup(key, key_len);
        if (!s->run || !s->key) {
            tally__free(s->run);
            tally__free(s->key);
            s->run = s->key = NULL;
            return TALLY_ENOMEM;
        }
        s->hash = h;
        s->run_len = run_id_len;
        s->key_len = key_len;
        a->n_used++;
    }
    if (s->n == s->cap) {
        uint32_t cap = s->cap ? s->cap * 2 : 256;
        int64_t *st = tally__realloc(s->steps, (size_t)cap * 8);
        if (st)
            s->steps = st;
        int64_t *ts = tally__realloc(s->ts, (size_t)cap * 8);
        if (ts)
            s->ts = ts;
        double *va = tally__realloc(s->vals, (size_t)cap * 8);
        if (va)
            s->vals = va;
        if (!st || !ts || !va)
            return TALLY_ENOMEM;
        s->cap = cap;
    }
    s->steps[s->n] = step;
    s->ts[s->n] = timestamp_ms;
    s->vals[s->n] = value;
    s->n++;
    if (++a->n_buffered >= a->flush_points)
        return tally_appender_flush(a);
    return 0;
}

int tally_appender_flush(tally_appender *a)
{
    if (!a)
        return TALLY_EINVAL;
    if (a->n_buffered == 0)
        return 0;
    if (a->batch_cap < a->n_used) {
        tally_series_batch *b = tally__realloc(a->batch, a->n_used * sizeof *b);
        if (!b)
            return TALLY_ENOMEM;
        a->batch = b;
        a->batch_cap = a->n_used;
    }
    size_t nb = 0;
    for (size_t i = 0; i < a->slot_cap; i++) {
        app_series *s = &a->slots[i];
        if (!s->run || s->n == 0)
            continue;
        a->batch[nb++] = (tally_series_batch){s->run, s->run_len, s->key, s->key_len, s->n,
                                              s->steps, s->ts, s->vals};
    }
    int rc = tally_engine_append(a->e, a->batch, nb);
    for (size_t i = 0; i < a->slot_cap; i++)
        a->slots[i].n = 0;
    a->n_buffered = 0;
    /* Forget series after a large flush so an appender over many runs stays small. */
    if (a->n_used > 4096) {
        free_slots(a->slots, a->slot_cap);
        a->slot_cap = 64;
        a->n_used = 0;
        a->slots = tally__calloc(a->slot_cap, sizeof *a->slots);
        if (!a->slots)
            return TALLY_ENOMEM;
    }
    return rc;
}
