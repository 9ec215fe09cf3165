/*
 * test_rollup_cache.c — the rollup cache's table (query/rollup.c, invariants
 * (5), (7), (8)): an entry replaced by a newer one of the same series is
 * freed as soon as its last reader releases it, the budget bounds what the
 * table keeps (an entry that alone passes it is not kept), and lowering the
 * budget evicts at once.
 *
 * Memory is checked two ways: the cache's own counters (bytes, retained
 * bytes, entries) and the bytes actually live in the allocator, through
 * tally_replace_allocator with hooks that remember each block's size. A
 * superseded entry that lingered would keep its arrays live and fail the
 * "live bytes drop" checks even if the counters lied.
 */
#include "test.h"

#include <stdatomic.h>
#include <tally/query.h>

#include "rollup.h"

/* --- an allocator that knows how many bytes are live ----------------------- */

#define HDR 16 /* keeps malloc's alignment */
static _Atomic int64_t live_bytes;

static void *count_malloc(size_t n)
{
    unsigned char *p = malloc(n + HDR);
    if (!p)
        return NULL;
    memcpy(p, &n, sizeof n);
    atomic_fetch_add(&live_bytes, (int64_t)n);
    return p + HDR;
}

static void count_free(void *q)
{
    if (!q)
        return;
    unsigned char *p = (unsigned char *)q - HDR;
    size_t n;
    memcpy(&n, p, sizeof n);
    atomic_fetch_sub(&live_bytes, (int64_t)n);
    free(p);
}

static void *count_calloc(size_t k, size_t n)
{
    void *p = count_malloc(k * n);
    if (p)
        memset(p, 0, k * n);
    return p;
}

static void *count_realloc(void *q, size_t n)
{
    if (!q)
        return count_malloc(n);
    size_t old;
    memcpy(&old, (unsigned char *)q - HDR, sizeof old);
    void *p = count_malloc(n);
    if (!p)
        return NULL;
    memcpy(p, q, old < n ? old : n);
    count_free(q);
    return p;
}

/* --- data ------------------------------------------------------------------ */

static const char RUN[] = "run-cache";

static tally_engine *open_engine(const char *dir)
{
    tally_engine_options o;
    tally_engine_options_init(&o);
    o.durability = TALLY_DURABILITY_ASYNC;
    o.block_points = 128; /* many blocks from few points */
    tally_engine *e;
    ASSERT_OK(tally_engine_open(dir, &o, &e));
    return e;
}

/* Appends n points after step0 to series key and seals them into blocks. */
static tally_series_id grow(tally_engine *e, const char *key, int64_t step0, uint32_t n)
{
    int64_t *st = malloc(n * 8), *ts = malloc(n * 8);
    double *v = malloc(n * 8);
    for (uint32_t i = 0; i < n; i++) {
        st[i] = step0 + i;
        ts[i] = 1000 + step0 + i;
        v[i] = (double)((step0 + i) % 97) * 0.5;
    }
    tally_series_batch b = {RUN, strlen(RUN), key, strlen(key), n, st, ts, v};
    ASSERT_OK(tally_engine_append(e, &b, 1));
    ASSERT_OK(tally_engine_checkpoint(e));
    free(st);
    free(ts);
    free(v);
    tally_series_id id;
    ASSERT_OK(tally_engine_lookup(e, RUN, strlen(RUN), key, strlen(key), &id));
    return id;
}

/* Acquires the entry of id over a fresh snapshot and builds the chunk
 * records of every block (the bulk of an entry's memory). */
static tally__rollup *acquire_full(tally_engine *e, tally_series_id id)
{
    tally_snapshot *s;
    ASSERT_OK(tally_snapshot_open(e, id, &s));
    tally__rollup *r;
    ASSERT_OK(tally__rollup_acquire(e, id, s, &r));
    for (uint32_t i = 0; i < tally_snapshot_n_blocks(s); i++) {
        const tally__rchunk *c;
        ASSERT_OK(tally__rollup_chunks(r, s, i, &c));
    }
    ASSERT(tally__rollup_pyramid(r, TALLY__AXIS_STEP) != NULL);
    tally_snapshot_close(s);
    return r;
}

static tally__rollup_stats stats(void)
{
    tally__rollup_stats st;
    tally__rollup_stats_get(&st);
    return st;
}

/* --- tests ----------------------------------------------------------------- */

/* An entry extended to more blocks replaces the old one in the table; the
 * old one's memory goes when its last reader lets go of it, not later. */
static void test_superseded_entry_freed(void)
{
    char dir[1024];
    test_tmpdir(dir, sizeof dir, "rollup-superseded");
    tally_engine *e = open_engine(dir);
    tally__rollup_set_budget(TALLY__ROLLUP_BUDGET);
    tally_series_id id = grow(e, "loss", 0, 64 * 128);

    tally__rollup *old = acquire_full(e, id);
    tally__rollup_stats a = stats();
    ASSERT_EQ(a.entries, 1);
    ASSERT_EQ(a.retained_bytes, 0);
    ASSERT_GT(a.bytes, 64 * sizeof(tally__rchunk));

    /* The series gains blocks: the next acquire builds a new entry while
     * the old one is still being read. */
    grow(e, "loss", 64 * 128, 64 * 128);
    tally__rollup *fresh = acquire_full(e, id);
    ASSERT(fresh != old);
    tally__rollup_stats b = stats();
    ASSERT_EQ(b.entries, 1);
    ASSERT_EQ(b.retained_bytes, a.bytes); /* the old one, out of the table, still read */
    ASSERT_GT(b.bytes, a.bytes);

    int64_t before = atomic_load(&live_bytes);
    tally__rollup_release(old);
    int64_t freed = before - atomic_load(&live_bytes);
    ASSERT_EQ(stats().retained_bytes, 0);
    /* Its chunk records alone (64 blocks of one chunk) were freed. */
    ASSERT_GE(freed, (int64_t)(64 * sizeof(tally__rchunk)));

    /* Many extensions without any reader overlapping: the table never holds
     * more than the one entry, and nothing is retained. */
    tally__rollup_release(fresh);
    int64_t steady = 0;
    for (int k = 0; k < 20; k++) {
        grow(e, "loss", (int64_t)(2 + k) * 64 * 128, 4 * 128);
        tally__rollup *r = acquire_full(e, id);
        tally__rollup_release(r);
        tally__rollup_stats c = stats();
        ASSERT_EQ(c.entries, 1);
        ASSERT_EQ(c.retained_bytes, 0);
        if (k == 0)
            steady = atomic_load(&live_bytes) - (int64_t)c.bytes;
        /* Live memory outside the cache does not grow by superseded entries
         * (the engine's block lists grow a little: 1 KiB of slack per round). */
        ASSERT_LE(atomic_load(&live_bytes) - (int64_t)c.bytes, steady + 1024 * (k + 1));
    }
    tally__rollup_clear();
    ASSERT_EQ(stats().entries, 0);
    ASSERT_EQ(stats().bytes, 0);
    ASSERT_OK(tally_engine_close(e));
    test_rmdir(dir);
}

/* The table stays within its budget: least recently used entries leave,
 * an entry alone past it is not kept, and a lower budget evicts at once. */
static void test_budget(void)
{
    char dir[1024];
    test_tmpdir(dir, sizeof dir, "rollup-budget");
    tally_engine *e = open_engine(dir);
    enum { N = 12 };
    tally_series_id ids[N];
    for (int k = 0; k < N; k++) {
        char key[16];
        snprintf(key, sizeof key, "m%d", k);
        ids[k] = grow(e, key, 0, 32 * 128);
    }
    tally__rollup_clear();
    tally__rollup_set_budget(TALLY__ROLLUP_BUDGET);
    tally__rollup *r = acquire_full(e, ids[0]);
    uint64_t one = stats().bytes;
    tally__rollup_release(r);

    /* Room for three entries: the fourth evicts the least recently used. */
    tally__rollup_set_budget(3 * one + one / 2);
    uint64_t ev0 = stats().evictions;
    for (int k = 0; k < N; k++) {
        tally__rollup_release(acquire_full(e, ids[k]));
        tally__rollup_stats st = stats();
        ASSERT_LE(st.bytes, st.budget);
        ASSERT_LE(st.entries, 3);
        ASSERT_EQ(st.retained_bytes, 0);
    }
    ASSERT_EQ(stats().entries, 3);
    ASSERT_GE(stats().evictions - ev0, N - 3);
    /* The three most recent are the ones kept: acquiring them is a hit. */
    uint64_t hits = stats().hits;
    for (int k = N - 3; k < N; k++) {
        tally_snapshot *s;
        ASSERT_OK(tally_snapshot_open(e, ids[k], &s));
        ASSERT_OK(tally__rollup_acquire(e, ids[k], s, &r));
        tally__rollup_release(r);
        tally_snapshot_close(s);
    }
    ASSERT_EQ(stats().hits - hits, 3);

    /* A lower budget evicts at once; live memory drops with it. */
    int64_t before = atomic_load(&live_bytes);
    tally__rollup_set_budget(one + one / 2);
    ASSERT_EQ(stats().entries, 1);
    ASSERT_GE(before - atomic_load(&live_bytes), (int64_t)(2 * one * 3 / 4));

    /* An entry larger than the budget serves its query and is not kept. */
    tally__rollup_set_budget(one / 2);
    ASSERT_EQ(stats().entries, 0);
    before = atomic_load(&live_bytes);
    r = acquire_full(e, ids[1]);
    ASSERT_EQ(stats().entries, 0);
    ASSERT_GE(stats().retained_bytes, one); /* held by this reader only */
    tally__rollup_release(r);
    ASSERT_EQ(stats().retained_bytes, 0);
    ASSERT_LE(atomic_load(&live_bytes), before + 1024);

    tally__rollup_set_budget(0);
    ASSERT_EQ(stats().entries, 0);
    ASSERT_EQ(stats().bytes, 0);
    tally__rollup_set_budget(TALLY__ROLLUP_BUDGET);
    ASSERT_OK(tally_engine_close(e));
    test_rmdir(dir);
}

/* The public face (tally/query.h) reports the same figures and sets the
 * same budget. */
static void test_public_stats(void)
{
    tally_query_cache_set_budget(12345);
    tally_query_cache_stats q;
    tally_query_cache_stats_get(&q);
    tally__rollup_stats st = stats();
    ASSERT_EQ(q.budget_bytes, 12345);
    ASSERT_EQ(q.bytes, st.bytes);
    ASSERT_EQ(q.entries, st.entries);
    ASSERT_EQ(q.evictions, st.evictions);
    ASSERT_EQ(q.builds, st.builds);
    tally_query_cache_set_budget(TALLY__ROLLUP_BUDGET);
}

int main(void)
{
    ASSERT_OK(tally_replace_allocator(count_malloc, count_realloc, count_calloc, count_free));
    TEST_RUN(test_superseded_entry_freed);
    TEST_RUN(test_budget);
    TEST_RUN(test_public_stats);
    return TEST_DONE();
}
