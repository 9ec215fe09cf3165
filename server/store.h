/*
 * store.h — the metadata store interface: experiments, runs, params, tags and
 * dataset inputs (later the model registry and users). Metric points are not
 * here: they live in the engine (engine/, query/).
 *
 * The interface is a documented function set (like redis' aeApi* or LMDB's
 * mdb_*): the default implementation is SQLite (store_sqlite.c, schema and
 * migrations in store_schema.c); a PostgreSQL backend implements the same set
 * and is chosen at build time. Nothing here is SQLite-specific: searches take
 * store-level predicates (tally_store_pred), not SQL, and every result is
 * plain C data in a caller-owned arena.
 *
 *   API handlers (api_experiments.c, api_runs.c, api_metrics.c)
 *        |  tally_store_* (this file): MLflow's rules and messages
 *   store_sqlite.c: one writer connection (writes serialized by a mutex,
 *        |          BEGIN IMMEDIATE), a pool of reader connections, each with
 *        |          its own prepared-statement cache; run-state cache
 *   SQLite, WAL mode, STRICT tables, foreign keys, numbered migrations
 *
 * Durability: the database runs in WAL mode with synchronous=NORMAL. A commit
 * is in the WAL (written with write(2)) before the call returns, so a process
 * crash (kill -9) loses nothing acknowledged: the OS page cache survives and
 * the next open replays the WAL. Only an OS crash or power cut may lose the
 * last transactions since the previous WAL sync (the design's promise is about
 * process crashes; `sync` durability can set synchronous=FULL).
 *
 * Errors: every function returns 0 or a negative TALLY_STORE_E* code and, on
 * error, writes MLflow's message for it into err (cap bytes, may be NULL), so
 * the API layer passes both through (see tally_store_code_name()).
 *
 * Thread safety: every function may be called from any thread at any time
 * between open and close.
 *
 * Memory: results are allocated in a tally_arena the caller owns; they live
 * until tally_arena_free(). Inputs are borrowed for the duration of the call.
 */
#ifndef TALLY_SERVER_STORE_H
#define TALLY_SERVER_STORE_H

#include <stddef.h>
#include <stdint.h>

typedef struct tally_store tally_store;

enum {
    TALLY_STORE_ENOTFOUND = -1,   /* -> RESOURCE_DOES_NOT_EXIST (404) */
    TALLY_STORE_EEXISTS = -2,     /* -> RESOURCE_ALREADY_EXISTS (400) */
    TALLY_STORE_EINVAL = -3,      /* -> INVALID_PARAMETER_VALUE (400) */
    TALLY_STORE_ESTATE = -4,      /* entity not active -> INVALID_PARAMETER_VALUE (400) */
    TALLY_STORE_EIO = -5,         /* database error -> TEMPORARILY_UNAVAILABLE (503) */
    TALLY_STORE_ENOMEM = -6,
    TALLY_STORE_ECONFLICT = -7    /* constraint violation, e.g. rename onto an existing
                                     name -> BAD_REQUEST (400) */
};

/* ------------------------------------------------------------------------ */
/* Arena: where results live                                                 */
/* ------------------------------------------------------------------------ */

typedef struct tally_arena tally_arena;

/* NULL on allocation failure. tally_arena_free(NULL) is a no-op. */
tally_arena *tally_arena_new(void);
void tally_arena_free(tally_arena *a);
/* 16-byte aligned, zeroed memory, or NULL. Lives until tally_arena_free. */
void *tally_arena_alloc(tally_arena *a, size_t n);
/* A NUL-terminated copy of s[0..n), or NULL. */
char *tally_arena_strndup(tally_arena *a, const char *s, size_t n);
char *tally_arena_strdup(tally_arena *a, const char *s);

/* ------------------------------------------------------------------------ */
/* Entities                                                                  */
/* ------------------------------------------------------------------------ */

typedef enum tally_lifecycle {
    TALLY_LIFECYCLE_ACTIVE = 0,
    TALLY_LIFECYCLE_DELETED = 1
} tally_lifecycle;

/* MLflow's ViewType numbers. */
typedef enum tally_view_type {
    TALLY_VIEW_ACTIVE_ONLY = 1,
    TALLY_VIEW_DELETED_ONLY = 2,
    TALLY_VIEW_ALL = 3
} tally_view_type;

/* MLflow's RunStatus numbers; tally_run_status_name() gives the names. */
typedef enum tally_run_status {
    TALLY_RUN_RUNNING = 1,
    TALLY_RUN_SCHEDULED = 2,
    TALLY_RUN_FINISHED = 3,
    TALLY_RUN_FAILED = 4,
    TALLY_RUN_KILLED = 5
} tally_run_status;

/* "RUNNING", ... for 1..5, NULL otherwise. */
const char *tally_run_status_name(int status);
/* 1..5 for a name (case-sensitive, as stored), 0 otherwise. */
int tally_run_status_parse(const char *name);

/* A key/value pair: params, run tags, experiment tags, input tags. As input,
 * value NULL means "" . */
typedef struct tally_kv {
    const char *key;
    const char *value;
} tally_kv;

typedef struct tally_experiment {
    int64_t experiment_id;       /* integer id; "0" is Default */
    const char *name;            /* unique across active and deleted */
    const char *artifact_location;
    tally_lifecycle lifecycle;
    int64_t creation_time_ms;    /* wall time, ms since the epoch */
    int64_t last_update_time_ms; /* changed by create, rename, delete, restore only */
    tally_kv *tags;              /* sorted by key */
    size_t n_tags;
} tally_experiment;

#define TALLY_RUN_ID_LEN 32      /* lower-case hex uuid4 */

typedef struct tally_run_info {
    char run_id[TALLY_RUN_ID_LEN + 1]; /* NUL-terminated */
    const char *run_name;        /* runs.name, kept equal to tag mlflow.runName */
    int64_t experiment_id;
    const char *user_id;         /* "" when not given */
    int status;                  /* tally_run_status */
    int64_t start_time_ms;       /* 0 when the client gave none (MLflow) */
    int64_t end_time_ms;         /* valid when has_end_time */
    int has_end_time;            /* end_time set (null while running) */
    const char *artifact_uri;    /* <experiment artifact_location>/<run_id>/artifacts */
    tally_lifecycle lifecycle;
    int64_t deleted_time_ms;     /* valid when lifecycle is deleted */
    int64_t row_key;             /* the backend's internal row id; opaque to callers */
} tally_run_info;

typedef struct tally_dataset {
    const char *name;
    const char *digest;
    const char *source_type;
    const char *source;
    const char *schema;          /* NULL when absent */
    const char *profile;         /* NULL when absent */
} tally_dataset;

typedef struct tally_dataset_input {
    tally_dataset dataset;
    tally_kv *tags;              /* input tags, e.g. mlflow.data.context */
    size_t n_tags;
} tally_dataset_input;

/* One run output (RunOutputs.model_outputs): a logged model the run
 * produced at a step (store_logged_models.h). */
typedef struct tally_model_output {
    const char *model_id;
    int64_t step;
} tally_model_output;

typedef struct tally_run {
    tally_run_info info;
    tally_kv *params;            /* sorted by key */
    size_t n_params;
    tally_kv *tags;              /* sorted by key */
    size_t n_tags;
    tally_dataset_input *inputs; /* in link order */
    size_t n_inputs;
    tally_model_output *outputs; /* filled by runs/get only (tally_store_run_outputs) */
    size_t n_outputs;
} tally_run;

/* ------------------------------------------------------------------------ */
/* Open, close                                                               */
/* ------------------------------------------------------------------------ */

typedef struct tally_store_options {
    const char *default_artifact_root; /* default "mlflow-artifacts:/": experiment
                                          locations are <root>/<id> */
    unsigned max_readers;        /* reader connections in the pool, default 16 */
    int synchronous_full;        /* 1: synchronous=FULL (power-cut safe), default NORMAL */
    int busy_timeout_ms;         /* default 10000 */
    int open_readers;            /* 1: open every reader at open (a server: the pool's memory
                                    is there from the start instead of growing with the
                                    concurrency it first meets); default 0: on demand */
} tally_store_options;

void tally_store_options_init(tally_store_options *o);

/* Opens (creating if needed) the database at path, applies the numbered
 * migrations not yet applied (idempotent: a second open applies nothing), and
 * creates experiment "0" "Default" if missing. opts may be NULL (defaults). */
int tally_store_open_opts(const char *path, const tally_store_options *opts, tally_store **out,
                          char *err, size_t cap);
int tally_store_open(const char *path, tally_store **out, char *err, size_t cap);
/* Finalizes statements and closes every connection. NULL is a no-op. No call
 * may be in flight. */
void tally_store_close(tally_store *s);

/* A write scope: from tally_store_scope_begin until tally_store_scope_end
 * on the same thread, every call this thread makes on s runs in one write
 * transaction — each write in a savepoint of it (a failing call undoes only
 * itself), each read on the same connection, seeing the scope's writes —
 * and the whole commits at the end (commit = 1) or rolls back (commit = 0).
 * For a change and what it implies (a registry change and the webhook
 * deliveries it queues) to commit together or not at all. Other threads'
 * writes wait for the end, so a scope holds no network or disk I/O beyond
 * the store's own. One scope per thread. begin: 0 or an error; end: 0, or
 * an error when the commit failed (everything was rolled back). */
int tally_store_scope_begin(tally_store *s, char *err, size_t cap);
int tally_store_scope_end(tally_store *s, int commit, char *err, size_t cap);

/* SQLite's memory in this process, every connection of every store
 * together (sqlite3_status64): its whole heap, and the part of it that is
 * page cache. Thread-safe. */
typedef struct tally_store_memory {
    uint64_t heap_bytes;       /* SQLITE_STATUS_MEMORY_USED */
    uint64_t page_cache_bytes; /* SQLITE_STATUS_PAGECACHE_OVERFLOW: page caches, from the heap */
} tally_store_memory;
void tally_store_memory_get(tally_store_memory *out);

/* Caps SQLite's heap, every connection together, at about bytes
 * (sqlite3_soft_heap_limit64): past it SQLite reuses page-cache pages
 * instead of allocating more (each connection's cache is also capped,
 * at 8 MiB). 0: no cap. Process-wide; call before opening stores. */
void tally_store_memory_limit(uint64_t bytes);

/* The schema version applied (the highest migration number). */
int tally_store_schema_version(tally_store *s, int *out);

/* ------------------------------------------------------------------------ */
/* Run state (hot path of metric logging)                                    */
/* ------------------------------------------------------------------------ */

/* What the metric paths need to know about a run, cheaply (cached). */
typedef struct tally_run_state {
    int exists;
    int active;                   /* lifecycle_stage == active */
    int64_t experiment_id;
} tally_run_state;

/* Served from an in-memory hash map kept coherent by every write that changes
 * a run's lifecycle (run delete/restore, experiment delete/restore); a miss
 * reads the database. An unknown run gives 0 with out->exists = 0. */
int tally_store_run_state(tally_store *s, const char *run_id, tally_run_state *out);

/* ------------------------------------------------------------------------ */
/* Validation shared with other handlers (MLflow's utils/validation.py)      */
/* ------------------------------------------------------------------------ */

#define TALLY_MAX_KEY_LEN 250         /* metric, param, run-tag, experiment-tag keys */
#define TALLY_MAX_PARAM_VALUE 6000    /* truncated beyond, in characters */
#define TALLY_MAX_TAG_VALUE 8000      /* truncated beyond, in characters */
#define TALLY_MAX_EXP_TAG_VALUE 5000  /* error beyond */
#define TALLY_MAX_EXP_NAME 500
#define TALLY_MAX_ARTIFACT_LOCATION 2048

/* MLflow's key rule (§6): [\w.\- /:] characters (bytes >= 0x80 count as word
 * characters), path-normal. what is "param", "tag", "metric" for the
 * message. 0 or TALLY_STORE_EINVAL with the message. */
int tally_store_check_key(const char *what, const char *key, char *err, size_t cap);

/* Byte length of s truncated to at most max_chars UTF-8 characters. */
size_t tally_utf8_truncate(const char *s, size_t max_chars);
/* UTF-8 characters in s (invalid bytes count one each). */
size_t tally_utf8_chars(const char *s);

/* Element checks of log-batch's params and tags (§4.4), in MLflow's order:
 * each param (key rule, key length), each tag, then duplicate param keys.
 * No database access. Long values are not errors (they are truncated when
 * written). */
int tally_store_check_params_tags(const tally_kv *params, size_t n_params, const tally_kv *tags,
                                  size_t n_tags, char *err, size_t cap);

/* ------------------------------------------------------------------------ */
/* Experiments                                                               */
/* ------------------------------------------------------------------------ */

/* Creates an experiment. artifact_location NULL or "" = <root>/<id>. Name and
 * artifact location are validated here (§3.1); tags are stored as given (MLflow
 * does not validate them; keys must still be non-empty). EEXISTS when the
 * name is taken by an active or deleted experiment. */
int tally_store_create_experiment(tally_store *s, const char *name, const char *artifact_location,
                                  const tally_kv *tags, size_t n_tags, int64_t *id_out,
                                  char *err, size_t cap);

/* By id or by name, deleted ones included. ENOTFOUND if none. */
int tally_store_get_experiment(tally_store *s, int64_t id, tally_arena *a, tally_experiment *out,
                               char *err, size_t cap);
int tally_store_get_experiment_by_name(tally_store *s, const char *name, tally_arena *a,
                                       tally_experiment *out, char *err, size_t cap);

/* Rename: ENOTFOUND, ESTATE (not active; MLflow's INVALID_STATE), EINVAL
 * (bad name), ECONFLICT (name taken). Bumps last_update_time. */
int tally_store_rename_experiment(tally_store *s, int64_t id, const char *new_name, char *err,
                                  size_t cap);

/* Soft delete: the experiment and every run of it become deleted (runs get
 * deleted_time = now). ENOTFOUND if unknown or not active. */
int tally_store_delete_experiment(tally_store *s, int64_t id, char *err, size_t cap);

/* Restore from deleted: the experiment and all its runs become active.
 * ENOTFOUND if unknown or not deleted. */
int tally_store_restore_experiment(tally_store *s, int64_t id, char *err, size_t cap);

/* Upsert an experiment tag: key rule, key <= 250, value <= 5000 (EINVAL);
 * ENOTFOUND; ESTATE if not active. Does not bump last_update_time. */
int tally_store_set_experiment_tag(tally_store *s, int64_t id, const char *key, const char *value,
                                   char *err, size_t cap);
/* ENOTFOUND for an unknown experiment or key; ESTATE if not active. */
int tally_store_delete_experiment_tag(tally_store *s, int64_t id, const char *key, char *err,
                                      size_t cap);

/* Every experiment of the view type, tags included, in id order. Filtering,
 * ordering and paging are the caller's (experiments are few). */
int tally_store_list_experiments(tally_store *s, tally_view_type view, tally_arena *a,
                                 tally_experiment **out, size_t *n_out, char *err, size_t cap);

/* ------------------------------------------------------------------------ */
/* Runs                                                                      */
/* ------------------------------------------------------------------------ */

typedef struct tally_run_create {
    int64_t experiment_id;
    const char *user_id;          /* NULL = "" */
    const char *run_name;         /* NULL/"" = tag mlflow.runName, else random */
    int64_t start_time_ms;        /* 0 when absent */
    const tally_kv *tags;
    size_t n_tags;
} tally_run_create;

/* Creates a run (status RUNNING, active) and returns it whole in out.
 * ENOTFOUND unknown experiment, ESTATE experiment not active, EINVAL bad tag
 * or run_name differing from tag mlflow.runName. */
int tally_store_create_run(tally_store *s, const tally_run_create *req, tally_arena *a,
                           tally_run *out, char *err, size_t cap);

/* A run with params, tags and inputs, deleted ones included. ENOTFOUND. */
int tally_store_get_run(tally_store *s, const char *run_id, tally_arena *a, tally_run *out,
                        char *err, size_t cap);

/* Changes only the fields given (status 0 = keep, has_end_time, run_name
 * NULL = keep; a run_name also rewrites tag mlflow.runName). Run must be
 * active (ESTATE). The updated info goes to out. */
int tally_store_update_run(tally_store *s, const char *run_id, int status, int has_end_time,
                           int64_t end_time_ms, const char *run_name, tally_arena *a,
                           tally_run_info *out, char *err, size_t cap);

/* Soft delete / restore; idempotent; ENOTFOUND. */
int tally_store_delete_run(tally_store *s, const char *run_id, char *err, size_t cap);
int tally_store_restore_run(tally_store *s, const char *run_id, char *err, size_t cap);

/* Upsert a run tag (key rule, key <= 250; value truncated to 8000 chars).
 * Tag mlflow.runName also renames the run. ENOTFOUND, ESTATE. */
int tally_store_set_tag(tally_store *s, const char *run_id, const char *key, const char *value,
                        char *err, size_t cap);
/* ENOTFOUND for unknown run or tag; ESTATE. */
int tally_store_delete_tag(tally_store *s, const char *run_id, const char *key, char *err,
                           size_t cap);

/* Write-once param (key rule, key <= 250; value truncated to 6000 chars).
 * Same value again is success; a different one EINVAL. ENOTFOUND, ESTATE. */
int tally_store_log_param(tally_store *s, const char *run_id, const char *key, const char *value,
                          char *err, size_t cap);

/* log-batch's params and tags (§4.4), atomically in one transaction:
 * tally_store_check_params_tags, then run exists (ENOTFOUND) and is active
 * (ESTATE), then params (write-once against stored values) and tags (in
 * order, last wins; mlflow.runName renames). On any error nothing is
 * written. n_params = n_tags = 0 still checks the run. */
int tally_store_log_batch_params_tags(tally_store *s, const char *run_id, const tally_kv *params,
                                      size_t n_params, const tally_kv *tags, size_t n_tags,
                                      char *err, size_t cap);

/* log-inputs: datasets deduplicated by (experiment, name, digest); a (dataset,
 * run) link is added once, its tags only with the first link. Run active. */
typedef struct tally_dataset_input_req {
    tally_dataset dataset;
    const tally_kv *tags;
    size_t n_tags;
} tally_dataset_input_req;
int tally_store_log_inputs(tally_store *s, const char *run_id, const tally_dataset_input_req *in,
                           size_t n, char *err, size_t cap);

/* ------------------------------------------------------------------------ */
/* Run search                                                                */
/* ------------------------------------------------------------------------ */

typedef enum tally_pred_entity {
    TALLY_PRED_ATTR = 0,     /* key: run_id, run_name, user_id, status, artifact_uri,
                                start_time, end_time */
    TALLY_PRED_PARAM = 1,
    TALLY_PRED_TAG = 2,
    TALLY_PRED_DATASET = 3   /* key: name, digest, context */
} tally_pred_entity;

typedef enum tally_pred_op {
    TALLY_OP_EQ = 0,
    TALLY_OP_NE,
    TALLY_OP_GT,
    TALLY_OP_GE,
    TALLY_OP_LT,
    TALLY_OP_LE,
    TALLY_OP_LIKE,           /* SQL LIKE, case-sensitive, no escape character */
    TALLY_OP_ILIKE,          /* the same, case-insensitive */
    TALLY_OP_IN,
    TALLY_OP_NOT_IN
} tally_pred_op;

/* One clause that must hold (clauses are ANDed). A run lacking the param/tag
 * never matches (inner-join semantics, != included); end_time null never
 * matches. The caller has checked operator/type combinations. */
typedef struct tally_store_pred {
    tally_pred_entity entity;
    const char *key;
    tally_pred_op op;
    int numeric;             /* compare num (start_time, end_time) */
    double num;
    const char *str;         /* string operand (ops other than IN/NOT IN) */
    const char *const *list; /* IN / NOT IN operands */
    size_t n_list;
} tally_store_pred;

typedef struct tally_run_query {
    const int64_t *experiment_ids;
    size_t n_experiment_ids;
    tally_view_type view;
    const tally_store_pred *preds;
    size_t n_preds;
    const char *const *param_keys; /* values returned per row (for ordering) */
    size_t n_param_keys;
    const char *const *tag_keys;
    size_t n_tag_keys;
} tally_run_query;

typedef struct tally_run_row {
    tally_run_info info;
    const char **param_vals;   /* n_param_keys entries, NULL where the run lacks it */
    const char **tag_vals;     /* n_tag_keys entries */
} tally_run_row;

/* The runs matching q (unordered), with the wanted param/tag values. */
int tally_store_search_runs(tally_store *s, const tally_run_query *q, tally_arena *a,
                            tally_run_row **out, size_t *n_out, char *err, size_t cap);

/* Params, tags and inputs of n runs (one page of a search), out[i] for
 * infos[i]. Runs deleted meanwhile just get no data. */
int tally_store_runs_data(tally_store *s, const tally_run_info *infos, size_t n, tally_arena *a,
                          tally_run *out, char *err, size_t cap);

#endif /* TALLY_SERVER_STORE_H */
