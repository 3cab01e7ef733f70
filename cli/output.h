/* output.h - how reelctl prints: aligned tables, human durations and sizes, JSON.
 *
 * Tables look like squeue/kubectl: an upper-case header row, columns padded to their
 * widest cell, no borders. Every read command can print JSON instead (--json); the JSON
 * field names follow proto/reelfarm.proto so scripts see the wire's vocabulary.
 */
#ifndef RF_OUTPUT_H
#define RF_OUTPUT_H

#include "reelfarm.pb-c.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>

#define RF_TABLE_MAX_COLS 10
#define RF_TABLE_CELL     96

typedef struct rf_table rf_table;

/* A table with ncols columns named by the header strings. */
rf_table *rf_table_new(int ncols, const char *const *header);
/* Appends a row of ncols printf-free strings (copied, truncated to RF_TABLE_CELL-1). */
void rf_table_row(rf_table *t, const char *const *cells);
/* Prints and frees; NULLs *t. */
void rf_table_print(rf_table **t, FILE *out);

/* "4s", "3m12s", "2h05m", "3d04h"; "-" for a negative value. */
void rf_fmt_duration(double seconds, char *buf, size_t cap);
/* Age of a unix-ms timestamp relative to now ("-" when 0). */
void rf_fmt_age(uint64_t ms, char *buf, size_t cap);
/* "512B", "3.2KiB", "1.5GiB". */
void rf_fmt_bytes(uint64_t n, char *buf, size_t cap);

const char *rf_job_state_name(int state);    /* "queued", "running", ... */
const char *rf_worker_state_name(int state); /* "idle", "busy", ... */
const char *rf_unit_state_name(int state);

/* JSON forms of the API's messages (new references). */
json_t *rf_json_job(const Reelfarm__JobInfo *j, int detail);
json_t *rf_json_worker(const Reelfarm__WorkerInfo *w);
/* Prints j (pretty) and a newline, then drops the reference. */
void rf_json_print(json_t *j);

#endif
