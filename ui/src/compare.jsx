// compare.jsx — many runs overlaid, one chart per metric key.
//
// Each chart asks the native query API for M4 at W = its plot width in
// pixels (binary32 columns), over the whole range or over the zoomed range,
// so 100 runs x 1 M steps costs ~4 points per pixel column per run whatever
// the zoom. Zoom and pan in one chart move all of them (the range is shared)
// and each re-queries at the new range. The view (runs, keys, x axis, y
// scale, smoothing, range) is kept in the URL.
import { useEffect, useLayoutEffect, useMemo, useRef, useState } from 'preact/hooks';
import { api, querySeries } from './api.js';
import { LineChart } from './chart.js';
import { ErrorBox, Title, colorOf, useLoad } from './common.jsx';
import { setQuery } from './router.js';

// Queries made by the charts, newest last (read by the end-to-end tests and
// the benchmark; a few hundred entries at most).
const log = (window.__tally = window.__tally || { queries: [] });

export function Compare({ query }) {
  const exp = query.get('exp') || '';
  const runIds = useMemo(() => (query.get('runs') || '').split(',').filter(Boolean), [query.get('runs')]);
  const axis = query.get('x') || 'step';
  const ylog = query.get('y') === 'log';
  const smooth = Math.min(0.999, Math.max(0, Number(query.get('smooth') || 0)));
  const lo = query.get('lo'), hi = query.get('hi');
  const range = lo !== null && hi !== null && Number(hi) > Number(lo) ? [Number(lo), Number(hi)] : null;
  const [err, setErr] = useState(null);

  const meta = useLoad(async (signal) => {
    if (!runIds.length) return { runs: [] };
    if (exp) {
      const ids = runIds.map((r) => `'${r.replace(/'/g, '')}'`).join(',');
      return api('mlflow/runs/search', {
        method: 'POST',
        signal,
        body: { experiment_ids: [exp], filter: `attributes.run_id IN (${ids})`, max_results: 1000, run_view_type: 'ALL' },
      });
    }
    const got = await Promise.all(runIds.slice(0, 100).map((run_id) => api('mlflow/runs/get', { params: { run_id }, signal })));
    return { runs: got.map((g) => g.run) };
  }, [exp, runIds.join(',')]);

  const byId = useMemo(() => {
    const m = new Map();
    for (const r of (meta.data && meta.data.runs) || []) m.set(r.info.run_id, r);
    return m;
  }, [meta.data]);
  const allKeys = useMemo(() => {
    const s = new Set();
    for (const r of byId.values()) for (const m of r.data.metrics || []) s.add(m.key);
    return [...s].sort();
  }, [byId]);
  const keysParam = query.get('keys');
  const keys = keysParam !== null ? keysParam.split(',').filter(Boolean) : allKeys.slice(0, 6);
  const series = useMemo(
    () =>
      runIds.map((id, i) => {
        const r = byId.get(id);
        const name = (r && (r.info.run_name || (r.data.tags || []).find((t) => t.key === 'mlflow.runName')?.value)) || id.slice(0, 8);
        return { id, name, color: colorOf(i) };
      }),
    [runIds, byId],
  );
  const onRange = (a, b) => {
    if (a === null) setQuery({ lo: null, hi: null });
    else setQuery({ lo: String(Math.floor(a)), hi: String(Math.ceil(b)) });
  };
  const flipKey = (k) => {
    const s = keys.includes(k) ? keys.filter((x) => x !== k) : [...keys, k];
    setQuery({ keys: s.join(',') });
  };

  return (
    <div class="page">
      <div class="crumbs">
        <a href="/">Experiments</a>
        {exp && (
          <>
            {' / '}
            <a href={`/experiments/${exp}`}>experiment {exp}</a>
          </>
        )}{' '}
        / compare
      </div>
      <Title>{`Compare ${runIds.length} runs`}</Title>
      <div class="toolbar">
        <label>
          x axis{' '}
          <select name="x" value={axis} onChange={(e) => setQuery({ x: e.target.value === 'step' ? null : e.target.value, lo: null, hi: null })}>
            <option value="step">step</option>
            <option value="time">wall time</option>
            <option value="relative">relative time</option>
          </select>
        </label>
        <label>
          y scale{' '}
          <select name="y" value={ylog ? 'log' : 'linear'} onChange={(e) => setQuery({ y: e.target.value === 'log' ? 'log' : null })}>
            <option value="linear">linear</option>
            <option value="log">log</option>
          </select>
        </label>
        <label>
          smoothing{' '}
          <input
            type="range"
            name="smooth"
            min="0"
            max="0.99"
            step="0.01"
            value={smooth}
            onChange={(e) => setQuery({ smooth: Number(e.target.value) > 0 ? e.target.value : null })}
          />{' '}
          {smooth.toFixed(2)}
        </label>
        <button disabled={!range} onClick={() => onRange(null)}>
          Reset zoom
        </button>
        <span class="muted">wheel: zoom · drag: pan · double-click: reset</span>
      </div>
      <ErrorBox error={meta.error || err} onClose={err ? () => setErr(null) : null} />
      {!runIds.length && <p class="muted">No runs chosen: select runs in an experiment's table and press Compare.</p>}
      {allKeys.length > 0 && (
        <div class="keys">
          {allKeys.map((k) => (
            <label>
              <input type="checkbox" checked={keys.includes(k)} onChange={() => flipKey(k)} /> {k}
            </label>
          ))}
        </div>
      )}
      <div class="charts">
        {runIds.length > 0 &&
          keys.map((k) => (
            <ChartPanel key={k} metric={k} series={series} axis={axis} ylog={ylog} smooth={smooth} range={range} onRange={onRange} />
          ))}
      </div>
      <div class="legend">
        {series.map((s) => (
          <a href={`/runs/${s.id}`} class="lg">
            <i style={{ background: s.color }} />
            {s.name}
          </a>
        ))}
      </div>
    </div>
  );
}

function ChartPanel({ metric, series, axis, ylog, smooth, range, onRange }) {
  const root = useRef(null);
  const chart = useRef(null);
  const cb = useRef(onRange);
  cb.current = onRange;
  const latest = useRef(series); // names may arrive while a query is in flight
  latest.current = series;
  const [st, setSt] = useState({ state: 'loading' });
  const data = useRef(null);

  // Layout effects: the chart exists and its query is on the wire before the
  // browser's first paint of the page (plain effects wait for a frame).
  useLayoutEffect(() => {
    chart.current = new LineChart(root.current, { onRange: (a, b) => cb.current(a, b), axis, ylog, smooth });
    return () => chart.current.destroy();
  }, []);
  const opts = useRef({ ylog, smooth, axis });
  useEffect(() => {
    const o = opts.current;
    if (o.ylog !== ylog || o.smooth !== smooth || o.axis !== axis) chart.current.setOptions({ ylog, smooth, axis });
    opts.current = { ylog, smooth, axis };
  }, [ylog, smooth, axis]);
  // names arrive later (runs/search): they only label the tooltip, no redraw
  useEffect(() => {
    chart.current.series.forEach((s, i) => {
      s.name = series[i]?.name;
    });
  }, [series]);

  const ids = series.map((s) => s.id).join(',');
  const rlo = range ? range[0] : null, rhi = range ? range[1] : null;
  useLayoutEffect(() => {
    const c = chart.current;
    const v = c.view;
    if (!(v === range || (v && range && v[0] === range[0] && v[1] === range[1]))) c.setView(range);
    const ctl = new AbortController();
    const width = c.plotWidth();
    const t0 = performance.now();
    // marks for profiling (tally-bench ui with TALLY_UI_BENCH_DEBUG=1); one of each kept
    for (const k of ['query', 'answer', 'drawn']) performance.clearMarks(`tally:${k}:${metric}`);
    performance.mark('tally:query:' + metric);
    setSt((s) => ({ ...s, state: 'loading' }));
    querySeries({
      runIds: ids.split(','),
      key: metric,
      axis,
      width,
      lo: range ? range[0] : undefined,
      hi: range ? range[1] : undefined,
      signal: ctl.signal,
    }).then(
      ({ series: got, bytes }) => {
        performance.mark('tally:answer:' + metric);
        data.current = got.map((g) => ({ x: g.x, y: g.y, nSource: g.nSource }));
        c.view = range;
        const names = latest.current;
        c.setSeries(data.current.map((d, i) => ({ ...d, name: names[i]?.name, color: names[i]?.color })));
        performance.mark('tally:drawn:' + metric);
        const points = got.reduce((a, g) => a + g.x.length, 0);
        const withData = got.filter((g) => g.x.length).length;
        const q = { key: metric, axis, lo: rlo, hi: rhi, width, bytes, points, series: withData, ms: performance.now() - t0, at: performance.now() };
        log.queries.push(q);
        if (log.queries.length > 500) log.queries.shift();
        setSt({ state: 'ready', ...q });
      },
      (e) => {
        if (e.name !== 'AbortError') setSt({ state: 'error', error: e });
      },
    );
    return () => ctl.abort();
  }, [metric, ids, axis, rlo, rhi]);

  return (
    <div
      class="chart"
      data-key={metric}
      data-state={st.state}
      data-lo={rlo ?? ''}
      data-hi={rhi ?? ''}
      data-width={st.width ?? ''}
      data-points={st.points ?? ''}
      data-series={st.series ?? ''}
      data-bytes={st.bytes ?? ''}
    >
      <div class="chart-title">
        <b>{metric}</b>
        <span class="muted">
          {st.state === 'loading' ? ' loading…' : st.state === 'ready' ? ` ${st.series} runs · ${st.points.toLocaleString()} points · W=${st.width}` : ''}
        </span>
      </div>
      {st.state === 'error' && <ErrorBox error={st.error} />}
      <div class="plot" ref={root} />
    </div>
  );
}
