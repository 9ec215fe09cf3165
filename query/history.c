/*
 * history.c — the full history of one series, one page at a time, in step
 * order or in MLflow's time order, resumable through page tokens
 * (page_token.h). Orders are defined in point_order.h.
 *
 * Every page reads one fresh snapshot, so a token outlives appends: the
 * next page returns the points that are, in the new snapshot, strictly after
 * the token's last point in the page's order. Points are unique by (step,
 * ts, value bits) (the engine collapses exact duplicates), so "strictly
 * after" neither repeats nor skips a point that was there before.
 *
 * BY_STEP streams the engine iterator, which is already in (step, ts, value
 * bits) order. Resuming starts the iterator at the last step: the engine
 * skips every block whose step range ends before it by its header alone, and
 * within the first block decodes at most that block's points before the
 * resume key; nothing earlier is decoded again.
 *
 * BY_TIME takes one of two paths:
 *  - stream, when every block is TALLY_BLOCK_TS_SORTED, the head's timestamps
 *    are sorted too, and the sources (blocks and head, ordered by their first
 *    point) overlap neither in (step, ts) nor in time: then the step order is
 *    also non-decreasing in time, and (ts, step) order equals (step, ts)
 *    order except inside groups of equal (step, ts), which are re-sorted by
 *    numeric value. A resume starts at the later of the last step and the
 *    first block that reaches the resume time. Cost: O(page + block).
 *  - sort, otherwise (out-of-order logging, re-logged ranges): decode every
 *    block whose time range reaches [max(lo, resume ts), hi], keep the points
 *    after the resume key, sort them, drop exact duplicates across blocks and
 *    return the first page. Cost per page O(P log P) time and 24 P bytes,
 *    P = points in those blocks; blocks entirely before the resume time are
 *    skipped by their headers, so when logging is roughly chronological a
 *    page still costs about the rest of the series at most.
 *
 * Invariants:
 *  (1) A page is strictly increasing in its order and holds only points in
 *      [lo, hi] of the order's first key that are after the token's point.
 *  (2) next_token is "" exactly when the snapshot held no further point.
 *  (3) A token is accepted only with the series, order and range it was made
 *      for; anything else is TALLY_EINVAL before any data is read.
 */
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "page_token.h"
#include "point_order.h"
#include "tally/query.h"

#define PULL_POINTS 256u /* points fetched from the iterator per call */

/* A page being filled. */
typedef struct page {
    tally_point *out;         /* caller's buffer */
    size_t max;               /* max_results */
    size_t n;                 /* points written */
    int more;                 /* set when a further point was seen */
    const tally_point *after; /* resume key, or NULL on the first page */
} page;

/* --- BY_STEP ------------------------------------------------------------- */

static int page_by_step(tally_snapshot *s, const tally_history_req *req, page *pg)
{
    int64_t lo = req->lo;
    if (pg->after && pg->after->step > lo)
        lo = pg->after->step;
    tally_iter *it;
    int rc = tally_iter_start(s, lo, req->hi, &it);
    if (rc)
        return rc;
    tally_point buf[PULL_POINTS];
    while (!pg->more) {
        /* One point beyond the page tells whether more remain. */
        size_t got, room = pg->max - pg->n;
        rc = tally_iter_next(it, buf, room < PULL_POINTS ? room + 1 : PULL_POINTS, &got);
        if (rc || got == 0)
            break;
        for (size_t i = 0; i < got; i++) {
            if (pg->after && tally__cmp_engine(&buf[i], pg->after) <= 0)
                continue;
            if (pg->n == pg->max) {
                pg->more = 1;
                break;
            }
            pg->out[pg->n++] = buf[i];
        }
    }
    tally_iter_stop(it);
    return rc;
}

/* --- BY_TIME ------------------------------------------------------------- */

/* A block (or the head, block = -1) as the time paths see it. */
typedef struct source {
    int64_t block;
    uint32_t n;                /* points */
    int ts_sorted;             /* timestamps non-decreasing in (step, ts) order */
    tally_point first, last;   /* by (step, ts) */
    int64_t min_ts, max_ts;
} source;

static int source_cmp(const void *a, const void *b)
{
    const source *x = a, *y = b;
    int c = tally__cmp_engine(&x->first, &y->first);
    return c ? c : TALLY__CMP(x->block, y->block);
}

/* (step, ts) of a <= (step, ts) of b. */
static int step_ts_le(const tally_point *a, const tally_point *b)
{
    return a->step < b->step || (a->step == b->step && a->timestamp_ms <= b->timestamp_ms);
}

static int load_sources(tally_snapshot *s, source **out, size_t *n_out)
{
    uint32_t nb = tally_snapshot_n_blocks(s);
    const tally_point *head;
    size_t nh;
    tally_snapshot_head(s, &head, &nh);
    source *src = tally__malloc(((size_t)nb + 1) * sizeof *src);
    if (!src)
        return TALLY_ENOMEM;
    size_t n = 0;
    for (uint32_t i = 0; i < nb; i++) {
        tally_block_summary b;
        int rc = tally_snapshot_block(s, i, &b);
        if (rc) {
            tally__free(src);
            return rc;
        }
        src[n++] = (source){i, b.n_points, (b.flags & TALLY_BLOCK_TS_SORTED) != 0, b.first, b.last,
                            b.min_timestamp_ms, b.max_timestamp_ms};
    }
    if (nh) {
        source h = {-1, (uint32_t)nh, 1, head[0], head[nh - 1], head[0].timestamp_ms,
                    head[0].timestamp_ms};
        for (size_t i = 0; i < nh; i++) {
            if (i && head[i].timestamp_ms < head[i - 1].timestamp_ms)
                h.ts_sorted = 0;
            if (head[i].timestamp_ms < h.min_ts)
                h.min_ts = head[i].timestamp_ms;
            if (head[i].timestamp_ms > h.max_ts)
                h.max_ts = head[i].timestamp_ms;
        }
        src[n++] = h;
    }
    qsort(src, n, sizeof *src, source_cmp);
    *out = src;
    *n_out = n;
    return 0;
}

/* Whether the (step, ts) order of the sources' union is also non-decreasing
 * in time (see the file comment). */
static int streamable(const source *src, size_t n)
{
    tally_point hi_last;
    int64_t hi_ts = 0;
    for (size_t k = 0; k < n; k++) {
        if (!src[k].ts_sorted)
            return 0;
        if (k && (!step_ts_le(&hi_last, &src[k].first) || hi_ts > src[k].min_ts))
            return 0;
        if (k == 0 || step_ts_le(&hi_last, &src[k].last))
            hi_last = src[k].last;
        if (k == 0 || src[k].max_ts > hi_ts)
            hi_ts = src[k].max_ts;
    }
    return 1;
}

/* Offers one point (in time order) to the page. */
static void offer_time(page *pg, const tally_history_req *req, const tally_point *p)
{
    if (pg->more || p->timestamp_ms < req->lo || p->timestamp_ms > req->hi)
        return;
    if (pg->after && tally__cmp_time(p, pg->after) <= 0)
        return;
    if (pg->n == pg->max) {
        pg->more = 1;
        return;
    }
    pg->out[pg->n++] = *p;
}

/* Sorts a group of equal (step, ts) by value and offers it. */
static void flush_group(page *pg, const tally_history_req *req, tally_point *g, size_t n)
{
    if (n > 1)
        qsort(g, n, sizeof *g, tally__qsort_time);
    for (size_t i = 0; i < n && !pg->more; i++)
        offer_time(pg, req, &g[i]);
}

static int page_time_stream(tally_snapshot *s, const tally_history_req *req, page *pg,
                            const source *src, size_t n_src)
{
    int64_t from_ts = req->lo;
    if (pg->after && pg->after->timestamp_ms > from_ts)
        from_ts = pg->after->timestamp_ms;
    size_t k = 0;
    while (k < n_src && src[k].max_ts < from_ts)
        k++;
    if (k == n_src)
        return 0;
    int64_t step_lo = src[k].first.step;
    if (pg->after && pg->after->step > step_lo)
        step_lo = pg->after->step;
    tally_iter *it;
    int rc = tally_iter_start(s, step_lo, INT64_MAX, &it);
    if (rc)
        return rc;
    tally_point buf[PULL_POINTS];
    tally_point *g = NULL;
    size_t gn = 0, gcap = 0;
    int done = 0;
    while (!done && !pg->more) {
        size_t got;
        rc = tally_iter_next(it, buf, PULL_POINTS, &got);
        if (rc)
            break;
        if (got == 0)
            done = 1;
        for (size_t i = 0; i < got && !done; i++) {
            if (buf[i].timestamp_ms > req->hi) {
                done = 1; /* the stream is non-decreasing in time */
                break;
            }
            if (gn && (g[0].step != buf[i].step || g[0].timestamp_ms != buf[i].timestamp_ms)) {
                flush_group(pg, req, g, gn);
                gn = 0;
                if (pg->more)
                    break;
            }
            if (gn == gcap) {
                size_t ncap = gcap ? 2 * gcap : 16;
                tally_point *ng = tally__realloc(g, ncap * sizeof *g);
                if (!ng) {
                    rc = TALLY_ENOMEM;
                    done = 1;
                    break;
                }
                g = ng;
                gcap = ncap;
            }
            g[gn++] = buf[i];
        }
    }
    if (rc == 0 && !pg->more)
        flush_group(pg, req, g, gn);
    tally__free(g);
    tally_iter_stop(it);
    return rc;
}

static int page_time_sort(tally_snapshot *s, const tally_history_req *req, page *pg,
                          const source *src, size_t n_src)
{
    int64_t from_ts = req->lo;
    if (pg->after && pg->after->timestamp_ms > from_ts)
        from_ts = pg->after->timestamp_ms;
    const tally_point *head;
    size_t nh;
    tally_snapshot_head(s, &head, &nh);
    uint32_t col_cap = 0;
    for (size_t k = 0; k < n_src; k++)
        if (src[k].block >= 0 && src[k].n > col_cap)
            col_cap = src[k].n;
    int64_t *st = tally__malloc((size_t)col_cap * 8 + 8), *ts = tally__malloc((size_t)col_cap * 8 + 8);
    double *va = tally__malloc((size_t)col_cap * 8 + 8);
    tally_point *all = NULL;
    size_t n = 0, cap = 0;
    int rc = st && ts && va ? 0 : TALLY_ENOMEM;
    for (size_t k = 0; k < n_src && rc == 0; k++) {
        const source *c = &src[k];
        if (c->max_ts < from_ts || c->min_ts > req->hi)
            continue;
        if (c->block >= 0) {
            rc = tally_snapshot_block_decode(s, (uint32_t)c->block, 0, c->n, st, ts, va);
            if (rc)
                break;
        }
        for (uint32_t i = 0; i < c->n; i++) {
            tally_point p = c->block >= 0 ? (tally_point){st[i], ts[i], va[i]} : head[i];
            if (p.timestamp_ms < from_ts || p.timestamp_ms > req->hi)
                continue;
            if (pg->after && tally__cmp_time(&p, pg->after) <= 0)
                continue;
            if (n == cap) {
                size_t ncap = cap ? 2 * cap : 1024;
                tally_point *na = tally__realloc(all, ncap * sizeof *all);
                if (!na) {
                    rc = TALLY_ENOMEM;
                    break;
                }
                all = na;
                cap = ncap;
            }
            all[n++] = p;
        }
    }
    if (rc == 0) {
        if (n)
            qsort(all, n, sizeof *all, tally__qsort_time);
        n = tally__dedupe_sorted(all, n);
        for (size_t i = 0; i < n && !pg->more; i++)
            offer_time(pg, req, &all[i]);
    }
    tally__free(all);
    tally__free(st);
    tally__free(ts);
    tally__free(va);
    return rc;
}

static int page_by_time(tally_snapshot *s, const tally_history_req *req, page *pg)
{
    source *src;
    size_t n_src;
    int rc = load_sources(s, &src, &n_src);
    if (rc)
        return rc;
    rc = streamable(src, n_src) ? page_time_stream(s, req, pg, src, n_src)
                                : page_time_sort(s, req, pg, src, n_src);
    tally__free(src);
    return rc;
}

/* --- the page ------------------------------------------------------------ */

int tally_history_page(tally_engine *e, const tally_history_req *req, tally_point *out,
                       size_t cap, size_t *n_out, char *next_token)
{
    if (!e || !req || !out || !n_out || !next_token)
        return TALLY_EINVAL;
    *n_out = 0;
    next_token[0] = '\0';
    if (req->max_results < 1 || cap < req->max_results || req->lo > req->hi)
        return TALLY_EINVAL;
    if (req->order != TALLY_HISTORY_BY_STEP && req->order != TALLY_HISTORY_BY_TIME)
        return TALLY_EINVAL;
    tally__page_cursor cur;
    page pg = {out, req->max_results, 0, 0, NULL};
    if (req->page_token && req->page_token[0]) {
        size_t len = strnlen(req->page_token, TALLY_PAGE_TOKEN_MAX);
        if (tally__page_token_decode(req->page_token, len, &cur) != 0)
            return TALLY_EINVAL;
        if (cur.id != req->id || cur.order != req->order || cur.lo != req->lo || cur.hi != req->hi)
            return TALLY_EINVAL;
        pg.after = &cur.last;
    }
    tally_snapshot *s;
    int rc = tally_snapshot_open(e, req->id, &s);
    if (rc == TALLY_ENOTFOUND)
        return 0;
    if (rc)
        return rc;
    rc = req->order == TALLY_HISTORY_BY_STEP ? page_by_step(s, req, &pg) : page_by_time(s, req, &pg);
    tally_snapshot_close(s);
    if (rc)
        return rc;
    *n_out = pg.n;
    if (pg.more) {
        tally__page_cursor next = {req->order, req->id, req->lo, req->hi, out[pg.n - 1]};
        rc = tally__page_token_encode(&next, next_token);
    }
    return rc;
}
