/* cmd_workers.c - reelctl workers: the farm's workers as a table or JSON. */
#include "output.h"
#include "reelctl.h"

#include <stdio.h>
#include <string.h>

int rf_ctl_workers(rf_ctl *ctl, int argc, char **argv)
{
    if (argc > 1) {
        int help = !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h");
        fprintf(help ? stdout : stderr,
                "usage: reelctl workers\n\nLists the workers: backend, state, running tasks, "
                "resident chunks, tasks done and failed, last seen.\n");
        return help ? 0 : 2;
    }
    rf_client *c = rf_ctl_connect(ctl);
    if (!c)
        return 3;
    Reelfarm__WorkerListRequest req = REELFARM__WORKER_LIST_REQUEST__INIT;
    Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
    env.kind_case = REELFARM__ENVELOPE__KIND_WORKER_LIST_REQUEST;
    env.worker_list_request = &req;
    rf_wire_msg r;
    rf_error err;
    int rc = rf_client_call(c, &env, REELFARM__ENVELOPE__KIND_WORKER_LIST, &r, NULL, &err);
    rf_client_destroy(&c);
    if (rc)
        return rf_ctl_fail("workers", &err);
    const Reelfarm__WorkerList *wl = r.env->worker_list;
    if (ctl->json) {
        json_t *a = json_array();
        for (size_t i = 0; i < wl->n_workers; i++)
            json_array_append_new(a, rf_json_worker(wl->workers[i]));
        rf_json_print(a);
    } else {
        static const char *hdr[] = {"WORKER", "NAME", "BACKEND", "STATE",  "TASKS",
                                    "CHUNKS", "DONE", "FAILED",  "MEMORY", "LAST-SEEN"};
        rf_table *t = rf_table_new(10, hdr);
        for (size_t i = 0; i < wl->n_workers; i++) {
            const Reelfarm__WorkerInfo *w = wl->workers[i];
            char tasks[16], chunks[16], done[24], failed[24], mem[32], seen[32];
            snprintf(tasks, sizeof(tasks), "%zu", w->n_running);
            snprintf(chunks, sizeof(chunks), "%u", w->resident_chunks);
            snprintf(done, sizeof(done), "%llu", (unsigned long long)w->tasks_done);
            snprintf(failed, sizeof(failed), "%llu", (unsigned long long)w->tasks_failed);
            rf_fmt_bytes(w->memory_bytes, mem, sizeof(mem));
            rf_fmt_age(w->last_seen_ms, seen, sizeof(seen));
            const char *row[] = {w->worker_id, w->name, w->backend, rf_worker_state_name(w->state),
                                 tasks,        chunks,  done,       failed,
                                 mem,          seen};
            rf_table_row(t, row);
        }
        rf_table_print(&t, stdout);
    }
    rf_wire_msg_release(&r);
    return 0;
}
