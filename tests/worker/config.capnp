# workerd config for the corpus harness: the real erpgate worker module (the JS
# layer plus the wasm core) behind one HTTP socket. The test passes the socket
# address with --socket-addr http=127.0.0.1:PORT.
using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [(name = "harness", worker = .harness)],
  sockets = [(name = "http", address = "127.0.0.1:8787", http = (), service = "harness")],
);

const harness :Workerd.Worker = (
  modules = [
    (name = "tests/worker/harness-worker.js", esModule = embed "harness-worker.js"),
    (name = "tests/worker/harness.js", esModule = embed "harness.js"),
    (name = "tests/worker/erpgate_bg.wasm", wasm = embed "../../src/adapters/js/pkg/erpgate_bg.wasm"),
    (name = "src/adapters/js/index.js", esModule = embed "../../src/adapters/js/index.js"),
    (name = "src/adapters/js/pkg/erpgate.js", esModule = embed "../../src/adapters/js/pkg/erpgate.js"),
  ],
  compatibilityDate = "2025-06-01",
);
