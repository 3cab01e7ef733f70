/* model_id.h - a model is its content: one BLAKE2b-256 over the files of its folder.
 *
 * Coordinator and workers name a model by this hash (ARCHITECTURE.md §4): a job pins it
 * at submit, workers advertise the hashes they hold, caches key on it. Definition (the
 * contract; both sides must compute it the same way):
 *   1. Walk DIR recursively. Take every regular file (symlinks followed); skip entries
 *      whose name starts with '.', and anything that is neither file nor directory.
 *   2. For each file: its path relative to DIR ('/'-separated) and BLAKE2b-256 of its
 *      bytes. Sort by relative path, bytewise (strcmp).
 *   3. The model hash is BLAKE2b-256 of the concatenation, for each file in that order,
 *      of: the relative path's bytes, one NUL byte, the 32 digest bytes.
 * A folder with no file is refused. Never modifies anything under DIR.
 */
#ifndef RF_MODEL_ID_H
#define RF_MODEL_ID_H

#include "error.h"
#include "hash.h"

/* Limits of the walk (a model folder is a handful of files). */
#define RF_MODEL_ID_MAX_FILES 4096
#define RF_MODEL_ID_MAX_DEPTH 8

/* Computes the model hash of the folder dir into *out (and its hex form into hex when
 * hex is not NULL). Returns 0, RF_ENOTFOUND (dir missing), RF_EINVAL (not a folder, no
 * file, over the limits) or RF_EIO, naming the path. */
int rf_model_hash(const char *dir, rf_hash *out, char *hex, rf_error *err);

#endif
