/*
 * cmd_verify.c — `tally verify DIR`: checks a whole data directory and
 * prints each problem with where it is; exit 1 if there is any.
 *
 *   1. the metric engine (<data>/metrics, or DIR itself when it is an engine
 *      directory): every checksum of the checkpoint, WAL and every block, and
 *      bytes in segments no block covers (orphaned blocks) — tally_verify();
 *   2. the metadata store (<data>/meta.db): SQLite's integrity_check and
 *      foreign_key_check;
 *   3. across them: series whose run is not in the store (orphaned metric
 *      data, e.g. left by an interrupted delete) and artifact directories
 *      <data>/artifacts/<experiment>/<run> whose run is not in the store.
 * Artifact file contents carry no checksum in Tally, so they are not
 * checked beyond being readable directories. The directory must not be
 * served meanwhile (the engine's lock says so).
 */
#include <dirent.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "commands.h"
#include "progress.h"
#include "tally/engine.h"

static const char usage_text[] =
    "usage: tally verify DIR [--quiet]\n"
    "\n"
    "Checks a data directory (or a metric engine directory): every checksum of\n"
    "the metric engine (checkpoint, WAL, blocks) and orphaned bytes in its\n"
    "segments, SQLite's integrity and foreign-key checks of meta.db, metric\n"
    "series and artifact directories whose run does not exist. Prints one line\n"
    "per problem (file @offset: what) and exits 1 if there is any, 0 if none,\n"
    "2 on a usage error. Stop the server first.\n";

typedef struct verify_ctx {
    uint64_t n;             /* problems found */
    const char *prefix;     /* "metrics/" for the engine's files in a data directory */
    const char *engine_dir; /* the engine's directory, cut from the paths it reports */
} verify_ctx;

static void print_problem(void *ctx, const char *file, uint64_t offset, const char *message)
{
    verify_ctx *v = ctx;
    size_t l = strlen(v->engine_dir);
    if (strncmp(file, v->engine_dir, l) == 0 && file[l] == '/')
        file += l + 1; /* seg/00000001.seg, relative to the directory given */
    printf("%s%s @%" PRIu64 ": %s\n", v->prefix, file, offset, message);
    fflush(stdout);
}

static void progress_cb(void *ctx, uint64_t done, uint64_t total)
{
    (void)total;
    tally_progress_add(ctx, done);
}

static int is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static int is_file(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* SQLite's own checks of meta.db; problems counted into v. 0 or 1 (could
 * not run them). */
static int check_store(const char *path, sqlite3 **db_out, verify_ctx *v)
{
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        printf("meta.db @0: cannot open: %s\n", db ? sqlite3_errmsg(db) : "out of memory");
        v->n++;
        sqlite3_close(db);
        return 0;
    }
    sqlite3_busy_timeout(db, 10000);
    const char *checks[2] = {"PRAGMA integrity_check", "PRAGMA foreign_key_check"};
    for (int i = 0; i < 2; i++) {
        sqlite3_stmt *st;
        if (sqlite3_prepare_v2(db, checks[i], -1, &st, NULL) != SQLITE_OK) {
            printf("meta.db @0: %s: %s\n", checks[i], sqlite3_errmsg(db));
            v->n++;
            continue;
        }
        int r;
        while ((r = sqlite3_step(st)) == SQLITE_ROW) {
            if (i == 0) {
                const char *msg = (const char *)sqlite3_column_text(st, 0);
                if (msg && strcmp(msg, "ok") == 0)
                    continue;
                printf("meta.db @0: integrity: %s\n", msg ? msg : "?");
            } else {
                printf("meta.db @0: foreign key: table %s row %lld refers to a missing %s row\n",
                       sqlite3_column_text(st, 0), (long long)sqlite3_column_int64(st, 1),
                       sqlite3_column_text(st, 2));
            }
            v->n++;
        }
        if (r != SQLITE_DONE) {
            printf("meta.db @0: %s: %s\n", checks[i], sqlite3_errmsg(db));
            v->n++;
        }
        sqlite3_finalize(st);
    }
    *db_out = db;
    return 0;
}

static int run_exists(sqlite3_stmt *q, const char *run_id, size_t len)
{
    sqlite3_bind_text(q, 1, run_id, (int)len, SQLITE_TRANSIENT);
    int found = sqlite3_step(q) == SQLITE_ROW;
    sqlite3_reset(q);
    return found;
}

/* Series whose run the store does not know. */
static int check_series(const char *metrics, sqlite3 *db, verify_ctx *v, int quiet)
{
    tally_engine_options o;
    tally_engine_options_init(&o);
    o.read_only = 1;
    tally_engine *e;
    int rc = tally_engine_open(metrics, &o, &e);
    if (rc) {
        fprintf(stderr, "tally verify: %s: %s\n", metrics, tally_strerror(rc));
        return 1;
    }
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(db, "SELECT 1 FROM runs WHERE run_uuid = ?", -1, &q, NULL) !=
        SQLITE_OK) {
        tally_engine_close(e);
        return 0; /* no runs table: integrity_check said what is wrong */
    }
    size_t total = 0;
    tally_engine_series_all(e, NULL, 0, &total);
    tally_series_id *ids = total ? malloc(total * sizeof *ids) : NULL;
    if (total && !ids) {
        sqlite3_finalize(q);
        tally_engine_close(e);
        fprintf(stderr, "tally verify: out of memory\n");
        return 1;
    }
    size_t got = 0;
    if (total)
        tally_engine_series_all(e, ids, total, &got);
    if (got > total)
        got = total;
    tally_progress pr;
    tally_progress_start(&pr, "verify series vs runs", "series", got, quiet);
    for (size_t i = 0; i < got; i++) {
        tally_series_info si;
        if (tally_engine_series_info(e, ids[i], &si) == 0 &&
            !run_exists(q, si.run_id, si.run_id_len)) {
            printf("metrics/ series %016" PRIx64 ": run %.*s, metric '%.*s' (%" PRIu64
                   " points): orphaned, the run does not exist\n",
                   ids[i], (int)si.run_id_len, si.run_id, (int)si.key_len, si.key, si.n_points);
            v->n++;
        }
        tally_progress_add(&pr, 1);
    }
    tally_progress_finish(&pr);
    free(ids);
    sqlite3_finalize(q);
    tally_engine_close(e);
    return 0;
}

/* artifacts/<exp>/<run> directories whose run does not exist. */
static void check_artifacts(const char *root, sqlite3 *db, verify_ctx *v)
{
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(db, "SELECT 1 FROM runs WHERE run_uuid = ?", -1, &q, NULL) !=
        SQLITE_OK)
        return;
    DIR *d = opendir(root);
    if (!d) {
        sqlite3_finalize(q);
        return;
    }
    struct dirent *de;
    char path[4096];
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        if (snprintf(path, sizeof path, "%s/%s", root, de->d_name) >= (int)sizeof path)
            continue;
        DIR *e = opendir(path);
        if (!e)
            continue;
        struct dirent *re;
        while ((re = readdir(e)) != NULL) {
            size_t len = strlen(re->d_name);
            if (len != 32 || strspn(re->d_name, "0123456789abcdef") != 32)
                continue; /* not a run directory (e.g. an experiment-level artifact) */
            if (!run_exists(q, re->d_name, len)) {
                printf("artifacts/%s/%s @0: orphaned artifact directory, the run does not "
                       "exist\n",
                       de->d_name, re->d_name);
                v->n++;
            }
        }
        closedir(e);
    }
    closedir(d);
    sqlite3_finalize(q);
}

int cmd_verify(int argc, char **argv)
{
    const char *dir = NULL;
    int quiet = 0;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(usage_text, stdout);
            return 0;
        } else if (strcmp(argv[i], "--quiet") == 0 || strcmp(argv[i], "-q") == 0) {
            quiet = 1;
        } else if (!dir && argv[i][0] != '-') {
            dir = argv[i];
        } else {
            fputs(usage_text, stderr);
            return 2;
        }
    }
    if (!dir) {
        fputs(usage_text, stderr);
        return 2;
    }
    char metrics[4096], meta[4096], arts[4096];
    snprintf(metrics, sizeof metrics, "%s/metrics", dir);
    snprintf(meta, sizeof meta, "%s/meta.db", dir);
    snprintf(arts, sizeof arts, "%s/artifacts", dir);
    int whole = is_dir(metrics) || is_file(meta);
    if (!is_dir(dir)) {
        fprintf(stderr, "tally verify: %s: not a directory\n", dir);
        return 1;
    }
    const char *engine_dir = whole ? metrics : dir;
    verify_ctx v = {0, whole ? "metrics/" : "", engine_dir};
    if (!whole || is_dir(metrics)) {
        /* the block count, for the progress bar: a read-only open is cheap */
        uint64_t total_blocks = 0;
        tally_engine_options o;
        tally_engine_options_init(&o);
        o.read_only = 1;
        tally_engine *e;
        if (tally_engine_open(engine_dir, &o, &e) == 0) {
            tally_engine_stats es;
            tally_engine_stats_get(e, &es);
            total_blocks = es.n_blocks;
            tally_engine_close(e);
        }
        tally_progress pr;
        tally_progress_start(&pr, "verify blocks", "blocks", total_blocks, quiet);
        int rc = tally_verify_progress(engine_dir, print_problem, &v, progress_cb, &pr, &v.n);
        tally_progress_finish(&pr);
        if (rc) {
            fprintf(stderr, "tally verify: %s: %s%s\n", engine_dir, tally_strerror(rc),
                    rc == TALLY_ELOCKED ? " (a server is running on it: stop it first)" : "");
            return 1;
        }
    }
    if (whole) {
        sqlite3 *db = NULL;
        uint64_t before = v.n;
        if (is_file(meta))
            check_store(meta, &db, &v);
        else {
            printf("meta.db @0: missing\n");
            v.n++;
        }
        if (db && v.n == before) { /* cross-checks only on a sound store */
            if (is_dir(metrics) && check_series(metrics, db, &v, quiet) != 0) {
                sqlite3_close(db);
                return 1;
            }
            check_artifacts(arts, db, &v);
        }
        sqlite3_close(db);
    }
    printf("%" PRIu64 " problem%s\n", v.n, v.n == 1 ? "" : "s");
    return v.n ? 1 : 0;
}
