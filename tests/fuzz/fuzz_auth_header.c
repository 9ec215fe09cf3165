/*
 * fuzz_auth_header.c — libFuzzer target for the Authorization header parser
 * (server/auth.c, tally_auth_parse_header).
 *
 *   parse garbage  the input as a NUL-terminated header value: parsing must
 *                  never crash or read past the NUL, and what it accepts
 *                  must be well formed: Basic gives a non-empty username
 *                  without ':' and bounded, NUL-free fields; Bearer gives a
 *                  token of exactly TALLY_TOKEN_CHARS base64url characters
 *                  after the "tly_" prefix.
 *   round trip     a Basic credential that parsed, encoded again with
 *                  standard base64, parses to the same username and
 *                  password (passwords may hold ':').
 *
 * Seeds: tests/fuzz/corpus/fuzz_auth_header/.
 */
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"

#define CHECK(cond)                                                                           \
    do {                                                                                      \
        if (!(cond))                                                                          \
            abort();                                                                          \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *copy = malloc(size + 1);
    tally_cred *c = malloc(sizeof *c), *again = malloc(sizeof *again);
    if (!copy || !c || !again)
        goto out;
    memcpy(copy, data, size);
    copy[size] = 0;
    tally_cred_kind k = tally_auth_parse_header(copy, c);
    CHECK(k == c->kind);
    switch (k) {
    case TALLY_CRED_BASIC: {
        size_t ul = strlen(c->user), pl = strlen(c->password);
        CHECK(ul > 0 && ul <= TALLY_AUTH_MAX_USERNAME && pl <= TALLY_AUTH_MAX_PASSWORD);
        CHECK(!strchr(c->user, ':'));
        CHECK(c->token[0] == 0);
        /* Round trip through a canonical header. */
        size_t raw_len = ul + 1 + pl;
        char *raw = malloc(raw_len + 1);
        size_t b64_cap = sodium_base64_ENCODED_LEN(raw_len, sodium_base64_VARIANT_ORIGINAL);
        char *hdr = malloc(6 + b64_cap);
        if (raw && hdr) {
            memcpy(raw, c->user, ul);
            raw[ul] = ':';
            memcpy(raw + ul + 1, c->password, pl);
            memcpy(hdr, "Basic ", 6);
            sodium_bin2base64(hdr + 6, b64_cap, (const unsigned char *)raw, raw_len,
                              sodium_base64_VARIANT_ORIGINAL);
            CHECK(tally_auth_parse_header(hdr, again) == TALLY_CRED_BASIC);
            CHECK(strcmp(again->user, c->user) == 0);
            CHECK(strcmp(again->password, c->password) == 0);
        }
        free(raw);
        free(hdr);
        break;
    }
    case TALLY_CRED_BEARER:
        CHECK(strlen(c->token) == TALLY_TOKEN_CHARS);
        CHECK(strncmp(c->token, TALLY_TOKEN_PREFIX, 4) == 0);
        for (size_t i = 4; i < TALLY_TOKEN_CHARS; i++) {
            char ch = c->token[i];
            CHECK((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
                  (ch >= '0' && ch <= '9') || ch == '-' || ch == '_');
        }
        CHECK(c->user[0] == 0 && c->password[0] == 0);
        break;
    case TALLY_CRED_NONE:
    case TALLY_CRED_INVALID:
        CHECK(c->user[0] == 0 && c->password[0] == 0 && c->token[0] == 0);
        break;
    }
out:
    free(copy);
    free(c);
    free(again);
    return 0;
}
