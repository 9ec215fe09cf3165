/*
 * suite_crash.c — the `crash` suite of tally-bench: kill -9 under load,
 * ROUNDS times (100; --quick 10), and a check after every restart that each
 * acknowledged write is there (issue 8: "acknowledged writes lost across 100
 * kill -9 restarts under load = 0").
 *
 * Each round starts `tally serve` on the same data directory, runs one
 * writer thread per kind of write — metrics (runs/log-batch, 50 points),
 * params (runs/log-parameter), tags (runs/set-tag), native ingest frames
 * (tally/ingest, 200 points) — each on its own keep-alive connection as fast
 * as the server answers, sends SIGKILL after a random 100-700 ms, restarts,
 * and reads back through the API every write acknowledged (HTTP 200) in any
 * round so far. A write in flight at the kill was not acknowledged and is
 * not checked; its index is never reused.
 *
 * Figures: acked_writes_lost (must be 0), restarts, acked_writes,
 * restart_ready_ms_p50 (from exec to accepting again: recovery included).
 *
 * Adding a kind (artifacts, registry changes) is one entry in KINDS: a
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

static kind KINDS[] = {
    {"metrics", write_metrics, check_metrics, "", 0, {0}},
    {"params", write_param, check_params, "", 0, {0}},
    {"tags", write_tag, check_tags, "", 0, {0}},
    {"native", write_native, check_native, "", 0, {0}},
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
        rc = bench_create_run(&h, "crash", KINDS[k].run);
    }
    bench_hconn_close(&h);
    if (rc) {
        fprintf(stderr, "crash: set-up failed\n");
        bench_server_stop(&srv, SIGKILL);
        return 1;
    }
    srand(8);
    int64_t lost = 0, refused = 0;
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
    }
    if (rc == 0) {
        bench_report(c, "acked_writes_lost", (double)lost, "writes", NULL, 0, 0);
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
