// Pieces several views share: search box, pager, state badge, copy button.
import { h, setText, debounce } from './dom.js';
import { range } from './format.js';

// searchBox calls onChange with the trimmed text once typing pauses.
export function searchBox({ id, label, placeholder, value, onChange }) {
  const input = h('input', {
    id, type: 'search', value: value || '', placeholder, autocomplete: 'off', spellcheck: 'false',
    'aria-keyshortcuts': '/',
  });
  const fire = debounce(() => onChange(input.value.trim()), 250);
  input.addEventListener('input', fire);
  const el = h('div', { class: 'field field-search' },
    h('label', { for: id }, label),
    input);
  return { el, input };
}

// pager is Previous / "1–50 of 10,000" / Next for server-side pages.
export function pager(onMove) {
  const prev = h('button', { type: 'button', class: 'btn', 'aria-label': 'Previous page', dataset: { page: 'prev' } }, '‹ Prev');
  const next = h('button', { type: 'button', class: 'btn', 'aria-label': 'Next page', dataset: { page: 'next' } }, 'Next ›');
  const text = h('span', { class: 'range' });
  prev.addEventListener('click', () => onMove(-1));
  next.addEventListener('click', () => onMove(1));
  const el = h('nav', { class: 'pager', 'aria-label': 'Pages' }, prev, text, next);
  return {
    el,
    update(offset, count, total) {
      setText(text, range(offset, count, total));
      prev.disabled = offset <= 0;
      next.disabled = offset + count >= total;
      el.hidden = total <= count && offset === 0;
    },
  };
}

// stateGlyphs make states readable without colour: each has a shape too.
const stateGlyphs = {
  pending: '○', approved: '◔', provisioning: '◑', provisioned: '●', configured: '✔',
  dismissed: '⊘', failed: '✖', stalled: '⚠', decommissioned: '∅',
};

export function stateBadge(state) {
  const el = h('span', { class: 'state' });
  setState(el, state);
  return el;
}

export function setState(el, state) { paintBadge(el, state, stateGlyphs); }

export const states = Object.keys(stateGlyphs);

// statusGlyphs are the same for tokens and users: usable or not, and why.
const statusGlyphs = { live: '●', active: '●', expired: '◷', revoked: '⊘', disabled: '⊘' };

export function statusBadge(status) {
  const el = h('span', { class: 'state' });
  setStatus(el, status);
  return el;
}

export function setStatus(el, status) { paintBadge(el, status, statusGlyphs); }

function paintBadge(el, state, glyphs) {
  if (el.dataset.state === state) return;
  el.dataset.state = state;
  el.className = `state state-${state}`;
  el.replaceChildren(h('span', { class: 'glyph', 'aria-hidden': 'true' }, glyphs[state] || '•'), state);
}

// roles, least first, with what each may do, for the role pickers.
export const roles = [
  { value: 'viewer', help: 'sees gateways' },
  { value: 'operator', help: 'approves gateways' },
  { value: 'admin', help: 'also manages users and tokens' },
];

// roleSelect is a role picker; long adds what each role may do.
export function roleSelect({ id, value, label, long }) {
  return h('select', { id, name: 'role', 'aria-label': label },
    roles.map((r) => h('option', { value: r.value, selected: r.value === value },
      long ? `${r.value} — ${r.help}` : r.value)));
}

// confirmBox is an inline question that stands in for a row's buttons
// (actions) while it is open. Focus starts on Cancel so a stray Enter never
// does harm; Escape cancels; focus goes back to the button that asked.
export function confirmBox(actions) {
  const q = h('span', { class: 'confirm-q' });
  const yes = h('button', { type: 'button', class: 'btn btn-danger', dataset: { action: 'confirm' } }, 'Yes');
  const no = h('button', { type: 'button', class: 'btn', dataset: { action: 'cancel' } }, 'Cancel');
  const el = h('div', { class: 'confirm', role: 'group', hidden: true }, q, yes, no);
  let asked = null;
  const box = {
    el,
    // open asks question; run is called on yes and may be async.
    open({ question, yesText, from, run }) {
      asked = { from, run };
      setText(q, question);
      setText(yes, yesText);
      el.setAttribute('aria-label', question);
      actions.hidden = true;
      el.hidden = false;
      no.focus();
    },
    close(focus = true) {
      if (el.hidden) return;
      el.hidden = true;
      actions.hidden = false;
      if (focus && asked?.from?.isConnected && !asked.from.hidden) asked.from.focus();
    },
    get isOpen() { return !el.hidden; },
  };
  no.addEventListener('click', () => box.close());
  el.addEventListener('keydown', (e) => {
    if (e.key === 'Escape') box.close();
  });
  yes.addEventListener('click', async () => {
    yes.disabled = true;
    try {
      await asked.run();
    } finally {
      yes.disabled = false;
    }
  });
  return box;
}

// copyButton copies text() to the clipboard. Where the clipboard is not
// available (plain HTTP on a remote host), fallback() gets the text so the
// view can show it selected for Ctrl+C.
export function copyButton({ label, text, fallback }) {
  const b = h('button', { type: 'button', class: 'btn btn-small btn-quiet', 'aria-label': label, title: label }, 'Copy');
  b.addEventListener('click', async () => {
    try {
      if (!navigator.clipboard) throw new Error('no clipboard');
      await navigator.clipboard.writeText(text());
      setText(b, 'Copied');
      setTimeout(() => setText(b, 'Copy'), 1500);
    } catch {
      fallback(text());
    }
  });
  return b;
}

// selectText selects an element's text, for the copy fallback.
export function selectText(el) {
  const sel = window.getSelection();
  sel.removeAllRanges();
  const r = document.createRange();
  r.selectNodeContents(el);
  sel.addRange(r);
}

// banner is a view-level message (load errors), announced when it changes.
export function banner() {
  const el = h('p', { class: 'banner', role: 'alert' });
  return {
    el,
    show(msg) { setText(el, msg); },
    clear() { setText(el, ''); },
  };
}

// coalesce wraps a view's fetch so calls made while one is in flight
// collapse into one more run after it: a burst of live events costs two
// requests, not one each, and an answer can never be drawn over a newer one
// (a list asked for before a deletion, answered after it, would bring the
// deleted row back). Every call's promise settles once a fetch that started
// after the call has finished, so "await load()" sees the change it follows.
// fetchOnce may return true to ask for another run (its page moved); gone()
// stops the reruns once the view is left.
export function coalesce(fetchOnce, gone) {
  let current = null;
  let queued = null;
  return function run() {
    if (current) {
      queued ??= current.catch(() => {}).then(() => {
        queued = null;
        return gone() ? undefined : run();
      });
      return queued;
    }
    current = (async () => {
      let more = false;
      try {
        more = await fetchOnce();
      } finally {
        current = null;
      }
      if (more && !gone()) await run();
    })();
    return current;
  };
}

// listParams is a list view's filters and page as URL parameters, so a
// reload or a shared link shows the same page. Empty filters are left out.
export function listParams(filters, offset, pageSize) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(filters)) {
    if (v) q.set(k, v);
  }
  if (offset) q.set('page', String(offset / pageSize + 1));
  return q;
}

// formField is a labelled field of a form: label, control, optional help.
export function formField(id, label, control, help) {
  return h('div', { class: 'field' }, h('label', { for: id }, label), control, help);
}

// formToggle opens and closes a "New …" form under the button that shows
// it: the focus moves into the form and back, Cancel and Escape close it,
// and closing clears it. onOpen and onReset do what else the form needs.
export function formToggle({ el, button, first, cancel, error, onOpen, onReset }) {
  const f = {
    el,
    open() {
      onOpen?.();
      el.hidden = false;
      button.setAttribute('aria-expanded', 'true');
      first.focus();
    },
    close(focus = true) {
      el.hidden = true;
      el.reset();
      onReset?.();
      setText(error, '');
      first.removeAttribute('aria-invalid');
      button.setAttribute('aria-expanded', 'false');
      if (focus) button.focus();
    },
  };
  cancel.addEventListener('click', () => f.close());
  el.addEventListener('keydown', (e) => {
    if (e.key === 'Escape') f.close();
  });
  first.addEventListener('input', () => first.removeAttribute('aria-invalid'));
  return f;
}
