/*
 * store_logged_models.h — the store interface for MLflow 3's logged models
 * (the LoggedModel entity that `mlflow.<flavor>.log_model` creates,
 * mlflow-rest-api.md §8) and for run outputs (runs/outputs). Implemented by
 * store_logged_models_sqlite.c on the store's connections (migration 5); a
 * PostgreSQL backend implements the same functions.
 *
 * A logged model belongs to an experiment; its files live at
 * <experiment artifact_location>/models/<model_id>/artifacts (with the
 * default root: mlflow-artifacts:/<exp>/models/<model_id>/artifacts, served
 * by the artifact proxy). model_id is "m-" followed by 32 lower-case hex
 * digits. Lifecycle: created PENDING, finalized READY or UPLOAD_FAILED;
 * deletion is soft (a deleted model is invisible to every read).
 *
 * Errors, memory and threads as in store.h: 0 or TALLY_STORE_E* with
 * MLflow's message in err; results live in the caller's arena.
 */
#ifndef TALLY_SERVER_STORE_LOGGED_MODELS_H
#define TALLY_SERVER_STORE_LOGGED_MODELS_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

/* MLflow's LoggedModelStatus numbers. */
typedef enum tally_logged_model_status {
    TALLY_LM_STATUS_UNSPECIFIED = 0,
    TALLY_LM_PENDING = 1,        /* created; files not completely uploaded */
    TALLY_LM_READY = 2,          /* files completely uploaded */
    TALLY_LM_UPLOAD_FAILED = 3   /* an error occurred while uploading */
} tally_logged_model_status;

#define TALLY_LOGGED_MODEL_ID_LEN 34 /* "m-" + 32 hex */

typedef struct tally_logged_model {
    char model_id[TALLY_LOGGED_MODEL_ID_LEN + 1];
    int64_t experiment_id;
    const char *name;
    const char *artifact_location;  /* URI of the model's files */
    int64_t creation_timestamp_ms;
    int64_t last_updated_timestamp_ms;
    int status;                     /* tally_logged_model_status */
    const char *model_type;         /* NULL when not given */
    const char *source_run_id;      /* NULL when not given */
    const char *status_message;     /* NULL when none */
    tally_kv *tags;                 /* sorted by key */
    size_t n_tags;
    tally_kv *params;               /* sorted by key */
    size_t n_params;
} tally_logged_model;

typedef struct tally_logged_model_create {
    int64_t experiment_id;
    const char *name;               /* NULL: a random adjective-animal-N */
    const char *model_type;         /* NULL: none */
    const char *source_run_id;      /* NULL: none */
    const tally_kv *params;         /* repeated keys: the last value wins */
    size_t n_params;
    const tally_kv *tags;           /* repeated keys: the last value wins */
    size_t n_tags;
} tally_logged_model_create;

/* "LOGGED_MODEL_READY", ... for 0..3; NULL otherwise. */
const char *tally_logged_model_status_name(int status);

/* MLflow's name rule (_validate_logged_model_name): NULL is allowed (a name
 * is generated); otherwise non-empty and none of / : . % " '. 0 or EINVAL. */
int tally_logged_model_check_name(const char *name, char *err, size_t cap);

/* Creates a model (status PENDING) in an existing, active experiment
 * (ENOTFOUND, ESTATE), with its params and tags; the whole model to out. */
int tally_store_create_logged_model(tally_store *s, const tally_logged_model_create *req,
                                    tally_arena *a, tally_logged_model *out, char *err,
                                    size_t cap);

/* A model with tags and params. ENOTFOUND when unknown or deleted. */
int tally_store_get_logged_model(tally_store *s, const char *model_id, tally_arena *a,
                                 tally_logged_model *out, char *err, size_t cap);

/* Sets the status (READY or UPLOAD_FAILED, else EINVAL) and bumps
 * last_updated; the model to out. ENOTFOUND. */
int tally_store_finalize_logged_model(tally_store *s, const char *model_id, int status,
                                      tally_arena *a, tally_logged_model *out, char *err,
                                      size_t cap);

/* Soft delete. ENOTFOUND when unknown or already deleted. */
int tally_store_delete_logged_model(tally_store *s, const char *model_id, char *err, size_t cap);

/* Upserts tags (key rule of §6, key <= 250, value <= 8000 characters).
 * ENOTFOUND. All or nothing. */
int tally_store_set_logged_model_tags(tally_store *s, const char *model_id, const tally_kv *tags,
                                      size_t n, char *err, size_t cap);

/* ENOTFOUND for an unknown model or a missing tag (MLflow's message). */
int tally_store_delete_logged_model_tag(tally_store *s, const char *model_id, const char *key,
                                        char *err, size_t cap);

/* Adds params (key rule, key <= 250, value <= 6000 characters). A key
 * already logged with the same value is fine; another value is EINVAL
 * (params are immutable). ENOTFOUND. All or nothing. */
int tally_store_log_logged_model_params(tally_store *s, const char *model_id,
                                        const tally_kv *params, size_t n, char *err, size_t cap);

/* Every live model of the given experiments, tags and params included,
 * newest first (creation time DESC, then model_id). Filtering, ordering
 * and paging are the caller's. */
int tally_store_list_logged_models(tally_store *s, const int64_t *experiment_ids, size_t n_ids,
                                   tally_arena *a, tally_logged_model **out, size_t *n_out,
                                   char *err, size_t cap);

/* Run outputs: tally_model_output is declared in store.h (tally_run holds
 * them). */
/* runs/outputs: records outputs of an existing (ENOTFOUND), active (ESTATE)
 * run; an output already recorded is kept once. */
int tally_store_log_run_outputs(tally_store *s, const char *run_id, const tally_model_output *v,
                                size_t n, char *err, size_t cap);

/* A run's outputs in the order recorded (empty for an unknown run). */
int tally_store_run_outputs(tally_store *s, const char *run_id, tally_arena *a,
                            tally_model_output **out, size_t *n_out, char *err, size_t cap);

#endif /* TALLY_SERVER_STORE_LOGGED_MODELS_H */
