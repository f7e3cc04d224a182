// postgres.js - the PostgreSQL panel of a server or cluster: where its data lives (modeled, or
// a real PostgreSQL instance when pgcmkd runs with --pg-mode real), the instance's state, and
// how to connect: the libpq connection string (verify-full, no password) and the psql line,
// from GET /emulator/explain and GET /emulator/postgres/connection.
import { emulator } from '../api.js';
import { h, Live, dl, badge } from '../ui.js';

const instanceBadge = (s) => badge(s || 'unknown', s === 'running' ? 'good' : s === 'crashed' || s === 'stopped' ? 'bad' : 'warn');

export function postgresPanel(id) {
  const live = new Live('PostgreSQL');
  async function refresh() {
    let ex = null;
    let conn = null;
    let err = null;
    try {
      ex = await emulator('GET', `/emulator/explain?resourceId=${encodeURIComponent(id)}`);
      if (ex.dataPlane && ex.dataPlane.mode === 'real') {
        conn = await emulator('GET', `/emulator/postgres/connection?resourceId=${encodeURIComponent(id)}`);
      }
    } catch (e) {
      err = `${e.code}: ${e.message}`;
    }
    const dp = (ex && ex.dataPlane) || {};
    const inst = dp.instance || {};
    live.show({ dp, inst, conn, err }, (d) => {
      const real = d.dp.mode === 'real';
      const rows = [['Data plane', h('span', { 'data-testid': 'pg-mode' }, real ? badge('Real PostgreSQL', 'good') : badge('Modeled', ''))]];
      if (real) {
        rows.push(['Instance', h('span', { 'data-testid': 'pg-state' }, instanceBadge(d.inst.state))],
          ['Logins', d.inst.logins],
          ['Port', String(d.inst.port || (d.conn && d.conn.port) || '')],
          ['Database', d.conn ? d.conn.dbname : null],
          ['User', d.conn ? d.conn.user : null]);
      }
      const out = [dl(rows)];
      if (d.dp.text) out.push(h('p', {}, d.dp.text));
      if (d.conn) {
        out.push(h('h3', {}, 'Connection string'),
          h('pre', {}, h('code', { 'data-testid': 'pg-connection-string' }, d.conn.connectionString)),
          h('h3', {}, 'psql'),
          h('pre', {}, h('code', { 'data-testid': 'pg-psql' }, d.conn.psql)),
          h('p', {}, 'The password is the administrator password given at creation; it is never shown.'));
      } else if (!real && !d.err) {
        out.push(h('p', {}, 'Start pgcmkd with --pg-mode real to run a PostgreSQL 15 instance behind this database and connect to it with psql.'));
      }
      if (d.err) out.push(h('p', { class: 'msg error' }, d.err));
      return out;
    });
  }
  return { el: live.el, refresh };
}
