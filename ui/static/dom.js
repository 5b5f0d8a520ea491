import { ago, fullTime, relative } from './format.js';

// Small helpers for building the page without a framework. Everything is
// created with DOM calls, never parsed from HTML strings, so values from the
// server can never become markup.

// h builds an element: h('a', {href: '#/x', class: 'y'}, 'text', child).
// Attributes starting with "on" are listeners; "dataset" and "props" are
// objects assigned onto the element.
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k === 'props') Object.assign(el, v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
}

// replace swaps the children of el for new ones.
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

// setText changes text only when it differs, so live updates do not disturb
// selections or screen readers needlessly.
export function setText(el, text) {
  text = String(text ?? '');
  if (el.textContent !== text) el.textContent = text;
}

export function setAttr(el, name, value) {
  if (value === undefined || value === null || value === false) {
    el.removeAttribute(name);
  } else if (el.getAttribute(name) !== String(value)) {
    el.setAttribute(name, String(value));
  }
}

export function debounce(fn, ms) {
  let t;
  return (...args) => {
    clearTimeout(t);
    t = setTimeout(() => fn(...args), ms);
  };
}

// keyedRows updates tbody to show items in order, one row per key. Rows that
// stay are updated in place, never rebuilt, so what an operator types, where
// the focus is and any message in a row survive a live refresh.
export function keyedRows(tbody, rows, items, key, create, update) {
  const keep = new Set(items.map(key));
  for (const [k, row] of rows) {
    if (!keep.has(k)) {
      row.el.remove();
      rows.delete(k);
    }
  }
  items.forEach((item, i) => {
    const k = key(item);
    let row = rows.get(k);
    if (!row) {
      row = create(item);
      rows.set(k, row);
    }
    update(row, item);
    // Move only rows out of place: moving a node blurs whatever it contains.
    if (tbody.children[i] !== row.el) tbody.insertBefore(row.el, tbody.children[i] || null);
  });
}

// timeEl is a <time> the page's ticker keeps relative ("2 min ago"), with
// the exact time on hover.
export function timeEl(iso) {
  if (!iso) return h('span', { class: 'muted' }, '—');
  return h('time', { datetime: iso, title: fullTime(iso), 'data-ago': '' }, ago(iso));
}

// setTime points an existing timeEl at a new instant.
export function setTime(el, iso) {
  if (el.dateTime === iso) return;
  el.dateTime = iso;
  el.title = fullTime(iso);
  setText(el, ago(iso));
}

// relTimeEl is a <time> for an instant that may lie ahead ("in 90 d"), kept
// current by the ticker like timeEl.
export function relTimeEl(iso) {
  return h('time', { datetime: iso, title: fullTime(iso), 'data-rel': '' }, relative(iso));
}
