// The Devices view: every gateway with its state, name, hostname, agent,
// labels, hub and last step, searchable (the verification code too),
// filterable, sortable and counted per state on the server, a page at a
// time, and exportable as CSV with the same filter and order.
import * as api from './api.js';
import { h, setText, keyedRows, timeEl, setTime, replace } from './dom.js';
import { lastStep } from './format.js';
import { searchBox, pager, stateBadge, setState, states, banner, coalesce, listParams } from './widgets.js';

const pageSize = 50;

// sortable columns: the server's sort key, and which way a first click
// sorts (the most recent first for times, A to Z for words).
const sortable = {
  State: { key: 'state', first: 'asc' },
  Name: { key: 'name', first: 'asc' },
  Hub: { key: 'hub', first: 'asc' },
  'Last seen': { key: 'last_seen', first: 'desc' },
};
const columns = ['State', 'Name', 'Hostname', 'MAC', 'Agent', 'Labels', 'Hub', 'Last step', 'Last seen'];

// sortChoices are the orders the phone layout, which has no column heads
// to click, offers in a menu.
const sortChoices = [
  ['', 'Newest first'], ['name', 'Name A–Z'], ['-name', 'Name Z–A'], ['state', 'State'],
  ['-last_seen', 'Last seen, latest first'], ['last_seen', 'Last seen, longest ago first'], ['hub', 'Hub'],
];
const sortValues = [...sortChoices.map((c) => c[0]), '-state', '-hub'];

// sortOf reads a sort parameter as {key, dir}, or null for the default.
function sortOf(v) {
  if (!v) return null;
  return { key: v.replace(/^-/, ''), dir: v.startsWith('-') ? 'desc' : 'asc' };
}

// nextSort is the sort after a click on a column: its first direction,
// then the other, then back to newest first.
function nextSort(current, col) {
  const cur = sortOf(current);
  const flip = (d) => (d === 'asc' ? 'desc' : 'asc');
  let dir = col.first;
  if (cur?.key === col.key) {
    if (cur.dir !== col.first) return '';
    dir = flip(col.first);
  }
  return dir === 'desc' ? `-${col.key}` : col.key;
}

export function devicesView(main, ctx) {
  const p = ctx.params;
  const state = {
    q: p.get('q') || '',
    state: states.includes(p.get('state')) ? p.get('state') : '',
    sort: sortValues.includes(p.get('sort')) ? p.get('sort') : '',
    offset: Math.max(0, (parseInt(p.get('page'), 10) || 1) - 1) * pageSize,
  };
  const rows = new Map();
  let gone = false;

  const search = searchBox({
    id: 'devices-search', label: 'Search', placeholder: 'Name, hostname, MAC, fingerprint or code', value: state.q,
    onChange: (q) => { state.q = q; state.offset = 0; changed(); },
  });
  const allOption = h('option', { value: '' }, 'All states');
  const stateOptions = new Map(states.map((s) => [s, h('option', { value: s, selected: s === state.state }, s)]));
  const select = h('select', { id: 'devices-state' }, allOption, [...stateOptions.values()]);
  select.addEventListener('change', () => {
    state.state = select.value;
    state.offset = 0;
    changed();
  });
  const sortSelect = h('select', { id: 'devices-sort' },
    sortChoices.map(([v, t]) => h('option', { value: v, selected: v === state.sort }, t)));
  sortSelect.addEventListener('change', () => setSort(sortSelect.value));
  const exportLink = h('a', { class: 'btn', id: 'devices-export', download: '' }, 'Export CSV');
  const pages = pager((dir) => {
    state.offset = Math.max(0, state.offset + dir * pageSize);
    changed();
  });
  const count = h('p', { class: 'range muted', 'aria-live': 'polite' });
  const errors = banner();
  const tbody = h('tbody');
  const empty = h('p', { class: 'empty', hidden: true });
  const heads = columns.map((t) => {
    const col = sortable[t];
    if (!col) return h('th', { scope: 'col' }, t);
    const arrow = h('span', { class: 'sort-arrow', 'aria-hidden': 'true' });
    const btn = h('button', { type: 'button', class: 'sort-button', dataset: { sort: col.key } }, t, arrow);
    btn.addEventListener('click', () => setSort(nextSort(state.sort, col)));
    const th = h('th', { scope: 'col', dataset: { sort: col.key } }, btn);
    th.paint = () => {
      const cur = sortOf(state.sort);
      const dir = cur?.key === col.key ? cur.dir : '';
      if (dir) th.setAttribute('aria-sort', dir === 'asc' ? 'ascending' : 'descending');
      else th.removeAttribute('aria-sort');
      setText(arrow, dir === 'asc' ? '▲' : dir === 'desc' ? '▼' : '↕');
      const next = sortOf(nextSort(state.sort, col));
      btn.title = next ? `Sort by ${t.toLowerCase()}, ${next.dir === 'asc' ? 'ascending' : 'descending'}` : 'Back to newest first';
    };
    return th;
  });
  const table = h('table', { class: 'grid grid-devices' },
    h('caption', { class: 'sr-only' }, 'Gateways'),
    h('thead', {}, h('tr', {}, heads)),
    tbody);

  main.append(h('section', { class: 'view', 'aria-labelledby': 'devices-title' },
    h('div', { class: 'view-head' },
      h('h1', { id: 'devices-title', tabindex: '-1' }, 'Devices'),
      h('p', { class: 'lede' }, 'Every gateway gatehouse knows. Sort by a column, open one for its provisioning steps and timeline.')),
    h('div', { class: 'toolbar toolbar-devices' },
      search.el,
      h('div', { class: 'field field-state' }, h('label', { for: 'devices-state' }, 'State'), select),
      h('div', { class: 'field field-sort' }, h('label', { for: 'devices-sort' }, 'Sort'), sortSelect),
      count,
      exportLink),
    errors.el,
    h('div', { class: 'table-wrap' }, table, empty),
    pages.el));

  function setSort(v) {
    state.sort = v;
    state.offset = 0;
    changed();
  }

  // changed keeps the address, the sort controls and the export link in
  // step with the filters, then loads the page they select.
  function changed() {
    const filters = { q: state.q, state: state.state, sort: state.sort };
    ctx.setParams(listParams(filters, state.offset, pageSize));
    for (const th of heads) th.paint?.();
    sortSelect.value = sortChoices.some((c) => c[0] === state.sort) ? state.sort : '';
    const q = new URLSearchParams({ format: 'csv' });
    for (const [k, v] of Object.entries(filters)) if (v) q.set(k, v);
    exportLink.href = `/api/v1/devices?${q}`;
    load();
  }

  function paintCounts(counts) {
    let all = 0;
    for (const [s, opt] of stateOptions) {
      const n = counts?.[s] || 0;
      all += n;
      setText(opt, counts ? `${s} (${n.toLocaleString('en-US')})` : s);
    }
    setText(allOption, counts ? `All states (${all.toLocaleString('en-US')})` : 'All states');
  }

  const load = coalesce(async () => {
    try {
      const l = await api.listDevices({ state: state.state, q: state.q, sort: state.sort, counts: true, limit: pageSize, offset: state.offset });
      if (gone) return;
      errors.clear();
      keyedRows(tbody, rows, l.devices, (d) => d.id, createRow, updateRow);
      pages.update(state.offset, l.devices.length, l.total);
      paintCounts(l.counts || {});
      setText(count, `${l.total.toLocaleString('en-US')} ${l.total === 1 ? 'gateway' : 'gateways'}`);
      table.hidden = l.devices.length === 0;
      empty.hidden = l.devices.length > 0;
      setText(empty, state.q || state.state ? 'No gateways match.' : 'No gateways yet.');
    } catch (err) {
      if (!gone && err.status !== 401) errors.show(`Could not load devices: ${err.message}`);
    }
  }, () => gone);

  function cell(label, cls, ...content) {
    return h('td', { 'data-label': label, class: cls }, ...content);
  }

  function createRow(d) {
    const r = {};
    r.state = stateBadge(d.state);
    r.link = h('a', { href: `#/devices/${encodeURIComponent(d.id)}` });
    r.host = h('span', { class: 'mono' });
    r.mac = h('span', { class: 'mono' });
    r.agent = h('span', {});
    r.labels = h('span', { class: 'labels' });
    r.hub = h('span', {});
    r.step = h('span', {});
    r.seen = timeEl(d.last_seen);
    r.cells = {
      host: cell('Hostname', 'cell-host', r.host),
      agent: cell('Agent', 'cell-agent', r.agent),
      labels: cell('Labels', 'cell-labels', r.labels),
      hub: cell('Hub', 'cell-hub', r.hub),
      step: cell('Last step', 'cell-step', r.step),
    };
    r.el = h('tr', { dataset: { id: d.id } },
      cell('State', 'cell-state', r.state),
      cell('Name', 'cell-name', r.link),
      r.cells.host,
      cell('MAC', 'cell-mac', r.mac),
      r.cells.agent,
      r.cells.labels,
      r.cells.hub,
      r.cells.step,
      cell('Last seen', 'cell-seen', r.seen));
    return r;
  }

  // show fills a cell's text, or a dash marked empty: the phone layout
  // leaves empty cells out rather than spend a line on a dash.
  function show(r, key, el, text) {
    setText(el, text || '—');
    r.cells[key].classList.toggle('is-empty', !text);
  }

  function updateRow(r, d) {
    setState(r.state, d.state);
    r.el.dataset.state = d.state;
    setText(r.link, d.name || 'unnamed');
    r.link.classList.toggle('unnamed', !d.name);
    r.link.setAttribute('aria-label', `${d.name || 'unnamed gateway'} (${d.mac}), ${d.state}`);
    show(r, 'host', r.host, d.hostname);
    setText(r.mac, d.mac);
    show(r, 'agent', r.agent, d.agent_version);
    const labels = Object.entries(d.labels || {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    const key = JSON.stringify(labels);
    if (r.labelsKey !== key) {
      r.labelsKey = key;
      replace(r.labels, labels.map(([k, v]) => h('span', { class: 'label-chip' }, `${k}=${v}`)));
      if (!labels.length) setText(r.labels, '—');
    }
    r.cells.labels.classList.toggle('is-empty', !labels.length);
    show(r, 'hub', r.hub, d.hub);
    const step = lastStep(d);
    show(r, 'step', r.step, step);
    r.step.className = step.endsWith('failed') ? 'step-failed' : '';
    setTime(r.seen, d.last_seen);
  }

  changed();
  return {
    changed: () => load(),
    unmount() { gone = true; },
  };
}
