/*
 * test_registry_import.c — tally_store_import_model
 * (server/store_registry_import.h) on a temporary SQLite file: a model is
 * written whole with its numbers, gaps, stages, statuses, times, tags and
 * aliases; deleted versions stay hidden with their number reserved and the
 * registry numbering continues after them; the ledger makes a second call a
 * no-op; every refused input leaves nothing behind; a version's source run
 * id is mapped through the run import ledger.
 */
#include "test.h"
#include "store.h"
#include "store_cli.h"
#include "store_registry.h"
#include "store_registry_import.h"

static char dir[4096];
static char dbpath[4200];
static char err[1024];

static tally_store *open_fresh(const char *name)
{
    test_tmpdir(dir, sizeof dir, name);
    snprintf(dbpath, sizeof dbpath, "%s/meta.db", dir);
    tally_store *s = NULL;
    int rc = tally_store_open(dbpath, &s, err, sizeof err);
    if (rc != 0)
        fprintf(stderr, "open: %s\n", err);
    ASSERT_EQ(rc, 0);
    return s;
}

static const tally_kv model_tags[] = {{"team", "vision"}, {"nested/key", "a\nb"}};
static const tally_kv v4_tags[] = {{"validated", "yes"}};
static const tally_kv v3_tags[] = {{"gone", "x"}};

static tally_import_version sample_versions[] = {
    {.version = 4, .creation_time_ms = 400, .last_updated_time_ms = 401, .description = "four",
     .stage = TALLY_STAGE_PRODUCTION, .source = "runs:/r4/model", .run_id = "r4",
     .run_link = "http://x/r4", .status = "PENDING_REGISTRATION", .tags = v4_tags, .n_tags = 1},
    {.version = 1, .creation_time_ms = 100, .stage = TALLY_STAGE_ARCHIVED,
     .source = "s3://b/1"},
    {.version = 3, .creation_time_ms = 300, .last_updated_time_ms = 350,
     .stage = TALLY_STAGE_DELETED, .source = "REDACTED-SOURCE-PATH", .tags = v3_tags,
     .n_tags = 1},
};
static const tally_model_alias sample_aliases[] = {{"champion", 4}, {"old", 1}};

static tally_import_model sample(void)
{
    return (tally_import_model){.source = "mlruns:/src",
                                .name = "m",
                                .creation_time_ms = 50,
                                .last_updated_time_ms = 999,
                                .description = "desc",
                                .tags = model_tags,
                                .n_tags = 2,
                                .versions = sample_versions,
                                .n_versions = 3,
                                .aliases = sample_aliases,
                                .n_aliases = 2};
}

static void test_whole_model(void)
{
    tally_store *s = open_fresh("regimp-whole");
    tally_arena *a = tally_arena_new();
    tally_import_model m = sample();
    int written = -1;
    ASSERT_OK(tally_store_import_model(s, &m, &written, err, sizeof err));
    ASSERT_EQ(written, 1);

    tally_registered_model rm;
    ASSERT_OK(tally_registry_get_model(s, "m", a, &rm, err, sizeof err));
    ASSERT_EQ(rm.creation_time_ms, 50);
    ASSERT_EQ(rm.last_updated_time_ms, 999);
    ASSERT_STR_EQ(rm.description, "desc");
    ASSERT_EQ(rm.n_tags, 2);
    ASSERT_STR_EQ(rm.tags[0].key, "nested/key");
    ASSERT_STR_EQ(rm.tags[0].value, "a\nb");
    ASSERT_EQ(rm.n_aliases, 2);
    ASSERT_STR_EQ(rm.aliases[0].alias, "champion");
    ASSERT_EQ(rm.aliases[0].version, 4);

    tally_model_version v;
    ASSERT_OK(tally_registry_get_version(s, "m", 4, a, &v, err, sizeof err));
    ASSERT_EQ(v.creation_time_ms, 400);
    ASSERT_EQ(v.last_updated_time_ms, 401);
    ASSERT_EQ(v.stage, TALLY_STAGE_PRODUCTION);
    ASSERT_STR_EQ(v.status, "PENDING_REGISTRATION");
    ASSERT_STR_EQ(v.run_id, "r4"); /* not in the run ledger: kept */
    ASSERT_STR_EQ(v.run_link, "http://x/r4");
    ASSERT_EQ(v.n_tags, 1);
    ASSERT_EQ(v.n_aliases, 1);
    ASSERT_OK(tally_registry_get_version(s, "m", 1, a, &v, err, sizeof err));
    ASSERT_EQ(v.last_updated_time_ms, 100); /* 0: the creation time */
    ASSERT_STR_EQ(v.status, "READY");
    ASSERT_STR_EQ(v.description, "");
    ASSERT_EQ(tally_registry_get_version(s, "m", 3, a, &v, err, sizeof err),
              TALLY_STORE_ENOTFOUND);
    ASSERT_EQ(tally_registry_get_version(s, "m", 2, a, &v, err, sizeof err),
              TALLY_STORE_ENOTFOUND);

    /* numbering continues after the highest imported number */
    tally_version_create vc = {.name = "m", .source = "s3://b/5"};
    ASSERT_OK(tally_registry_create_version(s, &vc, a, &v, err, sizeof err));
    ASSERT_EQ(v.version, 5);

    /* the ledger: a second call writes nothing, even after a delete */
    ASSERT_OK(tally_store_import_model(s, &m, &written, err, sizeof err));
    ASSERT_EQ(written, 0);
    ASSERT_OK(tally_registry_delete_model(s, "m", err, sizeof err));
    ASSERT_OK(tally_store_import_model(s, &m, &written, err, sizeof err));
    ASSERT_EQ(written, 0);
    ASSERT_EQ(tally_registry_get_model(s, "m", a, &rm, err, sizeof err), TALLY_STORE_ENOTFOUND);
    /* another source with that name is a new model */
    m.source = "mlruns:/other";
    ASSERT_OK(tally_store_import_model(s, &m, &written, err, sizeof err));
    ASSERT_EQ(written, 1);
    tally_arena_free(a);
    tally_store_close(s);
}

static void expect_refused(tally_store *s, tally_import_model *m, int code, const char *what)
{
    int written = -1;
    tally_arena *a = tally_arena_new();
    tally_registered_model rm;
    int rc = tally_store_import_model(s, m, &written, err, sizeof err);
    if (rc != code)
        fprintf(stderr, "%s: rc %d, err %s\n", what, rc, err);
    ASSERT_EQ(rc, code);
    ASSERT_EQ(written, 0);
    ASSERT(strstr(err, what) != NULL);
    if (code != TALLY_STORE_EEXISTS) /* nothing of it was written */
        ASSERT_EQ(tally_registry_get_model(s, m->name, a, &rm, err, sizeof err),
                  TALLY_STORE_ENOTFOUND);
    tally_arena_free(a);
}

static void test_refused(void)
{
    tally_store *s = open_fresh("regimp-refused");
    tally_import_model m = sample();
    tally_import_version twice[] = {sample_versions[0], sample_versions[0]};
    m.versions = twice;
    m.n_versions = 2;
    m.n_aliases = 0;
    expect_refused(s, &m, TALLY_STORE_EINVAL, "has version 4 twice");
    tally_import_version zero[] = {sample_versions[1]};
    zero[0].version = 0;
    m.versions = zero;
    m.n_versions = 1;
    expect_refused(s, &m, TALLY_STORE_EINVAL, "version number 0");
    m = sample();
    tally_model_alias to_deleted[] = {{"a", 3}};
    m.aliases = to_deleted;
    m.n_aliases = 1;
    expect_refused(s, &m, TALLY_STORE_EINVAL, "names version 3");
    tally_model_alias to_absent[] = {{"a", 9}};
    m.aliases = to_absent;
    expect_refused(s, &m, TALLY_STORE_EINVAL, "names version 9");
    m = sample();
    m.name = "";
    expect_refused(s, &m, TALLY_STORE_EINVAL, "empty name");
    tally_arena *a = tally_arena_new();
    tally_registered_model rm;
    ASSERT_OK(tally_registry_create_model(s, "taken", NULL, 0, NULL, NULL, a, &rm, err,
                                          sizeof err));
    m = sample();
    m.name = "taken";
    expect_refused(s, &m, TALLY_STORE_EEXISTS, "already exists in the destination");
    tally_arena_free(a);
    tally_store_close(s);
}

static void test_run_id_mapped(void)
{
    tally_store *s = open_fresh("regimp-runmap");
    tally_import_experiment e = {.source = "src", .source_id = "1", .name = "e"};
    int64_t exp_id;
    ASSERT_OK(tally_store_import_experiment(s, &e, &exp_id, NULL, err, sizeof err));
    tally_import_run r = {.source_run_id = "not-a-hex-run-id", .experiment_id = exp_id,
                          .status = 3, .start_time_ms = 1};
    tally_import_state state;
    char run_id[TALLY_RUN_ID_LEN + 1], uri[1024];
    ASSERT_OK(tally_store_import_run(s, &r, &state, run_id, uri, sizeof uri, err, sizeof err));
    ASSERT(strcmp(run_id, "not-a-hex-run-id") != 0); /* a fresh id */
    tally_import_version v = {.version = 1, .creation_time_ms = 1, .stage = TALLY_STAGE_NONE,
                              .source = "runs:/x/model", .run_id = "not-a-hex-run-id"};
    tally_import_model m = {.source = "src", .name = "mapped", .creation_time_ms = 1,
                            .versions = &v, .n_versions = 1};
    ASSERT_OK(tally_store_import_model(s, &m, NULL, err, sizeof err));
    tally_arena *a = tally_arena_new();
    tally_model_version got;
    ASSERT_OK(tally_registry_get_version(s, "mapped", 1, a, &got, err, sizeof err));
    ASSERT_STR_EQ(got.run_id, run_id);
    tally_arena_free(a);
    tally_store_close(s);
}

int main(void)
{
    TEST_RUN(test_whole_model);
    test_rmdir(dir);
    TEST_RUN(test_refused);
    test_rmdir(dir);
    TEST_RUN(test_run_id_mapped);
    test_rmdir(dir);
    return TEST_DONE();
}
