/* tokenizer.h - SentencePiece unigram tokenization in C (umT5's tokenizer for Wan).
 *
 * Loads a SentencePiece `.model` file (a protobuf ModelProto, read with protobuf-c
 * through proto/sentencepiece_model.proto) and encodes text exactly as
 * sentencepiece's SentencePieceProcessor::Encode does for a unigram model:
 *   1. normalize: user-defined symbols pass through untouched; everything else goes
 *      through the model's precompiled character map (a darts-clone double-array trie
 *      of source strings -> replacement strings; this is how NFKC, nmt_nfkc,
 *      nmt_nfkc_cf are applied), malformed UTF-8 becomes U+FFFD one byte at a time;
 *      then whitespace: drop leading/trailing and repeated spaces
 *      (remove_extra_whitespaces), add the dummy prefix, spaces -> U+2581 "▁";
 *   2. Viterbi over the piece scores (user-defined pieces always win; an unknown
 *      character costs min_score - 10);
 *   3. unknown characters become their UTF-8 bytes as <0xNN> pieces when the model
 *      has byte_fallback, otherwise consecutive unknowns merge into one unk id.
 * rf_tokenizer_encode adds what Wan's pipeline does around it: the prompt cleaning of
 * text_clean.h (HTML unescape twice + whitespace; NOT ftfy), then the ids truncated to
 * max_len - 1 and the model's own eos id (</s>) appended, so a long prompt keeps
 * </s> as its last id (HuggingFace's truncation=True, max_length=512, which Wan uses).
 * Only unigram models are supported (BPE/WORD/CHAR are refused at load).
 */
#ifndef RF_TOKENIZER_H
#define RF_TOKENIZER_H

#include "error.h"

#include <stddef.h>
#include <stdint.h>

/* Wan's text length: umT5 sees at most this many ids, </s> included. */
#define RF_TOKENIZER_CONTEXT_LEN 512

typedef struct rf_tokenizer rf_tokenizer;

/* Loads a .model file. Returns NULL with err set when the file cannot be read, is not
 * a SentencePiece model (truncated, garbage), is not unigram, or is inconsistent
 * (no unk piece, duplicate pieces, byte_fallback without the 256 byte pieces, a broken
 * character map); the message names the file and the problem. */
rf_tokenizer *rf_tokenizer_load(const char *path, rf_error *err);
/* The same from len bytes in memory (copied what it needs; data may be freed after).
 * name is used in error messages only. */
rf_tokenizer *rf_tokenizer_from_memory(const void *data, size_t len, const char *name,
                                       rf_error *err);
/* Frees; NULLs *self; safe on NULL and twice. */
void rf_tokenizer_destroy(rf_tokenizer **self);

/* Number of pieces (ids run 0..vocab_size-1). */
int rf_tokenizer_vocab_size(const rf_tokenizer *self);
/* The model's special ids (trainer_spec); -1 where the model has none. */
int rf_tokenizer_eos_id(const rf_tokenizer *self);
int rf_tokenizer_unk_id(const rf_tokenizer *self);
int rf_tokenizer_pad_id(const rf_tokenizer *self);
/* Piece text of id (borrowed, valid while self lives), or NULL when out of range. */
const char *rf_tokenizer_piece(const rf_tokenizer *self, int id);

/* sentencepiece's Encode of len bytes of text (no cleaning, no eos, no truncation).
 * On success *ids is a malloc'd array of *n ids (caller frees; NULL when *n == 0).
 * Errors: RF_ENOMEM, RF_EINVAL when the model's character map points outside itself. */
int rf_tokenizer_encode_raw(const rf_tokenizer *self, const char *text, size_t len, int32_t **ids,
                            size_t *n, rf_error *err);

/* Wan's prompt -> ids: rf_text_clean, encode, keep the first max_len - 1 ids, append
 * eos. max_len >= 2 (RF_TOKENIZER_CONTEXT_LEN for Wan). *ids is malloc'd (caller
 * frees), *n >= 1. Errors: RF_EINVAL for a prompt that is not UTF-8 or a model
 * without an eos id; those of encode_raw. */
int rf_tokenizer_encode(const rf_tokenizer *self, const char *prompt, size_t max_len, int32_t **ids,
                        size_t *n, rf_error *err);

#endif
