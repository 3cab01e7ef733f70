/* cmd_jobs.c - reelctl's job commands: submit, status, jobs, job, watch, logs, cancel,
 * retry. Each builds one API request, prints the answer as a table or JSON. */
#include "output.h"
#include "reelctl.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int s_help(int argc, char **argv, const char *usage)
{
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("%s", usage);
            return 1;
        }
    return 0;
}

static char *s_read_file(const char *path, size_t *len, rf_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return rf_error_set(err, RF_ENOTFOUND, "cannot open %s", path), NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    if (n < 0 || n > (1 << 20)) {
        fclose(f);
        return rf_error_set(err, RF_EINVAL, "%s is not a job spec (over 1 MiB)", path), NULL;
    }
    char *buf = malloc((size_t)n + 1);
    if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) {
        fclose(f);
        free(buf);
        return rf_error_set(err, RF_EIO, "cannot read %s", path), NULL;
    }
    fclose(f);
    buf[n] = '\0';
    *len = (size_t)n;
    return buf;
}

int rf_ctl_submit_file(rf_client *c, const rf_ctl *ctl, const char *spec, const char *out,
                       char *job, size_t cap)
{
    rf_error err;
    size_t len;
    char *text = s_read_file(spec, &len, &err);
    if (!text)
        return rf_ctl_fail("submit", &err);
    Reelfarm__Submit s = REELFARM__SUBMIT__INIT;
    s.spec = text;
    const char *base = strrchr(spec, '/');
    s.spec_name = (char *)(base ? base + 1 : spec);
    s.output_path = (char *)(out ? out : "");
    Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
    env.kind_case = REELFARM__ENVELOPE__KIND_SUBMIT;
    env.submit = &s;
    rf_wire_msg r;
    int rc = rf_client_call(c, &env, REELFARM__ENVELOPE__KIND_SUBMIT_REPLY, &r, NULL, &err);
    free(text);
    if (rc)
        return rf_ctl_fail("submit", &err);
    const Reelfarm__SubmitReply *sr = r.env->submit_reply;
    snprintf(job, cap, "%s", sr->job_id ? sr->job_id : "");
    if (!job[0]) {
        if (ctl->json) {
            json_t *errs = json_array();
            for (size_t i = 0; i < sr->n_errors; i++)
                json_array_append_new(errs, json_string(sr->errors[i]->message));
            rf_json_print(json_pack("{s:o}", "errors", errs));
        } else {
            fprintf(stderr, "reelctl submit: the coordinator refused %s:\n", spec);
            for (size_t i = 0; i < sr->n_errors; i++)
                fprintf(stderr, "  %s\n", sr->errors[i]->message);
        }
        rc = 1;
    }
    rf_wire_msg_release(&r);
    return rc;
}

int rf_ctl_submit(rf_ctl *ctl, int argc, char **argv)
{
    static const char *usage =
        "usage: reelctl submit SPEC [-o OUTPUT] [--wait]\n\n"
        "Sends the job spec (YAML or JSON) to the coordinator, which validates it and\n"
        "queues it; prints the job id. -o overrides output.path. --wait follows the job\n"
        "with a progress bar and exits 0 when it is done, 1 when it failed.\n";
    if (s_help(argc, argv, usage))
        return 0;
    const char *spec = NULL, *out = NULL;
    int wait = 0;
    for (int i = 1; i < argc; i++) {
        if ((!strcmp(argv[i], "-o") || !strcmp(argv[i], "--output")) && i + 1 < argc)
            out = argv[++i];
        else if (!strcmp(argv[i], "--wait"))
            wait = 1;
        else if (!spec && argv[i][0] != '-')
            spec = argv[i];
        else {
            fprintf(stderr, "reelctl submit: unexpected '%s'\n%s", argv[i], usage);
            return 2;
        }
    }
    if (!spec) {
        fprintf(stderr, "%s", usage);
        return 2;
    }
    rf_client *c = rf_ctl_connect(ctl);
    if (!c)
        return 3;
    char job[128];
    int rc = rf_ctl_submit_file(c, ctl, spec, out, job, sizeof(job));
    if (rc) {
        rf_client_destroy(&c);
        return rc;
    }
    if (ctl->json)
        rf_json_print(json_pack("{s:s}", "job_id", job));
    else
        printf("%s\n", job);
    rc = wait ? rf_ctl_follow(c, job, ctl->json) : 0;
    rf_client_destroy(&c);
    return rc;
}

/* Calls one request expecting kind want; prints failures. */
static int s_call(rf_ctl *ctl, const char *cmd, Reelfarm__Envelope *env, int want, rf_wire_msg *r,
                  rf_client **out)
{
    rf_client *c = rf_ctl_connect(ctl);
    if (!c)
        return 3;
    rf_error err;
    int rc = rf_client_call(c, env, want, r, NULL, &err);
    if (rc) {
        rc = rf_ctl_fail(cmd, &err);
        rf_client_destroy(&c);
        return rc;
    }
    if (out)
        *out = c;
    else
        rf_client_destroy(&c);
    return 0;
}

int rf_ctl_status(rf_ctl *ctl, int argc, char **argv)
{
    if (s_help(argc, argv, "usage: reelctl status\n\nThe farm at a glance.\n"))
        return 0;
    Reelfarm__StatusRequest sr = REELFARM__STATUS_REQUEST__INIT;
    Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
    env.kind_case = REELFARM__ENVELOPE__KIND_STATUS_REQUEST;
    env.status_request = &sr;
    rf_wire_msg r;
    int rc = s_call(ctl, "status", &env, REELFARM__ENVELOPE__KIND_FARM_STATUS, &r, NULL);
    if (rc)
        return rc;
    const Reelfarm__FarmStatus *fs = r.env->farm_status;
    if (ctl->json) {
        json_t *w = json_array();
        for (size_t i = 0; i < fs->n_warnings; i++)
            json_array_append_new(w, json_string(fs->warnings[i]));
        rf_json_print(json_pack(
            "{s:s, s:I, s:I, s:I, s:I, s:I, s:b, s:o}", "coordinator", fs->coordinator, "uptime_ms",
            (json_int_t)fs->uptime_ms, "workers", (json_int_t)fs->workers, "workers_busy",
            (json_int_t)fs->workers_busy, "jobs_queued", (json_int_t)fs->jobs_queued,
            "jobs_running", (json_int_t)fs->jobs_running, "insecure", fs->insecure, "warnings", w));
    } else {
        char up[32];
        rf_fmt_duration((double)fs->uptime_ms / 1000.0, up, sizeof(up));
        printf("coordinator  %s (up %s)\n", fs->coordinator, up);
        printf("workers      %u (%u busy)\n", fs->workers, fs->workers_busy);
        printf("jobs         %u running, %u queued\n", fs->jobs_running, fs->jobs_queued);
        if (fs->insecure)
            printf("WARNING      an endpoint is served without CURVE encryption (--insecure)\n");
        for (size_t i = 0; i < fs->n_warnings; i++)
            printf("WARNING      %s\n", fs->warnings[i]);
    }
    rf_wire_msg_release(&r);
    return 0;
}

static int s_state_parse(const char *s)
{
    static const char *n[] = {"queued", "running", "done", "failed", "canceled"};
    for (int i = 0; i < 5; i++)
        if (!strcmp(s, n[i]))
            return i + 1;
    return -1;
}

static void s_progress_cell(const Reelfarm__JobInfo *j, char *buf, size_t cap)
{
    if (j->state == REELFARM__JOB_STATE__JOB_DONE)
        snprintf(buf, cap, "100%%");
    else if (j->chunk_steps_total)
        snprintf(buf, cap, "%d%%",
                 (int)(90.0 * (double)j->chunk_steps_done / (double)j->chunk_steps_total +
                       (j->segments_total ? 10.0 * j->segments_done / j->segments_total : 0)));
    else
        snprintf(buf, cap, "-");
}

int rf_ctl_jobs(rf_ctl *ctl, int argc, char **argv)
{
    static const char *usage =
        "usage: reelctl jobs [--state STATE]... [--limit N | --all]\n\n"
        "Lists the newest 50 jobs (--limit N: the newest N; --all: every one), newest\n"
        "last, and says how many older ones were left out. STATE: queued, running, done,\n"
        "failed, canceled (repeat --state for several).\n";
    if (s_help(argc, argv, usage))
        return 0;
    Reelfarm__JobListRequest req = REELFARM__JOB_LIST_REQUEST__INIT;
    req.limit = 50;
    Reelfarm__JobState states[5];
    size_t ns = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--state") && i + 1 < argc && ns < 5) {
            int s = s_state_parse(argv[++i]);
            if (s < 0) {
                fprintf(stderr, "reelctl jobs: unknown state '%s'\n%s", argv[i], usage);
                return 2;
            }
            states[ns++] = (Reelfarm__JobState)s;
        } else if (!strcmp(argv[i], "--limit") && i + 1 < argc) {
            char *end;
            long v = strtol(argv[++i], &end, 10);
            if (*end || end == argv[i] || v < 1 || v > 1000000) {
                fprintf(stderr, "reelctl jobs: --limit needs a count from 1 to 1000000, not '%s'\n",
                        argv[i]);
                return 2;
            }
            req.limit = (uint32_t)v;
        } else if (!strcmp(argv[i], "--all")) {
            req.limit = UINT32_MAX;
        } else {
            fprintf(stderr, "reelctl jobs: unexpected '%s'\n%s", argv[i], usage);
            return 2;
        }
    }
    req.n_states = ns;
    req.states = states;
    Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
    env.kind_case = REELFARM__ENVELOPE__KIND_JOB_LIST_REQUEST;
    env.job_list_request = &req;
    rf_wire_msg r;
    int rc = s_call(ctl, "jobs", &env, REELFARM__ENVELOPE__KIND_JOB_LIST, &r, NULL);
    if (rc)
        return rc;
    const Reelfarm__JobList *jl = r.env->job_list;
    if (ctl->json) {
        json_t *a = json_array();
        for (size_t i = 0; i < jl->n_jobs; i++)
            json_array_append_new(a, rf_json_job(jl->jobs[i], 0));
        rf_json_print(a);
    } else {
        static const char *hdr[] = {"JOB", "NAME", "STATE", "PROGRESS",
                                    "ETA", "AGE",  "PRIO",  "OUTPUT"};
        rf_table *t = rf_table_new(8, hdr);
        for (size_t i = 0; i < jl->n_jobs; i++) {
            const Reelfarm__JobInfo *j = jl->jobs[i];
            char prog[16], eta[32], age[32], prio[16];
            s_progress_cell(j, prog, sizeof(prog));
            rf_fmt_duration(j->state == REELFARM__JOB_STATE__JOB_RUNNING ? j->eta_seconds : -1, eta,
                            sizeof(eta));
            rf_fmt_age(j->submitted_ms, age, sizeof(age));
            snprintf(prio, sizeof(prio), "%d", j->priority);
            const char *row[] = {j->job_id, j->name,       rf_job_state_name(j->state),
                                 prog,      eta,           age,
                                 prio,      j->output_path};
            rf_table_row(t, row);
        }
        rf_table_print(&t, stdout);
    }
    if (jl->matched > jl->n_jobs) /* stderr with --json: the array stays parseable */
        fprintf(ctl->json ? stderr : stdout,
                "(%zu newest of %llu jobs shown; %llu older left out: --limit N or --all for "
                "more)\n",
                jl->n_jobs, (unsigned long long)jl->matched,
                (unsigned long long)(jl->matched - jl->n_jobs));
    rf_wire_msg_release(&r);
    return 0;
}

static int s_one_arg(int argc, char **argv, const char *usage, const char **out)
{
    if (argc != 2 || argv[1][0] == '-') {
        fprintf(stderr, "%s", usage);
        return 2;
    }
    *out = argv[1];
    return 0;
}

int rf_ctl_job(rf_ctl *ctl, int argc, char **argv)
{
    static const char *usage = "usage: reelctl job JOB_ID\n\n"
                               "One job in detail: state, timelines, chunks (steps done, worker),\n"
                               "decode segments, rate and ETA, errors.\n";
    if (s_help(argc, argv, usage))
        return 0;
    const char *id;
    if (s_one_arg(argc, argv, usage, &id))
        return 2;
    Reelfarm__JobStatus js = REELFARM__JOB_STATUS__INIT;
    js.job_id = (char *)id;
    Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
    env.kind_case = REELFARM__ENVELOPE__KIND_JOB_STATUS;
    env.job_status = &js;
    rf_wire_msg r;
    int rc = s_call(ctl, "job", &env, REELFARM__ENVELOPE__KIND_JOB_INFO, &r, NULL);
    if (rc)
        return rc;
    const Reelfarm__JobInfo *j = r.env->job_info;
    if (ctl->json) {
        rf_json_print(rf_json_job(j, 1));
        rf_wire_msg_release(&r);
        return 0;
    }
    char prog[16], eta[32], age[32];
    s_progress_cell(j, prog, sizeof(prog));
    rf_fmt_duration(j->eta_seconds, eta, sizeof(eta));
    rf_fmt_age(j->submitted_ms, age, sizeof(age));
    printf("job        %s (%s)\n", j->job_id, j->name);
    printf("state      %s  %s  ETA %s  (%.2f chunk-steps/s)\n", rf_job_state_name(j->state), prog,
           eta, j->rate);
    printf("model      %s  %.16s\n", j->model, j->model_hash);
    printf("video      %ux%u @ %u fps, %u steps\n", j->width, j->height, j->fps, j->steps);
    printf("output     %s\n", j->output_path);
    printf("submitted  %s ago, priority %d\n", age, j->priority);
    printf("progress   chunk-steps %llu/%llu, segments %u/%u\n",
           (unsigned long long)j->chunk_steps_done, (unsigned long long)j->chunk_steps_total,
           j->segments_done, j->segments_total);
    for (size_t t = 0; t < j->n_timelines; t++) {
        const Reelfarm__TimelineInfo *tl = j->timelines[t];
        printf("\ntimeline %u: %u pixel frames (%u latent)\n", tl->index, tl->pixel_frames,
               tl->latent_frames);
        static const char *hdr[] = {"CHUNK", "FRAMES", "STEPS", "STATE", "WORKER"};
        rf_table *tb = rf_table_new(5, hdr);
        for (size_t c = 0; c < tl->n_chunks; c++) {
            const Reelfarm__ChunkInfo *ci = tl->chunks[c];
            char idx[16], fr[32], st[32];
            snprintf(idx, sizeof(idx), "%u", ci->index);
            snprintf(fr, sizeof(fr), "%u-%u", ci->frames ? ci->frames->start : 0,
                     ci->frames ? ci->frames->end : 0);
            snprintf(st, sizeof(st), "%u/%u", ci->steps_done, j->steps);
            const char *row[] = {idx, fr, st, rf_unit_state_name(ci->state), ci->worker};
            rf_table_row(tb, row);
        }
        rf_table_print(&tb, stdout);
    }
    if (j->n_segments) {
        printf("\nsegments\n");
        static const char *hdr[] = {"TIMELINE", "SEGMENT", "FRAMES", "STATE", "WORKER"};
        rf_table *tb = rf_table_new(5, hdr);
        for (size_t s = 0; s < j->n_segments; s++) {
            const Reelfarm__SegmentInfo *si = j->segments[s];
            char tl[16], idx[16], fr[32];
            snprintf(tl, sizeof(tl), "%u", si->timeline);
            snprintf(idx, sizeof(idx), "%u", si->index);
            snprintf(fr, sizeof(fr), "%u-%u", si->frames ? si->frames->start : 0,
                     si->frames ? si->frames->end : 0);
            const char *row[] = {tl, idx, fr, rf_unit_state_name(si->state), si->worker};
            rf_table_row(tb, row);
        }
        rf_table_print(&tb, stdout);
    }
    for (size_t e = 0; e < j->n_errors; e++)
        printf("%serror: %s\n", e == 0 ? "\n" : "", j->errors[e]);
    rf_wire_msg_release(&r);
    return 0;
}

int rf_ctl_watch(rf_ctl *ctl, int argc, char **argv)
{
    static const char *usage =
        "usage: reelctl watch JOB_ID\n\n"
        "Follows a job until it ends: a progress bar with rate and ETA, redrawn in place on\n"
        "a terminal, one line per change when piped (--json: one JSON object per event).\n"
        "Exits 0 when the job is done, 1 when it failed or was canceled.\n";
    if (s_help(argc, argv, usage))
        return 0;
    const char *id;
    if (s_one_arg(argc, argv, usage, &id))
        return 2;
    rf_client *c = rf_ctl_connect(ctl);
    if (!c)
        return 3;
    int rc = rf_ctl_follow(c, id, ctl->json);
    rf_client_destroy(&c);
    return rc;
}

int rf_ctl_logs(rf_ctl *ctl, int argc, char **argv)
{
    static const char *usage = "usage: reelctl logs JOB_ID [--limit N]\n\nA job's log lines.\n";
    if (s_help(argc, argv, usage))
        return 0;
    Reelfarm__LogsRequest lr = REELFARM__LOGS_REQUEST__INIT;
    const char *id = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--limit") && i + 1 < argc)
            lr.limit = (uint32_t)atoi(argv[++i]);
        else if (!id && argv[i][0] != '-')
            id = argv[i];
        else {
            fprintf(stderr, "%s", usage);
            return 2;
        }
    }
    if (!id) {
        fprintf(stderr, "%s", usage);
        return 2;
    }
    lr.job_id = (char *)id;
    Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
    env.kind_case = REELFARM__ENVELOPE__KIND_LOGS_REQUEST;
    env.logs_request = &lr;
    rf_wire_msg r;
    int rc = s_call(ctl, "logs", &env, REELFARM__ENVELOPE__KIND_LOGS_REPLY, &r, NULL);
    if (rc)
        return rc;
    const Reelfarm__LogsReply *lg = r.env->logs_reply;
    json_t *a = ctl->json ? json_array() : NULL;
    for (size_t i = 0; i < lg->n_lines; i++) {
        const Reelfarm__LogLine *l = lg->lines[i];
        if (a) {
            json_array_append_new(a, json_pack("{s:I, s:s, s:s, s:s}", "time_ms",
                                               (json_int_t)l->time_ms, "level", l->level, "comp",
                                               l->comp, "text", l->text));
            continue;
        }
        time_t t = (time_t)(l->time_ms / 1000);
        struct tm tm;
        gmtime_r(&t, &tm);
        char ts[32];
        strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
        printf("%s.%03dZ %-5s %s\n", ts, (int)(l->time_ms % 1000), l->level, l->text);
    }
    if (a)
        rf_json_print(a);
    rf_wire_msg_release(&r);
    return 0;
}

static int s_simple(rf_ctl *ctl, int argc, char **argv, const char *usage, int kind)
{
    if (s_help(argc, argv, usage))
        return 0;
    const char *id;
    if (s_one_arg(argc, argv, usage, &id))
        return 2;
    Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
    Reelfarm__Cancel ca = REELFARM__CANCEL__INIT;
    Reelfarm__Retry re = REELFARM__RETRY__INIT;
    Reelfarm__DrainWorker dw = REELFARM__DRAIN_WORKER__INIT;
    env.kind_case = (Reelfarm__Envelope__KindCase)kind;
    if (kind == REELFARM__ENVELOPE__KIND_CANCEL) {
        ca.job_id = (char *)id;
        env.cancel = &ca;
    } else if (kind == REELFARM__ENVELOPE__KIND_RETRY) {
        re.job_id = (char *)id;
        env.retry = &re;
    } else {
        dw.worker = (char *)id;
        env.drain_worker = &dw;
    }
    rf_wire_msg r;
    int rc = s_call(ctl, argv[0], &env, REELFARM__ENVELOPE__KIND_OK, &r, NULL);
    if (rc)
        return rc;
    if (ctl->json)
        rf_json_print(json_pack("{s:b, s:s}", "ok", 1, "text", r.env->ok->text));
    else
        printf("%s\n", r.env->ok->text && *r.env->ok->text ? r.env->ok->text : "ok");
    rf_wire_msg_release(&r);
    return 0;
}

int rf_ctl_cancel(rf_ctl *ctl, int argc, char **argv)
{
    return s_simple(ctl, argc, argv,
                    "usage: reelctl cancel JOB_ID\n\nStops a job: its running tasks are "
                    "canceled on the workers, nothing more is dispatched.\n",
                    REELFARM__ENVELOPE__KIND_CANCEL);
}

int rf_ctl_retry(rf_ctl *ctl, int argc, char **argv)
{
    return s_simple(ctl, argc, argv,
                    "usage: reelctl retry JOB_ID\n\nRequeues a failed or canceled job; work "
                    "already checkpointed is kept.\n",
                    REELFARM__ENVELOPE__KIND_RETRY);
}

int rf_ctl_drain(rf_ctl *ctl, int argc, char **argv)
{
    return s_simple(ctl, argc, argv,
                    "usage: reelctl drain WORKER\n\nThe worker (id or name) takes no new task, "
                    "hands its chunks back with a checkpoint and exits.\n",
                    REELFARM__ENVELOPE__KIND_DRAIN_WORKER);
}
