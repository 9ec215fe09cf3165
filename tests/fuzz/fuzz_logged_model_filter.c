/*
 * fuzz_logged_model_filter.c — libFuzzer target for the logged-models/search
 * filter parser (server/logged_model_search.c), which reads untrusted text.
 *
 *   the whole input, as a filter of its length (a private copy, so an
 *   overread is an ASan report): parsing never crashes; a parsed filter has
 *   well-formed clauses (invariant (1) of logged_model_search.h) and can be
 *   evaluated against a model; an order_by field name carved from the input
 *   either resolves to an attribute or is refused with a message.
 *
 * Seeds: tests/fuzz/corpus/fuzz_logged_model_filter/.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "logged_model_search.h"

#define CHECK(cond)                                                                           \
    do {                                                                                      \
        if (!(cond))                                                                          \
            abort();                                                                          \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *copy = malloc(size ? size : 1);
    if (!copy)
        return 0;
    memcpy(copy, data, size);
    tally_lm_filter f;
    char err[512];
    if (tally_lm_filter_parse(copy, size, &f, err, sizeof err) == 0) {
        for (size_t i = 0; i < f.n; i++) {
            const tally_lm_clause *c = &f.v[i];
            if (c->op == TALLY_LM_IN || c->op == TALLY_LM_NOT_IN)
                CHECK(c->n_list >= 1 && c->list);
            else if (c->entity == TALLY_LM_ATTR &&
                     (c->attr == TALLY_LM_A_CREATION || c->attr == TALLY_LM_A_LAST_UPDATED))
                CHECK(c->op <= TALLY_LM_GE);
            else
                CHECK(c->str && (c->op == TALLY_LM_EQ || c->op == TALLY_LM_NE ||
                                 c->op == TALLY_LM_LIKE || c->op == TALLY_LM_ILIKE));
            CHECK(c->entity == TALLY_LM_ATTR ? c->attr != TALLY_LM_A_NONE : c->key != NULL);
        }
        tally_kv tags[] = {{"fold", "1"}, {"stage", "dev"}};
        tally_kv params[] = {{"depth", "12"}};
        tally_logged_model m;
        memset(&m, 0, sizeof m);
        memcpy(m.model_id, "m-0123456789abcdef0123456789abcdef", TALLY_LOGGED_MODEL_ID_LEN + 1);
        m.name = "net";
        m.artifact_location = "mlflow-artifacts:/1/models/m-x/artifacts";
        m.status = TALLY_LM_READY;
        m.creation_timestamp_ms = 1700000000000;
        m.tags = tags;
        m.n_tags = 2;
        m.params = params;
        m.n_params = 1;
        (void)tally_lm_filter_match(&f, &m);
        tally_lm_filter_free(&f);
    } else {
        CHECK(err[0] != 0);
    }
    /* The input up to its first NUL as an order_by field name. */
    char *name = malloc(size + 1);
    if (name) {
        memcpy(name, data, size);
        name[size] = 0;
        tally_lm_attr a = TALLY_LM_A_NONE;
        if (tally_lm_order_field(name, &a, err, sizeof err) == 0)
            CHECK(a != TALLY_LM_A_NONE);
        free(name);
    }
    free(copy);
    return 0;
}
