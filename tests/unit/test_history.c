/*
 * test_history.c — tally_history_page (query/history.c) and its page tokens
 * (query/page_token.c) against brute force over the points the test logged.
 *
 * Data goes through a real engine with 128-point blocks, so series have many
 * blocks that overlap in step and in time (shuffled logging, re-logged
 * ranges, duplicate steps, exact duplicates, NaN/-0.0/inf and equal (step,
 * ts) with several values) and a non-empty head. The expected history is the
 * logged points sorted by the order's comparator with exact duplicates
 * dropped; pages of every size 1..50 must concatenate to it bit for bit.
 */
#include <math.h>

#include "page_token.h"
#include "point_order.h"
#include "tally/query.h"
#include "test.h"

#define RUN "run-history"

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static tally_engine *open_engine(const char *dir)
{
    tally_engine_options o;
    tally_engine_options_init(&o);
    o.durability = TALLY_DURABILITY_ASYNC;
    o.block_points = 128;
    tally_engine *e;
    ASSERT_OK(tally_engine_open(dir, &o, &e));
    return e;
}

/* The points a series was given, in logging order. */
typedef struct logged {
    tally_point *p;
    size_t n, cap;
} logged;

static void log_points(tally_engine *e, const char *key, logged *lg, const tally_point *pts, size_t n)
{
    int64_t *st = malloc(n * 8 + 8), *ts = malloc(n * 8 + 8);
    double *va = malloc(n * 8 + 8);
    for (size_t i = 0; i < n; i++) {
        st[i] = pts[i].step;
        ts[i] = pts[i].timestamp_ms;
        va[i] = pts[i].value;
        if (lg->n == lg->cap) {
            lg->cap = lg->cap ? 2 * lg->cap : 1024;
            lg->p = realloc(lg->p, lg->cap * sizeof *lg->p);
        }
        lg->p[lg->n++] = pts[i];
    }
    tally_series_batch b = {RUN, strlen(RUN), key, strlen(key), (uint32_t)n, st, ts, va};
    ASSERT_OK(tally_engine_append(e, &b, 1));
    free(st);
    free(ts);
    free(va);
}

static int qcmp_engine(const void *a, const void *b) { return tally__cmp_engine(a, b); }

/* Expected history: the logged points in [lo, hi] of the order's first key,
 * sorted, exact duplicates dropped. Caller frees. */
static tally_point *expected(const logged *lg, tally_history_order order, int64_t lo, int64_t hi,
                             size_t *n_out)
{
    tally_point *x = malloc((lg->n + 1) * sizeof *x);
    size_t n = 0;
    for (size_t i = 0; i < lg->n; i++) {
        int64_t k = order == TALLY_HISTORY_BY_STEP ? lg->p[i].step : lg->p[i].timestamp_ms;
        if (k >= lo && k <= hi)
            x[n++] = lg->p[i];
    }
    qsort(x, n, sizeof *x, order == TALLY_HISTORY_BY_STEP ? qcmp_engine : tally__qsort_time);
    *n_out = tally__dedupe_sorted(x, n);
    return x;
}

static void assert_same_points(const tally_point *a, const tally_point *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        ASSERT_EQ(a[i].step, b[i].step);
        ASSERT_EQ(a[i].timestamp_ms, b[i].timestamp_ms);
        ASSERT_BITS_EQ(a[i].value, b[i].value);
    }
}

/* Pages through the whole history with page size ps; returns the points
 * (caller frees) and checks each page's size and token. */
static tally_point *page_all(tally_engine *e, tally_series_id id, tally_history_order order,
                             int64_t lo, int64_t hi, size_t ps, size_t *n_out)
{
    size_t cap = 1024, n = 0;
    tally_point *all = malloc(cap * sizeof *all);
    tally_point page[64];
    char token[TALLY_PAGE_TOKEN_MAX] = "";
    for (int guard = 0;; guard++) {
        ASSERT_LT(guard, 100000);
        char next[TALLY_PAGE_TOKEN_MAX];
        tally_history_req req = {id, order, lo, hi, token, ps};
        size_t got;
        ASSERT_OK(tally_history_page(e, &req, page, ps, &got, next));
        ASSERT_LE(got, ps);
        if (next[0])
            ASSERT_EQ(got, ps); /* a token only after a full page */
        ASSERT_LT(strlen(next), TALLY_PAGE_TOKEN_MAX);
        for (const char *c = next; *c; c++)
            ASSERT(*c > ' ' && *c < 127);
        if (n + got > cap) {
            cap = 2 * (n + got);
            all = realloc(all, cap * sizeof *all);
        }
        memcpy(all + n, page, got * sizeof *page);
        n += got;
        if (!next[0])
            break;
        strcpy(token, next);
    }
    *n_out = n;
    return all;
}

static void check_pages(tally_engine *e, tally_series_id id, const logged *lg, int64_t lo, int64_t hi,
                        size_t ps_lo, size_t ps_hi)
{
    for (int o = 0; o < 2; o++) {
        tally_history_order order = o ? TALLY_HISTORY_BY_TIME : TALLY_HISTORY_BY_STEP;
        size_t ne;
        tally_point *exp = expected(lg, order, lo, hi, &ne);
        for (size_t ps = ps_lo; ps <= ps_hi; ps++) {
            size_t ng;
            tally_point *got = page_all(e, id, order, lo, hi, ps, &ng);
            if (ng != ne)
                fprintf(stderr, "order %d page size %zu: %zu points, expected %zu\n", o, ps, ng, ne);
            ASSERT_EQ(ng, ne);
            assert_same_points(got, exp, ne);
            free(got);
        }
        free(exp);
    }
}

/* A messy series: shuffled steps, re-logged ranges, duplicate steps, exact
 * duplicates, special values, equal (step, ts) with several values. */
static void make_messy(tally_engine *e, const char *key, logged *lg, size_t n_batches)
{
    static const double specials[] = {NAN, -0.0, 0.0, INFINITY, -INFINITY, -1.0, 2.5};
    for (size_t b = 0; b < n_batches; b++) {
        tally_point pts[200];
        size_t n = 0;
        int64_t base = (int64_t)(rnd() % 400) - 50;
        for (int i = 0; i < 150; i++) {
            int64_t step = base + (int64_t)(rnd() % 120);
            int64_t ts = 1000000 + (int64_t)(rnd() % 5000);
            double v = (double)(rnd() % 1000) / 7.0;
            if (rnd() % 10 == 0)
                v = specials[rnd() % 7];
            pts[n++] = (tally_point){step, ts, v};
            if (rnd() % 8 == 0 && n < 200) {
                pts[n] = pts[n - 1]; /* exact duplicate */
                n++;
            }
            if (rnd() % 8 == 0 && n < 200)
                pts[n++] = (tally_point){step, ts, specials[rnd() % 7]}; /* same (step, ts) */
        }
        log_points(e, key, lg, pts, n);
    }
}

static void test_messy_pages(void)
{
    char dir[4096];
    test_tmpdir(dir, sizeof dir, "history-messy");
    tally_engine *e = open_engine(dir);
    logged lg = {0};
    make_messy(e, "messy", &lg, 12);
    /* Full heads are sealed by a background thread; a checkpoint waits for it. */
    ASSERT_OK(tally_engine_checkpoint(e));
    tally_series_id id;
    ASSERT_OK(tally_engine_lookup(e, RUN, strlen(RUN), "messy", 5, &id));
    tally_series_info info;
    ASSERT_OK(tally_engine_series_info(e, id, &info));
    ASSERT_GT(info.n_blocks, 5);
    check_pages(e, id, &lg, INT64_MIN, INT64_MAX, 1, 50);
    /* Ranges on the first key of each order. */
    check_pages(e, id, &lg, 0, 100, 1, 13);
    check_pages(e, id, &lg, 1002000, 1003000, 3, 9);
    check_pages(e, id, &lg, 77, 77, 1, 4);
    check_pages(e, id, &lg, 5000, 6000, 1, 2); /* nothing there for steps */
    /* After a close the head is sealed: blocks only. */
    ASSERT_OK(tally_engine_close(e));
    e = open_engine(dir);
    check_pages(e, id, &lg, INT64_MIN, INT64_MAX, 1, 50);
    ASSERT_OK(tally_engine_close(e));
    free(lg.p);
    test_rmdir(dir);
}

/* A series logged in order (time follows steps), with groups of equal
 * (step, ts) carrying several values: BY_TIME takes its streaming path. */
static void test_ordered_pages(void)
{
    char dir[4096];
    test_tmpdir(dir, sizeof dir, "history-ordered");
    tally_engine *e = open_engine(dir);
    logged lg = {0};
    static const double group[] = {2.0, -1.0, NAN, -0.0, 0.0, -INFINITY, INFINITY};
    for (int b = 0; b < 10; b++) {
        tally_point pts[160];
        size_t n = 0;
        for (int i = 0; i < 100; i++) {
            int64_t step = b * 100 + i;
            int64_t ts = 5000 + step * 10;
            if (i % 17 == 0) {
                for (int g = 0; g < 7; g++)
                    pts[n++] = (tally_point){step, ts, group[g]};
            } else {
                pts[n++] = (tally_point){step, ts, (double)step / 3.0};
            }
        }
        log_points(e, "ordered", &lg, pts, n);
    }
    tally_series_id id;
    ASSERT_OK(tally_engine_lookup(e, RUN, strlen(RUN), "ordered", 7, &id));
    check_pages(e, id, &lg, INT64_MIN, INT64_MAX, 1, 50);
    check_pages(e, id, &lg, 5000 + 250 * 10, 5000 + 512 * 10, 1, 11);
    ASSERT_OK(tally_engine_close(e));
    free(lg.p);
    test_rmdir(dir);
}

static int in_list(const tally_point *p, const tally_point *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (tally__cmp_engine(p, &list[i]) == 0)
            return 1;
    return 0;
}

/* Appends between pages: no point seen twice, none of the earlier points
 * skipped, and points appended after the cursor show up. */
static void test_appends_between_pages(void)
{
    char dir[4096];
    test_tmpdir(dir, sizeof dir, "history-appends");
    tally_engine *e = open_engine(dir);
    for (int o = 0; o < 2; o++) {
        tally_history_order order = o ? TALLY_HISTORY_BY_TIME : TALLY_HISTORY_BY_STEP;
        const char *key = o ? "app-time" : "app-step";
        logged lg = {0};
        make_messy(e, key, &lg, 4);
        tally_series_id id;
        ASSERT_OK(tally_engine_lookup(e, RUN, strlen(RUN), key, strlen(key), &id));
        size_t n0;
        tally_point *initial = expected(&lg, order, INT64_MIN, INT64_MAX, &n0);
        /* Points that must show up: the initial ones, and every point appended
         * while it was after the cursor. */
        tally_point *must = malloc((n0 + 100000) * sizeof *must);
        memcpy(must, initial, n0 * sizeof *must);
        size_t n_must = n0;
        tally_point *seen = malloc(200000 * sizeof *seen);
        size_t n_seen = 0;
        char token[TALLY_PAGE_TOKEN_MAX] = "";
        for (int pages = 0;; pages++) {
            ASSERT_LT(pages, 100000);
            tally_point page[7];
            char next[TALLY_PAGE_TOKEN_MAX];
            tally_history_req req = {id, order, INT64_MIN, INT64_MAX, token, 7};
            size_t got;
            ASSERT_OK(tally_history_page(e, &req, page, 7, &got, next));
            for (size_t i = 0; i < got; i++) {
                if (n_seen) {
                    int c = order == TALLY_HISTORY_BY_STEP ? tally__cmp_engine(&seen[n_seen - 1], &page[i])
                                                           : tally__cmp_time(&seen[n_seen - 1], &page[i]);
                    ASSERT_LT(c, 0); /* strictly increasing: no repeat */
                }
                ASSERT(in_list(&page[i], lg.p, lg.n)); /* only logged points */
                seen[n_seen++] = page[i];
            }
            if (!next[0])
                break;
            strcpy(token, next);
            if (pages < 60) {
                /* Log a few points around the cursor. */
                tally_point add[6];
                const tally_point *cur = &seen[n_seen - 1];
                for (int k = 0; k < 6; k++) {
                    add[k] = (tally_point){cur->step + (int64_t)(rnd() % 21) - 10,
                                           cur->timestamp_ms + (int64_t)(rnd() % 21) - 10,
                                           (double)(rnd() % 1000)};
                    int after = order == TALLY_HISTORY_BY_STEP ? tally__cmp_engine(&add[k], cur) > 0
                                                               : tally__cmp_time(&add[k], cur) > 0;
                    if (after)
                        must[n_must++] = add[k];
                }
                log_points(e, key, &lg, add, 6);
            }
        }
        for (size_t i = 0; i < n_must; i++)
            ASSERT(in_list(&must[i], seen, n_seen)); /* nothing skipped */
        free(initial);
        free(must);
        free(seen);
        free(lg.p);
    }
    ASSERT_OK(tally_engine_close(e));
    test_rmdir(dir);
}

static void first_page_token(tally_engine *e, tally_series_id id, tally_history_order order,
                             int64_t lo, int64_t hi, char *token)
{
    tally_point page[3];
    size_t got;
    tally_history_req req = {id, order, lo, hi, NULL, 3};
    ASSERT_OK(tally_history_page(e, &req, page, 3, &got, token));
    ASSERT_EQ(got, 3);
    ASSERT_EQ(strlen(token), TALLY__PAGE_TOKEN_LEN);
}

static int try_token(tally_engine *e, tally_series_id id, tally_history_order order, int64_t lo,
                     int64_t hi, const char *token)
{
    tally_point page[3];
    size_t got = 99;
    char next[TALLY_PAGE_TOKEN_MAX] = "x";
    tally_history_req req = {id, order, lo, hi, token, 3};
    int rc = tally_history_page(e, &req, page, 3, &got, next);
    if (rc) {
        ASSERT_EQ(got, 0);
        ASSERT_STR_EQ(next, "");
    }
    return rc;
}

static void test_bad_tokens(void)
{
    char dir[4096];
    test_tmpdir(dir, sizeof dir, "history-tokens");
    tally_engine *e = open_engine(dir);
    logged la = {0}, lb = {0};
    make_messy(e, "ta", &la, 2);
    make_messy(e, "tb", &lb, 2);
    tally_series_id a, b;
    ASSERT_OK(tally_engine_lookup(e, RUN, strlen(RUN), "ta", 2, &a));
    ASSERT_OK(tally_engine_lookup(e, RUN, strlen(RUN), "tb", 2, &b));
    for (int o = 0; o < 2; o++) {
        tally_history_order order = o ? TALLY_HISTORY_BY_TIME : TALLY_HISTORY_BY_STEP;
        tally_history_order other = o ? TALLY_HISTORY_BY_STEP : TALLY_HISTORY_BY_TIME;
        char tok[TALLY_PAGE_TOKEN_MAX];
        first_page_token(e, a, order, INT64_MIN, INT64_MAX, tok);
        ASSERT_OK(try_token(e, a, order, INT64_MIN, INT64_MAX, tok));
        /* Foreign: another series, order or range. */
        ASSERT_EQ(try_token(e, b, order, INT64_MIN, INT64_MAX, tok), TALLY_EINVAL);
        ASSERT_EQ(try_token(e, a, other, INT64_MIN, INT64_MAX, tok), TALLY_EINVAL);
        ASSERT_EQ(try_token(e, a, order, 0, INT64_MAX, tok), TALLY_EINVAL);
        ASSERT_EQ(try_token(e, a, order, INT64_MIN, 100, tok), TALLY_EINVAL);
        /* Garbage. */
        static const char *garbage[] = {"x", "abc", "====", "not a token at all",
                                        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                                        "\xff\xfe\x01"};
        for (size_t g = 0; g < sizeof garbage / sizeof *garbage; g++)
            ASSERT_EQ(try_token(e, a, order, INT64_MIN, INT64_MAX, garbage[g]), TALLY_EINVAL);
        /* Truncated and extended. */
        char t2[2 * TALLY_PAGE_TOKEN_MAX];
        for (size_t len = 1; len < strlen(tok); len++) {
            memcpy(t2, tok, len);
            t2[len] = '\0';
            ASSERT_EQ(try_token(e, a, order, INT64_MIN, INT64_MAX, t2), TALLY_EINVAL);
        }
        snprintf(t2, sizeof t2, "%sA", tok);
        ASSERT_EQ(try_token(e, a, order, INT64_MIN, INT64_MAX, t2), TALLY_EINVAL);
        /* Every character changed to every other printable character. */
        for (size_t i = 0; i < strlen(tok); i++) {
            for (int ch = 33; ch < 127; ch++) {
                if (ch == tok[i])
                    continue;
                strcpy(t2, tok);
                t2[i] = (char)ch;
                ASSERT_EQ(try_token(e, a, order, INT64_MIN, INT64_MAX, t2), TALLY_EINVAL);
            }
        }
    }
    ASSERT_OK(tally_engine_close(e));
    free(la.p);
    free(lb.p);
    test_rmdir(dir);
}

static void test_codec_round_trip(void)
{
    for (int i = 0; i < 20000; i++) {
        tally__page_cursor c = {rnd() & 1 ? TALLY_HISTORY_BY_TIME : TALLY_HISTORY_BY_STEP,
                                rnd(),
                                (int64_t)rnd(),
                                (int64_t)rnd(),
                                {(int64_t)rnd(), (int64_t)rnd(), 0}};
        uint64_t vb = rnd();
        memcpy(&c.last.value, &vb, 8);
        char tok[TALLY_PAGE_TOKEN_MAX];
        ASSERT_OK(tally__page_token_encode(&c, tok));
        ASSERT_EQ(strlen(tok), TALLY__PAGE_TOKEN_LEN);
        tally__page_cursor d;
        ASSERT_OK(tally__page_token_decode(tok, strlen(tok), &d));
        ASSERT_EQ(d.order, c.order);
        ASSERT_U64_EQ(d.id, c.id);
        ASSERT_EQ(d.lo, c.lo);
        ASSERT_EQ(d.hi, c.hi);
        ASSERT_EQ(d.last.step, c.last.step);
        ASSERT_EQ(d.last.timestamp_ms, c.last.timestamp_ms);
        ASSERT_BITS_EQ(d.last.value, c.last.value);
    }
    tally__page_cursor bad = {(tally_history_order)7, 1, 0, 0, {0, 0, 0}};
    char tok[TALLY_PAGE_TOKEN_MAX];
    ASSERT_EQ(tally__page_token_encode(&bad, tok), TALLY_EINVAL);
}

static void test_unknown_and_args(void)
{
    char dir[4096];
    test_tmpdir(dir, sizeof dir, "history-unknown");
    tally_engine *e = open_engine(dir);
    logged lg = {0};
    make_messy(e, "known", &lg, 1);
    tally_point page[10];
    size_t got = 99;
    char next[TALLY_PAGE_TOKEN_MAX] = "x";
    tally_series_id unknown = tally_series_id_of("nope", 4, "nope", 4);
    for (int o = 0; o < 2; o++) {
        tally_history_req req = {unknown, o ? TALLY_HISTORY_BY_TIME : TALLY_HISTORY_BY_STEP,
                                 INT64_MIN, INT64_MAX, NULL, 10};
        ASSERT_OK(tally_history_page(e, &req, page, 10, &got, next));
        ASSERT_EQ(got, 0);
        ASSERT_STR_EQ(next, "");
    }
    tally_series_id id;
    ASSERT_OK(tally_engine_lookup(e, RUN, strlen(RUN), "known", 5, &id));
    tally_history_req req = {id, TALLY_HISTORY_BY_STEP, INT64_MIN, INT64_MAX, "", 10};
    ASSERT_OK(tally_history_page(e, &req, page, 10, &got, next)); /* "" is a first page */
    ASSERT_EQ(got, 10);
    req.max_results = 0;
    ASSERT_EQ(tally_history_page(e, &req, page, 10, &got, next), TALLY_EINVAL);
    req.max_results = 11; /* more than cap */
    ASSERT_EQ(tally_history_page(e, &req, page, 10, &got, next), TALLY_EINVAL);
    req.max_results = 10;
    req.lo = 5;
    req.hi = 4;
    ASSERT_EQ(tally_history_page(e, &req, page, 10, &got, next), TALLY_EINVAL);
    req.lo = INT64_MIN;
    req.order = (tally_history_order)9;
    ASSERT_EQ(tally_history_page(e, &req, page, 10, &got, next), TALLY_EINVAL);
    ASSERT_OK(tally_engine_close(e));
    free(lg.p);
    test_rmdir(dir);
}

int main(void)
{
    TEST_RUN(test_codec_round_trip);
    TEST_RUN(test_unknown_and_args);
    TEST_RUN(test_bad_tokens);
    TEST_RUN(test_ordered_pages);
    TEST_RUN(test_messy_pages);
    TEST_RUN(test_appends_between_pages);
    return TEST_DONE();
}
