/*
 * store_webhooks.h — the metadata store's webhook module: webhook
 * definitions (mlflow-webhooks.md §2-§4) and Tally's durable delivery queue
 * with its per-attempt log. The interface a PostgreSQL backend would
 * implement too; the SQLite implementation is store_webhooks_sqlite.c
 * (migration 3 in store_schema.c).
 *
 * Delivery states (one row per (event, webhook)):
 *
 *   PENDING --claim--> IN_FLIGHT --attempt ok (2xx/3xx... status < 400 or
 *      ^                   |        any final status)--> SUCCEEDED / FAILED
 *      |                   +--retryable failure, attempts left--> PENDING
 *      +--release / recover (stop, restart)--+   (next_attempt_ms = later)
 *
 * Invariants:
 *  (1) An event is queued in one transaction: one PENDING row per ACTIVE,
 *      non-deleted webhook subscribed to (entity, action) at that moment.
 *      The subscription is read from the tables, never from a cache, so a
 *      webhook write takes effect for the very next event.
 *  (2) A row's body, delivery_id and timestamp_s never change: every retry
 *      sends the same bytes with the same id (§6); the dispatcher sends
 *      timestamp_s as X-MLflow-Timestamp while it is fresh (webhooks.c).
 *  (3) IN_FLIGHT exists only while a worker of this process holds the row;
 *      tally_store_webhook_recover (at dispatcher start) turns any left by a
 *      crash back into PENDING, so no delivery is lost to a restart.
 *  (4) attempts == number of webhook_attempts rows for the delivery.
 *  (5) Secrets are stored as the caller gives them (the dispatcher seals
 *      them first: secret_box.h) and returned only inside the server (for
 *      signing); no API response ever carries them.
 *
 * Errors, threads and memory as store.h: 0 or TALLY_STORE_E*, message in
 * err; results in the caller's arena.
 */
#ifndef TALLY_SERVER_STORE_WEBHOOKS_H
#define TALLY_SERVER_STORE_WEBHOOKS_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

#define TALLY_WEBHOOK_ID_LEN 36 /* uuid4 text, 8-4-4-4-12 */

typedef enum tally_webhook_status {
    TALLY_WEBHOOK_ACTIVE = 1,
    TALLY_WEBHOOK_DISABLED = 2
} tally_webhook_status;

/* One subscribed event, lower-case names as in delivery bodies
 * ("model_version", "created"). */
typedef struct tally_webhook_event {
    const char *entity;
    const char *action;
} tally_webhook_event;

typedef struct tally_webhook {
    char webhook_id[TALLY_WEBHOOK_ID_LEN + 1];
    const char *name;
    const char *description;     /* "" when none */
    const char *url;
    const char *secret;          /* "" when none; server-internal, never sent to clients */
    tally_webhook_event *events; /* in the order given, duplicates removed */
    size_t n_events;
    int status;                  /* tally_webhook_status */
    int64_t creation_ms;         /* ms since the epoch */
    int64_t last_updated_ms;
} tally_webhook;

/* A partial update: NULL / 0 fields stay as they are. */
typedef struct tally_webhook_patch {
    const char *name, *description, *url, *secret;
    const tally_webhook_event *events; /* replaces the whole set when n_events > 0 */
    size_t n_events;
    int status;                  /* 0 = unchanged */
} tally_webhook_patch;

typedef enum tally_delivery_state {
    TALLY_DELIVERY_PENDING = 0,
    TALLY_DELIVERY_IN_FLIGHT = 1,
    TALLY_DELIVERY_SUCCEEDED = 2,
    TALLY_DELIVERY_FAILED = 3
} tally_delivery_state;

/* "PENDING", ... */
const char *tally_delivery_state_name(int state);

typedef struct tally_delivery_attempt {
    int attempt;                 /* 1, 2, ... */
    int64_t started_ms;          /* wall time the request began */
    int64_t duration_ms;         /* until the response or the error */
    int response_status;         /* HTTP status, 0 when none (transport error) */
    const char *error;           /* "" when none */
    const char *response_snippet;/* first bytes of the receiver's body, "" when none */
} tally_delivery_attempt;

typedef struct tally_delivery {
    int64_t seq;                 /* queue order; the backend's row id */
    char delivery_id[TALLY_WEBHOOK_ID_LEN + 1]; /* X-MLflow-Delivery-Id */
    char webhook_id[TALLY_WEBHOOK_ID_LEN + 1];
    const char *entity, *action; /* the event */
    const char *data_json;       /* the event's data object */
    const char *body;            /* the exact bytes sent (and signed) */
    int64_t timestamp_s;         /* X-MLflow-Timestamp */
    int state;                   /* tally_delivery_state */
    int attempts;                /* attempts made */
    int64_t created_ms;
    int64_t next_attempt_ms;     /* when PENDING: not before this time */
    int64_t finished_ms;         /* when SUCCEEDED or FAILED, else 0 */
    int last_status;             /* of the last attempt, 0 when none */
    const char *last_error;      /* of the last attempt or the cancellation, "" when none */
    tally_delivery_attempt *log; /* filled by tally_store_webhook_deliveries only */
    size_t n_log;
} tally_delivery;

/* A claimed delivery with what an attempt needs from its webhook, read in
 * the claiming transaction. */
typedef struct tally_delivery_claim {
    tally_delivery d;
    const char *url;             /* the webhook's current URL */
    const char *secret;          /* its current secret, "" when none */
    int webhook_status;          /* tally_webhook_status */
    int webhook_deleted;         /* soft-deleted since the event */
} tally_delivery_claim;

/* Webhooks. create stores w (id, timestamps and all fields set by the
 * caller). get/update/delete: TALLY_STORE_ENOTFOUND for unknown or deleted
 * ids, with MLflow's message. update bumps last_updated and returns the new
 * state in *out. list: newest first, non-deleted, offset paging; *more says
 * whether rows remain after this page. */
int tally_store_webhook_create(tally_store *s, const tally_webhook *w, char *err, size_t cap);
int tally_store_webhook_get(tally_store *s, const char *id, tally_arena *a, tally_webhook *out,
                            char *err, size_t cap);
int tally_store_webhook_list(tally_store *s, size_t max, uint64_t offset, tally_arena *a,
                             tally_webhook **out, size_t *n, int *more, char *err, size_t cap);
int tally_store_webhook_update(tally_store *s, const char *id, const tally_webhook_patch *patch,
                               int64_t now_ms, tally_arena *a, tally_webhook *out, char *err,
                               size_t cap);
int tally_store_webhook_delete(tally_store *s, const char *id, int64_t now_ms, char *err,
                               size_t cap);

/* The queue. make_id fills a fresh delivery id (uuid4) for each row. */
typedef void (*tally_delivery_id_fn)(char out[TALLY_WEBHOOK_ID_LEN + 1]);

/* Invariant (1): queues the event for every subscribed ACTIVE webhook;
 * *n_queued says how many. */
int tally_store_webhook_enqueue_event(tally_store *s, const char *entity, const char *action,
                                      const char *data_json, const char *body,
                                      int64_t timestamp_s, int64_t now_ms,
                                      tally_delivery_id_fn make_id, size_t *n_queued, char *err,
                                      size_t cap);
/* Queues one delivery for webhook id whatever its subscriptions and status
 * (test deliveries, redelivery); ENOTFOUND when the webhook is unknown or
 * deleted. *out (in a) is the new row. */
int tally_store_webhook_enqueue_one(tally_store *s, const char *webhook_id, const char *entity,
                                    const char *action, const char *data_json, const char *body,
                                    int64_t timestamp_s, int64_t now_ms,
                                    tally_delivery_id_fn make_id, tally_arena *a,
                                    tally_delivery *out, char *err, size_t cap);
/* Marks up to max due PENDING rows (next_attempt_ms <= now_ms, oldest due
 * first) IN_FLIGHT and returns them with their webhooks. */
int tally_store_webhook_claim(tally_store *s, int64_t now_ms, size_t max, tally_arena *a,
                              tally_delivery_claim **out, size_t *n, char *err, size_t cap);
/* Records one attempt (att) on an IN_FLIGHT row and moves it to state
 * (PENDING with next_attempt_ms, SUCCEEDED or FAILED). When the row ends
 * and keep > 0, the webhook's finished deliveries beyond the newest keep
 * may be deleted with their attempts in the same transaction (the check
 * runs on one finish in TALLY_WEBHOOK_PRUNE_EVERY, so up to that many more
 * are kept). PENDING rows are never deleted. */
#define TALLY_WEBHOOK_PRUNE_EVERY 32
int tally_store_webhook_record(tally_store *s, int64_t seq, const tally_delivery_attempt *att,
                               int state, int64_t next_attempt_ms, unsigned keep, char *err,
                               size_t cap);
/* Ends an IN_FLIGHT row as FAILED without an attempt (webhook deleted or
 * disabled since the event), with reason as last_error; keep as above. */
int tally_store_webhook_cancel(tally_store *s, int64_t seq, const char *reason, int64_t now_ms,
                               unsigned keep, char *err, size_t cap);
/* IN_FLIGHT -> PENDING for one row (seq >= 0) or every row (seq < 0). */
int tally_store_webhook_release(tally_store *s, int64_t seq, char *err, size_t cap);
/* The earliest next_attempt_ms among PENDING rows; *any 0 when none. */
int tally_store_webhook_next_due(tally_store *s, int64_t *next_ms, int *any, char *err,
                                 size_t cap);
/* A webhook's deliveries, newest first, each with its attempt log. The
 * webhook must exist and not be deleted (ENOTFOUND). */
int tally_store_webhook_deliveries(tally_store *s, const char *webhook_id, size_t max,
                                   uint64_t offset, tally_arena *a, tally_delivery **out,
                                   size_t *n, int *more, char *err, size_t cap);
/* One delivery of a (non-deleted) webhook, with its log. */
int tally_store_webhook_delivery(tally_store *s, const char *webhook_id, const char *delivery_id,
                                 tally_arena *a, tally_delivery *out, char *err, size_t cap);
/* Counts by state over all webhooks (for tests and /metrics-style checks). */
int tally_store_webhook_count(tally_store *s, int state, int64_t *n, char *err, size_t cap);

/* Secrets at rest: in one write transaction, every webhook's secret (deleted
 * ones too) that is neither "" nor starting with sealed_prefix is replaced by
 * seal(ctx, secret) (malloc'd; NULL: out of memory, nothing changes). seal
 * NULL: nothing is written. *n_sealed gets how many secrets already started
 * with sealed_prefix, *n_rewritten how many were replaced. */
int tally_store_webhook_seal_secrets(tally_store *s, const char *sealed_prefix,
                                     char *(*seal)(void *ctx, const char *plain), void *ctx,
                                     size_t *n_sealed, size_t *n_rewritten, char *err, size_t cap);

#endif /* TALLY_SERVER_STORE_WEBHOOKS_H */
