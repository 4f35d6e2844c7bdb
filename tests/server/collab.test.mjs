// `pocket serve --collab` mounts the sync layer's y-websocket rooms on /collab/<room>: a
// WebSocket client (npm ws) completes the handshake and receives the server's first
// y-protocols sync message, while the OpenAI API keeps answering on the same port.
import { createRequire } from 'node:module';
import path from 'node:path';
import { repo, startServer, check, done } from './lib.mjs';

const require = createRequire(path.join(repo, 'tests/node/package.json'));
const WebSocket = require('ws');
const server = await startServer(['--fake-model', 'tiny', '--collab', '--quiet']);
try {
  const first = await new Promise((resolve) => {
    const ws = new WebSocket(`ws://127.0.0.1:${server.port}/collab/room-1`);
    ws.binaryType = 'nodebuffer';
    const timer = setTimeout(() => { ws.terminate(); resolve(null); }, 5000);
    ws.on('message', (data) => { clearTimeout(timer); ws.close(); resolve(Buffer.from(data)); });
    ws.on('error', () => { clearTimeout(timer); resolve(null); });
  });
  check(first !== null && first.length >= 2 && first[0] === 0,
        `websocket on /collab/room-1 got a sync message (${first ? first.subarray(0, 4).toString('hex') : 'none'})`);
  const health = await fetch(`${server.url}/health`);
  check(health.status === 200, 'HTTP API on the same port');
  const plain = await fetch(`${server.url}/collab/room-1`);
  check(plain.status === 404, `plain GET on /collab is not an upgrade -> ${plain.status}`);
} finally {
  check(await server.stop() === 0, 'server stops cleanly with a collab room open');
}
done();
