// The Tokens page (admins): every API token with its role and whether it
// still works, a form for a new one whose secret is shown once, and Revoke.
import * as api from './api.js';
import { h, replace, setText, keyedRows, timeEl, relTimeEl } from './dom.js';
import { day } from './format.js';
import { banner, coalesce, copyButton, roleSelect, statusBadge, setStatus, confirmBox, formField, formToggle } from './widgets.js';

const dayMs = 24 * 60 * 60 * 1000;

// lifetimes are the expiry choices; 90 days is the server's default too.
const lifetimes = [
  { value: '30', label: '30 days', days: 30 },
  { value: '90', label: '90 days', days: 90 },
  { value: '365', label: '1 year', days: 365 },
  { value: 'never', label: 'Never' },
];

export function tokensView(main, ctx) {
  let gone = false;
  const rows = new Map();
  const errors = banner();
  const newBtn = h('button', {
    type: 'button', class: 'btn btn-primary', id: 'new-token', 'aria-expanded': 'false', 'aria-controls': 'token-create',
  }, 'New token');
  const create = createForm();
  const secret = secretPanel();
  const count = h('p', { class: 'range muted', 'aria-live': 'polite' });
  const tbody = h('tbody');
  const empty = h('p', { class: 'empty', hidden: true }, 'No API tokens yet.');
  const table = h('table', { class: 'grid grid-admin grid-tokens' },
    h('caption', { class: 'sr-only' }, 'API tokens'),
    h('thead', {}, h('tr', {},
      ['Name', 'Role', 'Status', 'Expires', 'Last used', 'Created by', 'Actions'].map((t) => h('th', { scope: 'col' }, t)))),
    tbody);

  main.append(h('section', { class: 'view', 'aria-labelledby': 'tokens-title' },
    h('div', { class: 'view-head view-head-action' },
      h('div', {},
        h('h1', { id: 'tokens-title', tabindex: '-1' }, 'API tokens'),
        h('p', { class: 'lede' },
          'Tokens are for the CLI and automation (', h('code', {}, 'Authorization: Bearer …'),
          '). Each acts with its role until it expires or is revoked.')),
      newBtn),
    create.el,
    secret.el,
    h('div', { class: 'toolbar' }, count),
    errors.el,
    h('div', { class: 'table-wrap' }, table, empty)));

  newBtn.addEventListener('click', () => (create.el.hidden ? create.open() : create.close()));

  const load = coalesce(async () => {
    try {
      const l = await api.listTokens();
      if (gone) return;
      errors.clear();
      const now = Date.now();
      keyedRows(tbody, rows, l.tokens, (t) => t.id, createRow, (r, t) => updateRow(r, t, now));
      const live = l.tokens.filter((t) => statusOf(t, now) === 'live').length;
      setText(count, `${live} live ${live === 1 ? 'token' : 'tokens'}, ${l.tokens.length} in all`);
      table.hidden = l.tokens.length === 0;
      empty.hidden = l.tokens.length > 0;
    } catch (err) {
      if (!gone && err.status !== 401) errors.show(`Could not load the tokens: ${err.message}`);
    }
  }, () => gone);

  function createRow(t) {
    const r = { id: t.id };
    r.name = h('th', { scope: 'row', 'data-label': 'Name', class: 'cell-name', tabindex: '-1' });
    r.role = h('td', { 'data-label': 'Role' });
    r.badge = statusBadge('live');
    r.statusSub = h('span', { class: 'sub' });
    r.expires = h('td', { 'data-label': 'Expires' });
    r.used = h('td', { 'data-label': 'Last used' });
    r.by = h('td', { 'data-label': 'Created by' });
    r.revoke = h('button', { type: 'button', class: 'btn btn-small', dataset: { action: 'revoke' } }, 'Revoke');
    r.actions = h('div', { class: 'actions' }, r.revoke);
    r.confirm = confirmBox(r.actions);
    r.error = h('p', { class: 'row-error', role: 'alert' });
    r.el = h('tr', { dataset: { id: t.id } },
      r.name, r.role,
      h('td', { 'data-label': 'Status' }, r.badge, r.statusSub),
      r.expires, r.used, r.by,
      h('td', { 'data-label': 'Actions', class: 'cell-actions' }, r.actions, r.confirm.el, r.error));
    r.revoke.addEventListener('click', () => r.confirm.open({
      question: isMine(r.token)
        ? `Revoke "${r.token.name}"? You are signed in with it: you will be logged out.`
        : `Revoke the token "${r.token.name}"? Whatever uses it stops working at once.`,
      yesText: 'Yes, revoke', from: r.revoke, run: () => revoke(r),
    }));
    return r;
  }

  function updateRow(r, t, now) {
    r.token = t;
    const status = statusOf(t, now);
    r.el.dataset.name = t.name;
    r.el.dataset.status = status;
    replace(r.name, h('span', {}, t.name, isMine(t) ? h('span', { class: 'badge badge-you' }, 'you') : null));
    setText(r.role, t.role);
    setStatus(r.badge, status);
    replace(r.statusSub, status === 'revoked' ? ['revoked ', timeEl(t.revoked_at)] : null);
    replace(r.expires, t.expires_at
      ? [relTimeEl(t.expires_at), h('span', { class: 'sub' }, day(t.expires_at))]
      : h('span', { class: 'muted' }, 'never'));
    replace(r.used, t.last_used ? timeEl(t.last_used) : h('span', { class: 'muted' }, 'never'));
    replace(r.by, t.created_by ? h('span', { class: 'mono' }, t.created_by) : h('span', { class: 'muted' }, '—'),
      h('span', { class: 'sub' }, timeEl(t.created_at)));
    // Only a live token can be revoked; an expired one is already dead.
    r.revoke.hidden = status !== 'live';
    r.revoke.setAttribute('aria-label', `Revoke the token ${t.name}`);
    if (status !== 'live' && r.confirm.isOpen) r.confirm.close(false);
  }

  // isMine: live token names are unique, so the session's name finds it.
  const isMine = (t) => ctx.session.kind === 'token' && t.name === ctx.session.name && !t.revoked_at;

  async function revoke(r) {
    setText(r.error, '');
    try {
      const t = await api.revokeToken(r.id);
      if (gone) return;
      r.confirm.close(false);
      updateRow(r, t, Date.now());
      // The Revoke button is gone; the keyboard stays on this row.
      r.name.focus();
      ctx.toast(`Token "${t.name}" revoked`);
      load();
    } catch (err) {
      if (gone) return;
      r.confirm.close();
      setText(r.error, err.message);
      if (err.status === 404) load();
    }
  }

  function createForm() {
    const name = h('input', {
      id: 'token-name', name: 'name', type: 'text', required: true, maxlength: 100, autocomplete: 'off',
      spellcheck: 'false', autocapitalize: 'none', 'aria-describedby': 'token-name-help token-create-error',
    });
    const role = roleSelect({ id: 'token-role', value: 'operator', long: true });
    const life = h('select', { id: 'token-life', name: 'expires' },
      lifetimes.map((l) => h('option', { value: l.value, selected: l.value === '90' }, l.label)));
    const error = h('p', { id: 'token-create-error', class: 'form-error', role: 'alert' });
    const submit = h('button', { type: 'submit', class: 'btn btn-primary' }, 'Create token');
    const cancel = h('button', { type: 'button', class: 'btn' }, 'Cancel');
    const el = h('form', { class: 'panel-form', id: 'token-create', hidden: true, novalidate: true, 'aria-labelledby': 'token-create-title' },
      h('h2', { id: 'token-create-title' }, 'New API token'),
      h('div', { class: 'form-fields' },
        formField('token-name', 'Name', name,
          h('span', { id: 'token-name-help', class: 'help' }, 'Who or what uses it, e.g. ci-deploy; unique among live tokens.')),
        formField('token-role', 'Role', role),
        formField('token-life', 'Expires', life)),
      error,
      h('div', { class: 'form-actions' }, submit, cancel));
    const f = formToggle({ el, button: newBtn, first: name, cancel, error, onOpen: () => secret.hide(false) });
    el.addEventListener('submit', async (e) => {
      e.preventDefault();
      setText(error, '');
      const spec = { name: name.value.trim(), role: role.value };
      if (!spec.name) {
        fail('Give the token a name, e.g. what uses it.', true);
        return;
      }
      const l = lifetimes.find((x) => x.value === life.value);
      if (l.days) spec.expires_at = new Date(Date.now() + l.days * dayMs).toISOString();
      else spec.never_expires = true;
      submit.disabled = true;
      try {
        const res = await api.createToken(spec);
        if (gone) return;
        f.close(false);
        secret.show(res);
        load();
      } catch (err) {
        // A taken name is the usual reason: back to the name, to change it.
        fail(err.message, err.status === 409 || err.status === 400);
      } finally {
        submit.disabled = false;
      }
    });
    function fail(message, nameAtFault) {
      setText(error, message);
      if (nameAtFault) name.setAttribute('aria-invalid', 'true');
      name.select();
      name.focus();
    }
    return f;
  }

  // secretPanel shows a new token's secret, once: the server keeps only a
  // hash, and the page forgets it when the panel closes or the page is left.
  function secretPanel() {
    const title = h('h2', { id: 'token-secret-title' });
    const input = h('input', {
      id: 'token-secret', type: 'text', readonly: true, class: 'secret', autocomplete: 'off', spellcheck: 'false',
      'aria-describedby': 'token-secret-warning',
    });
    input.addEventListener('focus', () => input.select());
    const copy = copyButton({
      label: 'Copy the token',
      text: () => input.value,
      fallback: () => {
        input.focus();
        input.select();
        ctx.toast('The clipboard is not available here: the token is selected, press Ctrl+C to copy it.');
      },
    });
    copy.className = 'btn';
    const done = h('button', { type: 'button', class: 'btn btn-primary', id: 'token-secret-done' }, 'Done');
    const el = h('section', { class: 'secret-panel', id: 'token-secret-panel', hidden: true, 'aria-labelledby': 'token-secret-title' },
      title,
      h('p', { id: 'token-secret-warning', class: 'secret-warning' },
        h('strong', {}, 'Copy the token now: it is shown only once. '),
        'gatehouse keeps only a hash of it, so nobody can show it again; if it is lost, revoke it and make a new one.'),
      h('div', { class: 'secret-line' },
        h('label', { for: 'token-secret' }, 'Token'),
        input, copy),
      h('p', { class: 'help' },
        'Send it as ', h('code', {}, 'Authorization: Bearer TOKEN'), ', or set ', h('code', {}, 'GATEHOUSE_TOKEN'), ' for the CLI.'),
      done);
    const p = {
      el,
      show(res) {
        setText(title, `Token "${res.token.name}" created (${res.token.role})`);
        input.value = res.secret;
        el.hidden = false;
        input.focus();
      },
      hide(focus = true) {
        input.value = '';
        el.hidden = true;
        if (focus) newBtn.focus();
      },
    };
    done.addEventListener('click', () => p.hide());
    return p;
  }

  load();
  return {
    tick(now) {
      for (const r of rows.values()) updateRow(r, r.token, now);
    },
    unmount() { gone = true; },
  };
}

// statusOf says whether a token works: revoked, expired or live.
function statusOf(t, now) {
  if (t.revoked_at) return 'revoked';
  if (t.expires_at && Date.parse(t.expires_at) <= now) return 'expired';
  return 'live';
}
