/*
 * json_out.c — the JSON writer of json_out.h.
 *
 * need_comma[d] is the state of nesting level d (0 = top level):
 *   0  nothing written yet at this level,
 *   1  a value was written: the next key or element needs a comma,
 *   2  a key was just written: the next value follows the colon.
 *
 * Invariants:
 *  (1) Output is valid UTF-8: string bytes that are not well-formed UTF-8
 *      (overlong forms, surrogates, > U+10FFFF, truncated sequences) become
 *      U+FFFD, one per bad byte, the way browsers decode.
 *  (2) Control characters are escaped (\n \r \t \b \f by name, others as
 *      \u00XX); '"' and '\' are escaped; nothing else is, so UTF-8 text
 *      passes through unchanged and cheaply.
 *  (3) Doubles print in the shortest of %.15g/%.16g/%.17g that reads back
 *      bit-identical; non-finite values print as "NaN", "Infinity",
 *      "-Infinity" (MLflow's strings, mlflow-rest-api.md §1.3).
 *  (4) Nesting deeper than TALLY_JSON_MAX_DEPTH is a caller bug: asserted in
 *      debug builds, clamped (still valid brackets) in release.
 */
#include "json_out.h"
#include "json_num.h"

#include <assert.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void tally_json_start(tally_json *j, tally_buf *out)
{
    j->out = out;
    j->depth = 0;
    memset(j->need_comma, 0, sizeof j->need_comma);
}

static int level(const tally_json *j)
{
    assert(j->depth >= 0 && j->depth < TALLY_JSON_MAX_DEPTH);
    if (j->depth < 0)
        return 0;
    return j->depth < TALLY_JSON_MAX_DEPTH ? j->depth : TALLY_JSON_MAX_DEPTH - 1;
}

/* Called before every value: writes the separating comma if one is due. */
static void before_value(tally_json *j)
{
    int d = level(j);
    if (j->need_comma[d] == 1)
        tally_buf_putc(j->out, ',');
    j->need_comma[d] = 1;
}

static void open_level(tally_json *j, char c)
{
    before_value(j);
    tally_buf_putc(j->out, c);
    j->depth++;
    j->need_comma[level(j)] = 0;
}

static void close_level(tally_json *j, char c)
{
    if (j->depth > 0)
        j->depth--;
    tally_buf_putc(j->out, c);
}

void tally_json_object_open(tally_json *j) { open_level(j, '{'); }
void tally_json_object_close(tally_json *j) { close_level(j, '}'); }
void tally_json_array_open(tally_json *j) { open_level(j, '['); }
void tally_json_array_close(tally_json *j) { close_level(j, ']'); }

size_t tally_utf8_seq_len(const unsigned char *p, size_t n)
{
    if (n == 0)
        return 0;
    unsigned c = p[0];
    if (c < 0x80)
        return 1;
    if (c < 0xC2)
        return 0; /* continuation byte or overlong 2-byte lead */
    if (c < 0xE0)
        return n >= 2 && (p[1] & 0xC0) == 0x80 ? 2 : 0;
    if (c < 0xF0) {
        if (n < 3 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80)
            return 0;
        if (c == 0xE0 && p[1] < 0xA0)
            return 0; /* overlong */
        if (c == 0xED && p[1] >= 0xA0)
            return 0; /* UTF-16 surrogate */
        return 3;
    }
    if (c < 0xF5) {
        if (n < 4 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80 || (p[3] & 0xC0) != 0x80)
            return 0;
        if (c == 0xF0 && p[1] < 0x90)
            return 0; /* overlong */
        if (c == 0xF4 && p[1] >= 0x90)
            return 0; /* > U+10FFFF */
        return 4;
    }
    return 0;
}

static void write_string(tally_buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s, *end = p + n, *run = p;
    if (tally_buf_reserve(b, n + 2) != 0)
        return;
    tally_buf_putc(b, '"');
    while (p < end) {
        unsigned c = *p;
        if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
            p++;
            continue;
        }
        if (c >= 0x80) {
            size_t k = tally_utf8_seq_len(p, (size_t)(end - p));
            if (k) {
                p += k;
                continue;
            }
        }
        tally_buf_append(b, run, (size_t)(p - run));
        switch (c) {
        case '"': tally_buf_append(b, "\\\"", 2); break;
        case '\\': tally_buf_append(b, "\\\\", 2); break;
        case '\n': tally_buf_append(b, "\\n", 2); break;
        case '\r': tally_buf_append(b, "\\r", 2); break;
        case '\t': tally_buf_append(b, "\\t", 2); break;
        case '\b': tally_buf_append(b, "\\b", 2); break;
        case '\f': tally_buf_append(b, "\\f", 2); break;
        default:
            if (c < 0x20) {
                char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
                tally_buf_append(b, e, 6);
            } else {
                tally_buf_append(b, "\xEF\xBF\xBD", 3); /* invalid UTF-8 byte */
            }
            break;
        }
        p++;
        run = p;
    }
    tally_buf_append(b, run, (size_t)(p - run));
    tally_buf_putc(b, '"');
}

void tally_json_key(tally_json *j, const char *key)
{
    int d = level(j);
    if (j->need_comma[d] == 1)
        tally_buf_putc(j->out, ',');
    j->need_comma[d] = 2;
    write_string(j->out, key, strlen(key));
    tally_buf_putc(j->out, ':');
}

/* A value after a key: no comma, the level now holds a value. */
static void value_start(tally_json *j)
{
    int d = level(j);
    if (j->need_comma[d] == 2)
        j->need_comma[d] = 1;
    else
        before_value(j);
}

void tally_json_string_n(tally_json *j, const char *s, size_t n)
{
    value_start(j);
    write_string(j->out, s, n);
}

void tally_json_string(tally_json *j, const char *s)
{
    if (!s) {
        tally_json_null(j);
        return;
    }
    tally_json_string_n(j, s, strlen(s));
}

void tally_json_int(tally_json *j, int64_t v)
{
    value_start(j);
    char tmp[24], *e = tmp + sizeof tmp, *p = e;
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        *--p = '-';
    tally_buf_append(j->out, p, (size_t)(e - p));
}

/* Shortest of %.15g..%.17g that parses back to the same bits (invariant 3).
 * Writes into tmp (>= 32 bytes) and returns the length. */
void tally_json_double(tally_json *j, double v)
{
    value_start(j);
    tally_buf_put_double(j->out, v);
}

void tally_json_bool(tally_json *j, int v)
{
    value_start(j);
    if (v)
        tally_buf_append(j->out, "true", 4);
    else
        tally_buf_append(j->out, "false", 5);
}

void tally_json_null(tally_json *j)
{
    value_start(j);
    tally_buf_append(j->out, "null", 4);
}

void tally_json_raw(tally_json *j, const char *json)
{
    value_start(j);
    tally_buf_puts(j->out, json);
}

void tally_json_kv_string(tally_json *j, const char *key, const char *s)
{
    tally_json_key(j, key);
    tally_json_string(j, s);
}

void tally_json_kv_int(tally_json *j, const char *key, int64_t v)
{
    tally_json_key(j, key);
    tally_json_int(j, v);
}

void tally_json_kv_double(tally_json *j, const char *key, double v)
{
    tally_json_key(j, key);
    tally_json_double(j, v);
}

void tally_json_kv_bool(tally_json *j, const char *key, int v)
{
    tally_json_key(j, key);
    tally_json_bool(j, v);
}
