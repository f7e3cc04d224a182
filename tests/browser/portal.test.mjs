// portal.test.mjs - the portal in real headless Chromium (Debian's /usr/bin/chromium, driven by
// playwright-core): create a CMK cluster in the portal, remove the identity's unwrapKey permission
// on the vault page, see the cluster turn Inaccessible, grant it back, see it recover, restore it
// to a point in time, revalidate a single server's key after a revocation, and save screenshots. Starts its own pgcmkd; no fixed sleeps: the daemon is
// polled through POST /emulator/settle and the page is waited on for text.
//
//   PGCMKD=build/pgcmkd SCREENS=build/browser-screens node tests/browser/portal.test.mjs
import { Daemon, log, main, withPage } from './harness.mjs';

const SUB = '00000000-0000-4000-8000-000000000001';
const RG = 'portal-demo';
const d = new Daemon('portal');

async function prepare() {
  const info = await d.ok('GET', '/emulator/info');
  const arm = `/subscriptions/${SUB}/resourceGroups/${RG}/providers`;
  await d.ok('PUT', `/subscriptions/${SUB}/resourcegroups/${RG}?api-version=2021-04-01`, { location: 'eastus' });
  const mi = await d.ok('PUT', `${arm}/Microsoft.ManagedIdentity/userAssignedIdentities/portal-id?api-version=2023-01-31`, { location: 'eastus' });
  const vaultId = `${arm}/Microsoft.KeyVault/vaults/portalvault`;
  await d.ok('PUT', `${vaultId}?api-version=2023-07-01`, { location: 'eastus', properties: {
    tenantId: info.tenantId, sku: { family: 'A', name: 'standard' }, enablePurgeProtection: true, softDeleteRetentionInDays: 90,
    accessPolicies: [
      { tenantId: info.tenantId, objectId: info.admin.objectId, permissions: { keys: ['all'] } },
      { tenantId: info.tenantId, objectId: mi.properties.principalId, permissions: { keys: ['get', 'wrapKey', 'unwrapKey'] } }] } });
  const tok = await d.ok('POST', '/adfs/oauth2/token', { grant_type: 'client_credentials', client_id: info.admin.clientId,
    client_secret: info.admin.clientSecret, scope: 'https://vault.azure.net/.default' }, { form: true });
  const key = await d.ok('POST', '/keys/cmk/create?api-version=7.4', { kty: 'RSA', key_size: 2048 },
    { host: 'portalvault.vault.localhost', headers: { Authorization: `Bearer ${tok.access_token}` } });
  log(`prepared identity ${mi.properties.principalId}, vault, key ${key.key.kid}`);
  return { miId: mi.id, oid: mi.properties.principalId, vaultId, kid: key.key.kid, tenantId: info.tenantId,
    clusterId: `${arm}/Microsoft.DBforPostgreSQL/serverGroupsv2/portal-cluster`,
    serverId: `${arm}/Microsoft.DBforPostgreSQL/servers/portal-server` };
}

// --- the browser -----------------------------------------------------------------------------
await main('portal', d, async () => {
  await d.start();
  const p = await prepare();
  await withPage(async (page, shot) => {
    const base = `https://localhost:${d.port}/portal/`;
    const state = page.getByTestId('state');

    // 1. create the CMK cluster with the portal's form
    await page.goto(`${base}#/group/${RG}`);
    await page.getByRole('heading', { name: `Resource group ${RG}` }).waitFor();
    await page.locator(`select[name=identity] option[value="${p.miId}"]`).waitFor({ state: 'attached' });
    await page.getByLabel('Cluster name').fill('portal-cluster');
    await page.getByLabel('Administrator password').fill('P@ssw0rd-1234');
    await page.getByLabel('Data encryption').selectOption('AzureKeyVault');
    await page.getByLabel('User-assigned identity').selectOption(p.miId);
    await page.getByLabel('Key URI').fill(p.kid);
    await shot('01-create-cluster-form');
    await page.getByRole('button', { name: 'Create cluster' }).click();
    await page.getByRole('heading', { name: 'Cluster portal-cluster' }).waitFor();
    await state.getByText('Ready', { exact: true }).waitFor();
    await page.getByTestId('key-status').getByText('Accessible', { exact: true }).waitFor();
    // the PostgreSQL panel: this daemon runs --pg-mode modeled, so no connection string
    await page.getByTestId('pg-mode').getByText('Modeled', { exact: true }).waitFor();
    await shot('02-cluster-ready');
    log('cluster created in the portal and Ready');

    // 2. remove the identity's unwrapKey permission on the vault page
    await page.goto(`${base}#/resource${p.vaultId}`);
    await page.getByRole('heading', { name: 'Key vault portalvault' }).waitFor();
    await page.getByRole('heading', { name: 'Key cmk' }).waitFor();
    await page.getByRole('button', { name: 'Remove unwrapKey from portal-id' }).click();
    await page.getByText('Removed unwrapKey from portal-id.').waitFor();
    await page.getByRole('button', { name: 'Remove unwrapKey from portal-id' }).waitFor({ state: 'detached' });
    await shot('03-vault-unwrapkey-removed');
    await d.settle();

    // 3. the cluster turns Inaccessible, and the page says why
    await page.goto(`${base}#/resource${p.clusterId}`);
    await state.getByText('Inaccessible', { exact: true }).waitFor();
    await page.getByTestId('reason').waitFor();
    log(`cluster Inaccessible: ${await page.getByTestId('reason').textContent()}`);
    await page.getByText('Unavailable', { exact: true }).first().waitFor();
    await shot('04-cluster-inaccessible');

    // 4. grant unwrapKey back with the permissions form; the cluster recovers
    await page.goto(`${base}#/resource${p.vaultId}`);
    await page.getByRole('heading', { name: 'Key cmk' }).waitFor();
    await page.locator(`select[name=principal] option[value="${p.oid}"]`).waitFor({ state: 'attached' });
    await page.getByLabel('Principal', { exact: true }).selectOption(p.oid);
    await page.getByLabel('unwrapKey', { exact: true }).check();
    await page.getByRole('button', { name: 'Add permissions' }).click();
    await page.getByText('Granted unwrapKey to portal-id.').waitFor();
    await page.getByRole('button', { name: 'Remove unwrapKey from portal-id' }).waitFor();
    await d.settle();
    await page.goto(`${base}#/resource${p.clusterId}`);
    await state.getByText('Ready', { exact: true }).waitFor();
    await page.getByTestId('key-status').getByText('Accessible', { exact: true }).waitFor();
    await shot('05-cluster-recovered');
    log('cluster recovered');

    // 5. point-in-time restore to service-managed keys
    await page.getByRole('button', { name: 'Use emulator time now' }).click();
    await page.getByLabel('New cluster name').fill('portal-restored');
    await page.getByLabel('Service-managed key').check();
    await page.getByRole('button', { name: 'Restore', exact: true }).click();
    await page.getByText(/Restored portal-cluster at .* to portal-restored\./).waitFor();
    await page.goto(`${base}#/resource${p.clusterId.replace(/portal-cluster$/, 'portal-restored')}`);
    await page.getByRole('heading', { name: 'Cluster portal-restored' }).waitFor();
    await state.getByText('Ready', { exact: true }).waitFor();
    await page.getByText('Service-managed key', { exact: true }).first().waitFor();
    await shot('06-restored-cluster');
    log('restored to a point in time with service-managed keys');

    // 6. the clock, the Activity Log, and the portal on the plain-HTTP listener (CORS to the vault)
    await page.goto(`${base}#/activity`);
    await page.getByRole('heading', { name: 'Activity log' }).waitFor();
    await page.getByRole('cell', { name: 'Microsoft.DBforPostgreSQL/serverGroupsv2/write' }).first().waitFor();
    const before = await page.locator('#clock-now').textContent();
    await page.getByLabel('Advance by (ISO 8601)').fill('P1D');
    await page.getByRole('button', { name: 'Advance clock' }).click();
    await page.getByText(/^Clock advanced by P1D/).waitFor();
    await page.waitForFunction((b) => document.getElementById('clock-now').textContent !== b, before);
    await shot('07-activity-log');
    await page.goto(`http://localhost:${d.httpPort}/portal/#/resource${p.vaultId}`);
    await page.getByRole('heading', { name: 'Key cmk' }).waitFor();
    await shot('08-vault-over-http');
    log('vault keys read over CORS from the plain-HTTP portal');

    // 7. a single server with a customer key (seed 002): its key access is revoked and granted
    //    back by REST; it stays Inaccessible until "Revalidate key" on its portal page
    await d.lro('PUT', `${p.serverId}?api-version=2017-12-01`, { location: 'eastus', identity: { type: 'SystemAssigned' },
      sku: { name: 'GP_Gen5_2', tier: 'GeneralPurpose', family: 'Gen5', capacity: 2 },
      properties: { createMode: 'Default', administratorLogin: 'pgadmin', administratorLoginPassword: 'P@ssw0rd-1234', version: '11' } });
    const srvOid = (await d.ok('GET', `${p.serverId}?api-version=2017-12-01`)).identity.principalId;
    const grant = { properties: { accessPolicies: [{ tenantId: p.tenantId, objectId: srvOid, permissions: { keys: ['get', 'wrapKey', 'unwrapKey'] } }] } };
    await d.ok('PUT', `${p.vaultId}/accessPolicies/add?api-version=2023-07-01`, grant);
    const kp = new URL(p.kid).pathname.split('/'); // /keys/{name}/{version}
    await d.lro('PUT', `${p.serverId}/keys/portalvault_${kp[2]}_${kp[3]}?api-version=2020-01-01`,
      { properties: { serverKeyType: 'AzureKeyVault', uri: p.kid } });
    await page.goto(`${base}#/resource${p.serverId}`);
    await page.getByRole('heading', { name: 'Server portal-server' }).waitFor();
    await state.getByText('Ready', { exact: true }).waitFor();
    await d.ok('PUT', `${p.vaultId}/accessPolicies/remove?api-version=2023-07-01`, grant);
    await d.settle();
    await state.getByText('Inaccessible', { exact: true }).waitFor();
    await d.ok('PUT', `${p.vaultId}/accessPolicies/add?api-version=2023-07-01`, grant);
    await d.settle();
    await page.reload();
    await page.getByRole('heading', { name: 'Server portal-server' }).waitFor();
    await state.getByText('Inaccessible', { exact: true }).waitFor(); // a server waits for revalidation
    await shot('09-server-inaccessible');
    await page.getByRole('button', { name: 'Revalidate key' }).click();
    await page.getByText(/^Key .* revalidated\.$/).waitFor();
    await state.getByText('Ready', { exact: true }).waitFor();
    await shot('10-server-revalidated');
    log('single server revoked, granted back and revalidated in the portal');
  }, { width: 1400, height: 1000 });
});

