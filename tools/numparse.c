/*
 * numparse.c — strtod with Clinger's exact fast path (see numparse.h).
 */
#include "numparse.h"

#include <stdint.h>
#include <stdlib.h>

static const double POW10[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                 1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

double num_parse(const char *s, char **end)
{
    const char *p = s;
    int neg = 0;
    if (*p == '-' || *p == '+') {
        neg = *p == '-';
        p++;
    }
    uint64_t w = 0;
    int digits = 0, exp10 = 0, any = 0;
    while (*p == '0') { /* leading zeros add nothing */
        p++;
        any = 1;
    }
    while (*p >= '0' && *p <= '9') {
        if (++digits > 19)
            goto slow;
        w = w * 10 + (uint64_t)(*p - '0');
        p++;
        any = 1;
    }
    if (*p == '.') {
        p++;
        if (digits == 0)
            while (*p == '0') { /* 0.000123: zeros shift the exponent only */
                exp10--;
                p++;
                any = 1;
            }
        while (*p >= '0' && *p <= '9') {
            if (++digits > 19)
                goto slow;
            w = w * 10 + (uint64_t)(*p - '0');
            exp10--;
            p++;
            any = 1;
        }
    }
    if (!any)
        goto slow; /* nan, inf, ".", "" ... */
    if (*p == 'e' || *p == 'E') {
        const char *q = p + 1;
        int eneg = 0, e = 0, edigits = 0;
        if (*q == '-' || *q == '+') {
            eneg = *q == '-';
            q++;
        }
        while (*q >= '0' && *q <= '9') {
            if (++edigits > 4)
                goto slow;
            e = e * 10 + (*q - '0');
            q++;
        }
        if (!edigits)
            goto slow;
        exp10 += eneg ? -e : e;
        p = q;
    }
    /* only a plain field end; anything else (x, p, ...) is strtod's call */
    if (!(*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t' || *p == 0))
        goto slow;
    if (w > (1ull << 53) || exp10 < -22 || exp10 > 22)
        goto slow;
    double v = (double)w;
    v = exp10 >= 0 ? v * POW10[exp10] : v / POW10[-exp10];
    *end = (char *)p;
    return neg ? -v : v;
slow:
    return strtod(s, end);
}
