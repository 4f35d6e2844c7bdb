// `pocket doc replay` against Yjs replaying the same trace as the same client: Yjs loads
// the C++ document to the same text (nothing pending), the C++ encoding is byte-identical to
// Yjs's, and `pocket doc text/merge/info` agree.
//   node trace_check.mjs PATH/TO/pocket TRACE.json[.gz]
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { Y, yjsView, assertEq } from './peer.mjs'
import { loadTrace, replayYjs } from './yjs_trace.mjs'

const [pocket, tracePath] = process.argv.slice(2)
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'crdt-trace-'))
const out = path.join(tmp, 'doc.yjs')
execFileSync(pocket, ['doc', 'replay', tracePath, '--out', out, '--client', '1', '-q'])
const trace = loadTrace(tracePath)
const ours = new Uint8Array(fs.readFileSync(out))
const ref = replayYjs(Y, trace, 1)
const theirs = Y.encodeStateAsUpdate(ref)
assertEq(ref.getText('content').toString(), trace.endContent, 'Yjs replay reaches endContent')
const y = new Y.Doc(); Y.applyUpdate(y, ours)
assertEq(yjsView(y), yjsView(ref), 'Yjs reads the C++ document as its own replay')
if (ours.length > theirs.length) {
  console.error(`C++ v1 size ${ours.length} > Yjs ${theirs.length}`); process.exit(1)
}
// One client's edits merge into runs exactly as Yjs merges them, so the bytes match too.
assertEq(Buffer.from(ours).toString('hex'), Buffer.from(theirs).toString('hex'), 'C++ bytes equal Yjs bytes')
const printed = execFileSync(pocket, ['doc', 'text', out]).toString()
assertEq(printed.replace(/\n$/, ''), trace.endContent.replace(/\n$/, ''), 'pocket doc text')
// merge: our file + Yjs's file of the same edits by the same client = the same text.
fs.writeFileSync(path.join(tmp, 'yjs.yjs'), theirs)
execFileSync(pocket, ['doc', 'merge', out, path.join(tmp, 'yjs.yjs'), '--out', path.join(tmp, 'm.yjs'), '-q'])
const m = new Y.Doc(); Y.applyUpdate(m, new Uint8Array(fs.readFileSync(path.join(tmp, 'm.yjs'))))
assertEq(m.getText('content').toString(), trace.endContent, 'pocket doc merge')
const info = execFileSync(pocket, ['doc', 'info', out]).toString()
if (!info.includes('content')) { console.error('pocket doc info: no root type listed\n' + info); process.exit(1) }
fs.rmSync(tmp, { recursive: true })
console.log(`crdt trace: ok (C++ ${ours.length} bytes, Yjs ${theirs.length} bytes)`)
