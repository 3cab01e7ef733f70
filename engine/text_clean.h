/* text_clean.h - the prompt cleaning Wan applies before tokenizing, as far as C does it.
 *
 * The release cleans a prompt with: ftfy.fix_text, html.unescape twice, strip, every
 * run of whitespace to one space, strip. This module does all of that EXCEPT ftfy:
 * no mojibake repair, no NFC, no curly-quote straightening, no removal of terminal
 * escapes or control characters, no fixing of HTML-escaped line breaks, no
 * width/ligature fixes. A prompt that ftfy would change tokenizes differently here;
 * plain prompts (the common case) give identical ids. The SentencePiece normalizer
 * (NFKC in umT5's model) still runs afterwards and covers much of what NFC would.
 * Input must be valid UTF-8 (it is a Python str upstream); invalid input is refused.
 */
#ifndef RF_TEXT_CLEAN_H
#define RF_TEXT_CLEAN_H

#include "error.h"

#include <stddef.h>
#include <stdint.h>

/* Python's html.unescape on len bytes of UTF-8: named references (HTML5 list,
 * legacy names also without ';', the longest known prefix otherwise), decimal and hex
 * references with or without ';' and the HTML5 fix-ups (0 and out-of-range become
 * U+FFFD, 0x80-0x9F go through windows-1252, noncharacters and most C0/C1 controls
 * vanish). Returns a NUL-terminated malloc'd string (caller frees) and its length in
 * *out_len (may be NULL), or NULL on allocation failure (err set). */
char *rf_html_unescape(const char *s, size_t len, size_t *out_len, rf_error *err);

/* 1 if cp is whitespace by Python's str.isspace() (what `\s` and strip() use). */
int rf_text_is_space(uint32_t cp);

/* Validates UTF-8 (no overlongs, no surrogates, nothing past U+10FFFF). Returns 0, or
 * -1 and the offset of the first bad byte in *bad_at (may be NULL). */
int rf_utf8_validate(const char *s, size_t len, size_t *bad_at);

/* Wan's cleaning without ftfy (see the file comment): unescape twice, strip, collapse
 * whitespace runs to one ' ', strip. Returns a malloc'd NUL-terminated string (caller
 * frees), or NULL with err set (RF_EINVAL naming the byte offset when text is not
 * valid UTF-8; RF_ENOMEM). */
char *rf_text_clean(const char *text, size_t len, rf_error *err);

#endif
