// encryption.js - the Data encryption panel: key URI, identity, key status, last check and why
// the database is inaccessible, from GET /emulator/explain?resourceId=.
import { emulator } from '../api.js';
import { h, Live, dl, table, fmtTime, stateBadge, badge, link, resourceHref } from '../ui.js';

export function encryptionPanel(id, extra) {
  const live = new Live('Data encryption');
  async function refresh(resource) {
    let ex = null;
    let exErr = null;
    try {
      ex = await emulator('GET', `/emulator/explain?resourceId=${encodeURIComponent(id)}`);
    } catch (e) {
      exErr = `${e.code}: ${e.message}`;
    }
    const de = (resource && resource.properties && resource.properties.dataEncryption) || {};
    live.show({ de, ex, exErr, x: extra ? extra() : null }, (d) => {
      const cmk = d.de.type === 'AzureKeyVault' || (d.ex && d.ex.keyUri);
      const out = [
        dl([
          ['Encryption', cmk ? 'Customer-managed key (Azure Key Vault)' : 'Service-managed key'],
          ['Key URI', d.de.primaryKeyUri || (d.ex && d.ex.keyUri)],
          ['Key source', d.ex && d.ex.keySource],
          ['Identity', d.ex && d.ex.identity ? link(resourceHref(d.ex.identity), d.ex.identity.split('/').pop()) : d.de.primaryUserAssignedIdentityId],
          ['Identity principal', d.ex && d.ex.principalId],
          ['Key status', d.ex ? h('span', { 'data-testid': 'key-status' }, d.ex.accessible ? badge('Accessible', 'good') : badge('Inaccessible', 'bad'), ' ', d.ex.access ? `(${d.ex.access})` : '') : '—'],
          ['Last key check', d.ex ? fmtTime(d.ex.lastCheck) : '—'],
          ['Why inaccessible', d.ex && !d.ex.accessible ? h('span', { class: 'reason', 'data-testid': 'reason' }, `${d.ex.reasonCode || ''}: ${d.ex.reason || ''}`) : null],
        ]),
      ];
      if (d.exErr) out.push(h('p', { class: 'msg error' }, `Explain: ${d.exErr}`));
      if (d.ex && d.ex.rules) {
        out.push(table(['Rule', 'OK', 'Detail'], d.ex.rules.map((r) => [r.rule, stateBadge(r.ok ? 'ok' : 'Failed'), r.detail || '']), 'Rules checked'));
      }
      return out;
    });
  }
  return { el: live.el, refresh };
}
