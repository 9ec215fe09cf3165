/*
 * import_mlruns.c — `tally import mlruns DIR`: reads an MLflow file store
 * and writes it through import.h.
 *
 * The layout MLflow's FileStore writes (mlflow/store/tracking/file_store.py):
 *
 *   DIR/<exp id>/meta.yaml            experiment_id, name, artifact_location,
 *                                     lifecycle_stage, creation_time, last_update_time
 *   DIR/<exp id>/tags/<key>           experiment tag, the file holds the value
 *   DIR/<exp id>/<run id>/meta.yaml   run_id (run_uuid), experiment_id, run_name,
 *                                     user_id, status (1..5), start_time, end_time,
 *                                     lifecycle_stage, deleted_time, artifact_uri
 *   DIR/<exp id>/<run id>/metrics/<key>   one point a line: "timestamp value step"
 *                                     (older files: "timestamp value", step 0);
 *                                     value as Python prints floats (nan, inf, -inf)
 *   DIR/<exp id>/<run id>/params/<key>    the value, no newline
 *   DIR/<exp id>/<run id>/tags/<key>      the value
 *   DIR/<exp id>/<run id>/artifacts/      (the usual artifact_uri of a local store)
 *   DIR/.trash/<exp id>/...           deleted experiments, same layout
 *   DIR/models/...                    registered models (import_mlruns_models.c)
 *
 * Keys containing '/' are nested directories; the key is the relative path.
 * A deleted run stays in place with lifecycle_stage: deleted.
 *
 * Experiments are mapped first (one thread); runs are then imported in
 * parallel, one task per run (import_runner.c). A malformed line fails its
 * run with the file and line number; nothing of that run is marked done.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "import_sources.h"
#include "numparse.h"
#include "yaml_meta.h"

#define PATH_CAP 4096

/* snprintf into a path buffer; 0, or -1 (with a message) when it does not
 * fit. Through va_list so the compiler's truncation analysis stays out. */
int import_pathf(char *buf, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, cap, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= cap) {
        fprintf(stderr, "tally import: path too long: %.80s...\n", buf);
        return -1;
    }
    return 0;
}

/* ---- growing buffers ---------------------------------------------------- */

void import_kv_free(import_kv_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free((char *)l->v[i].key);
        free((char *)l->v[i].value);
    }
    free(l->v);
    memset(l, 0, sizeof *l);
}

/* Reads a whole file into *buf (grown as needed, NUL-terminated). Returns
 * its length, or -errno. */
static ssize_t read_file(const char *path, char **buf, size_t *cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    size_t want = (size_t)st.st_size + 1;
    if (want > *cap) {
        char *nb = realloc(*buf, want);
        if (!nb) {
            close(fd);
            return -ENOMEM;
        }
        *buf = nb;
        *cap = want;
    }
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t r = read(fd, *buf + got, (size_t)st.st_size - got);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            int e = -errno;
            close(fd);
            return e;
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    (*buf)[got] = 0;
    return (ssize_t)got;
}

int import_read_kv_dir(const char *dir, const char *prefix, import_kv_list *l)
{
    DIR *d = opendir(dir);
    if (!d)
        return errno == ENOENT ? 0 : (fprintf(stderr, "tally import: %s: %s\n", dir,
                                              strerror(errno)),
                                      1);
    struct dirent *de;
    int bad = 0;
    char path[PATH_CAP], key[PATH_CAP];
    while (!bad && (de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        if (import_pathf(path, sizeof path, "%s/%s", dir, de->d_name) ||
            import_pathf(key, sizeof key, "%s%s%s", prefix, *prefix ? "/" : "", de->d_name)) {
            bad = 1;
            break;
        }
        struct stat st;
        if (stat(path, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            bad = import_read_kv_dir(path, key, l);
            continue;
        }
        char *buf = NULL;
        size_t cap = 0;
        ssize_t n = read_file(path, &buf, &cap);
        if (n < 0) {
            fprintf(stderr, "tally import: %s: %s\n", path, strerror((int)-n));
            free(buf);
            bad = 1;
            break;
        }
        if (!buf && !(buf = calloc(1, 1))) {
            bad = 1;
            break;
        }
        if (l->n == l->cap) {
            size_t nc = l->cap ? l->cap * 2 : 16;
            tally_kv *nv = realloc(l->v, nc * sizeof *nv);
            if (!nv) {
                free(buf);
                bad = 1;
                break;
            }
            l->v = nv;
            l->cap = nc;
        }
        char *k = strdup(key);
        if (!k) {
            free(buf);
            bad = 1;
            break;
        }
        l->v[l->n].key = k;
        l->v[l->n].value = buf;
        l->n++;
    }
    closedir(d);
    return bad;
}

/* ---- metric files ------------------------------------------------------- */

/* A run's metric points, several series back to back, sent to the engine
 * as one batch (one WAL record) when the run ends or FLUSH_POINTS are
 * buffered: one hand-off to the engine's writer per run, not per series. */
#define FLUSH_POINTS (1u << 20)

typedef struct series_span {
    char *key;      /* malloc'd metric key */
    size_t key_len;
    size_t first;   /* index of its first point in the columns */
    size_t n;       /* its points */
} series_span;

typedef struct columns {
    int64_t *steps, *ts;
    double *values;
    size_t n, cap;       /* points buffered, capacity */
    series_span *spans;  /* series buffered */
    size_t n_spans, cap_spans;
    tally_series_batch *batches; /* cap_spans entries, for the engine call */
    char *text;          /* the file being parsed */
    size_t text_cap;
} columns;

static int columns_reserve(columns *c, size_t n)
{
    if (n <= c->cap)
        return 0;
    size_t nc = c->cap ? c->cap : 16384;
    while (nc < n)
        nc *= 2;
    int64_t *s = realloc(c->steps, nc * sizeof *s);
    if (!s)
        return -1;
    c->steps = s;
    int64_t *t = realloc(c->ts, nc * sizeof *t);
    if (!t)
        return -1;
    c->ts = t;
    double *v = realloc(c->values, nc * sizeof *v);
    if (!v)
        return -1;
    c->values = v;
    c->cap = nc;
    return 0;
}

static void columns_reset(columns *c)
{
    for (size_t i = 0; i < c->n_spans; i++)
        free(c->spans[i].key);
    c->n_spans = 0;
    c->n = 0;
}

static void columns_free(columns *c)
{
    columns_reset(c);
    free(c->steps);
    free(c->ts);
    free(c->values);
    free(c->spans);
    free(c->batches);
    free(c->text);
    memset(c, 0, sizeof *c);
}

/* Records points [first, c->n) as series key. 0 or -1 out of memory. */
static int columns_add_span(columns *c, const char *key, size_t key_len, size_t first)
{
    if (c->n_spans == c->cap_spans) {
        size_t nc = c->cap_spans ? c->cap_spans * 2 : 16;
        series_span *ns = realloc(c->spans, nc * sizeof *ns);
        if (!ns)
            return -1;
        c->spans = ns;
        tally_series_batch *nb = realloc(c->batches, nc * sizeof *nb);
        if (!nb)
            return -1;
        c->batches = nb;
        c->cap_spans = nc;
    }
    char *k = malloc(key_len + 1);
    if (!k)
        return -1;
    memcpy(k, key, key_len);
    k[key_len] = 0;
    c->spans[c->n_spans++] = (series_span){k, key_len, first, c->n - first};
    return 0;
}

/* Sends the buffered series of run_id to the engine as one batch. */
static int columns_flush(import_ctx *ic, const char *run_id, columns *c)
{
    size_t nb = 0;
    for (size_t i = 0; i < c->n_spans; i++) {
        const series_span *sp = &c->spans[i];
        if (!sp->n)
            continue;
        c->batches[nb++] = (tally_series_batch){run_id, strlen(run_id), sp->key, sp->key_len,
                                                (uint32_t)sp->n, c->steps + sp->first,
                                                c->ts + sp->first, c->values + sp->first};
    }
    int bad = nb ? import_append(ic, c->batches, nb, c->n) : 0;
    columns_reset(c);
    return bad;
}

/* A decimal int64 at *p (optional '-'), advancing *p. 0 or -1. */
static int parse_i64(const char **p, int64_t *out)
{
    const char *s = *p;
    int neg = 0;
    if (*s == '-' || *s == '+') {
        neg = *s == '-';
        s++;
    }
    if (*s < '0' || *s > '9')
        return -1;
    uint64_t v = 0;
    const char *start = s;
    while (*s >= '0' && *s <= '9') {
        v = v * 10 + (uint64_t)(*s - '0');
        s++;
    }
    if (s - start > 19)
        return -1;
    /* Python writes int(step); a float-looking step ("3.0") is not MLflow's */
    *out = neg ? -(int64_t)v : (int64_t)v;
    *p = s;
    return 0;
}

/* Parses a metrics file: "ts value [step]" per line. 0, or the 1-based line
 * number of the first bad line (-1 out of memory). */
static long parse_metric_text(columns *c, const char *text, size_t len)
{
    const char *p = text, *end = text + len;
    long line = 0;
    while (p < end) {
        line++;
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol)
            eol = end;
        const char *q = p;
        while (q < eol && (*q == ' ' || *q == '\r' || *q == '\t'))
            q++;
        if (q == eol) { /* blank line */
            p = eol + 1;
            continue;
        }
        if (c->n == c->cap && columns_reserve(c, c->n + 1) != 0)
            return -1;
        int64_t ts, step = 0;
        if (parse_i64(&q, &ts) != 0 || *q != ' ')
            return line;
        while (*q == ' ')
            q++;
        char *vend;
        double v = num_parse(q, &vend);
        if (vend == q || vend > eol)
            return line;
        q = vend;
        while (q < eol && (*q == ' ' || *q == '\t'))
            q++;
        if (q < eol && *q != '\r') {
            if (parse_i64(&q, &step) != 0)
                return line;
            while (q < eol && (*q == ' ' || *q == '\r' || *q == '\t'))
                q++;
            if (q != eol)
                return line;
        }
        c->ts[c->n] = ts;
        c->values[c->n] = v;
        c->steps[c->n] = step;
        c->n++;
        p = eol + 1;
    }
    return 0;
}

/* Imports every metric file under dir (keys relative to the top). */
static int import_metric_dir(import_ctx *ic, const char *run_id, const char *dir,
                             const char *prefix, columns *cols)
{
    DIR *d = opendir(dir);
    if (!d)
        return errno == ENOENT ? 0 : (fprintf(stderr, "tally import: %s: %s\n", dir,
                                              strerror(errno)),
                                      1);
    struct dirent *de;
    int bad = 0;
    char path[PATH_CAP], key[PATH_CAP];
    while (!bad && (de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        if (import_pathf(path, sizeof path, "%s/%s", dir, de->d_name) ||
            import_pathf(key, sizeof key, "%s%s%s", prefix, *prefix ? "/" : "", de->d_name)) {
            bad = 1;
            break;
        }
        size_t kl = strlen(key);
        struct stat st;
        if (stat(path, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            bad = import_metric_dir(ic, run_id, path, key, cols);
            continue;
        }
        ssize_t n = read_file(path, &cols->text, &cols->text_cap);
        if (n < 0) {
            fprintf(stderr, "tally import: %s: %s\n", path, strerror((int)-n));
            bad = 1;
            break;
        }
        size_t first = cols->n;
        long r = parse_metric_text(cols, cols->text, (size_t)n);
        if (r == 0 && columns_add_span(cols, key, kl, first) != 0)
            r = -1;
        if (r != 0) {
            if (r < 0)
                fprintf(stderr, "tally import: out of memory reading %s\n", path);
            else
                fprintf(stderr, "tally import: %s:%ld: not \"timestamp value step\"\n", path, r);
            bad = 1;
            break;
        }
        if (cols->n >= FLUSH_POINTS)
            bad = columns_flush(ic, run_id, cols);
    }
    closedir(d);
    return bad;
}

/* ---- experiments and runs ---------------------------------------------- */

typedef struct run_task {
    char *dir;          /* the run's directory */
    int64_t experiment; /* Tally experiment id */
} run_task;

typedef struct walk {
    run_task *runs;
    size_t n, cap;
} walk;

static int lifecycle_of(const char *s)
{
    return s && strcmp(s, "deleted") == 0 ? TALLY_LIFECYCLE_DELETED : TALLY_LIFECYCLE_ACTIVE;
}

/* Maps one experiment directory and lists its runs into w. */
static int import_experiment_dir(import_ctx *c, const char *exp_dir, const char *dir_name,
                                 int in_trash, walk *w)
{
    char path[PATH_CAP], err[1024];
    yaml_meta m;
    if (import_pathf(path, sizeof path, "%s/meta.yaml", exp_dir))
        return 1;
    if (yaml_meta_load(path, &m, err, sizeof err) != 0) {
        fprintf(stderr, "tally import: %s\n", err);
        return 1;
    }
    import_kv_list tags = {0};
    int bad = import_pathf(path, sizeof path, "%s/tags", exp_dir) ||
              import_read_kv_dir(path, "", &tags);
    const char *src_id = yaml_meta_get(&m, "experiment_id");
    if (!src_id)
        src_id = dir_name;
    const char *loc = yaml_meta_get(&m, "artifact_location");
    char local[PATH_CAP];
    tally_import_experiment e = {
        .source = c->source,
        .source_id = src_id,
        .name = yaml_meta_get(&m, "name"),
        .artifact_location = loc && !import_local_path(loc, local, sizeof local) ? loc : NULL,
        .lifecycle = in_trash ? TALLY_LIFECYCLE_DELETED
                              : (tally_lifecycle)lifecycle_of(yaml_meta_get(&m, "lifecycle_stage")),
        .tags = tags.v,
        .n_tags = tags.n,
    };
    int64_t t;
    if (yaml_meta_int(&m, "creation_time", &t) == 1)
        e.creation_time_ms = t;
    if (yaml_meta_int(&m, "last_update_time", &t) == 1)
        e.last_update_time_ms = t;
    int64_t id = 0;
    if (!bad && import_experiment(c, &e, &id, err, sizeof err) != 0) {
        fprintf(stderr, "tally import: experiment %s (%s): %s\n", src_id, exp_dir, err);
        bad = 1;
    }
    import_kv_free(&tags);
    yaml_meta_free(&m);
    if (bad)
        return 1;
    atomic_fetch_add(&c->n_experiments, 1);

    DIR *d = opendir(exp_dir);
    if (!d) {
        fprintf(stderr, "tally import: %s: %s\n", exp_dir, strerror(errno));
        return 1;
    }
    struct dirent *de;
    while (!bad && (de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.' || strcmp(de->d_name, "tags") == 0)
            continue;
        struct stat st;
        if (import_pathf(path, sizeof path, "%s/%s/meta.yaml", exp_dir, de->d_name)) {
            bad = 1;
            break;
        }
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
            continue; /* not a run (datasets/, traces/, ...) */
        if (w->n == w->cap) {
            size_t nc = w->cap ? w->cap * 2 : 256;
            run_task *nr = realloc(w->runs, nc * sizeof *nr);
            if (!nr) {
                bad = 1;
                break;
            }
            w->runs = nr;
            w->cap = nc;
        }
        /* shorter than above: fits */
        (void)import_pathf(path, sizeof path, "%s/%s", exp_dir, de->d_name);
        if (!(w->runs[w->n].dir = strdup(path))) {
            bad = 1;
            break;
        }
        w->runs[w->n].experiment = id;
        w->n++;
    }
    closedir(d);
    if (bad)
        fprintf(stderr, "tally import: out of memory listing %s\n", exp_dir);
    return bad;
}

static int status_of(const char *s)
{
    if (!s)
        return TALLY_RUN_RUNNING;
    char *end;
    long v = strtol(s, &end, 10);
    if (end != s && !*end)
        return tally_run_status_name((int)v) ? (int)v : 0;
    return tally_run_status_parse(s);
}

/* Per-thread scratch, found by thread through a key. */
static pthread_key_t cols_key;
static pthread_once_t cols_once = PTHREAD_ONCE_INIT;
static void cols_destroy(void *p)
{
    columns_free(p);
    free(p);
}
static void cols_make_key(void)
{
    pthread_key_create(&cols_key, cols_destroy);
}

static columns *thread_columns(void)
{
    pthread_once(&cols_once, cols_make_key);
    columns *c = pthread_getspecific(cols_key);
    if (!c && (c = calloc(1, sizeof *c)) != NULL)
        pthread_setspecific(cols_key, c);
    return c;
}

static int import_run_dir(import_ctx *c, size_t i, void *arg)
{
    walk *w = arg;
    const run_task *t = &w->runs[i];
    char path[PATH_CAP], err[1024], uri[PATH_CAP];
    atomic_fetch_add(&c->n_runs_seen, 1);
    yaml_meta m;
    if (import_pathf(path, sizeof path, "%s/meta.yaml", t->dir))
        return 1;
    if (yaml_meta_load(path, &m, err, sizeof err) != 0) {
        fprintf(stderr, "tally import: %s\n", err);
        return 1;
    }
    const char *base = strrchr(t->dir, '/');
    base = base ? base + 1 : t->dir;
    const char *src_id = yaml_meta_get(&m, "run_id");
    if (!src_id)
        src_id = yaml_meta_get(&m, "run_uuid");
    if (!src_id)
        src_id = base;
    import_kv_list params = {0}, tags = {0};
    int bad = import_pathf(path, sizeof path, "%s/params", t->dir) ||
              import_read_kv_dir(path, "", &params);
    bad = bad || import_pathf(path, sizeof path, "%s/tags", t->dir) ||
          import_read_kv_dir(path, "", &tags);

    tally_import_run r = {
        .source_run_id = src_id,
        .experiment_id = t->experiment,
        .run_name = yaml_meta_get(&m, "run_name"),
        .user_id = yaml_meta_get(&m, "user_id"),
        .status = status_of(yaml_meta_get(&m, "status")),
        .lifecycle = (tally_lifecycle)lifecycle_of(yaml_meta_get(&m, "lifecycle_stage")),
        .params = params.v,
        .n_params = params.n,
        .tags = tags.v,
        .n_tags = tags.n,
    };
    int64_t v;
    if (yaml_meta_int(&m, "start_time", &v) == 1)
        r.start_time_ms = v;
    if (yaml_meta_int(&m, "end_time", &v) == 1) {
        r.has_end_time = 1;
        r.end_time_ms = v;
    }
    if (yaml_meta_int(&m, "deleted_time", &v) == 1) {
        r.has_deleted_time = 1;
        r.deleted_time_ms = v;
    }
    /* artifacts: a local source is copied into Tally's root; a remote URI kept */
    char art_src[PATH_CAP] = "";
    const char *src_uri = yaml_meta_get(&m, "artifact_uri");
    struct stat st;
    if (src_uri && !import_local_path(src_uri, art_src, sizeof art_src))
        r.artifact_uri = src_uri;
    else if (!art_src[0] || stat(art_src, &st) != 0)
        snprintf(art_src, sizeof art_src, "%s/artifacts", t->dir); /* the store was moved */
    if (!r.status) {
        fprintf(stderr, "tally import: %s/meta.yaml: invalid status\n", t->dir);
        bad = 1;
    }

    tally_import_state state = TALLY_IMPORT_DONE;
    char run_id[TALLY_RUN_ID_LEN + 1];
    if (!bad && import_run(c, &r, &state, run_id, uri, sizeof uri, err, sizeof err) != 0) {
        fprintf(stderr, "tally import: run %s (%s): %s\n", src_id, t->dir, err);
        bad = 1;
    }
    if (!bad && state == TALLY_IMPORT_DONE)
        atomic_fetch_add(&c->n_runs_skipped, 1);
    if (!bad && state != TALLY_IMPORT_DONE) {
        columns *cols = thread_columns();
        if (cols)
            columns_reset(cols); /* a failed run may have left some behind */
        bad = !cols || import_pathf(path, sizeof path, "%s/metrics", t->dir) ||
              import_metric_dir(c, run_id, path, "", cols) || columns_flush(c, run_id, cols);
        if (!bad && !r.artifact_uri)
            bad = import_copy_artifacts(c, art_src, uri);
        if (!bad)
            bad = import_run_finish(c, src_id);
        if (!bad)
            atomic_fetch_add(&c->n_runs_imported, 1);
    }
    import_kv_free(&params);
    import_kv_free(&tags);
    yaml_meta_free(&m);
    return bad;
}

int import_each_meta_dir(import_ctx *c, const char *dir, const char *skip, int missing_ok,
                         import_dir_fn fn, void *arg)
{
    DIR *d = opendir(dir);
    if (!d) {
        if (missing_ok && errno == ENOENT)
            return 0;
        fprintf(stderr, "tally import: %s: %s\n", dir, strerror(errno));
        return 1;
    }
    struct dirent *de;
    int bad = 0;
    char path[PATH_CAP];
    while (!bad && (de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.' || (skip && strcmp(de->d_name, skip) == 0))
            continue;
        struct stat st;
        if (import_pathf(path, sizeof path, "%s/%s/meta.yaml", dir, de->d_name)) {
            bad = 1;
            break;
        }
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        (void)import_pathf(path, sizeof path, "%s/%s", dir, de->d_name);
        bad = fn(c, path, de->d_name, arg);
    }
    closedir(d);
    return bad;
}

typedef struct exp_walk {
    walk *w;
    int in_trash;
} exp_walk;

static int experiment_dir_fn(import_ctx *c, const char *path, const char *name, void *arg)
{
    exp_walk *e = arg;
    return import_experiment_dir(c, path, name, e->in_trash, e->w);
}

/* Lists DIR's experiment directories (those with a meta.yaml). */
static int walk_experiments(import_ctx *c, const char *dir, int in_trash, walk *w)
{
    exp_walk e = {w, in_trash};
    return import_each_meta_dir(c, dir, in_trash ? NULL : "models", in_trash, experiment_dir_fn,
                                &e);
}

int import_mlruns(import_ctx *c, const char *root, int quiet)
{
    struct stat st;
    if (stat(root, &st) != 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "tally import: %s is not a directory\n", root);
        return 1;
    }
    walk w = {0};
    char trash[PATH_CAP];
    snprintf(trash, sizeof trash, "%s/.trash", root);
    int bad = walk_experiments(c, root, 0, &w) || walk_experiments(c, trash, 1, &w);
    if (!bad && w.n == 0 && atomic_load(&c->n_experiments) == 0) {
        fprintf(stderr, "tally import: %s holds no MLflow experiment (no <id>/meta.yaml)\n",
                root);
        bad = 1;
    }
    if (!bad)
        bad = import_run_tasks(c, w.n, import_run_dir, &w, "import mlruns", quiet);
    if (!bad) /* after the runs: versions refer to them (store_registry_import.h (4)) */
        bad = import_mlruns_models(c, root);
    for (size_t i = 0; i < w.n; i++)
        free(w.runs[i].dir);
    free(w.runs);
    return bad;
}
