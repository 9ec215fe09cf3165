/*
 * store_internal.h — private to the SQLite store: store_sqlite.c,
 * store_schema.c and the store modules (store_<module>_sqlite.c: registry,
 * webhooks, users, ...), which keep their own tables and statements but
 * share the store's connections. Not part of the store interface: a module
 * exposes its own interface header (e.g. store_registry.h) that a
 * PostgreSQL backend could implement too.
 *
 * Module rules:
 *  (1) Every write runs inside tally__store_write (the writer connection,
 *      BEGIN IMMEDIATE; fn returning non-zero rolls the whole transaction
 *      back); every read inside tally__store_read (a pooled reader, one
 *      consistent snapshot).
 *  (2) Statements come from tally__conn_stmt with a static SQL string; they
 *      are prepared once per connection and cached by the string's address.
 *      Call tally__stmt_done after each use (reset + clear bindings).
 *  (3) fn returns 0 or a TALLY_STORE_* code, with a message in err.
 */
#ifndef TALLY_SERVER_STORE_INTERNAL_H
#define TALLY_SERVER_STORE_INTERNAL_H

#include <stddef.h>
#include <sqlite3.h>

#include "store.h"

/* Creates the version table if needed and applies, in one IMMEDIATE
 * transaction, every numbered migration above the recorded version, then
 * makes sure experiment 0 "Default" exists with location <root>0 (root ends
 * in '/') . Idempotent. 0 or TALLY_STORE_EIO with a message. */
int tally__store_migrate(sqlite3 *db, const char *default_root, char *err, size_t cap);

/* The highest migration this build knows. */
int tally__store_latest_version(void);

/* Wall time in ms since the epoch. */
long long tally__store_now_ms(void);

/* "<root><id>" with exactly one '/' between them unless root ends in ":/"
 * style already; written into out (cap bytes). */
void tally__store_join_location(const char *root, long long id, char *out, size_t cap);

/* A random run-style name, "adjective-animal-N" (N in 0..999), as MLflow
 * names runs and logged models that were given none. */
void tally__store_random_name(char *out, size_t cap);

/* Makes room for element n of a growing array *arr (cap elements of elem
 * bytes), doubling from first: in the arena (the old copy stays there until
 * the arena is freed), or with realloc (vec). 0, or -1 out of memory. */
int tally__arena_reserve(tally_arena *a, void *arr, size_t elem, size_t n, size_t *cap,
                         size_t first);
int tally__vec_reserve(void *arr, size_t elem, size_t n, size_t *cap, size_t first);

/* Text columns of the current row. tally__col_text: the column, "" for
 * NULL, valid until the statement steps again. tally__col_dup: a copy in a,
 * "" for NULL (NULL only when out of memory). tally__col_dup_null: a copy
 * in a, NULL for NULL (or out of memory). */
const char *tally__col_text(sqlite3_stmt *st, int i);
char *tally__col_dup(tally_arena *a, sqlite3_stmt *st, int i);
char *tally__col_dup_null(tally_arena *a, sqlite3_stmt *st, int i);

/* Store modules (see the file comment). tally__conn is a connection lent
 * to fn for the duration of the call. */
typedef struct conn tally__conn;
typedef int (*tally__store_fn)(tally__conn *c, void *arg, char *err, size_t cap);
int tally__store_write(tally_store *s, tally__store_fn fn, void *arg, char *err, size_t cap);
int tally__store_read(tally_store *s, tally__store_fn fn, void *arg, char *err, size_t cap);
sqlite3 *tally__conn_db(tally__conn *c);
/* The cached prepared statement for sql (a static string), or NULL with
 * the error in sqlite3_errmsg(tally__conn_db(c)). */
sqlite3_stmt *tally__conn_stmt(tally__conn *c, const char *sql);
void tally__stmt_done(sqlite3_stmt *st);
/* Maps the connection's last SQLite error to a TALLY_STORE_* code with a
 * message in err. */
int tally__conn_error(tally__conn *c, char *err, size_t cap);

#endif /* TALLY_SERVER_STORE_INTERNAL_H */
