/*
 * routes.c — the list of route tables and the lookup from (method, path) to
 * a route (routes.h).
 *
 * Adding a handler file: export a NULL-terminated array
 *     const tally_route tally_routes_<file>[] = {
 *         {TALLY_POST, "mlflow/runs/create", 1, 0, 0, 0, handle_create, "runs/create"},
 *         ...
 *         {0}
 *     };
 * (the terminator is the entry whose path is NULL) and add ONE line
 * X(tally_routes_<file>) to TALLY_ROUTE_TABLES below. Nothing else: the
 * lookup tables, the per-route /metrics series and the duplicate check are
 * built from that list.
 *
 * Lookup: at init, routes are split into four sets — exact and prefix, each
 * either API-relative ("mlflow/runs/get", mounted under /api/2.0/ and
 * /ajax-api/2.0/) or absolute ("/health"). Exact sets are sorted by path and
 * binary-searched (O(log n) strcmp per request); prefix sets are short and
 * scanned, longest prefix first.
 *
 * Invariants:
 *  (1) After tally_routes_init() succeeds the tables are immutable; lookups
 *      from any thread need no lock.
 *  (2) No two routes share a mount, a path and a method (init refuses).
 *  (3) Route indexes are dense, stable for the process, in table order.
 */
#include "routes.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One line per handler file (see the file comment). */
#define TALLY_ROUTE_TABLES(X)                                                              \
    X(tally_routes_ops) /* ops.c: /health, /version, /metrics */                           \
    X(tally_routes_experiments) /* api_experiments.c: experiments/... */                  \
    X(tally_routes_runs) /* api_runs.c: runs/... (not log-metric, log-batch) */            \
    X(tally_routes_metrics) /* api_metrics.c: log-metric, log-batch, metrics/... */         \
    X(tally_routes_native) /* native.c: tally/ingest, tally/query */                         \
    X(tally_routes_artifacts_list) /* api_artifacts_list.c: artifacts/list (§3.5) */         \
    X(tally_routes_log_model) /* api_log_model.c: runs/log-model (legacy) */                 \
    X(tally_routes_registry_models) /* api_registry_models.c: registered-models/... */       \
    X(tally_routes_registry_versions) /* api_registry_versions.c: model-versions/... */      \
    X(tally_routes_artifacts_proxy) /* api_artifacts_proxy.c: mlflow-artifacts/... (§3.6) */ \
    X(tally_routes_logged_models) /* api_logged_models.c: logged-models/..., runs/outputs */ \
    X(tally_routes_webhooks) /* api_webhooks.c: webhooks/... (mlflow-webhooks.md) */         \
    X(tally_routes_ui_static) /* ui_static.c: the web UI (/, /assets/, app pages) */         \
    X(tally_routes_run_summaries) /* api_run_summaries.c: tally/run-summaries (UI table) */  \
    X(tally_routes_auth) /* api_auth.c: users, permissions, tokens */                        \
    X(tally_routes_audit) /* api_audit.c: tally/audit/search */

#define TALLY_ROUTE_EXTERN_(name) extern const tally_route name[];
TALLY_ROUTE_TABLES(TALLY_ROUTE_EXTERN_)
#undef TALLY_ROUTE_EXTERN_

static const tally_route *const route_tables[] = {
#define TALLY_ROUTE_PTR_(name) name,
    TALLY_ROUTE_TABLES(TALLY_ROUTE_PTR_)
#undef TALLY_ROUTE_PTR_
};

#define API_PREFIX "/api/2.0/"
#define AJAX_PREFIX "/ajax-api/2.0/"

typedef struct entry {
    const char *path;          /* the route's path (relative for api routes) */
    size_t len;                /* strlen(path) */
    const tally_route *route;
    size_t index;              /* dense route index */
} entry;

typedef struct set {
    entry *v;
    size_t n;
} set;

enum { API_EXACT, API_PREFIX_SET, ABS_EXACT, ABS_PREFIX, N_SETS };

static set sets[N_SETS];
static const tally_route **all_routes; /* by index */
static size_t n_routes;
static int init_rc = -1;
static pthread_once_t init_once = PTHREAD_ONCE_INIT;

static int by_path(const void *a, const void *b)
{
    const entry *x = a, *y = b;
    int c = strcmp(x->path, y->path);
    if (c)
        return c;
    return x->index < y->index ? -1 : x->index > y->index;
}

/* Longest prefix first, so "/a/b/" wins over "/a/". */
static int by_len_desc(const void *a, const void *b)
{
    const entry *x = a, *y = b;
    if (x->len != y->len)
        return x->len > y->len ? -1 : 1;
    return by_path(a, b);
}

static void build(void)
{
    size_t n = 0;
    for (size_t t = 0; t < sizeof route_tables / sizeof route_tables[0]; t++)
        for (const tally_route *r = route_tables[t]; r->path; r++)
            n++;
    all_routes = calloc(n ? n : 1, sizeof *all_routes);
    for (int s = 0; s < N_SETS; s++)
        sets[s].v = calloc(n ? n : 1, sizeof(entry));
    if (!all_routes || !sets[0].v || !sets[1].v || !sets[2].v || !sets[3].v) {
        fprintf(stderr, "tally: out of memory building the route tables\n");
        return;
    }
    int bad = 0;
    for (size_t t = 0; t < sizeof route_tables / sizeof route_tables[0]; t++) {
        for (const tally_route *r = route_tables[t]; r->path; r++) {
            if (!r->fn || !r->methods || !r->name) {
                fprintf(stderr, "tally: route '%s' lacks a handler, methods or name\n", r->path);
                bad = 1;
            }
            if (!r->api_prefix && r->path[0] != '/') {
                fprintf(stderr, "tally: absolute route '%s' must start with '/'\n", r->path);
                bad = 1;
            }
            int s = r->api_prefix ? (r->prefix_match ? API_PREFIX_SET : API_EXACT)
                                  : (r->prefix_match ? ABS_PREFIX : ABS_EXACT);
            entry *e = &sets[s].v[sets[s].n++];
            e->path = r->path;
            e->len = strlen(r->path);
            e->route = r;
            e->index = n_routes;
            all_routes[n_routes++] = r;
        }
    }
    qsort(sets[API_EXACT].v, sets[API_EXACT].n, sizeof(entry), by_path);
    qsort(sets[ABS_EXACT].v, sets[ABS_EXACT].n, sizeof(entry), by_path);
    qsort(sets[API_PREFIX_SET].v, sets[API_PREFIX_SET].n, sizeof(entry), by_len_desc);
    qsort(sets[ABS_PREFIX].v, sets[ABS_PREFIX].n, sizeof(entry), by_len_desc);
    for (int s = 0; s < N_SETS; s++)
        for (size_t i = 0; i < sets[s].n; i++)
            for (size_t j = i + 1; j < sets[s].n && strcmp(sets[s].v[i].path, sets[s].v[j].path) == 0;
                 j++) {
                const tally_route *a = sets[s].v[i].route, *b = sets[s].v[j].route;
                /* Same set, same path: every api route is also under
                 * /ajax-api/, so overlapping methods always collide. */
                if (a->methods & b->methods) {
                    fprintf(stderr, "tally: routes '%s' and '%s' both serve path '%s'\n", a->name,
                            b->name, a->path);
                    bad = 1;
                }
            }
    init_rc = bad ? -1 : 0;
}

static void init_once_fn(void)
{
    build();
}

int tally_routes_init(void)
{
    pthread_once(&init_once, init_once_fn);
    return init_rc;
}

size_t tally_routes_count(void)
{
    tally_routes_init();
    return n_routes;
}

const char *tally_routes_name(size_t i)
{
    tally_routes_init();
    return i < n_routes ? all_routes[i]->name : "unmatched";
}

const tally_route *tally_routes_get(size_t i)
{
    tally_routes_init();
    return i < n_routes ? all_routes[i] : NULL;
}

static int method_ok(const tally_route *r, tally_method m)
{
    if (r->methods & (unsigned)m)
        return 1;
    return m == TALLY_HEAD && (r->methods & TALLY_GET);
}

/* Exact lookup of path in a sorted set; HEAD prefers an explicit HEAD route. */
static const entry *find_exact(const set *s, const char *path, tally_method m, int is_ajax,
                               int *known)
{
    size_t lo = 0, hi = s->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(s->v[mid].path, path) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    const entry *fallback = NULL;
    for (size_t i = lo; i < s->n && strcmp(s->v[i].path, path) == 0; i++) {
        const tally_route *r = s->v[i].route;
        if (r->ajax_only && !is_ajax)
            continue;
        *known = 1;
        if (r->methods & (unsigned)m)
            return &s->v[i];
        if (!fallback && method_ok(r, m))
            fallback = &s->v[i];
    }
    return fallback;
}

static const entry *find_prefix(const set *s, const char *path, tally_method m, int is_ajax,
                                int *known)
{
    for (size_t i = 0; i < s->n; i++) {
        const entry *e = &s->v[i];
        if (strncmp(path, e->path, e->len) != 0)
            continue;
        if (e->route->ajax_only && !is_ajax)
            continue;
        *known = 1;
        if (method_ok(e->route, m))
            return e;
    }
    return NULL;
}

int tally_route_find(tally_method m, const char *path, tally_route_match *out)
{
    memset(out, 0, sizeof *out);
    out->sub_path = path;
    if (tally_routes_init() != 0) {
        out->index = n_routes;
        return 0;
    }
    out->index = n_routes;
    const entry *e = NULL;
    int known = 0;
    const char *rel = NULL;
    if (strncmp(path, API_PREFIX, sizeof API_PREFIX - 1) == 0) {
        rel = path + sizeof API_PREFIX - 1;
    } else if (strncmp(path, AJAX_PREFIX, sizeof AJAX_PREFIX - 1) == 0) {
        rel = path + sizeof AJAX_PREFIX - 1;
        out->is_ajax = 1;
    }
    if (rel) {
        e = find_exact(&sets[API_EXACT], rel, m, out->is_ajax, &known);
        if (e) {
            out->sub_path = rel;
        } else if ((e = find_prefix(&sets[API_PREFIX_SET], rel, m, out->is_ajax, &known))) {
            out->sub_path = rel + e->len;
        }
    }
    if (!e) {
        e = find_exact(&sets[ABS_EXACT], path, m, out->is_ajax, &known);
        if (e)
            out->sub_path = path;
        else if ((e = find_prefix(&sets[ABS_PREFIX], path, m, out->is_ajax, &known)))
            out->sub_path = path + e->len;
    }
    out->path_known = known && !e;
    if (!e)
        return 0;
    out->route = e->route;
    out->index = e->index;
    return 1;
}
