/*
 * yaml_meta.c — MLflow meta.yaml reading over libyaml's event parser (see
 * yaml_meta.h). Depth is tracked so only the top-level mapping's scalar
 * pairs are kept.
 */
#include "yaml_meta.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

static int push(yaml_meta *m, size_t *cap, const char *k, const char *v)
{
    if (m->n == *cap) {
        size_t nc = *cap ? *cap * 2 : 16;
        char **nk = realloc(m->keys, nc * sizeof *nk);
        if (!nk)
            return -1;
        m->keys = nk;
        char **nv = realloc(m->values, nc * sizeof *nv);
        if (!nv)
            return -1;
        m->values = nv;
        *cap = nc;
    }
    m->keys[m->n] = strdup(k);
    m->values[m->n] = v ? strdup(v) : NULL;
    if (!m->keys[m->n] || (v && !m->values[m->n])) {
        free(m->keys[m->n]);
        free(m->values[m->n]);
        return -1;
    }
    m->n++;
    return 0;
}

int yaml_meta_load(const char *path, yaml_meta *out, char *err, size_t cap)
{
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, cap, "%s: %s", path, strerror(errno));
        return -1;
    }
    yaml_parser_t p;
    if (!yaml_parser_initialize(&p)) {
        fclose(f);
        snprintf(err, cap, "%s: out of memory", path);
        return -1;
    }
    yaml_parser_set_input_file(&p, f);
    size_t mcap = 0;
    int depth = 0, rc = 0, done = 0, saw_map = 0;
    char *key = NULL; /* a top-level key waiting for its value */
    while (!done) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&p, &ev)) {
            snprintf(err, cap, "%s:%zu: %s", path, p.problem_mark.line + 1,
                     p.problem ? p.problem : "invalid YAML");
            rc = -1;
            break;
        }
        switch (ev.type) {
        case YAML_MAPPING_START_EVENT:
        case YAML_SEQUENCE_START_EVENT:
            if (depth == 0 && ev.type == YAML_MAPPING_START_EVENT)
                saw_map = 1;
            depth++;
            break;
        case YAML_MAPPING_END_EVENT:
        case YAML_SEQUENCE_END_EVENT:
            depth--;
            if (depth == 1) { /* a nested value ended: its key is done */
                free(key);
                key = NULL;
            }
            break;
        case YAML_SCALAR_EVENT:
            if (depth == 1) {
                const char *v = (const char *)ev.data.scalar.value;
                if (!key) {
                    key = strdup(v);
                    if (!key)
                        rc = -1;
                } else {
                    int is_null = ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
                                  (strcmp(v, "null") == 0 || strcmp(v, "~") == 0 ||
                                   strcmp(v, "Null") == 0 || strcmp(v, "NULL") == 0 || !*v);
                    if (push(out, &mcap, key, is_null ? NULL : v) != 0)
                        rc = -1;
                    free(key);
                    key = NULL;
                }
                if (rc)
                    snprintf(err, cap, "%s: out of memory", path);
            }
            break;
        case YAML_STREAM_END_EVENT:
            done = 1;
            break;
        case YAML_NO_EVENT:
        case YAML_STREAM_START_EVENT:
        case YAML_DOCUMENT_START_EVENT:
        case YAML_DOCUMENT_END_EVENT:
        case YAML_ALIAS_EVENT:
            break;
        }
        yaml_event_delete(&ev);
        if (rc)
            break;
    }
    free(key);
    yaml_parser_delete(&p);
    fclose(f);
    if (rc == 0 && !saw_map) {
        snprintf(err, cap, "%s: not a YAML mapping", path);
        rc = -1;
    }
    if (rc)
        yaml_meta_free(out);
    return rc;
}

void yaml_meta_free(yaml_meta *m)
{
    for (size_t i = 0; i < m->n; i++) {
        free(m->keys[i]);
        free(m->values[i]);
    }
    free(m->keys);
    free(m->values);
    memset(m, 0, sizeof *m);
}

const char *yaml_meta_get(const yaml_meta *m, const char *key)
{
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->keys[i], key) == 0)
            return m->values[i];
    return NULL;
}

int yaml_meta_int(const yaml_meta *m, const char *key, int64_t *out)
{
    const char *v = yaml_meta_get(m, key);
    if (!v)
        return 0;
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (errno || end == v || *end)
        return -1;
    *out = x;
    return 1;
}
