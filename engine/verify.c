/*
 * verify.c — tally_verify(): opens a data directory read-only (which checks
 * the checkpoint and replays the WAL without writing anything), then reads
 * every block of every series, checking the header and body checksums and
 * decoding every column, and scans each segment for bytes that no
 * checkpointed block covers inside its checkpointed length (orphans).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "block.h"
#include "internal.h"

typedef struct cover {
    uint32_t segment;
    uint64_t offset, len;
} cover;

static int cover_cmp(const void *a, const void *b)
{
    const cover *x = a, *y = b;
    if (x->segment != y->segment)
        return x->segment < y->segment ? -1 : 1;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

int tally_verify(const char *dir, tally_verify_report_fn report, void *ctx, uint64_t *n_problems)
{
    return tally_verify_progress(dir, report, ctx, NULL, NULL, n_problems);
}

int tally_verify_progress(const char *dir, tally_verify_report_fn report, void *ctx,
                          tally_progress_fn progress, void *progress_ctx, uint64_t *n_problems)
{
    tally_engine_options o;
    tally_engine_options_init(&o);
    o.read_only = 1;
    tally_engine *e;
    uint64_t problems = 0;
    int rc = tally_engine_open(dir, &o, &e);
    if (rc == TALLY_ECORRUPT) {
        if (report)
            report(ctx, "directory.tck", 0, "checkpoint is corrupt; see the log for the reason");
        *n_problems = 1;
        return 0;
    }
    if (rc)
        return rc;
    size_t n_cover = 0, cap_cover = 1024;
    cover *covers = tally__malloc(cap_cover * sizeof *covers);
    int64_t *st = tally__malloc(65536 * 8), *ts = tally__malloc(65536 * 8);
    double *va = tally__malloc(65536 * 8);
    if (!covers || !st || !ts || !va) {
        rc = TALLY_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < e->n_series; i++) {
        tally__series *s = e->all_series[i];
        tally_snapshot *snap;
        rc = tally_snapshot_open(e, s->id, &snap);
        if (rc)
            goto out;
        for (uint32_t b = 0; b < s->n_blocks; b++) {
            char path[4096], msg[256];
            tally__segment_path(e, s->blocks[b].segment, path, sizeof path);
            if (n_cover == cap_cover) {
                cap_cover *= 2;
                cover *nc = tally__realloc(covers, cap_cover * sizeof *nc);
                if (!nc) {
                    tally_snapshot_close(snap);
                    rc = TALLY_ENOMEM;
                    goto out;
                }
                covers = nc;
            }
            covers[n_cover++] = (cover){s->blocks[b].segment, s->blocks[b].offset, s->blocks[b].len};
            tally_block_summary sum;
            int brc = tally_snapshot_block(snap, b, &sum);
            if (brc == 0)
                brc = tally_snapshot_block_decode(snap, b, 0, sum.n_points, st, ts, va);
            if (brc) {
                snprintf(msg, sizeof msg, "block %u of series %.*s/%.*s: %s", b, (int)s->run_len,
                         s->run, (int)s->key_len, s->key, tally_strerror(brc));
                if (report)
                    report(ctx, path, s->blocks[b].offset, msg);
                problems++;
            }
        }
        tally_snapshot_close(snap);
        if (progress)
            progress(progress_ctx, s->n_blocks, 0);
    }
    if (n_cover > 1)
        qsort(covers, n_cover, sizeof *covers, cover_cmp);
    /* Gaps inside the checkpointed length of a segment hold no referenced block. */
    for (uint32_t n = e->first_segment; n >= 1 && n <= e->n_segments; n++) {
        tally__segment *sg = tally__segment_get(e, n);
        if (!sg)
            continue;
        uint64_t at = 0;
        for (size_t i = 0; i < n_cover; i++) {
            if (covers[i].segment != n)
                continue;
            if (covers[i].offset > at) {
                char path[4096];
                tally__segment_path(e, n, path, sizeof path);
                if (report)
                    report(ctx, path, at, "bytes not covered by any block reference (orphaned)");
                problems++;
            }
            at = covers[i].offset + covers[i].len;
        }
        if (at < sg->len) {
            char path[4096];
            tally__segment_path(e, n, path, sizeof path);
            if (report)
                report(ctx, path, at, "bytes not covered by any block reference (orphaned)");
            problems++;
        }
    }
    rc = 0;
out:
    tally__free(covers);
    tally__free(st);
    tally__free(ts);
    tally__free(va);
    tally_engine_close(e);
    *n_problems = problems;
    return rc;
}
