"""Resource Health (Microsoft.ResourceHealth/availabilityStatuses) and the Activity Log
(Microsoft.Insights/eventtypes/management/values) against a real daemon.

Two parts:
* the routes (pgcmk_monitor_init): existence checks, the Available default, api-versions,
  $filter errors; skipped as a whole while the daemon does not serve them yet;
* recording of ARM writes (pgcmk_monitor_record_request in the request pipeline): skipped until a
  probe write shows up in the Activity Log, so these start running once the pipeline is wired.
"""
import datetime
import json
import uuid

import pytest

from conftest import SUB, TENANT, assert_arm_error, new_name, parse_time
from pgtools import Vault, cluster_body, cluster_id, create_cluster, make_identity

HAV = "2022-10-01"
AAV = "2015-04-01"
MI_AV = "2023-01-31"
MI_TYPE = "Microsoft.ManagedIdentity/userAssignedIdentities"
RH = "/providers/Microsoft.ResourceHealth/availabilityStatuses"
AL = f"/subscriptions/{SUB}/providers/Microsoft.Insights/eventtypes/management/values"
AVAILABLE_SUMMARY = "There aren't any known Azure platform problems affecting this resource."


# --- helpers and fixtures --------------------------------------------------------------------

def mi_id(rg, name):
    return f"/subscriptions/{SUB}/resourceGroups/{rg}/providers/{MI_TYPE}/{name}"


def iso(dt):
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def clock_now(daemon):
    return parse_time(daemon.get("/emulator/clock").json()["now"])


def since(daemon, minutes=10):
    """A start-time filter a little before the daemon's clock."""
    start = clock_now(daemon) - datetime.timedelta(minutes=minutes)
    return f"eventTimestamp ge '{iso(start)}'"


def activity(daemon, flt, select=None, av=AAV):
    params = {"api-version": av, "$filter": flt}
    if select is not None:
        params["$select"] = select
    return daemon.get(AL, params=params)


def routes_served(daemon):
    r = daemon.get(f"/subscriptions/{SUB}{RH}", params={"api-version": HAV})
    return r.status_code == 200 and isinstance(r.json().get("value"), list)


def writes_recorded(daemon):
    """Probe: a resource-group PUT with a known correlation id; is it in the Activity Log?"""
    corr = str(uuid.uuid4())
    r = daemon.put_rg(new_name("probe"), headers={"x-ms-correlation-request-id": corr})
    assert r.status_code == 201, r.text
    r = activity(daemon, f"{since(daemon)} and correlationId eq '{corr}'")
    return r.status_code == 200 and len(r.json()["value"]) > 0


@pytest.fixture(scope="module")
def wired(daemon):
    if not routes_served(daemon):
        pytest.skip("the monitor routes are not wired yet (pgcmk_monitor_init)")
    return True


@pytest.fixture(scope="module")
def recording(daemon, wired):
    if not writes_recorded(daemon):
        pytest.skip("ARM writes are not recorded yet (pgcmk_monitor_record_request)")
    return True


@pytest.fixture(scope="module")
def rg(daemon, wired):
    name = new_name("mon")
    assert daemon.put_rg(name, location="westeurope").status_code == 201
    return name


@pytest.fixture(scope="module")
def ident(daemon, rg):
    name = new_name("id")
    r = daemon.put(mi_id(rg, name) + f"?api-version={MI_AV}", json={"location": "westeurope"})
    assert r.status_code in (200, 201), r.text
    return mi_id(rg, name)


# --- Resource Health: works without the request-pipeline wiring ------------------------------

def test_existing_resource_without_history_is_available(daemon, ident):
    r = daemon.get(ident + RH + "/current", params={"api-version": HAV})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["id"] == ident + RH + "/current"
    assert body["name"] == "current"
    assert body["type"] == "Microsoft.ResourceHealth/AvailabilityStatuses"
    assert body["location"] == "westeurope"
    props = body["properties"]
    assert props["availabilityState"] == "Available"
    assert props["title"] == "Available"
    assert props["summary"] == AVAILABLE_SUMMARY
    parse_time(props["occuredTime"])  # the spec's spelling
    parse_time(props["reportedTime"])
    assert "recommendedActions" not in props


def test_expand_recommended_actions(daemon, ident):
    r = daemon.get(ident + RH + "/current",
                   params={"api-version": HAV, "$expand": "recommendedactions"})
    assert r.status_code == 200, r.text
    actions = r.json()["properties"]["recommendedActions"]
    assert isinstance(actions, list) and actions
    assert all({"action", "actionUrl", "actionUrlText"} <= set(a) for a in actions)


def test_history_of_a_resource_without_history(daemon, ident, rg):
    # keywords in any case, as clients send them
    path = ident.replace("resourceGroups", "RESOURCEGROUPS") + RH.upper()
    r = daemon.get(path, params={"api-version": HAV})
    assert r.status_code == 200, r.text
    value = r.json()["value"]
    assert len(value) == 1
    assert value[0]["name"] == "current"
    assert value[0]["properties"]["availabilityState"] == "Available"
    assert "nextLink" not in r.json() or r.json()["nextLink"] is None


@pytest.mark.parametrize("suffix", [RH + "/current", RH])
def test_missing_resource_is_resource_not_found(daemon, rg, suffix):
    r = daemon.get(mi_id(rg, new_name("nope")) + suffix, params={"api-version": HAV})
    err = assert_arm_error(r, 404, "ResourceNotFound")
    assert "was not found" in err["message"]


@pytest.mark.parametrize("av", ["2015-01-01", "2017-07-01", "2018-07-01", "2020-05-01", HAV])
def test_health_api_versions(daemon, ident, av):
    r = daemon.get(ident + RH + "/current", params={"api-version": av})
    assert r.status_code == 200, r.text


def test_health_bad_api_version(daemon, ident):
    r = daemon.get(ident + RH + "/current", params={"api-version": "2023-01-01"})
    err = assert_arm_error(r, 400, "NoRegisteredProviderFound")
    assert "2022-10-01" in err["message"]
    r = daemon.get(ident + RH + "/current")
    assert_arm_error(r, 400, "MissingApiVersionParameter")


def test_group_and_subscription_lists(daemon, rg, ident):
    r = daemon.get(f"/subscriptions/{SUB}/resourceGroups/{rg}{RH}", params={"api-version": HAV})
    assert r.status_code == 200, r.text
    assert isinstance(r.json()["value"], list)  # only resources with a history are listed
    r = daemon.get(f"/subscriptions/{SUB}{RH}", params={"api-version": HAV})
    assert r.status_code == 200, r.text
    for item in r.json()["value"]:
        assert item["id"].endswith(RH + "/current")
        assert item["properties"]["availabilityState"] in (
            "Available", "Unavailable", "Degraded", "Unknown")
    r = daemon.get(f"/subscriptions/{SUB}/resourceGroups/{new_name('nope')}{RH}",
                   params={"api-version": HAV})
    assert_arm_error(r, 404, "ResourceGroupNotFound")


def test_health_through_the_sdk(daemon, ident):
    rh = pytest.importorskip("azure.mgmt.resourcehealth")
    from azure.identity import ClientSecretCredential
    cred = ClientSecretCredential("adfs", "00000000-0000-4000-8000-00000000c11e",
                                  "pgcmk-admin-secret", authority=daemon.base,
                                  connection_verify=daemon.ca)
    client = rh.MicrosoftResourceHealth(cred, SUB, base_url=daemon.base,
                                        credential_scopes=["https://management.azure.com/.default"],
                                        connection_verify=daemon.ca)
    status = client.availability_statuses.get_by_resource(ident.lstrip("/"),
                                                          expand="recommendedactions")
    assert status.properties.availability_state == "Available"
    assert status.properties.summary == AVAILABLE_SUMMARY


# --- Activity Log: queries (work without the wiring) ------------------------------------------

def test_activity_log_requires_a_filter(daemon, wired):
    r = daemon.get(AL, params={"api-version": AAV})
    err = assert_arm_error(r, 400, "BadRequest")
    assert "$filter" in err["message"] and "eventTimestamp ge" in err["message"]


@pytest.mark.parametrize("flt", [
    "resourceGroupName eq 'rg'",                                 # no start time
    "eventTimestamp le '2030-01-01T00:00:00Z'",                  # no start time either
    "eventTimestamp ge 'yesterday'",                             # not a time
    "eventTimestamp ge '2030-01-01T00:00:00Z' or status eq 'Failed'",
    "eventTimestamp ge '2030-01-01T00:00:00Z' and colour eq 'red'",
    "eventTimestamp ge '2030-01-01T00:00:00Z' and resourceGroupName eq 'unterminated",
    "eventTimestamp ge '2030-01-02T00:00:00Z' and eventTimestamp le '2030-01-01T00:00:00Z'",
])
def test_activity_log_bad_filters(daemon, wired, flt):
    err = assert_arm_error(activity(daemon, flt), 400, "BadRequest")
    assert err.get("target") in (None, "$filter")
    assert "eventTimestamp ge" in err["message"]


def test_activity_log_good_filter_shapes(daemon, wired):
    start = clock_now(daemon) - datetime.timedelta(hours=1)
    # the az CLI sends bare times without a zone
    flt = (f"eventTimestamp ge {start.strftime('%Y-%m-%dT%H:%M:%S.%f')} and "
           f"eventTimestamp le {(start + datetime.timedelta(hours=2)).strftime('%Y-%m-%dT%H:%M:%S.%f')}"
           " and resourceProvider eq 'Microsoft.ManagedIdentity'")
    r = activity(daemon, flt)
    assert r.status_code == 200, r.text
    assert isinstance(r.json()["value"], list)
    r = activity(daemon, f"EVENTTIMESTAMP GE '{iso(start)}' AND RESOURCEGROUPNAME EQ 'x'",
                 select="eventName , operationName,status")
    assert r.status_code == 200, r.text
    assert r.json()["value"] == []


def test_activity_log_bad_select_and_versions(daemon, wired):
    assert_arm_error(activity(daemon, since(daemon), select="nope"), 400, "BadRequest")
    assert activity(daemon, since(daemon), av="2017-03-01-preview").status_code == 200
    assert_arm_error(activity(daemon, since(daemon), av="2022-10-01"), 400,
                     "NoRegisteredProviderFound")
    r = daemon.get(AL, params={"$filter": since(daemon)})
    assert_arm_error(r, 400, "MissingApiVersionParameter")


# --- Activity Log: recording of ARM writes (runs once the pipeline is wired) -------------------

def test_write_recorded_as_begin_and_end(daemon, recording, rg):
    corr = str(uuid.uuid4())
    name = new_name("id")
    rid = mi_id(rg, name)
    r = daemon.put(rid + f"?api-version={MI_AV}", json={"location": "westeurope"},
                   headers={"x-ms-correlation-request-id": corr,
                            "x-ms-client-request-id": "my-client-req"})
    assert r.status_code == 201, r.text
    r = activity(daemon, f"{since(daemon)} and correlationId eq '{corr}'")
    assert r.status_code == 200, r.text
    events = r.json()["value"]
    assert [e["eventName"]["value"] for e in events] == ["EndRequest", "BeginRequest"]
    end, begin = events
    assert end["status"]["value"] == "Succeeded"
    assert begin["status"]["value"] == "Started"
    assert end["subStatus"] == {"value": "Created",
                                "localizedValue": "Created (HTTP Status Code: 201)"}
    assert end["operationName"]["value"] == f"{MI_TYPE}/write"
    assert end["resourceId"].lower() == rid.lower()
    assert end["resourceGroupName"].lower() == rg.lower()
    assert end["resourceProviderName"]["value"] == "Microsoft.ManagedIdentity"
    assert end["resourceType"]["value"] == MI_TYPE
    assert end["category"]["value"] == "Administrative"
    assert end["level"] == "Informational"
    assert end["caller"] == "00000000-0000-4000-8000-00000000a0a0"
    assert end["correlationId"] == corr
    assert end["operationId"] == begin["operationId"]
    assert end["eventDataId"] != begin["eventDataId"]
    assert end["httpRequest"]["method"] == "PUT"
    assert end["httpRequest"]["clientRequestId"] == "my-client-req"
    assert end["subscriptionId"] == SUB
    assert end["id"].startswith(end["resourceId"] + "/events/" + end["eventDataId"] + "/ticks/")
    assert end["properties"]["statusCode"] == "Created"
    parse_time(end["eventTimestamp"])
    parse_time(end["submissionTimestamp"])


def test_failed_write_and_delete_recorded(daemon, recording, rg):
    corr = str(uuid.uuid4())
    r = daemon.put(mi_id(rg, "x") + f"?api-version={MI_AV}", json={"location": "westeurope"},
                   headers={"x-ms-correlation-request-id": corr})
    assert r.status_code == 400, r.text  # a name too short
    (end,) = [e for e in activity(daemon, f"{since(daemon)} and correlationId eq '{corr}' "
                                          "and status eq 'Failed'").json()["value"]]
    assert end["level"] == "Error"
    assert end["subStatus"]["value"] == "BadRequest"

    name = new_name("id")
    rid = mi_id(rg, name)
    assert daemon.put(rid + f"?api-version={MI_AV}", json={"location": "westeurope"}).ok
    corr = str(uuid.uuid4())
    r = daemon.delete(rid + f"?api-version={MI_AV}", headers={"x-ms-correlation-request-id": corr})
    assert r.status_code == 200, r.text
    events = activity(daemon, f"{since(daemon)} and resourceId eq '{rid}'").json()["value"]
    ops = [(e["operationName"]["value"], e["status"]["value"]) for e in events]
    assert ops[0] == (f"{MI_TYPE}/delete", "Succeeded")
    assert (f"{MI_TYPE}/write", "Succeeded") in ops


def failed_end(daemon, corr):
    """The EndRequest entry (status Failed) of the write sent with correlation id corr."""
    r = activity(daemon, f"{since(daemon)} and correlationId eq '{corr}' and status eq 'Failed'")
    assert r.status_code == 200, r.text
    (end,) = r.json()["value"]
    assert end["eventName"]["value"] == "EndRequest"
    return end


@pytest.mark.parametrize("case", ["vault-bad-sku", "cluster-missing-group"])
def test_refused_write_records_code_and_message(daemon, recording, rg, case):
    """A refused ARM write shows why, as Azure's Activity Log does: properties.statusCode, and
    properties.statusMessage holding the error body as a string; the description names both."""
    corr = str(uuid.uuid4())
    hdrs = {"x-ms-correlation-request-id": corr}
    if case == "vault-bad-sku":
        rid = (f"/subscriptions/{SUB}/resourceGroups/{rg}/providers/Microsoft.KeyVault/vaults/"
               f"v{new_name('')[1:13]}")
        body = {"location": "eastus", "properties": {
            "tenantId": TENANT, "sku": {"family": "A", "name": "gold"}, "accessPolicies": []}}
        r = daemon.put(rid + "?api-version=2022-07-01", json=body, headers=hdrs)
        status, sub_status = 400, "BadRequest"
    else:
        rid = (f"/subscriptions/{SUB}/resourceGroups/{new_name('gone')}/providers/"
               f"Microsoft.DBforPostgreSQL/serverGroupsv2/{new_name('cl')}")
        body = {"location": "eastus", "properties": {
            "administratorLoginPassword": "P@ssw0rd-1234", "postgresqlVersion": "15",
            "coordinatorVCores": 4, "coordinatorStorageQuotaInMb": 131072, "nodeCount": 0}}
        r = daemon.put(rid + "?api-version=2023-03-02-preview", json=body, headers=hdrs)
        status, sub_status = 404, "NotFound"
    assert_arm_error(r, status)
    err = r.json()["error"]
    if case == "cluster-missing-group":
        assert err["code"] == "ResourceGroupNotFound", err

    end = failed_end(daemon, corr)
    assert end["status"]["value"] == "Failed"
    assert end["level"] == "Error"
    assert end["subStatus"]["value"] == sub_status
    assert end["resourceId"].lower() == rid.lower()
    props = end["properties"]
    assert props["statusCode"] == sub_status
    assert isinstance(props["statusMessage"], str)  # EventData.properties: strings only
    assert json.loads(props["statusMessage"]) == {
        "error": {"code": err["code"], "message": err["message"]}}
    assert end["description"] == f"{err['code']}: {err['message']}"

    # $select keeps them; the BeginRequest of the same write carries no error
    r = activity(daemon, f"{since(daemon)} and correlationId eq '{corr}'",
                 select="status,description,properties")
    assert r.status_code == 200, r.text
    begin = [e for e in r.json()["value"] if e["status"]["value"] == "Started"]
    assert len(begin) == 1 and begin[0]["description"] == ""
    assert "statusMessage" not in begin[0]["properties"]


def test_failed_cmk_create_records_code_and_message(daemon, recording):
    """A CMK cluster create that is accepted (201) but whose operation ends Failed (the identity
    has no access policy on the vault) leaves a Failed entry carrying the operation's error:
    properties.statusMessage holds the error body, the description names the code and message."""
    rg = new_name("rg")
    assert daemon.put_rg(rg).status_code == 201
    mi, oid = make_identity(daemon, rg)
    v = Vault(daemon, rg, policies=[])
    kid = v.create_key()
    name = new_name("cl")
    st = create_cluster(daemon, rg, name, cluster_body(mi, kid), expect="Failed")
    err = st["error"]
    assert err["code"] == "AzureKeyVaultMissingPermissions", st
    assert oid in err["message"]

    rid = cluster_id(rg, name)
    r = activity(daemon, f"{since(daemon)} and resourceId eq '{rid}' and status eq 'Failed'")
    assert r.status_code == 200, r.text
    failed = r.json()["value"]
    assert len(failed) == 1, failed
    (end,) = failed
    assert end["operationName"]["value"] == "Microsoft.DBforPostgreSQL/serverGroupsv2/write"
    assert end["level"] == "Error"
    assert end["resourceId"].lower() == rid.lower()
    assert isinstance(end["properties"]["statusMessage"], str)
    assert json.loads(end["properties"]["statusMessage"]) == {
        "error": {"code": err["code"], "message": err["message"]}}
    assert end["description"] == f"{err['code']}: {err['message']}"


def test_reads_are_not_recorded(daemon, recording, ident):
    corr = str(uuid.uuid4())
    assert daemon.get(ident + f"?api-version={MI_AV}",
                      headers={"x-ms-correlation-request-id": corr}).status_code == 200
    r = activity(daemon, f"{since(daemon)} and correlationId eq '{corr}'")
    assert r.json()["value"] == []


def test_resource_group_filter_select_and_paging(daemon, recording):
    group = new_name("mon")
    assert daemon.put_rg(group).status_code == 201
    for _ in range(3):
        assert daemon.put_rg(group, tags={"n": str(uuid.uuid4())}).status_code == 200
    flt = f"{since(daemon)} and resourceGroupName eq '{group}'"
    r = activity(daemon, flt, select="operationName,status,eventTimestamp")
    assert r.status_code == 200, r.text
    value = r.json()["value"]
    assert len(value) == 8
    assert all(set(e) == {"operationName", "status", "eventTimestamp"} for e in value)
    assert {e["operationName"]["value"] for e in value} == {
        "Microsoft.Resources/subscriptions/resourceGroups/write"}
    stamps = [parse_time(e["eventTimestamp"]) for e in value]
    assert stamps == sorted(stamps, reverse=True)  # newest first

    # paging by nextLink: a daemon with a small page size
    # (the module daemon's page size is the default, so follow whatever nextLink there is)
    seen, url, params = 0, AL, {"api-version": AAV, "$filter": flt}
    for _ in range(20):
        r = daemon.get(url, params=params)
        assert r.status_code == 200, r.text
        seen += len(r.json()["value"])
        url, params = r.json().get("nextLink"), None
        if not url:
            break
    assert seen == 8


def test_paging_with_a_small_page_size(start_daemon):
    d = start_daemon("--page-size", "3")
    if not routes_served(d) or not writes_recorded(d):
        pytest.skip("the monitor is not wired yet")
    group = new_name("pg")
    assert d.put_rg(group).status_code == 201
    for _ in range(3):
        assert d.put_rg(group, tags={"n": str(uuid.uuid4())}).status_code == 200
    flt = f"{since(d)} and resourceGroupName eq '{group}'"
    seen, pages, url, params = [], 0, AL, {"api-version": AAV, "$filter": flt}
    while url and pages < 10:
        r = d.get(url, params=params)
        assert r.status_code == 200, r.text
        seen += r.json()["value"]
        pages += 1
        url, params = r.json().get("nextLink"), None
        if url:
            assert url.startswith(d.base + "/subscriptions/")
            assert "api-version=" in url and ("%24filter=" in url or "$filter=" in url)
    assert len(seen) == 8 and pages == 3
    assert len({e["eventDataId"] for e in seen}) == 8


def test_activity_log_through_the_sdk(daemon, recording, rg):
    mon = pytest.importorskip("azure.mgmt.monitor")
    from azure.identity import ClientSecretCredential
    cred = ClientSecretCredential("adfs", "00000000-0000-4000-8000-00000000c11e",
                                  "pgcmk-admin-secret", authority=daemon.base,
                                  connection_verify=daemon.ca)
    client = mon.MonitorManagementClient(cred, SUB, base_url=daemon.base,
                                         credential_scopes=["https://management.azure.com/.default"],
                                         connection_verify=daemon.ca)
    name = new_name("id")
    assert daemon.put(mi_id(rg, name) + f"?api-version={MI_AV}",
                      json={"location": "westeurope"}).status_code == 201
    events = list(client.activity_logs.list(
        filter=f"{since(daemon)} and resourceId eq '{mi_id(rg, name)}'",
        select="eventName,operationName,status,resourceId,eventTimestamp"))
    assert [e.event_name.value for e in events] == ["EndRequest", "BeginRequest"]
    assert events[0].operation_name.value == f"{MI_TYPE}/write"
    assert events[0].status.value == "Succeeded"
