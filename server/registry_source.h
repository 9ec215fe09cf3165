/*
 * registry_source.h — checks on a model version's `source` (untrusted text
 * from model-versions/create, mlflow-rest-api.md §3.7), kept pure so the
 * fuzz target (tests/fuzz/fuzz_registry_source.c) can drive them:
 *
 *   "s3://b/%252e%252e/x" --decode--> "s3://b/%2e%2e/x" --decode--> "s3://b/../x"
 *                                                                    ^ refused
 *   "/data/exp/run/artifacts/model"   local: must lie inside the run's
 *   "file:///data/exp/..."            local artifact directory
 *   "s3://...", "models:/...", "mlflow-artifacts:/..."   remote
 *
 * Invariants:
 *  (1) Nothing here allocates except tally_registry_source_has_dotdot, which
 *      frees what it takes before returning; no function reads past the
 *      terminating NUL of its inputs.
 *  (2) has_dotdot is stable under decoding: if it answers 0 for s, one more
 *      round of %XX decoding of s yields a text it also answers 0 for.
 */
#ifndef TALLY_SERVER_REGISTRY_SOURCE_H
#define TALLY_SERVER_REGISTRY_SOURCE_H

#include <stddef.h>

/* Maximum decoding rounds; a text still changing after them is refused. */
#define TALLY_REGISTRY_SOURCE_MAX_DECODES 16

/* 1 if some '/' or '\' separated segment of s is "..", after URL-decoding
 * s again and again until it stops changing (or the rounds run out, which
 * also answers 1); 0 otherwise; -1 out of memory. */
int tally_registry_source_has_dotdot(const char *s);

/* One round of %XX decoding of s into out (room for strlen(s) + 1 bytes);
 * %00 is left as it is. Returns 1 if anything was decoded. */
int tally_registry_source_decode_once(const char *s, char *out);

/* The local path of a plain path or file: URI (the authority of
 * file://host/path dropped), pointing into s; NULL when s is a remote URI
 * (a scheme of two or more characters other than file; a one-letter scheme
 * is a Windows drive, hence local). */
const char *tally_registry_source_local_path(const char *s);

/* 1 if path equals dir or lies below it (dir's trailing '/' ignored). */
int tally_registry_source_path_inside(const char *path, const char *dir);

#endif /* TALLY_SERVER_REGISTRY_SOURCE_H */
