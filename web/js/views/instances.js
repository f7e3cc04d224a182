// instances.js - self-managed PostgreSQL instances (#/postgres; pgcmkd --pg-mode real): each
// instance with its state, port, the pg_tde library, its server key's provider, key and state
// (the binding the reconciler checks), and create, restart, new password, delete. The password
// of a new login is shown once, in the message line.
import { emulator } from '../api.js';
import { h, Live, table, stateBadge, badge, action, form, field } from '../ui.js';

const enc = encodeURIComponent;

function providerText(p) {
  if (!p) return '—';
  if (p.type === 'kmip') return `KMIP ${p.host || '?'}:${p.port || '?'}`;
  if (p.type === 'vault-v2') return `Vault ${p.url || '?'} (mount ${p.mountPath || '?'})`;
  if (p.type === 'file') return `keyring file ${p.path || '?'}`;
  return p.type || '?';
}

function serverKey(k) {
  if (!k) return '— (not set)';
  return h('span', {},
    p(k.provider && k.provider.providerName), h('code', {}, k.name || '?'), ' on ', providerText(k.provider), ' ',
    h('span', { 'data-testid': 'key-state' }, stateBadge(k.state)),
    k.state === 'Inaccessible' ? h('span', { class: 'reason' }, ` ${k.reasonCode || ''}: ${k.reason || ''}`) : '');
}

function listOf(items) {
  return items.length ? h('ul', { class: 'chips' }, items.map((t) => h('li', {}, t))) : '—';
}

function p(name) {
  return name ? `${name}: ` : '';
}

export function postgresView() {
  const list = new Live('Instances');
  const name = h('input', { name: 'instanceName', required: true, pattern: '[a-z0-9][a-z0-9\\-]{1,61}[a-z0-9]', autocomplete: 'off' });
  const createForm = form({ 'aria-label': 'Create a self-managed instance' }, [
    h('h3', {}, 'Create an instance'),
    field('Name', name, '3-63 lower-case letters, digits and hyphens. The login is the superuser postgres.')[0],
    h('button', { type: 'submit' }, 'Create instance'),
  ], async () => {
    const i = await emulator('POST', '/emulator/postgres/instances', { name: name.value.trim() });
    name.value = '';
    return `Instance ${i.name} runs on port ${i.port}. Connect (the password is shown only now): ${i.connectionString}`;
  });
  const el = h('div', {},
    h('h1', {}, 'Self-managed PostgreSQL'),
    h('p', {}, 'Real PostgreSQL 15 instances with pgcmk\'s pg_tde emulation preloaded (docs/pg-tde.md). '
      + 'Their server key (pg_tde_set_server_key_using_global_key_provider) is checked like any key: '
      + 'when it is revoked or lost, logins are refused and a restart with pg_tde.wal_encrypt = on fails.'),
    h('section', { class: 'panel wide' }, list.el),
    h('section', { class: 'panel' }, createForm));

  async function refresh() {
    let v;
    try {
      v = (await emulator('GET', '/emulator/postgres/instances')).value || [];
    } catch (e) {
      list.fail(e);
      return;
    }
    list.show(v, (d) => table(['Instance', 'State', 'Port', 'pg_tde', 'Key providers', 'Principal keys', 'Server key', 'Logins', 'Connect', 'Actions'], d.map((x) => [
      h('strong', {}, x.name),
      h('span', { 'data-testid': 'instance-state' }, stateBadge(x.state)),
      String(x.port),
      x.pgTde && x.pgTde.library === 'loaded' ? badge('loaded', 'good') : badge('not installed', 'warn'),
      listOf(((x.pgTde && x.pgTde.providers) || []).map((q) => `${q.name} (${q.scope === 'global' ? 'global' : `database ${q.scope}`}): ${providerText({ type: q.type, ...q.options })}`)),
      listOf(((x.pgTde && x.pgTde.keys) || []).map((k) => `${k.target}: ${k.name}`)),
      serverKey(x.pgTde && x.pgTde.serverKey),
      x.instance && x.instance.logins === 'refused' ? badge('refused', 'bad') : badge('allowed', 'good'),
      h('code', {}, x.psql || ''),
      h('span', { class: 'actions' },
        action('Restart', async () => {
          await emulator('POST', `/emulator/postgres/instances/${enc(x.name)}/restart`);
          return `Instance ${x.name} restarted.`;
        }, { 'aria-label': `Restart ${x.name}` }),
        action('New password', async () => {
          const r = await emulator('POST', `/emulator/postgres/instances/${enc(x.name)}/resetPassword`);
          return `New password of ${r.adminLogin} on ${x.name} (shown only now): ${r.password}`;
        }, { 'aria-label': `New password for ${x.name}` }),
        action('Delete', async () => {
          if (!window.confirm(`Delete instance ${x.name}? Its data directory is removed.`)) return null;
          await emulator('DELETE', `/emulator/postgres/instances/${enc(x.name)}`);
          return `Instance ${x.name} deleted.`;
        }, { class: 'danger', 'aria-label': `Delete ${x.name}` })),
    ]), 'Self-managed instances'));
  }
  return { el, refresh };
}
