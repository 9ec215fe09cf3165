/*
 * params.h — reading an MLflow request's fields the way MLflow's server does
 * (mlflow-rest-api.md §1.2, §1.3): from the JSON body (POST/PUT/PATCH/DELETE,
 * and GET without a query string), or from the query string (GET), with
 * snake_case or lowerCamelCase names, int64 as number or decimal string,
 * doubles as numbers or "NaN"/"Infinity"/"-Infinity", enums by name or number,
 * bools true/false. JSON parsing uses cJSON (Debian's libcjson).
 *
 * Every getter returns 1 when the field is present and valid, 0 when absent
 * (or JSON null), and -1 after filling resp with MLflow's error
 * (INVALID_PARAMETER_VALUE, naming the field) when present but invalid. The
 * "require" getters also turn absence into MLflow's missing-parameter error.
 * Strings returned point into the request or the parsed JSON and live until
 * tally_params_close.
 */
#ifndef TALLY_SERVER_PARAMS_H
#define TALLY_SERVER_PARAMS_H

#include <stddef.h>
#include <stdint.h>

#include "http.h"

typedef struct cJSON cJSON;

typedef struct tally_params {
    const tally_req *req;
    cJSON *root;     /* the parsed JSON object, or NULL when reading the query string */
    int from_query;  /* fields come from req->args */
    void *owned;     /* allocations freed by tally_params_close */
} tally_params;

/* Decodes the request per §1.2 (Content-Type rules, empty body = {}, a body
 * that is a JSON string holding JSON is decoded twice). -1 with resp filled
 * on malformed JSON, a non-object body, or a bad Content-Type. */
int tally_params_open(tally_params *p, const tally_req *req, tally_resp *resp);
void tally_params_close(tally_params *p);

int tally_params_string(tally_params *p, const char *name, const char **out, tally_resp *resp);
int tally_params_int64(tally_params *p, const char *name, int64_t *out, tally_resp *resp);
int tally_params_int32(tally_params *p, const char *name, int32_t *out, tally_resp *resp);
int tally_params_double(tally_params *p, const char *name, double *out, tally_resp *resp);
int tally_params_bool(tally_params *p, const char *name, int *out, tally_resp *resp);
/* An enum given by one of names[i] (case-insensitive) or by values[i]. */
int tally_params_enum(tally_params *p, const char *name, const char *const *names,
                      const int *values, size_t n, int *out, tally_resp *resp);
/* A repeated string field: a JSON array of strings (numbers are coerced to
 * strings, as MLflow does for experiment_ids), or repeated query keys.
 * *out is owned by p. */
int tally_params_strings(tally_params *p, const char *name, const char ***out, size_t *n,
                         tally_resp *resp);
/* A repeated message field (tags, metrics, params, ...): the JSON array, or
 * NULL when absent. -1 if present but not an array. JSON bodies only. */
int tally_params_array(tally_params *p, const char *name, cJSON **out, tally_resp *resp);

int tally_params_require_string(tally_params *p, const char *name, const char **out,
                                tally_resp *resp);
int tally_params_require_int64(tally_params *p, const char *name, int64_t *out, tally_resp *resp);
int tally_params_require_double(tally_params *p, const char *name, double *out, tally_resp *resp);

/* The same scalar rules for a field of a nested JSON object (an element of a
 * repeated message field). where names the element for errors, e.g.
 * "metrics[3]" gives messages about "metrics[3].timestamp". */
int tally_json_field_string(const cJSON *obj, const char *name, const char *where,
                            const char **out, tally_resp *resp);
int tally_json_field_int64(const cJSON *obj, const char *name, const char *where, int64_t *out,
                           tally_resp *resp);
int tally_json_field_double(const cJSON *obj, const char *name, const char *where, double *out,
                            tally_resp *resp);

/* MLflow's missing-parameter message, filled into resp. Returns -1. */
int tally_params_missing(tally_resp *resp, const char *name);

#endif /* TALLY_SERVER_PARAMS_H */
