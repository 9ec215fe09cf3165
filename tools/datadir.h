/*
 * datadir.h — opening a Tally data directory from the `tally` tool: the
 * layout `tally serve` makes (server/server.c) and the handles the offline
 * commands (export, stat, gc) need.
 *
 *   <data>/metrics     the metric engine's directory (engine/)
 *   <data>/meta.db     the SQLite metadata store (server/store.h)
 *   <data>/artifacts   the local artifact root (mlflow-artifacts:/<path>)
 *
 * The engine takes its directory's lock (shared when read-only), so these
 * commands refuse a directory a server is running on, with a message saying
 * so, rather than read it while it changes.
 */
#ifndef TALLY_TOOLS_DATADIR_H
#define TALLY_TOOLS_DATADIR_H

#include "store.h"
#include "tally/engine.h"

typedef struct datadir {
    char path[1024];        /* the data directory */
    char metrics[1100];     /* <data>/metrics */
    char meta[1100];        /* <data>/meta.db */
    char artifacts[1100];   /* <data>/artifacts */
    tally_store *store;     /* NULL when not opened */
    tally_engine *engine;   /* NULL when not opened */
} datadir;

/* Fills the paths; 0, or 1 with a message (prefixed by cmd) when the
 * directory is not a Tally data directory (no meta.db and no metrics/). */
int datadir_paths(datadir *d, const char *path, const char *cmd);

/* Opens the store and the engine (read_only: shared lock, no recovery
 * writes). 0, or 1 with a message on stderr. */
int datadir_open(datadir *d, const char *path, int read_only, const char *cmd);
void datadir_close(datadir *d);

#endif /* TALLY_TOOLS_DATADIR_H */
