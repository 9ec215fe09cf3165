/*
 * test_m4.c — M4 and min/max/mean buckets (query/downsample.c) proven against
 * brute force over a real engine.
 *
 * For every query, the brute force reads every point through the engine's
 * iterator, orders them on the axis, maps x to columns by the documented
 * formula col = floor((x - x_lo) * W / (x_hi - x_lo + 1)) and computes M4 and
 * the buckets point by point. Then:
 *  - M4's output must equal the brute force's M4 point for point, bit for bit;
 *  - both, and the line through every non-NaN point, are rasterised (W x H
 *    bitmap, Bresenham between consecutive points, x -> column, value -> row,
 *    +-inf one row beyond the edges) and must be pixel-identical;
 *  - buckets must equal the brute force's exactly (count, n_nan, min, max,
 *    x range), the mean within rounding (partial sums are added in another
 *    order).
 * Data: random walks, spikes at column edges, single points, duplicate steps,
 * shuffled appends and re-logged ranges (overlapping blocks; block_points =
 * 128 makes many blocks), NaN and +-inf, empty and zoomed ranges, W above the
 * point count, x = step, time and relative time, int64 extremes.
 */
#include "test.h"

#include <pthread.h>
#include <stdatomic.h>
#include <tally/query.h>

#define H 97 /* raster rows */

static uint64_t rng_state;
static uint64_t rnd(void)
{
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static double rnd_unit(void) { return (double)(rnd() >> 11) / 9007199254740992.0; }
static uint64_t rnd_below(uint64_t n) { return n ? rnd() % n : 0; }

static const char RUN[] = "run-m4", KEY[] = "loss";

static tally_engine *open_engine(const char *dir, uint32_t block_points)
{
    tally_engine_options o;
    tally_engine_options_init(&o);
    o.durability = TALLY_DURABILITY_ASYNC;
    o.block_points = block_points;
    tally_engine *e;
    ASSERT_OK(tally_engine_open(dir, &o, &e));
    return e;
}

static void append(tally_engine *e, const tally_point *p, size_t n)
{
    int64_t *st = malloc(n * 8 + 8), *ts = malloc(n * 8 + 8);
    double *v = malloc(n * 8 + 8);
    for (size_t i = 0; i < n; i++) {
        st[i] = p[i].step;
        ts[i] = p[i].timestamp_ms;
        v[i] = p[i].value;
    }
    tally_series_batch b = {RUN, strlen(RUN), KEY, strlen(KEY), (uint32_t)n, st, ts, v};
    ASSERT_OK(tally_engine_append(e, &b, 1));
    free(st);
    free(ts);
    free(v);
}

/* Appends in batches of `batch` points, sealing heads every `seal_every` batches. */
static void append_batches(tally_engine *e, const tally_point *p, size_t n, size_t batch,
                           size_t seal_every)
{
    for (size_t i = 0, k = 0; i < n; i += batch, k++) {
        append(e, p + i, n - i < batch ? n - i : batch);
        if (seal_every && k % seal_every == seal_every - 1)
            ASSERT_OK(tally_engine_checkpoint(e));
    }
}

/* --- brute force ------------------------------------------------------------- */

static uint64_t bits(double d)
{
    uint64_t u;
    memcpy(&u, &d, 8);
    return u;
}

static int axis_time;
static int cmp_axis(const void *pa, const void *pb)
{
    const tally_point *a = pa, *b = pb;
    int64_t a1 = axis_time ? a->timestamp_ms : a->step, b1 = axis_time ? b->timestamp_ms : b->step;
    int64_t a2 = axis_time ? a->step : a->timestamp_ms, b2 = axis_time ? b->step : b->timestamp_ms;
    if (a1 != b1)
        return a1 < b1 ? -1 : 1;
    if (a2 != b2)
        return a2 < b2 ? -1 : 1;
    return bits(a->value) < bits(b->value) ? -1 : bits(a->value) > bits(b->value);
}

static tally_point *all_points(tally_engine *e, tally_series_id id, size_t *n)
{
    tally_snapshot *s;
    size_t cap = 1024, m = 0;
    tally_point *p = malloc(cap * sizeof *p);
    *n = 0;
    if (tally_snapshot_open(e, id, &s) != 0)
        return p;
    tally_iter *it;
    ASSERT_OK(tally_iter_start(s, INT64_MIN, INT64_MAX, &it));
    for (;;) {
        if (cap - m < 512) {
            cap *= 2;
            p = realloc(p, cap * sizeof *p);
        }
        size_t got;
        ASSERT_OK(tally_iter_next(it, p + m, 512, &got));
        if (!got)
            break;
        m += got;
    }
    tally_iter_stop(it);
    tally_snapshot_close(s);
    *n = m;
    return p;
}

__extension__ typedef __int128 i128;

typedef struct brute {
    tally_point *m4;
    size_t n_m4;
    tally_bucket *bk;
    size_t n_bk;
    uint64_t n_source;
    int64_t x_lo, x_hi;
    tally_point *line; /* every non-NaN point in range, axis order */
    size_t n_line;
    i128 lo, span;     /* absolute range start and width */
    int64_t base;
} brute;

static int64_t sat64(i128 x)
{
    return x < (i128)INT64_MIN ? INT64_MIN : x > (i128)INT64_MAX ? INT64_MAX : (int64_t)x;
}

static int64_t xof(const tally_point *p) { return axis_time ? p->timestamp_ms : p->step; }

static void brute_force(const tally_point *all, size_t n_all, const tally_ds_req *req, brute *b)
{
    memset(b, 0, sizeof *b);
    axis_time = req->x_axis != TALLY_X_STEP;
    tally_point *p = malloc((n_all + 1) * sizeof *p);
    memcpy(p, all, n_all * sizeof *p);
    qsort(p, n_all, sizeof *p, cmp_axis);
    if (n_all == 0) {
        free(p);
        return;
    }
    int64_t mn = xof(&p[0]), mx = xof(&p[n_all - 1]);
    b->base = req->x_axis == TALLY_X_RELATIVE_TIME ? mn : 0;
    i128 lo = req->full_range ? mn : (i128)req->x_lo + b->base;
    i128 hi = req->full_range ? mx : (i128)req->x_hi + b->base;
    b->x_lo = sat64(lo - b->base);
    b->x_hi = sat64(hi - b->base);
    b->lo = lo;
    b->span = hi - lo + 1;
    b->m4 = malloc((4 * n_all + 4) * sizeof *b->m4);
    b->bk = malloc((n_all + 1) * sizeof *b->bk);
    b->line = malloc((n_all + 1) * sizeof *b->line);
    size_t i = 0;
    while (i < n_all) {
        int64_t x = xof(&p[i]);
        if ((i128)x < lo || (i128)x > hi) {
            i++;
            continue;
        }
        uint64_t col = (uint64_t)(((i128)x - lo) * req->width / b->span);
        size_t j = i;
        tally_bucket bk = {0, 0, 0, 0, NAN, NAN, NAN};
        double sum = 0;
        int have = 0;
        tally_point first = {0, 0, 0}, last = first, pmin = first, pmax = first;
        bk.x_lo = sat64((i128)x - b->base);
        for (; j < n_all; j++) {
            int64_t xj = xof(&p[j]);
            if ((i128)xj > hi || (uint64_t)(((i128)xj - lo) * req->width / b->span) != col)
                break;
            bk.count++;
            bk.x_hi = sat64((i128)xj - b->base);
            double v = p[j].value;
            if (isnan(v)) {
                bk.n_nan++;
                continue;
            }
            b->line[b->n_line++] = p[j];
            sum += v;
            if (!have) {
                first = pmin = pmax = p[j];
                have = 1;
            }
            if (v < pmin.value)
                pmin = p[j];
            if (v > pmax.value)
                pmax = p[j];
            last = p[j];
        }
        b->n_source += bk.count;
        if (have) {
            bk.min = pmin.value;
            bk.max = pmax.value;
            bk.mean = sum / (double)(bk.count - bk.n_nan);
            tally_point q[4] = {first, pmin, pmax, last};
            qsort(q, 4, sizeof *q, cmp_axis);
            for (int k = 0; k < 4; k++)
                if (k == 0 || cmp_axis(&q[k], &q[k - 1]) != 0)
                    b->m4[b->n_m4++] = q[k];
        }
        b->bk[b->n_bk++] = bk;
        i = j;
    }
    free(p);
}

static void brute_free(brute *b)
{
    free(b->m4);
    free(b->bk);
    free(b->line);
}

/* --- rasteriser ----------------------------------------------------------------- */

typedef struct raster {
    uint32_t w;
    double ylo, yhi;
    uint8_t *px; /* w * H */
} raster;

static int row_of(const raster *r, double v)
{
    if (v == INFINITY)
        return H;
    if (v == -INFINITY)
        return -1;
    if (!(r->yhi > r->ylo))
        return H / 2;
    double f = (v - r->ylo) / (r->yhi - r->ylo);
    int row = (int)floor(f * (H - 1));
    return row < 0 ? 0 : row > H - 1 ? H - 1 : row;
}

static void plot(raster *r, int x, int y)
{
    if (x >= 0 && (uint32_t)x < r->w && y >= 0 && y < H)
        r->px[(size_t)y * r->w + (size_t)x] = 1;
}

static void bresenham(raster *r, int x0, int y0, int x1, int y1)
{
    int dx = abs(x1 - x0), sx = x0 < x1 ? 1 : -1;
    int dy = -abs(y1 - y0), sy = y0 < y1 ? 1 : -1;
    int err = dx + dy;
    for (;;) {
        plot(r, x0, y0);
        if (x0 == x1 && y0 == y1)
            return;
        int e2 = 2 * err;
        if (e2 >= dy) {
            err += dy;
            x0 += sx;
        }
        if (e2 <= dx) {
            err += dx;
            y0 += sy;
        }
    }
}

static void rasterise(raster *r, const brute *b, const tally_point *p, size_t n, uint32_t width)
{
    memset(r->px, 0, (size_t)r->w * H);
    int px = 0, py = 0;
    for (size_t i = 0; i < n; i++) {
        if (isnan(p[i].value))
            continue;
        int x = (int)(((i128)xof(&p[i]) - b->lo) * width / b->span);
        int y = row_of(r, p[i].value);
        if (i == 0)
            plot(r, x, y);
        else
            bresenham(r, px, py, x, y);
        px = x;
        py = y;
    }
}

/* --- one query -------------------------------------------------------------------- */

static uint64_t n_queries;

static void check_query(tally_engine *e, tally_series_id id, const tally_point *all, size_t n_all,
                        const tally_ds_req *req0)
{
    brute b;
    tally_ds_req req = *req0;
    brute_force(all, n_all, &req, &b);
    axis_time = req.x_axis != TALLY_X_STEP;

    /* M4 */
    req.method = TALLY_DS_M4;
    tally_ds_result r;
    ASSERT_OK(tally_downsample(e, id, &req, &r));
    n_queries++;
    if (n_all) {
        ASSERT_EQ(r.x_lo, b.x_lo);
        ASSERT_EQ(r.x_hi, b.x_hi);
    }
    if (r.n_source != b.n_source || r.n_points != b.n_m4)
        fprintf(stderr, "query: axis %d W %u full %d [%" PRId64 ", %" PRId64 "]\n", req.x_axis,
                req.width, req.full_range, req.x_lo, req.x_hi);
    ASSERT_U64_EQ(r.n_source, b.n_source);
    if (r.n_points != b.n_m4) {
        fprintf(stderr, "axis %d W %u full %d [%" PRId64 ", %" PRId64 "]: %zu vs %zu points\n",
                req.x_axis, req.width, req.full_range, req.x_lo, req.x_hi, r.n_points, b.n_m4);
        for (size_t i = 0; i < r.n_points || i < b.n_m4; i++)
            fprintf(stderr, "  %zu: got %" PRId64 "/%" PRId64 "/%g  want %" PRId64 "/%" PRId64 "/%g\n",
                    i, i < r.n_points ? r.points[i].step : -1,
                    i < r.n_points ? r.points[i].timestamp_ms : -1,
                    i < r.n_points ? r.points[i].value : 0, i < b.n_m4 ? b.m4[i].step : -1,
                    i < b.n_m4 ? b.m4[i].timestamp_ms : -1, i < b.n_m4 ? b.m4[i].value : 0);
    }
    ASSERT_EQ(r.n_points, b.n_m4);
    for (size_t i = 0; i < b.n_m4; i++) {
        ASSERT_EQ(r.points[i].step, b.m4[i].step);
        ASSERT_EQ(r.points[i].timestamp_ms, b.m4[i].timestamp_ms);
        ASSERT_BITS_EQ(r.points[i].value, b.m4[i].value);
    }
    /* Pixel identity of the line through M4's points and through all of them. */
    if (b.n_line) {
        raster ra = {req.width, INFINITY, -INFINITY, NULL}, rb;
        for (size_t i = 0; i < b.n_line; i++) {
            double v = b.line[i].value;
            if (isfinite(v)) {
                ra.ylo = v < ra.ylo ? v : ra.ylo;
                ra.yhi = v > ra.yhi ? v : ra.yhi;
            }
        }
        ra.px = malloc((size_t)req.width * H);
        rb = ra;
        rb.px = malloc((size_t)req.width * H);
        rasterise(&ra, &b, b.line, b.n_line, req.width);
        rasterise(&rb, &b, r.points, r.n_points, req.width);
        ASSERT(memcmp(ra.px, rb.px, (size_t)req.width * H) == 0);
        free(ra.px);
        free(rb.px);
    }
    tally_ds_result_free(&r);

    /* Buckets */
    req.method = TALLY_DS_BUCKETS;
    ASSERT_OK(tally_downsample(e, id, &req, &r));
    ASSERT_U64_EQ(r.n_source, b.n_source);
    ASSERT_EQ(r.n_buckets, b.n_bk);
    for (size_t i = 0; i < b.n_bk; i++) {
        const tally_bucket *g = &r.buckets[i], *w = &b.bk[i];
        ASSERT_EQ(g->x_lo, w->x_lo);
        ASSERT_EQ(g->x_hi, w->x_hi);
        ASSERT_U64_EQ(g->count, w->count);
        ASSERT_U64_EQ(g->n_nan, w->n_nan);
        ASSERT_BITS_EQ(g->min, w->min);
        ASSERT_BITS_EQ(g->max, w->max);
        if (!(isnan(g->mean) == isnan(w->mean)))
            fprintf(stderr, "bucket %zu: got [%" PRId64 ",%" PRId64 "] n %" PRIu64 " nan %" PRIu64
                    " min %g max %g mean %g; want [%" PRId64 ",%" PRId64 "] n %" PRIu64 " nan %" PRIu64
                    " min %g max %g mean %g (axis %d W %u full %d)\n", i, g->x_lo, g->x_hi, g->count, g->n_nan,
                    g->min, g->max, g->mean, w->x_lo, w->x_hi, w->count, w->n_nan, w->min, w->max, w->mean,
                    req.x_axis, req.width, req.full_range);
        if (isfinite(w->mean)) {
            ASSERT_DBL_NEAR(g->mean, w->mean, 1e-9 * (1 + fabs(w->mean)));
        } else {
            ASSERT(isnan(g->mean) == isnan(w->mean));
            if (!isnan(w->mean))
                ASSERT_BITS_EQ(g->mean, w->mean);
        }
    }
    tally_ds_result_free(&r);
    brute_free(&b);
}

/* Full range and random zooms on every axis, at several widths. */
static void check_many(tally_engine *e, int zooms)
{
    tally_series_id id = tally_series_id_of(RUN, strlen(RUN), KEY, strlen(KEY));
    size_t n;
    tally_point *all = all_points(e, id, &n);
    static const uint32_t widths[] = {1, 2, 3, 7, 64, 333, 1000, 4096, 65536};
    for (int axis = 0; axis < 3; axis++) {
        for (size_t w = 0; w < sizeof widths / sizeof widths[0]; w++) {
            tally_ds_req req = {TALLY_DS_M4, (tally_x_axis)axis, 1, 0, 0, widths[w]};
            check_query(e, id, all, n, &req);
        }
        if (!n)
            continue;
        axis_time = axis != TALLY_X_STEP;
        int64_t mn = INT64_MAX, mx = INT64_MIN;
        for (size_t i = 0; i < n; i++) {
            int64_t x = xof(&all[i]);
            mn = x < mn ? x : mn;
            mx = x > mx ? x : mx;
        }
        int64_t base = axis == TALLY_X_RELATIVE_TIME ? mn : 0;
        for (int z = 0; z < zooms; z++) {
            uint64_t span = (uint64_t)mx - (uint64_t)mn;
            i128 a = (i128)mn + (i128)rnd_below(span + 1) - base;
            i128 b = a + (i128)rnd_below(span / (1 + rnd_below(20)) + 1);
            if (rnd_below(8) == 0) /* beyond the data on one side */
                a -= (i128)rnd_below(1000);
            a = sat64(a);
            b = sat64(b);
            tally_ds_req req = {TALLY_DS_M4, (tally_x_axis)axis, 0, (int64_t)a, (int64_t)b,
                                widths[rnd_below(sizeof widths / sizeof widths[0] - 1)]};
            check_query(e, id, all, n, &req);
        }
    }
    free(all);
}

/* --- data ---------------------------------------------------------------------------- */

static tally_point *walk(size_t n, int64_t step0, int64_t ts0)
{
    tally_point *p = malloc(n * sizeof *p);
    double v = 1.0;
    for (size_t i = 0; i < n; i++) {
        v += (rnd_unit() - 0.5) * 0.1;
        p[i] = (tally_point){step0 + (int64_t)i, ts0 + (int64_t)i * 100 + (int64_t)rnd_below(7), v};
    }
    return p;
}

static void shuffle(tally_point *p, size_t n)
{
    for (size_t i = n; i > 1; i--) {
        size_t j = rnd_below(i);
        tally_point t = p[i - 1];
        p[i - 1] = p[j];
        p[j] = t;
    }
}

static void test_random_walk(void)
{
    char dir[512];
    rng_state = 1;
    test_tmpdir(dir, sizeof dir, "m4-walk");
    tally_engine *e = open_engine(dir, 128);
    size_t n = 20000;
    tally_point *p = walk(n, 0, 1700000000000);
    append_batches(e, p, n - 77, 1000, 0);
    ASSERT_OK(tally_engine_checkpoint(e));
    append(e, p + n - 77, 77); /* an unsealed head */
    check_many(e, 12);
    /* Run again: now every block's extreme points are cached. */
    check_many(e, 4);
    free(p);
    ASSERT_OK(tally_engine_close(e));
    /* Reopened (maybe at the same address): the cache must notice. */
    e = open_engine(dir, 128);
    check_many(e, 4);
    ASSERT_OK(tally_engine_close(e));
    test_rmdir(dir);
}

static void test_default_blocks(void)
{
    char dir[512];
    rng_state = 2;
    test_tmpdir(dir, sizeof dir, "m4-big");
    tally_engine *e = open_engine(dir, 4096 /* the default */);
    tally_engine_options o;
    tally_engine_options_init(&o);
    size_t n = 100000;
    tally_point *p = walk(n, 10, 1600000000000);
    append_batches(e, p, n, 20000, 0);
    ASSERT_OK(tally_engine_checkpoint(e));
    check_many(e, 10);
    free(p);
    ASSERT_OK(tally_engine_close(e));
    test_rmdir(dir);
}

/* Spikes on the first and last step of many columns at W = 100 and 1000. */
static void test_edge_spikes(void)
{
    char dir[512];
    rng_state = 3;
    test_tmpdir(dir, sizeof dir, "m4-spikes");
    tally_engine *e = open_engine(dir, 128);
    size_t n = 10000;
    tally_point *p = walk(n, 0, 1700000000000);
    static const uint32_t ws[] = {100, 1000, 333};
    for (size_t k = 0; k < 3; k++)
        for (uint32_t c = 1; c < ws[k]; c += 1 + (uint32_t)rnd_below(3)) {
            /* first step of column c: ceil(c * n / W) */
            size_t s = (size_t)(((uint64_t)c * n + ws[k] - 1) / ws[k]);
            if (s < n)
                p[s].value += (rnd_below(2) ? 5.0 : -5.0);
            if (s > 0)
                p[s - 1].value += (rnd_below(2) ? 7.0 : -7.0);
        }
    append_batches(e, p, n, 2500, 1);
    check_many(e, 10);
    free(p);
    ASSERT_OK(tally_engine_close(e));
    test_rmdir(dir);
}

/* Chunks cut by one column edge (dense steps, columns wider than a chunk):
 * M4 reads them lazily from the points beside the edge and the chunk's
 * argmin/argmax, and decodes one only when the side whose min or max is
 * unknown could still win its column. Values from a handful of levels make
 * ties everywhere (-0.0 and +0.0 included), so "first occurrence" is what
 * decides; the other shapes put the chunk's min or max on either side of
 * the edge, or make the edge chunk hold the column's extreme, or are closer
 * together than the float bounds of a chunk's eighths can tell, or rise or
 * fall strictly (a cut chunk then needs no read at all). Zooms whose
 * ends cut chunks, and widths giving 1..6 edges per 4096-point block. */
static void test_lazy_edges(void)
{
    static const double levels[] = {-1.0, -0.0, 0.0, 1.0, 0.5};
    static const uint32_t ws[] = {10, 37, 100, 250, 333, 700};
    for (int shape = 0; shape < 7; shape++) {
        char dir[512];
        rng_state = 40 + (uint64_t)shape;
        test_tmpdir(dir, sizeof dir, "m4-lazy");
        tally_engine *e = open_engine(dir, shape == 3 ? 1024 : 4096);
        size_t n = 60000;
        tally_point *p = malloc(n * sizeof *p);
        for (size_t i = 0; i < n; i++) {
            double v;
            switch (shape) {
            case 0: /* ties: five levels */
                v = levels[rnd_below(5)];
                break;
            case 1: /* a falling loss with noise: the column min sits at its end */
                v = 2.0 / (1.0 + (double)i / 500.0) * (1.0 + 0.03 * (rnd_unit() - 0.5));
                break;
            case 2: /* a rising staircase: min at the start, max at the end, ties within */
                v = (double)(i / 97);
                break;
            case 3: /* noise with rare spikes of both signs */
                v = rnd_unit() + (rnd_below(300) == 0 ? (rnd_below(2) ? 50.0 : -50.0) : 0.0);
                break;
            case 4: /* distinct values closer than a float's precision, falling: the
                     * chunks' eighth bounds (floats rounded outwards) tie or overlap */
                v = 1.0 + (double)(n - i) * 1e-13 + (double)rnd_below(1000) * 1e-15;
                break;
            case 5: /* a smooth falling curve: every chunk strictly falling, its part's
                     * extremes at the part's ends, nothing read but the edge points */
                v = 1.0 / (1.0 + (double)i * 1e-4);
                break;
            default: { /* runs of 700: strictly rising, strictly falling (through -0.0
                        * and +0.0, which are equal), flat, rising in ties: chunks with
                        * and without the strict marks, and across their boundaries */
                size_t seg = i / 700, t = i % 700;
                double base = (double)seg * 0.25;
                switch (seg % 4) {
                case 0: v = base + (double)t; break;
                case 1: v = t == 350 ? -0.0 : t == 351 ? 0.0 : base + 350.0 - (double)t; break;
                case 2: v = base; break;
                default: v = base + (double)(t / 2); break;
                }
                break;
            }
            }
            p[i] = (tally_point){(int64_t)i + 5, 1700000000000 + (int64_t)i * 10, v};
        }
        append_batches(e, p, n, 7000, 3);
        ASSERT_OK(tally_engine_checkpoint(e));
        tally_series_id id = tally_series_id_of(RUN, strlen(RUN), KEY, strlen(KEY));
        size_t na;
        tally_point *all = all_points(e, id, &na);
        ASSERT_EQ(na, n);
        for (size_t w = 0; w < sizeof ws / sizeof ws[0]; w++) {
            tally_ds_req req = {TALLY_DS_M4, TALLY_X_STEP, 1, 0, 0, ws[w]};
            check_query(e, id, all, na, &req);
            for (int z = 0; z < 6; z++) {
                int64_t a = 5 + (int64_t)rnd_below(n / 2);
                int64_t b = a + 2000 + (int64_t)rnd_below(n / 2);
                tally_ds_req zr = {TALLY_DS_M4, TALLY_X_STEP, 0, a, b, ws[rnd_below(3)]};
                check_query(e, id, all, na, &zr);
            }
        }
        free(all);
        free(p);
        ASSERT_OK(tally_engine_close(e));
        test_rmdir(dir);
    }
}

static void test_single_point_and_empty(void)
{
    char dir[512];
    rng_state = 4;
    test_tmpdir(dir, sizeof dir, "m4-single");
    tally_engine *e = open_engine(dir, 128);
    tally_series_id id = tally_series_id_of(RUN, strlen(RUN), KEY, strlen(KEY));
    /* Unknown series: empty result. */
    tally_ds_req req = {TALLY_DS_M4, TALLY_X_STEP, 1, 0, 0, 100};
    tally_ds_result r;
    ASSERT_OK(tally_downsample(e, id, &req, &r));
    ASSERT_EQ(r.n_points, 0);
    ASSERT_U64_EQ(r.n_source, 0);
    tally_ds_result_free(&r);
    /* Bad requests. */
    req.width = 0;
    ASSERT_EQ(tally_downsample(e, id, &req, &r), TALLY_EINVAL);
    req.width = 65537;
    ASSERT_EQ(tally_downsample(e, id, &req, &r), TALLY_EINVAL);
    req.width = 10;
    req.full_range = 0;
    req.x_lo = 5;
    req.x_hi = 4;
    ASSERT_EQ(tally_downsample(e, id, &req, &r), TALLY_EINVAL);

    tally_point one = {42, 1700000000000, 3.5};
    append(e, &one, 1);
    check_many(e, 4); /* head only */
    ASSERT_OK(tally_engine_checkpoint(e));
    check_many(e, 4); /* one sealed block of one point */
    /* Ranges without points, before and after. */
    req = (tally_ds_req){TALLY_DS_M4, TALLY_X_STEP, 0, 0, 41, 10};
    ASSERT_OK(tally_downsample(e, id, &req, &r));
    ASSERT_EQ(r.n_points, 0);
    ASSERT_U64_EQ(r.n_source, 0);
    tally_ds_result_free(&r);
    req.x_lo = 43;
    req.x_hi = INT64_MAX;
    ASSERT_OK(tally_downsample(e, id, &req, &r));
    ASSERT_EQ(r.n_points, 0);
    tally_ds_result_free(&r);
    req.x_lo = INT64_MIN;
    req.x_hi = INT64_MAX;
    req.width = 65536;
    ASSERT_OK(tally_downsample(e, id, &req, &r));
    ASSERT_EQ(r.n_points, 1);
    ASSERT_EQ(r.points[0].step, 42);
    tally_ds_result_free(&r);
    ASSERT_OK(tally_engine_close(e));
    test_rmdir(dir);
}

/* Many timestamps and values per step. */
static void test_duplicate_steps(void)
{
    char dir[512];
    rng_state = 5;
    test_tmpdir(dir, sizeof dir, "m4-dups");
    tally_engine *e = open_engine(dir, 128);
    size_t n = 6000;
    tally_point *p = malloc(n * sizeof *p);
    for (size_t i = 0; i < n; i++)
        p[i] = (tally_point){(int64_t)(i / 7), 1700000000000 + (int64_t)rnd_below(50000),
                             rnd_unit() * 10 - 5};
    for (size_t i = 0; i < 300; i++) /* exact repeats */
        p[rnd_below(n)] = p[rnd_below(n)];
    shuffle(p, n);
    append_batches(e, p, n, 500, 2);
    check_many(e, 10);
    free(p);
    ASSERT_OK(tally_engine_close(e));
    test_rmdir(dir);
}

/* Shuffled appends sealed in pieces, then re-logged ranges (a resume from a
 * checkpoint logs steps again with new values): blocks overlap each other
 * and the head. */
static void test_overlapping_blocks(void)
{
    char dir[512];
    rng_state = 6;
    test_tmpdir(dir, sizeof dir, "m4-overlap");
    tally_engine *e = open_engine(dir, 128);
    size_t n = 12000;
    tally_point *p = walk(n, 0, 1700000000000);
    /* in order, with local shuffles */
    for (size_t i = 0; i + 300 <= n; i += 300)
        if (rnd_below(3) == 0)
            shuffle(p + i, 300);
    append_batches(e, p, n, 300, 3);
    /* re-log three ranges with new values and later timestamps */
    for (int k = 0; k < 3; k++) {
        size_t a = rnd_below(n - 1500), len = 200 + rnd_below(1200);
        tally_point *q = walk(len, (int64_t)a, 1800000000000 + k * 1000000);
        append_batches(e, q, len, 250, 2);
        free(q);
    }
    /* and a fully shuffled tail that stays partly in the head */
    tally_point *t = walk(700, 5000, 1900000000000);
    shuffle(t, 700);
    append_batches(e, t, 700, 700, 0);
    free(t);
    check_many(e, 16);
    ASSERT_OK(tally_engine_checkpoint(e));
    check_many(e, 8);
    free(p);
    ASSERT_OK(tally_engine_close(e));
    test_rmdir(dir);
}

static void test_nan_inf(void)
{
    char dir[512];
    rng_state = 7;
    test_tmpdir(dir, sizeof dir, "m4-nan");
    tally_engine *e = open_engine(dir, 128);
    size_t n = 8000;
    tally_point *p = walk(n, 0, 1700000000000);
    for (size_t i = 0; i < n; i++) {
        uint64_t r = rnd_below(100);
        if (r < 3)
            p[i].value = NAN;
        else if (r == 3)
            p[i].value = INFINITY;
        else if (r == 4)
            p[i].value = -INFINITY;
        else if (r == 5)
            p[i].value = rnd_below(2) ? 0.0 : -0.0;
    }
    for (size_t i = 1280; i < 1280 + 300; i++) /* whole chunks of NaN */
        p[i].value = NAN;
    p[0].value = NAN;
    p[n - 1].value = NAN;
    append_batches(e, p, n, 1000, 2);
    check_many(e, 12);
    free(p);
    ASSERT_OK(tally_engine_close(e));
    test_rmdir(dir);
}

/* Timestamps that go back (a clock change) so some blocks are not sorted by
 * time and time ranges overlap; relative time too. */
static void test_time_axis(void)
{
    char dir[512];
    rng_state = 8;
    test_tmpdir(dir, sizeof dir, "m4-time");
    tally_engine *e = open_engine(dir, 128);
    size_t n = 9000;
    tally_point *p = walk(n, 0, 1700000000000);
    for (size_t i = 3000; i < 3400; i++)
        p[i].timestamp_ms -= 250000; /* back in time by ~2500 steps */
    for (size_t i = 6000; i < 6100; i++)
        p[i].timestamp_ms = 1700000000000 + (int64_t)rnd_below(900000);
    append_batches(e, p, n, 900, 1);
    check_many(e, 16);
    free(p);
    ASSERT_OK(tally_engine_close(e));
    test_rmdir(dir);
}

/* Steps and timestamps at the ends of int64: no column arithmetic overflows. */
static void test_int64_extremes(void)
{
    char dir[512];
    rng_state = 9;
    test_tmpdir(dir, sizeof dir, "m4-extreme");
    tally_engine *e = open_engine(dir, 128);
    size_t n = 1000;
    tally_point *p = malloc(n * sizeof *p);
    for (size_t i = 0; i < n; i++) {
        int64_t s = (int64_t)rnd();
        if (i < 3)
            s = i == 0 ? INT64_MIN : i == 1 ? INT64_MAX : 0;
        p[i] = (tally_point){s, s / 2 + (int64_t)(rnd() >> 2) * (rnd_below(2) ? 1 : -1),
                             rnd_unit()};
    }
    p[3].timestamp_ms = INT64_MIN;
    p[4].timestamp_ms = INT64_MAX;
    append_batches(e, p, n, 200, 1);
    check_many(e, 6);
    tally_series_id id = tally_series_id_of(RUN, strlen(RUN), KEY, strlen(KEY));
    size_t na;
    tally_point *all = all_points(e, id, &na);
    tally_ds_req req = {TALLY_DS_M4, TALLY_X_STEP, 0, INT64_MIN, INT64_MAX, 65536};
    check_query(e, id, all, na, &req);
    req.x_axis = TALLY_X_RELATIVE_TIME;
    req.x_lo = 0;
    check_query(e, id, all, na, &req);
    free(all);
    free(p);
    ASSERT_OK(tally_engine_close(e));
    test_rmdir(dir);
}

/* W far above the point count: one point per column at most. */
static void test_sparse(void)
{
    char dir[512];
    rng_state = 10;
    test_tmpdir(dir, sizeof dir, "m4-sparse");
    tally_engine *e = open_engine(dir, 128);
    size_t n = 500;
    tally_point *p = walk(n, 0, 1700000000000);
    for (size_t i = 0; i < n; i++)
        p[i].step = (int64_t)i * 1000 + (int64_t)rnd_below(1000);
    append_batches(e, p, n, 100, 1);
    check_many(e, 10);
    free(p);
    ASSERT_OK(tally_engine_close(e));
    test_rmdir(dir);
}

/* --- bulk ------------------------------------------------------------------------------- */

#define BULK_SERIES 24

typedef struct bulk_arg {
    tally_engine *e;
    const tally_series_id *ids;
    tally_ds_req req;
    const tally_ds_result *want; /* BULK_SERIES single-series answers */
} bulk_arg;

static void same_result(const tally_ds_result *a, const tally_ds_result *b)
{
    ASSERT_EQ(a->n_points, b->n_points);
    ASSERT_EQ(a->n_buckets, b->n_buckets);
    ASSERT_U64_EQ(a->n_source, b->n_source);
    ASSERT(a->n_points == 0 || memcmp(a->points, b->points, a->n_points * sizeof *a->points) == 0);
    ASSERT(a->n_buckets == 0 ||
           memcmp(a->buckets, b->buckets, a->n_buckets * sizeof *a->buckets) == 0);
}

static void *bulk_thread(void *p)
{
    bulk_arg *a = p;
    for (int k = 0; k < 8; k++) {
        tally_ds_result got[BULK_SERIES];
        ASSERT_OK(tally_downsample_bulk(a->e, a->ids, BULK_SERIES, &a->req, got));
        for (int i = 0; i < BULK_SERIES; i++) {
            same_result(&got[i], &a->want[i]);
            tally_ds_result_free(&got[i]);
        }
    }
    return NULL;
}

/* tally_downsample_bulk_each's callback: checks series i against want[i],
 * counts the call, consumes the result, and fails at index fail_at. */
typedef struct each_arg {
    const tally_ds_result *want;
    atomic_int calls[BULK_SERIES];
    int fail_at; /* -1: never */
} each_arg;

static int each_check(void *ctx, size_t i, tally_ds_result *r)
{
    each_arg *a = ctx;
    ASSERT(i < BULK_SERIES);
    atomic_fetch_add(&a->calls[i], 1);
    same_result(r, &a->want[i]);
    tally_ds_result_free(r);
    return (int)i == a->fail_at ? TALLY_ENOMEM : 0;
}

/* The callback runs once per series with that series' result, which it may
 * consume; its error fails the call and leaves every result empty. */
static void check_bulk_each(tally_engine *e, const tally_series_id *ids, const tally_ds_req *req,
                            const tally_ds_result *want)
{
    for (int fail_at = -1; fail_at < BULK_SERIES; fail_at += 7) {
        for (size_t n = 1; n <= BULK_SERIES; n += BULK_SERIES - 1) { /* inline path, pool */
            each_arg a = {.want = want, .fail_at = fail_at};
            for (int i = 0; i < BULK_SERIES; i++)
                atomic_init(&a.calls[i], 0);
            tally_ds_result got[BULK_SERIES];
            int rc = tally_downsample_bulk_each(e, ids, n, req, got, each_check, &a);
            int fails = fail_at >= 0 && (size_t)fail_at < n;
            ASSERT_EQ(rc, fails ? TALLY_ENOMEM : 0);
            for (size_t i = 0; i < n; i++) {
                ASSERT(got[i].points == NULL && got[i].buckets == NULL); /* consumed or freed */
                ASSERT(atomic_load(&a.calls[i]) <= 1);
                if (!fails)
                    ASSERT_EQ(atomic_load(&a.calls[i]), 1);
            }
        }
    }
}

/* tally_downsample_bulk gives, in id order, what tally_downsample gives per
 * series, also from several threads at once. */
static void test_bulk(void)
{
    char dir[512];
    rng_state = 11;
    test_tmpdir(dir, sizeof dir, "m4-bulk");
    tally_engine *e = open_engine(dir, 128);
    tally_series_id ids[BULK_SERIES];
    for (int i = 0; i < BULK_SERIES; i++) {
        char run[32];
        snprintf(run, sizeof run, "bulk-%d", i);
        ids[i] = tally_series_id_of(run, strlen(run), KEY, strlen(KEY));
        if (i == 5)
            continue; /* an id of no series */
        size_t n = 200 + rnd_below(5000);
        tally_point *p = walk(n, (int64_t)rnd_below(100), 1700000000000);
        int64_t *st = malloc(n * 8), *ts = malloc(n * 8);
        double *v = malloc(n * 8);
        for (size_t j = 0; j < n; j++) {
            st[j] = p[j].step;
            ts[j] = p[j].timestamp_ms;
            v[j] = p[j].value;
        }
        tally_series_batch b = {run, strlen(run), KEY, strlen(KEY), (uint32_t)n, st, ts, v};
        ASSERT_OK(tally_engine_append(e, &b, 1));
        if (i % 3)
            ASSERT_OK(tally_engine_checkpoint(e));
        free(st);
        free(ts);
        free(v);
        free(p);
    }
    for (int method = 0; method < 3; method += 2) {
        tally_ds_req req = {(tally_ds_method)method, TALLY_X_STEP, 1, 0, 0, 300};
        tally_ds_result want[BULK_SERIES], got[BULK_SERIES];
        for (int i = 0; i < BULK_SERIES; i++)
            ASSERT_OK(tally_downsample(e, ids[i], &req, &want[i]));
        ASSERT_EQ(want[5].n_points + want[5].n_buckets, 0);
        ASSERT_OK(tally_downsample_bulk(e, ids, BULK_SERIES, &req, got));
        for (int i = 0; i < BULK_SERIES; i++) {
            same_result(&got[i], &want[i]);
            tally_ds_result_free(&got[i]);
        }
        ASSERT_OK(tally_downsample_bulk(e, ids, 1, &req, got)); /* inline path */
        same_result(&got[0], &want[0]);
        tally_ds_result_free(&got[0]);
        ASSERT_OK(tally_downsample_bulk(e, ids, 0, &req, got));
        check_bulk_each(e, ids, &req, want);
        req.width = 0;
        ASSERT_EQ(tally_downsample_bulk(e, ids, BULK_SERIES, &req, got), TALLY_EINVAL);
        for (int i = 0; i < BULK_SERIES; i++)
            ASSERT(got[i].points == NULL && got[i].buckets == NULL);
        req.width = 300;
        /* concurrent callers share the pool and the rollup cache */
        pthread_t th[3];
        bulk_arg arg = {e, ids, req, want};
        for (int t = 0; t < 3; t++)
            ASSERT_EQ(pthread_create(&th[t], NULL, bulk_thread, &arg), 0);
        for (int t = 0; t < 3; t++)
            pthread_join(th[t], NULL);
        for (int i = 0; i < BULK_SERIES; i++)
            tally_ds_result_free(&want[i]);
    }
    ASSERT_OK(tally_engine_close(e));
    test_rmdir(dir);
}

int main(void)
{
    TEST_RUN(test_bulk);
    TEST_RUN(test_single_point_and_empty);
    TEST_RUN(test_random_walk);
    TEST_RUN(test_default_blocks);
    TEST_RUN(test_edge_spikes);
    TEST_RUN(test_lazy_edges);
    TEST_RUN(test_duplicate_steps);
    TEST_RUN(test_overlapping_blocks);
    TEST_RUN(test_nan_inf);
    TEST_RUN(test_time_axis);
    TEST_RUN(test_int64_extremes);
    TEST_RUN(test_sparse);
    fprintf(stderr, "%" PRIu64 " queries checked\n", n_queries);
    return TEST_DONE();
}
