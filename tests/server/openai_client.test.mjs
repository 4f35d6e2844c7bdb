// The official `openai` npm client against a real `pocket serve` process: models, chat
// (plain and streaming, usage), completions, JSON mode (response_format json_object),
// embeddings, errors (unknown model 404, bad
// JSON 400, context_length_exceeded, 413, 431, 408, 429), truncation, cancellation on
// disconnect, batch-invariant seeded output, the server's sampling defaults (--temp, -n,
// --seed) for requests that leave those fields out, and a /metrics scrape.
// The model is the deterministic fake (--fake-model) unless POCKET_TEST_MODEL names a GGUF.
import net from 'node:net';
import { loadOpenAI, startServer, check, eq, done, sleep } from './lib.mjs';

const OpenAI = loadOpenAI();
const modelArgs = process.env.POCKET_TEST_MODEL
  ? ['--model', process.env.POCKET_TEST_MODEL, '--context', '256']
  : ['--fake-model', 'tiny', '--fake-context', '256', '--fake-delay-ms', '2'];
const server = await startServer([...modelArgs, '--max-body-bytes', '65536',
                                  '--read-timeout-ms', '800', '--max-active', '4',
                                  '--max-queue', '4', '--temp', '0.5', '-n', '12', '--seed', '11']);
const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0 });

try {
  // Models.
  const models = await client.models.list();
  const ids = models.data.map((m) => m.id);
  const local = ids[0];
  check(ids.includes('auto') && ids.length >= 2, `models.list: ${ids.join(', ')}`);

  // Chat, non-streaming, seeded.
  const req = { model: local, messages: [{ role: 'user', content: 'Say hello.' }],
                max_tokens: 8, seed: 7, temperature: 0.8 };
  const a = await client.chat.completions.create(req);
  check(a.object === 'chat.completion' && a.choices[0].message.role === 'assistant',
        'chat.completions.create returns a chat.completion');
  check(typeof a.choices[0].message.content === 'string' && a.choices[0].message.content.length > 0,
        `content: ${JSON.stringify(a.choices[0].message.content)}`);
  check(a.usage.prompt_tokens > 0 && a.usage.completion_tokens > 0 &&
        a.usage.total_tokens === a.usage.prompt_tokens + a.usage.completion_tokens, 'usage adds up');
  check(['length', 'stop'].includes(a.choices[0].finish_reason), 'finish_reason');
  const b = await client.chat.completions.create(req);
  eq(b.choices[0].message.content, a.choices[0].message.content, 'same seed, same text');

  // Streaming, with usage.
  const stream = await client.chat.completions.create({ ...req, stream: true,
                                                        stream_options: { include_usage: true } });
  let text = '', usage = null, finish = null, chunks = 0;
  for await (const chunk of stream) {
    chunks++;
    if (chunk.usage) usage = chunk.usage;
    for (const c of chunk.choices) {
      if (c.delta?.content) text += c.delta.content;
      if (c.finish_reason) finish = c.finish_reason;
    }
  }
  check(chunks >= 3, `stream had ${chunks} chunks`);
  eq(text, a.choices[0].message.content, 'streamed text equals the non-streamed text');
  check(usage && usage.completion_tokens === a.usage.completion_tokens, 'stream usage chunk');
  check(finish === a.choices[0].finish_reason, 'stream finish_reason');

  // Batch invariance: the same seeded request, 4 at once, gives the same text.
  const many = await Promise.all([0, 1, 2, 3].map(() => client.chat.completions.create(req)));
  check(many.every((r) => r.choices[0].message.content === a.choices[0].message.content),
        'same seed under concurrency gives the same text');

  // Stop sequences: a whole word from inside the reply (the last one may end in U+FFFD where
  // max_tokens cut a character, which the stopped run completes instead).
  const first = a.choices[0].message.content.split(' ').slice(1, -1)
    .find((w) => w && !w.includes('\uFFFD'));
  if (first) {
    const s = await client.chat.completions.create({ ...req, stop: [first] });
    check(!s.choices[0].message.content.includes(first) && s.choices[0].finish_reason === 'stop',
          `stop at ${JSON.stringify(first)}`);
  }

  // Completions.
  const comp = await client.completions.create({ model: local, prompt: 'Once upon a time',
                                                 max_tokens: 5, seed: 1 });
  check(comp.object === 'text_completion' && comp.choices[0].text.length > 0, 'completions.create');
  let ctext = '';
  for await (const chunk of await client.completions.create({ model: local, prompt: 'Once upon a time',
                                                              max_tokens: 5, seed: 1, stream: true })) {
    ctext += chunk.choices[0]?.text ?? '';
  }
  eq(ctext, comp.choices[0].text, 'streamed completion equals the plain one');

  // Server-wide defaults (--temp 0.5 -n 12 --seed 11, as llama-server's): a request that
  // leaves temperature, max_tokens and seed out gets them, streamed or not, on both
  // endpoints; one that sets them wins.
  const bare = { model: local, messages: [{ role: 'user', content: 'Say hello.' }] };
  const explicit = { temperature: 0.5, max_tokens: 12, seed: 11 };
  const d = await client.chat.completions.create(bare);
  const dText = d.choices[0].message.content;
  eq(dText, (await client.chat.completions.create({ ...bare, ...explicit })).choices[0].message.content,
     'a request without temperature/max_tokens/seed gets the server defaults');
  check(process.env.POCKET_TEST_MODEL ? d.usage.completion_tokens <= 12 : d.usage.completion_tokens === 12,
        `-n 12 bounds a request without max_tokens (${d.usage.completion_tokens} tokens)`);
  let dStreamed = '';
  for await (const chunk of await client.chat.completions.create({ ...bare, stream: true })) {
    dStreamed += chunk.choices[0]?.delta?.content ?? '';
  }
  eq(dStreamed, dText, 'a streamed request gets the same defaults');
  const short = await client.chat.completions.create({ ...bare, max_tokens: 3 });
  check(short.usage.completion_tokens <= 3, `a request's max_tokens wins (${short.usage.completion_tokens})`);
  eq((await client.chat.completions.create({ ...bare, temperature: 0 })).choices[0].message.content,
     (await client.chat.completions.create({ ...bare, ...explicit, temperature: 0 })).choices[0].message.content,
     "a request's temperature wins, the other defaults stay");
  const cd = await client.completions.create({ model: local, prompt: 'Once upon a time' });
  eq(cd.choices[0].text,
     (await client.completions.create({ model: local, prompt: 'Once upon a time', ...explicit })).choices[0].text,
     'completions without the fields get the server defaults');
  check(cd.usage.completion_tokens <= 12, `completions bounded by -n (${cd.usage.completion_tokens})`);

  // JSON mode: response_format json_object. The content parses as an object whenever the
  // object closed (finish_reason stop); a max_tokens cut leaves a prefix starting with '{'.
  const jreq = { model: local, messages: [{ role: 'user', content: 'Reply with a JSON object.' }],
                 max_tokens: 200, seed: 5, temperature: 1, response_format: { type: 'json_object' } };
  const isObject = (t) => { try { const v = JSON.parse(t); return v !== null && typeof v === 'object' && !Array.isArray(v); } catch { return false; } };
  const jsonOk = (t, finish) => finish === 'stop' ? isObject(t) : finish === 'length' && t.trimStart().startsWith('{');
  const jr = await client.chat.completions.create(jreq);
  const jtext = jr.choices[0].message.content;
  check(jsonOk(jtext, jr.choices[0].finish_reason),
        `json_object (${jr.choices[0].finish_reason}): ${JSON.stringify(jtext).slice(0, 200)}`);
  if (!process.env.POCKET_TEST_MODEL) eq(jr.choices[0].finish_reason, 'stop', 'json_object closes the object');
  let jstreamed = '', jfinish = null;
  for await (const chunk of await client.chat.completions.create({ ...jreq, stream: true })) {
    for (const c of chunk.choices) {
      if (c.delta?.content) jstreamed += c.delta.content;
      if (c.finish_reason) jfinish = c.finish_reason;
    }
  }
  check(jsonOk(jstreamed, jfinish), `streamed json_object (${jfinish})`);
  eq(jstreamed, jtext, 'streamed json_object equals the non-streamed one');
  try {
    await client.chat.completions.create({ ...jreq, messages: [{ role: 'user', content: 'Say hello.' }] });
    check(false, 'json_object without the word JSON rejected');
  } catch (e) {
    check(e.status === 400 && e.param === 'messages' && /must contain the word 'json'/.test(e.message),
          `json_object without the word JSON -> ${e.status} ${e.param}`);
  }
  try {
    await client.chat.completions.create({ ...jreq, response_format: { type: 'json_schema',
      json_schema: { name: 'x', schema: { type: 'object' } } } });
    check(false, 'json_schema rejected');
  } catch (e) {
    check(e.status === 400 && e.param === 'response_format', `json_schema -> ${e.status} ${e.param}`);
  }

  // Embeddings (the client asks for base64 by default and decodes it).
  const emb = await client.embeddings.create({ model: local, input: ['the cat', 'a dog'] });
  check(emb.data.length === 2 && emb.data[0].embedding.length > 0, 'embeddings for 2 inputs');
  const norm = Math.sqrt(emb.data[0].embedding.reduce((s, x) => s + x * x, 0));
  check(Math.abs(norm - 1) < 1e-3, `embedding is unit length (${norm})`);
  const embf = await client.embeddings.create({ model: local, input: 'the cat', encoding_format: 'float' });
  check(Math.abs(embf.data[0].embedding[0] - emb.data[0].embedding[0]) < 1e-6, 'float == base64');

  // Errors through the client.
  try {
    await client.chat.completions.create({ ...req, model: 'no-such-model' });
    check(false, 'unknown model rejected');
  } catch (e) {
    check(e.status === 404 && e.code === 'model_not_found', `unknown model -> ${e.status} ${e.code}`);
  }
  try {
    await client.chat.completions.create({ ...req, max_tokens: 16,
                                           messages: [{ role: 'user', content: Array.from({ length: 400 }, (_, i) => `w${i}`).join(' ') }] });
    check(false, 'long prompt rejected');
  } catch (e) {
    check(e.status === 400 && e.code === 'context_length_exceeded', `over context -> ${e.status} ${e.code}`);
  }
  try {
    await client.chat.completions.create({ ...req, temperature: 'hot' });
    check(false, 'bad type rejected');
  } catch (e) {
    check(e.status === 400 && e.param === 'temperature', `bad temperature -> ${e.status} ${e.param}`);
  }

  // Truncation on request: earlier turns are dropped and reported.
  const long = [{ role: 'system', content: 'Be brief.' },
                ...Array.from({ length: 6 }, (_, i) => ({ role: i % 2 ? 'assistant' : 'user',
                                                          content: `turn ${i} ` + 'y'.repeat(60) })),
                { role: 'user', content: 'And now?' }];
  const tr = await client.chat.completions.create({ model: local, messages: long, max_tokens: 4,
                                                    pocket: { truncate: true } });
  check(tr.pocket?.truncated?.dropped_messages > 0,
        `truncation reported: ${JSON.stringify(tr.pocket?.truncated)}`);

  // Raw HTTP errors.
  const bad = await fetch(`${server.url}/v1/chat/completions`, { method: 'POST', body: '{"messages": [' });
  const badBody = await bad.json();
  check(bad.status === 400 && badBody.error?.type === 'invalid_request_error', `bad JSON -> ${bad.status}`);
  const big = await fetch(`${server.url}/v1/chat/completions`,
                          { method: 'POST', body: 'x'.repeat(70000) });
  check(big.status === 413 && (await big.json()).error?.code === 'request_too_large', `oversized body -> ${big.status}`);
  const flood = {};
  for (let i = 0; i < 400; ++i) flood[`x-flood-${i}`] = 'z'.repeat(40);
  const fl = await fetch(`${server.url}/health`, { headers: flood }).catch((e) => e);
  check(fl.status === 431, `header flood -> ${fl.status ?? fl}`);
  const nf = await fetch(`${server.url}/v2/nothing`);
  check(nf.status === 404, `unknown path -> ${nf.status}`);

  // Slow client: headers never finish -> 408, and the server keeps serving others.
  const slow = await new Promise((resolve) => {
    const sock = net.connect(server.port, '127.0.0.1', () => sock.write('POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n'));
    let got = '';
    sock.on('data', (d) => { got += d; });
    sock.on('close', () => resolve(got));
    sock.on('error', () => resolve(got));
    setTimeout(() => { sock.destroy(); resolve(got); }, 5000);
  });
  check(slow.startsWith('HTTP/1.1 408'), `slow client -> ${slow.split('\r\n')[0]}`);
  const alive = await client.chat.completions.create(req);
  check(alive.choices.length === 1, 'server still serves after bad clients');

  // Cancellation: abort a long stream after the first chunk; the server counts it.
  const ac = new AbortController();
  try {
    const s = await client.chat.completions.create({ ...req, max_tokens: 200, stream: true },
                                                   { signal: ac.signal });
    for await (const _ of s) { ac.abort(); }
  } catch { /* aborted */ }
  let cancelled = 0;
  for (let i = 0; i < 40 && cancelled === 0; ++i) {
    await sleep(50);
    const m = await (await fetch(`${server.url}/metrics`)).text();
    const line = m.split('\n').find((l) => l.startsWith('pocket_cancelled_requests_total{'));
    cancelled = line ? Number(line.split(' ').pop()) : 0;
  }
  check(cancelled >= 1, `client disconnect cancels generation (${cancelled})`);

  // Queue full: 4 active + 4 queued; the rest get 429 with Retry-After.
  const flood2 = await Promise.all(Array.from({ length: 16 }, () =>
    fetch(`${server.url}/v1/chat/completions`, { method: 'POST',
      body: JSON.stringify({ ...req, max_tokens: 40 }) })));
  const codes = flood2.map((r) => r.status);
  const limited = flood2.filter((r) => r.status === 429);
  check(codes.filter((c) => c === 200).length >= 8 && limited.length >= 1 &&
        limited.every((r) => r.headers.get('retry-after')), `queue bound: ${codes.join(',')}`);
  await Promise.all(flood2.map((r) => r.text()));

  // Metrics scrape.
  const metrics = await (await fetch(`${server.url}/metrics`)).text();
  for (const name of ['pocket_http_requests_total', 'pocket_time_to_first_token_seconds_bucket',
                      'pocket_request_duration_seconds_count', 'pocket_queue_wait_seconds_sum',
                      'pocket_completion_tokens_total', 'pocket_process_peak_resident_memory_bytes',
                      'pocket_rejected_requests_total', 'pocket_route_decisions_total']) {
    check(metrics.includes(name), `/metrics has ${name}`);
  }
  check(/# TYPE pocket_time_to_first_token_seconds histogram/.test(metrics), 'ttft is a histogram');
  const logLines = server.log().split('\n').filter((l) => l.startsWith('{"'));
  check(logLines.length > 5 && logLines.every((l) => { try { JSON.parse(l); return true; } catch { return false; } }),
        `JSON-lines log (${logLines.length} lines)`);
} finally {
  const code = await server.stop();
  check(code === 0, `server exits cleanly on SIGTERM (${code})`);
}
done();
