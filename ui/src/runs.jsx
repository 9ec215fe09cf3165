// runs.jsx — the runs table of one experiment.
//
// Sorting, filtering and paging happen on the server (runs/search with
// MLflow's filter and order_by syntax, PAGE runs per request); the browser
// renders only the rows in view (virtualized), so a page of 1000 costs the
// same to draw as a page of 30. Columns are chosen by the user: params, tags
// and, per metric, latest / min / max (min and max come from
// tally/run-summaries for the page's runs, O(1) per run and key on the
// server). The whole view (filter, order, columns, page) lives in the URL.
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { api, quoteKey } from './api.js';
import { ErrorBox, Title, fmtNum, fmtTime, useLoad } from './common.jsx';
import { navigate, setQuery } from './router.js';

const PAGE = 500; // runs per page (URL parameter n overrides, 1..5000)
const ROW_H = 28;
// experiment/filter/order/view -> page tokens of the earlier pages, kept in
// sessionStorage so that Previous still works after a reload of page N
const tokenStack = {
  get: (k) => JSON.parse(sessionStorage.getItem('tally.pages:' + k) || 'null'),
  set: (k, v) => sessionStorage.setItem('tally.pages:' + k, JSON.stringify(v)),
  delete: (k) => sessionStorage.removeItem('tally.pages:' + k),
};

// A column: {kind: 'm'|'p'|'t', key, agg: 'latest'|'min'|'max'} encoded "m:loss:min".
const enc = (c) => (c.kind === 'm' ? `m:${c.agg}:${c.key}` : `${c.kind}::${c.key}`);
function dec(s) {
  const i = s.indexOf(':'), j = s.indexOf(':', i + 1);
  if (i < 0 || j < 0) return null;
  const kind = s.slice(0, i), agg = s.slice(i + 1, j) || 'latest', key = s.slice(j + 1);
  if (!['m', 'p', 't'].includes(kind) || !key) return null;
  return { kind, agg: ['latest', 'min', 'max'].includes(agg) ? agg : 'latest', key };
}
const entityOf = { m: 'metrics', p: 'params', t: 'tags' };

function colLabel(c) {
  if (c.kind === 'm') return c.agg === 'latest' ? c.key : `${c.key} (${c.agg})`;
  return c.key;
}

export function Runs({ id, query }) {
  const filter = query.get('filter') || '';
  const order = query.get('order') || 'attributes.start_time DESC';
  const view = query.get('view') || 'active';
  const pt = query.get('pt') || '';
  const pageSize = Math.min(5000, Math.max(1, Math.floor(Number(query.get('n'))) || PAGE));
  const colsParam = query.get('cols');
  const [text, setText] = useState(filter);
  const [selected, setSelected] = useState(new Set());
  const [scroll, setScroll] = useState(0);
  const [viewH, setViewH] = useState(600);
  const body = useRef(null);
  useEffect(() => setText(filter), [filter]);

  const exp = useLoad((signal) => api('mlflow/experiments/get', { params: { experiment_id: id }, signal }), [id]);
  const runsSt = useLoad(
    (signal) =>
      api('mlflow/runs/search', {
        method: 'POST',
        signal,
        body: {
          experiment_ids: [id],
          filter,
          order_by: [order],
          max_results: pageSize,
          page_token: pt || undefined,
          run_view_type: view === 'deleted' ? 'DELETED_ONLY' : view === 'all' ? 'ALL' : 'ACTIVE_ONLY',
        },
      }),
    [id, filter, order, view, pt, pageSize],
  );
  const runs = useMemo(() => (runsSt.data && runsSt.data.runs) || [], [runsSt.data]);

  // Keys seen on this page, for the column chooser and the default columns.
  const keys = useMemo(() => {
    const m = new Set(), p = new Set(), t = new Set();
    for (const r of runs) {
      for (const x of r.data.metrics || []) m.add(x.key);
      for (const x of r.data.params || []) p.add(x.key);
      for (const x of r.data.tags || []) if (!x.key.startsWith('mlflow.')) t.add(x.key);
    }
    return { m: [...m].sort(), p: [...p].sort(), t: [...t].sort() };
  }, [runs]);
  const cols = useMemo(() => {
    if (colsParam !== null) return colsParam.split(',').filter(Boolean).map(dec).filter(Boolean);
    return [
      ...keys.m.slice(0, 3).map((key) => ({ kind: 'm', key, agg: 'latest' })),
      ...keys.p.slice(0, 4).map((key) => ({ kind: 'p', key, agg: 'latest' })),
    ];
  }, [colsParam, keys]);
  const setCols = (cs) => setQuery({ cols: cs.map(enc).join(',') });

  // min/max columns: summaries of the page's runs.
  const aggKeys = [...new Set(cols.filter((c) => c.kind === 'm' && c.agg !== 'latest').map((c) => c.key))];
  const sums = useLoad(
    (signal) =>
      aggKeys.length && runs.length
        ? api('tally/run-summaries', {
            method: 'POST',
            signal,
            body: { run_ids: runs.map((r) => r.info.run_id), keys: aggKeys },
          })
        : Promise.resolve({ runs: [] }),
    [runs, aggKeys.join('\u0000')],
  );
  const sumOf = useMemo(() => {
    const m = new Map();
    for (const r of (sums.data && sums.data.runs) || [])
      for (const s of r.metrics) m.set(r.run_id + '\u0000' + s.key, s);
    return m;
  }, [sums.data]);

  useEffect(() => {
    const el = body.current;
    if (!el) return;
    const ro = new ResizeObserver(() => setViewH(el.clientHeight));
    ro.observe(el);
    return () => ro.disconnect();
  }, [body.current]);
  useEffect(() => {
    if (body.current) body.current.scrollTop = 0;
    setScroll(0);
  }, [runsSt.data]);

  const sortBy = (field) => {
    const [cur, dir] = [order.replace(/\s+(ASC|DESC)$/i, ''), /\sASC$/i.test(order) ? 'ASC' : 'DESC'];
    const next = cur === field && dir === 'DESC' ? 'ASC' : 'DESC';
    const k = `${id}|${filter}|${order}|${view}`;
    tokenStack.delete(k);
    setQuery({ order: `${field} ${next}`, pt: null });
  };
  const sortState = (field) => {
    const cur = order.replace(/\s+(ASC|DESC)$/i, '');
    if (cur !== field) return '';
    return /\sASC$/i.test(order) ? ' ▲' : ' ▼';
  };
  const stackKey = `${id}|${filter}|${order}|${view}`;
  const stack = pt ? tokenStack.get(stackKey) || [] : []; // page 1 has no earlier pages
  const pageNo = stack.length + 1;

  const valueOf = (r, c) => {
    if (c.kind === 'p') return (r.data.params || []).find((x) => x.key === c.key)?.value ?? '';
    if (c.kind === 't') return (r.data.tags || []).find((x) => x.key === c.key)?.value ?? '';
    if (c.agg === 'latest') return fmtNum((r.data.metrics || []).find((x) => x.key === c.key)?.value);
    const s = sumOf.get(r.info.run_id + '\u0000' + c.key);
    return s ? fmtNum(s[c.agg]) : '';
  };
  const runName = (r) => r.info.run_name || (r.data.tags || []).find((t) => t.key === 'mlflow.runName')?.value || r.info.run_id.slice(0, 8);

  const gridCols = `34px 220px 90px 150px ${cols.map(() => '130px').join(' ')}`;
  const first = Math.max(0, Math.floor(scroll / ROW_H) - 10);
  const last = Math.min(runs.length, Math.ceil((scroll + viewH) / ROW_H) + 10);
  const visible = runs.slice(first, last);

  const toggle = (rid) => {
    const s = new Set(selected);
    if (s.has(rid)) s.delete(rid);
    else s.add(rid);
    setSelected(s);
  };
  // The chosen runs' metric keys go into the URL, so the charts start at once.
  const compare = (ids) => {
    const want = new Set(ids), ks = new Set();
    for (const r of runs) if (want.has(r.info.run_id)) for (const m of r.data.metrics || []) ks.add(m.key);
    const k = [...ks].sort().slice(0, 6).map(encodeURIComponent).join(',');
    navigate(`/compare?exp=${encodeURIComponent(id)}&runs=${ids.join(',')}${k ? '&keys=' + k : ''}`);
  };
  const name = exp.data && exp.data.experiment ? exp.data.experiment.name : `Experiment ${id}`;

  return (
    <div class="page runs-page">
      <div class="crumbs">
        <a href="/">Experiments</a> / {name}
      </div>
      <Title>{name}</Title>
      <div class="toolbar">
        <form
          class="grow"
          onSubmit={(e) => {
            e.preventDefault();
            tokenStack.delete(stackKey);
            setQuery({ filter: text.trim(), pt: null }, { replace: false });
          }}
        >
          <input
            class="filter"
            name="filter"
            placeholder={"Filter: metrics.loss < 0.5 and params.opt = 'adam'"}
            value={text}
            onInput={(e) => setText(e.target.value)}
          />
          <button type="submit">Filter</button>
        </form>
        <select value={view} onChange={(e) => setQuery({ view: e.target.value === 'active' ? null : e.target.value, pt: null })}>
          <option value="active">Active runs</option>
          <option value="deleted">Deleted runs</option>
          <option value="all">All runs</option>
        </select>
        <ColumnChooser keys={keys} cols={cols} setCols={setCols} />
        <button disabled={selected.size === 0} onClick={() => compare([...selected].slice(0, 1000))}>
          Compare selected ({selected.size})
        </button>
        <button disabled={runs.length === 0} onClick={() => compare(runs.slice(0, 100).map((r) => r.info.run_id))} data-test="compare-top">
          Compare first {Math.min(100, runs.length)}
        </button>
      </div>
      <ErrorBox error={exp.error || runsSt.error || sums.error} />
      <div class="table" role="table" aria-rowcount={runs.length}>
        <div class="tr th" style={{ gridTemplateColumns: gridCols }} role="row">
          <div>
            <input
              type="checkbox"
              aria-label="select all"
              checked={runs.length > 0 && selected.size === runs.length}
              onChange={(e) => setSelected(e.target.checked ? new Set(runs.map((r) => r.info.run_id)) : new Set())}
            />
          </div>
          <div class="sortable" onClick={() => sortBy('attributes.run_name')}>Run{sortState('attributes.run_name')}</div>
          <div class="sortable" onClick={() => sortBy('attributes.status')}>Status{sortState('attributes.status')}</div>
          <div class="sortable" onClick={() => sortBy('attributes.start_time')}>Started{sortState('attributes.start_time')}</div>
          {cols.map((c) => {
            const field = `${entityOf[c.kind]}.${quoteKey(c.key)}`;
            const sortable = c.kind !== 'm' || c.agg === 'latest';
            return (
              <div
                class={sortable ? 'sortable' : ''}
                title={sortable ? `Sort by ${field}` : 'Sorting on the server is by the latest value (MLflow syntax)'}
                onClick={sortable ? () => sortBy(field) : undefined}
                data-col={enc(c)}
              >
                <span class={'kind k' + c.kind}>{c.kind}</span> {colLabel(c)}
                {sortable ? sortState(field) : ''}
              </div>
            );
          })}
        </div>
        <div class="tbody" ref={body} onScroll={(e) => setScroll(e.currentTarget.scrollTop)}>
          <div style={{ height: runs.length * ROW_H + 'px', position: 'relative' }}>
            {visible.map((r, k) => {
              const i = first + k;
              return (
                <div
                  class={'tr' + (selected.has(r.info.run_id) ? ' sel' : '')}
                  role="row"
                  data-run={r.info.run_id}
                  style={{ gridTemplateColumns: gridCols, top: i * ROW_H + 'px' }}
                  key={r.info.run_id}
                >
                  <div>
                    <input type="checkbox" aria-label="select" checked={selected.has(r.info.run_id)} onChange={() => toggle(r.info.run_id)} />
                  </div>
                  <div class="name">
                    <a href={`/runs/${r.info.run_id}`}>{runName(r)}</a>
                  </div>
                  <div>{r.info.status}</div>
                  <div>{fmtTime(r.info.start_time)}</div>
                  {cols.map((c) => (
                    <div class="num" data-col={enc(c)}>{valueOf(r, c)}</div>
                  ))}
                </div>
              );
            })}
          </div>
        </div>
      </div>
      <div class="pager">
        <button
          disabled={pageNo === 1}
          onClick={() => {
            const s = [...stack];
            const prev = s.pop();
            tokenStack.set(stackKey, s);
            setQuery({ pt: prev || null }, { replace: false });
          }}
        >
          ← Previous
        </button>
        <span class="muted">
          page {pageNo} · {runs.length} runs{runsSt.loading ? ' · loading…' : ''}
        </span>
        <button
          disabled={!runsSt.data || !runsSt.data.next_page_token}
          onClick={() => {
            tokenStack.set(stackKey, [...stack, pt]);
            setQuery({ pt: runsSt.data.next_page_token }, { replace: false });
          }}
        >
          Next →
        </button>
      </div>
    </div>
  );
}

function ColumnChooser({ keys, cols, setCols }) {
  const has = (c) => cols.some((x) => enc(x) === enc(c));
  const flip = (c) => setCols(has(c) ? cols.filter((x) => enc(x) !== enc(c)) : [...cols, c]);
  return (
    <details class="chooser">
      <summary>Columns</summary>
      <div class="menu">
        <b>Metrics</b>
        {keys.m.map((key) => (
          <div class="row">
            <span>{key}</span>
            {['latest', 'min', 'max'].map((agg) => (
              <label>
                <input type="checkbox" checked={has({ kind: 'm', key, agg })} onChange={() => flip({ kind: 'm', key, agg })} />
                {agg}
              </label>
            ))}
          </div>
        ))}
        <b>Params</b>
        {keys.p.map((key) => (
          <label class="row">
            <input type="checkbox" checked={has({ kind: 'p', key, agg: 'latest' })} onChange={() => flip({ kind: 'p', key, agg: 'latest' })} />
            {key}
          </label>
        ))}
        <b>Tags</b>
        {keys.t.map((key) => (
          <label class="row">
            <input type="checkbox" checked={has({ kind: 't', key, agg: 'latest' })} onChange={() => flip({ kind: 't', key, agg: 'latest' })} />
            {key}
          </label>
        ))}
      </div>
    </details>
  );
}
