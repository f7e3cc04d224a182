"""Flags, PGCMK_* environment variables, --help, --print-config, --error-table, docs/errors.md."""
import os
import subprocess

import pytest

from conftest import ROOT, clean_env, pgcmkd_path

FLAGS = ["data-dir", "port", "port-file", "http-port", "http-port-file", "auth", "log-level",
         "tls-cert", "tls-key", "max-body-kb", "lro-min-polls", "page-size"]


def run(*args, env=None, timeout=20):
    return subprocess.run([pgcmkd_path(), *args], capture_output=True, text=True,
                          env=clean_env(env), timeout=timeout, cwd=ROOT)


def test_help_lists_every_flag_and_variable():
    r = run("--help")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    # Every setting --print-config knows, plus the ones the brief names, with its variable.
    known = [line.split("=", 1)[0] for line in run("--print-config").stdout.splitlines()]
    assert set(FLAGS) <= set(known), set(FLAGS) - set(known)
    for flag in known:
        assert f"--{flag} " in out, flag
        assert "env PGCMK_" + flag.upper().replace("-", "_") + "," in out, flag
    for extra in ("--print-config", "--error-table", "--help"):
        assert extra in out
    h = run("-h")
    assert h.returncode == 0 and h.stdout == out


def test_print_config_env_and_flags():
    r = run("--print-config", env={"PGCMK_PAGE_SIZE": "7", "PGCMK_AUTH": "strict"})
    assert r.returncode == 0, r.stderr
    cfg = dict(line.split("=", 1) for line in r.stdout.splitlines())
    assert cfg["page-size"] == "7" and cfg["auth"] == "strict"
    # A flag wins over the variable.
    r = run("--page-size", "3", "--print-config", env={"PGCMK_PAGE_SIZE": "7"})
    cfg = dict(line.split("=", 1) for line in r.stdout.splitlines())
    assert cfg["page-size"] == "3"
    # The key path is shown, the key itself never is (only a path here, but marked sensitive).
    r = run("--tls-cert", "/x/c.pem", "--tls-key", "/x/k.pem", "--print-config")
    cfg = dict(line.split("=", 1) for line in r.stdout.splitlines())
    assert cfg["tls-cert"] == "/x/c.pem" and cfg["tls-key"] == "***"


@pytest.mark.parametrize("env,args,needle", [
    ({"PGCMK_LOG_LEVEL": "bogus"}, [], "PGCMK_LOG_LEVEL"),
    ({"PGCMK_PORT": "70000"}, [], "PGCMK_PORT"),
    ({"PGCMK_PORT": "abc"}, [], "PGCMK_PORT"),
    ({"PGCMK_AUTH": "none"}, [], "PGCMK_AUTH"),
    ({}, ["--log-level", "bogus"], "--log-level"),
    ({}, ["--max-body-kb", "0"], "--max-body-kb"),
    ({}, ["--no-such-flag"], "no-such-flag"),
    ({}, ["--port"], "port"),
    ({}, ["stray"], "stray"),
    ({}, ["--tls-cert", "/x/c.pem"], "tls-key"),
])
def test_bad_settings_exit_2(env, args, needle, tmp_path):
    r = run("--data-dir", str(tmp_path / "d"), "--port", "0", *args, env=env)
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert needle in r.stderr, r.stderr
    assert not os.path.exists(tmp_path / "d"), "nothing may be created on a configuration error"


def test_environment_configures_the_daemon(tmp_path):
    """PGCMK_* variables alone: port, port file, auth, page size."""
    from conftest import Daemon
    data = str(tmp_path / "envd")
    d = Daemon(data, log_dir=str(tmp_path))
    d.argv = lambda: [d.binary]
    d.env = {"PGCMK_DATA_DIR": data, "PGCMK_PORT": "0", "PGCMK_PORT_FILE": f"{data}/port",
             "PGCMK_HTTP_PORT": "0", "PGCMK_HTTP_PORT_FILE": f"{data}/http-port",
             "PGCMK_LOG_LEVEL": "warn", "PGCMK_AUTH": "strict", "PGCMK_PAGE_SIZE": "1"}
    os.makedirs(data)
    d.start()
    try:
        info = d.get("/emulator/info").json()
        assert info["authMode"] == "strict"
        assert os.path.realpath(info["dataDir"]) == os.path.realpath(data)
        assert d.get("/subscriptions?api-version=2022-12-01").status_code == 401
    finally:
        assert d.stop() == 0
    assert not d.sanitizer_reports(), d.stderr_text()


def test_port_in_use(start_daemon, tmp_path):
    d = start_daemon()
    r = run("--data-dir", str(tmp_path / "other"), "--port", str(d.port), "--log-level", "warn")
    assert r.returncode != 0
    assert "listen" in r.stderr or "bind" in r.stderr or "in use" in r.stderr, r.stderr
    assert d.healthy()


def test_error_table_matches_docs():
    r = run("--error-table")
    assert r.returncode == 0, r.stderr
    assert "| 404 | `ResourceGroupNotFound` |" in r.stdout
    path = os.path.join(ROOT, "docs", "errors.md")
    if not os.path.exists(path):
        pytest.skip("docs/errors.md does not exist")
    with open(path, encoding="utf-8") as f:
        assert f.read() == r.stdout, "docs/errors.md is stale: regenerate with build/pgcmkd --error-table"


def test_banner_urls_answer(start_daemon):
    """The start-up banner's portal links (HTTPS and plain HTTP) answer 200, not the root's 404,
    and every URL it prints is on the daemon's ports."""
    import re

    import requests

    from conftest import poll_until

    d = start_daemon()

    def banner():
        with open(d.stdout_path) as f:
            text = f.read()
        return text if "CA certificate:" in text else None

    text = poll_until(banner, what="the start-up banner")
    portal = re.search(r"portal:\s+(https://localhost:(\d+)/portal/)\s*$", text, re.M)
    assert portal, text
    assert int(portal.group(2)) == d.port
    r = d.get(portal.group(1))
    assert r.status_code == 200 and "text/html" in r.headers["Content-Type"], r.status_code
    plain = re.search(r"plain HTTP:\s+(http://localhost:(\d+)/portal/)\s*$", text, re.M)
    assert plain, text
    assert int(plain.group(2)) == d.http_port
    r = requests.get(plain.group(1), timeout=10)
    assert r.status_code == 200, r.status_code
    # the root it used to print is a 404: no line of the banner points there
    assert not re.search(r"https?://localhost:\d+/\s*$", text, re.M), text
    assert d.get("/").status_code == 404
