// ui.test.mjs — end-to-end tests of the web UI: a real `tally serve` seeded
// with 24 runs x 20000 steps, driven by headless Chromium (playwright-core).
// Each test saves a screenshot into $TALLY_UI_SHOTS (the build tree).
// Run: `node --test` here (CTest: ui_e2e, label integration).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { call, launchBrowser, newPage, screenshot, seed, startServer } from './harness.mjs';

const STEPS = 20000; // > 4 x the chart width, so zooming raises the resolution
let srv, browser, data;

before(async () => {
  srv = await startServer();
  data = await seed(srv.url, { nRuns: 24, steps: STEPS });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await srv?.stop();
});

const rowsIn = (page) =>
  page.$$eval('.tbody .tr', (els) =>
    els
      .map((e) => ({ top: parseFloat(e.style.top), id: e.dataset.run, name: e.querySelector('.name').textContent,
        cells: Object.fromEntries([...e.querySelectorAll('[data-col]')].map((c) => [c.dataset.col, c.textContent])) }))
      .sort((a, b) => a.top - b.top),
  );

test('static files: index for app paths, hashed assets compressed and cached, API 404s stay JSON', async () => {
  const r = await fetch(srv.url + '/experiments/1?x=1', { headers: { 'Accept-Encoding': 'br, gzip' } });
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type'), /^text\/html/);
  assert.equal(r.headers.get('cache-control'), 'no-cache');
  const html = await r.text();
  const js = html.match(/src="(\/assets\/main-[A-Z0-9]+\.js)"/)[1];
  const etag = r.headers.get('etag');
  const again = await fetch(srv.url + '/', { headers: { 'If-None-Match': etag } });
  assert.equal(again.status, 304);
  // Node's fetch decodes gzip and brotli itself; raw sizes come from a HEAD-less GET with identity
  const plain = await fetch(srv.url + js, { headers: { 'Accept-Encoding': 'identity' } });
  assert.equal(plain.status, 200);
  assert.equal(plain.headers.get('content-encoding'), null);
  assert.match(plain.headers.get('cache-control'), /immutable/);
  const body = await plain.arrayBuffer();
  const br = await fetch(srv.url + js, { headers: { 'Accept-Encoding': 'gzip;q=0.5, br' } });
  assert.equal(br.headers.get('content-encoding'), 'br');
  assert.equal((await br.arrayBuffer()).byteLength, body.byteLength); // decoded by fetch: same bytes
  const gz = await fetch(srv.url + js, { headers: { 'Accept-Encoding': 'gzip, br;q=0' } });
  assert.equal(gz.headers.get('content-encoding'), 'gzip');
  for (const p of ['/nope', '/assets/none.js', '/api/2.0/nope']) {
    const x = await fetch(srv.url + p);
    assert.equal(x.status, 404, p);
    assert.equal((await x.json()).error_code, 'ENDPOINT_NOT_FOUND');
  }
});

test('navigation: experiments -> runs table -> run page -> back, and a deep link reload', async () => {
  const page = await newPage(browser);
  await page.goto(srv.url + '/');
  await page.getByRole('link', { name: 'mnist' }).click();
  await page.waitForSelector('.tbody .tr');
  assert.equal((await rowsIn(page)).length, 24);
  await page.getByRole('link', { name: 'run-05' }).click();
  await page.waitForSelector('tr[data-metric="loss"] canvas.spark');
  const url = page.url();
  assert.match(url, new RegExp('/runs/' + data.runs[5].id + '$'));
  const params = await page.$$eval('section table.grid.small tr', (trs) => trs.map((t) => t.textContent));
  assert.ok(params.includes('lr' + data.runs[5].lr), params.join('|'));
  assert.ok(params.includes('optadam'));
  const loss = await page.$eval('tr[data-metric="loss"]', (t) => [...t.querySelectorAll('td')].map((d) => d.textContent));
  assert.equal(loss[3].replace(/\D/g, ''), String(STEPS)); // points, from run-summaries
  await screenshot(page, 'run-page');
  await page.goBack();
  await page.waitForSelector('.tbody .tr');
  // a reload of a deep link lands on the same page
  await page.goto(srv.url + `/runs/${data.runs[5].id}`);
  await page.waitForSelector('h1:has-text("run-05")');
  assert.deepEqual(page.consoleErrors, []);
  await screenshot(page, 'navigation');
  await page.close();
});

test('runs table: server-side sorting by a metric column and filtering with MLflow syntax', async () => {
  const page = await newPage(browser);
  await page.goto(srv.url + `/experiments/${data.experimentId}`);
  await page.waitForSelector('.tbody .tr');
  await page.click('.th [data-col="m:latest:loss"]');
  await page.waitForURL(/order=metrics.loss\+DESC/);
  await page.waitForFunction(() => document.querySelector('.tbody .tr') && !document.querySelector('.pager').textContent.includes('loading'));
  let rows = await rowsIn(page);
  const expected = [...data.runs].sort((a, b) => b.lossLatest - a.lossLatest).map((r) => r.name);
  assert.deepEqual(rows.map((r) => r.name), expected);
  await page.click('.th [data-col="m:latest:loss"]'); // again: ascending
  await page.waitForURL(/order=metrics.loss\+ASC/);
  await page.waitForFunction((first) => document.querySelector('.tbody .tr .name')?.textContent === first, expected[expected.length - 1]);
  rows = await rowsIn(page);
  assert.deepEqual(rows.map((r) => r.name), [...expected].reverse());
  // filter
  await page.fill('input.filter', "params.opt = 'adam' and metrics.loss < 0.25");
  await page.press('input.filter', 'Enter');
  await page.waitForURL(/filter=/);
  const want = data.runs.filter((r) => r.opt === 'adam' && r.lossLatest < 0.25).map((r) => r.name).sort();
  await page.waitForFunction((n) => document.querySelectorAll('.tbody .tr').length === n, want.length);
  rows = await rowsIn(page);
  assert.deepEqual(rows.map((r) => r.name).sort(), want);
  assert.ok(want.length > 0 && want.length < 24);
  // min/max columns come from run-summaries
  await page.click('details.chooser summary');
  await page.click('details.chooser .row:has-text("loss") label:has-text("min") input');
  await page.waitForSelector('.tbody [data-col="m:min:loss"]:not(:empty)');
  await screenshot(page, 'runs-filter-sort');
  // a bad filter: the server's error is shown
  await page.fill('input.filter', 'metrics.loss LIKE 3');
  await page.press('input.filter', 'Enter');
  const err = await page.waitForSelector('.error');
  assert.match(await err.textContent(), /INVALID_PARAMETER_VALUE.*LIKE/);
  await screenshot(page, 'runs-error');
  await page.close();
});

// How many pixels of the canvas are close to each of the given colours.
test('runs table: pages of n runs with next and previous (server page tokens)', async () => {
  const page = await newPage(browser);
  await page.goto(srv.url + `/experiments/${data.experimentId}?n=10&order=attributes.run_name+ASC`);
  const names = async () => (await rowsIn(page)).map((r) => r.name);
  await page.waitForFunction(() => document.querySelectorAll('.tbody .tr').length === 10);
  const all = data.runs.map((r) => r.name).sort();
  assert.deepEqual(await names(), all.slice(0, 10));
  await page.click('button:has-text("Next")');
  await page.waitForFunction((n) => document.querySelector('.tbody .tr .name')?.textContent === n, all[10]);
  assert.deepEqual(await names(), all.slice(10, 20));
  await page.click('button:has-text("Next")');
  await page.waitForFunction(() => document.querySelectorAll('.tbody .tr').length === 4);
  assert.deepEqual(await names(), all.slice(20));
  assert.ok(await page.isDisabled('button:has-text("Next")'));
  assert.match(await page.textContent('.pager span'), /page 3 · 4 runs/);
  await page.reload(); // the URL holds the page; the earlier pages' tokens survive a reload
  await page.waitForFunction(() => document.querySelectorAll('.tbody .tr').length === 4);
  assert.match(await page.textContent('.pager span'), /page 3 · 4 runs/);
  await page.click('button:has-text("Previous")');
  await page.waitForFunction((n) => document.querySelector('.tbody .tr .name')?.textContent === n, all[10]);
  await page.click('button:has-text("Previous")');
  await page.waitForFunction((n) => document.querySelector('.tbody .tr .name')?.textContent === n, all[0]);
  assert.ok(await page.isDisabled('button:has-text("Previous")'));
  await screenshot(page, 'runs-pages');
  await page.close();
});

async function pixelsNear(page, selector, colors) {
  return page.$eval(
    selector,
    (c, colors) => {
      const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      const want = colors.map((h) => [1, 3, 5].map((k) => parseInt(h.slice(k, k + 2), 16)));
      const n = want.map(() => 0);
      for (let i = 0; i < d.length; i += 4)
        want.forEach(([r, g, b], k) => {
          if (Math.abs(d[i] - r) + Math.abs(d[i + 1] - g) + Math.abs(d[i + 2] - b) < 60) n[k]++;
        });
      return n;
    },
    colors,
  );
}

test('compare: a chart draws exactly the chosen runs; wheel zoom re-queries at higher resolution; the URL restores the view', async () => {
  const page = await newPage(browser);
  const chosen = data.runs.slice(0, 3);
  await page.goto(srv.url + `/experiments/${data.experimentId}`);
  await page.waitForSelector('.tbody .tr');
  for (const r of chosen) await page.check(`.tbody .tr[data-run="${r.id}"] input`);
  await page.click('button:has-text("Compare selected (3)")');
  await page.waitForSelector('.chart[data-key="loss"][data-state="ready"]');
  const info = await page.$eval('.chart[data-key="loss"]', (e) => ({ ...e.dataset }));
  assert.equal(info.series, '3');
  const legend = await page.$$eval('.legend .lg', (a) => a.map((x) => x.textContent));
  assert.deepEqual(legend, chosen.map((r) => r.name));
  // the three series' colours are on the canvas, the fourth palette colour is not
  const [blue, red, green, purple] = await pixelsNear(page, '.chart[data-key="loss"] canvas', ['#2563eb', '#dc2626', '#16a34a', '#9333ea']);
  assert.ok(blue > 100 && red > 100 && green > 100, JSON.stringify([blue, red, green]));
  assert.equal(purple, 0);
  const q0 = await page.evaluate(() => window.__tally.queries.filter((q) => q.key === 'loss').at(-1));
  assert.equal(q0.lo, null);
  // hover lists each run's value
  const box = await page.$eval('.chart[data-key="loss"] canvas', (c) => { const r = c.getBoundingClientRect(); return { x: r.x, y: r.y, w: r.width, h: r.height }; });
  await page.mouse.move(box.x + box.w / 2, box.y + box.h / 2);
  const tip = await page.waitForSelector('.chart[data-key="loss"] .tip:not([hidden])');
  for (const r of chosen) assert.ok((await tip.textContent()).includes(r.name));
  await screenshot(page, 'compare-hover');
  // wheel: zoom in 20x around the middle; both charts re-query the new range
  await page.mouse.wheel(0, -100 * Math.log2(20));
  await page.waitForFunction(() => {
    const e = document.querySelector('.chart[data-key="loss"]');
    return e.dataset.state === 'ready' && e.dataset.lo !== '';
  });
  await page.waitForSelector('.chart[data-key="acc"][data-state="ready"][data-lo]:not([data-lo=""])');
  const q1 = await page.evaluate(() => window.__tally.queries.filter((q) => q.key === 'loss').at(-1));
  assert.ok(q1.hi - q1.lo < STEPS / 10, JSON.stringify(q1));
  // resolution: points per step went up (the whole range had fewer points per step)
  assert.ok(q1.points / (q1.hi - q1.lo) > (q0.points / STEPS) * 5, JSON.stringify([q0, q1]));
  const accQ = await page.evaluate(() => window.__tally.queries.filter((q) => q.key === 'acc').at(-1));
  assert.deepEqual([accQ.lo, accQ.hi], [q1.lo, q1.hi]); // zoom is synced
  const u = new URL(page.url());
  assert.equal(Number(u.searchParams.get('lo')), q1.lo);
  await screenshot(page, 'compare-zoomed');
  // the URL restores the view: axis, scale, smoothing, range
  await page.selectOption('select[name="y"]', 'log');
  await page.waitForURL(/y=log/);
  const saved = page.url() + '&smooth=0.6';
  const page2 = await newPage(browser);
  await page2.goto(saved);
  await page2.waitForSelector('.chart[data-key="loss"][data-state="ready"]');
  assert.equal(await page2.$eval('select[name="y"]', (s) => s.value), 'log');
  assert.equal(await page2.$eval('input[name="smooth"]', (s) => s.value), '0.6');
  const q2 = await page2.evaluate(() => window.__tally.queries.filter((q) => q.key === 'loss').at(-1));
  assert.deepEqual([q2.lo, q2.hi], [q1.lo, q1.hi]);
  await screenshot(page2, 'compare-restored');
  // double-click resets to the whole range
  const b2 = await page2.$eval('.chart[data-key="loss"] canvas', (c) => { const r = c.getBoundingClientRect(); return { x: r.x + r.width / 2, y: r.y + r.height / 2 }; });
  await page2.mouse.dblclick(b2.x, b2.y);
  await page2.waitForFunction(() => !new URL(location.href).searchParams.has('lo'));
  await page2.waitForSelector('.chart[data-key="loss"][data-state="ready"][data-lo=""]');
  await page.close();
  await page2.close();
});

test('compare many runs: "Compare first N" charts every run of the page (rasterized lines)', async () => {
  const page = await newPage(browser);
  await page.goto(srv.url + `/experiments/${data.experimentId}`);
  await page.waitForSelector('.tbody .tr');
  await page.click('button[data-test="compare-top"]');
  await page.waitForSelector('.chart[data-key="loss"][data-state="ready"]');
  assert.equal(await page.$eval('.chart[data-key="loss"]', (e) => e.dataset.series), '24');
  assert.ok(Number(await page.$eval('.chart[data-key="loss"]', (e) => e.dataset.points)) > 20000);
  const palette = ['#2563eb', '#dc2626', '#16a34a', '#9333ea', '#ea580c', '#0891b2', '#ca8a04', '#db2777'];
  const counts = await pixelsNear(page, '.chart[data-key="loss"] canvas', palette);
  counts.forEach((n, i) => assert.ok(n > 20, `${palette[i]}: ${n}`));
  await screenshot(page, 'compare-many');
  await page.close();
});

test('compare: wall-time and relative-time x axes query the server on that axis', async () => {
  const page = await newPage(browser);
  const r = data.runs[1];
  await page.goto(srv.url + `/compare?exp=${data.experimentId}&runs=${r.id}&keys=loss&x=time`);
  await page.waitForSelector('.chart[data-key="loss"][data-state="ready"]');
  let q = await page.evaluate(() => window.__tally.queries.at(-1));
  assert.equal(q.axis, 'time');
  assert.equal(q.series, 1);
  await page.selectOption('select[name="x"]', 'relative');
  await page.waitForURL(/x=relative/);
  await page.waitForFunction(() => window.__tally.queries.at(-1)?.axis === 'relative');
  q = await page.evaluate(() => window.__tally.queries.at(-1));
  assert.ok(q.points > 0);
  // the seed logs a point every 100 ms: relative time spans (STEPS - 1) x 100 ms
  const got = await page.evaluate(async (id) => {
    const r = await fetch('/ajax-api/2.0/tally/query', { method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ run_ids: [id], key: 'loss', x_axis: 'relative', width: 10 }) });
    return (await r.json()).series[0].range;
  }, r.id);
  assert.deepEqual(got, [0, (STEPS - 1) * 100]);
  await screenshot(page, 'compare-relative-time');
  await page.close();
});

test('experiments: search, create, rename, delete and restore; errors are shown', async () => {
  const page = await newPage(browser);
  await page.goto(srv.url + '/');
  await page.fill('input[name="new"]', 'e2e-created');
  await page.click('button:has-text("Create")');
  await page.waitForSelector('a:has-text("e2e-created")');
  // a duplicate name: the server's error is shown
  await page.fill('input[name="new"]', 'e2e-created');
  await page.click('button:has-text("Create")');
  assert.match(await (await page.waitForSelector('.error')).textContent(), /RESOURCE_ALREADY_EXISTS/);
  const id = await page.locator('tr', { has: page.locator('a:has-text("e2e-created")') }).getAttribute('data-experiment');
  const row = page.locator(`tr[data-experiment="${id}"]`);
  await row.locator('button:has-text("Rename")').click();
  await row.locator('input[name="name"]').fill('e2e-renamed');
  await row.locator('button:has-text("Save")').click();
  await page.waitForSelector('a:has-text("e2e-renamed")');
  page.once('dialog', (d) => d.accept());
  await page.locator('tr', { has: page.locator('a:has-text("e2e-renamed")') }).locator('button:has-text("Delete")').click();
  await page.waitForSelector('a:has-text("e2e-renamed")', { state: 'detached' });
  await page.selectOption('select', 'deleted');
  await page.locator('tr', { has: page.locator('a:has-text("e2e-renamed")') }).locator('button:has-text("Restore")').click();
  await page.waitForSelector('a:has-text("e2e-renamed")', { state: 'detached' });
  await page.selectOption('select', 'active');
  await page.waitForSelector('a:has-text("e2e-renamed")');
  await page.fill('input[name="q"]', 'renamed');
  await page.press('input[name="q"]', 'Enter');
  await page.waitForFunction(() => document.querySelectorAll('tbody tr').length === 1);
  await screenshot(page, 'experiments');
  // an unknown experiment: the 404 is shown, not swallowed
  await page.goto(srv.url + '/experiments/987654');
  assert.match(await (await page.waitForSelector('.error')).textContent(), /RESOURCE_DOES_NOT_EXIST/);
  await page.close();
});

test('run page: the artifacts browser lists directories and files with download links', async () => {
  const run = data.runs[0];
  const got = await call(srv.url, `mlflow/runs/get?run_id=${run.id}`);
  const uri = got.run.info.artifact_uri; // mlflow-artifacts:/<path>
  const rel = uri.replace(/^mlflow-artifacts:\/+/, '');
  const dir = join(srv.dataDir, 'artifacts', rel);
  mkdirSync(join(dir, 'model'), { recursive: true });
  writeFileSync(join(dir, 'model', 'MLmodel'), 'flavors: {}\n');
  writeFileSync(join(dir, 'notes.txt'), 'hello');
  const page = await newPage(browser);
  await page.goto(srv.url + `/runs/${run.id}`);
  await page.waitForSelector('tr[data-artifact="notes.txt"]');
  const href = await page.$eval('tr[data-artifact="notes.txt"] a', (a) => a.getAttribute('href'));
  assert.equal(href, `/get-artifact?path=notes.txt&run_uuid=${run.id}`);
  await page.click('tr[data-artifact="model"] button');
  await page.waitForSelector('tr[data-artifact="model/MLmodel"]');
  assert.match(page.url(), /path=model/);
  await screenshot(page, 'artifacts');
  await page.close();
});
