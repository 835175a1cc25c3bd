// Checks constrained decoding against ajv, a reference JSON Schema
// validator:
//   1. every label of constrain/testdata/corpus.json (the matcher's
//      accept/reject corpus) agrees with ajv;
//   2. the matcher's random samples (SAMPLES=file from the constrain
//      package's TestSamplesParse) all validate;
//   3. with BASE_URL, a running `mlx-moe serve`: REQUESTS json_schema
//      requests (default 50) spread over the corpus's 10 schemas, and as many
//      forced tool calls (OpenAI required and named, Anthropic any and tool,
//      Responses required), all validate against their schema.
// Exits 1 on any failure; prints one summary line per part.
import { readFileSync } from "node:fs";
import Ajv from "ajv";
import addFormats from "ajv-formats";

const here = new URL(".", import.meta.url).pathname;
const corpus = JSON.parse(readFileSync(`${here}/../../constrain/testdata/corpus.json`, "utf8"));
const ajv = new Ajv({ strict: false, allErrors: true });
addFormats(ajv);
let failures = 0;
const fail = (msg) => { failures++; console.error("FAIL " + msg); };
const validators = new Map(corpus.map((c) => [c.name, ajv.compile(c.schema)]));

// 1. corpus labels
let labels = 0;
for (const c of corpus) {
  const v = validators.get(c.name);
  for (const d of c.valid) { labels++; if (!v(JSON.parse(d))) fail(`${c.name}: corpus says valid, ajv says ${ajv.errorsText(v.errors)}: ${d}`); }
  for (const d of c.invalid) {
    labels++;
    let doc;
    try { doc = JSON.parse(d); } catch { continue; } // not JSON at all: invalid by any validator
    if (v(doc)) fail(`${c.name}: corpus says invalid, ajv accepts: ${d}`);
  }
}
console.log(`corpus: ${labels} labels checked against ajv`);

// 2. matcher samples
if (process.env.SAMPLES) {
  const sets = JSON.parse(readFileSync(process.env.SAMPLES, "utf8"));
  let n = 0;
  for (const s of sets) {
    const v = ajv.compile(s.schema);
    for (const doc of s.samples) {
      n++;
      if (!v(JSON.parse(doc))) fail(`sample of ${s.name} invalid: ${ajv.errorsText(v.errors)}: ${doc}`);
    }
  }
  console.log(`samples: ${n} matcher samples validated`);
}

// 3. a running server
const base = process.env.BASE_URL;
const requests = Number(process.env.REQUESTS || 50);
async function post(path, body, headers = {}) {
  const r = await fetch(base + path, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: JSON.stringify(body) });
  const text = await r.text();
  if (!r.ok) throw new Error(`${path}: HTTP ${r.status}: ${text}`);
  return JSON.parse(text);
}

const prompts = ["Describe it.", "Fill this in.", "Give an example.", "What is it?", "Write one."];
const maxTokens = 1500;

async function structured() {
  let ok = 0, tokens = 0;
  for (let i = 0; i < requests; i++) {
    const c = corpus[i % corpus.length];
    const seed = i;
    let content, label = `json_schema ${c.name} #${i}`;
    try {
      if (i % 5 === 4) {
        // The Responses API's text.format.
        const r = await post("/v1/responses", { model: "any", input: prompts[i % prompts.length], max_output_tokens: maxTokens, temperature: 1,
          text: { format: { type: "json_schema", name: c.name, schema: c.schema, strict: true } } });
        const msg = r.output.find((o) => o.type === "message");
        content = msg?.content?.[0]?.text;
        tokens += r.usage.output_tokens;
        label += " (responses)";
      } else {
        const r = await post("/v1/chat/completions", { model: "any", max_tokens: maxTokens, seed, temperature: 1,
          messages: [{ role: "user", content: prompts[i % prompts.length] }],
          response_format: { type: "json_schema", json_schema: { name: c.name, schema: c.schema, strict: true } } });
        content = r.choices[0].message.content;
        tokens += r.usage.completion_tokens;
      }
      const doc = JSON.parse(content);
      const v = validators.get(c.name);
      if (v(doc)) ok++; else fail(`${label}: ${ajv.errorsText(v.errors)}: ${content}`);
    } catch (e) { fail(`${label}: ${e.message} ${content ?? ""}`); }
  }
  console.log(`json_schema: ${ok}/${requests} responses validate (${tokens} tokens)`);
}

const toolSchemas = corpus.filter((c) => c.schema.type === "object" || c.schema.$ref);
const tools = toolSchemas.map((c) => ({ name: `make_${c.name}`, description: `Makes a ${c.name}.`, schema: c.schema }));
const toolValidator = new Map(tools.map((t) => [t.name, ajv.compile(t.schema)]));

async function forcedTools() {
  let ok = 0;
  for (let i = 0; i < requests; i++) {
    const t = tools[i % tools.length];
    // Two tools per request (the model's context is 1 k tokens).
    const offered = [t, tools[(i + 1) % tools.length]];
    const kind = ["openai-required", "openai-named", "anthropic-any", "anthropic-tool", "responses-required"][i % 5];
    let name, args;
    try {
      if (kind.startsWith("openai")) {
        const r = await post("/v1/chat/completions", { model: "any", max_tokens: maxTokens, seed: i, temperature: 1,
          messages: [{ role: "user", content: "Use the tool." }],
          tools: offered.map((x) => ({ type: "function", function: { name: x.name, description: x.description, parameters: x.schema } })),
          tool_choice: kind === "openai-named" ? { type: "function", function: { name: t.name } } : "required" });
        const call = r.choices[0].message.tool_calls?.[0];
        if (r.choices[0].finish_reason !== "tool_calls") throw new Error(`finish_reason ${r.choices[0].finish_reason}`);
        name = call?.function?.name; args = JSON.parse(call?.function?.arguments);
      } else if (kind.startsWith("anthropic")) {
        const r = await post("/v1/messages", { model: "any", max_tokens: maxTokens, temperature: 1,
          messages: [{ role: "user", content: "Use the tool." }],
          tools: offered.map((x) => ({ name: x.name, description: x.description, input_schema: x.schema })),
          tool_choice: kind === "anthropic-tool" ? { type: "tool", name: t.name } : { type: "any" } }, { "anthropic-version": "2023-06-01" });
        const use = r.content.find((b) => b.type === "tool_use");
        if (r.stop_reason !== "tool_use") throw new Error(`stop_reason ${r.stop_reason}`);
        name = use?.name; args = use?.input;
      } else {
        const r = await post("/v1/responses", { model: "any", input: "Use the tool.", max_output_tokens: maxTokens,
          tools: offered.map((x) => ({ type: "function", name: x.name, description: x.description, parameters: x.schema })), tool_choice: "required" });
        const call = r.output.find((o) => o.type === "function_call");
        name = call?.name; args = JSON.parse(call?.arguments);
      }
      const v = toolValidator.get(name);
      if (!v) throw new Error(`no call to a known tool (got ${name})`);
      if (kind.endsWith("named") || kind.endsWith("tool")) {
        if (name !== t.name) throw new Error(`called ${name}, forced ${t.name}`);
      }
      if (v(args)) ok++; else fail(`${kind} ${name}: ${ajv.errorsText(v.errors)}: ${JSON.stringify(args)}`);
    } catch (e) { fail(`${kind} #${i}: ${e.message}`); }
  }
  console.log(`forced tool calls: ${ok}/${requests} parse and validate`);
}

// Refusals: an unsupported keyword is a 400 that names it.
async function refusals() {
  const r = await fetch(base + "/v1/chat/completions", { method: "POST", headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: "any", messages: [{ role: "user", content: "x" }],
      response_format: { type: "json_schema", json_schema: { name: "p", schema: { type: "string", pattern: "^a+$" } } } }) });
  const body = await r.text();
  if (r.status !== 400 || !body.includes("pattern")) fail(`unsupported keyword: HTTP ${r.status} ${body}`);
  else console.log("refusal: unsupported keyword pattern -> 400 naming it");
}

if (base) {
  await structured();
  await forcedTools();
  await refusals();
}
if (failures) { console.error(`${failures} failures`); process.exit(1); }
