/*
 * cmd_tokens.c — `tally tokens`: create, list and revoke API tokens (Bearer
 * credentials) through a running `tally serve --auth` (docs/api.md,
 * "Authentication"). A revoked token is refused by the server's next
 * request. Connection and credentials: api_client.h.
 */
#ifdef TALLY_HAVE_SERVER
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_client.h"
#include "commands.h"

static const char USAGE[] =
    "usage: tally tokens [--url URL] [--user U --password P | --token T] COMMAND\n"
    "\n"
    "commands:\n"
    "  create NAME [--for USER] [--expires-in SECONDS]\n"
    "                       prints the new token (shown only once) on stdout, then\n"
    "                       its record as JSON on stderr; USER (another user's\n"
    "                       token) needs an admin\n"
    "  list [--for USER]    the caller's tokens (an admin without --for: all), JSON\n"
    "  revoke ID            the token stops working at once\n"
    "\n"
    "Use a token with MLFLOW_TRACKING_TOKEN=<token> (MLflow clients send it as\n"
    "`Authorization: Bearer <token>`). Exit 0, 1 when the server refused, 2 on a\n"
    "usage error.\n";

int cmd_tokens(int argc, char **argv)
{
    if (argc >= 1 && (strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0)) {
        fputs(USAGE, stdout);
        return 0;
    }
    tally_client c;
    argc = tally_client_init(&c, argc, argv, "tokens");
    if (argc < 1) {
        fputs(USAGE, stderr);
        return 2;
    }
    const char *sub = argv[0], *who = NULL, *expires = NULL, *pos = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--for") == 0 && i + 1 < argc)
            who = argv[++i];
        else if (strcmp(argv[i], "--expires-in") == 0 && i + 1 < argc)
            expires = argv[++i];
        else if (!pos && argv[i][0] != '-')
            pos = argv[i];
        else {
            fputs(USAGE, stderr);
            return 2;
        }
    }
    cJSON *o = NULL;
    const char *method, *path;
    char q[700];
    if (strcmp(sub, "create") == 0 && pos) {
        o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", pos);
        if (who)
            cJSON_AddStringToObject(o, "username", who);
        if (expires) {
            char *end;
            long long v = strtoll(expires, &end, 10);
            if (*end || v < 0) {
                cJSON_Delete(o);
                fputs(USAGE, stderr);
                return 2;
            }
            cJSON_AddNumberToObject(o, "expires_in_s", (double)v);
        }
        method = "POST";
        path = "tally/tokens/create";
    } else if (strcmp(sub, "list") == 0 && !pos && !expires) {
        char enc[600];
        tally_client_urlencode(who ? who : "", enc, sizeof enc);
        snprintf(q, sizeof q, "tally/tokens/list%s%s", who ? "?username=" : "", who ? enc : "");
        method = "GET";
        path = q;
    } else if (strcmp(sub, "revoke") == 0 && pos && !who && !expires) {
        char *end;
        long long id = strtoll(pos, &end, 10);
        if (*end || id <= 0) {
            fputs(USAGE, stderr);
            return 2;
        }
        o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "id", (double)id);
        method = "POST";
        path = "tally/tokens/revoke";
    } else {
        fputs(USAGE, stderr);
        return 2;
    }
    char *body = o ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    tally_client_resp r;
    int rc = tally_client_call(&c, method, path, body, &r);
    free(body);
    if (rc != 0)
        return 1;
    if (r.status / 100 != 2) {
        tally_client_print_error("tokens", &r);
        tally_client_resp_free(&r);
        return 1;
    }
    if (strcmp(sub, "create") == 0) {
        cJSON *j = cJSON_Parse(r.body);
        const cJSON *t = j ? cJSON_GetObjectItemCaseSensitive(j, "token") : NULL;
        const cJSON *info = j ? cJSON_GetObjectItemCaseSensitive(j, "token_info") : NULL;
        if (cJSON_IsString(t)) {
            printf("%s\n", t->valuestring);
            char *s = info ? cJSON_PrintUnformatted(info) : NULL;
            if (s)
                fprintf(stderr, "%s\n", s);
            free(s);
        } else {
            fprintf(stderr, "tally tokens: unexpected answer: %.300s\n", r.body);
            rc = 1;
        }
        cJSON_Delete(j);
    } else {
        printf("%s\n", r.body);
    }
    tally_client_resp_free(&r);
    return rc;
}
#endif /* TALLY_HAVE_SERVER */
