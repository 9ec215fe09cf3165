/*
 * search_print.c — the canonical text of a parsed filter or order key, and
 * the bounded writer the printers (and search_sql.c) use. The canonical
 * form is what tests compare ASTs by and what the fuzz target reparses:
 *
 *   clause  := entity "." key " " OP " " value
 *   entity  := attributes | metrics | params | tags | datasets   (plural)
 *   key     := bare word if every byte is [A-Za-z0-9_.] or >= 0x80,
 *              else `key` (or "key" when it contains a backtick)
 *   value   := the number literal as written | 'text' ("text" when it
 *              contains ') | ('a', 'b') with dropped run_ids last
 *   OP      := = != > >= < <= LIKE ILIKE IN NOT IN
 *
 * Invariants:
 *   (1) Printing never fails: output is truncated to cap, the full length
 *       is returned (snprintf contract), so cap 0 sizes the buffer.
 *   (2) For every parsed filter f, parse(print(f)) succeeds in f's mode and
 *       prints the same text (search.h invariant (5) makes quoting always
 *       possible).
 */
#include <string.h>

#include "search_int.h"

void tally__search_put(tally__search_out *o, const char *s, size_t n)
{
    if (o->len < o->cap) {
        size_t room = o->cap - 1 - o->len;
        size_t k = n < room ? n : room;
        memcpy(o->buf + o->len, s, k);
        o->buf[o->len + k] = '\0';
    }
    o->len += n;
}

void tally__search_puts(tally__search_out *o, const char *s)
{
    tally__search_put(o, s, strlen(s));
}

void tally__search_putc(tally__search_out *o, char c)
{
    tally__search_put(o, &c, 1);
}

static int is_bare(const char *k)
{
    if (!*k)
        return 0;
    for (; *k; k++)
        if (!tally__search_is_word_char((unsigned char)*k))
            return 0;
    return 1;
}

void tally__search_put_ident(tally__search_out *o, tally_search_entity e, const char *key)
{
    tally__search_puts(o, tally__search_entity_name(e));
    tally__search_putc(o, '.');
    if (is_bare(key)) {
        tally__search_puts(o, key);
        return;
    }
    char q = strchr(key, '`') ? '"' : '`';
    tally__search_putc(o, q);
    tally__search_puts(o, key);
    tally__search_putc(o, q);
}

void tally__search_put_string(tally__search_out *o, const char *s)
{
    char q = strchr(s, '\'') ? '"' : '\'';
    tally__search_putc(o, q);
    tally__search_puts(o, s);
    tally__search_putc(o, q);
}

static void put_clause(tally__search_out *o, const tally_search_clause *c)
{
    const tally_search_value *v = &c->value;
    tally__search_put_ident(o, c->entity, c->key);
    tally__search_putc(o, ' ');
    tally__search_puts(o, tally_search_op_name(c->op));
    tally__search_putc(o, ' ');
    switch (v->type) {
    case TALLY_SEARCH_V_NUM:
        tally__search_puts(o, v->text);
        break;
    case TALLY_SEARCH_V_STR:
        tally__search_put_string(o, v->text);
        break;
    case TALLY_SEARCH_V_LIST:
        tally__search_putc(o, '(');
        for (size_t i = 0; i < v->n_list + v->n_dropped; i++) {
            if (i)
                tally__search_puts(o, ", ");
            tally__search_put_string(o, v->list[i]);
        }
        tally__search_putc(o, ')');
        break;
    }
}

size_t tally_search_filter_print(const tally_search_filter *f, char *buf, size_t cap)
{
    tally__search_out o = {buf, cap, 0};
    if (cap)
        buf[0] = '\0';
    for (size_t i = 0; f && i < f->n_clauses; i++) {
        if (i)
            tally__search_puts(&o, " AND ");
        put_clause(&o, &f->clauses[i]);
    }
    return o.len;
}

size_t tally_search_order_print_key(const tally_search_order *ord, size_t i, char *buf,
                                    size_t cap)
{
    tally__search_out o = {buf, cap, 0};
    if (cap)
        buf[0] = '\0';
    if (!ord || i >= ord->n_keys)
        return 0;
    const tally_search_order_key *k = &ord->keys[i];
    tally__search_put_ident(&o, k->entity, k->key);
    tally__search_puts(&o, k->desc ? " DESC" : " ASC");
    return o.len;
}
