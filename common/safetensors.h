/* safetensors.h - read and write .safetensors files (and sharded sets).
 *
 * A file is an 8-byte little-endian header length N, N bytes of JSON naming each
 * tensor's dtype, shape and [begin, end) byte offsets in the data section, then the
 * data. The reader mmaps the file, validates the whole header before handing out
 * anything (size bound, known dtypes, offsets inside the file, ordered and
 * non-overlapping, shape product x dtype size == byte length, no overflow), and
 * returns tensors that point into the mapping. As in the format's reference
 * implementation, the tensors must cover the data section exactly: a gap between
 * tensors or bytes after the last one are refused like an overlap. It never trusts a size it has not
 * checked. The writer builds our own outputs; it writes temp + fsync + rename.
 */
#ifndef RF_SAFETENSORS_H
#define RF_SAFETENSORS_H

#include "dtype.h"
#include "error.h"

#include <stddef.h>
#include <stdint.h>

#define RF_ST_MAX_DIMS 8
/* Headers larger than this are refused (the format's own limit is 100 MB). */
#define RF_ST_MAX_HEADER (100u * 1024u * 1024u)

typedef struct rf_st_tensor {
    const char *name; /* borrowed from the reader */
    rf_dtype dtype;
    int ndim;
    int64_t shape[RF_ST_MAX_DIMS];
    const void *data; /* borrowed: points into the mapped file; aligned to 8 bytes only
                       * when the header length is (ours always is), so read through
                       * memcpy or rf_st_read_f32 unless you checked */
    size_t nbytes;
} rf_st_tensor;

typedef struct rf_safetensors rf_safetensors;

/* Opens PATH: a .safetensors file, a *.safetensors.index.json naming shards (each
 * shard opened and validated; a tensor listed in the index but missing from its
 * shard is an error, and so are a shard tensor missing from the index, a name in two
 * shards, and a shard path that is absolute or contains ".."; shard names are
 * relative to the index's directory), or a directory holding exactly one index or,
 * without an index, exactly one .safetensors file. Returns NULL and
 * sets err on any problem, naming the file and what is wrong. */
rf_safetensors *rf_st_open(const char *path, rf_error *err);
/* Unmaps and frees; NULLs *self; safe on NULL and twice. */
void rf_st_destroy(rf_safetensors **self);

size_t rf_st_count(const rf_safetensors *self);
/* Tensor i (0 <= i < count), in the order of the header (shards in index order). */
const rf_st_tensor *rf_st_at(const rf_safetensors *self, size_t i);
/* The tensor named name, or NULL. */
const rf_st_tensor *rf_st_find(const rf_safetensors *self, const char *name);
/* A string from the header's "__metadata__", or NULL. For a sharded set the shards'
 * metadata are merged, the first shard (index order) winning on a repeated key. */
const char *rf_st_metadata(const rf_safetensors *self, const char *key);

/* The file (shard) that holds t, for error messages; borrowed from self. */
const char *rf_st_path_of(const rf_safetensors *self, const rf_st_tensor *t);

/* Number of elements of t (product of its shape). */
size_t rf_st_numel(const rf_st_tensor *t);

/* Finds name and checks it has ndim dims equal to shape (a -1 entry matches any
 * size). Errors name the tensor, the expected and the actual shape. */
int rf_st_expect(const rf_safetensors *self, const char *name, int ndim, const int64_t *shape,
                 const rf_st_tensor **out, rf_error *err);

/* Copies tensor t converted to f32 into dst (numel floats). F32/BF16/F16/F64 only
 * (others: RF_ESHAPE). Safe on unaligned data. */
int rf_st_read_f32(const rf_st_tensor *t, float *dst, rf_error *err);

typedef struct rf_st_writer rf_st_writer;

rf_st_writer *rf_st_writer_new(void);
void rf_st_writer_destroy(rf_st_writer **self);
/* Adds a tensor. The data is copied, so the caller may free it after the call. */
int rf_st_writer_add(rf_st_writer *self, const char *name, rf_dtype dtype, int ndim,
                     const int64_t *shape, const void *data, rf_error *err);
/* Adds a "__metadata__" string entry. */
int rf_st_writer_set_metadata(rf_st_writer *self, const char *key, const char *value,
                              rf_error *err);
/* Writes the file atomically: PATH.tmp, fsync, rename, fsync of the directory. The
 * JSON header is padded with spaces to a multiple of 8 bytes; tensors follow in the
 * order they were added. On failure PATH is untouched and PATH.tmp removed. */
int rf_st_writer_write(rf_st_writer *self, const char *path, rf_error *err);

#endif
