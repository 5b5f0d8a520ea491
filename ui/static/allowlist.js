// The Allowlist page: gateways listed by MAC before they enroll, each
// approved under its listed name when its first key enrolls. Operators
// upload a CSV file, see every bad row by line, and remove entries; anyone
// sees which entries a gateway has used.
import * as api from './api.js';
import { h, replace, setText, keyedRows, timeEl } from './dom.js';
import { banner, confirmBox, coalesce, statusBadge, setStatus } from './widgets.js';

const roleRank = { viewer: 1, operator: 2, admin: 3 };

export function allowlistView(main, ctx) {
  let gone = false;
  const canEdit = (roleRank[ctx.session.role] || 0) >= roleRank.operator;
  const rows = new Map();
  const errors = banner();
  const upload = canEdit ? uploadForm() : null;
  const count = h('p', { class: 'range muted', 'aria-live': 'polite' });
  const tbody = h('tbody');
  const empty = h('p', { class: 'empty', hidden: true }, 'Nothing is on the allowlist.');
  const table = h('table', { class: 'grid grid-admin grid-allowlist' },
    h('caption', { class: 'sr-only' }, 'Allowlist entries'),
    h('thead', {}, h('tr', {},
      ['MAC', 'Name', 'Labels', 'Status', 'Imported', canEdit ? 'Actions' : null]
        .filter(Boolean).map((t) => h('th', { scope: 'col' }, t)))),
    tbody);

  main.append(h('section', { class: 'view', 'aria-labelledby': 'allowlist-title' },
    h('div', { class: 'view-head' },
      h('h1', { id: 'allowlist-title', tabindex: '-1' }, 'Allowlist'),
      h('p', { class: 'lede' },
        'A gateway whose MAC is listed here is approved under its listed name and labels when it first enrolls, ',
        'and its key is pinned to the entry: a later key claiming that MAC waits on the Pending page. ',
        'The MAC is only what the gateway claims, so list gateways shortly before they are switched on.')),
    upload?.el,
    h('div', { class: 'toolbar' }, count),
    errors.el,
    h('div', { class: 'table-wrap' }, table, empty)));

  const load = coalesce(async () => {
    try {
      const page = await api.listAllowlist();
      if (gone) return;
      errors.clear();
      keyedRows(tbody, rows, page.entries, (e) => e.mac, createRow, updateRow);
      const used = page.entries.filter((e) => e.device_id).length;
      setText(count, `${page.total} ${page.total === 1 ? 'entry' : 'entries'}, ${used} used`);
      table.hidden = page.entries.length === 0;
      empty.hidden = page.entries.length > 0;
    } catch (err) {
      if (!gone && err.status !== 401) errors.show(`Could not load the allowlist: ${err.message}`);
    }
  }, () => gone);

  function createRow(e) {
    const r = { mac: e.mac };
    r.name = h('td', { 'data-label': 'Name', class: 'cell-name' });
    r.labels = h('td', { 'data-label': 'Labels' });
    r.badge = statusBadge('unused');
    r.device = h('span', { class: 'sub' });
    r.imported = h('td', { 'data-label': 'Imported' });
    r.macCell = h('th', { scope: 'row', 'data-label': 'MAC', class: 'mono', tabindex: '-1' }, e.mac);
    const cells = [r.macCell, r.name, r.labels, h('td', { 'data-label': 'Status' }, r.badge, r.device), r.imported];
    if (canEdit) {
      r.remove = h('button', { type: 'button', class: 'btn btn-small', dataset: { action: 'remove' }, 'aria-label': `Remove ${e.mac}` }, 'Remove');
      r.actions = h('div', { class: 'actions' }, r.remove);
      r.confirm = confirmBox(r.actions);
      r.error = h('p', { class: 'row-error', role: 'alert' });
      cells.push(h('td', { 'data-label': 'Actions', class: 'cell-actions' }, r.actions, r.confirm.el, r.error));
      r.remove.addEventListener('click', () => r.confirm.open({
        question: r.entry.device_id
          ? `Remove ${r.entry.mac}? Its gateway keeps its name; the name is no longer kept for it.`
          : `Remove ${r.entry.mac}? A gateway with that MAC will then wait for approval.`,
        yesText: 'Yes, remove', from: r.remove, run: () => remove(r),
      }));
    }
    r.el = h('tr', { dataset: { mac: e.mac } }, cells);
    return r;
  }

  function updateRow(r, e) {
    r.entry = e;
    const status = e.device_id ? 'used' : 'unused';
    r.el.dataset.status = status;
    setText(r.name, e.name);
    const labels = Object.entries(e.labels || {}).sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => `${k}=${v}`);
    replace(r.labels, labels.length ? h('span', { class: 'mono' }, labels.join(', ')) : h('span', { class: 'muted' }, '—'));
    setStatus(r.badge, status);
    replace(r.device, e.device_id
      ? ['by ', h('a', { href: `#/devices/${encodeURIComponent(e.device_id)}` }, e.device_id),
        ', key ', h('span', { class: 'mono', title: e.fingerprint }, e.fingerprint.slice(0, 16)), ' ', timeEl(e.used_at)]
      : null);
    replace(r.imported, h('span', { class: 'mono' }, e.imported_by), h('span', { class: 'sub' }, timeEl(e.imported_at)));
  }

  async function remove(r) {
    setText(r.error, '');
    try {
      await api.removeAllowlist(r.mac);
      if (gone) return;
      r.confirm.close(false);
      ctx.toast(`${r.mac} removed from the allowlist`);
      await load();
      // The row is gone; the keyboard goes back to the top of the list.
      main.querySelector('h1')?.focus();
    } catch (err) {
      if (gone) return;
      r.confirm.close();
      setText(r.error, err.message);
      if (err.status === 404) load();
    }
  }

  // uploadForm sends a file, first as a check when asked, and shows what
  // the server found: each bad row by line, or what was imported.
  function uploadForm() {
    const file = h('input', {
      id: 'allowlist-file', name: 'file', type: 'file', accept: '.csv,text/csv,text/plain', required: true,
      'aria-describedby': 'allowlist-file-help',
    });
    const skip = h('input', { id: 'allowlist-skip', name: 'skip_invalid', type: 'checkbox' });
    const check = h('button', { type: 'button', class: 'btn', id: 'allowlist-check' }, 'Check only');
    const submit = h('button', { type: 'submit', class: 'btn btn-primary', id: 'allowlist-import' }, 'Import');
    const summary = h('p', { id: 'allowlist-summary', class: 'import-summary', role: 'status' });
    const rowErrors = h('ol', { id: 'allowlist-errors', class: 'row-errors', hidden: true, 'aria-label': 'Rows with errors' });
    const el = h('form', { class: 'panel-form', id: 'allowlist-upload', novalidate: true, 'aria-labelledby': 'allowlist-upload-title' },
      h('h2', { id: 'allowlist-upload-title' }, 'Import a file'),
      h('div', { class: 'form-fields' },
        h('div', { class: 'field' },
          h('label', { for: 'allowlist-file' }, 'CSV file'), file,
          h('span', { id: 'allowlist-file-help', class: 'help' },
            'One gateway a line: ', h('code', {}, 'mac,name,labels'), ', labels as ', h('code', {}, 'key=value;key=value'),
            '. A header row may name the columns in any order; lines starting with # are comments. ',
            'Every row is checked first, names included in each backend, which can take a minute for a large file.')),
        h('div', { class: 'field field-check' },
          skip, h('label', { for: 'allowlist-skip' }, 'Import the good rows even if some are bad'))),
      h('div', { class: 'form-actions' }, submit, check),
      summary,
      rowErrors);

    const send = async (dryRun) => {
      const f = file.files[0];
      if (!f) {
        show({ message: 'Choose a CSV file first.', kind: 'error' });
        file.focus();
        return;
      }
      submit.disabled = check.disabled = true;
      show({ message: dryRun ? `Checking ${f.name}…` : `Importing ${f.name}…` });
      try {
        const res = await api.importAllowlist(f, { skipInvalid: skip.checked, dryRun });
        if (gone) return;
        const verb = res.dry_run ? 'would be imported' : 'imported';
        const parts = [`${f.name}: ${res.imported.length} of ${res.rows} rows ${verb}`];
        if (res.unchanged) parts.push(`${res.unchanged} listed already`);
        if (res.errors.length) parts.push(`${res.errors.length} bad ${res.errors.length === 1 ? 'row' : 'rows'} skipped`);
        show({ message: `${parts.join('; ')}.`, kind: res.errors.length ? 'warn' : 'ok', errors: res.errors, name: f.name });
        if (!res.dry_run) {
          ctx.toast(`${res.imported.length} ${res.imported.length === 1 ? 'entry' : 'entries'} imported`);
          load();
        }
      } catch (err) {
        if (gone) return;
        const bad = err.body?.errors || [];
        const hint = bad.length && !skip.checked ? ' Fix them, or tick "Import the good rows" to import the others.' : '';
        show({ message: `${err.message}.${hint}`, kind: 'error', errors: bad, name: f.name });
      } finally {
        submit.disabled = check.disabled = false;
      }
    };
    el.addEventListener('submit', (e) => {
      e.preventDefault();
      send(false);
    });
    check.addEventListener('click', () => send(true));
    file.addEventListener('change', () => show({ message: '' }));

    function show({ message, kind = 'ok', errors: bad = [], name = '' }) {
      summary.dataset.kind = kind;
      setText(summary, message);
      // Each bad row as FILE:LINE, the way the CLI and compilers print them.
      replace(rowErrors, bad.map((e) => h('li', { dataset: { line: e.line } },
        h('span', { class: 'mono' }, `${name}:${e.line}`), ' ', e.error)));
      rowErrors.hidden = bad.length === 0;
    }
    return { el };
  }

  load();
  return {
    // A gateway enrolling may use an entry: the list follows.
    changed: () => load(),
    unmount() { gone = true; },
  };
}
