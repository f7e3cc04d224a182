// deleted.js - soft-deleted vaults of the subscription: recover or purge.
import { AV, arm, armList, armLro, sub, info } from '../api.js';
import { h, Live, table, fmtTime, action } from '../ui.js';

export function deletedView() {
  const live = new Live('Soft-deleted vaults');
  const el = h('div', {}, h('h1', {}, 'Deleted key vaults'), live.el);
  async function refresh() {
    try {
      const s = await sub();
      const list = await armList(`/subscriptions/${s}/providers/Microsoft.KeyVault/deletedVaults`, AV.vault);
      const data = list.map((v) => ({ name: v.name, p: v.properties }));
      live.show(data, (d) => table(['Vault', 'Location', 'Deleted', 'Scheduled purge', 'Purge protection', 'Actions'], d.map((v) => [
        v.name, v.p.location, fmtTime(v.p.deletionDate), fmtTime(v.p.scheduledPurgeDate), v.p.purgeProtectionEnabled ? 'on' : 'off',
        h('span', { class: 'actions' },
          action('Recover', async () => {
            const i = await info();
            await arm('PUT', v.p.vaultId, AV.vault, { location: v.p.location, properties: { tenantId: i.tenantId, sku: { family: 'A', name: 'standard' }, createMode: 'recover' } });
            return `Vault ${v.name} recovered.`;
          }, { 'aria-label': `Recover vault ${v.name}` }),
          ' ',
          action('Purge', async () => {
            if (!window.confirm(`Purge vault ${v.name} and its keys for good?`)) return null;
            await armLro('POST', `/subscriptions/${s}/providers/Microsoft.KeyVault/locations/${v.p.location}/deletedVaults/${v.name}/purge`, AV.vault);
            return `Vault ${v.name} purged.`;
          }, { class: 'danger', 'aria-label': `Purge vault ${v.name}` })),
      ])));
    } catch (e) {
      live.fail(e);
    }
  }
  return { el, refresh };
}
