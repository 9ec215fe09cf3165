/*
 * wal.c — encoding and decoding of WAL records (layout in wal.h). The
 * writer thread that appends records, and replay at open, are in engine.c
 * and recovery.c; this file only turns batches into bytes and back.
 *
 * Producers encode their own records (copy + LZ4) in their own threads, so
 * that work runs in parallel; the writer only stamps the sequence number and
 * checksum (tally__wal_seal_record) before writing.
 */
#include <lz4.h>
#include <string.h>
#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

#include "alloc.h"
#include "wal.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "Tally's on-disk format is little-endian; this host is not"
#endif

#define MAX_NAME_LEN 1024u

int tally__wal_batch_size(const tally_series_batch *series, size_t n_series, size_t *raw_len)
{
    if (n_series == 0 || n_series > UINT32_MAX)
        return TALLY_EINVAL;
    uint64_t len = 4;
    for (size_t i = 0; i < n_series; i++) {
        const tally_series_batch *s = &series[i];
        if (!s->run_id || !s->key || s->run_id_len == 0 || s->key_len == 0 ||
            s->run_id_len > MAX_NAME_LEN || s->key_len > MAX_NAME_LEN)
            return TALLY_EINVAL;
        if (s->n_points > 0 && (!s->steps || !s->timestamps_ms || !s->values))
            return TALLY_EINVAL;
        len += 8 + s->run_id_len + s->key_len + 24ull * s->n_points;
        if (len > TALLY_WAL_MAX_RECORD / 2)
            return TALLY_ETOOBIG;
    }
    *raw_len = (size_t)len;
    return 0;
}

/* Column transforms that make a batch cheap for LZ4 (wal.h: "Raw batch
 * payload"): int64 columns as wrapping differences from the previous value
 * (the first from 0), and doubles XORed with the previous value's bits then
 * split into 8 byte planes, so constant and float32-origin bytes form runs. */
static void delta_encode(const int64_t *v, size_t n, uint8_t *out)
{
    uint64_t prev = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t x;
        memcpy(&x, &v[i], 8);
        uint64_t d = x - prev;
        memcpy(out + 8 * i, &d, 8);
        prev = x;
    }
}

static void delta_decode(const uint8_t *in, size_t n, int64_t *out)
{
    uint64_t prev = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t d;
        memcpy(&d, in + 8 * i, 8);
        prev += d;
        memcpy(&out[i], &prev, 8);
    }
}

static void shuffle_encode(const double *v, size_t n, uint8_t *out)
{
    uint64_t prev = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t x;
        memcpy(&x, &v[i], 8);
        uint64_t d = x ^ prev;
        prev = x;
        for (int b = 0; b < 8; b++)
            out[(size_t)b * n + i] = (uint8_t)(d >> (8 * b));
    }
}

static void shuffle_decode(const uint8_t *in, size_t n, double *out)
{
    uint64_t prev = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t d = 0;
        for (int b = 0; b < 8; b++)
            d |= (uint64_t)in[(size_t)b * n + i] << (8 * b);
        prev ^= d;
        memcpy(&out[i], &prev, 8);
    }
}

static uint8_t *put(uint8_t *p, const void *src, size_t n)
{
    memcpy(p, src, n);
    return p + n;
}

void tally__wal_scratch_free(tally__wal_scratch *s)
{
    if (!s)
        return;
    tally__free(s->raw);
    tally__free(s->out);
    tally__free(s);
}

static int grow(uint8_t **buf, size_t *cap, size_t need)
{
    if (*cap >= need)
        return 0;
    uint8_t *nb = tally__realloc(*buf, need);
    if (!nb)
        return TALLY_ENOMEM;
    *buf = nb;
    *cap = need;
    return 0;
}

int tally__wal_encode_batch(const tally_series_batch *series, size_t n_series,
                            tally__wal_scratch *scratch, tally__wal_record *rec)
{
    size_t raw_len;
    int rc = tally__wal_batch_size(series, n_series, &raw_len);
    if (rc)
        return rc;
    size_t bound = (size_t)LZ4_compressBound((int)raw_len);
    if (grow(&scratch->raw, &scratch->raw_cap, raw_len) ||
        grow(&scratch->out, &scratch->out_cap,
             TALLY_WAL_RECORD_HDR_SIZE + (bound > raw_len ? bound : raw_len)))
        return TALLY_ENOMEM;
    /* Build the raw payload, then compress it behind the header if that pays. */
    uint8_t *raw = scratch->raw, *buf = scratch->out;
    uint8_t *p = raw;
    uint32_t n32 = (uint32_t)n_series;
    p = put(p, &n32, 4);
    for (size_t i = 0; i < n_series; i++) {
        uint16_t rl = (uint16_t)series[i].run_id_len, kl = (uint16_t)series[i].key_len;
        p = put(p, &rl, 2);
        p = put(p, &kl, 2);
        p = put(p, &series[i].n_points, 4);
        p = put(p, series[i].run_id, rl);
        p = put(p, series[i].key, kl);
    }
    for (size_t i = 0; i < n_series; i++) {
        size_t n = series[i].n_points;
        delta_encode(series[i].steps, n, p);
        delta_encode(series[i].timestamps_ms, n, p + 8 * n);
        shuffle_encode(series[i].values, n, p + 16 * n);
        p += 24 * n;
    }
    tally__wal_record_hdr h = {0};
    h.magic = TALLY_WAL_RECORD_MAGIC;
    h.type = TALLY_WAL_TYPE_BATCH;
    h.raw_len = (uint32_t)raw_len;
    int clen = LZ4_compress_fast((const char *)raw, (char *)buf + TALLY_WAL_RECORD_HDR_SIZE,
                                 (int)raw_len, (int)bound, 2);
    if (clen > 0 && (size_t)clen < raw_len - raw_len / 8) {
        h.flags = TALLY_WAL_FLAG_LZ4;
        h.stored_len = (uint32_t)clen;
    } else {
        memcpy(buf + TALLY_WAL_RECORD_HDR_SIZE, raw, raw_len);
        h.stored_len = (uint32_t)raw_len;
    }
    memcpy(buf, &h, sizeof h);
    rec->buf = buf;
    rec->len = TALLY_WAL_RECORD_HDR_SIZE + h.stored_len;
    rec->raw_len = raw_len;
    return 0;
}

static uint64_t record_checksum(const uint8_t *rec, size_t len)
{
    XXH3_state_t st;
    tally__wal_record_hdr h;
    memcpy(&h, rec, sizeof h);
    h.checksum = 0;
    XXH3_64bits_reset(&st);
    XXH3_64bits_update(&st, &h, sizeof h);
    XXH3_64bits_update(&st, rec + sizeof h, len - sizeof h);
    return XXH3_64bits_digest(&st);
}

void tally__wal_seal_record(tally__wal_record *rec, uint64_t seq)
{
    memcpy(rec->buf + offsetof(tally__wal_record_hdr, seq), &seq, 8);
    uint64_t sum = record_checksum(rec->buf, rec->len);
    memcpy(rec->buf + offsetof(tally__wal_record_hdr, checksum), &sum, 8);
}

/* Decodes a raw batch payload, calling fn per series. */
static int decode_batch(const uint8_t *p, size_t len, tally__wal_series_fn fn, void *ctx)
{
    const uint8_t *end = p + len;
    uint32_t n_series;
    if (len < 4)
        return TALLY_ECORRUPT;
    memcpy(&n_series, p, 4);
    p += 4;
    /* First pass: names and counts, checked against the payload length. */
    const uint8_t *names = p;
    uint64_t cols = 0;
    for (uint32_t i = 0; i < n_series; i++) {
        if ((size_t)(end - p) < 8)
            return TALLY_ECORRUPT;
        uint16_t rl, kl;
        uint32_t n;
        memcpy(&rl, p, 2);
        memcpy(&kl, p + 2, 2);
        memcpy(&n, p + 4, 4);
        p += 8;
        if (rl == 0 || kl == 0 || (size_t)(end - p) < (size_t)rl + kl)
            return TALLY_ECORRUPT;
        p += rl + kl;
        cols += 24ull * n;
    }
    if ((uint64_t)(end - p) != cols)
        return TALLY_ECORRUPT;
    const uint8_t *col = p;
    p = names;
    size_t max_n = 0;
    for (uint32_t i = 0, off = 0; i < n_series; i++) {
        uint32_t n;
        uint16_t rl, kl;
        memcpy(&rl, names + off, 2);
        memcpy(&kl, names + off + 2, 2);
        memcpy(&n, names + off + 4, 4);
        off += 8u + rl + kl;
        if (n > max_n)
            max_n = n;
    }
    int64_t *steps = tally__malloc(max_n * 8), *tss = tally__malloc(max_n * 8);
    double *vals = tally__malloc(max_n * 8);
    int rc = steps && tss && vals ? 0 : TALLY_ENOMEM;
    for (uint32_t i = 0; i < n_series && rc == 0; i++) {
        tally_series_batch s;
        uint16_t rl, kl;
        memcpy(&rl, p, 2);
        memcpy(&kl, p + 2, 2);
        memcpy(&s.n_points, p + 4, 4);
        s.run_id = (const char *)p + 8;
        s.run_id_len = rl;
        s.key = (const char *)p + 8 + rl;
        s.key_len = kl;
        p += 8 + rl + kl;
        delta_decode(col, s.n_points, steps);
        delta_decode(col + 8ull * s.n_points, s.n_points, tss);
        shuffle_decode(col + 16ull * s.n_points, s.n_points, vals);
        s.steps = steps;
        s.timestamps_ms = tss;
        s.values = vals;
        col += 24ull * s.n_points;
        rc = fn(ctx, &s);
    }
    tally__free(steps);
    tally__free(tss);
    tally__free(vals);
    return rc;
}

int tally__wal_read_record(const uint8_t *p, const uint8_t *end, uint64_t expect_seq,
                           uint8_t **scratch, size_t *scratch_cap, tally__wal_series_fn fn,
                           void *ctx, size_t *rec_len)
{
    tally__wal_record_hdr h;
    if ((size_t)(end - p) < sizeof h)
        return 1;
    memcpy(&h, p, sizeof h);
    if (h.magic != TALLY_WAL_RECORD_MAGIC || h.type != TALLY_WAL_TYPE_BATCH ||
        (h.flags & ~TALLY_WAL_FLAG_LZ4) || h.reserved != 0 || h.seq != expect_seq ||
        h.stored_len > TALLY_WAL_MAX_RECORD || h.raw_len > TALLY_WAL_MAX_RECORD || h.raw_len < 4 ||
        (size_t)(end - p) - sizeof h < h.stored_len)
        return 1;
    size_t len = sizeof h + h.stored_len;
    if (record_checksum(p, len) != h.checksum)
        return 1;
    const uint8_t *payload = p + sizeof h;
    if (h.flags & TALLY_WAL_FLAG_LZ4) {
        if (*scratch_cap < h.raw_len) {
            uint8_t *nb = tally__realloc(*scratch, h.raw_len);
            if (!nb)
                return TALLY_ENOMEM;
            *scratch = nb;
            *scratch_cap = h.raw_len;
        }
        int d = LZ4_decompress_safe((const char *)payload, (char *)*scratch, (int)h.stored_len,
                                    (int)h.raw_len);
        if (d < 0 || (uint32_t)d != h.raw_len)
            return 1;
        payload = *scratch;
    } else if (h.raw_len != h.stored_len) {
        return 1;
    }
    int rc = decode_batch(payload, h.raw_len, fn, ctx);
    if (rc == TALLY_ECORRUPT)
        return 1; /* a checksummed record that does not parse: treat as the end */
    if (rc)
        return rc;
    *rec_len = len;
    return 0;
}

void tally__wal_file_hdr_init(tally__wal_file_hdr *h, uint64_t number, uint64_t first_seq)
{
    memset(h, 0, sizeof *h);
    h->magic = TALLY_WAL_FILE_MAGIC;
    h->version = TALLY_WAL_VERSION;
    h->number = number;
    h->first_seq = first_seq;
    h->checksum = XXH3_64bits(h, offsetof(tally__wal_file_hdr, checksum));
}

int tally__wal_file_hdr_check(const tally__wal_file_hdr *h, uint64_t number)
{
    if (h->magic != TALLY_WAL_FILE_MAGIC || h->number != number ||
        h->checksum != XXH3_64bits(h, offsetof(tally__wal_file_hdr, checksum)))
        return TALLY_ECORRUPT;
    if (h->version != TALLY_WAL_VERSION)
        return TALLY_EVERSION;
    return 0;
}
