// An administrator follows ERP.net installation links in Debian's headless
// Chromium: node install.mjs <install|uninstall> <link> <state-file> <screenshot-dir>
// `install` opens the link signed out, signs in as admin when asked, reads
// the confirmation page, installs, reads the secret shown once, and saves
// the browser's session to <state-file>. `uninstall` reuses that session,
// confirms, and reads the outcome. Prints what it saw as JSON.
import { launch } from './chromium.mjs';
import { existsSync } from 'node:fs';

const [step, link, stateFile, shots] = process.argv.slice(2);

const browser = await launch();
try {
  const context = await browser.newContext(
    step === 'uninstall' && existsSync(stateFile) ? { storageState: stateFile } : {});
  const page = await context.newPage();
  await page.goto(link);
  let signedIn = false;
  if (step === 'install') {
    await page.getByLabel('User name').waitFor();
    await page.getByLabel('User name').fill('admin');
    await page.getByLabel('Password').fill('admin-password');
    await page.getByRole('button', { name: 'Sign in' }).click();
    signedIn = true;
    await page.getByRole('heading', { name: /^Install / }).waitFor();
    await page.screenshot({ path: `${shots}/install-confirm.png`, fullPage: true });
    const grant = await page.locator('#grant').innerText();
    const scopes = await page.locator('#scopes li').allTextContents();
    await page.getByRole('button', { name: 'Install' }).click();
    await page.getByRole('heading', { name: /^Installed / }).waitFor();
    await page.screenshot({ path: `${shots}/installed.png`, fullPage: true });
    const secret = await page.locator('#secret').textContent();
    const delivery = await page.locator('#delivery').textContent();
    const landed = page.url();
    // Shown once: the page cannot be had again.
    await context.storageState({ path: stateFile });
    console.log(JSON.stringify({ signedIn, grant, scopes, secret, delivery, landed }));
  } else {
    await page.getByRole('heading', { name: /^Uninstall / }).waitFor();
    await page.getByRole('button', { name: 'Uninstall' }).click();
    await page.getByRole('heading', { name: /^Uninstalled / }).waitFor();
    await page.screenshot({ path: `${shots}/uninstalled.png`, fullPage: true });
    const delivery = await page.locator('#delivery').textContent();
    console.log(JSON.stringify({ delivery }));
  }
} finally {
  await browser.close();
}
