// resource.js - a resource page, by type.
import { AV, armGet, parseId } from '../api.js';
import { h, Live, dl, link } from '../ui.js';
import { clusterView } from './cluster.js';
import { serverView } from './server.js';
import { vaultView } from './vault.js';

export function resourceView(id) {
  const t = parseId(id).type.toLowerCase();
  if (t === 'microsoft.dbforpostgresql/servergroupsv2') return clusterView(id);
  if (t === 'microsoft.dbforpostgresql/servers') return serverView(id);
  if (t === 'microsoft.keyvault/vaults') return vaultView(id);
  return genericView(id);
}

function genericView(id) {
  const p = parseId(id);
  const av = p.type.toLowerCase() === 'microsoft.managedidentity/userassignedidentities' ? AV.identity : AV.groups;
  const live = new Live('Properties');
  const el = h('div', {}, h('h1', {}, p.name), h('p', {}, p.type, ' in ', link(`#/group/${encodeURIComponent(p.rg)}`, p.rg)), live.el);
  async function refresh() {
    try {
      const r = await armGet(id, av);
      live.show(r, (d) => [dl([['Id', d.id], ['Location', d.location], ['Principal id', d.properties && d.properties.principalId], ['Client id', d.properties && d.properties.clientId]]), h('pre', {}, JSON.stringify(d.properties || {}, null, 2))]);
    } catch (e) {
      live.fail(e);
    }
  }
  return { el, refresh };
}
