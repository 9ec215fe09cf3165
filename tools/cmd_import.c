/*
 * cmd_import.c — `tally import mlruns DIR` and `tally import mlflow-db FILE`:
 * MLflow's file store or SQLite database into a Tally data directory,
 * idempotent and resumable through the import ledger (store_cli.h). The
 * data directory must not be served meanwhile (the engine's lock says so).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "import_sources.h"

static const char usage_text[] =
    "usage: tally import mlruns DIR (--data DATA | --to URL [--ledger FILE])\n"
    "                              [--threads N] [--quiet]\n"
    "       tally import mlflow-db FILE (--data DATA | --to URL [--ledger FILE])\n"
    "                              [--artifact-root DIR] [--threads N] [--quiet]\n"
    "\n"
    "Imports an MLflow file store (the mlruns directory) or an MLflow SQLite\n"
    "database into the Tally data directory DATA (created if needed; no server\n"
    "may be running on it): experiments, runs, params, tags, every metric point,\n"
    "the artifacts of local artifact stores and the model registry (registered\n"
    "models, versions, stages, tags, aliases). MLflow run ids and version\n"
    "numbers are kept.\n"
    "Running it again imports nothing twice; after an interruption it resumes.\n"
    "\n"
    "  --data DATA           the Tally data directory\n"
    "  --to URL              a running Tally server instead (its REST, ingest and\n"
    "                        artifact endpoints; new run ids, see docs/cli.md)\n"
    "  --ledger FILE         with --to: the client-side ledger (default:\n"
    "                        SOURCE.tally-import-ledger)\n"
    "  --artifact-root DIR   mlflow-db: the server's local artifact root, for\n"
    "                        artifact URIs that are not absolute file paths\n"
    "  --threads N           reader threads (default: the number of CPUs)\n"
    "  --quiet               no progress line\n"
    "\n"
    "Exit status: 0 imported, 1 failed (what was done is kept; run again to\n"
    "resume), 2 usage error.\n";

int cmd_import(int argc, char **argv)
{
    if (argc >= 1 && (strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0)) {
        fputs(usage_text, stdout);
        return 0;
    }
    if (argc < 2) {
        fputs(usage_text, stderr);
        return 2;
    }
    const char *kind = argv[0], *src = argv[1], *data = NULL, *art_root = NULL, *to = NULL,
               *ledger = NULL;
    long threads = sysconf(_SC_NPROCESSORS_ONLN);
    int quiet = 0;
    if (strcmp(kind, "mlruns") != 0 && strcmp(kind, "mlflow-db") != 0) {
        fprintf(stderr, "tally import: unknown source '%s' (mlruns or mlflow-db)\n", kind);
        return 2;
    }
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0) {
            fputs(usage_text, stdout);
            return 0;
        } else if (strcmp(a, "--quiet") == 0 || strcmp(a, "-q") == 0) {
            quiet = 1;
        } else if (i + 1 < argc && strcmp(a, "--data") == 0) {
            data = argv[++i];
        } else if (i + 1 < argc && strcmp(a, "--to") == 0) {
            to = argv[++i];
        } else if (i + 1 < argc && strcmp(a, "--ledger") == 0) {
            ledger = argv[++i];
        } else if (i + 1 < argc && strcmp(a, "--artifact-root") == 0 &&
                   strcmp(kind, "mlflow-db") == 0) {
            art_root = argv[++i];
        } else if (i + 1 < argc && strcmp(a, "--threads") == 0) {
            char *end;
            threads = strtol(argv[++i], &end, 10);
            if (*end || threads < 1 || threads > 64) {
                fprintf(stderr, "tally import: --threads wants 1..64\n");
                return 2;
            }
        } else {
            fprintf(stderr, "tally import: unexpected argument '%s'\n%s", a, usage_text);
            return 2;
        }
    }
    if (!data == !to) {
        fprintf(stderr, "tally import: give one of --data DATA and --to URL\n");
        return 2;
    }
    if (ledger && !to) {
        fprintf(stderr, "tally import: --ledger goes with --to\n");
        return 2;
    }
    if (threads < 1)
        threads = 1;
    char *canon = realpath(src, NULL);
    if (!canon) {
        fprintf(stderr, "tally import: %s: no such %s\n", src,
                strcmp(kind, "mlruns") == 0 ? "directory" : "file");
        return 1;
    }
    char source[1200];
    snprintf(source, sizeof source, "%s:%s", kind, canon);
    import_ctx c;
    char ledger_buf[1300];
    if (to && !ledger) {
        snprintf(ledger_buf, sizeof ledger_buf, "%s.tally-import-ledger", canon);
        ledger = ledger_buf;
    }
    if (to ? import_open_remote(&c, to, ledger, source, (int)threads) != 0
           : import_open(&c, data, source, (int)threads) != 0) {
        free(canon);
        return 1;
    }
    int bad = strcmp(kind, "mlruns") == 0 ? import_mlruns(&c, canon, quiet)
                                          : import_mlflow_db(&c, canon, art_root, quiet);
    free(canon);
    uint64_t pts = atomic_load(&c.n_points);
    if (bad && to) /* the source's deleted experiments wait for a complete import */
        atomic_store(&c.failed, 1);
    if (import_close(&c) != 0)
        bad = 1;
    printf("%s: %llu experiments, %llu runs imported, %llu already done, %llu metric points, "
           "%llu artifact files (%llu bytes), %llu registered models imported (%llu versions), "
           "%llu already done\n",
           bad ? "import failed (run again to resume)" : "imported",
           (unsigned long long)atomic_load(&c.n_experiments),
           (unsigned long long)atomic_load(&c.n_runs_imported),
           (unsigned long long)atomic_load(&c.n_runs_skipped), (unsigned long long)pts,
           (unsigned long long)atomic_load(&c.n_artifact_files),
           (unsigned long long)atomic_load(&c.n_artifact_bytes),
           (unsigned long long)atomic_load(&c.n_models_imported),
           (unsigned long long)atomic_load(&c.n_versions),
           (unsigned long long)atomic_load(&c.n_models_skipped));
    return bad ? 1 : 0;
}
