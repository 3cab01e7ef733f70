/* crash.h - deterministic crash points for durability tests.
 *
 * RF_CRASH_AT=NAME:N makes the N-th arrival at the crash point NAME end the process at
 * once with _exit(RF_CRASH_EXIT) (no atexit handlers, no flush of anything but a line on
 * stderr), as a power cut or a SIGKILL would at that spot. Without the variable every
 * crash point is a no-op costing one branch. Used by the coordinator (before-commit,
 * after-commit-before-ack, mid-fusion), its store (after-blob-pack: a transaction's blob
 * pack is durable, its rows are not) and by atomic_file (mid-blob-write). Never use a
 * crash point for control flow.
 */
#ifndef RF_CRASH_H
#define RF_CRASH_H

#define RF_CRASH_EXIT 86

/* Counts an arrival at the point `name`; ends the process on the configured arrival. */
void rf_crash_point(const char *name);
/* 1 when RF_CRASH_AT names the point `name` and it has not fired yet (a caller may then
 * take the slower path that reaches the point, e.g. a write split in two). */
int rf_crash_armed(const char *name);

#endif
