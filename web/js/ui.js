// ui.js - small DOM helpers: an element builder, live regions that re-render only when their
// data changed (so polling keeps focus and half-typed forms), buttons that report API errors.

export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'text') el.textContent = v;
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export function link(href, text) {
  return h('a', { href }, text);
}

export function resourceHref(id) {
  return `#/resource${id}`;
}

let uniq = 0;
export function uid(prefix) {
  uniq += 1;
  return `${prefix}-${uniq}`;
}

// A labelled form field; returns [wrapper, input].
export function field(label, input, hint) {
  input.id = input.id || uid('f');
  const hintEl = hint ? h('span', { class: 'hint', id: `${input.id}-hint` }, hint) : null;
  if (hintEl) input.setAttribute('aria-describedby', hintEl.id);
  return [h('div', { class: 'field' }, h('label', { for: input.id }, label), input, hintEl), input];
}

export function fmtTime(t) {
  if (t === null || t === undefined || t === '') return '—';
  const d = typeof t === 'number' ? new Date(t * 1000) : new Date(t);
  if (Number.isNaN(d.getTime())) return String(t);
  return d.toISOString().replace('.000Z', 'Z');
}

export function badge(text, kind) {
  return h('span', { class: `badge ${kind || ''}` }, text);
}

export function stateBadge(state) {
  const s = String(state || 'Unknown');
  const good = ['Ready', 'Succeeded', 'Available', 'Enabled', 'ok', 'true'];
  const bad = ['Inaccessible', 'Failed', 'Unavailable', 'Disabled', 'Dropping'];
  return badge(s, good.includes(s) ? 'good' : bad.includes(s) ? 'bad' : 'warn');
}

// The page-wide message line (role=status / role=alert).
export function notify(message, kind = 'info') {
  const box = document.getElementById('messages');
  if (!box) return;
  box.replaceChildren(h('p', { class: `msg ${kind}`, role: kind === 'error' ? 'alert' : 'status' }, message));
}

export function errorText(e) {
  return e && e.code ? `${e.code}: ${e.message}` : String((e && e.message) || e);
}

// A real <button>: disables itself while the action runs, shows the API's error message.
export function action(label, fn, attrs = {}) {
  const b = h('button', { type: 'button', ...attrs }, label);
  b.addEventListener('click', async () => {
    b.disabled = true;
    try {
      const done = await fn();
      if (typeof done === 'string') notify(done, 'ok');
    } catch (e) {
      notify(errorText(e), 'error');
    } finally {
      b.disabled = false;
      window.dispatchEvent(new Event('portal-refresh'));
    }
  });
  return b;
}

// A <form> whose submit runs fn(form) with the same error handling.
export function form(attrs, children, fn) {
  const f = h('form', attrs, children);
  f.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const btns = f.querySelectorAll('button');
    btns.forEach((b) => (b.disabled = true));
    try {
      const done = await fn(f, ev.submitter);
      if (typeof done === 'string') notify(done, 'ok');
    } catch (e) {
      notify(errorText(e), 'error');
    } finally {
      btns.forEach((b) => (b.disabled = false));
      window.dispatchEvent(new Event('portal-refresh'));
    }
  });
  return f;
}

// A region that shows data: re-rendered only when the data differ from last time. Errors are shown
// in the region itself.
export class Live {
  constructor(title, level = 2) {
    this.heading = h(`h${level}`, {}, title);
    this.body = h('div', { class: 'live' });
    this.el = h('section', { class: 'panel' }, this.heading, this.body);
    this.last = undefined;
  }
  show(data, render) {
    const key = JSON.stringify(data);
    if (key === this.last) return;
    this.last = key;
    const out = render(data);
    this.body.replaceChildren(...(Array.isArray(out) ? out : [out]));
  }
  fail(e) {
    this.show({ __error: errorText(e) }, (d) => h('p', { class: 'msg error', role: 'alert' }, d.__error));
  }
}

export function table(headers, rows, caption) {
  return h(
    'table',
    {},
    caption ? h('caption', {}, caption) : null,
    h('thead', {}, h('tr', {}, headers.map((x) => h('th', { scope: 'col' }, x)))),
    h('tbody', {}, rows.length ? rows.map((r) => h('tr', {}, r.map((c) => h('td', {}, c)))) : h('tr', {}, h('td', { colspan: headers.length }, 'None.'))),
  );
}

export function dl(pairs) {
  return h('dl', { class: 'props' }, pairs.filter(Boolean).map(([k, v]) => [h('dt', {}, k), h('dd', {}, v === undefined || v === null || v === '' ? '—' : v)]));
}
