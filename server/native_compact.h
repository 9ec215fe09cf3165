/*
 * native_compact.h — the compact binary answer of tally/query
 * (format=binary32; docs/api.md, "Query response, binary32"), made for the
 * web UI's charts: x as u32 offsets from the series' x_lo (exact) and y as
 * float32 (rounded to 24 bits of mantissa: far below a pixel), 8 bytes a
 * point instead of 16.
 */
#ifndef TALLY_SERVER_NATIVE_COMPACT_H
#define TALLY_SERVER_NATIVE_COMPACT_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "tally/query.h"

/* Checks that res can be written compactly (m4 or lttb; every point within
 * 2^32 - 1 of its series' x_lo). 0 if so, else -1 with a message in err. */
int tally__compact_check(const tally_ds_req *q, const tally_ds_result *res, const int64_t *base,
                         size_t n, char *err, size_t cap);

/* Writes the binary32 answer of n results into b (x per the request's axis,
 * base[i] the first timestamp of series i for relative time). */
void tally__compact_write(tally_buf *b, const tally_ds_req *q, const tally_ds_result *res,
                          const int64_t *base, size_t n);

#endif /* TALLY_SERVER_NATIVE_COMPACT_H */
