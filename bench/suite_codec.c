/*
 * suite_codec.c — `tally-bench codec`: how small and how fast the column
 * codecs (engine/codec.c) are on each kind of generated data (bench/gen.h).
 *
 * For each kind, 1M points (200k with --quick) as 20 series of n/20 points
 * (seeds 0..19, so GEN_MIX has its exact proportions), cut into chunks of
 * TALLY_CHUNK_POINTS points per series as a block would, and reports:
 *   <kind> values <method>   B/pt of the value column with that method
 *                            forced alone (chunks it cannot encode fall back
 *                            to raw, 8 B/pt, and count as such)
 *   <kind> steps|timestamps|values auto   B/pt of the automatic choice
 *   <kind> total auto        B/pt of the three columns (vs raw 24 B/pt)
 *   <kind> encode            M points/s, three columns, automatic choice
 *   <kind> decode            M points/s, three columns, whole chunks
 *   <kind> get               M values/s, random access to values (16
 *                            random indexes in each chunk, chunk by chunk)
 *   <kind> <column> share <method>  % of chunks the automatic choice gave
 *                            that method
 * Chunk summaries and block headers are not counted here (see the engine
 * suite for bytes on disk).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "codec.h"
#include "codec_methods.h"
#include "gen.h"

#define N_SERIES 20

typedef struct codec_data {
    size_t n;           /* points */
    int64_t *steps, *ts;
    double *values;
    uint32_t n_chunks;
    uint32_t *chunk_first; /* point index of each chunk */
    uint32_t *chunk_n;     /* points in each chunk */
    uint8_t *enc;          /* encoded columns, chunk after chunk */
    size_t *off;           /* per chunk: offset of its steps, ts, values (3 each) */
    size_t enc_bytes[3];   /* per column */
} codec_data;

static void encode_all(codec_data *d)
{
    uint8_t *o = d->enc;
    memset(d->enc_bytes, 0, sizeof d->enc_bytes);
    for (uint32_t k = 0; k < d->n_chunks; k++) {
        uint32_t f = d->chunk_first[k], m = d->chunk_n[k];
        size_t s;
        d->off[3 * k] = (size_t)(o - d->enc);
        s = tally__codec_i64_encode(d->steps + f, m, o);
        o += s;
        d->enc_bytes[0] += s;
        d->off[3 * k + 1] = (size_t)(o - d->enc);
        s = tally__codec_i64_encode(d->ts + f, m, o);
        o += s;
        d->enc_bytes[1] += s;
        d->off[3 * k + 2] = (size_t)(o - d->enc);
        s = tally__codec_f64_encode(d->values + f, m, o);
        o += s;
        d->enc_bytes[2] += s;
    }
}

/* Decodes everything into the given columns; returns nonzero on a mismatch. */
static int decode_all(const codec_data *d, int64_t *steps, int64_t *ts, double *values)
{
    const uint8_t *end = d->enc + d->enc_bytes[0] + d->enc_bytes[1] + d->enc_bytes[2];
    int bad = 0;
    for (uint32_t k = 0; k < d->n_chunks; k++) {
        uint32_t f = d->chunk_first[k], m = d->chunk_n[k];
        bad |= tally__codec_i64_decode(d->enc + d->off[3 * k], end, m, steps + f, NULL);
        bad |= tally__codec_i64_decode(d->enc + d->off[3 * k + 1], end, m, ts + f, NULL);
        bad |= tally__codec_f64_decode(d->enc + d->off[3 * k + 2], end, m, values + f, NULL);
    }
    return bad;
}

static void report_bpp(bench_ctx *c, const char *kind, const char *what, double bytes, size_t n,
                       double raw)
{
    char fig[128];
    snprintf(fig, sizeof fig, "%s %s", kind, what);
    char base[32];
    snprintf(base, sizeof base, "raw %.0f B/pt", raw);
    bench_report(c, fig, bytes / (double)n, "B/pt", base, raw, 0);
}

static int run_kind(bench_ctx *c, gen_kind kind, codec_data *d, int64_t *s2, int64_t *t2,
                    double *v2)
{
    const char *name = gen_kind_name(kind);
    size_t per = d->n / N_SERIES;
    d->n_chunks = 0;
    for (uint32_t s = 0; s < N_SERIES; s++) {
        size_t f = s * per;
        gen_series(kind, s, 0, per, d->steps + f, d->ts + f, d->values + f);
        for (size_t i = 0; i < per; i += TALLY_CHUNK_POINTS) {
            size_t m = per - i < TALLY_CHUNK_POINTS ? per - i : TALLY_CHUNK_POINTS;
            d->chunk_first[d->n_chunks] = (uint32_t)(f + i);
            d->chunk_n[d->n_chunks] = (uint32_t)m;
            d->n_chunks++;
        }
    }

    /* Each value method forced alone. */
    uint8_t buf[1 + 8 * TALLY_CHUNK_POINTS];
    for (unsigned dm = 0; dm < 2; dm++) {
        for (unsigned k = 0; k < TALLY__CK_N; k++) {
            unsigned method = TALLY__CODEC_METHOD(dm ? TALLY__CODEC_DOM_F32 : 0, k);
            double bytes = 0;
            for (uint32_t j = 0; j < d->n_chunks; j++) {
                uint32_t m = d->chunk_n[j];
                size_t s = tally__codec_f64_encode_method(d->values + d->chunk_first[j], m,
                                                          method, buf);
                bytes += s ? (double)s : 1.0 + 8.0 * m;
            }
            char what[64];
            snprintf(what, sizeof what, "values %s", tally__codec_method_name(1, method));
            report_bpp(c, name, what, bytes, d->n, 8);
        }
    }

    /* The automatic choice: sizes, encode and decode speed. */
    int reps = c->quick ? 3 : 7;
    double t_enc[7], t_dec[7], t_get[7];
    for (int r = 0; r < reps; r++) {
        uint64_t t0 = bench_now_ns();
        encode_all(d);
        t_enc[r] = (double)(bench_now_ns() - t0);
    }
    size_t total = d->enc_bytes[0] + d->enc_bytes[1] + d->enc_bytes[2];

    /* Which methods the automatic choice took, in % of chunks per column. */
    static const char *const col_name[3] = {"steps", "timestamps", "values"};
    for (int col = 0; col < 3; col++) {
        uint32_t hist[256] = {0};
        for (uint32_t j = 0; j < d->n_chunks; j++)
            hist[d->enc[d->off[3 * j + col]]]++;
        for (unsigned m = 0; m < 256; m++) {
            if (!hist[m])
                continue;
            char fig[128];
            snprintf(fig, sizeof fig, "%s %s share %s", name, col_name[col],
                     tally__codec_method_name(col == 2, m));
            bench_report(c, fig, 100.0 * hist[m] / d->n_chunks, "% chunks", NULL, 0, 1);
        }
    }
    report_bpp(c, name, "steps auto", (double)d->enc_bytes[0], d->n, 8);
    report_bpp(c, name, "timestamps auto", (double)d->enc_bytes[1], d->n, 8);
    report_bpp(c, name, "values auto", (double)d->enc_bytes[2], d->n, 8);
    report_bpp(c, name, "total auto", (double)total, d->n, 24);

    for (int r = 0; r < reps; r++) {
        uint64_t t0 = bench_now_ns();
        if (decode_all(d, s2, t2, v2)) {
            fprintf(stderr, "codec: decode failed on %s\n", name);
            return -1;
        }
        t_dec[r] = (double)(bench_now_ns() - t0);
    }
    if (memcmp(s2, d->steps, d->n * 8) || memcmp(t2, d->ts, d->n * 8) ||
        memcmp(v2, d->values, d->n * 8)) {
        fprintf(stderr, "codec: round trip mismatch on %s\n", name);
        return -1;
    }

    /* Random access: chunk after chunk, 16 values of each at random indexes
     * (the codec's cost, not the memory latency of a scattered chunk). */
    const uint8_t *end = d->enc + total;
    uint64_t x = 1;
    for (int r = 0; r < reps; r++) {
        double sink = 0;
        uint64_t t0 = bench_now_ns();
        for (size_t q = 0; q < (size_t)d->n_chunks * 16; q++) {
            x = x * UINT64_C(6364136223846793005) + UINT64_C(1442695040888963407);
            uint32_t j = (uint32_t)(q / 16);
            uint32_t i = (uint32_t)((x >> 20) % d->chunk_n[j]);
            double v;
            if (tally__codec_f64_get(d->enc + d->off[3 * j + 2], end, d->chunk_n[j], i, &v) == 0)
                sink += v;
        }
        t_get[r] = (double)(bench_now_ns() - t0);
        if (sink == 1.2345) /* keeps the loop */
            fprintf(stderr, " ");
    }

    char fig[128];
    double mp = (double)d->n / 1e6;
    snprintf(fig, sizeof fig, "%s encode", name);
    bench_report(c, fig, mp / (bench_median(t_enc, (size_t)reps) / 1e9), "M pt/s", NULL, 0, 1);
    snprintf(fig, sizeof fig, "%s decode", name);
    bench_report(c, fig, mp / (bench_median(t_dec, (size_t)reps) / 1e9), "M pt/s", NULL, 0, 1);
    snprintf(fig, sizeof fig, "%s get", name);
    bench_report(c, fig, (double)d->n_chunks * 16 / 1e6 / (bench_median(t_get, (size_t)reps) / 1e9),
                 "M val/s", NULL, 0, 1);
    return 0;
}

int bench_suite_codec(bench_ctx *c)
{
    codec_data d;
    memset(&d, 0, sizeof d);
    d.n = (c->quick ? 200000 : 1000000) / N_SERIES * N_SERIES;
    size_t max_chunks = d.n / TALLY_CHUNK_POINTS + N_SERIES + 1;
    d.steps = malloc(d.n * 8);
    d.ts = malloc(d.n * 8);
    d.values = malloc(d.n * 8);
    d.chunk_first = malloc(max_chunks * sizeof *d.chunk_first);
    d.chunk_n = malloc(max_chunks * sizeof *d.chunk_n);
    d.off = malloc(3 * max_chunks * sizeof *d.off);
    d.enc = malloc(3 * (d.n * 8 + max_chunks));
    int64_t *s2 = malloc(d.n * 8), *t2 = malloc(d.n * 8);
    double *v2 = malloc(d.n * 8);
    int rc = 0;
    if (!d.steps || !d.ts || !d.values || !d.chunk_first || !d.chunk_n || !d.off || !d.enc ||
        !s2 || !t2 || !v2) {
        fprintf(stderr, "codec: out of memory\n");
        rc = -1;
    }
    for (int k = 0; k < GEN_N_KINDS && rc == 0; k++)
        rc = run_kind(c, (gen_kind)k, &d, s2, t2, v2);
    free(d.steps);
    free(d.ts);
    free(d.values);
    free(d.chunk_first);
    free(d.chunk_n);
    free(d.off);
    free(d.enc);
    free(s2);
    free(t2);
    free(v2);
    return rc;
}
