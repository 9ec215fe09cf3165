/*
 * buf.h — a growable byte buffer, the server's one way to build output
 * (JSON bodies, log lines, Prometheus text). Appends never fail silently:
 * on allocation failure the buffer is marked and its contents dropped, and
 * tally_buf_failed() says so.
 */
#ifndef TALLY_SERVER_BUF_H
#define TALLY_SERVER_BUF_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

typedef struct tally_buf {
    char *data;   /* NUL-terminated when len > 0 */
    size_t len;   /* bytes used, excluding the NUL */
    size_t cap;   /* bytes allocated */
    int failed;   /* an allocation failed */
} tally_buf;

void tally_buf_free(tally_buf *b);
void tally_buf_reset(tally_buf *b);                       /* len = 0, keeps memory */
int tally_buf_reserve(tally_buf *b, size_t more);         /* 0 or -1 */
void tally_buf_append(tally_buf *b, const void *p, size_t n);
void tally_buf_puts(tally_buf *b, const char *s);
void tally_buf_putc(tally_buf *b, char c);
void tally_buf_printf(tally_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void tally_buf_vprintf(tally_buf *b, const char *fmt, va_list ap);
static inline int tally_buf_failed(const tally_buf *b) { return b->failed; }

#endif /* TALLY_SERVER_BUF_H */
