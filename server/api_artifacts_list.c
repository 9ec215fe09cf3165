/*
 * api_artifacts_list.c — GET mlflow/artifacts/list (mlflow-rest-api.md §3.5):
 * one level of a run's artifacts under the local artifact root.
 *
 * Invariants:
 *  (1) Paths go through artifact_path.c (§4.8) and are listed by
 *      artifact_fs.c, which walks from the root with O_NOFOLLOW: unsafe
 *      paths and symlinks on the way get 400 "Invalid path", and nothing
 *      outside the artifact root is ever read.
 *  (2) files[].path is relative to the run's artifact root ("model/MLmodel"),
 *      sorted by name; directories have no file_size.
 *  (3) Listing a file, a missing directory, or a run whose artifact URI is
 *      not served from this root returns just root_uri, no files (§9.11).
 *  (4) Symlinks are never followed or listed, and in-progress uploads
 *      (names starting with ".tally-") are hidden.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_error.h"
#include "api_tracking.h"
#include "artifact_fs.h"
#include "artifact_path.h"

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
    char dir[8192];
    tally_artifact_entry *v = NULL;
    size_t n = 0;
    rc = tally_artifact_uri_rel(run.info.artifact_uri, rel, dir, sizeof dir);
    if (rc < 0) {
        tally_resp_error(resp, TALLY_API_INVALID_PARAMETER_VALUE, "Invalid path");
        goto out;
    }
    if (rc == 0 && (rc = tally_artifact_list(srv->cfg.artifact_root, dir, &v, &n)) < 0) {
        if (rc == -ELOOP || rc == -EINVAL || rc == -ENAMETOOLONG)
            tally_resp_error(resp, TALLY_API_INVALID_PARAMETER_VALUE, "Invalid path");
        else
            tally_resp_error(resp, TALLY_API_INTERNAL_ERROR, "cannot read the artifact directory");
        goto out;
    }
    tally_json j;
    tally_api_json_begin(&j, resp);
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
    tally_artifact_list_free(v, n);
    resp->status = 200;
out:
    tally_arena_free(a);
    tally_params_close(&p);
}

const tally_route tally_routes_artifacts_list[] = {
    {TALLY_GET, "mlflow/artifacts/list", 1, 0, 0, 0, handle_list, "artifacts/list"},
    {0},
};
