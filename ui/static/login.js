// The login page: an API token in, a cookie session out. The token is sent
// once and never stored by the page.
import * as api from './api.js';
import { h, setText } from './dom.js';

export function loginView(main, ctx) {
  const input = h('input', {
    id: 'token', name: 'token', type: 'password', autocomplete: 'off', spellcheck: 'false',
    required: true, placeholder: 'gat_…', 'aria-describedby': 'token-help login-error',
  });
  const error = h('p', { id: 'login-error', class: 'form-error', role: 'alert' });
  const submit = h('button', { type: 'submit', class: 'btn btn-primary btn-block' }, 'Log in');
  const form = h('form', { class: 'login-form', novalidate: true },
    h('label', { for: 'token' }, 'API token'),
    input,
    h('p', { id: 'token-help', class: 'help' },
      'Create one with ', h('code', {}, 'gatehouse tokens create --name you --role operator'),
      '; ', h('code', {}, 'gatehouse demo'), ' prints one.'),
    error,
    submit);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const token = input.value.trim();
    if (!token) {
      setText(error, 'Paste your API token.');
      input.focus();
      return;
    }
    submit.disabled = true;
    setText(submit, 'Logging in…');
    setText(error, '');
    try {
      const session = await api.login(token);
      input.value = '';
      ctx.onLogin(session);
    } catch (err) {
      setText(error, err.message);
      input.setAttribute('aria-invalid', 'true');
      input.select();
      input.focus();
    } finally {
      submit.disabled = false;
      setText(submit, 'Log in');
    }
  });
  main.append(h('section', { class: 'login' },
    h('div', { class: 'login-card' },
      h('div', { class: 'login-brand' }, h('img', { src: '/assets/favicon.svg', alt: '', width: 40, height: 40 }), 'gatehouse'),
      h('h1', { tabindex: '-1' }, 'Log in'),
      h('p', { class: 'lede' }, 'Approve new gateways and follow their provisioning.'),
      form)));
  input.focus();
  return {};
}
