/*
 * authz.h — authorization in the request pipeline: which permission each
 * route needs on which resource (mlflow-auth.md §4), the after-request
 * effects (§5), the audit record of every state-changing request, and the
 * readable sets that searches filter with.
 *
 * The table (authz.c, RULES) lists every (path, method) the server serves
 * with its requirement and how to find the resource. http.c makes three
 * calls, only when auth is on (srv->auth != NULL):
 *
 *   begin, headers in     tally_authz_authenticate   401 unless the route is
 *                                                    public or the credential
 *                                                    verifies
 *   body in, before fn    tally_authz_check          403 unless permitted;
 *                                                    400/404 when the resource
 *                                                    cannot be found (as the
 *                                                    unprotected handler would)
 *   after fn              tally_authz_after          row effects (§5), audit
 *
 * Invariants:
 *  (1) Every route of routes.c has a rule for each of its methods:
 *      tally_authz_verify_routes() (called by tally_http_start, auth on or
 *      off) refuses to start otherwise, naming the route — no endpoint can
 *      be forgotten.
 *  (2) Admins skip checks (§2 step 3) but not row effects or the audit log.
 *  (3) A request whose resource parameter appears more than once (any
 *      spelling: run_id, runId, run_uuid...) with different values is
 *      refused 400: the check and the handler can never read different ids.
 */
#ifndef TALLY_SERVER_AUTHZ_H
#define TALLY_SERVER_AUTHZ_H

#include <stddef.h>
#include <stdint.h>

#include "app.h"
#include "auth.h"

/* Per-request state, owned by http.c's connection, reset per request. */
typedef struct tally_authz_state {
    int authed;                   /* who is valid */
    tally_principal who;
    const void *rule;             /* the matched rule (authz.c), or NULL */
    char resource[192];           /* what the request named, for the audit log */
} tally_authz_state;

/* Invariant (1). 0, or -1 after printing each missing rule on stderr. */
int tally_authz_verify_routes(void);

/* Authenticates the request (route NULL: no route matched; still needs
 * credentials). 0, or -1 with resp filled: 401 UNAUTHENTICATED JSON with
 * `WWW-Authenticate: Basic realm="tally"`. */
int tally_authz_authenticate(tally_server *srv, const tally_route *route, tally_method method,
                             const char *authorization, tally_authz_state *st, tally_resp *resp);

/* Checks the rule of req's route. 0 to run the handler, or -1 with resp
 * filled (403 PERMISSION_DENIED, or 400/404/503 when the resource lookup
 * fails). */
int tally_authz_check(tally_server *srv, const tally_req *req, const tally_route *route,
                      tally_authz_state *st, tally_resp *resp);

/* After the handler (resp holds its reply): row effects when status < 400,
 * then the audit record of a state-changing route. method_name as sent. */
void tally_authz_after(tally_server *srv, const tally_req *req, const tally_route *route,
                       const char *method_name, tally_authz_state *st, const tally_resp *resp);

/* ---- search filtering ---------------------------------------------------- */

/* What one caller may read of one kind of resource, as a snapshot taken
 * once per search request:
 *   all                 1: everything (auth off or an admin); the rest unused
 *   default_readable    the default permission allows READ
 *   rows[0..n_rows)     the caller's explicit rows, sorted by resource (byte
 *                       order); a row decides over the default
 * A resource r is readable iff all, or (row(r) ? row(r) >= READ :
 * default_readable). To push the set into SQL: with default_readable,
 * exclude the names of rows whose level is NO_PERMISSIONS; without it,
 * include only the names of rows whose level is READ or more.
 * The set's memory lives in the arena given. */
typedef struct tally_readable_set {
    int all;
    int default_readable;
    const tally_perm_row *rows;
    size_t n_rows;
} tally_readable_set;

/* Experiments the caller of req may read (filters experiments/search and
 * experiments/list, and the experiment ids of runs/search). 0, or a store
 * error code. */
int tally_authz_readable_experiments(tally_server *srv, const tally_req *req, tally_arena *a,
                                     tally_readable_set *out);

/* Registered models the caller may read, by name: for registered-models/
 * search (drop models not readable), model-versions/search (drop versions
 * of models not readable) and logged-models/search via their experiment.
 * Apply it BEFORE paging (in the SQL, see above) so pages stay full and
 * page tokens stay right. 0, or a store error code. */
int tally_authz_readable_models(tally_server *srv, const tally_req *req, tally_arena *a,
                                tally_readable_set *out);

/* 1 when resource (an experiment id as decimal text, or a model name) is in
 * the set. */
int tally_readable_has(const tally_readable_set *set, const char *resource);
int tally_readable_has_experiment(const tally_readable_set *set, int64_t experiment_id);

/* ---- internal, exposed for tests/fuzz/fuzz_authz_body.c -------------------- */

/* The top-level member of a JSON object body named any of names (NULL-
 * terminated; names[0] the canonical spelling): 1 found (string value
 * decoded, or number text, into out), 0 absent, -1 given twice with
 * different values or under an escaped member name, -2 not a plain object
 * authz can read. force_full = 1 skips the fast path for large bodies; the
 * answer must be the same either way. */
int tally__authz_body_field(const char *body, size_t len, const char *const *names, char *out,
                            size_t cap, int force_full);

#endif /* TALLY_SERVER_AUTHZ_H */
