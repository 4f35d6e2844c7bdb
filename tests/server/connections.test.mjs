// Connection exhaustion against `pocket serve` (issue 11): idle connections that never send
// a byte, from one client address and from many, must not lock other clients out; a new
// connection over a limit is answered at once (429 per client, 503 in all) and closed; a
// connection that sends nothing is closed after --first-byte-timeout-ms while an idle
// keep-alive connection keeps its own idle timeout; and out of file descriptors (EMFILE
// under `prlimit --nofile`) the server pauses accepting instead of spinning, logs the
// episode once, and serves again once the flood is gone.
// Other client addresses are other loopback addresses (127.0.0.2, ... are all local on
// Linux), taken by binding the socket's local address. Bounded waits; every socket and
// server is closed by the test.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { pocketBin, startServer, check, eq, done, sleep, tmpDir } from './lib.mjs';

// A socket from `localAddress` that sends nothing: records what it receives and when it
// closes. `ready` resolves once it is connected or closed.
function openIdle(port, localAddress) {
  const s = { data: '', closed: false, closedAt: 0 };
  s.sock = net.connect({ host: '127.0.0.1', port, localAddress });
  s.sock.on('data', (d) => { s.data += d.toString(); });
  s.sock.on('error', () => {});
  s.closedPromise = new Promise((resolve) => s.sock.on('close', () => {
    s.closed = true; s.closedAt = Date.now(); resolve();
  }));
  s.ready = new Promise((resolve) => { s.sock.on('connect', resolve); s.sock.on('close', resolve); });
  return s;
}

// One HTTP/1.1 request on a fresh socket from `localAddress`; resolves with the raw
// response text (whatever arrived before the server closed, or up to timeoutMs).
function rawRequest(port, localAddress, request, timeoutMs = 5000) {
  return new Promise((resolve) => {
    const sock = net.connect({ host: '127.0.0.1', port, localAddress });
    let data = '';
    const timer = setTimeout(() => { sock.destroy(); resolve(data); }, timeoutMs);
    sock.on('connect', () => sock.write(request));
    sock.on('data', (d) => {
      data += d.toString();
      // A complete response with a Content-Length: no need to wait for the close.
      const m = data.match(/content-length: (\d+)\r\n/i);
      const head = data.indexOf('\r\n\r\n');
      if (m && head >= 0 && data.length >= head + 4 + Number(m[1])) {
        clearTimeout(timer); sock.destroy(); resolve(data);
      }
    });
    sock.on('error', () => {});
    sock.on('close', () => { clearTimeout(timer); resolve(data); });
  });
}
const health = (port, from, timeoutMs) =>
  rawRequest(port, from, 'GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', timeoutMs);
const statusOf = (response) => Number((response.match(/^HTTP\/1\.1 (\d+)/) || [])[1] || 0);

function metric(text, name, labels = '') {
  const line = text.split('\n').find((l) => l.startsWith(name + (labels ? `{${labels}}` : ' ')));
  return line ? Number(line.split(' ').pop()) : NaN;
}
async function metrics(port) {
  const r = await rawRequest(port, '127.0.0.1',
                             'GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  return r.slice(r.indexOf('\r\n\r\n') + 4);
}

const sockets = [];
function closeAll() { for (const s of sockets.splice(0)) s.sock.destroy(); }

// --- Limits: per client, global, first-byte deadline ------------------------------------
{
  const server = await startServer(['--fake-model', 'tiny', '--quiet', '--max-connections', '16',
                                    '--max-connections-per-client', '4',
                                    '--first-byte-timeout-ms', '1500']);
  try {
    // One attacker address opens more idle connections than its limit: the extra ones are
    // answered 429 at once and closed; another address is still served.
    const t0 = Date.now();
    const attacker = Array.from({ length: 12 }, () => openIdle(server.port, '127.0.0.2'));
    sockets.push(...attacker);
    await Promise.all(attacker.map((s) => s.ready));
    for (let i = 0; i < 100 && attacker.filter((s) => s.closed).length < 8; ++i) await sleep(20);
    const refused = attacker.filter((s) => s.closed);
    eq(refused.length, 8, 'connections over the per-client limit (4 of 12 kept) are closed');
    check(refused.every((s) => s.data.startsWith('HTTP/1.1 429') && /retry-after: 1/i.test(s.data)),
          'each refused one was answered 429 with Retry-After first');
    check(refused.every((s) => s.closedAt - t0 < 1500),
          'refused at once, before the first-byte deadline');
    const body = JSON.parse(refused[0].data.slice(refused[0].data.indexOf('\r\n\r\n') + 4));
    eq(body.error?.code, 'rate_limit_exceeded', '429 body is an OpenAI error');
    check(/127\.0\.0\.2/.test(body.error?.message), `message names the client: ${body.error?.message}`);
    eq(statusOf(await health(server.port, '127.0.0.3')), 200, 'another client gets 200 on /health');

    // Many attacker addresses together pass the global limit (16): a new connection is
    // answered 503 at once rather than queued or hung.
    for (const ip of ['127.0.0.4', '127.0.0.5', '127.0.0.6']) {
      const more = Array.from({ length: 4 }, () => openIdle(server.port, ip));
      sockets.push(...more);
      await Promise.all(more.map((s) => s.ready));
    }
    await sleep(100);
    const t1 = Date.now();
    const full = await health(server.port, '127.0.0.9');
    const fullMs = Date.now() - t1;
    eq(statusOf(full), 503, 'over the global limit: 503');
    check(fullMs < 1000, `answered at once (${fullMs} ms)`);
    check(/retry-after: 1/i.test(full) && /server_overloaded/.test(full),
          '503 carries Retry-After and code server_overloaded');

    // Never-sending connections are closed after the first-byte deadline, and the server
    // is open to everyone again.
    const idle = sockets.filter((s) => !s.closed);
    const t2 = Date.now();
    await Promise.race([Promise.all(idle.map((s) => s.closedPromise)), sleep(6000)]);
    check(idle.every((s) => s.closed), `all ${idle.length} idle connections closed by the server`);
    const waited = Math.max(...idle.map((s) => s.closedAt)) - t2;
    check(waited < 4000, `within the first-byte deadline (1.5 s) plus slack: ${waited} ms`);
    check(idle.every((s) => s.data === ''), 'closed silently (no response to a request never sent)');
    eq(statusOf(await health(server.port, '127.0.0.9')), 200, 'served again after the idle ones went');
    closeAll();

    // An idle keep-alive connection between requests keeps the idle timeout, not the
    // first-byte deadline.
    const ka = await new Promise((resolve) => {
      const sock = net.connect({ host: '127.0.0.1', port: server.port, localAddress: '127.0.0.7' });
      let data = '';
      let step = 0;
      sock.on('error', () => {});
      sock.on('connect', () => sock.write('GET /health HTTP/1.1\r\nHost: x\r\n\r\n'));
      sock.on('data', async (d) => {
        data += d.toString();
        if (step === 0 && data.includes('"status"')) {
          step = 1;
          await sleep(2500);  // longer than the first-byte deadline
          data = '';
          sock.write('GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
        }
      });
      sock.on('close', () => resolve({ step, data }));
      setTimeout(() => sock.destroy(), 8000);
    });
    check(ka.step === 1 && statusOf(ka.data) === 200,
          'a keep-alive connection idle 2.5 s between requests is still served');

    const m = await metrics(server.port);
    check(metric(m, 'pocket_http_connections_refused_total', 'reason="client_limit"') >= 8,
          '/metrics counts per-client refusals');
    check(metric(m, 'pocket_http_connections_refused_total', 'reason="global_limit"') >= 1,
          '/metrics counts global refusals');
    check(metric(m, 'pocket_http_first_byte_timeouts_total') >= idle.length,
          '/metrics counts first-byte timeouts');
  } finally {
    closeAll();
    eq(await server.stop(), 0, 'server stopped');
  }
}

// --- The example: 515 idle connections, default limits -------------------------
{
  const server = await startServer(['--fake-model', 'tiny', '--quiet']);
  try {
    const flood = Array.from({ length: 515 }, () => openIdle(server.port, '127.0.0.2'));
    sockets.push(...flood);
    await Promise.all(flood.map((s) => s.ready));
    await sleep(200);
    const codes = [];
    for (let i = 0; i < 5; ++i) codes.push(statusOf(await health(server.port, '127.0.0.3')));
    eq(codes, [200, 200, 200, 200, 200], '515 idle connections from one address: others get 200');
    check(flood.filter((s) => !s.closed).length <= 64,
          `at most 64 of them held (${flood.filter((s) => !s.closed).length})`);
  } finally {
    closeAll();
    eq(await server.stop(), 0, 'server stopped');
  }
}

// --- EMFILE: a flood past the process's file descriptor limit --------------------------
// Not on the sanitizer build: UBSan's first check of each virtual call opens a pipe(), which
// fails while the process is out of descriptors and is reported as an error (its limit,
// not the server's).
if (process.env.POCKET_SANITIZED === '1') {
  console.log('# EMFILE section skipped on the sanitizer build');
} else {
  const dir = tmpDir('pocket-emfile-');
  const portFile = path.join(dir, 'port');
  const proc = spawn('prlimit', ['--nofile=64:64', pocketBin, 'serve', '--port', '0',
                                 '--port-file', portFile, '--ledger', path.join(dir, 'l.db'),
                                 '--fake-model', 'tiny', '--quiet',
                                 '--max-connections-per-client', '0', '--max-connections', '0'],
                     { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  proc.stderr.on('data', (d) => { log += d.toString(); });
  let exited = null;
  const exit = new Promise((resolve) => proc.on('exit', (code) => { exited = code; resolve(code); }));
  try {
    for (let i = 0; i < 200 && !fs.existsSync(portFile); ++i) await sleep(25);
    const port = Number(fs.readFileSync(portFile, 'utf8').trim());
    const cpu = () => {
      const f = fs.readFileSync(`/proc/${proc.pid}/stat`, 'utf8').split(') ')[1].split(' ');
      return (Number(f[11]) + Number(f[12])) / 100;  // utime + stime, in clock ticks of 1/100 s
    };
    const flood = Array.from({ length: 150 }, () => openIdle(port, '127.0.0.2'));
    sockets.push(...flood);
    await Promise.all(flood.map((s) => s.ready));
    await sleep(300);
    const c0 = cpu();
    const w0 = Date.now();
    await sleep(3000);
    const share = (cpu() - c0) / ((Date.now() - w0) / 1000);
    check(/accept failed: Too many open files/.test(log), 'the server ran out of descriptors (EMFILE)');
    check(share < 0.2, `CPU while out of descriptors: ${(share * 100).toFixed(1)} % of a core (< 20 %)`);
    const acceptLines = log.split('\n').filter((l) => /accept/.test(l)).length;
    check(acceptLines <= 3, `accept failures logged once per episode (${acceptLines} lines)`);
    closeAll();
    let ok = 0;
    for (let i = 0; i < 50 && ok !== 200; ++i) {
      ok = statusOf(await health(port, '127.0.0.3', 2000));
      if (ok !== 200) await sleep(100);
    }
    eq(ok, 200, 'serves again once the flood is gone');
    const m = await metrics(port);
    check(metric(m, 'pocket_http_accept_errors_total') >= 1, '/metrics counts accept errors');
    check(metric(m, 'pocket_http_accept_pauses_total') >= 1, '/metrics counts accept pauses');
    check(/accepting again/.test(log), 'the end of the episode is logged');
  } finally {
    closeAll();
    if (exited === null) proc.kill('SIGTERM');
    const timer = setTimeout(() => proc.kill('SIGKILL'), 5000);
    eq(await exit, 0, 'EMFILE server stopped');
    clearTimeout(timer);
  }
}

done();
