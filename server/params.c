/*
 * params.c — decoding an MLflow request's fields (params.h;
 * mlflow-rest-api.md §1.2, §1.3).
 *
 * JSON bodies go through json_in.c, our strict parser, into a read-only
 * cJSON tree in a per-request arena (p->owned). The arena may grow to
 * ARENA_FACTOR x the body + 1 MiB; beyond that the request is answered 413
 * RESOURCE_EXHAUSTED ("too complex"), which only pathological bodies such
 * as [1,1,1,...] reach (a log-batch metric costs ~6x its JSON size).
 *
 * int64 precision: json_in keeps the token text of every number with more
 * than 15 significant digits, and text_to_int64() converts text exactly,
 * including integral values written as floats (5.0, 1.5e3,
 * 9007199254740993.0). Numbers of at most 15 digits are exact as doubles.
 *
 * Invariants:
 *  (1) Getters never crash on any tree shape, including trees from plain
 *      cJSON_Parse (numbers without text): they fall back to valuedouble.
 *  (2) Every error names the field (with its element path for nested
 *      fields, e.g. "metrics[3].timestamp") and is 400
 *      INVALID_PARAMETER_VALUE; only out-of-memory is a 500.
 *  (3) Every query argument used as a field was checked to be valid UTF-8
 *      at open; JSON strings are by json_in's invariant (1).
 *
 * Field names: fields are looked up by their snake_case proto name and by
 * its lowerCamelCase form (run_id / runId). In JSON bodies the last
 * occurrence of a duplicated key wins (Python's json.loads does the same);
 * in query strings the first wins for scalars (werkzeug's args.get), and
 * repeated fields take every occurrence, also spelled name[].
 */
#include "params.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api_error.h"
#include "json_in.h"
#include "json_out.h"

#define ARENA_FACTOR 16

/* ------------------------------------------------------------------------ */
/* Scalar conversions                                                         */
/* ------------------------------------------------------------------------ */

enum { CONV_OK = 0, CONV_BAD = -1, CONV_RANGE = -2 };

/* Exact decimal -> int64 for text in JSON number grammar ([-]int[.frac][e[+-]exp])
 * or a plain [+-]digits string; integral values written with a fraction or
 * exponent (5.0, 1.5e3) are accepted. */
static int text_to_int64(const char *s, size_t n, int allow_float_syntax, int64_t *out)
{
    const char *p = s, *e = s + n;
    int neg = 0;
    if (p < e && (*p == '-' || *p == '+'))
        neg = *p++ == '-';
    const char *int_start = p;
    while (p < e && *p >= '0' && *p <= '9')
        p++;
    const char *int_end = p, *frac_start = p, *frac_end = p;
    long exp10 = 0;
    if (int_end == int_start)
        return CONV_BAD;
    if (p < e && *p == '.' && allow_float_syntax) {
        frac_start = ++p;
        while (p < e && *p >= '0' && *p <= '9')
            p++;
        frac_end = p;
        if (frac_end == frac_start)
            return CONV_BAD;
    }
    if (p < e && (*p == 'e' || *p == 'E') && allow_float_syntax) {
        p++;
        int eneg = 0;
        if (p < e && (*p == '+' || *p == '-'))
            eneg = *p++ == '-';
        if (p >= e || !(*p >= '0' && *p <= '9'))
            return CONV_BAD;
        while (p < e && *p >= '0' && *p <= '9') {
            if (exp10 < 100000)
                exp10 = exp10 * 10 + (*p - '0');
            p++;
        }
        if (eneg)
            exp10 = -exp10;
    }
    if (p != e)
        return CONV_BAD;
    /* The value is digits(int ++ frac) x 10^(exp10 - len(frac)). Walk the
     * digits: those before the decimal point shift into the magnitude, those
     * after must be zero. */
    long point = (long)(int_end - int_start) + exp10; /* digits before the point */
    uint64_t mag = 0;
    const uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    long idx = 0;
    for (int part = 0; part < 2; part++) {
        const char *a = part ? frac_start : int_start, *b = part ? frac_end : int_end;
        for (const char *q = a; q < b; q++, idx++) {
            unsigned d = (unsigned)(*q - '0');
            if (idx >= point) {
                if (d)
                    return CONV_BAD; /* a fractional part */
                continue;
            }
            if (mag > (limit - d) / 10)
                return CONV_RANGE;
            mag = mag * 10 + d;
        }
    }
    /* Positive exponents beyond the digits append zeros. */
    for (; idx < point; idx++) {
        if (mag == 0)
            break;
        if (mag > limit / 10)
            return CONV_RANGE;
        mag *= 10;
    }
    *out = neg ? (int64_t)(0 - mag) : (int64_t)mag;
    return CONV_OK;
}

static int double_to_int64(double d, int64_t *out)
{
    if (d != d || d != trunc(d))
        return CONV_BAD;
    if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0))
        return CONV_RANGE;
    *out = (int64_t)d;
    return CONV_OK;
}

/* A numeric string for a double field: decimal (no hex), or the spellings
 * Python's float() accepts for NaN and the infinities. */
static int text_to_double(const char *s, double *out)
{
    const char *w = s;
    int neg = 0;
    if (*w == '+' || *w == '-')
        neg = *w++ == '-';
    if (strcasecmp(w, "nan") == 0) {
        *out = NAN;
        return CONV_OK;
    }
    if (strcasecmp(w, "inf") == 0 || strcasecmp(w, "infinity") == 0) {
        *out = neg ? -INFINITY : INFINITY;
        return CONV_OK;
    }
    if (!*s)
        return CONV_BAD;
    for (const char *p = s; *p; p++)
        if (!((*p >= '0' && *p <= '9') || *p == '.' || *p == 'e' || *p == 'E' || *p == '+' ||
              *p == '-'))
            return CONV_BAD;
    char *end;
    errno = 0;
    double d = strtod(s, &end);
    if (end == s || *end)
        return CONV_BAD;
    if (isinf(d))
        return CONV_RANGE;
    *out = d;
    return CONV_OK;
}

/* ------------------------------------------------------------------------ */
/* Errors                                                                     */
/* ------------------------------------------------------------------------ */

/* "where.name" or "name" into buf. */
static const char *field_label(char *buf, size_t cap, const char *where, const char *name)
{
    if (where && *where)
        snprintf(buf, cap, "%s.%s", where, name);
    else
        snprintf(buf, cap, "%s", name);
    return buf;
}

static const char *kind_of(const cJSON *v)
{
    if (cJSON_IsString(v))
        return "a string";
    if (cJSON_IsNumber(v))
        return "a number";
    if (cJSON_IsBool(v))
        return "a boolean";
    if (cJSON_IsArray(v))
        return "an array";
    if (cJSON_IsObject(v))
        return "an object";
    return "a value";
}

static int bad_value(tally_resp *resp, const char *where, const char *name, const char *expected,
                     const char *got)
{
    char label[256];
    tally_resp_error(resp, TALLY_API_INVALID_PARAMETER_VALUE,
                     "Invalid value for parameter '%s' supplied: expected %s, got %s.",
                     field_label(label, sizeof label, where, name), expected, got);
    return -1;
}

static int out_of_range(tally_resp *resp, const char *where, const char *name, const char *type)
{
    char label[256];
    tally_resp_error(resp, TALLY_API_INVALID_PARAMETER_VALUE,
                     "Invalid value for parameter '%s' supplied: out of range for %s.",
                     field_label(label, sizeof label, where, name), type);
    return -1;
}

int tally_params_missing(tally_resp *resp, const char *name)
{
    tally_resp_error(resp, TALLY_API_INVALID_PARAMETER_VALUE,
                     "Missing value for required parameter '%s'. See the API docs for more "
                     "information about request parameters.",
                     name);
    return -1;
}

/* ------------------------------------------------------------------------ */
/* Field lookup                                                               */
/* ------------------------------------------------------------------------ */

/* lowerCamelCase of a snake_case name ("run_id" -> "runId") into buf. */
static const char *camel_of(const char *name, char *buf, size_t cap)
{
    size_t o = 0;
    int up = 0;
    for (const char *p = name; *p && o + 1 < cap; p++) {
        if (*p == '_') {
            up = 1;
            continue;
        }
        buf[o++] = up && *p >= 'a' && *p <= 'z' ? (char)(*p - 'a' + 'A') : *p;
        up = 0;
    }
    buf[o] = 0;
    return buf;
}

/* The last member of obj named name or its camelCase form; NULL if absent. */
static const cJSON *member(const cJSON *obj, const char *name)
{
    if (!obj || !cJSON_IsObject(obj))
        return NULL;
    char camel[128];
    const char *alt = strchr(name, '_') ? camel_of(name, camel, sizeof camel) : NULL;
    const cJSON *found = NULL;
    for (const cJSON *c = obj->child; c; c = c->next)
        if (c->string && (strcmp(c->string, name) == 0 || (alt && strcmp(c->string, alt) == 0)))
            found = c;
    return found;
}

static int arg_name_is(const char *key, const char *name, const char *alt)
{
    return strcmp(key, name) == 0 || (alt && strcmp(key, alt) == 0);
}

/* The first query argument named name (or camelCase); NULL if absent. */
static const char *query_arg(const tally_req *req, const char *name)
{
    char camel[128];
    const char *alt = strchr(name, '_') ? camel_of(name, camel, sizeof camel) : NULL;
    for (size_t i = 0; i < req->n_args; i++)
        if (arg_name_is(req->args[i].key, name, alt))
            return req->args[i].value;
    return NULL;
}

/* ------------------------------------------------------------------------ */
/* Open / close                                                               */
/* ------------------------------------------------------------------------ */

static int valid_utf8(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s);
    while (n) {
        size_t k = tally_utf8_seq_len(p, n);
        if (!k)
            return 0;
        p += k;
        n -= k;
    }
    return 1;
}

/* "application/json" possibly followed by ";params", case-insensitive. */
static int is_json_type(const char *ct)
{
    while (*ct == ' ' || *ct == '\t')
        ct++;
    size_t n = strlen("application/json");
    if (strncasecmp(ct, "application/json", n) != 0)
        return 0;
    const char *p = ct + n;
    while (*p == ' ' || *p == '\t')
        p++;
    return *p == 0 || *p == ';';
}

static int all_ws(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!(s[i] == ' ' || s[i] == '\n' || s[i] == '\r' || s[i] == '\t'))
            return 0;
    return 1;
}

static int malformed(tally_resp *resp, const tally_json_error *e)
{
    if (e->too_complex) {
        tally_resp_error_status(resp, 413, TALLY_API_RESOURCE_EXHAUSTED,
                                "Request body too complex to decode.");
        return -1;
    }
    tally_resp_error(resp, TALLY_API_INVALID_PARAMETER_VALUE,
                     "Malformed JSON request body: %s at byte %zu.", e->msg, e->offset);
    return -1;
}

int tally_params_open(tally_params *p, const tally_req *req, tally_resp *resp)
{
    p->req = req;
    p->root = NULL;
    p->from_query = 0;
    p->owned = NULL;

    tally_method m = req->method;
    int is_get = m == TALLY_GET || m == TALLY_HEAD;
    if (m == TALLY_POST || m == TALLY_PUT) {
        if (!req->content_type) {
            tally_resp_error(resp, TALLY_API_INVALID_PARAMETER_VALUE,
                             "Bad Request. Content-Type header is missing.");
            return -1;
        }
        if (!is_json_type(req->content_type)) {
            tally_resp_error(resp, TALLY_API_INVALID_PARAMETER_VALUE,
                             "Bad Request. Content-Type must be one of ['application/json'].");
            return -1;
        }
    }
    const char *body = req->body ? req->body : "";
    size_t body_len = req->body ? req->body_len : 0;
    int empty = all_ws(body, body_len);
    if ((is_get || m == TALLY_DELETE) && req->n_args > 0 && (is_get || empty)) {
        for (size_t i = 0; i < req->n_args; i++) {
            if (!valid_utf8(req->args[i].key) || !valid_utf8(req->args[i].value)) {
                tally_resp_error(resp, TALLY_API_INVALID_PARAMETER_VALUE,
                                 "Invalid UTF-8 in query parameter '%s'.",
                                 valid_utf8(req->args[i].key) ? req->args[i].key : "?");
                return -1;
            }
        }
        p->from_query = 1;
        return 0;
    }

    size_t limit = body_len > (SIZE_MAX - (1u << 20)) / ARENA_FACTOR
                       ? SIZE_MAX
                       : body_len * ARENA_FACTOR + (1u << 20);
    tally_json_arena *a = tally_json_arena_new(limit);
    if (!a) {
        tally_resp_error(resp, TALLY_API_INTERNAL_ERROR, "Out of memory.");
        return -1;
    }
    p->owned = a;
    tally_json_error err = {"out of memory", 0, 1};
    cJSON *root = empty ? tally_json_new_object(a) : tally_json_parse(a, body, body_len, &err);
    if (root && cJSON_IsString(root)) {
        /* A double-encoded body: a JSON string holding the JSON document
         * (old clients); decoded once more, as MLflow does. */
        const char *inner = root->valuestring;
        size_t n = strlen(inner);
        root = all_ws(inner, n) ? tally_json_new_object(a) : tally_json_parse(a, inner, n, &err);
    }
    if (!root) {
        tally_params_close(p);
        return malformed(resp, &err);
    }
    if (!cJSON_IsObject(root)) {
        tally_params_close(p);
        tally_resp_error(resp, TALLY_API_INVALID_PARAMETER_VALUE,
                         "Invalid JSON request body: expected a JSON object, got %s.",
                         kind_of(root));
        return -1;
    }
    p->root = root;
    return 0;
}

void tally_params_close(tally_params *p)
{
    if (!p)
        return;
    tally_json_arena_free(p->owned);
    p->owned = NULL;
    p->root = NULL;
}

/* Arena memory owned by p, creating the arena on first use (query mode). */
static void *p_alloc(tally_params *p, size_t n)
{
    if (!p->owned) {
        p->owned = tally_json_arena_new(SIZE_MAX);
        if (!p->owned)
            return NULL;
    }
    return tally_json_arena_alloc(p->owned, n);
}

/* ------------------------------------------------------------------------ */
/* Getters over a JSON value                                                  */
/* ------------------------------------------------------------------------ */

/* Each takes the value v (non-NULL, not JSON null) and the label parts for
 * errors; returns 1 or -1 like the public getters. */

/* coerce: numbers become their decimal text (numbuf, numcap >= 32, holds
 * it unless the node kept its token text). */
static int value_string(const cJSON *v, const char *where, const char *name, const char **out,
                        tally_resp *resp, int coerce, char *numbuf, size_t numcap)
{
    if (cJSON_IsString(v)) {
        *out = v->valuestring;
        return 1;
    }
    if (cJSON_IsNumber(v) && coerce && (v->valuestring || numbuf)) {
        /* Numeric ids are coerced to strings (MLflow does so for experiment_id). */
        if (v->valuestring) {
            *out = v->valuestring;
            return 1;
        }
        int64_t i;
        if (double_to_int64(v->valuedouble, &i) == CONV_OK)
            snprintf(numbuf, numcap, "%" PRId64, i);
        else
            snprintf(numbuf, numcap, "%.17g", v->valuedouble);
        *out = numbuf;
        return 1;
    }
    return bad_value(resp, where, name, "a string", kind_of(v));
}

static int value_int64(const cJSON *v, const char *where, const char *name, int64_t *out,
                       tally_resp *resp)
{
    int rc;
    if (cJSON_IsNumber(v)) {
        if (v->valuestring)
            rc = text_to_int64(v->valuestring, strlen(v->valuestring), 1, out);
        else
            rc = double_to_int64(v->valuedouble, out);
        if (rc == CONV_BAD)
            return bad_value(resp, where, name, "an integer", "a fractional number");
    } else if (cJSON_IsString(v)) {
        rc = text_to_int64(v->valuestring, strlen(v->valuestring), 0, out);
        if (rc == CONV_BAD)
            return bad_value(resp, where, name, "an integer", "a non-integer string");
    } else {
        return bad_value(resp, where, name, "an integer", kind_of(v));
    }
    if (rc == CONV_RANGE)
        return out_of_range(resp, where, name, "int64");
    return 1;
}

static int value_double(const cJSON *v, const char *where, const char *name, double *out,
                        tally_resp *resp)
{
    if (cJSON_IsNumber(v)) {
        if (isinf(v->valuedouble))
            return out_of_range(resp, where, name, "double"); /* a literal like 1e999 */
        *out = v->valuedouble;
        return 1;
    }
    if (cJSON_IsBool(v)) {
        *out = cJSON_IsTrue(v) ? 1.0 : 0.0; /* Python: float(True) == 1.0 */
        return 1;
    }
    if (cJSON_IsString(v)) {
        int rc = text_to_double(v->valuestring, out);
        if (rc == CONV_RANGE)
            return out_of_range(resp, where, name, "double");
        if (rc != CONV_OK)
            return bad_value(resp, where, name, "a number", "a non-numeric string");
        return 1;
    }
    return bad_value(resp, where, name, "a number", kind_of(v));
}

/* ------------------------------------------------------------------------ */
/* Public getters                                                             */
/* ------------------------------------------------------------------------ */

/* The field's JSON value, NULL when absent or null. */
static const cJSON *body_field(tally_params *p, const char *name)
{
    const cJSON *v = member(p->root, name);
    return v && !cJSON_IsNull(v) ? v : NULL;
}

int tally_params_string(tally_params *p, const char *name, const char **out, tally_resp *resp)
{
    if (p->from_query) {
        const char *s = query_arg(p->req, name);
        if (!s)
            return 0;
        *out = s;
        return 1;
    }
    const cJSON *v = body_field(p, name);
    if (!v)
        return 0;
    if (cJSON_IsNumber(v) && !v->valuestring) {
        char *buf = p_alloc(p, 32);
        if (!buf) {
            tally_resp_error(resp, TALLY_API_INTERNAL_ERROR, "Out of memory.");
            return -1;
        }
        return value_string(v, NULL, name, out, resp, 1, buf, 32);
    }
    return value_string(v, NULL, name, out, resp, 1, NULL, 0);
}

int tally_params_int64(tally_params *p, const char *name, int64_t *out, tally_resp *resp)
{
    if (p->from_query) {
        const char *s = query_arg(p->req, name);
        if (!s)
            return 0;
        int rc = text_to_int64(s, strlen(s), 0, out);
        if (rc == CONV_RANGE)
            return out_of_range(resp, NULL, name, "int64");
        if (rc != CONV_OK)
            return bad_value(resp, NULL, name, "an integer", "a non-integer string");
        return 1;
    }
    const cJSON *v = body_field(p, name);
    return v ? value_int64(v, NULL, name, out, resp) : 0;
}

int tally_params_int32(tally_params *p, const char *name, int32_t *out, tally_resp *resp)
{
    int64_t v;
    int rc = tally_params_int64(p, name, &v, resp);
    if (rc != 1)
        return rc;
    if (v < INT32_MIN || v > INT32_MAX)
        return out_of_range(resp, NULL, name, "int32");
    *out = (int32_t)v;
    return 1;
}

int tally_params_double(tally_params *p, const char *name, double *out, tally_resp *resp)
{
    if (p->from_query) {
        const char *s = query_arg(p->req, name);
        if (!s)
            return 0;
        int rc = text_to_double(s, out);
        if (rc == CONV_RANGE)
            return out_of_range(resp, NULL, name, "double");
        if (rc != CONV_OK)
            return bad_value(resp, NULL, name, "a number", "a non-numeric string");
        return 1;
    }
    const cJSON *v = body_field(p, name);
    return v ? value_double(v, NULL, name, out, resp) : 0;
}

static int bool_text(const char *s, int *out)
{
    if (strcasecmp(s, "true") == 0) {
        *out = 1;
        return 1;
    }
    if (strcasecmp(s, "false") == 0) {
        *out = 0;
        return 1;
    }
    return 0;
}

int tally_params_bool(tally_params *p, const char *name, int *out, tally_resp *resp)
{
    if (p->from_query) {
        const char *s = query_arg(p->req, name);
        if (!s)
            return 0;
        if (!bool_text(s, out))
            return bad_value(resp, NULL, name, "true or false", "another string");
        return 1;
    }
    const cJSON *v = body_field(p, name);
    if (!v)
        return 0;
    if (cJSON_IsBool(v)) {
        *out = cJSON_IsTrue(v) ? 1 : 0;
        return 1;
    }
    if (cJSON_IsString(v) && bool_text(v->valuestring, out))
        return 1;
    return bad_value(resp, NULL, name, "true or false", kind_of(v));
}

static int enum_lookup(const char *s, const char *const *names, const int *values, size_t n,
                       int *out)
{
    for (size_t i = 0; i < n; i++)
        if (names[i] && strcasecmp(s, names[i]) == 0) {
            *out = values[i];
            return 1;
        }
    int64_t num;
    if (text_to_int64(s, strlen(s), 0, &num) == CONV_OK)
        for (size_t i = 0; i < n; i++)
            if (values[i] == num) {
                *out = values[i];
                return 1;
            }
    return 0;
}

int tally_params_enum(tally_params *p, const char *name, const char *const *names,
                      const int *values, size_t n, int *out, tally_resp *resp)
{
    const char *s = NULL;
    if (p->from_query) {
        s = query_arg(p->req, name);
        if (!s)
            return 0;
    } else {
        const cJSON *v = body_field(p, name);
        if (!v)
            return 0;
        if (cJSON_IsNumber(v)) {
            int64_t num;
            int rc = v->valuestring ? text_to_int64(v->valuestring, strlen(v->valuestring), 1, &num)
                                    : double_to_int64(v->valuedouble, &num);
            if (rc == CONV_OK)
                for (size_t i = 0; i < n; i++)
                    if (values[i] == num) {
                        *out = values[i];
                        return 1;
                    }
            return bad_value(resp, NULL, name, "one of the enum's names or numbers", "another number");
        }
        if (!cJSON_IsString(v))
            return bad_value(resp, NULL, name, "one of the enum's names or numbers", kind_of(v));
        s = v->valuestring;
    }
    if (enum_lookup(s, names, values, n, out))
        return 1;
    char label[160];
    snprintf(label, sizeof label, "'%.100s'", s);
    return bad_value(resp, NULL, name, "one of the enum's names or numbers", label);
}

int tally_params_strings(tally_params *p, const char *name, const char ***out, size_t *n,
                         tally_resp *resp)
{
    *out = NULL;
    *n = 0;
    if (p->from_query) {
        char camel[128], brackets[160], camel_brackets[160];
        const char *alt = strchr(name, '_') ? camel_of(name, camel, sizeof camel) : NULL;
        snprintf(brackets, sizeof brackets, "%s[]", name);
        snprintf(camel_brackets, sizeof camel_brackets, "%s[]", alt ? alt : name);
        size_t count = 0;
        for (size_t i = 0; i < p->req->n_args; i++) {
            const char *k = p->req->args[i].key;
            count += arg_name_is(k, name, alt) || arg_name_is(k, brackets, camel_brackets);
        }
        if (!count)
            return 0;
        const char **list = p_alloc(p, count * sizeof *list);
        if (!list) {
            tally_resp_error(resp, TALLY_API_INTERNAL_ERROR, "Out of memory.");
            return -1;
        }
        size_t k2 = 0;
        for (size_t i = 0; i < p->req->n_args; i++) {
            const char *k = p->req->args[i].key;
            if (arg_name_is(k, name, alt) || arg_name_is(k, brackets, camel_brackets))
                list[k2++] = p->req->args[i].value;
        }
        *out = list;
        *n = count;
        return 1;
    }
    const cJSON *v = body_field(p, name);
    if (!v)
        return 0;
    size_t count = 1;
    const cJSON *first = v;
    if (cJSON_IsArray(v)) {
        count = 0;
        for (const cJSON *c = v->child; c; c = c->next)
            count++;
        first = v->child;
    } else if (!cJSON_IsString(v) && !cJSON_IsNumber(v)) {
        return bad_value(resp, NULL, name, "an array of strings", kind_of(v));
    }
    const char **list = p_alloc(p, (count ? count : 1) * sizeof *list);
    if (!list) {
        tally_resp_error(resp, TALLY_API_INTERNAL_ERROR, "Out of memory.");
        return -1;
    }
    size_t i = 0;
    for (const cJSON *c = first; c && i < count; c = c->next, i++) {
        char label[192];
        snprintf(label, sizeof label, "%s[%zu]", name, i);
        char *numbuf = NULL;
        if (cJSON_IsNumber(c) && !c->valuestring && !(numbuf = p_alloc(p, 32))) {
            tally_resp_error(resp, TALLY_API_INTERNAL_ERROR, "Out of memory.");
            return -1;
        }
        if (cJSON_IsNull(c) || value_string(c, NULL, label, &list[i], resp, 1, numbuf, 32) != 1) {
            if (cJSON_IsNull(c))
                bad_value(resp, NULL, label, "a string", "null");
            return -1;
        }
    }
    *out = list;
    *n = count;
    return 1;
}

int tally_params_array(tally_params *p, const char *name, cJSON **out, tally_resp *resp)
{
    *out = NULL;
    if (p->from_query)
        return 0;
    const cJSON *v = body_field(p, name);
    if (!v)
        return 0;
    if (!cJSON_IsArray(v))
        return bad_value(resp, NULL, name, "an array", kind_of(v));
    *out = (cJSON *)v;
    return 1;
}

int tally_params_require_string(tally_params *p, const char *name, const char **out,
                                tally_resp *resp)
{
    int rc = tally_params_string(p, name, out, resp);
    return rc == 0 ? tally_params_missing(resp, name) : rc;
}

int tally_params_require_int64(tally_params *p, const char *name, int64_t *out, tally_resp *resp)
{
    int rc = tally_params_int64(p, name, out, resp);
    return rc == 0 ? tally_params_missing(resp, name) : rc;
}

int tally_params_require_double(tally_params *p, const char *name, double *out, tally_resp *resp)
{
    int rc = tally_params_double(p, name, out, resp);
    return rc == 0 ? tally_params_missing(resp, name) : rc;
}

/* ------------------------------------------------------------------------ */
/* Nested fields                                                              */
/* ------------------------------------------------------------------------ */

static const cJSON *nested_field(const cJSON *obj, const char *name)
{
    const cJSON *v = member(obj, name);
    return v && !cJSON_IsNull(v) ? v : NULL;
}

int tally_json_field_string(const cJSON *obj, const char *name, const char *where,
                            const char **out, tally_resp *resp)
{
    const cJSON *v = nested_field(obj, name);
    if (!v)
        return 0;
    /* Nested string fields (tag keys and values, metric keys) must be JSON
     * strings, as protobuf requires; only the top-level id fields coerce. */
    return value_string(v, where, name, out, resp, 0, NULL, 0);
}

int tally_json_field_int64(const cJSON *obj, const char *name, const char *where, int64_t *out,
                           tally_resp *resp)
{
    const cJSON *v = nested_field(obj, name);
    return v ? value_int64(v, where, name, out, resp) : 0;
}

int tally_json_field_double(const cJSON *obj, const char *name, const char *where, double *out,
                            tally_resp *resp)
{
    const cJSON *v = nested_field(obj, name);
    return v ? value_double(v, where, name, out, resp) : 0;
}
