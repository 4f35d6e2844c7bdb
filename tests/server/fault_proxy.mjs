// A fault-injecting HTTP proxy that stands between `pocket serve` and its "cloud" (another
// `pocket serve`). Every request is logged (method, path, headers, body) so tests can
// assert what left the machine. The fault mode is set per test through
// POST /__control {"mode": ...}; GET /__log returns the log.
// Modes: pass | delay (waits delay_ms before forwarding) | reset (destroys the socket) |
// error500 | slow_body (sends headers, then dribbles the body over delay_ms) | garbage |
// cut_after (forwards cut_bytes of the body as they come, then destroys the socket) |
// stall_after (forwards cut_bytes of the body, then sends nothing more).
// In pass, delay and the cut modes the upstream body is forwarded as it arrives, so a
// streamed (SSE) answer stays a stream through the proxy.
import http from 'node:http';

export async function startFaultProxy(upstreamUrl) {
  const upstream = new URL(upstreamUrl);
  const state = { mode: 'pass', delay_ms: 2000, cut_bytes: 0, log: [] };
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', async () => {
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
      state.log.push({ method: req.method, url: req.url, headers: req.headers, body, mode: state.mode });
      const mode = state.mode;
      if (mode === 'reset') { req.socket.destroy(); return; }
      if (mode === 'error500') {
        res.statusCode = 500;
        res.end('{"error":{"message":"injected failure","type":"server_error"}}');
        return;
      }
      if (mode === 'garbage') { res.end('this is not json'); return; }
      if (mode === 'delay') await new Promise((r) => setTimeout(r, state.delay_ms));
      if (res.destroyed) return;
      const up = http.request({ host: upstream.hostname, port: upstream.port, method: req.method,
                                path: req.url, headers: { ...req.headers, host: upstream.host } },
                              (ur) => {
        if (mode !== 'slow_body') {
          res.writeHead(ur.statusCode, ur.headers);
          let sent = 0;
          const cut = mode === 'cut_after' || mode === 'stall_after';
          ur.on('data', (d) => {
            if (res.destroyed || (cut && sent >= state.cut_bytes)) return;
            const part = cut ? d.subarray(0, state.cut_bytes - sent) : d;
            sent += part.length;
            res.write(part);
            if (cut && sent >= state.cut_bytes && mode === 'cut_after') {
              // Let the last bytes leave before the connection drops.
              setTimeout(() => res.socket?.destroy(), 50);
            }
          });
          ur.on('end', () => { if (!cut) res.end(); });
          return;
        }
        let ubody = '';
        ur.on('data', (d) => { ubody += d; });
        ur.on('end', async () => {
          res.writeHead(ur.statusCode, { 'content-type': 'application/json',
                                          'content-length': Buffer.byteLength(ubody) });
          for (const ch of ubody) {
            if (res.destroyed) return;
            res.write(ch);
            await new Promise((r) => setTimeout(r, state.delay_ms / Math.max(1, ubody.length) * 4));
          }
          res.end();
        });
      });
      up.on('error', () => { res.statusCode = 502; res.end(); });
      up.end(body);
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
    clearLog() { state.log.length = 0; },
    close() { server.closeAllConnections?.(); return new Promise((r) => server.close(r)); },
  };
}
