// The collaborative editor page: a textarea bound to the Y.Text "content" of a room,
// presence from y-protocols awareness, and "Ask AI", which files a request in the Y.Map
// "ai-requests" for the agent peer (`pocket agent`). Query parameters: room, name, token.
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'

const params = new URLSearchParams(location.search)
const room = params.get('room') || 'demo'
const colors = ['#e11d48', '#2563eb', '#16a34a', '#d97706', '#7c3aed', '#0891b2']
const name = params.get('name') || `guest-${Math.floor(Math.random() * 1000)}`
// A stable colour per name, so a person keeps theirs across reloads.
const color = colors[[...name].reduce((h, c) => (h * 31 + c.charCodeAt(0)) >>> 0, 7) % colors.length]

const doc = new Y.Doc()
const text = doc.getText('content')
const requests = doc.getMap('ai-requests')
const wsUrl = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}`
const provider = new WebsocketProvider(wsUrl, room, doc, {
  params: params.get('token') ? { token: params.get('token') } : {}
})
provider.awareness.setLocalStateField('user', { name, color })

const $ = (id) => document.getElementById(id)
const editor = $('editor')
$('room').textContent = room

// --- status. The server closes with 4401 (access denied) or 4413 (an edit larger than its
// message limit): y-websocket treats 44xx as final and stops reconnecting, and we say why
// until the page is reloaded. 4529 (too many new rooms from this address) is retried.
let refusal = null
const showStatus = () => {
  if (refusal) {
    $('status').textContent = refusal
    $('status').className = 'refused'
    return
  }
  $('status').textContent = provider.synced ? 'synced' : (provider.wsconnected ? 'syncing…' : 'offline')
  $('status').className = provider.synced ? 'synced' : ''
}
provider.on('status', showStatus)
provider.on('sync', showStatus)
provider.on('closed', ({ code, reason }) => {
  refusal = `disconnected by the server (${code}): ${reason || 'no reason given'}; reload to retry`
  editor.readOnly = true
  showStatus()
})
provider.on('connection-close', (event) => {
  if (event && event.code === 4529) $('status').textContent = 'server busy: too many new rooms, retrying…'
})

// --- textarea <-> Y.Text. A local edit is the single changed range between the old and
// new value (common prefix and suffix); remote edits keep the caret through relative
// positions. Indices are UTF-16 units on both sides.
let shown = ''
editor.addEventListener('input', () => {
  const now = editor.value
  let start = 0
  while (start < shown.length && start < now.length && shown[start] === now[start]) start++
  let endOld = shown.length
  let endNew = now.length
  while (endOld > start && endNew > start && shown[endOld - 1] === now[endNew - 1]) { endOld--; endNew-- }
  doc.transact(() => {
    if (endOld > start) text.delete(start, endOld - start)
    if (endNew > start) text.insert(start, now.slice(start, endNew))
  }, 'editor')
  shown = now
})
// The caret as relative positions, taken before a remote transaction changes the text.
// assoc -1: the caret sticks to the character before it (the one just typed), so text
// another peer inserts at the same index lands after the caret, not under it.
let caret = null
doc.on('beforeTransaction', (tr) => {
  if (tr.origin === 'editor') return
  caret = [Y.createRelativePositionFromTypeIndex(text, editor.selectionStart, -1),
    Y.createRelativePositionFromTypeIndex(text, editor.selectionEnd, -1)]
})
text.observe((event) => {
  if (event.transaction.origin === 'editor') return
  shown = text.toString()
  editor.value = shown
  if (caret) {
    const sa = Y.createAbsolutePositionFromRelativePosition(caret[0], doc)
    const sb = Y.createAbsolutePositionFromRelativePosition(caret[1], doc)
    if (sa && sb) editor.setSelectionRange(sa.index, sb.index)
  }
})

// --- presence and AI availability
const renderPeople = () => {
  const ul = $('people')
  ul.textContent = ''
  let ai = null
  provider.awareness.getStates().forEach((state, clientId) => {
    if (!state.user) return
    if (state.ai) ai = state.ai
    const li = document.createElement('li')
    const dot = document.createElement('span')
    dot.className = 'dot'
    dot.style.background = state.user.color || '#999'
    li.append(dot, document.createTextNode(state.user.name || String(clientId)))
    if (clientId === doc.clientID) {
      const me = document.createElement('span')
      me.className = 'me'
      me.textContent = '(you)'
      li.append(me)
    }
    ul.append(li)
  })
  $('ai-state').textContent = ai
    ? (ai.available ? `AI ready (${ai.model || 'local model'})${ai.busy ? ', writing…' : ''}` : 'AI agent present, no model loaded')
    : 'no AI agent in this room'
}
provider.awareness.on('change', renderPeople)
renderPeople()

// --- Ask AI: a request the agent answers at the caret (a Yjs relative position, so the
// answer lands there even if text before it changes meanwhile).
let counter = 0
$('ask-button').addEventListener('click', () => {
  const prompt = $('prompt').value.trim()
  if (!prompt) return
  const pos = Y.createRelativePositionFromTypeIndex(text, editor.selectionEnd ?? text.length)
  requests.set(`${doc.clientID}-${counter++}`, {
    prompt,
    from: name,
    status: 'pending',
    pos: Y.encodeRelativePosition(pos)
  })
  $('prompt').value = ''
})
const renderRequests = () => {
  const ul = $('requests')
  ul.textContent = ''
  for (const [key, r] of requests.entries()) {
    if (!key.startsWith(`${doc.clientID}-`)) continue
    const li = document.createElement('li')
    li.textContent = `${r.prompt} — ${r.status}`
    ul.append(li)
  }
}
requests.observe(renderRequests)

window.pocketCollab = { doc, text, requests, provider }
