/*
 * native_compact.c — tally/query's binary32 answer (native_compact.h).
 *
 * Layout (little-endian; docs/api.md): the 16-byte header of format=binary
 * with version 2 ("TLYQ", 2, 0, method, x_axis, n_series u32, width u32),
 * then per series the same 32-byte header (n u32, 0 u32, n_source u64, x_lo
 * i64, x_hi i64) followed by dx u32[n] (x - x_lo) and y f32[n]. Every column
 * starts at a multiple of 4, so a browser wraps it in a Uint32Array /
 * Float32Array without copying. Size: 16 + sum(32 + 8n).
 *
 * Invariant: every dx is in 0..2^32-1 (tally__compact_check: M4 and LTTB
 * return points of the range only, in axis order, so the first point is at
 * or after x_lo and the last is the farthest from it).
 */
#include "native_compact.h"

#include <stdio.h>
#include <string.h>

static int64_t x_of(const tally_ds_req *q, int64_t base, const tally_point *p)
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

static void put_u32(uint8_t *o, uint32_t v)
{
    o[0] = (uint8_t)v;
    o[1] = (uint8_t)(v >> 8);
    o[2] = (uint8_t)(v >> 16);
    o[3] = (uint8_t)(v >> 24);
}

static void put_u64(uint8_t *o, uint64_t v)
{
    put_u32(o, (uint32_t)v);
    put_u32(o + 4, (uint32_t)(v >> 32));
}

int tally__compact_check(const tally_ds_req *q, const tally_ds_result *res, const int64_t *base,
                         size_t n, char *err, size_t cap)
{
    if (q->method == TALLY_DS_BUCKETS) {
        snprintf(err, cap, "format binary32 serves method m4 or lttb, not buckets");
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        const tally_ds_result *r = &res[i];
        if (!r->n_source || !r->n_points)
            continue;
        /* points come in axis order: the last one is the farthest from x_lo */
        int64_t last = x_of(q, base[i], &r->points[r->n_points - 1]);
        int64_t first = x_of(q, base[i], &r->points[0]);
        if (first < r->x_lo || (uint64_t)last - (uint64_t)r->x_lo > (uint64_t)UINT32_MAX) {
            snprintf(err, cap,
                     "format binary32 needs the points of each series within 2^32 of its x_lo "
                     "(series %zu); use format binary",
                     i);
            return -1;
        }
    }
    return 0;
}

void tally__compact_write(tally_buf *b, const tally_ds_req *q, const tally_ds_result *res,
                          const int64_t *base, size_t n)
{
    size_t bytes = 16;
    for (size_t i = 0; i < n; i++)
        bytes += 32 + 8 * res[i].n_points;
    if (tally_buf_reserve(b, bytes + 1) != 0)
        return;
    uint8_t *o = (uint8_t *)b->data + b->len;
    memcpy(o, "TLYQ", 4);
    o[4] = 2;
    o[5] = 0;
    o[6] = (uint8_t)q->method;
    o[7] = (uint8_t)q->x_axis;
    put_u32(o + 8, (uint32_t)n);
    put_u32(o + 12, q->width);
    o += 16;
    for (size_t i = 0; i < n; i++) {
        const tally_ds_result *r = &res[i];
        size_t cnt = r->n_points;
        int64_t lo = r->n_source ? r->x_lo : 0;
        put_u32(o, (uint32_t)cnt);
        put_u32(o + 4, 0);
        put_u64(o + 8, r->n_source);
        put_u64(o + 16, (uint64_t)lo);
        put_u64(o + 24, (uint64_t)(r->n_source ? r->x_hi : 0));
        o += 32;
        for (size_t k = 0; k < cnt; k++, o += 4)
            put_u32(o, (uint32_t)((uint64_t)x_of(q, base[i], &r->points[k]) - (uint64_t)lo));
        for (size_t k = 0; k < cnt; k++, o += 4) {
            float f = (float)r->points[k].value;
            uint32_t u;
            memcpy(&u, &f, 4);
            put_u32(o, u);
        }
    }
    b->len += bytes;
    b->data[b->len] = 0; /* buf.h keeps the bytes NUL-terminated */
}
