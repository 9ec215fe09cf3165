/*
 * api_artifacts_list.c — GET mlflow/artifacts/list (mlflow-rest-api.md §3.5):
 * one level of a run's artifacts under the local artifact root.
 *
 * Invariants:
 *  (1) Paths go through artifact_path.c (§4.8): unsafe ones get 400
 *      "Invalid path", and nothing outside the artifact root is ever read.
 *  (2) files[].path is relative to the run's artifact root ("model/MLmodel"),
 *      sorted by name; directories have no file_size.
 *  (3) Listing a file, a missing directory, or a run whose artifact URI is
 *      not served from this root returns just root_uri, no files (§9.11).
 *  (4) Symlinks are never followed or listed, and in-progress uploads
 *      (names starting with ".tally-") are hidden.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api_error.h"
#include "api_tracking.h"
#include "artifact_path.h"

typedef struct entry {
    char *name;
    int is_dir;
    int64_t size;
} entry;

static int entry_cmp(const void *a, const void *b)
{
    return strcmp(((const entry *)a)->name, ((const entry *)b)->name);
}

/* Reads one directory level; *n_out entries in *out (caller frees). */
static int read_level(const char *dir, entry **out, size_t *n_out)
{
    *out = NULL;
    *n_out = 0;
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0)
        return 0; /* missing, a file, or a symlink: nothing to list */
    DIR *d = fdopendir(dfd);
    if (!d) {
        close(dfd);
        return -1;
    }
    size_t cap = 0, n = 0;
    entry *v = NULL;
    struct dirent *de;
    int rc = 0;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 ||
            strncmp(de->d_name, ".tally-", 7) == 0)
            continue;
        struct stat st;
        if (fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
            !(S_ISDIR(st.st_mode) || S_ISREG(st.st_mode)))
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 32;
            entry *nv = realloc(v, cap * sizeof *nv);
            if (!nv) {
                rc = -1;
                break;
            }
            v = nv;
        }
        v[n].name = strdup(de->d_name);
        if (!v[n].name) {
            rc = -1;
            break;
        }
        v[n].is_dir = S_ISDIR(st.st_mode);
        v[n].size = (int64_t)st.st_size;
        n++;
    }
    closedir(d);
    if (n > 1)
        qsort(v, n, sizeof *v, entry_cmp);
    *out = v;
    *n_out = n;
    return rc;
}

static void free_entries(entry *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i].name);
    free(v);
}

static void handle_list(tally_server *srv, const tally_req *req, tally_resp *resp)
{
    tally_params p;
    if (tally_params_open(&p, req, resp) != 0)
        return;
    const char *run_id, *path = NULL, *token = NULL;
    tally_arena *a = NULL;
    if (tally_api_require_run_id(&p, &run_id, resp) < 0 ||
        tally_params_string(&p, "path", &path, resp) < 0 ||
        tally_params_string(&p, "page_token", &token, resp) < 0)
        goto out;
    if (token && *token) {
        /* Every listing is returned whole, so no token is ever handed out. */
        tally_resp_error(resp, TALLY_API_INVALID_PARAMETER_VALUE, "Invalid page token");
        goto out;
    }
    char rel[4096];
    if (tally_artifact_path_check(path, rel, sizeof rel) != 0) {
        tally_resp_error(resp, TALLY_API_INVALID_PARAMETER_VALUE, "Invalid path");
        goto out;
    }
    a = tally_arena_new();
    if (!a) {
        tally_resp_error(resp, TALLY_API_INTERNAL_ERROR, "out of memory");
        goto out;
    }
    tally_run run;
    char err[512];
    int rc = tally_store_get_run(srv->store, run_id, a, &run, err, sizeof err);
    if (rc) {
        tally_api_store_error(resp, rc, err);
        goto out;
    }
    char local[8192];
    entry *v = NULL;
    size_t n = 0;
    rc = tally_artifact_local_path(srv->cfg.artifact_root, run.info.artifact_uri, rel, local,
                                   sizeof local);
    if (rc < 0) {
        tally_resp_error(resp, TALLY_API_INVALID_PARAMETER_VALUE, "Invalid path");
        goto out;
    }
    if (rc == 0 && read_level(local, &v, &n) != 0) {
        free_entries(v, n);
        tally_resp_error(resp, TALLY_API_INTERNAL_ERROR, "cannot read the artifact directory");
        goto out;
    }
    tally_buf_reset(&resp->body);
    tally_json j;
    tally_json_start(&j, &resp->body);
    tally_json_object_open(&j);
    tally_json_kv_string(&j, "root_uri", run.info.artifact_uri);
    if (n) {
        tally_json_key(&j, "files");
        tally_json_array_open(&j);
        for (size_t i = 0; i < n; i++) {
            char full[8192];
            snprintf(full, sizeof full, "%s%s%s", rel, rel[0] ? "/" : "", v[i].name);
            tally_json_object_open(&j);
            tally_json_kv_string(&j, "path", full);
            tally_json_kv_bool(&j, "is_dir", v[i].is_dir);
            if (!v[i].is_dir)
                tally_json_kv_int(&j, "file_size", v[i].size);
            tally_json_object_close(&j);
        }
        tally_json_array_close(&j);
    }
    tally_json_object_close(&j);
    free_entries(v, n);
    resp->status = 200;
out:
    tally_arena_free(a);
    tally_params_close(&p);
}

const tally_route tally_routes_artifacts_list[] = {
    {TALLY_GET, "mlflow/artifacts/list", 1, 0, 0, 0, handle_list, "artifacts/list"},
    {0},
};
