"""/emulator/info, /emulator/health, /emulator/clock (the virtual clock) and standard headers."""
import datetime
import json
import os
import shlex

import pytest

from conftest import GUID_RE, SUB, TENANT, assert_arm_error, new_name, parse_time

DAY = datetime.timedelta(days=1)


def test_info_describes_the_emulator(daemon):
    r = daemon.s.get(daemon.base + "/emulator/info", headers={})  # no Authorization header
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    info = r.json()
    assert info["ports"]["https"] == daemon.port
    assert info["ports"]["http"] == daemon.http_port
    assert os.path.realpath(info["caFile"]) == os.path.realpath(daemon.ca)
    assert info["tenantId"] == TENANT
    assert info["subscriptionId"] == SUB
    admin = info["admin"]
    assert GUID_RE.match(admin["clientId"]) and GUID_RE.match(admin["objectId"]), admin
    assert isinstance(admin["clientSecret"], str) and admin["clientSecret"]
    assert info["vaultDnsSuffix"] == f"vault.localhost:{daemon.port}"
    az = info["azCloudRegister"]
    base = f"https://localhost:{daemon.port}"
    # The ready command registers the cloud from one --cloud-config JSON (az ignores the
    # endpoint flags next to it, and no flag sets microsoftGraphResourceId).
    argv = shlex.split(az["command"])
    assert argv[:5] == ["az", "cloud", "register", "-n", az["name"]]
    assert argv[5] == "--cloud-config" and len(argv) == 7, argv
    cfg = json.loads(argv[6])
    assert cfg == az["cloudConfig"]
    assert cfg["endpoints"] == {
        "resourceManager": base + "/", "management": base + "/",
        "activeDirectory": base + "/adfs", "activeDirectoryResourceId": base + "/",
        "activeDirectoryGraphResourceId": base + "/", "microsoftGraphResourceId": base + "/",
        "gallery": base + "/", "sqlManagement": base + "/"}
    assert cfg["suffixes"] == {"keyvaultDns": f".vault.localhost:{daemon.port}",
                               "storageEndpoint": "localhost",
                               "postgresqlServerEndpoint": ".postgres.localhost"}
    # The older per-flag settings stay, and flagsCommand carries each as a flag.
    flags = az["flagsCommand"]
    assert flags.startswith("az cloud register ")
    for k, v in az.items():
        if k.startswith(("endpoint-", "suffix-")):
            assert f"--{k} {v}" in flags, (k, v, flags)
    assert az["endpoint-resource-manager"] == base
    assert az["suffix-keyvault-dns"] == f".vault.localhost:{daemon.port}"


def test_info_ca_file_is_the_pem_on_disk(daemon):
    with open(daemon.get("/emulator/info").json()["caFile"], "rb") as f:
        assert b"-----BEGIN CERTIFICATE-----" in f.read()


def test_health(daemon):
    r = daemon.get("/emulator/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "Healthy"
    parse_time(body["now"])


def test_health_rejects_other_methods(daemon):
    r = daemon.post("/emulator/health", json={})
    err = assert_arm_error(r, 405, "MethodNotAllowed")
    assert "GET" in r.headers["Allow"]
    assert "POST" in err["message"]


# --- standard headers ------------------------------------------------------------------------

@pytest.mark.parametrize("path,status", [
    ("/emulator/health", 200),
    (f"/subscriptions/{SUB}/resourcegroups?api-version=2021-04-01", 200),
    (f"/subscriptions/{SUB}/resourcegroups/nope-missing?api-version=2021-04-01", 404),
    ("/nope", 404),
    (f"/subscriptions/{SUB}/resourcegroups/x", 400),
])
def test_every_response_has_request_ids(daemon, path, status):
    ids = set()
    for _ in range(2):
        r = daemon.get(path)
        assert r.status_code == status
        rid = r.headers.get("x-ms-request-id")
        assert rid and GUID_RE.match(rid), r.headers
        cid = r.headers.get("x-ms-correlation-request-id")
        assert cid and GUID_RE.match(cid), r.headers
        assert "x-ms-client-request-id" not in r.headers
        ids.add(rid)
    assert len(ids) == 2, "x-ms-request-id must differ per request"


def test_ids_are_echoed(daemon):
    corr, client = "3f7b2c1e-0000-4000-8000-0000000000aa", "my-client-id-1"
    for method, path in [("GET", "/emulator/health"),
                         ("GET", f"/subscriptions/{SUB}/resourcegroups/nope?api-version=2021-04-01"),
                         ("HEAD", f"/subscriptions/{SUB}/resourcegroups/nope?api-version=2021-04-01"),
                         ("PUT", f"/subscriptions/{SUB}/resourcegroups/{new_name()}?api-version=2021-04-01")]:
        r = daemon.request(method, path, json={"location": "eastus"} if method == "PUT" else None,
                           headers={"x-ms-correlation-request-id": corr,
                                    "x-ms-client-request-id": client})
        assert r.status_code in (200, 201, 404), (method, path, r.status_code)
        assert r.headers["x-ms-correlation-request-id"] == corr
        assert r.headers["x-ms-client-request-id"] == client
        assert GUID_RE.match(r.headers["x-ms-request-id"])
        assert r.headers["x-ms-request-id"] != corr


def test_arm_fixed_headers(daemon):
    r = daemon.get(f"/subscriptions/{SUB}?api-version=2022-12-01")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/json; charset=utf-8"
    assert r.headers["Cache-Control"] == "no-cache"
    assert r.headers["Pragma"] == "no-cache"
    assert r.headers["Expires"] == "-1"
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["Strict-Transport-Security"].startswith("max-age=")


# --- the virtual clock -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def clock_daemon(tmp_path_factory):
    """A daemon of this module's own: the clock tests freeze and move time."""
    from conftest import DaemonPool
    pool = DaemonPool(str(tmp_path_factory.mktemp("clock")))
    d = pool.start()
    yield d
    problems = pool.finish()
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


@pytest.fixture
def clock(clock_daemon):
    yield clock_daemon
    clock_daemon.clock(resume=True)


def test_clock_get_follows_wall_clock(clock):
    r = clock.get("/emulator/clock")
    assert r.status_code == 200
    c = r.json()
    assert c["frozen"] is False
    now = parse_time(c["now"])
    wall = datetime.datetime.now(datetime.timezone.utc)
    # The clock may have been moved by other tests of this module, but never backwards.
    assert now >= wall - datetime.timedelta(seconds=5)


def test_frozen_clock_stands_still(clock):
    c = clock.clock(freeze=True)
    assert c["frozen"] is True
    a = clock.get("/emulator/clock").json()
    poll_now = clock.get("/emulator/clock").json()
    assert a["now"] == poll_now["now"] == c["now"]
    assert a["frozen"] is True


def test_advance_moves_a_frozen_clock_exactly(clock):
    before = parse_time(clock.clock(freeze=True)["now"])
    after = clock.clock(advance="P91D")
    assert after["frozen"] is True
    assert parse_time(after["now"]) - before == 91 * DAY
    assert parse_time(clock.get("/emulator/clock").json()["now"]) - before == 91 * DAY
    later = clock.clock(advance="PT1H30M")
    assert parse_time(later["now"]) - before == 91 * DAY + datetime.timedelta(hours=1, minutes=30)
    w = clock.clock(advance="P2W")
    assert parse_time(w["now"]) - before == 105 * DAY + datetime.timedelta(hours=1, minutes=30)


def test_advance_moves_a_running_clock(clock):
    before = parse_time(clock.get("/emulator/clock").json()["now"])
    after = parse_time(clock.clock(advance="P1D")["now"])
    assert DAY <= after - before < DAY + datetime.timedelta(seconds=5)


def test_set_and_resume(clock):
    c = clock.clock(freeze=True)
    c = clock.clock(set="2030-01-01T00:00:00Z")
    assert c["frozen"] is True
    assert parse_time(c["now"]) == datetime.datetime(2030, 1, 1, tzinfo=datetime.timezone.utc)
    r = clock.clock(resume=True)
    assert r["frozen"] is False
    t0 = datetime.datetime(2030, 1, 1, tzinfo=datetime.timezone.utc)
    # Time goes on from where it stood.
    now = parse_time(clock.get("/emulator/clock").json()["now"])
    assert t0 <= now < t0 + datetime.timedelta(seconds=10)


def test_set_on_running_clock(clock):
    c = clock.clock(set="2031-06-15T12:00:00+02:00")
    assert c["frozen"] is False
    want = datetime.datetime(2031, 6, 15, 10, 0, tzinfo=datetime.timezone.utc)
    assert want <= parse_time(c["now"]) < want + datetime.timedelta(seconds=5)


@pytest.mark.parametrize("body", [
    {"advance": "P1Y"}, {"advance": "P1M"}, {"advance": "abc"}, {"advance": ""}, {"advance": "P"},
    {"advance": "PT"}, {"advance": "-P1D"}, {"advance": 5}, {"advance": None},
    {"set": "2030-13-01T00:00:00Z"}, {"set": "tomorrow"}, {"set": 1},
    {"freeze": False}, {"freeze": "yes"}, {"resume": 1},
    {"bogus": True}, {"advance": "P1D", "freeze": True}, {},
])
def test_clock_rejects_bad_commands(clock, body):
    before = clock.get("/emulator/clock").json()
    r = clock.post("/emulator/clock", json=body)
    assert_arm_error(r, 400)
    after = clock.get("/emulator/clock").json()
    assert after["frozen"] == before["frozen"]
    # A refused command does not move the clock (allow for real time passing).
    assert parse_time(after["now"]) - parse_time(before["now"]) < datetime.timedelta(seconds=5)


def test_clock_cannot_overflow(clock):
    """Huge advances are refused instead of wrapping the int64 offset (UB, and a crash under
    UBSan): the clock stays at most at 9999-12-31."""
    clock.clock(freeze=True)
    before = clock.get("/emulator/clock").json()["now"]
    huge = "P" + "10000000W" * 1400  # ~8.5e18 ms: a valid duration by itself
    for body in ({"advance": huge}, {"advance": huge}, {"advance": "P3000000D"}):
        assert_arm_error(clock.post("/emulator/clock", json=body), 400, "InvalidParameter")
    assert clock.get("/emulator/clock").json()["now"] == before
    c = clock.clock(set="9999-12-31T00:00:00Z")
    assert parse_time(c["now"]).year == 9999
    assert_arm_error(clock.post("/emulator/clock", json={"advance": "P1D"}), 400)
    c = clock.clock(advance="PT23H59M59S")
    assert c["now"] == "9999-12-31T23:59:59.000Z"
    assert clock.healthy()
    clock.clock(set="2030-01-01T00:00:00Z")


def test_clock_rejects_non_object_body(clock):
    for data in ['["freeze"]', '"P1D"', "{"]:
        r = clock.post("/emulator/clock", data=data, headers={"Content-Type": "application/json"})
        assert_arm_error(r, 400, "InvalidRequestContent")


def test_frozen_clock_survives_restart(start_daemon):
    d = start_daemon()
    d.clock(freeze=True)
    c = d.clock(set="2033-03-03T03:03:03Z")
    d.restart()
    after = d.get("/emulator/clock").json()
    assert after["frozen"] is True
    assert after["now"] == c["now"]
    assert parse_time(after["now"]) == datetime.datetime(2033, 3, 3, 3, 3, 3,
                                                         tzinfo=datetime.timezone.utc)


def test_running_offset_survives_restart(start_daemon):
    d = start_daemon()
    d.clock(advance="P400D")
    d.restart()
    c = d.get("/emulator/clock").json()
    assert c["frozen"] is False
    wall = datetime.datetime.now(datetime.timezone.utc)
    delta = parse_time(c["now"]) - wall
    assert 400 * DAY - datetime.timedelta(seconds=30) < delta < 400 * DAY + datetime.timedelta(seconds=30)
