/* bench_render.c - where the time of a whole render goes: text, sampling, decode, encode.
 *
 * Runs `reelfarm-engine render` with the bundled demo model (models/reel-tiny) on a
 * 33-frame clip at its native size and prints the engine's own split as shares of the
 * total, so the line is comparable across machines (the shares, not the seconds).
 * RF_BENCH_THREADS sets the threads (default 2).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void)
{
    const char *build = getenv("RF_BUILD");
    const char *threads = getenv("RF_BENCH_THREADS");
    char cmd[4096];
    snprintf(cmd, sizeof(cmd),
             "%s/bin/reelfarm-engine render --model %s/models/reel-tiny --prompt "
             "'a yellow star moves to the left on a black background' --frames 33 --seed 1 "
             "--threads %s -o /tmp/reelfarm-bench-render.mp4 2>&1",
             build ? build : RF_SOURCE_DIR "/build", RF_SOURCE_DIR, threads ? threads : "2");
    FILE *p = popen(cmd, "r");
    if (!p) {
        fprintf(stderr, "bench_render: cannot run reelfarm-engine\n");
        return 1;
    }
    char line[1024];
    double text = -1, sample = -1, decode = -1, encode = -1, total = -1;
    while (fgets(line, sizeof(line), p)) {
        fputs(line, stdout);
        const char *t = strstr(line, "time: text ");
        if (t)
            sscanf(t, "time: text %lfs, sampling %lfs, decode %lfs, encode %lfs, total %lfs", &text,
                   &sample, &decode, &encode, &total);
    }
    int rc = pclose(p);
    remove("/tmp/reelfarm-bench-render.mp4");
    if (rc != 0 || total <= 0) {
        fprintf(stderr, "bench_render: the render failed\n");
        return 1;
    }
    printf("render_split text=%.3f sampling=%.3f decode=%.3f encode=%.3f (shares of %.2f s; "
           "33 frames 64x64, reel-tiny defaults)\n",
           text / total, sample / total, decode / total, encode / total, total);
    return 0;
}
