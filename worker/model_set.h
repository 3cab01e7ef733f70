/* model_set.h - the models a worker serves, loaded when a task needs them, LRU-bounded.
 *
 * A worker advertises every model it can serve (the content hashes of the folders given
 * by --model and --models) but keeps at most max_loaded of them loaded as executors: a
 * task names its model by hash, the compute thread asks the set for that model's
 * executor, and loading one more evicts the least recently used. Chunk states are plain
 * data (chunk_state.h), so evicting a model never loses a resident chunk. Only the
 * compute thread calls rf_model_set_get once the worker runs (executors run one unit at
 * a time), so an executor is never destroyed while it computes; before that, main may
 * load the first models to fail fast on a broken folder.
 */
#ifndef RF_MODEL_SET_H
#define RF_MODEL_SET_H

#include "error.h"
#include "executor.h"

#define RF_MODEL_SET_MAX 64

/* Makes the executor of the model folder dir (NULL for the sim executor's built-in model)
 * whose content hash is hash (hex, already computed). */
typedef rf_executor *(*rf_model_loader)(void *ctx, const char *dir, const char *hash,
                                        rf_error *err);

typedef struct rf_model_set rf_model_set;

/* An empty set whose executors come from load(lctx, ...), for the backend named backend
 * ("cpu", "sim"); at most max_loaded (>= 1) loaded at once; media says whether the
 * backend's executors encode inputs (ENCODE_MEDIA). NULL + err when out of memory. */
rf_model_set *rf_model_set_new(const char *backend, rf_model_loader load, void *lctx,
                               int max_loaded, int media, rf_error *err);
/* Unloads every executor and frees the set; NULLs *self. */
void rf_model_set_destroy(rf_model_set **self);

/* Adds path: a model folder (model.json, or a DiT config.json beside its weights) is one
 * model; any other directory is searched one level down for model folders (like the
 * coordinator's --models). Hashes each new model (the same folder twice counts once).
 * Returns 0, or RF_ENOTFOUND / RF_EINVAL / RF_EIO naming path (a directory holding no
 * model folder is refused, saying what one looks like). */
int rf_model_set_add(rf_model_set *self, const char *path, rf_error *err);
/* Adds the sim executor's built-in model (dir NULL; hash of "reelfarm-sim"). */
int rf_model_set_add_builtin(rf_model_set *self, const char *hash, rf_error *err);

/* Adds an executor made by the caller (taken over): its model is ex->model_hash, already
 * loaded. On error ex is destroyed. */
int rf_model_set_add_loaded(rf_model_set *self, rf_executor *ex, rf_error *err);

/* The number of models, and the hash (hex) and folder (NULL for the built-in) of model i. */
int rf_model_set_count(const rf_model_set *self);
const char *rf_model_set_hash(const rf_model_set *self, int i);
const char *rf_model_set_dir(const rf_model_set *self, int i);
/* 1 when the set serves the model with this hash. */
int rf_model_set_has(const rf_model_set *self, const char *hash);
/* The backend's name, and whether it encodes media. */
const char *rf_model_set_backend(const rf_model_set *self);
int rf_model_set_encodes_media(const rf_model_set *self);

/* The executor of the model hash (hex; NULL or "" means the set's only model), loading it
 * and unloading the least recently used other model beyond max_loaded. Borrowed: valid
 * until the next rf_model_set_get. NULL + err when the set does not serve that model or
 * loading fails (the error names the folder). Compute thread only. */
rf_executor *rf_model_set_get(rf_model_set *self, const char *hash, rf_error *err);
/* How many models are loaded now (for logs and tests). */
int rf_model_set_loaded(const rf_model_set *self);

#endif
