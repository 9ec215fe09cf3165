/*
 * buf.c — the growable byte buffer of buf.h.
 *
 * Invariants:
 *  (1) len < cap whenever data != NULL, and data[len] == 0: the contents are
 *      always a C string, so callers may hand data to printf-style APIs.
 *  (2) Once failed is set, appends are no-ops and len stays 0 until
 *      tally_buf_free(); a reply built in a failed buffer is never sent
 *      (http.c turns it into a 500).
 *  (3) Growth doubles the capacity, so n appends cost O(n) amortised.
 */
#include "buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void tally_buf_free(tally_buf *b)
{
    if (!b)
        return;
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
    b->failed = 0;
}

void tally_buf_reset(tally_buf *b)
{
    b->len = 0;
    b->failed = 0;
    if (b->data)
        b->data[0] = 0;
}

static void fail(tally_buf *b)
{
    b->failed = 1;
    b->len = 0;
    if (b->data)
        b->data[0] = 0;
}

int tally_buf_reserve(tally_buf *b, size_t more)
{
    if (b->failed)
        return -1;
    if (more >= SIZE_MAX / 2 - b->len) {
        fail(b);
        return -1;
    }
    size_t need = b->len + more + 1; /* + the NUL of (1) */
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap *= 2;
    char *p = realloc(b->data, cap);
    if (!p) {
        fail(b);
        return -1;
    }
    b->data = p;
    b->cap = cap;
    return 0;
}

void tally_buf_append(tally_buf *b, const void *p, size_t n)
{
    if (tally_buf_reserve(b, n) != 0)
        return;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = 0;
}

void tally_buf_puts(tally_buf *b, const char *s)
{
    tally_buf_append(b, s, strlen(s));
}

void tally_buf_putc(tally_buf *b, char c)
{
    if (b->len + 1 < b->cap && !b->failed) { /* the common case: room for c and the NUL */
        b->data[b->len++] = c;
        b->data[b->len] = 0;
        return;
    }
    tally_buf_append(b, &c, 1);
}

void tally_buf_vprintf(tally_buf *b, const char *fmt, va_list ap)
{
    if (b->failed)
        return;
    va_list ap2;
    va_copy(ap2, ap);
    size_t room = b->cap > b->len ? b->cap - b->len : 0;
    int n = vsnprintf(room ? b->data + b->len : NULL, room, fmt, ap2);
    va_end(ap2);
    if (n < 0) {
        fail(b);
        return;
    }
    if ((size_t)n < room) {
        b->len += (size_t)n;
        return;
    }
    if (tally_buf_reserve(b, (size_t)n) != 0)
        return;
    vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
    b->len += (size_t)n;
}

void tally_buf_printf(tally_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    tally_buf_vprintf(b, fmt, ap);
    va_end(ap);
}
