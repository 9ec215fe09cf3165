/*
 * fuzz_search.c — libFuzzer target for the search languages
 * (server/search.h).
 *
 *   filters     the input after its first byte, as a filter in every mode:
 *               parsing never crashes; a success satisfies the AST
 *               invariants, prints a canonical form that reparses to the
 *               same canonical form, evaluates against a row whose values
 *               come from the input, and renders SQL whose '?' count is
 *               n_binds.
 *   order_by    the same bytes split at '\n' into up to 8 elements, in
 *               every mode: a success satisfies (7)-(8), and the printed
 *               user keys reparse to the same full key list.
 *   LIKE        the input split at its middle into pattern and text: the
 *               matcher terminates (O(n*m)) and, for short inputs, agrees
 *               with a dynamic-programming reference.
 *
 * The first byte picks the row's values and the LIKE case folding.
 * Seeds: tests/fuzz/corpus/fuzz_search/.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "search.h"

#define CHECK(cond)                                                                           \
    do {                                                                                      \
        if (!(cond))                                                                          \
            abort();                                                                          \
    } while (0)

/* ---- a row whose every value derives from one seed ------------------------ */

static const char *const strs[] = {"", "a", "x", "abc", "ABC", "0.1", "mnist", "r0", "%"};
#define N_STRS (sizeof strs / sizeof strs[0])

static int seed_has(void *ctx, const char *key)
{
    unsigned s = *(const unsigned *)ctx;
    return ((s + (unsigned)strlen(key)) & 3) != 0;
}

static int f_attr_str(void *ctx, tally_search_attr a, const char **out)
{
    unsigned s = *(const unsigned *)ctx;
    if (((s >> 2) + (unsigned)a) % 5 == 0)
        return 0;
    *out = strs[(s + (unsigned)a) % N_STRS];
    return 1;
}

static int f_attr_num(void *ctx, tally_search_attr a, double *out)
{
    unsigned s = *(const unsigned *)ctx;
    if (((s >> 3) + (unsigned)a) % 4 == 0)
        return 0;
    *out = (double)((s + (unsigned)a) % 7) - 3;
    return 1;
}

static int f_str(void *ctx, const char *key, const char **out)
{
    if (!seed_has(ctx, key))
        return 0;
    *out = strs[(*(const unsigned *)ctx + (unsigned)strlen(key) * 7) % N_STRS];
    return 1;
}

static int f_metric(void *ctx, const char *key, double *out)
{
    if (!seed_has(ctx, key))
        return 0;
    unsigned v = (*(const unsigned *)ctx >> 4) + (unsigned)strlen(key);
    *out = v % 5 == 0 ? NAN : (double)(v % 9) - 4;
    return 1;
}

static int f_dataset(void *ctx, size_t i, tally_search_attr field, const char **out)
{
    unsigned s = *(const unsigned *)ctx;
    if (i >= (s & 3))
        return -1;
    if ((s + i + (unsigned)field) % 3 == 0)
        return 0;
    *out = strs[(s + i * 3 + (unsigned)field) % N_STRS];
    return 1;
}

/* ---- filters ------------------------------------------------------------- */

static void fuzz_filter(tally_search_mode mode, const char *text, size_t len, unsigned seed)
{
    tally_search_filter *f = NULL;
    tally_search_error err;
    int rc = tally_search_filter_parse(mode, text, len, &f, &err);
    if (rc != 0) {
        CHECK(rc == TALLY_EINVAL || rc == TALLY_ENOMEM);
        CHECK(f == NULL);
        CHECK(memchr(err.msg, '\0', sizeof err.msg) != NULL);
        CHECK(err.msg[0] != '\0');
        return;
    }
    CHECK(tally__search_filter_check(f) == 0);

    size_t n = tally_search_filter_print(f, NULL, 0);
    char *canon = malloc(n + 1);
    CHECK(canon);
    CHECK(tally_search_filter_print(f, canon, n + 1) == n);
    CHECK(strlen(canon) == n);

    tally_search_filter *g = NULL;
    rc = tally_search_filter_parse(mode, canon, n, &g, &err);
    CHECK(rc == 0 || rc == TALLY_ENOMEM);
    if (rc == 0) {
        CHECK(g->n_clauses == f->n_clauses);
        char *again = malloc(n + 1);
        CHECK(again);
        CHECK(tally_search_filter_print(g, again, n + 1) == n);
        CHECK(memcmp(again, canon, n) == 0);
        free(again);
        tally_search_filter_free(g);
    }

    unsigned s = seed;
    tally_search_row row = {&s, f_attr_str, f_attr_num, f_str, f_str, f_metric, f_dataset};
    int m = tally_search_match(f, &row);
    CHECK(m == 0 || m == 1);
    tally_search_row none = {0};
    CHECK(tally_search_match(f, &none) == (f->n_clauses == 0));

    tally_search_sql_schema schema = {{0}, "(SELECT v FROM p WHERE k = ?)",
                                      (seed & 1) ? "(SELECT v FROM t WHERE k = ?)" : NULL};
    for (int a = 1; a < TALLY_SEARCH_N_ATTRS; a++)
        if ((seed >> (a % 8)) & 1)
            schema.attr[a] = "r.col";
    tally_search_sql sql;
    if (tally_search_sql_where(f, &schema, &sql) == 0) {
        size_t q = 0;
        for (const char *p = sql.where; *p; p++)
            q += *p == '?';
        CHECK(q == sql.n_binds);
        for (size_t i = 0; i < sql.n_binds; i++)
            CHECK(!sql.binds[i].is_text || sql.binds[i].text);
    }
    tally_search_sql_free(&sql);
    free(canon);
    tally_search_filter_free(f);
}

/* ---- order_by ------------------------------------------------------------ */

static void fuzz_order(tally_search_mode mode, const char *text, size_t len)
{
    char *copy = malloc(len + 1);
    CHECK(copy);
    memcpy(copy, text, len);
    copy[len] = '\0';
    const char *items[8];
    size_t n = 0;
    char *p = copy;
    while (n < 8) {
        items[n++] = p;
        char *nl = strchr(p, '\n');
        if (!nl)
            break;
        *nl = '\0';
        p = nl + 1;
    }
    tally_search_order *o = NULL;
    tally_search_error err;
    int rc = tally_search_order_parse(mode, items, n, &o, &err);
    if (rc == 0) {
        CHECK(tally__search_order_check(o) == 0);
        CHECK(o->n_user == n);
        char *texts[8] = {0};
        for (size_t i = 0; i < o->n_user; i++) {
            size_t k = tally_search_order_print_key(o, i, NULL, 0);
            CHECK((texts[i] = malloc(k + 1)) != NULL);
            CHECK(tally_search_order_print_key(o, i, texts[i], k + 1) == k);
        }
        tally_search_order *o2 = NULL;
        rc = tally_search_order_parse(mode, (const char *const *)texts, o->n_user, &o2, &err);
        CHECK(rc == 0 || rc == TALLY_ENOMEM);
        if (rc == 0) {
            CHECK(o2->n_keys == o->n_keys && o2->n_user == o->n_user);
            for (size_t i = 0; i < o->n_keys; i++) {
                CHECK(o2->keys[i].entity == o->keys[i].entity);
                CHECK(o2->keys[i].attr == o->keys[i].attr);
                CHECK(o2->keys[i].desc == o->keys[i].desc);
                CHECK(strcmp(o2->keys[i].key, o->keys[i].key) == 0);
            }
        }
        for (size_t i = 0; i < o->n_user; i++)
            free(texts[i]);
        tally_search_order_free(o2);
        unsigned s1 = 1, s2 = 2;
        tally_search_row a = {&s1, f_attr_str, f_attr_num, f_str, f_str, f_metric, NULL};
        tally_search_row b = {&s2, f_attr_str, f_attr_num, f_str, f_str, f_metric, NULL};
        int ab = tally_search_compare(o, &a, &b), ba = tally_search_compare(o, &b, &a);
        CHECK((ab > 0) - (ab < 0) == -((ba > 0) - (ba < 0)));
        CHECK(tally_search_compare(o, &a, &a) == 0);
        /* tally_search_sort leaves rows ordered by tally_search_compare. */
        unsigned seeds[12];
        tally_search_row rws[12];
        for (size_t i = 0; i < 12; i++) {
            seeds[i] = (unsigned)(i * 2654435761u >> 7) + (unsigned)len;
            rws[i] = (tally_search_row){&seeds[i], f_attr_str, f_attr_num, f_str, f_str,
                                        f_metric, NULL};
        }
        if (tally_search_sort(o, rws, 12) == 0)
            for (size_t i = 1; i < 12; i++)
                CHECK(tally_search_compare(o, &rws[i - 1], &rws[i]) <= 0);
    } else {
        CHECK(rc == TALLY_EINVAL || rc == TALLY_ENOMEM);
        CHECK(o == NULL);
        CHECK(rc == TALLY_ENOMEM || err.item < n);
    }
    tally_search_order_free(o);
    free(copy);
}

/* ---- LIKE ---------------------------------------------------------------- */

/* Same character rule as search_eval.c: a well-formed UTF-8 sequence or one byte. */
static size_t ref_unit(const unsigned char *s, size_t n, size_t i)
{
    unsigned char c = s[i];
    size_t need = c < 0x80 ? 1 : c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3
                               : c >= 0xF0 && c <= 0xF4 ? 4 : 1;
    if (need > n - i)
        return 1;
    for (size_t k = 1; k < need; k++)
        if ((s[i + k] & 0xC0) != 0x80)
            return 1;
    return need;
}

/* dp[i][j]: pattern from byte i matches text from byte j. Only positions
 * on character boundaries are ever reached. */
static int ref_like(const unsigned char *p, size_t pn, const unsigned char *t, size_t tn,
                    int icase)
{
    static unsigned char dp[65][65];
    if (pn > 64 || tn > 64)
        return -1;
    for (size_t i = pn + 1; i-- > 0;) {
        for (size_t j = tn + 1; j-- > 0;) {
            int r;
            if (i == pn) {
                r = j == tn;
            } else if (p[i] == '%') {
                r = dp[i + 1][j] || (j < tn && dp[i][j + ref_unit(t, tn, j)]);
            } else if (j == tn) {
                r = 0;
            } else if (p[i] == '_') {
                r = dp[i + 1][j + ref_unit(t, tn, j)];
            } else {
                size_t pu = ref_unit(p, pn, i), tu = ref_unit(t, tn, j);
                int eq = pu == tu && memcmp(p + i, t + j, pu) == 0;
                if (!eq && icase && pu == 1 && tu == 1) {
                    int a = p[i], b = t[j];
                    a = a >= 'A' && a <= 'Z' ? a + 32 : a;
                    b = b >= 'A' && b <= 'Z' ? b + 32 : b;
                    eq = a == b;
                }
                r = eq && dp[i + pu][j + tu];
            }
            dp[i][j] = (unsigned char)r;
        }
    }
    return dp[0][0];
}

static void fuzz_like(const uint8_t *data, size_t size, int icase)
{
    size_t half = size / 2;
    char *pat = malloc(half ? half : 1), *text = malloc(size - half ? size - half : 1);
    CHECK(pat && text);
    memcpy(pat, data, half);
    memcpy(text, data + half, size - half);
    int got = tally_search_like(pat, half, text, size - half, icase);
    CHECK(got == 0 || got == 1);
    int want = ref_like((const unsigned char *)pat, half, (const unsigned char *)text,
                        size - half, icase);
    CHECK(want < 0 || got == want);
    /* A pattern without wildcards matches itself. */
    if (!memchr(pat, '%', half) && !memchr(pat, '_', half))
        CHECK(tally_search_like(pat, half, pat, half, icase) == 1);
    free(pat);
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    unsigned seed = data[0];
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    /* A private copy of exactly len bytes, so an overread is an ASan report. */
    char *copy = malloc(len ? len : 1);
    CHECK(copy);
    memcpy(copy, text, len);
    for (int mode = 0; mode < TALLY_SEARCH_N_MODES; mode++) {
        fuzz_filter((tally_search_mode)mode, copy, len, seed);
        fuzz_order((tally_search_mode)mode, copy, len);
    }
    free(copy);
    if (size <= 16384)
        fuzz_like(data + 1, len, seed & 1);
    return 0;
}
