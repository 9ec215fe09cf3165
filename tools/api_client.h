/*
 * api_client.h — a small blocking HTTP/1.1 client for the `tally` commands
 * that talk to a running server (users, tokens, audit): one request per
 * connection, plain HTTP, JSON in and out.
 *
 * Where and as whom, from (highest first) the command's flags, then the
 * environment MLflow clients use:
 *   --url URL          TALLY_URL, else MLFLOW_TRACKING_URI, else http://127.0.0.1:5000
 *   --user U           MLFLOW_TRACKING_USERNAME   (Basic)
 *   --password P       MLFLOW_TRACKING_PASSWORD   (prefer the environment: flags
 *                                                 show in the process list)
 *   --token T          MLFLOW_TRACKING_TOKEN      (Bearer)
 * https:// URLs are refused with a message: this client does not speak TLS
 * (use curl against a TLS-only server, or a loopback listener).
 */
#ifndef TALLY_TOOLS_API_CLIENT_H
#define TALLY_TOOLS_API_CLIENT_H

#include <stddef.h>

typedef struct tally_client {
    char host[256];
    char port[16];
    char prefix[256];            /* path prefix of the server URL, "" or "/x" */
    char authorization[2048];    /* full header value, or "" */
} tally_client;

typedef struct tally_client_resp {
    int status;                  /* HTTP status, 0 when no response */
    char *body;                  /* NUL-terminated, malloc'd */
    size_t len;
} tally_client_resp;

/* Removes and applies --url/--user/--password/--token from argv in place, then the environment. Returns the new argc, or -1
 * with a message on stderr (usage error). */
int tally_client_init(tally_client *c, int argc, char **argv, const char *cmd);

/* Sends method path (relative to /api/2.0/, e.g. "mlflow/users/get?username=x")
 * with a JSON body (NULL: none). 0 with *out filled (free with
 * tally_client_resp_free), or -1 with a message on stderr (cannot connect). */
int tally_client_call(const tally_client *c, const char *method, const char *path,
                      const char *json_body, tally_client_resp *out);
void tally_client_resp_free(tally_client_resp *r);

/* Prints an error response's message on stderr as "tally CMD: <code>: <message>". */
void tally_client_print_error(const char *cmd, const tally_client_resp *r);

/* Percent-encodes s for a query string into out (cap bytes). */
void tally_client_urlencode(const char *s, char *out, size_t cap);

#endif /* TALLY_TOOLS_API_CLIENT_H */
