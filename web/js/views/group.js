// group.js - one resource group: its resources, and a form to create a PostgreSQL cluster
// (serverGroupsv2) encrypted with a customer-managed key.
import { AV, armList, armLro, sub } from '../api.js';
import { h, Live, table, link, resourceHref, form, field, notify } from '../ui.js';

const CLUSTER = 'Microsoft.DBforPostgreSQL/serverGroupsv2';
const IDENTITY = 'Microsoft.ManagedIdentity/userAssignedIdentities';

export function groupView(rgName) {
  const rg = decodeURIComponent(rgName);
  const resources = new Live('Resources');
  let identities = [];

  const name = h('input', { name: 'cluster', required: true, pattern: '[a-z0-9][-a-z0-9]{1,38}[a-z0-9]', autocomplete: 'off' });
  const loc = h('input', { name: 'location', value: 'eastus', required: true });
  const password = h('input', { name: 'password', type: 'password', required: true, value: '', autocomplete: 'new-password' });
  const encType = h('select', { name: 'encryption' },
    h('option', { value: 'AzureKeyVault' }, 'Customer-managed key (Azure Key Vault)'),
    h('option', { value: 'SystemManaged' }, 'Service-managed key'));
  const identity = h('select', { name: 'identity' });
  const keyUri = h('input', { name: 'keyUri', type: 'url', size: 80, autocomplete: 'off' });
  const create = form({ 'aria-label': 'Create PostgreSQL cluster' }, [
    h('h2', {}, 'Create a PostgreSQL cluster (Cosmos DB for PostgreSQL)'),
    field('Cluster name', name)[0],
    field('Location', loc)[0],
    field('Administrator password', password)[0],
    field('Data encryption', encType)[0],
    field('User-assigned identity', identity, 'The identity needs get, wrapKey and unwrapKey on the vault.')[0],
    field('Key URI', keyUri, 'https://{vault}.vault.localhost:PORT/keys/{name}/{version}')[0],
    h('button', { type: 'submit' }, 'Create cluster'),
  ], async () => {
    const s = await sub();
    const props = { administratorLoginPassword: password.value, postgresqlVersion: '15', coordinatorVCores: 4, coordinatorStorageQuotaInMb: 131072, nodeCount: 0 };
    const body = { location: loc.value, properties: props };
    if (encType.value === 'AzureKeyVault') {
      body.identity = { type: 'UserAssigned', userAssignedIdentities: { [identity.value]: {} } };
      props.dataEncryption = { type: 'AzureKeyVault', primaryKeyUri: keyUri.value.trim(), primaryUserAssignedIdentityId: identity.value };
    }
    const id = `/subscriptions/${s}/resourceGroups/${rg}/providers/${CLUSTER}/${name.value}`;
    notify(`Creating cluster ${name.value}…`);
    await armLro('PUT', id, AV.cluster, body);
    location.hash = resourceHref(id);
    return `Cluster ${name.value} created.`;
  });

  const el = h('div', {}, h('h1', {}, `Resource group ${rg}`), resources.el, h('section', { class: 'panel' }, create));

  async function refresh() {
    try {
      const s = await sub();
      const res = await armList(`/subscriptions/${s}/resourceGroups/${encodeURIComponent(rg)}/resources`, AV.groups);
      resources.show(res.map((r) => ({ id: r.id, name: r.name, type: r.type, location: r.location })), (d) =>
        table(['Name', 'Type', 'Location'], d.map((r) => [link(resourceHref(r.id), r.name), r.type, r.location])));
      const ids = res.filter((r) => r.type.toLowerCase() === IDENTITY.toLowerCase()).map((r) => r.id);
      if (JSON.stringify(ids) !== JSON.stringify(identities)) {
        identities = ids;
        const keep = identity.value;
        identity.replaceChildren(...ids.map((i) => h('option', { value: i }, i.split('/').pop())));
        if (ids.includes(keep)) identity.value = keep;
      }
    } catch (e) {
      resources.fail(e);
    }
  }
  return { el, refresh };
}
