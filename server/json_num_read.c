/*
 * json_num_read.c — JSON number text to the nearest double, as strtod would
 * give, mostly without strtod (see json_num_read.h). Exactness: Clinger's
 * fast path is one correctly rounded operation on exact operands; the
 * 19-digit path checks its guess with 128-bit integers; everything else is
 * strtod's.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json_num.h"
#include "json_num_read.h"

__extension__ typedef unsigned __int128 u128;

/* Is d (positive, normal) the double nearest to w / 10^q10 (q10 in 1..19)?
 * Exact, in 128-bit integers: with d = m * 2^e (e < 0), compare
 * |w * 2^-e - m * 10^q10| with half of 10^q10. -1: too large to decide. */
static int nearest(uint64_t w, int q10, double d)
{
    uint64_t bits;
    memcpy(&bits, &d, 8);
    int bexp = (int)(bits >> 52);
    if (bexp == 0 || bexp == 0x7FF)
        return -1;
    uint64_t m = (bits & ((1ull << 52) - 1)) | (1ull << 52);
    int sh = 1075 - bexp; /* d = m * 2^-sh */
    if (sh <= 0 || sh >= 128 || ((u128)w >> (127 - sh)) != 0)
        return -1;
    u128 a = (u128)w << sh, p = tally_pow10_u64[q10], b = (u128)m * p;
    u128 diff = a > b ? a - b : b - a;
    u128 twice = diff << 1;
    if (twice < p)
        return 1;
    if (twice == p)
        return (m & 1) == 0;
    return 0;
}

/* w / 10^q10 correctly rounded, for w < 2^64, 1 <= q10 <= 19; 0 when the
 * fast check cannot decide (caller uses strtod). */
static int div_pow10(uint64_t w, int q10, double *out)
{
    double d = (double)w / (double)tally_pow10_u64[q10];
    if (!(d > 0))
        return 0;
    uint64_t bits;
    memcpy(&bits, &d, 8);
    /* The quotient of two roundings is within one ulp of the answer. */
    static const int64_t step[3] = {0, 1, -1};
    for (int tries = 0; tries < 3; tries++) {
        uint64_t cb = bits + (uint64_t)step[tries];
        double c;
        memcpy(&c, &cb, 8);
        int r = nearest(w, q10, c);
        if (r < 0)
            return 0;
        if (r) {
            *out = c;
            return 1;
        }
    }
    return 0;
}

static double via_strtod(const char *s, size_t n)
{
    char tmp[400];
    if (n >= sizeof tmp)
        return NAN;
    memcpy(tmp, s, n);
    tmp[n] = 0;
    return strtod(tmp, NULL);
}

static inline int is_digit(const char *p, const char *end)
{
    return p < end && (unsigned)(*p - '0') < 10;
}

/* One pass: the grammar is checked while the significand (m, nd digits
 * after the leading zeros) and the power of ten (scale) are gathered; then
 * Clinger's fast path when the significand has at most 15 digits and the
 * power of ten is small (both exact in a double, one correctly rounded
 * operation); for up to 19 digits with a negative power of ten (the
 * 17-digit values Python's repr() sends), a guess checked exactly by
 * div_pow10; anything else goes to strtod. */
size_t tally_json_number_read(const char *s, const char *end, double *out)
{
    static const double p10[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                   1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                   1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
    const char *p = s;
    int neg = p < end && *p == '-';
    p += neg;
    if (!is_digit(p, end))
        return 0;
    uint64_t m = 0; /* wraps when nd > 19: then only strtod's answer counts */
    int nd = 0, scale = 0;
    if (*p == '0') {
        p++;
    } else {
        for (; is_digit(p, end); p++) {
            nd++;
            m = m * 10 + (unsigned)(*p - '0');
        }
    }
    if (p < end && *p == '.') {
        p++;
        if (!is_digit(p, end))
            return 0;
        for (; is_digit(p, end); p++) {
            unsigned d = (unsigned)(*p - '0');
            nd += nd || d;
            m = m * 10 + d;
            scale--;
        }
    }
    int big_exp = 0;
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        int eneg = 0, e = 0;
        if (p < end && (*p == '+' || *p == '-'))
            eneg = *p++ == '-';
        if (!is_digit(p, end))
            return 0;
        for (; is_digit(p, end); p++) {
            if (e > 100000)
                big_exp = 1;
            else
                e = e * 10 + (*p - '0');
        }
        scale += eneg ? -e : e;
    }
    size_t n = (size_t)(p - s);
    if (nd > 19 || big_exp) {
        *out = via_strtod(s, n);
        return n;
    }
    double d;
    if (m == 0) {
        d = 0.0;
    } else if (nd <= 15 && scale >= -22 && scale <= 22) {
        d = (double)m; /* exact: m < 10^15 < 2^53 */
        d = scale < 0 ? d / p10[-scale] : d * p10[scale];
    } else if (!(scale < 0 && scale >= -19 && div_pow10(m, -scale, &d))) {
        *out = via_strtod(s, n);
        return n;
    }
    *out = neg ? -d : d;
    return n;
}

double tally_json_number_to_double(const char *s, size_t n)
{
    double d;
    if (tally_json_number_read(s, s + n, &d) != n)
        return via_strtod(s, n);
    return d;
}
