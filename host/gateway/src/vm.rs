//! One filter VM: a wasmtime instance of the filter, driven the way Envoy
//! drives it — root context configured once, one HTTP context per stream —
//! with a memory cap and an epoch deadline on every callback. A trap fails the
//! stream closed; the caller then replaces the VM.

use std::collections::HashMap;
use std::sync::Arc;

use wasmtime::{
    Config, Engine, Func, Instance, Linker, Module, Store, StoreLimitsBuilder, TypedFunc, Val,
};

use super::abi::{self, DispatchedCall, HostState, LocalResponse, PluginShared, StreamIo};

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
    /// PluginShared data and metrics across this filter's VMs.
    pub shared: Arc<PluginShared>,
    clusters: Arc<HashMap<String, String>>,
    /// The configuration new VMs start with (a reload replaces it).
    plugin_config: std::sync::RwLock<Vec<u8>>,
    verify_signature: bool,
    /// Whether VMs count the wasm instructions they run (wasmtime fuel).
    metered: bool,
}

/// Where a stream stands after a callback.
#[derive(Debug, Clone)]
pub enum Verdict {
    /// Forward upstream with these (edited) request headers.
    Continue(Vec<(String, Vec<u8>)>),
    /// Answer locally.
    Respond(LocalResponse),
    /// Paused: perform these calls and report each result. Empty when the
    /// stream waits on a call another stream made (single flight); another
    /// callback's [`Progress`] then carries its verdict.
    Wait(Vec<DispatchedCall>),
}

/// What one callback changed: a verdict for every stream it touched (the
/// stream it was for, and any other stream it resumed through
/// `proxy_set_effective_context`), and the calls the root context made.
#[derive(Debug, Default)]
pub struct Progress {
    /// Stream id → verdict.
    pub verdicts: Vec<(i32, Verdict)>,
    /// Calls made by the root context.
    pub root_calls: Vec<DispatchedCall>,
    /// Decision-log lines the filter wrote (`erpgate.decision.v1`).
    pub decision_lines: Vec<String>,
}

impl Progress {
    /// The verdict for one stream, if the callback touched it.
    pub fn verdict(&self, id: i32) -> Option<&Verdict> {
        self.verdicts.iter().find(|(i, _)| *i == id).map(|(_, v)| v)
    }
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
        Self::load_with(wasm, plugin_config, clusters, false)
    }

    /// Compiles a filter whose VMs count every wasm instruction they run
    /// (wasmtime fuel, one unit per instruction): [`Vm::instructions`]. A
    /// count does not drift with the machine's load, so benchmarks report
    /// it next to the time. Metering slows the guest down; time it with a
    /// module from [`FilterModule::load`].
    pub fn load_metered(
        wasm: &[u8],
        plugin_config: Vec<u8>,
        clusters: HashMap<String, String>,
    ) -> Result<Self, VmError> {
        Self::load_with(wasm, plugin_config, clusters, true)
    }

    fn load_with(
        wasm: &[u8],
        plugin_config: Vec<u8>,
        clusters: HashMap<String, String>,
        metered: bool,
    ) -> Result<Self, VmError> {
        let mut config = Config::new();
        config.epoch_interruption(true);
        config.consume_fuel(metered);
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
            shared: Arc::new(PluginShared::default()),
            clusters: Arc::new(clusters),
            plugin_config: std::sync::RwLock::new(plugin_config),
            verify_signature: true,
            metered,
        })
    }

    /// Whether VMs offer Envoy's `verify_signature` foreign function (on by
    /// default, as in Envoy); off makes the filter verify RSA in wasm.
    pub fn with_verify_signature(mut self, offered: bool) -> Self {
        self.verify_signature = offered;
        self
    }

    /// The same compiled module with another plugin configuration and
    /// clusters (and fresh shared data and metrics).
    pub fn reconfigure(&self, plugin_config: Vec<u8>, clusters: HashMap<String, String>) -> Self {
        Self {
            engine: self.engine.clone(),
            module: self.module.clone(),
            linker: self.linker.clone(),
            shared: Arc::new(PluginShared::default()),
            clusters: Arc::new(clusters),
            plugin_config: std::sync::RwLock::new(plugin_config),
            verify_signature: self.verify_signature,
            metered: self.metered,
        }
    }

    /// Whether a VM accepts `plugin_config`: a throwaway VM is configured
    /// with it (the filter logs why it refuses, naming the field).
    pub fn check_config(&self, plugin_config: &[u8]) -> Result<(), VmError> {
        self.instantiate_with(plugin_config.to_vec()).map(drop)
    }

    /// The configuration VMs made from now on start with.
    pub fn set_plugin_config(&self, plugin_config: Vec<u8>) {
        if let Ok(mut current) = self.plugin_config.write() {
            *current = plugin_config;
        }
    }

    /// A fresh, configured VM (Envoy: one per worker thread).
    pub fn instantiate(&self) -> Result<Vm, VmError> {
        let config = self
            .plugin_config
            .read()
            .map_err(|_| VmError::Configure)?
            .clone();
        self.instantiate_with(config)
    }

    fn instantiate_with(&self, plugin_config: Vec<u8>) -> Result<Vm, VmError> {
        let state = HostState {
            plugin_config,
            guest: None,
            root: ROOT,
            effective: ROOT,
            streams: HashMap::new(),
            verify_signature: self.verify_signature,
            dispatched: Vec::new(),
            call_response: None,
            clusters: self.clusters.clone(),
            tick_ms: 0,
            fixed_time_ns: None,
            shared: self.shared.clone(),
            next_token: 0,
            limits: StoreLimitsBuilder::new()
                .memory_size(MEMORY_CAP)
                .instances(1)
                .build(),
            decision_lines: Vec::new(),
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limits);
        store.set_epoch_deadline(CALLBACK_DEADLINE_TICKS);
        if self.metered {
            store
                .set_fuel(u64::MAX)
                .map_err(|e| VmError::Module(e.to_string()))?;
        }
        let instance = self
            .linker
            .instantiate(&mut store, &self.module)
            .map_err(|e| VmError::Module(e.to_string()))?;
        abi::resolve(&mut store, &instance);
        let mut vm = Vm {
            store,
            instance,
            next_context: ROOT + 1,
            owners: HashMap::new(),
            exports: HashMap::new(),
            deadline_ticks: CALLBACK_DEADLINE_TICKS,
        };
        vm.call("_initialize", &[])?;
        vm.call("proxy_on_context_create", &[ROOT, 0])?;
        vm.call("proxy_on_vm_start", &[ROOT, 0])?;
        vm.configure()?;
        Ok(vm)
    }
}

/// The root context's id.
const ROOT: i32 = 1;

/// An exported callback, typed by its shape (every proxy-wasm callback
/// takes i32s and returns nothing or one i32).
enum Callback {
    A0(TypedFunc<(), ()>),
    A1(TypedFunc<i32, ()>),
    A1R(TypedFunc<i32, i32>),
    A2(TypedFunc<(i32, i32), ()>),
    A2R(TypedFunc<(i32, i32), i32>),
    A3(TypedFunc<(i32, i32, i32), ()>),
    A3R(TypedFunc<(i32, i32, i32), i32>),
    /// Any other shape, called through the dynamic, checked path.
    Other(Func, usize),
}

impl Callback {
    fn of(func: Func, store: &Store<HostState>) -> Self {
        if let Ok(t) = func.typed(store) {
            Self::A0(t)
        } else if let Ok(t) = func.typed(store) {
            Self::A1(t)
        } else if let Ok(t) = func.typed(store) {
            Self::A1R(t)
        } else if let Ok(t) = func.typed(store) {
            Self::A2(t)
        } else if let Ok(t) = func.typed(store) {
            Self::A2R(t)
        } else if let Ok(t) = func.typed(store) {
            Self::A3(t)
        } else if let Ok(t) = func.typed(store) {
            Self::A3R(t)
        } else {
            Self::Other(func, func.ty(store).results().len())
        }
    }

    fn arity(&self) -> Option<usize> {
        match self {
            Self::A0(_) => Some(0),
            Self::A1(_) | Self::A1R(_) => Some(1),
            Self::A2(_) | Self::A2R(_) => Some(2),
            Self::A3(_) | Self::A3R(_) => Some(3),
            Self::Other(..) => None,
        }
    }

    fn call(&self, store: &mut Store<HostState>, args: &[i32]) -> wasmtime::Result<Option<i32>> {
        if self.arity().is_some_and(|n| n != args.len()) {
            return Err(wasmtime::Error::msg("unexpected signature"));
        }
        let arg = |i: usize| args.get(i).copied().unwrap_or(0);
        let (a, b, c) = (arg(0), arg(1), arg(2));
        match self {
            Self::A0(f) => f.call(store, ()).map(|()| None),
            Self::A1(f) => f.call(store, a).map(|()| None),
            Self::A1R(f) => f.call(store, a).map(Some),
            Self::A2(f) => f.call(store, (a, b)).map(|()| None),
            Self::A2R(f) => f.call(store, (a, b)).map(Some),
            Self::A3(f) => f.call(store, (a, b, c)).map(|()| None),
            Self::A3R(f) => f.call(store, (a, b, c)).map(Some),
            Self::Other(func, result_count) => {
                // The widest callback, `proxy_on_http_call_response`, takes five.
                let mut params = [Val::I32(0); 8];
                if args.len() > params.len() || *result_count > 1 {
                    return Err(wasmtime::Error::msg("unexpected signature"));
                }
                for (slot, arg) in params.iter_mut().zip(args) {
                    *slot = Val::I32(*arg);
                }
                let mut results = [Val::I32(0); 1];
                let (params, results) = (
                    params.get(..args.len()).unwrap_or_default(),
                    results.get_mut(..*result_count).unwrap_or_default(),
                );
                func.call(store, params, results)?;
                Ok(results.first().and_then(Val::i32))
            }
        }
    }
}

/// One instance of the filter.
pub struct Vm {
    store: Store<HostState>,
    instance: Instance,
    next_context: i32,
    /// Which context each outstanding call token belongs to.
    owners: HashMap<u32, i32>,
    /// The module's exports called so far.
    exports: HashMap<&'static str, Option<Callback>>,
    /// Epoch ticks a callback may run ([`CALLBACK_DEADLINE_TICKS`]; 1
    /// while profiling, when every tick takes a sample).
    deadline_ticks: u64,
}

impl Vm {
    /// Calls an export with i32 arguments; returns its i32 result if it has one.
    /// Each export is looked up and typed once per VM, as Envoy resolves a
    /// module's callbacks once; a typed call checks no types.
    fn call(&mut self, name: &'static str, args: &[i32]) -> Result<Option<i32>, VmError> {
        if !self.exports.contains_key(name) {
            let callback = self
                .instance
                .get_func(&mut self.store, name)
                .map(|func| Callback::of(func, &self.store));
            self.exports.insert(name, callback);
        }
        // Optional callbacks (the SDK exports all of them; others may not).
        let Some(Some(callback)) = self.exports.get(name) else {
            return Ok(None);
        };
        self.store.set_epoch_deadline(self.deadline_ticks);
        callback
            .call(&mut self.store, args)
            .map_err(|e| VmError::Trap(format!("{name}: {e}")))
    }

    /// Wasm instructions this VM has run so far, when its module is
    /// metered ([`FilterModule::load_metered`]).
    pub fn instructions(&self) -> Option<u64> {
        self.store.get_fuel().ok().map(|left| u64::MAX - left)
    }

    /// Calls `proxy_on_configure` with the VM's plugin configuration.
    fn configure(&mut self) -> Result<(), VmError> {
        let size =
            i32::try_from(self.store.data().plugin_config.len()).map_err(|_| VmError::Configure)?;
        self.store.data_mut().effective = ROOT;
        match self.call("proxy_on_configure", &[ROOT, size])? {
            Some(1) => Ok(()),
            _ => Err(VmError::Configure),
        }
    }

    /// Hands the running filter a new configuration, as Envoy does on an
    /// xDS update: the filter keeps what the change leaves valid. Refused,
    /// the previous configuration stays in force.
    pub fn reconfigure(&mut self, plugin_config: Vec<u8>) -> Result<(), VmError> {
        let previous = std::mem::replace(&mut self.store.data_mut().plugin_config, plugin_config);
        let outcome = self.configure();
        if outcome.is_err() {
            self.store.data_mut().plugin_config = previous;
        }
        outcome
    }

    /// Reports a fixed time to the filter (tests); `None` restores the clock.
    pub fn set_time_ms(&mut self, ms: Option<u64>) {
        self.store.data_mut().fixed_time_ns = ms.map(|m| m.saturating_mul(1_000_000));
    }

    /// The tick period the filter asked for.
    pub fn tick_ms(&self) -> u64 {
        self.store.data().tick_ms
    }

    /// Runs the root context's tick.
    pub fn tick(&mut self) -> Result<Progress, VmError> {
        self.store.data_mut().effective = ROOT;
        self.call("proxy_on_tick", &[ROOT])?;
        Ok(self.progress(None))
    }

    /// Starts a stream with its request headers (pseudo-headers included),
    /// host properties and body. The filter sees the headers, then the body
    /// as one final chunk, as Envoy delivers them: `Continue` from either
    /// callback lets the request go on (in Envoy, continuing from a body
    /// callback also releases headers the filter paused). Returns its id and
    /// what the callbacks changed; the new stream always has a verdict there.
    pub fn request(
        &mut self,
        headers: Vec<(String, Vec<u8>)>,
        properties: HashMap<String, Vec<u8>>,
        body: Vec<u8>,
    ) -> Result<(i32, Progress), VmError> {
        let id = self.next_context;
        self.next_context += 1;
        let count = i32::try_from(headers.len()).unwrap_or(i32::MAX);
        {
            let s = self.store.data_mut();
            s.streams.insert(
                id,
                StreamIo {
                    headers,
                    properties,
                    body,
                    ..StreamIo::default()
                },
            );
            s.effective = id;
        }
        self.call("proxy_on_context_create", &[id, ROOT])?;
        let size = self
            .store
            .data()
            .streams
            .get(&id)
            .map_or(0, |s| s.body.len());
        let headers_end = i32::from(size == 0);
        let mut action = self.call("proxy_on_request_headers", &[id, count, headers_end])?;
        let answered = |vm: &Self| {
            vm.store
                .data()
                .streams
                .get(&id)
                .is_none_or(|s| s.local_response.is_some())
        };
        if size > 0 && !answered(self) {
            let continued = action == Some(0);
            self.store.data_mut().effective = id;
            let body_size = i32::try_from(size).unwrap_or(i32::MAX);
            let on_body = self.call("proxy_on_request_body", &[id, body_size, 1])?;
            action = if continued { Some(0) } else { on_body };
        }
        if action == Some(0)
            && let Some(stream) = self.store.data_mut().streams.get_mut(&id)
        {
            stream.continued = true;
        }
        Ok((id, self.progress(Some(id))))
    }

    /// Delivers a call result to the context that made the call.
    pub fn call_result(&mut self, token: u32, result: CallResult) -> Result<Progress, VmError> {
        let owner = self.owners.remove(&token).unwrap_or(ROOT);
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
        // A stream that ended meanwhile gets nothing (Envoy cancels its calls).
        if owner != ROOT && !self.store.data().streams.contains_key(&owner) {
            return Ok(Progress::default());
        }
        {
            let s = self.store.data_mut();
            s.call_response = Some((all, body));
            s.effective = owner;
        }
        let token_arg = i32::try_from(token).unwrap_or(0);
        let outcome = self.call("proxy_on_http_call_response", &[owner, token_arg, n, b, 0]);
        self.store.data_mut().call_response = None;
        outcome?;
        Ok(self.progress((owner != ROOT).then_some(owner)))
    }

    /// Collects what the last callback changed. `focus` is the stream the
    /// callback was for: it gets a verdict even if it only paused.
    fn progress(&mut self, focus: Option<i32>) -> Progress {
        let mut progress = Progress {
            decision_lines: std::mem::take(&mut self.store.data_mut().decision_lines),
            ..Progress::default()
        };
        let mut by_owner: HashMap<i32, Vec<DispatchedCall>> = HashMap::new();
        for call in std::mem::take(&mut self.store.data_mut().dispatched) {
            self.owners.insert(call.token, call.owner);
            if call.owner == ROOT {
                progress.root_calls.push(call);
            } else {
                by_owner.entry(call.owner).or_default().push(call);
            }
        }
        let mut ids: Vec<i32> = self.store.data().streams.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            let Some(stream) = self.store.data_mut().streams.get_mut(&id) else {
                continue;
            };
            let calls = by_owner.remove(&id).unwrap_or_default();
            let verdict = if let Some(response) = stream.local_response.take() {
                Verdict::Respond(response)
            } else if stream.continued {
                // As in Envoy: a continued stream goes upstream even with
                // calls of its own outstanding (they are cancelled when it
                // ends here).
                stream.continued = false;
                Verdict::Continue(stream.headers.clone())
            } else if !calls.is_empty() || focus == Some(id) {
                Verdict::Wait(calls)
            } else {
                continue;
            };
            progress.verdicts.push((id, verdict));
        }
        progress
    }

    /// Ends a stream (`on_done`, `on_log`, `on_delete`). A stream that ends
    /// while leading a call may resume others (they fail closed), so this
    /// reports progress too.
    pub fn finish(&mut self, id: i32) -> Result<Progress, VmError> {
        self.owners.retain(|_, owner| *owner != id);
        self.store.data_mut().effective = id;
        let done = self
            .call("proxy_on_done", &[id])
            .and_then(|_| self.call("proxy_on_log", &[id]))
            .and_then(|_| self.call("proxy_on_delete", &[id]));
        let s = self.store.data_mut();
        s.streams.remove(&id);
        s.effective = ROOT;
        done?;
        Ok(self.progress(None))
    }
}

#[cfg(feature = "guest-profiler")]
impl Vm {
    /// Runs `work` under wasmtime's guest profiler, sampling the guest's
    /// stack every `interval`, and writes the profile (Firefox Profiler
    /// JSON) to `out`. Callbacks are not interrupted by their deadline
    /// meanwhile.
    pub fn profile<R>(
        &mut self,
        module: &FilterModule,
        interval: std::time::Duration,
        out: impl std::io::Write,
        work: impl FnOnce(&mut Vm) -> R,
    ) -> Result<R, VmError> {
        use std::sync::atomic::{AtomicBool, Ordering};
        let profiler = wasmtime::GuestProfiler::new(
            &module.engine,
            "erpgate_filter",
            interval,
            [("erpgate_filter".to_owned(), module.module.clone())],
        )
        .map_err(|e| VmError::Module(e.to_string()))?;
        let shared = Arc::new(std::sync::Mutex::new(Some(profiler)));
        let sampler = Arc::clone(&shared);
        self.store.epoch_deadline_callback(move |ctx| {
            if let Ok(mut guard) = sampler.lock()
                && let Some(profiler) = guard.as_mut()
            {
                profiler.sample(&ctx, interval);
            }
            Ok(wasmtime::UpdateDeadline::Continue(1))
        });
        let stop = Arc::new(AtomicBool::new(false));
        let ticker = {
            let (engine, stop) = (module.engine.clone(), Arc::clone(&stop));
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(interval);
                    engine.increment_epoch();
                }
            })
        };
        self.deadline_ticks = 1;
        let result = work(self);
        self.deadline_ticks = CALLBACK_DEADLINE_TICKS;
        stop.store(true, Ordering::Relaxed);
        let _ = ticker.join();
        self.store.epoch_deadline_trap();
        let profiler = shared.lock().ok().and_then(|mut g| g.take());
        if let Some(profiler) = profiler {
            profiler
                .finish(out)
                .map_err(|e| VmError::Module(e.to_string()))?;
        }
        Ok(result)
    }
}
