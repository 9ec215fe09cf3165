/*
 * registry_source.c — model version source checks (registry_source.h).
 */
#include "registry_source.h"
#include "http_url.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

int tally_registry_source_decode_once(const char *s, char *out)
{
    int changed = 0;
    size_t o = 0;
    for (size_t i = 0; s[i]; i++) {
        int h = -1, l = -1;
        if (s[i] == '%' && (h = tally_url_hexval((unsigned char)s[i + 1])) >= 0 &&
            (l = tally_url_hexval((unsigned char)s[i + 2])) >= 0 && (h || l)) {
            out[o++] = (char)(h * 16 + l);
            i += 2;
            changed = 1;
        } else {
            out[o++] = s[i];
        }
    }
    out[o] = 0;
    return changed;
}

static int segment_dotdot(const char *s)
{
    const char *seg = s;
    for (const char *p = s;; p++) {
        if (*p == '/' || *p == '\\' || *p == 0) {
            if (p - seg == 2 && seg[0] == '.' && seg[1] == '.')
                return 1;
            if (!*p)
                return 0;
            seg = p + 1;
        }
    }
}

int tally_registry_source_has_dotdot(const char *s)
{
    size_t n = strlen(s);
    char *a = malloc(n + 1), *b = malloc(n + 1);
    if (!a || !b) {
        free(a);
        free(b);
        return -1;
    }
    memcpy(a, s, n + 1);
    int bad = segment_dotdot(a);
    int round = 0;
    while (!bad && tally_registry_source_decode_once(a, b)) {
        char *t = a;
        a = b;
        b = t;
        bad = segment_dotdot(a);
        if (++round == TALLY_REGISTRY_SOURCE_MAX_DECODES && !bad) {
            /* Still changing: refuse rather than guess. */
            bad = tally_registry_source_decode_once(a, b);
            break;
        }
    }
    free(a);
    free(b);
    return bad;
}

/* Length of the URI scheme of s ("s3" in "s3://"), 0 when there is none. */
static size_t scheme_len(const char *s)
{
    size_t n = 0;
    if (!((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z')))
        return 0;
    while (s[n] && ((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= 'A' && s[n] <= 'Z') ||
                    (s[n] >= '0' && s[n] <= '9') || s[n] == '+' || s[n] == '-' || s[n] == '.'))
        n++;
    return s[n] == ':' ? n : 0;
}

const char *tally_registry_source_local_path(const char *s)
{
    size_t n = scheme_len(s);
    if (n == 0 || n == 1)
        return s;
    if (n == 4 && strncasecmp(s, "file", 4) == 0) {
        s += 5;
        if (s[0] == '/' && s[1] == '/') {
            const char *slash = strchr(s + 2, '/');
            s = slash ? slash : s + strlen(s);
        }
        return s;
    }
    return NULL;
}

int tally_registry_source_path_inside(const char *path, const char *dir)
{
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/')
        n--;
    return strncmp(path, dir, n) == 0 && (path[n] == 0 || path[n] == '/' || (n == 1 && dir[0] == '/'));
}
