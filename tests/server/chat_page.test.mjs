// The chat page `pocket serve` answers at GET / (web/chat), in headless Chromium (Debian's
// /usr/bin/chromium through playwright-core from tests/node): it lists the server's models,
// streams a reply from the embedded default model (models/default.gguf, random weights),
// shows tokens as they arrive, stops a long generation with the Stop button (and the server
// cancels it: pocket_cancelled_requests_total{stage="generating"}), and shows the API's
// error message. A fake model with a per-token delay ("slow") makes the long generation.
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { repo, startServer, tmpDir, check, eq, done } from './lib.mjs';
import fs from 'node:fs';

const { chromium } = await import(
  pathToFileURL(path.join(repo, 'tests/node/node_modules/playwright-core/index.mjs')).href);

const server = await startServer(['--model', path.join(repo, 'models/default.gguf'),
  '--fake-model', 'slow', '--fake-delay-ms', '20', '--fake-context', '100000', '--quiet']);
const profile = tmpDir('pocket-chat-chromium-');
let browser = null;

async function cancelledGenerating() {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  const m = text.match(/^pocket_cancelled_requests_total\{stage="generating"\} (\d+)/m);
  return m ? Number(m[1]) : 0;
}

async function waitFor(what, cond, timeoutMs = 20000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

try {
  // The page's files, with their content types.
  for (const [file, type] of [['/', 'text/html'], ['/chat.js', 'text/javascript'],
                              ['/chat.css', 'text/css']]) {
    const r = await fetch(`${server.url}${file}`);
    check(r.status === 200 && r.headers.get('content-type').startsWith(type),
          `GET ${file} -> ${r.status} ${r.headers.get('content-type')}`);
  }

  browser = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const page = await browser.newPage();
  const problems = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('requestfailed', (r) => {
    // The aborted stream is the one request meant to fail.
    if (!r.url().endsWith('/v1/chat/completions')) problems.push(`failed ${r.url()}`);
  });
  page.on('response', (r) => {
    if (r.status() >= 400 && !r.url().endsWith('/v1/chat/completions'))
      problems.push(`${r.status()} ${r.url()}`);
  });
  await page.goto(`${server.url}/`);

  // The picker lists what /v1/models lists.
  await waitFor('models in the picker', () => page.evaluate(() =>
    [...document.querySelectorAll('#model option')].length >= 3));
  const options = await page.evaluate(() =>
    [...document.querySelectorAll('#model option')].map((o) => o.value));
  eq(options, ['slow', 'default', 'auto'], 'the picker lists the server\'s models');
  await page.click('#settings summary');

  // Sends `text` to `model`; every text the reply shows is recorded in window.seen.
  const send = async (model, maxTokens, text) => {
    await page.selectOption('#model', model);
    await page.fill('#max-tokens', String(maxTokens));
    await page.dispatchEvent('#max-tokens', 'change');
    await page.evaluate(() => {
      window.seen = [];
      new MutationObserver(() => {
        const replies = document.querySelectorAll('.msg.assistant');
        const last = replies[replies.length - 1];
        if (last && window.seen[window.seen.length - 1] !== last.textContent)
          window.seen.push(last.textContent);
      }).observe(document.getElementById('log'), { childList: true, subtree: true, characterData: true });
    });
    await page.fill('#input', text);
    await page.press('#input', 'Enter');
  };
  const idle = () => page.evaluate(() => document.body.dataset.state === 'idle');
  const lastReply = () => page.evaluate(() => {
    const r = document.querySelectorAll('.msg.assistant');
    return r.length ? r[r.length - 1].textContent : '';
  });

  await send('default', 24, 'Once upon a time');
  await waitFor('the default model\'s reply', idle);
  const reply = await lastReply();
  check(reply.length > 0, `the default model replied (${JSON.stringify(reply.slice(0, 60))})`);
  check(await page.evaluate(() => document.getElementById('error').hidden), 'no error shown');

  // Stop: a 5000-token generation at 20 ms a token, stopped once some text is shown.
  const before = await cancelledGenerating();
  await send('slow', 5000, 'Tell me a long story');
  await waitFor('the slow reply streams', async () => (await lastReply()).length > 20);
  // 20 ms between tokens: the page shows the reply growing, not all at once.
  const seen = await page.evaluate(() => window.seen.length);
  check(seen >= 3, `the reply grew token by token (${seen} texts shown)`);
  check(await page.evaluate(() => !document.getElementById('stop').disabled), 'Stop is enabled while streaming');
  await page.click('#stop');
  await waitFor('the page is idle after Stop', idle, 5000);
  const stopped = await lastReply();
  check(stopped.endsWith('stopped'), `the reply says it was stopped (${JSON.stringify(stopped.slice(-40))})`);
  await waitFor('the server cancels the generation', async () => (await cancelledGenerating()) > before, 10000);
  check(true, 'the server counted the generation as cancelled');
  check(stopped.length < 5000, 'the generation did not run to its end');

  // A failed request shows the API's own message.
  await page.evaluate(() => document.getElementById('model').add(new Option('missing-model', 'missing-model')));
  await send('missing-model', 8, 'hello');
  await waitFor('the error is shown', () => page.evaluate(() => !document.getElementById('error').hidden));
  const error = await page.evaluate(() => document.getElementById('error').textContent);
  check(error.includes("404: model 'missing-model' does not exist"), `error shown: ${error}`);
  eq(await page.inputValue('#input'), 'hello', 'the failed message is back in the box to retry');

  eq(problems, [], 'no page errors or failed page requests');
} finally {
  if (browser) await browser.close();
  check(await server.stop() === 0, 'server stops cleanly');
  fs.rmSync(profile, { recursive: true, force: true });
}
done();
