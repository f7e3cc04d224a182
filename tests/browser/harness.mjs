// harness.mjs - what a browser test needs around the page: its own pgcmkd (free ports, a temporary
// data directory, --web pointing at web/), REST calls on its plain-HTTP listener, a settled
// reconciler, headless Chromium (Debian's), screenshots, and the exit code. No fixed sleeps.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const PGCMKD = path.resolve(ROOT, process.env.PGCMKD || 'build/pgcmkd');
export const SCREENS = path.resolve(ROOT, process.env.SCREENS || 'build/browser-screens');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
export const WAIT = 20000;
const t0 = Date.now();

export function log(msg) {
  console.log(`[${((Date.now() - t0) / 1000).toFixed(1)}s] ${msg}`);
}

export function fail(msg) {
  throw new Error(msg);
}

export class Daemon {
  constructor(prefix) {
    this.dataDir = fs.mkdtempSync(path.join(os.tmpdir(), `pgcmk-browser-${prefix}-`));
    this.proc = null;
    this.port = 0;
    this.httpPort = 0;
  }

  readPort(name) {
    try {
      const t = fs.readFileSync(path.join(this.dataDir, name), 'utf8');
      return t.endsWith('\n') ? Number(t.trim()) : 0;
    } catch (_) {
      return 0;
    }
  }

  async start(flags = []) {
    if (!fs.existsSync(PGCMKD)) fail(`no daemon at ${PGCMKD}: run make`);
    const d = this.dataDir;
    const err = fs.openSync(path.join(d, 'stderr.log'), 'w');
    this.proc = spawn(PGCMKD, ['--data-dir', d, '--port', '0', '--port-file', `${d}/port`, '--http-port', '0',
      '--http-port-file', `${d}/http-port`, '--web', path.join(ROOT, 'web'), '--log-level', 'warn', ...flags],
    { stdio: ['ignore', 'ignore', err], cwd: d });
    let exited = null;
    this.proc.on('exit', (code) => (exited = code));
    await waitFor(() => {
      if (exited !== null) fail(`pgcmkd exited with ${exited}: ${this.stderr()}`);
      this.port = this.readPort('port');
      this.httpPort = this.readPort('http-port');
      return this.port && this.httpPort;
    }, 'the port files');
    log(`pgcmkd on https ${this.port}, http ${this.httpPort}, data ${d}`);
  }

  stderr() {
    try {
      return fs.readFileSync(path.join(this.dataDir, 'stderr.log'), 'utf8');
    } catch (_) {
      return '';
    }
  }

  async stop() {
    if (!this.proc || this.proc.exitCode !== null) return;
    const done = new Promise((r) => this.proc.on('exit', (code, sig) => r(code ?? sig)));
    this.proc.kill('SIGTERM');
    const rc = await done;
    if (rc !== 0) fail(`pgcmkd exited with ${rc} on SIGTERM`);
  }

  // one request on the plain-HTTP listener (vault hosts by Host header, so no resolver is
  // needed): {status, headers, json, text}
  rest(method, p, body, { host = 'localhost', headers = {}, form = false } = {}) {
    const data = body === undefined ? null : form ? new URLSearchParams(body).toString() : JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port: this.httpPort, method, path: p,
        headers: { Host: `${host}:${this.httpPort}`, ...headers,
          ...(data ? { 'Content-Type': form ? 'application/x-www-form-urlencoded' : 'application/json',
            'Content-Length': Buffer.byteLength(data) } : {}) } },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c) => (text += c));
        res.on('end', () => {
          let json = null;
          try {
            json = text ? JSON.parse(text) : null;
          } catch (_) {
            /* not JSON */
          }
          resolve({ status: res.statusCode, headers: res.headers, json, text });
        });
      });
      req.on('error', reject);
      if (data) req.write(data);
      req.end();
    });
  }

  async ok(method, p, body, opts) {
    const r = await this.rest(method, p, body, opts);
    if (r.status >= 300) fail(`${method} ${p}: ${r.status} ${r.text}`);
    return r.json;
  }

  // PUT/POST that may answer with an Azure-AsyncOperation: followed until the operation ends;
  // the final status body, or the answer itself when there is none
  async lro(method, p, body) {
    const r = await this.rest(method, p, body);
    if (r.status >= 300) fail(`${method} ${p}: ${r.status} ${r.text}`);
    const op = r.headers['azure-asyncoperation'];
    if (!op) return r.json;
    const u = new URL(op);
    const st = await waitFor(async () => {
      const s = await this.ok('GET', u.pathname + u.search);
      return s.status !== 'InProgress' && s;
    }, `${method} ${p} to finish`);
    if (st.status !== 'Succeeded') fail(`${method} ${p}: ${JSON.stringify(st)}`);
    return st;
  }

  // one call to the daemon's Vault listener with its dev root token (vault.address and
  // vault.rootToken of /emulator/info); the answer's JSON
  async vault(method, p, body) {
    if (!this.vaultInfo) this.vaultInfo = (await this.ok('GET', '/emulator/info')).vault || fail('no vault in /emulator/info');
    const data = body === undefined ? null : JSON.stringify(body);
    const u = new URL(`${this.vaultInfo.address}/v1/${p}`);
    return new Promise((resolve, reject) => {
      const req = https.request({ host: u.hostname, port: u.port, method, path: u.pathname + u.search,
        ca: fs.readFileSync(path.join(this.dataDir, 'ca.pem')),
        headers: { 'X-Vault-Token': this.vaultInfo.rootToken, ...(data ? { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(data) } : {}) } },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c) => (text += c));
        res.on('end', () => {
          if (res.statusCode >= 300) reject(new Error(`${method} ${p}: ${res.statusCode} ${text}`));
          else resolve(text ? JSON.parse(text) : null);
        });
      });
      req.on('error', reject);
      if (data) req.write(data);
      req.end();
    });
  }

  async settle() {
    await waitFor(async () => (await this.ok('POST', '/emulator/settle')).settled === true, 'the reconciler to settle');
  }
}

export async function waitFor(fn, what, timeoutMs = 15000) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) fail(`timed out waiting for ${what}`);
    await new Promise((r) => setImmediate(r));
  }
}

// withPage(fn, size): Chromium with one page (page errors collected, dialogs accepted); fn(page, shot)
export async function withPage(fn, { width = 1500, height = 1000 } = {}) {
  fs.mkdirSync(SCREENS, { recursive: true });
  const browser = await chromium.launch({ executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'] });
  const problems = [];
  try {
    const ctx = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width, height } });
    const page = await ctx.newPage();
    page.setDefaultTimeout(WAIT);
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    page.on('console', (m) => {
      if (m.type() === 'error' && /Content Security Policy|CORS|Refused/i.test(m.text())) problems.push(`console: ${m.text()}`);
    });
    page.on('dialog', (d) => d.accept());
    const shot = async (name) => {
      await page.screenshot({ path: path.join(SCREENS, `${name}.png`), fullPage: true });
      log(`screenshot ${name}.png`);
    };
    await fn(page, shot);
    if (problems.length) fail(`browser problems:\n${problems.join('\n')}`);
  } finally {
    await browser.close();
  }
}

// main(name, daemon, run): runs the test, stops the daemon, exits 0 or 1 (keeping the data
// directory of a failed run)
export async function main(name, daemon, run) {
  let rc = 0;
  try {
    await run();
    console.log(`${name} browser test passed in ${((Date.now() - t0) / 1000).toFixed(1)} s; screenshots in ${SCREENS}`);
  } catch (e) {
    rc = 1;
    console.error(`${name} browser test FAILED: ${e.stack || e}`);
    console.error(daemon.stderr().slice(-4000));
  }
  try {
    await daemon.stop();
  } catch (e) {
    rc = 1;
    console.error(String(e));
  }
  if (rc === 0) fs.rmSync(daemon.dataDir, { recursive: true, force: true });
  process.exit(rc);
}
