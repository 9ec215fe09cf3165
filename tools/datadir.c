/*
 * datadir.c — opening a Tally data directory's store and engine for the
 * offline `tally` commands (see datadir.h).
 */
#include "datadir.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

int datadir_paths(datadir *d, const char *path, const char *cmd)
{
    memset(d, 0, sizeof *d);
    if (snprintf(d->path, sizeof d->path, "%s", path) >= (int)sizeof d->path) {
        fprintf(stderr, "tally %s: path too long\n", cmd);
        return 1;
    }
    snprintf(d->metrics, sizeof d->metrics, "%s/metrics", d->path);
    snprintf(d->meta, sizeof d->meta, "%s/meta.db", d->path);
    snprintf(d->artifacts, sizeof d->artifacts, "%s/artifacts", d->path);
    struct stat a, b;
    if (stat(d->meta, &a) != 0 && stat(d->metrics, &b) != 0) {
        fprintf(stderr, "tally %s: %s is not a Tally data directory (no meta.db, no metrics/)\n",
                cmd, path);
        return 1;
    }
    return 0;
}

int datadir_open(datadir *d, const char *path, int read_only, const char *cmd)
{
    if (datadir_paths(d, path, cmd) != 0)
        return 1;
    tally_engine_options eo;
    tally_engine_options_init(&eo);
    eo.read_only = read_only;
    int rc = tally_engine_open(d->metrics, &eo, &d->engine);
    if (rc) {
        fprintf(stderr, "tally %s: cannot open the metric engine at %s: %s%s\n", cmd, d->metrics,
                tally_strerror(rc),
                rc == TALLY_ELOCKED ? " (a server is running on it; stop it, or run "
                                      "`tally backup` and use the copy)"
                                    : "");
        d->engine = NULL;
        return 1;
    }
    char err[512];
    if (tally_store_open(d->meta, &d->store, err, sizeof err) != 0) {
        fprintf(stderr, "tally %s: cannot open the metadata store at %s: %s\n", cmd, d->meta,
                err);
        tally_engine_close(d->engine);
        d->engine = NULL;
        d->store = NULL;
        return 1;
    }
    return 0;
}

void datadir_close(datadir *d)
{
    if (d->store)
        tally_store_close(d->store);
    if (d->engine)
        tally_engine_close(d->engine);
    d->store = NULL;
    d->engine = NULL;
}
