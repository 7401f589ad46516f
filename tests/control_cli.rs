//! The `vipmux status|flows|diagnose|reload` clients run as processes against a fake appliance.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use vipmux::control::report::*;
use vipmux::control::{ControlHandler, ControlServer, FlowFilter};

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "vipmux-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

struct Appliance {
    /// Number of `status` calls answered "not forwarding" before answering "forwarding".
    not_ready_for: usize,
    status_calls: AtomicUsize,
    never_ready: AtomicBool,
    last_filter: Mutex<Option<FlowFilter>>,
}

impl Appliance {
    fn new(not_ready_for: usize) -> Arc<Appliance> {
        Arc::new(Appliance {
            not_ready_for,
            status_calls: AtomicUsize::new(0),
            never_ready: AtomicBool::new(false),
            last_filter: Mutex::new(None),
        })
    }
}

impl ControlHandler for Appliance {
    fn status(&self) -> Value {
        let n = self.status_calls.fetch_add(1, Ordering::SeqCst);
        let forwarding = n >= self.not_ready_for && !self.never_ready.load(Ordering::SeqCst);
        serde_json::to_value(StatusReport {
            forwarding,
            version: "0.1.0".into(),
            uptime_secs: 42,
            workers: 2,
            config_generation: 1,
            frontends: vec![FrontendStatus {
                name: "web".into(),
                address: "10.0.0.10".into(),
                announced: Some(true),
                rules: vec![RuleStatus {
                    name: "http".into(),
                    kind: "lb".into(),
                    protocol: "tcp".into(),
                    frontend_port: 80,
                    backend_port: 8080,
                    pool: "be".into(),
                    healthy_members: 2,
                    total_members: 3,
                    active_flows: 5,
                }],
            }],
            pools: vec![PoolStatus {
                name: "be".into(),
                members: vec![MemberStatus {
                    name: "vm3".into(),
                    address: "10.1.0.6".into(),
                    healthy: false,
                    admin_state: "up".into(),
                    last_probe: Some("refused".into()),
                    last_probe_age_secs: Some(2.0),
                    active_flows: 0,
                    ..Default::default()
                }],
            }],
            ..Default::default()
        })
        .unwrap()
    }
    fn flows(&self, filter: &FlowFilter) -> Result<Value, String> {
        *self.last_filter.lock().unwrap() = Some(filter.clone());
        Ok(serde_json::to_value(FlowsReport {
            flows: vec![FlowRow {
                frontend: "web".into(),
                rule: "http".into(),
                protocol: "tcp".into(),
                client: "192.0.2.7:51000".into(),
                vip: "10.0.0.10:80".into(),
                backend: "10.1.0.4:8080".into(),
                member: "vm1".into(),
                state: "established".into(),
                idle_secs: 3,
                packets: 10,
                bytes: 1200,
                worker: 1,
                ..Default::default()
            }],
            total: Some(1),
            truncated: false,
        })
        .unwrap())
    }
    fn diagnose(&self) -> Value {
        serde_json::to_value(DiagnoseReport {
            findings: vec![Finding {
                severity: "error".into(),
                check: "probe_failing".into(),
                subject: "pool be member vm3".into(),
                seen: "TCP probe to 10.1.0.6:8080 refused 3 times".into(),
                fix: "start the service on port 8080 or fix the probe port".into(),
            }],
            checks_run: vec!["probe_failing".into(), "snat_exhausted".into()],
            checks: vec![
                CheckRow {
                    check: "probe_failing".into(),
                    status: "fail".into(),
                    subject: "pool be member vm3".into(),
                    evidence: "TCP probe to 10.1.0.6:8080 refused 3 times".into(),
                    fix: "start the service on port 8080 or fix the probe port".into(),
                },
                CheckRow {
                    check: "snat_exhausted".into(),
                    status: "n/a".into(),
                    evidence: "not applicable: outbound SNAT not built".into(),
                    ..Default::default()
                },
            ],
            window_secs: 5.0,
        })
        .unwrap()
    }
    fn reload(&self, path: Option<PathBuf>) -> Result<String, String> {
        match path {
            Some(p) if p.ends_with("broken.toml") => Err(format!(
                "{}: [pools.be] unknown field `membrs`",
                p.display()
            )),
            Some(p) => Ok(format!(
                "configuration generation 2 loaded from {}",
                p.display()
            )),
            None => Ok("configuration generation 2 loaded".into()),
        }
    }
    fn counters(&self) -> Value {
        json!({})
    }
}

fn vipmux(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vipmux"))
        .args(args)
        .output()
        .expect("vipmux runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn serve(dir: &TempDir, app: Arc<Appliance>) -> (ControlServer, String) {
    let path = dir.0.join("vipmux.sock");
    let server = ControlServer::start(&path, app).unwrap();
    (server, path.to_str().unwrap().to_string())
}

#[test]
fn status_forwarding_exits_zero_with_tables() {
    let dir = TempDir::new("cli-status");
    let (_s, sock) = serve(&dir, Appliance::new(0));
    let out = vipmux(&["status", "--socket", &sock]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("forwarding: yes"), "{stdout}");
    assert!(
        stdout.contains("FRONTEND") && stdout.contains("8080") && stdout.contains("2/3"),
        "{stdout}"
    );
    assert!(
        stdout.contains("vm3") && stdout.contains("refused"),
        "{stdout}"
    );

    let out = vipmux(&["status", "--socket", &sock, "--json"]);
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["forwarding"], true);
    assert_eq!(v["frontends"][0]["rules"][0]["backend_port"], 8080);
}

#[test]
fn status_not_forwarding_or_absent_fails() {
    let dir = TempDir::new("cli-status-no");
    let app = Appliance::new(0);
    app.never_ready.store(true, Ordering::SeqCst);
    let (_s, sock) = serve(&dir, app);
    let out = vipmux(&["status", "--socket", &sock]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("not forwarding"),
        "{}",
        text(&out.stderr)
    );
    assert!(text(&out.stdout).starts_with("forwarding: NO"));

    let missing = dir.0.join("absent.sock");
    let out = vipmux(&["status", "--socket", missing.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("absent.sock"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn status_wait_until_forwarding() {
    let dir = TempDir::new("cli-wait");
    let app = Appliance::new(2);
    let (_s, sock) = serve(&dir, app.clone());
    let out = vipmux(&["status", "--socket", &sock, "--wait", "60"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(app.status_calls.load(Ordering::SeqCst), 3);
}

#[test]
fn socket_from_config_file() {
    let dir = TempDir::new("cli-config");
    let (_s, sock) = serve(&dir, Appliance::new(0));
    let cfg = dir.0.join("vipmux.toml");
    let mut doc = toml::Table::new();
    let mut control = toml::Table::new();
    control.insert("socket".into(), sock.clone().into());
    control.insert("metrics".into(), "127.0.0.1:0".into());
    doc.insert("control".into(), control.into());
    let mut frontend = toml::Table::new();
    frontend.insert("name".into(), "x".into());
    doc.insert("frontends".into(), vec![toml::Value::from(frontend)].into());
    fs::write(&cfg, toml::to_string(&doc).unwrap()).unwrap();
    let out = vipmux(&["status", "--config", cfg.to_str().unwrap(), "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // --socket wins over the config.
    let out = vipmux(&[
        "status",
        "--config",
        cfg.to_str().unwrap(),
        "--socket",
        "/nonexistent/x.sock",
    ]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("/nonexistent/x.sock"));
}

#[test]
fn flows_and_diagnose() {
    let dir = TempDir::new("cli-flows");
    let app = Appliance::new(0);
    let (_s, sock) = serve(&dir, app.clone());
    let out = vipmux(&[
        "flows",
        "--socket",
        &sock,
        "--frontend",
        "web",
        "--limit",
        "3",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("192.0.2.7:51000") && stdout.contains("established"),
        "{stdout}"
    );
    assert!(stdout.ends_with("1 of 1 flows shown\n"), "{stdout}");
    let filter = app.last_filter.lock().unwrap().clone().unwrap();
    assert_eq!(
        filter,
        FlowFilter {
            frontend: Some("web".into()),
            rule: None,
            limit: Some(3)
        }
    );

    let out = vipmux(&["diagnose", "--socket", &sock]);
    assert!(out.status.success());
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines[0].starts_with("CHECK") && lines[0].contains("STATUS"),
        "{stdout}"
    );
    assert!(
        lines[1].starts_with("probe_failing")
            && lines[1].contains("fail  pool be member vm3: TCP probe"),
        "{stdout}"
    );
    assert!(
        lines[2].trim_start().starts_with("fix: start the service"),
        "{stdout}"
    );
    assert!(
        lines[3].starts_with("snat_exhausted") && lines[3].contains("n/a"),
        "{stdout}"
    );
    assert!(
        stdout.ends_with("1 fail, 0 warn, 0 ok, 1 n/a (counters over the last 5s)\n"),
        "{stdout}"
    );

    let out = vipmux(&["diagnose", "--socket", &sock, "--json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["findings"][0]["check"], "probe_failing");
}

#[test]
fn reload_success_and_failure() {
    let dir = TempDir::new("cli-reload");
    let (_s, sock) = serve(&dir, Appliance::new(0));
    let out = vipmux(&["reload", "--socket", &sock]);
    assert!(out.status.success());
    assert_eq!(text(&out.stdout), "configuration generation 2 loaded\n");

    let broken = Path::new("/etc/vipmux/broken.toml");
    let out = vipmux(&[
        "reload",
        "--socket",
        &sock,
        "--file",
        broken.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("reload failed") && stderr.contains("unknown field `membrs`"),
        "{stderr}"
    );
}
