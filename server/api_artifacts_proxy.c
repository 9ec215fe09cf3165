/*
 * api_artifacts_proxy.c — MLflow's artifact proxy `mlflow-artifacts`
 * (mlflow-rest-api.md §3.6) over the local artifact root, plus the UI's
 * legacy download `GET /get-artifact` and upload
 * `POST /ajax-api/2.0/mlflow/upload-artifact` (§1.1).
 *
 *   PUT    mlflow-artifacts/artifacts/<path>   raw body streamed to disk
 *   GET    mlflow-artifacts/artifacts/<path>   file streamed from its fd
 *   GET    mlflow-artifacts/artifacts?path=d   one level, basenames
 *   DELETE mlflow-artifacts/artifacts/<path>   recursive
 *   POST   mlflow-artifacts/mpu/{create,complete,abort}/<path>   501
 *
 * Invariants:
 *  (1) Every path goes through tally_artifact_path_check (§4.8) and then
 *      artifact_fs.c, whose walks never follow a symlink: an unsafe path
 *      or a symlink on the way is 400 INVALID_PARAMETER_VALUE "Invalid
 *      path", and nothing outside the root is read, written or removed.
 *  (2) Bodies are never held in memory: uploads go piece by piece to a
 *      temporary file committed by rename (artifact_fs.h), downloads are
 *      sent from the file descriptor by libmicrohttpd.
 *  (3) An upload that does not complete (client gone, error, server
 *      stopping) leaves nothing behind; a completed one replaces the file
 *      atomically, before the 200 is sent; it is fsync'd before the 200
 *      (artifact_fsync always) or by the background syncer right after
 *      (background, artifact_sync.h).
 *  (4) Downloads are attachments with X-Content-Type-Options: nosniff and
 *      a Content-Type from the extension (MLflow's text list, HTML served
 *      as text/plain), so an artifact can never run as a page of ours.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "api_error.h"
#include "api_tracking.h"
#include "artifact_fs.h"
#include "artifact_path.h"

#define AJAX_UPLOAD_MAX ((uint64_t)10 * 1024 * 1024) /* §6: ajax upload-artifact <= 10 MB */

/* ------------------------------------------------------------------------ */
/* Errors                                                                     */
/* ------------------------------------------------------------------------ */

static void invalid_path(tally_resp *resp)
{
    tally_resp_error(resp, TALLY_API_INVALID_PARAMETER_VALUE, "Invalid path");
}

/* A negative errno from artifact_fs.c as MLflow's error. what names the
 * artifact for the message. */
static void fs_error(tally_resp *resp, int rc, const char *what)
{
    switch (-rc) {
    case EINVAL:
    case ELOOP:
    case ENAMETOOLONG:
        invalid_path(resp);
        break;
    case ENOENT:
        tally_resp_error(resp, TALLY_API_RESOURCE_DOES_NOT_EXIST, "No such artifact: '%.200s'", what);
        break;
    case EISDIR:
        tally_resp_error(resp, TALLY_API_INVALID_PARAMETER_VALUE,
                         "Artifact path '%.200s' is a directory", what);
        break;
    case ENOTDIR:
    case EEXIST:
        tally_resp_error(resp, TALLY_API_INVALID_PARAMETER_VALUE,
                         "A parent of artifact path '%.200s' is a file", what);
        break;
    case ENOSPC:
    case EDQUOT:
        tally_resp_error(resp, TALLY_API_TEMPORARILY_UNAVAILABLE,
                         "No space left on the artifact store");
        tally_resp_header(resp, "Retry-After", "5");
        break;
    case ENOMEM:
        tally_api_oom(resp);
        break;
    default:
        tally_resp_error(resp, TALLY_API_INTERNAL_ERROR, "Artifact store error: %s", strerror(-rc));
        break;
    }
}

/* 1 if a segment of the normalised path rel is reserved for uploads in
 * progress (artifact_fs.h (3)). */
static int reserved_name(const char *rel)
{
    static const char pre[] = TALLY_ARTIFACT_TMP_PREFIX;
    for (const char *p = rel; p; p = strchr(p, '/') ? strchr(p, '/') + 1 : NULL)
        if (strncmp(p, pre, sizeof pre - 1) == 0)
            return 1;
    return 0;
}

/* The checked, normalised form of a client path into rel; 400 on failure. */
static int checked_path(const char *path, char *rel, size_t cap, tally_resp *resp)
{
    if (tally_artifact_path_check(path, rel, cap) != 0 || reserved_name(rel)) {
        invalid_path(resp);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Downloads                                                                  */
/* ------------------------------------------------------------------------ */

/* MLflow's _guess_mime_type: its list of text extensions (and extension-less
 * names such as MLmodel) is text/plain; then the usual types by extension;
 * else application/octet-stream. */
static const char *mime_type(const char *name)
{
    static const char *const text[] = {"txt", "log", "err", "cfg", "conf", "cnf", "cf", "ini",
                                       "properties", "prop", "hocon", "toml", "yaml", "yml",
                                       "xml", "json", "js", "py", "py3", "csv", "tsv", "md",
                                       "rst", "MLmodel", "mlproject"};
    static const struct {
        const char *ext, *type;
    } known[] = {
        {"html", "text/plain"}, /* never served as a page (invariant 4) */
        {"htm", "text/plain"},  {"png", "image/png"},         {"jpg", "image/jpeg"},
        {"jpeg", "image/jpeg"}, {"gif", "image/gif"},         {"svg", "image/svg+xml"},
        {"bmp", "image/bmp"},   {"webp", "image/webp"},       {"pdf", "application/pdf"},
        {"zip", "application/zip"}, {"gz", "application/gzip"}, {"tar", "application/x-tar"},
        {"parquet", "application/octet-stream"},
    };
    const char *dot = strrchr(name, '.');
    const char *ext = dot ? dot + 1 : name;
    for (size_t i = 0; i < sizeof text / sizeof text[0]; i++)
        if (strcmp(ext, text[i]) == 0)
            return "text/plain";
    if (!dot)
        return "application/octet-stream";
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (strcasecmp(ext, known[i].ext) == 0)
            return known[i].type;
    return "application/octet-stream";
}

/* Content-Disposition for basename: an ASCII fallback with anything that
 * could break the header replaced, plus the exact name percent-encoded
 * (RFC 6266 filename*). Long names are cut so the header always fits. */
static void content_disposition(tally_resp *resp, const char *basename)
{
    char plain[96], enc[300];
    size_t o = 0, e = 0;
    for (const unsigned char *p = (const unsigned char *)basename; *p && o + 1 < sizeof plain; p++)
        plain[o++] = (*p >= 0x20 && *p < 0x7f && *p != '"' && *p != '\\' && *p != ';') ? (char)*p
                                                                                         : '_';
    plain[o] = 0;
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)basename; *p && e + 4 < sizeof enc; p++) {
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
            strchr("!#$&+-.^_`|~", *p)) {
            enc[e++] = (char)*p;
        } else {
            enc[e++] = '%';
            enc[e++] = hex[*p >> 4];
            enc[e++] = hex[*p & 15];
        }
    }
    enc[e] = 0;
    char value[440];
    snprintf(value, sizeof value, "attachment; filename=\"%s\"; filename*=UTF-8''%s", plain, enc);
    tally_resp_header(resp, "Content-Disposition", value);
}

/* Sends the file at rel (relative to the root) as an attachment. */
static void send_file(tally_server *srv, const char *rel, tally_resp *resp)
{
    uint64_t size = 0;
    int fd = tally_artifact_open_file(srv->cfg.artifact_root, rel, &size);
    if (fd < 0) {
        if (fd == -EISDIR || fd == -ENOTDIR)
            fd = -ENOENT; /* a directory has no bytes to download */
        fs_error(resp, fd, rel);
        return;
    }
    const char *base = strrchr(rel, '/');
    base = base ? base + 1 : rel;
    resp->status = 200;
    resp->content_type = mime_type(base);
    resp->fd = fd;
    resp->fd_off = 0;
    resp->fd_len = size;
    content_disposition(resp, base);
    tally_resp_header(resp, "X-Content-Type-Options", "nosniff");
}

/* ------------------------------------------------------------------------ */
/* Listing                                                                    */
/* ------------------------------------------------------------------------ */

/* {"files":[{path, is_dir, file_size}]} of directory rel; prefix is put
 * before each name ("" for basenames). Omits "files" when empty. */
static void send_listing(tally_server *srv, const char *rel, const char *prefix,
                         const char *root_uri, tally_resp *resp)
{
    tally_artifact_entry *v = NULL;
    size_t n = 0;
    int rc = tally_artifact_list(srv->cfg.artifact_root, rel, &v, &n);
    if (rc < 0) {
        fs_error(resp, rc, rel);
        return;
    }
    tally_json j;
    tally_api_json_begin(&j, resp);
    if (root_uri)
        tally_json_kv_string(&j, "root_uri", root_uri);
    if (n) {
        tally_json_key(&j, "files");
        tally_json_array_open(&j);
        for (size_t i = 0; i < n; i++) {
            tally_json_object_open(&j);
            tally_json_key(&j, "path");
            if (*prefix) {
                tally_buf full = {0};
                tally_buf_printf(&full, "%s/%s", prefix, v[i].name);
                tally_json_string(&j, tally_buf_failed(&full) ? "" : full.data);
                tally_buf_free(&full);
            } else {
                tally_json_string(&j, v[i].name);
            }
            tally_json_kv_bool(&j, "is_dir", v[i].is_dir);
            if (!v[i].is_dir)
                tally_json_kv_int(&j, "file_size", (int64_t)v[i].size);
            tally_json_object_close(&j);
        }
        tally_json_array_close(&j);
    }
    tally_json_object_close(&j);
    tally_artifact_list_free(v, n);
    tally_api_ok_json(resp);
}

/* GET mlflow-artifacts/artifacts?path=<dir> */
static void handle_list(tally_server *srv, const tally_req *req, tally_resp *resp)
{
    TALLY_API_OPEN_PARAMS(p, req, resp);
    const char *path = NULL;
    char rel[4096];
    if (tally_params_string(&p, "path", &path, resp) >= 0 &&
        checked_path(path, rel, sizeof rel, resp) == 0)
        send_listing(srv, rel, "", NULL, resp);
    tally_params_close(&p);
}

/* ------------------------------------------------------------------------ */
/* Uploads                                                                    */
/* ------------------------------------------------------------------------ */

typedef struct put_ctx {
    tally_artifact_upload *u;
    tally_artifact_syncer *syncer; /* NULL: fsync before the 200 (artifact_fsync always) */
    uint64_t limit;           /* bytes allowed, 0 = no limit */
    char rel[512];            /* for messages */
} put_ctx;

static int put_write(void *ctx, const char *data, size_t len, tally_resp *resp)
{
    put_ctx *c = ctx;
    if (c->limit && tally_artifact_upload_size(c->u) + len > c->limit) {
        tally_resp_error(resp, TALLY_API_INVALID_PARAMETER_VALUE,
                         "Artifact size is too large. Max size is %llu bytes.",
                         (unsigned long long)c->limit);
        return -1;
    }
    int rc = tally_artifact_upload_write(c->u, data, len);
    if (rc) {
        fs_error(resp, rc, c->rel);
        return -1;
    }
    return 0;
}

static void put_finish(void *ctx, int complete, tally_resp *resp)
{
    put_ctx *c = ctx;
    if (!complete) {
        tally_artifact_upload_abort(c->u);
    } else {
        int rc = tally_artifact_upload_commit(c->u, c->syncer);
        if (rc)
            fs_error(resp, rc, c->rel);
        else
            tally_api_ok_empty(resp);
    }
    free(c);
}

/* Starts streaming the body of req into rel (relative to the root). */
static void start_upload(tally_server *srv, const tally_req *req, const char *rel, uint64_t limit,
                         tally_resp *resp)
{
    if (!req->sink) {
        tally_resp_error(resp, TALLY_API_INTERNAL_ERROR, "upload route is not streaming");
        return;
    }
    if (!*rel) {
        tally_resp_error(resp, TALLY_API_INVALID_PARAMETER_VALUE, "An artifact path is required");
        return;
    }
    put_ctx *c = calloc(1, sizeof *c);
    if (!c) {
        tally_api_oom(resp);
        return;
    }
    snprintf(c->rel, sizeof c->rel, "%s", rel);
    c->limit = limit;
    c->syncer = srv->artifact_syncer;
    int rc = tally_artifact_upload_begin(srv->cfg.artifact_root, rel,
                                         srv->cfg.artifact_direct_writes, &c->u);
    if (rc) {
        free(c);
        fs_error(resp, rc, rel);
        return;
    }
    req->sink->write = put_write;
    req->sink->finish = put_finish;
    req->sink->ctx = c;
}

/* PUT mlflow-artifacts/artifacts/<path> (streaming route). */
static void handle_put(tally_server *srv, const tally_req *req, tally_resp *resp)
{
    char rel[4096];
    if (checked_path(req->sub_path, rel, sizeof rel, resp) == 0)
        start_upload(srv, req, rel, 0, resp);
}

/* ------------------------------------------------------------------------ */
/* GET and DELETE of one path                                                 */
/* ------------------------------------------------------------------------ */

static void handle_path(tally_server *srv, const tally_req *req, tally_resp *resp)
{
    char rel[4096];
    if (checked_path(req->sub_path, rel, sizeof rel, resp) != 0)
        return;
    if (req->method == TALLY_DELETE) {
        if (!*rel) {
            tally_resp_error(resp, TALLY_API_INVALID_PARAMETER_VALUE,
                             "Refusing to delete the whole artifact root");
            return;
        }
        int rc = tally_artifact_remove(srv->cfg.artifact_root, rel);
        if (rc)
            fs_error(resp, rc, rel);
        else
            tally_api_ok_empty(resp);
        return;
    }
    if (!*rel) { /* "mlflow-artifacts/artifacts/": the root's listing */
        send_listing(srv, "", "", NULL, resp);
        return;
    }
    send_file(srv, rel, resp);
}

/* POST mlflow-artifacts/mpu/{create,complete,abort}/<path> */
static void handle_mpu(tally_server *srv, const tally_req *req, tally_resp *resp)
{
    (void)srv;
    char rel[4096];
    if (checked_path(req->sub_path, rel, sizeof rel, resp) != 0)
        return;
    tally_resp_error(resp, TALLY_API_NOT_IMPLEMENTED,
                     "Multipart upload is not supported for the current artifact repository "
                     "(Tally's local artifact store): upload with PUT instead");
}

/* ------------------------------------------------------------------------ */
/* Legacy UI endpoints: get-artifact and upload-artifact                      */
/* ------------------------------------------------------------------------ */

/* The root-relative path of a run's artifact: 0 with rel filled, or -1
 * with resp filled. */
static int run_artifact_rel(tally_server *srv, tally_params *p, char *rel, size_t cap,
                            tally_resp *resp)
{
    const char *run_id, *path = NULL;
    if (tally_api_require_run_id(p, &run_id, resp) < 0 ||
        tally_params_string(p, "path", &path, resp) < 0)
        return -1;
    char checked[4096];
    if (checked_path(path, checked, sizeof checked, resp) != 0)
        return -1;
    tally_arena *a = tally_arena_new();
    if (!a) {
        tally_api_oom(resp);
        return -1;
    }
    tally_run run;
    char err[512] = "";
    int rc = tally_store_get_run(srv->store, run_id, a, &run, err, sizeof err);
    if (rc) {
        tally_api_store_error(resp, rc, err);
        tally_arena_free(a);
        return -1;
    }
    rc = tally_artifact_uri_rel(run.info.artifact_uri, checked, rel, cap);
    if (rc == 1)
        tally_resp_error(resp, TALLY_API_RESOURCE_DOES_NOT_EXIST,
                         "The run's artifacts (%.200s) are not stored by this server",
                         run.info.artifact_uri);
    else if (rc < 0)
        invalid_path(resp);
    tally_arena_free(a);
    return rc == 0 ? 0 : -1;
}

/* GET /get-artifact?run_id=&path= (run_uuid accepted): the UI's download. */
static void handle_get_artifact(tally_server *srv, const tally_req *req, tally_resp *resp)
{
    TALLY_API_OPEN_PARAMS(p, req, resp);
    char rel[8192];
    if (run_artifact_rel(srv, &p, rel, sizeof rel, resp) == 0)
        send_file(srv, rel, resp);
    tally_params_close(&p);
}

/* POST /ajax-api/2.0/mlflow/upload-artifact?run_uuid=&path= (raw body,
 * streaming, at most 10 MB). */
static void handle_upload_artifact(tally_server *srv, const tally_req *req, tally_resp *resp)
{
    /* The body is the file: parameters come from the query string only. */
    tally_req q = *req;
    q.method = TALLY_GET;
    q.body = "";
    q.body_len = 0;
    q.content_type = NULL;
    tally_params p;
    if (tally_params_open(&p, &q, resp) != 0)
        return;
    char rel[8192];
    if (run_artifact_rel(srv, &p, rel, sizeof rel, resp) == 0)
        start_upload(srv, req, rel, AJAX_UPLOAD_MAX, resp);
    tally_params_close(&p);
}

const tally_route tally_routes_artifacts_proxy[] = {
    {TALLY_GET, "mlflow-artifacts/artifacts", 1, 0, 0, 0, handle_list, "mlflow-artifacts/list"},
    {TALLY_GET | TALLY_DELETE, "mlflow-artifacts/artifacts/", 1, 0, 1, 0, handle_path,
     "mlflow-artifacts/artifacts"},
    {TALLY_PUT, "mlflow-artifacts/artifacts/", 1, 0, 1, 1, handle_put, "mlflow-artifacts/upload"},
    {TALLY_POST, "mlflow-artifacts/mpu/create/", 1, 0, 1, 0, handle_mpu,
     "mlflow-artifacts/mpu/create"},
    {TALLY_POST, "mlflow-artifacts/mpu/complete/", 1, 0, 1, 0, handle_mpu,
     "mlflow-artifacts/mpu/complete"},
    {TALLY_POST, "mlflow-artifacts/mpu/abort/", 1, 0, 1, 0, handle_mpu,
     "mlflow-artifacts/mpu/abort"},
    {TALLY_GET, "/get-artifact", 0, 0, 0, 0, handle_get_artifact, "get-artifact"},
    {TALLY_POST, "mlflow/upload-artifact", 1, 1, 0, 1, handle_upload_artifact, "upload-artifact"},
    {0},
};
