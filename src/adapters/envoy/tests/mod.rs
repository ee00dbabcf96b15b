//! The filter's logic driven natively through a mock [`Host`] that records
//! every hostcall: single flight, metrics, client authentication, fail-closed.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::time::Duration;

use super::config::{self, ConfigError};
use super::host::{Host, LogLevel, STATUS_NOT_FOUND};
use super::plugin::{Background, Flow, Plugin, Stream, fail_closed};
use crate::engine::Outcome;
use crate::introspection::client_authorization;
use crate::time::Time;

/// A client secret holding every character form-encoding changes.
const SECRET: &str = "s%e+c:r et";
/// `client_authorization("edge", SECRET)`, spelled out: the JS adapter's
/// test (`tests/testkit/tests/client_authorization.rs`) expects the same.
const AUTHORIZATION: &str = "Basic ZWRnZTpzJTI1ZSUyQmMlM0FyK2V0";

const ROOT: u32 = 1;
const NOW_S: u64 = 1_766_505_200;
const TOKEN: &str = "enrt_0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF";

/// A hostcall the mock saw, with the context it acted on.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Event {
    Dispatch {
        context: u32,
        token: u32,
        cluster: String,
        headers: Vec<(String, String)>,
    },
    Respond {
        context: u32,
        status: u16,
        headers: Vec<(String, String)>,
        body: String,
    },
    Resume {
        context: u32,
    },
    SetHeader {
        name: String,
    },
}

#[derive(Default)]
struct MockHost {
    effective: Cell<u32>,
    /// Streams that ended: the host refuses to make them effective.
    gone: RefCell<HashSet<u32>>,
    next_token: Cell<u32>,
    refuse_dispatch: Cell<bool>,
    events: RefCell<Vec<Event>>,
    /// Every `define_counter` call, in order.
    defined: RefCell<Vec<String>>,
    /// Counter values by id.
    counters: RefCell<HashMap<u32, u64>>,
    /// Every log line.
    logged: RefCell<Vec<String>>,
}

impl MockHost {
    fn enter(&self, context: u32) {
        self.effective.set(context);
    }

    fn events(&self) -> Vec<Event> {
        self.events.borrow().clone()
    }

    fn dispatches(&self) -> Vec<Event> {
        self.events()
            .into_iter()
            .filter(|e| matches!(e, Event::Dispatch { .. }))
            .collect()
    }

    fn resumed(&self) -> Vec<u32> {
        self.events()
            .into_iter()
            .filter_map(|e| match e {
                Event::Resume { context } => Some(context),
                _ => None,
            })
            .collect()
    }

    fn responded(&self) -> Vec<(u32, u16)> {
        self.events()
            .into_iter()
            .filter_map(|e| match e {
                Event::Respond {
                    context, status, ..
                } => Some((context, status)),
                _ => None,
            })
            .collect()
    }

    fn counter(&self, name: &str) -> u64 {
        let defined = self.defined.borrow();
        let id = defined.iter().position(|n| n == name);
        id.map_or(0, |id| {
            self.counters
                .borrow()
                .get(&u32::try_from(id).unwrap())
                .copied()
                .unwrap_or(0)
        })
    }
}

impl Host for MockHost {
    fn now(&self) -> Time {
        Time::from_secs(NOW_S)
    }

    fn random_secret(&self) -> Option<[u8; 16]> {
        Some([7; 16])
    }

    fn now_ns(&self) -> u64 {
        NOW_S * 1_000_000_000
    }

    fn log(&self, _level: LogLevel, message: &str) {
        self.logged.borrow_mut().push(message.to_owned());
    }

    fn define_counter(&self, name: &str) -> Option<u32> {
        let mut defined = self.defined.borrow_mut();
        defined.push(name.to_owned());
        u32::try_from(defined.len() - 1).ok()
    }

    fn define_gauge(&self, name: &str) -> Option<u32> {
        self.define_counter(name)
    }

    fn set_gauge(&self, id: u32, value: u64) {
        self.counters.borrow_mut().insert(id, value);
    }

    fn increment_counter(&self, id: u32, by: u64) {
        assert!(by > 0, "no empty increments");
        *self.counters.borrow_mut().entry(id).or_default() += by;
    }

    fn dispatch_http_call(
        &self,
        cluster: &str,
        headers: &[(&str, &str)],
        _body: Option<&[u8]>,
        _timeout: Duration,
    ) -> Option<u32> {
        if self.refuse_dispatch.get() {
            return None;
        }
        let token = self.next_token.get() + 1;
        self.next_token.set(token);
        self.events.borrow_mut().push(Event::Dispatch {
            context: self.effective.get(),
            token,
            cluster: cluster.to_owned(),
            headers: headers
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect(),
        });
        Some(token)
    }

    fn call_foreign_function(&self, _name: &str, _args: &[u8]) -> Result<Vec<u8>, u32> {
        Err(STATUS_NOT_FOUND)
    }

    fn set_effective_context(&self, context_id: u32) -> bool {
        if self.gone.borrow().contains(&context_id) {
            return false;
        }
        self.effective.set(context_id);
        true
    }

    fn set_request_header(&self, name: &str, _value: Option<&str>) {
        self.events.borrow_mut().push(Event::SetHeader {
            name: name.to_owned(),
        });
    }

    fn send_http_response(&self, status: u16, headers: &[(&str, &str)], body: &[u8]) {
        self.events.borrow_mut().push(Event::Respond {
            context: self.effective.get(),
            status,
            headers: headers
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect(),
            body: String::from_utf8(body.to_vec()).unwrap(),
        });
    }

    fn resume_http_request(&self) {
        self.events.borrow_mut().push(Event::Resume {
            context: self.effective.get(),
        });
    }
}

fn config_json(credentials: bool) -> String {
    let policy: serde_json::Value =
        serde_json::from_str(include_str!("../../../../policies/erpnet.json")).unwrap();
    let mut config = serde_json::json!({
        "policy": policy,
        "clusters": { "identity": "identity_cluster" },
    });
    if credentials {
        config["client_credentials"] =
            serde_json::json!({ "client_id": "edge", "client_secret": SECRET });
    }
    config.to_string()
}

fn plugin() -> Plugin<MockHost> {
    let config = config::parse(config_json(true).as_bytes()).unwrap();
    Plugin::new(MockHost::default(), config, None)
}

fn request(token: &str) -> Vec<(String, Vec<u8>)> {
    [
        (":method", "GET"),
        (":path", "/api/domain/odata/Crm_Customers"),
        (":authority", "erp.example"),
        ("authorization", &format!("Bearer {token}")),
    ]
    .iter()
    .map(|(n, v)| ((*n).to_owned(), v.as_bytes().to_vec()))
    .collect()
}

fn active_reply() -> Outcome {
    let body = serde_json::json!({
        "active": true,
        "scope": "read",
        "sub": "alice",
        "client_id": "app",
        "erp_token_kind": "pat",
        "exp": NOW_S + 3600,
    });
    Outcome::Response {
        status: 200,
        body: body.to_string().into_bytes(),
    }
}

/// Starts a stream on the plugin, as Envoy would with `context` effective.
fn start(plugin: &Plugin<MockHost>, context: u32, token: &str) -> (Stream, Flow) {
    plugin.host.enter(context);
    let mut stream = Stream::new(context);
    let flow = stream.on_request_headers(plugin, &request(token), true);
    (stream, flow)
}

fn dispatched_token(event: &Event) -> u32 {
    match event {
        Event::Dispatch { token, .. } => *token,
        other => panic!("not a dispatch: {other:?}"),
    }
}

#[test]
fn every_stream_parked_on_a_flight_is_resumed_with_its_outcome() {
    let plugin = plugin();
    let (mut leader, flow) = start(&plugin, 10, TOKEN);
    assert_eq!(flow, Flow::Pause);
    let (_b, flow_b) = start(&plugin, 11, TOKEN);
    let (_c, flow_c) = start(&plugin, 12, TOKEN);
    assert_eq!((flow_b, flow_c), (Flow::Pause, Flow::Pause));
    let dispatches = plugin.host.dispatches();
    assert_eq!(dispatches.len(), 1, "one introspection for three streams");
    assert_eq!(plugin.parked_streams(), 2);
    assert_eq!(plugin.stats().flights_joined, 2);

    plugin.host.enter(10);
    leader.on_call_response(&plugin, dispatched_token(&dispatches[0]), active_reply);
    assert_eq!(
        plugin.host.resumed(),
        [10, 11, 12],
        "leader, then followers"
    );
    assert!(plugin.host.responded().is_empty(), "nobody denied");
    assert_eq!(plugin.parked_streams(), 0);
    assert_eq!(
        plugin.host.effective.get(),
        10,
        "the leader is effective again"
    );
    assert_eq!(plugin.host.dispatches().len(), 1);
}

#[test]
fn a_timed_out_flight_answers_every_follower_and_skips_ended_streams() {
    let plugin = plugin();
    let (mut leader, _) = start(&plugin, 10, TOKEN);
    let (_b, _) = start(&plugin, 11, TOKEN);
    let (_c, _) = start(&plugin, 12, TOKEN);
    // Stream 12 was reset without Envoy telling the filter yet.
    plugin.host.gone.borrow_mut().insert(12);
    let token = dispatched_token(&plugin.host.dispatches()[0]);
    plugin.host.enter(10);
    leader.on_call_response(&plugin, token, || Outcome::Timeout);
    assert_eq!(plugin.host.responded(), [(10, 503), (11, 503)]);
    assert!(plugin.host.resumed().is_empty());
    assert_eq!(plugin.parked_streams(), 0);
    assert_eq!(plugin.stats().introspection_failures, 1);
}

#[test]
fn an_abandoned_leader_fails_its_followers_and_frees_the_flight() {
    let plugin = plugin();
    let (mut leader, _) = start(&plugin, 10, TOKEN);
    let (_b, _) = start(&plugin, 11, TOKEN);
    let (mut c, _) = start(&plugin, 12, TOKEN);
    // A parked stream that ends leaves its flight.
    c.on_done(&plugin);
    assert_eq!(plugin.parked_streams(), 1);
    // The leader's stream ends: its call will never report back.
    plugin.host.enter(10);
    leader.on_done(&plugin);
    assert_eq!(plugin.host.responded(), [(11, 503)]);
    assert_eq!(plugin.parked_streams(), 0);
    // A call that arrives for the ended stream anyway is ignored.
    leader.on_call_response(&plugin, 1, || panic!("not read"));
    // The flight is free: the next request introspects again.
    let (_d, flow) = start(&plugin, 13, TOKEN);
    assert_eq!(flow, Flow::Pause);
    assert_eq!(plugin.host.dispatches().len(), 2);
}

#[test]
fn a_refused_call_fails_closed_through_the_engine() {
    let plugin = plugin();
    plugin.host.refuse_dispatch.set(true);
    let (_a, flow) = start(&plugin, 10, TOKEN);
    assert_eq!(flow, Flow::Pause);
    assert_eq!(plugin.host.responded(), [(10, 503)]);
    assert_eq!(plugin.parked_streams(), 0);
    // The flight ended with the failure: the next stream leads its own.
    plugin.host.refuse_dispatch.set(false);
    let (_b, _) = start(&plugin, 11, TOKEN);
    assert_eq!(plugin.host.dispatches().len(), 1);
}

#[test]
fn calls_that_need_client_auth_carry_the_core_authorization() {
    assert_eq!(client_authorization("edge", SECRET), AUTHORIZATION);
    let plugin = plugin();
    let _ = start(&plugin, 10, TOKEN);
    plugin.host.enter(ROOT);
    Background::new(ROOT).on_tick(&plugin);
    let mut seen = HashMap::new();
    for event in plugin.host.dispatches() {
        let Event::Dispatch {
            cluster, headers, ..
        } = event
        else {
            unreachable!()
        };
        assert_eq!(cluster, "identity_cluster");
        let path = headers
            .iter()
            .find(|(n, _)| n == ":path")
            .unwrap()
            .1
            .clone();
        let auth = headers
            .iter()
            .find(|(n, _)| n == "authorization")
            .map(|(_, v)| v.clone());
        seen.insert(path, auth);
    }
    let auth = Some(AUTHORIZATION.to_owned());
    assert_eq!(seen["/id/connect/introspect"], auth);
    assert_eq!(
        seen.iter()
            .find(|(p, _)| p.starts_with("/id/connect/revocation/feed"))
            .unwrap()
            .1,
        &auth
    );
    assert_eq!(seen["/id/.well-known/openid-configuration/jwks"], None);
}

#[test]
fn without_client_credentials_introspection_fails_closed() {
    let config = config::parse(config_json(false).as_bytes()).unwrap();
    let plugin = Plugin::new(MockHost::default(), config, None);
    let (_a, _) = start(&plugin, 10, TOKEN);
    assert!(plugin.host.dispatches().is_empty());
    assert_eq!(plugin.host.responded(), [(10, 503)]);
}

#[test]
fn metrics_define_each_name_once_and_push_what_grew() {
    let plugin = plugin();
    let mut root = Background::new(ROOT);
    plugin.host.enter(ROOT);
    root.on_tick(&plugin);
    // The feed poll fails; the JWKS fetch is still out.
    let feed = plugin
        .host
        .dispatches()
        .into_iter()
        .find(|e| matches!(e, Event::Dispatch { headers, .. } if headers.iter().any(|(n, v)| n == ":path" && v.contains("revocation"))))
        .unwrap();
    root.on_call_response(&plugin, dispatched_token(&feed), || Outcome::Failed);
    let (mut a, _) = start(&plugin, 10, TOKEN);
    plugin.host.enter(10);
    a.on_call_response(&plugin, 3, active_reply);
    let (_b, flow) = start(&plugin, 11, TOKEN);
    assert_eq!(flow, Flow::Continue, "served from the cache");
    let (_c, _) = start(&plugin, 12, "not a token");
    plugin.host.enter(ROOT);
    root.on_tick(&plugin);
    root.on_tick(&plugin);

    let defined = plugin.host.defined.borrow().clone();
    let unique: HashSet<_> = defined.iter().collect();
    assert_eq!(
        unique.len(),
        defined.len(),
        "each name defined once: {defined:?}"
    );
    let stats = plugin.stats();
    for (name, value) in stats.counters() {
        assert!(defined.iter().any(|n| n == name), "{name} is exported");
        assert_eq!(plugin.host.counter(name), value, "{name}");
    }
    assert_eq!(plugin.host.counter("erpgate.feed.failures"), 1);
    assert_eq!(plugin.host.counter("erpgate.introspection.calls"), 1);
    assert_eq!(plugin.host.counter("erpgate.introspection_cache.hits"), 1);
    assert_eq!(plugin.host.counter("erpgate.decisions.allow.verified"), 1);
    assert_eq!(plugin.host.counter("erpgate.decisions.allow.cached"), 1);
    assert_eq!(
        plugin
            .host
            .counter("erpgate.decisions.deny.malformed_authorization")
            + plugin
                .host
                .counter("erpgate.decisions.deny.malformed_token")
            + plugin
                .host
                .counter("erpgate.decisions.deny.unsupported_scheme"),
        1
    );
}

#[test]
fn fail_closed_is_the_core_503() {
    let host = MockHost::default();
    host.enter(7);
    fail_closed(&host);
    let Event::Respond {
        context,
        status,
        headers,
        body,
    } = host.events()[0].clone()
    else {
        unreachable!()
    };
    assert_eq!((context, status), (7, 503));
    assert_eq!(body, r#"{"error":"temporarily_unavailable"}"#);
    assert_eq!(
        headers,
        [
            ("content-type".to_owned(), "application/json".to_owned()),
            ("cache-control".to_owned(), "no-store".to_owned()),
        ]
    );
    // A request without `:path` cannot be decided: the same answer.
    let plugin = plugin();
    plugin.host.enter(9);
    let mut stream = Stream::new(9);
    let flow = stream.on_request_headers(&plugin, &[(":method".into(), b"GET".to_vec())], true);
    assert_eq!(flow, Flow::Pause);
    let Event::Respond {
        headers,
        status,
        body,
        ..
    } = host.events()[0].clone()
    else {
        unreachable!()
    };
    assert_eq!(
        plugin.host.events(),
        [Event::Respond {
            context: 9,
            status,
            headers,
            body
        }]
    );
}

#[test]
fn configuration_errors_name_the_field() {
    let parse = |text: &str| config::parse(text.as_bytes()).err();
    let field = |e: Option<ConfigError>| e.map(|e| e.field);
    let mut config: serde_json::Value = serde_json::from_str(&config_json(true)).unwrap();
    config["tick_ms"] = 5.into();
    assert_eq!(field(parse(&config.to_string())), Some("tick_ms".into()));
    config["tick_ms"] = 250.into();
    config["client_credentials"]["client_id"] = "a:b".into();
    assert_eq!(
        field(parse(&config.to_string())),
        Some("client_credentials.client_id".into())
    );
    config["client_credentials"]["client_id"] = "edge".into();
    config["extra"] = true.into();
    assert!(
        parse(&config.to_string()).is_some(),
        "unknown fields refused"
    );
    config.as_object_mut().unwrap().remove("extra");
    config["policy"]["realm"] = 7.into();
    assert!(
        field(parse(&config.to_string()))
            .unwrap()
            .starts_with("policy.")
    );
    config["policy"]["realm"] = "ERP.net".into();
    // Server nonces need a key every VM shares; a short or garbled one is refused.
    config["policy"]["dpop"] = serde_json::json!({ "nonces": true });
    assert_eq!(
        field(parse(&config.to_string())),
        Some("dpop_nonce_key".into())
    );
    for bad in ["c2hvcnQ", "not base64!", ""] {
        config["dpop_nonce_key"] = bad.into();
        assert_eq!(
            field(parse(&config.to_string())),
            Some("dpop_nonce_key".into())
        );
    }
    config["dpop_nonce_key"] = crate::json::encode_b64url(&[7; 32]).into();
    assert!(
        config::parse(config.to_string().as_bytes())
            .unwrap()
            .nonce_key
            .is_some()
    );
    let ok = config::parse(config_json(true).as_bytes()).unwrap();
    assert_eq!(ok.tick, Duration::from_millis(250));
    assert_eq!(ok.client_authorization.as_deref(), Some(AUTHORIZATION));
}

/// A shared-data key's value and version.
type Versioned = (Vec<u8>, u32);

/// Envoy shared data as two plugins on one VM id see it.
#[derive(Clone, Default)]
struct SharedData(std::sync::Arc<std::sync::Mutex<HashMap<String, Versioned>>>);

impl crate::shared_cache::SharedCache for SharedData {
    fn get(&mut self, key: &str) -> Option<Versioned> {
        self.0.lock().unwrap().get(key).cloned()
    }

    fn set(&mut self, key: &str, value: &[u8], version: u32) -> bool {
        let mut data = self.0.lock().unwrap();
        let current = data.get(key).map_or(0, |(_, v)| *v);
        if version != 0 && version != current {
            return false;
        }
        data.insert(key.to_owned(), (value.to_vec(), current + 1));
        true
    }
}

fn plugin_on(shared: &SharedData, client_id: &str) -> Plugin<MockHost> {
    let mut config: serde_json::Value = serde_json::from_str(&config_json(true)).unwrap();
    config["client_credentials"]["client_id"] = client_id.into();
    let config = config::parse(config.to_string().as_bytes()).unwrap();
    Plugin::new(MockHost::default(), config, Some(Box::new(shared.clone())))
}

/// Two plugins with one policy on one VM id, introspecting as different
/// clients: the second never takes the first's verdict from shared data
/// (before, the namespace was the policy alone, and it did: no call, 200).
#[test]
fn plugins_that_introspect_as_different_clients_never_share_verdicts() {
    let shared = SharedData::default();
    let first = plugin_on(&shared, "edge");
    let (mut stream, flow) = start(&first, 10, TOKEN);
    assert_eq!(flow, Flow::Pause);
    let dispatched = first.host.dispatches();
    first.host.enter(10);
    stream.on_call_response(&first, dispatched_token(&dispatched[0]), active_reply);
    assert_eq!(first.host.resumed(), [10], "allowed");

    let same = plugin_on(&shared, "edge");
    let (_, flow) = start(&same, 20, TOKEN);
    assert_eq!(
        flow,
        Flow::Continue,
        "the same deployment shares the verdict"
    );
    assert!(same.host.dispatches().is_empty());

    let other = plugin_on(&shared, "other-edge");
    let (_, flow) = start(&other, 30, TOKEN);
    assert_eq!(flow, Flow::Pause, "another client asks for itself");
    assert_eq!(other.host.dispatches().len(), 1);
}

fn batch(body_follows: bool) -> Vec<(String, Vec<u8>)> {
    let mut headers = request(TOKEN);
    headers[0].1 = b"POST".to_vec();
    headers[1].1 = b"/api/domain/odata/$batch".to_vec();
    headers.push(("content-type".into(), b"application/json".to_vec()));
    if !body_follows {
        headers.push(("content-length".into(), b"0".to_vec()));
    }
    headers
}

/// A body chunk of a stream still undecided (its introspection in flight)
/// was released by the SDK's default `Continue`, which in Envoy also
/// releases the paused headers: a POST went upstream before its decision.
/// Chunks are now held until the stream is let go, and pass after.
#[test]
fn body_chunks_wait_for_the_decision() {
    let plugin = plugin();
    plugin.host.enter(10);
    let mut stream = Stream::new(10);
    let mut headers = request(TOKEN);
    headers[0].1 = b"POST".to_vec();
    let flow = stream.on_request_headers(&plugin, &headers, false);
    assert_eq!(flow, Flow::Pause, "introspection first");
    let read = |_: usize| -> Vec<u8> { panic!("a body the engine did not ask for") };
    assert_eq!(
        stream.on_request_body(&plugin, 10, false, read),
        Flow::Pause
    );
    let token = dispatched_token(&plugin.host.dispatches()[0]);
    let active_update = || {
        let body = serde_json::json!({
            "active": true, "scope": "update", "sub": "alice", "client_id": "app",
            "erp_token_kind": "pat", "exp": NOW_S + 3600,
        });
        Outcome::Response {
            status: 200,
            body: body.to_string().into_bytes(),
        }
    };
    stream.on_call_response(&plugin, token, active_update);
    assert_eq!(plugin.host.resumed(), [10]);
    assert_eq!(
        stream.on_request_body(&plugin, 20, true, read),
        Flow::Continue
    );
}

/// An OData `$batch` is decided on its inner requests: the filter holds the
/// headers, buffers the body and decides at its end; a read-only token may
/// not read `Systems_Security_Users` through it.
#[test]
fn a_batch_is_decided_on_its_body() {
    let plugin = plugin();
    // The PAT is already introspected: a read-only token, cached.
    let (mut first, _) = start(&plugin, 9, TOKEN);
    let token = dispatched_token(&plugin.host.dispatches()[0]);
    first.on_call_response(&plugin, token, active_reply);

    plugin.host.enter(10);
    let mut stream = Stream::new(10);
    assert_eq!(
        stream.on_request_headers(&plugin, &batch(true), false),
        Flow::Pause
    );
    let body = br#"{"requests":[{"id":"1","method":"GET","url":"Systems_Security_Users"}]}"#;
    let none = |_: usize| -> Vec<u8> { panic!("read before the end") };
    assert_eq!(
        stream.on_request_body(&plugin, 10, false, none),
        Flow::Pause
    );
    let flow = stream.on_request_body(&plugin, body.len(), true, |n| {
        body.get(..n).unwrap().to_vec()
    });
    assert_eq!(flow, Flow::Pause);
    let statuses: Vec<u16> = plugin
        .host
        .events()
        .into_iter()
        .filter_map(|e| match e {
            Event::Respond {
                context: 10,
                status,
                ..
            } => Some(status),
            _ => None,
        })
        .collect();
    assert_eq!(statuses, [403]);

    // The same batch reading customers goes on, body and all.
    plugin.host.enter(11);
    let mut ok = Stream::new(11);
    assert_eq!(
        ok.on_request_headers(&plugin, &batch(true), false),
        Flow::Pause
    );
    let body = br#"{"requests":[{"id":"1","method":"GET","url":"Crm_Customers"}]}"#;
    let flow = ok.on_request_body(&plugin, body.len(), true, |n| {
        body.get(..n).unwrap().to_vec()
    });
    assert_eq!(flow, Flow::Continue);
    // A $batch with no body at all is decided at once, as malformed.
    plugin.host.enter(12);
    let mut empty = Stream::new(12);
    assert_eq!(
        empty.on_request_headers(&plugin, &batch(false), true),
        Flow::Pause
    );
}

/// Shadow mode in the filter: a would-be denial lets the stream go on with
/// no header touched, counts as `decisions.shadow_deny.<reason>`, and is
/// logged; allows are logged one in `allow_every`.
#[test]
fn shadow_denials_pass_untouched_and_are_counted_and_logged() {
    let mut config: serde_json::Value = serde_json::from_str(&config_json(true)).unwrap();
    config["policy"]["enforce"] = false.into();
    config["decision_log"] = serde_json::json!({"level": "warn", "allow_every": 2});
    let config = config::parse(config.to_string().as_bytes()).unwrap();
    let plugin = Plugin::new(MockHost::default(), config, None);
    let (_a, flow) = start(&plugin, 10, "not a token");
    assert_eq!(flow, Flow::Continue, "shadow mode lets it through");
    assert!(plugin.host.responded().is_empty());
    assert!(
        !plugin
            .host
            .events()
            .iter()
            .any(|e| matches!(e, Event::SetHeader { .. })),
        "no header set or stripped"
    );
    let code = plugin
        .host
        .counter("erpgate.decisions.shadow_deny.malformed_token")
        + plugin
            .host
            .counter("erpgate.decisions.shadow_deny.malformed_authorization");
    assert_eq!(code, 1);
    let logged = plugin.host.logged.borrow().clone();
    let line = logged
        .iter()
        .find(|l| l.starts_with("{\"schema\":\"erpgate.decision.v1\""))
        .expect("the shadow denial is logged");
    let record: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(record["outcome"], "deny");
    assert_eq!(record["enforced"], false);
    assert!(!line.contains("not a token"), "never the token");

    // Allows (a public route) are sampled: the 1st and 3rd of three.
    let health: Vec<(String, Vec<u8>)> = [(":method", "GET"), (":path", "/health")]
        .iter()
        .map(|(n, v)| ((*n).to_owned(), v.as_bytes().to_vec()))
        .collect();
    for context in 20..23 {
        plugin.host.enter(context);
        let flow = Stream::new(context).on_request_headers(&plugin, &health, true);
        assert_eq!(flow, Flow::Continue);
    }
    let allows = plugin
        .host
        .logged
        .borrow()
        .iter()
        .filter(|l| l.contains("\"outcome\":\"allow\""))
        .count();
    assert_eq!(allows, 2);
}

mod reload;
