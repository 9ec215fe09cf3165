/*
 * search_lex.c — reading the pieces of a search string: whitespace, words,
 * quoted strings, number literals and identifiers ([entity "."] key), plus
 * the error messages that say what went wrong and where. The parsers
 * (search_parse.c, search_order.c) drive a tally__search_lex cursor with
 * these; nothing here allocates.
 *
 *   text    m e t r i c s . ` v a l   l o s s `   > =   - 1 e 3
 *           ^ident start    ^key_pos (quoted)     ^op   ^number
 *   pos     0               8                     19    22
 *
 * Invariants:
 *   (1) Every read is guarded by pos < len: the text need not be
 *       NUL-terminated and may hold any bytes.
 *   (2) On error the cursor may be anywhere; callers stop parsing.
 *   (3) A word is [A-Za-z_\x80-\xff][A-Za-z0-9_.\x80-\xff]*: bytes >= 0x80
 *       (UTF-8) are letters, so keys in any script need no quoting.
 *   (4) Quoted strings have no escapes: a string ends at the first byte
 *       equal to its opening quote (docs/api.md, "Search syntax").
 */
#include <stdio.h>
#include <string.h>

#include "search_int.h"

int tally__search_is_space(int c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static int is_alpha(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int is_digit(int c)
{
    return c >= '0' && c <= '9';
}

int tally__search_is_word_start(int c)
{
    return is_alpha(c) || c == '_' || c >= 0x80;
}

int tally__search_is_word_char(int c)
{
    return tally__search_is_word_start(c) || is_digit(c) || c == '.';
}

static int at(const tally__search_lex *lx, size_t pos)
{
    return pos < lx->len ? (unsigned char)lx->s[pos] : -1;
}

void tally__search_skip_ws(tally__search_lex *lx)
{
    while (lx->pos < lx->len && tally__search_is_space((unsigned char)lx->s[lx->pos]))
        lx->pos++;
}

size_t tally__search_word_len(const tally__search_lex *lx)
{
    size_t p = lx->pos;
    if (!tally__search_is_word_start(at(lx, p)))
        return 0;
    while (p < lx->len && tally__search_is_word_char((unsigned char)lx->s[p]))
        p++;
    return p - lx->pos;
}

size_t tally__search_alpha_len(const tally__search_lex *lx)
{
    size_t p = lx->pos;
    while (p < lx->len && is_alpha((unsigned char)lx->s[p]))
        p++;
    return p - lx->pos;
}

int tally__search_word_is(const char *w, size_t n, const char *kw)
{
    size_t i = 0;
    for (; i < n && kw[i]; i++) {
        int a = (unsigned char)w[i], b = (unsigned char)kw[i];
        if (a >= 'a' && a <= 'z')
            a -= 32;
        if (b >= 'a' && b <= 'z')
            b -= 32;
        if (a != b)
            return 0;
    }
    return i == n && kw[i] == '\0';
}

/* Appends a short, printable quote of the text at pos to m. */
static void quote_near(const tally__search_lex *lx, size_t pos, char *m, size_t cap)
{
    size_t used = strlen(m);
    if (pos >= lx->len) {
        snprintf(m + used, cap - used, " at end of input");
        return;
    }
    char q[64];
    size_t qn = 0;
    for (size_t p = pos; p < lx->len && p < pos + 24 && qn + 5 < sizeof q; p++) {
        unsigned char c = (unsigned char)lx->s[p];
        if (c >= 0x20 && c < 0x7f) {
            q[qn++] = (char)c;
        } else {
            snprintf(q + qn, sizeof q - qn, "\\x%02x", c);
            qn += 4;
        }
    }
    q[qn] = '\0';
    snprintf(m + used, cap - used, " at position %zu near \"%s%s\"", pos, q,
             pos + 24 < lx->len ? "..." : "");
}

int tally__search_fail(tally__search_lex *lx, size_t pos, const char *fmt, ...)
{
    if (!lx->err)
        return TALLY_EINVAL;
    char m[sizeof lx->err->msg];
    int n = snprintf(m, sizeof m, "Invalid %s: ", lx->what ? lx->what : "filter");
    if (n < 0)
        n = 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m + n, sizeof m - (size_t)n, fmt, ap);
    va_end(ap);
    quote_near(lx, pos, m, sizeof m);
    memcpy(lx->err->msg, m, sizeof m);
    lx->err->pos = pos;
    lx->err->item = lx->item;
    return TALLY_EINVAL;
}

/* A quote of [s, s+n) fit for a message: at most 40 bytes, printable. */
static const char *shorten(const char *s, size_t n, char *buf, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 5 < cap && i < 40; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7f) {
            buf[o++] = (char)c;
        } else {
            snprintf(buf + o, cap - o, "\\x%02x", c);
            o += 4;
        }
    }
    if (n > 40 && o + 4 < cap) {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o] = '\0';
    return buf;
}

int tally__search_scan_quoted(tally__search_lex *lx, int allow_empty, const char **start,
                              size_t *n)
{
    size_t open = lx->pos;
    char q = lx->s[open];
    const char *end = memchr(lx->s + open + 1, q, lx->len - open - 1);
    if (!end)
        return tally__search_fail(lx, open, "unterminated %c-quoted string", q);
    *start = lx->s + open + 1;
    *n = (size_t)(end - *start);
    if (*n == 0 && !allow_empty)
        return tally__search_fail(lx, open, "empty quoted name");
    lx->pos = (size_t)(end - lx->s) + 1;
    return 0;
}

int tally__search_number_starts(const tally__search_lex *lx)
{
    size_t p = lx->pos;
    if (at(lx, p) == '+' || at(lx, p) == '-')
        p++;
    if (is_digit(at(lx, p)))
        return 1;
    return at(lx, p) == '.' && is_digit(at(lx, p + 1));
}

int tally__search_scan_number(tally__search_lex *lx, size_t *n)
{
    size_t p = lx->pos, digits = 0;
    if (at(lx, p) == '+' || at(lx, p) == '-')
        p++;
    while (is_digit(at(lx, p)))
        p++, digits++;
    if (at(lx, p) == '.') {
        p++;
        while (is_digit(at(lx, p)))
            p++, digits++;
    }
    if (digits == 0)
        return tally__search_fail(lx, lx->pos, "malformed number");
    if (at(lx, p) == 'e' || at(lx, p) == 'E') {
        size_t q = p + 1;
        if (at(lx, q) == '+' || at(lx, q) == '-')
            q++;
        if (!is_digit(at(lx, q)))
            return tally__search_fail(lx, lx->pos, "malformed number (exponent without digits)");
        while (is_digit(at(lx, q)))
            q++;
        p = q;
    }
    if (p < lx->len && tally__search_is_word_char((unsigned char)lx->s[p]))
        return tally__search_fail(lx, lx->pos, "malformed number");
    *n = p - lx->pos;
    lx->pos = p;
    return 0;
}

/* The key after "entity.": quoted with " or `, or a run of word bytes. */
static int scan_key_after_dot(tally__search_lex *lx, tally__search_ident *out)
{
    int c = at(lx, lx->pos);
    out->key_pos = lx->pos;
    if (c == '"' || c == '`')
        return tally__search_scan_quoted(lx, 0, &out->key, &out->key_len);
    size_t p = lx->pos;
    while (p < lx->len && tally__search_is_word_char((unsigned char)lx->s[p]))
        p++;
    if (p == lx->pos)
        return tally__search_fail(lx, lx->pos, "expected a key after '.'");
    out->key = lx->s + lx->pos;
    out->key_len = p - lx->pos;
    lx->pos = p;
    return 0;
}

static int resolve_entity(tally__search_lex *lx, const char *name, size_t n, size_t pos,
                          tally__search_ident *out)
{
    char b[64];
    if (tally__search_entity_lookup(name, n, &out->entity) != 0)
        return tally__search_fail(lx, pos,
                                  "invalid entity type '%s' (expected one of metrics, params, "
                                  "tags, attributes, datasets or their singular forms)",
                                  shorten(name, n, b, sizeof b));
    out->had_prefix = 1;
    return 0;
}

int tally__search_scan_ident(tally__search_lex *lx, tally__search_ident *out)
{
    memset(out, 0, sizeof *out);
    out->entity = TALLY_SEARCH_ATTR;
    out->pos = lx->pos;
    int c = at(lx, lx->pos);
    int rc;
    if (c == '`') {
        const char *q = NULL;
        size_t qn = 0;
        if ((rc = tally__search_scan_quoted(lx, 0, &q, &qn)) != 0)
            return rc;
        if (at(lx, lx->pos) != '.') {
            out->key = q;
            out->key_len = qn;
            out->key_pos = out->pos;
            return 0;
        }
        if ((rc = resolve_entity(lx, q, qn, out->pos, out)) != 0)
            return rc;
        lx->pos++;
        return scan_key_after_dot(lx, out);
    }
    if (c == '"') {
        out->key_pos = out->pos;
        if ((rc = tally__search_scan_quoted(lx, 0, &out->key, &out->key_len)) != 0)
            return rc;
        if (at(lx, lx->pos) == '.')
            return tally__search_fail(lx, lx->pos,
                                      "a \"-quoted name cannot be an entity (use backticks)");
        return 0;
    }
    size_t wn = tally__search_word_len(lx);
    if (wn == 0) {
        if (c == '(' || c == ')')
            return tally__search_fail(lx, lx->pos, "parentheses are not supported");
        return tally__search_fail(lx, lx->pos, "expected an identifier");
    }
    const char *w = lx->s + lx->pos;
    const char *dot = memchr(w, '.', wn);
    if (!dot) {
        if (tally__search_word_is(w, wn, "OR"))
            return tally__search_fail(lx, lx->pos, "OR is not supported (only AND)");
        if (tally__search_word_is(w, wn, "NOT"))
            return tally__search_fail(lx, lx->pos, "NOT is only supported as NOT IN");
        out->key = w;
        out->key_len = wn;
        out->key_pos = lx->pos;
        lx->pos += wn;
        return 0;
    }
    if ((rc = resolve_entity(lx, w, (size_t)(dot - w), out->pos, out)) != 0)
        return rc;
    size_t rest = wn - (size_t)(dot - w) - 1;
    if (rest > 0) {
        out->key = dot + 1;
        out->key_len = rest;
        out->key_pos = lx->pos + (size_t)(dot - w) + 1;
        lx->pos += wn;
        return 0;
    }
    lx->pos += wn;
    return scan_key_after_dot(lx, out);
}
