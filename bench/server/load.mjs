#!/usr/bin/env node
// Load benchmark for `pocket serve` (continuous batching): starts the server on a model,
// then measures (1) one stream alone, (2) C concurrent streams, each generating N tokens
// with a fixed seed and ignore-EOS-free prompts, and prints one JSON line per result:
//   single:    tokens/s of one stream (client side: completion_tokens / (last - first token))
//   aggregate: sum of tokens / wall time with C streams; speedup = aggregate / single
//   ttft:      time to first token p50/p99 over the C concurrent requests (and alone)
//   overhead:  1 - server single-stream decode tokens/s / `pocket bench -n N` tokens/s
// Usage: node bench/server/load.mjs --bin build/release/pocket --model M.gguf
//          [--tokens 64] [--concurrency 8] [--rounds 2] [--threads 0] [--context 1024]
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const args = Object.fromEntries(process.argv.slice(2).reduce((acc, a, i, all) => {
  if (a.startsWith('--')) acc.push([a.slice(2), all[i + 1]?.startsWith('--') || all[i + 1] === undefined ? 'true' : all[i + 1]]);
  return acc;
}, []));
const bin = args.bin || 'build/release/pocket';
const model = args.model || 'models/default.gguf';
const tokens = Number(args.tokens || 64);
const conc = Number(args.concurrency || 8);
const rounds = Number(args.rounds || 2);
const threads = args.threads || '0';
const context = args.context || '1024';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pocket-bench-'));
const portFile = path.join(dir, 'port');
const server = spawn(bin, ['serve', '--model', model, '--port', '0', '--port-file', portFile,
                           '--threads', threads, '--context', context, '--max-active', String(conc),
                           '--max-queue', String(4 * conc), '--quiet', '--ledger', path.join(dir, 'l.db')],
                     { stdio: ['ignore', 'ignore', 'inherit'] });
process.on('exit', () => server.kill('SIGKILL'));
for (let i = 0; i < 1200 && !fs.existsSync(portFile); ++i) await new Promise((r) => setTimeout(r, 50));
if (!fs.existsSync(portFile)) { console.error('server did not start'); process.exit(1); }
const url = `http://127.0.0.1:${fs.readFileSync(portFile, 'utf8').trim()}/v1/completions`;

async function one(i) {
  const t0 = performance.now();
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ prompt: `Request ${i}: the history of the river and the town`, max_tokens: tokens,
                           temperature: 0.8, seed: 1000 + i, stream: true,
                           stream_options: { include_usage: true } }) });
  const reader = res.body.getReader();
  const dec = new TextDecoder();
  let first = 0, last = 0, usage = null, buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += dec.decode(value, { stream: true });
    let k;
    while ((k = buf.indexOf('\n\n')) >= 0) {
      const ev = buf.slice(0, k); buf = buf.slice(k + 2);
      if (!ev.startsWith('data: ') || ev === 'data: [DONE]') continue;
      const j = JSON.parse(ev.slice(6));
      if (j.usage) usage = j.usage;
      if (j.choices?.[0]?.text) { last = performance.now(); if (!first) first = last; }
    }
  }
  const n = usage ? usage.completion_tokens : 0;
  return { ttft_ms: first - t0, total_ms: performance.now() - t0, tokens: n,
           decode_tps: n > 1 && last > first ? (n - 1) / ((last - first) / 1000) : 0 };
}

const pct = (xs, q) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor(q * s.length))]; };
await one(0);  // warm-up: pages the weights in
const singles = [];
for (let r = 0; r < rounds; ++r) singles.push(await one(r));
const single_tps = Math.max(...singles.map((s) => s.decode_tps));
const single_e2e = Math.max(...singles.map((s) => s.tokens / (s.total_ms / 1000)));
let best = null;
for (let r = 0; r < rounds; ++r) {
  const t0 = performance.now();
  const res = await Promise.all(Array.from({ length: conc }, (_, i) => one(100 * r + i)));
  const wall = (performance.now() - t0) / 1000;
  const agg = res.reduce((s, x) => s + x.tokens, 0) / wall;
  if (!best || agg > best.agg) best = { agg, res };
}
const base = { model: path.basename(model), tokens, threads: Number(threads), cpus: os.cpus().length,
               loadavg_1m: os.loadavg()[0] };
console.log(JSON.stringify({ ...base, test: 'single', decode_tokens_per_s: single_tps,
                             end_to_end_tokens_per_s: single_e2e,
                             ttft_ms: pct(singles.map((s) => s.ttft_ms), 0.5) }));
console.log(JSON.stringify({ ...base, test: 'aggregate', concurrency: conc, tokens_per_s: best.agg,
                             speedup_vs_single: best.agg / single_e2e,
                             ttft_p50_ms: pct(best.res.map((x) => x.ttft_ms), 0.5),
                             ttft_p99_ms: pct(best.res.map((x) => x.ttft_ms), 0.99) }));
server.kill('SIGTERM');
// The same model through `pocket bench` (no HTTP, no scheduler) for the overhead figure.
const b = spawnSync(bin, ['bench', model, '-p', '0', '-n', String(tokens), '-r', String(rounds), '--json',
                          '-t', threads], { encoding: 'utf8' });
const line = (b.stdout || '').split('\n').find((l) => l.includes('"tg'));
if (b.status === 0 && line) {
  const j = JSON.parse(line);
  const tps = j.avg_ts ?? j.tokens_per_s ?? j.ts ?? 0;
  console.log(JSON.stringify({ ...base, test: 'overhead', pocket_bench_tokens_per_s: tps,
                               server_decode_tokens_per_s: single_tps,
                               overhead_fraction: tps ? 1 - single_tps / tps : null }));
} else {
  console.log(JSON.stringify({ ...base, test: 'overhead', error: 'pocket bench unavailable',
                               detail: (b.stderr || '').slice(0, 200) }));
}
process.exit(0);
