// home.js - resource groups and their resources; create a resource group.
import { AV, armList, arm, sub } from '../api.js';
import { h, Live, table, link, resourceHref, form, field } from '../ui.js';

export function homeView() {
  const groups = new Live('Resource groups');
  const name = h('input', { name: 'name', required: true, pattern: '[-\\w._()]+', autocomplete: 'off' });
  const loc = h('input', { name: 'location', value: 'eastus', required: true });
  const create = form({ 'aria-label': 'Create resource group' }, [
    h('h2', {}, 'Create a resource group'),
    field('Name', name)[0],
    field('Location', loc)[0],
    h('button', { type: 'submit' }, 'Create resource group'),
  ], async () => {
    const s = await sub();
    await arm('PUT', `/subscriptions/${s}/resourcegroups/${encodeURIComponent(name.value)}`, AV.groups, { location: loc.value });
    const n = name.value;
    name.value = '';
    return `Resource group ${n} created.`;
  });
  const el = h('div', {}, h('h1', {}, 'Resource groups'), groups.el, h('section', { class: 'panel' }, create));

  async function refresh() {
    try {
      const s = await sub();
      const [rgs, res] = await Promise.all([
        armList(`/subscriptions/${s}/resourcegroups`, AV.groups),
        armList(`/subscriptions/${s}/resources`, AV.groups),
      ]);
      const data = rgs.map((g) => ({
        name: g.name,
        location: g.location,
        resources: res.filter((r) => r.id.toLowerCase().startsWith(`${g.id.toLowerCase()}/`)).map((r) => ({ id: r.id, name: r.name, type: r.type })),
      }));
      groups.show(data, (d) =>
        table(
          ['Resource group', 'Location', 'Resources'],
          d.map((g) => [
            link(`#/group/${encodeURIComponent(g.name)}`, g.name),
            g.location,
            g.resources.length
              ? h('ul', { class: 'plain' }, g.resources.map((r) => h('li', {}, link(resourceHref(r.id), r.name), ' ', h('span', { class: 'type' }, r.type))))
              : 'none',
          ]),
        ),
      );
    } catch (e) {
      groups.fail(e);
    }
  }
  return { el, refresh };
}
