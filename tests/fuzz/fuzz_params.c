/*
 * fuzz_params.c — libFuzzer target for request decoding (server/params.c,
 * server/json_in.c): arbitrary bodies and query strings through
 * tally_params_open and every getter.
 *
 * Input layout (carved, lz4 fuzz_data_producer style):
 *   byte 0      bits 0-2 method, bit 3 Content-Type present, bit 4 JSON type
 *   bytes 1..   the body, up to the first 0x00 byte; after it, a raw query
 *               string split on '&' and '=' (no %-decoding: http.c does that)
 *
 * Checks: nothing crashes or leaks; a getter returns 1, 0 or -1, and -1
 * always leaves a JSON error with status 400 or 413 in the response; every
 * string it hands out is valid UTF-8; the body is a private copy of exactly
 * its length so an overread is an ASan report.
 *
 * Seeds: tests/fuzz/corpus/fuzz_params/.
 */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api_error.h"
#include "json_in.h"
#include "json_out.h"
#include "params.h"

#define CHECK(cond)                                                                           \
    do {                                                                                      \
        if (!(cond))                                                                          \
            abort();                                                                          \
    } while (0)

static const char *const FIELDS[] = {"run_id", "run_uuid", "experiment_id", "experiment_ids",
                                     "max_results", "step", "timestamp", "value", "key",
                                     "view_type", "metrics", "params", "tags", "name", "a"};

static void check_utf8(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s);
    while (n) {
        size_t k = tally_utf8_seq_len(p, n);
        CHECK(k > 0);
        p += k;
        n -= k;
    }
}

static void check_rc(int rc, tally_resp *resp)
{
    CHECK(rc == 1 || rc == 0 || rc == -1);
    if (rc == -1) {
        CHECK(resp->status == 400 || resp->status == 413);
        cJSON *e = cJSON_ParseWithLength(resp->body.data, resp->body.len);
        CHECK(e && cJSON_IsString(cJSON_GetObjectItem(e, "error_code")));
        cJSON_Delete(e);
        resp->status = 0;
    }
}

static void nested(const cJSON *obj, tally_resp *resp)
{
    const char *s;
    int64_t i;
    double d;
    for (size_t f = 0; f < sizeof FIELDS / sizeof FIELDS[0]; f++) {
        int rc = tally_json_field_string(obj, FIELDS[f], "x[0]", &s, resp);
        check_rc(rc, resp);
        if (rc == 1)
            check_utf8(s);
        check_rc(tally_json_field_int64(obj, FIELDS[f], "x[0]", &i, resp), resp);
        check_rc(tally_json_field_double(obj, FIELDS[f], "x[0]", &d, resp), resp);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    static const tally_method methods[8] = {TALLY_GET,    TALLY_POST, TALLY_PUT,  TALLY_PATCH,
                                            TALLY_DELETE, TALLY_HEAD, TALLY_POST, TALLY_GET};
    uint8_t ctl = data[0];
    const uint8_t *rest = data + 1;
    size_t n = size - 1;
    const uint8_t *zero = memchr(rest, 0, n);
    size_t body_len = zero ? (size_t)(zero - rest) : n;

    char *body = malloc(body_len + 1);
    if (!body)
        return 0;
    memcpy(body, rest, body_len);
    body[body_len] = 0;

    /* The query string: key=value pairs, in a private copy. */
    size_t qlen = zero ? n - body_len - 1 : 0;
    char *query = malloc(qlen + 1);
    tally_query_arg *args = calloc(qlen / 2 + 2, sizeof *args);
    size_t n_args = 0;
    if (!query || !args) {
        free(body);
        free(query);
        free(args);
        return 0;
    }
    if (qlen)
        memcpy(query, zero + 1, qlen);
    query[qlen] = 0;
    char *save = NULL;
    for (char *piece = strtok_r(query, "&", &save); piece; piece = strtok_r(NULL, "&", &save)) {
        char *eq = strchr(piece, '=');
        if (eq)
            *eq++ = 0;
        args[n_args].key = piece;
        args[n_args].value = eq ? eq : "";
        n_args++;
    }

    tally_req req;
    memset(&req, 0, sizeof req);
    req.method = methods[ctl & 7];
    req.content_type = (ctl & 8) ? ((ctl & 16) ? "application/json; charset=utf-8" : "text/plain")
                                 : NULL;
    req.body = body;
    req.body_len = body_len;
    req.args = args;
    req.n_args = n_args;
    tally_resp resp;
    memset(&resp, 0, sizeof resp);
    resp.fd = -1;

    tally_params p;
    if (tally_params_open(&p, &req, &resp) == 0) {
        static const char *const names[] = {"ACTIVE_ONLY", "DELETED_ONLY", "ALL"};
        static const int values[] = {1, 2, 3};
        for (size_t f = 0; f < sizeof FIELDS / sizeof FIELDS[0]; f++) {
            const char *name = FIELDS[f], *s;
            int64_t i64;
            int32_t i32;
            double d;
            int b, e;
            const char **list;
            size_t nl;
            cJSON *arr;
            int rc = tally_params_string(&p, name, &s, &resp);
            check_rc(rc, &resp);
            if (rc == 1)
                check_utf8(s);
            check_rc(tally_params_int64(&p, name, &i64, &resp), &resp);
            check_rc(tally_params_int32(&p, name, &i32, &resp), &resp);
            check_rc(tally_params_double(&p, name, &d, &resp), &resp);
            check_rc(tally_params_bool(&p, name, &b, &resp), &resp);
            check_rc(tally_params_enum(&p, name, names, values, 3, &e, &resp), &resp);
            rc = tally_params_strings(&p, name, &list, &nl, &resp);
            check_rc(rc, &resp);
            for (size_t k = 0; rc == 1 && k < nl; k++)
                check_utf8(list[k]);
            rc = tally_params_array(&p, name, &arr, &resp);
            check_rc(rc, &resp);
            if (rc == 1) {
                const cJSON *el;
                cJSON_ArrayForEach(el, arr) nested(el, &resp);
            }
            check_rc(tally_params_require_string(&p, name, &s, &resp), &resp);
            check_rc(tally_params_require_int64(&p, name, &i64, &resp), &resp);
            check_rc(tally_params_require_double(&p, name, &d, &resp), &resp);
        }
        if (p.root)
            nested(p.root, &resp);
        tally_params_close(&p);
    } else {
        CHECK(resp.status == 400 || resp.status == 413 || resp.status == 500);
    }

    /* The parser alone, over the whole input as one document. */
    tally_json_arena *a = tally_json_arena_new((size_t)1 << 24);
    if (a) {
        tally_json_error err;
        char *copy = malloc(size ? size : 1);
        if (copy) {
            memcpy(copy, data, size);
            cJSON *t = tally_json_parse(a, copy, size, &err);
            CHECK(t || err.msg);
            free(copy);
        }
        tally_json_arena_free(a);
    }

    tally_buf_free(&resp.body);
    free(body);
    free(query);
    free(args);
    return 0;
}
