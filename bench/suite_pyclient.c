/*
 * suite_pyclient.c — the `pyclient` suite of tally-bench: the Python client
 * (clients/python) as a training loop sees it. The measuring is done in
 * Python by bench/pyclient_bench.py (a C harness cannot time a Python call);
 * this file runs it with the machine's python3, points it at the `tally`
 * binary next to tally-bench (TALLY_BIN_DIR) and the suite's scratch
 * directory, and reports each "FIGURE name value unit baseline
 * baseline_value" line it prints. Figures and baselines are described in the
 * script's header.
 *
 * Invariants:
 *  (1) A figure is reported only as the script printed it; a script that
 *      fails (non-zero exit) fails the suite, after its figures so far.
 *  (2) Lower is better for figures in "us", higher for everything else.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

#ifndef TALLY_SOURCE_DIR
#error "TALLY_SOURCE_DIR must name the source tree (bench/CMakeLists.txt sets it)"
#endif

static void report_line(bench_ctx *c, char *line)
{
    char name[128], unit[32], base[128], bval[64];
    double value;
    if (sscanf(line, "FIGURE %127s %lf %31s %127s %63s", name, &value, unit, base, bval) != 5)
        return;
    int lower_better = strcmp(unit, "us") == 0;
    if (strcmp(base, "-") == 0)
        bench_report(c, name, value, unit, NULL, 0, !lower_better);
    else
        bench_report(c, name, value, unit, base, strtod(bval, NULL), !lower_better);
}

int bench_suite_pyclient(bench_ctx *c)
{
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return 1;
    exe[n] = 0;
    *strrchr(exe, '/') = 0;
    if (setenv("TALLY_BIN_DIR", exe, 1) != 0)
        return 1;
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "python3 '%s/bench/pyclient_bench.py' --work '%s'%s", TALLY_SOURCE_DIR,
             c->work_dir, c->quick ? " --quick" : "");
    FILE *p = popen(cmd, "r");
    if (!p) {
        perror("pyclient: popen");
        return 1;
    }
    char line[1024];
    while (fgets(line, sizeof line, p))
        report_line(c, line);
    int st = pclose(p);
    if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fprintf(stderr, "pyclient: bench/pyclient_bench.py failed (status %d)\n", st);
        return 1;
    }
    return 0;
}
