//! Control socket end to end: a server with a fake handler on a temporary socket, real clients.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use vipmux::control::socket::{Response, PROTOCOL_VERSION};
use vipmux::control::{
    ControlClient, ControlError, ControlHandler, ControlServer, FlowFilter, Request,
};

/// A directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let dir = std::env::temp_dir().join(format!(
            "vipmux-{tag}-{}-{}-{nanos}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        TempDir(dir)
    }
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

#[derive(Default)]
struct Fake {
    calls: Mutex<Vec<String>>,
}

impl ControlHandler for Fake {
    fn status(&self) -> Value {
        self.calls.lock().unwrap().push("status".into());
        json!({"forwarding": true, "workers": 2})
    }
    fn flows(&self, filter: &FlowFilter) -> Result<Value, String> {
        self.calls
            .lock()
            .unwrap()
            .push(format!("flows {:?} {:?}", filter.frontend, filter.limit));
        if filter.frontend.as_deref() == Some("ghost") {
            return Err("no frontend named ghost".into());
        }
        Ok(json!({"flows": [{"client": "192.0.2.1:40000", "backend": "10.1.0.4:80"}], "total": 1}))
    }
    fn diagnose(&self) -> Value {
        self.calls.lock().unwrap().push("diagnose".into());
        json!({"findings": [{"severity": "warning", "check": "probe_failing"}]})
    }
    fn reload(&self, path: Option<PathBuf>) -> Result<String, String> {
        self.calls.lock().unwrap().push(format!("reload {path:?}"));
        match path {
            Some(p) if p.ends_with("broken.toml") => {
                Err("broken.toml: [frontends.web] port: 70000 is not a port".into())
            }
            Some(p) => Ok(format!("loaded {}", p.display())),
            None => Ok("reloaded".into()),
        }
    }
    fn counters(&self) -> Value {
        self.calls.lock().unwrap().push("counters".into());
        json!({"received": 10, "transmitted": 9, "drops": {"no_rule": 1}})
    }
}

fn start(dir: &TempDir) -> (ControlServer, Arc<Fake>, PathBuf) {
    let path = dir.path().join("run").join("vipmux.sock");
    let fake = Arc::new(Fake::default());
    let server = ControlServer::start(&path, fake.clone()).expect("server starts");
    (server, fake, path)
}

#[test]
fn socket_and_parent_permissions() {
    let dir = TempDir::new("ctl-perm");
    let (server, _fake, path) = start(&dir);
    let meta = fs::symlink_metadata(&path).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let parent = fs::metadata(path.parent().unwrap()).unwrap();
    assert_eq!(parent.permissions().mode() & 0o777, 0o700);
    // No temporary file left beside the socket.
    let names: Vec<_> = fs::read_dir(path.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("vipmux.sock")]);
    server.shutdown();
    assert!(!path.exists(), "socket file removed on shutdown");
}

#[test]
fn every_command_round_trips() {
    let dir = TempDir::new("ctl-rt");
    let (_server, fake, path) = start(&dir);
    let mut c = ControlClient::connect(&path).unwrap();
    assert_eq!(
        c.request(&Request::Status).unwrap(),
        json!({"forwarding": true, "workers": 2})
    );
    let flows = c
        .request(&Request::Flows(FlowFilter {
            frontend: Some("web".into()),
            rule: None,
            limit: Some(5),
        }))
        .unwrap();
    assert_eq!(flows["flows"][0]["client"], "192.0.2.1:40000");
    assert_eq!(
        c.request(&Request::Diagnose).unwrap()["findings"][0]["check"],
        "probe_failing"
    );
    assert_eq!(
        c.request(&Request::Counters).unwrap()["drops"]["no_rule"],
        1
    );
    assert_eq!(
        c.request(&Request::Reload { path: None }).unwrap(),
        json!("reloaded")
    );
    assert_eq!(
        c.request(&Request::Reload {
            path: Some("/etc/vipmux/new.toml".into())
        })
        .unwrap(),
        json!("loaded /etc/vipmux/new.toml")
    );
    match c.request(&Request::Reload {
        path: Some("/etc/broken.toml".into()),
    }) {
        Err(ControlError::Remote(m)) => assert!(m.contains("70000 is not a port"), "{m}"),
        other => panic!("expected the handler's error, got {other:?}"),
    }
    match c.request(&Request::Flows(FlowFilter {
        frontend: Some("ghost".into()),
        ..Default::default()
    })) {
        Err(ControlError::Remote(m)) => assert_eq!(m, "no frontend named ghost"),
        other => panic!("expected the handler's error, got {other:?}"),
    }
    let calls = fake.calls.lock().unwrap().clone();
    assert_eq!(
        calls,
        vec![
            "status",
            "flows Some(\"web\") Some(5)",
            "diagnose",
            "counters",
            "reload None",
            "reload Some(\"/etc/vipmux/new.toml\")",
            "reload Some(\"/etc/broken.toml\")",
            "flows Some(\"ghost\") None",
        ]
    );
}

#[test]
fn raw_protocol_lines() {
    let dir = TempDir::new("ctl-raw");
    let (_server, _fake, path) = start(&dir);
    let stream = UnixStream::connect(&path).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut w = stream.try_clone().unwrap();
    let mut r = BufReader::new(stream);
    let mut ask = |line: &str| -> Value {
        w.write_all(line.as_bytes()).unwrap();
        let mut out = String::new();
        r.read_line(&mut out).unwrap();
        assert!(out.ends_with('\n'));
        serde_json::from_str(&out).unwrap()
    };
    assert_eq!(
        ask("{\"cmd\":\"status\"}\n"),
        json!({"v": PROTOCOL_VERSION, "ok": true, "data": {"forwarding": true, "workers": 2}})
    );
    // Malformed requests get an error response and the connection stays usable.
    for bad in [
        "not json\n",
        "{\"cmd\":\"selfdestruct\"}\n",
        "{\"cmd\":\"flows\",\"limit\":\"many\"}\n",
        "[1,2]\n",
    ] {
        let v = ask(bad);
        assert_eq!(v["ok"], false, "{bad}");
        assert_eq!(v["v"], PROTOCOL_VERSION);
        assert!(
            v["error"].as_str().unwrap().starts_with("bad request"),
            "{v}"
        );
    }
    assert_eq!(ask("{\"cmd\":\"counters\"}\n")["data"]["received"], 10);
}

#[test]
fn garbage_and_oversize_do_not_kill_the_server() {
    let dir = TempDir::new("ctl-junk");
    let (_server, _fake, path) = start(&dir);
    {
        let mut s = UnixStream::connect(&path).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(&[0xff, 0xfe, 0x00, b'\n']).unwrap();
        let mut out = String::new();
        BufReader::new(&s).read_line(&mut out).unwrap();
        let v: Response = serde_json::from_str(&out).unwrap();
        assert!(!v.ok);
    }
    {
        let mut s = UnixStream::connect(&path).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let big = vec![b'x'; 200 * 1024];
        // The server may close before reading everything; a write error is fine.
        let _ = s.write_all(&big);
        let mut out = String::new();
        let _ = BufReader::new(&s).read_line(&mut out);
        if !out.is_empty() {
            let v: Response = serde_json::from_str(&out).unwrap();
            assert!(v.error.unwrap().contains("longer than"));
        }
    }
    {
        // A client that connects and hangs up at once.
        drop(UnixStream::connect(&path).unwrap());
    }
    let mut c = ControlClient::connect(&path).unwrap();
    assert_eq!(c.request(&Request::Status).unwrap()["forwarding"], true);
}

#[test]
fn client_times_out_on_a_silent_server() {
    let dir = TempDir::new("ctl-silent");
    fs::create_dir_all(dir.path()).unwrap();
    let path = dir.path().join("silent.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let holder = std::thread::spawn(move || {
        let (conn, _) = listener.accept().unwrap();
        // Hold the connection open without answering until the test is finished.
        let _ = done_rx.recv();
        drop(conn);
    });
    let mut c = ControlClient::connect_with_timeout(&path, Duration::from_millis(200)).unwrap();
    let err = c.request(&Request::Status).unwrap_err();
    assert!(err.is_timeout(), "expected a timeout, got {err:?}");
    assert!(err.to_string().contains("no answer in time"), "{err}");
    done_tx.send(()).unwrap();
    holder.join().unwrap();
}

#[test]
fn connect_to_missing_socket_fails_with_path() {
    let dir = TempDir::new("ctl-missing");
    let path = dir.path().join("nothing.sock");
    let err = ControlClient::connect(&path).unwrap_err();
    assert!(matches!(err, ControlError::Io(..)));
    assert!(err.to_string().contains("nothing.sock"), "{err}");
}

#[test]
fn stale_socket_is_replaced_live_one_is_not() {
    let dir = TempDir::new("ctl-stale");
    fs::create_dir_all(dir.path()).unwrap();
    let path = dir.path().join("vipmux.sock");
    // A stale socket: bound, then its listener closed; the file stays.
    drop(UnixListener::bind(&path).unwrap());
    assert!(path.exists());
    let server =
        ControlServer::start(&path, Arc::new(Fake::default())).expect("stale socket replaced");
    assert_eq!(
        ControlClient::connect(&path)
            .unwrap()
            .request(&Request::Status)
            .unwrap()["workers"],
        2
    );
    // A second server on the same live socket is refused and leaves the first one working.
    let err = ControlServer::start(&path, Arc::new(Fake::default())).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse);
    assert_eq!(
        ControlClient::connect(&path)
            .unwrap()
            .request(&Request::Status)
            .unwrap()["workers"],
        2
    );
    drop(server);
    // A regular file in the way is never deleted.
    fs::write(&path, b"precious").unwrap();
    assert!(ControlServer::start(&path, Arc::new(Fake::default())).is_err());
    assert_eq!(fs::read(&path).unwrap(), b"precious");
}

#[test]
fn many_clients_at_once() {
    let dir = TempDir::new("ctl-many");
    let (_server, _fake, path) = start(&dir);
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let path = path.clone();
            std::thread::spawn(move || {
                let mut c = ControlClient::connect(&path).unwrap();
                for _ in 0..20 {
                    assert_eq!(c.request(&Request::Counters).unwrap()["transmitted"], 9);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn shutdown_leaves_a_successors_socket_alone() {
    let dir = TempDir::new("ctl-succ");
    let (first, _fake, path) = start(&dir);
    // Someone removes our socket file and a new server takes the path.
    fs::remove_file(&path).unwrap();
    let second = ControlServer::start(&path, Arc::new(Fake::default())).unwrap();
    drop(first);
    assert!(
        path.exists(),
        "the successor's socket must survive the first server's shutdown"
    );
    assert_eq!(
        ControlClient::connect(&path)
            .unwrap()
            .request(&Request::Status)
            .unwrap()["workers"],
        2
    );
    second.shutdown();
    assert!(!path.exists());
}

#[test]
fn idle_clients_do_not_lock_others_out() {
    let dir = TempDir::new("ctl-idle");
    let (_server, _fake, path) = start(&dir);
    // More idle connections than the server had threads for before: each is only a task now.
    let idle: Vec<UnixStream> = (0..200)
        .map(|_| UnixStream::connect(&path).unwrap())
        .collect();
    let mut c = ControlClient::connect(&path).unwrap();
    assert_eq!(c.request(&Request::Counters).unwrap()["transmitted"], 9);
    drop(idle);
}
