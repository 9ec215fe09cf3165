// workflow.test.js — the npm package `mlflow` (v2.0.7, MLflow's REST client for
// Node.js) driving a real `tally serve` through a complete workflow of its calls:
// experiments, runs, params, tags, metrics, history, search, artifacts listing,
// lifecycle. The client accepts only HTTP 200 and throws on anything else, so every
// call below also checks the status. Run by CTest (label integration) via
// `node --test`; the server binary comes from $TALLY_BIN_DIR (default ../../../build).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import net from 'node:net';
import mlflowModule from 'mlflow';

const MLflow = mlflowModule.default ?? mlflowModule;
const here = dirname(fileURLToPath(import.meta.url));
const binDir = process.env.TALLY_BIN_DIR ?? join(here, '..', '..', '..', 'build');

let server;
let dataDir;
let client;
let endpoint;

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

async function waitHealthy(url, ms) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    try {
      const r = await fetch(`${url}/health`);
      if (r.status === 200) return;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`server at ${url} did not become healthy`);
}

// The client logs every POST body with console.log; keep the test output readable.
const realLog = console.log;
function quiet(fn) {
  return async (...args) => {
    console.log = () => {};
    try {
      return await fn(...args);
    } finally {
      console.log = realLog;
    }
  };
}

before(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'tally-npm-'));
  const port = await freePort();
  endpoint = `http://127.0.0.1:${port}`;
  server = spawn(join(binDir, 'tally'), ['serve', '--port', String(port), '--data', dataDir,
                                         '--log-requests', '0'], { stdio: ['ignore', 'inherit', 'inherit'] });
  await waitHealthy(endpoint, 15000);
  client = new MLflow({ endpoint });
});

after(async () => {
  if (server && server.exitCode === null) {
    const exited = new Promise((r) => server.on('exit', (code) => r(code)));
    server.kill('SIGTERM');
    assert.equal(await exited, 0, 'tally serve exits 0 on SIGTERM');
  }
  rmSync(dataDir, { recursive: true, force: true });
});

test('a complete workflow of the npm client', quiet(async () => {
  const E = client.Experiments;
  const R = client.Runs;
  const M = client.Metrics;

  // Experiments: create, get, the removed-upstream list, rename, tag (through the
  // client's path without a slash), delete and restore.
  const { experiment_id } = await E.create({ name: 'npm-workflow' });
  assert.match(experiment_id, /^[0-9]+$/);
  const got = await E.get({ experiment_id });
  assert.equal(got.experiment.name, 'npm-workflow');
  assert.equal(got.experiment.lifecycle_stage, 'active');
  const listed = await E.list();
  assert.ok(listed.experiments.some((x) => x.experiment_id === experiment_id));
  await E.update({ experiment_id, new_name: 'npm-workflow-renamed' });
  await E.setExperimentTag({ experiment_id, key: 'team', value: 'vision' });
  const tagged = await E.get({ experiment_id });
  assert.equal(tagged.experiment.name, 'npm-workflow-renamed');
  assert.deepEqual(tagged.experiment.tags, [{ key: 'team', value: 'vision' }]);

  // Runs: create, params, tags, metrics one by one and in a batch.
  const start = Date.now();
  const created = await R.create({ experiment_id, user_id: 'ann', start_time: start,
                                   tags: [{ key: 'mlflow.runName', value: 'npm-run' }] });
  const runId = created.run.info.run_id;
  assert.match(runId, /^[0-9a-f]{32}$/);
  assert.equal(created.run.info.status, 'RUNNING');
  await R.logParameter({ run_id: runId, key: 'lr', value: '0.01' });
  await R.setTag({ run_id: runId, key: 'stage', value: 'dev' });
  await R.setTag({ run_id: runId, key: 'scratch', value: 'x' });
  await R.deleteTag({ run_id: runId, key: 'scratch' });
  for (let step = 0; step < 10; step++)
    await R.logMetric({ run_id: runId, key: 'loss', value: 1 / (step + 1), timestamp: start + step, step });
  await R.logBatch({
    run_id: runId,
    metrics: Array.from({ length: 100 }, (_, i) => ({ key: 'acc', value: i / 100, timestamp: start + i, step: i })),
    params: [{ key: 'batch_size', value: '32' }],
    tags: [{ key: 'framework', value: 'none' }],
  });

  // Read back: latest metrics, params, tags.
  const run = (await R.get({ run_id: runId })).run;
  const metric = (k) => run.data.metrics.find((m) => m.key === k);
  assert.equal(metric('loss').step, 9);
  assert.equal(metric('loss').value, 0.1);
  assert.equal(metric('acc').step, 99);
  const params = Object.fromEntries(run.data.params.map((p) => [p.key, p.value]));
  assert.deepEqual(params, { lr: '0.01', batch_size: '32' });
  const tags = Object.fromEntries(run.data.tags.map((t) => [t.key, t.value]));
  assert.equal(tags.stage, 'dev');
  assert.equal(tags.framework, 'none');
  assert.equal(tags['mlflow.runName'], 'npm-run');
  assert.equal(tags.scratch, undefined);

  // History without max_results: the client never sends one, so it must get everything.
  const hist = await M.getHistory({ run_id: runId, metric_key: 'acc' });
  assert.equal(hist.metrics.length, 100);
  assert.equal(hist.next_page_token, undefined);
  assert.deepEqual(hist.metrics.map((m) => m.step), Array.from({ length: 100 }, (_, i) => i));

  // Search with a filter and an order.
  const found = await R.search({ experiment_ids: [experiment_id], filter: "params.lr = '0.01'",
                                 order_by: ['metrics.loss ASC'], max_results: 10 });
  assert.equal(found.runs.length, 1);
  assert.equal(found.runs[0].info.run_id, runId);
  const none = await R.search({ experiment_ids: [experiment_id], filter: 'metrics.loss > 5' });
  assert.equal((none.runs ?? []).length, 0);

  // Artifacts listing of a run with no artifacts yet.
  const arts = await client.Artifacts.list({ run_id: runId });
  assert.ok(arts.root_uri.includes(runId));
  assert.equal((arts.files ?? []).length, 0);

  // Finish, delete, restore.
  await R.update({ run_id: runId, status: 'FINISHED', end_time: start + 1000 });
  assert.equal((await R.get({ run_id: runId })).run.info.status, 'FINISHED');
  await R.delete({ run_id: runId });
  assert.equal((await R.get({ run_id: runId })).run.info.lifecycle_stage, 'deleted');
  await R.restore({ run_id: runId });
  await E.delete({ experiment_id });
  assert.equal((await E.get({ experiment_id })).experiment.lifecycle_stage, 'deleted');
  assert.equal((await R.get({ run_id: runId })).run.info.lifecycle_stage, 'deleted');
  await E.restore({ experiment_id });
  assert.equal((await R.get({ run_id: runId })).run.info.lifecycle_stage, 'active');
}));

test('errors reach the npm client as MLflow error JSON', quiet(async () => {
  await assert.rejects(client.Runs.get({ run_id: '0123456789abcdef0123456789abcdef' }), (err) => {
    const body = JSON.parse(err.message.replace(/^Error: /, ''));
    assert.equal(body.status, 404);
    assert.equal(body.data.error_code, 'RESOURCE_DOES_NOT_EXIST');
    return true;
  });
  // NaN becomes JSON null in the client: a missing value, 400.
  const { experiment_id } = await client.Experiments.create({ name: 'npm-errors' });
  const { run } = await client.Runs.create({ experiment_id, start_time: Date.now() });
  await assert.rejects(client.Runs.logMetric({ run_id: run.info.run_id, key: 'x', value: NaN,
                                               timestamp: Date.now(), step: 0 }), (err) => {
    const body = JSON.parse(err.message.replace(/^Error: /, ''));
    assert.equal(body.status, 400);
    assert.equal(body.data.error_code, 'INVALID_PARAMETER_VALUE');
    return true;
  });
}));
