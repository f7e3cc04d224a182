"""Integration fixtures: every test talks to a real pgcmkd started here.

* `Daemon` starts `$PGCMKD --data-dir DIR --port 0 --port-file DIR/port --http-port 0
  --http-port-file DIR/http-port --kmip-port 0 --log-level warn [extra flags]`, waits (bounded) for the port
  files, and offers a requests.Session that trusts DIR/ca.pem.  `stop()` sends SIGTERM and checks
  exit code 0; `kill()` sends SIGKILL; `restart()` starts again on the same data directory.
  stderr goes to DIR/../stderr-N.log; a sanitizer report in it fails the test at teardown.
* `daemon`: one daemon shared by a test module (tests there use unique names).
* `start_daemon(*flags, data_dir=None, env=None, http=True)`: a daemon of the test's own (pass
  data_dir=d.data_dir to start on the same directory, or call d.restart()); all of them are
  stopped (and checked) when the test ends.
"""
import datetime
import os
import re
import signal
import subprocess
import tempfile
import time
import uuid

import pytest
import requests

SUB = "00000000-0000-4000-8000-000000000001"
TENANT = "72f98800-0000-4000-8000-00000000cafe"
AV = "2021-04-01"
GUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "runtime error:", "ERROR: LeakSanitizer")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def pgcmkd_path():
    path = os.environ.get("PGCMKD") or os.path.join(ROOT, "build", "pgcmkd")
    if not os.access(path, os.X_OK):
        pytest.exit(f"pgcmkd binary not found at {path}; run `make` or set PGCMKD", returncode=2)
    return path


def clean_env(extra=None):
    """The caller's environment without PGCMK_* settings (they would change the daemon)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PGCMK_")}
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0:fast_unwind_on_malloc=0")
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1")
    if extra:
        env.update(extra)
    return env


def poll_until(fn, timeout=10.0, interval=0.01, what="condition"):
    """Calls fn() until it returns a truthy value (returned) or `timeout` seconds pass (fails)."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = fn()
        if last:
            return last
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what} (last: {last!r})")
        time.sleep(interval)  # a short back-off between polls, not a wait for an effect


def parse_time(s):
    """'2030-01-01T00:00:00.000Z' -> aware datetime."""
    assert isinstance(s, str) and s.endswith("Z"), s
    return datetime.datetime.fromisoformat(s[:-1] + "+00:00")


def new_name(prefix="rg"):
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def assert_arm_error(r, status, code=None):
    """r is an ARM error: the status, JSON {"error":{"code","message"}} and, if given, the code."""
    assert r.status_code == status, f"expected {status}, got {r.status_code}: {r.text[:500]}"
    ctype = r.headers.get("Content-Type", "")
    assert ctype.startswith("application/json"), ctype
    body = r.json()
    assert set(body) == {"error"}, body
    err = body["error"]
    assert isinstance(err.get("code"), str) and err["code"], body
    assert isinstance(err.get("message"), str) and err["message"], body
    if code is not None:
        assert err["code"] == code, body
    return err


def walkthrough_runs():
    """The passes of a docs walkthrough that must run twice in a row on one daemon: (1, 2), or (1,)
    on the ASan build (make asan sets PGCMK_TEST_SANITIZE). The second pass sends the first pass's
    requests again to the same code; what it checks (the page cleans up after itself, so it can run
    again) is a functional property make test checks on the same sources, and the sanitizers have
    seen every path the page takes in the first pass."""
    return (1,) if os.environ.get("PGCMK_TEST_SANITIZE") else (1, 2)


class Daemon:
    _seq = 0

    def __init__(self, data_dir, flags=(), env=None, log_dir=None, http=True):
        self.binary = pgcmkd_path()
        self.http = http
        self.data_dir = data_dir
        self.flags = list(flags)
        self.env = env or {}
        self.log_dir = log_dir or os.path.dirname(data_dir)
        self.proc = None
        self.port = self.http_port = None
        self.sessions = []
        self.logs = []

    # -- process ---------------------------------------------------------------------------
    @property
    def ca(self):
        return os.path.join(self.data_dir, "ca.pem")

    @property
    def base(self):
        return f"https://localhost:{self.port}"

    @property
    def http_base(self):
        return f"http://localhost:{self.http_port}"

    def argv(self):
        d = self.data_dir
        http = ["--http-port", "0", "--http-port-file", f"{d}/http-port"] if self.http else []
        # The KMIP listener's default port (5696) is the user's: tests take a free one unless a
        # test names its own.
        kmip = [] if "--kmip-port" in self.flags else ["--kmip-port", "0"]
        # The same for the Vault API's default port (8200).
        vault = [] if "--vault-port" in self.flags else ["--vault-port", "0"]
        return [self.binary, "--data-dir", d, "--port", "0", "--port-file", f"{d}/port",
                *http, *kmip, *vault, "--log-level", "warn", *self.flags]

    def start(self, timeout=15.0):
        assert self.proc is None, "already running"
        os.makedirs(self.data_dir, exist_ok=True)
        for f in ("port", "http-port"):
            try:
                os.unlink(os.path.join(self.data_dir, f))
            except FileNotFoundError:
                pass
        Daemon._seq += 1
        self.stdout_path = os.path.join(self.log_dir, f"stdout-{Daemon._seq}.log")
        self.stderr_path = os.path.join(self.log_dir, f"stderr-{Daemon._seq}.log")
        self.logs.append(self.stderr_path)
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(self.argv(), stdout=out, stderr=err,
                                         env=clean_env(self.env), cwd=ROOT)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"pgcmkd exited with {self.proc.returncode} at start:\n"
                                     f"{self.stderr_text()}")
            port = self._read_port("port")
            http_port = self._read_port("http-port") if self.http else -1
            if port and http_port:
                break
            if time.monotonic() > deadline:
                self.kill()
                raise AssertionError(f"pgcmkd wrote no port file in {timeout}s:\n"
                                     f"{self.stderr_text()}")
            time.sleep(0.01)
        self.port, self.http_port = port, http_port
        self.s = self.session()
        return self

    def _read_port(self, name):
        try:
            with open(os.path.join(self.data_dir, name)) as f:
                text = f.read()
        except FileNotFoundError:
            return None
        return int(text) if text.endswith("\n") and text.strip().isdigit() else None

    def stop(self, timeout=10.0):
        """SIGTERM, wait; returns the exit code (the caller asserts). Client connections stay
        open until the process is gone: idle keep-alive connections must not delay the stop."""
        if self.proc is None:
            self.close_sessions()
            return None
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            self.proc = None
            raise AssertionError(f"pgcmkd did not exit within {timeout}s of SIGTERM")
        finally:
            self.close_sessions()
        self.proc = None
        return rc

    def kill(self):
        self.close_sessions()
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def restart(self, flags=None):
        rc = self.stop()
        assert rc == 0, f"exit code {rc} on SIGTERM:\n{self.stderr_text()}"
        if flags is not None:
            self.flags = list(flags)
        return self.start()

    # -- logs ------------------------------------------------------------------------------
    def stderr_text(self):
        out = []
        for p in self.logs:
            try:
                with open(p, "rb") as f:
                    out.append(f.read().decode("utf-8", "replace"))
            except FileNotFoundError:
                pass
        return "".join(out)

    def sanitizer_reports(self):
        text = self.stderr_text()
        return [m for m in SANITIZER_MARKERS if m in text]

    # -- HTTP ------------------------------------------------------------------------------
    def session(self):
        s = requests.Session()
        s.verify = self.ca
        s.trust_env = False  # no proxies, and REQUESTS_CA_BUNDLE must not override verify
        self.sessions.append(s)
        return s

    def close_sessions(self):
        for s in self.sessions:
            s.close()
        self.sessions = []

    def url(self, path):
        return path if path.startswith("http") else self.base + path

    def request(self, method, path, **kw):
        kw.setdefault("timeout", 10)
        return self.s.request(method, self.url(path), **kw)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def put(self, path, **kw):
        return self.request("PUT", path, **kw)

    def post(self, path, **kw):
        return self.request("POST", path, **kw)

    def patch(self, path, **kw):
        return self.request("PATCH", path, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    def head(self, path, **kw):
        return self.request("HEAD", path, **kw)

    # -- ARM shortcuts ---------------------------------------------------------------------
    @staticmethod
    def rg_path(name, av=AV, segment="resourcegroups"):
        q = f"?api-version={av}" if av else ""
        return f"/subscriptions/{SUB}/{segment}/{name}{q}"

    def put_rg(self, name, location="eastus", tags=None, **kw):
        body = {"location": location}
        if tags is not None:
            body["tags"] = tags
        return self.put(self.rg_path(name), json=body, **kw)

    def healthy(self):
        r = self.get("/emulator/health")
        return r.status_code == 200 and r.json().get("status") == "Healthy"

    def clock(self, **cmd):
        r = self.post("/emulator/clock", json=cmd)
        assert r.status_code == 200, r.text
        return r.json()


class DaemonPool:
    """Starts daemons for one test or module and checks each at teardown."""

    def __init__(self, root):
        self.root = root
        self.daemons = []

    def start(self, *flags, data_dir=None, env=None, http=True):
        if data_dir is None:
            data_dir = tempfile.mkdtemp(prefix="data-", dir=self.root)
        d = Daemon(data_dir, flags, env, log_dir=self.root, http=http)
        self.daemons.append(d)
        return d.start()

    def finish(self):
        problems = []
        for d in self.daemons:
            if d.proc is not None and d.proc.poll() is not None:
                problems.append(f"{d.data_dir}: pgcmkd exited during the test with code "
                                f"{d.proc.returncode} (a crash, or a signal from elsewhere):\n"
                                f"{d.stderr_text()[-3000:]}")
                d.proc = None
            if d.proc is not None:
                rc = d.stop()
                if rc != 0:
                    problems.append(f"{d.data_dir}: exit code {rc} after SIGTERM")
            reports = d.sanitizer_reports()
            if reports:
                problems.append(f"{d.data_dir}: sanitizer report ({', '.join(reports)}):\n"
                                f"{d.stderr_text()[-6000:]}")
        return problems


@pytest.fixture
def start_daemon(tmp_path):
    pool = DaemonPool(str(tmp_path))
    yield pool.start
    problems = pool.finish()
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    pool = DaemonPool(str(tmp_path_factory.mktemp("module")))
    d = pool.start()
    yield d
    problems = pool.finish()
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


# -- scheduling (make test / make asan run this directory on two pytest-xdist workers) ------------
# --dist loadfile hands whole files to the workers in collection order. The files are collected
# longest first, so that the last ones handed out are short and both workers end together; the
# figures are seconds on the normal build (the 20 slowest tests of `make test`, 2026-12-06), a file
# not listed counts SECONDS_PER_TEST a test (SECONDS_PER_REAL_TEST in real PostgreSQL mode).
FILE_SECONDS = {
    "test_cli_pgcmk.py": 120, "test_az_cli.py": 110, "test_pg_real_doc.py": 100,
    "test_docs.py": 90, "test_docs_vault.py": 66, "test_docs_kes.py": 57,
    "test_agent_kmip.py": 55, "test_cli_vault.py": 55, "test_keyvault_keys.py": 45,
    "test_pg_atrest.py": 35, "test_docs_kmip.py": 33,
}
SECONDS_PER_TEST = 0.5
SECONDS_PER_REAL_TEST = 6.0
REAL_FIXTURES = ("real_daemon", "start_real")


def _file_seconds(items):
    """{file name: estimated seconds} for the collected items."""
    est = {}
    for it in items:
        name = os.path.basename(str(it.fspath))
        real = any(f in REAL_FIXTURES for f in getattr(it, "fixturenames", ()))
        est[name] = est.get(name, 0.0) + (SECONDS_PER_REAL_TEST if real else SECONDS_PER_TEST)
    for name in est:
        est[name] = max(est[name], FILE_SECONDS.get(name, 0))
    return est


def pytest_collection_modifyitems(session, config, items):
    """Longest files first; a file's tests keep their order (module fixtures are shared)."""
    est = _file_seconds(items)
    first = {}
    for i, it in enumerate(items):
        first.setdefault(str(it.fspath), i)
    items.sort(key=lambda it: (-est[os.path.basename(str(it.fspath))], first[str(it.fspath)]))


@pytest.hookimpl(tryfirst=True, optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """--dist loadfile without its look-ahead: xdist gives a worker its next file while two of its
    tests are still pending, so a file can wait behind a worker's long last test while the other
    worker runs dry. A worker holds its last test until it gets more (or is told to stop): the next
    file goes out when one test is left, which keeps the worker busy and the queue shared."""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class LoadFileNoLookahead(LoadFileScheduling):
        def _reschedule(self, node):
            if not node.shutting_down and self.workqueue and \
                    self._pending_of(self.assigned_work[node]) > 1:
                return
            super()._reschedule(node)

    return LoadFileNoLookahead(config, log)
