/*
 * cmd_users.c — `tally users`: manage users and permission rows of a
 * running `tally serve --auth` through its REST API (mlflow-auth.md §6), so
 * the server's credential and permission caches learn of every change at
 * once (it never edits the data directory behind the server's back).
 * Connection and credentials: api_client.h (--url, --user/--password or
 * --token, or the MLFLOW_TRACKING_* environment).
 */
#ifdef TALLY_HAVE_SERVER
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_client.h"
#include "commands.h"

static const char USAGE[] =
    "usage: tally users [--url URL] [--user U --password P | --token T] COMMAND\n"
    "\n"
    "commands (each prints the server's JSON answer):\n"
    "  create NAME                 new user; password from TALLY_NEW_PASSWORD or\n"
    "                              the first line of stdin (12+ characters)\n"
    "  get NAME                    the user and its permission rows\n"
    "  delete NAME                 the user, its rows and its tokens\n"
    "  set-password NAME           new password as for create\n"
    "  set-admin NAME true|false\n"
    "  grant experiment ID USER LEVEL   create or change a row; LEVEL is READ,\n"
    "  grant model NAME USER LEVEL      EDIT, MANAGE or NO_PERMISSIONS\n"
    "  revoke experiment ID USER        delete a row\n"
    "  revoke model NAME USER\n"
    "\n"
    "Needs a running server (default http://127.0.0.1:5000; TALLY_URL) and an\n"
    "admin's credentials (or the resource's MANAGE for grant/revoke), from the\n"
    "flags or MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD /\n"
    "MLFLOW_TRACKING_TOKEN. Exit 0 on success, 1 when the server refused, 2 on\n"
    "a usage error.\n";

static int new_password(char *out, size_t cap)
{
    const char *env = getenv("TALLY_NEW_PASSWORD");
    if (env && *env) {
        snprintf(out, cap, "%s", env);
        return 0;
    }
    if (!fgets(out, (int)cap, stdin))
        return -1;
    out[strcspn(out, "\r\n")] = 0;
    return *out ? 0 : -1;
}

/* Sends obj (consumed) and prints the answer. 0, 1 (refused) or -1 (no answer). */
static int call(const tally_client *c, const char *method, const char *path, cJSON *obj,
                tally_client_resp *keep)
{
    char *body = obj ? cJSON_PrintUnformatted(obj) : NULL;
    cJSON_Delete(obj);
    tally_client_resp r;
    int rc = tally_client_call(c, method, path, body, &r);
    free(body);
    if (rc != 0)
        return -1;
    if (r.status / 100 != 2) {
        if (keep) {
            *keep = r;
            return 1;
        }
        tally_client_print_error("users", &r);
        tally_client_resp_free(&r);
        return 1;
    }
    fputs(r.body, stdout);
    fputc('\n', stdout);
    tally_client_resp_free(&r);
    return 0;
}

static cJSON *obj2(const char *k1, const char *v1, const char *k2, const char *v2)
{
    cJSON *o = cJSON_CreateObject();
    if (o && k1)
        cJSON_AddStringToObject(o, k1, v1);
    if (o && k2)
        cJSON_AddStringToObject(o, k2, v2);
    return o;
}

int cmd_users(int argc, char **argv)
{
    if (argc >= 1 && (strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0)) {
        fputs(USAGE, stdout);
        return 0;
    }
    tally_client c;
    argc = tally_client_init(&c, argc, argv, "users");
    if (argc < 0)
        return 2;
    if (argc < 2) {
        fputs(USAGE, stderr);
        return 2;
    }
    const char *sub = argv[0], *name = argv[1];
    char q[1200], enc[1000];
    int rc;
    if (strcmp(sub, "create") == 0 || strcmp(sub, "set-password") == 0) {
        char pw[1100];
        if (argc != 2)
            goto usage;
        if (new_password(pw, sizeof pw) != 0) {
            fprintf(stderr, "tally users: no password given (TALLY_NEW_PASSWORD or stdin)\n");
            return 2;
        }
        int create = sub[0] == 'c';
        rc = call(&c, create ? "POST" : "PATCH",
                  create ? "mlflow/users/create" : "mlflow/users/update-password",
                  obj2("username", name, "password", pw), NULL);
        memset(pw, 0, sizeof pw);
    } else if (strcmp(sub, "get") == 0 && argc == 2) {
        tally_client_urlencode(name, enc, sizeof enc);
        snprintf(q, sizeof q, "mlflow/users/get?username=%s", enc);
        rc = call(&c, "GET", q, NULL, NULL);
    } else if (strcmp(sub, "delete") == 0 && argc == 2) {
        rc = call(&c, "DELETE", "mlflow/users/delete", obj2("username", name, NULL, NULL), NULL);
    } else if (strcmp(sub, "set-admin") == 0 && argc == 3) {
        int v = strcmp(argv[2], "true") == 0 ? 1 : strcmp(argv[2], "false") == 0 ? 0 : -1;
        if (v < 0)
            goto usage;
        cJSON *o = obj2("username", name, NULL, NULL);
        cJSON_AddBoolToObject(o, "is_admin", v);
        rc = call(&c, "PATCH", "mlflow/users/update-admin", o, NULL);
    } else if ((strcmp(sub, "grant") == 0 && argc == 5) ||
               (strcmp(sub, "revoke") == 0 && argc == 4)) {
        int model = strcmp(argv[1], "model") == 0;
        if (!model && strcmp(argv[1], "experiment") != 0)
            goto usage;
        const char *base = model ? "mlflow/registered-models/permissions/"
                                 : "mlflow/experiments/permissions/";
        const char *res_key = model ? "name" : "experiment_id";
        char path[128];
        if (sub[0] == 'r') {
            snprintf(path, sizeof path, "%sdelete", base);
            rc = call(&c, "DELETE", path, obj2(res_key, argv[2], "username", argv[3]), NULL);
        } else {
            snprintf(path, sizeof path, "%screate", base);
            cJSON *o = obj2(res_key, argv[2], "username", argv[3]);
            cJSON_AddStringToObject(o, "permission", argv[4]);
            tally_client_resp r;
            rc = call(&c, "POST", path, o, &r);
            if (rc == 1) {
                int exists = r.body && strstr(r.body, "RESOURCE_ALREADY_EXISTS");
                if (!exists)
                    tally_client_print_error("users", &r);
                tally_client_resp_free(&r);
                if (exists) {
                    snprintf(path, sizeof path, "%supdate", base);
                    o = obj2(res_key, argv[2], "username", argv[3]);
                    cJSON_AddStringToObject(o, "permission", argv[4]);
                    rc = call(&c, "PATCH", path, o, NULL);
                }
            }
        }
    } else {
        goto usage;
    }
    return rc == 0 ? 0 : 1;
usage:
    fputs(USAGE, stderr);
    return 2;
}
#endif /* TALLY_HAVE_SERVER */
