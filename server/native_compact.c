/*
 * native_compact.c — one series of tally/query's binary32 answer
 * (native_compact.h).
 *
 * Layout (little-endian; docs/api.md): after the 16-byte head of
 * format=binary with version 2, per series the same 32-byte header (n u32,
 * 0 u32, n_source u64, x_lo i64, x_hi i64) followed by dx u32[n] (x - x_lo)
 * and y f32[n]. Every column starts at a multiple of 4, so a browser wraps
 * it in a Uint32Array / Float32Array without copying. Size per series:
 * 32 + 8n.
 *
 * Invariant: every dx is in 0..2^32-1 (tally__compact_fits: M4 and LTTB
 * return points of the range only, in axis order, so the first point is at
 * or after x_lo and the last is the farthest from it).
 */
#include "native_compact.h"

#include <string.h>

#include "native_answer.h"

int tally__compact_fits(const tally_ds_req *q, const tally_ds_result *r, int64_t base)
{
    if (!r->n_source || !r->n_points)
        return 1;
    /* points come in axis order: the last one is the farthest from x_lo */
    int64_t last = tally__answer_x(q, base, &r->points[r->n_points - 1]);
    int64_t first = tally__answer_x(q, base, &r->points[0]);
    return first >= r->x_lo && (uint64_t)last - (uint64_t)r->x_lo <= (uint64_t)UINT32_MAX;
}

void tally__compact_write_series(tally_buf *b, const tally_ds_req *q, const tally_ds_result *r,
                                 int64_t base)
{
    size_t cnt = r->n_points, bytes = 32 + 8 * cnt;
    if (tally_buf_reserve(b, bytes + 1) != 0)
        return;
    uint8_t *o = (uint8_t *)b->data + b->len;
    int64_t lo = r->n_source ? r->x_lo : 0;
    tally__answer_series_header(o, cnt, r);
    o += 32;
    for (size_t k = 0; k < cnt; k++, o += 4)
        tally__answer_put_u32(
            o, (uint32_t)((uint64_t)tally__answer_x(q, base, &r->points[k]) - (uint64_t)lo));
    for (size_t k = 0; k < cnt; k++, o += 4) {
        float f = (float)r->points[k].value;
        uint32_t u;
        memcpy(&u, &f, 4);
        tally__answer_put_u32(o, u);
    }
    b->len += bytes;
    b->data[b->len] = 0; /* buf.h keeps the bytes NUL-terminated */
}
