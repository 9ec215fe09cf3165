/*
 * cmd_export.c — `tally export experiments|runs|metrics`: a data directory's
 * experiments, runs (attributes, params, tags, latest metrics) or metric
 * histories (every point) as CSV or newline-delimited JSON, to a file or
 * stdout, filtered by experiment, run and an MLflow search expression.
 *
 * Formats:
 *  - CSV (RFC 4180: fields with , " CR LF quoted, quotes doubled), a header
 *    line first. runs: the attributes, then one column per metric
 *    (metrics.<key>, the latest value), param (params.<key>) and tag
 *    (tags.<key>) over the exported runs, like MLflow's search_runs table;
 *    experiments: tags as one JSON object column.
 *  - NDJSON: one JSON object per line; runs carry params, tags and metrics
 *    as objects.
 * Numbers: shortest text that reads back bit for bit (server/json_num.c);
 * NaN and +-inf as MLflow's JSON strings "NaN", "Infinity", "-Infinity"
 * (CSV: NaN, inf, -inf, which every CSV reader takes as floats).
 *
 * Metrics are exported per series in (step, timestamp) order, exact
 * duplicates collapsed (the engine's read order); series by key.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "commands.h"
#include "datadir.h"
#include "json_num.h"
#include "progress.h"
#include "search.h"

static const char usage_text[] =
    "usage: tally export experiments|runs|metrics --data DIR [--format csv|ndjson]\n"
    "                    [--experiment ID]... [--run ID]... [--filter EXPR]\n"
    "                    [--view active|deleted|all] [--output FILE] [--quiet]\n"
    "\n"
    "Writes a data directory's experiments, runs, or metric histories (every\n"
    "point: run_id, key, step, timestamp, value) as CSV (default) or\n"
    "newline-delimited JSON, to FILE or stdout. The directory must not be\n"
    "served meanwhile (use `tally backup` for a live server).\n"
    "\n"
    "  --experiment ID   only these experiments (repeatable)\n"
    "  --run ID          only these runs (repeatable)\n"
    "  --filter EXPR     runs matching an MLflow search filter, e.g.\n"
    "                    \"metrics.acc > 0.9 and params.lr = '0.001'\"\n"
    "  --view V          runs and experiments: active (default), deleted, all\n"
    "\n"
    "Exit status: 0 written, 1 failed, 2 usage error.\n";

enum what { W_EXPERIMENTS, W_RUNS, W_METRICS };

typedef struct opts {
    enum what what;
    int ndjson;
    const char *data, *output, *filter_text;
    const char **exps, **runs;
    size_t n_exps, n_runs;
    tally_view_type view;
    int quiet;
} opts;

typedef struct out {
    FILE *f;
    tally_buf b;
} out;

static int flush_line(out *o)
{
    if (tally_buf_failed(&o->b))
        return -1;
    if (o->b.len && fwrite(o->b.data, 1, o->b.len, o->f) != o->b.len)
        return -1;
    tally_buf_reset(&o->b);
    return 0;
}

static void json_str(tally_buf *b, const char *s)
{
    tally_buf_putc(b, '"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') {
            tally_buf_putc(b, '\\');
            tally_buf_putc(b, (char)*p);
        } else if (*p == '\n') {
            tally_buf_puts(b, "\\n");
        } else if (*p == '\r') {
            tally_buf_puts(b, "\\r");
        } else if (*p == '\t') {
            tally_buf_puts(b, "\\t");
        } else if (*p < 0x20) {
            tally_buf_printf(b, "\\u%04x", *p);
        } else {
            tally_buf_putc(b, (char)*p);
        }
    }
    tally_buf_putc(b, '"');
}

static void csv_str(tally_buf *b, const char *s)
{
    if (!strpbrk(s, ",\"\r\n")) {
        tally_buf_puts(b, s);
        return;
    }
    tally_buf_putc(b, '"');
    for (const char *p = s; *p; p++) {
        if (*p == '"')
            tally_buf_putc(b, '"');
        tally_buf_putc(b, *p);
    }
    tally_buf_putc(b, '"');
}

static void csv_num(tally_buf *b, double v)
{
    if (isnan(v))
        tally_buf_puts(b, "NaN");
    else if (isinf(v))
        tally_buf_puts(b, v > 0 ? "inf" : "-inf");
    else
        tally_buf_put_double(b, v);
}

static void put_num(const opts *op, tally_buf *b, double v)
{
    if (op->ndjson)
        tally_buf_put_double(b, v);
    else
        csv_num(b, v);
}

/* ---- experiments -------------------------------------------------------- */

static int wanted_exp(const opts *op, int64_t id)
{
    if (!op->n_exps)
        return 1;
    for (size_t i = 0; i < op->n_exps; i++)
        if (strtoll(op->exps[i], NULL, 10) == id)
            return 1;
    return 0;
}

static int export_experiments(const opts *op, datadir *d, out *o)
{
    tally_arena *a = tally_arena_new();
    tally_experiment *ex = NULL;
    size_t n = 0;
    char err[512];
    if (!a || tally_store_list_experiments(d->store, op->view, a, &ex, &n, err, sizeof err)) {
        fprintf(stderr, "tally export: listing experiments: %s\n", a ? err : "out of memory");
        tally_arena_free(a);
        return 1;
    }
    tally_buf *b = &o->b;
    if (!op->ndjson)
        tally_buf_puts(b, "experiment_id,name,artifact_location,lifecycle_stage,creation_time,"
                          "last_update_time,tags\n");
    int bad = flush_line(o);
    for (size_t i = 0; i < n && !bad; i++) {
        const tally_experiment *e = &ex[i];
        if (!wanted_exp(op, e->experiment_id))
            continue;
        tally_buf tags = {0};
        tally_buf_putc(&tags, '{');
        for (size_t t = 0; t < e->n_tags; t++) {
            if (t)
                tally_buf_putc(&tags, ',');
            json_str(&tags, e->tags[t].key);
            tally_buf_putc(&tags, ':');
            json_str(&tags, e->tags[t].value);
        }
        tally_buf_putc(&tags, '}');
        const char *life = e->lifecycle == TALLY_LIFECYCLE_DELETED ? "deleted" : "active";
        if (op->ndjson) {
            tally_buf_printf(b, "{\"experiment_id\":\"%lld\",\"name\":",
                             (long long)e->experiment_id);
            json_str(b, e->name);
            tally_buf_puts(b, ",\"artifact_location\":");
            json_str(b, e->artifact_location);
            tally_buf_printf(b, ",\"lifecycle_stage\":\"%s\",\"creation_time\":%lld,"
                                "\"last_update_time\":%lld,\"tags\":",
                             life, (long long)e->creation_time_ms,
                             (long long)e->last_update_time_ms);
            tally_buf_append(b, tags.data, tags.len);
            tally_buf_puts(b, "}\n");
        } else {
            tally_buf_printf(b, "%lld,", (long long)e->experiment_id);
            csv_str(b, e->name);
            tally_buf_putc(b, ',');
            csv_str(b, e->artifact_location);
            tally_buf_printf(b, ",%s,%lld,%lld,", life, (long long)e->creation_time_ms,
                             (long long)e->last_update_time_ms);
            csv_str(b, tags.data ? tags.data : "{}");
            tally_buf_putc(b, '\n');
        }
        bad = tally_buf_failed(&tags) || flush_line(o);
        tally_buf_free(&tags);
    }
    tally_arena_free(a);
    return bad;
}

/* ---- runs ---------------------------------------------------------------- */

typedef struct run_row {
    tally_run run;
    datadir *d;
} run_row;

static int row_attr_str(void *ctx, tally_search_attr attr, const char **outp)
{
    const tally_run_info *in = &((run_row *)ctx)->run.info;
    if (attr == TALLY_SEARCH_A_RUN_ID)
        *outp = in->run_id;
    else if (attr == TALLY_SEARCH_A_RUN_NAME)
        *outp = in->run_name;
    else if (attr == TALLY_SEARCH_A_USER_ID)
        *outp = in->user_id;
    else if (attr == TALLY_SEARCH_A_STATUS)
        *outp = tally_run_status_name(in->status);
    else if (attr == TALLY_SEARCH_A_ARTIFACT_URI)
        *outp = in->artifact_uri;
    else
        return 0;
    return *outp != NULL;
}

static int row_attr_num(void *ctx, tally_search_attr attr, double *outp)
{
    const tally_run_info *in = &((run_row *)ctx)->run.info;
    if (attr == TALLY_SEARCH_A_START_TIME) {
        *outp = (double)in->start_time_ms;
        return 1;
    }
    if (attr == TALLY_SEARCH_A_END_TIME && in->has_end_time) {
        *outp = (double)in->end_time_ms;
        return 1;
    }
    return 0;
}

static int kv_find(const tally_kv *kv, size_t n, const char *key, const char **outp)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(kv[i].key, key) == 0) {
            *outp = kv[i].value;
            return 1;
        }
    return 0;
}

static int row_param(void *ctx, const char *key, const char **outp)
{
    const tally_run *r = &((run_row *)ctx)->run;
    return kv_find(r->params, r->n_params, key, outp);
}

static int row_tag(void *ctx, const char *key, const char **outp)
{
    const tally_run *r = &((run_row *)ctx)->run;
    return kv_find(r->tags, r->n_tags, key, outp);
}

static int latest_of(datadir *d, const char *run_id, const char *key, double *v)
{
    tally_series_id id;
    tally_series_info si;
    if (tally_engine_lookup(d->engine, run_id, strlen(run_id), key, strlen(key), &id) != 0 ||
        tally_engine_series_info(d->engine, id, &si) != 0)
        return 0;
    *v = si.latest.value;
    return 1;
}

static int row_metric(void *ctx, const char *key, double *outp)
{
    run_row *rr = ctx;
    return latest_of(rr->d, rr->run.info.run_id, key, outp);
}

static int row_dataset(void *ctx, size_t i, tally_search_attr field, const char **outp)
{
    const tally_run *r = &((run_row *)ctx)->run;
    if (i >= r->n_inputs)
        return -1;
    const tally_dataset_input *in = &r->inputs[i];
    if (field == TALLY_SEARCH_A_DS_NAME)
        *outp = in->dataset.name;
    else if (field == TALLY_SEARCH_A_DS_DIGEST)
        *outp = in->dataset.digest;
    else if (field == TALLY_SEARCH_A_DS_CONTEXT)
        return kv_find(in->tags, in->n_tags, "mlflow.data.context", outp);
    else
        return 0;
    return *outp != NULL;
}

/* The selected runs, filter applied, in (experiment, start_time desc) order
 * as the store gives them. */
static int select_runs(const opts *op, datadir *d, tally_arena *a, tally_run **out_runs,
                       size_t *n_out)
{
    char err[512];
    tally_search_filter *f = NULL;
    if (op->filter_text) {
        tally_search_error se;
        if (tally_search_filter_parse(TALLY_SEARCH_RUNS, op->filter_text, strlen(op->filter_text),
                                      &f, &se) != 0) {
            fprintf(stderr, "tally export: --filter: %s\n", se.msg);
            return 2;
        }
    }
    tally_run *v = NULL;
    size_t n = 0, cap = 0;
    int bad = 0;
    if (op->n_runs) {
        cap = op->n_runs;
        v = tally_arena_alloc(a, cap * sizeof *v);
        for (size_t i = 0; v && i < op->n_runs && !bad; i++) {
            if (tally_store_get_run(d->store, op->runs[i], a, &v[n], err, sizeof err) != 0) {
                fprintf(stderr, "tally export: run %s: %s\n", op->runs[i], err);
                bad = 1;
            } else if (wanted_exp(op, v[n].info.experiment_id)) {
                n++;
            }
        }
    } else {
        int64_t *ids = NULL;
        size_t n_ids = 0;
        tally_experiment *ex = NULL;
        size_t n_ex = 0;
        if (tally_store_list_experiments(d->store, TALLY_VIEW_ALL, a, &ex, &n_ex, err,
                                         sizeof err) != 0) {
            fprintf(stderr, "tally export: %s\n", err);
            bad = 1;
        } else if ((ids = tally_arena_alloc(a, (n_ex + 1) * sizeof *ids)) != NULL) {
            for (size_t i = 0; i < n_ex; i++)
                if (wanted_exp(op, ex[i].experiment_id))
                    ids[n_ids++] = ex[i].experiment_id;
        }
        tally_run_query q = {.experiment_ids = ids, .n_experiment_ids = n_ids, .view = op->view};
        tally_run_row *rows = NULL;
        size_t n_rows = 0;
        if (!bad && n_ids &&
            tally_store_search_runs(d->store, &q, a, &rows, &n_rows, err, sizeof err) != 0) {
            fprintf(stderr, "tally export: searching runs: %s\n", err);
            bad = 1;
        }
        if (!bad && n_rows) {
            tally_run_info *infos = tally_arena_alloc(a, n_rows * sizeof *infos);
            v = tally_arena_alloc(a, n_rows * sizeof *v);
            if (infos && v) {
                for (size_t i = 0; i < n_rows; i++)
                    infos[i] = rows[i].info;
                if (tally_store_runs_data(d->store, infos, n_rows, a, v, err, sizeof err) != 0) {
                    fprintf(stderr, "tally export: reading runs: %s\n", err);
                    bad = 1;
                }
                for (size_t i = 0; i < n_rows; i++)
                    v[i].info = infos[i];
                n = n_rows;
            }
        }
    }
    if (!bad && n && !v)
        bad = 1;
    if (!bad && f) { /* the search filter, evaluated per run */
        size_t kept = 0;
        for (size_t i = 0; i < n; i++) {
            run_row rr = {v[i], d};
            tally_search_row row = {&rr, row_attr_str, row_attr_num, row_param, row_tag,
                                    row_metric, row_dataset};
            if (tally_search_match(f, &row))
                v[kept++] = v[i];
        }
        n = kept;
    }
    tally_search_filter_free(f);
    *out_runs = v;
    *n_out = n;
    return bad;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Adds s to the sorted-later set (duplicates removed after sorting). */
static int set_add(const char ***set, size_t *n, size_t *cap, const char *s)
{
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 32;
        const char **ns = realloc((void *)*set, nc * sizeof *ns);
        if (!ns)
            return -1;
        *set = ns;
        *cap = nc;
    }
    (*set)[(*n)++] = s;
    return 0;
}

static size_t set_finish(const char **set, size_t n)
{
    if (!n)
        return 0;
    qsort((void *)set, n, sizeof *set, cmp_str);
    size_t k = 1;
    for (size_t i = 1; i < n; i++)
        if (strcmp(set[i], set[k - 1]) != 0)
            set[k++] = set[i];
    return k;
}

/* The metric keys of a run (engine series names), NUL-terminated copies in a. */
static int run_metric_keys(datadir *d, const char *run_id, tally_arena *a, const char ***keys,
                           size_t *n)
{
    size_t total = 0;
    tally_engine_series_of_run(d->engine, run_id, strlen(run_id), NULL, 0, &total);
    *keys = NULL;
    *n = 0;
    if (!total)
        return 0;
    tally_series_id *ids = malloc(total * sizeof *ids);
    const char **k = tally_arena_alloc(a, total * sizeof *k);
    if (!ids || !k) {
        free(ids);
        return -1;
    }
    size_t got = 0;
    tally_engine_series_of_run(d->engine, run_id, strlen(run_id), ids, total, &got);
    if (got > total)
        got = total;
    size_t m = 0;
    for (size_t i = 0; i < got; i++) {
        tally_series_info si;
        if (tally_engine_series_info(d->engine, ids[i], &si) == 0)
            k[m++] = tally_arena_strndup(a, si.key, si.key_len);
    }
    free(ids);
    qsort((void *)k, m, sizeof *k, cmp_str);
    *keys = k;
    *n = m;
    return 0;
}

static int export_runs(const opts *op, datadir *d, out *o)
{
    tally_arena *a = tally_arena_new();
    tally_run *runs = NULL;
    size_t n = 0;
    if (!a)
        return 1;
    int bad = select_runs(op, d, a, &runs, &n);
    if (bad) {
        tally_arena_free(a);
        return bad;
    }
    const char ***mkeys = calloc(n + 1, sizeof *mkeys);
    size_t *n_mkeys = calloc(n + 1, sizeof *n_mkeys);
    const char **ms = NULL, **ps = NULL, **ts = NULL;
    size_t n_ms = 0, n_ps = 0, n_ts = 0, c_ms = 0, c_ps = 0, c_ts = 0;
    if (!mkeys || !n_mkeys)
        bad = 1;
    for (size_t i = 0; i < n && !bad; i++) {
        if (run_metric_keys(d, runs[i].info.run_id, a, &mkeys[i], &n_mkeys[i]) != 0)
            bad = 1;
        for (size_t k = 0; k < n_mkeys[i] && !bad; k++)
            bad = set_add(&ms, &n_ms, &c_ms, mkeys[i][k]) != 0;
        for (size_t k = 0; k < runs[i].n_params && !bad; k++)
            bad = set_add(&ps, &n_ps, &c_ps, runs[i].params[k].key) != 0;
        for (size_t k = 0; k < runs[i].n_tags && !bad; k++)
            bad = set_add(&ts, &n_ts, &c_ts, runs[i].tags[k].key) != 0;
    }
    n_ms = set_finish(ms, n_ms);
    n_ps = set_finish(ps, n_ps);
    n_ts = set_finish(ts, n_ts);
    tally_buf *b = &o->b;
    if (!bad && !op->ndjson) {
        tally_buf_puts(b, "run_id,experiment_id,run_name,user_id,status,start_time,end_time,"
                          "lifecycle_stage,artifact_uri");
        const char *pre[3] = {"metrics.", "params.", "tags."};
        const char **sets[3] = {ms, ps, ts};
        size_t ns[3] = {n_ms, n_ps, n_ts};
        for (int s = 0; s < 3; s++)
            for (size_t k = 0; k < ns[s]; k++) {
                tally_buf_putc(b, ',');
                char *col = malloc(strlen(pre[s]) + strlen(sets[s][k]) + 1);
                if (!col) {
                    bad = 1;
                    break;
                }
                strcpy(col, pre[s]);
                strcat(col, sets[s][k]);
                csv_str(b, col);
                free(col);
            }
        tally_buf_putc(b, '\n');
        bad = bad || flush_line(o);
    }
    for (size_t i = 0; i < n && !bad; i++) {
        const tally_run *r = &runs[i];
        const tally_run_info *in = &r->info;
        const char *life = in->lifecycle == TALLY_LIFECYCLE_DELETED ? "deleted" : "active";
        const char *status = tally_run_status_name(in->status);
        if (op->ndjson) {
            tally_buf_printf(b, "{\"run_id\":\"%s\",\"experiment_id\":\"%lld\",\"run_name\":",
                             in->run_id, (long long)in->experiment_id);
            json_str(b, in->run_name);
            tally_buf_puts(b, ",\"user_id\":");
            json_str(b, in->user_id);
            tally_buf_printf(b, ",\"status\":\"%s\",\"start_time\":%lld", status ? status : "",
                             (long long)in->start_time_ms);
            if (in->has_end_time)
                tally_buf_printf(b, ",\"end_time\":%lld", (long long)in->end_time_ms);
            tally_buf_printf(b, ",\"lifecycle_stage\":\"%s\",\"artifact_uri\":", life);
            json_str(b, in->artifact_uri);
            tally_buf_puts(b, ",\"metrics\":{");
            for (size_t k = 0; k < n_mkeys[i]; k++) {
                double v;
                if (!latest_of(d, in->run_id, mkeys[i][k], &v))
                    continue;
                if (k)
                    tally_buf_putc(b, ',');
                json_str(b, mkeys[i][k]);
                tally_buf_putc(b, ':');
                tally_buf_put_double(b, v);
            }
            tally_buf_puts(b, "},\"params\":{");
            for (size_t k = 0; k < r->n_params; k++) {
                if (k)
                    tally_buf_putc(b, ',');
                json_str(b, r->params[k].key);
                tally_buf_putc(b, ':');
                json_str(b, r->params[k].value);
            }
            tally_buf_puts(b, "},\"tags\":{");
            for (size_t k = 0; k < r->n_tags; k++) {
                if (k)
                    tally_buf_putc(b, ',');
                json_str(b, r->tags[k].key);
                tally_buf_putc(b, ':');
                json_str(b, r->tags[k].value);
            }
            tally_buf_puts(b, "}}\n");
        } else {
            tally_buf_printf(b, "%s,%lld,", in->run_id, (long long)in->experiment_id);
            csv_str(b, in->run_name);
            tally_buf_putc(b, ',');
            csv_str(b, in->user_id);
            tally_buf_printf(b, ",%s,%lld,", status ? status : "", (long long)in->start_time_ms);
            if (in->has_end_time)
                tally_buf_printf(b, "%lld", (long long)in->end_time_ms);
            tally_buf_printf(b, ",%s,", life);
            csv_str(b, in->artifact_uri);
            for (size_t k = 0; k < n_ms; k++) {
                double v;
                tally_buf_putc(b, ',');
                if (latest_of(d, in->run_id, ms[k], &v))
                    csv_num(b, v);
            }
            for (size_t k = 0; k < n_ps; k++) {
                const char *v;
                tally_buf_putc(b, ',');
                if (kv_find(r->params, r->n_params, ps[k], &v))
                    csv_str(b, v);
            }
            for (size_t k = 0; k < n_ts; k++) {
                const char *v;
                tally_buf_putc(b, ',');
                if (kv_find(r->tags, r->n_tags, ts[k], &v))
                    csv_str(b, v);
            }
            tally_buf_putc(b, '\n');
        }
        bad = flush_line(o);
    }
    free((void *)ms);
    free((void *)ps);
    free((void *)ts);
    free(mkeys);
    free(n_mkeys);
    tally_arena_free(a);
    return bad;
}

/* ---- metrics ------------------------------------------------------------- */

static int export_series(const opts *op, datadir *d, const tally_run_info *in, const char *key,
                         out *o, tally_progress *pr)
{
    tally_series_id id;
    if (tally_engine_lookup(d->engine, in->run_id, strlen(in->run_id), key, strlen(key), &id) != 0)
        return 0;
    tally_snapshot *s = NULL;
    tally_iter *it = NULL;
    int rc = tally_snapshot_open(d->engine, id, &s);
    if (rc == 0)
        rc = tally_iter_start(s, INT64_MIN, INT64_MAX, &it);
    tally_point pts[1024];
    size_t n;
    tally_buf *b = &o->b;
    while (rc == 0 && (rc = tally_iter_next(it, pts, 1024, &n)) == 0 && n) {
        for (size_t i = 0; i < n; i++) {
            if (op->ndjson) {
                tally_buf_printf(b, "{\"run_id\":\"%s\",\"experiment_id\":\"%lld\",\"key\":",
                                 in->run_id, (long long)in->experiment_id);
                json_str(b, key);
                tally_buf_printf(b, ",\"step\":%lld,\"timestamp\":%lld,\"value\":",
                                 (long long)pts[i].step, (long long)pts[i].timestamp_ms);
                put_num(op, b, pts[i].value);
                tally_buf_puts(b, "}\n");
            } else {
                tally_buf_printf(b, "%s,%lld,", in->run_id, (long long)in->experiment_id);
                csv_str(b, key);
                tally_buf_printf(b, ",%lld,%lld,", (long long)pts[i].step,
                                 (long long)pts[i].timestamp_ms);
                csv_num(b, pts[i].value);
                tally_buf_putc(b, '\n');
            }
        }
        if (flush_line(o) != 0) {
            rc = -1;
            break;
        }
        tally_progress_add(pr, n);
    }
    tally_iter_stop(it);
    tally_snapshot_close(s);
    if (rc) {
        fprintf(stderr, "tally export: reading %s of run %s: %s\n", key, in->run_id,
                rc == -1 ? "write failed" : tally_strerror(rc));
        return 1;
    }
    return 0;
}

static int export_metrics(const opts *op, datadir *d, out *o)
{
    tally_arena *a = tally_arena_new();
    tally_run *runs = NULL;
    size_t n = 0;
    if (!a)
        return 1;
    int bad = select_runs(op, d, a, &runs, &n);
    if (bad) {
        tally_arena_free(a);
        return bad;
    }
    uint64_t total = 0;
    const char ***keys = calloc(n + 1, sizeof *keys);
    size_t *nk = calloc(n + 1, sizeof *nk);
    if (!keys || !nk)
        bad = 1;
    for (size_t i = 0; i < n && !bad; i++) {
        bad = run_metric_keys(d, runs[i].info.run_id, a, &keys[i], &nk[i]) != 0;
        for (size_t k = 0; k < nk[i] && !bad; k++) {
            tally_series_id id;
            tally_series_info si;
            if (tally_engine_lookup(d->engine, runs[i].info.run_id, strlen(runs[i].info.run_id),
                                    keys[i][k], strlen(keys[i][k]), &id) == 0 &&
                tally_engine_series_info(d->engine, id, &si) == 0)
                total += si.n_points;
        }
    }
    if (!bad && !op->ndjson) {
        tally_buf_puts(&o->b, "run_id,experiment_id,key,step,timestamp,value\n");
        bad = flush_line(o);
    }
    tally_progress pr;
    tally_progress_start(&pr, "export metrics", "points", total, op->quiet);
    for (size_t i = 0; i < n && !bad; i++)
        for (size_t k = 0; k < nk[i] && !bad; k++)
            bad = export_series(op, d, &runs[i].info, keys[i][k], o, &pr);
    tally_progress_finish(&pr);
    free(keys);
    free(nk);
    tally_arena_free(a);
    return bad;
}

static int push_arg(const char ***v, size_t *n, const char *s)
{
    const char **nv = realloc((void *)*v, (*n + 1) * sizeof *nv);
    if (!nv)
        return -1;
    nv[(*n)++] = s;
    *v = nv;
    return 0;
}

int cmd_export(int argc, char **argv)
{
    if (argc >= 1 && (strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0)) {
        fputs(usage_text, stdout);
        return 0;
    }
    opts op = {.view = TALLY_VIEW_ACTIVE_ONLY};
    int rc = 2;
    if (argc < 1) {
        fputs(usage_text, stderr);
        return 2;
    }
    if (strcmp(argv[0], "experiments") == 0)
        op.what = W_EXPERIMENTS;
    else if (strcmp(argv[0], "runs") == 0)
        op.what = W_RUNS;
    else if (strcmp(argv[0], "metrics") == 0)
        op.what = W_METRICS;
    else {
        fprintf(stderr, "tally export: export what? experiments, runs or metrics, not '%s'\n",
                argv[0]);
        return 2;
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--help") == 0) {
            fputs(usage_text, stdout);
            rc = 0;
            goto done;
        } else if (strcmp(a, "--quiet") == 0 || strcmp(a, "-q") == 0) {
            op.quiet = 1;
            continue;
        }
        if (!v) {
            fprintf(stderr, "tally export: %s needs a value\n", a);
            goto done;
        }
        i++;
        if (strcmp(a, "--data") == 0)
            op.data = v;
        else if (strcmp(a, "--output") == 0 || strcmp(a, "-o") == 0)
            op.output = v;
        else if (strcmp(a, "--filter") == 0)
            op.filter_text = v;
        else if (strcmp(a, "--format") == 0 && (strcmp(v, "csv") == 0 || strcmp(v, "ndjson") == 0))
            op.ndjson = strcmp(v, "ndjson") == 0;
        else if (strcmp(a, "--view") == 0 && strcmp(v, "active") == 0)
            op.view = TALLY_VIEW_ACTIVE_ONLY;
        else if (strcmp(a, "--view") == 0 && strcmp(v, "deleted") == 0)
            op.view = TALLY_VIEW_DELETED_ONLY;
        else if (strcmp(a, "--view") == 0 && strcmp(v, "all") == 0)
            op.view = TALLY_VIEW_ALL;
        else if (strcmp(a, "--experiment") == 0) {
            char *end;
            strtoll(v, &end, 10);
            if (!*v || *end) {
                fprintf(stderr, "tally export: --experiment wants an experiment id, not '%s'\n", v);
                goto done;
            }
            if (push_arg(&op.exps, &op.n_exps, v) != 0)
                goto oom;
        } else if (strcmp(a, "--run") == 0) {
            if (push_arg(&op.runs, &op.n_runs, v) != 0)
                goto oom;
        } else {
            fprintf(stderr, "tally export: bad argument '%s %s'\n%s", a, v, usage_text);
            goto done;
        }
    }
    if (!op.data) {
        fprintf(stderr, "tally export: --data DIR is required\n");
        goto done;
    }
    datadir d;
    if (datadir_open(&d, op.data, 1, "export") != 0) {
        rc = 1;
        goto done;
    }
    out o = {stdout, {0}};
    if (op.output && !(o.f = fopen(op.output, "w"))) {
        perror(op.output);
        datadir_close(&d);
        rc = 1;
        goto done;
    }
    int r = op.what == W_EXPERIMENTS ? export_experiments(&op, &d, &o)
            : op.what == W_RUNS      ? export_runs(&op, &d, &o)
                                     : export_metrics(&op, &d, &o);
    if (fflush(o.f) != 0 && r == 0) {
        perror("tally export: writing");
        r = 1;
    }
    if (o.f != stdout && fclose(o.f) != 0 && r == 0)
        r = 1;
    tally_buf_free(&o.b);
    datadir_close(&d);
    rc = r;
    goto done;
oom:
    fprintf(stderr, "tally export: out of memory\n");
    rc = 1;
done:
    free((void *)op.exps);
    free((void *)op.runs);
    return rc;
}
