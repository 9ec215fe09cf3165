/*
 * test_mlflow_sampling.c — tally_mlflow_bulk_interval (query/mlflow_sampling.c)
 * against a plain transcription of mlflow-rest-api.md §4.6 over every point
 * the test logged: sorted arrays for the sets, brute force for the rest.
 *
 * Random cases: 1..100 runs (a few unknown), step patterns (regular, gaps,
 * strides, negative steps, duplicate steps, exact duplicates, re-logged
 * ranges, a run of one point), max_results 1..2500, with and without a
 * range. Data goes through a real engine with 128-point blocks (many blocks,
 * overlapping ones, a head). Answers must be identical: same points, same
 * order, bit for bit.
 */
#include <math.h>

#include "point_order.h"
#include "tally/query.h"
#include "test.h"

#define MAX_RUNS 100

static uint64_t rng_state = 0x2545F4914F6CDD1Dull;
static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static int64_t rnd_in(int64_t lo, int64_t hi) { return lo + (int64_t)(rnd() % (uint64_t)(hi - lo + 1)); }

typedef struct pts {
    tally_point *p;
    size_t n, cap;
} pts;

static void push(pts *x, tally_point p)
{
    if (x->n == x->cap) {
        x->cap = x->cap ? 2 * x->cap : 256;
        x->p = realloc(x->p, x->cap * sizeof *x->p);
    }
    x->p[x->n++] = p;
}

static int i64cmp(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static size_t sort_unique(int64_t *a, size_t n)
{
    qsort(a, n, sizeof *a, i64cmp);
    size_t u = 0;
    for (size_t i = 0; i < n; i++)
        if (u == 0 || a[u - 1] != a[i])
            a[u++] = a[i];
    return u;
}

static int contains(const int64_t *a, size_t n, int64_t v)
{
    return bsearch(&v, a, n, sizeof *a, i64cmp) != NULL;
}

/* §4.6, written plainly. logged[r] holds run r's points (empty for an
 * unknown run). Writes each run's expected answer into want[r]. */
static void reference(pts *logged, size_t n_runs, int has_range, int64_t lo, int64_t hi, uint32_t m,
                      pts *want)
{
    size_t total = 0;
    for (size_t r = 0; r < n_runs; r++)
        total += logged[r].n;
    int64_t *u = malloc((total + 1) * sizeof *u);
    int64_t *b = malloc((2 * n_runs + 1) * sizeof *b);
    size_t nu = 0, nb = 0;
    for (size_t r = 0; r < n_runs; r++) {
        if (logged[r].n == 0)
            continue;
        int64_t mn = logged[r].p[0].step, mx = mn;
        for (size_t i = 0; i < logged[r].n; i++) {
            int64_t s = logged[r].p[i].step;
            u[nu++] = s;
            if (s < mn)
                mn = s;
            if (s > mx)
                mx = s;
        }
        b[nb++] = mn; /* B: per-run extremes */
        b[nb++] = mx;
    }
    nu = sort_unique(u, nu); /* U */
    if (!has_range) {
        lo = 0;
        hi = nu ? u[nu - 1] : 0;
    }
    int64_t *w = malloc((nu + 1) * sizeof *w);
    size_t n = 0;
    for (size_t i = 0; i < nu; i++)
        if (u[i] >= lo && u[i] <= hi)
            w[n++] = u[i];
    int64_t *steps = malloc((n + m + 2 * n_runs + 2) * sizeof *steps);
    size_t ns = 0;
    if (n <= m) {
        for (size_t i = 0; i < n; i++)
            steps[ns++] = w[i];
    } else {
        double d = (double)n / (double)m;
        for (uint32_t i = 0; i < m; i++)
            steps[ns++] = w[(size_t)((double)i * d)];
        steps[ns++] = w[n - 1];
    }
    for (size_t i = 0; i < nb; i++)
        if (b[i] >= lo && b[i] <= hi)
            steps[ns++] = b[i];
    ns = sort_unique(steps, ns);
    for (size_t r = 0; r < n_runs; r++) {
        want[r] = (pts){0};
        for (size_t i = 0; i < logged[r].n; i++)
            if (contains(steps, ns, logged[r].p[i].step))
                push(&want[r], logged[r].p[i]);
        if (want[r].n) {
            qsort(want[r].p, want[r].n, sizeof *want[r].p, tally__qsort_step_numeric);
            want[r].n = tally__dedupe_sorted(want[r].p, want[r].n);
            if (want[r].n > 25000)
                want[r].n = 25000;
        }
    }
    free(u);
    free(b);
    free(w);
    free(steps);
}

/* One run's random points. */
static void make_run(pts *x, int pattern)
{
    int64_t n = rnd_in(1, 400);
    int64_t start = rnd_in(-50, 200);
    int64_t stride = rnd_in(1, 4);
    switch (pattern) {
    case 0: /* regular, like a training loop */
        for (int64_t i = 0; i < n; i++)
            push(x, (tally_point){start + i, 1000 + i, (double)i});
        break;
    case 1: /* strided with random gaps */
        for (int64_t i = 0, s = start; i < n; i++, s += stride + (rnd() % 5 == 0 ? rnd_in(1, 30) : 0))
            push(x, (tally_point){s, 1000 + i, (double)(rnd() % 100)});
        break;
    case 2: /* negative steps and duplicates of a step */
        for (int64_t i = 0; i < n; i++) {
            int64_t s = rnd_in(-100, 100);
            push(x, (tally_point){s, rnd_in(0, 50), (double)(rnd() % 7) - 3.0});
            if (rnd() % 4 == 0)
                push(x, (tally_point){s, rnd_in(0, 50), NAN});
        }
        break;
    case 3: /* a range logged again (resumed run) plus exact duplicates */
        for (int64_t i = 0; i < n; i++)
            push(x, (tally_point){start + i, 1000 + i, (double)i * 0.5});
        for (int64_t i = n / 3; i < n; i++) {
            push(x, (tally_point){start + i, 5000 + i, -(double)i});
            if (rnd() % 3 == 0)
                push(x, x->p[x->n - 1]);
        }
        break;
    default: /* one point */
        push(x, (tally_point){rnd_in(-5, 500), 7, rnd() % 2 ? -0.0 : 0.0});
        break;
    }
}

static void shuffle(tally_point *p, size_t n)
{
    for (size_t i = n; i > 1; i--) {
        size_t j = rnd() % i;
        tally_point t = p[i - 1];
        p[i - 1] = p[j];
        p[j] = t;
    }
}

static void append_run(tally_engine *e, const char *run, const char *key, const pts *x)
{
    /* Logged in a few shuffled batches, so blocks overlap. */
    tally_point *c = malloc((x->n + 1) * sizeof *c);
    memcpy(c, x->p, x->n * sizeof *c);
    if (rnd() % 2)
        shuffle(c, x->n);
    size_t at = 0;
    while (at < x->n) {
        size_t k = (size_t)rnd_in(1, 300);
        if (k > x->n - at)
            k = x->n - at;
        int64_t *st = malloc(k * 8), *ts = malloc(k * 8);
        double *va = malloc(k * 8);
        for (size_t i = 0; i < k; i++) {
            st[i] = c[at + i].step;
            ts[i] = c[at + i].timestamp_ms;
            va[i] = c[at + i].value;
        }
        tally_series_batch b = {run, strlen(run), key, strlen(key), (uint32_t)k, st, ts, va};
        ASSERT_OK(tally_engine_append(e, &b, 1));
        free(st);
        free(ts);
        free(va);
        at += k;
    }
    free(c);
}

static void compare(const tally_run_points *got, const pts *want, size_t n_runs)
{
    for (size_t r = 0; r < n_runs; r++) {
        if (got[r].n_points != want[r].n)
            fprintf(stderr, "run %zu: %zu points, expected %zu\n", r, got[r].n_points, want[r].n);
        ASSERT_EQ(got[r].n_points, want[r].n);
        for (size_t i = 0; i < want[r].n; i++) {
            ASSERT_EQ(got[r].points[i].step, want[r].p[i].step);
            ASSERT_EQ(got[r].points[i].timestamp_ms, want[r].p[i].timestamp_ms);
            ASSERT_BITS_EQ(got[r].points[i].value, want[r].p[i].value);
        }
    }
}

static void run_case(tally_engine *e, int c)
{
    size_t n_runs = (size_t)rnd_in(1, c % 4 == 0 ? MAX_RUNS : 12);
    pts logged[MAX_RUNS];
    tally_series_id ids[MAX_RUNS];
    char key[32];
    snprintf(key, sizeof key, "m%d", c);
    int common = (int)(rnd() % 5);
    for (size_t r = 0; r < n_runs; r++) {
        char run[32];
        snprintf(run, sizeof run, "run%zu", r);
        logged[r] = (pts){0};
        ids[r] = tally_series_id_of(run, strlen(run), key, strlen(key));
        if (rnd() % 10 == 0)
            continue; /* unknown series */
        make_run(&logged[r], rnd() % 3 ? common : (int)(rnd() % 5));
        append_run(e, run, key, &logged[r]);
    }
    for (int q = 0; q < 4; q++) {
        uint32_t m = q == 0 ? (uint32_t)rnd_in(1, 2500) : (uint32_t)rnd_in(1, 40);
        int has_range = q >= 2;
        int64_t lo = rnd_in(-120, 300), hi = lo + rnd_in(0, 300);
        pts want[MAX_RUNS];
        tally_run_points got[MAX_RUNS];
        reference(logged, n_runs, has_range, lo, hi, m, want);
        ASSERT_OK(tally_mlflow_bulk_interval(e, ids, n_runs, has_range, lo, hi, m, got));
        compare(got, want, n_runs);
        for (size_t r = 0; r < n_runs; r++) {
            tally_run_points_free(&got[r]);
            ASSERT(got[r].points == NULL && got[r].n_points == 0);
            free(want[r].p);
        }
    }
    for (size_t r = 0; r < n_runs; r++)
        free(logged[r].p);
}

static tally_engine *open_engine(const char *dir)
{
    tally_engine_options o;
    tally_engine_options_init(&o);
    o.durability = TALLY_DURABILITY_ASYNC;
    o.block_points = 128;
    tally_engine *e;
    ASSERT_OK(tally_engine_open(dir, &o, &e));
    return e;
}

static void test_random_cases(void)
{
    char dir[4096];
    test_tmpdir(dir, sizeof dir, "sampling-random");
    tally_engine *e = open_engine(dir);
    for (int c = 0; c < 120; c++)
        run_case(e, c);
    ASSERT_OK(tally_engine_close(e));
    test_rmdir(dir);
}

/* One long series per run: many blocks, the picks land inside blocks, and
 * the per-run extremes differ between runs. */
static void test_long_runs(void)
{
    char dir[4096];
    test_tmpdir(dir, sizeof dir, "sampling-long");
    tally_engine *e = open_engine(dir);
    pts logged[3] = {{0}};
    tally_series_id ids[3];
    for (int r = 0; r < 3; r++) {
        char run[16];
        snprintf(run, sizeof run, "long%d", r);
        for (int64_t i = 0; i < 20000; i++)
            if (r != 2 || i % 3)
                push(&logged[r], (tally_point){i + r * 1000 - 500, i, sin((double)i)});
        append_run(e, run, "loss", &logged[r]);
        ids[r] = tally_series_id_of(run, strlen(run), "loss", 4);
    }
    for (int pass = 0; pass < 2; pass++) {
        uint32_t ms[] = {1, 2, 320, 2500};
        for (size_t k = 0; k < 4; k++) {
            pts want[3];
            tally_run_points got[3];
            reference(logged, 3, pass, 100, 15000, ms[k], want);
            ASSERT_OK(tally_mlflow_bulk_interval(e, ids, 3, pass, 100, 15000, ms[k], got));
            compare(got, want, 3);
            for (int r = 0; r < 3; r++) {
                tally_run_points_free(&got[r]);
                free(want[r].p);
            }
        }
        ASSERT_OK(tally_engine_close(e)); /* second pass: every point sealed */
        e = open_engine(dir);
    }
    ASSERT_OK(tally_engine_close(e));
    for (int r = 0; r < 3; r++)
        free(logged[r].p);
    test_rmdir(dir);
}

static void test_args(void)
{
    char dir[4096];
    test_tmpdir(dir, sizeof dir, "sampling-args");
    tally_engine *e = open_engine(dir);
    tally_series_id id = 42;
    tally_run_points out[1];
    ASSERT_EQ(tally_mlflow_bulk_interval(e, &id, 1, 0, 0, 0, 0, out), TALLY_EINVAL);
    ASSERT_EQ(tally_mlflow_bulk_interval(e, &id, 1, 1, 5, 4, 10, out), TALLY_EINVAL);
    ASSERT_EQ(tally_mlflow_bulk_interval(NULL, &id, 1, 0, 0, 0, 10, out), TALLY_EINVAL);
    ASSERT_OK(tally_mlflow_bulk_interval(e, &id, 1, 0, 0, 0, 10, out)); /* unknown: nothing */
    ASSERT_EQ(out[0].n_points, 0);
    ASSERT_OK(tally_mlflow_bulk_interval(e, NULL, 0, 0, 0, 0, 10, NULL));
    tally_run_points_free(NULL);
    ASSERT_OK(tally_engine_close(e));
    test_rmdir(dir);
}

int main(void)
{
    TEST_RUN(test_args);
    TEST_RUN(test_long_runs);
    TEST_RUN(test_random_cases);
    return TEST_DONE();
}
