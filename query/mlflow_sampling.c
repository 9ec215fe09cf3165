/*
 * mlflow_sampling.c — MLflow's get-history-bulk-interval (mlflow-rest-api.md
 * §4.6): one step grid shared by every run, chosen from the sorted distinct
 * union W of all runs' steps in [lo, hi], then every point of every run at a
 * chosen step. See docs/query.md, "MLflow sampled history".
 *
 * The cost is kept away from "decode every step of every run":
 *
 *   1. headers   per run: a snapshot and its block headers (step ranges,
 *                counts). The run's min and max step (set B of §4.6) and the
 *                default range [0, max step] come from them alone.
 *   2. steps     per run: its distinct steps in [lo, hi] as a sorted list of
 *                disjoint integer intervals [a, b] ("every step a..b has a
 *                point"). A block known to be dense (its steps are exactly
 *                min_step..max_step, one point each) is one interval read
 *                from its header; any other block overlapping [lo, hi] has
 *                its steps column decoded (timestamps and values are not),
 *                and consecutive steps fold into intervals as they stream.
 *                A training loop's regular logging gives one interval per
 *                run however many points it has.
 *   3. grid      the runs' intervals are merged into the union's intervals
 *                with running counts, so n = |W| is a sum and W[k] is found
 *                by walking intervals: the picks W[floor(i*d)] (d = n / M,
 *                real division), W[n-1] and B' cost O(M + intervals).
 *   4. points    per run, for each block holding chosen steps: in a dense
 *                block the point of step s is at index s - min_step and is
 *                decoded alone; otherwise a binary search over the block's
 *                steps finds the points. Only those points' timestamps and
 *                values are decoded.
 *
 * Phases 1, 2 and 4 run per run, spread over up to TALLY__SAMPLING_THREADS
 * threads when the request spans enough blocks to pay for them; phase 3 is
 * sequential and small. Each run's snapshot moves between threads only
 * across a join, so it is used by one thread at a time.
 *
 * A block is known dense without decoding when it has one point, or when
 * the engine marks its steps linear (TALLY_BLOCK_STEPS_LINEAR) over a span
 * of exactly n - 1; otherwise phase 2 proves it while folding its steps and
 * phase 4 then indexes it directly. Block ranges come from the engine's
 * memory (tally_snapshot_block_range), never from the file.
 *
 * Invariants:
 *  (1) A run's interval list and the union's are sorted, disjoint and not
 *      adjacent (b + 1 < next a): the sum of their lengths is exactly the
 *      number of distinct steps.
 *  (2) Chosen steps are sorted, distinct and inside [lo, hi]; every one is
 *      a step of some run (a member of W).
 *  (3) A run's answer is every point it has at a chosen step, each once,
 *      ordered (step, timestamp, numeric value) as in point_order.h, cut to
 *      the first TALLY__SAMPLING_RUN_CAP.
 *  (4) Unknown series have no snapshot and add nothing to W, B or the answer.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "point_order.h"
#include "tally/query.h"

#define TALLY__SAMPLING_RUN_CAP 25000u    /* points per run, MLflow's limit */
#define TALLY__SAMPLING_THREADS 8u        /* most threads one request uses */
#define TALLY__SAMPLING_PAR_BLOCKS 64u    /* fewer blocks than this: one thread */
#define TALLY__SAMPLING_MAX_BLOCK 65536u  /* points per block at most */

/* Every step a..b (inclusive) is present. */
typedef struct ival {
    int64_t a, b;
} ival;

typedef struct ivec {
    ival *v;
    size_t n, cap;
} ivec;

/* One requested series. */
typedef struct run {
    tally_snapshot *s;          /* NULL for an unknown series */
    tally_block_summary *blk;   /* headers of its sealed blocks */
    uint32_t n_blk;
    uint8_t *dense;             /* per block: steps are min..max, one point each */
    const tally_point *head;    /* the snapshot's sorted head */
    size_t n_head;
    int64_t min_step, max_step; /* over all its points; valid when has_points */
    int has_points;
    ivec steps;                 /* phase 2: distinct steps in [lo, hi] */
    tally_run_points *out;      /* where phase 4 writes */
} run;

/* The request as every phase sees it. */
typedef struct job {
    tally_engine *e;
    const tally_series_id *ids;
    run *runs;
    size_t n;
    int64_t lo, hi;             /* the step range */
    const int64_t *chosen;      /* phase 4: the chosen steps */
    size_t n_chosen;
} job;

/* Per-thread buffers for one block's columns. */
typedef struct scratch {
    int64_t *steps, *ts;
    double *values;
} scratch;

/* --- interval lists ------------------------------------------------------ */

static int ivec_push(ivec *x, int64_t a, int64_t b)
{
    /* Extend the last interval when b follows it (steps usually stream in order). */
    if (x->n && a >= x->v[x->n - 1].a && (x->v[x->n - 1].b == INT64_MAX || a <= x->v[x->n - 1].b + 1)) {
        if (b > x->v[x->n - 1].b)
            x->v[x->n - 1].b = b;
        return 0;
    }
    if (x->n == x->cap) {
        size_t ncap = x->cap ? 2 * x->cap : 16;
        ival *nv = tally__realloc(x->v, ncap * sizeof *nv);
        if (!nv)
            return TALLY_ENOMEM;
        x->v = nv;
        x->cap = ncap;
    }
    x->v[x->n++] = (ival){a, b};
    return 0;
}

static void ivec_free(ivec *x)
{
    tally__free(x->v);
    memset(x, 0, sizeof *x);
}

static int ival_cmp(const void *p, const void *q)
{
    const ival *x = p, *y = q;
    return TALLY__CMP(x->a, y->a);
}

/* Sorts and merges overlapping or adjacent intervals (invariant 1). */
static void ivec_normalize(ivec *x)
{
    if (x->n < 2)
        return;
    qsort(x->v, x->n, sizeof *x->v, ival_cmp);
    size_t k = 0;
    for (size_t i = 1; i < x->n; i++) {
        ival *c = &x->v[k];
        if (c->b == INT64_MAX || x->v[i].a <= c->b + 1) {
            if (x->v[i].b > c->b)
                c->b = x->v[i].b;
        } else {
            x->v[++k] = x->v[i];
        }
    }
    x->n = k + 1;
}

/* *dst = *dst ∪ *src, both normalized; the result is normalized. */
static int ivec_union(ivec *dst, const ivec *src)
{
    if (src->n == 0)
        return 0;
    ivec r = {0};
    size_t i = 0, j = 0;
    while (i < dst->n || j < src->n) {
        const ival *p = j == src->n || (i < dst->n && dst->v[i].a <= src->v[j].a) ? &dst->v[i++]
                                                                                   : &src->v[j++];
        if (ivec_push(&r, p->a, p->b)) {
            ivec_free(&r);
            return TALLY_ENOMEM;
        }
    }
    ivec_free(dst);
    *dst = r;
    return 0;
}

/* --- running a phase over every run ------------------------------------- */

typedef int (*run_fn)(const job *j, run *r, scratch *sc);

typedef struct pool {
    const job *j;
    run_fn fn;
    atomic_size_t next;         /* next run to take */
    atomic_int rc;              /* first error, or 0 */
} pool;

static int scratch_init(scratch *sc)
{
    sc->steps = tally__malloc(TALLY__SAMPLING_MAX_BLOCK * sizeof *sc->steps);
    sc->ts = tally__malloc(TALLY__SAMPLING_MAX_BLOCK * sizeof *sc->ts);
    sc->values = tally__malloc(TALLY__SAMPLING_MAX_BLOCK * sizeof *sc->values);
    return sc->steps && sc->ts && sc->values ? 0 : TALLY_ENOMEM;
}

static void scratch_free(scratch *sc)
{
    tally__free(sc->steps);
    tally__free(sc->ts);
    tally__free(sc->values);
}

static void *pool_worker(void *arg)
{
    pool *p = arg;
    scratch sc;
    int rc = scratch_init(&sc);
    while (rc == 0 && atomic_load(&p->rc) == 0) {
        size_t k = atomic_fetch_add(&p->next, 1);
        if (k >= p->j->n)
            break;
        rc = p->fn(p->j, &p->j->runs[k], &sc);
    }
    if (rc) {
        int zero = 0;
        atomic_compare_exchange_strong(&p->rc, &zero, rc);
    }
    scratch_free(&sc);
    return NULL;
}

/* Runs fn on every run, on several threads when there is enough work. */
static int for_each_run(const job *j, run_fn fn, size_t n_blocks)
{
    pool p = {j, fn, 0, 0};
    size_t threads = 1;
    if (n_blocks >= TALLY__SAMPLING_PAR_BLOCKS && j->n > 1) {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        threads = cpus > 1 ? (size_t)cpus : 1;
        if (threads > TALLY__SAMPLING_THREADS)
            threads = TALLY__SAMPLING_THREADS;
        if (threads > j->n)
            threads = j->n;
    }
    pthread_t tid[TALLY__SAMPLING_THREADS];
    size_t started = 0;
    for (size_t t = 1; t < threads; t++) {
        if (pthread_create(&tid[started], NULL, pool_worker, &p) != 0)
            break; /* fewer threads; the caller's thread still does the rest */
        started++;
    }
    pool_worker(&p);
    for (size_t t = 0; t < started; t++)
        pthread_join(tid[t], NULL);
    return atomic_load(&p.rc);
}

/* --- phase 1: snapshots and headers -------------------------------------- */

static int open_run(const job *j, run *r, scratch *sc)
{
    (void)sc;
    size_t k = (size_t)(r - j->runs);
    int rc = tally_snapshot_open(j->e, j->ids[k], &r->s);
    if (rc == TALLY_ENOTFOUND) {
        r->s = NULL;
        return 0;
    }
    if (rc)
        return rc;
    r->n_blk = tally_snapshot_n_blocks(r->s);
    tally_snapshot_head(r->s, &r->head, &r->n_head);
    r->blk = tally__malloc(((size_t)r->n_blk + 1) * sizeof *r->blk);
    r->dense = tally__calloc((size_t)r->n_blk + 1, 1);
    if (!r->blk || !r->dense)
        return TALLY_ENOMEM;
    for (uint32_t i = 0; i < r->n_blk; i++) {
        /* The engine keeps each block's range in memory: no file access here. */
        tally_block_range br;
        tally_snapshot_block_range(r->s, i, &br);
        tally_block_summary *b = &r->blk[i];
        b->n_points = br.n_points;
        b->flags = br.flags;
        b->min_step = br.min_step;
        b->max_step = br.max_step;
        b->min_timestamp_ms = br.min_timestamp_ms;
        b->max_timestamp_ms = br.max_timestamp_ms;
        if (!r->has_points || b->min_step < r->min_step)
            r->min_step = b->min_step;
        if (!r->has_points || b->max_step > r->max_step)
            r->max_step = b->max_step;
        r->has_points = 1;
        /* Linear steps spanning exactly n - 1 are min..max, one point each. */
        r->dense[i] = b->n_points == 1 ||
                      ((b->flags & TALLY_BLOCK_STEPS_LINEAR) &&
                       (uint64_t)b->max_step - (uint64_t)b->min_step == (uint64_t)b->n_points - 1);
    }
    if (r->n_head) {
        if (!r->has_points || r->head[0].step < r->min_step)
            r->min_step = r->head[0].step;
        if (!r->has_points || r->head[r->n_head - 1].step > r->max_step)
            r->max_step = r->head[r->n_head - 1].step;
        r->has_points = 1;
    }
    return 0;
}

/* --- phase 2: each run's distinct steps ---------------------------------- */

/* Folds sorted steps (duplicates allowed) in [lo, hi] into x. */
static int fold_steps(ivec *x, const int64_t *st, size_t n, int64_t lo, int64_t hi)
{
    size_t i = 0;
    while (i < n && st[i] < lo)
        i++;
    while (i < n && st[i] <= hi) {
        int64_t a = st[i], b = a;
        while (++i < n && st[i] <= hi && (st[i] == b || (b < INT64_MAX && st[i] == b + 1)))
            b = st[i];
        int rc = ivec_push(x, a, b);
        if (rc)
            return rc;
    }
    return 0;
}

static int steps_of_run(const job *j, run *r, scratch *sc)
{
    if (!r->s)
        return 0;
    int rc = 0;
    for (uint32_t i = 0; i < r->n_blk && rc == 0; i++) {
        const tally_block_summary *b = &r->blk[i];
        if (b->max_step < j->lo || b->min_step > j->hi)
            continue;
        if (r->dense[i]) {
            rc = ivec_push(&r->steps, b->min_step > j->lo ? b->min_step : j->lo,
                           b->max_step < j->hi ? b->max_step : j->hi);
            continue;
        }
        rc = tally_snapshot_block_decode(r->s, i, 0, b->n_points, sc->steps, NULL, NULL);
        if (rc)
            break;
        /* Dense: n points over n consecutive steps, each one more than the
         * last. The check is branch-free so it vectorizes: it is the hot
         * loop when the engine cannot tell density from the header. */
        int dense = (uint64_t)b->max_step - (uint64_t)b->min_step == (uint64_t)b->n_points - 1;
        if (dense) {
            uint64_t off = 0;
            const int64_t *st = sc->steps;
            for (uint32_t k = 1; k < b->n_points; k++)
                off |= (uint64_t)st[k] - (uint64_t)st[k - 1] - 1u;
            dense = off == 0;
        }
        r->dense[i] = (uint8_t)dense;
        if (dense)
            rc = ivec_push(&r->steps, b->min_step > j->lo ? b->min_step : j->lo,
                           b->max_step < j->hi ? b->max_step : j->hi);
        else
            rc = fold_steps(&r->steps, sc->steps, b->n_points, j->lo, j->hi);
    }
    for (size_t k = 0; k < r->n_head && rc == 0; k++) {
        int64_t s = r->head[k].step;
        if (s >= j->lo && s <= j->hi)
            rc = ivec_push(&r->steps, s, s);
    }
    ivec_normalize(&r->steps);
    return rc;
}

/* --- phase 3: the shared grid -------------------------------------------- */

static int i64_cmp(const void *p, const void *q)
{
    int64_t a = *(const int64_t *)p, b = *(const int64_t *)q;
    return TALLY__CMP(a, b);
}

/* Sets *out to the sorted distinct chosen steps (caller frees). */
static int choose_steps(const job *j, const ivec *w, uint32_t m, int64_t **out, size_t *n_out)
{
    uint64_t n = 0;
    for (size_t k = 0; k < w->n; k++)
        n += (uint64_t)w->v[k].b - (uint64_t)w->v[k].a + 1;
    size_t n_picks = n <= m ? (size_t)n : (size_t)m + 1;
    size_t cap = n_picks + 2 * j->n + 1;
    int64_t *c = tally__malloc(cap * sizeof *c);
    if (!c)
        return TALLY_ENOMEM;
    size_t nc = 0;
    if (n <= m) {
        for (size_t k = 0; k < w->n; k++)
            for (int64_t s = w->v[k].a;; s++) {
                c[nc++] = s;
                if (s == w->v[k].b)
                    break;
            }
    } else {
        /* W[floor(i * d)] for i < m, then W[n - 1]; ranks never decrease, so
         * one walk over the intervals maps them all. */
        double d = (double)n / (double)m;
        size_t iv = 0;
        uint64_t before = 0; /* distinct steps in intervals [0, iv) */
        for (uint32_t i = 0; i <= m; i++) {
            uint64_t rank = i < m ? (uint64_t)((double)i * d) : n - 1;
            if (rank > n - 1)
                rank = n - 1; /* (double) rounding can never pass the end */
            for (;;) {
                uint64_t len = (uint64_t)w->v[iv].b - (uint64_t)w->v[iv].a + 1;
                if (rank < before + len)
                    break;
                before += len;
                iv++;
            }
            c[nc++] = (int64_t)((uint64_t)w->v[iv].a + (rank - before));
        }
    }
    for (size_t k = 0; k < j->n; k++) {
        const run *r = &j->runs[k];
        if (!r->s || !r->has_points)
            continue;
        if (r->min_step >= j->lo && r->min_step <= j->hi)
            c[nc++] = r->min_step;
        if (r->max_step >= j->lo && r->max_step <= j->hi)
            c[nc++] = r->max_step;
    }
    qsort(c, nc, sizeof *c, i64_cmp);
    size_t u = 0;
    for (size_t k = 0; k < nc; k++)
        if (u == 0 || c[u - 1] != c[k])
            c[u++] = c[k];
    *out = c;
    *n_out = u;
    return 0;
}

/* --- phase 4: the points at the chosen steps ----------------------------- */

typedef struct pvec {
    tally_point *v;
    size_t n, cap;
} pvec;

static int pvec_push(pvec *x, int64_t step, int64_t ts, double value)
{
    if (x->n == x->cap) {
        size_t ncap = x->cap ? 2 * x->cap : 64;
        tally_point *nv = tally__realloc(x->v, ncap * sizeof *nv);
        if (!nv)
            return TALLY_ENOMEM;
        x->v = nv;
        x->cap = ncap;
    }
    x->v[x->n++] = (tally_point){step, ts, value};
    return 0;
}

/* Index of the first element >= key in sorted a[0..n). */
static size_t lower_bound(const int64_t *a, size_t n, int64_t key)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (a[mid] < key)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static int points_of_block(const job *j, run *r, uint32_t i, scratch *sc, pvec *pts)
{
    const tally_block_summary *b = &r->blk[i];
    size_t c = lower_bound(j->chosen, j->n_chosen, b->min_step);
    if (c == j->n_chosen || j->chosen[c] > b->max_step)
        return 0;
    int rc = 0;
    if (r->dense[i]) {
        for (; c < j->n_chosen && j->chosen[c] <= b->max_step && rc == 0; c++) {
            uint32_t idx = (uint32_t)((uint64_t)j->chosen[c] - (uint64_t)b->min_step);
            int64_t ts;
            double v;
            rc = tally_snapshot_block_decode(r->s, i, idx, 1, NULL, &ts, &v);
            if (rc == 0)
                rc = pvec_push(pts, j->chosen[c], ts, v);
        }
        return rc;
    }
    rc = tally_snapshot_block_decode(r->s, i, 0, b->n_points, sc->steps, NULL, NULL);
    size_t at = 0;
    for (; c < j->n_chosen && j->chosen[c] <= b->max_step && rc == 0; c++) {
        size_t p = at + lower_bound(sc->steps + at, b->n_points - at, j->chosen[c]);
        size_t q = p;
        while (q < b->n_points && sc->steps[q] == j->chosen[c])
            q++;
        at = q;
        if (p == q)
            continue;
        rc = tally_snapshot_block_decode(r->s, i, (uint32_t)p, (uint32_t)(q - p), NULL, sc->ts,
                                         sc->values);
        for (size_t k = 0; k < q - p && rc == 0; k++)
            rc = pvec_push(pts, j->chosen[c], sc->ts[k], sc->values[k]);
    }
    return rc;
}

static int points_of_run(const job *j, run *r, scratch *sc)
{
    if (!r->s || j->n_chosen == 0)
        return 0;
    pvec pts = {0};
    int rc = 0;
    for (uint32_t i = 0; i < r->n_blk && rc == 0; i++) {
        /* Blocks are visited in order: start loading a few ahead of use. */
        if (i + 4 < r->n_blk)
            tally_snapshot_block_prefetch(r->s, i + 4);
        rc = points_of_block(j, r, i, sc, &pts);
    }
    for (size_t k = 0; k < r->n_head && rc == 0; k++) {
        const tally_point *p = &r->head[k];
        size_t c = lower_bound(j->chosen, j->n_chosen, p->step);
        if (c < j->n_chosen && j->chosen[c] == p->step)
            rc = pvec_push(&pts, p->step, p->timestamp_ms, p->value);
    }
    if (rc) {
        tally__free(pts.v);
        return rc;
    }
    if (pts.n)
        tally__sort_unless_sorted(pts.v, pts.n, sizeof *pts.v, tally__qsort_step_numeric);
    pts.n = tally__dedupe_sorted(pts.v, pts.n);
    if (pts.n > TALLY__SAMPLING_RUN_CAP)
        pts.n = TALLY__SAMPLING_RUN_CAP;
    if (pts.n == 0) {
        tally__free(pts.v);
        pts.v = NULL;
    }
    r->out->points = pts.v;
    r->out->n_points = pts.n;
    return 0;
}

/* --- the request --------------------------------------------------------- */

static void close_runs(run *runs, size_t n)
{
    for (size_t k = 0; k < n; k++) {
        tally_snapshot_close(runs[k].s);
        tally__free(runs[k].blk);
        tally__free(runs[k].dense);
        ivec_free(&runs[k].steps);
    }
    tally__free(runs);
}

int tally_mlflow_bulk_interval(tally_engine *e, const tally_series_id *ids, size_t n,
                               int has_range, int64_t start_step, int64_t end_step,
                               uint32_t max_results, tally_run_points *out)
{
    if (!e || (n && (!ids || !out)) || max_results < 1 || (has_range && start_step > end_step))
        return TALLY_EINVAL;
    for (size_t k = 0; k < n; k++)
        out[k] = (tally_run_points){NULL, 0};
    if (n == 0)
        return 0;
    run *runs = tally__calloc(n, sizeof *runs);
    if (!runs)
        return TALLY_ENOMEM;
    for (size_t k = 0; k < n; k++)
        runs[k].out = &out[k];
    job j = {e, ids, runs, n, 0, 0, NULL, 0};
    ivec w = {0};
    int64_t *chosen = NULL;
    int rc = for_each_run(&j, open_run, n);
    size_t n_blocks = 0;
    int any = 0;
    int64_t max_all = 0;
    for (size_t k = 0; rc == 0 && k < n; k++) {
        n_blocks += runs[k].n_blk;
        if (runs[k].s && runs[k].has_points && (!any || runs[k].max_step > max_all)) {
            max_all = runs[k].max_step;
            any = 1;
        }
    }
    /* §4.6: without a range, [0, max step] (0 when there is no step). */
    j.lo = has_range ? start_step : 0;
    j.hi = has_range ? end_step : max_all;
    if (rc == 0 && j.lo <= j.hi)
        rc = for_each_run(&j, steps_of_run, n_blocks);
    for (size_t k = 0; rc == 0 && k < n; k++) {
        rc = ivec_union(&w, &runs[k].steps);
        ivec_free(&runs[k].steps);
    }
    if (rc == 0 && j.lo <= j.hi)
        rc = choose_steps(&j, &w, max_results, &chosen, &j.n_chosen);
    ivec_free(&w);
    j.chosen = chosen;
    if (rc == 0 && j.n_chosen)
        rc = for_each_run(&j, points_of_run, n_blocks);
    tally__free(chosen);
    close_runs(runs, n);
    if (rc)
        for (size_t k = 0; k < n; k++)
            tally_run_points_free(&out[k]);
    return rc;
}

void tally_run_points_free(tally_run_points *r)
{
    if (!r)
        return;
    tally__free(r->points);
    r->points = NULL;
    r->n_points = 0;
}
