//! The proxy-wasm glue: the SDK's root and HTTP contexts, the real [`Host`],
//! and Envoy's shared data as the engine's shared cache. Everything here
//! only translates; the logic is in [`super::plugin`].

use std::rc::Rc;
use std::time::{Duration, UNIX_EPOCH};

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, BufferType, ContextType, MapType};

use super::abi;
use super::config::{self, ConfigError};
use super::host::{Host, LogLevel};
use super::plugin::{Background, Flow, Plugin, Stream, fail_closed};
use crate::engine::Outcome;
use crate::shared_cache::SharedCache;
use crate::time::Time;

/// The proxy-wasm ABI as the filter's [`Host`].
struct ProxyWasm;

impl Host for ProxyWasm {
    fn now(&self) -> Time {
        let since = hostcalls::get_current_time()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .unwrap_or_default();
        Time::from_millis(u64::try_from(since.as_millis()).unwrap_or(u64::MAX))
    }

    fn now_ns(&self) -> u64 {
        hostcalls::get_current_time()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
    }

    fn random_secret(&self) -> Option<[u8; 16]> {
        let mut secret = [0u8; 16];
        getrandom::fill(&mut secret).ok()?;
        Some(secret)
    }

    fn log(&self, level: LogLevel, message: &str) {
        let level = match level {
            LogLevel::Debug => proxy_wasm::types::LogLevel::Debug,
            LogLevel::Info => proxy_wasm::types::LogLevel::Info,
            LogLevel::Warn => proxy_wasm::types::LogLevel::Warn,
            LogLevel::Critical => proxy_wasm::types::LogLevel::Critical,
        };
        let _ = hostcalls::log(level, message);
    }

    fn define_counter(&self, name: &str) -> Option<u32> {
        abi::define(0, name)
    }

    fn increment_counter(&self, id: u32, by: u64) {
        abi::increment(id, by);
    }

    fn define_gauge(&self, name: &str) -> Option<u32> {
        abi::define(1, name)
    }

    fn set_gauge(&self, id: u32, value: u64) {
        abi::record(id, value);
    }

    fn dispatch_http_call(
        &self,
        cluster: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
        timeout: Duration,
    ) -> Option<u32> {
        hostcalls::dispatch_http_call(cluster, headers.to_vec(), body, vec![], timeout).ok()
    }

    fn call_foreign_function(&self, name: &str, args: &[u8]) -> Result<Vec<u8>, u32> {
        abi::call_foreign(name, args)
    }

    fn set_effective_context(&self, context_id: u32) -> bool {
        abi::set_effective_context(context_id)
    }

    fn set_request_header(&self, name: &str, value: Option<&str>) {
        let _ = hostcalls::set_map_value(MapType::HttpRequestHeaders, name, value);
    }

    fn send_http_response(&self, status: u16, headers: &[(&str, &str)], body: &[u8]) {
        let _ = hostcalls::send_http_response(u32::from(status), headers.to_vec(), Some(body));
    }

    fn resume_http_request(&self) {
        let _ = hostcalls::resume_http_request();
    }
}

/// Envoy's shared data as the engine's shared cache.
struct EnvoySharedData;

impl SharedCache for EnvoySharedData {
    fn get(&mut self, key: &str) -> Option<(Vec<u8>, u32)> {
        abi::get_shared(key).filter(|(value, _)| !value.is_empty())
    }

    fn set(&mut self, key: &str, value: &[u8], version: u32) -> bool {
        abi::set_shared(key, value, version)
    }
}

/// The outcome of the HTTP call whose response is being delivered.
fn call_outcome(body_size: usize) -> Outcome {
    let headers = hostcalls::get_map(MapType::HttpCallResponseHeaders).unwrap_or_default();
    let status = headers
        .iter()
        .find(|(n, _)| n == ":status")
        .and_then(|(_, v)| v.parse::<u16>().ok());
    match status {
        Some(status) => Outcome::Response {
            status,
            body: hostcalls::get_buffer(BufferType::HttpCallResponseBody, 0, body_size)
                .ok()
                .flatten()
                .unwrap_or_default(),
        },
        // Envoy answers a failed or timed-out callout with no `:status`.
        None => Outcome::Failed,
    }
}

struct Root {
    plugin: Option<Rc<Plugin<ProxyWasm>>>,
    background: Background,
}

impl Context for Root {
    fn on_http_call_response(
        &mut self,
        token: u32,
        _headers: usize,
        body_size: usize,
        _trailers: usize,
    ) {
        if let Some(plugin) = &self.plugin {
            self.background
                .on_call_response(plugin, token, || call_outcome(body_size));
        }
    }
}

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        let Some(bytes) = self.get_plugin_configuration() else {
            let error = ConfigError::new("(configuration)", "missing");
            ProxyWasm.log(LogLevel::Critical, &error.to_string());
            return false;
        };
        match config::parse(&bytes) {
            Ok(config) => {
                let tick = config.tick;
                let shared: Box<dyn SharedCache> = Box::new(EnvoySharedData);
                let plugin = match &self.plugin {
                    Some(previous) => {
                        Plugin::reconfigured(ProxyWasm, config, Some(shared), previous)
                    }
                    None => Plugin::new(ProxyWasm, config, Some(shared)),
                };
                self.plugin = Some(Rc::new(plugin));
                // Background calls of the previous plugin are not applied to
                // this one (an issuer index may now name another issuer).
                self.background = Background::new(self.background.root_id());
                // Background work starts with the first tick; a request that
                // needs keys before then fetches them itself.
                self.set_tick_period(tick);
                true
            }
            Err(error) => {
                ProxyWasm.log(LogLevel::Critical, &error.to_string());
                false
            }
        }
    }

    fn on_tick(&mut self) {
        if let Some(plugin) = &self.plugin {
            self.background.on_tick(plugin);
        }
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Filter {
            plugin: self.plugin.clone(),
            stream: Stream::new(context_id),
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Filter {
    plugin: Option<Rc<Plugin<ProxyWasm>>>,
    stream: Stream,
}

impl Context for Filter {
    fn on_http_call_response(
        &mut self,
        token: u32,
        _headers: usize,
        body_size: usize,
        _trailers: usize,
    ) {
        if let Some(plugin) = &self.plugin {
            self.stream
                .on_call_response(plugin, token, || call_outcome(body_size));
        }
    }

    fn on_done(&mut self) -> bool {
        if let Some(plugin) = &self.plugin {
            self.stream.on_done(plugin);
        }
        true
    }
}

impl HttpContext for Filter {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        let Some(plugin) = &self.plugin else {
            fail_closed(&ProxyWasm);
            return Action::Pause;
        };
        let headers = self.get_http_request_headers_bytes();
        match self
            .stream
            .on_request_headers(plugin, &headers, end_of_stream)
        {
            Flow::Continue => Action::Continue,
            Flow::Pause => Action::Pause,
        }
    }

    /// `Pause` here is Envoy's StopIterationAndBuffer: the body waits with
    /// the headers until the stream is decided.
    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let Some(plugin) = &self.plugin else {
            return Action::Pause;
        };
        let read = |n: usize| {
            hostcalls::get_buffer(BufferType::HttpRequestBody, 0, n)
                .ok()
                .flatten()
                .unwrap_or_default()
        };
        match self
            .stream
            .on_request_body(plugin, body_size, end_of_stream, read)
        {
            Flow::Continue => Action::Continue,
            Flow::Pause => Action::Pause,
        }
    }
}

/// Logs a panic at critical level before the VM traps (panic = abort).
fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        ProxyWasm.log(LogLevel::Critical, &format!("erpgate panicked: {info}"));
    }));
}

fn new_root(context_id: u32) -> Box<dyn RootContext> {
    Box::new(Root {
        plugin: None,
        background: Background::new(context_id),
    })
}

// The SDK's entry point macro defines `_initialize` with `#[no_mangle]`.
#[allow(unsafe_code)]
mod entry {
    proxy_wasm::main! {{
        super::install_panic_hook();
        proxy_wasm::set_log_level(proxy_wasm::types::LogLevel::Info);
        proxy_wasm::set_root_context(super::new_root);
    }}
}
