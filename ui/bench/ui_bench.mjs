// ui_bench.mjs — the browser half of `tally-bench ui` (bench/suite_ui.c seeds
// the server, then runs this). Drives headless Chromium against the seeded
// server and prints one line per figure:
//   FIG <name> <value> <unit> <baseline|-> <baseline_value|nan> <higher_is_better 0|1>
//
//   node ui_bench.mjs URL EXPERIMENT_ID LONG_FILTER STEPS [--reps N]
//
// Figures (medians over the repetitions, fresh page each time):
//   runs_first_screen_ms   navigation to /experiments/ID until the table's
//                          first screen of rows is in the DOM and painted
//   compare_click_to_paint_ms  click on "Compare first 100" (runs filtered by
//                          LONG_FILTER: the 100 runs with STEPS-step curves)
//                          until the loss chart has drawn its data
//   compare_bytes          bytes of that chart's query responses (transfer size)
//   zoom_repaint_ms        wheel (zoom to 1 % of the range) until the chart
//                          has redrawn at full resolution from the new query
//   ui_js_bytes, ui_js_bytes_brotli   the app's JavaScript as served (raw, and
//                          the bytes sent to a browser accepting brotli)
// Baselines, measured in the same browser: MLflow's way of charting many
// runs (get-history-bulk-interval, sampled to at most 2500 steps per run, 100
// runs in one request; not exact) for the whole range and for the 1 % zoom.
import { get } from 'node:http';
import { launchBrowser, newPage } from '../tests/harness.mjs';

const [url, expId, longFilter, stepsArg] = process.argv.slice(2);
const reps = Number(process.argv[process.argv.indexOf('--reps') + 1]) || 5;
const steps = Number(stepsArg);
const med = (a) => {
  const s = [...a].sort((x, y) => x - y);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const fig = (name, value, unit, baseline = '-', bv = NaN, hib = 0) =>
  console.log(`FIG ${name} ${value} ${unit} ${baseline} ${bv} ${hib}`);

// Bytes of a path as sent with the given Accept-Encoding (no decoding).
const sent = (path, enc) =>
  new Promise((resolve, reject) =>
    get(url + path, { headers: { 'Accept-Encoding': enc } }, (r) => {
      let n = 0;
      r.on('data', (d) => (n += d.length));
      r.on('end', () => (r.statusCode === 200 ? resolve(n) : reject(new Error(`${path}: ${r.statusCode}`))));
    }).on('error', reject),
  );
const html = await (await fetch(url + '/')).text();
const scripts = [...html.matchAll(/src="(\/assets\/[^"]+\.js)"/g)].map((m) => m[1]);
let jsRaw = 0, jsBr = 0;
for (const s of scripts) {
  jsRaw += await sent(s, 'identity');
  jsBr += await sent(s, 'br, gzip');
}
fig('ui_js_bytes', jsRaw, 'bytes');
fig('ui_js_bytes_brotli', jsBr, 'bytes');

const browser = await launchBrowser();
try {
  // 1. runs page, first screen
  const first = [];
  for (let i = 0; i < reps; i++) {
    const page = await newPage(browser);
    await page.addInitScript(() => {
      new MutationObserver((_, obs) => {
        const rows = document.querySelectorAll('.tbody .tr');
        const body = document.querySelector('.tbody');
        if (body && rows.length && rows.length * 28 >= Math.min(body.clientHeight, 28 * 500) - 28) {
          obs.disconnect();
          requestAnimationFrame(() => setTimeout(() => (window.__firstScreen = performance.now()), 0));
        }
      }).observe(document, { childList: true, subtree: true });
    });
    await page.goto(`${url}/experiments/${expId}`);
    await page.waitForFunction(() => window.__firstScreen !== undefined, null, { timeout: 60000 });
    first.push(await page.evaluate(() => window.__firstScreen));
    if (process.env.TALLY_UI_BENCH_DEBUG)
      console.error(JSON.stringify(await page.evaluate(() => performance.getEntries().map((e) => [e.name.slice(-60), Math.round(e.startTime), Math.round(e.duration)]))));
    await page.close();
  }
  fig('runs_first_screen_ms', med(first).toFixed(1), 'ms');

  // 2. compare: click to first paint, bytes; 3. zoom to 1 %
  const click = [], bytes = [], zoom = [];
  for (let i = 0; i < reps; i++) {
    const page = await newPage(browser);
    await page.goto(`${url}/experiments/${expId}?filter=${encodeURIComponent(longFilter)}`);
    await page.waitForFunction(() => /· 100 runs$/.test(document.querySelector('.pager span')?.textContent.trim()), null, { timeout: 60000 });
    await page.evaluate(() => {
      window.__t = {};
      addEventListener('click', () => (window.__t.click = performance.now()), true);
      performance.setResourceTimingBufferSize(10000);
      new MutationObserver(() => {
        const c = document.querySelector('.chart[data-key="loss"]');
        if (c && c.dataset.state === 'ready' && window.__t.click && !window.__t.paint)
          requestAnimationFrame(() => setTimeout(() => (window.__t.paint = performance.now()), 0));
      }).observe(document, { subtree: true, attributes: true, childList: true });
    });
    await page.click('button[data-test="compare-top"]');
    await page.waitForFunction(() => window.__t.paint, null, { timeout: 60000 });
    const t = await page.evaluate(() => ({
      ms: window.__t.paint - window.__t.click,
      bytes: performance.getEntriesByType('resource').filter((e) => e.name.includes('/tally/query'))
        .reduce((a, e) => a + (e.transferSize || e.encodedBodySize), 0),
      series: document.querySelector('.chart[data-key="loss"]').dataset.series,
    }));
    if (process.env.TALLY_UI_BENCH_DEBUG)
      console.error(JSON.stringify([t, await page.evaluate(() => [window.__t, window.__tally.queries,
        performance.getEntries().filter((e) => e.startTime > window.__t.click - 5).map((e) => [e.name.slice(-50), Math.round(e.startTime), Math.round(e.duration)])])]));
    if (t.series !== '100') throw new Error(`compare chart drew ${t.series} runs, not 100`);
    click.push(t.ms);
    bytes.push(t.bytes);
    // zoom: 1 % of the range around the middle, by one wheel event
    const box = await page.$eval('.chart[data-key="loss"] canvas', (c) => {
      const r = c.getBoundingClientRect();
      return { x: r.x + 64 + (r.width - 78) / 2, y: r.y + r.height / 2 };
    });
    await page.mouse.move(box.x, box.y);
    const n0 = await page.evaluate(() => window.__tally.queries.length);
    await page.evaluate((n) => {
      window.__z = {};
      const canvas = document.querySelector('.chart[data-key="loss"] canvas');
      canvas.addEventListener('wheel', () => (window.__z.wheel = performance.now()), true);
      const c = document.querySelector('.chart[data-key="loss"]');
      new MutationObserver(() => {
        if (c.dataset.state === 'ready' && window.__tally.queries.length > n && !window.__z.paint)
          requestAnimationFrame(() => setTimeout(() => (window.__z.paint = performance.now()), 0));
      }).observe(c, { attributes: true });
    }, n0);
    await page.mouse.wheel(0, -100 * Math.log2(100));
    await page.waitForFunction(() => window.__z.paint, null, { timeout: 60000 });
    const z = await page.evaluate(() => ({ ms: window.__z.paint - window.__z.wheel, q: window.__tally.queries.at(-1) }));
    if (!(z.q.hi - z.q.lo <= steps * 0.0102)) throw new Error('zoom did not reach 1 %: ' + JSON.stringify(z.q));
    if (process.env.TALLY_UI_BENCH_DEBUG)
      console.error(JSON.stringify([z, await page.evaluate(() => [window.__z,
        performance.getEntries().filter((e) => e.startTime > window.__z.wheel - 5).map((e) => [e.name.slice(-50), Math.round(e.startTime), Math.round(e.duration)])])]));
    zoom.push(z.ms);
    await page.close();
  }

  // Baselines: MLflow's sampled bulk history for the same 100 runs, fetched and
  // parsed in the page (the MLflow UI's own call; at most 2500 steps per run).
  const page = await newPage(browser);
  await page.goto(`${url}/experiments/${expId}?filter=${encodeURIComponent(longFilter)}`);
  await page.waitForFunction(() => /· 100 runs$/.test(document.querySelector('.pager span')?.textContent.trim()), null, { timeout: 60000 });
  const ids = await page.evaluate(async ({ f, e }) => {
    const r = await fetch('/ajax-api/2.0/mlflow/runs/search', { method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ experiment_ids: [e], filter: f, max_results: 100 }) });
    return (await r.json()).runs.map((x) => x.info.run_id);
  }, { f: longFilter, e: expId });
  const base = await page.evaluate(
    async ({ ids, steps }) => {
      const q = (extra) => '/ajax-api/2.0/mlflow/metrics/get-history-bulk-interval?metric_key=loss&max_results=2500&' +
        ids.map((i) => 'run_ids=' + i).join('&') + extra;
      const one = async (extra) => {
        const t0 = performance.now();
        const r = await fetch(q(extra));
        const text = await r.text();
        const j = JSON.parse(text);
        const n = (j.metrics || []).length;
        return { ms: performance.now() - t0, bytes: text.length, n };
      };
      const full = [], zoom = [];
      for (let i = 0; i < 3; i++) full.push(await one(''));
      const lo = Math.floor(steps * 0.495), hi = Math.floor(steps * 0.505);
      for (let i = 0; i < 3; i++) zoom.push(await one(`&start_step=${lo}&end_step=${hi}`));
      return { full, zoom };
    },
    { ids, steps },
  );
  await page.close();
  const bFull = med(base.full.map((b) => b.ms)), bBytes = med(base.full.map((b) => b.bytes));
  const bZoom = med(base.zoom.map((b) => b.ms));
  fig('compare_click_to_paint_ms', med(click).toFixed(1), 'ms', 'mlflow_bulk_interval_fetch_parse', bFull.toFixed(1), 0);
  fig('compare_bytes', med(bytes).toFixed(0), 'bytes', 'mlflow_bulk_interval_2500', bBytes.toFixed(0), 0);
  fig('zoom_repaint_ms', med(zoom).toFixed(1), 'ms', 'mlflow_bulk_interval_zoom_fetch_parse', bZoom.toFixed(1), 0);
} finally {
  await browser.close();
}
