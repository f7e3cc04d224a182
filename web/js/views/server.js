// server.js - a PostgreSQL single server (Microsoft.DBforPostgreSQL/servers): state, data
// encryption, and Revalidate key (re-PUT of servers/keys/{vault}_{key}_{version}), as the Azure
// portal does when a server went Inaccessible and its key is usable again.
import { AV, armGet, armList, armLro, parseId, parseKid } from '../api.js';
import { h, Live, dl, stateBadge, fmtTime, link, action, table, notify } from '../ui.js';
import { encryptionPanel } from './encryption.js';
import { postgresPanel } from './postgres.js';
import { healthPanel, activityPanel } from './monitor.js';

export function keyName(kid) {
  const k = parseKid(kid);
  return `${k.vault}_${k.name}_${k.version}`;
}

export function serverView(id) {
  const p = parseId(id);
  const overview = new Live('Overview');
  const keys = new Live('Server keys');
  const enc = encryptionPanel(id);
  const pg = postgresPanel(id);
  const health = healthPanel(id);
  const activity = activityPanel(id);

  function revalidate(uri) {
    return action('Revalidate key', async () => {
      notify(`Revalidating ${uri}…`);
      await armLro('PUT', `${id}/keys/${keyName(uri)}`, AV.serverKeys, { properties: { serverKeyType: 'AzureKeyVault', uri } });
      return `Key ${uri} revalidated.`;
    });
  }

  const el = h('div', {},
    h('h1', {}, `Server ${p.name}`),
    h('p', {}, 'PostgreSQL single server in ', link(`#/group/${encodeURIComponent(p.rg)}`, p.rg)),
    h('div', { class: 'grid' }, overview.el, enc.el),
    keys.el,
    pg.el,
    h('div', { class: 'grid' }, health.el, activity.el));

  async function refresh() {
    let s;
    try {
      s = await armGet(id, AV.server);
    } catch (e) {
      overview.fail(e);
      return;
    }
    const pr = s.properties || {};
    overview.show({ pr, loc: s.location, sku: s.sku }, (d) => dl([
      ['State', h('span', { 'data-testid': 'state' }, stateBadge(d.pr.userVisibleState))],
      ['Location', d.loc],
      ['Version', d.pr.version],
      ['SKU', d.sku && d.sku.name],
      ['Replication role', d.pr.replicationRole],
      ['Master server', d.pr.masterServerId ? link(`#/resource${d.pr.masterServerId}`, d.pr.masterServerId.split('/').pop()) : null],
      ['Earliest restore date', fmtTime(d.pr.earliestRestoreDate)],
      ['Byok enforcement', d.pr.byokEnforcement],
    ]));
    try {
      const list = await armList(`${id}/keys`, AV.serverKeys);
      keys.show(list.map((k) => ({ name: k.name, uri: k.properties && k.properties.uri, type: k.properties && k.properties.serverKeyType, created: k.properties && k.properties.creationDate })), (d) =>
        table(['Key', 'URI', 'Type', 'Created', ''], d.map((k) => [h('span', { class: 'long' }, k.name), h('span', { class: 'long' }, k.uri), k.type, fmtTime(k.created), k.uri ? revalidate(k.uri) : ''])));
    } catch (e) {
      keys.fail(e);
    }
    await Promise.all([enc.refresh({ properties: {} }), pg.refresh(), health.refresh(), activity.refresh()]);
  }
  return { el, refresh };
}
