// A refusal about another gateway (a name it already holds) links to that
// gateway, named as an operator knows it, so the operator can go and look
// rather than search the list for an id copied out of the message.
import { h } from './dom.js';

// conflictLink is the link to the other gateway of err.conflict.
export function conflictLink(c) {
  const label = c.name ? `${c.name} (${c.mac})` : c.mac;
  return h('a', { class: 'conflict-link', href: `#/devices/${encodeURIComponent(c.id)}`, dataset: { conflict: c.id } },
    `Open ${label}`);
}
