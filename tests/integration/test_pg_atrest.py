"""Real PostgreSQL mode with --pg-at-rest fs (issue 15, item 6): the data directory of a CMK
cluster's instance lives on gocryptfs keyed by its DEK. A row written over SQL is readable over SQL
and present in the plaintext view, but no file of the ciphertext directory holds it; revoking the
key stops the instance and unmounts the directory; granting it back mounts it again, starts the
instance, and the row is readable.

Skipped with the reason when this machine cannot run FUSE (no usable /dev/fuse, no gocryptfs or
fusermount3: `apt-get install gocryptfs fuse3`, as scripts/deps.sh test does) or pgcmkd is not root."""
import glob
import os
import shutil
import uuid

import pytest

from conftest import poll_until
from pgreal import (cmk_cluster, connect, needs_postgres, poll_connect, query, start_real,  # noqa: F401
                    wait_state, postmasters_under, _psycopg2)


def fuse_usable():
    try:
        os.close(os.open("/dev/fuse", os.O_RDWR))
    except OSError as e:
        return f"/dev/fuse is not usable ({e.strerror})"
    for prog in ("gocryptfs", "fusermount3"):
        if shutil.which(prog) is None:
            return f"{prog} is missing: apt-get install gocryptfs fuse3"
    if os.geteuid() != 0:
        return "gocryptfs -allow_other for the PostgreSQL user needs pgcmkd to run as root"
    return None


pytestmark = [needs_postgres,
              pytest.mark.skipif(fuse_usable() is not None, reason=str(fuse_usable()))]


def mount_points():
    with open("/proc/self/mountinfo") as f:
        return {line.split()[4] for line in f}


def files_containing(root, needle):
    """Files under root whose bytes contain needle."""
    hits = []
    for dirpath, _dirs, files in os.walk(root):
        for f in files:
            p = os.path.join(dirpath, f)
            try:
                with open(p, "rb") as fh:
                    if needle in fh.read():
                        hits.append(p)
            except OSError:
                pass
    return hits


def instance_dir(d):
    """The one instance directory of the daemon: DATA_DIR/pg/<slug> with cipher/ and mnt/."""
    dirs = [os.path.dirname(p) for p in glob.glob(os.path.join(d.data_dir, "pg", "*", "cipher"))]
    assert len(dirs) == 1, dirs
    return dirs[0]


def test_the_data_directory_is_ciphertext_and_follows_the_key(start_real):
    pg = _psycopg2()
    d = start_real("--pg-at-rest", "fs")
    rid, _name, env = cmk_cluster(d)
    _rg, _mi, _oid, v, kid = env
    marker = f"pgcmk-atrest-{uuid.uuid4().hex}"
    conn = poll_connect(d, rid)
    query(conn, "CREATE TABLE atrest (v text)")
    query(conn, "INSERT INTO atrest VALUES (%s)", marker)
    assert query(conn, "SELECT v FROM atrest") == [(marker,)]
    conn.close()

    idir = instance_dir(d)
    mnt = os.path.join(idir, "mnt")
    assert mnt in mount_points()
    assert not os.path.exists(os.path.join(idir, "data"))  # no plain data directory beside it
    # the committed row is in the plaintext view (its WAL), never in the ciphertext
    assert files_containing(os.path.join(mnt, "data"), marker.encode()), "the search finds it"
    assert files_containing(os.path.join(idir, "cipher"), marker.encode()) == []

    # revoked: the instance stops, the directory is unmounted, logins fail
    v.set_key(kid, enabled=False)
    wait_state(d, rid, "Inaccessible")
    poll_until(lambda: mnt not in mount_points() and not postmasters_under(idir), timeout=15,
               what="the instance to stop and its gocryptfs directory to be unmounted")
    assert not os.path.exists(os.path.join(mnt, "data", "PG_VERSION"))
    with pytest.raises(pg.OperationalError):
        connect(d, rid, connect_timeout=3)

    # recovered: mounted again, started, the row is back
    v.set_key(kid, enabled=True)
    wait_state(d, rid, "Ready")
    conn = poll_connect(d, rid, timeout=15)
    assert query(conn, "SELECT v FROM atrest") == [(marker,)]
    conn.close()
    assert mnt in mount_points()

    # pgcmkd's SIGTERM stops the instance, then unmounts
    try:
        assert d.stop() == 0
        assert mnt not in mount_points()
    finally:
        if mnt in mount_points():  # ours: do not leave it for the directory's removal
            os.system(f"fusermount3 -u '{mnt}'")
