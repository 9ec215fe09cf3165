/*
 * summary.c — per-series summaries for run tables and for filtering and
 * sorting runs by a metric: MLflow's latest point, min, max and count, read
 * from the engine's per-series totals in O(1) without decoding any point.
 */
#include <math.h>
#include <string.h>

#include "tally/query.h"

int tally_metric_summaries(tally_engine *e, const tally_series_id *ids, size_t n,
                           tally_metric_summary *out)
{
    if (!e || (n && (!ids || !out)))
        return TALLY_EINVAL;
    for (size_t i = 0; i < n; i++) {
        tally_series_info info;
        int rc = tally_engine_series_info(e, ids[i], &info);
        if (rc == TALLY_ENOTFOUND) {
            memset(&out[i], 0, sizeof out[i]);
            out[i].min = out[i].max = NAN;
            continue;
        }
        if (rc)
            return rc;
        out[i].latest = info.latest;
        out[i].min = info.min_value;
        out[i].max = info.max_value;
        out[i].count = info.n_points;
    }
    return 0;
}
