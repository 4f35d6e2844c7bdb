// Helpers for the server tests: start/stop `pocket serve` on a free loopback port, load
// the official openai client from tests/node, tiny assertion helpers. Every child process
// started here is killed on exit.
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const repo = path.resolve(here, '../..');
export const pocketBin = process.env.POCKET_BIN || path.join(repo, 'build/release/pocket');

export function loadOpenAI() {
  const require = createRequire(path.join(repo, 'tests/node/package.json'));
  const mod = require('openai');
  return mod.OpenAI || mod.default || mod;
}

const children = new Set();
function killAll() { for (const c of children) { try { c.kill('SIGKILL'); } catch {} } }
process.on('exit', killAll);
process.on('uncaughtException', (e) => { console.error(e); killAll(); process.exit(1); });
process.on('unhandledRejection', (e) => { console.error(e); killAll(); process.exit(1); });

export function tmpDir(prefix) { return fs.mkdtempSync(path.join(os.tmpdir(), prefix)); }

// Starts `pocket serve ARGS --port 0`; resolves once the port file appears (bounded wait).
export async function startServer(args, { env = {} } = {}) {
  const dir = tmpDir('pocket-serve-');
  const portFile = path.join(dir, 'port');
  const proc = spawn(pocketBin, ['serve', '--port', '0', '--port-file', portFile,
                                 '--ledger', path.join(dir, 'ledger.db'), ...args],
                     { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
  children.add(proc);
  let log = '';
  proc.stderr.on('data', (d) => { log += d.toString(); });
  let exited = null;
  proc.on('exit', (code) => { exited = code; children.delete(proc); });
  for (let i = 0; i < 300; ++i) {
    if (fs.existsSync(portFile)) break;
    if (exited !== null) throw new Error(`pocket serve exited ${exited}: ${log}`);
    await sleep(50);
  }
  if (!fs.existsSync(portFile)) throw new Error(`pocket serve did not start: ${log}`);
  const port = Number(fs.readFileSync(portFile, 'utf8').trim());
  const server = {
    port, dir, proc,
    url: `http://127.0.0.1:${port}`,
    log: () => log,
    async stop() {
      if (exited !== null) return exited;
      proc.kill('SIGTERM');
      for (let i = 0; i < 200 && exited === null; ++i) await sleep(25);
      if (exited === null) proc.kill('SIGKILL');
      return exited;
    },
  };
  return server;
}

export function sleep(ms) { return new Promise((r) => setTimeout(r, ms)); }

let failures = 0;
export function check(cond, what) {
  if (cond) { console.log(`ok   ${what}`); return; }
  failures++;
  console.log(`FAIL ${what}`);
}
export function eq(a, b, what) {
  const ok = JSON.stringify(a) === JSON.stringify(b);
  check(ok, ok ? what : `${what}: got ${JSON.stringify(a)} want ${JSON.stringify(b)}`);
}
export function done() {
  if (failures) { console.log(`${failures} check(s) failed`); process.exit(1); }
  console.log('all checks passed');
  process.exit(0);
}

// Runs `pocket ARGS` to completion; returns {code, stdout, stderr}.
export function runPocket(args, env = {}) {
  return new Promise((resolve) => {
    const p = spawn(pocketBin, args, { env: { ...process.env, ...env } });
    let out = '', err = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { err += d; });
    p.on('exit', (code) => resolve({ code, stdout: out, stderr: err }));
  });
}

// One chat request through the openai client: the text (streamed or not), the route the
// router took (x-pocket-route), and for non-streamed answers the model and usage.
export async function askChat(client, content, { headers = {}, pocket, model = 'auto', stream = false,
                                                 max_tokens = 10 } = {}) {
  const body = { model, messages: [{ role: 'user', content }], max_tokens, seed: 1 };
  if (pocket) body.pocket = pocket;
  if (stream) {
    const { data, response } = await client.chat.completions.create({ ...body, stream: true },
                                                                     { headers }).withResponse();
    let text = '';
    for await (const c of data) text += c.choices[0]?.delta?.content ?? '';
    return { text, route: response.headers.get('x-pocket-route'), model: null };
  }
  const { data, response } = await client.chat.completions.create(body, { headers }).withResponse();
  return { text: data.choices[0].message.content, route: response.headers.get('x-pocket-route'),
           model: data.model, usage: data.usage };
}
