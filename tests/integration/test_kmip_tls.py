"""The KMIP listener (src/kmip/listener.c): mutual TLS 1.2 and 1.3 on --kmip-port, what it refuses
at the handshake, the framing of request messages, and that a refused or closed client never
stops it from serving the next one."""
import os
import socket
import ssl
import struct
import time

import pytest

from conftest import DaemonPool, poll_until
from kmipnet import (check_response, connect, kmip_daemon, kmip_port, make_ca, make_cert,
                     new_client, recv_exact, refused, request, roundtrip)

TIMEOUT = 3  # the daemon's --timeout: a truncated message is dropped after it


@pytest.fixture(scope="module")
def kd(tmp_path_factory):
    pool, d = kmip_daemon(str(tmp_path_factory.mktemp("kmip-tls")), "--timeout", str(TIMEOUT))
    d.kport = kmip_port(d)
    d.jane = new_client(d, "jane_doe")
    yield d
    problems = pool.finish()
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


def files(c):
    f = c["files"]
    return f["caCertificate"], f["certificate"], f["key"]


def good(d, version=None):
    """A client with a live certificate gets an answer: the daemon is still serving."""
    ca, cert, key = files(d.jane)
    with connect(d.kport, ca, cert, key, version) as s:
        check_response(roundtrip(s))


def closed_within(s, seconds):
    """Reads until the peer closes; returns the seconds it took (fails if it stays open)."""
    s.settimeout(seconds)
    t0 = time.monotonic()
    try:
        while True:
            if not s.recv(4096):
                break
    except (ssl.SSLError, ConnectionError):
        pass
    except socket.timeout:
        pytest.fail(f"the connection stayed open for {seconds}s")
    return time.monotonic() - t0


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_both_versions_handshake_and_keep_alive(kd, version):
    ca, cert, key = files(kd.jane)
    with connect(kd.kport, ca, cert, key, version) as s:
        assert s.version() == {ssl.TLSVersion.TLSv1_2: "TLSv1.2",
                               ssl.TLSVersion.TLSv1_3: "TLSv1.3"}[version]
        # The server's certificate is ECDSA (cheap handshakes) from pgcmk's CA.
        assert "ECDSA" in s.cipher()[0] or version == ssl.TLSVersion.TLSv1_3, s.cipher()
        for major, minor in [(1, 4), (1, 0), (1, 2), (1, 4)]:  # one connection, many messages
            check_response(roundtrip(s, request(major=major, minor=minor)), major, minor)


def test_rsa_only_tls12_client_connects(kd):
    """TLS 1.2 clients offering only RSA key exchange get the RSA certificate (made in the
    background on a new data directory, so wait for it, bounded)."""
    ca, cert, key = files(kd.jane)

    def attempt():
        try:
            with connect(kd.kport, ca, cert, key, ssl.TLSVersion.TLSv1_2, "AES128-SHA256") as s:
                check_response(roundtrip(s))
                return s.cipher()[0]
        except ssl.SSLError:
            return None

    assert poll_until(attempt, timeout=20, interval=0.1, what="an RSA handshake") == "AES128-SHA256"


def test_server_certificate_file_verifies_the_listener(kd):
    info = kd.get("/emulator/info").json()
    assert info["kmip"]["port"] == kd.kport
    bundle = info["kmip"]["serverCertificate"]
    assert os.path.isfile(bundle) and open(bundle).read().count("BEGIN CERTIFICATE") == 2
    assert info["kmip"]["clientsDirectory"] == os.path.join(os.path.realpath(kd.data_dir), "kmip",
                                                            "clients")
    _, cert, key = files(kd.jane)
    with connect(kd.kport, bundle, cert, key) as s:  # the hostname "localhost" is checked too
        check_response(roundtrip(s))
    with pytest.raises(ssl.SSLCertVerificationError):  # and it names only the loopback names
        ctx = ssl.create_default_context(cafile=bundle)
        ctx.load_cert_chain(cert, key)
        with socket.create_connection(("127.0.0.1", kd.kport)) as raw:
            ctx.wrap_socket(raw, server_hostname="kmip.example.com")


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_no_client_certificate_is_refused(kd, version):
    ca, _, _ = files(kd.jane)
    err = refused(kd.kport, ca, version=version)
    assert "CERTIFICATE_REQUIRED" in err or "HANDSHAKE_FAILURE" in err or "alert" in err, err
    good(kd)


def test_certificate_of_another_ca_is_refused(kd, tmp_path):
    other_ca, other_key = make_ca(str(tmp_path))
    cert, key = make_cert(str(tmp_path), "jane", other_ca, other_key, "jane_doe")
    ca, _, _ = files(kd.jane)
    err = refused(kd.kport, ca, cert, key)
    assert "UNKNOWN_CA" in err, err
    good(kd)


def test_certificate_without_client_auth_is_refused(kd, tmp_path):
    """Signed by pgcmk's own CA, but with no EKU or with serverAuth only: not a client."""
    ca_cert, ca_key = os.path.join(kd.data_dir, "ca.pem"), os.path.join(kd.data_dir, "ca-key.pem")
    ca, _, _ = files(kd.jane)
    for eku in (None, "serverAuth"):
        cert, key = make_cert(str(tmp_path), f"noeku-{eku}", ca_cert, ca_key, "jane_doe", eku=eku)
        err = refused(kd.kport, ca, cert, key)
        assert "UNSUPPORTED_CERTIFICATE" in err, (eku, err)
    good(kd)


def test_certificate_not_issued_to_a_client_is_refused_as_revoked(kd, tmp_path):
    """pgcmk's CA and EKU clientAuth, but not a certificate the clients API issued."""
    ca_cert, ca_key = os.path.join(kd.data_dir, "ca.pem"), os.path.join(kd.data_dir, "ca-key.pem")
    cert, key = make_cert(str(tmp_path), "forged", ca_cert, ca_key, "jane_doe")
    ca, _, _ = files(kd.jane)
    for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        err = refused(kd.kport, ca, cert, key, version)
        assert "CERTIFICATE_REVOKED" in err, err
    good(kd)


def test_certificate_with_two_common_names_is_refused(kd, tmp_path):
    """The identity is the one CN: a subject with two is refused even from pgcmk's CA."""
    ca_cert, ca_key = os.path.join(kd.data_dir, "ca.pem"), os.path.join(kd.data_dir, "ca-key.pem")
    cert, key = make_cert(str(tmp_path), "two-cn", ca_cert, ca_key, "jane_doe/CN=john")
    ca, _, _ = files(kd.jane)
    err = refused(kd.kport, ca, cert, key, ssl.TLSVersion.TLSv1_2)
    assert "BAD_CERTIFICATE" in err or "alert" in err, err
    assert "CERTIFICATE_REVOKED" not in err, err
    good(kd)


def test_plain_tcp_garbage_is_dropped(kd):
    with socket.create_connection(("127.0.0.1", kd.kport), timeout=10) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n" * 4)
        closed_within(s, 10)
    with socket.create_connection(("127.0.0.1", kd.kport), timeout=10) as s:
        s.sendall(request())  # KMIP without TLS: not a TLS record either
        closed_within(s, 10)
    good(kd)


def test_first_bytes_not_a_request_message_close(kd):
    ca, cert, key = files(kd.jane)
    for first in (b"\x42\x00\x7b\x01\x00\x00\x00\x00",  # a Response Message
                  b"\x42\x00\x78\x02\x00\x00\x00\x04",  # the right tag, not a structure
                  b"GET / HT"):
        with connect(kd.kport, ca, cert, key) as s:
            check_response(roundtrip(s))  # a good message first: the check is per message
            s.sendall(first + b"\0" * 8)
            assert closed_within(s, 10) < 5
    good(kd)


def test_truncated_message_is_dropped_after_the_timeout(kd):
    ca, cert, key = files(kd.jane)
    msg = request()
    with connect(kd.kport, ca, cert, key) as s:
        s.sendall(msg[:len(msg) - 8])  # the header announces 8 more bytes than ever come
        took = closed_within(s, TIMEOUT + 10)
    assert TIMEOUT - 1 <= took <= TIMEOUT + 8, took
    good(kd)


def test_oversized_length_is_closed_at_once(kd):
    ca, cert, key = files(kd.jane)
    with connect(kd.kport, ca, cert, key) as s:
        s.sendall(b"\x42\x00\x78\x01" + struct.pack(">I", 0x7FFFFFF0))
        assert closed_within(s, 10) < TIMEOUT
    with connect(kd.kport, ca, cert, key) as s:  # just over 1 MiB
        s.sendall(b"\x42\x00\x78\x01" + struct.pack(">I", (1 << 20) - 7))
        assert closed_within(s, 10) < TIMEOUT
    good(kd)


def test_client_that_closes_mid_message_leaves_the_listener_serving(kd):
    ca, cert, key = files(kd.jane)
    for cut in (3, 8, 20):
        s = connect(kd.kport, ca, cert, key)
        s.sendall(request()[:cut])
        s.close()
    good(kd)


def test_pykmip_client_talks_to_the_listener(kd):
    """The real PyKMIP client (kmip.pie.client.ProxyKmipClient) completes mutual TLS and gets a
    KMIP answer (Operation Not Supported from the stub, a key once operations exist)."""
    from kmip.core import enums
    from kmip.pie import exceptions
    from kmip.pie.client import ProxyKmipClient

    ca, cert, key = files(kd.jane)
    c = ProxyKmipClient(hostname="127.0.0.1", port=kd.kport, cert=cert, key=key, ca=ca,
                        config_file="/dev/null")
    c.open()
    try:
        try:
            uid = c.create(enums.CryptographicAlgorithm.AES, 256)
            assert isinstance(uid, str) and uid
        except exceptions.KmipOperationFailure as e:
            assert e.status == enums.ResultStatus.OPERATION_FAILED, e
    finally:
        c.close()


def test_a_stop_with_open_connections_is_clean(tmp_path):
    pool, d = kmip_daemon(str(tmp_path))
    try:
        port, jane = kmip_port(d), new_client(d, "jane_doe")
        ca, cert, key = files(jane)
        idle = connect(port, ca, cert, key)
        check_response(roundtrip(idle))
        partial = connect(port, ca, cert, key)
        partial.sendall(request()[:12])
        t0 = time.monotonic()
        assert d.stop() == 0
        assert time.monotonic() - t0 < 8
        idle.close()
        partial.close()
    finally:
        problems = pool.finish()
    assert not problems, problems


def test_port_zero_port_file_and_off(tmp_path):
    pool = DaemonPool(str(tmp_path))
    try:
        pf = os.path.join(str(tmp_path), "kmip-port")
        d = pool.start("--kmip-port", "0", "--kmip-port-file", pf)
        port = kmip_port(d)
        assert open(pf).read() == f"{port}\n"
        assert d.get("/emulator/info").json()["ports"]["kmip"] == port
        off = pool.start("--kmip-port", "-1")
        info = off.get("/emulator/info").json()
        assert info["ports"]["kmip"] is None and info["kmip"]["port"] is None
        # Client credentials are still issued with the listener off.
        assert off.post("/emulator/kmip/clients", json={"name": "x"}).status_code == 201
        bad = off.post("/emulator/kmip/clients", json={"name": "x"}).json()
        assert bad["name"] == "x"
    finally:
        problems = pool.finish()
    assert not problems, problems


def test_certificate_expires_on_the_virtual_clock(tmp_path):
    pool, d = kmip_daemon(str(tmp_path))
    try:
        port, jane = kmip_port(d), new_client(d, "jane_doe")
        ca, cert, key = files(jane)
        with connect(port, ca, cert, key) as s:
            check_response(roundtrip(s))
        d.clock(advance="P826D")  # certificates last 825 days
        err = refused(port, ca, cert, key, ssl.TLSVersion.TLSv1_2)
        assert "CERTIFICATE_EXPIRED" in err, err
        again = new_client(d, "jane_doe")  # a new certificate, valid from the clock's now
        ca, cert, key = files(again)
        with connect(port, ca, cert, key) as s:
            check_response(roundtrip(s))
    finally:
        problems = pool.finish()
    assert not problems, problems


def test_many_connections_at_once(kd):
    """Connections are served concurrently (one thread each): 40 open at once all answer. Each
    sends its request as soon as it is connected: the daemon's --timeout (3 s) closes a connection
    that stays silent longer, and 40 handshakes on a loaded machine (ASan) can take that long."""
    ca, cert, key = files(kd.jane)
    socks = []
    try:
        for _ in range(40):
            socks.append(connect(kd.kport, ca, cert, key))
            socks[-1].sendall(request())
        for s in socks:
            h = recv_exact(s, 8)
            check_response(h + recv_exact(s, struct.unpack(">I", h[4:])[0]))
    finally:
        for s in socks:
            s.close()


def test_connections_over_the_cap_are_closed_and_served_again_later(tmp_path):
    pool, d = kmip_daemon(str(tmp_path), "--kmip-max-connections", "2")
    try:
        port, jane = kmip_port(d), new_client(d, "jane_doe")
        ca, cert, key = files(jane)
        busy = [connect(port, ca, cert, key) for _ in range(2)]
        for s in busy:
            check_response(roundtrip(s))
        err = refused(port, ca, cert, key)  # closed before any TLS: not served, not hung
        assert "CERTIFICATE" not in err, err
        for s in busy:  # the first two are still served
            check_response(roundtrip(s))
        busy.pop().close()

        def served():
            try:
                with connect(port, ca, cert, key) as s:
                    check_response(roundtrip(s))
                return True
            except (ssl.SSLError, ConnectionError, EOFError, OSError):
                return False

        assert poll_until(served, timeout=10, interval=0.05, what="a freed connection slot")
        busy[0].close()
    finally:
        problems = pool.finish()
    assert not problems, problems
