/*
 * test_search.c — the search languages (server/search.h): valid filters and
 * their canonical ASTs, invalid filters (each rejected with a positioned
 * message), LIKE/ILIKE, evaluation on synthetic rows (missing keys, NaN = 0,
 * datasets, dropped run_ids), order_by parsing, tie-breakers and sorting
 * with missing-last, and the SQL push-down checked against real SQLite.
 */
#include <sqlite3.h>
#include <time.h>

#include "search.h"
#include "test.h"

/* ---- helpers ------------------------------------------------------------- */

static tally_search_filter *parse_ok(tally_search_mode mode, const char *text)
{
    tally_search_filter *f = NULL;
    tally_search_error err;
    int rc = tally_search_filter_parse(mode, text, strlen(text), &f, &err);
    if (rc != 0)
        TEST_FAIL_("parse(%d, \"%s\") failed: %s", (int)mode, text, err.msg);
    ASSERT_EQ(tally__search_filter_check(f), 0);
    return f;
}

static void canon(const tally_search_filter *f, char *buf, size_t cap)
{
    size_t n = tally_search_filter_print(f, buf, cap);
    ASSERT(n < cap);
    ASSERT_EQ(strlen(buf), n);
}

static const char *mode_name(tally_search_mode m)
{
    static const char *names[] = {"runs", "experiments", "models", "versions"};
    return names[m];
}

/* ---- valid filters ------------------------------------------------------- */

typedef struct valid_case {
    tally_search_mode mode;
    const char *in;
    const char *canonical;
} valid_case;

#define R TALLY_SEARCH_RUNS
#define E TALLY_SEARCH_EXPERIMENTS
#define M TALLY_SEARCH_MODELS
#define V TALLY_SEARCH_VERSIONS

static const valid_case valid[] = {
    {R, "", ""},
    {R, " \t\n ", ""},
    {R, "metrics.acc > 0.9", "metrics.acc > 0.9"},
    {R, "metric.acc>=1", "metrics.acc >= 1"},
    {R, "metrics.acc<=1", "metrics.acc <= 1"},
    {R, "metrics.acc<1", "metrics.acc < 1"},
    {R, "metrics.acc!=1", "metrics.acc != 1"},
    {R, "params.lr = '0.01'", "params.lr = '0.01'"},
    {R, "param.lr = '0.01'", "params.lr = '0.01'"},
    {R, "parameter.lr != \"x\"", "params.lr != 'x'"},
    {R, "parameters.`a b` LIKE '%x_'", "params.`a b` LIKE '%x_'"},
    {R, "tags.mlflow.runName ILIKE 'foo%'", "tags.mlflow.runName ILIKE 'foo%'"},
    {R, "tag.\"a-b\" = 'v'", "tags.`a-b` = 'v'"},
    {R, "tags.`a/b:c` like 'v'", "tags.`a/b:c` LIKE 'v'"},
    {R, "`metrics`.`val loss` < -1.5e-3", "metrics.`val loss` < -1.5e-3"},
    {R, "`params`.lr = 'x'", "params.lr = 'x'"},
    {R, "`tags`.\"x y\" = 'x'", "tags.`x y` = 'x'"},
    {R, "metrics.a.b = 0", "metrics.a.b = 0"},
    {R, "metrics.a..b = 0", "metrics.a..b = 0"},
    {R, "metrics.1x = 0", "metrics.1x = 0"},
    {R, "attributes.status = 'RUNNING'", "attributes.status = 'RUNNING'"},
    {R, "status = 'FINISHED'", "attributes.status = 'FINISHED'"},
    {R, "attr.run_id IN ('abc', \"def\")", "attributes.run_id IN ('abc', 'def')"},
    {R, "run_id not in ('a')", "attributes.run_id NOT IN ('a')"},
    {R, "run_id NOT\tIN('a','b')", "attributes.run_id NOT IN ('a', 'b')"},
    {R, "run_id IN ('abc','ABC','dEf','x')", "attributes.run_id IN ('abc', 'x', 'ABC', 'dEf')"},
    {R, "run_id IN ('ABC')", "attributes.run_id IN ('ABC')"},
    {R, "\"run name\" = 'x'", "attributes.run_name = 'x'"},
    {R, "attributes.`Run Name` = 'x'", "attributes.run_name = 'x'"},
    {R, "`Run name` like 'x%'", "attributes.run_name LIKE 'x%'"},
    {R, "run_name = 'x'", "attributes.run_name = 'x'"},
    {R, "created > 1700000000000", "attributes.start_time > 1700000000000"},
    {R, "attributes.Created <= +5", "attributes.start_time <= +5"},
    {R, "run.end_time != 0", "attributes.end_time != 0"},
    {R, "datasets.name = 'mnist' and dataset.digest IN ('a1')",
     "datasets.name = 'mnist' AND datasets.digest IN ('a1')"},
    {R, "datasets.context NOT IN ('training', 'eval')",
     "datasets.context NOT IN ('training', 'eval')"},
    {R, "datasets.name ILIKE 'MN%'", "datasets.name ILIKE 'MN%'"},
    {R, "metrics.a = 1 AND params.b = 'x' aNd tags.c = 'y'",
     "metrics.a = 1 AND params.b = 'x' AND tags.c = 'y'"},
    {R, "metrics.a = .5", "metrics.a = .5"},
    {R, "metrics.a = 1.", "metrics.a = 1."},
    {R, "metrics.a=-0", "metrics.a = -0"},
    {R, "metrics.a = 1E+300", "metrics.a = 1E+300"},
    {R, "metrics.a = 1e999", "metrics.a = 1e999"},
    {R, "metrics.a = 99999999999999999999", "metrics.a = 99999999999999999999"},
    {R, "params.a = 'it\"s'", "params.a = 'it\"s'"},
    {R, "params.a = \"it's\"", "params.a = \"it's\""},
    {R, "params.a = ''", "params.a = ''"},
    {R, "tags.`we\"ird` = ''", "tags.`we\"ird` = ''"},
    {R, "tags.\"back`tick\" = 'v'", "tags.\"back`tick\" = 'v'"},
    {R, "metrics.\xc3\xbcnicode > 1", "metrics.\xc3\xbcnicode > 1"},
    {R, "params.x = '\xc3\xa9'", "params.x = '\xc3\xa9'"},
    {R, "user_id = 'bob' AND artifact_uri LIKE 's3://%'",
     "attributes.user_id = 'bob' AND attributes.artifact_uri LIKE 's3://%'"},
    {R, "\tmetrics.a\n=\r1  ", "metrics.a = 1"},
    {R, "params.a='x'AND params.b='y'", "params.a = 'x' AND params.b = 'y'"},
    {R, "params.a = 'x AND y'", "params.a = 'x AND y'"},
    {R, "params.a = 'OR'", "params.a = 'OR'"},
    {R, "params.and = 'x'", "params.and = 'x'"},
    {E, "name = 'exp'", "attributes.name = 'exp'"},
    {E, "attribute.creation_time > 0 AND tags.team like 'ml%'",
     "attributes.creation_time > 0 AND tags.team LIKE 'ml%'"},
    {E, "last_update_time <= 5", "attributes.last_update_time <= 5"},
    {E, "name ilike '%A%'", "attributes.name ILIKE '%A%'"},
    {M, "name ILIKE '%bert%'", "attributes.name ILIKE '%bert%'"},
    {M, "tags.`mlflow.prompt.is_prompt` = 'true'", "tags.mlflow.prompt.is_prompt = 'true'"},
    {V, "name = 'm' AND version_number >= 2 AND run_id IN ('abc')",
     "attributes.name = 'm' AND attributes.version_number >= 2 AND attributes.run_id IN ('abc')"},
    {V, "source_path LIKE 'models:/%'", "attributes.source_path LIKE 'models:/%'"},
    {V, "run_id IN ('ABC')", "attributes.run_id IN ('ABC')"},
    {V, "tag.k != 'v'", "tags.k != 'v'"},
};

static void test_valid_filters(void)
{
    for (size_t i = 0; i < sizeof valid / sizeof valid[0]; i++) {
        const valid_case *c = &valid[i];
        tally_search_filter *f = parse_ok(c->mode, c->in);
        char buf[512], again[512];
        canon(f, buf, sizeof buf);
        if (strcmp(buf, c->canonical) != 0)
            TEST_FAIL_("%s \"%s\": canonical \"%s\", expected \"%s\"", mode_name(c->mode), c->in,
                       buf, c->canonical);
        /* Round trip. */
        tally_search_filter *g = parse_ok(c->mode, buf);
        canon(g, again, sizeof again);
        ASSERT_STR_EQ(again, buf);
        /* Truncated printing: same length, NUL-terminated prefix. */
        char small[8];
        size_t n = tally_search_filter_print(f, small, sizeof small);
        ASSERT_EQ(n, strlen(buf));
        ASSERT(strlen(small) < sizeof small);
        ASSERT_EQ(strncmp(small, buf, strlen(small)), 0);
        tally_search_filter_free(g);
        tally_search_filter_free(f);
    }
}

static void test_ast_details(void)
{
    tally_search_filter *f =
        parse_ok(R, "run_id IN ('abc','ABC','dEf') AND metrics.m >= -2 AND created = 7 "
                    "AND metrics.x = 1.5e1 AND metrics.y = 99999999999999999999");
    ASSERT_EQ(f->n_clauses, 5);
    const tally_search_clause *c = &f->clauses[0];
    ASSERT_EQ(c->entity, TALLY_SEARCH_ATTR);
    ASSERT_EQ(c->attr, TALLY_SEARCH_A_RUN_ID);
    ASSERT_EQ(c->op, TALLY_SEARCH_IN);
    ASSERT_EQ(c->value.type, TALLY_SEARCH_V_LIST);
    ASSERT_EQ(c->value.n_list, 1);
    ASSERT_EQ(c->value.n_dropped, 2);
    ASSERT_STR_EQ(c->value.list[0], "abc");
    ASSERT_EQ(c->pos, 0);
    c = &f->clauses[1];
    ASSERT_EQ(c->entity, TALLY_SEARCH_METRIC);
    ASSERT_EQ(c->attr, TALLY_SEARCH_A_NONE);
    ASSERT_STR_EQ(c->key, "m");
    ASSERT_EQ(c->value.type, TALLY_SEARCH_V_NUM);
    ASSERT_EQ(c->value.is_int, 1);
    ASSERT_EQ(c->value.inum, -2);
    ASSERT_BITS_EQ(c->value.num, -2.0);
    c = &f->clauses[2];
    ASSERT_EQ(c->attr, TALLY_SEARCH_A_START_TIME);
    ASSERT_STR_EQ(c->key, "start_time");
    c = &f->clauses[3];
    ASSERT_EQ(c->value.is_int, 0);
    ASSERT_BITS_EQ(c->value.num, 15.0);
    c = &f->clauses[4];
    ASSERT_EQ(c->value.is_int, 0); /* does not fit int64 */
    ASSERT_DBL_NEAR(c->value.num, 1e20, 1e5);
    tally_search_filter_free(f);

    f = parse_ok(R, "datasets.digest = 'd'");
    ASSERT_EQ(f->clauses[0].entity, TALLY_SEARCH_DATASET);
    ASSERT_EQ(f->clauses[0].attr, TALLY_SEARCH_A_DS_DIGEST);
    tally_search_filter_free(f);

    /* Length-delimited text, not NUL-terminated. */
    tally_search_filter *g = NULL;
    const char text[] = "params.a = 'x'XXXX";
    ASSERT_OK(tally_search_filter_parse(R, text, 14, &g, NULL));
    ASSERT_EQ(g->n_clauses, 1);
    tally_search_filter_free(g);
    ASSERT_OK(tally_search_filter_parse(R, NULL, 0, &g, NULL));
    ASSERT_EQ(g->n_clauses, 0);
    tally_search_filter_free(g);
    tally_search_filter_free(NULL);

    /* Prompts: registry searches look for an explicit tag clause. */
    f = parse_ok(M, "name = 'x' AND tags.`mlflow.prompt.is_prompt` = 'true'");
    ASSERT_EQ(tally_search_filter_mentions_tag(f, "mlflow.prompt.is_prompt"), 1);
    ASSERT_EQ(tally_search_filter_mentions_tag(f, "other"), 0);
    tally_search_filter_free(f);
    ASSERT_EQ(tally_search_filter_mentions_tag(NULL, "x"), 0);
}

/* ---- invalid filters ----------------------------------------------------- */

typedef struct invalid_case {
    tally_search_mode mode;
    const char *in;
    long pos;                     /* expected error position, -1 = don't check */
    const char *needle;           /* substring of the message, or NULL */
} invalid_case;

static const invalid_case invalid[] = {
    {R, "metrics.a > 1 OR metrics.b < 2", 14, "OR"},
    {R, "metrics.a > 1 or metrics.b < 2", 14, "OR"},
    {R, "(metrics.a > 1)", 0, "parenthes"},
    {R, "NOT metrics.a > 1", 0, "NOT"},
    {R, "metrics.a LIKE '1'", 10, "LIKE"},
    {R, "metrics.a ILIKE '1'", 10, "ILIKE"},
    {R, "metrics.a = '1'", 12, "number"},
    {R, "metrics.a = abc", 12, NULL},
    {R, "metrics.a = NaN", 12, NULL},
    {R, "metrics.a = inf", 12, NULL},
    {R, "metrics.a IN ('1')", 10, NULL},
    {R, "params.a = 1", 11, "quoted string"},
    {R, "params.a > 'x'", 9, NULL},
    {R, "tags.a IN ('x')", 7, NULL},
    {R, "params.a NOT IN ('x')", 9, NULL},
    {R, "foo.a = 1", 0, "entity"},
    {R, "Metrics.a = 1", 0, "entity"},
    {R, "`foo`.a = 1", 0, "entity"},
    {R, "nosuch = 'x'", 0, "attribute key 'nosuch'"},
    {R, "attributes.nosuch = 'x'", 11, "nosuch"},
    {R, "attributes.name = 'x'", 11, NULL},
    {R, "RUN_ID = 'x'", 0, NULL},
    {R, "status > 'x'", 7, NULL},
    {R, "start_time = '5'", 13, "number"},
    {R, "start_time LIKE '5'", 11, NULL},
    {R, "status IN ('a')", 7, NULL},
    {R, "run_id IN ()", 11, "empty"},
    {R, "run_id IN ('a',)", 15, NULL},
    {R, "run_id IN ('a' 'b')", 15, NULL},
    {R, "run_id IN 'a'", 10, "("},
    {R, "run_id IN (1)", 11, "quoted"},
    {R, "run_id IN ('a'", -1, NULL},
    {R, "run_id = ('a')", 9, "list"},
    {R, "metrics.a = 1 AND", 17, "after AND"},
    {R, "metrics.a = 1 AND   ", 20, "after AND"},
    {R, "AND metrics.a = 1", 0, NULL},
    {R, "metrics.a = 1 metrics.b = 2", 14, "AND"},
    {R, "metrics.a = 1 ANDmetrics.b = 2", 14, NULL},
    {R, "metrics.a = 1 AND AND metrics.b = 1", -1, NULL},
    {R, "metrics.a", 9, "operator"},
    {R, "metrics.a =", 11, NULL},
    {R, "metrics. = 1", 8, "key"},
    {R, "metrics.", 8, NULL},
    {R, "metrics.`` = 1", 8, "empty"},
    {R, "metrics.`a = 1", 8, "unterminated"},
    {R, "params.a = 'x", 11, "unterminated"},
    {R, "params.a = \"x", 11, "unterminated"},
    {R, "metrics.a == 1", 11, NULL},
    {R, "metrics.a <> 1", 11, NULL},
    {R, "metrics.a = 1x", 12, "number"},
    {R, "metrics.a = 1e", 12, "exponent"},
    {R, "metrics.a = 1.2.3", 12, NULL},
    {R, "metrics.a = - 1", 12, NULL},
    {R, "metrics.a = --1", 12, NULL},
    {R, "metrics.a = 0x10", 12, NULL},
    {R, "metrics.a NOT LIKE 'x'", 14, "IN"},
    {R, "params.a NOT 'x'", 13, NULL},
    {R, "params.a LIKEx 'x'", 9, NULL},
    {R, "\"metrics\".a = 1", 9, "backticks"},
    {R, "params.a = 'x' ; drop table", 15, NULL},
    {R, "params.a = 'x' AND OR", 19, "OR"},
    {R, "dataset.foo = 'x'", 8, NULL},
    {R, "datasets.name > 'x'", 14, NULL},
    {R, "a.b.c = 1", 0, "entity"},
    {R, ".5 = 1", 0, NULL},
    {R, "= 1", 0, NULL},
    {R, "'x' = 'x'", 0, NULL},
    {R, "params.a = 'it''s'", 15, NULL},
    {R, "metrics.a > 1)", 13, NULL},
    {E, "metrics.a > 1", 0, NULL},
    {E, "params.a = 'x'", 0, NULL},
    {E, "datasets.name = 'x'", 0, NULL},
    {E, "experiment_id = '1'", 0, NULL},
    {E, "name > 'x'", 5, NULL},
    {E, "run_id = 'x'", 0, NULL},
    {E, "creation_time = 'x'", 16, NULL},
    {M, "version_number = 1", 0, NULL},
    {M, "tags.a > 'x'", 7, NULL},
    {M, "datasets.name = 'x'", 0, NULL},
    {M, "name IN ('a')", 5, NULL},
    {V, "version_number = 1.5", 17, "integer"},
    {V, "version_number = 1e2", 17, "integer"},
    {V, "version_number = '1'", 17, NULL},
    {V, "name IN ('a')", 5, NULL},
    {V, "run_id NOT IN ('a')", 7, NULL},
    {V, "metrics.a = 1", 0, NULL},
    {V, "status = 'READY'", 0, NULL},
};

static void test_invalid_filters(void)
{
    for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++) {
        const invalid_case *c = &invalid[i];
        tally_search_filter *f = (tally_search_filter *)1;
        tally_search_error err;
        int rc = tally_search_filter_parse(c->mode, c->in, strlen(c->in), &f, &err);
        if (rc != TALLY_EINVAL)
            TEST_FAIL_("%s \"%s\": rc %d, expected TALLY_EINVAL", mode_name(c->mode), c->in, rc);
        ASSERT(f == NULL);
        ASSERT(err.msg[0] != '\0');
        ASSERT(strstr(err.msg, "position") || strstr(err.msg, "end of input"));
        if (c->pos >= 0 && (long)err.pos != c->pos)
            TEST_FAIL_("%s \"%s\": error at %zu, expected %ld: %s", mode_name(c->mode), c->in,
                       err.pos, c->pos, err.msg);
        if (c->needle && !strstr(err.msg, c->needle))
            TEST_FAIL_("%s \"%s\": message lacks \"%s\": %s", mode_name(c->mode), c->in,
                       c->needle, err.msg);
        /* Also without an error struct. */
        ASSERT_EQ(tally_search_filter_parse(c->mode, c->in, strlen(c->in), &f, NULL),
                  TALLY_EINVAL);
    }
    /* A NUL byte inside the given length. */
    tally_search_filter *f;
    tally_search_error err;
    ASSERT_EQ(tally_search_filter_parse(R, "params.a = 'x\0y'", 16, &f, &err), TALLY_EINVAL);
    ASSERT_EQ(err.pos, 13);
    /* Unknown mode. */
    ASSERT_EQ(tally_search_filter_parse((tally_search_mode)9, "", 0, &f, &err), TALLY_EINVAL);
    /* Messages stay printable and bounded for binary garbage. */
    const char junk[] = "\x01\xff\x80 = \x7f";
    ASSERT_EQ(tally_search_filter_parse(R, junk, sizeof junk - 1, &f, &err), TALLY_EINVAL);
    for (const char *p = err.msg; *p; p++)
        ASSERT((unsigned char)*p >= 0x20 && (unsigned char)*p < 0x7f);
    fprintf(stderr, "   sample message: %s\n", err.msg);
}

/* ---- LIKE ---------------------------------------------------------------- */

typedef struct like_case {
    const char *pat, *text;
    int icase, want;
} like_case;

static const like_case likes[] = {
    {"", "", 0, 1},
    {"", "a", 0, 0},
    {"%", "", 0, 1},
    {"%", "abc", 0, 1},
    {"%%", "", 0, 1},
    {"_", "", 0, 0},
    {"_", "a", 0, 1},
    {"_", "ab", 0, 0},
    {"a%", "abc", 0, 1},
    {"a%", "a", 0, 1},
    {"a%", "ba", 0, 0},
    {"%c", "abc", 0, 1},
    {"%c", "abcd", 0, 0},
    {"%b%", "abc", 0, 1},
    {"%b%", "ac", 0, 0},
    {"a_c", "abc", 0, 1},
    {"a_c", "abbc", 0, 0},
    {"a_c", "ac", 0, 0},
    {"ABC", "abc", 0, 0},
    {"ABC", "abc", 1, 1},
    {"abc", "AbC", 1, 1},
    {"a%B%c", "AxbYC", 1, 1},
    {"a%b%c", "aXbYc", 0, 1},
    {"a%b%c", "aXbY", 0, 0},
    {"%_", "", 0, 0},
    {"%_", "x", 0, 1},
    {"_%_", "x", 0, 0},
    {"_%_", "xy", 0, 1},
    {"x%y", "xyy", 0, 1},
    {"%issip%", "mississippi", 0, 1},
    {"%iss%ppi", "mississippi", 0, 1},
    {"%iss%ppx", "mississippi", 0, 0},
    {"_", "\xc3\xa9", 0, 1},           /* one code point */
    {"__", "\xc3\xa9", 0, 0},
    {"_b", "\xe2\x82\xac" "b", 0, 1},  /* euro sign, 3 bytes */
    {"%\xc3\xa9", "caf\xc3\xa9", 0, 1},
    {"\xc3\xa9", "\xc3\x89", 1, 0},    /* non-ASCII is not folded */
    {"_", "\xff", 0, 1},               /* invalid byte = one character */
    {"__", "\xc3", 0, 0},
    {"%.%", "a.b", 0, 1},
    {"a\\%", "a\\x", 0, 1},            /* backslash is not an escape */
    {"a\\%", "a%", 0, 0},
    {"[a]", "[a]", 0, 1},
    {"[a]", "a", 0, 0},
    {"*", "x", 0, 0},
    {"?", "x", 0, 0},
    {"%a%a%a%a%a%b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 0, 0},
};

static void test_like(void)
{
    for (size_t i = 0; i < sizeof likes / sizeof likes[0]; i++) {
        const like_case *c = &likes[i];
        int got = tally_search_like(c->pat, strlen(c->pat), c->text, strlen(c->text), c->icase);
        if (got != c->want)
            TEST_FAIL_("LIKE '%s' on '%s' icase=%d: %d, expected %d", c->pat, c->text, c->icase,
                       got, c->want);
    }
    /* Adversarial sizes finish fast: 4000 '%a' against 8000 'a's, no 'b'. */
    size_t pn = 8001, tn = 8000;
    char *pat = malloc(pn + 1), *text = malloc(tn + 1);
    for (size_t i = 0; i < pn - 1; i += 2)
        pat[i] = '%', pat[i + 1] = 'a';
    pat[pn - 1] = 'b';
    memset(text, 'a', tn);
    clock_t t0 = clock();
    ASSERT_EQ(tally_search_like(pat, pn, text, tn, 0), 0);
    ASSERT_EQ(tally_search_like(pat, pn - 1, text, tn, 1), 1);
    /* The quadratic case for a one-star matcher: '%' then 4000 'a's and a 'b'. */
    pat[0] = '%';
    memset(pat + 1, 'a', 4000);
    pat[4001] = 'b';
    ASSERT_EQ(tally_search_like(pat, 4002, text, tn, 0), 0);
    double s = (double)(clock() - t0) / CLOCKS_PER_SEC;
    fprintf(stderr, "   adversarial LIKE: %.3f s\n", s);
    ASSERT(s < 2.0);
    free(pat);
    free(text);

    /* The string operators built on it. */
    ASSERT_EQ(tally_search_cmp_str(TALLY_SEARCH_EQ, "a", "a"), 1);
    ASSERT_EQ(tally_search_cmp_str(TALLY_SEARCH_EQ, "a", "A"), 0);
    ASSERT_EQ(tally_search_cmp_str(TALLY_SEARCH_NE, "a", "A"), 1);
    ASSERT_EQ(tally_search_cmp_str(TALLY_SEARCH_LIKE, "Hello", "h%"), 0);
    ASSERT_EQ(tally_search_cmp_str(TALLY_SEARCH_ILIKE, "Hello", "h%"), 1);
    ASSERT_EQ(tally_search_cmp_str(TALLY_SEARCH_LT, "a", "b"), 1);
    ASSERT_EQ(tally_search_cmp_str(TALLY_SEARCH_IN, "a", "a"), 0);

    /* Numbers: NaN compares as 0. */
    ASSERT_EQ(tally_search_cmp_num(TALLY_SEARCH_EQ, NAN, 0), 1);
    ASSERT_EQ(tally_search_cmp_num(TALLY_SEARCH_NE, NAN, 0), 0);
    ASSERT_EQ(tally_search_cmp_num(TALLY_SEARCH_GT, NAN, -1), 1);
    ASSERT_EQ(tally_search_cmp_num(TALLY_SEARCH_LE, NAN, 0), 1);
    ASSERT_EQ(tally_search_cmp_num(TALLY_SEARCH_LT, 1, 2), 1);
    ASSERT_EQ(tally_search_cmp_num(TALLY_SEARCH_GE, INFINITY, 1e308), 1);
    ASSERT_EQ(tally_search_cmp_num(TALLY_SEARCH_EQ, -0.0, 0.0), 1);
    ASSERT_EQ(tally_search_cmp_num(TALLY_SEARCH_LIKE, 1, 1), 0);
}

/* ---- synthetic rows ------------------------------------------------------ */

typedef struct kv {
    const char *k, *v;
} kv;
typedef struct kd {
    const char *k;
    double v;
} kd;
typedef struct ds {
    const char *name, *digest, *context;
} ds;

typedef struct trow {
    const char *run_id, *run_name, *status, *user_id, *artifact_uri;
    double start_time;
    int has_end;
    double end_time;
    kv params[4];
    kv tags[4];
    kd metrics[4];
    ds datasets[3];
} trow;

static int get_kv(const kv *t, const char *key, const char **out)
{
    for (; t->k; t++)
        if (strcmp(t->k, key) == 0) {
            *out = t->v;
            return 1;
        }
    return 0;
}

static int row_attr_str(void *ctx, tally_search_attr a, const char **out)
{
    const trow *r = ctx;
    const char *v = a == TALLY_SEARCH_A_RUN_ID         ? r->run_id
                    : a == TALLY_SEARCH_A_RUN_NAME     ? r->run_name
                    : a == TALLY_SEARCH_A_STATUS       ? r->status
                    : a == TALLY_SEARCH_A_USER_ID      ? r->user_id
                    : a == TALLY_SEARCH_A_ARTIFACT_URI ? r->artifact_uri
                                                       : NULL;
    *out = v;
    return v != NULL;
}

static int row_attr_num(void *ctx, tally_search_attr a, double *out)
{
    const trow *r = ctx;
    if (a == TALLY_SEARCH_A_START_TIME) {
        *out = r->start_time;
        return 1;
    }
    if (a == TALLY_SEARCH_A_END_TIME && r->has_end) {
        *out = r->end_time;
        return 1;
    }
    return 0;
}

static int row_param(void *ctx, const char *key, const char **out)
{
    return get_kv(((const trow *)ctx)->params, key, out);
}

static int row_tag(void *ctx, const char *key, const char **out)
{
    return get_kv(((const trow *)ctx)->tags, key, out);
}

static int row_metric(void *ctx, const char *key, double *out)
{
    for (const kd *m = ((const trow *)ctx)->metrics; m->k; m++)
        if (strcmp(m->k, key) == 0) {
            *out = m->v;
            return 1;
        }
    return 0;
}

static int row_dataset(void *ctx, size_t i, tally_search_attr field, const char **out)
{
    const trow *r = ctx;
    if (i >= 3 || !r->datasets[i].name)
        return -1;
    const ds *d = &r->datasets[i];
    *out = field == TALLY_SEARCH_A_DS_NAME     ? d->name
           : field == TALLY_SEARCH_A_DS_DIGEST ? d->digest
                                               : d->context;
    return *out != NULL;
}

static tally_search_row as_row(const trow *r)
{
    tally_search_row row = {(void *)r, row_attr_str, row_attr_num, row_param,
                            row_tag,   row_metric,   row_dataset};
    return row;
}

static const trow rows[] = {
    {"r0", "alpha", "FINISHED", "bob", "s3://b/0", 100, 1, 200,
     {{"lr", "0.1"}, {"opt", "Adam"}},
     {{"mlflow.runName", "alpha"}, {"team", "ml"}},
     {{"acc", 0.5}, {"loss", NAN}},
     {{"mnist", "d1", "training"}, {"cifar", "d2", NULL}}},
    {"r1", "beta", "RUNNING", "alice", "s3://b/1", 300, 0, 0,
     {{"lr", "0.2"}},
     {{"mlflow.runName", "beta"}},
     {{"acc", 0.9}, {"loss", 0.0}},
     {{"cifar", "d3", "eval"}}},
    {"r2", NULL, "FAILED", "bob", "file:///x", 200, 1, 250,
     {{"opt", "sgd"}},
     {{0}},
     {{0}},
     {{0}}},
    {"ABC", "gamma", "FINISHED", "carol", "s3://b/2", 300, 1, 400, {{0}},
     {{"mlflow.runName", "gamma"}}, {{"acc", 0.9}},
     {{0}}},
};
#define N_ROWS (sizeof rows / sizeof rows[0])

typedef struct match_case {
    const char *filter;
    const char *want;             /* indexes of matching rows, e.g. "013" */
} match_case;

static const match_case matches[] = {
    {"", "0123"},
    {"params.lr = '0.1'", "0"},
    {"params.lr != '0.1'", "1"},           /* r2, r3 lack lr: no match even for != */
    {"params.opt LIKE 'a%'", ""},
    {"params.opt ILIKE 'a%'", "0"},
    {"params.opt LIKE '%d%'", "02"},
    {"tags.team = 'ml'", "0"},
    {"tags.team != 'x'", "0"},
    {"metrics.acc > 0.6", "13"},
    {"metrics.acc >= 0.5", "013"},
    {"metrics.acc != 0.9", "0"},
    {"metrics.loss = 0", "01"},            /* NaN compares as 0 */
    {"metrics.loss != 0", ""},
    {"metrics.loss < 1", "01"},
    {"metrics.missing != 5", ""},
    {"attributes.end_time > 0", "023"},    /* r1 is running: end_time missing */
    {"attributes.end_time != 1", "023"},
    {"created >= 200", "123"},
    {"start_time < 200", "0"},
    {"status = 'FINISHED'", "03"},
    {"status != 'FINISHED'", "12"},
    {"status ILIKE 'fin%'", "03"},
    {"run_name = 'alpha'", "0"},
    {"\"Run Name\" LIKE '%a'", "013"},
    {"run_name != 'alpha'", "13"},         /* r2 has no name */
    {"user_id = 'bob' AND status = 'FAILED'", "2"},
    {"artifact_uri LIKE 's3://%'", "013"},
    {"run_id IN ('r0', 'r2')", "02"},
    {"run_id IN ('r0', 'ABC')", "0"},      /* upper-case entries are dropped */
    {"run_id IN ('ABC')", ""},
    {"run_id NOT IN ('r0')", "123"},
    {"run_id NOT IN ('ABC')", "0123"},
    {"datasets.name = 'cifar'", "01"},
    {"datasets.name = 'mnist' AND datasets.digest = 'd2'", "0"}, /* different datasets */
    {"datasets.context = 'eval'", "1"},
    {"datasets.context != 'eval'", "0"},   /* r0's cifar lacks context; mnist has one */
    {"datasets.digest IN ('d3', 'd9')", "1"},
    {"datasets.digest NOT IN ('d1', 'd2')", "1"},
    {"datasets.name LIKE 'c%' AND metrics.acc > 0.6", "1"},
    {"metrics.acc > 0.1 AND params.lr = '0.1' AND tags.team = 'ml'", "0"},
};

static void test_match(void)
{
    for (size_t i = 0; i < sizeof matches / sizeof matches[0]; i++) {
        tally_search_filter *f = parse_ok(R, matches[i].filter);
        char got[16] = "";
        size_t n = 0;
        for (size_t r = 0; r < N_ROWS; r++) {
            tally_search_row row = as_row(&rows[r]);
            if (tally_search_match(f, &row))
                got[n++] = (char)('0' + r);
        }
        got[n] = '\0';
        if (strcmp(got, matches[i].want) != 0)
            TEST_FAIL_("\"%s\" matched \"%s\", expected \"%s\"", matches[i].filter, got,
                       matches[i].want);
        tally_search_filter_free(f);
    }
    /* A row with no getters lacks everything. */
    tally_search_row empty = {0};
    tally_search_filter *f = parse_ok(R, "params.a != 'x'");
    ASSERT_EQ(tally_search_match(f, &empty), 0);
    tally_search_filter_free(f);
    f = parse_ok(R, "");
    ASSERT_EQ(tally_search_match(f, &empty), 1);
    tally_search_filter_free(f);
}

/* ---- order_by ------------------------------------------------------------ */

static tally_search_order *order_ok(tally_search_mode mode, const char *const *items, size_t n)
{
    tally_search_order *o = NULL;
    tally_search_error err;
    int rc = tally_search_order_parse(mode, items, n, &o, &err);
    if (rc != 0)
        TEST_FAIL_("order_parse(%s, %s...) failed: %s", mode_name(mode), n ? items[0] : "-",
                   err.msg);
    ASSERT_EQ(tally__search_order_check(o), 0);
    return o;
}

/* All keys (tie-breakers too), comma-separated canonical. */
static void order_str(const tally_search_order *o, char *buf, size_t cap)
{
    size_t len = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < o->n_keys; i++) {
        if (i)
            len += (size_t)snprintf(buf + len, cap - len, ", ");
        len += tally_search_order_print_key(o, i, buf + len, cap - len);
        ASSERT(len < cap);
    }
}

typedef struct order_case {
    tally_search_mode mode;
    const char *items[4];
    size_t n;
    size_t n_user;
    const char *want;
} order_case;

static const order_case orders[] = {
    {R, {0}, 0, 0, "attributes.start_time DESC, attributes.run_id ASC"},
    {R, {"metrics.acc DESC"}, 1, 1,
     "metrics.acc DESC, attributes.start_time DESC, attributes.run_id ASC"},
    {R, {"metric.`val loss`"}, 1, 1,
     "metrics.`val loss` ASC, attributes.start_time DESC, attributes.run_id ASC"},
    {R, {"params.lr asc", "tags.t Desc"}, 2, 2,
     "params.lr ASC, tags.t DESC, attributes.start_time DESC, attributes.run_id ASC"},
    {R, {"created"}, 1, 1, "attributes.start_time ASC, attributes.run_id ASC"},
    {R, {"start_time ASC"}, 1, 1, "attributes.start_time ASC, attributes.run_id ASC"},
    {R, {"run_id DESC"}, 1, 1, "attributes.run_id DESC, attributes.start_time DESC"},
    {R, {"`Run Name`", "attributes.end_time DESC"}, 2, 2,
     "attributes.run_name ASC, attributes.end_time DESC, attributes.start_time DESC, "
     "attributes.run_id ASC"},
    {R, {"  status  "}, 1, 1,
     "attributes.status ASC, attributes.start_time DESC, attributes.run_id ASC"},
    {E, {0}, 0, 0, "attributes.creation_time DESC, attributes.experiment_id ASC"},
    {E, {"name"}, 1, 1, "attributes.name ASC, attributes.experiment_id DESC"},
    {E, {"attribute.experiment_id"}, 1, 1, "attributes.experiment_id ASC"},
    {E, {"last_update_time DESC"}, 1, 1,
     "attributes.last_update_time DESC, attributes.experiment_id DESC"},
    {M, {0}, 0, 0, "attributes.name ASC"},
    {M, {"timestamp DESC"}, 1, 1, "attributes.last_updated_timestamp DESC, attributes.name ASC"},
    {M, {"name DESC"}, 1, 1, "attributes.name DESC"},
    {V, {0}, 0, 0,
     "attributes.last_updated_timestamp DESC, attributes.name ASC, "
     "attributes.version_number DESC"},
    {V, {"creation_timestamp"}, 1, 1,
     "attributes.creation_timestamp ASC, attributes.name ASC, attributes.version_number DESC"},
    {V, {"version_number ASC"}, 1, 1, "attributes.version_number ASC, attributes.name ASC"},
};

typedef struct order_bad {
    tally_search_mode mode;
    const char *items[3];
    size_t n;
    size_t item;                  /* expected err.item */
} order_bad;

static const order_bad bad_orders[] = {
    {R, {"metrics.a", "metric.a DESC"}, 2, 1},
    {R, {"created", "start_time"}, 2, 1},
    {R, {"params.x", "tags.x", "params.x"}, 3, 2},
    {R, {"metrics.a UP"}, 1, 0},
    {R, {"metrics.a DESC extra"}, 1, 0},
    {R, {"metrics.a DESCx"}, 1, 0},
    {R, {""}, 1, 0},
    {R, {"   "}, 1, 0},
    {R, {NULL}, 1, 0},
    {R, {"datasets.name"}, 1, 0},
    {R, {"foo"}, 1, 0},
    {R, {"foo.bar"}, 1, 0},
    {R, {"metrics.a, metrics.b"}, 1, 0},
    {R, {"metrics.a", "(x)"}, 2, 1},
    {R, {"metrics.`a"}, 1, 0},
    {E, {"tags.x"}, 1, 0},
    {E, {"creation_time", "attributes.creation_time DESC"}, 2, 1},
    {E, {"last_updated_timestamp"}, 1, 0},
    {M, {"version_number"}, 1, 0},
    {M, {"timestamp", "last_updated_timestamp"}, 2, 1},
    {V, {"timestamp"}, 1, 0},
    {V, {"metrics.x"}, 1, 0},
};

static void test_order_parse(void)
{
    for (size_t i = 0; i < sizeof orders / sizeof orders[0]; i++) {
        const order_case *c = &orders[i];
        tally_search_order *o = order_ok(c->mode, c->items, c->n);
        char buf[512];
        order_str(o, buf, sizeof buf);
        if (strcmp(buf, c->want) != 0)
            TEST_FAIL_("%s order %s: \"%s\", expected \"%s\"", mode_name(c->mode),
                       c->n ? c->items[0] : "-", buf, c->want);
        ASSERT_EQ(o->n_user, c->n_user);
        /* User keys round-trip through their canonical form. */
        const char *again[4];
        char texts[4][128];
        for (size_t k = 0; k < o->n_user; k++) {
            tally_search_order_print_key(o, k, texts[k], sizeof texts[k]);
            again[k] = texts[k];
        }
        tally_search_order *o2 = order_ok(c->mode, again, o->n_user);
        char buf2[512];
        order_str(o2, buf2, sizeof buf2);
        ASSERT_STR_EQ(buf2, buf);
        tally_search_order_free(o2);
        tally_search_order_free(o);
    }
    for (size_t i = 0; i < sizeof bad_orders / sizeof bad_orders[0]; i++) {
        const order_bad *c = &bad_orders[i];
        tally_search_order *o = (tally_search_order *)1;
        tally_search_error err;
        int rc = tally_search_order_parse(c->mode, c->items, c->n, &o, &err);
        if (rc != TALLY_EINVAL)
            TEST_FAIL_("%s order %s: rc %d, expected TALLY_EINVAL", mode_name(c->mode),
                       c->items[0] ? c->items[0] : "(null)", rc);
        ASSERT(o == NULL);
        ASSERT_EQ(err.item, c->item);
        ASSERT(strstr(err.msg, "order_by["));
    }
    tally_search_order_free(NULL);
    tally_search_order *o;
    tally_search_error err;
    ASSERT_EQ(tally_search_order_parse((tally_search_mode)-1, NULL, 0, &o, &err), TALLY_EINVAL);
    const char *dup[] = {"metrics.a", "metric.a DESC"};
    ASSERT_EQ(tally_search_order_parse(R, dup, 2, &o, &err), TALLY_EINVAL);
    fprintf(stderr, "   sample message: %s\n", err.msg);
}

/* Sorts row indexes with o and returns them as a string of digits. */
static const trow *sort_rows_;
static const tally_search_order *sort_order_;

static int cmp_idx(const void *a, const void *b)
{
    tally_search_row ra = as_row(&sort_rows_[*(const int *)a]);
    tally_search_row rb = as_row(&sort_rows_[*(const int *)b]);
    return tally_search_compare(sort_order_, &ra, &rb);
}

static void sorted(const trow *rs, size_t n, const char *const *items, size_t n_items,
                   char *out)
{
    tally_search_order *o = order_ok(R, items, n_items);
    int idx[16];
    for (size_t i = 0; i < n; i++)
        idx[i] = (int)i;
    sort_rows_ = rs;
    sort_order_ = o;
    qsort(idx, n, sizeof idx[0], cmp_idx);
    for (size_t i = 0; i < n; i++)
        out[i] = (char)('0' + idx[i]);
    out[n] = '\0';
    /* tally_search_sort (prefetched keys, merge sort) agrees. */
    tally_search_row rws[16];
    for (size_t i = 0; i < n; i++)
        rws[i] = as_row(&rs[i]);
    ASSERT_OK(tally_search_sort(o, rws, n));
    for (size_t i = 0; i < n; i++)
        ASSERT_EQ((const trow *)rws[i].ctx - rs, idx[i]);
    tally_search_order_free(o);
}

static void test_sort(void)
{
    /* start_time ties broken by run_id ASC; metric m: values, NaN, missing. */
    static const trow s[] = {
        {"e", NULL, NULL, NULL, NULL, 10, 0, 0, {{"p", "b"}}, {{0}}, {{"m", 2}}, {{0}}},
        {"d", NULL, NULL, NULL, NULL, 20, 0, 0, {{0}}, {{0}}, {{"m", NAN}}, {{0}}},
        {"c", NULL, NULL, NULL, NULL, 20, 0, 0, {{"p", "a"}}, {{0}}, {{0}}, {{0}}},
        {"b", NULL, NULL, NULL, NULL, 30, 0, 0, {{"p", "c"}}, {{0}}, {{"m", -1}}, {{0}}},
        {"a", NULL, NULL, NULL, NULL, 10, 0, 0, {{0}}, {{0}}, {{"m", 2}}, {{0}}},
        {"f", NULL, NULL, NULL, NULL, 5, 0, 0, {{"p", "B"}}, {{0}}, {{"m", INFINITY}}, {{0}}},
    };
    char got[16];
    const char *asc[] = {"metrics.m"}, *desc[] = {"metrics.m DESC"};
    sorted(s, 6, NULL, 0, got);
    ASSERT_STR_EQ(got, "321405"); /* start_time DESC, run_id ASC */
    sorted(s, 6, asc, 1, got);
    ASSERT_STR_EQ(got, "340512"); /* -1, 2 (a@10, e@10 by run_id), inf, NaN, missing */
    sorted(s, 6, desc, 1, got);
    ASSERT_STR_EQ(got, "540312"); /* inf, 2, 2, -1, then NaN, missing still last */
    const char *pasc[] = {"params.p"}, *pdesc[] = {"params.p DESC"};
    sorted(s, 6, pasc, 1, got);
    ASSERT_STR_EQ(got, "520314"); /* "B" < "a" < "b" < "c" bytewise; missing last */
    sorted(s, 6, pdesc, 1, got);
    ASSERT_STR_EQ(got, "302514");
    const char *st[] = {"attributes.start_time"};
    sorted(s, 6, st, 1, got);
    ASSERT_STR_EQ(got, "540213"); /* ASC, ties by run_id ASC */
    const char *two[] = {"params.p DESC", "metrics.m"};
    sorted(s, 6, two, 2, got);
    ASSERT_STR_EQ(got, "302541"); /* missing p: a (m=2) before d (NaN) */
    const char *name[] = {"run_name"};
    sorted(s, 6, name, 1, got); /* all missing: tie-breakers decide */
    ASSERT_STR_EQ(got, "321405");
    /* Compare is antisymmetric and reflexive on these rows. */
    tally_search_order *o = order_ok(R, two, 2);
    for (size_t i = 0; i < 6; i++)
        for (size_t j = 0; j < 6; j++) {
            tally_search_row a = as_row(&s[i]), b = as_row(&s[j]);
            int ab = tally_search_compare(o, &a, &b), ba = tally_search_compare(o, &b, &a);
            ASSERT_EQ((ab > 0) - (ab < 0), -((ba > 0) - (ba < 0)));
            if (i == j)
                ASSERT_EQ(ab, 0);
        }
    /* Stability and trivial sizes. */
    tally_search_row one = as_row(&s[0]);
    ASSERT_OK(tally_search_sort(o, &one, 1));
    ASSERT_OK(tally_search_sort(o, NULL, 0));
    tally_search_order_free(o);
    static const trow same[] = {
        {"x", NULL, NULL, NULL, NULL, 1, 0, 0, {{0}}, {{0}}, {{0}}, {{0}}},
        {"x", NULL, NULL, NULL, NULL, 1, 0, 0, {{0}}, {{0}}, {{0}}, {{0}}},
        {"x", NULL, NULL, NULL, NULL, 1, 0, 0, {{0}}, {{0}}, {{0}}, {{0}}},
    };
    o = order_ok(R, NULL, 0);
    tally_search_row three[3] = {as_row(&same[0]), as_row(&same[1]), as_row(&same[2])};
    ASSERT_OK(tally_search_sort(o, three, 3));
    for (int i = 0; i < 3; i++)
        ASSERT(three[i].ctx == &same[i]);
    tally_search_order_free(o);
}

/* ---- SQL push-down against SQLite ---------------------------------------- */

static void exec_sql(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
        TEST_FAIL_("%s: %s", sql, msg);
}

static void test_sql(void)
{
    sqlite3 *db;
    ASSERT_EQ(sqlite3_open(":memory:", &db), SQLITE_OK);
    exec_sql(db, "CREATE TABLE runs(run_uuid TEXT PRIMARY KEY, status TEXT, user_id TEXT, "
                 "artifact_uri TEXT, start_time INTEGER, end_time INTEGER);"
                 "CREATE TABLE params(run_uuid TEXT, key TEXT, value TEXT);"
                 "CREATE TABLE tags(run_uuid TEXT, key TEXT, value TEXT);");
    sqlite3_stmt *st;
    for (size_t r = 0; r < N_ROWS; r++) {
        const trow *t = &rows[r];
        ASSERT_EQ(sqlite3_prepare_v2(db, "INSERT INTO runs VALUES(?,?,?,?,?,?)", -1, &st, NULL),
                  SQLITE_OK);
        sqlite3_bind_text(st, 1, t->run_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, t->status, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, t->user_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, t->artifact_uri, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 5, (int64_t)t->start_time);
        if (t->has_end)
            sqlite3_bind_int64(st, 6, (int64_t)t->end_time);
        ASSERT_EQ(sqlite3_step(st), SQLITE_DONE);
        sqlite3_finalize(st);
        for (int kind = 0; kind < 2; kind++) {
            const kv *l = kind ? t->tags : t->params;
            for (; l->k; l++) {
                ASSERT_EQ(sqlite3_prepare_v2(db,
                                             kind ? "INSERT INTO tags VALUES(?,?,?)"
                                                  : "INSERT INTO params VALUES(?,?,?)",
                                             -1, &st, NULL),
                          SQLITE_OK);
                sqlite3_bind_text(st, 1, t->run_id, -1, SQLITE_STATIC);
                sqlite3_bind_text(st, 2, l->k, -1, SQLITE_STATIC);
                sqlite3_bind_text(st, 3, l->v, -1, SQLITE_STATIC);
                ASSERT_EQ(sqlite3_step(st), SQLITE_DONE);
                sqlite3_finalize(st);
            }
        }
    }
    tally_search_sql_schema schema = {{0}, NULL, NULL};
    schema.attr[TALLY_SEARCH_A_RUN_ID] = "r.run_uuid";
    schema.attr[TALLY_SEARCH_A_STATUS] = "r.status";
    schema.attr[TALLY_SEARCH_A_USER_ID] = "r.user_id";
    schema.attr[TALLY_SEARCH_A_ARTIFACT_URI] = "r.artifact_uri";
    schema.attr[TALLY_SEARCH_A_START_TIME] = "r.start_time";
    schema.attr[TALLY_SEARCH_A_END_TIME] = "r.end_time";
    schema.attr[TALLY_SEARCH_A_RUN_NAME] =
        "(SELECT value FROM tags t WHERE t.run_uuid = r.run_uuid AND t.key = 'mlflow.runName')";
    schema.param = "(SELECT value FROM params p WHERE p.run_uuid = r.run_uuid AND p.key = ?)";
    schema.tag = "(SELECT value FROM tags t WHERE t.run_uuid = r.run_uuid AND t.key = ?)";

    /* Extra LIKE/GLOB cases beyond the match table. */
    static const char *extra[] = {
        "artifact_uri LIKE '%/_'",      "artifact_uri LIKE 's3:__b%'",
        "artifact_uri ILIKE 'S3%'",     "artifact_uri LIKE 'S3%'",
        "params.opt LIKE '[%'",         "params.opt LIKE '*'",
        "params.lr LIKE '0?1'",         "params.lr LIKE '0_1'",
        "start_time > 1.5e2",           "start_time = 300.0",
        "end_time <= 250",              "run_id != 'r0' AND params.opt != 'x'",
        "attributes.run_id IN ('r1', 'ABC', 'r2')",
    };
    size_t n_cases = sizeof matches / sizeof matches[0] + sizeof extra / sizeof extra[0];
    for (size_t i = 0; i < n_cases; i++) {
        const char *text = i < sizeof matches / sizeof matches[0]
                               ? matches[i].filter
                               : extra[i - sizeof matches / sizeof matches[0]];
        tally_search_filter *f = parse_ok(R, text);
        tally_search_sql sql;
        ASSERT_OK(tally_search_sql_where(f, &schema, &sql));
        char q[2048];
        snprintf(q, sizeof q, "SELECT run_uuid FROM runs r WHERE %s ORDER BY rowid", sql.where);
        if (sqlite3_prepare_v2(db, q, -1, &st, NULL) != SQLITE_OK)
            TEST_FAIL_("%s -> %s: %s", text, q, sqlite3_errmsg(db));
        ASSERT_EQ((size_t)sqlite3_bind_parameter_count(st), sql.n_binds);
        for (size_t b = 0; b < sql.n_binds; b++) {
            const tally_search_sql_bind *x = &sql.binds[b];
            if (x->is_text)
                sqlite3_bind_text(st, (int)b + 1, x->text, -1, SQLITE_STATIC);
            else if (x->is_int)
                sqlite3_bind_int64(st, (int)b + 1, x->inum);
            else
                sqlite3_bind_double(st, (int)b + 1, x->num);
        }
        char got_sql[16] = "", got_eval[16] = "";
        size_t n = 0, m = 0;
        while (sqlite3_step(st) == SQLITE_ROW) {
            const char *id = (const char *)sqlite3_column_text(st, 0);
            for (size_t r = 0; r < N_ROWS; r++) {
                if (strcmp(rows[r].run_id, id) != 0)
                    continue;
                tally_search_row row = as_row(&rows[r]);
                /* Post-filter what SQL could not express. */
                if (sql.complete || tally_search_match(f, &row))
                    got_sql[n++] = (char)('0' + r);
            }
        }
        sqlite3_finalize(st);
        for (size_t r = 0; r < N_ROWS; r++) {
            tally_search_row row = as_row(&rows[r]);
            if (tally_search_match(f, &row))
                got_eval[m++] = (char)('0' + r);
        }
        if (strcmp(got_sql, got_eval) != 0)
            TEST_FAIL_("\"%s\": SQL (%s, complete=%d) gives \"%s\", evaluator \"%s\"", text,
                       sql.where, sql.complete, got_sql, got_eval);
        int has_metric_or_ds = strstr(text, "metrics.") || strstr(text, "datasets.");
        ASSERT_EQ(sql.complete, !has_metric_or_ds);
        tally_search_sql_free(&sql);
        tally_search_filter_free(f);
    }

    /* Shape of the output. */
    tally_search_filter *f =
        parse_ok(R, "metrics.a > 1 AND params.lr = 'x' AND run_id IN ('ABC') AND "
                    "run_id NOT IN ('XY') AND params.o LIKE 'a_[*'");
    tally_search_sql sql;
    ASSERT_OK(tally_search_sql_where(f, &schema, &sql));
    ASSERT_EQ(sql.complete, 0);
    ASSERT_EQ(sql.n_binds, 4);
    ASSERT(strstr(sql.where, "(0)"));
    ASSERT(strstr(sql.where, "r.run_uuid IS NOT NULL"));
    ASSERT_STR_EQ(sql.binds[0].text, "lr");
    ASSERT_STR_EQ(sql.binds[1].text, "x");
    ASSERT_STR_EQ(sql.binds[2].text, "o");
    ASSERT_STR_EQ(sql.binds[3].text, "a?[[][*]");
    tally_search_sql_free(&sql);
    /* Nothing pushable: "1", incomplete. */
    tally_search_sql_schema none = {{0}, NULL, NULL};
    ASSERT_OK(tally_search_sql_where(f, &none, &sql));
    ASSERT_STR_EQ(sql.where, "1");
    ASSERT_EQ(sql.n_binds, 0);
    ASSERT_EQ(sql.complete, 0);
    tally_search_sql_free(&sql);
    tally_search_sql_free(&sql); /* idempotent */
    tally_search_filter_free(f);
    sqlite3_close(db);
}

/* ---- vocabulary ---------------------------------------------------------- */

static void test_names(void)
{
    ASSERT_STR_EQ(tally_search_attr_name(TALLY_SEARCH_A_START_TIME), "start_time");
    ASSERT_STR_EQ(tally_search_attr_name(TALLY_SEARCH_A_DS_CONTEXT), "context");
    ASSERT_STR_EQ(tally_search_attr_name(TALLY_SEARCH_A_NONE), "");
    ASSERT_STR_EQ(tally_search_attr_name((tally_search_attr)999), "");
    ASSERT_EQ(tally_search_attr_is_num(TALLY_SEARCH_A_END_TIME), 1);
    ASSERT_EQ(tally_search_attr_is_num(TALLY_SEARCH_A_RUN_ID), 0);
    ASSERT_EQ(tally_search_attr_is_num((tally_search_attr)-3), 0);
    ASSERT_STR_EQ(tally_search_op_name(TALLY_SEARCH_NOT_IN), "NOT IN");
    ASSERT_STR_EQ(tally_search_op_name(TALLY_SEARCH_N_OPS), "?");
}

int main(void)
{
    TEST_RUN(test_names);
    TEST_RUN(test_valid_filters);
    TEST_RUN(test_ast_details);
    TEST_RUN(test_invalid_filters);
    TEST_RUN(test_like);
    TEST_RUN(test_match);
    TEST_RUN(test_order_parse);
    TEST_RUN(test_sort);
    TEST_RUN(test_sql);
    return TEST_DONE();
}
