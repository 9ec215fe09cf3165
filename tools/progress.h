/*
 * progress.h — progress reporting for every long `tally` command (import,
 * export, verify, gc, backup).
 *
 * On a terminal (stderr is a tty) it redraws one line in place, at most ten
 * times a second:
 *
 *   import mlruns  [#########.........]  48%  4.8M/10.0M points  2.1M points/s  ETA 2s
 *
 * Otherwise (a pipe, a log file, CI) it prints a plain line at most every
 * five seconds and one at the end, so logs stay short:
 *
 *   import mlruns: 4800000/10000000 points (48%), 2100000 points/s
 *
 * Invariants:
 *  (1) Everything goes to stderr: stdout stays the command's output (export
 *      writes data there).
 *  (2) tally_progress_add costs one clock read (vDSO, tens of ns) when it
 *      does not draw, so loops may call it per file or per run.
 *  (3) total 0 means unknown: no bar, no percentage, no ETA; rate only.
 *  (4) TALLY_PROGRESS=0 in the environment, or quiet set, silences it.
 */
#ifndef TALLY_TOOLS_PROGRESS_H
#define TALLY_TOOLS_PROGRESS_H

#include <stdint.h>

typedef struct tally_progress {
    const char *label;      /* "import mlruns", borrowed for the progress' life */
    const char *unit;       /* "points", "blocks", "bytes", borrowed */
    uint64_t done;          /* units done so far */
    uint64_t total;         /* units expected, 0 when unknown */
    uint64_t start_ns;      /* monotonic clock at start */
    uint64_t last_draw_ns;  /* when the line was last drawn */
    int tty;                /* stderr is a terminal: redraw in place */
    int quiet;              /* print nothing */
    int drawn;              /* a tty line is on screen (needs a newline at the end) */
} tally_progress;

/* Starts a progress for label counting unit, expecting total units (0 =
 * unknown). quiet: print nothing. */
void tally_progress_start(tally_progress *p, const char *label, const char *unit,
                          uint64_t total, int quiet);
/* Raises the expected total (e.g. once a directory walk has counted). */
void tally_progress_set_total(tally_progress *p, uint64_t total);
/* Adds n done units and redraws when due. */
void tally_progress_add(tally_progress *p, uint64_t n);
/* Prints the final line (done, elapsed, mean rate). */
void tally_progress_finish(tally_progress *p);
/* Seconds since start. */
double tally_progress_elapsed_s(const tally_progress *p);

#endif /* TALLY_TOOLS_PROGRESS_H */
