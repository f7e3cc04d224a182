"""One key-URI parser (include/pgcmk/keyuri.h) for the whole daemon: the CMK create path (the
serverGroupsv2 validator), the single-server key path, lineage and the encryption agent (which
wraps the DEK while the create runs, over the wire) give the same answer for the same URI. The
validator and the agent used to disagree on a 20-hex-digit version and on `:8443` on
vault.azure.net: one accepted, the other refused, so the create was accepted and then failed."""
import pytest

from conftest import assert_arm_error, new_name
from pgtools import (CL_AV, cluster_body, cluster_id, cmk_setup, create_cluster, create_server,
                     explain, get_cluster, put_server_key)


@pytest.fixture(scope="module")
def cmk(daemon):
    return cmk_setup(daemon)


def uri_of(v, kid, form):
    """The key kid written in another form (v is its vault)."""
    n, ver = v.name, kid.rsplit("/", 1)[1]
    return {
        "azure_443": f"https://{n}.vault.azure.net:443/keys/cmk/{ver}",
        "azure_upper_trailing_slash": f"https://{n.upper()}.VAULT.AZURE.NET/KEYS/cmk/{ver}/",
        "local_stale_port": f"https://{n}.vault.localhost:1/keys/cmk/{ver}",
        "version_20_hex": f"https://{n}.vault.azure.net/keys/cmk/{ver[:20]}",
        "azure_port_8443": f"https://{n}.vault.azure.net:8443/keys/cmk/{ver}",
        "version_33_hex": f"https://{n}.vault.azure.net/keys/cmk/{ver}0",
        "query_string": f"https://{n}.vault.azure.net/keys/cmk/{ver}?api-version=7.4",
    }[form]


ACCEPTED = ["azure_443", "azure_upper_trailing_slash", "local_stale_port"]
REFUSED = {"version_20_hex": "32 hex digits", "azure_port_8443": "port 443",
           "version_33_hex": "32 hex digits", "query_string": "32 hex digits"}


@pytest.mark.parametrize("form", ACCEPTED)
def test_accepted_forms_reach_ready_through_the_agent(daemon, cmk, form):
    """The validator accepts the form and the agent, parsing it again, wraps the DEK with it."""
    d = daemon
    rg, mi, oid, v, kid = cmk
    uri = uri_of(v, kid, form)
    name = new_name("cl")
    create_cluster(d, rg, name, cluster_body(mi, uri))
    c = get_cluster(d, rg, name)
    assert c["properties"]["state"] == "Ready"
    assert c["properties"]["dataEncryption"]["primaryKeyUri"] == uri
    e = explain(d, c["id"])
    assert e["accessible"] is True and e["keyUri"] == uri
    r = d.get("/emulator/lineage", params={"keyId": uri})
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("form", sorted(REFUSED))
def test_refused_forms_get_the_same_answer_everywhere(daemon, cmk, form):
    """Refused at once with AzureKeyVaultKeyUriInvalid naming the rule, never accepted and then
    failed by the agent."""
    d = daemon
    rg, mi, oid, v, kid = cmk
    uri = uri_of(v, kid, form)
    name = new_name("cl")
    r = d.put(f"{cluster_id(rg, name)}?api-version={CL_AV}", json=cluster_body(mi, uri))
    assert_arm_error(r, 400, "AzureKeyVaultKeyUriInvalid")
    assert REFUSED[form] in r.json()["error"]["message"], r.text
    assert d.get(f"{cluster_id(rg, name)}?api-version={CL_AV}").status_code == 404
    r = d.get("/emulator/lineage", params={"keyId": uri})
    assert_arm_error(r, 400, "AzureKeyVaultKeyUriInvalid")


@pytest.fixture(scope="module")
def server(daemon, cmk):
    name = new_name("pg")
    create_server(daemon, cmk[0], name)
    return name


@pytest.mark.parametrize("form", sorted(REFUSED))
def test_server_keys_refuse_the_same_forms(daemon, cmk, server, form):
    rg, mi, oid, v, kid = cmk
    r = put_server_key(daemon, rg, server, uri_of(v, kid, form), name="a_b_c")
    assert_arm_error(r, 400, "AzureKeyVaultKeyUriInvalid")
