/*
 * json_out.h — writing JSON into a tally_buf, fast and always valid: strings
 * are escaped (control characters as \u00XX; invalid UTF-8 bytes replaced by
 * U+FFFD), int64 as JSON numbers, doubles with the shortest round-trip form
 * (%.17g, trimmed) and non-finite doubles as MLflow's strings "NaN",
 * "Infinity", "-Infinity". Commas are inserted by the writer: callers only
 * open, add and close.
 *
 * Invariant: a writer whose calls are balanced produces one valid JSON value.
 */
#ifndef TALLY_SERVER_JSON_OUT_H
#define TALLY_SERVER_JSON_OUT_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define TALLY_JSON_MAX_DEPTH 32

typedef struct tally_json {
    tally_buf *out;
    int depth;
    uint8_t need_comma[TALLY_JSON_MAX_DEPTH]; /* per level: a value was written */
} tally_json;

void tally_json_start(tally_json *j, tally_buf *out);
void tally_json_object_open(tally_json *j);   /* { */
void tally_json_object_close(tally_json *j);  /* } */
void tally_json_array_open(tally_json *j);    /* [ */
void tally_json_array_close(tally_json *j);   /* ] */
void tally_json_key(tally_json *j, const char *key);           /* "key": (inside an object) */
void tally_json_string(tally_json *j, const char *s);          /* NULL writes null */
void tally_json_string_n(tally_json *j, const char *s, size_t n);
void tally_json_int(tally_json *j, int64_t v);
void tally_json_double(tally_json *j, double v);               /* NaN/inf as MLflow strings */
void tally_json_bool(tally_json *j, int v);
void tally_json_null(tally_json *j);
void tally_json_raw(tally_json *j, const char *json);          /* a trusted JSON value */

/* Shorthands for "key": value inside an object. */
void tally_json_kv_string(tally_json *j, const char *key, const char *s);
void tally_json_kv_int(tally_json *j, const char *key, int64_t v);
void tally_json_kv_double(tally_json *j, const char *key, double v);
void tally_json_kv_bool(tally_json *j, const char *key, int v);

/* Length (1..4) of the well-formed UTF-8 sequence starting at p, reading at
 * most n bytes, or 0 when p[0] does not start one (overlong forms, UTF-16
 * surrogates, code points above U+10FFFF and truncated sequences are not
 * well-formed). Shared with the request decoder (params.c). */
size_t tally_utf8_seq_len(const unsigned char *p, size_t n);

#endif /* TALLY_SERVER_JSON_OUT_H */
