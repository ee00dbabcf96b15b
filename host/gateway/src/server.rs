//! The gateway's HTTP side: a reverse proxy that runs every request through
//! the filter. One VM per worker thread (Envoy's model), each fed by a
//! channel; `http_call`s go to named clusters with their timeouts; ticks run
//! on each VM; allowed requests are proxied upstream with hyper.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt as _;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::sync::oneshot;

use super::abi::{DispatchedCall, LocalResponse, Pairs};
use super::vm::{CallResult, FilterModule, Progress, Verdict, Vm};

/// Largest total size of request headers the gateway accepts.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;
/// The largest `http_call` response body the gateway hands a VM (Envoy's
/// default per-connection buffer limit). A cluster that answers more fails
/// the call, and the filter fails closed; nothing past it is buffered.
pub const MAX_CALL_BODY_BYTES: usize = 1024 * 1024;
/// The largest request body the gateway takes: it buffers each body whole
/// before the filter sees it (a local tool, not a streaming proxy).
pub const MAX_REQUEST_BODY_BYTES: usize = 16 * 1024 * 1024;

/// What the gateway needs.
pub struct GatewayConfig {
    /// The filter `.wasm`.
    pub filter: Vec<u8>,
    /// The plugin configuration (JSON), as Envoy's `configuration` holds it.
    pub plugin_config: Vec<u8>,
    /// Where allowed requests go, e.g. `http://127.0.0.1:9000`.
    pub upstream: String,
    /// Cluster name → base URL, for the filter's `http_call`s.
    pub clusters: HashMap<String, String>,
    /// Listen address.
    pub listen: SocketAddr,
    /// Worker threads, each with its own VM.
    pub workers: usize,
    /// Where to serve `/stats/prometheus` (Envoy's admin), if anywhere.
    pub admin: Option<SocketAddr>,
    /// Offer Envoy's `verify_signature` foreign function (Envoy does); off,
    /// the filter verifies RSA in wasm.
    pub verify_signature: bool,
}

enum Job {
    Request {
        headers: Pairs,
        properties: HashMap<String, Vec<u8>>,
        body: Vec<u8>,
        reply: oneshot::Sender<Verdict>,
    },
    CallDone {
        token: u32,
        result: CallResult,
    },
    Tick,
    /// A new plugin configuration for the VM; the reply says whether the
    /// filter took it.
    Reconfigure {
        config: Vec<u8>,
        reply: oneshot::Sender<bool>,
    },
}

type HttpClient = Client<HttpConnector, Body>;

struct Worker {
    jobs: std::sync::mpsc::Sender<Job>,
}

/// A running gateway.
pub struct Gateway {
    /// The bound address.
    pub addr: SocketAddr,
    /// The admin address (`/stats/prometheus`), when one was asked for.
    pub admin: Option<SocketAddr>,
    /// The filter's shared data and metrics.
    pub module: Arc<FilterModule>,
    proxy: Arc<Proxy>,
    shutdown: Option<oneshot::Sender<()>>,
    server: tokio::task::JoinHandle<()>,
}

impl Gateway {
    /// Stops accepting and waits for the server to end.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let _ = (&mut self.server).await;
    }

    /// The filter's metrics in Prometheus text form.
    pub fn metrics(&self) -> String {
        render_metrics(&self.module)
    }

    /// Hands every VM a new plugin configuration, as Envoy does on an xDS
    /// update; requests keep flowing meanwhile, and each filter keeps what
    /// the change leaves valid (caches, keys, the revocation cursor). A
    /// configuration the filter refuses is refused before any VM sees it,
    /// and the running one stays (the filter logs the offending field).
    pub async fn reload(&self, plugin_config: Vec<u8>) -> Result<(), ReloadError> {
        self.module
            .check_config(&plugin_config)
            .map_err(|_| ReloadError::Refused)?;
        let mut replies = Vec::with_capacity(self.proxy.workers.len());
        for worker in &self.proxy.workers {
            let (reply, answer) = oneshot::channel();
            let job = Job::Reconfigure {
                config: plugin_config.clone(),
                reply,
            };
            if worker.jobs.send(job).is_err() {
                return Err(ReloadError::WorkerGone);
            }
            replies.push(answer);
        }
        self.module.set_plugin_config(plugin_config);
        for answer in replies {
            if answer.await != Ok(true) {
                return Err(ReloadError::WorkerGone);
            }
        }
        Ok(())
    }
}

/// How often [`Gateway::follow_config`] reads the configuration file.
const CONFIG_POLL: Duration = Duration::from_millis(500);

impl Gateway {
    /// Keeps the gateway on the plugin configuration in `path`: reloads it
    /// when its content changes (read every 500 ms) and on `SIGHUP`. A
    /// configuration the filter refuses is logged and the running one
    /// stays; the next change is tried again. Runs until the signal stream
    /// ends (never, in practice): select it against a shutdown.
    pub async fn follow_config(&self, path: &std::path::Path) -> std::io::Result<()> {
        let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
        let mut poll = tokio::time::interval(CONFIG_POLL);
        let mut applied = std::fs::read(path)?;
        loop {
            let forced = tokio::select! {
                signal = hangup.recv() => match signal {
                    Some(()) => true,
                    None => return Ok(()),
                },
                _ = poll.tick() => false,
            };
            let current = match tokio::fs::read(path).await {
                Ok(bytes) => bytes,
                Err(e) => {
                    tracing::warn!(error = %e, file = %path.display(), "cannot read the plugin configuration; the running one stays");
                    continue;
                }
            };
            if current == applied && !forced {
                continue;
            }
            match self.reload(current.clone()).await {
                Ok(()) => tracing::info!(file = %path.display(), "plugin configuration reloaded"),
                Err(e) => tracing::error!(file = %path.display(), "{e}"),
            }
            // A refused file is not tried again until it changes.
            applied = current;
        }
    }
}

/// Why a reload did not happen.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The filter refused the configuration; the running one stays.
    #[error(
        "the filter refused the new configuration (its log names the field); the running configuration stays"
    )]
    Refused,
    /// A worker VM did not take it (it stopped, or trapped).
    #[error("a filter VM did not take the new configuration")]
    WorkerGone,
}

/// Prometheus text for the filter's metrics.
pub fn render_metrics(module: &FilterModule) -> String {
    let mut out = String::new();
    if let Ok(metrics) = module.shared.metrics.lock() {
        for m in metrics.iter() {
            let name: String = m
                .name
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                .collect();
            let kind = if m.kind == 0 { "counter" } else { "gauge" };
            out.push_str(&format!("# TYPE {name} {kind}\n{name} {}\n", m.value));
        }
    }
    out
}

/// Writes the filter's decision-log lines to stdout, one JSON line each.
fn print_decisions(lines: &[String]) {
    for line in lines {
        println!("{line}");
    }
}

/// The gateway's own fail-closed answer (no VM, a trap, a stream that never
/// resumes), rendered by the core's one denial mapping like the filter's.
fn fail_closed() -> LocalResponse {
    let r = erpgate::fail_closed_response();
    LocalResponse {
        status: r.status,
        headers: r
            .headers
            .into_iter()
            .map(|(n, v)| (n, v.into_bytes()))
            .collect(),
        body: r.body.into_bytes(),
    }
}

/// Performs one `http_call` against its cluster.
async fn perform(
    client: HttpClient,
    clusters: Arc<HashMap<String, String>>,
    call: DispatchedCall,
) -> CallResult {
    let Some(base) = clusters.get(&call.cluster) else {
        return CallResult::Failed;
    };
    let get = |name: &str| {
        call.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    };
    let (Some(method), Some(path)) = (get(":method"), get(":path")) else {
        return CallResult::Failed;
    };
    let Ok(uri) = format!("{}{}", base.trim_end_matches('/'), path).parse::<Uri>() else {
        return CallResult::Failed;
    };
    let mut req = axum::http::Request::builder()
        .method(method.as_str())
        .uri(uri);
    for (n, v) in &call.headers {
        if n.starts_with(':') {
            continue;
        }
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(n.as_bytes()),
            HeaderValue::from_bytes(v),
        ) {
            req = req.header(n, v);
        }
    }
    let Ok(req) = req.body(Body::from(call.body)) else {
        return CallResult::Failed;
    };
    let timeout = Duration::from_millis(call.timeout_ms.max(1));
    let response = match tokio::time::timeout(timeout, client.request(req)).await {
        Ok(Ok(r)) => r,
        _ => return CallResult::Failed,
    };
    let status = response.status().as_u16();
    let headers: Pairs = response
        .headers()
        .iter()
        .map(|(n, v)| (n.as_str().to_owned(), v.as_bytes().to_vec()))
        .collect();
    let body = http_body_util::Limited::new(response.into_body(), MAX_CALL_BODY_BYTES);
    match tokio::time::timeout(timeout, body.collect()).await {
        Ok(Ok(body)) => CallResult::Response {
            status,
            headers,
            body: body.to_bytes().to_vec(),
        },
        _ => CallResult::Failed,
    }
}

/// How long a stream may stay paused in the filter (waiting on its calls, or
/// on another stream's) before it fails closed.
const STREAM_DEADLINE: Duration = Duration::from_secs(20);

/// Streams paused in one VM: their reply channels and when they started.
type Waiting = HashMap<i32, (oneshot::Sender<Verdict>, std::time::Instant)>;

/// One VM on its own thread. A trap fails the affected streams closed and
/// replaces the VM.
fn spawn_worker(
    module: Arc<FilterModule>,
    clusters: Arc<HashMap<String, String>>,
    client: HttpClient,
    runtime: tokio::runtime::Handle,
) -> Result<Worker, super::vm::VmError> {
    let (tx, rx) = std::sync::mpsc::channel::<Job>();
    let mut vm = module.instantiate()?;
    let tick_ms = vm.tick_ms();
    let self_tx = tx.clone();
    std::thread::spawn(move || {
        let mut waiting = Waiting::new();
        let dispatch = |calls: Vec<DispatchedCall>| {
            for call in calls {
                let (client, clusters, tx) = (client.clone(), clusters.clone(), self_tx.clone());
                let token = call.token;
                runtime.spawn(async move {
                    let result = perform(client, clusters, call).await;
                    let _ = tx.send(Job::CallDone { token, result });
                });
            }
        };
        let replace = |vm: &mut Vm, waiting: &mut Waiting| {
            tracing::error!("filter VM trapped; failing its streams closed and replacing it");
            for (_, (reply, _)) in waiting.drain() {
                let _ = reply.send(Verdict::Respond(fail_closed()));
            }
            if let Ok(fresh) = module.instantiate() {
                *vm = fresh;
            }
        };
        // Answers every stream that reached a verdict, finishes it (which may
        // resume others), and sends out the calls made meanwhile.
        let settle = |vm: &mut Vm, waiting: &mut Waiting, progress: Progress| {
            let mut queue = vec![progress];
            while let Some(progress) = queue.pop() {
                print_decisions(&progress.decision_lines);
                dispatch(progress.root_calls);
                for (id, verdict) in progress.verdicts {
                    match verdict {
                        Verdict::Wait(calls) => dispatch(calls),
                        done => {
                            if let Some((reply, _)) = waiting.remove(&id) {
                                let _ = reply.send(done);
                            }
                            match vm.finish(id) {
                                Ok(more) => queue.push(more),
                                Err(_) => return Err(()),
                            }
                        }
                    }
                }
            }
            Ok(())
        };
        while let Ok(job) = rx.recv() {
            let progress = match job {
                Job::Request {
                    headers,
                    properties,
                    body,
                    reply,
                } => match vm.request(headers, properties, body) {
                    Ok((id, progress)) => {
                        waiting.insert(id, (reply, std::time::Instant::now()));
                        Ok(progress)
                    }
                    Err(e) => {
                        let _ = reply.send(Verdict::Respond(fail_closed()));
                        Err(e)
                    }
                },
                Job::CallDone { token, result } => vm.call_result(token, result),
                Job::Reconfigure { config, reply } => {
                    let _ = reply.send(vm.reconfigure(config).is_ok());
                    continue;
                }
                Job::Tick => {
                    let expired: Vec<i32> = waiting
                        .iter()
                        .filter(|(_, (_, since))| since.elapsed() > STREAM_DEADLINE)
                        .map(|(id, _)| *id)
                        .collect();
                    let mut failed = false;
                    for id in expired {
                        if let Some((reply, _)) = waiting.remove(&id) {
                            tracing::warn!(stream = id, "filter kept a stream paused too long");
                            let _ = reply.send(Verdict::Respond(fail_closed()));
                        }
                        match vm.finish(id) {
                            Ok(more) => failed |= settle(&mut vm, &mut waiting, more).is_err(),
                            Err(_) => failed = true,
                        }
                    }
                    if failed {
                        replace(&mut vm, &mut waiting);
                        continue;
                    }
                    vm.tick()
                }
            };
            let settled = match progress {
                Ok(progress) => settle(&mut vm, &mut waiting, progress),
                Err(_) => Err(()),
            };
            if settled.is_err() {
                replace(&mut vm, &mut waiting);
            }
        }
    });
    let ticker = tx.clone();
    std::thread::spawn(move || {
        let period = Duration::from_millis(tick_ms.clamp(10, 60_000));
        loop {
            std::thread::sleep(period);
            if ticker.send(Job::Tick).is_err() {
                return;
            }
        }
    });
    Ok(Worker { jobs: tx })
}

struct Proxy {
    workers: Vec<Worker>,
    next: AtomicUsize,
    upstream: String,
    client: HttpClient,
}

fn local(r: LocalResponse) -> Response {
    let mut response = Response::new(Body::from(r.body));
    *response.status_mut() =
        StatusCode::from_u16(r.status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    for (n, v) in r.headers {
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(n.as_bytes()),
            HeaderValue::from_bytes(&v),
        ) {
            response.headers_mut().append(n, v);
        }
    }
    response
}

fn error(status: StatusCode, message: &str) -> Response {
    (
        status,
        axum::Json(serde_json::json!({ "error": "invalid_request", "error_description": message })),
    )
        .into_response()
}

const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
];

/// The header names a request's `Connection` headers list, lowercase.
fn connection_nominated(headers: &axum::http::HeaderMap) -> Vec<String> {
    headers
        .get_all(axum::http::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .collect()
}

/// Envoy's basic attributes, by their dotted names.
fn properties(
    method: &str,
    path: &str,
    authority: &[u8],
    headers: &Pairs,
    source: SocketAddr,
) -> HashMap<String, Vec<u8>> {
    let url_path = path.split('?').next().unwrap_or(path);
    HashMap::from([
        ("request.path".to_owned(), path.as_bytes().to_vec()),
        ("request.url_path".to_owned(), url_path.as_bytes().to_vec()),
        ("request.method".to_owned(), method.as_bytes().to_vec()),
        ("request.host".to_owned(), authority.to_vec()),
        ("request.scheme".to_owned(), b"http".to_vec()),
        (
            "request.headers".to_owned(),
            super::abi::encode_map(headers),
        ),
        ("source.address".to_owned(), source.to_string().into_bytes()),
    ])
}

async fn handle(
    State(proxy): State<Arc<Proxy>>,
    axum::extract::ConnectInfo(source): axum::extract::ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let size: usize = parts
        .headers
        .iter()
        .map(|(n, v)| n.as_str().len() + v.len())
        .sum();
    if size > MAX_HEADER_BYTES {
        return error(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "request headers too large",
        );
    }
    let path = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let authority = parts
        .headers
        .get("host")
        .map(|h| h.as_bytes().to_vec())
        .or_else(|| {
            parts
                .uri
                .authority()
                .map(|a| a.as_str().as_bytes().to_vec())
        })
        .unwrap_or_default();
    // Headers the client's `Connection` nominates belong to its connection
    // alone (RFC 9110 7.6.1): removed before the filter decides, so the
    // filter sees what the upstream will, and its own headers survive.
    let nominated = connection_nominated(&parts.headers);
    let mut plain: Pairs = parts
        .headers
        .iter()
        .filter(|(n, _)| !nominated.iter().any(|x| x == n.as_str()) && n.as_str() != FORWARDED_FOR)
        .map(|(n, v)| (n.as_str().to_owned(), v.as_bytes().to_vec()))
        .collect();
    plain.push((
        FORWARDED_FOR.to_owned(),
        forwarded_for(&parts.headers, source).into_bytes(),
    ));
    let properties = properties(parts.method.as_str(), &path, &authority, &plain, source);
    let mut headers: Pairs = vec![
        (":method".into(), parts.method.as_str().as_bytes().to_vec()),
        (":path".into(), path.clone().into_bytes()),
        (":authority".into(), authority),
        (":scheme".into(), b"http".to_vec()),
    ];
    headers.extend(plain);
    let Ok(body) = axum::body::to_bytes(body, MAX_REQUEST_BODY_BYTES).await else {
        return error(StatusCode::PAYLOAD_TOO_LARGE, "request body too large");
    };
    let i = proxy.next.fetch_add(1, Ordering::Relaxed) % proxy.workers.len().max(1);
    let Some(worker) = proxy.workers.get(i) else {
        return local(fail_closed());
    };
    let (tx, rx) = oneshot::channel();
    if worker
        .jobs
        .send(Job::Request {
            headers,
            properties,
            body: body.to_vec(),
            reply: tx,
        })
        .is_err()
    {
        return local(fail_closed());
    }
    let verdict = match tokio::time::timeout(Duration::from_secs(30), rx).await {
        Ok(Ok(v)) => v,
        _ => return local(fail_closed()),
    };
    let forwarded = match verdict {
        Verdict::Continue(h) => h,
        Verdict::Respond(r) => return local(r),
        Verdict::Wait(_) => return local(fail_closed()),
    };
    let Ok(uri) = format!("{}{}", proxy.upstream.trim_end_matches('/'), path).parse::<Uri>() else {
        return error(StatusCode::BAD_REQUEST, "request target is not a valid URI");
    };
    let mut upstream = axum::http::Request::builder().method(parts.method).uri(uri);
    for (n, v) in forwarded {
        // As Envoy does by default, the upstream sees the authority the
        // client addressed (`:authority` as `Host`; what a DPoP proof's
        // `htu` names), not its own address.
        let n = match n.as_str() {
            ":authority" => "host",
            other if other.starts_with(':') || HOP_BY_HOP.contains(&other) => continue,
            other => other,
        };
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(n.as_bytes()),
            HeaderValue::from_bytes(&v),
        ) {
            upstream = upstream.header(n, v);
        }
    }
    let Ok(upstream) = upstream.body(Body::from(body)) else {
        return local(fail_closed());
    };
    match proxy.client.request(upstream).await {
        Ok(r) => r.map(Body::new),
        Err(e) => {
            tracing::warn!(error = %e, "upstream unreachable");
            (
                StatusCode::BAD_GATEWAY,
                axum::Json(serde_json::json!({ "error": "upstream_unavailable" })),
            )
                .into_response()
        }
    }
}

/// The header a proxy appends the address it received a request from to.
const FORWARDED_FOR: &str = "x-forwarded-for";

/// `X-Forwarded-For` with `source` appended, as Envoy does with
/// `use_remote_address`: what the client sent stays on the left, for an
/// upstream that trusts this gateway to read past it.
fn forwarded_for(headers: &axum::http::HeaderMap, source: SocketAddr) -> String {
    let mut hops: Vec<String> = headers
        .get_all(FORWARDED_FOR)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(str::to_owned)
        .collect();
    hops.push(source.ip().to_string());
    hops.join(", ")
}

/// Starts the gateway.
pub async fn start(config: GatewayConfig) -> anyhow::Result<Gateway> {
    let module = Arc::new(
        FilterModule::load(
            &config.filter,
            config.plugin_config,
            config.clusters.clone(),
        )?
        .with_verify_signature(config.verify_signature),
    );
    // Fail at start-up, as Envoy does, when the filter refuses its configuration.
    module.instantiate()?;
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let clusters = Arc::new(config.clusters);
    let runtime = tokio::runtime::Handle::current();
    let mut workers = Vec::new();
    for _ in 0..config.workers.max(1) {
        workers.push(spawn_worker(
            module.clone(),
            clusters.clone(),
            client.clone(),
            runtime.clone(),
        )?);
    }
    let proxy = Arc::new(Proxy {
        workers,
        next: AtomicUsize::new(0),
        upstream: config.upstream,
        client,
    });
    let admin = match config.admin {
        None => None,
        Some(at) => {
            let listener = tokio::net::TcpListener::bind(at).await?;
            let bound = listener.local_addr()?;
            let stats = module.clone();
            let router = axum::Router::new().route(
                "/stats/prometheus",
                axum::routing::get(move || {
                    let stats = stats.clone();
                    async move { render_metrics(&stats) }
                }),
            );
            tokio::spawn(async move {
                let _ = axum::serve(listener, router).await;
            });
            Some(bound)
        }
    };
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    let addr = listener.local_addr()?;
    let proxy_handle = proxy.clone();
    let router = axum::Router::new().fallback(handle).with_state(proxy);
    let (tx, rx) = oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        let _ = axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async {
            let _ = rx.await;
        })
        .await;
    });
    Ok(Gateway {
        addr,
        admin,
        module,
        proxy: proxy_handle,
        shutdown: Some(tx),
        server,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cluster at 127.0.0.1 whose every answer is `size` bytes.
    async fn cluster_answering(size: usize) -> SocketAddr {
        let app = axum::Router::new().fallback(move || async move { vec![b'x'; size] });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        addr
    }

    async fn call(addr: SocketAddr) -> CallResult {
        let clusters = Arc::new(HashMap::from([(
            "identity".to_owned(),
            format!("http://{addr}"),
        )]));
        let call = DispatchedCall {
            cluster: "identity".into(),
            headers: vec![
                (":method".into(), b"GET".to_vec()),
                (":path".into(), b"/feed".to_vec()),
            ],
            body: Vec::new(),
            timeout_ms: 5_000,
            token: 1,
            owner: 0,
        };
        perform(
            Client::builder(TokioExecutor::new()).build_http(),
            clusters,
            call,
        )
        .await
    }

    #[tokio::test]
    async fn a_call_response_past_the_cap_fails_the_call() {
        let at_cap = cluster_answering(MAX_CALL_BODY_BYTES).await;
        assert!(matches!(
            call(at_cap).await,
            CallResult::Response { status: 200, ref body, .. } if body.len() == MAX_CALL_BODY_BYTES
        ));
        let over = cluster_answering(MAX_CALL_BODY_BYTES + 1).await;
        assert!(matches!(call(over).await, CallResult::Failed));
    }

    #[test]
    fn connection_nominates_names_case_insensitively() {
        let mut headers = axum::http::HeaderMap::new();
        headers.append("connection", HeaderValue::from_static("close, X-Hop"));
        headers.append(
            "connection",
            HeaderValue::from_static(" keep-alive ,x-other"),
        );
        assert_eq!(
            connection_nominated(&headers),
            ["close", "x-hop", "keep-alive", "x-other"]
        );
    }
}
