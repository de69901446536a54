//! The `/connections` page as a person uses it, in Debian's headless Chromium: sign in as carol,
//! see Linear not connected, connect (the emulator approves and redirects back), see it
//! connected, screenshot, disconnect, see it not connected.
//! Usage: GATEWAY_URL=http://127.0.0.1:PORT SCREENSHOT=out.png node connections.mjs
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const gateway = process.env.GATEWAY_URL;
const screenshot = process.env.SCREENSHOT;
if (!gateway || !screenshot) {
  console.error('set GATEWAY_URL and SCREENSHOT');
  process.exit(2);
}

const profile = mkdtempSync(join(tmpdir(), 'manifold-chromium-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
  ],
  viewport: { width: 1100, height: 500 },
});

function check(condition, message) {
  if (!condition) throw new Error(message);
}

try {
  const page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(15000);
  const row = page.locator('#conn-linear');
  const status = row.locator('.status');

  await page.goto(`${gateway}/connections/dev-login?user=carol`);
  check(new URL(page.url()).pathname === '/connections', `sign-in landed on ${page.url()}`);
  check((await page.locator('#user').textContent()) === 'carol', 'not signed in as carol');
  check((await status.textContent()) === 'Not connected', `before: ${await status.textContent()}`);

  // Connect POSTs, the gateway redirects to the emulator's authorize, which approves and
  // redirects to the callback, which redirects to the page.
  await Promise.all([
    page.waitForURL(`${gateway}/connections**`, { waitUntil: 'load' }),
    row.getByRole('button', { name: 'Connect' }).click(),
  ]);
  await page.waitForFunction(
    () => document.querySelector('#conn-linear .status')?.textContent === 'Connected',
  );
  check((await row.locator('td').nth(3).textContent()).includes('read'), 'no scopes shown');
  await page.screenshot({ path: screenshot, fullPage: true });

  await Promise.all([
    page.waitForURL(`${gateway}/connections**`, { waitUntil: 'load' }),
    row.getByRole('button', { name: 'Disconnect' }).click(),
  ]);
  await page.waitForFunction(
    () => document.querySelector('#conn-linear .status')?.textContent === 'Not connected',
  );
  console.log('connections page: connect and disconnect work');
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
