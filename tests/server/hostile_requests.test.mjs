// Requests that once took `pocket serve` down (issue 11, section 1), against the real
// binary: wrong JSON types in many fields (a content part whose type is a number threw on
// the I/O thread and aborted), JSON nested 10,000 deep in a request routed to the remote
// (a stack overflow when the body was copied) and in a remote's reply, and truncation of
// thousands of messages (quadratic: 2,000 took 105 s). Each must be a prompt, clean
// answer, and the process must still be serving afterwards. The remote is a small node
// HTTP server on loopback that records what it gets.
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { loadOpenAI, startServer, check, eq, done, tmpDir } from './lib.mjs';

const OpenAI = loadOpenAI();
const deep = (n) => '['.repeat(n) + ']'.repeat(n);

// The remote: answers a chat completion, nested `remoteDepth` deep in an extra field.
let remoteDepth = 1;
const remoteBodies = [];
const remote = http.createServer((req, res) => {
  let body = '';
  req.on('data', (d) => { body += d; });
  req.on('end', () => {
    remoteBodies.push(body);
    if (JSON.parse(body).stream) {
      // The depth is in the first event that carries text.
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.end(`data: {"choices":[{"index":0,"delta":{"content":"remote says hi"}}],` +
              `"x":${deep(remoteDepth)}}\n\ndata: [DONE]\n\n`);
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(`{"id":"r","object":"chat.completion","model":"big","choices":[{"index":0,` +
            `"message":{"role":"assistant","content":"remote says hi"},"finish_reason":"stop"}],` +
            `"usage":{"prompt_tokens":3,"completion_tokens":3},"x":${deep(remoteDepth)}}`);
  });
});
await new Promise((r) => remote.listen(0, '127.0.0.1', r));

const dir = tmpDir('pocket-hostile-');
const policyFile = path.join(dir, 'policy.toml');
fs.writeFileSync(policyFile, `
default_area = "chat"
[backends.local]
kind = "local"
[backends.cloud]
kind = "openai"
base_url = "http://127.0.0.1:${remote.address().port}/v1"
api_key = "k"
model = "big"
price_input_per_1k = 0.001
price_output_per_1k = 0.001
context_length = 100000
[areas.chat]
backends = ["local", "cloud"]
`);
const server = await startServer(['--fake-model', 'tiny', '--fake-context', '256', '--policy',
                                  policyFile, '--max-active', '2', '--max-queue', '2']);
const url = `${server.url}/v1`;
const post = async (p, body) => {
  const r = await fetch(`${url}${p}`, { method: 'POST', headers: { 'content-type': 'application/json' },
                                        body: typeof body === 'string' ? body : JSON.stringify(body) });
  const text = await r.text();
  let json = null;
  try { json = JSON.parse(text); } catch {}
  return { status: r.status, json, text, headers: r.headers };
};
const alive = async (what) => {
  const h = await fetch(`${server.url}/health`).then((r) => r.status).catch((e) => String(e));
  check(h === 200, `still serving after ${what}`);
};

try {
  // 1. Wrong types: the crasher and a spread of other fields, on every endpoint.
  const user = (content) => ({ role: 'user', content });
  const wrong = [
    ['/chat/completions', { messages: [user('a'), user('b'), { role: 'user', content: [{ type: 5, text: 'x' }] }] },
     'messages[2].content[0].type'],
    ['/chat/completions', { messages: [{ role: 'user', content: [{ type: 'text', text: ['x'] }] }] },
     'messages[0].content[0].text'],
    ['/chat/completions', { messages: [{ role: 'user', content: 'x', name: 7 }] }, 'messages[0].name'],
    ['/chat/completions', { messages: [user('x')], tools: [{ type: 'function', function: { name: {} } }] },
     'tools[0].function.name'],
    ['/chat/completions', { messages: [user('x')], tool_choice: 3 }, 'tool_choice'],
    ['/chat/completions', { messages: [user('x')], logit_bias: { 5: 'x' } }, 'logit_bias.5'],
    ['/chat/completions', { messages: [user('x')], response_format: { type: false } }, 'response_format.type'],
    ['/chat/completions', { messages: [user('x')], stream_options: { include_usage: 1 } },
     'stream_options.include_usage'],
    ['/chat/completions', { messages: [user('x')], user: ['u'] }, 'user'],
    ['/completions', { prompt: 'x', stop: [null] }, 'stop[0]'],
    ['/completions', { prompt: 'x', best_of: 'many' }, 'best_of'],
    ['/embeddings', { input: 'x', encoding_format: 64 }, 'encoding_format'],
  ];
  for (const [p, body, param] of wrong) {
    const r = await post(p, body);
    check(r.status === 400 && r.json?.error?.param === param &&
          r.json?.error?.type === 'invalid_request_error',
          `${p} ${JSON.stringify(body).slice(0, 70)} -> ${r.status} ${r.json?.error?.param}`);
  }
  // Through the official client too: its error carries the param.
  const client = new OpenAI({ baseURL: url, apiKey: 'unused', maxRetries: 0 });
  const e = await client.chat.completions.create({ messages: [{ role: 'user', content: [{ type: 1 }] }] })
    .catch((x) => x);
  check(e?.status === 400 && e?.param === 'messages[0].content[0].type', `openai client: ${e?.status} ${e?.param}`);
  await alive('wrong types');

  // 2. Depth: 10,000 nested arrays in an extra field of a request pinned to the remote, and
  // in fields of every endpoint: 400 at parse time, the remote never called.
  for (const [p, body] of [
    ['/chat/completions', `{"model":"cloud","messages":[{"role":"user","content":"x"}],"extra":${deep(10000)}}`],
    ['/chat/completions', `{"messages":[{"role":"user","content":${deep(10000)}}]}`],
    ['/completions', `{"model":"cloud","prompt":"x","metadata":{"a":${deep(100000)}}}`],
    ['/embeddings', `{"input":${deep(10000)}}`],
  ]) {
    const r = await post(p, body);
    check(r.status === 400 && r.json?.error?.code === 'invalid_json' &&
          r.json?.error?.message === 'request body nests deeper than 64 levels of arrays and objects',
          `${p} nested -> ${r.status} ${r.json?.error?.message}`);
  }
  eq(remoteBodies.length, 0, 'the remote got none of the nested requests');
  // 64 levels pass and reach the remote whole.
  const ok64 = await post('/chat/completions',
                          `{"model":"cloud","messages":[{"role":"user","content":"x"}],"extra":${deep(63)}}`);
  check(ok64.status === 200 && ok64.json?.choices?.[0]?.message?.content === 'remote says hi',
        `64 levels -> ${ok64.status} via ${ok64.headers.get('x-pocket-route')}`);
  check(remoteBodies.length === 1 && remoteBodies[0].includes(deep(63)), 'the remote got it whole');
  // The remote answers nested 10,000 deep: bad_response, the local model answers.
  remoteDepth = 10000;
  for (const stream of [false, true]) {
    const r = await post('/chat/completions', { model: 'cloud', messages: [user('x')], max_tokens: 3, stream });
    const route = r.headers.get('x-pocket-route') || '';
    check(r.status === 200 && route.includes('error=bad_response'),
          `remote reply nested 10,000 deep (stream ${stream}) -> ${r.status} ${route}`);
  }
  remoteDepth = 1;
  const streamed = await post('/chat/completions', { model: 'cloud', messages: [user('x')], stream: true });
  check(streamed.status === 200 && streamed.text.includes('remote says hi') &&
        streamed.headers.get('x-pocket-route')?.startsWith('remote=cloud'),
        `the same stream, shallow, is passed through -> ${streamed.headers.get('x-pocket-route')}`);
  await alive('deep nesting');

  // 3. Truncation of thousands of messages: quick, and the drops are the ones dropping one
  // at a time gives. The fake model's tokens are the bytes of "role: content\n" per message
  // + "assistant:" + BOS.
  for (const n of [2000, 4000]) {
    const messages = [{ role: 'system', content: 'be brief' }];
    for (let i = 0; i < n; ++i) messages.push({ role: i % 2 ? 'assistant' : 'user', content: `m${i}` });
    const cost = (m) => m.role.length + 2 + m.content.length + 1;
    const total = messages.reduce((s, m) => s + cost(m), 0) + 'assistant:'.length + 1;
    let tokens = total, dropped = 0;
    while (tokens + 4 > 256) tokens -= cost(messages[1 + dropped++]);
    const t0 = Date.now();
    // Pinned to the local model (auto would send a prompt this long to the remote).
    const r = await post('/chat/completions', { model: 'tiny', messages, max_tokens: 4,
                                                pocket: { truncate: true } });
    const ms = Date.now() - t0;
    eq(r.json?.pocket?.truncated, { dropped_messages: dropped, original_prompt_tokens: total, prompt_tokens: tokens },
       `${n} messages truncated (${ms} ms)`);
    check(ms < 60000, `${n} messages within a generous minute (${ms} ms)`);
  }
  const tooMany = await post('/chat/completions', { messages: Array.from({ length: 5000 }, () => user('x')) });
  check(tooMany.status === 400 && tooMany.json?.error?.param === 'messages' &&
        /at most 4096/.test(tooMany.json?.error?.message), `5,000 messages -> ${tooMany.status}`);
  await alive('truncation');
  check(server.proc.exitCode === null, 'the process never exited');
} finally {
  await server.stop();
  remote.close();
}
done();
