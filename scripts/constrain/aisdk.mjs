// The Vercel AI SDK (ai + @ai-sdk/openai-compatible) against a running
// `mlx-moe serve` (BASE_URL): generateObject with a zod schema (sent as
// response_format json_schema: the provider is created with
// supportsStructuredOutputs) and generateText with a forced toolChoice,
// COUNT times each; the SDK itself validates every object and tool input
// against the zod schema and throws AI_NoObjectGeneratedError /
// AI_ToolChoiceViolationError / AI_InvalidToolInputError otherwise.
import { generateObject, generateText, tool } from "ai";
import { createOpenAICompatible } from "@ai-sdk/openai-compatible";
import { z } from "zod";

globalThis.AI_SDK_LOG_WARNINGS = false; // generateObject's deprecation note
const base = process.env.BASE_URL;
const count = Number(process.env.COUNT || 5);
const provider = createOpenAICompatible({ name: "mlx-moe", baseURL: `${base}/v1`, apiKey: "none", supportsStructuredOutputs: true });
const model = provider("any");
let failures = 0;

const person = z.object({ name: z.string().max(20), age: z.number().int(), languages: z.array(z.enum(["go", "python", "rust"])).max(3) });
let objects = 0;
for (let i = 0; i < count; i++) {
  try {
    const { object } = await generateObject({ model, schema: person, prompt: "Describe a programmer.", maxOutputTokens: 300, seed: i });
    person.parse(object);
    objects++;
  } catch (e) { failures++; console.error(`FAIL generateObject #${i}: ${e.name}: ${e.message}`); }
}
console.log(`ai sdk generateObject: ${objects}/${count} objects match the zod schema`);

const tools = {
  get_weather: tool({ description: "Weather in a city.", inputSchema: z.object({ city: z.string().max(12), unit: z.enum(["c", "f"]) }) }),
  get_time: tool({ description: "Time in a zone.", inputSchema: z.object({ zone: z.string().max(12) }) }),
};
let calls = 0;
for (let i = 0; i < count; i++) {
  const toolName = i % 2 ? "get_time" : "get_weather";
  try {
    const r = await generateText({ model, tools, toolChoice: { type: "tool", toolName }, prompt: "Use a tool.", maxOutputTokens: 200, seed: i });
    const call = r.toolCalls[0];
    if (!call || call.toolName !== toolName) throw new Error(`expected a call to ${toolName}, got ${JSON.stringify(r.toolCalls)}`);
    calls++;
  } catch (e) { failures++; console.error(`FAIL forced toolChoice #${i}: ${e.name}: ${e.message}`); }
}
console.log(`ai sdk toolChoice {type: "tool"}: ${calls}/${count} calls to the forced tool with valid input`);
if (failures) process.exit(1);
