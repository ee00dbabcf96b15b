//! The vector format and its preparation: policies built from a base plus a
//! merge patch, tokens minted from fixture keys, templates expanded.
//!
//! See `tests/vectors/README.md` for the format.

use std::collections::BTreeMap;
use std::path::Path;

use erpgate::{cache::TokenHash, encode_b64url};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::fixtures::{Fixtures, hmac};

/// The `now` used when a vector gives none (2025-12-23, an ERP.net example token).
pub const DEFAULT_NOW: u64 = 1_766_505_200;
const TEST_ISSUER: &str = "https://demo.my.erp.net/id";

/// A vector as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Vector {
    /// Unique name, `area/what-happens`.
    pub name: String,
    /// Why the vector exists.
    #[serde(default)]
    pub description: Option<String>,
    /// `"erpnet"` (default) or an inline policy object.
    #[serde(default)]
    pub policy: Option<Value>,
    /// RFC 7396 merge patch applied to the policy.
    #[serde(default)]
    pub policy_patch: Option<Value>,
    /// The clock the vector starts at, Unix seconds: tokens are minted
    /// relative to it and each step runs `at` seconds later. Default
    /// [`DEFAULT_NOW`].
    #[serde(default)]
    pub now: Option<u64>,
    /// Whether the engine hands signatures to host crypto.
    #[serde(default)]
    pub host_crypto: bool,
    /// The key DPoP server nonces are minted under (base64url), given to
    /// each artifact as its adapter takes it.
    #[serde(default)]
    pub dpop_nonce_key: Option<String>,
    /// Tokens to mint, by name; requests use them as `{{name}}`.
    #[serde(default)]
    pub tokens: BTreeMap<String, TokenSpec>,
    /// DPoP proofs to mint after the tokens, by name; requests use them as
    /// `{{name}}` too.
    #[serde(default)]
    pub proofs: BTreeMap<String, ProofSpec>,
    /// Requests, in order, on one shared state.
    pub steps: Vec<StepSpec>,
}

/// How to mint one token.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenSpec {
    /// Fixture key whose `alg` and `kid` go in the default header, and which signs.
    #[serde(default)]
    pub key: Option<String>,
    /// A different fixture to sign with.
    #[serde(default)]
    pub sign_with: Option<String>,
    /// Claims preset (`"service"`, `"user"`) or a claims object. Default `"service"`.
    #[serde(default)]
    pub claims: Option<Value>,
    /// Merge patch on the claims.
    #[serde(default)]
    pub claims_patch: Option<Value>,
    /// Merge patch on the default header.
    #[serde(default)]
    pub header_patch: Option<Value>,
    /// Literal header JSON (for duplicate members and odd encodings).
    #[serde(default)]
    pub raw_header: Option<String>,
    /// Literal claims JSON.
    #[serde(default)]
    pub raw_claims: Option<String>,
    /// `valid` (default), `empty`, `zero64`, `truncate`, `extend`, `flip`,
    /// `hmac_with_public_pem`, `noncanonical`.
    #[serde(default)]
    pub signature: Option<String>,
    /// Append `=` padding to the header segment.
    #[serde(default)]
    pub pad_header: bool,
    /// The whole token, verbatim.
    #[serde(default)]
    pub literal: Option<String>,
}

/// How to mint one DPoP proof (RFC 9449 §4.2): the claims are `jti`
/// (`{vector}/{proof}`), `htm`, `htu` ([`crate::VECTOR_ORIGIN`] and
/// `path`), `iat` (the vector's `now`) and `ath` of `token`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProofSpec {
    /// The fixture key that signs it, whose public half the header carries.
    pub key: String,
    /// The token whose hash is `ath`; without one there is no `ath`.
    #[serde(default)]
    pub token: Option<String>,
    /// `htm`; default `GET`.
    #[serde(default)]
    pub htm: Option<String>,
    /// The path in `htu`; default `/api/domain/odata/Crm_Customers`.
    #[serde(default)]
    pub path: Option<String>,
    /// Merge patch on the claims (`$now` expressions allowed).
    #[serde(default)]
    pub claims_patch: Option<Value>,
    /// Merge patch on the header.
    #[serde(default)]
    pub header_patch: Option<Value>,
    /// Another fixture signs it (the header still carries `key`'s `jwk`).
    #[serde(default)]
    pub sign_with: Option<String>,
}

/// One request and its expectation, as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepSpec {
    /// Seconds after the vector's `now`.
    #[serde(default)]
    pub at: u64,
    /// Milliseconds added to `at`, for timing finer than a second.
    #[serde(default)]
    pub at_ms: u64,
    /// The request the engine decides on in this step.
    pub request: RequestSpec,
    /// Replies to the calls the engine must ask for, in order.
    #[serde(default)]
    pub calls: Vec<Value>,
    /// Replies to background calls (`due_calls`) run before the request.
    #[serde(default)]
    pub background: Vec<Value>,
    /// What must happen.
    pub expect: Expect,
}

/// A request as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestSpec {
    /// Method; default GET.
    #[serde(default)]
    pub method: Option<String>,
    /// Path and query.
    pub path: String,
    /// `[name, value]` pairs; a value may be `{"hex": "…"}` for raw bytes.
    #[serde(default)]
    pub headers: Vec<(String, Value)>,
    /// The body (an OData `$batch`), templates expanded.
    #[serde(default)]
    pub body: Option<String>,
}

/// What must happen in one step.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// HTTP status; 200 means allowed.
    pub status: u16,
    /// The engine's reason code.
    #[serde(default)]
    pub reason: Option<String>,
    /// The `error` in the denial body.
    #[serde(default)]
    pub error: Option<String>,
    /// The exact `WWW-Authenticate` value.
    #[serde(default)]
    pub challenge: Option<String>,
    /// The `DPoP-Nonce` a denial hands out; none when absent.
    #[serde(default)]
    pub dpop_nonce: Option<String>,
    /// Headers the upstream must receive with exactly this one value.
    #[serde(default)]
    pub forwarded: BTreeMap<String, String>,
    /// Headers the upstream must not receive.
    #[serde(default)]
    pub not_forwarded: Vec<String>,
    /// Whether the identity came from a cache.
    #[serde(default)]
    pub from_cache: Option<bool>,
    /// In shadow mode, the reason enforcement would have denied with (the
    /// request itself is allowed, untouched).
    #[serde(default)]
    pub would_deny: Option<String>,
    /// Members the step's decision-log line must have, with these values.
    #[serde(default)]
    pub log: Option<serde_json::Map<String, serde_json::Value>>,
    /// A local answer that is not a denial (the protected-resource
    /// metadata): members its JSON body must have, with these values. No
    /// decision-log line may be written for it.
    #[serde(default)]
    pub answer: Option<serde_json::Map<String, serde_json::Value>>,
}

/// A reply the harness gives to one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// An HTTP response.
    #[allow(missing_docs)]
    Response { status: u16, body: Vec<u8> },
    /// Let the call time out.
    Timeout,
    /// Fail the call (connection refused).
    Failed,
}

/// A call the engine must ask for, and its reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallReply {
    /// `introspection`, `jwks` or `revocation_feed`.
    pub purpose: String,
    /// What to answer.
    pub reply: Reply,
}

/// A step ready to run.
#[derive(Debug, Clone)]
pub struct PreparedStep {
    /// The engine's clock for this step, Unix milliseconds: the vector's `now`
    /// plus the step's `at` and `at_ms`.
    pub now_ms: u64,
    /// HTTP method; `GET` when the step gives none.
    pub method: String,
    /// Path and query.
    pub path: String,
    /// Headers, raw values.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The body, if the step has one; an adapter passes it when the engine
    /// asks for it.
    pub body: Option<String>,
    /// Calls the engine must ask for, in order, with replies.
    pub calls: Vec<CallReply>,
    /// Background calls to answer before the request.
    pub background: Vec<CallReply>,
    /// What must happen.
    pub expect: Expect,
}

/// A vector ready to run.
#[derive(Debug, Clone)]
pub struct PreparedVector {
    /// The vector's unique name, `area/what-happens`.
    pub name: String,
    /// The policy JSON text.
    pub policy_json: String,
    /// Whether host crypto is declared.
    pub host_crypto: bool,
    /// The key DPoP server nonces are minted under (base64url).
    pub dpop_nonce_key: Option<String>,
    /// Steps in order, run on one shared engine state.
    pub steps: Vec<PreparedStep>,
}

/// Loads every `*.json` directly under `dir`, each an array of vectors.
pub fn load_dir(dir: &Path) -> Result<Vec<Vector>, String> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let mut all: Vec<Vector> = Vec::new();
    for file in files {
        let text =
            std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
        let vectors: Vec<Vector> =
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", file.display()))?;
        for v in vectors {
            if all.iter().any(|x| x.name == v.name) {
                return Err(format!("duplicate vector name {}", v.name));
            }
            all.push(v);
        }
    }
    Ok(all)
}

/// RFC 7396 JSON merge patch.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(p) => {
            if !target.is_object() {
                *target = Value::Object(Map::new());
            }
            if let Value::Object(t) = target {
                for (k, v) in p {
                    if v.is_null() {
                        t.remove(k);
                    } else {
                        merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
                    }
                }
            }
        }
        other => *target = other.clone(),
    }
}

struct Ctx<'a> {
    fixtures: &'a Fixtures,
    now: u64,
    tokens: BTreeMap<String, String>,
}

impl Ctx<'_> {
    fn templates(&self, text: &str) -> Result<String, String> {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(start) = rest.find("{{") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after
                .find("}}")
                .ok_or_else(|| format!("unclosed template in {text:?}"))?;
            let name = &after[..end];
            out.push_str(
                self.tokens
                    .get(name)
                    .ok_or_else(|| format!("no token {name:?}"))?,
            );
            rest = &after[end + 2..];
        }
        out.push_str(rest);
        Ok(out)
    }

    /// Evaluates `$…` expressions and `{{token}}` templates in every string.
    fn eval(&self, value: &Value) -> Result<Value, String> {
        Ok(match value {
            Value::String(s) => self.eval_str(s)?,
            Value::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|v| self.eval(v))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Object(map) => {
                let mut out = Map::new();
                for (k, v) in map {
                    out.insert(k.clone(), self.eval(v)?);
                }
                Value::Object(out)
            }
            other => other.clone(),
        })
    }

    fn eval_str(&self, s: &str) -> Result<Value, String> {
        if let Some(rest) = s.strip_prefix("$now") {
            let offset: i64 = match rest.chars().next() {
                None => 0,
                Some('+') => rest[1..]
                    .parse()
                    .map_err(|_| format!("bad expression {s}"))?,
                Some('-') => -rest[1..]
                    .parse::<i64>()
                    .map_err(|_| format!("bad expression {s}"))?,
                _ => return Err(format!("bad expression {s}")),
            };
            return Ok(json!(self.now as i64 + offset));
        }
        if let Some(rest) = s.strip_prefix("$repeat:") {
            let (ch, n) = rest
                .split_once(':')
                .ok_or_else(|| format!("bad expression {s}"))?;
            let n: usize = n.parse().map_err(|_| format!("bad expression {s}"))?;
            return Ok(Value::String(ch.repeat(n)));
        }
        if let Some(rest) = s.strip_prefix("$jwks:") {
            let names: Vec<&str> = rest.split(',').collect();
            return self.fixtures.jwks(&names);
        }
        if let Some(key) = s.strip_prefix("$jkt:") {
            let jwk = self.fixtures.key(key)?.public_jwk()?;
            let members = jwk.as_object().ok_or("a JWK is an object")?;
            return erpgate::dpop::thumbprint(members)
                .map(Value::String)
                .ok_or_else(|| format!("no thumbprint for {key}"));
        }
        if let Some(rest) = s.strip_prefix("$sha256:") {
            return Ok(Value::String(
                TokenHash::of(&self.templates(rest)?).to_hex(),
            ));
        }
        Ok(Value::String(self.templates(s)?))
    }

    fn claims_preset(&self, name: &str) -> Result<Value, String> {
        let iss = TEST_ISSUER;
        let aud = json!([
            "DomainAPI",
            "TableAPI",
            "OLAP",
            "AppServer",
            format!("{iss}/resources")
        ]);
        match name {
            "service" => Ok(json!({
                "nbf": "$now-10", "exp": "$now+3590", "iss": iss, "aud": aud, "client_id": "PK",
                "client_system_user": "admin", "client_system_user_type": "InternalUser",
                "client_db": "E1_DEV-1 Test", "jti": "8D0B705573A1A98FDBADFF0CD7F7EEB4",
                "iat": "$now-10", "scope": ["read", "update"]
            })),
            "user" => Ok(json!({
                "nbf": "$now-10", "exp": "$now+3590", "iss": iss, "aud": aud, "client_id": "PK",
                "sub": "admin", "auth_time": "$now-600", "idp": "local",
                "id": "9da64839-a8d0-491d-aebb-4d18fa42b014", "name": "John Doe",
                "email": "admin@mail.com", "user_type": "InternalUser", "is_admin": "true",
                "email_verified": "false", "db": "E1_DEV-1 Test", "locale": "bg",
                "jti": "A50866466657B34B0169F54B16D87F7D", "sid": "D1FFEDFE4CB32300D26C265B9BD374FB",
                "iat": "$now-10", "scope": ["openid", "profile", "read", "update", "offline_access"],
                "amr": ["pwd"]
            })),
            other => Err(format!("unknown claims preset {other:?}")),
        }
    }

    fn proof(&self, jti: &str, spec: &ProofSpec) -> Result<String, String> {
        let path = spec
            .path
            .as_deref()
            .unwrap_or("/api/domain/odata/Crm_Customers");
        let mut claims = json!({
            "jti": jti,
            "htm": spec.htm.as_deref().unwrap_or("GET"),
            "htu": format!("{}{path}", crate::VECTOR_ORIGIN),
            "iat": self.now,
        });
        if let Some(token) = &spec.token {
            let token = self
                .tokens
                .get(token)
                .ok_or_else(|| format!("no token {token:?}"))?;
            claims["ath"] = json!(erpgate::dpop::token_hash(token));
        }
        if let Some(patch) = &spec.claims_patch {
            merge_patch(&mut claims, patch);
        }
        let claims = self.eval(&claims)?;
        let mut header = self.fixtures.dpop_header(&spec.key)?;
        if let Some(patch) = &spec.header_patch {
            merge_patch(&mut header, patch);
        }
        let signer = spec.sign_with.as_deref().unwrap_or(&spec.key);
        self.fixtures.sign_compact(signer, &header, &claims)
    }

    fn mint(&self, spec: &TokenSpec) -> Result<String, String> {
        if let Some(literal) = &spec.literal {
            return Ok(literal.clone());
        }
        let key_name = spec.key.as_deref().ok_or("token needs key or literal")?;
        let key = self.fixtures.key(key_name)?;
        let header_json = match &spec.raw_header {
            Some(raw) => raw.clone(),
            None => {
                let mut header = json!({ "alg": key.alg, "typ": "at+jwt" });
                if let Some(kid) = &key.kid {
                    header["kid"] = json!(kid);
                }
                if let Some(patch) = &spec.header_patch {
                    merge_patch(&mut header, patch);
                }
                header.to_string()
            }
        };
        let claims_json = match &spec.raw_claims {
            Some(raw) => raw.clone(),
            None => {
                let mut claims = match &spec.claims {
                    None => self.claims_preset("service")?,
                    Some(Value::String(preset)) => self.claims_preset(preset)?,
                    Some(other) => other.clone(),
                };
                if let Some(patch) = &spec.claims_patch {
                    merge_patch(&mut claims, patch);
                }
                self.eval(&claims)?.to_string()
            }
        };
        let mut header_b64 = encode_b64url(header_json.as_bytes());
        if spec.pad_header {
            while !header_b64.len().is_multiple_of(4) {
                header_b64.push('=');
            }
        }
        let signing_input = format!("{header_b64}.{}", encode_b64url(claims_json.as_bytes()));
        let signer = self
            .fixtures
            .key(spec.sign_with.as_deref().unwrap_or(key_name))?;
        let mode = spec.signature.as_deref().unwrap_or("valid");
        let signature = match mode {
            "empty" => return Ok(format!("{signing_input}.")),
            "zero64" => vec![0u8; 64],
            "hmac_with_public_pem" => hmac(
                "HS256",
                signer.public_pem()?.as_bytes(),
                signing_input.as_bytes(),
            )?,
            _ => {
                let mut sig = signer.sign(signing_input.as_bytes())?;
                match mode {
                    "valid" | "noncanonical" => {}
                    "truncate" => {
                        sig.pop();
                    }
                    "extend" => sig.push(0),
                    "flip" => {
                        if let Some(last) = sig.last_mut() {
                            *last ^= 1;
                        }
                    }
                    other => return Err(format!("unknown signature mode {other:?}")),
                }
                sig
            }
        };
        let mut sig_b64 = encode_b64url(&signature);
        if mode == "noncanonical" {
            const ALPHABET: &[u8] =
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
            if sig_b64.len().is_multiple_of(4) {
                return Err(
                    "noncanonical needs a signature whose length is not a multiple of 3".into(),
                );
            }
            let last = sig_b64.pop().ok_or("empty signature")?;
            let idx = ALPHABET
                .iter()
                .position(|&c| c == last as u8)
                .ok_or("bad base64")?;
            sig_b64.push(ALPHABET[idx | 1] as char);
        }
        Ok(format!("{signing_input}.{sig_b64}"))
    }

    fn reply(&self, spec: &Value) -> Result<CallReply, String> {
        let purpose = spec
            .get("purpose")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("call without purpose: {spec}"))?
            .to_owned();
        let reply = match spec.get("reply") {
            Some(Value::String(s)) if s == "timeout" => Reply::Timeout,
            Some(Value::String(s)) if s == "failed" => Reply::Failed,
            Some(Value::Object(r)) => {
                let status = r.get("status").and_then(Value::as_u64).unwrap_or(200) as u16;
                let body = if let Some(j) = r.get("json") {
                    self.eval(j)?.to_string().into_bytes()
                } else if let Some(Value::String(text)) = r.get("body") {
                    self.templates(text)?.into_bytes()
                } else if let Some(Value::Array(names)) = r.get("jwks") {
                    let names: Vec<&str> = names.iter().filter_map(Value::as_str).collect();
                    self.fixtures.jwks(&names)?.to_string().into_bytes()
                } else {
                    Vec::new()
                };
                Reply::Response { status, body }
            }
            _ => return Err(format!("bad reply: {spec}")),
        };
        Ok(CallReply { purpose, reply })
    }
}

fn repo_file(rel: &str) -> Result<Value, String> {
    let path = crate::repo_root().join(rel);
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// `policies/erpnet.json` with the test issuer (inline fixture keys) in place
/// of the real one; `$jwks:` expressions not yet expanded.
fn erpnet_test_policy() -> Result<Value, String> {
    let mut base = repo_file("policies/erpnet.json")?;
    merge_patch(
        &mut base,
        &repo_file("tests/vectors/policies/test-issuers.json")?,
    );
    Ok(base)
}

/// The corpus's default policy as JSON text, ready to compile.
pub fn test_policy(fixtures: &Fixtures) -> Result<String, String> {
    let ctx = Ctx {
        fixtures,
        now: DEFAULT_NOW,
        tokens: BTreeMap::new(),
    };
    Ok(ctx.eval(&erpnet_test_policy()?)?.to_string())
}

/// A DPoP proof (RFC 9449 §4.2) signed by the named fixture key: the
/// key's proof header with `header_patch` merged in, then these claims.
pub fn dpop_proof(
    fixtures: &Fixtures,
    key: &str,
    claims: &Value,
    header_patch: &Value,
) -> Result<String, String> {
    let mut header = fixtures.dpop_header(key)?;
    merge_patch(&mut header, header_patch);
    fixtures.sign_compact(key, &header, claims)
}

/// A claims preset (`service` or `user`) with times relative to `now`.
pub fn preset_claims(fixtures: &Fixtures, preset: &str, now: u64) -> Result<Value, String> {
    let ctx = Ctx {
        fixtures,
        now,
        tokens: BTreeMap::new(),
    };
    ctx.eval(&ctx.claims_preset(preset)?)
}

impl Vector {
    /// Builds the policy, mints the tokens and expands every template.
    pub fn prepare(&self, fixtures: &Fixtures) -> Result<PreparedVector, String> {
        let now = self.now.unwrap_or(DEFAULT_NOW);
        let mut ctx = Ctx {
            fixtures,
            now,
            tokens: BTreeMap::new(),
        };
        for (name, spec) in &self.tokens {
            let token = ctx
                .mint(spec)
                .map_err(|e| format!("{}: token {name}: {e}", self.name))?;
            ctx.tokens.insert(name.clone(), token);
        }
        for (name, spec) in &self.proofs {
            let proof = ctx
                .proof(&format!("{}/{name}", self.name), spec)
                .map_err(|e| format!("{}: proof {name}: {e}", self.name))?;
            if ctx.tokens.insert(name.clone(), proof).is_some() {
                return Err(format!("{}: proof {name} shadows a token", self.name));
            }
        }
        let mut policy = match &self.policy {
            None => {
                let mut base = repo_file("policies/erpnet.json")?;
                merge_patch(
                    &mut base,
                    &repo_file("tests/vectors/policies/test-issuers.json")?,
                );
                base
            }
            Some(Value::String(file)) => repo_file(file)?,
            Some(inline) => inline.clone(),
        };
        if let Some(patch) = &self.policy_patch {
            merge_patch(&mut policy, patch);
        }
        let policy_json = ctx
            .eval(&policy)
            .map_err(|e| format!("{}: policy: {e}", self.name))?
            .to_string();
        let mut steps = Vec::with_capacity(self.steps.len());
        for step in &self.steps {
            let mut headers = Vec::with_capacity(step.request.headers.len());
            for (name, value) in &step.request.headers {
                let bytes = match value {
                    Value::String(s) => ctx.templates(s)?.into_bytes(),
                    Value::Object(o) => {
                        let h = o
                            .get("hex")
                            .and_then(Value::as_str)
                            .ok_or("header object needs hex")?;
                        hex::decode(h).map_err(|e| e.to_string())?
                    }
                    _ => return Err(format!("{}: bad header value", self.name)),
                };
                headers.push((name.clone(), bytes));
            }
            steps.push(PreparedStep {
                now_ms: (now + step.at) * 1000 + step.at_ms,
                method: step.request.method.clone().unwrap_or_else(|| "GET".into()),
                path: ctx.templates(&step.request.path)?,
                headers,
                body: step
                    .request
                    .body
                    .as_deref()
                    .map(|b| ctx.templates(b))
                    .transpose()?,
                calls: step
                    .calls
                    .iter()
                    .map(|c| ctx.reply(c))
                    .collect::<Result<_, _>>()?,
                background: step
                    .background
                    .iter()
                    .map(|c| ctx.reply(c))
                    .collect::<Result<_, _>>()?,
                expect: step.expect.clone(),
            });
        }
        Ok(PreparedVector {
            name: self.name.clone(),
            policy_json,
            host_crypto: self.host_crypto,
            dpop_nonce_key: self.dpop_nonce_key.clone(),
            steps,
        })
    }
}
