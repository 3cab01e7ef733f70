/* tiny_model.h - a tiny random model folder for tests of the whole pipeline's mechanics.
 *
 * Links the committed pieces (tests/fixtures/tiny_model/: a DiT with text_dim 64 and a
 * umT5 of dim 64, made by tools/reference/make_tiny_model.py; the VAE and tokenizer
 * fixtures) into a folder under the test's tmpdir with a model.json: defaults 32x32, 9
 * frames, 4 unipc steps, guidance 3. Random weights: outputs are noise, but every
 * exact invariant (known frames, round trips, determinism) holds. Never writes outside
 * the tmpdir.
 */
#ifndef RF_TEST_TINY_MODEL_H
#define RF_TEST_TINY_MODEL_H

#include <stddef.h>

/* Creates (once per test binary) "<tmpdir>/tiny-model" and writes its path into buf;
 * returns buf, or NULL when it cannot be made. */
char *rf_test_tiny_model(char *buf, size_t cap);

#endif
