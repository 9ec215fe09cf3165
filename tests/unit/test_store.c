/*
 * test_store.c — the metadata store (server/store.h) on a temporary SQLite
 * file: migrations and reopen, every experiment and run operation with
 * MLflow's rules, write-once params, truncation, atomic log-batch, cascade
 * delete/restore, run-state cache coherence, search predicates, write
 * scopes (several calls in one transaction), and a few threads writing and
 * reading at once.
 */
#include <pthread.h>
#include <sqlite3.h>

#include "test.h"
#include "store.h"

static char dir[4096];
static char dbpath[4200];

static tally_store *open_fresh(const char *name)
{
    test_tmpdir(dir, sizeof dir, name);
    snprintf(dbpath, sizeof dbpath, "%s/meta.db", dir);
    tally_store *s = NULL;
    char err[512] = "";
    int rc = tally_store_open(dbpath, &s, err, sizeof err);
    if (rc != 0)
        fprintf(stderr, "open: %s\n", err);
    ASSERT_EQ(rc, 0);
    return s;
}

static int64_t mkexp(tally_store *s, const char *name)
{
    int64_t id = -1;
    char err[512];
    ASSERT_OK(tally_store_create_experiment(s, name, NULL, NULL, 0, &id, err, sizeof err));
    return id;
}

static void mkrun(tally_store *s, tally_arena *a, int64_t exp, const char *name, int64_t start,
                  tally_run *out)
{
    tally_run_create rq = {0};
    rq.experiment_id = exp;
    rq.run_name = name;
    rq.start_time_ms = start;
    rq.user_id = "ann";
    char err[512];
    int rc = tally_store_create_run(s, &rq, a, out, err, sizeof err);
    if (rc)
        fprintf(stderr, "create_run: %s\n", err);
    ASSERT_EQ(rc, 0);
}

static const char *find_kv(const tally_kv *kv, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(kv[i].key, key) == 0)
            return kv[i].value;
    return NULL;
}

static void test_migrations_idempotent(void)
{
    tally_store *s = open_fresh("store-mig");
    int v = 0;
    ASSERT_OK(tally_store_schema_version(s, &v));
    ASSERT_GE(v, 1);
    tally_arena *a = tally_arena_new();
    tally_experiment e;
    char err[512];
    ASSERT_OK(tally_store_get_experiment(s, 0, a, &e, err, sizeof err));
    ASSERT_STR_EQ(e.name, "Default");
    ASSERT_STR_EQ(e.artifact_location, "mlflow-artifacts:/0");
    ASSERT_EQ(e.lifecycle, TALLY_LIFECYCLE_ACTIVE);
    tally_store_close(s);
    /* Reopen twice: nothing is applied again, Default is still one row. */
    for (int i = 0; i < 2; i++) {
        ASSERT_OK(tally_store_open(dbpath, &s, err, sizeof err));
        int v2 = 0;
        ASSERT_OK(tally_store_schema_version(s, &v2));
        ASSERT_EQ(v2, v);
        tally_experiment *all;
        size_t n;
        ASSERT_OK(tally_store_list_experiments(s, TALLY_VIEW_ALL, a, &all, &n, err, sizeof err));
        ASSERT_EQ(n, 1);
        tally_store_close(s);
    }
    /* The version table has exactly one row per migration (numbers may
     * have gaps: they are reserved per area), the highest being v. */
    sqlite3 *db;
    ASSERT_EQ(sqlite3_open(dbpath, &db), SQLITE_OK);
    sqlite3_stmt *st;
    ASSERT_EQ(sqlite3_prepare_v2(db, "SELECT count(*) = count(DISTINCT version), max(version) "
                                     "FROM tally_schema_version", -1, &st, NULL),
              SQLITE_OK);
    ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
    ASSERT_EQ(sqlite3_column_int(st, 0), 1); /* numbers may have gaps (store_schema.c (5)) */
    ASSERT_EQ(sqlite3_column_int(st, 1), v);
    sqlite3_finalize(st);
    ASSERT_EQ(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
    ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
    ASSERT_STR_EQ((const char *)sqlite3_column_text(st, 0), "wal");
    sqlite3_finalize(st);
    /* A database from a newer Tally is refused. */
    ASSERT_EQ(sqlite3_exec(db, "INSERT INTO tally_schema_version VALUES (999, 'future', 0)", NULL,
                           NULL, NULL),
              SQLITE_OK);
    sqlite3_close(db);
    ASSERT_EQ(tally_store_open(dbpath, &s, err, sizeof err), TALLY_STORE_EIO);
    ASSERT(strstr(err, "newer") != NULL);
    tally_arena_free(a);
    test_rmdir(dir);
}

static void test_experiments(void)
{
    tally_store *s = open_fresh("store-exp");
    tally_arena *a = tally_arena_new();
    char err[512];
    tally_kv tags[] = {{"team", "vision"}, {"team", "nlp"}}; /* last wins */
    int64_t id;
    ASSERT_OK(tally_store_create_experiment(s, "exp-a", NULL, tags, 2, &id, err, sizeof err));
    ASSERT_EQ(id, 1);
    tally_experiment e;
    ASSERT_OK(tally_store_get_experiment(s, id, a, &e, err, sizeof err));
    ASSERT_STR_EQ(e.artifact_location, "mlflow-artifacts:/1");
    ASSERT_EQ(e.n_tags, 1);
    ASSERT_STR_EQ(e.tags[0].value, "nlp");
    ASSERT(e.creation_time_ms > 0 && e.creation_time_ms == e.last_update_time_ms);

    /* Duplicate names, bad names, bad locations. */
    ASSERT_EQ(tally_store_create_experiment(s, "exp-a", NULL, NULL, 0, NULL, err, sizeof err),
              TALLY_STORE_EEXISTS);
    ASSERT_EQ(tally_store_create_experiment(s, "", NULL, NULL, 0, NULL, err, sizeof err),
              TALLY_STORE_EINVAL);
    char longname[600];
    memset(longname, 'x', 501);
    longname[501] = 0;
    ASSERT_EQ(tally_store_create_experiment(s, longname, NULL, NULL, 0, NULL, err, sizeof err),
              TALLY_STORE_EINVAL);
    longname[500] = 0;
    ASSERT_OK(tally_store_create_experiment(s, longname, NULL, NULL, 0, NULL, err, sizeof err));
    ASSERT_EQ(tally_store_create_experiment(s, "f", "s3://b/x#frag", NULL, 0, NULL, err,
                                            sizeof err),
              TALLY_STORE_EINVAL);
    ASSERT_EQ(tally_store_create_experiment(s, "f", "s3://b/x?a=../..", NULL, 0, NULL, err,
                                            sizeof err),
              TALLY_STORE_EINVAL);
    ASSERT_EQ(tally_store_create_experiment(s, "f", "runs:/abc", NULL, 0, NULL, err, sizeof err),
              TALLY_STORE_EINVAL);
    int64_t id2;
    ASSERT_OK(tally_store_create_experiment(s, "custom", "s3://bucket/p", NULL, 0, &id2, err,
                                            sizeof err));
    ASSERT_OK(tally_store_get_experiment(s, id2, a, &e, err, sizeof err));
    ASSERT_STR_EQ(e.artifact_location, "s3://bucket/p");

    /* get-by-name; unknown. */
    ASSERT_OK(tally_store_get_experiment_by_name(s, "exp-a", a, &e, err, sizeof err));
    ASSERT_EQ(e.experiment_id, id);
    ASSERT_EQ(tally_store_get_experiment_by_name(s, "nope", a, &e, err, sizeof err),
              TALLY_STORE_ENOTFOUND);
    ASSERT_EQ(tally_store_get_experiment(s, 999, a, &e, err, sizeof err), TALLY_STORE_ENOTFOUND);

    /* Rename: conflict, same name, new name. */
    ASSERT_EQ(tally_store_rename_experiment(s, id, "custom", err, sizeof err),
              TALLY_STORE_ECONFLICT);
    ASSERT_OK(tally_store_rename_experiment(s, id, "exp-a", err, sizeof err));
    usleep(2000);
    ASSERT_OK(tally_store_rename_experiment(s, id, "exp-b", err, sizeof err));
    ASSERT_OK(tally_store_get_experiment(s, id, a, &e, err, sizeof err));
    ASSERT_STR_EQ(e.name, "exp-b");
    ASSERT(e.last_update_time_ms > e.creation_time_ms);
    int64_t lut = e.last_update_time_ms;

    /* Tags: set does not bump last_update_time; value limits; delete. */
    ASSERT_OK(tally_store_set_experiment_tag(s, id, "k", "v", err, sizeof err));
    ASSERT_EQ(tally_store_set_experiment_tag(s, id, "bad//key", "v", err, sizeof err),
              TALLY_STORE_EINVAL);
    char big[5100];
    memset(big, 'v', 5001);
    big[5001] = 0;
    ASSERT_EQ(tally_store_set_experiment_tag(s, id, "k2", big, err, sizeof err),
              TALLY_STORE_EINVAL);
    big[5000] = 0;
    ASSERT_OK(tally_store_set_experiment_tag(s, id, "k2", big, err, sizeof err));
    ASSERT_OK(tally_store_get_experiment(s, id, a, &e, err, sizeof err));
    ASSERT_EQ(e.last_update_time_ms, lut);
    ASSERT_STR_EQ(find_kv(e.tags, e.n_tags, "k"), "v");
    ASSERT_OK(tally_store_delete_experiment_tag(s, id, "k", err, sizeof err));
    ASSERT_EQ(tally_store_delete_experiment_tag(s, id, "k", err, sizeof err),
              TALLY_STORE_ENOTFOUND);
    ASSERT_EQ(tally_store_set_experiment_tag(s, 999, "k", "v", err, sizeof err),
              TALLY_STORE_ENOTFOUND);

    /* Delete: state rules; deleted names stay reserved; get still works. */
    ASSERT_OK(tally_store_delete_experiment(s, id, err, sizeof err));
    ASSERT_EQ(tally_store_delete_experiment(s, id, err, sizeof err), TALLY_STORE_ENOTFOUND);
    ASSERT_OK(tally_store_get_experiment_by_name(s, "exp-b", a, &e, err, sizeof err));
    ASSERT_EQ(e.lifecycle, TALLY_LIFECYCLE_DELETED);
    ASSERT_EQ(tally_store_create_experiment(s, "exp-b", NULL, NULL, 0, NULL, err, sizeof err),
              TALLY_STORE_EEXISTS);
    ASSERT_EQ(tally_store_rename_experiment(s, id, "zzz", err, sizeof err), TALLY_STORE_ESTATE);
    ASSERT_EQ(tally_store_set_experiment_tag(s, id, "k", "v", err, sizeof err),
              TALLY_STORE_ESTATE);
    ASSERT_EQ(tally_store_delete_experiment_tag(s, id, "k2", err, sizeof err),
              TALLY_STORE_ESTATE);
    tally_experiment *all;
    size_t n;
    ASSERT_OK(tally_store_list_experiments(s, TALLY_VIEW_ACTIVE_ONLY, a, &all, &n, err,
                                           sizeof err));
    ASSERT_EQ(n, 3); /* Default, long name, custom */
    ASSERT_OK(tally_store_list_experiments(s, TALLY_VIEW_DELETED_ONLY, a, &all, &n, err,
                                           sizeof err));
    ASSERT_EQ(n, 1);
    ASSERT_EQ(all[0].experiment_id, id);
    ASSERT_EQ(all[0].n_tags, 2); /* team, k2 */
    ASSERT_OK(tally_store_list_experiments(s, TALLY_VIEW_ALL, a, &all, &n, err, sizeof err));
    ASSERT_EQ(n, 4);
    /* Restore: only from deleted. */
    ASSERT_EQ(tally_store_restore_experiment(s, id2, err, sizeof err), TALLY_STORE_ENOTFOUND);
    ASSERT_OK(tally_store_restore_experiment(s, id, err, sizeof err));
    ASSERT_OK(tally_store_get_experiment(s, id, a, &e, err, sizeof err));
    ASSERT_EQ(e.lifecycle, TALLY_LIFECYCLE_ACTIVE);
    /* The default experiment may be deleted (SQL backend behaviour). */
    ASSERT_OK(tally_store_delete_experiment(s, 0, err, sizeof err));
    ASSERT_OK(tally_store_restore_experiment(s, 0, err, sizeof err));
    tally_arena_free(a);
    tally_store_close(s);
    test_rmdir(dir);
}

static void test_runs(void)
{
    tally_store *s = open_fresh("store-runs");
    tally_arena *a = tally_arena_new();
    char err[512];
    int64_t exp = mkexp(s, "e");
    tally_run r;
    mkrun(s, a, exp, "my-run", 123, &r);
    ASSERT_EQ(strlen(r.info.run_id), 32);
    ASSERT_EQ(r.info.run_id[12], '4'); /* uuid4 */
    ASSERT_STR_EQ(r.info.run_name, "my-run");
    ASSERT_EQ(r.info.status, TALLY_RUN_RUNNING);
    ASSERT_EQ(r.info.start_time_ms, 123);
    ASSERT_EQ(r.info.has_end_time, 0);
    ASSERT_STR_EQ(r.info.user_id, "ann");
    char uri[128];
    snprintf(uri, sizeof uri, "mlflow-artifacts:/%lld/%s/artifacts", (long long)exp,
             r.info.run_id);
    ASSERT_STR_EQ(r.info.artifact_uri, uri);
    ASSERT_STR_EQ(find_kv(r.tags, r.n_tags, "mlflow.runName"), "my-run");
    char id[33];
    memcpy(id, r.info.run_id, 33);

    /* Name rules: tag only; both differing; neither (random adjective-animal-N). */
    tally_kv tn[] = {{"mlflow.runName", "from-tag"}, {"x", "y"}};
    tally_run_create rq = {0};
    rq.experiment_id = exp;
    rq.tags = tn;
    rq.n_tags = 2;
    tally_run r2;
    ASSERT_OK(tally_store_create_run(s, &rq, a, &r2, err, sizeof err));
    ASSERT_STR_EQ(r2.info.run_name, "from-tag");
    ASSERT_STR_EQ(r2.info.user_id, "");
    ASSERT_EQ(r2.info.start_time_ms, 0);
    rq.run_name = "other";
    ASSERT_EQ(tally_store_create_run(s, &rq, a, &r2, err, sizeof err), TALLY_STORE_EINVAL);
    rq.run_name = "from-tag";
    ASSERT_OK(tally_store_create_run(s, &rq, a, &r2, err, sizeof err));
    rq.tags = NULL;
    rq.n_tags = 0;
    rq.run_name = NULL;
    ASSERT_OK(tally_store_create_run(s, &rq, a, &r2, err, sizeof err));
    const char *nm = r2.info.run_name;
    const char *d1 = strchr(nm, '-'), *d2 = d1 ? strchr(d1 + 1, '-') : NULL;
    ASSERT(d1 && d2 && d2[1] >= '0' && d2[1] <= '9');
    /* Bad tag key on create; unknown / deleted experiment. */
    tally_kv bad[] = {{"/abs", "v"}};
    rq.tags = bad;
    rq.n_tags = 1;
    ASSERT_EQ(tally_store_create_run(s, &rq, a, &r2, err, sizeof err), TALLY_STORE_EINVAL);
    rq.tags = NULL;
    rq.n_tags = 0;
    rq.experiment_id = 12345;
    ASSERT_EQ(tally_store_create_run(s, &rq, a, &r2, err, sizeof err), TALLY_STORE_ENOTFOUND);

    /* get; unknown. */
    ASSERT_OK(tally_store_get_run(s, id, a, &r2, err, sizeof err));
    ASSERT_STR_EQ(r2.info.run_name, "my-run");
    ASSERT_EQ(tally_store_get_run(s, "0123", a, &r2, err, sizeof err), TALLY_STORE_ENOTFOUND);

    /* update: only given fields; run_name rewrites the tag. */
    tally_run_info info;
    ASSERT_OK(tally_store_update_run(s, id, TALLY_RUN_FINISHED, 1, 999, NULL, a, &info, err,
                                     sizeof err));
    ASSERT_EQ(info.status, TALLY_RUN_FINISHED);
    ASSERT_EQ(info.has_end_time, 1);
    ASSERT_EQ(info.end_time_ms, 999);
    ASSERT_STR_EQ(info.run_name, "my-run");
    ASSERT_OK(tally_store_update_run(s, id, 0, 0, 0, "renamed", a, &info, err, sizeof err));
    ASSERT_EQ(info.status, TALLY_RUN_FINISHED);
    ASSERT_EQ(info.end_time_ms, 999);
    ASSERT_OK(tally_store_get_run(s, id, a, &r2, err, sizeof err));
    ASSERT_STR_EQ(r2.info.run_name, "renamed");
    ASSERT_STR_EQ(find_kv(r2.tags, r2.n_tags, "mlflow.runName"), "renamed");
    ASSERT_EQ(tally_store_update_run(s, "nope", 0, 0, 0, NULL, a, &info, err, sizeof err),
              TALLY_STORE_ENOTFOUND);

    /* set-tag mlflow.runName renames; delete-tag. */
    ASSERT_OK(tally_store_set_tag(s, id, "mlflow.runName", "via-tag", err, sizeof err));
    ASSERT_OK(tally_store_get_run(s, id, a, &r2, err, sizeof err));
    ASSERT_STR_EQ(r2.info.run_name, "via-tag");
    ASSERT_OK(tally_store_set_tag(s, id, "t", "1", err, sizeof err));
    ASSERT_OK(tally_store_set_tag(s, id, "t", "2", err, sizeof err));
    ASSERT_EQ(tally_store_set_tag(s, id, "a/../b", "2", err, sizeof err), TALLY_STORE_EINVAL);
    ASSERT_OK(tally_store_delete_tag(s, id, "t", err, sizeof err));
    ASSERT_EQ(tally_store_delete_tag(s, id, "t", err, sizeof err), TALLY_STORE_ENOTFOUND);

    /* Long values are truncated, in characters. */
    char *longv = malloc(20000);
    memset(longv, 'a', 9000);
    longv[9000] = 0;
    ASSERT_OK(tally_store_set_tag(s, id, "long", longv, err, sizeof err));
    ASSERT_OK(tally_store_log_param(s, id, "longp", longv, err, sizeof err));
    /* Same (over-long) value again: equal after truncation, so a no-op. */
    ASSERT_OK(tally_store_log_param(s, id, "longp", longv, err, sizeof err));
    /* 7000 two-byte characters truncate to 6000 characters = 12000 bytes. */
    for (int i = 0; i < 7000; i++) {
        longv[2 * i] = (char)0xc3;
        longv[2 * i + 1] = (char)0xa9;
    }
    longv[14000] = 0;
    ASSERT_OK(tally_store_log_param(s, id, "utf", longv, err, sizeof err));
    ASSERT_OK(tally_store_get_run(s, id, a, &r2, err, sizeof err));
    ASSERT_EQ(strlen(find_kv(r2.tags, r2.n_tags, "long")), 8000);
    ASSERT_EQ(strlen(find_kv(r2.params, r2.n_params, "longp")), 6000);
    ASSERT_EQ(strlen(find_kv(r2.params, r2.n_params, "utf")), 12000);
    free(longv);

    /* Params are write-once. */
    ASSERT_OK(tally_store_log_param(s, id, "lr", "0.1", err, sizeof err));
    ASSERT_OK(tally_store_log_param(s, id, "lr", "0.1", err, sizeof err));
    ASSERT_EQ(tally_store_log_param(s, id, "lr", "0.2", err, sizeof err), TALLY_STORE_EINVAL);
    ASSERT(strstr(err, "Changing param values is not allowed") != NULL);
    ASSERT_OK(tally_store_log_param(s, id, "empty", "", err, sizeof err));
    ASSERT_EQ(tally_store_log_param(s, id, "bad key!", "x", err, sizeof err), TALLY_STORE_EINVAL);
    ASSERT_EQ(tally_store_log_param(s, "nope", "k", "x", err, sizeof err), TALLY_STORE_ENOTFOUND);

    /* log-batch params/tags: atomic; duplicate keys; conflicts. */
    tally_kv bp[] = {{"b1", "x"}, {"lr", "0.9"}};
    tally_kv bt[] = {{"bt", "1"}};
    ASSERT_EQ(tally_store_log_batch_params_tags(s, id, bp, 2, bt, 1, err, sizeof err),
              TALLY_STORE_EINVAL);
    ASSERT_OK(tally_store_get_run(s, id, a, &r2, err, sizeof err));
    ASSERT(find_kv(r2.params, r2.n_params, "b1") == NULL); /* nothing written */
    ASSERT(find_kv(r2.tags, r2.n_tags, "bt") == NULL);
    tally_kv dup[] = {{"d", "1"}, {"d", "1"}};
    ASSERT_EQ(tally_store_log_batch_params_tags(s, id, dup, 2, NULL, 0, err, sizeof err),
              TALLY_STORE_EINVAL);
    ASSERT(strstr(err, "Duplicate parameter keys") != NULL);
    tally_kv bp2[] = {{"b1", "x"}, {"lr", "0.1"}};
    tally_kv bt2[] = {{"bt", "1"}, {"bt", "2"}, {"mlflow.runName", "batch-name"}};
    ASSERT_OK(tally_store_log_batch_params_tags(s, id, bp2, 2, bt2, 3, err, sizeof err));
    ASSERT_OK(tally_store_get_run(s, id, a, &r2, err, sizeof err));
    ASSERT_STR_EQ(find_kv(r2.params, r2.n_params, "b1"), "x");
    ASSERT_STR_EQ(find_kv(r2.tags, r2.n_tags, "bt"), "2");
    ASSERT_STR_EQ(r2.info.run_name, "batch-name");
    ASSERT_EQ(tally_store_log_batch_params_tags(s, "nope", NULL, 0, NULL, 0, err, sizeof err),
              TALLY_STORE_ENOTFOUND);

    /* log-inputs: dataset dedup, link once, tags only on first link. */
    tally_kv ctx1[] = {{"mlflow.data.context", "train"}};
    tally_kv ctx2[] = {{"mlflow.data.context", "eval"}};
    tally_dataset_input_req in = {{"ds", "abc", "local", "/tmp/x", NULL, NULL}, ctx1, 1};
    ASSERT_OK(tally_store_log_inputs(s, id, &in, 1, err, sizeof err));
    in.tags = ctx2;
    ASSERT_OK(tally_store_log_inputs(s, id, &in, 1, err, sizeof err));
    ASSERT_OK(tally_store_get_run(s, id, a, &r2, err, sizeof err));
    ASSERT_EQ(r2.n_inputs, 1);
    ASSERT_STR_EQ(r2.inputs[0].dataset.name, "ds");
    ASSERT_EQ(r2.inputs[0].n_tags, 1);
    ASSERT_STR_EQ(r2.inputs[0].tags[0].value, "train");

    /* delete / restore: idempotent; writes refused while deleted. */
    ASSERT_OK(tally_store_delete_run(s, id, err, sizeof err));
    ASSERT_OK(tally_store_delete_run(s, id, err, sizeof err));
    ASSERT_OK(tally_store_get_run(s, id, a, &r2, err, sizeof err));
    ASSERT_EQ(r2.info.lifecycle, TALLY_LIFECYCLE_DELETED);
    ASSERT(r2.info.deleted_time_ms > 0);
    ASSERT_EQ(tally_store_set_tag(s, id, "t", "1", err, sizeof err), TALLY_STORE_ESTATE);
    ASSERT_EQ(tally_store_log_param(s, id, "p", "1", err, sizeof err), TALLY_STORE_ESTATE);
    ASSERT_EQ(tally_store_delete_tag(s, id, "bt", err, sizeof err), TALLY_STORE_ESTATE);
    ASSERT_EQ(tally_store_update_run(s, id, 3, 0, 0, NULL, a, &info, err, sizeof err),
              TALLY_STORE_ESTATE);
    ASSERT_EQ(tally_store_log_batch_params_tags(s, id, NULL, 0, NULL, 0, err, sizeof err),
              TALLY_STORE_ESTATE);
    ASSERT_OK(tally_store_restore_run(s, id, err, sizeof err));
    ASSERT_OK(tally_store_restore_run(s, id, err, sizeof err));
    ASSERT_EQ(tally_store_delete_run(s, "nope", err, sizeof err), TALLY_STORE_ENOTFOUND);
    ASSERT_EQ(tally_store_restore_run(s, "nope", err, sizeof err), TALLY_STORE_ENOTFOUND);
    tally_arena_free(a);
    tally_store_close(s);
    test_rmdir(dir);
}

static void test_keys(void)
{
    char err[512];
    const char *good[] = {"a", "a.b", "a-b c", "a/b", "a:b", "x..y", "é", "a/.b"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        ASSERT_EQ(tally_store_check_key("param", good[i], err, sizeof err), 0);
    const char *bad[] = {"", ".", "..", "../a", "..a", "/a", "a/", "a//b", "a/./b", "a/../b",
                         "a/.", "a$b", "a\tb", "a\\b"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        ASSERT_EQ(tally_store_check_key("param", bad[i], err, sizeof err), TALLY_STORE_EINVAL);
    char k[300];
    memset(k, 'k', 251);
    k[251] = 0;
    ASSERT_EQ(tally_store_check_key("param", k, err, sizeof err), TALLY_STORE_EINVAL);
    k[250] = 0;
    ASSERT_EQ(tally_store_check_key("param", k, err, sizeof err), 0);
    ASSERT_EQ(tally_utf8_truncate("héllo", 2), 3);
    ASSERT_EQ(tally_utf8_chars("héllo"), 5);
}

static void test_cascade_and_cache(void)
{
    tally_store *s = open_fresh("store-cascade");
    tally_arena *a = tally_arena_new();
    char err[512];
    int64_t exp = mkexp(s, "e");
    tally_run r1, r2;
    mkrun(s, a, exp, "r1", 1, &r1);
    mkrun(s, a, exp, "r2", 2, &r2);
    tally_run_state st;
    ASSERT_OK(tally_store_run_state(s, r1.info.run_id, &st));
    ASSERT(st.exists && st.active && st.experiment_id == exp);
    ASSERT_OK(tally_store_run_state(s, "ffffffffffffffffffffffffffffffff", &st));
    ASSERT_EQ(st.exists, 0);
    ASSERT_OK(tally_store_run_state(s, "short", &st));
    ASSERT_EQ(st.exists, 0);

    /* r2 deleted individually, then the experiment: both deleted. */
    ASSERT_OK(tally_store_delete_run(s, r2.info.run_id, err, sizeof err));
    ASSERT_OK(tally_store_run_state(s, r2.info.run_id, &st));
    ASSERT(st.exists && !st.active);
    ASSERT_OK(tally_store_delete_experiment(s, exp, err, sizeof err));
    ASSERT_OK(tally_store_run_state(s, r1.info.run_id, &st));
    ASSERT(st.exists && !st.active);
    tally_run g;
    ASSERT_OK(tally_store_get_run(s, r1.info.run_id, a, &g, err, sizeof err));
    ASSERT_EQ(g.info.lifecycle, TALLY_LIFECYCLE_DELETED);
    /* Creating a run in a deleted experiment. */
    tally_run_create rq = {0};
    rq.experiment_id = exp;
    ASSERT_EQ(tally_store_create_run(s, &rq, a, &g, err, sizeof err), TALLY_STORE_ESTATE);
    /* Restore re-activates every run, including r2 deleted on its own. */
    ASSERT_OK(tally_store_restore_experiment(s, exp, err, sizeof err));
    ASSERT_OK(tally_store_run_state(s, r1.info.run_id, &st));
    ASSERT(st.active);
    ASSERT_OK(tally_store_run_state(s, r2.info.run_id, &st));
    ASSERT(st.active);
    ASSERT_OK(tally_store_get_run(s, r2.info.run_id, a, &g, err, sizeof err));
    ASSERT_EQ(g.info.lifecycle, TALLY_LIFECYCLE_ACTIVE);

    /* A second store on the same file sees what the first committed (the
     * cache of a fresh store fills from the database). */
    tally_store *s2;
    ASSERT_OK(tally_store_open(dbpath, &s2, err, sizeof err));
    ASSERT_OK(tally_store_delete_run(s, r1.info.run_id, err, sizeof err));
    ASSERT_OK(tally_store_run_state(s2, r1.info.run_id, &st));
    ASSERT(st.exists && !st.active);
    tally_store_close(s2);
    tally_arena_free(a);
    tally_store_close(s);
    test_rmdir(dir);
}

static size_t search(tally_store *s, tally_arena *a, int64_t exp, tally_view_type view,
                     const tally_store_pred *preds, size_t n, tally_run_row **rows)
{
    tally_run_query q = {0};
    q.experiment_ids = &exp;
    q.n_experiment_ids = 1;
    q.view = view;
    q.preds = preds;
    q.n_preds = n;
    size_t nr = 0;
    char err[512];
    int rc = tally_store_search_runs(s, &q, a, rows, &nr, err, sizeof err);
    if (rc)
        fprintf(stderr, "search: %s\n", err);
    ASSERT_EQ(rc, 0);
    return nr;
}

static void test_search(void)
{
    tally_store *s = open_fresh("store-search");
    tally_arena *a = tally_arena_new();
    char err[512];
    int64_t exp = mkexp(s, "e");
    tally_run r[4];
    const char *names[] = {"alpha", "Beta", "gamma_1", "del"};
    for (int i = 0; i < 4; i++)
        mkrun(s, a, exp, names[i], 100 * (i + 1), &r[i]);
    ASSERT_OK(tally_store_log_param(s, r[0].info.run_id, "opt", "adam", err, sizeof err));
    ASSERT_OK(tally_store_log_param(s, r[1].info.run_id, "opt", "Adagrad", err, sizeof err));
    ASSERT_OK(tally_store_log_param(s, r[2].info.run_id, "opt", "sgd*[x]?", err, sizeof err));
    ASSERT_OK(tally_store_set_tag(s, r[0].info.run_id, "k with space", "v", err, sizeof err));
    tally_run_info info;
    ASSERT_OK(tally_store_update_run(s, r[1].info.run_id, TALLY_RUN_FINISHED, 1, 500, NULL, a,
                                     &info, err, sizeof err));
    ASSERT_OK(tally_store_delete_run(s, r[3].info.run_id, err, sizeof err));

    tally_run_row *rows;
    ASSERT_EQ(search(s, a, exp, TALLY_VIEW_ACTIVE_ONLY, NULL, 0, &rows), 3);
    ASSERT_EQ(search(s, a, exp, TALLY_VIEW_DELETED_ONLY, NULL, 0, &rows), 1);
    ASSERT_EQ(search(s, a, exp, TALLY_VIEW_ALL, NULL, 0, &rows), 4);

    tally_store_pred p = {0};
    p.entity = TALLY_PRED_PARAM;
    p.key = "opt";
    p.op = TALLY_OP_EQ;
    p.str = "adam";
    ASSERT_EQ(search(s, a, exp, TALLY_VIEW_ALL, &p, 1, &rows), 1);
    ASSERT_STR_EQ(rows[0].info.run_id, r[0].info.run_id);
    p.op = TALLY_OP_NE; /* runs lacking the param never match */
    ASSERT_EQ(search(s, a, exp, TALLY_VIEW_ALL, &p, 1, &rows), 2);
    p.op = TALLY_OP_LIKE;
    p.str = "ada%";
    ASSERT_EQ(search(s, a, exp, TALLY_VIEW_ALL, &p, 1, &rows), 1);
    p.op = TALLY_OP_ILIKE;
    ASSERT_EQ(search(s, a, exp, TALLY_VIEW_ALL, &p, 1, &rows), 2);
    p.op = TALLY_OP_LIKE; /* GLOB metacharacters are literal */
    p.str = "sgd*[x]?";
    ASSERT_EQ(search(s, a, exp, TALLY_VIEW_ALL, &p, 1, &rows), 1);
    p.str = "s_d%";
    ASSERT_EQ(search(s, a, exp, TALLY_VIEW_ALL, &p, 1, &rows), 1);
    p.str = "sgd";
    ASSERT_EQ(search(s, a, exp, TALLY_VIEW_ALL, &p, 1, &rows), 0);

    tally_store_pred t = {0};
    t.entity = TALLY_PRED_TAG;
    t.key = "k with space";
    t.op = TALLY_OP_EQ;
    t.str = "v";
    ASSERT_EQ(search(s, a, exp, TALLY_VIEW_ALL, &t, 1, &rows), 1);

    tally_store_pred at = {0};
    at.entity = TALLY_PRED_ATTR;
    at.key = "run_name";
    at.op = TALLY_OP_ILIKE;
    at.str = "beta";
    ASSERT_EQ(search(s, a, exp, TALLY_VIEW_ALL, &at, 1, &rows), 1);
    at.key = "status";
    at.op = TALLY_OP_EQ;
    at.str = "FINISHED";
    ASSERT_EQ(search(s, a, exp, TALLY_VIEW_ALL, &at, 1, &rows), 1);
    at.key = "start_time";
    at.numeric = 1;
    at.op = TALLY_OP_GE;
    at.num = 200;
    ASSERT_EQ(search(s, a, exp, TALLY_VIEW_ALL, &at, 1, &rows), 3);
    at.key = "end_time"; /* null end_time never matches, not even != */
    at.op = TALLY_OP_NE;
    at.num = 1;
    ASSERT_EQ(search(s, a, exp, TALLY_VIEW_ALL, &at, 1, &rows), 1);
    const char *ids[] = {r[0].info.run_id, r[2].info.run_id};
    tally_store_pred in = {0};
    in.entity = TALLY_PRED_ATTR;
    in.key = "run_id";
    in.op = TALLY_OP_IN;
    in.list = ids;
    in.n_list = 2;
    ASSERT_EQ(search(s, a, exp, TALLY_VIEW_ALL, &in, 1, &rows), 2);
    in.op = TALLY_OP_NOT_IN;
    ASSERT_EQ(search(s, a, exp, TALLY_VIEW_ALL, &in, 1, &rows), 2);
    in.n_list = 0;
    in.op = TALLY_OP_IN;
    ASSERT_EQ(search(s, a, exp, TALLY_VIEW_ALL, &in, 1, &rows), 0);
    tally_store_pred two[2] = {p, t};
    two[0].op = TALLY_OP_EQ;
    two[0].str = "adam";
    ASSERT_EQ(search(s, a, exp, TALLY_VIEW_ALL, two, 2, &rows), 1);
    tally_store_pred badattr = {0};
    badattr.entity = TALLY_PRED_ATTR;
    badattr.key = "nope";
    tally_run_query q = {0};
    q.experiment_ids = &exp;
    q.n_experiment_ids = 1;
    q.view = TALLY_VIEW_ALL;
    q.preds = &badattr;
    q.n_preds = 1;
    size_t nr;
    ASSERT_EQ(tally_store_search_runs(s, &q, a, &rows, &nr, err, sizeof err), TALLY_STORE_EINVAL);

    /* Values for ordering; page data. */
    const char *pk[] = {"opt", "missing"};
    const char *tk[] = {"mlflow.runName"};
    q.preds = NULL;
    q.n_preds = 0;
    q.param_keys = pk;
    q.n_param_keys = 2;
    q.tag_keys = tk;
    q.n_tag_keys = 1;
    ASSERT_OK(tally_store_search_runs(s, &q, a, &rows, &nr, err, sizeof err));
    ASSERT_EQ(nr, 4);
    for (size_t i = 0; i < nr; i++) {
        ASSERT(rows[i].param_vals[1] == NULL);
        ASSERT_STR_EQ(rows[i].tag_vals[0], rows[i].info.run_name);
        if (strcmp(rows[i].info.run_id, r[0].info.run_id) == 0)
            ASSERT_STR_EQ(rows[i].param_vals[0], "adam");
    }
    tally_run_info infos[2] = {rows[0].info, rows[1].info};
    tally_run page[2];
    ASSERT_OK(tally_store_runs_data(s, infos, 2, a, page, err, sizeof err));
    ASSERT(page[0].n_tags >= 1);

    /* Dataset predicates. */
    tally_kv ctx[] = {{"mlflow.data.context", "train"}};
    tally_dataset_input_req din = {{"mnist", "d1", "local", "/x", NULL, NULL}, ctx, 1};
    ASSERT_OK(tally_store_log_inputs(s, r[1].info.run_id, &din, 1, err, sizeof err));
    tally_store_pred dp = {0};
    dp.entity = TALLY_PRED_DATASET;
    dp.key = "context";
    dp.op = TALLY_OP_EQ;
    dp.str = "train";
    ASSERT_EQ(search(s, a, exp, TALLY_VIEW_ALL, &dp, 1, &rows), 1);
    dp.key = "name";
    dp.op = TALLY_OP_LIKE;
    dp.str = "mn%";
    ASSERT_EQ(search(s, a, exp, TALLY_VIEW_ALL, &dp, 1, &rows), 1);
    tally_arena_free(a);
    tally_store_close(s);
    test_rmdir(dir);
}

typedef struct worker_arg {
    tally_store *s;
    int64_t exp;
    int idx;
    int failures;
} worker_arg;

static void *worker(void *p)
{
    worker_arg *w = p;
    tally_arena *a = tally_arena_new();
    char err[512];
    for (int i = 0; i < 40; i++) {
        tally_run_create rq = {0};
        rq.experiment_id = w->exp;
        tally_run r;
        if (tally_store_create_run(w->s, &rq, a, &r, err, sizeof err) != 0) {
            w->failures++;
            continue;
        }
        char key[32];
        snprintf(key, sizeof key, "p%d", w->idx);
        if (tally_store_log_param(w->s, r.info.run_id, key, "v", err, sizeof err) != 0)
            w->failures++;
        tally_run_state st;
        if (tally_store_run_state(w->s, r.info.run_id, &st) != 0 || !st.exists || !st.active)
            w->failures++;
        if (i % 5 == 0) {
            if (tally_store_delete_run(w->s, r.info.run_id, err, sizeof err) != 0)
                w->failures++;
            if (tally_store_run_state(w->s, r.info.run_id, &st) != 0 || st.active)
                w->failures++;
        }
        tally_run g;
        if (tally_store_get_run(w->s, r.info.run_id, a, &g, err, sizeof err) != 0)
            w->failures++;
    }
    tally_arena_free(a);
    return NULL;
}

static void test_concurrency(void)
{
    tally_store *s = open_fresh("store-threads");
    int64_t exp = mkexp(s, "e");
    enum { N = 6 };
    pthread_t th[N];
    worker_arg args[N];
    for (int i = 0; i < N; i++) {
        args[i] = (worker_arg){s, exp, i, 0};
        ASSERT_EQ(pthread_create(&th[i], NULL, worker, &args[i]), 0);
    }
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        ASSERT_EQ(args[i].failures, 0);
    }
    tally_arena *a = tally_arena_new();
    tally_run_row *rows;
    ASSERT_EQ(search(s, a, exp, TALLY_VIEW_ALL, NULL, 0, &rows), N * 40);
    ASSERT_EQ(search(s, a, exp, TALLY_VIEW_DELETED_ONLY, NULL, 0, &rows), N * 8);
    tally_arena_free(a);
    tally_store_close(s);
    test_rmdir(dir);
}

/* Write scopes: a failing call inside undoes only itself, reads inside see
 * the scope's writes, other threads see nothing until the commit and their
 * writes wait for it; a rolled-back scope leaves nothing. */
typedef struct scope_peer {
    tally_store *s;
    int seen_before_commit;   /* another thread's read found "in-scope" */
    int64_t id;               /* its write's experiment id */
} scope_peer;

static void *scope_reader(void *arg)
{
    scope_peer *p = arg;
    tally_arena *a = tally_arena_new();
    tally_experiment e;
    char err[512];
    p->seen_before_commit =
        tally_store_get_experiment_by_name(p->s, "in-scope", a, &e, err, sizeof err) == 0;
    tally_arena_free(a);
    return NULL;
}

static void *scope_writer(void *arg)
{
    scope_peer *p = arg;
    char err[512];
    ASSERT_OK(tally_store_create_experiment(p->s, "from-peer", NULL, NULL, 0, &p->id, err,
                                            sizeof err));
    return NULL;
}

static void test_scope(void)
{
    tally_store *s = open_fresh("store-scope");
    tally_arena *a = tally_arena_new();
    tally_experiment e;
    char err[512];
    int64_t id, dup;
    ASSERT_OK(tally_store_scope_begin(s, err, sizeof err));
    ASSERT_EQ(tally_store_scope_begin(s, err, sizeof err), TALLY_STORE_EINVAL);
    ASSERT_OK(tally_store_create_experiment(s, "in-scope", NULL, NULL, 0, &id, err, sizeof err));
    ASSERT_EQ(tally_store_create_experiment(s, "in-scope", NULL, NULL, 0, &dup, err, sizeof err),
              TALLY_STORE_EEXISTS);
    ASSERT_OK(tally_store_get_experiment_by_name(s, "in-scope", a, &e, err, sizeof err));
    ASSERT_EQ(e.experiment_id, id);
    scope_peer peer = {s, 0, 0};
    pthread_t th;
    ASSERT_EQ(pthread_create(&th, NULL, scope_reader, &peer), 0);
    pthread_join(th, NULL);
    ASSERT_EQ(peer.seen_before_commit, 0);
    ASSERT_EQ(pthread_create(&th, NULL, scope_writer, &peer), 0);
    ASSERT_OK(tally_store_create_experiment(s, "second", NULL, NULL, 0, &dup, err, sizeof err));
    ASSERT_OK(tally_store_scope_end(s, 1, err, sizeof err));
    pthread_join(th, NULL);
    ASSERT(peer.id > dup); /* the peer's write waited for the commit */
    ASSERT_OK(tally_store_get_experiment_by_name(s, "in-scope", a, &e, err, sizeof err));
    ASSERT_OK(tally_store_get_experiment_by_name(s, "second", a, &e, err, sizeof err));
    ASSERT_EQ(tally_store_scope_end(s, 1, err, sizeof err), TALLY_STORE_EINVAL);

    /* Rolled back: neither write stays, and the store works on. */
    ASSERT_OK(tally_store_scope_begin(s, err, sizeof err));
    ASSERT_OK(tally_store_create_experiment(s, "undone", NULL, NULL, 0, &id, err, sizeof err));
    ASSERT_OK(tally_store_rename_experiment(s, id, "undone-2", err, sizeof err));
    ASSERT_OK(tally_store_scope_end(s, 0, err, sizeof err));
    ASSERT_EQ(tally_store_get_experiment_by_name(s, "undone", a, &e, err, sizeof err),
              TALLY_STORE_ENOTFOUND);
    ASSERT_EQ(tally_store_get_experiment_by_name(s, "undone-2", a, &e, err, sizeof err),
              TALLY_STORE_ENOTFOUND);
    ASSERT_OK(tally_store_create_experiment(s, "undone", NULL, NULL, 0, &id, err, sizeof err));

    /* The run-state cache across scopes: filled first, then a deletion
     * rolled back must leave the run active, a committed one deleted; the
     * scope's own read sees its deletion. */
    tally_run r;
    mkrun(s, a, id, "cached", 1, &r);
    tally_run_state rs;
    ASSERT_OK(tally_store_run_state(s, r.info.run_id, &rs));
    ASSERT(rs.exists && rs.active);
    for (int commit = 0; commit <= 1; commit++) {
        ASSERT_OK(tally_store_scope_begin(s, err, sizeof err));
        ASSERT_OK(tally_store_delete_run(s, r.info.run_id, err, sizeof err));
        ASSERT_OK(tally_store_run_state(s, r.info.run_id, &rs));
        ASSERT(rs.exists && !rs.active);
        ASSERT_OK(tally_store_scope_end(s, commit, err, sizeof err));
        ASSERT_OK(tally_store_run_state(s, r.info.run_id, &rs));
        ASSERT(rs.exists);
        ASSERT_EQ(rs.active, !commit);
        ASSERT_OK(tally_store_run_state(s, r.info.run_id, &rs)); /* cached now */
        ASSERT_EQ(rs.active, !commit);
    }
    tally_arena_free(a);
    tally_store_close(s);
    test_rmdir(dir);
}

int main(void)
{
    TEST_RUN(test_migrations_idempotent);
    TEST_RUN(test_keys);
    TEST_RUN(test_experiments);
    TEST_RUN(test_runs);
    TEST_RUN(test_cascade_and_cache);
    TEST_RUN(test_search);
    TEST_RUN(test_scope);
    TEST_RUN(test_concurrency);
    return TEST_DONE();
}
