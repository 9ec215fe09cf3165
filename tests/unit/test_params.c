/*
 * test_params.c — request decoding (server/params.c, server/json_in.c) per
 * mlflow-rest-api.md §1.2/§1.3: Content-Type rules, empty and
 * double-encoded bodies, query strings with repeated keys, snake_case and
 * lowerCamelCase names, the int64/int32/double/bool/enum/string matrix
 * (9007199254740993 exact, 5.0 as int64, "NaN" and friends, true as 1.0),
 * range errors naming the field, invalid UTF-8, and malformed JSON.
 */
#include <cjson/cJSON.h>

#include "test.h"

#include "api_error.h"
#include "json_in.h"
#include "params.h"

typedef struct fixture {
    tally_req req;
    tally_resp resp;
    tally_params p;
} fixture;

static void fx_init(fixture *f, tally_method m, const char *ct, const char *body)
{
    memset(f, 0, sizeof *f);
    f->req.method = m;
    f->req.path = "/api/2.0/mlflow/test";
    f->req.content_type = ct;
    f->req.body = body ? body : "";
    f->req.body_len = body ? strlen(body) : 0;
    f->resp.fd = -1;
}

static void fx_free(fixture *f)
{
    tally_params_close(&f->p);
    tally_buf_free(&f->resp.body);
}

/* Opens a POST JSON body; must succeed. */
static void open_json(fixture *f, const char *body)
{
    fx_init(f, TALLY_POST, "application/json", body);
    int rc = tally_params_open(&f->p, &f->req, &f->resp);
    if (rc != 0)
        TEST_FAIL_("open failed for %s: %s", body, f->resp.body.data);
}

/* The error_code of the response, checked to be 400-class JSON. */
static void assert_error(fixture *f, int status, const char *code, const char *needle)
{
    ASSERT_EQ(f->resp.status, status);
    cJSON *root = cJSON_Parse(f->resp.body.data);
    ASSERT(root != NULL);
    ASSERT_STR_EQ(cJSON_GetObjectItem(root, "error_code")->valuestring, code);
    const char *msg = cJSON_GetObjectItem(root, "message")->valuestring;
    if (needle && !strstr(msg, needle))
        TEST_FAIL_("message \"%s\" lacks \"%s\"", msg, needle);
    cJSON_Delete(root);
}

static void test_content_type(void)
{
    fixture f;
    fx_init(&f, TALLY_POST, NULL, "{}");
    ASSERT_EQ(tally_params_open(&f.p, &f.req, &f.resp), -1);
    assert_error(&f, 400, "INVALID_PARAMETER_VALUE", "Content-Type header is missing");
    fx_free(&f);

    fx_init(&f, TALLY_PUT, "text/plain", "{}");
    ASSERT_EQ(tally_params_open(&f.p, &f.req, &f.resp), -1);
    assert_error(&f, 400, "INVALID_PARAMETER_VALUE", "Content-Type must be");
    fx_free(&f);

    fx_init(&f, TALLY_POST, "application/jsonx", "{}");
    ASSERT_EQ(tally_params_open(&f.p, &f.req, &f.resp), -1);
    fx_free(&f);

    fx_init(&f, TALLY_POST, "Application/JSON; charset=utf-8", "{\"a\":\"b\"}");
    ASSERT_EQ(tally_params_open(&f.p, &f.req, &f.resp), 0);
    const char *s;
    ASSERT_EQ(tally_params_string(&f.p, "a", &s, &f.resp), 1);
    ASSERT_STR_EQ(s, "b");
    fx_free(&f);

    /* PATCH and DELETE parse the body whatever the type says; GET too. */
    tally_method any[] = {TALLY_PATCH, TALLY_DELETE, TALLY_GET};
    for (size_t i = 0; i < 3; i++) {
        fx_init(&f, any[i], "text/plain", "{\"a\":\"b\"}");
        ASSERT_EQ(tally_params_open(&f.p, &f.req, &f.resp), 0);
        ASSERT_EQ(tally_params_string(&f.p, "a", &s, &f.resp), 1);
        fx_free(&f);
    }
}

static void test_bodies(void)
{
    fixture f;
    const char *s;
    /* Empty and whitespace bodies are {}. */
    open_json(&f, "");
    ASSERT(cJSON_IsObject(f.p.root));
    ASSERT_EQ(tally_params_string(&f.p, "x", &s, &f.resp), 0);
    fx_free(&f);
    open_json(&f, " \r\n\t ");
    ASSERT(cJSON_IsObject(f.p.root));
    fx_free(&f);

    /* Double-encoded JSON. */
    open_json(&f, "\"{\\\"run_id\\\": \\\"abc\\\", \\\"step\\\": 9007199254740993}\"");
    ASSERT_EQ(tally_params_string(&f.p, "run_id", &s, &f.resp), 1);
    ASSERT_STR_EQ(s, "abc");
    int64_t i64;
    ASSERT_EQ(tally_params_int64(&f.p, "step", &i64, &f.resp), 1);
    ASSERT_EQ(i64, 9007199254740993LL);
    fx_free(&f);

    /* Malformed JSON, a non-object, trailing garbage, invalid UTF-8. */
    static const char *bad[] = {"{", "{\"a\":}", "[1,2]", "42", "null", "{} x", "{'a':1}",
                                "{\"a\":1,}", "{\"a\":NaN}", "{\"a\":01}", "{\"a\":\"\xff\"}",
                                "{\"a\":\"\\ud800\"}", "{\"a\":\"\\u0000\"}", "{\"a\":\"tab\there\"}",
                                "\"[1]\"", "\"\\\"x\\\"\""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        fx_init(&f, TALLY_POST, "application/json", bad[i]);
        if (tally_params_open(&f.p, &f.req, &f.resp) != -1)
            TEST_FAIL_("accepted bad body %s", bad[i]);
        assert_error(&f, 400, "INVALID_PARAMETER_VALUE", NULL);
        ASSERT(f.p.owned == NULL);
        fx_free(&f);
    }

    /* Nesting beyond the limit is refused, not a stack overflow. */
    char deep[600];
    memset(deep, '[', 300);
    memset(deep + 300, ']', 299);
    deep[599] = 0;
    fx_init(&f, TALLY_POST, "application/json", deep);
    ASSERT_EQ(tally_params_open(&f.p, &f.req, &f.resp), -1);
    fx_free(&f);

    /* Escapes and surrogate pairs decode to UTF-8; a BOM is skipped. */
    open_json(&f, "\xef\xbb\xbf{\"k\":\"\\u00e9\\ud83d\\ude00\\/\\n\"}");
    ASSERT_EQ(tally_params_string(&f.p, "k", &s, &f.resp), 1);
    ASSERT_STR_EQ(s, "\xc3\xa9\xf0\x9f\x98\x80/\n");
    fx_free(&f);
}

static void test_names(void)
{
    fixture f;
    const char *s;
    open_json(&f, "{\"runId\":\"camel\",\"experiment_id\":\"snake\",\"dup\":\"first\",\"dup\":\"last\"}");
    ASSERT_EQ(tally_params_string(&f.p, "run_id", &s, &f.resp), 1);
    ASSERT_STR_EQ(s, "camel");
    ASSERT_EQ(tally_params_string(&f.p, "experiment_id", &s, &f.resp), 1);
    ASSERT_STR_EQ(s, "snake");
    ASSERT_EQ(tally_params_string(&f.p, "dup", &s, &f.resp), 1);
    ASSERT_STR_EQ(s, "last");
    ASSERT_EQ(tally_params_string(&f.p, "run_uuid", &s, &f.resp), 0);
    ASSERT_EQ(tally_params_require_string(&f.p, "run_uuid", &s, &f.resp), -1);
    assert_error(&f, 400, "INVALID_PARAMETER_VALUE",
                 "Missing value for required parameter 'run_uuid'");
    fx_free(&f);

    /* JSON null is absent; numeric ids coerce to strings. */
    open_json(&f, "{\"a\":null,\"experiment_id\":12,\"big\":123456789012345678901,\"o\":{}}");
    ASSERT_EQ(tally_params_string(&f.p, "a", &s, &f.resp), 0);
    ASSERT_EQ(tally_params_string(&f.p, "experiment_id", &s, &f.resp), 1);
    ASSERT_STR_EQ(s, "12");
    ASSERT_EQ(tally_params_string(&f.p, "big", &s, &f.resp), 1);
    ASSERT_STR_EQ(s, "123456789012345678901");
    ASSERT_EQ(tally_params_string(&f.p, "o", &s, &f.resp), -1);
    assert_error(&f, 400, "INVALID_PARAMETER_VALUE", "'o'");
    fx_free(&f);
}

static void test_int64(void)
{
    static const struct {
        const char *json;
        int rc;
        int64_t want;
    } cases[] = {
        {"9007199254740993", 1, 9007199254740993LL},
        {"\"9007199254740993\"", 1, 9007199254740993LL},
        {"9223372036854775807", 1, INT64_MAX},
        {"-9223372036854775808", 1, INT64_MIN},
        {"\"-9223372036854775808\"", 1, INT64_MIN},
        {"9223372036854775808", -1, 0},
        {"-9223372036854775809", -1, 0},
        {"\"9223372036854775808\"", -1, 0},
        {"1e19", -1, 0},
        {"5.0", 1, 5},
        {"1.5e3", 1, 1500},
        {"9007199254740993.0", 1, 9007199254740993LL},
        {"90071992547409930e-1", 1, 9007199254740993LL},
        {"-0", 1, 0},
        {"0e99999", 1, 0},
        {"1700000000000", 1, 1700000000000LL},
        {"\"1700000000000\"", 1, 1700000000000LL},
        {"\"+7\"", 1, 7},
        {"5.5", -1, 0},
        {"1e-3", -1, 0},
        {"\"5.0\"", -1, 0},
        {"\"12abc\"", -1, 0},
        {"\"\"", -1, 0},
        {"\" 5\"", -1, 0},
        {"true", -1, 0},
        {"[1]", -1, 0},
        {"null", 0, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char body[128];
        snprintf(body, sizeof body, "{\"step\": %s}", cases[i].json);
        fixture f;
        open_json(&f, body);
        int64_t v = 0;
        int rc = tally_params_int64(&f.p, "step", &v, &f.resp);
        if (rc != cases[i].rc)
            TEST_FAIL_("%s: rc %d, want %d", body, rc, cases[i].rc);
        if (rc == 1)
            ASSERT_EQ(v, cases[i].want);
        if (rc == -1)
            assert_error(&f, 400, "INVALID_PARAMETER_VALUE", "'step'");
        fx_free(&f);
    }
    fixture f;
    open_json(&f, "{\"max_results\": 2147483648, \"ok\": \"-2147483648\"}");
    int32_t i32;
    ASSERT_EQ(tally_params_int32(&f.p, "max_results", &i32, &f.resp), -1);
    assert_error(&f, 400, "INVALID_PARAMETER_VALUE", "max_results");
    ASSERT_EQ(tally_params_int32(&f.p, "ok", &i32, &f.resp), 1);
    ASSERT_EQ(i32, INT32_MIN);
    fx_free(&f);
}

static void test_double(void)
{
    static const struct {
        const char *json;
        int rc;
        double want;
    } cases[] = {
        {"0.5", 1, 0.5},
        {"-1e-300", 1, -1e-300},
        {"\"0.25\"", 1, 0.25},
        {"\"1e3\"", 1, 1000.0},
        {"\"Infinity\"", 1, INFINITY},
        {"\"-Infinity\"", 1, -INFINITY},
        {"\"inf\"", 1, INFINITY},
        {"true", 1, 1.0},
        {"false", 1, 0.0},
        {"12345678901234567890", 1, 12345678901234567890.0},
        {"1e999", -1, 0},
        {"\"1e999\"", -1, 0},
        {"\"0x10\"", -1, 0},
        {"\"abc\"", -1, 0},
        {"\"\"", -1, 0},
        {"{}", -1, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char body[128];
        snprintf(body, sizeof body, "{\"value\": %s}", cases[i].json);
        fixture f;
        open_json(&f, body);
        double v = 0;
        int rc = tally_params_double(&f.p, "value", &v, &f.resp);
        if (rc != cases[i].rc)
            TEST_FAIL_("%s: rc %d, want %d", body, rc, cases[i].rc);
        if (rc == 1)
            ASSERT_BITS_EQ(v, cases[i].want);
        if (rc == -1)
            assert_error(&f, 400, "INVALID_PARAMETER_VALUE", "'value'");
        fx_free(&f);
    }
    fixture f;
    open_json(&f, "{\"value\": \"NaN\"}");
    double v;
    ASSERT_EQ(tally_params_require_double(&f.p, "value", &v, &f.resp), 1);
    ASSERT(isnan(v));
    ASSERT_EQ(tally_params_require_double(&f.p, "other", &v, &f.resp), -1);
    fx_free(&f);
}

static void test_bool_enum(void)
{
    fixture f;
    int b;
    open_json(&f, "{\"t\":true,\"f\":false,\"s\":\"TRUE\",\"n\":1,\"x\":\"yes\"}");
    ASSERT_EQ(tally_params_bool(&f.p, "t", &b, &f.resp), 1);
    ASSERT_EQ(b, 1);
    ASSERT_EQ(tally_params_bool(&f.p, "f", &b, &f.resp), 1);
    ASSERT_EQ(b, 0);
    ASSERT_EQ(tally_params_bool(&f.p, "s", &b, &f.resp), 1);
    ASSERT_EQ(b, 1);
    ASSERT_EQ(tally_params_bool(&f.p, "n", &b, &f.resp), -1);
    ASSERT_EQ(tally_params_bool(&f.p, "x", &b, &f.resp), -1);
    assert_error(&f, 400, "INVALID_PARAMETER_VALUE", "'x'");
    fx_free(&f);

    static const char *const names[] = {"ACTIVE_ONLY", "DELETED_ONLY", "ALL"};
    static const int values[] = {1, 2, 3};
    int e;
    open_json(&f, "{\"a\":\"deleted_only\",\"b\":3,\"c\":\"2\",\"d\":\"NOPE\",\"e\":7,\"g\":[]}");
    ASSERT_EQ(tally_params_enum(&f.p, "a", names, values, 3, &e, &f.resp), 1);
    ASSERT_EQ(e, 2);
    ASSERT_EQ(tally_params_enum(&f.p, "b", names, values, 3, &e, &f.resp), 1);
    ASSERT_EQ(e, 3);
    ASSERT_EQ(tally_params_enum(&f.p, "c", names, values, 3, &e, &f.resp), 1);
    ASSERT_EQ(e, 2);
    ASSERT_EQ(tally_params_enum(&f.p, "d", names, values, 3, &e, &f.resp), -1);
    ASSERT_EQ(tally_params_enum(&f.p, "e", names, values, 3, &e, &f.resp), -1);
    ASSERT_EQ(tally_params_enum(&f.p, "g", names, values, 3, &e, &f.resp), -1);
    ASSERT_EQ(tally_params_enum(&f.p, "z", names, values, 3, &e, &f.resp), 0);
    fx_free(&f);
}

static void test_query(void)
{
    tally_query_arg args[] = {
        {"run_ids", "a"},      {"runIds", "b"},        {"run_ids[]", "c"},
        {"max_results", "10"}, {"flag", "False"},      {"bad_flag", "1"},
        {"value", "-Infinity"}, {"step", "9007199254740993"}, {"name", ""},
        {"name", "second"},    {"view_type", "ALL"},
    };
    fixture f;
    fx_init(&f, TALLY_GET, NULL, NULL);
    f.req.args = args;
    f.req.n_args = sizeof args / sizeof args[0];
    ASSERT_EQ(tally_params_open(&f.p, &f.req, &f.resp), 0);
    ASSERT_EQ(f.p.from_query, 1);
    const char **list;
    size_t n;
    ASSERT_EQ(tally_params_strings(&f.p, "run_ids", &list, &n, &f.resp), 1);
    ASSERT_EQ(n, 3);
    ASSERT_STR_EQ(list[0], "a");
    ASSERT_STR_EQ(list[1], "b");
    ASSERT_STR_EQ(list[2], "c");
    ASSERT_EQ(tally_params_strings(&f.p, "experiment_ids", &list, &n, &f.resp), 0);
    int32_t i32;
    ASSERT_EQ(tally_params_int32(&f.p, "max_results", &i32, &f.resp), 1);
    ASSERT_EQ(i32, 10);
    int b;
    ASSERT_EQ(tally_params_bool(&f.p, "flag", &b, &f.resp), 1);
    ASSERT_EQ(b, 0);
    ASSERT_EQ(tally_params_bool(&f.p, "bad_flag", &b, &f.resp), -1);
    assert_error(&f, 400, "INVALID_PARAMETER_VALUE", "bad_flag");
    double d;
    ASSERT_EQ(tally_params_double(&f.p, "value", &d, &f.resp), 1);
    ASSERT_BITS_EQ(d, -INFINITY);
    int64_t i64;
    ASSERT_EQ(tally_params_int64(&f.p, "step", &i64, &f.resp), 1);
    ASSERT_EQ(i64, 9007199254740993LL);
    const char *s;
    ASSERT_EQ(tally_params_string(&f.p, "name", &s, &f.resp), 1);
    ASSERT_STR_EQ(s, ""); /* the first occurrence, present but empty */
    static const char *const names[] = {"ACTIVE_ONLY", "DELETED_ONLY", "ALL"};
    static const int values[] = {1, 2, 3};
    int e;
    ASSERT_EQ(tally_params_enum(&f.p, "view_type", names, values, 3, &e, &f.resp), 1);
    ASSERT_EQ(e, 3);
    cJSON *arr;
    ASSERT_EQ(tally_params_array(&f.p, "metrics", &arr, &f.resp), 0);
    fx_free(&f);

    /* A GET without a query string reads its JSON body. */
    fx_init(&f, TALLY_GET, NULL, "{\"run_id\":\"x\"}");
    ASSERT_EQ(tally_params_open(&f.p, &f.req, &f.resp), 0);
    ASSERT_EQ(f.p.from_query, 0);
    ASSERT_EQ(tally_params_string(&f.p, "run_id", &s, &f.resp), 1);
    fx_free(&f);

    /* DELETE with only a query string reads the query (curl users). */
    tally_query_arg del[] = {{"name", "m"}};
    fx_init(&f, TALLY_DELETE, NULL, NULL);
    f.req.args = del;
    f.req.n_args = 1;
    ASSERT_EQ(tally_params_open(&f.p, &f.req, &f.resp), 0);
    ASSERT_EQ(tally_params_string(&f.p, "name", &s, &f.resp), 1);
    ASSERT_STR_EQ(s, "m");
    fx_free(&f);

    /* A POST ignores its query string. */
    fx_init(&f, TALLY_POST, "application/json", "{}");
    f.req.args = del;
    f.req.n_args = 1;
    ASSERT_EQ(tally_params_open(&f.p, &f.req, &f.resp), 0);
    ASSERT_EQ(tally_params_string(&f.p, "name", &s, &f.resp), 0);
    fx_free(&f);

    /* Invalid UTF-8 in a query value is a 400. */
    tally_query_arg bad[] = {{"name", "\xc3("}};
    fx_init(&f, TALLY_GET, NULL, NULL);
    f.req.args = bad;
    f.req.n_args = 1;
    ASSERT_EQ(tally_params_open(&f.p, &f.req, &f.resp), -1);
    assert_error(&f, 400, "INVALID_PARAMETER_VALUE", "UTF-8");
    fx_free(&f);
}

static void test_arrays_nested(void)
{
    fixture f;
    open_json(&f, "{\"experiment_ids\":[\"1\",2,\"3\"],\"metrics\":[{\"key\":\"loss\",\"value\":\"NaN\","
                  "\"timestamp\":1700000000000,\"step\":\"9007199254740993\"},{\"key\":5,\"timestamp\":1.5}],"
                  "\"tags\":{},\"one\":\"x\",\"mixed\":[\"a\",{}]}");
    const char **list;
    size_t n;
    ASSERT_EQ(tally_params_strings(&f.p, "experiment_ids", &list, &n, &f.resp), 1);
    ASSERT_EQ(n, 3);
    ASSERT_STR_EQ(list[1], "2");
    ASSERT_EQ(tally_params_strings(&f.p, "one", &list, &n, &f.resp), 1);
    ASSERT_EQ(n, 1);
    ASSERT_EQ(tally_params_strings(&f.p, "mixed", &list, &n, &f.resp), -1);
    assert_error(&f, 400, "INVALID_PARAMETER_VALUE", "mixed[1]");

    cJSON *arr;
    ASSERT_EQ(tally_params_array(&f.p, "tags", &arr, &f.resp), -1);
    ASSERT_EQ(tally_params_array(&f.p, "params", &arr, &f.resp), 0);
    ASSERT_EQ(tally_params_array(&f.p, "metrics", &arr, &f.resp), 1);
    ASSERT_EQ(cJSON_GetArraySize(arr), 2);
    const cJSON *m0 = cJSON_GetArrayItem(arr, 0), *m1 = cJSON_GetArrayItem(arr, 1);
    const char *s;
    double d;
    int64_t i;
    ASSERT_EQ(tally_json_field_string(m0, "key", "metrics[0]", &s, &f.resp), 1);
    ASSERT_STR_EQ(s, "loss");
    ASSERT_EQ(tally_json_field_double(m0, "value", "metrics[0]", &d, &f.resp), 1);
    ASSERT(isnan(d));
    ASSERT_EQ(tally_json_field_int64(m0, "step", "metrics[0]", &i, &f.resp), 1);
    ASSERT_EQ(i, 9007199254740993LL);
    ASSERT_EQ(tally_json_field_int64(m0, "timestamp", "metrics[0]", &i, &f.resp), 1);
    ASSERT_EQ(i, 1700000000000LL);
    ASSERT_EQ(tally_json_field_string(m1, "key", "metrics[1]", &s, &f.resp), -1);
    assert_error(&f, 400, "INVALID_PARAMETER_VALUE", "metrics[1].key");
    ASSERT_EQ(tally_json_field_int64(m1, "timestamp", "metrics[1]", &i, &f.resp), -1);
    assert_error(&f, 400, "INVALID_PARAMETER_VALUE", "metrics[1].timestamp");
    ASSERT_EQ(tally_json_field_double(m1, "value", "metrics[1]", &d, &f.resp), 0);
    fx_free(&f);

    /* Nested getters also work on trees from plain cJSON_Parse. */
    cJSON *plain = cJSON_Parse("{\"step\":42,\"value\":\"Infinity\",\"key\":\"k\"}");
    tally_resp resp;
    memset(&resp, 0, sizeof resp);
    ASSERT_EQ(tally_json_field_int64(plain, "step", NULL, &i, &resp), 1);
    ASSERT_EQ(i, 42);
    ASSERT_EQ(tally_json_field_double(plain, "value", NULL, &d, &resp), 1);
    ASSERT(isinf(d));
    cJSON_Delete(plain);
    tally_buf_free(&resp.body);
}

static void test_large_batch(void)
{
    /* A log-batch-sized body: 1000 metrics parse, and every value is exact. */
    tally_buf b = {0};
    tally_buf_puts(&b, "{\"run_id\":\"r\",\"metrics\":[");
    for (int k = 0; k < 1000; k++)
        tally_buf_printf(&b, "%s{\"key\":\"m%d\",\"value\":%d.5,\"timestamp\":%lld,\"step\":%d}",
                         k ? "," : "", k % 10, k, 1700000000000LL + k, k);
    tally_buf_puts(&b, "]}");
    fixture f;
    open_json(&f, b.data);
    cJSON *arr;
    ASSERT_EQ(tally_params_array(&f.p, "metrics", &arr, &f.resp), 1);
    int k = 0;
    const cJSON *m;
    cJSON_ArrayForEach(m, arr)
    {
        int64_t ts;
        double v;
        ASSERT_EQ(tally_json_field_int64(m, "timestamp", "metrics", &ts, &f.resp), 1);
        ASSERT_EQ(ts, 1700000000000LL + k);
        ASSERT_EQ(tally_json_field_double(m, "value", "metrics", &v, &f.resp), 1);
        ASSERT_BITS_EQ(v, k + 0.5);
        k++;
    }
    ASSERT_EQ(k, 1000);
    fx_free(&f);

    /* A pathological body that would blow up in nodes is refused with 413. */
    tally_buf_reset(&b);
    tally_buf_putc(&b, '[');
    for (int i = 0; i < 200000; i++)
        tally_buf_puts(&b, i ? ",1" : "1");
    tally_buf_putc(&b, ']');
    fx_init(&f, TALLY_POST, "application/json", b.data);
    ASSERT_EQ(tally_params_open(&f.p, &f.req, &f.resp), -1);
    assert_error(&f, 413, "RESOURCE_EXHAUSTED", NULL);
    fx_free(&f);
    tally_buf_free(&b);
}

static void test_json_in_direct(void)
{
    tally_json_arena *a = tally_json_arena_new(SIZE_MAX);
    ASSERT(a != NULL);
    tally_json_error err;
    const char *doc = "{\"a\":[1,2,{\"b\":null}],\"c\":\"d\"}";
    cJSON *t = tally_json_parse(a, doc, strlen(doc), &err);
    ASSERT(t != NULL);
    ASSERT_EQ(cJSON_GetArraySize(cJSON_GetObjectItem(t, "a")), 3);
    ASSERT(cJSON_GetObjectItem(t, "a")->child->prev->type == cJSON_Object); /* tail pointer */
    /* Parsing never reads past n: a prefix of a valid document fails. */
    ASSERT(tally_json_parse(a, "{\"a\":1}", 5, &err) == NULL);
    ASSERT_EQ(err.offset, 5);
    tally_json_arena_free(a);
    tally_json_arena_free(NULL);
}

int main(void)
{
    TEST_RUN(test_content_type);
    TEST_RUN(test_bodies);
    TEST_RUN(test_names);
    TEST_RUN(test_int64);
    TEST_RUN(test_double);
    TEST_RUN(test_bool_enum);
    TEST_RUN(test_query);
    TEST_RUN(test_arrays_nested);
    TEST_RUN(test_large_batch);
    TEST_RUN(test_json_in_direct);
    return TEST_DONE();
}
