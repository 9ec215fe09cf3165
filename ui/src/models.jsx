// models.jsx — the model registry (mlflow-rest-api.md §3.7): registered
// models with search and create; a model's versions with their stages and
// aliases, stage transitions, and setting or removing aliases.
import { useState } from 'preact/hooks';
import { api, quoteStr } from './api.js';
import { ErrorBox, Title, fmtTime, useLoad } from './common.jsx';
import { setQuery } from './router.js';

const STAGES = ['None', 'Staging', 'Production', 'Archived'];

export function Models({ query }) {
  const q = query.get('q') || '';
  const [text, setText] = useState(q);
  const [name, setName] = useState('');
  const [err, setErr] = useState(null);
  const [reload, setReload] = useState(0);
  const st = useLoad(
    (signal) =>
      api('mlflow/registered-models/search', {
        params: { filter: q ? `name ILIKE ${quoteStr('%' + q + '%')}` : '', max_results: 1000 },
        signal,
      }),
    [q, reload],
  );
  const models = (st.data && st.data.registered_models) || [];
  return (
    <div class="page">
      <Title>Models</Title>
      <div class="toolbar">
        <form onSubmit={(e) => (e.preventDefault(), setQuery({ q: text }))}>
          <input name="q" placeholder="Search models by name" value={text} onInput={(e) => setText(e.target.value)} />
          <button type="submit">Search</button>
        </form>
        <form
          class="right"
          onSubmit={async (e) => {
            e.preventDefault();
            setErr(null);
            try {
              await api('mlflow/registered-models/create', { method: 'POST', body: { name: name.trim() } });
              setName('');
              setReload((n) => n + 1);
            } catch (x) {
              setErr(x);
            }
          }}
        >
          <input name="new" placeholder="New model name" value={name} onInput={(e) => setName(e.target.value)} />
          <button type="submit">Create</button>
        </form>
      </div>
      <ErrorBox error={st.error || err} onClose={err ? () => setErr(null) : null} />
      <table class="grid">
        <thead>
          <tr><th>Name</th><th>Latest versions</th><th>Aliases</th><th>Last update</th></tr>
        </thead>
        <tbody>
          {models.map((m) => (
            <tr data-model={m.name}>
              <td><a href={`/models/${encodeURIComponent(m.name)}`}>{m.name}</a></td>
              <td>{(m.latest_versions || []).map((v) => `v${v.version} (${v.current_stage})`).join(', ')}</td>
              <td>{(m.aliases || []).map((a) => `@${a.alias} → v${a.version}`).join(', ')}</td>
              <td>{fmtTime(m.last_updated_timestamp)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {!st.loading && !st.error && models.length === 0 && <p class="muted">No registered models.</p>}
    </div>
  );
}

export function ModelPage({ name }) {
  const [reload, setReload] = useState(0);
  const [err, setErr] = useState(null);
  const model = useLoad((signal) => api('mlflow/registered-models/get', { params: { name }, signal }), [name, reload]);
  const versions = useLoad(
    (signal) =>
      api('mlflow/model-versions/search', {
        params: { filter: `name = ${quoteStr(name)}`, max_results: 1000, order_by: 'version_number DESC' },
        signal,
      }),
    [name, reload],
  );
  const m = model.data && model.data.registered_model;
  const vs = (versions.data && versions.data.model_versions) || [];
  const aliasesOf = (v) => ((m && m.aliases) || []).filter((a) => String(a.version) === String(v.version)).map((a) => a.alias);
  const act = async (fn) => {
    setErr(null);
    try {
      await fn();
      setReload((n) => n + 1);
    } catch (x) {
      setErr(x);
    }
  };
  return (
    <div class="page">
      <div class="crumbs"><a href="/models">Models</a> / {name}</div>
      <Title>{name}</Title>
      <ErrorBox error={model.error || versions.error || err} onClose={err ? () => setErr(null) : null} />
      {m && m.description && <p>{m.description}</p>}
      <table class="grid">
        <thead>
          <tr><th>Version</th><th>Stage</th><th>Aliases</th><th>Source run</th><th>Created</th><th>Set alias</th></tr>
        </thead>
        <tbody>
          {vs.map((v) => (
            <tr data-version={v.version}>
              <td>v{v.version}</td>
              <td>
                <select
                  value={v.current_stage}
                  aria-label="stage"
                  onChange={(e) =>
                    act(() =>
                      api('mlflow/model-versions/transition-stage', {
                        method: 'POST',
                        body: { name, version: String(v.version), stage: e.target.value, archive_existing_versions: false },
                      }),
                    )
                  }
                >
                  {STAGES.map((s) => <option value={s}>{s}</option>)}
                </select>
              </td>
              <td>
                {aliasesOf(v).map((a) => (
                  <span class="chip">
                    @{a}
                    <button
                      class="link"
                      aria-label={`remove alias ${a}`}
                      onClick={() => act(() => api('mlflow/registered-models/alias', { method: 'DELETE', body: { name, alias: a } }))}
                    >
                      ×
                    </button>
                  </span>
                ))}
              </td>
              <td>{v.run_id ? <a href={`/runs/${v.run_id}`}>{v.run_id.slice(0, 8)}</a> : ''}</td>
              <td>{fmtTime(v.creation_timestamp)}</td>
              <td>
                <form
                  onSubmit={(e) => {
                    e.preventDefault();
                    const alias = e.target.elements.alias.value.trim();
                    if (alias)
                      act(() => api('mlflow/registered-models/alias', { method: 'POST', body: { name, alias, version: String(v.version) } }));
                  }}
                >
                  <input name="alias" placeholder="alias" size="10" />
                  <button type="submit">Set</button>
                </form>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {!versions.loading && !versions.error && vs.length === 0 && <p class="muted">No versions.</p>}
    </div>
  );
}
