// The chat page of `pocket serve`: a conversation with a model through the server's own
// OpenAI-compatible API on the same origin. GET /v1/models fills the model picker; each
// message is one POST /v1/chat/completions with stream: true, read as server-sent events
// and shown token by token; Stop aborts that fetch, and the server, seeing the client gone,
// cancels the generation (pocket_cancelled_requests_total{stage="generating"}). Errors are
// shown as the API words them ({"error": {"message"}}). No dependencies, no build step.

const $ = (id) => document.getElementById(id)
const log = $('log')
const input = $('input')
const modelSelect = $('model')
const sendButton = $('send')
const stopButton = $('stop')
const errorBox = $('error')

// Settings persist per browser; the API key only where the user typed one.
const saved = JSON.parse(localStorage.getItem('pocket-chat') || '{}')
for (const id of ['max-tokens', 'temperature', 'system', 'api-key']) {
  if (saved[id] !== undefined) $(id).value = saved[id]
  $(id).addEventListener('change', () => {
    saved[id] = $(id).value
    localStorage.setItem('pocket-chat', JSON.stringify(saved))
  })
}
modelSelect.addEventListener('change', () => {
  saved.model = modelSelect.value
  localStorage.setItem('pocket-chat', JSON.stringify(saved))
})

let messages = []  // the conversation sent with each request: {role, content}
let controller = null  // the AbortController of the request in flight, if any

function headers () {
  const h = { 'Content-Type': 'application/json' }
  const key = $('api-key').value.trim()
  if (key) h.Authorization = `Bearer ${key}`
  return h
}

function showError (text) {
  errorBox.textContent = text
  errorBox.hidden = !text
}

// The API's own words for a failed response: its {"error": {"message"}} body when there is
// one, else the status line; a 401 also says where the key goes.
async function describeFailure (response) {
  let message = `${response.status} ${response.statusText}`.trim()
  try {
    const body = await response.json()
    if (body && body.error && body.error.message) message = `${response.status}: ${body.error.message}`
  } catch { /* not JSON: keep the status line */ }
  if (response.status === 401) message += ' (set the API key under Settings)'
  return message
}

async function loadModels () {
  try {
    const response = await fetch('/v1/models', { headers: headers() })
    if (!response.ok) throw new Error(await describeFailure(response))
    const { data } = await response.json()
    modelSelect.replaceChildren(...data.map((m) => {
      const option = document.createElement('option')
      option.value = m.id
      option.textContent = m.owned_by && m.owned_by.startsWith('remote:')
        ? `${m.id} (${m.owned_by})`
        : m.id === 'auto' ? 'auto (router decides)' : m.id
      return option
    }))
    if (saved.model && data.some((m) => m.id === saved.model)) modelSelect.value = saved.model
    showError('')
  } catch (e) {
    modelSelect.replaceChildren(new Option('no models', ''))
    showError(`Cannot list the models: ${e.message}`)
  }
}
$('api-key').addEventListener('change', loadModels)

function addMessage (role, text) {
  const div = document.createElement('div')
  div.className = `msg ${role}`
  div.textContent = text
  log.append(div)
  log.scrollTop = log.scrollHeight
  return div
}

function addNote (div, text) {
  const note = document.createElement('span')
  note.className = 'note'
  note.textContent = text
  div.append(note)
}

function setBusy (busy) {
  document.body.dataset.state = busy ? 'streaming' : 'idle'
  sendButton.disabled = busy
  stopButton.disabled = !busy
}

// Reads the SSE body: events are separated by a blank line; each "data:" line holds one
// JSON chunk, or [DONE]. Calls onChunk with every parsed chunk.
async function readEvents (response, onChunk) {
  const reader = response.body.getReader()
  const decoder = new TextDecoder()
  let buffer = ''
  for (;;) {
    const { value, done } = await reader.read()
    if (done) return
    buffer += decoder.decode(value, { stream: true })
    let end
    while ((end = buffer.search(/\r?\n\r?\n/)) >= 0) {
      const event = buffer.slice(0, end)
      buffer = buffer.slice(end).replace(/^\r?\n\r?\n/, '')
      const data = event.split(/\r?\n/).filter((l) => l.startsWith('data:'))
        .map((l) => l.slice(5).trimStart()).join('\n')
      if (!data) continue
      if (data === '[DONE]') return
      onChunk(JSON.parse(data))
    }
  }
}

async function send (text) {
  showError('')
  const asked = addMessage('user', text)
  messages.push({ role: 'user', content: text })
  const reply = addMessage('assistant', '')
  reply.classList.add('streaming')
  const system = $('system').value.trim()
  const body = {
    model: modelSelect.value || 'auto',
    messages: system ? [{ role: 'system', content: system }, ...messages] : messages,
    stream: true,
    max_tokens: Number($('max-tokens').value) || 512,
    temperature: Number($('temperature').value)
  }
  controller = new AbortController()
  setBusy(true)
  let content = ''
  let finish = null
  try {
    const response = await fetch('/v1/chat/completions', {
      method: 'POST', headers: headers(), body: JSON.stringify(body), signal: controller.signal
    })
    if (!response.ok) throw new Error(await describeFailure(response))
    await readEvents(response, (chunk) => {
      if (chunk.error) throw new Error(chunk.error.message || JSON.stringify(chunk.error))
      const choice = chunk.choices && chunk.choices[0]
      if (!choice) return
      if (choice.delta && choice.delta.content) {
        content += choice.delta.content
        reply.textContent = content
        log.scrollTop = log.scrollHeight
      }
      if (choice.finish_reason) finish = choice.finish_reason
    })
    if (finish === 'length') addNote(reply, 'stopped at the token limit (Settings: Max tokens)')
  } catch (e) {
    if (e.name === 'AbortError') {
      addNote(reply, 'stopped')
    } else {
      showError(e instanceof TypeError ? `Cannot reach the server: ${e.message}` : e.message)
      if (!content) {
        // Nothing came back: the message goes back into the box to retry, not into history.
        reply.remove()
        asked.remove()
        messages.pop()
        if (!input.value) input.value = text
      }
    }
  } finally {
    reply.classList.remove('streaming')
    if (content) messages.push({ role: 'assistant', content })
    controller = null
    setBusy(false)
    input.focus()
  }
}

$('composer').addEventListener('submit', (event) => {
  event.preventDefault()
  const text = input.value.trim()
  if (!text || controller) return
  input.value = ''
  send(text)
})
input.addEventListener('keydown', (event) => {
  if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
    event.preventDefault()
    $('composer').requestSubmit()
  }
})
stopButton.addEventListener('click', () => { if (controller) controller.abort() })
$('new-chat').addEventListener('click', () => {
  if (controller) controller.abort()
  messages = []
  log.replaceChildren()
  showError('')
  input.focus()
})

setBusy(false)
loadModels()
