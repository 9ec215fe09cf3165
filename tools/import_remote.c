/*
 * import_remote.c — `tally import ... --to URL`: a running Tally server as
 * the destination of import.h (import_dest_ops), over HTTP with libcurl:
 *
 *   experiments, runs, params, tags   MLflow REST (experiments/get-by-name,
 *                                     experiments/create, runs/create,
 *                                     runs/log-batch, runs/update, runs/delete)
 *   metric points                     POST tally/ingest, native frames encoded
 *                                     by server/native_frame.c
 *   artifacts                         PUT mlflow-artifacts/artifacts/<path>
 *   registered models                 MLflow REST registry endpoints
 *
 * The ledger is a client-side text file (default: next to the source,
 * "<source>.tally-import-ledger"), one record a line, fields separated by
 * tabs and %-escaped (%, tab, newline):
 *
 *   tally-import-ledger 1 <url> <source>     header: the pair it belongs to
 *   E <source exp id> <exp id> <deleted 0|1>  an experiment mapped
 *   R <source run id> <run id> <c|x|d> <uri> a run created (c; x: to be
 *                                            deleted once done) / done (d)
 *   P <model name>                           a model being imported
 *   M <model name>                           a model imported whole
 *
 * Records are appended and fdatasync'ed as they happen; the last record of
 * a key wins when the file is read back. Invariants:
 *  (1) A run is recorded created right after runs/create answers, before
 *      anything else is sent for it, so a re-run resumes it (params are
 *      sent again — same values are accepted —, tags upserted, points sent
 *      again: the engine collapses exact duplicates on read, artifacts
 *      overwritten) instead of making a second run. Only a crash between
 *      the server's answer and that record leaves an orphan run.
 *  (2) A run is recorded done after its points were acknowledged by the
 *      server and its artifacts uploaded (and, if deleted in the source,
 *      after runs/delete: the server takes points for active runs only, so
 *      a resumed 'x' run is restored first): done runs are never sent again.
 *  (3) A model is recorded P before registered-models/create and M after
 *      its last alias; a model found at P on a re-run is deleted on the
 *      server and imported again, so models are whole or absent.
 *  (4) Experiments that were deleted in the source are deleted on the
 *      server at close, after their runs were created (the server refuses
 *      runs in a deleted experiment).
 * What the REST API cannot carry (new run and experiment ids, server-set
 * times, truncated long values, statuses) is listed in docs/cli.md.
 */
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "import.h"
#include "native_frame.h"

#define FRAME_POINTS (256u * 1024u) /* points per ingest frame: ~6 MiB, under max_body_bytes */
#define PARAMS_PER_BATCH 100        /* runs/log-batch limits */
#define TAGS_PER_BATCH 100

typedef struct ledger_entry {
    char *key;   /* "<kind>\t<source key>" */
    char *val;   /* exp id / run id; NULL for models */
    char *uri;   /* runs: the artifact URI */
    char state;  /* runs: 'c' or 'd'; models: 'P' or 'M'; experiments: '0'/'1' deleted */
} ledger_entry;

struct import_remote {
    char base[1024];           /* the server URL without trailing '/' */
    char ledger_path[1200];
    FILE *ledger;
    pthread_mutex_t mu;        /* the ledger file and table */
    ledger_entry *tab;         /* open addressing, cap a power of two */
    size_t cap, n;
    pthread_key_t curl_key;    /* one curl handle per thread (connection reuse) */
};

/* ---- the ledger table ------------------------------------------------------ */

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static ledger_entry *slot(struct import_remote *r, const char *key)
{
    size_t i = hash_str(key) & (r->cap - 1);
    while (r->tab[i].key && strcmp(r->tab[i].key, key) != 0)
        i = (i + 1) & (r->cap - 1);
    return &r->tab[i];
}

static int grow(struct import_remote *r)
{
    size_t nc = r->cap ? r->cap * 2 : 1024;
    ledger_entry *old = r->tab;
    size_t oc = r->cap;
    r->tab = calloc(nc, sizeof *r->tab);
    if (!r->tab) {
        r->tab = old;
        return -1;
    }
    r->cap = nc;
    for (size_t i = 0; i < oc; i++)
        if (old[i].key)
            *slot(r, old[i].key) = old[i];
    free(old);
    return 0;
}

/* Sets key's entry (copies the strings). Caller holds mu. 0 or -1. */
static int put(struct import_remote *r, const char *key, const char *val, const char *uri,
               char state)
{
    if ((r->n + 1) * 2 > r->cap && grow(r) != 0)
        return -1;
    ledger_entry *e = slot(r, key);
    char *k = e->key ? e->key : strdup(key);
    char *v = val ? strdup(val) : NULL, *u = uri ? strdup(uri) : NULL;
    if (!k || (val && !v) || (uri && !u)) {
        if (!e->key)
            free(k);
        free(v);
        free(u);
        return -1;
    }
    if (!e->key)
        r->n++;
    free(e->val);
    free(e->uri);
    *e = (ledger_entry){k, v, u, state};
    return 0;
}

/* A copy of key's entry (strings into the caller's buffers) or 0. */
static int get(struct import_remote *r, const char *key, char *val, size_t vcap, char *uri,
               size_t ucap, char *state)
{
    pthread_mutex_lock(&r->mu);
    ledger_entry *e = slot(r, key);
    int found = e->key != NULL;
    if (found) {
        if (val)
            snprintf(val, vcap, "%s", e->val ? e->val : "");
        if (uri)
            snprintf(uri, ucap, "%s", e->uri ? e->uri : "");
        if (state)
            *state = e->state;
    }
    pthread_mutex_unlock(&r->mu);
    return found;
}

/* Writes s %-escaped (%, tab, newline, carriage return). */
static void put_escaped(FILE *f, const char *s)
{
    for (; s && *s; s++) {
        if (*s == '%' || *s == '\t' || *s == '\n' || *s == '\r')
            fprintf(f, "%%%02X", (unsigned char)*s);
        else
            fputc(*s, f);
    }
}

static void unescape(char *s)
{
    char *o = s;
    for (; *s; s++) {
        unsigned v;
        if (*s == '%' && sscanf(s + 1, "%2x", &v) == 1) {
            *o++ = (char)v;
            s += 2;
        } else {
            *o++ = *s;
        }
    }
    *o = 0;
}

/* Appends a record and syncs it, and sets the table. fields: n strings. */
static int record(import_ctx *c, char kind, const char *skey, const char *val, const char *uri,
                  char state)
{
    struct import_remote *r = c->remote;
    char key[2048];
    snprintf(key, sizeof key, "%c\t%s", kind, skey);
    pthread_mutex_lock(&r->mu);
    fputc(kind, r->ledger);
    fputc('\t', r->ledger);
    put_escaped(r->ledger, skey);
    if (kind == 'E' || kind == 'R') {
        fputc('\t', r->ledger);
        put_escaped(r->ledger, val);
        fprintf(r->ledger, "\t%c", state);
    }
    if (kind == 'R') {
        fputc('\t', r->ledger);
        put_escaped(r->ledger, uri);
    }
    fputc('\n', r->ledger);
    int bad = fflush(r->ledger) != 0 || fdatasync(fileno(r->ledger)) != 0;
    if (!bad)
        bad = put(r, key, val, uri, kind == 'P' || kind == 'M' ? kind : state) != 0;
    pthread_mutex_unlock(&r->mu);
    if (bad)
        fprintf(stderr, "tally import: writing the ledger %s: %s\n", r->ledger_path,
                strerror(errno ? errno : ENOMEM));
    return bad;
}

/* Reads the ledger file (creating it with its header). */
static int ledger_load(import_ctx *c, const char *url)
{
    struct import_remote *r = c->remote;
    FILE *f = fopen(r->ledger_path, "r");
    char *line = NULL;
    size_t lcap = 0;
    ssize_t len;
    int bad = 0, first = 1;
    while (f && !bad && (len = getline(&line, &lcap, f)) > 0) {
        if (line[len - 1] != '\n')
            break; /* a torn last record: never acknowledged */
        line[len - 1] = 0;
        if (first) {
            char want[2400];
            snprintf(want, sizeof want, "tally-import-ledger 1\t%s\t%s", url, c->source);
            if (strcmp(line, want) != 0) {
                fprintf(stderr,
                        "tally import: %s is the ledger of another import (%s); give another "
                        "file with --ledger\n",
                        r->ledger_path, line);
                bad = 1;
            }
            first = 0;
            continue;
        }
        char *fld[6] = {0};
        int nf = 0;
        for (char *p = line; nf < 6;) {
            fld[nf++] = p;
            char *t = strchr(p, '\t');
            if (!t)
                break;
            *t = 0;
            p = t + 1;
        }
        for (int i = 0; i < nf; i++)
            unescape(fld[i]);
        char kind = fld[0][0], key[2048];
        if (nf < 2 || fld[0][1] || !strchr("ERPM", kind)) {
            fprintf(stderr, "tally import: %s: unreadable record\n", r->ledger_path);
            bad = 1;
            break;
        }
        snprintf(key, sizeof key, "%c\t%s", kind == 'M' ? 'P' : kind, fld[1]);
        if (kind == 'E' && nf >= 4)
            bad = put(r, key, fld[2], NULL, fld[3][0]);
        else if (kind == 'R' && nf >= 5)
            bad = put(r, key, fld[2], fld[4], fld[3][0]);
        else if (kind == 'P' || kind == 'M')
            bad = put(r, key, NULL, NULL, kind);
        else
            bad = 1;
        if (bad)
            fprintf(stderr, "tally import: %s: unreadable record\n", r->ledger_path);
    }
    free(line);
    if (f)
        fclose(f);
    if (bad)
        return 1;
    r->ledger = fopen(r->ledger_path, "a");
    if (!r->ledger) {
        fprintf(stderr, "tally import: cannot open the ledger %s: %s\n", r->ledger_path,
                strerror(errno));
        return 1;
    }
    if (first) {
        fprintf(r->ledger, "tally-import-ledger 1\t%s\t%s\n", url, c->source);
        if (fflush(r->ledger) != 0 || fdatasync(fileno(r->ledger)) != 0) {
            fprintf(stderr, "tally import: writing the ledger %s: %s\n", r->ledger_path,
                    strerror(errno));
            return 1;
        }
    }
    return 0;
}

/* ---- HTTP ------------------------------------------------------------------ */

typedef struct grow_buf {
    char *p;
    size_t n, cap;
} grow_buf;

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
    grow_buf *b = arg;
    size_t k = size * nmemb;
    if (b->n + k + 1 > b->cap) {
        size_t nc = (b->n + k + 1) * 2;
        char *np = realloc(b->p, nc);
        if (!np)
            return 0;
        b->p = np;
        b->cap = nc;
    }
    memcpy(b->p + b->n, data, k);
    b->n += k;
    b->p[b->n] = 0;
    return k;
}

static CURL *thread_curl(struct import_remote *r)
{
    CURL *h = pthread_getspecific(r->curl_key);
    if (!h && (h = curl_easy_init()) != NULL)
        pthread_setspecific(r->curl_key, h);
    else if (h)
        curl_easy_reset(h);
    return h;
}

static void curl_destroy(void *h)
{
    curl_easy_cleanup(h);
}

/* One request: body from memory (body/len) or a file (in/in_len). *status
 * gets the HTTP status, *out (may be NULL) the answer (free it). 0, or 1
 * with a message in err when no answer came. */
static int http(import_ctx *c, const char *method, const char *url, const char *ctype,
                const void *body, size_t len, FILE *in, curl_off_t in_len, long *status,
                char **out, char *err, size_t cap)
{
    struct import_remote *r = c->remote;
    CURL *h = thread_curl(r);
    if (!h) {
        snprintf(err, cap, "out of memory");
        return 1;
    }
    struct curl_slist *hd = NULL;
    char line[1200];
    if (ctype) {
        snprintf(line, sizeof line, "Content-Type: %s", ctype);
        hd = curl_slist_append(hd, line);
    }
    const char *tok = getenv("MLFLOW_TRACKING_TOKEN");
    if (tok && *tok) {
        snprintf(line, sizeof line, "Authorization: Bearer %.1000s", tok);
        hd = curl_slist_append(hd, line);
    } else if (getenv("MLFLOW_TRACKING_USERNAME")) {
        curl_easy_setopt(h, CURLOPT_USERNAME, getenv("MLFLOW_TRACKING_USERNAME"));
        curl_easy_setopt(h, CURLOPT_PASSWORD, getenv("MLFLOW_TRACKING_PASSWORD"));
        curl_easy_setopt(h, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
    }
    grow_buf b = {0};
    char ebuf[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(h, CURLOPT_URL, url);
    if (in) {
        curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(h, CURLOPT_READDATA, in);
        curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, in_len);
    } else if (body) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    }
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, ebuf);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 600L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    CURLcode rc = curl_easy_perform(h);
    curl_slist_free_all(hd);
    if (rc != CURLE_OK) {
        snprintf(err, cap, "%s: %s", url, ebuf[0] ? ebuf : curl_easy_strerror(rc));
        free(b.p);
        return 1;
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
    if (out)
        *out = b.p;
    else
        free(b.p);
    return 0;
}

/* A JSON call to <base>/api/2.0/mlflow/<rel> (GET: rel carries the query).
 * 0 with *out (may be NULL: not wanted) on 200; else a TALLY_STORE_* code
 * from the answer (404 ENOTFOUND, RESOURCE_ALREADY_EXISTS EEXISTS, other
 * EINVAL; no answer EIO) with the server's message in err. */
static int api(import_ctx *c, const char *method, const char *rel, cJSON *body, cJSON **out,
               char *err, size_t cap)
{
    char url[4096];
    snprintf(url, sizeof url, "%s/api/2.0/mlflow/%s", c->remote->base, rel);
    char *text = body ? cJSON_PrintUnformatted(body) : NULL;
    if (body && !text) {
        snprintf(err, cap, "out of memory");
        return TALLY_STORE_ENOMEM;
    }
    long status = 0;
    char *ans = NULL;
    int rc = http(c, method, url, body ? "application/json" : NULL, text, text ? strlen(text) : 0,
                  NULL, 0, &status, &ans, err, cap);
    free(text);
    if (rc)
        return TALLY_STORE_EIO;
    cJSON *j = ans ? cJSON_Parse(ans) : NULL;
    if (status == 200) {
        free(ans);
        if (out)
            *out = j;
        else
            cJSON_Delete(j);
        return 0;
    }
    const cJSON *code = cJSON_GetObjectItemCaseSensitive(j, "error_code");
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(j, "message");
    snprintf(err, cap, "%s %s: HTTP %ld %s: %s", method, rel, status,
             cJSON_IsString(code) ? code->valuestring : "",
             cJSON_IsString(msg) ? msg->valuestring : (ans ? ans : ""));
    rc = status == 404 ? TALLY_STORE_ENOTFOUND
         : cJSON_IsString(code) && strcmp(code->valuestring, "RESOURCE_ALREADY_EXISTS") == 0
             ? TALLY_STORE_EEXISTS
             : TALLY_STORE_EINVAL;
    cJSON_Delete(j);
    free(ans);
    return rc;
}

static cJSON *kv_array(const tally_kv *kv, size_t n)
{
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; a && i < n; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "key", kv[i].key);
        cJSON_AddStringToObject(o, "value", kv[i].value ? kv[i].value : "");
        cJSON_AddItemToArray(a, o);
    }
    return a;
}

static const char *jstr(const cJSON *o, const char *a, const char *b)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, a);
    if (b)
        x = cJSON_GetObjectItemCaseSensitive(x, b);
    return cJSON_IsString(x) ? x->valuestring : NULL;
}

/* ---- experiments and runs --------------------------------------------------- */

/* The experiment's id on the server: an experiment of that name, else a new
 * one. Its tags are set, then it is recorded (a failure on the way is
 * redone by the re-run). */
static int remote_experiment(import_ctx *c, const tally_import_experiment *in, int64_t *id,
                             char *err, size_t cap)
{
    char val[64], key[2048], rel[2048];
    snprintf(key, sizeof key, "E\t%s", in->source_id);
    if (get(c->remote, key, val, sizeof val, NULL, 0, NULL)) {
        *id = strtoll(val, NULL, 10);
        return 0; /* mapped (and tagged) by an earlier run of the import */
    }
    cJSON *ans = NULL;
    char *q = curl_easy_escape(NULL, in->name, 0);
    snprintf(rel, sizeof rel, "experiments/get-by-name?experiment_name=%s", q ? q : "");
    curl_free(q);
    int rc = api(c, "GET", rel, NULL, &ans, err, cap), created = 0;
    if (rc == TALLY_STORE_ENOTFOUND) {
        cJSON *b = cJSON_CreateObject();
        cJSON_AddStringToObject(b, "name", in->name);
        if (in->artifact_location && *in->artifact_location)
            cJSON_AddStringToObject(b, "artifact_location", in->artifact_location);
        rc = api(c, "POST", "experiments/create", b, &ans, err, cap);
        cJSON_Delete(b);
        created = 1;
    }
    const char *eid = rc ? NULL
                         : created ? jstr(ans, "experiment_id", NULL)
                                   : jstr(ans, "experiment", "experiment_id");
    if (!rc && !eid) {
        snprintf(err, cap, "no experiment_id in the server's answer");
        rc = TALLY_STORE_EIO;
    }
    if (!rc)
        snprintf(val, sizeof val, "%.40s", eid);
    cJSON_Delete(ans);
    for (size_t i = 0; rc == 0 && i < in->n_tags; i++) {
        cJSON *b = cJSON_CreateObject();
        cJSON_AddStringToObject(b, "experiment_id", val);
        cJSON_AddStringToObject(b, "key", in->tags[i].key);
        cJSON_AddStringToObject(b, "value", in->tags[i].value ? in->tags[i].value : "");
        rc = api(c, "POST", "experiments/set-experiment-tag", b, NULL, err, cap);
        cJSON_Delete(b);
    }
    if (rc)
        return rc;
    *id = strtoll(val, NULL, 10);
    /* deleted at close, after its runs (invariant 4) — only one made here */
    return record(c, 'E', in->source_id, val, NULL,
                  created && in->lifecycle == TALLY_LIFECYCLE_DELETED ? '1' : '0')
               ? TALLY_STORE_EIO
               : 0;
}

/* Everything of a run after runs/create (invariant 1: safe to repeat). */
static int send_run_body(import_ctx *c, const tally_import_run *in, const char *run_id, char *err,
                         size_t cap)
{
    int rc = 0;
    size_t np = 0, nt = 0;
    while (rc == 0 && (np < in->n_params || nt < in->n_tags)) {
        size_t kp = in->n_params - np > PARAMS_PER_BATCH ? PARAMS_PER_BATCH : in->n_params - np;
        size_t kt = in->n_tags - nt > TAGS_PER_BATCH ? TAGS_PER_BATCH : in->n_tags - nt;
        cJSON *b = cJSON_CreateObject();
        cJSON_AddStringToObject(b, "run_id", run_id);
        cJSON_AddItemToObject(b, "params", kv_array(in->params + np, kp));
        cJSON_AddItemToObject(b, "tags", kv_array(in->tags + nt, kt));
        rc = api(c, "POST", "runs/log-batch", b, NULL, err, cap);
        cJSON_Delete(b);
        np += kp;
        nt += kt;
    }
    if (rc == 0) {
        cJSON *b = cJSON_CreateObject();
        cJSON_AddStringToObject(b, "run_id", run_id);
        cJSON_AddStringToObject(b, "status", tally_run_status_name(in->status));
        if (in->has_end_time)
            cJSON_AddNumberToObject(b, "end_time", (double)in->end_time_ms);
        rc = api(c, "POST", "runs/update", b, NULL, err, cap);
        cJSON_Delete(b);
    }
    return rc;
}

/* runs/<action> {run_id}: delete or restore. */
static int run_action(import_ctx *c, const char *action, const char *run_id, char *err,
                      size_t cap)
{
    char rel[64];
    snprintf(rel, sizeof rel, "runs/%s", action);
    cJSON *b = cJSON_CreateObject();
    cJSON_AddStringToObject(b, "run_id", run_id);
    int rc = api(c, "POST", rel, b, NULL, err, cap);
    cJSON_Delete(b);
    return rc;
}

/* A run to be deleted that an interrupted import deleted already is
 * restored, so its points can be sent again (the server takes points for
 * active runs only). */
static int reopen_run(import_ctx *c, const char *run_id, char *err, size_t cap)
{
    char rel[128];
    cJSON *ans = NULL;
    snprintf(rel, sizeof rel, "runs/get?run_id=%s", run_id);
    int rc = api(c, "GET", rel, NULL, &ans, err, cap);
    const cJSON *run = cJSON_GetObjectItemCaseSensitive(ans, "run");
    const char *life = jstr(cJSON_GetObjectItemCaseSensitive(run, "info"), "lifecycle_stage",
                            NULL);
    if (rc == 0 && life && strcmp(life, "deleted") == 0)
        rc = run_action(c, "restore", run_id, err, cap);
    cJSON_Delete(ans);
    return rc;
}

static int remote_run(import_ctx *c, const tally_import_run *in, tally_import_state *state,
                      char run_id[TALLY_RUN_ID_LEN + 1], char *uri, size_t uri_cap, char *err,
                      size_t cap)
{
    char key[2048], st = 0;
    snprintf(key, sizeof key, "R\t%s", in->source_run_id);
    if (get(c->remote, key, run_id, TALLY_RUN_ID_LEN + 1, uri, uri_cap, &st)) {
        *state = st == 'd' ? TALLY_IMPORT_DONE : TALLY_IMPORT_RESUME;
        if (st == 'd')
            return 0;
        int rc = st == 'x' ? reopen_run(c, run_id, err, cap) : 0;
        return rc ? rc : send_run_body(c, in, run_id, err, cap);
    }
    cJSON *b = cJSON_CreateObject(), *ans = NULL;
    char num[32];
    snprintf(num, sizeof num, "%lld", (long long)in->experiment_id);
    cJSON_AddStringToObject(b, "experiment_id", num);
    cJSON_AddStringToObject(b, "user_id", in->user_id ? in->user_id : "");
    cJSON_AddNumberToObject(b, "start_time", (double)in->start_time_ms);
    if (in->run_name && *in->run_name)
        cJSON_AddStringToObject(b, "run_name", in->run_name);
    int rc = api(c, "POST", "runs/create", b, &ans, err, cap);
    cJSON_Delete(b);
    if (rc)
        return rc;
    const cJSON *info = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(ans, "run"), "info");
    const char *id = jstr(info, "run_id", NULL), *u = jstr(info, "artifact_uri", NULL);
    if (!id || strlen(id) > TALLY_RUN_ID_LEN) {
        cJSON_Delete(ans);
        snprintf(err, cap, "runs/create: no run id in the server's answer");
        return TALLY_STORE_EIO;
    }
    snprintf(run_id, TALLY_RUN_ID_LEN + 1, "%s", id);
    snprintf(uri, uri_cap, "%s", u ? u : "");
    cJSON_Delete(ans);
    if (record(c, 'R', in->source_run_id, run_id, uri,
               in->lifecycle == TALLY_LIFECYCLE_DELETED ? 'x' : 'c') != 0)
        return TALLY_STORE_EIO;
    *state = TALLY_IMPORT_NEW;
    return send_run_body(c, in, run_id, err, cap);
}

static int remote_run_finish(import_ctx *c, const char *source_run_id)
{
    char key[2048], run_id[TALLY_RUN_ID_LEN + 1], uri[2048], st = 0, err[1024];
    snprintf(key, sizeof key, "R\t%s", source_run_id);
    if (!get(c->remote, key, run_id, sizeof run_id, uri, sizeof uri, &st)) {
        fprintf(stderr, "tally import: run %s finished but never created\n", source_run_id);
        return 1;
    }
    if (st == 'x' && run_action(c, "delete", run_id, err, sizeof err) != 0) {
        fprintf(stderr, "tally import: run %s: %s\n", source_run_id, err);
        return 1;
    }
    return record(c, 'R', source_run_id, run_id, uri, 'd');
}

/* ---- metric points ---------------------------------------------------------- */

static int post_frame(import_ctx *c, const tally_series_batch *s, size_t n)
{
    uint8_t *frame = NULL;
    size_t len = 0;
    char err[1024], url[1200];
    int rc = tally_frame_encode(s, n, 0, &frame, &len);
    if (rc) {
        fprintf(stderr, "tally import: encoding an ingest frame: %s\n", tally_strerror(rc));
        return 1;
    }
    snprintf(url, sizeof url, "%s/api/2.0/tally/ingest", c->remote->base);
    long status = 0;
    char *ans = NULL;
    rc = http(c, "POST", url, "application/octet-stream", frame, len, NULL, 0, &status, &ans,
              err, sizeof err);
    tally_frame_buf_free(frame);
    if (rc || status != 200) {
        if (rc)
            fprintf(stderr, "tally import: sending metric points: %s\n", err);
        else
            fprintf(stderr, "tally import: sending metric points of run %.*s: HTTP %ld %s\n",
                    (int)s->run_id_len, s->run_id, status, ans ? ans : "");
        free(ans);
        return 1;
    }
    free(ans);
    return 0;
}

/* The series in frames of at most FRAME_POINTS points and 64 series, long
 * series split; series without points are skipped. */
static int remote_append(import_ctx *c, const tally_series_batch *b, size_t n)
{
    tally_series_batch part[64];
    size_t np = 0, pts = 0;
    for (size_t i = 0; i < n; i++) {
        for (uint32_t off = 0; off < b[i].n_points;) {
            uint32_t k = b[i].n_points - off;
            if (k > FRAME_POINTS - pts)
                k = (uint32_t)(FRAME_POINTS - pts);
            part[np] = b[i];
            part[np].n_points = k;
            part[np].steps = b[i].steps + off;
            part[np].timestamps_ms = b[i].timestamps_ms + off;
            part[np].values = b[i].values + off;
            np++;
            pts += k;
            off += k;
            if (np == 64 || pts == FRAME_POINTS) {
                if (post_frame(c, part, np) != 0)
                    return 1;
                np = pts = 0;
            }
        }
    }
    return np ? post_frame(c, part, np) : 0;
}

/* ---- artifacts ----------------------------------------------------------------- */

/* rel with every path segment URL-escaped, into out. */
static int escape_path(const char *rel, char *out, size_t cap)
{
    size_t o = 0;
    out[0] = 0;
    while (*rel) {
        size_t seg = strcspn(rel, "/");
        char *e = curl_easy_escape(NULL, rel, (int)seg);
        if (!e)
            return -1;
        int w = snprintf(out + o, cap - o, "%s%s", o ? "/" : "", e);
        curl_free(e);
        if (w < 0 || (size_t)w >= cap - o)
            return -1;
        o += (size_t)w;
        rel += seg;
        while (*rel == '/')
            rel++;
    }
    return 0;
}

static int upload_file(import_ctx *c, const char *path, const char *rel, uint64_t size)
{
    char esc[8192], url[9300], err[1024];
    if (escape_path(rel, esc, sizeof esc) != 0) {
        fprintf(stderr, "tally import: artifact path too long: %s\n", rel);
        return 1;
    }
    snprintf(url, sizeof url, "%s/api/2.0/mlflow-artifacts/artifacts/%s", c->remote->base, esc);
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "tally import: %s: %s\n", path, strerror(errno));
        return 1;
    }
    long status = 0;
    char *ans = NULL;
    int rc = http(c, "PUT", url, "application/octet-stream", NULL, 0, f, (curl_off_t)size,
                  &status, &ans, err, sizeof err);
    fclose(f);
    if (rc || status != 200) {
        fprintf(stderr, "tally import: uploading %s: %s\n", path,
                rc ? err : (ans ? ans : "no answer"));
        free(ans);
        return 1;
    }
    free(ans);
    atomic_fetch_add(&c->n_artifact_files, 1);
    atomic_fetch_add(&c->n_artifact_bytes, size);
    return 0;
}

static int remote_copy_tree(import_ctx *c, const char *src, const char *rel)
{
    DIR *d = opendir(src);
    if (!d) {
        fprintf(stderr, "tally import: cannot read %s: %s\n", src, strerror(errno));
        return 1;
    }
    struct dirent *de;
    int bad = 0;
    char s[4096], t[4096];
    while (!bad && (de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (snprintf(s, sizeof s, "%s/%s", src, de->d_name) >= (int)sizeof s ||
            snprintf(t, sizeof t, "%s/%s", rel, de->d_name) >= (int)sizeof t) {
            fprintf(stderr, "tally import: path too long under %s\n", src);
            bad = 1;
            break;
        }
        struct stat st;
        if (stat(s, &st) != 0) {
            fprintf(stderr, "tally import: %s: %s\n", s, strerror(errno));
            bad = 1;
        } else if (S_ISDIR(st.st_mode)) {
            bad = remote_copy_tree(c, s, t);
        } else if (S_ISREG(st.st_mode)) {
            bad = upload_file(c, s, t, (uint64_t)st.st_size);
        }
    }
    closedir(d);
    return bad;
}

/* ---- registered models ---------------------------------------------------------- */

static int cmp_version(const void *a, const void *b)
{
    int64_t x = ((const tally_import_version *)a)->version;
    int64_t y = ((const tally_import_version *)b)->version;
    return (x > y) - (x < y);
}

static cJSON *name_body(const char *name)
{
    cJSON *b = cJSON_CreateObject();
    cJSON_AddStringToObject(b, "name", name);
    return b;
}

/* Creates version number n (v, or a placeholder deleted at once when the
 * source has no visible version n), checking the server gave that number. */
static int put_version(import_ctx *c, const tally_import_model *m, const tally_import_version *v,
                       int64_t n, char *err, size_t cap)
{
    int visible = v && v->stage != TALLY_STAGE_DELETED;
    cJSON *b = name_body(m->name), *ans = NULL;
    char run_id[TALLY_RUN_ID_LEN + 1] = "", key[2048], num[32];
    if (visible) {
        cJSON_AddStringToObject(b, "source", v->source ? v->source : "");
        if (v->run_id && *v->run_id) {
            snprintf(key, sizeof key, "R\t%s", v->run_id);
            if (!get(c->remote, key, run_id, sizeof run_id, NULL, 0, NULL))
                snprintf(run_id, sizeof run_id, "%.32s", v->run_id);
            cJSON_AddStringToObject(b, "run_id", run_id);
        }
        if (v->run_link && *v->run_link)
            cJSON_AddStringToObject(b, "run_link", v->run_link);
        if (v->description && *v->description)
            cJSON_AddStringToObject(b, "description", v->description);
        cJSON_AddItemToObject(b, "tags", kv_array(v->tags, v->n_tags));
    } else {
        /* a placeholder the server accepts (not a local path); deleted at once
         * and never shown, as MLflow redacts a deleted version's source */
        cJSON_AddStringToObject(b, "source", "tally-import:/deleted-version");
    }
    int rc = api(c, "POST", "model-versions/create", b, &ans, err, cap);
    cJSON_Delete(b);
    if (rc)
        return rc;
    const char *got = jstr(ans, "model_version", "version");
    snprintf(num, sizeof num, "%lld", (long long)n);
    if (!got || strcmp(got, num) != 0) {
        snprintf(err, cap, "the server numbered version %s as %s", num, got ? got : "?");
        cJSON_Delete(ans);
        return TALLY_STORE_EINVAL;
    }
    cJSON_Delete(ans);
    b = name_body(m->name);
    cJSON_AddStringToObject(b, "version", num);
    if (!visible) {
        rc = api(c, "DELETE", "model-versions/delete", b, NULL, err, cap);
    } else if (v->stage != TALLY_STAGE_NONE) {
        cJSON_AddStringToObject(b, "stage", tally_stage_name(v->stage));
        cJSON_AddStringToObject(b, "archive_existing_versions", "false");
        rc = api(c, "POST", "model-versions/transition-stage", b, NULL, err, cap);
    }
    cJSON_Delete(b);
    return rc;
}

static int remote_model(import_ctx *c, tally_import_model *m, int *written, char *err,
                        size_t cap)
{
    char key[2048], st = 0;
    snprintf(key, sizeof key, "P\t%s", m->name);
    *written = 0;
    int found = get(c->remote, key, NULL, 0, NULL, 0, &st), rc;
    if (found && st == 'M')
        return 0; /* invariant (3) */
    if (found) { /* half imported by an interrupted run: start it again */
        cJSON *b = name_body(m->name);
        rc = api(c, "DELETE", "registered-models/delete", b, NULL, err, cap);
        cJSON_Delete(b);
        if (rc && rc != TALLY_STORE_ENOTFOUND)
            return rc;
    } else if (record(c, 'P', m->name, NULL, NULL, 0) != 0) {
        return TALLY_STORE_EIO;
    }
    cJSON *b = name_body(m->name);
    if (m->description && *m->description)
        cJSON_AddStringToObject(b, "description", m->description);
    cJSON_AddItemToObject(b, "tags", kv_array(m->tags, m->n_tags));
    rc = api(c, "POST", "registered-models/create", b, NULL, err, cap);
    cJSON_Delete(b);
    if (rc == TALLY_STORE_EEXISTS)
        snprintf(err, cap,
                 "registered model '%.300s' already exists in the destination and was not "
                 "imported from this source: rename or delete it there first",
                 m->name);
    tally_import_version *vs = NULL;
    if (!rc && m->n_versions) {
        vs = malloc(m->n_versions * sizeof *vs);
        if (!vs) {
            snprintf(err, cap, "out of memory");
            rc = TALLY_STORE_ENOMEM;
        } else {
            memcpy(vs, m->versions, m->n_versions * sizeof *vs);
            qsort(vs, m->n_versions, sizeof *vs, cmp_version);
        }
    }
    size_t i = 0;
    int64_t top = vs ? vs[m->n_versions - 1].version : 0;
    for (int64_t n = 1; rc == 0 && n <= top; n++) {
        while (i < m->n_versions && vs[i].version < n)
            i++;
        rc = put_version(c, m, i < m->n_versions && vs[i].version == n ? &vs[i] : NULL, n, err,
                         cap);
    }
    free(vs);
    for (size_t k = 0; rc == 0 && k < m->n_aliases; k++) {
        char num[32];
        snprintf(num, sizeof num, "%lld", (long long)m->aliases[k].version);
        b = name_body(m->name);
        cJSON_AddStringToObject(b, "alias", m->aliases[k].alias);
        cJSON_AddStringToObject(b, "version", num);
        rc = api(c, "POST", "registered-models/alias", b, NULL, err, cap);
        cJSON_Delete(b);
    }
    if (rc == 0 && record(c, 'M', m->name, NULL, NULL, 0) != 0)
        rc = TALLY_STORE_EIO;
    *written = rc == 0;
    return rc;
}

/* ---- open and close ---------------------------------------------------------------- */

/* Deletes, once their runs exist, the experiments deleted in the source
 * (invariant 4); an experiment deleted already is left alone. */
static int delete_experiments(import_ctx *c)
{
    struct import_remote *r = c->remote;
    int bad = 0;
    for (size_t i = 0; !bad && i < r->cap; i++) {
        ledger_entry *e = &r->tab[i];
        if (!e->key || e->key[0] != 'E' || e->state != '1')
            continue;
        char rel[256], err[1024];
        cJSON *ans = NULL;
        snprintf(rel, sizeof rel, "experiments/get?experiment_id=%s", e->val);
        int rc = api(c, "GET", rel, NULL, &ans, err, sizeof err);
        const char *life = rc ? NULL : jstr(cJSON_GetObjectItemCaseSensitive(ans, "experiment"),
                                            "lifecycle_stage", NULL);
        if (!rc && life && strcmp(life, "deleted") != 0) {
            cJSON *b = cJSON_CreateObject();
            cJSON_AddStringToObject(b, "experiment_id", e->val);
            rc = api(c, "POST", "experiments/delete", b, NULL, err, sizeof err);
            cJSON_Delete(b);
        }
        cJSON_Delete(ans);
        if (rc) {
            fprintf(stderr, "tally import: deleting experiment %s: %s\n", e->val, err);
            bad = 1;
        }
    }
    return bad;
}

static int remote_close(import_ctx *c)
{
    struct import_remote *r = c->remote;
    if (!r)
        return 0;
    int rc = atomic_load(&c->failed) ? 0 : delete_experiments(c);
    if (r->ledger && fclose(r->ledger) != 0)
        rc = 1;
    for (size_t i = 0; i < r->cap; i++) {
        free(r->tab[i].key);
        free(r->tab[i].val);
        free(r->tab[i].uri);
    }
    free(r->tab);
    CURL *h = pthread_getspecific(r->curl_key);
    if (h)
        curl_easy_cleanup(h);
    pthread_key_delete(r->curl_key);
    pthread_mutex_destroy(&r->mu);
    pthread_mutex_destroy(&c->done_mu);
    free(r);
    c->remote = NULL;
    curl_global_cleanup();
    return rc;
}

static const import_dest_ops remote_ops = {
    .experiment = remote_experiment,
    .run = remote_run,
    .append = remote_append,
    .copy_tree = remote_copy_tree,
    .run_finish = remote_run_finish,
    .model = remote_model,
    .close = remote_close,
};

int import_open_remote(import_ctx *c, const char *url, const char *ledger, const char *source,
                       int threads)
{
    memset(c, 0, sizeof *c);
    pthread_mutex_init(&c->done_mu, NULL);
    c->ops = &remote_ops;
    c->threads = threads < 1 ? 1 : threads;
    struct import_remote *r = calloc(1, sizeof *r);
    if (!r || grow(r) != 0) {
        free(r);
        fprintf(stderr, "tally import: out of memory\n");
        return 1;
    }
    c->remote = r;
    pthread_mutex_init(&r->mu, NULL);
    pthread_key_create(&r->curl_key, curl_destroy);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    size_t bl = strlen(url);
    while (bl && url[bl - 1] == '/')
        bl--;
    if (bl >= sizeof r->base ||
        snprintf(c->source, sizeof c->source, "%s", source) >= (int)sizeof c->source ||
        snprintf(r->ledger_path, sizeof r->ledger_path, "%s", ledger) >=
            (int)sizeof r->ledger_path) {
        fprintf(stderr, "tally import: URL or path too long\n");
        remote_close(c);
        return 1;
    }
    memcpy(r->base, url, bl);
    r->base[bl] = 0;
    char err[1024];
    int rc = api(c, "GET", "experiments/search?max_results=1", NULL, NULL, err, sizeof err);
    if (rc || ledger_load(c, r->base) != 0) {
        if (rc)
            fprintf(stderr, "tally import: %s is not an MLflow tracking server that answers: %s\n",
                    r->base, err);
        remote_close(c);
        return 1;
    }
    return 0;
}
