/* openai_request.h: the bodies of OpenAI-style API requests (POST /v1/completions,
 * /v1/chat/completions, /v1/embeddings), parsed and checked into one plain struct for the
 * server (hswarm serve) to hand to the scheduler.
 *
 * The parser does no I/O and knows no model: it checks JSON types, ranges and the limits it is
 * given, and answers either a request or an OpenAI-style error (HTTP status, message, the
 * offending parameter). Fields an OpenAI client may send and that change nothing here (user,
 * metadata, store, service_tier, parallel_tool_calls, an empty logit_bias) are accepted and
 * ignored; features this server does not have (tools, functions, images, audio, a non-empty
 * logit_bias) and any other field are refused by name, so that a client never silently gets
 * something other than what it asked for. Extensions: "priority" ("urgent", "normal",
 * "background") and "team" (an integer), which reach the scheduler, and "grammar" (GBNF text,
 * the field llama.cpp's server takes), which constrains the output.
 *
 * Ownership: every pointer in an hs_oai_request is owned by it and freed by
 * hs_oai_request_free (which also accepts a request whose parse failed). */
#ifndef HS_NET_OPENAI_REQUEST_H
#define HS_NET_OPENAI_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hswarm/chat.h"
#include "hswarm/sched.h"

typedef enum hs_oai_kind {
  HS_OAI_COMPLETION = 0, /* /v1/completions */
  HS_OAI_CHAT = 1,       /* /v1/chat/completions */
  HS_OAI_EMBEDDING = 2,  /* /v1/embeddings */
  HS_OAI_PREFIX = 3      /* POST /v1/prefixes (an extension): "prompt" or "messages" to pin */
} hs_oai_kind;

/* Limits checked by the parser (0 in a field: its default, in parentheses). */
typedef struct hs_oai_limits {
  uint32_t max_tokens;   /* largest max_tokens accepted (4096); also the default max_tokens */
  uint32_t max_n;        /* largest n (16) */
  uint32_t max_messages; /* messages per chat request (256) */
  uint32_t max_inputs;   /* inputs per embeddings request (256) */
  uint32_t max_stop;     /* stop strings (4, as OpenAI) */
  uint32_t max_stop_len; /* bytes per stop string (256) */
} hs_oai_limits;

/* An input given as token ids (completions' prompt, embeddings' input). */
typedef struct hs_oai_ids {
  int32_t *ids;
  size_t n;
} hs_oai_ids;

typedef struct hs_oai_request {
  hs_oai_kind kind;
  char *model; /* NULL when not given */

  /* the input: exactly one of these forms */
  char *prompt;               /* completions: the prompt as text */
  hs_oai_ids prompt_ids;      /* completions: the prompt as token ids (ids NULL if text) */
  hs_chat_message *messages;  /* chat: role and content, both owned ("developer" is "system") */
  size_t n_messages;
  char **inputs;              /* embeddings: texts... */
  hs_oai_ids *input_ids;      /* ...or token-id arrays; n_inputs of whichever is not NULL */
  size_t n_inputs;

  /* generation (completions and chat) */
  uint32_t max_tokens;  /* max_tokens or max_completion_tokens, else the limit */
  bool has_max_tokens;  /* given by the client (else the server may lower it to fit) */
  float temperature;    /* default 1 (OpenAI's); 0 is greedy */
  float top_p;          /* default 1 */
  float presence_penalty, frequency_penalty; /* -2..2, default 0 */
  bool has_seed;
  uint64_t seed;
  char **stops; /* each non-empty */
  size_t n_stops;
  uint32_t n; /* choices, default 1 */
  bool stream;
  bool stream_usage;     /* stream_options.include_usage */
  bool logprobs;         /* chat: logprobs true; completions: logprobs given (even 0) */
  uint32_t top_logprobs; /* alternatives per token: chat top_logprobs, completions logprobs */
  bool echo;             /* completions: echo the prompt before the completion */
  char *json_schema;     /* response_format json_schema's schema or, for json_object, any
                            object; JSON text, NULL when the output is free */
  char *grammar;         /* "grammar" (an extension, as llama.cpp's server): GBNF text, or NULL;
                            not both with a JSON response_format */

  /* extensions */
  hs_priority priority;
  uint32_t team;

  /* embeddings */
  bool base64; /* encoding_format "base64" (else "float") */
} hs_oai_request;

/* An OpenAI-style error: the HTTP status, a message naming the problem, the parameter (may be
 * empty), the error's type ("invalid_request_error") and code (may be empty). */
typedef struct hs_oai_error {
  int status;
  char message[512];
  char param[64];
  char type[48];
  char code[48];
} hs_oai_error;

/* Parses len bytes of body as a request of the given kind. limits may be NULL (defaults).
 * 0 and *q filled; or HS_EINVAL (err filled, status 400) or HS_ENOMEM (status 500), and *q
 * left empty (hs_oai_request_free accepts it). */
int hs_oai_request_parse(hs_oai_kind kind, const void *body, size_t len,
                         const hs_oai_limits *limits, hs_oai_request *q, hs_oai_error *err);

void hs_oai_request_free(hs_oai_request *q);

/* Fills err (type invalid_request_error unless given) and returns HS_EINVAL. */
int hs_oai_error_set(hs_oai_error *err, int status, const char *param, const char *code,
                     const char *fmt, ...) __attribute__((format(printf, 5, 6)));

#endif
