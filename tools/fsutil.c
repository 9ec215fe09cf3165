/*
 * fsutil.c — file-system helpers shared by the `tally` commands (see
 * fsutil.h).
 */
#include "fsutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int fs_mkdirs(const char *path)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s", path) >= (int)sizeof tmp)
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
    struct stat st;
    if (stat(tmp, &st) != 0)
        return -errno;
    return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

int fs_copy_file(const char *src, const char *dst, uint64_t max_bytes, uint64_t *copied)
{
    int in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return -errno;
    int out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (out < 0) {
        int e = -errno;
        close(in);
        return e;
    }
    uint64_t total = 0;
    int rc = 0, use_cfr = 1;
    while (total < max_bytes) {
        size_t want = max_bytes - total > (1u << 30) ? (1u << 30) : (size_t)(max_bytes - total);
        ssize_t n;
        if (use_cfr) {
            n = copy_file_range(in, NULL, out, NULL, want, 0);
            if (n < 0 && (errno == EXDEV || errno == ENOSYS || errno == EINVAL ||
                          errno == EOPNOTSUPP)) {
                use_cfr = 0;
                continue;
            }
        } else {
            char local[1 << 16];
            n = read(in, local, want < sizeof local ? want : sizeof local);
            if (n > 0) {
                for (ssize_t w = 0; w < n;) {
                    ssize_t k = write(out, local + w, (size_t)(n - w));
                    if (k < 0) {
                        if (errno == EINTR)
                            continue;
                        rc = -errno;
                        break;
                    }
                    w += k;
                }
                if (rc)
                    break;
            }
        }
        if (n < 0) {
            if (errno == EINTR)
                continue;
            rc = -errno;
            break;
        }
        if (n == 0)
            break;
        total += (uint64_t)n;
    }
    if (rc == 0 && fsync(out) != 0)
        rc = -errno;
    if (close(out) != 0 && rc == 0)
        rc = -errno;
    close(in);
    if (copied)
        *copied = total;
    return rc;
}

int fs_sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = fsync(fd) == 0 ? 0 : -errno;
    close(fd);
    return rc;
}

uint64_t fs_tree_bytes(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return 0;
    if (S_ISREG(st.st_mode))
        return (uint64_t)st.st_size;
    if (!S_ISDIR(st.st_mode))
        return 0;
    DIR *d = opendir(path);
    if (!d)
        return 0;
    uint64_t total = 0;
    struct dirent *de;
    char sub[4096];
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (snprintf(sub, sizeof sub, "%s/%s", path, de->d_name) >= (int)sizeof sub)
            continue;
        total += fs_tree_bytes(sub);
    }
    closedir(d);
    return total;
}

int fs_remove_tree(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return errno == ENOENT ? 0 : -errno;
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        if (!d)
            return -errno;
        struct dirent *de;
        char sub[4096];
        int rc = 0;
        while ((de = readdir(d)) != NULL) {
            if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                continue;
            if (snprintf(sub, sizeof sub, "%s/%s", path, de->d_name) >= (int)sizeof sub) {
                rc = -ENAMETOOLONG;
                continue;
            }
            int r = fs_remove_tree(sub);
            if (r && !rc)
                rc = r;
        }
        closedir(d);
        if (rc)
            return rc;
        return rmdir(path) == 0 ? 0 : -errno;
    }
    return unlink(path) == 0 ? 0 : -errno;
}
