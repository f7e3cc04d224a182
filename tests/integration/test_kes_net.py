"""The transport of pgcmk's KES servers (src/net/: TLS with client certificates and HTTP/1.1), seen
from a client socket: kept-alive connections, pipelined requests, Expect: 100-continue, chunked
request bodies, HTTP/1.0, heads Go's net/http server refuses (its text answers, then close), and
the handshake without a client certificate (TLS 1.3's certificate_required alert). The key API
itself is test_kes_api.py's."""
import json
import socket
import ssl

import pytest
import requests

import kestools as kt


@pytest.fixture(scope="module")
def env(daemon, tmp_path_factory):
    certs = str(tmp_path_factory.mktemp("kes-net-certs"))
    vault = kt.setup_vault(daemon)
    admin = kt.new_api_key()
    r = kt.create_server(daemon, kt.kes_config(vault, admin=kt.identity_of(admin)), "net")
    assert r.status_code == 201, r.text
    srv = r.json()
    cert = kt.cert_files(admin, certs)
    yield {"daemon": daemon, "srv": srv, "port": srv["port"], "cert": cert, "url": srv["url"]}
    daemon.delete("/emulator/kes/servers/net")


def tls_socket(env, cert=True, version=None):
    ctx = ssl.create_default_context(cafile=env["daemon"].ca)
    if cert:
        ctx.load_cert_chain(*env["cert"])
    if version:
        ctx.minimum_version = ctx.maximum_version = version
    raw = socket.create_connection(("127.0.0.1", env["port"]), timeout=10)
    return ctx.wrap_socket(raw, server_hostname="127.0.0.1")


class Reader:
    """Answers read off one connection: (status, headers, body), the body by Content-Length or
    chunked; None when the server closed the connection."""

    def __init__(self, sock):
        self.sock, self.buf = sock, b""

    def _fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise EOFError
        self.buf += data

    def _line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _take(self, n):
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def answer(self):
        try:
            status = int(self._line().split()[1])
            headers = {}
            while True:
                line = self._line()
                if not line:
                    break
                k, v = line.decode().split(":", 1)
                headers[k.strip().lower()] = v.strip()
            if status < 200:
                return status, headers, b""
            if headers.get("transfer-encoding") == "chunked":
                body = b""
                while True:
                    n = int(self._line().split(b";")[0], 16)
                    chunk = self._take(n + 2)[:n]
                    if n == 0:
                        break
                    body += chunk
                return status, headers, body
            if "content-length" in headers:
                return status, headers, self._take(int(headers["content-length"]))
            while True:  # until the close
                try:
                    self._fill()
                except (EOFError, OSError):
                    break
            body, self.buf = self.buf, b""
            return status, headers, body
        except (EOFError, ConnectionError, ssl.SSLError):
            return None

    def closed(self):
        try:
            self._fill()
        except (EOFError, ConnectionError, ssl.SSLError):
            return True
        return False


def req(method, path, body=b"", extra=""):
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}"
    if body or method in ("POST", "PUT"):
        head += f"Content-Length: {len(body)}\r\n"
    return head.encode() + b"\r\n" + body


def test_keep_alive_and_pipelining(env):
    with tls_socket(env) as s:
        rd = Reader(s)
        s.sendall(req("POST", "/v1/key/create/net-k1"))
        status, h, _ = rd.answer()
        assert status == 200 and "connection" not in h
        s.sendall(req("POST", "/v1/key/generate/net-k1", b"{}"))
        status, h, body = rd.answer()
        assert status == 200 and h["content-type"].startswith("application/json")
        ct = json.loads(body)["ciphertext"]
        # two requests in one write: two answers, in order, on the same connection
        s.sendall(req("GET", "/version") +
                  req("POST", "/v1/key/decrypt/net-k1", json.dumps({"ciphertext": ct}).encode()))
        status, _, body = rd.answer()
        assert status == 200 and "version" in json.loads(body)
        status, _, body = rd.answer()
        assert status == 200 and "plaintext" in json.loads(body)


def test_expect_continue_and_chunked_body(env):
    with tls_socket(env) as s:
        rd = Reader(s)
        s.sendall(req("POST", "/v1/key/create/net-k2"))
        assert rd.answer()[0] == 200
        s.sendall(b"POST /v1/key/generate/net-k2 HTTP/1.1\r\nHost: a\r\n"
                  b"Expect: 100-continue\r\nContent-Length: 2\r\n\r\n")
        assert rd.answer()[0] == 100
        s.sendall(b"{}")
        assert rd.answer()[0] == 200
        s.sendall(b"POST /v1/key/generate/net-k2 HTTP/1.1\r\nHost: a\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n1\r\n{\r\n1;x=y\r\n}\r\n0\r\n\r\n")
        status, _, body = rd.answer()
        assert status == 200 and "ciphertext" in json.loads(body)
    # requests sends a generator's body chunked
    r = requests.post(env["url"] + "/v1/key/generate/net-k2", data=(b for b in [b"{", b"}"]),
                      cert=env["cert"], verify=env["daemon"].ca, timeout=10)
    assert r.status_code == 200 and "plaintext" in r.json()


def test_http10_closes(env):
    with tls_socket(env) as s:
        rd = Reader(s)
        s.sendall(b"GET /version HTTP/1.0\r\n\r\n")
        status, h, body = rd.answer()
        assert status == 200 and h.get("connection") == "close"
        assert "version" in json.loads(body)
        assert rd.closed()


# Go's net/http answers (server.go): the status, and its text in the body
@pytest.mark.parametrize("raw,status,text", [
    (b"GET /version HTTP/1.1\r\n\r\n", 400, "400 Bad Request: missing required Host header"),
    (b"GET /version HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400,
     "400 Bad Request: too many Host headers"),
    (b"GET /version HTTP/1.1\r\nHost: a\r\nBad Header: 1\r\n\r\n", 400, "400 Bad Request"),
    (b"GET /version HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n", 400, "400 Bad Request"),
    (b"GET /version HTTP/3.0\r\nHost: a\r\n\r\n", 505,
     "505 HTTP Version Not Supported: unsupported protocol version"),
    (b"POST /v1/key/create/x HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2"
     b"\r\n\r\n", 400, "400 Bad Request"),
    (b"POST /v1/key/create/x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 501,
     "Unsupported transfer encoding"),
    (b"GET /version HTTP/1.1\r\nHost: a\r\nExpect: 200-ok\r\n\r\n", 417, ""),
    (b"GET /version HTTP/1.1\r\nHost: a\r\nX: " + b"a" * 20000 + b"\r\n\r\n", 431,
     "431 Request Header Fields Too Large"),
])
def test_refused_heads(env, raw, status, text):
    with tls_socket(env) as s:
        rd = Reader(s)
        s.sendall(raw)
        got = rd.answer()
        assert got is not None and got[0] == status, got
        assert got[1].get("connection") == "close"
        if status != 417:
            assert got[1]["content-type"] == "text/plain; charset=utf-8"
            assert got[2].decode() == text, got
        assert rd.closed()
    with tls_socket(env) as s:  # the server goes on
        s.sendall(req("GET", "/version"))
        assert Reader(s).answer()[0] == 200


def test_no_client_certificate(env):
    with pytest.raises((ssl.SSLError, ConnectionError)) as e:
        with tls_socket(env, cert=False, version=ssl.TLSVersion.TLSv1_3) as s:
            s.sendall(req("GET", "/version"))
            s.recv(1)
            pytest.fail("the server answered without a client certificate")
    assert "CERTIFICATE_REQUIRED" in str(e.value).upper(), e.value
    with pytest.raises((ssl.SSLError, ConnectionError)):
        with tls_socket(env, cert=False, version=ssl.TLSVersion.TLSv1_2) as s:
            s.sendall(req("GET", "/version"))
            s.recv(1)
            pytest.fail("the server answered without a client certificate")
