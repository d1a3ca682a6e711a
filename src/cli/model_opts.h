/* model_opts.h: options and helpers shared by the subcommands that run a model (model_opts.c). */
#ifndef HS_CLI_MODEL_OPTS_H
#define HS_CLI_MODEL_OPTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hswarm/chat.h"
#include "hswarm/engine.h"
#include "hswarm/generate.h"
#include "hswarm/tokenizer.h"

#define CLI_MAX_STOPS 16

/* Stop strings from repeated --stop options; the strings are argv's. */
typedef struct cli_stops {
  const char *s[CLI_MAX_STOPS];
  size_t n;
} cli_stops;

/* Sampling and length options: --temperature --top-k --top-p --min-p --repeat-penalty
 * --repeat-last-n --presence-penalty --frequency-penalty --seed --max-tokens/-n --stop.
 * If argv[*i] is one of them (with a value), stores it, advances *i past the value and returns 1;
 * returns 0 for another option, -1 (after a message) for a bad value. */
int cli_sampling_opt(int argc, char **argv, int *i, hs_generate_params *p, cli_stops *stops);

/* Opens a model and its tokenizer (use_mmap: map the file instead of reading it into memory);
 * 0, or -1 after cli_fail. */
int cli_open_model(const char *path, unsigned threads, bool use_mmap, hs_model **m,
                   hs_tokenizer **t);

/* Reads the hyperparameters of the model file at path (its header only, mapped: nothing else
 * is read) and the bytes of one block of its f16 KV cache, to size a budget before opening it.
 * 0, or -1 after cli_fail. */
int cli_model_kv_block(const char *path, hs_model_params *p, uint64_t *block_bytes);

/* A chat template: choice is a file path (contains '/'), a template name, or NULL to pick the
 * template matching the model's tokenizer.chat_template. 0, or -1 after a message. */
int cli_load_chat_template(const hs_gguf *g, const char *choice, hs_chat_template **out);

/* Tokenizes a NUL-terminated text into a new array (*ids, hs_free). 0, or -1 after a message. */
int cli_tokenize(const hs_tokenizer *t, const char *text, unsigned flags, int32_t **ids,
                 size_t *n);

#endif
