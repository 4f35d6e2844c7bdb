// Shared helpers for the cross-language tests: a client for the crdt_peer line protocol,
// hex helpers, a seeded PRNG, and Yjs imported as an ES module straight from the pinned
// tests/node/node_modules (ESM ignores NODE_PATH, so the path is relative to this file).
import { spawn } from 'node:child_process'
import readline from 'node:readline'
import * as Y from '../node/node_modules/yjs/dist/yjs.mjs'

export { Y }

export const toHex = (u8) => u8.length ? Buffer.from(u8).toString('hex') : '-'
export const fromHex = (h) => h === '-' ? new Uint8Array() : new Uint8Array(Buffer.from(h, 'hex'))

export class CppPeer {
  constructor (bin) {
    this.proc = spawn(bin, [], { stdio: ['pipe', 'pipe', 'inherit'] })
    this.waiting = []
    readline.createInterface({ input: this.proc.stdout }).on('line', (l) => this.waiting.shift()(l))
  }

  cmd (line) {
    return new Promise((resolve) => { this.waiting.push(resolve); this.proc.stdin.write(line + '\n') })
  }

  async ok (line) {
    const r = await this.cmd(line)
    if (r !== 'ok') throw new Error(`crdt_peer: '${line.slice(0, 80)}' -> ${r}`)
  }

  async dump (id) { return JSON.parse(await this.cmd(`dump ${id}`)) }
  async take (id) {
    const r = (await this.cmd(`take ${id}`)).split(' ').slice(1)
    return r.map(fromHex)
  }

  close () { this.proc.stdin.write('quit\n'); this.proc.stdin.end() }
}

// mulberry32
export const rng = (seed) => () => {
  seed |= 0; seed = seed + 0x6D2B79F5 | 0
  let t = Math.imul(seed ^ seed >>> 15, 1 | seed)
  t = t + Math.imul(t ^ t >>> 7, 61 | t) ^ t
  return ((t ^ t >>> 14) >>> 0) / 4294967296
}

export const yjsView = (doc) => ({
  text: doc.getText('content').toString(),
  delta: doc.getText('content').toDelta(),
  map: doc.getMap('m').toJSON(),
  array: doc.getArray('a').toJSON(),
  pending: doc.store.pendingStructs !== null || doc.store.pendingDs !== null
})

// JSON with object keys sorted (C++ maps are ordered, JS objects keep insertion order);
// a bigint (lib0 writes int64 as one) as its decimal digits and 'n', exactly.
export const canon = (v) => JSON.stringify(v, (k, x) => typeof x === 'bigint' ? `${x}n`
  : (x && typeof x === 'object' && !Array.isArray(x))
    ? Object.fromEntries(Object.keys(x).sort().map(key => [key, x[key]])) : x)

export const assertEq = (a, b, what) => {
  const sa = canon(a); const sb = canon(b)
  if (sa !== sb) {
    console.error(`MISMATCH ${what}\n  got:      ${sa.slice(0, 2000)}\n  expected: ${sb.slice(0, 2000)}`)
    process.exit(1)
  }
}
