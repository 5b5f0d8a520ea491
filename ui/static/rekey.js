// Re-key candidates: a gateway reflashed or given new storage comes back
// with a new key and the MAC of a gateway already approved. It shows beside
// that gateway, never as a stranger: on the Pending page as "re-key of
// NAME", and on the gateway's page with its own verification code, to be
// approved (the gateway keeps its name) or dismissed (nothing changes).
import * as api from './api.js';
import { h, setText, setAttr, replace, timeEl } from './dom.js';
import { code, shortFingerprint } from './format.js';

// rekeyBadge is the Pending row's link to the gateway it would re-key.
export function rekeyBadge() {
  return h('a', { class: 'badge badge-rekey', dataset: { flag: 'rekey' }, hidden: true });
}

// markRekey shows a Pending row as a re-key candidate: no name to type, as
// approving keeps the gateway's.
export function markRekey(r) {
  const t = r.device.rekey_of;
  r.rekey.hidden = !t;
  r.el.classList.toggle('is-rekey', !!t);
  setText(r.rekey, t ? `re-key of ${t.name}` : '');
  setAttr(r.rekey, 'href', t ? `#/devices/${encodeURIComponent(t.id)}` : null);
  setAttr(r.rekey, 'title', t
    ? `This new key came with the MAC of ${t.name} (${t.state}): a reflash or new storage, or an impostor. Compare the code on the gateway's console; approving moves ${t.name} onto this key.`
    : null);
  if (r.input) r.input.hidden = !!t;
  if (r.accept) setText(r.accept, t ? 'Approve re-key' : 'Accept');
}

// approveRow approves a Pending row: by name, or as the re-key it is.
export function approveRow(r, name) {
  return r.device.rekey_of ? api.approveRekey(r.id) : api.approve(r.id, name);
}

// rekeyPanel fills el on a device page: a candidate links to its gateway,
// a gateway lists its candidates with what to compare and the decisions.
export async function rekeyPanel(el, d, ctx, reload) {
  if (d.rekey_of && d.state === 'pending') {
    const t = d.rekey_of;
    replace(el, h('div', { class: 'notice notice-rekey', dataset: { rekey: 'candidate' } },
      'This new key came with the MAC of ', h('a', { href: `#/devices/${encodeURIComponent(t.id)}` }, t.name),
      ': it is a candidate to re-key that gateway, not a new one. Approve or dismiss it there.'));
    return;
  }
  const ids = d.rekey_candidates || [];
  if (ids.length === 0) {
    replace(el);
    return;
  }
  const cands = (await Promise.all(ids.map((id) => api.device(id).catch(() => null)))).filter(Boolean);
  const can = ctx.session.role !== 'viewer';
  replace(el, h('section', { class: 'panel rekey-panel', 'aria-labelledby': 'rekey-title' },
    h('h2', { id: 'rekey-title' }, 'Re-key candidates'),
    h('p', { class: 'muted' },
      `A new key enrolled with the MAC of ${d.name}: a reflash or new storage, or an impostor. `
      + 'Compare the verification code with the one on the gateway\'s console. Approving keeps the name, moves every backend onto the new key and refuses the old one; dismissing changes nothing here.'),
    h('ul', { class: 'rekey-list' }, cands.map((c) => candidateItem(c, d, can, ctx, reload)))));
}

function candidateItem(c, d, can, ctx, reload) {
  const msg = h('p', { class: 'row-error', role: 'alert' });
  const approve = h('button', { type: 'button', class: 'btn btn-primary', dataset: { action: 'approve-rekey', key: `rekey-${c.id}` } }, 'Approve re-key');
  const dismiss = h('button', { type: 'button', class: 'btn', dataset: { action: 'dismiss-rekey' } }, 'Dismiss');
  const act = (call, done) => async () => {
    approve.disabled = dismiss.disabled = true;
    try {
      await call();
      ctx.toast(done);
      reload();
    } catch (err) {
      setText(msg, err.message);
      approve.disabled = dismiss.disabled = false;
    }
  };
  approve.addEventListener('click', act(() => api.approveRekey(c.id), `${d.name} re-key approved: its backends move onto the new key`));
  dismiss.addEventListener('click', act(() => api.dismiss(c.id), `Re-key candidate dismissed; ${d.name} is unchanged`));
  return h('li', { class: 'rekey-item', dataset: { id: c.id } },
    h('dl', { class: 'fields' },
      field('Verification code', h('span', { class: 'vcode mono' }, code(c.verification_code))),
      field('Key', h('span', {}, h('code', { class: 'fp', title: `SHA-256 ${c.fingerprint}` }, `${shortFingerprint(c.fingerprint)}…`), ` ${c.key_type}`)),
      field('From', c.source_addr ? h('span', { class: 'mono' }, c.source_addr) : '—'),
      field('First seen', timeEl(c.first_seen))),
    can ? h('div', { class: 'actions' }, approve, dismiss) : h('p', { class: 'muted' }, 'An operator can approve or dismiss it.'),
    msg);
}

function field(k, v) {
  return h('div', { class: 'field-row' }, h('dt', {}, k), h('dd', {}, v));
}
