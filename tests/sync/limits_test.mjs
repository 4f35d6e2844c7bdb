// The room server's limits as a real y-websocket 3.x client meets them:
//  * a document larger than --max-message-bytes: a client that sends one message over the
//    limit is refused with 4413 and a reason, and stops (a bounded number of connections in a
//    time window, never a reconnect loop); a document that grew past the limit in small
//    updates still syncs to new clients and to a client that reconnects (it sends only what
//    the server lacks, because the server's SyncStep1 carries its state vector);
//  * room creation per client address (--new-rooms-burst): the next new room is closed with
//    4529, joining a loaded room costs nothing;
//  * a room nobody wrote to leaves no directory behind.
// Usage: node limits_test.mjs PATH/TO/pocket
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { main, startServer, connect, synced, waitFor, close, tempDir, WebSocket, sleep } from './lib.mjs'

const pocket = process.argv[2]
const limit = 64 * 1024

// Counts a provider's connection attempts and remembers how it was closed.
function watch (client) {
  const w = { attempts: 0, closes: [], terminal: null }
  client.provider.on('status', ({ status }) => { if (status === 'connecting') w.attempts++ })
  client.provider.on('connection-close', (e) => { if (e) w.closes.push(e.code) })
  client.provider.on('closed', (e) => { w.terminal = e })
  return w
}

// A raw WebSocket to `room`: resolves { ws, code } once it is open (code null) or closed.
function rawJoin (url, room) {
  return new Promise((resolve) => {
    const ws = new WebSocket(`${url}/${room}`)
    ws.on('message', () => resolve({ ws, code: null }))
    ws.on('close', (code, reason) => resolve({ ws, code, reason: reason.toString() }))
    ws.on('error', () => {})
  })
}

main('limits_test', async () => {
  const dir = tempDir('limits')
  let server = null
  try {
    server = await startServer(pocket, ['--dir', dir, '--max-message-bytes', String(limit),
      '--compact-every', '10'])

    // One edit larger than the limit: refused once, with a reason, and the client stops.
    const big = connect(server.url, 'big-one')
    const w = watch(big)
    await synced(big)
    big.text.insert(0, 'x'.repeat(3 * limit))
    await waitFor('refusal', () => w.terminal !== null, 10000)
    assert.equal(w.terminal.code, 4413)
    assert.match(w.terminal.reason, /limit of 65536 bytes/)
    await sleep(2000) // a reconnect loop would show here (backoff is at most 200 ms)
    assert.ok(w.attempts <= 2, `${w.attempts} connection attempts after a refusal`)
    assert.deepEqual(w.closes, [4413])
    assert.equal(big.provider.shouldConnect, false)
    close(big)

    // A document that grows past the limit in small updates: stored, served to a new client
    // in pieces, and a reconnecting writer is not refused.
    const writer = connect(server.url, 'grown')
    const ww = watch(writer)
    await synced(writer)
    const piece = 'y'.repeat(limit / 8)
    for (let i = 0; i < 40; i++) writer.text.insert(writer.text.length, piece)
    const full = writer.text.toString()
    assert.ok(full.length > 4 * limit)
    const reader = connect(server.url, 'grown')
    await synced(reader)
    await waitFor('reader has the whole document', () => reader.text.toString() === full, 20000)
    writer.provider.disconnect()
    writer.text.insert(0, 'offline edit ') // sent on reconnect: only this, not the whole doc
    writer.provider.connect()
    await synced(writer)
    await waitFor('offline edit reaches the reader', () => reader.text.toString().startsWith('offline edit '))
    assert.ok(!ww.closes.includes(4413), `writer was refused: ${ww.closes}`)
    assert.equal(ww.terminal, null)
    const final = writer.text.toString()
    close(writer, reader)

    // Nothing was ever stored for a room nobody wrote to: no directory remains.
    const idle = connect(server.url, 'only-looked-at')
    await synced(idle)
    close(idle)
    await sleep(200)
    assert.ok(!fs.existsSync(path.join(dir, 'only-looked-at')), 'an empty room left a directory')
    assert.ok(fs.existsSync(path.join(dir, 'grown')))
    await server.stop()

    // After a restart the grown document is served again, in pieces.
    server = await startServer(pocket, ['--dir', dir, '--max-message-bytes', String(limit)])
    const again = connect(server.url, 'grown')
    await synced(again)
    await waitFor('grown document after restart', () => again.text.toString() === final, 20000)
    close(again)
    await server.stop()

    // Room creation per address: three new rooms, then 4529 with a reason; a loaded room
    // can still be joined.
    server = await startServer(pocket, ['--memory', '--new-rooms-burst', '3',
      '--new-rooms-per-minute', '0.001'])
    const held = []
    for (const room of ['r1', 'r2', 'r3']) {
      const j = await rawJoin(server.url, room)
      assert.equal(j.code, null, `room ${room} refused`)
      held.push(j.ws)
    }
    const refused = await rawJoin(server.url, 'r4')
    assert.equal(refused.code, 4529)
    assert.match(refused.reason, /too many new rooms/)
    const existing = await rawJoin(server.url, 'r1')
    assert.equal(existing.code, null, 'joining a loaded room was refused')
    held.push(existing.ws)
    for (const ws of held) ws.close()
    await sleep(50)
  } finally {
    if (server) await server.stop()
    fs.rmSync(dir, { recursive: true, force: true })
  }
})
