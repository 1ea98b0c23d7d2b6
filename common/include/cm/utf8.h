/* cm/utf8.h - UTF-8 decoding and validation, the suite's one copy.
 *
 * Strict RFC 3629: overlong forms, surrogates (U+D800..U+DFFF) and code points above U+10FFFF
 * are invalid, as is a sequence cut short. */
#ifndef CM_UTF8_H
#define CM_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Decode the sequence at s (n > 0 bytes available): its length (1 to 4) with the code point in
 * *cp, or 0 when it is not valid UTF-8. */
size_t cm_utf8_decode(const unsigned char *s, size_t n, uint32_t *cp);

/* True when the n bytes of s are valid UTF-8 throughout (an empty string is). */
bool cm_utf8_valid(const char *s, size_t n);

#endif
