// cluster.js - a PostgreSQL cluster (serverGroupsv2): state, data encryption, point-in-time
// restore with an encryption choice, read replicas, health and activity.
import { AV, armGet, armLro, emulator, parseId } from '../api.js';
import { h, Live, dl, stateBadge, fmtTime, link, resourceHref, form, field, notify, action, table } from '../ui.js';
import { encryptionPanel } from './encryption.js';
import { postgresPanel } from './postgres.js';
import { healthPanel, activityPanel } from './monitor.js';

const CLUSTER = 'Microsoft.DBforPostgreSQL/serverGroupsv2';

export function clusterView(id) {
  const p = parseId(id);
  const overview = new Live('Overview');
  const enc = encryptionPanel(id);
  const replicas = new Live('Read replicas');
  const pg = postgresPanel(id);
  const health = healthPanel(id);
  const activity = activityPanel(id);
  let current = null;

  // Restore: a new cluster from this one at a point in time; encryption kept, service-managed or another key.
  const rName = h('input', { name: 'restoreName', required: true, autocomplete: 'off' });
  const rTime = h('input', { name: 'pointInTime', required: true, size: 30, placeholder: '2026-01-01T00:00:00Z' });
  const choice = (value, label, checked) => {
    const r = h('input', { type: 'radio', name: 'encChoice', value, checked, id: `enc-${value}` });
    return h('div', { class: 'radio' }, r, h('label', { for: r.id }, label));
  };
  const rKey = h('input', { name: 'restoreKeyUri', type: 'url', size: 80, autocomplete: 'off' });
  const rIdentity = h('input', { name: 'restoreIdentity', size: 80, autocomplete: 'off' });
  const restore = form({ 'aria-label': 'Restore to a point in time' }, [
    h('h2', {}, 'Restore to a point in time'),
    field('New cluster name', rName)[0],
    field('Point in time (UTC)', rTime, 'ISO 8601, between the earliest restore time and now.')[0],
    h('fieldset', {}, h('legend', {}, 'Encryption of the restored cluster'),
      choice('keep', 'Keep the source cluster\'s key', true),
      choice('service', 'Service-managed key', false),
      choice('other', 'Another customer-managed key', false),
      field('Other key URI', rKey)[0],
      field('Other identity resource id', rIdentity, 'Defaults to the source cluster\'s identity.')[0]),
    h('button', { type: 'submit' }, 'Restore'),
  ], async (f) => {
    const how = f.querySelector('input[name=encChoice]:checked').value;
    const props = { sourceResourceId: id, pointInTimeUTC: rTime.value.trim(), sourceLocation: current ? current.location : 'eastus' };
    const body = { location: current ? current.location : 'eastus', properties: props };
    if (how === 'service') props.dataEncryption = { type: 'SystemManaged' };
    if (how === 'other') {
      const de = (current && current.properties.dataEncryption) || {};
      const mi = rIdentity.value.trim() || de.primaryUserAssignedIdentityId;
      props.dataEncryption = { type: 'AzureKeyVault', primaryKeyUri: rKey.value.trim(), primaryUserAssignedIdentityId: mi };
      body.identity = { type: 'UserAssigned', userAssignedIdentities: { [mi]: {} } };
    }
    const target = `/subscriptions/${p.sub}/resourceGroups/${p.rg}/providers/${CLUSTER}/${rName.value.trim()}`;
    notify(`Restoring to ${rName.value}…`);
    await armLro('PUT', target, AV.cluster, body);
    return `Restored ${p.name} at ${rTime.value.trim()} to ${rName.value.trim()}.`;
  });
  const nowBtn = action('Use emulator time now', async () => {
    rTime.value = (await emulator('GET', '/emulator/clock')).now;
  });

  const repName = h('input', { name: 'replicaName', required: true, autocomplete: 'off' });
  const replicaForm = form({ 'aria-label': 'Add read replica' }, [
    field('Replica name', repName)[0],
    h('button', { type: 'submit' }, 'Add read replica'),
  ], async () => {
    const target = `/subscriptions/${p.sub}/resourceGroups/${p.rg}/providers/${CLUSTER}/${repName.value.trim()}`;
    notify(`Creating replica ${repName.value}…`);
    await armLro('PUT', target, AV.cluster, { location: current ? current.location : 'eastus', properties: { sourceResourceId: id } });
    return `Replica ${repName.value.trim()} created.`;
  });

  const del = action('Delete cluster', async () => {
    if (!window.confirm(`Delete cluster ${p.name}?`)) return null;
    await armLro('DELETE', id, AV.cluster);
    location.hash = `#/group/${encodeURIComponent(p.rg)}`;
    return `Cluster ${p.name} deleted.`;
  }, { class: 'danger' });

  const el = h('div', {},
    h('h1', {}, `Cluster ${p.name}`),
    h('p', {}, 'PostgreSQL cluster (serverGroupsv2) in ', link(`#/group/${encodeURIComponent(p.rg)}`, p.rg), ' ', del),
    h('div', { class: 'grid' }, overview.el, enc.el),
    pg.el,
    h('section', { class: 'panel' }, restore, nowBtn),
    h('div', { class: 'grid' }, replicas.el, h('section', { class: 'panel' }, h('h2', {}, 'New read replica'), replicaForm)),
    h('div', { class: 'grid' }, health.el, activity.el));

  async function refresh() {
    try {
      current = await armGet(id, AV.cluster);
    } catch (e) {
      overview.fail(e);
      return;
    }
    const pr = current.properties;
    if (!rTime.value && pr.earliestRestoreTime) rTime.value = (await emulator('GET', '/emulator/clock')).now;
    overview.show({ pr, location: current.location }, (d) => dl([
      ['State', h('span', { 'data-testid': 'state' }, stateBadge(d.pr.state))],
      ['Provisioning', d.pr.provisioningState],
      ['Location', d.location],
      ['PostgreSQL', d.pr.postgresqlVersion],
      ['Coordinator', `${d.pr.coordinatorVCores} vCores, ${d.pr.coordinatorStorageQuotaInMb} MB`],
      ['Worker nodes', d.pr.nodeCount],
      ['High availability', d.pr.enableHa ? 'on' : 'off'],
      ['Earliest restore time', fmtTime(d.pr.earliestRestoreTime)],
      ['Source', d.pr.sourceResourceId ? link(resourceHref(d.pr.sourceResourceId), d.pr.sourceResourceId.split('/').pop()) : null],
      ['Server names', (d.pr.serverNames || []).map((s) => s.fullyQualifiedDomainName).join(', ')],
    ]));
    replicas.show(pr.readReplicas || [], (d) => table(['Replica'], d.map((r) => {
      const rid = typeof r === 'string' && r.startsWith('/') ? r : `/subscriptions/${p.sub}/resourceGroups/${p.rg}/providers/${CLUSTER}/${r}`;
      return [link(resourceHref(rid), rid.split('/').pop())];
    })));
    await Promise.all([enc.refresh(current), pg.refresh(), health.refresh(), activity.refresh()]);
  }
  return { el, refresh };
}

