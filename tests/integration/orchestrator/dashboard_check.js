// Opens the orchestrator's dashboard in headless Chromium (puppeteer-core driving the system's
// browser, never a downloaded one) and prints one JSON line: the console errors and failed
// requests, whether the hot shards section showed `text`, what the page drew, and where the
// screenshot went. With NO_CHART_LIBRARY=1 the requests for /assets/uplot.* are refused, as for
// a build without npm: the page must then draw its own SVG charts.
//   NODE_PATH=build/web/node_modules node dashboard_check.js URL SCREENSHOT TEXT
const puppeteer = require('puppeteer-core');

(async () => {
  const [url, screenshot, text] = process.argv.slice(2);
  const browser = await puppeteer.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  });
  const errors = [];
  try {
    const page = await browser.newPage();
    const withoutLibrary = process.env.NO_CHART_LIBRARY === '1';
    const library = (url) => new URL(url).pathname.startsWith('/assets/uplot.');
    page.on('console', (m) => {
      // The refused library's own load failure is expected; any other error is not.
      const refused = withoutLibrary && /Failed to load resource/.test(m.text()) &&
          library(m.location().url || 'http://x/');
      if (m.type() === 'error' && !refused) errors.push(m.text());
    });
    page.on('pageerror', (e) => errors.push(String(e)));
    if (withoutLibrary) {
      await page.setRequestInterception(true);
      page.on('request', (r) => (library(r.url()) ? r.abort() : r.continue()));
    }
    page.on('requestfailed', (r) => {
      if (!(withoutLibrary && library(r.url()))) errors.push('request failed: ' + r.url());
    });
    page.on('response', (r) => { if (r.status() >= 400) errors.push(r.status() + ' ' + r.url()); });
    await page.setViewport({width: 1280, height: 1400});
    await page.goto(url, {waitUntil: 'load', timeout: 20000});
    let found = false;
    try {
      await page.waitForFunction(
          (t) => document.getElementById('hot').innerText.includes(t), {timeout: 20000}, text);
      found = true;
    } catch (e) {
      errors.push('not shown within 20 s: ' + text);
    }
    const drawn = await page.evaluate(() => ({
      uplot: !!window.uPlot,
      charts: document.querySelectorAll('#ops canvas, #ops svg, #p99 canvas, #p99 svg').length,
      ring_arcs: document.querySelectorAll('#ringpic path').length,
      hot: document.getElementById('hot').innerText,
    }));
    await page.screenshot({path: screenshot, fullPage: true});
    console.log(JSON.stringify({errors, found, screenshot, ...drawn}));
  } finally {
    await browser.close();
  }
})().catch((e) => {
  console.log(JSON.stringify({fatal: String(e)}));
  process.exit(1);
});
