/*
 * store_registry_import.h — what `tally import` needs from the model
 * registry beyond store_registry.h: writing a registered model as it was in
 * another registry (its times, version numbers with their gaps, stages
 * including deleted versions, statuses, sources, run ids and links, tags
 * and aliases), once per source. A PostgreSQL backend implements the same
 * function; the SQLite one is store_registry_import_sqlite.c (the registry
 * tables of migration 2, the ledger table import_models of migration 9).
 *
 * Invariants:
 *  (1) A model is written whole — its row, every version, every tag and
 *      alias, and its ledger entry (source, name) — in one transaction:
 *      after a crash either all of it exists or none of it, so a model is
 *      never half imported and a re-run imports the missing ones only.
 *  (2) A model the ledger has for this source is not written again, even if
 *      it was renamed or deleted in Tally since.
 *  (3) Version numbers are kept; the model's next number is 1 + the highest
 *      imported one (deleted versions included), per store_registry.h (1).
 *      Deleted versions (stage DELETED) keep their row and number, carry no
 *      tags and no alias may point at them.
 *  (4) A version's run id is mapped through the run import ledger
 *      (store_cli.h): a source run imported under a fresh Tally id is
 *      referred to by that id; other run ids are kept as they are.
 *  (5) Values are kept as they were: names, tag keys and values are not
 *      validated beyond non-empty names and keys (the source accepted them).
 */
#ifndef TALLY_SERVER_STORE_REGISTRY_IMPORT_H
#define TALLY_SERVER_STORE_REGISTRY_IMPORT_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"
#include "store_registry.h"

typedef struct tally_import_version {
    int64_t version;              /* >= 1, unique within the model */
    int64_t creation_time_ms;
    int64_t last_updated_time_ms; /* 0: the creation time */
    const char *description;      /* NULL = "" */
    tally_stage stage;            /* TALLY_STAGE_DELETED for deleted versions */
    const char *source;           /* NULL = "" */
    const char *run_id;           /* source run id; NULL = "" (invariant 4) */
    const char *run_link;         /* NULL = "" */
    const char *status;           /* NULL = "READY" */
    const char *storage_location; /* resolved location of a models:/ source, else NULL */
    const tally_kv *tags;         /* ignored for deleted versions */
    size_t n_tags;
} tally_import_version;

typedef struct tally_import_model {
    const char *source;           /* ledger key of the import source */
    const char *name;
    int64_t creation_time_ms;
    int64_t last_updated_time_ms; /* 0: the creation time */
    const char *description;      /* NULL = "" */
    const tally_kv *tags;
    size_t n_tags;
    const tally_import_version *versions; /* any order */
    size_t n_versions;
    const tally_model_alias *aliases; /* each must name a visible version here */
    size_t n_aliases;
} tally_import_model;

/* Writes the model (invariant 1) unless the ledger has it for this source
 * (*written = 0). EEXISTS when a model of that name exists in Tally and did
 * not come from this source (never merged: version numbers would clash);
 * EINVAL for an empty name or key, a version number below 1 or repeated, or
 * an alias naming a version that is absent or deleted. */
int tally_store_import_model(tally_store *s, const tally_import_model *m, int *written,
                             char *err, size_t cap);

#endif /* TALLY_SERVER_STORE_REGISTRY_IMPORT_H */
