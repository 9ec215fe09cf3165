/*
 * store_webhooks_sqlite.c — the SQLite implementation of store_webhooks.h
 * (tables of migration 3, store_schema.c), as a store module
 * (store_internal.h): every write in tally__store_write, every read in
 * tally__store_read, statements from tally__conn_stmt with static SQL.
 *
 * Queue claims are write transactions (state -> IN_FLIGHT) so two workers
 * never take the same row; the writer mutex serializes them.
 */
#include "store_webhooks.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_internal.h"

static const char *const state_names[] = {"PENDING", "IN_FLIGHT", "SUCCEEDED", "FAILED"};

const char *tally_delivery_state_name(int state)
{
    return state >= 0 && state < 4 ? state_names[state] : "UNKNOWN";
}

static int state_parse(const char *s)
{
    for (int i = 0; i < 4; i++)
        if (s && strcmp(s, state_names[i]) == 0)
            return i;
    return -1;
}

#define STMT(var, sql)                                                                     \
    sqlite3_stmt *var = tally__conn_stmt(c, sql);                                          \
    if (!var)                                                                              \
        return tally__conn_error(c, err, cap)

static void not_found(const char *id, char *err, size_t cap)
{
    snprintf(err, cap, "Webhook with ID %.100s not found.", id);
}

/* ------------------------------------------------------------------------ */
/* Webhooks                                                                  */
/* ------------------------------------------------------------------------ */

static int insert_events(tally__conn *c, const char *id, const tally_webhook_event *ev, size_t n,
                         char *err, size_t cap)
{
    STMT(st, "INSERT OR IGNORE INTO webhook_events(webhook_id, entity, action, seq) "
             "VALUES (?, ?, ?, ?)");
    for (size_t i = 0; i < n; i++) {
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, ev[i].entity, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, ev[i].action, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 4, (sqlite3_int64)i);
        int rc = sqlite3_step(st);
        tally__stmt_done(st);
        if (rc != SQLITE_DONE)
            return tally__conn_error(c, err, cap);
    }
    return 0;
}

static int create_fn(tally__conn *c, void *arg, char *err, size_t cap)
{
    const tally_webhook *w = arg;
    STMT(st, "INSERT INTO webhooks(webhook_id, name, description, url, secret, status, "
             "creation_timestamp, last_updated_timestamp) VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
    sqlite3_bind_text(st, 1, w->webhook_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, w->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, w->description ? w->description : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, w->url, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, w->secret ? w->secret : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, w->status == TALLY_WEBHOOK_DISABLED ? "DISABLED" : "ACTIVE", -1,
                      SQLITE_STATIC);
    sqlite3_bind_int64(st, 7, w->creation_ms);
    sqlite3_bind_int64(st, 8, w->last_updated_ms);
    int rc = sqlite3_step(st);
    tally__stmt_done(st);
    if (rc != SQLITE_DONE)
        return tally__conn_error(c, err, cap);
    return insert_events(c, w->webhook_id, w->events, w->n_events, err, cap);
}

int tally_store_webhook_create(tally_store *s, const tally_webhook *w, char *err, size_t cap)
{
    return tally__store_write(s, create_fn, (void *)w, err, cap);
}

#define WEBHOOK_COLS                                                                       \
    "webhook_id, name, description, url, secret, status, creation_timestamp, "            \
    "last_updated_timestamp"

/* Fills w from a row of WEBHOOK_COLS and reads its events. */
static int read_webhook(tally__conn *c, sqlite3_stmt *row, tally_arena *a, tally_webhook *w,
                        char *err, size_t cap)
{
    memset(w, 0, sizeof *w);
    snprintf(w->webhook_id, sizeof w->webhook_id, "%s", tally__col_text(row, 0));
    w->name = tally__col_dup(a, row, 1);
    w->description = tally__col_dup(a, row, 2);
    w->url = tally__col_dup(a, row, 3);
    w->secret = tally__col_dup(a, row, 4);
    w->status = strcmp(tally__col_text(row, 5), "DISABLED") == 0 ? TALLY_WEBHOOK_DISABLED
                                                          : TALLY_WEBHOOK_ACTIVE;
    w->creation_ms = sqlite3_column_int64(row, 6);
    w->last_updated_ms = sqlite3_column_int64(row, 7);
    if (!w->name || !w->description || !w->url || !w->secret)
        return TALLY_STORE_ENOMEM;
    STMT(st, "SELECT entity, action FROM webhook_events WHERE webhook_id = ? ORDER BY seq");
    sqlite3_bind_text(st, 1, w->webhook_id, -1, SQLITE_STATIC);
    size_t capn = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (tally__arena_reserve(a, &w->events, sizeof *w->events, w->n_events, &capn, 4) != 0) {
            tally__stmt_done(st);
            return TALLY_STORE_ENOMEM;
        }
        tally_webhook_event *e = &w->events[w->n_events++];
        e->entity = tally__col_dup(a, st, 0);
        e->action = tally__col_dup(a, st, 1);
        if (!e->entity || !e->action) {
            tally__stmt_done(st);
            return TALLY_STORE_ENOMEM;
        }
    }
    tally__stmt_done(st);
    return rc == SQLITE_DONE ? 0 : tally__conn_error(c, err, cap);
}

typedef struct get_arg {
    const char *id;
    tally_arena *a;
    tally_webhook *out;
} get_arg;

static int get_locked(tally__conn *c, const char *id, tally_arena *a, tally_webhook *out,
                      char *err, size_t cap)
{
    STMT(st, "SELECT " WEBHOOK_COLS " FROM webhooks WHERE webhook_id = ? AND "
             "deleted_timestamp IS NULL");
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        /* Copy the row before read_webhook runs another statement. */
        rc = read_webhook(c, st, a, out, err, cap);
        tally__stmt_done(st);
        return rc;
    }
    tally__stmt_done(st);
    if (rc != SQLITE_DONE)
        return tally__conn_error(c, err, cap);
    not_found(id, err, cap);
    return TALLY_STORE_ENOTFOUND;
}

static int get_fn(tally__conn *c, void *arg, char *err, size_t cap)
{
    get_arg *g = arg;
    return get_locked(c, g->id, g->a, g->out, err, cap);
}

int tally_store_webhook_get(tally_store *s, const char *id, tally_arena *a, tally_webhook *out,
                            char *err, size_t cap)
{
    get_arg g = {id, a, out};
    return tally__store_read(s, get_fn, &g, err, cap);
}

typedef struct list_arg {
    size_t max;
    uint64_t offset;
    tally_arena *a;
    tally_webhook **out;
    size_t *n;
    int *more;
} list_arg;

static int list_fn(tally__conn *c, void *arg, char *err, size_t cap)
{
    list_arg *l = arg;
    STMT(st, "SELECT " WEBHOOK_COLS " FROM webhooks WHERE deleted_timestamp IS NULL "
             "ORDER BY creation_timestamp DESC, rowid DESC LIMIT ? OFFSET ?");
    sqlite3_bind_int64(st, 1, (sqlite3_int64)l->max + 1);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)l->offset);
    size_t capn = 0;
    int rc;
    *l->n = 0;
    *l->more = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (*l->n == l->max) {
            *l->more = 1;
            break;
        }
        if (tally__arena_reserve(l->a, l->out, sizeof **l->out, *l->n, &capn, 16) != 0) {
            tally__stmt_done(st);
            return TALLY_STORE_ENOMEM;
        }
        /* Events are read by a second statement while this one is open:
         * SQLite allows it, the cursor stays valid. */
        if ((rc = read_webhook(c, st, l->a, &(*l->out)[*l->n], err, cap)) != 0) {
            tally__stmt_done(st);
            return rc;
        }
        (*l->n)++;
    }
    tally__stmt_done(st);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : tally__conn_error(c, err, cap);
}

int tally_store_webhook_list(tally_store *s, size_t max, uint64_t offset, tally_arena *a,
                             tally_webhook **out, size_t *n, int *more, char *err, size_t cap)
{
    *out = NULL;
    list_arg l = {max, offset, a, out, n, more};
    return tally__store_read(s, list_fn, &l, err, cap);
}

typedef struct update_arg {
    const char *id;
    const tally_webhook_patch *p;
    int64_t now;
    tally_arena *a;
    tally_webhook *out;
} update_arg;

static int update_fn(tally__conn *c, void *arg, char *err, size_t cap)
{
    update_arg *u = arg;
    const tally_webhook_patch *p = u->p;
    STMT(st, "UPDATE webhooks SET name = coalesce(?, name), "
             "description = coalesce(?, description), url = coalesce(?, url), "
             "secret = coalesce(?, secret), status = coalesce(?, status), "
             "last_updated_timestamp = ? WHERE webhook_id = ? AND deleted_timestamp IS NULL");
    if (p->name)
        sqlite3_bind_text(st, 1, p->name, -1, SQLITE_STATIC);
    if (p->description)
        sqlite3_bind_text(st, 2, p->description, -1, SQLITE_STATIC);
    if (p->url)
        sqlite3_bind_text(st, 3, p->url, -1, SQLITE_STATIC);
    if (p->secret)
        sqlite3_bind_text(st, 4, p->secret, -1, SQLITE_STATIC);
    if (p->status)
        sqlite3_bind_text(st, 5, p->status == TALLY_WEBHOOK_DISABLED ? "DISABLED" : "ACTIVE", -1,
                          SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, u->now);
    sqlite3_bind_text(st, 7, u->id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    tally__stmt_done(st);
    if (rc != SQLITE_DONE)
        return tally__conn_error(c, err, cap);
    if (sqlite3_changes(tally__conn_db(c)) == 0) {
        not_found(u->id, err, cap);
        return TALLY_STORE_ENOTFOUND;
    }
    if (p->n_events > 0) {
        STMT(del, "DELETE FROM webhook_events WHERE webhook_id = ?");
        sqlite3_bind_text(del, 1, u->id, -1, SQLITE_STATIC);
        rc = sqlite3_step(del);
        tally__stmt_done(del);
        if (rc != SQLITE_DONE)
            return tally__conn_error(c, err, cap);
        if ((rc = insert_events(c, u->id, p->events, p->n_events, err, cap)) != 0)
            return rc;
    }
    return get_locked(c, u->id, u->a, u->out, err, cap);
}

int tally_store_webhook_update(tally_store *s, const char *id, const tally_webhook_patch *patch,
                               int64_t now_ms, tally_arena *a, tally_webhook *out, char *err,
                               size_t cap)
{
    update_arg u = {id, patch, now_ms, a, out};
    return tally__store_write(s, update_fn, &u, err, cap);
}

typedef struct delete_arg {
    const char *id;
    int64_t now;
} delete_arg;

static int delete_fn(tally__conn *c, void *arg, char *err, size_t cap)
{
    delete_arg *d = arg;
    STMT(st, "UPDATE webhooks SET deleted_timestamp = ?, last_updated_timestamp = ? "
             "WHERE webhook_id = ? AND deleted_timestamp IS NULL");
    sqlite3_bind_int64(st, 1, d->now);
    sqlite3_bind_int64(st, 2, d->now);
    sqlite3_bind_text(st, 3, d->id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    tally__stmt_done(st);
    if (rc != SQLITE_DONE)
        return tally__conn_error(c, err, cap);
    if (sqlite3_changes(tally__conn_db(c)) == 0) {
        not_found(d->id, err, cap);
        return TALLY_STORE_ENOTFOUND;
    }
    return 0;
}

int tally_store_webhook_delete(tally_store *s, const char *id, int64_t now_ms, char *err,
                               size_t cap)
{
    delete_arg d = {id, now_ms};
    return tally__store_write(s, delete_fn, &d, err, cap);
}

/* ------------------------------------------------------------------------ */
/* Queue                                                                     */
/* ------------------------------------------------------------------------ */

typedef struct enqueue_arg {
    const char *webhook_id; /* NULL: every subscriber of the event */
    const char *entity, *action, *data_json, *body;
    int64_t ts_s, now;
    tally_delivery_id_fn make_id;
    size_t n;               /* rows queued */
    int64_t last_seq;
    char last_id[TALLY_WEBHOOK_ID_LEN + 1];
} enqueue_arg;

static int insert_delivery(tally__conn *c, enqueue_arg *q, const char *webhook_id, char *err,
                           size_t cap)
{
    STMT(st, "INSERT INTO webhook_deliveries(delivery_id, webhook_id, entity, action, "
             "data_json, body, timestamp_s, state, attempts, created_ms, next_attempt_ms) "
             "VALUES (?, ?, ?, ?, ?, ?, ?, 'PENDING', 0, ?, ?)");
    q->make_id(q->last_id);
    sqlite3_bind_text(st, 1, q->last_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, webhook_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 3, q->entity, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, q->action, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, q->data_json, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, q->body, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 7, q->ts_s);
    sqlite3_bind_int64(st, 8, q->now);
    sqlite3_bind_int64(st, 9, q->now);
    int rc = sqlite3_step(st);
    tally__stmt_done(st);
    if (rc != SQLITE_DONE)
        return tally__conn_error(c, err, cap);
    q->last_seq = sqlite3_last_insert_rowid(tally__conn_db(c));
    q->n++;
    return 0;
}

static int enqueue_fn(tally__conn *c, void *arg, char *err, size_t cap)
{
    enqueue_arg *q = arg;
    if (q->webhook_id) {
        STMT(st, "SELECT 1 FROM webhooks WHERE webhook_id = ? AND deleted_timestamp IS NULL");
        sqlite3_bind_text(st, 1, q->webhook_id, -1, SQLITE_STATIC);
        int rc = sqlite3_step(st);
        tally__stmt_done(st);
        if (rc == SQLITE_DONE) {
            not_found(q->webhook_id, err, cap);
            return TALLY_STORE_ENOTFOUND;
        }
        if (rc != SQLITE_ROW)
            return tally__conn_error(c, err, cap);
        return insert_delivery(c, q, q->webhook_id, err, cap);
    }
    /* Subscribers first (one statement open at a time keeps it simple):
     * webhook ids are 36 bytes, a few thousand at most. */
    STMT(st, "SELECT w.webhook_id FROM webhook_events e JOIN webhooks w "
             "ON w.webhook_id = e.webhook_id WHERE e.entity = ? AND e.action = ? "
             "AND w.status = 'ACTIVE' AND w.deleted_timestamp IS NULL ORDER BY w.rowid");
    sqlite3_bind_text(st, 1, q->entity, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, q->action, -1, SQLITE_STATIC);
    char(*ids)[TALLY_WEBHOOK_ID_LEN + 1] = NULL;
    size_t n = 0, capn = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (tally__vec_reserve(&ids, sizeof *ids, n, &capn, 8) != 0) {
            tally__stmt_done(st);
            free(ids);
            return TALLY_STORE_ENOMEM;
        }
        snprintf(ids[n++], sizeof *ids, "%s", tally__col_text(st, 0));
    }
    tally__stmt_done(st);
    if (rc != SQLITE_DONE) {
        free(ids);
        return tally__conn_error(c, err, cap);
    }
    for (size_t i = 0; i < n; i++)
        if ((rc = insert_delivery(c, q, ids[i], err, cap)) != 0)
            break;
    free(ids);
    return rc == SQLITE_DONE ? 0 : rc;
}

int tally_store_webhook_enqueue_event(tally_store *s, const char *entity, const char *action,
                                      const char *data_json, const char *body,
                                      int64_t timestamp_s, int64_t now_ms,
                                      tally_delivery_id_fn make_id, size_t *n_queued, char *err,
                                      size_t cap)
{
    enqueue_arg q = {NULL, entity, action, data_json, body, timestamp_s, now_ms, make_id, 0, 0,
                     ""};
    int rc = tally__store_write(s, enqueue_fn, &q, err, cap);
    *n_queued = rc == 0 ? q.n : 0;
    return rc;
}

#define DELIVERY_COLS                                                                      \
    "seq, delivery_id, webhook_id, entity, action, data_json, body, timestamp_s, state, "   \
    "attempts, created_ms, next_attempt_ms, coalesce(finished_ms, 0), "                    \
    "coalesce(last_status, 0), coalesce(last_error, '')"

static int read_delivery(sqlite3_stmt *st, int col0, tally_arena *a, tally_delivery *d)
{
    memset(d, 0, sizeof *d);
    d->seq = sqlite3_column_int64(st, col0 + 0);
    snprintf(d->delivery_id, sizeof d->delivery_id, "%s", tally__col_text(st, col0 + 1));
    snprintf(d->webhook_id, sizeof d->webhook_id, "%s", tally__col_text(st, col0 + 2));
    d->entity = tally__col_dup(a, st, col0 + 3);
    d->action = tally__col_dup(a, st, col0 + 4);
    d->data_json = tally__col_dup(a, st, col0 + 5);
    d->body = tally__col_dup(a, st, col0 + 6);
    d->timestamp_s = sqlite3_column_int64(st, col0 + 7);
    d->state = state_parse(tally__col_text(st, col0 + 8));
    d->attempts = sqlite3_column_int(st, col0 + 9);
    d->created_ms = sqlite3_column_int64(st, col0 + 10);
    d->next_attempt_ms = sqlite3_column_int64(st, col0 + 11);
    d->finished_ms = sqlite3_column_int64(st, col0 + 12);
    d->last_status = sqlite3_column_int(st, col0 + 13);
    d->last_error = tally__col_dup(a, st, col0 + 14);
    return d->entity && d->action && d->data_json && d->body && d->last_error
               ? 0
               : TALLY_STORE_ENOMEM;
}

static int read_log(tally__conn *c, tally_arena *a, tally_delivery *d, char *err, size_t cap)
{
    STMT(st, "SELECT attempt, started_ms, duration_ms, coalesce(response_status, 0), "
             "coalesce(error, ''), coalesce(response_snippet, '') FROM webhook_attempts "
             "WHERE seq = ? ORDER BY attempt");
    sqlite3_bind_int64(st, 1, d->seq);
    size_t capn = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (tally__arena_reserve(a, &d->log, sizeof *d->log, d->n_log, &capn, 4) != 0) {
            tally__stmt_done(st);
            return TALLY_STORE_ENOMEM;
        }
        tally_delivery_attempt *t = &d->log[d->n_log++];
        t->attempt = sqlite3_column_int(st, 0);
        t->started_ms = sqlite3_column_int64(st, 1);
        t->duration_ms = sqlite3_column_int64(st, 2);
        t->response_status = sqlite3_column_int(st, 3);
        t->error = tally__col_dup(a, st, 4);
        t->response_snippet = tally__col_dup(a, st, 5);
        if (!t->error || !t->response_snippet) {
            tally__stmt_done(st);
            return TALLY_STORE_ENOMEM;
        }
    }
    tally__stmt_done(st);
    return rc == SQLITE_DONE ? 0 : tally__conn_error(c, err, cap);
}

typedef struct one_arg {
    enqueue_arg q;
    const char *delivery_id;
    tally_arena *a;
    tally_delivery *out;
} one_arg;

static int get_delivery_locked(tally__conn *c, const char *webhook_id, const char *delivery_id,
                               tally_arena *a, tally_delivery *out, char *err, size_t cap)
{
    STMT(st, "SELECT " DELIVERY_COLS " FROM webhook_deliveries WHERE delivery_id = ? "
             "AND webhook_id = ?");
    sqlite3_bind_text(st, 1, delivery_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, webhook_id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        rc = read_delivery(st, 0, a, out);
    else if (rc == SQLITE_DONE) {
        snprintf(err, cap, "Delivery with ID %.100s not found for webhook %.100s.", delivery_id,
                 webhook_id);
        rc = TALLY_STORE_ENOTFOUND;
    } else
        rc = tally__conn_error(c, err, cap);
    tally__stmt_done(st);
    return rc ? rc : read_log(c, a, out, err, cap);
}

static int enqueue_one_fn(tally__conn *c, void *arg, char *err, size_t cap)
{
    one_arg *o = arg;
    int rc = enqueue_fn(c, &o->q, err, cap);
    if (rc != 0)
        return rc;
    return get_delivery_locked(c, o->q.webhook_id, o->q.last_id, o->a, o->out, err, cap);
}

int tally_store_webhook_enqueue_one(tally_store *s, const char *webhook_id, const char *entity,
                                    const char *action, const char *data_json, const char *body,
                                    int64_t timestamp_s, int64_t now_ms,
                                    tally_delivery_id_fn make_id, tally_arena *a,
                                    tally_delivery *out, char *err, size_t cap)
{
    one_arg o = {{webhook_id, entity, action, data_json, body, timestamp_s, now_ms, make_id, 0, 0,
                  ""},
                 NULL,
                 a,
                 out};
    return tally__store_write(s, enqueue_one_fn, &o, err, cap);
}

typedef struct claim_arg {
    int64_t now;
    size_t max;
    tally_arena *a;
    tally_delivery_claim **out;
    size_t *n;
} claim_arg;

static int claim_fn(tally__conn *c, void *arg, char *err, size_t cap)
{
    claim_arg *k = arg;
    STMT(st, "SELECT d.seq, d.delivery_id, d.webhook_id, d.entity, d.action, d.data_json, "
             "d.body, d.timestamp_s, d.state, d.attempts, d.created_ms, d.next_attempt_ms, "
             "coalesce(d.finished_ms, 0), coalesce(d.last_status, 0), "
             "coalesce(d.last_error, ''), w.url, w.secret, w.status, "
             "w.deleted_timestamp IS NOT NULL FROM webhook_deliveries d JOIN webhooks w "
             "ON w.webhook_id = d.webhook_id WHERE d.state = 'PENDING' AND "
             "d.next_attempt_ms <= ? ORDER BY d.next_attempt_ms, d.seq LIMIT ?");
    sqlite3_bind_int64(st, 1, k->now);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)k->max);
    size_t capn = 0;
    int rc;
    *k->n = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (tally__arena_reserve(k->a, k->out, sizeof **k->out, *k->n, &capn, 4) != 0) {
            tally__stmt_done(st);
            return TALLY_STORE_ENOMEM;
        }
        tally_delivery_claim *cl = &(*k->out)[*k->n];
        memset(cl, 0, sizeof *cl);
        if (read_delivery(st, 0, k->a, &cl->d) != 0) {
            tally__stmt_done(st);
            return TALLY_STORE_ENOMEM;
        }
        cl->url = tally__col_dup(k->a, st, 15);
        cl->secret = tally__col_dup(k->a, st, 16);
        cl->webhook_status = strcmp(tally__col_text(st, 17), "DISABLED") == 0
                                 ? TALLY_WEBHOOK_DISABLED
                                 : TALLY_WEBHOOK_ACTIVE;
        cl->webhook_deleted = sqlite3_column_int(st, 18);
        if (!cl->url || !cl->secret) {
            tally__stmt_done(st);
            return TALLY_STORE_ENOMEM;
        }
        cl->d.state = TALLY_DELIVERY_IN_FLIGHT;
        (*k->n)++;
    }
    tally__stmt_done(st);
    if (rc != SQLITE_DONE)
        return tally__conn_error(c, err, cap);
    STMT(up, "UPDATE webhook_deliveries SET state = 'IN_FLIGHT' WHERE seq = ?");
    for (size_t i = 0; i < *k->n; i++) {
        sqlite3_bind_int64(up, 1, (*k->out)[i].d.seq);
        rc = sqlite3_step(up);
        tally__stmt_done(up);
        if (rc != SQLITE_DONE)
            return tally__conn_error(c, err, cap);
    }
    return 0;
}

int tally_store_webhook_claim(tally_store *s, int64_t now_ms, size_t max, tally_arena *a,
                              tally_delivery_claim **out, size_t *n, char *err, size_t cap)
{
    *out = NULL;
    *n = 0;
    claim_arg k = {now_ms, max, a, out, n};
    int rc = tally__store_write(s, claim_fn, &k, err, cap);
    if (rc != 0)
        *n = 0;
    return rc;
}

/* The log retention of store_webhooks.h, for the webhook of row seq. */
static int prune(tally__conn *c, int64_t seq, unsigned keep, char *err, size_t cap)
{
    if (keep == 0 || seq % TALLY_WEBHOOK_PRUNE_EVERY != 0)
        return 0;
#define OLD_ROWS                                                                           \
    "SELECT seq FROM webhook_deliveries WHERE webhook_id = "                              \
    "(SELECT webhook_id FROM webhook_deliveries WHERE seq = ?1) "                         \
    "AND state IN ('SUCCEEDED', 'FAILED') ORDER BY seq DESC LIMIT -1 OFFSET ?2"
    static const char *const sql[2] = {
        "DELETE FROM webhook_attempts WHERE seq IN (" OLD_ROWS ")",
        "DELETE FROM webhook_deliveries WHERE seq IN (" OLD_ROWS ")",
    };
#undef OLD_ROWS
    for (int i = 0; i < 2; i++) {
        STMT(st, sql[i]);
        sqlite3_bind_int64(st, 1, seq);
        sqlite3_bind_int64(st, 2, keep);
        int rc = sqlite3_step(st);
        tally__stmt_done(st);
        if (rc != SQLITE_DONE)
            return tally__conn_error(c, err, cap);
    }
    return 0;
}

typedef struct record_arg {
    int64_t seq;
    const tally_delivery_attempt *att;
    int state;
    int64_t next;
    unsigned keep;
} record_arg;

static int record_fn(tally__conn *c, void *arg, char *err, size_t cap)
{
    record_arg *r = arg;
    const tally_delivery_attempt *t = r->att;
    STMT(ins, "INSERT INTO webhook_attempts(seq, attempt, started_ms, duration_ms, "
              "response_status, error, response_snippet) SELECT seq, attempts + 1, ?, ?, ?, ?, ? "
              "FROM webhook_deliveries WHERE seq = ? AND state = 'IN_FLIGHT'");
    sqlite3_bind_int64(ins, 1, t->started_ms);
    sqlite3_bind_int64(ins, 2, t->duration_ms);
    if (t->response_status)
        sqlite3_bind_int(ins, 3, t->response_status);
    if (t->error && *t->error)
        sqlite3_bind_text(ins, 4, t->error, -1, SQLITE_STATIC);
    if (t->response_snippet && *t->response_snippet)
        sqlite3_bind_text(ins, 5, t->response_snippet, -1, SQLITE_STATIC);
    sqlite3_bind_int64(ins, 6, r->seq);
    int rc = sqlite3_step(ins);
    tally__stmt_done(ins);
    if (rc != SQLITE_DONE)
        return tally__conn_error(c, err, cap);
    if (sqlite3_changes(tally__conn_db(c)) == 0) {
        snprintf(err, cap, "delivery %lld is not in flight", (long long)r->seq);
        return TALLY_STORE_ESTATE;
    }
    int done = r->state == TALLY_DELIVERY_SUCCEEDED || r->state == TALLY_DELIVERY_FAILED;
    STMT(up, "UPDATE webhook_deliveries SET state = ?, attempts = attempts + 1, "
             "next_attempt_ms = ?, finished_ms = ?, last_status = ?, last_error = ? "
             "WHERE seq = ?");
    sqlite3_bind_text(up, 1, tally_delivery_state_name(r->state), -1, SQLITE_STATIC);
    sqlite3_bind_int64(up, 2, done ? t->started_ms + t->duration_ms : r->next);
    if (done)
        sqlite3_bind_int64(up, 3, t->started_ms + t->duration_ms);
    if (t->response_status)
        sqlite3_bind_int(up, 4, t->response_status);
    if (t->error && *t->error)
        sqlite3_bind_text(up, 5, t->error, -1, SQLITE_STATIC);
    sqlite3_bind_int64(up, 6, r->seq);
    rc = sqlite3_step(up);
    tally__stmt_done(up);
    if (rc != SQLITE_DONE)
        return tally__conn_error(c, err, cap);
    return done ? prune(c, r->seq, r->keep, err, cap) : 0;
}

int tally_store_webhook_record(tally_store *s, int64_t seq, const tally_delivery_attempt *att,
                               int state, int64_t next_attempt_ms, unsigned keep, char *err,
                               size_t cap)
{
    record_arg r = {seq, att, state, next_attempt_ms, keep};
    return tally__store_write(s, record_fn, &r, err, cap);
}

typedef struct cancel_arg {
    int64_t seq;
    const char *reason;
    int64_t now;
    unsigned keep;
} cancel_arg;

static int cancel_fn(tally__conn *c, void *arg, char *err, size_t cap)
{
    cancel_arg *k = arg;
    STMT(st, "UPDATE webhook_deliveries SET state = 'FAILED', finished_ms = ?, last_error = ? "
             "WHERE seq = ? AND state = 'IN_FLIGHT'");
    sqlite3_bind_int64(st, 1, k->now);
    sqlite3_bind_text(st, 2, k->reason, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, k->seq);
    int rc = sqlite3_step(st);
    tally__stmt_done(st);
    if (rc != SQLITE_DONE)
        return tally__conn_error(c, err, cap);
    return prune(c, k->seq, k->keep, err, cap);
}

int tally_store_webhook_cancel(tally_store *s, int64_t seq, const char *reason, int64_t now_ms,
                               unsigned keep, char *err, size_t cap)
{
    cancel_arg k = {seq, reason, now_ms, keep};
    return tally__store_write(s, cancel_fn, &k, err, cap);
}

static int release_fn(tally__conn *c, void *arg, char *err, size_t cap)
{
    int64_t seq = *(int64_t *)arg;
    STMT(st, "UPDATE webhook_deliveries SET state = 'PENDING' WHERE state = 'IN_FLIGHT' AND "
             "(? < 0 OR seq = ?)");
    sqlite3_bind_int64(st, 1, seq);
    sqlite3_bind_int64(st, 2, seq);
    int rc = sqlite3_step(st);
    tally__stmt_done(st);
    return rc == SQLITE_DONE ? 0 : tally__conn_error(c, err, cap);
}

int tally_store_webhook_release(tally_store *s, int64_t seq, char *err, size_t cap)
{
    return tally__store_write(s, release_fn, &seq, err, cap);
}

typedef struct due_arg {
    int64_t *next;
    int *any;
} due_arg;

static int due_fn(tally__conn *c, void *arg, char *err, size_t cap)
{
    due_arg *d = arg;
    STMT(st, "SELECT min(next_attempt_ms) FROM webhook_deliveries WHERE state = 'PENDING'");
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *d->any = sqlite3_column_type(st, 0) != SQLITE_NULL;
        *d->next = sqlite3_column_int64(st, 0);
        rc = 0;
    } else
        rc = tally__conn_error(c, err, cap);
    tally__stmt_done(st);
    return rc;
}

int tally_store_webhook_next_due(tally_store *s, int64_t *next_ms, int *any, char *err,
                                 size_t cap)
{
    *any = 0;
    *next_ms = 0;
    due_arg d = {next_ms, any};
    return tally__store_read(s, due_fn, &d, err, cap);
}

typedef struct deliveries_arg {
    const char *webhook_id, *delivery_id;
    size_t max;
    uint64_t offset;
    tally_arena *a;
    tally_delivery **out;
    size_t *n;
    int *more;
} deliveries_arg;

static int webhook_exists(tally__conn *c, const char *id, char *err, size_t cap)
{
    STMT(st, "SELECT 1 FROM webhooks WHERE webhook_id = ? AND deleted_timestamp IS NULL");
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    tally__stmt_done(st);
    if (rc == SQLITE_ROW)
        return 0;
    if (rc != SQLITE_DONE)
        return tally__conn_error(c, err, cap);
    not_found(id, err, cap);
    return TALLY_STORE_ENOTFOUND;
}

static int deliveries_fn(tally__conn *c, void *arg, char *err, size_t cap)
{
    deliveries_arg *l = arg;
    int rc = webhook_exists(c, l->webhook_id, err, cap);
    if (rc != 0)
        return rc;
    STMT(st, "SELECT " DELIVERY_COLS " FROM webhook_deliveries WHERE webhook_id = ? "
             "ORDER BY seq DESC LIMIT ? OFFSET ?");
    sqlite3_bind_text(st, 1, l->webhook_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)l->max + 1);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)l->offset);
    size_t capn = 0;
    *l->n = 0;
    *l->more = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (*l->n == l->max) {
            *l->more = 1;
            break;
        }
        if (tally__arena_reserve(l->a, l->out, sizeof **l->out, *l->n, &capn, 16) != 0 ||
            read_delivery(st, 0, l->a, &(*l->out)[*l->n]) != 0) {
            tally__stmt_done(st);
            return TALLY_STORE_ENOMEM;
        }
        (*l->n)++;
    }
    tally__stmt_done(st);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW)
        return tally__conn_error(c, err, cap);
    for (size_t i = 0; i < *l->n; i++)
        if ((rc = read_log(c, l->a, &(*l->out)[i], err, cap)) != 0)
            return rc;
    return 0;
}

int tally_store_webhook_deliveries(tally_store *s, const char *webhook_id, size_t max,
                                   uint64_t offset, tally_arena *a, tally_delivery **out,
                                   size_t *n, int *more, char *err, size_t cap)
{
    *out = NULL;
    deliveries_arg l = {webhook_id, NULL, max, offset, a, out, n, more};
    return tally__store_read(s, deliveries_fn, &l, err, cap);
}

static int delivery_fn(tally__conn *c, void *arg, char *err, size_t cap)
{
    deliveries_arg *l = arg;
    int rc = webhook_exists(c, l->webhook_id, err, cap);
    if (rc != 0)
        return rc;
    return get_delivery_locked(c, l->webhook_id, l->delivery_id, l->a, *l->out, err, cap);
}

int tally_store_webhook_delivery(tally_store *s, const char *webhook_id, const char *delivery_id,
                                 tally_arena *a, tally_delivery *out, char *err, size_t cap)
{
    deliveries_arg l = {webhook_id, delivery_id, 0, 0, a, &out, NULL, NULL};
    return tally__store_read(s, delivery_fn, &l, err, cap);
}

typedef struct count_arg {
    int state;
    int64_t *n;
} count_arg;

static int count_fn(tally__conn *c, void *arg, char *err, size_t cap)
{
    count_arg *k = arg;
    STMT(st, "SELECT count(*) FROM webhook_deliveries WHERE state = ?");
    sqlite3_bind_text(st, 1, tally_delivery_state_name(k->state), -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *k->n = sqlite3_column_int64(st, 0);
        rc = 0;
    } else
        rc = tally__conn_error(c, err, cap);
    tally__stmt_done(st);
    return rc;
}

int tally_store_webhook_count(tally_store *s, int state, int64_t *n, char *err, size_t cap)
{
    count_arg k = {state, n};
    return tally__store_read(s, count_fn, &k, err, cap);
}

typedef struct seal_arg {
    const char *prefix;
    char *(*seal)(void *ctx, const char *plain);
    void *ctx;
    size_t n_sealed, n_rewritten;
} seal_arg;

static int seal_fn(tally__conn *c, void *arg, char *err, size_t cap)
{
    seal_arg *g = arg;
    STMT(sel, "SELECT webhook_id, secret FROM webhooks WHERE secret <> '' ORDER BY webhook_id");
    STMT(upd, "UPDATE webhooks SET secret = ? WHERE webhook_id = ?");
    size_t plen = strlen(g->prefix);
    int rc;
    while ((rc = sqlite3_step(sel)) == SQLITE_ROW) {
        const char *secret = tally__col_text(sel, 1);
        if (strncmp(secret, g->prefix, plen) == 0) {
            g->n_sealed++;
            continue;
        }
        if (!g->seal)
            continue;
        char *sealed = g->seal(g->ctx, secret);
        if (!sealed) {
            tally__stmt_done(sel);
            snprintf(err, cap, "Out of memory.");
            return TALLY_STORE_ENOMEM;
        }
        /* Updating a row the SELECT has passed is safe in SQLite (same
         * connection; the secret column is not the scan's order). */
        sqlite3_bind_text(upd, 1, sealed, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(upd, 2, tally__col_text(sel, 0), -1, SQLITE_TRANSIENT);
        rc = sqlite3_step(upd);
        tally__stmt_done(upd);
        free(sealed);
        if (rc != SQLITE_DONE) {
            tally__stmt_done(sel);
            return tally__conn_error(c, err, cap);
        }
        g->n_rewritten++;
    }
    tally__stmt_done(sel);
    return rc == SQLITE_DONE ? 0 : tally__conn_error(c, err, cap);
}

int tally_store_webhook_seal_secrets(tally_store *s, const char *sealed_prefix,
                                     char *(*seal)(void *ctx, const char *plain), void *ctx,
                                     size_t *n_sealed, size_t *n_rewritten, char *err, size_t cap)
{
    seal_arg g = {sealed_prefix, seal, ctx, 0, 0};
    int rc = tally__store_write(s, seal_fn, &g, err, cap);
    *n_sealed = g.n_sealed;
    *n_rewritten = rc == 0 ? g.n_rewritten : 0;
    return rc;
}
