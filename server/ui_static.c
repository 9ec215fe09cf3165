/*
 * ui_static.c — serves the embedded web UI (ui_assets.h) on the API's port:
 *
 *   GET /                      the app (index.html)
 *   GET /experiments..., /runs/..., /compare..., /models...
 *                              the app too: its own pages, so that deep
 *                              links and reloads work (the app routes on
 *                              the path; see ui/src/router.js)
 *   GET /assets/<file>         the bundle's files (hashed names)
 *
 * Every other path keeps answering 404 ENDPOINT_NOT_FOUND JSON, so API
 * clients never receive HTML by mistake.
 *
 * Caching: hashed assets are immutable (Cache-Control: a year); index.html
 * is revalidated on every load (no-cache + ETag, 304 on If-None-Match), so a
 * new binary's UI is picked up at once. Compression: the build keeps a
 * brotli and a gzip copy of each file when it pays; the one the client
 * accepts is sent as is (Content-Encoding, Vary: Accept-Encoding). Nothing
 * is compressed at request time.
 *
 * A build without the UI (-DTALLY_BUILD_UI=OFF) answers the app's pages with
 * a short text saying so.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api_error.h"
#include "app.h"
#include "ui_assets.h"

static const tally_ui_asset *find_asset(const char *path)
{
    size_t lo = 0, hi = tally_ui_n_assets;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(tally_ui_assets[mid].path, path);
        if (c == 0)
            return &tally_ui_assets[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* Whether an Accept-Encoding header accepts coding (a token, not q=0). */
static int accepts(const char *header, const char *coding)
{
    if (!header)
        return 0;
    size_t n = strlen(coding);
    const char *p = header;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        const char *tok = p;
        while (*p && *p != ',' && *p != ';' && *p != ' ' && *p != '\t')
            p++;
        size_t len = (size_t)(p - tok);
        int match = (len == n && strncasecmp(tok, coding, n) == 0) || (len == 1 && *tok == '*');
        /* parameters up to the next comma: q=0 (0.0, 0.000) refuses */
        int zero = 0;
        while (*p && *p != ',') {
            if ((*p == 'q' || *p == 'Q') && p[1] == '=')
                zero = strtod(p + 2, NULL) == 0.0;
            p++;
        }
        if (match && !zero)
            return 1;
    }
    return 0;
}

/* Whether If-None-Match names etag (or is "*"). */
static int not_modified(const tally_req *req, const char *etag)
{
    const char *inm = tally_req_header(req, "If-None-Match");
    if (!inm)
        return 0;
    return strstr(inm, etag) != NULL || strcmp(inm, "*") == 0;
}

static void serve(const tally_req *req, tally_resp *resp, const tally_ui_asset *a)
{
    tally_resp_header(resp, "ETag", a->etag);
    tally_resp_header(resp, "Cache-Control",
                      a->immutable ? "public, max-age=31536000, immutable" : "no-cache");
    if (a->gz || a->br)
        tally_resp_header(resp, "Vary", "Accept-Encoding");
    tally_resp_header(resp, "X-Content-Type-Options", "nosniff");
    resp->content_type = a->content_type;
    tally_buf_reset(&resp->body);
    if (not_modified(req, a->etag)) {
        resp->status = 304;
        return;
    }
    const char *ae = tally_req_header(req, "Accept-Encoding");
    const unsigned char *data = a->raw;
    size_t len = a->raw_len;
    if (a->br && accepts(ae, "br")) {
        data = a->br;
        len = a->br_len;
        tally_resp_header(resp, "Content-Encoding", "br");
    } else if (a->gz && accepts(ae, "gzip")) {
        data = a->gz;
        len = a->gz_len;
        tally_resp_header(resp, "Content-Encoding", "gzip");
    }
    tally_buf_append(&resp->body, data, len);
    resp->status = 200;
}

static void not_found(const tally_req *req, tally_resp *resp)
{
    tally_resp_error(resp, TALLY_API_ENDPOINT_NOT_FOUND, "No endpoint serves %s %s.",
                     req->method == TALLY_HEAD ? "HEAD" : "GET", req->path);
}

static void handle_page(tally_server *srv, const tally_req *req, tally_resp *resp)
{
    (void)srv;
    const tally_ui_asset *a = find_asset("/index.html");
    if (!a) {
        tally_buf_reset(&resp->body);
        tally_buf_puts(&resp->body, "This tally was built without its web UI "
                                    "(-DTALLY_BUILD_UI=OFF, or Node.js was missing). "
                                    "The API is served under /api/2.0/.\n");
        resp->content_type = "text/plain; charset=utf-8";
        resp->status = 200;
        return;
    }
    serve(req, resp, a);
}

static void handle_asset(tally_server *srv, const tally_req *req, tally_resp *resp)
{
    (void)srv;
    const tally_ui_asset *a = find_asset(req->path);
    if (!a) {
        not_found(req, resp);
        return;
    }
    serve(req, resp, a);
}

const tally_route tally_routes_ui_static[] = {
    {TALLY_GET, "/", 0, 0, 0, 0, handle_page, "ui/root"},
    {TALLY_GET, "/experiments", 0, 0, 1, 0, handle_page, "ui/experiments"},
    {TALLY_GET, "/runs/", 0, 0, 1, 0, handle_page, "ui/runs"},
    {TALLY_GET, "/compare", 0, 0, 1, 0, handle_page, "ui/compare"},
    {TALLY_GET, "/models", 0, 0, 1, 0, handle_page, "ui/models"},
    {TALLY_GET, "/assets/", 0, 0, 1, 0, handle_asset, "ui/assets"},
    {0, NULL, 0, 0, 0, 0, NULL, NULL},
};
