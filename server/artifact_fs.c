/*
 * artifact_fs.c — file operations confined to the artifact root
 * (artifact_fs.h): walks with openat(O_NOFOLLOW), atomic uploads, recursive
 * removal, the sweep of stale upload temporaries.
 */
#include "artifact_fs.h"

#include "artifact_sync.h"
#include "artifact_writer.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#define TMP_UPLOAD_PREFIX TALLY_ARTIFACT_TMP_PREFIX "upload-"
#define UPLOAD_BUF (256u << 10)             /* small pieces are gathered to this size per write(2) */
#define DIRECT_WRITE_MIN (16u << 10)        /* a piece this large, nothing gathered, is written as is */
#define WRITER_FROM ((uint64_t)4 << 20)     /* an upload this large goes on in a writer thread */
#define MAX_REL 4096

/* mkdir -p of an absolute or relative root path (trusted configuration). */
static int make_root(const char *root)
{
    char tmp[MAX_REL];
    if (snprintf(tmp, sizeof tmp, "%s", root) >= (int)sizeof tmp)
        return -ENAMETOOLONG;
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = 0;
        if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
        return -errno;
    return 0;
}

/* openat of one directory component, never following a symlink. */
static int open_component(int dfd, const char *name, int create)
{
    if (strncmp(name, TALLY_ARTIFACT_TMP_PREFIX, sizeof TALLY_ARTIFACT_TMP_PREFIX - 1) == 0)
        return -EINVAL; /* invariant (3): reserved for uploads in progress */
    for (int attempt = 0; attempt < 2; attempt++) {
        int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd >= 0)
            return fd;
        int e = errno;
        if (e == ENOENT && create && attempt == 0) {
            if (mkdirat(dfd, name, 0755) != 0) {
                if (errno != EEXIST)
                    return -errno;
            } else if (fsync(dfd) != 0) {
                return -errno; /* the new entry must outlive a power cut, like the file
                                  that will be acknowledged inside it (invariant (2)) */
            }
            continue;
        }
        if (e == ENOTDIR || e == ELOOP) {
            struct stat st;
            if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
                return -ELOOP;
        }
        return -e;
    }
    return -ENOENT;
}

int tally_artifact_open_dir(const char *root, const char *rel, int create)
{
    if (create) {
        int rc = make_root(root);
        if (rc)
            return rc;
    }
    int fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    size_t n = strlen(rel);
    if (n >= MAX_REL) {
        close(fd);
        return -ENAMETOOLONG;
    }
    char buf[MAX_REL];
    memcpy(buf, rel, n + 1);
    char *save = NULL;
    for (char *c = strtok_r(buf, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
        int next = open_component(fd, c, create);
        close(fd);
        if (next < 0)
            return next;
        fd = next;
    }
    return fd;
}

/* Splits rel into its parent directory (opened) and its last component.
 * base points into rel. rel must not be "". */
static int open_parent(const char *root, const char *rel, int create, const char **base)
{
    const char *slash = strrchr(rel, '/');
    char dir[MAX_REL];
    size_t dl = slash ? (size_t)(slash - rel) : 0;
    if (dl >= sizeof dir)
        return -ENAMETOOLONG;
    memcpy(dir, rel, dl);
    dir[dl] = 0;
    *base = slash ? slash + 1 : rel;
    if (!**base)
        return -EINVAL;
    if (strncmp(*base, TALLY_ARTIFACT_TMP_PREFIX, sizeof TALLY_ARTIFACT_TMP_PREFIX - 1) == 0)
        return -EINVAL;
    return tally_artifact_open_dir(root, dir, create);
}

int tally_artifact_kind(const char *root, const char *rel)
{
    if (!*rel) {
        int fd = tally_artifact_open_dir(root, "", 0);
        if (fd < 0)
            return fd == -ENOENT ? 0 : fd;
        close(fd);
        return 2;
    }
    const char *base;
    int dfd = open_parent(root, rel, 0, &base);
    if (dfd < 0)
        return dfd == -ENOENT || dfd == -ENOTDIR ? 0 : dfd;
    struct stat st;
    int rc;
    if (fstatat(dfd, base, &st, AT_SYMLINK_NOFOLLOW) != 0)
        rc = errno == ENOENT ? 0 : -errno;
    else if (S_ISLNK(st.st_mode))
        rc = -ELOOP;
    else if (S_ISREG(st.st_mode))
        rc = 1;
    else if (S_ISDIR(st.st_mode))
        rc = 2;
    else
        rc = 0; /* sockets, fifos: not artifacts */
    close(dfd);
    return rc;
}

int tally_artifact_open_file(const char *root, const char *rel, uint64_t *size_out)
{
    const char *base;
    int dfd = open_parent(root, rel, 0, &base);
    if (dfd < 0)
        return dfd;
    int fd = openat(dfd, base, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    int e = errno;
    if (fd < 0 && e == ELOOP) {
        close(dfd);
        return -ELOOP;
    }
    close(dfd);
    if (fd < 0)
        return -e;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        e = errno;
        close(fd);
        return -e;
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return S_ISDIR(st.st_mode) ? -EISDIR : -ENOENT;
    }
    /* O_NONBLOCK only kept a fifo from blocking the open; clear it. */
    fcntl(fd, F_SETFL, 0);
    *size_out = (uint64_t)st.st_size;
    return fd;
}

/* Removes name in dfd, recursively, never following symlinks. */
static int remove_at(int dfd, const char *name)
{
    struct stat st;
    if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
        return errno == ENOENT ? 0 : -errno;
    if (!S_ISDIR(st.st_mode))
        return unlinkat(dfd, name, 0) == 0 || errno == ENOENT ? 0 : -errno;
    int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    DIR *d = fdopendir(fd);
    if (!d) {
        int e = errno;
        close(fd);
        return -e;
    }
    int rc = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if ((rc = remove_at(fd, de->d_name)) != 0)
            break;
    }
    closedir(d);
    if (rc)
        return rc;
    return unlinkat(dfd, name, AT_REMOVEDIR) == 0 || errno == ENOENT ? 0 : -errno;
}

int tally_artifact_remove(const char *root, const char *rel)
{
    if (!*rel)
        return -EINVAL;
    const char *base;
    int dfd = open_parent(root, rel, 0, &base);
    if (dfd < 0)
        return dfd == -ENOENT ? 0 : dfd;
    int rc = remove_at(dfd, base);
    if (rc == 0)
        fsync(dfd);
    close(dfd);
    return rc;
}

static int entry_cmp(const void *a, const void *b)
{
    return strcmp(((const tally_artifact_entry *)a)->name, ((const tally_artifact_entry *)b)->name);
}

void tally_artifact_list_free(tally_artifact_entry *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        free(v[i].name);
    free(v);
}

int tally_artifact_list(const char *root, const char *rel, tally_artifact_entry **out, size_t *n_out)
{
    *out = NULL;
    *n_out = 0;
    int dfd = tally_artifact_open_dir(root, rel, 0);
    if (dfd < 0)
        return dfd == -ENOENT || dfd == -ENOTDIR ? 0 : dfd;
    DIR *d = fdopendir(dfd);
    if (!d) {
        int e = errno;
        close(dfd);
        return -e;
    }
    size_t cap = 0, n = 0;
    tally_artifact_entry *v = NULL;
    struct dirent *de;
    int rc = 0;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 ||
            strncmp(de->d_name, TALLY_ARTIFACT_TMP_PREFIX, sizeof TALLY_ARTIFACT_TMP_PREFIX - 1) == 0)
            continue;
        struct stat st;
        if (fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
            !(S_ISDIR(st.st_mode) || S_ISREG(st.st_mode)))
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 32;
            tally_artifact_entry *nv = realloc(v, cap * sizeof *nv);
            if (!nv) {
                rc = -ENOMEM;
                break;
            }
            v = nv;
        }
        v[n].name = strdup(de->d_name);
        if (!v[n].name) {
            rc = -ENOMEM;
            break;
        }
        v[n].is_dir = S_ISDIR(st.st_mode);
        v[n].size = (uint64_t)st.st_size;
        n++;
    }
    closedir(d);
    if (rc) {
        tally_artifact_list_free(v, n);
        return rc;
    }
    if (n > 1)
        qsort(v, n, sizeof *v, entry_cmp);
    *out = v;
    *n_out = n;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Uploads                                                                    */
/* ------------------------------------------------------------------------ */

struct tally_artifact_upload {
    int dfd;                  /* the target's directory */
    int fd;                   /* the temporary file */
    char tmp[64];             /* its name in dfd */
    char base[256 + 1];       /* the target's name in dfd */
    uint64_t size;            /* bytes accepted (written + buffered) */
    uint64_t kicked;          /* bytes handed to writeback so far */
    char *buf;                /* UPLOAD_BUF bytes gathering small pieces */
    size_t buffered;          /* bytes in buf, not yet written */
    tally_file_writer *writer; /* from WRITER_FROM bytes on: writes the rest */
    int direct;               /* the writer writes with O_DIRECT (artifact_writer.h) */
};

int tally_artifact_upload_begin(const char *root, const char *rel, int direct,
                                tally_artifact_upload **out)
{
    *out = NULL;
    if (!*rel)
        return -EISDIR;
    const char *base;
    int dfd = open_parent(root, rel, 1, &base);
    if (dfd < 0)
        return dfd;
    if (strlen(base) > 255) {
        close(dfd);
        return -ENAMETOOLONG;
    }
    struct stat st;
    if (fstatat(dfd, base, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode)) {
        close(dfd);
        return -EISDIR;
    }
    tally_artifact_upload *u = calloc(1, sizeof *u);
    if (!u) {
        close(dfd);
        return -ENOMEM;
    }
    u->dfd = dfd;
    u->fd = -1;
    u->direct = direct;
    u->buf = malloc(UPLOAD_BUF);
    if (!u->buf) {
        close(dfd);
        free(u);
        return -ENOMEM;
    }
    snprintf(u->base, sizeof u->base, "%s", base);
    for (int attempt = 0; attempt < 8; attempt++) {
        unsigned char r[8];
        if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r) {
            uint64_t t = (uint64_t)getpid() * 2654435761u ^ (uint64_t)(uintptr_t)u ^ (uint64_t)attempt;
            memcpy(r, &t, sizeof r);
        }
        snprintf(u->tmp, sizeof u->tmp, TMP_UPLOAD_PREFIX "%02x%02x%02x%02x%02x%02x%02x%02x", r[0],
                 r[1], r[2], r[3], r[4], r[5], r[6], r[7]);
        u->fd = openat(dfd, u->tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (u->fd >= 0 || errno != EEXIST)
            break;
    }
    if (u->fd < 0) {
        int e = errno;
        close(dfd);
        free(u->buf);
        free(u);
        return -e;
    }
    *out = u;
    return 0;
}

/* Writes the buffered bytes, then starts writeback if due. */
static int flush(tally_artifact_upload *u)
{
    int rc = tally_write_all(u->fd, u->buf, u->buffered);
    if (rc)
        return rc;
    u->buffered = 0;
    tally_writeback_kick(u->fd, &u->kicked, u->size);
    return 0;
}

int tally_artifact_upload_write(tally_artifact_upload *u, const void *data, size_t n)
{
    const char *p = data;
    if (u->writer) {
        u->size += n;
        return tally_file_writer_put(u->writer, p, n);
    }
    if (u->size + n >= WRITER_FROM) {
        /* A large upload: receiving and writing go on two cores from here
         * (artifact_writer.h). What was gathered is written first. Without
         * a thread (none to be had) the upload goes on as it was. */
        int rc = flush(u);
        if (rc)
            return rc;
        if (tally_file_writer_start(u->fd, u->size, u->kicked, u->direct, &u->writer) == 0) {
            u->size += n;
            return tally_file_writer_put(u->writer, p, n);
        }
    }
    if (u->buffered == 0 && n >= DIRECT_WRITE_MIN) {
        /* A large piece goes to the file as it is: no copy into the buffer. */
        int rc = tally_write_all(u->fd, p, n);
        if (rc)
            return rc;
        u->size += n;
        tally_writeback_kick(u->fd, &u->kicked, u->size);
        return 0;
    }
    while (n) {
        size_t room = UPLOAD_BUF - u->buffered;
        size_t k = n < room ? n : room;
        memcpy(u->buf + u->buffered, p, k);
        u->buffered += k;
        u->size += k;
        p += k;
        n -= k;
        if (u->buffered == UPLOAD_BUF) {
            int rc = flush(u);
            if (rc)
                return rc;
        }
    }
    return 0;
}

uint64_t tally_artifact_upload_size(const tally_artifact_upload *u)
{
    return u->size;
}

static void upload_free(tally_artifact_upload *u)
{
    tally_file_writer_cancel(u->writer);
    if (u->fd >= 0)
        close(u->fd);
    if (u->dfd >= 0)
        close(u->dfd);
    free(u->buf);
    free(u);
}

/* fsync of the renamed file and its directory, by the uploader itself. */
static int sync_here(tally_artifact_upload *u)
{
    if (fsync(u->fd) != 0 || fsync(u->dfd) != 0)
        return -errno;
    return 0;
}

/* The regular file the rename is about to replace, held (O_PATH: no read
 * access needed, nothing opened in the device sense) so that its last close
 * happens on the syncer's thread (artifact_sync.h), or -1. */
static int open_replaced(const tally_artifact_upload *u)
{
    int fd = openat(u->dfd, u->base, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    struct stat st;
    if (fd >= 0 && (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))) {
        close(fd);
        fd = -1;
    }
    return fd;
}

int tally_artifact_upload_commit(tally_artifact_upload *u, tally_artifact_syncer *syncer)
{
    int rc;
    if (u->writer) {
        rc = tally_file_writer_finish(u->writer);
        u->writer = NULL;
    } else {
        rc = flush(u);
    }
    int old_fd = rc == 0 && syncer ? open_replaced(u) : -1;
    if (!syncer) { /* always: the data is on disk before the name exists */
        if (rc == 0 && fsync(u->fd) != 0)
            rc = -errno;
        if (close(u->fd) != 0 && rc == 0)
            rc = -errno;
        u->fd = -1;
    }
    if (rc == 0 && renameat(u->dfd, u->tmp, u->dfd, u->base) != 0)
        rc = -errno;
    if (rc != 0) {
        unlinkat(u->dfd, u->tmp, 0);
    } else if (!syncer) {
        if (fsync(u->dfd) != 0)
            rc = -errno; /* the rename may not survive a power cut; the file is complete */
    } else if (tally_artifact_syncer_push(syncer, u->fd, u->dfd, old_fd) == 0) {
        u->fd = u->dfd = old_fd = -1; /* the syncer owns them now (artifact_sync.h) */
    } else {
        rc = sync_here(u); /* queue full or stopping: as in always mode */
    }
    if (old_fd >= 0)
        close(old_fd);
    upload_free(u);
    return rc;
}

void tally_artifact_upload_abort(tally_artifact_upload *u)
{
    if (!u)
        return;
    unlinkat(u->dfd, u->tmp, 0);
    upload_free(u);
}

/* ------------------------------------------------------------------------ */
/* Sweep                                                                      */
/* ------------------------------------------------------------------------ */

static int n_swept; /* nftw has no user pointer; the sweep runs once, at start */

static int sweep_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    if (flag == FTW_F &&
        strncmp(path + ftw->base, TMP_UPLOAD_PREFIX, sizeof TMP_UPLOAD_PREFIX - 1) == 0 &&
        unlink(path) == 0)
        n_swept++;
    return 0;
}

int tally_artifact_sweep(const char *root)
{
    struct stat st;
    if (stat(root, &st) != 0)
        return errno == ENOENT ? 0 : -errno;
    n_swept = 0;
    if (nftw(root, sweep_one, 32, FTW_PHYS | FTW_MOUNT) != 0)
        return errno ? -errno : -EIO;
    return n_swept;
}
