/* commands.h - the reelctl commands, one line each (no include guard: included twice). */
#ifndef RF_CMD /* only for tools that read this file alone (cppcheck) */
#define RF_CMD(name, summary)
#endif
RF_CMD(submit, "submit a job spec (YAML or JSON); --wait follows it to the end")
RF_CMD(render, "render a spec on this machine: a private coordinator and N CPU workers")
RF_CMD(status, "the farm at a glance: workers, queued and running jobs, warnings")
RF_CMD(jobs, "list jobs (--state queued|running|done|failed|canceled)")
RF_CMD(job, "one job in detail: timelines, chunks x steps, segments, ETA")
RF_CMD(watch, "follow a job with a live progress bar until it ends")
RF_CMD(workers, "list workers: backend, state, tasks, last seen")
RF_CMD(logs, "a job's log lines")
RF_CMD(cancel, "cancel a job")
RF_CMD(retry, "requeue a failed or canceled job")
RF_CMD(keygen, "make a CURVE key pair: BASE.key (public) and BASE.key_secret (0600)")
RF_CMD(drain, "drain a worker: no new tasks, hand back its chunks, then it exits")
