"""The plain HTTP listener (--http-port) serves the same API."""
import re

import requests

from conftest import AV, GUID_RE, SUB, assert_arm_error, new_name, poll_until


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
