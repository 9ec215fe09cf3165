/*
 * test_codec.c — column codecs (engine/codec.c): bit-exact round trips of
 * random, adversarial and generated data through the automatic choice and
 * through every method forced alone; random access and sizes agree with
 * decoding; truncated and bit-flipped chunks give TALLY_ECORRUPT or garbage
 * but never a crash or a read out of bounds. Every encoded chunk is copied
 * into a heap buffer of exactly its size before decoding, so under ASan a
 * read of even one byte past the end fails the test.
 */
#include "test.h"

#include "codec.h"
#include "codec_methods.h"
#include "gen.h"

#define NMAX TALLY_CHUNK_POINTS

static uint64_t rng_state = 0x9E3779B97F4A7C15u;

static uint64_t rnd(void)
{
    uint64_t z = (rng_state += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

static double dbl_of(uint64_t b)
{
    double d;
    memcpy(&d, &b, 8);
    return d;
}

/* A heap copy of exactly len bytes (ASan catches any read past it). */
static uint8_t *tight(const uint8_t *p, size_t len)
{
    uint8_t *q = malloc(len ? len : 1);
    ASSERT(q != NULL);
    if (len)
        memcpy(q, p, len);
    return q;
}

static size_t n_checked_i64, n_checked_f64;

/* Decodes, sizes and random-accesses chunk [enc, enc + size) and compares. */
static void check_i64_chunk(const uint8_t *enc, size_t size, const int64_t *v, uint32_t n)
{
    uint8_t *t = tight(enc, size);
    int64_t out[NMAX];
    size_t used = 0, sz = 0;
    ASSERT_OK(tally__codec_i64_decode(t, t + size, n, out, &used));
    ASSERT_EQ(used, size);
    ASSERT_OK(tally__codec_i64_size(t, t + size, n, &sz));
    ASSERT_EQ(sz, size);
    for (uint32_t i = 0; i < n; i++) {
        ASSERT_EQ(out[i], v[i]);
        int64_t g = 0;
        ASSERT_OK(tally__codec_i64_get(t, t + size, n, i, &g));
        ASSERT_EQ(g, v[i]);
        /* a range of up to three from i, and the chunk's size with it */
        int64_t r[3];
        uint32_t cnt = n - i < 3 ? n - i : 3;
        sz = 0;
        ASSERT_OK(tally__codec_i64_get_range(t, t + size, n, i, cnt, r, &sz));
        ASSERT_EQ(sz, size);
        for (uint32_t k = 0; k < cnt; k++)
            ASSERT_EQ(r[k], v[i + k]);
    }
    int64_t r1;
    ASSERT_EQ(tally__codec_i64_get_range(t, t + size, n, n - 1, 2, &r1, NULL), TALLY_EINVAL);
    /* prefixes: the first m values exact, the size whole */
    for (uint32_t m = 1; m <= n; m += 1 + m / 3) {
        int64_t pre[NMAX];
        used = 0;
        ASSERT_OK(tally__codec_i64_decode_prefix(t, t + size, n, m, pre, &used));
        ASSERT_EQ(used, size);
        for (uint32_t i = 0; i < m; i++)
            ASSERT_EQ(pre[i], v[i]);
    }
    ASSERT_EQ(tally__codec_i64_decode_prefix(t, t + size, n, 0, out, NULL), TALLY_EINVAL);
    ASSERT_EQ(tally__codec_i64_decode_prefix(t, t + size, n, n + 1, out, NULL), TALLY_EINVAL);
    free(t);
    n_checked_i64++;
}

static void check_f64_chunk(const uint8_t *enc, size_t size, const double *v, uint32_t n)
{
    uint8_t *t = tight(enc, size);
    double out[NMAX];
    size_t used = 0, sz = 0;
    ASSERT_OK(tally__codec_f64_decode(t, t + size, n, out, &used));
    ASSERT_EQ(used, size);
    ASSERT_OK(tally__codec_f64_size(t, t + size, n, &sz));
    ASSERT_EQ(sz, size);
    for (uint32_t i = 0; i < n; i++) {
        ASSERT_BITS_EQ(out[i], v[i]);
        double g = 0;
        ASSERT_OK(tally__codec_f64_get(t, t + size, n, i, &g));
        ASSERT_BITS_EQ(g, v[i]);
        double r[3];
        uint32_t cnt = n - i < 3 ? n - i : 3;
        sz = 0;
        ASSERT_OK(tally__codec_f64_get_range(t, t + size, n, i, cnt, r, &sz));
        ASSERT_EQ(sz, size);
        for (uint32_t k = 0; k < cnt; k++)
            ASSERT_BITS_EQ(r[k], v[i + k]);
    }
    double r1;
    ASSERT_EQ(tally__codec_f64_get_range(t, t + size, n, n - 1, 2, &r1, NULL), TALLY_EINVAL);
    for (uint32_t m = 1; m <= n; m += 1 + m / 3) {
        double pre[NMAX];
        used = 0;
        ASSERT_OK(tally__codec_f64_decode_prefix(t, t + size, n, m, pre, &used));
        ASSERT_EQ(used, size);
        for (uint32_t i = 0; i < m; i++)
            ASSERT_BITS_EQ(pre[i], v[i]);
    }
    ASSERT_EQ(tally__codec_f64_decode_prefix(t, t + size, n, 0, out, NULL), TALLY_EINVAL);
    ASSERT_EQ(tally__codec_f64_decode_prefix(t, t + size, n, n + 1, out, NULL), TALLY_EINVAL);
    free(t);
    n_checked_f64++;
}

/* Round trip through the automatic choice and every method forced alone.
 * Returns the automatic size. */
static size_t rt_i64(const int64_t *v, uint32_t n)
{
    uint8_t enc[1 + 8 * NMAX + 16];
    memset(enc, 0xAB, sizeof enc);
    size_t size = tally__codec_i64_encode(v, n, enc);
    ASSERT_GT(size, 0);
    ASSERT_LE(size, tally__codec_i64_bound(n));
    ASSERT_EQ(enc[tally__codec_i64_bound(n)], 0xAB); /* invariant 2 */
    check_i64_chunk(enc, size, v, n);
    for (unsigned m = 0; m <= TALLY__CK_DELTA2; m++) {
        size_t s = tally__codec_i64_encode_method(v, n, m, enc);
        if (!s)
            continue;
        ASSERT_LE(s, tally__codec_i64_bound(n));
        /* invariant 4: automatic is the smallest, give or take the slack
         * by which random access is preferred */
        ASSERT_GE(s + TALLY__CODEC_RANDOM_ACCESS_SLACK, size);
        ASSERT_EQ(enc[0], m);
        check_i64_chunk(enc, s, v, n);
    }
    ASSERT_EQ(tally__codec_i64_encode_method(v, n, TALLY__CK_RAW, enc), 1 + 8 * (size_t)n);
    return size;
}

static size_t rt_f64(const double *v, uint32_t n)
{
    uint8_t enc[1 + 8 * NMAX + 16];
    memset(enc, 0xAB, sizeof enc);
    size_t size = tally__codec_f64_encode(v, n, enc);
    ASSERT_GT(size, 0);
    ASSERT_LE(size, tally__codec_f64_bound(n));
    ASSERT_EQ(enc[tally__codec_f64_bound(n)], 0xAB);
    check_f64_chunk(enc, size, v, n);
    for (unsigned dm = 0; dm < 2; dm++) {
        for (unsigned k = 0; k < TALLY__CK_N; k++) {
            unsigned m = TALLY__CODEC_METHOD(dm ? TALLY__CODEC_DOM_F32 : TALLY__CODEC_DOM_F64, k);
            size_t s = tally__codec_f64_encode_method(v, n, m, enc);
            if (!s)
                continue;
            ASSERT_LE(s, tally__codec_f64_bound(n));
            ASSERT_EQ(enc[0], m);
            check_f64_chunk(enc, s, v, n);
        }
    }
    ASSERT_EQ(tally__codec_f64_encode_method(v, n, TALLY__CK_RAW, enc), 1 + 8 * (size_t)n);
    return size;
}

/* Truncations and bit flips of a valid chunk: never a crash, never a read
 * out of bounds; truncation is always detected. */
static void damage_i64(const int64_t *v, uint32_t n, int all_bits)
{
    uint8_t enc[1 + 8 * NMAX];
    size_t size = tally__codec_i64_encode(v, n, enc);
    int64_t out[NMAX];
    for (size_t len = 0; len < size; len++) {
        uint8_t *t = tight(enc, len);
        size_t sz;
        int64_t g;
        ASSERT_EQ(tally__codec_i64_decode(t, t + len, n, out, NULL), TALLY_ECORRUPT);
        ASSERT_EQ(tally__codec_i64_size(t, t + len, n, &sz), TALLY_ECORRUPT);
        int rc = tally__codec_i64_get(t, t + len, n, n - 1, &g);
        ASSERT(rc == 0 || rc == TALLY_ECORRUPT);
        free(t);
    }
    size_t n_flips = all_bits ? size * 8 : 64;
    for (size_t f = 0; f < n_flips; f++) {
        size_t bit = all_bits ? f : rnd() % (size * 8);
        uint8_t *t = tight(enc, size);
        t[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        size_t used, sz;
        int64_t g;
        int rc = tally__codec_i64_decode(t, t + size, n, out, &used);
        ASSERT(rc == 0 || rc == TALLY_ECORRUPT);
        if (rc == 0)
            ASSERT_LE(used, size);
        rc = tally__codec_i64_size(t, t + size, n, &sz);
        ASSERT(rc == 0 || rc == TALLY_ECORRUPT);
        rc = tally__codec_i64_get(t, t + size, n, (uint32_t)(rnd() % n), &g);
        ASSERT(rc == 0 || rc == TALLY_ECORRUPT);
        free(t);
    }
}

static void damage_f64_bytes(const uint8_t *enc, size_t size, uint32_t n, int all_bits)
{
    double out[NMAX];
    for (size_t len = 0; len < size; len++) {
        uint8_t *t = tight(enc, len);
        size_t sz;
        double g;
        ASSERT_EQ(tally__codec_f64_decode(t, t + len, n, out, NULL), TALLY_ECORRUPT);
        ASSERT_EQ(tally__codec_f64_size(t, t + len, n, &sz), TALLY_ECORRUPT);
        int rc = tally__codec_f64_get(t, t + len, n, n - 1, &g);
        ASSERT(rc == 0 || rc == TALLY_ECORRUPT);
        free(t);
    }
    size_t n_flips = all_bits ? size * 8 : 64;
    for (size_t f = 0; f < n_flips; f++) {
        size_t bit = all_bits ? f : rnd() % (size * 8);
        uint8_t *t = tight(enc, size);
        t[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        size_t used, sz;
        double g;
        int rc = tally__codec_f64_decode(t, t + size, n, out, &used);
        ASSERT(rc == 0 || rc == TALLY_ECORRUPT);
        if (rc == 0)
            ASSERT_LE(used, size);
        rc = tally__codec_f64_size(t, t + size, n, &sz);
        ASSERT(rc == 0 || rc == TALLY_ECORRUPT);
        rc = tally__codec_f64_get(t, t + size, n, (uint32_t)(rnd() % n), &g);
        ASSERT(rc == 0 || rc == TALLY_ECORRUPT);
        free(t);
    }
}

/* Damage to the automatic chunk and to every forced method's chunk. */
static void damage_f64(const double *v, uint32_t n, int all_bits)
{
    uint8_t enc[1 + 8 * NMAX];
    size_t size = tally__codec_f64_encode(v, n, enc);
    damage_f64_bytes(enc, size, n, all_bits);
    for (unsigned dm = 0; dm < 2; dm++) {
        for (unsigned k = 0; k < TALLY__CK_N; k++) {
            unsigned m = TALLY__CODEC_METHOD(dm ? TALLY__CODEC_DOM_F32 : TALLY__CODEC_DOM_F64, k);
            size_t s = tally__codec_f64_encode_method(v, n, m, enc);
            if (s)
                damage_f64_bytes(enc, s, n, 0);
        }
    }
}

/* ------------------------------------------------------------------------ */

static void test_i64_shapes(void)
{
    int64_t v[NMAX];
    uint8_t enc[1 + 8 * NMAX];
    for (uint32_t n = 1; n <= NMAX; n++) {
        /* steps counting by one: LINEAR, a handful of bytes */
        for (uint32_t i = 0; i < n; i++)
            v[i] = 1000 + (int64_t)i;
        size_t s = rt_i64(v, n);
        ASSERT_LE(s, 5);
        ASSERT_EQ(tally__codec_i64_encode(v, n, enc), s);
        ASSERT_EQ(enc[0], n == 1 ? TALLY__CK_CONST : TALLY__CK_LINEAR);
        /* constant */
        for (uint32_t i = 0; i < n; i++)
            v[i] = -42;
        ASSERT_LE(rt_i64(v, n), 2);
        /* timestamps with bounded jitter: FOR of 3 bits */
        for (uint32_t i = 0; i < n; i++)
            v[i] = INT64_C(1700000000000) + 173 * (int64_t)i + (int64_t)(rnd() & 7);
        s = rt_i64(v, n);
        if (n > 16) /* the rounded slope is exact: 3 bits of jitter */
            ASSERT_LE(s, 12 + (3 * n + 7) / 8);
        /* random walk */
        int64_t x = (int64_t)(rnd() >> 1);
        for (uint32_t i = 0; i < n; i++)
            v[i] = x += (int64_t)(rnd() % 2001) - 1000;
        rt_i64(v, n);
        /* quadratic */
        for (uint32_t i = 0; i < n; i++)
            v[i] = 5 + 3 * (int64_t)i * (int64_t)i;
        rt_i64(v, n);
        /* fully random */
        for (uint32_t i = 0; i < n; i++)
            v[i] = (int64_t)rnd();
        rt_i64(v, n);
        /* random with random width */
        unsigned w = (unsigned)(rnd() % 64);
        for (uint32_t i = 0; i < n; i++)
            v[i] = (int64_t)(rnd() >> (63 - w)) - 77;
        rt_i64(v, n);
    }
}

static void test_i64_extremes(void)
{
    int64_t v[NMAX];
    for (uint32_t n = 1; n <= NMAX; n++) {
        for (uint32_t i = 0; i < n; i++)
            v[i] = i % 2 ? INT64_MAX : INT64_MIN;
        rt_i64(v, n);
        for (uint32_t i = 0; i < n; i++)
            v[i] = INT64_MAX - (int64_t)i;
        rt_i64(v, n);
        for (uint32_t i = 0; i < n; i++)
            v[i] = INT64_MIN + (int64_t)i;
        rt_i64(v, n);
        /* linear with a huge step that wraps modulo 2^64 */
        uint64_t d = UINT64_C(0x7FFFFFFFFFFFFFF3) - n;
        for (uint32_t i = 0; i < n; i++)
            v[i] = (int64_t)(UINT64_C(0x8000000000000000) + (uint64_t)i * d);
        rt_i64(v, n);
        /* overflowing linear fit: first and last differ by more than INT64_MAX */
        for (uint32_t i = 0; i < n; i++)
            v[i] = i == 0 ? INT64_MIN : i + 1 == n ? INT64_MAX : (int64_t)rnd();
        rt_i64(v, n);
        for (uint32_t i = 0; i < n; i++)
            v[i] = (i * 7) % 3 == 0 ? INT64_MIN : (i % 5 == 0 ? -1 : INT64_MAX);
        rt_i64(v, n);
        for (uint32_t i = 0; i < n; i++)
            v[i] = INT64_MIN + (int64_t)(i * (i + 1) / 2) * INT64_C(0x10000000000);
        rt_i64(v, n);
        for (uint32_t i = 0; i < n; i++)
            v[i] = 0;
        rt_i64(v, n);
    }
}

/* Interesting double bit patterns. */
static const uint64_t special_bits[] = {
    0x0000000000000000u, /* +0 */
    0x8000000000000000u, /* -0 */
    0x7FF0000000000000u, /* +inf */
    0xFFF0000000000000u, /* -inf */
    0x7FF8000000000000u, /* quiet NaN */
    0xFFF8000000000000u, /* negative quiet NaN */
    0x7FF0000000000001u, /* signalling NaN, payload 1 */
    0x7FF4000000000000u, /* signalling NaN, payload in float32 range */
    0x7FF80000DEADBEEFu, /* quiet NaN with a low payload */
    0xFFFFFFFFFFFFFFFFu, /* all ones NaN */
    0x7FFFFFFFE0000000u, /* NaN with the widest float32 payload */
    0x0000000000000001u, /* smallest subnormal */
    0x800FFFFFFFFFFFFFu, /* largest negative subnormal */
    0x0010000000000000u, /* smallest normal */
    0x7FEFFFFFFFFFFFFFu, /* largest double */
    0x36A0000000000000u, /* 2^-149: smallest float32 subnormal */
    0x3690000000000000u, /* 2^-150: below float32 range */
    0x380FFFFFC0000000u, /* largest float32 subnormal */
    0x3810000000000000u, /* smallest float32 normal */
    0x47EFFFFFE0000000u, /* largest float32 */
    0x47F0000000000000u, /* 2^128: above float32 range */
    0x3FF0000000000000u, /* 1.0 */
    0xBFF0000000000001u, /* -1 - ulp */
    0x3FB999999999999Au, /* 0.1 */
    0x3FB99999A0000000u, /* (double)0.1f */
};
#define N_SPECIAL (sizeof special_bits / sizeof special_bits[0])

static void test_f64_special(void)
{
    double v[NMAX];
    for (uint32_t n = 1; n <= NMAX; n++) {
        /* every special value alone (a constant chunk) and cycling */
        for (size_t k = 0; k < N_SPECIAL; k++) {
            for (uint32_t i = 0; i < n; i++)
                v[i] = dbl_of(special_bits[k]);
            rt_f64(v, n);
        }
        for (uint32_t i = 0; i < n; i++)
            v[i] = dbl_of(special_bits[(i * 7 + n) % N_SPECIAL]);
        rt_f64(v, n);
        /* float32-exact specials only (signs, zeros, inf, float NaN payloads,
         * float subnormals): the float32 domain must take them */
        static const uint64_t f32ok[] = {0x0u, 0x8000000000000000u, 0x7FF0000000000000u,
                                         0xFFF0000000000000u, 0x7FF8000000000000u,
                                         0x7FF4000000000000u, 0x7FFFFFFFE0000000u,
                                         0x36A0000000000000u, 0x380FFFFFC0000000u,
                                         0xB6A0000000000000u, 0x3FB99999A0000000u};
        for (uint32_t i = 0; i < n; i++)
            v[i] = dbl_of(f32ok[(i + n) % (sizeof f32ok / 8)]);
        rt_f64(v, n);
        uint8_t enc[1 + 8 * NMAX];
        ASSERT_GT(tally__codec_f64_encode_method(v, n, TALLY__CODEC_DOM_F32 | TALLY__CK_RAW, enc), 0);
        /* alternating extremes */
        for (uint32_t i = 0; i < n; i++)
            v[i] = dbl_of(i % 2 ? 0xFFFFFFFFFFFFFFFFu : 0x0u);
        rt_f64(v, n);
        for (uint32_t i = 0; i < n; i++)
            v[i] = i % 2 ? -HUGE_VAL : HUGE_VAL;
        rt_f64(v, n);
    }
    /* float32 subnormals in every position of the leading bit */
    for (unsigned p = 0; p < 23; p++) {
        for (uint32_t i = 0; i < NMAX; i++) {
            uint32_t f = (UINT32_C(1) << p) | (uint32_t)(rnd() & ((UINT32_C(1) << p) - 1));
            f |= (i & 1) ? UINT32_C(0x80000000) : 0;
            float x;
            memcpy(&x, &f, 4);
            v[i] = (double)x;
        }
        rt_f64(v, NMAX);
        uint8_t enc[1 + 8 * NMAX];
        size_t s = tally__codec_f64_encode(v, NMAX, enc);
        ASSERT_EQ(enc[0] & 0xF0, TALLY__CODEC_DOM_F32);
        ASSERT_LT(s, 4 * NMAX + 2);
    }
}

static void test_f64_random(void)
{
    double v[NMAX];
    for (int rep = 0; rep < 40; rep++) {
        for (uint32_t n = 1; n <= NMAX; n += 1 + (uint32_t)(rnd() % 9)) {
            for (uint32_t i = 0; i < n; i++) /* any bit pattern */
                v[i] = dbl_of(rnd());
            rt_f64(v, n);
            for (uint32_t i = 0; i < n; i++) { /* random float32 patterns */
                uint32_t f = (uint32_t)rnd();
                float x;
                memcpy(&x, &f, 4);
                v[i] = (double)x;
            }
            rt_f64(v, n);
            double x = (double)(rnd() % 1000) / 7.0; /* smooth with noise */
            for (uint32_t i = 0; i < n; i++)
                v[i] = x + 0.01 * (double)i + 1e-9 * (double)(rnd() % 100);
            rt_f64(v, n);
            for (uint32_t i = 0; i < n; i++) /* few distinct values */
                v[i] = (double)(rnd() % 3) / 3.0;
            rt_f64(v, n);
            for (uint32_t i = 0; i < n; i++) /* crossing zero */
                v[i] = (double)(float)((double)i - n / 2.0) * 0.37f;
            rt_f64(v, n);
            for (uint32_t i = 0; i < n; i++) /* integers as doubles */
                v[i] = (double)(int64_t)(rnd() % 100000);
            rt_f64(v, n);
        }
    }
}

static void test_gen_kinds(void)
{
    enum { N = 40 * NMAX + 17 };
    static int64_t steps[N], ts[N];
    static double values[N];
    for (int kind = 0; kind < GEN_N_KINDS; kind++) {
        for (uint64_t seed = 0; seed < 5; seed++) {
            gen_series((gen_kind)kind, seed, 123456, N, steps, ts, values);
            size_t total = 0;
            for (uint32_t i = 0; i < N; i += NMAX) {
                uint32_t n = N - i < NMAX ? N - i : NMAX;
                total += rt_i64(steps + i, n);
                total += rt_i64(ts + i, n);
                total += rt_f64(values + i, n);
            }
            /* Loose ceilings: a regression in method choice shows up here
             * (measured values are in docs/codec.md). */
            double bpp = (double)total / N;
            if (kind == GEN_LOSS_F32 || kind == GEN_GRAD_NORM)
                ASSERT(bpp < 4.0);
            if (kind == GEN_ACCURACY_HELD || kind == GEN_COUNTER)
                ASSERT(bpp < 0.5);
            if (kind == GEN_COSINE_LR)
                ASSERT(bpp < 2.0);
        }
    }
    /* gen is deterministic and generates pieces independently */
    static int64_t s2[N], t2[N];
    static double v2[N];
    for (int kind = 0; kind < GEN_N_KINDS; kind++) {
        gen_series((gen_kind)kind, 7, 0, N, steps, ts, values);
        gen_series((gen_kind)kind, 7, 0, 1000, s2, t2, v2);
        gen_series((gen_kind)kind, 7, 1000, N - 1000, s2 + 1000, t2 + 1000, v2 + 1000);
        ASSERT(memcmp(steps, s2, sizeof steps) == 0);
        ASSERT(memcmp(ts, t2, sizeof ts) == 0);
        ASSERT(memcmp(values, v2, sizeof values) == 0);
        for (uint32_t i = 1; i < N; i++) {
            ASSERT_EQ(steps[i], steps[i - 1] + 1);
            ASSERT_GT(ts[i], ts[i - 1]);
        }
        if (kind == GEN_LOSS_F32 || kind == GEN_GRAD_NORM)
            for (uint32_t i = 0; i < N; i++)
                ASSERT_BITS_EQ((double)(float)values[i], values[i]);
    }
}

static void test_damage(void)
{
    int64_t iv[NMAX];
    double fv[NMAX];
    static const uint32_t ns[] = {1, 2, 3, 7, 64, 128};
    for (size_t k = 0; k < sizeof ns / sizeof ns[0]; k++) {
        uint32_t n = ns[k];
        int all = n <= 7;
        for (uint32_t i = 0; i < n; i++)
            iv[i] = 100 + (int64_t)i;
        damage_i64(iv, n, all);
        for (uint32_t i = 0; i < n; i++)
            iv[i] = INT64_C(1700000000000) + 173 * (int64_t)i + (int64_t)(rnd() & 7);
        damage_i64(iv, n, all);
        for (uint32_t i = 0; i < n; i++)
            iv[i] = (int64_t)rnd();
        damage_i64(iv, n, all);
        for (uint32_t i = 0; i < n; i++)
            iv[i] = (int64_t)(i * i * 3);
        damage_i64(iv, n, all);
        for (uint32_t i = 0; i < n; i++)
            fv[i] = (double)(float)(1.0 + 0.03 * (double)(rnd() % 1000) / 1000.0);
        damage_f64(fv, n, all);
        for (uint32_t i = 0; i < n; i++)
            fv[i] = 1e-3 * cos((double)i / 1000.0);
        damage_f64(fv, n, all);
        for (uint32_t i = 0; i < n; i++)
            fv[i] = i < n / 2 ? 0.8123 : 0.8125;
        damage_f64(fv, n, all);
        for (uint32_t i = 0; i < n; i++)
            fv[i] = dbl_of(rnd());
        damage_f64(fv, n, all);
    }
    /* fully random bytes as a chunk */
    uint8_t junk[64];
    for (int rep = 0; rep < 20000; rep++) {
        size_t len = rnd() % sizeof junk;
        for (size_t i = 0; i < len; i++)
            junk[i] = (uint8_t)rnd();
        if (len && rep % 3 == 0)
            junk[0] = (uint8_t)(rnd() % 0x19);
        uint8_t *t = tight(junk, len);
        uint32_t n = 1 + (uint32_t)(rnd() % NMAX);
        int64_t io[NMAX];
        double fo[NMAX], g;
        int64_t gi;
        size_t sz;
        int rc = tally__codec_i64_decode(t, t + len, n, io, NULL);
        ASSERT(rc == 0 || rc == TALLY_ECORRUPT);
        rc = tally__codec_f64_decode(t, t + len, n, fo, NULL);
        ASSERT(rc == 0 || rc == TALLY_ECORRUPT);
        rc = tally__codec_i64_size(t, t + len, n, &sz);
        ASSERT(rc == 0 || rc == TALLY_ECORRUPT);
        rc = tally__codec_f64_size(t, t + len, n, &sz);
        ASSERT(rc == 0 || rc == TALLY_ECORRUPT);
        rc = tally__codec_i64_get(t, t + len, n, n - 1, &gi);
        ASSERT(rc == 0 || rc == TALLY_ECORRUPT);
        rc = tally__codec_f64_get(t, t + len, n, 0, &g);
        ASSERT(rc == 0 || rc == TALLY_ECORRUPT);
        free(t);
    }
}

static void test_bad_arguments(void)
{
    int64_t v[2] = {1, 2};
    uint8_t enc[32];
    size_t s = tally__codec_i64_encode(v, 2, enc);
    int64_t out[NMAX];
    int64_t g;
    ASSERT_EQ(tally__codec_i64_decode(enc, enc + s, 0, out, NULL), TALLY_ECORRUPT);
    ASSERT_EQ(tally__codec_i64_decode(enc, enc + s, NMAX + 1, out, NULL), TALLY_ECORRUPT);
    ASSERT_EQ(tally__codec_i64_get(enc, enc + s, 2, 2, &g), TALLY_EINVAL);
    ASSERT_EQ(tally__codec_i64_decode(enc, enc, 2, out, NULL), TALLY_ECORRUPT);
    /* an int64 column never has float methods */
    enc[0] = TALLY__CK_XOR;
    ASSERT_EQ(tally__codec_i64_decode(enc, enc + s, 2, out, NULL), TALLY_ECORRUPT);
    enc[0] = 0x21;
    double fo[2];
    ASSERT_EQ(tally__codec_f64_decode(enc, enc + s, 2, fo, NULL), TALLY_ECORRUPT);
    ASSERT_STR_EQ(tally__codec_method_name(1, 0x13), "f32-for");
    ASSERT_STR_EQ(tally__codec_method_name(0, 0x06), "?");
    /* float methods that cannot hold the data are refused, not mangled */
    double d[2] = {0.1, 0.2};
    ASSERT_EQ(tally__codec_f64_encode_method(d, 2, TALLY__CODEC_DOM_F32 | TALLY__CK_FOR, enc), 0);
    ASSERT_EQ(tally__codec_f64_encode_method(d, 2, TALLY__CK_CONST, enc), 0);
    ASSERT_EQ(tally__codec_i64_encode_method(v, 2, TALLY__CK_CONST, enc), 0);
}

/* Decoding at the very end of a buffer, with chunks back to back: the
 * decoder's 8-byte loads must stop at end, and `used` must step exactly from
 * one chunk to the next. */
static void test_back_to_back(void)
{
    enum { N_CHUNKS = 50 };
    static uint8_t buf[N_CHUNKS * (1 + 8 * NMAX)];
    double v[N_CHUNKS][NMAX];
    uint32_t n[N_CHUNKS];
    size_t total = 0;
    for (int c = 0; c < N_CHUNKS; c++) {
        n[c] = 1 + (uint32_t)(rnd() % NMAX);
        unsigned w = 1 + (unsigned)(rnd() % 32);
        for (uint32_t i = 0; i < n[c]; i++) {
            float f = (float)(1.0 + (double)(rnd() >> (64 - w)) * 1e-7);
            v[c][i] = (double)f;
        }
        total += tally__codec_f64_encode(v[c], n[c], buf + total);
    }
    uint8_t *t = tight(buf, total);
    const uint8_t *p = t;
    for (int c = 0; c < N_CHUNKS; c++) {
        double out[NMAX];
        size_t used;
        ASSERT_OK(tally__codec_f64_decode(p, t + total, n[c], out, &used));
        for (uint32_t i = 0; i < n[c]; i++)
            ASSERT_BITS_EQ(out[i], v[c][i]);
        p += used;
    }
    ASSERT(p == t + total);
    free(t);
}

/* ------------------------------------------------------------------------ */
/* DELTA and DELTA2 decoded by prefix                                        */
/* ------------------------------------------------------------------------ */

/* The float64 pattern of an ordered word (the inverse of ord64 in
 * docs/codec.md). */
static uint64_t unord64_of(uint64_t u)
{
    return u ^ (u >> 63 ? UINT64_C(0x8000000000000000) : ~UINT64_C(0));
}

/* Words u[0..n) whose residuals under DELTA (second = 0) or DELTA2 all lie in
 * [0, 2^w) around a minimum difference dmin, with 0 and 2^w - 1 both present
 * when there are at least two residuals, so the forced method packs exactly
 * w bits. All sums wrap modulo 2^64. */
static void words_of_width(uint64_t *u, uint32_t n, unsigned w, int second, uint64_t u0,
                           uint64_t d1, uint64_t dmin)
{
    uint64_t top = w == 0 ? 0 : w == 64 ? ~UINT64_C(0) : (UINT64_C(1) << w) - 1;
    uint64_t x = u0, delta = d1;
    u[0] = x;
    for (uint32_t i = 1; i < n; i++) {
        uint32_t j = second ? i - 2 : i - 1; /* residual index */
        uint64_t r = rnd() & top;
        if (j == 0)
            r = 0;
        else if (j == 1)
            r = top;
        if (second && i == 1) {
            x += delta;
        } else if (second) {
            delta += dmin + r;
            x += delta;
        } else {
            x += dmin + r;
        }
        u[i] = x;
    }
}

/* A malloc'd copy of enc[0..size) followed by slack random bytes. */
static uint8_t *copy_with_junk(const uint8_t *enc, size_t size, int slack)
{
    uint8_t *t = malloc(size + (size_t)slack);
    ASSERT(t != NULL);
    memcpy(t, enc, size);
    for (int k = 0; k < slack; k++)
        t[size + (size_t)k] = (uint8_t)rnd();
    return t;
}

/* Every prefix m = 1..n of chunk enc (size bytes) decodes to v[0..m), from a
 * buffer ending right after the chunk and from one with `slack` bytes of
 * junk after it (as in a block, where the next column follows). */
static void check_i64_prefixes(const uint8_t *enc, size_t size, const int64_t *v, uint32_t n)
{
    for (int slack = 0; slack <= 24; slack += 24) {
        uint8_t *t = copy_with_junk(enc, size, slack);
        for (uint32_t m = 1; m <= n; m++) {
            int64_t out[NMAX + 1];
            size_t used = 0;
            out[m] = INT64_C(0x5A5A5A5A5A5A5A5A);
            ASSERT_OK(tally__codec_i64_decode_prefix(t, t + size + slack, n, m, out, &used));
            ASSERT_EQ(used, size);
            for (uint32_t i = 0; i < m; i++)
                ASSERT_EQ(out[i], v[i]);
            ASSERT_EQ(out[m], INT64_C(0x5A5A5A5A5A5A5A5A)); /* nothing past m */
        }
        free(t);
    }
}

static void check_f64_prefixes(const uint8_t *enc, size_t size, const double *v, uint32_t n)
{
    for (int slack = 0; slack <= 24; slack += 24) {
        uint8_t *t = copy_with_junk(enc, size, slack);
        for (uint32_t m = 1; m <= n; m++) {
            double out[NMAX + 1];
            size_t used = 0;
            out[m] = dbl_of(UINT64_C(0x5A5A5A5A5A5A5A5A));
            ASSERT_OK(tally__codec_f64_decode_prefix(t, t + size + slack, n, m, out, &used));
            ASSERT_EQ(used, size);
            for (uint32_t i = 0; i < m; i++)
                ASSERT_BITS_EQ(out[i], v[i]);
            ASSERT_BITS_EQ(out[m], dbl_of(UINT64_C(0x5A5A5A5A5A5A5A5A)));
            /* the last point alone, through random access */
            double g;
            ASSERT_OK(tally__codec_f64_get(t, t + size + slack, n, m - 1, &g));
            ASSERT_BITS_EQ(g, v[m - 1]);
        }
        free(t);
    }
}

static void test_delta_prefix(void)
{
    static const uint32_t ns[] = {1, 2, 3, 4, 9, 10, 17, 18, 63, 100, 127, 128};
    static const uint64_t starts[] = {
        0, UINT64_C(0x7FFFFFFFFFFFFF00), /* int64 wraps; floats cross zero */
        UINT64_C(0x8000000000000000), UINT64_C(0xFFFFFFFFFFFFFF80), UINT64_C(0x3FF0000000000000)};
    uint8_t enc[1 + 8 * NMAX];
    uint64_t u[NMAX];
    int64_t iv[NMAX];
    double fv[NMAX];
    size_t n_done = 0;
    for (unsigned w = 0; w <= 64; w++) {
        for (int second = 0; second < 2; second++) {
            unsigned method = second ? TALLY__CK_DELTA2 : TALLY__CK_DELTA;
            for (size_t k = 0; k < sizeof ns / sizeof ns[0]; k++) {
                uint32_t n = ns[k];
                uint64_t u0 = starts[(w + k) % (sizeof starts / sizeof starts[0])];
                /* dmin small negative or anywhere in [-2^61, 2^61): below
                 * w = 63 the residuals' int64 range is then exactly w bits */
                uint64_t dmin = (k & 1) ? 0 - rnd() % 1000 : (rnd() >> 2) - (UINT64_C(1) << 61);
                words_of_width(u, n, w, second, u0, rnd() >> (w % 64), dmin);
                for (uint32_t i = 0; i < n; i++) {
                    iv[i] = (int64_t)u[i];
                    fv[i] = dbl_of(unord64_of(u[i])); /* any pattern: NaNs, -0.0, ... */
                }
                size_t s = tally__codec_i64_encode_method(iv, n, method, enc);
                if (s) {
                    ASSERT_EQ(enc[0], method);
                    if (n > (second ? 3u : 2u) && w <= 62)
                        ASSERT_EQ(enc[1], w);
                    check_i64_prefixes(enc, s, iv, n);
                    n_done++;
                }
                s = tally__codec_f64_encode_method(fv, n, method, enc);
                if (s) {
                    ASSERT_EQ(enc[0], method);
                    if (n > (second ? 3u : 2u) && w <= 62)
                        ASSERT_EQ(enc[1], w);
                    check_f64_prefixes(enc, s, fv, n);
                    n_done++;
                }
            }
        }
    }
    /* widths up to 62 fit the bound at n = 128 for both kernels */
    ASSERT_GT(n_done, 2 * 2 * 63 * 10);

    /* Smooth curves as training writes them, positive, negative and across
     * zero, with specials dropped in (the automatic choice, then forced). */
    for (int shape = 0; shape < 6; shape++) {
        for (size_t k = 0; k < sizeof ns / sizeof ns[0]; k++) {
            uint32_t n = ns[k];
            for (uint32_t i = 0; i < n; i++) {
                double s = (double)(4000 * k + i);
                double x = 1.0 / (1.0 + s * 1e-4);
                switch (shape) {
                case 0: fv[i] = x; break;
                case 1: fv[i] = -x; break;
                case 2: fv[i] = x - 0.9995; break; /* crosses zero */
                case 3: fv[i] = 1e-3 * 0.5 * (1.0 + cos(3.14159265358979 * s / 60000.0)); break;
                case 4: fv[i] = (double)(float)(x - 0.9995); break; /* float32 domain */
                default: /* specials among smooth values */
                    fv[i] = i % 11 == 3 ? dbl_of(special_bits[(i / 11) % N_SPECIAL]) : x;
                    break;
                }
            }
            size_t s = tally__codec_f64_encode(fv, n, enc);
            ASSERT_GT(s, 0);
            check_f64_prefixes(enc, s, fv, n);
            for (unsigned dm = 0; dm < 2; dm++) {
                for (int second = 0; second < 2; second++) {
                    unsigned method = TALLY__CODEC_METHOD(
                        dm ? TALLY__CODEC_DOM_F32 : TALLY__CODEC_DOM_F64,
                        second ? TALLY__CK_DELTA2 : TALLY__CK_DELTA);
                    s = tally__codec_f64_encode_method(fv, n, method, enc);
                    if (s)
                        check_f64_prefixes(enc, s, fv, n);
                }
            }
        }
    }
}

/* ------------------------------------------------------------------------ */
/* RAW, CONST, LINEAR and FOR of the value column decoded straight to doubles */
/* ------------------------------------------------------------------------ */

/* Independent references for the ordered words: the float32 pattern of a
 * float32-domain word, and its float64 widening through the FPU for every
 * non-NaN (exact at the default rounding and denormal modes) with NaN
 * payloads moved by hand. */
static uint32_t unord32_of(uint32_t u)
{
    return u ^ (u >> 31 ? UINT32_C(0x80000000) : ~UINT32_C(0));
}

static uint64_t widen_ref(uint32_t f)
{
    if ((f & UINT32_C(0x7F800000)) == UINT32_C(0x7F800000) && (f & UINT32_C(0x7FFFFF)))
        return ((uint64_t)(f >> 31) << 63) | (UINT64_C(0x7FF) << 52) |
               ((uint64_t)(f & UINT32_C(0x7FFFFF)) << 29);
    float x;
    memcpy(&x, &f, 4);
    double y = (double)x;
    uint64_t b;
    memcpy(&b, &y, 8);
    return b;
}

/* The double of ordered word u in domain f32 (1) or float64 (0). */
static double value_of_word(uint64_t u, int f32)
{
    return dbl_of(f32 ? widen_ref(unord32_of((uint32_t)u)) : unord64_of(u));
}

/* Every prefix m = 1..n (tight buffer and junk after it), and ranges of 1,
 * 2, 3 and up to 16 values from every i, against v. */
static void check_fixed_chunk(const uint8_t *enc, size_t size, const double *v, uint32_t n)
{
    check_f64_prefixes(enc, size, v, n);
    uint8_t *t = tight(enc, size);
    static const uint32_t cnts[] = {1, 2, 3, 16};
    for (uint32_t i = 0; i < n; i++) {
        for (size_t k = 0; k < sizeof cnts / sizeof cnts[0]; k++) {
            uint32_t cnt = cnts[k] < n - i ? cnts[k] : n - i;
            double r[16];
            size_t sz = 0;
            ASSERT_OK(tally__codec_f64_get_range(t, t + size, n, i, cnt, r, &sz));
            ASSERT_EQ(sz, size);
            for (uint32_t j = 0; j < cnt; j++)
                ASSERT_BITS_EQ(r[j], v[i + j]);
        }
    }
    free(t);
    n_checked_f64++;
}

static void test_fixed_direct(void)
{
    /* Ordered words at the edges of the ways a word maps: NaNs of either
     * sign, infinities, the normal range's ends, subnormals, zeros. */
    static const uint64_t edges32[] = {
        0x00000000u, 0x003FFFFFu, 0x007FFFFEu, 0x007FFFFFu, 0x00800000u, 0x3F7FFFFFu,
        0x7F7FFFFFu, 0x7F800000u, 0x7FFFFFFEu, 0x7FFFFFFFu, 0x80000000u, 0x80000001u,
        0x807FFFFFu, 0x80800000u, 0xBF800000u, 0xC0A00000u, 0xFF7FFFFFu, 0xFF800000u,
        0xFF800001u, 0xFFC00000u, 0xFFFFFFFFu};
    static const uint64_t edges64[] = {
        0, UINT64_C(0x0007FFFFFFFFFFFF), UINT64_C(0x000FFFFFFFFFFFFF),
        UINT64_C(0x0010000000000000), UINT64_C(0x7FEFFFFFFFFFFFFF),
        UINT64_C(0x7FF0000000000000), UINT64_C(0x7FFFFFFFFFFFFFFF),
        UINT64_C(0x8000000000000000), UINT64_C(0x8000000000000001),
        UINT64_C(0x800FFFFFFFFFFFFF), UINT64_C(0x8010000000000000),
        UINT64_C(0xBFF0000000000000), UINT64_C(0xFFEFFFFFFFFFFFFF),
        UINT64_C(0xFFF0000000000000), UINT64_C(0xFFF0000000000001),
        UINT64_C(0xFFF8000000000000), UINT64_C(0xFFFFFFFFFFFFFFFF)};
    static const uint32_t ns[] = {128, 127, 100, 64, 17, 9, 8, 7, 2, 1};
    uint8_t enc[1 + 8 * NMAX];
    uint64_t u[NMAX];
    double v[NMAX];
    size_t n_for[2][65] = {{0}}, n_other = 0, k = 0;
    for (int f32 = 0; f32 < 2; f32++) {
        const uint64_t *edges = f32 ? edges32 : edges64;
        size_t n_edges = f32 ? sizeof edges32 / 8 : sizeof edges64 / 8;
        unsigned bits = f32 ? 32 : 64;
        uint64_t dom = f32 ? TALLY__CODEC_DOM_F32 : TALLY__CODEC_DOM_F64;
        uint64_t top_word = f32 ? UINT32_MAX : UINT64_MAX;
        for (unsigned w = 0; w <= bits; w++) {
            uint64_t top = w == 64 ? UINT64_MAX : (UINT64_C(1) << w) - 1;
            for (size_t e = 0; e < n_edges; e++) {
                /* the range [base, base + top] starting at, ending at and
                 * straddling the edge, kept within the domain's words */
                for (int pos = 0; pos < 3; pos++, k++) {
                    uint64_t base = pos == 0 ? edges[e] : pos == 1 ? edges[e] - top
                                                                    : edges[e] - top / 2;
                    if (pos == 1 && edges[e] < top)
                        base = 0;
                    if (pos == 2 && edges[e] < top / 2)
                        base = 0;
                    if (base > top_word - top)
                        base = top_word - top;
                    uint32_t n = ns[k % (sizeof ns / sizeof ns[0])];
                    /* FOR with slope 0: residuals 0 and top present */
                    for (uint32_t i = 0; i < n; i++)
                        u[i] = base + (i == 0 ? 0 : i == 1 ? top : rnd() & top);
                    for (uint32_t i = 0; i < n; i++)
                        v[i] = value_of_word(u[i], f32);
                    size_t s = tally__codec_f64_encode_method(v, n, dom | TALLY__CK_FOR, enc);
                    if (s) {
                        ASSERT_EQ(enc[0], dom | TALLY__CK_FOR);
                        /* w, or narrower when the fit through the first
                         * and last points absorbs the residuals */
                        ASSERT_LE(enc[1], w);
                        check_fixed_chunk(enc, s, v, n);
                        n_for[f32][enc[1]]++;
                    }
                    /* FOR with a slope: a line of step d through the range,
                     * rising or falling, with residuals of w bits */
                    if (n > 2 && w < bits - 8) {
                        uint64_t room = top_word - top; /* for the line */
                        uint64_t span = room / 4 < (UINT64_C(1) << (bits - 8)) ? room / 4
                                        : (UINT64_C(1) << (bits - 8));
                        uint64_t d = span / (n - 1) + 1 + (rnd() & 3);
                        uint64_t b0 = base > span ? base - span / 2 : 0;
                        if (b0 > room - d * (n - 1))
                            b0 = room - d * (n - 1);
                        int fall = (k & 1) != 0;
                        for (uint32_t i = 0; i < n; i++) {
                            uint64_t line = fall ? b0 + d * (n - 1 - i) : b0 + d * i;
                            u[i] = line + (i == 0 ? 0 : i == 1 ? top : rnd() & top);
                        }
                        for (uint32_t i = 0; i < n; i++)
                            v[i] = value_of_word(u[i], f32);
                        s = tally__codec_f64_encode_method(v, n, dom | TALLY__CK_FOR, enc);
                        if (s) {
                            ASSERT_EQ(enc[0], dom | TALLY__CK_FOR);
                            check_fixed_chunk(enc, s, v, n);
                            n_other++;
                        }
                    }
                    if (w > 0)
                        continue;
                    /* w = 0 stands for the kernels without residuals: CONST
                     * at base, LINEAR of every sign of slope, and RAW of the
                     * range's words */
                    for (uint32_t i = 0; i < n; i++)
                        v[i] = value_of_word(base, f32);
                    s = tally__codec_f64_encode_method(v, n, dom | TALLY__CK_CONST, enc);
                    ASSERT_GT(s, 0);
                    check_fixed_chunk(enc, s, v, n);
                    for (int sgn = 0; sgn < 2 && n > 1; sgn++) {
                        uint64_t d = 1 + rnd() % (f32 ? 1000 : UINT64_C(1) << 40);
                        uint64_t b0 = base;
                        if (sgn == 0 && b0 > top_word - d * (n - 1))
                            b0 = top_word - d * (n - 1);
                        if (sgn == 1 && b0 < d * (n - 1))
                            b0 = d * (n - 1);
                        for (uint32_t i = 0; i < n; i++)
                            u[i] = sgn ? b0 - d * i : b0 + d * i;
                        for (uint32_t i = 0; i < n; i++)
                            v[i] = value_of_word(u[i], f32);
                        s = tally__codec_f64_encode_method(v, n, dom | TALLY__CK_LINEAR, enc);
                        ASSERT_GT(s, 0);
                        check_fixed_chunk(enc, s, v, n);
                        n_other++;
                    }
                    uint64_t spread = f32 ? UINT64_C(0xFFFF) : UINT64_C(0xFFFFFFFFFF);
                    uint64_t b0 = base > top_word - spread ? top_word - spread : base;
                    for (uint32_t i = 0; i < n; i++)
                        v[i] = value_of_word(b0 + (rnd() & spread), f32);
                    s = tally__codec_f64_encode_method(v, n, dom | TALLY__CK_RAW, enc);
                    ASSERT_GT(s, 0);
                    check_fixed_chunk(enc, s, v, n);
                    n_other++;
                }
            }
        }
    }
    /* FOR packed every width of either domain at least a few times (64 bits
     * never fit the bound of 1 + 8n bytes) */
    for (unsigned w = 0; w <= 63; w++) {
        ASSERT_GT(n_for[0][w], 10);
        if (w <= 32)
            ASSERT_GT(n_for[1][w], 10);
    }
    ASSERT_GT(n_other, 1000);

    /* Float32-origin values as the loss curves write them, with NaNs of
     * several payloads, -0.0, infinities and float32 subnormals dropped in,
     * and negative and sign-crossing copies: the automatic choice and every
     * fixed-width method forced. */
    static const uint32_t drops[] = {0x7FC00000u, 0xFFC00001u, 0x7F800001u, 0x7FBFFFFFu,
                                     0x80000000u, 0x00000000u, 0x7F800000u, 0xFF800000u,
                                     0x00000001u, 0x807FFFFFu, 0x00400000u};
    for (int shape = 0; shape < 4; shape++) {
        for (int drop = -1; drop < (int)(sizeof drops / 4); drop++) {
            uint32_t n = ns[(size_t)(shape + drop + 1) % (sizeof ns / sizeof ns[0])];
            for (uint32_t i = 0; i < n; i++) {
                float y = 0.3f + 2.0f * expf(-(float)(1000 * shape + 7 * drop + (int)i) / 400.0f) +
                          0.02f * (float)(rnd() % 1000) / 1000.0f;
                if (shape == 1)
                    y = -y;
                else if (shape == 2)
                    y -= 1.0f; /* crosses zero */
                else if (shape == 3)
                    y *= 1e-38f; /* float32 subnormals and small normals */
                uint32_t f;
                memcpy(&f, &y, 4);
                if (drop >= 0 && i % 5 == 2)
                    f = drops[drop];
                v[i] = dbl_of(widen_ref(f));
            }
            size_t s = tally__codec_f64_encode(v, n, enc);
            ASSERT_GT(s, 0);
            check_fixed_chunk(enc, s, v, n);
            for (int f32 = 0; f32 < 2; f32++) {
                for (unsigned kern = TALLY__CK_RAW; kern <= TALLY__CK_FOR; kern++) {
                    unsigned method = (f32 ? TALLY__CODEC_DOM_F32 : 0) | kern;
                    s = tally__codec_f64_encode_method(v, n, method, enc);
                    if (s)
                        check_fixed_chunk(enc, s, v, n);
                }
            }
        }
    }
}

int main(void)
{
    TEST_RUN(test_fixed_direct);
    TEST_RUN(test_i64_shapes);
    TEST_RUN(test_i64_extremes);
    TEST_RUN(test_f64_special);
    TEST_RUN(test_f64_random);
    TEST_RUN(test_gen_kinds);
    TEST_RUN(test_damage);
    TEST_RUN(test_bad_arguments);
    TEST_RUN(test_back_to_back);
    TEST_RUN(test_delta_prefix);
    fprintf(stderr, "checked %zu int64 and %zu float64 chunks\n", n_checked_i64, n_checked_f64);
    ASSERT_GT(n_checked_i64, 1000);
    ASSERT_GT(n_checked_f64, 1000);
    return TEST_DONE();
}
