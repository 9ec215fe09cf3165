/*
 * import_mlruns_models.c — the model registry of an MLflow file store, as
 * MLflow's registry FileStore writes it (mlflow/store/model_registry/
 * file_store.py), read into import_model calls (import.h):
 *
 *   DIR/models/<name>/meta.yaml          name, creation_timestamp,
 *                                        last_updated_timestamp, description
 *   DIR/models/<name>/tags/<key>         model tag, the file holds the value
 *   DIR/models/<name>/aliases/<alias>    the file holds the version number
 *   DIR/models/<name>/version-<n>/meta.yaml   version, creation_timestamp,
 *                                        last_updated_timestamp, description,
 *                                        current_stage (Deleted_Internal once
 *                                        deleted: the directory stays), source,
 *                                        run_id, run_link, status, storage_location
 *   DIR/models/<name>/version-<n>/tags/<key>  version tag
 *
 * Tag keys containing '/' are nested directories, as for runs. A model is
 * read whole and written in one call, so it is imported entirely or not at
 * all; a malformed file fails the import naming the file.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "import_sources.h"
#include "yaml_meta.h"

#define PATH_CAP 4096

/* One version being read: its meta.yaml (which owns the strings) and tags. */
typedef struct version_read {
    yaml_meta meta;
    import_kv_list tags;
} version_read;

typedef struct model_read {
    yaml_meta meta;
    import_kv_list tags, alias_files;
    version_read *vr;
    tally_import_version *versions;
    size_t n, cap;
    tally_model_alias *aliases;
} model_read;

static void model_read_free(model_read *m)
{
    for (size_t i = 0; i < m->n; i++) {
        yaml_meta_free(&m->vr[i].meta);
        import_kv_free(&m->vr[i].tags);
    }
    free(m->vr);
    free(m->versions);
    free(m->aliases);
    yaml_meta_free(&m->meta);
    import_kv_free(&m->tags);
    import_kv_free(&m->alias_files);
}

/* "None", "Staging", ... or "Deleted_Internal". 0, or -1 unknown. */
static int stage_of(const char *s, tally_stage *out)
{
    if (!s) {
        *out = TALLY_STAGE_NONE;
        return 0;
    }
    if (strcmp(s, tally_stage_name(TALLY_STAGE_DELETED)) == 0) {
        *out = TALLY_STAGE_DELETED;
        return 0;
    }
    return tally_stage_parse(s, out);
}

static int read_version(model_read *m, const char *dir, const char *path_meta)
{
    if (m->n == m->cap) {
        size_t nc = m->cap ? m->cap * 2 : 8;
        version_read *nv = realloc(m->vr, nc * sizeof *nv);
        if (nv)
            m->vr = nv;
        tally_import_version *nt = nv ? realloc(m->versions, nc * sizeof *nt) : NULL;
        if (!nt) {
            fprintf(stderr, "tally import: out of memory\n");
            return 1;
        }
        m->versions = nt;
        m->cap = nc;
    }
    version_read *r = &m->vr[m->n];
    memset(r, 0, sizeof *r);
    char err[1024], path[PATH_CAP];
    if (yaml_meta_load(path_meta, &r->meta, err, sizeof err) != 0) {
        fprintf(stderr, "tally import: %s\n", err);
        return 1;
    }
    m->n++; /* owned from here: freed with the model */
    tally_import_version *v = &m->versions[m->n - 1];
    memset(v, 0, sizeof *v);
    const yaml_meta *y = &r->meta;
    const char *stage = yaml_meta_get(y, "current_stage");
    if (yaml_meta_int(y, "version", &v->version) != 1 || stage_of(stage, &v->stage) != 0) {
        fprintf(stderr, "tally import: %s: %s\n", path_meta,
                stage_of(stage, &v->stage) ? "unknown current_stage" : "no integer version");
        return 1;
    }
    int64_t t;
    if (yaml_meta_int(y, "creation_timestamp", &t) == 1)
        v->creation_time_ms = t;
    if (yaml_meta_int(y, "last_updated_timestamp", &t) == 1)
        v->last_updated_time_ms = t;
    v->description = yaml_meta_get(y, "description");
    v->source = yaml_meta_get(y, "source");
    v->run_id = yaml_meta_get(y, "run_id");
    v->run_link = yaml_meta_get(y, "run_link");
    v->status = yaml_meta_get(y, "status");
    const char *loc = yaml_meta_get(y, "storage_location");
    if (loc && v->source && strncmp(v->source, "models:/", 8) == 0)
        v->storage_location = loc; /* Tally keeps it for models:/ sources only */
    if (import_pathf(path, sizeof path, "%s/tags", dir) || import_read_kv_dir(path, "", &r->tags))
        return 1;
    v->tags = r->tags.v;
    v->n_tags = r->tags.n;
    return 0;
}

static int read_model(import_ctx *c, const char *dir, const char *dir_name)
{
    model_read m = {0};
    char path[PATH_CAP], err[1024];
    int bad = import_pathf(path, sizeof path, "%s/meta.yaml", dir);
    if (!bad && yaml_meta_load(path, &m.meta, err, sizeof err) != 0) {
        fprintf(stderr, "tally import: %s\n", err);
        return 1;
    }
    tally_import_model im = {0};
    im.name = yaml_meta_get(&m.meta, "name");
    if (!im.name)
        im.name = dir_name;
    int64_t t;
    if (yaml_meta_int(&m.meta, "creation_timestamp", &t) == 1)
        im.creation_time_ms = t;
    if (yaml_meta_int(&m.meta, "last_updated_timestamp", &t) == 1)
        im.last_updated_time_ms = t;
    im.description = yaml_meta_get(&m.meta, "description");
    bad = bad || import_pathf(path, sizeof path, "%s/tags", dir) ||
          import_read_kv_dir(path, "", &m.tags) ||
          import_pathf(path, sizeof path, "%s/aliases", dir) ||
          import_read_kv_dir(path, "", &m.alias_files);
    DIR *d = bad ? NULL : opendir(dir);
    if (!bad && !d) {
        fprintf(stderr, "tally import: %s: %s\n", dir, strerror(errno));
        bad = 1;
    }
    struct dirent *de;
    char vdir[PATH_CAP];
    while (d && !bad && (de = readdir(d)) != NULL) {
        struct stat st;
        if (strncmp(de->d_name, "version-", 8) != 0)
            continue;
        if (import_pathf(vdir, sizeof vdir, "%s/%s", dir, de->d_name) ||
            import_pathf(path, sizeof path, "%s/meta.yaml", vdir)) {
            bad = 1;
            break;
        }
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode))
            bad = read_version(&m, vdir, path);
    }
    if (d)
        closedir(d);
    if (!bad && m.alias_files.n &&
        !(m.aliases = calloc(m.alias_files.n, sizeof *m.aliases))) {
        fprintf(stderr, "tally import: out of memory\n");
        bad = 1;
    }
    for (size_t i = 0; !bad && i < m.alias_files.n; i++) {
        const tally_kv *kv = &m.alias_files.v[i];
        char *end;
        long long v = strtoll(kv->value, &end, 10);
        while (*end == '\n' || *end == ' ')
            end++;
        if (end == kv->value || *end) {
            fprintf(stderr, "tally import: %s/aliases/%s: not a version number\n", dir,
                    kv->key);
            bad = 1;
        }
        m.aliases[i] = (tally_model_alias){kv->key, v};
    }
    if (!bad) {
        im.tags = m.tags.v;
        im.n_tags = m.tags.n;
        im.versions = m.versions;
        im.n_versions = m.n;
        im.aliases = m.aliases;
        im.n_aliases = m.alias_files.n;
        bad = import_model(c, &im);
    }
    model_read_free(&m);
    return bad;
}

static int model_dir_fn(import_ctx *c, const char *path, const char *name, void *arg)
{
    (void)arg;
    return read_model(c, path, name);
}

int import_mlruns_models(import_ctx *c, const char *root)
{
    char dir[PATH_CAP];
    if (import_pathf(dir, sizeof dir, "%s/models", root))
        return 1;
    return import_each_meta_dir(c, dir, NULL, 1, model_dir_fn, NULL); /* none: no registry */
}
