"""Bad input: every mistake gets an error envelope (never a 500) and the daemon keeps serving."""
import http.client
import os
import random
import socket
import ssl

import pytest
import requests

from conftest import AV, GUID_RE, SUB, assert_arm_error, new_name

JSON = {"Content-Type": "application/json"}


def rg_url(name=None, av=AV):
    return f"/subscriptions/{SUB}/resourcegroups/{name or new_name()}?api-version={av}"


@pytest.fixture(autouse=True)
def still_healthy(daemon):
    yield
    assert daemon.healthy(), "the daemon stopped answering /emulator/health"


def test_malformed_json(daemon):
    r = daemon.put(rg_url(), data='{"location": }', headers=JSON)
    err = assert_arm_error(r, 400, "InvalidRequestContent")
    assert "line" in err["message"] and "position" in err["message"], err
    r = daemon.put(rg_url(), data='{"location":"eastus",\n "tags": {"a": 1,}}', headers=JSON)
    err = assert_arm_error(r, 400, "InvalidRequestContent")
    assert "line 2" in err["message"], err


def test_duplicate_keys(daemon):
    name = new_name()
    r = daemon.put(rg_url(name), data='{"location":"eastus","location":"westus"}', headers=JSON)
    assert_arm_error(r, 400, "InvalidRequestContent")
    assert daemon.get(rg_url(name)).status_code == 404


@pytest.mark.parametrize("data", ["[]", '"eastus"', "null", "42", '{"location":"eastus"} x',
                                  '{"location":"eastus","tags":[1]}',
                                  '{"location":"eastus","tags":{"a":1}}'])
def test_wrong_shapes(daemon, data):
    r = daemon.put(rg_url(), data=data, headers=JSON)
    assert_arm_error(r, 400)


def test_wrong_content_type(daemon):
    name = new_name()
    r = daemon.put(rg_url(name), data='{"location":"eastus"}', headers={"Content-Type": "text/plain"})
    assert_arm_error(r, 415, "UnsupportedMediaType")
    assert daemon.get(rg_url(name)).status_code == 404
    # A charset parameter on application/json is fine.
    r = daemon.put(rg_url(name), data='{"location":"eastus"}',
                   headers={"Content-Type": "application/json; charset=utf-8"})
    assert r.status_code == 201, r.text


def test_empty_body(daemon):
    r = daemon.put(rg_url(), data=b"", headers=JSON)
    assert_arm_error(r, 400, "InvalidRequestContent")
    r = daemon.put(rg_url())  # no body, no content type
    assert_arm_error(r, 400, "InvalidRequestContent")


def test_unknown_route(daemon):
    for path in ("/nope", "/", "/subscriptions/x/y/z/w", "/emulator/nope"):
        assert_arm_error(daemon.get(path), 404, "NotFound")


def test_wrong_method(daemon):
    r = daemon.post(rg_url(), json={"location": "eastus"})
    assert_arm_error(r, 405, "MethodNotAllowed")
    allow = [m.strip() for m in r.headers["Allow"].split(",")]
    assert {"GET", "PUT", "HEAD", "PATCH", "DELETE"} <= set(allow), allow
    assert "POST" not in allow
    r = daemon.delete(f"/subscriptions/{SUB}?api-version=2022-12-01")
    assert_arm_error(r, 405, "MethodNotAllowed")
    assert "GET" in r.headers["Allow"]


def test_unknown_query_parameter(daemon):
    err = assert_arm_error(daemon.get(rg_url() + "&foo=1"), 400, "InvalidQueryParameter")
    assert "foo" in err["message"]
    assert_arm_error(daemon.get("/subscriptions?api-version=2022-12-01&$bogus=1"), 400,
                     "InvalidQueryParameter")


def test_key_vault_host_gets_key_vault_envelope(daemon):
    r = vault_get(daemon, "myvault", "/keys?api-version=7.4")
    assert 400 <= r[0] < 500, r
    body = r[1]
    assert set(body) == {"error"}, body
    assert body["error"]["code"] and body["error"]["message"]


def vault_get(daemon, vault, path):
    """GET https://{vault}.vault.localhost:PORT{path} trusting the CA; (status, json)."""
    host = f"{vault}.vault.localhost"
    try:
        socket.getaddrinfo(host, daemon.port)
        r = daemon.s.get(f"https://{host}:{daemon.port}{path}", timeout=10)
        return r.status_code, r.json()
    except socket.gaierror:
        ctx = ssl.create_default_context(cafile=daemon.ca)
        raw = socket.create_connection(("127.0.0.1", daemon.port), timeout=10)
        conn = http.client.HTTPSConnection(host, daemon.port, context=ctx)
        conn.sock = ctx.wrap_socket(raw, server_hostname=host)
        conn.request("GET", path, headers={"Host": f"{host}:{daemon.port}"})
        resp = conn.getresponse()
        import json
        out = resp.status, json.loads(resp.read())
        conn.close()
        return out


def test_body_over_limit(start_daemon):
    d = start_daemon("--max-body-kb", "1")
    big = '{"location":"eastus","tags":{"t":"' + "x" * 200 + '"},"pad":"' + "y" * 5000 + '"}'
    name = new_name()
    corr = "7d0c1f2e-0000-4000-8000-000000000413"
    r = d.put(rg_url(name), data=big, headers={**JSON, "x-ms-correlation-request-id": corr,
                                                "x-ms-client-request-id": "c413"})
    err = assert_arm_error(r, 413, "RequestEntityTooLarge")
    assert "1 KiB" in err["message"] or "limit" in err["message"]
    assert GUID_RE.match(r.headers.get("x-ms-request-id", ""))
    assert r.headers.get("x-ms-correlation-request-id") == corr
    assert r.headers.get("x-ms-client-request-id") == "c413"
    # The same without Content-Length (chunked upload).
    s = d.session()
    r = s.put(d.url(rg_url(name)), data=(c.encode() for c in [big[:3000], big[3000:]]),
              headers=JSON, timeout=10)
    assert_arm_error(r, 413, "RequestEntityTooLarge")
    assert d.get(rg_url(name)).status_code == 404
    # A body under the limit still works, and the daemon is fine.
    assert d.put(rg_url(name), json={"location": "eastus"}).status_code == 201
    assert d.healthy()


def test_garbage_bodies(daemon):
    rnd = random.Random(1234)
    for i in range(20):
        data = bytes(rnd.getrandbits(8) for _ in range(rnd.randint(1, 3000)))
        for ctype in ("application/json", "application/octet-stream", None):
            headers = {"Content-Type": ctype} if ctype else {}
            r = daemon.put(rg_url(), data=data, headers=headers)
            assert 400 <= r.status_code < 500, (i, ctype, r.status_code, r.text[:300])
            r.json()  # always an envelope
    # Valid JSON with non-ASCII, odd escapes and deep nesting.
    for data in ['{"location":"eastus","tags":{"\\u00e9":"\\ud83d\\ude00"}}',
                 '{"location":"eastus\\u0000"}',
                 '{"location":"eastus","x":' + "[" * 5000 + "]" * 5000 + "}",
                 '{"location":"eastus","x":"\\ud800"}',
                 '\ufeff{"location":"eastus"}']:
        r = daemon.put(rg_url(), data=data.encode(), headers=JSON)
        assert r.status_code < 500, (data[:60], r.status_code, r.text[:300])


def test_weird_paths(daemon):
    paths = [
        "/" + "a" * 10000,
        f"/subscriptions/{SUB}/resourcegroups/" + "b" * 10000 + f"?api-version={AV}",
        "/subscriptions/" + "/x" * 100,
        f"/subscriptions/{SUB}/resourcegroups/%zz?api-version={AV}",
        f"/subscriptions/{SUB}/resourcegroups/a%00b?api-version={AV}",
        f"/subscriptions/{SUB}/resourcegroups/%ff%fe?api-version={AV}",
        f"/subscriptions/{SUB}/resourcegroups/%c3?api-version={AV}",
        f"/subscriptions/{SUB}/resourcegroups/%?api-version={AV}",
        f"/subscriptions/{SUB}/resourcegroups/a%2fb?api-version={AV}",
        f"/subscriptions/{SUB}/resourcegroups/..?api-version={AV}",
        "/%2e%2e/%2e%2e/etc/passwd",
        f"/subscriptions/{SUB}/resourcegroups?api-version=%zz",
        f"/subscriptions/{SUB}/resourcegroups?api-version=2021-04-01&api-version=2022-09-01",
        f"/subscriptions/{SUB}/resourcegroups?api-version=2021-04-01&" + "&".join(f"q{i}=1" for i in range(40)),
        f"/subscriptions/{SUB}/resourcegroups?" + "x" * 5000,
        f"/subscriptions/{SUB}/resourcegroups/x?api-version=" + "9" * 3000,
        f"/subscriptions/{SUB}/resourceGroups/g/providers/Microsoft.Nope/" + "t/n/" * 30 + "?api-version=1",
        f"/subscriptions/{SUB}/resourceGroups/g/providers/Microsoft.Nope/" + "t" * 3000 + "?api-version=1",
        f"/subscriptions/{SUB}/providers/" + "N" * 3000 + "?api-version=2021-04-01",
    ]
    for p in paths:
        for method in ("GET", "PUT", "DELETE", "HEAD"):
            r = raw_request(daemon, method, p, b'{"location":"eastus"}' if method == "PUT" else b"")
            assert r[0] < 500 and r[0] >= 200, (method, p[:120], r)
    # The names that reached the store are still readable one by one and in the list.
    r = daemon.get(f"/subscriptions/{SUB}/resourcegroups?api-version={AV}")
    assert r.status_code == 200, r.text


def raw_request(daemon, method, path, body):
    """Sends the path bytes exactly as given (requests would re-encode them)."""
    ctx = ssl.create_default_context(cafile=daemon.ca)
    conn = http.client.HTTPSConnection("localhost", daemon.port, context=ctx, timeout=10)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        if body:
            conn.putheader("Content-Type", "application/json")
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body or None)
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, data[:200]
    finally:
        conn.close()


def test_garbage_on_the_wire(daemon):
    """Not HTTP at all, over TLS and in clear: the daemon closes or answers 4xx and lives on."""
    ctx = ssl.create_default_context(cafile=daemon.ca)
    rnd = random.Random(99)
    for payload in [b"\x00" * 100, bytes(rnd.getrandbits(8) for _ in range(4000)),
                    b"GET / HTTP/1.1\r\n" + b"X: " + b"y" * 70000 + b"\r\n\r\n",
                    b"GET /emulator/health HTTP/9.9\r\nHost: localhost\r\n\r\n",
                    b"PUT / HTTP/1.1\r\nHost: localhost\r\nContent-Length: -5\r\n\r\n",
                    b"PUT / HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"]:
        with socket.create_connection(("127.0.0.1", daemon.port), timeout=10) as raw:
            with ctx.wrap_socket(raw, server_hostname="localhost") as s:
                try:
                    s.sendall(payload)
                    s.recv(4096)
                except (ConnectionError, ssl.SSLError, socket.timeout):
                    pass
    # Plain bytes at the TLS port.
    with socket.create_connection(("127.0.0.1", daemon.port), timeout=10) as raw:
        try:
            raw.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            raw.recv(100)
        except ConnectionError:
            pass
    assert daemon.healthy()


def test_auth_strict(start_daemon):
    d = start_daemon("--auth", "strict")
    for path in (rg_url(), f"/subscriptions?api-version=2022-12-01", "/emulator/clock",
                 f"/subscriptions/{SUB}/resourcegroups?api-version={AV}"):
        r = d.get(path)
        assert_arm_error(r, 401, "AuthenticationFailed")
        assert r.headers.get("x-ms-request-id")
        assert 'error="invalid_token"' in r.headers.get("WWW-Authenticate", "")
    assert_arm_error(d.put(rg_url(), json={"location": "eastus"}), 401, "AuthenticationFailed")
    r = d.get("/emulator/info")
    assert r.status_code == 200 and r.json()["subscriptionId"] == SUB
    assert d.healthy()
    assert d.get("/metadata/endpoints?api-version=2022-09-01").status_code == 200
    # A bearer token this build cannot verify is refused too.
    r = d.get(f"/subscriptions?api-version=2022-12-01", headers={"Authorization": "Bearer abc"})
    assert_arm_error(r, 401)


def test_auth_open_accepts_no_token(daemon):
    assert daemon.get(f"/subscriptions?api-version=2022-12-01").status_code == 200
    assert daemon.get("/emulator/info").json()["authMode"] == "open"


def test_error_counts(daemon):
    before = daemon.get("/emulator/stats").json()["errors"].get("404 ResourceGroupNotFound", 0)
    daemon.get(rg_url())
    after = daemon.get("/emulator/stats").json()["errors"]["404 ResourceGroupNotFound"]
    assert after >= before + 1


def test_path_is_percent_decoded_exactly_once(daemon):
    """%00 must not cut the name short, %25 must not be decoded twice, %3F is not a query."""
    base = f"/subscriptions/{SUB}/resourcegroups/"
    q = f"?api-version={AV}"
    name = new_name("pct")
    body = b'{"location":"eastus"}'
    for suffix, decoded_alias in [("%00x", name), ("%2541", name + "A"), ("%3Fb", name),
                                  ("%2Fx", None)]:
        status, data = raw_request(daemon, "PUT", base + name + suffix + q, body)
        assert 400 <= status < 500, (suffix, status, data)
        if decoded_alias:
            assert daemon.get(base + decoded_alias + q).status_code == 404, suffix
    # One level of decoding is applied: %41 is 'A'.
    status, data = raw_request(daemon, "PUT", base + name + "%41" + q, body)
    assert status == 201, data
    assert daemon.get(base + name + "A" + q).status_code == 200
    # A DELETE of "name%00..." must not delete "name".
    assert daemon.put(base + name + q, json={"location": "eastus"}).status_code == 201
    status, _ = raw_request(daemon, "DELETE", base + name + "%00zzz" + q, b"")
    assert status == 400
    assert daemon.get(base + name + q).json()["properties"]["provisioningState"] == "Succeeded"
    # The query is decoded once too, and %00 does not cut a value short.
    status, data = raw_request(daemon, "GET", base + name + "?api-version=2021-04-01%00", b"")
    assert status == 400 and b"InvalidApiVersionParameter" in data
    status, _ = raw_request(daemon, "GET", base + name + "?api%2Dversion=2021%2D04-01", b"")
    assert status == 200
