"""A small, logging KV v2 server with Vault's answer shapes (key-providers.md 4.2), on HTTPS with
a test PKI: the "any other Vault server" the agent's vault-v2 client must work against, with
knobs for the drills (seal, revoke a token, delete a secret, disable or replace a mount, 500s).
It records every request (method, path, query, headers, body) so tests assert pg_tde's shapes."""
import base64
import json
import socket
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit


class FakeVault:
    def __init__(self, pki, port=0):
        self.pki = pki
        self.port = port
        self.lock = threading.Lock()
        self.requests = []
        self.tokens = {"hvs.good-token"}
        self.sealed = False
        self.fail = None  # a status every request gets (e.g. 500)
        self.mounts = {"secret": {"type": "kv", "version": "2"}}
        self.secrets = {}  # (ns, mount, name) -> [{"key": b64, "deleted": bool}]
        self.srv = None
        self.conns = set()

    # ---- drills ---------------------------------------------------------------------------
    def put_key(self, name, raw, mount="secret", ns=""):
        with self.lock:
            self.secrets.setdefault((ns, mount, name), []).append(
                {"key": base64.b64encode(raw).decode(), "deleted": False})

    def delete_latest(self, name, mount="secret", ns=""):  # KV v2 soft delete
        with self.lock:
            self.secrets[(ns, mount, name)][-1]["deleted"] = True

    def undelete_latest(self, name, mount="secret", ns=""):
        with self.lock:
            self.secrets[(ns, mount, name)][-1]["deleted"] = False

    def delete_metadata(self, name, mount="secret", ns=""):
        with self.lock:
            return self.secrets.pop((ns, mount, name))

    def restore(self, name, versions, mount="secret", ns=""):
        with self.lock:
            self.secrets[(ns, mount, name)] = versions

    def key_of(self, name, mount="secret", ns=""):
        with self.lock:
            return base64.b64decode(self.secrets[(ns, mount, name)][-1]["key"])

    def log(self, clear=False):
        with self.lock:
            out = list(self.requests)
            if clear:
                self.requests.clear()
            return out

    # ---- server ---------------------------------------------------------------------------
    def start(self):
        fake = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def setup(self):
                super().setup()
                with fake.lock:
                    fake.conns.add(self.connection)

            def finish(self):
                try:
                    super().finish()
                finally:
                    with fake.lock:
                        fake.conns.discard(self.connection)

            def _send(self, status, body=None):
                data = b"" if body is None else json.dumps(body).encode()
                self.send_response(status)
                if body is not None:
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _handle(self):
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n) if n else b""
                u = urlsplit(self.path)
                rec = {"method": self.command, "path": u.path, "query": u.query,
                       "headers": {k.lower(): v for k, v in self.headers.items()},
                       "body": raw.decode() if raw else None}
                with fake.lock:
                    fake.requests.append(rec)
                    status, body = fake._answer(rec)
                self._send(status, body)

            do_GET = do_POST = do_PUT = _handle

        self.srv = ThreadingHTTPServer(("127.0.0.1", self.port), H)
        self.srv.daemon_threads = True
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.pki["server_cert"], self.pki["server_key"])
        self.srv.socket = ctx.wrap_socket(self.srv.socket, server_side=True)
        self.port = self.srv.server_address[1]
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()
        return self

    def stop(self):
        if self.srv:
            self.srv.shutdown()
            self.srv.server_close()
            self.srv = None
        # A stopped server keeps no connection open: HTTP/1.1 handler threads would
        # otherwise go on answering a client's kept-alive connection.
        with self.lock:
            conns, self.conns = list(self.conns), set()
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
                c.close()
            except OSError:
                pass

    @property
    def url(self):
        return f"https://127.0.0.1:{self.port}"

    def _answer(self, rq):
        env = {"request_id": "r", "lease_id": "", "renewable": False, "lease_duration": 0,
               "wrap_info": None, "warnings": None, "auth": None}
        if self.fail:
            return self.fail, {"errors": ["internal error"]}
        if self.sealed:
            return 503, {"errors": ["Vault is sealed"]}
        if rq["headers"].get("x-vault-token") not in self.tokens:
            return 403, {"errors": ["permission denied"]}
        ns = rq["headers"].get("x-vault-namespace", "")
        p = rq["path"]
        if not p.startswith("/v1/"):
            return 404, {"errors": []}
        p = p[4:]
        if p.startswith("sys/mounts/") and rq["method"] == "GET":
            m = self.mounts.get(p[len("sys/mounts/"):].strip("/"))
            if not m:
                return 400, {"errors": [f"No secret engine mount at {p[11:]}/"]}
            return 200, dict(env, data={"type": m["type"], "options": {"version": m["version"]},
                                        "accessor": "kv_1", "config": {}, "description": "",
                                        "local": False, "seal_wrap": False, "uuid": "u"})
        mount = next((m for m in self.mounts if p.startswith(m + "/")), None)
        if mount is None:
            return 404, {"errors": [f"no handler for route \"{p}\""]}
        rest = p[len(mount) + 1:]
        if self.mounts[mount]["version"] != "2":
            return 404, {"errors": []}
        if rest == "metadata/" and rq["query"] == "list=true":
            keys = sorted(n for (s_ns, s_m, n) in self.secrets if s_ns == ns and s_m == mount)
            return (200, dict(env, data={"keys": keys})) if keys else (404, {"errors": []})
        if rest.startswith("data/"):
            name = rest[5:]
            vers = self.secrets.get((ns, mount, name))
            if rq["method"] == "GET":
                if not vers or vers[-1]["deleted"]:
                    return 404, {"errors": []}
                meta = {"created_time": "2026-12-06T00:00:00Z", "custom_metadata": None,
                        "deletion_time": "", "destroyed": False, "version": len(vers)}
                return 200, dict(env, data={"data": {"key": vers[-1]["key"]}, "metadata": meta})
            body = json.loads(rq["body"] or "{}")
            self.secrets.setdefault((ns, mount, name), []).append(
                {"key": body["data"]["key"], "deleted": False})
            return 200, dict(env, data={"created_time": "2026-12-06T00:00:00Z",
                                        "custom_metadata": None, "deletion_time": "",
                                        "destroyed": False,
                                        "version": len(self.secrets[(ns, mount, name)])})
        return 404, {"errors": []}
