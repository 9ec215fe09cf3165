/*
 * test_block.c — sealed blocks (engine/block.c): sort and dedupe, encode,
 * header, view, chunk summaries and range decode against brute force, both
 * body kinds (LZ4 and raw), and damage: every bit flip and every truncation
 * of small blocks must give TALLY_ECORRUPT, and bodies that are damaged but
 * carry recomputed checksums must never crash a reader (run under ASan and
 * UBSan in CI; every block is read from an exact-size heap copy so a read
 * past its end is caught).
 */
#include <float.h>
#include <lz4.h>
#include <xxhash.h>

#include "block.h"
#include "format.h"
#include "test.h"

/* ------------------------------------------------------------------------ */
/* Helpers                                                                   */
/* ------------------------------------------------------------------------ */

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint64_t rnd(void)
{
    /* splitmix64 */
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint32_t rnd_below(uint32_t n)
{
    return (uint32_t)(rnd() % n);
}

static uint64_t bits_of(double d)
{
    uint64_t u;
    memcpy(&u, &d, 8);
    return u;
}

static double dbl_of(uint64_t u)
{
    double d;
    memcpy(&d, &u, 8);
    return d;
}

typedef struct pt {
    int64_t s, t;
    double v;
} pt;

static int pt_cmp_ref(const void *a, const void *b)
{
    const pt *x = a, *y = b;
    if (x->s != y->s)
        return x->s < y->s ? -1 : 1;
    if (x->t != y->t)
        return x->t < y->t ? -1 : 1;
    uint64_t bx = bits_of(x->v), by = bits_of(y->v);
    if (bx != by)
        return bx < by ? -1 : 1;
    return 0;
}

/* The reference: qsort by (step, ts, value bits), then drop exact repeats. */
static uint32_t ref_sort(const int64_t *s, const int64_t *t, const double *v, uint32_t n, pt *out)
{
    for (uint32_t i = 0; i < n; i++)
        out[i] = (pt){s[i], t[i], v[i]};
    qsort(out, n, sizeof *out, pt_cmp_ref);
    uint32_t w = 0;
    for (uint32_t i = 0; i < n; i++)
        if (w == 0 || pt_cmp_ref(&out[w - 1], &out[i]) != 0)
            out[w++] = out[i];
    return w;
}

/* Min/max/sum of v[0..n) by the block's rule. */
typedef struct stats {
    double min, max, sum;
    uint32_t argmin, argmax, n_nan;
} stats;

static stats brute_stats(const double *v, uint32_t n)
{
    stats st = {NAN, NAN, 0.0, 0, 0, 0};
    int any = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (isnan(v[i])) {
            st.n_nan++;
            continue;
        }
        st.sum += v[i];
        if (!any || v[i] < st.min) {
            st.min = v[i];
            st.argmin = i;
        }
        if (!any || v[i] > st.max) {
            st.max = v[i];
            st.argmax = i;
        }
        any = 1;
    }
    return st;
}

/* Block-sum rule: left to right over the whole block (not a sum of sums). */
static double brute_sum(const double *v, uint32_t n)
{
    double s = 0.0;
    for (uint32_t i = 0; i < n; i++)
        if (!isnan(v[i]))
            s += v[i];
    return s;
}

static void assert_dbl_same(double a, double b)
{
    /* Summaries: NaN matches any NaN; otherwise bit-exact (so -0.0 != 0.0). */
    if (isnan(a) && isnan(b))
        return;
    ASSERT_BITS_EQ(a, b);
}

/* An encoded block in an exact-size heap buffer (ASan sees any overread). */
typedef struct blk {
    uint8_t *p;
    size_t len;
} blk;

static blk encode_block(uint64_t id, const int64_t *s, const int64_t *t, const double *v,
                        uint32_t n)
{
    size_t bound = tally__block_bound(n), scratch_size = tally__block_encode_scratch_size(n);
    ASSERT(bound > 0 && scratch_size > 0);
    uint8_t *out = malloc(bound), *scratch = malloc(scratch_size);
    ASSERT(out && scratch);
    size_t len = tally__block_encode(id, s, t, v, n, out, scratch);
    ASSERT(len > sizeof(tally_disk_block_header) && len <= bound);
    blk b = {malloc(len), len};
    ASSERT(b.p);
    memcpy(b.p, out, len);
    free(out);
    free(scratch);
    return b;
}

static tally_disk_block_header raw_header(const blk *b)
{
    tally_disk_block_header h;
    memcpy(&h, b->p, sizeof h);
    return h;
}

/* Recomputes both checksums of a block in place (for damage past them). */
static void rechecksum(uint8_t *p, size_t len)
{
    tally_disk_block_header h;
    if (len < sizeof h)
        return;
    memcpy(&h, p, sizeof h);
    size_t avail = len - sizeof h;
    size_t body = h.body_len <= avail ? h.body_len : avail;
    h.body_checksum = XXH3_64bits(p + sizeof h, body);
    h.header_checksum = XXH3_64bits(&h, offsetof(tally_disk_block_header, header_checksum));
    memcpy(p, &h, sizeof h);
}

/* Decodes points [from, from + len) of the open view into the columns the
 * mask picks (1 steps, 2 timestamps, 4 values; out buffers rs/rt/rv) and
 * compares them with the source columns s/t/v. */
static void check_range(tally__block_view *view, uint32_t from, uint32_t len, uint32_t mask,
                        const int64_t *s, const int64_t *t, const double *v, int64_t *rs,
                        int64_t *rt, double *rv)
{
    ASSERT_OK(tally__block_view_decode(view, from, len, (mask & 1) ? rs : NULL,
                                       (mask & 2) ? rt : NULL, (mask & 4) ? rv : NULL));
    for (uint32_t i = 0; i < len; i++) {
        if (mask & 1)
            ASSERT_EQ(rs[i], s[from + i]);
        if (mask & 2)
            ASSERT_EQ(rt[i], t[from + i]);
        if (mask & 4)
            ASSERT_BITS_EQ(rv[i], v[from + i]);
    }
}

/* Encodes n sorted points and checks everything a reader can see against
 * brute force. Returns the header's flags. */
static uint16_t check_block(const int64_t *s, const int64_t *t, const double *v, uint32_t n,
                            uint32_t n_ranges)
{
    uint64_t id = rnd();
    blk b = encode_block(id, s, t, v, n);

    /* Header. */
    tally_block_summary sum;
    uint32_t block_len = 0;
    uint64_t got_id = 0;
    ASSERT_OK(tally__block_header(b.p, b.p + b.len, &sum, &block_len, &got_id));
    ASSERT_EQ(block_len, b.len);
    ASSERT_U64_EQ(got_id, id);
    ASSERT_EQ(sum.n_points, n);
    ASSERT_EQ(sum.n_chunks, (n + 127) / 128);
    stats st = brute_stats(v, n);
    ASSERT_EQ(sum.n_nan, st.n_nan);
    assert_dbl_same(sum.min_value, st.min);
    assert_dbl_same(sum.max_value, st.max);
    assert_dbl_same(sum.sum, brute_sum(v, n));
    ASSERT_EQ(sum.min_step, s[0]);
    ASSERT_EQ(sum.max_step, s[n - 1]);
    int64_t tmin = t[0], tmax = t[0];
    int ts_sorted = 1;
    for (uint32_t i = 1; i < n; i++) {
        tmin = t[i] < tmin ? t[i] : tmin;
        tmax = t[i] > tmax ? t[i] : tmax;
        ts_sorted &= t[i] >= t[i - 1];
    }
    ASSERT_EQ(sum.min_timestamp_ms, tmin);
    ASSERT_EQ(sum.max_timestamp_ms, tmax);
    ASSERT_EQ(sum.flags & TALLY_BLOCK_TS_SORTED, ts_sorted ? TALLY_BLOCK_TS_SORTED : 0u);
    /* The linear flags promise step i = min + i * d (and the same for time). */
    if (n > 1 && (sum.flags & TALLY_BLOCK_STEPS_LINEAR)) {
        uint64_t d = ((uint64_t)sum.max_step - (uint64_t)sum.min_step) / (n - 1);
        for (uint32_t i = 0; i < n; i++)
            ASSERT_EQ(s[i], (int64_t)((uint64_t)sum.min_step + i * d));
    }
    if (n > 1 && (sum.flags & TALLY_BLOCK_TS_LINEAR)) {
        uint64_t d = ((uint64_t)sum.max_timestamp_ms - (uint64_t)sum.min_timestamp_ms) / (n - 1);
        for (uint32_t i = 0; i < n; i++)
            ASSERT_EQ(t[i], (int64_t)((uint64_t)sum.min_timestamp_ms + i * d));
    }
    ASSERT_EQ(sum.first.step, s[0]);
    ASSERT_EQ(sum.first.timestamp_ms, t[0]);
    ASSERT_BITS_EQ(sum.first.value, v[0]);
    ASSERT_EQ(sum.last.step, s[n - 1]);
    ASSERT_EQ(sum.last.timestamp_ms, t[n - 1]);
    ASSERT_BITS_EQ(sum.last.value, v[n - 1]);
    ASSERT_EQ(sum.segment, 0);
    ASSERT_EQ(sum.offset, 0);

    /* Full decode. */
    tally__block_view view;
    memset(&view, 0, sizeof view);
    ASSERT_OK(tally__block_view_open(&view, b.p, b.p + b.len));
    ASSERT_EQ(view.n_points, n);
    int64_t *ds = malloc(n * sizeof *ds), *dt = malloc(n * sizeof *dt);
    double *dv = malloc(n * sizeof *dv);
    ASSERT(ds && dt && dv);
    ASSERT_OK(tally__block_view_decode(&view, 0, n, ds, dt, dv));
    for (uint32_t i = 0; i < n; i++) {
        ASSERT_EQ(ds[i], s[i]);
        ASSERT_EQ(dt[i], t[i]);
        ASSERT_BITS_EQ(dv[i], v[i]);
    }

    /* Chunk summaries. */
    tally_chunk_summary cs[TALLY_BLOCK_MAX_POINTS / TALLY_CHUNK_POINTS];
    ASSERT_EQ(tally__block_view_chunks(&view, cs, sum.n_chunks - 1), TALLY_EINVAL);
    ASSERT_OK(tally__block_view_chunks(&view, cs, sum.n_chunks));
    for (uint32_t k = 0; k < sum.n_chunks; k++) {
        uint32_t f = k * 128, m = n - f < 128 ? n - f : 128;
        stats c = brute_stats(v + f, m);
        ASSERT_EQ(cs[k].first_index, f);
        ASSERT_EQ(cs[k].n_points, m);
        ASSERT_EQ(cs[k].n_nan, c.n_nan);
        ASSERT_EQ(cs[k].argmin, f + c.argmin);
        ASSERT_EQ(cs[k].argmax, f + c.argmax);
        assert_dbl_same(cs[k].min_value, c.min);
        assert_dbl_same(cs[k].max_value, c.max);
        assert_dbl_same(cs[k].sum, c.sum);
        ASSERT_EQ(cs[k].first.step, s[f]);
        ASSERT_EQ(cs[k].first.timestamp_ms, t[f]);
        ASSERT_BITS_EQ(cs[k].first.value, v[f]);
        ASSERT_EQ(cs[k].last.step, s[f + m - 1]);
        ASSERT_EQ(cs[k].last.timestamp_ms, t[f + m - 1]);
        ASSERT_BITS_EQ(cs[k].last.value, v[f + m - 1]);
    }

    /* Range decodes, with columns left out at random. */
    int64_t *rs = malloc(n * sizeof *rs), *rt = malloc(n * sizeof *rt);
    double *rv = malloc(n * sizeof *rv);
    ASSERT(rs && rt && rv);
    for (uint32_t r = 0; r < n_ranges; r++) {
        uint32_t from = rnd_below(n + 1);
        uint32_t len = rnd_below(n - from + 1);
        if (r % 4 == 0 && n > 1) { /* inside one chunk */
            from = rnd_below(n);
            uint32_t room = 128 - from % 128;
            room = room < n - from ? room : n - from;
            len = 1 + rnd_below(room);
        }
        check_range(&view, from, len, rnd_below(8), s, t, v, rs, rt, rv);
    }
    /* A few points at a time (at most 16, inside one chunk), jumping between
     * chunks as M4 does beside column edges: the codecs' random access, or
     * the view's decoded copy of a chunk whose column is stored sequentially. */
    for (uint32_t r = 0; r < 4 * n_ranges && n > 0; r++) {
        uint32_t from = rnd_below(n);
        uint32_t room = 128 - from % 128;
        room = room < n - from ? room : n - from;
        uint32_t len = 1 + rnd_below(room < 16 ? room : 16);
        check_range(&view, from, len, 1 + rnd_below(7), s, t, v, rs, rt, rv);
    }
    ASSERT_EQ(tally__block_view_decode(&view, n, 1, rs, rt, rv), TALLY_EINVAL);
    ASSERT_EQ(tally__block_view_decode(&view, 0, n + 1, rs, rt, rv), TALLY_EINVAL);
    ASSERT_EQ(tally__block_view_decode(&view, UINT32_MAX, 2, rs, rt, rv), TALLY_EINVAL);
    ASSERT_OK(tally__block_view_decode(&view, n, 0, rs, rt, rv));

    uint16_t flags = raw_header(&b).flags;
    tally__block_view_free(&view);
    tally__block_view_free(&view); /* a freed view frees again harmlessly */
    free(rs);
    free(rt);
    free(rv);
    free(ds);
    free(dt);
    free(dv);
    free(b.p);
    return flags;
}

/* ------------------------------------------------------------------------ */
/* Data                                                                      */
/* ------------------------------------------------------------------------ */

enum pattern {
    PAT_RANDOM,      /* any steps, timestamps and value bits */
    PAT_SORTED,      /* a training loop: steps 0.., jittered ms clock, noisy loss */
    PAT_REVERSED,    /* the same, backwards */
    PAT_DUP_STEPS,   /* few steps, timestamps and values: many ties and repeats */
    PAT_EXACT_DUPS,  /* every point two or three times, shuffled */
    PAT_SPECIALS,    /* NaNs (with payloads), +-inf, -0.0, subnormals, extremes */
    PAT_ALL_NAN,     /* every value a NaN */
    PAT_HELD,        /* held accuracy: long runs of one value, regular clock */
    PAT_PERIODIC,    /* random values repeating every 32 points (LZ4 body) */
    PAT_SMOOTH,      /* a schedule's smooth curve: values stored by second differences */
    PAT_N
};

static const char *pattern_name[PAT_N] = {"random", "sorted",   "reversed", "dup-steps",
                                          "exact-dups", "specials", "all-nan", "held", "periodic",
                                          "smooth"};

static double special_value(void)
{
    static const uint64_t specials[] = {
        0x7FF8000000000000ull, /* NaN */
        0xFFF8000000000000ull, /* -NaN */
        0x7FF0000000000001ull, /* signalling NaN payload */
        0x7FF8DEADBEEF0001ull, /* quiet NaN payload */
        0x7FF0000000000000ull, /* +inf */
        0xFFF0000000000000ull, /* -inf */
        0x8000000000000000ull, /* -0.0 */
        0x0000000000000000ull, /* +0.0 */
        0x0000000000000001ull, /* least subnormal */
        0x800FFFFFFFFFFFFFull, /* negative subnormal */
        0x7FEFFFFFFFFFFFFFull, /* DBL_MAX */
        0xFFEFFFFFFFFFFFFFull, /* -DBL_MAX */
        0x3FF0000000000000ull, /* 1.0 */
    };
    return dbl_of(specials[rnd_below(sizeof specials / sizeof specials[0])]);
}

static void make_points(enum pattern p, uint32_t n, int64_t *s, int64_t *t, double *v)
{
    int64_t clock = 1700000000000;
    double loss = 2.5;
    for (uint32_t i = 0; i < n; i++) {
        clock += 90 + (int64_t)rnd_below(30);
        loss = loss * 0.999 + ((double)rnd_below(1000) - 500.0) * 1e-5;
        switch (p) {
        case PAT_RANDOM:
            s[i] = (int64_t)rnd();
            t[i] = (int64_t)rnd();
            v[i] = dbl_of(rnd());
            break;
        case PAT_SORTED:
        case PAT_REVERSED:
            s[i] = i;
            t[i] = clock;
            v[i] = (double)(float)loss;
            break;
        case PAT_DUP_STEPS:
            s[i] = rnd_below(n / 8 + 1);
            t[i] = 1000 + rnd_below(3);
            v[i] = (double)rnd_below(3) - 1.0;
            break;
        case PAT_EXACT_DUPS:
            if (i > 0 && rnd_below(2)) {
                uint32_t j = rnd_below(i);
                s[i] = s[j];
                t[i] = t[j];
                v[i] = v[j];
            } else {
                s[i] = i * 3;
                t[i] = clock;
                v[i] = dbl_of(rnd());
            }
            break;
        case PAT_SPECIALS:
            s[i] = (int64_t)rnd_below(n + 1) - (int64_t)(n / 2);
            t[i] = clock - (int64_t)rnd_below(1000);
            v[i] = special_value();
            break;
        case PAT_ALL_NAN:
            s[i] = i;
            t[i] = clock;
            v[i] = dbl_of(0x7FF8000000000000ull | rnd_below(4));
            break;
        case PAT_HELD:
            s[i] = i;
            t[i] = 1700000000000 + 250 * (int64_t)i;
            v[i] = 0.5 + 0.125 * (double)(i / 500);
            break;
        case PAT_SMOOTH:
            s[i] = i;
            t[i] = 1700000000000 + 100 * (int64_t)i + (int64_t)(i * i % 7);
            v[i] = 1.0 / (1.0 + (double)i * 1e-4);
            break;
        case PAT_PERIODIC: {
            static uint64_t period[32];
            if (i == 0)
                for (int j = 0; j < 32; j++)
                    period[j] = rnd();
            s[i] = 2 * (int64_t)i + (i % 3 == 0);
            t[i] = clock;
            v[i] = dbl_of(period[i % 32]);
            break;
        }
        case PAT_N:
            break;
        }
    }
    if (p == PAT_REVERSED) {
        for (uint32_t i = 0; i < n / 2; i++) {
            uint32_t j = n - 1 - i;
            int64_t a = s[i], b = t[i];
            double c = v[i];
            s[i] = s[j];
            t[i] = t[j];
            v[i] = v[j];
            s[j] = a;
            t[j] = b;
            v[j] = c;
        }
    }
    if (p == PAT_EXACT_DUPS) { /* shuffle */
        for (uint32_t i = n; i > 1; i--) {
            uint32_t j = rnd_below(i);
            int64_t a = s[i - 1], b = t[i - 1];
            double c = v[i - 1];
            s[i - 1] = s[j];
            t[i - 1] = t[j];
            v[i - 1] = v[j];
            s[j] = a;
            t[j] = b;
            v[j] = c;
        }
    }
}

/* Sorts with tally__block_sort_points and checks against the reference. */
static uint32_t sort_and_check(int64_t *s, int64_t *t, double *v, uint32_t n)
{
    pt *ref = malloc((n ? n : 1) * sizeof *ref);
    ASSERT(ref);
    uint32_t want = ref_sort(s, t, v, n, ref);
    uint32_t got = tally__block_sort_points(s, t, v, n);
    ASSERT_EQ(got, want);
    for (uint32_t i = 0; i < got; i++) {
        ASSERT_EQ(s[i], ref[i].s);
        ASSERT_EQ(t[i], ref[i].t);
        ASSERT_BITS_EQ(v[i], ref[i].v);
    }
    free(ref);
    return got;
}

/* ------------------------------------------------------------------------ */
/* Cases                                                                     */
/* ------------------------------------------------------------------------ */

static void test_sort(void)
{
    static const uint32_t sizes[] = {0, 1, 2, 3, 16, 17, 100, 1000, 65536};
    uint32_t cap = 65536;
    int64_t *s = malloc(cap * 8), *t = malloc(cap * 8);
    double *v = malloc(cap * 8);
    ASSERT(s && t && v);
    for (size_t z = 0; z < sizeof sizes / sizeof sizes[0]; z++) {
        uint32_t n = sizes[z];
        for (int p = 0; p < PAT_N; p++) {
            make_points((enum pattern)p, n, s, t, v);
            sort_and_check(s, t, v, n);
        }
        /* Adversarial shapes for quicksort: organ pipe, sawtooth, all equal,
         * and equal steps ordered only by value bits. */
        for (uint32_t i = 0; i < n; i++) {
            s[i] = i < n / 2 ? i : n - i;
            t[i] = 0;
            v[i] = 1.0;
        }
        sort_and_check(s, t, v, n);
        for (uint32_t i = 0; i < n; i++) {
            s[i] = i % 7;
            t[i] = (int64_t)(i % 3);
            v[i] = (double)(i % 5);
        }
        sort_and_check(s, t, v, n);
        for (uint32_t i = 0; i < n; i++) {
            s[i] = 42;
            t[i] = 42;
            v[i] = -0.0;
        }
        ASSERT_EQ(sort_and_check(s, t, v, n), n ? 1 : 0);
        for (uint32_t i = 0; i < n; i++) {
            s[i] = 0;
            t[i] = 0;
            v[i] = dbl_of(rnd());
        }
        sort_and_check(s, t, v, n);
    }
    /* -0.0 and +0.0 are different points (bits differ); NaNs by payload. */
    int64_t s2[4] = {1, 1, 1, 1}, t2[4] = {5, 5, 5, 5};
    double v2[4] = {0.0, -0.0, 0.0, NAN};
    ASSERT_EQ(tally__block_sort_points(s2, t2, v2, 4), 3);
    ASSERT_U64_EQ(bits_of(v2[0]), 0);
    ASSERT_U64_EQ(bits_of(v2[1]), bits_of(NAN));
    ASSERT_U64_EQ(bits_of(v2[2]), 0x8000000000000000ull);
    free(s);
    free(t);
    free(v);
}

static void test_round_trip(void)
{
    static const uint32_t sizes[] = {1, 2, 127, 128, 129, 255, 256, 257, 1000, 4096, 65536};
    uint32_t cap = 65536;
    int64_t *s = malloc(cap * 8), *t = malloc(cap * 8);
    double *v = malloc(cap * 8);
    ASSERT(s && t && v);
    for (size_t z = 0; z < sizeof sizes / sizeof sizes[0]; z++) {
        for (int p = 0; p < PAT_N; p++) {
            uint32_t n = sizes[z];
            make_points((enum pattern)p, n, s, t, v);
            n = sort_and_check(s, t, v, n);
            uint16_t flags = check_block(s, t, v, n, n >= 4096 ? 64 : 200);
            if (n >= 4096)
                fprintf(stderr, "   %-10s n=%-6u flags=0x%x\n", pattern_name[p], n, flags);
        }
    }
    free(s);
    free(t);
    free(v);
}

/* Both body kinds occur: held values compress (LZ4), random bits do not. */
static void test_lz4_and_raw(void)
{
    uint32_t n = 4096;
    int64_t *s = malloc(n * 8), *t = malloc(n * 8);
    double *v = malloc(n * 8);
    ASSERT(s && t && v);
    make_points(PAT_PERIODIC, n, s, t, v);
    ASSERT(check_block(s, t, v, n, 32) & TALLY_BLOCK_F_LZ4);
    make_points(PAT_RANDOM, n, s, t, v);
    n = tally__block_sort_points(s, t, v, n);
    ASSERT(!(check_block(s, t, v, n, 32) & TALLY_BLOCK_F_LZ4));
    /* The LZ4 body must save at least 1/8 of the raw body. */
    make_points(PAT_PERIODIC, 4096, s, t, v);
    blk b = encode_block(1, s, t, v, 4096);
    tally_disk_block_header h = raw_header(&b);
    ASSERT(h.flags & TALLY_BLOCK_F_LZ4);
    ASSERT_LE((uint64_t)h.body_len * 8, (uint64_t)h.raw_body_len * 7);
    free(b.p);
    free(s);
    free(t);
    free(v);
}

/* Steps and timestamps that are arithmetic over the block are not stored;
 * the extremes of int64 must still come back exactly. */
static void test_linear_columns(void)
{
    uint32_t n = 1000;
    int64_t *s = malloc(n * 8), *t = malloc(n * 8);
    double *v = malloc(n * 8);
    ASSERT(s && t && v);
    make_points(PAT_HELD, n, s, t, v);
    uint16_t f = check_block(s, t, v, n, 50);
    ASSERT((f & TALLY_BLOCK_F_STEPS_LINEAR) && (f & TALLY_BLOCK_F_TS_LINEAR));
    make_points(PAT_SORTED, n, s, t, v); /* jittered clock */
    f = check_block(s, t, v, n, 50);
    ASSERT((f & TALLY_BLOCK_F_STEPS_LINEAR) && !(f & TALLY_BLOCK_F_TS_LINEAR));
    s[500] += 1; /* one step off the line */
    f = check_block(s, t, v, n, 50);
    ASSERT(!(f & TALLY_BLOCK_F_STEPS_LINEAR));
    /* Decreasing timestamps at a constant step are not "linear". */
    for (uint32_t i = 0; i < n; i++) {
        s[i] = i;
        t[i] = 5000 - 3 * (int64_t)i;
    }
    f = check_block(s, t, v, n, 50);
    ASSERT((f & TALLY_BLOCK_F_STEPS_LINEAR) && !(f & TALLY_BLOCK_F_TS_LINEAR));
    /* The whole int64 range in two increments, and equal steps (d = 0). */
    int64_t s3[3] = {INT64_MIN, -1, INT64_MAX - 1}, t3[3] = {INT64_MIN, INT64_MIN, INT64_MIN};
    double v3[3] = {1, 2, 3};
    f = check_block(s3, t3, v3, 3, 20);
    ASSERT((f & TALLY_BLOCK_F_STEPS_LINEAR) && (f & TALLY_BLOCK_F_TS_LINEAR));
    int64_t s4[3] = {INT64_MIN, 0, INT64_MAX}; /* one short of a line */
    f = check_block(s4, t3, v3, 3, 20);
    ASSERT(!(f & TALLY_BLOCK_F_STEPS_LINEAR));
    int64_t s1 = INT64_MAX, t1 = INT64_MIN;
    double v1 = -0.0;
    f = check_block(&s1, &t1, &v1, 1, 5);
    ASSERT((f & TALLY_BLOCK_F_STEPS_LINEAR) && (f & TALLY_BLOCK_F_TS_LINEAR));
    free(s);
    free(t);
    free(v);
}

/* A view reused across blocks of growing and shrinking LZ4 bodies. */
static void test_view_reuse(void)
{
    static const uint32_t sizes[] = {300, 4096, 129, 65536, 1};
    int64_t *s = malloc(65536 * 8), *t = malloc(65536 * 8);
    double *v = malloc(65536 * 8), *dv = malloc(65536 * 8);
    ASSERT(s && t && v && dv);
    tally__block_view view;
    memset(&view, 0, sizeof view);
    for (size_t z = 0; z < sizeof sizes / sizeof sizes[0]; z++) {
        uint32_t n = sizes[z];
        make_points(PAT_PERIODIC, n, s, t, v);
        blk b = encode_block(7, s, t, v, n);
        ASSERT_OK(tally__block_view_open(&view, b.p, b.p + b.len));
        ASSERT_OK(tally__block_view_decode(&view, 0, n, NULL, NULL, dv));
        for (uint32_t i = 0; i < n; i++)
            ASSERT_BITS_EQ(dv[i], v[i]);
        free(b.p);
    }
    /* A failed open leaves the view closed: decode refuses it. */
    uint8_t junk[200] = {0};
    ASSERT_EQ(tally__block_view_open(&view, junk, junk + sizeof junk), TALLY_ECORRUPT);
    ASSERT_EQ(tally__block_view_decode(&view, 0, 1, NULL, NULL, dv), TALLY_EINVAL);
    tally__block_view_free(&view);
    tally__block_view_free(NULL);
    free(s);
    free(t);
    free(v);
    free(dv);
}

/* Every single-bit flip of a small block is caught by a checksum. */
static void flip_every_bit(const blk *b)
{
    uint8_t *c = malloc(b->len);
    ASSERT(c);
    tally__block_view view;
    memset(&view, 0, sizeof view);
    for (size_t bit = 0; bit < b->len * 8; bit++) {
        memcpy(c, b->p, b->len);
        c[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        tally_block_summary sum;
        uint32_t len;
        int rc = tally__block_header(c, c + b->len, &sum, &len, NULL);
        if (bit / 8 < sizeof(tally_disk_block_header))
            ASSERT_EQ(rc, TALLY_ECORRUPT);
        else
            ASSERT_OK(rc); /* the header does not cover the body */
        ASSERT_EQ(tally__block_view_open(&view, c, c + b->len), TALLY_ECORRUPT);
    }
    tally__block_view_free(&view);
    free(c);
}

/* Every truncation of a small block is refused. */
static void truncate_everywhere(const blk *b)
{
    tally__block_view view;
    memset(&view, 0, sizeof view);
    for (size_t len = 0; len < b->len; len++) {
        uint8_t *c = malloc(len ? len : 1);
        ASSERT(c);
        memcpy(c, b->p, len);
        ASSERT_EQ(tally__block_header(c, c + len, NULL, NULL, NULL), TALLY_ECORRUPT);
        ASSERT_EQ(tally__block_view_open(&view, c, c + len), TALLY_ECORRUPT);
        free(c);
    }
    /* Extra bytes after the block are not its business. */
    uint8_t *c = malloc(b->len + 16);
    ASSERT(c);
    memcpy(c, b->p, b->len);
    memset(c + b->len, 0xAB, 16);
    uint32_t len = 0;
    ASSERT_OK(tally__block_header(c, c + b->len + 16, NULL, &len, NULL));
    ASSERT_EQ(len, b->len);
    ASSERT_OK(tally__block_view_open(&view, c, c + b->len + 16));
    tally__block_view_free(&view);
    free(c);
    ASSERT_EQ(tally__block_header(NULL, NULL, NULL, NULL, NULL), TALLY_ECORRUPT);
}

static void test_corrupt_bits_and_truncation(void)
{
    int64_t s[300], t[300];
    double v[300];
    /* LZ4 body */
    make_points(PAT_PERIODIC, 300, s, t, v);
    blk b = encode_block(11, s, t, v, 300);
    ASSERT(raw_header(&b).flags & TALLY_BLOCK_F_LZ4);
    flip_every_bit(&b);
    truncate_everywhere(&b);
    free(b.p);
    /* raw body */
    make_points(PAT_RANDOM, 200, s, t, v);
    uint32_t n = tally__block_sort_points(s, t, v, 200);
    b = encode_block(12, s, t, v, n);
    ASSERT(!(raw_header(&b).flags & TALLY_BLOCK_F_LZ4));
    flip_every_bit(&b);
    truncate_everywhere(&b);
    free(b.p);
    /* A checksummed header of another version is TALLY_EVERSION. */
    make_points(PAT_SORTED, 10, s, t, v);
    b = encode_block(13, s, t, v, 10);
    tally_disk_block_header h = raw_header(&b);
    h.version = TALLY_BLOCK_VERSION + 1;
    memcpy(b.p, &h, sizeof h);
    rechecksum(b.p, b.len);
    ASSERT_EQ(tally__block_header(b.p, b.p + b.len, NULL, NULL, NULL), TALLY_EVERSION);
    free(b.p);
}

/* Builds a raw-body block from header h and a (possibly damaged) raw body,
 * with fresh checksums, in an exact-size buffer. */
static blk repack_raw(tally_disk_block_header h, const uint8_t *body, size_t body_len)
{
    blk b = {malloc(sizeof h + body_len), sizeof h + body_len};
    ASSERT(b.p);
    h.flags &= (uint16_t)~TALLY_BLOCK_F_LZ4;
    h.body_len = h.raw_body_len = (uint32_t)body_len;
    memcpy(b.p, &h, sizeof h);
    memcpy(b.p + sizeof h, body, body_len);
    rechecksum(b.p, b.len);
    return b;
}

/* Reads a block every way a reader can; any result but a crash is fine, as
 * long as errors are the documented ones. */
static void read_all_ways(const blk *b)
{
    tally_block_summary sum;
    int rc = tally__block_header(b->p, b->p + b->len, &sum, NULL, NULL);
    ASSERT(rc == 0 || rc == TALLY_ECORRUPT || rc == TALLY_EVERSION);
    tally__block_view view;
    memset(&view, 0, sizeof view);
    rc = tally__block_view_open(&view, b->p, b->p + b->len);
    ASSERT(rc == 0 || rc == TALLY_ECORRUPT || rc == TALLY_EVERSION);
    if (rc == 0) {
        static tally_chunk_summary cs[512];
        static int64_t ds[65536], dt[65536];
        static double dv[65536];
        rc = tally__block_view_chunks(&view, cs, 512);
        ASSERT(rc == 0 || rc == TALLY_ECORRUPT);
        rc = tally__block_view_decode(&view, 0, view.n_points, ds, dt, dv);
        ASSERT(rc == 0 || rc == TALLY_ECORRUPT);
        rc = tally__block_view_decode(&view, view.n_points / 2, view.n_points - view.n_points / 2,
                                      NULL, NULL, dv);
        ASSERT(rc == 0 || rc == TALLY_ECORRUPT);
    }
    tally__block_view_free(&view);
}

/* Damage behind valid checksums (what a bug, not the disk, could write) must
 * still be caught by bounds checks: the chunk table and column chunks are
 * mutated in the raw body, header fields too, then checksums recomputed. */
static void test_corrupt_behind_checksums(void)
{
    static int64_t s[1000], t[1000];
    static double v[1000];
    for (int p = 0; p < PAT_N; p++) {
        uint32_t n = 1 + rnd_below(1000);
        make_points((enum pattern)p, n, s, t, v);
        n = tally__block_sort_points(s, t, v, n);
        blk b = encode_block(3, s, t, v, n);
        tally_disk_block_header h = raw_header(&b);
        uint8_t *raw = malloc(h.raw_body_len);
        ASSERT(raw);
        if (h.flags & TALLY_BLOCK_F_LZ4)
            ASSERT_EQ(LZ4_decompress_safe((const char *)b.p + sizeof h, (char *)raw,
                                          (int)h.body_len, (int)h.raw_body_len),
                      (int)h.raw_body_len);
        else
            memcpy(raw, b.p + sizeof h, h.raw_body_len);
        uint8_t *mut = malloc(h.raw_body_len);
        ASSERT(mut);
        for (int iter = 0; iter < 1500; iter++) {
            memcpy(mut, raw, h.raw_body_len);
            size_t mlen = h.raw_body_len;
            int n_mut = 1 + (int)rnd_below(4);
            for (int m = 0; m < n_mut; m++) {
                size_t at = rnd_below((uint32_t)mlen);
                switch (rnd_below(3)) {
                case 0:
                    mut[at] ^= (uint8_t)(1u << rnd_below(8));
                    break;
                case 1:
                    mut[at] = (uint8_t)rnd();
                    break;
                default: /* hit the chunk table harder */
                    mut[h.columns_len + rnd_below(h.raw_body_len - h.columns_len)] = (uint8_t)rnd();
                    break;
                }
            }
            if (rnd_below(8) == 0)
                mlen = rnd_below((uint32_t)mlen + 1);
            tally_disk_block_header hh = h;
            if (rnd_below(8) == 0) {
                uint8_t *hb = (uint8_t *)&hh;
                hb[rnd_below(offsetof(tally_disk_block_header, body_checksum))] ^=
                    (uint8_t)(1u << rnd_below(8));
            }
            blk c = repack_raw(hh, mut, mlen);
            read_all_ways(&c);
            free(c.p);
        }
        free(mut);
        free(raw);
        free(b.p);
    }
}

static void test_bounds(void)
{
    ASSERT_EQ(tally__block_bound(0), 0);
    ASSERT_EQ(tally__block_bound(65537), 0);
    ASSERT_EQ(tally__block_encode_scratch_size(0), 0);
    ASSERT(tally__block_bound(1) > sizeof(tally_disk_block_header));
    ASSERT(tally__block_bound(65536) >= tally__block_encode_scratch_size(65536));
    int64_t s = 1, t = 2;
    double v = 3.0;
    uint8_t out[512], scratch[512];
    ASSERT(tally__block_bound(1) <= sizeof out);
    ASSERT(tally__block_encode_scratch_size(1) <= sizeof scratch);
    ASSERT_EQ(tally__block_encode(1, &s, &t, &v, 0, out, scratch), 0);
}

int main(void)
{
    TEST_RUN(test_bounds);
    TEST_RUN(test_sort);
    TEST_RUN(test_round_trip);
    TEST_RUN(test_lz4_and_raw);
    TEST_RUN(test_linear_columns);
    TEST_RUN(test_view_reuse);
    TEST_RUN(test_corrupt_bits_and_truncation);
    TEST_RUN(test_corrupt_behind_checksums);
    return TEST_DONE();
}
