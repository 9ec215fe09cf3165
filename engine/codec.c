/*
 * codec.c — column codecs for one chunk (1..TALLY_CHUNK_POINTS values) of
 * steps, timestamps (int64) or values (float64). See codec.h for the
 * contract, codec_methods.h for the method numbers and docs/codec.md for the
 * byte layouts and the measurements behind the method set.
 *
 * Every method is a small "kernel" applied to a column of unsigned 64-bit
 * words u[0..n) in one of three domains:
 *
 *   int64 column   u = (uint64_t)v                       (domain 0, int64)
 *   float64 column u = ord64(bits of v)                  (domain 0, float64)
 *                  u = ord32(float32 bits of v)          (domain 1, float32-origin)
 *
 * where ordN(b) = b ^ (sign(b) ? all ones : top bit). It maps the IEEE order
 * of non-NaN values onto unsigned integer order, so nearby values have
 * nearby words and frame-of-reference and delta coding work on them.
 *
 *   encoded chunk:  +--------+-------------------------------+
 *                   | method | kernel parameters and payload |
 *                   +--------+-------------------------------+
 *
 * All arithmetic on words is modulo 2^64 (uint64_t), so the linear fits,
 * residuals and deltas are exact for any input, including INT64_MIN/MAX and
 * fits whose slope overflows: decode repeats the same wrapping sums.
 *
 * Invariants (numbered as in codec.h, plus this file's own):
 *  (1) decode(encode(x)) == x bit for bit.
 *  (2) encode writes at most 1 + 8n bytes (the bound): RAW always fits and
 *      any other method is written only when it is strictly smaller.
 *  (3) Every read is bounded by `end`: fixed-size parts are checked before
 *      they are read, bit-packed payloads are checked as a whole before
 *      unpacking, and the unpacker uses 8-byte loads only where 8 bytes
 *      remain before `end` (near `end`, the last 8 bytes or a zero-padded
 *      copy of the bytes left; a byte-wise tail when the whole buffer is
 *      shorter).
 *  (4) The encoder computes the exact size of every method it can use on
 *      the chunk (closed form for the fixed-width kernels, by encoding for
 *      XOR and SHUF) and writes the smallest, except that a sequential
 *      kernel (DELTA, DELTA2, RLE, XOR, SHUF: O(n) `get`) must beat a
 *      random-access one (RAW, CONST, LINEAR, FOR) by more than
 *      RANDOM_ACCESS_SLACK bytes. A tie keeps the candidate offered first,
 *      in the order RAW, CONST, LINEAR, FOR, DELTA, DELTA2, RLE, XOR, SHUF,
 *      the float64 domain before the float32 domain: the earlier ones decode
 *      faster.
 *  (5) Packed fields are little-endian bit streams: value j of width w
 *      occupies bits [j*w, (j+1)*w) of the payload, bit k being bit k%8 of
 *      byte k/8. Padding bits of the last byte are written as 0 and ignored
 *      on read.
 *  (6) The float32 domain is used only when every value of the chunk is in
 *      the image of f32_to_f64_bits(), an exact integer bijection defined
 *      here (not by the FPU), so NaN payloads, -0.0 and float32 subnormals
 *      round-trip on any platform and under any FTZ/DAZ mode.
 *  (7) Nothing here allocates: scratch is on the stack (a chunk is at most
 *      128 values; LZ4's compression state is on its own stack).
 */
#include <lz4.h>
#include <string.h>

#include "codec.h"
#include "codec_methods.h"

#define RETURN_ERROR_IF(cond, code)                                                          \
    do {                                                                                     \
        if (cond)                                                                            \
            return (code);                                                                   \
    } while (0)

#define N_MAX TALLY_CHUNK_POINTS

#if defined(__GNUC__)
#define LIKELY(x) __builtin_expect(!!(x), 1)
#define UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define LIKELY(x) (x)
#define UNLIKELY(x) (x)
#endif

_Static_assert(TALLY_CHUNK_POINTS <= 128, "chunk scratch buffers assume 128 points");
_Static_assert(sizeof(double) == 8, "double must be IEEE binary64");

/* ------------------------------------------------------------------------ */
/* Little-endian loads and stores                                            */
/* ------------------------------------------------------------------------ */

#ifdef __BYTE_ORDER__
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define TALLY_CODEC_BIG_ENDIAN 1
#endif
#endif

static inline uint64_t load64(const uint8_t *p)
{
    uint64_t x;
    memcpy(&x, p, 8);
#ifdef TALLY_CODEC_BIG_ENDIAN
    x = __builtin_bswap64(x);
#endif
    return x;
}

static inline void store64(uint8_t *p, uint64_t x)
{
#ifdef TALLY_CODEC_BIG_ENDIAN
    x = __builtin_bswap64(x);
#endif
    memcpy(p, &x, 8);
}

static inline uint32_t load32(const uint8_t *p)
{
    uint32_t x;
    memcpy(&x, p, 4);
#ifdef TALLY_CODEC_BIG_ENDIAN
    x = __builtin_bswap32(x);
#endif
    return x;
}

static inline void store32(uint8_t *p, uint32_t x)
{
#ifdef TALLY_CODEC_BIG_ENDIAN
    x = __builtin_bswap32(x);
#endif
    memcpy(p, &x, 4);
}

/* ------------------------------------------------------------------------ */
/* Word mappings                                                             */
/* ------------------------------------------------------------------------ */

static inline uint64_t ord64(uint64_t b)
{
    return b ^ ((0 - (b >> 63)) | (UINT64_C(1) << 63));
}

static inline uint64_t unord64(uint64_t u)
{
    return u ^ (((u >> 63) - 1) | (UINT64_C(1) << 63));
}

static inline uint32_t ord32(uint32_t b)
{
    return b ^ ((0 - (b >> 31)) | UINT32_C(0x80000000));
}

static inline uint32_t unord32(uint32_t u)
{
    return u ^ (((u >> 31) - 1) | UINT32_C(0x80000000));
}

static inline unsigned clz64(uint64_t x) /* x != 0 */
{
    return (unsigned)__builtin_clzll(x);
}

static inline unsigned ctz64(uint64_t x) /* x != 0 */
{
    return (unsigned)__builtin_ctzll(x);
}

static inline unsigned width_of(uint64_t range)
{
    return range ? 64 - clz64(range) : 0;
}

/* The float32 -> float64 bit mapping of invariant (6): the IEEE conversion for
 * every non-NaN float, and for NaNs the payload shifted into place (what
 * x86 and ARM do for quiet NaNs, but defined here for signalling ones too). */
static uint64_t f32_to_f64_bits_slow(uint32_t f)
{
    uint64_t s = (uint64_t)(f & UINT32_C(0x80000000)) << 32;
    uint32_t e = (f >> 23) & 0xFF;
    uint64_t m = f & UINT32_C(0x7FFFFF);
    if (e == 0xFF)
        return s | (UINT64_C(0x7FF) << 52) | (m << 29);
    if (e == 0) {
        if (m == 0)
            return s;
        unsigned p = 63 - clz64(m); /* 0..22: the leading bit of the subnormal */
        return s | ((uint64_t)(p + 874) << 52) | ((m << (52 - p)) & ((UINT64_C(1) << 52) - 1));
    }
    return s | ((uint64_t)(e + 896) << 52) | (m << 29);
}

static inline uint64_t f32_to_f64_bits(uint32_t f)
{
    uint32_t e = (f >> 23) & 0xFF;
    if (LIKELY(e - 1 < 254)) /* normal: the common case, branch-free */
        return ((uint64_t)(f & UINT32_C(0x80000000)) << 32) | ((uint64_t)(e + 896) << 52) |
               ((uint64_t)(f & UINT32_C(0x7FFFFF)) << 29);
    return f32_to_f64_bits_slow(f);
}

/* The inverse of f32_to_f64_bits: 0 and *out when b is in its image, else -1. */
static inline int f64_to_f32_bits(uint64_t b, uint32_t *out)
{
    uint32_t s = (uint32_t)(b >> 32) & UINT32_C(0x80000000);
    uint32_t e = (uint32_t)(b >> 52) & 0x7FF;
    uint64_t m = b & ((UINT64_C(1) << 52) - 1);
    if (e >= 897 && e <= 1150) { /* float32 normal range */
        if (m & ((UINT64_C(1) << 29) - 1))
            return -1;
        *out = s | ((e - 896) << 23) | (uint32_t)(m >> 29);
        return 0;
    }
    if (e == 0x7FF) {
        if (m & ((UINT64_C(1) << 29) - 1))
            return -1;
        *out = s | UINT32_C(0x7F800000) | (uint32_t)(m >> 29);
        return 0;
    }
    if (e == 0) {
        if (m)
            return -1;
        *out = s;
        return 0;
    }
    if (e >= 874 && e <= 896) { /* float32 subnormal range */
        uint64_t sig = m | (UINT64_C(1) << 52);
        unsigned sh = 926 - e; /* 30..52 */
        if (sig & ((UINT64_C(1) << sh) - 1))
            return -1;
        *out = s | (uint32_t)(sig >> sh);
        return 0;
    }
    return -1;
}

/* ------------------------------------------------------------------------ */
/* Varints (LEB128) and zigzag                                               */
/* ------------------------------------------------------------------------ */

static inline uint64_t zz_enc(uint64_t x) /* x is an int64 in two's complement */
{
    return (x << 1) ^ (0 - (x >> 63));
}

static inline uint64_t zz_dec(uint64_t z)
{
    return (z >> 1) ^ (0 - (z & 1));
}

static inline size_t varint_len(uint64_t x)
{
    return x ? (width_of(x) + 6) / 7 : 1;
}

static inline size_t varint_put(uint8_t *p, uint64_t x)
{
    size_t k = 0;
    while (x >= 0x80) {
        p[k++] = (uint8_t)(x | 0x80);
        x >>= 7;
    }
    p[k++] = (uint8_t)x;
    return k;
}

/* Reads a varint at *pp (< end). At most 10 bytes; the 10th may only hold
 * the top bit. A varint of up to 8 bytes with 8 bytes readable is read with
 * one load: the first byte without a continuation bit ends it, and the 7-bit
 * groups are gathered in three shift-and-merge steps (8 -> 14 -> 28 -> 56
 * bits). Longer ones, and those near end, take the byte loop. */
static inline int varint_get(const uint8_t **pp, const uint8_t *end, uint64_t *out)
{
    const uint8_t *p = *pp;
    if (LIKELY(end - p >= 8)) {
        uint64_t x = load64(p);
        if (!(x & 0x80)) {
            *pp = p + 1;
            *out = x & 0x7F;
            return 0;
        }
        uint64_t stop = ~x & UINT64_C(0x8080808080808080); /* bit 7 of each last byte */
        if (LIKELY(stop)) {
            x &= (stop ^ (stop - 1)) & UINT64_C(0x7F7F7F7F7F7F7F7F); /* its bytes, 7 bits */
            x = (x & UINT64_C(0x007F007F007F007F)) | ((x >> 1) & UINT64_C(0x3F803F803F803F80));
            x = (x & UINT64_C(0x00003FFF00003FFF)) | ((x >> 2) & UINT64_C(0x0FFFC0000FFFC000));
            x = (x & UINT64_C(0x000000000FFFFFFF)) | ((x >> 4) & UINT64_C(0x00FFFFFFF0000000));
            *pp = p + ctz64(stop) / 8 + 1;
            *out = x;
            return 0;
        }
    }
    uint64_t x = 0;
    for (unsigned k = 0; k < 10; k++) {
        RETURN_ERROR_IF(p >= end, TALLY_ECORRUPT);
        uint8_t b = *p++;
        if (k == 9)
            RETURN_ERROR_IF(b > 1, TALLY_ECORRUPT);
        x |= (uint64_t)(b & 0x7F) << (7 * k);
        if (!(b & 0x80)) {
            *pp = p;
            *out = x;
            return 0;
        }
    }
    return TALLY_ECORRUPT;
}

/* ------------------------------------------------------------------------ */
/* Bit packing (invariant 5)                                                 */
/* ------------------------------------------------------------------------ */

static inline size_t packed_bytes(uint32_t count, unsigned w)
{
    return ((size_t)count * w + 7) / 8;
}

static inline uint64_t mask_of(unsigned w) /* 1..64 */
{
    return w == 64 ? ~UINT64_C(0) : (UINT64_C(1) << w) - 1;
}

/* A bit writer: whole 8-byte words while running, the tail bytes at the end,
 * so it writes exactly ceil(bits / 8) bytes. */
typedef struct bitw {
    uint8_t *p;    /* next byte to write */
    uint64_t acc;  /* pending bits, the oldest in bit 0 */
    unsigned fill; /* pending bit count, 0..63 */
} bitw;

static inline void bitw_put(bitw *b, uint64_t x, unsigned w) /* x < 2^w, w <= 64 */
{
    if (w == 0)
        return;
    b->acc |= x << b->fill;
    if (b->fill + w >= 64) {
        store64(b->p, b->acc);
        b->p += 8;
        unsigned used = 64 - b->fill;
        b->acc = used < 64 ? x >> used : 0;
        b->fill = b->fill + w - 64;
    } else {
        b->fill += w;
    }
}

static inline uint8_t *bitw_end(bitw *b)
{
    while (b->fill > 0) {
        *b->p++ = (uint8_t)b->acc;
        b->acc >>= 8;
        b->fill = b->fill > 8 ? b->fill - 8 : 0;
    }
    return b->p;
}

/* Bits [bit, bit + w) of p, where the caller has checked bit + w <= 8 * avail.
 * Reads only p[0..avail). */
static inline uint64_t bits_get(const uint8_t *p, size_t avail, size_t bit, unsigned w)
{
    if (w == 0)
        return 0;
    size_t by = bit >> 3;
    unsigned sh = (unsigned)(bit & 7);
    uint64_t x;
    if (LIKELY(by + 8 <= avail)) {
        x = load64(p + by) >> sh;
        if (sh + w > 64)
            x |= (uint64_t)p[by + 8] << (64 - sh); /* by + 8 < avail: the value ends there */
    } else if (avail >= 8) {
        /* The value lies within the last 8 bytes (it ends by avail and
         * starts after avail - 8): one load of them, shifted by 8..63. */
        x = load64(p + avail - 8) >> (8 * (unsigned)(by + 8 - avail) + sh);
    } else {
        size_t last = (bit + w - 1) >> 3;
        x = 0;
        for (size_t k = by; k <= last; k++)
            x |= (k - by) < 8 ? (uint64_t)p[k] << (8 * (k - by)) : 0;
        x >>= sh;
        if (last - by == 8)
            x |= (uint64_t)p[last] << (64 - sh);
    }
    return x & mask_of(w);
}

#if defined(__GNUC__)
#define ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define ALWAYS_INLINE inline
#endif

/* Whole groups of 8 values of width W (W bytes each) that count holds and
 * whose bytes, with the 8 after them an 8-byte load may touch, lie within
 * avail: the groups a loop of 8-byte loads may take. */
static ALWAYS_INLINE uint32_t whole_groups(size_t avail, uint32_t count, unsigned W)
{
    size_t fit = avail >= W + 8 ? (avail - 8) / W : 0;
    return count / 8 < fit ? count / 8 : (uint32_t)fit;
}

/* X(W) for each packed width W in 1..32 or 1..64: the switch cases that give
 * every width its own inlined copy of a group loop (unpack, sums, affine). */
#define TALLY_WIDTHS_8_(X, k)                                                                 \
    X(8 * (k) + 1) X(8 * (k) + 2) X(8 * (k) + 3) X(8 * (k) + 4) X(8 * (k) + 5) X(8 * (k) + 6) \
    X(8 * (k) + 7) X(8 * (k) + 8)
#define TALLY_WIDTHS_1_32(X)                                                                  \
    TALLY_WIDTHS_8_(X, 0) TALLY_WIDTHS_8_(X, 1) TALLY_WIDTHS_8_(X, 2) TALLY_WIDTHS_8_(X, 3)
#define TALLY_WIDTHS_1_64(X)                                                                  \
    TALLY_WIDTHS_1_32(X) TALLY_WIDTHS_8_(X, 4) TALLY_WIDTHS_8_(X, 5) TALLY_WIDTHS_8_(X, 6)    \
    TALLY_WIDTHS_8_(X, 7)

/* Value j (0..7) of width W of the group of 8 at q (W bytes, and 8 more
 * readable after them), masked: one 8-byte load, and a ninth byte only for
 * widths above 56 that straddle it. */
static ALWAYS_INLINE uint64_t group_field(const uint8_t *q, const unsigned j, const unsigned W,
                                          uint64_t mask)
{
    const unsigned bit = j * W, sh = bit & 7;
    uint64_t x = load64(q + bit / 8) >> sh;
    if (W > 56 && sh + W > 64)
        x |= (uint64_t)q[bit / 8 + 8] << ((64 - sh) & 63);
    return x & mask;
}

/* Unpacks whole groups of 8 values of the constant width W (a group is W
 * bytes) while a group and the 8 bytes after it lie before avail, and writes
 * value i + base + i * d. Returns how many values it wrote (a multiple of 8);
 * the caller finishes with bits_get(). Inlined once per width, so the shifts
 * and masks are constants and the loop is straight-line code. */
static ALWAYS_INLINE uint32_t unpack_groups(const uint8_t *p, size_t avail, uint32_t count,
                                            const unsigned W, uint64_t base, uint64_t d,
                                            uint64_t *out)
{
    const uint64_t mask = W == 64 ? ~UINT64_C(0) : (UINT64_C(1) << W) - 1;
    uint32_t i = 0;
    uint64_t line = base;
    const uint8_t *q = p;
    for (; i + 8 <= count && (size_t)(q - p) + W + 8 <= avail; i += 8, q += W) {
#define TALLY_UNPACK_ONE_(j) out[i + (j)] = group_field(q, (j), W, mask) + line + (j) * d
        TALLY_UNPACK_ONE_(0);
        TALLY_UNPACK_ONE_(1);
        TALLY_UNPACK_ONE_(2);
        TALLY_UNPACK_ONE_(3);
        TALLY_UNPACK_ONE_(4);
        TALLY_UNPACK_ONE_(5);
        TALLY_UNPACK_ONE_(6);
        TALLY_UNPACK_ONE_(7);
#undef TALLY_UNPACK_ONE_
        line += 8 * d;
    }
    return i;
}

/* Writes base + i * d to out[0..count). Kept the plain loop: GCC 12's loop
 * vectorizer miscompiles the same fill written as four interleaved chains
 * (out[2] came out as base at -O3; a standalone check is in
 * docs/benchmarks.md, "A compiler bug found"), and the products here are
 * independent, so the scalar loop pipelines as well. */
static void fill_linear(uint64_t *out, uint32_t count, uint64_t base, uint64_t d)
{
    for (uint32_t i = 0; i < count; i++)
        out[i] = base + (uint64_t)i * d;
}

/* out[i] = base + i * d + (value i of width w at p), for i < count, where p
 * has avail readable bytes, at least packed_bytes(count, w). */
static void unpack(const uint8_t *p, size_t avail, uint32_t count, unsigned w, uint64_t base,
                   uint64_t d, uint64_t *out)
{
    uint32_t i = 0;
    switch (w) {
    case 0:
        fill_linear(out, count, base, d);
        return;
#define TALLY_UNPACK_CASE_(W)                                                                 \
    case W:                                                                                   \
        i = unpack_groups(p, avail, count, W, base, d, out);                                  \
        break;
        TALLY_WIDTHS_1_64(TALLY_UNPACK_CASE_)
#undef TALLY_UNPACK_CASE_
    default:
        break;
    }
    for (; i < count; i++)
        out[i] = base + (uint64_t)i * d + bits_get(p, avail, (size_t)i * w, w);
}

/* Packs count values (each < 2^w) and returns the bytes written. */
static size_t pack(uint8_t *out, const uint64_t *v, uint32_t count, unsigned w)
{
    if (w == 0)
        return 0;
    bitw b = {out, 0, 0};
    for (uint32_t i = 0; i < count; i++)
        bitw_put(&b, v[i], w);
    return (size_t)(bitw_end(&b) - out);
}

/* ------------------------------------------------------------------------ */
/* Domains                                                                   */
/* ------------------------------------------------------------------------ */

typedef enum dom {
    DOM_I64 = 0, /* int64 column: base as zz varint, 8-byte words */
    DOM_F64 = 1, /* float64 bits: base as 8 fixed bytes, 8-byte words */
    DOM_F32 = 2  /* float32-origin: base as zz varint, 4-byte words */
} dom;

static inline unsigned dom_word(dom d)
{
    return d == DOM_F32 ? 4 : 8;
}

static inline unsigned dom_bits(dom d)
{
    return d == DOM_F32 ? 32 : 64;
}

static inline size_t base_len(dom d, uint64_t base)
{
    return d == DOM_F64 ? 8 : varint_len(zz_enc(base));
}

static inline size_t base_put(dom d, uint8_t *p, uint64_t base)
{
    if (d == DOM_F64) {
        store64(p, base);
        return 8;
    }
    return varint_put(p, zz_enc(base));
}

static inline int base_get(dom d, const uint8_t **pp, const uint8_t *end, uint64_t *out)
{
    if (d == DOM_F64) {
        RETURN_ERROR_IF(end - *pp < 8, TALLY_ECORRUPT);
        *out = load64(*pp);
        *pp += 8;
        return 0;
    }
    uint64_t z;
    int rc = varint_get(pp, end, &z);
    if (rc)
        return rc;
    *out = zz_dec(z);
    return 0;
}

static inline int zz_get(const uint8_t **pp, const uint8_t *end, uint64_t *out)
{
    uint64_t z;
    int rc = varint_get(pp, end, &z);
    if (rc)
        return rc;
    *out = zz_dec(z);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Kernel statistics and plans (encoder)                                     */
/* ------------------------------------------------------------------------ */

/* One pass over u[0..n) gives the exact size of every fixed-width kernel. */
typedef struct kstats {
    uint64_t u0;             /* first word */
    uint64_t d_fit;          /* rounded slope through first and last */
    int64_t r0_min, r0_max;  /* u[i] - u0, as int64 */
    int64_t r1_min, r1_max;  /* u[i] - u0 - i * d_fit, as int64 */
    int64_t d_min, d_max;    /* u[i] - u[i-1], i >= 1 */
    int64_t dd_min, dd_max;  /* second differences, i >= 2 */
    uint64_t d1;             /* u[1] - u[0], or 0 */
    uint32_t n_runs;         /* runs of equal words */
} kstats;

static void kstats_of(const uint64_t *u, uint32_t n, kstats *s)
{
    uint64_t u0 = u[0];
    s->u0 = u0;
    uint64_t d_fit = 0;
    if (n > 1) {
        int64_t diff = (int64_t)(u[n - 1] - u0);
        int64_t m = (int64_t)n - 1;
        int64_t q = diff / m, r = diff % m;
        if (2 * (r < 0 ? -r : r) >= m)
            q += r < 0 ? -1 : 1;
        d_fit = (uint64_t)q;
    }
    s->d_fit = d_fit;
    int64_t r0_min = 0, r0_max = 0, r1_min = 0, r1_max = 0;
    int64_t d_min = INT64_MAX, d_max = INT64_MIN, dd_min = INT64_MAX, dd_max = INT64_MIN;
    uint64_t prev = u0, prev_d = 0, line = u0;
    uint32_t runs = 1;
    for (uint32_t i = 1; i < n; i++) {
        uint64_t x = u[i];
        line += d_fit;
        int64_t r0 = (int64_t)(x - u0), r1 = (int64_t)(x - line);
        r0_min = r0 < r0_min ? r0 : r0_min;
        r0_max = r0 > r0_max ? r0 : r0_max;
        r1_min = r1 < r1_min ? r1 : r1_min;
        r1_max = r1 > r1_max ? r1 : r1_max;
        uint64_t d = x - prev;
        d_min = (int64_t)d < d_min ? (int64_t)d : d_min;
        d_max = (int64_t)d > d_max ? (int64_t)d : d_max;
        if (i >= 2) {
            int64_t dd = (int64_t)(d - prev_d);
            dd_min = dd < dd_min ? dd : dd_min;
            dd_max = dd > dd_max ? dd : dd_max;
        }
        runs += x != prev;
        prev_d = d;
        prev = x;
    }
    if (n < 2)
        d_min = d_max = 0;
    if (n < 3)
        dd_min = dd_max = 0;
    s->r0_min = r0_min;
    s->r0_max = r0_max;
    s->r1_min = r1_min;
    s->r1_max = r1_max;
    s->d_min = d_min;
    s->d_max = d_max;
    s->dd_min = dd_min;
    s->dd_max = dd_max;
    s->d1 = n > 1 ? u[1] - u0 : 0;
    s->n_runs = runs;
}

/* What the encoder will write. */
typedef struct plan {
    unsigned method; /* method byte */
    dom dm;          /* domain of the words */
    unsigned w;      /* packed width */
    uint64_t base;   /* CONST/LINEAR/FOR base, DELTA/DELTA2 first word */
    uint64_t d;      /* LINEAR/FOR slope, DELTA dmin, DELTA2 ddmin */
    uint64_t d1;     /* DELTA2 first delta */
    size_t size;     /* exact encoded size */
    const uint8_t *pre; /* XOR/SHUF: the already encoded chunk, else NULL */
} plan;

static inline unsigned dom_code(dom d)
{
    return d == DOM_F32 ? TALLY__CODEC_DOM_F32 : 0;
}

static inline int wanted(int only, unsigned method)
{
    return only < 0 || (unsigned)only == method;
}

/* Kernels whose `get` is O(1): RAW, CONST, LINEAR, FOR. */
static inline int random_access(unsigned method)
{
    unsigned k = method & 0x0F;
    return k == TALLY__CK_RAW || k == TALLY__CK_CONST || k == TALLY__CK_LINEAR ||
           k == TALLY__CK_FOR;
}

/* Bytes a sequential kernel must save over a random-access one to replace
 * it: queries read single points at pixel-column edges and at sampled steps,
 * so O(1) access is worth a few bytes per 128-point chunk (< 0.02 B/pt). */
#define RANDOM_ACCESS_SLACK TALLY__CODEC_RANDOM_ACCESS_SLACK

static inline void offer(plan *best, const plan *p)
{
    size_t slack = random_access(best->method) && !random_access(p->method) ? RANDOM_ACCESS_SLACK : 0;
    if (p->size + slack < best->size)
        *best = *p;
}

/* Offers RAW, CONST, LINEAR, FOR, DELTA, DELTA2 (and RLE when rle) for u. */
static void offer_kernels(const uint64_t *u, uint32_t n, dom dm, int rle, int only, plan *best)
{
    kstats s;
    kstats_of(u, n, &s);
    unsigned dc = dom_code(dm);
    plan p;
    memset(&p, 0, sizeof p);
    p.dm = dm;

    p.method = dc | TALLY__CK_RAW;
    p.size = 1 + (size_t)n * dom_word(dm);
    if (wanted(only, p.method))
        offer(best, &p);

    if (s.r0_min == 0 && s.r0_max == 0) {
        p.method = dc | TALLY__CK_CONST;
        p.base = s.u0;
        p.size = 1 + base_len(dm, s.u0);
        if (wanted(only, p.method))
            offer(best, &p);
    }
    if (s.r1_min == 0 && s.r1_max == 0) {
        p.method = dc | TALLY__CK_LINEAR;
        p.base = s.u0;
        p.d = s.d_fit;
        p.size = 1 + base_len(dm, s.u0) + varint_len(zz_enc(s.d_fit));
        if (wanted(only, p.method))
            offer(best, &p);
    }

    p.method = dc | TALLY__CK_FOR;
    if (wanted(only, p.method)) {
        /* Slope 0 (plain FOR) or the fit, whichever packs narrower. */
        unsigned w0 = width_of((uint64_t)s.r0_max - (uint64_t)s.r0_min);
        unsigned w1 = width_of((uint64_t)s.r1_max - (uint64_t)s.r1_min);
        if (w1 < w0) {
            p.w = w1;
            p.base = s.u0 + (uint64_t)s.r1_min;
            p.d = s.d_fit;
        } else {
            p.w = w0;
            p.base = s.u0 + (uint64_t)s.r0_min;
            p.d = 0;
        }
        p.size = 2 + base_len(dm, p.base) + varint_len(zz_enc(p.d)) + packed_bytes(n, p.w);
        offer(best, &p);
    }

    p.method = dc | TALLY__CK_DELTA;
    if (wanted(only, p.method)) {
        p.w = width_of((uint64_t)s.d_max - (uint64_t)s.d_min);
        p.base = s.u0;
        p.d = (uint64_t)s.d_min;
        p.size = 2 + base_len(dm, p.base) + varint_len(zz_enc(p.d)) + packed_bytes(n - 1, p.w);
        offer(best, &p);
    }

    p.method = dc | TALLY__CK_DELTA2;
    if (wanted(only, p.method)) {
        p.w = width_of((uint64_t)s.dd_max - (uint64_t)s.dd_min);
        p.base = s.u0;
        p.d = (uint64_t)s.dd_min;
        p.d1 = s.d1;
        p.size = 2 + base_len(dm, p.base) + varint_len(zz_enc(p.d)) + varint_len(zz_enc(p.d1)) +
                 packed_bytes(n > 2 ? n - 2 : 0, p.w);
        offer(best, &p);
    }

    p.method = dc | TALLY__CK_RLE;
    /* Every run takes at least 2 bytes: skip the sizing when RLE cannot win. */
    if (rle && wanted(only, p.method) && 2 + 2 * (size_t)s.n_runs < best->size) {
        size_t size = 1 + varint_len(s.n_runs);
        uint32_t start = 0;
        for (uint32_t i = 1; i <= n; i++) {
            if (i == n || u[i] != u[i - 1]) {
                size += base_len(dm, u[start]) + varint_len(i - start - 1);
                start = i;
            }
        }
        p.w = 0;
        p.d = p.d1 = 0;
        p.base = 0;
        p.size = size;
        offer(best, &p);
    }
}

/* Writes a kernel plan for u (not XOR/SHUF). Returns the bytes written, which
 * equal p->size. */
static size_t write_kernel(const uint64_t *u, uint32_t n, const plan *p, uint8_t *out)
{
    uint64_t tmp[N_MAX];
    uint8_t *o = out;
    dom dm = p->dm;
    *o++ = (uint8_t)p->method;
    switch ((enum tally__codec_kernel)(p->method & 0x0F)) {
    case TALLY__CK_RAW:
        if (dm == DOM_F32) {
            for (uint32_t i = 0; i < n; i++, o += 4)
                store32(o, unord32((uint32_t)u[i]));
        } else {
            for (uint32_t i = 0; i < n; i++, o += 8)
                store64(o, dm == DOM_F64 ? unord64(u[i]) : u[i]);
        }
        break;
    case TALLY__CK_CONST:
        o += base_put(dm, o, p->base);
        break;
    case TALLY__CK_LINEAR:
        o += base_put(dm, o, p->base);
        o += varint_put(o, zz_enc(p->d));
        break;
    case TALLY__CK_FOR: {
        *o++ = (uint8_t)p->w;
        o += base_put(dm, o, p->base);
        o += varint_put(o, zz_enc(p->d));
        uint64_t line = p->base;
        for (uint32_t i = 0; i < n; i++, line += p->d)
            tmp[i] = u[i] - line;
        o += pack(o, tmp, n, p->w);
        break;
    }
    case TALLY__CK_DELTA:
        *o++ = (uint8_t)p->w;
        o += base_put(dm, o, p->base);
        o += varint_put(o, zz_enc(p->d));
        for (uint32_t i = 1; i < n; i++)
            tmp[i - 1] = u[i] - u[i - 1] - p->d;
        o += pack(o, tmp, n - 1, p->w);
        break;
    case TALLY__CK_DELTA2:
        *o++ = (uint8_t)p->w;
        o += base_put(dm, o, p->base);
        o += varint_put(o, zz_enc(p->d1));
        o += varint_put(o, zz_enc(p->d));
        for (uint32_t i = 2; i < n; i++)
            tmp[i - 2] = (u[i] - u[i - 1]) - (u[i - 1] - u[i - 2]) - p->d;
        o += pack(o, tmp, n > 2 ? n - 2 : 0, p->w);
        break;
    case TALLY__CK_RLE: {
        uint32_t runs = 1;
        for (uint32_t i = 1; i < n; i++)
            runs += u[i] != u[i - 1];
        o += varint_put(o, runs);
        uint32_t start = 0;
        for (uint32_t i = 1; i <= n; i++) {
            if (i == n || u[i] != u[i - 1]) {
                o += base_put(dm, o, u[start]);
                o += varint_put(o, i - start - 1);
                start = i;
            }
        }
        break;
    }
    case TALLY__CK_XOR:
    case TALLY__CK_SHUF:
    case TALLY__CK_N:
        break;
    }
    return (size_t)(o - out);
}

/* ------------------------------------------------------------------------ */
/* XOR (Gorilla) and byte-shuffle + LZ4 (float64 columns only)               */
/* ------------------------------------------------------------------------ */

/*
 * XOR stream of words of B = 64 or 32 bits (the raw patterns, not ordered):
 * the first word in B bits; then per word x = word ^ previous:
 *   '0'                       x == 0
 *   '1' '0' <len bits>        x fits the current window (lead, len)
 *   '1' '1' <5: lead> <L: len-1> <len bits>   a new window; L = 6 (B=64) or 5
 * Bits are written in stream order with bitw (so '1' then '0' is 0b01 read
 * as two 1-bit fields). The window starts as (lead 0, len B).
 */
/* Encodes into out (room for the bound, 1 + 8n bytes: a word costs at most
 * 77 bits but the stream stops) and returns the size, or 0 as soon as the
 * stream is known to need more than cap bytes. */
static size_t xor_encode(const uint64_t *word, uint32_t n, unsigned B, uint8_t *out, size_t cap)
{
    unsigned lbits = B == 64 ? 6 : 5;
    bitw b = {out + 1, 0, 0};
    size_t cap_bits = cap > 1 ? (cap - 1) * 8 : 0;
    bitw_put(&b, word[0], B);
    unsigned lead = 0, len = B;
    for (uint32_t i = 1; i < n; i++) {
        /* At most 77 bits per word so far: stays within the bound of 1 + 8n. */
        if ((size_t)(b.p - out - 1) * 8 + b.fill > cap_bits)
            return 0;
        uint64_t x = word[i] ^ word[i - 1];
        if (x == 0) {
            bitw_put(&b, 0, 1);
            continue;
        }
        unsigned l = clz64(x) - (64 - B), t = ctz64(x);
        if (l > 31)
            l = 31;
        unsigned nl = B - l - t;
        int fits = l >= lead && t >= B - lead - len;
        if (fits && len <= 11 + nl) {
            bitw_put(&b, 1, 2); /* '1' then '0' */
            bitw_put(&b, (x >> (B - lead - len)) & mask_of(len), len);
        } else {
            bitw_put(&b, 3, 2);
            bitw_put(&b, l, 5);
            bitw_put(&b, nl - 1, lbits);
            bitw_put(&b, (x >> t) & mask_of(nl), nl);
            lead = l;
            len = nl;
        }
    }
    if ((size_t)(b.p - out - 1) * 8 + b.fill > cap_bits)
        return 0;
    return (size_t)(bitw_end(&b) - out);
}

/* Decodes an XOR stream at p (avail bytes) into word[0..n). *used gets the
 * stream's bytes. */
static int xor_decode(const uint8_t *p, size_t avail, uint32_t n, unsigned B, uint64_t *word,
                      size_t *used)
{
    unsigned lbits = B == 64 ? 6 : 5;
    size_t limit = avail * 8, bit = 0;
    RETURN_ERROR_IF(B > limit, TALLY_ECORRUPT);
    uint64_t prev = bits_get(p, avail, 0, B);
    bit = B;
    word[0] = prev;
    unsigned lead = 0, len = B;
    for (uint32_t i = 1; i < n; i++) {
        RETURN_ERROR_IF(bit + 1 > limit, TALLY_ECORRUPT);
        if (!bits_get(p, avail, bit++, 1)) {
            word[i] = prev;
            continue;
        }
        RETURN_ERROR_IF(bit + 1 > limit, TALLY_ECORRUPT);
        if (bits_get(p, avail, bit++, 1)) {
            RETURN_ERROR_IF(bit + 5 + lbits > limit, TALLY_ECORRUPT);
            lead = (unsigned)bits_get(p, avail, bit, 5);
            len = (unsigned)bits_get(p, avail, bit + 5, lbits) + 1;
            bit += 5 + lbits;
            RETURN_ERROR_IF(lead + len > B, TALLY_ECORRUPT);
        }
        RETURN_ERROR_IF(bit + len > limit, TALLY_ECORRUPT);
        uint64_t x = bits_get(p, avail, bit, len) << (B - lead - len);
        bit += len;
        prev ^= x;
        word[i] = prev;
    }
    *used = (bit + 7) / 8;
    return 0;
}

/* Byte planes of n words of `word_bytes` bytes, LZ4-compressed:
 * varint(compressed length), then the LZ4 block. */
static size_t shuf_encode(const uint64_t *word, uint32_t n, unsigned word_bytes, uint8_t *out,
                          size_t cap)
{
    uint8_t planes[N_MAX * 8];
    for (unsigned k = 0; k < word_bytes; k++)
        for (uint32_t i = 0; i < n; i++)
            planes[k * n + i] = (uint8_t)(word[i] >> (8 * k));
    size_t raw = (size_t)n * word_bytes;
    /* Only an LZ4 block that makes the chunk fit in cap is of use: with a
     * smaller capacity LZ4 gives up early on incompressible planes. */
    char dst[LZ4_COMPRESSBOUND(N_MAX * 8)];
    if (cap < 3)
        return 0;
    int dst_cap = (int)(cap - 2 < sizeof dst ? cap - 2 : sizeof dst);
    int c = LZ4_compress_default((const char *)planes, dst, (int)raw, dst_cap);
    if (c <= 0)
        return 0;
    size_t size = 1 + varint_len((uint64_t)c) + (size_t)c;
    if (size > cap)
        return 0;
    uint8_t *o = out + 1;
    o += varint_put(o, (uint64_t)c);
    memcpy(o, dst, (size_t)c);
    return size;
}

static int shuf_decode(const uint8_t *p, const uint8_t *end, uint32_t n, unsigned word_bytes,
                       uint64_t *word, size_t *used)
{
    const uint8_t *q = p;
    uint64_t c;
    int rc = varint_get(&q, end, &c);
    if (rc)
        return rc;
    RETURN_ERROR_IF(c == 0 || c > (uint64_t)(end - q), TALLY_ECORRUPT);
    RETURN_ERROR_IF(c > LZ4_COMPRESSBOUND(N_MAX * 8), TALLY_ECORRUPT);
    uint8_t planes[N_MAX * 8];
    int raw = (int)(n * word_bytes);
    int got = LZ4_decompress_safe((const char *)q, (char *)planes, (int)c, raw);
    RETURN_ERROR_IF(got != raw, TALLY_ECORRUPT);
    for (uint32_t i = 0; i < n; i++) {
        uint64_t x = 0;
        for (unsigned k = 0; k < word_bytes; k++)
            x |= (uint64_t)planes[k * n + i] << (8 * k);
        word[i] = x;
    }
    *used = (size_t)(q - p) + (size_t)c;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Decoding                                                                  */
/* ------------------------------------------------------------------------ */

/* A parsed chunk header. */
typedef struct hdr {
    unsigned kernel;        /* enum tally__codec_kernel */
    dom dm;                 /* domain */
    unsigned w;             /* packed width */
    uint64_t base, d, d1;   /* as in plan */
    const uint8_t *payload; /* first byte after the parameters */
    size_t payload_len;     /* packed bytes (fixed-width kernels only) */
} hdr;

/* Parses the method byte and parameters at in; checks that the fixed-width
 * payload fits before end. For RLE, XOR and SHUF only the method. */
static int parse_hdr(const uint8_t *in, const uint8_t *end, uint32_t n, int is_f64, hdr *h)
{
    RETURN_ERROR_IF(n == 0 || n > N_MAX, TALLY_ECORRUPT);
    RETURN_ERROR_IF(in >= end, TALLY_ECORRUPT);
    unsigned m = in[0];
    const uint8_t *p = in + 1;
    h->kernel = m & 0x0F;
    if (is_f64) {
        RETURN_ERROR_IF((m >> 4) > 1 || h->kernel >= TALLY__CK_N, TALLY_ECORRUPT);
        h->dm = (m >> 4) ? DOM_F32 : DOM_F64;
    } else {
        RETURN_ERROR_IF(m > TALLY__CK_DELTA2, TALLY_ECORRUPT);
        h->dm = DOM_I64;
    }
    h->w = 0;
    h->base = h->d = h->d1 = 0;
    int rc = 0;
    size_t count = n;
    switch ((enum tally__codec_kernel)h->kernel) {
    case TALLY__CK_RAW:
        h->w = dom_bits(h->dm);
        break;
    case TALLY__CK_CONST:
        rc = base_get(h->dm, &p, end, &h->base);
        count = 0;
        break;
    case TALLY__CK_LINEAR:
        if (!(rc = base_get(h->dm, &p, end, &h->base)))
            rc = zz_get(&p, end, &h->d);
        count = 0;
        break;
    case TALLY__CK_FOR:
    case TALLY__CK_DELTA:
    case TALLY__CK_DELTA2:
        RETURN_ERROR_IF(p >= end, TALLY_ECORRUPT);
        h->w = *p++;
        /* 64 in every domain: float32 deltas of 32-bit words take 33 bits. */
        RETURN_ERROR_IF(h->w > 64, TALLY_ECORRUPT);
        rc = base_get(h->dm, &p, end, &h->base);
        if (!rc && h->kernel == TALLY__CK_DELTA2)
            rc = zz_get(&p, end, &h->d1);
        if (!rc)
            rc = zz_get(&p, end, &h->d);
        if (h->kernel == TALLY__CK_DELTA)
            count = n - 1;
        else if (h->kernel == TALLY__CK_DELTA2)
            count = n > 2 ? n - 2 : 0;
        break;
    case TALLY__CK_XOR:
    case TALLY__CK_SHUF:
    case TALLY__CK_RLE:
    case TALLY__CK_N:
        count = 0;
        break;
    }
    if (rc)
        return rc;
    h->payload = p;
    h->payload_len = packed_bytes((uint32_t)count, h->w);
    RETURN_ERROR_IF(h->payload_len > (size_t)(end - p), TALLY_ECORRUPT);
    return 0;
}

/* DELTA and DELTA2 in one pass. The packed residuals are read, summed into
 * the words and stored in the same loop, over groups of 8 values (W bytes)
 * as in unpack_groups(), and each word is stored plus `ofs` (mod 2^64). With
 * ofs = 2^63 a float64-domain word u is stored as u ^ 2^63, which is already
 * the float64 bit pattern unord64(u) whenever u >= 2^63 (a positive value):
 * only chunks holding a negative value need a second pass (fix_negative()).
 * Words go to dst as native 8-byte words through memcpy, so dst may be the
 * caller's int64, uint64 or double array.
 *
 *   DELTA   x[i] = x[i-1] + d + p[i-1]
 *   DELTA2  dl[i] = dl[i-1] + d + p[i-2], x[i] = x[i-1] + dl[i]
 *
 * The loops are the plain serial chains on purpose: no interleaved partial
 * sums for the vectorizer (see fill_linear). */
typedef struct sums {
    uint64_t x;     /* last word + ofs */
    uint64_t delta; /* DELTA2: last first difference */
    uint64_t acc;   /* OR of every stored word */
} sums;

static ALWAYS_INLINE void sums_put(sums *st, uint64_t r, uint64_t d, const int second,
                                   uint8_t *dst)
{
    if (second) {
        st->delta += r + d;
        st->x += st->delta;
    } else {
        st->x += r + d;
    }
    st->acc |= st->x;
    memcpy(dst, &st->x, 8);
}

/* Sums whole groups of 8 residuals of the constant width W (1..64) while a
 * group and the 8 bytes after it lie before avail; returns how many it took
 * (a multiple of 8). Inlined once per width and kernel. */
static ALWAYS_INLINE uint32_t sums_groups(const uint8_t *p, size_t avail, uint32_t count,
                                          const unsigned W, const int second, uint64_t d,
                                          sums *st, uint8_t *dst)
{
    const uint64_t mask = W == 64 ? ~UINT64_C(0) : (UINT64_C(1) << W) - 1;
    uint32_t groups = whole_groups(avail, count, W);
    sums s = *st;
    const uint8_t *q = p;
    for (uint32_t g = 0; g < groups; g++, q += W, dst += 64) {
#define TALLY_SUMS_ONE_(j) sums_put(&s, group_field(q, (j), W, mask), d, second, dst + 8 * (j))
        TALLY_SUMS_ONE_(0);
        TALLY_SUMS_ONE_(1);
        TALLY_SUMS_ONE_(2);
        TALLY_SUMS_ONE_(3);
        TALLY_SUMS_ONE_(4);
        TALLY_SUMS_ONE_(5);
        TALLY_SUMS_ONE_(6);
        TALLY_SUMS_ONE_(7);
#undef TALLY_SUMS_ONE_
    }
    *st = s;
    return groups * 8;
}

/* Words [0, m) of a DELTA or DELTA2 chunk (header h, avail bytes from its
 * payload), each plus ofs, into dst. Returns the OR of the stored words. */
static uint64_t delta_decode(const hdr *h, size_t avail, uint32_t m, uint64_t ofs, uint8_t *dst)
{
    const int second = h->kernel == TALLY__CK_DELTA2;
    const uint8_t *p = h->payload;
    const unsigned w = h->w;
    const uint64_t d = h->d;
    sums st = {h->base + ofs, h->d1, h->base + ofs};
    memcpy(dst, &st.x, 8);
    uint32_t k = 1; /* words that need no residual */
    if (second && m > 1) {
        st.x += st.delta;
        st.acc |= st.x;
        memcpy(dst + 8, &st.x, 8);
        k = 2;
    }
    if (m <= k)
        return st.acc;
    uint32_t count = m - k, i = 0;
    dst += 8 * (size_t)k;
    switch (w * 2 + (unsigned)second) {
    case 0:
        for (; i < count; i++)
            sums_put(&st, 0, d, 0, dst + 8 * (size_t)i);
        return st.acc;
    case 1:
        for (; i < count; i++)
            sums_put(&st, 0, d, 1, dst + 8 * (size_t)i);
        return st.acc;
#define TALLY_SUMS_CASE_(W)                                                                   \
    case 2 * (W):                                                                             \
        i = sums_groups(p, avail, count, W, 0, d, &st, dst);                                  \
        break;                                                                                \
    case 2 * (W) + 1:                                                                         \
        i = sums_groups(p, avail, count, W, 1, d, &st, dst);                                  \
        break;
        TALLY_WIDTHS_1_64(TALLY_SUMS_CASE_)
#undef TALLY_SUMS_CASE_
    default: /* w > 64 is refused by parse_hdr */
        break;
    }
    /* The rest: a partial group, or the values in the last W + 8 bytes
     * before end. Up to 56 bits a value lies within the 8 bytes from its
     * first byte, or else within the last 8 bytes (as in bits_get()). */
    if (w <= 56 && avail >= 8) {
        const uint64_t mask = (UINT64_C(1) << w) - 1;
        for (; i < count; i++) {
            size_t bit = (size_t)i * w, by = bit >> 3;
            unsigned sh = (unsigned)(bit & 7);
            uint64_t r = by + 8 <= avail
                             ? load64(p + by) >> sh
                             : load64(p + avail - 8) >> (8 * (unsigned)(by + 8 - avail) + sh);
            if (second)
                sums_put(&st, r & mask, d, 1, dst + 8 * (size_t)i);
            else
                sums_put(&st, r & mask, d, 0, dst + 8 * (size_t)i);
        }
    }
    for (; i < count; i++) {
        uint64_t r = bits_get(p, avail, (size_t)i * w, w);
        if (second)
            sums_put(&st, r, d, 1, dst + 8 * (size_t)i);
        else
            sums_put(&st, r, d, 0, dst + 8 * (size_t)i);
    }
    return st.acc;
}

/* Turns words stored by delta_decode() with ofs = 2^63 into float64 bit
 * patterns where they were not already: a stored b = u ^ 2^63 with the top
 * bit set came from u < 2^63 (a negative value), whose pattern is ~u =
 * b ^ (2^63 - 1). */
static void fix_negative(double *out, uint32_t m)
{
    for (uint32_t i = 0; i < m; i++) {
        uint64_t b;
        memcpy(&b, out + i, 8);
        b ^= (0 - (b >> 63)) >> 1;
        memcpy(out + i, &b, 8);
    }
}

/* ------------------------------------------------------------------------ */
/* Fixed-width kernels of the value column straight into doubles            */
/* ------------------------------------------------------------------------ */

/*
 * FOR, LINEAR and CONST words are u[i] = base + i * d + r[i] (r = 0 but for
 * FOR). When the header alone shows that every word of the chunk maps to
 * its float64 pattern the same way, that pattern is affine in r[i]:
 *
 *   DOM_F32, u in [0x80800000, 0xFF7FFFFF]  (positive normal f, u = f | 2^31)
 *       bits = (f & 0x7FFFFFFF) << 29 + (896 << 52)  = (u << 29) + (640 << 52)
 *   DOM_F32, u in [0x00800000, 0x7F7FFFFF]  (negative normal f, u = ~f)
 *       bits = 2^63 + (0x7FFFFFFF - u) << 29 + (896 << 52)  = K - (u << 29)
 *   DOM_F64, u >= 2^63 (sign 0)             bits = u ^ 2^63 = u + 2^63
 *   DOM_F64, u <  2^63 (sign 1)             bits = ~u = ~r - (base + i * d)
 *
 * (in the first line the 2^31 of u lands on 2^60 = 256 << 52). With
 * -y = ~y + 1 every case is
 *
 *   bits[i] = ((r[i] << s) ^ x) + l0 + i * dl        (mod 2^64)
 *
 * with s = 29 or 0 and x = 0 or all ones: unpack, unmap, widen and store
 * are a load, a shift, a mask, an add (and an xor for negative chunks) per
 * value. A chunk whose words may map otherwise (crossing zero, a float32
 * zero, subnormal, infinity or NaN, or corrupt parameters) gets no affine
 * form and takes the general path, words first, then word_to_bits().
 */
typedef struct affine {
    unsigned s;  /* residual shift: 29 (DOM_F32) or 0 */
    uint64_t x;  /* 0, or all ones for a negative chunk */
    uint64_t l0; /* bits[0] less its residual term */
    uint64_t dl; /* step of l per value */
} affine;

/* Whether every exact integer base + i * (int64)d + r, for i < n and
 * 0 <= r < 2^w, lies in [lo, hi]: then the decoder's sums modulo 2^64 are
 * those integers. */
static inline int words_within(uint64_t base, uint64_t d, unsigned w, uint32_t n, uint64_t lo,
                               uint64_t hi)
{
    uint64_t first = base, last = base, top;
    if (d != 0) {
        int64_t span; /* (n - 1) * d: the line's last point less its first */
        if (__builtin_mul_overflow((int64_t)(n - 1), (int64_t)d, &span))
            return 0;
        if (span >= 0 ? __builtin_add_overflow(base, (uint64_t)span, &last)
                      : __builtin_sub_overflow(base, 0 - (uint64_t)span, &first))
            return 0;
    }
    if (w >= 64 || __builtin_add_overflow(last, (UINT64_C(1) << w) - 1, &top))
        return 0;
    return first >= lo && top <= hi;
}

/* The affine form of a FOR, LINEAR or CONST chunk of n words (header h):
 * 1 and *a, or 0 when it has none. */
static int affine_of(const hdr *h, uint32_t n, affine *a)
{
    const uint64_t base = h->base, d = h->d;
    const unsigned w = h->kernel == TALLY__CK_FOR ? h->w : 0;
    if (h->dm == DOM_F32) {
        a->s = 29;
        if (words_within(base, d, w, n, UINT32_C(0x80800000), UINT32_C(0xFF7FFFFF))) {
            a->x = 0;
            a->l0 = (base << 29) + (UINT64_C(640) << 52);
            a->dl = d << 29;
            return 1;
        }
        if (words_within(base, d, w, n, UINT32_C(0x00800000), UINT32_C(0x7F7FFFFF))) {
            a->x = ~UINT64_C(0);
            a->l0 = (UINT64_C(1) << 63) + ((uint64_t)UINT32_C(0x7FFFFFFF) << 29) +
                    (UINT64_C(896) << 52) + 1 - (base << 29);
            a->dl = 0 - (d << 29);
            return 1;
        }
        return 0;
    }
    a->s = 0;
    if (words_within(base, d, w, n, UINT64_C(1) << 63, ~UINT64_C(0))) {
        a->x = 0;
        a->l0 = base + (UINT64_C(1) << 63);
        a->dl = d;
        return 1;
    }
    if (words_within(base, d, w, n, 0, (UINT64_C(1) << 63) - 1)) {
        a->x = ~UINT64_C(0);
        a->l0 = 0 - base;
        a->dl = 0 - d;
        return 1;
    }
    return 0;
}

/* Whole groups of 8 residuals of the constant width W at p, as in
 * sums_groups(): bits = ((r << S) ^ x) + l, l += dl per value. Returns how
 * many values it stored (a multiple of 8) and leaves *l at the next one.
 * Inlined per width and domain; the callers pass x and dl as literal zeros
 * where they can, which drops their instructions. */
static ALWAYS_INLINE uint32_t affine_groups(const uint8_t *p, size_t avail, uint32_t count,
                                            const unsigned W, const unsigned S, uint64_t x,
                                            uint64_t dl, uint64_t *l, double *out)
{
    const uint64_t mask = (W == 64 ? ~UINT64_C(0) : (UINT64_C(1) << W) - 1) << S;
    uint32_t groups = whole_groups(avail, count, W);
    uint64_t line = *l;
    const uint8_t *q = p;
    for (uint32_t g = 0; g < groups; g++, q += W, out += 8) {
#define TALLY_AFFINE_ONE_(j)                                                                  \
    do {                                                                                      \
        const unsigned bit = (j) * W, sh = bit & 7;                                           \
        uint64_t r = load64(q + bit / 8);                                                     \
        r = S >= sh ? r << ((S - sh) & 63) : r >> ((sh - S) & 63);                            \
        if (W > 56 && sh + W > 64) /* S = 0 here */                                           \
            r |= (uint64_t)q[bit / 8 + 8] << ((64 - sh) & 63);                                \
        uint64_t b = ((r & mask) ^ x) + line;                                                 \
        line += dl;                                                                           \
        memcpy(out + (j), &b, 8);                                                             \
    } while (0)
        TALLY_AFFINE_ONE_(0);
        TALLY_AFFINE_ONE_(1);
        TALLY_AFFINE_ONE_(2);
        TALLY_AFFINE_ONE_(3);
        TALLY_AFFINE_ONE_(4);
        TALLY_AFFINE_ONE_(5);
        TALLY_AFFINE_ONE_(6);
        TALLY_AFFINE_ONE_(7);
#undef TALLY_AFFINE_ONE_
    }
    *l = line;
    return groups * 8;
}

/* Groups of 8 values of a float32-domain chunk (width w <= 32): the
 * positive chunks of plain FOR (x = 0, dl = 0) have their own copy. */
static uint32_t affine_groups_f32(const uint8_t *p, size_t avail, uint32_t count, unsigned w,
                                  uint64_t x, uint64_t dl, uint64_t *l, double *out)
{
    const int plain = x == 0 && dl == 0;
    switch (w) {
#define TALLY_AFFINE_CASE_(W)                                                                 \
    case W:                                                                                   \
        return plain ? affine_groups(p, avail, count, W, 29, 0, 0, l, out)                    \
                     : affine_groups(p, avail, count, W, 29, x, dl, l, out);
        TALLY_WIDTHS_1_32(TALLY_AFFINE_CASE_)
#undef TALLY_AFFINE_CASE_
    default: /* w > 32 has no affine form in this domain */
        return 0;
    }
}

/* Groups of 8 values of a float64-domain chunk (width w <= 64). */
static uint32_t affine_groups_f64(const uint8_t *p, size_t avail, uint32_t count, unsigned w,
                                  uint64_t x, uint64_t dl, uint64_t *l, double *out)
{
    switch (w) {
#define TALLY_AFFINE_CASE_(W)                                                                 \
    case W:                                                                                   \
        return affine_groups(p, avail, count, W, 0, x, dl, l, out);
        TALLY_WIDTHS_1_64(TALLY_AFFINE_CASE_)
#undef TALLY_AFFINE_CASE_
    default:
        return 0;
    }
}

/* Values [0, m) of a FOR, LINEAR or CONST chunk with the affine form a into
 * out; avail bytes from the payload (parse_hdr() checked the packed ones). */
static void affine_decode(const hdr *h, const affine *a, size_t avail, uint32_t m, double *out)
{
    const uint8_t *p = h->payload;
    const unsigned w = h->kernel == TALLY__CK_FOR ? h->w : 0, s = a->s;
    const uint64_t x = a->x, dl = a->dl;
    uint64_t l = a->l0;
    uint32_t i = 0;
    if (w == 0) { /* r = 0: bits = x + l */
        for (uint64_t b = x + l; i < m; i++, b += dl)
            memcpy(out + i, &b, 8);
        return;
    }
    i = s ? affine_groups_f32(p, avail, m, w, x, dl, &l, out)
          : affine_groups_f64(p, avail, m, w, x, dl, &l, out);
    /* Whole groups the bytes stopped short of (at the end of a chunk that
     * ends its buffer, their last 8-byte loads would pass end): each from a
     * copy of the bytes left, fewer than w + 8, in a zeroed buffer. */
    while (m - i >= 8) {
        uint8_t tmp[72 + 8];
        size_t off = (size_t)(i / 8) * w, left = avail - off;
        if (left > sizeof tmp) /* cannot happen: the groups above would have run */
            break;
        memset(tmp, 0, sizeof tmp);
        memcpy(tmp, p + off, left);
        uint32_t k = s ? affine_groups_f32(tmp, sizeof tmp, 8, w, x, dl, &l, out + i)
                       : affine_groups_f64(tmp, sizeof tmp, 8, w, x, dl, &l, out + i);
        if (k == 0)
            break;
        i += k;
    }
    /* The rest, as in delta_decode(): a partial group, or the values in the
     * last W + 8 bytes before end. */
    if (w <= 56 && avail >= 8) {
        const uint64_t mask = (UINT64_C(1) << w) - 1;
        for (; i < m; i++, l += dl) {
            size_t bit = (size_t)i * w, by = bit >> 3;
            unsigned sh = (unsigned)(bit & 7);
            uint64_t r = by + 8 <= avail
                             ? load64(p + by) >> sh
                             : load64(p + avail - 8) >> (8 * (unsigned)(by + 8 - avail) + sh);
            uint64_t b = (((r & mask) << s) ^ x) + l;
            memcpy(out + i, &b, 8);
        }
    }
    for (; i < m; i++, l += dl) {
        uint64_t b = ((bits_get(p, avail, (size_t)i * w, w) << s) ^ x) + l;
        memcpy(out + i, &b, 8);
    }
}

/* Float32 bit pattern f widened to float64 bits by the normal-number
 * formula (sign; exponent and mantissa moved up 29 bits, the exponent
 * rebased by 1023 - 127 = 896), branch-free. Sets bit 31 of *lo when the
 * exponent is 0 and of *hi when it is 255: then the formula was wrong for f
 * and the caller redoes the chunk with f32_to_f64_bits_slow(). */
static inline uint64_t f32_normal_to_f64_bits(uint32_t f, uint32_t *lo, uint32_t *hi)
{
    uint32_t t = f & UINT32_C(0x7F800000);
    *lo |= t - UINT32_C(0x00800000);
    *hi |= t + UINT32_C(0x00800000);
    return ((uint64_t)(f >> 31) << 63) |
           (((uint64_t)(f & UINT32_C(0x7FFFFFFF)) << 29) + (UINT64_C(896) << 52));
}

/* Float32 bit patterns f[0..m) (RAW, f32 domain) widened into out: the
 * normal-number formula for all, then f32_to_f64_bits_slow() for all when
 * one was a zero, subnormal, infinity or NaN. */
static void widen_f32(const uint8_t *p, uint32_t m, double *out)
{
    uint32_t lo = 0, hi = 0;
    for (uint32_t i = 0; i < m; i++) {
        uint64_t b = f32_normal_to_f64_bits(load32(p + 4 * (size_t)i), &lo, &hi);
        memcpy(out + i, &b, 8);
    }
    if (UNLIKELY((lo | hi) >> 31)) {
        for (uint32_t i = 0; i < m; i++) {
            uint64_t b = f32_to_f64_bits_slow(load32(p + 4 * (size_t)i));
            memcpy(out + i, &b, 8);
        }
    }
}

/* Values [0, m) of a RAW, CONST, LINEAR or FOR chunk (header h, avail bytes
 * from its payload) straight into out. Returns 0, or 1 when the chunk has
 * no affine form: the caller takes the general path. */
static int fixed_decode(const hdr *h, size_t avail, uint32_t n, uint32_t m, double *out)
{
    if (h->kernel == TALLY__CK_RAW) {
        if (h->dm == DOM_F32) {
            widen_f32(h->payload, m, out);
        } else {
#ifdef TALLY_CODEC_BIG_ENDIAN
            for (uint32_t i = 0; i < m; i++) {
                uint64_t b = load64(h->payload + 8 * (size_t)i);
                memcpy(out + i, &b, 8);
            }
#else
            memcpy(out, h->payload, 8 * (size_t)m);
#endif
        }
        return 0;
    }
    affine a;
    if (!affine_of(h, n, &a))
        return 1;
    affine_decode(h, &a, avail, m, out);
    return 0;
}

/* Decodes the first m (1 <= m <= n) words of a chunk of n, whose header h
 * parse_hdr() read from in, into word (room for n): the kernels that can
 * stop early (RAW, CONST, LINEAR, FOR, DELTA, DELTA2) decode m, the others
 * all n. *ordered tells whether the words are in the ordered mapping
 * (kernels on u) or raw patterns (RAW, XOR, SHUF); for the int64 domain both
 * are the same thing. *used is the chunk's whole encoded size either way. */
static int decode_words_h(const hdr *hp, const uint8_t *in, const uint8_t *end, uint32_t n,
                          uint32_t m, uint64_t *word, int *ordered, size_t *used)
{
    const hdr h = *hp;
    int rc;
    *ordered = 1;
    const uint8_t *p = h.payload;
    size_t avail = (size_t)(end - p);
    switch ((enum tally__codec_kernel)h.kernel) {
    case TALLY__CK_RAW:
        *ordered = 0;
        if (h.dm == DOM_F32) {
            for (uint32_t i = 0; i < m; i++)
                word[i] = load32(p + 4 * i);
        } else {
            for (uint32_t i = 0; i < m; i++)
                word[i] = load64(p + 8 * i);
        }
        *used = (size_t)(p - in) + h.payload_len;
        return 0;
    case TALLY__CK_CONST:
    case TALLY__CK_LINEAR: /* d is 0 for CONST */
        fill_linear(word, m, h.base, h.d);
        *used = (size_t)(p - in);
        return 0;
    case TALLY__CK_FOR:
        unpack(p, avail, m, h.w, h.base, h.d, word);
        *used = (size_t)(p - in) + h.payload_len;
        return 0;
    case TALLY__CK_DELTA:
    case TALLY__CK_DELTA2:
        delta_decode(&h, avail, m, 0, (uint8_t *)word);
        *used = (size_t)(p - in) + h.payload_len;
        return 0;
    case TALLY__CK_RLE: {
        const uint8_t *q = p;
        uint64_t runs;
        RETURN_ERROR_IF((rc = varint_get(&q, end, &runs)) != 0, rc);
        RETURN_ERROR_IF(runs == 0 || runs > n, TALLY_ECORRUPT);
        uint32_t i = 0;
        for (uint64_t r = 0; r < runs; r++) {
            uint64_t v, len;
            RETURN_ERROR_IF((rc = base_get(h.dm, &q, end, &v)) != 0, rc);
            RETURN_ERROR_IF((rc = varint_get(&q, end, &len)) != 0, rc);
            RETURN_ERROR_IF(len >= (uint64_t)(n - i), TALLY_ECORRUPT);
            for (uint64_t k = 0; k <= len; k++)
                word[i++] = v;
        }
        RETURN_ERROR_IF(i != n, TALLY_ECORRUPT);
        *used = (size_t)(q - in);
        return 0;
    }
    case TALLY__CK_XOR: {
        size_t u;
        *ordered = 0;
        RETURN_ERROR_IF((rc = xor_decode(p, avail, n, dom_bits(h.dm), word, &u)) != 0, rc);
        *used = (size_t)(p - in) + u;
        return 0;
    }
    case TALLY__CK_SHUF: {
        size_t u;
        *ordered = 0;
        RETURN_ERROR_IF((rc = shuf_decode(p, end, n, dom_word(h.dm), word, &u)) != 0, rc);
        *used = (size_t)(p - in) + u;
        return 0;
    }
    case TALLY__CK_N:
        break;
    }
    return TALLY_ECORRUPT;
}

/* decode_words_h() after parsing the header; *dm gets the domain. */
static int decode_words(const uint8_t *in, const uint8_t *end, uint32_t n, uint32_t m,
                        int is_f64, uint64_t *word, int *ordered, dom *dm, size_t *used)
{
    hdr h;
    int rc = parse_hdr(in, end, n, is_f64, &h);
    if (rc)
        return rc;
    *dm = h.dm;
    return decode_words_h(&h, in, end, n, m, word, ordered, used);
}

/* Word -> float64 bit pattern. */
static inline uint64_t word_to_bits(uint64_t w, dom dm, int ordered)
{
    if (dm == DOM_F32) {
        uint32_t b = ordered ? unord32((uint32_t)w) : (uint32_t)w;
        return f32_to_f64_bits(b);
    }
    return ordered ? unord64(w) : w;
}

/* ------------------------------------------------------------------------ */
/* Public (engine-internal) entry points                                     */
/* ------------------------------------------------------------------------ */

size_t tally__codec_i64_bound(uint32_t n)
{
    return 1 + 8 * (size_t)n;
}

size_t tally__codec_f64_bound(uint32_t n)
{
    return 1 + 8 * (size_t)n;
}

static size_t i64_encode(const int64_t *v, uint32_t n, int only, uint8_t *out)
{
    if (n == 0 || n > N_MAX)
        return 0;
    uint64_t u[N_MAX];
    for (uint32_t i = 0; i < n; i++)
        u[i] = (uint64_t)v[i];
    plan best;
    memset(&best, 0, sizeof best);
    best.size = SIZE_MAX;
    offer_kernels(u, n, DOM_I64, 0, only, &best);
    /* A forced method may be larger than RAW: it is refused, not written. */
    if (best.size > tally__codec_i64_bound(n))
        return 0;
    return write_kernel(u, n, &best, out);
}

size_t tally__codec_i64_encode(const int64_t *v, uint32_t n, uint8_t *out)
{
    return i64_encode(v, n, -1, out);
}

size_t tally__codec_i64_encode_method(const int64_t *v, uint32_t n, unsigned method,
                                      uint8_t *out)
{
    if (method > TALLY__CK_DELTA2)
        return 0;
    return i64_encode(v, n, (int)method, out);
}

/* Offers XOR and SHUF of the raw patterns word[] of domain dm. Their encodings
 * land in the given buffers (each at least the bound). */
static void offer_streams(const uint64_t *word, uint32_t n, dom dm, int only, plan *best,
                          uint8_t *xor_buf, uint8_t *shuf_buf)
{
    unsigned dc = dom_code(dm);
    plan p;
    memset(&p, 0, sizeof p);
    p.dm = dm;
    p.method = dc | TALLY__CK_XOR;
    if (wanted(only, p.method)) {
        /* Worth finishing only while smaller than the best so far. */
        size_t cap = best->size - 1;
        if (cap > 1 + (size_t)n * 8)
            cap = 1 + (size_t)n * 8;
        size_t s = xor_encode(word, n, dom_bits(dm), xor_buf, cap);
        if (s) {
            xor_buf[0] = (uint8_t)p.method;
            p.size = s;
            p.pre = xor_buf;
            offer(best, &p);
        }
    }
    p.method = dc | TALLY__CK_SHUF;
    if (wanted(only, p.method)) {
        size_t cap = best->size - 1;
        if (cap > (size_t)n * dom_word(dm))
            cap = (size_t)n * dom_word(dm); /* must beat this domain's RAW */
        size_t s = shuf_encode(word, n, dom_word(dm), shuf_buf, cap);
        if (s) {
            shuf_buf[0] = (uint8_t)p.method;
            p.size = s;
            p.pre = shuf_buf;
            offer(best, &p);
        }
    }
}

static size_t f64_encode(const double *v, uint32_t n, int only, uint8_t *out)
{
    if (n == 0 || n > N_MAX)
        return 0;
    uint64_t bits[N_MAX], u[N_MAX], b32[N_MAX], u32[N_MAX];
    uint8_t xor_buf[2][1 + N_MAX * 8], shuf_buf[2][1 + N_MAX * 8];
    memcpy(bits, v, (size_t)n * 8);
    int f32 = 1;
    uint32_t sign_or = 0, sign_and = ~UINT32_C(0), special = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t f;
        if (f64_to_f32_bits(bits[i], &f)) {
            f32 = 0;
            break;
        }
        b32[i] = f;
        u32[i] = ord32(f);
        uint32_t t = f & UINT32_C(0x7F800000);
        special |= (t == 0) | (t == UINT32_C(0x7F800000));
        sign_or |= f;
        sign_and &= f;
    }
    /* Float32 normals of one sign: there u64 = 2^29 * u32 + c exactly (the
     * exponent and mantissa fields are contiguous in both formats), so every
     * range, delta and slope of the float64 domain is 2^29 times that of the
     * float32 domain and none of its kernels, nor XOR (same meaningful bits,
     * wider fields), can be smaller. SHUF64 could in theory; it never was on
     * the measured data (docs/codec.md). The float64 domain is skipped. */
    int skip_f64 = f32 && !special && ((sign_or ^ sign_and) >> 31) == 0;
    if (!skip_f64)
        for (uint32_t i = 0; i < n; i++)
            u[i] = ord64(bits[i]);

    plan best;
    memset(&best, 0, sizeof best);
    best.size = SIZE_MAX;
    int only_dom_f32 = only >= 0 && (only & 0xF0) == TALLY__CODEC_DOM_F32;
    if (!only_dom_f32 && (only >= 0 || !skip_f64)) {
        if (skip_f64) /* forced float64 method: the words are still needed */
            for (uint32_t i = 0; i < n; i++)
                u[i] = ord64(bits[i]);
        offer_kernels(u, n, DOM_F64, 1, only, &best);
        offer_streams(bits, n, DOM_F64, only, &best, xor_buf[0], shuf_buf[0]);
    }
    if (f32 && (only < 0 || only_dom_f32)) {
        offer_kernels(u32, n, DOM_F32, 1, only, &best);
        offer_streams(b32, n, DOM_F32, only, &best, xor_buf[1], shuf_buf[1]);
    }
    if (best.size > tally__codec_f64_bound(n))
        return 0;
    if (best.pre) {
        memcpy(out, best.pre, best.size);
        return best.size;
    }
    return write_kernel(best.dm == DOM_F32 ? u32 : u, n, &best, out);
}

size_t tally__codec_f64_encode(const double *v, uint32_t n, uint8_t *out)
{
    return f64_encode(v, n, -1, out);
}

size_t tally__codec_f64_encode_method(const double *v, uint32_t n, unsigned method, uint8_t *out)
{
    if ((method >> 4) > 1 || (method & 0x0F) >= TALLY__CK_N)
        return 0;
    return f64_encode(v, n, (int)method, out);
}

int tally__codec_i64_decode_prefix(const uint8_t *in, const uint8_t *end, uint32_t n, uint32_t m,
                                   int64_t *out, size_t *used)
{
    int ordered;
    dom dm;
    size_t u;
    RETURN_ERROR_IF(n != 0 && (m == 0 || m > n), TALLY_EINVAL); /* n = 0: corrupt, below */
    /* int64_t and uint64_t may alias each other (C11 6.5p7). */
    int rc = decode_words(in, end, n, m, 0, (uint64_t *)out, &ordered, &dm, &u);
    if (rc)
        return rc;
    if (used)
        *used = u;
    return 0;
}

int tally__codec_i64_decode(const uint8_t *in, const uint8_t *end, uint32_t n, int64_t *out,
                            size_t *used)
{
    return tally__codec_i64_decode_prefix(in, end, n, n, out, used);
}

int tally__codec_f64_decode_prefix(const uint8_t *in, const uint8_t *end, uint32_t n, uint32_t m,
                                   double *out, size_t *used)
{
    uint64_t word[N_MAX];
    int ordered;
    hdr h;
    size_t u;
    RETURN_ERROR_IF(n != 0 && (m == 0 || m > n), TALLY_EINVAL); /* n = 0: corrupt, below */
    int rc = parse_hdr(in, end, n, 1, &h);
    if (rc)
        return rc;
    dom dm = h.dm;
    if (random_access(h.kernel) && !fixed_decode(&h, (size_t)(end - h.payload), n, m, out)) {
        /* RAW, CONST, LINEAR, FOR: unpacked, mapped and widened in one pass */
        if (used)
            *used = (size_t)(h.payload - in) + h.payload_len;
        return 0;
    }
    if (dm == DOM_F64 && (h.kernel == TALLY__CK_DELTA || h.kernel == TALLY__CK_DELTA2)) {
        /* Straight into out, mapped on the way but for negative values. */
        uint64_t acc = delta_decode(&h, (size_t)(end - h.payload), m, UINT64_C(1) << 63,
                                    (uint8_t *)out);
        if (UNLIKELY(acc >> 63))
            fix_negative(out, m);
        if (used)
            *used = (size_t)(h.payload - in) + h.payload_len;
        return 0;
    }
    rc = decode_words_h(&h, in, end, n, m, word, &ordered, &u);
    if (rc)
        return rc;
    n = m; /* only the prefix is converted */
    if (dm == DOM_F32) {
        /* Branch-free for normal floats; a chunk holding a zero,
         * subnormal, infinity or NaN takes the general mapping for every
         * value. */
        uint32_t lo = 0, hi = 0, i;
        for (i = 0; i < n; i++) {
            uint32_t f = (uint32_t)word[i];
            uint64_t b = f32_normal_to_f64_bits(ordered ? unord32(f) : f, &lo, &hi);
            memcpy(out + i, &b, 8);
        }
        uint32_t special = (lo | hi) >> 31;
        if (UNLIKELY(special)) {
            for (i = 0; i < n; i++) {
                uint32_t f = ordered ? unord32((uint32_t)word[i]) : (uint32_t)word[i];
                uint64_t b = f32_to_f64_bits_slow(f);
                memcpy(out + i, &b, 8);
            }
        }
    } else if (ordered) {
        uint32_t n8 = n & ~7u, i;
        for (i = 0; i < n8; i++) {
            uint64_t b = unord64(word[i]);
            memcpy(out + i, &b, 8);
        }
        for (; i < n; i++) {
            uint64_t b = unord64(word[i]);
            memcpy(out + i, &b, 8);
        }
    } else {
        memcpy(out, word, (size_t)n * 8);
    }
    if (used)
        *used = u;
    return 0;
}

int tally__codec_f64_decode(const uint8_t *in, const uint8_t *end, uint32_t n, double *out,
                            size_t *used)
{
    return tally__codec_f64_decode_prefix(in, end, n, n, out, used);
}

/* Words [i, i + cnt) of a chunk (i + cnt <= n) into out, and, when size
 * is not NULL, the chunk's encoded size: one header parse for both. O(cnt)
 * for RAW, CONST, LINEAR and FOR; the other kernels decode the chunk (at
 * most 128 words) into a stack buffer. */
static int get_words_h(const hdr *hp, const uint8_t *in, const uint8_t *end, uint32_t n,
                       uint32_t i, uint32_t cnt, int is_f64, uint64_t *out, int *ordered, dom *dm,
                       size_t *size)
{
    const hdr h = *hp;
    int rc;
    RETURN_ERROR_IF(i >= n || cnt > n - i, TALLY_EINVAL);
    *dm = h.dm;
    *ordered = 1;
    size_t avail = (size_t)(end - h.payload);
    size_t fixed = (size_t)(h.payload - in) + h.payload_len;
    switch ((enum tally__codec_kernel)h.kernel) {
    case TALLY__CK_RAW:
        *ordered = 0;
        for (uint32_t t = 0; t < cnt; t++)
            out[t] = h.dm == DOM_F32 ? load32(h.payload + 4 * (size_t)(i + t))
                                     : load64(h.payload + 8 * (size_t)(i + t));
        break;
    case TALLY__CK_CONST:
    case TALLY__CK_LINEAR: /* d is 0 for CONST */
        for (uint32_t t = 0; t < cnt; t++)
            out[t] = h.base + (uint64_t)(i + t) * h.d;
        break;
    case TALLY__CK_FOR:
        for (uint32_t t = 0; t < cnt; t++)
            out[t] = h.base + (uint64_t)(i + t) * h.d +
                     bits_get(h.payload, avail, (size_t)(i + t) * h.w, h.w);
        break;
    case TALLY__CK_DELTA:
    case TALLY__CK_DELTA2:
    case TALLY__CK_XOR:
    case TALLY__CK_SHUF:
    case TALLY__CK_RLE:
    case TALLY__CK_N: {
        uint64_t word[N_MAX];
        size_t used;
        rc = decode_words(in, end, n, i + cnt, is_f64, word, ordered, dm, &used);
        if (rc)
            return rc;
        memcpy(out, word + i, (size_t)cnt * sizeof *out);
        if (size)
            *size = used;
        return 0;
    }
    }
    if (size)
        *size = fixed;
    return 0;
}

int tally__codec_i64_get_range(const uint8_t *in, const uint8_t *end, uint32_t n, uint32_t i,
                               uint32_t cnt, int64_t *out, size_t *size)
{
    int ordered;
    dom dm;
    hdr h;
    int rc = parse_hdr(in, end, n, 0, &h);
    if (rc)
        return rc;
    /* int64_t and uint64_t may alias each other (C11 6.5p7). */
    return get_words_h(&h, in, end, n, i, cnt, 0, (uint64_t *)out, &ordered, &dm, size);
}

/* tally__codec_f64_get_range() through the words, for the chunks that have
 * no direct form. Out of line: its word buffer stays off the common path. */
#if defined(__GNUC__)
__attribute__((noinline))
#endif
static int get_range_words(const hdr *h, const uint8_t *in, const uint8_t *end, uint32_t n,
                           uint32_t i, uint32_t cnt, double *out, size_t *size)
{
    uint64_t word[N_MAX];
    int ordered;
    dom dm;
    int rc = get_words_h(h, in, end, n, i, cnt, 1, word, &ordered, &dm, size);
    for (uint32_t t = 0; rc == 0 && t < cnt; t++) {
        uint64_t b = word_to_bits(word[t], dm, ordered);
        memcpy(out + t, &b, 8);
    }
    return rc;
}

int tally__codec_f64_get_range(const uint8_t *in, const uint8_t *end, uint32_t n, uint32_t i,
                               uint32_t cnt, double *out, size_t *size)
{
    RETURN_ERROR_IF(cnt > N_MAX, TALLY_EINVAL);
    hdr h;
    int rc = parse_hdr(in, end, n, 1, &h);
    if (rc)
        return rc;
    RETURN_ERROR_IF(i >= n || cnt > n - i, TALLY_EINVAL);
    affine a;
    if (h.kernel == TALLY__CK_RAW && h.dm == DOM_F32) {
        for (uint32_t t = 0; t < cnt; t++) {
            uint64_t b = f32_to_f64_bits(load32(h.payload + 4 * (size_t)(i + t)));
            memcpy(out + t, &b, 8);
        }
    } else if (h.kernel == TALLY__CK_RAW) {
        for (uint32_t t = 0; t < cnt; t++) {
            uint64_t b = load64(h.payload + 8 * (size_t)(i + t));
            memcpy(out + t, &b, 8);
        }
    } else if (random_access(h.kernel) && affine_of(&h, n, &a)) {
        /* The value itself, unpacked, mapped and widened (see affine_decode) */
        const unsigned w = h.kernel == TALLY__CK_FOR ? h.w : 0;
        const size_t avail = (size_t)(end - h.payload);
        uint64_t l = a.l0 + (uint64_t)i * a.dl;
        for (uint32_t t = 0; t < cnt; t++, l += a.dl) {
            uint64_t b = ((bits_get(h.payload, avail, (size_t)(i + t) * w, w) << a.s) ^ a.x) + l;
            memcpy(out + t, &b, 8);
        }
    } else {
        return get_range_words(&h, in, end, n, i, cnt, out, size);
    }
    if (size)
        *size = (size_t)(h.payload - in) + h.payload_len;
    return 0;
}

int tally__codec_i64_get(const uint8_t *in, const uint8_t *end, uint32_t n, uint32_t i,
                         int64_t *out)
{
    return tally__codec_i64_get_range(in, end, n, i, 1, out, NULL);
}

int tally__codec_f64_get(const uint8_t *in, const uint8_t *end, uint32_t n, uint32_t i,
                         double *out)
{
    return tally__codec_f64_get_range(in, end, n, i, 1, out, NULL);
}

/* Size of a chunk: from the header for the fixed-width kernels, by walking
 * the chunk for the others. */
static int chunk_size(const uint8_t *in, const uint8_t *end, uint32_t n, int is_f64, size_t *size)
{
    hdr h;
    int rc = parse_hdr(in, end, n, is_f64, &h);
    if (rc)
        return rc;
    switch ((enum tally__codec_kernel)h.kernel) {
    case TALLY__CK_RAW:
    case TALLY__CK_CONST:
    case TALLY__CK_LINEAR:
    case TALLY__CK_FOR:
    case TALLY__CK_DELTA:
    case TALLY__CK_DELTA2:
        *size = (size_t)(h.payload - in) + h.payload_len;
        return 0;
    case TALLY__CK_SHUF: {
        const uint8_t *q = h.payload;
        uint64_t c;
        RETURN_ERROR_IF((rc = varint_get(&q, end, &c)) != 0, rc);
        RETURN_ERROR_IF(c == 0 || c > (uint64_t)(end - q), TALLY_ECORRUPT);
        *size = (size_t)(q - in) + (size_t)c;
        return 0;
    }
    case TALLY__CK_XOR:
    case TALLY__CK_RLE:
    case TALLY__CK_N:
        break;
    }
    uint64_t word[N_MAX];
    int ordered;
    dom dm;
    return decode_words(in, end, n, n, is_f64, word, &ordered, &dm, size);
}

int tally__codec_random_access(const uint8_t *in, const uint8_t *end)
{
    return in < end && random_access(in[0] & 0x0Fu);
}

int tally__codec_i64_size(const uint8_t *in, const uint8_t *end, uint32_t n, size_t *size)
{
    return chunk_size(in, end, n, 0, size);
}

int tally__codec_f64_size(const uint8_t *in, const uint8_t *end, uint32_t n, size_t *size)
{
    return chunk_size(in, end, n, 1, size);
}

/* ------------------------------------------------------------------------ */
/* Names                                                                     */
/* ------------------------------------------------------------------------ */

const char *tally__codec_method_name(int is_f64, unsigned method)
{
    static const char *const names[2][TALLY__CK_N] = {
        {"raw", "const", "linear", "for", "delta", "delta2", "xor", "shuf-lz4", "rle"},
        {"f32-raw", "f32-const", "f32-linear", "f32-for", "f32-delta", "f32-delta2", "f32-xor",
         "f32-shuf-lz4", "f32-rle"},
    };
    unsigned k = method & 0x0F, d = method >> 4;
    if (!is_f64)
        return method <= TALLY__CK_DELTA2 ? names[0][method] : "?";
    if (d > 1 || k >= TALLY__CK_N)
        return "?";
    return names[d][k];
}
