/*
 * codec.h — column codecs for one chunk (up to TALLY_CHUNK_POINTS points) of
 * one column of a sealed block. Private to the engine.
 *
 * An encoded chunk is self-describing: its first byte names the method, and
 * the rest is that method's parameters and payload (see docs/format.md,
 * "Column chunks"). Each chunk decodes on its own, without its neighbours, so
 * a reader can decode just the chunks it needs.
 *
 * Invariants:
 *  (1) decode(encode(x)) == x bit for bit, for every input: any int64, any
 *      double bit pattern (NaN payloads, -0.0, +-inf, subnormals).
 *  (2) encode never writes more than the *_bound(n) bytes.
 *  (3) decode and get read only [in, end): damaged input gives
 *      TALLY_ECORRUPT, never a read out of bounds, never a crash.
 *  (4) The encoder picks the smallest of its methods for each chunk.
 *
 * Int64 columns (steps, timestamps) and float64 columns (values) have their
 * own method sets; both support random access with *_get, which is O(1) for
 * the fixed-width methods and O(i) for the delta-based ones.
 */
#ifndef TALLY_CODEC_H
#define TALLY_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "tally/engine.h"

/* Upper bound of the encoded size of n values (n <= TALLY_CHUNK_POINTS). */
size_t tally__codec_i64_bound(uint32_t n);
size_t tally__codec_f64_bound(uint32_t n);

/* Encodes v[0..n) (1 <= n <= TALLY_CHUNK_POINTS) into out, which holds at
 * least the bound. Returns the number of bytes written (> 0). */
size_t tally__codec_i64_encode(const int64_t *v, uint32_t n, uint8_t *out);
size_t tally__codec_f64_encode(const double *v, uint32_t n, uint8_t *out);

/* Decodes a chunk of n values stored in [in, end) into out[0..n). *used (may
 * be NULL) gets the encoded size. Returns 0 or TALLY_ECORRUPT (also when n is
 * 0 or above TALLY_CHUNK_POINTS). Bytes after the chunk, up to end, may be
 * read but never beyond end. The method numbers and byte layouts are in
 * codec_methods.h and docs/codec.md. */
int tally__codec_i64_decode(const uint8_t *in, const uint8_t *end, uint32_t n, int64_t *out,
                            size_t *used);
int tally__codec_f64_decode(const uint8_t *in, const uint8_t *end, uint32_t n, double *out,
                            size_t *used);
/* The same for the first m (1 <= m <= n) values only, out still with room
 * for n: the methods that can stop early (RAW, CONST, LINEAR, FOR, DELTA,
 * DELTA2) decode m values, the others all n; only out[0..m) is promised.
 * TALLY_EINVAL for m out of range. For reading a point near the start of a
 * chunk stored with DELTA or DELTA2, which cannot be read at random. */
int tally__codec_i64_decode_prefix(const uint8_t *in, const uint8_t *end, uint32_t n, uint32_t m,
                                   int64_t *out, size_t *used);
int tally__codec_f64_decode_prefix(const uint8_t *in, const uint8_t *end, uint32_t n, uint32_t m,
                                   double *out, size_t *used);

/* Value i (< n) of a chunk of n values. Returns 0 or TALLY_ECORRUPT (and
 * TALLY_EINVAL when i >= n, a caller's bug). O(1) for RAW, CONST, LINEAR and
 * FOR chunks; the other methods decode the chunk into a stack buffer. */
int tally__codec_i64_get(const uint8_t *in, const uint8_t *end, uint32_t n, uint32_t i,
                         int64_t *out);
int tally__codec_f64_get(const uint8_t *in, const uint8_t *end, uint32_t n, uint32_t i,
                         double *out);

/* Values [i, i + cnt) (i + cnt <= n) of a chunk of n values, and, when
 * size is not NULL, the chunk's encoded size (as *_size gives it), parsing
 * the chunk's header once: what reading a few points of a chunk needs.
 * Returns 0, TALLY_ECORRUPT or TALLY_EINVAL (a range past n). */
int tally__codec_i64_get_range(const uint8_t *in, const uint8_t *end, uint32_t n, uint32_t i,
                               uint32_t cnt, int64_t *out, size_t *size);
int tally__codec_f64_get_range(const uint8_t *in, const uint8_t *end, uint32_t n, uint32_t i,
                               uint32_t cnt, double *out, size_t *size);

/* Whether the chunk at [in, end) is stored with a random-access method (RAW,
 * CONST, LINEAR, FOR: *_get and *_get_range are O(1) per value); 0 for the
 * sequential ones and for damaged input. Reads only the method byte. */
int tally__codec_random_access(const uint8_t *in, const uint8_t *end);

/* Size in bytes of the encoded chunk of n values at in (without decoding it).
 * Returns 0 or TALLY_ECORRUPT. */
int tally__codec_i64_size(const uint8_t *in, const uint8_t *end, uint32_t n, size_t *size);
int tally__codec_f64_size(const uint8_t *in, const uint8_t *end, uint32_t n, size_t *size);

#endif /* TALLY_CODEC_H */
