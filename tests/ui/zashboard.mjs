// Drives zashboard (v3.29.1, served by the core under test at /ui/) in headless Chromium as
// a user would: connect with the secret, open the selector, pick a member, switch the mode
// to Global, then open a flow through the core's SOCKS inbound and find it on the
// connections page. Every step waits for what the page shows; screenshots go to <artifacts>.
// Run by sb-cli/tests/clash_dashboard.rs (against sb and Go sing-box).
//
// Usage: node zashboard.mjs <controller url> <secret> <socks inbound host:port> <echo host:port> <artifacts dir>
import { chromium } from 'playwright-core';
import net from 'node:net';

const [, , base, secret, inbound, echo, artifacts] = process.argv;
const api = new URL(base);
const step = (what) => console.error(`step: ${what}`);

// A TCP connection through the core's SOCKS5 inbound to `target`, echoed once, held open.
function socksFlow(inboundAddr, target) {
  const [ih, ip] = inboundAddr.split(':');
  const [th, tp] = target.split(':');
  return new Promise((resolve, reject) => {
    const s = net.connect(Number(ip), ih);
    s.setTimeout(20000, () => reject(new Error('socks flow timed out')));
    let stage = 0;
    s.on('error', reject);
    s.on('connect', () => s.write(Buffer.from([5, 1, 0])));
    s.on('data', (d) => {
      if (stage === 0) {
        stage = 1;
        const port = Number(tp);
        s.write(Buffer.from([5, 1, 0, 1, ...th.split('.').map(Number), port >> 8, port & 255]));
      } else if (stage === 1) {
        if (d[1] !== 0) return reject(new Error(`socks reply ${d[1]}`));
        stage = 2;
        s.write('hello');
      } else {
        s.setTimeout(0);
        resolve(s);
      }
    });
  });
}

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  // No name ever resolves (the dashboard checks GitHub for updates): nothing leaves loopback.
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1'],
});
let flow;
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  await page.route((url) => url.hostname !== '127.0.0.1', (route) => route.abort());
  page.setDefaultTimeout(20000);

  step('connect with the secret');
  await page.goto(`${base}/ui/#/setup?hostname=${api.hostname}&port=${api.port}&secret=${secret}`);
  await page.getByText('SELECTOR').first().waitFor();
  for (const name of ['select', 'GLOBAL', 'auto']) {
    await page.getByText(name, { exact: true }).first().waitFor();
  }

  step('open the selector: its members are listed');
  await page.getByText('select', { exact: true }).first().click();
  for (const member of ['socks / udp', 'direct / udp', 'urltest / udp']) {
    await page.getByText(member, { exact: true }).first().waitFor();
  }
  await page.screenshot({ path: `${artifacts}/proxies.png` });

  step('pick the member direct');
  const put = page.waitForRequest((r) => r.method() === 'PUT' && r.url().endsWith('/proxies/select'));
  await page.getByText('direct', { exact: true }).first().click();
  const sent = await put;
  if (JSON.parse(sent.postData() || '{}').name !== 'direct') throw new Error(`PUT body ${sent.postData()}`);
  await (await sent.response())?.finished();

  step('switch the mode to Global');
  const patch = page.waitForRequest((r) => r.method() === 'PATCH' && r.url().endsWith('/configs'));
  await page.getByRole('combobox').first().click();
  await page.getByRole('option', { name: 'Global', exact: true }).click();
  await (await (await patch).response())?.finished();
  await page.getByRole('combobox').filter({ hasText: 'Global' }).first().waitFor();

  step('a flow through the inbound shows on the connections page');
  flow = await socksFlow(inbound, echo);
  await page.goto(`${base}/ui/#/connections`);
  await page.getByText(echo.split(':')[1]).first().waitFor();
  await page.getByText('clash_mode=Global').first().waitFor();
  await page.screenshot({ path: `${artifacts}/connections.png` });
  console.log(JSON.stringify({ ok: true }));
} catch (e) {
  const pages = browser.contexts().flatMap((c) => c.pages());
  if (pages.length) await pages[0].screenshot({ path: `${artifacts}/failure.png` }).catch(() => {});
  console.error(`failed: ${e.stack || e}`);
  process.exitCode = 1;
} finally {
  flow?.destroy();
  await browser.close();
}
