// gatehouse's operator page: hash routing, the session, the live event
// stream and the shell around the views.
import * as api from './api.js';
import { h, setText } from './dom.js';
import { ago, num, relative } from './format.js';
import { Live } from './live.js';
import { loginView } from './login.js';
import { pendingView } from './pending.js';
import { devicesView } from './devices.js';
import { deviceView } from './device.js';
import { usersView } from './users.js';
import { tokensView } from './tokens.js';
import { auditView } from './audit.js';
import { allowlistView } from './allowlist.js';
import { certsView } from './certs.js';

const $ = (id) => document.getElementById(id);
const main = $('main');

const app = {
  session: null, // {kind, name, role}; the CSRF token stays inside api.js
  view: null, // the mounted view: {changed(ids), tick(), unmount()}
  live: null,
  lastRoute: '',
  after: '', // where to go once logged in, when a link led to the login page
  pending: 0, // how many gateways wait, for the badge and the title
  title: 'gatehouse', // the view's title, before the pending count
};

// pages are the views by route name, with their title, the nav entry they
// belong to, and the role they need. The server enforces roles; the page
// only hides what it would refuse. A new page is one line here and one nav
// link in index.html.
const pages = {
  login: { view: loginView, title: 'Log in' },
  pending: { view: pendingView, title: 'Pending' },
  devices: { view: devicesView, title: 'Devices' },
  device: { view: deviceView, title: 'Device', nav: 'devices' },
  allowlist: { view: allowlistView, title: 'Allowlist' },
  users: { view: usersView, title: 'Users', role: 'admin' },
  tokens: { view: tokensView, title: 'Tokens', role: 'admin' },
  audit: { view: auditView, title: 'Audit log', role: 'admin' },
  certs: { view: certsView, title: 'Certificates' },
};

const roleRank = { viewer: 1, operator: 2, admin: 3 };
const allows = (role, need) => !need || (roleRank[role] || 0) >= roleRank[need];

// route parses "#/devices/ID?q=x" into a name, an id and params.
function route() {
  const raw = location.hash.replace(/^#/, '') || '/pending';
  const [path, query] = raw.split('?');
  const parts = path.split('/').filter(Boolean);
  const params = new URLSearchParams(query || '');
  if (parts[0] === 'devices' && parts[1]) return { name: 'device', id: decodeURIComponent(parts[1]), params };
  if (Object.hasOwn(pages, parts[0]) && parts[0] !== 'device') return { name: parts[0], params };
  return { name: 'pending', params };
}

// setParams records a view's filters in the address without a new history
// entry or a hashchange, so reload and shared links keep them.
function setParams(params) {
  const r = location.hash.replace(/^#/, '').split('?')[0] || '/pending';
  const q = params.toString();
  history.replaceState(null, '', `#${r}${q ? `?${q}` : ''}`);
  app.lastRoute = location.hash;
}

function navigate(hash) {
  if (location.hash === hash) render();
  else location.hash = hash;
}

function render() {
  const r = route();
  if (!app.session && r.name !== 'login') {
    app.after = location.hash;
    navigate('#/login');
    return;
  }
  if (app.session && r.name === 'login') {
    navigate('#/pending');
    return;
  }
  app.view?.unmount?.();
  app.view = null;
  main.replaceChildren();
  $('topbar').hidden = !app.session;
  const page = pages[r.name];
  for (const a of document.querySelectorAll('[data-nav]')) {
    if (a.dataset.nav === (page.nav || r.name)) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  showSimulated();
  const ctx = { session: app.session, params: r.params, setParams, toast, navigate, onLogin, refreshSession, setTitle };
  setTitle(`${page.title} · gatehouse`);
  app.view = allows(app.session?.role, page.role) ? page.view(main, ctx, r.id) : notAllowed(page);
  // Move focus to the new view's heading for screen readers and keyboards,
  // but not on the first load or the login page, which focus their own field.
  if (r.name !== 'login' && app.lastRoute && app.lastRoute !== location.hash) main.querySelector('h1')?.focus();
  app.lastRoute = location.hash;
}

async function onLogin(session) {
  app.session = session;
  startSession();
  navigate(app.after || '#/pending');
  app.after = '';
}

// setTitle names the tab after the view, led by the pending count while
// gateways wait, so a background tab shows that there is work.
function setTitle(title) {
  app.title = title;
  const t = app.session && app.pending ? `(${num(app.pending)}) ${title}` : title;
  if (document.title !== t) document.title = t;
}

// showPending shows how many gateways wait, in the badge and the title at
// once; api.js calls it with every device list's pending_total.
function showPending(n) {
  app.pending = n;
  setText($('pending-count'), n ? num(n) : '');
  $('pending-count').title = n ? `${num(n)} ${n === 1 ? 'gateway waits' : 'gateways wait'} for approval` : '';
  setTitle(app.title);
}

// showSimulated says loudly, under the nav, when the server provisions into
// simulators: a trial must never pass for a rollout.
function showSimulated() {
  $('simulated').hidden = !app.session?.simulated_backends;
}

function startSession() {
  showSession();
  app.live?.close();
  app.live = new Live('/api/v1/stream', {
    changed, status: liveStatus, reconnected: () => changed(null), refused: checkSession,
  });
  refreshCount();
}

// showSession shows who is signed in, and only the nav entries their role
// may open.
function showSession() {
  const s = app.session;
  setText($('who'), `${s.name} · ${s.role}`);
  $('who').title = s.kind === 'token'
    ? `Signed in with the API token "${s.name}" (role ${s.role})`
    : `Signed in as the user "${s.name}" (role ${s.role})`;
  for (const a of document.querySelectorAll('[data-nav]')) {
    a.hidden = !allows(s.role, pages[a.dataset.nav]?.role);
  }
}

// refreshSession reads the session again after a change that may have
// touched it (an admin changing their own role) and leaves a page the new
// role may not open.
async function refreshSession() {
  try {
    app.session = await api.currentSession();
  } catch (err) {
    if (err.status === 401) endSession('Your session has ended. Please log in again.');
    return;
  }
  showSession();
  if (!allows(app.session.role, pages[route().name].role)) render();
}

// notAllowed stands in for a page the signed-in role may not open.
function notAllowed(page) {
  main.append(h('section', { class: 'view' },
    h('div', { class: 'view-head' },
      h('h1', { tabindex: '-1' }, page.title),
      h('p', { class: 'lede' },
        `The ${page.title} page is for the ${page.role} role; you are signed in as ${app.session.name} with the ${app.session.role} role. `,
        h('a', { href: '#/pending' }, 'Go to Pending'), '.'))));
  return {};
}

// checkSession ends the page's session when the server has ended it (the
// stream is refused then, before any other request notices).
async function checkSession() {
  try {
    await api.currentSession();
  } catch (err) {
    if (err.status === 401) endSession('Your session has ended. Please log in again.');
  }
}

function endSession(message) {
  // Several requests may find the session gone at once; end it once.
  if (!app.session && !app.live) return;
  app.live?.close();
  app.live = null;
  app.session = null;
  api.forget();
  app.pending = 0;
  setText($('pending-count'), '');
  if (message) toast(message, { kind: 'error' });
  navigate('#/login');
}

// changed receives device ids from the stream (null: unknown, after a
// reconnect) and lets the header and the current view catch up. A view
// that lists pending gateways brings the count with its own list, so the
// header asks for none of its own: two fetches would answer at different
// moments and the badge would lag the list.
function changed(ids) {
  if (!app.view?.countsPending) refreshCount();
  app.view?.changed?.(ids);
}

let counting = null;
let countAgain = false;
// refreshCount keeps the Pending badge current with at most one request in
// flight, however fast events arrive.
async function refreshCount() {
  if (counting) {
    countAgain = true;
    return;
  }
  counting = api.listDevices({ state: 'pending', limit: 1 });
  try {
    await counting; // api.js hands its pending_total to showPending
  } catch {
    // The view shows errors; the badge just keeps its last value.
  } finally {
    counting = null;
    if (countAgain) {
      countAgain = false;
      refreshCount();
    }
  }
}

function liveStatus(state) {
  const el = $('live');
  el.dataset.state = state;
  const text = { live: 'live', connecting: 'connecting…', reconnecting: 'reconnecting…' }[state] || state;
  setText(el, text);
  el.title = state === 'live' ? 'Changes appear as they happen' : 'Live updates are paused; reconnecting';
}

// toast shows a short message in the polite live region, with an optional
// link, and removes it after a while.
function toast(message, { kind = 'ok', link } = {}) {
  const close = h('button', { type: 'button', class: 'toast-close', 'aria-label': 'Close message' }, '×');
  const t = h('div', { class: `toast toast-${kind}` },
    h('span', {}, message),
    link ? h('a', { href: link.href }, link.text) : null,
    close);
  const remove = () => t.remove();
  close.addEventListener('click', remove);
  $('toasts').append(t);
  setTimeout(remove, kind === 'error' ? 12000 : 7000);
}

// tick refreshes every relative time on the page ("2 min ago").
function tick() {
  const now = Date.now();
  for (const el of document.querySelectorAll('time[data-ago]')) {
    setText(el, ago(el.dateTime, now));
  }
  for (const el of document.querySelectorAll('time[data-rel]')) {
    setText(el, relative(el.dateTime, now));
  }
  app.view?.tick?.(now);
}

async function start() {
  api.onUnauthorized(() => endSession('Your session has ended. Please log in again.'));
  api.onPendingTotal(showPending);
  $('logout').addEventListener('click', async () => {
    try {
      await api.logout();
    } catch {
      // Logging out of a session the server already forgot is still out.
    }
    endSession();
  });
  document.addEventListener('keydown', shortcuts);
  window.addEventListener('hashchange', render);
  setInterval(tick, 30 * 1000);
  try {
    app.session = await api.currentSession();
    startSession();
  } catch {
    app.session = null;
  }
  render();
}

// shortcuts: "/" jumps to the search box, as in most operator tools.
function shortcuts(e) {
  const typing = e.target.closest?.('input, textarea, select, [contenteditable]');
  if (e.key === '/' && !typing && !e.ctrlKey && !e.metaKey && !e.altKey) {
    const s = main.querySelector('input[type=search]');
    if (s) {
      e.preventDefault();
      s.focus();
      s.select();
    }
  }
}

start();
