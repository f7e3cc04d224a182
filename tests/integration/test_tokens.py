"""The token service (Entra ID / ADFS emulation), the ARM plane's token checks and the two Graph
look-ups, driven with requests and with the real azure.identity credentials from Debian."""
import base64
import datetime
import json
import time

import pytest

from conftest import GUID_RE, SUB, TENANT, assert_arm_error, new_name

ADMIN_APP = "00000000-0000-4000-8000-00000000c11e"
ADMIN_SECRET = "pgcmk-admin-secret"
ADMIN_OID = "00000000-0000-4000-8000-00000000a0a0"
ARM_SCOPE_CLI = "https://management.core.windows.net//.default"
ARM_SCOPE = "https://management.azure.com/.default"
VAULT_SCOPE = "https://vault.azure.net/.default"
LIFETIME = 3599
SUBS = "/subscriptions?api-version=2022-12-01"

crypto = pytest.importorskip("cryptography", reason="python3-cryptography is needed to check "
                                                    "token signatures")
from cryptography.exceptions import InvalidSignature  # noqa: E402
from cryptography.hazmat.primitives import hashes  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import padding, rsa  # noqa: E402


# --- helpers ---------------------------------------------------------------------------------

def b64u_dec(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def b64u_enc(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def jwt_parts(tok):
    h, p, s = tok.split(".")
    return json.loads(b64u_dec(h)), json.loads(b64u_dec(p)), b64u_dec(s)


def jwk_public_key(jwk):
    n = int.from_bytes(b64u_dec(jwk["n"]), "big")
    e = int.from_bytes(b64u_dec(jwk["e"]), "big")
    return rsa.RSAPublicNumbers(e, n).public_key()


def verify_jwt(tok, jwks):
    """Checks the RS256 signature against the JWKS (by kid); returns (header, claims)."""
    header, claims, sig = jwt_parts(tok)
    assert header["alg"] == "RS256", header
    keys = [k for k in jwks["keys"] if k["kid"] == header["kid"]]
    assert len(keys) == 1, (header, jwks)
    signed = tok.rsplit(".", 1)[0].encode()
    jwk_public_key(keys[0]).verify(sig, signed, padding.PKCS1v15(), hashes.SHA256())
    return header, claims


def token_post(daemon, path="/adfs/oauth2/token", **form):
    data = {"grant_type": "client_credentials", "client_id": ADMIN_APP,
            "client_secret": ADMIN_SECRET, "scope": ARM_SCOPE_CLI}
    data.update(form)
    data = {k: v for k, v in data.items() if v is not None}
    return daemon.post(path, data=data)


def admin_token(daemon, scope=ARM_SCOPE_CLI):
    r = token_post(daemon, scope=scope)
    assert r.status_code == 200, r.text
    return r.json()["access_token"]


def bearer(tok):
    return {"Authorization": f"Bearer {tok}"}


@pytest.fixture(scope="module")
def jwks(daemon):
    r = daemon.get("/adfs/discovery/keys")
    assert r.status_code == 200, r.text
    return r.json()


def assert_claims(daemon, claims, aud, oid=ADMIN_OID, appid=ADMIN_APP):
    now = time.time()
    assert claims["aud"] == aud, claims
    assert claims["iss"] == f"https://localhost:{daemon.port}/{TENANT}/", claims
    assert claims["tid"] == TENANT
    assert claims["oid"] == oid
    assert claims["appid"] == appid and claims["azp"] == appid
    assert claims["idtyp"] == "app"
    for k in ("iat", "nbf", "exp"):
        assert isinstance(claims[k], int), (k, claims)
    assert claims["exp"] - claims["iat"] == LIFETIME, claims
    assert claims["nbf"] <= now + 5 and claims["exp"] > now + 3000, (claims, now)
    # The service may hand back a still-fresh token of this test run, never an old one.
    assert abs(claims["iat"] - now) < 900, (claims, now)


def assert_oauth_error(r, status, error, code=None):
    assert r.status_code == status, f"expected {status}, got {r.status_code}: {r.text[:400]}"
    assert r.headers["Content-Type"].startswith("application/json"), r.headers
    body = r.json()
    assert body["error"] == error, body
    assert isinstance(body["error_description"], str) and body["error_description"], body
    assert isinstance(body["error_codes"], list) and len(body["error_codes"]) == 1, body
    if code is not None:
        assert body["error_codes"] == [code], body
        assert body["error_description"].startswith(f"AADSTS{code}:"), body
    assert GUID_RE.match(body["trace_id"]), body
    ts = datetime.datetime.fromisoformat(body["timestamp"].replace("Z", "+00:00"))
    assert abs((datetime.datetime.now(datetime.timezone.utc) - ts).total_seconds()) < 600, body
    assert "access_token" not in body
    return body


# --- discovery -------------------------------------------------------------------------------

def test_adfs_openid_configuration(daemon):
    r = daemon.get("/adfs/.well-known/openid-configuration")
    assert r.status_code == 200, r.text
    c = r.json()
    assert c["token_endpoint"] == f"{daemon.base}/adfs/oauth2/token"
    assert c["authorization_endpoint"] == f"{daemon.base}/adfs/oauth2/authorize"
    assert c["jwks_uri"] == f"{daemon.base}/adfs/discovery/keys"
    assert "RS256" in c["id_token_signing_alg_values_supported"]


def test_tenant_v2_openid_configuration(daemon):
    r = daemon.get(f"/{TENANT}/v2.0/.well-known/openid-configuration")
    assert r.status_code == 200, r.text
    c = r.json()
    assert c["token_endpoint"] == f"{daemon.base}/{TENANT}/oauth2/v2.0/token"
    assert c["authorization_endpoint"] == f"{daemon.base}/{TENANT}/oauth2/v2.0/authorize"
    assert c["jwks_uri"] == f"{daemon.base}/{TENANT}/discovery/v2.0/keys"
    assert c["issuer"].endswith(f"/{TENANT}/v2.0"), c


def test_jwks_endpoints_publish_one_rs256_key(daemon, jwks):
    other = daemon.get(f"/{TENANT}/discovery/v2.0/keys")
    assert other.status_code == 200, other.text
    assert other.json() == jwks
    assert len(jwks["keys"]) >= 1
    for k in jwks["keys"]:
        assert k["kty"] == "RSA" and k["use"] == "sig" and k["alg"] == "RS256", k
        assert isinstance(k["kid"], str) and k["kid"], k
        assert "d" not in k and "p" not in k and "q" not in k, "private parts published"
        assert jwk_public_key(k).key_size >= 2048
        assert int.from_bytes(b64u_dec(k["e"]), "big") == 65537


# --- client credentials ----------------------------------------------------------------------

@pytest.mark.parametrize("scope,aud", [
    (ARM_SCOPE_CLI, "https://management.core.windows.net/"),
    (ARM_SCOPE, "https://management.azure.com"),
    (VAULT_SCOPE, "https://vault.azure.net"),
    ("https://vault.azure.net/.default openid profile offline_access", "https://vault.azure.net"),
])
def test_adfs_token_is_a_signed_jwt_with_azure_claims(daemon, jwks, scope, aud):
    r = token_post(daemon, scope=scope)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    assert "no-store" in r.headers.get("Cache-Control", "") or \
        "no-cache" in r.headers.get("Cache-Control", ""), r.headers
    body = r.json()
    assert body["token_type"] == "Bearer"
    assert isinstance(body["expires_in"], int) and LIFETIME - 900 < body["expires_in"] <= LIFETIME
    assert isinstance(body["ext_expires_in"], int)
    _, claims = verify_jwt(body["access_token"], jwks)
    assert_claims(daemon, claims, aud)


def test_tenant_v2_token(daemon, jwks):
    r = token_post(daemon, path=f"/{TENANT}/oauth2/v2.0/token", scope=VAULT_SCOPE)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token_type"] == "Bearer" and isinstance(body["expires_in"], int)
    _, claims = verify_jwt(body["access_token"], jwks)
    assert_claims(daemon, claims, "https://vault.azure.net")


def test_tenant_v1_token_has_string_values(daemon, jwks):
    r = token_post(daemon, path=f"/{TENANT}/oauth2/token", scope=None,
                   resource="https://management.core.windows.net/")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token_type"] == "Bearer"
    assert body["resource"] == "https://management.core.windows.net/"
    for k in ("expires_in", "ext_expires_in", "expires_on", "not_before"):
        assert isinstance(body[k], str) and body[k].isdigit(), (k, body)
    _, claims = verify_jwt(body["access_token"], jwks)
    assert_claims(daemon, claims, "https://management.core.windows.net/")
    assert int(body["expires_on"]) == claims["exp"]
    assert int(body["expires_on"]) - int(body["not_before"]) == LIFETIME
    assert abs(int(body["expires_on"]) - time.time() - int(body["expires_in"])) <= 5


def test_signature_check_of_this_file_rejects_a_tampered_token(daemon, jwks):
    """The verifier above really verifies: flipping the audience breaks the signature."""
    tok = admin_token(daemon)
    h, p, s = tok.split(".")
    claims = json.loads(b64u_dec(p))
    claims["aud"] = "https://vault.azure.net"
    forged = f"{h}.{b64u_enc(json.dumps(claims).encode())}.{s}"
    with pytest.raises(InvalidSignature):
        verify_jwt(forged, jwks)


@pytest.mark.parametrize("case,form,status,error,code", [
    ("wrong secret", {"client_secret": "not-the-secret"}, 401, "invalid_client", 7000215),
    ("unknown client", {"client_id": "00000000-0000-4000-8000-0000000dead1"}, 400,
     "unauthorized_client", 700016),
    ("no grant_type", {"grant_type": None}, 400, "invalid_request", 900144),
    ("password grant", {"grant_type": "password"}, 400, "unsupported_grant_type", None),
    ("no scope", {"scope": None}, 400, "invalid_request", None),
])
@pytest.mark.parametrize("path", ["/adfs/oauth2/token", f"/{TENANT}/oauth2/v2.0/token"])
def test_token_errors_use_the_oauth_envelope(daemon, case, form, status, error, code, path):
    r = token_post(daemon, path=path, **form)
    body = assert_oauth_error(r, status, error, code)
    if case == "no scope":
        assert "scope" in body["error_description"], body
    if case == "unknown client":
        assert form["client_id"] in body["error_description"], body


def test_unknown_tenant_in_the_token_path(daemon):
    other = "11111111-1111-4111-8111-111111111111"
    r = token_post(daemon, path=f"/{other}/oauth2/v2.0/token", scope=VAULT_SCOPE)
    assert r.status_code == 400, r.text
    assert r.json()["error_codes"] == [90002], r.text


def test_client_credentials_scope_needs_dot_default(daemon):
    r = token_post(daemon, path=f"/{TENANT}/oauth2/v2.0/token",
                   scope="https://vault.azure.net/keys.read")
    body = assert_oauth_error(r, 400, "invalid_scope", 1002012)
    assert "/.default" in body["error_description"]


def test_scope_with_two_resources_is_refused(daemon):
    r = token_post(daemon, path=f"/{TENANT}/oauth2/v2.0/token",
                   scope=f"{VAULT_SCOPE} {ARM_SCOPE}")
    assert r.status_code == 400, r.text
    assert "access_token" not in r.json()


def test_v1_token_without_resource_is_invalid_request(daemon):
    r = token_post(daemon, path=f"/{TENANT}/oauth2/token", scope=None)
    body = assert_oauth_error(r, 400, "invalid_request")
    assert "resource" in body["error_description"], body


def test_new_principal_signs_in(daemon, jwks):
    r = daemon.post("/emulator/principals", json={"displayName": new_name("sp")})
    assert r.status_code == 201, r.text
    sp = r.json()
    assert GUID_RE.match(sp["objectId"]) and GUID_RE.match(sp["appId"]), sp
    assert sp["objectId"] not in (ADMIN_OID,) and sp["appId"] != ADMIN_APP
    assert sp["tenant"] == TENANT
    assert isinstance(sp["password"], str) and len(sp["password"]) >= 16, sp
    r = token_post(daemon, client_id=sp["appId"], client_secret=sp["password"], scope=VAULT_SCOPE)
    assert r.status_code == 200, r.text
    _, claims = verify_jwt(r.json()["access_token"], jwks)
    assert_claims(daemon, claims, "https://vault.azure.net", oid=sp["objectId"], appid=sp["appId"])
    # Its token is good on ARM too.
    r2 = token_post(daemon, client_id=sp["appId"], client_secret=sp["password"])
    assert daemon.get(SUBS, headers=bearer(r2.json()["access_token"])).status_code == 200
    # The admin's secret is not its secret.
    assert_oauth_error(token_post(daemon, client_id=sp["appId"]), 401, "invalid_client", 7000215)


def test_two_principals_get_distinct_identities(daemon):
    a = daemon.post("/emulator/principals", json={"displayName": "a"}).json()
    b = daemon.post("/emulator/principals", json={"displayName": "b"}).json()
    assert len({a["objectId"], b["objectId"], a["appId"], b["appId"]}) == 4
    assert a["password"] != b["password"]
    r = token_post(daemon, client_id=a["appId"], client_secret=b["password"])
    assert_oauth_error(r, 401, "invalid_client", 7000215)


@pytest.mark.parametrize("body", [{}, {"displayName": ""}])
def test_new_principal_needs_a_name(daemon, body):
    assert_arm_error(daemon.post("/emulator/principals", json=body), 400)


# --- Graph -----------------------------------------------------------------------------------

def test_graph_me_is_not_found(daemon):
    r = daemon.get("/v1.0/me", headers=bearer(admin_token(daemon)))
    assert r.status_code == 404, r.text
    assert "error" in r.json()


def test_graph_service_principal_lookup(daemon):
    sp = daemon.post("/emulator/principals", json={"displayName": "graph"}).json()
    for app, oid in ((ADMIN_APP, ADMIN_OID), (sp["appId"], sp["objectId"])):
        r = daemon.get("/v1.0/servicePrincipals",
                       params={"$filter": f"servicePrincipalNames/any(c:c eq '{app}')"})
        assert r.status_code == 200, r.text
        value = r.json()["value"]
        assert len(value) == 1, value
        assert value[0]["id"] == oid and value[0]["appId"] == app, value
    r = daemon.get("/v1.0/servicePrincipals", params={
        "$filter": "servicePrincipalNames/any(c:c eq '00000000-0000-4000-8000-0000000dead2')"})
    assert r.status_code == 200 and r.json()["value"] == [], r.text


# --- ARM checks the tokens it gets -------------------------------------------------------------

def test_arm_accepts_admin_tokens_for_both_arm_audiences(daemon):
    for scope in (ARM_SCOPE_CLI, ARM_SCOPE):
        r = daemon.get(SUBS, headers=bearer(admin_token(daemon, scope)))
        assert r.status_code == 200, r.text
        assert r.json()["value"][0]["subscriptionId"] == SUB


def forged_tokens(daemon):
    tok = admin_token(daemon)
    h, p, s = tok.split(".")
    claims = json.loads(b64u_dec(p))
    out = {}
    # Same claims, signature of one bit flipped.
    sig = bytearray(b64u_dec(s))
    sig[10] ^= 1
    out["bad signature"] = f"{h}.{p}.{b64u_enc(bytes(sig))}"
    # Claims changed under the daemon's signature.
    c2 = dict(claims, oid="00000000-0000-4000-8000-00000000beef")
    out["changed claims"] = f"{h}.{b64u_enc(json.dumps(c2).encode())}.{s}"
    # Signed by someone else's key with the daemon's kid.
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    signed = f"{h}.{p}".encode()
    foreign = key.sign(signed, padding.PKCS1v15(), hashes.SHA256())
    out["foreign key"] = f"{h}.{p}.{b64u_enc(foreign)}"
    # alg none.
    hn = b64u_enc(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    out["alg none"] = f"{hn}.{p}."
    out["garbage"] = "not.a.jwt"
    return out


@pytest.mark.parametrize("case", ["bad signature", "changed claims", "foreign key", "alg none",
                                  "garbage"])
def test_arm_refuses_forged_tokens(daemon, case):
    tok = forged_tokens(daemon)[case]
    r = daemon.get(SUBS, headers=bearer(tok))
    assert_arm_error(r, 401, "InvalidAuthenticationToken")
    assert r.headers.get("WWW-Authenticate", "").startswith("Bearer"), r.headers


def test_arm_refuses_a_vault_token(daemon):
    tok = admin_token(daemon, VAULT_SCOPE)
    r = daemon.get(SUBS, headers=bearer(tok))
    err = assert_arm_error(r, 401, "InvalidAuthenticationToken")
    assert "audience" in err["message"], err
    # PUT too, and nothing is written.
    rg = new_name()
    r = daemon.put(f"/subscriptions/{SUB}/resourcegroups/{rg}?api-version=2021-04-01",
                   json={"location": "eastus"}, headers=bearer(tok))
    assert_arm_error(r, 401, "InvalidAuthenticationToken")
    assert daemon.get(f"/subscriptions/{SUB}/resourcegroups/{rg}?api-version=2021-04-01")\
        .status_code == 404


def test_strict_auth(start_daemon):
    d = start_daemon("--auth", "strict")
    assert_arm_error(d.get(SUBS), 401)
    r = d.post("/adfs/oauth2/token", data={"grant_type": "client_credentials",
                                            "client_id": ADMIN_APP, "client_secret": ADMIN_SECRET,
                                            "scope": ARM_SCOPE_CLI})
    assert r.status_code == 200, "the token service must not need a token"
    tok = r.json()["access_token"]
    r = d.get(SUBS, headers=bearer(tok))
    assert r.status_code == 200, r.text
    rg = new_name()
    r = d.put(f"/subscriptions/{SUB}/resourcegroups/{rg}?api-version=2021-04-01",
              json={"location": "eastus"}, headers=bearer(tok))
    assert r.status_code == 201, r.text
    # A token of another daemon (another signing key) is refused.
    r = d.get(SUBS, headers=bearer(forged_tokens(d)["foreign key"]))
    assert_arm_error(r, 401, "InvalidAuthenticationToken")


def test_token_of_another_daemon_is_refused(daemon, start_daemon):
    other = start_daemon(http=False)
    tok = admin_token(other)
    assert other.get(SUBS, headers=bearer(tok)).status_code == 200
    assert_arm_error(daemon.get(SUBS, headers=bearer(tok)), 401, "InvalidAuthenticationToken")


def test_signing_key_survives_a_restart(start_daemon):
    d = start_daemon(http=False)
    before = d.get("/adfs/discovery/keys").json()
    tok = admin_token(d)
    d.restart()
    assert d.get("/adfs/discovery/keys").json() == before
    # The port changes with --port 0, and so does the issuer: a token is only good for its own
    # issuer, so ask for a new one and check it verifies with the same key.
    _, claims = verify_jwt(admin_token(d), before)
    assert claims["iss"] == f"https://localhost:{d.port}/{TENANT}/"
    assert tok


# --- azure.identity --------------------------------------------------------------------------

identity = pytest.importorskip("azure.identity")


def test_client_secret_credential_adfs(daemon, jwks):
    cred = identity.ClientSecretCredential("adfs", ADMIN_APP, ADMIN_SECRET,
                                           authority=daemon.base, connection_verify=daemon.ca)
    t = cred.get_token(ARM_SCOPE)
    assert t.expires_on > time.time() + 3000
    _, claims = verify_jwt(t.token, jwks)
    assert_claims(daemon, claims, "https://management.azure.com")
    assert daemon.get(SUBS, headers=bearer(t.token)).status_code == 200
    t2 = cred.get_token(VAULT_SCOPE)
    assert jwt_parts(t2.token)[1]["aud"] == "https://vault.azure.net"


def test_client_secret_credential_guid_tenant_without_instance_discovery(daemon, jwks):
    import inspect
    from azure.identity._internal import msal_credentials
    src = inspect.getsource(msal_credentials)
    kw = ({"disable_instance_discovery": True} if "disable_instance_discovery" in src
          else {"instance_discovery": False})
    cred = identity.ClientSecretCredential(TENANT, ADMIN_APP, ADMIN_SECRET, authority=daemon.base,
                                           connection_verify=daemon.ca, **kw)
    t = cred.get_token(VAULT_SCOPE)
    _, claims = verify_jwt(t.token, jwks)
    assert_claims(daemon, claims, "https://vault.azure.net")


def test_client_secret_credential_wrong_secret_raises(daemon):
    from azure.core.exceptions import ClientAuthenticationError
    cred = identity.ClientSecretCredential("adfs", ADMIN_APP, "wrong", authority=daemon.base,
                                           connection_verify=daemon.ca)
    with pytest.raises(ClientAuthenticationError) as ei:
        cred.get_token(ARM_SCOPE)
    assert "AADSTS7000215" in str(ei.value)


def test_client_secret_credential_new_principal(daemon, jwks):
    sp = daemon.post("/emulator/principals", json={"displayName": "sdk"}).json()
    cred = identity.ClientSecretCredential("adfs", sp["appId"], sp["password"],
                                           authority=daemon.base, connection_verify=daemon.ca)
    _, claims = verify_jwt(cred.get_token(ARM_SCOPE).token, jwks)
    assert claims["oid"] == sp["objectId"] and claims["appid"] == sp["appId"]
