/*
 * store_registry.h — the model registry part of the metadata store
 * (mlflow-rest-api.md §3.7, §4, §5.4, §6): registered models, their
 * versions, tags on both, and aliases. The interface a PostgreSQL backend
 * could implement too; the SQLite implementation is store_registry_sqlite.c
 * (tables in migration 2 of store_schema.c).
 *
 *   registered model "m" ──< versions 1, 2, 3 (3 deleted: invisible, its
 *        |                   number never reused)
 *        |── tags {key: value}       └── version tags {key: value}
 *        └── aliases {alias -> version}
 *
 * Semantics (MLflow's SQL store):
 *  (1) A version number is 1 + the highest number the model ever had,
 *      deleted versions included; numbers are never reused while the model
 *      exists (a hard-deleted model that is created again starts at 1).
 *  (2) A deleted version keeps its row (stage Deleted_Internal, source,
 *      run_id and run_link redacted, tags and aliases removed) and is
 *      invisible to every read: get answers ENOTFOUND, searches, latest
 *      versions and aliases never show it.
 *  (3) Renaming a model moves its versions, tags and aliases with it.
 *      Deleting a model deletes all of them (hard).
 *  (4) Searches exclude prompts (models tagged mlflow.prompt.is_prompt =
 *      "true", and their versions) unless the filter names that tag.
 *
 * Errors, memory and threads as in store.h: 0 or TALLY_STORE_E* with
 * MLflow's message in err; results in the caller's arena; any thread.
 */
#ifndef TALLY_SERVER_STORE_REGISTRY_H
#define TALLY_SERVER_STORE_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

#include "search.h"
#include "store.h"

#define TALLY_REGISTRY_MAX_NAME 256          /* registered model name (MLflow's column) */
#define TALLY_REGISTRY_MAX_TAG_KEY 250
#define TALLY_REGISTRY_MAX_TAG_VALUE 100000
#define TALLY_REGISTRY_MAX_ALIAS 255
#define TALLY_REGISTRY_PROMPT_TAG "mlflow.prompt.is_prompt"

/* Model version stages. DELETED is internal (never shown). */
typedef enum tally_stage {
    TALLY_STAGE_NONE = 0,
    TALLY_STAGE_STAGING,
    TALLY_STAGE_PRODUCTION,
    TALLY_STAGE_ARCHIVED,
    TALLY_STAGE_N_VISIBLE,
    TALLY_STAGE_DELETED = TALLY_STAGE_N_VISIBLE
} tally_stage;

/* "None", "Staging", "Production", "Archived", "Deleted_Internal". */
const char *tally_stage_name(tally_stage s);
/* A visible stage by name, case-insensitively: 0 and *out, or -1. */
int tally_stage_parse(const char *name, tally_stage *out);

typedef struct tally_model_version {
    const char *name;             /* registered model name */
    int64_t version;              /* 1, 2, ... */
    int64_t creation_time_ms;
    int64_t last_updated_time_ms;
    const char *description;      /* "" when never given */
    tally_stage stage;
    const char *source;
    const char *run_id;           /* "" when not given */
    const char *run_link;         /* "" when not given */
    const char *model_id;         /* NULL when not given */
    const char *storage_location; /* resolved location (models:/ sources), else NULL */
    const char *status;           /* "READY" */
    tally_kv *tags;               /* sorted by key */
    size_t n_tags;
    const char **aliases;         /* aliases pointing at it, sorted */
    size_t n_aliases;
} tally_model_version;

typedef struct tally_model_alias {
    const char *alias;
    int64_t version;
} tally_model_alias;

typedef struct tally_registered_model {
    const char *name;
    int64_t creation_time_ms;
    int64_t last_updated_time_ms;
    const char *description;      /* "" when never given */
    const char *deployment_job_id; /* NULL when not given */
    tally_model_version *latest;  /* highest version per stage, in stage order */
    size_t n_latest;
    tally_kv *tags;               /* sorted by key */
    size_t n_tags;
    tally_model_alias *aliases;   /* sorted by alias */
    size_t n_aliases;
} tally_registered_model;

/* Validation shared with the handlers (§6). 0 or EINVAL with the message. */
int tally_registry_check_name(const char *name, char *err, size_t cap);
int tally_registry_check_tag(const char *key, const char *value, char *err, size_t cap);
/* Alias rules; for_set 1 also refuses the reserved names (latest, v<N>). */
int tally_registry_check_alias(const char *alias, int for_set, char *err, size_t cap);
/* A version given as text: an optional '-' and at most 18 decimal digits
 * (MLflow accepts any integer text; unknown numbers are then ENOTFOUND).
 * 0 with *out, or EINVAL "Parameter 'version' must be an integer, got '...'". */
int tally_registry_parse_version(const char *text, int64_t *out, char *err, size_t cap);

/* ---- registered models --------------------------------------------------- */

/* EEXISTS if taken; EINVAL bad name or tag. Tags: duplicate keys, last wins. */
int tally_registry_create_model(tally_store *s, const char *name, const tally_kv *tags,
                                size_t n_tags, const char *description,
                                const char *deployment_job_id, tally_arena *a,
                                tally_registered_model *out, char *err, size_t cap);
/* ENOTFOUND. */
int tally_registry_get_model(tally_store *s, const char *name, tally_arena *a,
                             tally_registered_model *out, char *err, size_t cap);
/* ENOTFOUND, EEXISTS (new_name taken), EINVAL. Bumps last_updated. */
int tally_registry_rename_model(tally_store *s, const char *name, const char *new_name,
                                tally_arena *a, tally_registered_model *out, char *err,
                                size_t cap);
/* description NULL = "". Bumps last_updated. */
int tally_registry_update_model(tally_store *s, const char *name, const char *description,
                                tally_arena *a, tally_registered_model *out, char *err,
                                size_t cap);
/* Hard delete with versions, tags and aliases. ENOTFOUND. */
int tally_registry_delete_model(tally_store *s, const char *name, char *err, size_t cap);

/* Tags. *is_prompt (may be NULL) says whether the model is a prompt (its
 * tag mlflow.prompt.is_prompt equals "true" case-insensitively), read in
 * the same transaction. delete: a missing key is not an error. */
int tally_registry_set_model_tag(tally_store *s, const char *name, const char *key,
                                 const char *value, int *is_prompt, char *err, size_t cap);
int tally_registry_delete_model_tag(tally_store *s, const char *name, const char *key,
                                    int *is_prompt, char *err, size_t cap);

/* Aliases. set: the version must exist and be visible (ENOTFOUND); upsert.
 * delete: a missing alias is not an error; the model must exist. get:
 * "latest" (any case) is the highest visible version (ENOTFOUND if none); an
 * unknown alias is EINVAL (MLflow answers 400, not 404). */
int tally_registry_set_alias(tally_store *s, const char *name, const char *alias,
                             int64_t version, int *is_prompt, char *err, size_t cap);
int tally_registry_delete_alias(tally_store *s, const char *name, const char *alias,
                                int *is_prompt, char *err, size_t cap);
int tally_registry_get_alias(tally_store *s, const char *name, const char *alias, tally_arena *a,
                             tally_model_version *out, char *err, size_t cap);

/* The highest visible version in each stage whose bit (1 << stage) is set
 * in stage_mask (0 = all four), in stage order. ENOTFOUND unknown model. */
int tally_registry_latest_versions(tally_store *s, const char *name, unsigned stage_mask,
                                   tally_arena *a, tally_model_version **out, size_t *n,
                                   char *err, size_t cap);

/* Which models a search may return, by name: the caller's readable set
 * (authz.h, tally_authz_readable_models). Passed as NULL when every model
 * may be returned; else exactly the models named (exclude = 0), or every
 * model but those named (exclude = 1). Applied in the query, before paging,
 * so pages stay full and page tokens stay right. */
typedef struct tally_model_names {
    int exclude;
    const char *const *names;
    size_t n;
} tally_model_names;

/* One page of registered-models/search: the rows matching f (a
 * TALLY_SEARCH_MODELS filter, NULL = all) in order o (a parsed
 * TALLY_SEARCH_MODELS order, tie-breakers included), skipping offset, at
 * most limit, among the models `only` allows (NULL: all); *more says
 * whether rows follow the page. */
int tally_registry_search_models(tally_store *s, const tally_search_filter *f,
                                 const tally_search_order *o, const tally_model_names *only,
                                 uint64_t offset, size_t limit,
                                 tally_arena *a, tally_registered_model **out, size_t *n,
                                 int *more, char *err, size_t cap);

/* ---- model versions ------------------------------------------------------ */

typedef struct tally_version_create {
    const char *name;             /* the registered model (must exist) */
    const char *source;           /* checked by the caller */
    const char *run_id;           /* NULL = "" */
    const char *run_link;         /* NULL = "" */
    const char *description;      /* NULL = "" */
    const char *model_id;         /* NULL = none */
    const tally_kv *tags;
    size_t n_tags;
} tally_version_create;

/* Numbering per (1). A source "models:/<name>/<version>", "models:/<name>@<alias>",
 * "models:/<name>/<stage>" or "models:/<name>/latest" is resolved to that
 * version's download URI (ENOTFOUND if it does not exist); other sources are
 * their own download URI. ENOTFOUND unknown model, EINVAL bad tag. */
int tally_registry_create_version(tally_store *s, const tally_version_create *req,
                                  tally_arena *a, tally_model_version *out, char *err,
                                  size_t cap);
/* ENOTFOUND if unknown or deleted. */
int tally_registry_get_version(tally_store *s, const char *name, int64_t version,
                               tally_arena *a, tally_model_version *out, char *err, size_t cap);
/* description NULL = "". Bumps last_updated. */
int tally_registry_update_version(tally_store *s, const char *name, int64_t version,
                                  const char *description, tally_arena *a,
                                  tally_model_version *out, char *err, size_t cap);
/* Soft delete per (2). ENOTFOUND. */
int tally_registry_delete_version(tally_store *s, const char *name, int64_t version, char *err,
                                  size_t cap);
/* To a visible stage; with archive_existing (stage must be Staging or
 * Production, else EINVAL) the model's other versions in that stage become
 * Archived. Bumps the model's and the versions' last_updated. */
int tally_registry_transition_stage(tally_store *s, const char *name, int64_t version,
                                    tally_stage stage, int archive_existing, tally_arena *a,
                                    tally_model_version *out, char *err, size_t cap);
/* Version tags; delete: a missing key is not an error. ENOTFOUND for an
 * unknown model or version. *is_prompt as for model tags. */
int tally_registry_set_version_tag(tally_store *s, const char *name, int64_t version,
                                   const char *key, const char *value, int *is_prompt,
                                   char *err, size_t cap);
int tally_registry_delete_version_tag(tally_store *s, const char *name, int64_t version,
                                      const char *key, int *is_prompt, char *err, size_t cap);

/* One page of model-versions/search (TALLY_SEARCH_VERSIONS filter/order),
 * versions of the models `only` allows (NULL: all). */
int tally_registry_search_versions(tally_store *s, const tally_search_filter *f,
                                   const tally_search_order *o, const tally_model_names *only,
                                   uint64_t offset, size_t limit,
                                   tally_arena *a, tally_model_version **out, size_t *n,
                                   int *more, char *err, size_t cap);

#endif /* TALLY_SERVER_STORE_REGISTRY_H */
