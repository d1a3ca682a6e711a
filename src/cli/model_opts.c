/* model_opts.c: command-line options shared by the commands that run a model (generate, bench
 * engine, and later run/serve): sampling options in the one spelling of DESIGN.md, opening a model
 * with its tokenizer, and turning a prompt (plain, or a chat rendered with a template) into ids. */
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/model_opts.h"
#include "hswarm/alloc.h"
#include "hswarm/chat.h"
#include "hswarm/error.h"

static int parse_float(const char *s, float *out) {
  char *end;
  double v = strtod(s, &end);
  if (!*s || *end) return -1;
  *out = (float)v;
  return 0;
}

int cli_sampling_opt(int argc, char **argv, int *i, hs_generate_params *p, cli_stops *stops) {
  const char *o = argv[*i];
  if (*i + 1 >= argc) return 0;
  const char *v = argv[*i + 1];
  uint64_t u;
  int bad = 0;
  if (!strcmp(o, "--temperature")) bad = parse_float(v, &p->sampling.temperature);
  else if (!strcmp(o, "--top-p")) bad = parse_float(v, &p->sampling.top_p);
  else if (!strcmp(o, "--min-p")) bad = parse_float(v, &p->sampling.min_p);
  else if (!strcmp(o, "--repeat-penalty")) bad = parse_float(v, &p->sampling.repetition_penalty);
  else if (!strcmp(o, "--presence-penalty")) bad = parse_float(v, &p->sampling.presence_penalty);
  else if (!strcmp(o, "--frequency-penalty")) bad = parse_float(v, &p->sampling.frequency_penalty);
  else if (!strcmp(o, "--top-k")) {
    bad = cli_parse_u64(v, 0, &u) || u > INT32_MAX;
    p->sampling.top_k = (int32_t)u;
  } else if (!strcmp(o, "--repeat-last-n")) {
    bad = cli_parse_u64(v, 0, &u);
    p->sampling.penalty_last_n = (size_t)u;
  } else if (!strcmp(o, "--seed")) {
    bad = cli_parse_u64(v, 0, &u);
    p->sampling.seed = u;
  } else if (!strcmp(o, "--max-tokens") || !strcmp(o, "-n")) {
    bad = cli_parse_u64(v, 0, &u) || u > UINT32_MAX;
    p->max_tokens = (uint32_t)u;
  } else if (!strcmp(o, "--stop")) {
    if (stops->n == CLI_MAX_STOPS || !*v) bad = 1;
    else stops->s[stops->n++] = v;
  } else {
    return 0;
  }
  if (bad) {
    cli_fail("bad value '%s' for %s", v, o);
    return -1;
  }
  (*i)++;
  return 1;
}

int cli_open_model(const char *path, unsigned threads, bool use_mmap, hs_model **m,
                   hs_tokenizer **t) {
  hs_model_opts o = {.n_threads = threads, .use_mmap = use_mmap};
  if (hs_model_open(path, &o, m)) {
    cli_fail("%s", hs_engine_last_error());
    return -1;
  }
  if (hs_tokenizer_load(hs_model_get_gguf(*m), t)) {
    cli_fail("%s: %s", path, hs_tokenizer_last_error());
    hs_model_close(*m);
    *m = NULL;
    return -1;
  }
  return 0;
}

int cli_model_kv_block(const char *path, hs_model_params *p, uint64_t *block_bytes) {
  hs_gguf *g;
  if (hs_gguf_open(path, &g) != 0) {
    cli_fail("%s: %s", path, hs_gguf_last_error());
    return -1;
  }
  int rc = hs_model_params_read(g, p);
  hs_gguf_close(g);
  if (rc != 0) {
    cli_fail("%s: %s", path, hs_model_last_error());
    return -1;
  }
  *block_bytes = hs_kv_block_bytes(p->n_layer, p->n_head_kv, p->head_dim, HS_KV_F16);
  return 0;
}

int cli_load_chat_template(const hs_gguf *g, const char *choice, hs_chat_template **out) {
  int rc;
  if (choice && strchr(choice, '/')) {
    rc = hs_chat_template_load_file(choice, out);
  } else {
    const char *dir = cli_data_dir("templates/chat/llama3.chat");
    if (!dir) {
      cli_fail("cannot find templates/chat (looked in the source tree and the "
                      "install prefix)");
      return -1;
    }
    char tdir[4096];
    snprintf(tdir, sizeof tdir, "%s/templates/chat", dir);
    if (choice) {
      rc = hs_chat_template_load_named(tdir, choice, out);
    } else {
      const char *jinja = NULL;
      size_t len;
      if (hs_gguf_get_str(g, "tokenizer.chat_template", &jinja, &len)) {
        cli_fail("the model has no tokenizer.chat_template; choose a template "
                        "with --chat-template NAME (llama3, llama2, mistral, chatml) or FILE\n");
        return -1;
      }
      char *z = hs_malloc(len + 1);
      if (!z) return -1;
      memcpy(z, jinja, len);
      z[len] = '\0';
      rc = hs_chat_template_detect(tdir, z, out);
      hs_free(z);
    }
  }
  if (rc) cli_fail("%s", hs_chat_last_error());
  return rc ? -1 : 0;
}

int cli_tokenize(const hs_tokenizer *t, const char *text, unsigned flags, int32_t **ids,
                 size_t *n) {
  size_t need = 0, len = strlen(text);
  int rc = hs_tokenizer_encode(t, text, len, flags, NULL, 0, &need);
  if (rc && rc != HS_ENOSPC) {
    cli_fail("tokenizing: %s", hs_tokenizer_last_error());
    return -1;
  }
  *ids = hs_malloc(sizeof(int32_t) * (need ? need : 1));
  if (!*ids) return -1;
  rc = hs_tokenizer_encode(t, text, len, flags, *ids, need, n);
  if (rc) {
    cli_fail("tokenizing: %s", hs_tokenizer_last_error());
    hs_free(*ids);
    *ids = NULL;
    return -1;
  }
  return 0;
}
