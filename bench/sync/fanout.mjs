// 50 clients typing concurrently through `pocket collab serve`: every client is a real
// y-websocket 3.x + Yjs 13 client (one Node process), each inserting one character at a
// random place in the shared Y.Text `rate` times a second. Reports the update rate the
// server sustained and the delay from one client's edit to each other client having it
// (p50/p99/max over all (edit, receiver) pairs), as one JSON line.
//
// Delay: the sender notes the time of each edit under its Yjs ID (client, clock); every
// receiver reads the IDs an incoming update carries (Y.parseUpdateMeta) and looks them up.
// Same process, same clock. Includes Node's own time to apply updates for 50 docs.
//
// Usage: node bench/sync/fanout.mjs PATH/TO/pocket [--clients 50] [--rate 10]
//        [--seconds 10] [--memory]   (default: a temporary data dir, fsync on)
import fs from 'node:fs'
import { startServer, connect, synced, waitFor, close, tempDir, sleep, Y } from '../../tests/sync/lib.mjs'

const argv = process.argv.slice(2)
const pocket = argv[0]
const opt = (name, dflt) => {
  const i = argv.indexOf(`--${name}`)
  return i >= 0 ? Number(argv[i + 1]) : dflt
}
const numClients = opt('clients', 50)
const rate = opt('rate', 10)
const seconds = opt('seconds', 10)
const memory = argv.includes('--memory')

process.setMaxListeners(0) // y-websocket adds a process 'exit' listener per provider
// utime + stime of a process in seconds (/proc/PID/stat fields 14 and 15, clock ticks).
const cpuSeconds = (pid) => {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')
  return (Number(f[11]) + Number(f[12])) / 100
}
const dir = tempDir('bench')
const server = await startServer(pocket, memory ? ['--memory'] : ['--dir', dir])
const sentAt = new Map() // "client:clock" -> ms
const delays = []
const clients = []
try {
  for (let i = 0; i < numClients; i++) {
    const c = connect(server.url, 'bench')
    c.doc.on('update', (update, origin) => {
      if (origin !== c.provider) return // local edits
      const now = performance.now()
      const { from, to } = Y.parseUpdateMeta(update)
      for (const [client, end] of to) {
        if (client === c.doc.clientID) continue
        for (let clock = from.get(client) ?? 0; clock < end; clock++) {
          const t = sentAt.get(`${client}:${clock}`)
          if (t !== undefined) delays.push(now - t)
        }
      }
    })
    clients.push(c)
  }
  for (const c of clients) await synced(c, 30000)

  let sent = 0
  const start = performance.now()
  const cpu0 = process.cpuUsage()
  const serverCpu0 = cpuSeconds(server.child.pid)
  const tick = 1000 / rate
  const timers = clients.map((c, i) => setTimeout(function type () {
    if (performance.now() - start >= seconds * 1000) return
    const clock = Y.getState(c.doc.store, c.doc.clientID)
    sentAt.set(`${c.doc.clientID}:${clock}`, performance.now())
    c.text.insert(Math.floor(Math.random() * (c.text.length + 1)), String.fromCharCode(97 + (i % 26)))
    sent++
    timers[i] = setTimeout(type, tick)
  }, Math.random() * tick))
  await sleep(seconds * 1000)
  const typingMs = performance.now() - start
  timers.forEach(clearTimeout)
  // Everyone must end with the same text (and every edit delivered).
  await waitFor('convergence', () => clients.every((c) => c.text.length === sent), 60000)
  const text = clients[0].text.toString()
  if (!clients.every((c) => c.text.toString() === text)) throw new Error('clients diverged')
  const drainMs = performance.now() - start
  const cpu = process.cpuUsage(cpu0)
  const serverCpu = cpuSeconds(server.child.pid) - serverCpu0
  delays.sort((a, b) => a - b)
  const q = (p) => delays[Math.min(delays.length - 1, Math.floor(p * delays.length))]
  console.log(JSON.stringify({
    bench: 'sync_fanout',
    clients: numClients,
    persistence: memory ? 'memory' : 'fsync',
    edits: sent,
    updates_per_s: +(sent / (typingMs / 1000)).toFixed(1),
    deliveries_per_s: +(sent * (numClients - 1) / (drainMs / 1000)).toFixed(0),
    delay_ms_p50: +q(0.5).toFixed(2),
    delay_ms_p99: +q(0.99).toFixed(2),
    delay_ms_max: +delays[delays.length - 1].toFixed(2),
    deliveries_measured: delays.length,
    node_cpu_s: +((cpu.user + cpu.system) / 1e6).toFixed(2),
    server_cpu_s: +serverCpu.toFixed(2),
    wall_s: +(drainMs / 1000).toFixed(2)
  }))
} finally {
  close(...clients)
  await server.stop()
  fs.rmSync(dir, { recursive: true, force: true })
}
process.exit(0)
