// experiments.jsx — the experiment list: search by name, create, rename,
// delete and restore (experiments/search, create, update, delete, restore).
import { useState } from 'preact/hooks';
import { api, quoteStr } from './api.js';
import { ErrorBox, Title, fmtTime, useLoad } from './common.jsx';
import { setQuery } from './router.js';

export function Experiments({ query }) {
  const q = query.get('q') || '';
  const view = query.get('view') || 'active';
  const [reload, setReload] = useState(0);
  const [err, setErr] = useState(null);
  const [newName, setNewName] = useState('');
  const [editing, setEditing] = useState(null);
  const [text, setText] = useState(q);

  const { data, error, loading } = useLoad(
    (signal) =>
      api('mlflow/experiments/search', {
        method: 'POST',
        signal,
        body: {
          max_results: 1000,
          filter: q ? `name ILIKE ${quoteStr('%' + q + '%')}` : '',
          view_type: view === 'deleted' ? 'DELETED_ONLY' : view === 'all' ? 'ALL' : 'ACTIVE_ONLY',
          order_by: ['last_update_time DESC'],
        },
      }),
    [q, view, reload],
  );
  const act = async (fn) => {
    setErr(null);
    try {
      await fn();
      setReload((n) => n + 1);
    } catch (e) {
      setErr(e);
    }
  };
  const exps = (data && data.experiments) || [];
  return (
    <div class="page">
      <Title>Experiments</Title>
      <div class="toolbar">
        <form
          onSubmit={(e) => {
            e.preventDefault();
            setQuery({ q: text });
          }}
        >
          <input
            name="q"
            placeholder="Search experiments by name"
            value={text}
            onInput={(e) => setText(e.target.value)}
          />
          <button type="submit">Search</button>
        </form>
        <select value={view} onChange={(e) => setQuery({ view: e.target.value === 'active' ? null : e.target.value })}>
          <option value="active">Active</option>
          <option value="deleted">Deleted</option>
          <option value="all">All</option>
        </select>
        <form
          class="right"
          onSubmit={(e) => {
            e.preventDefault();
            const name = newName.trim();
            if (!name) return;
            act(async () => {
              await api('mlflow/experiments/create', { method: 'POST', body: { name } });
              setNewName('');
            });
          }}
        >
          <input name="new" placeholder="New experiment name" value={newName} onInput={(e) => setNewName(e.target.value)} />
          <button type="submit">Create</button>
        </form>
      </div>
      <ErrorBox error={error || err} onClose={err ? () => setErr(null) : null} />
      <table class="grid">
        <thead>
          <tr>
            <th>Name</th>
            <th>ID</th>
            <th>Created</th>
            <th>Last update</th>
            <th>Stage</th>
            <th></th>
          </tr>
        </thead>
        <tbody>
          {exps.map((x) => (
            <tr key={x.experiment_id} data-experiment={x.experiment_id}>
              <td>
                {editing === x.experiment_id ? (
                  <form
                    onSubmit={(e) => {
                      e.preventDefault();
                      const nn = e.target.elements.name.value.trim();
                      act(async () => {
                        await api('mlflow/experiments/update', {
                          method: 'POST',
                          body: { experiment_id: x.experiment_id, new_name: nn },
                        });
                        setEditing(null);
                      });
                    }}
                  >
                    <input name="name" value={x.name} autoFocus />
                    <button type="submit">Save</button>
                    <button type="button" onClick={() => setEditing(null)}>
                      Cancel
                    </button>
                  </form>
                ) : (
                  <a href={`/experiments/${x.experiment_id}`}>{x.name}</a>
                )}
              </td>
              <td>{x.experiment_id}</td>
              <td>{fmtTime(x.creation_time)}</td>
              <td>{fmtTime(x.last_update_time)}</td>
              <td>{x.lifecycle_stage}</td>
              <td class="actions">
                <button class="link" onClick={() => setEditing(x.experiment_id)}>
                  Rename
                </button>
                {x.lifecycle_stage === 'deleted' ? (
                  <button
                    class="link"
                    onClick={() =>
                      act(() => api('mlflow/experiments/restore', { method: 'POST', body: { experiment_id: x.experiment_id } }))
                    }
                  >
                    Restore
                  </button>
                ) : (
                  <button
                    class="link"
                    onClick={() =>
                      confirm(`Delete experiment "${x.name}"? It can be restored later.`) &&
                      act(() => api('mlflow/experiments/delete', { method: 'POST', body: { experiment_id: x.experiment_id } }))
                    }
                  >
                    Delete
                  </button>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {!loading && !error && exps.length === 0 && <p class="muted">No experiments match.</p>}
      {loading && <p class="muted">Loading…</p>}
    </div>
  );
}
