/*
 * artifact_path.h — mapping MLflow artifact paths onto the local artifact
 * root safely (mlflow-rest-api.md §4.8). Every artifact endpoint goes
 * through here; nothing else joins a client's path to a directory.
 *
 * Invariants:
 *  (1) A path is checked after URL-decoding it repeatedly until it no longer
 *      changes: any '#', any ".." segment, a leading '/', a Windows drive
 *      ("C:") or UNC ("\\\\host") form, a backslash, or a NUL is refused.
 *  (2) A resolved path lies inside the root even through symlinks: the
 *      deepest existing ancestor is canonicalised with realpath() and must
 *      be the root or below it.
 */
#ifndef TALLY_SERVER_ARTIFACT_PATH_H
#define TALLY_SERVER_ARTIFACT_PATH_H

#include <stddef.h>

/* Checks a client's relative path ("" and NULL allowed: the root) and writes
 * its normal form (no "." segments, no repeated or trailing '/') into out.
 * Returns 0, or -1 for an unsafe path (reply 400 "Invalid path"). */
int tally_artifact_path_check(const char *rel, char *out, size_t cap);

/* The local path of artifact URI uri plus a checked relative path: only
 * "mlflow-artifacts:/<path>" URIs (served from root) map to local files.
 * Returns 0 with out = root/<uri path>/<rel>, 1 when the URI is not served
 * from this root (another store: list nothing), -1 for an unsafe path. */
int tally_artifact_local_path(const char *root, const char *uri, const char *rel, char *out,
                              size_t cap);

/* The path, relative to the artifact root, of artifact URI uri plus a
 * checked relative path rel: "mlflow-artifacts:/<p>" (or
 * "mlflow-artifacts://host:port/<p>") gives "<p>/<rel>", normalised.
 * Returns 0, 1 when the URI is not served from this root, -1 for an unsafe
 * path or one that does not fit in cap. */
int tally_artifact_uri_rel(const char *uri, const char *rel, char *out, size_t cap);

/* Checks that path (which need not exist) stays inside root after resolving
 * symlinks of its existing ancestors. 0 inside, -1 outside. */
int tally_artifact_path_inside(const char *root, const char *path);

#endif /* TALLY_SERVER_ARTIFACT_PATH_H */
