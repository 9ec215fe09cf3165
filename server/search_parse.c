/*
 * search_parse.c — filter strings to a tally_search_filter (§5.1, §5.3,
 * §5.4): clause { AND clause }, each clause ident op value, checked against
 * the mode's vocabulary (search_schema.c) as it is read, so the first
 * problem is the one reported.
 *
 *   filter_impl (one malloc)          arena (search_arena.c)
 *   +---------------------------+     +---------------------------------+
 *   | pub: mode, n, clauses ----+--+  | keys, values, number texts,     |
 *   | arena ----------------------+-->| list pointer arrays             |
 *   | cap (clauses allocated)   |  |  +---------------------------------+
 *   +---------------------------+  +->clauses[cap] (realloc'd array)
 *
 * Invariants (besides search.h's (1)-(6), asserted after every parse):
 *   (1) pub is the first member, so a tally_search_filter * handed out is a
 *       filter_impl *; tally_search_filter_free is the only way to free it.
 *   (2) On any error every allocation made so far is released and *out is
 *       NULL.
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "search_int.h"

typedef struct filter_impl {
    tally_search_filter pub;      /* what callers see; must stay first */
    tally__search_arena arena;    /* owns every string and list */
    size_t cap;                   /* clauses allocated */
} filter_impl;

/* A list being read: raw (pointer, length) items. */
typedef struct raw_list {
    const char **s;               /* item starts, into the text */
    size_t *n;                    /* item lengths */
    size_t len, cap;              /* items used / allocated */
} raw_list;

static void raw_list_free(raw_list *l)
{
    free(l->s);
    free(l->n);
    memset(l, 0, sizeof *l);
}

static int raw_list_push(raw_list *l, const char *s, size_t n)
{
    if (l->len == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        const char **ns = realloc(l->s, cap * sizeof *ns);
        if (!ns)
            return TALLY_ENOMEM;
        l->s = ns;
        size_t *nn = realloc(l->n, cap * sizeof *nn);
        if (!nn)
            return TALLY_ENOMEM;
        l->n = nn;
        l->cap = cap;
    }
    l->s[l->len] = s;
    l->n[l->len] = n;
    l->len++;
    return 0;
}

static int has_upper(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] >= 'A' && s[i] <= 'Z')
            return 1;
    return 0;
}

/* Describes clause c's target for messages: "metrics.loss", "attributes.status". */
static const char *target(const tally_search_clause *c, const tally__search_ident *id, char *buf,
                          size_t cap)
{
    tally__search_out o = {buf, cap, 0};
    if (c->entity == TALLY_SEARCH_ATTR || c->entity == TALLY_SEARCH_DATASET) {
        tally__search_put_ident(&o, c->entity, c->key);
    } else {
        char k[48];
        size_t n = id->key_len < sizeof k - 4 ? id->key_len : sizeof k - 4;
        memcpy(k, id->key, n);
        strcpy(k + n, id->key_len > n ? "..." : "");
        for (char *p = k; *p; p++)
            if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
                *p = '?';
        tally__search_put_ident(&o, c->entity, k);
    }
    return buf;
}

static int parse_op(tally__search_lex *lx, tally_search_op *op)
{
    size_t p = lx->pos;
    int c = p < lx->len ? (unsigned char)lx->s[p] : -1;
    int c2 = p + 1 < lx->len ? (unsigned char)lx->s[p + 1] : -1;
    switch (c) {
    case '=':
        *op = TALLY_SEARCH_EQ;
        lx->pos++;
        return 0;
    case '!':
        if (c2 != '=')
            break;
        *op = TALLY_SEARCH_NE;
        lx->pos += 2;
        return 0;
    case '<':
        *op = c2 == '=' ? TALLY_SEARCH_LE : TALLY_SEARCH_LT;
        lx->pos += c2 == '=' ? 2 : 1;
        return 0;
    case '>':
        *op = c2 == '=' ? TALLY_SEARCH_GE : TALLY_SEARCH_GT;
        lx->pos += c2 == '=' ? 2 : 1;
        return 0;
    default: {
        size_t n = tally__search_alpha_len(lx);
        const char *w = lx->s + p;
        if (n == 0 || (p + n < lx->len && tally__search_is_word_char((unsigned char)lx->s[p + n])))
            break;
        if (tally__search_word_is(w, n, "LIKE")) {
            *op = TALLY_SEARCH_LIKE;
        } else if (tally__search_word_is(w, n, "ILIKE")) {
            *op = TALLY_SEARCH_ILIKE;
        } else if (tally__search_word_is(w, n, "IN")) {
            *op = TALLY_SEARCH_IN;
        } else if (tally__search_word_is(w, n, "NOT")) {
            lx->pos += n;
            tally__search_skip_ws(lx);
            size_t m = tally__search_alpha_len(lx);
            if (!tally__search_word_is(lx->s + lx->pos, m, "IN") ||
                (lx->pos + m < lx->len &&
                 tally__search_is_word_char((unsigned char)lx->s[lx->pos + m])))
                return tally__search_fail(lx, lx->pos, "expected IN after NOT");
            *op = TALLY_SEARCH_NOT_IN;
            lx->pos += m;
            return 0;
        } else {
            break;
        }
        lx->pos += n;
        return 0;
    }
    }
    return tally__search_fail(lx, p,
                              "expected an operator (= != > >= < <= LIKE ILIKE IN NOT IN)");
}

/* "( 'a', "b" )" into c->value (a V_LIST in the arena). */
static int parse_list(tally__search_lex *lx, filter_impl *fi, tally_search_clause *c)
{
    raw_list l = {0};
    int rc = 0;
    if (lx->pos >= lx->len || lx->s[lx->pos] != '(') {
        rc = tally__search_fail(lx, lx->pos, "expected '(' and a list of quoted strings after %s",
                                tally_search_op_name(c->op));
        goto out;
    }
    lx->pos++;
    for (;;) {
        tally__search_skip_ws(lx);
        int ch = lx->pos < lx->len ? (unsigned char)lx->s[lx->pos] : -1;
        if (ch == ')' && l.len == 0) {
            rc = tally__search_fail(lx, lx->pos, "empty IN list");
            goto out;
        }
        if (ch != '\'' && ch != '"') {
            rc = tally__search_fail(lx, lx->pos, "IN lists hold quoted strings only");
            goto out;
        }
        const char *s;
        size_t n;
        if ((rc = tally__search_scan_quoted(lx, 1, &s, &n)) != 0)
            goto out;
        if ((rc = raw_list_push(&l, s, n)) != 0)
            goto out;
        tally__search_skip_ws(lx);
        ch = lx->pos < lx->len ? (unsigned char)lx->s[lx->pos] : -1;
        lx->pos++;
        if (ch == ')')
            break;
        if (ch != ',') {
            rc = tally__search_fail(lx, lx->pos - 1, "expected ',' or ')' in IN list");
            goto out;
        }
    }
    /* §5.1: run_id entries with upper-case letters are dropped (kept at the
     * end only so the canonical form round-trips, invariant (4)). */
    int drop = fi->pub.mode == TALLY_SEARCH_RUNS && c->entity == TALLY_SEARCH_ATTR &&
               c->attr == TALLY_SEARCH_A_RUN_ID;
    const char **v = tally__search_arena_alloc(&fi->arena, l.len * sizeof *v);
    if (!v) {
        rc = TALLY_ENOMEM;
        goto out;
    }
    size_t k = 0;
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < l.len; i++) {
            if ((drop && has_upper(l.s[i], l.n[i])) != pass)
                continue;
            if (!(v[k++] = tally__search_arena_strndup(&fi->arena, l.s[i], l.n[i]))) {
                rc = TALLY_ENOMEM;
                goto out;
            }
        }
        if (pass == 0)
            c->value.n_list = k;
    }
    c->value.type = TALLY_SEARCH_V_LIST;
    c->value.list = v;
    c->value.n_dropped = l.len - c->value.n_list;
out:
    raw_list_free(&l);
    return rc;
}

/* A quoted string or number into c->value. */
static int parse_scalar(tally__search_lex *lx, filter_impl *fi, tally_search_clause *c)
{
    int ch = lx->pos < lx->len ? (unsigned char)lx->s[lx->pos] : -1;
    int rc;
    if (ch == '\'' || ch == '"') {
        const char *s;
        size_t n;
        if ((rc = tally__search_scan_quoted(lx, 1, &s, &n)) != 0)
            return rc;
        c->value.type = TALLY_SEARCH_V_STR;
        if (!(c->value.text = tally__search_arena_strndup(&fi->arena, s, n)))
            return TALLY_ENOMEM;
        return 0;
    }
    if (tally__search_number_starts(lx)) {
        size_t start = lx->pos, n;
        if ((rc = tally__search_scan_number(lx, &n)) != 0)
            return rc;
        char *t = tally__search_arena_strndup(&fi->arena, lx->s + start, n);
        if (!t)
            return TALLY_ENOMEM;
        c->value.type = TALLY_SEARCH_V_NUM;
        c->value.text = t;
        c->value.num = strtod(t, NULL);
        if (!strpbrk(t, ".eE")) {
            errno = 0;
            long long v = strtoll(t, NULL, 10);
            if (errno == 0) {
                c->value.is_int = 1;
                c->value.inum = (int64_t)v;
            }
        }
        return 0;
    }
    if (ch == '(')
        return tally__search_fail(lx, lx->pos, "a list is only allowed after IN or NOT IN");
    return tally__search_fail(lx, lx->pos, "expected a quoted string or a number");
}

static int parse_clause(tally__search_lex *lx, filter_impl *fi, tally_search_clause *c)
{
    tally_search_mode mode = fi->pub.mode;
    tally__search_ident id;
    char t[96];
    int rc;
    memset(c, 0, sizeof *c);
    if ((rc = tally__search_scan_ident(lx, &id)) != 0)
        return rc;
    c->entity = id.entity;
    c->pos = id.pos;
    if (!tally__search_entity_allowed(mode, id.entity, 0))
        return tally__search_fail(lx, id.pos, "%s cannot be searched here (use %s)",
                                  tally__search_entity_name(id.entity),
                                  mode == TALLY_SEARCH_RUNS
                                      ? "metrics, params, tags, attributes or datasets"
                                      : "attributes or tags");
    if (id.entity == TALLY_SEARCH_ATTR || id.entity == TALLY_SEARCH_DATASET) {
        c->attr = tally__search_attr_lookup(mode, id.entity, 0, id.key, id.key_len);
        if (c->attr == TALLY_SEARCH_A_NONE) {
            tally__search_out o = {t, sizeof t, 0};
            size_t n = id.key_len < 40 ? id.key_len : 40;
            for (size_t i = 0; i < n; i++) {
                unsigned char ch = (unsigned char)id.key[i];
                tally__search_putc(&o, ch >= 0x20 && ch < 0x7f ? (char)ch : '?');
            }
            return tally__search_fail(lx, id.key_pos, "invalid %s key '%s' (valid keys: %s)",
                                      id.entity == TALLY_SEARCH_DATASET ? "dataset" : "attribute",
                                      t, tally__search_attr_list(mode, id.entity, 0));
        }
        c->key = tally_search_attr_name(c->attr);
    } else {
        if (!(c->key = tally__search_arena_strndup(&fi->arena, id.key, id.key_len)))
            return TALLY_ENOMEM;
    }

    tally__search_skip_ws(lx);
    size_t op_pos = lx->pos;
    if ((rc = parse_op(lx, &c->op)) != 0)
        return rc;
    if (!tally__search_op_allowed(mode, c->entity, c->attr, c->op))
        return tally__search_fail(lx, op_pos, "operator %s is not allowed on %s (allowed: %s)",
                                  tally_search_op_name(c->op), target(c, &id, t, sizeof t),
                                  tally__search_op_list(mode, c->entity, c->attr));

    tally__search_skip_ws(lx);
    size_t v_pos = lx->pos;
    if (c->op == TALLY_SEARCH_IN || c->op == TALLY_SEARCH_NOT_IN)
        return parse_list(lx, fi, c);
    if ((rc = parse_scalar(lx, fi, c)) != 0)
        return rc;
    int numeric = tally__search_is_numeric(c->entity, c->attr);
    if (numeric && c->value.type != TALLY_SEARCH_V_NUM)
        return tally__search_fail(lx, v_pos, "expected a number for %s, got a string",
                                  target(c, &id, t, sizeof t));
    if (!numeric && c->value.type != TALLY_SEARCH_V_STR)
        return tally__search_fail(lx, v_pos, "expected a quoted string for %s, got a number",
                                  target(c, &id, t, sizeof t));
    if (tally__search_needs_int(mode, c->attr) && !c->value.is_int)
        return tally__search_fail(lx, v_pos, "expected an integer for %s",
                                  target(c, &id, t, sizeof t));
    return 0;
}

static int push_clause(filter_impl *fi, tally_search_clause **slot)
{
    if (fi->pub.n_clauses == fi->cap) {
        size_t cap = fi->cap ? fi->cap * 2 : 4;
        tally_search_clause *nc = realloc(fi->pub.clauses, cap * sizeof *nc);
        if (!nc)
            return TALLY_ENOMEM;
        fi->pub.clauses = nc;
        fi->cap = cap;
    }
    *slot = &fi->pub.clauses[fi->pub.n_clauses];
    return 0;
}

static int parse_all(tally__search_lex *lx, filter_impl *fi)
{
    int rc;
    const char *nul = lx->len ? memchr(lx->s, '\0', lx->len) : NULL;
    if (nul)
        return tally__search_fail(lx, (size_t)(nul - lx->s), "NUL byte in filter");
    tally__search_skip_ws(lx);
    if (lx->pos == lx->len)
        return 0;
    for (;;) {
        tally_search_clause *c;
        if ((rc = push_clause(fi, &c)) != 0)
            return rc;
        if ((rc = parse_clause(lx, fi, c)) != 0)
            return rc;
        fi->pub.n_clauses++;
        tally__search_skip_ws(lx);
        if (lx->pos == lx->len)
            return 0;
        size_t p = lx->pos, n = tally__search_alpha_len(lx);
        int joined = p + n >= lx->len || !tally__search_is_word_char((unsigned char)lx->s[p + n]);
        if (joined && tally__search_word_is(lx->s + p, n, "OR"))
            return tally__search_fail(lx, p, "OR is not supported (only AND)");
        if (!joined || !tally__search_word_is(lx->s + p, n, "AND"))
            return tally__search_fail(lx, p, "expected AND or the end of the filter");
        lx->pos += n;
        tally__search_skip_ws(lx);
        if (lx->pos == lx->len)
            return tally__search_fail(lx, lx->pos, "expected a clause after AND");
    }
}

int tally_search_filter_parse(tally_search_mode mode, const char *text, size_t len,
                              tally_search_filter **out, tally_search_error *err)
{
    *out = NULL;
    if (err)
        memset(err, 0, sizeof *err);
    tally__search_lex lx = {text ? text : "", text ? len : 0, 0, err, 0, "filter"};
    if (!tally__search_mode_valid(mode))
        return tally__search_fail(&lx, 0, "unknown search mode %d", (int)mode);
    filter_impl *fi = calloc(1, sizeof *fi);
    if (!fi)
        return TALLY_ENOMEM;
    fi->pub.mode = mode;
    int rc = parse_all(&lx, fi);
    if (rc == TALLY_ENOMEM && err)
        memcpy(err->msg, "out of memory", sizeof "out of memory");
    if (rc != 0) {
        tally_search_filter_free(&fi->pub);
        return rc;
    }
    assert(tally__search_filter_check(&fi->pub) == 0);
    *out = &fi->pub;
    return 0;
}

void tally_search_filter_free(tally_search_filter *f)
{
    if (!f)
        return;
    filter_impl *fi = (filter_impl *)f;
    tally__search_arena_free(&fi->arena);
    free(fi->pub.clauses);
    free(fi);
}

int tally_search_filter_mentions_tag(const tally_search_filter *f, const char *key)
{
    for (size_t i = 0; f && i < f->n_clauses; i++)
        if (f->clauses[i].entity == TALLY_SEARCH_TAG && strcmp(f->clauses[i].key, key) == 0)
            return 1;
    return 0;
}

/* ---- invariants ---------------------------------------------------------- */

static int has_both(const char *s, char a, char b)
{
    return strchr(s, a) && strchr(s, b);
}

static int check_clause(tally_search_mode mode, const tally_search_clause *c)
{
    const tally_search_value *v = &c->value;
    if (!tally__search_entity_allowed(mode, c->entity, 0))
        return 1;
    int has_attr = c->entity == TALLY_SEARCH_ATTR || c->entity == TALLY_SEARCH_DATASET;
    if (has_attr && (c->attr == TALLY_SEARCH_A_NONE ||
                     tally__search_attr_lookup(mode, c->entity, 0, c->key, strlen(c->key)) !=
                         c->attr))
        return 1;
    if (!tally__search_op_allowed(mode, c->entity, c->attr, c->op))
        return 1;
    int is_list = c->op == TALLY_SEARCH_IN || c->op == TALLY_SEARCH_NOT_IN;
    tally_search_vtype want = is_list ? TALLY_SEARCH_V_LIST
                              : tally__search_is_numeric(c->entity, c->attr) ? TALLY_SEARCH_V_NUM
                                                                            : TALLY_SEARCH_V_STR;
    if (v->type != want)
        return 2;
    if (!c->key || !c->key[0] || (!has_attr && c->attr != TALLY_SEARCH_A_NONE))
        return 3;
    if (has_attr && strcmp(c->key, tally_search_attr_name(c->attr)) != 0)
        return 3;
    if (v->type == TALLY_SEARCH_V_LIST) {
        if (v->n_list + v->n_dropped < 1 || !v->list)
            return 4;
        for (size_t i = 0; i < v->n_list + v->n_dropped; i++)
            if (!v->list[i] || has_both(v->list[i], '\'', '"'))
                return 5;
    }
    if (v->type == TALLY_SEARCH_V_STR && (!v->text || has_both(v->text, '\'', '"')))
        return 5;
    if (has_both(c->key, '"', '`'))
        return 5;
    if (v->type == TALLY_SEARCH_V_NUM) {
        if (!v->text || v->num != v->num)
            return 6;
        if (v->is_int && (double)v->inum != v->num)
            return 6;
    }
    return 0;
}

int tally__search_filter_check(const tally_search_filter *f)
{
    if (!f)
        return 0;
    if (f->n_clauses && !f->clauses)
        return 1;
    for (size_t i = 0; i < f->n_clauses; i++) {
        int r = check_clause(f->mode, &f->clauses[i]);
        if (r)
            return r;
    }
    return 0;
}
