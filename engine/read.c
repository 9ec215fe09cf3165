/*
 * read.c — the read side: lookups, series summaries, enumeration, snapshots,
 * block access and the merging iterator.
 *
 * A snapshot copies, under the series mutex, the block reference list and
 * the head buffer; everything after that runs without locks (see the memory
 * model in internal.h). The iterator orders sources (blocks and the head)
 * by their first point; runs of sources whose (step, ts) ranges overlap are
 * merged by decoding them together and sorting, the rest stream straight
 * from the mmap. Exact duplicates are collapsed across sources.
 */
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "block.h"
#include "format.h"
#include "internal.h"

struct tally_snapshot {
    tally_engine *e;
    tally__block_ref *blocks;  /* copy of the series' block list */
    uint32_t n_blocks;
    tally_point *head;         /* sorted, deduplicated copy of the head */
    size_t n_head;
    tally__block_view view;    /* the last opened block */
    int64_t view_block;        /* its index, or -1 */
};

int tally_engine_lookup(tally_engine *e, const char *run_id, size_t run_id_len, const char *key,
                        size_t key_len, tally_series_id *out)
{
    if (!e || !run_id || !key || !out)
        return TALLY_EINVAL;
    uint64_t id = tally_series_id_of(run_id, run_id_len, key, key_len);
    pthread_rwlock_rdlock(&e->dir_lock);
    tally__series *s = tally__dir_find(e, id);
    int rc = !s ? TALLY_ENOTFOUND
             : (s->run_len != run_id_len || s->key_len != key_len ||
                memcmp(s->run, run_id, run_id_len) || memcmp(s->key, key, key_len))
                 ? TALLY_ENOTFOUND
                 : 0;
    pthread_rwlock_unlock(&e->dir_lock);
    if (rc == 0)
        *out = id;
    return rc;
}

static tally__series *find(tally_engine *e, tally_series_id id)
{
    pthread_rwlock_rdlock(&e->dir_lock);
    tally__series *s = tally__dir_find(e, id);
    pthread_rwlock_unlock(&e->dir_lock);
    return s;
}

int tally_engine_series_info(tally_engine *e, tally_series_id id, tally_series_info *out)
{
    if (!e || !out)
        return TALLY_EINVAL;
    tally__series *s = find(e, id);
    if (!s)
        return TALLY_ENOTFOUND;
    pthread_mutex_lock(&s->mu);
    out->id = s->id;
    out->run_id = s->run;
    out->run_id_len = s->run_len;
    out->key = s->key;
    out->key_len = s->key_len;
    out->n_points = s->n_points;
    out->n_blocks = s->n_blocks;
    out->latest = s->latest;
    out->first = s->first;
    out->min_step = s->min_step;
    out->max_step = s->max_step;
    out->min_timestamp_ms = s->min_ts;
    out->max_timestamp_ms = s->max_ts;
    out->min_value = s->min_value;
    out->max_value = s->max_value;
    pthread_mutex_unlock(&s->mu);
    return 0;
}

static size_t name_hash(const char *p, size_t n);

int tally_engine_series_of_run(tally_engine *e, const char *run_id, size_t run_id_len,
                               tally_series_id *ids, size_t cap, size_t *n_total)
{
    if (!e || !run_id || !n_total || (cap && !ids))
        return TALLY_EINVAL;
    size_t n = 0;
    pthread_rwlock_rdlock(&e->dir_lock);
    for (tally__series *s = e->run_index[name_hash(run_id, run_id_len) & (e->index_cap - 1)]; s;
         s = s->next_in_run) {
        if (s->run_len == run_id_len && memcmp(s->run, run_id, run_id_len) == 0) {
            if (n < cap)
                ids[n] = s->id;
            n++;
        }
    }
    pthread_rwlock_unlock(&e->dir_lock);
    *n_total = n;
    return 0;
}

int tally_engine_series_of_key(tally_engine *e, const char *key, size_t key_len,
                               tally_series_id *ids, size_t cap, size_t *n_total)
{
    if (!e || !key || !n_total || (cap && !ids))
        return TALLY_EINVAL;
    size_t n = 0;
    pthread_rwlock_rdlock(&e->dir_lock);
    for (tally__series *s = e->key_index[name_hash(key, key_len) & (e->index_cap - 1)]; s;
         s = s->next_in_key) {
        if (s->key_len == key_len && memcmp(s->key, key, key_len) == 0) {
            if (n < cap)
                ids[n] = s->id;
            n++;
        }
    }
    pthread_rwlock_unlock(&e->dir_lock);
    *n_total = n;
    return 0;
}

int tally_engine_series_all(tally_engine *e, tally_series_id *ids, size_t cap, size_t *n_total)
{
    if (!e || !n_total || (cap && !ids))
        return TALLY_EINVAL;
    pthread_rwlock_rdlock(&e->dir_lock);
    for (size_t i = 0; i < e->n_series && i < cap; i++)
        ids[i] = e->all_series[i]->id;
    *n_total = e->n_series;
    pthread_rwlock_unlock(&e->dir_lock);
    return 0;
}

#include <xxhash.h>
static size_t name_hash(const char *p, size_t n) { return (size_t)XXH3_64bits(p, n); }

/* --- snapshots ----------------------------------------------------------- */

int tally_snapshot_open(tally_engine *e, tally_series_id id, tally_snapshot **out)
{
    if (!e || !out)
        return TALLY_EINVAL;
    tally__series *s = find(e, id);
    if (!s)
        return TALLY_ENOTFOUND;
    tally_snapshot *snap = tally__calloc(1, sizeof *snap);
    if (!snap)
        return TALLY_ENOMEM;
    snap->e = e;
    snap->view_block = -1;
    int64_t *steps = NULL, *ts = NULL;
    double *vals = NULL;
    pthread_mutex_lock(&s->mu);
    /* The unsealed points: frozen heads waiting for the sealer, then the head. */
    uint32_t nb = s->n_blocks, nh = s->h_n;
    for (const tally__frozen *f = s->frozen; f; f = f->next)
        nh += f->n;
    snap->blocks = tally__malloc((size_t)nb * sizeof *snap->blocks);
    if (nh) {
        steps = tally__malloc((size_t)nh * 8);
        ts = tally__malloc((size_t)nh * 8);
        vals = tally__malloc((size_t)nh * 8);
    }
    int ok = snap->blocks && (!nh || (steps && ts && vals));
    if (ok) {
        if (nb)
            memcpy(snap->blocks, s->blocks, (size_t)nb * sizeof *snap->blocks);
        size_t at = 0;
        for (const tally__frozen *f = s->frozen; f; f = f->next) {
            memcpy(steps + at, f->steps, (size_t)f->n * 8);
            memcpy(ts + at, f->ts, (size_t)f->n * 8);
            memcpy(vals + at, f->vals, (size_t)f->n * 8);
            at += f->n;
        }
        if (s->h_n) {
            memcpy(steps + at, s->h_steps, (size_t)s->h_n * 8);
            memcpy(ts + at, s->h_ts, (size_t)s->h_n * 8);
            memcpy(vals + at, s->h_vals, (size_t)s->h_n * 8);
        }
    }
    pthread_mutex_unlock(&s->mu);
    if (ok && nh) {
        uint32_t kept = tally__block_sort_points(steps, ts, vals, nh);
        snap->head = tally__malloc((size_t)kept * sizeof *snap->head);
        ok = snap->head != NULL;
        for (uint32_t i = 0; ok && i < kept; i++)
            snap->head[i] = (tally_point){steps[i], ts[i], vals[i]};
        snap->n_head = kept;
    }
    tally__free(steps);
    tally__free(ts);
    tally__free(vals);
    if (!ok) {
        tally_snapshot_close(snap);
        return TALLY_ENOMEM;
    }
    snap->n_blocks = nb;
    *out = snap;
    return 0;
}

void tally_snapshot_close(tally_snapshot *s)
{
    if (!s)
        return;
    tally__block_view_free(&s->view);
    tally__free(s->blocks);
    tally__free(s->head);
    tally__free(s);
}

uint32_t tally_snapshot_n_blocks(const tally_snapshot *s) { return s->n_blocks; }

void tally_snapshot_block_range(const tally_snapshot *s, uint32_t i, tally_block_range *out)
{
    *out = s->blocks[i].range;
}

void tally_snapshot_head(const tally_snapshot *s, const tally_point **pts, size_t *n)
{
    *pts = s->head;
    *n = s->n_head;
}

/* The bytes of block i in its segment's mapping. */
static int block_bytes(const tally_snapshot *s, uint32_t i, const uint8_t **p, const uint8_t **end)
{
    if (i >= s->n_blocks)
        return TALLY_EINVAL;
    const tally__block_ref *r = &s->blocks[i];
    tally__segment *sg = tally__segment_get(s->e, r->segment);
    if (!sg || !sg->map || r->offset + r->len > sg->map_len)
        return TALLY_ECORRUPT;
    *p = sg->map + r->offset;
    *end = *p + r->len;
    return 0;
}

void tally_snapshot_block_prefetch(const tally_snapshot *s, uint32_t i)
{
    const uint8_t *p, *end;
    if (block_bytes(s, i, &p, &end) != 0)
        return;
    /* The header (144 bytes) and the start of the body. */
    for (const uint8_t *q = p; q < p + 256 && q < end; q += 64)
        __builtin_prefetch(q, 0, 0);
    /* And the end of the block: a raw body ends with its chunk table, which
     * opening the block decodes first (a few hundred bytes for 32 chunks). */
    const uint8_t *t = end - 256 > p + 256 ? end - 256 : p + 256;
    for (; t < end; t += 64)
        __builtin_prefetch(t, 0, 0);
}

static void report_corrupt(const tally_snapshot *s, uint32_t i, const char *what)
{
    const tally__block_ref *r = &s->blocks[i];
    char path[4096];
    tally__segment_path(s->e, r->segment, path, sizeof path);
    tally__log("corrupt block: %s at byte %llu (%s)", path, (unsigned long long)r->offset, what);
}

int tally_snapshot_block(const tally_snapshot *s, uint32_t i, tally_block_summary *out)
{
    const uint8_t *p, *end;
    int rc = block_bytes(s, i, &p, &end);
    if (rc)
        return rc;
    uint32_t len;
    uint64_t sid;
    rc = tally__block_header(p, end, out, &len, &sid);
    tally__segment_note_read(s->e, tally__segment_get(s->e, s->blocks[i].segment),
                             s->blocks[i].offset, sizeof(tally_disk_block_header));
    if (rc == 0 && len != s->blocks[i].len)
        rc = TALLY_ECORRUPT;
    if (rc == TALLY_ECORRUPT)
        report_corrupt(s, i, "header");
    out->segment = s->blocks[i].segment;
    out->offset = s->blocks[i].offset;
    return rc;
}

static int open_view(tally_snapshot *s, uint32_t i)
{
    if (s->view_block == (int64_t)i)
        return 0;
    const uint8_t *p, *end;
    int rc = block_bytes(s, i, &p, &end);
    if (rc)
        return rc;
    s->view_block = -1;
    const tally__block_ref *r = &s->blocks[i];
    tally__segment *sg = tally__segment_get(s->e, r->segment);
    int verified = tally__segment_is_verified(sg, r->offset);
    rc = tally__block_view_open_ex(&s->view, p, end, verified);
    if (rc == TALLY_ECORRUPT)
        report_corrupt(s, i, "body");
    if (rc == 0) {
        s->view_block = i;
        tally__segment_note_read(s->e, sg, r->offset, r->len);
        if (!verified)
            tally__segment_set_verified(sg, r->offset);
    }
    return rc;
}

int tally_snapshot_block_chunks(tally_snapshot *s, uint32_t i, tally_chunk_summary *out, size_t cap)
{
    int rc = open_view(s, i);
    return rc ? rc : tally__block_view_chunks(&s->view, out, cap);
}

/* Opens block i and gives each of xs[0..n) to a view cache hint. */
static int hint_each(tally_snapshot *s, uint32_t i, const uint32_t *xs, size_t n,
                     void (*hint)(const tally__block_view *, uint32_t))
{
    int rc = open_view(s, i);
    for (size_t j = 0; rc == 0 && j < n; j++)
        hint(&s->view, xs[j]);
    return rc;
}

int tally_snapshot_block_prefetch_chunks(tally_snapshot *s, uint32_t i, const uint32_t *chunks,
                                         size_t n)
{
    return hint_each(s, i, chunks, n, tally__block_view_prefetch_chunk);
}

int tally_snapshot_block_prefetch_points(tally_snapshot *s, uint32_t i, const uint32_t *points,
                                         size_t n)
{
    return hint_each(s, i, points, n, tally__block_view_prefetch_point);
}

int tally_snapshot_block_decode(tally_snapshot *s, uint32_t i, uint32_t from, uint32_t n,
                                int64_t *steps, int64_t *timestamps_ms, double *values)
{
    int rc = open_view(s, i);
    return rc ? rc : tally__block_view_decode(&s->view, from, n, steps, timestamps_ms, values);
}

/* --- iterator ------------------------------------------------------------ */

#define ITER_STRIDE 1024u /* points decoded per step of a streamed block */

typedef struct source {
    int64_t block;         /* block index, or -1 for the head */
    uint32_t n;            /* points */
    tally_point first, last;
} source;

struct tally_iter {
    tally_snapshot *s;
    int64_t lo, hi;        /* step range, inclusive */
    source *src;
    size_t n_src, next_src;
    /* the current group: either one streamed source or a merged buffer */
    int64_t stream_block;  /* block being streamed, or -1 */
    uint32_t stream_pos, stream_n;
    tally_point *merged;   /* merged points of an overlapping group (or the head) */
    size_t merged_n, merged_pos, merged_cap;
    const tally_point *borrowed; /* the snapshot's head when it streams alone */
    int64_t cols_steps[ITER_STRIDE], cols_ts[ITER_STRIDE];
    double cols_vals[ITER_STRIDE];
    tally_point last;      /* last point emitted, for cross-source dedup */
    int have_last;
};

static int point_cmp(const tally_point *a, const tally_point *b)
{
    return tally__point_cmp(a->step, a->timestamp_ms, a->value, b->step, b->timestamp_ms, b->value);
}

static int source_cmp(const void *a, const void *b)
{
    const source *x = a, *y = b;
    int c = point_cmp(&x->first, &y->first);
    if (c)
        return c;
    return x->block < y->block ? -1 : x->block > y->block;
}

int tally_iter_start(tally_snapshot *s, int64_t step_lo, int64_t step_hi, tally_iter **out)
{
    if (!s || !out)
        return TALLY_EINVAL;
    tally_iter *it = tally__calloc(1, sizeof *it);
    if (!it)
        return TALLY_ENOMEM;
    it->s = s;
    it->lo = step_lo;
    it->hi = step_hi;
    it->stream_block = -1;
    it->src = tally__malloc(((size_t)s->n_blocks + 1) * sizeof *it->src);
    if (!it->src) {
        tally__free(it);
        return TALLY_ENOMEM;
    }
    for (uint32_t i = 0; i < s->n_blocks; i++) {
        tally_block_summary b;
        int rc = tally_snapshot_block(s, i, &b);
        if (rc) {
            tally_iter_stop(it);
            return rc;
        }
        if (b.max_step < step_lo || b.min_step > step_hi)
            continue;
        it->src[it->n_src++] = (source){i, b.n_points, b.first, b.last};
    }
    if (s->n_head && !(s->head[s->n_head - 1].step < step_lo || s->head[0].step > step_hi))
        it->src[it->n_src++] = (source){-1, (uint32_t)s->n_head, s->head[0], s->head[s->n_head - 1]};
    /* Sources are almost always in order already; qsort is cheap on sorted input. */
    if (it->n_src > 1)
        qsort(it->src, it->n_src, sizeof *it->src, source_cmp);
    *out = it;
    return 0;
}

void tally_iter_stop(tally_iter *it)
{
    if (!it)
        return;
    tally__free(it->src);
    tally__free(it->merged);
    tally__free(it);
}

/* Decodes every point of source k into the columns at offset *n. */
static int gather(tally_iter *it, const source *k, int64_t *st, int64_t *ts, double *va, size_t *n)
{
    if (k->block < 0) {
        for (size_t i = 0; i < k->n; i++) {
            st[*n + i] = it->s->head[i].step;
            ts[*n + i] = it->s->head[i].timestamp_ms;
            va[*n + i] = it->s->head[i].value;
        }
    } else {
        int rc = tally_snapshot_block_decode(it->s, (uint32_t)k->block, 0, k->n, st + *n, ts + *n,
                                             va + *n);
        if (rc)
            return rc;
    }
    *n += k->n;
    return 0;
}

/* Sets up the next group of sources; 1 when there is none. */
static int next_group(tally_iter *it)
{
    if (it->next_src >= it->n_src)
        return 1;
    size_t first = it->next_src, last = first;
    tally_point hi = it->src[first].last;
    while (last + 1 < it->n_src && point_cmp(&it->src[last + 1].first, &hi) <= 0) {
        last++;
        if (point_cmp(&it->src[last].last, &hi) > 0)
            hi = it->src[last].last;
    }
    it->next_src = last + 1;
    it->merged_n = it->merged_pos = 0;
    it->borrowed = NULL;
    if (first == last) {
        if (it->src[first].block >= 0) {
            it->stream_block = it->src[first].block;
            it->stream_pos = 0;
            it->stream_n = it->src[first].n;
        } else {
            it->borrowed = it->s->head;
            it->merged_n = it->s->n_head;
        }
        return 0;
    }
    size_t total = 0;
    for (size_t k = first; k <= last; k++)
        total += it->src[k].n;
    int64_t *st = tally__malloc(total * 8), *ts = tally__malloc(total * 8);
    double *va = tally__malloc(total * 8);
    int rc = st && ts && va ? 0 : TALLY_ENOMEM;
    size_t n = 0;
    for (size_t k = first; k <= last && rc == 0; k++)
        rc = gather(it, &it->src[k], st, ts, va, &n);
    if (rc == 0 && total > it->merged_cap) {
        tally_point *m = tally__realloc(it->merged, total * sizeof *m);
        if (m) {
            it->merged = m;
            it->merged_cap = total;
        } else {
            rc = TALLY_ENOMEM;
        }
    }
    if (rc == 0) {
        /* Sort in pieces of at most UINT32_MAX points is never needed: groups are bounded by the snapshot. */
        uint32_t kept = tally__block_sort_points(st, ts, va, (uint32_t)n);
        for (uint32_t i = 0; i < kept; i++)
            it->merged[i] = (tally_point){st[i], ts[i], va[i]};
        it->merged_n = kept;
    }
    tally__free(st);
    tally__free(ts);
    tally__free(va);
    return rc;
}

/* Appends p to buf unless out of range or a duplicate of the last point. */
static inline void emit(tally_iter *it, const tally_point *p, tally_point *buf, size_t *n)
{
    if (p->step < it->lo || p->step > it->hi)
        return;
    if (it->have_last && point_cmp(p, &it->last) == 0)
        return;
    buf[(*n)++] = *p;
    it->last = *p;
    it->have_last = 1;
}

int tally_iter_next(tally_iter *it, tally_point *buf, size_t cap, size_t *n_out)
{
    size_t n = 0;
    while (n < cap) {
        if (it->stream_block >= 0) {
            if (it->stream_pos >= it->stream_n) {
                it->stream_block = -1;
                continue;
            }
            uint32_t k = it->stream_n - it->stream_pos;
            if (k > ITER_STRIDE)
                k = ITER_STRIDE;
            if (k > cap - n)
                k = (uint32_t)(cap - n);
            int rc = tally_snapshot_block_decode(it->s, (uint32_t)it->stream_block, it->stream_pos, k,
                                                 it->cols_steps, it->cols_ts, it->cols_vals);
            if (rc) {
                *n_out = n;
                return rc;
            }
            it->stream_pos += k;
            const tally_block_range *r = &it->s->blocks[it->stream_block].range;
            uint32_t i = 0;
            if (r->min_step >= it->lo && r->max_step <= it->hi) {
                /* The whole block is in range and its points are distinct and
                 * ordered: only its first point can repeat the last one emitted. */
                if (it->stream_pos == k) {
                    tally_point p = {it->cols_steps[0], it->cols_ts[0], it->cols_vals[0]};
                    emit(it, &p, buf, &n);
                    i = 1;
                }
                if (i < k) {
                    for (; i < k; i++) {
                        buf[n].step = it->cols_steps[i];
                        buf[n].timestamp_ms = it->cols_ts[i];
                        buf[n].value = it->cols_vals[i];
                        n++;
                    }
                    it->last = buf[n - 1];
                    it->have_last = 1;
                }
                continue;
            }
            for (; i < k; i++) {
                tally_point p = {it->cols_steps[i], it->cols_ts[i], it->cols_vals[i]};
                emit(it, &p, buf, &n);
            }
            continue;
        }
        if (it->merged_pos < it->merged_n) {
            const tally_point *m = it->borrowed ? it->borrowed : it->merged;
            while (it->merged_pos < it->merged_n && n < cap)
                emit(it, &m[it->merged_pos++], buf, &n);
            continue;
        }
        int rc = next_group(it);
        if (rc == 1)
            break;
        if (rc) {
            *n_out = n;
            return rc;
        }
    }
    *n_out = n;
    return 0;
}
