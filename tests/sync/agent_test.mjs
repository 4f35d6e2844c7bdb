// The AI agent peer (`pocket agent`) against real y-websocket clients:
//  1. it joins with its own client id and announces itself in awareness;
//  2. a "/ai hello" line is replaced by generated text (the local default model, greedy);
//  3. a human types before the request while the agent streams: the answer still lands,
//     contiguous, exactly where the request was (Ask AI entry with a relative position);
//  4. without a model it still syncs and says AI is unavailable.
// Usage: node agent_test.mjs PATH/TO/pocket
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { main, startServer, connect, synced, waitFor, close, sleep, Y } from './lib.mjs'

const pocket = process.argv[2]

function startAgent (url, args) {
  const child = spawn(pocket, ['agent', '--server', url, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  let log = ''
  child.stdout.on('data', (d) => { log += d })
  child.stderr.on('data', (d) => { log += d })
  const exited = new Promise((resolve) => child.on('exit', (code) => resolve(code)))
  return {
    log: () => log,
    async stop () {
      if (child.exitCode === null) child.kill('SIGTERM')
      const t = setTimeout(() => child.kill('SIGKILL'), 5000)
      const code = await exited
      clearTimeout(t)
      return code
    }
  }
}

function agentState (client) {
  for (const [id, s] of client.provider.awareness.getStates()) {
    if (s.user && s.user.name === 'pocket-agent') return { id, ...s }
  }
  return null
}

main('agent_test', async () => {
  let server = null
  const agents = []
  const clients = []
  try {
    server = await startServer(pocket, ['--memory'])
    const agent = startAgent(`${server.url}/ai-room`, ['--temperature', '0', '--seed', '1',
      '--max-tokens', '16', '--token-delay-ms', '40'])
    agents.push(agent)
    const human = connect(server.url, 'ai-room')
    clients.push(human)
    human.provider.awareness.setLocalStateField('user', { name: 'human' })
    await synced(human)
    await waitFor('agent presence', () => agentState(human) && agentState(human).ai.available, 20000)
    const agentId = agentState(human).id
    assert.notEqual(agentId, human.doc.clientID)

    // 2. "/ai hello" line.
    human.text.insert(0, 'Intro line\n/ai hello\nAfter.\n')
    await waitFor('the /ai line to be answered', () => {
      const s = human.text.toString()
      return !s.includes('/ai hello') && agentState(human) && !agentState(human).ai.busy &&
        s.length > 'Intro line\n\nAfter.\n'.length
    }, 30000)
    const after1 = human.text.toString()
    assert.ok(after1.startsWith('Intro line\n') && after1.endsWith('\nAfter.\n'), JSON.stringify(after1))
    const answer1 = after1.slice('Intro line\n'.length, after1.length - '\nAfter.\n'.length)
    assert.ok(answer1.length > 0)
    // The edits came from the agent's own client id.
    assert.ok(human.doc.store.clients.has(agentId))

    // 3. Ask AI entry at a relative position; the human keeps typing at the start meanwhile.
    const requests = human.doc.getMap('ai-requests')
    const marker = '[[answer here]]'
    human.text.insert(human.text.length, `${marker} tail.\n`)
    const index = human.text.toString().indexOf(marker) + marker.length
    requests.set('req-1', {
      prompt: 'write something',
      status: 'pending',
      pos: Y.encodeRelativePosition(Y.createRelativePositionFromTypeIndex(human.text, index))
    })
    await waitFor('the agent to start', () => requests.get('req-1').status === 'running', 20000)
    let typed = 0
    while (requests.get('req-1').status === 'running' && typed < 40) {
      human.text.insert(0, 'x')
      typed++
      await sleep(25)
    }
    await waitFor('request done', () => requests.get('req-1').status === 'done', 30000)
    const answer2 = requests.get('req-1').answer
    if (process.env.DEBUG) console.log(JSON.stringify({ answer1, answer2, typed }))
    assert.ok(typed > 0, 'the human typed while the agent wrote')
    assert.ok(answer2.length > 0)
    const final = human.text.toString()
    assert.ok(final.includes(marker + answer2 + ' tail.\n'),
      `answer not contiguous at the request: ${JSON.stringify(final)} answer ${JSON.stringify(answer2)}`)
    assert.ok(final.startsWith('x'.repeat(typed) + 'Intro line\n' + answer1 + '\nAfter.\n'))
    // A second client converges on the same text.
    const late = connect(server.url, 'ai-room')
    clients.push(late)
    await synced(late)
    await waitFor('late client converges', () => late.text.toString() === human.text.toString())

    // The agent withdraws its presence when stopped.
    assert.equal(await agent.stop(), 0)
    await waitFor('agent presence removed', () => agentState(human) === null, 5000)

    // 4. No model: syncs, says unavailable, marks requests unavailable, leaves /ai lines.
    const bare = startAgent(`${server.url}/ai-room`, ['--no-model'])
    agents.push(bare)
    await waitFor('model-less agent presence', () => agentState(human) !== null, 20000)
    assert.equal(agentState(human).ai.available, false)
    requests.set('req-2', { prompt: 'anyone?', status: 'pending' })
    human.text.insert(human.text.length, '/ai is anyone there\n')
    await waitFor('request marked unavailable', () => requests.get('req-2').status === 'unavailable', 20000)
    await sleep(300)
    assert.ok(human.text.toString().includes('/ai is anyone there\n'))
  } finally {
    for (const a of agents) await a.stop()
    close(...clients)
    if (server) await server.stop()
  }
}, 100000)
