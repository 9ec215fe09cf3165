/*
 * fuzz_page_token.c — libFuzzer target for history page tokens
 * (query/page_token.c).
 *
 *   decode garbage  the whole input, as a token of its length: decoding
 *                   must never crash or read past it, and whatever decodes
 *                   must be canonical: re-encoding gives the input back.
 *   round trip      a cursor carved from the input (order, id, range, last
 *                   point, value bits) encodes to a printable token of
 *                   TALLY__PAGE_TOKEN_LEN characters that decodes to the
 *                   same cursor; changing any one character of it (to a
 *                   byte carved from the input) makes decoding fail.
 *
 * Seeds: tests/fuzz/corpus/fuzz_page_token/.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "page_token.h"

#define CHECK(cond)                                                                           \
    do {                                                                                      \
        if (!(cond))                                                                          \
            abort();                                                                          \
    } while (0)

static uint64_t take64(const uint8_t **p, size_t *n)
{
    uint64_t v = 0;
    for (int i = 0; i < 8 && *n; i++, (*p)++, (*n)--)
        v |= (uint64_t)**p << (8 * i);
    return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Decode garbage: a private copy of exactly size bytes, so an overread
     * is an ASan report. */
    char *copy = malloc(size ? size : 1);
    if (!copy)
        return 0;
    memcpy(copy, data, size);
    tally__page_cursor c;
    if (tally__page_token_decode(copy, size, &c) == 0) {
        char again[TALLY_PAGE_TOKEN_MAX];
        CHECK(tally__page_token_encode(&c, again) == 0);
        CHECK(strlen(again) == size && memcmp(again, copy, size) == 0);
    }
    free(copy);

    /* Round trip of a carved cursor. */
    const uint8_t *p = data;
    size_t n = size;
    tally__page_cursor k;
    k.order = (take64(&p, &n) & 1) ? TALLY_HISTORY_BY_TIME : TALLY_HISTORY_BY_STEP;
    k.id = take64(&p, &n);
    k.lo = (int64_t)take64(&p, &n);
    k.hi = (int64_t)take64(&p, &n);
    k.last.step = (int64_t)take64(&p, &n);
    k.last.timestamp_ms = (int64_t)take64(&p, &n);
    uint64_t vb = take64(&p, &n);
    memcpy(&k.last.value, &vb, 8);
    char tok[TALLY_PAGE_TOKEN_MAX];
    CHECK(tally__page_token_encode(&k, tok) == 0);
    CHECK(strlen(tok) == TALLY__PAGE_TOKEN_LEN);
    for (const char *ch = tok; *ch; ch++)
        CHECK(*ch > ' ' && *ch < 127);
    tally__page_cursor d;
    CHECK(tally__page_token_decode(tok, strlen(tok), &d) == 0);
    CHECK(d.order == k.order && d.id == k.id && d.lo == k.lo && d.hi == k.hi);
    CHECK(d.last.step == k.last.step && d.last.timestamp_ms == k.last.timestamp_ms);
    CHECK(memcmp(&d.last.value, &k.last.value, 8) == 0);
    uint64_t where = take64(&p, &n);
    size_t at = (size_t)(where % TALLY__PAGE_TOKEN_LEN);
    char repl = (char)(where >> 8);
    if (repl != tok[at]) {
        tok[at] = repl;
        CHECK(tally__page_token_decode(tok, TALLY__PAGE_TOKEN_LEN, &d) != 0);
    }
    return 0;
}
