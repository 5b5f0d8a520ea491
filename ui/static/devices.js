// The Devices view: every gateway with its state, name, hub and last step,
// searchable and filterable on the server, a page at a time.
import * as api from './api.js';
import { h, setText, keyedRows, timeEl, setTime } from './dom.js';
import { lastStep } from './format.js';
import { searchBox, pager, stateBadge, setState, states, banner, coalesce, listParams } from './widgets.js';

const pageSize = 50;

export function devicesView(main, ctx) {
  const p = ctx.params;
  const state = {
    q: p.get('q') || '',
    state: states.includes(p.get('state')) ? p.get('state') : '',
    offset: Math.max(0, (parseInt(p.get('page'), 10) || 1) - 1) * pageSize,
  };
  const rows = new Map();
  let gone = false;

  const search = searchBox({
    id: 'devices-search', label: 'Search', placeholder: 'Name, MAC or fingerprint', value: state.q,
    onChange: (q) => { state.q = q; state.offset = 0; saveParams(); load(); },
  });
  const select = h('select', { id: 'devices-state' },
    h('option', { value: '' }, 'All states'),
    states.map((s) => h('option', { value: s, selected: s === state.state }, s)));
  select.addEventListener('change', () => {
    state.state = select.value;
    state.offset = 0;
    saveParams();
    load();
  });
  const pages = pager((dir) => {
    state.offset = Math.max(0, state.offset + dir * pageSize);
    saveParams();
    load();
  });
  const count = h('p', { class: 'range muted', 'aria-live': 'polite' });
  const errors = banner();
  const tbody = h('tbody');
  const empty = h('p', { class: 'empty', hidden: true });
  const table = h('table', { class: 'grid grid-devices' },
    h('caption', { class: 'sr-only' }, 'Gateways'),
    h('thead', {}, h('tr', {},
      ['State', 'Name', 'MAC', 'Hub', 'Last step', 'Last seen'].map((t) => h('th', { scope: 'col' }, t)))),
    tbody);

  main.append(h('section', { class: 'view', 'aria-labelledby': 'devices-title' },
    h('div', { class: 'view-head' },
      h('h1', { id: 'devices-title', tabindex: '-1' }, 'Devices'),
      h('p', { class: 'lede' }, 'Every gateway gatehouse knows, newest first. Open one for its provisioning steps and timeline.')),
    h('div', { class: 'toolbar' },
      search.el,
      h('div', { class: 'field' }, h('label', { for: 'devices-state' }, 'State'), select),
      count),
    errors.el,
    h('div', { class: 'table-wrap' }, table, empty),
    pages.el));

  function saveParams() {
    ctx.setParams(listParams({ q: state.q, state: state.state }, state.offset, pageSize));
  }

  const load = coalesce(async () => {
    try {
      const l = await api.listDevices({ state: state.state, q: state.q, limit: pageSize, offset: state.offset });
      if (gone) return;
      errors.clear();
      keyedRows(tbody, rows, l.devices, (d) => d.id, createRow, updateRow);
      pages.update(state.offset, l.devices.length, l.total);
      setText(count, `${l.total.toLocaleString('en-US')} ${l.total === 1 ? 'gateway' : 'gateways'}`);
      table.hidden = l.devices.length === 0;
      empty.hidden = l.devices.length > 0;
      setText(empty, state.q || state.state ? 'No gateways match.' : 'No gateways yet.');
    } catch (err) {
      if (!gone && err.status !== 401) errors.show(`Could not load devices: ${err.message}`);
    }
  }, () => gone);

  function createRow(d) {
    const r = {};
    r.state = stateBadge(d.state);
    r.link = h('a', { href: `#/devices/${encodeURIComponent(d.id)}` });
    r.mac = h('span', { class: 'mono' });
    r.hub = h('span', {});
    r.step = h('span', {});
    r.seen = timeEl(d.last_seen);
    r.el = h('tr', { dataset: { id: d.id } },
      h('td', { 'data-label': 'State' }, r.state),
      h('td', { 'data-label': 'Name', class: 'cell-name' }, r.link),
      h('td', { 'data-label': 'MAC' }, r.mac),
      h('td', { 'data-label': 'Hub' }, r.hub),
      h('td', { 'data-label': 'Last step' }, r.step),
      h('td', { 'data-label': 'Last seen' }, r.seen));
    return r;
  }

  function updateRow(r, d) {
    setState(r.state, d.state);
    r.el.dataset.state = d.state;
    setText(r.link, d.name || 'unnamed');
    r.link.classList.toggle('unnamed', !d.name);
    r.link.setAttribute('aria-label', `${d.name || 'unnamed gateway'} (${d.mac}), ${d.state}`);
    setText(r.mac, d.mac);
    setText(r.hub, d.hub || '—');
    const step = lastStep(d);
    setText(r.step, step || '—');
    r.step.className = step.endsWith('failed') ? 'step-failed' : '';
    setTime(r.seen, d.last_seen);
  }

  load();
  return {
    changed: () => load(),
    unmount() { gone = true; },
  };
}
