// Makes the golden Yjs fixtures in this folder with real Yjs (npm yjs 13.6.33, pinned in
// tests/node/package.json). Run from the repo root:
//   node testdata/crdt/make_fixtures.mjs testdata/crdt
// Each fixture NAME has NAME.bin (a v1 update, or several concatenated as NAME.N.bin) and
// NAME.json (what Yjs reads from it: text, delta, map, array).
import fs from 'node:fs'
import path from 'node:path'
import * as Y from '../../tests/node/node_modules/yjs/dist/yjs.mjs'

const out = process.argv[2] || path.dirname(new URL(import.meta.url).pathname)

const expect = (doc) => ({
  text: doc.getText('content').toString(),
  delta: doc.getText('content').toDelta(),
  map: doc.getMap('m').toJSON(),
  array: doc.getArray('a').toJSON()
})
const save = (name, doc, updates) => {
  const full = Y.encodeStateAsUpdate(doc)
  fs.writeFileSync(path.join(out, name + '.bin'), full)
  if (updates) updates.forEach((u, i) => fs.writeFileSync(path.join(out, `${name}.${i}.bin`), u))
  fs.writeFileSync(path.join(out, name + '.json'),
    JSON.stringify({ ...expect(doc), bytes: full.length, updates: updates ? updates.length : 0 }, null, 1) + '\n')
}

// 1. The annotated example of ../shared/notes/yjs-wire.md (70 bytes, client 1).
{
  const doc = new Y.Doc(); doc.clientID = 1
  const updates = []
  doc.on('update', u => updates.push(u))
  const t = doc.getText('content')
  t.insert(0, 'hello world')
  t.insert(5, ',')
  doc.transact(() => { t.delete(0, 1); t.insert(0, 'H') })
  t.insert(t.length, ' 😀 ok')
  t.delete(13, 2)
  save('hello', doc, updates)
}
// 2. Formatting, map, array, astral characters, two clients with concurrent edits.
{
  const a = new Y.Doc(); a.clientID = 7
  const b = new Y.Doc(); b.clientID = 3
  const ta = a.getText('content'); const tb = b.getText('content')
  ta.insert(0, 'bold and plain 🎉 text')
  Y.applyUpdate(b, Y.encodeStateAsUpdate(a))
  ta.format(0, 4, { bold: true })
  tb.insert(9, 'very ', { italic: true })
  tb.insert(0, '𝄞 ')
  ta.delete(15, 2)
  a.getMap('m').set('queue', ['req-1', 'req-2'])
  a.getMap('m').set('n', 42)
  b.getMap('m').set('n', 3.5)
  b.getMap('m').set('flag', true)
  b.getArray('a').insert(0, [1, 'two', { three: 3 }, null, 2 ** 40])
  a.getArray('a').push(['x'])
  Y.applyUpdate(a, Y.encodeStateAsUpdate(b))
  Y.applyUpdate(b, Y.encodeStateAsUpdate(a))
  a.getArray('a').delete(1, 2)
  save('rich', a)
}
// 3. Per-keystroke updates of a small session (for out-of-order delivery), gc off.
{
  const doc = new Y.Doc({ gc: false }); doc.clientID = 42
  const updates = []
  doc.on('update', u => updates.push(u))
  const t = doc.getText('content')
  for (const ch of 'The quick brown fox') t.insert(t.length, ch)
  t.delete(4, 6)
  t.insert(4, 'slow ')
  save('keystrokes', doc, updates)
}
// 4. A remote update that reuses this doc's client id (7) for structs of its own, some of
//    them pending. Yjs integrates what it can, keeps the rest pending (and sends it on in
//    encodeStateAsUpdate), and changes its own client id. Input: collision-input.bin (found
//    by update_fuzz).
{
  const doc = new Y.Doc(); doc.clientID = 7
  const t = doc.getText('content')
  t.insert(0, 'seed text 😀')
  t.delete(2, 3)
  Y.applyUpdate(doc, fs.readFileSync(path.join(out, 'collision-input.bin')))
  save('collision', doc)
  const reloaded = new Y.Doc()
  Y.applyUpdate(reloaded, Y.encodeStateAsUpdate(doc))
  const meta = JSON.parse(fs.readFileSync(path.join(out, 'collision.json')))
  meta.clientIdChanged = doc.clientID !== 7
  meta.reloadedText = reloaded.getText('content').toString()
  fs.writeFileSync(path.join(out, 'collision.json'), JSON.stringify(meta, null, 1) + '\n')
}
