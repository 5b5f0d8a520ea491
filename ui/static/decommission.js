// The device page's decommission panel: see what a decommission would remove
// (a dry run), decommission behind a typed confirmation, follow each
// backend's removal, and forget the gateway once nothing is left of it.
import * as api from './api.js';
import { h, replace, setText } from './dom.js';
import { fullTime, shortTime } from './format.js';

// decommissionPanel is made once per page and updated with every load, so
// an open confirmation keeps what the operator typed through live updates.
export function decommissionPanel(ctx, id, { reload }) {
  const can = ctx.session.role !== 'viewer';
  const intro = h('p', { class: 'decom-intro' });
  const status = h('div', { class: 'table-wrap' });
  const startBtn = h('button', { type: 'button', class: 'btn btn-danger', dataset: { action: 'decommission', key: 'decommission' } }, 'Decommission…');
  const forgetBtn = h('button', { type: 'button', class: 'btn', dataset: { action: 'forget', key: 'forget' } }, 'Forget…');
  const retryBtn = h('button', { type: 'button', class: 'btn', dataset: { action: 'retry-removal', key: 'retry-removal' } }, 'Retry now');
  const actions = h('div', { class: 'decom-actions' }, startBtn, retryBtn, forgetBtn);
  // Its own message line: the page's banner is cleared by every live update.
  const note = h('p', { class: 'form-error', role: 'alert' });
  const confirm = typedConfirm();
  // Hidden until the first load: the confirmation needs the gateway's name.
  const el = h('section', { class: 'panel panel-decom', 'aria-labelledby': 'decom-title', hidden: true },
    h('h2', { id: 'decom-title' }, 'Decommission'), intro, status, actions, note, confirm.el);
  let device = null;

  startBtn.addEventListener('click', async () => {
    startBtn.disabled = true;
    setText(note, '');
    try {
      const plan = await api.decommission(id, true);
      confirm.open({
        from: startBtn,
        expected: expectedText(device),
        what: 'decommission',
        plan: planList(plan),
        yesText: 'Decommission',
        run: async () => {
          await api.decommission(id, false);
          ctx.toast('Decommissioned: its key is refused from now on, and each backend removes it in the background.');
          confirm.close();
          reload();
        },
      });
    } catch (err) {
      setText(note, `Could not plan the decommission: ${err.message}`);
    } finally {
      startBtn.disabled = false;
    }
  });

  retryBtn.addEventListener('click', async () => {
    retryBtn.disabled = true;
    setText(note, '');
    try {
      await api.retry(id);
      ctx.toast('Retrying the failing removals now.');
      reload();
    } catch (err) {
      setText(note, err.message);
    } finally {
      retryBtn.disabled = false;
    }
  });

  forgetBtn.addEventListener('click', () => {
    confirm.open({
      from: forgetBtn,
      expected: expectedText(device),
      what: 'forget',
      plan: h('p', {}, 'gatehouse forgets this gateway: its record and keys go, its timeline stays. ',
        'If its agent asks again it enrolls as a new pending gateway.'),
      yesText: 'Forget',
      run: async () => {
        await api.forgetDevice(id);
        ctx.toast(`Forgot ${expectedText(device)}: its next contact enrolls it as a new gateway.`);
        ctx.navigate('#/devices');
      },
    });
  });

  return {
    el,
    update(d) {
      device = d;
      const dec = d.decommission;
      const done = dec ? removalsDone(dec) : false;
      el.hidden = !dec && !can;
      startBtn.hidden = !can || d.state === 'decommissioned';
      retryBtn.hidden = !can || !dec || !dec.backends.some((b) => b.state !== 'succeeded' && (b.state === 'failed' || b.last_error));
      forgetBtn.hidden = !can || !(d.state === 'dismissed' || (d.state === 'decommissioned' && done));
      if (confirm.isOpen && ((confirm.what === 'decommission' && startBtn.hidden) || (confirm.what === 'forget' && forgetBtn.hidden))) {
        confirm.close(false);
      }
      replace(intro, introText(d, dec, done));
      replace(status, dec && dec.backends.length ? removalsTable(dec) : '');
    },
  };
}

function expectedText(d) { return d?.name || d?.id || ''; }

function removalsDone(dec) { return dec.backends.every((b) => b.state === 'succeeded'); }

function introText(d, dec, done) {
  if (!dec) {
    return d.state === 'dismissed'
      ? 'Forget this gateway to let its key enroll again as a new gateway, or decommission it to refuse its key for good.'
      : 'Decommissioning removes this gateway from every backend and refuses its key from then on. A dry run shows what would go first.';
  }
  const when = dec.at ? [' on ', h('time', { datetime: dec.at, title: fullTime(dec.at) }, shortTime(dec.at))] : [];
  const head = ['Decommissioned by ', h('strong', {}, dec.by || 'an operator'), ...when, '; its key is refused. '];
  if (!dec.backends.length) return [...head, 'Nothing was provisioned, so nothing had to be removed.'];
  return [...head, done
    ? 'Every backend has removed it; it can be forgotten.'
    : 'The backends below are still removing it; a failing one keeps retrying with backoff.'];
}

function removalsTable(dec) {
  return h('table', { class: 'grid grid-removals' },
    h('caption', { class: 'sr-only' }, 'Removal from each backend'),
    h('thead', {}, h('tr', {}, ['Backend', 'State', 'Attempts', 'Receipt or error'].map((t) => h('th', { scope: 'col' }, t)))),
    h('tbody', {}, dec.backends.map((b) => h('tr', { dataset: { backend: b.backend, state: b.state } },
      h('th', { scope: 'row', 'data-label': 'Backend' }, b.backend),
      h('td', { 'data-label': 'State' }, h('span', { class: `step step-${b.waiting ? 'waiting' : b.state}` }, b.waiting ? 'waiting' : b.state)),
      h('td', { 'data-label': 'Attempts', class: 'num' }, String(b.attempts || 0)),
      h('td', { 'data-label': 'Receipt or error', class: 'cell-error' }, receipt(b))))));
}

function receipt(b) {
  const lines = (b.removals || []).map((r) => h('li', {}, `${r.object}: ${r.result}`));
  return [
    lines.length ? h('ul', { class: 'receipt' }, lines) : (b.state === 'succeeded' ? 'held nothing of it' : null),
    b.waiting ? h('span', { class: 'muted' }, b.waiting) : null,
    b.last_error ? h('span', { class: 'text-error' }, b.last_error) : null,
  ];
}

function planList(plan) {
  const items = [];
  for (const b of plan.backends || []) {
    for (const r of b.removals || []) items.push(h('li', { dataset: { backend: b.backend } }, `${b.backend}: ${r.object} — ${r.result}`));
    if (b.last_error) items.push(h('li', { class: 'text-error' }, `${b.backend}: could not tell what it holds: ${b.last_error}`));
  }
  if (!items.length) return h('p', { class: 'decom-plan' }, 'No backend holds anything of this gateway: it only moves to decommissioned.');
  return h('div', { class: 'decom-plan' }, h('p', {}, 'This would remove:'), h('ul', { class: 'plan' }, items));
}

// typedConfirm asks the operator to type the gateway's name (or id) before
// a change that cannot be undone; the button stays disabled until it
// matches. Escape and Cancel close it.
function typedConfirm() {
  const plan = h('div', {});
  const label = h('label', { for: 'decom-confirm' });
  const input = h('input', { type: 'text', id: 'decom-confirm', autocomplete: 'off', spellcheck: 'false', dataset: { key: 'decom-confirm' } });
  const yes = h('button', { type: 'submit', class: 'btn btn-danger', dataset: { action: 'confirm-decom' }, disabled: true });
  const no = h('button', { type: 'button', class: 'btn', dataset: { action: 'cancel-decom' } }, 'Cancel');
  const msg = h('p', { class: 'form-error', role: 'alert' });
  const el = h('form', { class: 'panel-form decom-confirm', hidden: true, novalidate: true },
    plan, h('div', { class: 'field' }, label, input), h('div', { class: 'decom-actions' }, yes, no), msg);
  let asked = null;
  const box = {
    el,
    get isOpen() { return !el.hidden; },
    get what() { return asked?.what; },
    open(a) {
      asked = a;
      replace(plan, a.plan);
      setText(label, `Type ${a.expected} to ${a.what} it`);
      setText(yes, a.yesText);
      input.value = '';
      yes.disabled = true;
      setText(msg, '');
      el.hidden = false;
      input.focus();
    },
    close(focus = true) {
      if (el.hidden) return;
      el.hidden = true;
      if (focus && asked?.from?.isConnected && !asked.from.hidden) asked.from.focus();
    },
  };
  input.addEventListener('input', () => { yes.disabled = input.value.trim() !== asked?.expected; });
  no.addEventListener('click', () => box.close());
  el.addEventListener('keydown', (e) => { if (e.key === 'Escape') box.close(); });
  el.addEventListener('submit', async (e) => {
    e.preventDefault();
    if (input.value.trim() !== asked?.expected) return;
    yes.disabled = true;
    setText(msg, '');
    try {
      await asked.run();
    } catch (err) {
      setText(msg, err.message);
      yes.disabled = false;
    }
  });
  return box;
}
