/*
 * server.h — `tally serve`: the whole server process (server.c) behind one
 * call, for tools/tally.c.
 */
#ifndef TALLY_SERVER_SERVER_H
#define TALLY_SERVER_SERVER_H

/* Tally's own version, and the MLflow version GET /version reports: MLflow
 * clients compare it (the Python client wants >= 3.4 for span logging), so
 * it names the MLflow release whose REST API we implement, not ours. */
#define TALLY_SERVER_VERSION "0.1.0"
#define TALLY_MLFLOW_COMPAT_VERSION "3.6.0"

/* Runs the server with the arguments after "serve" (argv[0] is the first of
 * them; argc may be 0): loads the configuration (config.h), creates the data
 * directory, opens the engine at <data>/metrics and the store at
 * <data>/meta.db, listens, prints "tally listening on http://HOST:PORT
 * (data DIR)" on stdout, and serves until SIGTERM or SIGINT; then stops
 * accepting, drains in-flight requests, closes the store and the engine
 * (flush + checkpoint). Returns the process exit code: 0 after a clean
 * shutdown (or --help), 1 when it cannot start (port in use, bad data
 * directory, engine or store errors) or the shutdown lost data, 2 on a
 * usage error. Must be called before any other thread exists: it blocks
 * SIGTERM and SIGINT in the calling thread, which every thread it starts
 * inherits. */
int tally_serve_main(int argc, char **argv);

#endif /* TALLY_SERVER_SERVER_H */
