// vault.js - a key vault: protection settings, access policies (add/remove permissions), keys with
// versions and attributes through the data plane (admin token), deleted keys (recover/purge).
import { AV, armGet, armList, arm, kv, kvList, parseId, parseKid, info, sub } from '../api.js';
import { h, Live, dl, table, fmtTime, stateBadge, action, form, field, uid } from '../ui.js';

const KEY_PERMS = ['get', 'list', 'create', 'update', 'import', 'delete', 'recover', 'purge', 'backup', 'restore',
  'wrapKey', 'unwrapKey', 'encrypt', 'decrypt', 'sign', 'verify', 'rotate', 'getrotationpolicy', 'setrotationpolicy', 'all'];

function toDate(s) {
  const d = new Date(s);
  return Number.isNaN(d.getTime()) ? null : Math.floor(d.getTime() / 1000);
}

export function vaultView(id) {
  const p = parseId(id);
  const vault = p.name;
  const props = new Live('Protection settings');
  const policies = new Live('Access policies');
  const keys = new Live('Keys');
  const deleted = new Live('Deleted keys');
  let names = {}; // principal object id -> display name
  let tenant = '';

  async function changePolicy(kind, objectId, perms) {
    await arm('PUT', `${id}/accessPolicies/${kind}`, AV.vault, {
      properties: { accessPolicies: [{ tenantId: tenant, objectId, permissions: { keys: perms } }] },
    });
    return `${kind === 'add' ? 'Granted' : 'Removed'} ${perms.join(', ')} ${kind === 'add' ? 'to' : 'from'} ${names[objectId] || objectId}.`;
  }

  // Add / remove permissions for a principal.
  const who = h('select', { name: 'principal' });
  const whoOther = h('input', { name: 'objectId', size: 40, autocomplete: 'off', placeholder: 'object id (optional)' });
  const permBoxes = KEY_PERMS.map((perm) => {
    const b = h('input', { type: 'checkbox', name: 'perm', value: perm, id: uid(`perm-${perm}`) });
    return h('span', { class: 'check' }, b, h('label', { for: b.id }, perm));
  });
  const policyForm = form({ 'aria-label': 'Change key permissions' }, [
    h('h3', {}, 'Change key permissions'),
    field('Principal', who)[0],
    field('Or object id', whoOther)[0],
    h('fieldset', {}, h('legend', {}, 'Key permissions'), permBoxes),
    h('button', { type: 'submit', value: 'add' }, 'Add permissions'),
    ' ',
    h('button', { type: 'submit', value: 'remove' }, 'Remove permissions'),
  ], async (f, submitter) => {
    const perms = [...f.querySelectorAll('input[name=perm]:checked')].map((x) => x.value);
    const oid = whoOther.value.trim() || who.value;
    if (!perms.length) throw new Error('Choose at least one permission.');
    if (!oid) throw new Error('Choose a principal.');
    const msg = await changePolicy(submitter && submitter.value === 'remove' ? 'remove' : 'add', oid, perms);
    f.querySelectorAll('input[name=perm]:checked').forEach((x) => (x.checked = false));
    return msg;
  });

  // Create a key.
  const keyName = h('input', { name: 'keyName', required: true, pattern: '[-a-zA-Z0-9]{1,127}', autocomplete: 'off' });
  const keyType = h('select', { name: 'kty' }, ['RSA 2048', 'RSA 3072', 'RSA 4096', 'EC P-256'].map((t) => h('option', { value: t }, t)));
  const keyForm = form({ 'aria-label': 'Create key' }, [
    h('h3', {}, 'Create a key'),
    field('Key name', keyName)[0],
    field('Type', keyType)[0],
    h('button', { type: 'submit' }, 'Create key'),
  ], async () => {
    const [kty, size] = keyType.value.split(' ');
    const body = kty === 'RSA' ? { kty, key_size: Number(size) } : { kty, crv: size };
    const k = await kv('POST', vault, `/keys/${encodeURIComponent(keyName.value)}/create`, body);
    keyName.value = '';
    return `Key created: ${k.key.kid}`;
  });

  const delVault = action('Delete vault', async () => {
    if (!window.confirm(`Delete vault ${vault}? It stays recoverable under Deleted vaults.`)) return null;
    await arm('DELETE', id, AV.vault);
    location.hash = '#/deleted';
    return `Vault ${vault} deleted (recoverable).`;
  }, { class: 'danger' });

  const el = h('div', {},
    h('h1', {}, `Key vault ${vault}`),
    h('p', {}, 'In ', h('a', { href: `#/group/${encodeURIComponent(p.rg)}` }, p.rg), ' ', delVault),
    h('div', { class: 'grid' }, props.el, h('section', { class: 'panel' }, policies.el, policyForm)),
    h('section', { class: 'panel wide' }, keys.el, keyForm),
    deleted.el);

  function versionRow(name, v) {
    const ver = parseKid(v.kid).version;
    const a = v.attributes || {};
    const exp = h('input', { type: 'text', size: 22, value: a.exp ? fmtTime(a.exp) : '', 'aria-label': `Expiry of ${name} version ${ver}`, placeholder: 'YYYY-MM-DDThh:mm:ssZ' });
    return [
      h('code', { title: v.kid }, ver),
      stateBadge(a.enabled ? 'Enabled' : 'Disabled'),
      fmtTime(a.nbf),
      fmtTime(a.exp),
      fmtTime(a.created),
      h('span', { class: 'actions' },
        action(a.enabled ? 'Disable' : 'Enable', async () => {
          await kv('PATCH', vault, `/keys/${name}/${ver}`, { attributes: { enabled: !a.enabled } });
          return `${name}/${ver} ${a.enabled ? 'disabled' : 'enabled'}.`;
        }, { 'aria-label': `${a.enabled ? 'Disable' : 'Enable'} ${name} version ${ver}` }),
        exp,
        action('Set expiry', async () => {
          const t = exp.value.trim() ? toDate(exp.value.trim()) : null;
          if (exp.value.trim() && t === null) throw new Error(`'${exp.value}' is not a date.`);
          await kv('PATCH', vault, `/keys/${name}/${ver}`, { attributes: { exp: t } });
          return t ? `${name}/${ver} expires at ${fmtTime(t)}.` : `${name}/${ver} no longer expires.`;
        }, { 'aria-label': `Set expiry of ${name} version ${ver}` })),
    ];
  }

  async function refresh() {
    let v;
    try {
      const i = await info();
      tenant = i.tenantId;
      v = await armGet(id, AV.vault);
      const ids = await armList(`/subscriptions/${await sub()}/providers/Microsoft.ManagedIdentity/userAssignedIdentities`, AV.identity).catch(() => []);
      names = { [i.admin.objectId]: 'pgcmk admin' };
      for (const x of ids) names[x.properties.principalId] = x.name;
    } catch (e) {
      props.fail(e);
      return;
    }
    const pr = v.properties;
    props.show(pr, (d) => dl([
      ['Vault URI', d.vaultUri],
      ['SKU', d.sku && d.sku.name],
      ['Soft delete', d.enableSoftDelete ? 'on' : 'off'],
      ['Retention (days)', d.softDeleteRetentionInDays],
      ['Purge protection', d.enablePurgeProtection ? 'on' : 'off'],
      ['RBAC authorization', d.enableRbacAuthorization ? 'on' : 'off'],
      ['Public network access', d.publicNetworkAccess],
    ]));
    const pol = (pr.accessPolicies || []).map((a) => ({ oid: a.objectId, name: names[a.objectId] || '', keys: (a.permissions && a.permissions.keys) || [] }));
    policies.show(pol, (d) => table(['Principal', 'Key permissions'], d.map((a) => [
      h('span', {}, a.name ? h('strong', {}, a.name) : null, a.name ? ' ' : null, h('code', {}, a.oid)),
      h('ul', { class: 'chips', 'aria-label': `Key permissions of ${a.name || a.oid}` }, a.keys.map((perm) => h('li', {}, perm, ' ',
        action('×', () => changePolicy('remove', a.oid, [perm]), { class: 'chip-x', 'aria-label': `Remove ${perm} from ${a.name || a.oid}`, title: `Remove ${perm}` })))),
    ])));
    const opts = [...new Set([...pol.map((a) => a.oid), ...Object.keys(names)])];
    const optKey = JSON.stringify(opts.map((o) => [o, names[o]]));
    if (who.dataset.key !== optKey) {
      const keep = who.value;
      who.dataset.key = optKey;
      who.replaceChildren(...opts.map((o) => h('option', { value: o }, names[o] ? `${names[o]} (${o})` : o)));
      if (opts.includes(keep)) who.value = keep;
    }
    try {
      const list = await kvList(vault, '/keys');
      const data = await Promise.all(list.map(async (k) => {
        const name = parseKid(k.kid).name;
        const vers = await kvList(vault, `/keys/${name}/versions`);
        vers.sort((x, y) => (y.attributes.created || 0) - (x.attributes.created || 0));
        return { name, versions: vers.map((x) => ({ kid: x.kid, attributes: x.attributes })) };
      }));
      keys.show(data, (d) => d.length ? d.map((k) => h('div', { class: 'key' },
        h('h3', {}, `Key ${k.name}`, ' ',
          action('Rotate', async () => {
            const r = await kv('POST', vault, `/keys/${k.name}/rotate`, {});
            return `New version ${parseKid(r.key.kid).version}.`;
          }, { 'aria-label': `Rotate ${k.name}` }),
          ' ',
          action('Delete', async () => {
            if (!window.confirm(`Delete key ${k.name}? Databases using it lose access.`)) return null;
            await kv('DELETE', vault, `/keys/${k.name}`);
            return `Key ${k.name} deleted (recoverable).`;
          }, { class: 'danger', 'aria-label': `Delete ${k.name}` })),
        table(['Version', 'Status', 'Not before', 'Expires', 'Created', 'Actions'], k.versions.map((x) => versionRow(k.name, x))))) : h('p', {}, 'No keys.'));
    } catch (e) {
      keys.fail(e);
    }
    try {
      const dk = await kvList(vault, '/deletedkeys');
      deleted.show(dk.map((k) => ({ name: parseKid(k.kid).name, deletedDate: k.deletedDate, purge: k.scheduledPurgeDate })), (d) =>
        table(['Key', 'Deleted', 'Scheduled purge', 'Actions'], d.map((k) => [k.name, fmtTime(k.deletedDate), fmtTime(k.purge), h('span', { class: 'actions' },
          action('Recover', async () => {
            await kv('POST', vault, `/deletedkeys/${k.name}/recover`);
            return `Key ${k.name} recovered.`;
          }, { 'aria-label': `Recover ${k.name}` }),
          ' ',
          action('Purge', async () => {
            if (!window.confirm(`Purge key ${k.name} for good?`)) return null;
            await kv('DELETE', vault, `/deletedkeys/${k.name}`);
            return `Key ${k.name} purged.`;
          }, { class: 'danger', 'aria-label': `Purge ${k.name}` }))])));
    } catch (e) {
      deleted.fail(e);
    }
  }
  return { el, refresh };
}

