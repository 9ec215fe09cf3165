// run.jsx — one run: its info, params, tags, metrics with sparklines (M4 at
// the sparkline's width from the native query API) and an artifacts browser
// (artifacts/list, downloads through /get-artifact).
import { useEffect, useRef } from 'preact/hooks';
import { api, querySeries } from './api.js';
import { ErrorBox, Title, fmtBytes, fmtNum, fmtTime, useLoad } from './common.jsx';
import { setQuery } from './router.js';

const SPARKLINES = 60; // one small query each: the first 60 keys get one

export function RunPage({ id, query }) {
  const run = useLoad((signal) => api('mlflow/runs/get', { params: { run_id: id }, signal }), [id]);
  const r = run.data && run.data.run;
  const sums = useLoad(
    (signal) => api('tally/run-summaries', { method: 'POST', signal, body: { run_ids: [id] } }),
    [id],
  );
  const sumOf = new Map(((sums.data && sums.data.runs[0] && sums.data.runs[0].metrics) || []).map((s) => [s.key, s]));
  const name = r ? r.info.run_name || id : id;
  const tags = r ? (r.data.tags || []).filter((t) => !t.key.startsWith('mlflow.') || t.key === 'mlflow.note.content') : [];
  const metrics = r ? [...(r.data.metrics || [])].sort((a, b) => (a.key < b.key ? -1 : 1)) : [];
  return (
    <div class="page">
      <div class="crumbs">
        <a href="/">Experiments</a>
        {r && (
          <>
            {' / '}
            <a href={`/experiments/${r.info.experiment_id}`}>experiment {r.info.experiment_id}</a>
          </>
        )}{' '}
        / run
      </div>
      <Title>{name}</Title>
      <ErrorBox error={run.error || sums.error} />
      {r && (
        <>
          <table class="kv">
            <tbody>
              <tr><th>Run ID</th><td><code>{r.info.run_id}</code></td></tr>
              <tr><th>Status</th><td>{r.info.status}{r.info.lifecycle_stage === 'deleted' ? ' (deleted)' : ''}</td></tr>
              <tr><th>Started</th><td>{fmtTime(r.info.start_time)}</td></tr>
              <tr><th>Ended</th><td>{fmtTime(r.info.end_time)}</td></tr>
              <tr><th>User</th><td>{r.info.user_id}</td></tr>
              <tr><th>Artifacts</th><td><code>{r.info.artifact_uri}</code></td></tr>
            </tbody>
          </table>
          <div class="cols2">
            <section>
              <h2>Parameters ({(r.data.params || []).length})</h2>
              <table class="grid small">
                <tbody>
                  {(r.data.params || []).map((p) => (
                    <tr><th>{p.key}</th><td>{p.value}</td></tr>
                  ))}
                </tbody>
              </table>
              <h2>Tags ({tags.length})</h2>
              <table class="grid small">
                <tbody>
                  {tags.map((t) => (
                    <tr><th>{t.key}</th><td>{t.value}</td></tr>
                  ))}
                </tbody>
              </table>
            </section>
            <section>
              <h2>Metrics ({metrics.length})</h2>
              <table class="grid small metrics">
                <thead>
                  <tr><th>Key</th><th>Latest</th><th>Min</th><th>Max</th><th>Points</th><th></th></tr>
                </thead>
                <tbody>
                  {metrics.map((m, i) => {
                    const s = sumOf.get(m.key);
                    return (
                      <tr data-metric={m.key}>
                        <th>
                          <a href={`/compare?exp=${r.info.experiment_id}&runs=${id}&keys=${encodeURIComponent(m.key)}`}>{m.key}</a>
                        </th>
                        <td>{fmtNum(m.value)}</td>
                        <td>{s ? fmtNum(s.min) : ''}</td>
                        <td>{s ? fmtNum(s.max) : ''}</td>
                        <td>{s ? s.count.toLocaleString() : ''}</td>
                        <td>{i < SPARKLINES ? <Sparkline run={id} metric={m.key} /> : null}</td>
                      </tr>
                    );
                  })}
                </tbody>
              </table>
            </section>
          </div>
          <Artifacts run={id} path={query.get('path') || ''} />
        </>
      )}
      {run.loading && <p class="muted">Loading…</p>}
    </div>
  );
}

function Sparkline({ run, metric }) {
  const ref = useRef(null);
  const W = 120, H = 26;
  const st = useLoad((signal) => querySeries({ runIds: [run], key: metric, axis: 'step', width: W, signal }), [run, metric]);
  useEffect(() => {
    const c = ref.current;
    if (!c || !st.data) return;
    const dpr = window.devicePixelRatio || 1;
    c.width = W * dpr;
    c.height = H * dpr;
    const ctx = c.getContext('2d');
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    const s = st.data.series[0];
    if (!s || !s.x.length) return;
    let lo = Infinity, hi = -Infinity;
    for (const v of s.y) if (Number.isFinite(v)) (lo = Math.min(lo, v)), (hi = Math.max(hi, v));
    const x0 = s.x[0], x1 = s.x[s.x.length - 1] || x0 + 1;
    ctx.strokeStyle = '#2563eb';
    ctx.beginPath();
    for (let i = 0; i < s.x.length; i++) {
      const px = x1 > x0 ? ((s.x[i] - x0) / (x1 - x0)) * (W - 2) + 1 : W / 2;
      const py = hi > lo ? (1 - (s.y[i] - lo) / (hi - lo)) * (H - 4) + 2 : H / 2;
      if (i) ctx.lineTo(px, py);
      else ctx.moveTo(px, py);
    }
    ctx.stroke();
  }, [st.data]);
  if (st.error) return <span class="error-inline" title={st.error.message}>{st.error.code}</span>;
  return <canvas ref={ref} class="spark" style={{ width: W + 'px', height: H + 'px' }} />;
}

function Artifacts({ run, path }) {
  const st = useLoad((signal) => api('mlflow/artifacts/list', { params: { run_id: run, path }, signal }), [run, path]);
  const files = (st.data && st.data.files) || [];
  const parts = path ? path.split('/') : [];
  return (
    <section class="artifacts">
      <h2>Artifacts</h2>
      <div class="crumbs">
        <button class="link" onClick={() => setQuery({ path: null })}>root</button>
        {parts.map((p, i) => (
          <>
            {' / '}
            <button class="link" onClick={() => setQuery({ path: parts.slice(0, i + 1).join('/') })}>{p}</button>
          </>
        ))}
      </div>
      <ErrorBox error={st.error} />
      <table class="grid small">
        <tbody>
          {files.map((f) => {
            const base = f.path.split('/').pop();
            return (
              <tr data-artifact={f.path}>
                <td>
                  {f.is_dir ? (
                    <button class="link" onClick={() => setQuery({ path: f.path })}>📁 {base}/</button>
                  ) : (
                    <a href={`/get-artifact?path=${encodeURIComponent(f.path)}&run_uuid=${encodeURIComponent(run)}`} download={base}>
                      {base}
                    </a>
                  )}
                </td>
                <td class="num">{f.is_dir ? '' : fmtBytes(Number(f.file_size))}</td>
              </tr>
            );
          })}
        </tbody>
      </table>
      {!st.loading && !st.error && files.length === 0 && <p class="muted">No artifacts{path ? ' here' : ''}.</p>}
    </section>
  );
}
