"""The portal's static files and CORS: an allow-list loaded at start (never a URL joined to a
path), served at /portal/ on both listeners with security headers; CORS only for localhost pages."""
import os
import re
import shutil

import pytest
import requests

from conftest import ROOT

WEB = os.path.join(ROOT, "web")


def get_raw(d, path, base=None, **kw):
    """A request with the path sent exactly as written (requests would normalise '..')."""
    s = d.session()
    url = (base or d.base) + "/portal/"
    req = requests.Request("GET", url, **kw).prepare()
    req.url = (base or d.base) + path
    return s.send(req, timeout=10, allow_redirects=False)


def test_index_and_redirect_on_both_listeners(daemon):
    for base in (daemon.base, daemon.http_base):
        r = daemon.get(base + "/portal", allow_redirects=False)
        assert r.status_code == 301 and r.headers["Location"] == "/portal/"
        r = daemon.get(base + "/portal/")
        assert r.status_code == 200
        assert r.headers["Content-Type"].startswith("text/html")
        assert '<script type="module" src="js/app.js">' in r.text
        with open(os.path.join(WEB, "index.html"), encoding="utf-8") as f:
            assert r.text == f.read()
        r = daemon.get(base + "/portal/js/app.js")
        assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/javascript")
        assert daemon.get(base + "/portal/css/portal.css").headers["Content-Type"].startswith("text/css")


def test_security_headers(daemon):
    r = daemon.get("/portal/")
    csp = r.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp
    assert f"connect-src 'self' https://*.vault.localhost:{daemon.port}" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["X-Frame-Options"] == "DENY"
    r = daemon.get(daemon.http_base + "/portal/")
    assert f"http://*.vault.localhost:{daemon.http_port}" in r.headers["Content-Security-Policy"]


def test_no_inline_script_or_handlers():
    for dirpath, _, files in os.walk(WEB):
        for name in files:
            if name.endswith(".html"):
                with open(os.path.join(dirpath, name), encoding="utf-8") as f:
                    html = f.read()
                assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), name
                assert not re.search(r"\son[a-z]+\s*=", html), name
                assert "style=" not in html, name


@pytest.mark.parametrize("path", [
    "/portal/../README.md", "/portal/%2e%2e/README.md", "/portal/%2E%2E/%2E%2E/etc/passwd",
    "/portal/js/../index.html", "/portal/..%2fREADME.md", "/portal/index.html%00",
    "/portal/index.html%00.png", "/portal/README.md", "/portal/.gitignore", "/portal//index.html",
    "/portal/js", "/portal/nope.js", "/portal/INDEX.HTML", "/portal/./index.html",
    "/portal/%252e%252e/README.md", "/portal/index.html/", "/portal/js/app.js.map",
])
def test_anything_not_in_the_allow_list_misses(daemon, path):
    r = get_raw(daemon, path)
    assert r.status_code == 404, (path, r.status_code, r.text[:200])
    assert r.headers["Content-Type"].startswith("application/json")
    assert r.json()["error"]["code"]


def test_files_are_loaded_at_start_not_read_per_request(start_daemon, tmp_path):
    web = tmp_path / "web"
    shutil.copytree(WEB, web)
    d = start_daemon("--web", str(web))
    (web / "late.js").write_text("export {};\n")
    (web / "index.html").write_text("changed")
    assert d.get("/portal/late.js").status_code == 404
    assert d.get("/portal/").text != "changed"


def test_symlinks_and_unknown_types_are_left_out(start_daemon, tmp_path):
    web = tmp_path / "web"
    web.mkdir()
    (web / "index.html").write_text("<!doctype html><title>t</title>")
    (web / "secret.key").write_text("no")
    (web / ".hidden.js").write_text("no")
    os.symlink("/etc/passwd", web / "passwd.txt")
    d = start_daemon("--web", str(web))
    assert d.get("/portal/").status_code == 200
    for name in ("secret.key", ".hidden.js", "passwd.txt"):
        assert d.get(f"/portal/{name}").status_code == 404, name


def test_missing_web_dir_is_not_fatal(start_daemon, tmp_path):
    d = start_daemon("--web", str(tmp_path / "none"))
    assert d.get("/portal/").status_code == 404
    assert d.get("/emulator/info").status_code == 200


def test_preflight_from_localhost_origins(daemon):
    for origin in (f"https://localhost:{daemon.port}", f"http://127.0.0.1:{daemon.http_port}",
                   "http://[::1]:8080", "http://localhost"):
        r = daemon.request("OPTIONS", f"https://kvx.vault.localhost:{daemon.port}/keys?api-version=7.4",
                           headers={"Origin": origin, "Access-Control-Request-Method": "GET",
                                    "Access-Control-Request-Headers": "authorization"})
        assert r.status_code == 204, (origin, r.text)
        assert r.headers["Access-Control-Allow-Origin"] == origin
        assert "Authorization" in r.headers["Access-Control-Allow-Headers"]
        assert "Content-Type" in r.headers["Access-Control-Allow-Headers"]
        assert "PATCH" in r.headers["Access-Control-Allow-Methods"]


def test_responses_carry_cors_for_localhost_only(daemon):
    origin = f"https://localhost:{daemon.port}"
    r = daemon.get(f"https://kvx.vault.localhost:{daemon.port}/keys?api-version=7.4",
                   headers={"Origin": origin})
    assert r.status_code == 401  # the challenge must be readable by the page
    assert r.headers["Access-Control-Allow-Origin"] == origin
    assert "WWW-Authenticate" in r.headers["Access-Control-Expose-Headers"]
    assert "Origin" in r.headers["Vary"]
    for bad in ("https://evil.example", "https://localhost.evil.example", "null",
                "https://localhost:8443.evil", "https://evil.localhost", "file://",
                "https://127.0.0.1.nip.io", "ftp://localhost"):
        r = daemon.get("/emulator/info", headers={"Origin": bad})
        assert "Access-Control-Allow-Origin" not in r.headers, bad
        r = daemon.request("OPTIONS", "/emulator/info",
                           headers={"Origin": bad, "Access-Control-Request-Method": "GET"})
        assert r.status_code != 204 and "Access-Control-Allow-Origin" not in r.headers, bad
