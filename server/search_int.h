/*
 * search_int.h — what the search_*.c files share and nobody else sees: the
 * per-mode vocabulary tables (search_schema.c), the cursor the parsers read
 * with (search_lex.c), the arena that owns a parsed filter's strings
 * (search_arena.c) and a bounded output writer (search_print.c).
 *
 * Invariants:
 *   (1) A tally__search_lex never reads at or past s + len; pos <= len.
 *   (2) An arena hands out memory that lives until tally__search_arena_free;
 *       nothing it returns is freed individually.
 *   (3) A tally__search_out counts every byte written (len) even when it
 *       truncates, and keeps buf NUL-terminated when cap > 0.
 */
#ifndef TALLY_SERVER_SEARCH_INT_H
#define TALLY_SERVER_SEARCH_INT_H

#include <stdarg.h>
#include <stddef.h>

#include "search.h"

/* ---- vocabulary (search_schema.c) ---------------------------------------- */

/* Resolves an entity prefix ("metrics", "attr", "datasets", ...): 0 and
 * *out, or -1 if it is not one of §5.1's names. Case-sensitive. */
int tally__search_entity_lookup(const char *name, size_t n, tally_search_entity *out);
/* Canonical (plural) prefix of an entity: "metrics", "attributes", ... */
const char *tally__search_entity_name(tally_search_entity e);
/* 1 if mode accepts entity e in filters (for_order 0) or order_by (1). */
int tally__search_entity_allowed(tally_search_mode mode, tally_search_entity e, int for_order);
/* Resolves an attribute key (aliases included) of entity e (ATTR or
 * DATASET) for mode: the attribute, or A_NONE if not valid there. */
tally_search_attr tally__search_attr_lookup(tally_search_mode mode, tally_search_entity e,
                                            int for_order, const char *key, size_t n);
/* The valid keys, comma-separated, for error messages (static). */
const char *tally__search_attr_list(tally_search_mode mode, tally_search_entity e, int for_order);
/* 1 if op may be used on (mode, entity, attr). */
int tally__search_op_allowed(tally_search_mode mode, tally_search_entity e, tally_search_attr a,
                             tally_search_op op);
/* The allowed operators, space-separated, for error messages (static). */
const char *tally__search_op_list(tally_search_mode mode, tally_search_entity e,
                                  tally_search_attr a);
/* 1 if the entity/attribute compares numerically (metrics, NUM attributes). */
int tally__search_is_numeric(tally_search_entity e, tally_search_attr a);
/* 1 if the mode needs an integer literal for attr (version_number). */
int tally__search_needs_int(tally_search_mode mode, tally_search_attr a);
/* 1 if mode is a valid tally_search_mode. */
int tally__search_mode_valid(tally_search_mode mode);

/* ---- cursor (search_lex.c) ----------------------------------------------- */

typedef struct tally__search_lex {
    const char *s;                /* the text (not necessarily NUL-terminated) */
    size_t len;                   /* bytes in s */
    size_t pos;                   /* next byte to read, <= len */
    tally_search_error *err;      /* where failures are described, or NULL */
    size_t item;                  /* order_by element index, for err */
    const char *what;             /* "filter" or "order_by[i]", message prefix */
} tally__search_lex;

/* An identifier as written: entity resolved, key still raw. */
typedef struct tally__search_ident {
    tally_search_entity entity;   /* ATTR when there was no prefix */
    int had_prefix;               /* an entity prefix was written */
    const char *key;              /* points into the text (raw key bytes) */
    size_t key_len;
    size_t pos;                   /* where the identifier starts */
    size_t key_pos;               /* where the key starts */
} tally__search_ident;

int tally__search_is_space(int c);
int tally__search_is_word_start(int c);
int tally__search_is_word_char(int c);
void tally__search_skip_ws(tally__search_lex *lx);
/* Bytes of the word ([A-Za-z0-9_.] and bytes >= 0x80, starting with a word
 * start) at pos; 0 if none. Does not advance. */
size_t tally__search_word_len(const tally__search_lex *lx);
/* Bytes of the run of ASCII letters at pos (for keywords); 0 if none. */
size_t tally__search_alpha_len(const tally__search_lex *lx);
/* 1 if [w, w+n) equals kw ignoring ASCII case. */
int tally__search_word_is(const char *w, size_t n, const char *kw);
/* Reads a string quoted with the byte at pos (' " or `) and advances past
 * its closing quote: *start and *n give the inside. TALLY_EINVAL if unterminated
 * or empty when allow_empty is 0. */
int tally__search_scan_quoted(tally__search_lex *lx, int allow_empty, const char **start,
                              size_t *n);
/* Reads a number literal at pos (see docs/api.md) and advances: *n bytes.
 * TALLY_EINVAL if malformed (e.g. followed by a letter). */
int tally__search_scan_number(tally__search_lex *lx, size_t *n);
/* 1 if a number literal may start at pos. */
int tally__search_number_starts(const tally__search_lex *lx);
/* Reads an identifier (entity prefix resolution included, key left raw). */
int tally__search_scan_ident(tally__search_lex *lx, tally__search_ident *out);
/* Fills lx->err with the message, " at position <pos>" and a quote of the
 * text there; returns TALLY_EINVAL. */
int tally__search_fail(tally__search_lex *lx, size_t pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- arena (search_arena.c) ---------------------------------------------- */

typedef struct tally__search_block tally__search_block;
typedef struct tally__search_arena {
    tally__search_block *head;    /* newest block first */
} tally__search_arena;

/* n bytes aligned for any object, or NULL on allocation failure. */
void *tally__search_arena_alloc(tally__search_arena *a, size_t n);
/* A NUL-terminated copy of [s, s+n) in the arena, or NULL. */
char *tally__search_arena_strndup(tally__search_arena *a, const char *s, size_t n);
void tally__search_arena_free(tally__search_arena *a);

/* ---- bounded writer (search_print.c) ------------------------------------- */

typedef struct tally__search_out {
    char *buf;                    /* destination, may be NULL when cap == 0 */
    size_t cap;                   /* bytes in buf */
    size_t len;                   /* bytes written so far, counting truncated ones */
} tally__search_out;

void tally__search_put(tally__search_out *o, const char *s, size_t n);
void tally__search_puts(tally__search_out *o, const char *s);
void tally__search_putc(tally__search_out *o, char c);
/* "entity.key" in canonical form (bare key when possible, else quoted). */
void tally__search_put_ident(tally__search_out *o, tally_search_entity e, const char *key);
/* A string value quoted with ' (or " if it contains a '). */
void tally__search_put_string(tally__search_out *o, const char *s);

#endif /* TALLY_SERVER_SEARCH_INT_H */
