#!/usr/bin/env node
// Load benchmark for `pocket serve` (continuous batching), optionally side by side with
// llama.cpp's llama-server under the same load. Prints one JSON line per result:
//   single:    one stream alone; decode tokens/s = (tokens - 1) / (last - first token),
//              end to end = tokens / (request to last token); TTFT
//   aggregate: C concurrent streams arriving at once (best of --rounds):
//              tokens_per_s = all tokens / wall time (prefill of the C prompts included),
//              decode_tokens_per_s = tokens after each stream's first / (last token of all -
//              last first token), i.e. while all C streams generate; speedups vs single;
//              TTFT p50/p99
//   overhead:  1 - server decode tokens/s / `pocket bench -p 0 -n N` tokens/s, measured in
//              --rounds interleaved pairs (server, then bench) so that drift of the machine
//              hits both; the median pair is reported, and every pair. Two server figures:
//              streamed (the client above, parsing nothing until the end, still wakes for
//              every token on the same 2 cores) and unstreamed: the time of a request for
//              N+16 tokens minus one for 16 (same prompt and seed, both with the prompt
//              cached), which leaves prefill, HTTP and client out and times N decode steps
//              of the server's scheduler, sampler included. And in-process, free of the
//              drift between two processes: 1 - the model's own time per decode step
//              (/metrics pocket_decode_step_seconds_total / pocket_decode_steps_total
//              over the streamed request) / the client's time per token.
// The client is node:http with timestamps taken per received chunk and JSON parsed after
// the response ends: on a 2-core machine the client shares the cores with the server, and
// a heavier client (fetch + per-event parsing) costs the server's compute threads ~2 %.
// Usage: node bench/server/load.mjs --bin build/release/pocket --model M.gguf
//          [--tokens 64] [--concurrency 8] [--rounds 3] [--threads 0] [--context 1024]
//          [--peer /path/to/llama-server]   (never committed; built from a llama.cpp snapshot)
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
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
const rounds = Number(args.rounds || 3);
const threads = args.threads || '0';
const context = Number(args.context || 1024);
const peer = args.peer;

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pocket-bench-'));
const children = [];
process.on('exit', () => { for (const c of children) c.kill('SIGKILL'); });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function startPocket() {
  const portFile = path.join(dir, 'port');
  const child = spawn(bin, ['serve', '--model', model, '--port', '0', '--port-file', portFile,
                            '--threads', threads, '--context', String(context), '--max-active', String(conc),
                            '--max-queue', String(4 * conc), '--quiet', '--ledger', path.join(dir, 'l.db')],
                      { stdio: ['ignore', 'ignore', 'inherit'] });
  children.push(child);
  for (let i = 0; i < 1200 && !fs.existsSync(portFile); ++i) await sleep(50);
  if (!fs.existsSync(portFile)) throw new Error('pocket serve did not start');
  return { child, port: Number(fs.readFileSync(portFile, 'utf8').trim()) };
}

async function startPeer() {
  const port = 20000 + Math.floor(Math.random() * 20000);
  const env = { ...process.env, LD_LIBRARY_PATH: path.dirname(peer) };
  // One KV slot of --context tokens per stream, as `pocket serve --context` gives each.
  const child = spawn(peer, ['-m', model, '--port', String(port), '-t', threads === '0' ? String(os.cpus().length) : threads,
                             '-c', String(context * conc), '-np', String(conc), '-cb'],
                      { stdio: ['ignore', 'ignore', process.env.PEER_LOG ? 'inherit' : 'ignore'], env });
  children.push(child);
  for (let i = 0; i < 1200; ++i) {
    const ok = await new Promise((res) => {
      http.get({ host: '127.0.0.1', port, path: '/health', agent: false }, (r) => { r.resume(); res(r.statusCode === 200); })
        .on('error', () => res(false));
    });
    if (ok) return { child, port };
    await sleep(100);
  }
  throw new Error('llama-server did not start');
}

// One unstreamed /v1/completions request; resolves to its wall time in ms.
function whole(port, maxTokens) {
  return new Promise((resolve, reject) => {
    const body = JSON.stringify({ prompt: 'Overhead: the history of the river and the town', max_tokens: maxTokens,
                                  temperature: 0.8, seed: 5, stream: false });
    const t0 = performance.now();
    const req = http.request({ host: '127.0.0.1', port, path: '/v1/completions', method: 'POST', agent: false,
                               headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } },
                             (res) => {
      const parts = [];
      res.on('data', (d) => parts.push(d));
      res.on('end', () => {
        const j = JSON.parse(Buffer.concat(parts).toString('utf8'));
        if (j.usage?.completion_tokens !== maxTokens) reject(new Error(`expected ${maxTokens} tokens: ${JSON.stringify(j.usage)}`));
        else resolve(performance.now() - t0);
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

// One streamed /v1/completions request; timestamps per chunk, parsing at the end.
function one(port, i) {
  return new Promise((resolve, reject) => {
    const body = JSON.stringify({ prompt: `Request ${i}: the history of the river and the town`,
                                  max_tokens: tokens, temperature: 0.8, seed: 1000 + i, stream: true,
                                  stream_options: { include_usage: true } });
    const t0 = performance.now();
    const chunks = [];
    const req = http.request({ host: '127.0.0.1', port, path: '/v1/completions', method: 'POST', agent: false,
                               headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } },
                             (res) => {
      res.on('data', (d) => chunks.push([performance.now(), d]));
      res.on('end', () => {
        const end = performance.now();
        let first = 0, last = 0, n = 0, buf = '', usage = null;
        for (const [t, d] of chunks) {
          buf += d.toString('utf8');
          let k;
          while ((k = buf.indexOf('\n\n')) >= 0) {
            const ev = buf.slice(0, k); buf = buf.slice(k + 2);
            if (!ev.startsWith('data: ') || ev === 'data: [DONE]') continue;
            const j = JSON.parse(ev.slice(6));
            if (j.usage) usage = j.usage;
            // An event per token that completed text; the final one carries finish_reason.
            if (j.choices?.[0] && !j.choices[0].finish_reason) { ++n; last = t; if (!first) first = t; }
          }
        }
        if (usage?.completion_tokens) n = usage.completion_tokens;
        resolve({ t0, first, last, tokens: n, ttft_ms: first - t0, total_ms: end - t0,
                  decode_tps: n > 1 && last > first ? (n - 1) / ((last - first) / 1000) : 0 });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

const pct = (xs, q) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor(q * s.length))]; };
const median = (xs) => pct(xs, 0.5);

// The decode-step counters of /metrics (pocket serve only): [steps, seconds].
function decodeCounters(port) {
  return new Promise((resolve) => {
    http.get({ host: '127.0.0.1', port, path: '/metrics', agent: false }, (res) => {
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => {
        const get = (name) => body.split('\n').filter((l) => l.startsWith(name + '{') || l.startsWith(name + ' '))
          .reduce((sum, l) => sum + Number(l.split(' ').pop()), 0);
        resolve([get('pocket_decode_steps_total'), get('pocket_decode_step_seconds_total')]);
      });
    }).on('error', () => resolve([0, 0]));
  });
}

function benchOnce() {
  const b = spawnSync(bin, ['bench', model, '-p', '0', '-n', String(tokens), '-r', '3', '--json', '-t', threads,
                            '--bandwidth-mib', '64'], { encoding: 'utf8' });
  const line = (b.stdout || '').split('\n').find((l) => l.includes('"tg'));
  if (b.status !== 0 || !line) return null;
  const j = JSON.parse(line);
  return j.avg_ts ?? j.tokens_per_s ?? j.ts ?? null;
}

async function measure(server, name, withBench) {
  const base = { server: name, model: path.basename(model), tokens, threads: Number(threads),
                 cpus: os.cpus().length, loadavg_1m: os.loadavg()[0] };
  await one(server.port, 0);  // warm-up: pages the weights in
  await whole(server.port, 16);  // and caches the overhead prompt
  const singles = [], pairs = [];
  for (let r = 0; r < rounds; ++r) {
    const before = withBench ? await decodeCounters(server.port) : null;
    const s = await one(server.port, r);
    singles.push(s);
    if (withBench) {
      const after = await decodeCounters(server.port);
      const steps = after[0] - before[0], stepS = after[1] - before[1];
      s.in_process = steps > 0 && s.decode_tps > 0 ? 1 - (stepS / steps) * s.decode_tps : null;
      const short = await whole(server.port, 16), long = await whole(server.port, 16 + tokens);
      const unstreamed = tokens / ((long - short) / 1000);
      const b = benchOnce();
      if (b) pairs.push({ server_decode_tokens_per_s: s.decode_tps, server_unstreamed_tokens_per_s: unstreamed,
                          pocket_bench_tokens_per_s: b, overhead_fraction: 1 - s.decode_tps / b,
                          unstreamed_overhead_fraction: 1 - unstreamed / b,
                          in_process_overhead_fraction: s.in_process });
    }
  }
  const single_tps = median(singles.map((s) => s.decode_tps));
  const single_e2e = median(singles.map((s) => s.tokens / (s.total_ms / 1000)));
  console.log(JSON.stringify({ ...base, test: 'single', decode_tokens_per_s: single_tps,
                               end_to_end_tokens_per_s: single_e2e,
                               ttft_ms: median(singles.map((s) => s.ttft_ms)) }));
  let best = null;
  for (let r = 0; r < rounds; ++r) {
    const t0 = performance.now();
    const res = await Promise.all(Array.from({ length: conc }, (_, i) => one(server.port, 100 * (r + 1) + i)));
    const wall = (performance.now() - t0) / 1000;
    const agg = res.reduce((s, x) => s + x.tokens, 0) / wall;
    const lastFirst = Math.max(...res.map((x) => x.first)), lastLast = Math.max(...res.map((x) => x.last));
    const decodeAgg = res.reduce((s, x) => s + x.tokens - 1, 0) / ((lastLast - lastFirst) / 1000);
    if (!best || agg > best.agg) best = { agg, decodeAgg, res };
  }
  console.log(JSON.stringify({ ...base, test: 'aggregate', concurrency: conc, tokens_per_s: best.agg,
                               speedup_vs_single: best.agg / single_e2e,
                               decode_tokens_per_s: best.decodeAgg,
                               decode_speedup_vs_single: best.decodeAgg / single_tps,
                               ttft_p50_ms: pct(best.res.map((x) => x.ttft_ms), 0.5),
                               ttft_p99_ms: pct(best.res.map((x) => x.ttft_ms), 0.99) }));
  if (withBench) {
    if (pairs.length) {
      const m = median(pairs.map((p) => p.overhead_fraction));
      const mu = median(pairs.map((p) => p.unstreamed_overhead_fraction));
      const mi = median(pairs.map((p) => p.in_process_overhead_fraction ?? 0));
      console.log(JSON.stringify({ ...base, test: 'overhead', overhead_fraction: m, unstreamed_overhead_fraction: mu,
                                   in_process_overhead_fraction: mi,
                                   pairs: pairs.map((p) => Object.fromEntries(
                                     Object.entries(p).map(([k, v]) => [k, Number(v.toFixed(4))]))) }));
    } else {
      console.log(JSON.stringify({ ...base, test: 'overhead', error: 'pocket bench unavailable' }));
    }
  }
}

const pocket = await startPocket();
await measure(pocket, 'pocket', true);
pocket.child.kill('SIGTERM');
await sleep(500);
if (peer) {
  const p = await startPeer();
  await measure(p, 'llama-server', false);
  p.child.kill('SIGTERM');
}
process.exit(0);
