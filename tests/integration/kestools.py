"""Helpers for tests of pgcmk's KES servers (src/kes/), as a KES client does it:

* API keys: `new_api_key()`, `identity_of(api_key)` (kms-go kes/apikey.go: `kes:v1:` + base64 of
  0x00 || a 32-byte Ed25519 seed; the identity is the hex SHA-256 of the public key's SPKI).
* `cert_files(api_key, directory)`: the client certificate `kes` makes from an API key (self-signed
  Ed25519, CN = identity, EKU clientAuth, 90 days) as (cert.pem, key.pem) files for requests.
* `extra_leaf_cert_files(...)`: a chain with a second non-CA certificate (KES refuses it: 400).
* `KesClient(url, api_key or cert, ca)`: a requests.Session with mutual TLS and KES's calls.
* `setup_vault(daemon, version=1|2, ...)`: pgcmk's Vault set up for KES as seed 004 does it (kv v1
  or v2 mount, kes-policy, approle role kes-server, role_id and secret_id).
* `kes_config(...)`: a config.yml document (a dict dumped as JSON, which is YAML too) and
  `create_server(daemon, config, name)`: POST /emulator/kes/servers.
"""
import base64
import datetime
import hashlib
import json
import os

import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

ROOT_TOKEN = "hvs.pgcmk-dev-root-token"
KV1_POLICY = 'path "kv/*" {\n   capabilities = [ "create", "read", "delete", "list" ]\n}\n'
KV2_POLICY = ('path "kv/data/*" {\n   capabilities = [ "create", "read" ]\n}\n'
              'path "kv/metadata/*" {\n   capabilities = [ "list", "delete" ]\n}\n')

# kes/apikey_test.go and server_test.go (key-providers.md 5.3)
PUBLISHED = [
    ("kes:v1:AGaV6VXHasF0FnaB60WdCOeTZ8eTIDikL4zlN16c8NAs",
     "ea9826089311fe44d7590408ede9150f7c637b6cab0a91ee6fe1aa5d9fb366f6"),
    ("kes:v1:AD9E7FSYWrMD+VjhI6q545cYT9YOyFxZb7UnjEepYDRc",
     "3ecfcdf38fcbe141ae26a1030f81e96b753365a46760ae6b578698a97c59fd22"),
]


def new_api_key():
    return "kes:v1:" + base64.b64encode(b"\x00" + os.urandom(32)).decode()


def _private_key(api_key):
    assert api_key.startswith("kes:v1:"), api_key
    raw = base64.b64decode(api_key[7:])
    assert len(raw) == 33 and raw[0] == 0, "not an Ed25519 API key"
    return ed25519.Ed25519PrivateKey.from_private_bytes(raw[1:])


def spki_identity(public_key):
    der = public_key.public_bytes(serialization.Encoding.DER,
                                  serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def identity_of(api_key):
    return spki_identity(_private_key(api_key).public_key())


def _self_signed(key, cn, ca=False, sign_alg=None):
    now = datetime.datetime.now(datetime.timezone.utc)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    b = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(now - datetime.timedelta(minutes=5))
         .not_valid_after(now + datetime.timedelta(days=90))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if not ca:
        b = b.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]),
                            critical=False)
    return b.sign(key, sign_alg)


def _write(directory, stem, cert_pems, key):
    os.makedirs(directory, exist_ok=True)
    cp = os.path.join(directory, f"{stem}.crt")
    kp = os.path.join(directory, f"{stem}.key")
    with open(cp, "wb") as f:
        for c in cert_pems:
            f.write(c)
    with open(kp, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    os.chmod(kp, 0o600)
    return cp, kp


def cert_files(api_key, directory, stem=None):
    """The certificate `kes` makes from an API key: (cert path, key path)."""
    key = _private_key(api_key)
    ident = spki_identity(key.public_key())
    cert = _self_signed(key, ident)
    return _write(directory, stem or ident[:16], [cert.public_bytes(serialization.Encoding.PEM)],
                  key)


def ec_cert_files(directory, stem="ec-client"):
    """A self-signed P-256 client certificate and its identity: (cert, key, identity)."""
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _self_signed(key, stem, sign_alg=hashes.SHA256())
    cp, kp = _write(directory, stem, [cert.public_bytes(serialization.Encoding.PEM)], key)
    return cp, kp, spki_identity(key.public_key())


def server_cert_files(directory, stem="server"):
    """`kes identity new --key server.key --cert server.cert --ip 127.0.0.1 --dns localhost`:
    a self-signed P-256 server certificate (cert path, key path)."""
    import ipaddress
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
            .sign(key, hashes.SHA256()))
    return _write(directory, stem, [cert.public_bytes(serialization.Encoding.PEM)], key)


def ca_and_client_files(directory):
    """A CA (ca.crt) and a client certificate it signed: (ca path, (cert, key), identity)."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _self_signed(ca_key, "kes test CA", ca=True, sign_alg=hashes.SHA256())
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "client")]))
            .issuer_name(ca.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    ca_path = os.path.join(directory, "ca.crt")
    with open(ca_path, "wb") as f:
        f.write(ca.public_bytes(serialization.Encoding.PEM))
    pair = _write(directory, "signed-client", [cert.public_bytes(serialization.Encoding.PEM)], key)
    return ca_path, pair, spki_identity(key.public_key())


def extra_leaf_cert_files(api_key, directory):
    """The API key's certificate followed by a second non-CA certificate in the chain sent."""
    key = _private_key(api_key)
    cert = _self_signed(key, spki_identity(key.public_key()))
    other = ec.generate_private_key(ec.SECP256R1())
    other_cert = _self_signed(other, "second-leaf", sign_alg=hashes.SHA256())
    return _write(directory, "two-leaves",
                  [cert.public_bytes(serialization.Encoding.PEM),
                   other_cert.public_bytes(serialization.Encoding.PEM)], key)


class KesClient:
    """A KES client over mutual TLS (cert = (cert.pem, key.pem), or made from api_key)."""

    def __init__(self, url, ca, api_key=None, cert=None, directory=None):
        self.url = url.rstrip("/")
        self.ca = ca
        self.session = requests.Session()
        self.session.verify = ca
        if api_key is not None:
            assert directory, "an API key's certificate needs a directory"
            cert = cert_files(api_key, directory)
            self.identity = identity_of(api_key)
        self.session.cert = cert

    def request(self, method, path, **kw):
        kw.setdefault("timeout", 15)
        kw.setdefault("verify", self.ca)  # REQUESTS_CA_BUNDLE would win over session.verify
        return self.session.request(method, self.url + path, **kw)

    def _verb(method):  # noqa: N805 (a method maker, used in the class body)
        return lambda self, path, **kw: self.request(method, path, **kw)

    get, put, post, delete = _verb("GET"), _verb("PUT"), _verb("POST"), _verb("DELETE")

    # kms-go sends POST for these
    def create_key(self, name):
        return self.post(f"/v1/key/create/{name}")

    def generate(self, name, context=None):
        body = {} if context is None else {"context": b64(context)}
        return self.post(f"/v1/key/generate/{name}", json=body)

    def encrypt(self, name, plaintext, context=None):
        body = {"plaintext": b64(plaintext)}
        if context is not None:
            body["context"] = b64(context)
        return self.post(f"/v1/key/encrypt/{name}", json=body)

    def decrypt(self, name, ciphertext, context=None):
        body = {"ciphertext": ciphertext if isinstance(ciphertext, str) else b64(ciphertext)}
        if context is not None:
            body["context"] = b64(context)
        return self.post(f"/v1/key/decrypt/{name}", json=body)

    def close(self):
        self.session.close()


def free_port():
    """A port free now (for a daemon whose Vault API must keep its port across restarts)."""
    import socket
    with socket.socket() as so:
        so.bind(("127.0.0.1", 0))
        return so.getsockname()[1]


def b64(data):
    return base64.b64encode(data).decode()


def vault_info(daemon):
    return daemon.get("/emulator/info").json()["vault"]


def vault_request(daemon, method, path, token=ROOT_TOKEN, namespace=None, **kw):
    v = vault_info(daemon)
    h = {"X-Vault-Token": token} if token else {}
    if namespace:
        h["X-Vault-Namespace"] = namespace
    return requests.request(method, v["address"] + path, headers=h, verify=daemon.ca, timeout=10,
                            **kw)


def setup_vault(daemon, version=1, mount="kv", policy="kes-policy", role="kes-server",
                policy_text=None, namespace=None):
    """Seed 004's Vault steps; returns {"endpoint","role_id","secret_id","ca","mount"}."""
    r = vault_request(daemon, "POST", f"/v1/sys/mounts/{mount}", namespace=namespace,
                      json={"type": "kv", "options": {"version": str(version)}})
    assert r.status_code in (200, 204), r.text
    if policy_text is None:
        policy_text = (KV1_POLICY if version == 1 else KV2_POLICY).replace('"kv/', f'"{mount}/')
    r = vault_request(daemon, "PUT", f"/v1/sys/policies/acl/{policy}", namespace=namespace,
                      json={"policy": policy_text})
    assert r.status_code in (200, 204), r.text
    r = vault_request(daemon, "GET", "/v1/sys/auth", namespace=namespace)
    if "approle/" not in r.json().get("data", r.json()):
        r = vault_request(daemon, "POST", "/v1/sys/auth/approle", namespace=namespace,
                          json={"type": "approle"})
        assert r.status_code in (200, 204), r.text
    r = vault_request(daemon, "POST", f"/v1/auth/approle/role/{role}", namespace=namespace,
                      json={"token_num_uses": "0", "secret_id_num_uses": "0", "period": "5m"})
    assert r.status_code in (200, 204), r.text
    r = vault_request(daemon, "POST", f"/v1/auth/approle/role/{role}", namespace=namespace,
                      json={"policies": policy})
    assert r.status_code in (200, 204), r.text
    role_id = vault_request(daemon, "GET", f"/v1/auth/approle/role/{role}/role-id",
                            namespace=namespace).json()["data"]["role_id"]
    r = vault_request(daemon, "POST", f"/v1/auth/approle/role/{role}/secret-id",
                      namespace=namespace)
    assert r.status_code == 200, r.text
    return {"endpoint": vault_info(daemon)["address"], "role_id": role_id,
            "secret_id": r.json()["data"]["secret_id"], "ca": daemon.ca, "mount": mount,
            "version": version}


def kes_config(vault, admin="disabled", policies=None, keys=(), address="127.0.0.1:0",
               cache=None, api=None, log=None, prefix=None, extra_vault=None, tls=None):
    """A KES config document (JSON is YAML too) for a server on pgcmk's Vault."""
    kv = {"endpoint": vault["endpoint"], "engine": vault["mount"],
          "version": f"v{vault['version']}",
          "approle": {"id": vault["role_id"], "secret": vault["secret_id"]},
          "tls": {"ca": vault["ca"]}}
    if prefix:
        kv["prefix"] = prefix
    if extra_vault:
        kv.update(extra_vault)
    doc = {"address": address, "admin": {"identity": admin}, "keystore": {"vault": kv}}
    if policies:
        doc["policy"] = policies
    if keys:
        doc["keys"] = [{"name": k} for k in keys]
    if cache:
        doc["cache"] = {"expiry": cache}
    if api:
        doc["api"] = api
    if log:
        doc["log"] = log
    if tls:
        doc["tls"] = tls
    return json.dumps(doc, indent=2)


def create_server(daemon, config, name=None):
    path = "/emulator/kes/servers" + (f"?name={name}" if name else "")
    return daemon.post(path, data=config, headers={"Content-Type": "application/yaml"})
