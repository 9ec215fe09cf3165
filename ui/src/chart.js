// chart.js — a canvas line chart for many runs of one metric, made for
// M4-downsampled data: each series brings its own x (Float64Array, sorted)
// and y (Float32Array) columns, so nothing is aligned or joined, and drawing
// costs one path per series over ~4 points per pixel column.
//
// Interaction: wheel zooms around the cursor, drag pans, double-click
// resets; each ends in onRange(lo, hi) (null = whole range), which the page
// turns into a re-query at the new range with W = plotWidth() (and syncs to
// the other charts). Until the new data arrives the current points are
// redrawn at the new range, so the chart answers at once. Hover draws a
// crosshair and lists each run's value at that x (nearest point).

const M = { l: 64, r: 14, t: 10, b: 30 };
const RASTER_POINTS = 20000; // above this many points a chart rasterizes its lines itself

// '#rrggbb' as the little-endian RGBA word of an ImageData pixel.
function rgba32(hex) {
  const v = parseInt(hex.slice(1), 16);
  return (0xff000000 | ((v & 0xff) << 16) | (v & 0xff00) | ((v >> 16) & 0xff)) >>> 0;
}

// A 1-pixel line from (x0, y0) to (x1, y1) into px (w x h, row-major):
// clipped to the area (Liang-Barsky) unless both ends are inside, then
// Bresenham. Called once per segment (200,000 times for a 100-run chart), so
// it allocates nothing.
function line(px, w, h, x0, y0, x1, y1, c) {
  if (!(x0 >= 0 && x0 <= w - 1 && y0 >= 0 && y0 <= h - 1 && x1 >= 0 && x1 <= w - 1 && y1 >= 0 && y1 <= h - 1)) {
    const dx = x1 - x0, dy = y1 - y0;
    let t0 = 0, t1 = 1;
    for (let k = 0; k < 4; k++) {
      const p = k === 0 ? -dx : k === 1 ? dx : k === 2 ? -dy : dy;
      const q = k === 0 ? x0 : k === 1 ? w - 1 - x0 : k === 2 ? y0 : h - 1 - y0;
      if (p === 0) {
        if (q < 0) return;
        continue;
      }
      const r = q / p;
      if (p < 0) {
        if (r > t1) return;
        if (r > t0) t0 = r;
      } else {
        if (r < t0) return;
        if (r < t1) t1 = r;
      }
    }
    const nx0 = x0 + t0 * dx, ny0 = y0 + t0 * dy;
    x1 = x0 + t1 * dx;
    y1 = y0 + t1 * dy;
    x0 = nx0;
    y0 = ny0;
  }
  let ax = Math.round(x0), ay = Math.round(y0);
  const bx = Math.round(x1), by = Math.round(y1);
  const ex = Math.abs(bx - ax), sx = ax < bx ? 1 : -1, ey = -Math.abs(by - ay), sy = ay < by ? 1 : -1;
  let err = ex + ey;
  for (;;) {
    px[ay * w + ax] = c;
    if (ax === bx && ay === by) break;
    const e2 = 2 * err;
    if (e2 >= ey) {
      err += ey;
      ax += sx;
    }
    if (e2 <= ex) {
      err += ex;
      ay += sy;
    }
  }
}

export function emaSmooth(y, w) {
  if (!(w > 0)) return y;
  const out = new Float64Array(y.length);
  let last = 0, n = 0;
  for (let i = 0; i < y.length; i++) {
    const v = y[i];
    if (!Number.isFinite(v)) {
      out[i] = v;
      continue;
    }
    last = last * w + (1 - w) * v;
    n++;
    out[i] = last / (1 - Math.pow(w, n)); // debiased, as TensorBoard
  }
  return out;
}

function niceStep(span, count) {
  const raw = span / Math.max(1, count);
  const p = Math.pow(10, Math.floor(Math.log10(raw)));
  const f = raw / p;
  return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * p;
}

export function ticks(lo, hi, count) {
  if (!(hi > lo)) return [lo];
  const step = niceStep(hi - lo, count);
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Math.abs(v) < step * 1e-9 ? 0 : v);
  return out;
}

function fmtCompact(v) {
  const a = Math.abs(v);
  if (a >= 1e9) return +(v / 1e9).toPrecision(3) + 'G';
  if (a >= 1e6) return +(v / 1e6).toPrecision(3) + 'M';
  if (a >= 1e4) return +(v / 1e3).toPrecision(3) + 'k';
  if (a !== 0 && a < 1e-3) return v.toExponential(1);
  return String(+v.toPrecision(4));
}

function fmtDuration(ms) {
  const s = ms / 1000;
  if (Math.abs(s) < 60) return +s.toPrecision(3) + 's';
  if (Math.abs(s) < 3600) return +(s / 60).toPrecision(3) + 'm';
  if (Math.abs(s) < 86400 * 2) return +(s / 3600).toPrecision(3) + 'h';
  return +(s / 86400).toPrecision(3) + 'd';
}

function fmtClock(ms, span) {
  const d = new Date(ms);
  const p = (n) => String(n).padStart(2, '0');
  if (span > 2 * 86400e3) return `${d.getMonth() + 1}/${d.getDate()} ${p(d.getHours())}:${p(d.getMinutes())}`;
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

export function formatX(axis, v, span) {
  if (axis === 'time') return fmtClock(v, span);
  if (axis === 'relative') return fmtDuration(v);
  return fmtCompact(v);
}

export class LineChart {
  constructor(root, { onRange, axis = 'step', ylog = false, smooth = 0, height = 280 }) {
    this.root = root;
    this.onRange = onRange;
    this.opts = { axis, ylog, smooth };
    this.series = [];
    this.view = null; // [lo, hi] shown; null = the data's extent
    this.hoverX = null;
    this.canvas = document.createElement('canvas');
    this.canvas.style.height = height + 'px';
    this.height = height;
    this.tip = document.createElement('div');
    this.tip.className = 'tip';
    this.tip.hidden = true;
    root.append(this.canvas, this.tip);
    this.ctx = this.canvas.getContext('2d');
    this._bind();
    this.resize();
    this.ro = new ResizeObserver(() => {
      if (this.resize()) this.draw();
    });
    this.ro.observe(root);
  }

  destroy() {
    this.ro.disconnect();
    this.canvas.remove();
    this.tip.remove();
  }

  // Plot area width in device pixels: the W of the query (one M4 column per pixel).
  plotWidth() {
    return Math.max(1, Math.round((this.cssW - M.l - M.r) * (window.devicePixelRatio || 1)));
  }

  resize() {
    const w = Math.max(200, Math.floor(this.root.clientWidth));
    if (w === this.cssW) return false;
    const dpr = window.devicePixelRatio || 1;
    this.cssW = w;
    this.canvas.width = w * dpr;
    this.canvas.height = this.height * dpr;
    this.canvas.style.width = w + 'px';
    this.ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    return true;
  }

  setOptions(o) {
    Object.assign(this.opts, o);
    this._prepare();
    this.draw();
  }

  // series: [{name, color, x: Float64Array, y: Float32Array}]
  setSeries(series) {
    this.series = series;
    this._prepare();
    this.draw();
  }

  // One draw in the next animation frame, however many requests.
  requestDraw() {
    if (this.pending) return;
    this.pending = requestAnimationFrame(() => {
      this.pending = 0;
      this.draw();
    });
  }

  setView(range) {
    this.view = range;
    this.draw();
  }

  extent() {
    let lo = Infinity, hi = -Infinity;
    for (const s of this.series)
      if (s.x.length) {
        lo = Math.min(lo, s.x[0]);
        hi = Math.max(hi, s.x[s.x.length - 1]);
      }
    return lo <= hi ? [lo, hi] : null;
  }

  _prepare() {
    const { smooth, ylog } = this.opts;
    for (const s of this.series) {
      let y = emaSmooth(s.y, smooth);
      if (ylog) {
        const t = new Float64Array(y.length);
        for (let i = 0; i < y.length; i++) t[i] = y[i] > 0 ? Math.log10(y[i]) : NaN;
        y = t;
      }
      s.py = y; // plotted y
    }
  }

  _xRange() {
    const e = this.extent();
    let [lo, hi] = this.view || e || [0, 1];
    if (hi <= lo) {
      lo -= 1;
      hi += 1;
    }
    return [lo, hi];
  }

  _yRange(xlo, xhi) {
    let lo = Infinity, hi = -Infinity;
    for (const s of this.series) {
      const a = lowerBound(s.x, xlo), b = upperBound(s.x, xhi);
      for (let i = Math.max(0, a - 1); i < Math.min(s.x.length, b + 1); i++) {
        const v = s.py[i];
        if (Number.isFinite(v)) {
          if (v < lo) lo = v;
          if (v > hi) hi = v;
        }
      }
    }
    if (!(lo <= hi)) return [0, 1];
    if (lo === hi) return [lo - 0.5, hi + 0.5];
    const pad = (hi - lo) * 0.04;
    return [lo - pad, hi + pad];
  }

  draw() {
    const ctx = this.ctx, W = this.cssW, H = this.height;
    const pw = W - M.l - M.r, ph = H - M.t - M.b;
    const [xlo, xhi] = this._xRange();
    const [ylo, yhi] = this._yRange(xlo, xhi);
    this.frame = { xlo, xhi, ylo, yhi, pw, ph };
    const X = (x) => M.l + ((x - xlo) / (xhi - xlo)) * pw;
    const Y = (y) => M.t + (1 - (y - ylo) / (yhi - ylo)) * ph;
    ctx.clearRect(0, 0, W, H);
    ctx.font = '11px system-ui, sans-serif';
    ctx.fillStyle = '#666';
    ctx.strokeStyle = '#e5e7eb';
    ctx.lineWidth = 1;
    // grid and labels
    ctx.textAlign = 'right';
    ctx.textBaseline = 'middle';
    const yt = this.opts.ylog ? logTicks(ylo, yhi) : ticks(ylo, yhi, Math.max(2, ph / 40));
    for (const v of yt) {
      const y = Math.round(Y(v)) + 0.5;
      ctx.beginPath();
      ctx.moveTo(M.l, y);
      ctx.lineTo(M.l + pw, y);
      ctx.stroke();
      ctx.fillText(this.opts.ylog ? fmtCompact(Math.pow(10, v)) : fmtCompact(v), M.l - 6, y);
    }
    ctx.textAlign = 'center';
    ctx.textBaseline = 'top';
    const xt = ticks(xlo, xhi, Math.max(2, pw / 90));
    for (const v of xt) {
      const x = Math.round(X(v)) + 0.5;
      ctx.beginPath();
      ctx.moveTo(x, M.t);
      ctx.lineTo(x, M.t + ph);
      ctx.stroke();
      ctx.fillText(formatX(this.opts.axis, v, xhi - xlo), x, M.t + ph + 6);
    }
    ctx.strokeStyle = '#9ca3af';
    ctx.strokeRect(M.l + 0.5, M.t + 0.5, pw, ph);
    // series
    let total = 0;
    for (const s of this.series) total += s.x.length;
    if (total > RASTER_POINTS) this._raster(xlo, xhi, ylo, yhi, pw, ph);
    else this._stroke(X, Y, xlo, xhi, pw, ph);
    if (this.hoverX !== null) this._drawHover();
  }

  // Few points: anti-aliased canvas strokes.
  _stroke(X, Y, xlo, xhi, pw, ph) {
    const ctx = this.ctx;
    ctx.save();
    ctx.beginPath();
    ctx.rect(M.l, M.t, pw, ph);
    ctx.clip();
    // 1 px lines with bevel joins stay on the rasterizer's fast hairline path
    // (wider or round-joined strokes of zigzags cost 3-10x more)
    ctx.lineWidth = 1;
    ctx.lineJoin = 'bevel';
    for (const s of this.series) {
      const n = s.x.length;
      if (!n) continue;
      const a = Math.max(0, lowerBound(s.x, xlo) - 1), b = Math.min(n, upperBound(s.x, xhi) + 1);
      ctx.strokeStyle = s.color;
      ctx.beginPath();
      let pen = false;
      for (let i = a; i < b; i++) {
        const v = s.py[i];
        if (!Number.isFinite(v)) {
          pen = false;
          continue;
        }
        const px = X(s.x[i]), py = Y(v);
        if (pen) ctx.lineTo(px, py);
        else ctx.moveTo(px, py);
        pen = true;
      }
      if (b - a === 1) ctx.arc(X(s.x[a]), Y(s.py[a]), 1.5, 0, 7);
      ctx.stroke();
    }
    ctx.restore();
  }

  // Many points (M4 of many runs): 1-pixel lines rasterized straight into the
  // plot's pixels. The browser's path stroker costs 3-10x more on M4's
  // zigzags (100 runs x 2000 points: ~60-250 ms in software Chromium against
  // ~20-60 ms here), and at that density anti-aliasing shows nothing anyway.
  _raster(xlo, xhi, ylo, yhi, pw, ph) {
    const dpr = window.devicePixelRatio || 1;
    const ox = Math.round(M.l * dpr), oy = Math.round(M.t * dpr);
    const w = Math.max(1, Math.round(pw * dpr)), h = Math.max(1, Math.round(ph * dpr));
    const img = this.ctx.getImageData(ox, oy, w, h);
    const px = new Uint32Array(img.data.buffer);
    // plot pixels straight from data: x' = (x - xlo) kx, y' = (yhi - y) ky
    const kx = (pw * dpr) / (xhi - xlo), ky = (ph * dpr) / (yhi - ylo);
    for (const s of this.series) {
      const n = s.x.length;
      if (!n) continue;
      const c = rgba32(s.color);
      const xs = s.x, ys = s.py;
      const a = Math.max(0, lowerBound(xs, xlo) - 1), b = Math.min(n, upperBound(xs, xhi) + 1);
      let pen = false, x0 = 0, y0 = 0;
      for (let i = a; i < b; i++) {
        const v = ys[i];
        if (!(v === v) || v === Infinity || v === -Infinity) {
          pen = false;
          continue;
        }
        const x1 = (xs[i] - xlo) * kx, y1 = (yhi - v) * ky;
        if (pen) line(px, w, h, x0, y0, x1, y1, c);
        else if (b - a === 1) line(px, w, h, x1, y1, x1, y1, c);
        x0 = x1;
        y0 = y1;
        pen = true;
      }
    }
    this.ctx.putImageData(img, ox, oy);
  }

  _drawHover() {
    const { xlo, xhi, pw, ph } = this.frame;
    const ctx = this.ctx;
    const px = M.l + ((this.hoverX - xlo) / (xhi - xlo)) * pw;
    if (px < M.l || px > M.l + pw) {
      this.tip.hidden = true;
      return;
    }
    ctx.strokeStyle = '#111';
    ctx.setLineDash([3, 3]);
    ctx.beginPath();
    ctx.moveTo(Math.round(px) + 0.5, M.t);
    ctx.lineTo(Math.round(px) + 0.5, M.t + ph);
    ctx.stroke();
    ctx.setLineDash([]);
    const rows = [];
    for (const s of this.series) {
      const n = s.x.length;
      if (!n) continue;
      let i = lowerBound(s.x, this.hoverX);
      if (i >= n || (i > 0 && this.hoverX - s.x[i - 1] < s.x[i] - this.hoverX)) i--;
      if (i < 0) continue;
      const sm = this.opts.smooth > 0;
      const shown = this.opts.ylog ? Math.pow(10, s.py[i]) : s.py[i];
      rows.push({ s, x: s.x[i], v: sm ? shown : s.y[i], raw: s.y[i] });
    }
    rows.sort((p, q) => (q.v > p.v ? 1 : q.v < p.v ? -1 : 0));
    const max = 12;
    const esc = (t) => String(t).replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);
    let html = `<div class="tx">${esc(formatX(this.opts.axis, this.hoverX, xhi - xlo))}</div>`;
    for (const r of rows.slice(0, max))
      html +=
        `<div class="tr"><i style="background:${r.s.color}"></i><span>${esc(r.s.name)}</span>` +
        `<b>${esc(fmtVal(r.v))}</b>${this.opts.smooth > 0 ? `<small>${esc(fmtVal(r.raw))}</small>` : ''}</div>`;
    if (rows.length > max) html += `<div class="more">+${rows.length - max} more</div>`;
    this.tip.innerHTML = html;
    this.tip.hidden = rows.length === 0;
    const left = px + 16 + 260 > this.cssW ? px - 276 : px + 16;
    this.tip.style.left = Math.max(0, left) + 'px';
  }

  _xAt(clientX) {
    const r = this.canvas.getBoundingClientRect();
    const { xlo, xhi, pw } = this.frame;
    return xlo + ((clientX - r.left - M.l) / pw) * (xhi - xlo);
  }

  _bind() {
    const c = this.canvas;
    let drag = null;
    c.addEventListener('mousemove', (e) => {
      if (drag) {
        const { xlo, xhi, pw } = this.frame;
        const dx = ((e.clientX - drag.x) / pw) * (drag.hi - drag.lo);
        this.view = [drag.lo - dx, drag.hi - dx];
        drag.moved = Math.abs(e.clientX - drag.x) > 2;
        this.hoverX = null;
        this.tip.hidden = true;
        this.requestDraw();
        void xlo, xhi;
        return;
      }
      this.hoverX = this._xAt(e.clientX);
      this.requestDraw();
    });
    c.addEventListener('mouseleave', () => {
      this.hoverX = null;
      this.tip.hidden = true;
      this.draw();
    });
    c.addEventListener('mousedown', (e) => {
      if (e.button !== 0) return;
      const [lo, hi] = this._xRange();
      drag = { x: e.clientX, lo, hi, moved: false };
    });
    window.addEventListener('mouseup', () => {
      if (!drag) return;
      const moved = drag.moved;
      drag = null;
      if (moved && this.view) {
        this.view = [Math.floor(this.view[0]), Math.ceil(this.view[1])];
        this.onRange(this.view[0], this.view[1]);
      }
    });
    c.addEventListener('dblclick', () => {
      this.view = null;
      this.draw();
      this.onRange(null, null);
    });
    c.addEventListener(
      'wheel',
      (e) => {
        e.preventDefault();
        const [lo, hi] = this._xRange();
        const at = Math.min(hi, Math.max(lo, this._xAt(e.clientX)));
        const dy = e.deltaMode === 1 ? e.deltaY * 33 : e.deltaMode === 2 ? e.deltaY * 400 : e.deltaY;
        const f = Math.min(4, Math.max(1e-6, Math.pow(2, dy / 100)));
        let nlo = at - (at - lo) * f, nhi = at + (hi - at) * f;
        const e0 = this.extent();
        if (e0 && f > 1) {
          // zooming out never goes past the data
          nlo = Math.max(nlo, e0[0]);
          nhi = Math.min(nhi, e0[1]);
        }
        nlo = Math.floor(nlo);
        nhi = Math.ceil(nhi);
        if (!(nhi - nlo >= 1)) return; // x is integral: one unit is the finest view
        this.view = [nlo, nhi];
        // the re-query first (it starts in this task), the preview of the
        // points already held in the next frame, while the query runs
        this.onRange(nlo, nhi);
        this.requestDraw();
      },
      { passive: false },
    );
  }
}

function fmtVal(v) {
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-4 || a >= 1e7)) return v.toExponential(4);
  return String(+v.toPrecision(6));
}

function logTicks(lo, hi) {
  const out = [];
  for (let k = Math.ceil(lo); k <= Math.floor(hi); k++) out.push(k);
  if (out.length >= 2) return out;
  // less than a decade: linear ticks of the values, placed in log space
  return ticks(Math.pow(10, lo), Math.pow(10, hi), 4).filter((v) => v > 0).map((v) => Math.log10(v));
}

export function lowerBound(a, v) {
  let lo = 0, hi = a.length;
  while (lo < hi) {
    const m = (lo + hi) >> 1;
    if (a[m] < v) lo = m + 1;
    else hi = m;
  }
  return lo;
}

export function upperBound(a, v) {
  let lo = 0, hi = a.length;
  while (lo < hi) {
    const m = (lo + hi) >> 1;
    if (a[m] <= v) lo = m + 1;
    else hi = m;
  }
  return lo;
}
