/*
 * suite_ui.c — the `ui` suite of tally-bench: the web UI in headless
 * Chromium against a seeded `tally serve` (the binary next to tally-bench).
 *
 * Seed (never timed): one experiment of RUNS runs (--quick: RUNS_QUICK),
 * each with params lr/opt/layers (log-batch) and short `loss` and `acc`
 * curves of SHORT_STEPS points (native ingest), except LONG_RUNS runs tagged
 * long=yes whose `loss` has LONG_STEPS points (--quick: LONG_STEPS_QUICK),
 * loaded through tally/ingest frames of 16 series x 65,536 points. Values
 * are a decaying curve plus deterministic noise, so M4 keeps 4 distinct
 * points in most pixel columns (the bytes figure's worst case).
 *
 * Then ui/bench/ui_bench.mjs (node + playwright-core + Debian chromium)
 * measures, medians over REPS fresh pages (--quick: REPS_QUICK):
 *   runs_first_screen_ms       navigation to the runs page until the first
 *                              screen of rows is painted
 *   compare_click_to_paint_ms  click "Compare first 100" (filter
 *                              tags.long = 'yes') until the chart is painted
 *   compare_bytes              bytes transferred for that chart's data
 *   zoom_repaint_ms            one wheel event zooming to 1 % of the range
 *                              until the chart is repainted from the new query
 *   ui_js_bytes, ui_js_bytes_brotli  the app's JavaScript as the server sends
 *                              it (identity; brotli)
 * with baselines measured in the same browser and run: MLflow's own way to
 * chart many runs (get-history-bulk-interval, at most 2500 sampled steps per
 * run; not exact), fetched and parsed, for the whole range and for the zoom.
 *
 * Needs node, ui/node_modules (ui/npm-ci.sh) and chromium; the ui directory
 * comes from $TALLY_UI_DIR or the source tree this binary was built from.
 *
 * Invariants: the child server is always stopped; a figure the script did
 * not print is not reported and the suite returns nonzero.
 */
#include "bench.h"
#include "bench_http.h"

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#define RUNS 10000
#define RUNS_QUICK 1000
#define LONG_RUNS 100
#define LONG_STEPS 1000000
#define LONG_STEPS_QUICK 20000
#define SHORT_STEPS 100
#define REPS 5
#define REPS_QUICK 2
#define FRAME_SERIES 16
#define FRAME_POINTS 65536

#ifndef TALLY_UI_DIR
#define TALLY_UI_DIR "ui"
#endif

/* ------------------------------------------------------------------------ */
/* Talking to the child (bench_http.h)                                       */
/* ------------------------------------------------------------------------ */

static int post_json(bench_hconn *h, const char *path, const char *json)
{
    int st = bench_hreq(h, "POST", path, "application/json", json, strlen(json));
    if (st != 200)
        fprintf(stderr, "ui: %s answered %d: %.300s\n", path, st,
                st > 0 ? bench_hbody(h) : "(no answer)");
    return st == 200 ? 0 : -1;
}

/* The string value of "field":"..." in the last body. */
static int field(bench_hconn *h, const char *name, char *out, size_t cap)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":\"", name);
    const char *p = strstr(bench_hbody(h), pat);
    if (!p)
        return -1;
    p += strlen(pat);
    size_t n = strcspn(p, "\"");
    if (n == 0 || n >= cap)
        return -1;
    memcpy(out, p, n);
    out[n] = 0;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Seeding                                                                   */
/* ------------------------------------------------------------------------ */

/* A run's curve: a_i exp(-s / tau) + floor_i, plus noise (hash of i, s). */
static double curve(uint32_t run, int64_t s, int64_t steps, int acc)
{
    double a = 2.0 + (run % 7) * 0.3, fl = 0.05 + (run % 50) * 0.004;
    double tau = (double)steps / (3.0 + run % 4);
    uint64_t hsh = XXH3_64bits_withSeed(&s, sizeof s, run);
    double noise = ((double)(hsh >> 11) / 9007199254740992.0 - 0.5) * 0.04;
    double loss = a * exp(-(double)s / tau) + fl + noise;
    return acc ? 1.0 - loss / 3.0 : loss;
}

/* Appends one series to f: steps [first, first + n) of run's curve. */
static int frame_series(bench_frame *f, const char *run, uint32_t run_no, const char *key,
                        int64_t first, uint32_t n, int64_t total_steps)
{
    int64_t *st, *ts;
    double *v;
    if (bench_frame_series(f, run, key, n, &st, &ts, &v) != 0)
        return -1;
    int acc = strcmp(key, "acc") == 0;
    for (uint32_t k = 0; k < n; k++) {
        int64_t s = first + k;
        st[k] = s;
        ts[k] = 1700000000000 + (int64_t)run_no * 1000 + s * 50;
        v[k] = curve(run_no, s, total_steps, acc);
    }
    return 0;
}

static int frame_send(bench_hconn *h, bench_frame *f)
{
    bench_frame_end(f);
    int st;
    while ((st = bench_hreq(h, "POST", "/api/2.0/tally/ingest", "application/octet-stream", f->p,
                            f->len)) == 429)
        usleep(20000);
    if (st != 200)
        fprintf(stderr, "ui: ingest answered %d\n", st);
    return st == 200 ? 0 : -1;
}

static int seed(bench_hconn *h, int quick, char *exp_id, size_t cap)
{
    int n_runs = quick ? RUNS_QUICK : RUNS;
    int64_t long_steps = quick ? LONG_STEPS_QUICK : LONG_STEPS;
    if (post_json(h, "/api/2.0/mlflow/experiments/create", "{\"name\":\"bench-ui\"}") ||
        field(h, "experiment_id", exp_id, cap))
        return -1;
    char (*ids)[40] = calloc((size_t)n_runs, sizeof *ids);
    bench_frame f = {0};
    int rc = -1;
    if (!ids)
        return -1;
    char body[1024];
    int every = n_runs / LONG_RUNS;
    for (int i = 0; i < n_runs; i++) {
        int is_long = i % every == 0;
        snprintf(body, sizeof body,
                 "{\"experiment_id\":\"%s\",\"run_name\":\"run-%05d\",\"start_time\":%lld,"
                 "\"tags\":[{\"key\":\"long\",\"value\":\"%s\"}]}",
                 exp_id, i, 1700000000000LL + i * 1000LL, is_long ? "yes" : "no");
        if (post_json(h, "/api/2.0/mlflow/runs/create", body) || field(h, "run_id", ids[i], 40))
            goto out;
        snprintf(body, sizeof body,
                 "{\"run_id\":\"%s\",\"params\":[{\"key\":\"lr\",\"value\":\"%g\"},"
                 "{\"key\":\"opt\",\"value\":\"%s\"},{\"key\":\"layers\",\"value\":\"%d\"}]}",
                 ids[i], (double[]){0.1, 0.03, 0.01, 0.003}[i % 4], i % 2 ? "adam" : "sgd",
                 2 + i % 5);
        if (post_json(h, "/api/2.0/mlflow/runs/log-batch", body))
            goto out;
    }
    /* short curves: 64 runs x {loss, acc} per frame */
    for (int i = 0; i < n_runs;) {
        if (bench_frame_begin(&f))
            goto out;
        uint32_t ns = 0;
        for (int k = 0; k < 64 && i < n_runs; i++) {
            if (i % every == 0)
                continue;
            if (frame_series(&f, ids[i], (uint32_t)i, "loss", 0, SHORT_STEPS, SHORT_STEPS) ||
                frame_series(&f, ids[i], (uint32_t)i, "acc", 0, SHORT_STEPS, SHORT_STEPS))
                goto out;
            ns += 2;
            k++;
        }
        if (ns && frame_send(h, &f))
            goto out;
    }
    /* long curves: FRAME_SERIES series x FRAME_POINTS points per frame */
    for (int64_t first = 0; first < long_steps; first += FRAME_POINTS) {
        uint32_t pts = (uint32_t)(long_steps - first < FRAME_POINTS ? long_steps - first
                                                                    : FRAME_POINTS);
        for (int i = 0; i < n_runs;) {
            if (bench_frame_begin(&f))
                goto out;
            uint32_t ns = 0;
            for (; i < n_runs && ns < FRAME_SERIES; i += every, ns++)
                if (frame_series(&f, ids[i], (uint32_t)i, "loss", first, pts, long_steps))
                    goto out;
            if (frame_send(h, &f))
                goto out;
        }
    }
    rc = 0;
out:
    free(ids);
    bench_frame_free(&f);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* The browser half                                                          */
/* ------------------------------------------------------------------------ */

static int run_browser(bench_ctx *c, int port, const char *exp_id, int64_t steps)
{
    const char *ui = getenv("TALLY_UI_DIR");
    if (!ui || !*ui)
        ui = TALLY_UI_DIR;
    char cmd[8192];
    snprintf(cmd, sizeof cmd,
             "cd '%s' && sh ./npm-ci.sh >&2 && node bench/ui_bench.mjs http://127.0.0.1:%d '%s' "
             "\"tags.long = 'yes'\" %lld --reps %d",
             ui, port, exp_id, (long long)steps, c->quick ? REPS_QUICK : REPS);
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    char line[1024];
    int n = 0;
    while (fgets(line, sizeof line, p)) {
        char name[128], unit[32], base[128], bv[64];
        double value;
        int hib;
        if (sscanf(line, "FIG %127s %lf %31s %127s %63s %d", name, &value, unit, base, bv, &hib) !=
            6) {
            fputs(line, stderr);
            continue;
        }
        int has_base = strcmp(base, "-") != 0;
        bench_report(c, name, value, unit, has_base ? base : NULL, has_base ? atof(bv) : 0, hib);
        n++;
    }
    int st = pclose(p);
    if (st != 0 || n != 6) {
        fprintf(stderr, "ui: the browser script failed (status %d, %d of 6 figures)\n", st, n);
        return -1;
    }
    return 0;
}

int bench_suite_ui(bench_ctx *c)
{
    bench_server s = {0};
    bench_hconn h = {.fd = -1};
    int rc = -1;
    char exp_id[40], data[4200];
    int64_t steps = c->quick ? LONG_STEPS_QUICK : LONG_STEPS;
    /* async durability: seeding speed only; every figure is a read */
    static const char *const args[] = {"--durability", "async", "--memory-budget", "1G", NULL};
    bench_subdir(c, "server", data, sizeof data);
    if (bench_server_start(&s, data, NULL, args) != 0)
        return -1;
    if (bench_hconn_open(&h, s.port) != 0) {
        fprintf(stderr, "ui: cannot connect to the server\n");
        goto out;
    }
    uint64_t t0 = bench_now_ns();
    if (seed(&h, c->quick, exp_id, sizeof exp_id) != 0)
        goto out;
    fprintf(stderr, "ui: seeded %d runs (%d x %lld steps) in %.1f s\n",
            c->quick ? RUNS_QUICK : RUNS, LONG_RUNS, (long long)steps,
            (double)(bench_now_ns() - t0) / 1e9);
    bench_hconn_close(&h);
    rc = run_browser(c, s.port, exp_id, steps);
out:
    bench_hconn_close(&h);
    bench_server_stop(&s, SIGTERM);
    return rc;
}
