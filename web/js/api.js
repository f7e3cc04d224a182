// api.js - the REST calls the portal makes: ARM on this page's origin, Key Vault data plane on
// {vault}.vault.localhost with the same scheme and port, tokens from the token service.
// Every failure becomes an ApiError carrying the envelope's code and message.

export const AV = {
  groups: '2021-04-01',
  identity: '2023-01-31',
  vault: '2023-07-01',
  cluster: '2023-03-02-preview',
  server: '2017-12-01',
  serverKeys: '2020-01-01',
  health: '2022-10-01',
  activity: '2015-04-01',
  kv: '7.4',
};

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
  toString() {
    return `${this.code} (HTTP ${this.status}): ${this.message}`;
  }
}

// ARM's {"error":{"code","message"}}, Key Vault's (same shape) and OAuth's {"error","error_description"}.
async function toError(r) {
  let body = null;
  try {
    body = await r.json();
  } catch (_) {
    /* not JSON */
  }
  const e = body && body.error;
  if (e && typeof e === 'object') {
    const inner = e.innererror && e.innererror.code ? ` [${e.innererror.code}]` : '';
    return new ApiError(r.status, (e.code || 'Error') + inner, e.message || r.statusText);
  }
  if (typeof e === 'string') return new ApiError(r.status, e, body.error_description || e);
  // HashiCorp Vault's {"errors":["text", ...]}
  if (body && Array.isArray(body.errors)) return new ApiError(r.status, `Vault ${r.status}`, body.errors.join('; ') || r.statusText);
  return new ApiError(r.status, `HTTP${r.status}`, r.statusText || 'request failed');
}

function withQuery(path, query) {
  const u = new URL(path, location.origin);
  for (const [k, v] of Object.entries(query || {})) u.searchParams.set(k, v);
  return u.pathname + u.search;
}

// Any absolute URL the API hands back (Azure-AsyncOperation, nextLink) on this page's origin.
export function local(url) {
  const u = new URL(url, location.origin);
  return location.origin + u.pathname + u.search;
}

export async function request(method, url, body, headers = {}) {
  const init = { method, headers: { ...headers } };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let r;
  try {
    r = await fetch(url, init);
  } catch (e) {
    throw new ApiError(0, 'NetworkError', `${method} ${url} did not reach the emulator (${e.message})`);
  }
  if (!r.ok) throw await toError(r);
  const text = await r.text();
  return { status: r.status, headers: r.headers, body: text ? JSON.parse(text) : null };
}

// ARM: path like /subscriptions/..., api-version added.
export async function arm(method, path, av, body, query) {
  const r = await request(method, location.origin + withQuery(path, { 'api-version': av, ...query }), body);
  return r;
}

export async function armGet(path, av, query) {
  return (await arm('GET', path, av, undefined, query)).body;
}

// All pages of a list.
export async function armList(path, av, query) {
  let r = await armGet(path, av, query);
  const out = [...(r.value || [])];
  for (let n = 0; r.nextLink && n < 50; n++) {
    r = (await request('GET', local(r.nextLink))).body;
    out.push(...(r.value || []));
  }
  return out;
}

// A PUT/DELETE that may answer with Azure-AsyncOperation: waits for the operation.
export async function armLro(method, path, av, body, onProgress) {
  const r = await arm(method, path, av, body);
  const op = r.headers.get('Azure-AsyncOperation');
  if (!op) return r.body;
  for (let i = 0; i < 600; i++) {
    const s = (await request('GET', local(op))).body;
    if (onProgress) onProgress(s.status);
    if (s.status !== 'InProgress' && s.status !== 'Accepted') {
      if (s.status !== 'Succeeded') {
        const e = s.error || {};
        throw new ApiError(200, e.code || s.status, e.message || `operation ${s.status}`);
      }
      return s;
    }
    await new Promise((res) => setTimeout(res, 250));
  }
  throw new ApiError(0, 'Timeout', 'the operation did not finish');
}

let infoCache = null;
export async function info() {
  if (!infoCache) infoCache = (await request('GET', `${location.origin}/emulator/info`)).body;
  return infoCache;
}

export async function sub() {
  return (await info()).subscriptionId;
}

// Admin token for the vault data plane (client credentials, the well-known admin from /emulator/info).
let token = null;
export async function vaultToken() {
  if (token && token.until > Date.now()) return token.value;
  const i = await info();
  const form = new URLSearchParams({
    grant_type: 'client_credentials',
    client_id: i.admin.clientId,
    client_secret: i.admin.clientSecret,
    scope: 'https://vault.azure.net/.default',
  });
  let r;
  try {
    r = await fetch(`${location.origin}/adfs/oauth2/token`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: form.toString(),
    });
  } catch (e) {
    throw new ApiError(0, 'NetworkError', `the token service did not answer (${e.message})`);
  }
  if (!r.ok) throw await toError(r);
  const t = await r.json();
  token = { value: t.access_token, until: Date.now() + (Number(t.expires_in) - 120) * 1000 };
  return token.value;
}

// The data plane of one vault, on this page's scheme and port (the plain-HTTP listener serves
// vaults too, so the portal works without trusting the CA).
export function vaultBase(name) {
  return `${location.protocol}//${name}.vault.localhost:${location.port}`;
}

export async function kv(method, vault, path, body, query) {
  const t = await vaultToken();
  const u = new URL(vaultBase(vault) + path);
  u.searchParams.set('api-version', AV.kv);
  for (const [k, v] of Object.entries(query || {})) u.searchParams.set(k, v);
  return (await request(method, u.toString(), body, { Authorization: `Bearer ${t}` })).body;
}

export async function kvList(vault, path) {
  let r = await kv('GET', vault, path);
  const out = [...(r.value || [])];
  for (let n = 0; r.nextLink && n < 50; n++) {
    const t = await vaultToken();
    const u = new URL(r.nextLink);
    r = (await request('GET', vaultBase(vault) + u.pathname + u.search, undefined, { Authorization: `Bearer ${t}` })).body;
    out.push(...(r.value || []));
  }
  return out;
}

// "https://v.vault.localhost:8443/keys/k/ver" -> {vault, name, version}
export function parseKid(kid) {
  try {
    const u = new URL(kid);
    const m = u.pathname.match(/^\/(?:deleted)?keys\/([^/]+)(?:\/([^/]+))?/);
    return { vault: u.hostname.split('.')[0], name: m ? m[1] : '', version: m && m[2] ? m[2] : '' };
  } catch (_) {
    return { vault: '', name: '', version: '' };
  }
}

export async function emulator(method, path, body) {
  return (await request(method, location.origin + path, body)).body;
}

// "/subscriptions/s/resourceGroups/rg/providers/NS/type/name" -> parts
export function parseId(id) {
  const p = id.split('/');
  const out = { sub: p[2], rg: '', type: '', name: p[p.length - 1] };
  const i = p.findIndex((x) => x.toLowerCase() === 'resourcegroups');
  if (i > 0) out.rg = p[i + 1];
  const j = p.findIndex((x) => x.toLowerCase() === 'providers');
  if (j > 0) {
    const rest = p.slice(j + 1);
    const types = [rest[0]];
    for (let k = 1; k < rest.length; k += 2) types.push(rest[k]);
    out.type = types.join('/');
  } else if (i > 0) out.type = 'Microsoft.Resources/resourceGroups';
  return out;
}

// The Vault-compatible API on its own listener (vault.address of /emulator/info, or vault.httpAddress
// when the portal itself is on plain HTTP), as the vault UI calls it: the dev root token from
// /emulator/info, an optional namespace. path without /v1/; method LIST is sent as GET ?list=true.
export async function hv(method, path, body, namespace) {
  const i = await info();
  const v = i.vault || {};
  const base = (location.protocol === 'http:' && v.httpAddress) || v.address;
  if (!base) throw new ApiError(0, 'VaultOff', 'this pgcmkd has no Vault listener (--vault-port -1?)');
  const headers = { 'X-Vault-Token': v.rootToken || '', 'X-Vault-Request': 'true' };
  if (namespace) headers['X-Vault-Namespace'] = namespace;
  let m = method;
  let p = path;
  if (method === 'LIST') {
    m = 'GET';
    p += `${p.includes('?') ? '&' : '?'}list=true`;
  }
  return (await request(m, `${base.replace(/\/$/, '')}/v1/${p}`, body, headers)).body;
}
