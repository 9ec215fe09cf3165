/*
 * cmd_backup.c — `tally backup DEST --data SRC`: a consistent copy of a data
 * directory while a server keeps writing to it. Restoring is starting a
 * server on the copy (`tally serve --data DEST`).
 *
 * Order and why it is consistent:
 *
 *  1. metrics/ (the engine, which a live server holds locked): copy
 *     directory.tck (the checkpoint C, replaced only by an atomic rename, so
 *     it is read whole), then every segment file (append-only: the bytes up
 *     to the lengths C records are final), then every WAL file in number
 *     order (a torn tail of the file being written is cut by recovery at the
 *     first record whose checksum fails), then read directory.tck again. If
 *     it changed, a checkpoint ran meanwhile and may have deleted WAL files C
 *     still needs: start the engine copy over (up to 10 times). Opening the
 *     copy is an ordinary recovery: segments are cut back to C's lengths,
 *     segments C does not name are dropped, the WAL after C is replayed —
 *     every batch acknowledged before the copy started is in it, whole, and
 *     no batch is in it in part.
 *  2. meta.db, after the engine: SQLite's online backup API copies one
 *     consistent snapshot while the server reads and writes. Taken after
 *     the engine, every run that owns a series in the engine copy is in it
 *     (runs are created before their points and never hard-deleted by the
 *     server).
 *  3. webhook-secret.key (the key sealing webhook secrets in meta.db), mode
 *     0600, when the source has one.
 *  4. artifacts/: copied file by file; uploads in progress (".tally-" names)
 *     are skipped. An artifact being replaced during the copy may be the old
 *     or the new file.
 *
 * DEST must not exist or be empty. Exit 0 when the copy is complete, 1 on
 * failure (DEST then holds a partial copy and says so), 2 usage error.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "commands.h"
#include "fsutil.h"
#include "progress.h"

static const char usage_text[] =
    "usage: tally backup DEST --data SRC [--quiet]\n"
    "\n"
    "Copies the data directory SRC to DEST (a new or empty directory) while a\n"
    "server may keep running on SRC: the metric engine (checkpoint, segments,\n"
    "WAL), meta.db through SQLite's online backup, the webhook secret key and the\n"
    "artifacts. Restore by\n"
    "starting a server on the copy: tally serve --data DEST\n"
    "\n"
    "Exit status: 0 complete, 1 failed, 2 usage error.\n";

#define MAX_ATTEMPTS 10

/* Reads a whole small file; malloc'd, *n its length. NULL if missing. */
static char *slurp(const char *path, size_t *n)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    struct stat st;
    char *b = NULL;
    if (fstat(fd, &st) == 0 && (b = malloc((size_t)st.st_size + 1)) != NULL) {
        ssize_t r = read(fd, b, (size_t)st.st_size);
        if (r != st.st_size) {
            free(b);
            b = NULL;
        } else {
            *n = (size_t)r;
        }
    }
    close(fd);
    return b;
}

static int write_all(const char *path, const char *data, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    size_t off = 0;
    while (off < n) {
        ssize_t w = write(fd, data + off, n - off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            int e = -errno;
            close(fd);
            return e;
        }
        off += (size_t)w;
    }
    int rc = fsync(fd) == 0 ? 0 : -errno;
    close(fd);
    return rc;
}

typedef struct name_list {
    char **v;
    size_t n;
} name_list;

static int cmp_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names in dir ending in suffix, sorted (numbers are fixed-width hex). */
static int list_names(const char *dir, const char *suffix, name_list *out)
{
    out->v = NULL;
    out->n = 0;
    DIR *d = opendir(dir);
    if (!d)
        return errno == ENOENT ? 0 : -errno;
    struct dirent *de;
    size_t cap = 0, sl = strlen(suffix);
    while ((de = readdir(d)) != NULL) {
        size_t l = strlen(de->d_name);
        if (l < sl || strcmp(de->d_name + l - sl, suffix) != 0)
            continue;
        if (out->n == cap) {
            cap = cap ? cap * 2 : 16;
            char **nv = realloc(out->v, cap * sizeof *nv);
            if (!nv) {
                closedir(d);
                return -ENOMEM;
            }
            out->v = nv;
        }
        if (!(out->v[out->n] = strdup(de->d_name))) {
            closedir(d);
            return -ENOMEM;
        }
        out->n++;
    }
    closedir(d);
    if (out->n > 1)
        qsort(out->v, out->n, sizeof *out->v, cmp_name);
    return 0;
}

static void free_names(name_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

static int in_list(const name_list *l, const char *name)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->v[i], name) == 0)
            return 1;
    return 0;
}

/* Copies src/sub/<names ending in suffix> to dst/sub/, skipping names in
 * done (and adding the copied ones to it). */
static int copy_dir_files(const char *src, const char *dst, const char *sub, const char *suffix,
                          name_list *done, tally_progress *pr)
{
    char sd[4096], dd[4096], s[4400], t[4400];
    snprintf(sd, sizeof sd, "%s/%s", src, sub);
    snprintf(dd, sizeof dd, "%s/%s", dst, sub);
    int rc = fs_mkdirs(dd);
    if (rc)
        return rc;
    name_list l;
    if ((rc = list_names(sd, suffix, &l)) != 0)
        return rc;
    for (size_t i = 0; i < l.n && rc == 0; i++) {
        if (done && in_list(done, l.v[i]))
            continue;
        snprintf(s, sizeof s, "%s/%s", sd, l.v[i]);
        snprintf(t, sizeof t, "%s/%s", dd, l.v[i]);
        uint64_t n = 0;
        rc = fs_copy_file(s, t, UINT64_MAX, &n);
        if (rc == -ENOENT) /* a WAL file deleted by a checkpoint: the re-check sees it */
            rc = 0;
        tally_progress_add(pr, n);
        if (rc == 0 && done) {
            char **nv = realloc(done->v, (done->n + 1) * sizeof *nv);
            if (!nv || !(nv[done->n] = strdup(l.v[i]))) {
                if (nv)
                    done->v = nv;
                rc = -ENOMEM;
                break;
            }
            done->v = nv;
            done->n++;
        }
    }
    free_names(&l);
    if (rc == 0)
        rc = fs_sync_dir(dd);
    return rc;
}

/* One attempt at the engine copy; 0 consistent, 1 a checkpoint intervened
 * (try again), <0 -errno. */
static int copy_engine_once(const char *src, const char *dst, tally_progress *pr)
{
    char tck[4200], out[4200];
    snprintf(tck, sizeof tck, "%s/directory.tck", src);
    size_t n1 = 0, n2 = 0;
    char *c1 = slurp(tck, &n1);
    int rc = fs_mkdirs(dst);
    if (rc)
        goto out;
    if (c1) {
        snprintf(out, sizeof out, "%s/directory.tck", dst);
        if ((rc = write_all(out, c1, n1)) != 0)
            goto out;
    }
    snprintf(out, sizeof out, "%s/LOCK", dst);
    if ((rc = write_all(out, "", 0)) != 0)
        goto out;
    if ((rc = copy_dir_files(src, dst, "seg", ".seg", NULL, pr)) != 0)
        goto out;
    /* WAL files in order; files that appear while copying follow the ones
     * listed, so list again until nothing new shows up */
    name_list done = {0};
    size_t before;
    do {
        before = done.n;
        rc = copy_dir_files(src, dst, "wal", ".wal", &done, pr);
    } while (rc == 0 && done.n != before);
    free_names(&done);
    if (rc)
        goto out;
    char *c2 = slurp(tck, &n2);
    rc = (c1 == NULL) != (c2 == NULL) || n1 != n2 || (c1 && memcmp(c1, c2, n1) != 0);
    free(c2);
    if (rc == 0)
        rc = fs_sync_dir(dst);
out:
    free(c1);
    return rc;
}

static int copy_engine(const char *src, const char *dst, int quiet)
{
    for (int attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
        char seg[4200], wal[4200];
        snprintf(seg, sizeof seg, "%s/seg", src);
        snprintf(wal, sizeof wal, "%s/wal", src);
        tally_progress pr;
        tally_progress_start(&pr, "backup metrics", "bytes",
                             fs_tree_bytes(seg) + fs_tree_bytes(wal), quiet);
        int rc = copy_engine_once(src, dst, &pr);
        tally_progress_finish(&pr);
        if (rc <= 0)
            return rc;
        if (!quiet)
            fprintf(stderr, "backup: a checkpoint ran during the copy; copying the engine "
                            "again (attempt %d)\n",
                    attempt + 1);
        fs_remove_tree(dst);
    }
    fprintf(stderr, "tally backup: the engine checkpointed during each of %d attempts\n",
            MAX_ATTEMPTS);
    return -EAGAIN;
}

static int copy_meta(const char *src, const char *dst, int quiet)
{
    sqlite3 *from = NULL, *to = NULL;
    int rc = SQLITE_OK;
    if ((rc = sqlite3_open_v2(src, &from, SQLITE_OPEN_READONLY, NULL)) != SQLITE_OK ||
        (rc = sqlite3_open_v2(dst, &to, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL)) !=
            SQLITE_OK) {
        fprintf(stderr, "tally backup: opening %s: %s\n", rc == SQLITE_OK ? dst : src,
                sqlite3_errstr(rc));
        sqlite3_close(from);
        sqlite3_close(to);
        return 1;
    }
    sqlite3_busy_timeout(from, 10000);
    sqlite3_backup *b = sqlite3_backup_init(to, "main", from, "main");
    if (!b) {
        fprintf(stderr, "tally backup: %s\n", sqlite3_errmsg(to));
        sqlite3_close(from);
        sqlite3_close(to);
        return 1;
    }
    tally_progress pr;
    tally_progress_start(&pr, "backup meta.db", "pages", 0, quiet);
    /* all pages in one step: one read transaction, so one snapshot */
    do {
        rc = sqlite3_backup_step(b, -1);
        if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED)
            sqlite3_sleep(20);
    } while (rc == SQLITE_OK || rc == SQLITE_BUSY || rc == SQLITE_LOCKED);
    tally_progress_add(&pr, (uint64_t)sqlite3_backup_pagecount(b));
    sqlite3_backup_finish(b);
    tally_progress_finish(&pr);
    int bad = rc != SQLITE_DONE;
    if (bad)
        fprintf(stderr, "tally backup: copying meta.db: %s\n", sqlite3_errstr(rc));
    /* the copy keeps the WAL journal mode of the source; fold it in */
    if (!bad && sqlite3_exec(to, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL) != SQLITE_OK)
        bad = 1;
    sqlite3_close(from);
    if (sqlite3_close(to) != SQLITE_OK)
        bad = 1;
    return bad;
}

static int copy_artifacts(const char *src, const char *dst, tally_progress *pr)
{
    int rc = fs_mkdirs(dst);
    if (rc)
        return rc;
    DIR *d = opendir(src);
    if (!d)
        return errno == ENOENT ? 0 : -errno;
    struct dirent *de;
    char s[4096], t[4096];
    while (rc == 0 && (de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 ||
            strncmp(de->d_name, ".tally-", 7) == 0)
            continue;
        if (snprintf(s, sizeof s, "%s/%s", src, de->d_name) >= (int)sizeof s ||
            snprintf(t, sizeof t, "%s/%s", dst, de->d_name) >= (int)sizeof t) {
            rc = -ENAMETOOLONG;
            break;
        }
        struct stat st;
        if (lstat(s, &st) != 0)
            continue; /* removed meanwhile */
        if (S_ISDIR(st.st_mode)) {
            rc = copy_artifacts(s, t, pr);
        } else if (S_ISREG(st.st_mode)) {
            uint64_t n = 0;
            rc = fs_copy_file(s, t, UINT64_MAX, &n);
            if (rc == -ENOENT)
                rc = 0;
            tally_progress_add(pr, n);
        }
    }
    closedir(d);
    if (rc == 0)
        fs_sync_dir(dst);
    return rc;
}

int cmd_backup(int argc, char **argv)
{
    const char *dest = NULL, *src = NULL;
    int quiet = 0;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(usage_text, stdout);
            return 0;
        } else if (strcmp(argv[i], "--quiet") == 0 || strcmp(argv[i], "-q") == 0) {
            quiet = 1;
        } else if (strcmp(argv[i], "--data") == 0 && i + 1 < argc) {
            src = argv[++i];
        } else if (!dest && argv[i][0] != '-') {
            dest = argv[i];
        } else {
            fputs(usage_text, stderr);
            return 2;
        }
    }
    if (!dest || !src) {
        fputs(usage_text, stderr);
        return 2;
    }
    char a[4096], b[4096];
    snprintf(a, sizeof a, "%s/meta.db", src);
    struct stat st;
    if (stat(a, &st) != 0) {
        fprintf(stderr, "tally backup: %s is not a Tally data directory (no meta.db)\n", src);
        return 1;
    }
    if (stat(dest, &st) == 0) {
        DIR *d = opendir(dest);
        struct dirent *de;
        int empty = d != NULL;
        while (d && (de = readdir(d)) != NULL)
            if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
                empty = 0;
        if (d)
            closedir(d);
        if (!empty) {
            fprintf(stderr, "tally backup: %s exists and is not an empty directory\n", dest);
            return 1;
        }
    }
    int rc = fs_mkdirs(dest);
    if (rc) {
        fprintf(stderr, "tally backup: cannot create %s: %s\n", dest, strerror(-rc));
        return 1;
    }
    snprintf(a, sizeof a, "%s/metrics", src);
    snprintf(b, sizeof b, "%s/metrics", dest);
    if (stat(a, &st) == 0 && (rc = copy_engine(a, b, quiet)) != 0) {
        fprintf(stderr, "tally backup: copying the metric engine: %s (%s is incomplete)\n",
                strerror(-rc), dest);
        return 1;
    }
    snprintf(a, sizeof a, "%s/meta.db", src);
    snprintf(b, sizeof b, "%s/meta.db", dest);
    if (copy_meta(a, b, quiet) != 0) {
        fprintf(stderr, "tally backup: %s is incomplete\n", dest);
        return 1;
    }
    /* The key that seals webhook secrets in meta.db (server/secret_box.h):
     * created before any secret was sealed, so a meta.db copy holding sealed
     * secrets always finds it here. Private, as the original. */
    snprintf(a, sizeof a, "%s/webhook-secret.key", src);
    snprintf(b, sizeof b, "%s/webhook-secret.key", dest);
    if (stat(a, &st) == 0) {
        int fd = open(b, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd >= 0)
            close(fd);
        if (fd < 0 || (rc = fs_copy_file(a, b, 4096, NULL)) != 0 || chmod(b, 0600) != 0) {
            fprintf(stderr, "tally backup: copying %s failed (%s is incomplete)\n", a, dest);
            return 1;
        }
    }
    snprintf(a, sizeof a, "%s/artifacts", src);
    snprintf(b, sizeof b, "%s/artifacts", dest);
    tally_progress pr;
    tally_progress_start(&pr, "backup artifacts", "bytes", fs_tree_bytes(a), quiet);
    rc = copy_artifacts(a, b, &pr);
    tally_progress_finish(&pr);
    if (rc) {
        fprintf(stderr, "tally backup: copying artifacts: %s (%s is incomplete)\n", strerror(-rc),
                dest);
        return 1;
    }
    fs_sync_dir(dest);
    printf("backed up %s to %s (%llu bytes); restore with: tally serve --data %s\n", src, dest,
           (unsigned long long)fs_tree_bytes(dest), dest);
    return 0;
}
