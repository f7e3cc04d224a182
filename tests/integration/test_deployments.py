"""ARM template deployments over HTTP: the deployments API (PUT as an LRO, GET, list, DELETE,
cancel, validate, whatIf, exportTemplate, operations), the DeploymentFailed envelope, every ready
template in arm-templates/ deployed as is (requests, the Azure SDK, the real az CLI), and the
bodies real clients send (template as an object, as a string, and the az CLI's JSONC form)."""
import json
import os
import shutil
import subprocess

import pytest

from conftest import ROOT, SUB, assert_arm_error, new_name, poll_until
from pgtools import CL_AV, cluster_id, cmk_setup, get_cluster, settle

DEP_AV = "2021-04-01"
TEMPLATES = os.path.join(ROOT, "arm-templates")


def dep_url(rg, name, suffix=""):
    return f"/subscriptions/{SUB}/resourcegroups/{rg}/providers/Microsoft.Resources/deployments/" \
           f"{name}{suffix}?api-version={DEP_AV}"


def load(path):
    with open(os.path.join(TEMPLATES, path), encoding="utf-8") as f:
        return json.load(f)


def params_of(path, **override):
    p = load(path)["parameters"]
    for k, v in override.items():
        p[k] = {"value": v}
    return p


def deploy(d, rg, name, template, parameters=None, mode="Incremental", expect="Succeeded"):
    body = {"properties": {"mode": mode, "template": template, "parameters": parameters or {}}}
    r = d.put(dep_url(rg, name), json=body)
    assert r.status_code in (200, 201), r.text
    assert r.json()["properties"]["provisioningState"] in ("Accepted", "Running")
    url = r.headers["Azure-AsyncOperation"]

    def done():
        st = d.get(url).json()
        return st if st["status"] not in ("InProgress", "Running", "Accepted") else None
    st = poll_until(done, timeout=60, what="the deployment")
    assert st["status"] == expect, st
    got = d.get(dep_url(rg, name)).json()
    assert got["properties"]["provisioningState"] == expect
    return got, st


def new_group(d):
    rg = new_name("rg")
    assert d.put_rg(rg).status_code == 201
    return rg


IDENTITY_TEMPLATE = {
    "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
    "contentVersion": "1.0.0.0",
    "parameters": {"idName": {"type": "string"}, "count": {"type": "int", "defaultValue": 2}},
    "resources": [{"type": "Microsoft.ManagedIdentity/userAssignedIdentities",
                   "apiVersion": "2023-01-31", "name": "[concat(parameters('idName'), copyIndex())]",
                   "location": "[resourceGroup().location]",
                   "copy": {"name": "ids", "count": "[parameters('count')]"}}],
    "outputs": {"first": {"type": "string",
                          "value": "[reference(resourceId('Microsoft.ManagedIdentity/"
                                   "userAssignedIdentities', concat(parameters('idName'), '0')), "
                                   "'2023-01-31').principalId]"}}}


def test_deploy_copy_loop_outputs_operations_export_and_delete(daemon):
    d = daemon
    rg = new_group(d)
    got, _ = deploy(d, rg, "dep1", IDENTITY_TEMPLATE, {"idName": {"value": "mi"}})
    p = got["properties"]
    assert p["mode"] == "Incremental" and p["correlationId"]
    assert p["outputs"]["first"]["type"].lower() == "string"
    assert len(p["outputs"]["first"]["value"]) == 36
    assert sorted(x["id"].rsplit("/", 1)[1] for x in p["outputResources"]) == ["mi0", "mi1"]
    assert p["duration"].startswith("PT")
    ops = d.get(dep_url(rg, "dep1", "/operations")).json()["value"]
    assert len(ops) == 2
    assert {o["properties"]["provisioningState"] for o in ops} == {"Succeeded"}
    assert {o["properties"]["targetResource"]["resourceName"] for o in ops} == {"mi0", "mi1"}
    one = d.get(dep_url(rg, "dep1", "/operations/" + ops[0]["operationId"]))
    assert one.status_code == 200 and one.json()["operationId"] == ops[0]["operationId"]
    r = d.post(dep_url(rg, "dep1", "/exportTemplate"))
    assert r.status_code == 200 and r.json()["template"]["resources"][0]["copy"]["count"]
    lst = d.get(dep_url(rg, "").replace("/deployments/?", "/deployments?")).json()["value"]
    assert [x["name"] for x in lst] == ["dep1"]
    r = d.delete(dep_url(rg, "dep1"))
    assert r.status_code == 202
    assert_arm_error(d.get(dep_url(rg, "dep1")), 404, "DeploymentNotFound")
    assert d.delete(dep_url(rg, "dep1")).status_code == 204


def test_template_as_string_and_az_cli_jsonc_body(daemon):
    d = daemon
    rg = new_group(d)
    body = {"properties": {"mode": "Incremental", "template": json.dumps(IDENTITY_TEMPLATE),
                           "parameters": {"idName": {"value": "sid"}, "count": {"value": 1}}}}
    r = d.put(dep_url(rg, "asstring"), json=body)
    assert r.status_code == 201, r.text
    # the az CLI's body: an unquoted `template:` key followed by the raw file, comments included
    raw = '{\n  // a comment\n  "$schema": "x", "contentVersion": "1.0.0.0", /* block */\n' \
          '  "resources": [{"type": "Microsoft.ManagedIdentity/userAssignedIdentities",\n' \
          '    "apiVersion": "2023-01-31", "name": "jsonc", "location": "eastus"}]\n}\n'
    data = {"properties": {"mode": "Incremental", "parameters": {}}}
    text = json.dumps(data)[:-2] + ", template:" + raw + "}}"
    r = d.put(dep_url(rg, "jsonc"), data=text, headers={"Content-Type": "application/json"})
    assert r.status_code == 201, r.text
    poll_until(lambda: d.get(dep_url(rg, "jsonc")).json()["properties"]["provisioningState"]
               == "Succeeded", what="the JSONC deployment")


def test_invalid_templates(daemon):
    d = daemon
    rg = new_group(d)
    with open(os.path.join(TEMPLATES, "invalid", "seed003-pitr-as-published.json")) as f:
        text = f.read()
    data = {"properties": {"mode": "Incremental", "parameters": {}}}
    r = d.put(dep_url(rg, "bad"), data=json.dumps(data)[:-2] + ", template:" + text + "}}",
              headers={"Content-Type": "application/json"})
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["code"] in ("InvalidTemplate", "InvalidRequestContent")
    assert "line" in err["message"].lower()
    bad = dict(IDENTITY_TEMPLATE, resources=[dict(IDENTITY_TEMPLATE["resources"][0],
                                                  name="[nosuchfunction('x')]")])
    r = d.put(dep_url(rg, "bad2"), json={"properties": {"mode": "Incremental", "template": bad,
                                                        "parameters": {"idName": {"value": "a"}}}})
    assert_arm_error(r, 400, "InvalidTemplate")
    assert "nosuchfunction" in r.json()["error"]["message"].lower()
    r = d.put(dep_url(rg, "bad3"), json={"properties": {"mode": "Sideways",
                                                        "template": IDENTITY_TEMPLATE}})
    assert r.status_code == 400
    r = d.put(dep_url(rg, "bad4"), json={"properties": {"mode": "Incremental",
                                                        "template": IDENTITY_TEMPLATE}})
    assert_arm_error(r, 400, "InvalidTemplate")  # idName is required
    cyc = {"$schema": "x", "contentVersion": "1.0.0.0", "resources": [
        {"type": "Microsoft.ManagedIdentity/userAssignedIdentities", "apiVersion": "2023-01-31",
         "name": "a", "location": "eastus", "dependsOn": ["b"]},
        {"type": "Microsoft.ManagedIdentity/userAssignedIdentities", "apiVersion": "2023-01-31",
         "name": "b", "location": "eastus", "dependsOn": ["a"]}]}
    r = d.post(dep_url(rg, "cyc", "/validate"), json={"properties": {"mode": "Incremental",
                                                                     "template": cyc}})
    assert_arm_error(r, 400, "InvalidTemplate")
    assert "circular" in r.json()["error"]["message"].lower() or \
        "cycle" in r.json()["error"]["message"].lower()


def test_failed_resource_gives_deployment_failed_with_the_providers_error(daemon):
    d = daemon
    rg = new_group(d)
    tpl = {"$schema": "x", "contentVersion": "1.0.0.0", "resources": [
        {"type": "Microsoft.KeyVault/vaults", "apiVersion": "2023-07-01", "name": "[concat('kv', uniqueString(resourceGroup().id))]",
         "location": "eastus", "properties": {"tenantId": "[subscription().tenantId]",
                                              "sku": {"family": "A", "name": "standard"},
                                              "accessPolicies": [],
                                              "enableSoftDelete": False}}]}
    _, st = deploy(d, rg, "fails", tpl, expect="Failed")
    assert st["error"]["code"] == "DeploymentFailed"
    assert st["error"]["details"][0]["code"] == "BadRequest"
    got = d.get(dep_url(rg, "fails")).json()
    assert got["properties"]["error"]["details"][0]["message"]
    ops = d.get(dep_url(rg, "fails", "/operations")).json()["value"]
    assert ops[0]["properties"]["provisioningState"] == "Failed"
    assert ops[0]["properties"]["statusCode"] == "BadRequest"


def test_validate_and_what_if(daemon):
    d = daemon
    rg = new_group(d)
    r = d.post(dep_url(rg, "v", "/validate"), json={"properties": {
        "mode": "Incremental", "template": IDENTITY_TEMPLATE,
        "parameters": {"idName": {"value": "wid"}}}})
    assert r.status_code == 200, r.text
    assert len(r.json()["properties"]["validatedResources"]) == 2
    body = {"properties": {"mode": "Complete", "template": IDENTITY_TEMPLATE,
                           "parameters": {"idName": {"value": "wid"}, "count": {"value": 1}}}}
    r = d.post(dep_url(rg, "v", "/whatIf"), json=body)
    assert r.status_code == 200, r.text
    assert [c["changeType"] for c in r.json()["properties"]["changes"]] == ["Create"]
    deploy(d, rg, "v", IDENTITY_TEMPLATE, {"idName": {"value": "wid"}, "count": {"value": 1}})
    assert d.put(f"/subscriptions/{SUB}/resourceGroups/{rg}/providers/Microsoft.ManagedIdentity/"
                 f"userAssignedIdentities/other?api-version=2023-01-31",
                 json={"location": "eastus"}).status_code == 201
    changes = d.post(dep_url(rg, "v", "/whatIf"), json=body).json()["properties"]["changes"]
    kinds = {c["resourceId"].rsplit("/", 1)[1]: c["changeType"] for c in changes}
    assert kinds == {"wid0": "NoChange", "other": "Delete"}
    body["properties"]["mode"] = "Incremental"
    changes = d.post(dep_url(rg, "v", "/whatIf"), json=body).json()["properties"]["changes"]
    assert {c["resourceId"].rsplit("/", 1)[1]: c["changeType"] for c in changes}["other"] == \
        "Ignore"


def test_complete_mode_deletes_what_the_template_does_not_list(daemon):
    d = daemon
    rg = new_group(d)
    deploy(d, rg, "c1", IDENTITY_TEMPLATE, {"idName": {"value": "kid"}, "count": {"value": 2}})
    deploy(d, rg, "c2", IDENTITY_TEMPLATE, {"idName": {"value": "kid"}, "count": {"value": 1}},
           mode="Complete")
    ids = d.get(f"/subscriptions/{SUB}/resourceGroups/{rg}/resources?api-version=2021-04-01")
    assert sorted(x["name"] for x in ids.json()["value"]) == ["kid0"]


def test_cmk_prerequisites_and_seed_cluster_templates(daemon):
    d = daemon
    rg = new_group(d)
    got, _ = deploy(d, rg, "prereq", load("cmk-prerequisites/template.json"),
                    params_of("cmk-prerequisites/parameters.json"))
    out = got["properties"]["outputs"]
    kid = out["keyUriWithVersion"]["value"]
    mi = out["identityId"]["value"]
    assert "/keys/cmk/" in kid
    got, _ = deploy(d, rg, "seedcluster", load("cluster-cmk/template.json"),
                    params_of("cluster-cmk/parameters.json", encryptionKeyUrl=kid,
                              userAssignedIdentityUrl=mi, serverGroupName="seedcl-" + rg[-8:]))
    c = get_cluster(d, rg, "seedcl-" + rg[-8:])
    assert c["properties"]["state"] == "Ready"
    assert c["properties"]["dataEncryption"]["primaryKeyUri"] == kid
    assert c["properties"]["nodeCount"] == 2
    t = d.get("/emulator/clock").json()["now"]
    deploy(d, rg, "seedpitr", load("cluster-pitr/template.json"),
           params_of("cluster-pitr/parameters.json", encryptionKeyUrl=kid,
                     userAssignedIdentityUrl=mi, resourceGroupName=rg,
                     serverGroupName="seedrs-" + rg[-8:], sourceServerGroupName="seedcl-" + rg[-8:],
                     restorePointInTime=t))
    r = get_cluster(d, rg, "seedrs-" + rg[-8:])
    assert r["properties"]["sourceResourceId"].lower() == cluster_id(rg, "seedcl-" + rg[-8:]).lower()


def test_all_in_one_template(daemon):
    d = daemon
    rg = new_group(d)
    got, _ = deploy(d, rg, "aio", load("all-in-one/template.json"),
                    params_of("all-in-one/parameters.json"))
    out = got["properties"]["outputs"]
    assert out["state"]["value"] == "Ready"
    assert "administratorLoginPassword" not in json.dumps(got["properties"]["parameters"]) or \
        "value" not in got["properties"]["parameters"]["administratorLoginPassword"]
    cid = out["clusterId"]["value"]
    c = d.get(f"{cid}?api-version={CL_AV}").json()
    assert c["properties"]["dataEncryption"]["primaryKeyUri"] == out["keyUri"]["value"]


def test_single_server_key_template(daemon):
    d = daemon
    rg, mi, oid, v, kid = cmk_setup(d)
    srv = "srv-" + rg[-8:]
    r = d.put(f"/subscriptions/{SUB}/resourceGroups/{rg}/providers/Microsoft.DBforPostgreSQL/"
              f"servers/{srv}?api-version=2017-12-01", json={
                  "location": "eastus", "sku": {"name": "GP_Gen5_2", "tier": "GeneralPurpose"},
                  "properties": {"createMode": "Default", "administratorLogin": "pgadmin",
                                 "administratorLoginPassword": "P@ssw0rd1234!", "version": "11"}})
    if r.status_code == 400 and "NoRegisteredProviderFound" in r.text or r.status_code == 404:
        pytest.skip("single servers are not there yet")
    assert r.status_code in (200, 201, 202), r.text
    poll_until(lambda: d.get(f"/subscriptions/{SUB}/resourceGroups/{rg}/providers/"
                             f"Microsoft.DBforPostgreSQL/servers/{srv}?api-version=2017-12-01")
               .json()["properties"].get("userVisibleState") == "Ready", what="the server")
    ver = kid.rsplit("/", 1)[1]
    deploy(d, rg, "srvkey", load("single-server-key/template.json"),
           params_of("single-server-key/parameters.json", serverName=srv, keyVaultName=v.name,
                     keyVersion=ver))
    s = d.get(f"/subscriptions/{SUB}/resourceGroups/{rg}/providers/Microsoft.DBforPostgreSQL/"
              f"servers/{srv}?api-version=2017-12-01").json()
    assert s["properties"]["byokEnforcement"] == "Enabled"
    ops = d.get(dep_url(rg, "srvkey", "/operations")).json()["value"]
    assert {o["properties"]["provisioningState"] for o in ops} == {"Succeeded"}


def test_subscription_scope_creates_a_group_and_nested_deployment(daemon):
    d = daemon
    rg = new_name("rg")
    tpl = {"$schema": "https://schema.management.azure.com/schemas/2018-05-01/"
                      "subscriptionDeploymentTemplate.json#",
           "contentVersion": "1.0.0.0",
           "resources": [
               {"type": "Microsoft.Resources/resourceGroups", "apiVersion": "2021-04-01",
                "name": rg, "location": "eastus"},
               {"type": "Microsoft.Resources/deployments", "apiVersion": "2021-04-01",
                "name": "inner", "resourceGroup": rg,
                "dependsOn": [f"[resourceId('Microsoft.Resources/resourceGroups', '{rg}')]"],
                "properties": {"mode": "Incremental", "template": {
                    "$schema": "x", "contentVersion": "1.0.0.0",
                    "resources": [{"type": "Microsoft.ManagedIdentity/userAssignedIdentities",
                                   "apiVersion": "2023-01-31", "name": "nested-id",
                                   "location": "eastus"}]}}}]}
    url = f"/subscriptions/{SUB}/providers/Microsoft.Resources/deployments/{rg}?api-version={DEP_AV}"
    r = d.put(url, json={"location": "eastus", "properties": {"mode": "Incremental",
                                                              "template": tpl}})
    assert r.status_code == 201, r.text
    poll_until(lambda: d.get(url).json()["properties"]["provisioningState"] in
               ("Succeeded", "Failed"), what="the deployment")
    assert d.get(url).json()["properties"]["provisioningState"] == "Succeeded", d.get(url).text
    r = d.get(f"/subscriptions/{SUB}/resourceGroups/{rg}/providers/Microsoft.ManagedIdentity/"
              "userAssignedIdentities/nested-id?api-version=2023-01-31")
    assert r.status_code == 200


def test_sdk_resource_management_client_deploys(start_daemon):
    pytest.importorskip("azure.mgmt.resource")
    from azure.identity import ClientSecretCredential
    from azure.mgmt.resource import ResourceManagementClient
    d = start_daemon()
    info = d.get("/emulator/info").json()
    cred = ClientSecretCredential("adfs", info["admin"]["clientId"], info["admin"]["clientSecret"],
                                  authority=d.base, connection_verify=d.ca)
    rc = ResourceManagementClient(cred, SUB, base_url=d.base, polling_interval=0,
                                  credential_scopes=["https://management.azure.com/.default"],
                                  connection_verify=d.ca)
    rc.resource_groups.create_or_update("sdkrg", {"location": "eastus"})
    res = rc.deployments.begin_create_or_update("sdkrg", "aio", {"properties": {
        "mode": "Incremental", "template": load("all-in-one/template.json"),
        "parameters": params_of("all-in-one/parameters.json")}}).result()
    assert res.properties.provisioning_state == "Succeeded"
    assert res.properties.outputs["state"]["value"] == "Ready"
    ops = list(rc.deployment_operations.list("sdkrg", "aio"))
    assert len(ops) == 4
    v = rc.deployments.begin_validate("sdkrg", "aio2", {"properties": {
        "mode": "Incremental", "template": IDENTITY_TEMPLATE,
        "parameters": {"idName": {"value": "xid"}}}}).result()
    assert v.properties.provisioning_state == "Succeeded"
    wi = rc.deployments.begin_what_if("sdkrg", "aio", {"properties": {
        "mode": "Incremental", "template": load("all-in-one/template.json"),
        "parameters": params_of("all-in-one/parameters.json")}}).result()
    assert {c.change_type for c in wi.changes} <= {"NoChange", "Modify", "Ignore"}


@pytest.mark.skipif(not shutil.which("az"), reason="the az CLI is not installed")
def test_az_deployment_group_create_with_a_template_file(start_daemon, tmp_path):
    d = start_daemon()
    info = d.get("/emulator/info").json()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AZURE_", "MSI_", "IDENTITY_", "REQUESTS_CA", "HTTP", "HTTPS"))}
    env.update(AZURE_CONFIG_DIR=str(tmp_path / "az"), AZURE_CORE_COLLECT_TELEMETRY="false",
               REQUESTS_CA_BUNDLE=d.ca, AZURE_CORE_NO_COLOR="1")

    def az(*args):
        r = subprocess.run(["az", *args], env=env, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        return r.stdout

    subprocess.run(["bash", "-c", info["azCloudRegister"]["command"]], env=env, check=True,
                   capture_output=True, timeout=120)
    az("cloud", "set", "-n", "pgcmk")
    az("login", "--service-principal", "-u", info["admin"]["clientId"], "-p",
       info["admin"]["clientSecret"], "--tenant", info["tenantId"], "-o", "none")
    az("group", "create", "-n", "azdep", "-l", "eastus", "-o", "none")
    tf = tmp_path / "t.json"
    tf.write_text("// a commented template, as az users write them\n" +
                  json.dumps(IDENTITY_TEMPLATE, indent=2))
    out = json.loads(az("deployment", "group", "create", "-g", "azdep", "-n", "azd",
                        "--template-file", str(tf), "--parameters", "idName=cli", "-o", "json"))
    assert out["properties"]["provisioningState"] == "Succeeded"
    assert len(out["properties"]["outputs"]["first"]["value"]) == 36
    ops = json.loads(az("deployment", "operation", "group", "list", "-g", "azdep", "-n", "azd",
                        "-o", "json"))
    assert len(ops) == 2
    settle(d)


def test_cancel_a_running_deployment(daemon):
    d = daemon
    rg = new_group(d)
    body = {"properties": {"mode": "Incremental", "template": IDENTITY_TEMPLATE,
                           "parameters": {"idName": {"value": "many"}, "count": {"value": 400}}}}
    r = d.put(dep_url(rg, "long"), json=body)
    assert r.status_code == 201, r.text
    c = d.post(dep_url(rg, "long", "/cancel"))
    assert c.status_code == 204, c.text
    st = poll_until(lambda: d.get(dep_url(rg, "long")).json()["properties"]["provisioningState"]
                    in ("Canceled", "Succeeded", "Failed") and d.get(dep_url(rg, "long")).json(),
                    timeout=60, what="the canceled deployment")
    assert st["properties"]["provisioningState"] == "Canceled", st["properties"]
    made = d.get(f"/subscriptions/{SUB}/resourceGroups/{rg}/resources?api-version=2021-04-01")
    assert len(made.json()["value"]) < 400
    r = d.post(dep_url(rg, "long", "/cancel"))
    assert_arm_error(r, 409, "Conflict")
    assert_arm_error(d.post(dep_url(rg, "nosuch", "/cancel")), 404, "DeploymentNotFound")


def test_concurrent_deployments_do_not_starve_the_worker_pool(start_daemon):
    """A deployment waits for the operations of the resources it creates, which run on the same
    worker pool. With 4 workers and 8 deployments of arm-templates/all-in-one submitted at once,
    a deployment that held its worker while waiting would leave none for those operations:
    every deployment must still succeed, well before the executor's own 120 s wait gives up."""
    d = start_daemon("--workers", "4", http=False)
    tpl, params = load("all-in-one/template.json"), params_of("all-in-one/parameters.json")
    runs = []
    for i in range(8):
        rg = new_group(d)
        r = d.put(dep_url(rg, f"aio{i}"), json={"properties": {
            "mode": "Incremental", "template": tpl, "parameters": params}})
        assert r.status_code in (200, 201), r.text
        runs.append((rg, f"aio{i}", r.headers["Azure-AsyncOperation"]))
    pending = {name: url for _, name, url in runs}
    ended = {}

    def all_ended():
        for name, url in list(pending.items()):
            st = d.get(url).json()
            if st["status"] not in ("InProgress", "Running", "Accepted"):
                ended[name] = st
                del pending[name]
        return not pending
    poll_until(all_ended, timeout=90, interval=0.1, what="8 concurrent deployments")
    assert all(st["status"] == "Succeeded" for st in ended.values()), ended
    for rg, name, _ in runs:
        p = d.get(dep_url(rg, name)).json()["properties"]
        assert p["provisioningState"] == "Succeeded", p
        assert p["outputs"]["state"]["value"] == "Ready", p["outputs"]
