/*
 * test_json_out.c — the JSON writer (server/json_out.c): escaping, invalid
 * UTF-8 replacement, doubles (shortest round trip, NaN/inf strings), int64
 * extremes, commas and nesting; and buf.c underneath. Every output is also
 * parsed back with cJSON to prove it is valid JSON.
 */
#include <cjson/cJSON.h>
#include <float.h>
#include <stdint.h>

#include "test.h"

#include "buf.h"
#include "json_out.h"

/* Parses b as JSON (must succeed) and frees the tree. */
static void assert_valid(const tally_buf *b)
{
    cJSON *root = cJSON_ParseWithLength(b->data, b->len);
    if (!root)
        TEST_FAIL_("not valid JSON: %s", b->data);
    cJSON_Delete(root);
}

static const char *one_string(tally_buf *b, const char *s, size_t n)
{
    tally_buf_reset(b);
    tally_json j;
    tally_json_start(&j, b);
    tally_json_string_n(&j, s, n);
    return b->data;
}

static void test_buf(void)
{
    tally_buf b = {0};
    tally_buf_puts(&b, "ab");
    tally_buf_putc(&b, 'c');
    tally_buf_printf(&b, "%d-%s", 42, "x");
    ASSERT_STR_EQ(b.data, "abc42-x");
    ASSERT_EQ(b.len, 7);
    /* Growth through printf past the first capacity. */
    for (int i = 0; i < 1000; i++)
        tally_buf_printf(&b, "%08d", i);
    ASSERT_EQ(b.len, 7 + 8000);
    ASSERT_EQ(b.data[b.len], 0);
    tally_buf_reset(&b);
    ASSERT_EQ(b.len, 0);
    ASSERT_STR_EQ(b.data, "");
    ASSERT(!tally_buf_failed(&b));
    /* An impossible reservation marks the buffer failed and drops it. */
    tally_buf_puts(&b, "keep");
    ASSERT_EQ(tally_buf_reserve(&b, SIZE_MAX - 4), -1);
    ASSERT(tally_buf_failed(&b));
    ASSERT_EQ(b.len, 0);
    tally_buf_puts(&b, "ignored");
    ASSERT_EQ(b.len, 0);
    tally_buf_free(&b);
    tally_buf_free(&b); /* twice is fine */
    ASSERT(b.data == NULL);
}

static void test_escaping(void)
{
    tally_buf b = {0};
    ASSERT_STR_EQ(one_string(&b, "plain", 5), "\"plain\"");
    ASSERT_STR_EQ(one_string(&b, "q\"b\\s/", 6), "\"q\\\"b\\\\s/\"");
    ASSERT_STR_EQ(one_string(&b, "\n\r\t\b\f", 5), "\"\\n\\r\\t\\b\\f\"");
    ASSERT_STR_EQ(one_string(&b, "\x01\x1f", 2), "\"\\u0001\\u001f\"");
    ASSERT_STR_EQ(one_string(&b, "a\0b", 3), "\"a\\u0000b\"");
    ASSERT_STR_EQ(one_string(&b, "\x7f", 1), "\"\x7f\"");
    /* Valid UTF-8 passes through: 2, 3 and 4 byte forms. */
    ASSERT_STR_EQ(one_string(&b, "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 9),
                  "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"");
    assert_valid(&b);
    tally_buf_free(&b);
}

static void test_invalid_utf8(void)
{
    tally_buf b = {0};
    const char *fffd = "\xef\xbf\xbd";
    char want[64];
    /* A lone continuation byte, a truncated sequence, an overlong '/',
     * an encoded surrogate, > U+10FFFF, and 0xff. */
    static const struct {
        const char *in;
        size_t n;
        int bad;
    } cases[] = {
        {"\x80", 1, 1},          {"\xc3", 1, 1},         {"\xc0\xaf", 2, 2},
        {"\xed\xa0\x80", 3, 3},  {"\xf4\x90\x80\x80", 4, 4}, {"\xff", 1, 1},
        {"\xe2\x82", 2, 2},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t o = 0;
        want[o++] = '"';
        for (int k = 0; k < cases[i].bad; k++) {
            memcpy(want + o, fffd, 3);
            o += 3;
        }
        want[o++] = '"';
        want[o] = 0;
        ASSERT_STR_EQ(one_string(&b, cases[i].in, cases[i].n), want);
        assert_valid(&b);
    }
    /* Good text around a bad byte survives. */
    ASSERT_STR_EQ(one_string(&b, "a\xffz", 3), "\"a\xef\xbf\xbdz\"");
    tally_buf_free(&b);
}

static void test_numbers(void)
{
    tally_buf b = {0};
    tally_json j;
    tally_json_start(&j, &b);
    tally_json_array_open(&j);
    tally_json_int(&j, INT64_MAX);
    tally_json_int(&j, INT64_MIN);
    tally_json_int(&j, 0);
    tally_json_int(&j, -1);
    tally_json_int(&j, 9007199254740993LL);
    tally_json_array_close(&j);
    ASSERT_STR_EQ(b.data, "[9223372036854775807,-9223372036854775808,0,-1,9007199254740993]");

    tally_buf_reset(&b);
    tally_json_start(&j, &b);
    tally_json_array_open(&j);
    tally_json_double(&j, NAN);
    tally_json_double(&j, INFINITY);
    tally_json_double(&j, -INFINITY);
    tally_json_double(&j, 0.1);
    tally_json_double(&j, 1.0);
    tally_json_double(&j, -0.0);
    tally_json_double(&j, 1e300);
    tally_json_double(&j, 5e-324);
    tally_json_array_close(&j);
    ASSERT_STR_EQ(b.data, "[\"NaN\",\"Infinity\",\"-Infinity\",0.1,1,-0.0,1e+300,4.94065645841247e-324]");
    assert_valid(&b);

    /* Shortest round trip: every value reads back bit-identical. */
    double vals[] = {0.1 + 0.2, 1.0 / 3.0, DBL_MAX, DBL_MIN, -DBL_MIN, 123456789.123456789,
                     2.5e-8, 9007199254740993.0};
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        tally_buf_reset(&b);
        tally_json_start(&j, &b);
        tally_json_double(&j, vals[i]);
        ASSERT_BITS_EQ(strtod(b.data, NULL), vals[i]);
    }
    tally_buf_reset(&b);
    tally_json_start(&j, &b);
    tally_json_double(&j, 0.1 + 0.2);
    ASSERT_STR_EQ(b.data, "0.30000000000000004");
    tally_buf_free(&b);
}

static void test_nesting(void)
{
    tally_buf b = {0};
    tally_json j;
    tally_json_start(&j, &b);
    tally_json_object_open(&j);
    tally_json_kv_string(&j, "a", "x");
    tally_json_kv_int(&j, "b", 1);
    tally_json_kv_double(&j, "c", 0.5);
    tally_json_kv_bool(&j, "d", 1);
    tally_json_kv_bool(&j, "e", 0);
    tally_json_key(&j, "f");
    tally_json_null(&j);
    tally_json_key(&j, "g");
    tally_json_array_open(&j);
    tally_json_array_close(&j);
    tally_json_key(&j, "h");
    tally_json_object_open(&j);
    tally_json_object_close(&j);
    tally_json_key(&j, "i");
    tally_json_array_open(&j);
    tally_json_object_open(&j);
    tally_json_kv_string(&j, "k", NULL);
    tally_json_object_close(&j);
    tally_json_object_open(&j);
    tally_json_object_close(&j);
    tally_json_raw(&j, "[1,2]");
    tally_json_string(&j, "s");
    tally_json_array_close(&j);
    tally_json_object_close(&j);
    ASSERT_STR_EQ(b.data, "{\"a\":\"x\",\"b\":1,\"c\":0.5,\"d\":true,\"e\":false,\"f\":null,\"g\":[],"
                          "\"h\":{},\"i\":[{\"k\":null},{},[1,2],\"s\"]}");
    assert_valid(&b);

    /* Deep nesting up to the limit stays balanced and valid. */
    tally_buf_reset(&b);
    tally_json_start(&j, &b);
    for (int i = 0; i < TALLY_JSON_MAX_DEPTH - 1; i++) {
        tally_json_array_open(&j);
        tally_json_int(&j, i);
    }
    for (int i = 0; i < TALLY_JSON_MAX_DEPTH - 1; i++)
        tally_json_array_close(&j);
    ASSERT_EQ(j.depth, 0);
    assert_valid(&b);

    /* Keys are escaped like values. */
    tally_buf_reset(&b);
    tally_json_start(&j, &b);
    tally_json_object_open(&j);
    tally_json_kv_int(&j, "we\"ird\n", 1);
    tally_json_object_close(&j);
    ASSERT_STR_EQ(b.data, "{\"we\\\"ird\\n\":1}");
    tally_buf_free(&b);
}

static void test_utf8_seq_len(void)
{
    ASSERT_EQ(tally_utf8_seq_len((const unsigned char *)"a", 1), 1);
    ASSERT_EQ(tally_utf8_seq_len((const unsigned char *)"\xc3\xa9", 2), 2);
    ASSERT_EQ(tally_utf8_seq_len((const unsigned char *)"\xc3\xa9", 1), 0);
    ASSERT_EQ(tally_utf8_seq_len((const unsigned char *)"\xe0\x80\x80", 3), 0);
    ASSERT_EQ(tally_utf8_seq_len((const unsigned char *)"\xf0\x90\x80\x80", 4), 4);
    ASSERT_EQ(tally_utf8_seq_len((const unsigned char *)"\xf5\x80\x80\x80", 4), 0);
    ASSERT_EQ(tally_utf8_seq_len((const unsigned char *)"", 0), 0);
}

int main(void)
{
    TEST_RUN(test_buf);
    TEST_RUN(test_escaping);
    TEST_RUN(test_invalid_utf8);
    TEST_RUN(test_numbers);
    TEST_RUN(test_nesting);
    TEST_RUN(test_utf8_seq_len);
    return TEST_DONE();
}
