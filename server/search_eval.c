/*
 * search_eval.c — running parsed filters and orders over rows: SQL LIKE,
 * MLflow's numeric rule (NaN compares as 0), the clause evaluator with
 * inner-join semantics, and the sort comparator with missing-last keys.
 *
 * LIKE is the classic two-cursor wildcard walk: on a mismatch it returns to
 * the last '%' and lets it swallow one more character. Only the last '%'
 * matters, because '%' can absorb anything the earlier ones would, so no
 * stack or memo is needed and the work is O(len(pat) * len(text)).
 *
 *   pat   a % b _ d          text  a x b y b z d
 *           ^star_p                  ^star_t (retry point, moves right)
 *
 * Invariants:
 *   (1) Characters are UTF-8 code points for '_' and for skipping: a unit
 *       is a well-formed sequence, else one byte (unit() never returns 0 nor
 *       runs past the end). Literal units compare byte-wise, ASCII letters
 *       folded under ILIKE.
 *   (2) In like(), star_t only grows and each retry advances it by one
 *       unit, so the loop runs at most (len(text) + 1) * (len(pat) + 1)
 *       times.
 *   (3) A clause on a value the row lacks is false for every operator; in
 *       sorting, a value ranks before NaN ranks before missing, whatever
 *       the direction.
 */
#include <stdlib.h>
#include <string.h>

#include "search_int.h"

/* Length of the character at s[i] (i < n), see invariant (1). */
static size_t unit(const unsigned char *s, size_t n, size_t i)
{
    unsigned char c = s[i];
    size_t need = c < 0x80                ? 1
                  : c >= 0xC2 && c <= 0xDF ? 2
                  : c >= 0xE0 && c <= 0xEF ? 3
                  : c >= 0xF0 && c <= 0xF4 ? 4
                                           : 1;
    if (need > n - i)
        return 1;
    for (size_t k = 1; k < need; k++)
        if ((s[i + k] & 0xC0) != 0x80)
            return 1;
    return need;
}

static int fold(int c)
{
    return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

int tally_search_like(const char *pat, size_t pat_len, const char *text, size_t text_len,
                      int icase)
{
    const unsigned char *p = (const unsigned char *)pat, *t = (const unsigned char *)text;
    size_t pi = 0, ti = 0, star_p = (size_t)-1, star_t = 0;
    while (ti < text_len) {
        if (pi < pat_len && p[pi] == '%') {
            while (pi < pat_len && p[pi] == '%')
                pi++;
            if (pi == pat_len)
                return 1; /* a trailing '%' takes the rest */
            star_p = pi;
            star_t = ti;
            continue;
        }
        if (pi < pat_len) {
            size_t tu = unit(t, text_len, ti);
            if (p[pi] == '_') {
                pi++;
                ti += tu;
                continue;
            }
            size_t pu = unit(p, pat_len, pi);
            if (pu == tu &&
                (pu > 1 ? memcmp(p + pi, t + ti, pu) == 0
                        : (icase ? fold(p[pi]) == fold(t[ti]) : p[pi] == t[ti]))) {
                pi += pu;
                ti += tu;
                continue;
            }
        }
        if (star_p == (size_t)-1)
            return 0;
        star_t += unit(t, text_len, star_t);
        ti = star_t;
        pi = star_p;
    }
    while (pi < pat_len && p[pi] == '%')
        pi++;
    return pi == pat_len;
}

int tally_search_cmp_num(tally_search_op op, double lhs, double rhs)
{
    if (lhs != lhs)
        lhs = 0; /* MLflow stores NaN as 0 + is_nan and filters on the 0 */
    if (rhs != rhs)
        rhs = 0;
    switch (op) {
    case TALLY_SEARCH_EQ: return lhs == rhs;
    case TALLY_SEARCH_NE: return lhs != rhs;
    case TALLY_SEARCH_GT: return lhs > rhs;
    case TALLY_SEARCH_GE: return lhs >= rhs;
    case TALLY_SEARCH_LT: return lhs < rhs;
    case TALLY_SEARCH_LE: return lhs <= rhs;
    case TALLY_SEARCH_LIKE:
    case TALLY_SEARCH_ILIKE:
    case TALLY_SEARCH_IN:
    case TALLY_SEARCH_NOT_IN:
    case TALLY_SEARCH_N_OPS:
        break;
    }
    return 0;
}

int tally_search_cmp_str(tally_search_op op, const char *lhs, const char *rhs)
{
    switch (op) {
    case TALLY_SEARCH_EQ: return strcmp(lhs, rhs) == 0;
    case TALLY_SEARCH_NE: return strcmp(lhs, rhs) != 0;
    case TALLY_SEARCH_GT: return strcmp(lhs, rhs) > 0;
    case TALLY_SEARCH_GE: return strcmp(lhs, rhs) >= 0;
    case TALLY_SEARCH_LT: return strcmp(lhs, rhs) < 0;
    case TALLY_SEARCH_LE: return strcmp(lhs, rhs) <= 0;
    case TALLY_SEARCH_LIKE: return tally_search_like(rhs, strlen(rhs), lhs, strlen(lhs), 0);
    case TALLY_SEARCH_ILIKE: return tally_search_like(rhs, strlen(rhs), lhs, strlen(lhs), 1);
    case TALLY_SEARCH_IN:
    case TALLY_SEARCH_NOT_IN:
    case TALLY_SEARCH_N_OPS:
        break;
    }
    return 0;
}

/* A string value against a clause: scalar ops, or list membership. */
static int str_clause(const tally_search_clause *c, const char *s)
{
    const tally_search_value *v = &c->value;
    if (c->op == TALLY_SEARCH_IN || c->op == TALLY_SEARCH_NOT_IN) {
        int found = 0;
        for (size_t i = 0; i < v->n_list && !found; i++)
            found = strcmp(s, v->list[i]) == 0;
        return c->op == TALLY_SEARCH_IN ? found : !found;
    }
    return v->type == TALLY_SEARCH_V_STR && tally_search_cmp_str(c->op, s, v->text);
}

int tally_search_match_clause(const tally_search_clause *c, const tally_search_row *row)
{
    const char *s;
    double d;
    switch (c->entity) {
    case TALLY_SEARCH_METRIC:
        return row->metric && row->metric(row->ctx, c->key, &d) == 1 &&
               tally_search_cmp_num(c->op, d, c->value.num);
    case TALLY_SEARCH_PARAM:
        return row->param && row->param(row->ctx, c->key, &s) == 1 && s && str_clause(c, s);
    case TALLY_SEARCH_TAG:
        return row->tag && row->tag(row->ctx, c->key, &s) == 1 && s && str_clause(c, s);
    case TALLY_SEARCH_ATTR:
        if (tally_search_attr_is_num(c->attr))
            return c->value.type == TALLY_SEARCH_V_NUM && row->attr_num &&
                   row->attr_num(row->ctx, c->attr, &d) == 1 &&
                   tally_search_cmp_num(c->op, d, c->value.num);
        return row->attr_str && row->attr_str(row->ctx, c->attr, &s) == 1 && s &&
               str_clause(c, s);
    case TALLY_SEARCH_DATASET:
        if (!row->dataset)
            return 0;
        for (size_t i = 0;; i++) {
            int r = row->dataset(row->ctx, i, c->attr, &s);
            if (r < 0)
                return 0;
            if (r == 1 && s && str_clause(c, s))
                return 1;
        }
    case TALLY_SEARCH_N_ENTITIES:
        break;
    }
    return 0;
}

int tally_search_match(const tally_search_filter *f, const tally_search_row *row)
{
    for (size_t i = 0; f && i < f->n_clauses; i++)
        if (!tally_search_match_clause(&f->clauses[i], row))
            return 0;
    return 1;
}

/* ---- sorting ------------------------------------------------------------- */

enum { HAS_VALUE = 0, IS_NAN = 1, MISSING = 2 };

typedef struct sort_val {
    int rank;                     /* HAS_VALUE, IS_NAN or MISSING */
    int is_num;                   /* compare num, else str */
    double num;
    const char *str;
} sort_val;

static void get_sort_val(const tally_search_order_key *k, const tally_search_row *row,
                         sort_val *v)
{
    int r = 0;
    v->is_num = k->entity == TALLY_SEARCH_METRIC ||
                (k->entity == TALLY_SEARCH_ATTR && tally_search_attr_is_num(k->attr));
    v->str = NULL;
    v->num = 0;
    switch (k->entity) {
    case TALLY_SEARCH_METRIC:
        r = row->metric && row->metric(row->ctx, k->key, &v->num) == 1;
        break;
    case TALLY_SEARCH_PARAM:
        r = row->param && row->param(row->ctx, k->key, &v->str) == 1 && v->str;
        break;
    case TALLY_SEARCH_TAG:
        r = row->tag && row->tag(row->ctx, k->key, &v->str) == 1 && v->str;
        break;
    case TALLY_SEARCH_ATTR:
        if (v->is_num)
            r = row->attr_num && row->attr_num(row->ctx, k->attr, &v->num) == 1;
        else
            r = row->attr_str && row->attr_str(row->ctx, k->attr, &v->str) == 1 && v->str;
        break;
    case TALLY_SEARCH_DATASET:
    case TALLY_SEARCH_N_ENTITIES:
        break;
    }
    v->rank = !r ? MISSING : v->is_num && v->num != v->num ? IS_NAN : HAS_VALUE;
}

/* One key of two rows; see invariant (3). */
static int cmp_vals(const tally_search_order_key *k, const sort_val *va, const sort_val *vb)
{
    if (va->rank != vb->rank)
        return va->rank < vb->rank ? -1 : 1; /* NaN and missing last, both directions */
    if (va->rank != HAS_VALUE)
        return 0;
    int c;
    if (va->is_num)
        c = va->num < vb->num ? -1 : va->num > vb->num ? 1 : 0;
    else
        c = strcmp(va->str, vb->str);
    if (!c)
        return 0;
    return (k->desc ? -c : c) < 0 ? -1 : 1;
}

int tally_search_compare(const tally_search_order *o, const tally_search_row *a,
                         const tally_search_row *b)
{
    for (size_t i = 0; o && i < o->n_keys; i++) {
        sort_val va, vb;
        get_sort_val(&o->keys[i], a, &va);
        get_sort_val(&o->keys[i], b, &vb);
        int c = cmp_vals(&o->keys[i], &va, &vb);
        if (c)
            return c;
    }
    return 0;
}

/* Rows a and b by their prefetched values (vals[row * n_keys + key]). */
static int cmp_rows(const tally_search_order *o, const sort_val *vals, size_t a, size_t b)
{
    for (size_t i = 0; i < o->n_keys; i++) {
        int c = cmp_vals(&o->keys[i], &vals[a * o->n_keys + i], &vals[b * o->n_keys + i]);
        if (c)
            return c;
    }
    return 0;
}

int tally_search_sort(const tally_search_order *o, tally_search_row *rows, size_t n)
{
    if (!o || n < 2)
        return 0;
    size_t nk = o->n_keys ? o->n_keys : 1;
    if (n > ((size_t)-1) / (nk * sizeof(sort_val) + 2 * sizeof(size_t) + sizeof *rows))
        return TALLY_ENOMEM;
    sort_val *vals = malloc(n * nk * sizeof *vals);
    size_t *idx = malloc(n * sizeof *idx), *tmp = malloc(n * sizeof *tmp);
    tally_search_row *out = malloc(n * sizeof *out);
    if (!vals || !idx || !tmp || !out) {
        free(vals);
        free(idx);
        free(tmp);
        free(out);
        return TALLY_ENOMEM;
    }
    for (size_t r = 0; r < n; r++) {
        idx[r] = r;
        for (size_t i = 0; i < o->n_keys; i++)
            get_sort_val(&o->keys[i], &rows[r], &vals[r * o->n_keys + i]);
    }
    /* Bottom-up merge sort of the indexes: stable, O(n log n), no recursion. */
    for (size_t width = 1; width < n; width *= 2) {
        for (size_t lo = 0; lo < n; lo += 2 * width) {
            size_t mid = lo + width < n ? lo + width : n;
            size_t hi = lo + 2 * width < n ? lo + 2 * width : n;
            size_t i = lo, j = mid, k = lo;
            while (i < mid && j < hi)
                tmp[k++] = cmp_rows(o, vals, idx[j], idx[i]) < 0 ? idx[j++] : idx[i++];
            while (i < mid)
                tmp[k++] = idx[i++];
            while (j < hi)
                tmp[k++] = idx[j++];
        }
        size_t *swap = idx;
        idx = tmp;
        tmp = swap;
    }
    for (size_t r = 0; r < n; r++)
        out[r] = rows[idx[r]];
    memcpy(rows, out, n * sizeof *rows);
    free(vals);
    free(idx);
    free(tmp);
    free(out);
    return 0;
}
