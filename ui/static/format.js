// Formatting of times, codes and counts, shared by every view.

// silentAfterMs mirrors the server's seen=silent filter: not seen for two
// minutes or more.
export const silentAfterMs = 2 * 60 * 1000;

const numberFmt = new Intl.NumberFormat('en-US');
export const num = (n) => numberFmt.format(n);

// duration is a compact age: "40 s", "3 min", "5 h", "12 d".
export function duration(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min`;
  const hrs = Math.floor(m / 60);
  if (hrs < 48) return `${hrs} h`;
  return `${Math.floor(hrs / 24)} d`;
}

// ago is "just now", "2 min ago"; times in the future (clock skew) read as now.
export function ago(iso, now = Date.now()) {
  if (!iso) return '—';
  const ms = now - Date.parse(iso);
  if (ms < 10 * 1000) return 'just now';
  return `${duration(ms)} ago`;
}

// relative is for instants that may lie ahead, such as expiries: "in 90 d",
// "3 d ago".
// Days are rounded, not cut, so a token made for 30 days reads "in 30 d".
export function relative(iso, now = Date.now()) {
  if (!iso) return '—';
  const ms = Date.parse(iso) - now;
  const abs = Math.abs(ms);
  if (abs < 10 * 1000) return 'now';
  const hour = 60 * 60 * 1000;
  const d = abs >= 48 * hour ? `${Math.round(abs / (24 * hour))} d` : duration(abs);
  return ms > 0 ? `in ${d}` : `${d} ago`;
}

// Times use a 24-hour clock with seconds: operators compare them with logs.
const fullFmt = new Intl.DateTimeFormat(undefined, {
  year: 'numeric', month: 'short', day: 'numeric',
  hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23', timeZoneName: 'short',
});
export const fullTime = (iso) => (iso ? fullFmt.format(new Date(iso)) : '—');

const timeFmt = new Intl.DateTimeFormat(undefined, {
  month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23',
});
export const shortTime = (iso) => (iso ? timeFmt.format(new Date(iso)) : '—');

const dayFmt = new Intl.DateTimeFormat(undefined, { year: 'numeric', month: 'short', day: 'numeric' });
export const day = (iso) => (iso ? dayFmt.format(new Date(iso)) : '—');

export function isSilent(d, now = Date.now()) {
  return now - Date.parse(d.last_seen) >= silentAfterMs;
}

// code writes the verification code for people as protocol.FormatCode
// does, and so as the agent's console and the CLI write it: "557 546". The
// API sends the six digits ungrouped.
export const code = (c) => (c && c.length === 6 ? `${c.slice(0, 3)} ${c.slice(3)}` : c || '—');

export const shortFingerprint = (fp) => (fp ? fp.slice(0, 16) : '');

// range is the "1–50 of 10,000" of a pager.
export function range(offset, count, total) {
  if (total === 0) return '0 of 0';
  return `${num(offset + 1)}–${num(offset + count)} of ${num(total)}`;
}

// stepWord says how a step stands in a word. A running step with a
// "waiting: …" note is the IoT Hub follow-up waiting for DPS, not busy.
export function stepWord(st) {
  if (st.state === 'running' && (st.last_error || '').startsWith('waiting')) return 'waiting';
  return { pending: 'queued', running: 'running', succeeded: 'done', failed: 'failed' }[st.state] || st.state;
}

// lastStep summarises a device's provisioning in a few words, the most
// telling step first: a failure, then work in progress, then the last done.
export function lastStep(d) {
  const steps = d.steps || [];
  if (steps.length === 0) return '';
  const pick = steps.find((s) => s.state === 'failed')
    || steps.find((s) => s.state === 'running')
    || steps.find((s) => s.state === 'pending')
    || [...steps].sort((a, b) => Date.parse(b.finished_at || 0) - Date.parse(a.finished_at || 0))[0];
  return `${pick.name} ${stepWord(pick)}`;
}
