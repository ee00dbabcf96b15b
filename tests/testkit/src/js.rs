//! Runs the corpus through the worker module's JavaScript harness, in real
//! workerd or in Node, and reads back observations.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::vector::{PreparedVector, Reply};
use crate::{Observed, repo_root};

fn reply_json(reply: &Reply) -> Value {
    match reply {
        Reply::Timeout => json!("timeout"),
        Reply::Failed => json!("failed"),
        Reply::Response { status, body } => {
            json!({ "status": status, "body": String::from_utf8_lossy(body) })
        }
    }
}

/// Header bytes as a JavaScript string, one char per byte (latin1), so
/// non-UTF-8 input stays non-ASCII on the other side.
fn latin1(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| char::from(b)).collect()
}

/// The corpus as the JS harness reads it.
pub fn vectors_json(vectors: &[PreparedVector]) -> String {
    let list: Vec<Value> = vectors
        .iter()
        .map(|v| {
            json!({
                "name": v.name,
                "origin": crate::VECTOR_ORIGIN,
                "policy": v.policy_json,
                "hostCrypto": v.host_crypto,
                "dpopNonceKey": v.dpop_nonce_key,
                "steps": v.steps.iter().map(|s| json!({
                    "nowMs": s.now_ms,
                    "method": s.method,
                    "path": s.path,
                    "body": s.body,
                    "headers": s.headers.iter().map(|(n, b)| json!([n, latin1(b)])).collect::<Vec<_>>(),
                    "calls": s.calls.iter().map(|c| json!({"purpose": c.purpose, "reply": reply_json(&c.reply)})).collect::<Vec<_>>(),
                    "background": s.background.iter().map(|c| json!({"purpose": c.purpose, "reply": reply_json(&c.reply)})).collect::<Vec<_>>(),
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    Value::Array(list).to_string()
}

fn observed(v: &Value) -> Observed {
    let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
    Observed {
        status: v.get("status").and_then(Value::as_u64).unwrap_or(0) as u16,
        reason: s("reason"),
        error: s("error"),
        www_authenticate: s("www_authenticate"),
        dpop_nonce: s("dpop_nonce"),
        forwarded: v
            .get("forwarded")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|p| {
                        Some((
                            p.get(0)?.as_str()?.to_owned(),
                            p.get(1)?.as_str()?.to_owned(),
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default(),
        from_cache: v.get("from_cache").and_then(Value::as_bool),
        answer: v.get("answer").cloned(),
        would_deny: s("would_deny"),
        log: v
            .get("log")
            .and_then(Value::as_str)
            .and_then(|line| serde_json::from_str(line).ok()),
        calls: v
            .get("calls")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|c| c.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default(),
    }
}

/// Per vector: the observations, or the harness's error.
pub type Results = std::collections::BTreeMap<String, Result<Vec<Observed>, String>>;

fn parse_results(text: &str) -> Result<Results, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| {
        format!(
            "harness output is not JSON ({e}): {}",
            text.chars().take(400).collect::<String>()
        )
    })?;
    let map = v.as_object().ok_or("harness output is not an object")?;
    Ok(map
        .iter()
        .map(|(name, r)| {
            let result = match (r.get("ok"), r.get("error")) {
                (Some(Value::Array(steps)), _) => Ok(steps.iter().map(observed).collect()),
                (_, Some(e)) => Err(e.as_str().unwrap_or("error").to_owned()),
                _ => Err("malformed harness result".to_owned()),
            };
            (name.clone(), result)
        })
        .collect())
}

fn built_module() -> Result<PathBuf, String> {
    let wasm = repo_root().join("src/adapters/js/pkg/erpgate_bg.wasm");
    if wasm.exists() {
        Ok(wasm)
    } else {
        Err(format!(
            "{} is missing: run scripts/build-worker",
            wasm.display()
        ))
    }
}

/// Runs the corpus in Node.
pub fn run_in_node(vectors: &[PreparedVector]) -> Result<Results, String> {
    built_module()?;
    let dir = std::env::temp_dir().join(format!("erpgate-node-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let file = dir.join("vectors.json");
    std::fs::write(&file, vectors_json(vectors)).map_err(|e| e.to_string())?;
    let out = Command::new("node")
        .arg(repo_root().join("tests/worker/node-harness.mjs"))
        .arg(&file)
        .output();
    // The corpus copy is the run's alone: never left behind in /tmp.
    let _ = std::fs::remove_dir_all(&dir);
    let out = out.map_err(|e| format!("node: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "node harness failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    parse_results(&String::from_utf8_lossy(&out.stdout))
}

/// What the JS layer sent for one reference-token request with these client
/// credentials (`tests/worker/client-auth.mjs`): the decision's status, each
/// call's purpose and `Authorization`, and the names of its counters.
pub fn client_auth_in_node(
    client_id: &str,
    client_secret: &str,
    token: &str,
) -> Result<Value, String> {
    built_module()?;
    let out = Command::new("node")
        .arg(repo_root().join("tests/worker/client-auth.mjs"))
        .args([client_id, client_secret, token])
        .output()
        .map_err(|e| format!("node: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "node client-auth script failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("node output is not JSON: {e}"))
}

/// A running workerd, killed on drop.
pub struct Workerd {
    child: Child,
    /// `127.0.0.1:port` of its HTTP socket, a free loopback port.
    pub addr: String,
}

impl Drop for Workerd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free loopback port (bound, then released).
pub fn free_port() -> Result<u16, String> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    l.local_addr().map(|a| a.port()).map_err(|e| e.to_string())
}

/// Starts workerd from npm with `config` (relative to the repository root).
pub fn start_workerd(config: &str) -> Result<Workerd, String> {
    built_module()?;
    let bin = repo_root().join("tests/worker/node_modules/.bin/workerd");
    if !bin.exists() {
        return Err(format!(
            "{} is missing: run scripts/build-worker",
            bin.display()
        ));
    }
    let port = free_port()?;
    let addr = format!("127.0.0.1:{port}");
    let child = Command::new(bin)
        .arg("serve")
        .arg(repo_root().join(config))
        .arg("--socket-addr")
        .arg(format!("http={addr}"))
        .arg("--experimental")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("workerd: {e}"))?;
    let w = Workerd {
        child,
        addr: addr.clone(),
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(&addr).is_err() {
        if Instant::now() > deadline {
            return Err("workerd did not start listening".into());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(w)
}

/// A minimal HTTP/1.0 request over loopback; returns status and body.
pub fn http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<(u16, Vec<u8>), String> {
    let mut s = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(120)))
        .map_err(|e| e.to_string())?;
    let mut head = format!(
        "{method} {path} HTTP/1.0\r\nHost: {addr}\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (n, v) in headers {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes())
        .and_then(|()| s.write_all(body))
        .map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).map_err(|e| e.to_string())?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no end of headers")?;
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or("no status")?;
    let mut body = raw[split + 4..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body)?;
    }
    Ok((status, body))
}

fn dechunk(mut data: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let line_end = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("bad chunk")?;
        let size = usize::from_str_radix(String::from_utf8_lossy(&data[..line_end]).trim(), 16)
            .map_err(|e| e.to_string())?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        out.extend_from_slice(data.get(..size).ok_or("short chunk")?);
        data = data.get(size + 2..).ok_or("short chunk")?;
    }
}

/// Runs the corpus in real workerd.
pub fn run_in_workerd(vectors: &[PreparedVector]) -> Result<Results, String> {
    let w = start_workerd("tests/worker/config.capnp")?;
    let (status, body) = http(
        &w.addr,
        "POST",
        "/",
        &[("content-type", "application/json")],
        vectors_json(vectors).as_bytes(),
    )?;
    if status != 200 {
        return Err(format!(
            "workerd harness answered {status}: {}",
            String::from_utf8_lossy(&body)
        ));
    }
    parse_results(&String::from_utf8_lossy(&body))
}
