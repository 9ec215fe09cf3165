/*
 * store_internal.h — private to the SQLite store (store_sqlite.c,
 * store_schema.c). Not part of the store interface.
 */
#ifndef TALLY_SERVER_STORE_INTERNAL_H
#define TALLY_SERVER_STORE_INTERNAL_H

#include <stddef.h>
#include <sqlite3.h>

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

/* Makes room for element n of a growing array *arr (cap elements of elem
 * bytes), doubling from first: in the arena (the old copy stays there until
 * the arena is freed), or with realloc (vec). 0, or -1 out of memory. */
int tally__arena_reserve(tally_arena *a, void *arr, size_t elem, size_t n, size_t *cap,
                         size_t first);
int tally__vec_reserve(void *arr, size_t elem, size_t n, size_t *cap, size_t first);

#endif /* TALLY_SERVER_STORE_INTERNAL_H */
