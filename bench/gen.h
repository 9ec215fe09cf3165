/*
 * gen.h — realistic ML metric data for benchmarks and tests. Deterministic:
 * the same (kind, seed, n) always gives the same points, and any point index
 * can be generated on its own (every random number is a counter-based hash
 * of (seed, kind, stream, index), so `first` costs nothing).
 *
 * Kinds (what a training loop logs):
 *  - GEN_LOSS_F32: noisy decaying loss computed in float32, stored as double:
 *    floor + a*exp(-i/tau) + b*(1 + i/c)^-alpha, times (1 + noise) with a
 *    Gaussian-ish noise of 1.5-3% (per seed). Every value is float32-exact.
 *  - GEN_ACCURACY_HELD: eval accuracy k/10000 (an eval set of 10000 items),
 *    re-evaluated every K = 500..2000 steps and held constant in between,
 *    so a series has few distinct values.
 *  - GEN_COSINE_LR: a cosine learning-rate schedule with a linear warm-up of
 *    500-5000 steps, decaying over 0.2M-2M steps, computed in float64.
 *  - GEN_GRAD_NORM: gradient norm (float32-origin): log-normal noise
 *    (sigma 0.15-0.35) around a slowly drifting, decaying mean, and about one
 *    step in 1024 spiking x10..x100.
 *  - GEN_COUNTER: an integer counter as double: samples seen (i+1)*batch
 *    with batch a power of two 32..4096, or tokens seen (batch * 2048).
 *  - GEN_MIX: a realistic mix: series number `seed` gets its kind from
 *    seed % 20: 8 of 20 (40%) loss-like (train and validation losses), 3 of
 *    20 (15%) grad norm, 15% learning rate, 15% held accuracy and 15%
 *    counters. Any 20 consecutive seeds give these proportions exactly.
 *
 * Steps count up from first by 1 (0, 1, 2, ... for first = 0).
 * Timestamps (ms) start at a fixed epoch plus a per-seed offset of up to a
 * day, and advance by a per-seed interval of 50-300 ms per step:
 *  - loss, learning rate and grad norm add a bounded jitter of 0..7 ms to
 *    t0 + i * interval (an offset, not a random walk, so point i stands
 *    alone): the time a training step's logging call happens to run.
 *  - held accuracy and counters have no jitter (t0 + i * interval): values
 *    that a client logs from a timer or a fixed schedule, which is what
 *    makes these series nearly free to store.
 * Timestamps are strictly increasing.
 */
#ifndef TALLY_GEN_H
#define TALLY_GEN_H

#include <stddef.h>
#include <stdint.h>

typedef enum gen_kind {
    GEN_LOSS_F32 = 0,
    GEN_ACCURACY_HELD,
    GEN_COSINE_LR,
    GEN_GRAD_NORM,
    GEN_COUNTER,
    GEN_MIX,
    GEN_N_KINDS
} gen_kind;

const char *gen_kind_name(gen_kind kind);

/* Writes points [first, first + n) of series `seed` of the given kind, so a
 * long series can be generated in pieces: calling with first = 0, n = a then
 * first = a, n = b gives the same points as one call with n = a + b. */
void gen_series(gen_kind kind, uint64_t seed, uint64_t first, size_t n, int64_t *steps,
                int64_t *timestamps_ms, double *values);

#endif /* TALLY_GEN_H */
