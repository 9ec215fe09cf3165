/*
 * cmd_stat.c — `tally stat DIR`: what a data directory holds: experiments,
 * runs, params and tags (meta.db), series, points, blocks, bytes per point,
 * segment and WAL sizes (metrics/), artifact files and bytes, the import
 * ledger. DIR may also be a bare metric engine directory (then only the
 * engine part). Opens everything read-only; the directory must not be
 * served meanwhile (the engine's lock says so).
 */
#include <dirent.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "commands.h"
#include "fsutil.h"
#include "tally/engine.h"

static const char usage_text[] =
    "usage: tally stat DIR\n"
    "\n"
    "Prints what a data directory (or a metric engine directory) holds. Stop the\n"
    "server first. Exit status: 0, 1 if it cannot be read, 2 usage error.\n";

static int is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Bytes and count of the regular files in dir whose name ends in suffix. */
static uint64_t files_bytes(const char *dir, const char *suffix, uint64_t *count)
{
    DIR *d = opendir(dir);
    uint64_t total = 0;
    *count = 0;
    if (!d)
        return 0;
    struct dirent *de;
    char path[4096];
    size_t sl = strlen(suffix);
    while ((de = readdir(d)) != NULL) {
        size_t l = strlen(de->d_name);
        if (l < sl || strcmp(de->d_name + l - sl, suffix) != 0)
            continue;
        if (snprintf(path, sizeof path, "%s/%s", dir, de->d_name) >= (int)sizeof path)
            continue;
        struct stat st;
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
            total += (uint64_t)st.st_size;
            (*count)++;
        }
    }
    closedir(d);
    return total;
}

static uint64_t count_files(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return 0;
    if (S_ISREG(st.st_mode))
        return 1;
    if (!S_ISDIR(st.st_mode))
        return 0;
    DIR *d = opendir(path);
    if (!d)
        return 0;
    uint64_t n = 0;
    struct dirent *de;
    char sub[4096];
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (snprintf(sub, sizeof sub, "%s/%s", path, de->d_name) < (int)sizeof sub)
            n += count_files(sub);
    }
    closedir(d);
    return n;
}

static long long scalar(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st;
    long long v = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static int stat_store(const char *path)
{
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        fprintf(stderr, "tally stat: %s: %s\n", path, db ? sqlite3_errmsg(db) : "out of memory");
        sqlite3_close(db);
        return 1;
    }
    sqlite3_busy_timeout(db, 10000);
    long long exps = scalar(db, "SELECT count(*) FROM experiments");
    if (exps < 0) {
        fprintf(stderr, "tally stat: %s: not a Tally metadata store: %s\n", path,
                sqlite3_errmsg(db));
        sqlite3_close(db);
        return 1;
    }
    printf("experiments     %lld (%lld deleted)\n", exps,
           scalar(db, "SELECT count(*) FROM experiments WHERE lifecycle_stage = 'deleted'"));
    printf("runs            %lld (%lld deleted)\n", scalar(db, "SELECT count(*) FROM runs"),
           scalar(db, "SELECT count(*) FROM runs WHERE lifecycle_stage = 'deleted'"));
    printf("params          %lld\n", scalar(db, "SELECT count(*) FROM params"));
    printf("tags            %lld\n", scalar(db, "SELECT count(*) FROM tags"));
    printf("schema version  %lld\n",
           scalar(db, "SELECT coalesce(max(version), 0) FROM tally_schema_version"));
    long long done = scalar(db, "SELECT count(*) FROM import_runs WHERE state = 'done'");
    if (done >= 0)
        printf("imported runs   %lld (%lld interrupted)\n", done,
               scalar(db, "SELECT count(*) FROM import_runs WHERE state = 'metadata'"));
    sqlite3_close(db);
    return 0;
}

static int stat_engine(const char *dir)
{
    tally_engine_options o;
    tally_engine_options_init(&o);
    o.read_only = 1;
    tally_engine *e;
    int rc = tally_engine_open(dir, &o, &e);
    if (rc) {
        fprintf(stderr, "tally stat: %s: %s%s\n", dir, tally_strerror(rc),
                rc == TALLY_ELOCKED ? " (a server is running on it: stop it first)" : "");
        return 1;
    }
    tally_engine_stats st;
    tally_engine_stats_get(e, &st);
    char sub[4200];
    uint64_t n_seg, n_wal;
    snprintf(sub, sizeof sub, "%s/seg", dir);
    uint64_t seg_bytes = files_bytes(sub, ".seg", &n_seg);
    snprintf(sub, sizeof sub, "%s/wal", dir);
    uint64_t wal_bytes = files_bytes(sub, ".wal", &n_wal);
    printf("series          %" PRIu64 "\n", st.n_series);
    printf("points          %" PRIu64 " (%" PRIu64 " in the WAL only)\n", st.n_points,
           st.n_head_points);
    printf("blocks          %" PRIu64 "\n", st.n_blocks);
    printf("segments        %" PRIu64 " files, %" PRIu64 " bytes (%" PRIu64 " in blocks)\n",
           n_seg, seg_bytes, st.segment_bytes);
    printf("WAL             %" PRIu64 " files, %" PRIu64 " bytes (%" PRIu64
           " records replayed at open)\n",
           n_wal, wal_bytes, st.recovered_records);
    if (st.n_points > st.n_head_points)
        printf("bytes/point     %.3f (sealed blocks)\n",
               (double)st.segment_bytes / (double)(st.n_points - st.n_head_points));
    tally_engine_close(e);
    return 0;
}

int cmd_stat(int argc, char **argv)
{
    if (argc != 1 || strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0) {
        int help = argc == 1;
        fputs(usage_text, help ? stdout : stderr);
        return help ? 0 : 2;
    }
    const char *dir = argv[0];
    char metrics[4096], meta[4096], arts[4096];
    snprintf(metrics, sizeof metrics, "%s/metrics", dir);
    snprintf(meta, sizeof meta, "%s/meta.db", dir);
    snprintf(arts, sizeof arts, "%s/artifacts", dir);
    struct stat sb;
    int whole = is_dir(metrics) || stat(meta, &sb) == 0;
    if (!whole)
        return stat_engine(dir);
    int bad = 0;
    if (stat(meta, &sb) == 0) {
        bad |= stat_store(meta);
        char wal[4200];
        snprintf(wal, sizeof wal, "%s-wal", meta);
        printf("meta.db         %" PRIu64 " bytes (+%" PRIu64 " WAL)\n", (uint64_t)sb.st_size,
               fs_tree_bytes(wal));
    }
    if (is_dir(metrics))
        bad |= stat_engine(metrics);
    if (is_dir(arts))
        printf("artifacts       %" PRIu64 " files, %" PRIu64 " bytes\n", count_files(arts),
               fs_tree_bytes(arts));
    printf("total           %" PRIu64 " bytes on disk\n", fs_tree_bytes(dir));
    return bad;
}
