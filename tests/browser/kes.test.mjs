// kes.test.mjs - the portal's KES page in real headless Chromium (Debian's /usr/bin/chromium, driven by
// playwright-core). By REST: seed 004's Vault side (K/V v1 at kv/, the kes-policy, AppRole role
// kes-server with its role id and secret id), then a KES server created with POST
// /emulator/kes/servers from a config (JSON is YAML) with an admin identity, a policy with an
// application identity and a key required at start; a key created by a real KES client (cli/pgcmk
// kes, mTLS with an API key); and, when pgcmkd has the "kes" key provider, a self-managed database
// keyed by that KES key. In the portal: open the KES page from the navigation, see the server
// (address, admin identity, keystore endpoint/engine/version and reachable), its keys (and the
// database on the key), its policy with the identity, the audit log with the key's creation; delete
// the key with the KES client and see the database go Inaccessible; delete the server from the page.
// Starts its own pgcmkd (--vault-port 0); no fixed sleeps.
//
//   PGCMKD=build/pgcmkd SCREENS=build/browser-screens node tests/browser/kes.test.mjs
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { ROOT, Daemon, log, fail, main, withPage } from './harness.mjs';

const d = new Daemon('kes');
const dataDir = d.dataDir;
const rest = d.rest.bind(d);
const ok = d.ok.bind(d);
const settle = d.settle.bind(d);

let vaultAddr = '';
const vault = d.vault.bind(d);

// KES's published test keys (key-providers.md 5.3): the admin and an application
const ADMIN_KEY = 'kes:v1:AD9E7FSYWrMD+VjhI6q545cYT9YOyFxZb7UnjEepYDRc';
const ADMIN_ID = '3ecfcdf38fcbe141ae26a1030f81e96b753365a46760ae6b578698a97c59fd22';
const APP_ID = 'ea9826089311fe44d7590408ede9150f7c637b6cab0a91ee6fe1aa5d9fb366f6';
let kesServer = '';

// a real KES client: cli/pgcmk kes with the admin's API key (mTLS, a certificate made by openssl)
function kes(...args) {
  return execFileSync(path.join(ROOT, 'cli', 'pgcmk'), ['kes', ...args, '-k'], { encoding: 'utf8',
    env: { ...process.env, KES_SERVER: kesServer, KES_API_KEY: ADMIN_KEY, TMPDIR: dataDir } });
}

async function run() {
  await d.start(['--vault-port', '0']);
  const info = await ok('GET', '/emulator/info');
  vaultAddr = (info.vault || fail(`no vault in /emulator/info: ${JSON.stringify(info.ports)}`)).address;
  // seed 004, K/V v1
  await vault('POST', 'sys/mounts/kv', { type: 'kv', options: { version: '1' } });
  await vault('PUT', 'sys/policies/acl/kes-policy', { policy: 'path "kv/*" {\n   capabilities = [ "create", "read", "delete", "list" ]\n}\n' });
  await vault('POST', 'sys/auth/approle', { type: 'approle' });
  await vault('POST', 'auth/approle/role/kes-server', { token_num_uses: 0, secret_id_num_uses: 0, period: '5m', token_policies: ['kes-policy'] });
  const roleId = (await vault('GET', 'auth/approle/role/kes-server/role-id')).data.role_id;
  const secretId = (await vault('POST', 'auth/approle/role/kes-server/secret-id')).data.secret_id;
  const config = {
    address: '127.0.0.1:0',
    admin: { identity: ADMIN_ID },
    policy: { 'my-app': { allow: ['/v1/key/generate/portal-*', '/v1/key/decrypt/portal-*'], deny: ['/v1/key/generate/portal-internal*'], identities: [APP_ID] } },
    keys: [{ name: 'portal-required' }],
    cache: { expiry: { any: '5m0s', unused: '20s', offline: '0s' } },
    keystore: { vault: { endpoint: vaultAddr, engine: 'kv', version: 'v1', approle: { id: roleId, secret: secretId }, tls: { ca: path.join(dataDir, 'ca.pem') } } },
  };
  const srv = await ok('POST', '/emulator/kes/servers?name=portal-kes', config);
  kesServer = srv.url || `https://127.0.0.1:${srv.port}`;
  kes('key', 'create', 'portal-key');
  log(`KES server portal-kes at ${kesServer}; key portal-key created by a KES client`);
  // a database on the key, when this pgcmkd has the kes key provider (h-kagent's work)
  const put = await rest('PUT', '/emulator/tde/databases/portal-kes-db', { keyProvider: { type: 'kes', url: kesServer, apiKey: ADMIN_KEY, insecure: true },
    principalKeyName: 'portal-key' });
  const withDb = put.status < 300;
  if (withDb) {
    await settle();
    const db = await ok('GET', '/emulator/tde/databases/portal-kes-db');
    if (db.state !== 'Ready') fail(`the database is ${db.state}: ${JSON.stringify(db)}`);
    log('database portal-kes-db on KES key portal-key');
  } else {
    log(`no kes key provider here (${put.status} ${put.text.slice(0, 200)}): the page is checked without a database`);
  }

  await withPage(async (page, shot) => {
    const base = `https://localhost:${d.port}/portal/`;

    // 1. from the navigation: the server, its keystore and its health
    await page.goto(base);
    await page.getByRole('link', { name: 'KES' }).click();
    await page.getByRole('heading', { name: 'KES servers', level: 1 }).waitFor();
    const row = page.getByRole('row').filter({ has: page.getByText('portal-kes', { exact: true }) });
    await row.getByTestId('kes-url').getByText(kesServer, { exact: true }).waitFor();
    await row.locator(`[title="${ADMIN_ID}"]`).waitFor();
    await row.getByText(vaultAddr, { exact: true }).waitFor();
    await row.getByTestId('keystore-health').getByText('reachable', { exact: true }).waitFor();
    // 2. its keys, policy and identities, the audit log
    const server = page.getByRole('region', { name: 'KES server portal-kes' });
    await server.getByRole('cell', { name: 'portal-required', exact: true }).waitFor();
    await server.getByRole('cell', { name: 'portal-key', exact: true }).waitFor(); // GET .../keys: the keystore's names
    if (withDb) {
      await server.getByRole('list', { name: 'Databases using portal-key' }).getByRole('link', { name: 'portal-kes-db' }).waitFor();
      await server.getByTestId('tde-state').getByText('Ready', { exact: true }).waitFor();
    }
    const policy = server.getByRole('row').filter({ has: page.getByText('my-app', { exact: true }) });
    await policy.waitFor();
    // the policy's rules and identities, when the server's answer carries them (else its name)
    const full = (await ok('GET', '/emulator/kes/servers/portal-kes')).policies.some((p) => typeof p === 'object');
    if (full) {
      await policy.locator(`[title="${APP_ID}"]`).waitFor();
      await policy.getByText('/v1/key/generate/portal-internal*', { exact: true }).waitFor();
    }
    await server.getByText('/v1/key/create/portal-key', { exact: true }).first().waitFor();
    await shot('kes-01-page');

    // 3. the key deleted by a KES client: the database on it goes Inaccessible
    if (withDb) {
      kes('key', 'rm', 'portal-key');
      await settle();
      await server.getByRole('list', { name: 'Databases using portal-key' }).getByText('Inaccessible', { exact: true }).waitFor();
      await server.getByRole('row').filter({ has: page.getByText('portal-key', { exact: true }) }).getByText('not in the keystore').waitFor();
      await server.getByText('/v1/key/delete/portal-key', { exact: true }).first().waitFor();
      await shot('kes-02-key-deleted');
      // the database's page: its KES server and key, the reason, the explanation naming the key
      await server.getByRole('list', { name: 'Databases using portal-key' }).getByRole('link', { name: 'portal-kes-db' }).click();
      await page.getByRole('heading', { name: 'Self-managed database portal-kes-db' }).waitFor();
      await page.getByTestId('state').getByText('Inaccessible', { exact: true }).waitFor();
      await page.getByTestId('reason').getByText(/KesKeyNotFound/).waitFor();
      await page.getByText(kesServer, { exact: true }).first().waitFor();
      await page.locator('section', { hasText: 'Why (explain)' }).getByText(/portal-key/).first().waitFor();
      await shot('kes-03-database-explained');
      await page.getByRole('link', { name: 'KES servers' }).click();
      await page.getByRole('heading', { name: 'KES servers', level: 1 }).waitFor();
    }

    // 4. delete the server from the page
    await page.getByRole('button', { name: 'Delete KES server portal-kes' }).click();
    await page.getByText('KES server portal-kes deleted.').waitFor();
    await page.getByRole('region', { name: 'KES server portal-kes' }).waitFor({ state: 'detached' });
    await shot('kes-04-server-deleted');
    const left = await ok('GET', '/emulator/kes/servers');
    if ((left.value || left).length !== 0) fail(`servers left: ${JSON.stringify(left)}`);
    log('server, keystore, keys, policy, audit and database shown; key and server deleted');
  });
}

await main('KES', d, run);
