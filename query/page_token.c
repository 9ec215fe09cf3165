/*
 * page_token.c — encoding and validation of history pagination tokens: a
 * versioned, checksummed cursor in base64url. The byte layout and the
 * invariants are in page_token.h.
 */
#include <string.h>
#include <xxhash.h>

#include "page_token.h"

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* 6-bit value of a base64url character, or -1. */
static int b64_value(unsigned char ch)
{
    if (ch >= 'A' && ch <= 'Z')
        return ch - 'A';
    if (ch >= 'a' && ch <= 'z')
        return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9')
        return ch - '0' + 52;
    if (ch == '-')
        return 62;
    if (ch == '_')
        return 63;
    return -1;
}

static uint64_t raw_checksum(const uint8_t *raw)
{
    return XXH3_64bits_withSeed(raw, TALLY__PAGE_TOKEN_RAW - 8, TALLY__PAGE_TOKEN_SEED);
}

int tally__page_token_encode(const tally__page_cursor *c, char *out)
{
    if (!c || !out || (c->order != TALLY_HISTORY_BY_STEP && c->order != TALLY_HISTORY_BY_TIME))
        return TALLY_EINVAL;
    uint8_t raw[TALLY__PAGE_TOKEN_RAW];
    uint64_t vbits;
    memcpy(&vbits, &c->last.value, 8);
    raw[0] = TALLY__PAGE_TOKEN_VERSION;
    raw[1] = (uint8_t)c->order;
    put64(raw + 2, c->id);
    put64(raw + 10, (uint64_t)c->lo);
    put64(raw + 18, (uint64_t)c->hi);
    put64(raw + 26, (uint64_t)c->last.step);
    put64(raw + 34, (uint64_t)c->last.timestamp_ms);
    put64(raw + 42, vbits);
    put64(raw + 50, raw_checksum(raw));
    /* 58 bytes = 19 groups of 3 (76 characters) and 1 byte (2 characters). */
    size_t o = 0, i = 0;
    for (; i + 3 <= TALLY__PAGE_TOKEN_RAW; i += 3) {
        uint32_t g = (uint32_t)raw[i] << 16 | (uint32_t)raw[i + 1] << 8 | raw[i + 2];
        out[o++] = B64[g >> 18];
        out[o++] = B64[(g >> 12) & 63];
        out[o++] = B64[(g >> 6) & 63];
        out[o++] = B64[g & 63];
    }
    out[o++] = B64[raw[i] >> 2];
    out[o++] = B64[(raw[i] & 3) << 4];
    out[o] = '\0';
    return 0;
}

int tally__page_token_decode(const char *tok, size_t len, tally__page_cursor *c)
{
    if (!tok || !c || len != TALLY__PAGE_TOKEN_LEN)
        return TALLY_EINVAL;
    int v[TALLY__PAGE_TOKEN_LEN];
    for (size_t k = 0; k < TALLY__PAGE_TOKEN_LEN; k++) {
        v[k] = b64_value((unsigned char)tok[k]);
        if (v[k] < 0)
            return TALLY_EINVAL;
    }
    uint8_t raw[TALLY__PAGE_TOKEN_RAW];
    size_t o = 0, k = 0;
    for (; o + 3 <= TALLY__PAGE_TOKEN_RAW; o += 3, k += 4) {
        uint32_t g = (uint32_t)v[k] << 18 | (uint32_t)v[k + 1] << 12 | (uint32_t)v[k + 2] << 6 |
                     (uint32_t)v[k + 3];
        raw[o] = (uint8_t)(g >> 16);
        raw[o + 1] = (uint8_t)(g >> 8);
        raw[o + 2] = (uint8_t)g;
    }
    /* The last character carries 2 bits of the final byte and 4 unused bits,
     * which must be zero (canonical form, invariant 2). */
    if (v[k + 1] & 15)
        return TALLY_EINVAL;
    raw[o] = (uint8_t)(v[k] << 2 | v[k + 1] >> 4);
    if (raw[0] != TALLY__PAGE_TOKEN_VERSION)
        return TALLY_EINVAL;
    if (raw[1] != TALLY_HISTORY_BY_STEP && raw[1] != TALLY_HISTORY_BY_TIME)
        return TALLY_EINVAL;
    if (get64(raw + 50) != raw_checksum(raw))
        return TALLY_EINVAL;
    c->order = raw[1] == TALLY_HISTORY_BY_STEP ? TALLY_HISTORY_BY_STEP : TALLY_HISTORY_BY_TIME;
    c->id = get64(raw + 2);
    c->lo = (int64_t)get64(raw + 10);
    c->hi = (int64_t)get64(raw + 18);
    c->last.step = (int64_t)get64(raw + 26);
    c->last.timestamp_ms = (int64_t)get64(raw + 34);
    uint64_t vbits = get64(raw + 42);
    memcpy(&c->last.value, &vbits, 8);
    return 0;
}
