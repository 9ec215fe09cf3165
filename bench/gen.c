/*
 * gen.c — deterministic, realistic ML metric series (see gen.h).
 *
 * Every random number is a hash of (seed, kind, stream, index), a counter-
 * based generator (splitmix64's finaliser), so point i of a series is
 * computed on its own from i: generating [first, first + n) in pieces gives
 * exactly the points of one call.
 *
 * Invariants:
 *  (1) A point depends only on (kind, seed, index): no state is carried from
 *      one point to the next (held values are recomputed from their eval
 *      number, jitter is a bounded offset and not a random walk).
 *  (2) Timestamps are strictly increasing and steps are first, first+1, ...
 *  (3) float32-origin kinds (loss, grad norm) compute each value in float
 *      and store (double)(float)x, so every value is float32-exact.
 */
#include "gen.h"

#include <math.h>

#define EPOCH_MS INT64_C(1700000000000) /* 2023-11-14: where every series starts */

/* Hash streams: independent random sequences of one series. */
enum {
    S_PARAM = 1,  /* per-series parameters (by parameter number) */
    S_JITTER = 2, /* timestamp jitter */
    S_NOISE = 3,  /* value noise */
    S_SPIKE = 4,  /* rare spikes */
    S_EVAL = 5    /* per-evaluation noise */
};

static inline uint64_t mix64(uint64_t z)
{
    z += UINT64_C(0x9E3779B97F4A7C15);
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

static inline uint64_t hash3(uint64_t key, uint64_t stream, uint64_t i)
{
    return mix64(key ^ mix64(stream * UINT64_C(0xD6E8FEB86659FD93) ^ mix64(i)));
}

/* Uniform in [0, 1). */
static inline double unit(uint64_t h)
{
    return (double)(h >> 11) * (1.0 / 9007199254740992.0);
}

/* Uniform in [lo, hi), from parameter number k of the series. */
static double param(uint64_t key, uint64_t k, double lo, double hi)
{
    return lo + (hi - lo) * unit(hash3(key, S_PARAM, k));
}

/* Roughly standard normal (Irwin-Hall of four 16-bit uniforms), within +-3.5. */
static inline double gauss(uint64_t h)
{
    double s = 0;
    for (int k = 0; k < 4; k++)
        s += (double)((h >> (16 * k)) & 0xFFFF) * (1.0 / 65536.0);
    return (s - 2.0) * 1.7320508075688772;
}

static inline float gaussf(uint64_t h)
{
    return (float)gauss(h);
}

/* Bounded jitter, 0..7 ms. */
static inline int64_t jitter(uint64_t key, uint64_t i)
{
    return (int64_t)(hash3(key, S_JITTER, i) & 7);
}

static uint64_t key_of(gen_kind kind, uint64_t seed)
{
    return mix64(seed * UINT64_C(0x9E3779B97F4A7C15) + (uint64_t)kind + 1);
}

const char *gen_kind_name(gen_kind kind)
{
    switch (kind) {
    case GEN_LOSS_F32:
        return "loss_f32";
    case GEN_ACCURACY_HELD:
        return "accuracy_held";
    case GEN_COSINE_LR:
        return "cosine_lr";
    case GEN_GRAD_NORM:
        return "grad_norm";
    case GEN_COUNTER:
        return "counter";
    case GEN_MIX:
        return "mix";
    case GEN_N_KINDS:
        break;
    }
    return "?";
}

/* The kind series `seed` has in GEN_MIX (see gen.h for the proportions). */
static gen_kind mix_kind(uint64_t seed)
{
    unsigned r = (unsigned)(seed % 20);
    if (r < 8)
        return GEN_LOSS_F32; /* 40%: train and validation losses */
    if (r < 11)
        return GEN_GRAD_NORM; /* 15% */
    if (r < 14)
        return GEN_COSINE_LR; /* 15% */
    if (r < 17)
        return GEN_ACCURACY_HELD; /* 15% */
    return GEN_COUNTER;           /* 15% */
}

static void gen_loss(uint64_t key, uint64_t first, size_t n, int64_t *ts, double *v)
{
    int64_t interval = 50 + (int64_t)(param(key, 0, 0, 251));
    int64_t t0 = EPOCH_MS + (int64_t)param(key, 1, 0, 86400000.0);
    float floor_ = (float)param(key, 2, 0.05, 0.6);
    float a = (float)param(key, 3, 1.0, 4.0);
    float tau = (float)param(key, 4, 2000.0, 60000.0);
    float b = (float)param(key, 5, 0.2, 1.5);
    float c = (float)param(key, 6, 500.0, 5000.0);
    float alpha = (float)param(key, 7, 0.3, 0.8);
    float sigma = (float)param(key, 8, 0.015, 0.03);
    for (size_t k = 0; k < n; k++) {
        uint64_t i = first + k;
        float x = (float)i;
        float trend = floor_ + a * expf(-x / tau) + b * powf(1.0f + x / c, -alpha);
        float y = trend * (1.0f + sigma * gaussf(hash3(key, S_NOISE, i)));
        v[k] = (double)y;
        ts[k] = t0 + (int64_t)i * interval + jitter(key, i);
    }
}

static void gen_accuracy(uint64_t key, uint64_t first, size_t n, int64_t *ts, double *v)
{
    int64_t interval = 50 + (int64_t)(param(key, 0, 0, 251));
    int64_t t0 = EPOCH_MS + (int64_t)param(key, 1, 0, 86400000.0);
    uint64_t every = 500 + (uint64_t)param(key, 2, 0, 1501); /* steps between evals */
    double n_eval = 10000;                                   /* eval set size */
    double init = param(key, 3, 0.05, 0.2);
    double final = param(key, 4, 0.7, 0.97);
    double tau = param(key, 5, 5.0, 60.0); /* in evaluations */
    for (size_t k = 0; k < n; k++) {
        uint64_t i = first + k;
        uint64_t e = i / every;
        double acc = final - (final - init) * exp(-(double)e / tau) +
                     0.004 * gauss(hash3(key, S_EVAL, e));
        double correct = floor(acc * n_eval + 0.5);
        if (correct < 0)
            correct = 0;
        if (correct > n_eval)
            correct = n_eval;
        v[k] = correct / n_eval;
        ts[k] = t0 + (int64_t)i * interval;
    }
}

static void gen_cosine(uint64_t key, uint64_t first, size_t n, int64_t *ts, double *v)
{
    int64_t interval = 50 + (int64_t)(param(key, 0, 0, 251));
    int64_t t0 = EPOCH_MS + (int64_t)param(key, 1, 0, 86400000.0);
    double lr_max = exp(param(key, 2, log(1e-4), log(3e-3)));
    double lr_min = lr_max * param(key, 3, 0.0, 0.1);
    double warm = floor(param(key, 4, 500, 5000));
    double total = floor(param(key, 5, 2e5, 2e6));
    const double pi = 3.14159265358979323846;
    for (size_t k = 0; k < n; k++) {
        uint64_t i = first + k;
        double x = (double)i, lr;
        if (x < warm)
            lr = lr_max * (x + 1) / warm;
        else if (x < total)
            lr = lr_min + 0.5 * (lr_max - lr_min) * (1 + cos(pi * (x - warm) / (total - warm)));
        else
            lr = lr_min;
        v[k] = lr;
        ts[k] = t0 + (int64_t)i * interval + jitter(key, i);
    }
}

static void gen_grad_norm(uint64_t key, uint64_t first, size_t n, int64_t *ts, double *v)
{
    int64_t interval = 50 + (int64_t)(param(key, 0, 0, 251));
    int64_t t0 = EPOCH_MS + (int64_t)param(key, 1, 0, 86400000.0);
    float base = (float)param(key, 2, 0.5, 5.0);
    float period = (float)param(key, 3, 5000.0, 50000.0);
    float phase = (float)param(key, 4, 0.0, 6.28);
    float decay = (float)param(key, 5, 1e5, 1e6);
    float sigma = (float)param(key, 6, 0.15, 0.35);
    for (size_t k = 0; k < n; k++) {
        uint64_t i = first + k;
        float x = (float)i;
        float mean = base * (1.0f + 0.3f * sinf(x / period + phase)) * (0.3f + 0.7f * expf(-x / decay));
        float g = mean * expf(sigma * gaussf(hash3(key, S_NOISE, i)));
        uint64_t h = hash3(key, S_SPIKE, i);
        if ((h & 1023) == 0) /* about one step in a thousand */
            g *= 10.0f + 90.0f * (float)unit(h);
        v[k] = (double)g;
        ts[k] = t0 + (int64_t)i * interval + jitter(key, i);
    }
}

static void gen_counter(uint64_t key, uint64_t first, size_t n, int64_t *ts, double *v)
{
    int64_t interval = 50 + (int64_t)(param(key, 0, 0, 251));
    int64_t t0 = EPOCH_MS + (int64_t)param(key, 1, 0, 86400000.0);
    /* samples seen with a batch of 32..4096, or tokens seen (batch x 2048). */
    uint64_t batch = (uint64_t)1 << (5 + (unsigned)param(key, 2, 0, 8));
    if (param(key, 3, 0, 1) < 0.5)
        batch *= 2048;
    for (size_t k = 0; k < n; k++) {
        uint64_t i = first + k;
        v[k] = (double)((i + 1) * batch);
        ts[k] = t0 + (int64_t)i * interval;
    }
}

void gen_series(gen_kind kind, uint64_t seed, uint64_t first, size_t n, int64_t *steps,
                int64_t *timestamps_ms, double *values)
{
    if (kind == GEN_MIX)
        kind = mix_kind(seed);
    uint64_t key = key_of(kind, seed);
    for (size_t k = 0; k < n; k++)
        steps[k] = (int64_t)(first + k);
    switch (kind) {
    case GEN_LOSS_F32:
        gen_loss(key, first, n, timestamps_ms, values);
        break;
    case GEN_ACCURACY_HELD:
        gen_accuracy(key, first, n, timestamps_ms, values);
        break;
    case GEN_COSINE_LR:
        gen_cosine(key, first, n, timestamps_ms, values);
        break;
    case GEN_GRAD_NORM:
        gen_grad_norm(key, first, n, timestamps_ms, values);
        break;
    case GEN_COUNTER:
        gen_counter(key, first, n, timestamps_ms, values);
        break;
    case GEN_MIX:
    case GEN_N_KINDS:
        for (size_t k = 0; k < n; k++) {
            timestamps_ms[k] = EPOCH_MS + (int64_t)(first + k);
            values[k] = 0;
        }
        break;
    }
}
