// Shared helpers for the sync end-to-end tests: start/stop `pocket collab serve`, make real
// y-websocket clients (npm yjs + y-websocket + ws from tests/node), wait with a deadline.
// The peers are imported by absolute path because these scripts live outside tests/node.
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

const here = path.dirname(fileURLToPath(import.meta.url))
export const repoRoot = path.resolve(here, '../..')
export const nodeModules = path.join(repoRoot, 'tests/node/node_modules')
const imp = (rel) => import(pathToFileURL(path.join(nodeModules, rel)).href)

// The same files Node's "import" condition picks, so y-websocket shares our Yjs instance.
export const Y = await imp('yjs/dist/yjs.mjs')
export const { WebsocketProvider } = await imp('y-websocket/src/y-websocket.js')
export const awarenessProtocol = await imp('y-protocols/awareness.js')
export const { WebSocket } = await imp('ws/wrapper.mjs')

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

export async function waitFor (what, cond, timeoutMs = 10000) {
  const deadline = Date.now() + timeoutMs
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(20)
  }
}

export function tempDir (name) {
  return fs.mkdtempSync(path.join(os.tmpdir(), `pocket-sync-${name}-`))
}

// Starts `pocket collab serve --port 0` and resolves once it printed its port. `opts.cwd`:
// the working directory of the server (default: this process's).
export async function startServer (pocket, args = [], opts = {}) {
  const child = spawn(pocket, ['collab', 'serve', '--port', '0', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'], cwd: opts.cwd
  })
  let out = ''
  let err = ''
  child.stderr.on('data', (d) => { err += d })
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('server did not start: ' + err)), 10000)
    child.stdout.on('data', (d) => {
      out += d
      const m = out.match(/listening on ws:\/\/[^:]+:(\d+)/)
      if (m) { clearTimeout(timer); resolve(Number(m[1])) }
    })
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`server exited ${code}: ${err}`)) })
  })
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })))
  return {
    port,
    url: `ws://127.0.0.1:${port}`,
    child,
    stderr: () => err,
    exited,
    async stop (signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal)
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
      const r = await exited
      clearTimeout(timer)
      return r
    }
  }
}

export function connect (url, room, opts = {}) {
  const doc = opts.doc || new Y.Doc()
  const provider = new WebsocketProvider(url, room, doc, {
    WebSocketPolyfill: WebSocket,
    disableBc: true,
    maxBackoffTime: 200,
    ...opts.provider
  })
  return { doc, provider, text: doc.getText('content') }
}

export async function synced (client, timeoutMs = 10000) {
  await waitFor('sync', () => client.provider.synced, timeoutMs)
}

export function close (...clients) {
  for (const c of clients) { c.provider.destroy(); c.doc.destroy() }
}

// Runs `fn` with a hard deadline so a stuck test fails instead of hanging CTest.
export async function main (name, fn, timeoutMs = 60000) {
  const timer = setTimeout(() => { console.error(`${name}: FAILED: overall timeout`); process.exit(1) }, timeoutMs)
  try {
    await fn()
    console.log(`${name}: ok`)
    clearTimeout(timer)
    process.exit(0)
  } catch (e) {
    console.error(`${name}: FAILED:`, e)
    process.exit(1)
  }
}
