/*
 * search_order.c — order_by lists (§5.2-§5.4) to a tally_search_order: each
 * element "ident [ASC|DESC]", checked against the mode's order_by keys, no
 * field twice, then the mode's tie-breakers appended so the result is the
 * complete comparison key list the store sorts by.
 *
 *   mode         default order (no order_by)                       appended when absent
 *   RUNS         start_time DESC, run_id ASC                        start_time DESC, run_id ASC
 *   EXPERIMENTS  creation_time DESC, experiment_id ASC              experiment_id DESC
 *   MODELS       name ASC                                           name ASC
 *   VERSIONS     last_updated_timestamp DESC, name ASC,
 *                version_number DESC                                name ASC, version_number DESC
 *
 * Invariants (besides search.h's (7)-(8)):
 *   (1) order_impl starts with pub; keys live in one malloc'd array of
 *       n_user + 3 entries (the most tie-breakers any mode appends), key
 *       strings in the arena or static.
 */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "search_int.h"

#define MAX_TIE_BREAKERS 3

typedef struct order_impl {
    tally_search_order pub;       /* what callers see; must stay first */
    tally__search_arena arena;    /* owns metric/param/tag key strings */
} order_impl;

typedef struct tie {
    tally_search_attr a;
    int desc;
} tie;

/* The mode's default keys (n_user == 0) or tie-breakers; NONE-terminated. */
static const tie *ties(tally_search_mode mode, int is_default)
{
    static const tie runs[] = {{TALLY_SEARCH_A_START_TIME, 1}, {TALLY_SEARCH_A_RUN_ID, 0},
                               {TALLY_SEARCH_A_NONE, 0}};
    static const tie exp_default[] = {{TALLY_SEARCH_A_CREATION_TIME, 1},
                                      {TALLY_SEARCH_A_EXPERIMENT_ID, 0},
                                      {TALLY_SEARCH_A_NONE, 0}};
    static const tie exp_tie[] = {{TALLY_SEARCH_A_EXPERIMENT_ID, 1}, {TALLY_SEARCH_A_NONE, 0}};
    static const tie models[] = {{TALLY_SEARCH_A_NAME, 0}, {TALLY_SEARCH_A_NONE, 0}};
    static const tie ver_default[] = {{TALLY_SEARCH_A_LAST_UPDATED_TIMESTAMP, 1},
                                      {TALLY_SEARCH_A_NAME, 0},
                                      {TALLY_SEARCH_A_VERSION_NUMBER, 1},
                                      {TALLY_SEARCH_A_NONE, 0}};
    static const tie ver_tie[] = {{TALLY_SEARCH_A_NAME, 0}, {TALLY_SEARCH_A_VERSION_NUMBER, 1},
                                  {TALLY_SEARCH_A_NONE, 0}};
    switch (mode) {
    case TALLY_SEARCH_RUNS: return runs;
    case TALLY_SEARCH_EXPERIMENTS: return is_default ? exp_default : exp_tie;
    case TALLY_SEARCH_MODELS: return models;
    case TALLY_SEARCH_VERSIONS: return is_default ? ver_default : ver_tie;
    case TALLY_SEARCH_N_MODES: break;
    }
    return models + 1;
}

static int same_field(const tally_search_order_key *a, const tally_search_order_key *b)
{
    if (a->entity != b->entity)
        return 0;
    if (a->entity == TALLY_SEARCH_ATTR)
        return a->attr == b->attr;
    return strcmp(a->key, b->key) == 0;
}

static int parse_item(tally__search_lex *lx, order_impl *oi, tally_search_order_key *k)
{
    tally_search_mode mode = oi->pub.mode;
    tally__search_ident id;
    int rc;
    memset(k, 0, sizeof *k);
    tally__search_skip_ws(lx);
    if (lx->pos == lx->len)
        return tally__search_fail(lx, lx->pos, "empty order_by element");
    if ((rc = tally__search_scan_ident(lx, &id)) != 0)
        return rc;
    k->entity = id.entity;
    if (!tally__search_entity_allowed(mode, id.entity, 1))
        return tally__search_fail(lx, id.pos, "cannot order by %s (use %s)",
                                  tally__search_entity_name(id.entity),
                                  mode == TALLY_SEARCH_RUNS ? "metrics, params, tags or attributes"
                                                            : "attributes");
    if (id.entity == TALLY_SEARCH_ATTR) {
        k->attr = tally__search_attr_lookup(mode, id.entity, 1, id.key, id.key_len);
        if (k->attr == TALLY_SEARCH_A_NONE) {
            char t[48];
            size_t n = id.key_len < 40 ? id.key_len : 40;
            for (size_t i = 0; i < n; i++) {
                unsigned char ch = (unsigned char)id.key[i];
                t[i] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
            }
            t[n] = '\0';
            return tally__search_fail(lx, id.key_pos,
                                      "invalid order_by key '%s' (valid keys: %s)", t,
                                      tally__search_attr_list(mode, id.entity, 1));
        }
        k->key = tally_search_attr_name(k->attr);
    } else if (!(k->key = tally__search_arena_strndup(&oi->arena, id.key, id.key_len))) {
        return TALLY_ENOMEM;
    }
    tally__search_skip_ws(lx);
    if (lx->pos == lx->len)
        return 0;
    size_t p = lx->pos, n = tally__search_alpha_len(lx);
    int whole = p + n >= lx->len || !tally__search_is_word_char((unsigned char)lx->s[p + n]);
    if (whole && tally__search_word_is(lx->s + p, n, "DESC"))
        k->desc = 1;
    else if (!whole || !tally__search_word_is(lx->s + p, n, "ASC"))
        return tally__search_fail(lx, p, "expected ASC, DESC or the end of the element");
    lx->pos += n;
    tally__search_skip_ws(lx);
    if (lx->pos != lx->len)
        return tally__search_fail(lx, lx->pos, "unexpected text after the direction");
    return 0;
}

static int parse_all(order_impl *oi, const char *const *items, size_t n_items,
                     tally_search_error *err)
{
    tally_search_order *o = &oi->pub;
    char what[40];
    for (size_t i = 0; i < n_items; i++) {
        const char *s = items[i] ? items[i] : "";
        snprintf(what, sizeof what, "order_by[%zu]", i);
        tally__search_lex lx = {s, strlen(s), 0, err, i, what};
        tally_search_order_key *k = &o->keys[o->n_keys];
        int rc = parse_item(&lx, oi, k);
        if (rc)
            return rc;
        for (size_t j = 0; j < o->n_keys; j++)
            if (same_field(&o->keys[j], k))
                return tally__search_fail(&lx, 0, "%s is ordered by twice (also order_by[%zu])",
                                          k->key, j);
        o->n_keys++;
    }
    o->n_user = o->n_keys;
    for (const tie *t = ties(o->mode, o->n_user == 0); t->a != TALLY_SEARCH_A_NONE; t++) {
        tally_search_order_key k = {TALLY_SEARCH_ATTR, t->a, tally_search_attr_name(t->a),
                                    t->desc};
        int used = 0;
        for (size_t j = 0; j < o->n_keys; j++)
            used |= same_field(&o->keys[j], &k);
        if (!used)
            o->keys[o->n_keys++] = k;
    }
    return 0;
}

int tally_search_order_parse(tally_search_mode mode, const char *const *items, size_t n_items,
                             tally_search_order **out, tally_search_error *err)
{
    *out = NULL;
    if (err)
        memset(err, 0, sizeof *err);
    if (!tally__search_mode_valid(mode)) {
        tally__search_lex lx = {"", 0, 0, err, 0, "order_by"};
        return tally__search_fail(&lx, 0, "unknown search mode %d", (int)mode);
    }
    if (n_items > ((size_t)-1) / sizeof(tally_search_order_key) - MAX_TIE_BREAKERS)
        return TALLY_ENOMEM;
    order_impl *oi = calloc(1, sizeof *oi);
    if (!oi)
        return TALLY_ENOMEM;
    oi->pub.mode = mode;
    oi->pub.keys = calloc(n_items + MAX_TIE_BREAKERS, sizeof *oi->pub.keys);
    int rc = oi->pub.keys ? parse_all(oi, items, n_items, err) : TALLY_ENOMEM;
    if (rc == TALLY_ENOMEM && err)
        memcpy(err->msg, "out of memory", sizeof "out of memory");
    if (rc) {
        tally_search_order_free(&oi->pub);
        return rc;
    }
    assert(tally__search_order_check(&oi->pub) == 0);
    *out = &oi->pub;
    return 0;
}

void tally_search_order_free(tally_search_order *o)
{
    if (!o)
        return;
    order_impl *oi = (order_impl *)o;
    tally__search_arena_free(&oi->arena);
    free(oi->pub.keys);
    free(oi);
}

int tally__search_order_check(const tally_search_order *o)
{
    if (!o)
        return 0;
    for (size_t i = 0; i < o->n_keys; i++)
        for (size_t j = 0; j < i; j++)
            if (same_field(&o->keys[i], &o->keys[j]))
                return 7;
    size_t k = o->n_user;
    for (const tie *t = ties(o->mode, o->n_user == 0); t->a != TALLY_SEARCH_A_NONE; t++) {
        int used = 0;
        for (size_t j = 0; j < o->n_user; j++)
            used |= o->keys[j].entity == TALLY_SEARCH_ATTR && o->keys[j].attr == t->a;
        if (used)
            continue;
        if (k >= o->n_keys || o->keys[k].entity != TALLY_SEARCH_ATTR || o->keys[k].attr != t->a ||
            o->keys[k].desc != t->desc)
            return 8;
        k++;
    }
    return k == o->n_keys ? 0 : 8;
}
