// JS `undefined` passes through pocket_crdt unchanged: Yjs writes it (map values, array
// elements, object members inside a value, and legacy ContentJSON's "undefined"), the C++
// doc applies it, and Yjs reading the C++ doc's own state finds undefined again, where
// null would be a different value to every client. The C++ JSON views match
// JSON.stringify of Yjs's toJSON (member dropped, array element null).
//   node undefined_check.mjs PATH/TO/crdt_peer
import { CppPeer, Y, toHex, fromHex, yjsView, assertEq } from './peer.mjs'

const peer = new CppPeer(process.argv[2])
const strip = ({ length, delta, pending, ...rest }) => rest

const y = new Y.Doc()
y.clientID = 11
y.transact(() => {
  y.getMap('m').set('u', undefined)
  y.getMap('m').set('n', null)
  y.getMap('m').set('o', { a: undefined, b: 1, c: [undefined, null] })
  // (Yjs's Y.Array.insert throws on a top-level undefined; ContentJSON below carries one.)
  y.getArray('a').insert(0, [null, { d: undefined }])
})
// Legacy ContentJSON (ref 2), as old Yjs versions wrote Y.Array content: one item of
// client 12 under root array "a", holding JSON "undefined" and "1".
const legacy = new Uint8Array([1, 1, 12, 0, 2, 1, 1, 'a'.charCodeAt(0), 2,
  9, ...new TextEncoder().encode('undefined'), 1, '1'.charCodeAt(0), 0])
Y.applyUpdate(y, legacy)

await peer.ok('new 1 1 1')
const r = await peer.cmd(`apply 1 ${toHex(Y.encodeStateAsUpdate(y))}`)
if (r !== 'ok') { console.error(`crdt_peer refused Yjs's update: ${r}`); process.exit(1) }
const cpp = await peer.dump(1)
assertEq(strip(cpp), strip(JSON.parse(JSON.stringify(yjsView(y)))), 'C++ view vs Yjs toJSON')

const back = new Y.Doc()
const state = fromHex(await peer.cmd('state 1'))
Y.applyUpdate(back, state)
const m = back.getMap('m'); const a = back.getArray('a')
const check = (cond, what) => { if (!cond) { console.error(`FAIL ${what}`); process.exit(1) } }
check(m.has('u') && m.get('u') === undefined, "map 'u' is undefined after the C++ round trip")
check(m.get('n') === null, "map 'n' stays null")
check('a' in m.get('o') && m.get('o').a === undefined, "member 'a' inside a value stays undefined")
check(m.get('o').c[0] === undefined && m.get('o').c[1] === null, 'array inside a value')
const arr = a.toArray()
check(arr.length === 4, `array length 4, got ${arr.length}`)
check(arr.filter(v => v === undefined).length === 1, 'the ContentJSON undefined element')
check(arr.some(v => v && typeof v === 'object' && 'd' in v && v.d === undefined), "member 'd' stays undefined")
check(arr.filter(v => v === null).length === 1, 'one null array element')
assertEq(yjsView(back), yjsView(y), 'Yjs view of the C++ state vs the original')
peer.close()
console.log('undefined_check: undefined survives the C++ doc in maps, arrays, values and ContentJSON')
