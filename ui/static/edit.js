// The device page's Edit form: rename an approved gateway or change its
// labels. The server refuses a rename a backend cannot follow and says
// which; the form keeps what was typed so the operator can change it.
import * as api from './api.js';
import { h, replace, setText } from './dom.js';
import { formField, formToggle } from './widgets.js';
import { conflictLink } from './conflict.js';

const editable = new Set(['approved', 'provisioning', 'provisioned', 'configured', 'failed', 'stalled']);

// canEdit says whether the operator may edit gateway d.
export function canEdit(d, session) {
  return editable.has(d.state) && session.role !== 'viewer';
}

// editPanel is the Edit button and its form; update(d) gives it the gateway
// as last loaded, without touching an open form, so live updates neither
// replace the button under the operator's pointer nor wipe what they type.
// onSaved gets the gateway as the server answered it.
export function editPanel({ onSaved, toast }) {
  let d = null;
  const button = h('button', {
    type: 'button', class: 'btn', id: 'edit-device', 'aria-expanded': 'false', 'aria-controls': 'device-edit',
  }, 'Edit name or labels');
  const name = h('input', {
    id: 'edit-name', name: 'name', type: 'text', maxlength: 200, autocomplete: 'off', spellcheck: 'false',
    autocapitalize: 'none', 'aria-describedby': 'edit-name-help device-edit-error',
  });
  const labels = h('textarea', {
    id: 'edit-labels', name: 'labels', rows: 4, spellcheck: 'false', 'aria-describedby': 'edit-labels-help device-edit-error',
  });
  const error = h('p', { id: 'device-edit-error', class: 'form-error', role: 'alert' });
  const submit = h('button', { type: 'submit', class: 'btn btn-primary' }, 'Save');
  const cancel = h('button', { type: 'button', class: 'btn' }, 'Cancel');
  const el = h('form', { class: 'panel-form', id: 'device-edit', hidden: true, novalidate: true, 'aria-labelledby': 'device-edit-title' },
    h('h2', { id: 'device-edit-title' }, 'Edit gateway'),
    h('div', { class: 'form-fields' },
      formField('edit-name', 'Name', name,
        h('span', { id: 'edit-name-help', class: 'help' }, 'Refused, naming the backend, where a backend keeps the name it was given.')),
      formField('edit-labels', 'Labels', labels,
        h('span', { id: 'edit-labels-help', class: 'help' }, 'One key=value per line. New labels re-apply the deployment manifest.'))),
    error,
    h('div', { class: 'form-actions' }, submit, cancel));
  const f = formToggle({
    el, button, first: name, cancel, error,
    onOpen() {
      name.value = d.name || '';
      labels.value = Object.entries(d.labels || {}).map(([k, v]) => `${k}=${v}`).join('\n');
    },
  });
  button.addEventListener('click', () => (el.hidden ? f.open() : f.close()));
  el.addEventListener('submit', async (e) => {
    e.preventDefault();
    setText(error, '');
    const change = changeOf(d, name.value.trim(), labels.value);
    if (change.error) return fail(change.error, labels);
    if (!change.body) return fail('Nothing changed: edit the name or the labels first.', name);
    submit.disabled = true;
    try {
      const saved = await api.editDevice(d.id, change.body);
      f.close(false);
      toast(change.body.name ? `Renamed to ${saved.name}.` : 'Labels saved.');
      onSaved(saved);
    } catch (err) {
      fail(err.message, change.body.name ? name : labels, err.conflict);
    } finally {
      submit.disabled = false;
    }
  });
  function fail(message, field, conflict) {
    if (conflict) replace(error, message, ' ', conflictLink(conflict));
    else setText(error, message);
    field.setAttribute('aria-invalid', 'true');
    field.focus();
  }
  labels.addEventListener('input', () => labels.removeAttribute('aria-invalid'));
  const box = h('div', { class: 'device-edit', hidden: true }, button, el);
  return {
    el: box,
    update(next, session) {
      d = next;
      box.hidden = !canEdit(d, session);
      if (box.hidden && !el.hidden) f.close(false);
    },
  };
}

// changeOf is the PATCH body for what the form holds, or why it is wrong.
function changeOf(d, name, text) {
  const labels = {};
  for (const [i, raw] of text.split('\n').entries()) {
    const line = raw.trim();
    if (!line) continue;
    const eq = line.indexOf('=');
    if (eq <= 0) return { error: `Line ${i + 1} of the labels is not key=value.` };
    const k = line.slice(0, eq).trim();
    if (k in labels) return { error: `Label ${k} is given twice.` };
    labels[k] = line.slice(eq + 1).trim();
  }
  const body = {};
  if (name !== (d.name || '')) body.name = name;
  if (!sameLabels(labels, d.labels || {})) body.labels = labels;
  return { body: Object.keys(body).length ? body : null };
}

function sameLabels(a, b) {
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => b[k] === a[k]);
}
