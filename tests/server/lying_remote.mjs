// A fake OpenAI-compatible remote that answers every chat/completions request with the
// same short text and whatever usage the test sets: the numbers a lying or broken cloud
// might report. The usage goes out as raw JSON text (so 18446744073709551615 stays that
// number), or not at all. POST /__control {usage, stream_usage} sets it; GET /__log lists
// the requests' bodies.
//   usage:        raw JSON text of the "usage" value, or null: no usage field at all
//   stream_usage: where a streamed answer puts it: last (one usage-only event before
//                 [DONE], as OpenAI does with include_usage) | every ("usage": null on each
//                 chunk, then the usage event) | repeat (the usage event twice) | absent
import http from 'node:http';

export async function startLyingRemote() {
  const state = { usage: '{"prompt_tokens":5,"completion_tokens":3,"total_tokens":8}',
                  stream_usage: 'last', log: [] };
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      if (req.url === '/__control') {
        Object.assign(state, JSON.parse(body || '{}'));
        res.end('{}');
        return;
      }
      if (req.url === '/__log') {
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify(state.log));
        return;
      }
      let request = {};
      try { request = JSON.parse(body); } catch {}
      state.log.push(request);
      const chat = req.url.endsWith('/chat/completions');
      const base = `"id":"lie-1","created":1,"model":"big","object":"${chat ? 'chat.completion' : 'text_completion'}`;
      const usage = state.usage === null ? '' : `,"usage":${state.usage}`;
      if (!request.stream) {
        const choice = chat ? '{"index":0,"message":{"role":"assistant","content":"hello"},"finish_reason":"stop"}'
                            : '{"index":0,"text":"hello","finish_reason":"stop"}';
        res.setHeader('content-type', 'application/json');
        res.end(`{${base}","choices":[${choice}]${usage}}`);
        return;
      }
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      const every = state.stream_usage === 'every' ? ',"usage":null' : '';
      const piece = (text, finish) => (chat
        ? `{"index":0,"delta":{"content":${JSON.stringify(text)}},"finish_reason":${finish}}`
        : `{"index":0,"text":${JSON.stringify(text)},"finish_reason":${finish}}`);
      const chunk = (choice) => `data: {${base}.chunk","choices":[${choice}]${every}}\n\n`;
      let out = chunk(piece('hel', 'null')) + chunk(piece('lo', '"stop"'));
      if (state.stream_usage !== 'absent' && usage) {
        const ev = `data: {${base}.chunk","choices":[]${usage}}\n\n`;
        out += state.stream_usage === 'repeat' ? ev + ev : ev;
      }
      res.end(out + 'data: [DONE]\n\n');
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const port = server.address().port;
  return {
    url: `http://127.0.0.1:${port}`,
    async set(s) {
      await fetch(`http://127.0.0.1:${port}/__control`, { method: 'POST', body: JSON.stringify(s) });
    },
    log: () => state.log,
    close() { server.closeAllConnections?.(); return new Promise((r) => server.close(r)); },
  };
}
