// Yjs half of the CRDT side-by-side benchmark (run by bench/crdt/run.sh). Loads Yjs as an
// ES module (its CommonJS build is slower and would flatter us), replays the trace as
// client 1 with one transaction per trace transaction, encodes the full state (v1), loads
// it into a fresh doc, and prints one JSON line. Memory: V8 heap growth after gc() (run
// node with --expose-gc) while the replayed doc is alive.
//   node --expose-gc bench/crdt/yjs_bench.mjs TRACE.json[.gz] [runs]
import * as Y from '../../tests/node/node_modules/yjs/dist/yjs.mjs'
import { loadTrace, replayYjs } from '../../tests/crdt/yjs_trace.mjs'

const [tracePath, runsArg] = process.argv.slice(2)
const runs = +(runsArg || 3)
const trace = loadTrace(tracePath)
const patches = trace.txns.reduce((n, t) => n + t.patches.length, 0)
const gc = globalThis.gc || (() => {})
let best = { replay: Infinity, encode: Infinity, load: Infinity }
let size = 0; let heap = 0; let loadedHeap = 0; let ok = true
for (let r = 0; r < runs; r++) {
  gc(); gc()
  const h0 = process.memoryUsage().heapUsed
  const t0 = performance.now()
  const doc = replayYjs(Y, trace, 1)
  const t1 = performance.now()
  gc(); gc()
  const h1 = process.memoryUsage().heapUsed
  const t2 = performance.now()
  const bytes = Y.encodeStateAsUpdate(doc)
  const t3 = performance.now()
  gc(); gc()
  const h2 = process.memoryUsage().heapUsed
  const doc2 = new Y.Doc()
  const t4 = performance.now()
  Y.applyUpdate(doc2, bytes)
  const t5 = performance.now()
  gc(); gc()
  const h3 = process.memoryUsage().heapUsed
  ok = ok && doc.getText('content').toString() === trace.endContent &&
    doc2.getText('content').toString() === trace.endContent
  best = { replay: Math.min(best.replay, t1 - t0), encode: Math.min(best.encode, t3 - t2), load: Math.min(best.load, t5 - t4) }
  size = bytes.length; heap = h1 - h0; loadedHeap = h3 - h2
}
console.log(JSON.stringify({
  impl: 'yjs', version: '13.6.33', patches, replay_ms: best.replay, ns_per_patch: best.replay * 1e6 / patches,
  encode_ms: best.encode, load_ms: best.load, v1_bytes: size, doc_heap_bytes: heap,
  loaded_heap_bytes: loadedHeap, text_ok: ok
}))
