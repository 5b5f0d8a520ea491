// The Pending page's action bar for the gateways ticked in its list:
// approve them all with a name pattern (site-a-{n:03}), with a live
// preview of the names the server would give, or dismiss them all. The
// work runs on the server as one bulk operation; the bar follows it with
// live counts until every gateway has its result.
import * as api from './api.js';
import { h, setText, debounce } from './dom.js';
import { num } from './format.js';

// previewShown is how many names the preview lists.
const previewShown = 3;

// pollEvery is how often a running operation's counts are read.
const pollEvery = 1000;

// bulkBar returns the bar. selected() lists the ticked gateways in page
// order; cleared() is called once they were handed to the server.
export function bulkBar({ selected, cleared, finished }) {
  const count = h('strong', { class: 'bulk-count', id: 'bulk-count' });
  const pattern = h('input', {
    id: 'bulk-pattern', type: 'text', class: 'name-input', autocomplete: 'off', autocapitalize: 'none',
    spellcheck: 'false', placeholder: 'site-a-{n:03}', 'aria-describedby': 'bulk-preview',
  });
  const start = h('input', { id: 'bulk-start', type: 'number', class: 'name-input bulk-start', min: 0, value: 1 });
  const approve = h('button', { type: 'submit', class: 'btn btn-primary', id: 'bulk-approve' }, 'Approve selected');
  const dismiss = h('button', { type: 'button', class: 'btn', id: 'bulk-dismiss' }, 'Dismiss selected');
  const yes = h('button', { type: 'button', class: 'btn btn-danger', id: 'bulk-confirm-dismiss' }, 'Yes, dismiss them');
  const no = h('button', { type: 'button', class: 'btn', id: 'bulk-cancel-dismiss' }, 'Cancel');
  const confirmQ = h('span', { class: 'confirm-q' });
  const confirm = h('div', { class: 'confirm', role: 'group', 'aria-label': 'Confirm dismissing the selected gateways', hidden: true },
    confirmQ, yes, no);
  const preview = h('p', { id: 'bulk-preview', class: 'bulk-preview muted', 'aria-live': 'polite' });
  const error = h('p', { class: 'row-error', id: 'bulk-error', role: 'alert' });
  const form = h('form', { class: 'bulk-form', novalidate: true },
    h('span', { class: 'bulk-selected' }, count, ' selected'),
    h('label', { for: 'bulk-pattern' }, 'Name pattern'), pattern,
    h('label', { for: 'bulk-start' }, 'from'), start,
    approve, dismiss, confirm);
  const progress = runningView();
  const el = h('section', { class: 'bulk-bar', id: 'bulk-bar', 'aria-label': 'Selected gateways', hidden: true },
    form, preview, error, progress.el);

  let previewSeq = 0;
  const refreshPreview = debounce(async () => {
    const ids = selected();
    const seq = ++previewSeq;
    if (!ids.length || !pattern.value.trim()) {
      setText(preview, ids.length ? 'Type a pattern with {n} or {n:03} for the number, e.g. site-a-{n:03}.' : '');
      return;
    }
    try {
      const plan = await api.planBulk(approveRequest(ids));
      if (seq !== previewSeq) return;
      preview.classList.toggle('is-error', plan.problems.length > 0);
      setText(preview, plan.problems.length ? problemText(plan.problems) : namesText(plan.items));
    } catch (err) {
      if (seq !== previewSeq) return;
      preview.classList.add('is-error');
      setText(preview, err.message);
    }
  }, 200);

  function approveRequest(ids) {
    return { action: 'approve', ids, pattern: pattern.value.trim(), start: Math.max(0, parseInt(start.value, 10) || 0) };
  }

  pattern.addEventListener('input', refreshPreview);
  start.addEventListener('input', refreshPreview);
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const ids = selected();
    if (!pattern.value.trim()) {
      setText(error, 'Type a name pattern first, e.g. site-a-{n:03}.');
      pattern.focus();
      return;
    }
    run(approveRequest(ids), `Approving ${num(ids.length)} gateways`);
  });
  dismiss.addEventListener('click', () => {
    setText(confirmQ, `Dismiss ${num(selected().length)} gateways?`);
    confirm.hidden = false;
    dismiss.hidden = true;
    no.focus();
  });
  const closeConfirm = () => { confirm.hidden = true; dismiss.hidden = false; };
  no.addEventListener('click', () => { closeConfirm(); dismiss.focus(); });
  confirm.addEventListener('keydown', (e) => { if (e.key === 'Escape') { closeConfirm(); dismiss.focus(); } });
  yes.addEventListener('click', () => {
    closeConfirm();
    const ids = selected();
    run({ action: 'dismiss', ids }, `Dismissing ${num(ids.length)} gateways`);
  });

  async function run(req, label) {
    setText(error, '');
    approve.disabled = dismiss.disabled = true;
    try {
      const op = await api.startBulk(req);
      cleared();
      progress.follow(op, label, finished);
    } catch (err) {
      setText(error, err.message);
    } finally {
      approve.disabled = dismiss.disabled = false;
    }
  }

  return {
    el,
    // update shows the bar while gateways are ticked, or an operation runs.
    update(n) {
      setText(count, num(n));
      form.hidden = n === 0;
      preview.hidden = n === 0;
      el.hidden = n === 0 && !progress.active();
      refreshPreview();
    },
    unmount() { progress.stop(); },
  };
}

function namesText(items) {
  const first = items.slice(0, previewShown).map((it) => `${it.name} (${it.mac})`);
  const more = items.length > previewShown ? `, … ${items[items.length - 1].name}` : '';
  return `Names: ${first.join(', ')}${more}`;
}

function problemText(problems) {
  const first = problems.slice(0, previewShown).map((p) => `gateway ${p.item}: ${p.error}`);
  const more = problems.length > previewShown ? ` (and ${problems.length - previewShown} more)` : '';
  return `Cannot approve: ${first.join('; ')}${more}`;
}

// runningView shows a running operation's counts, polled from the server,
// and what failed once it is over.
function runningView() {
  const title = h('strong', { class: 'bulk-run-title' });
  const bar = h('progress', { id: 'bulk-progress', max: 1, value: 0 });
  const counts = h('span', { id: 'bulk-counts', class: 'bulk-counts' });
  const failures = h('ul', { class: 'bulk-failures', id: 'bulk-failures' });
  const close = h('button', { type: 'button', class: 'btn', hidden: true }, 'Close');
  const el = h('div', { class: 'bulk-run', id: 'bulk-run', role: 'status', hidden: true },
    h('div', { class: 'bulk-run-line' }, title, bar, counts, close), failures);
  let timer = 0;
  let running = false;
  close.addEventListener('click', () => { el.hidden = true; el.closest('.bulk-bar').hidden = true; });

  async function poll(id, finished) {
    try {
      const op = await api.bulk(id);
      show(op);
      if (op.finished_at) {
        running = false;
        close.hidden = false;
        finished?.(op);
        return;
      }
    } catch (err) {
      setText(counts, `Could not read progress: ${err.message}`);
    }
    timer = setTimeout(() => poll(id, finished), pollEvery);
  }

  function show(op) {
    bar.max = Math.max(op.total, 1);
    bar.value = op.done + op.failed;
    setText(counts, `${num(op.done)} done, ${num(op.failed)} failed of ${num(op.total)}`);
    el.dataset.done = String(op.done);
    el.dataset.failed = String(op.failed);
    el.dataset.total = String(op.total);
    const failed = (op.items || []).filter((it) => it.state === 'failed');
    failures.replaceChildren(...failed.slice(0, 20).map((it) =>
      h('li', {}, h('span', { class: 'mono' }, it.mac || it.device_id), it.name ? ` ${it.name}` : '', `: ${it.result}`)));
  }

  return {
    el,
    // active holds while an operation runs, and after, until the operator
    // closes its result.
    active: () => running || !el.hidden,
    follow(op, label, finished) {
      clearTimeout(timer);
      running = true;
      close.hidden = true;
      el.hidden = false;
      el.closest('.bulk-bar').hidden = false;
      setText(title, label);
      show(op);
      poll(op.id, finished);
    },
    stop() { clearTimeout(timer); },
  };
}
