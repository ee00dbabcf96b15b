// Signs in through the host's pages in Debian's headless Chromium:
// node signin.mjs <authorize-url> <screenshot-dir>
// Opens the authorize URL, tries a wrong password (the error must show),
// signs in as alice, consents, and prints the callback URL as JSON.
import { launch } from './chromium.mjs';

const [authorizeUrl, shots] = process.argv.slice(2);
const callback = new URL(new URL(authorizeUrl).searchParams.get('redirect_uri'));

const browser = await launch();
try {
  const page = await browser.newPage();
  // The client app is not running: answer its callback in the browser.
  await page.route(`${callback.origin}/**`, (route) =>
    route.fulfill({ status: 200, contentType: 'text/html', body: '<h1>callback</h1>' }));

  await page.goto(authorizeUrl);
  await page.getByLabel('User name').waitFor();
  await page.screenshot({ path: `${shots}/login.png`, fullPage: true });

  await page.getByLabel('User name').fill('alice');
  await page.getByLabel('Password').fill('not-her-password');
  await page.keyboard.press('Enter');
  const error = await page.getByRole('alert').textContent();
  await page.screenshot({ path: `${shots}/login-error.png`, fullPage: true });

  await page.getByLabel('Password').fill('alice-password');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Allow access?' }).waitFor();
  await page.screenshot({ path: `${shots}/consent.png`, fullPage: true });
  const scopes = await page.locator('li').allTextContents();

  await page.getByRole('button', { name: 'Allow' }).click();
  await page.waitForURL((url) => url.origin === callback.origin);
  console.log(JSON.stringify({ error, scopes, landed: page.url() }));
} finally {
  await browser.close();
}
