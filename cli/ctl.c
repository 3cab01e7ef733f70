/* ctl.c - helpers every reelctl command uses: connecting, failing, following a job. */
#include "output.h"
#include "reelctl.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

rf_client *rf_ctl_connect(const rf_ctl *ctl)
{
    rf_error err;
    rf_client *c = rf_client_new_secure(ctl->api, ctl->timeout_ms, ctl->key, ctl->server_key, &err);
    if (!c)
        fprintf(stderr, "reelctl: %s\n", err.msg);
    return c;
}

int rf_ctl_fail(const char *cmd, const rf_error *err)
{
    fprintf(stderr, "reelctl %s: %s\n", cmd, err->msg);
    return err->code == RF_EAGAIN ? 3 : 1;
}

static void s_bar(char *buf, size_t cap, double frac)
{
    int width = 30, fill = (int)(frac * width + 0.5);
    if (fill > width)
        fill = width;
    if (fill < 0)
        fill = 0;
    size_t n = 0;
    buf[n++] = '[';
    for (int i = 0; i < width && n + 2 < cap; i++)
        buf[n++] = i < fill ? '#' : '.';
    buf[n++] = ']';
    buf[n] = '\0';
}

/* One progress line for an event or job snapshot. */
static void s_line(char *out, size_t cap, const char *job, int state, uint64_t done, uint64_t total,
                   uint32_t seg_done, uint32_t seg_total, double rate, double eta)
{
    double frac = 0;
    /* denoising is most of the work; segments finish it */
    if (total)
        frac = 0.9 * (double)done / (double)total;
    if (seg_total)
        frac += 0.1 * (double)seg_done / (double)seg_total;
    if (state == 3)
        frac = 1;
    char bar[40], etas[32];
    s_bar(bar, sizeof(bar), frac);
    rf_fmt_duration(eta, etas, sizeof(etas));
    snprintf(out, cap, "%s %-8s %s %3d%%  steps %llu/%llu  segments %u/%u  %.2f steps/s  ETA %s",
             job, rf_job_state_name(state), bar, (int)(frac * 100 + 0.5), (unsigned long long)done,
             (unsigned long long)total, seg_done, seg_total, rate, etas);
}

int rf_ctl_follow(rf_client *c, const char *job_id, int json)
{
    Reelfarm__Watch w = REELFARM__WATCH__INIT;
    w.job_id = (char *)job_id;
    Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
    env.kind_case = REELFARM__ENVELOPE__KIND_WATCH;
    env.watch = &w;
    rf_wire_msg m;
    uint64_t rid;
    rf_error err;
    if (rf_client_call(c, &env, REELFARM__ENVELOPE__KIND_EVENT, &m, &rid, &err))
        return rf_ctl_fail("watch", &err);
    int tty = isatty(1) && !json;
    char last[512] = "";
    int quiet_ms = 0;
    /* the rate and ETA are measured here when the coordinator does not send them */
    struct timespec ts0;
    clock_gettime(CLOCK_MONOTONIC, &ts0);
    double t_first = -1;
    uint64_t steps_first = 0;
    for (;;) {
        Reelfarm__Event *ev = m.env->event;
        int state = ev->state;
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        double now = (double)(ts.tv_sec - ts0.tv_sec) + (double)(ts.tv_nsec - ts0.tv_nsec) * 1e-9;
        if (t_first < 0 && ev->chunk_steps_done > 0) {
            t_first = now;
            steps_first = ev->chunk_steps_done;
        }
        if (ev->rate <= 0 && t_first >= 0 && now - t_first > 0.5 &&
            ev->chunk_steps_done > steps_first) {
            ev->rate = (double)(ev->chunk_steps_done - steps_first) / (now - t_first);
            ev->eta_seconds = (double)(ev->chunk_steps_total - ev->chunk_steps_done) / ev->rate;
        }
        if (json) {
            json_t *o = json_pack(
                "{s:I, s:s, s:s, s:I, s:I, s:I, s:I, s:f, s:f, s:s}", "seq", (json_int_t)ev->seq,
                "job_id", ev->job_id, "state", rf_job_state_name(state), "chunk_steps_done",
                (json_int_t)ev->chunk_steps_done, "chunk_steps_total",
                (json_int_t)ev->chunk_steps_total, "segments_done", (json_int_t)ev->segments_done,
                "segments_total", (json_int_t)ev->segments_total, "rate", ev->rate, "eta_seconds",
                ev->eta_seconds, "text", ev->text ? ev->text : "");
            char *s = json_dumps(o, JSON_COMPACT);
            printf("%s\n", s);
            fflush(stdout);
            free(s);
            json_decref(o);
        } else {
            char line[512];
            s_line(line, sizeof(line), ev->job_id, state, ev->chunk_steps_done,
                   ev->chunk_steps_total, ev->segments_done, ev->segments_total, ev->rate,
                   ev->eta_seconds);
            if (ev->text && *ev->text && ev->kind != REELFARM__EVENT_KIND__EVENT_PROGRESS)
                printf("%s%s: %s\n", tty ? "\r\033[K" : "", ev->job_id, ev->text);
            if (strcmp(line, last) != 0) {
                if (tty)
                    printf("\r\033[K%s", line);
                else
                    printf("%s\n", line);
                fflush(stdout);
                snprintf(last, sizeof(last), "%s", line);
            }
        }
        rf_wire_msg_release(&m);
        if (state == 3 || state == 4 || state == 5) {
            if (tty)
                printf("\n");
            return state == 3 ? 0 : 1;
        }
        for (;;) {
            int rc = rf_client_next(c, rid, 1000, &m, &err);
            if (rc == 0)
                break;
            if (rc != RF_EAGAIN) {
                if (tty)
                    printf("\n");
                return rf_ctl_fail("watch", &err);
            }
            /* nothing for a while: make sure the coordinator is still there */
            quiet_ms += 1000;
            if (quiet_ms >= 5000) {
                quiet_ms = 0;
                Reelfarm__JobStatus js = REELFARM__JOB_STATUS__INIT;
                js.job_id = (char *)job_id;
                js.summary = 1; /* only its state */
                Reelfarm__Envelope e2 = REELFARM__ENVELOPE__INIT;
                e2.kind_case = REELFARM__ENVELOPE__KIND_JOB_STATUS;
                e2.job_status = &js;
                rf_wire_msg r;
                if (rf_client_call(c, &e2, REELFARM__ENVELOPE__KIND_JOB_INFO, &r, NULL, &err)) {
                    if (tty)
                        printf("\n");
                    return rf_ctl_fail("watch", &err);
                }
                int st = r.env->job_info->state;
                rf_wire_msg_release(&r);
                if (st == 3 || st == 4 || st == 5) {
                    if (tty)
                        printf("\n");
                    return st == 3 ? 0 : 1;
                }
            }
        }
        quiet_ms = 0;
    }
}
