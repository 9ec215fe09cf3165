/*
 * fsutil.h — file-system helpers the `tally` commands share: mkdir -p,
 * copying a file (copy_file_range, then read/write) with fsync, the bytes
 * under a directory, and removing a tree.
 */
#ifndef TALLY_TOOLS_FSUTIL_H
#define TALLY_TOOLS_FSUTIL_H

#include <stddef.h>
#include <stdint.h>

/* mkdir -p path (mode 0755). 0 or -errno. */
int fs_mkdirs(const char *path);

/* Copies at most max_bytes (UINT64_MAX: all) of regular file src to dst
 * (created or truncated, mode 0644), fsyncs dst. *copied gets the bytes
 * copied (may be NULL). 0 or -errno. */
int fs_copy_file(const char *src, const char *dst, uint64_t max_bytes, uint64_t *copied);

/* fsync of a directory (so renames and creations in it are durable). */
int fs_sync_dir(const char *dir);

/* Total bytes of the regular files under path (a file: its size). Symlinks
 * are not followed. 0 for a missing path. */
uint64_t fs_tree_bytes(const char *path);

/* rm -rf path. 0 or -errno of the first failure (a missing path is 0). */
int fs_remove_tree(const char *path);

#endif /* TALLY_TOOLS_FSUTIL_H */
