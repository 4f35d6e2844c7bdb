// Durability: a writer streams edits through `pocket collab serve` while an observer
// watches; the server is killed with SIGKILL mid-stream, restarted on the same data dir,
// and every edit the observer had seen must be there.
//
// "Acknowledged" = received from the server by another peer. The server fsyncs an update
// before it broadcasts it (and answers SyncStep1 only with durable state), so anything a
// peer has received must survive the crash. Edits the writer made but nobody saw may be
// lost; the writer is destroyed before the restart so it cannot resend them.
// Usage: node kill_test.mjs PATH/TO/pocket
import assert from 'node:assert/strict'
import fs from 'node:fs'
import { main, startServer, connect, synced, waitFor, close, tempDir, sleep } from './lib.mjs'

const pocket = process.argv[2]

function edits (s) {
  return new Set(s.match(/e\d+;/g) || [])
}

main('kill_test', async () => {
  const dir = tempDir('kill')
  let server = null
  try {
    for (let round = 0; round < 2; round++) {
      // A small compaction interval so the crash also lands around snapshot rewrites.
      server = await startServer(pocket, ['--dir', dir, '--compact-every', '37'])
      const writer = connect(server.url, 'durable')
      const observer = connect(server.url, 'durable')
      await synced(writer); await synced(observer)
      const before = edits(observer.text.toString())
      let seen = new Set(before)
      observer.doc.on('update', () => { seen = edits(observer.text.toString()) })
      const killAfter = 120 + round * 40
      let i = 0
      // Write until the observer has seen `killAfter` new edits, then kill -9 mid-stream.
      const deadline = Date.now() + 20000
      while (seen.size - before.size < killAfter) {
        assert.ok(Date.now() < deadline, 'observer stopped seeing edits')
        writer.text.insert(writer.text.length, `e${round * 100000 + i};`)
        i++
        if (i % 4 === 0) await sleep(1)
      }
      server.child.kill('SIGKILL')
      await server.exited
      const acknowledged = new Set(seen)
      close(writer, observer)
      server = await startServer(pocket, ['--dir', dir, '--compact-every', '37'])
      const checker = connect(server.url, 'durable')
      await synced(checker)
      await sleep(100)
      const restored = edits(checker.text.toString())
      const missing = [...acknowledged].filter((e) => !restored.has(e))
      assert.deepEqual(missing, [], `round ${round}: ${missing.length} acknowledged edits lost ` +
        `(${acknowledged.size} acknowledged, ${restored.size} restored, ${i} written)`)
      console.log(`round ${round}: ${i} written, ${acknowledged.size} acknowledged, ${restored.size} restored`)
      close(checker)
      await server.stop()
      server = null
    }
  } finally {
    if (server) await server.stop()
    fs.rmSync(dir, { recursive: true, force: true })
  }
}, 90000)
