// openai_client.mjs: the official `openai` package (tests/node/package.json, pinned) drives
// hswarm serve: chat, streaming, log-probabilities, n > 1, completions, embeddings, a JSON-schema answer, and an
// authentication failure. Run by tests/cli/test_serve_openai.sh:
//   node openai_client.mjs BASE_URL API_KEY MODEL
// Prints one line per check and exits 1 at the first failure.
import OpenAI from "openai";

const [baseURL, apiKey, model] = process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey, maxRetries: 0 });

function check(ok, what, detail) {
  if (!ok) {
    console.error(`FAIL: ${what}${detail === undefined ? "" : ": " + JSON.stringify(detail)}`);
    process.exit(1);
  }
  console.log(`ok: ${what}`);
}

const messages = [
  { role: "system", content: "Answer briefly." },
  { role: "user", content: "f(0)=3 f(1)=5 f(2)=7" },
];

// models
const models = await client.models.list();
check(models.data.length === 1 && models.data[0].id === model, "models.list", models.data);

// chat
const chat = await client.chat.completions.create({ model, messages, max_tokens: 12, temperature: 0 });
check(chat.object === "chat.completion" && chat.choices[0].message.role === "assistant" &&
      typeof chat.choices[0].message.content === "string", "chat.completions.create", chat);
check(chat.usage.total_tokens === chat.usage.prompt_tokens + chat.usage.completion_tokens &&
      chat.usage.completion_tokens > 0, "chat usage", chat.usage);

// streaming: the chunks add up to the same greedy answer
const stream = await client.chat.completions.create({ model, messages, max_tokens: 12, temperature: 0,
                                                      stream: true, stream_options: { include_usage: true } });
let text = "", finish = null, usage = null, chunks = 0;
for await (const chunk of stream) {
  chunks++;
  if (chunk.usage) usage = chunk.usage;
  for (const c of chunk.choices) {
    text += c.delta.content ?? "";
    if (c.finish_reason) finish = c.finish_reason;
  }
}
check(chunks > 2 && text === chat.choices[0].message.content, "streamed chat equals the whole one",
      { text, whole: chat.choices[0].message.content });
check(finish === chat.choices[0].finish_reason && usage && usage.completion_tokens > 0,
      "stream finish_reason and usage", { finish, usage });

// log-probabilities
const lp = await client.chat.completions.create({ model, messages, max_tokens: 4, temperature: 0,
                                                 logprobs: true, top_logprobs: 3 });
const content = lp.choices[0].logprobs.content;
check(content.length === 4 && content.every(t => t.top_logprobs.length === 3 && t.logprob <= 0 &&
      t.token === t.top_logprobs[0].token), "logprobs with top_logprobs", content);

// n > 1
const many = await client.chat.completions.create({ model, messages, max_tokens: 8, n: 4, seed: 3 });
check(many.choices.length === 4 && many.choices.every((c, i) => c.index === i), "n = 4", many.choices);

// completions
const comp = await client.completions.create({ model, prompt: "Write f(x) to fit the examples\nf(0)=1 f(1)=2 f(2)=3\nf(x)=",
                                               max_tokens: 40, temperature: 0, stop: ["\n"] });
check(comp.object === "text_completion" && comp.choices[0].text.length > 0 &&
      !comp.choices[0].text.includes("\n"), "completions.create", comp.choices[0]);

// embeddings
const emb = await client.embeddings.create({ model, input: ["f(0)=3", "f(1)=5"] });
check(emb.data.length === 2 && emb.data[0].embedding.length > 0 &&
      emb.data[0].embedding.every(Number.isFinite), "embeddings.create (base64, the client's default)",
      emb.data.length);

// a JSON-schema answer
const json = await client.chat.completions.create({
  model, messages, max_tokens: 40,
  response_format: { type: "json_schema", json_schema: { name: "pick", schema: {
    type: "object", properties: { answer: { enum: ["yes", "no"] } }, required: ["answer"] } } },
});
const parsed = JSON.parse(json.choices[0].message.content);
check(parsed.answer === "yes" || parsed.answer === "no", "response_format json_schema", parsed);

// bad requests come back as the client's typed errors
try {
  await client.chat.completions.create({ model, messages, max_tokens: 8, temperature: 5 });
  check(false, "a bad temperature was accepted");
} catch (e) {
  check(e instanceof OpenAI.BadRequestError && e.status === 400 && e.param === "temperature",
        "BadRequestError names the parameter", { status: e.status, param: e.param });
}

// authentication failure
const wrong = new OpenAI({ baseURL, apiKey: apiKey + "x", maxRetries: 0 });
try {
  await wrong.chat.completions.create({ model, messages, max_tokens: 4 });
  check(false, "a wrong API key was accepted");
} catch (e) {
  check(e instanceof OpenAI.AuthenticationError && e.status === 401, "AuthenticationError (401)",
        { status: e.status, name: e.constructor.name });
}
console.log("all client checks passed");
