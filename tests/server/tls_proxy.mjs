// A TLS-terminating proxy: accepts TLS on loopback with the given key and certificate and
// pipes the decrypted bytes to a plain TCP upstream (here tests/server/fault_proxy.mjs,
// which logs the HTTP requests that got through). It records every completed handshake
// (the SNI name the client sent, the protocol) and every failed one (the error node saw,
// e.g. the client's "unknown CA" alert), so tests can tell a refused certificate from a
// request that never left the router.
import net from 'node:net';
import tls from 'node:tls';

export async function startTlsProxy(upstreamUrl, tlsOptions) {
  const upstream = new URL(upstreamUrl);
  const handshakes = [];
  const failures = [];
  const sockets = new Set();
  const server = tls.createServer(tlsOptions, (client) => {
    handshakes.push({ servername: client.servername || null, protocol: client.getProtocol() });
    const up = net.connect(Number(upstream.port), upstream.hostname);
    sockets.add(client);
    sockets.add(up);
    const drop = () => {
      client.destroy();
      up.destroy();
      sockets.delete(client);
      sockets.delete(up);
    };
    client.on('error', drop);
    up.on('error', drop);
    client.on('close', drop);
    up.on('close', drop);
    client.pipe(up);
    up.pipe(client);
  });
  server.on('tlsClientError', (err, socket) => {
    failures.push(err.code || err.message);
    socket.destroy();
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const port = server.address().port;
  return {
    port,
    handshakes: () => handshakes,
    failures: () => failures,
    close() {
      for (const s of sockets) s.destroy();
      return new Promise((r) => server.close(r));
    },
  };
}
