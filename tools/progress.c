/*
 * progress.c — the progress line of long `tally` commands: a redrawn bar
 * with rate and ETA on a terminal, plain periodic lines otherwise (see
 * progress.h for the formats and invariants).
 */
#include "progress.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define TTY_PERIOD_NS 100000000ull    /* redraw a terminal line every 0.1 s */
#define PLAIN_PERIOD_NS 5000000000ull /* a plain line every 5 s */
#define BAR_WIDTH 24

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* "4.8M", "12.3k", "950" into buf. */
static const char *human(double v, char *buf, size_t cap)
{
    if (v >= 1e9)
        snprintf(buf, cap, "%.1fG", v / 1e9);
    else if (v >= 1e6)
        snprintf(buf, cap, "%.1fM", v / 1e6);
    else if (v >= 1e4)
        snprintf(buf, cap, "%.1fk", v / 1e3);
    else
        snprintf(buf, cap, "%.0f", v);
    return buf;
}

void tally_progress_start(tally_progress *p, const char *label, const char *unit,
                          uint64_t total, int quiet)
{
    memset(p, 0, sizeof *p);
    p->label = label;
    p->unit = unit;
    p->total = total;
    p->start_ns = now_ns();
    p->last_draw_ns = p->start_ns;
    p->tty = isatty(STDERR_FILENO);
    const char *env = getenv("TALLY_PROGRESS");
    p->quiet = quiet || (env && strcmp(env, "0") == 0);
}

void tally_progress_set_total(tally_progress *p, uint64_t total)
{
    p->total = total;
}

double tally_progress_elapsed_s(const tally_progress *p)
{
    return (double)(now_ns() - p->start_ns) / 1e9;
}

static void draw(tally_progress *p, uint64_t t, int final)
{
    double el = (double)(t - p->start_ns) / 1e9;
    double rate = el > 0 ? (double)p->done / el : 0;
    char a[32], b[32], r[32];
    if (p->tty) {
        char bar[BAR_WIDTH + 1];
        fprintf(stderr, "\r%s ", p->label);
        if (p->total) {
            double f = (double)p->done / (double)p->total;
            if (f > 1)
                f = 1;
            int full = (int)(f * BAR_WIDTH);
            for (int i = 0; i < BAR_WIDTH; i++)
                bar[i] = i < full ? '#' : '.';
            bar[BAR_WIDTH] = 0;
            fprintf(stderr, " [%s] %3.0f%%  %s/%s %s", bar, f * 100,
                    human((double)p->done, a, sizeof a), human((double)p->total, b, sizeof b),
                    p->unit);
        } else {
            fprintf(stderr, " %s %s", human((double)p->done, a, sizeof a), p->unit);
        }
        fprintf(stderr, "  %s %s/s", human(rate, r, sizeof r), p->unit);
        if (final)
            fprintf(stderr, "  in %.1fs", el);
        else if (p->total && rate > 0 && p->done < p->total)
            fprintf(stderr, "  ETA %.0fs", (double)(p->total - p->done) / rate);
        fputs("\033[K", stderr); /* clear the rest of the line */
        p->drawn = 1;
        if (final) {
            fputc('\n', stderr);
            p->drawn = 0;
        }
    } else {
        fprintf(stderr, "%s: %llu", p->label, (unsigned long long)p->done);
        if (p->total)
            fprintf(stderr, "/%llu %s (%.0f%%)", (unsigned long long)p->total, p->unit,
                    100.0 * (double)p->done / (double)p->total);
        else
            fprintf(stderr, " %s", p->unit);
        fprintf(stderr, ", %.0f %s/s", rate, p->unit);
        if (final)
            fprintf(stderr, ", done in %.1f s", el);
        else if (p->total && rate > 0 && p->done < p->total)
            fprintf(stderr, ", ETA %.0f s", (double)(p->total - p->done) / rate);
        fputc('\n', stderr);
    }
    fflush(stderr);
    p->last_draw_ns = t;
}

void tally_progress_add(tally_progress *p, uint64_t n)
{
    p->done += n;
    if (p->quiet)
        return;
    uint64_t t = now_ns();
    if (t - p->last_draw_ns >= (p->tty ? TTY_PERIOD_NS : PLAIN_PERIOD_NS))
        draw(p, t, 0);
}

void tally_progress_finish(tally_progress *p)
{
    if (p->quiet)
        return;
    draw(p, now_ns(), 1);
}
