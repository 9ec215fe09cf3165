/*
 * logged_model_search.h — the filter and order_by of
 * POST mlflow/logged-models/search (MLflow's search_logged_model_utils),
 * parsed from untrusted text and evaluated in C against the models of the
 * requested experiments (a few hundred per experiment at most).
 *
 * Filter grammar (AND only, keywords case-insensitive):
 *
 *   filter  ::= "" | clause { AND clause }
 *   clause  ::= ident op value | ident [NOT] IN "(" string { "," string } ")"
 *   ident   ::= [ entity "." ] key        entity: attributes|attribute|attr,
 *                                          params|param, tags|tag, metrics|metric
 *   key     ::= bare | "`" text "`" | '"' text '"'     bare: [A-Za-z0-9_.:/-]+
 *   value   ::= "'" text "'" | '"' text '"' | number
 *   op      ::= = | != | <> | < | <= | > | >= | LIKE | ILIKE
 *
 * Attributes: name, model_id, model_type, source_run_id, status (strings:
 * = != LIKE ILIKE IN NOT IN; status matches LOGGED_MODEL_READY or READY),
 * creation_timestamp (alias creation_time), last_updated_timestamp (alias
 * last_updated_time) (numbers: = != < <= > >=). Params and tags: string
 * operators; a model lacking the key never matches. Metrics clauses are
 * refused: Tally does not link metrics to logged models (docs/api.md).
 *
 * Invariants of a parsed filter:
 *  (1) Every clause's operator fits its entity and attribute type; string
 *      clauses have str (or list for IN), numeric ones num.
 *  (2) Keys and strings are NUL-free copies owned by the filter.
 * Bad input returns -1 with a message in err, never crashes; parse
 * allocates, tally_lm_filter_free releases (NULL-safe).
 */
#ifndef TALLY_SERVER_LOGGED_MODEL_SEARCH_H
#define TALLY_SERVER_LOGGED_MODEL_SEARCH_H

#include <stddef.h>
#include <stdint.h>

#include "store_logged_models.h"

typedef enum tally_lm_entity {
    TALLY_LM_ATTR = 0,
    TALLY_LM_PARAM,
    TALLY_LM_TAG
} tally_lm_entity;

typedef enum tally_lm_attr {
    TALLY_LM_A_NONE = 0,
    TALLY_LM_A_NAME,
    TALLY_LM_A_MODEL_ID,
    TALLY_LM_A_MODEL_TYPE,
    TALLY_LM_A_SOURCE_RUN_ID,
    TALLY_LM_A_STATUS,
    TALLY_LM_A_CREATION,      /* creation_timestamp (ms) */
    TALLY_LM_A_LAST_UPDATED,  /* last_updated_timestamp (ms) */
    TALLY_LM_A_EXPERIMENT_ID  /* order_by only */
} tally_lm_attr;

typedef enum tally_lm_op {
    TALLY_LM_EQ = 0, TALLY_LM_NE, TALLY_LM_LT, TALLY_LM_LE, TALLY_LM_GT, TALLY_LM_GE,
    TALLY_LM_LIKE, TALLY_LM_ILIKE, TALLY_LM_IN, TALLY_LM_NOT_IN
} tally_lm_op;

typedef struct tally_lm_clause {
    tally_lm_entity entity;
    tally_lm_attr attr;       /* for TALLY_LM_ATTR */
    char *key;                /* param/tag key (NULL for attributes) */
    tally_lm_op op;
    double num;               /* numeric attributes */
    char *str;                /* string operand */
    char **list;              /* IN / NOT IN operands */
    size_t n_list;
} tally_lm_clause;

typedef struct tally_lm_filter {
    tally_lm_clause *v;
    size_t n;
} tally_lm_filter;

/* Parses len bytes of text. 0, or -1 with err filled (out is then empty). */
int tally_lm_filter_parse(const char *text, size_t len, tally_lm_filter *out, char *err,
                          size_t cap);
void tally_lm_filter_free(tally_lm_filter *f);

/* 1 when m satisfies every clause. */
int tally_lm_filter_match(const tally_lm_filter *f, const tally_logged_model *m);

/* One order_by element: an attribute field name (aliases as in filters,
 * plus experiment_id). -1 with err for metrics.* or an unknown field. */
typedef struct tally_lm_order {
    tally_lm_attr attr;       /* any attribute but A_NONE */
    int ascending;
} tally_lm_order;
int tally_lm_order_field(const char *field_name, tally_lm_attr *attr, char *err, size_t cap);

/* Sorts models by keys (missing values last), then creation time DESC
 * unless a key already names it, then model_id. */
void tally_lm_sort(tally_logged_model *v, size_t n, const tally_lm_order *keys, size_t n_keys);

#endif /* TALLY_SERVER_LOGGED_MODEL_SEARCH_H */
