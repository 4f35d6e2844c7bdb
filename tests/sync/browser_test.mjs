// The editor page in headless Chromium (Debian's /usr/bin/chromium via playwright-core):
// two pages, and the agent peer when given, edit one room at once and converge; the
// presence list shows both people; a screenshot is saved.
// Usage: node browser_test.mjs PATH/TO/pocket SCREENSHOT.png [--agent]
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { spawn } from 'node:child_process'
import { pathToFileURL } from 'node:url'
import { main, startServer, tempDir, waitFor, nodeModules, connect, synced, close, sleep } from './lib.mjs'

const pocket = process.argv[2]
const screenshot = process.argv[3]
const withAgent = process.argv.includes('--agent')
const { chromium } = await import(pathToFileURL(path.join(nodeModules, 'playwright-core/index.mjs')).href)

main('browser_test', async () => {
  const dir = tempDir('browser')
  const profile = tempDir('chromium-profile')
  let server = null
  let browser = null
  let agent = null
  try {
    server = await startServer(pocket, ['--dir', dir])
    // A fresh profile per run (playwright passes it as --user-data-dir).
    browser = await chromium.launchPersistentContext(profile, {
      executablePath: '/usr/bin/chromium',
      headless: true,
      viewport: { width: 1000, height: 560 },
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync']
    })
    const base = `http://127.0.0.1:${server.port}/?room=shared`
    const pageErrors = []
    const open = async (name) => {
      const page = await browser.newPage()
      page.on('pageerror', (e) => pageErrors.push(`${name}: ${e.message}`))
      page.on('console', (m) => { if (m.type() === 'error') pageErrors.push(`${name}: ${m.text()}`) })
      await page.goto(`${base}&name=${name}`)
      await page.waitForFunction(() => window.pocketCollab && window.pocketCollab.provider.synced, null, { timeout: 10000 })
      return page
    }
    const alice = await open('alice')
    const bob = await open('bob')

    if (withAgent) {
      agent = spawn(pocket, ['agent', '--server', `${server.url}/shared`, '--token-delay-ms', '20',
        '--max-tokens', '24', '--seed', '1'], { stdio: ['ignore', 'inherit', 'inherit'] })
    }

    // Both type at once: alice at the start, bob at the end, interleaved keystrokes.
    await alice.click('#editor')
    await alice.keyboard.type('Notes\n')
    await alice.keyboard.press('Control+Home')
    await waitFor('bob sees the title', () => bob.evaluate(() =>
      document.getElementById('editor').value === 'Notes\n'))
    await bob.click('#editor')
    await bob.keyboard.press('Control+End')
    await Promise.all([
      alice.keyboard.type('Hello from alice. ', { delay: 15 }),
      bob.keyboard.type('Bob was here. ', { delay: 15 })
    ])
    if (withAgent) {
      // A human asks through the text: the agent replaces the line with its answer.
      await bob.keyboard.press('End')
      await bob.keyboard.type('\n/ai write a greeting\n', { delay: 10 })
      await waitFor('agent answer', () => alice.evaluate(() =>
        !window.pocketCollab.text.toString().includes('/ai ') &&
        window.pocketCollab.text.toString().length > 40), 30000)
      // And through the Ask AI button.
      await alice.fill('#prompt', 'summarise')
      await alice.click('#ask-button')
      await waitFor('Ask AI request done', () => alice.evaluate(() =>
        [...window.pocketCollab.requests.values()].some((r) => r.status === 'done')), 30000)
    }
    const value = (page) => page.evaluate(() => document.getElementById('editor').value)
    await waitFor('pages converge', async () => {
      const [a, b] = await Promise.all([value(alice), value(bob)])
      if (process.env.DEBUG) console.log(JSON.stringify([a, b]))
      return a === b && a.includes('Hello from alice. ') && a.includes('Bob was here. ')
    })
    // A node client in the same room sees the same text.
    const probe = connect(server.url, 'shared')
    await synced(probe)
    await waitFor('node client converges', async () => probe.text.toString() === await value(alice))
    close(probe)

    const people = await alice.evaluate(() => document.getElementById('people').textContent)
    assert.ok(people.includes('alice') && people.includes('bob'), `presence list: ${people}`)
    if (withAgent) {
      await waitFor('agent in presence', () => alice.evaluate(() =>
        document.getElementById('people').textContent.includes('pocket-agent')))
    }
    await sleep(100)
    fs.mkdirSync(path.dirname(screenshot), { recursive: true })
    await alice.screenshot({ path: screenshot })
    assert.deepEqual(pageErrors, [])
  } finally {
    if (agent) agent.kill('SIGTERM')
    if (browser) await browser.close()
    if (server) await server.stop()
    fs.rmSync(dir, { recursive: true, force: true })
    fs.rmSync(profile, { recursive: true, force: true })
  }
}, 110000)
