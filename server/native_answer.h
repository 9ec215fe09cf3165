/*
 * native_answer.h — the answer of tally/query (docs/api.md, "Native API"),
 * written series by series on the query layer's workers.
 *
 *   tally_downsample_bulk_each --series i done (worker)--> tally__answer_series
 *        encodes out[i] into piece[i] (json, binary or binary32), frees out[i]
 *   handler, after the bulk --> tally__answer_gather: head, pieces, tail as
 *        byte ranges for a gathered response (http.h), freed with the answer
 *
 * Encoding a series right after it is computed runs the encoders in parallel
 * and reads each result while it is still in its worker's cache; the pieces
 * then go to the socket as they are, without being copied into one body.
 *
 * Invariants:
 *  (1) tally__answer_series touches only piece[i] and unfit[i], so calls for
 *      different series never share a byte.
 *  (2) The body is the same, byte for byte, as the whole answer written in
 *      one pass: pieces follow in series order (json: each piece after the
 *      first starts with its comma).
 *  (3) binary32 fits a series only if every x is within 2^32 - 1 of its
 *      x_lo; a series that does not fit is marked in unfit[] and gather
 *      refuses the answer, naming the first such series.
 */
#ifndef TALLY_SERVER_NATIVE_ANSWER_H
#define TALLY_SERVER_NATIVE_ANSWER_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "http.h"
#include "tally/engine.h"
#include "tally/query.h"

typedef enum tally__answer_format {
    TALLY__ANSWER_JSON = 0,
    TALLY__ANSWER_BINARY = 1,  /* version 1: f64 columns */
    TALLY__ANSWER_BINARY32 = 2 /* version 2: u32 dx and f32 y (native_compact.h) */
} tally__answer_format;

/* Names of tally_x_axis and tally_ds_method values, by value (the request's
 * words and the json answer's). */
extern const char *const tally__answer_axis_names[3];
extern const char *const tally__answer_method_names[3];

typedef struct tally__answer {
    tally__answer_format format;
    /* q, engine, ids, runs: the caller's, read during the bulk call only
     * (q also by gather); the answer outlives them as a response's pieces */
    const tally_ds_req *q;
    tally_engine *engine;           /* relative time: each series' first timestamp */
    const tally_series_id *ids;     /* n */
    const char *const *runs;        /* n run ids (json names each series by its run) */
    tally_buf *piece;               /* n: each series' bytes (1) */
    uint8_t *unfit;                 /* n: binary32 refuses this series (3) */
    size_t n;
    tally_buf head, tail;           /* written by tally__answer_gather */
    tally_resp_piece *ranges;       /* head, the non-empty pieces, tail */
    unsigned n_ranges;
} tally__answer;

/* A new answer for n series (pieces and marks zeroed), or NULL when out of
 * memory. */
tally__answer *tally__answer_new(tally__answer_format format, const tally_ds_req *q,
                                 tally_engine *engine, const tally_series_id *ids,
                                 const char *const *runs, size_t n);

/* The bulk callback (tally_ds_each_fn): encodes series i into its piece and
 * frees r. 0, or TALLY_ENOMEM. */
int tally__answer_series(void *a, size_t i, tally_ds_result *r);

/* Writes the head and tail and lists the answer's byte ranges in
 * a->ranges (a->n_ranges). 0; 1 when binary32 cannot hold a series (the
 * reason in err); -1 when out of memory. */
int tally__answer_gather(tally__answer *a, const char *key, char *err, size_t cap);

/* Frees the answer and its bytes (also as a gathered response's
 * pieces_free). NULL is a no-op. */
void tally__answer_free(void *a);

/* Little-endian stores of the binary answers (docs/api.md). */
static inline void tally__answer_put_u32(uint8_t *o, uint32_t v)
{
    o[0] = (uint8_t)v;
    o[1] = (uint8_t)(v >> 8);
    o[2] = (uint8_t)(v >> 16);
    o[3] = (uint8_t)(v >> 24);
}

static inline void tally__answer_put_u64(uint8_t *o, uint64_t v)
{
    tally__answer_put_u32(o, (uint32_t)v);
    tally__answer_put_u32(o + 4, (uint32_t)(v >> 32));
}

/* The 32-byte header of one series in both binary formats: cnt (points or
 * buckets) u32, 0 u32, n_source u64, x_lo i64, x_hi i64 (0, 0 for a series
 * without points). */
static inline void tally__answer_series_header(uint8_t *o, size_t cnt, const tally_ds_result *r)
{
    tally__answer_put_u32(o, (uint32_t)cnt);
    tally__answer_put_u32(o + 4, 0);
    tally__answer_put_u64(o + 8, r->n_source);
    tally__answer_put_u64(o + 16, (uint64_t)(r->n_source ? r->x_lo : 0));
    tally__answer_put_u64(o + 24, (uint64_t)(r->n_source ? r->x_hi : 0));
}

/* A point's x in the request's axis; base is the series' first timestamp
 * for relative time (the downsampler uses the same origin). */
static inline int64_t tally__answer_x(const tally_ds_req *q, int64_t base, const tally_point *p)
{
    switch (q->x_axis) {
    case TALLY_X_STEP:
        return p->step;
    case TALLY_X_TIME:
        return p->timestamp_ms;
    case TALLY_X_RELATIVE_TIME:
    default:
        return (int64_t)((uint64_t)p->timestamp_ms - (uint64_t)base);
    }
}

#endif /* TALLY_SERVER_NATIVE_ANSWER_H */
