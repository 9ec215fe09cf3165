/*
 * logged_model_search.c — logged-models/search filters and ordering
 * (logged_model_search.h): a hand-written lexer and parser over a byte
 * range (never reads past len), evaluation with the search library's LIKE.
 */
#include "logged_model_search.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "search.h"

#define MAX_CLAUSES 64
#define MAX_LIST 1000

typedef struct lexer {
    const char *s;
    size_t len, pos;
    char *err;
    size_t cap;
} lexer;

static int fail(lexer *lx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(lexer *lx, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char msg[256];
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(lx->err, lx->cap, "Invalid filter string: %s (at character %zu)", msg, lx->pos);
    return -1;
}

static void skip_ws(lexer *lx)
{
    while (lx->pos < lx->len && isspace((unsigned char)lx->s[lx->pos]))
        lx->pos++;
}

static int at_end(lexer *lx)
{
    skip_ws(lx);
    return lx->pos >= lx->len;
}

/* Case-insensitive keyword followed by a non-word character. */
static int keyword(lexer *lx, const char *kw)
{
    skip_ws(lx);
    size_t n = strlen(kw);
    if (lx->len - lx->pos < n || strncasecmp(lx->s + lx->pos, kw, n) != 0)
        return 0;
    if (lx->pos + n < lx->len) {
        unsigned char c = (unsigned char)lx->s[lx->pos + n];
        if (isalnum(c) || c == '_')
            return 0;
    }
    lx->pos += n;
    return 1;
}

static char *dup_n(const char *s, size_t n)
{
    if (memchr(s, 0, n))
        return NULL;
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = 0;
    }
    return d;
}

/* A quoted run delimited by q: returns a copy of its contents. */
static char *quoted(lexer *lx, char q)
{
    size_t start = ++lx->pos;
    while (lx->pos < lx->len && lx->s[lx->pos] != q)
        lx->pos++;
    if (lx->pos >= lx->len) {
        fail(lx, "unterminated %c quote", q);
        return NULL;
    }
    char *d = dup_n(lx->s + start, lx->pos - start);
    lx->pos++;
    if (!d)
        fail(lx, "a quoted string holds a NUL byte or memory ran out");
    return d;
}

static int bare_char(unsigned char c)
{
    return isalnum(c) || c == '_' || c == '.' || c == ':' || c == '/' || c == '-';
}

/* ident: entity prefix and key. */
static int parse_ident(lexer *lx, tally_lm_clause *c, char **attr_name)
{
    skip_ws(lx);
    *attr_name = NULL;
    if (lx->pos >= lx->len)
        return fail(lx, "expected an identifier");
    char first = lx->s[lx->pos];
    if (first == '`' || first == '"') {
        *attr_name = quoted(lx, first);
        c->entity = TALLY_LM_ATTR;
        return *attr_name ? 0 : -1;
    }
    size_t start = lx->pos;
    while (lx->pos < lx->len && bare_char((unsigned char)lx->s[lx->pos]) && lx->s[lx->pos] != '.')
        lx->pos++;
    size_t n = lx->pos - start;
    if (n == 0)
        return fail(lx, "expected an identifier");
    if (lx->pos < lx->len && lx->s[lx->pos] == '.') {
        static const struct {
            const char *name;
            int entity; /* -1 metrics */
        } prefixes[] = {{"attributes", TALLY_LM_ATTR}, {"attribute", TALLY_LM_ATTR},
                        {"attr", TALLY_LM_ATTR},       {"params", TALLY_LM_PARAM},
                        {"param", TALLY_LM_PARAM},     {"tags", TALLY_LM_TAG},
                        {"tag", TALLY_LM_TAG},         {"metrics", -1},
                        {"metric", -1}};
        int entity = -2;
        for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++)
            if (strlen(prefixes[i].name) == n && strncasecmp(lx->s + start, prefixes[i].name, n) == 0)
                entity = prefixes[i].entity;
        if (entity == -2)
            return fail(lx, "unknown entity '%.*s'", (int)(n > 50 ? 50 : n), lx->s + start);
        if (entity == -1)
            return fail(lx, "metrics are not linked to logged models in Tally, so metric filters "
                            "are not supported");
        lx->pos++; /* '.' */
        c->entity = (tally_lm_entity)entity;
        char *key;
        if (lx->pos < lx->len && (lx->s[lx->pos] == '`' || lx->s[lx->pos] == '"')) {
            key = quoted(lx, lx->s[lx->pos]);
        } else {
            size_t ks = lx->pos;
            while (lx->pos < lx->len && bare_char((unsigned char)lx->s[lx->pos]))
                lx->pos++;
            if (lx->pos == ks)
                return fail(lx, "expected a key after the entity");
            key = dup_n(lx->s + ks, lx->pos - ks);
        }
        if (!key)
            return -1;
        if (c->entity == TALLY_LM_ATTR)
            *attr_name = key;
        else
            c->key = key;
        return 0;
    }
    c->entity = TALLY_LM_ATTR;
    *attr_name = dup_n(lx->s + start, n);
    return *attr_name ? 0 : fail(lx, "out of memory");
}

static const struct {
    const char *name;
    tally_lm_attr attr;
} attr_names[] = {
    {"name", TALLY_LM_A_NAME},
    {"model_id", TALLY_LM_A_MODEL_ID},
    {"model_type", TALLY_LM_A_MODEL_TYPE},
    {"source_run_id", TALLY_LM_A_SOURCE_RUN_ID},
    {"status", TALLY_LM_A_STATUS},
    {"creation_timestamp", TALLY_LM_A_CREATION},
    {"creation_time", TALLY_LM_A_CREATION},
    {"creation_timestamp_ms", TALLY_LM_A_CREATION},
    {"last_updated_timestamp", TALLY_LM_A_LAST_UPDATED},
    {"last_updated_time", TALLY_LM_A_LAST_UPDATED},
    {"last_updated_timestamp_ms", TALLY_LM_A_LAST_UPDATED},
};

static tally_lm_attr attr_of(const char *name)
{
    for (size_t i = 0; i < sizeof attr_names / sizeof attr_names[0]; i++)
        if (strcmp(name, attr_names[i].name) == 0)
            return attr_names[i].attr;
    return TALLY_LM_A_NONE;
}

static int is_num_attr(tally_lm_attr a)
{
    return a == TALLY_LM_A_CREATION || a == TALLY_LM_A_LAST_UPDATED ||
           a == TALLY_LM_A_EXPERIMENT_ID;
}

static int parse_op(lexer *lx, tally_lm_op *op)
{
    skip_ws(lx);
    const char *p = lx->s + lx->pos;
    size_t left = lx->len - lx->pos;
    static const struct {
        const char *sym;
        tally_lm_op op;
    } syms[] = {{"!=", TALLY_LM_NE}, {"<>", TALLY_LM_NE}, {"<=", TALLY_LM_LE}, {">=", TALLY_LM_GE},
                {"==", TALLY_LM_EQ}, {"=", TALLY_LM_EQ},  {"<", TALLY_LM_LT},  {">", TALLY_LM_GT}};
    for (size_t i = 0; i < sizeof syms / sizeof syms[0]; i++) {
        size_t n = strlen(syms[i].sym);
        if (left >= n && memcmp(p, syms[i].sym, n) == 0) {
            lx->pos += n;
            *op = syms[i].op;
            return 0;
        }
    }
    if (keyword(lx, "LIKE")) {
        *op = TALLY_LM_LIKE;
        return 0;
    }
    if (keyword(lx, "ILIKE")) {
        *op = TALLY_LM_ILIKE;
        return 0;
    }
    if (keyword(lx, "IN")) {
        *op = TALLY_LM_IN;
        return 0;
    }
    if (keyword(lx, "NOT")) {
        if (keyword(lx, "IN")) {
            *op = TALLY_LM_NOT_IN;
            return 0;
        }
        return fail(lx, "expected IN after NOT");
    }
    return fail(lx, "expected a comparison operator");
}

static int parse_list(lexer *lx, tally_lm_clause *c)
{
    skip_ws(lx);
    if (lx->pos >= lx->len || lx->s[lx->pos] != '(')
        return fail(lx, "expected '(' after IN");
    lx->pos++;
    for (;;) {
        skip_ws(lx);
        if (lx->pos >= lx->len || (lx->s[lx->pos] != '\'' && lx->s[lx->pos] != '"'))
            return fail(lx, "IN lists hold quoted strings");
        if (c->n_list >= MAX_LIST)
            return fail(lx, "IN list longer than %d", MAX_LIST);
        char **nl = realloc(c->list, (c->n_list + 1) * sizeof *nl);
        if (!nl)
            return fail(lx, "out of memory");
        c->list = nl;
        char *v = quoted(lx, lx->s[lx->pos]);
        if (!v)
            return -1;
        c->list[c->n_list++] = v;
        skip_ws(lx);
        if (lx->pos < lx->len && lx->s[lx->pos] == ',') {
            lx->pos++;
            continue;
        }
        if (lx->pos < lx->len && lx->s[lx->pos] == ')') {
            lx->pos++;
            return 0;
        }
        return fail(lx, "expected ',' or ')' in an IN list");
    }
}

static int parse_number(lexer *lx, double *out)
{
    skip_ws(lx);
    size_t start = lx->pos;
    if (lx->pos < lx->len && (lx->s[lx->pos] == '-' || lx->s[lx->pos] == '+'))
        lx->pos++;
    while (lx->pos < lx->len &&
           (isdigit((unsigned char)lx->s[lx->pos]) || lx->s[lx->pos] == '.' ||
            lx->s[lx->pos] == 'e' || lx->s[lx->pos] == 'E' ||
            ((lx->s[lx->pos] == '-' || lx->s[lx->pos] == '+') && lx->pos > start &&
             (lx->s[lx->pos - 1] == 'e' || lx->s[lx->pos - 1] == 'E'))))
        lx->pos++;
    size_t n = lx->pos - start;
    char buf[64];
    if (n == 0 || n >= sizeof buf)
        return fail(lx, "expected a number");
    memcpy(buf, lx->s + start, n);
    buf[n] = 0;
    char *end;
    errno = 0;
    double v = strtod(buf, &end);
    if (*end || !isfinite(v) || !isdigit((unsigned char)buf[strspn(buf, "+-.")]))
        return fail(lx, "'%s' is not a number", buf);
    *out = v;
    return 0;
}

static void clause_free(tally_lm_clause *c)
{
    free(c->key);
    free(c->str);
    for (size_t i = 0; i < c->n_list; i++)
        free(c->list[i]);
    free(c->list);
}

void tally_lm_filter_free(tally_lm_filter *f)
{
    if (!f)
        return;
    for (size_t i = 0; i < f->n; i++)
        clause_free(&f->v[i]);
    free(f->v);
    f->v = NULL;
    f->n = 0;
}

static int parse_clause(lexer *lx, tally_lm_clause *c)
{
    char *attr_name = NULL;
    if (parse_ident(lx, c, &attr_name) != 0)
        return -1;
    if (c->entity == TALLY_LM_ATTR) {
        c->attr = attr_of(attr_name);
        if (c->attr == TALLY_LM_A_NONE) {
            fail(lx, "invalid attribute key '%.100s'", attr_name);
            free(attr_name);
            return -1;
        }
        free(attr_name);
    }
    if (parse_op(lx, &c->op) != 0)
        return -1;
    int numeric = c->entity == TALLY_LM_ATTR && is_num_attr(c->attr);
    if (c->op == TALLY_LM_IN || c->op == TALLY_LM_NOT_IN) {
        if (numeric)
            return fail(lx, "IN is only allowed on string fields");
        return parse_list(lx, c);
    }
    if (numeric) {
        if (c->op == TALLY_LM_LIKE || c->op == TALLY_LM_ILIKE)
            return fail(lx, "LIKE is only allowed on string fields");
        return parse_number(lx, &c->num);
    }
    if (c->op != TALLY_LM_EQ && c->op != TALLY_LM_NE && c->op != TALLY_LM_LIKE &&
        c->op != TALLY_LM_ILIKE)
        return fail(lx, "string fields only allow =, !=, LIKE, ILIKE, IN and NOT IN");
    skip_ws(lx);
    if (lx->pos >= lx->len || (lx->s[lx->pos] != '\'' && lx->s[lx->pos] != '"'))
        return fail(lx, "string values must be quoted");
    c->str = quoted(lx, lx->s[lx->pos]);
    return c->str ? 0 : -1;
}

int tally_lm_filter_parse(const char *text, size_t len, tally_lm_filter *out, char *err,
                          size_t cap)
{
    out->v = NULL;
    out->n = 0;
    lexer lx = {text ? text : "", text ? len : 0, 0, err, cap};
    if (at_end(&lx))
        return 0;
    out->v = calloc(MAX_CLAUSES, sizeof *out->v);
    if (!out->v) {
        snprintf(err, cap, "out of memory");
        return -1;
    }
    for (;;) {
        if (out->n >= MAX_CLAUSES) {
            fail(&lx, "more than %d clauses", MAX_CLAUSES);
            break;
        }
        tally_lm_clause *c = &out->v[out->n++];
        if (parse_clause(&lx, c) != 0)
            break;
        if (at_end(&lx))
            return 0;
        if (!keyword(&lx, "AND")) {
            if (keyword(&lx, "OR"))
                fail(&lx, "OR is not supported, only AND");
            else
                fail(&lx, "expected AND between clauses");
            break;
        }
    }
    tally_lm_filter_free(out);
    return -1;
}

/* ------------------------------------------------------------------------ */
/* Evaluation                                                                 */
/* ------------------------------------------------------------------------ */

static const char *kv_find(const tally_kv *v, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i].key, key) == 0)
            return v[i].value ? v[i].value : "";
    return NULL;
}

static const char *status_short(int status)
{
    const char *full = tally_logged_model_status_name(status);
    return full ? full + strlen("LOGGED_MODEL_") : "";
}

static int str_match(const tally_lm_clause *c, const char *value, int is_status, int status)
{
    if (c->op == TALLY_LM_IN || c->op == TALLY_LM_NOT_IN) {
        int hit = 0;
        for (size_t i = 0; i < c->n_list && !hit; i++)
            hit = strcmp(value, c->list[i]) == 0 ||
                  (is_status && strcmp(status_short(status), c->list[i]) == 0);
        return c->op == TALLY_LM_IN ? hit : !hit;
    }
    int hit;
    switch (c->op) {
    case TALLY_LM_EQ:
    case TALLY_LM_NE:
        hit = strcmp(value, c->str) == 0 || (is_status && strcmp(status_short(status), c->str) == 0);
        return c->op == TALLY_LM_EQ ? hit : !hit;
    case TALLY_LM_LIKE:
    case TALLY_LM_ILIKE: {
        int icase = c->op == TALLY_LM_ILIKE;
        return tally_search_like(c->str, strlen(c->str), value, strlen(value), icase) ||
               (is_status && tally_search_like(c->str, strlen(c->str), status_short(status),
                                               strlen(status_short(status)), icase));
    }
    case TALLY_LM_LT:
    case TALLY_LM_LE:
    case TALLY_LM_GT:
    case TALLY_LM_GE:
    case TALLY_LM_IN:
    case TALLY_LM_NOT_IN:
        return 0; /* not string operators here (invariant 1) */
    }
    return 0;
}

static int num_match(tally_lm_op op, double lhs, double rhs)
{
    switch (op) {
    case TALLY_LM_EQ: return lhs == rhs;
    case TALLY_LM_NE: return lhs != rhs;
    case TALLY_LM_LT: return lhs < rhs;
    case TALLY_LM_LE: return lhs <= rhs;
    case TALLY_LM_GT: return lhs > rhs;
    case TALLY_LM_GE: return lhs >= rhs;
    case TALLY_LM_LIKE:
    case TALLY_LM_ILIKE:
    case TALLY_LM_IN:
    case TALLY_LM_NOT_IN:
        return 0; /* not numeric operators (invariant 1) */
    }
    return 0;
}

static int clause_match(const tally_lm_clause *c, const tally_logged_model *m)
{
    const char *value = NULL;
    switch (c->entity) {
    case TALLY_LM_PARAM:
        value = kv_find(m->params, m->n_params, c->key);
        return value && str_match(c, value, 0, 0);
    case TALLY_LM_TAG:
        value = kv_find(m->tags, m->n_tags, c->key);
        return value && str_match(c, value, 0, 0);
    case TALLY_LM_ATTR:
        break;
    }
    switch (c->attr) {
    case TALLY_LM_A_CREATION: return num_match(c->op, (double)m->creation_timestamp_ms, c->num);
    case TALLY_LM_A_LAST_UPDATED:
        return num_match(c->op, (double)m->last_updated_timestamp_ms, c->num);
    case TALLY_LM_A_EXPERIMENT_ID: return num_match(c->op, (double)m->experiment_id, c->num);
    case TALLY_LM_A_NAME: value = m->name; break;
    case TALLY_LM_A_MODEL_ID: value = m->model_id; break;
    case TALLY_LM_A_MODEL_TYPE: value = m->model_type; break;
    case TALLY_LM_A_SOURCE_RUN_ID: value = m->source_run_id; break;
    case TALLY_LM_A_STATUS:
        value = tally_logged_model_status_name(m->status);
        return value && str_match(c, value, 1, m->status);
    case TALLY_LM_A_NONE: return 0;
    }
    return value && str_match(c, value, 0, 0); /* an unset field never matches (SQL NULL) */
}

int tally_lm_filter_match(const tally_lm_filter *f, const tally_logged_model *m)
{
    for (size_t i = 0; i < f->n; i++)
        if (!clause_match(&f->v[i], m))
            return 0;
    return 1;
}

/* ------------------------------------------------------------------------ */
/* Ordering                                                                   */
/* ------------------------------------------------------------------------ */

int tally_lm_order_field(const char *field_name, tally_lm_attr *attr, char *err, size_t cap)
{
    if (strncmp(field_name, "metrics.", 8) == 0) {
        snprintf(err, cap, "Invalid order by field name: %.100s. Metrics are not linked to logged "
                           "models in Tally.", field_name);
        return -1;
    }
    tally_lm_attr a = strcmp(field_name, "experiment_id") == 0 ? TALLY_LM_A_EXPERIMENT_ID
                                                              : attr_of(field_name);
    if (a == TALLY_LM_A_NONE) {
        snprintf(err, cap, "Invalid order by field name: %.100s", field_name);
        return -1;
    }
    *attr = a;
    return 0;
}

typedef struct sort_ctx {
    const tally_lm_order *keys;
    size_t n;
} sort_ctx;

static int cmp_str(const char *a, const char *b, int asc)
{
    if (!a || !b)
        return (a == NULL) - (b == NULL); /* missing last in both directions */
    int c = strcmp(a, b);
    return asc ? c : -c;
}

static int cmp_i64(int64_t a, int64_t b, int asc)
{
    int c = (a > b) - (a < b);
    return asc ? c : -c;
}

static int cmp_key(const tally_logged_model *x, const tally_logged_model *y, tally_lm_attr a,
                   int asc)
{
    switch (a) {
    case TALLY_LM_A_NAME: return cmp_str(x->name, y->name, asc);
    case TALLY_LM_A_MODEL_ID: return cmp_str(x->model_id, y->model_id, asc);
    case TALLY_LM_A_MODEL_TYPE: return cmp_str(x->model_type, y->model_type, asc);
    case TALLY_LM_A_SOURCE_RUN_ID: return cmp_str(x->source_run_id, y->source_run_id, asc);
    case TALLY_LM_A_STATUS: return cmp_i64(x->status, y->status, asc);
    case TALLY_LM_A_CREATION: return cmp_i64(x->creation_timestamp_ms, y->creation_timestamp_ms, asc);
    case TALLY_LM_A_LAST_UPDATED:
        return cmp_i64(x->last_updated_timestamp_ms, y->last_updated_timestamp_ms, asc);
    case TALLY_LM_A_EXPERIMENT_ID: return cmp_i64(x->experiment_id, y->experiment_id, asc);
    case TALLY_LM_A_NONE: return 0;
    }
    return 0;
}

static int cmp_models(const void *pa, const void *pb, void *pc)
{
    const tally_logged_model *x = pa, *y = pb;
    const sort_ctx *ctx = pc;
    int has_creation = 0;
    for (size_t i = 0; i < ctx->n; i++) {
        has_creation |= ctx->keys[i].attr == TALLY_LM_A_CREATION;
        int c = cmp_key(x, y, ctx->keys[i].attr, ctx->keys[i].ascending);
        if (c)
            return c;
    }
    if (!has_creation) {
        int c = cmp_i64(x->creation_timestamp_ms, y->creation_timestamp_ms, 0);
        if (c)
            return c;
    }
    return strcmp(x->model_id, y->model_id);
}

void tally_lm_sort(tally_logged_model *v, size_t n, const tally_lm_order *keys, size_t n_keys)
{
    sort_ctx ctx = {keys, n_keys};
    if (n > 1)
        qsort_r(v, n, sizeof *v, cmp_models, &ctx);
}
