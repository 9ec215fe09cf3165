/*
 * test_logbatch.c — log-batch's two parsers (server/logbatch.c, the general
 * one over jsmn tokens; server/logbatch_fast.c, one pass for the common
 * shape) and the JSON number reader they share (server/json_num_read.c).
 *
 *  - the number reader returns strtod's double bit for bit and the length
 *    of the RFC 8259 number at the start of its input, 0 when none starts
 *    there;
 *  - the fast parser accepts the bodies clients send (compact, with
 *    Python's spaces, run_uuid beside run_id, params and tags in either
 *    order, step absent) and
 *    declines each shape it does not own;
 *  - for every body, tally_logbatch_parse (fast first) and the general
 *    parser alone give the same answer: return code, message, and every
 *    field of the result — over hand-picked bodies (including errors of
 *    checks (4)-(7) reached through the fast parser) and 300,000 random
 *    mutations of valid ones.
 */
#include <stdint.h>

#include "json_num_read.h"
#include "logbatch_internal.h"
#include "logbatch_same.h"
#include "test.h"

static uint64_t rng = 0x2545F4914F6CDD1Dull;
static uint64_t next_u64(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* ------------------------------------------------------------------------ */
/* The number reader                                                         */
/* ------------------------------------------------------------------------ */

static void check_number(const char *text, size_t want_len)
{
    double got = -1;
    size_t n = tally_json_number_read(text, text + strlen(text), &got);
    if (n != want_len)
        TEST_FAIL_("\"%s\": length %zu, want %zu", text, n, want_len);
    if (n == 0)
        return;
    char tmp[512];
    memcpy(tmp, text, n);
    tmp[n] = 0;
    double want = n >= 400 ? NAN : strtod(tmp, NULL);
    uint64_t a, b;
    memcpy(&a, &got, 8);
    memcpy(&b, &want, 8);
    if (a != b && !(isnan(got) && isnan(want)))
        TEST_FAIL_("\"%s\": %.17g, strtod %.17g", tmp, got, want);
    ASSERT_BITS_EQ(tally_json_number_to_double(text, n), got);
}

static void test_number_read(void)
{
    static const char *fixed[] = {"0", "-0", "1", "-1", "0.5", "1e5", "1E5", "1e+5", "1e-5",
        "-0.0", "123456789012345678", "12345678901234567890123", "0.000000000000000000001234",
        "1.7976931348623157e308", "1.7976931348623159e308", "1e400", "-1e400", "1e-400",
        "4.9406564584124654e-324", "2.2250738585072011e-308", "9007199254740993",
        "0.1", "0.30000000000000004", "1e23", "8.98846567431158e307", "5e-324", "1e-99999999999",
        "1e99999999999", "123.456e-7", "0.99999999999999999999999"};
    for (size_t i = 0; i < sizeof fixed / sizeof *fixed; i++)
        check_number(fixed[i], strlen(fixed[i]));
    /* Where a number stops, and where none starts. */
    check_number("12,", 2);
    check_number("01", 1);
    check_number("-0.5e3}", 6);
    check_number("1.5.5", 3);
    static const char *none[] = {"", "-", ".5", "1.", "1e", "1e+", "-x", "+1", "x1", "1.e5"};
    for (size_t i = 0; i < sizeof none / sizeof *none; i++) {
        double d;
        ASSERT_EQ(tally_json_number_read(none[i], none[i] + strlen(none[i]), &d), 0);
    }
    /* A long number is strtod's up to 399 bytes, NAN from 400. */
    char longnum[420];
    memset(longnum, '1', sizeof longnum - 1);
    longnum[sizeof longnum - 1] = 0;
    longnum[399] = 0;
    check_number(longnum, 399);
    longnum[399] = '1';
    longnum[400] = 0;
    check_number(longnum, 400);
    /* Random doubles as Python and C print them. */
    static const char *fmts[] = {"%.17g", "%.15g", "%.16g", "%g", "%.3e", "%.12e", "%.1f", "%.9f"};
    char text[400];
    for (int i = 0; i < 200000; i++) {
        uint64_t bits = next_u64();
        double v;
        if (i % 3 == 0) {
            memcpy(&v, &bits, 8);
            if (!isfinite(v))
                continue;
        } else {
            v = (double)(bits >> 11) / (double)(1ull << 53) * pow(10, (int)(bits % 40) - 20);
            if (bits & 1)
                v = -v;
        }
        snprintf(text, sizeof text, fmts[i % 8], v);
        if (strchr(text, 'n') || strchr(text, 'i'))
            continue;
        check_number(text, strlen(text));
    }
}

/* ------------------------------------------------------------------------ */
/* Bodies                                                                    */
/* ------------------------------------------------------------------------ */

static tally_logbatch lb_a, lb_b;

/* Parses body both ways, asserts the same answer, returns the fast
 * parser's own verdict (0, -1 or TALLY_LB_DECLINED). */
static int both(const char *body, size_t len)
{
    int ra = tally_logbatch_parse(&lb_a, body, len);
    int rb = tally__logbatch_parse_general(&lb_b, body, len);
    if (!lb_same(ra, &lb_a, rb, &lb_b))
        TEST_FAIL_("different answers for %.*s: %d \"%s\" / %d \"%s\"", (int)(len > 300 ? 300 : len),
                   body, ra, lb_a.message, rb, lb_b.message);
    tally_logbatch c;
    tally_logbatch_init(&c);
    int r = tally__logbatch_parse_fast(&c, body, len);
    if (r != TALLY_LB_DECLINED)
        ASSERT_EQ(r, ra);
    tally_logbatch_free(&c);
    return r;
}

static int both_str(const char *body) { return both(body, strlen(body)); }

/* A body of n metrics over k keys, as the bench and clients send it. */
static size_t body_of(char *b, size_t cap, int n, int k, const char *sep_comma, const char *sep_colon)
{
    size_t len = (size_t)snprintf(b, cap, "{\"run_id\"%s\"r0123456789abcdef\"%s\"metrics\"%s[", sep_colon,
                                  sep_comma, sep_colon);
    for (int i = 0; i < n; i++)
        len += (size_t)snprintf(b + len, cap - len,
                                "%s{\"key\"%s\"train/m_%d\"%s\"value\"%s%.17g%s\"timestamp\"%s%lld%s"
                                "\"step\"%s%d}",
                                i ? sep_comma : "", sep_colon, i % k, sep_comma, sep_colon,
                                1.0 / (1.0 + i * 1e-3), sep_comma, sep_colon,
                                1700000000000ll + i, sep_comma, sep_colon, i / k);
    len += (size_t)snprintf(b + len, cap - len, "]}");
    return len;
}

static void test_fast_accepts_what_clients_send(void)
{
    static char b[200000];
    body_of(b, sizeof b, 1000, 10, ",", ":");
    ASSERT_EQ(both_str(b), 0);
    ASSERT_EQ(lb_a.n_metrics, 1000);
    ASSERT_EQ(lb_a.n_series, 10);
    body_of(b, sizeof b, 7, 3, ", ", ": "); /* Python's json.dumps */
    ASSERT_EQ(both_str(b), 0);
    ASSERT_EQ(both_str(" \n{ \"metrics\" : [ ] , \"run_id\":\"abc\" }\r\n\t"), 0);
    ASSERT_EQ(both_str("{\"run_id\":\"abc\",\"tags\":[{\"key\":\"t\",\"value\":\"x\"}],"
                       "\"params\":[{\"key\":\"p\",\"value\":\"1\"},{\"key\":\"q\"}],"
                       "\"metrics\":[{\"timestamp\":5,\"value\":-0.0,\"key\":\"k\"}]}"),
              0);
    ASSERT_EQ(lb_a.n_params, 2);
    ASSERT_EQ(lb_a.n_tags, 1);
    ASSERT(strcmp(lb_a.params[1].value, "") == 0 && strcmp(lb_a.tags[0].key, "t") == 0);
    ASSERT_EQ(lb_a.series[0].steps[0], 0);
    ASSERT_EQ(both_str("{\"run_id\":\"r\",\"params\":[],\"tags\":[]}"), 0);
    /* The Python client sends run_uuid beside run_id. */
    ASSERT_EQ(both_str("{\"run_id\": \"abc\", \"run_uuid\": \"abc\", \"metrics\": []}"), 0);
    ASSERT_EQ(both_str("{\"run_uuid\":\"other\",\"run_id\":\"abc\"}"), 0);
    ASSERT(strcmp(lb_a.run_id, "abc") == 0);
    ASSERT_EQ(both_str("{\"run_uuid\":\"\",\"run_id\":\"abc\"}"), 0);
    ASSERT_EQ(both_str("{\"run_id\":\"r\",\"metrics\":[{\"key\":\"k\",\"value\":1e308,"
                       "\"timestamp\":0,\"step\":-999999999999999999}]}"),
              0);
    ASSERT_EQ(lb_a.series[0].steps[0], -999999999999999999ll);
    /* 100 params and 100 tags in either order: the tags move next to the params. */
    size_t n = (size_t)snprintf(b, sizeof b, "{\"run_id\":\"r\",\"tags\":[");
    for (int i = 0; i < 100; i++)
        n += (size_t)snprintf(b + n, sizeof b - n, "%s{\"key\":\"t%d\",\"value\":\"v%d\"}", i ? "," : "", i, i);
    n += (size_t)snprintf(b + n, sizeof b - n, "],\"params\":[");
    for (int i = 0; i < 100; i++)
        n += (size_t)snprintf(b + n, sizeof b - n, "%s{\"key\":\"p%d\",\"value\":\"w%d\"}", i ? "," : "", i, i);
    snprintf(b + n, sizeof b - n, "]}");
    ASSERT_EQ(both_str(b), 0);
    ASSERT(strcmp(lb_a.tags[99].key, "t99") == 0 && strcmp(lb_a.params[99].value, "w99") == 0);
}

/* Checks (4)-(7) reached through the fast parser: same messages. */
static void test_fast_errors_are_the_general_ones(void)
{
    static const char *bodies[] = {
        "{\"run_id\":\"bad run\",\"metrics\":[]}",
        "{\"run_id\":\"_x\"}",
        "{\"run_id\":\"r\",\"metrics\":[{\"key\":\"a//b\",\"value\":1,\"timestamp\":1}]}",
        "{\"run_id\":\"r\",\"metrics\":[{\"key\":\"../x\",\"value\":1,\"timestamp\":1}]}",
        "{\"run_id\":\"r\",\"metrics\":[{\"key\":\"ok\",\"value\":1,\"timestamp\":-1}]}",
        "{\"run_id\":\"r\",\"metrics\":[{\"key\":\"bad!\",\"value\":1,\"timestamp\":1}]}",
        "{\"run_id\":\"r\",\"metrics\":[{\"key\":\"\xC3\xA9t\xC3\xA9\",\"value\":1,\"timestamp\":1}]}",
        "{\"run_id\":\"r\",\"metrics\":[{\"key\":\"\xC3\",\"value\":1,\"timestamp\":1}]}",
        "{\"run_id\":\"r\",\"params\":[{\"key\":\"p\",\"value\":\"1\"},{\"key\":\"p\",\"value\":\"2\"}]}",
        "{\"run_id\":\"r\",\"tags\":[{\"key\":\"/abs\"}]}",
    };
    for (size_t i = 0; i < sizeof bodies / sizeof *bodies; i++) {
        int r = both_str(bodies[i]);
        ASSERT(r != TALLY_LB_DECLINED);
    }
    ASSERT_EQ(both_str(bodies[0]), -1);
    ASSERT(strstr(lb_a.message, "run_id") != NULL);
    ASSERT_EQ(both_str(bodies[8]), -1);
    ASSERT(strstr(lb_a.message, "Duplicate parameter keys") != NULL);
}

/* Each shape the fast parser leaves to the general one. */
static void test_fast_declines_what_it_does_not_own(void)
{
    static const char *bodies[] = {
        "",
        "[]",
        "\"{\\\"run_id\\\":\\\"r\\\"}\"",
        "{}",
        "{\"run_id\":\"\"}",
        "{\"run_id\":null}",
        "{\"run_uuid\":\"r\"}",
        "{\"run_uuid\":\"r\",\"run_id\":\"\"}",
        "{\"run_uuid\":5,\"run_id\":\"r\"}",
        "{\"run_uuid\":\"r\",\"run_id\":\"r\",\"run_uuid\":\"s\"}",
        "{\"runId\":\"r\"}",
        "{\"run_id\":\"r\",\"run_id\":\"s\"}",
        "{\"run_id\":\"r\",\"extra\":1}",
        "{\"run_id\":\"r\\u0041\"}",
        "{\"run_id\":\"r\",\"metrics\":null}",
        "{\"run_id\":\"r\",\"metrics\":{}}",
        "{\"run_id\":\"r\",\"metrics\":[{}]}",
        "{\"run_id\":\"r\",\"metrics\":[1]}",
        "{\"run_id\":\"r\",\"metrics\":[{\"key\":\"k\",\"value\":\"1\",\"timestamp\":1}]}",
        "{\"run_id\":\"r\",\"metrics\":[{\"key\":\"k\",\"value\":true,\"timestamp\":1}]}",
        "{\"run_id\":\"r\",\"metrics\":[{\"key\":\"k\",\"value\":1,\"timestamp\":1.0}]}",
        "{\"run_id\":\"r\",\"metrics\":[{\"key\":\"k\",\"value\":1,\"timestamp\":1e3}]}",
        "{\"run_id\":\"r\",\"metrics\":[{\"key\":\"k\",\"value\":1,\"timestamp\":\"5\"}]}",
        "{\"run_id\":\"r\",\"metrics\":[{\"key\":\"k\",\"value\":1,\"timestamp\":1234567890123456789}]}",
        "{\"run_id\":\"r\",\"metrics\":[{\"key\":\"k\",\"value\":1,\"timestamp\":01}]}",
        "{\"run_id\":\"r\",\"metrics\":[{\"key\":\"k\",\"value\":1e999,\"timestamp\":1}]}",
        "{\"run_id\":\"r\",\"metrics\":[{\"key\":\"k\",\"value\":1,\"timestamp\":1,\"step\":null}]}",
        "{\"run_id\":\"r\",\"metrics\":[{\"key\":\"k\",\"value\":1,\"timestamp\":1,\"x\":1}]}",
        "{\"run_id\":\"r\",\"metrics\":[{\"key\":\"k\",\"key\":\"j\",\"value\":1,\"timestamp\":1}]}",
        "{\"run_id\":\"r\",\"metrics\":[{\"key\":\"k\",\"value\":1}]}",
        "{\"run_id\":\"r\",\"metrics\":[{\"key\":\"\",\"value\":1,\"timestamp\":1}]}",
        "{\"run_id\":\"r\",\"metrics\":[{\"key\":\"k\\n\",\"value\":1,\"timestamp\":1}]}",
        "{\"run_id\":\"r\",\"metrics\":[{\"key\":\"k\",\"value\":1,\"timestamp\":1},]}",
        "{\"run_id\":\"r\",\"metrics\":[{\"key\":\"k\",\"value\":1,\"timestamp\":1}]",
        "{\"run_id\":\"r\",\"metrics\":[{\"key\":\"k\",\"value\":1,\"timestamp\":1}]}x",
        "{\"run_id\":\"r\",\"metrics\":[{\"key\":\"k\" \"value\":1,\"timestamp\":1}]}",
        "{\"run_id\":\"r\",\"params\":[{\"key\":\"p\",\"value\":1}]}",
        "{\"run_id\":\"r\",\"params\":[{\"key\":\"p\",\"value\":null}]}",
        "{\"run_id\":\"r\",\"params\":[{\"value\":\"v\"}]}",
        "{\"run_id\":\"r\",\"tags\":[{\"key\":\"\"}]}",
        "{\"run_id\":\"r\",\"tags\":[{\"key\":\"t\",\"value\":\"a\tb\"}]}",
        "{\"run_id\":\"r\",\"metrics\"\"params\":[{\"key\":\"a\"}]}", /* a name without ':' */
        "{\"run_id\":\"r\",\"metrics\":[{\"key\"\"value\":1,\"timestamp\":1}]}",
        "{\"run_id\":\"r\"}\0",
    };
    for (size_t i = 0; i < sizeof bodies / sizeof *bodies; i++) {
        size_t len = strlen(bodies[i]) + (i == sizeof bodies / sizeof *bodies - 1);
        if (both(bodies[i], len) != TALLY_LB_DECLINED)
            TEST_FAIL_("fast parser did not decline %s", bodies[i]);
    }
    /* Over the limits: 1001 metrics, 101 params, 1000 metrics + 1 tag. */
    static char b[200000];
    body_of(b, sizeof b, 1001, 10, ",", ":");
    ASSERT_EQ(both_str(b), TALLY_LB_DECLINED);
    ASSERT_EQ(lb_a.n_metrics, 0);
    size_t n = (size_t)snprintf(b, sizeof b, "{\"run_id\":\"r\",\"params\":[");
    for (int i = 0; i < 101; i++)
        n += (size_t)snprintf(b + n, sizeof b - n, "%s{\"key\":\"p%d\"}", i ? "," : "", i);
    snprintf(b + n, sizeof b - n, "]}");
    ASSERT_EQ(both_str(b), TALLY_LB_DECLINED);
    n = body_of(b, sizeof b, 1000, 10, ",", ":");
    snprintf(b + n - 1, sizeof b - n + 1, ",\"tags\":[{\"key\":\"t\"}]}");
    ASSERT_EQ(both_str(b), TALLY_LB_DECLINED);
}

/* Random edits of valid bodies: both parsers agree on every one. */
static void test_mutations_agree(void)
{
    static const char *seeds[] = {
        "{\"run_id\":\"abc\",\"run_uuid\":\"abc\",\"metrics\":[{\"key\":\"loss\",\"value\":0.25,\"timestamp\":17,"
        "\"step\":3},{\"key\":\"acc\",\"value\":-1.5e-3,\"timestamp\":18}],\"params\":[{\"key\":"
        "\"lr\",\"value\":\"0.1\"}],\"tags\":[{\"key\":\"t\",\"value\":\"v\"}]}",
        "{\"run_id\": \"r1\", \"metrics\": [{\"key\": \"a/b\", \"value\": 1, \"timestamp\": 0, "
        "\"step\": 0}, {\"key\": \"a/b\", \"value\": 2, \"timestamp\": 1, \"step\": 1}]}",
        "{\"tags\":[{\"key\":\"x\"}],\"run_id\":\"Z9\",\"params\":[{\"key\":\"p\",\"value\":\"\"}]}",
    };
    static const char alphabet[] = "\"\\,:{}[] 0123456789-+.eEnulltrfas/_\x01\x7f\xc3\xa9";
    char buf[512];
    int declined = 0, accepted_ok = 0, accepted_err = 0;
    for (int it = 0; it < 300000; it++) {
        const char *seed = seeds[it % 3];
        size_t len = strlen(seed);
        memcpy(buf, seed, len);
        int edits = 1 + (int)(next_u64() % 3);
        for (int e = 0; e < edits; e++) {
            uint64_t r = next_u64();
            size_t at = len ? (size_t)(r >> 8) % len : 0;
            char ch = alphabet[(r >> 40) % (sizeof alphabet - 1)];
            switch (r % 5) {
            case 0: /* replace */
                if (len)
                    buf[at] = ch;
                break;
            case 1: /* insert */
                if (len + 1 < sizeof buf) {
                    memmove(buf + at + 1, buf + at, len - at);
                    buf[at] = ch;
                    len++;
                }
                break;
            case 2: /* delete */
                if (len) {
                    memmove(buf + at, buf + at + 1, len - at - 1);
                    len--;
                }
                break;
            case 3: { /* delete a span */
                size_t span = 1 + (size_t)(r >> 50) % 24;
                if (at + span <= len) {
                    memmove(buf + at, buf + at + span, len - at - span);
                    len -= span;
                }
                break;
            }
            default: { /* duplicate a span */
                size_t span = 1 + (size_t)(r >> 50) % 24;
                if (at + span <= len && len + span < sizeof buf) {
                    memmove(buf + at + span, buf + at, len - at);
                    len += span;
                }
                break;
            }
            }
        }
        int r = both(buf, len);
        if (r == TALLY_LB_DECLINED)
            declined++;
        else if (r == 0)
            accepted_ok++;
        else
            accepted_err++;
    }
    /* The comparison means something only if every path was taken often. */
    ASSERT_GT(declined, 10000);
    ASSERT_GT(accepted_ok, 10000);
    ASSERT_GT(accepted_err, 100);
}

int main(void)
{
    tally_logbatch_init(&lb_a);
    tally_logbatch_init(&lb_b);
    TEST_RUN(test_number_read);
    TEST_RUN(test_fast_accepts_what_clients_send);
    TEST_RUN(test_fast_errors_are_the_general_ones);
    TEST_RUN(test_fast_declines_what_it_does_not_own);
    TEST_RUN(test_mutations_agree);
    tally_logbatch_free(&lb_a);
    tally_logbatch_free(&lb_b);
    return TEST_DONE();
}
