// api.js — every call the UI makes to the server. Errors are never
// swallowed: a non-2xx answer becomes an ApiError carrying MLflow's
// error_code and message (or the HTTP status and body text), which the pages
// show to the user.

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

const BASE = '/ajax-api/2.0/';

function qs(params) {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) {
    if (v === undefined || v === null || v === '') continue;
    if (Array.isArray(v)) v.forEach((x) => u.append(k, x));
    else u.append(k, v);
  }
  const s = u.toString();
  return s ? '?' + s : '';
}

async function errorOf(r) {
  const text = await r.text().catch(() => '');
  let j = null;
  try {
    j = JSON.parse(text);
  } catch {
    /* not JSON: the status and the text say it */
  }
  return new ApiError(
    r.status,
    (j && j.error_code) || 'HTTP_' + r.status,
    (j && j.message) || text.slice(0, 300) || r.statusText || 'request failed',
  );
}

// GET (params in the query string) or another method with a JSON body.
export async function api(path, { method = 'GET', params, body, signal } = {}) {
  let r;
  try {
    r = await fetch(BASE + path + (method === 'GET' ? qs(params) : ''), {
      method,
      signal,
      headers: body !== undefined ? { 'Content-Type': 'application/json' } : undefined,
      body: body !== undefined ? JSON.stringify(body) : undefined,
    });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, 'NETWORK_ERROR', `Cannot reach the server (${e.message}).`);
  }
  if (!r.ok) throw await errorOf(r);
  const text = await r.text();
  if (!text) return {};
  try {
    return JSON.parse(text);
  } catch {
    throw new ApiError(r.status, 'BAD_RESPONSE', 'The server answered something that is not JSON.');
  }
}

// The native query API's compact binary answer (docs/api.md, format
// binary32): per run {n_source, x_lo, x_hi, x: Float64Array, y: Float32Array}.
export async function querySeries({ runIds, key, axis, width, lo, hi, signal }) {
  const body = { run_ids: runIds, key, x_axis: axis, method: 'm4', width, format: 'binary32' };
  if (lo !== undefined && hi !== undefined) {
    body.x_lo = Math.floor(lo);
    body.x_hi = Math.ceil(hi);
  }
  let r;
  try {
    r = await fetch(BASE + 'tally/query', {
      method: 'POST',
      signal,
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
    });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, 'NETWORK_ERROR', `Cannot reach the server (${e.message}).`);
  }
  if (!r.ok) throw await errorOf(r);
  const buf = await r.arrayBuffer();
  return { series: decodeBinary32(buf), bytes: buf.byteLength };
}

export function decodeBinary32(buf) {
  const dv = new DataView(buf);
  if (buf.byteLength < 16 || dv.getUint32(0, false) !== 0x544c5951 || dv.getUint8(4) !== 2)
    throw new ApiError(200, 'BAD_RESPONSE', 'Unexpected answer from tally/query (not binary32).');
  const n = dv.getUint32(8, true);
  const out = [];
  let o = 16;
  for (let i = 0; i < n; i++) {
    const cnt = dv.getUint32(o, true);
    const nSource = Number(dv.getBigUint64(o + 8, true));
    const xLo = Number(dv.getBigInt64(o + 16, true));
    const xHi = Number(dv.getBigInt64(o + 24, true));
    o += 32;
    const dx = new Uint32Array(buf, o, cnt);
    const y = new Float32Array(buf, o + 4 * cnt, cnt);
    o += 8 * cnt;
    const x = new Float64Array(cnt);
    for (let k = 0; k < cnt; k++) x[k] = xLo + dx[k];
    out.push({ nSource, xLo, xHi, x, y });
  }
  return out;
}

// MLflow's search syntax needs backquotes around keys with odd characters.
export function quoteKey(k) {
  return /^[A-Za-z_][A-Za-z0-9_.]*$/.test(k) ? k : '`' + k.replace(/`/g, '') + '`';
}

// A string literal of the search syntax, which has no escapes: single quotes,
// or double quotes when the text holds a single quote (a text holding both
// kinds cannot be written; its double quotes are dropped).
export function quoteStr(v) {
  if (!v.includes("'")) return `'${v}'`;
  return `"${v.replace(/"/g, '')}"`;
}
