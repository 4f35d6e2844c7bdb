// Replays an editing trace (editing-traces format, positions in code points) in real Yjs,
// one Yjs transaction per trace transaction, as client `clientId`. Shared by the trace
// test and bench/crdt/yjs_bench.mjs.
import fs from 'node:fs'
import zlib from 'node:zlib'

export const loadTrace = (path) => {
  let raw = fs.readFileSync(path)
  if (raw[0] === 0x1f && raw[1] === 0x8b) raw = zlib.gunzipSync(raw)
  return JSON.parse(raw.toString('utf8'))
}

const hasAstral = (s) => /[\u{10000}-\u{10FFFF}]/u.test(s)

export const traceHasAstral = (trace) =>
  hasAstral(trace.startContent || '') || trace.txns.some(t => t.patches.some(p => hasAstral(p[2])))

// UTF-16 offset of code point `cp` in s.
const unitOf = (s, cp) => {
  let u = 0
  for (let i = 0; i < cp && u < s.length; i++) u += s.codePointAt(u) > 0xffff ? 2 : 1
  return u
}

export const replayYjs = (Y, trace, clientId = 1) => {
  const doc = new Y.Doc()
  doc.clientID = clientId
  const text = doc.getText('content')
  if (trace.startContent) text.insert(0, trace.startContent)
  const astral = traceHasAstral(trace)
  for (const txn of trace.txns) {
    doc.transact(() => {
      for (const [pos, del, ins] of txn.patches) {
        if (astral) {
          const s = text.toString()
          const at = unitOf(s, pos)
          const end = unitOf(s.slice(at), del) + at
          if (end > at) text.delete(at, end - at)
          if (ins) text.insert(at, ins)
        } else {
          if (del) text.delete(pos, del)
          if (ins) text.insert(pos, ins)
        }
      }
    })
  }
  return doc
}
