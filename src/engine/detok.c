/* detok.c: from token ids back to bytes, whole or streamed.
 *
 * What a token renders as is computed once at load (hs_tok_pieces_build) and kept in one pool,
 * so decoding is a copy per token. The rules are llama.cpp's token_to_piece: a NORMAL BPE token
 * spells its bytes in GPT-2's stand-in characters, which are mapped back (a character outside
 * that table, never present in a real byte-level vocabulary, is kept as its UTF-8); a NORMAL SPM
 * token has its "▁" turned into spaces; an SPM BYTE token <0xNN> is that byte; USER_DEFINED
 * tokens are their text; CONTROL and UNKNOWN tokens are "" unless the caller asks for special
 * tokens, then their text; UNUSED, undefined and BPE BYTE tokens are "".
 *
 * Streaming has one job: never hand out part of a UTF-8 character, since a token may end in the
 * middle of one (byte tokens, or a BPE token holding half of an emoji). A push decodes the bytes
 * held back from earlier pushes followed by the new token's bytes. Well-formed characters go out;
 * a trailing sequence that is a valid beginning of a character is held back (at most 3 bytes);
 * an ill-formed sequence becomes U+FFFD, one for each maximal subpart (the longest prefix of a
 * valid sequence, or a single byte that cannot start one), which is the Unicode-recommended
 * practice and what Python's "replace" error handler does. flush turns a held-back beginning
 * into one U+FFFD. */
#include <string.h>

#include "engine/tokenizer_internal.h"
#include "hswarm/alloc.h"
#include "hswarm/error.h"

#define ERR (&hs_tokenizer_err)
#define STREAM_FIRST_BOS (1u << 31) /* the stream's first token was BOS */

static size_t render(const hs_tokenizer *t, uint32_t id, char *out) {
  const unsigned char *s = (const unsigned char *)hs_strtab_str(&t->tab, id);
  size_t n = t->tab.len[id], o = 0;
  switch (t->type[id]) {
  case HS_TOKEN_USER_DEFINED:
    memcpy(out, s, n);
    return n;
  case HS_TOKEN_NORMAL:
    if (t->kind == HS_TOKENIZER_BPE) {
      for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t k = hs_utf8_valid_len(s + i, n - i, &cp);
        int b = k ? hs_bpe_cp_byte(cp) : -1;
        if (b >= 0) {
          out[o++] = (char)b;
        } else {
          if (!k) k = 1;
          memcpy(out + o, s + i, k);
          o += k;
        }
        i += k;
      }
      return o;
    }
    for (size_t i = 0; i < n;) {
      if (i + 3 <= n && s[i] == 0xe2 && s[i + 1] == 0x96 && s[i + 2] == 0x81) {
        out[o++] = ' ';
        i += 3;
      } else {
        out[o++] = (char)s[i++];
      }
    }
    return o;
  case HS_TOKEN_BYTE: {
    if (t->kind == HS_TOKENIZER_BPE) return 0;
    /* llama.cpp: strtol of the two characters after "<0x" */
    unsigned v = 0;
    for (size_t i = 3; i < 5 && i < n; i++) {
      unsigned c = s[i], d;
      if (c >= '0' && c <= '9') d = c - '0';
      else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
      else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
      else break;
      v = v * 16 + d;
    }
    out[0] = (char)v;
    return 1;
  }
  default:
    return 0;
  }
}

int hs_tok_pieces_build(hs_tokenizer *t) {
  size_t total = 0;
  for (uint32_t i = 0; i < t->n_vocab; i++) total += t->tab.len[i] + 1;
  t->piece = hs_malloc(total ? total : 1);
  t->piece_off = hs_malloc((size_t)t->n_vocab * sizeof *t->piece_off);
  t->piece_len = hs_malloc((size_t)t->n_vocab * sizeof *t->piece_len);
  if (!t->piece || !t->piece_off || !t->piece_len)
    return hs_set_error(ERR, HS_ENOMEM, "out of memory for the token pieces");
  size_t o = 0;
  for (uint32_t i = 0; i < t->n_vocab; i++) {
    t->piece_off[i] = o;
    size_t n = render(t, i, t->piece + o);
    t->piece_len[i] = (uint32_t)n;
    o += n;
  }
  return 0;
}

int hs_tokenizer_token_bytes(const hs_tokenizer *t, int32_t id, unsigned flags, const char **s,
                             size_t *len) {
  if (!t || !s || !len || id < 0 || (uint32_t)id >= t->n_vocab)
    return hs_set_error(ERR, HS_EINVAL, "token id %d is out of range", (int)id);
  uint8_t ty = t->type[id];
  if ((flags & HS_DETOK_SPECIAL) && (ty == HS_TOKEN_CONTROL || ty == HS_TOKEN_UNKNOWN)) {
    *s = hs_strtab_str(&t->tab, (uint32_t)id);
    *len = t->tab.len[id];
    return 0;
  }
  *s = t->piece + t->piece_off[id];
  *len = t->piece_len[id];
  return 0;
}

/* Whether the token at position idx of a sequence loses its leading space: the first token, or
 * the second when the first is BOS. */
static bool strip_here(const hs_tokenizer *t, unsigned flags, size_t idx, bool first_is_bos) {
  if (!(flags & HS_DETOK_STRIP_LEADING_SPACE) || !t->add_space_prefix) return false;
  return idx == (first_is_bos ? 1u : 0u);
}

int hs_tokenizer_decode(const hs_tokenizer *t, const int32_t *ids, size_t n, unsigned flags,
                        char *out, size_t cap, size_t *n_out) {
  if (n_out) *n_out = 0;
  if (!t || !n_out || (!ids && n) || (!out && cap))
    return hs_set_error(ERR, HS_EINVAL, "hs_tokenizer_decode: NULL argument");
  size_t total = 0;
  bool first_bos = n > 0 && t->bos >= 0 && ids[0] == t->bos;
  for (size_t i = 0; i < n; i++) {
    const char *s;
    size_t len;
    int rc = hs_tokenizer_token_bytes(t, ids[i], flags, &s, &len);
    if (rc) return hs_set_error(ERR, rc, "decode: id %d at position %zu is out of range",
                                (int)ids[i], i);
    if (len && s[0] == ' ' && strip_here(t, flags, i, first_bos)) {
      s++;
      len--;
    }
    if (total < cap) memcpy(out + total, s, len < cap - total ? len : cap - total);
    total += len;
  }
  *n_out = total;
  if (total > cap)
    return hs_set_error(ERR, HS_ENOSPC, "decode: the text has %zu bytes, the buffer holds %zu",
                        total, cap);
  return 0;
}

/* ---- streaming ---- */

void hs_detok_stream_init(hs_detok_stream *st, unsigned flags) {
  memset(st, 0, sizeof *st);
  st->flags = flags & (HS_DETOK_SPECIAL | HS_DETOK_STRIP_LEADING_SPACE);
}

typedef struct wbuf {
  char *out;
  size_t cap, n;
} wbuf;

static void wput(wbuf *w, const void *p, size_t k) {
  if (w->n < w->cap) memcpy(w->out + w->n, p, k < w->cap - w->n ? k : w->cap - w->n);
  w->n += k;
}

/* Decodes in[0..n) into w; returns where a trailing incomplete (but so far valid) sequence
 * starts, n when there is none. */
static size_t emit_utf8(const unsigned char *in, size_t n, wbuf *w) {
  static const char fffd[3] = {(char)0xef, (char)0xbf, (char)0xbd};
  size_t i = 0;
  while (i < n) {
    unsigned c = in[i];
    if (c < 0x80) {
      wput(w, in + i, 1);
      i++;
      continue;
    }
    size_t need;
    unsigned lo = 0x80, hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) {
      need = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
      need = 3;
      if (c == 0xe0) lo = 0xa0;
      if (c == 0xed) hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      need = 4;
      if (c == 0xf0) lo = 0x90;
      if (c == 0xf4) hi = 0x8f;
    } else {
      wput(w, fffd, 3);
      i++;
      continue;
    }
    size_t k = 1;
    while (k < need && i + k < n) {
      unsigned b = in[i + k];
      unsigned l = k == 1 ? lo : 0x80, h = k == 1 ? hi : 0xbf;
      if (b < l || b > h) break;
      k++;
    }
    if (k == need) {
      wput(w, in + i, need);
      i += need;
    } else if (i + k == n) {
      return i; /* a valid beginning, cut by the end of the input */
    } else {
      wput(w, fffd, 3);
      i += k;
    }
  }
  return n;
}

int hs_detok_stream_push(const hs_tokenizer *t, hs_detok_stream *st, int32_t id, char *out,
                         size_t cap, size_t *n_out) {
  if (n_out) *n_out = 0;
  if (!t || !st || !n_out || (!out && cap) || st->n_pending > 3)
    return hs_set_error(ERR, HS_EINVAL, "hs_detok_stream_push: bad argument");
  const char *s;
  size_t len;
  int rc = hs_tokenizer_token_bytes(t, id, st->flags, &s, &len);
  if (rc) return rc;
  bool first_bos = st->n_tokens == 0 ? t->bos >= 0 && id == t->bos
                                      : (st->flags & STREAM_FIRST_BOS) != 0;
  if (len && s[0] == ' ' && strip_here(t, st->flags, st->n_tokens, first_bos)) {
    s++;
    len--;
  }
  unsigned char small[256];
  unsigned char *in = small;
  size_t n = st->n_pending + len;
  if (n > sizeof small) {
    in = hs_malloc(n);
    if (!in) return hs_set_error(ERR, HS_ENOMEM, "out of memory in the stream detokenizer");
  }
  memcpy(in, st->pending, st->n_pending);
  if (len) memcpy(in + st->n_pending, s, len);
  wbuf w = {out, cap, 0};
  size_t keep = emit_utf8(in, n, &w);
  *n_out = w.n;
  if (w.n > cap) {
    if (in != small) hs_free(in);
    return hs_set_error(ERR, HS_ENOSPC, "stream: %zu bytes to emit, the buffer holds %zu", w.n,
                        cap);
  }
  st->n_pending = n - keep;
  memcpy(st->pending, in + keep, st->n_pending);
  if (in != small) hs_free(in);
  if (st->n_tokens == 0 && t->bos >= 0 && id == t->bos) st->flags |= STREAM_FIRST_BOS;
  st->n_tokens++;
  return 0;
}

int hs_detok_stream_flush(hs_detok_stream *st, char *out, size_t cap, size_t *n_out) {
  if (n_out) *n_out = 0;
  if (!st || !n_out || (!out && cap))
    return hs_set_error(ERR, HS_EINVAL, "hs_detok_stream_flush: bad argument");
  if (st->n_pending == 0) return 0;
  *n_out = 3;
  if (cap < 3) return hs_set_error(ERR, HS_ENOSPC, "stream: 3 bytes to emit, the buffer holds %zu", cap);
  memcpy(out, "\xef\xbf\xbd", 3);
  st->n_pending = 0;
  return 0;
}
