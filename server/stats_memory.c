/*
 * stats_memory.c — the memory part of GET /metrics (stats.h): where the
 * process's resident memory goes, read at scrape time. Each component
 * that can grow with the stored data has a configured budget, and its
 * figure is exported next to that budget so that an operator (and the
 * soak suite of tally-bench) can see which one grows:
 *
 *   tally_engine_memory_bytes        engine heads and queues  (memory_budget; stats.c)
 *   tally_query_cache_*_bytes        the rollup cache         (query_cache_budget)
 *   tally_sqlite_*_bytes             SQLite's heap            (fixed per-connection caps, store_sqlite.c)
 *   tally_process_resident_*_bytes   what the kernel counts: anonymous, file-backed, shared
 *   tally_process_heap_bytes         malloc's view: in use, and free but not returned
 *
 * Invariant: every figure is read without taking any lock a request
 * handler holds for long (the cache's table lock is held for a copy).
 */
#include "stats.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "store.h"
#include "tally/query.h"

static void gauge(tally_buf *out, const char *name, const char *type, const char *help,
                  uint64_t v)
{
    tally_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n%s %" PRIu64 "\n", name, help, name, type,
                     name, v);
}

/* RssAnon, RssFile and RssShmem of /proc/self/status, bytes; 0 when absent. */
static void resident_split(uint64_t *anon, uint64_t *file, uint64_t *shmem)
{
    *anon = *file = *shmem = 0;
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return;
    char line[256];
    unsigned long long kb;
    while (fgets(line, sizeof line, f)) {
        if (sscanf(line, "RssAnon: %llu kB", &kb) == 1)
            *anon = (uint64_t)kb << 10;
        else if (sscanf(line, "RssFile: %llu kB", &kb) == 1)
            *file = (uint64_t)kb << 10;
        else if (sscanf(line, "RssShmem: %llu kB", &kb) == 1)
            *shmem = (uint64_t)kb << 10;
    }
    fclose(f);
}

void tally_stats_write_memory(tally_buf *out)
{
    tally_query_cache_stats qc;
    tally_query_cache_stats_get(&qc);
    gauge(out, "tally_query_cache_budget_bytes", "gauge",
          "Bytes the query (rollup) cache may hold (query_cache_budget).", qc.budget_bytes);
    gauge(out, "tally_query_cache_bytes", "gauge", "Bytes held by the query cache's entries.",
          qc.bytes);
    gauge(out, "tally_query_cache_retained_bytes", "gauge",
          "Bytes of replaced or evicted query cache entries that a query still reads.",
          qc.retained_bytes);
    gauge(out, "tally_query_cache_entries", "gauge", "Series in the query cache.", qc.entries);
    gauge(out, "tally_query_cache_hits_total", "counter", "Query cache lookups served from it.",
          qc.hits);
    gauge(out, "tally_query_cache_builds_total", "counter",
          "Query cache entries built or extended.", qc.builds);
    gauge(out, "tally_query_cache_evictions_total", "counter",
          "Query cache entries dropped for the budget.", qc.evictions);

    tally_store_memory sm;
    tally_store_memory_get(&sm);
    gauge(out, "tally_sqlite_memory_bytes", "gauge",
          "SQLite's heap, all connections (metadata store).", sm.heap_bytes);
    gauge(out, "tally_sqlite_page_cache_bytes", "gauge",
          "The part of SQLite's heap that is page cache.", sm.page_cache_bytes);

    uint64_t anon, file, shmem;
    resident_split(&anon, &file, &shmem);
    gauge(out, "tally_process_resident_anon_bytes", "gauge",
          "Resident anonymous memory (heap, stacks): RssAnon.", anon);
    gauge(out, "tally_process_resident_file_bytes", "gauge",
          "Resident file-backed pages mapped by the process (binary, libraries, "
          "segment and SQLite mappings): RssFile.", file);
    gauge(out, "tally_process_resident_shmem_bytes", "gauge", "Resident shared memory: RssShmem.",
          shmem);
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
    struct mallinfo2 mi = mallinfo2();
    tally_buf_printf(out,
                     "# HELP tally_process_heap_bytes malloc's heap: bytes in use, and bytes "
                     "free inside it (not returned to the system).\n"
                     "# TYPE tally_process_heap_bytes gauge\n"
                     "tally_process_heap_bytes{state=\"in_use\"} %" PRIu64 "\n"
                     "tally_process_heap_bytes{state=\"free\"} %" PRIu64 "\n",
                     (uint64_t)(mi.uordblks + mi.hblkhd), (uint64_t)mi.fordblks);
#endif
}
