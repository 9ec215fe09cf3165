/*
 * search_schema.c — the vocabulary of the four search languages
 * (mlflow-rest-api.md §5): entity prefixes and their aliases, which
 * entities, attribute keys (with aliases) and operators each mode accepts in
 * filters and in order_by. Pure tables; the parsers ask, nobody writes.
 *
 *   mode         filter entities            filter attributes
 *   RUNS         attr metric param tag ds   run_id run_name user_id status artifact_uri
 *                                           start_time end_time (+ aliases)
 *   EXPERIMENTS  attr tag                   name creation_time last_update_time
 *   MODELS       attr tag                   name
 *   VERSIONS     attr tag                   name run_id source_path version_number
 *
 * Invariants:
 *   (1) Every alias row maps to an attribute of the right entity (DS_* only
 *       for DATASET) and every lookup is exact (case-sensitive), as in MLflow.
 *   (2) The operator sets are: numeric = != > >= < <=; string = != LIKE
 *       ILIKE; plus IN/NOT IN for runs' run_id and datasets, IN alone for
 *       versions' run_id.
 */
#include <string.h>

#include "search_int.h"

static const struct {
    const char *name;
    int is_num;
} attrs[TALLY_SEARCH_N_ATTRS] = {
    [TALLY_SEARCH_A_NONE] = {"", 0},
#define TALLY_SEARCH_ATTR_ROW_(id, nm, type) [TALLY_SEARCH_A_##id] = {nm, TALLY_SEARCH_T_##type},
#define TALLY_SEARCH_T_STR 0
#define TALLY_SEARCH_T_NUM 1
    TALLY_SEARCH_ATTRS(TALLY_SEARCH_ATTR_ROW_)
#undef TALLY_SEARCH_ATTR_ROW_
};

const char *tally_search_attr_name(tally_search_attr a)
{
    if ((int)a < 0 || a >= TALLY_SEARCH_N_ATTRS)
        return "";
    return attrs[a].name;
}

int tally_search_attr_is_num(tally_search_attr a)
{
    if ((int)a < 0 || a >= TALLY_SEARCH_N_ATTRS)
        return 0;
    return attrs[a].is_num;
}

int tally__search_mode_valid(tally_search_mode mode)
{
    return (int)mode >= 0 && mode < TALLY_SEARCH_N_MODES;
}

/* ---- entities ------------------------------------------------------------ */

static const struct {
    const char *alias;
    tally_search_entity e;
} entity_aliases[] = {
    {"metric", TALLY_SEARCH_METRIC},     {"metrics", TALLY_SEARCH_METRIC},
    {"param", TALLY_SEARCH_PARAM},       {"params", TALLY_SEARCH_PARAM},
    {"parameter", TALLY_SEARCH_PARAM},   {"parameters", TALLY_SEARCH_PARAM},
    {"tag", TALLY_SEARCH_TAG},           {"tags", TALLY_SEARCH_TAG},
    {"attribute", TALLY_SEARCH_ATTR},    {"attributes", TALLY_SEARCH_ATTR},
    {"attr", TALLY_SEARCH_ATTR},         {"run", TALLY_SEARCH_ATTR},
    {"dataset", TALLY_SEARCH_DATASET},   {"datasets", TALLY_SEARCH_DATASET},
};

int tally__search_entity_lookup(const char *name, size_t n, tally_search_entity *out)
{
    for (size_t i = 0; i < sizeof entity_aliases / sizeof entity_aliases[0]; i++) {
        if (strlen(entity_aliases[i].alias) == n && memcmp(entity_aliases[i].alias, name, n) == 0) {
            *out = entity_aliases[i].e;
            return 0;
        }
    }
    return -1;
}

const char *tally__search_entity_name(tally_search_entity e)
{
    switch (e) {
    case TALLY_SEARCH_ATTR: return "attributes";
    case TALLY_SEARCH_METRIC: return "metrics";
    case TALLY_SEARCH_PARAM: return "params";
    case TALLY_SEARCH_TAG: return "tags";
    case TALLY_SEARCH_DATASET: return "datasets";
    case TALLY_SEARCH_N_ENTITIES: break;
    }
    return "?";
}

int tally__search_entity_allowed(tally_search_mode mode, tally_search_entity e, int for_order)
{
    switch (mode) {
    case TALLY_SEARCH_RUNS:
        if (for_order)
            return e == TALLY_SEARCH_ATTR || e == TALLY_SEARCH_METRIC || e == TALLY_SEARCH_PARAM ||
                   e == TALLY_SEARCH_TAG;
        return (int)e >= 0 && e < TALLY_SEARCH_N_ENTITIES;
    case TALLY_SEARCH_EXPERIMENTS:
    case TALLY_SEARCH_MODELS:
    case TALLY_SEARCH_VERSIONS:
        if (for_order)
            return e == TALLY_SEARCH_ATTR;
        return e == TALLY_SEARCH_ATTR || e == TALLY_SEARCH_TAG;
    case TALLY_SEARCH_N_MODES:
        break;
    }
    return 0;
}

/* ---- attributes ---------------------------------------------------------- */

typedef struct alias_row {
    const char *key;
    tally_search_attr a;
} alias_row;

#define END_ROWS {NULL, TALLY_SEARCH_A_NONE}

static const alias_row runs_attrs[] = {
    {"run_id", TALLY_SEARCH_A_RUN_ID},
    {"run_name", TALLY_SEARCH_A_RUN_NAME},
    {"run name", TALLY_SEARCH_A_RUN_NAME},
    {"Run name", TALLY_SEARCH_A_RUN_NAME},
    {"Run Name", TALLY_SEARCH_A_RUN_NAME},
    {"user_id", TALLY_SEARCH_A_USER_ID},
    {"status", TALLY_SEARCH_A_STATUS},
    {"artifact_uri", TALLY_SEARCH_A_ARTIFACT_URI},
    {"start_time", TALLY_SEARCH_A_START_TIME},
    {"created", TALLY_SEARCH_A_START_TIME},
    {"Created", TALLY_SEARCH_A_START_TIME},
    {"end_time", TALLY_SEARCH_A_END_TIME},
    END_ROWS,
};
static const alias_row runs_datasets[] = {
    {"name", TALLY_SEARCH_A_DS_NAME},
    {"digest", TALLY_SEARCH_A_DS_DIGEST},
    {"context", TALLY_SEARCH_A_DS_CONTEXT},
    END_ROWS,
};
static const alias_row exp_filter[] = {
    {"name", TALLY_SEARCH_A_NAME},
    {"creation_time", TALLY_SEARCH_A_CREATION_TIME},
    {"last_update_time", TALLY_SEARCH_A_LAST_UPDATE_TIME},
    END_ROWS,
};
static const alias_row exp_order[] = {
    {"name", TALLY_SEARCH_A_NAME},
    {"experiment_id", TALLY_SEARCH_A_EXPERIMENT_ID},
    {"creation_time", TALLY_SEARCH_A_CREATION_TIME},
    {"last_update_time", TALLY_SEARCH_A_LAST_UPDATE_TIME},
    END_ROWS,
};
static const alias_row models_filter[] = {
    {"name", TALLY_SEARCH_A_NAME},
    END_ROWS,
};
static const alias_row models_order[] = {
    {"name", TALLY_SEARCH_A_NAME},
    {"timestamp", TALLY_SEARCH_A_LAST_UPDATED_TIMESTAMP},
    {"last_updated_timestamp", TALLY_SEARCH_A_LAST_UPDATED_TIMESTAMP},
    END_ROWS,
};
static const alias_row versions_filter[] = {
    {"name", TALLY_SEARCH_A_NAME},
    {"run_id", TALLY_SEARCH_A_RUN_ID},
    {"source_path", TALLY_SEARCH_A_SOURCE_PATH},
    {"version_number", TALLY_SEARCH_A_VERSION_NUMBER},
    END_ROWS,
};
static const alias_row versions_order[] = {
    {"name", TALLY_SEARCH_A_NAME},
    {"version_number", TALLY_SEARCH_A_VERSION_NUMBER},
    {"creation_timestamp", TALLY_SEARCH_A_CREATION_TIMESTAMP},
    {"last_updated_timestamp", TALLY_SEARCH_A_LAST_UPDATED_TIMESTAMP},
    END_ROWS,
};

static const alias_row *attr_table(tally_search_mode mode, tally_search_entity e, int for_order)
{
    if (e == TALLY_SEARCH_DATASET)
        return mode == TALLY_SEARCH_RUNS && !for_order ? runs_datasets : NULL;
    if (e != TALLY_SEARCH_ATTR)
        return NULL;
    switch (mode) {
    case TALLY_SEARCH_RUNS: return runs_attrs;
    case TALLY_SEARCH_EXPERIMENTS: return for_order ? exp_order : exp_filter;
    case TALLY_SEARCH_MODELS: return for_order ? models_order : models_filter;
    case TALLY_SEARCH_VERSIONS: return for_order ? versions_order : versions_filter;
    case TALLY_SEARCH_N_MODES: break;
    }
    return NULL;
}

tally_search_attr tally__search_attr_lookup(tally_search_mode mode, tally_search_entity e,
                                            int for_order, const char *key, size_t n)
{
    const alias_row *t = attr_table(mode, e, for_order);
    for (; t && t->key; t++)
        if (strlen(t->key) == n && memcmp(t->key, key, n) == 0)
            return t->a;
    return TALLY_SEARCH_A_NONE;
}

const char *tally__search_attr_list(tally_search_mode mode, tally_search_entity e, int for_order)
{
    if (e == TALLY_SEARCH_DATASET)
        return "name, digest, context";
    switch (mode) {
    case TALLY_SEARCH_RUNS:
        return "run_id, run_name, user_id, status, artifact_uri, start_time, end_time";
    case TALLY_SEARCH_EXPERIMENTS:
        return for_order ? "name, experiment_id, creation_time, last_update_time"
                         : "name, creation_time, last_update_time";
    case TALLY_SEARCH_MODELS:
        return for_order ? "name, timestamp, last_updated_timestamp" : "name";
    case TALLY_SEARCH_VERSIONS:
        return for_order ? "name, version_number, creation_timestamp, last_updated_timestamp"
                         : "name, run_id, source_path, version_number";
    case TALLY_SEARCH_N_MODES:
        break;
    }
    return "";
}

/* ---- operators ----------------------------------------------------------- */

int tally__search_is_numeric(tally_search_entity e, tally_search_attr a)
{
    if (e == TALLY_SEARCH_METRIC)
        return 1;
    return e == TALLY_SEARCH_ATTR && tally_search_attr_is_num(a);
}

int tally__search_needs_int(tally_search_mode mode, tally_search_attr a)
{
    return mode == TALLY_SEARCH_VERSIONS && a == TALLY_SEARCH_A_VERSION_NUMBER;
}

/* Which list operators apply: 0 none, 1 IN only, 2 IN and NOT IN. */
static int list_ops(tally_search_mode mode, tally_search_entity e, tally_search_attr a)
{
    if (e == TALLY_SEARCH_DATASET)
        return 2;
    if (e == TALLY_SEARCH_ATTR && a == TALLY_SEARCH_A_RUN_ID) {
        if (mode == TALLY_SEARCH_RUNS)
            return 2;
        if (mode == TALLY_SEARCH_VERSIONS)
            return 1;
    }
    return 0;
}

int tally__search_op_allowed(tally_search_mode mode, tally_search_entity e, tally_search_attr a,
                             tally_search_op op)
{
    int numeric = tally__search_is_numeric(e, a);
    switch (op) {
    case TALLY_SEARCH_EQ:
    case TALLY_SEARCH_NE:
        return 1;
    case TALLY_SEARCH_GT:
    case TALLY_SEARCH_GE:
    case TALLY_SEARCH_LT:
    case TALLY_SEARCH_LE:
        return numeric;
    case TALLY_SEARCH_LIKE:
    case TALLY_SEARCH_ILIKE:
        return !numeric;
    case TALLY_SEARCH_IN:
        return list_ops(mode, e, a) >= 1;
    case TALLY_SEARCH_NOT_IN:
        return list_ops(mode, e, a) >= 2;
    case TALLY_SEARCH_N_OPS:
        break;
    }
    return 0;
}

const char *tally__search_op_list(tally_search_mode mode, tally_search_entity e,
                                  tally_search_attr a)
{
    if (tally__search_is_numeric(e, a))
        return "= != > >= < <=";
    switch (list_ops(mode, e, a)) {
    case 1: return "= != LIKE ILIKE IN";
    case 2: return "= != LIKE ILIKE IN NOT IN";
    default: return "= != LIKE ILIKE";
    }
}

const char *tally_search_op_name(tally_search_op op)
{
    switch (op) {
    case TALLY_SEARCH_EQ: return "=";
    case TALLY_SEARCH_NE: return "!=";
    case TALLY_SEARCH_GT: return ">";
    case TALLY_SEARCH_GE: return ">=";
    case TALLY_SEARCH_LT: return "<";
    case TALLY_SEARCH_LE: return "<=";
    case TALLY_SEARCH_LIKE: return "LIKE";
    case TALLY_SEARCH_ILIKE: return "ILIKE";
    case TALLY_SEARCH_IN: return "IN";
    case TALLY_SEARCH_NOT_IN: return "NOT IN";
    case TALLY_SEARCH_N_OPS: break;
    }
    return "?";
}
