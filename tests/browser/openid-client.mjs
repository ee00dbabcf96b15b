// The authorization-code flow with npm openid-client as an independent
// client: node openid-client.mjs <issuer> [api-url]
// Discovery, PKCE, the login and consent forms posted with a cookie jar,
// code exchange with ID-token validation, two refreshes, then a replay of the
// first refresh token (refused) and of the newest (refused: family revoked).
// With an API URL (through the gateway), DPoP too: DPoP-bound tokens by
// authorization code + PKCE and by client credentials, each used on the API
// with openid-client's own proofs, and the bound token sent as a bearer
// token. `nonceChallenges` counts the API's `use_dpop_nonce` refusals
// (an edge that asks for server nonces), each of which openid-client answers
// by retrying with the nonce it was handed.
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

/** Authorization code + PKCE as alice: the login and consent forms the first
 * time, the session (and the remembered consent) after that. */
async function codeGrant(options) {
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
  let done = await browse(url);
  if (!done.headers.get('location')) {
    let html = await done.text();
    html = await (await post('/id/account/login', {
      request: field(html, 'request'), csrf: field(html, 'csrf'), username: 'alice', password: 'alice-password',
    })).text();
    done = await post('/id/connect/consent', {
      request: field(html, 'request'), csrf: field(html, 'csrf'), decision: 'allow', remember: 'yes',
    });
  }
  const callback = new URL(done.headers.get('location'));
  return oidc.authorizationCodeGrant(config, callback, {
    pkceCodeVerifier: verifier,
    expectedState: state,
    expectedNonce: nonce,
    idTokenExpected: true,
  }, undefined, options);
}

const tokens = await codeGrant();
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

/** DPoP through the API at `api`: openid-client's key, tokens and proofs. */
async function dpop(api) {
  const url = new URL(api);
  let nonceChallenges = 0;
  let lastAccepted = null;
  const recording = async (input, init) => {
    const response = await fetch(input, init);
    const challenge = response.headers.get('www-authenticate') ?? '';
    if (String(input).startsWith(url.origin) && challenge.includes('error="use_dpop_nonce"')) {
      if (!response.headers.get('dpop-nonce')) throw new Error('use_dpop_nonce without a DPoP-Nonce');
      nonceChallenges += 1;
    }
    if (String(input).startsWith(url.origin) && response.status === 200) {
      const sent = new Headers(init?.headers);
      lastAccepted = { authorization: sent.get('authorization'), dpop: sent.get('dpop') };
    }
    return response;
  };
  const use = async (cfg, token, DPoP) => {
    const r = await oidc.fetchProtectedResource(cfg, token, url, 'GET', null, undefined, { DPoP });
    return r.status;
  };
  const user = oidc.getDPoPHandle(config, await oidc.randomDPoPKeyPair('ES256'));
  const bound = await codeGrant({ DPoP: user });
  const service = await oidc.discovery(issuer, 'demo.service', 'demo-service-secret', undefined, {
    execute: [oidc.allowInsecureRequests],
  });
  config[oidc.customFetch] = recording;
  service[oidc.customFetch] = recording;
  const serviceKey = oidc.getDPoPHandle(service, await oidc.randomDPoPKeyPair('ES256'));
  const cc = await oidc.clientCredentialsGrant(service, { scope: 'read' }, { DPoP: serviceKey });
  const asBearer = await fetch(url, { headers: { authorization: `Bearer ${cc.access_token}` } });
  const results = {
    codeTokenType: bound.token_type,
    codeStatus: await use(config, bound.access_token, user),
    ccTokenType: cc.token_type,
    ccStatus: await use(service, cc.access_token, serviceKey),
    ccAgain: await use(service, cc.access_token, serviceKey),
    bearerStatus: asBearer.status,
    bearerChallenge: asBearer.headers.get('www-authenticate'),
  };
  // The last request the API accepted, its token and openid-client's
  // proof, sent again as is: a replay.
  const replay = await fetch(url, { headers: lastAccepted });
  return {
    ...results,
    nonceChallenges,
    replayStatus: replay.status,
    replayChallenge: replay.headers.get('www-authenticate'),
  };
}

console.log(JSON.stringify({
  dpop: process.argv[3] ? await dpop(process.argv[3]) : null,
  sub: claims.sub,
  sid: claims.sid,
  aud: claims.aud,
  scope: tokens.scope,
  rotated: first !== second.refresh_token && second.refresh_token !== third.refresh_token,
  replayFirst,
  replayNewest,
}));
