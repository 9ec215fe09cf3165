/*
 * artifact_fs.h — file operations under the local artifact root that can
 * never leave it: every path is walked one component at a time from a
 * directory descriptor of the root with openat(O_NOFOLLOW), so a symlink
 * anywhere on the way (planted inside the root, or swapped in while we
 * walk) makes the operation fail instead of being followed. Paths handed in
 * have already passed tally_artifact_path_check (artifact_path.h): relative,
 * normalised, no "..", no NUL.
 *
 * Uploads are atomic (tally_artifact_upload_*):
 *
 *   begin   open (creating) the parent directories, each new one's entry
 *           fsync'd in its parent, then a temporary file in the
 *           target's directory named ".tally-upload-<random>"
 *   write   bytes gathered into 256 KiB writes as they arrive; from 4 MiB
 *           on, handed to a writer thread of the upload's own
 *           (artifact_writer.h: four 1 MiB buffers, so receiving and
 *           writing run on two cores), which writes them with O_DIRECT
 *           unless begin's direct is 0; writeback of what goes through
 *           the page cache is started every few MiB (sync_file_range) so
 *           dirty pages stay bounded and the final fsync has little left
 *           to do
 *   commit  rename the temporary file over the target (atomic: readers
 *           see the old file or the new one, never a torn one; concurrent
 *           uploads: the last rename wins). Without a syncer (`always`):
 *           fsync the file first and the directory after, then return.
 *           With a syncer (`background`, artifact_sync.h): return after the
 *           rename; the syncer fsyncs file and directory shortly after (or,
 *           its queue full, the caller does it before returning), and also
 *           gets the replaced file (held with O_PATH across the rename) so
 *           that freeing it happens on its thread, not before the reply
 *   abort   close and unlink: nothing is left behind
 *
 * Invariants:
 *  (1) No function here opens, creates, renames or removes anything outside
 *      the root: each component is opened relative to its parent's fd with
 *      O_NOFOLLOW | O_DIRECTORY (directories) or O_NOFOLLOW (files).
 *  (2) A file under its final name is always complete once the call that
 *      put it there returned: a killed process (kill -9) leaves the old
 *      file or the new one, never a torn one. Against power loss it is
 *      fsync'd before commit returns (no syncer), or within the syncer's
 *      window (artifact_sync.h); inside that window a power cut may leave
 *      the old version, nothing, or a short file under the name.
 *  (3) Names starting with ".tally-" belong to uploads in progress; listings
 *      hide them and tally_artifact_sweep removes them (left by a crash).
 *
 * Errors are negative errno values: -ENOENT (missing), -ENOTDIR (a file
 * where a directory is needed), -ELOOP (a symlink on the path: refuse as an
 * invalid path), -EISDIR, -ENOSPC/-EDQUOT (disk full), others (I/O).
 */
#ifndef TALLY_SERVER_ARTIFACT_FS_H
#define TALLY_SERVER_ARTIFACT_FS_H

#include <stddef.h>
#include <stdint.h>

#define TALLY_ARTIFACT_TMP_PREFIX ".tally-"

/* Opens the directory rel (checked, "" = the root itself) under root, with
 * O_DIRECTORY | O_NOFOLLOW at every step. create: make missing directories
 * (mode 0755), the root included. Returns an fd (caller closes) or -errno. */
int tally_artifact_open_dir(const char *root, const char *rel, int create);

/* Opens the regular file rel for reading. Returns an fd or -errno
 * (-EISDIR for a directory, -ELOOP for a symlink, -ENOENT). *size_out gets
 * its size. */
int tally_artifact_open_file(const char *root, const char *rel, uint64_t *size_out);

/* Kind of rel: 1 regular file, 2 directory, 0 missing, or -errno
 * (-ELOOP: a symlink on the path). */
int tally_artifact_kind(const char *root, const char *rel);

/* Removes rel recursively (a file, or a directory and all below it).
 * Symlinks met inside are removed, never followed. Missing is success.
 * rel must not be "" (the root is never removed). 0 or -errno. */
int tally_artifact_remove(const char *root, const char *rel);

/* One entry of a directory listing. */
typedef struct tally_artifact_entry {
    char *name;               /* the entry's name (no '/') */
    int is_dir;               /* a directory (else a regular file) */
    uint64_t size;            /* bytes, for files */
} tally_artifact_entry;

/* One level of directory rel, sorted by name (strcmp): regular files and
 * directories only; symlinks, other kinds and upload temporaries (3) are
 * left out. A missing rel or a file lists nothing (0 with *n = 0). -ELOOP
 * when a symlink is on the path to rel. Free with tally_artifact_list_free. */
int tally_artifact_list(const char *root, const char *rel, tally_artifact_entry **out, size_t *n);
void tally_artifact_list_free(tally_artifact_entry *v, size_t n);

typedef struct tally_artifact_upload tally_artifact_upload;
typedef struct tally_artifact_syncer tally_artifact_syncer; /* artifact_sync.h */

/* Starts an upload to rel (a file path, not ""). Creates parent
 * directories. direct: the bytes past the first 4 MiB are written with
 * O_DIRECT where the file system allows (artifact_writer.h). Fails with
 * -EISDIR when rel names an existing directory, -ENOTDIR when a parent is
 * a file, -ELOOP on a symlink. */
int tally_artifact_upload_begin(const char *root, const char *rel, int direct,
                                tally_artifact_upload **out);
/* Appends n bytes. 0 or -errno (the upload must then be aborted). */
int tally_artifact_upload_write(tally_artifact_upload *u, const void *data, size_t n);
/* Bytes accepted so far. */
uint64_t tally_artifact_upload_size(const tally_artifact_upload *u);
/* Makes the file visible under its name (see the file comment) and frees
 * u. syncer NULL: fsync'd before the return (`always`); else queued to the
 * syncer (`background`). On error nothing is visible (unless only the
 * final fsync failed: the file is complete) and u is freed too.
 * 0 or -errno. */
int tally_artifact_upload_commit(tally_artifact_upload *u, tally_artifact_syncer *syncer);
/* Drops the upload: nothing is left on disk. Frees u; NULL is a no-op. */
void tally_artifact_upload_abort(tally_artifact_upload *u);

/* Removes every ".tally-upload-*" file under root (left by a crash during
 * an upload), without following symlinks. Call at start, before serving.
 * Returns the number removed, or -errno when root cannot be read (a
 * missing root is 0). */
int tally_artifact_sweep(const char *root);

#endif /* TALLY_SERVER_ARTIFACT_FS_H */
