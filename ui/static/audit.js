// The Audit page, for admins: every operator decision, refused or not, and
// every refused login, newest first; "Older" pages back. The log is
// hash-chained on the server; `gatehouse audit verify` checks it.
import * as api from './api.js';
import { h, setText } from './dom.js';
import { fullTime, shortTime, num } from './format.js';
import { banner } from './widgets.js';

const pageSize = 100;

export function auditView(main) {
  let gone = false;
  let next = 0; // the before of the next older page; 0: none left
  let shown = 0;
  let generation = 0; // bumped by "Show newest", so a page still loading for the old list is dropped

  const errors = banner();
  const count = h('p', { class: 'range muted', 'aria-live': 'polite' });
  const tbody = h('tbody');
  const empty = h('p', { class: 'empty', hidden: true }, 'Nothing has been recorded yet.');
  const table = h('table', { class: 'grid grid-audit', hidden: true },
    h('caption', { class: 'sr-only' }, 'Audit log, newest first'),
    h('thead', {}, h('tr', {},
      ['Time', 'Actor', 'Source', 'Action', 'Target', 'Result'].map((t) => h('th', { scope: 'col' }, t)))),
    tbody);
  const older = h('button', { type: 'button', class: 'btn', dataset: { page: 'older' }, hidden: true }, 'Older');
  const newest = h('button', { type: 'button', class: 'btn btn-quiet', dataset: { action: 'newest' } }, 'Show newest');

  main.append(h('section', { class: 'view', 'aria-labelledby': 'audit-title' },
    h('div', { class: 'view-head' },
      h('h1', { id: 'audit-title', tabindex: '-1' }, 'Audit log'),
      h('p', { class: 'lede' }, 'Every decision and refusal, who made it and from where, newest first. ',
        'Entries are hash-chained: ', h('code', {}, 'gatehouse audit verify'), ' checks that none was changed or removed.')),
    h('div', { class: 'toolbar' }, newest, count),
    errors.el,
    h('div', { class: 'table-wrap' }, table, empty),
    h('nav', { class: 'pager', 'aria-label': 'Pages' }, older)));

  older.addEventListener('click', () => load(next));
  newest.addEventListener('click', () => {
    generation += 1;
    tbody.replaceChildren();
    shown = 0;
    load(0);
  });

  async function load(before) {
    const gen = generation;
    older.disabled = true;
    try {
      const p = await api.auditLog({ before, limit: pageSize });
      if (gone || gen !== generation) return;
      errors.clear();
      for (const e of p.entries) tbody.append(row(e));
      shown += p.entries.length;
      next = p.next_before || 0;
      older.hidden = !next;
      table.hidden = shown === 0;
      empty.hidden = shown > 0;
      setText(count, `${num(shown)} ${shown === 1 ? 'entry' : 'entries'} shown${next ? '' : ', back to the first'}`);
    } catch (err) {
      if (!gone && err.status !== 401) errors.show(`Could not load the audit log: ${err.message}`);
    } finally {
      older.disabled = false;
    }
  }

  load(0);
  return { unmount() { gone = true; } };
}

function row(e) {
  const result = h('span', { class: `result result-${e.result.split(':')[0]}` }, e.result);
  const detail = detailText(e.detail);
  return h('tr', { dataset: { seq: e.seq, action: e.action } },
    h('td', { 'data-label': 'Time' }, h('time', { datetime: e.at, title: `${fullTime(e.at)} · entry ${e.seq}` }, shortTime(e.at))),
    h('td', { 'data-label': 'Actor' }, h('span', {}, e.actor)),
    h('td', { 'data-label': 'Source' }, h('span', { class: 'mono' }, e.source || '—')),
    h('td', { 'data-label': 'Action' }, h('span', { class: 'audit-action' }, e.action)),
    h('td', { 'data-label': 'Target', class: 'cell-target' }, h('span', { class: 'mono' }, e.target || '—')),
    h('td', { 'data-label': 'Result', class: 'cell-result' },
      h('span', {}, result, detail ? h('span', { class: 'sub' }, detail) : null)));
}

// detailText shows an entry's detail object as "key: value" pairs.
function detailText(raw) {
  let d;
  try {
    d = JSON.parse(raw || '{}');
  } catch {
    return raw;
  }
  const parts = Object.entries(d)
    .filter(([k, v]) => !(k === 'suppressed' && v === 0))
    .map(([k, v]) => `${k.replaceAll('_', ' ')}: ${typeof v === 'object' ? JSON.stringify(v) : v}`);
  return parts.join(' · ');
}
