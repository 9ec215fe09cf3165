/*
 * logbatch.h — the hot path of `mlflow/runs/log-batch`: parsing the JSON
 * body with jsmn (no tree of allocations), validating it in MLflow's exact
 * order (mlflow-rest-api.md §4.4) and grouping the metrics by key into the
 * series batches of one tally_engine_append call. Also MLflow's key rule
 * (§6), shared by every metric path of the server.
 *
 * Order of checks, each failure a 400 INVALID_PARAMETER_VALUE naming the
 * first offending element, as MLflow's handler and SQL store do:
 *  (1) the body is JSON (a JSON string holding JSON is decoded twice) and an
 *      object;
 *  (2) run_id present and a string (run_uuid accepted as a fallback);
 *      metrics/params/tags arrays of objects; every metric has key, value
 *      and timestamp, every param and tag a key (MLflow's
 *      _assert_metrics_fields_present and friends);
 *  (3) every field has its proto type (§1.3 scalar rules: int64 as number,
 *      integral float or decimal string; double as number, numeric string,
 *      "NaN"/"Infinity"/"-Infinity", true = 1.0, false = 0.0; strings as
 *      strings; null = absent);
 *  (4) the run id matches ^[a-zA-Z0-9][\w\-]{0,255}$;
 *  (5) each metric (key rule, key length, timestamp >= 0), each param, each
 *      tag (key rule, key length);
 *  (6) counts: <= 1000 metrics, <= 100 params, <= 100 tags, <= 1000 in all;
 *  (7) no param key twice.
 * The run's existence and state, and writing, are the caller's
 * (api_metrics.c).
 *
 * Memory: a tally_logbatch keeps its scratch (tokens, strings, columns)
 * between calls, so a thread that parses batch after batch allocates
 * nothing once warm. Everything the result points to lives in the body or in
 * that scratch, until the next parse or tally_logbatch_free.
 */
#ifndef TALLY_SERVER_LOGBATCH_H
#define TALLY_SERVER_LOGBATCH_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"
#include "tally/engine.h"

#define TALLY_LB_MAX_METRICS 1000
#define TALLY_LB_MAX_PARAMS 100
#define TALLY_LB_MAX_TAGS 100
#define TALLY_LB_MAX_TOTAL 1000
#define TALLY_LB_MAX_TOKENS (1u << 21) /* JSON tokens of one body (~40 MiB of tokens) */

/* One key's group of metrics while parsing. */
typedef struct tally_lb_group {
    const char *key;     /* unescaped key bytes (not NUL-terminated) */
    uint32_t key_len;    /* bytes */
    uint32_t n_points;   /* metrics with this key */
    uint64_t hash;       /* of the key bytes */
    int checked;         /* the key rule has been checked */
} tally_lb_group;

/* Per metric: token indexes of its fields, then their values. */
typedef struct tally_lb_metric {
    int tok_key, tok_value, tok_ts, tok_step; /* -1 when absent */
    uint32_t group;                            /* index into groups */
    int64_t step, timestamp_ms;
    double value;
} tally_lb_metric;

typedef struct tally_logbatch {
    /* Result of a successful parse. */
    const char *run_id;           /* NUL-terminated */
    size_t run_id_len;
    size_t n_metrics;
    tally_series_batch *series;   /* metrics grouped by key, first-seen order */
    size_t n_series;
    tally_kv *params;             /* NUL-terminated keys and values */
    size_t n_params;
    tally_kv *tags;
    size_t n_tags;

    /* Error of a failed parse: always INVALID_PARAMETER_VALUE (400), except
     * out-of-memory (the return value says which). */
    char message[512];

    /* Scratch, reused across parses. */
    void *toks;                   /* jsmntok_t[tok_cap] */
    size_t tok_cap;
    int *aux;                     /* per-token scratch of the syntax check */
    size_t aux_cap;
    char *strs;                   /* unescaped strings and NUL-terminated copies */
    size_t strs_cap, strs_len;
    char *decoded;                /* the inner JSON of a double-encoded body */
    size_t decoded_cap;
    tally_lb_metric *metrics;
    size_t metrics_cap;
    tally_lb_group *groups;
    size_t groups_cap;
    uint32_t *slots;              /* open-addressing table: group index + 1 */
    size_t slots_cap;
    int *kv_toks;                 /* key/value token pairs of params then tags */
    size_t kv_toks_cap;
    tally_kv *kvs;                /* params then tags */
    size_t kvs_cap;
    int64_t *steps, *timestamps;  /* grouped columns, n_metrics each */
    double *values;
    size_t cols_cap;
    size_t series_cap;
} tally_logbatch;

void tally_logbatch_init(tally_logbatch *lb);
/* Frees every scratch buffer. NULL is a no-op. */
void tally_logbatch_free(tally_logbatch *lb);
/* Frees scratch buffers that grew beyond what a normal batch needs, so one
 * huge request does not pin memory in a worker thread. */
void tally_logbatch_trim(tally_logbatch *lb);

/* Parses and validates body[0..len) (checks (1)-(7)). Returns 0 with the
 * result filled in, -1 with lb->message set (a 400 INVALID_PARAMETER_VALUE),
 * or TALLY_ENOMEM. body need not be NUL-terminated. */
int tally_logbatch_parse(tally_logbatch *lb, const char *body, size_t len);

/* MLflow's key rule (§6) for metric, param and tag keys: characters
 * [A-Za-z0-9_.\- /:] or UTF-8 letters (well-formed bytes >= 0x80, as the
 * store counts them), path-normal (not empty, no leading '/', not starting
 * "..", no empty, "." or ".." segment), at most 250 characters. path names
 * the field in the message ("key", "metrics[3].key"); what is "Metric",
 * "Param" or "Tag". 0, or -1 with msg (cap bytes) filled. */
int tally__key_check(const char *key, size_t len, const char *what, const char *path, char *msg,
                     size_t cap);

#endif /* TALLY_SERVER_LOGBATCH_H */
