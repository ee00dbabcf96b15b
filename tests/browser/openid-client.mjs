// The authorization-code flow with npm openid-client as an independent
// client: node openid-client.mjs <issuer>
// Discovery, PKCE, the login and consent forms posted with a cookie jar,
// code exchange with ID-token validation, two refreshes, then a replay of the
// first refresh token (refused) and of the newest (refused: family revoked).
import * as oidc from 'openid-client';

const issuer = new URL(process.argv[2]);
const redirectUri = 'http://localhost:3000/signin-oidc';
const config = await oidc.discovery(issuer, 'demo.webapp', 'demo-webapp-secret', undefined, {
  execute: [oidc.allowInsecureRequests],
});

const jar = new Map();
async function browse(url, init = {}) {
  const headers = new Headers(init.headers);
  if (jar.size) headers.set('cookie', [...jar].map(([k, v]) => `${k}=${v}`).join('; '));
  const response = await fetch(url, { ...init, headers, redirect: 'manual' });
  for (const line of response.headers.getSetCookie()) {
    const [pair] = line.split(';');
    const at = pair.indexOf('=');
    jar.set(pair.slice(0, at), pair.slice(at + 1));
  }
  return response;
}
const field = (html, name) => html.match(new RegExp(`name="${name}" value="([^"]*)"`))[1];
const post = (path, form) => browse(new URL(path, issuer), {
  method: 'POST',
  headers: { 'content-type': 'application/x-www-form-urlencoded' },
  body: new URLSearchParams(form),
});

const verifier = oidc.randomPKCECodeVerifier();
const state = oidc.randomState();
const nonce = oidc.randomNonce();
const url = oidc.buildAuthorizationUrl(config, {
  redirect_uri: redirectUri,
  scope: 'openid profile read offline_access',
  code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
  code_challenge_method: 'S256',
  state,
  nonce,
});
let html = await (await browse(url)).text();
html = await (await post('/id/account/login', {
  request: field(html, 'request'), csrf: field(html, 'csrf'), username: 'alice', password: 'alice-password',
})).text();
const done = await post('/id/connect/consent', {
  request: field(html, 'request'), csrf: field(html, 'csrf'), decision: 'allow', remember: 'yes',
});
const callback = new URL(done.headers.get('location'));

const tokens = await oidc.authorizationCodeGrant(config, callback, {
  pkceCodeVerifier: verifier,
  expectedState: state,
  expectedNonce: nonce,
  idTokenExpected: true,
});
const claims = tokens.claims();
const first = tokens.refresh_token;
const second = await oidc.refreshTokenGrant(config, first);
const third = await oidc.refreshTokenGrant(config, second.refresh_token);
const refused = async (token) => {
  try {
    await oidc.refreshTokenGrant(config, token);
    return null;
  } catch (e) {
    return e.error ?? e.code ?? String(e);
  }
};
const replayFirst = await refused(first);
const replayNewest = await refused(third.refresh_token);
console.log(JSON.stringify({
  sub: claims.sub,
  sid: claims.sid,
  aud: claims.aud,
  scope: tokens.scope,
  rotated: first !== second.refresh_token && second.refresh_token !== third.refresh_token,
  replayFirst,
  replayNewest,
}));
