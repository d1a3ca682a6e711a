/* hswarm/chat.h: chat formatting, from template files users can read and edit.
 *
 * An instruction-tuned model expects its conversation laid out in the convention it was trained
 * on (Llama 3's header tokens, Llama 2 / Mistral's [INST] markers, Qwen's ChatML). Each convention
 * is a small template file (templates/chat/<name>.chat in the repository, installed under
 * share/hswarm/templates/chat); this module parses one and renders a list of messages with it.
 *
 * The file format, one setting per line, '#' starts a comment line:
 *
 *   name = "llama3"                       a name (letters, digits, '-', '_', '.')
 *   detect = "<|start_header_id|>"        repeatable: the template is chosen for a model whose
 *                                         tokenizer.chat_template metadata contains ALL of these
 *   system = "...{content}..."            a system message
 *   user = "...{content}..."              a user message
 *   assistant = "...{content}..."         an assistant message
 *   user_first_with_system = "...{system}...{content}..."
 *                                         optional: the first user message when the conversation
 *                                         opens with a system message (conventions without a
 *                                         system turn fold it into the first user turn)
 *   user_first = "...{content}..."        optional: the first user message otherwise
 *   generation_prompt = "..."             appended when the caller asks for the assistant's turn
 *   default_system = "..."                optional: the system message used when none is given
 *   stop = "<|eot_id|>"                   repeatable: text that ends the assistant's turn
 *   trim = true | false                   strip leading/trailing whitespace of contents
 *
 * Values are double-quoted strings with the escapes \n \t \r \\ \" and \xHH; placeholders
 * {content} and {system} ({{ and }} give literal braces). Special-token texts in a template (such
 * as "<|eot_id|>") are meant to be tokenized with special-token parsing on (tokenizer.h).
 *
 * Errors (negative HS_E*; hs_chat_last_error names the line and column or the message):
 *   HS_ECORRUPT  a malformed template file; HS_EINVAL a bad argument or a conversation the template
 *   cannot express (an unknown role, a system message where the template has no place for it);
 *   HS_EIO / HS_ENOENT reading a file; HS_ENOMEM. */
#ifndef HSWARM_CHAT_H
#define HSWARM_CHAT_H

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct hs_chat_template hs_chat_template;

typedef struct hs_chat_message {
  const char *role;    /* "system", "user" or "assistant" */
  const char *content; /* NUL-terminated UTF-8 */
} hs_chat_message;

/* Parses a template from len bytes of text; origin names it in error messages (a path). The
 * template is owned by the caller (hs_chat_template_destroy); text is not kept. */
int hs_chat_template_parse(const char *text, size_t len, const char *origin,
                           hs_chat_template **out);
/* Reads and parses a file. */
int hs_chat_template_load_file(const char *path, hs_chat_template **out);
/* Finds a template by name in dir (dir/<name>.chat) or, when model_template is not NULL,
 * the first template in dir (in file-name order) whose detect strings all occur in
 * model_template (a GGUF's tokenizer.chat_template). HS_ENOENT when none fits. */
int hs_chat_template_load_named(const char *dir, const char *name, hs_chat_template **out);
int hs_chat_template_detect(const char *dir, const char *model_template, hs_chat_template **out);
void hs_chat_template_destroy(hs_chat_template *t); /* NULL is ignored */

const char *hs_chat_template_name(const hs_chat_template *t); /* valid while t lives */
/* Whether every detect string of t occurs in model_template (false when t has none). */
bool hs_chat_template_matches(const hs_chat_template *t, const char *model_template);
/* The stop strings: count, and the i-th (valid while t lives). */
size_t hs_chat_template_n_stops(const hs_chat_template *t);
const char *hs_chat_template_stop(const hs_chat_template *t, size_t i);

/* Renders n messages (and the generation prompt when add_generation_prompt) into a new
 * NUL-terminated string from hs_malloc (*out, freed with hs_free by the caller). */
int hs_chat_render(const hs_chat_template *t, const hs_chat_message *msgs, size_t n,
                   bool add_generation_prompt, char **out);

/* The calling thread's last error message of this module. Never NULL. */
const char *hs_chat_last_error(void);

#ifdef __cplusplus
}
#endif
#endif
