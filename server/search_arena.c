/*
 * search_arena.c — the bump allocator that owns a parsed filter's or
 * order's strings and lists, so freeing a parse result is one walk.
 *
 *   head -> [next|used|cap| data ........ ] -> [next|used|cap| data ...] -> NULL
 *            newest block                       older blocks
 *
 * Invariants:
 *   (1) used <= cap in every block; allocations are 16-byte aligned
 *       offsets into data (data itself is max-aligned).
 *   (2) Blocks grow geometrically (at least 1 KiB, at least the request),
 *       so a filter of n bytes costs O(n) memory in O(log n) blocks.
 */
#include <stdalign.h>
#include <stdlib.h>
#include <string.h>

#include "search_int.h"

struct tally__search_block {
    tally__search_block *next;    /* older block */
    size_t used;                  /* bytes of data handed out */
    size_t cap;                   /* bytes of data */
    alignas(max_align_t) unsigned char data[]; /* the memory */
};

void *tally__search_arena_alloc(tally__search_arena *a, size_t n)
{
    if (n > ((size_t)-1) / 4)
        return NULL;
    n = (n + 15) & ~(size_t)15;
    if (n == 0)
        n = 16;
    tally__search_block *b = a->head;
    if (!b || b->cap - b->used < n) {
        size_t cap = b ? b->cap * 2 : 1024;
        if (cap < n)
            cap = n;
        b = malloc(sizeof *b + cap);
        if (!b)
            return NULL;
        b->next = a->head;
        b->used = 0;
        b->cap = cap;
        a->head = b;
    }
    void *p = b->data + b->used;
    b->used += n;
    return p;
}

char *tally__search_arena_strndup(tally__search_arena *a, const char *s, size_t n)
{
    if (n == (size_t)-1)
        return NULL;
    char *p = tally__search_arena_alloc(a, n + 1);
    if (!p)
        return NULL;
    if (n)
        memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

void tally__search_arena_free(tally__search_arena *a)
{
    tally__search_block *b = a->head;
    while (b) {
        tally__search_block *next = b->next;
        free(b);
        b = next;
    }
    a->head = NULL;
}
