"""KES server configs (src/kes/conf.c, server.c): seed 004's config.yml files as written, run by
`pgcmkd --kes-config FILE` and POST /emulator/kes/servers, ${VAR} from the daemon's environment,
relative paths, tls.auth: on, skip_auth, root: disabled, the errors KES gives, and servers created
by POST surviving a restart (on the same port, their config sealed in the store)."""
import json
import os
import re
import sqlite3
import subprocess

import pytest
import requests

import kestools as kt
from conftest import SUB
from test_vault_kv import activity  # the Activity Log entries of a resource id

# Seed 004, "Configure KES Server": the tutorial's config.yml, as written (its "" to be filled).
SEED_CONFIG = """admin:
  # Use the identity generated above by 'kes identity new'.
  identity: "" # For example: cf6c535e738c1dd47a1d746366fde7f0309d1e0a8471b9f6e909833906afbbfa
   
tls:
  key: private.key    # The KES server TLS private key
  cert: public.crt    # The KES server TLS certificate
   
keystore:
   vault:
     endpoint: https://127.0.0.1:8200
     version:  v1 # The K/V engine version - either "v1" or "v2".
     engine:   kv # The engine path of the K/V engine. The default is "kv".
     approle:
       id:     "" # Your AppRole ID
       secret: "" # Your AppRole Secret
"""

# Seed 004, "Configuration References": the YAML overview, as written. Its `my-app:` sits at the
# level of minio-server's fields, so allow/deny/identities repeat in one mapping: yaml.v3 (KES)
# refuses that, and so does pgcmk.
SEED_REFERENCE = """address: 0.0.0.0:7373
root: ${ROOT_IDENTITY}

tls:
  key: kes-server.key
  cert: kes-server.cert

api:
  /v1/ready:
    skip_auth: false
    timeout:   15s

policy:
  minio-server:
    allow:
    - /v1/key/create/*
    - /v1/key/generate/*
    - /v1/key/decrypt/*
    - /v1/key/bulk/decrypt
    - /v1/key/list/*
    - /v1/status
    - /v1/metrics
    - /v1/log/audit
    - /v1/log/error
    deny:
    - /v1/key/generate/my-app-internal*
    - /v1/key/decrypt/my-app-internal*
    identities:
    - ${MINIO_IDENTITY}

    my-app:
    allow:
    - /v1/key/create/my-app*
    - /v1/key/generate/my-app*
    - /v1/key/decrypt/my-app*
    deny:
    - /v1/key/generate/my-app-internal*
    - /v1/key/decrypt/my-app-internal*
    identities:
    - df7281ca3fed4ef7d06297eb7cb9d590a4edc863b4425f4762bb2afaebfd3258
    - c0ecd5962eaf937422268b80a93dde4786dc9783fb2480ddea0f3e5fe471a731

keys:
  - name: "minio-encryption-key-alpha"
  - name: "minio-encryption-key-baker"
  - name: "minio-encryption-key-charlie"

cache:
  expiry:
    any: 5m0s
    unused: 20s
    offline: 0s

log:

  # Log error events to STDERR. Valid values are "on" or "off". 
  # Default is "on".
  error: on

  # Log audit events to STDOUT. Valid values are "on" and "off". 
  # Default is "off".
  audit: off

keystore:
  vault:
    endpoint: ""  
    engine: ""    
    version: ""   
    namespace: "" 
    prefix: ""    
    transit:      
      engine: ""  
      key: ""     
    approle:    
      namespace: "" 
      engine: ""    
      id: ""        
      secret: ""    
    kubernetes: 
      namespace: "" 
      engine: ""    
      role: ""      
      jwt:  ""      
    tls:        
      key: ""   
      cert: ""  
      ca: ""    
    status:     
      ping: 10s 
"""


def fill_tutorial(vault, admin_identity, address="127.0.0.1:0"):
    """The tutorial's config with its blanks filled as its comments say (and, for a test, any
    free port: the tutorial leaves the address at KES's default 0.0.0.0:7373)."""
    text = SEED_CONFIG
    text = text.replace('identity: "" #', f'identity: "{admin_identity}" #', 1)
    text = text.replace("endpoint: https://127.0.0.1:8200", f"endpoint: {vault['endpoint']}")
    text = text.replace('id:     "" #', f'id:     "{vault["role_id"]}" #')
    text = text.replace('secret: "" #', f'secret: "{vault["secret_id"]}" #')
    text += f"     tls:\n       ca: {vault['ca']}\n"
    return f"address: {address}\n" + text


def test_seed_config_file_at_boot(start_daemon, tmp_path):
    vport = ["--vault-port", str(kt.free_port())]  # the config names Vault's address
    d = start_daemon(*vport)
    vault = kt.setup_vault(d)
    conf_dir = tmp_path / "kes"
    conf_dir.mkdir()
    # kes identity new --key private.key --cert public.crt (relative paths: the file's directory)
    kt.server_cert_files(str(conf_dir), stem="public")
    os.rename(conf_dir / "public.key", conf_dir / "private.key")
    admin = kt.new_api_key()
    (conf_dir / "config.yml").write_text(fill_tutorial(vault, kt.identity_of(admin)))
    # a second tenant (the seed's multi-tenancy section): its own prefix, one flag per file
    (conf_dir / "tenant-b.yml").write_text(
        fill_tutorial(vault, kt.identity_of(admin)) + "     prefix: tenant-b\n")
    d.restart([*vport, "--kes-config", str(conf_dir / "config.yml"),
               "--kes-config", str(conf_dir / "tenant-b.yml")])
    kes = d.get("/emulator/info").json()["kes"]
    assert [k["name"] for k in kes] == ["config", "tenant-b"], kes
    assert d.get("/emulator/kes/servers/tenant-b").json()["keystore"]["prefix"] == "tenant-b"
    with open(d.stdout_path) as f:
        assert f"KES server config: https://127.0.0.1:{kes[0]['port']}" in f.read()
    # the server presents its own certificate: `kes status -k` does not verify it
    c = kt.KesClient(kes[0]["url"], False, api_key=admin, directory=str(tmp_path / "c"))
    st = c.get("/v1/status")
    assert st.status_code == 200 and st.json()["keystore_latency"] >= 1
    # kes key create my-key-1; kes key dek my-key-1
    assert c.post("/v1/key/create/my-key-1").status_code == 200
    dek = c.generate("my-key-1")
    assert dek.status_code == 200 and set(dek.json()) == {"plaintext", "ciphertext"}
    srv = d.get("/emulator/kes/servers/config").json()
    assert srv["stored"] is False and srv["caCertificate"] is None
    # verified against its own certificate file too
    r = requests.get(kes[0]["url"] + "/version", verify=str(conf_dir / "public.crt"),
                     cert=kt.cert_files(admin, str(tmp_path / "c")), timeout=10)
    assert r.status_code == 200
    # --kes-config servers are not stored: a restart without the flag has none
    d.restart(vport)
    assert d.get("/emulator/info").json()["kes"] == []


def test_bad_config_file_stops_the_daemon(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text("address: 127.0.0.1:0\n")
    data = tmp_path / "data"
    p = subprocess.run([os.environ.get("PGCMKD") or "build/pgcmkd", "--data-dir", str(data),
                        "--port", "0", "--kmip-port", "0", "--vault-port", "0",
                        "--kes-config", str(bad)], capture_output=True, timeout=60, text=True)
    assert p.returncode != 0
    assert "kesconf: invalid admin identity: no admin identity" in p.stderr


def test_seed_reference_as_written_is_refused(daemon):
    env_ids = {"ROOT_IDENTITY": "x", "MINIO_IDENTITY": "y"}
    assert env_ids  # the daemon's environment does not matter: the YAML itself is refused
    r = kt.create_server(daemon, SEED_REFERENCE, "reference")
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["code"] == "KesConfigInvalid"
    assert 'mapping key "allow" already defined at line' in err["message"]


def reference_fixed(vault, tls_dir):
    """The reference with my-app at the policy level, its keystore filled from ${VAR}s, the empty
    kubernetes: and transit: blocks left out (KES refuses them: a second method, no key name),
    absolute TLS files and any free port."""
    text = SEED_REFERENCE.replace("\n    my-app:\n", "\n  my-app:\n")
    text = text.replace("address: 0.0.0.0:7373", "address: 127.0.0.1:0")
    text = text.replace("key: kes-server.key", f"key: {tls_dir}/server.key")
    text = text.replace("cert: kes-server.cert", f"cert: {tls_dir}/server.crt")
    ks = text.index("keystore:\n  vault:")
    text = text[:ks] + (
        "keystore:\n  vault:\n    endpoint: ${VAULT_ENDPOINT}\n    engine: \"\"\n"
        "    version: \"\"\n    namespace: \"\"\n    prefix: \"\"\n    approle:\n"
        "      namespace: \"\"\n      engine: \"\"\n      id: ${KES_ROLE_ID}\n"
        "      secret: ${KES_SECRET_ID}\n    tls:\n      key: \"\"\n      cert: \"\"\n"
        "      ca: ${VAULT_CA}\n    status:\n      ping: 10s\n")
    return text


def test_seed_reference_with_env(start_daemon, tmp_path):
    root, minio = kt.new_api_key(), kt.new_api_key()
    d = start_daemon("--vault-port", str(kt.free_port()))
    vault = kt.setup_vault(d)
    kt.server_cert_files(str(tmp_path))
    env = {"ROOT_IDENTITY": kt.identity_of(root), "MINIO_IDENTITY": kt.identity_of(minio),
           "VAULT_ENDPOINT": vault["endpoint"], "KES_ROLE_ID": vault["role_id"],
           "KES_SECRET_ID": vault["secret_id"], "VAULT_CA": vault["ca"]}
    d.env.update(env)
    d.restart()
    r = kt.create_server(d, reference_fixed(vault, str(tmp_path)), "reference")
    assert r.status_code == 201, r.text
    s = r.json()
    assert s["root"] == kt.identity_of(root)  # written as the older `root:` field
    assert sorted(s["policies"]) == ["minio-server", "my-app"]
    assert s["keys"] == ["minio-encryption-key-alpha", "minio-encryption-key-baker",
                         "minio-encryption-key-charlie"]
    assert s["cache"] == {"any": "5m0s", "unused": "20s", "offline": "0s"}
    m = kt.KesClient(s["url"], False, api_key=minio, directory=str(tmp_path / "c"))
    g = m.generate("minio-encryption-key-alpha")
    assert g.status_code == 200, g.text
    r = m.decrypt("minio-encryption-key-alpha", g.json()["ciphertext"])
    assert r.status_code == 200 and r.json()["plaintext"] == g.json()["plaintext"]
    assert m.get("/v1/key/list/*").status_code == 200
    assert m.get("/v1/metrics").status_code == 200 and m.get("/v1/status").status_code == 200
    assert m.post("/v1/key/create/my-app-internal-1").status_code == 200
    assert m.generate("my-app-internal-1").status_code == 403  # denied
    assert m.delete("/v1/key/delete/my-app-internal-1").status_code == 403  # not allowed
    # the api: section: /v1/ready keeps auth (skip_auth: false) and its 15 s timeout
    rc = kt.KesClient(s["url"], False, api_key=root, directory=str(tmp_path / "c"))
    rt = {x["path"]: x for x in rc.get("/v1/api").json()}
    assert rt["/v1/ready"]["timeout"] == 15
    assert m.get("/v1/ready").status_code == 403


def test_root_disabled_and_skip_auth(daemon, tmp_path):
    vault = kt.setup_vault(daemon, mount="kvskip", role="kes-skip", policy="kes-skip")
    key = kt.new_api_key()
    cfg = json.loads(kt.kes_config(vault, policies={
        "ops": {"allow": ["/v1/key/*"], "identities": [kt.identity_of(key)]}},
        api={"/v1/metrics": {"skip_auth": True}, "/v1/status": {"timeout": "20s"}}))
    cfg.pop("admin")
    cfg["root"] = "disabled"
    r = kt.create_server(daemon, json.dumps(cfg), "noroot")
    assert r.status_code == 201, r.text
    s = r.json()
    assert s["root"] == "disabled" and s["clientAuth"] == "request"
    c = kt.KesClient(s["url"], daemon.ca, api_key=key, directory=str(tmp_path))
    assert c.post("/v1/key/create/k1").status_code == 200
    ids = c.get("/v1/key/list/*")
    assert ids.status_code == 200 and ids.json()["names"] == ["k1"]
    assert c.get("/v1/identity/list/*").status_code == 403  # no admin: only the policy
    # skip_auth: the certificate becomes optional; /v1/metrics answers anyone
    r = requests.get(s["url"] + "/v1/metrics", verify=daemon.ca, timeout=10)
    assert r.status_code == 200 and "kes_http_request_success" in r.text
    r = requests.get(s["url"] + "/v1/key/list/*", verify=daemon.ca, timeout=10)
    assert r.status_code == 400 and r.json() == {"message": "tls: client certificate is required"}
    assert daemon.delete("/emulator/kes/servers/noroot").status_code == 204


def test_tls_auth_on(daemon, tmp_path):
    vault = kt.setup_vault(daemon, mount="kvauth", role="kes-auth", policy="kes-auth")
    ca, signed, ident = kt.ca_and_client_files(str(tmp_path))
    cfg = kt.kes_config(vault, admin=ident, tls={"auth": "on", "ca": ca})
    r = kt.create_server(daemon, cfg, "mtls")
    assert r.status_code == 201, r.text
    url = r.json()["url"]
    assert r.json()["clientAuth"] == "verify"
    r = requests.get(url + "/v1/status", cert=signed, verify=daemon.ca, timeout=10)
    assert r.status_code == 200, r.text
    # a self-signed certificate no longer passes the handshake
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(url + "/v1/status", verify=daemon.ca, timeout=10,
                     cert=kt.cert_files(kt.new_api_key(), str(tmp_path)))
    assert daemon.delete("/emulator/kes/servers/mtls").status_code == 204
    # tls.auth: on with a skip_auth API: no certificate is fine, a sent one must verify
    cfg = kt.kes_config(vault, admin=ident, tls={"auth": "on", "ca": ca},
                        api={"/v1/metrics": {"skip_auth": True}})
    r = kt.create_server(daemon, cfg, "mtls2")
    assert r.status_code == 201 and r.json()["clientAuth"] == "verify-if-given", r.text
    url = r.json()["url"]
    assert requests.get(url + "/v1/metrics", verify=daemon.ca, timeout=10).status_code == 200
    assert requests.get(url + "/v1/status", cert=signed, verify=daemon.ca,
                        timeout=10).status_code == 200
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(url + "/v1/metrics", verify=daemon.ca, timeout=10,
                     cert=kt.cert_files(kt.new_api_key(), str(tmp_path)))
    assert daemon.delete("/emulator/kes/servers/mtls2").status_code == 204


def test_config_errors(daemon):
    vault = kt.setup_vault(daemon, mount="kverr", role="kes-err", policy="kes-err")
    base = json.loads(kt.kes_config(vault))
    cases = [
        ({"keystore": {}}, "kesconf: invalid keystore config: no keystore specified"),
        ({"cache": {"expiry": {"any": "5 minutes"}}}, "invalid duration"),
        ({"tls": {"key": "/nonexistent.key", "cert": "/nonexistent.crt"}},
         "failed to read TLS certificate: open /nonexistent.crt"),
        ({"address": "127.0.0.1:70000"}, "invalid port"),
        ({"log": {"error": "sometimes"}}, "invalid log level"),
        ({"policy": {"-bad-": {"allow": []}}}, "policy name '-bad-'"),
    ]
    for patch, want in cases:
        doc = dict(base)
        doc.update(patch)
        r = kt.create_server(daemon, json.dumps(doc), "errs")
        assert r.status_code == 400, (patch, r.text)
        assert want in r.json()["error"]["message"], (patch, r.json())
    r = daemon.post("/emulator/kes/servers?name=errs", data=b"")
    assert r.status_code == 400
    r = daemon.post("/emulator/kes/servers?name=bad/name", data=json.dumps(base))
    assert r.status_code == 400
    # the port of another server is taken
    r = kt.create_server(daemon, json.dumps(base), "first")
    assert r.status_code == 201
    doc = dict(base)
    doc["address"] = f"127.0.0.1:{r.json()['port']}"
    r2 = kt.create_server(daemon, json.dumps(doc), "second")
    assert r2.status_code == 400 and r2.json()["error"]["code"] == "KesConfigInvalid"
    assert daemon.delete("/emulator/kes/servers/first").status_code == 204


def test_created_servers_survive_a_restart(start_daemon, tmp_path):
    d = start_daemon("--vault-port", str(kt.free_port()))
    vault = kt.setup_vault(d)
    admin = kt.new_api_key()
    r = kt.create_server(d, kt.kes_config(vault, admin=kt.identity_of(admin)), "keep")
    assert r.status_code == 201, r.text
    port = r.json()["port"]
    c = kt.KesClient(r.json()["url"], d.ca, api_key=admin, directory=str(tmp_path))
    assert c.post("/v1/key/create/kept-1").status_code == 200
    g = c.generate("kept-1").json()
    c.close()
    # the config is sealed in the store: the AppRole secret is not in the file
    db = sqlite3.connect(os.path.join(d.data_dir, "pgcmk.sqlite"))
    rows = db.execute("SELECT name, config, port FROM kes_servers").fetchall()
    db.close()
    assert [(n, p) for n, _, p in rows] == [("keep", port)]
    assert vault["secret_id"].encode() not in rows[0][1]
    d.restart()
    s = d.get("/emulator/kes/servers/keep").json()
    assert s["port"] == port and s["stored"] is True
    c = kt.KesClient(s["url"], d.ca, api_key=admin, directory=str(tmp_path))
    r = c.decrypt("kept-1", g["ciphertext"])
    assert r.status_code == 200 and r.json()["plaintext"] == g["plaintext"]
    c.close()
    assert d.delete("/emulator/kes/servers/keep").status_code == 204
    d.restart()
    assert d.get("/emulator/kes/servers/keep").status_code == 404
    ops = activity(d, f"/subscriptions/{SUB}/providers/pgcmk.Kes/servers/keep")
    assert ops.count("pgcmk.Kes/servers/write") == 1 and "pgcmk.Kes/servers/delete" in ops
    assert d.get("/emulator/kes/servers").json()["value"] == []


def test_log_audit_on_writes_pgcmkd_log(start_daemon, tmp_path):
    d = start_daemon("--log-level", "info")
    vault = kt.setup_vault(d)
    admin = kt.new_api_key()
    cfg = kt.kes_config(vault, admin=kt.identity_of(admin), log={"audit": "on", "error": "off"})
    r = kt.create_server(d, cfg, "audited")
    assert r.status_code == 201, r.text
    c = kt.KesClient(r.json()["url"], d.ca, api_key=admin, directory=str(tmp_path))
    assert c.post("/v1/key/create/logged-1").status_code == 200
    assert c.generate("logged-1").status_code == 200
    c.close()
    log = d.stderr_text()
    lines = [l for l in log.splitlines() if "kes audited audit:" in l]
    assert any("/v1/key/generate/logged-1" in l and kt.identity_of(admin) in l for l in lines), lines
    assert vault["secret_id"] not in log and "plaintext" not in log
    # off (the default): nothing of the KES plane's audit in pgcmkd's log
    r = kt.create_server(d, kt.kes_config(vault, admin=kt.identity_of(admin)), "quiet")
    c = kt.KesClient(r.json()["url"], d.ca, api_key=admin, directory=str(tmp_path))
    assert c.get("/v1/key/describe/logged-1").status_code == 200
    c.close()
    assert "kes quiet audit:" not in d.stderr_text()


def test_stored_server_that_cannot_start_again(start_daemon):
    d = start_daemon()  # the Vault API takes another port after the restart
    vault = kt.setup_vault(d)
    r = kt.create_server(d, kt.kes_config(vault, keys=["needs-vault"]), "orphan")
    assert r.status_code == 201, r.text
    d.restart()
    # its required key cannot be checked at the old Vault address: it does not start
    assert d.get("/emulator/kes/servers/orphan").status_code == 404
    assert d.stderr_text().count("kes orphan: does not start again") == 1
    # it can still be deleted (its stored row goes), once
    assert d.delete("/emulator/kes/servers/orphan").status_code == 204
    assert d.delete("/emulator/kes/servers/orphan").status_code == 404
    d.restart()  # nothing left to start
    assert d.stderr_text().count("kes orphan: does not start again") == 1


def test_route_timeout_bounds_the_keystore_calls(daemon, tmp_path):
    """api.<path>.timeout bounds the route's Vault calls (a Vault that accepts the connection
    and never answers): the request ends with KES's 502, and the error log says why."""
    import socket
    hole = socket.socket()
    hole.bind(("127.0.0.1", 0))
    hole.listen(16)  # never accepted: the kernel completes the handshake, nobody answers
    admin = kt.new_api_key()
    vault = {"endpoint": f"http://127.0.0.1:{hole.getsockname()[1]}", "mount": "kv",
             "version": 1, "role_id": "r", "secret_id": "s", "ca": daemon.ca}
    cfg = kt.kes_config(vault, admin=kt.identity_of(admin),
                        api={"/v1/key/describe/": {"timeout": "1s"}})
    r = kt.create_server(daemon, cfg, "hole")
    assert r.status_code == 201, r.text
    c = kt.KesClient(r.json()["url"], daemon.ca, api_key=admin, directory=str(tmp_path))
    es = c.get("/v1/log/error", stream=True)
    try:
        assert es.status_code == 200
        r = c.get("/v1/key/describe/k1")
        assert r.status_code == 502, r.text
        line = json.loads(next(es.iter_lines()))
        # curl's words for the 1 s bound (KES's default would be 15 s, the store's own 10 s)
        assert re.search(r"timed out after 1\d{3} milliseconds", line["msg"]), line
        assert line["msg"].startswith("failed to read key: ")
    finally:
        es.close()
        c.close()
        hole.close()
        assert daemon.delete("/emulator/kes/servers/hole").status_code in (200, 204)
