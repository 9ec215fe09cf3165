/*
 * test_native_frame.c — the native ingest frame (server/native_frame.h):
 * encode/decode round trips (raw and LZ4, every padding length, empty and
 * zero-point series, NaN/inf/-0.0 bit patterns, misaligned input), and every
 * kind of corruption answered with an error, never a crash: each single bit
 * flipped anywhere in a frame, each truncation, trailing bytes, and
 * hand-built payloads with a valid checksum but bad records.
 */
#include <lz4.h>
#include <zlib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "native_frame.h"
#include "test.h"

#define MAX_SERIES 12

typedef struct fixture {
    tally_series_batch s[MAX_SERIES];
    char run_ids[MAX_SERIES][300];
    char keys[MAX_SERIES][64];
    int64_t *steps[MAX_SERIES], *ts[MAX_SERIES];
    double *vals[MAX_SERIES];
    size_t n;
} fixture;

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* n series; series i has a run id of 1 + (i * 7) % 40 bytes and a key of
 * 1 + i bytes, so the record padding takes every value 0..7; point counts
 * vary, one series has none. */
static void fixture_make(fixture *f, size_t n, uint32_t max_points)
{
    memset(f, 0, sizeof *f);
    f->n = n;
    for (size_t i = 0; i < n; i++) {
        size_t rl = 1 + (i * 7) % 40, kl = 1 + i;
        for (size_t k = 0; k < rl; k++)
            f->run_ids[i][k] = "0123456789abcdef"[(i + k) % 16];
        for (size_t k = 0; k < kl; k++)
            f->keys[i][k] = "loss/acc_"[(i + k) % 9];
        uint32_t np = i == 3 ? 0 : (uint32_t)(1 + rnd() % max_points);
        f->steps[i] = malloc((np + 1) * sizeof(int64_t));
        f->ts[i] = malloc((np + 1) * sizeof(int64_t));
        f->vals[i] = malloc((np + 1) * sizeof(double));
        for (uint32_t k = 0; k < np; k++) {
            f->steps[i][k] = (int64_t)k - 5;
            f->ts[i][k] = 1700000000000 + (int64_t)(rnd() % 100000);
            switch (k % 7) {
            case 0: f->vals[i][k] = NAN; break;
            case 1: f->vals[i][k] = INFINITY; break;
            case 2: f->vals[i][k] = -INFINITY; break;
            case 3: f->vals[i][k] = -0.0; break;
            default: f->vals[i][k] = (double)rnd() / 3.0; break;
            }
        }
        tally_series_batch *b = &f->s[i];
        b->run_id = f->run_ids[i];
        b->run_id_len = rl;
        b->key = f->keys[i];
        b->key_len = kl;
        b->n_points = np;
        b->steps = f->steps[i];
        b->timestamps_ms = f->ts[i];
        b->values = f->vals[i];
    }
}

static void fixture_free(fixture *f)
{
    for (size_t i = 0; i < f->n; i++) {
        free(f->steps[i]);
        free(f->ts[i]);
        free(f->vals[i]);
    }
}

/* The decoder's series must be f's, zero-point series left out. */
static int same_series(const fixture *f, const tally_frame_decoder *d)
{
    size_t j = 0;
    uint64_t pts = 0;
    for (size_t i = 0; i < f->n; i++) {
        const tally_series_batch *a = &f->s[i];
        if (a->n_points == 0)
            continue;
        if (j >= d->n_series)
            return 0;
        const tally_series_batch *b = &d->series[j++];
        if (a->run_id_len != b->run_id_len || memcmp(a->run_id, b->run_id, a->run_id_len) ||
            a->key_len != b->key_len || memcmp(a->key, b->key, a->key_len) ||
            a->n_points != b->n_points)
            return 0;
        if (memcmp(a->steps, b->steps, 8 * (size_t)a->n_points) ||
            memcmp(a->timestamps_ms, b->timestamps_ms, 8 * (size_t)a->n_points) ||
            memcmp(a->values, b->values, 8 * (size_t)a->n_points))
            return 0; /* bit-exact, NaN and -0.0 included */
        pts += a->n_points;
    }
    return j == d->n_series && pts == d->n_points;
}

static void test_round_trip(void)
{
    tally_frame_decoder d;
    tally_frame_decoder_init(&d);
    for (unsigned flags = 0; flags <= TALLY_FRAME_KNOWN_FLAGS; flags++) {
        int lz4 = (flags & TALLY_FRAME_F_LZ4) != 0;
        for (size_t n = 0; n <= MAX_SERIES; n += (n < 4 ? 1 : 4)) {
            fixture f;
            fixture_make(&f, n, 300);
            uint8_t *frame;
            size_t len;
            ASSERT_OK(tally_frame_encode(f.s, n, flags, &frame, &len));
            ASSERT_EQ(memcmp(frame, "TLYF", 4), 0);
            if (flags & TALLY_FRAME_F_CRC32) {
                /* The checksum field is zlib's CRC-32 of the payload. */
                uint64_t want = crc32_z(0L, frame + 32, len - 32), got = 0;
                for (int i = 0; i < 8; i++)
                    got |= (uint64_t)frame[24 + i] << (8 * i);
                ASSERT_EQ(got, want);
            }
            char err[256];
            ASSERT_OK(tally_frame_decode(&d, frame, len, 0, err, sizeof err));
            ASSERT(same_series(&f, &d));
            if (!lz4 && d.n_series > 0) {
                /* Aligned and uncompressed: columns used in place. */
                const uint8_t *p = (const uint8_t *)(const void *)d.series[0].steps;
                ASSERT(p > frame && p < frame + len);
            }
            /* The same frame at an odd address decodes the same (copied). */
            uint8_t *odd = malloc(len + 1);
            memcpy(odd + 1, frame, len);
            ASSERT_OK(tally_frame_decode(&d, odd + 1, len, 0, err, sizeof err));
            ASSERT(same_series(&f, &d));
            free(odd);
            tally_frame_buf_free(frame);
            fixture_free(&f);
        }
    }
    tally_frame_decoder_free(&d);
    tally_frame_decoder_free(NULL);
}

/* Every single-bit flip, every truncation and an appended byte are errors. */
static void test_every_corruption(void)
{
    tally_frame_decoder d;
    tally_frame_decoder_init(&d);
    for (unsigned flags = 0; flags <= TALLY_FRAME_KNOWN_FLAGS; flags++) {
        fixture f;
        fixture_make(&f, 5, 4);
        uint8_t *frame;
        size_t len;
        ASSERT_OK(tally_frame_encode(f.s, f.n, flags, &frame, &len));
        uint8_t *copy = malloc(len + 1);
        char err[256];
        for (size_t i = 0; i < len; i++) {
            for (int bit = 0; bit < 8; bit++) {
                memcpy(copy, frame, len);
                copy[i] ^= (uint8_t)(1u << bit);
                err[0] = 0;
                int rc = tally_frame_decode(&d, copy, len, 0, err, sizeof err);
                if (rc == 0)
                    printf("flip at byte %zu bit %d (flags %u) decoded\n", i, bit, flags);
                ASSERT_NE(rc, 0);
                ASSERT(err[0] != 0);
            }
        }
        for (size_t cut = 0; cut < len; cut++) {
            uint8_t *t = malloc(cut ? cut : 1); /* exact size: ASan sees overreads */
            memcpy(t, frame, cut);
            ASSERT_NE(tally_frame_decode(&d, t, cut, 0, err, sizeof err), 0);
            free(t);
        }
        memcpy(copy, frame, len);
        copy[len] = 0;
        ASSERT_EQ(tally_frame_decode(&d, copy, len + 1, 0, err, sizeof err), TALLY_ECORRUPT);
        free(copy);
        tally_frame_buf_free(frame);
        fixture_free(&f);
    }
    tally_frame_decoder_free(&d);
}

/* A frame around a hand-built raw payload, with a correct checksum. */
static uint8_t *wrap(const uint8_t *raw, size_t raw_len, uint32_t n_series, uint32_t n_points,
                     uint16_t version, uint16_t flags, size_t *len)
{
    uint8_t *f = calloc(1, 32 + raw_len + 1);
    memcpy(f, "TLYF", 4);
    f[4] = (uint8_t)version;
    f[5] = (uint8_t)(version >> 8);
    f[6] = (uint8_t)flags;
    f[7] = (uint8_t)(flags >> 8);
    for (int i = 0; i < 4; i++) {
        f[8 + i] = (uint8_t)(n_series >> (8 * i));
        f[12 + i] = (uint8_t)(n_points >> (8 * i));
        f[16 + i] = (uint8_t)(raw_len >> (8 * i));
        f[20 + i] = (uint8_t)(raw_len >> (8 * i));
    }
    memcpy(f + 32, raw, raw_len);
    uint64_t h = (flags & TALLY_FRAME_F_CRC32) ? (uint64_t)crc32_z(0L, f + 32, raw_len)
                                               : XXH3_64bits(f + 32, raw_len);
    for (int i = 0; i < 8; i++)
        f[24 + i] = (uint8_t)(h >> (8 * i));
    *len = 32 + raw_len;
    return f;
}

/* One record: rl-byte run id, kl-byte key, n points, pad bytes of value padv. */
static size_t record(uint8_t *p, uint16_t rl, uint16_t kl, uint32_t n, uint8_t padv)
{
    p[0] = (uint8_t)rl;
    p[1] = (uint8_t)(rl >> 8);
    p[2] = (uint8_t)kl;
    p[3] = (uint8_t)(kl >> 8);
    for (int i = 0; i < 4; i++)
        p[4 + i] = (uint8_t)(n >> (8 * i));
    size_t off = 8;
    memset(p + off, 'r', rl);
    off += rl;
    memset(p + off, 'k', kl);
    off += kl;
    while (off % 8)
        p[off++] = padv;
    memset(p + off, 0, 24 * (size_t)n);
    return off + 24 * (size_t)n;
}

static void expect(const uint8_t *raw, size_t raw_len, uint32_t ns, uint32_t np, uint16_t version,
                   uint16_t flags, int want)
{
    tally_frame_decoder d;
    tally_frame_decoder_init(&d);
    size_t len;
    uint8_t *f = wrap(raw, raw_len, ns, np, version, flags, &len);
    char err[256] = "";
    int rc = tally_frame_decode(&d, f, len, 0, err, sizeof err);
    if (rc != want)
        printf("got %d (%s), want %d\n", rc, err, want);
    ASSERT_EQ(rc, want);
    free(f);
    tally_frame_decoder_free(&d);
}

static void test_bad_records(void)
{
    static uint8_t raw[1 << 16];
    size_t n;
    n = record(raw, 3, 4, 2, 0);
    expect(raw, n, 1, 2, 1, 0, 0);                    /* the control: valid */
    expect(raw, n, 1, 2, 2, 0, TALLY_EVERSION);       /* another version */
    expect(raw, n, 1, 2, 1, 0x8000, TALLY_ECORRUPT);  /* unknown flag */
    expect(raw, n, 1, 3, 1, 0, TALLY_ECORRUPT);       /* n_points too high */
    expect(raw, n, 1, 1, 1, 0, TALLY_ECORRUPT);       /* n_points too low */
    expect(raw, n, 2, 2, 1, 0, TALLY_ECORRUPT);       /* n_series too high */
    expect(raw, n, 0, 0, 1, 0, TALLY_ECORRUPT);       /* trailing record */
    expect(raw, n - 1, 1, 2, 1, 0, TALLY_ECORRUPT);   /* columns cut short */
    n = record(raw, 3, 4, 2, 0xAB);
    expect(raw, n, 1, 2, 1, 0, TALLY_ECORRUPT);       /* nonzero padding */
    n = record(raw, 0, 4, 1, 0);
    expect(raw, n, 1, 1, 1, 0, TALLY_ECORRUPT);       /* empty run id */
    n = record(raw, 3, 0, 1, 0);
    expect(raw, n, 1, 1, 1, 0, TALLY_ECORRUPT);       /* empty key */
    n = record(raw, TALLY_FRAME_MAX_RUN_ID + 1, 4, 1, 0);
    expect(raw, n, 1, 1, 1, 0, TALLY_ECORRUPT);       /* run id too long */
    n = record(raw, 3, TALLY_FRAME_MAX_KEY + 1, 1, 0);
    expect(raw, n, 1, 1, 1, 0, TALLY_ECORRUPT);       /* key too long */
    n = record(raw, 3, 4, 0, 0);
    expect(raw, n, 1, 0, 1, 0, 0);                    /* zero points: valid, skipped */
    /* A point count whose columns would wrap a 32-bit size. */
    n = record(raw, 3, 4, 0, 0);
    raw[4] = raw[5] = raw[6] = raw[7] = 0xFF;
    expect(raw, n, 1, 0xFFFFFFFFu, 1, 0, TALLY_ECORRUPT);
    /* Header shorter than 32 bytes, and bad magic. */
    tally_frame_decoder d;
    tally_frame_decoder_init(&d);
    char err[128];
    ASSERT_EQ(tally_frame_decode(&d, "TLYF", 4, 0, err, sizeof err), TALLY_ECORRUPT);
    size_t len;
    n = record(raw, 3, 4, 2, 0);
    uint8_t *f = wrap(raw, n, 1, 2, 1, 0, &len);
    f[0] = 'X';
    ASSERT_EQ(tally_frame_decode(&d, f, len, 0, err, sizeof err), TALLY_ECORRUPT);
    f[0] = 'T';
    ASSERT_OK(tally_frame_decode(&d, f, len, 0, err, sizeof err));
    /* raw_len over the caller's limit. */
    ASSERT_EQ(tally_frame_decode(&d, f, len, 16, err, sizeof err), TALLY_ETOOBIG);
    free(f);
    /* LZ4 flag with a payload that is not LZ4 of raw_len bytes. */
    n = record(raw, 3, 4, 2, 0);
    f = wrap(raw, n, 1, 2, 1, TALLY_FRAME_F_LZ4, &len);
    ASSERT_EQ(tally_frame_decode(&d, f, len, 0, err, sizeof err), TALLY_ECORRUPT);
    free(f);
    /* LZ4 decompressing to a different size than raw_len. */
    char comp[1 << 12];
    int c = LZ4_compress_default((const char *)raw, comp, (int)n, sizeof comp);
    ASSERT_GT(c, 0);
    f = wrap((const uint8_t *)comp, (size_t)c, 1, 2, 1, TALLY_FRAME_F_LZ4, &len);
    f[20] = (uint8_t)(n + 8); /* raw_len claims 8 bytes more */
    ASSERT_EQ(tally_frame_decode(&d, f, len, 0, err, sizeof err), TALLY_ECORRUPT);
    f[20] = (uint8_t)n;
    ASSERT_OK(tally_frame_decode(&d, f, len, 0, err, sizeof err));
    ASSERT_EQ(d.n_series, 1);
    ASSERT_EQ(d.n_points, 2);
    free(f);
    tally_frame_decoder_free(&d);
}

static void test_encode_errors(void)
{
    int64_t s = 1, t = 2;
    double v = 3;
    tally_series_batch b = {"run", 3, "key", 3, 1, &s, &t, &v};
    uint8_t *out;
    size_t len;
    ASSERT_EQ(tally_frame_encode(&b, 1, 0x10, &out, &len), TALLY_EINVAL);
    b.run_id_len = 0;
    ASSERT_EQ(tally_frame_encode(&b, 1, 0, &out, &len), TALLY_EINVAL);
    b.run_id_len = 3;
    b.key_len = TALLY_FRAME_MAX_KEY + 1;
    ASSERT_EQ(tally_frame_encode(&b, 1, 0, &out, &len), TALLY_EINVAL);
    b.key_len = 3;
    ASSERT_OK(tally_frame_encode(&b, 1, TALLY_FRAME_F_LZ4, &out, &len));
    ASSERT_EQ(len, 32 + (size_t)(out[16] | out[17] << 8));
    ASSERT_EQ((size_t)(out[20] | out[21] << 8), tally_frame_raw_size(&b, 1));
    tally_frame_buf_free(out);
}

int main(void)
{
    TEST_RUN(test_round_trip);
    TEST_RUN(test_every_corruption);
    TEST_RUN(test_bad_records);
    TEST_RUN(test_encode_errors);
    return TEST_DONE();
}
