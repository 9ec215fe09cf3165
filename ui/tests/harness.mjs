// harness.mjs — what the UI's end-to-end tests and the `ui` benchmark share:
// a real `tally serve` (port 0, fresh data directory), a seeded experiment,
// and headless Debian Chromium driven by playwright-core.
//
//   TALLY_BIN_DIR    directory of the tally binary (default ../../build)
//   TALLY_TEST_TMP   parent of the scratch data directories (default the OS tmp)
//   TALLY_UI_SHOTS   where screenshots go (default ../../build/ui-screenshots)
//   CHROMIUM         the browser (default: `command -v chromium`)
import { spawn, execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
export const binDir = process.env.TALLY_BIN_DIR ?? join(here, '..', '..', 'build');
export const shotDir = process.env.TALLY_UI_SHOTS ?? join(binDir, 'ui-screenshots');

export async function startServer(extra = []) {
  const base = process.env.TALLY_TEST_TMP || tmpdir();
  mkdirSync(base, { recursive: true });
  const tmp = mkdtempSync(join(base, 'ui-e2e-'));
  const dataDir = join(tmp, 'data');
  const proc = spawn(join(binDir, 'tally'), ['serve', '--host', '127.0.0.1', '--port', '0', '--data', dataDir,
    '--log-requests', '0', ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  proc.stderr.on('data', (d) => (err = (err + d).slice(-4000)));
  const url = await new Promise((resolve, reject) => {
    let out = '';
    const t = setTimeout(() => reject(new Error('tally serve did not start in 30 s: ' + err)), 30000);
    proc.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/tally listening on (http:\/\/\S+)/);
      if (m) {
        clearTimeout(t);
        resolve(m[1]);
      }
    });
    proc.on('exit', (code) => {
      clearTimeout(t);
      reject(new Error(`tally serve exited ${code}: ${err}`));
    });
  });
  return {
    url,
    dataDir,
    async stop() {
      const exited = new Promise((r) => proc.on('exit', (code) => r(code)));
      proc.kill('SIGTERM');
      const code = await exited;
      rmSync(tmp, { recursive: true, force: true });
      if (code !== 0) throw new Error(`tally serve exited ${code}: ${err}`);
    },
  };
}

export function chromiumPath() {
  if (process.env.CHROMIUM) return process.env.CHROMIUM;
  try {
    return execFileSync('sh', ['-c', 'command -v chromium'], { encoding: 'utf8' }).trim();
  } catch {
    throw new Error('chromium not found (tools/install-deps.sh installs it; or set CHROMIUM)');
  }
}

export async function launchBrowser() {
  return chromium.launch({
    executablePath: chromiumPath(),
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  });
}

export async function newPage(browser, { width = 1280, height = 860 } = {}) {
  const ctx = await browser.newContext({ viewport: { width, height }, deviceScaleFactor: 1 });
  const page = await ctx.newPage();
  page.consoleErrors = [];
  page.on('pageerror', (e) => page.consoleErrors.push(String(e)));
  return page;
}

export async function screenshot(page, name) {
  mkdirSync(shotDir, { recursive: true });
  const path = join(shotDir, name + '.png');
  await page.screenshot({ path, fullPage: false });
  return path;
}

// JSON calls to the MLflow API; throws on a non-2xx answer.
export async function call(url, path, body, method = body === undefined ? 'GET' : 'POST') {
  const r = await fetch(url + '/api/2.0/' + path, {
    method,
    headers: body === undefined ? {} : { 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${text}`);
  return text ? JSON.parse(text) : {};
}

// Seeds an experiment: nRuns runs with params (lr, opt), a tag, and a loss /
// acc curve of `steps` points each (log-batch, 1000 metrics a request).
// Returns {experimentId, runs: [{id, name, lr, opt, lossLatest}]}.
export async function seed(url, { name = 'mnist', nRuns = 24, steps = 2000 } = {}) {
  const { experiment_id: experimentId } = await call(url, 'mlflow/experiments/create', { name });
  const runs = [];
  const t0 = 1_700_000_000_000;
  for (let i = 0; i < nRuns; i++) {
    const lr = [0.1, 0.03, 0.01, 0.003][i % 4];
    const opt = i % 2 ? 'adam' : 'sgd';
    const rname = `run-${String(i).padStart(2, '0')}`;
    const { run } = await call(url, 'mlflow/runs/create', {
      experiment_id: experimentId,
      run_name: rname,
      start_time: t0 + i * 60_000,
      tags: [{ key: 'team', value: i % 3 ? 'vision' : 'speech' }],
    });
    const id = run.info.run_id;
    await call(url, 'mlflow/runs/log-batch', {
      run_id: id,
      params: [{ key: 'lr', value: String(lr) }, { key: 'opt', value: opt }, { key: 'layers', value: String(2 + (i % 5)) }],
    });
    // loss_i(s) = a_i * exp(-s / tau) + floor_i (+ a small deterministic wiggle)
    const a = 2 + (i % 7) * 0.3, floor = 0.05 + i * 0.01, tau = steps / (3 + (i % 4));
    let last = 0;
    for (let s0 = 0; s0 < steps; s0 += 500) {
      const metrics = [];
      for (let s = s0; s < Math.min(steps, s0 + 500); s++) {
        const loss = a * Math.exp(-s / tau) + floor + 0.02 * Math.sin(s * 0.37 + i);
        last = loss;
        metrics.push({ key: 'loss', value: loss, timestamp: t0 + i * 60_000 + s * 100, step: s });
        metrics.push({ key: 'acc', value: 1 - loss / 3, timestamp: t0 + i * 60_000 + s * 100, step: s });
      }
      await call(url, 'mlflow/runs/log-batch', { run_id: id, metrics });
    }
    runs.push({ id, name: rname, lr, opt, lossLatest: last });
  }
  return { experimentId, runs };
}
