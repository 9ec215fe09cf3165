/*
 * artifact_path.c — safe artifact paths (see artifact_path.h).
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "artifact_path.h"
#include "http_url.h"

/* One round of %XX decoding in place; returns 1 if anything changed. A
 * decoded NUL is kept as a NUL byte inside the returned length. */
static int url_decode_once(char *s, size_t *len)
{
    size_t r = 0, w = 0, n = *len;
    int changed = 0;
    while (r < n) {
        if (s[r] == '%' && r + 2 < n && tally_url_hexval((unsigned char)s[r + 1]) >= 0 &&
            tally_url_hexval((unsigned char)s[r + 2]) >= 0) {
            s[w++] = (char)(tally_url_hexval((unsigned char)s[r + 1]) * 16 +
                            tally_url_hexval((unsigned char)s[r + 2]));
            r += 3;
            changed = 1;
        } else {
            s[w++] = s[r++];
        }
    }
    *len = w;
    return changed;
}

int tally_artifact_path_check(const char *rel, char *out, size_t cap)
{
    if (!rel)
        rel = "";
    size_t len = strlen(rel);
    if (len >= 4096 || cap == 0)
        return -1;
    char buf[4096];
    memcpy(buf, rel, len);
    for (int round = 0; round < 8 && url_decode_once(buf, &len); round++)
        ;
    if (memchr(buf, '%', len) && url_decode_once(buf, &len))
        return -1; /* still encoded after 8 rounds: refuse rather than guess */
    if (memchr(buf, 0, len) || memchr(buf, '#', len) || memchr(buf, '\\', len))
        return -1;
    if (len > 0 && buf[0] == '/')
        return -1;
    if (len >= 2 && buf[1] == ':' && ((buf[0] | 32) >= 'a' && (buf[0] | 32) <= 'z'))
        return -1;
    buf[len] = 0;
    /* Split into segments: refuse "..", drop "." and empty ones. */
    size_t w = 0;
    char *save = NULL;
    for (char *seg = strtok_r(buf, "/", &save); seg; seg = strtok_r(NULL, "/", &save)) {
        if (strcmp(seg, "..") == 0)
            return -1;
        if (strcmp(seg, ".") == 0)
            continue;
        size_t n = strlen(seg);
        if (w + n + 2 > cap)
            return -1;
        if (w)
            out[w++] = '/';
        memcpy(out + w, seg, n);
        w += n;
    }
    out[w] = 0;
    /* "./C:/x" normalises to "C:/x": refuse the drive form here too, so the
     * normal form passes the same check again (idempotence, fuzz_artifact_path). */
    if (w >= 2 && out[1] == ':' && ((out[0] | 32) >= 'a' && (out[0] | 32) <= 'z'))
        return -1;
    return 0;
}

int tally_artifact_local_path(const char *root, const char *uri, const char *rel, char *out,
                              size_t cap)
{
    static const char scheme[] = "mlflow-artifacts:";
    if (!uri || strncmp(uri, scheme, sizeof scheme - 1) != 0)
        return 1;
    const char *p = uri + sizeof scheme - 1;
    if (p[0] == '/' && p[1] == '/') {
        /* mlflow-artifacts://host:port/path: the path part is what counts. */
        p = strchr(p + 2, '/');
        if (!p)
            p = "";
    }
    char base[4096], tail[4096];
    if (tally_artifact_path_check(p[0] == '/' ? p + 1 : p, base, sizeof base) != 0 ||
        tally_artifact_path_check(rel, tail, sizeof tail) != 0)
        return -1;
    int n = snprintf(out, cap, "%s%s%s%s%s", root, base[0] ? "/" : "", base, tail[0] ? "/" : "",
                     tail);
    if (n < 0 || (size_t)n >= cap)
        return -1;
    return tally_artifact_path_inside(root, out) == 0 ? 0 : -1;
}

int tally_artifact_uri_rel(const char *uri, const char *rel, char *out, size_t cap)
{
    static const char scheme[] = "mlflow-artifacts:";
    if (!uri || strncmp(uri, scheme, sizeof scheme - 1) != 0)
        return 1;
    const char *p = uri + sizeof scheme - 1;
    if (p[0] == '/' && p[1] == '/') {
        p = strchr(p + 2, '/');
        if (!p)
            p = "";
    }
    char base[4096], tail[4096];
    if (tally_artifact_path_check(p[0] == '/' ? p + 1 : p, base, sizeof base) != 0 ||
        tally_artifact_path_check(rel, tail, sizeof tail) != 0)
        return -1;
    int n = snprintf(out, cap, "%s%s%s", base, base[0] && tail[0] ? "/" : "", tail);
    return n < 0 || (size_t)n >= cap ? -1 : 0;
}

int tally_artifact_path_inside(const char *root, const char *path)
{
    char real_root[PATH_MAX], probe[PATH_MAX], real[PATH_MAX];
    if (!realpath(root, real_root))
        return errno == ENOENT ? 0 : -1; /* no root yet: nothing below it can exist */
    size_t n = strlen(path);
    if (n >= sizeof probe)
        return -1;
    memcpy(probe, path, n + 1);
    /* Walk up to the deepest existing ancestor and canonicalise it. */
    for (;;) {
        if (realpath(probe, real))
            break;
        if (errno != ENOENT && errno != ENOTDIR)
            return -1;
        char *slash = strrchr(probe, '/');
        if (!slash || slash == probe)
            return -1;
        *slash = 0;
    }
    size_t rl = strlen(real_root);
    if (strncmp(real, real_root, rl) != 0 || (real[rl] != 0 && real[rl] != '/'))
        return -1;
    return 0;
}
