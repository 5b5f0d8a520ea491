// The Users page (admins): the people who log in to this page, local ones
// with a password kept here and single sign-on ones whose role comes from
// their groups; a form for a new local user, and per user: role, password,
// disable or enable, delete.
import * as api from './api.js';
import { h, replace, setText, keyedRows, timeEl } from './dom.js';
import { banner, coalesce, roleSelect, statusBadge, setStatus, confirmBox, formField, formToggle } from './widgets.js';

// The server's password rule: 12 characters at least (as typed), 256 bytes
// at most.
const minPassword = 12;
const maxPasswordBytes = 256;

export function usersView(main, ctx) {
  let gone = false;
  const rows = new Map();
  const errors = banner();
  const newBtn = h('button', {
    type: 'button', class: 'btn btn-primary', id: 'new-user', 'aria-expanded': 'false', 'aria-controls': 'user-create',
  }, 'New user');
  const create = createForm();
  const count = h('p', { class: 'range muted', 'aria-live': 'polite' });
  const tbody = h('tbody');
  const empty = h('p', { class: 'empty', hidden: true }, 'No users yet.');
  const table = h('table', { class: 'grid grid-admin grid-users' },
    h('caption', { class: 'sr-only' }, 'Users'),
    h('thead', {}, h('tr', {},
      ['Name', 'Role', 'Source', 'Status', 'Last login', 'Actions'].map((t) => h('th', { scope: 'col' }, t)))),
    tbody);

  main.append(h('section', { class: 'view', 'aria-labelledby': 'users-title' },
    h('div', { class: 'view-head view-head-action' },
      h('div', {},
        h('h1', { id: 'users-title', tabindex: '-1' }, 'Users'),
        h('p', { class: 'lede' },
          'People who log in to this page. Local users have a password kept here; single sign-on users are made at their first login and take their role from their groups.')),
      newBtn),
    create.el,
    h('div', { class: 'toolbar' }, count),
    errors.el,
    h('div', { class: 'table-wrap' }, table, empty)));

  newBtn.addEventListener('click', () => (create.el.hidden ? create.open() : create.close()));

  const load = coalesce(async () => {
    try {
      const l = await api.listUsers();
      if (gone) return;
      errors.clear();
      keyedRows(tbody, rows, l.users, (u) => u.name, createRow, updateRow);
      const n = l.users.length;
      setText(count, `${n} ${n === 1 ? 'user' : 'users'}`);
      table.hidden = n === 0;
      empty.hidden = n > 0;
    } catch (err) {
      if (!gone && err.status !== 401) errors.show(`Could not load the users: ${err.message}`);
    }
  }, () => gone);

  // Rows get ids of their own: user names may hold spaces, which would
  // break aria-describedby lists.
  let seq = 0;

  const isMe = (u) => ctx.session.kind === 'user' && u.name === ctx.session.name;

  function createRow(u) {
    const local = u.source === 'local';
    const r = { name: u.name, local, key: `u${++seq}` };
    r.nameCell = h('th', { scope: 'row', 'data-label': 'Name', class: 'cell-name', tabindex: '-1' });
    r.roleCell = h('td', { 'data-label': 'Role' }, local ? roleForm(r) : null);
    r.badge = statusBadge('active');
    r.login = h('td', { 'data-label': 'Last login' });
    r.toggle = h('button', { type: 'button', class: 'btn btn-small', dataset: { action: 'toggle' } });
    r.remove = h('button', { type: 'button', class: 'btn btn-small', dataset: { action: 'delete' } }, 'Delete');
    r.setPassword = local ? h('button', { type: 'button', class: 'btn btn-small', dataset: { action: 'password' } }, 'Set password') : null;
    r.actions = h('div', { class: 'actions' }, r.setPassword, r.toggle, r.remove);
    r.confirm = confirmBox(r.actions);
    r.pw = local ? passwordEditor(r) : null;
    r.error = h('p', { id: `${r.key}-error`, class: 'row-error', role: 'alert' });
    r.el = h('tr', { dataset: { name: u.name, source: u.source } },
      r.nameCell,
      r.roleCell,
      h('td', { 'data-label': 'Source' }, local ? 'local' : 'single sign-on'),
      h('td', { 'data-label': 'Status' }, r.badge),
      r.login,
      h('td', { 'data-label': 'Actions', class: 'cell-actions' }, r.actions, r.confirm.el, r.pw?.el, r.error));
    r.toggle.addEventListener('click', () => {
      if (!r.user.disabled) {
        r.confirm.open({
          question: isMe(r.user)
            ? 'Disable your own account? You are logged out at once.'
            : `Disable ${r.name}? They are logged out everywhere and cannot log in until enabled.`,
          yesText: 'Yes, disable', from: r.toggle, run: () => change(r, { disabled: true }, `${r.name} disabled`),
        });
      } else {
        change(r, { disabled: false }, `${r.name} enabled`);
      }
    });
    r.remove.addEventListener('click', () => r.confirm.open({
      question: deleteQuestion(r),
      yesText: 'Yes, delete', from: r.remove, run: () => remove(r),
    }));
    r.setPassword?.addEventListener('click', () => r.pw.open());
    return r;
  }

  function deleteQuestion(r) {
    if (isMe(r.user)) return 'Delete your own account? You are logged out at once.';
    if (!r.local) return `Delete ${r.name}? Single sign-on makes them again at their next login; disable them to keep them out.`;
    return `Delete the user ${r.name}? This cannot be undone.`;
  }

  function updateRow(r, u) {
    r.user = u;
    r.el.dataset.status = u.disabled ? 'disabled' : 'active';
    r.el.dataset.role = u.role;
    replace(r.nameCell, h('span', {}, u.name, isMe(u) ? h('span', { class: 'badge badge-you' }, 'you') : null));
    if (r.local) {
      // A role picked but not saved yet stays as picked.
      if (r.saveRole.hidden) r.roleSelect.value = u.role;
    } else {
      replace(r.roleCell, u.role, h('span', { class: 'sub' }, 'from groups'));
    }
    setStatus(r.badge, u.disabled ? 'disabled' : 'active');
    replace(r.login, u.last_login ? timeEl(u.last_login) : h('span', { class: 'muted' }, 'never'));
    setText(r.toggle, u.disabled ? 'Enable' : 'Disable');
    r.toggle.dataset.action = u.disabled ? 'enable' : 'disable';
    r.toggle.setAttribute('aria-label', `${u.disabled ? 'Enable' : 'Disable'} ${u.name}`);
    r.remove.setAttribute('aria-label', `Delete ${u.name}`);
    r.setPassword?.setAttribute('aria-label', `Set a new password for ${u.name}`);
  }

  // roleForm is the role picker of a local user's row, with a Save button
  // that shows once another role is picked: a select that saved on change
  // would save every role an arrow key passes through.
  function roleForm(r) {
    r.roleSelect = roleSelect({ id: `role-${r.key}`, value: '', label: `Role of ${r.name}` });
    r.saveRole = h('button', { type: 'submit', class: 'btn btn-small btn-primary', hidden: true, dataset: { action: 'save-role' } }, 'Save');
    const form = h('form', { class: 'role-form', novalidate: true }, r.roleSelect, r.saveRole);
    r.roleSelect.addEventListener('change', () => {
      r.saveRole.hidden = r.roleSelect.value === r.user.role;
    });
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      const role = r.roleSelect.value;
      if (role === r.user.role) return;
      const ok = await change(r, { role }, `${r.name} is now ${role}`, r.roleSelect);
      if (!ok) r.roleSelect.value = r.user.role;
      r.saveRole.hidden = true;
      r.roleSelect.focus();
      if (ok && isMe(r.user)) ctx.refreshSession();
    });
    return form;
  }

  // passwordEditor sets a local user's new password, in place of the row's
  // buttons while open.
  function passwordEditor(r) {
    const pw = passwordInput({
      id: `password-${r.key}`, label: `New password for ${r.name}`, describedBy: `password-help-${r.key} ${r.key}-error`,
      changed: () => setText(r.error, ''),
    });
    const save = h('button', { type: 'submit', class: 'btn btn-small btn-primary', dataset: { action: 'save-password' } }, 'Save');
    const cancel = h('button', { type: 'button', class: 'btn btn-small', dataset: { action: 'cancel-password' } }, 'Cancel');
    const el = h('form', { class: 'pw-edit', novalidate: true, hidden: true, 'aria-label': `New password for ${r.name}` },
      pw.el,
      h('p', { id: `password-help-${r.key}`, class: 'help' }, `At least ${minPassword} characters.`),
      h('div', { class: 'actions' }, save, cancel));
    const ed = {
      el,
      open() {
        setText(r.error, '');
        r.actions.hidden = true;
        el.hidden = false;
        pw.input.focus();
      },
      close(focus = true) {
        pw.reset();
        el.hidden = true;
        r.actions.hidden = false;
        if (focus) r.setPassword.focus();
      },
    };
    cancel.addEventListener('click', () => ed.close());
    el.addEventListener('keydown', (e) => {
      if (e.key === 'Escape') ed.close();
    });
    el.addEventListener('submit', async (e) => {
      e.preventDefault();
      const problem = passwordProblem(pw.input.value);
      if (problem) {
        pw.invalid();
        setText(r.error, problem);
        pw.input.focus();
        return;
      }
      save.disabled = true;
      try {
        if (await change(r, { password: pw.input.value }, `New password set for ${r.name}`, pw.input)) ed.close();
      } finally {
        save.disabled = false;
      }
    });
    return ed;
  }

  // change applies a change to a user and says whether it took; why not is
  // shown in the row, and the focus goes to back (or stays where it was).
  async function change(r, patch, done, back) {
    setText(r.error, '');
    try {
      const u = await api.updateUser(r.name, patch);
      if (gone) return true;
      r.confirm.close();
      updateRow(r, u);
      ctx.toast(done);
      load();
      return true;
    } catch (err) {
      if (gone) return false;
      r.confirm.close(!back);
      setText(r.error, err.message);
      back?.focus();
      if (err.status === 404) load();
      return false;
    }
  }

  async function remove(r) {
    setText(r.error, '');
    try {
      await api.deleteUser(r.name);
      if (gone) return;
      const next = rows.get(r.el.nextElementSibling?.dataset.name) || rows.get(r.el.previousElementSibling?.dataset.name);
      r.el.remove();
      rows.delete(r.name);
      (next?.nameCell || newBtn).focus();
      ctx.toast(`User ${r.name} deleted`);
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
      id: 'user-name', name: 'name', type: 'text', required: true, maxlength: 100, autocomplete: 'off',
      spellcheck: 'false', autocapitalize: 'none', 'aria-describedby': 'user-create-error',
    });
    const role = roleSelect({ id: 'user-role', value: 'operator', long: true });
    const error = h('p', { id: 'user-create-error', class: 'form-error', role: 'alert' });
    const pw = passwordInput({
      id: 'user-password', label: 'Password', describedBy: 'user-password-help user-create-error', changed: () => setText(error, ''),
    });
    const submit = h('button', { type: 'submit', class: 'btn btn-primary' }, 'Create user');
    const cancel = h('button', { type: 'button', class: 'btn' }, 'Cancel');
    const el = h('form', { class: 'panel-form', id: 'user-create', hidden: true, novalidate: true, 'aria-labelledby': 'user-create-title' },
      h('h2', { id: 'user-create-title' }, 'New user'),
      h('div', { class: 'form-fields' },
        formField('user-name', 'User name', name),
        formField('user-role', 'Role', role),
        formField('user-password', 'Password', pw.el,
          h('span', { id: 'user-password-help', class: 'help' },
            `At least ${minPassword} characters. Generate makes one and shows it: copy it to hand to them before you create the user.`))),
      error,
      h('div', { class: 'form-actions' }, submit, cancel));
    const f = formToggle({ el, button: newBtn, first: name, cancel, error, onReset: () => pw.reset() });
    el.addEventListener('submit', async (e) => {
      e.preventDefault();
      setText(error, '');
      const spec = { name: name.value.trim(), role: role.value, password: pw.input.value };
      if (!spec.name) {
        fail('Type a user name.', name);
        return;
      }
      const problem = passwordProblem(spec.password);
      if (problem) {
        pw.invalid();
        fail(problem, pw.input);
        return;
      }
      submit.disabled = true;
      try {
        const u = await api.createUser(spec);
        if (gone) return;
        f.close(false);
        ctx.toast(`User ${u.name} created`);
        await load();
        (rows.get(u.name)?.nameCell || newBtn).focus();
      } catch (err) {
        if (gone) return;
        // A taken name (409) is the usual reason; the password's rule is
        // checked above, so anything else goes back to the name too.
        fail(err.message, name);
      } finally {
        submit.disabled = false;
      }
    });
    function fail(message, field) {
      setText(error, message);
      if (field === name) name.setAttribute('aria-invalid', 'true');
      field.focus();
    }
    return f;
  }

  load();
  return { unmount() { gone = true; } };
}

// passwordInput is a new password with Show and Generate buttons: an admin
// hands the password to its user, so they must be able to read it.
// changed, when given, hears of every new value, typed or generated.
function passwordInput({ id, label, describedBy, changed = () => {} }) {
  const input = h('input', {
    id, name: 'password', type: 'password', autocomplete: 'new-password', spellcheck: 'false', autocapitalize: 'none',
    minlength: minPassword, required: true, 'aria-describedby': describedBy, 'aria-label': label,
  });
  const show = h('button', {
    type: 'button', class: 'btn btn-small', 'aria-pressed': 'false', 'aria-controls': id, dataset: { action: 'show-password' },
  }, 'Show');
  const gen = h('button', { type: 'button', class: 'btn btn-small', 'aria-controls': id, dataset: { action: 'generate' } }, 'Generate');
  const reveal = (on) => {
    input.type = on ? 'text' : 'password';
    show.setAttribute('aria-pressed', String(on));
    setText(show, on ? 'Hide' : 'Show');
  };
  show.addEventListener('click', () => reveal(input.type === 'password'));
  gen.addEventListener('click', () => {
    input.value = generatePassword();
    input.removeAttribute('aria-invalid');
    reveal(true);
    input.focus();
    input.select();
    changed();
  });
  input.addEventListener('input', () => {
    input.removeAttribute('aria-invalid');
    changed();
  });
  return {
    el: h('div', { class: 'pw-field' }, input, show, gen),
    input,
    invalid() { input.setAttribute('aria-invalid', 'true'); },
    reset() {
      input.value = '';
      input.removeAttribute('aria-invalid');
      reveal(false);
    },
  };
}

// passwordProblem is the server's rule, checked before sending.
function passwordProblem(pw) {
  if ([...pw].length < minPassword) return `The password must be at least ${minPassword} characters long.`;
  if (new TextEncoder().encode(pw).length > maxPasswordBytes) return `The password must be at most ${maxPasswordBytes} bytes long.`;
  return '';
}

// generatePassword makes 20 random characters (about 116 bits) in groups of
// four, from an alphabet without look-alikes (0/O, 1/l/I), easy to read out.
const alphabet = 'abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789';
function generatePassword() {
  const out = [];
  const buf = new Uint8Array(32);
  // Bytes at or above the largest multiple of the alphabet's size are
  // dropped, so every character is equally likely.
  const limit = 256 - (256 % alphabet.length);
  while (out.length < 20) {
    crypto.getRandomValues(buf);
    for (const b of buf) {
      if (b < limit && out.length < 20) out.push(alphabet[b % alphabet.length]);
    }
  }
  return out.join('').match(/.{4}/g).join('-');
}
