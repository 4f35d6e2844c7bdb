// The router's https:// remote path end to end, no mocks: a throwaway CA and server
// certificates are made with the openssl CLI (test_pki.mjs); a real TLS endpoint
// (tls_proxy.mjs, node's TLS server) terminates TLS in front of the fault proxy, which
// logs what got through, in front of the "cloud" `pocket serve --fake-model big`.
//   router --https--> tls_proxy --http--> fault_proxy --http--> cloud
// Checks: (a) an https remote call succeeds, answered by the cloud, with SNI and TLS 1.2+
// (by host name and by IP literal, ca_file or SSL_CERT_FILE); (b) a CA the router does not
// trust makes the call fail verification and fall back locally, the reason in
// x-pocket-route and the log; (c) a certificate for another host name / address is
// refused the same way; (d) private requests never reach the TLS endpoint; a remote
// behind TLS that stalls, drops the connection or answers 500 falls back like a plain one;
// a bad ca_file stops start-up naming it.
import fs from 'node:fs';
import path from 'node:path';
import { askChat, loadOpenAI, startServer, check, eq, done, sleep, tmpDir } from './lib.mjs';
import { startFaultProxy } from './fault_proxy.mjs';
import { startTlsProxy } from './tls_proxy.mjs';
import { makeCa } from './test_pki.mjs';

// The untrusted-CA case must see only the system's trust store.
delete process.env.SSL_CERT_FILE;
delete process.env.SSL_CERT_DIR;

const OpenAI = loadOpenAI();
const dir = tmpDir('pocket-router-https-');
const ca = makeCa(dir, 'ca');
const good = ca.sign('good', ['DNS:localhost', 'IP:127.0.0.1']);
const wrong = ca.sign('wrong', ['DNS:other.invalid', 'IP:192.0.2.1']);

const cloud = await startServer(['--fake-model', 'big', '--quiet']);
const proxy = await startFaultProxy(cloud.url);
const tlsGood = await startTlsProxy(proxy.url, { key: good.key, cert: good.cert });
const tlsWrong = await startTlsProxy(proxy.url, { key: wrong.key, cert: wrong.cert });
// Offers TLS 1.0-1.1 only (SECLEVEL=0 lets node's OpenSSL 3 speak them at all).
const tlsOld = await startTlsProxy(proxy.url, { key: good.key, cert: good.cert, minVersion: 'TLSv1',
                                               maxVersion: 'TLSv1.1', ciphers: 'DEFAULT@SECLEVEL=0' });

function backend(name, url, caFile) {
  return `[backends.${name}]
kind = "openai"
base_url = "${url}"
api_key = "sk-test-remote-key"
model = "big"
price_input_per_1k = 1.0
price_output_per_1k = 1.0
context_length = 4096
timeout_ms = 1500
${caFile ? `ca_file = "${caFile}"` : ''}
`;
}

function writePolicy(name, backends) {
  const file = path.join(dir, `${name}.toml`);
  fs.writeFileSync(file, `default_area = "chat"
ledger = "${path.join(dir, `${name}.db`)}"
[backends.local]
kind = "local"
${backends.map((b) => backend(...b)).join('\n')}
[areas.chat]
backends = ["local", ${backends.map((b) => `"${b[0]}"`).join(', ')}]
[privacy]
mode = "local"
[privacy.patterns]
project = "PROJECT-ZEUS"
`);
  return file;
}

const policy = writePolicy('main', [
  ['cloud', `https://localhost:${tlsGood.port}/v1`, ca.caFile],
  ['cloud_ip', `https://127.0.0.1:${tlsGood.port}/v1`, ca.caFile],
  ['untrusted', `https://localhost:${tlsGood.port}/v1`, null],
  ['wrong_host', `https://localhost:${tlsWrong.port}/v1`, ca.caFile],
  ['wrong_ip', `https://127.0.0.1:${tlsWrong.port}/v1`, ca.caFile],
]);
const local = await startServer(['--fake-model', 'tiny', '--policy', policy]);
const client = new OpenAI({ baseURL: `${local.url}/v1`, apiKey: 'unused', maxRetries: 0 });
let extra = null;
const eq1 = (list, x) => list.length === 1 && list[0] === x;
// The TLS endpoint learns of a refused handshake from the client's alert, which node may
// report after the router's answer has already arrived: wait for it (bounded).
async function until(cond) {
  for (let i = 0; i < 100 && !cond(); ++i) await sleep(20);
  return cond();
}

const ask = (content, { via = client, ...opts } = {}) => askChat(via, content, opts);

try {
  // (a) Remote over https by host name: the cloud answers, SNI names the host, TLS >= 1.2.
  const r1 = await ask('Explain entropy.', { headers: { 'x-pocket-quality': 'high' } });
  check(r1.route === 'remote=cloud; reason=quality', `quality high over https -> ${r1.route}`);
  eq(r1.model, 'big', 'the answer came from the cloud model');
  check(proxy.log().length === 1 && proxy.log()[0].headers.authorization === 'Bearer sk-test-remote-key',
        'one request got through TLS, with the bearer key');
  const hs = tlsGood.handshakes();
  check(hs.length === 1 && hs[0].servername === 'localhost', `SNI sent: ${JSON.stringify(hs)}`);
  check(['TLSv1.2', 'TLSv1.3'].includes(hs[0]?.protocol), `TLS 1.2+ (${hs[0]?.protocol})`);

  // A stream is passed through over https as well; an IP literal verifies against the IP
  // SAN, no SNI.
  const r2 = await ask('Hi', { model: 'cloud', stream: true });
  check(r2.route?.startsWith('remote=cloud') && r2.text.length > 0, `streamed over https -> ${r2.route}`);
  const r3 = await ask('Hi', { model: 'cloud_ip' });
  check(r3.route?.startsWith('remote=cloud_ip') && r3.model === 'big', `https://127.0.0.1 -> ${r3.route}`);
  check(tlsGood.handshakes().at(-1)?.servername === null, 'no SNI for an IP literal');

  // (b) A CA the router does not trust (no ca_file: the system store) fails verification.
  let seen = proxy.log().length;
  let failed = tlsGood.failures().length;
  const r4 = await ask('Explain gravity.', { model: 'untrusted' });
  check(r4.route === 'local; reason=fallback; remote=untrusted; error=tls_verify' && r4.text.length > 0,
        `untrusted CA falls back locally -> ${r4.route}`);
  check(proxy.log().length === seen, 'no request got through the refused handshake');
  check(await until(() => tlsGood.failures().length === failed + 1),
        `the TLS endpoint saw the refusal (${tlsGood.failures().at(-1)})`);
  check(local.log().includes(`tls_verify: POST https://localhost:${tlsGood.port}/v1/chat/completions: ` +
                             'certificate refused: unable to get local issuer certificate'),
        'the log names the URL and the reason');

  // (c) A trusted CA but a certificate for another host name / address: refused.
  seen = proxy.log().length;
  failed = tlsWrong.failures().length;
  const r5 = await ask('Explain gravity.', { model: 'wrong_host' });
  check(r5.route === 'local; reason=fallback; remote=wrong_host; error=tls_verify', `wrong host name -> ${r5.route}`);
  check(local.log().includes('certificate refused: hostname mismatch'), 'log: hostname mismatch');
  const r6 = await ask('Explain gravity.', { model: 'wrong_ip' });
  check(r6.route === 'local; reason=fallback; remote=wrong_ip; error=tls_verify', `wrong address -> ${r6.route}`);
  check(local.log().includes('certificate refused: IP address mismatch'), 'log: IP address mismatch');
  check(await until(() => tlsWrong.failures().length === failed + 2) &&
        proxy.log().length === seen && tlsWrong.handshakes().length === 0,
        'nothing got through the wrong-host endpoint');

  // (d) Private requests never reach the TLS endpoint, whatever else they ask for.
  const handshakesBefore = tlsGood.handshakes().length + tlsWrong.handshakes().length;
  const failuresBefore = tlsGood.failures().length + tlsWrong.failures().length;
  seen = proxy.log().length;
  const privateCases = [
    ['header', 'SECRET-MARKER-1', { headers: { 'x-pocket-privacy': 'private', 'x-pocket-quality': 'high' } }],
    ['body', 'SECRET-MARKER-2', { pocket: { privacy: 'private', quality: 'high' } }],
    ['pinned+private', 'SECRET-MARKER-3', { model: 'cloud', headers: { 'x-pocket-privacy': 'private' } }],
    ['email', 'SECRET-MARKER-4 jane.doe@example.com', { pocket: { quality: 'high' } }],
    ['api key', 'SECRET-MARKER-5 sk-abcdefghijklmnopqrstuv', { model: 'cloud_ip' }],
    ['custom', 'SECRET-MARKER-6 PROJECT-ZEUS', { pocket: { quality: 'high' } }],
    ['stream', 'SECRET-MARKER-7', { stream: true, headers: { 'x-pocket-privacy': 'private', 'x-pocket-quality': 'high' } }],
  ];
  for (const [name, text, opts] of privateCases) {
    const r = await ask(text, opts);
    check(r.route?.startsWith('local'), `${name} stays local: ${r.route}`);
  }
  check(tlsGood.handshakes().length + tlsWrong.handshakes().length === handshakesBefore &&
        tlsGood.failures().length + tlsWrong.failures().length === failuresBefore,
        'no TLS connection was opened for a private request');
  check(proxy.log().length === seen && !proxy.log().some((e) => e.body.includes('SECRET-MARKER')),
        'no private text got through');

  // The plain path's failure handling holds behind TLS: a stalled remote is a timeout (one
  // deadline), a connection dropped mid-request (no close_notify) a reset, a 500 a 500.
  for (const [mode, want] of [['delay', 'timeout'], ['reset', 'reset'], ['error500', 'http_500']]) {
    await proxy.set({ mode, delay_ms: 3000 });
    const r = await ask('Explain gravity.', { model: 'cloud' });
    check(r.route === `local; reason=fallback; remote=cloud; error=${want}` && r.text.length > 0,
          `${mode} behind https -> ${r.route}`);
  }
  await proxy.set({ mode: 'pass' });

  // SSL_CERT_FILE replaces the system store for backends without ca_file (OpenSSL's own
  // variable, honoured through the default verify paths).
  const envPolicy = writePolicy('env', [['cloud', `https://localhost:${tlsGood.port}/v1`, null]]);
  extra = await startServer(['--fake-model', 'tiny', '--policy', envPolicy, '--quiet'],
                            { env: { SSL_CERT_FILE: ca.caFile } });
  const r8 = await ask('Hi', { model: 'cloud',
                               via: new OpenAI({ baseURL: `${extra.url}/v1`, apiKey: 'unused', maxRetries: 0 }) });
  check(r8.route?.startsWith('remote=cloud') && r8.model === 'big', `SSL_CERT_FILE trusts the CA -> ${r8.route}`);
  await extra.stop();
  extra = null;

  // TLS 1.2 is the floor, set by the client itself: with OPENSSL_CONF=/dev/null the
  // system's openssl.cnf (Debian: MinProtocol = TLSv1.2) is not read, so only Pocket's own
  // minimum keeps TLS 1.0/1.1 out of the ClientHello; the endpoint then finds no common
  // version (ERR_SSL_UNSUPPORTED_PROTOCOL; without the floor it would get as far as
  // OpenSSL's refusal of TLS 1.1's legacy signature, an internal_error alert).
  const oldPolicy = writePolicy('old', [['cloud', `https://localhost:${tlsOld.port}/v1`, ca.caFile]]);
  extra = await startServer(['--fake-model', 'tiny', '--policy', oldPolicy],
                            { env: { OPENSSL_CONF: '/dev/null' } });
  const r9 = await ask('Hi', { model: 'cloud',
                               via: new OpenAI({ baseURL: `${extra.url}/v1`, apiKey: 'unused', maxRetries: 0 }) });
  check(r9.route === 'local; reason=fallback; remote=cloud; error=tls', `TLS 1.1 endpoint refused -> ${r9.route}`);
  check(extra.log().includes('TLS handshake failed: tlsv1 alert protocol version') &&
        await until(() => tlsOld.failures().length > 0) && tlsOld.handshakes().length === 0 &&
        eq1(tlsOld.failures(), 'ERR_SSL_UNSUPPORTED_PROTOCOL'),
        `TLS 1.0/1.1 never offered (${tlsOld.failures().join(', ')})`);
  await extra.stop();
  extra = null;

  // A ca_file that does not load stops start-up with one line naming the backend and file.
  const badPolicy = writePolicy('bad', [['cloud', `https://localhost:${tlsGood.port}/v1`,
                                         path.join(dir, 'missing-ca.pem')]]);
  let startError = '';
  try {
    extra = await startServer(['--fake-model', 'tiny', '--policy', badPolicy, '--quiet']);
  } catch (e) {
    startError = e.message;
  }
  check(startError.includes("backend 'cloud'") && startError.includes('missing-ca.pem'),
        `bad ca_file refused at start: ${startError.trim().split('\n').at(-1)}`);
} finally {
  if (extra) await extra.stop();
  await local.stop();
  await tlsGood.close();
  await tlsWrong.close();
  await tlsOld.close();
  await proxy.close();
  await cloud.stop();
}
done();
