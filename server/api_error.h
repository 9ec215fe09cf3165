/*
 * api_error.h — MLflow's error model: {"error_code": NAME, "message": text}
 * with the HTTP status MLflow uses for each code (mlflow-rest-api.md §1.5).
 * One X-macro list gives the enum, the names and the statuses.
 */
#ifndef TALLY_SERVER_API_ERROR_H
#define TALLY_SERVER_API_ERROR_H

#include "http.h"

#define TALLY_API_ERRORS(X)                                  \
    X(INVALID_PARAMETER_VALUE, 400)                          \
    X(BAD_REQUEST, 400)                                      \
    X(RESOURCE_ALREADY_EXISTS, 400)                          \
    X(RESOURCE_DOES_NOT_EXIST, 404)                          \
    X(ENDPOINT_NOT_FOUND, 404)                               \
    X(NOT_FOUND, 404)                                        \
    X(ALREADY_EXISTS, 409)                                   \
    X(ABORTED, 409)                                          \
    X(RESOURCE_CONFLICT, 409)                                \
    X(PERMISSION_DENIED, 403)                                \
    X(UNAUTHENTICATED, 401)                                  \
    X(REQUEST_LIMIT_EXCEEDED, 429)                           \
    X(RESOURCE_EXHAUSTED, 429)                               \
    X(INTERNAL_ERROR, 500)                                   \
    X(INVALID_STATE, 500)                                    \
    X(DATA_LOSS, 500)                                        \
    X(NOT_IMPLEMENTED, 501)                                  \
    X(TEMPORARILY_UNAVAILABLE, 503)                          \
    X(DEADLINE_EXCEEDED, 504)

typedef enum tally_api_code {
#define TALLY_API_CODE_ENUM_(name, status) TALLY_API_##name,
    TALLY_API_ERRORS(TALLY_API_CODE_ENUM_)
#undef TALLY_API_CODE_ENUM_
    TALLY_API_N_CODES
} tally_api_code;

const char *tally_api_code_name(tally_api_code code);
int tally_api_code_status(tally_api_code code);

/* Fills r with the error JSON and the code's status (any earlier body is
 * dropped). The message is printf-formatted and JSON-escaped. */
void tally_resp_error(tally_resp *r, tally_api_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The same with an explicit status (e.g. 400 for a code MLflow sends as 500,
 * mlflow-rest-api.md "MLflow does X; do Y"). */
void tally_resp_error_status(tally_resp *r, int status, tally_api_code code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif /* TALLY_SERVER_API_ERROR_H */
