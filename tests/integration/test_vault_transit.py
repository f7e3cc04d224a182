"""The Vault API's transit engine through hvac 0.11.2: keys, encrypt/decrypt, rotation,
min_decryption_version, rewrap, data keys, deletion refused then allowed."""
import base64
import uuid

import hvac
import pytest
import requests


@pytest.fixture(scope="module")
def vault(daemon):
    r = daemon.get("/emulator/info")
    assert r.status_code == 200, r.text
    v = r.json()["vault"]
    client = hvac.Client(url=v["address"], token=v["rootToken"], verify=daemon.ca)
    m = f"transit-{uuid.uuid4().hex[:8]}"
    client.sys.enable_secrets_engine(backend_type="transit", path=m)
    return daemon, v, client, m


def b64(s):
    return base64.b64encode(s).decode()


def test_transit_round_trip_rotation_rewrap(vault):
    _, _, client, m = vault
    t = client.secrets.transit
    t.create_key("k1", mount_point=m)
    key = t.read_key("k1", mount_point=m)["data"]
    assert key["type"] == "aes256-gcm96" and key["latest_version"] == 1
    assert key["min_decryption_version"] == 1 and key["deletion_allowed"] is False
    assert key["exportable"] is False and list(key["keys"]) == ["1"]

    ct1 = t.encrypt_data("k1", b64(b"hello pg"), mount_point=m)["data"]["ciphertext"]
    assert ct1.startswith("vault:v1:")
    ct1b = t.encrypt_data("k1", b64(b"hello pg"), mount_point=m)["data"]["ciphertext"]
    assert ct1b != ct1  # random nonces
    assert base64.b64decode(t.decrypt_data("k1", ct1, mount_point=m)["data"]["plaintext"]) == b"hello pg"

    t.rotate_key("k1", mount_point=m)
    key = t.read_key("k1", mount_point=m)["data"]
    assert key["latest_version"] == 2 and sorted(key["keys"]) == ["1", "2"]
    ct2 = t.encrypt_data("k1", b64(b"x"), mount_point=m)["data"]["ciphertext"]
    assert ct2.startswith("vault:v2:")
    rewrapped = t.rewrap_data("k1", ct1, mount_point=m)["data"]["ciphertext"]
    assert rewrapped.startswith("vault:v2:")
    assert base64.b64decode(t.decrypt_data("k1", rewrapped, mount_point=m)["data"]["plaintext"]) == b"hello pg"

    t.update_key_configuration("k1", min_decryption_version=2, mount_point=m)
    with pytest.raises(hvac.exceptions.InvalidRequest) as e:
        t.decrypt_data("k1", ct1, mount_point=m)
    assert "disallowed by policy" in str(e.value)
    with pytest.raises(hvac.exceptions.InvalidRequest):
        t.update_key_configuration("k1", min_decryption_version=7, mount_point=m)


def test_transit_datakey_and_batch(vault):
    _, _, client, m = vault
    t = client.secrets.transit
    t.create_key("dk", mount_point=m)
    d = t.generate_data_key("dk", key_type="plaintext", mount_point=m)["data"]
    assert len(base64.b64decode(d["plaintext"])) == 32 and d["ciphertext"].startswith("vault:v1:")
    back = t.decrypt_data("dk", d["ciphertext"], mount_point=m)["data"]["plaintext"]
    assert back == d["plaintext"]
    w = t.generate_data_key("dk", key_type="wrapped", bits=512, mount_point=m)["data"]
    assert "plaintext" not in w or w["plaintext"] is None
    r = t.encrypt_data("dk", None, batch_input=[{"plaintext": b64(b"a")}, {"plaintext": "!"}],
                       mount_point=m)["data"]["batch_results"]
    assert r[0]["ciphertext"].startswith("vault:v1:") and "error" in r[1]


def test_transit_delete_refused_then_allowed(vault):
    _, _, client, m = vault
    t = client.secrets.transit
    t.create_key("gone", mount_point=m)
    with pytest.raises(hvac.exceptions.InvalidRequest) as e:
        t.delete_key("gone", mount_point=m)
    assert "deletion is not allowed for this policy" in str(e.value)
    t.update_key_configuration("gone", deletion_allowed=True, mount_point=m)
    assert t.delete_key("gone", mount_point=m).status_code == 204
    with pytest.raises(hvac.exceptions.InvalidPath):
        t.read_key("gone", mount_point=m)
    assert "gone" not in t.list_keys(mount_point=m)["data"]["keys"]


def test_transit_errors(vault):
    d, v, client, m = vault
    t = client.secrets.transit
    t.create_key("err", mount_point=m)
    h = {"X-Vault-Token": v["rootToken"]}
    r = requests.post(f"{v['address']}/v1/{m}/decrypt/err", json={"ciphertext": "nope"},
                      headers=h, verify=d.ca, timeout=10)
    assert r.status_code == 400 and r.json() == {"errors": ["invalid ciphertext: no prefix"]}
    r = requests.post(f"{v['address']}/v1/{m}/encrypt/err", json={"plaintext": "!!"},
                      headers=h, verify=d.ca, timeout=10)
    assert r.status_code == 400
    r = requests.post(f"{v['address']}/v1/{m}/keys/bad", json={"type": "nope"}, headers=h,
                      verify=d.ca, timeout=10)
    assert r.status_code == 400
    r = requests.post(f"{v['address']}/v1/{m}/decrypt/missing", json={"ciphertext": "vault:v1:AAAA"},
                      headers=h, verify=d.ca, timeout=10)
    assert r.status_code == 400 and r.json() == {"errors": ["encryption key not found"]}


def test_transit_chacha20_poly1305(vault):
    _, _, client, m = vault
    t = client.secrets.transit
    t.create_key("cc", key_type="chacha20-poly1305", mount_point=m)
    assert t.read_key("cc", mount_point=m)["data"]["type"] == "chacha20-poly1305"
    ct = t.encrypt_data("cc", b64(b"chacha"), mount_point=m)["data"]["ciphertext"]
    assert ct.startswith("vault:v1:") and len(base64.b64decode(ct[9:])) == 12 + 6 + 16
    assert base64.b64decode(t.decrypt_data("cc", ct, mount_point=m)["data"]["plaintext"]) == b"chacha"
