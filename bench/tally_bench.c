/*
 * tally_bench.c — main of tally-bench, the benchmark harness.
 *
 *   tally-bench SUITE [--quick] [--json] [--work-dir DIR] [--keep]
 *   tally-bench list
 *   tally-bench --help
 *
 * Each suite is one file bench/suite_<name>.c exporting
 * `int bench_suite_<name>(bench_ctx *)` (0 on success). Adding a suite is one
 * line in BENCH_SUITES below: the X-macro declares the function and fills the
 * table.
 *
 * Invariants:
 *  (1) An unknown suite or a bad option is a usage error: message on stderr,
 *      exit status 2. A suite that fails exits 1.
 *  (2) Every suite runs in a fresh scratch directory: created here under
 *      --work-dir, else $TMPDIR, else /tmp, and removed at exit unless --keep.
 *  (3) stdout carries only figures (bench.c); progress and errors go to stderr,
 *      so `--json` output can be piped as is.
 */
#include "bench.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* name, one-line description. Keep in the order `all` should run them. */
#define BENCH_SUITES(X)                                                                 \
    X(codec, "column encodings on generated ML curves: bytes/point, encode/decode speed") \
    X(engine, "ingest, per-point append, bytes/point, recovery, reopen, sequential read") \
    X(query, "M4 charts over many runs (warm, cold, zoom), decode speed, MLflow bulk interval") \
    X(http, "the server end to end: log-batch, native ingest, get-history, M4 query, RSS") \
    X(pyclient, "the Python client: per-call overhead, sustained points/s, vs MLflow-style REST") \
    X(registry, "model-versions/search over HTTP on 10,000 versions vs MLflow's schema")          \
    X(artifacts, "artifact proxy: 1 GiB upload/download over loopback vs copy/read, server RSS")  \
    X(ui, "the web UI in headless Chromium: runs page, compare chart of 100 runs, zoom")          \
    X(import, "tally import mlruns: points/s and size before/after, SQLite baseline")             \
    X(crash, "kill -9 under load, restart, every acknowledged write checked (100 restarts)")      \
    X(soak, "30 minutes of mixed traffic: throughput, p99, RSS and open files over time")

#define BENCH_DECLARE_(name, desc) int bench_suite_##name(bench_ctx *c);
BENCH_SUITES(BENCH_DECLARE_)
#undef BENCH_DECLARE_

typedef struct bench_suite {
    const char *name;        /* as typed on the command line */
    const char *description; /* one line for `list` and --help */
    int (*run)(bench_ctx *); /* 0 on success */
} bench_suite;

static const bench_suite suites[] = {
#define BENCH_ENTRY_(name, desc) {#name, desc, bench_suite_##name},
    BENCH_SUITES(BENCH_ENTRY_)
#undef BENCH_ENTRY_
};
#define N_SUITES (sizeof suites / sizeof suites[0])

int bench__remove_tree(const char *path); /* bench.c */

/* --report-to: bench/report_to.py (the Python client) reads the figures as
 * JSON lines on its stdin and logs them as one run. The URL and names are
 * passed through the environment, never through a shell. */
static FILE *report_open(const char *url, const char *suite, int quick)
{
    if (setenv("TALLY_REPORT_URL", url, 1) != 0 || setenv("TALLY_REPORT_SUITE", suite, 1) != 0 ||
        setenv("TALLY_REPORT_QUICK", quick ? "1" : "0", 1) != 0)
        return NULL;
    FILE *f = popen("exec python3 \"" TALLY_SOURCE_DIR "/bench/report_to.py\"", "w");
    if (!f)
        fprintf(stderr, "tally-bench: cannot start bench/report_to.py: %s\n", strerror(errno));
    return f;
}

/* Tells the reporter how the suite ended and waits for it: 0 when the run
 * was logged. */
static int report_close(FILE *f, int suite_rc)
{
    fprintf(f, "{\"end\":%d}\n", suite_rc);
    int st = pclose(f);
    return (st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0) ? 0 : -1;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: tally-bench SUITE [--quick] [--json] [--work-dir DIR] [--keep] [--report-to URL]\n"
            "       tally-bench list\n"
            "\n"
            "  --quick         smaller data: each suite finishes in under a minute\n"
            "  --json          one JSON object per figure per line:\n"
            "                  suite, figure, value, unit, baseline, baseline_value, ratio\n"
            "  --work-dir DIR  make the scratch directory under DIR (default $TMPDIR or /tmp)\n"
            "  --keep          leave the scratch directory behind\n"
            "  --report-to URL log this benchmark run into the Tally server at URL as a run of\n"
            "                  experiment 'tally-bench' (params suite, machine, commit; one\n"
            "                  metric per figure), through the Python client\n"
            "\n"
            "suites:\n");
    for (size_t i = 0; i < N_SUITES; i++)
        fprintf(f, "  %-8s %s\n", suites[i].name, suites[i].description);
}

int main(int argc, char **argv)
{
    const char *suite_name = NULL;
    const char *parent = NULL;
    const char *report_to = NULL;
    int quick = 0, json = 0, keep = 0;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "--quick") == 0) {
            quick = 1;
        } else if (strcmp(a, "--json") == 0) {
            json = 1;
        } else if (strcmp(a, "--keep") == 0) {
            keep = 1;
        } else if (strcmp(a, "--work-dir") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "tally-bench: --work-dir needs a directory\n");
                return 2;
            }
            parent = argv[++i];
        } else if (strncmp(a, "--work-dir=", 11) == 0) {
            parent = a + 11;
        } else if (strcmp(a, "--report-to") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "tally-bench: --report-to needs a server URL\n");
                return 2;
            }
            report_to = argv[++i];
        } else if (strncmp(a, "--report-to=", 12) == 0) {
            report_to = a + 12;
        } else if (a[0] == '-') {
            fprintf(stderr, "tally-bench: unknown option %s\n", a);
            usage(stderr);
            return 2;
        } else if (!suite_name) {
            suite_name = a;
        } else {
            fprintf(stderr, "tally-bench: more than one suite given (%s, %s)\n", suite_name, a);
            return 2;
        }
    }
    if (!suite_name) {
        usage(stderr);
        return 2;
    }
    if (strcmp(suite_name, "list") == 0) {
        for (size_t i = 0; i < N_SUITES; i++)
            printf("%-8s %s\n", suites[i].name, suites[i].description);
        return 0;
    }
    const bench_suite *suite = NULL;
    for (size_t i = 0; i < N_SUITES; i++)
        if (strcmp(suites[i].name, suite_name) == 0)
            suite = &suites[i];
    if (!suite) {
        fprintf(stderr, "tally-bench: unknown suite '%s' (try `tally-bench list`)\n", suite_name);
        return 2;
    }

    if (!parent || !*parent)
        parent = getenv("TMPDIR");
    if (!parent || !*parent)
        parent = "/tmp";
    char work_dir[4096];
    if ((size_t)snprintf(work_dir, sizeof work_dir, "%s/tally-bench-%s-XXXXXX", parent,
                         suite->name) >= sizeof work_dir) {
        fprintf(stderr, "tally-bench: work dir path too long\n");
        return 2;
    }
    if (!mkdtemp(work_dir)) {
        fprintf(stderr, "tally-bench: cannot create a scratch directory under %s: %s\n", parent,
                strerror(errno));
        return 1;
    }

    bench_ctx c;
    memset(&c, 0, sizeof c);
    c.quick = quick;
    c.json = json;
    c.suite = suite->name;
    c.work_dir = work_dir;

    if (report_to && !(c.report = report_open(report_to, suite->name, quick)))
        return 1;
    fprintf(stderr, "tally-bench: suite %s%s, scratch %s\n", suite->name, quick ? " (quick)" : "",
            work_dir);
    int rc = suite->run(&c);
    fflush(stdout);
    if (c.report && report_close(c.report, rc) != 0) {
        fprintf(stderr, "tally-bench: reporting to %s failed (see above)\n", report_to);
        if (rc == 0)
            rc = 1;
    }

    if (keep) {
        fprintf(stderr, "tally-bench: kept %s\n", work_dir);
    } else {
        int r = bench__remove_tree(work_dir);
        if (r)
            fprintf(stderr, "tally-bench: could not remove %s: %s\n", work_dir, strerror(-r));
    }
    if (rc != 0) {
        fprintf(stderr, "tally-bench: suite %s failed (%d)\n", suite->name, rc);
        return 1;
    }
    return 0;
}
