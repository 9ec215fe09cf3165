/*
 * http_url.c — request targets into a path and query arguments (http_url.h).
 */
#include "http_url.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

int tally_url_hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decodes s in place ('+' -> ' ' when plus). Malformed escapes stay
 * literal (as werkzeug does). Returns -1 when the result would hold a NUL. */
static int url_decode(char *s, int plus)
{
    char *o = s;
    for (char *p = s; *p; p++) {
        if (*p == '%' && tally_url_hexval(p[1]) >= 0 && tally_url_hexval(p[2]) >= 0) {
            char c = (char)(tally_url_hexval(p[1]) * 16 + tally_url_hexval(p[2]));
            if (!c)
                return -1;
            *o++ = c;
            p += 2;
        } else if (*p == '+' && plus) {
            *o++ = ' ';
        } else {
            *o++ = *p;
        }
    }
    *o = 0;
    return 0;
}

int tally_url_parse(char *target, const char **path, tally_query_arg **args, size_t *n_args,
                    size_t *args_cap)
{
    char *u = target;
    /* Absolute-form targets (through some proxies): skip scheme://authority. */
    if (strncasecmp(u, "http://", 7) == 0 || strncasecmp(u, "https://", 8) == 0) {
        char *slash = strchr(strstr(u, "//") + 2, '/');
        if (!slash)
            return -1;
        u = slash;
    }
    if (*u != '/')
        return -1;
    char *q = strchr(u, '?');
    if (q)
        *q++ = 0;
    char *hash = q ? strchr(q, '#') : strchr(u, '#');
    if (hash)
        *hash = 0;
    if (url_decode(u, 0) != 0)
        return -1;
    *path = u;
    *n_args = 0;
    if (!q || !*q)
        return 0;
    size_t max_args = 1;
    for (const char *p = q; *p; p++)
        max_args += *p == '&';
    if (max_args > *args_cap) {
        tally_query_arg *a = realloc(*args, max_args * sizeof *a);
        if (!a)
            return -1;
        *args = a;
        *args_cap = max_args;
    }
    char *save = NULL;
    for (char *piece = strtok_r(q, "&", &save); piece; piece = strtok_r(NULL, "&", &save)) {
        char *eq = strchr(piece, '=');
        const char *value = "";
        if (eq) {
            *eq = 0;
            value = eq + 1;
            if (url_decode(eq + 1, 1) != 0)
                return -1;
        }
        if (url_decode(piece, 1) != 0)
            return -1;
        (*args)[*n_args].key = piece;
        (*args)[*n_args].value = value;
        (*n_args)++;
    }
    return 0;
}

