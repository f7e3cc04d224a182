"""A small, logging MinIO KES server (key-providers.md 5.1-5.5) on HTTPS that asks for any client
certificate, as KES does (RequireAnyClientCert: self-signed API-key certificates are accepted):
the "any other KES server" the agent's KES client must work against. The identity is the hex
SHA-256 of the client certificate's SubjectPublicKeyInfo; keys answer generate / decrypt / create
with KES's shapes and KES's ciphertext format (HMAC-SHA256-derived AES-256-GCM key,
ct || tag || iv || nonce, context as AAD). Knobs for the drills: the identities allowed (a policy),
delete or replace a key, a status every request gets (502 keystore failure, 500), stop.
It records every request (method, path, headers, body, identity) so tests assert the shapes.

Python's ssl module cannot accept a client certificate it cannot verify, so TLS is pyOpenSSL's
(a verify callback that accepts any certificate) with a small HTTP/1.1 reader (keep-alive,
Content-Length bodies)."""
import base64
import hashlib
import hmac
import json
import os
import socket
import threading

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from OpenSSL import SSL

NOT_AUTHORIZED = "not authorized: insufficient permissions"


def kes_encrypt(secret, plaintext, context=b""):
    iv, nonce = os.urandom(16), os.urandom(12)
    k = hmac.new(secret, iv, hashlib.sha256).digest()
    return AESGCM(k).encrypt(nonce, plaintext, context or None) + iv + nonce


def kes_decrypt(secret, ct, context=b""):
    if len(ct) < 16 + 28:
        raise ValueError("short")
    sealed, iv, nonce = ct[:-28], ct[-28:-12], ct[-12:]
    k = hmac.new(secret, iv, hashlib.sha256).digest()
    return AESGCM(k).decrypt(nonce, sealed, context or None)


class FakeKes:
    def __init__(self, pki, port=0):
        self.pki = pki
        self.port = port
        self.lock = threading.Lock()
        self.requests = []
        self.keys = {}  # name -> 32-byte secret
        self.allowed = None  # None: every identity may do everything; else {identity: {ops}}
        self.fail = None  # (status, message) every request gets
        self.sock = None
        self.conns = set()
        self.running = False

    # ---- drills ---------------------------------------------------------------------------
    def add_key(self, name, secret=None):
        with self.lock:
            self.keys[name] = secret or os.urandom(32)

    def delete_key(self, name):
        with self.lock:
            return self.keys.pop(name)

    def restore_key(self, name, secret):
        with self.lock:
            self.keys[name] = secret

    def allow(self, identity, *ops):
        with self.lock:
            if self.allowed is None:
                self.allowed = {}
            self.allowed[identity] = set(ops)

    def log(self, clear=False):
        with self.lock:
            out = list(self.requests)
            if clear:
                self.requests.clear()
            return out

    # ---- server ---------------------------------------------------------------------------
    def start(self):
        ctx = SSL.Context(SSL.TLS_SERVER_METHOD)
        ctx.use_certificate_file(self.pki["server_cert"])
        ctx.use_privatekey_file(self.pki["server_key"])
        ctx.set_verify(SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT, lambda *a: True)
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", self.port))
        s.listen(16)
        self.port = s.getsockname()[1]
        self.sock = s
        self.ctx = ctx
        self.running = True
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def stop(self):
        self.running = False
        if self.sock:
            try:
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.sock.close()
            self.sock = None
        with self.lock:  # a stopped server keeps no kept-alive connection open
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

    def _accept(self):
        while self.running:
            try:
                raw, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.conns.add(raw)
            threading.Thread(target=self._serve, args=(raw,), daemon=True).start()

    def _serve(self, raw):
        conn = SSL.Connection(self.ctx, raw)
        conn.set_accept_state()
        buf = b""
        try:
            conn.do_handshake()
            cert = conn.get_peer_certificate()
            identity = None
            if cert is not None:
                spki = cert.to_cryptography().public_key().public_bytes(
                    serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
                identity = hashlib.sha256(spki).hexdigest()
            while self.running:
                while b"\r\n\r\n" not in buf:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buf += data
                head, buf = buf.split(b"\r\n\r\n", 1)
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {}
                for ln in lines[1:]:
                    k, _, v = ln.partition(":")
                    headers[k.strip().lower()] = v.strip()
                n = int(headers.get("content-length") or 0)
                while len(buf) < n:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buf += data
                body, buf = buf[:n], buf[n:]
                rec = {"method": method, "path": path, "headers": headers,
                       "body": body.decode() if body else None, "identity": identity}
                with self.lock:
                    self.requests.append(rec)
                    status, out = self._answer(rec)
                data = b"" if out is None else json.dumps(out).encode()
                reason = {200: "OK", 400: "Bad Request", 403: "Forbidden", 404: "Not Found",
                          500: "Internal Server Error", 502: "Bad Gateway"}.get(status, "X")
                hdr = f"HTTP/1.1 {status} {reason}\r\nContent-Length: {len(data)}\r\n"
                if out is not None:
                    hdr += "Content-Type: application/json\r\n"
                conn.sendall(hdr.encode() + b"\r\n" + data)
        except (SSL.Error, OSError, ValueError):
            return
        finally:
            with self.lock:
                self.conns.discard(raw)
            try:
                raw.close()
            except OSError:
                pass

    def _answer(self, rq):
        if self.fail:
            return self.fail[0], {"message": self.fail[1]}
        parts = rq["path"].split("/")
        if len(parts) != 5 or parts[1] != "v1" or parts[2] != "key":
            return 404, {"message": "not found"}
        op, name = parts[3], parts[4]
        if self.allowed is not None and op not in self.allowed.get(rq["identity"], ()):
            return 403, {"message": NOT_AUTHORIZED}
        try:
            body = json.loads(rq["body"]) if rq["body"] else {}
            ctx = base64.b64decode(body.get("context", ""), validate=True)
        except (ValueError, AttributeError):
            return 400, {"message": "invalid request body"}
        if op == "create":
            if name in self.keys:
                return 400, {"message": "key already exists"}
            self.keys[name] = os.urandom(32)
            return 200, None
        if name not in self.keys:
            return 404, {"message": "key does not exist"}
        secret = self.keys[name]
        if op == "generate":
            pt = os.urandom(32)
            return 200, {"plaintext": base64.b64encode(pt).decode(),
                         "ciphertext": base64.b64encode(kes_encrypt(secret, pt, ctx)).decode()}
        if op == "decrypt":
            try:
                ct = base64.b64decode(body.get("ciphertext", ""), validate=True)
                pt = kes_decrypt(secret, ct, ctx)
            except Exception:  # noqa: BLE001 - any failure is KES's "not authentic"
                return 400, {"message": "decryption failed: ciphertext is not authentic"}
            return 200, {"plaintext": base64.b64encode(pt).decode()}
        return 404, {"message": "not found"}
