// app.js - the portal shell: hash routes, the clock, and polling (every 1.5 s while the page is
// visible, and at once after every action) so changes show without a reload.
import { emulator } from './api.js';
import { h, notify, errorText, form, field, fmtTime } from './ui.js';
import { homeView } from './views/home.js';
import { groupView } from './views/group.js';
import { resourceView } from './views/resource.js';
import { activityView } from './views/activity.js';
import { deletedView } from './views/deleted.js';
import { kmipView, tdeView } from './views/kmip.js';
import { hvaultView } from './views/hvault.js';
import { kesView } from './views/kes.js';
import { postgresView } from './views/instances.js';

const POLL_MS = 1500;
const main = document.getElementById('main');
let view = null;
let busy = false;

function route() {
  const hash = decodeURIComponent(location.hash.replace(/^#/, '')) || '/';
  if (hash.startsWith('/resource/')) return resourceView(hash.slice('/resource'.length));
  if (hash.startsWith('/group/')) return groupView(hash.slice('/group/'.length));
  if (hash === '/activity') return activityView();
  if (hash === '/deleted') return deletedView();
  if (hash === '/kmip') return kmipView();
  if (hash === '/vault-api') return hvaultView();
  if (hash === '/kes') return kesView();
  if (hash === '/postgres') return postgresView();
  if (hash.startsWith('/tde/')) return tdeView(hash.slice('/tde/'.length));
  return homeView();
}

function mount() {
  view = route();
  main.replaceChildren(view.el);
  document.getElementById('messages').replaceChildren();
  const hd = main.querySelector('h1');
  if (hd) {
    document.title = `${hd.textContent} · pgcmk portal`;
    hd.setAttribute('tabindex', '-1');
    hd.focus();
  }
  for (const a of document.querySelectorAll('nav a')) {
    if (a.getAttribute('href') === (location.hash || '#/')) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  refresh();
}

// The clock in the header: the virtual time every rule follows, and a way to advance it.
const clockNow = h('output', { id: 'clock-now', 'aria-live': 'off' }, '…');
const advance = h('input', { name: 'advance', value: 'P1D', size: 8, pattern: 'P.*', required: true });
const [advField] = field('Advance by (ISO 8601)', advance);
document.getElementById('clock').replaceChildren(
  h('span', { class: 'clock-label' }, 'Emulator time: '),
  clockNow,
  form({ class: 'inline', 'aria-label': 'Advance the clock' }, [advField, h('button', { type: 'submit' }, 'Advance clock')], async () => {
    const c = await emulator('POST', '/emulator/clock', { advance: advance.value.trim() });
    return `Clock advanced by ${advance.value.trim()}: now ${fmtTime(c.now)}.`;
  }),
);

async function refresh() {
  if (busy) return;
  busy = true;
  try {
    const c = await emulator('GET', '/emulator/clock');
    clockNow.textContent = fmtTime(c.now) + (c.frozen ? ' (frozen)' : '');
    if (view && view.refresh) await view.refresh();
  } catch (e) {
    notify(errorText(e), 'error');
  } finally {
    busy = false;
  }
}

window.addEventListener('hashchange', mount);
window.addEventListener('portal-refresh', () => refresh());
setInterval(() => {
  if (document.visibilityState === 'visible') refresh();
}, POLL_MS);
document.addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'visible') refresh();
});
mount();
