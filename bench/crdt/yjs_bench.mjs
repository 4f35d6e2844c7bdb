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
const gc = () => { if (globalThis.gc) { globalThis.gc(); globalThis.gc() } }
const heap = () => process.memoryUsage().heapUsed
// Times: best of `runs`. Memory: every replayed (then loaded) doc is kept alive and the heap
// growth after a full gc is divided by `runs`; one doc alone is below V8's noise.
const best = { replay: Infinity, encode: Infinity, load: Infinity }
const docs = []; const encoded = []; const loaded = []
gc()
let h0 = heap()
for (let r = 0; r < runs; r++) {
  const t0 = performance.now()
  docs.push(replayYjs(Y, trace, 1))
  best.replay = Math.min(best.replay, performance.now() - t0)
}
gc()
const docHeap = (heap() - h0) / runs
for (const doc of docs) {
  const t0 = performance.now()
  encoded.push(Y.encodeStateAsUpdate(doc))
  best.encode = Math.min(best.encode, performance.now() - t0)
}
gc()
h0 = heap()
for (const bytes of encoded) {
  const doc = new Y.Doc()
  const t0 = performance.now()
  Y.applyUpdate(doc, bytes)
  best.load = Math.min(best.load, performance.now() - t0)
  loaded.push(doc)
}
gc()
const loadedHeap = (heap() - h0) / runs
const ok = docs.concat(loaded).every(d => d.getText('content').toString() === trace.endContent)
console.log(JSON.stringify({
  impl: 'yjs', version: '13.6.33', patches, replay_ms: best.replay, ns_per_patch: best.replay * 1e6 / patches,
  encode_ms: best.encode, load_ms: best.load, v1_bytes: encoded[0].length, doc_heap_bytes: Math.round(docHeap),
  loaded_heap_bytes: Math.round(loadedHeap), text_ok: ok
}))
