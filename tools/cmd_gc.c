/*
 * cmd_gc.c — `tally gc --data DIR [--older-than AGE] [--experiment-ids ..]
 * [--run-ids ..]`: permanently removes runs and experiments deleted more
 * than AGE ago, as MLflow's `mlflow gc` does: their metric series (engine
 * compaction, tally_engine_compact), their artifacts under the local
 * artifact root, and their rows in meta.db. Offline: the directory must not
 * be served meanwhile.
 *
 * Order, so that an interruption is finished by running gc again:
 *   1. select (read): the runs and experiments to remove;
 *   2. metric series of those runs: dropped by compaction (atomic);
 *   3. artifact directories of those runs and experiments: removed;
 *   4. meta.db: the rows, in one transaction.
 * Until step 4 the runs are still listed as deleted, so a second gc selects
 * them again; steps 2 and 3 find nothing left to do for them.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "commands.h"
#include "datadir.h"
#include "fsutil.h"
#include "progress.h"
#include "store_cli.h"

static const char usage_text[] =
    "usage: tally gc --data DIR [--older-than AGE] [--experiment-ids ID,..]\n"
    "                [--run-ids ID,..] [--dry-run] [--quiet]\n"
    "\n"
    "Permanently removes deleted runs and experiments, their metric data and\n"
    "their artifacts, and reclaims the space (MLflow's `mlflow gc`). Stop the\n"
    "server first.\n"
    "\n"
    "  --older-than AGE      only what was deleted at least AGE ago, e.g. 30d,\n"
    "                        1d2h, 90m, 45s (default: 0, everything deleted)\n"
    "  --experiment-ids IDS  only these deleted experiments (and all their runs)\n"
    "  --run-ids IDS         only these deleted runs\n"
    "  --dry-run             list what would be removed, remove nothing\n"
    "\n"
    "Exit status: 0 done, 1 failed (run it again to finish), 2 usage error.\n";

/* "1d2h3m4s" (MLflow's format; units d h m s, each optional) in ms; -1 if
 * malformed. */
static int64_t parse_age(const char *s)
{
    int64_t total = 0;
    if (!*s)
        return -1;
    while (*s) {
        char *end;
        errno = 0;
        long long v = strtoll(s, &end, 10);
        if (end == s || v < 0 || errno)
            return -1;
        int64_t unit;
        switch (*end) {
        case 'd': unit = 86400000; break;
        case 'h': unit = 3600000; break;
        case 'm': unit = 60000; break;
        case 's': unit = 1000; break;
        default: return -1;
        }
        if (v > INT64_MAX / unit / 2)
            return -1;
        total += v * unit;
        s = end + 1;
    }
    return total;
}

/* Splits "a,b,c" into a malloc'd array of pointers into s (modified). */
static int split(char *s, char ***out, size_t *n)
{
    *out = NULL;
    *n = 0;
    for (char *tok = strtok(s, ","); tok; tok = strtok(NULL, ",")) {
        while (*tok == ' ')
            tok++;
        if (!*tok)
            continue;
        char **nv = realloc(*out, (*n + 1) * sizeof *nv);
        if (!nv)
            return -1;
        nv[(*n)++] = tok;
        *out = nv;
    }
    return 0;
}

static void progress_cb(void *ctx, uint64_t done, uint64_t total)
{
    (void)total;
    tally_progress_add(ctx, done);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* <root>/<p> for an mlflow-artifacts:/<p> URI, into out; 0 if not local. */
static int local_artifact_dir(const char *root, const char *uri, char *out, size_t cap)
{
    static const char pre[] = "mlflow-artifacts:";
    if (strncmp(uri, pre, sizeof pre - 1) != 0)
        return 0;
    const char *rel = uri + sizeof pre - 1;
    while (*rel == '/')
        rel++;
    if (!*rel || strstr(rel, ".."))
        return 0;
    return snprintf(out, cap, "%s/%s", root, rel) < (int)cap;
}

int cmd_gc(int argc, char **argv)
{
    const char *data = NULL;
    char *run_arg = NULL, *exp_arg = NULL;
    int64_t age = 0;
    int dry = 0, quiet = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(usage_text, stdout);
            return 0;
        } else if (strcmp(a, "--dry-run") == 0) {
            dry = 1;
        } else if (strcmp(a, "--quiet") == 0 || strcmp(a, "-q") == 0) {
            quiet = 1;
        } else if (i + 1 < argc && strcmp(a, "--data") == 0) {
            data = argv[++i];
        } else if (i + 1 < argc && strcmp(a, "--older-than") == 0) {
            if ((age = parse_age(argv[++i])) < 0) {
                fprintf(stderr, "tally gc: --older-than wants an age like 30d, 1d2h or 90m, "
                                "not '%s'\n",
                        argv[i]);
                return 2;
            }
        } else if (i + 1 < argc && strcmp(a, "--run-ids") == 0) {
            run_arg = argv[++i];
        } else if (i + 1 < argc && strcmp(a, "--experiment-ids") == 0) {
            exp_arg = argv[++i];
        } else {
            fprintf(stderr, "tally gc: unexpected argument '%s'\n%s", a, usage_text);
            return 2;
        }
    }
    if (!data) {
        fprintf(stderr, "tally gc: --data DIR is required\n");
        return 2;
    }
    char **run_ids = NULL, **exp_strs = NULL;
    size_t n_run_ids = 0, n_exp_ids = 0;
    int64_t *exp_ids = NULL;
    int rc = 2;
    if ((run_arg && split(run_arg, &run_ids, &n_run_ids) != 0) ||
        (exp_arg && split(exp_arg, &exp_strs, &n_exp_ids) != 0)) {
        fprintf(stderr, "tally gc: out of memory\n");
        rc = 1;
        goto done;
    }
    if (n_exp_ids && !(exp_ids = calloc(n_exp_ids, sizeof *exp_ids)))
        goto done;
    for (size_t i = 0; i < n_exp_ids; i++) {
        char *end;
        long long v = strtoll(exp_strs[i], &end, 10);
        if (*end || v < 0) {
            fprintf(stderr, "tally gc: '%s' is not an experiment id\n", exp_strs[i]);
            goto done;
        }
        exp_ids[i] = v;
    }

    datadir d;
    rc = 1;
    if (datadir_paths(&d, data, "gc") != 0)
        goto done;
    char err[1024];
    if (tally_store_open(d.meta, &d.store, err, sizeof err) != 0) {
        fprintf(stderr, "tally gc: cannot open %s: %s\n", d.meta, err);
        goto done;
    }
    tally_arena *a = tally_arena_new();
    tally_gc_run *runs = NULL;
    int64_t *exps = NULL;
    size_t n_runs = 0, n_exps = 0;
    if (!a || tally_store_gc_select(d.store, now_ms() - age, (const char *const *)run_ids,
                                    n_run_ids, exp_ids, n_exp_ids, a, &runs, &n_runs, &exps,
                                    &n_exps, err, sizeof err) != 0) {
        fprintf(stderr, "tally gc: %s\n", a ? err : "out of memory");
        rc = a && strstr(err, "lifecycle stage") ? 2 : 1;
        if (a && (strstr(err, "not found")))
            rc = 2;
        goto close_store;
    }
    if (dry || !quiet) {
        for (size_t i = 0; i < n_exps; i++)
            printf("%s experiment %lld\n", dry ? "would remove" : "removing", (long long)exps[i]);
        for (size_t i = 0; i < n_runs; i++)
            printf("%s run %s (experiment %lld)\n", dry ? "would remove" : "removing",
                   runs[i].run_id, (long long)runs[i].experiment_id);
    }
    if (dry || (n_runs == 0 && n_exps == 0)) {
        printf("%zu runs, %zu experiments%s\n", n_runs, n_exps, dry ? " (dry run)" : "");
        rc = 0;
        goto close_store;
    }

    /* 2. metric series */
    tally_engine_options eo;
    tally_engine_options_init(&eo);
    struct stat sb;
    tally_compact_stats cs;
    memset(&cs, 0, sizeof cs);
    if (stat(d.metrics, &sb) == 0) {
        int e_rc = tally_engine_open(d.metrics, &eo, &d.engine);
        if (e_rc) {
            fprintf(stderr, "tally gc: cannot open the metric engine at %s: %s%s\n", d.metrics,
                    tally_strerror(e_rc),
                    e_rc == TALLY_ELOCKED ? " (a server is running on it: stop it first)" : "");
            goto close_store;
        }
        tally_series_id *ids = NULL;
        size_t n_ids = 0, cap_ids = 0;
        tally_progress pr;
        tally_progress_start(&pr, "gc: finding series", "runs", n_runs, quiet);
        for (size_t i = 0; i < n_runs; i++) {
            size_t total = 0;
            tally_engine_series_of_run(d.engine, runs[i].run_id, strlen(runs[i].run_id), NULL, 0,
                                       &total);
            if (n_ids + total > cap_ids) {
                cap_ids = (n_ids + total) * 2;
                tally_series_id *ni = realloc(ids, cap_ids * sizeof *ni);
                if (!ni) {
                    free(ids);
                    fprintf(stderr, "tally gc: out of memory\n");
                    goto close_engine;
                }
                ids = ni;
            }
            size_t got = 0;
            tally_engine_series_of_run(d.engine, runs[i].run_id, strlen(runs[i].run_id),
                                       ids + n_ids, total, &got);
            n_ids += got < total ? got : total;
            tally_progress_add(&pr, 1);
        }
        tally_progress_finish(&pr);
        e_rc = tally_engine_close(d.engine);
        d.engine = NULL;
        if (e_rc) {
            free(ids);
            fprintf(stderr, "tally gc: closing the metric engine: %s\n", tally_strerror(e_rc));
            goto close_store;
        }
        char seg[1200];
        snprintf(seg, sizeof seg, "%s/seg", d.metrics);
        if (!quiet)
            fprintf(stderr, "gc: dropping %zu series, copying the rest into new segments\n",
                    n_ids);
        tally_progress cp; /* total: the segments' size, an upper bound of what is kept */
        tally_progress_start(&cp, "gc: compacting", "bytes", fs_tree_bytes(seg), quiet);
        e_rc = tally_engine_compact_progress(d.metrics, ids, n_ids, &cs, progress_cb, &cp);
        tally_progress_finish(&cp);
        free(ids);
        if (e_rc) {
            fprintf(stderr, "tally gc: compacting the metric engine: %s\n", tally_strerror(e_rc));
            goto close_store;
        }
    }

    /* 3. artifacts */
    uint64_t art_bytes = 0;
    char path[4096];
    tally_progress pr;
    tally_progress_start(&pr, "gc: removing artifacts", "runs", n_runs + n_exps, quiet);
    for (size_t i = 0; i < n_runs; i++) {
        if (local_artifact_dir(d.artifacts, runs[i].artifact_uri, path, sizeof path)) {
            art_bytes += fs_tree_bytes(path);
            int r = fs_remove_tree(path);
            if (r) {
                fprintf(stderr, "tally gc: removing %s: %s\n", path, strerror(-r));
                goto close_store;
            }
            /* <root>/<exp>/<run>/artifacts: the now empty run directory too */
            char *slash = strrchr(path, '/');
            if (slash && strcmp(slash, "/artifacts") == 0) {
                *slash = 0;
                rmdir(path);
            }
        }
        tally_progress_add(&pr, 1);
    }
    for (size_t i = 0; i < n_exps; i++) {
        if (exps[i] != 0 &&
            snprintf(path, sizeof path, "%s/%lld", d.artifacts, (long long)exps[i]) <
                (int)sizeof path) {
            art_bytes += fs_tree_bytes(path);
            int r = fs_remove_tree(path);
            if (r) {
                fprintf(stderr, "tally gc: removing %s: %s\n", path, strerror(-r));
                goto close_store;
            }
        }
        tally_progress_add(&pr, 1);
    }
    tally_progress_finish(&pr);

    /* 4. the rows */
    const char **ids_list = tally_arena_alloc(a, (n_runs + 1) * sizeof *ids_list);
    if (!ids_list)
        goto close_store;
    for (size_t i = 0; i < n_runs; i++)
        ids_list[i] = runs[i].run_id;
    size_t pr_runs = 0, pr_exps = 0;
    if (tally_store_gc_purge(d.store, ids_list, n_runs, exps, n_exps, &pr_runs, &pr_exps, err,
                             sizeof err) != 0) {
        fprintf(stderr, "tally gc: removing rows from meta.db: %s\n", err);
        goto close_store;
    }
    printf("removed %zu runs, %zu experiments, %llu series, %llu metric points; "
           "segments %llu -> %llu bytes, artifacts %llu bytes\n",
           pr_runs, pr_exps, (unsigned long long)cs.series_dropped,
           (unsigned long long)cs.points_dropped, (unsigned long long)cs.bytes_before,
           (unsigned long long)cs.bytes_after, (unsigned long long)art_bytes);
    rc = 0;
    goto close_store;
close_engine:
    tally_engine_close(d.engine);
    d.engine = NULL;
close_store:
    tally_arena_free(a);
    tally_store_close(d.store);
done:
    free(run_ids);
    free(exp_strs);
    free(exp_ids);
    return rc;
}
