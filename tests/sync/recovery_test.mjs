// A damaged room on disk, end to end with real y-websocket clients: the server still loads
// the room (a flipped byte in the middle of the log; a snapshot that is a directory), keeps
// every record that verifies, quarantines the rest beside the log, and the document heals
// completely when a client that still holds it reconnects.
// Usage: node recovery_test.mjs PATH/TO/pocket
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { main, startServer, connect, synced, waitFor, close, tempDir, sleep } from './lib.mjs'

const pocket = process.argv[2]

main('recovery_test', async () => {
  const dir = tempDir('recovery')
  let server = null
  try {
    for (const damage of ['flipped log byte', 'snapshot is a directory']) {
      const room = damage.replace(/ /g, '-')
      const compact = damage.startsWith('snapshot') ? ['--compact-every', '10'] : []
      server = await startServer(pocket, ['--dir', dir, ...compact])
      const holder = connect(server.url, room)
      await synced(holder)
      // Each line goes in at the front, so each update builds on the one before it.
      for (let i = 0; i < 25; i++) {
        holder.text.insert(0, `line ${i}\n`)
        await sleep(5)
      }
      const text = holder.text.toString()
      const watcher = connect(server.url, room)
      await synced(watcher)
      await waitFor('acknowledged', () => watcher.text.toString() === text)
      close(watcher)
      holder.provider.disconnect()
      await server.stop()

      const roomDir = path.join(dir, room)
      if (damage === 'flipped log byte') {
        const log = fs.readFileSync(path.join(roomDir, 'log'))
        log[Math.floor(log.length / 2)] ^= 0x20
        fs.writeFileSync(path.join(roomDir, 'log'), log)
      } else {
        assert.ok(fs.existsSync(path.join(roomDir, 'snapshot')))
        fs.rmSync(path.join(roomDir, 'snapshot'))
        fs.mkdirSync(path.join(roomDir, 'snapshot'))
      }
      fs.writeFileSync(path.join(roomDir, 'snapshot.tmp.4242'), 'half a compaction')

      server = await startServer(pocket, ['--dir', dir])
      const reader = connect(server.url, room)
      await synced(reader) // the room loads
      const files = fs.readdirSync(roomDir)
      assert.ok(files.some((f) => f.startsWith(damage.startsWith('snapshot') ? 'snapshot.corrupt-' : 'log.corrupt-')),
        `${damage}: nothing quarantined: ${files}`)
      assert.ok(!files.includes('snapshot.tmp.4242'), `${damage}: stray temp file kept`)
      assert.match(server.stderr(), /recovered: kept/)
      if (damage === 'flipped log byte') {
        // The updates before the damage show; the ones after it build on the damaged one
        // and stay pending until the holder resends it.
        assert.ok(reader.text.toString().length > 0, 'the records before the damage were lost')
      }
      const back = connect(server.url, room, { doc: holder.doc })
      await synced(back)
      await waitFor(`${damage}: document healed`, () => reader.text.toString() === text)
      close(reader, back)
      await server.stop()
      server = null
    }
  } finally {
    if (server) await server.stop()
    fs.rmSync(dir, { recursive: true, force: true })
  }
})
