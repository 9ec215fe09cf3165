// common.jsx — small shared pieces: the error box, loading line, formatting.
import { useEffect, useState } from 'preact/hooks';

export function ErrorBox({ error, onClose }) {
  if (!error) return null;
  return (
    <div class="error" role="alert">
      <b>{error.code || 'Error'}</b>
      {error.status ? ` (HTTP ${error.status})` : ''}: {error.message}
      {onClose && (
        <button class="link" onClick={onClose} aria-label="dismiss">
          ×
        </button>
      )}
    </div>
  );
}

// Runs an async loader whenever deps change; returns {data, error, loading}.
// A stale answer (deps changed meanwhile) is dropped; an error is kept for
// display, never swallowed.
export function useLoad(fn, deps) {
  const [st, setSt] = useState({ data: null, error: null, loading: true });
  useEffect(() => {
    let live = true;
    const ctl = new AbortController();
    setSt((s) => ({ data: s.data, error: null, loading: true }));
    fn(ctl.signal).then(
      (data) => live && setSt({ data, error: null, loading: false }),
      (error) => live && error.name !== 'AbortError' && setSt({ data: null, error, loading: false }),
    );
    return () => {
      live = false;
      ctl.abort();
    };
  }, deps);
  return st;
}

export function fmtTime(ms) {
  if (ms === undefined || ms === null || ms === '') return '';
  const d = new Date(Number(ms));
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

export function fmtNum(v) {
  if (v === undefined || v === null) return '';
  if (typeof v === 'string') return v; // "NaN", "Infinity"
  if (Number.isInteger(v) && Math.abs(v) < 1e15) return String(v);
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-4 || a >= 1e9)) return v.toExponential(4);
  return String(Number(v.toPrecision(6)));
}

export function fmtBytes(n) {
  if (n === undefined || n === null) return '';
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) {
    n /= 1024;
    i++;
  }
  return (i ? n.toFixed(1) : n) + ' ' + u[i];
}

export const PALETTE = [
  '#2563eb', '#dc2626', '#16a34a', '#9333ea', '#ea580c', '#0891b2', '#ca8a04', '#db2777',
  '#4f46e5', '#65a30d', '#0d9488', '#b91c1c', '#7c3aed', '#c2410c', '#0369a1', '#a16207',
];
export const colorOf = (i) => PALETTE[i % PALETTE.length];

export function Title({ children }) {
  useEffect(() => {
    document.title = (typeof children === 'string' ? children + ' · ' : '') + 'Tally';
  }, [children]);
  return <h1>{children}</h1>;
}
