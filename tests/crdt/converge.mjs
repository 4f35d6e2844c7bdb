// Randomized convergence: N clients, half C++ (crdt_peer) and half real Yjs, make random
// text inserts/deletes (ASCII, BMP and astral characters, indices that may split a
// surrogate pair), formatting, map sets and array edits. Updates are delivered to every
// other client in random order with random duplication, partly while edits continue.
// At the end every client, a fresh Yjs doc fed all updates in creation order, and Yjs
// loading each C++ client's full state must agree exactly; nothing may stay pending.
//   node converge.mjs PATH/TO/crdt_peer [seeds=40] [clients=4] [rounds=25]
import { CppPeer, Y, toHex, fromHex, rng, yjsView, assertEq } from './peer.mjs'

const [bin, seedsArg, clientsArg, roundsArg] = process.argv.slice(2)
const SEEDS = +(seedsArg || 25); const N = +(clientsArg || 4); const ROUNDS = +(roundsArg || 25)
const peer = new CppPeer(bin)
// Formatting marks are compared by text, map and array only: Yjs's own replicas disagree on
// marks after concurrent formatting, because each runs cleanupYTextAfterTransaction on
// what it happened to receive. fixtures_check.mjs checks marks deterministically.
const strip = ({ length, delta, ...rest }) => rest
const alphabet = ['a', 'b', 'c', ' ', 'é', '中', '😀', '𝄞', 'x', 'y']

for (let seed = 1; seed <= SEEDS; seed++) {
  const rand = rng(seed)
  const pick = (arr) => arr[Math.floor(rand() * arr.length)]
  const int = (n) => Math.floor(rand() * n)
  const gc = seed % 3 === 0 ? 0 : 1
  const clients = []
  const ids = new Set()
  for (let i = 0; i < N; i++) {
    let cid; do { cid = seed % 2 ? int(8) + 1 : (int(2 ** 32) >>> 0) } while (ids.has(cid))
    ids.add(cid)
    const c = { cpp: i % 2 === 0, cid, inbox: [], id: `s${seed}c${i}` }
    if (c.cpp) {
      await peer.ok(`new ${c.id} ${cid} ${gc}`)
    } else {
      c.doc = new Y.Doc({ gc: gc === 1 }); c.doc.clientID = cid
      c.out = []
      // Like y-websocket, Yjs clients relay every update, including the formatting cleanup
      // (cleanupYTextAfterTransaction) that Yjs runs inside remote transactions.
      c.doc.on('update', (u) => { c.out.push(u) })
    }
    clients.push(c)
  }
  const all = []

  const view = async (c) => strip(c.cpp ? await peer.dump(c.id) : yjsView(c.doc))
  const deliver = async (c, k) => {
    for (let j = 0; j < k && c.inbox.length; j++) {
      const u = c.inbox.splice(int(c.inbox.length), 1)[0]
      if (rand() < 0.15) c.inbox.push(u)  // duplicate delivery later
      if (c.cpp) await peer.ok(`apply ${c.id} ${toHex(u)}`)
      else Y.applyUpdate(c.doc, u, 'remote')
    }
    if (c.cpp) await peer.take(c.id)  // drop re-emitted remote updates
  }
  for (let round = 0; round < ROUNDS; round++) {
    for (const c of clients) {
      const ops = 1 + int(3)
      for (let o = 0; o < ops; o++) {
        // Yjs itself diverges when concurrent edits split a surrogate pair (each replica
        // that splits writes U+FFFD; yjs#248), so indices stay on character boundaries
        // here; splitting is checked deterministically in fixtures_check.mjs.
        const str = c.cpp ? (await peer.dump(c.id)).text : c.doc.getText('content').toString()
        const len = str.length
        const safe = (i) => (i > 0 && i < len && (str.charCodeAt(i - 1) & 0xfc00) === 0xd800) ? i - 1 : i
        const endOf = (at, k) => {
          const e = safe(Math.min(len, at + k))
          return e > at ? e : Math.min(len, at + ((str.charCodeAt(at) & 0xfc00) === 0xd800 ? 2 : 1))
        }
        const r = rand()
        let s = ''; for (let k = 1 + int(4); k > 0; k--) s += pick(alphabet)
        const idx = safe(int(len + 1))
        if (r < 0.5 || len === 0) {
          const attrs = rand() < 0.1 ? { bold: true } : null
          if (c.cpp) await peer.ok(attrs ? `insf ${c.id} ${idx} ${toHex(Buffer.from(s))} ${JSON.stringify(attrs)}` : `ins ${c.id} ${idx} ${toHex(Buffer.from(s))}`)
          else if (attrs) c.doc.getText('content').insert(idx, s, attrs)
          else c.doc.getText('content').insert(idx, s)
        } else if (r < 0.8) {
          const at = safe(Math.min(idx, len - 1))
          const n = endOf(at, 1 + int(5)) - at
          if (c.cpp) await peer.ok(`del ${c.id} ${at} ${n}`)
          else c.doc.getText('content').delete(at, n)
        } else if (r < 0.85) {
          const n = Math.max(1, endOf(idx, 1 + int(4)) - idx); const attrs = rand() < 0.5 ? { italic: true } : { italic: null }
          if (c.cpp) await peer.ok(`fmt ${c.id} ${idx} ${n} ${JSON.stringify(attrs)}`)
          else c.doc.getText('content').format(idx, n, attrs)
        } else if (r < 0.93) {
          const key = pick(['q', 'r', 'status']); const v = pick([1, 'two', [3, 'x'], { k: 2.5 }, null, true])
          if (c.cpp) await peer.ok(`mset ${c.id} ${key} ${JSON.stringify(v)}`)
          else c.doc.getMap('m').set(key, v)
        } else {
          const alen = c.cpp ? (await peer.dump(c.id)).array.length : c.doc.getArray('a').length
          if (rand() < 0.7 || alen === 0) {
            const vals = [int(100), pick(['p', 'q'])]
            const at = int(alen + 1)
            if (c.cpp) await peer.ok(`ains ${c.id} ${at} ${JSON.stringify(vals)}`)
            else c.doc.getArray('a').insert(at, vals)
          } else {
            const at = int(alen)
            if (c.cpp) await peer.ok(`adel ${c.id} ${at} 1`)
            else c.doc.getArray('a').delete(at, 1)
          }
        }
      }
      const produced = c.cpp ? await peer.take(c.id) : c.out.splice(0)
      for (const u of produced) {
        all.push(u)
        for (const d of clients) if (d !== c) d.inbox.push(u)
      }
    }
    for (const c of clients) if (rand() < 0.5) await deliver(c, int(c.inbox.length + 1))
  }
  for (const c of clients) await deliver(c, 1e9)
  const ref = new Y.Doc()
  for (const u of all) Y.applyUpdate(ref, u)
  const expected = strip(yjsView(ref))
  assertEq(expected.pending, false, `seed ${seed}: reference has nothing pending`)
  for (const c of clients) {
    assertEq(await view(c), expected, `seed ${seed} client ${c.id} (${c.cpp ? 'C++' : 'Yjs'}, gc=${gc})`)
    if (c.cpp) {
      const y = new Y.Doc(); Y.applyUpdate(y, fromHex(await peer.cmd(`state ${c.id}`)))
      assertEq(strip(yjsView(y)), expected, `seed ${seed}: Yjs loads C++ client ${c.id}'s full state`)
    }
  }
  // A fresh C++ doc loading the Yjs reference's state, and a merged update of everything.
  await peer.ok(`new s${seed}ref 999 1`)
  await peer.ok(`apply s${seed}ref ${toHex(Y.encodeStateAsUpdate(ref))}`)
  assertEq(strip(await peer.dump(`s${seed}ref`)), expected, `seed ${seed}: C++ loads Yjs state`)
  const merged = fromHex(await peer.cmd(`merge ${all.map(toHex).join(' ')}`))
  const ym = new Y.Doc(); Y.applyUpdate(ym, merged)
  assertEq(strip(yjsView(ym)), expected, `seed ${seed}: Yjs reads C++ MergeUpdates of all updates`)
}
peer.close()
console.log(`crdt converge: ${SEEDS} seeds x ${N} clients x ${ROUNDS} rounds ok`)
