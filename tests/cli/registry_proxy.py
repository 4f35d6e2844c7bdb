#!/usr/bin/env python3
"""A fault-injecting HTTP proxy in front of a real registry, for registry_remote_test.cc.

Forwards every request to the upstream registry (docker-registry) and, for GETs of blobs
larger than 4 KiB (the model layer, not the config), misbehaves as told:
  drop:N          send half the body, then close the connection (N times)
  corrupt         flip one byte of the body (always)
  5xx:N           answer 503 without asking upstream (N times)
  lie_bigger      a Content-Length 100 bytes larger than the body (then close)
  lie_smaller     a Content-Length 100 bytes smaller, and only that many bytes
  slow:RATE       send at most RATE bytes per second
  none            forward faithfully
Control: GET /_proxy/mode?set=MODE, GET /_proxy/stats (JSON: layer_bytes, layer_gets,
ranges), GET /_proxy/reset. Writes its port to --port-file once listening.
Standard library only.
"""
import argparse
import http.client
import http.server
import json
import threading
import time
import urllib.parse

LOCK = threading.Lock()
STATE = {"mode": "none", "count": 0, "rate": 0}
STATS = {"layer_bytes": 0, "layer_gets": 0, "ranges": []}
HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade",
       "proxy-authorization", "proxy-authenticate", "host"}


def take(mode):
    """True when `mode` is on (and uses up one of its N times)."""
    with LOCK:
        if STATE["mode"] != mode:
            return False
        if STATE["count"] > 0:
            STATE["count"] -= 1
            if STATE["count"] == 0:
                STATE["mode"] = "none"
        return True


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    upstream = None

    def log_message(self, *args):
        pass

    def reply(self, status, body=b"", headers=()):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def control(self):
        url = urllib.parse.urlparse(self.path)
        q = urllib.parse.parse_qs(url.query)
        if url.path == "/_proxy/mode":
            name, _, arg = q["set"][0].partition(":")
            with LOCK:
                STATE["mode"] = name
                STATE["count"] = int(arg) if arg and name != "slow" else 0
                STATE["rate"] = int(arg) if name == "slow" else 0
        elif url.path == "/_proxy/reset":
            with LOCK:
                STATS.update({"layer_bytes": 0, "layer_gets": 0, "ranges": []})
        with LOCK:
            body = json.dumps(STATS).encode()
        self.reply(200, body, [("Content-Type", "application/json")])

    def forward(self):
        if self.path.startswith("/_proxy/"):
            return self.control()
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
        is_blob_get = self.command == "GET" and "/blobs/sha256:" in self.path
        if is_blob_get and STATE["mode"] == "5xx" and take("5xx"):
            return self.reply(503, b'{"errors":[{"code":"UNAVAILABLE"}]}')
        conn = http.client.HTTPConnection(self.upstream, timeout=60)
        conn.request(self.command, self.path, body=body, headers=headers)
        res = conn.getresponse()
        data = res.read() if self.command != "HEAD" else b""
        conn.close()
        out_headers = [(k, v) for k, v in res.getheaders()
                       if k.lower() not in HOP and k.lower() != "content-length"]
        layer = is_blob_get and res.status in (200, 206) and len(data) > 4096
        if not layer:
            self.send_response(res.status)
            for k, v in out_headers:
                self.send_header(k, v)
            self.send_header("Content-Length",
                             res.getheader("Content-Length") if self.command == "HEAD"
                             else str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
            return
        with LOCK:
            STATS["layer_gets"] += 1
            STATS["ranges"].append(self.headers.get("Range") or "")
        send, declared, close_after = data, len(data), False
        if take("corrupt"):
            send = bytes([data[0] ^ 0xFF]) + data[1:]
        elif take("drop"):
            send, close_after = data[: len(data) // 2], True
        elif take("lie_bigger"):
            declared, close_after = len(data) + 100, True
        elif take("lie_smaller"):
            declared = len(data) - 100
            send = data[:declared]
        self.send_response(res.status)
        for k, v in out_headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(declared))
        self.end_headers()
        step = 16384
        for i in range(0, len(send), step):
            piece = send[i:i + step]
            try:
                self.wfile.write(piece)
                self.wfile.flush()
            except OSError:
                return
            with LOCK:
                STATS["layer_bytes"] += len(piece)
                rate = STATE["rate"] if STATE["mode"] == "slow" else 0
            if rate:
                time.sleep(len(piece) / rate)
        if close_after:
            self.close_connection = True
            self.wfile.flush()
            self.connection.shutdown(2)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = forward


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--port-file", required=True)
    a = ap.parse_args()
    Handler.upstream = a.upstream
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    with open(a.port_file + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    import os
    os.rename(a.port_file + ".tmp", a.port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
