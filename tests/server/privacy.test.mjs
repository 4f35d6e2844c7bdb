// Private data never leaves: `pocket serve` with a remote backend that is a RECORDING
// remote (a node http server in this file that keeps every body it receives, as bytes
// decoded once, and answers as an OpenAI endpoint would, streamed or not).
//
// 1. Regressions: wrong types in the `pocket` object are a 400 naming the field (the
//    server stays up); unknown privacy values are a 400 listing the valid ones; header and
//    body disagreeing, a repeated header or a comma list: the most restrictive wins; a
//    redaction that would cut "ü" in half goes out as valid UTF-8.
// 2. A property test: random requests with PII (emails, Luhn-valid cards, phone numbers,
//    API keys, US SSNs, and the policy's own patterns over multi-byte text) planted at
//    random string positions (message content, content parts, split across two parts,
//    two messages, two stop strings or two metadata values, `user`, `name`, `stop`,
//    `metadata`, tool-call arguments, tool descriptions, unknown extra fields, nested
//    objects and arrays), sent through every route (plain, streamed, pinned, fallback on
//    a 500 or a reset, overloaded: a concurrent batch against one slot where 429s are
//    retried): under privacy mode "local" the remote receives none of them; under
//    "redact" it receives no PII unredacted, and requests marked private (header, body,
//    repeated header, comma list, header and body disagreeing) never reach it.
//    Fixed seed and count by default; longer runs:
//      POCKET_PRIVACY_SEED=123 POCKET_PRIVACY_COUNT=5000 POCKET_BIN=build/release/pocket \
//        node tests/server/privacy.test.mjs
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { startServer, check, eq, done, tmpDir, sleep } from './lib.mjs';

const SEED = Number(process.env.POCKET_PRIVACY_SEED ?? 20261207);
const COUNT = Number(process.env.POCKET_PRIVACY_COUNT ?? 300);
console.log(`privacy property test: seed=${SEED} count=${COUNT} ` +
            '(override with POCKET_PRIVACY_SEED / POCKET_PRIVACY_COUNT)');

// ---------------------------------------------------------------------------------------
// The recording remote.
function startRecordingRemote() {
  const state = { mode: 'ok', log: [] };
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (d) => chunks.push(d));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      state.log.push({ url: req.url, body, mode: state.mode });
      if (state.mode === 'reset') { req.socket.destroy(); return; }
      if (state.mode === 'error500') {
        res.statusCode = 500;
        res.end('{"error":{"message":"injected","type":"server_error"}}');
        return;
      }
      let parsed = {};
      try { parsed = JSON.parse(body); } catch {}
      const chat = req.url.endsWith('/chat/completions');
      const usage = { prompt_tokens: 5, completion_tokens: 1, total_tokens: 6 };
      if (parsed.stream) {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        const choice = chat ? { index: 0, delta: { content: 'ok' }, finish_reason: null }
                            : { index: 0, text: 'ok', finish_reason: null };
        res.write(`data: ${JSON.stringify({ id: 'r', object: 'chunk', model: 'big', choices: [choice] })}\n\n`);
        const fin = chat ? { index: 0, delta: {}, finish_reason: 'stop' }
                         : { index: 0, text: '', finish_reason: 'stop' };
        res.write(`data: ${JSON.stringify({ id: 'r', model: 'big', choices: [fin] })}\n\n`);
        res.write(`data: ${JSON.stringify({ id: 'r', model: 'big', choices: [], usage })}\n\n`);
        res.end('data: [DONE]\n\n');
        return;
      }
      const choice = chat ? { index: 0, message: { role: 'assistant', content: 'ok' }, finish_reason: 'stop' }
                          : { index: 0, text: 'ok', finish_reason: 'stop' };
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ id: 'r', object: chat ? 'chat.completion' : 'text_completion',
                               created: 1, model: 'big', choices: [choice], usage }));
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({
    url: `http://127.0.0.1:${server.address().port}`,
    state,
    close() { server.closeAllConnections?.(); return new Promise((r) => server.close(r)); },
  })));
}

// POST with node:http so a header can really be repeated (an array value is sent as
// several header lines). Resolves {status, route, text, json}.
function post(url, pathname, body, headers = {}) {
  return new Promise((resolve, reject) => {
    const data = Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
    const req = http.request(url + pathname, {
      method: 'POST', headers: { 'content-type': 'application/json', 'content-length': data.length, ...headers },
    }, (res) => {
      const chunks = [];
      res.on('data', (d) => chunks.push(d));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json = null;
        try { json = JSON.parse(text); } catch {}
        resolve({ status: res.statusCode, route: res.headers['x-pocket-route'] || '', text, json });
      });
    });
    req.on('error', reject);
    req.end(data);
  });
}
const chat = (srv, body, headers) => post(srv.url, '/v1/chat/completions', body, headers);

// ---------------------------------------------------------------------------------------
// Setup: one remote, two routers (privacy mode local and redact) sharing it.
const remote = await startRecordingRemote();
const dir = tmpDir('pocket-privacy-');
function policy(mode) {
  const file = path.join(dir, `policy-${mode}.toml`);
  fs.writeFileSync(file, `
default_area = "chat"
[backends.local]
kind = "local"
[backends.cloud]
kind = "openai"
base_url = "${remote.url}/v1"
model = "big"
price_input_per_1k = 0.001
price_output_per_1k = 0.001
timeout_ms = 3000
[areas.chat]
backends = ["local", "cloud"]
[privacy]
mode = "${mode}"
[privacy.patterns]
codename = "Codename: .{2}"
project = "PROJECT-[A-Z]{4}"
`);
  return file;
}
const local = await startServer(['--fake-model', 'tiny', '--policy', policy('local'), '--quiet',
                                 '--max-active', '1', '--max-queue', '1']);
const redact = await startServer(['--fake-model', 'tiny', '--policy', policy('redact'), '--quiet',
                                  '--max-active', '1', '--max-queue', '1']);
const user = (content) => ({ model: 'auto', max_tokens: 8, messages: [{ role: 'user', content }] });

async function healthy(srv) {
  const r = await fetch(`${srv.url}/health`).catch(() => null);
  return r?.status === 200;
}

try {
  // -------------------------------------------------------------------------------------
  // 1. Regressions.
  const typeCases = [
    [{ private: 'yes' }, 'pocket.private'],
    [{ private: 1 }, 'pocket.private'],
    [{ privacy: 5 }, 'pocket.privacy'],
    [{ privacy: ['private'] }, 'pocket.privacy'],
    [{ privacy: 'secret' }, 'pocket.privacy'],
    [{ quality: true }, 'pocket.quality'],
    [{ area: 7 }, 'pocket.area'],
    [{ truncate: 'maybe' }, 'pocket.truncate'],
    [{ privcy: 'private' }, 'pocket.privcy'],
    ['private', 'pocket'],
  ];
  for (const [pocket, param] of typeCases) {
    const r = await chat(local, { ...user('hello'), pocket });
    check(r.status === 400 && r.json?.error?.param === param,
          `pocket ${JSON.stringify(pocket)} -> ${r.status} param ${r.json?.error?.param}`);
  }
  const unknownValue = await chat(local, { ...user('hello'), pocket: { privacy: 'secret' } });
  check(/public, private/.test(unknownValue.json?.error?.message ?? ''),
        `an unknown privacy value lists the valid ones: ${unknownValue.json?.error?.message}`);
  const badHeader = await chat(local, user('hello'), { 'x-pocket-privacy': 'confidential' });
  check(badHeader.status === 400 && badHeader.json?.error?.param === 'x-pocket-privacy',
        `x-pocket-privacy: confidential -> ${badHeader.status} ${badHeader.json?.error?.param}`);
  const badPrivate = await chat(local, user('hello'), { 'x-pocket-private': 'yes' });
  check(badPrivate.status === 400 && badPrivate.json?.error?.param === 'x-pocket-private',
        `x-pocket-private: yes -> ${badPrivate.status}`);
  check(await healthy(local), 'the server is still up after every wrong type');

  // Most restrictive wins.
  const before = remote.state.log.length;
  const restrictive = [
    ['header private, body public', { privacy: 'public', quality: 'high' }, { 'x-pocket-privacy': 'private' }],
    ['header public, body private', { privacy: 'private', quality: 'high' }, { 'x-pocket-privacy': 'public' }],
    ['repeated header public then private', { quality: 'high' }, { 'x-pocket-privacy': ['public', 'private'] }],
    ['repeated header private then public', { quality: 'high' }, { 'x-pocket-privacy': ['private', 'public'] }],
    ['comma list', { quality: 'high' }, { 'x-pocket-privacy': 'public, PRIVATE' }],
    ['private: true with privacy public', { private: true, privacy: 'public', quality: 'high' }, {}],
    ['x-pocket-private header', { privacy: 'public', quality: 'high' }, { 'x-pocket-private': 'true' }],
  ];
  for (const [name, pocket, headers] of restrictive) {
    for (const stream of [false, true]) {
      const r = await chat(redact, { ...user(`MARKER-RESTRICT ${name}`), pocket, stream }, headers);
      check(r.status === 200 && r.route.startsWith('local; reason=private'),
            `${name}${stream ? ' (stream)' : ''} -> ${r.status} ${r.route}`);
    }
  }
  check(remote.state.log.length === before && !remote.state.log.some((e) => e.body.includes('MARKER-RESTRICT')),
        'none of the requests marked private reached the remote');
  const pub = await chat(redact, { ...user('a public question'), pocket: { privacy: 'public', quality: 'high' } },
                         { 'x-pocket-privacy': ['public', 'public'] });
  check(pub.route.startsWith('remote=cloud'), `public everywhere goes remote: ${pub.route}`);

  // A redaction that cuts nothing in half, and a serialiser that cannot throw.
  for (const stream of [false, true]) {
    const n = remote.state.log.length;
    const r = await chat(redact, { ...user('Codename: Zürich'), pocket: { quality: 'high' }, stream });
    const sent = remote.state.log.slice(n).map((e) => e.body).join('\n');
    check(r.status === 200 && r.route.startsWith('remote=cloud') && r.route.includes('redacted'),
          `Codename: Zürich${stream ? ' (stream)' : ''} -> ${r.status} ${r.route}`);
    check(sent.includes('[REDACTED:codename]rich') && !sent.includes('Codename: Z'),
          `the remote got "[REDACTED:codename]rich": ${sent.slice(0, 200)}`);
  }
  check(await healthy(redact), 'the redact server is still up');

  // Other fields than message text.
  for (const [field, body] of [
    ['user', { ...user('hi'), user: 'jane.doe@example.com' }],
    ['metadata', { ...user('hi'), metadata: { who: 'jane.doe@example.com' } }],
    ['stop', { ...user('hi'), stop: ['jane.doe@', 'example.com'] }],
    ['extra', { ...user('hi'), x_extra: [{ deep: ['+1 415 555 0100'] }] }],
  ]) {
    const n = remote.state.log.length;
    const r = await chat(local, { ...body, pocket: { quality: 'high' } });
    check(r.status === 200 && r.route.startsWith('local; reason=privacy_pattern') &&
          remote.state.log.length === n, `PII in ${field} stays local: ${r.route}`);
  }

  // -------------------------------------------------------------------------------------
  // 2. The property test.
  let s = SEED >>> 0;
  const rand = () => {  // mulberry32
    s = (s + 0x6D2B79F5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n) => Math.floor(rand() * n);
  const pick = (a) => a[int(a.length)];
  const letters = (n, abc = 'abcdefghijklmnopqrstuvwxyz') => Array.from({ length: n }, () => abc[int(abc.length)]).join('');
  const digits = (n) => Array.from({ length: n }, () => String(int(10))).join('');
  const upper = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ';
  const multi = ['ü', 'é', 'Ж', '中', '€', 'ह', '𝄞', '😀', 'e\u0301', '👨‍👩‍👧', '🇩🇪', 'ß'];
  // Filler has no digits and no '@', so it cannot complete or extend a planted item.
  const fillerWords = ['hello', 'Zürich', '中文', 'please', 'summary', '😀', 'réunion', 'Жанна',
                       'notes', 'e\u0301te\u0301', 'thanks', 'क्या'];
  const filler = () => Array.from({ length: 1 + int(4) }, () => pick(fillerWords)).join(' ');
  function luhnCard() {
    const d = ['4', ...digits(14).split('')];
    let sum = 0;
    for (let i = 0; i < 15; ++i) {
      let v = Number(d[14 - i]);
      if (i % 2 === 0) { v *= 2; if (v > 9) v -= 9; }
      sum += v;
    }
    d.push(String((10 - (sum % 10)) % 10));
    const raw = d.join('');
    const sep = pick(['', ' ', '-']);
    return sep ? raw.match(/.{4}/g).join(sep) : raw;
  }
  // Each generator: the planted text and the part of it that must never arrive.
  const pii = [
    () => { const v = `${letters(5)}.${letters(4)}@${letters(6)}.com`; return { text: v, core: v }; },
    () => { const v = luhnCard(); return { text: v, core: v, digits: v.replace(/\D/g, '') }; },
    () => { const v = pick([`+1 ${digits(3)} ${digits(3)} ${digits(4)}`, `(0${digits(2)}) ${digits(4)}-${digits(4)}`]); return { text: v, core: v }; },
    () => { const v = `sk-${letters(22, 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123456789')}`; return { text: v, core: v }; },
    () => { const v = `${1 + int(8)}${digits(2)}-${digits(2)}-${digits(4)}`; return { text: v, core: v }; },
    () => { const c = pick(multi) + pick(multi); const v = `Codename: ${c}${letters(3)}`;
            return { text: v, core: `Codename: ${Array.from(c).slice(0, 2).join('')}` }; },
    () => { const v = `PROJECT-${letters(4, upper)}`; return { text: v, core: v }; },
  ];
  // Splits at a code point boundary, both pieces non-empty.
  function split(text) {
    const cps = Array.from(text);
    const at = 1 + int(cps.length - 1);
    return [cps.slice(0, at).join(''), cps.slice(at).join('')];
  }

  // Builds a request with 1-3 planted items; returns {endpoint, body, items}.
  function randomRequest(tag) {
    const completions = rand() < 0.15;
    const items = [];
    const body = { model: 'auto', max_tokens: 8 };
    const messages = [{ role: 'user', content: `${tag} ${filler()}` }];
    for (let i = int(3); i > 0; --i) messages.push({ role: pick(['user', 'assistant']), content: filler() });
    const plant = () => { const p = pick(pii)(); items.push(p); return p; };
    const around = (t) => `${filler()} ${t} ${filler()}`;
    const positions = completions
      ? ['prompt', 'user', 'stop', 'metadata', 'extra', 'nested']
      : ['content', 'part', 'split_parts', 'split_messages', 'user', 'name', 'stop', 'split_stop',
         'metadata', 'split_metadata', 'extra', 'nested', 'tool_args', 'tool_description'];
    let prompt = `${tag} ${filler()}`;
    for (let k = 1 + int(3); k > 0; --k) {
      const where = pick(positions);
      const p = plant();
      const m = messages[int(messages.length)];
      switch (where) {
        case 'prompt': prompt += ` ${p.text} ${filler()}`; break;
        case 'content': m.content = `${m.content ?? ''} ${p.text} ${filler()}`; break;
        case 'part': m.content = [{ type: 'text', text: String(m.content ?? '') }, { type: 'text', text: around(p.text) }]; break;
        case 'split_parts': {
          const [a, b] = split(p.text);
          m.content = [{ type: 'text', text: `${filler()} ${a}` }, { type: 'text', text: `${b} ${filler()}` }];
          break;
        }
        case 'split_messages': {
          const [a, b] = split(p.text);
          messages.push({ role: 'user', content: `${filler()} ${a}` }, { role: 'user', content: `${b} ${filler()}` });
          break;
        }
        case 'user': body.user = around(p.text); break;
        case 'name': m.name = p.text; break;
        case 'stop': body.stop = [filler(), p.text].slice(0, 4); break;
        case 'split_stop': body.stop = split(p.text); break;
        case 'metadata': body.metadata = { ...(body.metadata ?? {}), [letters(5)]: around(p.text) }; break;
        case 'split_metadata': { const [a, b] = split(p.text); body.metadata = { k1: `${filler()} ${a}`, k2: `${b} ${filler()}` }; break; }
        case 'extra': body[`x_${letters(4)}`] = around(p.text); break;
        case 'nested': body.x_nested = { a: [1, { b: [[around(p.text)]] }, null], c: true }; break;
        case 'tool_args':
          messages.push({ role: 'assistant', content: null, tool_calls: [
            { id: 'call_1', type: 'function', function: { name: 'send', arguments: JSON.stringify({ to: p.text }) } }] });
          break;
        case 'tool_description':
          body.tools = [{ type: 'function', function: { name: 'lookup', description: around(p.text), parameters: { type: 'object' } } }];
          break;
      }
    }
    if (completions) body.prompt = prompt;
    else body.messages = messages;
    return { endpoint: completions ? '/v1/completions' : '/v1/chat/completions', body, items };
  }

  // What a body sends, as texts to search: the raw body, every key and string, each pair
  // of consecutive string values and all of them joined in document order (values of
  // role/type/model/name left out: a model reads consecutive messages and parts as one
  // run of text; a name sits beside it).
  const SIDE_KEYS = ['role', 'type', 'model', 'name'];
  function sentTexts(raw) {
    let parsed;
    try { parsed = JSON.parse(raw); } catch { return { all: [raw], near: [raw] }; }
    const singles = [];
    const values = [];
    const walk = (v, key) => {
      if (typeof v === 'string') {
        singles.push(v);
        if (!SIDE_KEYS.includes(key)) values.push(v);
      } else if (Array.isArray(v)) {
        v.forEach((x) => walk(x));
      } else if (v && typeof v === 'object') {
        for (const [k, x] of Object.entries(v)) { singles.push(k); walk(x, k); }
      }
    };
    walk(parsed);
    const pairs = values.slice(1).map((v, i) => values[i] + v);
    return { all: [raw, ...singles, ...pairs, values.join('')], near: [...singles, ...pairs] };
  }
  // The planted values that arrived whole: as written anywhere, or (cards) as the same
  // digits within one string or two consecutive ones, with other blanks or dashes.
  function leaks(raw, items) {
    const { all, near } = sentTexts(raw);
    const found = [];
    for (const it of items) {
      if (all.some((t) => t.includes(it.core))) found.push(it.core);
      else if (it.digits && near.some((t) => t.replace(/[\s-]/g, '').includes(it.digits))) found.push(it.core);
    }
    return found;
  }

  const routes = ['plain', 'plain_header', 'stream', 'pinned', 'fallback_500', 'fallback_reset',
                  'overloaded'];
  async function send(srv, req, route, headers) {
    const body = { ...req.body };
    if (route === 'stream') body.stream = true;
    if (route === 'pinned') body.model = 'cloud';
    else if (route === 'plain_header') headers = { ...headers, 'x-pocket-quality': 'high' };
    else body.pocket = { ...(body.pocket ?? {}), quality: 'high' };
    for (let attempt = 0; ; ++attempt) {  // the retried route: a 429 is sent again
      const r = await post(srv.url, req.endpoint, body, headers);
      if (r.status !== 429 || attempt >= 200) return { ...r, attempts: attempt + 1 };
      await sleep(5 + int(20));
    }
  }

  for (const [name, srv] of [['local', local], ['redact', redact]]) {
    const logStart = remote.state.log.length;
    const sent = [];  // {tag, items, markedPrivate, route, status}
    let retried = 0, remoteRoutes = 0, bad = 0;
    const overloadBatch = [];
    const flush = async () => {
      remote.state.mode = 'ok';
      const res = await Promise.all(overloadBatch.map((x) => send(srv, x.req, 'overloaded', x.headers)));
      res.forEach((r, i) => { overloadBatch[i].result = r; if (r.attempts > 1) ++retried; });
      overloadBatch.length = 0;
    };
    for (let i = 0; i < COUNT; ++i) {
      const tag = `REQ${letters(8, upper)}`;
      const req = randomRequest(tag);
      const route = pick(routes);
      // Under redact, some requests carry no PII but are marked private in one of the ways
      // that must win.
      let headers = {};
      let markedPrivate = false;
      if (name === 'redact' && rand() < 0.2) {
        markedPrivate = true;
        req.items = [];
        const how = int(5);
        if (how === 0) headers = { 'x-pocket-privacy': 'private' };
        if (how === 1) { headers = { 'x-pocket-privacy': 'private' }; req.body.pocket = { privacy: 'public' }; }
        if (how === 2) headers = { 'x-pocket-privacy': ['public', 'private'] };
        if (how === 3) headers = { 'x-pocket-privacy': 'public,private' };
        if (how === 4) req.body.pocket = { private: true, privacy: 'public' };
      }
      const entry = { tag, items: req.items, markedPrivate, route };
      sent.push(entry);
      if (route === 'overloaded') {
        overloadBatch.push({ req, headers, entry });
        if (overloadBatch.length >= 6) {
          const batch = [...overloadBatch];
          await flush();
          for (const x of batch) Object.assign(x.entry, { status: x.result.status, routeHeader: x.result.route });
        }
        continue;
      }
      remote.state.mode = route === 'fallback_500' ? 'error500' : route === 'fallback_reset' ? 'reset' : 'ok';
      const r = await send(srv, req, route, headers);
      if (r.attempts > 1) ++retried;
      Object.assign(entry, { status: r.status, routeHeader: r.route });
    }
    if (overloadBatch.length) {
      const batch = [...overloadBatch];
      await flush();
      for (const x of batch) Object.assign(x.entry, { status: x.result.status, routeHeader: x.result.route });
    }
    remote.state.mode = 'ok';
    const log = remote.state.log.slice(logStart);
    for (const e of sent) {
      if (e.status !== 200) { ++bad; if (bad < 5) console.log(`  ${e.tag} ${e.route}: status ${e.status}`); }
      if (e.routeHeader?.startsWith('remote') || e.routeHeader?.includes('reason=fallback')) ++remoteRoutes;
    }
    check(bad === 0, `${name}: all ${sent.length} requests answered 200 (${bad} not)`);
    // What reached the remote.
    let leaked = 0, privateSeen = 0;
    const byTag = new Map(sent.map((e) => [e.tag, e]));
    for (const rec of log) {
      const tag = rec.body.match(/REQ[A-Z]{8}/)?.[0];
      const e = byTag.get(tag);
      if (!e) continue;
      if (e.markedPrivate) { ++privateSeen; continue; }
      if (name === 'local' && e.items.length > 0) { ++leaked; if (leaked < 5) console.log(`  local mode sent ${tag}: ${rec.body.slice(0, 300)}`); continue; }
      const found = leaks(rec.body, e.items);
      if (found.length) { ++leaked; if (leaked < 5) console.log(`  ${tag} (${e.route}) leaked ${JSON.stringify(found)}: ${rec.body.slice(0, 400)}`); }
    }
    check(leaked === 0, `${name}: zero ${name === 'local' ? 'requests with PII' : 'unredacted PII'} reached the remote (${log.length} bodies recorded)`);
    check(privateSeen === 0, `${name}: zero requests marked private reached the remote`);
    const routeCounts = {};
    for (const e of sent) routeCounts[e.route] = (routeCounts[e.route] ?? 0) + 1;
    console.log(`  ${name}: routes ${JSON.stringify(routeCounts)}, ${remoteRoutes} went out, ${retried} retried after 429`);
    if (name === 'redact') {
      check(remoteRoutes > COUNT / 4, `redact: the test is not vacuous (${remoteRoutes} of ${COUNT} went out redacted)`);
      check(log.some((r) => r.body.includes('[REDACTED:')), 'redact: the remote received redacted bodies');
    } else {
      check(log.length === 0 || log.every((r) => !byTag.get(r.body.match(/REQ[A-Z]{8}/)?.[0])?.items.length),
            'local: only requests without PII reached the remote');
    }
    if (COUNT >= 100) check(retried > 0, `${name}: the overloaded route saw 429s that were retried (${retried})`);
    check(await healthy(srv), `${name}: the server is still up`);
  }
} finally {
  await local.stop();
  await redact.stop();
  await remote.close();
}
done();
