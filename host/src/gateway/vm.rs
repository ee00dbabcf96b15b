//! One filter VM: a wasmtime instance of the filter, driven the way Envoy
//! drives it — root context configured once, one HTTP context per stream —
//! with a memory cap and an epoch deadline on every callback. A trap fails the
//! stream closed; the caller then replaces the VM.

use std::collections::HashMap;
use std::sync::Arc;

use wasmtime::{Config, Engine, Instance, Linker, Module, Store, StoreLimitsBuilder};

use super::abi::{self, DispatchedCall, HostState, LocalResponse, Shared};

/// Most memory one VM may use.
pub const MEMORY_CAP: usize = 64 * 1024 * 1024;
/// Epoch ticks (of [`EPOCH_TICK`]) one callback may run.
pub const CALLBACK_DEADLINE_TICKS: u64 = 20;
/// How often the engine's epoch advances.
pub const EPOCH_TICK: std::time::Duration = std::time::Duration::from_millis(50);

/// Why a VM could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum VmError {
    /// The module is not a proxy-wasm 0.2.1 filter, or does not link.
    #[error("invalid filter module: {0}")]
    Module(String),
    /// `proxy_on_configure` returned false: the filter refused its configuration.
    #[error("the filter refused its configuration")]
    Configure,
    /// The filter trapped (panic, deadline, memory) or misbehaved.
    #[error("the filter trapped: {0}")]
    Trap(String),
}

/// A compiled filter plus what every VM of it shares.
pub struct FilterModule {
    engine: Engine,
    module: Module,
    linker: Linker<HostState>,
    /// Shared data and metrics across this filter's VMs.
    pub shared: Arc<Shared>,
    clusters: Arc<HashMap<String, String>>,
    plugin_config: Vec<u8>,
}

/// How a stream callback ended.
#[derive(Debug, Clone)]
pub enum Verdict {
    /// Forward upstream with these (edited) request headers.
    Continue(Vec<(String, Vec<u8>)>),
    /// Answer locally.
    Respond(LocalResponse),
    /// Paused: perform these calls and report each result.
    Wait(Vec<DispatchedCall>),
}

/// The result of an `http_call`, as delivered back to the filter.
#[derive(Debug, Clone)]
pub enum CallResult {
    /// A response.
    Response {
        /// Status.
        status: u16,
        /// Headers.
        headers: Vec<(String, Vec<u8>)>,
        /// Body.
        body: Vec<u8>,
    },
    /// Timeout or connection failure: Envoy delivers no `:status`.
    Failed,
}

impl FilterModule {
    /// Compiles a filter. The engine interrupts callbacks by epoch.
    pub fn load(
        wasm: &[u8],
        plugin_config: Vec<u8>,
        clusters: HashMap<String, String>,
    ) -> Result<Self, VmError> {
        let mut config = Config::new();
        config.epoch_interruption(true);
        let engine = Engine::new(&config).map_err(|e| VmError::Module(e.to_string()))?;
        let module = Module::new(&engine, wasm).map_err(|e| VmError::Module(e.to_string()))?;
        if module.get_export("proxy_abi_version_0_2_1").is_none() {
            return Err(VmError::Module("no proxy_abi_version_0_2_1 export".into()));
        }
        let mut linker = Linker::new(&engine);
        abi::link(&mut linker).map_err(|e| VmError::Module(e.to_string()))?;
        let ticker = engine.clone();
        std::thread::spawn(move || {
            loop {
                std::thread::sleep(EPOCH_TICK);
                ticker.increment_epoch();
            }
        });
        Ok(Self {
            engine,
            module,
            linker,
            shared: Arc::new(Shared::default()),
            clusters: Arc::new(clusters),
            plugin_config,
        })
    }

    /// The same compiled module with another plugin configuration and
    /// clusters (and fresh shared data and metrics).
    pub fn reconfigure(&self, plugin_config: Vec<u8>, clusters: HashMap<String, String>) -> Self {
        Self {
            engine: self.engine.clone(),
            module: self.module.clone(),
            linker: self.linker.clone(),
            shared: Arc::new(Shared::default()),
            clusters: Arc::new(clusters),
            plugin_config,
        }
    }

    /// A fresh, configured VM (Envoy: one per worker thread).
    pub fn instantiate(&self) -> Result<Vm, VmError> {
        let state = HostState {
            plugin_config: self.plugin_config.clone(),
            request_headers: Vec::new(),
            local_response: None,
            continued: false,
            dispatched: Vec::new(),
            call_response: None,
            clusters: self.clusters.clone(),
            tick_ms: 0,
            fixed_time_ns: None,
            shared: self.shared.clone(),
            properties: HashMap::new(),
            next_token: 0,
            limits: StoreLimitsBuilder::new()
                .memory_size(MEMORY_CAP)
                .instances(1)
                .build(),
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limits);
        store.set_epoch_deadline(CALLBACK_DEADLINE_TICKS);
        let instance = self
            .linker
            .instantiate(&mut store, &self.module)
            .map_err(|e| VmError::Module(e.to_string()))?;
        let mut vm = Vm {
            store,
            instance,
            root: 1,
            next_context: 2,
            streams: HashMap::new(),
            owners: HashMap::new(),
        };
        vm.call("_initialize", &[])?;
        vm.call("proxy_on_context_create", &[1, 0])?;
        vm.call("proxy_on_vm_start", &[1, 0])?;
        let size = i32::try_from(self.plugin_config.len()).map_err(|_| VmError::Configure)?;
        if vm.call("proxy_on_configure", &[1, size])? != Some(1) {
            return Err(VmError::Configure);
        }
        Ok(vm)
    }
}

/// One instance of the filter.
pub struct Vm {
    store: Store<HostState>,
    instance: Instance,
    root: i32,
    next_context: i32,
    /// Request headers per paused stream.
    streams: HashMap<i32, Vec<(String, Vec<u8>)>>,
    /// Which context dispatched which call token.
    owners: HashMap<u32, i32>,
}

impl Vm {
    /// Calls an export with i32 arguments; returns its i32 result if it has one.
    fn call(&mut self, name: &str, args: &[i32]) -> Result<Option<i32>, VmError> {
        let Some(func) = self.instance.get_func(&mut self.store, name) else {
            // Optional callbacks (the SDK exports all of them; others may not).
            return Ok(None);
        };
        let params: Vec<wasmtime::Val> = args.iter().map(|a| wasmtime::Val::I32(*a)).collect();
        let mut results = vec![wasmtime::Val::I32(0); func.ty(&self.store).results().len()];
        self.store.set_epoch_deadline(CALLBACK_DEADLINE_TICKS);
        func.call(&mut self.store, &params, &mut results)
            .map_err(|e| VmError::Trap(format!("{name}: {e}")))?;
        Ok(results.first().and_then(wasmtime::Val::i32))
    }

    /// Reports a fixed time to the filter (tests); `None` restores the clock.
    pub fn set_time_ms(&mut self, ms: Option<u64>) {
        self.store.data_mut().fixed_time_ns = ms.map(|m| m.saturating_mul(1_000_000));
    }

    /// The tick period the filter asked for.
    pub fn tick_ms(&self) -> u64 {
        self.store.data().tick_ms
    }

    /// Sets host properties for the next stream (`request.path`, …).
    pub fn set_properties(&mut self, properties: HashMap<String, Vec<u8>>) {
        self.store.data_mut().properties = properties;
    }

    fn take_calls(&mut self, owner: i32) -> Vec<DispatchedCall> {
        let calls = std::mem::take(&mut self.store.data_mut().dispatched);
        for c in &calls {
            self.owners.insert(c.token, owner);
        }
        calls
    }

    /// Runs the root context's tick; returns the calls it dispatched.
    pub fn tick(&mut self) -> Result<Vec<DispatchedCall>, VmError> {
        self.call("proxy_on_tick", &[self.root])?;
        Ok(self.take_calls(self.root))
    }

    /// Starts a stream with its request headers (pseudo-headers included).
    pub fn request(&mut self, headers: Vec<(String, Vec<u8>)>) -> Result<(i32, Verdict), VmError> {
        let id = self.next_context;
        self.next_context += 1;
        self.call("proxy_on_context_create", &[id, self.root])?;
        let count = i32::try_from(headers.len()).unwrap_or(i32::MAX);
        {
            let s = self.store.data_mut();
            s.request_headers = headers;
            s.local_response = None;
            s.continued = false;
        }
        let action = self.call("proxy_on_request_headers", &[id, count, 1])?;
        Ok((id, self.verdict(id, action == Some(0))))
    }

    /// Delivers a call result; returns the stream's verdict, or `None` when the
    /// call belonged to the root context.
    pub fn call_result(
        &mut self,
        token: u32,
        result: CallResult,
    ) -> Result<Option<(i32, Verdict)>, VmError> {
        let owner = self.owners.remove(&token).unwrap_or(self.root);
        let (status, headers, body) = match result {
            CallResult::Response {
                status,
                headers,
                body,
            } => (Some(status), headers, body),
            CallResult::Failed => (None, Vec::new(), Vec::new()),
        };
        let mut all = Vec::with_capacity(headers.len() + 1);
        if let Some(status) = status {
            all.push((":status".to_owned(), status.to_string().into_bytes()));
        }
        all.extend(headers);
        let (n, b) = (
            i32::try_from(all.len()).unwrap_or(0),
            i32::try_from(body.len()).unwrap_or(0),
        );
        {
            let s = self.store.data_mut();
            s.call_response = Some((all, body));
            s.local_response = None;
            s.continued = false;
            s.request_headers = self.streams.remove(&owner).unwrap_or_default();
        }
        let token_arg = i32::try_from(token).unwrap_or(0);
        let outcome = self.call(
            "proxy_on_http_call_response",
            &[self.root, token_arg, n, b, 0],
        );
        self.store.data_mut().call_response = None;
        outcome?;
        if owner == self.root {
            self.take_calls(self.root);
            return Ok(None);
        }
        let continued = self.store.data().continued;
        Ok(Some((owner, self.verdict(owner, continued))))
    }

    fn verdict(&mut self, id: i32, continued: bool) -> Verdict {
        if let Some(response) = self.store.data_mut().local_response.take() {
            return Verdict::Respond(response);
        }
        let calls = self.take_calls(id);
        let headers = std::mem::take(&mut self.store.data_mut().request_headers);
        if continued && calls.is_empty() {
            Verdict::Continue(headers)
        } else if calls.is_empty() {
            // Paused with nothing outstanding: it would hang forever in Envoy;
            // fail closed instead.
            Verdict::Respond(LocalResponse {
                status: 503,
                headers: vec![("content-type".into(), b"application/json".to_vec())],
                body: br#"{"error":"temporarily_unavailable"}"#.to_vec(),
            })
        } else {
            self.streams.insert(id, headers);
            Verdict::Wait(calls)
        }
    }

    /// Ends a stream (`on_done`, `on_log`, `on_delete`).
    pub fn finish(&mut self, id: i32) -> Result<(), VmError> {
        self.streams.remove(&id);
        self.owners.retain(|_, owner| *owner != id);
        self.call("proxy_on_done", &[id])?;
        self.call("proxy_on_log", &[id])?;
        self.call("proxy_on_delete", &[id])?;
        Ok(())
    }
}
