// kmip.test.mjs - the portal's KMIP page in real headless Chromium (Debian's /usr/bin/chromium,
// driven by playwright-core): a KMIP client made by REST registers an AES key with PyKMIP's client
// (/usr/bin/python3); a self-managed database is declared on it. In the portal: open the page from
// the navigation, activate the key, see the database under it, revoke the key (KeyCompromise),
// see the object Compromised with its reason and the database Inaccessible, open the database's
// page (state, reason, explain naming the object), destroy the key, create and delete a client.
// Starts its own pgcmkd (--kmip-port 0); no fixed sleeps.
//
//   PGCMKD=build/pgcmkd SCREENS=build/browser-screens node tests/browser/kmip.test.mjs
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const PGCMKD = path.resolve(ROOT, process.env.PGCMKD || 'build/pgcmkd');
const SCREENS = path.resolve(ROOT, process.env.SCREENS || 'build/browser-screens');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const WAIT = 20000;
const t0 = Date.now();

function log(msg) {
  console.log(`[${((Date.now() - t0) / 1000).toFixed(1)}s] ${msg}`);
}

function fail(msg) {
  throw new Error(msg);
}

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgcmk-browser-kmip-'));
let daemon = null;
let port = 0;
let httpPort = 0;

async function waitFor(fn, what, timeoutMs = 15000) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) fail(`timed out waiting for ${what}`);
    await new Promise((r) => setImmediate(r));
  }
}

function readPort(name) {
  try {
    const t = fs.readFileSync(path.join(dataDir, name), 'utf8');
    return t.endsWith('\n') ? Number(t.trim()) : 0;
  } catch (_) {
    return 0;
  }
}

async function startDaemon() {
  if (!fs.existsSync(PGCMKD)) fail(`no daemon at ${PGCMKD}: run make`);
  const err = fs.openSync(path.join(dataDir, 'stderr.log'), 'w');
  daemon = spawn(PGCMKD, ['--data-dir', dataDir, '--port', '0', '--port-file', `${dataDir}/port`,
    '--http-port', '0', '--http-port-file', `${dataDir}/http-port`, '--kmip-port', '0',
    '--web', path.join(ROOT, 'web'), '--log-level', 'warn'], { stdio: ['ignore', 'ignore', err], cwd: dataDir });
  let exited = null;
  daemon.on('exit', (code) => (exited = code));
  await waitFor(() => {
    if (exited !== null) fail(`pgcmkd exited with ${exited}: ${fs.readFileSync(path.join(dataDir, 'stderr.log'), 'utf8')}`);
    port = readPort('port');
    httpPort = readPort('http-port');
    return port && httpPort;
  }, 'the port files');
  log(`pgcmkd on https ${port}, http ${httpPort}, data ${dataDir}`);
}

async function stopDaemon() {
  if (!daemon || daemon.exitCode !== null) return;
  const done = new Promise((r) => daemon.on('exit', (code, sig) => r(code ?? sig)));
  daemon.kill('SIGTERM');
  const rc = await done;
  if (rc !== 0) fail(`pgcmkd exited with ${rc} on SIGTERM`);
}

function rest(method, p, body) {
  const data = body === undefined ? null : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: httpPort, method, path: p,
      headers: { Host: `localhost:${httpPort}`,
        ...(data ? { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(data) } : {}) } },
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
        resolve({ status: res.statusCode, json, text });
      });
    });
    req.on('error', reject);
    if (data) req.write(data);
    req.end();
  });
}

async function ok(method, p, body) {
  const r = await rest(method, p, body);
  if (r.status >= 300) fail(`${method} ${p}: ${r.status} ${r.text}`);
  return r.json;
}

async function settle() {
  await waitFor(async () => (await ok('POST', '/emulator/settle')).settled === true, 'the reconciler to settle');
}

// PyKMIP's client registers a 32-byte AES key named name with the client's files; its uid.
function registerKey(files, kmipPort, name) {
  const py = `
import os, sys
from kmip.core import enums
from kmip.pie import objects
from kmip.pie.client import ProxyKmipClient
c = ProxyKmipClient(hostname="127.0.0.1", port=int(sys.argv[1]), cert=sys.argv[2], key=sys.argv[3], ca=sys.argv[4], config_file="/dev/null")
with c:
    print(c.register(objects.SymmetricKey(enums.CryptographicAlgorithm.AES, 256, os.urandom(32),
          masks=[enums.CryptographicUsageMask.ENCRYPT, enums.CryptographicUsageMask.DECRYPT], name=sys.argv[5])))
`;
  return execFileSync('/usr/bin/python3', ['-c', py, String(kmipPort), files.certificate, files.key, files.caCertificate, name],
    { encoding: 'utf8', timeout: 30000, stdio: ['ignore', 'pipe', 'pipe'] }).trim().split('\n').pop();
}

async function run() {
  fs.mkdirSync(SCREENS, { recursive: true });
  await startDaemon();
  const info = await ok('GET', '/emulator/info');
  const kmipPort = info.ports.kmip;
  if (!kmipPort) fail(`no ports.kmip in /emulator/info: ${JSON.stringify(info.ports)}`);
  const cl = await ok('POST', '/emulator/kmip/clients', { name: 'jane_doe' });
  const uid = registerKey(cl.files, kmipPort, 'portal-principal');
  log(`client jane_doe registered object ${uid} on KMIP port ${kmipPort}`);

  const browser = await chromium.launch({ executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'] });
  const problems = [];
  try {
    const ctx = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1500, height: 1000 } });
    const page = await ctx.newPage();
    page.setDefaultTimeout(WAIT);
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    page.on('console', (m) => {
      if (m.type() === 'error' && /Content Security Policy|CORS|Refused/i.test(m.text())) problems.push(`console: ${m.text()}`);
    });
    page.on('dialog', (d) => d.accept());
    const base = `https://localhost:${port}/portal/`;
    const shot = async (name) => {
      await page.screenshot({ path: path.join(SCREENS, `${name}.png`), fullPage: true });
      log(`screenshot ${name}.png`);
    };
    const objRow = () => page.getByRole('row').filter({ has: page.getByText(uid, { exact: true }) });

    // 1. from the navigation to the KMIP page: server, client, object
    await page.goto(base);
    await page.getByRole('link', { name: 'KMIP server' }).click();
    await page.getByRole('heading', { name: 'KMIP server', level: 1 }).waitFor();
    await page.getByText(String(kmipPort), { exact: true }).waitFor();
    await page.getByRole('cell', { name: 'jane_doe', exact: true }).first().waitFor();
    await objRow().getByText('PreActive', { exact: true }).waitFor();
    await objRow().getByText('portal-principal', { exact: true }).waitFor();
    await objRow().getByText('AES 256', { exact: true }).waitFor();

    // 2. activate it in the portal; declare a database on it (REST); the page shows the dependency
    await page.getByRole('button', { name: 'Activate portal-principal' }).click();
    await page.getByText('Object portal-principal activated.').waitFor();
    await objRow().getByText('Active', { exact: true }).waitFor();
    const db = await ok('PUT', '/emulator/tde/databases/portal-db', { keyProvider: { type: 'kmip', host: '127.0.0.1', port: kmipPort,
      certPath: cl.files.certificate, keyPath: cl.files.key, caPath: cl.files.caCertificate }, principalKeyName: 'portal-principal' });
    if (db.principalKey.uniqueIdentifier !== uid) fail(`the database bound ${JSON.stringify(db.principalKey)}, not ${uid}`);
    await settle();
    await page.getByRole('list', { name: 'Databases using portal-principal' }).getByRole('link', { name: 'portal-db' }).waitFor();
    await page.getByTestId('tde-state').getByText('Ready', { exact: true }).waitFor();
    await shot('kmip-01-active-with-database');

    // 3. revoke it for key compromise: Compromised, the reason, the database Inaccessible
    await page.getByLabel('Revocation reason for portal-principal').selectOption('KeyCompromise');
    await page.getByRole('button', { name: 'Revoke portal-principal' }).click();
    await page.getByText('Object portal-principal revoked (KeyCompromise).').waitFor();
    await objRow().getByText('Compromised', { exact: true }).waitFor();
    await objRow().getByText('KeyCompromise', { exact: true }).waitFor();
    await settle();
    await page.getByTestId('tde-state').getByText('Inaccessible', { exact: true }).waitFor();
    await shot('kmip-02-revoked');
    log('revoked in the portal; the database is Inaccessible');

    // 4. the database's page: state, reason, and explain naming the object
    await page.getByRole('list', { name: 'Databases using portal-principal' }).getByRole('link', { name: 'portal-db' }).click();
    await page.getByRole('heading', { name: 'Self-managed database portal-db' }).waitFor();
    await page.getByTestId('state').getByText('Inaccessible', { exact: true }).waitFor();
    await page.getByTestId('reason').waitFor();
    await page.getByRole('heading', { name: 'Why (explain)' }).waitFor();
    await page.locator('section', { hasText: 'Why (explain)' }).getByText(uid).first().waitFor();
    log(`database page: ${await page.getByTestId('reason').textContent()}`);
    await shot('kmip-03-database-explained');

    // 5. destroy the key; create a client with the form and delete it
    await page.getByRole('link', { name: 'KMIP server' }).first().click();
    await page.getByRole('heading', { name: 'KMIP server', level: 1 }).waitFor();
    await page.getByRole('button', { name: 'Destroy portal-principal' }).click();
    await page.getByText('Object portal-principal destroyed.').waitFor();
    await objRow().getByText('DestroyedCompromised', { exact: true }).waitFor();
    await page.getByLabel('Client name').fill('portal-client');
    await page.getByRole('button', { name: 'Create client' }).click();
    await page.getByText(/^Client portal-client: certificate .*client_cert_portal-client\.pem/).waitFor();
    await page.getByRole('button', { name: 'Delete client portal-client' }).click();
    await page.getByText('Client portal-client deleted.').waitFor();
    await page.getByRole('button', { name: 'Delete client portal-client' }).waitFor({ state: 'detached' });
    await shot('kmip-04-destroyed');
    log('destroyed the key, created and deleted a client');
    if (problems.length) fail(`browser problems:\n${problems.join('\n')}`);
  } finally {
    await browser.close();
  }
}

let rc = 0;
try {
  await run();
  console.log(`KMIP browser test passed in ${((Date.now() - t0) / 1000).toFixed(1)} s; screenshots in ${SCREENS}`);
} catch (e) {
  rc = 1;
  console.error(`KMIP browser test FAILED: ${e.stack || e}`);
  try {
    console.error(fs.readFileSync(path.join(dataDir, 'stderr.log'), 'utf8').slice(-4000));
  } catch (_) {
    /* no log */
  }
}
try {
  await stopDaemon();
} catch (e) {
  rc = 1;
  console.error(String(e));
}
if (rc === 0) fs.rmSync(dataDir, { recursive: true, force: true });
process.exit(rc);
