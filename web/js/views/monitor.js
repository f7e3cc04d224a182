// monitor.js - Resource Health and Activity Log panels shared by the resource pages.
import { AV, armGet, armList, sub, emulator } from '../api.js';
import { h, Live, table, fmtTime, stateBadge, dl } from '../ui.js';

export function healthPanel(id) {
  const live = new Live('Resource health');
  async function refresh() {
    try {
      const base = `${id}/providers/Microsoft.ResourceHealth/availabilityStatuses`;
      const [cur, hist] = await Promise.all([armGet(`${base}/current`, AV.health), armList(base, AV.health)]);
      const data = { cur: cur.properties, hist: hist.map((x) => x.properties) };
      live.show(data, (d) => [
        dl([
          ['Availability', stateBadge(d.cur.availabilityState)],
          ['Title', d.cur.title],
          ['Summary', d.cur.summary],
          ['Since', fmtTime(d.cur.occuredTime || d.cur.occurredTime)],
        ]),
        h('details', {}, h('summary', {}, `History (${d.hist.length})`),
          table(['Occurred', 'State', 'Title'], d.hist.map((x) => [fmtTime(x.occuredTime || x.occurredTime), stateBadge(x.availabilityState), x.title || '']))),
      ]);
    } catch (e) {
      live.fail(e);
    }
  }
  return { el: live.el, refresh };
}

// Activity Log entries of the last 30 days (virtual clock); only those for `id` when given.
export function activityPanel(id, title = 'Activity log') {
  const live = new Live(title);
  async function refresh() {
    try {
      const s = await sub();
      const now = new Date((await emulator('GET', '/emulator/clock')).now);
      const since = new Date(now.getTime() - 30 * 86400e3).toISOString();
      let filter = `eventTimestamp ge '${since}'`;
      if (id) filter += ` and resourceUri eq '${id}'`;
      let rows;
      try {
        rows = await armList(`/subscriptions/${s}/providers/Microsoft.Insights/eventtypes/management/values`, AV.activity, { $filter: filter });
      } catch (e) {
        if (!id) throw e;
        rows = (await armList(`/subscriptions/${s}/providers/Microsoft.Insights/eventtypes/management/values`, AV.activity, { $filter: `eventTimestamp ge '${since}'` }))
          .filter((x) => (x.resourceId || '').toLowerCase() === id.toLowerCase());
      }
      rows.sort((a, b) => (a.eventTimestamp < b.eventTimestamp ? 1 : -1));
      const data = rows.slice(0, 100).map((x) => ({
        t: x.eventTimestamp,
        op: x.operationName && x.operationName.value,
        status: x.status && x.status.value,
        level: x.level,
        desc: x.description || '',
        res: x.resourceId,
      }));
      live.show(data, (d) =>
        table(['Time', 'Operation', 'Status', 'Level', 'Description'].concat(id ? [] : ['Resource']),
          d.map((x) => [fmtTime(x.t), h('span', { class: 'long' }, x.op), x.status, x.level, h('span', { class: 'long' }, x.desc)].concat(id ? [] : [(x.res || '').split('/').pop()]))));
    } catch (e) {
      live.fail(e);
    }
  }
  return { el: live.el, refresh };
}
