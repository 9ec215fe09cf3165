/*
 * test_numparse.c — tools/numparse.c (the metric-file number parser of
 * `tally import mlruns`) returns exactly what strtod returns, bit for bit,
 * and stops where strtod stops: random doubles printed as Python and C
 * print them (shortest round trip, %.15g..%.17g, %e), short decimals,
 * integers, zeros, subnormals, huge and tiny exponents, nan/inf spellings.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../tools/numparse.c"
#include "test.h"

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t next_u64(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static void check(const char *text)
{
    char *e1, *e2;
    double a = num_parse(text, &e1);
    double b = strtod(text, &e2);
    if (e1 != e2)
        TEST_FAIL_("'%s': stops at %td, strtod at %td", text, e1 - text, e2 - text);
    if (isnan(b)) {
        ASSERT(isnan(a));
        return;
    }
    ASSERT_BITS_EQ(a, b);
}

static void test_random_doubles(void)
{
    char buf[64];
    for (int i = 0; i < 100000; i++) {
        uint64_t bits = next_u64();
        double v;
        memcpy(&v, &bits, 8);
        if (!isfinite(v))
            continue;
        static const char *fmts[] = {"%.17g", "%.16g", "%.15g", "%.6g", "%.3e", "%.12f"};
        for (size_t f = 0; f < sizeof fmts / sizeof *fmts; f++) {
            snprintf(buf, sizeof buf, fmts[f], v);
            check(buf);
        }
    }
}

static void test_metric_like(void)
{
    char buf[64];
    for (int i = 0; i < 100000; i++) {
        double v = (double)(next_u64() >> 11) / 9007199254740992.0; /* [0, 1) */
        float f = (float)(v * 10);
        for (int prec = 1; prec <= 17; prec++) {
            snprintf(buf, sizeof buf, "%.*g", prec, v);
            check(buf);
            snprintf(buf, sizeof buf, "%.*g", prec, (double)f);
            check(buf);
            snprintf(buf, sizeof buf, "-%.*g 12", prec, v * 1000);
            check(buf);
        }
    }
}

static void test_edges(void)
{
    static const char *cases[] = {
        "0", "0.0", "-0.0", "-0", "1", "10", "1e22", "1e23", "9007199254740992",
        "9007199254740993", "18446744073709551615", "123456789012345678901234567890",
        "0.1", "0.30000000000000004", "1e-22", "1e-23", "5e-324", "2.2250738585072014e-308",
        "1.7976931348623157e308", "1e308", "1e309", "-1e400", "1e-400", "1.", ".5", "-.5",
        "nan", "NaN", "-nan", "inf", "-inf", "Infinity", "-Infinity", "0x1p3", "1e", "1e+",
        "1e-5", "1E5", "+3", "3.14x", "", "-", ".", "e5", "00000000000000000000001.5",
        "0.000000000000000000000000000001", "1234567890123456789", "12345678901234567890",
        "4.35 7", "2\n", "7\r\n",
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        check(cases[i]);
}

int main(void)
{
    TEST_RUN(test_edges);
    TEST_RUN(test_random_doubles);
    TEST_RUN(test_metric_like);
    return TEST_DONE();
}
