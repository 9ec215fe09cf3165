/*
 * series.c — the series directory and each series' head buffer.
 *
 * Directory: an open-addressing hash table (linear probing, load <= 1/2)
 * keyed by the 64-bit series id, plus chains by run and by key for
 * enumeration, plus an array in creation order. The names are kept and
 * compared on every lookup by name, so two names hashing to one id are
 * reported as TALLY_ECOLLISION, never merged.
 *
 * Head: three growable columns in arrival order. When it holds
 * block_points points it is sealed: sorted, deduplicated, encoded
 * (block.c) and appended to a segment, and the block is published.
 */
#include <math.h>
#include <string.h>
#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

#include "alloc.h"
#include "block.h"
#include "internal.h"

tally_series_id tally_series_id_of(const char *run_id, size_t run_id_len, const char *key,
                                   size_t key_len)
{
    XXH3_state_t st;
    static const uint8_t zero = 0;
    XXH3_64bits_reset(&st);
    XXH3_64bits_update(&st, run_id, run_id_len);
    XXH3_64bits_update(&st, &zero, 1);
    XXH3_64bits_update(&st, key, key_len);
    return XXH3_64bits_digest(&st);
}

int tally__point_cmp(int64_t s1, int64_t t1, double v1, int64_t s2, int64_t t2, double v2)
{
    if (s1 != s2)
        return s1 < s2 ? -1 : 1;
    if (t1 != t2)
        return t1 < t2 ? -1 : 1;
    uint64_t b1, b2;
    memcpy(&b1, &v1, 8);
    memcpy(&b2, &v2, 8);
    return b1 == b2 ? 0 : (b1 < b2 ? -1 : 1);
}

int tally__dir_init(tally_engine *e)
{
    e->table_cap = 1024;
    e->table = tally__calloc(e->table_cap, sizeof *e->table);
    e->index_cap = 1024;
    e->run_index = tally__calloc(e->index_cap, sizeof *e->run_index);
    e->key_index = tally__calloc(e->index_cap, sizeof *e->key_index);
    e->all_cap = 1024;
    e->all_series = tally__malloc(e->all_cap * sizeof *e->all_series);
    if (!e->table || !e->run_index || !e->key_index || !e->all_series)
        return TALLY_ENOMEM;
    return pthread_rwlock_init(&e->dir_lock, NULL) ? TALLY_ENOMEM : 0;
}

void tally__dir_free(tally_engine *e)
{
    for (size_t i = 0; i < e->n_series; i++) {
        tally__series *s = e->all_series[i];
        pthread_mutex_destroy(&s->mu);
        tally__free(s->run);
        tally__free(s->key);
        tally__free(s->h_steps);
        tally__free(s->h_ts);
        tally__free(s->h_vals);
        for (tally__frozen *f = s->frozen, *next; f; f = next) {
            next = f->next;
            tally__free(f->steps);
            tally__free(f->ts);
            tally__free(f->vals);
            tally__free(f);
        }
        tally__free(s->blocks);
        tally__free(s);
    }
    tally__free(e->table);
    tally__free(e->run_index);
    tally__free(e->key_index);
    tally__free(e->all_series);
    if (e->table)
        pthread_rwlock_destroy(&e->dir_lock);
}

tally__series *tally__dir_find(tally_engine *e, uint64_t id)
{
    size_t mask = e->table_cap - 1;
    for (size_t i = (size_t)id & mask;; i = (i + 1) & mask) {
        tally__series *s = e->table[i];
        if (!s || s->id == id)
            return s;
    }
}

static int table_insert(tally__series **table, size_t cap, tally__series *s)
{
    size_t mask = cap - 1;
    for (size_t i = (size_t)s->id & mask;; i = (i + 1) & mask) {
        if (!table[i]) {
            table[i] = s;
            return 0;
        }
    }
}

static size_t name_hash(const char *p, size_t n) { return (size_t)XXH3_64bits(p, n); }

/* Rebuilds the run and key chains into tables twice as large. */
static int grow_indexes(tally_engine *e)
{
    size_t cap = e->index_cap * 2;
    tally__series **runs = tally__calloc(cap, sizeof *runs);
    tally__series **keys = tally__calloc(cap, sizeof *keys);
    if (!runs || !keys) {
        tally__free(runs);
        tally__free(keys);
        return TALLY_ENOMEM;
    }
    /* Re-chain in creation order, appending at the tails so chains stay ordered. */
    for (size_t i = e->n_series; i-- > 0;) {
        tally__series *s = e->all_series[i];
        size_t r = name_hash(s->run, s->run_len) & (cap - 1);
        size_t k = name_hash(s->key, s->key_len) & (cap - 1);
        s->next_in_run = runs[r];
        runs[r] = s;
        s->next_in_key = keys[k];
        keys[k] = s;
    }
    tally__free(e->run_index);
    tally__free(e->key_index);
    e->run_index = runs;
    e->key_index = keys;
    e->index_cap = cap;
    return 0;
}

/* Appends s at the tail of its chain so enumeration is in creation order. */
static void chain_append(tally__series **slot, tally__series *s, int by_run)
{
    while (*slot)
        slot = by_run ? &(*slot)->next_in_run : &(*slot)->next_in_key;
    *slot = s;
}

static int names_equal(const tally__series *s, const char *run, size_t run_len, const char *key,
                       size_t key_len)
{
    return s->run_len == run_len && s->key_len == key_len && memcmp(s->run, run, run_len) == 0 &&
           memcmp(s->key, key, key_len) == 0;
}

int tally__dir_check_collision(tally_engine *e, const tally_series_batch *b)
{
    uint64_t id = tally_series_id_of(b->run_id, b->run_id_len, b->key, b->key_len);
    pthread_rwlock_rdlock(&e->dir_lock);
    tally__series *s = tally__dir_find(e, id);
    int rc = s && !names_equal(s, b->run_id, b->run_id_len, b->key, b->key_len) ? TALLY_ECOLLISION : 0;
    pthread_rwlock_unlock(&e->dir_lock);
    return rc;
}

static int insert_locked(tally_engine *e, tally__series *s)
{
    if ((e->n_series + 1) * 2 > e->table_cap) {
        size_t cap = e->table_cap * 2;
        tally__series **t = tally__calloc(cap, sizeof *t);
        if (!t)
            return TALLY_ENOMEM;
        for (size_t i = 0; i < e->n_series; i++)
            table_insert(t, cap, e->all_series[i]);
        tally__free(e->table);
        e->table = t;
        e->table_cap = cap;
    }
    if (e->n_series == e->all_cap) {
        tally__series **a = tally__realloc(e->all_series, 2 * e->all_cap * sizeof *a);
        if (!a)
            return TALLY_ENOMEM;
        e->all_series = a;
        e->all_cap *= 2;
    }
    if (e->n_series + 1 > e->index_cap && grow_indexes(e) != 0)
        return TALLY_ENOMEM;
    table_insert(e->table, e->table_cap, s);
    e->all_series[e->n_series++] = s;
    chain_append(&e->run_index[name_hash(s->run, s->run_len) & (e->index_cap - 1)], s, 1);
    chain_append(&e->key_index[name_hash(s->key, s->key_len) & (e->index_cap - 1)], s, 0);
    return 0;
}

int tally__dir_get_or_create(tally_engine *e, const char *run, size_t run_len, const char *key,
                             size_t key_len, tally__series **out)
{
    uint64_t id = tally_series_id_of(run, run_len, key, key_len);
    /* Only the writer creates series, so a shared-lock miss cannot race with
     * another creator; readers may hold the lock shared meanwhile. */
    pthread_rwlock_rdlock(&e->dir_lock);
    tally__series *s = tally__dir_find(e, id);
    pthread_rwlock_unlock(&e->dir_lock);
    if (s) {
        if (!names_equal(s, run, run_len, key, key_len))
            return TALLY_ECOLLISION;
        *out = s;
        return 0;
    }
    s = tally__calloc(1, sizeof *s);
    if (!s)
        return TALLY_ENOMEM;
    s->id = id;
    s->run = tally__strndup(run, run_len);
    s->key = tally__strndup(key, key_len);
    s->run_len = (uint32_t)run_len;
    s->key_len = (uint32_t)key_len;
    s->h_sorted = 1;
    s->min_value = s->max_value = NAN;
    if (!s->run || !s->key || pthread_mutex_init(&s->mu, NULL) != 0) {
        tally__free(s->run);
        tally__free(s->key);
        tally__free(s);
        return TALLY_ENOMEM;
    }
    pthread_rwlock_wrlock(&e->dir_lock);
    int rc = insert_locked(e, s);
    pthread_rwlock_unlock(&e->dir_lock);
    if (rc) {
        pthread_mutex_destroy(&s->mu);
        tally__free(s->run);
        tally__free(s->key);
        tally__free(s);
        return rc;
    }
    *out = s;
    return 0;
}

/* MLflow's "latest": greatest by (step, timestamp, value) with NaN as 0.0. */
static int latest_less(const tally_point *a, int64_t step, int64_t ts, double v)
{
    if (a->step != step)
        return a->step < step;
    if (a->timestamp_ms != ts)
        return a->timestamp_ms < ts;
    double av = isnan(a->value) ? 0.0 : a->value, bv = isnan(v) ? 0.0 : v;
    return av < bv;
}

void tally__series_account(tally__series *s, int64_t step, int64_t ts, double v)
{
    if (s->n_points == 0) {
        s->latest = s->first = (tally_point){step, ts, v};
        s->min_step = s->max_step = step;
        s->min_ts = s->max_ts = ts;
    } else {
        if (latest_less(&s->latest, step, ts, v))
            s->latest = (tally_point){step, ts, v};
        if (step < s->first.step || (step == s->first.step && ts < s->first.timestamp_ms))
            s->first = (tally_point){step, ts, v};
        if (step < s->min_step)
            s->min_step = step;
        if (step > s->max_step)
            s->max_step = step;
        if (ts < s->min_ts)
            s->min_ts = ts;
        if (ts > s->max_ts)
            s->max_ts = ts;
    }
    if (!isnan(v)) {
        if (isnan(s->min_value) || v < s->min_value)
            s->min_value = v;
        if (isnan(s->max_value) || v > s->max_value)
            s->max_value = v;
    }
    s->n_points++;
}

/* Updates the totals and the sortedness of the head with points
 * [from, from + n) of the head (caller holds s->mu). One pass, no calls. */
static void account_range(tally__series *s, uint32_t from, uint32_t n)
{
    const int64_t *st = s->h_steps, *ts = s->h_ts;
    const double *va = s->h_vals;
    uint32_t i = from, end = from + n;
    if (s->n_points == 0 && i < end) {
        tally__series_account(s, st[i], ts[i], va[i]);
        i++;
    }
    int sorted = s->h_sorted;
    int64_t min_step = s->min_step, max_step = s->max_step, min_ts = s->min_ts, max_ts = s->max_ts;
    double min_v = s->min_value, max_v = s->max_value;
    for (; i < end; i++) {
        int64_t a = st[i], t = ts[i];
        double v = va[i];
        if (i > 0 && (a < st[i - 1] || (a == st[i - 1] && t < ts[i - 1])))
            sorted = 0;
        min_step = a < min_step ? a : min_step;
        max_step = a > max_step ? a : max_step;
        min_ts = t < min_ts ? t : min_ts;
        max_ts = t > max_ts ? t : max_ts;
        if (v == v) {
            if (!(v >= min_v))
                min_v = v; /* also replaces a NaN minimum */
            if (!(v <= max_v))
                max_v = v;
        }
        if (latest_less(&s->latest, a, t, v))
            s->latest = (tally_point){a, t, v};
        if (a < s->first.step || (a == s->first.step && t < s->first.timestamp_ms))
            s->first = (tally_point){a, t, v};
        s->n_points++;
    }
    s->h_sorted = sorted;
    s->min_step = min_step;
    s->max_step = max_step;
    s->min_ts = min_ts;
    s->max_ts = max_ts;
    s->min_value = min_v;
    s->max_value = max_v;
}

static int head_reserve(tally_engine *e, tally__series *s, uint32_t need)
{
    if (need <= s->h_cap)
        return 0;
    /* A series that already filled a head will likely fill the next one. */
    uint32_t cap = s->h_cap ? s->h_cap : (s->n_blocks || s->frozen ? e->opt.block_points : 64);
    while (cap < need)
        cap *= 2;
    int64_t *st = tally__realloc(s->h_steps, (size_t)cap * 8);
    if (st)
        s->h_steps = st;
    int64_t *ts = tally__realloc(s->h_ts, (size_t)cap * 8);
    if (ts)
        s->h_ts = ts;
    double *va = tally__realloc(s->h_vals, (size_t)cap * 8);
    if (va)
        s->h_vals = va;
    if (!st || !ts || !va)
        return TALLY_ENOMEM;
    atomic_fetch_add(&e->memory_bytes, (uint64_t)(cap - s->h_cap) * 24);
    atomic_fetch_add(&e->head_bytes, (uint64_t)(cap - s->h_cap) * 24);
    s->h_cap = cap;
    return 0;
}

int tally__series_append(tally_engine *e, tally__series *s, const tally_series_batch *b,
                         uint64_t wal_number)
{
    uint32_t done = 0, block_points = e->opt.block_points;
    while (done < b->n_points) {
        /* A read-only engine cannot seal: its heads simply grow. */
        uint32_t room = e->opt.read_only ? UINT32_MAX - s->h_n : block_points - s->h_n;
        uint32_t n = b->n_points - done < room ? b->n_points - done : room;
        pthread_mutex_lock(&s->mu);
        int rc = head_reserve(e, s, s->h_n + n);
        if (rc) {
            pthread_mutex_unlock(&s->mu);
            return rc;
        }
        const uint8_t *steps = (const uint8_t *)b->steps + 8ull * done;
        const uint8_t *tss = (const uint8_t *)b->timestamps_ms + 8ull * done;
        const uint8_t *vals = (const uint8_t *)b->values + 8ull * done;
        memcpy(s->h_steps + s->h_n, steps, 8ull * n);
        memcpy(s->h_ts + s->h_n, tss, 8ull * n);
        memcpy(s->h_vals + s->h_n, vals, 8ull * n);
        account_range(s, s->h_n, n);
        if (s->h_n == 0)
            s->h_oldest_wal = wal_number;
        s->h_n += n;
        pthread_mutex_unlock(&s->mu);
        atomic_fetch_add(&e->n_head_points, n);
        atomic_fetch_add(&e->n_points_total, n);
        done += n;
        if (s->h_n >= block_points && !e->opt.read_only) {
            rc = tally__series_freeze(e, s);
            if (rc)
                return rc;
        }
    }
    return 0;
}

int tally__series_add_block(tally__series *s, const tally__block_ref *ref)
{
    if (s->n_blocks == s->blocks_cap) {
        uint32_t cap = s->blocks_cap ? s->blocks_cap * 2 : 8;
        tally__block_ref *b = tally__realloc(s->blocks, (size_t)cap * sizeof *b);
        if (!b)
            return TALLY_ENOMEM;
        s->blocks = b;
        s->blocks_cap = cap;
    }
    s->blocks[s->n_blocks++] = *ref;
    return 0;
}

int tally__series_freeze(tally_engine *e, tally__series *s)
{
    if (s->h_n == 0)
        return 0;
    tally__frozen *f = tally__calloc(1, sizeof *f);
    if (!f)
        return TALLY_ENOMEM;
    pthread_mutex_lock(&s->mu);
    f->steps = s->h_steps;
    f->ts = s->h_ts;
    f->vals = s->h_vals;
    f->n = s->h_n;
    f->cap = s->h_cap;
    tally__frozen **tail = &s->frozen;
    while (*tail)
        tail = &(*tail)->next;
    *tail = f;
    atomic_fetch_sub(&e->head_bytes, (uint64_t)s->h_cap * 24);
    s->h_steps = s->h_ts = NULL;
    s->h_vals = NULL;
    s->h_n = s->h_cap = 0;
    s->h_sorted = 1;
    s->h_oldest_wal = 0;
    pthread_mutex_unlock(&s->mu);
    tally__sealer_enqueue(e, s);
    return 0;
}

int tally__series_seal_frozen(tally_engine *e, tally__series *s)
{
    pthread_mutex_lock(&s->mu);
    tally__frozen *f = s->frozen;
    pthread_mutex_unlock(&s->mu);
    if (!f)
        return 1;
    /* f is immutable and only this thread removes it; readers may copy it meanwhile. */
    uint32_t n = f->n;
    memcpy(e->seal_steps, f->steps, 8ull * n);
    memcpy(e->seal_ts, f->ts, 8ull * n);
    memcpy(e->seal_vals, f->vals, 8ull * n);
    uint32_t kept = tally__block_sort_points(e->seal_steps, e->seal_ts, e->seal_vals, n);
    size_t len = tally__block_encode(s->id, e->seal_steps, e->seal_ts, e->seal_vals, kept,
                                     e->seal_out, e->seal_scratch);
    tally__block_ref ref;
    tally_block_summary sum;
    uint32_t blen;
    uint64_t sid;
    int rc = tally__block_header(e->seal_out, e->seal_out + len, &sum, &blen, &sid);
    if (rc == 0)
        rc = tally__segment_append(e, e->seal_out, (uint32_t)len, &ref);
    if (rc)
        return rc;
    ref.range = (tally_block_range){sum.n_points, sum.flags, sum.min_step, sum.max_step,
                                    sum.min_timestamp_ms, sum.max_timestamp_ms};
    /* Written from memory just now: its body needs no checksum pass to be read. */
    tally__segment_set_verified(tally__segment_get(e, ref.segment), ref.offset);
    pthread_mutex_lock(&s->mu);
    rc = tally__series_add_block(s, &ref);
    if (rc == 0) {
        s->frozen = f->next;
        s->n_points -= n - kept; /* exact duplicates collapsed by the encoder */
    }
    pthread_mutex_unlock(&s->mu);
    if (rc)
        return rc;
    atomic_fetch_sub(&e->memory_bytes, (uint64_t)f->cap * 24);
    tally__free(f->steps);
    tally__free(f->ts);
    tally__free(f->vals);
    tally__free(f);
    atomic_fetch_sub(&e->n_head_points, n);
    atomic_fetch_sub(&e->n_points_total, n - kept);
    atomic_fetch_add(&e->n_blocks_total, 1);
    return 0;
}
