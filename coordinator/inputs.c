/* inputs.c - a job's image, video or continuation input on the farm (ARCHITECTURE.md §2.3).
 *
 * The input becomes a blob once per job: a `file` is read from inside the input root, a
 * URL is downloaded off the loop by the fetch queue (allow-list, size limit, timeouts and
 * retries from the config); either way it is stored by content hash (a blob that exists
 * is reused) and the job's (job id -> blob) mapping is kept in the store's keyed cache
 * under the namespace "job-input", so a restart neither downloads nor reads it again.
 * The coordinator then opens it with common/video (a clip is counted), plans the latent
 * frames it covers, and workers encode them in ENCODE_MEDIA tasks: segments of at most
 * the job's decode segment (its spec's plan.decode_segment) latent frames, each encoded
 * from w frames earlier (the model's warm-up, plan.decode_warmup; a latent-aligned start
 * read as a first frame) and trimmed, so a short clip is one task equal to a
 * single-process encode. A DENOISE chunk holding known frames gets them as
 * one blob "condition/0" in every attempt it gets (fresh, restored, after a restart):
 * they come from stored results only. Never links the engine, never blocks on a network.
 */
#include "coord.h"

#include "fetch.h"
#include "fetchq.h"
#include "log.h"
#include "video.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define S_NAMESPACE "job-input"

enum { S_WAIT = 0, S_FETCHING, S_READY, S_FAILED };

typedef struct s_part {
    int timeline;
    int a, b; /* latent frames [a, b) of the timeline it covers at most */
} s_part;

struct c_inputs {
    rf_input_kind kind;
    int state;
    char hex[RF_HASH_HEX]; /* the input's blob (S_READY) */
    int64_t have;          /* pixel frames of the clip (1 for an image) */
    int known;             /* continue: latent frames of timeline 0 that are known */
    s_part *parts;         /* one per ENCODE_MEDIA task */
    int nparts;
};

struct c_fetches {
    rf_fetchq *q;
    uint64_t *tags; /* job numbers with a download in flight */
    int n, cap;
};

/* ---- planning ------------------------------------------------------------------------- */

/* Latent frames of timeline t the input may cover: a video all of every timeline, an
 * image frame 0 of the first, a continuation at most all but the last frame of the first
 * (the clip's real length is only known once it is counted). */
static int s_cover(rf_input_kind kind, const rf_plan *pl, int t)
{
    int T = pl->timelines[t].latent_frames;
    return kind == RF_INPUT_VIDEO ? T : t > 0 ? 0 : kind == RF_INPUT_IMAGE ? 1 : T - 1;
}

int c_inputs_count(c_job *job, rf_error *err)
{
    const rf_job_spec *sp = job->spec;
    const rf_plan *pl = job->plan;
    if (sp->inputs.kind == RF_INPUT_NONE)
        return 0;
    struct c_inputs *in = calloc(1, sizeof(*in));
    if (!in)
        return rf_error_set(err, RF_ENOMEM, "out of memory planning the input"), -1;
    in->kind = sp->inputs.kind;
    job->in = in;
    if (in->kind == RF_INPUT_CONTINUE && s_cover(in->kind, pl, 0) < 1)
        return rf_error_set(err, RF_EINVAL,
                            "inputs.continue needs a film of at least 5 frames before its "
                            "first cut"),
               -1;
    /* segments of the decode segment's length (fixed in the spec at submit) */
    int S = sp->plan.decode_segment;
    int n = 0;
    for (int t = 0; t < pl->timeline_count; t++)
        n += (s_cover(in->kind, pl, t) + S - 1) / S;
    in->parts = calloc((size_t)(n ? n : 1), sizeof(s_part));
    if (!in->parts)
        return rf_error_set(err, RF_ENOMEM, "out of memory planning the input"), -1;
    for (int t = 0; t < pl->timeline_count; t++) {
        int cover = s_cover(in->kind, pl, t);
        for (int a = 0; a < cover; a += S)
            in->parts[in->nparts++] = (s_part){t, a, a + S < cover ? a + S : cover};
    }
    return in->nparts;
}

void c_inputs_build(c_job *job)
{
    for (int i = 0; i < job->nmedia; i++) {
        c_task *t = &job->tasks[job->ntasks++];
        t->job = job;
        snprintf(t->row.id, sizeof(t->row.id), "%s/media/%d", job->row.id, i);
        t->row.kind = REELFARM__TASK_KIND__TASK_ENCODE_MEDIA;
        t->row.unit = i;
    }
}

void c_inputs_free(c_job *job)
{
    if (!job->in)
        return;
    free(job->in->parts);
    free(job->in);
    job->in = NULL;
}

/* The latent frames [*a, *b) part i really covers (a continuation's known frames are only
 * known once the clip is counted); 0 when it covers none. */
static int s_part_range(const struct c_inputs *in, int i, int *a, int *b)
{
    *a = in->parts[i].a;
    *b = in->parts[i].b;
    if (in->kind == RF_INPUT_CONTINUE && *b > in->known)
        *b = in->known;
    return *b > *a;
}

/* Known latent frames [0, *end) of a timeline: 0 when it has none. */
static int s_known_end(const c_job *job, int timeline)
{
    const struct c_inputs *in = job->in;
    if (!in)
        return 0;
    if (in->kind == RF_INPUT_VIDEO)
        return job->plan->timelines[timeline].latent_frames;
    if (timeline > 0)
        return 0;
    return in->kind == RF_INPUT_IMAGE ? 1 : in->known;
}

/* ---- the input's way into the store ---------------------------------------------------- */

static const char *s_kind_name(rf_input_kind k)
{
    return k == RF_INPUT_IMAGE ? "image" : k == RF_INPUT_VIDEO ? "video" : "clip to continue";
}

static uint64_t s_job_number(const c_job *job)
{
    return strtoull(job->row.id + (strncmp(job->row.id, "job-", 4) == 0 ? 4 : 0), NULL, 10);
}

static void s_fail(rf_coord *c, c_job *job, const char *fmt, const char *msg)
{
    char why[RF_ERROR_MSG_MAX + 256];
    snprintf(why, sizeof(why), fmt, msg);
    job->in->state = S_FAILED;
    c_job_fail(c, job, why);
}

/* The reader's message, without the blob's path (the user knows the input by its name). */
static int s_unreadable(rf_error *err, const char *blob, const char *kind, const char *src)
{
    char why[RF_ERROR_MSG_MAX];
    const char *m = err->msg;
    size_t n = strlen(blob);
    if (strncmp(m, blob, n) == 0 && m[n] == ':')
        m += n + 1 + (m[n + 1] == ' ');
    snprintf(why, sizeof(why), "%s", m);
    return rf_error_set(err, RF_EINVAL, "the %s %s cannot be read as an image or video (%s)", kind,
                        src, why);
}

/* Opens the stored input with common/video: an image must decode, a clip is counted and
 * must be long enough; then the media tasks that cover nothing are done at once. */
static int s_prepare(rf_coord *c, c_job *job, rf_error *err)
{
    struct c_inputs *in = job->in;
    const rf_plan *pl = job->plan;
    const char *src = job->spec->inputs.path;
    char path[4200];
    rf_store_blob_path(c->store, in->hex, path, sizeof(path));
    /* a small target size: only decodability and the count matter here */
    rf_video_reader *r = rf_video_reader_open(path, 16, 16, err);
    if (!r)
        return s_unreadable(err, path, s_kind_name(in->kind), src);
    /* frames the job can use: a video needs `need`, a continuation at most P0 - 4 (one more
     * says it is too long); counting stops there, so the loop decodes no more than that */
    const rf_plan_timeline *last = &pl->timelines[pl->timeline_count - 1];
    const int64_t need = last->output_offset + 4 * (int64_t)(last->latent_frames - 1) + 1;
    const int64_t P0 = 4 * (int64_t)(pl->timelines[0].latent_frames - 1) + 1;
    const int64_t enough = in->kind == RF_INPUT_IMAGE   ? 1
                           : in->kind == RF_INPUT_VIDEO ? need
                                                        : P0 - 3;
    uint8_t px[16 * 16 * 3];
    int64_t n = 0;
    int got = 1, rc = 0;
    while (!rc && got && n < enough) {
        rc = rf_video_reader_read_u8(r, px, &got, err);
        n += !rc && got;
    }
    rf_video_reader_close(&r);
    if (rc)
        return s_unreadable(err, path, s_kind_name(in->kind), src);
    if (n < 1)
        return rf_error_set(err, RF_EINVAL, "the %s %s holds no frame", s_kind_name(in->kind), src);
    in->have = n;
    if (in->kind == RF_INPUT_VIDEO) {
        if (n < need)
            return rf_error_set(err, RF_EINVAL,
                                "the video %s has %lld frames; the film needs %lld (make it "
                                "shorter or give a longer clip)",
                                src, (long long)n, (long long)need);
    } else if (in->kind == RF_INPUT_CONTINUE) {
        if (n > P0 - 4)
            return rf_error_set(err, RF_EINVAL,
                                "the clip to continue %s has more than %lld frames; a "
                                "continuation of it needs a longer film (before any cut) than "
                                "%lld frames, or a shorter clip",
                                src, (long long)(P0 - 4), (long long)pl->timelines[0].pixel_frames);
        in->known = (int)((n - 1) / 4 + 1); /* its first 4k+1 frames */
    }
    for (int i = 0; i < in->nparts; i++) {
        c_task *t = &job->tasks[job->nprompts + i];
        int a, b;
        if (!s_part_range(in, i, &a, &b) && t->row.state != REELFARM__UNIT_STATE__UNIT_DONE) {
            t->row.state = REELFARM__UNIT_STATE__UNIT_DONE; /* the clip is shorter: nothing */
            t->row.result[0] = 0;
            c_task_put(c, t);
        }
    }
    return 0;
}

static void s_ready(rf_coord *c, c_job *job)
{
    rf_error err;
    rf_error_clear(&err);
    if (s_prepare(c, job, &err)) {
        s_fail(c, job, "input: %s", err.msg);
        return;
    }
    job->in->state = S_READY;
    c_job_wake(c, job);
}

/* Stores bytes as the job's input blob and records the mapping. */
static int s_keep(rf_coord *c, c_job *job, const void *data, size_t len, rf_error *err)
{
    int rc = rf_store_begin(c->store, err);
    if (!rc)
        rc = rf_store_blob_put(c->store, data, len, job->row.id, job->in->hex, err);
    if (!rc)
        rc = rf_store_text_put(c->store, S_NAMESPACE, job->row.id, job->in->hex, err);
    return rc;
}

static int s_read_file(const char *path, int64_t max, void **out, size_t *len, rf_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return rf_error_set(err, RF_EIO, "cannot open %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || st.st_size < 0) {
        fclose(f);
        return rf_error_set(err, RF_EIO, "cannot stat %s", path);
    }
    if (max > 0 && st.st_size > max) {
        fclose(f);
        return rf_error_set(err, RF_EINVAL,
                            "%s is %lld bytes, over the farm's limit of %lld "
                            "(limits.max_input_bytes)",
                            path, (long long)st.st_size, (long long)max);
    }
    size_t n = (size_t)st.st_size;
    void *buf = malloc(n ? n : 1);
    if (!buf || fread(buf, 1, n, f) != n) {
        fclose(f);
        free(buf);
        return rf_error_set(err, buf ? RF_EIO : RF_ENOMEM, "cannot read %s", path);
    }
    fclose(f);
    *out = buf;
    *len = n;
    return 0;
}

static rf_fetch_opts s_fetch_opts(rf_coord *c)
{
    rf_fetch_opts o = rf_fetch_opts_default();
    const rf_config *f = c->cfg.config;
    if (!f)
        return o;
    o.hosts = (const char *const *)f->url_hosts.items;
    o.nhosts = f->url_hosts.n;
    if (f->limits.max_input_bytes > 0)
        o.max_bytes = f->limits.max_input_bytes;
    if (f->limits.fetch_timeout_ms > 0)
        o.timeout_ms = f->limits.fetch_timeout_ms;
    if (f->limits.fetch_low_speed_timeout_ms > 0)
        o.low_speed_timeout_ms = f->limits.fetch_low_speed_timeout_ms;
    if (f->limits.fetch_retries >= 0)
        o.retries = (int)f->limits.fetch_retries;
    if (f->limits.fetch_max_redirects >= 0)
        o.max_redirects = (int)f->limits.fetch_max_redirects;
    return o;
}

static int s_in_flight(const rf_coord *c, uint64_t tag)
{
    const struct c_fetches *fs = c->fetches;
    for (int i = 0; fs && i < fs->n; i++)
        if (fs->tags[i] == tag)
            return 1;
    return 0;
}

static int s_download(rf_coord *c, c_job *job, rf_error *err)
{
    if (!c->fetches) {
        c->fetches = calloc(1, sizeof(*c->fetches));
        if (!c->fetches)
            return rf_error_set(err, RF_ENOMEM, "out of memory");
    }
    struct c_fetches *fs = c->fetches;
    if (!fs->q && !(fs->q = rf_fetchq_new(2, err)))
        return err->code;
    if (fs->n == fs->cap) {
        int cap = fs->cap ? fs->cap * 2 : 8;
        void *p = realloc(fs->tags, (size_t)cap * sizeof(*fs->tags));
        if (!p)
            return rf_error_set(err, RF_ENOMEM, "out of memory");
        fs->tags = p;
        fs->cap = cap;
    }
    char dir[4200], dest[4400];
    snprintf(dir, sizeof(dir), "%s/tmp", rf_store_dir(c->store));
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return rf_error_set(err, RF_EIO, "cannot create %s: %s", dir, strerror(errno));
    snprintf(dest, sizeof(dest), "%s/fetch-%s", dir, job->row.id);
    uint64_t tag = s_job_number(job);
    rf_fetch_opts o = s_fetch_opts(c);
    int rc = rf_fetchq_submit(fs->q, tag, job->spec->inputs.path, dest, &o, err);
    if (rc)
        return rc;
    fs->tags[fs->n++] = tag;
    job->in->state = S_FETCHING;
    c_job_event(c, job, "info", "downloading the input %s", job->spec->inputs.path);
    return 0;
}

void c_inputs_start(rf_coord *c, c_job *job)
{
    struct c_inputs *in = job->in;
    if (!in || c_job_terminal(job))
        return;
    rf_error err;
    rf_error_clear(&err);
    if (in->state == S_READY || in->state == S_FETCHING)
        return;
    /* already stored (a restart, a reload, a retry)? */
    if (rf_store_text_get(c->store, S_NAMESPACE, job->row.id, in->hex, NULL) == 0) {
        char path[4200];
        struct stat st;
        rf_store_blob_path(c->store, in->hex, path, sizeof(path));
        if (stat(path, &st) == 0) {
            s_ready(c, job);
            return;
        }
    }
    if (s_in_flight(c, s_job_number(job))) {
        in->state = S_FETCHING;
        return;
    }
    const rf_config *f = c->cfg.config;
    const char *src = job->spec->inputs.path;
    int rc;
    if (job->spec->inputs.is_url) {
        rc = s_download(c, job, &err);
        if (rc)
            s_fail(c, job, "input: %s", err.msg);
        return;
    }
    char real[4096];
    void *data = NULL;
    size_t len = 0;
    rc = rf_fetch_confine(f ? f->input_root : NULL, src, real, sizeof(real), &err);
    if (!rc)
        rc = s_read_file(real, f ? f->limits.max_input_bytes : 0, &data, &len, &err);
    if (rc) {
        s_fail(c, job, "input: %s", err.msg);
        return;
    }
    rc = s_keep(c, job, data, len, &err);
    free(data);
    if (rc) {
        c_store_failed(c, &err); /* the store refused it: the reload reads it again */
        return;
    }
    c_job_event(c, job, "info", "input %s stored (%zu bytes, blob %.12s)", src, len, in->hex);
    s_ready(c, job);
}

int c_inputs_fd(rf_coord *c)
{
    return c->fetches && c->fetches->q ? rf_fetchq_fd(c->fetches->q) : -1;
}

void c_inputs_fetched(rf_coord *c)
{
    struct c_fetches *fs = c->fetches;
    rf_fetch_result r;
    while (fs && fs->q && rf_fetchq_take(fs->q, &r)) {
        for (int i = 0; i < fs->n; i++)
            if (fs->tags[i] == r.tag) {
                fs->tags[i] = fs->tags[--fs->n];
                break;
            }
        char id[RF_STORE_ID_MAX];
        snprintf(id, sizeof(id), "job-%llu", (unsigned long long)r.tag);
        c_job *job = c_job_find(c, id);
        if (!job || !job->in || c_job_terminal(job)) {
            if (r.dest)
                unlink(r.dest);
            rf_fetch_result_clear(&r);
            continue;
        }
        job->in->state = S_WAIT;
        if (r.status) {
            s_fail(c, job, "input: %s", r.error);
        } else {
            rf_error err;
            rf_error_clear(&err);
            void *data = NULL;
            size_t len = 0;
            int rc = s_read_file(r.dest, 0, &data, &len, &err);
            if (rc) {
                s_fail(c, job, "input: %s", err.msg);
                unlink(r.dest);
                rf_fetch_result_clear(&r);
                continue;
            }
            rc = s_keep(c, job, data, len, &err);
            free(data);
            if (rc) {
                c_store_failed(c, &err); /* the reload starts the download again */
            } else {
                c_job_event(c, job, "info", "input %s downloaded (%lld bytes, blob %.12s)",
                            job->spec->inputs.path, (long long)r.bytes, job->in->hex);
                s_ready(c, job);
            }
        }
        if (r.dest)
            unlink(r.dest);
        rf_fetch_result_clear(&r);
    }
}

void c_inputs_stop(rf_coord *c)
{
    if (!c->fetches)
        return;
    rf_fetchq_destroy(&c->fetches->q);
    free(c->fetches->tags);
    free(c->fetches);
    c->fetches = NULL;
}

/* ---- tasks ------------------------------------------------------------------------------ */

int c_inputs_ready(const c_task *t)
{
    const c_job *job = t->job;
    if (!job->in)
        return 1;
    if (job->in->state != S_READY)
        return 0;
    if (t->row.kind != REELFARM__TASK_KIND__TASK_DENOISE)
        return 1;
    /* a chunk waits for the media tasks of its timeline */
    int tl = job->chunks[t->row.unit].plan.timeline;
    for (int i = 0; i < job->in->nparts; i++)
        if (job->in->parts[i].timeline == tl &&
            job->tasks[job->nprompts + i].row.state != REELFARM__UNIT_STATE__UNIT_DONE)
            return 0;
    return 1;
}

/* The pixel frames part i encodes: from *first, *frames of them (4n+1), giving *T latent
 * frames of which the first *drop are warm-up. */
static void s_part_pixels(const c_job *job, int i, int64_t *first, int64_t *frames, int64_t *T,
                          int64_t *drop)
{
    const struct c_inputs *in = job->in;
    int a, b;
    s_part_range(in, i, &a, &b);
    int tl = in->parts[i].timeline;
    int64_t off = in->kind == RF_INPUT_VIDEO ? job->plan->timelines[tl].output_offset : 0;
    int w = job->warmup < a ? job->warmup : a;
    int lo = a - w;
    if (lo == 0) { /* from the clip's (timeline's) first frame: exactly a whole encode */
        *first = off;
        *frames = 4 * (int64_t)(b - 1) + 1;
        *T = b;
    } else { /* from latent lo's last pixel frame, read as a first frame */
        *first = off + 4 * (int64_t)lo;
        *frames = 4 * (int64_t)(b - 1 - lo) + 1;
        *T = b - lo;
    }
    *drop = *T - (b - a);
}

int c_inputs_assign_media(rf_coord *c, c_task *t, Reelfarm__EncodeMedia *em, Reelfarm__BlobRef *ref,
                          rf_wire_blob *blob, void **owned, rf_error *err)
{
    c_job *job = t->job;
    size_t len = 0;
    int rc = rf_store_blob_get(c->store, job->in->hex, owned, &len, err);
    if (rc)
        return rc;
    int64_t first, frames, T, drop;
    s_part_pixels(job, t->row.unit, &first, &frames, &T, &drop);
    memset(blob, 0, sizeof(*blob));
    blob->name = "input";
    blob->dtype = RF_DTYPE_U8;
    blob->ndim = 1;
    blob->shape[0] = (int64_t)len;
    blob->frame_axis = -1;
    blob->data = *owned;
    blob->len = len;
    ref->hash = job->in->hex;
    ref->name = "input";
    ref->size_bytes = len;
    em->input = ref;
    em->size_bytes = len;
    em->first_frame = (uint32_t)first;
    em->frames = (uint32_t)frames;
    em->role = job->in->kind == RF_INPUT_IMAGE   ? REELFARM__MEDIA_ROLE__MEDIA_IMAGE
               : job->in->kind == RF_INPUT_VIDEO ? REELFARM__MEDIA_ROLE__MEDIA_VIDEO
                                                 : REELFARM__MEDIA_ROLE__MEDIA_CONTINUE;
    em->width = (uint32_t)job->spec->width;
    em->height = (uint32_t)job->spec->height;
    return 0;
}

int c_inputs_result(rf_coord *c, c_task *t, rf_wire_msg *msg, rf_error *err)
{
    c_job *job = t->job;
    int64_t first, frames, T, drop;
    s_part_pixels(job, t->row.unit, &first, &frames, &T, &drop);
    const int64_t h = job->spec->height / 8, w = job->spec->width / 8;
    const rf_wire_blob *b = rf_wire_msg_blob(msg, "latent");
    if (!b || b->dtype != RF_DTYPE_F32 || b->ndim != 4 || b->shape[0] != 16 || b->shape[1] != T ||
        b->shape[2] != h || b->shape[3] != w || b->len != (size_t)(16 * T * h * w) * sizeof(float))
        return rf_error_set(err, RF_EPROTO,
                            "ENCODE_MEDIA result needs an f32 'latent' [16, %lld, %lld, %lld]",
                            (long long)T, (long long)h, (long long)w);
    const int64_t keep = T - drop, plane = h * w;
    float *kept = malloc((size_t)(16 * keep * plane) * sizeof(float));
    if (!kept)
        return rf_error_set(err, RF_ENOMEM, "out of memory");
    for (int64_t ch = 0; ch < 16; ch++)
        memcpy(kept + ch * keep * plane, (const float *)b->data + (ch * T + drop) * plane,
               (size_t)(keep * plane) * sizeof(float));
    rf_wire_blob k = *b;
    k.shape[1] = keep;
    k.data = kept;
    k.len = (size_t)(16 * keep * plane) * sizeof(float);
    int rc = c_tensor_put(c, &k, job->row.id, t->row.result, err);
    free(kept);
    return rc;
}

int c_inputs_assign_denoise(rf_coord *c, c_task *t, Reelfarm__Denoise *dn, c_cond_msg *cm,
                            rf_wire_blob *blobs, size_t *nb, rf_error *err)
{
    c_job *job = t->job;
    if (!job->in)
        return 0;
    const c_chunk *ch = &job->chunks[t->row.unit];
    const int tl = ch->plan.timeline;
    const int a = ch->plan.start,
              b = ch->plan.end < s_known_end(job, tl) ? ch->plan.end : s_known_end(job, tl);
    if (a >= b)
        return 0;
    const int64_t h = job->spec->height / 8, w = job->spec->width / 8, plane = h * w;
    const int64_t n = b - a;
    cm->data = malloc((size_t)(16 * n * plane) * sizeof(float));
    if (!cm->data)
        return rf_error_set(err, RF_ENOMEM, "out of memory");
    int filled = 0, rc = 0;
    for (int i = 0; !rc && i < job->in->nparts; i++) {
        int pa, pb;
        if (job->in->parts[i].timeline != tl || !s_part_range(job->in, i, &pa, &pb) || pb <= a ||
            pa >= b)
            continue;
        rf_wire_blob z;
        void *owned = NULL;
        rc = c_tensor_get(c, job->tasks[job->nprompts + i].row.result, "latent", &z, &owned, err);
        if (!rc && (z.ndim != 4 || z.shape[0] != 16 || z.shape[1] != pb - pa || z.shape[2] != h ||
                    z.shape[3] != w))
            rc = rf_error_set(err, RF_EINVAL, "the stored latent of %s has the wrong shape",
                              job->tasks[job->nprompts + i].row.id);
        int lo = pa > a ? pa : a, hi = pb < b ? pb : b;
        for (int64_t c16 = 0; !rc && c16 < 16; c16++)
            memcpy(cm->data + (c16 * n + (lo - a)) * plane,
                   (const float *)z.data + (c16 * (pb - pa) + (lo - pa)) * plane,
                   (size_t)((hi - lo) * plane) * sizeof(float));
        filled += rc ? 0 : hi - lo;
        free(owned);
    }
    if (!rc && filled != n)
        rc = rf_error_set(err, RF_EINVAL,
                          "the input's latent frames [%d, %d) of timeline %d are "
                          "not all encoded",
                          a, b, tl);
    if (rc)
        return rc;
    reelfarm__blob_ref__init(&cm->ref);
    reelfarm__frame_range__init(&cm->fr);
    rf_wire_blob *bl = &blobs[(*nb)++];
    memset(bl, 0, sizeof(*bl));
    bl->name = "condition/0";
    bl->dtype = RF_DTYPE_F32;
    bl->ndim = 4;
    bl->shape[0] = 16;
    bl->shape[1] = n;
    bl->shape[2] = h;
    bl->shape[3] = w;
    bl->frame_axis = 1;
    bl->frame_start = a;
    bl->data = cm->data;
    bl->len = (size_t)(16 * n * plane) * sizeof(float);
    cm->ref.name = "condition/0";
    cm->refp[0] = &cm->ref;
    cm->fr.start = (uint32_t)a;
    cm->fr.end = (uint32_t)b;
    cm->frp[0] = &cm->fr;
    dn->conditions = cm->refp;
    dn->n_conditions = 1;
    dn->condition_frames = cm->frp;
    dn->n_condition_frames = 1;
    dn->strength = job->in->kind == RF_INPUT_VIDEO ? (float)job->spec->inputs.strength : 0.0f;
    return 0;
}
