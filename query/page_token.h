/*
 * page_token.h — the codec of history pagination tokens. Private to query/.
 *
 * A token is a cursor: which query it belongs to and the last point it
 * returned. It travels through clients as an opaque string, so it is
 * versioned, checksummed and printable. Raw form (58 bytes, little-endian),
 * then base64url (RFC 4648 §5, alphabet A-Z a-z 0-9 - _) without padding:
 *
 *   OFFSET SIZE DESCRIPTION
 *        0    1 version, TALLY__PAGE_TOKEN_VERSION
 *        1    1 order: tally_history_order (0 BY_STEP, 1 BY_TIME)
 *        2    8 series id
 *       10    8 lo: range start of the order's first key (int64)
 *       18    8 hi: range end (int64)
 *       26    8 last point's step (int64)
 *       34    8 last point's timestamp, ms (int64)
 *       42    8 last point's value bits
 *       50    8 XXH3-64 of bytes [0, 50) with seed TALLY__PAGE_TOKEN_SEED
 *
 * Invariants:
 *  (1) An encoded token is exactly TALLY__PAGE_TOKEN_LEN (78) characters of
 *      the base64url alphabet followed by a zero byte: it fits in
 *      TALLY_PAGE_TOKEN_MAX (96) bytes.
 *  (2) Decoding accepts only the canonical encoding: length 78, alphabet
 *      characters only, the 4 unused low bits of the last character zero,
 *      known version and order, and a matching checksum. So any changed
 *      character is rejected (the checksum catches what the canonical form
 *      lets through), and a random string passes with probability ~2^-64.
 *  (3) decode(encode(c)) == c for every cursor with a valid order.
 * The checksum detects accidents and tampering by clients; it is not a MAC,
 * and nothing secret is in a token (the caller can read the series anyway).
 */
#ifndef TALLY_QUERY_PAGE_TOKEN_H
#define TALLY_QUERY_PAGE_TOKEN_H

#include <stddef.h>
#include <stdint.h>

#include "tally/query.h"

#define TALLY__PAGE_TOKEN_VERSION 1u
#define TALLY__PAGE_TOKEN_RAW 58u   /* bytes before base64url */
#define TALLY__PAGE_TOKEN_LEN 78u   /* characters after, without the zero */
#define TALLY__PAGE_TOKEN_SEED 0x7461C1E5A9E7011Bull

_Static_assert(TALLY__PAGE_TOKEN_LEN < TALLY_PAGE_TOKEN_MAX, "token and its zero fit");

typedef struct tally__page_cursor {
    tally_history_order order; /* the page's order */
    tally_series_id id;        /* the series paged through */
    int64_t lo, hi;            /* the request's range, inclusive */
    tally_point last;          /* last point returned; the next page starts strictly after it */
} tally__page_cursor;

/* Writes the token of c and its terminating zero into out (at least
 * TALLY_PAGE_TOKEN_MAX bytes). Returns 0, or TALLY_EINVAL if c->order is not
 * a tally_history_order. */
int tally__page_token_encode(const tally__page_cursor *c, char *out);

/* Decodes the len bytes at tok (no zero needed) into *c. Returns 0, or
 * TALLY_EINVAL for anything that encode did not produce (invariant 2); *c is
 * then unspecified. Reads only [tok, tok + len). */
int tally__page_token_decode(const char *tok, size_t len, tally__page_cursor *c);

#endif /* TALLY_QUERY_PAGE_TOKEN_H */
