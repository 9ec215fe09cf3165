/*
 * logbatch.c — log-batch's general parser, over jsmn tokens, and what both
 * parsers share: checks (4)-(7) and the result (tally__lb_finish), key
 * groups, MLflow's key rule (see logbatch.h for the order of checks, and
 * logbatch_internal.h for how the fast parser in logbatch_fast.c takes the
 * bodies clients usually send and leaves the rest to this one).
 *
 * jsmn is a tokenizer, not a validator: it accepts missing commas, trailing
 * commas and bare words. check_syntax() therefore re-walks the tokens and
 * checks what lies *between* them: with parent links and tokens in
 * document order, the text between a token and what precedes it inside its
 * parent must be whitespace around exactly one ',' (sibling), ':' (value
 * after a key) or nothing (first child); primitives must be JSON numbers,
 * true, false or null; strings must hold no raw control character; an
 * object's children must be keys (strings with exactly one value). What it
 * accepts is exactly RFC 8259 JSON (plus any bytes >= 0x80 inside strings,
 * whose UTF-8 is checked where the string is used).
 *
 * Token layout reminder (jsmn with JSMN_PARENT_LINKS): a string token spans
 * the characters between its quotes; a container spans from its bracket to
 * one past its closing bracket; an object's size counts its keys, a key's
 * size is 1 (its value), an array's size counts its elements.
 */
#define JSMN_STATIC        /* the one place jsmn's functions are compiled */
#define JSMN_PARENT_LINKS
#include <jsmn.h>

#include "logbatch.h"
#include "http_url.h"
#include "json_num_read.h"
#include "logbatch_internal.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <xxhash.h>

#define KEEP_TOKENS 65536   /* scratch kept between parses (tally_logbatch_trim) */
#define KEEP_BYTES (4u << 20)

static int errorf(tally_logbatch *lb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int errorf(tally_logbatch *lb, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(lb->message, sizeof lb->message, fmt, ap);
    va_end(ap);
    return -1;
}

static int missing(tally_logbatch *lb, const char *path)
{
    return errorf(lb,
                  "Missing value for required parameter '%s'. See the API docs for more "
                  "information about request parameters.",
                  path);
}

/* ------------------------------------------------------------------------ */
/* Scratch                                                                   */
/* ------------------------------------------------------------------------ */

void tally_logbatch_init(tally_logbatch *lb) { memset(lb, 0, sizeof *lb); }

void tally_logbatch_free(tally_logbatch *lb)
{
    if (!lb)
        return;
    free(lb->toks);
    free(lb->aux);
    free(lb->strs);
    free(lb->decoded);
    free(lb->metrics);
    free(lb->groups);
    free(lb->slots);
    free(lb->kv_toks);
    free(lb->kvs);
    free(lb->steps);
    free(lb->timestamps);
    free(lb->values);
    free(lb->series);
    memset(lb, 0, sizeof *lb);
}

void tally_logbatch_trim(tally_logbatch *lb)
{
    if (lb->tok_cap > KEEP_TOKENS || lb->strs_cap > KEEP_BYTES || lb->decoded_cap > KEEP_BYTES ||
        lb->metrics_cap > 4 * TALLY_LB_MAX_METRICS || lb->kvs_cap > 4 * TALLY_LB_MAX_TOTAL) {
        tally_logbatch_free(lb);
        tally_logbatch_init(lb);
    }
}

int tally__lb_grow(void *pp, size_t *cap, size_t n, size_t sz)
{
    if (*cap >= n)
        return 0;
    size_t c = *cap ? *cap : 16;
    while (c < n)
        c *= 2;
    void *p;
    memcpy(&p, pp, sizeof p); /* pp points at some T *: read and written as bytes */
    void *q = realloc(p, c * sz);
    if (!q)
        return -1;
    memcpy(pp, &q, sizeof q);
    *cap = c;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Syntax check over the tokens                                              */
/* ------------------------------------------------------------------------ */

static int is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

static int outer_start(const jsmntok_t *t) { return t->type == JSMN_STRING ? t->start - 1 : t->start; }
static int outer_end(const jsmntok_t *t) { return t->type == JSMN_STRING ? t->end + 1 : t->end; }

/* js[from, to) is whitespace around exactly one sep (sep 0: whitespace only). */
static int gap_ok(const char *js, int from, int to, char sep)
{
    int i = from;
    while (i < to && is_ws(js[i]))
        i++;
    if (sep) {
        if (i >= to || js[i] != sep)
            return 0;
        i++;
        while (i < to && is_ws(js[i]))
            i++;
    }
    return i == to;
}

static int is_digit(char c) { return c >= '0' && c <= '9'; }

/* RFC 8259 number grammar over s[0..n). */
static int number_ok(const char *s, size_t n)
{
    size_t i = 0;
    if (i < n && s[i] == '-')
        i++;
    if (i >= n)
        return 0;
    if (s[i] == '0') {
        i++;
    } else if (s[i] >= '1' && s[i] <= '9') {
        while (i < n && is_digit(s[i]))
            i++;
    } else {
        return 0;
    }
    if (i < n && s[i] == '.') {
        i++;
        if (i >= n || !is_digit(s[i]))
            return 0;
        while (i < n && is_digit(s[i]))
            i++;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        if (i >= n || !is_digit(s[i]))
            return 0;
        while (i < n && is_digit(s[i]))
            i++;
    }
    return i == n;
}

static int primitive_ok(const char *s, size_t n)
{
    if (n == 4 && (memcmp(s, "true", 4) == 0 || memcmp(s, "null", 4) == 0))
        return 1;
    if (n == 5 && memcmp(s, "false", 5) == 0)
        return 1;
    return number_ok(s, n);
}

/* Raw control characters are not allowed inside JSON strings (Python's
 * json.loads, which MLflow uses, rejects them). */
static int string_ok(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20)
            return 0;
    return 1;
}

static int check_syntax(tally_logbatch *lb, const char *js, size_t len, const jsmntok_t *t, int n)
{
    if (TALLY_LB_GROW(lb, aux, aux_cap, (size_t)n) != 0)
        return TALLY_ENOMEM;
    int *last = lb->aux; /* per container: outer end of its last member, or -1 */
    for (int i = 0; i < n; i++) {
        const jsmntok_t *k = &t[i];
        int p = k->parent;
        if (k->start < 0 || k->end < k->start || (size_t)k->end > len)
            return -1;
        if (p < 0) {
            if (i != 0 || !gap_ok(js, 0, outer_start(k), 0))
                return -1;
        } else {
            const jsmntok_t *pt = &t[p];
            if (pt->type == JSMN_STRING) {
                /* k is the value of key pt, a member of object t[pt->parent]. */
                if (!gap_ok(js, outer_end(pt), outer_start(k), ':'))
                    return -1;
                last[pt->parent] = outer_end(k);
            } else if (pt->type == JSMN_OBJECT || pt->type == JSMN_ARRAY) {
                int from = last[p] < 0 ? pt->start + 1 : last[p];
                if (!gap_ok(js, from, outer_start(k), last[p] < 0 ? 0 : ','))
                    return -1;
                if (pt->type == JSMN_OBJECT && (k->type != JSMN_STRING || k->size != 1))
                    return -1;
                last[p] = outer_end(k);
            } else {
                return -1; /* a child of a primitive: "1:2" */
            }
        }
        switch (k->type) {
        case JSMN_OBJECT:
        case JSMN_ARRAY:
            last[i] = -1;
            break;
        case JSMN_STRING:
            if ((p < 0 || t[p].type != JSMN_OBJECT) && k->size != 0)
                return -1; /* a key outside an object */
            if (!string_ok(js + k->start, (size_t)(k->end - k->start)))
                return -1;
            break;
        case JSMN_PRIMITIVE:
            if (k->size != 0 || !primitive_ok(js + k->start, (size_t)(k->end - k->start)))
                return -1;
            break;
        case JSMN_UNDEFINED:
        default:
            return -1;
        }
    }
    /* Closing brackets: nothing but whitespace after the last member. */
    for (int i = 0; i < n; i++) {
        if (t[i].type != JSMN_OBJECT && t[i].type != JSMN_ARRAY)
            continue;
        int from = last[i] < 0 ? t[i].start + 1 : last[i];
        if (!gap_ok(js, from, t[i].end - 1, 0))
            return -1;
    }
    return gap_ok(js, outer_end(&t[0]), (int)len, 0) ? 0 : -1;
}

/* Tokenizes js[0..len) into lb->toks, growing the token array as needed.
 * Returns the token count, -1 for malformed JSON (message set), -2 for too
 * many tokens (message set), or TALLY_ENOMEM. */
static int tokenize(tally_logbatch *lb, const char *js, size_t len)
{
    jsmn_parser parser;
    jsmn_init(&parser);
    if (lb->tok_cap == 0 &&
        tally__lb_grow(&lb->toks, &lb->tok_cap, 4096, sizeof(jsmntok_t)) != 0)
        return TALLY_ENOMEM;
    for (;;) {
        int r = jsmn_parse(&parser, js, len, lb->toks, (unsigned)lb->tok_cap);
        if (r >= 0) {
            if (r == 0)
                return 0;
            int c = check_syntax(lb, js, len, lb->toks, r);
            if (c == TALLY_ENOMEM)
                return c;
            if (c != 0)
                return errorf(lb, "Malformed request: the body is not valid JSON");
            return r;
        }
        if (r != JSMN_ERROR_NOMEM)
            return errorf(lb, "Malformed request: the body is not valid JSON");
        if (lb->tok_cap >= TALLY_LB_MAX_TOKENS) {
            errorf(lb,
                   "A batch logging request can contain at most %d metrics, %d params and %d "
                   "tags (%d in total); this body holds far more JSON values than that",
                   TALLY_LB_MAX_METRICS, TALLY_LB_MAX_PARAMS, TALLY_LB_MAX_TAGS,
                   TALLY_LB_MAX_TOTAL);
            return -2;
        }
        /* jsmn resumes where it stopped once given more tokens. */
        if (tally__lb_grow(&lb->toks, &lb->tok_cap, lb->tok_cap * 2, sizeof(jsmntok_t)) != 0)
            return TALLY_ENOMEM;
    }
}

/* Index of the token after the subtree of token i. */
static int skip(const jsmntok_t *t, int n, int i)
{
    int end = outer_end(&t[i]);
    int j = i + 1;
    while (j < n && t[j].start < end)
        j++;
    return j;
}

/* ------------------------------------------------------------------------ */
/* Strings                                                                   */
/* ------------------------------------------------------------------------ */

static int hex4(const char *s, const char *end, unsigned *out)
{
    if (end - s < 4)
        return -1;
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        int h = tally_url_hexval(s[i]);
        if (h < 0)
            return -1;
        v = v << 4 | (unsigned)h;
    }
    *out = v;
    return 0;
}

static char *put_utf8(char *o, unsigned cp)
{
    if (cp < 0x80) {
        *o++ = (char)cp;
    } else if (cp < 0x800) {
        *o++ = (char)(0xC0 | cp >> 6);
        *o++ = (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        *o++ = (char)(0xE0 | cp >> 12);
        *o++ = (char)(0x80 | (cp >> 6 & 0x3F));
        *o++ = (char)(0x80 | (cp & 0x3F));
    } else {
        *o++ = (char)(0xF0 | cp >> 18);
        *o++ = (char)(0x80 | (cp >> 12 & 0x3F));
        *o++ = (char)(0x80 | (cp >> 6 & 0x3F));
        *o++ = (char)(0x80 | (cp & 0x3F));
    }
    return o;
}

/* Decodes the JSON string body s[0..n) (escapes) into out, which has room
 * for n bytes (decoding never grows a string: \uXXXX is 6 bytes for at most
 * 3, a surrogate pair 12 for 4). Lone surrogates become U+FFFD. Returns the
 * decoded length, or -1 on a bad escape. */
static long unescape(const char *s, size_t n, char *out)
{
    const char *end = s + n;
    char *o = out;
    while (s < end) {
        const char *bs = memchr(s, '\\', (size_t)(end - s));
        size_t run = (size_t)((bs ? bs : end) - s);
        memcpy(o, s, run);
        o += run;
        s += run;
        if (!bs)
            break;
        if (end - s < 2)
            return -1;
        char c = s[1];
        s += 2;
        switch (c) {
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case '/': *o++ = '/'; break;
        case 'b': *o++ = '\b'; break;
        case 'f': *o++ = '\f'; break;
        case 'n': *o++ = '\n'; break;
        case 'r': *o++ = '\r'; break;
        case 't': *o++ = '\t'; break;
        case 'u': {
            unsigned cp;
            if (hex4(s, end, &cp) != 0)
                return -1;
            s += 4;
            if (cp >= 0xD800 && cp < 0xDC00) {
                unsigned lo;
                if (end - s >= 6 && s[0] == '\\' && s[1] == 'u' && hex4(s + 2, end, &lo) == 0 &&
                    lo >= 0xDC00 && lo < 0xE000) {
                    s += 6;
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                } else {
                    cp = 0xFFFD;
                }
            } else if (cp >= 0xDC00 && cp < 0xE000) {
                cp = 0xFFFD;
            }
            o = put_utf8(o, cp);
            break;
        }
        default:
            return -1;
        }
    }
    return (long)(o - out);
}

/* The decoded bytes of string token t: in place when it has no escape,
 * else unescaped into lb->strs (which has room for the whole body, reserved
 * up front, so earlier pointers stay valid). */
static int tok_string(tally_logbatch *lb, const char *js, const jsmntok_t *t, const char **out,
                      size_t *len)
{
    const char *s = js + t->start;
    size_t n = (size_t)(t->end - t->start);
    if (!memchr(s, '\\', n)) {
        *out = s;
        *len = n;
        return 0;
    }
    char *o = lb->strs + lb->strs_len;
    long m = unescape(s, n, o);
    if (m < 0)
        return -1;
    lb->strs_len += (size_t)m;
    *out = o;
    *len = (size_t)m;
    return 0;
}

/* A NUL-terminated copy in lb->strs (room reserved: see reserve_strs). */
static const char *str_copy(tally_logbatch *lb, const char *s, size_t n)
{
    char *o = lb->strs + lb->strs_len;
    memmove(o, s, n);
    o[n] = 0;
    lb->strs_len += n + 1;
    return o;
}

/* Compares string token t with the literal lit (escapes decoded). */
static int tok_eq(const char *js, const jsmntok_t *t, const char *lit, size_t lit_len)
{
    const char *s = js + t->start;
    size_t n = (size_t)(t->end - t->start);
    if (n == lit_len && memcmp(s, lit, n) == 0)
        return 1;
    if (n > 6 * lit_len || !memchr(s, '\\', n))
        return 0;
    char tmp[96];
    if (n > sizeof tmp)
        return 0;
    long m = unescape(s, n, tmp);
    return m == (long)lit_len && memcmp(tmp, lit, lit_len) == 0;
}
#define TOK_EQ(js, t, lit) tok_eq((js), (t), (lit), sizeof(lit) - 1)

/* ------------------------------------------------------------------------ */
/* Scalars (mlflow-rest-api.md §1.3)                                         */
/* ------------------------------------------------------------------------ */

static int is_null(const char *js, const jsmntok_t *t)
{
    return t->type == JSMN_PRIMITIVE && js[t->start] == 'n';
}

/* The token's text as a NUL-terminated string in tmp (escapes decoded for
 * strings). -1 if too long for tmp or badly escaped. */
static int scalar_text(const char *js, const jsmntok_t *t, char *tmp, size_t cap)
{
    size_t n = (size_t)(t->end - t->start);
    if (n >= cap)
        return -1;
    if (t->type == JSMN_STRING) {
        long m = unescape(js + t->start, n, tmp);
        if (m < 0)
            return -1;
        tmp[m] = 0;
    } else {
        memcpy(tmp, js + t->start, n);
        tmp[n] = 0;
    }
    return 0;
}

/* Decimal digits with an optional sign, into int64 (Python int() as the
 * protobuf parser calls it: no spaces, no fraction). */
static int parse_int_text(const char *s, int64_t *out)
{
    int neg = 0;
    if (*s == '+' || *s == '-')
        neg = *s++ == '-';
    const char *d0 = s;
    uint64_t v = 0;
    while ((unsigned)(*s - '0') < 10)
        v = v * 10 + (unsigned)(*s++ - '0');
    size_t nd = (size_t)(s - d0);
    if (nd == 0 || *s)
        return -1;
    if (nd > 18) {
        /* Could have overflowed: redo with checks (rare). */
        uint64_t lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
        v = 0;
        for (s = d0; *s; s++) {
            unsigned d = (unsigned)(*s - '0');
            if (v > (lim - d) / 10)
                return -1;
            v = v * 10 + d;
        }
    }
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return 0;
}

/* int64 field: 1 = value, 0 = absent (null), -1 = invalid. A JSON integer,
 * a JSON number with a fraction or exponent whose value is integral (5.0,
 * 1e3), or a string of decimal digits with an optional sign (Python's int()
 * as protobuf calls it: no spaces, no fraction); never a bool. */
static int conv_int64(const char *js, const jsmntok_t *t, int64_t *out)
{
    if (t->type == JSMN_PRIMITIVE) {
        char c = js[t->start];
        if (c == 'n')
            return 0;
        if (c == 't' || c == 'f')
            return -1;
    } else if (t->type != JSMN_STRING) {
        return -1;
    }
    char tmp[64];
    if (scalar_text(js, t, tmp, sizeof tmp) != 0)
        return -1;
    if (parse_int_text(tmp, out) == 0)
        return 1;
    if (t->type == JSMN_STRING)
        return -1;
    char *e;
    double d = strtod(tmp, &e);
    if (*e || !isfinite(d) || d != floor(d) || d < -9223372036854775808.0 ||
        d >= 9223372036854775808.0)
        return -1;
    *out = (int64_t)d;
    return 1;
}

/* double field: 1 = value, 0 = absent (null), -1 = invalid. The rules of
 * params.c (the general path), so both paths accept the same values: a JSON
 * number (overflowing to infinity is an error, as protobuf's parser says),
 * true = 1.0 and false = 0.0 (Python's float(True)), or a string: "NaN",
 * "Infinity", "-Infinity" and the other spellings Python's float() takes for
 * them, or decimal text (no hex, no spaces). */
static int conv_double(const char *js, const jsmntok_t *t, double *out)
{
    char tmp[400];
    if (t->type == JSMN_PRIMITIVE) {
        char c = js[t->start];
        if (c == 'n')
            return 0;
        if (c == 't' || c == 'f') {
            *out = c == 't' ? 1.0 : 0.0;
            return 1;
        }
        size_t n = (size_t)(t->end - t->start);
        if (n >= sizeof tmp)
            return -1;
        double d = tally_json_number_to_double(js + t->start, n);
        if (isinf(d) || isnan(d))
            return -1;
        *out = d;
        return 1;
    }
    if (t->type != JSMN_STRING)
        return -1;
    if (scalar_text(js, t, tmp, sizeof tmp) != 0)
        return -1;
    const char *w = tmp;
    int neg = 0;
    if (*w == '+' || *w == '-')
        neg = *w++ == '-';
    if (strcasecmp(w, "nan") == 0) {
        *out = NAN;
        return 1;
    }
    if (strcasecmp(w, "inf") == 0 || strcasecmp(w, "infinity") == 0) {
        *out = neg ? -INFINITY : INFINITY;
        return 1;
    }
    if (!tmp[0])
        return -1;
    for (const char *p = tmp; *p; p++)
        if (!((*p >= '0' && *p <= '9') || *p == '.' || *p == 'e' || *p == 'E' || *p == '+' ||
              *p == '-'))
            return -1;
    char *e;
    double d = strtod(tmp, &e);
    if (e == tmp || *e || isinf(d))
        return -1;
    *out = d;
    return 1;
}

/* ------------------------------------------------------------------------ */
/* Key and run id rules (mlflow-rest-api.md §6)                              */
/* ------------------------------------------------------------------------ */

/* Length of the well-formed UTF-8 sequence at p (n bytes left), or 0. */
static size_t utf8_seq(const unsigned char *p, size_t n)
{
    unsigned c = p[0];
    if (c < 0x80)
        return 1;
    if (c < 0xC2)
        return 0;
    if (c < 0xE0)
        return n >= 2 && (p[1] & 0xC0) == 0x80 ? 2 : 0;
    if (c < 0xF0) {
        if (n < 3 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80)
            return 0;
        if ((c == 0xE0 && p[1] < 0xA0) || (c == 0xED && p[1] >= 0xA0))
            return 0;
        return 3;
    }
    if (c < 0xF5) {
        if (n < 4 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80 || (p[3] & 0xC0) != 0x80)
            return 0;
        if ((c == 0xF0 && p[1] < 0x90) || (c == 0xF4 && p[1] >= 0x90))
            return 0;
        return 4;
    }
    return 0;
}

static int key_char_ok(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == '-' || c == ' ' || c == '/' || c == ':';
}

int tally__key_check(const char *key, size_t len, const char *what, const char *path, char *msg,
                     size_t cap)
{
    const unsigned char *p = (const unsigned char *)key, *end = p + len;
    size_t n_chars = 0;
    int chars_ok = 1;
    while (p < end) {
        if (*p < 0x80) {
            if (!key_char_ok(*p))
                chars_ok = 0;
            p++;
        } else {
            size_t k = utf8_seq(p, (size_t)(end - p));
            if (!k) {
                chars_ok = 0;
                k = 1;
            }
            p += k;
        }
        n_chars++;
    }
    int shown = len > 200 ? 200 : (int)len;
    if (len == 0)
        return snprintf(msg, cap, "Missing value for required parameter '%s'. See the API docs for "
                                  "more information about request parameters.", path), -1;
    if (!chars_ok)
        return snprintf(msg, cap,
                        "Invalid value \"%.*s\" for parameter '%s' supplied: Names may only "
                        "contain alphanumerics, underscores (_), dashes (-), periods (.), spaces "
                        "( ), colon(:) and slashes (/).",
                        shown, key, path), -1;
    /* Path-normal: posixpath.normpath(key) == key and the result neither is
     * "." nor starts with ".." or "/". */
    int normal = key[0] != '/' && !(len >= 2 && key[0] == '.' && key[1] == '.');
    const char *seg = key, *kend = key + len;
    while (normal && seg <= kend) {
        const char *slash = memchr(seg, '/', (size_t)(kend - seg));
        const char *se = slash ? slash : kend;
        size_t sl = (size_t)(se - seg);
        if (sl == 0 || (sl == 1 && seg[0] == '.') || (sl == 2 && seg[0] == '.' && seg[1] == '.'))
            normal = 0;
        if (!slash)
            break;
        seg = slash + 1;
    }
    if (!normal)
        return snprintf(msg, cap,
                        "Invalid value \"%.*s\" for parameter '%s' supplied: Names may be treated "
                        "as files in certain cases, and must not resolve to other names when "
                        "treated as such.",
                        shown, key, path), -1;
    if (n_chars > TALLY_MAX_KEY_LEN)
        return snprintf(msg, cap,
                        "%s name '%.*s...' had length %zu, which exceeded length limit of %d (%s)",
                        what, 50, key, n_chars, TALLY_MAX_KEY_LEN, path), -1;
    return 0;
}

/* ^[a-zA-Z0-9][\w\-]{0,255}$ with \w over ASCII plus UTF-8 letters. */
static int run_id_ok(const char *s, size_t n)
{
    if (n == 0 || !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z') ||
                    (s[0] >= '0' && s[0] <= '9')))
        return 0;
    const unsigned char *p = (const unsigned char *)s + 1, *end = (const unsigned char *)s + n;
    size_t chars = 0;
    while (p < end) {
        if (*p < 0x80) {
            if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                  (*p >= '0' && *p <= '9') || *p == '_' || *p == '-'))
                return 0;
            p++;
        } else {
            size_t k = utf8_seq(p, (size_t)(end - p));
            if (!k)
                return 0;
            p += k;
        }
        chars++;
    }
    return chars <= 255;
}

/* ------------------------------------------------------------------------ */
/* Grouping metrics by key                                                   */
/* ------------------------------------------------------------------------ */

int tally__lb_groups_reset(tally_logbatch *lb, size_t n_metrics)
{
    size_t slots = 16;
    while (slots < 2 * n_metrics)
        slots *= 2;
    if (TALLY_LB_GROW(lb, groups, groups_cap, n_metrics + 1) != 0)
        return TALLY_ENOMEM;
    if (lb->slots_cap != slots) {
        free(lb->slots);
        lb->slots = malloc(slots * sizeof *lb->slots);
        lb->slots_cap = lb->slots ? slots : 0;
        if (!lb->slots)
            return TALLY_ENOMEM;
    }
    memset(lb->slots, 0, slots * sizeof *lb->slots);
    return 0;
}

uint32_t tally__lb_group_of(tally_logbatch *lb, size_t *n_groups, const char *key, size_t len)
{
    uint64_t h = XXH3_64bits(key, len);
    size_t mask = lb->slots_cap - 1;
    for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
        uint32_t s = lb->slots[i];
        if (s == 0) {
            tally_lb_group *g = &lb->groups[*n_groups];
            g->key = key;
            g->key_len = (uint32_t)len;
            g->n_points = 0;
            g->hash = h;
            g->checked = 0;
            lb->slots[i] = (uint32_t)++*n_groups;
            return (uint32_t)*n_groups - 1;
        }
        const tally_lb_group *g = &lb->groups[s - 1];
        if (g->hash == h && g->key_len == len && memcmp(g->key, key, len) == 0)
            return s - 1;
    }
}

/* ------------------------------------------------------------------------ */
/* The parse                                                                 */
/* ------------------------------------------------------------------------ */

typedef struct top_fields {
    int run_id, run_uuid, metrics, params, tags; /* token indexes, -1 when absent */
} top_fields;

static const char *const kind_names[3] = {"metrics", "params", "tags"};

static int run_id_error(tally_logbatch *lb, const tally_lb_parsed *p);

static int element_is_object(const jsmntok_t *t) { return t->type == JSMN_OBJECT; }

static int parse_json(tally_logbatch *lb, const char *js, size_t len, int depth);

/* Every decoded string and NUL-terminated copy fits in 2 x len + small:
 * escapes only shrink, and each copy adds one NUL per token. */
int tally__lb_begin(tally_logbatch *lb, size_t len)
{
    lb->run_id = NULL;
    lb->run_id_len = 0;
    lb->n_metrics = lb->n_series = lb->n_params = lb->n_tags = 0;
    lb->message[0] = 0;
    size_t need = 2 * len + 64;
    if (lb->strs_cap < need) {
        free(lb->strs);
        lb->strs = malloc(need);
        lb->strs_cap = lb->strs ? need : 0;
        if (!lb->strs)
            return TALLY_ENOMEM;
    }
    lb->strs_len = 0;
    return 0;
}

int tally_logbatch_parse(tally_logbatch *lb, const char *body, size_t len)
{
    int rc = tally__logbatch_parse_fast(lb, body, len);
    if (rc != TALLY_LB_DECLINED)
        return rc;
    return tally__logbatch_parse_general(lb, body, len);
}

int tally__logbatch_parse_general(tally_logbatch *lb, const char *body, size_t len)
{
    if (tally__lb_begin(lb, len) != 0)
        return TALLY_ENOMEM;
    return parse_json(lb, body, len, 0);
}

static int parse_json(tally_logbatch *lb, const char *js, size_t len, int depth)
{
    int n = tokenize(lb, js, len);
    if (n < 0)
        return n == -2 ? -1 : n;
    const jsmntok_t *t = lb->toks;
    if (n > 0 && t[0].type == JSMN_STRING && depth == 0) {
        /* A JSON string holding JSON is decoded twice (§1.2). */
        size_t sl = (size_t)(t[0].end - t[0].start);
        if (lb->decoded_cap < sl + 1) {
            free(lb->decoded);
            lb->decoded = malloc(sl + 1);
            lb->decoded_cap = lb->decoded ? sl + 1 : 0;
            if (!lb->decoded)
                return TALLY_ENOMEM;
        }
        long m = unescape(js + t[0].start, sl, lb->decoded);
        if (m < 0)
            return errorf(lb, "Malformed request: the body is not valid JSON");
        lb->decoded[m] = 0;
        return parse_json(lb, lb->decoded, (size_t)m, 1);
    }
    if (n > 0 && t[0].type != JSMN_OBJECT)
        return errorf(lb, "Malformed request: the JSON body must be an object");

    /* Top-level members; the last of a repeated name wins. */
    top_fields f = {-1, -1, -1, -1, -1};
    for (int i = 1; i < n;) {
        const jsmntok_t *k = &t[i];
        int v = i + 1;
        if (TOK_EQ(js, k, "run_id") || TOK_EQ(js, k, "runId"))
            f.run_id = v;
        else if (TOK_EQ(js, k, "run_uuid") || TOK_EQ(js, k, "runUuid"))
            f.run_uuid = v;
        else if (TOK_EQ(js, k, "metrics"))
            f.metrics = v;
        else if (TOK_EQ(js, k, "params"))
            f.params = v;
        else if (TOK_EQ(js, k, "tags"))
            f.tags = v;
        i = skip(t, n, v);
    }
    if (f.run_id >= 0 && is_null(js, &t[f.run_id]))
        f.run_id = -1;
    if (f.run_uuid >= 0 && is_null(js, &t[f.run_uuid]))
        f.run_uuid = -1;
    if (f.run_id >= 0 && t[f.run_id].type == JSMN_STRING && t[f.run_id].end == t[f.run_id].start)
        f.run_id = -1; /* "" counts as missing; fall back to run_uuid */
    if (f.run_id < 0)
        f.run_id = f.run_uuid;
    for (int *a = &f.metrics; a <= &f.tags; a++)
        if (*a >= 0 && is_null(js, &t[*a]))
            *a = -1;

    /* (2) presence and shape */
    if (f.run_id < 0)
        return missing(lb, "run_id");
    if (t[f.run_id].type != JSMN_STRING)
        return errorf(lb, "Invalid value %.*s for parameter 'run_id' supplied: Hint: Value was "
                          "of type '%s'. See the API docs for more information about request "
                          "parameters.",
                      t[f.run_id].end - t[f.run_id].start > 100 ? 100 : t[f.run_id].end - t[f.run_id].start,
                      js + t[f.run_id].start,
                      t[f.run_id].type == JSMN_PRIMITIVE ? "number" : "object");
    if (t[f.run_id].end == t[f.run_id].start)
        return missing(lb, "run_id");
    int arrays[3] = {f.metrics, f.params, f.tags};
    size_t counts[3] = {0, 0, 0};
    for (int a = 0; a < 3; a++) {
        int ai = arrays[a];
        if (ai < 0)
            continue;
        if (t[ai].type != JSMN_ARRAY)
            return errorf(lb, "Invalid value for parameter '%s' supplied: Hint: Value was not a "
                              "list. See the API docs for more information about request "
                              "parameters.",
                          kind_names[a]);
        counts[a] = (size_t)t[ai].size;
    }

    size_t n_metrics = counts[0], n_kv = counts[1] + counts[2];
    if (TALLY_LB_GROW(lb, metrics, metrics_cap, n_metrics + 1) != 0 ||
        TALLY_LB_GROW(lb, kv_toks, kv_toks_cap, 2 * n_kv + 2) != 0 ||
        TALLY_LB_GROW(lb, kvs, kvs_cap, n_kv + 1) != 0)
        return TALLY_ENOMEM;

    char path[64];
    /* metrics: locate fields; key, value, timestamp must be present */
    if (f.metrics >= 0) {
        int e = f.metrics + 1;
        for (size_t m = 0; m < n_metrics; m++) {
            tally_lb_metric *mt = &lb->metrics[m];
            mt->tok_key = mt->tok_value = mt->tok_ts = mt->tok_step = -1;
            if (!element_is_object(&t[e]))
                return errorf(lb, "Invalid value for parameter 'metrics[%zu]' supplied: Hint: "
                                  "Value was not an object.",
                              m);
            int end = skip(t, n, e);
            for (int i = e + 1; i < end;) {
                const jsmntok_t *k = &t[i];
                int v = i + 1;
                const char *s = js + k->start;
                size_t kl = (size_t)(k->end - k->start);
                int *slot = NULL;
                if (kl == 3 && memcmp(s, "key", 3) == 0)
                    slot = &mt->tok_key;
                else if (kl == 5 && memcmp(s, "value", 5) == 0)
                    slot = &mt->tok_value;
                else if (kl == 9 && memcmp(s, "timestamp", 9) == 0)
                    slot = &mt->tok_ts;
                else if (kl == 4 && memcmp(s, "step", 4) == 0)
                    slot = &mt->tok_step;
                else if (memchr(s, '\\', kl)) {
                    if (TOK_EQ(js, k, "key"))
                        slot = &mt->tok_key;
                    else if (TOK_EQ(js, k, "value"))
                        slot = &mt->tok_value;
                    else if (TOK_EQ(js, k, "timestamp"))
                        slot = &mt->tok_ts;
                    else if (TOK_EQ(js, k, "step"))
                        slot = &mt->tok_step;
                }
                if (slot)
                    *slot = is_null(js, &t[v]) ? -1 : v;
                i = skip(t, n, v);
            }
            /* MLflow's _assert_required: absent, null or "" is missing. */
            int req[3] = {mt->tok_key, mt->tok_value, mt->tok_ts};
            static const char *const req_names[3] = {"key", "value", "timestamp"};
            for (int r = 0; r < 3; r++) {
                if (req[r] < 0 || (t[req[r]].type == JSMN_STRING && t[req[r]].end == t[req[r]].start)) {
                    snprintf(path, sizeof path, "metrics[%zu].%s", m, req_names[r]);
                    return missing(lb, path);
                }
            }
            e = end;
        }
    }
    /* params then tags: locate key and value; key must be present */
    size_t kv = 0;
    for (int a = 1; a < 3; a++) {
        if (arrays[a] < 0)
            continue;
        int e = arrays[a] + 1;
        for (size_t m = 0; m < counts[a]; m++, kv++) {
            int *pair = &lb->kv_toks[2 * kv];
            pair[0] = pair[1] = -1;
            if (!element_is_object(&t[e]))
                return errorf(lb, "Invalid value for parameter '%s[%zu]' supplied: Hint: Value "
                                  "was not an object.",
                              kind_names[a], m);
            int end = skip(t, n, e);
            for (int i = e + 1; i < end;) {
                int v = i + 1;
                if (TOK_EQ(js, &t[i], "key"))
                    pair[0] = is_null(js, &t[v]) ? -1 : v;
                else if (TOK_EQ(js, &t[i], "value"))
                    pair[1] = is_null(js, &t[v]) ? -1 : v;
                i = skip(t, n, v);
            }
            if (pair[0] < 0 || (t[pair[0]].type == JSMN_STRING && t[pair[0]].end == t[pair[0]].start)) {
                snprintf(path, sizeof path, "%s[%zu].key", kind_names[a], m);
                return missing(lb, path);
            }
            e = end;
        }
    }

    /* (3) types; metrics grouped by key on the way */
    if (tally__lb_groups_reset(lb, n_metrics) != 0)
        return TALLY_ENOMEM;
    size_t n_groups = 0;
    for (size_t m = 0; m < n_metrics; m++) {
        tally_lb_metric *mt = &lb->metrics[m];
        const jsmntok_t *k = &t[mt->tok_key];
        const char *ks;
        size_t kl;
        if (k->type != JSMN_STRING || tok_string(lb, js, k, &ks, &kl) != 0)
            return errorf(lb, "Invalid value %.*s for parameter 'metrics[%zu].key' supplied: "
                              "Hint: Value was of type '%s'.",
                          k->end - k->start > 100 ? 100 : k->end - k->start, js + k->start, m,
                          k->type == JSMN_PRIMITIVE ? "number" : "object");
        mt->group = tally__lb_group_of(lb, &n_groups, ks, kl);
        lb->groups[mt->group].n_points++;
        if (conv_double(js, &t[mt->tok_value], &mt->value) != 1)
            return errorf(lb, "Invalid value %.*s for parameter 'metrics[%zu].value' supplied: "
                              "Please specify value as a valid double (64-bit floating point)",
                          t[mt->tok_value].end - t[mt->tok_value].start > 100
                              ? 100 : t[mt->tok_value].end - t[mt->tok_value].start,
                          js + t[mt->tok_value].start, m);
        if (conv_int64(js, &t[mt->tok_ts], &mt->timestamp_ms) != 1)
            return errorf(lb, "Invalid value %.*s for parameter 'metrics[%zu].timestamp' "
                              "supplied: metric timestamp must be a nonnegative long (64-bit "
                              "integer) ",
                          t[mt->tok_ts].end - t[mt->tok_ts].start > 100
                              ? 100 : t[mt->tok_ts].end - t[mt->tok_ts].start,
                          js + t[mt->tok_ts].start, m);
        mt->step = 0;
        if (mt->tok_step >= 0 && conv_int64(js, &t[mt->tok_step], &mt->step) == -1)
            return errorf(lb, "Invalid value %.*s for parameter 'metrics[%zu].step' supplied: "
                              "metric step must be a valid long (64-bit integer)",
                          t[mt->tok_step].end - t[mt->tok_step].start > 100
                              ? 100 : t[mt->tok_step].end - t[mt->tok_step].start,
                          js + t[mt->tok_step].start, m);
    }
    for (size_t i = 0; i < n_kv; i++) {
        int a = i < counts[1] ? 1 : 2;
        size_t idx = a == 1 ? i : i - counts[1];
        int *pair = &lb->kv_toks[2 * i];
        const char *ks, *vs = "";
        size_t kl, vl = 0;
        if (t[pair[0]].type != JSMN_STRING || tok_string(lb, js, &t[pair[0]], &ks, &kl) != 0)
            return errorf(lb, "Invalid value for parameter '%s[%zu].key' supplied: Hint: Value "
                              "was not a string.",
                          kind_names[a], idx);
        if (pair[1] >= 0 &&
            (t[pair[1]].type != JSMN_STRING || tok_string(lb, js, &t[pair[1]], &vs, &vl) != 0))
            return errorf(lb, "Invalid value for parameter '%s[%zu].value' supplied: Hint: "
                              "Value was not a string.",
                          kind_names[a], idx);
        /* Keep the decoded spans in the pair slots for the checks below. */
        lb->kvs[i].key = ks;
        lb->kvs[i].value = vs;
        pair[0] = (int)kl;
        pair[1] = (int)vl;
    }

    /* (4) onwards: shared with the fast parser */
    tally_lb_parsed parsed = {
        .raw_run_id = js + t[f.run_id].start,
        .raw_run_id_len = (size_t)(t[f.run_id].end - t[f.run_id].start),
        .n_metrics = n_metrics,
        .n_params = counts[1],
        .n_tags = counts[2],
        .n_groups = n_groups,
    };
    if (tok_string(lb, js, &t[f.run_id], &parsed.run_id, &parsed.run_id_len) != 0)
        return run_id_error(lb, &parsed);
    return tally__lb_finish(lb, &parsed);
}

static int run_id_error(tally_logbatch *lb, const tally_lb_parsed *p)
{
    return errorf(lb, "Invalid value \"%.*s\" for parameter 'run_id' supplied.",
                  p->raw_run_id_len > 100 ? 100 : (int)p->raw_run_id_len, p->raw_run_id);
}

int tally__lb_finish(tally_logbatch *lb, const tally_lb_parsed *p)
{
    size_t n_metrics = p->n_metrics, n_kv = p->n_params + p->n_tags, n_groups = p->n_groups;
    size_t counts[3] = {n_metrics, p->n_params, p->n_tags};
    char path[64];

    /* (4) run id format */
    if (!run_id_ok(p->run_id, p->run_id_len))
        return run_id_error(lb, p);
    lb->run_id = str_copy(lb, p->run_id, p->run_id_len);
    lb->run_id_len = p->run_id_len;

    /* (5) elements: metrics (key rule once per distinct key, in first-seen
     * order, which is also index order), then params, then tags */
    for (size_t m = 0; m < n_metrics; m++) {
        tally_lb_metric *mt = &lb->metrics[m];
        tally_lb_group *g = &lb->groups[mt->group];
        if (!g->checked) {
            snprintf(path, sizeof path, "metrics[%zu].key", m);
            if (tally__key_check(g->key, g->key_len, "Metric", path, lb->message,
                                 sizeof lb->message) != 0)
                return -1;
            g->checked = 1;
        }
        if (mt->timestamp_ms < 0)
            return errorf(lb, "Invalid value %lld for parameter 'metrics[%zu].timestamp' "
                              "supplied: metric timestamp must be a nonnegative long (64-bit "
                              "integer) ",
                          (long long)mt->timestamp_ms, m);
    }
    for (size_t i = 0; i < n_kv; i++) {
        int a = i < counts[1] ? 1 : 2;
        size_t idx = a == 1 ? i : i - counts[1];
        snprintf(path, sizeof path, "%s[%zu].key", kind_names[a], idx);
        if (tally__key_check(lb->kvs[i].key, (size_t)lb->kv_toks[2 * i], a == 1 ? "Param" : "Tag",
                             path, lb->message, sizeof lb->message) != 0)
            return -1;
    }

    /* (6) counts */
    if (counts[0] > TALLY_LB_MAX_METRICS)
        return errorf(lb, "A batch logging request can contain at most %d metrics. Got %zu "
                          "metrics. Please split up metrics across multiple requests and try "
                          "again.",
                      TALLY_LB_MAX_METRICS, counts[0]);
    if (counts[1] > TALLY_LB_MAX_PARAMS)
        return errorf(lb, "A batch logging request can contain at most %d params. Got %zu "
                          "params. Please split up params across multiple requests and try "
                          "again.",
                      TALLY_LB_MAX_PARAMS, counts[1]);
    if (counts[2] > TALLY_LB_MAX_TAGS)
        return errorf(lb, "A batch logging request can contain at most %d tags. Got %zu tags. "
                          "Please split up tags across multiple requests and try again.",
                      TALLY_LB_MAX_TAGS, counts[2]);
    if (counts[0] + counts[1] + counts[2] > TALLY_LB_MAX_TOTAL)
        return errorf(lb, "A batch logging request can contain at most %d metrics, params, and "
                          "tags in total. Received %zu total metrics, params, and tags. Please "
                          "split up metrics, params, and tags across multiple requests and try "
                          "again.",
                      TALLY_LB_MAX_TOTAL, counts[0] + counts[1] + counts[2]);

    /* (7) duplicate param keys (at most 100: quadratic is fine) */
    for (size_t i = 0; i < counts[1]; i++)
        for (size_t j = 0; j < i; j++)
            if (lb->kv_toks[2 * i] == lb->kv_toks[2 * j] &&
                memcmp(lb->kvs[i].key, lb->kvs[j].key, (size_t)lb->kv_toks[2 * i]) == 0)
                return errorf(lb, "Duplicate parameter keys have been submitted: ['%.*s']. "
                                  "Please ensure the request contains only one param value per "
                                  "param key.",
                              lb->kv_toks[2 * i] > 250 ? 250 : lb->kv_toks[2 * i], lb->kvs[i].key);

    /* Result: NUL-terminated params and tags for the store... */
    for (size_t i = 0; i < n_kv; i++) {
        const char *k = lb->kvs[i].key, *v = lb->kvs[i].value;
        lb->kvs[i].key = str_copy(lb, k, (size_t)lb->kv_toks[2 * i]);
        lb->kvs[i].value = str_copy(lb, v, (size_t)lb->kv_toks[2 * i + 1]);
    }
    lb->params = lb->kvs;
    lb->n_params = counts[1];
    lb->tags = lb->kvs + counts[1];
    lb->n_tags = counts[2];

    /* ...and the metrics as one series batch per key, columns grouped. */
    if (TALLY_LB_GROW(lb, series, series_cap, n_groups + 1) != 0)
        return TALLY_ENOMEM;
    if (lb->cols_cap < n_metrics + 1) {
        size_t c = n_metrics + 1;
        int64_t *s = realloc(lb->steps, c * sizeof *s);
        if (s)
            lb->steps = s;
        int64_t *ts = realloc(lb->timestamps, c * sizeof *ts);
        if (ts)
            lb->timestamps = ts;
        double *v = realloc(lb->values, c * sizeof *v);
        if (v)
            lb->values = v;
        if (!s || !ts || !v)
            return TALLY_ENOMEM;
        lb->cols_cap = c;
    }
    size_t off = 0;
    for (size_t g = 0; g < n_groups; g++) {
        tally_series_batch *b = &lb->series[g];
        b->run_id = lb->run_id;
        b->run_id_len = lb->run_id_len;
        b->key = lb->groups[g].key;
        b->key_len = lb->groups[g].key_len;
        b->steps = lb->steps + off;
        b->timestamps_ms = lb->timestamps + off;
        b->values = lb->values + off;
        b->n_points = 0;
        off += lb->groups[g].n_points;
    }
    for (size_t m = 0; m < n_metrics; m++) {
        const tally_lb_metric *mt = &lb->metrics[m];
        tally_series_batch *b = &lb->series[mt->group];
        size_t at = (size_t)(b->steps - lb->steps) + b->n_points++;
        lb->steps[at] = mt->step;
        lb->timestamps[at] = mt->timestamp_ms;
        lb->values[at] = mt->value;
    }
    lb->n_series = n_groups;
    lb->n_metrics = n_metrics;
    return 0;
}
