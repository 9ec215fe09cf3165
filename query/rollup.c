/*
 * rollup.c — the cached upper levels of the rollup pyramid (rollup.h): a
 * process-wide table of per-series entries built from block headers, the
 * lazily resolved extreme points of each block, and per-axis pyramids of
 * tally__rnode over 16^k blocks. Invariants (1)-(5) are rollup.h's.
 *
 *   acquire(e, id, snap) --lock--> find (e, id) --unlock--> check block 0 and
 *       block m-1 against the entry (2) --stale--> build from headers
 *                                       --fewer blocks--> extend (1)
 *                                       --ok--> hit
 *   build/extend --lock--> replace in table, evict LRU past the budget (5)
 *
 * Invariants of this file (numbers continue rollup.h's):
 *  (6) The table lock is never held across a read of the mmap (a header read
 *      may fault in a page from disk): lookups copy a referenced pointer out
 *      and validate after unlocking.
 *  (7) The table holds one reference on each entry it lists; an entry leaves
 *      the table at most once (in_table), so that reference drops once.
 *  (8) table_bytes is the sum of the listed entries' bytes; retained_bytes
 *      the sum of the bytes of entries that left the table (replaced,
 *      evicted, cleared) but are still referenced by a reader. An entry is
 *      freed by the release of its last reference, never later.
 */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "rollup.h"

#define TABLE_BUCKETS 4096u /* hash buckets, a power of two */

struct tally__rollup {
    _Atomic uint32_t refs;        /* the table's (7) plus one per reader */
    tally_engine *e;              /* engine the entry describes (identity only) */
    tally_series_id id;           /* series */
    uint32_t n_blocks;            /* blocks described (1) */
    tally_block_summary *blocks;  /* n_blocks header summaries, seal order */
    tally_point *ext;             /* 2 * n_blocks: min point, max point (3) */
    _Atomic uint8_t *have_ext;    /* n_blocks flags: ext resolved (3) */
    pthread_mutex_t mu;           /* serialises resolving extremes */
    _Atomic(tally__pyramid *) pyr[2]; /* per tally__axis, published by CAS (3) */
    _Atomic(tally__rchunk *) *chunks; /* n_blocks: chunk records or NULL, published by CAS (3) */
    size_t bytes;                 /* memory charged to the budget; table lock once listed */
    uint64_t last_use;            /* LRU clock value; table lock */
    int in_table;                 /* listed in the table; table lock (7) */
    struct tally__rollup *next;   /* hash chain; table lock */
};

static pthread_mutex_t table_mu = PTHREAD_MUTEX_INITIALIZER;
static tally__rollup *table[TABLE_BUCKETS]; /* table lock */
static uint64_t table_bytes, table_entries, use_clock, n_hits, n_builds, n_evictions; /* table lock */
static uint64_t table_budget = TALLY__ROLLUP_BUDGET;                       /* table lock */
static _Atomic uint64_t retained_bytes; /* (8): unlisted entries not yet freed */

static size_t bucket_of(const tally_engine *e, tally_series_id id)
{
    uint64_t h = id ^ ((uint64_t)(uintptr_t)e * 0x9E3779B97F4A7C15ull);
    h ^= h >> 29;
    return (size_t)(h & (TABLE_BUCKETS - 1));
}

/* --- entries -------------------------------------------------------------- */

static void pyramid_free(tally__pyramid *p)
{
    if (!p)
        return;
    tally__free(p->order);
    tally__free(p->pos_of);
    for (uint32_t k = 0; k < p->n_levels; k++)
        tally__free(p->level[k]);
    tally__free(p);
}

static void entry_free(tally__rollup *r)
{
    tally__free(r->blocks);
    tally__free(r->ext);
    tally__free((void *)r->have_ext);
    if (r->chunks) {
        for (uint32_t i = 0; i < r->n_blocks; i++)
            tally__free(atomic_load(&r->chunks[i]));
        tally__free((void *)r->chunks);
    }
    for (int a = 0; a < 2; a++)
        pyramid_free(atomic_load(&r->pyr[a]));
    pthread_mutex_destroy(&r->mu);
    tally__free(r);
}

void tally__rollup_release(tally__rollup *r)
{
    if (r && atomic_fetch_sub_explicit(&r->refs, 1, memory_order_acq_rel) == 1) {
        /* Every entry is listed before any reader sees it, and unlisted
         * before its last reference drops (7), so it is counted in
         * retained_bytes now (8). r->bytes no longer changes: no one else
         * holds r. */
        atomic_fetch_sub_explicit(&retained_bytes, r->bytes, memory_order_relaxed);
        entry_free(r);
    }
}

/* Removes r from the table (table lock held) and drops the table's reference. */
static void unlist(tally__rollup *r)
{
    if (!r->in_table)
        return;
    tally__rollup **pp = &table[bucket_of(r->e, r->id)];
    while (*pp && *pp != r)
        pp = &(*pp)->next;
    if (*pp)
        *pp = r->next;
    r->in_table = 0;
    table_bytes -= r->bytes;
    table_entries--;
    atomic_fetch_add_explicit(&retained_bytes, r->bytes, memory_order_relaxed);
    tally__rollup_release(r);
}

static int same_summary(const tally_block_summary *a, const tally_block_summary *b)
{
    return a->n_points == b->n_points && a->n_chunks == b->n_chunks && a->flags == b->flags &&
           a->n_nan == b->n_nan && a->min_step == b->min_step && a->max_step == b->max_step &&
           a->min_timestamp_ms == b->min_timestamp_ms &&
           a->max_timestamp_ms == b->max_timestamp_ms &&
           memcmp(&a->min_value, &b->min_value, 8) == 0 &&
           memcmp(&a->max_value, &b->max_value, 8) == 0 && memcmp(&a->sum, &b->sum, 8) == 0 &&
           a->first.timestamp_ms == b->first.timestamp_ms &&
           memcmp(&a->first.value, &b->first.value, 8) == 0 &&
           a->last.timestamp_ms == b->last.timestamp_ms &&
           memcmp(&a->last.value, &b->last.value, 8) == 0 && a->segment == b->segment &&
           a->offset == b->offset;
}

/* Invariant (2): does r describe the first m blocks of s? */
static int entry_matches(const tally__rollup *r, const tally_snapshot *s, uint32_t m, int *rc)
{
    uint32_t probe[2] = {0, m - 1};
    for (int k = 0; k < (m > 1 ? 2 : 1); k++) {
        tally_block_summary b;
        *rc = tally_snapshot_block(s, probe[k], &b);
        if (*rc)
            return 0;
        if (!same_summary(&b, &r->blocks[probe[k]]))
            return 0;
    }
    return 1;
}

/* A new entry of the n blocks of s, copying what old (which matches s's
 * first old->n_blocks blocks, or is NULL) already knows. */
static int entry_build(tally_engine *e, tally_series_id id, const tally_snapshot *s, uint32_t n,
                       const tally__rollup *old, tally__rollup **out)
{
    tally__rollup *r = tally__calloc(1, sizeof *r);
    if (!r)
        return TALLY_ENOMEM;
    size_t nn = n ? n : 1;
    r->blocks = tally__malloc(nn * sizeof *r->blocks);
    r->ext = tally__malloc(2 * nn * sizeof *r->ext);
    r->have_ext = tally__calloc(nn, sizeof *r->have_ext);
    r->chunks = tally__malloc(nn * sizeof *r->chunks);
    pthread_mutex_init(&r->mu, NULL);
    if (!r->blocks || !r->ext || !r->have_ext || !r->chunks) {
        tally__free((void *)r->chunks);
        r->chunks = NULL;
        entry_free(r);
        return TALLY_ENOMEM;
    }
    for (uint32_t i = 0; i < n; i++)
        atomic_init(&r->chunks[i], NULL);
    atomic_init(&r->refs, 1);
    r->e = e;
    r->id = id;
    r->n_blocks = n;
    size_t chunk_bytes = 0;
    uint32_t from = 0;
    if (old) {
        from = old->n_blocks < n ? old->n_blocks : n;
        memcpy(r->blocks, old->blocks, (size_t)from * sizeof *r->blocks);
        for (uint32_t i = 0; i < from; i++) {
            if (atomic_load_explicit(&old->have_ext[i], memory_order_acquire)) {
                r->ext[2 * i] = old->ext[2 * i];
                r->ext[2 * i + 1] = old->ext[2 * i + 1];
                atomic_store_explicit(&r->have_ext[i], 1, memory_order_relaxed);
            }
            const tally__rchunk *oc = atomic_load_explicit(&old->chunks[i], memory_order_acquire);
            if (oc) {
                size_t sz = tally__rchunk_bytes(old->blocks[i].n_chunks);
                tally__rchunk *nc = tally__malloc(sz);
                if (nc) { /* else rebuilt on demand */
                    memcpy(nc, oc, sz);
                    atomic_store_explicit(&r->chunks[i], nc, memory_order_relaxed);
                    chunk_bytes += sz;
                }
            }
        }
    }
    for (uint32_t i = from; i < n; i++) {
        int rc = tally_snapshot_block(s, i, &r->blocks[i]);
        if (rc) {
            entry_free(r);
            return rc;
        }
    }
    /* Both pyramids at most: n level-0 nodes + n/15 above, order and pos_of. */
    size_t per_axis = (size_t)n * (sizeof(tally__rnode) * 16 / 15 + 2 * sizeof(uint32_t));
    r->bytes = sizeof *r + (size_t)n * (sizeof *r->blocks + 2 * sizeof *r->ext + 1 + sizeof(void *)) +
               2 * per_axis + chunk_bytes;
    *out = r;
    return 0;
}

/* Unlists least recently used entries other than keep while the table holds
 * more than the budget, then keep itself if it alone passes it (5): it
 * stays with its readers and is freed by the last release. Table lock held. */
static void evict_past_budget(tally__rollup *keep)
{
    while (table_bytes > table_budget && table_entries > (keep && keep->in_table ? 1u : 0u)) {
        tally__rollup *lru = NULL;
        for (size_t i = 0; i < TABLE_BUCKETS; i++)
            for (tally__rollup *x = table[i]; x; x = x->next)
                if (x != keep && (!lru || x->last_use < lru->last_use))
                    lru = x;
        if (!lru)
            break;
        unlist(lru);
        n_evictions++;
    }
    if (keep && keep->in_table && table_bytes > table_budget) {
        unlist(keep);
        n_evictions++;
    }
}

/* Lists r (one reference given to the table) in place of any entry of the
 * same key, then evicts least recently used entries past the budget (5). */
static void publish(tally__rollup *r)
{
    atomic_fetch_add_explicit(&r->refs, 1, memory_order_relaxed);
    pthread_mutex_lock(&table_mu);
    size_t b = bucket_of(r->e, r->id);
    for (tally__rollup *x = table[b]; x; x = x->next) {
        if (x->e == r->e && x->id == r->id) {
            unlist(x);
            break;
        }
    }
    r->next = table[b];
    table[b] = r;
    r->in_table = 1;
    r->last_use = ++use_clock;
    table_bytes += r->bytes;
    table_entries++;
    n_builds++;
    evict_past_budget(r);
    pthread_mutex_unlock(&table_mu);
}

int tally__rollup_acquire(tally_engine *e, tally_series_id id, tally_snapshot *s,
                          tally__rollup **out)
{
    uint32_t n = tally_snapshot_n_blocks(s);
    tally__rollup *r = NULL;
    pthread_mutex_lock(&table_mu);
    for (tally__rollup *x = table[bucket_of(e, id)]; x; x = x->next) {
        if (x->e == e && x->id == id) {
            r = x;
            atomic_fetch_add_explicit(&r->refs, 1, memory_order_relaxed);
            r->last_use = ++use_clock;
            break;
        }
    }
    pthread_mutex_unlock(&table_mu);

    int rc = 0;
    if (r) {
        uint32_t m = n < r->n_blocks ? n : r->n_blocks;
        if (m > 0 && !entry_matches(r, s, m, &rc)) {
            tally__rollup_release(r);
            r = NULL;
            if (rc)
                return rc;
        }
    }
    if (r && n <= r->n_blocks) {
        pthread_mutex_lock(&table_mu);
        n_hits++;
        pthread_mutex_unlock(&table_mu);
        *out = r;
        return 0;
    }
    tally__rollup *fresh;
    rc = entry_build(e, id, s, n, r, &fresh);
    tally__rollup_release(r);
    if (rc)
        return rc;
    publish(fresh);
    *out = fresh;
    return 0;
}

const tally_block_summary *tally__rollup_block(const tally__rollup *r, uint32_t i)
{
    return &r->blocks[i];
}

/* --- extreme points --------------------------------------------------------- */

int tally__rollup_block_extremes(tally__rollup *r, tally_snapshot *s, uint32_t i,
                                 tally_point *min_pt, tally_point *max_pt)
{
    if (atomic_load_explicit(&r->have_ext[i], memory_order_acquire)) {
        *min_pt = r->ext[2 * i];
        *max_pt = r->ext[2 * i + 1];
        return 0;
    }
    const tally_block_summary *b = &r->blocks[i];
    if (b->n_nan >= b->n_points)
        return TALLY_EINVAL;
    tally_chunk_summary cs[65536 / TALLY_CHUNK_POINTS];
    pthread_mutex_lock(&r->mu);
    int rc = 0;
    if (!atomic_load_explicit(&r->have_ext[i], memory_order_acquire)) {
        rc = tally_snapshot_block_chunks(s, i, cs, sizeof cs / sizeof cs[0]);
        /* The block's rule (first chunk whose min is strictly least wins)
         * replayed over the chunk table, then the chunk's own argmin. */
        uint32_t kmin = UINT32_MAX, kmax = UINT32_MAX;
        for (uint32_t k = 0; rc == 0 && k < b->n_chunks; k++) {
            if (cs[k].n_nan >= cs[k].n_points)
                continue;
            if (kmin == UINT32_MAX || cs[k].min_value < cs[kmin].min_value)
                kmin = k;
            if (kmax == UINT32_MAX || cs[k].max_value > cs[kmax].max_value)
                kmax = k;
        }
        if (rc == 0 && kmin == UINT32_MAX)
            rc = TALLY_ECORRUPT; /* header says some value is not NaN */
        tally_point p[2];
        uint32_t at[2] = {rc ? 0 : cs[kmin].argmin, rc ? 0 : cs[kmax].argmax};
        for (int k = 0; rc == 0 && k < 2; k++)
            rc = tally_snapshot_block_decode(s, i, at[k], 1, &p[k].step, &p[k].timestamp_ms,
                                             &p[k].value);
        if (rc == 0) {
            r->ext[2 * i] = p[0];
            r->ext[2 * i + 1] = p[1];
            atomic_store_explicit(&r->have_ext[i], 1, memory_order_release);
        }
    }
    pthread_mutex_unlock(&r->mu);
    if (rc == 0) {
        *min_pt = r->ext[2 * i];
        *max_pt = r->ext[2 * i + 1];
    }
    return rc;
}

/* --- chunk records ---------------------------------------------------------- */

/* Bounds, as steps between the chunk's min and max, of each eighth of the
 * chunk's values v[0..n) (no NaN in an eighth that M4 reads: its blocks hold
 * none): the greatest step not above the eighth's least value, the least
 * step not below its greatest, checked through tally__rchunk_eighth_bound. */
static void eighth_bounds(const double *v, uint32_t n, double min_v, double max_v,
                          tally__rchunk_oct *o)
{
    double range = max_v - min_v;
    int usable = range > 0 && isfinite(range);
    for (uint32_t e = 0; e < 8; e++) {
        double lo = INFINITY, hi = -INFINITY;
        for (uint32_t t = e * TALLY__RCHUNK_EIGHTH; t < n && t < (e + 1) * TALLY__RCHUNK_EIGHTH;
             t++) {
            lo = v[t] < lo ? v[t] : lo; /* NaN compares false: skipped */
            hi = v[t] > hi ? v[t] : hi;
        }
        unsigned ql = 0, qh = 255;
        if (usable && lo <= hi) {
            double fl = floor((lo - min_v) / range * 255.0), fh = ceil((hi - min_v) / range * 255.0);
            ql = fl <= 0 ? 0 : fl >= 255 ? 255 : (unsigned)fl;
            qh = fh <= 0 ? 0 : fh >= 255 ? 255 : (unsigned)fh;
            while (ql > 0 && tally__rchunk_eighth_bound(min_v, max_v, ql) > lo)
                ql--;
            while (qh < 255 && tally__rchunk_eighth_bound(min_v, max_v, qh) < hi)
                qh++;
        }
        o->lo[e] = (uint8_t)ql;
        o->hi[e] = (uint8_t)qh;
    }
}

static int chunks_build(tally_snapshot *s, uint32_t i, uint32_t n_chunks, tally__rchunk *out)
{
    tally_chunk_summary cs[65536 / TALLY_CHUNK_POINTS];
    int64_t st[TALLY_CHUNK_POINTS], ts[TALLY_CHUNK_POINTS];
    tally__rchunk_mm *mm = (tally__rchunk_mm *)(void *)(out + n_chunks); /* tally__rchunk_minmax */
    tally__rchunk_oct *oct = (tally__rchunk_oct *)(void *)(mm + n_chunks); /* tally__rchunk_eighths */
    double v[TALLY_CHUNK_POINTS];
    int rc = tally_snapshot_block_chunks(s, i, cs, sizeof cs / sizeof cs[0]);
    for (uint32_t k = 0; rc == 0 && k < n_chunks; k++) {
        const tally_chunk_summary *c = &cs[k];
        rc = tally_snapshot_block_decode(s, i, c->first_index, c->n_points, st, ts, v);
        if (rc)
            break;
        tally__rchunk *o = &out[k];
        memset(o, 0, sizeof *o);
        o->first = c->first;
        o->last = c->last;
        o->sum = c->sum;
        o->n_points = (uint16_t)c->n_points;
        o->n_nan = (uint16_t)c->n_nan;
        o->min_pt.value = o->max_pt.value = NAN;
        if (c->n_nan < c->n_points) {
            uint32_t a = c->argmin - c->first_index, b = c->argmax - c->first_index;
            if (a >= c->n_points || b >= c->n_points)
                return TALLY_ECORRUPT;
            o->min_pt = (tally_point){st[a], ts[a], c->min_value};
            o->max_pt = (tally_point){st[b], ts[b], c->max_value};
            o->argmin = (uint8_t)a;
            o->argmax = (uint8_t)b;
        }
        /* Steps and timestamps in unsigned arithmetic: any int64 column is
         * legal. Values: NaN compares false, so a chunk holding one is
         * neither rising nor falling. */
        int dense = 1, linear = 1, rise = c->n_points > 1, fall = c->n_points > 1;
        uint64_t d = c->n_points > 1 ? ((uint64_t)ts[c->n_points - 1] - (uint64_t)ts[0]) /
                                           (c->n_points - 1)
                                     : 0;
        for (uint32_t t = 1; t < c->n_points; t++) {
            dense &= (uint64_t)st[t] - (uint64_t)st[0] == t && st[t] > st[t - 1];
            linear &= (uint64_t)ts[t] == (uint64_t)ts[0] + d * t;
            rise &= v[t] > v[t - 1];
            fall &= v[t] < v[t - 1];
        }
        o->flags = (uint16_t)((dense ? TALLY__RCHUNK_STEPS_DENSE : 0) |
                              (linear ? TALLY__RCHUNK_TS_LINEAR : 0));
        mm[k] = (tally__rchunk_mm){o->min_pt.value,
                                   o->max_pt.value,
                                   o->min_pt.timestamp_ms,
                                   o->max_pt.timestamp_ms,
                                   o->argmin,
                                   o->argmax,
                                   (uint8_t)((rise ? TALLY__RCHUNK_STRICT_RISE : 0) |
                                             (fall ? TALLY__RCHUNK_STRICT_FALL : 0)),
                                   {0}};
        eighth_bounds(v, c->n_points, o->min_pt.value, o->max_pt.value, &oct[k]);
    }
    return rc;
}

const tally__rchunk *tally__rollup_chunks_peek(const tally__rollup *r, uint32_t i)
{
    return atomic_load_explicit(&r->chunks[i], memory_order_acquire);
}

int tally__rollup_chunks(tally__rollup *r, tally_snapshot *s, uint32_t i,
                         const tally__rchunk **out)
{
    tally__rchunk *c = atomic_load_explicit(&r->chunks[i], memory_order_acquire);
    if (c) {
        *out = c;
        return 0;
    }
    uint32_t nc = r->blocks[i].n_chunks;
    size_t sz = tally__rchunk_bytes(nc);
    c = tally__malloc(sz ? sz : 1);
    if (!c)
        return TALLY_ENOMEM;
    int rc = chunks_build(s, i, nc, c);
    if (rc) {
        tally__free(c);
        return rc;
    }
    tally__rchunk *expected = NULL;
    if (!atomic_compare_exchange_strong_explicit(&r->chunks[i], &expected, c,
                                                 memory_order_acq_rel, memory_order_acquire)) {
        tally__free(c); /* another thread published first */
        *out = expected;
        return 0;
    }
    pthread_mutex_lock(&table_mu);
    r->bytes += sz;
    if (r->in_table) {
        table_bytes += sz;
        evict_past_budget(r);
    } else {
        atomic_fetch_add_explicit(&retained_bytes, sz, memory_order_relaxed);
    }
    pthread_mutex_unlock(&table_mu);
    *out = c;
    return 0;
}

/* --- pyramids --------------------------------------------------------------- */

void tally__rnode_combine(tally__rnode *a, const tally__rnode *b)
{
    if (b->count == 0)
        return;
    if (a->count == 0) {
        *a = *b;
        return;
    }
    a->last = b->last;
    a->count += b->count;
    a->n_nan += b->n_nan;
    a->sum += b->sum;
    if (b->min_v == b->min_v && !(a->min_v <= b->min_v)) { /* a has none, or b is strictly less */
        a->min_v = b->min_v;
        a->min_pos = b->min_pos;
    }
    if (b->max_v == b->max_v && !(a->max_v >= b->max_v)) {
        a->max_v = b->max_v;
        a->max_pos = b->max_pos;
    }
}

typedef struct sort_key {
    int64_t lo, hi; /* the block's x range */
    uint32_t index; /* seal index */
} sort_key;

static int key_cmp(const void *pa, const void *pb)
{
    const sort_key *a = pa, *b = pb;
    if (a->lo != b->lo)
        return a->lo < b->lo ? -1 : 1;
    if (a->hi != b->hi)
        return a->hi < b->hi ? -1 : 1;
    return a->index < b->index ? -1 : a->index > b->index;
}

static tally__pyramid *pyramid_build(const tally__rollup *r, tally__axis axis)
{
    uint32_t n = r->n_blocks;
    size_t nn = n ? n : 1;
    tally__pyramid *p = tally__calloc(1, sizeof *p);
    sort_key *keys = tally__malloc(nn * sizeof *keys);
    if (!p || !keys)
        goto fail;
    p->n = n;
    p->order = tally__malloc(nn * sizeof *p->order);
    p->pos_of = tally__malloc(nn * sizeof *p->pos_of);
    if (!p->order || !p->pos_of)
        goto fail;
    for (uint32_t i = 0; i < n; i++) {
        const tally_block_summary *b = &r->blocks[i];
        keys[i] = axis == TALLY__AXIS_STEP
                      ? (sort_key){b->min_step, b->max_step, i}
                      : (sort_key){b->min_timestamp_ms, b->max_timestamp_ms, i};
    }
    qsort(keys, n, sizeof *keys, key_cmp);
    for (uint32_t k = 0; k < n; k++) {
        p->order[k] = keys[k].index;
        p->pos_of[keys[k].index] = k;
    }
    uint32_t cnt = n;
    for (uint32_t lv = 0; lv < 8; lv++) {
        p->level[lv] = tally__malloc((cnt ? cnt : 1) * sizeof(tally__rnode));
        if (!p->level[lv])
            goto fail;
        p->level_n[lv] = cnt;
        p->n_levels = lv + 1;
        for (uint32_t k = 0; k < cnt; k++) {
            tally__rnode *nd = &p->level[lv][k];
            if (lv == 0) {
                const tally_block_summary *b = &r->blocks[p->order[k]];
                *nd = (tally__rnode){b->first, b->last, b->min_value, b->max_value, k, k,
                                     b->n_points, b->n_nan, b->sum};
                continue;
            }
            memset(nd, 0, sizeof *nd);
            uint32_t c0 = k * TALLY__ROLLUP_FANOUT, c1 = c0 + TALLY__ROLLUP_FANOUT;
            if (c1 > p->level_n[lv - 1])
                c1 = p->level_n[lv - 1];
            for (uint32_t c = c0; c < c1; c++)
                tally__rnode_combine(nd, &p->level[lv - 1][c]);
        }
        if (cnt <= 1)
            break;
        cnt = (cnt + TALLY__ROLLUP_FANOUT - 1) / TALLY__ROLLUP_FANOUT;
    }
    tally__free(keys);
    return p;
fail:
    tally__free(keys);
    pyramid_free(p);
    return NULL;
}

const tally__pyramid *tally__rollup_pyramid(tally__rollup *r, tally__axis axis)
{
    tally__pyramid *p = atomic_load_explicit(&r->pyr[axis], memory_order_acquire);
    if (p)
        return p;
    tally__pyramid *mine = pyramid_build(r, axis);
    if (!mine)
        return NULL;
    tally__pyramid *expected = NULL;
    if (atomic_compare_exchange_strong_explicit(&r->pyr[axis], &expected, mine,
                                                memory_order_acq_rel, memory_order_acquire))
        return mine;
    pyramid_free(mine); /* another thread published first */
    return expected;
}

void tally__rollup_range(const tally__pyramid *pyr, uint32_t p, uint32_t q, tally__rnode *out)
{
    memset(out, 0, sizeof *out);
    uint64_t pos = p;
    while (pos <= q) {
        uint32_t lv = 0;
        uint64_t span = 1;
        while (lv + 1 < pyr->n_levels) {
            uint64_t up = span * TALLY__ROLLUP_FANOUT;
            if (pos % up != 0 || pos + up - 1 > q)
                break;
            span = up;
            lv++;
        }
        tally__rnode_combine(out, &pyr->level[lv][pos / span]);
        pos += span;
    }
}

/* --- statistics ------------------------------------------------------------- */

void tally__rollup_stats_get(tally__rollup_stats *out)
{
    pthread_mutex_lock(&table_mu);
    out->entries = table_entries;
    out->bytes = table_bytes;
    out->hits = n_hits;
    out->builds = n_builds;
    out->evictions = n_evictions;
    out->budget = table_budget;
    out->retained_bytes = atomic_load_explicit(&retained_bytes, memory_order_relaxed);
    pthread_mutex_unlock(&table_mu);
}

void tally__rollup_set_budget(uint64_t bytes)
{
    pthread_mutex_lock(&table_mu);
    table_budget = bytes;
    evict_past_budget(NULL);
    pthread_mutex_unlock(&table_mu);
}

void tally__rollup_clear(void)
{
    pthread_mutex_lock(&table_mu);
    for (size_t i = 0; i < TABLE_BUCKETS; i++)
        while (table[i])
            unlist(table[i]);
    pthread_mutex_unlock(&table_mu);
}
