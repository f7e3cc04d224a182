"""Helpers for the KMIP listener's tests: TTLV request bytes, mutual-TLS clients, openssl PKIs.

Used by test_kmip_tls.py and test_kmip_clients.py (h-net). Nothing here sleeps: every wait is a
socket timeout or a bounded poll.
"""
import os
import socket
import ssl
import struct
import subprocess

import pytest

from conftest import DaemonPool

REQUEST_MESSAGE = 0x420078
RESPONSE_MESSAGE = 0x42007B


def ttlv(tag, typ, val):
    """One TTLV item: typ 1 structure (val = list of items), 2 integer, 5 enumeration, else bytes."""
    if typ == 1:
        body = b"".join(val)
    elif typ == 2:
        body = struct.pack(">i", val)
    elif typ == 5:
        body = struct.pack(">I", val)
    else:
        body = val
    pad = (8 - len(body) % 8) % 8
    return struct.pack(">I", tag)[1:] + bytes([typ]) + struct.pack(">I", len(body)) + body + b"\0" * pad


def request(op=0x1E, major=1, minor=4):
    """A Request Message with one batch item (default: Discover Versions, KMIP 1.4)."""
    ver = ttlv(0x420069, 1, [ttlv(0x42006A, 2, major), ttlv(0x42006B, 2, minor)])
    hdr = ttlv(0x420077, 1, [ver, ttlv(0x42000D, 2, 1)])
    bi = ttlv(0x42000F, 1, [ttlv(0x42005C, 5, op), ttlv(0x420079, 1, [])])
    return ttlv(REQUEST_MESSAGE, 1, [hdr, bi])


def parse(buf):
    """Decodes TTLV into (tag, type, value) with structures as lists (enough for assertions)."""
    out, off = [], 0
    while off < len(buf):
        tag = int.from_bytes(buf[off:off + 3], "big")
        typ, n = buf[off + 3], struct.unpack(">I", buf[off + 4:off + 8])[0]
        body = buf[off + 8:off + 8 + n]
        if typ == 1:
            val = parse(body)
        elif typ == 2:
            val = struct.unpack(">i", body)[0]
        elif typ == 5:
            val = struct.unpack(">I", body)[0]
        else:
            val = body
        out.append((tag, typ, val))
        off += 8 + n + (8 - n % 8) % 8
    return out


def find(items, tag):
    for t, _, v in items:
        if t == tag:
            return v
    return None


def context(ca, cert=None, key=None, version=None, ciphers=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(ca)
    if cert:
        ctx.load_cert_chain(cert, key)
    if version:
        ctx.minimum_version = ctx.maximum_version = version
    if ciphers:
        ctx.set_ciphers(ciphers)
    return ctx


def connect(port, ca, cert=None, key=None, version=None, ciphers=None, timeout=10):
    """A TLS connection to the KMIP port (handshake done, from the client's point of view)."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        return context(ca, cert, key, version, ciphers).wrap_socket(raw,
                                                                    server_hostname="localhost")
    except Exception:
        raw.close()
        raise


def recv_exact(s, n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            raise EOFError(f"closed after {len(b)} of {n} bytes")
        b += c
    return b


def roundtrip(s, req=None):
    """Sends one request message, returns the response message's bytes."""
    s.sendall(req if req is not None else request())
    h = recv_exact(s, 8)
    return h + recv_exact(s, struct.unpack(">I", h[4:])[0])


def check_response(resp, major=1, minor=4):
    """resp is a Response Message whose header carries the protocol version asked for."""
    top = parse(resp)
    assert len(top) == 1 and top[0][0] == RESPONSE_MESSAGE and top[0][1] == 1, resp[:16].hex()
    hdr = find(top[0][2], 0x42007A)
    ver = find(hdr, 0x420069)
    assert (find(ver, 0x42006A), find(ver, 0x42006B)) == (major, minor), ver
    assert find(top[0][2], 0x42000F) is not None, "no batch item"
    return top[0][2]


def refused(port, ca, cert=None, key=None, version=None):
    """Connects and tries one round trip; returns the error text (TLS 1.3 servers refuse a client
    certificate after the client's side of the handshake is done: the alert comes on read)."""
    try:
        s = connect(port, ca, cert, key, version)
    except (ssl.SSLError, ConnectionError, OSError) as e:
        return str(e)
    try:
        roundtrip(s)
    except (ssl.SSLError, ConnectionError, EOFError, OSError) as e:
        return str(e) or type(e).__name__
    finally:
        s.close()
    pytest.fail("the listener served a connection it should have refused")


def openssl(*args, cwd=None):
    r = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout


def make_cert(d, name, ca_cert, ca_key, cn, eku="clientAuth", days=30):
    """A P-256 key and certificate CN=cn signed by ca_cert/ca_key; eku None = no EKU."""
    key, csr, crt = (os.path.join(d, f"{name}.{x}") for x in ("key", "csr", "pem"))
    ext = os.path.join(d, f"{name}.ext")
    with open(ext, "w") as f:
        f.write("basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n")
        if eku:
            f.write(f"extendedKeyUsage={eku}\n")
    openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", key)
    openssl("req", "-new", "-key", key, "-subj", f"/O=test/CN={cn}", "-out", csr)
    openssl("x509", "-req", "-in", csr, "-CA", ca_cert, "-CAkey", ca_key, "-CAcreateserial",
            "-days", str(days), "-sha256", "-extfile", ext, "-out", crt)
    return crt, key


def make_ca(d, name="other-ca"):
    key, crt = os.path.join(d, f"{name}-key.pem"), os.path.join(d, f"{name}.pem")
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", key, "-out", crt, "-subj", f"/CN={name}", "-days", "30")
    return crt, key


def kmip_daemon(root, *flags):
    """A pool with one daemon whose KMIP listener takes any free port."""
    pool = DaemonPool(root)
    d = pool.start("--kmip-port", "0", *flags)
    return pool, d


def kmip_port(d):
    port = d.get("/emulator/info").json()["ports"]["kmip"]
    assert isinstance(port, int) and port > 0, port
    return port


def new_client(d, name):
    r = d.post("/emulator/kmip/clients", json={"name": name})
    assert r.status_code in (200, 201), r.text
    return r.json()
