// The editor page works from the build's (or an install's) assets alone, and a server
// without them refuses to start. An install is laid out in a temporary prefix: bin/pocket
// (a copy of the built binary) and share/pocket/web/collab (a copy of the build's page
// folder, vendor/ included); the server runs from a temporary working directory, so no
// node_modules is reachable from it. Checks, in headless Chromium (Debian's
// /usr/bin/chromium through playwright-core):
//   * every module the page imports, transitively, is in the page folder (vendor.txt is
//     closed under imports);
//   * the page loads with no failed request and reaches "synced", and an edit syncs both
//     ways with a real Yjs client (npm yjs + y-websocket); with a module missing, the page
//     says its scripts failed to load;
//   * without vendor/, or without the page folder, `pocket collab serve` exits non-zero at
//     once with one line naming the missing folder and how to get it; --no-page serves
//     rooms only.
// Usage: node page_assets_test.mjs PATH/TO/pocket
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { spawn } from 'node:child_process'
import { pathToFileURL } from 'node:url'
import { main, startServer, tempDir, waitFor, nodeModules, connect, synced, close } from './lib.mjs'

const built = process.argv[2]
const builtPage = path.join(path.dirname(built), 'share/pocket/web/collab')
const { chromium } = await import(pathToFileURL(path.join(nodeModules, 'playwright-core/index.mjs')).href)

// The files the page's modules import, following the import map and relative imports.
function importClosure (pageDir) {
  const html = fs.readFileSync(path.join(pageDir, 'index.html'), 'utf8')
  const map = JSON.parse(html.match(/<script type="importmap">([\s\S]*?)<\/script>/)[1]).imports
  const seen = new Set()
  const todo = ['/app.js']
  while (todo.length) {
    const url = todo.pop()
    if (seen.has(url)) continue
    seen.add(url)
    const file = path.join(pageDir, url)
    assert.ok(fs.existsSync(file), `${url} is imported but missing from ${pageDir}`)
    const source = fs.readFileSync(file, 'utf8')
    for (const m of source.matchAll(/^(?:import|export)\s[^;]*?from\s*['"]([^'"]+)['"]|^import\s+['"]([^'"]+)['"]/gm)) {
      const spec = m[1] || m[2]
      if (spec.startsWith('.')) {
        todo.push(path.posix.resolve(path.posix.dirname(url), spec))
      } else {
        assert.ok(map[spec], `'${spec}' (imported by ${url}) is not in the import map`)
        todo.push(map[spec])
      }
    }
  }
  return seen
}

// Runs the binary and resolves with its exit code and output (it must exit by itself).
function runToExit (bin, args, cwd) {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    child.stdout.on('data', (d) => { out += d })
    child.stderr.on('data', (d) => { err += d })
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`${args.join(' ')} did not exit: ${out}${err}`)) }, 10000)
    child.on('exit', (code) => { clearTimeout(timer); resolve({ code, out, err }) })
  })
}

main('page_assets_test', async () => {
  const prefix = tempDir('prefix')
  const cwd = tempDir('cwd')
  const profile = tempDir('chromium-profile')
  const bin = path.join(prefix, 'bin/pocket')
  const page = path.join(prefix, 'share/pocket/web/collab')
  let server = null
  let browser = null
  try {
    fs.mkdirSync(path.dirname(bin), { recursive: true })
    fs.copyFileSync(built, bin)
    fs.chmodSync(bin, 0o755)
    fs.cpSync(builtPage, page, { recursive: true })

    const closure = importClosure(page)
    assert.ok(closure.has('/vendor/yjs/dist/yjs.mjs') && closure.size > 20, `closure: ${[...closure]}`)

    server = await startServer(bin, ['--memory'], { cwd })
    browser = await chromium.launchPersistentContext(profile, {
      executablePath: '/usr/bin/chromium',
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync']
    })
    const tab = await browser.newPage()
    const problems = []
    tab.on('pageerror', (e) => problems.push(`page error: ${e.message}`))
    tab.on('console', (m) => { if (m.type() === 'error') problems.push(`console: ${m.text()}`) })
    tab.on('response', (r) => { if (r.status() >= 400) problems.push(`${r.status()} ${r.url()}`) })
    tab.on('requestfailed', (r) => problems.push(`failed ${r.url()}`))
    await tab.goto(`http://127.0.0.1:${server.port}/?room=assets&name=tester`)
    await waitFor('the page says synced', () => tab.evaluate(() =>
      document.getElementById('status').textContent === 'synced'))

    const peer = connect(server.url, 'assets')
    await synced(peer)
    await tab.click('#editor')
    await tab.keyboard.type('typed in the page')
    await waitFor('the Yjs client sees the page\'s edit', () => peer.text.toString() === 'typed in the page')
    peer.text.insert(0, '> ')
    await waitFor('the page sees the Yjs client\'s edit', () => tab.evaluate(() =>
      document.getElementById('editor').value === '> typed in the page'))
    close(peer)
    assert.deepEqual(problems, [])

    // A module that fails to load is said on the page, not left at "connecting…".
    fs.rmSync(path.join(page, 'vendor/lib0/time.js'))
    const broken = await browser.newPage()
    await broken.goto(`http://127.0.0.1:${server.port}/?room=assets`)
    await waitFor('the page says its scripts failed', () => broken.evaluate(() =>
      document.getElementById('status').textContent.includes('failed to load')))
    await browser.close()
    browser = null
    await server.stop()
    server = null

    // Without the modules: refused at start, one line naming the folder and the remedy.
    fs.rmSync(path.join(page, 'vendor'), { recursive: true })
    let r = await runToExit(bin, ['collab', 'serve', '--port', '0', '--memory'], cwd)
    assert.notEqual(r.code, 0)
    assert.equal(r.out, '')
    assert.equal(r.err.trim().split('\n').length, 1, r.err)
    assert.ok(r.err.includes(`${page}/vendor/yjs/dist/yjs.mjs`), r.err)
    assert.ok(r.err.includes('scripts/deps.sh --with-node') && r.err.includes('--no-page'), r.err)

    // Without the page folder: the same, naming where it was looked for.
    fs.rmSync(page, { recursive: true })
    r = await runToExit(bin, ['collab', 'serve', '--port', '0', '--memory'], cwd)
    assert.notEqual(r.code, 0)
    assert.equal(r.err.trim().split('\n').length, 1, r.err)
    assert.ok(r.err.includes(page) && r.err.includes('--web DIR') && r.err.includes('--no-page'), r.err)

    // --no-page: rooms only; GET / is a 404.
    server = await startServer(bin, ['--memory', '--no-page'], { cwd })
    const res = await fetch(`http://127.0.0.1:${server.port}/`)
    assert.equal(res.status, 404)
    const rooms = connect(server.url, 'assets')
    await synced(rooms)
    close(rooms)
  } finally {
    if (browser) await browser.close()
    if (server) await server.stop()
    for (const dir of [prefix, cwd, profile]) fs.rmSync(dir, { recursive: true, force: true })
  }
}, 100000)
