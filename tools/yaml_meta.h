/*
 * yaml_meta.h — reads MLflow's meta.yaml files (a flat mapping of scalars,
 * written by PyYAML's safe_dump: quoted or plain scalars, long plain
 * scalars folded over lines, `null` for None) with libyaml.
 *
 * Only top-level scalar values are kept; nested sequences and mappings
 * (e.g. `tags: []`) are skipped. A plain `null`, `~` or empty value is kept
 * as absent (yaml_meta_get returns NULL), as PyYAML loads it as None.
 */
#ifndef TALLY_TOOLS_YAML_META_H
#define TALLY_TOOLS_YAML_META_H

#include <stddef.h>
#include <stdint.h>

typedef struct yaml_meta {
    size_t n;      /* entries */
    char **keys;   /* n keys */
    char **values; /* n values, NULL for null */
} yaml_meta;

/* Parses the file at path. 0, or -1 with a message in err (cap bytes)
 * naming the file, line and problem. */
int yaml_meta_load(const char *path, yaml_meta *out, char *err, size_t cap);
void yaml_meta_free(yaml_meta *m);
/* The value of key, NULL if absent or null. */
const char *yaml_meta_get(const yaml_meta *m, const char *key);
/* The value of key as an integer: 1 and *out, 0 when absent or null, -1 when
 * not an integer. */
int yaml_meta_int(const yaml_meta *m, const char *key, int64_t *out);

#endif /* TALLY_TOOLS_YAML_META_H */
