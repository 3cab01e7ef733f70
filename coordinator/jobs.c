/* jobs.c - the life of a job: submit (validate, resolve and pin the model, plan, store),
 * resume after a restart, cancel, retry, fail, and the step from "all segments decoded"
 * to "output written, DONE".
 *
 * A job is stored as its effective spec (JSON with the seed, the model's defaults and the
 * plan's inputs filled in: the default negative prompt, the decode warm-up and segment
 * length), so a restart re-parses and re-plans it to exactly the same timelines, chunks,
 * prompts and tasks whatever model.json or the coordinator's settings say by then;
 * tasks, chunks and fused rounds come back from their own rows. Task ids are
 * "<job>/text/<i>", "<job>/denoise/<chunk>", "<job>/decode/<segment>". Nothing here
 * talks to a worker directly; sched.c dispatches what this file queues.
 */
#include "coord.h"

#include "log.h"
#include "model_id.h"

#include <assert.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int c_job_terminal(const c_job *job)
{
    return job->row.state == REELFARM__JOB_STATE__JOB_DONE ||
           job->row.state == REELFARM__JOB_STATE__JOB_FAILED ||
           job->row.state == REELFARM__JOB_STATE__JOB_CANCELED;
}

/* ---- the jobs by id --------------------------------------------------------------- */

static size_t s_id_hash(const char *p, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 1099511628211ull;
    return (size_t)(h ^ h >> 29);
}

static void s_index_put(rf_coord *c, c_job *j)
{
    size_t m = c->jcap - 1;
    size_t i = s_id_hash(j->row.id, strlen(j->row.id)) & m;
    while (c->jmap[i])
        i = (i + 1) & m;
    c->jmap[i] = j;
}

void c_jobs_index_free(rf_coord *c)
{
    free(c->jmap);
    c->jmap = NULL;
    c->jcap = 0;
    c->njobs = 0;
    c_runq_clear(c);
}

/* The job whose id is the first n bytes of id (no scan over the jobs, unless memory for
 * the index ran out). */
static c_job *s_find_n(rf_coord *c, const char *id, size_t n)
{
    if (!c->jcap) {
        for (c_job *j = c->jobs; j; j = j->next)
            if (strncmp(j->row.id, id, n) == 0 && j->row.id[n] == 0)
                return j;
        return NULL;
    }
    size_t m = c->jcap - 1;
    for (size_t i = s_id_hash(id, n) & m; c->jmap[i]; i = (i + 1) & m)
        if (strncmp(c->jmap[i]->row.id, id, n) == 0 && c->jmap[i]->row.id[n] == 0)
            return c->jmap[i];
    return NULL;
}

c_job *c_job_find(rf_coord *c, const char *id)
{
    return s_find_n(c, id, strlen(id));
}

/* The task of job j named task_id (its kind and index parsed: no scan), or NULL. */
static c_task *s_task_in(c_job *j, const char *task_id)
{
    const char *slash = strchr(task_id, '/');
    if (!slash)
        return NULL;
    const char *kind = slash + 1, *num = strchr(kind, '/');
    char *end = NULL;
    long i = num ? strtol(num + 1, &end, 10) : -1;
    c_task *t = NULL;
    if (!num || !end || *end || i < 0 || num[1] < '0' || num[1] > '9')
        return NULL;
    if ((size_t)(num - kind) == 4 && strncmp(kind, "text", 4) == 0 && i < j->nprompts)
        t = &j->tasks[i];
    else if ((size_t)(num - kind) == 5 && strncmp(kind, "media", 5) == 0 && i < j->nmedia)
        t = &j->tasks[j->nprompts + i];
    else if ((size_t)(num - kind) == 7 && strncmp(kind, "denoise", 7) == 0 &&
             i < j->plan->chunk_count)
        t = j->chunks[i].task;
    else if ((size_t)(num - kind) == 6 && strncmp(kind, "decode", 6) == 0 &&
             i < j->plan->segment_count)
        t = &j->tasks[j->ntasks - j->plan->segment_count + i];
    return t && strcmp(t->row.id, task_id) == 0 ? t : NULL;
}

c_task *c_task_find(rf_coord *c, const char *task_id)
{
    /* "<job>/text/<i>", "<job>/denoise/<chunk>", "<job>/decode/<segment>": found by index */
    const char *slash = strchr(task_id, '/');
    if (!slash)
        return NULL;
    c_job *j = s_find_n(c, task_id, (size_t)(slash - task_id));
    return j ? s_task_in(j, task_id) : NULL;
}

int c_task_put(rf_coord *c, c_task *t)
{
    rf_error err;
    if (rf_store_begin(c->store, &err) || rf_store_task_put(c->store, &t->row, &err)) {
        rf_log_kv(RF_LOG_ERROR, "store", "cannot write a task", "task=%s error=\"%s\"", t->row.id,
                  err.msg);
        return err.code;
    }
    return 0;
}

/* The job's progress into its row (what the row answers once the job left memory). */
static void s_row_progress(c_job *job)
{
    job->row.steps_done = (int64_t)c_job_steps_done(job);
    job->row.steps_total = (int64_t)c_job_steps_total(job);
    job->row.segments_done = job->done_segments;
    job->row.segments_total = job->plan->segment_count;
}

static int s_job_put(rf_coord *c, c_job *job)
{
    rf_error err;
    s_row_progress(job);
    if (rf_store_begin(c->store, &err) || rf_store_job_put(c->store, &job->row, &err)) {
        rf_log_kv(RF_LOG_ERROR, "store", "cannot write a job", "job=%s error=\"%s\"", job->row.id,
                  err.msg);
        return err.code;
    }
    return 0;
}

uint64_t c_job_steps_total(const c_job *job)
{
    return (uint64_t)job->plan->chunk_count * (uint64_t)job->spec->steps;
}

uint64_t c_job_steps_done(const c_job *job)
{
    uint64_t n = 0;
    for (int i = 0; i < job->plan->chunk_count; i++) {
        const c_task *t = job->chunks[i].task;
        if (t->row.state == REELFARM__UNIT_STATE__UNIT_DONE)
            n += (uint64_t)job->spec->steps;
        else if (t->row.state == REELFARM__UNIT_STATE__UNIT_RUNNING)
            n += (uint64_t)t->steps_done;
    }
    return n;
}

/* ---- model --------------------------------------------------------------------- */

static int s_model_hash(rf_coord *c, const char *dir, char *hex, rf_error *err)
{
    char mj[4200];
    snprintf(mj, sizeof(mj), "%s/model.json", dir);
    struct stat st;
    int64_t mtime = 0;
    if (stat(mj, &st) == 0 || stat(dir, &st) == 0)
        mtime = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
    for (c_model *m = c->models; m; m = m->next)
        if (strcmp(m->path, dir) == 0 && m->mtime_ns == mtime) {
            snprintf(hex, RF_HASH_HEX, "%s", m->hash);
            return 0;
        }
    rf_hash h;
    int rc = rf_model_hash(dir, &h, hex, err);
    if (rc)
        return rc;
    c_model *m = calloc(1, sizeof(*m));
    if (m && (m->path = strdup(dir)) != NULL) {
        snprintf(m->hash, sizeof(m->hash), "%s", hex);
        m->mtime_ns = mtime;
        m->next = c->models;
        c->models = m;
    } else {
        free(m);
    }
    return 0;
}

/* The decode warm-up when model.json gives none (latent frames). */
#define DEFAULT_WARMUP 4
/* What builds before the spec's plan section accepted as model.json's decode_warmup (a
 * value outside it was ignored for DEFAULT_WARMUP); kept only to re-plan their jobs. */
#define LEGACY_WARMUP_MAX 64

/* defaults.sampler, steps, shift and guidance into what spec left out; a value outside
 * the spec's ranges is refused naming mj. */
static int s_sampler_defaults(const char *mj, json_t *d, rf_job_spec *spec, rf_error *err)
{
    json_t *v;
    if (!(spec->explicit_fields & RF_SPEC_SET_SAMPLER) && (v = json_object_get(d, "sampler"))) {
        int found = -1;
        for (int k = RF_SAMPLER_UNIPC; k <= RF_SAMPLER_DPMPP; k++)
            if (json_is_string(v) && !strcmp(json_string_value(v), rf_sampler_name(k)))
                found = k;
        if (found < 0)
            return rf_error_set(err, RF_EINVAL,
                                "%s: defaults.sampler must be unipc, euler or dpm++; fix the "
                                "model folder or give sampler: in the spec",
                                mj);
        spec->sampler = (rf_sampler_kind)found;
    }
    if (!(spec->explicit_fields & RF_SPEC_SET_STEPS) && (v = json_object_get(d, "steps"))) {
        if (!json_is_integer(v) || json_integer_value(v) < 1 ||
            json_integer_value(v) > RF_SPEC_MAX_STEPS)
            return rf_error_set(err, RF_EINVAL,
                                "%s: defaults.steps must be an integer in [1, %d]; fix the model "
                                "folder or give steps: in the spec",
                                mj, RF_SPEC_MAX_STEPS);
        spec->steps = (int)json_integer_value(v);
    }
    if (!(spec->explicit_fields & RF_SPEC_SET_SHIFT) && (v = json_object_get(d, "shift"))) {
        if (!json_is_number(v) || json_number_value(v) <= 0 ||
            json_number_value(v) > RF_SPEC_MAX_SHIFT)
            return rf_error_set(err, RF_EINVAL,
                                "%s: defaults.shift must be a number in (0, %g]; fix the model "
                                "folder or give shift: in the spec",
                                mj, RF_SPEC_MAX_SHIFT);
        spec->shift = json_number_value(v);
    }
    if (!(spec->explicit_fields & RF_SPEC_SET_GUIDANCE) && (v = json_object_get(d, "guidance"))) {
        if (!json_is_number(v) || json_number_value(v) < 0 ||
            json_number_value(v) > RF_SPEC_MAX_GUIDANCE)
            return rf_error_set(err, RF_EINVAL,
                                "%s: defaults.guidance must be a number in [0, %g]; fix the "
                                "model folder or give guidance: in the spec",
                                mj, RF_SPEC_MAX_GUIDANCE);
        spec->guidance = json_number_value(v);
    }
    return 0;
}

/* What a spec leaves out comes from the model's model.json (read once): the sampler
 * settings (sampler, steps, shift, guidance), so a job renders as the model was meant to
 * be run and as `reelfarm-engine render` does, and the plan's inputs: the negative
 * prompt of shots without one (defaults.negative; without one Wan2.1's, as the engine
 * renders it: model.json sets "" for none) and the decode warm-up (decode_warmup, top
 * level as engine/model_folder.h reads it, or the older defaults.decode_warmup;
 * DEFAULT_WARMUP without one). Without model.json (the official Wan2.1 layout) the spec's
 * own sampler defaults are already Wan2.1's. Applied once at submit:
 * the stored spec carries every value, so a restart or a later change of model.json
 * changes nothing. A value out of range is refused naming model.json and what to fix.
 * legacy: for a job stored before its spec carried the plan's inputs, fills only those,
 * exactly as the builds that stored it did (a bad or missing value is the default, no
 * error). */
static int s_model_json(const char *dir, rf_job_spec *spec, int legacy, rf_error *err)
{
    char mj[4200];
    snprintf(mj, sizeof(mj), "%s/model.json", dir);
    struct stat st;
    json_t *root = NULL;
    if (stat(mj, &st) == 0) {
        json_error_t je;
        root = json_load_file(mj, JSON_REJECT_DUPLICATES, &je);
        if (!root && !legacy)
            return rf_error_set(err, RF_EINVAL, "%s:%d: %s: fix the model folder's model.json", mj,
                                je.line, je.text);
    }
    json_t *d = json_object_get(root, "defaults"), *v;
    int rc = legacy ? 0 : s_sampler_defaults(mj, d, spec, err);
    if (!rc && !spec->plan.negative) {
        /* the engine's default (engine/model_folder.c): Wan2.1's; older builds stored "" */
        const char *neg = legacy ? "" : rf_spec_wan21_negative();
        v = json_object_get(d, "negative");
        if (json_is_string(v) && (legacy || json_string_length(v) <= RF_SPEC_MAX_PROMPT))
            neg = json_string_value(v);
        else if (v && !legacy)
            rc = rf_error_set(err, RF_EINVAL,
                              "%s: defaults.negative must be text of at most %d bytes; fix the "
                              "model folder or give each shot a negative: in the spec",
                              mj, RF_SPEC_MAX_PROMPT);
        if (!rc && !(spec->plan.negative = strdup(neg)))
            rc = rf_error_set(err, RF_ENOMEM, "out of memory reading %s", mj);
    }
    if (!rc && spec->plan.decode_warmup < 0) {
        int max = legacy ? LEGACY_WARMUP_MAX : RF_SPEC_MAX_WARMUP;
        v = json_object_get(root, "decode_warmup");
        if (!v)
            v = json_object_get(d, "decode_warmup");
        spec->plan.decode_warmup = DEFAULT_WARMUP;
        if (json_is_integer(v) && json_integer_value(v) >= 0 && json_integer_value(v) <= max)
            spec->plan.decode_warmup = (int)json_integer_value(v);
        else if (v && !legacy)
            rc = rf_error_set(err, RF_EINVAL,
                              "%s: decode_warmup must be an integer in [0, %d] (latent frames a "
                              "decode segment decodes ahead); fix the model folder",
                              mj, RF_SPEC_MAX_WARMUP);
    }
    json_decref(root);
    return rc;
}

/* ---- building a job's in-memory form ------------------------------------------- */

static int s_prompt_index(c_job *job, const char *text)
{
    for (int i = 0; i < job->nprompts; i++)
        if (strcmp(job->prompts[i], text) == 0)
            return i;
    char *dup = strdup(text);
    if (!dup)
        return -1;
    job->prompts[job->nprompts] = dup;
    return job->nprompts++;
}

/* Plans the job and lays out its tasks (not yet stored) from its spec alone: no setting
 * and no file is read, so a restart re-plans exactly the stored job. */
static int s_job_build(c_job *job, rf_error *err)
{
    const rf_job_spec *sp = job->spec;
    /* the plan's inputs the spec left out were filled in at submit (s_model_json) */
    assert(sp->plan.negative && sp->plan.decode_segment > 0 && sp->plan.decode_warmup >= 0);
    const char *default_neg = sp->plan.negative;
    job->warmup = sp->plan.decode_warmup;
    rf_plan_shot *shots = calloc((size_t)sp->shot_count, sizeof(*shots));
    if (!shots)
        return rf_error_set(err, RF_ENOMEM, "out of memory planning");
    for (int i = 0; i < sp->shot_count; i++) {
        shots[i].frames = (int)sp->shots[i].frames;
        shots[i].cut = i > 0 && sp->shots[i].transition == RF_TRANSITION_CUT;
    }
    rf_plan_params pp = {
        .chunk_latent = (sp->chunk.frames - 1) / 4 + 1,
        .overlap_latent = sp->chunk.overlap / 4,
        .segment_latent = sp->plan.decode_segment,
        .warmup_latent = job->warmup,
    };
    job->plan = rf_plan_new(shots, sp->shot_count, &pp, err);
    free(shots);
    if (!job->plan)
        return rf_error_prefix(err, "planning");
    const rf_plan *pl = job->plan;
    job->sync_every = sp->mode == RF_MODE_LOCKSTEP ? sp->chunk.sync_every : 0;
    job->checkpoint_every = sp->chunk.checkpoint_every;
    job->rounds_total = job->sync_every ? sp->steps / job->sync_every : 0;
    job->prompts = calloc((size_t)sp->shot_count * 2 + 1, sizeof(char *));
    job->text = calloc((size_t)sp->shot_count * 2 + 1, RF_HASH_HEX);
    job->chunks = calloc((size_t)pl->chunk_count, sizeof(c_chunk));
    job->timelines = calloc((size_t)pl->timeline_count, sizeof(c_timeline));
    job->ntasks = 0;
    job->nmedia = c_inputs_count(job, err);
    if (job->nmedia < 0)
        return err->code;
    job->tasks =
        calloc((size_t)(sp->shot_count * 2 + job->nmedia + pl->chunk_count + pl->segment_count),
               sizeof(c_task));
    if (!job->prompts || !job->text || !job->chunks || !job->timelines || !job->tasks)
        return rf_error_set(err, RF_ENOMEM, "out of memory planning");
    int guided = sp->guidance > 1.0;
    for (int i = 0; i < pl->chunk_count; i++) {
        c_chunk *ch = &job->chunks[i];
        ch->plan = pl->chunks[i];
        const rf_spec_shot *shot = &sp->shots[ch->plan.shot];
        ch->prompt = s_prompt_index(job, shot->prompt);
        ch->negative = -1;
        if (guided)
            ch->negative = s_prompt_index(job, shot->negative ? shot->negative : default_neg);
        if (ch->prompt < 0 || (guided && ch->negative < 0))
            return rf_error_set(err, RF_ENOMEM, "out of memory planning");
        snprintf(ch->row.job_id, sizeof(ch->row.job_id), "%s", job->row.id);
        ch->row.timeline = ch->plan.timeline;
        ch->row.index = ch->plan.index;
    }
    for (int i = 0; i < job->nprompts; i++) {
        c_task *t = &job->tasks[job->ntasks++];
        t->job = job;
        snprintf(t->row.id, sizeof(t->row.id), "%s/text/%d", job->row.id, i);
        t->row.kind = REELFARM__TASK_KIND__TASK_ENCODE_TEXT;
        t->row.unit = i;
    }
    c_inputs_build(job);
    for (int i = 0; i < pl->chunk_count; i++) {
        c_task *t = &job->tasks[job->ntasks++];
        t->job = job;
        snprintf(t->row.id, sizeof(t->row.id), "%s/denoise/%d", job->row.id, i);
        t->row.kind = REELFARM__TASK_KIND__TASK_DENOISE;
        t->row.unit = i;
        t->row.step_end = sp->steps;
        job->chunks[i].task = t;
    }
    for (int i = 0; i < pl->segment_count; i++) {
        c_task *t = &job->tasks[job->ntasks++];
        t->job = job;
        snprintf(t->row.id, sizeof(t->row.id), "%s/decode/%d", job->row.id, i);
        t->row.kind = REELFARM__TASK_KIND__TASK_DECODE;
        t->row.unit = i;
    }
    for (int i = 0; i < job->ntasks; i++) {
        snprintf(job->tasks[i].row.job_id, sizeof(job->tasks[i].row.job_id), "%s", job->row.id);
        job->tasks[i].row.state = REELFARM__UNIT_STATE__UNIT_PENDING;
    }
    for (int t = 0; t < pl->timeline_count; t++) {
        c_timeline *tl = &job->timelines[t];
        const rf_plan_timeline *pt = &pl->timelines[t];
        tl->index = t;
        tl->nchunks = pt->chunk_count;
        tl->chunks = calloc((size_t)pt->chunk_count, sizeof(c_chunk *));
        tl->windows = calloc((size_t)pt->chunk_count, sizeof(rf_cs_span));
        if (!tl->chunks || !tl->windows)
            return rf_error_set(err, RF_ENOMEM, "out of memory planning");
        for (int k = 0; k < pt->chunk_count; k++) {
            c_chunk *ch = &job->chunks[pt->first_chunk + k];
            tl->chunks[k] = ch;
            tl->windows[k].start = ch->plan.start;
            tl->windows[k].len = ch->plan.end - ch->plan.start;
            if (tl->windows[k].len > tl->maxlen)
                tl->maxlen = tl->windows[k].len;
        }
    }
    return 0;
}

void c_job_free(c_job *j)
{
    if (!j)
        return;
    for (int i = 0; j->plan && j->chunks && i < j->plan->chunk_count; i++)
        rf_chunk_state_destroy(&j->chunks[i].up);
    for (int i = 0; j->plan && i < j->plan->timeline_count && j->timelines; i++) {
        free(j->timelines[i].chunks);
        free(j->timelines[i].windows);
    }
    for (int i = 0; i < j->nprompts; i++)
        free(j->prompts[i]);
    for (int i = 0; i < j->ntasks; i++)
        rf_store_task_clear(&j->tasks[i].row);
    free(j->prompts);
    free(j->text);
    free(j->tasks);
    free(j->chunks);
    free(j->timelines);
    free(j->model_dir);
    c_inputs_free(j);
    rf_spec_free(&j->spec);
    rf_plan_destroy(&j->plan);
    rf_store_job_clear(&j->row);
    free(j);
}

static void s_index_rebuild(rf_coord *c);

/* Appends job to the jobs (submission order) and the index. */
static void s_job_link(rf_coord *c, c_job *job)
{
    job->next = NULL;
    if (c->jobs_tail)
        c->jobs_tail->next = job;
    else
        c->jobs = job;
    c->jobs_tail = job;
    c->njobs++;
    c_job_wake(c, job);
    if (2 * (size_t)c->njobs <= c->jcap) {
        s_index_put(c, job);
        return;
    }
    s_index_rebuild(c);
}

void c_job_adopt_gone(rf_coord *c, c_job *job)
{
    if (job->row.state >= 0 && job->row.state < 6 && c->jobs_gone[job->row.state] > 0)
        c->jobs_gone[job->row.state]--;
    s_job_link(c, job);
}

void c_jobs_evict(rf_coord *c)
{
    if (!c->evict_pending)
        return;
    c->evict_pending = 0;
    int gone = 0;
    for (c_job *j = c->jobs; j && !gone; j = j->next)
        gone = c_job_terminal(j);
    if (!gone)
        return;
    c_ops_jobs_leaving(c);
    c_job **p = &c->jobs;
    c->jobs_tail = NULL;
    while (*p) {
        c_job *j = *p;
        if (!c_job_terminal(j)) {
            c->jobs_tail = j;
            p = &j->next;
            continue;
        }
        *p = j->next;
        c_job_unqueue(c, j);
        c_ops_job_left(c, j);
        if (j->row.state >= 0 && j->row.state < 6)
            c->jobs_gone[j->row.state]++;
        c->njobs--;
        c_job_free(j);
    }
    s_index_rebuild(c);
    c_leases_rebuild(c); /* the heap may point into the tasks that went */
}

/* (Re)builds the id index over the jobs (without memory: no index, lookups scan). */
static void s_index_rebuild(rf_coord *c)
{
    size_t cap = 64;
    while (cap < 2 * (size_t)c->njobs)
        cap *= 2;
    free(c->jmap);
    c->jmap = calloc(cap, sizeof(*c->jmap));
    c->jcap = c->jmap ? cap : 0;
    for (c_job *j = c->jobs; c->jmap && j; j = j->next)
        s_index_put(c, j);
}

/* ---- submit ---------------------------------------------------------------------- */

int c_job_submit(rf_coord *c, const Reelfarm__Submit *req, rf_spec_diags *diags, char *job_id,
                 rf_error *err)
{
    job_id[0] = 0;
    const char *text = req->spec ? req->spec : "";
    const char *src = req->spec_name && req->spec_name[0] ? req->spec_name : "<spec>";
    rf_job_spec *spec = rf_spec_parse(text, strlen(text), src, diags, err);
    if (!spec)
        return err->code ? err->code : RF_EINVAL;
    int rc = c_ops_admit(c, spec, err);
    if (!rc && req->output_path && req->output_path[0])
        rc = rf_spec_set_output_path(spec, req->output_path, err);
    char out_path[4096];
    if (!rc)
        rc = c_output_resolve(c, spec->output.path, out_path, sizeof(out_path), err);
    if (!rc)
        rc = c_stitch_supported(c, err);
    char *model_dir = NULL;
    char hex[RF_HASH_HEX];
    if (!rc) {
        rc = rf_spec_resolve_model(spec->model, c->cfg.model_dirs, (size_t)c->cfg.n_model_dirs,
                                   &model_dir, err);
        if (!rc)
            rc = s_model_hash(c, model_dir, hex, err);
        if (!rc)
            rc = s_model_json(model_dir, spec, 0, err);
        if (!rc && spec->plan.decode_segment <= 0)
            spec->plan.decode_segment = c->cfg.segment_latent;
        if (rc)
            rf_error_prefix(err, "model '%s'", spec->model);
    }
    if (rc) {
        free(model_dir);
        rf_spec_free(&spec);
        return rc;
    }
    if (!spec->seed_set) {
        uint64_t seed = 0;
        int fd = open("/dev/urandom", O_RDONLY);
        if (fd < 0 || read(fd, &seed, sizeof(seed)) != (ssize_t)sizeof(seed))
            seed = (uint64_t)c_now_ms() * 0x9E3779B97F4A7C15ull;
        if (fd >= 0)
            close(fd);
        spec->seed = seed & 0x7fffffffffffffffull;
        spec->seed_set = 1;
    }
    c_job *job = calloc(1, sizeof(*job));
    char *json = rf_spec_to_json(spec, 0, err);
    if (!job || !json) {
        free(json);
        free(job);
        free(model_dir);
        rf_spec_free(&spec);
        return rf_error_set(err, RF_ENOMEM, "out of memory");
    }
    if (strlen(json) > RF_SPEC_MAX_BYTES) { /* a restart could not parse the stored job */
        rc = rf_error_set(err, RF_EINVAL,
                          "the spec is %zu bytes written out as JSON (the form a job is stored "
                          "in), over the %d bytes a spec may be: quotes, backslashes and "
                          "control characters in prompts take twice the room or more there; "
                          "shorten the prompts",
                          strlen(json), RF_SPEC_MAX_BYTES);
        free(json);
        free(job);
        free(model_dir);
        rf_spec_free(&spec);
        return rc;
    }
    job->spec = spec;
    job->model_dir = model_dir;
    job->row.spec = json;
    job->row.spec_name = strdup(src);
    job->row.name = strdup(spec->name);
    job->row.model = strdup(spec->model);
    job->row.output_path = strdup(out_path);
    snprintf(job->row.model_hash, sizeof(job->row.model_hash), "%s", hex);
    job->row.priority = spec->priority;
    job->row.state = REELFARM__JOB_STATE__JOB_QUEUED;
    job->row.submitted_ms = c_now_ms();
    snprintf(job->row.id, sizeof(job->row.id), "validate");
    rc = s_job_build(job, err);
    if (rc || req->validate_only) {
        c_job_free(job);
        return rc;
    }
    uint64_t n = 0;
    rc = rf_store_begin(c->store, err);
    if (!rc)
        rc = rf_store_next(c->store, "job", &n, err);
    if (rc) {
        c_job_free(job);
        return rc;
    }
    /* ids were laid out under a placeholder: rebuild them under the real id */
    snprintf(job->row.id, sizeof(job->row.id), "job-%llu", (unsigned long long)n);
    for (int i = 0; i < job->ntasks; i++) {
        c_task *t = &job->tasks[i];
        char *slash = strchr(t->row.id, '/');
        char rest[RF_STORE_ID_MAX];
        snprintf(rest, sizeof(rest), "%s", slash);
        snprintf(t->row.id, sizeof(t->row.id), "%s%s", job->row.id, rest);
        snprintf(t->row.job_id, sizeof(t->row.job_id), "%s", job->row.id);
    }
    for (int i = 0; i < job->plan->chunk_count; i++)
        snprintf(job->chunks[i].row.job_id, sizeof(job->chunks[i].row.job_id), "%s", job->row.id);
    s_row_progress(job);
    rc = rf_store_job_put(c->store, &job->row, err);
    for (int i = 0; !rc && i < job->ntasks; i++) {
        c_task *t = &job->tasks[i];
        if (t->row.kind == REELFARM__TASK_KIND__TASK_ENCODE_TEXT &&
            rf_store_text_get(c->store, hex, job->prompts[t->row.unit], job->text[t->row.unit],
                              NULL) == 0) {
            t->row.state = REELFARM__UNIT_STATE__UNIT_DONE; /* cached */
            snprintf(t->row.result, sizeof(t->row.result), "%s", job->text[t->row.unit]);
        }
        rc = rf_store_task_insert(c->store, &t->row, err); /* a new id: no row yet */
    }
    for (int i = 0; !rc && i < job->plan->chunk_count; i++)
        rc = rf_store_chunk_put(c->store, &job->chunks[i].row, err);
    if (rc) {
        rf_store_rollback(c->store);
        c_job_free(job);
        return rc;
    }
    s_job_link(c, job);
    snprintf(job_id, RF_STORE_ID_MAX, "%s", job->row.id);
    c_job_event(c, job, "info",
                "submitted: %d timeline(s), %d chunk(s), %d segment(s), %d steps, model %s "
                "(%.12s), output %s",
                job->plan->timeline_count, job->plan->chunk_count, job->plan->segment_count,
                spec->steps, spec->model, hex, job->row.output_path);
    c_inputs_start(c, job);
    c->dirty = 1;
    return 0;
}

/* ---- resume after a restart ------------------------------------------------------- */

typedef struct s_load {
    rf_coord *c;
    rf_error *err;
    int rc;
    int reload; /* 1: after a refused commit (workers are connected), 0: at start */
    c_job *job;
    struct s_backfill *backfill;
} s_load;

static c_worker *s_live(rf_coord *c, const char *id, const char *name)
{
    c_worker *w = id[0] ? c_worker_find(c, id) : NULL;
    return w && strcmp(w->id, id) == 0 && strcmp(w->name, name) == 0 ? w : NULL;
}

static int s_task_row(void *ctx, const rf_store_task *row)
{
    s_load *L = ctx;
    c_job *job = L->job;
    rf_coord *c = L->c;
    c_task *t = s_task_in(job, row->id); /* by its id: no scan over the tasks */
    if (!t)
        return 0;
    t->row = *row;
    t->row.failed_workers = row->failed_workers ? strdup(row->failed_workers) : NULL;
    t->row.error = row->error ? strdup(row->error) : NULL;
    if (t->row.state == REELFARM__UNIT_STATE__UNIT_RUNNING && !c_job_terminal(job)) {
        c_worker *w = s_live(c, t->row.worker, t->row.worker_name);
        if (w) { /* a reload: the attempt still runs on its connected worker */
            w->running++;
        } else if (t->row.kind == REELFARM__TASK_KIND__TASK_DENOISE && t->row.worker_name[0]) {
            /* its worker probably still holds the chunk: wait for its Hello */
            t->orphan = 1;
            t->row.worker[0] = 0;
            t->row.lease_deadline_ms = c_now_ms() + c->cfg.lease_ms;
            c->orphans++;
        } else {
            t->row.state = REELFARM__UNIT_STATE__UNIT_PENDING; /* its worker must say hello */
            t->row.worker[0] = 0;
        }
    }
    if (t->row.kind == REELFARM__TASK_KIND__TASK_DENOISE &&
        t->row.state == REELFARM__UNIT_STATE__UNIT_RUNNING)
        t->steps_done = t->row.step_begin;
    if (t->row.kind == REELFARM__TASK_KIND__TASK_ENCODE_TEXT &&
        t->row.state == REELFARM__UNIT_STATE__UNIT_DONE && t->row.unit < job->nprompts)
        snprintf(job->text[t->row.unit], RF_HASH_HEX, "%s", t->row.result);
    if (t->row.kind == REELFARM__TASK_KIND__TASK_DECODE &&
        t->row.state == REELFARM__UNIT_STATE__UNIT_DONE)
        job->done_segments++;
    return 0;
}

static int s_chunk_row(void *ctx, const rf_store_chunk *row)
{
    s_load *L = ctx;
    c_job *job = L->job;
    /* the chunk is the timeline's first plus its index: no scan over the chunks */
    const rf_plan *pl = job->plan;
    if (row->timeline < 0 || row->timeline >= pl->timeline_count || row->index < 0 ||
        row->index >= pl->timelines[row->timeline].chunk_count)
        return 0;
    int i0 = pl->timelines[row->timeline].first_chunk + row->index;
    for (int i = i0; i <= i0 && i < pl->chunk_count; i++) {
        c_chunk *ch = &job->chunks[i];
        if (ch->plan.timeline == row->timeline && ch->plan.index == row->index) {
            ch->row = *row;
            const c_task *t = ch->task;
            if (!(t->row.state == REELFARM__UNIT_STATE__UNIT_RUNNING && !t->orphan &&
                  strcmp(t->row.worker, row->worker) == 0))
                ch->row.worker[0] = 0; /* no worker is known to hold it */
        }
    }
    return 0;
}

/* Builds the in-memory job of a stored row, with its tasks and chunks as stored (and its
 * fused rounds when rounds): *out is the job even on failure (NULL only without memory).
 * L->job is set to it (s_task_row and s_chunk_row fill it). */
static int s_job_from_row(s_load *L, const rf_store_job *row, int rounds, c_job **out,
                          rf_error *err)
{
    rf_coord *c = L->c;
    c_job *job = calloc(1, sizeof(*job));
    *out = job;
    if (!job)
        return rf_error_set(err, RF_ENOMEM, "out of memory loading jobs");
    job->row = *row;
    job->row.name = row->name ? strdup(row->name) : NULL;
    job->row.spec = row->spec ? strdup(row->spec) : NULL;
    job->row.spec_name = row->spec_name ? strdup(row->spec_name) : NULL;
    job->row.model = row->model ? strdup(row->model) : NULL;
    job->row.output_path = row->output_path ? strdup(row->output_path) : NULL;
    job->row.error = row->error ? strdup(row->error) : NULL;
    job->spec = rf_spec_parse(job->row.spec ? job->row.spec : "",
                              job->row.spec ? strlen(job->row.spec) : 0, job->row.id, NULL, err);
    int rc = job->spec ? 0 : err->code;
    if (!rc)
        rc = rf_spec_resolve_model(job->spec->model, c->cfg.model_dirs, (size_t)c->cfg.n_model_dirs,
                                   &job->model_dir, err);
    /* A job stored before its spec carried the plan's inputs (plan.negative,
     * decode_warmup, decode_segment): they are read now as the build that stored it read
     * them, from model.json and --segment-frames, and its plan matches its stored rows only
     * if neither changed meanwhile (nothing recorded says what they were). */
    if (!rc && (!job->spec->plan.negative || job->spec->plan.decode_warmup < 0))
        rc = s_model_json(job->model_dir, job->spec, 1, err);
    if (!rc && job->spec->plan.decode_segment <= 0)
        job->spec->plan.decode_segment = c->cfg.segment_latent;
    if (!rc)
        rc = s_job_build(job, err);
    L->job = job;
    if (!rc)
        rc = rf_store_task_each(c->store, job->row.id, s_task_row, L, err);
    if (!rc)
        rc = rf_store_chunk_each(c->store, job->row.id, s_chunk_row, L, err);
    if (!rc && rounds)
        rc = c_rounds_restore(c, job, err);
    return rc;
}

static int s_terminal_state(int state)
{
    return state == REELFARM__JOB_STATE__JOB_DONE || state == REELFARM__JOB_STATE__JOB_FAILED ||
           state == REELFARM__JOB_STATE__JOB_CANCELED;
}

/* A finished job's row without its progress (written before schema 5): the ids whose
 * row is completed after the load (not while the rows are being read). */
typedef struct s_backfill {
    char (*ids)[RF_STORE_ID_MAX];
    int n, cap;
} s_backfill;

static int s_job_row(void *ctx, const rf_store_job *row)
{
    s_load *L = ctx;
    rf_coord *c = L->c;
    if (s_terminal_state(row->state)) {
        /* finished: its row answers for it (c_job_load_gone); it stays out of memory */
        c->jobs_gone[row->state]++;
        s_backfill *bf = L->backfill;
        if (row->steps_total < 0 && bf) {
            if (bf->n == bf->cap) {
                int cap = bf->cap ? bf->cap * 2 : 64;
                void *p = realloc(bf->ids, (size_t)cap * sizeof(*bf->ids));
                if (!p)
                    return 0;
                bf->ids = p;
                bf->cap = cap;
            }
            snprintf(bf->ids[bf->n++], RF_STORE_ID_MAX, "%s", row->id);
        }
        return 0;
    }
    rf_error err;
    c_job *job = NULL;
    int rc = s_job_from_row(L, row, 1, &job, &err);
    if (!job)
        return (L->rc = rf_error_set(L->err, RF_ENOMEM, "out of memory loading jobs"));
    s_job_link(c, job);
    if (rc) {
        c_job_fail(c, job, err.msg);
        return 0;
    }
    if (!L->reload)
        c_job_event(c, job, "info", "resumed after a coordinator restart");
    c_inputs_start(c, job);
    return 0;
}

/* Loads every unfinished job (finished ones are only counted), then completes the rows
 * of finished jobs stored without their progress. */
static int s_load_all(rf_coord *c, int reload, rf_error *err)
{
    s_backfill bf = {0};
    s_load L = {c, err, 0, reload, NULL, &bf};
    memset(c->jobs_gone, 0, sizeof(c->jobs_gone));
    int rc = rf_store_job_each(c->store, s_job_row, &L, err);
    if (!rc)
        rc = L.rc;
    for (int i = 0; !rc && i < bf.n; i++) {
        rf_error e2;
        c_job *job = c_job_load_gone(c, bf.ids[i], 0, &e2);
        if (!job)
            continue; /* its model went away: it is listed without its progress */
        s_job_put(c, job);
        c_job_free(job);
    }
    free(bf.ids);
    return rc;
}

c_job *c_job_load_gone(rf_coord *c, const char *id, int rounds, rf_error *err)
{
    rf_store_job row;
    int rc = rf_store_job_get(c->store, id, &row, err);
    if (rc)
        return NULL;
    c_job *job = NULL;
    s_load L = {c, err, 0, 1, NULL, NULL};
    if (!s_terminal_state(row.state))
        rc = rf_error_set(err, RF_EINVAL, "job %s is not finished", id);
    else
        rc = s_job_from_row(&L, &row, rounds, &job, err);
    rf_store_job_clear(&row);
    if (rc) {
        c_job_free(job);
        return NULL;
    }
    return job;
}

int c_jobs_load(rf_coord *c, rf_error *err)
{
    int rc = s_load_all(c, 0, err);
    return rc ? rc : c_commit(c);
}

int c_jobs_reload(rf_coord *c, rf_error *err)
{
    c_job *old = c->jobs;
    c->jobs = c->jobs_tail = NULL;
    c->njobs = 0;
    if (c->jmap)
        memset(c->jmap, 0, c->jcap * sizeof(*c->jmap));
    c_runq_clear(c); /* it points at the old jobs */
    c->orphans = 0;
    for (c_worker *w = c->workers; w; w = w->next)
        w->running = 0;
    int rc = s_load_all(c, 1, err);
    for (c_job *o = old; o; o = o->next) {
        c_job *n = c_job_find(c, o->row.id);
        if (!n || c_job_terminal(n) || !o->plan || n->plan->chunk_count != o->plan->chunk_count)
            continue;
        memcpy(n->rate_ms, o->rate_ms, sizeof(n->rate_ms));
        memcpy(n->rate_steps, o->rate_steps, sizeof(n->rate_steps));
        n->rate_n = o->rate_n;
        n->rate_head = o->rate_head;
        for (int i = 0; i < o->plan->chunk_count; i++) {
            c_chunk *oc = &o->chunks[i], *nc = &n->chunks[i];
            if (nc->task->row.state != REELFARM__UNIT_STATE__UNIT_RUNNING ||
                nc->task->row.attempt != oc->task->row.attempt)
                continue;
            nc->task->steps_done = oc->task->steps_done;
            if (oc->up && oc->up_round > n->timelines[nc->plan.timeline].fused_round) {
                nc->up = oc->up; /* gathered for a round the store has not fused yet */
                nc->up_round = oc->up_round;
                oc->up = NULL;
            }
        }
    }
    while (old) {
        c_job *j = old;
        old = j->next;
        c_job_free(j);
    }
    c->dirty = 1;
    return rc;
}

void c_jobs_resume(rf_coord *c, int64_t now)
{
    for (c_job *j = c->jobs; j; j = j->next) {
        if (c_job_terminal(j))
            continue;
        for (int i = 0; i < j->ntasks; i++)
            if (j->tasks[i].row.state == REELFARM__UNIT_STATE__UNIT_RUNNING)
                j->tasks[i].row.lease_deadline_ms = now + c->cfg.lease_ms;
        c_rounds_retry(c, j);
    }
    c_results_replay(c);
    for (int i = 0; i < c->nlost; i++) {
        c_task *t = c_task_find(c, c->lost[i].task_id);
        if (t && t->row.state == REELFARM__UNIT_STATE__UNIT_RUNNING &&
            t->row.attempt == c->lost[i].attempt && !c_job_terminal(t->job))
            c_task_requeue(c, t, t->row.worker_name, "its result could not be stored (disk full)",
                           0);
    }
    c->nlost = 0;
}

static int s_resident(const Reelfarm__Hello *h, const c_task *t)
{
    const c_chunk *ch = &t->job->chunks[t->row.unit];
    for (size_t i = 0; i < h->n_resident; i++) {
        const Reelfarm__ChunkKey *k = h->resident[i];
        if (k && k->job_id && strcmp(k->job_id, t->job->row.id) == 0 &&
            (int)k->timeline == ch->plan.timeline && (int)k->chunk == ch->plan.index)
            return 1;
    }
    return 0;
}

void c_jobs_adopt(rf_coord *c, c_worker *w, const Reelfarm__Hello *h)
{
    if (c->orphans <= 0)
        return;
    int left = 0;
    for (c_job *j = c->jobs; j; j = j->next) {
        for (int i = 0; i < j->ntasks && !c_job_terminal(j); i++) {
            c_task *t = &j->tasks[i];
            if (!t->orphan)
                continue;
            if (t->row.state != REELFARM__UNIT_STATE__UNIT_RUNNING) {
                t->orphan = 0;
                continue;
            }
            if (strcmp(t->row.worker_name, w->name) != 0) {
                left++;
                continue;
            }
            t->orphan = 0;
            if (!s_resident(h, t)) {
                c_task_requeue(c, t, w->name, "its worker came back without the chunk's state", 0);
                continue;
            }
            snprintf(t->row.worker, sizeof(t->row.worker), "%s", w->id);
            t->row.lease_deadline_ms = c_now_ms() + c->cfg.lease_ms;
            snprintf(j->chunks[t->row.unit].row.worker, RF_STORE_ID_MAX, "%s", w->id);
            w->running++;
            c_task_put(c, t);
            rf_log_kv(RF_LOG_INFO, "sched", "attempt adopted by its returning worker",
                      "task=%s attempt=%llu worker=%s", t->row.id,
                      (unsigned long long)t->row.attempt, w->name);
        }
    }
    c->orphans = left;
}

/* ---- rate and ETA ------------------------------------------------------------------ */

#define RATE_SAMPLES 16

void c_job_rate_sample(c_job *job, int64_t now)
{
    int last = (job->rate_head + RATE_SAMPLES - 1) % RATE_SAMPLES;
    if (job->rate_n > 0 && now - job->rate_ms[last] < 1000)
        return;
    job->rate_ms[job->rate_head] = now;
    job->rate_steps[job->rate_head] = c_job_steps_done(job);
    job->rate_head = (job->rate_head + 1) % RATE_SAMPLES;
    if (job->rate_n < RATE_SAMPLES)
        job->rate_n++;
}

double c_job_rate(const c_job *job, double *eta_seconds)
{
    uint64_t done = c_job_steps_done(job), total = c_job_steps_total(job);
    *eta_seconds = -1;
    if (job->row.state == REELFARM__JOB_STATE__JOB_DONE) {
        *eta_seconds = 0;
        return 0;
    }
    if (c_job_terminal(job) || job->rate_n < 1)
        return 0;
    int first = (job->rate_head + RATE_SAMPLES - job->rate_n) % RATE_SAMPLES;
    int64_t now = c_now_ms(), dt = now - job->rate_ms[first];
    if (dt < 500 || done < job->rate_steps[first])
        return 0;
    double rate = (double)(done - job->rate_steps[first]) * 1000.0 / (double)dt;
    if (rate > 0)
        *eta_seconds = (double)(total - done) / rate;
    return rate;
}

/* ---- transitions ------------------------------------------------------------------ */

static void s_finish(rf_coord *c, c_job *job, int state)
{
    c->evict_pending = 1; /* it leaves memory once this state is committed */
    job->row.state = state;
    job->row.finished_ms = c_now_ms();
    for (int i = 0; i < job->ntasks; i++) {
        c_task *t = &job->tasks[i];
        if (t->row.state == REELFARM__UNIT_STATE__UNIT_RUNNING)
            c_cancel_attempt(
                c, t, state == REELFARM__JOB_STATE__JOB_CANCELED ? "job canceled" : "job failed");
    }
    for (int i = 0; i < job->plan->chunk_count; i++)
        rf_chunk_state_destroy(&job->chunks[i].up);
    s_job_put(c, job);
    c_job_notify(c, job, REELFARM__EVENT_KIND__EVENT_JOB_STATE);
}

void c_job_fail(rf_coord *c, c_job *job, const char *why)
{
    if (c_job_terminal(job))
        return;
    free(job->row.error);
    job->row.error = strdup(why);
    c_job_event(c, job, "error", "job failed: %s", why);
    s_finish(c, job, REELFARM__JOB_STATE__JOB_FAILED);
}

void c_job_cancel(rf_coord *c, c_job *job, const char *why)
{
    if (c_job_terminal(job))
        return;
    c_job_event(c, job, "info", "canceled: %s", why);
    s_finish(c, job, REELFARM__JOB_STATE__JOB_CANCELED);
}

int c_job_retry(rf_coord *c, c_job *job, rf_error *err)
{
    if (job->row.state != REELFARM__JOB_STATE__JOB_FAILED &&
        job->row.state != REELFARM__JOB_STATE__JOB_CANCELED)
        return rf_error_set(err, RF_EINVAL,
                            "job %s is not failed or canceled; only those can be retried",
                            job->row.id);
    for (int i = 0; i < job->ntasks; i++) {
        c_task *t = &job->tasks[i];
        if (t->row.state == REELFARM__UNIT_STATE__UNIT_DONE)
            continue;
        t->row.state = REELFARM__UNIT_STATE__UNIT_PENDING;
        t->row.failures = 0;
        t->row.worker[0] = 0;
        free(t->row.failed_workers);
        t->row.failed_workers = NULL;
        free(t->row.error);
        t->row.error = NULL;
        c_task_put(c, t);
    }
    free(job->row.error);
    job->row.error = NULL;
    job->ready_from = 0;
    job->row.state = REELFARM__JOB_STATE__JOB_QUEUED;
    job->row.finished_ms = 0;
    c_job_wake(c, job); /* back among the unfinished jobs */
    s_job_put(c, job);
    c_job_event(c, job, "info", "retried");
    c_inputs_start(c, job);
    c->dirty = 1;
    return 0;
}

void c_job_advance(rf_coord *c, c_job *job)
{
    if (c_job_terminal(job))
        return;
    if (job->row.state == REELFARM__JOB_STATE__JOB_QUEUED) {
        job->row.state = REELFARM__JOB_STATE__JOB_RUNNING;
        job->row.started_ms = c_now_ms();
        s_job_put(c, job);
        c_job_notify(c, job, REELFARM__EVENT_KIND__EVENT_JOB_STATE);
    }
    /* a DONE task stays DONE (retry keeps them), so the first unfinished one only moves on */
    while (job->done_upto < job->ntasks &&
           job->tasks[job->done_upto].row.state == REELFARM__UNIT_STATE__UNIT_DONE)
        job->done_upto++;
    if (job->done_upto < job->ntasks)
        return;
    rf_error err;
    if (c_stitch(c, job, &err)) {
        c_job_fail(c, job, err.msg);
        return;
    }
    c_job_event(c, job, "info", "done: wrote %s", job->row.output_path);
    s_finish(c, job, REELFARM__JOB_STATE__JOB_DONE);
}

/* ---- JobInfo ---------------------------------------------------------------------- */

/* A chunk's (a segment's) info with its frame range: one block of them per timeline (and
 * one for the segments), freed through the first entry, so a job of 10,000 chunks is not
 * 20,000 mallocs per JobStatus. */
typedef struct s_chunk_item {
    Reelfarm__ChunkInfo ci; /* first: the block's address */
    Reelfarm__FrameRange fr;
} s_chunk_item;

typedef struct s_segment_item {
    Reelfarm__SegmentInfo si; /* first: the block's address */
    Reelfarm__FrameRange fr;
} s_segment_item;

static void s_range(Reelfarm__FrameRange *r, int a, int b)
{
    reelfarm__frame_range__init(r);
    r->start = (uint32_t)a;
    r->end = (uint32_t)b;
}

void c_job_fill_info(const c_job *job, Reelfarm__JobInfo *info, int detail)
{
    reelfarm__job_info__init(info);
    info->job_id = (char *)job->row.id;
    info->name = job->row.name ? job->row.name : "";
    info->state = job->row.state;
    info->priority = job->row.priority;
    info->model = job->row.model ? job->row.model : "";
    info->model_hash = (char *)job->row.model_hash;
    info->output_path = job->row.output_path ? job->row.output_path : "";
    info->submitted_ms = (uint64_t)job->row.submitted_ms;
    info->started_ms = (uint64_t)job->row.started_ms;
    info->finished_ms = (uint64_t)job->row.finished_ms;
    info->mode = job->spec->mode == RF_MODE_LOCKSTEP ? REELFARM__MODE__MODE_LOCKSTEP
                                                     : REELFARM__MODE__MODE_INDEPENDENT;
    info->steps = (uint32_t)job->spec->steps;
    info->width = (uint32_t)job->spec->width;
    info->height = (uint32_t)job->spec->height;
    info->fps = (uint32_t)job->spec->fps;
    info->chunk_steps_done = c_job_steps_done(job);
    info->chunk_steps_total = c_job_steps_total(job);
    info->segments_done = (uint32_t)job->done_segments;
    info->segments_total = (uint32_t)job->plan->segment_count;
    info->rate = c_job_rate(job, &info->eta_seconds);
    if (job->row.error && job->row.error[0]) {
        info->errors = malloc(sizeof(char *));
        if (info->errors) {
            info->errors[0] = job->row.error;
            info->n_errors = 1;
        }
    }
    if (!detail)
        return;
    const rf_plan *pl = job->plan;
    info->timelines = calloc((size_t)pl->timeline_count, sizeof(*info->timelines));
    info->segments = calloc((size_t)pl->segment_count, sizeof(*info->segments));
    if (!info->timelines || !info->segments)
        return;
    for (int t = 0; t < pl->timeline_count; t++) {
        Reelfarm__TimelineInfo *ti = malloc(sizeof(*ti));
        if (!ti)
            return;
        reelfarm__timeline_info__init(ti);
        info->timelines[info->n_timelines++] = ti;
        ti->index = (uint32_t)t;
        ti->latent_frames = (uint32_t)pl->timelines[t].latent_frames;
        ti->pixel_frames = (uint32_t)pl->timelines[t].pixel_frames;
        int n = job->timelines[t].nchunks;
        ti->chunks = calloc((size_t)n, sizeof(*ti->chunks));
        s_chunk_item *items = ti->chunks && n > 0 ? malloc((size_t)n * sizeof(*items)) : NULL;
        for (int k = 0; items && k < n; k++) {
            const c_chunk *ch = job->timelines[t].chunks[k];
            Reelfarm__ChunkInfo *ci = &items[k].ci;
            reelfarm__chunk_info__init(ci);
            ti->chunks[ti->n_chunks++] = ci;
            ci->index = (uint32_t)k;
            s_range(&items[k].fr, ch->plan.start, ch->plan.end);
            ci->frames = &items[k].fr;
            ci->state = ch->task->row.state;
            ci->steps_done = ch->task->row.state == REELFARM__UNIT_STATE__UNIT_DONE
                                 ? (uint32_t)job->spec->steps
                                 : (uint32_t)ch->task->steps_done;
            ci->worker = (char *)ch->task->row.worker;
        }
    }
    int first_decode = job->ntasks - pl->segment_count;
    s_segment_item *items =
        pl->segment_count > 0 ? malloc((size_t)pl->segment_count * sizeof(*items)) : NULL;
    for (int s = 0; items && s < pl->segment_count; s++) {
        Reelfarm__SegmentInfo *si = &items[s].si;
        reelfarm__segment_info__init(si);
        info->segments[info->n_segments++] = si;
        si->timeline = (uint32_t)pl->segments[s].timeline;
        si->index = (uint32_t)s;
        s_range(&items[s].fr, pl->segments[s].start, pl->segments[s].end);
        si->frames = &items[s].fr;
        si->state = job->tasks[first_decode + s].row.state;
        si->worker = (char *)job->tasks[first_decode + s].row.worker;
    }
}

void c_job_row_info(const rf_store_job *row, Reelfarm__JobInfo *info)
{
    reelfarm__job_info__init(info);
    info->job_id = (char *)row->id;
    info->name = row->name ? row->name : "";
    info->state = row->state;
    info->priority = row->priority;
    info->model = row->model ? row->model : "";
    info->model_hash = (char *)row->model_hash;
    info->output_path = row->output_path ? row->output_path : "";
    info->submitted_ms = (uint64_t)row->submitted_ms;
    info->started_ms = (uint64_t)row->started_ms;
    info->finished_ms = (uint64_t)row->finished_ms;
    rf_error err;
    rf_job_spec *sp = rf_spec_parse(row->spec ? row->spec : "", row->spec ? strlen(row->spec) : 0,
                                    row->id, NULL, &err);
    if (sp) {
        info->mode = sp->mode == RF_MODE_LOCKSTEP ? REELFARM__MODE__MODE_LOCKSTEP
                                                  : REELFARM__MODE__MODE_INDEPENDENT;
        info->steps = (uint32_t)sp->steps;
        info->width = (uint32_t)sp->width;
        info->height = (uint32_t)sp->height;
        info->fps = (uint32_t)sp->fps;
        rf_spec_free(&sp);
    }
    if (row->steps_total >= 0) {
        info->chunk_steps_done = (uint64_t)row->steps_done;
        info->chunk_steps_total = (uint64_t)row->steps_total;
        info->segments_done = (uint32_t)row->segments_done;
        info->segments_total = (uint32_t)row->segments_total;
    }
    info->eta_seconds = row->state == REELFARM__JOB_STATE__JOB_DONE ? 0 : -1;
    if (row->error && row->error[0]) {
        info->errors = malloc(sizeof(char *));
        if (info->errors) {
            info->errors[0] = row->error;
            info->n_errors = 1;
        }
    }
}

void c_job_free_info(Reelfarm__JobInfo *info)
{
    for (size_t t = 0; t < info->n_timelines; t++) {
        Reelfarm__TimelineInfo *ti = info->timelines[t];
        if (ti->n_chunks > 0)
            free(ti->chunks[0]); /* the block of the timeline's chunk items */
        free(ti->chunks);
        free(ti);
    }
    if (info->n_segments > 0)
        free(info->segments[0]); /* the block of the segment items */
    free(info->timelines);
    free(info->segments);
    free(info->errors);
    reelfarm__job_info__init(info);
}
