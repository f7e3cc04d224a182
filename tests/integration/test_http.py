"""The listeners: the plain HTTP listener (--http-port) serves the same API; one listening
socket per server thread on each address."""
import re
import subprocess

import requests

from conftest import (AV, GUID_RE, ROOT, SUB, assert_arm_error, clean_env, new_name, pgcmkd_path,
                      poll_until)


def session():
    s = requests.Session()
    s.trust_env = False
    return s


def test_plain_http_serves_arm(daemon):
    s = session()
    base = daemon.http_base
    try:
        r = s.get(f"{base}/subscriptions?api-version=2022-12-01", timeout=10)
        assert r.status_code == 200
        assert r.json()["value"][0]["subscriptionId"] == SUB
        assert GUID_RE.match(r.headers["x-ms-request-id"])
        # HSTS only on HTTPS.
        assert "Strict-Transport-Security" not in r.headers
        name = new_name("http")
        url = f"{base}/subscriptions/{SUB}/resourcegroups/{name}?api-version={AV}"
        r = s.put(url, json={"location": "eastus"}, timeout=10)
        assert r.status_code == 201, r.text
        # The same group over HTTPS.
        assert daemon.get(f"/subscriptions/{SUB}/resourcegroups/{name}?api-version={AV}").status_code == 200
        assert_arm_error(s.get(url.split("?")[0], timeout=10), 400, "MissingApiVersionParameter")
        r = s.delete(url, timeout=10)
        assert r.status_code == 202
        loc = r.headers["Location"]
        assert re.match(rf"http://localhost:{daemon.http_port}/subscriptions/{SUB}/operationresults/", loc), loc
        final = poll_until(lambda: (lambda p: p if p.status_code != 202 else None)(s.get(loc, timeout=10)))
        assert final.status_code == 200
        assert s.get(url, timeout=10).status_code == 404
        info = s.get(f"{base}/emulator/info", timeout=10).json()
        assert info["ports"]["http"] == daemon.http_port
    finally:
        s.close()


def test_plain_http_off_by_default(start_daemon):
    d = start_daemon(http=False)
    info = d.get("/emulator/info").json()
    assert info["ports"]["http"] is None
    assert info["ports"]["https"] == d.port
    assert not any(f.startswith("http-port") for f in __import__("os").listdir(d.data_dir))


def test_every_listener_thread_shares_one_port_on_both_loopbacks(start_daemon, tmp_path):
    """--threads N: N listening sockets per address on the same port (SO_REUSEPORT), 127.0.0.1
    and ::1 alike; a second daemon still cannot take the port on either address."""
    d = start_daemon("--threads", "3", http=False)
    s = d.session()
    for host in ("127.0.0.1", "[::1]"):
        for _ in range(4):  # new connections, whichever socket the kernel picks
            r = requests.get(f"https://{host}:{d.port}/emulator/health", verify=d.ca, timeout=10)
            assert r.status_code == 200 and r.json()["status"] == "Healthy"
        r = s.get(f"https://{host}:{d.port}/emulator/health", timeout=10)
        assert r.status_code == 200
    # Sockets listening on the port, by address, from /proc/net/tcp{,6} (state 0A = LISTEN).
    n = {}
    for f, loop in (("/proc/net/tcp", "0100007F"), ("/proc/net/tcp6", "0" * 24 + "01000000")):
        with open(f) as fh:
            for line in fh.readlines()[1:]:
                local, state = line.split()[1], line.split()[3]
                addr, port = local.split(":")
                if state == "0A" and int(port, 16) == d.port and addr == loop:
                    n[f] = n.get(f, 0) + 1
    assert n == {"/proc/net/tcp": 3, "/proc/net/tcp6": 3}, n
    for listen in ("127.0.0.1", "::1"):
        r = subprocess.run([pgcmkd_path(), "--data-dir", str(tmp_path / f"other-{listen}"),
                            "--listen", listen, "--port", str(d.port), "--log-level", "warn"],
                           capture_output=True, text=True, env=clean_env(None), timeout=20,
                           cwd=ROOT)
        assert r.returncode != 0, f"a second daemon shares {listen} port {d.port}"
        assert "in use" in r.stderr, r.stderr
    assert d.healthy()
