/*
 * fuzz_json_out.c — libFuzzer round trip for the JSON writer
 * (server/json_out.c): strings, int64s and doubles carved from the input are
 * written into an object, the output is parsed back (by cJSON, and by our
 * own parser for exact int64s), and every value must come back:
 *
 *   strings   equal when the input was valid UTF-8 without NUL bytes;
 *             otherwise the output is still valid UTF-8 and valid JSON
 *             (a NUL is written as \u0000, which cJSON accepts and our
 *             request parser refuses by design)
 *   int64     exactly equal (json_in keeps the token text)
 *   doubles   bit-identical when finite; NaN/inf as "NaN"/"Infinity"/
 *             "-Infinity"
 *
 * Input layout: a sequence of records; each starts with a tag byte
 * (0 string, 1 int64, 2 double, 3 open array, 4 close) followed by a length
 * byte and that many bytes (strings) or 8 bytes (numbers).
 *
 * Seeds: tests/fuzz/corpus/fuzz_json_out/.
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
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

#define MAX_ITEMS 64

typedef struct item {
    int kind;          /* 0 string, 1 int64, 2 double */
    const uint8_t *s;  /* string bytes (in the input) */
    size_t n;
    int64_t i;
    double d;
} item;

static int clean_utf8(const uint8_t *s, size_t n)
{
    while (n) {
        if (*s == 0)
            return 0;
        size_t k = tally_utf8_seq_len(s, n);
        if (!k)
            return 0;
        s += k;
        n -= k;
    }
    return 1;
}

static uint64_t take64(const uint8_t **p, size_t *n)
{
    uint64_t v = 0;
    for (int k = 0; k < 8 && *n; k++, (*p)++, (*n)--)
        v |= (uint64_t)**p << (8 * k);
    return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    item items[MAX_ITEMS];
    size_t n_items = 0;
    tally_buf out = {0};
    tally_json j;
    tally_json_start(&j, &out);
    tally_json_object_open(&j);
    int extra_depth = 0;
    int has_nul = 0; /* json_in refuses \u0000 by design (C strings) */
    const uint8_t *p = data;
    size_t n = size;
    while (n >= 2 && n_items < MAX_ITEMS) {
        uint8_t tag = p[0] % 5, len = p[1];
        p += 2;
        n -= 2;
        char key[16];
        snprintf(key, sizeof key, "k%zu", n_items);
        if (tag == 3 && extra_depth < 8) { /* nesting noise, checked for validity only */
            tally_json_key(&j, "nest");
            tally_json_array_open(&j);
            tally_json_string_n(&j, (const char *)p, len < n ? len : n);
            has_nul |= memchr(p, 0, len < n ? len : n) != NULL;
            tally_json_array_close(&j);
            extra_depth++;
            continue;
        }
        item *it = &items[n_items];
        if (tag == 0 || tag == 4) {
            size_t k = len < n ? len : n;
            it->kind = 0;
            it->s = p;
            it->n = k;
            p += k;
            n -= k;
            tally_json_key(&j, key);
            tally_json_string_n(&j, (const char *)it->s, it->n);
            has_nul |= memchr(it->s, 0, it->n) != NULL;
        } else if (tag == 1) {
            it->kind = 1;
            it->i = (int64_t)take64(&p, &n);
            tally_json_kv_int(&j, key, it->i);
        } else {
            it->kind = 2;
            uint64_t bits = take64(&p, &n);
            memcpy(&it->d, &bits, 8);
            tally_json_kv_double(&j, key, it->d);
        }
        n_items++;
    }
    tally_json_object_close(&j);
    CHECK(j.depth == 0 && !tally_buf_failed(&out));

    /* Valid JSON for cJSON, and for our strict parser (UTF-8 included). */
    cJSON *c = cJSON_ParseWithLength(out.data, out.len);
    CHECK(c && cJSON_IsObject(c));
    tally_json_arena *a = tally_json_arena_new(SIZE_MAX);
    CHECK(a);
    tally_json_error err;
    cJSON *t = tally_json_parse(a, out.data, out.len, &err);
    if (has_nul) {
        CHECK(!t);
        goto done;
    }
    CHECK(t && cJSON_IsObject(t));

    tally_resp resp;
    memset(&resp, 0, sizeof resp);
    for (size_t k = 0; k < n_items; k++) {
        char key[16];
        snprintf(key, sizeof key, "k%zu", k);
        const item *it = &items[k];
        if (it->kind == 0) {
            const char *s;
            CHECK(tally_json_field_string(t, key, NULL, &s, &resp) == 1);
            if (clean_utf8(it->s, it->n))
                CHECK(strlen(s) == it->n && memcmp(s, it->s, it->n) == 0);
        } else if (it->kind == 1) {
            int64_t v;
            CHECK(tally_json_field_int64(t, key, NULL, &v, &resp) == 1);
            CHECK(v == it->i);
        } else {
            double v;
            CHECK(tally_json_field_double(t, key, NULL, &v, &resp) == 1);
            if (isnan(it->d)) {
                CHECK(isnan(v));
            } else {
                uint64_t x, y;
                memcpy(&x, &v, 8);
                memcpy(&y, &it->d, 8);
                CHECK(x == y);
            }
        }
    }
    tally_buf_free(&resp.body);
done:
    tally_json_arena_free(a);
    cJSON_Delete(c);
    tally_buf_free(&out);
    return 0;
}
