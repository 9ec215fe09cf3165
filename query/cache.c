/*
 * cache.c — the public face of the rollup cache (tally/query.h, "The query
 * cache"): its statistics and its budget. The cache itself is rollup.c.
 */
#include "rollup.h"
#include "tally/query.h"

void tally_query_cache_stats_get(tally_query_cache_stats *out)
{
    tally__rollup_stats s;
    tally__rollup_stats_get(&s);
    out->budget_bytes = s.budget;
    out->bytes = s.bytes;
    out->retained_bytes = s.retained_bytes;
    out->entries = s.entries;
    out->hits = s.hits;
    out->builds = s.builds;
    out->evictions = s.evictions;
}

void tally_query_cache_set_budget(uint64_t bytes)
{
    tally__rollup_set_budget(bytes);
}
