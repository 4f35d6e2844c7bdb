// What `pocket doc replay TRACE --out FILE` does, in Yjs, as one node process: read the
// trace (gunzip, JSON.parse), replay it as client 1 with one transaction per trace
// transaction, check the end text, encode the state (v1) and write it. Timed from outside,
// whole process, by bench/crdt/whole_process.sh.
//   node bench/crdt/yjs_replay_once.mjs TRACE.json[.gz] OUT.ydoc
import { writeFileSync } from 'node:fs'
import * as Y from '../../tests/node/node_modules/yjs/dist/yjs.mjs'
import { loadTrace, replayYjs } from '../../tests/crdt/yjs_trace.mjs'

const [tracePath, outPath] = process.argv.slice(2)
const trace = loadTrace(tracePath)
const doc = replayYjs(Y, trace, 1)
if (doc.getText('content').toString() !== trace.endContent) {
  console.error('yjs: end text does not match')
  process.exit(1)
}
writeFileSync(outPath, Y.encodeStateAsUpdate(doc))
