//! The adversarial suite against the real `erpgate` binary over loopback:
//! what an attacker who reads the code tries first. Each test names the hole
//! it holds shut; `HARDENING.md` lists them.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::{BufRead, BufReader, Read as _};
use std::process::{Child, Command, Stdio};

mod net;

/// The binary with these arguments, no inherited configuration.
fn erpgate(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_erpgate"));
    command
        .args(args)
        .env_remove("ERPGATE_CONFIG")
        .env_remove("ERPGATE_ADMIN_TOKEN")
        .env_remove("ERPGATE_DATABASE")
        .env("RUST_LOG", "warn");
    command
}

/// Runs a command expected to refuse: its exit status and standard error.
fn refused(command: &mut Command) -> String {
    let out = command.output().unwrap();
    assert!(!out.status.success(), "it started");
    String::from_utf8(out.stderr).unwrap()
}

/// Item 9: any command without `--config` ran the demo instance, whose
/// admin password and secrets are published. Now it refuses and says why.
#[test]
fn without_config_or_demo_the_host_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        vec!["serve", "--listen", "127.0.0.1:0"],
        vec!["up"],
        vec!["apps", "list"],
        vec!["token", "list"],
    ] {
        let err = refused(erpgate(&args).arg("--data").arg(dir.path()));
        assert!(
            err.contains("--config") && err.contains("--demo"),
            "{args:?}: {err}"
        );
    }
    assert!(
        std::fs::read_dir(dir.path()).unwrap().next().is_none(),
        "nothing was written"
    );
}

/// Item 9: the demo instance on `--listen 0.0.0.0` served its published
/// credentials to the network. Demo mode is loopback only, every listener.
#[test]
fn the_demo_instance_refuses_a_listener_beyond_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    for args in [
        vec!["--demo", "--data", data, "serve", "--listen", "0.0.0.0:0"],
        vec![
            "--demo",
            "--data",
            data,
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "0.0.0.0:0",
        ],
        vec!["--demo", "--data", data, "up", "--gateway", "0.0.0.0:0"],
        vec!["--demo", "--data", data, "up", "--identity", "[::]:0"],
    ] {
        let err = refused(&mut erpgate(&args));
        assert!(err.contains("loopback only"), "{args:?}: {err}");
    }
}

/// Item 13: `ERPGATE_ADMIN_TOKEN` had no minimum strength.
#[test]
fn a_weak_admin_credential_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    for weak in [
        "admin",
        "short-but-not-enough-1234567",
        " padded-credential-0123456789abcdef ",
    ] {
        let err = refused(
            erpgate(&["--demo", "serve", "--listen", "127.0.0.1:0"])
                .arg("--data")
                .arg(dir.path())
                .env("ERPGATE_ADMIN_TOKEN", weak),
        );
        assert!(err.contains("ERPGATE_ADMIN_TOKEN"), "{weak:?}: {err}");
    }
}

/// A host started from a real configuration file: its process, banner
/// lines up to the admin credential line, and its admin base URL.
fn start_configured(config: &std::path::Path) -> (Child, Vec<String>, String) {
    let mut child = erpgate(&["serve"])
        .arg("--config")
        .arg(config)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        assert!(
            reader.read_line(&mut line).unwrap() > 0,
            "banner: {lines:?}"
        );
        let done = line.starts_with("  admin credential");
        lines.push(line.trim_end().to_owned());
        if done {
            break;
        }
    }
    std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
    let metrics = lines
        .iter()
        .find(|l| l.starts_with("  metrics"))
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .trim_end_matches("/metrics")
        .to_owned();
    (child, lines, metrics)
}

/// Item 13: the admin credential was printed to stdout, where logs and CI
/// keep it. A real instance writes a generated one to a file only its owner
/// reads, and prints where; the admin API answers on its own listener only.
#[tokio::test]
async fn a_real_instance_never_prints_its_admin_credential() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("erpgate.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\ndata_dir = \"{}\"\n\n[[apps]]\nclient_id = \"svc\"\nsecret = \"a-real-secret-nobody-prints\"\nsystem_user = \"svc-user\"\nsystem_user_allowed = true\nscope = \"read\"\n\n[[users]]\nlogin = \"svc-user\"\n",
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let (mut child, banner, operator) = start_configured(&config);
    let file = dir.path().join("data/admin-credential");
    let mut credential = String::new();
    std::fs::File::open(&file)
        .unwrap()
        .read_to_string(&mut credential)
        .unwrap();
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "owner only");
    }
    let text = banner.join("\n");
    assert!(credential.len() >= 32);
    assert!(!text.contains(&credential), "{text}");
    assert!(!text.contains("a-real-secret-nobody-prints"), "{text}");
    assert!(text.contains(&file.display().to_string()), "{text}");
    let (status, _) = net::admin_call(
        &operator,
        &credential,
        "GET",
        "/admin/reference-tokens",
        None,
    )
    .await;
    assert_eq!(status, 200);
    let public = banner[0]
        .trim_end_matches(')')
        .rsplit(' ')
        .next()
        .unwrap()
        .to_owned();
    let (status, _) = net::admin_call(
        &format!("http://{public}"),
        &credential,
        "GET",
        "/admin/reference-tokens",
        None,
    )
    .await;
    assert_eq!(status, 404, "not on the public listener");
    child.kill().unwrap();
    child.wait().unwrap();
}

/// Item 9: seeding only inserted, so an app edited in the file (a scope
/// withdrawn, the app disabled) kept its stored form, and demo records
/// survived a switch to a real configuration unnoticed. The file is now the
/// source of truth for what it declares, and demo leftovers are named.
#[test]
fn the_configuration_file_is_the_source_of_truth_and_demo_leftovers_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("erpgate.toml");
    let write = |scope: &str, enabled: bool| {
        std::fs::write(
            &config,
            format!(
                "[server]\ndata_dir = \"{}\"\n\n[[apps]]\nclient_id = \"svc\"\nsecret = \"a-real-secret-0123456789\"\nsystem_user = \"svc-user\"\nsystem_user_allowed = true\nscope = \"{scope}\"\nenabled = {enabled}\n\n[[users]]\nlogin = \"svc-user\"\n",
                data.display()
            ),
        )
        .unwrap();
    };
    let list = || {
        let out = erpgate(&["apps", "list"])
            .arg("--config")
            .arg(&config)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        (
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    };
    write("read update", true);
    let (apps, warnings) = list();
    assert!(
        apps.contains("svc Confidential enabled=true scope=\"read update\""),
        "{apps}"
    );
    assert!(!warnings.contains("demo record"), "{warnings}");
    write("read", false);
    let (apps, _) = list();
    assert!(
        apps.contains("svc Confidential enabled=false scope=\"read\""),
        "{apps}"
    );

    // The demo instance run once in the same directory leaves its records.
    let out = erpgate(&["--demo", "apps", "list"])
        .arg("--data")
        .arg(&data)
        .output()
        .unwrap();
    assert!(out.status.success());
    let (_, warnings) = list();
    for named in [
        "app demo.service with the demo secret",
        "user admin with the demo password",
    ] {
        assert!(warnings.contains(named), "{named}: {warnings}");
    }
}
