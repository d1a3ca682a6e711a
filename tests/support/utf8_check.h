/* utf8_check.h: an independent check that bytes are well-formed UTF-8 (no overlong forms,
 * surrogates or code points above U+10FFFF), for the tests and fuzz targets that verify the
 * tokenizer's and the generator's output without trusting the library's own decoder.
 * Header-only. */
#ifndef HS_TEST_UTF8_CHECK_H
#define HS_TEST_UTF8_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

static inline bool utf8_well_formed(const unsigned char *p, size_t n) {
  for (size_t i = 0; i < n;) {
    unsigned c = p[i];
    size_t k;
    uint32_t cp;
    if (c < 0x80) {
      i++;
      continue;
    } else if ((c & 0xe0) == 0xc0) {
      k = 2, cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      k = 3, cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      k = 4, cp = c & 0x07;
    } else {
      return false;
    }
    if (i + k > n) return false;
    for (size_t j = 1; j < k; j++) {
      if ((p[i + j] & 0xc0) != 0x80) return false;
      cp = cp << 6 | (p[i + j] & 0x3f);
    }
    static const uint32_t min[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min[k] || cp > 0x10ffff || (cp >= 0xd800 && cp < 0xe000)) return false;
    i += k;
  }
  return true;
}

#endif
