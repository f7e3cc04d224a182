"""TLS: the generated CA, the vault host names, CA reuse across restarts, keep-alive."""
import http.client
import json
import os
import shutil
import socket
import ssl
import subprocess

import pytest
import requests

from conftest import SUB, TENANT


def resolves(host, port):
    try:
        socket.getaddrinfo(host, port)
        return True
    except socket.gaierror:
        return False


def curl(daemon, url, *extra):
    """curl with the CA; *.localhost is pinned to 127.0.0.1 so name resolution never matters."""
    host = url.split("/")[2].split(":")[0]
    cmd = ["curl", "-sS", "--max-time", "10", "--cacert", daemon.ca, "--resolve",
           f"{host}:{daemon.port}:127.0.0.1", "-w", "\n%{http_code}", *extra, url]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
    return r.returncode, r.stdout, r.stderr


def test_ca_verifies_localhost(daemon):
    ctx = ssl.create_default_context(cafile=daemon.ca)
    with socket.create_connection(("127.0.0.1", daemon.port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            cert = s.getpeercert()
            assert s.version() in ("TLSv1.2", "TLSv1.3")
    sans = {v for k, v in cert["subjectAltName"]}
    assert "localhost" in sans
    assert "*.vault.localhost" in sans
    rc, out, err = curl(daemon, f"https://localhost:{daemon.port}/emulator/health")
    assert rc == 0, err
    assert out.rsplit("\n", 1)[1] == "200"


def test_server_is_not_trusted_without_the_ca(daemon):
    s = requests.Session()
    s.trust_env = False
    with pytest.raises(requests.exceptions.SSLError):
        s.get(daemon.base + "/emulator/health", verify=True, timeout=10)
    s.close()


@pytest.mark.parametrize("vault", ["myvault", "anything", "kv-123"])
def test_ca_verifies_vault_hosts(daemon, vault):
    host = f"{vault}.vault.localhost"
    url = f"https://{host}:{daemon.port}/keys?api-version=7.4"
    rc, out, err = curl(daemon, url)
    assert rc == 0, f"curl failed (certificate?): {err}"
    body, code = out.rsplit("\n", 1)
    assert 400 <= int(code) < 500, out
    env = json.loads(body)
    assert set(env) == {"error"} and env["error"]["code"] and env["error"]["message"]
    if resolves(host, daemon.port):
        r = daemon.s.get(url, timeout=10)
        assert r.status_code == int(code)
        assert r.json()["error"]["code"] == env["error"]["code"]


def test_wrong_host_name_fails_verification(daemon):
    ctx = ssl.create_default_context(cafile=daemon.ca)
    with socket.create_connection(("127.0.0.1", daemon.port), timeout=10) as raw:
        with pytest.raises(ssl.SSLCertVerificationError):
            ctx.wrap_socket(raw, server_hostname="example.com")


def test_restart_reuses_the_ca(start_daemon):
    d = start_daemon()
    with open(d.ca, "rb") as f:
        first = f.read()
    assert first.startswith(b"-----BEGIN CERTIFICATE-----")
    d.restart()
    with open(d.ca, "rb") as f:
        assert f.read() == first
    assert d.healthy()  # the session trusts the same file: the server chain still verifies


def test_keep_alive_http_client(daemon):
    ctx = ssl.create_default_context(cafile=daemon.ca)
    conn = http.client.HTTPSConnection("localhost", daemon.port, context=ctx, timeout=10)
    try:
        socks = set()
        for path in ("/emulator/health", f"/subscriptions?api-version=2022-12-01",
                     f"/subscriptions/{SUB}/resourcegroups/none-here?api-version=2021-04-01",
                     "/nope", "/emulator/info"):
            conn.request("GET", path)
            resp = conn.getresponse()
            resp.read()
            assert resp.status in (200, 404), (path, resp.status)
            assert (resp.getheader("Connection") or "").lower() != "close", path
            assert not resp.will_close, path
            socks.add(id(conn.sock))
        # A PUT with a body and an error answer keep the connection too.
        conn.request("PUT", f"/subscriptions/{SUB}/resourcegroups/ka-bad?api-version=2021-04-01",
                      body=b'{"location": }', headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        resp.read()
        assert resp.status == 400 and not resp.will_close
        socks.add(id(conn.sock))
        assert len(socks) == 1 and conn.sock is not None
    finally:
        conn.close()


def test_keep_alive_requests_session(daemon):
    s = daemon.session()
    url = daemon.base + "/emulator/health"
    for _ in range(5):
        r = s.get(url, timeout=10)
        assert r.status_code == 200
        assert r.headers.get("Connection", "").lower() != "close"
    pool = s.get_adapter(url).poolmanager.connection_from_url(url)
    assert pool.num_connections == 1, pool.num_connections


def test_own_certificate(start_daemon, tmp_path):
    """--tls-cert/--tls-key: the daemon serves the given certificate."""
    d = start_daemon()
    files = os.listdir(d.data_dir)
    cert = next((f for f in ("server.pem", "server-cert.pem") if f in files), None)
    key = next((f for f in ("server-key.pem",) if f in files), None)
    if not cert or not key:
        pytest.skip(f"no server certificate files to reuse in {files}")
    own = tmp_path / "own"
    own.mkdir()
    shutil.copy(os.path.join(d.data_dir, cert), own / "cert.pem")
    shutil.copy(os.path.join(d.data_dir, key), own / "key.pem")
    ca = d.ca
    d2 = start_daemon("--tls-cert", str(own / "cert.pem"), "--tls-key", str(own / "key.pem"))
    r = requests.get(d2.base + "/emulator/health", verify=ca, timeout=10)
    assert r.status_code == 200
    info = d2.s.get(d2.base + "/emulator/info", verify=ca, timeout=10).json()
    assert info["tenantId"] == TENANT
