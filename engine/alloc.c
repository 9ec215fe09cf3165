/*
 * alloc.c — the allocation hook (see alloc.h). The function pointers are set
 * once before any engine is opened and read without locks afterwards.
 */
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "tally/engine.h"

static void *(*malloc_hook)(size_t) = malloc;
static void *(*realloc_hook)(void *, size_t) = realloc;
static void *(*calloc_hook)(size_t, size_t) = calloc;
static void (*free_hook)(void *) = free;

int tally_replace_allocator(void *(*malloc_fn)(size_t), void *(*realloc_fn)(void *, size_t),
                            void *(*calloc_fn)(size_t, size_t), void (*free_fn)(void *))
{
    int n_given = !!malloc_fn + !!realloc_fn + !!calloc_fn + !!free_fn;
    if (n_given == 0) {
        malloc_hook = malloc;
        realloc_hook = realloc;
        calloc_hook = calloc;
        free_hook = free;
        return 0;
    }
    if (n_given != 4)
        return TALLY_EINVAL;
    malloc_hook = malloc_fn;
    realloc_hook = realloc_fn;
    calloc_hook = calloc_fn;
    free_hook = free_fn;
    return 0;
}

void *tally__malloc(size_t n) { return malloc_hook(n ? n : 1); }
void *tally__realloc(void *p, size_t n) { return realloc_hook(p, n ? n : 1); }
void *tally__calloc(size_t count, size_t size) { return calloc_hook(count ? count : 1, size ? size : 1); }

void tally__free(void *p)
{
    if (p)
        free_hook(p);
}

char *tally__strndup(const char *s, size_t n)
{
    char *p = tally__malloc(n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = 0;
    }
    return p;
}
