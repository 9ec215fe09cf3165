/*
 * fuzz_native_frame.c — libFuzzer target for the native ingest frame
 * decoder (server/native_frame.c).
 *
 *   decode garbage  the whole input, as a frame of its exact length (a
 *                   private copy, so an overread is an ASan report):
 *                   decoding must never crash, and a frame that decodes
 *                   must re-encode (raw) to a frame that decodes to the same
 *                   series.
 *   past checksum   the same bytes with payload_len, raw_len (when not
 *                   compressed) and the checksum fixed up, so that the record
 *                   parser and the LZ4 path see garbage too.
 *   round trip      series carved from the input (count, id and key
 *                   lengths, point counts, column bytes, LZ4 or not) encode
 *                   to a frame that decodes to exactly those series, bit for
 *                   bit; flipping one byte of it (position and mask carved
 *                   from the input) makes decoding fail.
 *
 * Seeds: tests/fuzz/corpus/fuzz_native_frame/ (generated, not committed).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "native_frame.h"

#define CHECK(cond)                                                                           \
    do {                                                                                      \
        if (!(cond))                                                                          \
            abort();                                                                          \
    } while (0)

static int same(const tally_series_batch *a, size_t na, const tally_frame_decoder *d)
{
    size_t j = 0;
    for (size_t i = 0; i < na; i++) {
        if (a[i].n_points == 0)
            continue;
        if (j >= d->n_series)
            return 0;
        const tally_series_batch *b = &d->series[j++];
        if (a[i].run_id_len != b->run_id_len || memcmp(a[i].run_id, b->run_id, b->run_id_len) ||
            a[i].key_len != b->key_len || memcmp(a[i].key, b->key, b->key_len) ||
            a[i].n_points != b->n_points ||
            memcmp(a[i].steps, b->steps, 8 * (size_t)b->n_points) ||
            memcmp(a[i].timestamps_ms, b->timestamps_ms, 8 * (size_t)b->n_points) ||
            memcmp(a[i].values, b->values, 8 * (size_t)b->n_points))
            return 0;
    }
    return j == d->n_series;
}

static uint8_t take8(const uint8_t **p, size_t *n)
{
    if (!*n)
        return 0;
    (*n)--;
    return *(*p)++;
}

static void decode_garbage(const uint8_t *data, size_t size)
{
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy)
        return;
    memcpy(copy, data, size);
    tally_frame_decoder d, d2;
    tally_frame_decoder_init(&d);
    tally_frame_decoder_init(&d2);
    char err[256];
    if (tally_frame_decode(&d, copy, size, 1u << 24, err, sizeof err) == 0) {
        uint8_t *again;
        size_t len;
        CHECK(tally_frame_encode(d.series, d.n_series, 0, &again, &len) == 0);
        CHECK(tally_frame_decode(&d2, again, len, 0, err, sizeof err) == 0);
        CHECK(same(d.series, d.n_series, &d2));
        tally_frame_buf_free(again);
    }
    free(copy);
    tally_frame_decoder_free(&d);
    tally_frame_decoder_free(&d2);
}

static void past_checksum(const uint8_t *data, size_t size)
{
    if (size < 32 || size - 32 > UINT32_MAX)
        return;
    uint8_t *copy = malloc(size);
    if (!copy)
        return;
    memcpy(copy, data, size);
    uint32_t pl = (uint32_t)(size - 32);
    for (int i = 0; i < 4; i++)
        copy[16 + i] = (uint8_t)(pl >> (8 * i));
    if (!(copy[6] & TALLY_FRAME_F_LZ4))
        memcpy(copy + 20, copy + 16, 4);
    uint64_t h = XXH3_64bits(copy + 32, pl);
    for (int i = 0; i < 8; i++)
        copy[24 + i] = (uint8_t)(h >> (8 * i));
    decode_garbage(copy, size);
    free(copy);
}

static void round_trip(const uint8_t *data, size_t size)
{
    const uint8_t *p = data;
    size_t n = size;
    unsigned flags = take8(&p, &n) & 1 ? TALLY_FRAME_F_LZ4 : 0;
    size_t n_series = take8(&p, &n) % 9;
    tally_series_batch s[8];
    char ids[8][TALLY_FRAME_MAX_RUN_ID];
    /* Columns: one shared pool of carved 8-byte words, reused cyclically. */
    int64_t pool[512];
    for (size_t i = 0; i < 512; i++) {
        uint64_t w = 0;
        for (int k = 0; k < 8; k++)
            w |= (uint64_t)take8(&p, &n) << (8 * k);
        pool[i] = (int64_t)w;
        if (!n)
            break;
    }
    for (size_t i = 0; i < n_series; i++) {
        size_t rl = 1 + take8(&p, &n) % 64, kl = 1 + take8(&p, &n) % 40;
        for (size_t k = 0; k < rl; k++)
            ids[i][k] = (char)take8(&p, &n);
        uint32_t np = take8(&p, &n) % 170; /* 3 columns of np words fit in the pool */
        s[i].run_id = ids[i];
        s[i].run_id_len = rl;
        s[i].key = ids[i]; /* any bytes: the codec does not interpret keys */
        s[i].key_len = kl <= rl ? kl : rl;
        s[i].n_points = np;
        s[i].steps = pool;
        s[i].timestamps_ms = pool + np;
        s[i].values = (const double *)(const void *)(pool + 2 * np);
    }
    uint8_t *frame;
    size_t len;
    CHECK(tally_frame_encode(s, n_series, flags, &frame, &len) == 0);
    tally_frame_decoder d;
    tally_frame_decoder_init(&d);
    char err[256];
    CHECK(tally_frame_decode(&d, frame, len, 0, err, sizeof err) == 0);
    CHECK(same(s, n_series, &d));
    size_t at = ((size_t)take8(&p, &n) << 8 | take8(&p, &n)) % len;
    uint8_t mask = take8(&p, &n);
    if (mask) {
        frame[at] ^= mask;
        CHECK(tally_frame_decode(&d, frame, len, 0, err, sizeof err) != 0);
    }
    tally_frame_buf_free(frame);
    tally_frame_decoder_free(&d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    decode_garbage(data, size);
    past_checksum(data, size);
    round_trip(data, size);
    return 0;
}
