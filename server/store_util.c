/*
 * store_util.c — the backend-independent half of the metadata store: result
 * arenas, MLflow's key and length rules (utils/validation.py), run status
 * names. Every backend (store_sqlite.c today) shares these, so the rules are
 * the same whatever the database.
 *
 * Arena layout: a singly linked list of chunks, newest first; each chunk is a
 * header followed by its bytes. Allocations bump `used`; an allocation larger
 * than a quarter chunk gets a chunk of its own.
 *
 *   a->head -> [next|size|used| bytes ........ ] -> [next|size|used| bytes ] -> NULL
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"

#define ARENA_CHUNK 16384

typedef struct chunk {
    struct chunk *next;
    size_t size; /* usable bytes after the header */
    size_t used; /* bytes handed out */
    /* bytes follow, 16-aligned */
} chunk;

struct tally_arena {
    chunk *head; /* newest chunk */
};

#define CHUNK_HDR ((sizeof(chunk) + 15u) & ~(size_t)15u)

tally_arena *tally_arena_new(void)
{
    return calloc(1, sizeof(tally_arena));
}

void tally_arena_free(tally_arena *a)
{
    if (!a)
        return;
    chunk *c = a->head;
    while (c) {
        chunk *next = c->next;
        free(c);
        c = next;
    }
    free(a);
}

void *tally_arena_alloc(tally_arena *a, size_t n)
{
    if (!a)
        return NULL;
    n = (n + 15u) & ~(size_t)15u;
    if (n == 0)
        n = 16;
    chunk *c = a->head;
    if (!c || c->size - c->used < n) {
        size_t size = n > ARENA_CHUNK / 4 ? n : ARENA_CHUNK;
        chunk *nc = malloc(CHUNK_HDR + size);
        if (!nc)
            return NULL;
        nc->size = size;
        nc->used = 0;
        if (size == n && c) {
            /* A big block: keep the current chunk on top for small ones. */
            nc->next = c->next;
            c->next = nc;
        } else {
            nc->next = c;
            a->head = nc;
        }
        c = nc;
    }
    char *p = (char *)c + CHUNK_HDR + c->used;
    c->used += n;
    memset(p, 0, n);
    return p;
}

char *tally_arena_strndup(tally_arena *a, const char *s, size_t n)
{
    char *p = tally_arena_alloc(a, n + 1);
    if (!p)
        return NULL;
    if (n)
        memcpy(p, s, n);
    p[n] = 0;
    return p;
}

char *tally_arena_strdup(tally_arena *a, const char *s)
{
    if (!s)
        s = "";
    return tally_arena_strndup(a, s, strlen(s));
}

/* ------------------------------------------------------------------------ */

static const char *const status_names[] = {NULL, "RUNNING", "SCHEDULED", "FINISHED", "FAILED",
                                           "KILLED"};

const char *tally_run_status_name(int status)
{
    if (status < 1 || status > 5)
        return NULL;
    return status_names[status];
}

int tally_run_status_parse(const char *name)
{
    if (!name)
        return 0;
    for (int i = 1; i <= 5; i++)
        if (strcmp(name, status_names[i]) == 0)
            return i;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* UTF-8 character counting (Python's len() and slicing count code points)   */
/* ------------------------------------------------------------------------ */

/* Length in bytes of the character starting at p (1 for an invalid byte). */
static size_t utf8_step(const unsigned char *p)
{
    unsigned char c = p[0];
    size_t n;
    if (c < 0x80)
        return 1;
    else if ((c & 0xE0) == 0xC0)
        n = 2;
    else if ((c & 0xF0) == 0xE0)
        n = 3;
    else if ((c & 0xF8) == 0xF0)
        n = 4;
    else
        return 1;
    for (size_t i = 1; i < n; i++)
        if ((p[i] & 0xC0) != 0x80)
            return 1;
    return n;
}

size_t tally_utf8_chars(const char *s)
{
    size_t n = 0;
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        p += utf8_step(p);
        n++;
    }
    return n;
}

size_t tally_utf8_truncate(const char *s, size_t max_chars)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = 0;
    while (*p && n < max_chars) {
        p += utf8_step(p);
        n++;
    }
    return (size_t)((const char *)p - s);
}

/* ------------------------------------------------------------------------ */
/* Key rules                                                                 */
/* ------------------------------------------------------------------------ */

static void set_err(char *err, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t cap, const char *fmt, ...)
{
    if (!err || !cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, cap, fmt, ap);
    va_end(ap);
}

static int key_char_ok(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '.' || c == '-' || c == ' ' || c == '/' || c == ':' || c >= 0x80;
}

/* Python's posixpath.normpath(key) == key, and the result is neither ".",
 * nor starting with ".." or "/" (MLflow's path_not_unique). */
static int key_path_normal(const char *key)
{
    size_t len = strlen(key);
    if (len == 0 || key[0] == '/' || strncmp(key, "..", 2) == 0 || key[len - 1] == '/')
        return 0;
    if (strstr(key, "//"))
        return 0;
    const char *p = key;
    while (*p) {
        const char *slash = strchr(p, '/');
        size_t n = slash ? (size_t)(slash - p) : strlen(p);
        if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
            return 0;
        if (!slash)
            break;
        p = slash + 1;
    }
    return 1;
}

int tally_store_check_key(const char *what, const char *key, char *err, size_t cap)
{
    if (!key) {
        set_err(err, cap, "Missing value for required parameter 'key'. See the API docs for more "
                          "information about request parameters.");
        return TALLY_STORE_EINVAL;
    }
    for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
        if (!key_char_ok(*p)) {
            set_err(err, cap,
                    "Invalid %s name: '%.300s'. Names may only contain alphanumerics, underscores "
                    "(_), dashes (-), periods (.), spaces ( ), colon(:) and slashes (/).",
                    what, key);
            return TALLY_STORE_EINVAL;
        }
    }
    if (!key_path_normal(key)) {
        set_err(err, cap,
                "Invalid %s name: '%.300s'. Names may be treated as files in certain cases, and "
                "must not resolve to other names when treated as such.",
                what, key);
        return TALLY_STORE_EINVAL;
    }
    size_t n = tally_utf8_chars(key);
    if (n > TALLY_MAX_KEY_LEN) {
        set_err(err, cap,
                "%c%s key '%.250s...' had length %zu, which exceeded length limit of %d",
                what[0] >= 'a' && what[0] <= 'z' ? what[0] - 'a' + 'A' : what[0], what + 1, key, n,
                TALLY_MAX_KEY_LEN);
        return TALLY_STORE_EINVAL;
    }
    return 0;
}

static int cmp_strp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int tally_store_check_params_tags(const tally_kv *params, size_t n_params, const tally_kv *tags,
                                  size_t n_tags, char *err, size_t cap)
{
    int rc;
    for (size_t i = 0; i < n_params; i++)
        if ((rc = tally_store_check_key("param", params[i].key, err, cap)) != 0)
            return rc;
    for (size_t i = 0; i < n_tags; i++)
        if ((rc = tally_store_check_key("tag", tags[i].key, err, cap)) != 0)
            return rc;
    /* Duplicate param keys: quadratic is fine for MLflow's 100-param cap, and
     * we do not allocate; larger lists go through a sorted copy. */
    if (n_params > 1 && n_params <= 256) {
        for (size_t i = 1; i < n_params; i++)
            for (size_t j = 0; j < i; j++)
                if (strcmp(params[i].key, params[j].key) == 0) {
                    set_err(err, cap,
                            "Duplicate parameter keys have been submitted: ['%.300s']. Please "
                            "ensure the request contains only one param value per param key.",
                            params[i].key);
                    return TALLY_STORE_EINVAL;
                }
    } else if (n_params > 256) {
        const char **keys = malloc(n_params * sizeof *keys);
        if (!keys)
            return TALLY_STORE_ENOMEM;
        for (size_t i = 0; i < n_params; i++)
            keys[i] = params[i].key;
        qsort(keys, n_params, sizeof *keys, cmp_strp);
        for (size_t i = 1; i < n_params; i++)
            if (strcmp(keys[i], keys[i - 1]) == 0) {
                set_err(err, cap,
                        "Duplicate parameter keys have been submitted: ['%.300s']. Please ensure "
                        "the request contains only one param value per param key.",
                        keys[i]);
                free(keys);
                return TALLY_STORE_EINVAL;
            }
        free(keys);
    }
    return 0;
}

int tally__arena_reserve(tally_arena *a, void *arr, size_t elem, size_t n, size_t *cap,
                         size_t first)
{
    if (n < *cap)
        return 0;
    size_t ncap = *cap ? *cap * 2 : first;
    void *old, *nv = tally_arena_alloc(a, ncap * elem);
    if (!nv)
        return -1;
    /* The pointer is read and written as bytes: *arr is a T *, not a void *. */
    memcpy(&old, arr, sizeof old);
    if (n)
        memcpy(nv, old, n * elem);
    memcpy(arr, &nv, sizeof nv);
    *cap = ncap;
    return 0;
}

int tally__vec_reserve(void *arr, size_t elem, size_t n, size_t *cap, size_t first)
{
    if (n < *cap)
        return 0;
    size_t ncap = *cap ? *cap * 2 : first;
    void *old;
    memcpy(&old, arr, sizeof old);
    void *nv = realloc(old, ncap * elem);
    if (!nv)
        return -1;
    memcpy(arr, &nv, sizeof nv);
    *cap = ncap;
    return 0;
}
