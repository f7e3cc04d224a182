"""Durability: acknowledged writes survive SIGKILL; SIGTERM stops cleanly with a sound store."""
import os
import signal
import sqlite3
import threading
import time
import urllib.parse

import requests

from conftest import AV, SUB, poll_until


def rg_url(name):
    return f"/subscriptions/{SUB}/resourcegroups/{name}?api-version={AV}"


def test_acknowledged_puts_survive_sigkill(start_daemon):
    d = start_daemon()
    total, threads_n, kill_after = 300, 4, 150
    acked, lock = set(), threading.Lock()
    enough = threading.Event()
    errors = []

    def worker(k):
        s = requests.Session()
        s.verify, s.trust_env = d.ca, False
        try:
            for i in range(k, total, threads_n):
                name = f"crash-{i:04d}"
                try:
                    r = s.put(d.base + rg_url(name), json={"location": "eastus", "tags": {"i": str(i)}},
                              timeout=10)
                except requests.RequestException as e:
                    if not enough.is_set():
                        errors.append((name, "exception before the kill", repr(e)))
                    return  # the daemon is gone
                if r.status_code in (200, 201):
                    with lock:
                        acked.add(name)
                        if len(acked) >= kill_after:
                            enough.set()
                else:
                    errors.append((name, r.status_code, r.text[:200]))
        finally:
            s.close()

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(threads_n)]
    for t in threads:
        t.start()
    assert enough.wait(30), (f"only {len(acked)} PUTs acknowledged in 30 s; errors: {errors[:3]};"
                             f" daemon exit code {d.proc.poll()}\n{d.stderr_text()[-3000:]}")
    d.proc.kill()  # SIGKILL in the middle of the burst
    d.proc.wait()
    for t in threads:
        t.join(30)
        assert not t.is_alive()
    with lock:
        acked_at_kill = set(acked)
    assert not errors, errors[:5]
    assert kill_after <= len(acked_at_kill), len(acked_at_kill)
    print(f"acknowledged before SIGKILL: {len(acked_at_kill)} of {total}")
    d.proc = None
    d.start()
    missing = [n for n in sorted(acked_at_kill) if d.get(rg_url(n)).status_code != 200]
    assert not missing, f"{len(missing)} acknowledged groups lost after SIGKILL: {missing[:10]}"
    # The list agrees, and the data is intact.
    listed, url = set(), f"/subscriptions/{SUB}/resourcegroups?api-version={AV}"
    while url:  # paged: 100 a page by default
        body = d.get(url).json()
        listed |= {g["name"] for g in body["value"]}
        url = body.get("nextLink")
    assert acked_at_kill <= listed
    assert d.get(rg_url("crash-0000")).json()["tags"] == {"i": "0"}
    assert d.healthy()


def test_sigterm_exits_cleanly_and_store_is_sound(start_daemon):
    d = start_daemon()
    names = [f"keep-{i}" for i in range(20)]
    for n in names:
        assert d.put(rg_url(n), json={"location": "eastus"}).status_code == 201
    s2 = d.session()  # an idle keep-alive connection must not hold up the stop
    assert s2.get(d.base + "/emulator/health").status_code == 200
    t0 = time.monotonic()
    rc = d.stop()
    assert rc == 0, d.stderr_text()
    assert time.monotonic() - t0 < 5, "SIGTERM took too long"
    db = os.path.join(d.data_dir, "pgcmk.sqlite")
    assert os.path.exists(db)
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        n = con.execute("SELECT count(*) FROM resource_groups WHERE name LIKE 'keep-%'").fetchone()[0]
        assert n == len(names)
    finally:
        con.close()
    d.start()
    for n in names:
        assert d.get(rg_url(n)).status_code == 200


def test_sigterm_during_requests(start_daemon):
    """SIGTERM while clients are busy: in-flight requests finish, the process exits 0."""
    d = start_daemon()
    stop = threading.Event()
    results = []

    def client(k):
        s = requests.Session()
        s.verify, s.trust_env = d.ca, False
        i = 0
        while not stop.is_set():
            try:
                r = s.put(d.base + rg_url(f"busy-{k}-{i}"), json={"location": "eastus"}, timeout=10)
                results.append(r.status_code)
            except requests.RequestException:
                break
            i += 1
        s.close()

    threads = [threading.Thread(target=client, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    poll_until(lambda: len(results) >= 30, what="30 PUTs")
    rc = d.stop()
    stop.set()
    for t in threads:
        t.join(15)
    assert rc == 0, d.stderr_text()
    assert all(c == 201 for c in results), set(results)
    d.start()
    assert d.healthy()


def test_delete_survives_restart(start_daemon):
    d = start_daemon("--lro-min-polls", "1")
    assert d.put(rg_url("gone-after-restart"), json={"location": "eastus"}).status_code == 201
    r = d.delete(rg_url("gone-after-restart"))
    assert r.status_code == 202
    d.restart(flags=[])
    # Whether the worker finished before the stop or the restart resumed it, the group is gone.
    assert d.get(rg_url("gone-after-restart")).status_code == 404
    loc = urllib.parse.urlsplit(r.headers["Location"])
    # A graceful stop drains the workers first, so the operation finished: 200.
    assert d.get(f"{loc.path}?{loc.query}").status_code == 200


def test_sigint_also_stops_cleanly(start_daemon):
    d = start_daemon()
    assert d.put(rg_url("after-sigint"), json={"location": "eastus"}).status_code == 201
    d.proc.send_signal(signal.SIGINT)
    assert d.proc.wait(10) == 0
    d.proc = None
    d.start()
    assert d.get(rg_url("after-sigint")).status_code == 200
