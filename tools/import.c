/*
 * import.c — the destination side of `tally import`: store + ledger, engine
 * batch appends, artifact copies into a data directory (see import.h for
 * the protocol and invariants).
 */
#include "import.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsutil.h"

#define MAX_BATCH_POINTS (1u << 20) /* points per engine append, well under the budget */

static const import_dest_ops local_ops;

int import_open(import_ctx *c, const char *data_dir, const char *source, int threads)
{
    memset(c, 0, sizeof *c);
    c->ops = &local_ops;
    pthread_mutex_init(&c->done_mu, NULL);
    c->threads = threads < 1 ? 1 : threads;
    if (snprintf(c->data_dir, sizeof c->data_dir, "%s", data_dir) >= (int)sizeof c->data_dir ||
        snprintf(c->source, sizeof c->source, "%s", source) >= (int)sizeof c->source) {
        fprintf(stderr, "tally import: path too long\n");
        return 1;
    }
    snprintf(c->artifact_root, sizeof c->artifact_root, "%s/artifacts", data_dir);
    int rc = fs_mkdirs(data_dir);
    if (rc) {
        fprintf(stderr, "tally import: cannot create %s: %s\n", data_dir, strerror(-rc));
        return 1;
    }
    char path[1200], err[512];
    tally_engine_options eo;
    tally_engine_options_init(&eo);
    eo.durability = TALLY_DURABILITY_ASYNC; /* invariant (1): synced before "done" */
    eo.async_interval_ms = 1000;
    snprintf(path, sizeof path, "%s/metrics", data_dir);
    rc = tally_engine_open(path, &eo, &c->engine);
    if (rc) {
        fprintf(stderr, "tally import: cannot open the metric engine at %s: %s%s\n", path,
                tally_strerror(rc),
                rc == TALLY_ELOCKED ? " (a server is running on it: stop it first)" : "");
        return 1;
    }
    snprintf(path, sizeof path, "%s/meta.db", data_dir);
    if (tally_store_open(path, &c->store, err, sizeof err) != 0) {
        fprintf(stderr, "tally import: cannot open the metadata store at %s: %s\n", path, err);
        tally_engine_close(c->engine);
        c->engine = NULL;
        return 1;
    }
    return 0;
}

/* Syncs the engine, then marks the queued runs done. Caller holds done_mu. */
static int flush_done_locked(import_ctx *c)
{
    if (c->n_done_ids == 0)
        return 0;
    int rc = tally_engine_sync(c->engine);
    if (rc) {
        fprintf(stderr, "tally import: syncing the metric engine: %s\n", tally_strerror(rc));
        return 1;
    }
    char err[512];
    rc = tally_store_import_runs_done(c->store, (const char *const *)c->done_ids, c->n_done_ids,
                                      err, sizeof err);
    for (size_t i = 0; i < c->n_done_ids; i++)
        free(c->done_ids[i]);
    c->n_done_ids = 0;
    if (rc) {
        fprintf(stderr, "tally import: updating the import ledger: %s\n", err);
        return 1;
    }
    return 0;
}

static int local_run_finish(import_ctx *c, const char *source_run_id)
{
    char *id = strdup(source_run_id);
    if (!id) {
        fprintf(stderr, "tally import: out of memory\n");
        return 1;
    }
    pthread_mutex_lock(&c->done_mu);
    int rc = 0;
    c->done_ids[c->n_done_ids++] = id;
    if (c->n_done_ids == IMPORT_DONE_BATCH)
        rc = flush_done_locked(c);
    pthread_mutex_unlock(&c->done_mu);
    return rc;
}

static int local_close(import_ctx *c)
{
    int rc = 0;
    pthread_mutex_lock(&c->done_mu);
    if (c->engine && !atomic_load(&c->failed))
        rc = flush_done_locked(c);
    for (size_t i = 0; i < c->n_done_ids; i++)
        free(c->done_ids[i]);
    c->n_done_ids = 0;
    pthread_mutex_unlock(&c->done_mu);
    if (c->store)
        tally_store_close(c->store);
    if (c->engine) {
        int e = tally_engine_close(c->engine);
        if (e) {
            fprintf(stderr, "tally import: closing the metric engine: %s\n", tally_strerror(e));
            rc = 1;
        }
    }
    c->store = NULL;
    c->engine = NULL;
    pthread_mutex_destroy(&c->done_mu);
    return rc;
}

/* One engine append, waiting while the budget is full. */
static int local_append(import_ctx *c, const tally_series_batch *b, size_t n)
{
    int rc;
    while ((rc = tally_engine_append(c->engine, b, n)) == TALLY_EBUSY)
        ; /* the budget frees as the sealer catches up */
    if (rc) {
        fprintf(stderr, "tally import: appending metrics of run %.*s: %s\n", (int)b->run_id_len,
                b->run_id, tally_strerror(rc));
        return 1;
    }
    return 0;
}

int import_run_series(import_ctx *c, const char *run_id, const char *key, size_t key_len,
                      const int64_t *steps, const int64_t *ts, const double *values, size_t n)
{
    for (size_t off = 0; off < n;) {
        size_t k = n - off > MAX_BATCH_POINTS ? MAX_BATCH_POINTS : n - off;
        tally_series_batch b = {run_id, strlen(run_id), key, key_len, (uint32_t)k,
                                steps + off, ts + off, values + off};
        if (c->ops->append(c, &b, 1) != 0)
            return 1;
        off += k;
        atomic_fetch_add(&c->n_points, k);
    }
    return 0;
}

int import_append(import_ctx *c, const tally_series_batch *b, size_t n, uint64_t n_points)
{
    if (c->ops->append(c, b, n) != 0)
        return 1;
    atomic_fetch_add(&c->n_points, n_points);
    return 0;
}

static int hexval(int ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

int import_local_path(const char *uri, char *out, size_t cap)
{
    const char *p;
    if (strncmp(uri, "file://", 7) == 0) {
        p = uri + 7;
        if (strncmp(p, "localhost/", 10) == 0)
            p += 9;
        if (*p != '/')
            return 0; /* file://host/... : not ours */
    } else if (uri[0] == '/') {
        snprintf(out, cap, "%s", uri);
        return 1; /* a plain path: taken as written */
    } else {
        return 0;
    }
    size_t o = 0;
    for (; *p && o + 1 < cap; p++) {
        int h, l;
        if (*p == '%' && (h = hexval(p[1])) >= 0 && (l = hexval(p[2])) >= 0) {
            out[o++] = (char)(h * 16 + l);
            p += 2;
        } else {
            out[o++] = *p;
        }
    }
    out[o] = 0;
    return *p == 0;
}

/* Copies src tree into dst (invariant 2). */
/* 1 when dir holds anything but "." and "..". */
static int has_entries(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    struct dirent *de;
    int any = 0;
    while (!any && (de = readdir(d)) != NULL)
        any = strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0;
    closedir(d);
    return any;
}

static int copy_tree(import_ctx *c, const char *src, const char *dst)
{
    int rc = fs_mkdirs(dst);
    if (rc) {
        fprintf(stderr, "tally import: cannot create %s: %s\n", dst, strerror(-rc));
        return 1;
    }
    DIR *d = opendir(src);
    if (!d) {
        fprintf(stderr, "tally import: cannot read %s: %s\n", src, strerror(errno));
        return 1;
    }
    struct dirent *de;
    char s[4096], t[4096], tmp[4200];
    int bad = 0;
    while (!bad && (de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (snprintf(s, sizeof s, "%s/%s", src, de->d_name) >= (int)sizeof s ||
            snprintf(t, sizeof t, "%s/%s", dst, de->d_name) >= (int)sizeof t) {
            fprintf(stderr, "tally import: path too long under %s\n", src);
            bad = 1;
            break;
        }
        struct stat st, dt;
        if (stat(s, &st) != 0) {
            fprintf(stderr, "tally import: %s: %s\n", s, strerror(errno));
            bad = 1;
            break;
        }
        if (S_ISDIR(st.st_mode)) {
            bad = copy_tree(c, s, t);
        } else if (S_ISREG(st.st_mode)) {
            if (lstat(t, &dt) == 0 && S_ISREG(dt.st_mode) && dt.st_size == st.st_size)
                continue; /* copied before */
            snprintf(tmp, sizeof tmp, "%s/.tally-import-%s", dst, de->d_name);
            uint64_t n = 0;
            if ((rc = fs_copy_file(s, tmp, UINT64_MAX, &n)) != 0 || rename(tmp, t) != 0) {
                fprintf(stderr, "tally import: copying %s to %s: %s\n", s, t,
                        strerror(rc ? -rc : errno));
                unlink(tmp);
                bad = 1;
                break;
            }
            atomic_fetch_add(&c->n_artifact_files, 1);
            atomic_fetch_add(&c->n_artifact_bytes, n);
        }
    }
    closedir(d);
    if (!bad)
        fs_sync_dir(dst);
    return bad;
}

int import_copy_artifacts(import_ctx *c, const char *src, const char *artifact_uri)
{
    static const char prefix[] = "mlflow-artifacts:/";
    if (strncmp(artifact_uri, prefix, sizeof prefix - 1) != 0)
        return 0;
    struct stat st;
    if (stat(src, &st) != 0 || !S_ISDIR(st.st_mode) || !has_entries(src))
        return 0; /* nothing to copy: no directory made either */
    const char *rel = artifact_uri + sizeof prefix - 1;
    while (*rel == '/')
        rel++;
    if (strstr(rel, "..")) {
        fprintf(stderr, "tally import: refusing artifact URI %s\n", artifact_uri);
        return 1;
    }
    return c->ops->copy_tree(c, src, rel);
}

static int local_copy_tree(import_ctx *c, const char *src, const char *rel)
{
    char dst[4096];
    if (snprintf(dst, sizeof dst, "%s/%s", c->artifact_root, rel) >= (int)sizeof dst) {
        fprintf(stderr, "tally import: artifact path too long: %s\n", rel);
        return 1;
    }
    return copy_tree(c, src, dst);
}

int import_model(import_ctx *c, tally_import_model *m)
{
    char err[1024];
    int written = 0;
    m->source = c->source;
    if (c->ops->model(c, m, &written, err, sizeof err) != 0) {
        fprintf(stderr, "tally import: registered model '%s': %s\n", m->name ? m->name : "",
                err);
        return 1;
    }
    if (written) {
        atomic_fetch_add(&c->n_models_imported, 1);
        atomic_fetch_add(&c->n_versions, m->n_versions);
    } else {
        atomic_fetch_add(&c->n_models_skipped, 1);
    }
    return 0;
}

int import_run_finish(import_ctx *c, const char *source_run_id)
{
    return c->ops->run_finish(c, source_run_id);
}

int import_close(import_ctx *c)
{
    return c->ops->close(c);
}

int import_experiment(import_ctx *c, const tally_import_experiment *in, int64_t *id, char *err,
                      size_t cap)
{
    return c->ops->experiment(c, in, id, err, cap);
}

int import_run(import_ctx *c, const tally_import_run *in, tally_import_state *state,
               char run_id[TALLY_RUN_ID_LEN + 1], char *uri, size_t uri_cap, char *err,
               size_t cap)
{
    return c->ops->run(c, in, state, run_id, uri, uri_cap, err, cap);
}

/* ---- the data directory as the destination ------------------------------ */

static int local_experiment(import_ctx *c, const tally_import_experiment *in, int64_t *id,
                            char *err, size_t cap)
{
    return tally_store_import_experiment(c->store, in, id, NULL, err, cap);
}

static int local_run(import_ctx *c, const tally_import_run *in, tally_import_state *state,
                     char run_id[TALLY_RUN_ID_LEN + 1], char *uri, size_t uri_cap, char *err,
                     size_t cap)
{
    return tally_store_import_run(c->store, in, state, run_id, uri, uri_cap, err, cap);
}

static int local_model(import_ctx *c, tally_import_model *m, int *written, char *err, size_t cap)
{
    return tally_store_import_model(c->store, m, written, err, cap);
}

static const import_dest_ops local_ops = {
    .experiment = local_experiment,
    .run = local_run,
    .append = local_append,
    .copy_tree = local_copy_tree,
    .run_finish = local_run_finish,
    .model = local_model,
    .close = local_close,
};
