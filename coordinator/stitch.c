/* stitch.c - where outputs may go, and joining a job's segments into its output.
 *
 * Outputs are confined to the output root: a relative path is taken inside it, an
 * absolute one must lie inside it, a ".." component is refused, and the deepest
 * existing directory on the way (symlinks resolved) must be inside the root too. The
 * output appears atomically (temp + fsync + rename + directory fsync) or not at all.
 * Segments are joined by stream copy (common/video, no re-encode) after each stored
 * segment is linked under its container's extension in the state directory; the test
 * mode --concat bytes joins them byte for byte (the fake workers' segments). Never
 * writes outside the root.
 */
#include "coord.h"

#include "atomic_file.h"
#include "log.h"
#include "video.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int s_inside(const char *root, const char *path)
{
    size_t n = strlen(root);
    return strncmp(path, root, n) == 0 &&
           (path[n] == '/' || path[n] == 0 || strcmp(root, "/") == 0);
}

int c_output_resolve(rf_coord *c, const char *path, char *out, size_t cap, rf_error *err)
{
    if (!path) {
        const char *root = c->cfg.output_root ? c->cfg.output_root : ".";
        if (rf_mkdirs(root, 0755, err))
            return rf_error_prefix(err, "--output-root");
        char real[PATH_MAX];
        if (!realpath(root, real))
            return rf_error_set(err, RF_EIO, "--output-root %s: %s", root, strerror(errno));
        snprintf(out, cap, "%s", real);
        return 0;
    }
    const char *root = c->output_root;
    char joined[PATH_MAX];
    if (path[0] == '/')
        snprintf(joined, sizeof(joined), "%s", path);
    else if (snprintf(joined, sizeof(joined), "%s/%s", root, path) >= (int)sizeof(joined))
        return rf_error_set(err, RF_EINVAL, "output.path '%s' is too long", path);
    size_t jl = strlen(joined);
    while (jl > 1 && joined[jl - 1] == '/')
        joined[--jl] = 0;
    for (const char *p = joined; *p;) {
        const char *slash = strchr(p, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen(p);
        if (len == 2 && p[0] == '.' && p[1] == '.')
            return rf_error_set(err, RF_EINVAL,
                                "output.path '%s' contains '..'; give a path inside the output "
                                "root %s",
                                path, root);
        p = slash ? slash + 1 : p + len;
    }
    if (!s_inside(root, joined))
        return rf_error_set(err, RF_EINVAL,
                            "output.path '%s' is outside the output root %s; give a relative "
                            "path or one inside it",
                            path, root);
    /* the deepest existing ancestor, symlinks resolved, must stay inside the root */
    char probe[PATH_MAX];
    snprintf(probe, sizeof(probe), "%s", joined);
    char *slash;
    while ((slash = strrchr(probe, '/')) != NULL) {
        *slash = 0;
        struct stat st;
        if (probe[0] && stat(probe, &st) == 0)
            break;
    }
    char real[PATH_MAX];
    if (!probe[0] || !realpath(probe, real))
        return rf_error_set(err, RF_EINVAL, "output.path '%s': no existing parent", path);
    if (!s_inside(root, real))
        return rf_error_set(err, RF_EINVAL,
                            "output.path '%s' leads outside the output root %s through a "
                            "symbolic link",
                            path, root);
    if (access(real, W_OK) != 0)
        return rf_error_set(err, RF_EIO,
                            "output directory %s is not writable (%s); fix its permissions or "
                            "choose another output.path",
                            real, strerror(errno));
    snprintf(out, cap, "%s", joined);
    return 0;
}

int c_stitch_supported(rf_coord *c, rf_error *err)
{
    (void)c;
    (void)err;
    return 0;
}

/* Stream copy: each segment blob linked (or copied) as DIR/seg-N.EXT, then joined. */
static int s_concat_video(rf_coord *c, c_job *job, const char *path, const char *ext, rf_error *err)
{
    int first = job->ntasks - job->plan->segment_count, n = job->plan->segment_count;
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s/tmp/%s", rf_store_dir(c->store), job->row.id);
    int rc = rf_mkdirs(dir, 0700, err);
    char **paths = rc ? NULL : calloc((size_t)n, sizeof(char *));
    if (!rc && !paths)
        rc = rf_error_set(err, RF_ENOMEM, "out of memory");
    for (int s = 0; !rc && s < n; s++) {
        char blob[PATH_MAX], seg[PATH_MAX + 64];
        rf_store_blob_path(c->store, job->tasks[first + s].row.result, blob, sizeof(blob));
        snprintf(seg, sizeof(seg), "%s/seg-%06d%s%s", dir, s, ext[0] ? "." : "", ext);
        unlink(seg);
        if (link(blob, seg) != 0) {
            void *data = NULL;
            size_t len = 0;
            rc = rf_store_blob_get(c->store, job->tasks[first + s].row.result, &data, &len, err);
            if (!rc)
                rc = rf_atomic_write(seg, data, len, err);
            free(data);
        }
        paths[s] = rc ? NULL : strdup(seg);
        if (!rc && !paths[s])
            rc = rf_error_set(err, RF_ENOMEM, "out of memory");
    }
    if (!rc)
        rc = rf_video_concat((const char *const *)paths, (size_t)n, path, err);
    for (int s = 0; paths && s < n; s++) {
        if (paths[s])
            unlink(paths[s]);
        free(paths[s]);
    }
    free(paths);
    rmdir(dir);
    return rc;
}

/* PNG output (a still, or a frame sequence): the workers' segments are lossless FFV1
 * (8-bit RGB), joined into mkv, then each frame is written as PNG, the same bytes a
 * single-process render writes. */
static int s_png(const char *mkv, const char *path, int fps, rf_error *err)
{
    rf_video_reader *r = rf_video_reader_open(mkv, 0, 0, err);
    if (!r)
        return err->code;
    rf_video_opts vo;
    memset(&vo, 0, sizeof(vo));
    vo.codec = RF_CODEC_PNG;
    vo.width = rf_video_reader_width(r);
    vo.height = rf_video_reader_height(r);
    vo.fps = fps > 0 ? fps : 16;
    vo.crf = -1;
    rf_video_writer *w = rf_video_writer_open(path, &vo, err);
    size_t fb = (size_t)vo.width * (size_t)vo.height * 3;
    uint8_t *rgb = malloc(fb ? fb : 1);
    int rc = !w ? (int)err->code : !rgb ? rf_error_set(err, RF_ENOMEM, "out of memory") : 0;
    for (int got = 1; !rc;) {
        rc = rf_video_reader_read_u8(r, rgb, &got, err);
        if (rc || !got)
            break;
        rc = rf_video_writer_write_u8(w, rgb, err);
    }
    rf_video_reader_close(&r);
    free(rgb);
    if (rc) {
        rf_video_writer_abort(&w);
        return rc;
    }
    return rf_video_writer_close(&w, err);
}

int c_stitch(rf_coord *c, c_job *job, rf_error *err)
{
    int rc = 0;
    const char *path = job->row.output_path;
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash && slash != dir) {
        *slash = 0;
        if (rf_mkdirs(dir, 0755, err))
            return rf_error_prefix(err, "writing the output %s", path);
    }
    if (!c->cfg.concat_bytes && job->spec->output.codec == RF_CODEC_PNG) {
        char mkv[PATH_MAX + 64];
        snprintf(mkv, sizeof(mkv), "%s/tmp/%s.mkv", rf_store_dir(c->store), job->row.id);
        rc = s_concat_video(c, job, mkv, "mkv", err);
        if (!rc)
            rc = s_png(mkv, path, job->spec->fps, err);
        unlink(mkv);
        return rc ? rf_error_prefix(err, "writing the images of %s", path) : 0;
    }
    if (!c->cfg.concat_bytes) {
        rc = s_concat_video(c, job, path, rf_codec_extension(job->spec->output.codec), err);
        return rc ? rf_error_prefix(err, "joining the segments into %s", path) : 0;
    }
    rf_atomic_file *f = rf_atomic_file_begin(path, err);
    if (!f)
        return rf_error_prefix(err, "writing the output");
    int first = job->ntasks - job->plan->segment_count;
    for (int s = 0; !rc && s < job->plan->segment_count; s++) {
        void *data = NULL;
        size_t len = 0;
        rc = rf_store_blob_get(c->store, job->tasks[first + s].row.result, &data, &len, err);
        if (!rc)
            rc = rf_atomic_file_write(f, data, len, err);
        free(data);
    }
    if (rc) {
        rf_atomic_file_abort(&f);
        return rf_error_prefix(err, "writing the output %s", path);
    }
    return rf_atomic_file_commit(&f, err);
}
