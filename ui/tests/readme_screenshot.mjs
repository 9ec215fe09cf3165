// readme_screenshot.mjs — makes docs/img/compare.png, the README's picture of
// the compare view: 24 seeded runs x 20,000 steps, hover on the loss chart.
//   node readme_screenshot.mjs   (needs build/tally and chromium)
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { launchBrowser, newPage, seed, startServer } from './harness.mjs';

const out = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'docs', 'img', 'compare.png');
const srv = await startServer();
try {
  const data = await seed(srv.url, { nRuns: 24, steps: 20000 });
  const browser = await launchBrowser();
  const page = await newPage(browser, { width: 1280, height: 640 });
  await page.goto(`${srv.url}/experiments/${data.experimentId}`);
  await page.waitForSelector('.tbody .tr');
  await page.click('button[data-test="compare-top"]');
  await page.waitForSelector('.chart[data-key="loss"][data-state="ready"]');
  await page.waitForSelector('.chart[data-key="acc"][data-state="ready"]');
  await page.selectOption('select[name="y"]', 'log');
  await page.waitForURL(/y=log/);
  const box = await page.$eval('.chart[data-key="loss"] canvas', (c) => {
    const r = c.getBoundingClientRect();
    return { x: r.x + r.width * 0.35, y: r.y + r.height / 2 };
  });
  await page.mouse.move(box.x, box.y);
  await page.waitForSelector('.chart[data-key="loss"] .tip:not([hidden])');
  await page.screenshot({ path: out });
  await browser.close();
  console.log('wrote', out);
} finally {
  await srv.stop();
}
