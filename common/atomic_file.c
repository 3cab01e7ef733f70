/* atomic_file.c - temp + fsync + rename + directory fsync.
 *
 * The only place that decides how durable files are written, so the coordinator's
 * blobs, outputs and our safetensors all get the same guarantees and the same
 * full-disk behaviour. It never leaves a *.tmp behind on an error path it sees.
 */
#include "atomic_file.h"

#include "crash.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct rf_atomic_file {
    int fd;
    int log;        /* rf_atomic_file_open_log: written in place (tmp is path), never renamed */
    int dir_synced; /* a log: its directory entry is durable */
    char path[PATH_MAX];
    char tmp[PATH_MAX];
};

static long long s_enospc_budget = -1;
static int s_env_read;
static const char *s_full_file; /* RF_INJECT_ENOSPC_FILE: the disk is "full" while it exists */

void rf_atomic_file_inject_enospc(long long bytes)
{
    s_env_read = 1;
    s_enospc_budget = bytes;
}

static void s_read_env(void)
{
    if (s_env_read)
        return;
    s_env_read = 1;
    const char *v = getenv("RF_INJECT_ENOSPC_AFTER_BYTES");
    if (v && *v)
        s_enospc_budget = strtoll(v, NULL, 10);
    const char *f = getenv("RF_INJECT_ENOSPC_FILE");
    s_full_file = f && *f ? f : NULL;
}

int rf_atomic_file_full_injected(void)
{
    s_read_env();
    return s_full_file && access(s_full_file, F_OK) == 0;
}

static int s_errno_error(rf_error *err, int e, const char *what, const char *path)
{
    if (e == ENOSPC || e == EDQUOT)
        return rf_error_set(err, RF_ENOSPC,
                            "disk full while %s %s: free space on that volume and retry", what,
                            path);
    return rf_error_set(err, RF_EIO, "cannot %s %s: %s", what, path, strerror(e));
}

rf_atomic_file *rf_atomic_file_begin_mode(const char *path, int mode, rf_error *err)
{
    s_read_env();
    rf_atomic_file *self = calloc(1, sizeof(*self));
    if (!self)
        return rf_error_set(err, RF_ENOMEM, "out of memory"), NULL;
    if (snprintf(self->path, sizeof(self->path), "%s", path) >= (int)sizeof(self->path) ||
        snprintf(self->tmp, sizeof(self->tmp), "%s.tmp", path) >= (int)sizeof(self->tmp)) {
        free(self);
        return rf_error_set(err, RF_EINVAL, "path too long: %s", path), NULL;
    }
    self->fd = open(self->tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (self->fd < 0) {
        s_errno_error(err, errno, "creating", self->tmp);
        free(self);
        return NULL;
    }
    return self;
}

rf_atomic_file *rf_atomic_file_begin(const char *path, rf_error *err)
{
    return rf_atomic_file_begin_mode(path, 0644, err);
}

rf_atomic_file *rf_atomic_file_open_log(const char *path, rf_error *err)
{
    s_read_env();
    rf_atomic_file *self = calloc(1, sizeof(*self));
    if (!self)
        return rf_error_set(err, RF_ENOMEM, "out of memory"), NULL;
    self->log = 1;
    if (snprintf(self->path, sizeof(self->path), "%s", path) >= (int)sizeof(self->path)) {
        free(self);
        return rf_error_set(err, RF_EINVAL, "path too long: %s", path), NULL;
    }
    memcpy(self->tmp, self->path, sizeof(self->tmp));
    self->fd = open(self->path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (self->fd < 0) {
        s_errno_error(err, errno, "creating", self->path);
        free(self);
        return NULL;
    }
    return self;
}

/* Writes len bytes at off (off < 0: at the file position), through the simulated full disk
 * and the mid-blob-write crash point. */
static int s_write(rf_atomic_file *self, const void *data, size_t len, int64_t off, rf_error *err)
{
    const char *p = data;
    if (rf_atomic_file_full_injected())
        return s_errno_error(err, ENOSPC, "writing", self->path);
    /* split in two only when the mid-blob-write crash point is armed: one write otherwise */
    size_t half = rf_crash_armed("mid-blob-write") ? len / 2 : 0;
    while (len > 0) {
        size_t chunk = len > half && half > 0 ? len - half : len;
        if (s_enospc_budget >= 0) {
            if (s_enospc_budget == 0)
                return s_errno_error(err, ENOSPC, "writing", self->path);
            if ((long long)chunk > s_enospc_budget)
                chunk = (size_t)s_enospc_budget;
        }
        ssize_t w = off < 0 ? write(self->fd, p, chunk) : pwrite(self->fd, p, chunk, (off_t)off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return s_errno_error(err, errno, "writing", self->path);
        }
        if (s_enospc_budget >= 0)
            s_enospc_budget -= w;
        p += w;
        len -= (size_t)w;
        if (off >= 0)
            off += w;
        if (half > 0 && len <= half && len + (size_t)w > half) {
            rf_crash_point("mid-blob-write"); /* half of the bytes are in the file */
            half = 0;
        }
    }
    return 0;
}

int rf_atomic_file_write(rf_atomic_file *self, const void *data, size_t len, rf_error *err)
{
    return s_write(self, data, len, -1, err);
}

int rf_atomic_file_pwrite(rf_atomic_file *self, const void *data, size_t len, uint64_t off,
                          rf_error *err)
{
    return s_write(self, data, len, (int64_t)off, err);
}

int rf_atomic_file_pread(rf_atomic_file *self, void *buf, size_t len, uint64_t off, rf_error *err)
{
    size_t got = 0;
    while (got < len) {
        ssize_t r = pread(self->fd, (char *)buf + got, len - got, (off_t)(off + got));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return rf_error_set(err, RF_EIO, "cannot read back %s: %s", self->tmp,
                                r < 0 ? strerror(errno) : "short file");
        got += (size_t)r;
    }
    return 0;
}

void rf_atomic_file_abort(rf_atomic_file **self)
{
    if (!self || !*self)
        return;
    if ((*self)->fd >= 0)
        close((*self)->fd);
    unlink((*self)->tmp);
    free(*self);
    *self = NULL;
}

int rf_fsync_dir(const char *dir, rf_error *err)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return s_errno_error(err, errno, "opening directory", dir);
    int rc = 0;
    if (fsync(fd) != 0 && errno != EINVAL) /* some filesystems cannot fsync directories */
        rc = s_errno_error(err, errno, "syncing directory", dir);
    close(fd);
    return rc;
}

/* The directory of path into dir (cap PATH_MAX). */
static void s_dir_of(const char *path, char *dir)
{
    const char *slash = strrchr(path, '/');
    if (slash)
        snprintf(dir, PATH_MAX, "%.*s", slash == path ? 1 : (int)(slash - path), path);
    else
        snprintf(dir, PATH_MAX, ".");
}

int rf_atomic_file_sync(rf_atomic_file *self, rf_error *err)
{
    assert(self->log);
    if (fdatasync(self->fd) != 0)
        return s_errno_error(err, errno, "syncing", self->path);
    if (!self->dir_synced) { /* once: the file's name is durable from now on */
        char dir[PATH_MAX];
        s_dir_of(self->path, dir);
        int rc = rf_fsync_dir(dir, err);
        if (rc)
            return rc;
        self->dir_synced = 1;
    }
    return 0;
}

void rf_atomic_file_close(rf_atomic_file **pself)
{
    if (!pself || !*pself)
        return;
    assert((*pself)->log);
    if ((*pself)->fd >= 0)
        close((*pself)->fd);
    free(*pself);
    *pself = NULL;
}

int rf_atomic_file_commit(rf_atomic_file **pself, rf_error *err)
{
    rf_atomic_file *self = *pself;
    assert(!self->log);
    int rc = 0;
    if (fsync(self->fd) != 0)
        rc = s_errno_error(err, errno, "syncing", self->tmp);
    if (close(self->fd) != 0 && !rc)
        rc = s_errno_error(err, errno, "closing", self->tmp);
    self->fd = -1;
    if (!rc && rename(self->tmp, self->path) != 0)
        rc = s_errno_error(err, errno, "renaming into", self->path);
    if (rc) {
        rf_atomic_file_abort(pself);
        return rc;
    }
    char dir[PATH_MAX];
    s_dir_of(self->path, dir);
    rc = rf_fsync_dir(dir, err);
    free(self);
    *pself = NULL;
    return rc;
}

int rf_atomic_write(const char *path, const void *data, size_t len, rf_error *err)
{
    rf_atomic_file *f = rf_atomic_file_begin(path, err);
    if (!f)
        return err ? (int)err->code : RF_EIO;
    int rc = rf_atomic_file_write(f, data, len, err);
    if (rc) {
        rf_atomic_file_abort(&f);
        return rc;
    }
    return rf_atomic_file_commit(&f, err);
}

int rf_mkdirs(const char *dir, int mode, rf_error *err)
{
    char buf[PATH_MAX];
    if (snprintf(buf, sizeof(buf), "%s", dir) >= (int)sizeof(buf))
        return rf_error_set(err, RF_EINVAL, "path too long: %s", dir);
    for (char *p = buf + 1;; p++) {
        if (*p == '/' || *p == '\0') {
            char c = *p;
            *p = '\0';
            if (mkdir(buf, (mode_t)mode) != 0 && errno != EEXIST)
                return s_errno_error(err, errno, "creating directory", buf);
            *p = c;
            if (c == '\0')
                break;
        }
    }
    struct stat sb;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return rf_error_set(err, RF_EIO, "%s exists and is not a directory", dir);
    return 0;
}
