/*
 * fuzz_codec.c — libFuzzer target for the column codecs (engine/codec.c).
 *
 * Input layout (parameters carved from the front, as lz4's fuzz_data_producer):
 *   byte 0   bit 0: column (0 int64, 1 float64)
 *            bits 1-2: mode: 0 decode garbage, 1 round trip of raw values,
 *                      2 round trip of shaped values, 3 both (garbage first)
 *            bits 3-7: method to force in round trips (0x1F: automatic)
 *   byte 1   n - 1 (n = 1..128, modulo 128)
 *   rest     the chunk bytes (decode) or the values (round trip)
 *
 * Decode garbage: decode, size and get must return 0 or TALLY_ECORRUPT,
 * stay within the input (ASan) and agree with each other when they succeed;
 * so must ranges through random access and a decode of the same bytes with
 * junk after them (which moves the decoders between their whole-word loads,
 * their copies near the end and their byte-wise tails).
 * Round trip: encode (automatic, or the forced method when it applies),
 * decode, compare bit for bit; abort on any mismatch. Both also decode a
 * prefix of the chunk, which must match the whole decode.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "codec_methods.h"

#define NMAX TALLY_CHUNK_POINTS

#define CHECK(cond)                                                                          \
    do {                                                                                     \
        if (!(cond))                                                                         \
            abort();                                                                         \
    } while (0)

#define JUNK 24

/* A heap copy of the size bytes at data with JUNK bytes after them. */
static uint8_t *with_junk(const uint8_t *data, size_t size)
{
    uint8_t *w = malloc(size + JUNK);
    CHECK(w != NULL);
    if (size)
        memcpy(w, data, size);
    for (size_t k = 0; k < JUNK; k++)
        w[size + k] = (uint8_t)(0xA5 ^ (k * 37) ^ (size ? data[k % size] : 0));
    return w;
}

static void decode_garbage(int is_f64, const uint8_t *data, size_t size, uint32_t n)
{
    /* A heap copy of exactly size bytes: any over-read is an ASan report. */
    uint8_t *buf = malloc(size ? size : 1);
    CHECK(buf != NULL);
    if (size)
        memcpy(buf, data, size);
    const uint8_t *end = buf + size;
    size_t used = 0, sz = 0;
    if (is_f64) {
        double out[NMAX];
        int rc = tally__codec_f64_decode(buf, end, n, out, &used);
        CHECK(rc == 0 || rc == TALLY_ECORRUPT);
        int rs = tally__codec_f64_size(buf, end, n, &sz);
        CHECK(rs == 0 || rs == TALLY_ECORRUPT);
        if (rc == 0) {
            CHECK(used >= 1 && used <= size);
            CHECK(rs == 0 && sz == used);
            for (uint32_t i = 0; i < n; i++) {
                double g;
                CHECK(tally__codec_f64_get(buf, end, n, i, &g) == 0);
                CHECK(memcmp(&g, &out[i], 8) == 0);
            }
            /* a prefix is the same values and the same size */
            double pre[NMAX];
            uint32_t pm = 1 + (uint32_t)(size % n);
            CHECK(tally__codec_f64_decode_prefix(buf, end, n, pm, pre, &sz) == 0);
            CHECK(sz == used && memcmp(pre, out, 8 * (size_t)pm) == 0);
            for (uint32_t i = 0; i < n; i += 5) {
                double r[16];
                uint32_t cnt = n - i < 16 ? n - i : 16;
                CHECK(tally__codec_f64_get_range(buf, end, n, i, cnt, r, &sz) == 0);
                CHECK(sz == used && memcmp(r, out + i, 8 * (size_t)cnt) == 0);
            }
            uint8_t *wide = with_junk(buf, size);
            CHECK(tally__codec_f64_decode(wide, wide + size + JUNK, n, pre, &sz) == 0);
            CHECK(sz == used && memcmp(pre, out, 8 * (size_t)n) == 0);
            CHECK(tally__codec_f64_decode_prefix(wide, wide + size + JUNK, n, pm, pre, &sz) == 0);
            CHECK(sz == used && memcmp(pre, out, 8 * (size_t)pm) == 0);
            free(wide);
        } else {
            double g;
            int rg = tally__codec_f64_get(buf, end, n, n - 1, &g);
            CHECK(rg == 0 || rg == TALLY_ECORRUPT);
            rg = tally__codec_f64_decode_prefix(buf, end, n, 1 + (uint32_t)(size % n), out, NULL);
            CHECK(rg == 0 || rg == TALLY_ECORRUPT);
        }
    } else {
        int64_t out[NMAX];
        int rc = tally__codec_i64_decode(buf, end, n, out, &used);
        CHECK(rc == 0 || rc == TALLY_ECORRUPT);
        int rs = tally__codec_i64_size(buf, end, n, &sz);
        CHECK(rs == 0 || rs == TALLY_ECORRUPT);
        if (rc == 0) {
            CHECK(used >= 1 && used <= size);
            CHECK(rs == 0 && sz == used);
            for (uint32_t i = 0; i < n; i++) {
                int64_t g;
                CHECK(tally__codec_i64_get(buf, end, n, i, &g) == 0);
                CHECK(g == out[i]);
            }
            int64_t pre[NMAX];
            uint32_t pm = 1 + (uint32_t)(size % n);
            CHECK(tally__codec_i64_decode_prefix(buf, end, n, pm, pre, &sz) == 0);
            CHECK(sz == used && memcmp(pre, out, 8 * (size_t)pm) == 0);
            uint8_t *wide = with_junk(buf, size);
            CHECK(tally__codec_i64_decode(wide, wide + size + JUNK, n, pre, &sz) == 0);
            CHECK(sz == used && memcmp(pre, out, 8 * (size_t)n) == 0);
            free(wide);
        } else {
            int64_t g;
            int rg = tally__codec_i64_get(buf, end, n, n - 1, &g);
            CHECK(rg == 0 || rg == TALLY_ECORRUPT);
            rg = tally__codec_i64_decode_prefix(buf, end, n, 1 + (uint32_t)(size % n), out, NULL);
            CHECK(rg == 0 || rg == TALLY_ECORRUPT);
        }
    }
    free(buf);
}

/* Values from the input: raw 8-byte words, or (shaped) a base, a slope and
 * small per-value offsets, so the fuzzer reaches the linear, FOR and delta
 * kernels and the float32 domain too. */
static uint32_t carve_values(int shaped, const uint8_t *p, size_t size, uint32_t n, uint64_t *w)
{
    if (!shaped) {
        uint32_t m = (uint32_t)(size / 8 < n ? size / 8 : n);
        for (uint32_t i = 0; i < m; i++)
            memcpy(&w[i], p + 8 * i, 8);
        return m;
    }
    if (size < 17)
        return 0;
    uint64_t base, d;
    memcpy(&base, p, 8);
    memcpy(&d, p + 8, 8);
    unsigned shift = p[16] & 63, f32 = p[16] >> 7;
    p += 17;
    size -= 17;
    uint32_t m = (uint32_t)(size < n ? size : n);
    for (uint32_t i = 0; i < m; i++) {
        uint64_t x = base + (uint64_t)i * d + ((uint64_t)p[i] << shift);
        if (f32) { /* a float32 pattern widened the codec's way: via the FPU */
            uint32_t f = (uint32_t)x;
            float fl;
            memcpy(&fl, &f, 4);
            double dd = (double)fl;
            memcpy(&x, &dd, 8);
        }
        w[i] = x;
    }
    return m;
}

static void round_trip(int is_f64, int shaped, unsigned method, const uint8_t *p, size_t size,
                       uint32_t n)
{
    uint64_t w[NMAX];
    uint32_t m = carve_values(shaped, p, size, n, w);
    if (m == 0)
        return;
    uint8_t enc[1 + 8 * NMAX + 1];
    enc[1 + 8 * m] = 0x5A;
    size_t s;
    if (is_f64) {
        double v[NMAX], out[NMAX];
        memcpy(v, w, 8 * (size_t)m);
        s = method == 0x1F ? tally__codec_f64_encode(v, m, enc)
                           : tally__codec_f64_encode_method(v, m, (method & 0x10) | (method & 0x0F), enc);
        if (s == 0) {
            CHECK(method != 0x1F);
            s = tally__codec_f64_encode(v, m, enc);
        }
        CHECK(s >= 1 && s <= tally__codec_f64_bound(m));
        CHECK(enc[1 + 8 * m] == 0x5A);
        uint8_t *buf = malloc(s);
        CHECK(buf != NULL);
        memcpy(buf, enc, s);
        size_t used = 0, sz = 0;
        CHECK(tally__codec_f64_decode(buf, buf + s, m, out, &used) == 0);
        CHECK(used == s);
        CHECK(tally__codec_f64_size(buf, buf + s, m, &sz) == 0 && sz == s);
        CHECK(memcmp(out, v, 8 * (size_t)m) == 0);
        for (uint32_t i = 0; i < m; i++) {
            double g;
            CHECK(tally__codec_f64_get(buf, buf + s, m, i, &g) == 0);
            CHECK(memcmp(&g, &v[i], 8) == 0);
        }
        uint32_t pm = 1 + (uint32_t)(s % m); /* a prefix: the first pm values, the whole size */
        CHECK(tally__codec_f64_decode_prefix(buf, buf + s, m, pm, out, &used) == 0);
        CHECK(used == s && memcmp(out, v, 8 * (size_t)pm) == 0);
        free(buf);
    } else {
        int64_t v[NMAX], out[NMAX];
        memcpy(v, w, 8 * (size_t)m);
        s = method == 0x1F ? tally__codec_i64_encode(v, m, enc)
                           : tally__codec_i64_encode_method(v, m, method & 0x07, enc);
        if (s == 0) {
            CHECK(method != 0x1F);
            s = tally__codec_i64_encode(v, m, enc);
        }
        CHECK(s >= 1 && s <= tally__codec_i64_bound(m));
        CHECK(enc[1 + 8 * m] == 0x5A);
        uint8_t *buf = malloc(s);
        CHECK(buf != NULL);
        memcpy(buf, enc, s);
        size_t used = 0, sz = 0;
        CHECK(tally__codec_i64_decode(buf, buf + s, m, out, &used) == 0);
        CHECK(used == s);
        CHECK(tally__codec_i64_size(buf, buf + s, m, &sz) == 0 && sz == s);
        CHECK(memcmp(out, v, 8 * (size_t)m) == 0);
        for (uint32_t i = 0; i < m; i++) {
            int64_t g;
            CHECK(tally__codec_i64_get(buf, buf + s, m, i, &g) == 0);
            CHECK(g == v[i]);
        }
        uint32_t pm = 1 + (uint32_t)(s % m);
        CHECK(tally__codec_i64_decode_prefix(buf, buf + s, m, pm, out, &used) == 0);
        CHECK(used == s && memcmp(out, v, 8 * (size_t)pm) == 0);
        free(buf);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    int is_f64 = data[0] & 1;
    unsigned mode = (data[0] >> 1) & 3;
    unsigned method = data[0] >> 3;
    uint32_t n = 1 + (uint32_t)(data[1] % NMAX);
    const uint8_t *p = data + 2;
    size_t rest = size - 2;
    if (mode == 0 || mode == 3)
        decode_garbage(is_f64, p, rest, n);
    if (mode == 1 || mode == 3)
        round_trip(is_f64, 0, method, p, rest, n);
    if (mode == 2)
        round_trip(is_f64, 1, method, p, rest, n);
    return 0;
}
