// Drives a running `mlx-moe serve` with the official OpenAI and Anthropic
// SDKs (node --test). Environment:
//   BASE_URL  the server, e.g. http://127.0.0.1:8080 (required)
//   API_KEY   the server's --api-key, if any
//   FAKE      "1" when the server runs the scripted test backend
//             (servertest.WeatherReply): exact answers and tool calls are
//             checked; without it only shapes and usage are.
//   FORMAT    the tool-call format the fake backend writes (for messages)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';

const baseURL = process.env.BASE_URL;
if (!baseURL) throw new Error('set BASE_URL to the running server, e.g. http://127.0.0.1:8080');
const apiKey = process.env.API_KEY || 'none';
const fake = process.env.FAKE === '1';
const format = process.env.FORMAT || '';

const openai = new OpenAI({ baseURL: baseURL + '/v1', apiKey, maxRetries: 0 });
const anthropic = new Anthropic({ baseURL, apiKey, maxRetries: 0 });

const models = await openai.models.list();
const model = models.data[0].id;

const weatherFn = {
  name: 'get_weather',
  description: 'Current weather in a city',
  parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
};

test('openai: models lists the loaded model', () => {
  assert.ok(model.length > 0);
  assert.equal(models.data[0].object, 'model');
});

test('openai: chat completion', async () => {
  const r = await openai.chat.completions.create({
    model, max_tokens: 24, messages: [{ role: 'user', content: 'def add(a, b):' }],
  });
  const c = r.choices[0];
  assert.equal(r.object, 'chat.completion');
  assert.equal(c.message.role, 'assistant');
  assert.equal(typeof c.message.content, 'string');
  assert.ok(['stop', 'length'].includes(c.finish_reason));
  assert.ok(r.usage.prompt_tokens > 0 && r.usage.completion_tokens > 0);
  assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens);
  if (fake) assert.equal(c.message.content, 'Hello! You said: def add(a, b):');
});

test('openai: streamed chat equals its final message, usage at the end', async () => {
  const stream = await openai.chat.completions.create({
    model, max_tokens: 24, stream: true, stream_options: { include_usage: true },
    messages: [{ role: 'user', content: 'import os' }],
  });
  let text = '';
  let usage = null;
  let finish = null;
  for await (const chunk of stream) {
    if (chunk.usage) usage = chunk.usage;
    const c = chunk.choices[0];
    if (!c) continue;
    text += c.delta.content ?? '';
    if (c.finish_reason) finish = c.finish_reason;
  }
  assert.ok(['stop', 'length'].includes(finish));
  assert.ok(usage && usage.completion_tokens > 0 && usage.prompt_tokens > 0);
  if (fake) assert.equal(text, 'Hello! You said: import os');
});

test('openai: stop strings are not emitted', async () => {
  const r = await openai.chat.completions.create({
    model, max_tokens: 24, stop: ['said'], messages: [{ role: 'user', content: 'hi' }],
  });
  assert.ok(!r.choices[0].message.content.includes('said'));
  if (fake) assert.equal(r.choices[0].message.content, 'Hello! You ');
});

test('openai: text completion', async () => {
  const r = await openai.completions.create({ model, prompt: 'def main():', max_tokens: 8 });
  assert.equal(r.object, 'text_completion');
  assert.equal(typeof r.choices[0].text, 'string');
  assert.ok(r.usage.completion_tokens > 0 && r.usage.completion_tokens <= 8);
});

test('openai: any model name is answered by the served model', async () => {
  const r = await openai.chat.completions.create({ model: 'gpt-4o', max_tokens: 4, messages: [{ role: 'user', content: 'hi' }] });
  assert.notEqual(r.model, 'gpt-4o');
  const m = await openai.models.retrieve('gpt-4o');
  assert.equal(m.id, r.model);
});

test('openai: tool call round trip (streamed call, then the answer)', { skip: !fake && 'needs the scripted backend' }, async () => {
  const messages = [{ role: 'user', content: 'Weather in Paris?' }];
  const stream = openai.chat.completions.stream({ model, messages, tools: [{ type: 'function', function: weatherFn }] });
  const first = await stream.finalChatCompletion();
  const msg = first.choices[0].message;
  assert.equal(first.choices[0].finish_reason, 'tool_calls');
  assert.equal(msg.content, 'Let me check.');
  assert.equal(msg.tool_calls.length, 1);
  const call = msg.tool_calls[0];
  assert.equal(call.function.name, 'get_weather');
  assert.deepEqual(JSON.parse(call.function.arguments), { city: 'Paris' });

  messages.push(msg, { role: 'tool', tool_call_id: call.id, content: 'sunny, 21 C' });
  const second = await openai.chat.completions.create({ model, messages, tools: [{ type: 'function', function: weatherFn }] });
  assert.equal(second.choices[0].message.content, 'It is sunny in Paris.');
  assert.equal(second.choices[0].finish_reason, 'stop');
});

test('anthropic: message, usage consistent with count_tokens', async () => {
  const params = { model, max_tokens: 24, system: 'You write Python.', messages: [{ role: 'user', content: 'def f(x):' }] };
  const count = await anthropic.messages.countTokens({ model, system: params.system, messages: params.messages });
  const m = await anthropic.messages.create(params);
  assert.equal(m.type, 'message');
  assert.equal(m.role, 'assistant');
  assert.ok(['end_turn', 'max_tokens'].includes(m.stop_reason));
  assert.equal(m.content[0].type, 'text');
  assert.equal(m.usage.input_tokens + (m.usage.cache_read_input_tokens ?? 0), count.input_tokens);
  assert.ok(m.usage.output_tokens > 0 && m.usage.output_tokens <= 24);
  if (fake) assert.equal(m.content[0].text, 'Hello! You said: def f(x):');
});

test('anthropic: streamed message (event helper and final message agree)', async () => {
  const params = { model, max_tokens: 24, messages: [{ role: 'user', content: 'class A:' }] };
  const count = await anthropic.messages.countTokens({ model, messages: params.messages });
  const stream = anthropic.messages.stream(params);
  let text = '';
  stream.on('text', (t) => { text += t; });
  const m = await stream.finalMessage();
  assert.equal(m.content[0].type, 'text');
  assert.equal(m.content[0].text, text);
  assert.ok(m.usage.output_tokens > 0);
  assert.equal(m.usage.input_tokens + (m.usage.cache_read_input_tokens ?? 0), count.input_tokens);
  if (fake) assert.equal(text, 'Hello! You said: class A:');
});

test('anthropic: stop_sequences', async () => {
  const m = await anthropic.messages.create({ model, max_tokens: 24, stop_sequences: ['said'], messages: [{ role: 'user', content: 'hi' }] });
  if (fake) {
    assert.equal(m.stop_reason, 'stop_sequence');
    assert.equal(m.stop_sequence, 'said');
    assert.equal(m.content[0].text, 'Hello! You ');
  } else {
    assert.ok(!m.content.some((b) => b.type === 'text' && b.text.includes('said')));
  }
});

test('anthropic: thinking block', { skip: !fake && 'needs the scripted backend' }, async () => {
  const m = await anthropic.messages.stream({
    model, max_tokens: 64, thinking: { type: 'enabled', budget_tokens: 1024 }, messages: [{ role: 'user', content: 'hi' }],
  }).finalMessage();
  assert.deepEqual(m.content.map((b) => b.type), ['thinking', 'text']);
  assert.equal(m.content[0].thinking, 'The user greets me.');
  assert.equal(m.content[1].text, 'Hello! You said: hi');
});

test('anthropic: images are rejected with a 400', async () => {
  await assert.rejects(
    anthropic.messages.create({
      model, max_tokens: 8,
      messages: [{ role: 'user', content: [{ type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'iVBORw0KGgo=' } }] }],
    }),
    (e) => e instanceof Anthropic.BadRequestError && e.error?.error?.type === 'invalid_request_error',
  );
});

test('anthropic: tool use round trip (streamed tool_use, then the answer)', { skip: !fake && 'needs the scripted backend' }, async () => {
  const tools = [{ name: weatherFn.name, description: weatherFn.description, input_schema: weatherFn.parameters }];
  const messages = [{ role: 'user', content: 'Weather in Paris?' }];
  const first = await anthropic.messages.stream({ model, max_tokens: 256, tools, messages }).finalMessage();
  assert.equal(first.stop_reason, 'tool_use', `format ${format}`);
  assert.deepEqual(first.content.map((b) => b.type), ['text', 'tool_use']);
  assert.equal(first.content[0].text, 'Let me check.');
  const use = first.content[1];
  assert.equal(use.name, 'get_weather');
  assert.deepEqual(use.input, { city: 'Paris' });

  messages.push({ role: 'assistant', content: first.content });
  messages.push({ role: 'user', content: [{ type: 'tool_result', tool_use_id: use.id, content: 'sunny, 21 C' }] });
  const second = await anthropic.messages.create({ model, max_tokens: 256, tools, messages });
  assert.equal(second.stop_reason, 'end_turn');
  assert.equal(second.content[0].text, 'It is sunny in Paris.');
});

test('openai responses: text, and a stream whose final response equals its deltas', async () => {
  const r = await openai.responses.create({ model, input: 'hi', max_output_tokens: 16, store: false });
  assert.equal(r.object, 'response');
  assert.ok(['completed', 'incomplete'].includes(r.status));
  assert.equal(typeof r.output_text, 'string');
  if (fake) assert.equal(r.output_text, 'Hello! You said: hi');
  assert.ok(r.usage.output_tokens > 0 && r.usage.input_tokens_details.cached_tokens >= 0);
  const stream = openai.responses.stream({ model, input: 'hi', max_output_tokens: 16 });
  let text = '';
  stream.on('response.output_text.delta', (e) => { text += e.delta; });
  const final = await stream.finalResponse();
  assert.equal(final.output_text, text);
});

test('openai responses: function call round trip', { skip: !fake && 'needs the scripted backend' }, async () => {
  const tools = [{ type: 'function', ...weatherFn, strict: false }];
  const input = [{ role: 'user', content: 'Weather in Paris?' }];
  const stream = openai.responses.stream({ model, input, tools, store: false });
  const first = await stream.finalResponse();
  const call = first.output.find((o) => o.type === 'function_call');
  assert.equal(call.name, 'get_weather');
  assert.deepEqual(JSON.parse(call.arguments), { city: 'Paris' });
  const second = await openai.responses.create({
    model, tools, store: false,
    input: [...input, ...first.output, { type: 'function_call_output', call_id: call.call_id, output: 'sunny' }],
  });
  assert.equal(second.output_text, 'It is sunny in Paris.');
});
