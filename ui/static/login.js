// The login page: a user name and password, single sign-on when the server
// has it, or an API token. Whatever is typed is sent once and never stored
// by the page; the server answers with a cookie session.
import * as api from './api.js';
import { h, setText } from './dom.js';

// ssoErrorMax bounds the message a failed single sign-on brings back in the
// address: anyone can make such a link, so it is shown as text, labelled as
// what it is, and kept short.
const ssoErrorMax = 300;

export function loginView(main, ctx) {
  let gone = false;
  const pw = passwordForm(ctx);
  const tok = tokenForm(ctx);
  const toggle = h('button', { type: 'button', class: 'btn btn-quiet btn-block', id: 'login-toggle' });
  const sso = h('div', { class: 'login-sso', hidden: true });
  let mode = 'password';

  // show switches between the two forms and puts the cursor in the shown one.
  function show(m, focus = true) {
    mode = m;
    pw.form.hidden = m !== 'password';
    tok.form.hidden = m !== 'token';
    setText(toggle, m === 'password' ? 'Use an API token instead' : 'Use a user name and password instead');
    pw.reset();
    tok.reset();
    if (focus) (m === 'password' ? pw.first : tok.first).focus();
  }
  toggle.addEventListener('click', () => show(mode === 'password' ? 'token' : 'password'));

  main.append(h('section', { class: 'login' },
    h('div', { class: 'login-card' },
      h('div', { class: 'login-brand' }, h('img', { src: '/assets/favicon.svg', alt: '', width: 40, height: 40 }), 'gatehouse'),
      h('h1', { tabindex: '-1' }, 'Log in'),
      h('p', { class: 'lede' }, 'Approve new gateways and follow their provisioning.'),
      pw.form,
      tok.form,
      sso,
      h('div', { class: 'login-alt' }, toggle))));
  show('password');

  const failed = ctx.params.get('error');
  if (failed) {
    const msg = failed.length > ssoErrorMax ? `${failed.slice(0, ssoErrorMax)}…` : failed;
    pw.fail(`Single sign-on failed: ${msg}`, false);
    // Shown once: a reload or a later visit starts clean.
    ctx.setParams(new URLSearchParams());
  }

  api.loginOptions().then((o) => {
    if (gone) return;
    if (o.sso && isLocalPath(o.sso.url)) {
      sso.hidden = false;
      sso.append(
        h('p', { class: 'login-or', 'aria-hidden': 'true' }, 'or'),
        h('a', { class: 'btn btn-block', id: 'sso-login', href: o.sso.url }, `Sign in with ${o.sso.name}`));
    }
    // The server offers both forms today; follow it if it stops.
    toggle.hidden = !(o.password && o.token);
    if (!o.password && o.token && mode === 'password') show('token', document.activeElement === pw.first);
  }).catch(() => {
    // Without the options the forms still work; only the SSO button is missing.
  });

  return { unmount() { gone = true; } };
}

// isLocalPath keeps the SSO button on this server: a path, not a URL that
// could lead elsewhere or run script.
const isLocalPath = (u) => typeof u === 'string' && u.startsWith('/') && !u.startsWith('//');

function passwordForm(ctx) {
  const user = h('input', {
    id: 'user', name: 'username', type: 'text', autocomplete: 'username', autocapitalize: 'none',
    spellcheck: 'false', required: true, maxlength: 100, 'aria-describedby': 'login-error',
  });
  const password = h('input', {
    id: 'password', name: 'password', type: 'password', autocomplete: 'current-password',
    required: true, 'aria-describedby': 'password-help login-error',
  });
  const error = h('p', { id: 'login-error', class: 'form-error', role: 'alert' });
  const submit = h('button', { type: 'submit', class: 'btn btn-primary btn-block' }, 'Log in');
  const form = h('form', { class: 'login-form', id: 'password-form', novalidate: true },
    h('label', { for: 'user' }, 'User name'),
    user,
    h('label', { for: 'password' }, 'Password'),
    password,
    h('p', { id: 'password-help', class: 'help' },
      h('code', {}, 'gatehouse demo'), ' prints a user and password to try. Admins add users on the Users page or with ',
      h('code', {}, 'gatehouse users create'), '.'),
    error,
    submit);
  const f = {
    form,
    first: user,
    reset() {
      setText(error, '');
      user.removeAttribute('aria-invalid');
      password.removeAttribute('aria-invalid');
    },
    // fail shows why, and puts the cursor where the fix goes.
    fail(message, focus = true, field = null) {
      setText(error, message);
      if (field) field.setAttribute('aria-invalid', 'true');
      if (focus) (field || user).focus();
    },
  };
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    f.reset();
    const name = user.value.trim();
    if (!name) return f.fail('Type your user name.', true, user);
    if (!password.value) return f.fail('Type your password.', true, password);
    return send(ctx, submit, { user: name, password: password.value }, () => { password.value = ''; }, (err) => {
      // One message for a wrong name or password (the server does not say
      // which); the password is typed again, the name usually stays right.
      password.value = '';
      f.fail(err.message, true, password);
    });
  });
  return f;
}

function tokenForm(ctx) {
  const input = h('input', {
    id: 'token', name: 'token', type: 'password', autocomplete: 'off', spellcheck: 'false',
    required: true, placeholder: 'gat_…', 'aria-describedby': 'token-help token-error',
  });
  const error = h('p', { id: 'token-error', class: 'form-error', role: 'alert' });
  const submit = h('button', { type: 'submit', class: 'btn btn-primary btn-block' }, 'Log in');
  const form = h('form', { class: 'login-form', id: 'token-form', novalidate: true, hidden: true },
    h('label', { for: 'token' }, 'API token'),
    input,
    h('p', { id: 'token-help', class: 'help' },
      'Create one with ', h('code', {}, 'gatehouse tokens create --name you --role operator'),
      ' or on the Tokens page; ', h('code', {}, 'gatehouse demo'), ' prints an admin token.'),
    error,
    submit);
  const fail = (message) => {
    setText(error, message);
    input.setAttribute('aria-invalid', 'true');
    input.select();
    input.focus();
  };
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    setText(error, '');
    const token = input.value.trim();
    if (!token) return fail('Paste your API token.');
    return send(ctx, submit, { token }, () => { input.value = ''; }, (err) => fail(err.message));
  });
  return {
    form,
    first: input,
    reset() {
      setText(error, '');
      input.removeAttribute('aria-invalid');
    },
  };
}

// send logs in with credentials, with the button busy meanwhile.
async function send(ctx, submit, credentials, done, failed) {
  submit.disabled = true;
  setText(submit, 'Logging in…');
  try {
    const session = await api.login(credentials);
    done();
    ctx.onLogin(session);
  } catch (err) {
    failed(err);
  } finally {
    submit.disabled = false;
    setText(submit, 'Log in');
  }
}
