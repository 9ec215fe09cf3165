/*
 * downsample.c — downsampling one series for charts: M4 (first, last, min
 * and max point per pixel column), min/max/mean buckets, and LTTB. The
 * column mapping, NaN rules and cost model are in query.h and docs/query.md.
 *
 * M4 and buckets read the series as a sequence of *pieces* in x order:
 *
 *   sources: sealed blocks (sorted on the axis: always for x = step, when
 *            TALLY_BLOCK_TS_SORTED for time) + the snapshot's head
 *   dirty:   x ranges covered by two or more sources, or by an unsorted one
 *   pieces:  CLEAN(source, [a, b])  one source alone owns every point there
 *            DIRTY([a, b])          decode every source there, sort, dedupe
 *
 *   CLEAN block, whole, inside one column, no NaN --> rollup pyramid node
 *                                                     (runs of them: one
 *                                                     range query)
 *   CLEAN block otherwise --> cached chunk records (rollup.h): a chunk
 *                             inside one column without NaN is one summary;
 *                             a chunk cut by a column edge (or holding NaN)
 *                             is decoded and reduced per column run
 *   DIRTY, head --> points
 *
 * and folds them into a column accumulator that knows the first, last, min
 * and max of the open column. Chunk records and runs carry their min/max
 * points; a block node names its block only, and that block's extreme
 * points are resolved (and cached) only if it wins when the column closes.
 *
 * Invariants:
 *  (1) Pieces are disjoint in x and fed in increasing x, so every column
 *      sees its points in x order (the axis order: (step, ts, value bits)
 *      for step, (ts, step, value bits) for time).
 *  (2) A summary is fed only when it lies inside one column and holds no
 *      NaN, so its first/last points are the column's non-NaN first/last
 *      candidates and its min/max are real values.
 *  (3) Min and max keep the first occurrence in x order: a later candidate
 *      replaces the current one only if strictly smaller/greater. That is
 *      the engine's rule for block and chunk summaries too, so a summary's
 *      argmin is the point a point-by-point scan would have kept.
 *  (4) Every point of the range is counted exactly once in n_source: a
 *      dirty range is deduplicated as the engine's iterator does, and a
 *      clean range has a single source.
 *  (5) Column arithmetic is done in 128 bits: no int64 range, width or
 *      relative shift overflows.
 *  (6) M4 on the step axis reads a dense, NaN-free chunk cut by one column
 *      edge lazily: the two points beside the edge give each side's
 *      first/last, the chunk's argmin/argmax give the min/max of the side
 *      holding them, and the other side's min (max) stays *pending*,
 *      bounded by the chunk's. When the column closes, a pending run is
 *      decoded only if its bound could still win (bound <= best min, or
 *      >= best max: a tie may be an earlier point); candidates are then
 *      compared by (value, x), which is the first occurrence (3).
 *  (7) Whether an edge chunk is read lazily (6) or decoded is a cost choice
 *      only (both are exact): a query that finds more than half of a window
 *      of lazy edge chunks decoded anyway decodes the next ones directly for
 *      a while, then tries again.
 */
#include <assert.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "point_order.h"
#include "rollup.h"
#include "tally/query.h"

__extension__ typedef __int128 i128;

#define CHUNK TALLY_CHUNK_POINTS
#define HEAD_SRC UINT32_MAX

#define RETURN_ERROR_IF(cond, code)                                                           \
    do {                                                                                      \
        if (cond)                                                                             \
            return (code);                                                                    \
    } while (0)

/* --- points in axis order ------------------------------------------------------ */

static inline uint64_t dbits(double d)
{
    uint64_t u;
    memcpy(&u, &d, 8);
    return u;
}

static int cmp_step_order(const void *pa, const void *pb)
{
    const tally_point *a = pa, *b = pb;
    if (a->step != b->step)
        return a->step < b->step ? -1 : 1;
    if (a->timestamp_ms != b->timestamp_ms)
        return a->timestamp_ms < b->timestamp_ms ? -1 : 1;
    uint64_t x = dbits(a->value), y = dbits(b->value);
    return x < y ? -1 : x > y;
}

static int cmp_time_order(const void *pa, const void *pb)
{
    const tally_point *a = pa, *b = pb;
    if (a->timestamp_ms != b->timestamp_ms)
        return a->timestamp_ms < b->timestamp_ms ? -1 : 1;
    if (a->step != b->step)
        return a->step < b->step ? -1 : 1;
    uint64_t x = dbits(a->value), y = dbits(b->value);
    return x < y ? -1 : x > y;
}

static inline int axis_cmp(int time_axis, const tally_point *a, const tally_point *b)
{
    return time_axis ? cmp_time_order(a, b) : cmp_step_order(a, b);
}

static int same_point(const tally_point *a, const tally_point *b)
{
    return a->step == b->step && a->timestamp_ms == b->timestamp_ms &&
           dbits(a->value) == dbits(b->value);
}

/* --- query state ---------------------------------------------------------------- */

enum ref_kind { REF_POINT = 0, REF_NODE = 1 };

/* Where a column's min or max candidate lives: a point, or the block whose
 * cached extreme it is (resolved only if it wins the column). */
typedef struct ref {
    enum ref_kind kind;
    uint32_t block;       /* REF_NODE: seal index */
    tally_point p;        /* REF_POINT */
} ref;

typedef struct source {
    int64_t lo, hi;       /* x range of the source's points */
    uint32_t block;       /* seal index, or HEAD_SRC */
    int sorted;           /* its points are in axis order */
} source;

typedef struct piece {
    int64_t a, b;         /* x range, inclusive */
    uint32_t src;         /* index into sources, or UINT32_MAX for DIRTY */
} piece;

typedef struct xrange {
    int64_t a, b;
} xrange;

/* A run of a chunk cut by one column edge, fed to its column from the
 * chunk's record and the two points beside the edge (see feed_edge_chunk):
 * its first/last points are exact, its min (max) may not be, and is then
 * only bounded below (above) by the chunk's. Resolved when the column
 * closes, and only if that bound could beat the column's best (6). */
typedef struct pending_run {
    uint32_t block, k;          /* the chunk */
    const tally__rchunk *cr;    /* its record (borrowed from the rollup entry) */
    uint32_t i, q;              /* the run: chunk indexes [i, q) */
    int min_open, max_open;     /* the run's min (max) is not known yet */
} pending_run;

#define MAX_PENDING 4           /* a column has two edges: at most two runs pend */

typedef struct ds_ctx {
    tally_engine *e;
    tally_snapshot *s;
    tally__rollup *r;
    const tally__pyramid *pyr;   /* built on first use */
    tally_ds_method method;
    tally__axis axis;
    i128 lo, hi, span;           /* range in absolute axis units (5) */
    uint64_t span64;             /* span if span * width + width <= 2^64 - 1, else 0 */
    uint32_t width;
    int64_t rel_base;            /* subtracted from bucket x for relative time */
    int (*cmp)(const void *, const void *); /* axis order */

    /* the open column */
    int open;                    /* a column is open */
    int have_col;                /* col, col_lo, col_hi hold a column (open or closed) */
    uint32_t col;                /* its number */
    i128 col_lo, col_hi;         /* its x range */
    uint64_t count, n_nan;       /* points, NaN points */
    double sum;                  /* over non-NaN values */
    int64_t x_first_any, x_last_any; /* x of its first and last point, NaN included */
    int has_valid;               /* a non-NaN point was seen */
    tally_point first, last;     /* first and last non-NaN points */
    double min_v, max_v;         /* least and greatest non-NaN values */
    ref min_r, max_r;            /* who holds them (3) */

    /* output */
    tally_point *pts;
    size_t n_pts, cap_pts;
    tally_bucket *bk;
    size_t n_bk, cap_bk;
    uint64_t n_source;

    /* sources, head, scratch */
    source *src;
    size_t n_src;
    const tally_point *head;     /* head in axis order */
    size_t n_head;
    tally_point *head_copy;      /* owned when the axis order differs from the snapshot's */
    tally_point *buf;            /* dirty gathering */
    size_t buf_n, buf_cap;
    pending_run pend[MAX_PENDING]; /* the open column's runs with open min/max (6) */
    uint32_t n_pend;
    uint32_t lz_seen, lz_dec;    /* edge chunks read lazily, and decoded to settle them (7) */
    uint32_t lz_off;             /* edge chunks to decode directly before trying lazily again */
    int rv_valid;                /* rv holds the values of chunk (rv_block, rv_k) */
    int rts_valid;               /* and rts its timestamps */
    uint32_t rv_block, rv_k;
    double rv[CHUNK];            /* values of a chunk decoded to resolve a run */
    int64_t rts[CHUNK];
    int64_t st[CHUNK], ts[CHUNK]; /* one decoded chunk */
    double v[CHUNK];
} ds_ctx;

/* An x in the request's unit: relative time can exceed int64 (5); saturate. */
static inline int64_t sat64(i128 x)
{
    return x < (i128)INT64_MIN ? INT64_MIN : x > (i128)INT64_MAX ? INT64_MAX : (int64_t)x;
}

static inline int64_t xof(const ds_ctx *c, const tally_point *p)
{
    return c->axis == TALLY__AXIS_STEP ? p->step : p->timestamp_ms;
}

/* First x of column k (0 <= k <= width): lo + ceil(k * span / width) (5).
 * When span * width fits 64 bits (any span below 2^48) the products and
 * quotients are done in 64 bits, a fraction of a 128-bit division's cost. */
static inline i128 col_start(const ds_ctx *c, uint32_t k)
{
    if (c->span64)
        return c->lo + (i128)(((uint64_t)k * c->span64 + c->width - 1) / c->width);
    i128 num = (i128)k * c->span;
    return c->lo + (num + c->width - 1) / c->width;
}

static inline uint32_t col_of(const ds_ctx *c, int64_t x)
{
    if (c->span64)
        return (uint32_t)((uint64_t)((i128)x - c->lo) * c->width / c->span64);
    return (uint32_t)((((i128)x - c->lo) * c->width) / c->span);
}

/* --- output ------------------------------------------------------------------ */

static inline int push_point(ds_ctx *c, const tally_point *p)
{
    if (c->n_pts == c->cap_pts) {
        size_t cap = c->cap_pts ? 2 * c->cap_pts : 256;
        tally_point *np = tally__realloc(c->pts, cap * sizeof *np);
        RETURN_ERROR_IF(!np, TALLY_ENOMEM);
        c->pts = np;
        c->cap_pts = cap;
    }
    c->pts[c->n_pts++] = *p;
    return 0;
}

static int push_bucket(ds_ctx *c, const tally_bucket *b)
{
    if (c->n_bk == c->cap_bk) {
        size_t cap = c->cap_bk ? 2 * c->cap_bk : 256;
        tally_bucket *nb = tally__realloc(c->bk, cap * sizeof *nb);
        RETURN_ERROR_IF(!nb, TALLY_ENOMEM);
        c->bk = nb;
        c->cap_bk = cap;
    }
    c->bk[c->n_bk++] = *b;
    return 0;
}

/* --- the column accumulator ------------------------------------------------------ */

static inline int resolve(ds_ctx *c, const ref *r, int want_max, tally_point *out)
{
    switch (r->kind) {
    case REF_POINT:
        *out = r->p;
        return 0;
    case REF_NODE: {
        tally_point mn, mx;
        int rc = tally__rollup_block_extremes(c->r, c->s, r->block, &mn, &mx);
        *out = want_max ? mx : mn;
        return rc;
    }
    }
    return TALLY_EINVAL;
}

static int resolve_pending(ds_ctx *c);

static int close_col(ds_ctx *c)
{
    if (!c->open)
        return 0;
    if (c->n_pend) {
        int rc = resolve_pending(c);
        if (rc)
            return rc;
    }
    c->open = 0;
    c->n_source += c->count;
    if (c->method == TALLY_DS_BUCKETS) {
        tally_bucket b;
        b.x_lo = sat64((i128)c->x_first_any - c->rel_base);
        b.x_hi = sat64((i128)c->x_last_any - c->rel_base);
        b.count = c->count;
        b.n_nan = c->n_nan;
        b.min = c->has_valid ? c->min_v : NAN;
        b.max = c->has_valid ? c->max_v : NAN;
        b.mean = c->has_valid ? c->sum / (double)(c->count - c->n_nan) : NAN;
        return push_bucket(c, &b);
    }
    if (!c->has_valid)
        return 0; /* NaN only: M4 draws nothing here */
    tally_point p[4];
    p[0] = c->first;
    int rc = resolve(c, &c->min_r, 0, &p[1]);
    if (rc == 0)
        rc = resolve(c, &c->max_r, 1, &p[2]);
    if (rc)
        return rc;
    p[3] = c->last;
    /* first <= min, max <= last in axis order: only min and max may need a
     * swap. Then drop repeats (the same point in two roles). */
    if (axis_cmp(c->axis, &p[2], &p[1]) < 0) {
        tally_point t = p[1];
        p[1] = p[2];
        p[2] = t;
    }
    for (int i = 0; i < 4; i++) {
        if (i > 0 && same_point(&p[i], &p[i - 1]))
            continue;
        rc = push_point(c, &p[i]);
        if (rc)
            return rc;
    }
    return 0;
}

/* Makes column k the current one (closed). */
static inline void set_col(ds_ctx *c, uint32_t k)
{
    c->col = k;
    c->col_lo = col_start(c, k);
    c->col_hi = col_start(c, k + 1) - 1;
    c->have_col = 1;
}

/* Opens the current column (col, col_lo, col_hi) empty, its first point at x. */
static inline void open_col(ds_ctx *c, int64_t x)
{
    c->open = 1;
    c->n_pend = 0;
    c->count = c->n_nan = 0;
    c->sum = 0.0;
    c->has_valid = 0;
    c->x_first_any = x;
}

/* Makes the column holding x the open one (x never goes back, (1)). */
static inline int goto_x(ds_ctx *c, int64_t x)
{
    assert(!c->open || (i128)x >= c->col_lo); /* (1) */
    assert((i128)x >= c->lo && (i128)x <= c->hi);
    if (c->open && (i128)x <= c->col_hi)
        return 0;
    int rc = close_col(c);
    if (rc)
        return rc;
    i128 next_lo = c->col_hi + 1;
    if (c->have_col && c->col + 1 < c->width && (i128)x >= next_lo) {
        /* Most moves are to the next column: one division, not three. */
        i128 next_hi = col_start(c, c->col + 2) - 1;
        if ((i128)x <= next_hi) {
            c->col++;
            c->col_lo = next_lo;
            c->col_hi = next_hi;
            goto opened;
        }
    }
    set_col(c, col_of(c, x));
opened:
    open_col(c, x);
    return 0;
}

static inline int acc_point(ds_ctx *c, const tally_point *p)
{
    int64_t x = xof(c, p);
    int rc = goto_x(c, x);
    if (rc)
        return rc;
    c->count++;
    c->x_last_any = x;
    double v = p->value;
    if (v != v) {
        c->n_nan++;
        return 0;
    }
    c->sum += v;
    if (!c->has_valid) {
        c->has_valid = 1;
        c->first = *p;
        c->min_v = c->max_v = v;
        c->min_r.kind = c->max_r.kind = REF_POINT;
        c->min_r.p = c->max_r.p = *p;
    } else {
        if (v < c->min_v) {
            c->min_v = v;
            c->min_r.kind = REF_POINT;
            c->min_r.p = *p;
        }
        if (v > c->max_v) {
            c->max_v = v;
            c->max_r.kind = REF_POINT;
            c->max_r.p = *p;
        }
    }
    c->last = *p;
    return 0;
}

/* A summary inside the open column without NaN (2). */
static inline void acc_summary(ds_ctx *c, const tally_point *first, const tally_point *last,
                               double min_v, const ref *min_r, double max_v, const ref *max_r,
                               uint64_t count, double sum)
{
    assert(c->open && (i128)xof(c, first) >= c->col_lo && (i128)xof(c, last) <= c->col_hi); /* (2) */
    assert(min_v == min_v && max_v == max_v);
    if (c->count == 0)
        c->x_first_any = xof(c, first);
    c->x_last_any = xof(c, last);
    c->count += count;
    c->sum += sum;
    if (!c->has_valid) {
        c->has_valid = 1;
        c->first = *first;
        c->min_v = min_v;
        c->max_v = max_v;
        c->min_r = *min_r;
        c->max_r = *max_r;
    } else {
        if (min_v < c->min_v) {
            c->min_v = min_v;
            c->min_r = *min_r;
        }
        if (max_v > c->max_v) {
            c->max_v = max_v;
            c->max_r = *max_r;
        }
    }
    c->last = *last;
}

/* --- reading blocks -------------------------------------------------------------- */

/* Decodes chunk k of block (n points) into st/ts/v: steps are filled in
 * without decoding when the chunk's steps are dense. */
static int decode_chunk(ds_ctx *c, uint32_t block, uint32_t k, const tally__rchunk *cr)
{
    int dense = (cr->flags & TALLY__RCHUNK_STEPS_DENSE) != 0;
    int linear = (cr->flags & TALLY__RCHUNK_TS_LINEAR) != 0;
    int rc = tally_snapshot_block_decode(c->s, block, k * CHUNK, cr->n_points, dense ? NULL : c->st,
                                         linear ? NULL : c->ts, c->v);
    if (rc == 0 && dense)
        for (uint32_t i = 0; i < cr->n_points; i++)
            c->st[i] = cr->first.step + (int64_t)i;
    if (rc == 0 && linear) {
        int64_t d = cr->n_points > 1 ? (int64_t)(((uint64_t)cr->last.timestamp_ms -
                                                  (uint64_t)cr->first.timestamp_ms) /
                                                 (cr->n_points - 1))
                                     : 0;
        for (uint32_t i = 0; i < cr->n_points; i++)
            c->ts[i] = (int64_t)((uint64_t)cr->first.timestamp_ms + (uint64_t)d * i);
    }
    return rc;
}

/* --- chunks cut by one column edge, read lazily (6) ------------------------------- */

/* The step of the current min (want_max = 0) or max candidate of the open
 * column; x = step here (feed_edge_chunk runs only on the step axis). */
static int cand_step(ds_ctx *c, int want_max, int64_t *step)
{
    tally_point p = {0, 0, 0};
    int rc = resolve(c, want_max ? &c->max_r : &c->min_r, want_max, &p);
    *step = p.step;
    return rc;
}

/* Timestamp of point j of a pending run's chunk. */
static int run_ts(ds_ctx *c, const pending_run *pr, uint32_t j, int64_t *ts)
{
    const tally__rchunk *cr = pr->cr;
    if (cr->flags & TALLY__RCHUNK_TS_LINEAR) {
        uint64_t d = cr->n_points > 1 ? ((uint64_t)cr->last.timestamp_ms -
                                         (uint64_t)cr->first.timestamp_ms) / (cr->n_points - 1)
                                      : 0;
        *ts = (int64_t)((uint64_t)cr->first.timestamp_ms + d * j);
        return 0;
    }
    return tally_snapshot_block_decode(c->s, pr->block, pr->k * CHUNK + j, 1, NULL, ts, NULL);
}

/* Offers point j of a pending run as the column's min (want_max = 0) or
 * max: it wins when strictly better, or equal and earlier in x, which is
 * the first occurrence over the whole column (3) whatever the order in
 * which candidates were seen. */
static int offer(ds_ctx *c, const pending_run *pr, uint32_t j, int want_max)
{
    double v = c->rv[j], cur = want_max ? c->max_v : c->min_v;
    int64_t step = pr->cr->first.step + (int64_t)j;
    if (want_max ? v < cur : v > cur)
        return 0;
    if (v == cur) {
        int64_t cs;
        int rc = cand_step(c, want_max, &cs);
        if (rc || cs <= step)
            return rc;
    }
    int64_t ts;
    int rc = run_ts(c, pr, j, &ts);
    if (rc)
        return rc;
    ref r = {REF_POINT, 0, {step, ts, v}};
    if (want_max) {
        c->max_v = v;
        c->max_r = r;
    } else {
        c->min_v = v;
        c->min_r = r;
    }
    return 0;
}

/* Settles the open column's pending runs: a run whose bound cannot beat
 * the column's best (strictly: a tie may be an earlier point) is left
 * alone; any other has its chunk's values decoded once and its exact first
 * min / max offered. Order does not matter: offer() keeps the column's
 * least (value, x), so each settled run only improves the candidate. */
static int resolve_pending(ds_ctx *c)
{
    uint32_t n = c->n_pend;
    c->n_pend = 0;
    for (uint32_t t = 0; t < n; t++) {
        const pending_run *pr = &c->pend[t];
        const tally__rchunk *cr = pr->cr;
        int need_min = pr->min_open && !(cr->min_pt.value > c->min_v);
        int need_max = pr->max_open && !(cr->max_pt.value < c->max_v);
        if (!need_min && !need_max)
            continue;
        if (!c->rv_valid || c->rv_block != pr->block || c->rv_k != pr->k) {
            c->rv_valid = c->rts_valid = 0;
            int rc = tally_snapshot_block_decode(c->s, pr->block, pr->k * CHUNK, cr->n_points, NULL,
                                                 NULL, c->rv);
            if (rc)
                return rc;
            c->lz_dec++;
            c->rv_valid = 1;
            c->rv_block = pr->block;
            c->rv_k = pr->k;
        }
        const double *v = c->rv;
        uint32_t jm = pr->i, jM = pr->i;
        for (uint32_t j = pr->i + 1; j < pr->q; j++) {
            jm = v[j] < v[jm] ? j : jm;
            jM = v[j] > v[jM] ? j : jM;
        }
        int rc = need_min ? offer(c, pr, jm, 0) : 0;
        if (rc == 0 && need_max)
            rc = offer(c, pr, jM, 1);
        if (rc)
            return rc;
    }
    return 0;
}

/* One run [i, q) of an edge chunk, whose first and last points are known,
 * fed to the open column: the chunk's min (max) is the run's when its
 * index falls in the run; otherwise the run's min (max) is pending, and
 * the run's two known points stand in for it until the column closes. */
static int feed_edge_run(ds_ctx *c, uint32_t block, uint32_t k, const tally__rchunk *cr, uint32_t i,
                         uint32_t q, const tally_point *first, const tally_point *last)
{
    int min_in = cr->argmin >= i && cr->argmin < q;
    int max_in = cr->argmax >= i && cr->argmax < q;
    ref rmin = {REF_POINT, 0, cr->min_pt}, rmax = {REF_POINT, 0, cr->max_pt};
    if (!min_in) /* first occurrence: the later point only if strictly less */
        rmin.p = last->value < first->value ? *last : *first;
    if (!max_in)
        rmax.p = last->value > first->value ? *last : *first;
    acc_summary(c, first, last, rmin.p.value, &rmin, rmax.p.value, &rmax, q - i, 0.0);
    if (!min_in || !max_in) {
        assert(c->n_pend < MAX_PENDING);
        c->pend[c->n_pend++] = (pending_run){block, k, cr, i, q, !min_in, !max_in};
    }
    return 0;
}

/* Counts one lazily read edge chunk and, every LZ_WINDOW of them, checks
 * how many had to be decoded anyway: on data where most must (a smooth
 * monotone series: each side's unknown min or max is its edge point, and
 * the chunk's bound always ties or beats it), reading lazily costs the two
 * points on top of the decode, so the next LZ_PAUSE edge chunks are
 * decoded directly, then lazy reading is tried again (7). */
#define LZ_WINDOW 32u
#define LZ_PAUSE 128u
static inline void lazy_policy(ds_ctx *c)
{
    if (++c->lz_seen < LZ_WINDOW)
        return;
    if (2 * c->lz_dec > c->lz_seen)
        c->lz_off = LZ_PAUSE;
    c->lz_seen = c->lz_dec = 0;
}

/* M4 on the step axis over a chunk with dense steps, no NaN, wholly inside
 * the piece and cut by exactly one column edge: reads only the two points
 * beside the edge (O(1) codec look-ups) and feeds each side as a run.
 * Returns 1 when it fed the chunk, 0 when the chunk does not qualify (the
 * caller decodes it), or an error. */
static int feed_edge_chunk(ds_ctx *c, uint32_t block, uint32_t k, const tally__rchunk *cr)
{
    int64_t fx = cr->first.step, lx = cr->last.step;
    if (c->n_pend + 2 > MAX_PENDING || c->col + 1 >= c->width)
        return 0;
    i128 next_hi = col_start(c, c->col + 2) - 1;
    if ((i128)lx > next_hi)
        return 0; /* two or more edges: decode it */
    uint32_t e = (uint32_t)(c->col_hi + 1 - fx); /* first index of the next column */
    assert(e >= 1 && e < cr->n_points);
    int64_t ts[2];
    double v[2];
    int linear = (cr->flags & TALLY__RCHUNK_TS_LINEAR) != 0;
    int rc = tally_snapshot_block_decode(c->s, block, k * CHUNK + e - 1, 2, NULL,
                                         linear ? NULL : ts, v);
    if (rc)
        return rc;
    if (linear) {
        pending_run tmp = {block, k, cr, 0, 0, 0, 0};
        rc = run_ts(c, &tmp, e - 1, &ts[0]);
        if (rc == 0)
            rc = run_ts(c, &tmp, e, &ts[1]);
        if (rc)
            return rc;
    }
    tally_point left_last = {fx + (int64_t)e - 1, ts[0], v[0]};
    tally_point right_first = {fx + (int64_t)e, ts[1], v[1]};
    rc = feed_edge_run(c, block, k, cr, 0, e, &cr->first, &left_last);
    if (rc == 0)
        rc = goto_x(c, right_first.step);
    if (rc == 0)
        rc = feed_edge_run(c, block, k, cr, e, cr->n_points, &right_first, &cr->last);
    return rc ? rc : 1;
}

/* First index in [i, n) of sorted xs with xs[index] > x, or n. */
static inline uint32_t upper_index(const int64_t *xs, uint32_t i, uint32_t n, i128 x)
{
    while (i < n) {
        uint32_t mid = i + (n - i) / 2;
        if ((i128)xs[mid] <= x)
            i = mid + 1;
        else
            n = mid;
    }
    return i;
}

/* Feeds the points of a decoded chunk (sorted on the axis, no NaN) with x in
 * [a, b] as one summary per column they fall in: a tight min/max loop per
 * run instead of a call per point; a run that holds the chunk's own first
 * min (max) needs no scan for it. first_step_dense is the chunk's first
 * step when its steps are dense and x is the step (a run's end is then
 * arithmetic), else INT64_MIN. */
static int feed_runs(ds_ctx *c, const tally__rchunk *cr, int64_t a, int64_t b,
                     int64_t first_step_dense)
{
    uint32_t n = cr->n_points;
    const int64_t *xs = c->axis == TALLY__AXIS_STEP ? c->st : c->ts;
    const double *v = c->v;
    uint32_t i = (uint32_t)upper_index(xs, 0, n, (i128)a - 1);
    uint32_t end = upper_index(xs, i, n, b);
    while (i < end) {
        int rc = goto_x(c, xs[i]);
        if (rc)
            return rc;
        uint32_t q;
        if (first_step_dense != INT64_MIN) {
            i128 k = c->col_hi - first_step_dense + 1; /* index of the column's end + 1 */
            q = k < (i128)end ? (uint32_t)k : end;
        } else {
            q = upper_index(xs, i + 1, end, c->col_hi);
        }
        /* Least and greatest value over four independent lanes (a scan's
         * dependency chain is the cost here), then the first index holding
         * each: that is the point a left-to-right scan with < and > keeps
         * (3), and its value is reported, so -0.0/+0.0 ties come out as the
         * scan's. The sum is only needed by buckets. */
        uint32_t amin = cr->argmin, amax = cr->argmax;
        if (q - i <= 16 && (amin < i || amin >= q || amax < i || amax >= q)) {
            /* A short run (a zoomed query: a few points per column): one
             * pass keeping the first strict minimum and maximum. */
            amin = amax = i;
            for (uint32_t t = i + 1; t < q; t++) {
                amin = v[t] < v[amin] ? t : amin;
                amax = v[t] > v[amax] ? t : amax;
            }
        } else if (amin < i || amin >= q || amax < i || amax >= q) {
            double m0 = v[i], m1 = m0, m2 = m0, m3 = m0, x0 = m0, x1 = m0, x2 = m0, x3 = m0;
            uint32_t t = i;
            for (; t + 4 <= q; t += 4) {
                m0 = v[t] < m0 ? v[t] : m0;
                m1 = v[t + 1] < m1 ? v[t + 1] : m1;
                m2 = v[t + 2] < m2 ? v[t + 2] : m2;
                m3 = v[t + 3] < m3 ? v[t + 3] : m3;
                x0 = v[t] > x0 ? v[t] : x0;
                x1 = v[t + 1] > x1 ? v[t + 1] : x1;
                x2 = v[t + 2] > x2 ? v[t + 2] : x2;
                x3 = v[t + 3] > x3 ? v[t + 3] : x3;
            }
            for (; t < q; t++) {
                m0 = v[t] < m0 ? v[t] : m0;
                x0 = v[t] > x0 ? v[t] : x0;
            }
            m0 = m1 < m0 ? m1 : m0;
            m2 = m3 < m2 ? m3 : m2;
            m0 = m2 < m0 ? m2 : m0;
            x0 = x1 > x0 ? x1 : x0;
            x2 = x3 > x2 ? x3 : x2;
            x0 = x2 > x0 ? x2 : x0;
            if (amin < i || amin >= q)
                for (amin = i; !(v[amin] == m0); amin++)
                    ;
            if (amax < i || amax >= q)
                for (amax = i; !(v[amax] == x0); amax++)
                    ;
        }
        double mn = v[amin], mx = v[amax];
        uint32_t t;
        double sum = 0;
        if (c->method == TALLY_DS_BUCKETS)
            for (t = i; t < q; t++)
                sum += v[t];
        tally_point first = {c->st[i], c->ts[i], v[i]};
        tally_point last = {c->st[q - 1], c->ts[q - 1], v[q - 1]};
        ref rmin = {REF_POINT, 0, {c->st[amin], c->ts[amin], v[amin]}};
        ref rmax = {REF_POINT, 0, {c->st[amax], c->ts[amax], v[amax]}};
        acc_summary(c, &first, &last, mn, &rmin, mx, &rmax, q - i, sum);
        i = q;
    }
    return 0;
}

/* Asks the engine to start loading every chunk of the block that a column
 * edge in [a, b] cuts: those are the chunks feed_block will read points
 * from, and their memory latency then overlaps instead of adding up. */
static int prefetch_edges(ds_ctx *c, uint32_t block, const tally__rchunk *ch, uint32_t nc,
                          int64_t a, int64_t b)
{
    uint32_t ks[64], nk = 0, k = 0;
    int64_t lo = xof(c, &ch[0].first) > a ? xof(c, &ch[0].first) : a;
    int64_t hi = xof(c, &ch[nc - 1].last) < b ? xof(c, &ch[nc - 1].last) : b;
    if (lo > hi)
        return 0;
    for (uint32_t m = col_of(c, lo) + 1; m < c->width; m++) {
        i128 edge = col_start(c, m);
        if (edge > (i128)hi)
            break;
        while (k < nc && (i128)xof(c, &ch[k].last) < edge)
            k++;
        if (k == nc)
            break;
        if ((i128)xof(c, &ch[k].first) < edge && (nk == 0 || ks[nk - 1] != k)) {
            ks[nk++] = k;
            if (nk == sizeof ks / sizeof ks[0]) {
                int rc = tally_snapshot_block_prefetch_chunks(c->s, block, ks, nk);
                if (rc)
                    return rc;
                nk = 0;
            }
        }
    }
    return nk ? tally_snapshot_block_prefetch_chunks(c->s, block, ks, nk) : 0;
}

/* Feeds the points of a clean, sorted block with x in [a, b]: a chunk inside
 * one column without NaN as its cached record (2), any other chunk decoded. */
static int feed_block(ds_ctx *c, uint32_t block, int64_t a, int64_t b)
{
    const tally__rchunk *ch;
    int rc = tally__rollup_chunks(c->r, c->s, block, &ch);
    if (rc)
        return rc;
    uint32_t nc = tally__rollup_block(c->r, block)->n_chunks;
    if (nc && c->axis == TALLY__AXIS_STEP && (rc = prefetch_edges(c, block, ch, nc, a, b)) != 0)
        return rc;
    for (uint32_t k = 0; k < nc; k++) {
        const tally__rchunk *cr = &ch[k];
        int64_t fx = xof(c, &cr->first), lx = xof(c, &cr->last);
        if (lx < a)
            continue;
        if (fx > b)
            break;
        if (fx >= a && lx <= b && cr->n_nan == 0) {
            rc = goto_x(c, fx);
            if (rc)
                return rc;
            if ((i128)lx <= c->col_hi) {
                ref mn = {REF_POINT, 0, cr->min_pt}, mx = {REF_POINT, 0, cr->max_pt};
                acc_summary(c, &cr->first, &cr->last, cr->min_pt.value, &mn, cr->max_pt.value, &mx,
                            cr->n_points, cr->sum);
                continue;
            }
            if (c->method == TALLY_DS_M4 && c->axis == TALLY__AXIS_STEP &&
                (cr->flags & TALLY__RCHUNK_STEPS_DENSE)) {
                if (c->lz_off) {
                    c->lz_off--; /* (7) */
                } else {
                    rc = feed_edge_chunk(c, block, k, cr);
                    if (rc < 0)
                        return rc;
                    if (rc == 1) {
                        lazy_policy(c);
                        continue;
                    }
                }
            }
        }
        rc = decode_chunk(c, block, k, cr);
        if (rc)
            return rc;
        if (cr->n_nan == 0) {
            int dense = c->axis == TALLY__AXIS_STEP && (cr->flags & TALLY__RCHUNK_STEPS_DENSE);
            rc = feed_runs(c, cr, a, b, dense ? cr->first.step : INT64_MIN);
        } else {
            for (uint32_t i = 0; i < cr->n_points && rc == 0; i++) {
                tally_point p = {c->st[i], c->ts[i], c->v[i]};
                int64_t x = xof(c, &p);
                if (x > b)
                    break;
                if (x >= a)
                    rc = acc_point(c, &p);
            }
        }
        if (rc)
            return rc;
    }
    return 0;
}

/* --- M4 over a dense block, column by column (8) ------------------------------ */

/* Does block bs qualify for feed_dense_m4: no NaN, and step = min_step + index? */
static int dense_block(const tally_block_summary *bs)
{
    return bs->n_nan == 0 && (bs->flags & TALLY_BLOCK_STEPS_LINEAR) &&
           (uint64_t)bs->max_step - (uint64_t)bs->min_step == (uint64_t)bs->n_points - 1;
}

/* Points in chunk k of a block of n points. */
static inline uint32_t chunk_len(uint32_t n, uint32_t k)
{
    return n - k * CHUNK < CHUNK ? n - k * CHUNK : CHUNK;
}

/* Puts chunk k's values (and timestamps when want_ts) in rv (rts), keeping
 * what the cache already holds of that chunk. */
static int load_chunk(ds_ctx *c, uint32_t block, uint32_t k, uint32_t n, int want_ts)
{
    int same = c->rv_valid && c->rv_block == block && c->rv_k == k;
    if (same && (!want_ts || c->rts_valid))
        return 0;
    int rc = tally_snapshot_block_decode(c->s, block, k * CHUNK, n, NULL, want_ts ? c->rts : NULL,
                                         same ? NULL : c->rv);
    c->rts_valid = rc == 0 && (want_ts || (same && c->rts_valid));
    c->rv_valid = rc == 0;
    c->rv_block = block;
    c->rv_k = k;
    return rc;
}

/* A point of a dense block by block index: value and timestamp, the step
 * being s0 + idx. */
typedef struct dpoint {
    uint32_t idx;
    int64_t ts;
    double v;
} dpoint;

/* Points idx .. idx + cnt - 1 (cnt <= 2, one chunk) of a dense block: from
 * the chunk cache when it holds them, else read with the codecs' random
 * access (one engine call). */
static int dpoints_at(ds_ctx *c, uint32_t block, uint32_t idx, uint32_t cnt, dpoint *out)
{
    uint32_t k = idx / CHUNK, j = idx % CHUNK;
    if (c->rv_valid && c->rts_valid && c->rv_block == block && c->rv_k == k) {
        for (uint32_t t = 0; t < cnt; t++)
            out[t] = (dpoint){idx + t, c->rts[j + t], c->rv[j + t]};
        return 0;
    }
    int64_t ts[2];
    double v[2];
    int rc = tally_snapshot_block_decode(c->s, block, idx, cnt, NULL, ts, v);
    for (uint32_t t = 0; t < cnt && rc == 0; t++)
        out[t] = (dpoint){idx + t, ts[t], v[t]};
    return rc;
}

/* A min or max candidate of a column part: value and block index, and the
 * timestamp when known. Candidates compare by (value, index), so the first
 * occurrence wins whatever the order they are offered in (3). */
typedef struct cand {
    double v;
    uint32_t idx;
    int has_ts;
    int64_t ts;
} cand;

#define OFFER_MIN(b, v_, idx_, has_ts_, ts_)                                                  \
    do {                                                                                      \
        if ((v_) < (b).v || ((v_) == (b).v && (idx_) < (b).idx))                              \
            (b) = (cand){(v_), (idx_), (has_ts_), (ts_)};                                     \
    } while (0)
#define OFFER_MAX(b, v_, idx_, has_ts_, ts_)                                                  \
    do {                                                                                      \
        if ((v_) > (b).v || ((v_) == (b).v && (idx_) < (b).idx))                              \
            (b) = (cand){(v_), (idx_), (has_ts_), (ts_)};                                     \
    } while (0)

/* First least and greatest of v[p..q] (chunk indexes) offered as block
 * indexes base + t, with their timestamps when ts is not NULL. */
/* Indexes of the first least and first greatest of v[p..q] (no NaN). */
static inline void first_extremes(const double *v, uint32_t p, uint32_t q, uint32_t *am,
                                  uint32_t *aM)
{
    double lo = v[p], hi = v[p];
    uint32_t m = p, M = p;
    for (uint32_t t = p + 1; t <= q; t++) {
        double x = v[t];
        m = x < lo ? t : m;
        lo = x < lo ? x : lo;
        M = x > hi ? t : M;
        hi = x > hi ? x : hi;
    }
    *am = m;
    *aM = M;
}

static void scan_part(const double *v, const int64_t *ts, uint32_t p, uint32_t q, uint32_t base,
                      cand *mn, cand *mx, int want_min, int want_max)
{
    uint32_t am, aM;
    first_extremes(v, p, q, &am, &aM);
    if (want_min)
        OFFER_MIN(*mn, v[am], base + am, ts != NULL, ts ? ts[am] : 0);
    if (want_max)
        OFFER_MAX(*mx, v[aM], base + aM, ts != NULL, ts ? ts[aM] : 0);
}

/* The timestamp of a candidate, read when not known. */
static int cand_ts(ds_ctx *c, uint32_t block, cand *b)
{
    if (b->has_ts)
        return 0;
    dpoint p;
    int rc = dpoints_at(c, block, b->idx, 1, &p);
    b->ts = p.ts;
    b->has_ts = rc == 0;
    return rc;
}

/* The min and max of block indexes [i, j] of a dense block of n points,
 * whose first and last points are known: whole chunks from their min/max
 * copies (one pass), a chunk the part cuts from its copy when that chunk's
 * own min (max) lies inside the part, else bounded by it and decoded only
 * if the bound could still win; a chunk in the chunk cache is scanned. */
static int part_extremes(ds_ctx *c, uint32_t block, const tally__rchunk_mm *mm,
                         const tally__rchunk_oct *oct, uint32_t n, uint32_t i, uint32_t j, const dpoint *first, const dpoint *last,
                         cand *mn_out, cand *mx_out)
{
    uint32_t k0 = i / CHUNK, k1 = j / CHUNK;
    cand mn = {first->v, i, 1, first->ts}, mx = mn;
    OFFER_MIN(mn, last->v, j, 1, last->ts);
    OFFER_MAX(mx, last->v, j, 1, last->ts);
    struct cut_part {
        uint32_t k, p, q;       /* chunk, block indexes [p, q] */
        int open_min, open_max; /* its min (max) is only bounded */
    } cut[2];
    int n_cut = 0;
    for (uint32_t k = k0; k <= k1; k++) {
        uint32_t cs = k * CHUNK, ce = cs + chunk_len(n, k) - 1;
        uint32_t p = i > cs ? i : cs, q = j < ce ? j : ce;
        if (p == cs && q == ce) {
            /* whole chunks k..kb in one pass */
            uint32_t kb = (j == k1 * CHUNK + chunk_len(n, k1) - 1) ? k1 : k1 - 1;
            uint32_t km = k, kM = k;
            for (uint32_t t = k + 1; t <= kb; t++) {
                km = mm[t].min_v < mm[km].min_v ? t : km;
                kM = mm[t].max_v > mm[kM].max_v ? t : kM;
            }
            OFFER_MIN(mn, mm[km].min_v, km * CHUNK + mm[km].argmin, 1, mm[km].min_ts);
            OFFER_MAX(mx, mm[kM].max_v, kM * CHUNK + mm[kM].argmax, 1, mm[kM].max_ts);
            k = kb;
            continue;
        }
        if (c->rv_valid && c->rv_block == block && c->rv_k == k) {
            scan_part(c->rv, c->rts_valid ? c->rts : NULL, p - cs, q - cs, cs, &mn, &mx, 1, 1);
            continue;
        }
        uint32_t am = cs + mm[k].argmin, aM = cs + mm[k].argmax;
        int in_min = am >= p && am <= q, in_max = aM >= p && aM <= q;
        if (in_min)
            OFFER_MIN(mn, mm[k].min_v, am, 1, mm[k].min_ts);
        if (in_max)
            OFFER_MAX(mx, mm[k].max_v, aM, 1, mm[k].max_ts);
        /* A strictly rising or falling chunk has its part's extremes at the
         * part's ends: the chunk's own (offered above when inside) or the
         * column's first or last point (candidates already). */
        if ((!in_min || !in_max) && !mm[k].strict)
            cut[n_cut++] = (struct cut_part){k, p, q, !in_min, !in_max};
    }
    /* A cut side whose min (max) is open: read only the eighths whose
     * bounds could still beat the candidate (ties: an earlier point wins). */
    for (int t = 0; t < n_cut; t++) {
        uint32_t k = cut[t].k, cs = k * CHUNK;
        const tally__rchunk_oct *o = &oct[k];
        for (uint32_t e = (cut[t].p - cs) / TALLY__RCHUNK_EIGHTH;
             e <= (cut[t].q - cs) / TALLY__RCHUNK_EIGHTH; e++) {
            uint32_t lo_i = cs + e * TALLY__RCHUNK_EIGHTH, hi_i = lo_i + TALLY__RCHUNK_EIGHTH - 1;
            lo_i = lo_i > cut[t].p ? lo_i : cut[t].p;
            hi_i = hi_i < cut[t].q ? hi_i : cut[t].q;
            int need_min = 0, need_max = 0; /* a bound is computed only for an open side */
            if (cut[t].open_min) {
                double lo = tally__rchunk_eighth_bound(mm[k].min_v, mm[k].max_v, o->lo[e]);
                need_min = lo < mn.v || (lo == mn.v && lo_i < mn.idx);
            }
            if (cut[t].open_max) {
                double hi = tally__rchunk_eighth_bound(mm[k].min_v, mm[k].max_v, o->hi[e]);
                need_max = hi > mx.v || (hi == mx.v && lo_i < mx.idx);
            }
            if (!need_min && !need_max)
                continue;
            double v[TALLY__RCHUNK_EIGHTH];
            int rc = tally_snapshot_block_decode(c->s, block, lo_i, hi_i - lo_i + 1, NULL, NULL, v);
            if (rc)
                return rc;
            scan_part(v, NULL, 0, hi_i - lo_i, lo_i, &mn, &mx, need_min, need_max);
        }
    }
    int rc = cand_ts(c, block, &mn);
    if (rc == 0)
        rc = cand_ts(c, block, &mx);
    *mn_out = mn;
    *mx_out = mx;
    return rc;
}

/* Writes a whole column that lies inside one dense block (first step s0)
 * straight to the output, as close_col would: first, min and max in x
 * order, last, each point once. */
static inline int emit_dense(ds_ctx *c, int64_t s0, const dpoint *first, const dpoint *last,
                      const cand *mn, const cand *mx)
{
    const cand *lo = mn->idx <= mx->idx ? mn : mx, *hi = mn->idx <= mx->idx ? mx : mn;
    if (c->n_pts + 4 > c->cap_pts) {
        size_t cap = c->cap_pts ? 2 * c->cap_pts : 256;
        tally_point *np = tally__realloc(c->pts, cap * sizeof *np);
        RETURN_ERROR_IF(!np, TALLY_ENOMEM);
        c->pts = np;
        c->cap_pts = cap;
    }
    tally_point *o = c->pts + c->n_pts;
    size_t k = 0;
    o[k++] = (tally_point){s0 + (int64_t)first->idx, first->ts, first->v};
    if (lo->idx != first->idx)
        o[k++] = (tally_point){s0 + (int64_t)lo->idx, lo->ts, lo->v};
    if (hi->idx != lo->idx)
        o[k++] = (tally_point){s0 + (int64_t)hi->idx, hi->ts, hi->v};
    if (last->idx != hi->idx)
        o[k++] = (tally_point){s0 + (int64_t)last->idx, last->ts, last->v};
    c->n_pts += k;
    c->n_source += (uint64_t)(last->idx - first->idx) + 1;
    return 0;
}

/* Block indexes [i, j] of a dense block, all in chunk cs / CHUNK (cs its
 * first index), whose values and timestamps are in rv/rts: their first and
 * last points, and their first least and greatest as candidates. */
static inline void copy_part(const ds_ctx *c, uint32_t cs, uint32_t i, uint32_t j, dpoint *first,
                             dpoint *last, cand *mn, cand *mx)
{
    const double *v = c->rv;
    const int64_t *ts = c->rts;
    uint32_t p = i - cs, q = j - cs, am, aM;
    first_extremes(v, p, q, &am, &aM);
    *first = (dpoint){i, ts[p], v[p]};
    *last = (dpoint){j, ts[q], v[q]};
    *mn = (cand){v[am], cs + am, 1, ts[am]};
    *mx = (cand){v[aM], cs + aM, 1, ts[aM]};
}

/* After the current column (closed, written out) ended at block index *jp
 * inside chunk k of a dense block (first step s0, n points), whose values
 * and timestamps are in rv/rts: writes out the columns after it that lie
 * wholly inside the chunk and end at or before end — the zoomed case, a few
 * points per column — as emit_dense would, stepping the column boundaries
 * by addition instead of a division each. Stops before an empty column or
 * one that reaches further (the general path takes those). Leaves the last
 * column written current and *jp its last index. */
static int narrow_columns(ds_ctx *c, int64_t s0, uint32_t k, uint32_t n, uint32_t end,
                          uint32_t *jp)
{
    uint32_t cs = k * CHUNK, ce = cs + chunk_len(n, k) - 1, lim = ce < end ? ce : end;
    uint32_t col = c->col, j = *jp;
    if (!c->span64 || j >= lim || col + 1 >= c->width)
        return 0;
    /* col_start(m) = lo + floor((m * span + width - 1) / width), for m = col + 2 on */
    uint64_t w = c->width, step_q = c->span64 / w, step_r = c->span64 % w;
    uint64_t num = (uint64_t)(col + 2) * c->span64 + w - 1, q = num / w, r = num % w;
    uint32_t last_i = 0;
    int wrote = 0;
    while (col + 1 < c->width) {
        i128 jn = c->lo + (i128)q - 1 - s0; /* last index of column col + 1 */
        uint32_t i = j + 1;
        if (jn > (i128)lim || jn < (i128)i)
            break;
        uint32_t jj = (uint32_t)jn;
        dpoint first, last;
        cand mn, mx;
        copy_part(c, cs, i, jj, &first, &last, &mn, &mx);
        int rc = emit_dense(c, s0, &first, &last, &mn, &mx);
        if (rc)
            return rc;
        col++;
        last_i = i;
        j = jj;
        wrote = 1;
        q += step_q;
        r += step_r;
        if (r >= w) {
            r -= w;
            q++;
        }
    }
    if (wrote) {
        c->col = col;
        c->col_lo = (i128)s0 + last_i; /* dense: the column began right after the one before */
        c->col_hi = (i128)s0 + j;
        c->have_col = 1;
        *jp = j;
    }
    return 0;
}

/* Starts loading the two points beside each column edge in block indexes
 * [i, end] of a dense block (first step s0): feed_dense_m4 reads them, and
 * their memory latency then overlaps. */
static int prefetch_dense_edges(ds_ctx *c, uint32_t block, int64_t s0, uint32_t i, uint32_t end)
{
    uint32_t at[64], na = 0;
    for (uint32_t m = col_of(c, s0 + (int64_t)i) + 1; m < c->width && na < 64; m++) {
        i128 edge = col_start(c, m) - s0; /* first index of column m */
        if (edge > (i128)end)
            break;
        if (edge > (i128)i && (uint32_t)edge % CHUNK != 0)
            at[na++] = (uint32_t)edge - 1;
    }
    return na ? tally_snapshot_block_prefetch_points(c->s, block, at, na) : 0;
}

/* Makes the column holding x (a point of a dense block whose part of the
 * piece ends at x_end) current: the open column when x is in it (*acc = 1);
 * else the column after the last one, written straight to the output
 * unless it reaches past x_end, where a later piece may add to it, and is
 * then opened in the accumulator (*acc = 1). */
static int dense_next_col(ds_ctx *c, int64_t x, i128 x_end, int *acc)
{
    *acc = c->open && (i128)x <= c->col_hi;
    if (*acc)
        return 0;
    int rc = close_col(c);
    if (rc)
        return rc;
    i128 next_hi;
    if (c->have_col && c->col + 1 < c->width && (i128)x == c->col_hi + 1 &&
        (i128)x <= (next_hi = col_start(c, c->col + 2) - 1)) {
        c->col++; /* the usual move (the next column, not empty): one division */
        c->col_lo = x;
        c->col_hi = next_hi;
    } else {
        set_col(c, col_of(c, x));
    }
    *acc = c->col_hi > x_end;
    if (*acc)
        open_col(c, x);
    return 0;
}

/* Feeds [a, b] of a clean block that dense_block accepts, for M4 on the
 * step axis, one column at a time: its first and last points are read by
 * index (the two points beside an edge in one look-up), its min and max
 * come from part_extremes. A column wholly inside the block is written out
 * directly; one that began in an earlier piece, or may go on in a later
 * one, goes through the column accumulator. A short part (a zoomed query:
 * many columns per chunk) decodes its chunk once for the columns after it. */
static int feed_dense_m4(ds_ctx *c, uint32_t block, const tally_block_summary *bs, int64_t a,
                         int64_t b)
{
    const tally__rchunk *ch;
    int rc = tally__rollup_chunks(c->r, c->s, block, &ch);
    if (rc)
        return rc;
    uint32_t n = bs->n_points;
    const tally__rchunk_mm *mm = tally__rchunk_minmax(ch, bs->n_chunks);
    const tally__rchunk_oct *oct = tally__rchunk_eighths(ch, bs->n_chunks);
    int64_t s0 = bs->min_step;
    uint32_t i = (uint32_t)((uint64_t)(a > s0 ? a : s0) - (uint64_t)s0);
    uint32_t end = (uint32_t)((uint64_t)(b < bs->max_step ? b : bs->max_step) - (uint64_t)s0);
    int wide = c->span >= (i128)c->width * CHUNK;
    if (wide && (rc = prefetch_dense_edges(c, block, s0, i, end)) != 0)
        return rc; /* wide columns: about one edge chunk each, read point by point */
    dpoint pair[2];
    int have_next = 0;
    for (;;) {
        int acc;
        if ((rc = dense_next_col(c, s0 + (int64_t)i, (i128)s0 + end, &acc)) != 0)
            return rc;
        i128 lim = c->col_hi - s0;
        uint32_t j = lim < (i128)end ? (uint32_t)lim : end;
        uint32_t k0 = i / CHUNK, k1 = j / CHUNK;
        if (wide) { /* the chunk two columns on cuts: its bounds lie a stride away */
            uint32_t ka = (j + 2 * (j - i + 1)) / CHUNK;
            if (ka < bs->n_chunks)
                __builtin_prefetch(&oct[ka]);
        }
        int j_ends_chunk = j == k1 * CHUNK + chunk_len(n, k1) - 1;
        dpoint first, last;
        cand mn, mx;
        int narrow = 0; /* the column lay inside one chunk: more like it may follow */
        if (k0 == k1 && (i % CHUNK != 0 || !j_ends_chunk)) {
            /* inside one chunk: every point from its decoded copy */
            if ((rc = load_chunk(c, block, k0, chunk_len(n, k0), 1)) != 0)
                return rc;
            copy_part(c, k0 * CHUNK, i, j, &first, &last, &mn, &mx);
            have_next = 0;
            narrow = !acc;
        } else if (k1 == k0 + 1 && i % CHUNK != 0 && !j_ends_chunk && j - i < CHUNK &&
                   c->rv_valid && c->rts_valid && c->rv_block == block && c->rv_k == k0) {
            /* a short column across a chunk boundary (zoomed), its first
             * chunk decoded: its part there from the copy, then the next
             * chunk decoded (the columns after it read it anyway) for the
             * rest — no point read one by one */
            uint32_t cs1 = k1 * CHUNK;
            dpoint edge;
            cand mn1, mx1;
            copy_part(c, k0 * CHUNK, i, cs1 - 1, &first, &edge, &mn, &mx);
            if ((rc = load_chunk(c, block, k1, chunk_len(n, k1), 1)) != 0)
                return rc;
            copy_part(c, cs1, cs1, j, &edge, &last, &mn1, &mx1);
            OFFER_MIN(mn, mn1.v, mn1.idx, 1, mn1.ts);
            OFFER_MAX(mx, mx1.v, mx1.idx, 1, mx1.ts);
            have_next = 0;
            narrow = !acc;
        } else {
            if (have_next)
                first = pair[1];
            else if (i % CHUNK == 0)
                first = (dpoint){i, ch[k0].first.timestamp_ms, ch[k0].first.value};
            else if ((rc = dpoints_at(c, block, i, 1, &first)) != 0)
                return rc;
            have_next = 0;
            if (j_ends_chunk) {
                last = (dpoint){j, ch[k1].last.timestamp_ms, ch[k1].last.value};
            } else if (j == end) {
                rc = dpoints_at(c, block, j, 1, &last);
            } else {
                rc = dpoints_at(c, block, j, 2, pair);
                last = pair[0];
                have_next = 1;
            }
            if (rc == 0)
                rc = part_extremes(c, block, mm, oct, n, i, j, &first, &last, &mn, &mx);
            if (rc)
                return rc;
        }
        if (acc) {
            tally_point f = {s0 + (int64_t)first.idx, first.ts, first.v};
            tally_point l = {s0 + (int64_t)last.idx, last.ts, last.v};
            ref rmn = {REF_POINT, 0, {s0 + (int64_t)mn.idx, mn.ts, mn.v}};
            ref rmx = {REF_POINT, 0, {s0 + (int64_t)mx.idx, mx.ts, mx.v}};
            acc_summary(c, &f, &l, mn.v, &rmn, mx.v, &rmx, (uint64_t)(j - i) + 1, 0.0);
        } else if ((rc = emit_dense(c, s0, &first, &last, &mn, &mx)) != 0) {
            return rc;
        }
        if (narrow && (rc = narrow_columns(c, s0, k1, n, end, &j)) != 0)
            return rc;
        if (j == end)
            return 0;
        i = j + 1;
    }
}

/* Feeds whole clean blocks at pyramid positions [p, q], all inside the open
 * column's reach and free of NaN, as one node. */
static int feed_nodes(ds_ctx *c, uint32_t p, uint32_t q)
{
    tally__rnode nd;
    tally__rollup_range(c->pyr, p, q, &nd);
    int rc = goto_x(c, xof(c, &nd.first));
    if (rc)
        return rc;
    ref mn = {REF_NODE, c->pyr->order[nd.min_pos], {0, 0, 0}};
    ref mx = {REF_NODE, c->pyr->order[nd.max_pos], {0, 0, 0}};
    acc_summary(c, &nd.first, &nd.last, nd.min_v, &mn, nd.max_v, &mx, nd.count, nd.sum);
    return 0;
}

static int gather_push(ds_ctx *c, const tally_point *p)
{
    if (c->buf_n == c->buf_cap) {
        size_t cap = c->buf_cap ? 2 * c->buf_cap : 4096;
        tally_point *nb = tally__realloc(c->buf, cap * sizeof *nb);
        RETURN_ERROR_IF(!nb, TALLY_ENOMEM);
        c->buf = nb;
        c->buf_cap = cap;
    }
    c->buf[c->buf_n++] = *p;
    return 0;
}

/* First head index with x >= a. */
static size_t head_lower(const ds_ctx *c, int64_t a)
{
    size_t lo = 0, hi = c->n_head;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (xof(c, &c->head[mid]) < a)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Every source's points with x in [a, b], sorted in axis order and
 * deduplicated, then fed point by point (4). */
static int feed_dirty(ds_ctx *c, int64_t a, int64_t b)
{
    c->buf_n = 0;
    int rc = 0;
    for (size_t j = 0; j < c->n_src && rc == 0; j++) {
        const source *sr = &c->src[j];
        if (sr->hi < a || sr->lo > b)
            continue;
        if (sr->block == HEAD_SRC) {
            for (size_t i = head_lower(c, a); i < c->n_head && rc == 0; i++) {
                if (xof(c, &c->head[i]) > b)
                    break;
                rc = gather_push(c, &c->head[i]);
            }
            continue;
        }
        const tally__rchunk *ch;
        rc = tally__rollup_chunks(c->r, c->s, sr->block, &ch);
        uint32_t nc = tally__rollup_block(c->r, sr->block)->n_chunks;
        for (uint32_t k = 0; k < nc && rc == 0; k++) {
            const tally__rchunk *cr = &ch[k];
            if (sr->sorted && xof(c, &cr->last) < a)
                continue;
            if (sr->sorted && xof(c, &cr->first) > b)
                break;
            rc = decode_chunk(c, sr->block, k, cr);
            for (uint32_t i = 0; i < cr->n_points && rc == 0; i++) {
                tally_point p = {c->st[i], c->ts[i], c->v[i]};
                int64_t x = xof(c, &p);
                if (x >= a && x <= b)
                    rc = gather_push(c, &p);
            }
        }
    }
    if (rc)
        return rc;
    if (c->buf_n > 1) /* a dirty range may hold no point at all */
        qsort(c->buf, c->buf_n, sizeof *c->buf, c->cmp);
    for (size_t i = 0; i < c->buf_n && rc == 0; i++)
        if (i == 0 || !same_point(&c->buf[i], &c->buf[i - 1]))
            rc = acc_point(c, &c->buf[i]);
    return rc;
}

/* --- sources and pieces ---------------------------------------------------------- */

static int cmp_i64(const void *pa, const void *pb)
{
    int64_t a = *(const int64_t *)pa, b = *(const int64_t *)pb;
    return a < b ? -1 : a > b;
}

static int cmp_xrange(const void *pa, const void *pb)
{
    const xrange *a = pa, *b = pb;
    return a->a < b->a ? -1 : a->a > b->a;
}

static int cmp_piece(const void *pa, const void *pb)
{
    const piece *a = pa, *b = pb;
    return a->a < b->a ? -1 : a->a > b->a;
}

/* Dirty ranges (sorted, disjoint): x covered by >= 2 sources, or by an
 * unsorted one. Ranges are clipped to [c->lo, c->hi] by the sources. */
static int dirty_ranges(const ds_ctx *c, xrange **out, size_t *n_out)
{
    size_t n = c->n_src;
    int64_t *los = tally__malloc((n + 1) * sizeof *los);
    int64_t *his = tally__malloc((n + 1) * sizeof *his);
    xrange *d = tally__malloc((2 * n + 1) * sizeof *d);
    if (!los || !his || !d) {
        tally__free(los);
        tally__free(his);
        tally__free(d);
        return TALLY_ENOMEM;
    }
    size_t nd = 0;
    for (size_t j = 0; j < n; j++) {
        los[j] = c->src[j].lo;
        his[j] = c->src[j].hi;
        if (!c->src[j].sorted)
            d[nd++] = (xrange){c->src[j].lo, c->src[j].hi};
    }
    tally__sort_unless_sorted(los, n, sizeof *los, cmp_i64);
    tally__sort_unless_sorted(his, n, sizeof *his, cmp_i64);
    /* Closed intervals: at equal x, starts count before ends. */
    size_t i = 0, k = 0;
    int cover = 0;
    int64_t start = 0;
    while (k < n) {
        if (i < n && los[i] <= his[k]) {
            if (++cover == 2)
                start = los[i];
            i++;
        } else {
            if (cover-- == 2)
                d[nd++] = (xrange){start, his[k]};
            k++;
        }
    }
    tally__free(los);
    tally__free(his);
    /* Merge overlapping or touching ranges. */
    if (nd > 1)
        tally__sort_unless_sorted(d, nd, sizeof *d, cmp_xrange);
    size_t w = 0;
    for (size_t j = 0; j < nd; j++) {
        if (w > 0 && d[j].a <= d[w - 1].b + (d[w - 1].b < INT64_MAX ? 1 : 0)) {
            if (d[j].b > d[w - 1].b)
                d[w - 1].b = d[j].b;
        } else {
            d[w++] = d[j];
        }
    }
    *out = d;
    *n_out = w;
    return 0;
}

/* Pieces in x order: every dirty range, and each sorted source's range
 * minus the dirty ranges. */
static int make_pieces(const ds_ctx *c, const xrange *d, size_t nd, piece **out, size_t *n_out)
{
    size_t cap = 2 * c->n_src + 2 * nd + 1, np = 0;
    piece *pc = tally__malloc(cap * sizeof *pc);
    RETURN_ERROR_IF(!pc, TALLY_ENOMEM);
    for (size_t j = 0; j < nd; j++)
        pc[np++] = (piece){d[j].a, d[j].b, UINT32_MAX};
    for (size_t j = 0; j < c->n_src; j++) {
        const source *sr = &c->src[j];
        if (!sr->sorted)
            continue;
        /* First dirty range that ends at or after the source's start. */
        size_t lo = 0, hi = nd;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (d[mid].b < sr->lo)
                lo = mid + 1;
            else
                hi = mid;
        }
        int64_t at = sr->lo;
        int done = 0;
        for (size_t k = lo; k < nd && !done && d[k].a <= sr->hi; k++) {
            if (d[k].a > at) {
                if (np + 2 > cap) {
                    cap *= 2;
                    piece *npc = tally__realloc(pc, cap * sizeof *npc);
                    if (!npc) {
                        tally__free(pc);
                        return TALLY_ENOMEM;
                    }
                    pc = npc;
                }
                pc[np++] = (piece){at, d[k].a - 1, (uint32_t)j};
            }
            if (d[k].b >= sr->hi)
                done = 1;
            else
                at = d[k].b + 1;
        }
        if (!done) {
            if (np + 1 > cap) {
                cap *= 2;
                piece *npc = tally__realloc(pc, cap * sizeof *npc);
                if (!npc) {
                    tally__free(pc);
                    return TALLY_ENOMEM;
                }
                pc = npc;
            }
            pc[np++] = (piece){at, sr->hi, (uint32_t)j};
        }
    }
    if (np > 1)
        tally__sort_unless_sorted(pc, np, sizeof *pc, cmp_piece);
    *out = pc;
    *n_out = np;
    return 0;
}

/* Is piece k a whole clean block without NaN, inside one column? Writes its
 * pyramid position and column. */
static int whole_node(const ds_ctx *c, const piece *pk, uint32_t *pos, uint32_t *col)
{
    if (pk->src == UINT32_MAX)
        return 0;
    const source *sr = &c->src[pk->src];
    if (sr->block == HEAD_SRC)
        return 0;
    const tally_block_summary *bs = tally__rollup_block(c->r, sr->block);
    int64_t lo = c->axis == TALLY__AXIS_STEP ? bs->min_step : bs->min_timestamp_ms;
    int64_t hi = c->axis == TALLY__AXIS_STEP ? bs->max_step : bs->max_timestamp_ms;
    if (bs->n_nan != 0 || pk->a != lo || pk->b != hi) /* sources are clipped to the range */
        return 0;
    uint32_t c0 = col_of(c, sr->lo);
    if (col_of(c, sr->hi) != c0)
        return 0;
    *pos = c->pyr->pos_of[sr->block];
    *col = c0;
    return 1;
}

/* Cache hints for the block of the next piece read from a block: its header
 * and chunk table (engine) and the first lines of its chunk records, so
 * that their memory latency overlaps the current block's work. */
static void prefetch_next(const ds_ctx *c, const piece *pc, size_t np, size_t k)
{
    for (size_t j = k + 1; j < np && j < k + 3; j++) {
        if (pc[j].src == UINT32_MAX || c->src[pc[j].src].block == HEAD_SRC)
            continue;
        uint32_t blk = c->src[pc[j].src].block;
        tally_snapshot_block_prefetch(c->s, blk);
        const tally__rchunk *ch = tally__rollup_chunks_peek(c->r, blk);
        if (ch)
            for (int l = 0; l < 8; l++)
                __builtin_prefetch((const char *)ch + 64 * l, 0, 3);
        return;
    }
}

static int run_pieces(ds_ctx *c, const piece *pc, size_t np)
{
    int rc = 0;
    for (size_t k = 0; k < np && rc == 0; k++) {
        const piece *pk = &pc[k];
        if (pk->src == UINT32_MAX) {
            rc = feed_dirty(c, pk->a, pk->b);
            continue;
        }
        const source *sr = &c->src[pk->src];
        if (sr->block == HEAD_SRC) {
            for (size_t i = head_lower(c, pk->a); i < c->n_head && rc == 0; i++) {
                if (xof(c, &c->head[i]) > pk->b)
                    break;
                rc = acc_point(c, &c->head[i]);
            }
            continue;
        }
        uint32_t pos, col, pos2, col2;
        if (c->pyr && whole_node(c, pk, &pos, &col)) {
            size_t last = k;
            while (last + 1 < np && whole_node(c, &pc[last + 1], &pos2, &col2) && col2 == col &&
                   pos2 == pos + (last + 1 - k))
                last++;
            rc = feed_nodes(c, pos, pos + (uint32_t)(last - k));
            k = last;
            continue;
        }
        prefetch_next(c, pc, np, k);
        const tally_block_summary *bs = tally__rollup_block(c->r, sr->block);
        if (c->method == TALLY_DS_M4 && c->axis == TALLY__AXIS_STEP && dense_block(bs))
            rc = feed_dense_m4(c, sr->block, bs, pk->a, pk->b);
        else
            rc = feed_block(c, sr->block, pk->a, pk->b);
    }
    if (rc == 0)
        rc = close_col(c);
    return rc;
}

/* --- LTTB ------------------------------------------------------------------------ */

/* Largest-Triangle-Three-Buckets (Steinarsson 2013, the reference
 * implementation's arithmetic): n points with x as double in xs, keep the
 * first and the last, and from each of the width - 2 buckets of
 * (n - 2) / (width - 2) points the one forming the largest triangle with the
 * previously kept point and the mean of the next bucket. Writes indexes. */
static size_t lttb_indexes(const double *xs, const tally_point *p, size_t n, uint32_t width,
                           size_t *keep)
{
    if (width >= n) {
        for (size_t i = 0; i < n; i++)
            keep[i] = i;
        return n;
    }
    if (width == 1) {
        keep[0] = 0;
        return 1;
    }
    size_t m = 0, a = 0;
    double every = (double)(n - 2) / (double)(width - 2);
    keep[m++] = 0;
    for (uint32_t i = 0; i + 2 < width; i++) {
        size_t avg_start = (size_t)floor((double)(i + 1) * every) + 1;
        size_t avg_end = (size_t)floor((double)(i + 2) * every) + 1;
        if (avg_end > n)
            avg_end = n;
        double avg_x = 0, avg_y = 0;
        for (size_t j = avg_start; j < avg_end; j++) {
            avg_x += xs[j];
            avg_y += p[j].value;
        }
        double len = (double)(avg_end - avg_start);
        avg_x /= len;
        avg_y /= len;
        size_t from = (size_t)floor((double)i * every) + 1;
        size_t to = (size_t)floor((double)(i + 1) * every) + 1;
        double ax = xs[a], ay = p[a].value;
        double max_area = -1;
        size_t next_a = from;
        for (size_t j = from; j < to; j++) {
            double area = fabs((ax - avg_x) * (p[j].value - ay) - (ax - xs[j]) * (avg_y - ay)) * 0.5;
            if (area > max_area) {
                max_area = area;
                next_a = j;
            }
        }
        keep[m++] = next_a;
        a = next_a;
    }
    keep[m++] = n - 1;
    return m;
}

/* Every non-NaN point in range, in axis order, then LTTB. */
static int run_lttb(ds_ctx *c, int64_t lo64, int64_t hi64)
{
    tally_iter *it;
    int64_t slo = c->axis == TALLY__AXIS_STEP ? lo64 : INT64_MIN;
    int64_t shi = c->axis == TALLY__AXIS_STEP ? hi64 : INT64_MAX;
    int rc = tally_iter_start(c->s, slo, shi, &it);
    if (rc)
        return rc;
    tally_point tmp[1024];
    int sorted = 1;
    c->buf_n = 0;
    for (;;) {
        size_t got;
        rc = tally_iter_next(it, tmp, sizeof tmp / sizeof tmp[0], &got);
        if (rc || got == 0)
            break;
        for (size_t i = 0; i < got && rc == 0; i++) {
            int64_t x = xof(c, &tmp[i]);
            if (x < lo64 || x > hi64)
                continue;
            c->n_source++;
            if (tmp[i].value != tmp[i].value)
                continue;
            if (c->buf_n && c->cmp(&c->buf[c->buf_n - 1], &tmp[i]) > 0)
                sorted = 0;
            rc = gather_push(c, &tmp[i]);
        }
        if (rc)
            break;
    }
    tally_iter_stop(it);
    if (rc)
        return rc;
    if (!sorted)
        qsort(c->buf, c->buf_n, sizeof *c->buf, c->cmp);
    size_t n = c->buf_n;
    if (n == 0)
        return 0;
    double *xs = tally__malloc(n * sizeof *xs);
    size_t *keep = tally__malloc(n * sizeof *keep);
    if (!xs || !keep) {
        tally__free(xs);
        tally__free(keep);
        return TALLY_ENOMEM;
    }
    for (size_t i = 0; i < n; i++)
        xs[i] = (double)((i128)xof(c, &c->buf[i]) - c->rel_base);
    size_t m = lttb_indexes(xs, c->buf, n, c->width, keep);
    for (size_t i = 0; i < m && rc == 0; i++)
        rc = push_point(c, &c->buf[keep[i]]);
    tally__free(xs);
    tally__free(keep);
    return rc;
}

/* --- the public entry ------------------------------------------------------------ */

void tally_ds_result_free(tally_ds_result *r)
{
    if (!r)
        return;
    tally__free(r->points);
    tally__free(r->buckets);
    memset(r, 0, sizeof *r);
}

static int check_req(const tally_ds_req *req)
{
    RETURN_ERROR_IF(!req || req->width < 1 || req->width > 65536, TALLY_EINVAL);
    switch (req->method) {
    case TALLY_DS_M4:
    case TALLY_DS_LTTB:
    case TALLY_DS_BUCKETS:
        break;
    default:
        return TALLY_EINVAL;
    }
    switch (req->x_axis) {
    case TALLY_X_STEP:
    case TALLY_X_TIME:
    case TALLY_X_RELATIVE_TIME:
        break;
    default:
        return TALLY_EINVAL;
    }
    RETURN_ERROR_IF(!req->full_range && req->x_lo > req->x_hi, TALLY_EINVAL);
    return 0;
}

/* Collects the sources overlapping [c->lo, c->hi]; full range and relative
 * base come from all sources first. */
static int setup(ds_ctx *c, const tally_ds_req *req, tally_ds_result *out, int *empty)
{
    uint32_t nb = tally_snapshot_n_blocks(c->s);
    const tally_point *hp;
    size_t hn;
    tally_snapshot_head(c->s, &hp, &hn);
    c->head = hp;
    c->n_head = hn;
    if (c->axis == TALLY__AXIS_TIME && hn > 1) {
        c->head_copy = tally__malloc(hn * sizeof *c->head_copy);
        RETURN_ERROR_IF(!c->head_copy, TALLY_ENOMEM);
        memcpy(c->head_copy, hp, hn * sizeof *hp);
        qsort(c->head_copy, hn, sizeof *hp, cmp_time_order);
        c->head = c->head_copy;
    }
    int any = hn > 0;
    int64_t mn = any ? xof(c, &c->head[0]) : 0, mx = any ? xof(c, &c->head[hn - 1]) : 0;
    for (uint32_t i = 0; i < nb; i++) {
        const tally_block_summary *b = tally__rollup_block(c->r, i);
        int64_t lo = c->axis == TALLY__AXIS_STEP ? b->min_step : b->min_timestamp_ms;
        int64_t hi = c->axis == TALLY__AXIS_STEP ? b->max_step : b->max_timestamp_ms;
        if (!any || lo < mn)
            mn = lo;
        if (!any || hi > mx)
            mx = hi;
        any = 1;
    }
    if (!any) {
        *empty = 1;
        return 0;
    }
    int relative = req->x_axis == TALLY_X_RELATIVE_TIME;
    c->rel_base = relative ? mn : 0;
    if (req->full_range) {
        c->lo = mn;
        c->hi = mx;
    } else {
        c->lo = (i128)req->x_lo + c->rel_base;
        c->hi = (i128)req->x_hi + c->rel_base;
    }
    c->span = c->hi - c->lo + 1;
    /* k * span + width - 1 must fit for every k <= width (col_start). */
    c->span64 = c->span <= (i128)((UINT64_MAX - c->width) / c->width) ? (uint64_t)c->span : 0;
    out->x_lo = sat64(c->lo - c->rel_base);
    out->x_hi = sat64(c->hi - c->rel_base);
    if (c->hi < mn || c->lo > mx) {
        *empty = 1;
        return 0;
    }

    c->src = tally__malloc(((size_t)nb + 1) * sizeof *c->src);
    RETURN_ERROR_IF(!c->src, TALLY_ENOMEM);
    for (uint32_t i = 0; i < nb; i++) {
        const tally_block_summary *b = tally__rollup_block(c->r, i);
        int64_t lo = c->axis == TALLY__AXIS_STEP ? b->min_step : b->min_timestamp_ms;
        int64_t hi = c->axis == TALLY__AXIS_STEP ? b->max_step : b->max_timestamp_ms;
        if ((i128)hi < c->lo || (i128)lo > c->hi)
            continue;
        int sorted = c->axis == TALLY__AXIS_STEP || (b->flags & TALLY_BLOCK_TS_SORTED);
        c->src[c->n_src++] = (source){(i128)lo < c->lo ? (int64_t)c->lo : lo,
                                      (i128)hi > c->hi ? (int64_t)c->hi : hi, i, sorted};
    }
    if (hn) {
        int64_t lo = xof(c, &c->head[0]), hi = xof(c, &c->head[hn - 1]);
        if (!((i128)hi < c->lo || (i128)lo > c->hi))
            c->src[c->n_src++] = (source){(i128)lo < c->lo ? (int64_t)c->lo : lo,
                                          (i128)hi > c->hi ? (int64_t)c->hi : hi, HEAD_SRC, 1};
    }
    *empty = c->n_src == 0;
    return 0;
}

static int run(ds_ctx *c, const tally_ds_req *req, tally_ds_result *out)
{
    int empty = 0;
    int rc = setup(c, req, out, &empty);
    if (rc || empty)
        return rc;
    if (req->method == TALLY_DS_LTTB) {
        /* The clipped range fits int64: sources clipped it. */
        int64_t lo = c->lo < (i128)INT64_MIN ? INT64_MIN : (int64_t)c->lo;
        int64_t hi = c->hi > (i128)INT64_MAX ? INT64_MAX : (int64_t)c->hi;
        return run_lttb(c, lo, hi);
    }
    /* One allocation for the output: at most 4 points (1 bucket) per
     * column, and never more than the sources hold. */
    uint64_t held = 0;
    for (size_t j = 0; j < c->n_src; j++)
        held += c->src[j].block == HEAD_SRC ? c->n_head
                                            : tally__rollup_block(c->r, c->src[j].block)->n_points;
    if (req->method == TALLY_DS_M4) {
        c->cap_pts = 4 * (size_t)(held < c->width ? held : c->width);
        c->pts = tally__malloc(c->cap_pts * sizeof *c->pts);
        if (!c->pts)
            return TALLY_ENOMEM;
    } else {
        c->cap_bk = (size_t)(held < c->width ? held : c->width);
        c->bk = tally__malloc(c->cap_bk * sizeof *c->bk);
        if (!c->bk)
            return TALLY_ENOMEM;
    }
    c->pyr = tally__rollup_pyramid(c->r, c->axis); /* NULL: no node summaries, still exact */
    xrange *d = NULL;
    piece *pc = NULL;
    size_t nd = 0, np = 0;
    rc = dirty_ranges(c, &d, &nd);
    if (rc == 0)
        rc = make_pieces(c, d, nd, &pc, &np);
    if (rc == 0)
        rc = run_pieces(c, pc, np);
    tally__free(d);
    tally__free(pc);
    return rc;
}

int tally_downsample(tally_engine *e, tally_series_id id, const tally_ds_req *req,
                     tally_ds_result *out)
{
    RETURN_ERROR_IF(!e || !out, TALLY_EINVAL);
    memset(out, 0, sizeof *out);
    int rc = check_req(req);
    if (rc)
        return rc;
    tally_snapshot *s;
    rc = tally_snapshot_open(e, id, &s);
    if (rc == TALLY_ENOTFOUND)
        return 0;
    if (rc)
        return rc;
    ds_ctx *c = tally__malloc(sizeof *c);
    if (!c) {
        tally_snapshot_close(s);
        return TALLY_ENOMEM;
    }
    memset(c, 0, offsetof(ds_ctx, st));
    c->e = e;
    c->s = s;
    c->method = req->method;
    c->axis = req->x_axis == TALLY_X_STEP ? TALLY__AXIS_STEP : TALLY__AXIS_TIME;
    c->cmp = c->axis == TALLY__AXIS_STEP ? cmp_step_order : cmp_time_order;
    c->width = req->width;
    rc = tally__rollup_acquire(e, id, s, &c->r);
    if (rc == 0)
        rc = run(c, req, out);
    if (rc == 0) {
        out->points = c->pts;
        out->n_points = c->n_pts;
        out->buckets = c->bk;
        out->n_buckets = c->n_bk;
        out->n_source = c->n_source;
    } else {
        tally__free(c->pts);
        tally__free(c->bk);
        memset(out, 0, sizeof *out);
    }
    tally__rollup_release(c->r);
    tally__free(c->src);
    tally__free(c->head_copy);
    tally__free(c->buf);
    tally__free(c);
    tally_snapshot_close(s);
    return rc;
}
