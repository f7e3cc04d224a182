"""KMIP helpers for the integration tests: a PKI made with openssl, a real PyKMIP server
(/usr/bin/pykmip-server, Debian's python3-pykmip) on a free port, and PyKMIP's own client.

Recipe: /work/shared/reference/key-providers.md section 2 (certificates 2.1, server.conf 2.2,
start/wait/stop 2.3). PyKMIP runs on Debian's /usr/bin/python3 only (the pyenv python3 on PATH
lacks the `kmip` module), so its client is driven in a subprocess of /usr/bin/python3.

    pki = make_pki(tmpdir)                    # {"ca", "server_cert", "server_key", "client_cert",
                                              #  "client_key", "client_combined", "dir"}
    srv = PyKmipServer(tmpdir, pki).start()   # srv.port; srv.stop() kills it by PID
    uid = pykmip(srv, "register", name="k")   # register/locate/get/activate/revoke/destroy/state
"""
import json
import os
import signal
import socket
import subprocess
import time

PY = "/usr/bin/python3"
PYKMIP_SERVER = "/usr/bin/pykmip-server"


def _run(argv, cwd):
    subprocess.run(argv, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                   timeout=60)


def make_pki(root, client_cn="pgtde-client", extra_clients=()):
    """CA, server (IP:127.0.0.1, DNS:localhost) and client certificates (EKU clientAuth)."""
    d = os.path.join(root, "pki")
    os.makedirs(d, exist_ok=True)
    _run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key",
          "-out", "ca.crt", "-days", "3650", "-subj", "/CN=kmip-test-ca",
          "-addext", "basicConstraints=critical,CA:TRUE",
          "-addext", "keyUsage=critical,keyCertSign,cRLSign"], d)
    with open(os.path.join(d, "server.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n"
                "keyUsage=critical,digitalSignature,keyEncipherment\n")
    with open(os.path.join(d, "client.ext"), "w") as f:
        f.write("extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n")

    def issue(stem, cn, ext):
        _run(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{stem}.key",
              "-out", f"{stem}.csr", "-subj", f"/CN={cn}"], d)
        _run(["openssl", "x509", "-req", "-in", f"{stem}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
              "-CAcreateserial", "-out", f"{stem}.crt", "-days", "3650", "-extfile", ext], d)
        with open(os.path.join(d, f"{stem}.key")) as k, open(os.path.join(d, f"{stem}.crt")) as c:
            combined = k.read() + c.read()
        with open(os.path.join(d, f"{stem}.combined.pem"), "w") as f:
            f.write(combined)
        os.chmod(os.path.join(d, f"{stem}.key"), 0o600)

    issue("server", "127.0.0.1", "server.ext")
    issue("client", client_cn, "client.ext")
    pki = {"dir": d, "ca": os.path.join(d, "ca.crt"),
           "server_cert": os.path.join(d, "server.crt"),
           "server_key": os.path.join(d, "server.key"),
           "client_cert": os.path.join(d, "client.crt"),
           "client_key": os.path.join(d, "client.key"),
           "client_combined": os.path.join(d, "client.combined.pem")}
    for cn in extra_clients:
        issue(cn, cn, "client.ext")
        pki[cn] = {"cert": os.path.join(d, f"{cn}.crt"), "key": os.path.join(d, f"{cn}.key")}
    return pki


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_listening(port, timeout=20.0, proc=None):
    """Polls (bounded) until 127.0.0.1:port accepts a TCP connection."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the server exited with code {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)  # polling a port, bounded by the deadline
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


class PyKmipServer:
    """A real PyKMIP server on a free port, with its SQLite database in root."""

    def __init__(self, root, pki, port=None):
        self.root = os.path.join(root, "pykmip")
        self.pki = pki
        self.port = port or free_port()
        self.proc = None
        os.makedirs(os.path.join(self.root, "policies"), exist_ok=True)
        self.db = os.path.join(self.root, "pykmip.db")
        self.conf = os.path.join(self.root, "server.conf")

    def start(self, timeout=30.0):
        with open(self.conf, "w") as f:
            f.write("[server]\nhostname=127.0.0.1\nport=%d\ncertificate_path=%s\nkey_path=%s\n"
                    "ca_path=%s\nauth_suite=TLS1.2\npolicy_path=%s\nenable_tls_client_auth=True\n"
                    "logging_level=INFO\ndatabase_path=%s\n"
                    % (self.port, self.pki["server_cert"], self.pki["server_key"], self.pki["ca"],
                       os.path.join(self.root, "policies"), self.db))
        self.log = open(os.path.join(self.root, "stdout.log"), "ab")
        self.proc = subprocess.Popen([PYKMIP_SERVER, "-f", self.conf, "-l",
                                      os.path.join(self.root, "server.log")],
                                     stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        try:
            wait_listening(self.port, timeout, self.proc)
        except Exception:
            self.stop()
            raise
        return self

    def stop(self, timeout=10.0):
        if self.proc is None:
            return
        # The server runs in its own session with a child (PyKMIP's policy-directory monitor, a
        # multiprocessing.Process) that outlives a SIGTERM to the parent: signal the whole group.
        if self.proc.poll() is None:
            self._signal_group(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=timeout)
        self._signal_group(signal.SIGKILL)
        self.proc = None
        self.log.close()

    def _signal_group(self, sig):
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            pass

    def provider(self, combined=False):
        """The keyProvider options pg_tde keeps for this server."""
        p = {"type": "kmip", "host": "127.0.0.1", "port": self.port,
             "certPath": self.pki["client_cert"], "keyPath": self.pki["client_key"],
             "caPath": self.pki["ca"]}
        if combined:
            del p["certPath"]
            p["keyPath"] = self.pki["client_combined"]
        return p


_CLIENT = r'''
import json, sys
from kmip.pie.client import ProxyKmipClient
from kmip.pie import objects
from kmip.core import enums
from kmip.core.factories.attributes import AttributeFactory as AF
a = json.loads(sys.argv[1])
c = ProxyKmipClient(hostname=a["host"], port=a["port"], cert=a["cert"], key=a["key"],
                    ca=a["ca"], config_file="/dev/null")
out = None
with c:
    op = a["op"]
    if op == "register":
        key = bytes.fromhex(a.get("material", "00" * 32))
        out = c.register(objects.SymmetricKey(enums.CryptographicAlgorithm.AES, 8 * len(key), key,
                         masks=[enums.CryptographicUsageMask.ENCRYPT,
                                enums.CryptographicUsageMask.DECRYPT], name=a["name"]))
    elif op == "locate":
        out = c.locate(attributes=[AF().create_attribute(enums.AttributeType.NAME, a["name"])])
    elif op == "get":
        out = c.get(a["uid"]).value.hex()
    elif op == "state":
        attrs = c.get_attributes(a["uid"], ["State"])[1]
        out = attrs[0].attribute_value.value.name
    elif op == "activate":
        c.activate(a["uid"])
    elif op == "revoke":
        c.revoke(enums.RevocationReasonCode.CESSATION_OF_OPERATION, a["uid"])
    elif op == "compromise":
        import time
        c.revoke(enums.RevocationReasonCode.KEY_COMPROMISE, a["uid"],
                 compromise_occurrence_date=int(time.time()))
    elif op == "destroy":
        c.destroy(a["uid"])
print(json.dumps(out))
'''


def pykmip(server, op, cert=None, key=None, **kw):
    """Runs one operation with PyKMIP's ProxyKmipClient against server (a PyKmipServer or a
    dict with host/port/cert/key/ca); returns its JSON-decoded result."""
    if isinstance(server, PyKmipServer):
        args = {"host": "127.0.0.1", "port": server.port,
                "cert": cert or server.pki["client_cert"], "key": key or server.pki["client_key"],
                "ca": server.pki["ca"]}
    else:
        args = dict(server)
    args.update(kw)
    args["op"] = op
    r = subprocess.run([PY, "-c", _CLIENT, json.dumps(args)], capture_output=True, text=True,
                       timeout=60)
    if r.returncode != 0:
        raise RuntimeError(f"PyKMIP {op} failed: {r.stderr[-2000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])
