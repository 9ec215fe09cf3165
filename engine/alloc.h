/*
 * alloc.h — the one allocation hook of the engine and query libraries.
 * Use tally__malloc & co. everywhere instead of the C library's functions,
 * so tests can fail any allocation (tally_replace_allocator).
 * tally__free(NULL) is a no-op.
 */
#ifndef TALLY_ALLOC_H
#define TALLY_ALLOC_H

#include <stddef.h>

void *tally__malloc(size_t n);
void *tally__realloc(void *p, size_t n);
void *tally__calloc(size_t count, size_t size);
void tally__free(void *p);
/* A copy of [s, s+n) plus a terminating zero, or NULL. */
char *tally__strndup(const char *s, size_t n);

#endif /* TALLY_ALLOC_H */
