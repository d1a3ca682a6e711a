/* cmd_generate.c: `hswarm generate -m FILE -p PROMPT [options]`: one sequence, streamed to stdout
 * as it is generated (whole UTF-8 characters only), with figures on stderr; --json prints one
 * object at the end instead (see docs/json.md). The prompt is taken as plain text, or with --chat
 * as one user message rendered with the model's chat template. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/model_opts.h"
#include "hswarm/alloc.h"
#include "hswarm/error.h"

#define USAGE                                                                                    \
  "usage: hswarm generate -m FILE (-p PROMPT | -f FILE) [options]\n"                             \
  "  --chat                  the prompt is a user message, rendered with the chat template\n"   \
  "  --system TEXT           a system message (with --chat)\n"                                  \
  "  --chat-template NAME|FILE  llama3, llama2, mistral, chatml, chatml-smollm2, gemma, or a\n" \
  "                          template file\n"                                                 \
  "                          (default: chosen from the model's tokenizer.chat_template)\n"      \
  "  -n, --max-tokens N      tokens to generate (default 256; 0: until the context is full)\n"  \
  "  --temperature T --top-k K --top-p P --min-p P --seed N\n"                                  \
  "  --repeat-penalty R --repeat-last-n N --presence-penalty X --frequency-penalty X\n"          \
  "  --stop TEXT             stop when TEXT appears (repeatable; not printed)\n"                \
  "  --ignore-eos            keep generating past end-of-generation tokens\n"                   \
  "  --grammar FILE | --grammar-text GBNF | --json-schema FILE   constrain the output\n"        \
  "  --special               parse special-token texts in the prompt, print control tokens\n"   \
  "  --no-bos                do not add the BOS token\n"                                        \
  "  --ctx N                 context size (default: min(training context, 4096))\n"            \
  "  --threads N             threads (default: all cores)\n"                                    \
  "  --mmap                  map the model file instead of reading it into memory (faster to\n" \
  "                          start, slower to decode)\n"                                        \
  "  --ids                   also print the generated token ids\n"                              \
  "  --json                  one JSON object on stdout\n"

typedef struct gen_opts {
  const char *model, *prompt, *prompt_file, *system, *template_choice;
  const char *grammar_file, *grammar_text, *schema_file;
  bool chat, special, no_bos, ids, json, use_mmap;
  uint64_t ctx, threads;
  hs_generate_params p;
  cli_stops stops;
} gen_opts;

static int print_token(void *ctx, int32_t token, const char *text, size_t len) {
  (void)ctx;
  (void)token;
  fwrite(text, 1, len, stdout);
  fflush(stdout);
  return 0;
}

static int parse_args(int argc, char **argv, gen_opts *o) {
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    int r = cli_sampling_opt(argc, argv, &i, &o->p, &o->stops);
    if (r < 0) return -1;
    if (r > 0) continue;
    bool has = i + 1 < argc;
    if ((!strcmp(a, "-m") || !strcmp(a, "--model")) && has) o->model = argv[++i];
    else if ((!strcmp(a, "-p") || !strcmp(a, "--prompt")) && has) o->prompt = argv[++i];
    else if (!strcmp(a, "-f") && has) o->prompt_file = argv[++i];
    else if (!strcmp(a, "--system") && has) o->system = argv[++i];
    else if (!strcmp(a, "--chat-template") && has) o->template_choice = argv[++i];
    else if (!strcmp(a, "--grammar") && has) o->grammar_file = argv[++i];
    else if (!strcmp(a, "--grammar-text") && has) o->grammar_text = argv[++i];
    else if (!strcmp(a, "--json-schema") && has) o->schema_file = argv[++i];
    else if (!strcmp(a, "--ctx") && has) {
      if (cli_parse_u64(argv[++i], 0, &o->ctx) || o->ctx > UINT32_MAX) return -1;
    } else if (!strcmp(a, "--threads") && has) {
      if (cli_parse_u64(argv[++i], 0, &o->threads) || o->threads > 1024) return -1;
    } else if (!strcmp(a, "--chat")) o->chat = true;
    else if (!strcmp(a, "--special")) o->special = true;
    else if (!strcmp(a, "--no-bos")) o->no_bos = true;
    else if (!strcmp(a, "--ignore-eos")) o->p.ignore_eos = true;
    else if (!strcmp(a, "--ids")) o->ids = true;
    else if (!strcmp(a, "--mmap")) o->use_mmap = true;
    else if (!strcmp(a, "--json")) o->json = true;
    else {
      cli_fail("generate: unknown or incomplete option '%s'", a);
      return -1;
    }
  }
  if (!o->model || (!o->prompt == !o->prompt_file)) {
    cli_fail("generate: give -m FILE and one of -p PROMPT or -f FILE");
    return -1;
  }
  if ((o->grammar_file != NULL) + (o->grammar_text != NULL) + (o->schema_file != NULL) > 1) {
    cli_fail("generate: give at most one of --grammar, --grammar-text, --json-schema");
    return -1;
  }
  if (o->system && !o->chat) {
    cli_fail("generate: --system needs --chat");
    return -1;
  }
  return 0;
}

/* The prompt text: as given, or rendered as a chat. Returns a hs_malloc'd string or NULL. */
static char *prompt_text(const gen_opts *o, const hs_model *m, const char *user,
                         hs_chat_template **tmpl) {
  if (!o->chat) {
    size_t n = strlen(user);
    char *s = hs_malloc(n + 1);
    if (s) memcpy(s, user, n + 1);
    return s;
  }
  if (cli_load_chat_template(hs_model_get_gguf(m), o->template_choice, tmpl)) return NULL;
  hs_chat_message msgs[2];
  size_t n = 0;
  if (o->system) msgs[n++] = (hs_chat_message){"system", o->system};
  msgs[n++] = (hs_chat_message){"user", user};
  char *out = NULL;
  if (hs_chat_render(*tmpl, msgs, n, true, &out)) {
    cli_fail("generate: %s", hs_chat_last_error());
    return NULL;
  }
  return out;
}

static int load_grammar(const gen_opts *o, hs_grammar **g) {
  int rc = 0;
  if (o->grammar_text) {
    rc = hs_grammar_parse(o->grammar_text, strlen(o->grammar_text), NULL, g);
  } else if (o->grammar_file || o->schema_file) {
    size_t len;
    char *text = cli_read_file(o->grammar_file ? o->grammar_file : o->schema_file, &len);
    if (!text) return -1;
    rc = o->grammar_file ? hs_grammar_parse(text, len, NULL, g)
                         : hs_grammar_from_json_schema(text, len, g);
    hs_free(text);
  }
  if (rc)
    cli_fail("generate: %s%s%s", o->grammar_text ? "--grammar-text" : "",
             o->grammar_text ? ": " : "", hs_grammar_last_error());
  return rc ? -1 : 0;
}

static const char *finish_name(hs_finish_reason f) {
  return f == HS_FINISH_STOP ? "stop" : f == HS_FINISH_LENGTH ? "length" : "cancelled";
}

static void print_json(const gen_opts *o, const hs_generate_result *r,
                       const hs_chat_template *tmpl) {
  printf("{\"command\":\"generate\",\"status\":\"ok\",\"text\":");
  cli_json_string_n(stdout, r->text, r->text_len);
  printf(",\"finish_reason\":\"%s\",\"prompt_tokens\":%u,\"completion_tokens\":%u,"
         "\"prefill_seconds\":%.6f,\"decode_seconds\":%.6f,\"ids\":[",
         finish_name(r->finish), r->n_prompt, r->n_generated, r->prefill_seconds,
         r->decode_seconds);
  for (uint32_t i = 0; i < r->n_generated; i++) printf("%s%d", i ? "," : "", r->tokens[i]);
  printf("],\"chat_template\":");
  if (tmpl) cli_json_string(stdout, hs_chat_template_name(tmpl));
  else fputs("null", stdout);
  printf("}\n");
  (void)o;
}

int cmd_generate(int argc, char **argv) {
  if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
    fputs(USAGE, stdout);
    return 0;
  }
  gen_opts o = {0};
  hs_generate_params_init(&o.p);
  if (parse_args(argc, argv, &o)) {
    fputs(USAGE, stderr);
    return EXIT_USAGE;
  }
  char *file_prompt = o.prompt_file ? cli_read_file(o.prompt_file, NULL) : NULL;
  if (o.prompt_file && !file_prompt) {
    if (o.json) cli_json_error("generate", cli_last_failure());
    return EXIT_ERROR;
  }
  hs_model *m = NULL;
  hs_tokenizer *t = NULL;
  hs_chat_template *tmpl = NULL;
  hs_grammar *grammar = NULL;
  hs_grammar_vocab *gvocab = NULL;
  hs_seq *seq = NULL;
  char *text = NULL;
  int32_t *ids = NULL;
  size_t n_ids = 0;
  int status = EXIT_ERROR;
  const char *stops[CLI_MAX_STOPS + 8];
  size_t n_stops = 0;
  hs_generate_result res = {0};

  if (cli_open_model(o.model, (unsigned)o.threads, o.use_mmap, &m, &t)) goto done;
  if (!(text = prompt_text(&o, m, file_prompt ? file_prompt : o.prompt, &tmpl))) goto done;
  unsigned flags = (o.no_bos ? 0 : HS_TOKENIZE_ADD_BOS) |
                   (o.special || o.chat ? HS_TOKENIZE_PARSE_SPECIAL : 0);
  if (cli_tokenize(t, text, flags, &ids, &n_ids)) goto done;
  if (load_grammar(&o, &grammar)) goto done;
  if (grammar && hs_generate_vocab_create(t, &gvocab)) {
    cli_fail("generate: %s", hs_generate_last_error());
    goto done;
  }
  if (hs_seq_create(m, (uint32_t)o.ctx, &seq)) {
    cli_fail("generate: %s", hs_engine_last_error());
    goto done;
  }
  for (size_t i = 0; i < o.stops.n; i++) stops[n_stops++] = o.stops.s[i];
  for (size_t i = 0; tmpl && i < hs_chat_template_n_stops(tmpl) && n_stops < CLI_MAX_STOPS + 8; i++)
    stops[n_stops++] = hs_chat_template_stop(tmpl, i);
  o.p.stop = stops;
  o.p.n_stop = n_stops;
  o.p.grammar = grammar;
  o.p.grammar_vocab = gvocab;
  o.p.special_text = o.special;
  if (!o.json) o.p.on_token = print_token;
  if (hs_generate(m, t, seq, ids, n_ids, &o.p, &res)) {
    if (!o.json) fputc('\n', stdout);
    cli_fail("generate: %s", hs_generate_last_error());
    goto done;
  }
  if (o.json) {
    print_json(&o, &res, tmpl);
  } else {
    fputc('\n', stdout);
    if (o.ids) {
      printf("ids:");
      for (uint32_t i = 0; i < res.n_generated; i++) printf(" %d", res.tokens[i]);
      printf("\n");
    }
    fflush(stdout);
    fprintf(stderr,
            "prompt %u tokens in %.3f s (%.1f tok/s); generated %u tokens in %.3f s (%.1f tok/s); "
            "finish: %s\n",
            res.n_prompt, res.prefill_seconds,
            res.prefill_seconds > 0 ? res.n_prompt / res.prefill_seconds : 0.0, res.n_generated,
            res.decode_seconds, res.decode_seconds > 0 ? res.n_generated / res.decode_seconds : 0.0,
            finish_name(res.finish));
  }
  status = 0;
done:
  if (status && o.json) cli_json_error("generate", cli_last_failure());
  hs_generate_result_free(&res);
  hs_seq_destroy(seq);
  hs_grammar_vocab_destroy(gvocab);
  hs_grammar_destroy(grammar);
  hs_free(ids);
  hs_free(text);
  hs_chat_template_destroy(tmpl);
  hs_tokenizer_destroy(t);
  hs_model_close(m);
  hs_free(file_prompt);
  return status;
}
