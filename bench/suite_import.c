/*
 * suite_import.c — the `import` suite of tally-bench: `tally import mlruns`
 * on an MLflow file store of R runs x 10 metrics x S steps (1,000 x 10 x
 * 10,000 = 100 M points; --quick 100 x 10 x 1,000 = 1 M), and the size of
 * the same data before (the mlruns tree) and after (the Tally data
 * directory).
 *
 * The tree is written in MLflow's FileStore layout: one experiment, each
 * run with meta.yaml, 3 params, 2 tags and metrics/<key> files of
 * "timestamp value step" lines; values are GEN_MIX curves (bench/gen.h)
 * printed with 17 significant digits (%.17g — Python's repr prints the
 * shortest round-trip text, the same length for most such values).
 *
 * Figures:
 *  - import_mlruns_points_per_s: points / wall time of the `tally` binary
 *    (next to tally-bench) importing the tree into a fresh data directory,
 *    metadata, ledger and close (seal, checkpoint) included. Baseline: the
 *    same points inserted in MLflow's SQLite schema (sqlite_baseline.c,
 *    MLflow's log_batch transactions of 1,000) — what moving the file store
 *    into MLflow's own SQL store costs per point; measured on the first
 *    1 M [200 k] points (it runs at ~0.1 M points/s; the whole data would
 *    take ~15 minutes), in the same run.
 *  - import_mlruns_points_per_cpu_s: points per CPU-second of the import
 *    (user + system time of all its threads, from wait4): what the import
 *    costs whatever else the machine is doing (wall time on a shared
 *    machine mostly measures the others). Baseline: the parse-only pass's
 *    points per CPU-second — storing everything costs this much on top of
 *    merely reading and parsing the text.
 *  - parse_only_points_per_s: reading and parsing the metric files alone
 *    (strtoll/strtod, one thread, no storing), for scale; no baseline.
 *  - bytes_per_point_after_import: the Tally data directory's bytes per
 *    point after the import; baseline the mlruns tree's bytes per point.
 * The page cache is warm for the import (the tree was just written), as it
 * is for the parse-only figure.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "gen.h"
#include "sqlite_baseline.h"

#define N_METRICS 10

typedef struct shape {
    int runs;
    int steps;
} shape;

static const char *metric_name(int k)
{
    static const char *names[N_METRICS] = {"train/loss", "val/loss", "lr", "grad_norm",
                                           "accuracy", "samples", "train/acc", "val/acc",
                                           "throughput", "epoch"};
    return names[k];
}

static void run_uuid(int r, char out[33])
{
    snprintf(out, 33, "%08x%08x%08x%08x", 0x7a11u, (unsigned)r * 2654435761u, 0xbe4cu,
             (unsigned)r);
}

static int write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fputs(text, f);
    return fclose(f);
}

/* The mlruns tree under dir; total points in *n_points. */
static int write_mlruns(const char *dir, shape s, uint64_t *n_points)
{
    char p[1400], q[1500];
    snprintf(p, sizeof p, "%s/1", dir);
    if (mkdir(dir, 0755) != 0 || mkdir(p, 0755) != 0)
        return -1;
    snprintf(q, sizeof q, "%s/meta.yaml", p);
    char meta[2048];
    snprintf(meta, sizeof meta,
             "artifact_location: file://%s/1\ncreation_time: 1700000000000\nexperiment_id: '1'\n"
             "last_update_time: 1700000000000\nlifecycle_stage: active\nname: bench\n",
             dir);
    if (write_text(q, meta) != 0)
        return -1;
    int64_t *steps = malloc((size_t)s.steps * sizeof *steps);
    int64_t *ts = malloc((size_t)s.steps * sizeof *ts);
    double *vals = malloc((size_t)s.steps * sizeof *vals);
    char *buf = malloc((size_t)s.steps * 64 + 1);
    if (!steps || !ts || !vals || !buf)
        return -1;
    *n_points = 0;
    for (int r = 0; r < s.runs; r++) {
        char id[33];
        run_uuid(r, id);
        char rd[1400];
        snprintf(rd, sizeof rd, "%s/1/%s", dir, id);
        const char *subs[] = {"", "/metrics", "/metrics/train", "/metrics/val", "/params",
                              "/tags", "/artifacts"};
        for (size_t i = 0; i < sizeof subs / sizeof *subs; i++) {
            snprintf(q, sizeof q, "%s%s", rd, subs[i]);
            if (mkdir(q, 0755) != 0)
                return -1;
        }
        snprintf(q, sizeof q, "%s/meta.yaml", rd);
        snprintf(meta, sizeof meta,
                 "artifact_uri: file://%s/artifacts\nend_time: 1700000900000\n"
                 "entry_point_name: ''\nexperiment_id: '1'\nlifecycle_stage: active\n"
                 "run_id: %s\nrun_name: run-%d\nrun_uuid: %s\nsource_name: ''\nsource_type: 4\n"
                 "source_version: ''\nstart_time: 1700000000000\nstatus: 3\ntags: []\n"
                 "user_id: bench\n",
                 rd, id, r, id);
        if (write_text(q, meta) != 0)
            return -1;
        const char *params[][2] = {{"lr", "0.0003"}, {"batch_size", "256"}, {"optimizer", "adamw"}};
        for (int i = 0; i < 3; i++) {
            snprintf(q, sizeof q, "%s/params/%s", rd, params[i][0]);
            if (write_text(q, params[i][1]) != 0)
                return -1;
        }
        snprintf(q, sizeof q, "%s/tags/mlflow.runName", rd);
        snprintf(meta, sizeof meta, "run-%d", r);
        if (write_text(q, meta) != 0)
            return -1;
        snprintf(q, sizeof q, "%s/tags/mlflow.user", rd);
        if (write_text(q, "bench") != 0)
            return -1;
        for (int k = 0; k < N_METRICS; k++) {
            gen_series(GEN_MIX, (uint64_t)r * N_METRICS + (uint64_t)k, 0, (size_t)s.steps, steps,
                       ts, vals);
            size_t len = 0;
            for (int i = 0; i < s.steps; i++)
                len += (size_t)sprintf(buf + len, "%" PRId64 " %.17g %" PRId64 "\n", ts[i],
                                       vals[i], steps[i]);
            snprintf(q, sizeof q, "%s/metrics/%s", rd, metric_name(k));
            int fd = open(q, O_WRONLY | O_CREAT | O_TRUNC, 0644);
            if (fd < 0 || write(fd, buf, len) != (ssize_t)len || close(fd) != 0)
                return -1;
            *n_points += (uint64_t)s.steps;
        }
    }
    free(steps);
    free(ts);
    free(vals);
    free(buf);
    return 0;
}

/* Reads and parses every metric file (the parse-only figure). */
static int parse_all(const char *dir, shape s, uint64_t *n)
{
    char q[1500];
    size_t cap = 1 << 20;
    char *buf = malloc(cap);
    if (!buf)
        return -1;
    double sink = 0;
    *n = 0;
    for (int r = 0; r < s.runs; r++) {
        char id[33];
        run_uuid(r, id);
        for (int k = 0; k < N_METRICS; k++) {
            snprintf(q, sizeof q, "%s/1/%s/metrics/%s", dir, id, metric_name(k));
            int fd = open(q, O_RDONLY);
            struct stat st;
            if (fd < 0 || fstat(fd, &st) != 0)
                return -1;
            if ((size_t)st.st_size + 1 > cap) {
                cap = (size_t)st.st_size + 1;
                char *nb = realloc(buf, cap);
                if (!nb)
                    return -1;
                buf = nb;
            }
            ssize_t got = read(fd, buf, (size_t)st.st_size);
            close(fd);
            if (got != st.st_size)
                return -1;
            buf[got] = 0;
            char *p = buf, *e;
            while (*p) {
                long long t = strtoll(p, &e, 10);
                double v = strtod(e, &p);
                long long stp = strtoll(p, &e, 10);
                p = e;
                while (*p == '\n')
                    p++;
                sink += (double)t + v + (double)stp;
                (*n)++;
            }
        }
    }
    free(buf);
    return sink == 12345.678 ? 1 : 0; /* keeps the loop from being optimised away */
}

/* The tally binary next to this tally-bench. */
static int tally_path(char *out, size_t cap)
{
    ssize_t n = readlink("/proc/self/exe", out, cap - 16);
    if (n <= 0)
        return -1;
    out[n] = 0;
    char *slash = strrchr(out, '/');
    if (!slash)
        return -1;
    strcpy(slash + 1, "tally");
    return access(out, X_OK);
}

/* Runs `tally import mlruns`; wall seconds, or -1. *cpu_s gets the child's
 * user + system CPU seconds (all its threads). */
static double run_import(const char *tally, const char *src, const char *data, double *cpu_s)
{
    uint64_t t0 = bench_now_ns();
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        if (devnull >= 0)
            dup2(devnull, STDOUT_FILENO);
        execl(tally, tally, "import", "mlruns", src, "--data", data, "--quiet", (char *)NULL);
        _exit(127);
    }
    int status;
    struct rusage ru;
    if (wait4(pid, &status, 0, &ru) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "import: `tally import mlruns` failed (status %d)\n", status);
        return -1;
    }
    *cpu_s = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
             (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    return (double)(bench_now_ns() - t0) / 1e9;
}

int bench_suite_import(bench_ctx *c);
int bench_suite_import(bench_ctx *c)
{
    shape s = c->quick ? (shape){100, 1000} : (shape){1000, 10000};
    char tally[1200], src[1200], data[1100], base[1100];
    if (tally_path(tally, sizeof tally) != 0) {
        fprintf(stderr, "import: no `tally` binary next to tally-bench\n");
        return 1;
    }
    bench_subdir(c, "src", base, sizeof base);
    snprintf(src, sizeof src, "%s/mlruns", base);
    uint64_t n_points;
    uint64_t t0 = bench_now_ns();
    fprintf(stderr, "import: writing the mlruns tree (%d runs x %d metrics x %d steps)...\n",
            s.runs, N_METRICS, s.steps);
    if (write_mlruns(src, s, &n_points) != 0) {
        fprintf(stderr, "import: writing the tree failed: %s\n", strerror(errno));
        return 1;
    }
    sync();
    fprintf(stderr, "import: tree written in %.1f s\n", (double)(bench_now_ns() - t0) / 1e9);
    uint64_t src_bytes = bench_dir_bytes(src);

    /* parse only, then the import (median of 3 with --quick, 1 full-size) */
    uint64_t parsed = 0;
    struct rusage r0, r1;
    getrusage(RUSAGE_SELF, &r0);
    t0 = bench_now_ns();
    if (parse_all(src, s, &parsed) < 0 || parsed != n_points) {
        fprintf(stderr, "import: parse-only pass failed\n");
        return 1;
    }
    double parse_s = (double)(bench_now_ns() - t0) / 1e9;
    getrusage(RUSAGE_SELF, &r1);
    double parse_cpu_s = (double)(r1.ru_utime.tv_sec - r0.ru_utime.tv_sec) +
                         (double)(r1.ru_utime.tv_usec - r0.ru_utime.tv_usec) / 1e6 +
                         (double)(r1.ru_stime.tv_sec - r0.ru_stime.tv_sec) +
                         (double)(r1.ru_stime.tv_usec - r0.ru_stime.tv_usec) / 1e6;

    int reps = c->quick ? 3 : 1;
    double times[3], cpus[3];
    uint64_t data_bytes = 0;
    for (int i = 0; i < reps; i++) {
        char name[32];
        snprintf(name, sizeof name, "data%d", i);
        bench_subdir(c, name, data, sizeof data);
        fprintf(stderr, "import: `tally import mlruns` (%d of %d)...\n", i + 1, reps);
        times[i] = run_import(tally, src, data, &cpus[i]);
        if (times[i] < 0)
            return 1;
        data_bytes = bench_dir_bytes(data);
    }
    double import_s = bench_median(times, (size_t)reps);
    double import_cpu_s = bench_median(cpus, (size_t)reps);

    /* baseline: MLflow's SQLite schema, on a prefix of the same points */
    uint64_t base_target = c->quick ? 200000 : 1000000, base_n = 0;
    char db[1200];
    snprintf(db, sizeof db, "%s/mlflow.db", base);
    sqlite_baseline *b;
    if (sqlite_baseline_open(db, &b) != 0)
        return 1;
    int64_t *steps = malloc((size_t)s.steps * sizeof *steps);
    int64_t *ts = malloc((size_t)s.steps * sizeof *ts);
    double *vals = malloc((size_t)s.steps * sizeof *vals);
    if (!steps || !ts || !vals)
        return 1;
    double base_s = 0;
    for (int r = 0; r < s.runs && base_n < base_target; r++) {
        char id[33];
        run_uuid(r, id);
        for (int k = 0; k < N_METRICS && base_n < base_target; k++) {
            gen_series(GEN_MIX, (uint64_t)r * N_METRICS + (uint64_t)k, 0, (size_t)s.steps, steps,
                       ts, vals);
            uint64_t t1 = bench_now_ns();
            if (sqlite_baseline_log_series(b, id, metric_name(k), steps, ts, vals,
                                           (size_t)s.steps) != 0)
                return 1;
            base_s += (double)(bench_now_ns() - t1) / 1e9;
            base_n += (uint64_t)s.steps;
        }
    }
    sqlite_baseline_close(b);
    free(steps);
    free(ts);
    free(vals);

    fprintf(stderr,
            "import: %" PRIu64 " points; mlruns %.1f MB, Tally %.1f MB; import %.2f s wall "
            "(%.2f s CPU), parse only %.2f s wall (%.2f s CPU), SQLite %" PRIu64
            " points in %.2f s\n",
            n_points, (double)src_bytes / 1e6, (double)data_bytes / 1e6, import_s, import_cpu_s,
            parse_s, parse_cpu_s, base_n, base_s);
    bench_report(c, "import_mlruns_points_per_s", (double)n_points / import_s, "points/s",
                 "sqlite-mlflow-schema", (double)base_n / base_s, 1);
    bench_report(c, "import_mlruns_points_per_cpu_s", (double)n_points / import_cpu_s,
                 "points/CPU-s", "parse-only", (double)n_points / parse_cpu_s, 1);
    bench_report(c, "parse_only_points_per_s", (double)n_points / parse_s, "points/s", NULL, 0,
                 1);
    bench_report(c, "bytes_per_point_after_import", (double)data_bytes / (double)n_points,
                 "bytes/point", "mlruns-file-store", (double)src_bytes / (double)n_points, 0);
    return 0;
}
