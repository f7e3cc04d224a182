// pgreal.test.mjs - the portal's PostgreSQL panel in real mode (pgcmkd --pg-mode real, issue 15):
// a single server's page shows "Real PostgreSQL", the running instance, the verify-full connection
// string and the psql line (no password). Skipped, saying why, when PostgreSQL 15 is not installed.
//
//   PGCMKD=build/pgcmkd SCREENS=build/browser-screens node tests/browser/pgreal.test.mjs
import fs from 'node:fs';
import { Daemon, log, main, withPage } from './harness.mjs';

const POSTGRES = '/usr/lib/postgresql/15/bin/postgres';
if (!fs.existsSync(POSTGRES)) {
  console.log(`pgreal browser test skipped: ${POSTGRES} is missing (apt-get install postgresql-15)`);
  process.exit(0);
}

const SUB = '00000000-0000-4000-8000-000000000001';
const RG = 'portal-real';
const d = new Daemon('pgreal');
fs.chmodSync(d.dataDir, 0o755); // the PostgreSQL user must traverse it

await main('pgreal', d, async () => {
  await d.start(['--pg-mode', 'real', '--pg-ports', '0']);
  const id = `/subscriptions/${SUB}/resourceGroups/${RG}/providers/Microsoft.DBforPostgreSQL/servers/portal-real-srv`;
  await d.ok('PUT', `/subscriptions/${SUB}/resourcegroups/${RG}?api-version=2021-04-01`, { location: 'eastus' });
  await d.lro('PUT', `${id}?api-version=2017-12-01`, { location: 'eastus',
    sku: { name: 'GP_Gen5_2', tier: 'GeneralPurpose', family: 'Gen5', capacity: 2 },
    properties: { createMode: 'Default', administratorLogin: 'pgadmin', administratorLoginPassword: 'P@ssw0rd-1234', version: '11' } });
  await withPage(async (page, shot) => {
    await page.goto(`https://localhost:${d.port}/portal/#/resource${id}`);
    await page.getByRole('heading', { name: 'Server portal-real-srv' }).waitFor();
    await page.getByTestId('pg-mode').getByText('Real PostgreSQL', { exact: true }).waitFor();
    await page.getByTestId('pg-state').getByText('running', { exact: true }).waitFor();
    const cs = await page.getByTestId('pg-connection-string').textContent();
    if (!/^host=portal-real-srv\.postgres\.database\.azure\.com hostaddr=127\.0\.0\.1 port=\d+ user=pgadmin dbname=postgres sslmode=verify-full sslrootcert=\/.*ca\.pem$/.test(cs)) {
      throw new Error(`unexpected connection string: ${cs}`);
    }
    const psql = await page.getByTestId('pg-psql').textContent();
    if (psql !== `psql '${cs}'`) throw new Error(`unexpected psql line: ${psql}`);
    if ((await page.content()).includes('P@ssw0rd-1234')) throw new Error('the page shows the password');
    await shot('11-server-real-postgres');
    log(`real instance shown: ${cs}`);
  }, { width: 1400, height: 1000 });
});
