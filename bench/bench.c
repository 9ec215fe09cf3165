/*
 * bench.c — the harness helpers every suite shares (bench.h): reporting a
 * figure, the clock, medians and percentiles, scratch directories and
 * directory sizes.
 *
 * Invariants:
 *  (1) A figure is printed exactly once, when bench_report() is called: one
 *      JSON object on one line with --json, else one table row (the header is
 *      printed before the first row of a suite).
 *  (2) ratio > 1 always means Tally is better (see bench.h); it is null in
 *      JSON whenever the baseline is absent or either value is not a positive
 *      finite number.
 *  (3) Output is flushed after every figure, so a suite that dies later still
 *      leaves the figures it measured.
 */
#include "bench.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Prints s as a JSON string (figure and unit names are plain ASCII, but be
 * correct anyway). */
static void json_string(FILE *f, const char *s)
{
    putc('"', f);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            fprintf(f, "\\%c", ch);
        else if (ch < 0x20)
            fprintf(f, "\\u%04x", ch);
        else
            putc(ch, f);
    }
    putc('"', f);
}

/* JSON has no NaN or infinity: those become null. */
static void json_number(FILE *f, double v)
{
    if (isfinite(v))
        fprintf(f, "%.10g", v);
    else
        fputs("null", f);
}

/* One figure as one JSON object on one line (the --json format). */
static void json_figure(FILE *f, const bench_ctx *c, const char *figure, double value,
                        const char *unit, const char *baseline, double baseline_value,
                        double ratio)
{
    fputs("{\"suite\":", f);
    json_string(f, c->suite);
    fputs(",\"figure\":", f);
    json_string(f, figure);
    fputs(",\"value\":", f);
    json_number(f, value);
    fputs(",\"unit\":", f);
    json_string(f, unit);
    fputs(",\"baseline\":", f);
    if (baseline)
        json_string(f, baseline);
    else
        fputs("null", f);
    fputs(",\"baseline_value\":", f);
    if (baseline)
        json_number(f, baseline_value);
    else
        fputs("null", f);
    fputs(",\"ratio\":", f);
    json_number(f, ratio);
    fputs("}\n", f);
    fflush(f);
}

void bench_report(bench_ctx *c, const char *figure, double value, const char *unit,
                  const char *baseline, double baseline_value, int higher_is_better)
{
    double ratio = NAN;
    if (baseline && isfinite(value) && isfinite(baseline_value) && value > 0 && baseline_value > 0)
        ratio = higher_is_better ? value / baseline_value : baseline_value / value;

    if (c->report)
        json_figure(c->report, c, figure, value, unit, baseline, baseline_value, ratio);
    if (c->json) {
        json_figure(stdout, c, figure, value, unit, baseline, baseline_value, ratio);
    } else {
        if (c->n_figures == 0) {
            printf("%-8s %-34s %14s %-9s %-22s %14s %9s\n", "suite", "figure", "value", "unit",
                   "baseline", "base value", "ratio");
        }
        printf("%-8s %-34s %14.4g %-9s %-22s ", c->suite, figure, value, unit,
               baseline ? baseline : "-");
        if (baseline)
            printf("%14.4g ", baseline_value);
        else
            printf("%14s ", "-");
        if (isfinite(ratio))
            printf("%8.2fx\n", ratio);
        else
            printf("%9s\n", "-");
    }
    c->n_figures++;
    fflush(stdout);
}

uint64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double bench_percentile(double *samples, size_t n, double pct)
{
    if (n == 0)
        return NAN;
    qsort(samples, n, sizeof *samples, cmp_double);
    if (pct <= 0)
        return samples[0];
    if (pct >= 100)
        return samples[n - 1];
    /* Linear interpolation between closest ranks. */
    double rank = pct / 100.0 * (double)(n - 1);
    size_t lo = (size_t)rank;
    double frac = rank - (double)lo;
    if (lo + 1 >= n)
        return samples[n - 1];
    return samples[lo] + (samples[lo + 1] - samples[lo]) * frac;
}

double bench_median(double *samples, size_t n)
{
    return bench_percentile(samples, n, 50.0);
}

/* Removes everything under path (not following symlinks), then path itself. */
static int remove_tree(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return errno == ENOENT ? 0 : -errno;
    if (!S_ISDIR(st.st_mode))
        return remove(path) == 0 ? 0 : -errno;
    DIR *d = opendir(path);
    if (!d)
        return -errno;
    struct dirent *de;
    int rc = 0;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        char child[4096];
        if ((size_t)snprintf(child, sizeof child, "%s/%s", path, de->d_name) >= sizeof child) {
            rc = -ENAMETOOLONG;
            continue;
        }
        int r = remove_tree(child);
        if (r && !rc)
            rc = r;
    }
    closedir(d);
    if (rmdir(path) != 0 && !rc)
        rc = -errno;
    return rc;
}

/* Exposed to tally_bench.c for the scratch directory's removal at exit. */
int bench__remove_tree(const char *path);
int bench__remove_tree(const char *path)
{
    return remove_tree(path);
}

void bench_sync_fs(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        syncfs(fd);
        close(fd);
    }
}

const char *bench_subdir(bench_ctx *c, const char *name, char *buf, size_t cap)
{
    if ((size_t)snprintf(buf, cap, "%s/%s", c->work_dir, name) >= cap) {
        fprintf(stderr, "tally-bench: path too long: %s/%s\n", c->work_dir, name);
        exit(1);
    }
    remove_tree(buf);
    if (mkdir(buf, 0755) != 0) {
        fprintf(stderr, "tally-bench: mkdir %s: %s\n", buf, strerror(errno));
        exit(1);
    }
    return buf;
}

uint64_t bench_dir_bytes(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    uint64_t total = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        char child[4096];
        if ((size_t)snprintf(child, sizeof child, "%s/%s", dir, de->d_name) >= sizeof child)
            continue;
        struct stat st;
        if (lstat(child, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode))
            total += bench_dir_bytes(child);
        else if (S_ISREG(st.st_mode))
            total += (uint64_t)st.st_size;
    }
    closedir(d);
    return total;
}
