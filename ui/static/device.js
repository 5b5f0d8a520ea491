// The device page: every field of one gateway, its provisioning steps, its
// timeline, and Retry when it is failed or stalled.
import * as api from './api.js';
import { h, replace, setText, timeEl } from './dom.js';
import { code, fullTime, shortTime, stepWord } from './format.js';
import { stateBadge, setState, copyButton, selectText, banner, coalesce } from './widgets.js';
import { rekeyPanel } from './rekey.js';
import { editPanel } from './edit.js';
import { decommissionPanel } from './decommission.js';
import { certsPanel } from './certs.js';

export function deviceView(main, ctx, id) {
  let gone = false;
  let allEvents = false; // the operator asked for the whole timeline

  // Until the gateway's data arrives the page says it is loading, with the
  // id asked for and no state: a badge drawn before the state is known
  // would claim one ("pending") the gateway may not be in.
  const title = h('h1', { tabindex: '-1' }, 'Gateway');
  const badge = stateBadge('pending');
  badge.hidden = true;
  const sub = h('p', { class: 'lede mono' }, id);
  const loading = h('p', { class: 'loading device-loading', role: 'status' }, 'Loading the gateway…');
  const errors = banner();
  const notice = h('div', { class: 'notice', hidden: true });
  const retryBtn = h('button', { type: 'button', class: 'btn btn-primary', dataset: { action: 'retry' } }, 'Retry now');
  const retryMsg = h('p', { class: 'retry-msg', role: 'status' });
  const retryBox = h('div', { class: 'retry', hidden: true },
    h('div', {}, h('strong', { class: 'retry-title' }), h('p', { class: 'retry-reason' })),
    h('div', { class: 'retry-actions' }, retryBtn, retryMsg));
  const edit = editPanel({ onSaved: () => load(), toast: (m) => ctx.toast(m) });
  const details = h('div', { class: 'cards' });
  const rekeys = h('div', { class: 'rekeys' });
  const steps = h('div', { class: 'table-wrap' });
  const timeline = h('div', {});
  const decom = decommissionPanel(ctx, id, { reload: () => load() });
  const certs = certsPanel(id);

  // missing stands in for everything below the title when there is no
  // gateway by this id.
  const missing = h('div', { class: 'missing', hidden: true });
  // body holds the gateway's sections, shown once its data has arrived.
  const body = h('div', { class: 'device-body', hidden: true },
    notice,
    rekeys,
    retryBox,
    edit.el,
    details,
    h('section', { class: 'panel', 'aria-labelledby': 'steps-title' },
      h('h2', { id: 'steps-title' }, 'Provisioning steps'), steps),
    decom.el,
    certs.el,
    h('section', { class: 'panel', 'aria-labelledby': 'timeline-title' },
      h('h2', { id: 'timeline-title' }, 'Timeline'), timeline));
  const view = h('section', { class: 'view view-device', 'aria-busy': 'true' },
    h('a', { class: 'back', href: '#/devices' }, '← All devices'),
    h('div', { class: 'view-head device-head' }, h('div', { class: 'title-line' }, title, badge), sub),
    errors.el,
    loading,
    missing,
    body);
  main.append(view);

  retryBtn.addEventListener('click', async () => {
    retryBtn.disabled = true;
    setText(retryMsg, 'Retrying…');
    retryMsg.className = 'retry-msg';
    try {
      await api.retry(id);
      setText(retryMsg, 'Retry started: the steps run again now.');
      load();
    } catch (err) {
      setText(retryMsg, err.message);
      retryMsg.className = 'retry-msg is-error';
    } finally {
      retryBtn.disabled = false;
    }
  });

  const load = coalesce(async () => {
    try {
      const [d, ev] = await Promise.all([api.device(id), api.events(id), certs.load()]);
      if (gone) return;
      errors.clear();
      keepFocus(() => show(d, ev.events || []));
    } catch (err) {
      if (gone || err.status === 401) return;
      if (err.status === 404) {
        showMissing(err);
        return;
      }
      loading.hidden = true;
      view.removeAttribute('aria-busy');
      errors.show(`Could not load the gateway: ${err.message}`);
    }
  }, () => gone);

  // showMissing is the "no such gateway" page: what was asked for, why it
  // may be missing, and the way back. A forgotten gateway says so, from the
  // server's message.
  function showMissing(err) {
    const forgotten = err.message.includes('forgotten');
    const heading = forgotten ? 'Gateway forgotten' : 'No such gateway';
    setText(title, heading);
    ctx.setTitle(`${heading} · gatehouse`);
    badge.hidden = true;
    setText(sub, id);
    errors.clear();
    loading.hidden = true;
    body.hidden = true;
    view.removeAttribute('aria-busy');
    view.dataset.missing = '';
    replace(missing,
      h('p', { class: 'lede' }, forgotten
        ? err.message
        : ['gatehouse has no gateway with the id ', h('code', {}, id),
          '. The link may be mistyped or cut short, or the gateway was decommissioned and forgotten.']),
      h('p', {}, h('a', { class: 'btn', href: '#/devices', dataset: { key: 'missing-back' } }, 'Go to the Devices list')));
    missing.hidden = false;
  }

  function show(d, events) {
    const label = d.name || d.mac;
    setText(title, label);
    ctx.setTitle(`${label} · gatehouse`);
    loading.hidden = true;
    missing.hidden = true;
    body.hidden = false;
    badge.hidden = false;
    view.removeAttribute('aria-busy');
    delete view.dataset.missing;
    setState(badge, d.state);
    setText(sub, `${d.mac} · ${d.key_type}`);
    showNotice(d);
    showRetry(d);
    rekeyPanel(rekeys, d, ctx, load);
    edit.update(d, ctx.session);
    replace(details, identityCard(d), statusCard(d));
    replace(steps, stepsTable(d));
    decom.update(d);
    const showAll = () => {
      allEvents = true;
      replace(timeline, timelineList(events, true));
      timeline.querySelector('.timeline li')?.setAttribute('tabindex', '-1');
      timeline.querySelector('.timeline li')?.focus();
    };
    replace(timeline, timelineList(events, allEvents, showAll));
  }

  function showNotice(d) {
    notice.hidden = (d.state !== 'pending' || !!d.rekey_of) && d.state !== 'dismissed';
    if (d.state === 'pending') {
      replace(notice, 'This gateway is waiting for approval. ',
        h('a', { href: `#/pending?q=${encodeURIComponent(d.mac)}` }, 'Approve or dismiss it on the Pending page'), '.');
    } else if (d.state === 'dismissed') {
      const can = ctx.session.role !== 'viewer';
      replace(notice, 'This gateway was dismissed: its agent is told so and stops asking. ',
        can ? restoreButton() : 'An operator can move it back to pending.');
    }
  }

  // restoreButton undoes a dismissal; the agent finds the gateway pending
  // at its next contact.
  function restoreButton() {
    const btn = h('button', { type: 'button', class: 'btn', 'data-action': 'restore' }, 'Move back to pending');
    btn.addEventListener('click', async () => {
      btn.disabled = true;
      try {
        await api.restore(id);
        ctx.toast('The gateway is pending again: approve it on the Pending page once its agent asks again.');
        load();
      } catch (err) {
        errors.show(err.message);
        btn.disabled = false;
      }
    });
    return btn;
  }

  function showRetry(d) {
    const can = (d.state === 'failed' || d.state === 'stalled') && ctx.session.role !== 'viewer';
    retryBox.hidden = !can;
    retryBox.className = `retry retry-${d.state}`;
    const failed = (d.steps || []).find((s) => s.state === 'failed');
    setText(retryBox.querySelector('.retry-title'), d.state === 'failed'
      ? `Provisioning failed${failed ? ` at the ${failed.name} step` : ''}; gatehouse keeps retrying with backoff.`
      : 'The IoT Hub follow-up stalled: the gateway was not assigned to a hub in time.');
    setText(retryBox.querySelector('.retry-reason'), d.reason || '');
  }

  function identityCard(d) {
    const fp = h('code', { class: 'fp-full' }, d.fingerprint);
    const copy = copyButton({
      label: 'Copy the key fingerprint',
      text: () => d.fingerprint,
      fallback: () => {
        selectText(fp);
        ctx.toast('The clipboard is not available here: the fingerprint is selected, press Ctrl+C to copy it.');
      },
    });
    copy.dataset.key = 'copy-fp';
    return card('Identity', [
      ['Name', d.name || h('span', { class: 'muted' }, 'not named yet')],
      ['MAC', h('span', { class: 'mono' }, d.mac)],
      ['Verification code', h('span', { class: 'vcode mono' }, code(d.verification_code))],
      ['Key type', d.key_type],
      ['Key fingerprint', h('span', { class: 'fp-block' }, fp, copy)],
      ['Source address', d.source_addr ? h('span', { class: 'mono' }, d.source_addr) : '—'],
      // What the agent said of itself; older servers and agents send none.
      d.hostname ? ['Hostname', h('span', { class: 'mono' }, d.hostname)] : null,
      d.agent_version ? ['Agent version', h('span', { class: 'mono' }, d.agent_version)] : null,
      ['Device id', h('span', { class: 'mono' }, d.id)],
    ]);
  }

  function statusCard(d) {
    const labels = Object.entries(d.labels || {});
    return card('Status', [
      ['State', stateBadge(d.state)],
      d.reason ? ['Reason', h('span', { class: d.state === 'failed' || d.state === 'stalled' ? 'text-error' : '' }, d.reason)] : null,
      ['IoT Hub', d.hub || '—'],
      ['Approved', d.approved_at ? [timeEl(d.approved_at), d.approved_by ? ` by ${d.approved_by}` : ''] : '—'],
      ['First seen', timeEl(d.first_seen)],
      ['Last seen', timeEl(d.last_seen)],
      ['Updated', timeEl(d.updated_at)],
      labels.length ? ['Labels', h('ul', { class: 'labels' }, labels.map(([k, v]) => h('li', {}, h('code', {}, `${k}=${v}`))))] : null,
    ]);
  }

  load();
  return {
    changed(ids) {
      if (!ids || ids.includes(id) || ids.some((i) => rekeys.querySelector(`[data-id="${CSS.escape(i)}"]`))) load();
    },
    unmount() { gone = true; },
  };
}

function card(heading, pairs) {
  return h('section', { class: 'card' },
    h('h2', {}, heading),
    h('dl', { class: 'fields' }, pairs.filter(Boolean).map(([k, v]) => h('div', { class: 'field-row' }, h('dt', {}, k), h('dd', {}, v)))));
}

// stepOrder is the order steps run in, for reading top to bottom.
const stepOrder = ['mender', 'dps', 'vault', 'iothub'];
const rank = (name) => (stepOrder.indexOf(name) + 1) || stepOrder.length + 1;

function stepsTable(d) {
  const list = [...(d.steps || [])].sort((a, b) => rank(a.name) - rank(b.name));
  if (list.length === 0) {
    return h('p', { class: 'empty' }, d.state === 'pending'
      ? 'Steps are created when the gateway is approved.'
      : 'No provisioning steps: no backend is configured.');
  }
  return h('table', { class: 'grid grid-steps' },
    h('caption', { class: 'sr-only' }, 'Provisioning steps, one per backend'),
    h('thead', {}, h('tr', {}, ['Step', 'State', 'Attempts', 'Started', 'Finished', 'Error or note'].map((t) => h('th', { scope: 'col' }, t)))),
    h('tbody', {}, list.map(stepRow)));
}

function stepRow(s) {
  const word = stepWord(s);
  const waiting = word === 'waiting';
  const output = Object.entries(s.output || {});
  return h('tr', { dataset: { step: s.name, state: s.state } },
    h('th', { scope: 'row', 'data-label': 'Step' }, s.name),
    h('td', { 'data-label': 'State' }, h('span', { class: `step step-${waiting ? 'waiting' : s.state}` }, word)),
    h('td', { 'data-label': 'Attempts', class: 'num' }, String(s.attempts)),
    h('td', { 'data-label': 'Started' }, s.started_at ? h('time', { datetime: s.started_at, title: fullTime(s.started_at) }, shortTime(s.started_at)) : '—'),
    h('td', { 'data-label': 'Finished' }, s.finished_at ? h('time', { datetime: s.finished_at, title: fullTime(s.finished_at) }, shortTime(s.finished_at)) : '—'),
    h('td', { 'data-label': 'Error or note', class: 'cell-error' },
      s.last_error ? h('span', { class: waiting || s.state === 'succeeded' ? 'muted' : 'text-error' }, s.last_error) : '—',
      output.length ? h('dl', { class: 'output' }, output.map(outputField)) : null));
}

// outputField shows what a backend returned; long values such as
// certificates fold away so the table stays readable.
function outputField([k, v]) {
  const value = String(v);
  if (value.length <= 80 && !value.includes('\n')) return h('div', {}, h('dt', {}, k), h('dd', {}, value));
  const lines = value.trim().split('\n').length;
  return h('div', {}, h('dt', {}, k), h('dd', {},
    h('details', {}, h('summary', {}, lines > 1 ? `${lines} lines` : `${value.length} characters`),
      h('pre', {}, value))));
}

// timelineShown is how many of the latest events show before "Show all".
const timelineShown = 20;

function timelineList(events, all, showAll) {
  if (events.length === 0) return h('p', { class: 'empty' }, 'No events yet.');
  const hidden = all ? 0 : Math.max(0, events.length - timelineShown);
  const list = h('ol', { class: 'timeline' }, events.slice(hidden).map(eventItem));
  if (!hidden) return list;
  const more = h('button', { type: 'button', class: 'btn btn-quiet btn-small', dataset: { key: 'timeline-more' } },
    `Show ${hidden} earlier ${hidden === 1 ? 'event' : 'events'}`);
  more.addEventListener('click', showAll);
  return h('div', {}, more, list);
}

function eventItem(e) {
  return h('li', { class: `ev ev-${e.kind}` },
    h('time', { datetime: e.at, title: fullTime(e.at) }, shortTime(e.at)),
    h('div', { class: 'ev-body' },
      h('span', { class: 'ev-kind' }, kindLabel(e.kind)),
      e.actor ? h('span', { class: 'ev-actor' }, ` by ${e.actor}`) : null,
      e.detail ? h('p', { class: 'ev-detail' }, e.detail) : null));
}

// kindLabel turns "step_failed" into "Step failed".
function kindLabel(kind) {
  const s = kind.replaceAll('_', ' ');
  return s.charAt(0).toUpperCase() + s.slice(1);
}

// keepFocus re-renders without losing the keyboard focus, by finding the
// focused control again by its data-key.
function keepFocus(render) {
  const key = document.activeElement?.dataset?.key;
  render();
  if (key) document.querySelector(`[data-key="${key}"]`)?.focus();
}
