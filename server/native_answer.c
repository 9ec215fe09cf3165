/*
 * native_answer.c — tally/query's answer, series by series (native_answer.h).
 *
 * Layouts (docs/api.md, "Native API"):
 *   json      {"key":K,"x_axis":A,"method":M,"width":W,"series":[S,S,...]}
 *             S = {"run_id":R,"n_source":N[,"range":[lo,hi]],"x":[..],"y":[..]}
 *             (buckets: x_lo, x_hi, count, n_nan, min, max, mean columns)
 *   binary    "TLYQ" 1 0 method x_axis n_series:u32 width:u32, then per series
 *             n:u32 0:u32 n_source:u64 x_lo:i64 x_hi:i64 and f64 columns
 *   binary32  the same head with version 2; series as native_compact.c writes
 *
 * Columns are written by hand: they are where the bytes are.
 */
#include "native_answer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_metrics.h"
#include "json_num.h"
#include "json_out.h"
#include "native_compact.h"

const char *const tally__answer_axis_names[3] = {"step", "time", "relative"};
const char *const tally__answer_method_names[3] = {"m4", "lttb", "buckets"};

tally__answer *tally__answer_new(tally__answer_format format, const tally_ds_req *q,
                                 tally_engine *engine, const tally_series_id *ids,
                                 const char *const *runs, size_t n)
{
    tally__answer *a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    a->format = format;
    a->q = q;
    a->engine = engine;
    a->ids = ids;
    a->runs = runs;
    a->n = n;
    a->piece = calloc(n ? n : 1, sizeof *a->piece);
    a->unfit = calloc(n ? n : 1, 1);
    if (!a->piece || !a->unfit) {
        tally__answer_free(a);
        return NULL;
    }
    return a;
}

void tally__answer_free(void *ctx)
{
    tally__answer *a = ctx;
    if (!a)
        return;
    if (a->piece)
        for (size_t i = 0; i < a->n; i++)
            tally_buf_free(&a->piece[i]);
    free(a->piece);
    free(a->unfit);
    tally_buf_free(&a->head);
    tally_buf_free(&a->tail);
    free(a->ranges);
    free(a);
}

/* Appends n little-endian float64 taken by expr (of k) at o, advancing it. */
#define PUT_F64_COLUMN(o, n, expr)                                                          \
    do {                                                                                    \
        for (size_t k = 0; k < (n); k++, (o) += 8) {                                        \
            double d_ = (expr);                                                             \
            uint64_t u_;                                                                    \
            memcpy(&u_, &d_, 8);                                                            \
            tally__answer_put_u64((o), u_);                                                 \
        }                                                                                   \
    } while (0)

/* One series of format=binary: its 32-byte header and its columns. */
static void binary_series(tally_buf *b, const tally_ds_req *q, const tally_ds_result *r,
                          int64_t base)
{
    int buckets = q->method == TALLY_DS_BUCKETS;
    size_t cnt = buckets ? r->n_buckets : r->n_points;
    size_t bytes = 32 + (buckets ? 56 : 16) * cnt;
    if (tally_buf_reserve(b, bytes + 1) != 0)
        return;
    uint8_t *o = (uint8_t *)b->data + b->len;
    tally__answer_series_header(o, cnt, r);
    o += 32;
    const tally_bucket *bk = r->buckets;
    const tally_point *pt = r->points;
    if (buckets) {
        PUT_F64_COLUMN(o, cnt, (double)bk[k].x_lo);
        PUT_F64_COLUMN(o, cnt, (double)bk[k].x_hi);
        PUT_F64_COLUMN(o, cnt, (double)bk[k].count);
        PUT_F64_COLUMN(o, cnt, (double)bk[k].n_nan);
        PUT_F64_COLUMN(o, cnt, bk[k].min);
        PUT_F64_COLUMN(o, cnt, bk[k].max);
        PUT_F64_COLUMN(o, cnt, bk[k].mean);
    } else {
        PUT_F64_COLUMN(o, cnt, (double)tally__answer_x(q, base, &pt[k]));
        PUT_F64_COLUMN(o, cnt, pt[k].value);
    }
    b->len += bytes;
    b->data[b->len] = 0; /* buf.h keeps the bytes NUL-terminated */
}

/* A JSON string at the end of b (escaped, quoted). */
static void put_string(tally_buf *b, const char *str)
{
    tally_json j;
    tally_json_start(&j, b);
    tally_json_string(&j, str);
}

/* ,"name":[v,v,...] for column c of a result (see json_series). */
static void put_column(tally_buf *b, const char *name, const tally_ds_req *q,
                       const tally_ds_result *r, int64_t base, int c)
{
    tally_buf_puts(b, ",\"");
    tally_buf_puts(b, name);
    tally_buf_puts(b, "\":[");
    size_t n = q->method == TALLY_DS_BUCKETS ? r->n_buckets : r->n_points;
    for (size_t k = 0; k < n; k++) {
        if (k)
            tally_buf_putc(b, ',');
        const tally_bucket *bk = q->method == TALLY_DS_BUCKETS ? &r->buckets[k] : NULL;
        switch (c) {
        case 0: tally__put_int(b, bk->x_lo); break;
        case 1: tally__put_int(b, bk->x_hi); break;
        case 2: tally__put_int(b, (int64_t)bk->count); break;
        case 3: tally__put_int(b, (int64_t)bk->n_nan); break;
        case 4: tally_buf_put_double(b, bk->min); break;
        case 5: tally_buf_put_double(b, bk->max); break;
        case 6: tally_buf_put_double(b, bk->mean); break;
        case 7: tally__put_int(b, tally__answer_x(q, base, &r->points[k])); break;
        default: tally_buf_put_double(b, r->points[k].value); break;
        }
    }
    tally_buf_putc(b, ']');
}

/* One element of the json answer's "series" array, after its comma unless
 * it is the first (invariant 2). */
static void json_series(tally_buf *b, const tally_ds_req *q, const char *run,
                        const tally_ds_result *r, int64_t base, int first)
{
    static const char *const bucket_cols[] = {"x_lo", "x_hi", "count", "n_nan", "min", "max",
                                              "mean"};
    tally_buf_puts(b, first ? "{\"run_id\":" : ",{\"run_id\":");
    put_string(b, run);
    tally_buf_puts(b, ",\"n_source\":");
    tally__put_int(b, (int64_t)r->n_source);
    if (r->n_source) {
        tally_buf_puts(b, ",\"range\":[");
        tally__put_int(b, r->x_lo);
        tally_buf_putc(b, ',');
        tally__put_int(b, r->x_hi);
        tally_buf_putc(b, ']');
    }
    if (q->method == TALLY_DS_BUCKETS) {
        for (int c = 0; c < 7; c++)
            put_column(b, bucket_cols[c], q, r, base, c);
    } else {
        put_column(b, "x", q, r, base, 7);
        put_column(b, "y", q, r, base, 8);
    }
    tally_buf_putc(b, '}');
}

int tally__answer_series(void *ctx, size_t i, tally_ds_result *r)
{
    tally__answer *a = ctx;
    const tally_ds_req *q = a->q;
    int64_t base = 0; /* relative time's origin: the series' first timestamp */
    tally_series_info info;
    if (q->x_axis == TALLY_X_RELATIVE_TIME && r->n_source &&
        tally_engine_series_info(a->engine, a->ids[i], &info) == 0)
        base = info.min_timestamp_ms;
    tally_buf *b = &a->piece[i];
    switch (a->format) {
    case TALLY__ANSWER_BINARY32:
        if (!tally__compact_fits(q, r, base))
            a->unfit[i] = 1; /* (3) */
        else
            tally__compact_write_series(b, q, r, base);
        break;
    case TALLY__ANSWER_BINARY:
        binary_series(b, q, r, base);
        break;
    case TALLY__ANSWER_JSON:
    default:
        json_series(b, q, a->runs[i], r, base, i == 0);
        break;
    }
    tally_ds_result_free(r);
    return tally_buf_failed(b) ? TALLY_ENOMEM : 0;
}

int tally__answer_gather(tally__answer *a, const char *key, char *err, size_t cap)
{
    const tally_ds_req *q = a->q;
    for (size_t i = 0; i < a->n; i++) {
        if (a->unfit[i]) { /* (3) */
            snprintf(err, cap,
                     "format binary32 needs the points of each series within 2^32 of its x_lo "
                     "(series %zu); use format binary",
                     i);
            return 1;
        }
    }
    if (a->format == TALLY__ANSWER_JSON) {
        tally_buf_puts(&a->head, "{\"key\":");
        put_string(&a->head, key);
        tally_buf_puts(&a->head, ",\"x_axis\":\"");
        tally_buf_puts(&a->head, tally__answer_axis_names[q->x_axis]);
        tally_buf_puts(&a->head, "\",\"method\":\"");
        tally_buf_puts(&a->head, tally__answer_method_names[q->method]);
        tally_buf_puts(&a->head, "\",\"width\":");
        tally__put_int(&a->head, q->width);
        tally_buf_puts(&a->head, ",\"series\":[");
        tally_buf_puts(&a->tail, "]}");
    } else {
        uint8_t head[16] = {'T', 'L', 'Y', 'Q', a->format == TALLY__ANSWER_BINARY32 ? 2 : 1, 0,
                            (uint8_t)q->method, (uint8_t)q->x_axis};
        tally__answer_put_u32(head + 8, (uint32_t)a->n);
        tally__answer_put_u32(head + 12, q->width);
        tally_buf_append(&a->head, head, sizeof head);
    }
    a->ranges = malloc((a->n + 2) * sizeof *a->ranges);
    if (!a->ranges || tally_buf_failed(&a->head) || tally_buf_failed(&a->tail))
        return -1;
    a->n_ranges = 0;
    a->ranges[a->n_ranges++] = (tally_resp_piece){a->head.data, a->head.len};
    for (size_t i = 0; i < a->n; i++) /* (2) */
        if (a->piece[i].len)
            a->ranges[a->n_ranges++] = (tally_resp_piece){a->piece[i].data, a->piece[i].len};
    if (a->tail.len)
        a->ranges[a->n_ranges++] = (tally_resp_piece){a->tail.data, a->tail.len};
    return 0;
}
