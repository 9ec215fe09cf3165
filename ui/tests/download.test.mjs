// download.test.mjs — the run page's artifact download link end to end
// (/get-artifact, mlflow-rest-api.md §3.6). Needs the artifact download
// endpoint (another branch); CTest registers it (ui_e2e_download) once a
// server source serves "get-artifact".
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { call, launchBrowser, newPage, screenshot, seed, startServer } from './harness.mjs';

let srv, browser, data;

before(async () => {
  srv = await startServer();
  data = await seed(srv.url, { nRuns: 1, steps: 10 });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await srv?.stop();
});

test('run page: an artifact downloads with its bytes', async () => {
  const run = data.runs[0];
  const got = await call(srv.url, `mlflow/runs/get?run_id=${run.id}`);
  const rel = got.run.info.artifact_uri.replace(/^mlflow-artifacts:\/+/, '');
  const dir = join(srv.dataDir, 'artifacts', rel, 'plots');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'curve.csv'), 'step,loss\n0,2.3\n1,1.9\n');
  const page = await newPage(browser);
  await page.goto(srv.url + `/runs/${run.id}?path=plots`);
  await page.waitForSelector('tr[data-artifact="plots/curve.csv"] a');
  const [dl] = await Promise.all([page.waitForEvent('download'), page.click('tr[data-artifact="plots/curve.csv"] a')]);
  assert.equal(dl.suggestedFilename(), 'curve.csv');
  const stream = await dl.createReadStream();
  let text = '';
  for await (const chunk of stream) text += chunk;
  assert.equal(text, 'step,loss\n0,2.3\n1,1.9\n');
  await screenshot(page, 'artifact-download');
  await page.close();
});
