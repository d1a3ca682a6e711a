/* synth_vocab.c: the vocabulary of a synthetic model (`hswarm model synth --tokenizer ...`).
 *
 * The vocabulary is learned from a text corpus by hs_vocab_train (byte-level BPE with a chosen
 * pre-tokenizer, or SentencePiece-style with scores and byte fallback) and written into the
 * model file through hs_synth_spec's tokenizer callback, together with a tokenizer.chat_template
 * in the family's style (Llama 3 headers for llama-bpe, ChatML for qwen2, [INST] for SPM), so
 * that `hswarm generate --chat` finds a template for the file as it does for published files.
 *
 * Without --corpus the project's own sources are the corpus: <source>/src in a build tree, or
 * <datadir>/hswarm/corpus (the same files, installed) after `make install`. */
#include <stdio.h>
#include <string.h>

#include "cli/synth_vocab.h"
#include "hswarm/alloc.h"
#include "hswarm/error.h"

/* Chat templates in Jinja, written for these files: each renders the messages in its family's
 * format (the markers are what hs_chat_template_detect looks for). */
static const char LLAMA3_JINJA[] =
    "{{- bos_token }}{%- for m in messages %}"
    "{{- '<|start_header_id|>' + m['role'] + '<|end_header_id|>\\n\\n' + m['content'] | trim + "
    "'<|eot_id|>' }}{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}"
    "{%- endif %}";
static const char CHATML_JINJA[] =
    "{%- for m in messages %}{{- '<|im_start|>' + m['role'] + '\\n' + m['content'] + "
    "'<|im_end|>\\n' }}{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}";
static const char LLAMA2_JINJA[] =
    "{%- for m in messages %}{%- if m['role'] == 'system' %}"
    "{{- '[INST] <<SYS>>\\n' + m['content'] + '\\n<</SYS>>\\n\\n' }}"
    "{%- elif m['role'] == 'user' %}{{- '[INST] ' + m['content'] + ' [/INST]' }}"
    "{%- else %}{{- ' ' + m['content'] + eos_token }}{%- endif %}{%- endfor %}";

/* Gemma's turn convention, for gemma3 files (written for these tests, in the shape of Google's:
 * no system turn, the system message in front of the first user message, "model" turns). */
static const char GEMMA_JINJA[] =
    "{{- bos_token }}{%- set sys = '' %}{%- for m in messages %}"
    "{%- if m['role'] == 'system' %}{%- set sys = m['content'] | trim + '\\n\\n' %}"
    "{%- else %}{{- '<start_of_turn>' + ('model' if m['role'] == 'assistant' else 'user') + "
    "'\\n' + sys + m['content'] | trim + '<end_of_turn>\\n' }}{%- set sys = '' %}{%- endif %}"
    "{%- endfor %}{%- if add_generation_prompt %}{{- '<start_of_turn>model\\n' }}{%- endif %}";

int cli_synth_vocab_parse_kind(const char *v, cli_synth_vocab *sv) {
  if (!strcmp(v, "bpe")) {
    sv->kind = CLI_VOCAB_BPE;
  } else if (!strcmp(v, "spm")) {
    sv->kind = CLI_VOCAB_SPM;
  } else if (!strcmp(v, "bytes")) {
    sv->kind = CLI_VOCAB_BYTES;
  } else {
    return -1;
  }
  return 0;
}

static int default_corpus(char *buf, size_t size) {
  const char *root = cli_data_dir("src/engine/tokenizer.c");
  if (root) return snprintf(buf, size, "%s/src", root) < (int)size ? 0 : -1;
  root = cli_data_dir("corpus/engine/tokenizer.c");
  if (root) return snprintf(buf, size, "%s/corpus", root) < (int)size ? 0 : -1;
  return -1;
}

static int add_vocab(hs_gguf_writer *w, void *ctx) {
  cli_synth_vocab *sv = ctx;
  hs_vocab_train_opts o = {
      .kind = sv->kind == CLI_VOCAB_SPM ? HS_TOKENIZER_SPM : HS_TOKENIZER_BPE,
      .n_vocab = sv->n_vocab,
      .pre = sv->pre,
  };
  int rc = hs_vocab_train(sv->corpus, sv->corpus_len, &o, w, &sv->result);
  if (rc != 0) {
    snprintf(sv->error, sizeof sv->error, "%s", hs_tokenizer_last_error());
    return rc;
  }
  const char *jinja = sv->arch == HS_MODEL_ARCH_GEMMA3                ? GEMMA_JINJA
                      : sv->kind == CLI_VOCAB_SPM                     ? LLAMA2_JINJA
                      : (sv->pre && !strcmp(sv->pre, "qwen2"))        ? CHATML_JINJA
                                                                      : LLAMA3_JINJA;
  return hs_gguf_writer_add_str(w, "tokenizer.chat_template", jinja, strlen(jinja));
}

int cli_synth_vocab_prepare(cli_synth_vocab *sv, hs_synth_spec *s) {
  if (sv->kind == CLI_VOCAB_BYTES) {
    if (sv->corpus_path) {
      fprintf(stderr, "hswarm model synth: --corpus needs --tokenizer bpe or spm\n");
      return HS_EINVAL;
    }
    return 0;
  }
  if (!sv->pre && sv->kind == CLI_VOCAB_BPE)
    sv->pre = s->arch == HS_MODEL_ARCH_QWEN2 || s->arch == HS_MODEL_ARCH_QWEN3 ? "qwen2" : "llama-bpe";
  if (sv->pre && sv->kind == CLI_VOCAB_SPM) {
    fprintf(stderr, "hswarm model synth: --pre applies to --tokenizer bpe only\n");
    return HS_EINVAL;
  }
  char dflt[4096];
  const char *path = sv->corpus_path;
  if (!path) {
    if (default_corpus(dflt, sizeof dflt) != 0) {
      fprintf(stderr, "hswarm model synth: no default corpus found (the project's sources); "
                      "give one with --corpus PATH\n");
      return HS_ENOENT;
    }
    path = dflt;
  }
  int rc = hs_vocab_read_corpus(path, &sv->corpus, &sv->corpus_len);
  if (rc != 0) {
    fprintf(stderr, "hswarm model synth: corpus %s: %s\n", path, hs_tokenizer_last_error());
    return rc;
  }
  snprintf(sv->corpus_used, sizeof sv->corpus_used, "%s", path);
  sv->n_vocab = s->n_vocab;
  sv->arch = s->arch;
  s->add_tokenizer = add_vocab;
  s->tokenizer_ctx = sv;
  return 0;
}

void cli_synth_vocab_release(cli_synth_vocab *sv) {
  hs_free(sv->corpus);
  sv->corpus = NULL;
}
