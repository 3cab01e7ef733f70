/* farm.c - the coordinator test harness (see farm.h). */
#include "farm.h"

#include "model_id.h"
#include "tests/rf_test.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

static int64_t s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int rf_farm_start(rf_farm *f, const char *name, const char *extra)
{
    if (!f->dir[0]) {
        rf_test_path(f->dir, sizeof(f->dir), name);
        mkdir(f->dir, 0700);
        char p[700];
        snprintf(p, sizeof(p), "%s/models", f->dir);
        mkdir(p, 0700);
        snprintf(p, sizeof(p), "%s/models/fake", f->dir);
        mkdir(p, 0700);
        snprintf(p, sizeof(p), "%s/models/fake/model.json", f->dir);
        const char *mj = "{\"defaults\": {\"negative\": \"blurry\"}, \"decode_warmup\": 1}\n";
        if (rf_test_write_file(p, mj, strlen(mj)))
            return -1;
        snprintf(p, sizeof(p), "%s/models/fake", f->dir);
        rf_hash h;
        if (rf_model_hash(p, &h, f->model_hash, NULL))
            return -1;
        snprintf(p, sizeof(p), "%s/out", f->dir);
        mkdir(p, 0700);
    }
    snprintf(f->wep, sizeof(f->wep), "ipc://%s/w.sock", f->dir);
    snprintf(f->aep, sizeof(f->aep), "ipc://%s/a.sock", f->dir);
    snprintf(f->log, sizeof(f->log), "%s/coord.log", f->dir);
    const char *build = getenv("RF_BUILD");
    char bin[700];
    snprintf(bin, sizeof(bin), "%s/bin/reelfarm-coordinator",
             build ? build : RF_SOURCE_DIR "/build");
    char cmd[4096];
    snprintf(cmd, sizeof(cmd),
             "exec %s --listen %s --api %s --state %s/state --models %s/models --output-root "
             "%s/out --concat bytes --heartbeat-ms 200 --liveness 5 --segment-frames 4 %s %s "
             ">>%s 2>&1",
             bin, f->wep, f->aep, f->dir, f->dir, f->dir, extra ? extra : "",
             getenv("RF_FARM_ARGS") ? getenv("RF_FARM_ARGS") : "", f->log);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* a failed test leaves no coordinator behind */
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    f->pid = pid;
    if (!f->zctx)
        f->zctx = zmq_ctx_new();
    f->api = zmq_socket(f->zctx, ZMQ_DEALER);
    int zero = 0;
    zmq_setsockopt(f->api, ZMQ_LINGER, &zero, sizeof(zero));
    zmq_connect(f->api, f->aep);
    /* wait until it answers */
    for (int i = 0; i < 100; i++) {
        Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
        Reelfarm__StatusRequest sr = REELFARM__STATUS_REQUEST__INIT;
        env.kind_case = REELFARM__ENVELOPE__KIND_STATUS_REQUEST;
        env.status_request = &sr;
        rf_wire_msg rep = {0};
        if (rf_farm_call(f, &env, &rep, 200) == 0) {
            rf_wire_msg_release(&rep);
            return 0;
        }
        int st;
        if (waitpid(f->pid, &st, WNOHANG) == f->pid) {
            f->pid = 0;
            return -1;
        }
    }
    return -1;
}

int rf_farm_stop(rf_farm *f)
{
    if (f->api) {
        zmq_close(f->api);
        f->api = NULL;
    }
    int st = -1;
    if (f->pid > 0) {
        kill(f->pid, SIGTERM);
        if (waitpid(f->pid, &st, 0) != f->pid)
            st = -1;
        f->pid = 0;
    }
    if (f->zctx) {
        zmq_ctx_term(f->zctx);
        f->zctx = NULL;
    }
    return st >= 0 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

void rf_farm_kill(rf_farm *f)
{
    if (f->api) {
        zmq_close(f->api);
        f->api = NULL;
    }
    if (f->pid > 0) {
        kill(f->pid, SIGKILL);
        waitpid(f->pid, NULL, 0);
        f->pid = 0;
    }
}

int rf_farm_call(rf_farm *f, Reelfarm__Envelope *env, rf_wire_msg *reply, int timeout_ms)
{
    env->request_id = ++f->req;
    rf_wire_msg m = {0};
    m.env = env;
    memset(reply, 0, sizeof(*reply));
    if (rf_wire_send(f->api, &m, NULL))
        return -1;
    int64_t end = s_now() + timeout_ms;
    while (s_now() < end) {
        zmq_pollitem_t it = {f->api, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&it, 1, (long)(end - s_now())) <= 0)
            continue;
        int rc = rf_wire_recv(f->api, reply, NULL, NULL);
        if (rc == 0 && reply->env->reply_to == env->request_id &&
            reply->env->kind_case != REELFARM__ENVELOPE__KIND_EVENT)
            return 0;
        rf_wire_msg_release(reply);
    }
    return -1;
}

int rf_farm_submit(rf_farm *f, const char *spec, char *job_id, size_t cap, char *err_out,
                   size_t err_cap)
{
    Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
    Reelfarm__Submit s = REELFARM__SUBMIT__INIT;
    s.spec = (char *)spec;
    s.spec_name = "test.yaml";
    env.kind_case = REELFARM__ENVELOPE__KIND_SUBMIT;
    env.submit = &s;
    rf_wire_msg rep;
    job_id[0] = 0;
    if (err_out)
        err_out[0] = 0;
    if (rf_farm_call(f, &env, &rep, 10000))
        return -1;
    int rc = -1;
    if (rep.env->kind_case == REELFARM__ENVELOPE__KIND_SUBMIT_REPLY) {
        const Reelfarm__SubmitReply *r = rep.env->submit_reply;
        snprintf(job_id, cap, "%s", r->job_id ? r->job_id : "");
        if (r->n_errors && err_out)
            snprintf(err_out, err_cap, "%s|%s", r->errors[0]->field, r->errors[0]->message);
        rc = job_id[0] ? 0 : -1;
    }
    rf_wire_msg_release(&rep);
    return rc;
}

static int s_job_status(rf_farm *f, const char *job_id, int summary, rf_wire_msg *reply,
                        int timeout_ms)
{
    Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
    Reelfarm__JobStatus js = REELFARM__JOB_STATUS__INIT;
    js.job_id = (char *)job_id;
    js.summary = summary;
    env.kind_case = REELFARM__ENVELOPE__KIND_JOB_STATUS;
    env.job_status = &js;
    if (rf_farm_call(f, &env, reply, timeout_ms) != 0)
        return -1;
    if (reply->env->kind_case != REELFARM__ENVELOPE__KIND_JOB_INFO) {
        rf_wire_msg_release(reply);
        return -1;
    }
    return 0;
}

int rf_farm_job_info(rf_farm *f, const char *job_id, rf_wire_msg *reply, int timeout_ms)
{
    return s_job_status(f, job_id, 0, reply, timeout_ms);
}

int rf_farm_job_summary(rf_farm *f, const char *job_id, rf_wire_msg *reply, int timeout_ms)
{
    return s_job_status(f, job_id, 1, reply, timeout_ms);
}

int rf_farm_cancel(rf_farm *f, const char *job_id, rf_wire_msg *reply, int timeout_ms)
{
    Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
    Reelfarm__Cancel c = REELFARM__CANCEL__INIT;
    c.job_id = (char *)job_id;
    env.kind_case = REELFARM__ENVELOPE__KIND_CANCEL;
    env.cancel = &c;
    return rf_farm_call(f, &env, reply, timeout_ms);
}

int rf_farm_retry(rf_farm *f, const char *job_id, rf_wire_msg *reply, int timeout_ms)
{
    Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
    Reelfarm__Retry r = REELFARM__RETRY__INIT;
    r.job_id = (char *)job_id;
    env.kind_case = REELFARM__ENVELOPE__KIND_RETRY;
    env.retry = &r;
    return rf_farm_call(f, &env, reply, timeout_ms);
}

int rf_farm_wait(rf_farm *f, const char *job_id, int timeout_ms)
{
    int64_t end = s_now() + timeout_ms;
    while (s_now() < end) {
        rf_wire_msg rep;
        if (rf_farm_job_summary(f, job_id, &rep, 2000) == 0) {
            int st = (int)rep.env->job_info->state;
            rf_wire_msg_release(&rep);
            if (st == REELFARM__JOB_STATE__JOB_DONE || st == REELFARM__JOB_STATE__JOB_FAILED ||
                st == REELFARM__JOB_STATE__JOB_CANCELED)
                return st;
        }
        usleep(50000);
    }
    return -1;
}

void *rf_farm_read(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return NULL;
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, fp) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(fp);
    if (buf) {
        buf[n] = 0;
        *len = (size_t)n;
    }
    return buf;
}

int rf_farm_log_has(const rf_farm *f, const char *needle)
{
    size_t len;
    char *t = rf_farm_read(f->log, &len);
    int has = t && strstr(t, needle) != NULL;
    free(t);
    return has;
}
