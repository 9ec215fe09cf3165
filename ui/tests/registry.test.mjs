// registry.test.mjs — the model registry pages end to end (mlflow-rest-api.md
// §3.7): the model list, a model's versions, a stage transition and setting
// and removing an alias from the UI, each checked against the API. Needs the
// registry endpoints (another branch); CTest registers it (ui_e2e_registry)
// once server/*regist*.c exists.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { call, launchBrowser, newPage, screenshot, seed, startServer } from './harness.mjs';

let srv, browser, data;

before(async () => {
  srv = await startServer();
  data = await seed(srv.url, { nRuns: 2, steps: 100 });
  browser = await launchBrowser();
  await call(srv.url, 'mlflow/registered-models/create', { name: 'digits', description: 'an MNIST classifier' });
  for (const r of data.runs) {
    const got = await call(srv.url, `mlflow/runs/get?run_id=${r.id}`);
    await call(srv.url, 'mlflow/model-versions/create', {
      name: 'digits',
      source: got.run.info.artifact_uri + '/model',
      run_id: r.id,
    });
  }
});

after(async () => {
  await browser?.close();
  await srv?.stop();
});

test('registry: models, versions, stage transition, aliases', async () => {
  const page = await newPage(browser);
  await page.goto(srv.url + '/');
  await page.click('header a:has-text("Models")');
  await page.waitForSelector('tr[data-model="digits"]');
  await page.click('tr[data-model="digits"] a');
  await page.waitForSelector('tr[data-version="2"]');
  assert.equal(await page.locator('tr[data-version]').count(), 2);
  // stage
  await page.selectOption('tr[data-version="1"] select', 'Staging');
  let v1;
  for (let i = 0; i < 50; i++) {
    v1 = (await call(srv.url, 'mlflow/model-versions/get?name=digits&version=1')).model_version;
    if (v1.current_stage === 'Staging') break;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(v1.current_stage, 'Staging');
  // alias
  await page.fill('tr[data-version="2"] input[name="alias"]', 'champion');
  await page.click('tr[data-version="2"] button:has-text("Set")');
  await page.waitForSelector('tr[data-version="2"] .chip:has-text("@champion")');
  const m = (await call(srv.url, 'mlflow/registered-models/get?name=digits')).registered_model;
  assert.deepEqual(m.aliases.map((a) => [a.alias, String(a.version)]), [['champion', '2']]);
  await screenshot(page, 'registry-model');
  await page.click('button[aria-label="remove alias champion"]');
  await page.waitForSelector('.chip', { state: 'detached' });
  // errors are shown: an alias on an unknown model's page
  await page.goto(srv.url + '/models/no-such-model');
  assert.match(await (await page.waitForSelector('.error')).textContent(), /RESOURCE_DOES_NOT_EXIST/);
  await page.goto(srv.url + '/models');
  await page.waitForSelector('tr[data-model="digits"]');
  await screenshot(page, 'registry-list');
  await page.close();
});
