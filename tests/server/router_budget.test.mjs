// The budget cannot be broken from outside: a local `pocket serve` whose remote ("cloud")
// is a lying remote (lying_remote.mjs) that reports absurd, negative, wrongly typed,
// inconsistent, repeated or no usage, streamed and not. Checks: every answer still reaches
// the client; the ledger settles exactly the reported cost when it is believable and the
// reservation (the worst case) when not, never a credit and never more than reserved; a lie
// does not lock the budget (the next request still goes remote); each anomaly is logged
// with the backend and the values and counted in /metrics; the remote gets the max_tokens
// that was reserved. Then the ledger start-up check: an empty, truncated or foreign
// ledger stops `pocket serve` and `pocket budget` with one line naming it, --reset-ledger
// moves it aside, and a valid ledger keeps its spend across restarts.
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { startServer, check, eq, done, runPocket, tmpDir } from './lib.mjs';
import { startLyingRemote } from './lying_remote.mjs';

const dir = tmpDir('pocket-router-budget-');
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
model = "big"
price_input_per_1k = 1.0
price_output_per_1k = 1.0
context_length = 4096
timeout_ms = 2000
[areas.chat]
backends = ["local", "cloud"]
budget_day_usd = 1000
`);

// The last ledger entry and the total spend (python3's sqlite3 module: the ledger is SQLite).
function lastEntry(file = ledger) {
  const r = spawnSync('python3', ['-c', 'import sqlite3, sys, json; c = sqlite3.connect(sys.argv[1]); ' +
    'r = c.execute("select state, cost_micro_usd, tokens, reserved_micro_usd, reserved_tokens from entries ' +
    'order by id desc limit 1").fetchone(); t = c.execute("select coalesce(sum(cost_micro_usd), 0) ' +
    'from entries where state != \'released\'").fetchone()[0]; print(json.dumps([r, t]))', file],
  { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`python3 failed: ${r.stderr}`);
  const [row, total] = JSON.parse(r.stdout);
  const [state, cost, tokens, reserved, reservedTokens] = row ?? [];
  return { state, cost, tokens, reserved, reservedTokens, total };
}

function totalSpend(file = ledger) { return lastEntry(file).total; }

const remote = await startLyingRemote();
const env = { POCKET_REMOTE_URL: `${remote.url}/v1` };
const local = await startServer(['--fake-model', 'tiny', '--policy', policyFile], { env });

// One request pinned to the cloud, raw (so the test sees exactly what the client gets).
async function ask({ stream = false, endpoint = 'chat', extra = {} } = {}) {
  const body = endpoint === 'chat'
    ? { model: 'cloud', messages: [{ role: 'user', content: 'Explain entropy.' }], max_tokens: 10 }
    : { model: 'cloud', prompt: 'Once upon', max_tokens: 10 };
  if (stream) Object.assign(body, { stream: true, stream_options: { include_usage: true } });
  Object.assign(body, extra);
  const res = await fetch(`${local.url}/v1/${endpoint === 'chat' ? 'chat/completions' : 'completions'}`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const raw = await res.text();
  let text = '';
  if (stream) {
    for (const e of raw.split('\n\n').filter((x) => x.startsWith('data: ') && x !== 'data: [DONE]')) {
      const c = JSON.parse(e.slice(6)).choices?.[0];
      text += c?.delta?.content ?? c?.text ?? '';
    }
  } else {
    const j = JSON.parse(raw);
    text = j.choices?.[0]?.message?.content ?? j.choices?.[0]?.text ?? '';
  }
  return { status: res.status, route: res.headers.get('x-pocket-route'), text };
}

const honest = '{"prompt_tokens":5,"completion_tokens":3,"total_tokens":8}';
// [name, raw usage JSON (null: no usage field), anomaly kind ('' = believed)]
const cases = [
  ['honest', honest, ''],
  ['absurd 2e9 completion', '{"prompt_tokens":5,"completion_tokens":2000000000,"total_tokens":2000000005}', 'too_large'],
  ['absurd prompt', '{"prompt_tokens":2000000000,"completion_tokens":3}', 'too_large'],
  ['negative', '{"prompt_tokens":-1000000,"completion_tokens":-5,"total_tokens":-1000005}', 'negative'],
  ['negative total only', '{"prompt_tokens":5,"completion_tokens":3,"total_tokens":-8}', 'negative'],
  ['strings', '{"prompt_tokens":"5","completion_tokens":"3","total_tokens":"8"}', 'not_integer'],
  ['float', '{"prompt_tokens":5.5,"completion_tokens":3,"total_tokens":8.5}', 'not_integer'],
  ['huge past int64', '{"prompt_tokens":18446744073709551615,"completion_tokens":3}', 'too_large'],
  ['huge float', '{"prompt_tokens":1e300,"completion_tokens":3}', 'not_integer'],
  ['null fields', '{"prompt_tokens":null,"completion_tokens":null,"total_tokens":null}', 'not_integer'],
  ['object fields', '{"prompt_tokens":{"n":5},"completion_tokens":3}', 'not_integer'],
  ['usage a string', '"5 tokens"', 'not_integer'],
  ['inconsistent total', '{"prompt_tokens":5,"completion_tokens":3,"total_tokens":9000}', 'inconsistent'],
  ['no completion_tokens', '{"prompt_tokens":5}', 'missing'],
  ['usage null', 'null', 'missing'],
  ['no usage', null, 'missing'],
];

const expectedKinds = {};
try {
  let spent = totalSpend();
  for (const stream of [false, true]) {
    for (const [name, usage, kind] of cases) {
      const what = `${stream ? 'streamed' : 'plain'} ${name}`;
      await remote.set({ usage, stream_usage: 'last' });
      const r = await ask({ stream });
      check(r.status === 200 && r.route?.startsWith('remote=cloud') && r.text === 'hello',
            `${what}: answered from the remote (${r.status}, ${r.route}, ${JSON.stringify(r.text)})`);
      const e = lastEntry();
      check(e.state === 'settled', `${what}: settled (${e.state})`);
      check(e.cost >= 0 && e.cost <= e.reserved && e.tokens >= 0 && e.tokens <= e.reservedTokens,
            `${what}: settled within [0, reserved] (${e.cost} of ${e.reserved} micro-USD)`);
      if (kind === '') eq([e.cost, e.tokens], [8000, 8], `${what}: the reported cost is settled`);
      else eq([e.cost, e.tokens], [e.reserved, e.reservedTokens], `${what}: settled at the reservation`);
      const now = e.total;
      check(now >= spent, `${what}: no credit (${spent} -> ${now})`);
      spent = now;
      if (kind) expectedKinds[kind] = (expectedKinds[kind] ?? 0) + 1;
    }
  }

  // Streams that repeat usage (cumulative: the largest counts) or put "usage": null on
  // every chunk are believed; a whole stream without usage is an anomaly.
  for (const [mode, usage, kind, cost] of [
    ['every', honest, '', 8000], ['repeat', honest, '', 8000],
    ['repeat', '{"prompt_tokens":5,"completion_tokens":-3}', 'negative', null],
    ['absent', honest, 'missing', null]]) {
    await remote.set({ usage, stream_usage: mode });
    const r = await ask({ stream: true });
    const e = lastEntry();
    check(r.status === 200 && r.text === 'hello', `stream_usage ${mode}: answered`);
    eq(e.cost, cost ?? e.reserved, `stream_usage ${mode} ${usage}: settled ${cost ?? 'the reservation'}`);
    if (kind) expectedKinds[kind] = (expectedKinds[kind] ?? 0) + 1;
  }
  // A streamed request whose client did not ask for usage still settles from it.
  await remote.set({ usage: honest, stream_usage: 'last' });
  const noUsage = await ask({ stream: true, extra: { stream_options: undefined } });
  check(noUsage.status === 200 && noUsage.text === 'hello' && lastEntry().cost === 8000,
        'stream without include_usage: settled from the remote\'s usage');

  // Completions, the other generation endpoint.
  await remote.set({ usage: '{"prompt_tokens":3,"completion_tokens":4000000000}' });
  const comp = await ask({ endpoint: 'completions' });
  const ce = lastEntry();
  check(comp.status === 200 && comp.text === 'hello' && ce.cost === ce.reserved,
        `completions with absurd usage: answered, settled at the reservation (${ce.cost})`);
  await remote.set({ usage: honest });
  await ask({ endpoint: 'completions', extra: { best_of: 20 } });
  check(!('best_of' in remote.log().at(-1)), 'best_of (20 completions billed, one reserved) is not forwarded');
  expectedKinds.too_large += 1;

  // The remote gets the completion limit that was reserved, whatever names the client used.
  await remote.set({ usage: honest });
  for (const [extra, want] of [[{ max_tokens: 5000, max_completion_tokens: 10 }, 10],
                               [{ max_tokens: null }, null]]) {
    const before = remote.log().length;
    const r = await ask({ extra });
    const sent = remote.log()[before];
    const e = lastEntry();
    const limit = want ?? sent.max_tokens;
    check(r.status === 200 && Number.isInteger(sent.max_tokens) && sent.max_tokens === limit &&
          (sent.max_completion_tokens === undefined || sent.max_completion_tokens === limit) &&
          e.reservedTokens > limit && e.reservedTokens - limit < 100,
          `${JSON.stringify(extra)}: the remote got max_tokens ${sent.max_tokens}` +
          `/${sent.max_completion_tokens}, reserved ${e.reservedTokens} tokens`);
  }

  // Tool definitions are billed as prompt, so the reservation covers them.
  {
    const tools = [{ type: 'function', function: { name: 'lookup', description: 'd'.repeat(2000),
                                                   parameters: { type: 'object' } } }];
    const r = await ask({ extra: { max_tokens: 10, tools } });
    const e = lastEntry();
    check(r.status === 200 && e.reservedTokens - 10 >= JSON.stringify(tools).length,
          `tools count in the prompt's bound (reserved ${e.reservedTokens} tokens)`);
  }

  // A lie never locked the budget: the area's $1000 is far from spent.
  const after = await runPocket(['budget', '--policy', policyFile, '--json'], env);
  const row = after.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l))
    .find((x) => x.area === 'chat' && x.period === 'day');
  check(row && row.spent_usd > 0 && row.spent_usd < 10, `budget spent ${row?.spent_usd} stays small`);

  // /metrics counts each anomaly by backend and kind; the log names backend and values.
  const m = await (await fetch(`${local.url}/metrics`)).text();
  for (const [kind, n] of Object.entries(expectedKinds)) {
    const re = new RegExp(`pocket_remote_usage_anomalies_total\\{backend="cloud",kind="${kind}"\\} (\\d+)`);
    eq(Number(m.match(re)?.[1]), n, `/metrics: ${n} anomalies of kind ${kind}`);
  }
  check(/remote 'cloud' reported unusable usage \(too_large\): [^\n]*2000000000/.test(local.log()) &&
        /remote 'cloud' reported unusable usage \(negative\): [^\n]*-1000000/.test(local.log()),
        'the log line names the backend, the kind and the values');
  check(!/cost_usd":-/.test(local.log()), 'no request logged a negative cost');
} finally {
  await local.stop();
  await remote.close();
}

// ---- The ledger at start-up ----
const serveArgs = (file, ...more) => ['serve', '--fake-model', 'tiny', '--port', '0', '--ledger', file, ...more];
const budgetArgs = (file, ...more) => ['budget', '--ledger', file, '--json', ...more];

// A valid ledger keeps its spend across restarts (the run above made one: read it twice).
const spentBefore = totalSpend();
for (let i = 0; i < 2; ++i) {
  const s = await startServer(['--fake-model', 'tiny', '--policy', policyFile, '--quiet'], { env });
  await s.stop();
  eq(totalSpend(), spentBefore, `restart ${i + 1}: the ledger keeps its spend`);
}
const okBudget = await runPocket(['budget', '--policy', policyFile, '--json', '--reset-ledger'], env);
check(okBudget.code === 0 && !fs.readdirSync(dir).some((f) => f.includes('.bad-')) &&
      totalSpend() === spentBefore, '--reset-ledger leaves a valid ledger alone');

const valid = fs.readFileSync(ledger);
const bad = [
  ['empty', Buffer.alloc(0), 'is empty (0 bytes)'],
  ['truncated', valid.subarray(0, Math.floor(valid.length / 2) + 7), 'is truncated'],
  ['header only', valid.subarray(0, 60), 'is truncated'],
  ['text', Buffer.from('spend: 82.5%\n'), 'is not an SQLite database'],
];
for (const [name, bytes, why] of bad) {
  const file = path.join(dir, `${name.replace(' ', '_')}.db`);
  fs.writeFileSync(file, bytes);
  for (const [cmd, args] of [['serve', serveArgs(file)], ['budget', budgetArgs(file)]]) {
    const r = await runPocket(args);
    const lines = r.stderr.trim().split('\n');
    check(r.code !== 0 && lines.length === 1 && lines[0].startsWith(`pocket ${cmd}: ledger: '${file}' ${why}`) &&
          lines[0].includes('--reset-ledger'),
          `${name} ledger stops pocket ${cmd} (${r.code}): ${lines[0]}`);
    check(Buffer.compare(fs.readFileSync(file), bytes) === 0, `${name} ledger left as it was by ${cmd}`);
  }
}
const otherDb = path.join(dir, 'other.db');
spawnSync('python3', ['-c', 'import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); ' +
  'c.execute("create table notes(x)"); c.commit()', otherDb]);
const other = await runPocket(serveArgs(otherDb));
check(other.code !== 0 && other.stderr.includes('not a Pocket ledger'), `another SQLite database: ${other.stderr.trim()}`);
const dirLedger = path.join(dir, 'dir.db');
fs.mkdirSync(dirLedger);
const d = await runPocket(budgetArgs(dirLedger));
check(d.code !== 0 && d.stderr.includes('is a directory'), `a directory: ${d.stderr.trim()}`);

// --reset-ledger moves the bad file aside (never deletes it) and starts a new ledger.
const emptyFile = path.join(dir, 'empty.db');
const resetPolicy = path.join(dir, 'reset.toml');
fs.writeFileSync(resetPolicy, `ledger = "${emptyFile}"\n`);
const reset = await startServer(['--fake-model', 'tiny', '--policy', resetPolicy, '--reset-ledger', '--quiet']);
await reset.stop();
const moved = fs.readdirSync(dir).filter((f) => f.startsWith('empty.db.bad-'));
check(moved.length === 1 && fs.statSync(path.join(dir, moved[0])).size === 0,
      `--reset-ledger kept the bad file as ${moved[0]}`);
check(/moved it to '.*empty\.db\.bad-\d{8}T\d{6}Z'/.test(reset.log()), 'and said so');
check(fs.statSync(emptyFile).size > 0 && (await runPocket(budgetArgs(emptyFile))).code === 0,
      'a new, valid ledger took its place');
const resetDir = await runPocket(budgetArgs(dirLedger, '--reset-ledger'));
check(resetDir.code === 0 && fs.readdirSync(dir).some((f) => f.startsWith('dir.db.bad-')),
      'pocket budget --reset-ledger moves a directory aside too');

// A missing ledger is a first run: created.
const fresh = path.join(dir, 'sub', 'fresh.db');
fs.mkdirSync(path.dirname(fresh));
const f = await runPocket(budgetArgs(fresh));
check(f.code === 0 && fs.existsSync(fresh), 'a missing ledger is created');
fs.rmSync(dir, { recursive: true, force: true });
done();
