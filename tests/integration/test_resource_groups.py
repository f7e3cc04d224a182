"""Resource groups: PUT 201/200, GET, HEAD, PATCH, list with nextLink, DELETE as an LRO."""
import random
import re
import threading

import pytest

from conftest import AV, SUB, assert_arm_error, new_name, poll_until

RG_TYPE = "Microsoft.Resources/resourceGroups"


def rg_url(name, av=AV, segment="resourcegroups"):
    q = f"?api-version={av}" if av else ""
    return f"/subscriptions/{SUB}/{segment}/{name}{q}"


@pytest.mark.parametrize("av", ["2021-04-01", "2022-09-01"])
def test_put_creates_then_updates(daemon, av):
    name = new_name()
    r = daemon.put(rg_url(name, av), json={"location": "eastus", "tags": {"team": "db"}})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body == {
        "id": f"/subscriptions/{SUB}/resourceGroups/{name}",
        "name": name,
        "type": RG_TYPE,
        "location": "eastus",
        "tags": {"team": "db"},
        "properties": {"provisioningState": "Succeeded"},
    }
    r2 = daemon.put(rg_url(name, av), json={"location": "eastus", "tags": {"team": "ops"}})
    assert r2.status_code == 200, r2.text
    assert r2.json()["tags"] == {"team": "ops"}
    assert r2.json()["id"] == body["id"]
    g = daemon.get(rg_url(name, av))
    assert g.status_code == 200
    assert g.json() == r2.json()


def test_put_without_tags(daemon):
    name = new_name()
    r = daemon.put(rg_url(name), json={"location": "westeurope"})
    assert r.status_code == 201
    b = r.json()
    assert b["location"] == "westeurope" and b["name"] == name
    assert b.get("tags", {}) == {}


def test_names_and_segments_are_case_insensitive(daemon):
    name = "CaseRG-" + new_name()
    assert daemon.put(rg_url(name, segment="resourceGroups"), json={"location": "eastus"}).status_code == 201
    for seg in ("resourcegroups", "resourceGroups", "RESOURCEGROUPS"):
        for n in (name, name.lower(), name.upper()):
            r = daemon.get(rg_url(n, segment=seg))
            assert r.status_code == 200, (seg, n, r.text)
            # The id and name keep the casing of the create request.
            assert r.json()["name"] == name
            assert r.json()["id"] == f"/subscriptions/{SUB}/resourceGroups/{name}"
    # The subscription id is case-insensitive too.
    r = daemon.get(f"/subscriptions/{SUB.upper()}/resourcegroups/{name}?api-version={AV}")
    assert r.status_code == 200, r.text
    # Another casing updates the same group (200, not a second group).
    r = daemon.put(rg_url(name.upper()), json={"location": "EastUS", "tags": {"a": "b"}})
    assert r.status_code == 200, r.text
    assert r.json()["name"] == name
    names = [g["name"].lower() for g in list_all(daemon)]
    assert names.count(name.lower()) == 1


def test_get_missing(daemon):
    name = new_name("missing")
    err = assert_arm_error(daemon.get(rg_url(name)), 404, "ResourceGroupNotFound")
    assert err["message"] == f"Resource group '{name}' could not be found."


def test_head(daemon):
    name = new_name()
    r = daemon.head(rg_url(name))
    assert r.status_code == 404 and r.content == b""
    daemon.put(rg_url(name), json={"location": "eastus"})
    r = daemon.head(rg_url(name))
    assert r.status_code == 204 and r.content == b""
    assert r.headers.get("x-ms-request-id")


def test_patch_tags(daemon):
    name = new_name()
    daemon.put(rg_url(name), json={"location": "eastus", "tags": {"a": "1"}})
    r = daemon.patch(rg_url(name), json={"tags": {"b": "2", "c": "3"}})
    assert r.status_code == 200, r.text
    assert r.json()["tags"] == {"b": "2", "c": "3"}
    assert r.json()["location"] == "eastus"
    assert daemon.get(rg_url(name)).json()["tags"] == {"b": "2", "c": "3"}
    # PATCH without tags keeps them; PATCH with {} clears them.
    r = daemon.patch(rg_url(name), json={})
    assert r.status_code == 200 and r.json()["tags"] == {"b": "2", "c": "3"}
    r = daemon.patch(rg_url(name), json={"tags": {}})
    assert r.status_code == 200 and r.json().get("tags", {}) == {}


def test_patch_missing(daemon):
    assert_arm_error(daemon.patch(rg_url(new_name()), json={"tags": {}}), 404, "ResourceGroupNotFound")


def test_put_without_location(daemon):
    for body in ({}, {"tags": {}}, {"location": ""}, {"location": 5}):
        err = assert_arm_error(daemon.put(rg_url(new_name()), json=body), 400, "LocationRequired")
        assert "location" in err["message"].lower()


def test_put_other_location_conflicts(daemon):
    name = new_name()
    assert daemon.put(rg_url(name), json={"location": "eastus"}).status_code == 201
    assert_arm_error(daemon.put(rg_url(name), json={"location": "westus"}), 409,
                     "InvalidResourceGroupLocation")
    assert daemon.get(rg_url(name)).json()["location"] == "eastus"


@pytest.mark.parametrize("bad", ["endsWithDot.", "a" * 91, "sp%20ace", "semi%3Bcolon", "star*",
                                 "%C3%A9t%C3%A9%2A"])
def test_invalid_names(daemon, bad):
    r = daemon.put(rg_url(bad), json={"location": "eastus"})
    assert_arm_error(r, 400, "InvalidResourceGroupName")
    assert_arm_error(daemon.get(rg_url(bad)), 400, "InvalidResourceGroupName")


@pytest.mark.parametrize("good", ["a", "a" * 90, "with.dots_and-(parens)", "%C3%A9t%C3%A9"])
def test_valid_names(daemon, good):
    r = daemon.put(rg_url(good), json={"location": "eastus"})
    assert r.status_code in (200, 201), r.text
    assert daemon.get(rg_url(good)).status_code == 200


def test_preconditions(daemon):
    name = new_name()
    # If-Match: * on a missing group: 412, nothing created.
    r = daemon.put(rg_url(name), json={"location": "eastus"}, headers={"If-Match": "*"})
    assert_arm_error(r, 412, "PreconditionFailed")
    assert daemon.get(rg_url(name)).status_code == 404
    # If-None-Match: * creates a missing one, then refuses.
    r = daemon.put(rg_url(name), json={"location": "eastus"}, headers={"If-None-Match": "*"})
    assert r.status_code == 201, r.text
    r = daemon.put(rg_url(name), json={"location": "eastus", "tags": {"x": "y"}},
                   headers={"If-None-Match": "*"})
    assert_arm_error(r, 412, "PreconditionFailed")
    assert daemon.get(rg_url(name)).json().get("tags", {}) == {}
    # If-Match: * on an existing one updates.
    r = daemon.put(rg_url(name), json={"location": "eastus", "tags": {"x": "y"}},
                   headers={"If-Match": "*"})
    assert r.status_code == 200 and r.json()["tags"] == {"x": "y"}


def list_all(daemon, url=None):
    url = url or f"/subscriptions/{SUB}/resourcegroups?api-version={AV}"
    out, pages = [], 0
    while url:
        r = daemon.get(url)
        assert r.status_code == 200, r.text
        body = r.json()
        out.extend(body["value"])
        url = body.get("nextLink")
        pages += 1
        assert pages < 1000
    return out


def test_list_contains_created_groups(daemon):
    names = [new_name("lst") for _ in range(3)]
    for n in names:
        daemon.put(rg_url(n), json={"location": "eastus"})
    groups = {g["name"]: g for g in list_all(daemon)}
    for n in names:
        assert groups[n]["type"] == RG_TYPE
        assert groups[n]["id"] == f"/subscriptions/{SUB}/resourceGroups/{n}"
        assert groups[n]["properties"]["provisioningState"] == "Succeeded"


def test_list_pages_with_next_link(start_daemon):
    d = start_daemon("--page-size", "2")
    names = sorted(f"page-{i}" for i in range(5))
    for n in names:
        assert d.put(rg_url(n), json={"location": "eastus"}).status_code == 201
    url = f"/subscriptions/{SUB}/resourcegroups?api-version={AV}"
    seen, pages = [], []
    while url:
        r = d.get(url)
        assert r.status_code == 200, r.text
        body = r.json()
        pages.append(len(body["value"]))
        seen += [g["name"] for g in body["value"]]
        url = body.get("nextLink")
        if url:
            assert url.startswith(f"https://localhost:{d.port}/subscriptions/{SUB}/resourcegroups?"), url
            assert f"api-version={AV}" in url
        assert len(pages) <= 5
    assert pages == [2, 2, 1]
    assert sorted(seen) == names
    # $top makes pages smaller still.
    r = d.get(f"/subscriptions/{SUB}/resourcegroups?api-version={AV}&$top=1")
    assert len(r.json()["value"]) == 1 and "nextLink" in r.json()
    assert_arm_error(d.get(f"/subscriptions/{SUB}/resourcegroups?api-version={AV}&$skiptoken=zz"), 400)
    assert_arm_error(d.get(f"/subscriptions/{SUB}/resourcegroups?api-version={AV}&$top=0"), 400)


def test_delete_is_a_long_running_operation(start_daemon):
    d = start_daemon("--lro-min-polls", "1")
    name = new_name("del")
    assert d.put(rg_url(name), json={"location": "eastus"}).status_code == 201
    r = d.delete(rg_url(name))
    assert r.status_code == 202, r.text
    loc = r.headers["Location"]
    assert re.fullmatch(rf"https://localhost:{d.port}/subscriptions/{SUB}/operationresults/"
                        rf"[A-Za-z0-9-]+\?api-version={AV}", loc), loc
    assert r.headers["Retry-After"] == "1"
    first = d.get(loc)
    assert first.status_code == 202, first.text
    assert first.headers.get("Retry-After") == "1"
    assert first.headers.get("Location", loc).startswith("https://")
    final = poll_until(lambda: (lambda p: p if p.status_code != 202 else None)(d.get(loc)),
                       what="the delete to finish")
    assert final.status_code == 200, final.text
    assert_arm_error(d.get(rg_url(name)), 404, "ResourceGroupNotFound")
    assert d.head(rg_url(name)).status_code == 404
    assert name not in [g["name"] for g in list_all(d)]
    # Polling again gives the same final answer.
    assert d.get(loc).status_code == 200
    # The name can be used again.
    assert d.put(rg_url(name), json={"location": "westus"}).status_code == 201


def test_delete_missing(daemon):
    name = new_name()
    err = assert_arm_error(daemon.delete(rg_url(name)), 404, "ResourceGroupNotFound")
    assert err["message"] == f"Resource group '{name}' could not be found."


def test_unknown_operation(daemon):
    assert_arm_error(daemon.get(f"/subscriptions/{SUB}/operationresults/nope?api-version={AV}"), 404)


def test_delete_on_shared_daemon(daemon):
    """Without --lro-min-polls the delete may finish before the first poll: 202 or 200."""
    name = new_name()
    daemon.put(rg_url(name), json={"location": "eastus"})
    r = daemon.delete(rg_url(name))
    assert r.status_code == 202
    final = poll_until(lambda: (lambda p: p if p.status_code != 202 else None)(daemon.get(r.headers["Location"])))
    assert final.status_code == 200
    assert daemon.get(rg_url(name)).status_code == 404


def test_api_version_missing(daemon):
    err = assert_arm_error(daemon.get(rg_url(new_name(), av=None)), 400, "MissingApiVersionParameter")
    assert err["message"] == "The api-version query parameter (?api-version=) is required for all requests."
    assert_arm_error(daemon.get(f"/subscriptions/{SUB}/resourcegroups/x?api-version="), 400,
                     "MissingApiVersionParameter")
    assert_arm_error(daemon.put(rg_url(new_name(), av=None), json={"location": "eastus"}), 400,
                     "MissingApiVersionParameter")


def test_api_version_unsupported(daemon):
    r = daemon.get(rg_url(new_name(), av="2023-02-02"))
    err = assert_arm_error(r, 400, "InvalidApiVersionParameter")
    assert r.headers["x-ms-failure-cause"] == "gateway"
    assert err["message"].startswith("The api-version '2023-02-02' is invalid. The supported versions are '")
    listed = err["message"].split("'")[3].split(",")
    assert "2021-04-01" in listed and "2022-09-01" in listed
    assert listed == sorted(listed, reverse=True)
    # Nothing was created by a refused PUT.
    name = new_name()
    assert_arm_error(daemon.put(rg_url(name, av="1999-01-01"), json={"location": "eastus"}), 400,
                     "InvalidApiVersionParameter")
    assert daemon.get(rg_url(name)).status_code == 404


def test_unknown_query_parameter(daemon):
    err = assert_arm_error(daemon.get(rg_url(new_name()) + "&foo=1"), 400, "InvalidQueryParameter")
    assert "foo" in err["message"]


def test_concurrent_puts_of_one_group(daemon):
    name = new_name("race")
    sessions = [daemon.session() for _ in range(8)]
    barrier = threading.Barrier(len(sessions))
    results = []

    def go(s):
        barrier.wait(10)
        r = s.put(daemon.url(rg_url(name)), json={"location": "eastus"}, timeout=10)
        results.append(r.status_code)

    threads = [threading.Thread(target=go, args=(s,)) for s in sessions]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert sorted(results) == [200] * 7 + [201], results


def test_concurrent_puts_and_deletes(daemon):
    """PUT and DELETE storms on a few names: only Azure's answers, never a 5xx."""
    names = [new_name("storm") for _ in range(3)]
    allowed = {200, 201, 202, 404, 409}
    seen, bad = set(), []

    def go(k):
        s = daemon.session()
        rnd = random.Random(k)
        for _ in range(40):
            n = rnd.choice(names)
            if rnd.random() < 0.5:
                r = s.put(daemon.url(rg_url(n)), json={"location": "eastus"}, timeout=10)
            else:
                r = s.delete(daemon.url(rg_url(n)), timeout=10)
            seen.add(r.status_code)
            if r.status_code not in allowed:
                bad.append((r.status_code, r.text[:200]))
            elif r.status_code == 409:
                assert r.json()["error"]["code"] in ("ResourceGroupBeingDeleted", "Conflict")

    threads = [threading.Thread(target=go, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not bad, bad[:5]
    assert {201, 202} <= seen, seen
    # Once the deletes have finished every group is either gone or Succeeded.
    def settled():
        states = []
        for n in names:
            r = daemon.get(rg_url(n))
            states.append(r.status_code == 404 or r.json()["properties"]["provisioningState"])
        return all(s is True or s == "Succeeded" for s in states)
    poll_until(settled, what="deletes to finish")


def test_many_group_deletes_do_not_starve_the_worker_pool(start_daemon):
    """A group's DELETE runs on the worker pool, like the operations of the resources in it. With
    2 workers, 6 groups each holding 2 servers (whose creates are jobs of the same pool) are
    deleted at once: the delete job must not wait for other jobs of the pool while it holds a
    worker, so every delete ends, and the groups and their servers are gone."""
    from pgtools import SRV_AV, server_body, server_id, wait_lro

    d = start_daemon("--workers", "2", http=False)
    groups = [new_name("wk") for _ in range(6)]
    creates = []
    for g in groups:
        assert d.put(rg_url(g), json={"location": "eastus"}).status_code == 201
        for s in ("a", "b"):
            name = f"{g}-{s}"
            r = d.put(f"{server_id(g, name)}?api-version={SRV_AV}", json=server_body())
            assert r.status_code == 201, r.text
            creates.append(r)
    # the group deletes queue behind the creates still running
    deletes = [d.delete(rg_url(g)) for g in groups]
    assert all(r.status_code == 202 for r in deletes), [r.text for r in deletes]
    for r in creates:
        wait_lro(d, r, timeout=60)
    for g, r in zip(groups, deletes):
        final = poll_until(lambda: (lambda p: p if p.status_code != 202 else None)(
            d.get(r.headers["Location"])), timeout=60, what=f"the delete of {g}")
        assert final.status_code == 200, final.text
        assert_arm_error(d.get(rg_url(g)), 404, "ResourceGroupNotFound")
        for s in ("a", "b"):
            assert d.get(f"{server_id(g, f'{g}-{s}')}?api-version={SRV_AV}").status_code == 404
