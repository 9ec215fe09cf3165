/*
 * json_num.c — shortest round-trip formatting of doubles (see json_num.h).
 * A 128-bit exact method covers 1e-5 <= |v| < 2^53, where nearly every metric
 * value lies; outside it printf with 15..17 digits checked by strtod.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_num.h"

__extension__ typedef unsigned __int128 u128;

const uint64_t tally_pow10_u64[20] = {1ull, 10ull, 100ull, 1000ull, 10000ull, 100000ull, 1000000ull,
    10000000ull, 100000000ull, 1000000000ull, 10000000000ull, 100000000000ull, 1000000000000ull,
    10000000000000ull, 100000000000000ull, 1000000000000000ull, 10000000000000000ull,
    100000000000000000ull, 1000000000000000000ull, 10000000000000000000ull};

static u128 pow10_128(int p)
{
    return p < 20 ? (u128)tally_pow10_u64[p] : (u128)tally_pow10_u64[19] * tally_pow10_u64[p - 19];
}

/* The shortest decimal that reads back as v, for 1e-5 <= |v| < 2^53 (the
 * range of nearly every metric value), written into out (>= 40 bytes);
 * returns its length, or 0 outside that range (the caller falls back to
 * printf).
 *
 * Exact, in the manner of Steele & White / Ryu but with 128-bit integers
 * instead of tables: with v = m * 2^e, the values that round to v lie in
 * [(4m - 2 or 4m - 1), 4m + 2] / 2^(2 - e) (the lower gap is half as wide
 * when m is a power of two), inclusive when m is even (round-half-even).
 * Scaled by 10^p so that v has 17-18 integer digits (p <= 21, so 2^55 *
 * 10^p < 2^128), every integer in [lo, hi] reads back as v; digits are
 * removed while the interval still holds a multiple of ten, keeping the
 * candidate nearest to v. Checked against strtod on millions of values
 * (never wrong, never longer than printf's shortest %.Ng). */
static int fmt_shortest(double v, char *out)
{
    uint64_t bits;
    memcpy(&bits, &v, 8);
    int neg = (int)(bits >> 63);
    int bexp = (int)((bits >> 52) & 0x7FF);
    uint64_t frac = bits & ((1ull << 52) - 1);
    if (bexp == 0 || bexp == 0x7FF)
        return 0; /* subnormal, zero, inf, nan */
    double a = neg ? -v : v;
    if (a < 1e-5 || a >= 9007199254740992.0)
        return 0;
    uint64_t m = frac | (1ull << 52);
    int e = bexp - 1075; /* v = m * 2^e */
    int s = 2 - e;        /* boundaries and v scaled by 4: X / 2^s */
    uint64_t V = 4 * m, H = 4 * m + 2;
    uint64_t L = (frac == 0 && bexp > 1) ? 4 * m - 1 : 4 * m - 2;
    int inclusive = (m & 1) == 0;
    int k10 = (int)floor(log10(a));
    int p = 16 - k10;
    if (p < 0 || p > 21)
        return 0;
    u128 P = pow10_128(p);
    u128 vs = ((u128)V * P) >> s;
    if (vs < (u128)tally_pow10_u64[16]) {
        if (++p > 21)
            return 0;
        P = pow10_128(p);
    }
    u128 Lx = (u128)L * P, Hx = (u128)H * P, Vx = (u128)V * P;
    u128 mask = (((u128)1) << s) - 1;
    u128 lo = Lx >> s, hi = Hx >> s;
    int lo_exact = (Lx & mask) == 0, hi_exact = (Hx & mask) == 0;
    /* lo: smallest integer in the interval; hi: largest. */
    if (!lo_exact || !inclusive)
        lo += 1;
    if (hi_exact && !inclusive)
        hi -= 1;
    /* Nearest integer to the exact value, ties to even. */
    u128 vr = Vx >> s, rem = Vx & mask, half = ((u128)1) << (s - 1);
    if (rem > half || (rem == half && (vr & 1)))
        vr += 1;
    /* Remove digits while the interval still holds a multiple of 10^k. */
    int k = 0;
    /* All three are below 10^18 here (v * 10^p has 17 or 18 digits). */
    uint64_t t = (uint64_t)vr, lo64 = (uint64_t)lo, hi64 = (uint64_t)hi;
    for (;;) {
        uint64_t l2 = (lo64 + 9) / 10, h2 = hi64 / 10;
        if (l2 > h2)
            break;
        /* Round t to one digit fewer, half up, then clamp into [l2, h2]. */
        uint64_t q = t / 10, r = t % 10;
        if (r >= 5)
            q += 1;
        if (q < l2)
            q = l2;
        if (q > h2)
            q = h2;
        t = q;
        lo64 = l2;
        hi64 = h2;
        k++;
    }
    if (t < lo64 || t > hi64) /* cannot happen: vr is in [lo, hi] */
        return 0;
    /* digits of t */
    char dig[40];
    int n = 0;
    uint64_t tt = t;
    do {
        dig[n++] = (char)('0' + tt % 10);
        tt /= 10;
    } while (tt);
    /* value = 0.d1d2...dn x 10^dp */
    int dp = n + k - p;
    char *o = out;
    if (neg)
        *o++ = '-';
    if (dp > 0 && dp <= 16) {
        for (int i = 0; i < n || i < dp; i++) {
            if (i == dp)
                *o++ = '.';
            *o++ = i < n ? dig[n - 1 - i] : '0';
        }
    } else if (dp <= 0 && dp > -4) {
        *o++ = '0';
        *o++ = '.';
        for (int i = 0; i < -dp; i++)
            *o++ = '0';
        for (int i = 0; i < n; i++)
            *o++ = dig[n - 1 - i];
    } else {
        *o++ = dig[n - 1];
        if (n > 1) {
            *o++ = '.';
            for (int i = 1; i < n; i++)
                *o++ = dig[n - 1 - i];
        }
        int x = dp - 1;
        *o++ = 'e';
        *o++ = x < 0 ? '-' : '+';
        if (x < 0)
            x = -x;
        if (x >= 10)
            *o++ = (char)('0' + x / 10);
        *o++ = (char)('0' + x % 10);
    }
    *o = 0;
    return (int)(o - out);
}

void tally_buf_put_double(tally_buf *b, double v)
{
    if (isnan(v)) {
        tally_buf_append(b, "\"NaN\"", 5);
        return;
    }
    if (isinf(v)) {
        if (v > 0)
            tally_buf_append(b, "\"Infinity\"", 10);
        else
            tally_buf_append(b, "\"-Infinity\"", 11);
        return;
    }
    if (v == 0 && signbit(v)) {
        /* "-0.0", not "-0": JSON readers that split integers from floats
         * (Python's json) read "-0" as the integer 0 and lose the sign. */
        tally_buf_append(b, "-0.0", 4);
        return;
    }
    /* Range first: converting an out-of-range double to int64 is undefined. */
    if (fabs(v) < 9007199254740992.0 && v == (double)(int64_t)v && !(v == 0 && signbit(v))) {
        char ib[24];
        int in = snprintf(ib, sizeof ib, "%" PRId64, (int64_t)v);
        tally_buf_append(b, ib, (size_t)in);
        return;
    }
    char tmp[48];
    int n = fmt_shortest(v, tmp);
    if (n == 0) {
        for (int prec = 15; prec <= 17; prec++) {
            n = snprintf(tmp, sizeof tmp, "%.*g", prec, v);
            if (prec == 17 || strtod(tmp, NULL) == v)
                break;
        }
    }
    tally_buf_append(b, tmp, (size_t)n);
}
