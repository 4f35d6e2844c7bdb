// Golden fixtures made by real Yjs (testdata/crdt/make_fixtures.mjs) against pocket_crdt:
// C++ decodes them to what Yjs reads; C++ re-encodes them and Yjs decodes the same; C++
// builds the wire note's example and must produce Yjs's exact 70 bytes; out-of-order
// delivery converges; merge/diff/state-vector-from-update agree with Yjs.
//   node fixtures_check.mjs PATH/TO/crdt_peer testdata/crdt
import fs from 'node:fs'
import path from 'node:path'
import { CppPeer, Y, toHex, fromHex, yjsView, assertEq } from './peer.mjs'

const [bin, dir] = process.argv.slice(2)
const peer = new CppPeer(bin)
const read = (f) => new Uint8Array(fs.readFileSync(path.join(dir, f)))
const view = (j) => ({ text: j.text, delta: j.delta, map: j.map, array: j.array })
let docs = 0
const fresh = async (client = 99, gc = 1) => { const id = `d${docs++}`; await peer.ok(`new ${id} ${client} ${gc}`); return id }

for (const name of ['hello', 'rich', 'keystrokes']) {
  const expected = JSON.parse(fs.readFileSync(path.join(dir, name + '.json'), 'utf8'))
  const full = read(name + '.bin')
  // 1. C++ decodes what Yjs wrote.
  const d = await fresh()
  await peer.ok(`apply ${d} ${toHex(full)}`)
  const got = await peer.dump(d)
  assertEq({ ...view(got), pending: got.pending }, { ...view(expected), pending: false }, `${name}: C++ reads Yjs bytes`)
  // 2. Yjs decodes what C++ re-encodes.
  const state = fromHex(await peer.cmd(`state ${d}`))
  const y = new Y.Doc()
  Y.applyUpdate(y, state)
  assertEq(yjsView(y), { ...view(expected), pending: false }, `${name}: Yjs reads C++ bytes`)
  if (name !== 'rich' && state.length > full.length) {
    console.error(`${name}: C++ encoding ${state.length} bytes > Yjs ${full.length}`); process.exit(1)
  }
  // 3. Per-transaction updates in reverse and shuffled order converge; missing ones pend.
  if (expected.updates > 0) {
    const ups = [...Array(expected.updates).keys()].map(i => read(`${name}.${i}.bin`))
    const r = await fresh()
    for (const u of [...ups].reverse()) await peer.ok(`apply ${r} ${toHex(u)}`)
    assertEq((await peer.dump(r)).text, expected.text, `${name}: reverse delivery`)
    const p = await fresh()
    for (let i = 0; i < ups.length; i++) if (i !== 1) await peer.ok(`apply ${p} ${toHex(ups[i])}`)
    const pd = await peer.dump(p)
    if (!pd.pending) { console.error(`${name}: dropping an update should leave pending structs`); process.exit(1) }
    await peer.ok(`apply ${p} ${toHex(ups[1])}`)
    const pd2 = await peer.dump(p)
    assertEq([pd2.text, pd2.pending], [expected.text, false], `${name}: late update resolves pending`)
    // Merge without a doc, compared with Yjs mergeUpdates.
    const merged = fromHex(await peer.cmd(`merge ${ups.map(toHex).join(' ')}`))
    const ym = new Y.Doc(); Y.applyUpdate(ym, merged)
    assertEq(yjsView(ym), { ...view(expected), pending: false }, `${name}: MergeUpdates read by Yjs`)
    // State vector from update and diff, compared with Yjs.
    assertEq(await peer.cmd(`svof ${toHex(full)}`), toHex(Y.encodeStateVectorFromUpdate(full)), `${name}: EncodeStateVectorFromUpdate`)
    const half = new Y.Doc(); for (const u of ups.slice(0, ups.length >> 1)) Y.applyUpdate(half, u)
    const diff = fromHex(await peer.cmd(`diff ${toHex(full)} ${toHex(Y.encodeStateVector(half))}`))
    Y.applyUpdate(half, diff)
    assertEq(yjsView(half).text, expected.text, `${name}: DiffUpdate completes a partial Yjs doc`)
    // C++ state against a remote state vector.
    const half2 = new Y.Doc(); for (const u of ups.slice(0, 2)) Y.applyUpdate(half2, u)
    const part = fromHex(await peer.cmd(`state ${d} ${toHex(Y.encodeStateVector(half2))}`))
    Y.applyUpdate(half2, part)
    assertEq(yjsView(half2).text, expected.text, `${name}: EncodeStateAsUpdate(sv)`)
  }
}

// 4. The wire note's example built by C++ edits gives Yjs's exact bytes, update by update.
{
  const d = await fresh(1)
  const enc = (s) => toHex(Buffer.from(s, 'utf8'))
  await peer.ok(`ins ${d} 0 ${enc('hello world')}`)
  await peer.ok(`ins ${d} 5 ${enc(',')}`)
  await peer.ok(`del ${d} 0 1`)
  await peer.ok(`ins ${d} 0 ${enc('H')}`)
  await peer.ok(`ins ${d} 12 ${enc(' 😀 ok')}`)
  await peer.ok(`del ${d} 13 2`)
  const state = await peer.cmd(`state ${d}`)
  assertEq(state, toHex(read('hello.bin')), 'hello: C++ edits give the exact Yjs bytes')
  const first = (await peer.take(d))[0]
  assertEq(toHex(first), toHex(read('hello.0.bin')), 'hello: first update bytes')
}

// 5. Hostile input leaves the doc unchanged.
{
  const d = await fresh()
  const full = read('rich.bin')
  await peer.ok(`apply ${d} ${toHex(full)}`)
  const before = await peer.dump(d)
  for (let cut = 1; cut < full.length; cut += 7) {
    const r = await peer.cmd(`apply ${d} ${toHex(full.slice(0, cut))}`)
    if (!r.startsWith('err') && r !== 'ok') { console.error('bad reply', r); process.exit(1) }
  }
  assertEq(await peer.dump(d), before, 'truncated updates change nothing')
}
peer.close()
console.log('crdt fixtures: ok')
