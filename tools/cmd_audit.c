/*
 * cmd_audit.c — `tally audit`: read the audit log of a running `tally serve
 * --auth` (GET tally/audit/search; admins only), newest first, following
 * page tokens up to --limit records. Connection and credentials:
 * api_client.h.
 */
#ifdef TALLY_HAVE_SERVER
#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api_client.h"
#include "commands.h"

static const char USAGE[] =
    "usage: tally audit [--url URL] [--user U --password P | --token T]\n"
    "                   [--who USER] [--route NAME] [--since-ms MS] [--until-ms MS]\n"
    "                   [--limit N] [--json]\n"
    "\n"
    "The audit log, newest first: one line per state-changing request\n"
    "(time, user, method, route, resource, status, remote address), or the raw\n"
    "records with --json (one JSON object per line). --limit defaults to 100.\n"
    "Needs an admin's credentials. Exit 0, 1 when the server refused, 2 on a\n"
    "usage error.\n";

int cmd_audit(int argc, char **argv)
{
    if (argc >= 1 && (strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0)) {
        fputs(USAGE, stdout);
        return 0;
    }
    tally_client c;
    argc = tally_client_init(&c, argc, argv, "audit");
    if (argc < 0)
        return 2;
    const char *who = NULL, *route = NULL, *since = NULL, *until = NULL;
    long long limit = 100;
    int json = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        int has = i + 1 < argc;
        if (strcmp(a, "--who") == 0 && has)
            who = argv[++i];
        else if (strcmp(a, "--route") == 0 && has)
            route = argv[++i];
        else if (strcmp(a, "--since-ms") == 0 && has)
            since = argv[++i];
        else if (strcmp(a, "--until-ms") == 0 && has)
            until = argv[++i];
        else if (strcmp(a, "--limit") == 0 && has) {
            char *end;
            limit = strtoll(argv[++i], &end, 10);
            if (*end || limit < 1) {
                fputs(USAGE, stderr);
                return 2;
            }
        } else if (strcmp(a, "--json") == 0)
            json = 1;
        else {
            fputs(USAGE, stderr);
            return 2;
        }
    }
    char token[32] = "";
    long long shown = 0;
    for (;;) {
        char q[2048], e1[600] = "", e2[600] = "", e3[64] = "", e4[64] = "";
        if (who)
            tally_client_urlencode(who, e1, sizeof e1);
        if (route)
            tally_client_urlencode(route, e2, sizeof e2);
        if (since)
            tally_client_urlencode(since, e3, sizeof e3);
        if (until)
            tally_client_urlencode(until, e4, sizeof e4);
        long long want = limit - shown > 1000 ? 1000 : limit - shown;
        snprintf(q, sizeof q, "tally/audit/search?max_results=%lld%s%s%s%s%s%s%s%s%s%s", want,
                 who ? "&username=" : "", e1, route ? "&route=" : "", e2,
                 since ? "&since_ms=" : "", e3, until ? "&until_ms=" : "", e4,
                 token[0] ? "&page_token=" : "", token);
        tally_client_resp r;
        if (tally_client_call(&c, "GET", q, NULL, &r) != 0)
            return 1;
        if (r.status / 100 != 2) {
            tally_client_print_error("audit", &r);
            tally_client_resp_free(&r);
            return 1;
        }
        cJSON *j = cJSON_Parse(r.body);
        tally_client_resp_free(&r);
        const cJSON *recs = j ? cJSON_GetObjectItemCaseSensitive(j, "records") : NULL;
        if (!cJSON_IsArray(recs)) {
            fprintf(stderr, "tally audit: unexpected answer from the server\n");
            cJSON_Delete(j);
            return 1;
        }
        const cJSON *rec;
        cJSON_ArrayForEach(rec, recs)
        {
            shown++;
            if (json) {
                char *s = cJSON_PrintUnformatted(rec);
                if (s)
                    puts(s);
                free(s);
                continue;
            }
            const cJSON *t = cJSON_GetObjectItemCaseSensitive(rec, "time_ms");
            time_t secs = cJSON_IsNumber(t) ? (time_t)(t->valuedouble / 1000) : 0;
            struct tm tm;
            gmtime_r(&secs, &tm);
            char ts[32];
            strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
#define S(k) (cJSON_IsString(cJSON_GetObjectItemCaseSensitive(rec, k)) ? cJSON_GetObjectItemCaseSensitive(rec, k)->valuestring : "")
            const cJSON *st = cJSON_GetObjectItemCaseSensitive(rec, "status");
            printf("%s  %-12s %-6s %-34s %-40s %3d  %s\n", ts, S("username"), S("method"),
                   S("route"), S("resource"), cJSON_IsNumber(st) ? st->valueint : 0, S("remote"));
#undef S
        }
        const cJSON *next = cJSON_GetObjectItemCaseSensitive(j, "next_page_token");
        int more = cJSON_IsString(next) && shown < limit;
        if (more)
            snprintf(token, sizeof token, "%s", next->valuestring);
        cJSON_Delete(j);
        if (!more)
            break;
    }
    return 0;
}
#endif /* TALLY_HAVE_SERVER */
