/*
 * search.h — MLflow's search languages (mlflow-rest-api.md §5): the filter
 * strings and order_by lists of runs/search, experiments/search,
 * registered-models/search and model-versions/search, parsed into a small
 * AST, evaluated against rows reached through callbacks, compared for
 * sorting with MLflow's missing-last rules, and (optionally) rendered into a
 * SQLite WHERE fragment so the store can push clauses down.
 *
 * One parser serves all four languages; a tally_search_mode selects which
 * entities, attribute keys and operators are legal (§5.1, §5.3, §5.4).
 *
 *   filter  "metrics.acc > 0.9 and params.`opt name` LIKE 'ad%'"
 *      |  tally_search_filter_parse(mode, text, len, &f, &err)
 *      v
 *   tally_search_filter { mode, n_clauses, clauses[] }
 *      clause { entity=METRIC key="acc"      op=GT   value NUM 0.9   }
 *      clause { entity=PARAM  key="opt name" op=LIKE value STR "ad%" }
 *      |                                   |                       |
 *      | tally_search_match(f, row)        | tally_search_sql_where | tally_search_filter_print
 *      v                                   v                       v
 *   1/0 per row (callbacks fetch    "(expr) = ?" + binds     canonical text that
 *   attributes, params, tags,       for the store            reparses to itself
 *   latest metrics, datasets)
 *
 *   order_by ["metrics.loss", "name DESC"]
 *      |  tally_search_order_parse(mode, items, n, &o, &err)
 *      v
 *   tally_search_order { keys[0..n_user) as given, keys[n_user..n_keys) tie-breakers }
 *      |  tally_search_compare(o, row_a, row_b), or tally_search_sort(o, rows, n)
 *      v
 *   <0 / 0 / >0 with values first, then NaN (metrics), then missing — in both directions
 *
 * Invariants of a parsed filter (checked by tally__search_filter_check in
 * debug builds):
 *   (1) Every clause is legal for f->mode: its entity is allowed in the
 *       mode, its attribute (for ATTR/DATASET entities) is filterable in the
 *       mode, and its operator is allowed for that entity/attribute type.
 *   (2) value.type is NUM exactly for metrics and numeric attributes
 *       (op is one of = != > >= < <=), LIST exactly for IN / NOT IN, and STR
 *       otherwise (op is one of = != LIKE ILIKE).
 *   (3) key is never NULL nor empty. For ATTR and DATASET clauses it is the
 *       canonical attribute name (aliases resolved: "Run Name" -> run_name,
 *       created -> start_time), a static string, and attr != TALLY_SEARCH_A_NONE;
 *       for other entities attr == TALLY_SEARCH_A_NONE.
 *   (4) A LIST has n_list + n_dropped >= 1 entries. list[0..n_list) are the
 *       effective values; list[n_list..n_list+n_dropped) are run_id entries
 *       dropped because they contain upper-case letters (§5.1), kept only so
 *       the canonical form round-trips. Evaluators ignore them.
 *   (5) No string in the AST contains a NUL byte, and none contains both a
 *       ' and a " (values) or both a " and a ` (keys): the canonical form can
 *       always quote them, so print -> parse -> print is the identity.
 *   (6) For NUM values, num is the finite-or-infinite double of the literal
 *       (never NaN), text is the literal as written, and is_int says the
 *       literal had no '.' or exponent and fits int64 (then inum holds it).
 *
 * Invariants of a parsed order (tally__search_order_check):
 *   (7) No two keys name the same field (same entity and canonical key).
 *   (8) keys[n_user..n_keys) are exactly the mode's tie-breakers that the
 *       user did not already name (§5.2-§5.4), or the default order when
 *       n_user == 0.
 *
 * Errors: functions return 0, TALLY_EINVAL (bad input: err says what and
 * where; the API layer turns it into 400 INVALID_PARAMETER_VALUE with
 * err.msg as the message) or TALLY_ENOMEM. Bad input never crashes nor
 * asserts. Memory: parse functions allocate the result; the matching _free
 * releases it (NULL is a no-op). Nothing else allocates.
 *
 * Deviations from MLflow are listed in docs/api.md, "Search syntax".
 */
#ifndef TALLY_SERVER_SEARCH_H
#define TALLY_SERVER_SEARCH_H

#include <stddef.h>
#include <stdint.h>

#include "tally/engine.h" /* TALLY_EINVAL, TALLY_ENOMEM */

/* ------------------------------------------------------------------------ */
/* Vocabulary                                                               */
/* ------------------------------------------------------------------------ */

/* Which language: decides legal entities, attributes, operators, order_by
 * keys and tie-breakers. */
typedef enum tally_search_mode {
    TALLY_SEARCH_RUNS = 0,        /* runs/search (§5.1, §5.2) */
    TALLY_SEARCH_EXPERIMENTS,     /* experiments/search (§5.3) */
    TALLY_SEARCH_MODELS,          /* registered-models/search (§5.4) */
    TALLY_SEARCH_VERSIONS,        /* model-versions/search (§5.4) */
    TALLY_SEARCH_N_MODES
} tally_search_mode;

/* The entity a clause or order key refers to, after alias resolution
 * (metric/metrics, param/params/parameter/parameters, tag/tags,
 * attribute/attributes/attr/run or no prefix, dataset/datasets). */
typedef enum tally_search_entity {
    TALLY_SEARCH_ATTR = 0,        /* a column of the entity itself */
    TALLY_SEARCH_METRIC,          /* a run's latest metric value (§4.2); runs only */
    TALLY_SEARCH_PARAM,           /* a run param; runs only */
    TALLY_SEARCH_TAG,             /* a tag of the run / experiment / model / version */
    TALLY_SEARCH_DATASET,         /* a run's dataset inputs; runs filters only */
    TALLY_SEARCH_N_ENTITIES
} tally_search_entity;

/* Attribute ids across all four languages, with canonical name and type.
 * Dataset fields are attributes of the DATASET entity (DS_*). Which ones a
 * mode accepts is decided by search_schema.c (see docs/api.md). */
#define TALLY_SEARCH_ATTRS(X)                                                  \
    X(RUN_ID, "run_id", STR)                         /* runs; versions */       \
    X(RUN_NAME, "run_name", STR)                     /* tag mlflow.runName */   \
    X(USER_ID, "user_id", STR)                                                  \
    X(STATUS, "status", STR)                         /* RunStatus enum name */  \
    X(ARTIFACT_URI, "artifact_uri", STR)                                        \
    X(START_TIME, "start_time", NUM)                 /* ms since epoch */       \
    X(END_TIME, "end_time", NUM)                     /* ms; missing while running */ \
    X(EXPERIMENT_ID, "experiment_id", NUM)           /* experiments order_by */ \
    X(NAME, "name", STR)                             /* experiment / model / version */ \
    X(CREATION_TIME, "creation_time", NUM)           /* experiments, ms */      \
    X(LAST_UPDATE_TIME, "last_update_time", NUM)     /* experiments, ms */      \
    X(SOURCE_PATH, "source_path", STR)               /* versions */             \
    X(VERSION_NUMBER, "version_number", NUM)         /* versions */             \
    X(CREATION_TIMESTAMP, "creation_timestamp", NUM) /* versions, ms */         \
    X(LAST_UPDATED_TIMESTAMP, "last_updated_timestamp", NUM) /* models, versions, ms */ \
    X(DS_NAME, "name", STR)                          /* dataset name */         \
    X(DS_DIGEST, "digest", STR)                      /* dataset digest */       \
    X(DS_CONTEXT, "context", STR)                    /* input tag mlflow.data.context */

typedef enum tally_search_attr {
    TALLY_SEARCH_A_NONE = 0,      /* not an attribute (metric/param/tag clause) */
#define TALLY_SEARCH_ATTR_ENUM_(id, name, type) TALLY_SEARCH_A_##id,
    TALLY_SEARCH_ATTRS(TALLY_SEARCH_ATTR_ENUM_)
#undef TALLY_SEARCH_ATTR_ENUM_
    TALLY_SEARCH_N_ATTRS
} tally_search_attr;

/* Canonical name of an attribute ("start_time"), "" for A_NONE or out of range. */
const char *tally_search_attr_name(tally_search_attr a);
/* 1 if the attribute is numeric (NUM), 0 if a string. */
int tally_search_attr_is_num(tally_search_attr a);

typedef enum tally_search_op {
    TALLY_SEARCH_EQ = 0,          /* =  */
    TALLY_SEARCH_NE,              /* != */
    TALLY_SEARCH_GT,              /* >  */
    TALLY_SEARCH_GE,              /* >= */
    TALLY_SEARCH_LT,              /* <  */
    TALLY_SEARCH_LE,              /* <= */
    TALLY_SEARCH_LIKE,            /* SQL LIKE, case-sensitive */
    TALLY_SEARCH_ILIKE,           /* SQL LIKE, ASCII case-insensitive */
    TALLY_SEARCH_IN,              /* IN ('a', 'b') */
    TALLY_SEARCH_NOT_IN,          /* NOT IN ('a', 'b') */
    TALLY_SEARCH_N_OPS
} tally_search_op;

/* The operator as printed in canonical form ("!=", "NOT IN"). */
const char *tally_search_op_name(tally_search_op op);

typedef enum tally_search_vtype {
    TALLY_SEARCH_V_NUM = 0,       /* a number literal */
    TALLY_SEARCH_V_STR,           /* a quoted string */
    TALLY_SEARCH_V_LIST           /* a parenthesised list of quoted strings */
} tally_search_vtype;

typedef struct tally_search_value {
    tally_search_vtype type;      /* see invariant (2) */
    double num;                   /* V_NUM: the literal's value (may be +-inf, never NaN) */
    int64_t inum;                 /* V_NUM with is_int: the exact integer */
    int is_int;                   /* V_NUM: literal is an integer that fits int64 */
    const char *text;             /* V_NUM: the literal as written; V_STR: the unquoted text */
    const char *const *list;      /* V_LIST: entries (unquoted), see invariant (4) */
    size_t n_list;                /* V_LIST: effective entries */
    size_t n_dropped;             /* V_LIST: upper-case run_id entries dropped (runs only) */
} tally_search_value;

typedef struct tally_search_clause {
    tally_search_entity entity;   /* after alias resolution */
    tally_search_attr attr;       /* ATTR/DATASET: which attribute; else A_NONE */
    const char *key;              /* canonical attribute name, or the metric/param/tag key */
    tally_search_op op;
    tally_search_value value;
    size_t pos;                   /* byte offset of the clause in the filter text */
} tally_search_clause;

typedef struct tally_search_filter {
    tally_search_mode mode;       /* the language it was parsed in */
    size_t n_clauses;             /* 0 for an empty / blank filter: matches everything */
    tally_search_clause *clauses; /* all must hold (AND) */
} tally_search_filter;

/* What went wrong, for the 400 response. */
typedef struct tally_search_error {
    size_t pos;                   /* byte offset into the text (order_by: into item[item]) */
    size_t item;                  /* order_by: index of the offending element; else 0 */
    char msg[256];                /* e.g. "Invalid entity type 'foo' at position 0 ..." */
} tally_search_error;

/* ------------------------------------------------------------------------ */
/* Filters                                                                  */
/* ------------------------------------------------------------------------ */

/* Parses len bytes of text (need not be NUL-terminated; NULL with len 0 is
 * the empty filter) in the given mode. On success *out is a new filter the
 * caller frees with tally_search_filter_free; strings in it are owned by it.
 * On failure *out is NULL and err (if not NULL) says what and where.
 * Errors: TALLY_EINVAL (syntax, unknown entity or attribute, operator not
 * allowed for the type, value of the wrong type, OR, parentheses, NUL bytes),
 * TALLY_ENOMEM. */
int tally_search_filter_parse(tally_search_mode mode, const char *text, size_t len,
                              tally_search_filter **out, tally_search_error *err);
void tally_search_filter_free(tally_search_filter *f);

/* Writes the canonical form, e.g.
 *   metrics.acc > 0.9 AND params.`opt name` LIKE 'ad%' AND attributes.run_id IN ('a', 'b')
 * (entity names plural, operators upper case, keys bare when possible, values
 * quoted with ' unless they contain one) into buf (cap bytes, NUL-terminated
 * when cap > 0, truncated if short). Returns the length of the full form,
 * excluding the NUL, like snprintf: call with cap 0 to size the buffer.
 * Parsing the canonical form in the same mode gives the same canonical form. */
size_t tally_search_filter_print(const tally_search_filter *f, char *buf, size_t cap);

/* 1 if some clause of f is on tag `key` (registry searches hide prompts —
 * tag mlflow.prompt.is_prompt — unless the filter names that tag, §3.7). */
int tally_search_filter_mentions_tag(const tally_search_filter *f, const char *key);

/* ------------------------------------------------------------------------ */
/* Rows: what the evaluator and the comparator read                         */
/* ------------------------------------------------------------------------ */

/* One candidate row (run, experiment, model or version) seen through
 * callbacks. Each getter returns 1 and sets *out when the row has the value,
 * 0 when it lacks it (missing param/tag/metric, null end_time, ...). A NULL
 * getter means "always missing". Strings are NUL-terminated and borrowed:
 * they must stay valid until the tally_search_match / tally_search_compare
 * call that asked for them returns (compare holds one value of each row at
 * a time). Getters must not fail; a row that cannot be read should be
 * treated by the caller before evaluation. */
typedef struct tally_search_row {
    void *ctx;                    /* passed to every getter */
    /* A string attribute (attr_is_num(attr) == 0). */
    int (*attr_str)(void *ctx, tally_search_attr attr, const char **out);
    /* A numeric attribute (attr_is_num(attr) == 1). */
    int (*attr_num)(void *ctx, tally_search_attr attr, double *out);
    int (*param)(void *ctx, const char *key, const char **out);
    int (*tag)(void *ctx, const char *key, const char **out);
    /* The latest value (§4.2). NaN is returned as NaN: the evaluator compares
     * it as 0 and the comparator sorts it after real numbers. */
    int (*metric)(void *ctx, const char *key, double *out);
    /* Field DS_NAME / DS_DIGEST / DS_CONTEXT of the run's i-th dataset input:
     * 1 = *out set, 0 = dataset i lacks the field, -1 = there is no dataset i
     * (i counts from 0; iteration stops at the first -1). A dataset clause
     * holds when at least one dataset satisfies it. */
    int (*dataset)(void *ctx, size_t i, tally_search_attr field, const char **out);
} tally_search_row;

/* 1 if row satisfies every clause of f, else 0 (an empty filter matches
 * all). A clause on a value the row lacks is false, whatever the operator
 * (§5.1: `!=` and NOT IN included). Metric NaN compares as 0. */
int tally_search_match(const tally_search_filter *f, const tally_search_row *row);

/* One clause against one row, same rules. */
int tally_search_match_clause(const tally_search_clause *c, const tally_search_row *row);

/* ------------------------------------------------------------------------ */
/* Evaluation helpers                                                       */
/* ------------------------------------------------------------------------ */

/* SQL LIKE: '%' matches any sequence (also empty), '_' exactly one
 * character, every other byte itself; there is no escape character. Text
 * and pattern are UTF-8: '_' consumes one code point (an invalid byte counts
 * as one character), so "_" matches "é". With icase, ASCII letters compare
 * case-insensitively; other characters compare exactly (as SQLite's LIKE
 * without ICU does; MLflow on PostgreSQL would also fold non-ASCII). Runs in
 * O(len(pat) * len(text)) time, no recursion, no allocation. Returns 1/0. */
int tally_search_like(const char *pat, size_t pat_len, const char *text, size_t text_len,
                      int icase);

/* lhs op rhs for = != > >= < <= (0 for other ops). A NaN lhs compares as 0
 * (MLflow filters; §4.1): NaN = 0 is true. */
int tally_search_cmp_num(tally_search_op op, double lhs, double rhs);

/* lhs op rhs for = != LIKE ILIKE (byte-wise, case-sensitive except ILIKE),
 * and for > >= < <= by strcmp order (not reachable from parsed filters). */
int tally_search_cmp_str(tally_search_op op, const char *lhs, const char *rhs);

/* ------------------------------------------------------------------------ */
/* order_by                                                                 */
/* ------------------------------------------------------------------------ */

typedef struct tally_search_order_key {
    tally_search_entity entity;   /* ATTR, METRIC, PARAM or TAG */
    tally_search_attr attr;       /* ATTR: which attribute; else A_NONE */
    const char *key;              /* canonical attribute name or metric/param/tag key */
    int desc;                     /* 1 = DESC, 0 = ASC */
} tally_search_order_key;

typedef struct tally_search_order {
    tally_search_mode mode;       /* the language it was parsed in */
    size_t n_user;                /* keys given by the caller (0: default order) */
    size_t n_keys;                /* n_user + tie-breakers / default keys */
    tally_search_order_key *keys; /* the full comparison key list, see (7), (8) */
} tally_search_order;

/* Parses n_items order_by elements (each "ident [ASC|DESC]", case-insensitive
 * direction, default ASC) and appends the mode's tie-breakers:
 *   runs         start_time DESC (unless used), run_id ASC;
 *                default start_time DESC, run_id ASC
 *   experiments  experiment_id DESC unless used;
 *                default creation_time DESC, experiment_id ASC
 *   models       name ASC unless used; default name ASC
 *   versions     name ASC, version_number DESC unless used;
 *                default last_updated_timestamp DESC, name ASC, version_number DESC
 * items may be NULL when n_items is 0. Each item is NUL-terminated. On
 * success *out is owned by the caller (tally_search_order_free).
 * Errors: TALLY_EINVAL (empty element, unknown key or entity for the mode,
 * bad direction, trailing tokens, the same field twice — err.item says which
 * element), TALLY_ENOMEM. */
int tally_search_order_parse(tally_search_mode mode, const char *const *items, size_t n_items,
                             tally_search_order **out, tally_search_error *err);
void tally_search_order_free(tally_search_order *o);

/* Canonical form of user key i (< o->n_user), e.g. "metrics.`val loss` DESC",
 * into buf like tally_search_filter_print. It reparses to the same key. */
size_t tally_search_order_print_key(const tally_search_order *o, size_t i, char *buf,
                                    size_t cap);

/* Compares rows a and b by every key of o (tie-breakers included):
 * <0 if a sorts first, >0 if b does, 0 if they tie on all keys. For each
 * key, rows with a value come first (ordered ASC or DESC: metrics
 * numerically, params and tags as strings by byte order, attributes by
 * their type), then rows whose metric is NaN, then rows lacking the key —
 * NaN and missing are last in both directions (§5.2). */
int tally_search_compare(const tally_search_order *o, const tally_search_row *a,
                         const tally_search_row *b);

/* Sorts rows[0..n) in place by o, with tally_search_compare's order,
 * stably. Faster than qsort with tally_search_compare for large n: every
 * row's key values are fetched once (n * o->n_keys getter calls), so strings
 * the getters return must stay valid until this call returns. Allocates
 * O(n * n_keys) scratch. Errors: TALLY_ENOMEM (rows untouched). */
int tally_search_sort(const tally_search_order *o, tally_search_row *rows, size_t n);

/* ------------------------------------------------------------------------ */
/* SQL push-down (optional)                                                 */
/* ------------------------------------------------------------------------ */

/* How the store's schema exposes each value as a SQL expression that is NULL
 * when the row lacks it. Expressions are pasted verbatim; every '?' in them
 * is a placeholder the renderer binds (in order).
 *   attr[a]    expression of attribute a, e.g. "r.status", or for run_name
 *              "(SELECT value FROM tags t WHERE t.run_uuid = r.run_uuid AND
 *              t.key = 'mlflow.runName')"; NULL = not pushable.
 *   param/tag  a scalar subquery with exactly one '?', bound to the key:
 *              "(SELECT value FROM params p WHERE p.run_uuid = r.run_uuid AND p.key = ?)";
 *              NULL = not pushable.
 * An expression must yield exactly what the matching tally_search_row getter
 * returns (e.g. status as its enum name), and attribute expressions contain
 * no '?'. Metric and dataset clauses are never rendered (they live
 * elsewhere). ILIKE relies on SQLite's default PRAGMA case_sensitive_like=OFF. */
typedef struct tally_search_sql_schema {
    const char *attr[TALLY_SEARCH_N_ATTRS]; /* indexed by tally_search_attr */
    const char *param;            /* param value subquery, one '?' for the key */
    const char *tag;              /* tag value subquery, one '?' for the key */
} tally_search_sql_schema;

typedef struct tally_search_sql_bind {
    int is_text;                  /* 1: text (NUL-terminated), 0: number */
    const char *text;             /* borrowed from the filter or owned by the tally_search_sql */
    int is_int;                   /* number: bind as int64 (inum), else as double (num) */
    int64_t inum;
    double num;
} tally_search_sql_bind;

typedef struct tally_search_sql {
    char *where;                  /* "(...) AND (...)", or "1" when nothing was rendered */
    size_t n_binds;               /* placeholders in where, in order */
    tally_search_sql_bind *binds; /* n_binds entries */
    int complete;                 /* 1: every clause was rendered, no post-filter needed */
    char *mem_;                   /* private: GLOB patterns converted from LIKE */
} tally_search_sql;

/* Renders the clauses of f that schema can express into out (a fresh
 * struct the caller releases with tally_search_sql_free, even on error).
 * Semantics match tally_search_match: NULL (missing) never satisfies a
 * clause; LIKE is rendered as GLOB (case-sensitive), ILIKE as SQLite's LIKE
 * (ASCII case-insensitive, no ESCAPE); IN lists with no effective entries
 * render as "0" (IN) or "<expr> IS NOT NULL" (NOT IN). Clauses it cannot
 * render are skipped and complete is 0: the caller must then also run
 * tally_search_match on the rows returned. Binds borrow strings from f and
 * out, so both must outlive the statement's execution (bind them with
 * SQLITE_STATIC or copy). Errors: TALLY_ENOMEM. */
int tally_search_sql_where(const tally_search_filter *f, const tally_search_sql_schema *schema,
                           tally_search_sql *out);
void tally_search_sql_free(tally_search_sql *s);

/* ------------------------------------------------------------------------ */
/* Debug                                                                    */
/* ------------------------------------------------------------------------ */

/* Check invariants (1)-(6) / (7)-(8): 0 if they hold, else the number of
 * the first one violated. Parsers assert() them in debug builds; tests and
 * the fuzz target call them always. NULL gives 0. */
int tally__search_filter_check(const tally_search_filter *f);
int tally__search_order_check(const tally_search_order *o);

#endif /* TALLY_SERVER_SEARCH_H */
