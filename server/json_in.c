/*
 * json_in.c — the strict JSON parser and arena of json_in.h.
 *
 * Memory: an arena is a list of chunks, newest first; its own header sits at
 * the start of the first chunk. A 64 KiB first chunk is kept per thread
 * (pthread key, freed at thread exit) so a typical request parses with no
 * malloc at all.
 *
 * Invariants:
 *  (1) Every string in a tree is valid UTF-8 without NUL bytes.
 *  (2) A number node's valuestring, when set, is the token text exactly as
 *      sent (JSON number grammar, NUL-terminated); it is set iff the number
 *      has more than 15 significant digits (fewer are exact as doubles).
 *  (3) Object members keep their order; child->prev is the last member (as
 *      cJSON maintains it); key strings carry cJSON_StringIsConst.
 *  (4) Parsing stops at the first error; nothing is read past s + n.
 *  (5) arena->total <= arena->limit, checked before every new chunk.
 */
#include "json_in.h"

#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdalign.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json_out.h"

#define PARSE_MAX_DEPTH TALLY_JSON_MAX_PARSE_DEPTH
#define ARENA_CHUNK (64u * 1024u)
#define ALIGN 16u

/* ------------------------------------------------------------------------ */
/* Arena                                                                      */
/* ------------------------------------------------------------------------ */

typedef struct chunk {
    struct chunk *next; /* older chunk */
    size_t cap;         /* bytes of data[] */
    size_t used;        /* bytes of data[] handed out */
    alignas(ALIGN) unsigned char data[];
} chunk;

struct tally_json_arena {
    chunk *head;      /* current chunk */
    size_t total;     /* bytes allocated in all chunks */
    size_t limit;     /* refuse to grow past this */
};

static pthread_key_t cache_key;
static pthread_once_t cache_once = PTHREAD_ONCE_INIT;

static void cache_init(void)
{
    if (pthread_key_create(&cache_key, free) != 0)
        cache_key = (pthread_key_t)-1; /* no per-thread reuse: plain malloc */
}

static chunk *chunk_new(size_t need)
{
    size_t cap = need > ARENA_CHUNK ? need : ARENA_CHUNK;
    if (cap == ARENA_CHUNK && cache_key != (pthread_key_t)-1) {
        chunk *c = pthread_getspecific(cache_key);
        if (c) {
            pthread_setspecific(cache_key, NULL);
            c->next = NULL;
            c->used = 0;
            return c;
        }
    }
    chunk *c = malloc(sizeof *c + cap);
    if (!c)
        return NULL;
    c->next = NULL;
    c->cap = cap;
    c->used = 0;
    return c;
}

static void chunk_release(chunk *c)
{
    if (c->cap == ARENA_CHUNK && cache_key != (pthread_key_t)-1 &&
        !pthread_getspecific(cache_key) && pthread_setspecific(cache_key, c) == 0)
        return;
    free(c);
}

/* A new arena whose header lives in its own first chunk. */
tally_json_arena *tally_json_arena_new(size_t limit)
{
    pthread_once(&cache_once, cache_init);
    chunk *c = chunk_new(ARENA_CHUNK);
    if (!c)
        return NULL;
    tally_json_arena *a = (tally_json_arena *)(void *)c->data;
    c->used = (sizeof *a + ALIGN - 1) & ~(size_t)(ALIGN - 1);
    a->head = c;
    a->total = c->cap;
    a->limit = limit;
    return a;
}

void tally_json_arena_free(tally_json_arena *a)
{
    if (!a)
        return;
    chunk *c = a->head;
    while (c) {
        chunk *next = c->next;
        chunk_release(c);
        c = next;
    }
}

void *tally_json_arena_alloc(tally_json_arena *a, size_t n)
{
    n = (n + ALIGN - 1) & ~(size_t)(ALIGN - 1);
    chunk *c = a->head;
    if (c->cap - c->used < n) {
        size_t want = n > ARENA_CHUNK ? n : (c->cap < 8 * ARENA_CHUNK ? c->cap * 2 : c->cap);
        if (a->total + want > a->limit)
            return NULL;
        chunk *d = chunk_new(want);
        if (!d)
            return NULL;
        d->next = c;
        a->head = d;
        a->total += d->cap;
        c = d;
    }
    void *p = c->data + c->used;
    c->used += n;
    return p;
}

static char *arena_strdup(tally_json_arena *a, const char *s, size_t n)
{
    char *d = tally_json_arena_alloc(a, n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = 0;
    }
    return d;
}

/* ------------------------------------------------------------------------ */
/* JSON parser                                                                */
/* ------------------------------------------------------------------------ */

typedef struct parser {
    const char *start;  /* the document, for error offsets */
    const char *p;      /* cursor */
    const char *end;    /* one past the last byte */
    tally_json_arena *a;
    int depth;
    const char *err;    /* static message, set on the first error */
    size_t err_off;     /* byte offset of the error */
    int oom;            /* the arena refused: too complex, not malformed */
} parser;

static void *perr(parser *ps, const char *msg)
{
    if (!ps->err) {
        ps->err = msg;
        ps->err_off = (size_t)(ps->p - ps->start);
    }
    return NULL;
}

static cJSON *new_node(parser *ps, int type)
{
    cJSON *n = tally_json_arena_alloc(ps->a, sizeof *n);
    if (!n) {
        ps->oom = 1;
        return perr(ps, "request too complex");
    }
    memset(n, 0, sizeof *n);
    n->type = type;
    return n;
}

static void skip_ws(parser *ps)
{
    while (ps->p < ps->end &&
           (*ps->p == ' ' || *ps->p == '\n' || *ps->p == '\r' || *ps->p == '\t'))
        ps->p++;
}

int tally_json_hex4(const char *p, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (unsigned)(c - 'A' + 10);
        else
            return -1;
    }
    *out = v;
    return 0;
}

/* Parses the string at ps->p (at the opening quote) into arena memory. */
static char *parse_string(parser *ps)
{
    const char *q = ++ps->p; /* past the quote */
    /* Find the closing quote; the decoded text is never longer than this. */
    while (q < ps->end && *q != '"') {
        if (*q == '\\')
            q++;
        q++;
    }
    if (q >= ps->end)
        return perr(ps, "unterminated string");
    char *out = tally_json_arena_alloc(ps->a, (size_t)(q - ps->p) + 1);
    if (!out) {
        ps->oom = 1;
        return perr(ps, "request too complex");
    }
    char *o = out;
    const unsigned char *p = (const unsigned char *)ps->p, *e = (const unsigned char *)q;
    while (p < e) {
        unsigned c = *p;
        if (c >= 0x20 && c != '\\' && c < 0x80) {
            *o++ = (char)c;
            p++;
            continue;
        }
        if (c < 0x20) {
            ps->p = (const char *)p;
            return perr(ps, "control character in string");
        }
        if (c >= 0x80) {
            size_t k = tally_utf8_seq_len(p, (size_t)(e - p));
            if (!k) {
                ps->p = (const char *)p;
                return perr(ps, "invalid UTF-8");
            }
            memcpy(o, p, k);
            o += k;
            p += k;
            continue;
        }
        /* An escape; the scan above guarantees a byte after the backslash. */
        ps->p = (const char *)p;
        c = p[1];
        p += 2;
        switch (c) {
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case '/': *o++ = '/'; break;
        case 'b': *o++ = '\b'; break;
        case 'f': *o++ = '\f'; break;
        case 'n': *o++ = '\n'; break;
        case 'r': *o++ = '\r'; break;
        case 't': *o++ = '\t'; break;
        case 'u': {
            unsigned cp, lo;
            if (e - p < 4 || tally_json_hex4((const char *)p, &cp) != 0)
                return perr(ps, "bad \\u escape");
            p += 4;
            if (cp >= 0xDC00 && cp <= 0xDFFF)
                return perr(ps, "lone UTF-16 surrogate");
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                if (e - p < 6 || p[0] != '\\' || p[1] != 'u' ||
                    tally_json_hex4((const char *)p + 2, &lo) != 0 || lo < 0xDC00 || lo > 0xDFFF)
                    return perr(ps, "lone UTF-16 surrogate");
                p += 6;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            }
            if (cp == 0)
                return perr(ps, "NUL character in string");
            /* Each escape is 6 (or 12) input bytes and at most 4 output bytes. */
            if (cp < 0x80) {
                *o++ = (char)cp;
            } else if (cp < 0x800) {
                *o++ = (char)(0xC0 | (cp >> 6));
                *o++ = (char)(0x80 | (cp & 0x3F));
            } else if (cp < 0x10000) {
                *o++ = (char)(0xE0 | (cp >> 12));
                *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
                *o++ = (char)(0x80 | (cp & 0x3F));
            } else {
                *o++ = (char)(0xF0 | (cp >> 18));
                *o++ = (char)(0x80 | ((cp >> 12) & 0x3F));
                *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
                *o++ = (char)(0x80 | (cp & 0x3F));
            }
            break;
        }
        default:
            return perr(ps, "bad escape in string");
        }
    }
    *o = 0;
    ps->p = q + 1;
    return out;
}

static cJSON *parse_number(parser *ps)
{
    const char *s = ps->p, *p = s;
    int digits = 0;
    if (p < ps->end && *p == '-')
        p++;
    if (p >= ps->end || !(*p >= '0' && *p <= '9'))
        return perr(ps, "bad number");
    if (*p == '0') {
        p++;
        digits++;
    } else {
        while (p < ps->end && *p >= '0' && *p <= '9')
            p++, digits++;
    }
    if (p < ps->end && *p == '.') {
        p++;
        if (p >= ps->end || !(*p >= '0' && *p <= '9')) {
            ps->p = p;
            return perr(ps, "bad number");
        }
        while (p < ps->end && *p >= '0' && *p <= '9')
            p++, digits++;
    }
    if (p < ps->end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < ps->end && (*p == '+' || *p == '-'))
            p++;
        if (p >= ps->end || !(*p >= '0' && *p <= '9')) {
            ps->p = p;
            return perr(ps, "bad number");
        }
        while (p < ps->end && *p >= '0' && *p <= '9')
            p++;
    }
    cJSON *n = new_node(ps, cJSON_Number);
    if (!n)
        return NULL;
    size_t len = (size_t)(p - s);
    char tmp[64], *text = tmp;
    if (len >= sizeof tmp || digits > 15) {
        text = arena_strdup(ps->a, s, len);
        if (!text) {
            ps->oom = 1;
            return perr(ps, "request too complex");
        }
        if (digits > 15)
            n->valuestring = text; /* invariant (3) */
    } else {
        memcpy(tmp, s, len);
        tmp[len] = 0;
    }
    n->valuedouble = strtod(text, NULL);
    double d = n->valuedouble;
    n->valueint = d >= 2147483647.0 ? 2147483647 : d <= -2147483648.0 ? (-2147483647 - 1) : (int)d;
    ps->p = p;
    return n;
}

static cJSON *parse_value(parser *ps);

static cJSON *parse_container(parser *ps, int is_object)
{
    if (++ps->depth > PARSE_MAX_DEPTH)
        return perr(ps, "nesting too deep");
    cJSON *node = new_node(ps, is_object ? cJSON_Object : cJSON_Array);
    if (!node)
        return NULL;
    char close = is_object ? '}' : ']';
    ps->p++; /* past the bracket */
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == close) {
        ps->p++;
        ps->depth--;
        return node;
    }
    cJSON *last = NULL;
    for (;;) {
        char *key = NULL;
        if (is_object) {
            skip_ws(ps);
            if (ps->p >= ps->end || *ps->p != '"')
                return perr(ps, "expected a string key");
            key = parse_string(ps);
            if (!key)
                return NULL;
            skip_ws(ps);
            if (ps->p >= ps->end || *ps->p != ':')
                return perr(ps, "expected ':'");
            ps->p++;
        }
        cJSON *item = parse_value(ps);
        if (!item)
            return NULL;
        item->string = key;
        if (key)
            item->type |= cJSON_StringIsConst; /* the arena owns it, cJSON must not free it */
        if (last) {
            last->next = item;
            item->prev = last;
        } else {
            node->child = item;
        }
        last = item;
        node->child->prev = last; /* cJSON keeps the tail in child->prev */
        skip_ws(ps);
        if (ps->p >= ps->end)
            return perr(ps, is_object ? "unterminated object" : "unterminated array");
        if (*ps->p == ',') {
            ps->p++;
            continue;
        }
        if (*ps->p == close) {
            ps->p++;
            ps->depth--;
            return node;
        }
        return perr(ps, is_object ? "expected ',' or '}'" : "expected ',' or ']'");
    }
}

static int literal(parser *ps, const char *word, size_t n)
{
    if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0)
        return 0;
    ps->p += n;
    return 1;
}

static cJSON *parse_value(parser *ps)
{
    skip_ws(ps);
    if (ps->p >= ps->end)
        return perr(ps, "unexpected end of input");
    switch (*ps->p) {
    case '{': return parse_container(ps, 1);
    case '[': return parse_container(ps, 0);
    case '"': {
        cJSON *n = new_node(ps, cJSON_String);
        if (!n)
            return NULL;
        n->valuestring = parse_string(ps);
        return n->valuestring ? n : NULL;
    }
    case 't':
        if (literal(ps, "true", 4))
            return new_node(ps, cJSON_True);
        break;
    case 'f':
        if (literal(ps, "false", 5))
            return new_node(ps, cJSON_False);
        break;
    case 'n':
        if (literal(ps, "null", 4))
            return new_node(ps, cJSON_NULL);
        break;
    default:
        if (*ps->p == '-' || (*ps->p >= '0' && *ps->p <= '9'))
            return parse_number(ps);
        break;
    }
    return perr(ps, "unexpected character");
}

/* Parses a whole document. NULL with ps->err set on failure. */
static cJSON *parse_document(parser *ps, const char *s, size_t n, tally_json_arena *a)
{
    ps->start = ps->p = s;
    ps->end = s + n;
    ps->a = a;
    ps->depth = 0;
    ps->err = NULL;
    ps->err_off = 0;
    ps->oom = 0;
    if (n >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0)
        ps->p += 3; /* a UTF-8 byte order mark */
    cJSON *root = parse_value(ps);
    if (!root)
        return NULL;
    skip_ws(ps);
    if (ps->p != ps->end)
        return perr(ps, "trailing characters after the JSON value");
    return root;
}

cJSON *tally_json_parse(tally_json_arena *a, const char *s, size_t n, tally_json_error *err)
{
    parser ps;
    cJSON *root = parse_document(&ps, s, n, a);
    if (!root && err) {
        err->msg = ps.err ? ps.err : "invalid JSON";
        err->offset = ps.err_off;
        err->too_complex = ps.oom;
    }
    return root;
}

cJSON *tally_json_new_object(tally_json_arena *a)
{
    cJSON *n = tally_json_arena_alloc(a, sizeof *n);
    if (n) {
        memset(n, 0, sizeof *n);
        n->type = cJSON_Object;
    }
    return n;
}
