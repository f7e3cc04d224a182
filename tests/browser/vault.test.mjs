// vault.test.mjs - the portal's Vault API page in real headless Chromium (Debian's /usr/bin/chromium,
// driven by playwright-core). By REST on the Vault listener (root token of /emulator/info): seed 004's
// AppRole role kes-server with its policy, a KV v2 secret with two versions, a pg_tde token; a
// self-managed database declared on the secret portal-key (vault-v2 provider: the agent creates the
// key). In the portal, which calls the Vault API itself (CORS, the dev root token): open the page from
// the navigation, see the seal state, the mounts (type, version), the secrets with their versions and
// no value until "Reveal", the AppRole, the policies' text, the token accessors and the database under
// its secret; delete the secret's latest version and see the database Inaccessible, open its page
// (state, reason, explain naming the secret); seal and unseal; revoke the pg_tde token.
// Starts its own pgcmkd (--vault-port 0); no fixed sleeps.
//
//   PGCMKD=build/pgcmkd SCREENS=build/browser-screens node tests/browser/vault.test.mjs
import fs from 'node:fs';
import path from 'node:path';
import { Daemon, log, fail, main, withPage } from './harness.mjs';

const d = new Daemon('vault');
const dataDir = d.dataDir;
const ok = d.ok.bind(d);
const settle = d.settle.bind(d);

let vaultAddr = '';
const vault = d.vault.bind(d);

async function run() {
  await d.start(['--vault-port', '0']);
  const info = await ok('GET', '/emulator/info');
  const v = info.vault || fail(`no vault in /emulator/info: ${JSON.stringify(info.ports)}`);
  vaultAddr = v.address;
  if (!vaultAddr || !v.rootToken) fail(`vault.address / vault.rootToken missing: ${JSON.stringify(v)}`);
  // seed 004: the KES policy (KV v2), AppRole with the role kes-server
  await vault('PUT', 'sys/policies/acl/kes-policy', { policy: 'path "kv/data/*" {\n   capabilities = [ "create", "read" ]\n}\n' });
  await vault('POST', 'sys/auth/approle', { type: 'approle' });
  await vault('POST', 'auth/approle/role/kes-server', { token_num_uses: 0, secret_id_num_uses: 0, period: '5m', token_policies: ['kes-policy'] });
  await vault('POST', 'auth/approle/role/kes-server/secret-id');
  // a KV v2 secret with two versions (its value must not show until "Reveal")
  await vault('POST', 'secret/data/app/config', { data: { password: 'first-value' } });
  await vault('POST', 'secret/data/app/config', { data: { password: 'portal-hidden-value' } });
  // pg_tde's token and a database keyed by secret/portal-key (the agent creates the key)
  await vault('PUT', 'sys/policies/acl/pg-tde', { policy: 'path "secret/data/*" { capabilities = ["create", "read", "update"] }\npath "secret/metadata/*" { capabilities = ["read", "list"] }\npath "sys/mounts/secret" { capabilities = ["read"] }\n' });
  const tok = await vault('POST', 'auth/token/create', { policies: ['pg-tde'], display_name: 'pg_tde' });
  const tokenFile = path.join(dataDir, 'pg_tde.token');
  fs.writeFileSync(tokenFile, tok.auth.client_token, { mode: 0o600 });
  const accessor = tok.auth.accessor;
  const db = await ok('PUT', '/emulator/tde/databases/portal-vault-db', { keyProvider: { type: 'vault-v2', url: vaultAddr, mountPath: 'secret',
    tokenPath: tokenFile, caPath: path.join(dataDir, 'ca.pem') }, principalKeyName: 'portal-key' });
  if (db.state !== 'Ready') fail(`the database is ${db.state}: ${JSON.stringify(db)}`);
  await settle();
  log(`Vault at ${vaultAddr}; database portal-vault-db on secret/portal-key; pg_tde token ${accessor}`);

  await withPage(async (page, shot) => {
    const base = `https://localhost:${d.port}/portal/`;
    const secretRow = (id) => page.getByRole('row').filter({ has: page.getByText(id, { exact: true }) });

    // 1. from the navigation to the page: seal state, mounts, secrets (no values), AppRole, policies, tokens
    await page.goto(base);
    await page.getByRole('link', { name: 'Vault API' }).click();
    await page.getByRole('heading', { name: 'Vault API', level: 1 }).waitFor();
    await page.getByTestId('sealed').getByText('Unsealed', { exact: true }).waitFor();
    await page.getByText(vaultAddr, { exact: true }).first().waitFor();
    await page.getByRole('row').filter({ has: page.getByText('secret/', { exact: true }) }).getByText('v2', { exact: true }).waitFor();
    await page.getByRole('row').filter({ has: page.getByText('auth/approle/', { exact: true }) }).getByText('approle', { exact: true }).waitFor();
    await secretRow('secret/app/config').getByRole('cell', { name: '2', exact: true }).waitFor();
    await secretRow('secret/app/config').getByText(/^v1 /).waitFor();
    await secretRow('secret/app/config').getByText(/^v2 /).waitFor();
    if (await page.getByText('portal-hidden-value').count()) fail('a secret value shows before Reveal');
    await page.getByRole('row').filter({ has: page.getByText('kes-server', { exact: true }) }).getByText('kes-policy').waitFor();
    await page.getByText('kes-policy', { exact: true }).first().waitFor();
    await page.getByRole('button', { name: `Revoke token ${accessor}` }).waitFor();
    // the database under its secret
    await page.getByRole('list', { name: 'Databases using secret/portal-key' }).getByRole('link', { name: 'portal-vault-db' }).waitFor();
    await page.getByTestId('tde-state').getByText('Ready', { exact: true }).waitFor();
    await shot('vault-01-page');

    // 2. reveal a value on demand, hide it again
    await page.getByRole('button', { name: 'Reveal secret/app/config' }).click();
    await page.getByLabel('Value of secret/app/config').getByText('portal-hidden-value', { exact: true }).waitFor();
    await shot('vault-02-revealed');
    await page.getByRole('button', { name: 'Hide secret/app/config' }).click();
    await page.getByText('portal-hidden-value').waitFor({ state: 'detached' });

    // 3. delete the key's latest version: the database goes Inaccessible; its page explains why
    await page.getByRole('button', { name: 'Delete secret/portal-key' }).click();
    await page.getByText('Secret secret/portal-key deleted.').waitFor();
    await settle();
    await page.getByTestId('tde-state').getByText('Inaccessible', { exact: true }).waitFor();
    await page.getByRole('list', { name: 'Databases using secret/portal-key' }).getByText('Inaccessible', { exact: true }).waitFor();
    await shot('vault-03-secret-deleted');
    await page.getByRole('list', { name: 'Databases using secret/portal-key' }).getByRole('link', { name: 'portal-vault-db' }).click();
    await page.getByRole('heading', { name: 'Self-managed database portal-vault-db' }).waitFor();
    await page.getByTestId('state').getByText('Inaccessible', { exact: true }).waitFor();
    await page.getByTestId('reason').getByText(/VaultKeyNotFound/).waitFor();
    await page.getByText('secret', { exact: true }).first().waitFor();
    await page.locator('section', { hasText: 'Why (explain)' }).getByText(/portal-key/).first().waitFor();
    log(`database page: ${await page.getByTestId('reason').textContent()}`);
    await shot('vault-04-database-explained');

    // 4. seal and unseal from the page
    await page.getByRole('link', { name: 'Vault API' }).first().click();
    await page.getByRole('heading', { name: 'Vault API', level: 1 }).waitFor();
    await page.getByRole('button', { name: 'Seal', exact: true }).click();
    await page.getByText('Vault sealed.').waitFor();
    await page.getByTestId('sealed').getByText('Sealed', { exact: true }).waitFor();
    await page.getByText('Vault is sealed').first().waitFor();
    await shot('vault-05-sealed');
    await page.getByRole('button', { name: 'Unseal', exact: true }).click();
    await page.getByText('Vault unsealed.').waitFor();
    await page.getByTestId('sealed').getByText('Unsealed', { exact: true }).waitFor();

    // 5. revoke pg_tde's token by its accessor
    await page.getByRole('button', { name: `Revoke token ${accessor}` }).click();
    await page.getByText(`Token ${accessor} revoked.`).waitFor();
    await page.getByRole('button', { name: `Revoke token ${accessor}` }).waitFor({ state: 'detached' });
    await shot('vault-06-token-revoked');
    log('revealed, deleted, sealed/unsealed and revoked in the portal');
  });
}

await main('Vault', d, run);
