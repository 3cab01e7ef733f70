/* atomic_file.h - files that appear whole or not at all.
 *
 * Data goes to PATH.tmp; commit fsyncs it, renames it over PATH and fsyncs the
 * directory, so after a crash PATH holds either the old or the new contents, never a
 * mix. A full disk is reported as RF_ENOSPC naming the path, and the partial temp
 * file is removed. Tests can simulate a full disk (rf_atomic_file_inject_enospc, or
 * the environment variables RF_INJECT_ENOSPC_AFTER_BYTES and RF_INJECT_ENOSPC_FILE), and
 * crash half-way through a write (RF_CRASH_AT=mid-blob-write:N, common/crash.h). A log
 * (rf_atomic_file_open_log) is the other kind: written in place, durable batch by batch.
 */
#ifndef RF_ATOMIC_FILE_H
#define RF_ATOMIC_FILE_H

#include "error.h"

#include <stddef.h>
#include <stdint.h>

typedef struct rf_atomic_file rf_atomic_file;

/* Starts writing path (mode 0644 or as given by rf_atomic_file_begin_mode). Returns
 * NULL and sets err when the temp file cannot be created. */
rf_atomic_file *rf_atomic_file_begin(const char *path, rf_error *err);
rf_atomic_file *rf_atomic_file_begin_mode(const char *path, int mode, rf_error *err);
/* Appends len bytes. On error the file stays open: call rf_atomic_file_abort. */
int rf_atomic_file_write(rf_atomic_file *self, const void *data, size_t len, rf_error *err);
/* fsync, close, rename over the final path, fsync the directory; frees *self and NULLs
 * it in every case (on failure the temp file is removed). Not for a log. */
int rf_atomic_file_commit(rf_atomic_file **self, rf_error *err);
/* Removes the temp file and frees; safe on NULL and twice. */
void rf_atomic_file_abort(rf_atomic_file **self);
/* Reads len bytes at offset off of what was written so far (before commit): 0, or RF_EIO
 * naming the file. */
int rf_atomic_file_pread(rf_atomic_file *self, void *buf, size_t len, uint64_t off, rf_error *err);

/* A log: a file written in place in batches, each made durable by rf_atomic_file_sync, for
 * bytes that a later commit elsewhere names (a blob pack shared by several transactions).
 * Created at path itself (truncated when it exists; no temp file, no rename); its directory
 * is synced by the first rf_atomic_file_sync. Writes go at explicit offsets
 * (rf_atomic_file_pwrite), through the same full-disk simulation and mid-blob-write crash
 * point; bytes past what a committed record names are garbage a later batch may overwrite.
 * rf_atomic_file_abort removes the file; rf_atomic_file_close keeps it. Returns NULL and
 * sets err when the file cannot be created. */
rf_atomic_file *rf_atomic_file_open_log(const char *path, rf_error *err);
/* Writes len bytes at offset off. On error the file stays open. */
int rf_atomic_file_pwrite(rf_atomic_file *self, const void *data, size_t len, uint64_t off,
                          rf_error *err);
/* A log's bytes written so far are durable (fdatasync; and its directory, the first time). */
int rf_atomic_file_sync(rf_atomic_file *self, rf_error *err);
/* Closes a log and frees it, keeping the file; safe on NULL and twice. */
void rf_atomic_file_close(rf_atomic_file **self);

/* The whole dance for one buffer. */
int rf_atomic_write(const char *path, const void *data, size_t len, rf_error *err);
/* fsync of a directory, so a rename or create inside it is durable. */
int rf_fsync_dir(const char *dir, rf_error *err);
/* Creates dir and missing parents with mode (existing ones are left as they are). */
int rf_mkdirs(const char *dir, int mode, rf_error *err);

/* Test hook: after `bytes` more bytes written through this module, writes fail with
 * ENOSPC; a negative value switches the fault off. */
void rf_atomic_file_inject_enospc(long long bytes);
/* Test hook: 1 while the file named by RF_INJECT_ENOSPC_FILE exists; every write through
 * this module then fails with ENOSPC (and the coordinator's store refuses to commit), so a
 * test can fill the "disk" and free it again. */
int rf_atomic_file_full_injected(void);

#endif
