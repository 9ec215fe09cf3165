/*
 * import_sources.h — the sources `tally import` reads: an MLflow file store
 * (import_mlruns.c) and an MLflow SQLite database (import_mlflow_db.c).
 * Each reads its source and writes through import.h; both return 0 on
 * success or 1 with messages on stderr.
 */
#ifndef TALLY_TOOLS_IMPORT_SOURCES_H
#define TALLY_TOOLS_IMPORT_SOURCES_H

#include "import.h"

/* root: the mlruns directory. quiet: no progress line. */
int import_mlruns(import_ctx *c, const char *root, int quiet);

/* db: the MLflow SQLite file; artifact_root: where its local artifacts
 * live when their URIs are not absolute file paths (NULL: use the URIs). */
int import_mlflow_db(import_ctx *c, const char *db, const char *artifact_root, int quiet);

/* The registry of an MLflow file store (DIR/models), after its runs
 * (import_mlruns_models.c); of an MLflow database (import_mlflow_db_models.c,
 * db an open sqlite3 handle). */
int import_mlruns_models(import_ctx *c, const char *root);
struct sqlite3;
int import_mlflow_db_models(import_ctx *c, struct sqlite3 *db);
/* 1 when the table exists with that column (import_mlflow_db.c). */
int import_db_has_column(struct sqlite3 *db, const char *table, const char *column);

/* snprintf into a path buffer: 0, or -1 with a message on stderr when it
 * does not fit (import_mlruns.c). */
__attribute__((format(printf, 3, 4))) int import_pathf(char *buf, size_t cap, const char *fmt,
                                                       ...);

/* Calls fn(c, "<dir>/<name>", name, arg) for each entry of dir that is not
 * hidden, not named skip (may be NULL) and holds a meta.yaml file, until
 * one fails. A missing dir is nothing to do when missing_ok. 0, or 1 with a
 * message (import_mlruns.c). */
typedef int (*import_dir_fn)(import_ctx *c, const char *path, const char *name, void *arg);
int import_each_meta_dir(import_ctx *c, const char *dir, const char *skip, int missing_ok,
                         import_dir_fn fn, void *arg);

/* Key/value pairs read from a directory of files (tags, params). */
typedef struct import_kv_list {
    tally_kv *v;
    size_t n, cap;
} import_kv_list;
void import_kv_free(import_kv_list *l);
/* Reads every file under dir into l, keyed by its path relative to the
 * top (prefix; "" at the top). A missing dir is fine. 0 or 1 with a
 * message (import_mlruns.c). */
int import_read_kv_dir(const char *dir, const char *prefix, import_kv_list *l);

/* Runs fn(c, i, arg) for i in [0, n) on c->threads threads, drawing a
 * progress line of label in runs (import_runner.c). Stops handing out
 * work once c->failed is set. 0, or 1 if any call failed. */
typedef int (*import_task_fn)(import_ctx *c, size_t i, void *arg);
int import_run_tasks(import_ctx *c, size_t n, import_task_fn fn, void *arg, const char *label,
                     int quiet);

#endif /* TALLY_TOOLS_IMPORT_SOURCES_H */
