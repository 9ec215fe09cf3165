/*
 * webhooks.c — the delivery dispatcher (webhooks.h): the registry-event
 * hook, the worker threads and their scheduling over the durable queue
 * (store_webhooks.h).
 *
 * A worker's loop:
 *   earliest due time (a read) --not yet--> sleep until then
 *     |                                     (or 60 s, or a notify, or stop)
 *   claim <= batch due rows (a write; a full batch wakes one more worker)
 *     +--> for each row: re-checked webhook (invariant 3), one attempt,
 *          record it and decide: SUCCEEDED / FAILED / PENDING at
 *          now + Retry-After or backoff. Rows of a batch not started
 *          within BATCH_SLICE_MS of the claim go back to PENDING, so one
 *          slow receiver cannot hold other webhooks' rows.
 *
 * wake_gen counts notifies: a worker reads it before looking at the queue
 * and sleeps only if it has not moved, so an event queued between the look
 * and the sleep is never missed. A notify wakes one sleeper (a condition
 * signal), not all: ten workers racing for one row would be ten write
 * transactions for one delivery.
 */
#include "webhooks.h"

#include "secret_box.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "json_out.h"

#define SNIPPET_BYTES 1024     /* receiver body kept per attempt in the log */
#define BATCH_SLICE_MS 2000    /* see the file comment */
#define IDLE_WAIT_MS 60000     /* re-check the queue at least this often */
#define TIMESTAMP_FRESH_S 60   /* see deliver() */

struct tally_webhooks {
    tally_store *store;
    tally_webhook_policy pol;
    int sealing;               /* secrets are sealed under key (pol.secret_key_file set) */
    tally_secret_key key;
    pthread_t *threads;        /* pol.workers */
    unsigned n_threads;        /* started */
    pthread_mutex_t mu;        /* guards wake_gen and the sleeping */
    pthread_cond_t cv;         /* notify / stop */
    uint64_t wake_gen;         /* bumped by every notify */
    volatile int stop;         /* set once by tally_webhooks_stop */
    volatile int shutdown;     /* set once by tally_webhooks_shutdown_begins */
};

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void log_line(const char *level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void log_line(const char *level, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    tally_buf b = {0};
    tally_json j;
    tally_json_start(&j, &b);
    tally_json_object_open(&j);
    tally_json_kv_string(&j, "level", level);
    tally_json_kv_string(&j, "component", "webhooks");
    tally_json_kv_string(&j, "message", msg);
    tally_json_object_close(&j);
    if (!tally_buf_failed(&b))
        fprintf(stderr, "%s\n", b.data);
    tally_buf_free(&b);
}

static int stopping(tally_webhooks *w)
{
    return __atomic_load_n(&w->stop, __ATOMIC_ACQUIRE);
}

void tally_webhooks_notify(tally_webhooks *w)
{
    pthread_mutex_lock(&w->mu);
    w->wake_gen++;
    pthread_cond_signal(&w->cv); /* one worker; it wakes another if it finds more */
    pthread_mutex_unlock(&w->mu);
}

const tally_webhook_policy *tally_webhooks_policy(const tally_webhooks *w)
{
    return &w->pol;
}

/* ------------------------------------------------------------------------ */
/* Queueing                                                                  */
/* ------------------------------------------------------------------------ */

int tally_webhooks_registry_event(void *ctx, const char *entity, const char *action,
                                  const char *data_json, char *err, size_t cap)
{
    tally_webhooks *w = ctx;
    if (!w || !entity || !action) {
        snprintf(err, cap, "No webhook dispatcher.");
        return -1;
    }
    if (!tally_webhook_event_valid(entity, action)) {
        /* No webhook can subscribe to it (§2), and the names go into the
         * body unescaped: a caller's bug, logged, never queued. */
        log_line("error", "unknown webhook event %.64s.%.64s ignored", entity, action);
        return 0;
    }
    if (!data_json || !*data_json)
        data_json = "{}";
    int64_t now_us = wall_us();
    tally_buf body = {0};
    tally_webhook_body(&body, entity, action, now_us, data_json);
    if (tally_buf_failed(&body)) {
        snprintf(err, cap, "Out of memory.");
        return -1;
    }
    size_t n = 0;
    int rc = tally_store_webhook_enqueue_event(w->store, entity, action, data_json, body.data,
                                               now_us / 1000000, now_us / 1000,
                                               tally_webhook_uuid4, &n, err, cap);
    tally_buf_free(&body);
    if (rc != 0) {
        log_line("error", "event %s.%s not queued: %s", entity, action, err);
        return -1;
    }
    return 0;
}

void tally_webhooks_events_committed(void *ctx)
{
    if (ctx)
        tally_webhooks_notify(ctx);
}

int tally_webhooks_enqueue(tally_webhooks *w, const char *webhook_id, const char *entity,
                           const char *action, const char *data_json, tally_arena *a,
                           tally_delivery *out, char *err, size_t cap)
{
    int64_t now_us = wall_us();
    tally_buf body = {0};
    tally_webhook_body(&body, entity, action, now_us, data_json);
    if (tally_buf_failed(&body)) {
        snprintf(err, cap, "Out of memory.");
        return TALLY_STORE_ENOMEM;
    }
    int rc = tally_store_webhook_enqueue_one(w->store, webhook_id, entity, action, data_json,
                                             body.data, now_us / 1000000, now_us / 1000,
                                             tally_webhook_uuid4, a, out, err, cap);
    tally_buf_free(&body);
    if (rc == 0)
        tally_webhooks_notify(w);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Workers                                                                   */
/* ------------------------------------------------------------------------ */

/* One claimed row: an attempt and its outcome (see the file comment). */
static void deliver(tally_webhooks *w, const tally_delivery_claim *cl,
                    tally_webhook_client **client)
{
    char err[512] = "";
    int rc;
    if (cl->webhook_deleted || cl->webhook_status != TALLY_WEBHOOK_ACTIVE) {
        const char *why = cl->webhook_deleted ? "webhook was deleted before delivery"
                                              : "webhook is disabled";
        rc = tally_store_webhook_cancel(w->store, cl->d.seq, why, wall_ms(), w->pol.log_keep, err,
                                        sizeof err);
        if (rc != 0)
            log_line("error", "delivery %s: %s", cl->d.delivery_id, err);
        return;
    }
    /* X-MLflow-Timestamp stays the same on retries, as MLflow's, while it
     * is fresh; a delivery that waited longer in the queue (Retry-After,
     * receiver down, a restart) gets the attempt's time and a new signature,
     * or receivers that reject stale timestamps (MLflow's sample: 300 s)
     * would refuse it. Body and delivery id never change. */
    int64_t ts = cl->d.timestamp_s, now_s = wall_ms() / 1000;
    if (now_s - ts > TIMESTAMP_FRESH_S)
        ts = now_s;
    char *secret = NULL;
    rc = tally_webhooks_open_secret(w, cl->secret, &secret);
    if (rc != 0) {
        const char *why = rc == -1 ? "the webhook's secret cannot be opened with this server's "
                                     "key (secret_key_file)"
                                   : "out of memory";
        if (rc == -1)
            rc = tally_store_webhook_cancel(w->store, cl->d.seq, why, wall_ms(),
                                            w->pol.log_keep, err, sizeof err);
        else
            rc = tally_store_webhook_release(w->store, cl->d.seq, err, sizeof err);
        log_line("error", "delivery %s: %s", cl->d.delivery_id, rc ? err : why);
        return;
    }
    tally_webhook_attempt_result r;
    tally_webhook_attempt(&w->pol, cl->url, secret, cl->d.delivery_id, ts, cl->d.body,
                          SNIPPET_BYTES, &w->stop, client, &r);
    sodium_memzero(secret, strlen(secret));
    free(secret);
    if (r.aborted) {
        /* Invariant (4): not an attempt; the row goes back to PENDING. */
        tally_buf_free(&r.body);
        tally_store_webhook_release(w->store, cl->d.seq, err, sizeof err);
        return;
    }
    int attempt = cl->d.attempts + 1;
    int state;
    int64_t next = 0;
    if (!r.retryable)
        state = r.status > 0 && r.status < 400 ? TALLY_DELIVERY_SUCCEEDED : TALLY_DELIVERY_FAILED;
    else if ((unsigned)attempt >= w->pol.max_attempts)
        state = TALLY_DELIVERY_FAILED;
    else {
        state = TALLY_DELIVERY_PENDING;
        uint64_t delay;
        if (r.retry_after_ms >= 0)
            delay = (uint64_t)r.retry_after_ms < w->pol.retry_after_cap_ms
                        ? (uint64_t)r.retry_after_ms
                        : w->pol.retry_after_cap_ms;
        else
            delay = tally_webhook_backoff_ms(&w->pol, (unsigned)attempt,
                                             randombytes_uniform(1000000) / 1e6);
        next = wall_ms() + (int64_t)delay;
    }
    tally_delivery_attempt att = {attempt, r.started_ms, r.duration_ms, r.status, r.error,
                                  r.body.data && !tally_buf_failed(&r.body) ? r.body.data : ""};
    rc = tally_store_webhook_record(w->store, cl->d.seq, &att, state, next, w->pol.log_keep, err,
                                    sizeof err);
    tally_buf_free(&r.body);
    if (rc != 0) {
        /* The attempt happened but could not be recorded (database busy or
         * full): leave the row for a later attempt rather than lose it. */
        log_line("error", "delivery %s: recording attempt %d failed: %s", cl->d.delivery_id,
                 attempt, err);
        tally_store_webhook_release(w->store, cl->d.seq, err, sizeof err);
    } else if (state == TALLY_DELIVERY_PENDING) {
        tally_webhooks_notify(w); /* sleepers recompute their wake-up time */
    }
}

static void *worker_main(void *arg)
{
    tally_webhooks *w = arg;
    char err[512];
    tally_webhook_client *client = NULL; /* this worker's keep-alive connections */
    while (!stopping(w)) {
        pthread_mutex_lock(&w->mu);
        uint64_t gen = w->wake_gen;
        pthread_mutex_unlock(&w->mu);

        /* A read first: claiming is a write transaction, not worth taking
         * (and making API writes wait for) when nothing is due. */
        int64_t now = wall_ms(), next = 0;
        int any = 0;
        int rc = tally_store_webhook_next_due(w->store, &next, &any, err, sizeof err);
        if (rc == 0 && any && next <= now) {
            tally_arena *a = tally_arena_new();
            tally_delivery_claim *batch = NULL;
            size_t n = 0;
            rc = a ? tally_store_webhook_claim(w->store, now, w->pol.batch, a, &batch, &n, err,
                                               sizeof err)
                   : TALLY_STORE_ENOMEM;
            if (rc != 0)
                log_line("error", "claiming deliveries failed: %s", a ? err : "out of memory");
            if (n == w->pol.batch)
                tally_webhooks_notify(w); /* more may be due: wake another worker */
            int64_t claimed = wall_ms();
            size_t i = 0;
            for (; i < n && !stopping(w); i++) {
                if (i > 0 && wall_ms() - claimed > BATCH_SLICE_MS)
                    break;
                deliver(w, &batch[i], &client);
            }
            for (; i < n; i++)
                tally_store_webhook_release(w->store, batch[i].d.seq, err, sizeof err);
            tally_arena_free(a);
            if (rc == 0)
                continue; /* look again: more may be due, or the next due time moved */
        } else if (rc != 0) {
            log_line("error", "reading the delivery queue failed: %s", err);
        }

        /* Nothing due: sleep until the earliest due row, a notify or stop. */
        int64_t wake = now + IDLE_WAIT_MS;
        if (rc != 0)
            wake = now + 1000; /* the store failed: retry soon, not in a tight loop */
        else if (any && next < wake)
            wake = next;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        int64_t delta = wake - wall_ms();
        if (delta < 0)
            delta = 0;
        ts.tv_sec += (time_t)(delta / 1000);
        ts.tv_nsec += (long)(delta % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_mutex_lock(&w->mu);
        while (!stopping(w) && w->wake_gen == gen && delta > 0) {
            if (pthread_cond_timedwait(&w->cv, &w->mu, &ts) == ETIMEDOUT)
                break;
        }
        pthread_mutex_unlock(&w->mu);
    }
    tally_webhook_client_free(client);
    return NULL;
}

/* ------------------------------------------------------------------------ */
/* Start and stop                                                            */
/* ------------------------------------------------------------------------ */

static pthread_once_t libs_once = PTHREAD_ONCE_INIT;
static int libs_rc;

static void libs_init(void)
{
    libs_rc = (curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK && sodium_init() >= 0) ? 0 : -1;
}

/* ------------------------------------------------------------------------ */
/* Secrets at rest (secret_box.h)                                            */
/* ------------------------------------------------------------------------ */

static char *seal_cb(void *ctx, const char *plain)
{
    return tally_secret_seal(&((tally_webhooks *)ctx)->key, plain);
}

/* Loads (or, while no secret is sealed yet, creates) the key file, then
 * seals the secrets stored before sealing existed. A missing key with
 * sealed secrets in the database refuses the start: a new key would make
 * every signed webhook fail. */
static int load_key(tally_webhooks *w, char *err, size_t cap)
{
    const char *path = w->pol.secret_key_file;
    size_t n_sealed = 0, n_rewritten = 0;
    if (tally_store_webhook_seal_secrets(w->store, TALLY_SECRET_SEALED_PREFIX, NULL, NULL,
                                         &n_sealed, &n_rewritten, err, cap) != 0)
        return -1;
    int created = 0;
    if (tally_secret_key_load(path, n_sealed == 0, &w->key, &created, err, cap) != 0) {
        if (n_sealed > 0 && access(path, F_OK) != 0)
            snprintf(err, cap,
                     "webhooks: %zu webhook secrets are sealed under the key %s, which is "
                     "missing: restore it (a new key could not open them)",
                     n_sealed, path);
        return -1;
    }
    w->sealing = 1;
    if (tally_store_webhook_seal_secrets(w->store, TALLY_SECRET_SEALED_PREFIX, seal_cb, w,
                                         &n_sealed, &n_rewritten, err, cap) != 0)
        return -1;
    if (created)
        log_line("info", "webhook secret key created at %s", path);
    if (n_rewritten)
        log_line("info", "%zu webhook secrets sealed", n_rewritten);
    return 0;
}

char *tally_webhooks_seal_secret(const tally_webhooks *w, const char *plain)
{
    return w && w->sealing ? tally_secret_seal(&w->key, plain) : strdup(plain);
}

int tally_webhooks_open_secret(const tally_webhooks *w, const char *stored, char **plain)
{
    if (w && w->sealing)
        return tally_secret_open(&w->key, stored, plain);
    *plain = NULL;
    if (tally_secret_is_sealed(stored))
        return -1; /* sealed, and this dispatcher has no key */
    *plain = strdup(stored);
    return *plain ? 0 : -2;
}

int tally_webhooks_start(tally_store *s, const tally_webhook_policy *p, tally_webhooks **out,
                         char *err, size_t cap)
{
    *out = NULL;
    pthread_once(&libs_once, libs_init);
    if (libs_rc != 0) {
        snprintf(err, cap, "webhooks: cannot initialise libcurl or libsodium");
        return -1;
    }
    /* Invariant (3) of store_webhooks.h: nothing is in flight at start. */
    if (tally_store_webhook_release(s, -1, err, cap) != 0)
        return -1;
    tally_webhooks *w = calloc(1, sizeof *w);
    if (!w) {
        snprintf(err, cap, "webhooks: out of memory");
        return -1;
    }
    w->store = s;
    w->pol = *p;
    if (w->pol.secret_key_file[0] && load_key(w, err, cap) != 0) {
        sodium_memzero(&w->key, sizeof w->key);
        free(w);
        return -1;
    }
    if (w->pol.workers == 0)
        w->pol.workers = 1;
    if (w->pol.batch == 0)
        w->pol.batch = 1;
    if (w->pol.max_attempts == 0)
        w->pol.max_attempts = 1;
    pthread_mutex_init(&w->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_cond_init(&w->cv, &ca); /* CLOCK_REALTIME, as the waits compute */
    pthread_condattr_destroy(&ca);
    w->threads = calloc(w->pol.workers, sizeof *w->threads);
    if (!w->threads) {
        snprintf(err, cap, "webhooks: out of memory");
        tally_webhooks_stop(w);
        return -1;
    }
    for (unsigned i = 0; i < w->pol.workers; i++) {
        if (pthread_create(&w->threads[i], NULL, worker_main, w) != 0) {
            snprintf(err, cap, "webhooks: cannot start worker threads");
            tally_webhooks_stop(w);
            return -1;
        }
        w->n_threads++;
    }
    *out = w;
    return 0;
}

void tally_webhooks_shutdown_begins(tally_webhooks *w)
{
    if (w)
        __atomic_store_n(&w->shutdown, 1, __ATOMIC_RELEASE);
}

const volatile int *tally_webhooks_shutdown_flag(const tally_webhooks *w)
{
    return w ? &w->shutdown : NULL;
}

void tally_webhooks_stop(tally_webhooks *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->mu);
    __atomic_store_n(&w->stop, 1, __ATOMIC_RELEASE);
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    for (unsigned i = 0; i < w->n_threads; i++)
        pthread_join(w->threads[i], NULL);
    char err[256];
    tally_store_webhook_release(w->store, -1, err, sizeof err);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    free(w->threads);
    sodium_memzero(&w->key, sizeof w->key);
    free(w);
}
