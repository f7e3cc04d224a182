"""cli/pgcmk run as a user runs it, for the CLI tests: a clean environment pointing at one daemon
(PGCMK_URL, PGCMK_CA, a private config directory), the answer checked (exit code, stderr)."""
import json
import os
import subprocess

from conftest import ROOT

CLI = os.path.join(ROOT, "cli", "pgcmk")


class Cli:
    def __init__(self, daemon, config_dir, drop=("PGCMK", "VAULT_"), cwd=ROOT, **extra_env):
        self.d = daemon
        self.cwd = cwd
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
        self.env.update(PGCMK_URL=daemon.base, PGCMK_CA=daemon.ca, PGCMK_CONFIG_DIR=config_dir,
                        PGCMK_POLL_INTERVAL="0.05", PGCMK_WAIT_TIMEOUT="60", **extra_env)

    def run(self, *args, env=None, input=None, cwd=None, timeout=90):
        e = dict(self.env, **(env or {}))
        return subprocess.run([CLI, *args], capture_output=True, text=True, env=e, input=input,
                              timeout=timeout, cwd=cwd or self.cwd)

    def out(self, *args, **kw):
        r = self.run(*args, **kw)
        assert r.returncode == 0, f"pgcmk {' '.join(args)} -> {r.returncode}\n{r.stderr}{r.stdout}"
        assert r.stderr == "", r.stderr
        return r.stdout

    def json(self, *args, **kw):
        return json.loads(self.out(*args, **kw))

    def fail(self, *args, rc=1, err=None, **kw):
        r = self.run(*args, **kw)
        assert r.returncode == rc, f"pgcmk {' '.join(args)}: expected {rc}, got {r.returncode}\n" \
                                   f"{r.stderr}{r.stdout}"
        if err is not None:
            assert err in r.stderr, r.stderr
        return r
