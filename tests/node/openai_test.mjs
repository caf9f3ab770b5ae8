// openai_test.mjs — the official OpenAI SDK through gardefou: a chat completion, a streamed chat
// completion (with usage) and the model list. usage: node openai_test.mjs BASE_URL
// Prints "N passed, N failed"; exits 1 on any failure.
import OpenAI from 'openai';

const baseURL = process.argv[2];
const client = new OpenAI({ baseURL, apiKey: process.env.GF_TEST_API_KEY || 'sk-test', maxRetries: 0, timeout: 20000 });
let passed = 0;
let failed = 0;
function check(cond, what) {
  if (cond) passed++;
  else {
    failed++;
    console.error(`CHECK failed: ${what}`);
  }
}

try {
  const c = await client.chat.completions.create({
    model: 'mock-model',
    messages: [{ role: 'user', content: 'Hello' }],
    max_tokens: 16,
  });
  check(c.object === 'chat.completion', `object ${c.object}`);
  check(c.choices[0].message.role === 'assistant', 'role');
  check(c.choices[0].message.content === 'Hello from the mock upstream.', `content ${c.choices[0].message.content}`);
  check(c.choices[0].finish_reason === 'stop', 'finish_reason');
  check(c.usage.total_tokens === c.usage.prompt_tokens + c.usage.completion_tokens, 'usage');

  const stream = await client.chat.completions.create({
    model: 'mock-model',
    messages: [{ role: 'user', content: 'Hello' }],
    stream: true,
    stream_options: { include_usage: true },
  });
  let text = '';
  let finish = null;
  let usage = null;
  let chunks = 0;
  for await (const chunk of stream) {
    chunks++;
    check(chunk.object === 'chat.completion.chunk', 'chunk object');
    if (chunk.choices.length > 0) {
      text += chunk.choices[0].delta.content || '';
      if (chunk.choices[0].finish_reason) finish = chunk.choices[0].finish_reason;
    }
    if (chunk.usage) usage = chunk.usage;
  }
  check(chunks >= 3, `chunks ${chunks}`);
  check(text === 'Hello from the mock upstream.', `streamed text ${text}`);
  check(finish === 'stop', `stream finish ${finish}`);
  check(usage !== null && usage.total_tokens > 0, 'stream usage');

  const models = await client.models.list();
  const ids = [];
  for await (const m of models) ids.push(m.id);
  check(ids.includes('mock-model'), `models ${ids}`);

  // an error comes back as the SDK's typed error with the status and the field
  try {
    await client.chat.completions.create({ model: 'mock-model', messages: [{ role: 'user', content: 'x' }], temperature: 9 });
    check(false, 'temperature 9 accepted');
  } catch (e) {
    check(e.status === 400, `error status ${e.status}`);
    check(e.param === 'temperature', `error param ${e.param}`);
  }
} catch (e) {
  failed++;
  console.error(`request failed: ${e && e.stack ? e.stack : e}`);
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
