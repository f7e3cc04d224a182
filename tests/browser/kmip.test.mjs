// kmip.test.mjs - the portal's KMIP page in real headless Chromium (Debian's /usr/bin/chromium,
// driven by playwright-core): a KMIP client made by REST registers an AES key with PyKMIP's client
// (/usr/bin/python3); a self-managed database is declared on it. In the portal: open the page from
// the navigation, activate the key, see the database under it, revoke the key (KeyCompromise),
// see the object Compromised with its reason and the database Inaccessible, open the database's
// page (state, reason, explain naming the object), destroy the key, create and delete a client.
// Starts its own pgcmkd (--kmip-port 0); no fixed sleeps.
//
//   PGCMKD=build/pgcmkd SCREENS=build/browser-screens node tests/browser/kmip.test.mjs
import { execFileSync } from 'node:child_process';
import { Daemon, log, fail, main, withPage } from './harness.mjs';

const d = new Daemon('kmip');
const ok = d.ok.bind(d);
const settle = d.settle.bind(d);

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
  await d.start(['--kmip-port', '0']);
  const info = await ok('GET', '/emulator/info');
  const kmipPort = info.ports.kmip;
  if (!kmipPort) fail(`no ports.kmip in /emulator/info: ${JSON.stringify(info.ports)}`);
  const cl = await ok('POST', '/emulator/kmip/clients', { name: 'jane_doe' });
  const uid = registerKey(cl.files, kmipPort, 'portal-principal');
  log(`client jane_doe registered object ${uid} on KMIP port ${kmipPort}`);

  await withPage(async (page, shot) => {
    const base = `https://localhost:${d.port}/portal/`;
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
  });
}

await main('KMIP', d, run);
