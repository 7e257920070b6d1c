#!/usr/bin/env python3
"""HTTPS with basic auth in front of a Schema Registry, as production
registries are often exposed (a TLS-terminating proxy that checks
credentials): the tests' registry over TLS with a password, for the client's
side of it (tests/all/kafka_secure.rs). Python's standard library only.

    registry_proxy.py --listen 127.0.0.1:PORT --upstream http://127.0.0.1:8081 \
        --cert server.pem --key server.key --user alice --password-env VAR

Requests without the right `Authorization: Basic` header get 401 with
Confluent's error body (40101); others are forwarded to the upstream as they
are (method, path, body, content type) and its answer returned. Prints
"listening" once it accepts connections.
"""
import argparse
import base64
import hmac
import os
import ssl
import sys
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", required=True, help="host:port")
    ap.add_argument("--upstream", required=True, help="the registry's http:// URL")
    ap.add_argument("--cert", required=True, help="the server certificate (PEM)")
    ap.add_argument("--key", required=True, help="its private key (PEM)")
    ap.add_argument("--user", required=True)
    ap.add_argument("--password-env", required=True,
                    help="the environment variable holding the password")
    args = ap.parse_args()
    password = os.environ[args.password_env]
    expected = "Basic " + base64.b64encode(f"{args.user}:{password}".encode()).decode()
    upstream = args.upstream.rstrip("/")

    class Handler(BaseHTTPRequestHandler):
        def answer(self, status, body, content_type):
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            if status == 401:
                self.send_header("WWW-Authenticate", 'Basic realm="schema-registry"')
            self.end_headers()
            self.wfile.write(body)

        def forward(self):
            given = self.headers.get("Authorization", "")
            if not hmac.compare_digest(given.encode(), expected.encode()):
                body = b'{"error_code": 40101, "message": "Unauthorized"}'
                self.answer(401, body, "application/vnd.schemaregistry.v1+json")
                return
            length = int(self.headers.get("Content-Length") or 0)
            data = self.rfile.read(length) if length else None
            req = urllib.request.Request(upstream + self.path, data=data, method=self.command)
            for h in ("Content-Type", "Accept"):
                if self.headers.get(h):
                    req.add_header(h, self.headers[h])
            try:
                with urllib.request.urlopen(req, timeout=30) as r:
                    self.answer(r.status, r.read(), r.headers.get("Content-Type", "application/json"))
            except urllib.error.HTTPError as e:
                self.answer(e.code, e.read(), e.headers.get("Content-Type", "application/json"))

        do_GET = do_POST = do_PUT = do_DELETE = forward

        def log_message(self, *_):
            pass

    host, port = args.listen.rsplit(":", 1)
    server = ThreadingHTTPServer((host, int(port)), Handler)
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(args.cert, args.key)
    server.socket = tls.wrap_socket(server.socket, server_side=True)
    print("listening", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
