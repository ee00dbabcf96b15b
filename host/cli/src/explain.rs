//! `erpgate explain`: one request through the native core, with the trace
//! of how it was decided. The decision is the engine's own (the same code
//! the filter and the worker run); the trace around it re-reads the policy
//! and the token to say which route matched and why the others did not,
//! and which claim or header of the token failed.

use std::fmt::Write as _;

use erpgate::credential::{self, Credential};
use erpgate::dpop::NonceKey;
use erpgate::request::{normalized_path, path_is_canonical};
use erpgate::{
    Decision, DecisionLog, Engine, Outcome, Policy, Purpose, Request, State, Step, Time,
};
use serde_json::Value;

/// A request to explain.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExplainRequest {
    /// HTTP method.
    pub method: String,
    /// Path and query.
    pub path: String,
    /// Headers, in order.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The body, if any.
    pub body: Option<Vec<u8>>,
    /// `scheme://authority` the request was sent to (what a DPoP proof's
    /// `htu` names); without it, `:scheme`/`:authority` or `Host` among the
    /// headers.
    pub origin: Option<String>,
}

impl ExplainRequest {
    /// Reads a `curl` command line: `-X`, `-H`, `-u`, `-d` (and its
    /// `--data-*` forms), `--oauth2-bearer` and the URL; `-i`, `-s`, `-v`,
    /// `-k`, `-L` and the like are ignored. Anything else is an error that
    /// names the option.
    pub fn from_curl(line: &str) -> Result<Self, String> {
        let words = shlex::split(line).ok_or("the command line has an unclosed quote")?;
        let mut words = words.into_iter().peekable();
        if words.peek().is_some_and(|w| w == "curl") {
            words.next();
        }
        let mut request = ExplainRequest::default();
        let mut method = None;
        let mut url = None;
        while let Some(word) = words.next() {
            let mut value = |name: &str| words.next().ok_or(format!("{name} needs a value"));
            match word.as_str() {
                "-X" | "--request" => method = Some(value(&word)?),
                "-H" | "--header" => {
                    let header = value(&word)?;
                    let (name, v) = header
                        .split_once(':')
                        .ok_or(format!("header `{header}` has no `:`"))?;
                    request
                        .headers
                        .push((name.trim().to_owned(), v.trim().as_bytes().to_vec()));
                }
                "-u" | "--user" => {
                    use base64::Engine as _;
                    let credentials = value(&word)?;
                    let encoded = base64::engine::general_purpose::STANDARD.encode(credentials);
                    request.headers.push((
                        "authorization".into(),
                        format!("Basic {encoded}").into_bytes(),
                    ));
                }
                "--oauth2-bearer" => {
                    let token = value(&word)?;
                    request.headers.push((
                        "authorization".into(),
                        format!("Bearer {token}").into_bytes(),
                    ));
                }
                "-d" | "--data" | "--data-raw" | "--data-binary" | "--data-ascii" => {
                    request.body = Some(value(&word)?.into_bytes());
                }
                "-i" | "-s" | "-S" | "-v" | "-k" | "-L" | "--include" | "--silent"
                | "--show-error" | "--verbose" | "--insecure" | "--location" | "--compressed" => {}
                other if other.starts_with('-') => {
                    return Err(format!("curl option {other} is not understood here"));
                }
                _ if url.is_none() => url = Some(word),
                _ => return Err(format!("a second URL: {word}")),
            }
        }
        let url = url.ok_or("no URL")?;
        request.path = path_of(&url);
        request.origin = url.split_once("://").map(|(scheme, rest)| {
            let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
            format!("{scheme}://{authority}")
        });
        request.method = method.unwrap_or_else(|| {
            if request.body.is_some() {
                "POST".into()
            } else {
                "GET".into()
            }
        });
        Ok(request)
    }
}

/// The path and query of a URL (or the text itself when it is a path).
fn path_of(url: &str) -> String {
    let rest = url
        .split_once("://")
        .map_or(url, |(_, rest)| rest.find('/').map_or("/", |i| &rest[i..]));
    let rest = rest.split('#').next().unwrap_or(rest);
    if rest.starts_with('/') {
        rest.to_owned()
    } else {
        format!("/{rest}")
    }
}

/// Replies for the calls the engine may ask for.
#[derive(Debug, Clone, Default)]
pub struct Replies {
    /// The JWKS document, for any JWKS fetch.
    pub jwks: Option<Vec<u8>>,
    /// The introspection reply, for an introspection call.
    pub introspection: Option<Vec<u8>>,
}

/// What explaining one request found.
#[derive(Debug)]
pub struct Explanation {
    /// The engine's decision.
    pub decision: Decision,
    /// The calls the engine asked for, in order.
    pub calls: Vec<&'static str>,
    /// The trace, one line per finding.
    pub trace: Vec<String>,
}

impl Explanation {
    /// The reason code (also of a shadow-mode denial), `allow`, or
    /// `protected_resource_metadata` for the metadata answer.
    pub fn verdict(&self) -> &'static str {
        match DecisionLog::of(&self.decision, Time::default(), None) {
            Some(record) => record.reason.unwrap_or("allow"),
            None => erpgate::decision::METADATA_ANSWER,
        }
    }
}

/// An engine and its state: one `explain` at a time, remembering across
/// calls as a filter would (the corpus test replays whole vectors).
pub struct Explainer {
    /// The engine.
    pub engine: Engine,
    /// Its state.
    pub state: State,
}

impl Explainer {
    /// An explainer for a policy, with the key DPoP server nonces are
    /// minted under where the policy asks for them (the plugin
    /// configuration's `dpop_nonce_key`); without one, its nonces are its
    /// own (a random key), and any proof's nonce is refused.
    pub fn new(policy: Policy, nonce_key: Option<NonceKey>) -> Self {
        let mut engine = Engine::new(policy);
        let random = || NonceKey::new(&rand::random::<[u8; 32]>());
        if let Some(key) = nonce_key.or_else(|| engine.lacks_nonce_key().then(random).flatten()) {
            engine = engine.with_dpop_nonce_key(key);
        }
        let state = engine.new_state(rand::random());
        Self { engine, state }
    }

    /// Decides `request` at `now` with `replies` answering its calls, and
    /// traces the decision.
    pub fn explain(
        &mut self,
        request: &ExplainRequest,
        replies: &mut dyn FnMut(Purpose) -> Outcome,
        now: Time,
    ) -> Explanation {
        let headers: Vec<(&str, &[u8])> = request
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_slice()))
            .collect();
        let mut req = Request::new(&request.method, &request.path, &headers);
        if let Some((scheme, authority)) =
            request.origin.as_deref().and_then(|o| o.split_once("://"))
        {
            req = req.with_target(scheme, authority);
        }
        if let Some(limit) = self.engine.body_limit(&req) {
            let body = request.body.as_deref().unwrap_or_default();
            req = req.with_body(body.get(..limit + 1).unwrap_or(body));
        }
        let mut trace = Vec::new();
        trace_routes(self.engine.policy(), &req, &mut trace);
        let token = trace_credential(&req, &mut trace);
        let mut calls = Vec::new();
        let mut step = self.engine.start(&req, now, &mut self.state);
        let decision = loop {
            step = match step {
                Step::Decided(decision) => break decision,
                Step::Call { call, pending } => {
                    calls.push(call.purpose.name());
                    let outcome = replies(call.purpose);
                    self.engine.resume(pending, outcome, now, &mut self.state)
                }
                // No host crypto or single flight here: neither happens.
                Step::Verify { pending, .. } | Step::Wait { pending, .. } => {
                    self.engine
                        .resume(pending, Outcome::Failed, now, &mut self.state)
                }
            };
        };
        for call in &calls {
            trace.push(format!(
                "call: {call} (answered from the given reply, or failed)"
            ));
        }
        let mut explanation = Explanation {
            decision,
            calls,
            trace,
        };
        if let Some(token) = token {
            trace_token(&token, explanation.verdict(), now, &mut explanation.trace);
        }
        explanation
    }
}

/// Which route matched, and why every earlier one did not.
fn trace_routes(policy: &Policy, request: &Request<'_>, trace: &mut Vec<String>) {
    let raw = request.path_only();
    let Some(normalized) = normalized_path(raw) else {
        trace.push(format!(
            "path {raw}: refused before any route (ambiguous encoding)"
        ));
        return;
    };
    if normalized != raw {
        trace.push(format!("path {raw} is matched as {normalized}"));
    }
    if !path_is_canonical(&normalized) {
        trace.push("path has dot-segments or empty segments: refused as ambiguous".into());
    }
    let matched = policy
        .match_route(request.method, &normalized)
        .map(|(i, _)| i);
    for (i, route) in policy.routes.iter().enumerate() {
        let line = if Some(i) == matched {
            format!("route {}: MATCHED", route.name)
        } else if matched.is_some_and(|m| i > m) {
            format!("route {}: not tried (the first match wins)", route.name)
        } else if !route.allows_method(request.method) {
            format!(
                "route {}: method {} is not one of {}",
                route.name,
                request.method,
                route.methods.as_deref().unwrap_or_default().join(", ")
            )
        } else {
            format!("route {}: path does not match {:?}", route.name, route.path)
        };
        trace.push(line);
    }
    if matched.is_none() {
        trace.push(format!(
            "no route matched: the policy's default ({:?}) applies",
            policy.default
        ));
    }
}

/// Which credential the request carries; a JWT's text, to decode.
fn trace_credential(request: &Request<'_>, trace: &mut Vec<String>) -> Option<String> {
    match credential::extract(request) {
        Ok(None) => {
            trace.push("credential: none".into());
            None
        }
        Err(e) => {
            trace.push(format!("credential: refused ({e})"));
            None
        }
        Ok(Some(Credential::Jwt(token))) => {
            trace.push("credential: a JWT (Bearer)".into());
            Some(token.to_owned())
        }
        Ok(Some(Credential::Reference(..))) => {
            trace.push("credential: a reference token (enrt_…), introspected".into());
            None
        }
        Ok(Some(Credential::Dpop(token))) => {
            trace.push("credential: a DPoP-bound token, with its proof (DPoP header)".into());
            (!credential::is_reference_token(token)).then(|| token.to_owned())
        }
        Ok(Some(Credential::Basic(_))) => {
            trace.push("credential: HTTP Basic (legacy)".into());
            None
        }
        Ok(Some(Credential::ErpSession(_))) => {
            trace.push("credential: ErpSession (legacy)".into());
            None
        }
    }
}

/// The header or claim a reason code is about.
fn failing_member(code: &str) -> Option<(&'static str, &'static str)> {
    Some(match code {
        "expired" => ("claims", "exp"),
        "not_yet_valid" => ("claims", "nbf"),
        "issued_in_future" | "token_too_old" => ("claims", "iat"),
        "wrong_audience" => ("claims", "aud"),
        "unknown_issuer" => ("claims", "iss"),
        "revoked" => ("claims", "jti"),
        "wrong_typ" => ("header", "typ"),
        "alg_none" | "unsupported_alg" | "alg_not_allowed" | "alg_mismatch" => ("header", "alg"),
        "unknown_kid" | "kid_required" | "invalid_kid" => ("header", "kid"),
        "unknown_crit" => ("header", "crit"),
        "nested_jwt" => ("header", "cty"),
        "bound_as_bearer" | "not_bound" | "unsupported_cnf" => ("claims", "cnf"),
        _ => return None,
    })
}

/// The token's decoded header and claims, the failing member marked.
fn trace_token(token: &str, verdict: &str, now: Time, trace: &mut Vec<String>) {
    let mut parts = token.split('.');
    let decode = |part: Option<&str>| -> Option<Value> {
        serde_json::from_slice(&erpgate::decode_b64url(part?)?).ok()
    };
    let (header, claims) = (decode(parts.next()), decode(parts.next()));
    let marked = failing_member(verdict);
    for (label, value) in [("header", header), ("claims", claims)] {
        let Some(Value::Object(map)) = value else {
            trace.push(format!("token {label}: not a JSON object"));
            continue;
        };
        trace.push(format!("token {label}:"));
        for (name, v) in &map {
            let mut line = format!("  {name}: {v}");
            if marked.is_some_and(|(l, n)| l == label && n == name) {
                let _ = write!(line, "   <-- {verdict}");
                if let Some(at) = v.as_f64().filter(|_| label == "claims") {
                    let _ = write!(
                        line,
                        " (now {}; {:+} s)",
                        now.secs(),
                        at - now.secs() as f64
                    );
                }
            }
            trace.push(line);
        }
        if let Some((l, name)) = marked
            && l == label
            && !map.contains_key(name)
        {
            trace.push(format!("  {name}: (absent)   <-- {verdict}"));
        }
    }
    if verdict == "bad_signature" {
        trace.push("signature: does not verify with the issuer's key   <-- bad_signature".into());
    }
}

/// The whole report, as `erpgate explain` prints it.
pub fn render(explanation: &Explanation, engine: &Engine, now: Time) -> String {
    let mut out = String::new();
    match &explanation.decision {
        Decision::Allow(allow) if allow.would_deny.is_none() => {
            let _ = writeln!(out, "decision: ALLOW (200)");
            for (name, value) in allow.headers_to_set() {
                let _ = writeln!(out, "  sets {name}: {value}");
            }
        }
        Decision::Allow(allow) => {
            if let Some(denial) = &allow.would_deny {
                let _ = writeln!(
                    out,
                    "decision: ALLOW in shadow mode; enforcement would DENY {} ({})",
                    denial.reason.status(),
                    denial.reason.code()
                );
            }
        }
        Decision::Deny(denial) => {
            let response = denial.response(engine.policy());
            let _ = writeln!(
                out,
                "decision: DENY {} ({}): {}",
                response.status,
                denial.reason.code(),
                denial.reason.description()
            );
            for (name, value) in &response.headers {
                if name == "www-authenticate" {
                    let _ = writeln!(out, "  {name}: {value}");
                }
            }
        }
        Decision::Answer(response) => {
            let _ = writeln!(
                out,
                "decision: ANSWER {} (the protected-resource metadata, RFC 9728)",
                response.status
            );
        }
    }
    out.push_str("trace:\n");
    for line in &explanation.trace {
        let _ = writeln!(out, "  {line}");
    }
    match DecisionLog::of(&explanation.decision, now, None) {
        Some(record) => {
            let _ = writeln!(out, "decision log: {}", record.line());
        }
        None => out.push_str("decision log: none (not an authorization decision)\n"),
    }
    out
}
