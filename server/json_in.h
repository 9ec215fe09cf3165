/*
 * json_in.h — the server's JSON request parser: strict RFC 8259 JSON into a
 * read-only cJSON tree allocated from one arena (params.c is its user; any
 * handler may use it for JSON that is not a request body, e.g. a tag value
 * holding JSON).
 *
 * Why not cJSON_Parse: cJSON keeps numbers only as doubles (9007199254740993
 * would not round-trip as an int64), does not validate UTF-8, and allocates
 * every node with malloc. This parser keeps the exact token text of any
 * number with more than 15 significant digits in the node's valuestring
 * (the node stays cJSON_Number; cJSON_IsString() is false), rejects invalid
 * UTF-8, raw control characters, lone surrogate escapes and \u0000, limits
 * nesting to TALLY_JSON_MAX_PARSE_DEPTH, and draws all memory from an arena
 * with a byte limit, so a hostile body cannot make it allocate without bound.
 *
 * Trees are read-only: never cJSON_Delete them or attach/detach nodes; they
 * die with their arena.
 */
#ifndef TALLY_SERVER_JSON_IN_H
#define TALLY_SERVER_JSON_IN_H

#include <stddef.h>

typedef struct cJSON cJSON;
typedef struct tally_json_arena tally_json_arena;

#define TALLY_JSON_MAX_PARSE_DEPTH 128

typedef struct tally_json_error {
    const char *msg;   /* static text, e.g. "invalid UTF-8" */
    size_t offset;     /* byte offset in the input */
    int too_complex;   /* the arena limit was hit: not malformed, just too big */
} tally_json_error;

/* An arena that refuses to grow past limit bytes (SIZE_MAX: no limit).
 * NULL when out of memory. The first 64 KiB chunk is recycled per thread. */
tally_json_arena *tally_json_arena_new(size_t limit);
void tally_json_arena_free(tally_json_arena *a); /* NULL is a no-op */
/* 16-byte aligned memory living until tally_json_arena_free; NULL past the limit. */
void *tally_json_arena_alloc(tally_json_arena *a, size_t n);

/* Parses the n bytes at s (a UTF-8 BOM is skipped) as one JSON value. NULL
 * with *err filled on failure. The tree lives in a. */
cJSON *tally_json_parse(tally_json_arena *a, const char *s, size_t n, tally_json_error *err);

/* The four hex digits of a \uXXXX escape at p (no bounds check: the caller
 * has 4 bytes): 0 with *out, or -1 if one is not a hex digit. */
int tally_json_hex4(const char *p, unsigned *out);

/* An empty object node in a (the decoding of an empty body), or NULL. */
cJSON *tally_json_new_object(tally_json_arena *a);

#endif /* TALLY_SERVER_JSON_IN_H */
