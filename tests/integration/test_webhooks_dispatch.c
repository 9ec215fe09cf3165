/*
 * test_webhooks_dispatch.c — the webhook dispatcher (server/webhooks.h) in
 * process, driven the way the model registry drives it: through the
 * tally_server.registry_event hook. A libmicrohttpd receiver in the test
 * records what arrives. Checks: only ACTIVE, non-deleted subscribers of the
 * event get it; the body carries the event's data; the signature verifies;
 * an event nobody subscribes to queues nothing; a delivery that waited long
 * is sent with a fresh X-MLflow-Timestamp; deliveries pending when the
 * dispatcher stops (with an attempt in flight) survive closing and
 * reopening the store and are delivered by the next dispatcher.
 */
#include <microhttpd.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include "app.h"
#include "store.h"
#include "store_webhooks.h"
#include "test.h"
#include "webhooks.h"

/* ------------------------------------------------------------------------ */
/* Receiver                                                                  */
/* ------------------------------------------------------------------------ */

#define MAX_SEEN 256

typedef struct seen {
    char path[64];
    char id[64];
    char ts[32];
    char sig[64];
    char body[2048];
} seen;

static struct {
    pthread_mutex_t mu;
    seen v[MAX_SEEN];
    int n;
    int delay_ms;                /* before answering */
} rcv = {.mu = PTHREAD_MUTEX_INITIALIZER};

typedef struct upload {
    char body[2048];
    size_t len;
} upload;

static void copy_header(struct MHD_Connection *c, const char *name, char *out, size_t cap)
{
    const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
    snprintf(out, cap, "%s", v ? v : "");
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size, void **state)
{
    (void)cls, (void)method, (void)version;
    upload *u = *state;
    if (!u) {
        *state = calloc(1, sizeof *u);
        return *state ? MHD_YES : MHD_NO;
    }
    if (*upload_data_size) {
        size_t room = sizeof u->body - 1 - u->len;
        size_t n = *upload_data_size < room ? *upload_data_size : room;
        memcpy(u->body + u->len, upload_data, n);
        u->len += n;
        *upload_data_size = 0;
        return MHD_YES;
    }
    pthread_mutex_lock(&rcv.mu);
    int delay = rcv.delay_ms;
    if (rcv.n < MAX_SEEN) {
        seen *s = &rcv.v[rcv.n++];
        snprintf(s->path, sizeof s->path, "%s", url);
        copy_header(c, "X-MLflow-Delivery-Id", s->id, sizeof s->id);
        copy_header(c, "X-MLflow-Timestamp", s->ts, sizeof s->ts);
        copy_header(c, "X-MLflow-Signature", s->sig, sizeof s->sig);
        memcpy(s->body, u->body, u->len + 1);
    }
    pthread_mutex_unlock(&rcv.mu);
    /* Sleep in steps so that setting delay_ms back to 0 releases it. */
    for (int slept = 0; slept < delay; slept += 10) {
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
        pthread_mutex_lock(&rcv.mu);
        int still = rcv.delay_ms;
        pthread_mutex_unlock(&rcv.mu);
        if (!still)
            break;
    }
    struct MHD_Response *r = MHD_create_response_from_buffer(2, (void *)"ok", MHD_RESPMEM_PERSISTENT);
    enum MHD_Result rc = MHD_queue_response(c, 200, r);
    MHD_destroy_response(r);
    return rc;
}

static void on_done(void *cls, struct MHD_Connection *c, void **state,
                    enum MHD_RequestTerminationCode code)
{
    (void)cls, (void)c, (void)code;
    free(*state);
    *state = NULL;
}

static struct MHD_Daemon *receiver_start(int *port)
{
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION, 0, NULL, NULL,
        on_request, NULL, MHD_OPTION_NOTIFY_COMPLETED, on_done, NULL,
        MHD_OPTION_LISTENING_ADDRESS_REUSE, 1, MHD_OPTION_END);
    ASSERT(d != NULL);
    *port = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT)->port;
    return d;
}

static int seen_count(const char *path)
{
    pthread_mutex_lock(&rcv.mu);
    int n = 0;
    for (int i = 0; i < rcv.n; i++)
        n += !path || strcmp(rcv.v[i].path, path) == 0;
    pthread_mutex_unlock(&rcv.mu);
    return n;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* What a registry handler does (api_registry.h): queue the event inside a
 * store write scope, commit it (commit = 1) or roll it back, then wake the
 * dispatcher after a commit. */
static void fire_scoped(tally_server *srv, int commit, const char *entity, const char *action,
                        const char *data)
{
    char err[512];
    ASSERT_OK(tally_store_scope_begin(srv->store, err, sizeof err));
    ASSERT_OK(srv->registry_event(srv->registry_event_ctx, entity, action, data, err,
                                  sizeof err));
    ASSERT_OK(tally_store_scope_end(srv->store, commit, err, sizeof err));
    if (commit)
        srv->registry_events_committed(srv->registry_event_ctx);
}

static void fire(tally_server *srv, const char *entity, const char *action, const char *data)
{
    fire_scoped(srv, 1, entity, action, data);
}

/* Waits up to 20 s for cond() to hold. */
#define WAIT_FOR(cond)                                                                     \
    do {                                                                                   \
        int waited_ = 0;                                                                   \
        while (!(cond)) {                                                                  \
            if (waited_ > 20000)                                                           \
                TEST_FAIL_("timed out waiting for %s", #cond);                             \
            sleep_ms(10);                                                                  \
            waited_ += 10;                                                                 \
        }                                                                                  \
    } while (0)

/* ------------------------------------------------------------------------ */

static char dir[4096], dbpath[4200];

static tally_store *open_store(void)
{
    tally_store *s = NULL;
    char err[512] = "";
    int rc = tally_store_open(dbpath, &s, err, sizeof err);
    if (rc != 0)
        fprintf(stderr, "open: %s\n", err);
    ASSERT_EQ(rc, 0);
    return s;
}

static void make_webhook(tally_store *s, const char *url, const char *secret, const char *entity,
                         const char *action, int status, char id_out[TALLY_WEBHOOK_ID_LEN + 1])
{
    tally_webhook_event ev = {entity, action};
    tally_webhook w;
    memset(&w, 0, sizeof w);
    tally_webhook_uuid4(w.webhook_id);
    w.name = "h";
    w.description = "";
    w.url = url;
    w.secret = secret;
    w.events = &ev;
    w.n_events = 1;
    w.status = status;
    w.creation_ms = w.last_updated_ms = 1;
    char err[512];
    ASSERT_OK(tally_store_webhook_create(s, &w, err, sizeof err));
    memcpy(id_out, w.webhook_id, sizeof w.webhook_id);
}

static int64_t count(tally_store *s, int state)
{
    int64_t n = -1;
    char err[256];
    ASSERT_OK(tally_store_webhook_count(s, state, &n, err, sizeof err));
    return n;
}

static void test_registry_events(void)
{
    test_tmpdir(dir, sizeof dir, "webhooks-dispatch");
    snprintf(dbpath, sizeof dbpath, "%s/meta.db", dir);
    tally_store *s = open_store();
    int port;
    struct MHD_Daemon *d = receiver_start(&port);
    char url_a[128], url_b[128], url_c[128], url_d[128];
    snprintf(url_a, sizeof url_a, "http://127.0.0.1:%d/a", port);
    snprintf(url_b, sizeof url_b, "http://127.0.0.1:%d/b", port);
    snprintf(url_c, sizeof url_c, "http://127.0.0.1:%d/c", port);
    snprintf(url_d, sizeof url_d, "http://127.0.0.1:%d/d", port);
    char a[40], b[40], c[40], del[40];
    make_webhook(s, url_a, "s3cret", "model_version", "created", TALLY_WEBHOOK_ACTIVE, a);
    make_webhook(s, url_b, "", "registered_model", "created", TALLY_WEBHOOK_ACTIVE, b);
    make_webhook(s, url_c, "x", "model_version", "created", TALLY_WEBHOOK_DISABLED, c);
    make_webhook(s, url_d, "x", "model_version", "created", TALLY_WEBHOOK_ACTIVE, del);
    char err[512];
    ASSERT_OK(tally_store_webhook_delete(s, del, 2, err, sizeof err));

    tally_webhook_policy p;
    tally_webhook_policy_defaults(&p);
    p.workers = 2;
    p.timeout_ms = 5000;
    p.backoff_base_ms = 20;
    p.jitter_ms = 0;
    /* Secrets at rest (secret_box.h): the key is created at this first start
     * and the secrets stored before it are sealed. */
    snprintf(p.secret_key_file, sizeof p.secret_key_file, "%.1000s/webhook-secret.key", dir);
    tally_webhooks *w = NULL;
    ASSERT_OK(tally_webhooks_start(s, &p, &w, err, sizeof err));
    {
        tally_arena *ka = tally_arena_new();
        tally_webhook got;
        ASSERT_OK(tally_store_webhook_get(s, a, ka, &got, err, sizeof err));
        ASSERT(strncmp(got.secret, "tally-sealed:v1:", 16) == 0);
        ASSERT(strstr(got.secret, "s3cret") == NULL);
        ASSERT_OK(tally_store_webhook_get(s, b, ka, &got, err, sizeof err));
        ASSERT_STR_EQ(got.secret, ""); /* no secret: nothing to seal */
        char *plain = NULL;
        ASSERT_OK(tally_store_webhook_get(s, a, ka, &got, err, sizeof err));
        ASSERT_OK(tally_webhooks_open_secret(w, got.secret, &plain));
        ASSERT_STR_EQ(plain, "s3cret");
        free(plain);
        tally_arena_free(ka);
    }

    /* What server.c does, then what a registry handler does. */
    tally_server srv;
    memset(&srv, 0, sizeof srv);
    srv.store = s;
    srv.registry_event = tally_webhooks_registry_event;
    srv.registry_events_committed = tally_webhooks_events_committed;
    srv.registry_event_ctx = w;
    const char *data = "{\"name\": \"m\", \"version\": \"1\", \"source\": \"s3://b/m\", "
                       "\"run_id\": null, \"tags\": {}, \"description\": null}";
    fire(&srv, "model_version", "created", data);
    WAIT_FOR(count(s, TALLY_DELIVERY_SUCCEEDED) == 1);
    ASSERT_EQ(seen_count("/a"), 1);
    pthread_mutex_lock(&rcv.mu);
    seen got = rcv.v[0];
    pthread_mutex_unlock(&rcv.mu);
    ASSERT(strstr(got.body, "\"entity\": \"model_version\", \"action\": \"created\"") != NULL);
    ASSERT(strstr(got.body, data) != NULL);
    char sig[TALLY_WEBHOOK_SIGNATURE_CAP];
    ASSERT_OK(tally_webhook_sign("s3cret", got.id, strtoll(got.ts, NULL, 10), got.body,
                                 strlen(got.body), sig));
    ASSERT_STR_EQ(got.sig, sig);
    ASSERT_EQ(strlen(got.id), 36);

    fire(&srv, "registered_model", "created",
                       "{\"name\": \"m\", \"tags\": {}, \"description\": \"\"}");
    WAIT_FOR(count(s, TALLY_DELIVERY_SUCCEEDED) == 2);
    ASSERT_EQ(seen_count("/b"), 1);
    pthread_mutex_lock(&rcv.mu);
    ASSERT_STR_EQ(rcv.v[1].sig, ""); /* no secret: unsigned */
    pthread_mutex_unlock(&rcv.mu);

    /* An event whose change rolled back is never queued, never sent. */
    fire_scoped(&srv, 0, "registered_model", "created", "{\"name\": \"gone\"}");
    sleep_ms(200);
    ASSERT_EQ(count(s, TALLY_DELIVERY_PENDING) + count(s, TALLY_DELIVERY_IN_FLIGHT), 0);
    ASSERT_EQ(seen_count("/b"), 1);

    /* Nobody subscribes: nothing queued. */
    fire(&srv, "prompt_tag", "set", "{}");
    sleep_ms(200);
    ASSERT_EQ(count(s, TALLY_DELIVERY_PENDING) + count(s, TALLY_DELIVERY_IN_FLIGHT), 0);
    ASSERT_EQ(seen_count(NULL), 2);
    ASSERT_EQ(seen_count("/c") + seen_count("/d"), 0);

    /* A subscription added now applies to the very next event. */
    char e[40];
    make_webhook(s, url_c, "", "prompt_tag", "set", TALLY_WEBHOOK_ACTIVE, e);
    fire(&srv, "prompt_tag", "set", "{\"name\": \"p\"}");
    WAIT_FOR(seen_count("/c") == 1 && count(s, TALLY_DELIVERY_SUCCEEDED) == 3);

    /* A delivery that waited in the queue for long (here: queued with a
     * timestamp 1000 s old) is sent with the attempt's time, signed for it;
     * body and id as queued. */
    {
        tally_arena *ta = tally_arena_new();
        tally_delivery old;
        int64_t now_s = (int64_t)time(NULL);
        ASSERT_OK(tally_store_webhook_enqueue_one(s, a, "model_version", "created", data,
                                                  "{\"old\": true}", now_s - 1000,
                                                  now_s * 1000, tally_webhook_uuid4, ta, &old,
                                                  err, sizeof err));
        tally_webhooks_notify(w);
        WAIT_FOR(seen_count("/a") == 2);
        pthread_mutex_lock(&rcv.mu);
        seen late = rcv.v[rcv.n - 1];
        pthread_mutex_unlock(&rcv.mu);
        ASSERT_STR_EQ(late.id, old.delivery_id);
        ASSERT_STR_EQ(late.body, "{\"old\": true}");
        int64_t sent_ts = strtoll(late.ts, NULL, 10);
        ASSERT_GE(sent_ts, now_s - 5);
        ASSERT_OK(tally_webhook_sign("s3cret", late.id, sent_ts, late.body, strlen(late.body),
                                     sig));
        ASSERT_STR_EQ(late.sig, sig);
        WAIT_FOR(count(s, TALLY_DELIVERY_SUCCEEDED) == 4);
        tally_arena_free(ta);
    }

    /* Durability: a slow receiver, three events, stop with one attempt in
     * flight; everything stays PENDING through a store reopen. */
    tally_webhooks_stop(w);
    p.workers = 1;
    ASSERT_OK(tally_webhooks_start(s, &p, &w, err, sizeof err));
    srv.registry_event_ctx = w;
    pthread_mutex_lock(&rcv.mu);
    rcv.delay_ms = 30000;
    int before = rcv.n;
    pthread_mutex_unlock(&rcv.mu);
    for (int i = 0; i < 3; i++)
        fire(&srv, "model_version", "created", data);
    WAIT_FOR(seen_count(NULL) == before + 1);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    tally_webhooks_stop(w);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    ASSERT_LT(t1.tv_sec - t0.tv_sec, 10); /* the in-flight attempt was aborted */
    ASSERT_EQ(count(s, TALLY_DELIVERY_PENDING), 3);
    ASSERT_EQ(count(s, TALLY_DELIVERY_IN_FLIGHT), 0);
    tally_store_close(s);

    pthread_mutex_lock(&rcv.mu);
    rcv.delay_ms = 0;
    pthread_mutex_unlock(&rcv.mu);
    s = open_store();
    srv.store = s;
    ASSERT_EQ(count(s, TALLY_DELIVERY_PENDING), 3);
    ASSERT_OK(tally_webhooks_start(s, &p, &w, err, sizeof err));
    WAIT_FOR(count(s, TALLY_DELIVERY_SUCCEEDED) == 7);
    ASSERT_EQ(count(s, TALLY_DELIVERY_FAILED), 0);
    /* Each delivery attempted once: the aborted attempt was not counted. */
    tally_arena *ar = tally_arena_new();
    tally_delivery *v;
    size_t n;
    int more;
    ASSERT_OK(tally_store_webhook_deliveries(s, a, 100, 0, ar, &v, &n, &more, err, sizeof err));
    ASSERT_EQ(n, 5);
    for (size_t i = 0; i < n; i++) {
        ASSERT_EQ(v[i].state, TALLY_DELIVERY_SUCCEEDED);
        ASSERT_EQ(v[i].attempts, 1);
        ASSERT_EQ(v[i].n_log, 1);
        ASSERT_EQ(v[i].log[0].response_status, 200);
    }
    tally_arena_free(ar);

    /* Log retention: with log_keep 3, a webhook's finished deliveries are
     * cut back to the newest 3 (checked on one finish in PRUNE_EVERY). */
    tally_webhooks_stop(w);
    p.workers = 2;
    p.log_keep = 3;
    ASSERT_OK(tally_webhooks_start(s, &p, &w, err, sizeof err));
    srv.registry_event_ctx = w;
    int fired = 2 * TALLY_WEBHOOK_PRUNE_EVERY + 5;
    for (int i = 0; i < fired; i++)
        fire(&srv, "model_version", "created", data);
    WAIT_FOR(count(s, TALLY_DELIVERY_PENDING) + count(s, TALLY_DELIVERY_IN_FLIGHT) == 0);
    ar = tally_arena_new();
    ASSERT_OK(tally_store_webhook_deliveries(s, a, 1000, 0, ar, &v, &n, &more, err, sizeof err));
    ASSERT_GE(n, 3);
    ASSERT_LE(n, 3 + TALLY_WEBHOOK_PRUNE_EVERY);
    for (size_t i = 0; i < n; i++)
        ASSERT_EQ(v[i].n_log, 1); /* attempts go with their delivery, never orphaned */
    /* 1 + 1 + 3 deliveries above, one sent twice (the aborted attempt). */
    ASSERT_EQ(seen_count("/a"), 6 + fired);
    tally_arena_free(ar);
    tally_webhooks_stop(w);

    /* The key file gone while sealed secrets remain: the dispatcher refuses
     * to start rather than make a new key that cannot open them. */
    char keep[4400];
    snprintf(keep, sizeof keep, "%s.kept", p.secret_key_file);
    ASSERT_OK(rename(p.secret_key_file, keep));
    w = NULL;
    ASSERT_EQ(tally_webhooks_start(s, &p, &w, err, sizeof err), -1);
    ASSERT(strstr(err, "missing") != NULL);
    ASSERT(w == NULL);
    ASSERT(access(p.secret_key_file, F_OK) != 0); /* no new key was made */
    ASSERT_OK(rename(keep, p.secret_key_file));
    ASSERT_OK(tally_webhooks_start(s, &p, &w, err, sizeof err));
    tally_webhooks_stop(w);
    tally_store_close(s);
    MHD_stop_daemon(d);
}

int main(void)
{
    TEST_RUN(test_registry_events);
    test_rmdir(dir);
    return TEST_DONE();
}
