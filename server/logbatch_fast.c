/*
 * logbatch_fast.c — one pass over a log-batch body in the shape clients
 * send, straight into the columns (see logbatch_internal.h for how it
 * shares the work with the general parser in logbatch.c).
 *
 * Accepted shape, whitespace anywhere JSON allows it:
 *   {"run_id": S, "run_uuid": S, "metrics": [M, ...], "params": [KV, ...],
 *    "tags": [KV, ...]}
 * members in any order, each at most once, run_id required and not empty
 * (so it is the id: run_uuid, which the Python client sends too, is then
 * ignored, as by the general parser);
 *   M  = {"key": S, "value": N, "timestamp": I, "step": I}, step optional,
 *        key not empty;
 *   KV = {"key": S, "value": S}, value optional, key not empty;
 *   S  = a string with no escape and no raw control character (bytes >= 0x80
 *        pass, as in the general parser: their UTF-8 is checked where used);
 *   N  = a JSON number whose double is finite; I = a JSON integer of at
 *        most 18 digits (no fraction, no exponent).
 * At most TALLY_LB_MAX_METRICS metrics, TALLY_LB_MAX_PARAMS params,
 * TALLY_LB_MAX_TAGS tags and TALLY_LB_MAX_TOTAL in all. Anything else —
 * a null, a string where a number goes, an escape, an unknown or repeated
 * field, a double-encoded body, a syntax error — is declined before any
 * error is reported, so the general parser decides it. Every accepted body
 * is one the general parser accepts up to its check (3), with the same
 * values: what follows (tally__lb_finish) is common.
 *
 * Cost: about one comparison per byte for strings, numbers read once while
 * their grammar is checked; no tokens, no second pass.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "json_num_read.h"
#include "logbatch_internal.h"

typedef struct cursor {
    const char *p, *end;
} cursor;

static inline int is_ws(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }

static inline void skip_ws(cursor *c)
{
    /* Every whitespace byte is <= ' ': one test passes the usual case. */
    while (c->p < c->end && (unsigned char)*c->p <= ' ' && is_ws(*c->p))
        c->p++;
}

/* Consumes ch (after whitespace) and the whitespace after it. */
static inline int eat(cursor *c, char ch)
{
    skip_ws(c);
    if (c->p >= c->end || *c->p != ch)
        return -1;
    c->p++;
    skip_ws(c);
    return 0;
}

/* After a member or element: 0 when a ',' follows (consumed), 1 when the
 * closer does (consumed), -1 otherwise. */
static inline int next_or_close(cursor *c, char closer)
{
    skip_ws(c);
    if (c->p < c->end) {
        char ch = *c->p++;
        if (ch == ',') {
            skip_ws(c);
            return 0;
        }
        if (ch == closer)
            return 1;
    }
    return -1;
}

/* A string without escapes or control characters: its bytes in [*s, *s + *n). */
static inline int string(cursor *c, const char **s, size_t *n)
{
    const char *p = c->p;
    if (p >= c->end || *p != '"')
        return -1;
    const char *q = ++p;
    for (;;) {
        if (q >= c->end)
            return -1;
        unsigned char ch = (unsigned char)*q;
        if (ch == '"')
            break;
        if (ch == '\\' || ch < 0x20)
            return -1;
        q++;
    }
    *s = p;
    *n = (size_t)(q - p);
    c->p = q + 1;
    return 0;
}

static inline int digit(const char *p, const char *end)
{
    return p < end && (unsigned)(*p - '0') < 10;
}

/* A JSON integer of at most 18 digits (so it fits an int64 unchecked). */
static inline int integer(cursor *c, int64_t *out)
{
    const char *p = c->p, *end = c->end;
    int neg = p < end && *p == '-';
    p += neg;
    if (!digit(p, end))
        return -1;
    const char *d0 = p;
    uint64_t v = 0;
    if (*p == '0') {
        p++;
    } else {
        while (digit(p, end))
            v = v * 10 + (unsigned)(*p++ - '0');
        if (p - d0 > 18)
            return -1;
    }
    if (p < end && (*p == '.' || *p == 'e' || *p == 'E' || digit(p, end)))
        return -1; /* a fraction or exponent, or "01": the general parser's */
    *out = neg ? -(int64_t)v : (int64_t)v;
    c->p = p;
    return 0;
}

/* A JSON number (RFC 8259 grammar) whose double is finite. */
static inline int number(cursor *c, double *out)
{
    size_t n = tally_json_number_read(c->p, c->end, out);
    if (n == 0 || !isfinite(*out))
        return -1;
    c->p += n;
    return 0;
}

/* Consumes the member name lit (given with its quotes) and the ':' after
 * it when they come next. A name the fast parser knows never holds an
 * escape, so any other spelling is a name it declines. */
static inline int name(cursor *c, const char *lit, size_t n)
{
    if ((size_t)(c->end - c->p) < n || memcmp(c->p, lit, n) != 0)
        return 0;
    cursor after = {c->p + n, c->end};
    if (eat(&after, ':') != 0)
        return 0; /* the cursor stays: no other name can match here either */
    *c = after;
    return 1;
}
#define NAME(c, lit) name((c), "\"" lit "\"", sizeof(lit) + 1)

/* After a member's value: -1 when it was bad or its name came before (seen
 * holds one bit per name), else the name recorded and next_or_close's
 * answer for the object. */
static inline int member_end(cursor *c, unsigned *seen, unsigned name_bit, int bad)
{
    if (bad || (*seen & name_bit))
        return -1;
    *seen |= name_bit;
    return next_or_close(c, '}');
}

enum { F_KEY = 1, F_VALUE = 2, F_TS = 4, F_STEP = 8 };

/* One element of "metrics", the cursor just past its '{'. */
static int metric(cursor *c, tally_lb_metric *mt, const char **key, size_t *key_len)
{
    unsigned seen = 0;
    mt->step = 0;
    for (;;) {
        unsigned f;
        int bad;
        if (NAME(c, "key")) {
            f = F_KEY;
            bad = string(c, key, key_len) != 0 || *key_len == 0;
        } else if (NAME(c, "value")) {
            f = F_VALUE;
            bad = number(c, &mt->value) != 0;
        } else if (NAME(c, "timestamp")) {
            f = F_TS;
            bad = integer(c, &mt->timestamp_ms) != 0;
        } else if (NAME(c, "step")) {
            f = F_STEP;
            bad = integer(c, &mt->step) != 0;
        } else {
            return -1;
        }
        int r = member_end(c, &seen, f, bad);
        if (r < 0)
            return -1;
        if (r == 1)
            break;
    }
    return (seen & (F_KEY | F_VALUE | F_TS)) == (F_KEY | F_VALUE | F_TS) ? 0 : -1;
}

/* Consumes '[' and, for an empty array, its ']': 1 when elements follow, 0
 * when the array was empty, -1 when none starts here. */
static inline int array_open(cursor *c)
{
    if (eat(c, '[') != 0)
        return -1;
    if (c->p < c->end && *c->p == ']') {
        c->p++;
        return 0;
    }
    return 1;
}

static int metrics(tally_logbatch *lb, cursor *c, size_t *n_metrics, size_t *n_groups)
{
    int open = array_open(c);
    if (open <= 0)
        return open;
    for (size_t m = 0;; m++) {
        if (m >= TALLY_LB_MAX_METRICS || eat(c, '{') != 0)
            return -1;
        tally_lb_metric *mt = &lb->metrics[m];
        const char *key = NULL;
        size_t key_len = 0;
        if (metric(c, mt, &key, &key_len) != 0)
            return -1;
        mt->group = tally__lb_group_of(lb, n_groups, key, key_len);
        lb->groups[mt->group].n_points++;
        *n_metrics = m + 1;
        int r = next_or_close(c, ']');
        if (r < 0)
            return -1;
        if (r == 1)
            return 0;
    }
}

/* "params" or "tags": up to max pairs into lb->kvs / lb->kv_toks from slot
 * first on. */
static int pairs(tally_logbatch *lb, cursor *c, size_t first, size_t max, size_t *count)
{
    int open = array_open(c);
    if (open <= 0)
        return open;
    for (size_t i = 0;; i++) {
        if (i >= max || eat(c, '{') != 0)
            return -1;
        const char *k = NULL, *v = "";
        size_t kl = 0, vl = 0;
        unsigned seen = 0;
        for (;;) {
            unsigned f = NAME(c, "key") ? F_KEY : NAME(c, "value") ? F_VALUE : 0;
            int bad = !f || string(c, f == F_KEY ? &k : &v, f == F_KEY ? &kl : &vl) != 0;
            int r = member_end(c, &seen, f, bad);
            if (r < 0)
                return -1;
            if (r == 1)
                break;
        }
        if (!(seen & F_KEY) || kl == 0)
            return -1;
        lb->kvs[first + i].key = k;
        lb->kvs[first + i].value = v;
        lb->kv_toks[2 * (first + i)] = (int)kl;
        lb->kv_toks[2 * (first + i) + 1] = (int)vl;
        *count = i + 1;
        int r = next_or_close(c, ']');
        if (r < 0)
            return -1;
        if (r == 1)
            return 0;
    }
}

/* The body's members; -1 declines. Params land in kvs[0..), tags in
 * kvs[TALLY_LB_MAX_PARAMS..) until the end moves them next to the params. */
static int members(tally_logbatch *lb, cursor *c, tally_lb_parsed *out)
{
    enum { M_RUN = 1, M_METRICS = 2, M_PARAMS = 4, M_TAGS = 8, M_UUID = 16 };
    unsigned seen = 0;
    if (eat(c, '{') != 0)
        return -1;
    for (;;) {
        unsigned m;
        int bad;
        if (NAME(c, "run_id")) {
            m = M_RUN;
            bad = string(c, &out->run_id, &out->run_id_len) != 0 || out->run_id_len == 0;
        } else if (NAME(c, "run_uuid")) {
            /* The Python client sends both ids; run_id, not empty, wins. */
            const char *ignored;
            size_t ignored_len;
            m = M_UUID;
            bad = string(c, &ignored, &ignored_len) != 0;
        } else if (NAME(c, "metrics")) {
            m = M_METRICS;
            bad = metrics(lb, c, &out->n_metrics, &out->n_groups) != 0;
        } else if (NAME(c, "params")) {
            m = M_PARAMS;
            bad = pairs(lb, c, 0, TALLY_LB_MAX_PARAMS, &out->n_params) != 0;
        } else if (NAME(c, "tags")) {
            m = M_TAGS;
            bad = pairs(lb, c, TALLY_LB_MAX_PARAMS, TALLY_LB_MAX_TAGS, &out->n_tags) != 0;
        } else {
            return -1;
        }
        int r = member_end(c, &seen, m, bad);
        if (r < 0)
            return -1;
        if (r == 1)
            break;
    }
    skip_ws(c);
    if (c->p != c->end || !(seen & M_RUN))
        return -1;
    return out->n_metrics + out->n_params + out->n_tags <= TALLY_LB_MAX_TOTAL ? 0 : -1;
}

int tally__logbatch_parse_fast(tally_logbatch *lb, const char *body, size_t len)
{
    size_t n_kv = TALLY_LB_MAX_PARAMS + TALLY_LB_MAX_TAGS;
    if (tally__lb_begin(lb, len) != 0 ||
        TALLY_LB_GROW(lb, metrics, metrics_cap, TALLY_LB_MAX_METRICS + 1) != 0 ||
        TALLY_LB_GROW(lb, kvs, kvs_cap, n_kv + 1) != 0 ||
        TALLY_LB_GROW(lb, kv_toks, kv_toks_cap, 2 * n_kv + 2) != 0 ||
        tally__lb_groups_reset(lb, TALLY_LB_MAX_METRICS) != 0)
        return TALLY_ENOMEM;
    cursor c = {body, body + len};
    tally_lb_parsed p = {0};
    if (members(lb, &c, &p) != 0)
        return TALLY_LB_DECLINED;
    if (p.n_tags && p.n_params < TALLY_LB_MAX_PARAMS) {
        memmove(lb->kvs + p.n_params, lb->kvs + TALLY_LB_MAX_PARAMS, p.n_tags * sizeof *lb->kvs);
        memmove(lb->kv_toks + 2 * p.n_params, lb->kv_toks + 2 * TALLY_LB_MAX_PARAMS,
                2 * p.n_tags * sizeof *lb->kv_toks);
    }
    p.raw_run_id = p.run_id;
    p.raw_run_id_len = p.run_id_len;
    return tally__lb_finish(lb, &p);
}
