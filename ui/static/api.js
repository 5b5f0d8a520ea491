// The page's only way to the server: the public REST API under /api/v1,
// authenticated by the session cookie. The CSRF token lives in memory only
// and is sent with every change.

let csrf = '';

// ApiError carries the server's {"error": {"code", "message", "conflict"?}};
// conflict names the other gateway ({id, name, mac}) when there is one.
export class ApiError extends Error {
  constructor(status, code, message, conflict = null) {
    super(message);
    this.status = status;
    this.code = code;
    this.conflict = conflict;
  }
}

// onUnauthorized is called when a request finds the session gone.
let unauthorized = () => {};
export function onUnauthorized(fn) { unauthorized = fn; }

// request sends body as JSON, or as it is when raw gives its type.
async function request(method, path, body, raw) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = raw?.type || 'application/json';
  if (method !== 'GET' && csrf) headers['X-CSRF-Token'] = csrf;
  let resp;
  try {
    resp = await fetch(path, {
      method, headers, credentials: 'same-origin', cache: 'no-store',
      body: body === undefined || raw ? body : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, 'network', 'The server cannot be reached. Check your connection and try again.');
  }
  if (resp.status === 204) return null;
  const data = await resp.json().catch(() => null);
  if (!resp.ok) {
    const e = data?.error || {};
    const err = new ApiError(resp.status, e.code || 'http', e.message || `${resp.status} ${resp.statusText}`, e.conflict || null);
    err.body = data; // a refused allowlist file's rows, say
    if (resp.status === 401 && path !== '/api/v1/session') unauthorized(err);
    throw err;
  }
  return data;
}

// Session ----------------------------------------------------------------

// loginOptions says which ways in the server offers: {password, token, sso?}.
export const loginOptions = () => request('GET', '/api/v1/auth');

// login sends {user, password} or {token} once; neither is kept.
export async function login(credentials) {
  const s = await request('POST', '/api/v1/session', credentials);
  csrf = s.csrf_token;
  return s;
}

export async function currentSession() {
  const s = await request('GET', '/api/v1/session');
  csrf = s.csrf_token;
  return s;
}

export async function logout() {
  try {
    await request('DELETE', '/api/v1/session');
  } finally {
    csrf = '';
  }
}

export function forget() { csrf = ''; }

// Devices ----------------------------------------------------------------

const enc = encodeURIComponent;

// onPendingTotal is told how many gateways wait, from every device list
// the page fetches (each carries pending_total whatever its filter): the
// header's badge and title then come from the very answer the Pending list
// is drawn from, never from a fetch of their own that lags it.
let pendingTotal = () => {};
export function onPendingTotal(fn) { pendingTotal = fn; }
let listsAsked = 0;
let listsTold = 0;

export async function listDevices({ state, q, seen, sort, counts, limit = 50, offset = 0 } = {}) {
  const p = new URLSearchParams();
  if (state) p.set('state', state);
  if (q) p.set('q', q);
  if (seen) p.set('seen', seen);
  if (sort) p.set('sort', sort);
  if (counts) p.set('counts', 'true');
  p.set('limit', String(limit));
  p.set('offset', String(offset));
  const asked = ++listsAsked;
  const l = await request('GET', `/api/v1/devices?${p}`);
  // An answer to an older request, arriving late, must not undo a newer one.
  if (asked > listsTold && typeof l?.pending_total === 'number') {
    listsTold = asked;
    pendingTotal(l.pending_total);
  }
  return l;
}

export const device = (id) => request('GET', `/api/v1/devices/${enc(id)}`);
export const events = (id) => request('GET', `/api/v1/devices/${enc(id)}/events`);
export const approve = (id, name) => request('POST', `/api/v1/devices/${enc(id)}/approve`, { name });
// approveRekey approves a re-key candidate: no name, its gateway keeps its own.
export const approveRekey = (id) => request('POST', `/api/v1/devices/${enc(id)}/approve`, {});
export const dismiss = (id) => request('POST', `/api/v1/devices/${enc(id)}/dismiss`);
export const retry = (id) => request('POST', `/api/v1/devices/${enc(id)}/retry`);
export const restore = (id) => request('POST', `/api/v1/devices/${enc(id)}/restore`);
export const editDevice = (id, change) => request('PATCH', `/api/v1/devices/${enc(id)}`, change);
export const decommission = (id, dryRun) => request('DELETE', `/api/v1/devices/${enc(id)}${dryRun ? '?dry_run=true' : ''}`);
export const forgetDevice = (id) => request('POST', `/api/v1/devices/${enc(id)}/forget`);

// Allowlist ----------------------------------------------------------------

export const listAllowlist = () => request('GET', '/api/v1/allowlist?limit=5000');
// importAllowlist sends a CSV file; a refused one throws with err.body.errors.
export function importAllowlist(file, { skipInvalid = false, dryRun = false } = {}) {
  const p = new URLSearchParams();
  if (skipInvalid) p.set('skip_invalid', 'true');
  if (dryRun) p.set('dry_run', 'true');
  return request('POST', `/api/v1/allowlist?${p}`, file, { type: 'text/csv' });
}
export const removeAllowlist = (mac) => request('DELETE', `/api/v1/allowlist/${enc(mac)}`);
export const planBulk = (req) => request('POST', '/api/v1/bulk', { ...req, dry_run: true });
export const startBulk = (req) => request('POST', '/api/v1/bulk', req);
export const bulk = (id) => request('GET', `/api/v1/bulk/${enc(id)}`);
export const certificates = (id) => request('GET', `/api/v1/devices/${enc(id)}/certificates`);
export const expiringCerts = (within) => request('GET', `/api/v1/certificates?expiring_within=${enc(within)}`);

// Tokens and users (admin only) ------------------------------------------

export const listTokens = () => request('GET', '/api/v1/tokens');
export const createToken = (spec) => request('POST', '/api/v1/tokens', spec);
export const revokeToken = (id) => request('DELETE', `/api/v1/tokens/${enc(id)}`);

export const listUsers = () => request('GET', '/api/v1/users');
export const createUser = (spec) => request('POST', '/api/v1/users', spec);
export const updateUser = (name, change) => request('PATCH', `/api/v1/users/${enc(name)}`, change);
export const deleteUser = (name) => request('DELETE', `/api/v1/users/${enc(name)}`);

// Audit log (admins) -------------------------------------------------------

export function auditLog({ before = 0, limit = 100 } = {}) {
  const p = new URLSearchParams({ limit: String(limit) });
  if (before) p.set('before', String(before));
  return request('GET', `/api/v1/audit?${p}`);
}
