/*
 * bench.h — the benchmark harness's shared pieces: how a suite reports a
 * figure, timing helpers and medians. Each suite is one file
 * (bench/suite_<name>.c) exporting `int bench_suite_<name>(bench_ctx *)`,
 * listed in tally_bench.c's suite table.
 *
 * A figure is printed once, after its repetitions: as a table line, or with
 * --json as one object per line:
 *   {"suite":..,"figure":..,"value":..,"unit":..,"baseline":..,"baseline_value":..,"ratio":..}
 * baseline is null and baseline_value/ratio are null when a figure has none.
 */
#ifndef TALLY_BENCH_H
#define TALLY_BENCH_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct bench_ctx {
    int quick;            /* --quick: the whole suite in under a minute */
    int json;             /* --json: one JSON object per figure per line */
    const char *suite;    /* name of the running suite */
    const char *work_dir; /* scratch directory for data (created by the harness) */
    int n_figures;        /* figures reported so far */
    FILE *report;         /* --report-to: every figure also goes here as a JSON line */
} bench_ctx;

/* Reports one figure. baseline may be NULL (no baseline). ratio is value /
 * baseline_value when higher_is_better, else baseline_value / value, so a
 * ratio above 1 always means Tally is better. */
void bench_report(bench_ctx *c, const char *figure, double value, const char *unit,
                  const char *baseline, double baseline_value, int higher_is_better);

/* Monotonic clock in nanoseconds. */
uint64_t bench_now_ns(void);

/* Median and a percentile (0..100) of n samples; the array is sorted in place. */
double bench_median(double *samples, size_t n);
double bench_percentile(double *samples, size_t n, double pct);

/* Waits until everything written to the file system holding dir is on
 * disk (syncfs; untimed, between measurements). */
void bench_sync_fs(const char *dir);

/* A fresh empty subdirectory of c->work_dir named name; path written to buf. */
const char *bench_subdir(bench_ctx *c, const char *name, char *buf, size_t cap);

/* Total bytes of the regular files under dir (recursively). */
uint64_t bench_dir_bytes(const char *dir);

#endif /* TALLY_BENCH_H */
