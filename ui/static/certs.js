// Certificates: the fleet view of certificates about to expire, and the
// panel of one gateway's certificates (its provisioning one and each
// renewal) on the device page. Gateways renew their own certificates from
// a daily timer; one in the expiring list has not, for example because it
// has been off line.
import * as api from './api.js';
import { h, replace, setText, relTimeEl } from './dom.js';
import { fullTime, day, num } from './format.js';
import { stateBadge, banner, coalesce } from './widgets.js';

// horizons the fleet view offers, in days; 14 is the default.
const horizons = [7, 14, 30, 90];

export function certsView(main, ctx) {
  let gone = false;
  const chosen = Number(ctx.params.get('within')) || 14;
  const within = horizons.includes(chosen) ? chosen : 14;

  const title = h('h1', { id: 'certs-title', tabindex: '-1' }, `Certificates expiring within ${within} days`);
  const select = h('select', { id: 'certs-within' },
    horizons.map((d) => h('option', { value: String(d), selected: d === within }, `${d} days`)));
  const errors = banner();
  const count = h('p', { class: 'range muted', 'aria-live': 'polite' });
  const tbody = h('tbody');
  const empty = h('p', { class: 'empty', hidden: true });
  const table = h('table', { class: 'grid grid-certs', hidden: true },
    h('caption', { class: 'sr-only' }, 'Certificates not revoked that expire soon, soonest first'),
    h('thead', {}, h('tr', {}, ['Gateway', 'State', 'Serial', 'Expires', 'Not after', 'Origin'].map((t) => h('th', { scope: 'col' }, t)))),
    tbody);

  main.append(h('section', { class: 'view', 'aria-labelledby': 'certs-title' },
    h('div', { class: 'view-head' }, title,
      h('p', { class: 'lede' }, 'Gateways renew their certificates themselves (',
        h('code', {}, 'gatehouse-agent renew'), ', daily). A certificate listed here belongs to a gateway that has not renewed yet: ',
        'it may be off line, or its agent may be refused.')),
    h('div', { class: 'toolbar' }, h('label', { for: 'certs-within' }, 'Expiring within '), select, count),
    errors.el,
    h('div', { class: 'table-wrap' }, table, empty)));

  select.addEventListener('change', () => {
    const q = new URLSearchParams();
    if (select.value !== '14') q.set('within', select.value);
    ctx.navigate(`#/certs${q.size ? `?${q}` : ''}`);
  });

  const load = coalesce(async () => {
    try {
      const l = await api.expiringCerts(`${within}d`);
      if (gone) return;
      errors.clear();
      const certs = l.certificates || [];
      replace(tbody, certs.map(expiringRow));
      table.hidden = certs.length === 0;
      empty.hidden = certs.length > 0;
      setText(empty, `No certificate expires within ${within} days.`);
      setText(count, `${num(certs.length)} ${certs.length === 1 ? 'certificate' : 'certificates'}`);
    } catch (err) {
      if (!gone && err.status !== 401) errors.show(`Could not load the certificates: ${err.message}`);
    }
  }, () => gone);

  load();
  return {
    changed() { load(); },
    unmount() { gone = true; },
  };
}

function expiringRow(c) {
  const expired = Date.parse(c.not_after) <= Date.now();
  return h('tr', { dataset: { serial: c.serial, device: c.device_id } },
    h('th', { scope: 'row', 'data-label': 'Gateway' }, h('a', { href: `#/devices/${encodeURIComponent(c.device_id)}` }, c.name || c.device_id)),
    h('td', { 'data-label': 'State' }, stateBadge(c.state)),
    h('td', { 'data-label': 'Serial' }, h('span', { class: 'mono' }, c.serial)),
    h('td', { 'data-label': 'Expires', class: expired ? 'text-error' : '' }, relTimeEl(c.not_after)),
    h('td', { 'data-label': 'Not after' }, h('span', { title: fullTime(c.not_after) }, day(c.not_after))),
    h('td', { 'data-label': 'Origin' }, c.origin));
}

// certsPanel is the device page's list of one gateway's certificates, with
// when each expires and whether it was revoked.
export function certsPanel(id) {
  const body = h('div', {});
  const el = h('section', { class: 'panel', 'aria-labelledby': 'certs-panel-title' },
    h('h2', { id: 'certs-panel-title' }, 'Certificates'), body);
  return {
    el,
    async load() {
      try {
        const l = await api.certificates(id);
        replace(body, certsTable(l.certificates || []));
      } catch (err) {
        if (err.status !== 401 && err.status !== 404) replace(body, h('p', { class: 'banner' }, `Could not load the certificates: ${err.message}`));
      }
    },
  };
}

function certsTable(certs) {
  if (certs.length === 0) return h('p', { class: 'empty' }, 'gatehouse keeps no certificate for this gateway yet.');
  const live = certs.find((c) => !c.revoked_at);
  const renewals = certs.filter((c) => c.origin === 'renewal').length;
  const summary = h('p', { class: 'certs-summary' }, live
    ? ['Current certificate expires ', relTimeEl(live.not_after), ` (${fullTime(live.not_after)}); `]
    : 'No valid certificate; ',
  `${renewals} ${renewals === 1 ? 'renewal' : 'renewals'}.`);
  return [summary, h('table', { class: 'grid grid-certs' },
    h('caption', { class: 'sr-only' }, "The gateway's certificates, newest first"),
    h('thead', {}, h('tr', {}, ['Serial', 'Origin', 'Issued', 'Not after', 'Status'].map((t) => h('th', { scope: 'col' }, t)))),
    h('tbody', {}, certs.map((c) => h('tr', { dataset: { serial: c.serial, origin: c.origin } },
      h('th', { scope: 'row', 'data-label': 'Serial' }, h('span', { class: 'mono' }, c.serial)),
      h('td', { 'data-label': 'Origin' }, c.origin),
      h('td', { 'data-label': 'Issued' }, h('span', { title: fullTime(c.issued_at) }, day(c.issued_at))),
      h('td', { 'data-label': 'Not after' }, h('span', { title: fullTime(c.not_after) }, day(c.not_after))),
      h('td', { 'data-label': 'Status', class: 'cert-status' }, c.revoked_at
        ? h('span', { class: 'muted', title: fullTime(c.revoked_at) }, 'revoked')
        : ['valid, expires ', relTimeEl(c.not_after)])))))];
}
