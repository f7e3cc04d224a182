// kmip.js - the emulator's KMIP server (the key server pg_tde's KMIP provider talks to): client
// identities (create, delete), managed objects with their KMIP state (activate, revoke with a
// reason, destroy), the self-managed databases that depend on each object, and one database's
// state with its explanation (GET /emulator/explain on /emulator/tde/databases/{name}).
import { emulator, info } from '../api.js';
import { h, Live, dl, table, fmtTime, stateBadge, badge, action, form, field, link } from '../ui.js';

export const REVOCATION_REASONS = ['Unspecified', 'KeyCompromise', 'CACompromise', 'AffiliationChanged', 'Superseded',
  'CessationOfOperation', 'PrivilegeWithdrawn'];

const enc = encodeURIComponent;
const tdeHref = (name) => `#/tde/${enc(name)}`;

// KMIP object states: Active is the only one a key can be used in for protection.
function kmipState(s) {
  const kind = s === 'Active' ? 'good' : s === 'PreActive' ? 'warn' : 'bad';
  return h('span', { 'data-testid': 'kmip-state' }, badge(s || 'Unknown', kind));
}

function dates(o) {
  const rows = [['Initial', o.initialDate], ['Activated', o.activationDate], ['Deactivated', o.deactivationDate],
    ['Compromised', o.compromiseDate], ['Destroyed', o.destroyDate]].filter(([, v]) => v);
  return rows.length ? h('ul', { class: 'dates' }, rows.map(([k, v]) => h('li', {}, `${k} ${fmtTime(v)}`))) : '—';
}

function reasonText(o) {
  const r = o.revocationReason;
  if (!r) return '—';
  return h('span', { class: 'reason' }, r.code, r.message ? `: ${r.message}` : '');
}

export function kmipView() {
  const server = new Live('Server');
  const clients = new Live('Clients');
  const objects = new Live('Managed objects');
  const databases = new Live('Self-managed databases (pg_tde)');

  const clientName = h('input', { name: 'clientName', required: true, pattern: '[A-Za-z0-9_.\\-]{1,64}', autocomplete: 'off' });
  const clientForm = form({ 'aria-label': 'Create KMIP client' }, [
    h('h3', {}, 'Create a client'),
    field('Client name', clientName, 'The certificate subject CN; objects it registers are owned by it.')[0],
    h('button', { type: 'submit' }, 'Create client'),
  ], async () => {
    const c = await emulator('POST', '/emulator/kmip/clients', { name: clientName.value.trim() });
    clientName.value = '';
    const f = c.files || {};
    return `Client ${c.name}: certificate ${f.certificate || ''}, key ${f.key || ''}, CA ${f.caCertificate || ''}.`;
  });

  const el = h('div', {},
    h('h1', {}, 'KMIP server'),
    h('p', {}, 'The key server pg_tde\'s KMIP provider (',
      h('code', {}, 'pg_tde_add_global_key_provider_kmip'),
      ') talks to: mutual TLS with a client certificate, KMIP 1.0–1.4. Every change below is a KMIP state change a real server would make.'),
    h('div', { class: 'grid' }, server.el, h('section', { class: 'panel' }, clients.el, clientForm)),
    h('section', { class: 'panel wide' }, objects.el),
    h('section', { class: 'panel wide' }, databases.el));

  function objectActions(o) {
    const label = o.name || o.uniqueIdentifier;
    const reason = h('select', { name: 'reason', 'aria-label': `Revocation reason for ${label}` },
      REVOCATION_REASONS.map((r) => h('option', { value: r }, r)));
    const out = [];
    if (o.state === 'PreActive') {
      out.push(action('Activate', async () => {
        await emulator('POST', `/emulator/kmip/objects/${enc(o.uniqueIdentifier)}/activate`);
        return `Object ${label} activated.`;
      }, { 'aria-label': `Activate ${label}` }));
    }
    if (o.state === 'PreActive' || o.state === 'Active') {
      out.push(reason, action('Revoke', async () => {
        await emulator('POST', `/emulator/kmip/objects/${enc(o.uniqueIdentifier)}/revoke`, { reason: reason.value });
        return `Object ${label} revoked (${reason.value}).`;
      }, { 'aria-label': `Revoke ${label}` }));
    }
    if (!o.state || !o.state.startsWith('Destroyed')) {
      out.push(action('Destroy', async () => {
        if (!window.confirm(`Destroy ${label}? Its key material is gone for good.`)) return null;
        await emulator('POST', `/emulator/kmip/objects/${enc(o.uniqueIdentifier)}/destroy`);
        return `Object ${label} destroyed.`;
      }, { class: 'danger', 'aria-label': `Destroy ${label}` }));
    }
    return h('span', { class: 'actions' }, out.length ? out : '—');
  }

  async function refresh() {
    try {
      const i = await info();
      const k = i.kmip || {};
      server.show(k, (d) => dl([
        ['KMIP port', d.port],
        ['Host', '127.0.0.1'],
        ['Server certificate + CA (caPath)', d.serverCertificate ? h('code', {}, d.serverCertificate) : null],
        ['Client files', d.clientsDirectory ? h('code', {}, d.clientsDirectory) : null],
      ]));
    } catch (e) {
      server.fail(e);
    }
    try {
      const c = (await emulator('GET', '/emulator/kmip/clients')).value || [];
      clients.show(c, (d) => table(['Client', 'Created', 'Certificates', 'Actions'], d.map((x) => [
        h('strong', {}, x.name), fmtTime(x.createdAt), x.certificates ?? '—',
        action('Delete', async () => {
          if (!window.confirm(`Delete client ${x.name}? The server refuses its certificates from now on; its objects stay.`)) return null;
          await emulator('DELETE', `/emulator/kmip/clients/${enc(x.name)}`);
          return `Client ${x.name} deleted.`;
        }, { class: 'danger', 'aria-label': `Delete client ${x.name}` }),
      ])));
    } catch (e) {
      clients.fail(e);
    }
    let dbs = [];
    try {
      dbs = ((await emulator('GET', '/emulator/tde/databases')).value || []).filter((d) => (d.keyProvider || {}).type !== 'vault-v2');
    } catch (e) {
      databases.fail(e);
      dbs = null;
    }
    try {
      const objs = (await emulator('GET', '/emulator/kmip/objects')).value || [];
      const deps = {};
      for (const d of dbs || []) {
        const u = d.principalKey && d.principalKey.uniqueIdentifier;
        if (u) (deps[u] = deps[u] || []).push({ name: d.name, state: d.state });
      }
      objects.show({ objs, deps }, (d) => table(
        ['Unique ID', 'Owner', 'Name', 'State', 'Algorithm', 'Dates', 'Revocation reason', 'Databases', 'Actions'],
        d.objs.map((o) => [
          h('code', {}, o.uniqueIdentifier), o.owner || '—', o.name || '—', kmipState(o.state),
          o.cryptographicAlgorithm ? `${o.cryptographicAlgorithm} ${o.cryptographicLength || ''}`.trim() : (o.objectType || '—'),
          dates(o), reasonText(o),
          (d.deps[o.uniqueIdentifier] || []).length
            ? h('ul', { class: 'chips', 'aria-label': `Databases using ${o.name || o.uniqueIdentifier}` },
              d.deps[o.uniqueIdentifier].map((x) => h('li', {}, link(tdeHref(x.name), x.name), ' ', stateBadge(x.state))))
            : '—',
          objectActions(o),
        ]), 'Keys and other objects registered by KMIP clients'));
    } catch (e) {
      objects.fail(e);
    }
    if (dbs) {
      databases.show(dbs, (d) => table(['Database', 'KMIP server', 'Principal key', 'State', 'Why', 'Last check'], d.map((x) => {
        const kp = x.keyProvider || {};
        const pk = x.principalKey || {};
        return [
          link(tdeHref(x.name), x.name), `${kp.host || '?'}:${kp.port || '?'}`,
          h('span', {}, pk.name || '—', pk.uniqueIdentifier ? [' (', h('code', {}, pk.uniqueIdentifier), ')'] : ''),
          h('span', { 'data-testid': 'tde-state' }, stateBadge(x.state)),
          x.state === 'Inaccessible' ? h('span', { class: 'reason' }, `${x.reasonCode || ''}: ${x.reason || ''}`) : '—',
          fmtTime(x.lastCheck),
        ];
      })));
    }
  }
  return { el, refresh };
}

// One self-managed database: its key provider options, state and the explanation rule by rule.
export function tdeView(name) {
  const props = new Live('Database');
  const why = new Live('Why (explain)');
  const id = `/emulator/tde/databases/${enc(name)}`;
  const el = h('div', {},
    h('h1', {}, `Self-managed database ${name}`),
    h('p', { 'data-testid': 'provider-line' }, 'Encrypted by pg_tde with a principal key from its key provider.'),
    h('div', { class: 'grid' }, props.el, why.el));

  async function refresh() {
    let db;
    try {
      db = await emulator('GET', id);
    } catch (e) {
      props.fail(e);
      return;
    }
    const kp = db.keyProvider || {};
    const pk = db.principalKey || {};
    const line = el.querySelector('[data-testid="provider-line"]');
    if (kp.type === 'vault-v2') {
      line.replaceChildren('Encrypted by pg_tde with a principal key in a Vault KV v2 mount. ', link('#/vault-api', 'Vault API'));
      props.show(db, () => dl([
        ['State', h('span', { 'data-testid': 'state' }, stateBadge(db.state))],
        ['Why inaccessible', db.state === 'Inaccessible' ? h('span', { class: 'reason', 'data-testid': 'reason' }, `${db.reasonCode || ''}: ${db.reason || ''}`) : null],
        ['Vault (url)', kp.url ? h('code', {}, kp.url) : null],
        ['Namespace', kp.namespace || 'root'],
        ['Mount (mountPath)', kp.mountPath ? h('code', {}, kp.mountPath) : null],
        ['Token file (tokenPath)', kp.tokenPath ? h('code', {}, kp.tokenPath) : null],
        ['CA (caPath)', kp.caPath ? h('code', {}, kp.caPath) : null],
        ['Principal key (secret)', pk.name || db.principalKeyName],
        ['Last check', fmtTime(db.lastCheck)],
      ]));
    } else if (kp.type === 'kes') {
      line.replaceChildren('Encrypted with a data key from a KES server (generated at create, decrypted at each key check). ', link('#/kes', 'KES servers'));
      props.show(db, () => dl([
        ['State', h('span', { 'data-testid': 'state' }, stateBadge(db.state))],
        ['Why inaccessible', db.state === 'Inaccessible' ? h('span', { class: 'reason', 'data-testid': 'reason' }, `${db.reasonCode || ''}: ${db.reason || ''}`) : null],
        ['KES server (url)', kp.url ? h('code', {}, kp.url) : null],
        ['Identity', kp.identity ? h('code', {}, kp.identity) : null],
        ['Client certificate (certPath)', kp.certPath ? h('code', {}, kp.certPath) : null],
        ['CA (caPath)', kp.caPath ? h('code', {}, kp.caPath) : (kp.insecure ? 'not verified (insecure)' : null)],
        ['KES key', pk.name || db.principalKeyName],
        ['Last check', fmtTime(db.lastCheck)],
      ]));
    } else {
      line.replaceChildren('Encrypted by pg_tde with a principal key on a KMIP server. ', link('#/kmip', 'KMIP server'));
    }
    if (kp.type !== 'vault-v2' && kp.type !== 'kes') props.show(db, () => dl([
      ['State', h('span', { 'data-testid': 'state' }, stateBadge(db.state))],
      ['Why inaccessible', db.state === 'Inaccessible' ? h('span', { class: 'reason', 'data-testid': 'reason' }, `${db.reasonCode || ''}: ${db.reason || ''}`) : null],
      ['KMIP server', `${kp.host || '?'}:${kp.port || '?'}`],
      ['Client certificate (certPath)', kp.certPath ? h('code', {}, kp.certPath) : null],
      ['Client key (keyPath)', kp.keyPath ? h('code', {}, kp.keyPath) : null],
      ['CA (caPath)', kp.caPath ? h('code', {}, kp.caPath) : null],
      ['Principal key name', pk.name],
      ['Principal key object', pk.uniqueIdentifier ? h('code', {}, pk.uniqueIdentifier) : null],
      ['Last check', fmtTime(db.lastCheck)],
    ]));
    try {
      const ex = await emulator('GET', `/emulator/explain?resourceId=${enc(db.id || id)}`);
      why.show(ex, (d) => {
        const scalars = Object.entries(d).filter(([k, v]) => v !== null && typeof v !== 'object' && k !== 'resourceId');
        // keyProvider and principalKey are in the Database panel already
        const nested = Object.entries(d).filter(([k, v]) => v && typeof v === 'object' && !Array.isArray(v) && !['rules', 'keyProvider', 'principalKey'].includes(k));
        const out = [dl([
          ...scalars.map(([k, v]) => [k, k === 'accessible' ? (v ? badge('Accessible', 'good') : badge('Inaccessible', 'bad')) : String(v)]),
          ...nested.map(([k, v]) => [k, h('code', {}, JSON.stringify(v))]),
        ])];
        if (Array.isArray(d.rules)) {
          out.push(table(['Rule', 'OK', 'Detail'], d.rules.map((r) => [r.rule, stateBadge(r.ok ? 'ok' : 'Failed'), r.detail || '']), 'Rules checked'));
        }
        return out;
      });
    } catch (e) {
      why.fail(e);
    }
  }
  return { el, refresh };
}
