"""Request-body schemas (schemas/): the documented examples and every ARM template resource of a
type with a schema validate; a bad body of each type gets Azure's 400 through the daemon; the
daemon finds the schemas from another working directory and runs without them.

Offline checks use the C validator itself (`build/tests/test_schema --validate DIR FILE`), so the
tests and the daemon read the schemas the same way.
"""
import json
import os
import re
import subprocess
import tempfile

import pytest

import conftest
from conftest import SUB, TENANT, assert_arm_error, new_name, pgcmkd_path

ROOT = conftest.ROOT
SCHEMAS = os.path.join(ROOT, "schemas")
TEMPLATE_DIRS = [os.path.join(ROOT, "arm-templates"), os.path.join(ROOT, "tests", "data", "templates")]
EXAMPLE_RE = re.compile(r"<!-- example: (\S+) (\S+) (PUT|PATCH) -->\s*```json\n(.*?)```", re.S)
MI = f"/subscriptions/{SUB}/resourceGroups/rg1/providers/Microsoft.ManagedIdentity/userAssignedIdentities/mi1"


# --- the C validator as a batch tool ----------------------------------------------------------

def validator():
    cands = [os.path.join(os.path.dirname(pgcmkd_path()), "tests", "test_schema"),
             os.path.join(ROOT, "build", "tests", "test_schema")]
    for c in cands:
        if os.access(c, os.X_OK):
            return c
    pytest.skip("build/tests/test_schema is not built (make build/tests/test_schema)")


def validate(cases):
    """cases: [{"type","apiVersion","body","patch"?,"template"?}] -> [{"ok","covered","code",...}]"""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(cases, f)
    try:
        out = subprocess.run([validator(), "--validate", SCHEMAS, f.name], capture_output=True,
                             text=True, timeout=60)
    finally:
        os.unlink(f.name)
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout)
    assert len(res) == len(cases)
    return res


# --- documented examples ----------------------------------------------------------------------

def readme_examples():
    with open(os.path.join(SCHEMAS, "README.md")) as f:
        text = f.read()
    return [{"type": t, "apiVersion": v, "patch": m == "PATCH", "body": json.loads(body)}
            for t, v, m, body in EXAMPLE_RE.findall(text)]


def test_readme_examples_validate():
    cases = readme_examples()
    assert len(cases) >= 15
    types = {c["type"] for c in cases}
    assert len(types) == 8, types  # every type with a schema has an example
    for c, r in zip(cases, validate(cases)):
        assert r["covered"], c
        assert r["ok"], (c["type"], c["apiVersion"], r["message"])


def test_each_type_has_its_versions():
    probes = [("Microsoft.Resources/resourceGroups", "2021-04-01"),
              ("Microsoft.ManagedIdentity/userAssignedIdentities", "2023-01-31"),
              ("Microsoft.KeyVault/vaults", "2019-09-01"),
              ("Microsoft.KeyVault/vaults/accessPolicies", "2022-07-01"),
              ("Microsoft.KeyVault/vaults/keys", "2023-02-01"),
              ("Microsoft.DBforPostgreSQL/serverGroupsv2", "2020-10-05-privatepreview"),
              ("Microsoft.DBforPostgreSQL/serverGroupsv2", "2022-11-08"),
              ("Microsoft.DBforPostgreSQL/serverGroupsv2", "2023-03-02-preview"),
              ("Microsoft.DBforPostgreSQL/servers", "2017-12-01"),
              ("Microsoft.DBforPostgreSQL/servers/keys", "2020-01-01"),
              ("Microsoft.DBforPostgreSQL/servers/keys", "2020-01-01-preview")]
    res = validate([{"type": t, "apiVersion": v, "body": {}, "patch": True} for t, v in probes])
    assert [r["covered"] for r in res] == [True] * len(probes), list(zip(probes, res))


# --- templates --------------------------------------------------------------------------------

def strip_comments(text):
    """JSON with // and /* */ comments (ARM templates allow them) -> JSON."""
    out, i, n, in_str = [], 0, len(text), False
    while i < n:
        c = text[i]
        if in_str:
            out.append(c)
            if c == "\\" and i + 1 < n:
                out.append(text[i + 1])
                i += 1
            elif c == '"':
                in_str = False
        elif c == '"':
            in_str = True
            out.append(c)
        elif text.startswith("//", i):
            while i < n and text[i] != "\n":
                i += 1
            continue
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            i = n if end < 0 else end + 2
            continue
        else:
            out.append(c)
        i += 1
    return "".join(out)


def template_files():
    files = []
    for d in TEMPLATE_DIRS:
        for dirpath, dirnames, names in os.walk(d):
            # the published-as-is templates kept as negative test cases are not deployable
            dirnames[:] = [x for x in dirnames if x != "invalid"]
            files += [os.path.join(dirpath, x) for x in sorted(names)
                      if x.endswith(".json") and "invalid" not in x]
    return files


def literal(value, variables):
    """A template value when it is a literal or a plain variables('x') reference, else None."""
    if isinstance(value, str) and value.startswith("[") and not value.startswith("[["):
        m = re.fullmatch(r"\[\s*variables\('([^']+)'\)\s*\]", value)
        v = variables.get(m.group(1)) if m else None
        return v if isinstance(v, str) and not v.startswith("[") else None
    return value


def template_resources(tpl, parent_type=None, variables=None):
    """(type, apiVersion, resource) for every resource, child and nested-deployment resource."""
    variables = dict(variables or {})
    if isinstance(tpl.get("variables"), dict):
        variables.update(tpl["variables"])
    for res in tpl.get("resources") or []:
        if not isinstance(res, dict) or not isinstance(res.get("type"), str):
            continue
        t = res["type"]
        if parent_type and "." not in t.split("/")[0]:
            t = f"{parent_type}/{t}"  # a child declared inside its parent: "keys" in a vault
        yield t, literal(res.get("apiVersion"), variables), res
        if isinstance(res.get("resources"), list):
            yield from template_resources(res, t, variables)
        inner = (res.get("properties") or {}).get("template") if isinstance(res.get("properties"), dict) else None
        if t.lower() == "microsoft.resources/deployments" and isinstance(inner, dict):
            yield from template_resources(inner, None, None)


def template_cases():
    cases, where, unparsed = [], [], []
    for path in template_files():
        with open(path, encoding="utf-8") as f:
            text = f.read()
        try:
            doc = json.loads(strip_comments(text))
        except ValueError as e:
            unparsed.append(f"{path}: {e}")
            continue
        if not isinstance(doc, dict) or "resources" not in doc:
            continue  # a parameter file or another JSON document
        for t, av, res in template_resources(doc):
            body = {k: res[k] for k in ("location", "tags", "identity", "sku", "kind", "properties")
                    if k in res}
            cases.append({"type": t, "apiVersion": av, "body": body, "template": True})
            where.append(f"{os.path.relpath(path, ROOT)}: {t} {res.get('name')}")
    return cases, where, unparsed


def test_templates_validate():
    files = template_files()
    if not files:
        pytest.skip("no templates in arm-templates/ or tests/data/templates/ yet")
    cases, where, unparsed = template_cases()
    assert not unparsed, "templates that are not JSON (with comments):\n" + "\n".join(unparsed)
    if not cases:
        pytest.skip("the templates declare no resources")
    res = validate(cases)
    bad = [f"{w}: {r['message']}" for w, r in zip(where, res) if not r["ok"]]
    assert not bad, "\n".join(bad)


def test_template_expressions_stand_for_values():
    """Expressions pass the schema wherever a value goes; literals are still checked."""
    body = {"location": "[parameters('location')]",
            "properties": {"tenantId": "[subscription().tenantId]", "sku": "[variables('sku')]",
                           "softDeleteRetentionInDays": "[parameters('days')]"}}
    bad = {"location": "eastus", "properties": {"tenantId": TENANT, "sku": {"family": "A", "name": "gold"}}}
    ok, nok = validate([{"type": "Microsoft.KeyVault/vaults", "apiVersion": "2022-07-01",
                         "body": b, "template": True} for b in (body, bad)])
    assert ok["ok"], ok
    assert not nok["ok"] and nok["target"] == "properties.sku.name", nok


def test_comment_stripper():
    text = '{"a": "x // not a comment", /* c */ "b": [1, // c\n 2], "c": "/* kept */"}'
    assert json.loads(strip_comments(text)) == {"a": "x // not a comment", "b": [1, 2],
                                                "c": "/* kept */"}


# --- through the daemon -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def rg(daemon):
    name = new_name("schemas")
    assert daemon.put_rg(name).status_code in (200, 201)
    return name


def res_url(rg, provider_type, name, av):
    return f"/subscriptions/{SUB}/resourceGroups/{rg}/providers/{provider_type}/{name}?api-version={av}"


def vault_body(**props):
    p = {"tenantId": TENANT, "sku": {"family": "A", "name": "standard"}, "accessPolicies": []}
    p.update(props)
    return {"location": "eastus", "properties": p}


BAD = [
    # (type path, api-version, name prefix, body, target, words in the message)
    ("Microsoft.ManagedIdentity/userAssignedIdentities", "2023-01-31", "mi",
     {"location": "eastus", "tags": {"team": 5}}, "tags.team", "to type 'string'"),
    ("Microsoft.ManagedIdentity/userAssignedIdentities", "2024-11-30", "mi",
     {"location": "eastus", "properties": {"isolationScope": "Global"}}, "properties.isolationScope",
     "IsolationScope"),
    ("Microsoft.KeyVault/vaults", "2022-07-01", "kv",
     vault_body(sku={"family": "A", "name": "gold"}), "properties.sku.name", "SkuName"),
    ("Microsoft.KeyVault/vaults", "2019-09-01", "kv",
     {"location": "eastus", "properties": {"sku": {"family": "A", "name": "standard"}}},
     "properties", "Required property 'tenantId'"),
    ("Microsoft.KeyVault/vaults", "2022-07-01", "kv", vault_body(tenantId="not-a-guid"),
     "properties.tenantId", "pattern"),
    ("Microsoft.KeyVault/vaults", "2022-07-01", "kv", vault_body(enableSoftDelete="yes"),
     "properties.enableSoftDelete", "boolean"),
    ("Microsoft.KeyVault/vaults", "2022-07-01", "kv",
     vault_body(accessPolicies=[{"tenantId": TENANT, "objectId": "x",
                                 "permissions": {"keys": ["get", "fly"]}}]),
     "properties.accessPolicies[0].permissions.keys[1]", "KeyPermissions"),
    ("Microsoft.DBforPostgreSQL/serverGroupsv2", "2023-03-02-preview", "cl",
     {"location": "eastus", "properties": {"nodeCount": "three"}}, "properties.nodeCount",
     "Error converting value \"three\""),
    ("Microsoft.DBforPostgreSQL/serverGroupsv2", "2023-03-02-preview", "cl",
     {"location": "eastus", "properties": {"authConfig": {"passwordAuth": "maybe"}}},
     "properties.authConfig.passwordAuth", "PasswordAuth"),
    ("Microsoft.DBforPostgreSQL/serverGroupsv2", "2022-11-08", "cl",
     {"location": "eastus", "properties": {"maintenanceWindow": {"dayOfWeek": 7}}},
     "properties.maintenanceWindow.dayOfWeek", "maximum is 6"),
    # private preview: property names in any case, the lowercase `dataencryption` included
    ("Microsoft.DBforPostgreSQL/serverGroupsv2", "2020-10-05-privatepreview", "cl",
     {"location": "eastus",
      "properties": {"createMode": "PointInTimeRestore", "dataencryption": {"primaryKeyUri": 42}}},
     "properties.dataencryption.primaryKeyUri", "to type 'string'"),
    ("Microsoft.DBforPostgreSQL/serverGroupsv2", "2020-10-05-privatepreview", "cl",
     {"location": "eastus", "properties": {"CREATEMODE": "Clone"}}, "properties.CREATEMODE",
     "CreateMode"),
    ("Microsoft.DBforPostgreSQL/serverGroupsv2", "2020-10-05-privatepreview", "cl",
     {"location": "eastus", "properties": {"serverRoleGroups": [{"role": "Boss"}]}},
     "properties.serverRoleGroups[0].role", "ServerRole"),
    ("Microsoft.DBforPostgreSQL/serverGroupsv2", "2020-10-05-privatepreview", "cl",
     {"location": "eastus", "properties": {"serverRoleGroups": []}}, "properties.serverRoleGroups",
     "at least 1"),
    ("Microsoft.DBforPostgreSQL/servers", "2017-12-01", "pg",
     {"location": "eastus", "properties": {"createMode": "Default", "administratorLogin": "a"}},
     "properties", "Required property 'administratorLoginPassword'"),
    ("Microsoft.DBforPostgreSQL/servers", "2017-12-01", "pg",
     {"location": "eastus", "properties": {"createMode": "PointInTimeRestore", "sourceServerId": "x"}},
     "properties", "Required property 'restorePointInTime'"),
    ("Microsoft.DBforPostgreSQL/servers", "2017-12-01", "pg",
     {"location": "eastus", "properties": {"createMode": "Replica"}}, "properties",
     "Required property 'sourceServerId'"),
    ("Microsoft.DBforPostgreSQL/servers", "2017-12-01", "pg",
     {"location": "eastus", "sku": {"name": "GP_Gen5_2", "tier": "Premium"},
      "properties": {"createMode": "Default", "administratorLogin": "a",
                     "administratorLoginPassword": "b"}}, "sku.tier", "SkuTier"),
    ("Microsoft.DBforPostgreSQL/servers", "2017-12-01", "pg",
     {"location": "eastus", "properties": {"createMode": "Default", "administratorLogin": "a",
                                           "administratorLoginPassword": "b",
                                           "sslEnforcement": "Sometimes"}},
     "properties.sslEnforcement", "SslEnforcementEnum"),
]


@pytest.mark.parametrize("ptype,av,prefix,body,target,words", BAD,
                         ids=[f"{b[0].split('/')[-1]}-{b[1]}-{b[4]}" for b in BAD])
def test_bad_body_gets_invalid_request_content(daemon, rg, ptype, av, prefix, body, target, words):
    name = new_name(prefix)
    r = daemon.put(res_url(rg, ptype, name, av), json=body)
    err = assert_arm_error(r, 400, "InvalidRequestContent")
    assert err.get("target") == target[:63], err
    assert words in err["message"], err
    assert f"'{target}'" in err["message"], err
    assert daemon.get(res_url(rg, ptype, name, av)).status_code == 404  # nothing was written


def test_patch_bodies_are_checked_without_required(daemon, rg):
    name = new_name("kv")
    url = res_url(rg, "Microsoft.KeyVault/vaults", name, "2022-07-01")
    assert daemon.put(url, json=vault_body()).status_code in (200, 201)
    # no tenantId, no sku: fine in a PATCH
    r = daemon.patch(url, json={"tags": {"a": "b"}, "properties": {"enabledForDeployment": True}})
    assert r.status_code == 200, r.text
    err = assert_arm_error(daemon.patch(url, json={"properties": {"softDeleteRetentionInDays": "x"}}),
                           400, "InvalidRequestContent")
    assert err["target"] == "properties.softDeleteRetentionInDays", err
    err = assert_arm_error(daemon.patch(url, json={"tags": {"a": ["b"]}}), 400,
                           "InvalidRequestContent")
    assert err["target"] == "tags.a", err
    mi = new_name("mi")
    murl = res_url(rg, "Microsoft.ManagedIdentity/userAssignedIdentities", mi, "2023-01-31")
    assert daemon.put(murl, json={"location": "eastus"}).status_code in (200, 201)
    assert daemon.patch(murl, json={"tags": {"x": "y"}}).status_code == 200
    assert_arm_error(daemon.patch(murl, json={"tags": "x"}), 400, "InvalidRequestContent")


def test_real_client_shapes_pass(daemon, rg):
    """Shapes clients send that a strict reading of the spec would refuse: nulls echoed from a GET,
    enum values in another case, the lowercase private-preview property."""
    name = new_name("kv")
    url = res_url(rg, "Microsoft.KeyVault/vaults", name, "2022-07-01")
    body = vault_body(sku={"family": "a", "name": "Standard"}, networkAcls=None, vaultUri=None,
                      enableRbacAuthorization=None, createMode="Default",
                      accessPolicies=[{"tenantId": TENANT, "objectId": "00000000-0000-4000-8000-00000000a0a0",
                                       "applicationId": None,
                                       "permissions": {"keys": ["Get", "WrapKey", "UnwrapKey"],
                                                       "secrets": []}}])
    body["tags"] = {}
    r = daemon.put(url, json=body)
    assert r.status_code in (200, 201), r.text
    got = daemon.get(url).json()
    # an SDK round trip: PUT back what GET returned, read-only members and all
    r = daemon.put(url, json={k: got[k] for k in ("location", "tags", "properties")})
    assert r.status_code == 200, r.text


def test_other_types_still_refuse_bad_bodies(daemon, rg):
    """Types with their own handlers keep their own checks (a 400 either way)."""
    r = daemon.put(f"/subscriptions/{SUB}/resourcegroups/{new_name()}?api-version=2021-04-01",
                   json={"location": 5})
    assert_arm_error(r, 400)


# --- finding the schemas ----------------------------------------------------------------------

BAD_VAULT = vault_body(sku={"family": "A", "name": "gold"})


def test_found_from_another_directory(start_daemon, monkeypatch, tmp_path):
    """Started elsewhere with the default --schemas ./schemas, the daemon looks next to its binary."""
    monkeypatch.setenv("PGCMKD", pgcmkd_path())
    monkeypatch.setattr(conftest, "ROOT", str(tmp_path))  # the daemon's working directory
    d = start_daemon("--log-level", "info")
    rgn = new_name("schemas")
    assert d.put_rg(rgn).status_code in (200, 201)
    r = d.put(res_url(rgn, "Microsoft.KeyVault/vaults", new_name("kv"), "2022-07-01"), json=BAD_VAULT)
    assert_arm_error(r, 400, "InvalidRequestContent")
    assert "request-body schemas loaded" in d.stderr_text()


def test_missing_directory_is_a_warning(start_daemon, tmp_path):
    d = start_daemon("--schemas", str(tmp_path / "nowhere"))
    assert "not found" in d.stderr_text()
    rgn = new_name("schemas")
    assert d.put_rg(rgn).status_code in (200, 201)
    # no schema: the provider's own checks answer (here it accepts or refuses; never a schema error)
    r = d.put(res_url(rgn, "Microsoft.KeyVault/vaults", new_name("kv"), "2022-07-01"), json=BAD_VAULT)
    if r.status_code >= 400:
        assert "could not be deserialized" not in r.json()["error"]["message"], r.text


def test_broken_schema_stops_the_start(tmp_path):
    bad = tmp_path / "bad-schemas"
    bad.mkdir()
    (bad / "x.json").write_text(json.dumps({"x-pgcmk-type": "Microsoft.X/y",
                                            "x-pgcmk-versions": {"*": {"put": "#/$defs/Nope"}}}))
    data = tmp_path / "data"
    out = subprocess.run([pgcmkd_path(), "--data-dir", str(data), "--port", "0", "--port-file",
                          str(data / "port"), "--schemas", str(bad)], capture_output=True,
                         text=True, timeout=30, env=conftest.clean_env(), cwd=ROOT)
    assert out.returncode != 0
    assert "does not load" in out.stderr and "x.json" in out.stderr, out.stderr
    assert not (data / "port").exists()
