// Real y-websocket 3.x clients against `pocket collab serve`: sync, rooms, awareness,
// access tokens, bad frames, and persistence across a clean restart.
// Usage: node sync_test.mjs PATH/TO/pocket
import assert from 'node:assert/strict'
import fs from 'node:fs'
import { main, startServer, connect, synced, waitFor, close, tempDir, WebSocket, sleep } from './lib.mjs'

const pocket = process.argv[2]

main('sync_test', async () => {
  const dir = tempDir('sync')
  let server = null
  try {
    server = await startServer(pocket, ['--dir', dir])
    // Two clients type concurrently in one room and converge.
    const a = connect(server.url, 'notes')
    const b = connect(server.url, 'notes')
    await synced(a); await synced(b)
    for (let i = 0; i < 20; i++) {
      a.text.insert(0, `a${i} `)
      b.text.insert(b.text.length, `b${i} `)
    }
    await waitFor('convergence', () => a.text.toString() === b.text.toString() &&
      a.text.toString().includes('a19') && a.text.toString().includes('b19'))
    const expected = a.text.toString()

    // Another room is independent.
    const other = connect(server.url, 'other/room')
    await synced(other)
    other.text.insert(0, 'elsewhere')
    const late = connect(server.url, 'notes')
    await synced(late)
    await waitFor('late joiner state', () => late.text.toString() === expected)
    const other2 = connect(server.url, 'other/room')
    await synced(other2)
    await waitFor('room isolation', () => other2.text.toString() === 'elsewhere')

    // Awareness: presence travels, and disappears when the socket closes.
    a.provider.awareness.setLocalStateField('user', { name: 'alice', color: '#f00' })
    await waitFor('awareness relay', () => {
      const s = b.provider.awareness.getStates().get(a.doc.clientID)
      return s && s.user && s.user.name === 'alice'
    })
    const aId = a.doc.clientID
    close(a)
    await waitFor('awareness removal on close', () => !b.provider.awareness.getStates().has(aId), 5000)

    // Garbage frames close only that connection.
    const raw = new WebSocket(server.url + '/notes')
    await new Promise((resolve) => raw.on('open', resolve))
    const closed = new Promise((resolve) => raw.on('close', (code) => resolve(code)))
    raw.send(Buffer.from([0x09, 0xff, 0xff]))
    assert.equal(await closed, 1008)
    const raw2 = new WebSocket(server.url + '/notes')
    await new Promise((resolve) => raw2.on('open', resolve))
    const closed2 = new Promise((resolve) => raw2.on('close', (code) => resolve(code)))
    raw2.send('text frames are not y-protocols')
    assert.equal(await closed2, 1008)
    const raw3 = new WebSocket(server.url + '/notes')
    await new Promise((resolve) => raw3.on('open', resolve))
    const closed3 = new Promise((resolve) => raw3.on('close', (code) => resolve(code)))
    raw3.send(Buffer.from([0, 2, 3, 1, 5, 9])) // a well-framed Update whose Yjs bytes are cut short
    assert.equal(await closed3, 1008)
    b.text.insert(0, '!')
    await waitFor('server alive after bad frames', () => late.text.toString() === b.text.toString())
    const final = b.text.toString()
    close(b, late, other, other2)

    // Clean restart: the room is read back from disk.
    await server.stop()
    server = await startServer(pocket, ['--dir', dir])
    const again = connect(server.url, 'notes')
    await synced(again)
    await waitFor('state after restart', () => again.text.toString() === final)
    close(again)
    await server.stop()

    // Access tokens: a wrong token is refused with 4401 (y-websocket stops retrying), the
    // right one syncs.
    server = await startServer(pocket, ['--memory', '--token', 's3cret'])
    const denied = connect(server.url, 'private', { provider: { params: { token: 'wrong' } } })
    const code = await new Promise((resolve) => denied.provider.on('connection-close', (e) => resolve(e && e.code)))
    assert.equal(code, 4401)
    assert.equal(denied.provider.synced, false)
    close(denied)
    const allowed = connect(server.url, 'private', { provider: { params: { token: 's3cret' } } })
    await synced(allowed)
    close(allowed)
    await sleep(50)
  } finally {
    if (server) await server.stop()
    fs.rmSync(dir, { recursive: true, force: true })
  }
})
