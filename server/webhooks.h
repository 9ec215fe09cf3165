/*
 * webhooks.h — MLflow's webhook deliveries (mlflow-webhooks.md §5-§7) with
 * what MLflow lacks: a durable queue, retries over restarts, a delivery log.
 *
 *   registry handler --srv->registry_event--> tally_webhooks_registry_event
 *        |  inside the handler's store write scope: a PENDING row per
 *        |  subscribed webhook (store_webhooks.h), committed with the change;
 *        v  after the commit, registry_events_committed: a condition-variable signal
 *   worker threads (policy.workers): claim a small batch of due rows,
 *        POST each with libcurl (per-attempt connect/read timeouts), record
 *        the attempt, then SUCCEEDED / FAILED / PENDING at the backoff time.
 *
 * Invariants:
 *  (1) Handlers never wait on a receiver: registry_event and the enqueue
 *      calls only write the store; all HTTP happens on the workers (except
 *      the test endpoint, synchronous by MLflow's contract, §7).
 *  (2) Memory is bounded by workers x batch deliveries; the backlog lives in
 *      SQLite.
 *  (3) Every attempt re-reads the webhook (URL, secret, status) in the claim
 *      transaction: updates, disabling and deletion apply to the next
 *      attempt; a row whose webhook was deleted or disabled is ended FAILED
 *      with the reason, never sent.
 *  (4) Stopping aborts attempts in flight (they are not counted) and puts
 *      every claimed row back to PENDING; tally_webhooks_start recovers rows
 *      a crash left IN_FLIGHT. A delivery is therefore sent at least once,
 *      and may be sent twice if the process dies between the receiver's
 *      answer and the recording of it (receivers dedupe by delivery id).
 *  (5) A delivery makes at most policy.max_attempts attempts; retries happen
 *      on 429, 500, 502, 503, 504 and transport errors, as MLflow's.
 */
#ifndef TALLY_SERVER_WEBHOOKS_H
#define TALLY_SERVER_WEBHOOKS_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "store_webhooks.h"

/* ------------------------------------------------------------------------ */
/* Policy                                                                    */
/* ------------------------------------------------------------------------ */

typedef struct tally_webhook_policy {
    unsigned workers;            /* delivery threads; MLFLOW_WEBHOOK_DELIVERY_MAX_WORKERS, 10 */
    unsigned max_attempts;       /* 1 + MLFLOW_WEBHOOK_REQUEST_MAX_RETRIES (3) */
    unsigned timeout_ms;         /* connect, and read inactivity, per attempt;
                                    MLFLOW_WEBHOOK_REQUEST_TIMEOUT seconds, 30 */
    unsigned backoff_base_ms;    /* TALLY_WEBHOOK_BACKOFF_BASE_MS, 1000 */
    unsigned backoff_cap_ms;     /* TALLY_WEBHOOK_BACKOFF_CAP_MS, 60000 */
    unsigned jitter_ms;          /* TALLY_WEBHOOK_BACKOFF_JITTER_MS, 1000 */
    unsigned retry_after_cap_ms; /* TALLY_WEBHOOK_RETRY_AFTER_CAP_MS, 3600000 */
    unsigned batch;              /* rows a worker claims at once; TALLY_WEBHOOK_BATCH, 4 */
    unsigned log_keep;           /* finished deliveries kept per webhook (0: all);
                                    TALLY_WEBHOOK_LOG_KEEP, 1000 */
    char allowed_schemes[256];   /* MLFLOW_WEBHOOK_ALLOWED_SCHEMES, "https" */
    char secret_key_file[1100];  /* secrets sealed under this key (secret_box.h), created
                                    at start when missing and no secret is sealed yet;
                                    "" (the default here; `tally serve` sets
                                    <data>/webhook-secret.key): stored as given */
} tally_webhook_policy;

/* The defaults above. */
void tally_webhook_policy_defaults(tally_webhook_policy *p);
/* Defaults overridden by the environment variables named above. -1 with a
 * message naming the variable for a malformed value. */
int tally_webhook_policy_from_env(tally_webhook_policy *p, char *err, size_t cap);

/* Whether url's scheme (lower-cased, as Python's urlparse reads it) is in
 * the comma list allowed. */
int tally_webhook_scheme_allowed(const char *allowed, const char *url);

/* Delay before retry number `retry` (1 = the first retry, i.e. the second
 * attempt), urllib3's schedule: 0 for the first retry, then
 * base x 2^(retry-1) plus jitter01 x jitter (jitter01 in [0,1)), capped. */
uint64_t tally_webhook_backoff_ms(const tally_webhook_policy *p, unsigned retry, double jitter01);
/* 429, 500, 502, 503, 504. */
int tally_webhook_retryable_status(int status);
/* A Retry-After value: delay-seconds or an HTTP date (relative to now_s).
 * 0 with *delay_ms (>= 0), or -1 when unparsable. */
int tally_webhook_parse_retry_after(const char *value, int64_t now_s, int64_t *delay_ms);

/* ------------------------------------------------------------------------ */
/* Payloads and signatures (webhook_sign.c)                                  */
/* ------------------------------------------------------------------------ */

#define TALLY_WEBHOOK_SIGNATURE_CAP 48 /* "v1," + 44 base64 chars + NUL */

/* "v1," + base64(HMAC-SHA256(secret, delivery_id "." timestamp "." body)),
 * §6. 0, or -1 if libsodium cannot initialise. */
int tally_webhook_sign(const char *secret, const char *delivery_id, int64_t timestamp_s,
                       const char *body, size_t body_len, char out[TALLY_WEBHOOK_SIGNATURE_CAP]);
/* A random uuid4, lower-case hex with dashes. */
void tally_webhook_uuid4(char out[TALLY_WEBHOOK_ID_LEN + 1]);
/* The delivery body, Python json.dumps style: {"entity": e, "action": a,
 * "timestamp": ISO-8601 UTC with microseconds (dropped when 0) and +00:00,
 * "data": data_json}. data_json is trusted JSON text. */
void tally_webhook_body(tally_buf *b, const char *entity, const char *action, int64_t time_us,
                        const char *data_json);

/* ------------------------------------------------------------------------ */
/* Events (§2)                                                               */
/* ------------------------------------------------------------------------ */

/* Lower-case names of WebhookEntity 1..9 and WebhookAction 1..4. */
extern const char *const tally_webhook_entities[10]; /* [0] = "entity_unspecified" */
extern const char *const tally_webhook_actions[5];   /* [0] = "action_unspecified" */
/* Whether (entity, action), lower-case, is one of the 14 events. */
int tally_webhook_event_valid(const char *entity, const char *action);
/* The valid actions of entity as MLflow prints them ("['created']"). */
const char *tally_webhook_valid_actions(const char *entity);
/* MLflow's example data object for the test endpoint (§7), static JSON. */
const char *tally_webhook_example_data(const char *entity, const char *action);

/* ------------------------------------------------------------------------ */
/* One delivery attempt (synchronous)                                        */
/* ------------------------------------------------------------------------ */

typedef struct tally_webhook_attempt_result {
    int status;                  /* HTTP status, 0 on a transport error */
    int64_t started_ms;          /* wall time */
    int64_t duration_ms;
    char error[256];             /* transport error, "" when a status came back */
    tally_buf body;              /* the receiver's body, up to the cap given */
    int64_t retry_after_ms;      /* Retry-After on 413/429/503, else -1 */
    int retryable;               /* §6: worth another attempt */
    int aborted;                 /* stopped by the stop flag: not an attempt */
} tally_webhook_attempt_result;

/* POSTs body to url with MLflow's headers (signed when secret is not ""),
 * following redirects, within policy timeouts. stop (may be NULL) aborts the
 * transfer when it becomes non-zero. The caller frees r->body.
 * client (may be NULL: one client per call) keeps an HTTP client between
 * calls of one thread, so connections to a receiver are kept alive and
 * reused; free it with tally_webhook_client_free. */
typedef struct tally_webhook_client tally_webhook_client;
void tally_webhook_attempt(const tally_webhook_policy *p, const char *url, const char *secret,
                           const char *delivery_id, int64_t timestamp_s, const char *body,
                           size_t body_cap, const volatile int *stop,
                           tally_webhook_client **client, tally_webhook_attempt_result *r);
void tally_webhook_client_free(tally_webhook_client *c); /* NULL is a no-op */

/* ------------------------------------------------------------------------ */
/* The dispatcher                                                            */
/* ------------------------------------------------------------------------ */

typedef struct tally_webhooks tally_webhooks;

/* Initialises libcurl and libsodium (call from the main thread before any
 * other thread uses them), recovers IN_FLIGHT rows and starts the workers.
 * The store must outlive the dispatcher. -1 with a message on failure. */
int tally_webhooks_start(tally_store *s, const tally_webhook_policy *p, tally_webhooks **out,
                         char *err, size_t cap);
/* Stops the workers (invariant 4) and frees w. NULL is a no-op. */
void tally_webhooks_stop(tally_webhooks *w);
/* The server is shutting down: synchronous test deliveries (§7) in progress
 * abort at once, so draining the HTTP layer does not wait on a receiver.
 * Queued deliveries go on until tally_webhooks_stop. NULL is a no-op. */
void tally_webhooks_shutdown_begins(tally_webhooks *w);
/* The flag tally_webhooks_shutdown_begins sets, for tally_webhook_attempt's
 * stop argument (NULL for NULL). */
const volatile int *tally_webhooks_shutdown_flag(const tally_webhooks *w);
const tally_webhook_policy *tally_webhooks_policy(const tally_webhooks *w);

/* The tally_server.registry_event hook (ctx = the dispatcher): queues the
 * event for its subscribers, in the caller's store write scope when one is
 * open (app.h). Never blocks on a receiver. 0, or -1 with a message (also
 * logged). An event no webhook can subscribe to is logged and dropped (0). */
int tally_webhooks_registry_event(void *ctx, const char *entity, const char *action,
                                  const char *data_json, char *err, size_t cap);
/* The tally_server.registry_events_committed hook: wakes the workers. */
void tally_webhooks_events_committed(void *ctx);
/* Queues one delivery of (entity, action, data_json) to one webhook, signed
 * and timestamped now; *out in a. Store codes as store_webhooks.h. */
int tally_webhooks_enqueue(tally_webhooks *w, const char *webhook_id, const char *entity,
                           const char *action, const char *data_json, tally_arena *a,
                           tally_delivery *out, char *err, size_t cap);
/* Secrets at rest: the stored form of a webhook's secret (malloc'd, NULL out
 * of memory), and the secret back from its stored form (malloc'd into
 * *plain: 0, -1 when it cannot be opened, -2 out of memory). Without a key
 * file both pass plain text through (and a sealed value cannot be opened).
 * w may be NULL (no dispatcher: plain text). */
char *tally_webhooks_seal_secret(const tally_webhooks *w, const char *plain);
int tally_webhooks_open_secret(const tally_webhooks *w, const char *stored, char **plain);
/* Wakes the workers (something was queued). */
void tally_webhooks_notify(tally_webhooks *w);

#endif /* TALLY_SERVER_WEBHOOKS_H */
