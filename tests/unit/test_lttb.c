/*
 * test_lttb.c — LTTB (query/downsample.c) against a straightforward
 * reference implementation of the published algorithm (Sveinn Steinarsson,
 * "Downsampling Time Series for Visual Representation", 2013, and his
 * reference JavaScript), written here from the paper on plain arrays.
 *
 * The reference sees what the query layer documents as LTTB's input: every
 * point of the range through the engine's iterator, ordered on the axis,
 * NaN values left out, x as a double (step, timestamp, or timestamp minus the
 * series' least timestamp). Results must be identical point for point, bit
 * for bit, over random series (shuffled appends, re-logged steps, +-inf and
 * NaN) and random widths, ranges and axes.
 */
#include "test.h"

#include <tally/query.h>

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

/* --- the reference ------------------------------------------------------------- */

/* Steinarsson's LTTB: keep the first and last points; split the rest into
 * threshold - 2 buckets of `every` points; for each bucket keep the point
 * making the largest triangle with the point kept before it and the average
 * of the next bucket. A bucket where no area compares greater than -1 (NaN
 * areas from infinities) keeps its first point. */
static size_t ref_lttb(const double *x, const double *y, size_t n, size_t threshold, size_t *out)
{
    if (threshold >= n) {
        for (size_t i = 0; i < n; i++)
            out[i] = i;
        return n;
    }
    if (threshold == 1) {
        out[0] = 0;
        return 1;
    }
    size_t k = 0;
    double every = (double)(n - 2) / (double)(threshold - 2);
    size_t a = 0;
    out[k++] = a;
    for (size_t i = 0; i < threshold - 2; i++) {
        /* the average point of the next bucket */
        size_t avg_start = (size_t)floor((double)(i + 1) * every) + 1;
        size_t avg_end = (size_t)floor((double)(i + 2) * every) + 1;
        avg_end = avg_end < n ? avg_end : n;
        double avg_x = 0, avg_y = 0;
        for (size_t j = avg_start; j < avg_end; j++) {
            avg_x += x[j];
            avg_y += y[j];
        }
        avg_x /= (double)(avg_end - avg_start);
        avg_y /= (double)(avg_end - avg_start);
        /* this bucket */
        size_t off = (size_t)floor((double)i * every) + 1;
        size_t to = (size_t)floor((double)(i + 1) * every) + 1;
        double max_area = -1;
        size_t next_a = off;
        for (size_t j = off; j < to; j++) {
            double area = fabs((x[a] - avg_x) * (y[j] - y[a]) - (x[a] - x[j]) * (avg_y - y[a])) * 0.5;
            if (area > max_area) {
                max_area = area;
                next_a = j;
            }
        }
        out[k++] = next_a;
        a = next_a;
    }
    out[k++] = n - 1;
    return k;
}

/* --- helpers --------------------------------------------------------------------- */

static const char RUN[] = "run-lttb", KEY[] = "acc";

static int axis_time;
static uint64_t bits(double d)
{
    uint64_t u;
    memcpy(&u, &d, 8);
    return u;
}
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

static void check(tally_engine *e, tally_series_id id, const tally_point *all, size_t n_all,
                  const tally_ds_req *req)
{
    axis_time = req->x_axis != TALLY_X_STEP;
    tally_point *p = malloc((n_all + 1) * sizeof *p);
    memcpy(p, all, n_all * sizeof *p);
    qsort(p, n_all, sizeof *p, cmp_axis);
    int64_t base = 0, lo = INT64_MIN, hi = INT64_MAX;
    if (n_all && req->x_axis == TALLY_X_RELATIVE_TIME)
        base = p[0].timestamp_ms;
    if (!req->full_range) {
        lo = req->x_lo + base;
        hi = req->x_hi + base;
    }
    size_t m = 0;
    uint64_t n_source = 0;
    for (size_t i = 0; i < n_all; i++) {
        int64_t x = axis_time ? p[i].timestamp_ms : p[i].step;
        if (x < lo || x > hi)
            continue;
        n_source++;
        if (!isnan(p[i].value))
            p[m++] = p[i];
    }
    double *xs = malloc((m + 1) * sizeof *xs), *ys = malloc((m + 1) * sizeof *ys);
    size_t *keep = malloc((m + 1) * sizeof *keep);
    for (size_t i = 0; i < m; i++) {
        xs[i] = (double)((axis_time ? p[i].timestamp_ms : p[i].step) - base);
        ys[i] = p[i].value;
    }
    size_t k = ref_lttb(xs, ys, m, req->width, keep);

    tally_ds_result r;
    ASSERT_OK(tally_downsample(e, id, req, &r));
    ASSERT_U64_EQ(r.n_source, n_source);
    ASSERT_EQ(r.n_points, k);
    for (size_t i = 0; i < k; i++) {
        ASSERT_EQ(r.points[i].step, p[keep[i]].step);
        ASSERT_EQ(r.points[i].timestamp_ms, p[keep[i]].timestamp_ms);
        ASSERT_BITS_EQ(r.points[i].value, p[keep[i]].value);
    }
    tally_ds_result_free(&r);
    free(p);
    free(xs);
    free(ys);
    free(keep);
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

/* --- cases --------------------------------------------------------------------------- */

static void test_reference_shape(void)
{
    /* The reference on a known input: a spike must survive. */
    double x[10], y[10];
    size_t out[10];
    for (int i = 0; i < 10; i++) {
        x[i] = i;
        y[i] = i == 5 ? 100 : 0;
    }
    size_t k = ref_lttb(x, y, 10, 4, out);
    ASSERT_EQ(k, 4);
    ASSERT_EQ(out[0], 0);
    ASSERT_EQ(out[3], 9);
    ASSERT(out[1] == 5 || out[2] == 5);
}

static void test_random_series(void)
{
    char dir[512];
    test_tmpdir(dir, sizeof dir, "lttb");
    for (int round = 0; round < 12; round++) {
        rng_state = 100 + (uint64_t)round;
        char sub[600];
        snprintf(sub, sizeof sub, "%s/r%d", dir, round);
        tally_engine_options o;
        tally_engine_options_init(&o);
        o.durability = TALLY_DURABILITY_ASYNC;
        o.block_points = 128;
        tally_engine *e;
        ASSERT_OK(tally_engine_open(sub, &o, &e));
        size_t n = rnd_below(6000);
        tally_point *p = malloc((n + 1) * sizeof *p);
        double v = 0;
        for (size_t i = 0; i < n; i++) {
            v += rnd_unit() - 0.5;
            p[i] = (tally_point){(int64_t)i / (round % 3 == 0 ? 3 : 1),
                                 1700000000000 + (int64_t)i * 50 + (int64_t)rnd_below(round % 4 == 1 ? 5000 : 3),
                                 v};
            uint64_t r = rnd_below(200);
            if (round % 2 && r == 0)
                p[i].value = NAN;
            if (round % 5 == 4 && r == 1)
                p[i].value = rnd_below(2) ? INFINITY : -INFINITY;
        }
        /* shuffled batches with checkpoints: overlapping blocks and a head */
        for (size_t i = 0; i + 1 < n; i++) {
            if (rnd_below(4) == 0) {
                size_t j = i + rnd_below(n - i);
                tally_point t = p[i];
                p[i] = p[j];
                p[j] = t;
            }
        }
        for (size_t i = 0; i < n; i += 700) {
            append(e, p + i, n - i < 700 ? n - i : 700);
            if (rnd_below(2))
                ASSERT_OK(tally_engine_checkpoint(e));
        }
        tally_series_id id = tally_series_id_of(RUN, strlen(RUN), KEY, strlen(KEY));
        size_t n_all;
        tally_point *all = all_points(e, id, &n_all);
        for (int q = 0; q < 40; q++) {
            tally_ds_req req = {TALLY_DS_LTTB, (tally_x_axis)rnd_below(3), 1, 0, 0,
                                (uint32_t)(1 + rnd_below(n + 20))};
            if (req.width > 65536)
                req.width = 65536;
            if (q % 3 == 1 && n_all) {
                axis_time = req.x_axis != TALLY_X_STEP;
                const tally_point *a = &all[rnd_below(n_all)], *b = &all[rnd_below(n_all)];
                int64_t xa = axis_time ? a->timestamp_ms : a->step;
                int64_t xb = axis_time ? b->timestamp_ms : b->step;
                int64_t base = INT64_MAX;
                for (size_t i = 0; i < n_all && req.x_axis == TALLY_X_RELATIVE_TIME; i++)
                    base = all[i].timestamp_ms < base ? all[i].timestamp_ms : base;
                if (req.x_axis != TALLY_X_RELATIVE_TIME)
                    base = 0;
                req.full_range = 0;
                req.x_lo = (xa < xb ? xa : xb) - base;
                req.x_hi = (xa < xb ? xb : xa) - base;
            }
            check(e, id, all, n_all, &req);
        }
        free(all);
        free(p);
        ASSERT_OK(tally_engine_close(e));
    }
    test_rmdir(dir);
}

int main(void)
{
    TEST_RUN(test_reference_shape);
    TEST_RUN(test_random_series);
    return TEST_DONE();
}
