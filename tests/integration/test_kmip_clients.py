"""KMIP client credentials (src/kmip/clients.c): /emulator/kmip/clients issues certificates from
pgcmk's CA, writes the files pg_tde's commands name, and deleting a client makes the listener
refuse its certificates at the handshake (alert certificate_revoked)."""
import datetime
import os
import ssl
import stat

import pytest

from conftest import SUB, assert_arm_error, new_name, parse_time
from kmipnet import check_response, connect, kmip_daemon, kmip_port, refused, roundtrip

CLIENTS = "/emulator/kmip/clients"
AL = f"/subscriptions/{SUB}/providers/Microsoft.Insights/eventtypes/management/values"


@pytest.fixture(scope="module")
def kd(tmp_path_factory):
    pool, d = kmip_daemon(str(tmp_path_factory.mktemp("kmip-clients")))
    d.kport = kmip_port(d)
    yield d
    problems = pool.finish()
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


def serves(d, ca, cert, key, version=None):
    with connect(d.kport, ca, cert, key, version) as s:
        check_response(roundtrip(s))
    return True


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def event_count(d, name="KmipClientDeleted"):
    return d.get("/emulator/stats").json()["events"][name]


def activity(d, name):
    rid = f"/subscriptions/{SUB}/providers/pgcmk.Kmip/clients/{name}"
    start = parse_time(d.get("/emulator/clock").json()["now"]) - datetime.timedelta(minutes=10)
    flt = (f"eventTimestamp ge '{start.strftime('%Y-%m-%dT%H:%M:%S')}Z' "
           f"and resourceId eq '{rid}'")
    r = d.get(AL, params={"api-version": "2015-04-01", "$filter": flt})
    assert r.status_code == 200, r.text
    return [e["operationName"]["value"] for e in r.json()["value"]]


def test_create_twice_gives_two_valid_certificates(kd):
    name = new_name("jane")
    r1 = kd.post(CLIENTS, json={"name": name})
    assert r1.status_code == 201, r1.text
    a = r1.json()
    assert a["name"] == name and a["fingerprint"] and len(a["fingerprint"]) == 64
    assert a["certificate"].startswith("-----BEGIN CERTIFICATE-----")
    assert "PRIVATE KEY" in a["key"]
    assert a["caCertificate"].count("BEGIN CERTIFICATE") == 2  # server certificate, then CA
    not_after = parse_time(a["notAfter"]) - parse_time(a["createdAt"])
    assert datetime.timedelta(days=824) < not_after <= datetime.timedelta(days=826)
    cert_a = open(a["files"]["certificate"]).read()
    assert cert_a == a["certificate"]

    r2 = kd.post(CLIENTS, json={"name": name})
    assert r2.status_code == 200, r2.text
    b = r2.json()
    assert b["fingerprint"] != a["fingerprint"] and b["certificate"] != a["certificate"]
    assert b["createdAt"] == a["createdAt"]  # the client's, not the certificate's

    # The files now hold the second certificate; the first one (kept by its owner) still works.
    tmp = os.path.join(kd.data_dir, f"{name}-first")
    os.makedirs(tmp)
    with open(f"{tmp}/cert.pem", "w") as f:
        f.write(a["certificate"])
    with open(f"{tmp}/key.pem", "w") as f:
        f.write(a["key"])
    ca = b["files"]["caCertificate"]
    assert serves(kd, ca, f"{tmp}/cert.pem", f"{tmp}/key.pem")
    assert serves(kd, ca, b["files"]["certificate"], b["files"]["key"])

    one = kd.get(f"{CLIENTS}/{name}").json()
    assert one["certificates"] == 2
    assert {c["fingerprint"] for c in one["issued"]} == {a["fingerprint"], b["fingerprint"]}
    assert activity(kd, name).count("pgcmk.Kmip/clients/write") == 2


def test_files_and_their_modes(kd):
    name = new_name("files")
    c = kd.post(CLIENTS, json={"name": name}).json()
    f = c["files"]
    d = os.path.join(os.path.realpath(kd.data_dir), "kmip", "clients", name)
    assert f == {"certificate": f"{d}/client_cert_{name}.pem", "key": f"{d}/client_key_{name}.pem",
                 "combined": f"{d}/client_{name}.pem",
                 "caCertificate": f"{d}/server_certificate.pem"}
    assert mode(d) == 0o700
    assert mode(f["key"]) == 0o600 and mode(f["combined"]) == 0o600
    assert mode(f["certificate"]) == 0o644 and mode(f["caCertificate"]) == 0o644
    assert open(f["key"]).read() == c["key"]
    assert open(f["combined"]).read() == c["key"] + c["certificate"]  # key, then certificate
    assert open(f["caCertificate"]).read() == c["caCertificate"]
    # pg_tde accepts the combined file as the key parameter: it is key and certificate at once.
    assert serves(kd, f["caCertificate"], f["combined"], f["combined"])
    assert serves(kd, f["caCertificate"], f["combined"], None)


@pytest.mark.parametrize("body", [
    {"name": ""}, {"name": "a" * 65}, {"name": "../etc"}, {"name": "a/b"}, {"name": "jane doe"},
    {"name": "."}, {"name": ".."}, {"name": "jane\u00e9"}, {"name": "x\ny"},
])
def test_bad_names(kd, body):
    r = kd.post(CLIENTS, json=body)
    err = assert_arm_error(r, 400, "InvalidKmipClientName")
    assert "1 to 64" in err["message"]


@pytest.mark.parametrize("body", [{}, {"name": 7}, {"name": None}, {"name": "a", "x": 1}, [],
                                  "jane"])
def test_bad_bodies(kd, body):
    assert_arm_error(kd.post(CLIENTS, json=body), 400)


def test_longest_name_and_every_allowed_character(kd):
    for name in ("A" * 64, "a.b-c_D9", "-", "..."):
        r = kd.post(CLIENTS, json={"name": name})
        assert r.status_code in (200, 201), r.text
        assert serves(kd, r.json()["files"]["caCertificate"], r.json()["files"]["certificate"],
                      r.json()["files"]["key"])


def test_get_and_delete_unknown_and_bad_names(kd):
    assert_arm_error(kd.get(f"{CLIENTS}/nobody-{new_name()}"), 404, "KmipClientNotFound")
    assert_arm_error(kd.delete(f"{CLIENTS}/nobody-{new_name()}"), 404, "KmipClientNotFound")
    assert_arm_error(kd.get(f"{CLIENTS}/a%20b"), 400, "InvalidKmipClientName")
    assert_arm_error(kd.delete(f"{CLIENTS}/{'x' * 65}"), 400, "InvalidKmipClientName")


def test_list(kd):
    names = sorted(new_name("list") for _ in range(3))
    for n in names:
        kd.post(CLIENTS, json={"name": n})
    kd.post(CLIENTS, json={"name": names[0]})
    r = kd.get(CLIENTS)
    assert r.status_code == 200
    got = {c["name"]: c for c in r.json()["value"]}
    assert set(names) <= set(got)
    assert got[names[0]]["certificates"] == 2 and got[names[1]]["certificates"] == 1
    assert set(got[names[1]]) == {"name", "createdAt", "certificates"}
    listed = [c["name"] for c in r.json()["value"]]
    assert listed == sorted(listed)


def test_delete_revokes_every_certificate_at_the_handshake(kd):
    name = new_name("gone")
    first = kd.post(CLIENTS, json={"name": name}).json()
    second = kd.post(CLIENTS, json={"name": name}).json()
    tmp = os.path.join(kd.data_dir, f"{name}-first")
    os.makedirs(tmp)
    with open(f"{tmp}/client.pem", "w") as f:
        f.write(first["key"] + first["certificate"])
    with open(f"{tmp}/cert2.pem", "w") as f:  # the client's files are rewritten when it comes back
        f.write(second["certificate"])
    with open(f"{tmp}/key2.pem", "w") as f:
        f.write(second["key"])
    ca = f"{tmp}/ca.pem"
    with open(ca, "w") as f:
        f.write(second["caCertificate"])
    creds = [(f"{tmp}/client.pem", None), (f"{tmp}/cert2.pem", f"{tmp}/key2.pem")]
    for cert, key in creds:
        assert serves(kd, ca, cert, key)
    events = event_count(kd)

    r = kd.delete(f"{CLIENTS}/{name}")
    assert r.status_code == 200, r.text
    assert r.json()["name"] == name and r.json()["certificates"] == 2

    for cert, key in creds:
        for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
            err = refused(kd.kport, ca, cert, key, version)
            assert "CERTIFICATE_REVOKED" in err, err
    assert event_count(kd) == events + 1
    assert "pgcmk.Kmip/clients/delete" in activity(kd, name)
    assert_arm_error(kd.get(f"{CLIENTS}/{name}"), 404, "KmipClientNotFound")
    assert_arm_error(kd.delete(f"{CLIENTS}/{name}"), 404, "KmipClientNotFound")
    assert name not in {c["name"] for c in kd.get(CLIENTS).json()["value"]}
    assert event_count(kd) == events + 1  # a refused delete publishes nothing

    # The same name again is a new client: 201, its new certificate works, the old ones do not.
    again = kd.post(CLIENTS, json={"name": name})
    assert again.status_code == 201, again.text
    assert kd.get(f"{CLIENTS}/{name}").json()["certificates"] == 1
    f = again.json()["files"]
    assert serves(kd, f["caCertificate"], f["certificate"], f["key"])
    for cert, key in creds:
        assert "CERTIFICATE_REVOKED" in refused(kd.kport, ca, cert, key)


def test_another_clients_certificate_name_does_not_matter_only_its_own(kd):
    """A certificate is accepted for the client it was issued to; deleting one client leaves
    another's certificates alone."""
    a, b = new_name("a"), new_name("b")
    ca_ = kd.post(CLIENTS, json={"name": a}).json()
    cb = kd.post(CLIENTS, json={"name": b}).json()
    assert kd.delete(f"{CLIENTS}/{a}").status_code == 200
    assert "CERTIFICATE_REVOKED" in refused(kd.kport, ca_["files"]["caCertificate"],
                                            ca_["files"]["certificate"], ca_["files"]["key"])
    assert serves(kd, cb["files"]["caCertificate"], cb["files"]["certificate"], cb["files"]["key"])


def test_clients_survive_a_restart(tmp_path):
    pool, d = kmip_daemon(str(tmp_path))
    try:
        live = d.post(CLIENTS, json={"name": "live"}).json()
        dead = d.post(CLIENTS, json={"name": "dead"}).json()
        assert d.delete(f"{CLIENTS}/dead").status_code == 200
        d.restart()
        d.kport = kmip_port(d)
        assert serves(d, live["files"]["caCertificate"], live["files"]["certificate"],
                      live["files"]["key"])
        assert "CERTIFICATE_REVOKED" in refused(d.kport, dead["files"]["caCertificate"],
                                                dead["files"]["certificate"],
                                                dead["files"]["key"])
        assert [c["name"] for c in d.get(CLIENTS).json()["value"]] == ["live"]
    finally:
        problems = pool.finish()
    assert not problems, problems


def test_plain_http_port_serves_the_routes(kd):
    name = new_name("http")
    r = kd.s.post(kd.http_base + CLIENTS, json={"name": name}, timeout=10)
    assert r.status_code == 201, r.text
    assert kd.s.get(kd.http_base + f"{CLIENTS}/{name}", timeout=10).json()["name"] == name
