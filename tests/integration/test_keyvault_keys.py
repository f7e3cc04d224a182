"""The Key Vault keys data plane (https://{vault}.vault.localhost:PORT) through the real
azure.keyvault.keys KeyClient and CryptographyClient (challenge verification left on), with a
service principal's and a managed identity's tokens, plus raw requests and an openssl interop."""
import base64
import datetime
import json
import os
import re
import shutil
import socket
import subprocess
import time

import pytest

from conftest import SUB, TENANT, new_name

pytest.importorskip("azure.keyvault.keys")
from azure.core.exceptions import (HttpResponseError, ResourceExistsError,  # noqa: E402
                                   ResourceNotFoundError)
from azure.core.rest import HttpRequest  # noqa: E402
from azure.identity import ClientSecretCredential, ManagedIdentityCredential  # noqa: E402
from azure.keyvault.keys import KeyClient  # noqa: E402
from azure.keyvault.keys.crypto import (CryptographyClient, EncryptionAlgorithm,  # noqa: E402
                                        KeyWrapAlgorithm, SignatureAlgorithm)
from cryptography.exceptions import InvalidSignature  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import padding, rsa  # noqa: E402

ADMIN_APP = "00000000-0000-4000-8000-00000000c11e"
ADMIN_SECRET = "pgcmk-admin-secret"
ADMIN_OID = "00000000-0000-4000-8000-00000000a0a0"
KV_AV = "2022-07-01"
ALL_KEY_PERMS = ["encrypt", "decrypt", "wrapKey", "unwrapKey", "sign", "verify", "get", "list",
                 "create", "update", "import", "delete", "backup", "restore", "recover", "purge"]
KID_RE = r"^https://{vault}\.vault\.localhost:{port}/keys/{name}/[0-9a-f]{{32}}$"
CHALLENGE = ('Bearer authorization="https://localhost:{port}/' + TENANT + '", '
             'resource="https://vault.localhost:{port}"')
POLICY_MSG = ("The user, group or application 'appid={appid};oid={oid};iss=https://sts.windows.net/"
              + TENANT + "/' does not have keys {perm} permission on key vault "
              "'{vault};location=eastus'. For help resolving this issue, please see "
              "https://go.microsoft.com/fwlink/?linkid=2125287")
DAY = datetime.timedelta(days=1)


# --- helpers ---------------------------------------------------------------------------------

def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def b64u_dec(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def vault_path(rg, name):
    return (f"/subscriptions/{SUB}/resourceGroups/{rg}/providers/Microsoft.KeyVault/vaults/{name}"
            f"?api-version={KV_AV}")


def policy(oid, keys):
    return {"tenantId": TENANT, "objectId": oid, "permissions": {"keys": list(keys)}}


def make_vault(d, rg, policies, **props):
    name = "v" + new_name("")[1:13]
    body = {"location": "eastus", "properties": {
        "tenantId": TENANT, "sku": {"family": "A", "name": "standard"},
        "accessPolicies": policies, **props}}
    r = d.put(vault_path(rg, name), json=body)
    assert r.status_code == 201, r.text
    return name, r.json()["properties"]["vaultUri"]


def policy_op(d, rg, vault, op, entries):
    r = d.put(f"/subscriptions/{SUB}/resourceGroups/{rg}/providers/Microsoft.KeyVault/vaults/"
              f"{vault}/accessPolicies/{op}?api-version={KV_AV}",
              json={"properties": {"accessPolicies": entries}})
    assert r.status_code in (200, 201), r.text


def admin_cred(d):
    return ClientSecretCredential("adfs", ADMIN_APP, ADMIN_SECRET, authority=d.base,
                                  connection_verify=d.ca)


def token(d, scope="https://vault.azure.net/.default", app=ADMIN_APP, secret=ADMIN_SECRET):
    r = d.post("/adfs/oauth2/token", data={"grant_type": "client_credentials", "client_id": app,
                                           "client_secret": secret, "scope": scope})
    assert r.status_code == 200, r.text
    return r.json()["access_token"]


def public_key(kv_key):
    j = kv_key.key
    return rsa.RSAPublicNumbers(int.from_bytes(j.e, "big"), int.from_bytes(j.n, "big")).public_key()


def raw_op(kc, key, op, version=None, **body):
    """A remote crypto call the SDK would otherwise do locally (KeyClient.send_request)."""
    ver = version if version is not None else key.properties.version
    return kc.send_request(HttpRequest("POST", f"keys/{key.name}/{ver}/{op}", json=body))


def kv_error(resp_or_exc):
    """(status, code, innererror code, message) of a Key Vault error."""
    if isinstance(resp_or_exc, HttpResponseError):
        status, body = resp_or_exc.status_code, json.loads(resp_or_exc.response.text())
    else:
        status, body = resp_or_exc.status_code, resp_or_exc.json()
    err = body["error"]
    return status, err["code"], (err.get("innererror") or {}).get("code"), err["message"]


OAEP = {"RSA-OAEP": padding.OAEP(mgf=padding.MGF1(hashes.SHA1()), algorithm=hashes.SHA1(),
                                 label=None),
        "RSA-OAEP-256": padding.OAEP(mgf=padding.MGF1(hashes.SHA256()),
                                     algorithm=hashes.SHA256(), label=None),
        "RSA1_5": padding.PKCS1v15()}
SIGN = {"RS256": (hashes.SHA256, False), "RS384": (hashes.SHA384, False),
        "RS512": (hashes.SHA512, False), "PS256": (hashes.SHA256, True),
        "PS384": (hashes.SHA384, True), "PS512": (hashes.SHA512, True)}


def local_verify(pub, alg, digest, sig):
    h, pss = SIGN[alg]
    pad = (padding.PSS(mgf=padding.MGF1(h()), salt_length=h.digest_size) if pss
           else padding.PKCS1v15())
    from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
    pub.verify(sig, digest, pad, Prehashed(h()))


def digest_for(alg, data=b"pgcmk test message"):
    h = SIGN[alg][0]()
    ctx = hashes.Hash(h)
    ctx.update(data)
    return ctx.finalize()


# --- fixtures --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def resolves(daemon):
    try:
        socket.getaddrinfo("probe.vault.localhost", daemon.port)
    except socket.gaierror as e:
        pytest.skip(f"*.vault.localhost does not resolve ({e}); install libnss-myhostname and "
                    "add 'myhostname' to hosts: in /etc/nsswitch.conf (scripts/deps.sh test)")


@pytest.fixture(scope="module")
def rg(daemon, resolves):
    name = new_name("kvk")
    assert daemon.put_rg(name).status_code == 201
    return name


@pytest.fixture(scope="module")
def cred(daemon):
    return admin_cred(daemon)


@pytest.fixture(scope="module")
def vault(daemon, rg):
    """(name, uri) of a vault where the admin may do everything with keys."""
    return make_vault(daemon, rg, [policy(ADMIN_OID, ALL_KEY_PERMS)])


@pytest.fixture(scope="module")
def kc(daemon, vault, cred):
    return KeyClient(vault[1], cred, connection_verify=daemon.ca)


@pytest.fixture(scope="module")
def shared_key(kc):
    return kc.create_rsa_key(new_name("k"), size=2048)


@pytest.fixture(scope="module")
def imported(kc):
    """A key whose private half the test knows (imported as a JWK): an oracle for the crypto."""
    from azure.keyvault.keys import JsonWebKey
    priv = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pn = priv.private_numbers()

    def ib(i):
        return i.to_bytes((i.bit_length() + 7) // 8, "big")
    jwk = JsonWebKey(kty="RSA", n=ib(pn.public_numbers.n), e=ib(pn.public_numbers.e), d=ib(pn.d),
                     p=ib(pn.p), q=ib(pn.q), dp=ib(pn.dmp1), dq=ib(pn.dmq1), qi=ib(pn.iqmp),
                     key_ops=["encrypt", "decrypt", "wrapKey", "unwrapKey", "sign", "verify"])
    key = kc.import_key(new_name("imp"), jwk)
    return key, priv


def crypto_client(d, key, cred):
    return CryptographyClient(key, cred, connection_verify=d.ca)


# --- the challenge ---------------------------------------------------------------------------

@pytest.mark.parametrize("method,path", [
    ("POST", "/keys/k1/create?api-version=7.4-preview.1"),
    ("GET", "/keys?api-version=7.4"),
    ("GET", "/keys/k1?api-version=7.0"),
    ("POST", "/keys/k1/0123456789abcdef0123456789abcdef/unwrapkey?api-version=7.5"),
])
def test_first_request_without_token_gets_the_challenge(daemon, vault, method, path):
    url = vault[1].rstrip("/") + path
    # The SDK's first request: no Authorization, an empty body, a JSON content type.
    r = daemon.s.request(method, url, data=b"", headers={"Content-Type": "application/json"},
                         timeout=10)
    assert r.status_code == 401, r.text
    assert r.headers["WWW-Authenticate"] == CHALLENGE.format(port=daemon.port)
    assert r.json() == {"error": {"code": "Unauthorized",
                                  "message": "AKV10000: Request is missing a Bearer or PoP token."}}


def test_challenge_values_satisfy_the_sdk_parser(daemon, vault):
    """The SDK's own challenge parser and resource check accept what the vault sends."""
    from azure.keyvault.keys._shared.http_challenge import HttpChallenge
    from urllib.parse import urlparse
    r = daemon.s.get(vault[1] + "keys?api-version=7.4", timeout=10)
    ch = HttpChallenge(vault[1], r.headers["WWW-Authenticate"])
    assert ch.tenant_id == TENANT
    res = urlparse(ch.get_resource()).netloc
    assert urlparse(vault[1]).netloc.endswith("." + res)


@pytest.mark.parametrize("scope", ["https://vault.azure.net/.default",
                                   "https://vault.localhost:{port}/.default",
                                   "cfa8b339-82a2-471a-a3c9-0fc0be7a4093/.default"])
def test_vault_audiences_are_accepted(daemon, vault, scope):
    tok = token(daemon, scope.format(port=daemon.port))
    r = daemon.s.get(vault[1] + "keys?api-version=7.4",
                     headers={"Authorization": f"Bearer {tok}"}, timeout=10)
    assert r.status_code == 200, r.text
    assert "value" in r.json()


def test_arm_token_is_refused_with_a_challenge(daemon, vault):
    tok = token(daemon, "https://management.azure.com/.default")
    r = daemon.s.get(vault[1] + "keys?api-version=7.4",
                     headers={"Authorization": f"Bearer {tok}"}, timeout=10)
    assert r.status_code == 401, r.text
    assert r.headers["WWW-Authenticate"] == CHALLENGE.format(port=daemon.port)
    assert r.json()["error"]["code"] == "Unauthorized"


@pytest.mark.parametrize("av,ok", [("7.0", True), ("7.1", True), ("7.2", True), ("7.3", True),
                                   ("7.4", True), ("7.5", True), ("7.4-preview.1", True),
                                   ("6.0", False), ("2015-06-01", False)])
def test_api_versions(daemon, vault, av, ok):
    tok = token(daemon)
    r = daemon.s.get(vault[1] + f"keys?api-version={av}",
                     headers={"Authorization": f"Bearer {tok}"}, timeout=10)
    if ok:
        assert r.status_code == 200, r.text
    else:
        assert r.status_code == 400, r.text
        assert r.json()["error"]["code"] == "BadParameter"


@pytest.mark.parametrize("av", ["7.0", "7.2", "7.3"])
def test_sdk_with_older_api_versions(daemon, vault, cred, av):
    c = KeyClient(vault[1], cred, connection_verify=daemon.ca, api_version=av)
    k = c.create_rsa_key(new_name("av"), size=2048)
    assert c.get_key(k.name).id == k.id


def test_data_plane_headers(daemon, kc, shared_key):
    r = kc.send_request(HttpRequest("GET", f"keys/{shared_key.name}"))
    assert r.status_code == 200
    assert r.headers.get("x-ms-keyvault-region")
    assert r.headers.get("x-ms-request-id")


# --- keys: create, get, list, update ---------------------------------------------------------

@pytest.mark.parametrize("size", [2048, 3072, 4096])
def test_create_rsa_key(daemon, kc, vault, size):
    name = new_name("rsa")
    k = kc.create_rsa_key(name, size=size, tags={"purpose": "cmk"})
    assert re.match(KID_RE.format(vault=vault[0], port=daemon.port, name=name), k.id), k.id
    assert k.name == name and k.key_type == "RSA"
    assert public_key(k).key_size == size
    assert int.from_bytes(k.key.e, "big") == 65537
    assert k.key.d is None, "private key material must never be returned"
    p = k.properties
    assert p.enabled is True and p.tags == {"purpose": "cmk"}
    assert p.recovery_level == "Recoverable+Purgeable" and p.recoverable_days == 90
    now = datetime.datetime.now(datetime.timezone.utc)
    assert abs((p.created_on - now).total_seconds()) < 600 and p.updated_on == p.created_on
    assert set(k.key_operations) >= {"encrypt", "decrypt", "sign", "verify", "wrapKey",
                                     "unwrapKey"}


def test_create_wire_format(daemon, vault):
    tok = token(daemon)
    r = daemon.s.post(vault[1] + "keys/wire/create?api-version=7.4",
                      json={"kty": "RSA", "key_size": 2048, "key_ops": ["wrapKey", "unwrapKey"]},
                      headers={"Authorization": f"Bearer {tok}"}, timeout=10)
    assert r.status_code == 200, r.text
    b = r.json()
    assert set(b) >= {"key", "attributes"}
    assert b["key"]["key_ops"] == ["wrapKey", "unwrapKey"]
    assert set(b["key"]) >= {"kid", "kty", "n", "e"} and "d" not in b["key"]
    assert "=" not in b["key"]["n"] and "+" not in b["key"]["n"] and "/" not in b["key"]["n"]
    a = b["attributes"]
    assert a["enabled"] is True and isinstance(a["created"], int) and isinstance(a["updated"], int)
    assert a["recoveryLevel"] == "Recoverable+Purgeable"


@pytest.mark.parametrize("body", [{"kty": "RSA", "key_size": 1024},
                                  {"kty": "RSA", "key_size": 1000},
                                  {"kty": "nope"}, {"key_size": 2048}])
def test_create_rejects_bad_parameters(daemon, vault, body):
    tok = token(daemon)
    r = daemon.s.post(vault[1] + f"keys/{new_name('bad')}/create?api-version=7.4", json=body,
                      headers={"Authorization": f"Bearer {tok}"}, timeout=10)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "BadParameter"


def test_get_latest_and_versioned(kc):
    name = new_name("ver")
    v1 = kc.create_rsa_key(name, size=2048)
    v2 = kc.create_rsa_key(name, size=2048)
    assert v1.properties.version != v2.properties.version
    assert v1.key.n != v2.key.n
    latest = kc.get_key(name)
    assert latest.id == v2.id and latest.key.n == v2.key.n
    old = kc.get_key(name, version=v1.properties.version)
    assert old.id == v1.id and old.key.n == v1.key.n
    versions = {p.version for p in kc.list_properties_of_key_versions(name)}
    assert versions == {v1.properties.version, v2.properties.version}


def test_update_of_an_old_version_leaves_the_current_one(kc):
    name = new_name("old")
    v1 = kc.create_rsa_key(name, size=2048)
    v2 = kc.create_rsa_key(name, size=2048)
    kc.update_key_properties(name, v1.properties.version, enabled=False, tags={"old": "1"})
    assert kc.get_key(name, v1.properties.version).properties.enabled is False
    cur = kc.get_key(name)
    assert cur.id == v2.id and cur.properties.enabled is True and cur.properties.tags == {}


def test_delete_and_recover_keep_every_version(kc):
    name = new_name("allv")
    ids = {kc.create_rsa_key(name, size=2048).properties.version for _ in range(2)}
    kc.begin_delete_key(name, _polling_interval=0).wait()
    for v in ids:
        with pytest.raises(ResourceNotFoundError):
            kc.get_key(name, v)
    kc.begin_recover_deleted_key(name, _polling_interval=0).wait()
    assert {p.version for p in kc.list_properties_of_key_versions(name)} == ids


def test_list_keys(kc):
    names = {kc.create_rsa_key(new_name("lst"), size=2048).name for _ in range(2)}
    listed = {p.name: p for p in kc.list_properties_of_keys()}
    assert names <= set(listed)
    for n in names:
        # A list item has a version-less kid and the attributes.
        assert listed[n].version is None and listed[n].enabled is True


def test_list_pages(daemon, rg, cred):
    _, uri = make_vault(daemon, rg, [policy(ADMIN_OID, ALL_KEY_PERMS)])
    c = KeyClient(uri, cred, connection_verify=daemon.ca)
    for i in range(3):
        c.create_rsa_key(f"p{i}", size=2048)
    pages = list(c.list_properties_of_keys(max_page_size=1).by_page())
    assert len(pages) >= 3
    assert sorted(p.name for page in pages for p in page) == ["p0", "p1", "p2"]


@pytest.mark.parametrize("name", ["bad_name", "a" * 128, "dot.name"])
def test_invalid_key_names(daemon, vault, name):
    tok = token(daemon)
    r = daemon.s.post(vault[1] + f"keys/{name}/create?api-version=7.4",
                      json={"kty": "RSA", "key_size": 2048},
                      headers={"Authorization": f"Bearer {tok}"}, timeout=10)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "BadParameter"


def test_key_names_ignore_case(kc):
    name = new_name("Case")
    k = kc.create_rsa_key(name, size=2048)
    assert kc.get_key(name.upper()).key.n == k.key.n


def test_unknown_key_is_key_not_found(kc):
    name = new_name("nokey")
    with pytest.raises(ResourceNotFoundError) as ei:
        kc.get_key(name)
    status, code, _, msg = kv_error(ei.value)
    assert (status, code) == (404, "KeyNotFound")
    assert msg.startswith(f"A key with (name/id) {name} was not found in this key vault."), msg


def test_unknown_version_is_key_not_found(kc, shared_key):
    with pytest.raises(ResourceNotFoundError) as ei:
        kc.get_key(shared_key.name, version="0" * 32)
    assert kv_error(ei.value)[1] == "KeyNotFound"


def test_update_key_properties(kc):
    k = kc.create_rsa_key(new_name("upd"), size=2048)
    nbf = datetime.datetime(2030, 1, 1, tzinfo=datetime.timezone.utc)
    exp = datetime.datetime(2031, 1, 1, tzinfo=datetime.timezone.utc)
    u = kc.update_key_properties(k.name, k.properties.version, enabled=False, not_before=nbf,
                                 expires_on=exp, tags={"a": "b"},
                                 key_operations=["wrapKey", "unwrapKey"])
    assert u.id == k.id
    assert u.properties.enabled is False
    assert u.properties.not_before == nbf and u.properties.expires_on == exp
    assert u.properties.tags == {"a": "b"}
    assert u.key_operations == ["wrapKey", "unwrapKey"]
    assert u.properties.updated_on >= k.properties.updated_on
    got = kc.get_key(k.name)
    assert (got.properties.enabled, got.properties.expires_on, got.properties.tags) == \
        (False, exp, {"a": "b"})
    # The key material does not change.
    assert got.key.n == k.key.n


# --- delete, recover, purge ------------------------------------------------------------------

def test_delete_get_list_recover(kc, vault, daemon):
    name = new_name("del")
    k = kc.create_rsa_key(name, size=2048)
    poller = kc.begin_delete_key(name, _polling_interval=0)
    deleted = poller.result()
    poller.wait()
    assert deleted.name == name and deleted.id == k.id
    assert deleted.recovery_id == \
        f"https://{vault[0]}.vault.localhost:{daemon.port}/deletedkeys/{name}"
    assert deleted.scheduled_purge_date - deleted.deleted_date == 90 * DAY
    with pytest.raises(ResourceNotFoundError) as ei:
        kc.get_key(name)
    assert kv_error(ei.value)[1] == "KeyNotFound"
    assert name not in {p.name for p in kc.list_properties_of_keys()}
    d = kc.get_deleted_key(name)
    assert d.recovery_id == deleted.recovery_id and d.key.n == k.key.n
    assert name in {x.name for x in kc.list_deleted_keys()}
    # The name stays taken.
    with pytest.raises(ResourceExistsError) as ei:
        kc.create_rsa_key(name, size=2048)
    status, code, inner, msg = kv_error(ei.value)
    assert (status, code, inner) == (409, "Conflict", "ObjectIsDeletedButRecoverable")
    assert msg == (f"Key {name} is currently in a deleted but recoverable state, and its name "
                   "cannot be reused; in this state, the key can only be recovered or purged.")
    # Crypto on a deleted key finds no key.
    assert kv_error(raw_op(kc, k, "wrapkey", alg="RSA-OAEP", value=b64u(b"x")))[:2] == \
        (404, "KeyNotFound")
    rec = kc.begin_recover_deleted_key(name, _polling_interval=0)
    rec.wait()
    assert rec.result().id == k.id
    assert kc.get_key(name).key.n == k.key.n
    with pytest.raises(ResourceNotFoundError):
        kc.get_deleted_key(name)


def test_purge_deleted_key(kc):
    name = new_name("pur")
    kc.create_rsa_key(name, size=2048)
    kc.begin_delete_key(name, _polling_interval=0).wait()
    kc.purge_deleted_key(name)
    with pytest.raises(ResourceNotFoundError):
        kc.get_deleted_key(name)
    assert name not in {x.name for x in kc.list_deleted_keys()}
    # The name is free: a new key, with new material.
    assert kc.create_rsa_key(name, size=2048).name == name


def test_purge_refused_under_purge_protection(daemon, rg, cred):
    name, uri = make_vault(daemon, rg, [policy(ADMIN_OID, ALL_KEY_PERMS)],
                           enablePurgeProtection=True, softDeleteRetentionInDays=30)
    c = KeyClient(uri, cred, connection_verify=daemon.ca)
    k = c.create_rsa_key("pp", size=2048)
    assert k.properties.recoverable_days == 30
    deleted = c.begin_delete_key("pp", _polling_interval=0).result()
    assert deleted.scheduled_purge_date - deleted.deleted_date == 30 * DAY
    with pytest.raises(HttpResponseError) as ei:
        c.purge_deleted_key("pp")
    assert ei.value.status_code == 403
    assert c.get_deleted_key("pp").name == "pp"


def test_recovery_level_with_purge_protection(daemon, rg, cred):
    _, uri = make_vault(daemon, rg, [policy(ADMIN_OID, ALL_KEY_PERMS)], enablePurgeProtection=True)
    k = KeyClient(uri, cred, connection_verify=daemon.ca).create_rsa_key("rl", size=2048)
    assert k.properties.recovery_level == "Recoverable"
    assert k.properties.recoverable_days == 90


@pytest.mark.parametrize("days,protect,level", [(7, False, "CustomizedRecoverable+Purgeable"),
                                                (30, True, "CustomizedRecoverable")])
def test_recovery_level_with_short_retention(daemon, rg, cred, days, protect, level):
    props = {"softDeleteRetentionInDays": days}
    if protect:
        props["enablePurgeProtection"] = True
    _, uri = make_vault(daemon, rg, [policy(ADMIN_OID, ALL_KEY_PERMS)], **props)
    k = KeyClient(uri, cred, connection_verify=daemon.ca).create_rsa_key("rl", size=2048)
    assert k.properties.recoverable_days == days
    assert k.properties.recovery_level == level


def test_keys_survive_vault_soft_delete_and_recover(daemon, rg, cred):
    name, uri = make_vault(daemon, rg, [policy(ADMIN_OID, ALL_KEY_PERMS)])
    c = KeyClient(uri, cred, connection_verify=daemon.ca)
    k = c.create_rsa_key("keep", size=2048)
    assert daemon.delete(vault_path(rg, name)).status_code in (200, 204)
    with pytest.raises(HttpResponseError):
        c.get_key("keep")
    r = daemon.put(vault_path(rg, name), json={"location": "eastus", "properties": {
        "tenantId": TENANT, "sku": {"family": "A", "name": "standard"}, "createMode": "recover"}})
    assert r.status_code in (200, 201), r.text
    assert c.get_key("keep").key.n == k.key.n


def test_vault_purge_removes_its_keys(daemon, rg, cred):
    name, uri = make_vault(daemon, rg, [policy(ADMIN_OID, ALL_KEY_PERMS)])
    c = KeyClient(uri, cred, connection_verify=daemon.ca)
    c.create_rsa_key("gone", size=2048)
    c.create_rsa_key("deleted", size=2048)
    c.begin_delete_key("deleted", _polling_interval=0).wait()
    assert daemon.delete(vault_path(rg, name)).status_code in (200, 204)
    r = daemon.post(f"/subscriptions/{SUB}/providers/Microsoft.KeyVault/locations/eastus/"
                    f"deletedVaults/{name}/purge?api-version={KV_AV}")
    assert r.status_code in (200, 202), r.text
    make_vault_named(daemon, rg, name, [policy(ADMIN_OID, ALL_KEY_PERMS)])
    assert list(c.list_properties_of_keys()) == []
    assert list(c.list_deleted_keys()) == []
    assert c.create_rsa_key("gone", size=2048).properties.version


def make_vault_named(d, rg, name, policies):
    r = d.put(vault_path(rg, name), json={"location": "eastus", "properties": {
        "tenantId": TENANT, "sku": {"family": "A", "name": "standard"},
        "accessPolicies": policies}})
    assert r.status_code == 201, r.text


def test_clock_purges_deleted_keys(start_daemon, resolves):
    d = start_daemon(http=False)
    assert d.put_rg("g").status_code == 201
    _, uri = make_vault(d, "g", [policy(ADMIN_OID, ALL_KEY_PERMS)], softDeleteRetentionInDays=7,
                        enablePurgeProtection=True)
    c = KeyClient(uri, admin_cred(d), connection_verify=d.ca)
    c.create_rsa_key("k", size=2048)
    c.begin_delete_key("k", _polling_interval=0).wait()
    d.clock(advance="P6D")
    assert c.get_deleted_key("k").name == "k"
    d.clock(advance="P1DT1M")
    with pytest.raises(ResourceNotFoundError):
        c.get_deleted_key("k")
    assert list(c.list_deleted_keys()) == []
    assert c.create_rsa_key("k", size=2048).name == "k"


# --- crypto ----------------------------------------------------------------------------------

@pytest.mark.parametrize("alg", [KeyWrapAlgorithm.rsa1_5, KeyWrapAlgorithm.rsa_oaep,
                                 KeyWrapAlgorithm.rsa_oaep_256])
def test_wrap_locally_unwrap_in_the_vault(daemon, shared_key, cred, alg):
    cc = crypto_client(daemon, shared_key, cred)
    cek = os.urandom(32)
    w = cc.wrap_key(alg, cek)  # local, with the public key
    assert len(w.encrypted_key) == 256
    assert cc.unwrap_key(alg, w.encrypted_key).key == cek  # remote


@pytest.mark.parametrize("alg", ["RSA1_5", "RSA-OAEP", "RSA-OAEP-256"])
def test_remote_wrap_and_encrypt_match_a_known_private_key(kc, imported, alg):
    key, priv = imported
    secret = os.urandom(32)
    for op in ("wrapkey", "encrypt"):
        r = raw_op(kc, key, op, alg=alg, value=b64u(secret))
        assert r.status_code == 200, r.text
        assert r.json()["kid"] == key.id
        assert priv.decrypt(b64u_dec(r.json()["value"]), OAEP[alg]) == secret


@pytest.mark.parametrize("alg", ["RSA1_5", "RSA-OAEP", "RSA-OAEP-256"])
def test_remote_unwrap_and_decrypt_of_local_ciphertext(kc, imported, alg):
    key, priv = imported
    secret = os.urandom(32)
    ct = priv.public_key().encrypt(secret, OAEP[alg])
    for op in ("unwrapkey", "decrypt"):
        r = raw_op(kc, key, op, alg=alg, value=b64u(ct))
        assert r.status_code == 200, r.text
        assert b64u_dec(r.json()["value"]) == secret


def test_unwrap_with_the_wrong_algorithm_fails(kc, imported):
    key, priv = imported
    ct = priv.public_key().encrypt(os.urandom(32), OAEP["RSA-OAEP-256"])
    r = raw_op(kc, key, "unwrapkey", alg="RSA-OAEP", value=b64u(ct))
    assert r.status_code == 400, r.text
    r = raw_op(kc, key, "unwrapkey", alg="A256KW", value=b64u(ct))
    assert r.status_code == 400, r.text


@pytest.mark.parametrize("alg", [EncryptionAlgorithm.rsa1_5, EncryptionAlgorithm.rsa_oaep,
                                 EncryptionAlgorithm.rsa_oaep_256])
def test_sdk_encrypt_decrypt(daemon, shared_key, cred, alg):
    cc = crypto_client(daemon, shared_key, cred)
    pt = b"forty-two bytes of customer data, or so.."
    res = cc.encrypt(alg, pt)
    assert cc.decrypt(alg, res.ciphertext).plaintext == pt


@pytest.mark.parametrize("alg", ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"])
def test_sign_in_the_vault_verify_locally_and_remotely(daemon, kc, shared_key, cred, alg):
    cc = crypto_client(daemon, shared_key.id, cred)  # by kid: the SDK fetches the key first
    digest = digest_for(alg)
    res = cc.sign(SignatureAlgorithm(alg), digest)  # always remote
    assert res.key_id == shared_key.id
    local_verify(public_key(shared_key), alg, digest, res.signature)
    assert cc.verify(SignatureAlgorithm(alg), digest, res.signature).is_valid
    r = raw_op(kc, shared_key, "verify", alg=alg, digest=b64u(digest), value=b64u(res.signature))
    assert r.status_code == 200 and r.json()["value"] is True, r.text
    bad = bytearray(res.signature)
    bad[-1] ^= 1
    r = raw_op(kc, shared_key, "verify", alg=alg, digest=b64u(digest), value=b64u(bytes(bad)))
    assert r.status_code == 200 and r.json()["value"] is False, r.text
    with pytest.raises(InvalidSignature):
        local_verify(public_key(shared_key), alg, digest, bytes(bad))


def test_rs256_signature_is_deterministic_pkcs1(kc, imported):
    key, priv = imported
    digest = digest_for("RS256")
    r = raw_op(kc, key, "sign", alg="RS256", value=b64u(digest))
    assert r.status_code == 200, r.text
    from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
    assert b64u_dec(r.json()["value"]) == priv.sign(digest, padding.PKCS1v15(),
                                                     Prehashed(hashes.SHA256()))


def test_sign_rejects_a_digest_of_the_wrong_length(kc, shared_key):
    r = raw_op(kc, shared_key, "sign", alg="RS256", value=b64u(b"x" * 20))
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "BadParameter"


def test_versioned_crypto_uses_that_version(daemon, kc, cred):
    name = new_name("vc")
    v1 = kc.create_rsa_key(name, size=2048)
    kc.create_rsa_key(name, size=2048)
    digest = digest_for("RS256")
    r = raw_op(kc, v1, "sign", alg="RS256", value=b64u(digest))
    assert r.status_code == 200 and r.json()["kid"] == v1.id
    local_verify(public_key(v1), "RS256", digest, b64u_dec(r.json()["value"]))


def test_openssl_interop_oaep_256(daemon, shared_key, cred, tmp_path):
    """A CEK wrapped by openssl with the key's public JWK unwraps in the vault (RSA-OAEP-256)."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    pem = public_key(shared_key).public_bytes(serialization.Encoding.PEM,
                                              serialization.PublicFormat.SubjectPublicKeyInfo)
    (tmp_path / "pub.pem").write_bytes(pem)
    cek = os.urandom(32)
    (tmp_path / "cek.bin").write_bytes(cek)
    subprocess.run(["openssl", "pkeyutl", "-encrypt", "-pubin", "-inkey", str(tmp_path / "pub.pem"),
                    "-pkeyopt", "rsa_padding_mode:oaep", "-pkeyopt", "rsa_oaep_md:sha256",
                    "-in", str(tmp_path / "cek.bin"), "-out", str(tmp_path / "wrapped.bin")],
                   check=True, capture_output=True, timeout=30)
    wrapped = (tmp_path / "wrapped.bin").read_bytes()
    assert len(wrapped) == 256
    cc = crypto_client(daemon, shared_key, cred)
    assert cc.unwrap_key(KeyWrapAlgorithm.rsa_oaep_256, wrapped).key == cek
    # RSA-OAEP (SHA-1) must not unwrap the SHA-256 padding.
    with pytest.raises(HttpResponseError):
        cc.unwrap_key(KeyWrapAlgorithm.rsa_oaep, wrapped)


# --- key state: disabled, expired, not yet valid, key_ops -----------------------------------

def test_disabled_key_refuses_operations(daemon, kc, cred):
    k = kc.create_rsa_key(new_name("dis"), size=2048)
    cc = crypto_client(daemon, k, cred)
    w = cc.wrap_key(KeyWrapAlgorithm.rsa_oaep_256, os.urandom(32))
    sig = cc.sign(SignatureAlgorithm.rs256, digest_for("RS256")).signature
    kc.update_key_properties(k.name, enabled=False)
    for op, body in (("unwrapkey", {"alg": "RSA-OAEP-256", "value": b64u(w.encrypted_key)}),
                     ("wrapkey", {"alg": "RSA-OAEP-256", "value": b64u(os.urandom(32))}),
                     ("sign", {"alg": "RS256", "value": b64u(digest_for("RS256"))}),
                     ("decrypt", {"alg": "RSA-OAEP-256", "value": b64u(w.encrypted_key)})):
        status, code, inner, msg = kv_error(raw_op(kc, k, op, **body))
        opname = {"unwrapkey": "unwrapKey", "wrapkey": "wrapKey"}.get(op, op)
        assert (status, code, inner) == (403, "Forbidden", "KeyDisabled"), (op, msg)
        assert msg == f"Operation {opname} is not allowed on a disabled key."
    with pytest.raises(HttpResponseError) as ei:
        cc.unwrap_key(KeyWrapAlgorithm.rsa_oaep_256, w.encrypted_key)
    assert kv_error(ei.value)[2] == "KeyDisabled"
    kc.update_key_properties(k.name, enabled=True)
    assert cc.unwrap_key(KeyWrapAlgorithm.rsa_oaep_256, w.encrypted_key).key
    assert sig


def _window_checks(kc, k, inner):
    """wrap/encrypt/sign refused with `inner`; unwrap/decrypt/verify still work."""
    pub = public_key(k)
    cek = os.urandom(32)
    ct = pub.encrypt(cek, OAEP["RSA-OAEP-256"])
    for op in ("wrapkey", "encrypt"):
        status, code, got, msg = kv_error(raw_op(kc, k, op, alg="RSA-OAEP-256", value=b64u(cek)))
        assert (status, got) == (403, inner), (op, msg)
    status, _, got, msg = kv_error(raw_op(kc, k, "sign", alg="RS256",
                                          value=b64u(digest_for("RS256"))))
    assert (status, got) == (403, inner), msg
    for op in ("unwrapkey", "decrypt"):
        r = raw_op(kc, k, op, alg="RSA-OAEP-256", value=b64u(ct))
        assert r.status_code == 200, (op, r.text)
        assert b64u_dec(r.json()["value"]) == cek
    return ct


def test_expired_key(kc, shared_key):
    k = kc.create_rsa_key(new_name("exp"), size=2048)
    digest = digest_for("RS256")
    sig = b64u_dec(raw_op(kc, k, "sign", alg="RS256", value=b64u(digest)).json()["value"])
    past = datetime.datetime.now(datetime.timezone.utc) - DAY
    kc.update_key_properties(k.name, expires_on=past)
    _window_checks(kc, k, "KeyExpired")
    r = raw_op(kc, k, "verify", alg="RS256", digest=b64u(digest), value=b64u(sig))
    assert r.status_code == 200 and r.json()["value"] is True, r.text


def test_not_yet_valid_key(kc):
    future = datetime.datetime.now(datetime.timezone.utc) + 30 * DAY
    k = kc.create_rsa_key(new_name("nbf"), size=2048, not_before=future)
    _window_checks(kc, k, "KeyNotYetValid")


def test_key_expires_on_the_virtual_clock(start_daemon, resolves):
    d = start_daemon(http=False)
    assert d.put_rg("g").status_code == 201
    _, uri = make_vault(d, "g", [policy(ADMIN_OID, ALL_KEY_PERMS)])
    c = KeyClient(uri, admin_cred(d), connection_verify=d.ca)
    exp = datetime.datetime.now(datetime.timezone.utc) + 10 * DAY
    k = c.create_rsa_key("soon", size=2048, expires_on=exp)
    r = raw_op(c, k, "wrapkey", alg="RSA-OAEP-256", value=b64u(os.urandom(32)))
    assert r.status_code == 200, r.text
    d.clock(advance="P11D")
    _window_checks(c, k, "KeyExpired")


def test_operation_outside_key_ops(daemon, kc, cred):
    k = kc.create_rsa_key(new_name("ops"), size=2048, key_operations=["wrapKey", "unwrapKey"])
    assert k.key_operations == ["wrapKey", "unwrapKey"]
    for op, body in (("sign", {"alg": "RS256", "value": b64u(digest_for("RS256"))}),
                     ("encrypt", {"alg": "RSA-OAEP", "value": b64u(b"x")})):
        status, code, inner, msg = kv_error(raw_op(kc, k, op, **body))
        assert (status, inner) == (403, "KeyOperationForbidden"), msg
        assert op in msg
    assert raw_op(kc, k, "wrapkey", alg="RSA-OAEP", value=b64u(b"x" * 32)).status_code == 200
    # Taking unwrapKey away through update.
    kc.update_key_properties(k.name, key_operations=["wrapKey"])
    status, _, inner, _ = kv_error(raw_op(kc, k, "unwrapkey", alg="RSA-OAEP",
                                          value=b64u(b"\0" * 256)))
    assert (status, inner) == (403, "KeyOperationForbidden")


def test_unknown_key_crypto_is_key_not_found(kc, shared_key):
    class Ghost:
        name = new_name("ghost")

        class properties:
            version = "0" * 32
    status, code, _, _ = kv_error(raw_op(kc, Ghost, "wrapkey", alg="RSA-OAEP", value=b64u(b"x")))
    assert (status, code) == (404, "KeyNotFound")


# --- access policies -------------------------------------------------------------------------

def test_access_policy_is_enforced_per_permission(daemon, rg, cred):
    sp = daemon.post("/emulator/principals", json={"displayName": new_name("sp")}).json()
    name, uri = make_vault(daemon, rg, [policy(ADMIN_OID, ALL_KEY_PERMS)])
    k = KeyClient(uri, cred, connection_verify=daemon.ca).create_rsa_key("k", size=2048)
    sp_cred = ClientSecretCredential("adfs", sp["appId"], sp["password"], authority=daemon.base,
                                     connection_verify=daemon.ca)
    c = KeyClient(uri, sp_cred, connection_verify=daemon.ca)
    with pytest.raises(HttpResponseError) as ei:
        c.get_key("k")
    status, code, inner, msg = kv_error(ei.value)
    assert (status, code, inner) == (403, "Forbidden", "ForbiddenByPolicy")
    assert msg == POLICY_MSG.format(appid=sp["appId"], oid=sp["objectId"], perm="get", vault=name)
    policy_op(daemon, rg, name, "add", [policy(sp["objectId"], ["get"])])
    assert c.get_key("k").id == k.id
    with pytest.raises(HttpResponseError) as ei:
        list(c.list_properties_of_keys())
    assert kv_error(ei.value)[3] == POLICY_MSG.format(appid=sp["appId"], oid=sp["objectId"],
                                                      perm="list", vault=name)
    with pytest.raises(HttpResponseError) as ei:
        c.create_rsa_key("k2", size=2048)
    assert "keys create permission" in kv_error(ei.value)[3]
    # "all" grants everything.
    policy_op(daemon, rg, name, "replace", [policy(sp["objectId"], ["all"])])
    assert c.create_rsa_key("k2", size=2048).name == "k2"


def test_rbac_vault_admits_any_tenant_principal(daemon, rg, cred):
    """docs/keyvault.md: role assignments are not emulated; on an RBAC vault the access policies
    are not consulted and any valid token of the tenant may use the keys."""
    sp = daemon.post("/emulator/principals", json={"displayName": "rbac"}).json()
    _, uri = make_vault(daemon, rg, [], enableRbacAuthorization=True)
    sp_cred = ClientSecretCredential("adfs", sp["appId"], sp["password"], authority=daemon.base,
                                     connection_verify=daemon.ca)
    assert KeyClient(uri, sp_cred, connection_verify=daemon.ca).create_rsa_key("r", size=2048)


def test_unknown_vault_host(daemon, resolves):
    tok = token(daemon)
    url = f"https://nosuchvault1.vault.localhost:{daemon.port}/keys?api-version=7.4"
    r = daemon.s.get(url, headers={"Authorization": f"Bearer {tok}"}, timeout=10)
    assert r.status_code == 404, r.text
    assert r.json()["error"]["code"] == "VaultNotFound"


def test_vault_with_capitals_in_its_name(daemon, rg, cred):
    name = "KvCaps" + new_name("")[1:9]
    r = daemon.put(vault_path(rg, name), json={"location": "eastus", "properties": {
        "tenantId": TENANT, "sku": {"family": "A", "name": "standard"},
        "accessPolicies": [policy(ADMIN_OID, ALL_KEY_PERMS)]}})
    assert r.status_code == 201, r.text
    uri = r.json()["properties"]["vaultUri"]
    assert KeyClient(uri, cred, connection_verify=daemon.ca).create_rsa_key("k", size=2048)


# --- the CMK case: a managed identity's token ------------------------------------------------

def test_cmk_with_a_managed_identity(daemon, rg, cred, monkeypatch):
    r = daemon.put(f"/subscriptions/{SUB}/resourceGroups/{rg}/providers/Microsoft.ManagedIdentity/"
                   f"userAssignedIdentities/{new_name('cmk')}?api-version=2023-01-31",
                   json={"location": "eastus"})
    assert r.status_code == 201, r.text
    mi = r.json()["properties"]
    name, uri = make_vault(daemon, rg, [policy(ADMIN_OID, ALL_KEY_PERMS),
                                        policy(mi["principalId"], ["get", "wrapKey", "unwrapKey"])])
    key = KeyClient(uri, cred, connection_verify=daemon.ca).create_rsa_key("cmk", size=2048)

    monkeypatch.setenv("IDENTITY_ENDPOINT", f"{daemon.base}/msi/token")
    monkeypatch.setenv("IDENTITY_HEADER", "x")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", daemon.ca)
    for k in ("MSI_ENDPOINT", "MSI_SECRET", "IDENTITY_SERVER_THUMBPRINT", "AZURE_CLIENT_ID"):
        monkeypatch.delenv(k, raising=False)
    mi_cred = ManagedIdentityCredential(client_id=mi["clientId"])
    cc = CryptographyClient(key.id, mi_cred, connection_verify=daemon.ca)
    dek = os.urandom(32)
    wrapped = cc.wrap_key(KeyWrapAlgorithm.rsa_oaep_256, dek).encrypted_key
    assert cc.unwrap_key(KeyWrapAlgorithm.rsa_oaep_256, wrapped).key == dek

    # The identity may not list or create keys.
    mkc = KeyClient(uri, mi_cred, connection_verify=daemon.ca)
    with pytest.raises(HttpResponseError) as ei:
        mkc.create_rsa_key("nope", size=2048)
    assert kv_error(ei.value)[2] == "ForbiddenByPolicy"

    # Revoke unwrapKey: the CMK becomes unusable.
    policy_op(daemon, rg, name, "remove", [policy(mi["principalId"], ["unwrapKey"])])
    with pytest.raises(HttpResponseError) as ei:
        cc.unwrap_key(KeyWrapAlgorithm.rsa_oaep_256, wrapped)
    status, code, inner, msg = kv_error(ei.value)
    assert (status, code, inner) == (403, "Forbidden", "ForbiddenByPolicy")
    assert msg == POLICY_MSG.format(appid=mi["clientId"], oid=mi["principalId"], perm="unwrapKey",
                                    vault=name)
    # wrapKey and get are still granted.
    assert mkc.get_key("cmk").id == key.id
    # Grant it back.
    policy_op(daemon, rg, name, "add", [policy(mi["principalId"], ["unwrapKey"])])
    assert cc.unwrap_key(KeyWrapAlgorithm.rsa_oaep_256, wrapped).key == dek


def test_cmk_with_an_imds_token(daemon, rg, cred):
    """The same with a raw IMDS token for https://vault.azure.net (no SDK credential)."""
    r = daemon.put(f"/subscriptions/{SUB}/resourceGroups/{rg}/providers/Microsoft.ManagedIdentity/"
                   f"userAssignedIdentities/{new_name('cmk')}?api-version=2023-01-31",
                   json={"location": "eastus"})
    mi = r.json()["properties"]
    name, uri = make_vault(daemon, rg, [policy(ADMIN_OID, ALL_KEY_PERMS),
                                        policy(mi["principalId"], ["wrapKey", "unwrapKey"])])
    key = KeyClient(uri, cred, connection_verify=daemon.ca).create_rsa_key("cmk", size=2048)
    t = daemon.get("/metadata/identity/oauth2/token", headers={"Metadata": "true"}, params={
        "api-version": "2018-02-01", "resource": "https://vault.azure.net",
        "client_id": mi["clientId"]}).json()["access_token"]
    h = {"Authorization": f"Bearer {t}"}
    dek = os.urandom(32)
    r = daemon.s.post(f"{key.id}/wrapkey?api-version=7.4", headers=h, timeout=10,
                      json={"alg": "RSA-OAEP-256", "value": b64u(dek)})
    assert r.status_code == 200, r.text
    r = daemon.s.post(f"{key.id}/unwrapkey?api-version=7.4", headers=h, timeout=10,
                      json={"alg": "RSA-OAEP-256", "value": r.json()["value"]})
    assert r.status_code == 200 and b64u_dec(r.json()["value"]) == dek, r.text
    # No get permission: reading the key is refused.
    r = daemon.s.get(f"{key.id}?api-version=7.4", headers=h, timeout=10)
    assert r.status_code == 403 and r.json()["error"]["innererror"]["code"] == "ForbiddenByPolicy"


class StaticToken:
    """The simplest credential: any object with get_token (here a raw IMDS token)."""

    def __init__(self, tok, exp):
        self.tok, self.exp = tok, exp

    def get_token(self, *scopes, **kw):
        from azure.core.credentials import AccessToken
        return AccessToken(self.tok, self.exp)


def test_sdk_falls_back_to_remote_wrap_without_get_permission(daemon, rg, cred):
    """A CryptographyClient whose identity may not read the key (403 on GET) wraps remotely."""
    r = daemon.put(f"/subscriptions/{SUB}/resourceGroups/{rg}/providers/Microsoft.ManagedIdentity/"
                   f"userAssignedIdentities/{new_name('cmk')}?api-version=2023-01-31",
                   json={"location": "eastus"})
    mi = r.json()["properties"]
    _, uri = make_vault(daemon, rg, [policy(ADMIN_OID, ALL_KEY_PERMS),
                                     policy(mi["principalId"], ["wrapKey", "unwrapKey"])])
    key = KeyClient(uri, cred, connection_verify=daemon.ca).create_rsa_key("cmk", size=2048)
    body = daemon.get("/metadata/identity/oauth2/token", headers={"Metadata": "true"}, params={
        "api-version": "2018-02-01", "resource": f"https://vault.localhost:{daemon.port}",
        "client_id": mi["clientId"]}).json()
    cc = CryptographyClient(key.id, StaticToken(body["access_token"], int(body["expires_on"])),
                            connection_verify=daemon.ca)
    dek = os.urandom(32)
    w = cc.wrap_key(KeyWrapAlgorithm.rsa_oaep_256, dek)
    assert w.key_id == key.id and len(w.encrypted_key) == 256
    assert cc.unwrap_key(KeyWrapAlgorithm.rsa_oaep_256, w.encrypted_key).key == dek
    # The remote wrap really used this key: the admin unwraps it too.
    admin_cc = CryptographyClient(key, cred, connection_verify=daemon.ca)
    assert admin_cc.unwrap_key(KeyWrapAlgorithm.rsa_oaep_256, w.encrypted_key).key == dek


# --- the data plane's in-memory caches (src/vault/keys.c) --------------------------------------
# Each server thread caches the vault (access policies, RBAC flag) and the key versions it used;
# any write must show on the very next request, whichever thread serves it. Every check below is
# made over several fresh connections (SO_REUSEPORT spreads them over the listener threads) plus
# one keep-alive session, after warming the caches of those threads the same way.

FRESH = 10


class Probe:
    """Crypto and get requests against one key, on fresh connections and on one kept-alive."""

    def __init__(self, d, vault_uri, key_name, tok):
        import requests
        self.requests = requests
        self.d, self.base, self.key = d, vault_uri.rstrip("/"), key_name
        self.headers = {"Authorization": f"Bearer {tok}"}
        self.session = requests.Session()
        self.session.verify = d.ca

    def _send(self, http, op, version, body):
        path = f"{self.base}/keys/{self.key}" + (f"/{version}" if version else "")
        url = f"{path}/{op}?api-version=7.4" if op else f"{path}?api-version=7.4"
        if op:
            return http.post(url, json=body, headers=self.headers, verify=self.d.ca, timeout=10)
        return http.get(url, headers=self.headers, verify=self.d.ca, timeout=10)

    def all(self, op, version="", **body):
        """The same request on FRESH new connections and twice on the kept-alive one."""
        out = []
        for _ in range(FRESH):
            with self.requests.Session() as s:
                s.verify = self.d.ca
                out.append(self._send(s, op, version, body))
        out += [self._send(self.session, op, version, body) for _ in range(2)]
        return out

    def wrap(self, version=""):
        return self.all("wrapkey", version, alg="RSA-OAEP-256", value=b64u(os.urandom(32)))

    def expect(self, responses, status, inner=None):
        for r in responses:
            assert r.status_code == status, r.text
            if inner:
                assert r.json()["error"].get("innererror", {}).get("code") == inner, r.text
        return responses


def test_cached_key_follows_every_key_write(daemon, rg, cred):
    _, uri = make_vault(daemon, rg, [policy(ADMIN_OID, ["all"])])
    c = KeyClient(uri, cred, connection_verify=daemon.ca)
    k = c.create_rsa_key("hot", size=2048)
    p = Probe(daemon, uri, "hot", token(daemon))
    ct = b64u(public_key(k).encrypt(b"\x01" * 32, OAEP["RSA-OAEP-256"]))

    def unwrap(version=""):
        return p.all("unwrapkey", version, alg="RSA-OAEP-256", value=ct)

    for r in p.expect(p.wrap(), 200) + p.expect(unwrap(), 200):  # warm every thread
        assert r.json()["kid"] == k.id
    # enabled
    c.update_key_properties("hot", enabled=False)
    p.expect(p.wrap(), 403, "KeyDisabled")
    p.expect(unwrap(k.properties.version), 403, "KeyDisabled")
    assert all(r.json()["attributes"]["enabled"] is False for r in p.all(None))
    c.update_key_properties("hot", enabled=True)
    p.expect(unwrap(), 200)
    # key_ops
    c.update_key_properties("hot", key_operations=["wrapKey"])
    p.expect(unwrap(), 403, "KeyOperationForbidden")
    p.expect(p.wrap(), 200)
    c.update_key_properties("hot", key_operations=["wrapKey", "unwrapKey"])
    p.expect(unwrap(), 200)
    # exp and nbf (judged against the clock on every request, stored by update)
    c.update_key_properties("hot", expires_on=datetime.datetime.now(datetime.timezone.utc) - DAY)
    p.expect(p.wrap(), 403, "KeyExpired")
    c.update_key_properties("hot", expires_on=datetime.datetime.now(datetime.timezone.utc) + DAY,
                            not_before=datetime.datetime.now(datetime.timezone.utc) + DAY)
    p.expect(p.wrap(), 403, "KeyNotYetValid")
    c.update_key_properties("hot", not_before=datetime.datetime.now(datetime.timezone.utc) - DAY)
    p.expect(p.wrap(), 200)
    # rotate: the unversioned name moves to the new version at once; the old one still answers
    new = c.rotate_key("hot")
    assert all(r.json()["kid"] == new.id for r in p.expect(p.wrap(), 200))
    assert all(r.json()["key"]["kid"] == new.id for r in p.all(None))
    p.expect(unwrap(k.properties.version), 200)
    p.expect(p.all("unwrapkey", "", alg="RSA-OAEP-256", value=ct), 400)  # new key, old ciphertext
    # import over the name: a new current version
    from azure.keyvault.keys import JsonWebKey
    priv = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pn = priv.private_numbers()

    def ib(i):
        return i.to_bytes((i.bit_length() + 7) // 8, "big")
    imp = c.import_key("hot", JsonWebKey(kty="RSA", n=ib(pn.public_numbers.n),
                                         e=ib(pn.public_numbers.e), d=ib(pn.d), p=ib(pn.p),
                                         q=ib(pn.q), dp=ib(pn.dmp1), dq=ib(pn.dmq1),
                                         qi=ib(pn.iqmp)))
    for r in p.expect(p.wrap(), 200):
        assert r.json()["kid"] == imp.id
        assert priv.decrypt(b64u_dec(r.json()["value"]), OAEP["RSA-OAEP-256"])
    # delete, recover, delete + purge, restore
    backup = c.backup_key("hot")
    c.begin_delete_key("hot", _polling_interval=0).wait()
    p.expect(p.wrap(), 404)
    p.expect(unwrap(k.properties.version), 404)
    c.begin_recover_deleted_key("hot", _polling_interval=0).wait()
    p.expect(p.wrap(), 200)
    p.expect(unwrap(k.properties.version), 200)
    c.begin_delete_key("hot", _polling_interval=0).wait()
    c.purge_deleted_key("hot")
    p.expect(p.wrap(), 404)
    p.expect(unwrap(k.properties.version), 404)
    c.restore_key_backup(backup)
    assert all(r.json()["kid"] == imp.id for r in p.expect(p.wrap(), 200))
    p.expect(unwrap(k.properties.version), 200)


def test_cached_vault_follows_every_vault_write(daemon, cred):
    g = new_name("kvc")
    assert daemon.put_rg(g).status_code == 201
    sp = daemon.post("/emulator/principals", json={"displayName": new_name("sp")}).json()
    name, uri = make_vault(daemon, g, [policy(ADMIN_OID, ALL_KEY_PERMS),
                                       policy(sp["objectId"], ["wrapKey", "get"])])
    KeyClient(uri, cred, connection_verify=daemon.ca).create_rsa_key("hot", size=2048)
    p = Probe(daemon, uri, "hot", token(daemon, app=sp["appId"], secret=sp["password"]))
    p.expect(p.wrap(), 200)  # warm every thread
    # access policies: remove, add, replace
    policy_op(daemon, g, name, "remove", [policy(sp["objectId"], ["wrapKey"])])
    p.expect(p.wrap(), 403, "ForbiddenByPolicy")
    p.expect(p.all(None), 200)
    policy_op(daemon, g, name, "add", [policy(sp["objectId"], ["wrapKey"])])
    p.expect(p.wrap(), 200)
    policy_op(daemon, g, name, "replace", [policy(sp["objectId"], ["get"])])
    p.expect(p.wrap(), 403, "ForbiddenByPolicy")
    policy_op(daemon, g, name, "remove", [policy(sp["objectId"], ["get"])])
    p.expect(p.all(None), 403, "ForbiddenByPolicy")
    # a full PUT of the vault, with and without the principal
    body = {"location": "eastus", "properties": {
        "tenantId": TENANT, "sku": {"family": "A", "name": "standard"},
        "accessPolicies": [policy(ADMIN_OID, ALL_KEY_PERMS), policy(sp["objectId"], ["all"])]}}
    assert daemon.put(vault_path(g, name), json=body).status_code == 200
    p.expect(p.wrap(), 200)
    body["properties"]["accessPolicies"] = [policy(ADMIN_OID, ALL_KEY_PERMS)]
    assert daemon.put(vault_path(g, name), json=body).status_code == 200
    p.expect(p.wrap(), 403, "ForbiddenByPolicy")
    # the RBAC flag by PATCH: policies are then not consulted
    r = daemon.patch(vault_path(g, name), json={"properties": {"enableRbacAuthorization": True}})
    assert r.status_code == 200, r.text
    p.expect(p.wrap(), 200)
    r = daemon.patch(vault_path(g, name), json={"properties": {"enableRbacAuthorization": False}})
    assert r.status_code == 200, r.text
    p.expect(p.wrap(), 403, "ForbiddenByPolicy")
    policy_op(daemon, g, name, "add", [policy(sp["objectId"], ["wrapKey"])])
    p.expect(p.wrap(), 200)
    # delete, recover, and the resource group's delete
    assert daemon.delete(vault_path(g, name)).status_code in (200, 204)
    for r in p.wrap():
        assert (r.status_code, r.json()["error"]["code"]) == (404, "VaultNotFound"), r.text
    r = daemon.put(vault_path(g, name), json={"location": "eastus", "properties": {
        "tenantId": TENANT, "sku": {"family": "A", "name": "standard"}, "createMode": "recover"}})
    assert r.status_code in (200, 201), r.text
    p.expect(p.wrap(), 200)
    assert daemon.delete(daemon.rg_path(g)).status_code in (200, 202)
    for _ in range(100):
        if daemon.get(daemon.rg_path(g)).status_code == 404:
            break
        time.sleep(0.1)
    for r in p.wrap():
        assert (r.status_code, r.json()["error"]["code"]) == (404, "VaultNotFound"), r.text
