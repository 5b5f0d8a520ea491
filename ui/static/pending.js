// The Pending view: one row per gateway waiting for approval, where an
// operator checks the verification code, types a name and accepts or
// dismisses. Rows are keyed by device id and updated in place, so a live
// refresh never wipes what is being typed.
import * as api from './api.js';
import { h, replace, setText, setAttr, keyedRows, timeEl, setTime } from './dom.js';
import { code, shortFingerprint, isSilent, duration, num } from './format.js';
import { searchBox, pager, copyButton, selectText, banner, coalesce, listParams } from './widgets.js';
import { conflictLink } from './conflict.js';
import { rekeyBadge, markRekey, approveRow } from './rekey.js';
import { bulkBar } from './bulk.js';

const pageSize = 50;

// namePattern is the server's name policy as an HTML pattern (anchored by
// the browser; '-' escaped for the 'v' flag browsers compile patterns with).
const namePattern = '[a-z0-9]([a-z0-9\\-]{0,61}[a-z0-9])?';

// maxName is the server's longest name. The input has no maxlength: a cut
// name would be approved under a name nobody typed, so a long one is
// shown as an error instead, with every character kept.
const maxName = 63;
const tooLong = (name) => (name.length > maxName
  ? `Names are at most ${maxName} characters; this one has ${name.length}. Shorten it before accepting.`
  : '');

// drafts keeps typed names by device id across pages and views, until the
// gateway is accepted or dismissed.
const drafts = new Map();

const seenFilters = [
  { value: '', label: 'All' },
  { value: 'active', label: 'Active now' },
  { value: 'silent', label: 'Silent (2 min+)' },
];

export function pendingView(main, ctx) {
  const canDecide = ctx.session.role !== 'viewer';
  const p = ctx.params;
  const state = {
    q: p.get('q') || '',
    seen: ['active', 'silent'].includes(p.get('seen')) ? p.get('seen') : '',
    offset: Math.max(0, (parseInt(p.get('page'), 10) || 1) - 1) * pageSize,
    total: 0,
  };
  const rows = new Map();
  let gone = false;
  // picked holds the ticked gateways of this page, for the bulk bar.
  const picked = new Set();
  const bulk = bulkBar({
    selected: () => [...tbody.children].map((tr) => tr.dataset.id).filter((id) => picked.has(id)),
    cleared: () => { picked.clear(); syncPicks(); },
    finished: () => load(),
  });
  const pickAll = h('input', { type: 'checkbox', id: 'pick-all', 'aria-label': 'Select every gateway on this page' });
  pickAll.addEventListener('change', () => {
    for (const r of rows.values()) if (pickAll.checked) picked.add(r.id); else picked.delete(r.id);
    syncPicks();
  });

  const search = searchBox({
    id: 'pending-search', label: 'Search', placeholder: 'MAC, hostname, fingerprint or code', value: state.q,
    onChange: (q) => { state.q = q; state.offset = 0; saveParams(); load(); },
  });
  const filter = seenFilter(state.seen, (seen) => { state.seen = seen; state.offset = 0; saveParams(); load(); });
  const pages = pager((dir) => {
    state.offset = Math.max(0, state.offset + dir * pageSize);
    saveParams();
    load();
  });
  const topRange = h('p', { class: 'range muted', 'aria-live': 'polite' });
  const errors = banner();
  const queue = queueAlert();
  const tbody = h('tbody');
  const empty = h('p', { class: 'empty', hidden: true });
  const table = h('table', { class: 'grid grid-pending' },
    h('caption', { class: 'sr-only' }, 'Gateways waiting for approval'),
    h('thead', {}, h('tr', {},
      canDecide ? h('th', { scope: 'col', class: 'cell-pick' }, pickAll) : null,
      h('th', { scope: 'col' }, 'Gateway'),
      h('th', { scope: 'col' }, 'Verification code'),
      h('th', { scope: 'col' }, 'Key fingerprint'),
      h('th', { scope: 'col' }, 'Seen'),
      h('th', { scope: 'col' }, canDecide ? 'Name and decision' : 'Decision'))),
    tbody);

  main.append(h('section', { class: 'view', 'aria-labelledby': 'pending-title' },
    h('div', { class: 'view-head' },
      h('h1', { id: 'pending-title', tabindex: '-1' }, 'Pending gateways'),
      h('p', { class: 'lede' },
        'Check that the verification code matches the one on the gateway\'s console, then name it to provision it.')),
    queue.el,
    h('div', { class: 'toolbar' }, search.el, filter.el, topRange),
    errors.el,
    canDecide ? bulk.el : null,
    h('div', { class: 'table-wrap' }, table, empty),
    pages.el));

  function saveParams() {
    ctx.setParams(listParams({ q: state.q, seen: state.seen }, state.offset, pageSize));
  }

  // load fetches the current page (see coalesce for bursts).
  const load = coalesce(async () => {
    try {
      const l = await api.listDevices({
        state: 'pending', q: state.q, seen: state.seen, limit: pageSize, offset: state.offset,
      });
      if (gone) return;
      errors.clear();
      if (l.devices.length === 0 && state.offset > 0 && l.total > 0) {
        // The page emptied under us (others approved): show the last one.
        state.offset = Math.floor((l.total - 1) / pageSize) * pageSize;
        saveParams();
        return true;
      }
      show(l);
    } catch (err) {
      if (!gone && err.status !== 401) errors.show(`Could not load pending gateways: ${err.message}`);
    }
  }, () => gone);

  function show(l) {
    state.total = l.total;
    queue.update(l.pending_total, l.pending_cap);
    const now = Date.now();
    const held = focusedRow();
    keyedRows(tbody, rows, l.devices, (d) => d.id, (d) => createRow(d), (r, d) => updateRow(r, d, now));
    // After every row is in: a flag names its peers by what is on screen.
    for (const r of rows.values()) markDuplicates(r);
    for (const id of picked) if (!rows.has(id)) picked.delete(id);
    syncPicks();
    // The row being worked in left the list (decided here or elsewhere):
    // the keyboard user continues in the next one.
    if (held && !rows.has(held.id)) refocus(held);
    pages.update(state.offset, l.devices.length, l.total);
    setText(topRange, l.total ? `${pagesText(l)}` : '');
    table.hidden = l.devices.length === 0;
    empty.hidden = l.devices.length > 0;
    setText(empty, state.q || state.seen
      ? 'No pending gateways match this search.'
      : 'No gateways are waiting. A gateway appears here, live, as soon as its agent starts.');
  }

  function pagesText(l) {
    const n = l.total.toLocaleString('en-US');
    if (l.total <= l.devices.length) return `${n} waiting`;
    return `${n} waiting, showing ${(state.offset + 1).toLocaleString('en-US')}–${(state.offset + l.devices.length).toLocaleString('en-US')}`;
  }

  function createRow(d) {
    const r = { id: d.id, expanded: false };
    r.mac = h('span', { class: 'mac mono' });
    r.addr = h('span', { class: 'sub' });
    r.code = h('span', { class: 'vcode mono' });
    r.fp = h('code', { class: 'fp' });
    r.keyType = h('span', { class: 'sub' });
    r.first = timeEl(d.first_seen);
    r.last = timeEl(d.last_seen);
    r.silent = h('span', { class: 'badge badge-silent', hidden: true });
    r.sameMac = h('span', { class: 'badge badge-dup', dataset: { flag: 'same-mac' }, hidden: true });
    r.sameCode = h('span', { class: 'badge badge-dup', dataset: { flag: 'same-code' }, hidden: true });
    r.rekey = rekeyBadge();
    const copy = copyButton({
      label: 'Copy the full key fingerprint',
      text: () => r.device.fingerprint,
      fallback: () => {
        r.expanded = true;
        setText(r.fp, r.device.fingerprint);
        selectText(r.fp);
        ctx.toast('The clipboard is not available here: the full fingerprint is selected, press Ctrl+C to copy it.');
      },
    });
    r.pick = h('input', { type: 'checkbox', class: 'pick', 'aria-label': `Select gateway ${d.mac}` });
    r.pick.addEventListener('change', () => {
      if (r.pick.checked) picked.add(r.id); else picked.delete(r.id);
      syncPicks();
    });
    r.el = h('tr', { dataset: { id: d.id } },
      canDecide ? h('td', { class: 'cell-pick' }, r.pick) : null,
      h('td', { 'data-label': 'Gateway' }, r.mac, r.addr, h('span', { class: 'sub' }, r.rekey, r.sameMac)),
      h('td', { 'data-label': 'Code' }, r.code, h('span', { class: 'sub' }, r.sameCode)),
      h('td', { 'data-label': 'Key' }, h('span', { class: 'fp-line' }, r.fp, copy), r.keyType),
      h('td', { 'data-label': 'Seen' },
        h('span', { class: 'seen' }, h('span', { class: 'muted' }, 'last '), r.last, ' ', r.silent),
        h('span', { class: 'sub' }, 'first ', r.first)),
      h('td', { 'data-label': canDecide ? 'Name' : 'Decision', class: 'cell-decide' },
        canDecide ? decideForm(r, d) : h('span', { class: 'muted' }, 'View only (viewer role)')));
    return r;
  }

  // syncPicks shows the ticks and the bar as picked says.
  function syncPicks() {
    for (const r of rows.values()) r.pick.checked = picked.has(r.id);
    pickAll.checked = rows.size > 0 && picked.size === rows.size;
    pickAll.indeterminate = picked.size > 0 && picked.size < rows.size;
    bulk.update(picked.size);
  }

  function updateRow(r, d, now) {
    r.device = d;
    r.el.dataset.mac = d.mac;
    setText(r.mac, d.mac);
    setText(r.addr, d.source_addr ? `from ${d.source_addr}` : '');
    setText(r.code, code(d.verification_code));
    setAttr(r.code, 'aria-label', `verification code ${d.verification_code.split('').join(' ')}`);
    if (!r.expanded) setText(r.fp, `${shortFingerprint(d.fingerprint)}…`);
    setAttr(r.fp, 'title', `SHA-256 ${d.fingerprint}`);
    setText(r.keyType, d.key_type);
    setTime(r.first, d.first_seen);
    setTime(r.last, d.last_seen);
    if (r.input) setAttr(r.input, 'aria-label', `Name for gateway ${d.mac}`);
    setAttr(r.pick, 'aria-label', `Select gateway ${d.mac}`);
    markSilent(r, now);
    markRekey(r);
  }

  // markDuplicates warns beside a gateway that other pending gateways claim
  // the same MAC or show the same code as: one of them may be an impostor,
  // so it must never look like an ordinary stranger.
  function markDuplicates(r) {
    const d = r.device;
    flag(r.sameMac, d.same_mac, 'same MAC as');
    flag(r.sameCode, d.same_code, 'same code as');
    r.el.classList.toggle('is-duplicate', !!(d.same_mac?.length || d.same_code?.length));
  }

  function flag(el, ids, what) {
    el.hidden = !ids?.length;
    setText(el, ids?.length ? `${what} ${ids.map(peerName).join(', ')}` : '');
    setAttr(el, 'title', ids?.length
      ? 'Another pending gateway shares this. Compare the code and fingerprint on each gateway\'s console before approving either.'
      : null);
  }

  // peerName names another pending gateway by its key when it is on this
  // page (what the operator can compare), else by its id.
  function peerName(id) {
    const p = rows.get(id)?.device;
    return p ? `key ${shortFingerprint(p.fingerprint)}…` : id;
  }

  function markSilent(r, now) {
    const silent = isSilent(r.device, now);
    r.el.classList.toggle('is-silent', silent);
    r.silent.hidden = !silent;
    setText(r.silent, silent ? `silent ${duration(now - Date.parse(r.device.last_seen))}` : '');
  }

  function decideForm(r, d) {
    const errId = `err-${d.id}`;
    r.input = h('input', {
      id: `name-${d.id}`, name: 'name', type: 'text', class: 'name-input', pattern: namePattern,
      autocomplete: 'off', autocapitalize: 'none', spellcheck: 'false',
      placeholder: 'name, e.g. gw-01', 'aria-describedby': errId, enterkeyhint: 'done',
    });
    r.input.value = drafts.get(d.id) || '';
    r.input.addEventListener('input', () => {
      drafts.set(d.id, r.input.value);
      // Say so as soon as a name is too long, and take it back once it fits.
      const long = tooLong(r.input.value.trim());
      if (long) {
        showRowError(r, long);
        r.input.setAttribute('aria-invalid', 'true');
      } else {
        if (r.error.dataset.kind === 'length') showRowError(r, '');
        r.input.removeAttribute('aria-invalid');
      }
      r.error.dataset.kind = long ? 'length' : '';
    });
    r.error = h('p', { id: errId, class: 'row-error', role: 'alert' });
    r.accept = h('button', { type: 'submit', class: 'btn btn-primary', dataset: { action: 'accept' } }, 'Accept');
    r.dismiss = h('button', { type: 'button', class: 'btn', dataset: { action: 'dismiss' } }, 'Dismiss');
    r.actions = h('div', { class: 'actions' }, r.accept, r.dismiss);
    r.confirm = confirmBox(r, d);
    const form = h('form', { class: 'decide', novalidate: true },
      h('div', { class: 'decide-line' }, r.input, r.actions, r.confirm.el), r.error);
    r.form = form;
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      if (r.confirm.el.hidden) accept(r);
    });
    r.dismiss.addEventListener('click', () => r.confirm.open());
    return form;
  }

  // confirmBox is the inline "Dismiss this gateway?" question. Focus starts
  // on Cancel so a stray Enter never dismisses; Escape cancels.
  function confirmBox(r, d) {
    const yes = h('button', { type: 'button', class: 'btn btn-danger', dataset: { action: 'confirm-dismiss' } }, 'Yes, dismiss');
    const no = h('button', { type: 'button', class: 'btn', dataset: { action: 'cancel-dismiss' } }, 'Cancel');
    const el = h('div', { class: 'confirm', role: 'group', 'aria-label': `Confirm dismissing ${d.mac}`, hidden: true },
      h('span', { class: 'confirm-q' }, 'Dismiss this gateway?'), yes, no);
    const box = {
      el,
      open() {
        r.actions.hidden = true;
        el.hidden = false;
        // The question takes a line of its own, so the name box keeps its
        // width instead of being squeezed beside it.
        r.form.classList.add('is-confirming');
        no.focus();
      },
      close(focus = true) {
        el.hidden = true;
        r.form.classList.remove('is-confirming');
        r.actions.hidden = false;
        if (focus) r.dismiss.focus();
      },
    };
    no.addEventListener('click', () => box.close());
    el.addEventListener('keydown', (e) => {
      if (e.key === 'Escape') box.close();
    });
    yes.addEventListener('click', () => dismiss(r, yes));
    return box;
  }

  async function accept(r) {
    const name = r.input.value.trim();
    if (!name && !r.device.rekey_of) {
      rowError(r, 'Type a name for this gateway first.');
      return;
    }
    if (!r.device.rekey_of && tooLong(name)) {
      rowError(r, tooLong(name), null, 'length');
      return;
    }
    busy(r, true);
    try {
      const d = await approveRow(r, name);
      drafts.delete(r.id);
      removeRow(r);
      ctx.toast(`${d.name} approved`, { link: { href: `#/devices/${encodeURIComponent(d.id)}`, text: 'Follow its provisioning' } });
      load();
    } catch (err) {
      rowError(r, err.message, err.conflict);
      if (err.status === 404) load();
    } finally {
      busy(r, false);
    }
  }

  async function dismiss(r, button) {
    r.hadFocus = r.el.contains(document.activeElement);
    button.disabled = true;
    try {
      await api.dismiss(r.id);
      drafts.delete(r.id);
      removeRow(r);
      ctx.toast(`Gateway ${r.device.mac} dismissed`);
      load();
    } catch (err) {
      r.confirm.close(false);
      rowError(r, err.message);
    } finally {
      button.disabled = false;
      r.hadFocus = false;
    }
  }

  // rowError shows why an action failed beside the row, keeps the typed name
  // and puts the cursor back in it. A conflict links to the other gateway.
  // kind 'length' marks the too-long error, which goes once the name fits.
  function rowError(r, message, conflict, kind = '') {
    showRowError(r, message, conflict);
    r.error.dataset.kind = kind;
    r.input.setAttribute('aria-invalid', 'true');
    r.input.focus();
  }

  function showRowError(r, message, conflict) {
    if (conflict) replace(r.error, message, ' ', conflictLink(conflict));
    else setText(r.error, message);
  }

  function busy(r, on) {
    // Disabling the focused button drops the focus; remember it was here.
    r.hadFocus = on && r.el.contains(document.activeElement);
    r.accept.disabled = on;
    r.dismiss.disabled = on;
    r.input.readOnly = on;
    setAttr(r.el, 'aria-busy', on ? 'true' : null);
    if (on) showRowError(r, '');
  }

  // removeRow takes a decided row out at once (the refresh confirms it) and
  // moves focus to the next row's name box, so a keyboard user can go on.
  // A live refresh may have taken it out first, and moved the focus then.
  function removeRow(r) {
    if (!r.el.isConnected) return;
    const held = focusedRow();
    r.el.remove();
    rows.delete(r.id);
    picked.delete(r.id);
    syncPicks();
    if (held && held.id === r.id) refocus(held);
  }

  // focusedRow names the row holding the focus (or holding it before its
  // busy buttons were disabled) and its neighbours.
  function focusedRow() {
    for (const r of rows.values()) {
      if (r.hadFocus || r.el.contains(document.activeElement)) {
        return { id: r.id, next: r.el.nextElementSibling?.dataset.id, prev: r.el.previousElementSibling?.dataset.id };
      }
    }
    return null;
  }

  function refocus(held) {
    const r = rows.get(held.next) || rows.get(held.prev);
    (r?.input || search.input).focus();
  }

  load();
  return {
    // Every list this view fetches brings the pending count (see api.js),
    // so the header needs no fetch of its own while it is shown.
    countsPending: true,
    changed: () => load(),
    tick(now) {
      for (const r of rows.values()) markSilent(r, now);
    },
    unmount() { gone = true; bulk.unmount(); },
  };
}

// queueNearShare is how full the pending queue must be for the page to warn.
const queueNearShare = 0.9;

// queueAlert warns while the pending queue is full or nearly so: at its cap
// the server refuses every gateway it has not seen before (a flood of bogus
// enrollments fills it too), so operators must make room here. It is
// announced when it appears or its level changes, not on every refresh.
function queueAlert() {
  const title = h('strong', { class: 'queue-title' });
  const detail = h('span', { class: 'queue-detail' });
  const el = h('div', { class: 'queue-alert', id: 'queue-alert', role: 'alert', hidden: true }, title, ' ', detail);
  return {
    el,
    update(total, cap) {
      if (!cap || total < cap * queueNearShare) {
        el.hidden = true;
        delete el.dataset.level;
        return;
      }
      const full = total >= cap;
      el.dataset.level = full ? 'full' : 'near';
      setText(title, full
        ? `The pending queue is full: ${num(total)} of ${num(cap)} gateways are waiting.`
        : `The pending queue is nearly full: ${num(total)} of ${num(cap)} gateways are waiting.`);
      setText(detail, full
        ? 'New gateways cannot enroll until some here are approved or dismissed. Gateways already known keep working. A flood of bogus enrollments fills the queue too: dismiss what you do not recognise.'
        : 'When it is full, new gateways cannot enroll until some here are approved or dismissed.');
      el.hidden = false;
    },
  };
}

// seenFilter is the All / Active now / Silent radio group.
function seenFilter(value, onChange) {
  const name = 'seen-filter';
  const el = h('fieldset', { class: 'segmented' },
    h('legend', { class: 'sr-only' }, 'Show gateways'),
    seenFilters.map((f) => {
      const id = `seen-${f.value || 'all'}`;
      const input = h('input', { type: 'radio', name, id, value: f.value, checked: f.value === value });
      input.addEventListener('change', () => onChange(f.value));
      return h('span', { class: 'seg' }, input, h('label', { for: id }, f.label));
    }));
  return { el };
}
