/* main.c: the hswarm program: dispatches to one subcommand per file (cmd_*.c). */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

static void usage(FILE *f) {
  fputs("usage: hswarm COMMAND [options]\n"
        "\n"
        "commands:\n"
        "  demo                       the main job: micro-swarms of the shipped model answer 1,000\n"
        "                             held-out tasks; single attempts against verified teams\n"
        "  run SCRIPT.lua [ARGS...]   run a swarm: SCRIPT's main(ctx, args) is the first agent\n"
        "  replay LOG                 re-execute a logged run and check it is identical\n"
        "  log LOG                    print an event log, one record per line\n"
        "  bench runtime              measure the agent runtime (spawn, memory, latency, rates)\n"
        "  bench engine -m FILE       measure the engine: prefill and decode tokens/s\n"
        "  bench swarm -m FILE        many agents sharing a prefix through the scheduler\n"
#ifdef HS_WITH_CODE
        "  bench code DIR             index speed, query latencies, tokens saved by slices\n"
#endif
        "  model info -m FILE         describe a GGUF model: shapes, tensor types, memory\n"
        "  model synth ... -o FILE    write a GGUF model with random weights and a learned vocabulary\n"
        "  generate -m FILE -p TEXT   generate text with a model\n"
        "  tokenize -m FILE TEXT      the token ids of a text\n"
        "  detokenize -m FILE IDS...  the text of token ids\n"
        "  embed -m FILE TEXT         the embedding of a text (pooled hidden states)\n"
        "  perplexity -m FILE -f TEXT a model's perplexity on a text (llama-perplexity's protocol)\n"
        "  serve -m FILE              an OpenAI-compatible HTTP server (completions, chat,\n"
        "                             embeddings, streaming; /metrics)\n"
#ifdef HS_WITH_CODE
        "  code --repo DIR --task TEXT --verify CMD\n"
        "                             the coding swarm: a verified patch for a task\n"
        "  defs FILE...               the definitions (and references) found in source files\n"
        "  patch apply FILE           apply a function-level patch; print its unified diff\n"
        "  index [DIR]                index a repository's definitions and references\n"
        "  sym NAME                   where NAME is defined (from the index)\n"
        "  callers NAME               what calls NAME (--depth N: transitively)\n"
        "  callees NAME               what NAME calls (--depth N: transitively)\n"
        "  search QUERY               definitions matching QUERY (full text, BM25)\n"
        "  slice NAME                 a definition with the signatures around it, and its tokens\n"
        "  map [DIR] --task TEXT      the repo map: ranked signatures within a token budget\n"
#endif
        "  version                    print the version\n"
        "\n"
        "Run `hswarm COMMAND --help` for the options of a command.\n",
        f);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    usage(stderr);
    return EXIT_USAGE;
  }
  const char *cmd = argv[1];
  /* -m/--model NAME: every command takes a published model's name where it takes a file (the
   * options stop at "--", after which arguments are the command's own text) */
  for (int i = 2; i + 1 < argc && strcmp(argv[i], "--"); i++)
    if (!strcmp(argv[i], "-m") || !strcmp(argv[i], "--model")) {
      argv[i + 1] = (char *)cli_model_path(argv[i + 1]);
      i++;
    }
  if (!strcmp(cmd, "demo")) return cmd_demo(argc - 1, argv + 1);
  if (!strcmp(cmd, "run")) return cmd_run(argc - 1, argv + 1);
  if (!strcmp(cmd, "replay")) return cmd_replay(argc - 1, argv + 1);
  if (!strcmp(cmd, "log")) return cmd_log(argc - 1, argv + 1);
  if (!strcmp(cmd, "bench")) return cmd_bench(argc - 1, argv + 1);
  if (!strcmp(cmd, "model")) return cmd_model(argc - 1, argv + 1);
  if (!strcmp(cmd, "generate")) return cmd_generate(argc - 1, argv + 1);
  if (!strcmp(cmd, "tokenize")) return cmd_tokenize(argc - 1, argv + 1);
  if (!strcmp(cmd, "detokenize")) return cmd_detokenize(argc - 1, argv + 1);
  if (!strcmp(cmd, "embed")) return cmd_embed(argc - 1, argv + 1);
  if (!strcmp(cmd, "perplexity")) return cmd_perplexity(argc - 1, argv + 1);
  if (!strcmp(cmd, "serve")) return cmd_serve(argc - 1, argv + 1);
#ifdef HS_WITH_CODE
  if (!strcmp(cmd, "code")) return cmd_code(argc - 1, argv + 1);
  if (!strcmp(cmd, "defs")) return cmd_defs(argc - 1, argv + 1);
  if (!strcmp(cmd, "patch")) return cmd_patch(argc - 1, argv + 1);
  if (!strcmp(cmd, "index")) return cmd_index(argc - 1, argv + 1);
  if (!strcmp(cmd, "sym")) return cmd_sym(argc - 1, argv + 1);
  if (!strcmp(cmd, "callers")) return cmd_callers(argc - 1, argv + 1);
  if (!strcmp(cmd, "callees")) return cmd_callees(argc - 1, argv + 1);
  if (!strcmp(cmd, "search")) return cmd_search(argc - 1, argv + 1);
  if (!strcmp(cmd, "slice")) return cmd_slice(argc - 1, argv + 1);
  if (!strcmp(cmd, "map")) return cmd_map(argc - 1, argv + 1);
#endif
  if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
    puts("hswarm 0.1.0");
    return 0;
  }
  if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
    usage(stdout);
    return 0;
  }
  fprintf(stderr, "hswarm: unknown command '%s'\n", cmd);
  usage(stderr);
  return EXIT_USAGE;
}
