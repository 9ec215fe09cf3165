/*
 * suite_crash.c — the `crash` suite of tally-bench: kill -9 under load,
 * ROUNDS times (100; --quick 10), and a check after every restart that each
 * acknowledged write is there (issue 8: "acknowledged writes lost across 100
 * kill -9 restarts under load = 0").
 *
 * Each round starts `tally serve` on the same data directory, runs one
 * writer thread per kind of write — metrics (runs/log-batch, 50 points),
 * params (runs/log-parameter), tags (runs/set-tag), native ingest frames
 * (tally/ingest, 200 points), registry changes (model-versions/create with
 * a tag), artifact files (PUT through the mlflow-artifacts proxy) — each on its own keep-alive connection as fast
 * as the server answers, sends SIGKILL after a random 100-700 ms, restarts,
 * and reads back through the API every write acknowledged (HTTP 200) in any
 * round so far. A write in flight at the kill was not acknowledged and is
 * not checked; its index is never reused.
 *
 * Figures: acked_writes_lost (must be 0; and acked_writes_lost_<kind>
 * per kind), restarts, acked_writes,
 * restart_ready_ms_p50 (from exec to accepting again: recovery included).
 *
 * Adding a kind is one entry in KINDS: a
 * write function (one request for index i; the HTTP status) and a check
 * function (how many of the acknowledged indexes are missing).
 *
 * Invariants:
 *  (1) An index enters a kind's acknowledged set only after its 200 was
 *      read in full.
 *  (2) Every round checks every acknowledged write of every round.
 */
#include "bench.h"
#include "bench_http.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#define ROUNDS 100
#define ROUNDS_QUICK 10
#define METRIC_POINTS 50
#define NATIVE_POINTS 200

typedef struct kind kind;

typedef struct acked_set {
    int64_t *idx;
    size_t n, cap;
} acked_set;

struct kind {
    const char *name;
    int (*write)(kind *k, bench_hconn *h, int64_t i);
    int64_t (*check)(kind *k, bench_hconn *h);
    char run[64];
    int64_t next;        /* next index to write (never reused) */
    acked_set acked;
    /* registry only: the version number answered for index i (0: none),
     * the highest version present at the last restart, and versions
     * answered at or below it (numbers handed out twice) */
    int64_t *version;
    size_t version_cap;
    int64_t floor;
    int64_t reused;
};

static void acked_add(acked_set *s, int64_t i)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 1024;
        s->idx = realloc(s->idx, s->cap * sizeof *s->idx);
        if (!s->idx)
            abort();
    }
    s->idx[s->n++] = i;
}

/* --- metrics and native ingest: points read back through get-history ------ */

static int write_metrics(kind *k, bench_hconn *h, int64_t i)
{
    char body[8192];
    int n = snprintf(body, sizeof body, "{\"run_id\":\"%s\",\"metrics\":[", k->run);
    for (int j = 0; j < METRIC_POINTS; j++) {
        int64_t s = i * METRIC_POINTS + j;
        n += snprintf(body + n, sizeof body - (size_t)n,
                      "%s{\"key\":\"m\",\"value\":%.17g,\"timestamp\":%lld,\"step\":%lld}",
                      j ? "," : "", (double)s * 0.25, 1700000000000LL + (long long)s, (long long)s);
    }
    n += snprintf(body + n, sizeof body - (size_t)n, "]}");
    return bench_hreq(h, "POST", "/api/2.0/mlflow/runs/log-batch", NULL, body, (size_t)n);
}

static int write_native(kind *k, bench_hconn *h, int64_t i)
{
    int64_t st[NATIVE_POINTS], ts[NATIVE_POINTS];
    double v[NATIVE_POINTS];
    for (int j = 0; j < NATIVE_POINTS; j++) {
        st[j] = i * NATIVE_POINTS + j;
        ts[j] = 1700000000000LL + st[j];
        v[j] = (double)st[j] * 0.5;
    }
    uint8_t *f;
    size_t len;
    if (bench_frame_one(k->run, "n", NATIVE_POINTS, st, ts, v, &f, &len) != 0)
        return -1;
    int rc = bench_hreq(h, "POST", "/api/2.0/tally/ingest", "application/octet-stream", f, len);
    free(f);
    return rc;
}

/* Values of steps [0, max_step] of run/key into vals (NaN where absent). */
static int read_history(bench_hconn *h, const char *run, const char *key, double *vals,
                        int64_t max_step)
{
    for (int64_t s = 0; s <= max_step; s++)
        vals[s] = __builtin_nan("");
    char token[512] = "";
    for (;;) {
        char path[1024];
        snprintf(path, sizeof path,
                 "/api/2.0/mlflow/metrics/get-history?run_id=%s&metric_key=%s&max_results=25000%s%s",
                 run, key, *token ? "&page_token=" : "", token);
        if (bench_hreq(h, "GET", path, NULL, NULL, 0) != 200)
            return -1;
        cJSON *j = cJSON_Parse(bench_hbody(h));
        if (!j)
            return -1;
        const cJSON *m;
        cJSON_ArrayForEach(m, cJSON_GetObjectItem(j, "metrics"))
        {
            const cJSON *s = cJSON_GetObjectItem(m, "step"), *v = cJSON_GetObjectItem(m, "value");
            if (cJSON_IsNumber(s) && cJSON_IsNumber(v) && s->valuedouble >= 0 &&
                s->valuedouble <= (double)max_step)
                vals[(int64_t)s->valuedouble] = v->valuedouble;
        }
        const cJSON *t = cJSON_GetObjectItem(j, "next_page_token");
        token[0] = 0;
        if (cJSON_IsString(t) && *t->valuestring && strlen(t->valuestring) < sizeof token)
            snprintf(token, sizeof token, "%s", t->valuestring);
        cJSON_Delete(j);
        if (!*token)
            return 0;
    }
}

static int64_t check_points(kind *k, bench_hconn *h, const char *key, int per, double scale)
{
    int64_t max_step = k->next * per;
    double *vals = malloc(((size_t)max_step + 1) * sizeof *vals);
    if (!vals || read_history(h, k->run, key, vals, max_step) != 0) {
        free(vals);
        return -1;
    }
    int64_t missing = 0;
    for (size_t a = 0; a < k->acked.n; a++) {
        int64_t i = k->acked.idx[a];
        for (int j = 0; j < per; j++) {
            int64_t s = i * per + j;
            if (vals[s] != (double)s * scale) {
                missing++;
                break;
            }
        }
    }
    free(vals);
    return missing;
}

static int64_t check_metrics(kind *k, bench_hconn *h)
{
    return check_points(k, h, "m", METRIC_POINTS, 0.25);
}

static int64_t check_native(kind *k, bench_hconn *h)
{
    return check_points(k, h, "n", NATIVE_POINTS, 0.5);
}

/* --- params and tags: read back through runs/get --------------------------- */

static int write_param(kind *k, bench_hconn *h, int64_t i)
{
    char body[512];
    int n = snprintf(body, sizeof body, "{\"run_id\":\"%s\",\"key\":\"p%lld\",\"value\":\"v%lld\"}",
                     k->run, (long long)i, (long long)i);
    return bench_hreq(h, "POST", "/api/2.0/mlflow/runs/log-parameter", NULL, body, (size_t)n);
}

static int write_tag(kind *k, bench_hconn *h, int64_t i)
{
    char body[512];
    int n = snprintf(body, sizeof body, "{\"run_id\":\"%s\",\"key\":\"t%lld\",\"value\":\"tag%lld\"}",
                     k->run, (long long)i, (long long)i);
    return bench_hreq(h, "POST", "/api/2.0/mlflow/runs/set-tag", NULL, body, (size_t)n);
}

/* Missing acknowledged entries of the run's `field` ("params" or "tags"),
 * whose keys are <prefix><i> with value <vprefix><i>. */
static int64_t check_kv(kind *k, bench_hconn *h, const char *field, char prefix, const char *vprefix)
{
    char path[256];
    snprintf(path, sizeof path, "/api/2.0/mlflow/runs/get?run_id=%s", k->run);
    if (bench_hreq(h, "GET", path, NULL, NULL, 0) != 200)
        return -1;
    cJSON *j = cJSON_Parse(bench_hbody(h));
    if (!j)
        return -1;
    uint8_t *ok = calloc((size_t)k->next + 1, 1);
    const cJSON *e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "run"), "data"), field))
    {
        const cJSON *key = cJSON_GetObjectItem(e, "key"), *val = cJSON_GetObjectItem(e, "value");
        if (!cJSON_IsString(key) || !cJSON_IsString(val) || key->valuestring[0] != prefix)
            continue;
        long long i = atoll(key->valuestring + 1);
        char want[64];
        snprintf(want, sizeof want, "%s%lld", vprefix, i);
        if (i >= 0 && i <= k->next && strcmp(val->valuestring, want) == 0)
            ok[i] = 1;
    }
    cJSON_Delete(j);
    int64_t missing = 0;
    for (size_t a = 0; a < k->acked.n; a++)
        missing += !ok[k->acked.idx[a]];
    free(ok);
    return missing;
}

static int64_t check_params(kind *k, bench_hconn *h) { return check_kv(k, h, "params", 'p', "v"); }
static int64_t check_tags(kind *k, bench_hconn *h) { return check_kv(k, h, "tags", 't', "tag"); }

/* --- registry: one model version per write ----------------------------------
 * model-versions/create of REGISTRY_MODEL with source s3://bucket/<i> and tag
 * idx=<i>. Checked through one model-versions/search: every acknowledged
 * version is there with its number, source and tag; the versions present
 * are exactly 1..max (version = 1 + max, never reused, and nothing is
 * deleted here, so no gap); no number was acknowledged twice; a version
 * acknowledged after a restart is above every version present then. */

#define REGISTRY_MODEL "crash-model"

static int write_registry(kind *k, bench_hconn *h, int64_t i)
{
    char body[512];
    int n = snprintf(body, sizeof body,
                     "{\"name\":\"" REGISTRY_MODEL "\",\"source\":\"s3://bucket/%lld\","
                     "\"tags\":[{\"key\":\"idx\",\"value\":\"%lld\"}]}",
                     (long long)i, (long long)i);
    int64_t floor = k->floor;
    int st = bench_hreq(h, "POST", "/api/2.0/mlflow/model-versions/create", NULL, body, (size_t)n);
    if (st != 200)
        return st;
    cJSON *j = cJSON_Parse(bench_hbody(h));
    const cJSON *v = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "model_version"), "version");
    long long version = cJSON_IsString(v) ? atoll(v->valuestring) : 0; /* 0: checked as lost */
    cJSON_Delete(j);
    if ((size_t)i >= k->version_cap) {
        size_t cap = k->version_cap ? k->version_cap * 2 : 1024;
        while (cap <= (size_t)i)
            cap *= 2;
        int64_t *nv = realloc(k->version, cap * sizeof *nv);
        if (!nv)
            abort();
        memset(nv + k->version_cap, 0, (cap - k->version_cap) * sizeof *nv);
        k->version = nv;
        k->version_cap = cap;
    }
    k->version[i] = version;
    if (version <= floor)
        k->reused++;
    return st;
}

static int64_t check_registry(kind *k, bench_hconn *h)
{
    if (bench_hreq(h, "GET",
                   "/api/2.0/mlflow/model-versions/search?filter=name%3D%27" REGISTRY_MODEL
                   "%27&max_results=200000",
                   NULL, NULL, 0) != 200)
        return -1;
    cJSON *j = cJSON_Parse(bench_hbody(h));
    if (!j)
        return -1;
    const cJSON *mvs = cJSON_GetObjectItem(j, "model_versions"), *mv;
    int64_t top = 0, count = 0;
    cJSON_ArrayForEach(mv, mvs)
    {
        const cJSON *v = cJSON_GetObjectItem(mv, "version");
        long long n = cJSON_IsString(v) ? atoll(v->valuestring) : 0;
        top = n > top ? n : top;
        count++;
    }
    /* present[v]: index i whose source and tag version v carries, or -1 */
    int64_t *present = malloc(((size_t)top + 1) * sizeof *present);
    if (!present) {
        cJSON_Delete(j);
        return -1;
    }
    for (int64_t v = 0; v <= top; v++)
        present[v] = -1;
    int64_t bad = k->reused, distinct = 0;
    cJSON_ArrayForEach(mv, mvs)
    {
        const cJSON *v = cJSON_GetObjectItem(mv, "version"), *src = cJSON_GetObjectItem(mv, "source");
        long long n = cJSON_IsString(v) ? atoll(v->valuestring) : 0;
        long long si = -1, ti = -2;
        if (cJSON_IsString(src) && strncmp(src->valuestring, "s3://bucket/", 12) == 0)
            si = atoll(src->valuestring + 12);
        const cJSON *t;
        cJSON_ArrayForEach(t, cJSON_GetObjectItem(mv, "tags"))
        {
            const cJSON *key = cJSON_GetObjectItem(t, "key"), *val = cJSON_GetObjectItem(t, "value");
            if (cJSON_IsString(key) && cJSON_IsString(val) && strcmp(key->valuestring, "idx") == 0)
                ti = atoll(val->valuestring);
        }
        if (n >= 1 && present[n] == -1) {
            present[n] = si == ti ? si : -2;
            distinct++;
        }
    }
    cJSON_Delete(j);
    if (distinct != top || count != top) {
        fprintf(stderr, "crash: registry: %lld versions present, numbered up to %lld (a gap)\n",
                (long long)count, (long long)top);
        bad++;
    }
    uint8_t *seen = calloc((size_t)top + 1, 1);
    for (size_t a = 0; a < k->acked.n; a++) {
        int64_t i = k->acked.idx[a], v = k->version[i];
        if (v < 1 || v > top || present[v] != i || (seen && seen[v]))
            bad++;
        else if (seen)
            seen[v] = 1;
    }
    free(seen);
    free(present);
    k->floor = top;
    return bad;
}

/* --- artifacts: one PUT of a small file per write --------------------------
 * PUT mlflow-artifacts/artifacts/crash/<i>.txt with artifact_content(i),
 * 1-19 KiB (sized by i, so a torn file differs in length). Checked: every
 * acknowledged file downloads with exactly its content, and every file
 * listed at all (also an upload in flight at the kill) has its full
 * content: never a torn one. */

#define ARTIFACT_MAX (19 * 16 * 64)

static size_t artifact_content(int64_t i, char *buf)
{
    char line[65];
    int n = snprintf(line, sizeof line, "artifact i%lld ", (long long)i);
    memset(line + n, '.', (size_t)(63 - n));
    line[63] = '\n';
    size_t lines = 16 + (size_t)(i % 19) * 16, len = 0;
    for (size_t l = 0; l < lines; l++, len += 64)
        memcpy(buf + len, line, 64);
    return len;
}

static int write_artifact(kind *k, bench_hconn *h, int64_t i)
{
    (void)k;
    char path[128], body[ARTIFACT_MAX];
    snprintf(path, sizeof path, "/api/2.0/mlflow-artifacts/artifacts/crash/%lld.txt", (long long)i);
    size_t len = artifact_content(i, body);
    return bench_hreq(h, "PUT", path, "application/octet-stream", body, len);
}

static int64_t check_artifacts(kind *k, bench_hconn *h)
{
    if (bench_hreq(h, "GET", "/api/2.0/mlflow-artifacts/artifacts?path=crash", NULL, NULL, 0) != 200)
        return -1;
    cJSON *j = cJSON_Parse(bench_hbody(h));
    if (!j)
        return -1;
    /* want[i]: 1 acknowledged, 2 listed, 3 both */
    uint8_t *want = calloc((size_t)k->next + 1, 1);
    int64_t bad = 0;
    const cJSON *f;
    cJSON_ArrayForEach(f, cJSON_GetObjectItem(j, "files"))
    {
        const cJSON *p = cJSON_GetObjectItem(f, "path");
        char *end = NULL;
        long long i = cJSON_IsString(p) ? strtoll(p->valuestring, &end, 10) : -1;
        if (i < 0 || i > k->next || !end || strcmp(end, ".txt") != 0) {
            fprintf(stderr, "crash: artifacts: unexpected file listed: %s\n",
                    cJSON_IsString(p) ? p->valuestring : "?");
            bad++;
            continue;
        }
        want[i] |= 2;
    }
    cJSON_Delete(j);
    for (size_t a = 0; a < k->acked.n; a++)
        want[k->acked.idx[a]] |= 1;
    char expect[ARTIFACT_MAX];
    for (int64_t i = 0; i <= k->next && bad >= 0; i++) {
        if (!want[i])
            continue;
        char path[128];
        snprintf(path, sizeof path, "/api/2.0/mlflow-artifacts/artifacts/crash/%lld.txt",
                 (long long)i);
        int st = bench_hreq(h, "GET", path, NULL, NULL, 0);
        if (st < 0) {
            bad = -1;
            break;
        }
        size_t len = artifact_content(i, expect);
        if (st != 200 || h->body_len != len || memcmp(bench_hbody(h), expect, len) != 0) {
            if (!(want[i] & 1))
                fprintf(stderr, "crash: artifacts: unacknowledged file %lld.txt is torn "
                                "(%zu bytes, %zu expected)\n",
                        (long long)i, h->body_len, len);
            bad++;
        }
    }
    free(want);
    return bad;
}

static kind KINDS[] = {
    {"metrics", write_metrics, check_metrics, "", 0, {0}, NULL, 0, 0, 0},
    {"params", write_param, check_params, "", 0, {0}, NULL, 0, 0, 0},
    {"tags", write_tag, check_tags, "", 0, {0}, NULL, 0, 0, 0},
    {"native", write_native, check_native, "", 0, {0}, NULL, 0, 0, 0},
    {"registry", write_registry, check_registry, "", 0, {0}, NULL, 0, 0, 0},
    {"artifacts", write_artifact, check_artifacts, "", 0, {0}, NULL, 0, 0, 0},
};
#define N_KINDS (sizeof KINDS / sizeof KINDS[0])

/* --- the load ---------------------------------------------------------------- */

typedef struct writer {
    kind *k;
    int port;
    atomic_int *stop;
    int64_t refused;     /* non-200 answers (429/503 under load) */
} writer;

static void *writer_main(void *arg)
{
    writer *w = arg;
    bench_hconn h;
    if (bench_hconn_open(&h, w->port) != 0)
        return NULL;
    while (!atomic_load(w->stop)) {
        int64_t i = w->k->next++; /* (1): never reused, even if unanswered */
        int st = w->k->write(w->k, &h, i);
        if (st < 0)
            break; /* the server is gone */
        if (st == 200)
            acked_add(&w->k->acked, i);
        else
            w->refused++;
    }
    bench_hconn_close(&h);
    return NULL;
}

static int cmp_dbl(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int bench_suite_crash(bench_ctx *c)
{
    int rounds = c->quick ? ROUNDS_QUICK : ROUNDS;
    char data[4200], log[4400];
    bench_subdir(c, "crash-data", data, sizeof data);
    snprintf(log, sizeof log, "%s/crash-server.log", c->work_dir);
    bench_server srv;
    if (bench_server_start(&srv, data, log, NULL) != 0)
        return 1;
    bench_hconn h;
    int rc = bench_hconn_open(&h, srv.port);
    for (size_t k = 0; k < N_KINDS && rc == 0; k++) {
        KINDS[k].next = 0;
        KINDS[k].acked.n = 0;
        KINDS[k].floor = KINDS[k].reused = 0;
        rc = bench_create_run(&h, "crash", KINDS[k].run);
    }
    if (rc == 0 && bench_hreq(&h, "POST", "/api/2.0/mlflow/registered-models/create", NULL,
                              "{\"name\":\"" REGISTRY_MODEL "\"}",
                              strlen("{\"name\":\"" REGISTRY_MODEL "\"}")) != 200)
        rc = 1;
    bench_hconn_close(&h);
    if (rc) {
        fprintf(stderr, "crash: set-up failed\n");
        bench_server_stop(&srv, SIGKILL);
        return 1;
    }
    srand(8);
    int64_t lost = 0, refused = 0, lost_by_kind[N_KINDS] = {0};
    double *ready_ms = calloc((size_t)rounds, sizeof *ready_ms);
    int done = 0;
    for (int r = 0; r < rounds; r++) {
        atomic_int stop = 0;
        writer w[N_KINDS];
        pthread_t th[N_KINDS];
        for (size_t k = 0; k < N_KINDS; k++) {
            w[k] = (writer){&KINDS[k], srv.port, &stop, 0};
            pthread_create(&th[k], NULL, writer_main, &w[k]);
        }
        struct timespec d = {0, (long)(100 + rand() % 600) * 1000000L};
        nanosleep(&d, NULL);
        bench_server_stop(&srv, SIGKILL);
        atomic_store(&stop, 1);
        for (size_t k = 0; k < N_KINDS; k++) {
            pthread_join(th[k], NULL);
            refused += w[k].refused;
        }
        uint64_t t0 = bench_now_ns();
        if (bench_server_start(&srv, data, log, NULL) != 0) {
            fprintf(stderr, "crash: restart %d failed (see %s)\n", r + 1, log);
            rc = 1;
            break;
        }
        ready_ms[done++] = (double)(bench_now_ns() - t0) / 1e6;
        if (bench_hconn_open(&h, srv.port) != 0) {
            rc = 1;
            break;
        }
        for (size_t k = 0; k < N_KINDS; k++) {
            int64_t m = KINDS[k].check(&KINDS[k], &h);
            if (m < 0) {
                fprintf(stderr, "crash: reading back %s failed after restart %d\n", KINDS[k].name,
                        r + 1);
                rc = 1;
            } else if (m > 0) {
                fprintf(stderr, "crash: restart %d: %lld acknowledged %s writes missing\n", r + 1,
                        (long long)m, KINDS[k].name);
                lost += m;
                lost_by_kind[k] += m;
            }
        }
        bench_hconn_close(&h);
        if (rc)
            break;
        if (!c->json && (r + 1) % 10 == 0)
            fprintf(stderr, "crash: %d restarts, %lld lost so far\n", r + 1, (long long)lost);
    }
    bench_server_stop(&srv, SIGTERM);
    int64_t acked = 0;
    for (size_t k = 0; k < N_KINDS; k++) {
        acked += (int64_t)KINDS[k].acked.n;
        if (!c->json)
            fprintf(stderr, "crash: %s: %zu acknowledged\n", KINDS[k].name, KINDS[k].acked.n);
        free(KINDS[k].acked.idx);
        KINDS[k].acked = (acked_set){0};
        free(KINDS[k].version);
        KINDS[k].version = NULL;
        KINDS[k].version_cap = 0;
    }
    if (rc == 0) {
        bench_report(c, "acked_writes_lost", (double)lost, "writes", NULL, 0, 0);
        for (size_t k = 0; k < N_KINDS; k++) {
            char figure[64];
            snprintf(figure, sizeof figure, "acked_writes_lost_%s", KINDS[k].name);
            bench_report(c, figure, (double)lost_by_kind[k], "writes", NULL, 0, 0);
        }
        bench_report(c, "restarts", done, "restarts", NULL, 0, 1);
        bench_report(c, "acked_writes", (double)acked, "writes", NULL, 0, 1);
        qsort(ready_ms, (size_t)done, sizeof *ready_ms, cmp_dbl);
        bench_report(c, "restart_ready_ms_p50", ready_ms[done / 2], "ms", NULL, 0, 0);
        if (!c->json)
            fprintf(stderr, "crash: %lld writes refused under load (429/503), not counted\n",
                    (long long)refused);
    }
    free(ready_ms);
    return rc || lost ? 1 : 0;
}
