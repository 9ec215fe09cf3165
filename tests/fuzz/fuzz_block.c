/*
 * fuzz_block.c — libFuzzer target for sealed blocks (engine/block.c).
 *
 * The first input byte picks a mode (byte % 4); the rest is the payload:
 *
 *   mode 0  decode garbage: the payload is a block, read every way a reader
 *           can (header, view, chunk summaries, full and partial decode).
 *           Checksums stop almost everything here; that is the point.
 *   mode 1  the same, after recomputing both checksums of the payload, so
 *           damaged headers and bodies (LZ4 ones too) reach the checks that
 *           come after the checksums.
 *   mode 2  the same, after also repairing the header's framing (magic,
 *           version, known flags, n_chunks, a raw body whose length is the
 *           rest of the payload, columns_len inside it), so arbitrary bytes
 *           reach the chunk table decoder, its checks and the column
 *           decoders.
 *   mode 3  round trip: points carved from the payload are sorted, encoded
 *           and read back; any difference from the sorted input, the brute
 *           force summaries or the chunk summaries aborts.
 *
 * Readers may return 0, TALLY_ECORRUPT or TALLY_EVERSION; anything else, a
 * crash or a sanitizer report is a bug. Seeds: tests/fuzz/corpus/fuzz_block/.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "block.h"
#include "format.h"

#define MAXP TALLY_BLOCK_MAX_POINTS

static int64_t g_steps[MAXP], g_ts[MAXP], g_ds[MAXP], g_dt[MAXP];
static double g_values[MAXP], g_dv[MAXP];
static tally_chunk_summary g_chunks[MAXP / TALLY_CHUNK_POINTS];

#define CHECK(cond)                                                                           \
    do {                                                                                      \
        if (!(cond))                                                                          \
            abort();                                                                          \
    } while (0)

static int reader_rc_ok(int rc)
{
    return rc == 0 || rc == TALLY_ECORRUPT || rc == TALLY_EVERSION;
}

static void read_all_ways(const uint8_t *p, size_t len)
{
    tally_block_summary sum;
    uint32_t block_len;
    uint64_t id;
    int rc = tally__block_header(p, p + len, &sum, &block_len, &id);
    CHECK(reader_rc_ok(rc));
    if (rc == 0)
        CHECK(block_len <= len);
    tally__block_view v;
    memset(&v, 0, sizeof v);
    rc = tally__block_view_open(&v, p, p + len);
    CHECK(reader_rc_ok(rc) || rc == TALLY_ENOMEM);
    if (rc == 0) {
        rc = tally__block_view_chunks(&v, g_chunks, MAXP / TALLY_CHUNK_POINTS);
        CHECK(rc == 0 || rc == TALLY_ECORRUPT);
        rc = tally__block_view_decode(&v, 0, v.n_points, g_ds, g_dt, g_dv);
        CHECK(rc == 0 || rc == TALLY_ECORRUPT);
        uint32_t half = v.n_points / 3;
        rc = tally__block_view_decode(&v, half, v.n_points - half, NULL, g_dt, g_dv);
        CHECK(rc == 0 || rc == TALLY_ECORRUPT);
        rc = tally__block_view_decode(&v, half, v.n_points - half, g_ds, NULL, NULL);
        CHECK(rc == 0 || rc == TALLY_ECORRUPT);
    }
    tally__block_view_free(&v);
}

static void patch_checksums(uint8_t *p, size_t len)
{
    tally_disk_block_header h;
    if (len < sizeof h)
        return;
    memcpy(&h, p, sizeof h);
    size_t avail = len - sizeof h;
    h.body_checksum = XXH3_64bits(p + sizeof h, h.body_len <= avail ? h.body_len : avail);
    h.header_checksum = XXH3_64bits(&h, offsetof(tally_disk_block_header, header_checksum));
    memcpy(p, &h, sizeof h);
}

static void repair_framing(uint8_t *p, size_t len)
{
    tally_disk_block_header h;
    if (len < sizeof h)
        return;
    memcpy(&h, p, sizeof h);
    h.magic = TALLY_BLOCK_MAGIC;
    h.version = TALLY_BLOCK_VERSION;
    h.flags &= (uint16_t)(TALLY_BLOCK_F_KNOWN & ~TALLY_BLOCK_F_LZ4);
    h.n_points = 1 + h.n_points % MAXP;
    h.n_chunks = (h.n_points + TALLY_CHUNK_POINTS - 1) / TALLY_CHUNK_POINTS;
    h.body_len = h.raw_body_len = (uint32_t)(len - sizeof h);
    h.columns_len %= h.body_len + 1;
    memcpy(p, &h, sizeof h);
}

/* Carves points from the payload. byte 0: style (and bit 7: big), bytes
 * 1-2: point count. */
static uint32_t carve(const uint8_t *d, size_t size)
{
    if (size < 3)
        return 0;
    /* Up to 1024 points (8 chunks) unless bit 7 asks for up to 65536 (and
     * several chunk table groups): big blocks are slow under the fuzzer's
     * instrumentation, so most runs stay small. */
    uint8_t style = (uint8_t)((d[0] & 0x7F) % 3);
    uint32_t want = (uint32_t)d[1] | (uint32_t)d[2] << 8;
    want = 1 + (d[0] & 0x80 ? want % MAXP : want % 1024);
    d += 3;
    size -= 3;
    uint32_t n = 0;
    if (style == 0) { /* 24 raw bytes a point */
        for (; n < want && size >= 24; n++, d += 24, size -= 24) {
            memcpy(&g_steps[n], d, 8);
            memcpy(&g_ts[n], d + 8, 8);
            memcpy(&g_values[n], d + 16, 8);
        }
        return n;
    }
    if (size == 0)
        return 0;
    /* Styles 1 and 2: small deltas and a value alphabet, the shape of real
     * metrics. Style 1 consumes the payload once; style 2 cycles through it
     * to build up to 65536 points from a short input. */
    static const double alphabet[8] = {0.0, -0.0, 1.0, 0.5, INFINITY, -INFINITY, NAN, 1e-310};
    int64_t step = 0, ts = 1700000000000;
    double val = 1.0;
    size_t at = 0;
    while (n < want) {
        if (at + 3 > size) {
            if (style == 1)
                break;
            at = 0;
            if (size < 3)
                break;
        }
        uint8_t a = d[at], b = d[at + 1], c = d[at + 2];
        at += 3;
        step += (int8_t)a;
        ts += (int64_t)(int8_t)b * 7;
        switch (c >> 5) {
        case 0:
            val = alphabet[c & 7];
            break;
        case 1:
        case 2:
            val += ((int)(c & 31) - 16) * 0.001;
            break;
        case 3:
            val = (double)(float)(val * 0.99);
            break;
        case 4: { /* raw bits, from wherever the cursor is */
            uint64_t bits = 0;
            size_t take = size - at < 8 ? size - at : 8;
            memcpy(&bits, d + at, take);
            at += take;
            memcpy(&val, &bits, 8);
            break;
        }
        default: /* repeat the value */
            break;
        }
        g_steps[n] = step;
        g_ts[n] = ts;
        g_values[n] = val;
        n++;
    }
    return n;
}

static int same_dbl(double a, double b)
{
    if (isnan(a) && isnan(b))
        return 1;
    return memcmp(&a, &b, 8) == 0;
}

static void round_trip(const uint8_t *d, size_t size)
{
    static uint8_t *out, *scratch; /* sized once for the largest block */
    if (!out) {
        out = malloc(tally__block_bound(MAXP));
        scratch = malloc(tally__block_encode_scratch_size(MAXP));
        CHECK(out && scratch);
    }
    uint32_t n = carve(d, size);
    if (n == 0)
        return;
    n = tally__block_sort_points(g_steps, g_ts, g_values, n);
    CHECK(n >= 1);
    for (uint32_t i = 1; i < n; i++) {
        CHECK(g_steps[i - 1] <= g_steps[i]);
        if (g_steps[i - 1] == g_steps[i])
            CHECK(g_ts[i - 1] <= g_ts[i]);
    }
    CHECK(tally__block_bound(n) <= tally__block_bound(MAXP));
    CHECK(tally__block_encode_scratch_size(n) <= tally__block_encode_scratch_size(MAXP));
    size_t len = tally__block_encode(0xF022, g_steps, g_ts, g_values, n, out, scratch);
    CHECK(len > 0 && len <= tally__block_bound(n));

    tally_block_summary s;
    uint32_t block_len;
    uint64_t id;
    CHECK(tally__block_header(out, out + len, &s, &block_len, &id) == 0);
    CHECK(block_len == len && id == 0xF022 && s.n_points == n);
    CHECK(s.first.step == g_steps[0] && s.last.step == g_steps[n - 1]);
    CHECK(s.first.timestamp_ms == g_ts[0] && s.last.timestamp_ms == g_ts[n - 1]);
    CHECK(!memcmp(&s.first.value, &g_values[0], 8) && !memcmp(&s.last.value, &g_values[n - 1], 8));
    double mn = NAN, mx = NAN, sm = 0.0;
    uint32_t n_nan = 0;
    for (uint32_t i = 0; i < n; i++) {
        double x = g_values[i];
        if (isnan(x)) {
            n_nan++;
            continue;
        }
        sm += x;
        if (isnan(mn) || x < mn)
            mn = x;
        if (isnan(mx) || x > mx)
            mx = x;
    }
    CHECK(s.n_nan == n_nan && same_dbl(s.min_value, mn) && same_dbl(s.max_value, mx) &&
          same_dbl(s.sum, sm));

    tally__block_view v;
    memset(&v, 0, sizeof v);
    CHECK(tally__block_view_open(&v, out, out + len) == 0);
    CHECK(tally__block_view_decode(&v, 0, n, g_ds, g_dt, g_dv) == 0);
    for (uint32_t i = 0; i < n; i++)
        CHECK(g_ds[i] == g_steps[i] && g_dt[i] == g_ts[i] && !memcmp(&g_dv[i], &g_values[i], 8));
    CHECK(tally__block_view_chunks(&v, g_chunks, MAXP / TALLY_CHUNK_POINTS) == 0);
    for (uint32_t k = 0; k < s.n_chunks; k++) {
        const tally_chunk_summary *c = &g_chunks[k];
        uint32_t f = k * TALLY_CHUNK_POINTS, l = f + c->n_points - 1;
        CHECK(c->first_index == f && l < n);
        CHECK(c->first.step == g_steps[f] && c->last.step == g_steps[l]);
        CHECK(c->first.timestamp_ms == g_ts[f] && c->last.timestamp_ms == g_ts[l]);
        CHECK(!memcmp(&c->first.value, &g_values[f], 8) && !memcmp(&c->last.value, &g_values[l], 8));
        CHECK(c->argmin >= f && c->argmin <= l && c->argmax >= f && c->argmax <= l);
        if (c->n_nan < c->n_points) {
            CHECK(same_dbl(g_values[c->argmin], c->min_value));
            CHECK(same_dbl(g_values[c->argmax], c->max_value));
        }
    }
    /* A range picked by the payload's last bytes. */
    uint32_t from = (uint32_t)d[size - 1] * 131 % n;
    uint32_t cnt = (uint32_t)d[size / 2] * 17 % (n - from + 1);
    CHECK(tally__block_view_decode(&v, from, cnt, g_ds, NULL, g_dv) == 0);
    for (uint32_t i = 0; i < cnt; i++)
        CHECK(g_ds[i] == g_steps[from + i] && !memcmp(&g_dv[i], &g_values[from + i], 8));
    tally__block_view_free(&v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t mode = data[0] % 4;
    data++;
    size--;
    if (mode == 3) {
        round_trip(data, size);
        return 0;
    }
    /* An exact-size copy, so a read past the end is a sanitizer report. */
    uint8_t *p = malloc(size ? size : 1);
    if (!p)
        return 0;
    memcpy(p, data, size);
    if (mode == 2)
        repair_framing(p, size);
    if (mode >= 1)
        patch_checksums(p, size);
    read_all_ways(p, size);
    free(p);
    return 0;
}
