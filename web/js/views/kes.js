// kes.js - the KES servers of pgcmkd (MinIO KES-compatible key servers, each on its own mTLS port,
// keeping their keys in a Vault K/V engine over AppRole). The portal has no client certificate, so
// everything comes from the emulator's routes: /emulator/kes/servers (address, admin identity,
// keystore endpoint/engine/version/prefix and its health, the policies, the keys required at
// start), /emulator/kes/servers/{name}/keys (the keystore's names and the cache; if it fails, the
// keys the config and the databases name), /emulator/kes/servers/{name}/audit (the audit stream,
// polled), and /emulator/tde/databases with keyProvider.type "kes" (which database uses which key).
// A policy's rules and identities show when the server's answer carries them (today: names only).
import { emulator } from '../api.js';
import { h, Live, dl, table, fmtTime, stateBadge, badge, action, link } from '../ui.js';

const enc = encodeURIComponent;
const tdeHref = (name) => `#/tde/${enc(name)}`;
const AUDIT_LIMIT = 25;

const list = (x) => (Array.isArray(x) ? x : (x && (x.value || x.servers)) || []);
const short = (id) => (id && id.length > 20 ? `${id.slice(0, 16)}…` : id);

function identityCode(id) {
  if (!id) return '—';
  if (id === 'disabled') return badge('disabled', 'warn');
  return h('code', { title: id, class: 'identity' }, short(id));
}

function health(ks) {
  if (!ks) return '—';
  const ok = ks.reachable === true || ks.reachable === 'true';
  const unknown = ks.reachable === undefined || ks.reachable === null;
  return h('span', { 'data-testid': 'keystore-health' },
    unknown ? badge('unknown', 'warn') : ok ? badge('reachable', 'good') : badge('unreachable', 'bad'),
    !ok && ks.why ? h('span', { class: 'reason' }, ` ${ks.why}`) : null);
}

function keystoreText(ks) {
  if (!ks) return '—';
  const ver = String(ks.version || 1).replace(/^v?/, 'v');
  return h('span', {}, h('code', {}, ks.endpoint || '?'), ` ${ks.engine || 'kv'} ${ver}`,
    ks.prefix ? [' prefix ', h('code', {}, ks.prefix)] : null, ks.namespace ? [' namespace ', h('code', {}, ks.namespace)] : null);
}

// The policies of a server, whatever shape the route gives: names, or {name: {allow, deny, identities}}
// (or an array of {name, allow, deny, identities}).
function policyRows(s) {
  const p = s.policies || s.policy || [];
  if (Array.isArray(p)) return p.map((x) => (typeof x === 'string' ? { name: x } : x));
  return Object.entries(p).map(([name, v]) => ({ name, ...(v || {}) }));
}

const paths = (x) => (Array.isArray(x) ? x : Object.keys(x || {}));

function dbKey(d) {
  const kp = d.keyProvider || {};
  return (d.principalKey && d.principalKey.name) || kp.key || kp.keyName || d.principalKeyName || d.keyName || '';
}

function dbServer(d) {
  const kp = d.keyProvider || {};
  return kp.server || kp.name || kp.url || kp.endpoint || '';
}

// does the database's provider point at this server (by name or by its URL/port)?
function onServer(d, s) {
  const x = String(dbServer(d));
  if (!x) return true;
  return x === s.name || (s.url && x.replace(/\/$/, '') === s.url.replace(/\/$/, '')) || (s.port && x.endsWith(`:${s.port}`));
}

export function kesView() {
  const servers = new Live('Servers');
  const el = h('div', {},
    h('h1', {}, 'KES servers'),
    h('p', {}, 'MinIO KES-compatible key servers: mutual TLS on their own ports (the ',
      h('code', {}, 'kes'), ' CLI, ', h('code', {}, 'pgcmk kes'), ', MinIO), keys kept in a Vault K/V engine through AppRole. Create one with ',
      h('code', {}, 'pgcmk kes server create --config config.yml'), ' or ', h('code', {}, 'POST /emulator/kes/servers'), '.'),
    h('section', { class: 'panel wide' }, servers.el));
  const details = h('div', { 'data-testid': 'kes-details' });
  el.append(details);
  const per = new Map(); // server name -> its Live regions

  function regions(name) {
    if (per.has(name)) return per.get(name);
    const r = {
      keys: new Live(`Keys of ${name}`, 3),
      policies: new Live(`Policies and identities of ${name}`, 3),
      audit: new Live(`Audit log of ${name} (last ${AUDIT_LIMIT})`, 3),
    };
    r.el = h('section', { class: 'panel wide', 'aria-label': `KES server ${name}` }, h('h2', {}, `Server ${name}`),
      h('div', { class: 'grid' }, r.keys.el, r.policies.el), r.audit.el);
    per.set(name, r);
    return r;
  }

  async function refresh() {
    let all;
    try {
      all = list(await emulator('GET', '/emulator/kes/servers'));
    } catch (e) {
      servers.fail(e);
      return;
    }
    // the full view of each server (the list may be a summary)
    const full = [];
    for (const s of all) {
      try {
        full.push({ ...s, ...(await emulator('GET', `/emulator/kes/servers/${enc(s.name)}`)) });
      } catch (e) {
        full.push({ ...s, error: e.message });
      }
    }
    let dbs = [];
    try {
      dbs = list(await emulator('GET', '/emulator/tde/databases')).filter((d) => (d.keyProvider || {}).type === 'kes');
    } catch (_) {
      dbs = [];
    }
    servers.show(full, (d) => table(['Name', 'Address (KES_SERVER)', 'Admin identity', 'Keystore', 'Keystore health', 'Cache', 'Actions'],
      d.map((s) => [
        h('strong', {}, s.name),
        h('code', { 'data-testid': 'kes-url' }, s.url || s.address || '—'),
        identityCode(s.admin || s.root),
        keystoreText(s.keystore),
        health(s.keystore),
        s.cache ? Object.entries(s.cache.expiry || s.cache).map(([k, v]) => `${k} ${typeof v === 'object' ? JSON.stringify(v) : v}`).join(', ') : '—',
        action('Delete', async () => {
          if (!window.confirm(`Stop and delete the KES server ${s.name}? Its keys stay in Vault.`)) return null;
          await emulator('DELETE', `/emulator/kes/servers/${enc(s.name)}`);
          return `KES server ${s.name} deleted.`;
        }, { class: 'danger', 'aria-label': `Delete KES server ${s.name}` }),
      ]), 'KES servers and their Vault keystore'));

    const names = new Set(full.map((s) => s.name));
    for (const n of [...per.keys()]) {
      if (!names.has(n)) {
        per.get(n).el.remove();
        per.delete(n);
      }
    }
    for (const s of full) {
      const r = regions(s.name);
      if (!details.contains(r.el)) details.append(r.el);
      const mine = dbs.filter((d) => onServer(d, s));
      // keys: the daemon's key list when it has that route, else what the config and databases name
      let keys = null;
      let source = 'listed by the server';
      try {
        const k = await emulator('GET', `/emulator/kes/servers/${enc(s.name)}/keys`);
        const cached = {};
        for (const c of k.cache || []) cached[c.name] = c;
        keys = (Array.isArray(k) ? k : k.names || k.keys || k.value || []).map((x) => (typeof x === 'string' ? { name: x } : x))
          .map((x) => ({ ...x, cache: cached[x.name] || null }));
        // a key a database names but the keystore does not have (deleted): shown as missing
        for (const n of mine.map(dbKey).filter(Boolean)) {
          if (!keys.some((x) => x.name === n)) keys.push({ name: n, missing: true });
        }
      } catch (e) {
        if (e.status !== 404 && e.status !== 405) r.keys.fail(e);
      }
      if (!keys) {
        source = 'named by the config (keys:) and by databases';
        const set = new Set([...(s.keys || []).map((x) => (typeof x === 'string' ? x : x.name)), ...mine.map(dbKey).filter(Boolean)]);
        keys = [...set].map((name) => ({ name }));
      }
      if (keys) r.keys.show({ keys, mine, source }, (d) => [h('p', { class: 'hint' }, `Keys ${d.source}.`), table(['Key', 'Cache', 'Databases'],
        d.keys.map((k) => {
          const users = d.mine.filter((x) => dbKey(x) === k.name);
          let cache = '—';
          if (k.missing) cache = badge('not in the keystore', 'bad');
          else if (k.cache) cache = k.cache.expiresAt ? `cached until ${fmtTime(k.cache.expiresAt)}` : 'cached';
          return [h('code', {}, k.name), cache,
            users.length
              ? h('ul', { class: 'chips', 'aria-label': `Databases using ${k.name}` },
                users.map((x) => h('li', {}, link(tdeHref(x.name), x.name), ' ', h('span', { 'data-testid': 'tde-state' }, stateBadge(x.state)),
                  x.state === 'Inaccessible' && x.reasonCode ? h('span', { class: 'reason' }, ` ${x.reasonCode}`) : null)))
              : '—'];
        }))]);
      const pols = policyRows(s);
      const rules = pols.some((p) => p.allow || p.deny || p.identities);
      r.policies.show({ pols, admin: s.admin || s.root, rules }, (d) => [
        dl([['Admin (root) identity', d.admin === 'disabled' ? 'disabled' : d.admin ? h('code', {}, d.admin) : '—']]),
        d.rules ? null : h('p', { class: 'hint' }, 'The rules and identities of a policy: ', h('code', {}, 'pgcmk kes policy show NAME'),
          ' and ', h('code', {}, 'pgcmk kes identity ls'), ' (as the admin).'),
        table(['Policy', 'Allow', 'Deny', 'Identities'], d.pols.map((p) => [
          h('strong', {}, p.name),
          paths(p.allow).length ? h('ul', { class: 'paths' }, paths(p.allow).map((x) => h('li', {}, h('code', {}, x)))) : '—',
          paths(p.deny).length ? h('ul', { class: 'paths' }, paths(p.deny).map((x) => h('li', {}, h('code', {}, x)))) : '—',
          (p.identities || []).length ? h('ul', { class: 'paths' }, p.identities.map((x) => h('li', {}, identityCode(x)))) : '—',
        ]))]);
      try {
        const ev = list(await emulator('GET', `/emulator/kes/servers/${enc(s.name)}/audit?limit=${AUDIT_LIMIT}`));
        r.audit.show(ev, (d) => table(['Time', 'Status', 'Identity', 'IP', 'API', 'Latency'], [...d].reverse().map((x) => {
          const rq = x.request || {};
          const rs = x.response || {};
          return [fmtTime(x.time), badge(String(rs.code ?? '?'), rs.code === 200 ? 'good' : 'bad'), identityCode(rq.identity),
            rq.ip || '—', h('code', {}, rq.path || '—'), rs.time !== undefined ? `${(Number(rs.time) / 1000).toFixed(2)} ms` : '—'];
        }), 'Newest first'));
      } catch (e) {
        r.audit.fail(e);
      }
    }
    if (!full.length) details.replaceChildren();
  }
  return { el, refresh };
}
