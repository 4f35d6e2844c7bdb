// The router end to end: a local `pocket serve` whose remote backend ("cloud") is a second
// `pocket serve` reached through a fault-injecting proxy that logs every request.
// Checks: private requests (header, body, default and custom patterns) never reach the
// proxy; quality/pinned requests go remote with the key and a settled cost; fallback to
// local on timeout, reset, 500, slow body, garbage and an unreachable remote, with the
// reservation released; a budget holds under concurrent load; `pocket budget --check`;
// /metrics and `pocket top`.
import fs from 'node:fs';
import path from 'node:path';
import { askChat, loadOpenAI, startServer, check, eq, done, runPocket, tmpDir } from './lib.mjs';
import { startFaultProxy } from './fault_proxy.mjs';

const OpenAI = loadOpenAI();
const dir = tmpDir('pocket-router-');
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
api_key = "\${POCKET_REMOTE_KEY}"
model = "big"
price_input_per_1k = 1.0
price_output_per_1k = 1.0
context_length = 4096
timeout_ms = 700
[areas.chat]
backends = ["local", "cloud"]
budget_day_usd = 1000
[areas.capped]
backends = ["local", "cloud"]
budget_day_usd = 0.2
[areas.code]
backends = ["local"]
[privacy]
mode = "local"
[privacy.patterns]
project = "PROJECT-ZEUS"
`);

const cloud = await startServer(['--fake-model', 'big', '--quiet']);
const proxy = await startFaultProxy(cloud.url);
const env = { POCKET_REMOTE_URL: `${proxy.url}/v1`, POCKET_REMOTE_KEY: 'sk-test-remote-key' };
const local = await startServer(['--fake-model', 'tiny', '--policy', policyFile,
                                 '--max-active', '8', '--max-queue', '64'], { env });
const client = new OpenAI({ baseURL: `${local.url}/v1`, apiKey: 'unused', maxRetries: 0 });

const ask = (content, opts) => askChat(client, content, opts);

async function spend(area) {
  const r = await runPocket(['budget', '--policy', policyFile, '--json'], env);
  const row = r.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l))
    .find((x) => x.area === area && x.period === 'day');
  return row ? row.spent_usd : NaN;
}

try {
  // Remote when quality is high; the key travels; the cost is settled in the ledger.
  const r1 = await ask('Explain entropy.', { headers: { 'x-pocket-quality': 'high' } });
  check(r1.route?.startsWith('remote=cloud'), `quality high -> ${r1.route}`);
  eq(r1.model, 'big', 'answer came from the cloud model');
  check(proxy.log().length === 1 && proxy.log()[0].headers.authorization === 'Bearer sk-test-remote-key',
        'remote got one request with the bearer key');
  const s1 = await spend('chat');
  const expected = (r1.usage.prompt_tokens + r1.usage.completion_tokens) * 0.001;
  check(Math.abs(s1 - expected) < 1e-6, `settled cost ${s1} = usage x price ${expected}`);

  // Pinned by model name; a stream is passed through from the remote (router_stream.test.mjs
  // checks the chunks and their timing).
  const r2 = await ask('Hi', { model: 'cloud', stream: true });
  check(r2.route?.startsWith('remote=cloud') && r2.text.length > 0, `pinned cloud, streamed -> ${r2.route}`);
  const r3 = await ask('Hi', { model: 'big' });
  check(r3.route?.startsWith('remote=cloud'), 'pinned by the remote model id');

  // Default: local.
  const r4 = await ask('Hi');
  check(r4.route === 'local; reason=default', `default -> ${r4.route}`);

  // Private: never leaves the machine, whatever else the request asks for.
  const before = proxy.log().length;
  const privateCases = [
    ['header', 'SECRET-MARKER-1 plan', { headers: { 'x-pocket-privacy': 'private', 'x-pocket-quality': 'high' } }],
    ['body', 'SECRET-MARKER-2 plan', { pocket: { privacy: 'private', quality: 'high' } }],
    ['pinned+private', 'SECRET-MARKER-3', { model: 'cloud', headers: { 'x-pocket-privacy': 'private' } }],
    ['email', 'SECRET-MARKER-4 write to jane.doe@example.com', { pocket: { quality: 'high' } }],
    ['phone', 'SECRET-MARKER-5 call +1 415 555 0100', { pocket: { quality: 'high' } }],
    ['api key', 'SECRET-MARKER-6 sk-abcdefghijklmnopqrstuv', { pocket: { quality: 'high' } }],
    ['card', 'SECRET-MARKER-7 4111111111111111', { pocket: { quality: 'high' } }],
    ['custom', 'SECRET-MARKER-8 about PROJECT-ZEUS', { pocket: { quality: 'high' } }],
    ['stream', 'SECRET-MARKER-9', { stream: true, headers: { 'x-pocket-privacy': 'private', 'x-pocket-quality': 'high' } }],
    ['local-only area', 'SECRET-MARKER-10', { model: 'cloud', headers: { 'x-pocket-area': 'code' } }],
  ];
  for (const [name, text, opts] of privateCases) {
    const r = await ask(text, opts);
    check(r.route?.startsWith('local'), `${name} stays local: ${r.route}`);
  }
  check(proxy.log().length === before, 'the remote saw none of the private requests');
  check(!proxy.log().some((e) => e.body.includes('SECRET-MARKER')), 'no private text in the proxy log');

  // Fallback: every failure mode of the remote ends in a local answer, reservation released.
  const spentBefore = await spend('chat');
  for (const [mode, want] of [['delay', 'timeout'], ['reset', 'reset'], ['error500', 'http_500'],
                              ['slow_body', 'timeout'], ['garbage', 'bad_response']]) {
    await proxy.set({ mode, delay_ms: 3000 });
    const r = await ask('Explain gravity.', { pocket: { quality: 'high' } });
    check(r.route?.includes('reason=fallback') && r.route.includes(`error=${want}`) && r.text.length > 0,
          `${mode} -> ${r.route}`);
  }
  await proxy.set({ mode: 'pass' });
  await proxy.close();
  const down = await ask('Explain gravity.', { pocket: { quality: 'high' } });
  check(down.route?.includes('error=unreachable'), `remote down -> ${down.route}`);
  const spentAfter = await spend('chat');
  check(Math.abs(spentAfter - spentBefore) < 1e-9, `failed calls cost nothing (${spentBefore} -> ${spentAfter})`);

  // Budget under concurrent load: 24 parallel remote-worthy requests against $0.20.
  const proxy2 = await startFaultProxy(cloud.url);
  // The policy reads the URL at start-up, so point the old port's traffic... restart local instead.
  await local.stop();
  const env2 = { ...env, POCKET_REMOTE_URL: `${proxy2.url}/v1` };
  const local2 = await startServer(['--fake-model', 'tiny', '--policy', policyFile,
                                    '--max-active', '16', '--max-queue', '64', '--quiet'], { env: env2 });
  const client2 = new OpenAI({ baseURL: `${local2.url}/v1`, apiKey: 'unused', maxRetries: 0 });
  const results = await Promise.all(Array.from({ length: 24 }, (_, i) =>
    client2.chat.completions.create({ model: 'auto', max_tokens: 10, seed: i,
                                      messages: [{ role: 'user', content: `question ${i}` }],
                                      pocket: { area: 'capped', quality: 'high' } }).withResponse()));
  const routes = results.map((r) => r.response.headers.get('x-pocket-route'));
  const remote = routes.filter((r) => r.startsWith('remote')).length;
  const byBudget = routes.filter((r) => r === 'local; reason=budget').length;
  check(remote >= 1 && byBudget >= 1 && remote + byBudget === 24,
        `capped area: ${remote} remote, ${byBudget} local for budget`);
  const capped = await spend('capped');
  check(capped <= 0.2 + 1e-9 && capped > 0, `capped spend ${capped} <= $0.20`);
  check(proxy2.log().length === remote, `remote calls made (${proxy2.log().length}) = remote routes`);

  // The CI gate.
  const gate = await runPocket(['budget', '--policy', policyFile, '--check', '--threshold', '0.5'], env2);
  check(gate.code === 1 && gate.stderr.includes('over'), `budget --check fails over 50% (${gate.code})`);
  const ok = await runPocket(['budget', '--policy', policyFile, '--check', '--threshold', '1.01'], env2);
  check(ok.code === 0 && ok.stdout.includes('capped'), `budget --check passes under 101% (${ok.code})`);

  // Observability of the routing.
  const m = await (await fetch(`${local2.url}/metrics`)).text();
  check(/pocket_route_decisions_total\{route="local",reason="budget"\} \d+/.test(m), 'metrics count budget fallbacks');
  check(/pocket_budget_spent_usd\{area="capped",period="day"\}/.test(m), 'metrics export budget spend');
  const top = await runPocket(['top', '--url', local2.url, '--once']);
  check(top.code === 0 && top.stdout.includes('capped') && top.stdout.includes('ttft'), 'pocket top --once');
  await local2.stop();

  // Redact-then-send: sensitive spans are replaced before the request leaves.
  const redactPolicy = path.join(dir, 'redact.toml');
  fs.writeFileSync(redactPolicy, fs.readFileSync(policyFile, 'utf8')
    .replace('mode = "local"', 'mode = "redact"').replace(ledger, path.join(dir, 'ledger2.db')));
  const local3 = await startServer(['--fake-model', 'tiny', '--policy', redactPolicy, '--quiet'], { env: env2 });
  const client3 = new OpenAI({ baseURL: `${local3.url}/v1`, apiKey: 'unused', maxRetries: 0 });
  proxy2.clearLog();
  const { response: rr } = await client3.chat.completions.create({
    model: 'auto', max_tokens: 5, pocket: { quality: 'high' },
    messages: [{ role: 'user', content: 'Mail bob.secret@example.com about PROJECT-ZEUS' }] }).withResponse();
  const sent = proxy2.log().map((e) => e.body).join('\n');
  check(rr.headers.get('x-pocket-route') === 'remote=cloud; reason=quality; redacted',
        `redact mode -> ${rr.headers.get('x-pocket-route')}`);
  check(sent.includes('[REDACTED:email]') && sent.includes('[REDACTED:project]') &&
        !sent.includes('bob.secret') && !sent.includes('PROJECT-ZEUS'), 'only redacted text left the machine');
  const { response: rp } = await client3.chat.completions.create({
    model: 'auto', max_tokens: 5, messages: [{ role: 'user', content: 'SECRET-MARKER-11' }] },
    { headers: { 'x-pocket-privacy': 'private', 'x-pocket-quality': 'high' } }).withResponse();
  check(rp.headers.get('x-pocket-route') === 'local; reason=private' &&
        !proxy2.log().some((e) => e.body.includes('SECRET-MARKER')), 'marked private still stays local in redact mode');
  await local3.stop();
  await proxy2.close();
} finally {
  await local.stop();
  await cloud.stop();
}
done();
