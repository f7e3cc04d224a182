// hvault.js - the emulator's HashiCorp Vault-compatible API (the server pg_tde's vault-v2 provider
// and KES talk to), seen as the vault UI would show it, through the Vault listener itself with the
// dev root token of /emulator/info: seal state (seal, unseal), namespaces, mounts, secrets by path
// with their versions (metadata only: a value is fetched and shown only when "Reveal" is pressed),
// AppRoles, token accessors with their policies and TTL, ACL policies (read-only text), and the
// self-managed databases (keyProvider.type vault-v2) that depend on each secret.
import { emulator, info, hv } from '../api.js';
import { h, Live, dl, table, fmtTime, stateBadge, badge, action, link } from '../ui.js';

const enc = encodeURIComponent;
const tdeHref = (name) => `#/tde/${enc(name)}`;
const MAX_SECRETS = 200;
const MAX_TOKENS = 100;
const trim = (s) => String(s || '').replace(/^\/+|\/+$/g, '');
// every path segment encoded, the slashes kept
const encPath = (p) => String(p).split('/').map(enc).join('/');

async function listKeys(path, ns) {
  try {
    const r = await hv('LIST', path, undefined, ns);
    return (r && r.data && r.data.keys) || [];
  } catch (e) {
    if (e.status === 404) return [];
    throw e;
  }
}

function ttlText(s) {
  if (s === undefined || s === null) return '—';
  if (Number(s) === 0) return 'never expires';
  const n = Number(s);
  if (n >= 3600) return `${Math.floor(n / 3600)}h${n % 3600 >= 60 ? `${Math.floor((n % 3600) / 60)}m` : ''}`;
  if (n >= 60) return `${Math.floor(n / 60)}m${n % 60 ? `${n % 60}s` : ''}`;
  return `${n}s`;
}

function versionList(meta) {
  const vs = Object.entries((meta && meta.versions) || {}).sort((a, b) => Number(a[0]) - Number(b[0]));
  if (!vs.length) return '—';
  return h('ul', { class: 'dates' }, vs.map(([n, v]) => {
    let st = badge('live', 'good');
    if (v.destroyed) st = badge('destroyed', 'bad');
    else if (v.deletion_time) st = badge('deleted', 'bad');
    return h('li', {}, `v${n} ${fmtTime(v.created_time)} `, st);
  }));
}

export function hvaultView() {
  const seal = new Live('Seal state');
  const namespaces = new Live('Namespaces');
  const mounts = new Live('Mounts');
  const secrets = new Live('Secrets');
  const approles = new Live('AppRoles');
  const tokens = new Live('Tokens (accessors)');
  const policies = new Live('ACL policies');
  const databases = new Live('Self-managed databases on Vault (pg_tde vault-v2)');
  let ns = ''; // the namespace the page shows ('' = root)
  const revealed = {}; // "ns|mount/path" -> the secret's data, only after "Reveal"

  const nsSelect = h('select', { name: 'namespace', 'aria-label': 'Namespace shown' }, h('option', { value: '' }, 'root'));
  nsSelect.addEventListener('change', () => {
    ns = nsSelect.value;
    window.dispatchEvent(new Event('portal-refresh'));
  });

  const el = h('div', {},
    h('h1', {}, 'Vault API'),
    h('p', {}, 'The HashiCorp Vault-compatible API pg_tde\'s vault-v2 provider (',
      h('code', {}, 'pg_tde_add_global_key_provider_vault_v2'),
      ') and KES talk to, on its own listener. This page calls it directly with the dev root token. Secret values stay hidden unless you press Reveal.'),
    h('div', { class: 'grid' }, seal.el, namespaces.el),
    h('section', { class: 'panel wide' }, mounts.el),
    h('section', { class: 'panel wide' }, secrets.el),
    h('section', { class: 'panel wide' }, databases.el),
    h('div', { class: 'grid' }, approles.el, policies.el),
    h('section', { class: 'panel wide' }, tokens.el));

  function secretActions(s) {
    const id = `${s.mount}${s.path}`;
    const key = `${ns}|${id}`;
    const out = [];
    if (revealed[key]) {
      out.push(action('Hide', async () => {
        delete revealed[key];
        return null;
      }, { 'aria-label': `Hide ${id}` }));
    } else {
      out.push(action('Reveal', async () => {
        const r = await hv('GET', s.version === 2 ? `${s.mount}data/${encPath(s.path)}` : `${s.mount}${encPath(s.path)}`, undefined, ns);
        revealed[key] = (s.version === 2 ? r.data && r.data.data : r.data) || {};
        return null;
      }, { 'aria-label': `Reveal ${id}` }));
    }
    out.push(action(s.version === 2 ? 'Delete latest' : 'Delete', async () => {
      if (!window.confirm(`Delete ${id}${s.version === 2 ? ' (its latest version, a soft delete)' : ''}? Databases keyed by it lose their key.`)) return null;
      await hv('DELETE', s.version === 2 ? `${s.mount}data/${encPath(s.path)}` : `${s.mount}${encPath(s.path)}`, undefined, ns);
      delete revealed[key];
      return `Secret ${id} deleted.`;
    }, { class: 'danger', 'aria-label': `Delete ${id}` }));
    return h('span', { class: 'actions' }, out);
  }

  async function walk(mount, version, prefix, out, depth) {
    const keys = await listKeys(version === 2 ? `${mount}metadata/${encPath(prefix)}` : `${mount}${encPath(prefix)}`, ns);
    for (const k of keys) {
      if (out.length >= MAX_SECRETS) return;
      if (k.endsWith('/')) {
        if (depth < 8) await walk(mount, version, prefix + k, out, depth + 1);
        continue;
      }
      const s = { mount, path: prefix + k, version, meta: null };
      if (version === 2) {
        try {
          s.meta = (await hv('GET', `${mount}metadata/${encPath(s.path)}`, undefined, ns)).data;
        } catch (e) {
          s.meta = { error: e.message };
        }
      }
      out.push(s);
    }
  }

  async function refresh() {
    const i = await info();
    const v = i.vault || {};
    try {
      const st = await hv('GET', 'sys/seal-status');
      seal.show({ st, addr: v.address }, (d) => [dl([
        ['Address (VAULT_ADDR)', d.addr ? h('code', {}, d.addr) : null],
        ['Sealed', h('span', { 'data-testid': 'sealed' }, d.st.sealed ? badge('Sealed', 'bad') : badge('Unsealed', 'good'))],
        ['Unseal keys', `threshold ${d.st.t} of ${d.st.n}${d.st.sealed ? `, progress ${d.st.progress}/${d.st.t}` : ''}`],
        ['Version', d.st.version],
        ['CA (VAULT_CACERT, pg_tde ca_path)', v.caCertificate && !String(v.caCertificate).startsWith('-----') ? h('code', {}, v.caCertificate) : null],
      ]), h('p', { class: 'actions' }, d.st.sealed
        ? action('Unseal', async () => {
          const keys = v.unsealKeys || [];
          let r = null;
          for (const k of keys) {
            r = await hv('PUT', 'sys/unseal', { key: k });
            if (!r.sealed) break;
          }
          return r && !r.sealed ? 'Vault unsealed.' : 'Vault is still sealed.';
        })
        : action('Seal', async () => {
          if (!window.confirm('Seal the Vault? Every client gets 503 "Vault is sealed" until it is unsealed.')) return null;
          await hv('PUT', 'sys/seal');
          return 'Vault sealed.';
        }, { class: 'danger' }))]);
    } catch (e) {
      seal.fail(e);
    }
    try {
      const names = (await listKeys('sys/namespaces', '')).map(trim);
      const want = ['', ...names];
      const have = [...nsSelect.options].map((o) => o.value);
      if (want.join('\n') !== have.join('\n')) {
        nsSelect.replaceChildren(...want.map((n) => h('option', { value: n }, n || 'root')));
        if (!want.includes(ns)) ns = '';
        nsSelect.value = ns;
      }
      namespaces.show(names, (d) => [h('p', {}, 'Each namespace is an isolated tree of mounts, policies and tokens (X-Vault-Namespace or a path prefix).'),
        d.length ? h('ul', { class: 'chips', 'aria-label': 'Namespaces' }, d.map((n) => h('li', {}, h('code', {}, `${n}/`)))) : h('p', {}, 'Only the root namespace.')]);
      if (!namespaces.body.contains(nsSelect)) namespaces.body.append(h('p', {}, h('label', {}, 'Show namespace ', nsSelect)));
    } catch (e) {
      namespaces.fail(e);
    }
    let kvMounts = [];
    try {
      const m = await hv('GET', 'sys/mounts', undefined, ns);
      const a = await hv('GET', 'sys/auth', undefined, ns);
      const entries = (x) => Object.entries((x && x.data) || x || {}).filter(([, y]) => y && typeof y === 'object' && y.type);
      const sec = entries(m);
      const auth = entries(a);
      kvMounts = sec.filter(([, y]) => y.type === 'kv').map(([p, y]) => ({ mount: p, version: String((y.options || {}).version || '1') === '2' ? 2 : 1 }));
      mounts.show({ sec, auth, ns }, (d) => table(['Path', 'Kind', 'Type', 'Version', 'Accessor', 'Description'], [
        ...d.sec.map(([p, y]) => [h('code', {}, p), 'secrets engine', y.type, y.type === 'kv' ? `v${(y.options || {}).version || '1'}` : '—', y.accessor || '—', y.description || '—']),
        ...d.auth.map(([p, y]) => [h('code', {}, `auth/${p}`), 'auth method', y.type, '—', y.accessor || '—', y.description || '—']),
      ], `Mounts in namespace ${d.ns || 'root'}`));
      // AppRoles of every approle auth mount
      const roles = [];
      for (const [p, y] of auth) {
        if (y.type !== 'approle') continue;
        for (const name of await listKeys(`auth/${p}role`, ns)) {
          let r = {};
          try {
            r = (await hv('GET', `auth/${p}role/${enc(name)}`, undefined, ns)).data || {};
          } catch (e) {
            r = { error: e.message };
          }
          let ids = [];
          try {
            ids = await listKeys(`auth/${p}role/${enc(name)}/secret-id`, ns);
          } catch (_) {
            ids = [];
          }
          roles.push({ mount: p, name, r, ids: ids.length });
        }
      }
      approles.show(roles, (d) => table(['Role', 'Mount', 'Policies', 'Token TTL', 'Period', 'Token uses', 'Secret ID uses', 'Secret IDs'], d.map((x) => [
        h('strong', {}, x.name), h('code', {}, `auth/${x.mount}`),
        (x.r.token_policies || x.r.policies || []).join(', ') || '—',
        x.r.token_ttl ? ttlText(x.r.token_ttl) : 'default', (x.r.token_period ?? x.r.period) ? ttlText(x.r.token_period ?? x.r.period) : '—', x.r.token_num_uses === 0 ? 'unlimited' : (x.r.token_num_uses ?? '—'),
        x.r.secret_id_num_uses === 0 ? 'unlimited' : (x.r.secret_id_num_uses ?? '—'), String(x.ids),
      ])));
    } catch (e) {
      mounts.fail(e);
      approles.fail(e);
    }
    let dbs = null;
    try {
      dbs = ((await emulator('GET', '/emulator/tde/databases')).value || []).filter((d) => (d.keyProvider || {}).type === 'vault-v2');
    } catch (e) {
      databases.fail(e);
    }
    const deps = {};
    for (const d of dbs || []) {
      const kp = d.keyProvider || {};
      const name = (d.principalKey && d.principalKey.name) || d.principalKeyName;
      const k = `${trim(kp.namespace)}|${trim(kp.mountPath)}/${name}`;
      (deps[k] = deps[k] || []).push({ name: d.name, state: d.state });
    }
    try {
      const all = [];
      for (const km of kvMounts) {
        if (all.length >= MAX_SECRETS) break;
        await walk(km.mount, km.version, '', all, 0);
      }
      const view = all.map((s) => ({ ...s, deps: deps[`${ns}|${trim(s.mount)}/${s.path}`] || [], shown: revealed[`${ns}|${s.mount}${s.path}`] || null }));
      secrets.show({ view, ns }, (d) => table(['Secret', 'Engine', 'Current version', 'Versions', 'Databases', 'Value', 'Actions'], d.view.map((s) => {
        const id = `${s.mount}${s.path}`;
        return [
          h('code', {}, id), `kv v${s.version}`,
          s.version === 2 ? String((s.meta && s.meta.current_version) ?? '—') : '—',
          s.version === 2 ? (s.meta && s.meta.error ? h('span', { class: 'reason' }, s.meta.error) : versionList(s.meta)) : '—',
          s.deps.length
            ? h('ul', { class: 'chips', 'aria-label': `Databases using ${id}` },
              s.deps.map((x) => h('li', {}, link(tdeHref(x.name), x.name), ' ', stateBadge(x.state))))
            : '—',
          s.shown
            ? h('dl', { class: 'props', 'aria-label': `Value of ${id}` }, Object.entries(s.shown).map(([k, v]) => [h('dt', {}, k), h('dd', {}, h('code', {}, typeof v === 'string' ? v : JSON.stringify(v)))]))
            : h('span', { class: 'hint' }, 'hidden'),
          secretActions(s),
        ];
      }), `KV secrets in namespace ${d.ns || 'root'} (metadata; values hidden)`));
    } catch (e) {
      secrets.fail(e);
    }
    if (dbs) {
      databases.show(dbs, (d) => table(['Database', 'Vault', 'Namespace', 'Mount', 'Secret', 'State', 'Why', 'Last check'], d.map((x) => {
        const kp = x.keyProvider || {};
        return [
          link(tdeHref(x.name), x.name), h('code', {}, kp.url || '?'), kp.namespace || 'root', h('code', {}, kp.mountPath || '?'),
          h('code', {}, (x.principalKey && x.principalKey.name) || x.principalKeyName || '—'),
          h('span', { 'data-testid': 'tde-state' }, stateBadge(x.state)),
          x.state === 'Inaccessible' ? h('span', { class: 'reason' }, `${x.reasonCode || ''}: ${x.reason || ''}`) : '—',
          fmtTime(x.lastCheck),
        ];
      })));
    }
    try {
      const names = await listKeys('sys/policies/acl', ns);
      const texts = [];
      for (const n of names) {
        try {
          const r = await hv('GET', `sys/policies/acl/${enc(n)}`, undefined, ns);
          texts.push({ n, text: (r.data && r.data.policy) || '' });
        } catch (e) {
          texts.push({ n, text: `(${e.message})` });
        }
      }
      policies.show(texts, (d) => d.length
        ? h('ul', { class: 'policies' }, d.map((x) => h('li', {}, h('details', {}, h('summary', {}, x.n), h('pre', { 'aria-label': `Policy ${x.n}` }, x.text || '(built in)')))))
        : h('p', {}, 'None.'));
    } catch (e) {
      policies.fail(e);
    }
    try {
      const acc = (await listKeys('auth/token/accessors', ns)).slice(0, MAX_TOKENS);
      const rows = [];
      for (const a of acc) {
        try {
          rows.push((await hv('POST', 'auth/token/lookup-accessor', { accessor: a }, ns)).data || { accessor: a });
        } catch (e) {
          if (e.status !== 400 && e.status !== 403 && e.status !== 404) throw e;
        }
      }
      rows.sort((x, y) => String(x.creation_time || '').localeCompare(String(y.creation_time || '')) || String(x.accessor).localeCompare(String(y.accessor)));
      tokens.show(rows, (d) => table(['Accessor', 'Display name', 'Policies', 'TTL', 'Expires', 'Uses left', 'Path', 'Actions'], d.map((t) => [
        h('code', {}, t.accessor), t.display_name || '—', (t.policies || []).join(', ') || '—',
        ttlText(t.ttl), t.expire_time ? fmtTime(t.expire_time) : 'never', t.num_uses ? String(t.num_uses) : 'unlimited', t.path || '—',
        (t.policies || []).includes('root')
          ? '—'
          : action('Revoke', async () => {
            if (!window.confirm(`Revoke the token ${t.accessor} (${t.display_name || ''})? Its children are revoked too.`)) return null;
            await hv('POST', 'auth/token/revoke-accessor', { accessor: t.accessor }, ns);
            return `Token ${t.accessor} revoked.`;
          }, { class: 'danger', 'aria-label': `Revoke token ${t.accessor}` }),
      ]), 'Tokens by accessor (the token ids themselves are never shown)'));
    } catch (e) {
      tokens.fail(e);
    }
  }
  return { el, refresh };
}
