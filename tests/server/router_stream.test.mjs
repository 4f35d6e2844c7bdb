// Remote answers streamed through: a local `pocket serve` routes streaming requests to a
// "cloud" `pocket serve --fake-model big` that generates one byte-token every 40 ms,
// reached through the fault proxy (which forwards bodies as they arrive).
//   client --> local pocket serve --stream--> fault_proxy --> cloud
// Checks: (a) a streamed remote answer reaches the client as many SSE chunks, the first
// long before the last, with the same text and usage as the non-streamed answer, and the
// remote's TTFT in /metrics; (b) a remote that fails before its first chunk (stall, reset,
// 500, garbage) falls back locally with the route header and costs nothing; (c) a remote
// that dies or stalls mid-stream ends the client's stream with an error event, and the
// ledger keeps no open reservation; (d) the official openai client reads it all, and a
// client that leaves mid-stream leaves no open reservation either.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { loadOpenAI, startServer, check, eq, done, runPocket, sleep, tmpDir } from './lib.mjs';
import { startFaultProxy } from './fault_proxy.mjs';

const OpenAI = loadOpenAI();
const dir = tmpDir('pocket-router-stream-');
const ledger = path.join(dir, 'ledger.db');
const policyFile = path.join(dir, 'policy.toml');
fs.writeFileSync(policyFile, `
default_area = "chat"
ledger = "${ledger}"
[backends.local]
kind = "local"
[backends.cloud]
kind = "openai"
base_url = "\${POCKET_REMOTE_URL}"
api_key = "sk-test-remote-key"
model = "big"
price_input_per_1k = 1.0
price_output_per_1k = 1.0
context_length = 4096
timeout_ms = 1000
stream_timeout_ms = 20000
[areas.chat]
backends = ["local", "cloud"]
budget_day_usd = 1000
`);

const tokenDelayMs = 40;
const cloud = await startServer(['--fake-model', 'big', '--fake-delay-ms', String(tokenDelayMs), '--quiet']);
const proxy = await startFaultProxy(cloud.url);
const env = { POCKET_REMOTE_URL: `${proxy.url}/v1` };
const local = await startServer(['--fake-model', 'tiny', '--policy', policyFile], { env });
const client = new OpenAI({ baseURL: `${local.url}/v1`, apiKey: 'unused', maxRetries: 0 });
const messages = [{ role: 'user', content: 'Tell me a story.' }];

async function spend() {
  const r = await runPocket(['budget', '--policy', policyFile, '--json'], env);
  const row = r.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l))
    .find((x) => x.area === 'chat' && x.period === 'day');
  return row ? row.spent_usd : NaN;
}

// Reservations still open in the ledger (python3's sqlite3 module: the ledger is SQLite).
function openReservations() {
  const r = spawnSync('python3', ['-c', 'import sqlite3, sys; print(sqlite3.connect(sys.argv[1])' +
                                  ".execute(\"select count(*) from entries where state = 'reserved'\")" +
                                  '.fetchone()[0])', ledger], { encoding: 'utf8' });
  return r.status === 0 ? Number(r.stdout.trim()) : `python3 failed: ${r.stderr}`;
}

// A raw streamed request: the response's route header and its SSE events (data strings).
async function rawStream(body) {
  const res = await fetch(`${local.url}/v1/chat/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'cloud', messages, seed: 1, stream: true, ...body }),
  });
  const text = await res.text();
  const events = text.split('\n\n').filter((e) => e.startsWith('data: ')).map((e) => e.slice(6));
  return { status: res.status, route: res.headers.get('x-pocket-route'), text, events };
}

try {
  // (a) + (d): the openai client reads a remote stream chunk by chunk as it is generated.
  // The reference: the cloud's own non-streamed answer (30 tokens take longer than the
  // router's timeout_ms, which bounds a whole non-streamed call but not a stream).
  const cloudClient = new OpenAI({ baseURL: `${cloud.url}/v1`, apiKey: 'unused', maxRetries: 0 });
  const whole = await cloudClient.chat.completions.create({ model: 'big', messages, seed: 1, max_tokens: 30 });
  check(whole.model === 'big' && whole.choices[0].message.content.length > 0, 'the cloud\'s own answer');
  const t0 = Date.now();
  const { data, response } = await client.chat.completions.create(
    { model: 'cloud', messages, seed: 1, max_tokens: 30, stream: true,
      stream_options: { include_usage: true } }).withResponse();
  const route = response.headers.get('x-pocket-route');
  const requestId = response.headers.get('x-request-id');
  const stamps = [];
  let text = '', usage = null, finish = null, ids = new Set(), models = new Set(), objects = new Set();
  for await (const c of data) {
    ids.add(c.id);
    models.add(c.model);
    objects.add(c.object);
    if (c.usage) usage = c.usage;
    for (const ch of c.choices) {
      if (ch.delta?.content) { text += ch.delta.content; stamps.push(Date.now() - t0); }
      if (ch.finish_reason) finish = ch.finish_reason;
    }
  }
  check(route?.startsWith('remote=cloud'), `streamed remote -> ${route}`);
  check(stamps.length >= 10, `${stamps.length} content chunks`);
  const spread = stamps.at(-1) - stamps[0];
  // The cloud makes one token per 40 ms, so passed through, 30 tokens spread over >1 s;
  // replayed from a whole answer they would arrive together.
  check(spread >= 15 * tokenDelayMs, `first chunk at ${stamps[0]} ms, last at ${stamps.at(-1)} ms`);
  eq(text, whole.choices[0].message.content, 'streamed text equals the non-streamed answer');
  eq(usage, whole.usage, 'the usage chunk is the remote\'s usage');
  eq(finish, whole.choices[0].finish_reason, 'finish_reason');
  eq([...ids], [requestId], 'every chunk carries the request id');
  eq([...models], ['big'], 'chunks name the model that answered');
  eq([...objects], ['chat.completion.chunk'], 'chunk object');
  const sent = proxy.log().at(-1);
  const sentBody = JSON.parse(sent.body);
  check(sentBody.stream === true && sentBody.stream_options?.include_usage === true &&
        sentBody.model === 'big', 'the remote was asked to stream, with usage');
  const m = await (await fetch(`${local.url}/metrics`)).text();
  const ttftSum = Number(/pocket_time_to_first_token_seconds_sum\{route="remote"\} ([\d.e+-]+)/.exec(m)?.[1]);
  const ttftCount = Number(/pocket_time_to_first_token_seconds_count\{route="remote"\} (\d+)/.exec(m)?.[1]);
  check(ttftCount === 1 && ttftSum * 1000 < stamps.at(-1) - spread / 2,
        `remote TTFT in /metrics: ${(ttftSum * 1000).toFixed(0)} ms over ${ttftCount} stream`);
  const logLine = local.log().split('\n').filter((l) => l.includes(`"id":"${requestId}"`)).at(-1);
  const logged = logLine ? JSON.parse(logLine) : {};
  check(logged.ttft_ms < logged.total_ms / 2 && logged.route === 'remote',
        `log: ttft_ms ${logged.ttft_ms?.toFixed(0)} of total_ms ${logged.total_ms?.toFixed(0)}`);

  // Completions stream the same way; without include_usage no usage chunk reaches the client.
  const wholeC = await cloudClient.completions.create({ model: 'big', prompt: 'Once', seed: 2, max_tokens: 12 });
  const sc = await client.completions.create({ model: 'cloud', prompt: 'Once', seed: 2, max_tokens: 12, stream: true });
  let ctext = '', cusage = null;
  for await (const c of sc) { ctext += c.choices[0]?.text ?? ''; if (c.usage) cusage = c.usage; }
  eq(ctext, wholeC.choices[0].text, 'streamed completion equals the non-streamed one');
  check(cusage === null, 'no usage chunk unless asked for');
  const raw = await rawStream({ max_tokens: 5 });
  check(raw.events.at(-1) === '[DONE]' && raw.events.slice(0, -1).every((e) => !JSON.parse(e).usage),
        'raw stream ends with [DONE], no usage field');

  // (b) A remote that fails before its first chunk: local answers, the header says why.
  const before = await spend();
  for (const [mode, want] of [['delay', 'timeout'], ['reset', 'reset'], ['error500', 'http_500'],
                              ['garbage', 'bad_response']]) {
    await proxy.set({ mode, delay_ms: 3000 });
    const s = await client.chat.completions.create({ model: 'cloud', messages, seed: 1, max_tokens: 8,
                                                     stream: true }).withResponse();
    let t = '';
    for await (const c of s.data) t += c.choices[0]?.delta?.content ?? '';
    const r = s.response.headers.get('x-pocket-route');
    check(r === `local; reason=fallback; remote=cloud; error=${want}` && t.length > 0,
          `${mode} before the first chunk -> ${r}`);
  }
  await proxy.set({ mode: 'pass' });
  const after = await spend();
  check(Math.abs(after - before) < 1e-9, `fallbacks cost nothing (${before} -> ${after})`);
  eq(openReservations(), 0, 'no open reservation after the fallbacks');

  // (c) The remote dies mid-stream: the client gets the text so far, then an error event.
  for (const [mode, want] of [['cut_after', 'reset'], ['stall_after', 'timeout']]) {
    await proxy.set({ mode, cut_bytes: 700 });
    const spentBefore = await spend();
    const r = await rawStream({ max_tokens: 30 });
    const parsed = r.events.filter((e) => e !== '[DONE]').map((e) => JSON.parse(e));
    const content = parsed.filter((e) => e.choices?.[0]?.delta?.content).length;
    const err = parsed.find((e) => e.error);
    check(r.status === 200 && r.route?.startsWith('remote=cloud') && content >= 1,
          `${mode}: ${content} chunks of text came through first (${r.route})`);
    check(err && err.error.code === 'remote_stream_failed' && err.error.message.includes(want) &&
          parsed.at(-1) === err && r.events.at(-1) === '[DONE]',
          `${mode}: the stream ends with an error event: ${err?.error?.message}`);
    eq(openReservations(), 0, `${mode}: no open reservation after the broken stream`);
    const spentAfter = await spend();
    // No usage arrived, so the reserved worst case is settled (never under-counted).
    check(spentAfter > spentBefore, `${mode}: settled at the reserved worst case (${spentBefore} -> ${spentAfter})`);
  }
  // The openai client surfaces the error event as an error.
  await proxy.set({ mode: 'cut_after', cut_bytes: 700 });
  let thrown = null, got = '';
  try {
    const s = await client.chat.completions.create({ model: 'cloud', messages, seed: 1, max_tokens: 30, stream: true });
    for await (const c of s) got += c.choices[0]?.delta?.content ?? '';
  } catch (e) {
    thrown = e;
  }
  check(got.length > 0 && thrown && /failed mid-stream/.test(thrown.message),
        `openai client: text, then ${thrown?.constructor?.name}: ${thrown?.message}`);
  await proxy.set({ mode: 'pass' });
  check(/pocket_remote_stream_failures_total\{backend="cloud",reason="reset"\} 2/.test(
    await (await fetch(`${local.url}/metrics`)).text()), 'broken streams counted in /metrics');

  // (d) A client that leaves mid-stream: the remote call stops and the ledger is settled.
  const ac = new AbortController();
  const s = await client.chat.completions.create({ model: 'cloud', messages, seed: 1, max_tokens: 200,
                                                   stream: true }, { signal: ac.signal });
  let n = 0;
  try {
    for await (const c of s) { if (c.choices[0]?.delta?.content && ++n === 3) ac.abort(); }
  } catch {}
  let open = -1;
  for (let i = 0; i < 100 && open !== 0; ++i) { await sleep(50); open = openReservations(); }
  eq(open, 0, 'a client that left mid-stream leaves no open reservation');
} finally {
  await local.stop();
  await proxy.close();
  await cloud.stop();
}
done();
