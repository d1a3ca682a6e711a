/* synth_vocab.h: the learned vocabulary of `hswarm model synth` (synth_vocab.c). */
#ifndef HS_CLI_SYNTH_VOCAB_H
#define HS_CLI_SYNTH_VOCAB_H

#include <stddef.h>

#include "cli/cli.h"
#include "hswarm/synth.h"
#include "hswarm/tokenizer.h"

typedef enum cli_vocab_kind {
  CLI_VOCAB_BPE = 0, /* byte-level BPE learned from the corpus (the default) */
  CLI_VOCAB_SPM,     /* SentencePiece-style learned from the corpus */
  CLI_VOCAB_BYTES,   /* the minimal byte vocabulary, no corpus (hs_synth_add_byte_tokenizer) */
} cli_vocab_kind;

/* Zero-initialise, then set kind, pre (NULL: the architecture's) and corpus_path (NULL: the
 * project's sources), all borrowed from argv. */
typedef struct cli_synth_vocab {
  cli_vocab_kind kind;
  const char *pre;
  const char *corpus_path;
  /* filled by cli_synth_vocab_prepare and the write */
  char *corpus; /* owned; cli_synth_vocab_release frees it */
  size_t corpus_len;
  char corpus_used[4096];
  uint32_t n_vocab;
  hs_model_arch arch; /* gemma3 files get Gemma's chat template */
  hs_vocab_train_result result;
  char error[512];
} cli_synth_vocab;

/* "bpe", "spm" or "bytes" into sv->kind; -1 for anything else. */
int cli_synth_vocab_parse_kind(const char *v, cli_synth_vocab *sv);

/* Reads the corpus and points s's tokenizer callback at sv (which must outlive the write).
 * 0, or a negative HS_E* code after a message on stderr. */
int cli_synth_vocab_prepare(cli_synth_vocab *sv, hs_synth_spec *s);

void cli_synth_vocab_release(cli_synth_vocab *sv);

#endif
