/* test_farm_inputs.c - image, video, continuation and still jobs through a running farm.
 *
 * Real binaries on ipc:// sockets with the tiny random model (tests/support/tiny_model):
 * `reelctl render` of each mode must give the frames `reelfarm-engine render` gives for
 * the same settings, byte for byte (a single chunk and a single decode segment: the same
 * engine path); with several chunks, the known frames still come back exactly. Inputs
 * survive a worker killed mid-round (restored chunks get their known frames again) and a
 * coordinator killed and restarted (the input is not read again). URL inputs come from a
 * real HTTP server on loopback (tests/support/http_fixture_server.py); a 404, a hanging
 * server, an oversized body, a redirect loop and a host not allowed fail with their
 * reason, as do an unreadable image and clips too short for what the job asks.
 */
#include "rf_test.h"
#include "support/farm.h"
#include "support/proc.h"
#include "support/tiny_model.h"
#include "video.h"

#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define S  32
#define PX (S * S * 3)

static const char *s_model(void)
{
    static char dir[1024];
    if (!dir[0])
        RF_CHECK(rf_test_tiny_model(dir, sizeof(dir)));
    return dir;
}

/* A moving colour pattern: frame k. */
static void s_pattern(uint8_t *rgb, int k)
{
    for (int y = 0; y < S; y++)
        for (int x = 0; x < S; x++) {
            uint8_t *p = rgb + (y * S + x) * 3;
            p[0] = (uint8_t)((x * 8 + k * 9) & 255);
            p[1] = (uint8_t)((y * 8) & 255);
            p[2] = (uint8_t)(((x + y) * 4 + k * 20) & 255);
        }
}

/* n frames of the pattern: a .png still (n = 1) or a lossless .mkv clip. */
static char *s_media(const char *name, int n)
{
    static char paths[8][1024];
    static int next;
    char *path = paths[next++ % 8];
    rf_test_path(path, 1024, name);
    rf_video_opts vo = {strstr(name, ".png") ? RF_CODEC_PNG : RF_CODEC_FFV1, S, S, 0, 0, 8, -1};
    rf_error err = {0};
    rf_video_writer *w = rf_video_writer_open(path, &vo, &err);
    RF_CHECK_MSG(w, "%s", err.msg);
    uint8_t rgb[PX];
    for (int k = 0; k < n; k++) {
        s_pattern(rgb, k);
        RF_CHECK_EQ_INT(rf_video_writer_write_u8(w, rgb, &err), 0);
    }
    RF_CHECK_MSG(rf_video_writer_close(&w, &err) == 0, "%s", err.msg);
    return path;
}

/* Every frame of a video (or PNG) into one malloc'd buffer (caller frees). */
static uint8_t *s_frames(const char *path, int *n)
{
    rf_error err = {0};
    rf_video_reader *r = rf_video_reader_open(path, 0, 0, &err);
    RF_CHECK_MSG(r, "%s", err.msg);
    RF_CHECK_EQ_INT(rf_video_reader_width(r), S);
    static uint8_t one[PX];
    uint8_t *all = NULL;
    *n = 0;
    for (int got = 1;;) {
        RF_CHECK_EQ_INT(rf_video_reader_read_u8(r, one, &got, &err), 0);
        if (!got)
            break;
        uint8_t *p = realloc(all, (size_t)PX * (size_t)(*n + 1));
        RF_CHECK(p);
        all = p;
        memcpy(all + (size_t)PX * (size_t)*n, one, PX);
        (*n)++;
    }
    rf_video_reader_close(&r);
    return all;
}

/* The settings both sides use (the farm's spec defaults are not the model's). */
#define SPEC_HEAD                                                                           \
    "name: %s\nmodel: tiny-model\nwidth: 32\nheight: 32\nseed: 7\nsteps: %d\nguidance: 3\n" \
    "shift: 3\nsampler: unipc\n"
#define PROMPT "a red ball bounces on the grass"

/* reelctl render SPEC -o OUT on `workers` engine workers; returns the process log. */
static char *s_farm_render(const char *name, const char *spec_text, const char *out,
                           const char *workers, int *status)
{
    char spec[600], bin[1024];
    snprintf(spec, sizeof(spec), "%s/%s.yaml", rf_test_tmpdir(), name);
    RF_CHECK_EQ_INT(rf_test_write_file(spec, spec_text, strlen(spec_text)), 0);
    rf_proc_bin(bin, sizeof(bin), "reelctl");
    const char *argv[] = {bin,        "--json",         "render", spec,        "-o",
                          out,        "--workers",      workers,  "--threads", "1",
                          "--models", rf_test_tmpdir(), NULL};
    rf_error err;
    rf_proc *p = rf_proc_start(argv, NULL, &err);
    RF_CHECK_MSG(p, "%s", err.msg);
    RF_CHECK_MSG(rf_proc_wait(p, 300000, status, &err) == 0, "%s", err.msg);
    char *log = rf_proc_log(p, NULL);
    rf_proc_destroy(&p);
    return log;
}

static void s_farm_ok(const char *name, const char *spec_text, const char *out, const char *workers)
{
    int status = -1;
    char *log = s_farm_render(name, spec_text, out, workers, &status);
    RF_CHECK_MSG(status == 0, "reelctl render %s failed: %s", name, log ? log : "");
    free(log);
}

/* reelfarm-engine render with the same settings plus extra arguments (NULL-terminated). */
static void s_engine(const char *out, int frames, int steps, const char *a1, const char *a2,
                     const char *a3, const char *a4)
{
    char bin[1024], fr[16], st[16];
    rf_proc_bin(bin, sizeof(bin), "reelfarm-engine");
    snprintf(fr, sizeof(fr), "%d", frames);
    snprintf(st, sizeof(st), "%d", steps);
    const char *argv[] = {bin,          "render", "--model",   s_model(), "--prompt", PROMPT,
                          "--frames",   fr,       "--size",    "32x32",   "--steps",  st,
                          "--seed",     "7",      "--sampler", "unipc",   "--shift",  "3",
                          "--guidance", "3",      "--threads", "1",       "-o",       out,
                          a1,           a2,       a3,          a4,        NULL};
    rf_error err;
    rf_proc *p = rf_proc_start(argv, NULL, &err);
    RF_CHECK_MSG(p, "%s", err.msg);
    int status = -1;
    RF_CHECK_MSG(rf_proc_wait(p, 300000, &status, &err) == 0, "%s", err.msg);
    char *log = rf_proc_log(p, NULL);
    RF_CHECK_MSG(status == 0, "reelfarm-engine render failed: %s", log ? log : "");
    free(log);
    rf_proc_destroy(&p);
}

/* Frames [0, n) of a and b are equal (n < 0: all, and the counts too). */
static void s_same(const char *a, const char *b, int n, const char *what)
{
    int na, nb;
    uint8_t *fa = s_frames(a, &na), *fb = s_frames(b, &nb);
    if (n < 0) {
        RF_CHECK_MSG(na == nb, "%s: %d frames vs %d", what, na, nb);
        n = na;
    }
    RF_CHECK_MSG(na >= n && nb >= n, "%s: %d and %d frames, %d compared", what, na, nb, n);
    RF_CHECK_MSG(memcmp(fa, fb, (size_t)PX * (size_t)n) == 0,
                 "%s: the farm's frames differ from the engine's", what);
    free(fa);
    free(fb);
}

RF_TEST(each_input_mode_on_the_farm_equals_the_engine)
{
    s_model();
    char *img = s_media("in-image.png", 1);
    char *clip17 = s_media("in-clip17.mkv", 17);
    char *clip11 = s_media("in-clip11.mkv", 11);
    char spec[2048], a[1024], b[1024];
    const char *slash;

    /* image -> video (inputs paths relative to the spec's folder) */
    slash = strrchr(img, '/');
    snprintf(spec, sizeof(spec),
             SPEC_HEAD "inputs:\n  image: %s\nshots:\n  - prompt: " PROMPT "\n    frames: 17\n"
                       "output:\n  codec: ffv1\n",
             "img", 3, slash + 1);
    s_farm_ok("img", spec, rf_test_path(a, sizeof(a), "farm-img.mkv"), "2");
    s_engine(rf_test_path(b, sizeof(b), "eng-img.mkv"), 17, 3, "--image", img, NULL, NULL);
    s_same(a, b, -1, "image -> video");

    /* video -> video at strength 0.5 (an absolute path) */
    snprintf(spec, sizeof(spec),
             SPEC_HEAD "inputs:\n  video: %s\n  strength: 0.5\nshots:\n  - prompt: " PROMPT
                       "\n    frames: 17\noutput:\n  codec: ffv1\n",
             "v2v", 4, clip17);
    s_farm_ok("v2v", spec, rf_test_path(a, sizeof(a), "farm-v2v.mkv"), "2");
    s_engine(rf_test_path(b, sizeof(b), "eng-v2v.mkv"), 17, 4, "--video", clip17, "--strength",
             "0.5");
    s_same(a, b, -1, "video -> video");

    /* continuation: 9 of the clip's 11 frames are known */
    snprintf(spec, sizeof(spec),
             SPEC_HEAD "inputs:\n  continue: %s\nshots:\n  - prompt: " PROMPT
                       "\n    frames: 21\noutput:\n  codec: ffv1\n",
             "cont", 3, clip11);
    s_farm_ok("cont", spec, rf_test_path(a, sizeof(a), "farm-cont.mkv"), "1");
    s_engine(rf_test_path(b, sizeof(b), "eng-cont.mkv"), 21, 3, "--continue", clip11, NULL, NULL);
    s_same(a, b, -1, "continuation");

    /* a still: one PNG */
    snprintf(spec, sizeof(spec), SPEC_HEAD "still: true\nprompt: " PROMPT "\n", "still", 3);
    s_farm_ok("still", spec, rf_test_path(a, sizeof(a), "farm-still.png"), "1");
    s_engine(rf_test_path(b, sizeof(b), "eng-still.png"), 1, 3, NULL, NULL, NULL, NULL);
    s_same(a, b, -1, "still");
    size_t la = 0, lb = 0;
    void *pa = rf_farm_read(a, &la), *pb = rf_farm_read(b, &lb);
    RF_CHECK_MSG(pa && pb && la == lb && memcmp(pa, pb, la) == 0,
                 "the still's PNG file differs from the engine's");
    free(pa);
    free(pb);
}

RF_TEST(known_frames_reach_every_chunk_that_holds_them)
{
    s_model();
    char *clip = s_media("mc-clip11.mkv", 11); /* 9 known frames: latent [0, 3) */
    char spec[2048], a[1024], b[1024];
    /* chunks of 3 latent frames overlapping by 1: the known frames span chunks 0 and 1 */
    snprintf(spec, sizeof(spec),
             SPEC_HEAD "chunk:\n  frames: 9\n  overlap: 4\ninputs:\n  continue: %s\n"
                       "shots:\n  - prompt: " PROMPT "\n    frames: 25\noutput:\n  codec: ffv1\n",
             "mc", 3, clip);
    s_farm_ok("mc", spec, rf_test_path(a, sizeof(a), "farm-mc.mkv"), "2");
    s_engine(rf_test_path(b, sizeof(b), "eng-mc.mkv"), 25, 3, "--continue", clip, NULL, NULL);
    /* the decoder is causal: pixel frames of known latent frames depend on nothing else */
    s_same(a, b, 9, "known frames across chunks");
    int n = 0;
    free(s_frames(a, &n));
    RF_CHECK_EQ_INT(n, 25);
}

/* ---- a farm of our own: coordinator (tests/support/farm) + engine workers ------------ */

/* Workers still running when a check fails are stopped at exit (no stray processes). */
static rf_proc *s_workers[16];

static void s_stop_workers(void)
{
    for (int i = 0; i < 16; i++)
        rf_proc_destroy(&s_workers[i]);
}

/* Kills and reaps a worker started by s_worker. */
static void s_worker_stop(rf_proc *p)
{
    for (int i = 0; i < 16; i++)
        if (s_workers[i] == p)
            rf_proc_destroy(&s_workers[i]);
}

static rf_proc *s_worker(const rf_farm *f, const char *name)
{
    char bin[1024];
    rf_proc_bin(bin, sizeof(bin), "reelfarm-worker");
    const char *argv[] = {bin,       "--coordinator", f->wep, "--backend", "cpu", "--model",
                          s_model(), "--threads",     "1",    "--name",    name,  NULL};
    rf_error err;
    rf_proc *p = rf_proc_start(argv, NULL, &err);
    RF_CHECK_MSG(p, "%s", err.msg);
    static int registered;
    if (!registered++)
        atexit(s_stop_workers);
    for (int i = 0; i < 16; i++)
        if (!s_workers[i]) {
            s_workers[i] = p;
            return p;
        }
    rf_proc_destroy(&p);
    RF_CHECK_MSG(0, "more than 16 workers");
    return NULL;
}

/* Waits for a job to fail and returns its error text (static). */
static const char *s_failure(rf_farm *f, const char *job)
{
    static char text[2048];
    text[0] = 0;
    RF_CHECK_EQ_INT(rf_farm_wait(f, job, 120000), REELFARM__JOB_STATE__JOB_FAILED);
    rf_wire_msg rep;
    RF_CHECK_EQ_INT(rf_farm_job_info(f, job, &rep, 5000), 0);
    const Reelfarm__JobInfo *ji = rep.env->job_info;
    snprintf(text, sizeof(text), "%s", ji->n_errors ? ji->errors[0] : "");
    rf_wire_msg_release(&rep);
    return text;
}

static void s_output(const rf_farm *f, const char *name, char *out, size_t cap)
{
    snprintf(out, cap, "%s/out/%s", f->dir, name);
}

RF_TEST(inputs_survive_a_lost_worker_and_a_coordinator_restart)
{
    s_model();
    static rf_farm f;
    char root[1024], extra[2400], spec[2048], ref[1024], out[1024];
    rf_test_path(root, sizeof(root), "restart-in");
    RF_CHECK_EQ_INT(mkdir(root, 0700), 0);
    char *img = s_media("restart-in/pic.png", 1);
    (void)img;
    /* one decode segment, so the harness's byte concatenation is a whole file */
    snprintf(extra, sizeof(extra), "--input-root %s --models %s --segment-frames 8", root,
             rf_test_tmpdir());
    RF_CHECK_MSG(rf_farm_start(&f, "restart", extra) == 0, "coordinator did not start (%s)", f.log);
    const char *fmt = SPEC_HEAD "chunk:\n  frames: 9\n  overlap: 4\n  checkpoint_every: 1\n"
                                "inputs:\n  image: pic.png\nshots:\n  - prompt: " PROMPT
                                "\n    frames: 21\noutput:\n  codec: ffv1\n  path: %s\n";
    /* the reference: undisturbed, one worker */
    snprintf(spec, sizeof(spec), fmt, "ref", 120, "ref.mkv");
    rf_proc *w1 = s_worker(&f, "w1");
    char job[64], errs[1024];
    RF_CHECK_MSG(rf_farm_submit(&f, spec, job, sizeof(job), errs, sizeof(errs)) == 0, "%s", errs);
    RF_CHECK_EQ_INT(rf_farm_wait(&f, job, 240000), REELFARM__JOB_STATE__JOB_DONE);
    s_output(&f, "ref.mkv", ref, sizeof(ref));

    /* a second worker joins; once the chunks have checkpoints, it is killed */
    rf_proc *w2 = s_worker(&f, "w2");
    for (int i = 0; i < 3000 && !rf_farm_log_has(&f, "name=w2"); i++)
        usleep(20000);
    RF_CHECK_MSG(rf_farm_log_has(&f, "name=w2"), "w2 did not join (%s)", f.log);
    snprintf(spec, sizeof(spec), fmt, "lost", 120, "lost.mkv");
    RF_CHECK_MSG(rf_farm_submit(&f, spec, job, sizeof(job), errs, sizeof(errs)) == 0, "%s", errs);
    int killed = 0;
    for (int i = 0; i < 4000 && !killed; i++) {
        rf_wire_msg rep;
        if (rf_farm_job_info(&f, job, &rep, 5000) == 0) {
            const Reelfarm__JobInfo *ji = rep.env->job_info;
            for (size_t t = 0; t < ji->n_timelines && !killed; t++)
                for (size_t k = 0; k < ji->timelines[t]->n_chunks && !killed; k++) {
                    const Reelfarm__ChunkInfo *ci = ji->timelines[t]->chunks[k];
                    /* placement spreads the chunks: w2 holds one of them */
                    killed = ci->state == REELFARM__UNIT_STATE__UNIT_RUNNING &&
                             ci->steps_done >= 3 && ci->steps_done < 60;
                }
            rf_wire_msg_release(&rep);
        }
        if (!killed)
            usleep(20000);
    }
    RF_CHECK_MSG(killed, "the job never reached step 3 of a running chunk");
    RF_CHECK_EQ_INT(rf_proc_signal(w2, SIGKILL, NULL), 0);
    RF_CHECK_EQ_INT(rf_farm_wait(&f, job, 240000), REELFARM__JOB_STATE__JOB_DONE);
    s_output(&f, "lost.mkv", out, sizeof(out));
    s_same(ref, out, -1, "after a lost worker");
    RF_CHECK_MSG(rf_farm_log_has(&f, "restored from a checkpoint"),
                 "no chunk was restored from a checkpoint (see %s)", f.log);
    s_worker_stop(w2);

    /* the coordinator is killed after the input is encoded, then restarted */
    snprintf(spec, sizeof(spec), fmt, "restart", 120, "restart.mkv");
    RF_CHECK_MSG(rf_farm_submit(&f, spec, job, sizeof(job), errs, sizeof(errs)) == 0, "%s", errs);
    char needle[128];
    snprintf(needle, sizeof(needle), "task=%s/media/0", job);
    for (int i = 0; i < 3000 && !rf_farm_log_has(&f, needle); i++)
        usleep(20000);
    rf_farm_kill(&f);
    RF_CHECK_MSG(rf_farm_start(&f, "restart", extra) == 0, "coordinator did not restart (%s)",
                 f.log);
    RF_CHECK_EQ_INT(rf_farm_wait(&f, job, 240000), REELFARM__JOB_STATE__JOB_DONE);
    s_output(&f, "restart.mkv", out, sizeof(out));
    s_same(ref, out, -1, "after a coordinator restart");
    /* the input was stored once: the restarted coordinator found it in the store */
    size_t len = 0;
    char *log = rf_farm_read(f.log, &len), *at = log;
    int stored = 0;
    while (at && (at = strstr(at, "input pic.png stored")) != NULL) {
        char *eol = strchr(at, '\n');
        stored += eol && strstr(at, job) && strstr(at, job) < eol;
        at = eol;
    }
    free(log);
    RF_CHECK_EQ_INT(stored, 1);
    RF_CHECK(rf_farm_log_has(&f, "resumed after a coordinator restart"));
    RF_CHECK_EQ_INT(rf_farm_stop(&f), 0);
    s_worker_stop(w1);
}

RF_TEST(bad_inputs_fail_their_job_with_the_reason)
{
    s_model();
    static rf_farm f;
    char root[1024], extra[2400], spec[2048], job[64], errs[1024];
    rf_test_path(root, sizeof(root), "bad-in");
    RF_CHECK_EQ_INT(mkdir(root, 0700), 0);
    char junk[1100];
    snprintf(junk, sizeof(junk), "%s/junk.png", root);
    RF_CHECK_EQ_INT(rf_test_write_file(junk, "not a picture", 13), 0);
    s_media("bad-in/clip9.mkv", 9);
    s_media("bad-in/clip21.mkv", 21);
    snprintf(extra, sizeof(extra), "--input-root %s --models %s", root, rf_test_tmpdir());
    RF_CHECK_MSG(rf_farm_start(&f, "bad", extra) == 0, "coordinator did not start (%s)", f.log);
    struct {
        const char *inputs;
        int frames;
        const char *says;
    } cases[] = {
        {"image: junk.png", 17, "cannot be read as an image or video"},
        {"video: clip9.mkv", 17, "has 9 frames; the film needs 17"},
        {"continue: clip21.mkv", 21, "a continuation of it needs a longer film"},
    };
    /* no worker: the coordinator finds these before any task runs */
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(spec, sizeof(spec),
                 SPEC_HEAD "inputs:\n  %s\nshots:\n  - prompt: " PROMPT "\n    frames: %d\n"
                           "output:\n  codec: ffv1\n  path: bad%zu.mkv\n",
                 "bad", 3, cases[i].inputs, cases[i].frames, i);
        RF_CHECK_MSG(rf_farm_submit(&f, spec, job, sizeof(job), errs, sizeof(errs)) == 0, "%s",
                     errs);
        const char *why = s_failure(&f, job);
        RF_CHECK_CONTAINS(why, cases[i].says);
    }
    /* a size the VAE cannot take is refused at submit */
    snprintf(spec, sizeof(spec),
             "name: odd\nmodel: tiny-model\nwidth: 40\nheight: 32\ninputs:\n  image: junk.png\n"
             "shots:\n  - prompt: x\n    frames: 5\n");
    RF_CHECK(rf_farm_submit(&f, spec, job, sizeof(job), errs, sizeof(errs)) != 0);
    RF_CHECK_CONTAINS(errs, "multiple of 16");
    RF_CHECK_EQ_INT(rf_farm_stop(&f), 0);
}

static rf_proc *s_http;

static void s_http_stop(void)
{
    rf_proc_destroy(&s_http);
}

RF_TEST(url_inputs_are_downloaded_once_or_fail_with_the_reason)
{
    if (access("/usr/bin/python3", X_OK) != 0)
        RF_SKIP("/usr/bin/python3 (Debian's) is needed for the HTTP fixture server");
    s_model();
    char files[1024], root[1024];
    rf_test_path(files, sizeof(files), "http-files");
    RF_CHECK_EQ_INT(mkdir(files, 0700), 0);
    rf_test_path(root, sizeof(root), "http-root");
    RF_CHECK_EQ_INT(mkdir(root, 0700), 0);
    s_media("http-files/pic.png", 1);
    s_media("http-root/pic.png", 1);
    int port = 0;
    rf_error err;
    RF_CHECK_EQ_INT(rf_proc_free_port(&port, &err), 0);
    char ports[16], script[1024], ep[64];
    snprintf(ports, sizeof(ports), "%d", port);
    snprintf(script, sizeof(script), "%s/tests/support/http_fixture_server.py", RF_SOURCE_DIR);
    const char *argv[] = {"/usr/bin/python3", script, ports, files, NULL};
    s_http = rf_proc_start(argv, NULL, &err);
    RF_CHECK_MSG(s_http, "%s", err.msg);
    atexit(s_http_stop);
    snprintf(ep, sizeof(ep), "tcp://127.0.0.1:%d", port);
    RF_CHECK_MSG(rf_proc_wait_endpoint(s_http, ep, 20000, &err) == 0, "%s", err.msg);
    setenv("no_proxy", "*", 1);

    static rf_farm f;
    char extra[2400], spec[2048], job[64], errs[1024], a[1024], b[1024];
    snprintf(extra, sizeof(extra),
             "--input-root %s --models %s --allow-url-host 127.0.0.1 --max-input-bytes 100000 "
             "--fetch-timeout 3s --fetch-low-speed-timeout 1s --fetch-retries 0 "
             "--fetch-max-redirects 3",
             root, rf_test_tmpdir());
    RF_CHECK_MSG(rf_farm_start(&f, "http", extra) == 0, "coordinator did not start (%s)", f.log);
    const char *fmt = SPEC_HEAD "inputs:\n  image: %s\nshots:\n  - prompt: " PROMPT
                                "\n    frames: 9\noutput:\n  codec: ffv1\n  path: %s\n";
    struct {
        const char *path, *says;
    } cases[] = {
        {"/status/404", "404"},
        {"/hang", "limits.fetch_"},
        {"/ok/200000", "limits.max_input_bytes"},
        {"/loop", "redirect"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char url[256], name[32];
        snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, cases[i].path);
        snprintf(name, sizeof(name), "url%zu.mkv", i);
        snprintf(spec, sizeof(spec), fmt, "url", 3, url, name);
        RF_CHECK_MSG(rf_farm_submit(&f, spec, job, sizeof(job), errs, sizeof(errs)) == 0, "%s",
                     errs);
        const char *why = s_failure(&f, job);
        RF_CHECK_CONTAINS(why, cases[i].says);
        RF_CHECK_CONTAINS(why, cases[i].path);
    }
    /* a host not on the allow-list is refused at submit */
    snprintf(spec, sizeof(spec), fmt, "url", 3, "http://example.com/pic.png", "no.mkv");
    RF_CHECK(rf_farm_submit(&f, spec, job, sizeof(job), errs, sizeof(errs)) != 0);
    RF_CHECK_CONTAINS(errs, "allowed_url_hosts");

    /* success: the downloaded picture renders like the same picture from a file */
    rf_proc *w = s_worker(&f, "w1");
    char url[256];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/file/pic.png", port);
    snprintf(spec, sizeof(spec), fmt, "url", 3, url, "from-url.mkv");
    RF_CHECK_MSG(rf_farm_submit(&f, spec, job, sizeof(job), errs, sizeof(errs)) == 0, "%s", errs);
    RF_CHECK_EQ_INT(rf_farm_wait(&f, job, 240000), REELFARM__JOB_STATE__JOB_DONE);
    snprintf(spec, sizeof(spec), fmt, "file", 3, "pic.png", "from-file.mkv");
    RF_CHECK_MSG(rf_farm_submit(&f, spec, job, sizeof(job), errs, sizeof(errs)) == 0, "%s", errs);
    RF_CHECK_EQ_INT(rf_farm_wait(&f, job, 240000), REELFARM__JOB_STATE__JOB_DONE);
    s_output(&f, "from-url.mkv", a, sizeof(a));
    s_output(&f, "from-file.mkv", b, sizeof(b));
    s_same(a, b, -1, "URL and file inputs");
    RF_CHECK(rf_farm_log_has(&f, "downloaded"));
    RF_CHECK_EQ_INT(rf_farm_stop(&f), 0);
    s_worker_stop(w);
    /* reelctl render lets its private farm download from the spec's host */
    char c[1024];
    snprintf(spec, sizeof(spec), fmt, "url-render", 3, url, "ignored.mkv");
    s_farm_ok("url-render", spec, rf_test_path(c, sizeof(c), "url-render.mkv"), "1");
    s_same(a, c, -1, "reelctl render of a URL input");
    s_http_stop();
}

/* PSNR (dB) of n frames of a against b, both S2 x S2 RGB. */
static double s_psnr_frames(const uint8_t *a, const uint8_t *b, size_t bytes)
{
    double se = 0;
    for (size_t i = 0; i < bytes; i++) {
        double d = (double)a[i] - (double)b[i];
        se += d * d;
    }
    return se <= 0 ? 99.0 : 10.0 * log10(255.0 * 255.0 * (double)bytes / se);
}

RF_TEST(long_clips_are_encoded_in_segments_close_to_one_encode)
{
    char models[1100], model[1200];
    snprintf(models, sizeof(models), "%s/models", RF_SOURCE_DIR);
    snprintf(model, sizeof(model), "%s/reel-tiny", models);
    struct stat st;
    if (stat(model, &st) != 0)
        RF_SKIP("models/reel-tiny is not in this tree");
    /* 49 frames at 64x64: 13 latent frames, two ENCODE_MEDIA segments (8 + 5, the second
     * encoded from the warm-up earlier) and two DECODE segments; strength 0 gives the
     * input back, so the farm's film is the one-process film up to the segment joins */
    enum { N = 49, S2 = 64 };
    char clip[1024];
    rf_test_path(clip, sizeof(clip), "long-clip.mkv");
    rf_video_opts vo = {RF_CODEC_FFV1, S2, S2, 0, 0, 16, -1};
    rf_error err = {0};
    rf_video_writer *w = rf_video_writer_open(clip, &vo, &err);
    RF_CHECK_MSG(w, "%s", err.msg);
    static uint8_t rgb[S2 * S2 * 3];
    for (int k = 0; k < N; k++) {
        for (int i = 0; i < S2 * S2; i++) { /* a disc crossing a gray frame */
            int x = i % S2, y = i / S2, dx = x - (8 + k), dy = y - 32;
            int in = dx * dx + dy * dy <= 81;
            rgb[i * 3] = in ? 220 : 110;
            rgb[i * 3 + 1] = rgb[i * 3 + 2] = in ? 40 : 110;
        }
        RF_CHECK_EQ_INT(rf_video_writer_write_u8(w, rgb, &err), 0);
    }
    RF_CHECK_MSG(rf_video_writer_close(&w, &err) == 0, "%s", err.msg);
    char spec[1024], a[1024], b[1024], bin[1024];
    snprintf(spec, sizeof(spec),
             "name: long\nmodel: reel-tiny\nwidth: 64\nheight: 64\nseed: 1\nsteps: 2\n"
             "inputs:\n  video: %s\n  strength: 0\nshots:\n  - prompt: a red circle moves to "
             "the right on a gray background\n    frames: %d\noutput:\n  codec: ffv1\n",
             clip, N);
    char path[600];
    snprintf(path, sizeof(path), "%s/long.yaml", rf_test_tmpdir());
    RF_CHECK_EQ_INT(rf_test_write_file(path, spec, strlen(spec)), 0);
    rf_test_path(a, sizeof(a), "long-farm.mkv");
    rf_proc_bin(bin, sizeof(bin), "reelctl");
    const char *argv[] = {bin, "render",    path, "-o",       a,      "--workers",
                          "1", "--threads", "1",  "--models", models, NULL};
    rf_proc *p = rf_proc_start(argv, NULL, &err);
    RF_CHECK_MSG(p, "%s", err.msg);
    int status = -1;
    RF_CHECK_MSG(rf_proc_wait(p, 300000, &status, &err) == 0, "%s", err.msg);
    char *log = rf_proc_log(p, NULL);
    RF_CHECK_MSG(status == 0, "reelctl render failed: %s", log ? log : "");
    free(log);
    rf_proc_destroy(&p);
    /* one process: one encode, one decode */
    rf_proc_bin(bin, sizeof(bin), "reelfarm-engine");
    rf_test_path(b, sizeof(b), "long-engine.mkv");
    const char *eargv[] = {bin,          "render", "--model",   model, "--prompt", "x",
                           "--frames",   "49",     "--steps",   "2",   "--video",  clip,
                           "--strength", "0",      "--threads", "1",   "-o",       b,
                           NULL};
    p = rf_proc_start(eargv, NULL, &err);
    RF_CHECK_MSG(p, "%s", err.msg);
    RF_CHECK_MSG(rf_proc_wait(p, 300000, &status, &err) == 0, "%s", err.msg);
    RF_CHECK_EQ_INT(status, 0);
    rf_proc_destroy(&p);
    rf_video_reader *ra = rf_video_reader_open(a, 0, 0, &err),
                    *rb = rf_video_reader_open(b, 0, 0, &err);
    RF_CHECK(ra && rb);
    static uint8_t fa[N * S2 * S2 * 3], fb[N * S2 * S2 * 3];
    int na = 0, nb = 0;
    for (int got = 1; got && na < N; na += got)
        RF_CHECK_EQ_INT(rf_video_reader_read_u8(ra, fa + (size_t)na * S2 * S2 * 3, &got, &err), 0);
    for (int got = 1; got && nb < N; nb += got)
        RF_CHECK_EQ_INT(rf_video_reader_read_u8(rb, fb + (size_t)nb * S2 * S2 * 3, &got, &err), 0);
    rf_video_reader_close(&ra);
    rf_video_reader_close(&rb);
    RF_CHECK_EQ_INT(na, N);
    RF_CHECK_EQ_INT(nb, N);
    const size_t fr = S2 * S2 * 3;
    /* frames 0-28 (latent 0-7): the first segments, exactly a one-process encode and decode */
    double rest = s_psnr_frames(fa + 29 * fr, fb + 29 * fr, 20 * fr);
    printf("# a 49-frame clip at strength 0, farm (2 encode and 2 decode segments) vs one "
           "process: frames 0-28 %s, frames 29-48 %.2f dB\n",
           memcmp(fa, fb, 29 * fr) ? "differ" : "identical", rest);
    RF_CHECK_MSG(memcmp(fa, fb, 29 * fr) == 0, "the first segment differs from one encode");
    RF_CHECK_MSG(rest >= 38.0, "the second segment is %.2f dB from one encode", rest);
}
