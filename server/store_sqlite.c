/*
 * store_sqlite.c — the SQLite implementation of the metadata store (store.h).
 *
 * Connections:
 *
 *   tally_store
 *    |- writer  (one connection, wlock mutex): every write runs here inside
 *    |          BEGIN IMMEDIATE ... COMMIT, so writes are serialized in the
 *    |          process and SQLite never answers SQLITE_BUSY between our own
 *    |          writers; reads that decide a write (is the run active?) run
 *    |          inside the same transaction.
 *    |- readers (pool, up to max_readers, opened on demand, query_only): a
 *    |          read takes one, runs in a deferred read transaction (a
 *    |          consistent WAL snapshot across its queries), gives it back.
 *    |- run-state cache (rs_*): run id -> (active, experiment id).
 *
 * A write scope (tally_store_scope_begin/end) holds the writer and its
 * transaction across several calls of one thread: inside it a write is a
 * savepoint (SAVEPOINT/RELEASE, ROLLBACK TO on failure) and a read runs on
 * the writer (scope_of_thread says which store this thread's scope is on).
 *
 * Every connection caches its prepared statements (stmt_get) for its life:
 * SQL text is compiled once per connection, not per request. Statements are
 * reset and their bindings cleared after each use (stmt_done), so a borrowed
 * input pointer bound with SQLITE_STATIC never outlives the call.
 *
 * Invariants:
 *  (1) A connection is used by one thread at a time (writer: under wlock;
 *      readers: owned between pool_get and pool_put). Connections are opened
 *      SQLITE_OPEN_NOMUTEX for that reason.
 *  (2) The run-state cache never holds a state older than the last committed
 *      lifecycle change of that run: writers update it after COMMIT and bump
 *      rs_gen; a reader that filled a miss from the database inserts only if
 *      rs_gen did not move meanwhile (so it cannot resurrect a stale state).
 *      Inside a write scope nothing is committed until its end: a change
 *      empties the cache then and again at the end, and the scope's own
 *      reads neither use nor fill it.
 *  (3) Every write transaction either commits whole or rolls back whole; on a
 *      validation error nothing was written.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <sqlite3.h>

#include "buf.h"
#include "store.h"
#include "store_internal.h"

/* ------------------------------------------------------------------------ */
/* Statements                                                                */
/* ------------------------------------------------------------------------ */

#define EXP_COLS "experiment_id, name, artifact_location, lifecycle_stage, creation_time, " \
                 "last_update_time"
#define RUN_COLS "run_uuid, name, experiment_id, user_id, status, start_time, end_time, " \
                 "lifecycle_stage, deleted_time, artifact_uri, run_key"
#define N_RUN_COLS 11
/* The run_key of run_uuid ?1, for statements addressed by uuid. */
#define KEY_OF_1 "(SELECT run_key FROM runs WHERE run_uuid = ?1)"

#define STMTS(X)                                                                           \
    X(BEGIN_W, "BEGIN IMMEDIATE")                                                          \
    X(BEGIN_R, "BEGIN")                                                                    \
    X(COMMIT, "COMMIT")                                                                    \
    X(ROLLBACK, "ROLLBACK")                                                                \
    X(SAVEPOINT, "SAVEPOINT scoped_write")                                                 \
    X(RELEASE, "RELEASE scoped_write")                                                     \
    X(ROLLBACK_TO, "ROLLBACK TO scoped_write")                                             \
    X(EXP_INSERT, "INSERT INTO experiments(name, artifact_location, lifecycle_stage, "     \
                  "creation_time, last_update_time) VALUES (?1, ?2, 'active', ?3, ?3)")    \
    X(EXP_SET_LOCATION, "UPDATE experiments SET artifact_location = ?2 WHERE experiment_id = ?1") \
    X(EXP_GET, "SELECT " EXP_COLS " FROM experiments WHERE experiment_id = ?1")            \
    X(EXP_GET_BY_NAME, "SELECT " EXP_COLS " FROM experiments WHERE name = ?1")             \
    X(EXP_TAGS, "SELECT key, value FROM experiment_tags WHERE experiment_id = ?1 ORDER BY key") \
    X(EXP_RENAME, "UPDATE experiments SET name = ?2, last_update_time = ?3 "               \
                  "WHERE experiment_id = ?1")                                              \
    X(EXP_SET_STAGE, "UPDATE experiments SET lifecycle_stage = ?2, last_update_time = ?3 " \
                     "WHERE experiment_id = ?1")                                           \
    X(EXP_RUNS_DELETE, "UPDATE runs SET lifecycle_stage = 'deleted', deleted_time = ?2 "   \
                       "WHERE experiment_id = ?1 AND lifecycle_stage = 'active'")          \
    X(EXP_RUNS_RESTORE, "UPDATE runs SET lifecycle_stage = 'active', deleted_time = NULL " \
                        "WHERE experiment_id = ?1")                                        \
    X(EXP_TAG_UPSERT, "INSERT INTO experiment_tags(experiment_id, key, value) "            \
                      "VALUES (?1, ?2, ?3) ON CONFLICT(experiment_id, key) "               \
                      "DO UPDATE SET value = excluded.value")                              \
    X(EXP_TAG_DELETE, "DELETE FROM experiment_tags WHERE experiment_id = ?1 AND key = ?2") \
    X(EXP_LIST, "SELECT " EXP_COLS " FROM experiments WHERE ?1 = 3 OR lifecycle_stage = "  \
                "(CASE ?1 WHEN 1 THEN 'active' ELSE 'deleted' END) ORDER BY experiment_id") \
    X(EXP_TAGS_ALL, "SELECT experiment_id, key, value FROM experiment_tags "               \
                    "ORDER BY experiment_id, key")                                         \
    X(RUN_INSERT, "INSERT INTO runs(run_uuid, name, experiment_id, user_id, status, "      \
                  "start_time, end_time, lifecycle_stage, deleted_time, artifact_uri) "    \
                  "VALUES (?1, ?2, ?3, ?4, 'RUNNING', ?5, NULL, 'active', NULL, ?6)")      \
    X(RUN_GET, "SELECT " RUN_COLS " FROM runs WHERE run_uuid = ?1")                        \
    X(RUN_STATE, "SELECT lifecycle_stage, experiment_id FROM runs WHERE run_uuid = ?1")    \
    X(RUN_PARAMS, "SELECT key, value FROM params WHERE run_key = ?1 ORDER BY key")         \
    X(RUN_TAGS, "SELECT key, value FROM tags WHERE run_key = ?1 ORDER BY key")             \
    X(RUN_INPUTS, "SELECT d.dataset_uuid, d.name, d.digest, d.source_type, d.source, "     \
                  "d.schema, d.profile FROM run_inputs i JOIN datasets d "                 \
                  "ON d.dataset_uuid = i.dataset_uuid WHERE i.run_key = ?1 ORDER BY i.seq") \
    X(RUN_INPUT_TAGS, "SELECT dataset_uuid, key, value FROM input_tags WHERE run_key = ?1 " \
                      "ORDER BY dataset_uuid, key")                                        \
    X(RUN_SET_STATUS, "UPDATE runs SET status = ?2 WHERE run_uuid = ?1")                   \
    X(RUN_SET_END, "UPDATE runs SET end_time = ?2 WHERE run_uuid = ?1")                    \
    X(RUN_SET_NAME, "UPDATE runs SET name = ?2 WHERE run_uuid = ?1")                       \
    X(RUN_SET_STAGE, "UPDATE runs SET lifecycle_stage = ?2, deleted_time = ?3 "            \
                     "WHERE run_uuid = ?1")                                                \
    X(TAG_UPSERT, "INSERT INTO tags(run_key, key, value) VALUES (" KEY_OF_1 ", ?2, ?3) "   \
                  "ON CONFLICT(run_key, key) DO UPDATE SET value = excluded.value")        \
    X(TAG_DELETE, "DELETE FROM tags WHERE run_key = " KEY_OF_1 " AND key = ?2")            \
    X(PARAM_GET, "SELECT value FROM params WHERE run_key = " KEY_OF_1 " AND key = ?2")     \
    X(PARAM_INSERT, "INSERT INTO params(run_key, key, value) VALUES (" KEY_OF_1 ", ?2, ?3)") \
    X(DATASET_FIND, "SELECT dataset_uuid FROM datasets WHERE name = ?1 AND digest = ?2 "   \
                    "ORDER BY experiment_id = ?3 DESC, experiment_id LIMIT 1")             \
    X(DATASET_INSERT, "INSERT INTO datasets(dataset_uuid, experiment_id, name, digest, "   \
                      "source_type, source, schema, profile) "                             \
                      "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)")                           \
    X(INPUT_LINK, "INSERT OR IGNORE INTO run_inputs(run_key, dataset_uuid, seq) "          \
                  "SELECT r.run_key, ?2, (SELECT coalesce(max(seq), 0) + 1 FROM "          \
                  "run_inputs WHERE run_key = r.run_key) FROM runs r WHERE r.run_uuid = ?1") \
    X(INPUT_TAG_UPSERT, "INSERT OR REPLACE INTO input_tags(run_key, dataset_uuid, key, "   \
                        "value) VALUES (" KEY_OF_1 ", ?2, ?3, ?4)")                        \
    X(SCHEMA_VERSION, "SELECT coalesce(max(version), 0) FROM tally_schema_version")

enum {
#define STMT_ENUM_(name, sql) ST_##name,
    STMTS(STMT_ENUM_)
#undef STMT_ENUM_
    N_STMTS
};

static const char *const stmt_sql[N_STMTS] = {
#define STMT_SQL_(name, sql) sql,
    STMTS(STMT_SQL_)
#undef STMT_SQL_
};

/* ------------------------------------------------------------------------ */
/* Store                                                                     */
/* ------------------------------------------------------------------------ */

#define MODULE_STMT_SLOTS 256 /* statements cached per connection for store modules */

typedef struct module_stmt {
    const char *sql;           /* the module's static SQL text: the cache key is its address */
    sqlite3_stmt *st;
} module_stmt;

typedef struct conn {
    sqlite3 *db;
    sqlite3_stmt *st[N_STMTS]; /* prepared on first use, kept for the connection's life */
    struct conn *next_free;    /* pool free list (readers only) */
    module_stmt *mod;          /* MODULE_STMT_SLOTS, open addressing; NULL until first use */
} conn;

typedef struct rs_entry {
    char id[TALLY_RUN_ID_LEN]; /* run id, not NUL-terminated */
    uint8_t used;              /* slot holds an entry */
    uint8_t active;            /* lifecycle_stage == active */
    int64_t experiment_id;
} rs_entry;

#define RS_MAX_ENTRIES (1u << 21) /* beyond this the cache is cleared and refills */

struct tally_store {
    tally_store_options opts;
    char root[1024];           /* default artifact root */
    char *path;                /* database file */

    pthread_mutex_t wlock;     /* serializes writes on `writer` */
    int scope_broken;          /* under wlock: the open scope's transaction ended (wend_scoped) */
    int scope_rs_dirty;        /* under wlock: the open scope changed a run's lifecycle */
    conn writer;

    pthread_mutex_t pool_lock; /* guards the reader pool */
    pthread_cond_t pool_cv;    /* a reader was returned */
    conn *pool_free;           /* idle readers */
    conn **pool_all;           /* every reader opened (max_readers slots) */
    unsigned pool_open;        /* readers opened or being opened */

    pthread_mutex_t rs_lock;   /* guards the run-state cache */
    rs_entry *rs_slots;        /* open addressing, linear probing, power-of-two size */
    size_t rs_cap;             /* slots */
    size_t rs_n;               /* used slots */
    uint64_t rs_gen;           /* bumped by every lifecycle change (invariant 2) */
};

static void set_err(char *err, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t cap, const char *fmt, ...)
{
    if (!err || !cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, cap, fmt, ap);
    va_end(ap);
}

/* Maps the connection's last SQLite error to a store code with a message. */
static int dberr(conn *c, char *err, size_t cap)
{
    int code = sqlite3_errcode(c->db) & 0xff;
    set_err(err, cap, "metadata database error: %s", sqlite3_errmsg(c->db));
    if (code == SQLITE_NOMEM)
        return TALLY_STORE_ENOMEM;
    if (code == SQLITE_CONSTRAINT)
        return TALLY_STORE_ECONFLICT;
    return TALLY_STORE_EIO;
}

static sqlite3_stmt *stmt_get(conn *c, int id)
{
    if (!c->st[id] && sqlite3_prepare_v3(c->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT,
                                         &c->st[id], NULL) != SQLITE_OK) {
        c->st[id] = NULL;
        return NULL;
    }
    return c->st[id];
}

static void stmt_done(sqlite3_stmt *st)
{
    if (st) {
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
    }
}

/* Runs a statement with no result rows. */
static int stmt_exec(conn *c, sqlite3_stmt *st, char *err, size_t cap)
{
    int rc = sqlite3_step(st);
    int out = (rc == SQLITE_DONE || rc == SQLITE_ROW) ? 0 : dberr(c, err, cap);
    stmt_done(st);
    return out;
}

static int exec_id(conn *c, int id, char *err, size_t cap)
{
    sqlite3_stmt *st = stmt_get(c, id);
    if (!st)
        return dberr(c, err, cap);
    return stmt_exec(c, st, err, cap);
}

#define GET_STMT(var, c, id)                                                               \
    sqlite3_stmt *var = stmt_get((c), (id));                                               \
    if (!var)                                                                              \
        return dberr((c), err, cap)

static void bind_text(sqlite3_stmt *st, int i, const char *s)
{
    sqlite3_bind_text(st, i, s ? s : "", -1, SQLITE_STATIC);
}

static void bind_text_n(sqlite3_stmt *st, int i, const char *s, size_t n)
{
    sqlite3_bind_text(st, i, s ? s : "", (int)n, SQLITE_STATIC);
}

const char *tally__col_text(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return t ? (const char *)t : "";
}

char *tally__col_dup(tally_arena *a, sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return tally_arena_strndup(a, t ? (const char *)t : "", (size_t)sqlite3_column_bytes(st, i));
}

char *tally__col_dup_null(tally_arena *a, sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    if (!t)
        return NULL;
    return tally_arena_strndup(a, (const char *)t, (size_t)sqlite3_column_bytes(st, i));
}

static int open_conn(tally_store *s, conn *c, int reader, char *err, size_t cap)
{
    memset(c, 0, sizeof *c);
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    if (sqlite3_open_v2(s->path, &c->db, flags, NULL) != SQLITE_OK) {
        set_err(err, cap, "cannot open metadata database %s: %s", s->path,
                c->db ? sqlite3_errmsg(c->db) : "out of memory");
        sqlite3_close(c->db);
        c->db = NULL;
        return TALLY_STORE_EIO;
    }
    sqlite3_busy_timeout(c->db, s->opts.busy_timeout_ms);
    sqlite3_extended_result_codes(c->db, 1);
    char pragmas[320];
    snprintf(pragmas, sizeof pragmas,
             "PRAGMA foreign_keys = ON; PRAGMA synchronous = %s; PRAGMA temp_store = MEMORY;"
             " PRAGMA mmap_size = 268435456; PRAGMA cache_size = -8192;%s",
             s->opts.synchronous_full ? "FULL" : "NORMAL",
             reader ? " PRAGMA query_only = ON;" : "");
    char *msg = NULL;
    if (sqlite3_exec(c->db, pragmas, NULL, NULL, &msg) != SQLITE_OK) {
        set_err(err, cap, "metadata database %s: %s", s->path, msg ? msg : "pragma failed");
        sqlite3_free(msg);
        sqlite3_close(c->db);
        c->db = NULL;
        return TALLY_STORE_EIO;
    }
    return 0;
}

static void close_conn(conn *c)
{
    if (!c || !c->db)
        return;
    for (int i = 0; i < N_STMTS; i++)
        sqlite3_finalize(c->st[i]);
    if (c->mod)
        for (int i = 0; i < MODULE_STMT_SLOTS; i++)
            sqlite3_finalize(c->mod[i].st);
    free(c->mod);
    c->mod = NULL;
    sqlite3_close(c->db);
    c->db = NULL;
}

void tally_store_memory_get(tally_store_memory *out)
{
    sqlite3_int64 cur = 0, hi = 0;
    sqlite3_status64(SQLITE_STATUS_MEMORY_USED, &cur, &hi, 0);
    out->heap_bytes = cur > 0 ? (uint64_t)cur : 0;
    /* No SQLITE_CONFIG_PAGECACHE buffer is configured, so every page-cache
     * allocation is an "overflow" one, taken from the heap. */
    cur = 0;
    sqlite3_status64(SQLITE_STATUS_PAGECACHE_OVERFLOW, &cur, &hi, 0);
    out->page_cache_bytes = cur > 0 ? (uint64_t)cur : 0;
}

void tally_store_memory_limit(uint64_t bytes)
{
    sqlite3_soft_heap_limit64(bytes > INT64_MAX ? INT64_MAX : (sqlite3_int64)bytes);
}

void tally_store_options_init(tally_store_options *o)
{
    memset(o, 0, sizeof *o);
    o->default_artifact_root = "mlflow-artifacts:/";
    o->max_readers = 16;
    o->busy_timeout_ms = 10000;
}

int tally_store_open(const char *path, tally_store **out, char *err, size_t cap)
{
    return tally_store_open_opts(path, NULL, out, err, cap);
}

static conn *rbegin(tally_store *s, int *rc, char *err, size_t cap);
static int rend(tally_store *s, conn *c, int rc);

/* Opens every reader of the pool now (opts.open_readers): takes them all
 * at once, which opens each, then gives them back. */
static int open_all_readers(tally_store *s, char *err, size_t cap)
{
    conn **held = calloc(s->opts.max_readers, sizeof *held);
    if (!held)
        return TALLY_STORE_ENOMEM;
    int rc = 0;
    unsigned n = 0;
    while (n < s->opts.max_readers && rc == 0 && (held[n] = rbegin(s, &rc, err, cap)) != NULL)
        n++;
    for (unsigned i = 0; i < n; i++)
        rend(s, held[i], 0);
    free(held);
    return rc;
}

int tally_store_open_opts(const char *path, const tally_store_options *opts, tally_store **out,
                          char *err, size_t cap)
{
    *out = NULL;
    tally_store *s = calloc(1, sizeof *s);
    if (!s)
        return TALLY_STORE_ENOMEM;
    tally_store_options_init(&s->opts);
    if (opts) {
        if (opts->default_artifact_root && *opts->default_artifact_root)
            s->opts.default_artifact_root = opts->default_artifact_root;
        if (opts->max_readers)
            s->opts.max_readers = opts->max_readers;
        if (opts->busy_timeout_ms > 0)
            s->opts.busy_timeout_ms = opts->busy_timeout_ms;
        s->opts.synchronous_full = opts->synchronous_full;
        s->opts.open_readers = opts->open_readers;
    }
    snprintf(s->root, sizeof s->root, "%s", s->opts.default_artifact_root);
    s->opts.default_artifact_root = s->root;
    s->path = strdup(path);
    s->pool_all = calloc(s->opts.max_readers, sizeof *s->pool_all);
    s->rs_cap = 1024;
    s->rs_slots = calloc(s->rs_cap, sizeof *s->rs_slots);
    if (!s->path || !s->pool_all || !s->rs_slots) {
        free(s->path);
        free(s->pool_all);
        free(s->rs_slots);
        free(s);
        return TALLY_STORE_ENOMEM;
    }
    pthread_mutex_init(&s->wlock, NULL);
    pthread_mutex_init(&s->pool_lock, NULL);
    pthread_cond_init(&s->pool_cv, NULL);
    pthread_mutex_init(&s->rs_lock, NULL);

    int rc = open_conn(s, &s->writer, 0, err, cap);
    if (rc == 0) {
        char *msg = NULL;
        /* WAL is persistent in the file; setting it again is a no-op. */
        if (sqlite3_exec(s->writer.db, "PRAGMA journal_mode = WAL", NULL, NULL, &msg) !=
            SQLITE_OK) {
            set_err(err, cap, "metadata database %s: cannot enable WAL: %s", path,
                    msg ? msg : "");
            rc = TALLY_STORE_EIO;
        }
        sqlite3_free(msg);
    }
    if (rc == 0)
        rc = tally__store_migrate(s->writer.db, s->root, err, cap);
    if (rc == 0 && s->opts.open_readers)
        rc = open_all_readers(s, err, cap);
    if (rc != 0) {
        tally_store_close(s);
        return rc;
    }
    *out = s;
    return 0;
}

void tally_store_close(tally_store *s)
{
    if (!s)
        return;
    close_conn(&s->writer);
    for (unsigned i = 0; i < s->opts.max_readers; i++) {
        if (s->pool_all && s->pool_all[i]) {
            close_conn(s->pool_all[i]);
            free(s->pool_all[i]);
        }
    }
    pthread_mutex_destroy(&s->wlock);
    pthread_mutex_destroy(&s->pool_lock);
    pthread_cond_destroy(&s->pool_cv);
    pthread_mutex_destroy(&s->rs_lock);
    free(s->pool_all);
    free(s->rs_slots);
    free(s->path);
    free(s);
}

/* ------------------------------------------------------------------------ */
/* Transactions                                                              */
/* ------------------------------------------------------------------------ */

/* Takes the writer and opens an IMMEDIATE transaction. On success the caller
 * must call wend. */
/* The store whose write scope this thread holds (tally_store_scope_begin),
 * or NULL: inside it, wbegin/wend become a savepoint on the writer, which
 * this thread already holds, and rbegin/rend read on the writer too (so a
 * scope's reads see its own writes). */
static _Thread_local tally_store *scope_of_thread;

static void rs_forget_all(tally_store *s);

static conn *wbegin(tally_store *s, int *rc, char *err, size_t cap)
{
    if (scope_of_thread == s) {
        *rc = s->scope_broken ? TALLY_STORE_EIO : exec_id(&s->writer, ST_SAVEPOINT, err, cap);
        if (s->scope_broken && err && cap)
            snprintf(err, cap, "The enclosing write transaction failed.");
        return *rc == 0 ? &s->writer : NULL;
    }
    pthread_mutex_lock(&s->wlock);
    *rc = exec_id(&s->writer, ST_BEGIN_W, err, cap);
    if (*rc != 0) {
        pthread_mutex_unlock(&s->wlock);
        return NULL;
    }
    return &s->writer;
}

/* Inside a scope: releases the savepoint, or rolls back to it on failure;
 * the writer stays with the scope. If SQLite ended the whole transaction
 * (an I/O error rolls it back), the scope is marked broken: its end rolls
 * back and reports the failure. */
static int wend_scoped(tally_store *s, int rc, char *err, size_t cap)
{
    if (rc == 0 && (rc = exec_id(&s->writer, ST_RELEASE, err, cap)) == 0)
        return 0;
    if (!sqlite3_get_autocommit(s->writer.db)) {
        exec_id(&s->writer, ST_ROLLBACK_TO, NULL, 0);
        exec_id(&s->writer, ST_RELEASE, NULL, 0);
    }
    if (sqlite3_get_autocommit(s->writer.db))
        s->scope_broken = 1;
    return rc;
}

/* Commits when rc == 0, else rolls back; releases the writer. Returns the
 * final code. */
static int wend(tally_store *s, int rc, char *err, size_t cap)
{
    if (scope_of_thread == s)
        return wend_scoped(s, rc, err, cap);
    if (rc == 0) {
        rc = exec_id(&s->writer, ST_COMMIT, err, cap);
        if (rc != 0)
            exec_id(&s->writer, ST_ROLLBACK, NULL, 0);
    } else if (!sqlite3_get_autocommit(s->writer.db)) {
        exec_id(&s->writer, ST_ROLLBACK, NULL, 0);
    }
    pthread_mutex_unlock(&s->wlock);
    return rc;
}

int tally_store_scope_begin(tally_store *s, char *err, size_t cap)
{
    if (scope_of_thread) {
        snprintf(err, cap, "A write scope is already open on this thread.");
        return TALLY_STORE_EINVAL;
    }
    int rc;
    if (!wbegin(s, &rc, err, cap))
        return rc;
    s->scope_broken = 0;
    scope_of_thread = s;
    return 0;
}

int tally_store_scope_end(tally_store *s, int commit, char *err, size_t cap)
{
    if (scope_of_thread != s) {
        snprintf(err, cap, "No write scope of this store is open on this thread.");
        return TALLY_STORE_EINVAL;
    }
    scope_of_thread = NULL;
    int rs_dirty = s->scope_rs_dirty, rc = 0;
    s->scope_rs_dirty = 0;
    if (!commit) {
        wend(s, TALLY_STORE_EINVAL, NULL, 0); /* rolls back whatever the scope wrote */
    } else if (s->scope_broken) {
        wend(s, TALLY_STORE_EIO, NULL, 0);
        snprintf(err, cap, "The write transaction failed and was rolled back.");
        rc = TALLY_STORE_EIO;
    } else {
        rc = wend(s, 0, err, cap);
    }
    if (rs_dirty)
        rs_forget_all(s); /* committed or not, what the cache held may be stale */
    return rc;
}

/* Takes a reader from the pool (opening one if the pool is not full) and
 * opens a read transaction. */
static conn *rbegin(tally_store *s, int *rc, char *err, size_t cap)
{
    if (scope_of_thread == s) {
        *rc = 0;
        return &s->writer;
    }
    conn *c = NULL;
    pthread_mutex_lock(&s->pool_lock);
    while (!s->pool_free && s->pool_open >= s->opts.max_readers)
        pthread_cond_wait(&s->pool_cv, &s->pool_lock);
    if (s->pool_free) {
        c = s->pool_free;
        s->pool_free = c->next_free;
        pthread_mutex_unlock(&s->pool_lock);
    } else {
        unsigned slot = s->pool_open++;
        pthread_mutex_unlock(&s->pool_lock);
        c = calloc(1, sizeof *c);
        *rc = c ? open_conn(s, c, 1, err, cap) : TALLY_STORE_ENOMEM;
        pthread_mutex_lock(&s->pool_lock);
        if (*rc != 0) {
            free(c);
            /* Give the slot back: move the last opened reader into it. */
            s->pool_open--;
            if (slot != s->pool_open) {
                s->pool_all[slot] = s->pool_all[s->pool_open];
                s->pool_all[s->pool_open] = NULL;
            }
            pthread_cond_signal(&s->pool_cv);
            pthread_mutex_unlock(&s->pool_lock);
            return NULL;
        }
        s->pool_all[slot] = c;
        pthread_mutex_unlock(&s->pool_lock);
    }
    *rc = exec_id(c, ST_BEGIN_R, err, cap);
    if (*rc != 0) {
        pthread_mutex_lock(&s->pool_lock);
        c->next_free = s->pool_free;
        s->pool_free = c;
        pthread_cond_signal(&s->pool_cv);
        pthread_mutex_unlock(&s->pool_lock);
        return NULL;
    }
    return c;
}

static int rend(tally_store *s, conn *c, int rc)
{
    if (c == &s->writer) /* a read inside this thread's write scope */
        return rc;
    if (!sqlite3_get_autocommit(c->db))
        exec_id(c, ST_COMMIT, NULL, 0);
    pthread_mutex_lock(&s->pool_lock);
    c->next_free = s->pool_free;
    s->pool_free = c;
    pthread_cond_signal(&s->pool_cv);
    pthread_mutex_unlock(&s->pool_lock);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Store modules (store_internal.h)                                          */
/* ------------------------------------------------------------------------ */

sqlite3 *tally__conn_db(tally__conn *c)
{
    return c->db;
}

sqlite3_stmt *tally__conn_stmt(tally__conn *c, const char *sql)
{
    if (!c->mod && !(c->mod = calloc(MODULE_STMT_SLOTS, sizeof *c->mod)))
        return NULL;
    size_t h = ((uintptr_t)sql >> 3) * 0x9E3779B97F4A7C15ull >> 40;
    for (size_t n = 0; n < MODULE_STMT_SLOTS; n++) {
        module_stmt *m = &c->mod[(h + n) % MODULE_STMT_SLOTS];
        if (m->sql == sql)
            return m->st;
        if (!m->sql) {
            if (sqlite3_prepare_v3(c->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &m->st, NULL) !=
                SQLITE_OK) {
                sqlite3_finalize(m->st);
                m->st = NULL;
                return NULL;
            }
            m->sql = sql;
            return m->st;
        }
    }
    /* Table full: a module with more than MODULE_STMT_SLOTS distinct
     * statements is a programming error; refuse rather than leak. */
    return NULL;
}

void tally__stmt_done(sqlite3_stmt *st)
{
    stmt_done(st);
}

int tally__conn_error(tally__conn *c, char *err, size_t cap)
{
    return dberr(c, err, cap);
}

int tally__store_write(tally_store *s, tally__store_fn fn, void *arg, char *err, size_t cap)
{
    int rc;
    conn *c = wbegin(s, &rc, err, cap);
    if (!c)
        return rc;
    return wend(s, fn(c, arg, err, cap), err, cap);
}

int tally__store_read(tally_store *s, tally__store_fn fn, void *arg, char *err, size_t cap)
{
    int rc;
    conn *c = rbegin(s, &rc, err, cap);
    if (!c)
        return rc;
    return rend(s, c, fn(c, arg, err, cap));
}

int tally_store_schema_version(tally_store *s, int *out)
{
    char *err = NULL;
    size_t cap = 0;
    int rc;
    conn *c = rbegin(s, &rc, err, cap);
    if (!c)
        return rc;
    sqlite3_stmt *st = stmt_get(c, ST_SCHEMA_VERSION);
    if (!st)
        return rend(s, c, dberr(c, err, cap));
    if (sqlite3_step(st) == SQLITE_ROW)
        *out = sqlite3_column_int(st, 0);
    else
        rc = dberr(c, err, cap);
    stmt_done(st);
    return rend(s, c, rc);
}

/* ------------------------------------------------------------------------ */
/* Run-state cache                                                           */
/* ------------------------------------------------------------------------ */

static uint64_t rs_hash(const char *id)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (int i = 0; i < TALLY_RUN_ID_LEN; i++) {
        h ^= (unsigned char)id[i];
        h *= 1099511628211ull;
    }
    return h ^ (h >> 29);
}

static rs_entry *rs_find(tally_store *s, const char *id)
{
    size_t mask = s->rs_cap - 1;
    for (size_t i = rs_hash(id) & mask;; i = (i + 1) & mask) {
        rs_entry *e = &s->rs_slots[i];
        if (!e->used || memcmp(e->id, id, TALLY_RUN_ID_LEN) == 0)
            return e;
    }
}

/* Inserts or updates under rs_lock. Grows at 50% load; clears past the cap. */
static void rs_empty_locked(tally_store *s)
{
    memset(s->rs_slots, 0, s->rs_cap * sizeof *s->rs_slots);
    s->rs_n = 0;
}

/* Empties the cache and bumps rs_gen, so no fill in flight inserts. */
static void rs_forget_all(tally_store *s)
{
    pthread_mutex_lock(&s->rs_lock);
    rs_empty_locked(s);
    s->rs_gen++;
    pthread_mutex_unlock(&s->rs_lock);
}

static void rs_put_locked(tally_store *s, const char *id, int active, int64_t exp)
{
    if ((s->rs_n + 1) * 2 > s->rs_cap) {
        size_t ncap = s->rs_cap * 2;
        rs_entry *nslots = s->rs_n + 1 > RS_MAX_ENTRIES ? NULL : calloc(ncap, sizeof *nslots);
        if (nslots) {
            rs_entry *old = s->rs_slots;
            size_t ocap = s->rs_cap;
            s->rs_slots = nslots;
            s->rs_cap = ncap;
            for (size_t i = 0; i < ocap; i++)
                if (old[i].used)
                    *rs_find(s, old[i].id) = old[i];
            free(old);
        } else {
            rs_empty_locked(s);
        }
    }
    rs_entry *e = rs_find(s, id);
    if (!e->used) {
        memcpy(e->id, id, TALLY_RUN_ID_LEN);
        e->used = 1;
        s->rs_n++;
    }
    e->active = (uint8_t)(active != 0);
    e->experiment_id = exp;
}

static int cacheable_id(const char *id)
{
    return id && strlen(id) == TALLY_RUN_ID_LEN;
}

/* A lifecycle change inside this thread's write scope is not committed
 * yet: the cache forgets everything now and again at the scope's end
 * (invariant 2). Returns 1 when it did so (the caller then updates no
 * entry). */
static int rs_scoped_change(tally_store *s)
{
    if (scope_of_thread != s)
        return 0;
    s->scope_rs_dirty = 1;
    rs_forget_all(s);
    return 1;
}

/* After a committed lifecycle change of one run. */
static void rs_update(tally_store *s, const char *id, int active, int64_t exp)
{
    if (!cacheable_id(id) || rs_scoped_change(s))
        return;
    pthread_mutex_lock(&s->rs_lock);
    rs_put_locked(s, id, active, exp);
    s->rs_gen++;
    pthread_mutex_unlock(&s->rs_lock);
}

/* After a committed experiment delete/restore: every cached run of it. */
static void rs_update_experiment(tally_store *s, int64_t exp, int active)
{
    if (rs_scoped_change(s))
        return;
    pthread_mutex_lock(&s->rs_lock);
    for (size_t i = 0; i < s->rs_cap; i++)
        if (s->rs_slots[i].used && s->rs_slots[i].experiment_id == exp)
            s->rs_slots[i].active = (uint8_t)(active != 0);
    s->rs_gen++;
    pthread_mutex_unlock(&s->rs_lock);
}

/* Reads a run's state inside the caller's transaction. 0 with *exists = 0
 * for an unknown run. */
static int read_run_state(conn *c, const char *run_id, tally_run_state *out, char *err,
                          size_t cap)
{
    memset(out, 0, sizeof *out);
    GET_STMT(st, c, ST_RUN_STATE);
    bind_text(st, 1, run_id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        out->exists = 1;
        out->active = strcmp(tally__col_text(st, 0), "active") == 0;
        out->experiment_id = sqlite3_column_int64(st, 1);
        rc = 0;
    } else if (rc == SQLITE_DONE) {
        rc = 0;
    } else {
        rc = dberr(c, err, cap);
    }
    stmt_done(st);
    return rc;
}

int tally_store_run_state(tally_store *s, const char *run_id, tally_run_state *out)
{
    memset(out, 0, sizeof *out);
    if (!run_id)
        return 0;
    uint64_t gen = 0;
    /* Inside this thread's write scope a read may see uncommitted writes:
     * never cached (invariant 2), and the cache is not consulted either. */
    int cacheable = cacheable_id(run_id) && scope_of_thread != s;
    if (cacheable) {
        pthread_mutex_lock(&s->rs_lock);
        rs_entry *e = rs_find(s, run_id);
        if (e->used) {
            out->exists = 1;
            out->active = e->active;
            out->experiment_id = e->experiment_id;
            pthread_mutex_unlock(&s->rs_lock);
            return 0;
        }
        gen = s->rs_gen;
        pthread_mutex_unlock(&s->rs_lock);
    }
    int rc;
    conn *c = rbegin(s, &rc, NULL, 0);
    if (!c)
        return rc;
    rc = rend(s, c, read_run_state(c, run_id, out, NULL, 0));
    if (rc == 0 && out->exists && cacheable) {
        pthread_mutex_lock(&s->rs_lock);
        if (s->rs_gen == gen) /* invariant (2) */
            rs_put_locked(s, run_id, out->active, out->experiment_id);
        pthread_mutex_unlock(&s->rs_lock);
    }
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Loading rows into result structs                                          */
/* ------------------------------------------------------------------------ */

static int load_experiment_row(sqlite3_stmt *st, tally_arena *a, tally_experiment *e)
{
    memset(e, 0, sizeof *e);
    e->experiment_id = sqlite3_column_int64(st, 0);
    e->name = tally__col_dup(a, st, 1);
    e->artifact_location = tally__col_dup(a, st, 2);
    e->lifecycle = strcmp(tally__col_text(st, 3), "active") == 0 ? TALLY_LIFECYCLE_ACTIVE
                                                          : TALLY_LIFECYCLE_DELETED;
    e->creation_time_ms = sqlite3_column_int64(st, 4);
    e->last_update_time_ms = sqlite3_column_int64(st, 5);
    return e->name && e->artifact_location ? 0 : TALLY_STORE_ENOMEM;
}

/* Runs a (key, value) query already bound, into an arena array. */
static int load_kvs(conn *c, sqlite3_stmt *st, tally_arena *a, tally_kv **out, size_t *n_out,
                    char *err, size_t cap)
{
    size_t n = 0, vcap = 0;
    tally_kv *v = NULL;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (tally__arena_reserve(a, &v, sizeof *v, n, &vcap, 8) != 0) {
            stmt_done(st);
            return TALLY_STORE_ENOMEM;
        }
        v[n].key = tally__col_dup(a, st, 0);
        v[n].value = tally__col_dup(a, st, 1);
        if (!v[n].key || !v[n].value) {
            stmt_done(st);
            return TALLY_STORE_ENOMEM;
        }
        n++;
    }
    int out_rc = rc == SQLITE_DONE ? 0 : dberr(c, err, cap);
    stmt_done(st);
    *out = v;
    *n_out = n;
    return out_rc;
}

static int load_experiment_tags(conn *c, tally_arena *a, tally_experiment *e, char *err,
                                size_t cap)
{
    GET_STMT(st, c, ST_EXP_TAGS);
    sqlite3_bind_int64(st, 1, e->experiment_id);
    return load_kvs(c, st, a, &e->tags, &e->n_tags, err, cap);
}

/* Columns RUN_COLS starting at column `at`. */
static int load_run_info(sqlite3_stmt *st, int at, tally_arena *a, tally_run_info *info)
{
    memset(info, 0, sizeof *info);
    snprintf(info->run_id, sizeof info->run_id, "%s", tally__col_text(st, at + 0));
    info->run_name = tally__col_dup(a, st, at + 1);
    info->experiment_id = sqlite3_column_int64(st, at + 2);
    info->user_id = tally__col_dup(a, st, at + 3);
    info->status = tally_run_status_parse(tally__col_text(st, at + 4));
    info->start_time_ms = sqlite3_column_int64(st, at + 5);
    info->has_end_time = sqlite3_column_type(st, at + 6) != SQLITE_NULL;
    info->end_time_ms = sqlite3_column_int64(st, at + 6);
    info->lifecycle = strcmp(tally__col_text(st, at + 7), "active") == 0 ? TALLY_LIFECYCLE_ACTIVE
                                                                 : TALLY_LIFECYCLE_DELETED;
    info->deleted_time_ms = sqlite3_column_int64(st, at + 8);
    info->artifact_uri = tally__col_dup(a, st, at + 9);
    info->row_key = sqlite3_column_int64(st, at + 10);
    return info->run_name && info->user_id && info->artifact_uri ? 0 : TALLY_STORE_ENOMEM;
}

/* 0 and *found = 1 with the info, or *found = 0. */
static int read_run_info(conn *c, const char *run_id, tally_arena *a, tally_run_info *info,
                         int *found, char *err, size_t cap)
{
    *found = 0;
    GET_STMT(st, c, ST_RUN_GET);
    bind_text(st, 1, run_id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *found = 1;
        rc = load_run_info(st, 0, a, info);
    } else if (rc == SQLITE_DONE) {
        rc = 0;
    } else {
        rc = dberr(c, err, cap);
    }
    stmt_done(st);
    return rc;
}

static int load_run_inputs(conn *c, tally_arena *a, tally_run *r, char *err, size_t cap)
{
    GET_STMT(st, c, ST_RUN_INPUTS);
    sqlite3_bind_int64(st, 1, r->info.row_key);
    size_t n = 0, vcap = 0;
    tally_dataset_input *v = NULL;
    const char **uuids = NULL;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        size_t ucap = vcap; /* the two arrays grow in step */
        if (tally__arena_reserve(a, &v, sizeof *v, n, &vcap, 4) != 0 ||
            tally__arena_reserve(a, &uuids, sizeof *uuids, n, &ucap, 4) != 0) {
            stmt_done(st);
            return TALLY_STORE_ENOMEM;
        }
        uuids[n] = tally__col_dup(a, st, 0);
        tally_dataset *d = &v[n].dataset;
        d->name = tally__col_dup(a, st, 1);
        d->digest = tally__col_dup(a, st, 2);
        d->source_type = tally__col_dup(a, st, 3);
        d->source = tally__col_dup(a, st, 4);
        d->schema = sqlite3_column_type(st, 5) == SQLITE_NULL ? NULL : tally__col_dup(a, st, 5);
        d->profile = sqlite3_column_type(st, 6) == SQLITE_NULL ? NULL : tally__col_dup(a, st, 6);
        n++;
    }
    int out_rc = rc == SQLITE_DONE ? 0 : dberr(c, err, cap);
    stmt_done(st);
    r->inputs = v;
    r->n_inputs = n;
    if (out_rc != 0 || n == 0)
        return out_rc;
    /* Input tags, grouped by dataset. */
    sqlite3_stmt *tq = stmt_get(c, ST_RUN_INPUT_TAGS);
    if (!tq)
        return dberr(c, err, cap);
    sqlite3_bind_int64(tq, 1, r->info.row_key);
    tally_kv *all = NULL;
    const char **owner = NULL;
    size_t nt = 0, tcap = 0;
    while ((rc = sqlite3_step(tq)) == SQLITE_ROW) {
        size_t ocap = tcap; /* the two arrays grow in step */
        if (tally__arena_reserve(a, &all, sizeof *all, nt, &tcap, 8) != 0 ||
            tally__arena_reserve(a, &owner, sizeof *owner, nt, &ocap, 8) != 0) {
            stmt_done(tq);
            return TALLY_STORE_ENOMEM;
        }
        owner[nt] = tally__col_dup(a, tq, 0);
        all[nt].key = tally__col_dup(a, tq, 1);
        all[nt].value = tally__col_dup(a, tq, 2);
        nt++;
    }
    out_rc = rc == SQLITE_DONE ? 0 : dberr(c, err, cap);
    stmt_done(tq);
    for (size_t i = 0; i < n && out_rc == 0; i++) {
        /* Tags are ordered by dataset_uuid: find this dataset's run. */
        size_t j = 0;
        while (j < nt && strcmp(owner[j], uuids[i]) != 0)
            j++;
        size_t k = j;
        while (k < nt && strcmp(owner[k], uuids[i]) == 0)
            k++;
        v[i].tags = k > j ? all + j : NULL;
        v[i].n_tags = k - j;
    }
    return out_rc;
}

/* params, tags and inputs of r->info.run_id */
static int load_run_data(conn *c, tally_arena *a, tally_run *r, char *err, size_t cap)
{
    int rc;
    GET_STMT(sp, c, ST_RUN_PARAMS);
    sqlite3_bind_int64(sp, 1, r->info.row_key);
    if ((rc = load_kvs(c, sp, a, &r->params, &r->n_params, err, cap)) != 0)
        return rc;
    GET_STMT(stg, c, ST_RUN_TAGS);
    sqlite3_bind_int64(stg, 1, r->info.row_key);
    if ((rc = load_kvs(c, stg, a, &r->tags, &r->n_tags, err, cap)) != 0)
        return rc;
    return load_run_inputs(c, a, r, err, cap);
}

/* ------------------------------------------------------------------------ */
/* Experiments                                                               */
/* ------------------------------------------------------------------------ */

static int not_found_experiment(int64_t id, char *err, size_t cap)
{
    set_err(err, cap, "No Experiment with id=%lld exists", (long long)id);
    return TALLY_STORE_ENOTFOUND;
}

/* Reads the experiment row (no tags) inside the caller's transaction. */
static int read_experiment(conn *c, int64_t id, tally_arena *a, tally_experiment *e, int *found,
                           char *err, size_t cap)
{
    *found = 0;
    GET_STMT(st, c, ST_EXP_GET);
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *found = 1;
        rc = load_experiment_row(st, a, e);
    } else if (rc == SQLITE_DONE) {
        rc = 0;
    } else {
        rc = dberr(c, err, cap);
    }
    stmt_done(st);
    return rc;
}

/* Lifecycle of experiment id inside the caller's transaction: 1 active,
 * 0 deleted, or ENOTFOUND. */
static int experiment_active(conn *c, int64_t id, char *err, size_t cap)
{
    GET_STMT(st, c, ST_EXP_GET);
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        rc = strcmp(tally__col_text(st, 3), "active") == 0;
    else if (rc == SQLITE_DONE)
        rc = not_found_experiment(id, err, cap);
    else
        rc = dberr(c, err, cap);
    stmt_done(st);
    return rc;
}

static int check_experiment_name(const char *name, char *err, size_t cap)
{
    if (!name || !*name) {
        set_err(err, cap, "Invalid experiment name: '%s'", name ? name : "");
        return TALLY_STORE_EINVAL;
    }
    size_t n = tally_utf8_chars(name);
    if (n > TALLY_MAX_EXP_NAME) {
        set_err(err, cap, "Experiment name exceeds the maximum length of %d characters (got %zu)",
                TALLY_MAX_EXP_NAME, n);
        return TALLY_STORE_EINVAL;
    }
    return 0;
}

/* MLflow's create-experiment checks of artifact_location. */
static int check_artifact_location(const char *loc, char *err, size_t cap)
{
    if (strncmp(loc, "runs:", 5) == 0) {
        set_err(err, cap, "Artifact location cannot be a runs:/ URI. Given: '%.300s'", loc);
        return TALLY_STORE_EINVAL;
    }
    size_t n = tally_utf8_chars(loc);
    if (n > TALLY_MAX_ARTIFACT_LOCATION) {
        set_err(err, cap,
                "Invalid artifact path length. The length of the artifact path cannot be "
                "greater than %d characters. Got %zu.",
                TALLY_MAX_ARTIFACT_LOCATION, n);
        return TALLY_STORE_EINVAL;
    }
    const char *q = strchr(loc, '?');
    const char *hash = strchr(loc, '#');
    const char *semi = strchr(loc, ';');
    if (hash || (semi && (!q || semi < q))) {
        set_err(err, cap, "'artifact_location' URL can't include fragments or params.");
        return TALLY_STORE_EINVAL;
    }
    if (q && (strstr(q, "..") || strstr(q, "%2e%2e") || strstr(q, "%2E%2E"))) {
        set_err(err, cap, "Invalid query string");
        return TALLY_STORE_EINVAL;
    }
    return 0;
}

int tally_store_create_experiment(tally_store *s, const char *name, const char *artifact_location,
                                  const tally_kv *tags, size_t n_tags, int64_t *id_out,
                                  char *err, size_t cap)
{
    int rc;
    if ((rc = check_experiment_name(name, err, cap)) != 0)
        return rc;
    if (artifact_location && *artifact_location &&
        (rc = check_artifact_location(artifact_location, err, cap)) != 0)
        return rc;
    for (size_t i = 0; i < n_tags; i++) {
        if (!tags[i].key || !*tags[i].key) {
            set_err(err, cap, "Experiment tag keys must be non-empty");
            return TALLY_STORE_EINVAL;
        }
    }
    conn *c = wbegin(s, &rc, err, cap);
    if (!c)
        return rc;
    sqlite3_stmt *st = stmt_get(c, ST_EXP_GET_BY_NAME);
    if (!st)
        return wend(s, dberr(c, err, cap), err, cap);
    bind_text(st, 1, name);
    rc = sqlite3_step(st);
    stmt_done(st);
    if (rc == SQLITE_ROW) {
        set_err(err, cap, "Experiment(name=%.600s) already exists.", name);
        return wend(s, TALLY_STORE_EEXISTS, err, cap);
    }
    if (rc != SQLITE_DONE)
        return wend(s, dberr(c, err, cap), err, cap);

    long long now = tally__store_now_ms();
    st = stmt_get(c, ST_EXP_INSERT);
    if (!st)
        return wend(s, dberr(c, err, cap), err, cap);
    bind_text(st, 1, name);
    bind_text(st, 2, artifact_location && *artifact_location ? artifact_location : "");
    sqlite3_bind_int64(st, 3, now);
    if ((rc = stmt_exec(c, st, err, cap)) != 0)
        return wend(s, rc, err, cap);
    int64_t id = sqlite3_last_insert_rowid(c->db);
    if (!artifact_location || !*artifact_location) {
        char loc[2200];
        tally__store_join_location(s->root, id, loc, sizeof loc);
        st = stmt_get(c, ST_EXP_SET_LOCATION);
        if (!st)
            return wend(s, dberr(c, err, cap), err, cap);
        sqlite3_bind_int64(st, 1, id);
        bind_text(st, 2, loc);
        if ((rc = stmt_exec(c, st, err, cap)) != 0)
            return wend(s, rc, err, cap);
    }
    for (size_t i = 0; i < n_tags; i++) {
        st = stmt_get(c, ST_EXP_TAG_UPSERT);
        if (!st)
            return wend(s, dberr(c, err, cap), err, cap);
        sqlite3_bind_int64(st, 1, id);
        bind_text(st, 2, tags[i].key);
        bind_text(st, 3, tags[i].value);
        if ((rc = stmt_exec(c, st, err, cap)) != 0)
            return wend(s, rc, err, cap);
    }
    rc = wend(s, 0, err, cap);
    if (rc == 0 && id_out)
        *id_out = id;
    return rc;
}

int tally_store_get_experiment(tally_store *s, int64_t id, tally_arena *a, tally_experiment *out,
                               char *err, size_t cap)
{
    int rc, found;
    conn *c = rbegin(s, &rc, err, cap);
    if (!c)
        return rc;
    rc = read_experiment(c, id, a, out, &found, err, cap);
    if (rc == 0 && !found)
        rc = not_found_experiment(id, err, cap);
    if (rc == 0)
        rc = load_experiment_tags(c, a, out, err, cap);
    return rend(s, c, rc);
}

int tally_store_get_experiment_by_name(tally_store *s, const char *name, tally_arena *a,
                                       tally_experiment *out, char *err, size_t cap)
{
    int rc;
    conn *c = rbegin(s, &rc, err, cap);
    if (!c)
        return rc;
    sqlite3_stmt *st = stmt_get(c, ST_EXP_GET_BY_NAME);
    if (!st)
        return rend(s, c, dberr(c, err, cap));
    bind_text(st, 1, name);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        rc = load_experiment_row(st, a, out);
    } else if (rc == SQLITE_DONE) {
        set_err(err, cap, "Could not find experiment with name '%.600s'", name ? name : "");
        rc = TALLY_STORE_ENOTFOUND;
    } else {
        rc = dberr(c, err, cap);
    }
    stmt_done(st);
    if (rc == 0)
        rc = load_experiment_tags(c, a, out, err, cap);
    return rend(s, c, rc);
}

int tally_store_rename_experiment(tally_store *s, int64_t id, const char *new_name, char *err,
                                  size_t cap)
{
    int rc;
    if ((rc = check_experiment_name(new_name, err, cap)) != 0)
        return rc;
    conn *c = wbegin(s, &rc, err, cap);
    if (!c)
        return rc;
    rc = experiment_active(c, id, err, cap);
    if (rc < 0)
        return wend(s, rc, err, cap);
    if (rc == 0) {
        set_err(err, cap, "Cannot rename a non-active experiment.");
        return wend(s, TALLY_STORE_ESTATE, err, cap);
    }
    sqlite3_stmt *st = stmt_get(c, ST_EXP_GET_BY_NAME);
    if (!st)
        return wend(s, dberr(c, err, cap), err, cap);
    bind_text(st, 1, new_name);
    rc = sqlite3_step(st);
    int64_t other = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
    stmt_done(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return wend(s, dberr(c, err, cap), err, cap);
    if (rc == SQLITE_ROW && other != id) {
        set_err(err, cap, "Experiment(name=%.600s) already exists.", new_name);
        return wend(s, TALLY_STORE_ECONFLICT, err, cap);
    }
    st = stmt_get(c, ST_EXP_RENAME);
    if (!st)
        return wend(s, dberr(c, err, cap), err, cap);
    sqlite3_bind_int64(st, 1, id);
    bind_text(st, 2, new_name);
    sqlite3_bind_int64(st, 3, tally__store_now_ms());
    return wend(s, stmt_exec(c, st, err, cap), err, cap);
}

/* Delete (deleted = 1) or restore (0) an experiment and its runs. */
static int set_experiment_stage(tally_store *s, int64_t id, int deleted, char *err, size_t cap)
{
    int rc;
    conn *c = wbegin(s, &rc, err, cap);
    if (!c)
        return rc;
    rc = experiment_active(c, id, err, cap);
    if (rc < 0)
        return wend(s, rc, err, cap);
    if (rc != deleted) /* delete needs active (1), restore needs deleted (0) */
        return wend(s, not_found_experiment(id, err, cap), err, cap);
    long long now = tally__store_now_ms();
    sqlite3_stmt *st = stmt_get(c, ST_EXP_SET_STAGE);
    if (!st)
        return wend(s, dberr(c, err, cap), err, cap);
    sqlite3_bind_int64(st, 1, id);
    bind_text(st, 2, deleted ? "deleted" : "active");
    sqlite3_bind_int64(st, 3, now);
    if ((rc = stmt_exec(c, st, err, cap)) != 0)
        return wend(s, rc, err, cap);
    st = stmt_get(c, deleted ? ST_EXP_RUNS_DELETE : ST_EXP_RUNS_RESTORE);
    if (!st)
        return wend(s, dberr(c, err, cap), err, cap);
    sqlite3_bind_int64(st, 1, id);
    if (deleted)
        sqlite3_bind_int64(st, 2, now);
    rc = wend(s, stmt_exec(c, st, err, cap), err, cap);
    if (rc == 0)
        rs_update_experiment(s, id, !deleted);
    return rc;
}

int tally_store_delete_experiment(tally_store *s, int64_t id, char *err, size_t cap)
{
    return set_experiment_stage(s, id, 1, err, cap);
}

int tally_store_restore_experiment(tally_store *s, int64_t id, char *err, size_t cap)
{
    return set_experiment_stage(s, id, 0, err, cap);
}

static int experiment_must_be_active(conn *c, int64_t id, char *err, size_t cap)
{
    int rc = experiment_active(c, id, err, cap);
    if (rc < 0)
        return rc;
    if (rc == 0) {
        set_err(err, cap,
                "The experiment %lld must be in the 'active' state. Current state is deleted.",
                (long long)id);
        return TALLY_STORE_ESTATE;
    }
    return 0;
}

int tally_store_set_experiment_tag(tally_store *s, int64_t id, const char *key, const char *value,
                                   char *err, size_t cap)
{
    int rc;
    if ((rc = tally_store_check_key("tag", key, err, cap)) != 0)
        return rc;
    if (!value)
        value = "";
    size_t n = tally_utf8_chars(value);
    if (n > TALLY_MAX_EXP_TAG_VALUE) {
        set_err(err, cap,
                "Tag value '%.100s...' had length %zu, which exceeded length limit of %d", value,
                n, TALLY_MAX_EXP_TAG_VALUE);
        return TALLY_STORE_EINVAL;
    }
    conn *c = wbegin(s, &rc, err, cap);
    if (!c)
        return rc;
    if ((rc = experiment_must_be_active(c, id, err, cap)) != 0)
        return wend(s, rc, err, cap);
    sqlite3_stmt *st = stmt_get(c, ST_EXP_TAG_UPSERT);
    if (!st)
        return wend(s, dberr(c, err, cap), err, cap);
    sqlite3_bind_int64(st, 1, id);
    bind_text(st, 2, key);
    bind_text(st, 3, value);
    return wend(s, stmt_exec(c, st, err, cap), err, cap);
}

int tally_store_delete_experiment_tag(tally_store *s, int64_t id, const char *key, char *err,
                                      size_t cap)
{
    int rc;
    conn *c = wbegin(s, &rc, err, cap);
    if (!c)
        return rc;
    if ((rc = experiment_must_be_active(c, id, err, cap)) != 0)
        return wend(s, rc, err, cap);
    sqlite3_stmt *st = stmt_get(c, ST_EXP_TAG_DELETE);
    if (!st)
        return wend(s, dberr(c, err, cap), err, cap);
    sqlite3_bind_int64(st, 1, id);
    bind_text(st, 2, key);
    if ((rc = stmt_exec(c, st, err, cap)) != 0)
        return wend(s, rc, err, cap);
    if (sqlite3_changes(c->db) == 0) {
        set_err(err, cap, "No tag with name: %.300s in experiment with id %lld", key ? key : "",
                (long long)id);
        return wend(s, TALLY_STORE_ENOTFOUND, err, cap);
    }
    return wend(s, 0, err, cap);
}

int tally_store_list_experiments(tally_store *s, tally_view_type view, tally_arena *a,
                                 tally_experiment **out, size_t *n_out, char *err, size_t cap)
{
    *out = NULL;
    *n_out = 0;
    int rc;
    conn *c = rbegin(s, &rc, err, cap);
    if (!c)
        return rc;
    sqlite3_stmt *st = stmt_get(c, ST_EXP_LIST);
    if (!st)
        return rend(s, c, dberr(c, err, cap));
    sqlite3_bind_int(st, 1, (int)view);
    tally_experiment *v = NULL;
    size_t n = 0, vcap = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (tally__arena_reserve(a, &v, sizeof *v, n, &vcap, 16) != 0) {
            stmt_done(st);
            return rend(s, c, TALLY_STORE_ENOMEM);
        }
        if (load_experiment_row(st, a, &v[n]) != 0) {
            stmt_done(st);
            return rend(s, c, TALLY_STORE_ENOMEM);
        }
        n++;
    }
    rc = rc == SQLITE_DONE ? 0 : dberr(c, err, cap);
    stmt_done(st);
    if (rc != 0 || n == 0)
        return rend(s, c, rc);
    /* All tags in one pass, merged by id (both sides ordered by id). */
    tally_kv *tags = NULL;
    int64_t *owner = NULL;
    size_t nt = 0, tcap = 0;
    st = stmt_get(c, ST_EXP_TAGS_ALL);
    if (!st)
        return rend(s, c, dberr(c, err, cap));
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        size_t ocap = tcap; /* the two arrays grow in step */
        if (tally__arena_reserve(a, &tags, sizeof *tags, nt, &tcap, 32) != 0 ||
            tally__arena_reserve(a, &owner, sizeof *owner, nt, &ocap, 32) != 0) {
            stmt_done(st);
            return rend(s, c, TALLY_STORE_ENOMEM);
        }
        owner[nt] = sqlite3_column_int64(st, 0);
        tags[nt].key = tally__col_dup(a, st, 1);
        tags[nt].value = tally__col_dup(a, st, 2);
        nt++;
    }
    rc = rc == SQLITE_DONE ? 0 : dberr(c, err, cap);
    stmt_done(st);
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        while (j < nt && owner[j] < v[i].experiment_id)
            j++;
        size_t k = j;
        while (k < nt && owner[k] == v[i].experiment_id)
            k++;
        v[i].tags = k > j ? tags + j : NULL;
        v[i].n_tags = k - j;
        j = k;
    }
    *out = v;
    *n_out = n;
    return rend(s, c, rc);
}

/* ------------------------------------------------------------------------ */
/* Runs                                                                      */
/* ------------------------------------------------------------------------ */

static const char *const adjectives[] = {
    "abundant", "adaptable", "agreeable", "amazing",  "ambitious", "angry",    "auspicious",
    "awesome",  "bedecked",  "big",       "bittersweet", "blushing", "bold",   "bouncy",
    "brawny",   "bright",    "burly",     "bustling", "calm",     "capable",  "carefree",
    "caring",   "casual",    "charming",  "classy",   "clean",    "clumsy",   "colorful",
    "crawling", "dapper",    "debonair",  "delicate", "righteous", "dashing", "defiant",
    "delightful", "enchanting", "entertaining", "enthused", "exultant", "fearless", "flawless",
    "fortunate", "fun",      "funny",     "gaudy",    "gentle",   "gifted",   "glamorous",
    "grandiose", "gregarious", "handsome", "hilarious", "honorable", "illustrious", "incongruous",
    "indecisive", "industrious", "intelligent", "inquisitive", "intrigued", "invincible",
    "judicious", "kindly",   "languid",   "learned",  "legendary", "likeable", "loud",
    "luminous", "luxuriant", "lyrical",   "magnificent", "marvelous", "masked", "melodic",
    "merciful", "mercurial", "monumental", "mysterious", "nebulous", "nervous", "nimble",
    "nosy",     "omniscient", "orderly",  "overjoyed", "peaceful", "painted", "persistent",
    "placid",   "polite",    "popular",   "powerful", "puzzled",  "rambunctious", "rare",
    "rebellious", "respected", "resilient", "rogue",  "rumbling", "salty",    "sassy",
    "secretive", "selective", "sedate",   "serious",  "shivering", "skillful", "sincere",
    "smiling",  "spiffy",    "spirited",  "spry",     "stately",  "stylish",  "suave",
    "sneaky",   "thoughtful", "tasteful", "thundering", "traveling", "treasured", "trusting",
    "unequaled", "upbeat",   "unique",    "unleashed", "useful",  "vaunted",  "victorious",
    "welcoming", "whimsical", "wise",     "wistful",  "worried",  "youthful", "zealous"};

static const char *const animals[] = {
    "ant",     "ape",      "asp",     "auk",     "bass",    "bat",     "bear",    "bee",
    "bird",    "boar",     "bug",     "calf",    "carp",    "cat",     "chimp",   "cod",
    "colt",    "conch",    "cow",     "crab",    "crane",   "croc",    "crow",    "cub",
    "deer",    "doe",      "dog",     "dolphin", "donkey",  "dove",    "duck",    "eel",
    "elk",     "fawn",     "finch",   "fish",    "flea",    "fly",     "foal",    "fowl",
    "fox",     "frog",     "gnat",    "gnu",     "goat",    "goose",   "grouse",  "grub",
    "gull",    "hare",     "hawk",    "hen",     "hog",     "horse",   "hound",   "jay",
    "kit",     "kite",     "koi",     "lamb",    "lark",    "loon",    "lynx",    "mare",
    "midge",   "mink",     "mole",    "moose",   "moth",    "mouse",   "mule",    "newt",
    "owl",     "ox",       "panda",   "penguin", "perch",   "pig",     "pug",     "quail",
    "ram",     "rat",      "ray",     "robin",   "roo",     "rook",    "seal",    "shad",
    "shark",   "sheep",    "shoat",   "shrew",   "shrike",  "shrimp",  "skink",   "skunk",
    "sloth",   "slug",     "smelt",   "snail",   "snake",   "snipe",   "sow",     "sponge",
    "squid",   "squirrel", "stag",    "steed",   "stoat",   "stork",   "swan",    "tern",
    "toad",    "trout",    "turtle",  "vole",    "wasp",    "whale",   "wolf",    "worm",
    "wren",    "yak",      "zebra"};

static uint64_t random_u64(void)
{
    uint64_t v = 0;
    if (getrandom(&v, sizeof v, 0) != (ssize_t)sizeof v) {
        /* getrandom on Linux >= 3.17 does not fail for 8 bytes; keep a
         * fallback anyway so a name is always produced. */
        v = (uint64_t)tally__store_now_ms() * 6364136223846793005ull + (uint64_t)(uintptr_t)&v;
    }
    return v;
}

static void random_run_name(char *out, size_t cap)
{
    uint64_t r = random_u64();
    size_t na = sizeof adjectives / sizeof adjectives[0];
    size_t nb = sizeof animals / sizeof animals[0];
    snprintf(out, cap, "%s-%s-%u", adjectives[r % na], animals[(r / na) % nb],
             (unsigned)((r / na / nb) % 1000));
}

void tally__store_random_name(char *out, size_t cap)
{
    random_run_name(out, cap);
}

/* A uuid4 as 32 lower-case hex digits. */
static void new_uuid_hex(char out[TALLY_RUN_ID_LEN + 1])
{
    unsigned char b[16];
    if (getrandom(b, sizeof b, 0) != (ssize_t)sizeof b) {
        uint64_t x = random_u64(), y = random_u64();
        memcpy(b, &x, 8);
        memcpy(b + 8, &y, 8);
    }
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < 16; i++) {
        out[2 * i] = hex[b[i] >> 4];
        out[2 * i + 1] = hex[b[i] & 15];
    }
    out[TALLY_RUN_ID_LEN] = 0;
}

static int not_found_run(const char *run_id, char *err, size_t cap)
{
    set_err(err, cap, "Run with id=%.300s not found", run_id ? run_id : "");
    return TALLY_STORE_ENOTFOUND;
}

/* The run must exist (ENOTFOUND) and be active (ESTATE), checked inside the
 * caller's write transaction. */
static int run_must_be_active(conn *c, const char *run_id, tally_run_state *st, char *err,
                              size_t cap)
{
    int rc = read_run_state(c, run_id, st, err, cap);
    if (rc != 0)
        return rc;
    if (!st->exists)
        return not_found_run(run_id, err, cap);
    if (!st->active) {
        set_err(err, cap,
                "The run %.300s must be in the 'active' state. Current state is deleted.",
                run_id);
        return TALLY_STORE_ESTATE;
    }
    return 0;
}

/* Writes a tag (value truncated to 8000 characters); mlflow.runName renames. */
static int write_tag(conn *c, const char *run_id, const char *key, const char *value, char *err,
                     size_t cap)
{
    if (!value)
        value = "";
    size_t vlen = tally_utf8_truncate(value, TALLY_MAX_TAG_VALUE);
    GET_STMT(st, c, ST_TAG_UPSERT);
    bind_text(st, 1, run_id);
    bind_text(st, 2, key);
    bind_text_n(st, 3, value, vlen);
    int rc = stmt_exec(c, st, err, cap);
    if (rc == 0 && strcmp(key, "mlflow.runName") == 0) {
        GET_STMT(sn, c, ST_RUN_SET_NAME);
        bind_text(sn, 1, run_id);
        bind_text_n(sn, 2, value, vlen);
        rc = stmt_exec(c, sn, err, cap);
    }
    return rc;
}

/* Writes a param once: same value again is a no-op, another one EINVAL.
 * *conflict_old receives nothing; the message names both values. */
static int write_param(conn *c, const char *run_id, const char *key, const char *value,
                       char *err, size_t cap)
{
    if (!value)
        value = "";
    size_t vlen = tally_utf8_truncate(value, TALLY_MAX_PARAM_VALUE);
    GET_STMT(sg, c, ST_PARAM_GET);
    bind_text(sg, 1, run_id);
    bind_text(sg, 2, key);
    int rc = sqlite3_step(sg);
    if (rc == SQLITE_ROW) {
        const char *old = tally__col_text(sg, 0);
        size_t olen = (size_t)sqlite3_column_bytes(sg, 0);
        if (olen == vlen && memcmp(old, value, vlen) == 0) {
            stmt_done(sg);
            return 0;
        }
        set_err(err, cap,
                "Changing param values is not allowed. Param with key='%.250s' was already "
                "logged with value='%.500s' for run ID='%.64s'. Attempted logging new value "
                "'%.500s'.",
                key, old, run_id, value);
        stmt_done(sg);
        return TALLY_STORE_EINVAL;
    }
    stmt_done(sg);
    if (rc != SQLITE_DONE)
        return dberr(c, err, cap);
    GET_STMT(si, c, ST_PARAM_INSERT);
    bind_text(si, 1, run_id);
    bind_text(si, 2, key);
    bind_text_n(si, 3, value, vlen);
    return stmt_exec(c, si, err, cap);
}

int tally_store_create_run(tally_store *s, const tally_run_create *req, tally_arena *a,
                           tally_run *out, char *err, size_t cap)
{
    int rc;
    const char *tag_name = NULL;
    for (size_t i = 0; i < req->n_tags; i++) {
        if ((rc = tally_store_check_key("tag", req->tags[i].key, err, cap)) != 0)
            return rc;
        if (strcmp(req->tags[i].key, "mlflow.runName") == 0)
            tag_name = req->tags[i].value ? req->tags[i].value : "";
    }
    const char *name = req->run_name && *req->run_name ? req->run_name : NULL;
    if (name && tag_name && *tag_name && strcmp(name, tag_name) != 0) {
        set_err(err, cap,
                "Both 'run_name' argument and 'mlflow.runName' tag are specified, but with "
                "different values (run_name='%.250s', mlflow.runName='%.250s').",
                name, tag_name);
        return TALLY_STORE_EINVAL;
    }
    char random_name[128];
    if (!name && tag_name && *tag_name)
        name = tag_name;
    if (!name) {
        random_run_name(random_name, sizeof random_name);
        name = random_name;
    }
    size_t name_len = tally_utf8_truncate(name, TALLY_MAX_TAG_VALUE);

    conn *c = wbegin(s, &rc, err, cap);
    if (!c)
        return rc;
    tally_experiment exp;
    int found;
    rc = read_experiment(c, req->experiment_id, a, &exp, &found, err, cap);
    if (rc != 0)
        return wend(s, rc, err, cap);
    if (!found)
        return wend(s, not_found_experiment(req->experiment_id, err, cap), err, cap);
    if (exp.lifecycle != TALLY_LIFECYCLE_ACTIVE) {
        set_err(err, cap,
                "The experiment %lld must be in the 'active' state. Current state is deleted.",
                (long long)req->experiment_id);
        return wend(s, TALLY_STORE_ESTATE, err, cap);
    }
    char run_id[TALLY_RUN_ID_LEN + 1];
    new_uuid_hex(run_id);
    tally_buf uri = {0};
    size_t loc_len = strlen(exp.artifact_location);
    while (loc_len > 0 && exp.artifact_location[loc_len - 1] == '/' &&
           !(loc_len >= 2 && exp.artifact_location[loc_len - 2] == ':'))
        loc_len--;
    tally_buf_append(&uri, exp.artifact_location, loc_len);
    if (loc_len == 0 || exp.artifact_location[loc_len - 1] != '/')
        tally_buf_putc(&uri, '/');
    tally_buf_printf(&uri, "%s/artifacts", run_id);
    if (tally_buf_failed(&uri)) {
        tally_buf_free(&uri);
        return wend(s, TALLY_STORE_ENOMEM, err, cap);
    }
    sqlite3_stmt *st = stmt_get(c, ST_RUN_INSERT);
    if (!st) {
        tally_buf_free(&uri);
        return wend(s, dberr(c, err, cap), err, cap);
    }
    bind_text(st, 1, run_id);
    bind_text_n(st, 2, name, name_len);
    sqlite3_bind_int64(st, 3, req->experiment_id);
    bind_text(st, 4, req->user_id);
    sqlite3_bind_int64(st, 5, req->start_time_ms);
    bind_text(st, 6, uri.data);
    rc = stmt_exec(c, st, err, cap);
    tally_buf_free(&uri);
    for (size_t i = 0; rc == 0 && i < req->n_tags; i++)
        if (strcmp(req->tags[i].key, "mlflow.runName") != 0)
            rc = write_tag(c, run_id, req->tags[i].key, req->tags[i].value, err, cap);
    if (rc == 0)
        rc = write_tag(c, run_id, "mlflow.runName", name, err, cap);
    if (rc == 0) {
        memset(out, 0, sizeof *out);
        rc = read_run_info(c, run_id, a, &out->info, &found, err, cap);
        if (rc == 0 && !found)
            rc = not_found_run(run_id, err, cap);
        if (rc == 0)
            rc = load_run_data(c, a, out, err, cap);
    }
    rc = wend(s, rc, err, cap);
    if (rc == 0)
        rs_update(s, run_id, 1, req->experiment_id);
    return rc;
}

int tally_store_get_run(tally_store *s, const char *run_id, tally_arena *a, tally_run *out,
                        char *err, size_t cap)
{
    int rc, found;
    memset(out, 0, sizeof *out);
    conn *c = rbegin(s, &rc, err, cap);
    if (!c)
        return rc;
    rc = read_run_info(c, run_id, a, &out->info, &found, err, cap);
    if (rc == 0 && !found)
        rc = not_found_run(run_id, err, cap);
    if (rc == 0)
        rc = load_run_data(c, a, out, err, cap);
    return rend(s, c, rc);
}

int tally_store_update_run(tally_store *s, const char *run_id, int status, int has_end_time,
                           int64_t end_time_ms, const char *run_name, tally_arena *a,
                           tally_run_info *out, char *err, size_t cap)
{
    int rc;
    if (status != 0 && !tally_run_status_name(status)) {
        set_err(err, cap, "Invalid run status %d", status);
        return TALLY_STORE_EINVAL;
    }
    conn *c = wbegin(s, &rc, err, cap);
    if (!c)
        return rc;
    tally_run_state rs;
    if ((rc = run_must_be_active(c, run_id, &rs, err, cap)) != 0)
        return wend(s, rc, err, cap);
    if (status != 0) {
        sqlite3_stmt *st = stmt_get(c, ST_RUN_SET_STATUS);
        if (!st)
            return wend(s, dberr(c, err, cap), err, cap);
        bind_text(st, 1, run_id);
        bind_text(st, 2, tally_run_status_name(status));
        if ((rc = stmt_exec(c, st, err, cap)) != 0)
            return wend(s, rc, err, cap);
    }
    if (has_end_time) {
        sqlite3_stmt *st = stmt_get(c, ST_RUN_SET_END);
        if (!st)
            return wend(s, dberr(c, err, cap), err, cap);
        bind_text(st, 1, run_id);
        sqlite3_bind_int64(st, 2, end_time_ms);
        if ((rc = stmt_exec(c, st, err, cap)) != 0)
            return wend(s, rc, err, cap);
    }
    if (run_name && (rc = write_tag(c, run_id, "mlflow.runName", run_name, err, cap)) != 0)
        return wend(s, rc, err, cap);
    int found;
    rc = read_run_info(c, run_id, a, out, &found, err, cap);
    return wend(s, rc, err, cap);
}

static int set_run_stage(tally_store *s, const char *run_id, int deleted, char *err, size_t cap)
{
    int rc;
    conn *c = wbegin(s, &rc, err, cap);
    if (!c)
        return rc;
    tally_run_state rs;
    if ((rc = read_run_state(c, run_id, &rs, err, cap)) != 0)
        return wend(s, rc, err, cap);
    if (!rs.exists)
        return wend(s, not_found_run(run_id, err, cap), err, cap);
    if (rs.active == !deleted) /* idempotent */
        return wend(s, 0, err, cap);
    sqlite3_stmt *st = stmt_get(c, ST_RUN_SET_STAGE);
    if (!st)
        return wend(s, dberr(c, err, cap), err, cap);
    bind_text(st, 1, run_id);
    bind_text(st, 2, deleted ? "deleted" : "active");
    if (deleted)
        sqlite3_bind_int64(st, 3, tally__store_now_ms());
    else
        sqlite3_bind_null(st, 3);
    rc = wend(s, stmt_exec(c, st, err, cap), err, cap);
    if (rc == 0)
        rs_update(s, run_id, !deleted, rs.experiment_id);
    return rc;
}

int tally_store_delete_run(tally_store *s, const char *run_id, char *err, size_t cap)
{
    return set_run_stage(s, run_id, 1, err, cap);
}

int tally_store_restore_run(tally_store *s, const char *run_id, char *err, size_t cap)
{
    return set_run_stage(s, run_id, 0, err, cap);
}

int tally_store_set_tag(tally_store *s, const char *run_id, const char *key, const char *value,
                        char *err, size_t cap)
{
    int rc;
    if ((rc = tally_store_check_key("tag", key, err, cap)) != 0)
        return rc;
    conn *c = wbegin(s, &rc, err, cap);
    if (!c)
        return rc;
    tally_run_state rs;
    if ((rc = run_must_be_active(c, run_id, &rs, err, cap)) != 0)
        return wend(s, rc, err, cap);
    return wend(s, write_tag(c, run_id, key, value, err, cap), err, cap);
}

int tally_store_delete_tag(tally_store *s, const char *run_id, const char *key, char *err,
                           size_t cap)
{
    int rc;
    conn *c = wbegin(s, &rc, err, cap);
    if (!c)
        return rc;
    tally_run_state rs;
    if ((rc = run_must_be_active(c, run_id, &rs, err, cap)) != 0)
        return wend(s, rc, err, cap);
    sqlite3_stmt *st = stmt_get(c, ST_TAG_DELETE);
    if (!st)
        return wend(s, dberr(c, err, cap), err, cap);
    bind_text(st, 1, run_id);
    bind_text(st, 2, key);
    if ((rc = stmt_exec(c, st, err, cap)) != 0)
        return wend(s, rc, err, cap);
    if (sqlite3_changes(c->db) == 0) {
        set_err(err, cap, "No tag with name: %.300s in run with id %.64s", key ? key : "",
                run_id);
        return wend(s, TALLY_STORE_ENOTFOUND, err, cap);
    }
    return wend(s, 0, err, cap);
}

int tally_store_log_param(tally_store *s, const char *run_id, const char *key, const char *value,
                          char *err, size_t cap)
{
    int rc;
    if ((rc = tally_store_check_key("param", key, err, cap)) != 0)
        return rc;
    conn *c = wbegin(s, &rc, err, cap);
    if (!c)
        return rc;
    tally_run_state rs;
    if ((rc = run_must_be_active(c, run_id, &rs, err, cap)) != 0)
        return wend(s, rc, err, cap);
    return wend(s, write_param(c, run_id, key, value, err, cap), err, cap);
}

int tally_store_log_batch_params_tags(tally_store *s, const char *run_id, const tally_kv *params,
                                      size_t n_params, const tally_kv *tags, size_t n_tags,
                                      char *err, size_t cap)
{
    int rc;
    if ((rc = tally_store_check_params_tags(params, n_params, tags, n_tags, err, cap)) != 0)
        return rc;
    conn *c = wbegin(s, &rc, err, cap);
    if (!c)
        return rc;
    tally_run_state rs;
    if ((rc = run_must_be_active(c, run_id, &rs, err, cap)) != 0)
        return wend(s, rc, err, cap);
    for (size_t i = 0; rc == 0 && i < n_params; i++)
        rc = write_param(c, run_id, params[i].key, params[i].value, err, cap);
    for (size_t i = 0; rc == 0 && i < n_tags; i++)
        rc = write_tag(c, run_id, tags[i].key, tags[i].value, err, cap);
    return wend(s, rc, err, cap);
}

int tally_store_log_inputs(tally_store *s, const char *run_id, const tally_dataset_input_req *in,
                           size_t n, char *err, size_t cap)
{
    int rc;
    for (size_t i = 0; i < n; i++) {
        const tally_dataset *d = &in[i].dataset;
        if (!d->name || !d->digest || !d->source_type || !d->source) {
            set_err(err, cap, "Dataset %zu must have name, digest, source_type and source", i);
            return TALLY_STORE_EINVAL;
        }
        for (size_t j = 0; j < in[i].n_tags; j++)
            if (!in[i].tags[j].key || !*in[i].tags[j].key) {
                set_err(err, cap, "Input tag keys must be non-empty");
                return TALLY_STORE_EINVAL;
            }
    }
    conn *c = wbegin(s, &rc, err, cap);
    if (!c)
        return rc;
    tally_run_state rs;
    if ((rc = run_must_be_active(c, run_id, &rs, err, cap)) != 0)
        return wend(s, rc, err, cap);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const tally_dataset *d = &in[i].dataset;
        char uuid[TALLY_RUN_ID_LEN + 1];
        sqlite3_stmt *st = stmt_get(c, ST_DATASET_FIND);
        if (!st)
            return wend(s, dberr(c, err, cap), err, cap);
        bind_text(st, 1, d->name);
        bind_text(st, 2, d->digest);
        sqlite3_bind_int64(st, 3, rs.experiment_id);
        int step = sqlite3_step(st);
        if (step == SQLITE_ROW)
            snprintf(uuid, sizeof uuid, "%s", tally__col_text(st, 0));
        stmt_done(st);
        if (step != SQLITE_ROW && step != SQLITE_DONE)
            return wend(s, dberr(c, err, cap), err, cap);
        if (step == SQLITE_DONE) {
            new_uuid_hex(uuid);
            st = stmt_get(c, ST_DATASET_INSERT);
            if (!st)
                return wend(s, dberr(c, err, cap), err, cap);
            bind_text(st, 1, uuid);
            sqlite3_bind_int64(st, 2, rs.experiment_id);
            bind_text(st, 3, d->name);
            bind_text(st, 4, d->digest);
            bind_text(st, 5, d->source_type);
            bind_text(st, 6, d->source);
            if (d->schema)
                bind_text(st, 7, d->schema);
            if (d->profile)
                bind_text(st, 8, d->profile);
            if ((rc = stmt_exec(c, st, err, cap)) != 0)
                break;
        }
        st = stmt_get(c, ST_INPUT_LINK);
        if (!st)
            return wend(s, dberr(c, err, cap), err, cap);
        bind_text(st, 1, run_id);
        bind_text(st, 2, uuid);
        if ((rc = stmt_exec(c, st, err, cap)) != 0)
            break;
        if (sqlite3_changes(c->db) == 0)
            continue; /* linked before: its tags stay as first logged */
        for (size_t j = 0; rc == 0 && j < in[i].n_tags; j++) {
            st = stmt_get(c, ST_INPUT_TAG_UPSERT);
            if (!st)
                return wend(s, dberr(c, err, cap), err, cap);
            bind_text(st, 1, run_id);
            bind_text(st, 2, uuid);
            bind_text(st, 3, in[i].tags[j].key);
            bind_text(st, 4, in[i].tags[j].value);
            rc = stmt_exec(c, st, err, cap);
        }
    }
    return wend(s, rc, err, cap);
}

/* ------------------------------------------------------------------------ */
/* Run search                                                                */
/* ------------------------------------------------------------------------ */

typedef struct bind_val {
    int kind;          /* 0 text, 1 double, 2 int64 */
    const char *s;     /* text, borrowed (or owned by the glob buffer list) */
    double d;
    int64_t i;
} bind_val;

typedef struct sql_build {
    tally_buf sql;
    bind_val *binds;
    size_t n_binds, cap_binds;
    char **owned;      /* converted patterns */
    size_t n_owned, cap_owned;
    int failed;
} sql_build;

static void sb_bind(sql_build *b, bind_val v)
{
    if (b->n_binds == b->cap_binds) {
        size_t ncap = b->cap_binds ? b->cap_binds * 2 : 16;
        bind_val *nb = realloc(b->binds, ncap * sizeof *nb);
        if (!nb) {
            b->failed = 1;
            return;
        }
        b->binds = nb;
        b->cap_binds = ncap;
    }
    b->binds[b->n_binds++] = v;
    tally_buf_putc(&b->sql, '?');
}

static void sb_text(sql_build *b, const char *s)
{
    bind_val v = {0, s ? s : "", 0, 0};
    sb_bind(b, v);
}

/* LIKE (case-sensitive, no escape) as a GLOB pattern: % -> *, _ -> ?, and
 * GLOB's own metacharacters made literal with brackets. */
static const char *like_to_glob(sql_build *b, const char *pat)
{
    size_t n = strlen(pat);
    char *g = malloc(3 * n + 1);
    if (!g || (b->n_owned == b->cap_owned &&
               !(b->cap_owned = b->cap_owned ? b->cap_owned * 2 : 8,
                 b->owned = realloc(b->owned, b->cap_owned * sizeof *b->owned)))) {
        free(g);
        b->failed = 1;
        return "";
    }
    b->owned[b->n_owned++] = g;
    char *o = g;
    for (const char *p = pat; *p; p++) {
        switch (*p) {
        case '%': *o++ = '*'; break;
        case '_': *o++ = '?'; break;
        case '*': memcpy(o, "[*]", 3); o += 3; break;
        case '?': memcpy(o, "[?]", 3); o += 3; break;
        case '[': memcpy(o, "[[]", 3); o += 3; break;
        default: *o++ = *p; break;
        }
    }
    *o = 0;
    return g;
}

static const char *op_sql(tally_pred_op op)
{
    switch (op) {
    case TALLY_OP_EQ: return " = ";
    case TALLY_OP_NE: return " != ";
    case TALLY_OP_GT: return " > ";
    case TALLY_OP_GE: return " >= ";
    case TALLY_OP_LT: return " < ";
    case TALLY_OP_LE: return " <= ";
    case TALLY_OP_LIKE: return " GLOB ";
    case TALLY_OP_ILIKE: return " LIKE ";
    case TALLY_OP_IN: return " IN ";
    case TALLY_OP_NOT_IN: return " NOT IN ";
    }
    return " = ";
}

/* "<col> <op> <operand>" for one predicate. */
static void sb_compare(sql_build *b, const char *col, const tally_store_pred *p)
{
    tally_buf_puts(&b->sql, col);
    tally_buf_puts(&b->sql, op_sql(p->op));
    if (p->op == TALLY_OP_IN || p->op == TALLY_OP_NOT_IN) {
        tally_buf_putc(&b->sql, '(');
        for (size_t i = 0; i < p->n_list; i++) {
            if (i)
                tally_buf_putc(&b->sql, ',');
            sb_text(b, p->list[i]);
        }
        tally_buf_putc(&b->sql, ')');
    } else if (p->numeric) {
        bind_val v = {1, NULL, p->num, 0};
        sb_bind(b, v);
    } else if (p->op == TALLY_OP_LIKE) {
        sb_text(b, like_to_glob(b, p->str ? p->str : ""));
    } else {
        sb_text(b, p->str);
    }
}

static int sb_pred(sql_build *b, const tally_store_pred *p, char *err, size_t cap)
{
    const char *k = p->key ? p->key : "";
    switch (p->entity) {
    case TALLY_PRED_ATTR: {
        const char *col = NULL;
        if (strcmp(k, "run_id") == 0)
            col = "r.run_uuid";
        else if (strcmp(k, "run_name") == 0)
            col = "r.name";
        else if (strcmp(k, "user_id") == 0)
            col = "r.user_id";
        else if (strcmp(k, "status") == 0)
            col = "r.status";
        else if (strcmp(k, "artifact_uri") == 0)
            col = "r.artifact_uri";
        else if (strcmp(k, "start_time") == 0)
            col = "r.start_time";
        else if (strcmp(k, "end_time") == 0)
            col = "r.end_time";
        else if (strcmp(k, "experiment_id") == 0)
            col = "r.experiment_id";
        if (!col) {
            set_err(err, cap, "Invalid attribute key '%.250s' specified.", k);
            return TALLY_STORE_EINVAL;
        }
        tally_buf_puts(&b->sql, " AND ");
        sb_compare(b, col, p);
        return 0;
    }
    case TALLY_PRED_PARAM:
    case TALLY_PRED_TAG:
        tally_buf_printf(&b->sql, " AND r.run_key IN (SELECT run_key FROM %s WHERE key = ",
                         p->entity == TALLY_PRED_PARAM ? "params" : "tags");
        sb_text(b, k);
        tally_buf_puts(&b->sql, " AND ");
        sb_compare(b, "value", p);
        tally_buf_putc(&b->sql, ')');
        return 0;
    case TALLY_PRED_DATASET:
        if (strcmp(k, "context") == 0) {
            tally_buf_puts(&b->sql, " AND r.run_key IN (SELECT run_key FROM input_tags WHERE "
                                    "key = 'mlflow.data.context' AND ");
            sb_compare(b, "value", p);
        } else if (strcmp(k, "name") == 0 || strcmp(k, "digest") == 0) {
            tally_buf_puts(&b->sql, " AND r.run_key IN (SELECT i.run_key FROM run_inputs i "
                                    "JOIN datasets d ON d.dataset_uuid = i.dataset_uuid WHERE ");
            sb_compare(b, k[0] == 'n' ? "d.name" : "d.digest", p);
        } else {
            set_err(err, cap, "Invalid dataset key '%.250s' specified.", k);
            return TALLY_STORE_EINVAL;
        }
        tally_buf_putc(&b->sql, ')');
        return 0;
    }
    set_err(err, cap, "Invalid search entity");
    return TALLY_STORE_EINVAL;
}

static void sb_free(sql_build *b)
{
    tally_buf_free(&b->sql);
    free(b->binds);
    for (size_t i = 0; i < b->n_owned; i++)
        free(b->owned[i]);
    free(b->owned);
}

int tally_store_search_runs(tally_store *s, const tally_run_query *q, tally_arena *a,
                            tally_run_row **out, size_t *n_out, char *err, size_t cap)
{
    *out = NULL;
    *n_out = 0;
    if (q->n_experiment_ids == 0)
        return 0;
    sql_build b;
    memset(&b, 0, sizeof b);
    tally_buf_puts(&b.sql, "SELECT " RUN_COLS);
    for (size_t i = 0; i < q->n_param_keys; i++) {
        tally_buf_puts(&b.sql, ", (SELECT value FROM params WHERE run_key = r.run_key AND key = ");
        sb_text(&b, q->param_keys[i]);
        tally_buf_putc(&b.sql, ')');
    }
    for (size_t i = 0; i < q->n_tag_keys; i++) {
        tally_buf_puts(&b.sql, ", (SELECT value FROM tags WHERE run_key = r.run_key AND key = ");
        sb_text(&b, q->tag_keys[i]);
        tally_buf_putc(&b.sql, ')');
    }
    tally_buf_puts(&b.sql, " FROM runs r WHERE r.experiment_id IN (");
    for (size_t i = 0; i < q->n_experiment_ids; i++) {
        if (i)
            tally_buf_putc(&b.sql, ',');
        bind_val v = {2, NULL, 0, q->experiment_ids[i]};
        sb_bind(&b, v);
    }
    tally_buf_putc(&b.sql, ')');
    if (q->view == TALLY_VIEW_ACTIVE_ONLY)
        tally_buf_puts(&b.sql, " AND r.lifecycle_stage = 'active'");
    else if (q->view == TALLY_VIEW_DELETED_ONLY)
        tally_buf_puts(&b.sql, " AND r.lifecycle_stage = 'deleted'");
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < q->n_preds; i++)
        rc = sb_pred(&b, &q->preds[i], err, cap);
    if (rc == 0 && (b.failed || tally_buf_failed(&b.sql)))
        rc = TALLY_STORE_ENOMEM;
    if (rc != 0) {
        sb_free(&b);
        return rc;
    }

    conn *c = rbegin(s, &rc, err, cap);
    if (!c) {
        sb_free(&b);
        return rc;
    }
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(c->db, b.sql.data, (int)b.sql.len, &st, NULL) != SQLITE_OK) {
        rc = dberr(c, err, cap);
        sb_free(&b);
        return rend(s, c, rc);
    }
    for (size_t i = 0; i < b.n_binds; i++) {
        const bind_val *v = &b.binds[i];
        if (v->kind == 0)
            sqlite3_bind_text(st, (int)i + 1, v->s, -1, SQLITE_STATIC);
        else if (v->kind == 1)
            sqlite3_bind_double(st, (int)i + 1, v->d);
        else
            sqlite3_bind_int64(st, (int)i + 1, v->i);
    }
    tally_run_row *rows = NULL;
    size_t n = 0, rcap = 0;
    size_t nk = q->n_param_keys + q->n_tag_keys;
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        if (tally__vec_reserve(&rows, sizeof *rows, n, &rcap, 64) != 0) {
            rc = TALLY_STORE_ENOMEM;
            break;
        }
        tally_run_row *row = &rows[n];
        memset(row, 0, sizeof *row);
        if ((rc = load_run_info(st, 0, a, &row->info)) != 0)
            break;
        if (nk) {
            const char **vals = tally_arena_alloc(a, nk * sizeof *vals);
            if (!vals) {
                rc = TALLY_STORE_ENOMEM;
                break;
            }
            for (size_t k = 0; k < nk; k++)
                vals[k] = sqlite3_column_type(st, N_RUN_COLS + (int)k) == SQLITE_NULL
                              ? NULL
                              : tally__col_dup(a, st, N_RUN_COLS + (int)k);
            row->param_vals = vals;
            row->tag_vals = vals + q->n_param_keys;
        }
        n++;
    }
    if (rc == 0 && step != SQLITE_DONE)
        rc = dberr(c, err, cap);
    sqlite3_finalize(st);
    sb_free(&b);
    if (rc == 0 && n) {
        tally_run_row *arr = tally_arena_alloc(a, n * sizeof *arr);
        if (!arr) {
            rc = TALLY_STORE_ENOMEM;
        } else {
            memcpy(arr, rows, n * sizeof *arr);
            *out = arr;
            *n_out = n;
        }
    }
    free(rows);
    return rend(s, c, rc);
}

/* One page's worth of run keys, sorted, with where each run's result goes. */
typedef struct page_ref {
    int64_t key;   /* run_key */
    size_t idx;    /* index into out[] */
} page_ref;

static int by_key(const void *x, const void *y)
{
    int64_t a = ((const page_ref *)x)->key, b = ((const page_ref *)y)->key;
    return a < b ? -1 : a > b;
}

/* Prepares head "?,?,...?" tail with one placeholder per page ref, each
 * bound to its run key. 0 with *out (the caller finalizes it) or an error. */
static int prepare_keys_in(conn *c, const char *head, const char *tail, const page_ref *refs,
                           size_t n, sqlite3_stmt **out, char *err, size_t cap)
{
    tally_buf sql = {0};
    tally_buf_puts(&sql, head);
    for (size_t i = 0; i < n; i++)
        tally_buf_puts(&sql, i ? ",?" : "?");
    tally_buf_puts(&sql, tail);
    if (tally_buf_failed(&sql)) {
        tally_buf_free(&sql);
        return TALLY_STORE_ENOMEM;
    }
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(c->db, sql.data, (int)sql.len, &st, NULL);
    tally_buf_free(&sql);
    if (rc != SQLITE_OK)
        return dberr(c, err, cap);
    for (size_t i = 0; i < n; i++)
        sqlite3_bind_int64(st, (int)i + 1, refs[i].key);
    *out = st;
    return 0;
}

/* params or tags of refs[0..n) (sorted by key) in one query, ordered by
 * (run_key, key), sliced into out[idx].params / .tags. */
static int batch_kvs(conn *c, const char *table, const page_ref *refs, size_t n, tally_arena *a,
                     tally_run *out, char *err, size_t cap)
{
    char head[128];
    snprintf(head, sizeof head, "SELECT run_key, key, value FROM %s WHERE run_key IN (", table);
    sqlite3_stmt *st;
    int rc = prepare_keys_in(c, head, ") ORDER BY run_key, key", refs, n, &st, err, cap);
    if (rc)
        return rc;
    int is_params = strcmp(table, "params") == 0;
    size_t *first = calloc(n, sizeof *first); /* refs[j]'s slice starts at v[first[j]] */
    size_t *count = calloc(n, sizeof *count);
    tally_kv *v = NULL;
    size_t nv = 0, vcap = 0, j = 0;
    rc = first && count ? 0 : TALLY_STORE_ENOMEM;
    int step = SQLITE_DONE;
    /* Rows come grouped by run_key, in refs' (sorted) order. */
    while (rc == 0 && (step = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t key = sqlite3_column_int64(st, 0);
        while (j < n && refs[j].key != key)
            j++;
        if (j == n) /* cannot happen: the IN list is refs */
            break;
        if (count[j] == 0)
            first[j] = nv;
        if (tally__vec_reserve(&v, sizeof *v, nv, &vcap, 256) != 0) {
            rc = TALLY_STORE_ENOMEM;
            break;
        }
        v[nv].key = tally__col_dup(a, st, 1);
        v[nv].value = tally__col_dup(a, st, 2);
        if (!v[nv].key || !v[nv].value) {
            rc = TALLY_STORE_ENOMEM;
            break;
        }
        nv++;
        count[j]++;
    }
    if (rc == 0 && step != SQLITE_DONE && step != SQLITE_ROW)
        rc = dberr(c, err, cap);
    sqlite3_finalize(st);
    tally_kv *base = NULL;
    if (rc == 0 && nv) {
        base = tally_arena_alloc(a, nv * sizeof *base);
        if (!base)
            rc = TALLY_STORE_ENOMEM;
        else
            memcpy(base, v, nv * sizeof *base);
    }
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (!count[i])
            continue;
        tally_run *r = &out[refs[i].idx];
        if (is_params) {
            r->params = base + first[i];
            r->n_params = count[i];
        } else {
            r->tags = base + first[i];
            r->n_tags = count[i];
        }
    }
    free(v);
    free(first);
    free(count);
    return rc;
}

/* Inputs are rare: find which runs of the page have any, then load those. */
static int batch_inputs(conn *c, const page_ref *refs, size_t n, tally_arena *a, tally_run *out,
                        char *err, size_t cap)
{
    sqlite3_stmt *st;
    int rc = prepare_keys_in(c, "SELECT DISTINCT run_key FROM run_inputs WHERE run_key IN (",
                             ") ORDER BY run_key", refs, n, &st, err, cap);
    if (rc)
        return rc;
    int64_t *keys = NULL;
    size_t nk = 0, kcap = 0;
    int step;
    rc = 0;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        if (tally__vec_reserve(&keys, sizeof *keys, nk, &kcap, 16) != 0) {
            rc = TALLY_STORE_ENOMEM;
            break;
        }
        keys[nk++] = sqlite3_column_int64(st, 0);
    }
    if (rc == 0 && step != SQLITE_DONE)
        rc = dberr(c, err, cap);
    sqlite3_finalize(st);
    for (size_t i = 0, j = 0; rc == 0 && i < nk; i++) {
        while (j < n && refs[j].key != keys[i])
            j++;
        if (j < n)
            rc = load_run_inputs(c, a, &out[refs[j].idx], err, cap);
    }
    free(keys);
    return rc;
}

#define PAGE_CHUNK 2000 /* run keys per batched query (SQLite allows 32766 variables) */

int tally_store_runs_data(tally_store *s, const tally_run_info *infos, size_t n, tally_arena *a,
                          tally_run *out, char *err, size_t cap)
{
    if (n == 0)
        return 0;
    page_ref *refs = malloc(n * sizeof *refs);
    if (!refs)
        return TALLY_STORE_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        memset(&out[i], 0, sizeof out[i]);
        out[i].info = infos[i];
        refs[i].key = infos[i].row_key;
        refs[i].idx = i;
    }
    qsort(refs, n, sizeof *refs, by_key);
    int rc;
    conn *c = rbegin(s, &rc, err, cap);
    if (!c) {
        free(refs);
        return rc;
    }
    for (size_t off = 0; rc == 0 && off < n; off += PAGE_CHUNK) {
        size_t m = n - off < PAGE_CHUNK ? n - off : PAGE_CHUNK;
        rc = batch_kvs(c, "params", refs + off, m, a, out, err, cap);
        if (rc == 0)
            rc = batch_kvs(c, "tags", refs + off, m, a, out, err, cap);
        if (rc == 0)
            rc = batch_inputs(c, refs + off, m, a, out, err, cap);
    }
    free(refs);
    return rend(s, c, rc);
}
