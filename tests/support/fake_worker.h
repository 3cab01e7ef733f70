/* fake_worker.h - a protocol-speaking test worker with deterministic fake math.
 *
 * Speaks docs/protocol.md exactly like a real worker (Hello, heartbeats, TaskAssign,
 * Progress, OverlapUp/OverlapDown, Checkpoint, TaskResult, Drain, CancelTask, Refuse
 * and reconnect) but computes nothing real: ENCODE_TEXT returns a [4, 8] tensor derived
 * from the prompt's BLAKE2b; DENOISE starts from common/rng noise and applies a fixed
 * per-element function of its context and negative context each step; DECODE returns
 * bytes derived from the latent. All of it is a pure function of the task's inputs, so a
 * job's outputs are bit-identical whichever fake workers ran it. Faults for tests: crash
 * (SIGKILL itself) after sending a given round, drain itself after a round, sit on DECODE
 * tasks without progress.
 * When the coordinator says it does not know the worker (it restarted), the worker keeps
 * its tasks, says Hello on a new socket with its chunk states as `resident`, and re-sends
 * the OverlapUp each waiting chunk is waiting on and the DENOISE results of the last few
 * seconds (docs/protocol.md: the fence decides whether they still count).
 * Runs in a forked child process; never touches the parent's ZeroMQ context.
 */
#ifndef RF_FAKE_WORKER_H
#define RF_FAKE_WORKER_H

#include <sys/types.h>

typedef struct rf_fake_worker_opts {
    const char *endpoint;   /* the coordinator's --listen */
    const char *name;       /* worker name */
    const char *model_hash; /* hash it advertises (hex) */
    int max_tasks;          /* default 64 */
    int step_delay_ms;      /* sleep after each DENOISE step */
    int crash_after_round;  /* > 0: SIGKILL itself right after sending that round's OverlapUp */
    int drain_after_round;  /* > 0: drain itself (as on SIGTERM) after that round */
    int hang_decode_ms;     /* > 0: hold each DECODE result this long, without Progress,
                            * deaf to CancelTask (a hung kernel) */
    long *steps_executed;   /* when set (shared memory): incremented for every DENOISE step */
} rf_fake_worker_opts;

/* Forks a child running the worker until drained or killed; returns its pid (-1 on
 * failure). The child exits 0 after a drain, 1 on an error. */
pid_t rf_fake_worker_spawn(const rf_fake_worker_opts *opts);

/* Runs the worker in this process (what the child does). */
int rf_fake_worker_run(const rf_fake_worker_opts *opts);

#endif
