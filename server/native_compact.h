/*
 * native_compact.h — one series of the compact binary answer of tally/query
 * (format=binary32; docs/api.md, "Query response, binary32"), made for the
 * web UI's charts: x as u32 offsets from the series' x_lo (exact) and y as
 * float32 (rounded to 24 bits of mantissa: far below a pixel), 8 bytes a
 * point instead of 16. The 16-byte head and the joining of series are
 * native_answer.c's.
 */
#ifndef TALLY_SERVER_NATIVE_COMPACT_H
#define TALLY_SERVER_NATIVE_COMPACT_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "tally/query.h"

/* 1 if result r (m4 or lttb) can be written compactly: every point within
 * 2^32 - 1 of its x_lo (base: its first timestamp, for relative time). */
int tally__compact_fits(const tally_ds_req *q, const tally_ds_result *r, int64_t base);

/* Appends r's 32-byte header and its dx and y columns to b; r must fit. */
void tally__compact_write_series(tally_buf *b, const tally_ds_req *q, const tally_ds_result *r,
                                 int64_t base);

#endif /* TALLY_SERVER_NATIVE_COMPACT_H */
