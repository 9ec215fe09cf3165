/*
 * search_sql.c — rendering the attribute, param and tag clauses of a filter
 * as a SQLite WHERE fragment with bound parameters, so the store can let
 * SQLite discard most rows before tally_search_match runs (or instead of it,
 * when every clause rendered). The store says how to reach each value
 * (tally_search_sql_schema); this file only writes SQL around those
 * expressions.
 *
 *   metrics.acc > 0.9 AND params.lr = '0.1' AND attributes.run_id IN ('a','b')
 *     -> "(<param expr, key ?> = ?) AND (<attr expr run_id> IN (?, ?))"
 *        binds: 'lr', '0.1', 'a', 'b'            complete = 0 (metric skipped)
 *
 *   operator  SQL                       why
 *   = != < .. (e OP ?)                  NULL (missing) makes it false
 *   LIKE      (e GLOB ?)                GLOB is case-sensitive; % _ * ? [ translated
 *   ILIKE     (e LIKE ?)                SQLite LIKE: ASCII case-insensitive, no ESCAPE
 *   IN        (e IN (?, ...)) | (0)     no effective entries: nothing matches
 *   NOT IN    (e NOT IN (?, ...)) | (e IS NOT NULL)
 *
 * Rendering runs twice: once to measure (SQL length, bind count, pattern
 * bytes), once into buffers of exactly that size.
 *
 * Invariants:
 *   (1) The number of '?' written equals n_binds, in bind order (attribute
 *       expressions hold no '?'; param/tag expressions hold exactly one,
 *       bound to the key first).
 *   (2) Both passes make identical decisions, so the second never
 *       overflows what the first measured.
 */
#include <stdlib.h>
#include <string.h>

#include "search_int.h"

typedef struct render {
    tally__search_out w;          /* the SQL text */
    tally_search_sql_bind *binds; /* NULL while measuring */
    size_t n_binds;
    char *mem;                    /* GLOB patterns; NULL while measuring */
    size_t mem_len;               /* pattern bytes used (with NULs) */
    int complete;                 /* every clause rendered so far */
} render;

static void bind_text(render *r, const char *s)
{
    if (r->binds) {
        memset(&r->binds[r->n_binds], 0, sizeof r->binds[0]);
        r->binds[r->n_binds].is_text = 1;
        r->binds[r->n_binds].text = s;
    }
    r->n_binds++;
}

static void bind_num(render *r, const tally_search_value *v)
{
    if (r->binds) {
        tally_search_sql_bind *b = &r->binds[r->n_binds];
        memset(b, 0, sizeof *b);
        b->is_int = v->is_int;
        b->inum = v->inum;
        b->num = v->num;
    }
    r->n_binds++;
}

/* A LIKE pattern as a GLOB pattern: % -> *, _ -> ?, and GLOB's own
 * specials made literal with brackets. */
static void bind_glob(render *r, const char *like)
{
    size_t start = r->mem_len;
    for (const char *p = like; *p; p++) {
        const char *rep;
        char one[2] = {*p, '\0'};
        switch (*p) {
        case '%': rep = "*"; break;
        case '_': rep = "?"; break;
        case '*': rep = "[*]"; break;
        case '?': rep = "[?]"; break;
        case '[': rep = "[[]"; break;
        default: rep = one; break;
        }
        size_t n = strlen(rep);
        if (r->mem)
            memcpy(r->mem + r->mem_len, rep, n);
        r->mem_len += n;
    }
    if (r->mem)
        r->mem[r->mem_len] = '\0';
    r->mem_len++;
    bind_text(r, r->mem ? r->mem + start : NULL);
}

static const char *expr_of(const tally_search_clause *c, const tally_search_sql_schema *s)
{
    switch (c->entity) {
    case TALLY_SEARCH_ATTR:
        return (int)c->attr > 0 && c->attr < TALLY_SEARCH_N_ATTRS ? s->attr[c->attr] : NULL;
    case TALLY_SEARCH_PARAM: return s->param;
    case TALLY_SEARCH_TAG: return s->tag;
    case TALLY_SEARCH_METRIC:
    case TALLY_SEARCH_DATASET:
    case TALLY_SEARCH_N_ENTITIES:
        break;
    }
    return NULL;
}

static void put_expr(render *r, const tally_search_clause *c, const char *expr)
{
    tally__search_puts(&r->w, expr);
    if (c->entity == TALLY_SEARCH_PARAM || c->entity == TALLY_SEARCH_TAG)
        bind_text(r, c->key);
}

static void render_clause(render *r, const tally_search_clause *c, const char *expr)
{
    const tally_search_value *v = &c->value;
    int list = c->op == TALLY_SEARCH_IN || c->op == TALLY_SEARCH_NOT_IN;
    if (list && v->n_list == 0) {
        if (c->op == TALLY_SEARCH_IN) {
            tally__search_puts(&r->w, "(0)");
            return;
        }
        tally__search_putc(&r->w, '(');
        put_expr(r, c, expr);
        tally__search_puts(&r->w, " IS NOT NULL)");
        return;
    }
    tally__search_putc(&r->w, '(');
    put_expr(r, c, expr);
    switch (c->op) {
    case TALLY_SEARCH_EQ:
    case TALLY_SEARCH_NE:
    case TALLY_SEARCH_GT:
    case TALLY_SEARCH_GE:
    case TALLY_SEARCH_LT:
    case TALLY_SEARCH_LE:
        tally__search_putc(&r->w, ' ');
        tally__search_puts(&r->w, tally_search_op_name(c->op));
        tally__search_puts(&r->w, " ?");
        if (v->type == TALLY_SEARCH_V_NUM)
            bind_num(r, v);
        else
            bind_text(r, v->text);
        break;
    case TALLY_SEARCH_LIKE:
        tally__search_puts(&r->w, " GLOB ?");
        bind_glob(r, v->text);
        break;
    case TALLY_SEARCH_ILIKE:
        tally__search_puts(&r->w, " LIKE ?");
        bind_text(r, v->text);
        break;
    case TALLY_SEARCH_IN:
    case TALLY_SEARCH_NOT_IN:
        tally__search_puts(&r->w, c->op == TALLY_SEARCH_IN ? " IN (" : " NOT IN (");
        for (size_t i = 0; i < v->n_list; i++) {
            tally__search_puts(&r->w, i ? ", ?" : "?");
            bind_text(r, v->list[i]);
        }
        tally__search_putc(&r->w, ')');
        break;
    case TALLY_SEARCH_N_OPS:
        break;
    }
    tally__search_putc(&r->w, ')');
}

static void render_all(render *r, const tally_search_filter *f, const tally_search_sql_schema *s)
{
    size_t n_done = 0;
    r->complete = 1;
    for (size_t i = 0; i < f->n_clauses; i++) {
        const tally_search_clause *c = &f->clauses[i];
        const char *expr = expr_of(c, s);
        if (!expr) {
            r->complete = 0;
            continue;
        }
        if (n_done++)
            tally__search_puts(&r->w, " AND ");
        render_clause(r, c, expr);
    }
    if (n_done == 0)
        tally__search_putc(&r->w, '1');
}

int tally_search_sql_where(const tally_search_filter *f, const tally_search_sql_schema *schema,
                           tally_search_sql *out)
{
    static const tally_search_sql_schema none;
    static const tally_search_filter empty;
    memset(out, 0, sizeof *out);
    if (!f)
        f = &empty;
    if (!schema)
        schema = &none;
    render m = {{NULL, 0, 0}, NULL, 0, NULL, 0, 1};
    render_all(&m, f, schema);
    out->where = malloc(m.w.len + 1);
    out->binds = calloc(m.n_binds ? m.n_binds : 1, sizeof *out->binds);
    out->mem_ = malloc(m.mem_len ? m.mem_len : 1);
    if (!out->where || !out->binds || !out->mem_) {
        tally_search_sql_free(out);
        return TALLY_ENOMEM;
    }
    render r = {{out->where, m.w.len + 1, 0}, out->binds, 0, out->mem_, 0, 1};
    render_all(&r, f, schema);
    out->n_binds = r.n_binds;
    out->complete = r.complete;
    return 0;
}

void tally_search_sql_free(tally_search_sql *s)
{
    if (!s)
        return;
    free(s->where);
    free(s->binds);
    free(s->mem_);
    memset(s, 0, sizeof *s);
}
