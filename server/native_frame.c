/*
 * native_frame.c — encoder and validating decoder of the native ingest frame
 * (layout and invariants in native_frame.h).
 *
 * The decoder never trusts a length before comparing it with an end
 * pointer: every read of the payload goes through `need()`, which checks
 * that the bytes lie inside [p, end). On a little-endian host with an
 * 8-byte-aligned, uncompressed payload the series columns point straight
 * into the caller's frame (no copy); otherwise the payload is copied (or
 * decompressed) once into the decoder's aligned scratch.
 */
#include "native_frame.h"

#include <lz4.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>
#include <zlib.h>

#if !defined(__BYTE_ORDER__) || !defined(__ORDER_LITTLE_ENDIAN__)
#error "native_frame.c needs __BYTE_ORDER__ (GCC or Clang)"
#endif
#define HOST_LE (__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__)

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | (unsigned)p[1] << 8); }
static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t rd64(const uint8_t *p) { return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32; }
static void wr16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
static void wr32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static void wr64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* The frame checksum of the payload as transmitted: XXH3-64 (seed 0), or
 * with TALLY_FRAME_F_CRC32 zlib's CRC-32 in the low 32 bits. */
static uint64_t frame_checksum(unsigned flags, const uint8_t *payload, size_t len)
{
    if (flags & TALLY_FRAME_F_CRC32)
        return (uint64_t)crc32_z(crc32_z(0L, Z_NULL, 0), payload, len);
    return XXH3_64bits(payload, len);
}

static int fail(int code, char *err, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(int code, char *err, size_t cap, const char *fmt, ...)
{
    if (err && cap) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, cap, fmt, ap);
        va_end(ap);
    }
    return code;
}

void tally_frame_decoder_init(tally_frame_decoder *d) { memset(d, 0, sizeof *d); }

void tally_frame_decoder_free(tally_frame_decoder *d)
{
    if (!d)
        return;
    free(d->raw);
    free(d->series);
    memset(d, 0, sizeof *d);
}

static int reserve_raw(tally_frame_decoder *d, size_t n)
{
    if (d->raw_cap >= n)
        return 0;
    size_t cap = d->raw_cap ? d->raw_cap : 4096;
    while (cap < n)
        cap *= 2;
    /* malloc alignment (16 on the targets we build for) is enough for the
     * 8-byte columns; contents are overwritten, so no copy of the old. */
    free(d->raw);
    d->raw = malloc(cap);
    d->raw_cap = d->raw ? cap : 0;
    return d->raw ? 0 : TALLY_ENOMEM;
}

static int reserve_series(tally_frame_decoder *d, size_t n)
{
    if (d->series_cap >= n)
        return 0;
    size_t cap = d->series_cap ? d->series_cap : 64;
    while (cap < n)
        cap *= 2;
    tally_series_batch *s = realloc(d->series, cap * sizeof *s);
    if (!s)
        return TALLY_ENOMEM;
    d->series = s;
    d->series_cap = cap;
    return 0;
}

#if !HOST_LE
static void swap64_inplace(uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++, p += 8) {
        uint64_t v = rd64(p);
        memcpy(p, &v, 8);
    }
}
#endif

int tally_frame_decode(tally_frame_decoder *d, const void *frame, size_t len, size_t max_raw,
                       char *err, size_t cap)
{
    const uint8_t *f = frame;
    d->n_series = 0;
    d->n_points = 0;
    if (max_raw == 0 || max_raw > TALLY_FRAME_MAX_RAW)
        max_raw = TALLY_FRAME_MAX_RAW;

    /* (1) header */
    if (len < TALLY_FRAME_HEADER_BYTES)
        return fail(TALLY_ECORRUPT, err, cap, "frame of %zu bytes is shorter than its %u-byte header",
                    len, TALLY_FRAME_HEADER_BYTES);
    if (memcmp(f, TALLY_FRAME_MAGIC_BYTES, 4) != 0)
        return fail(TALLY_ECORRUPT, err, cap, "bad magic: not a Tally ingest frame");
    uint16_t version = rd16(f + 4), flags = rd16(f + 6);
    if (version != TALLY_FRAME_VERSION)
        return fail(TALLY_EVERSION, err, cap, "unsupported frame version %u (this server reads %u)",
                    (unsigned)version, TALLY_FRAME_VERSION);
    if (flags & ~TALLY_FRAME_KNOWN_FLAGS)
        return fail(TALLY_ECORRUPT, err, cap, "unknown frame flags 0x%04x", (unsigned)flags);
    uint32_t n_series = rd32(f + 8), n_points = rd32(f + 12);
    uint32_t payload_len = rd32(f + 16), raw_len = rd32(f + 20);
    uint64_t checksum = rd64(f + 24);

    /* (2) lengths */
    if ((uint64_t)payload_len != (uint64_t)len - TALLY_FRAME_HEADER_BYTES)
        return fail(TALLY_ECORRUPT, err, cap,
                    "payload_len %u does not match the %zu payload bytes received", payload_len,
                    len - TALLY_FRAME_HEADER_BYTES);
    if (raw_len > max_raw)
        return fail(TALLY_ETOOBIG, err, cap, "raw payload of %u bytes exceeds the limit of %zu",
                    raw_len, max_raw);
    int lz4 = (flags & TALLY_FRAME_F_LZ4) != 0;
    if (!lz4 && raw_len != payload_len)
        return fail(TALLY_ECORRUPT, err, cap, "raw_len %u differs from payload_len %u without compression",
                    raw_len, payload_len);

    /* (3) checksum of the payload as transmitted */
    const uint8_t *payload = f + TALLY_FRAME_HEADER_BYTES;
    if (frame_checksum(flags, payload, payload_len) != checksum)
        return fail(TALLY_ECORRUPT, err, cap, "payload checksum mismatch (%s)",
                    (flags & TALLY_FRAME_F_CRC32) ? "CRC-32" : "XXH3-64");

    /* (4) the raw payload: in place, copied to align, or decompressed */
    const uint8_t *raw = payload;
    if (lz4) {
        if (reserve_raw(d, raw_len ? raw_len : 1) != 0)
            return fail(TALLY_ENOMEM, err, cap, "out of memory for a %u-byte payload", raw_len);
        if (payload_len > (uint32_t)LZ4_MAX_INPUT_SIZE || raw_len > (uint32_t)LZ4_MAX_INPUT_SIZE)
            return fail(TALLY_ECORRUPT, err, cap, "LZ4 payload too large");
        int got = LZ4_decompress_safe((const char *)payload, (char *)d->raw, (int)payload_len,
                                      (int)raw_len);
        if (got < 0 || (uint32_t)got != raw_len)
            return fail(TALLY_ECORRUPT, err, cap, "LZ4 payload does not decompress to raw_len %u bytes",
                        raw_len);
        raw = d->raw;
    } else if (!HOST_LE || ((uintptr_t)payload & 7u) != 0) {
        if (reserve_raw(d, raw_len ? raw_len : 1) != 0)
            return fail(TALLY_ENOMEM, err, cap, "out of memory for a %u-byte payload", raw_len);
        memcpy(d->raw, payload, raw_len);
        raw = d->raw;
    }

    /* (5) records */
    if (reserve_series(d, n_series ? (n_series < 65536 ? n_series : 65536) : 1) != 0)
        return fail(TALLY_ENOMEM, err, cap, "out of memory for %u series", n_series);
    const uint8_t *p = raw, *end = raw + raw_len;
    uint64_t points_seen = 0;
    for (uint32_t i = 0; i < n_series; i++) {
        if ((size_t)(end - p) < TALLY_FRAME_RECORD_BYTES)
            return fail(TALLY_ECORRUPT, err, cap, "series %u: record header past the payload end", i);
        uint16_t rlen = rd16(p), klen = rd16(p + 2);
        uint32_t n = rd32(p + 4);
        if (rlen == 0 || rlen > TALLY_FRAME_MAX_RUN_ID)
            return fail(TALLY_ECORRUPT, err, cap, "series %u: run id length %u not in 1..%u", i,
                        (unsigned)rlen, TALLY_FRAME_MAX_RUN_ID);
        if (klen == 0 || klen > TALLY_FRAME_MAX_KEY)
            return fail(TALLY_ECORRUPT, err, cap, "series %u: key length %u not in 1..%u", i,
                        (unsigned)klen, TALLY_FRAME_MAX_KEY);
        size_t strs = (size_t)rlen + klen;
        size_t pad = (8 - ((TALLY_FRAME_RECORD_BYTES + strs) & 7)) & 7;
        size_t head = TALLY_FRAME_RECORD_BYTES + strs + pad;
        if ((size_t)(end - p) < head)
            return fail(TALLY_ECORRUPT, err, cap, "series %u: run id and key past the payload end", i);
        for (size_t k = 0; k < pad; k++)
            if (p[TALLY_FRAME_RECORD_BYTES + strs + k] != 0)
                return fail(TALLY_ECORRUPT, err, cap, "series %u: nonzero padding", i);
        /* n is u32, so 24 * n fits in 64 bits; compare before adding. */
        uint64_t cols = (uint64_t)n * 24u;
        if ((uint64_t)(end - p) - head < cols)
            return fail(TALLY_ECORRUPT, err, cap, "series %u: %u points run past the payload end", i, n);
        points_seen += n;
        if (points_seen > n_points)
            return fail(TALLY_ECORRUPT, err, cap, "series %u: more points than the header's n_points %u",
                        i, n_points);
        const uint8_t *c = p + head;
        if (n > 0) {
            if (d->n_series == d->series_cap && reserve_series(d, d->series_cap + 1) != 0)
                return fail(TALLY_ENOMEM, err, cap, "out of memory for %u series", n_series);
#if !HOST_LE
            /* raw is our own copy here (see above): swap in place. */
            swap64_inplace((uint8_t *)(uintptr_t)c, 3 * (size_t)n);
#endif
            tally_series_batch *s = &d->series[d->n_series++];
            s->run_id = (const char *)(p + TALLY_FRAME_RECORD_BYTES);
            s->run_id_len = rlen;
            s->key = (const char *)(p + TALLY_FRAME_RECORD_BYTES + rlen);
            s->key_len = klen;
            s->n_points = n;
            /* c is 8-aligned: raw is (checked above or malloc'd) and head
             * and every column are multiples of 8. */
            s->steps = (const int64_t *)(const void *)c;
            s->timestamps_ms = (const int64_t *)(const void *)(c + 8 * (size_t)n);
            s->values = (const double *)(const void *)(c + 16 * (size_t)n);
        }
        p = c + cols;
    }
    if (p != end)
        return fail(TALLY_ECORRUPT, err, cap, "%zu trailing bytes after %u series records",
                    (size_t)(end - p), n_series);
    if (points_seen != n_points)
        return fail(TALLY_ECORRUPT, err, cap, "records hold %llu points, header says %u",
                    (unsigned long long)points_seen, n_points);
    d->n_points = points_seen;
    return 0;
}

static size_t record_size(const tally_series_batch *s)
{
    size_t strs = s->run_id_len + s->key_len;
    size_t head = TALLY_FRAME_RECORD_BYTES + strs;
    head += (8 - (head & 7)) & 7;
    return head + 24 * (size_t)s->n_points;
}

size_t tally_frame_raw_size(const tally_series_batch *s, size_t n)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += record_size(&s[i]);
    return total;
}

void tally_frame_buf_free(uint8_t *buf) { free(buf); }

int tally_frame_encode(const tally_series_batch *s, size_t n, unsigned flags, uint8_t **out,
                       size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    if ((flags & ~TALLY_FRAME_KNOWN_FLAGS) || n > UINT32_MAX)
        return TALLY_EINVAL;
    uint64_t n_points = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i].run_id_len == 0 || s[i].run_id_len > TALLY_FRAME_MAX_RUN_ID ||
            s[i].key_len == 0 || s[i].key_len > TALLY_FRAME_MAX_KEY)
            return TALLY_EINVAL;
        n_points += s[i].n_points;
    }
    size_t raw_len = tally_frame_raw_size(s, n);
    if (n_points > UINT32_MAX || raw_len > TALLY_FRAME_MAX_RAW)
        return TALLY_EINVAL;

    uint8_t *raw = malloc(raw_len ? raw_len : 1);
    if (!raw)
        return TALLY_ENOMEM;
    uint8_t *p = raw;
    for (size_t i = 0; i < n; i++) {
        const tally_series_batch *b = &s[i];
        wr16(p, (uint16_t)b->run_id_len);
        wr16(p + 2, (uint16_t)b->key_len);
        wr32(p + 4, b->n_points);
        p += TALLY_FRAME_RECORD_BYTES;
        memcpy(p, b->run_id, b->run_id_len);
        memcpy(p + b->run_id_len, b->key, b->key_len);
        size_t strs = b->run_id_len + b->key_len;
        size_t pad = (8 - ((TALLY_FRAME_RECORD_BYTES + strs) & 7)) & 7;
        memset(p + strs, 0, pad);
        p += strs + pad;
        for (uint32_t k = 0; k < b->n_points; k++, p += 8)
            wr64(p, (uint64_t)b->steps[k]);
        for (uint32_t k = 0; k < b->n_points; k++, p += 8)
            wr64(p, (uint64_t)b->timestamps_ms[k]);
        for (uint32_t k = 0; k < b->n_points; k++, p += 8) {
            uint64_t bits;
            memcpy(&bits, &b->values[k], 8);
            wr64(p, bits);
        }
    }

    size_t payload_cap = raw_len;
    if (flags & TALLY_FRAME_F_LZ4)
        payload_cap = (size_t)LZ4_compressBound((int)raw_len);
    uint8_t *frame = malloc(TALLY_FRAME_HEADER_BYTES + payload_cap + 1);
    if (!frame) {
        free(raw);
        return TALLY_ENOMEM;
    }
    uint8_t *payload = frame + TALLY_FRAME_HEADER_BYTES;
    size_t payload_len;
    if (flags & TALLY_FRAME_F_LZ4) {
        int c = LZ4_compress_default((const char *)raw, (char *)payload, (int)raw_len,
                                     (int)payload_cap);
        if (c <= 0 && raw_len > 0) {
            free(raw);
            free(frame);
            return TALLY_EINVAL;
        }
        payload_len = (size_t)(c > 0 ? c : 0);
        if (raw_len == 0) {
            /* LZ4 encodes an empty input as one zero byte. */
            payload[0] = 0;
            payload_len = 1;
        }
    } else {
        memcpy(payload, raw, raw_len);
        payload_len = raw_len;
    }
    free(raw);

    memcpy(frame, TALLY_FRAME_MAGIC_BYTES, 4);
    wr16(frame + 4, (uint16_t)TALLY_FRAME_VERSION);
    wr16(frame + 6, (uint16_t)flags);
    wr32(frame + 8, (uint32_t)n);
    wr32(frame + 12, (uint32_t)n_points);
    wr32(frame + 16, (uint32_t)payload_len);
    wr32(frame + 20, (uint32_t)raw_len);
    wr64(frame + 24, frame_checksum(flags, payload, payload_len));
    *out = frame;
    *out_len = TALLY_FRAME_HEADER_BYTES + payload_len;
    return 0;
}
