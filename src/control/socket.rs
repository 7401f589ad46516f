//! The control socket: a Unix stream socket (mode 0600) speaking line-delimited JSON.
//!
//! Each request is one JSON object on one line, e.g. `{"cmd":"status"}`,
//! `{"cmd":"flows","frontend":"web","limit":100}`, `{"cmd":"diagnose"}`,
//! `{"cmd":"reload","path":"/etc/vipmux/vipmux.toml"}`, `{"cmd":"counters"}` or
//! `{"cmd":"capture","op":"start","reasons":["no_rule"]}` (see [`super::capture`]). Each answer is one
//! JSON object on one line: `{"v":1,"ok":true,"data":...}` or `{"v":1,"ok":false,"error":"..."}`.
//! A connection may carry several requests in turn; the server closes it on EOF, on a read timeout or
//! after a line longer than [`MAX_REQUEST_BYTES`].
//!
//! The server runs on its own thread, holding each connection as an async task (at most
//! [`MAX_CONNECTIONS`] at once, see [`super::serve`]); the appliance answers through
//! [`ControlHandler`], called on a small bounded pool of threads.

use std::fmt;
use std::fs;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use super::capture::CaptureOp;
pub use crate::bgp::BgpReport;

use super::serve::{self, ServerThread};

/// Version number carried in every response as `"v"`.
pub const PROTOCOL_VERSION: u32 = 1;

/// Longest request line the server accepts, in bytes (newline included).
pub const MAX_REQUEST_BYTES: usize = 64 * 1024;

/// Longest response line the client accepts, in bytes.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;

/// Most connections the server holds open at the same time; more are answered with an error and
/// closed. Each costs a task and at most [`MAX_REQUEST_BYTES`] of buffer, not a thread.
pub const MAX_CONNECTIONS: usize = 640;

/// How long the server waits for a whole request line on an open connection (idle time included),
/// and for the client to take its answer.
pub const SERVER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a connection over [`MAX_CONNECTIONS`] is given to take its "busy" answer.
const BUSY_WRITE_TIMEOUT: Duration = Duration::from_secs(1);

/// Default client timeout for connecting, sending and waiting for the answer.
pub const DEFAULT_CLIENT_TIMEOUT: Duration = Duration::from_secs(10);

/// Which flows `flows` should list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowFilter {
    /// Only flows of this frontend (by name), if set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frontend: Option<String>,
    /// Only flows of this rule (by name), if set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// At most this many flows, if set (the handler may apply its own cap as well).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
}

/// One request on the control socket, tagged by `"cmd"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "lowercase")]
pub enum Request {
    /// Overall state: forwarding or not, frontends, rules, pools, members and their health.
    Status,
    /// Flow-table entries, filtered.
    Flows(FlowFilter),
    /// The troubleshooting checklist's findings.
    Diagnose,
    /// Reload the configuration, from `path` or else from the file the appliance was started with.
    Reload {
        /// Configuration file to load instead of the current one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        path: Option<PathBuf>,
    },
    /// The raw aggregated counters.
    Counters,
    /// From the BGP helper: the daemon's sessions and what it announces; answered with the
    /// routes vipmux wants announced (`{"wanted":[...]}`).
    Bgp(BgpReport),
    /// Withdraw every VIP, keep forwarding until traffic stops or the deadline passes, then stop.
    Drain {
        /// Longest drain in milliseconds (default: [`DEFAULT_DRAIN_DEADLINE`]).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        deadline_ms: Option<u64>,
    },
    /// `vipmux capture`: arm, read or stop a capture of dropped (or other) frames.
    Capture(CaptureOp),
}

/// Default deadline of `vipmux drain`.
pub const DEFAULT_DRAIN_DEADLINE: Duration = Duration::from_secs(60);

/// One response on the control socket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Response {
    /// Protocol version, [`PROTOCOL_VERSION`].
    pub v: u32,
    /// Whether the request succeeded.
    pub ok: bool,
    /// The answer's payload when `ok`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
    /// What went wrong when not `ok`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Response {
    /// A successful response carrying `data`.
    pub fn ok(data: Value) -> Self {
        Response {
            v: PROTOCOL_VERSION,
            ok: true,
            data: Some(data),
            error: None,
        }
    }

    /// A failed response carrying `error`.
    pub fn err(error: impl Into<String>) -> Self {
        Response {
            v: PROTOCOL_VERSION,
            ok: false,
            data: None,
            error: Some(error.into()),
        }
    }

    /// The response as one JSON line, newline included.
    pub fn to_line(&self) -> String {
        let mut s = serde_json::to_string(self).unwrap_or_else(|e| {
            format!(
                r#"{{"v":{PROTOCOL_VERSION},"ok":false,"error":"cannot encode response: {e}"}}"#
            )
        });
        s.push('\n');
        s
    }
}

/// What the appliance implements to answer control requests. Calls come from the control server's
/// connection threads, possibly several at once; they must not block for long.
pub trait ControlHandler: Send + Sync {
    /// The `status` report; see [`crate::control::report::StatusReport`] for the expected shape.
    fn status(&self) -> Value;
    /// The `flows` report for `filter` (see [`crate::control::report::FlowsReport`]), or an error
    /// such as an unknown frontend.
    fn flows(&self, filter: &FlowFilter) -> Result<Value, String>;
    /// The `diagnose` report; see [`crate::control::report::DiagnoseReport`].
    fn diagnose(&self) -> Value;
    /// Reload the configuration (from `path`, else the current file): a summary, or why it failed.
    fn reload(&self, path: Option<PathBuf>) -> Result<String, String>;
    /// The aggregated counters, free-form JSON.
    fn counters(&self) -> Value;
    /// The BGP helper's report; the answer carries the wanted routes (`{"wanted":[...]}`).
    fn bgp(&self, report: BgpReport) -> Result<Value, String> {
        let _ = report;
        Err("this appliance does not announce over BGP".into())
    }
    /// A capture request (see [`crate::control::capture`]): its answer, or why not.
    fn capture(&self, op: CaptureOp) -> Result<Value, String> {
        let _ = op;
        Err("this appliance cannot capture".into())
    }
    /// Start draining with `deadline`: a summary, or why not.
    fn drain(&self, deadline: Duration) -> Result<Value, String> {
        let _ = deadline;
        Err("this appliance cannot drain".into())
    }
}

/// Parses one request line (surrounding whitespace and the newline allowed): the request, or the
/// error message a client is answered with. Pure, and never panics on malformed input.
pub fn parse_request(line: &[u8]) -> Result<Request, String> {
    let line = std::str::from_utf8(line).map_err(|_| "bad request: not UTF-8".to_string())?;
    serde_json::from_str(line.trim()).map_err(|e| format!("bad request: {e}"))
}

/// Answer one request line with `handler`: never panics on malformed input.
pub fn dispatch(handler: &dyn ControlHandler, line: &str) -> Response {
    let request = match parse_request(line.as_bytes()) {
        Ok(r) => r,
        Err(e) => return Response::err(e),
    };
    match request {
        Request::Status => Response::ok(handler.status()),
        Request::Flows(filter) => match handler.flows(&filter) {
            Ok(v) => Response::ok(v),
            Err(e) => Response::err(e),
        },
        Request::Diagnose => Response::ok(handler.diagnose()),
        Request::Reload { path } => match handler.reload(path) {
            Ok(msg) => Response::ok(Value::String(msg)),
            Err(e) => Response::err(e),
        },
        Request::Counters => Response::ok(handler.counters()),
        Request::Bgp(report) => match handler.bgp(report) {
            Ok(v) => Response::ok(v),
            Err(e) => Response::err(e),
        },
        Request::Capture(op) => match handler.capture(op) {
            Ok(v) => Response::ok(v),
            Err(e) => Response::err(e),
        },
        Request::Drain { deadline_ms } => {
            let deadline = deadline_ms.map_or(DEFAULT_DRAIN_DEADLINE, Duration::from_millis);
            match handler.drain(deadline) {
                Ok(v) => Response::ok(v),
                Err(e) => Response::err(e),
            }
        }
    }
}

/// A running control server; dropping it stops the server and removes the socket file.
pub struct ControlServer {
    path: PathBuf,
    /// (device, inode) of the socket file we placed, so shutdown never removes someone else's.
    identity: Option<(u64, u64)>,
    thread: Option<ServerThread>,
}

impl fmt::Debug for ControlServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ControlServer")
            .field("path", &self.path)
            .finish()
    }
}

impl ControlServer {
    /// Bind the socket at `path` (parent created 0700 if missing, file mode 0600, a stale socket
    /// replaced only if nothing listens on it) and serve `handler` on a new thread.
    pub fn start(path: &Path, handler: Arc<dyn ControlHandler>) -> io::Result<ControlServer> {
        let listener = bind_socket(path)?;
        let identity = fs::symlink_metadata(path).ok().map(|m| (m.dev(), m.ino()));
        let thread = ServerThread::spawn("vipmux-control", move |stop| {
            serve_socket(listener, handler, stop)
        })?;
        Ok(ControlServer {
            path: path.to_path_buf(),
            identity,
            thread: Some(thread),
        })
    }

    /// The socket path the server listens on.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stop accepting, wait for the accept thread and remove the socket file.
    pub fn shutdown(mut self) {
        self.stop_now();
    }

    fn stop_now(&mut self) {
        let Some(mut thread) = self.thread.take() else {
            return;
        };
        thread.stop();
        let ours =
            |p: &Path| fs::symlink_metadata(p).ok().map(|m| (m.dev(), m.ino())) == self.identity;
        if ours(&self.path) {
            let _ = fs::remove_file(&self.path);
        }
    }
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        self.stop_now();
    }
}

/// Create the parent directory (0700) if missing, refuse a live socket, replace a stale one, and
/// bind atomically with mode 0600 (bound under a temporary name, chmod, then renamed into place).
fn bind_socket(path: &Path) -> io::Result<UnixListener> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !parent.exists() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&parent)?;
    }
    match fs::symlink_metadata(path) {
        Ok(meta) => {
            if !meta.file_type().is_socket() {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!(
                        "{} exists and is not a socket; not replacing it",
                        path.display()
                    ),
                ));
            }
            if UnixStream::connect(path).is_ok() {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    format!(
                        "{}: another process is listening on this socket",
                        path.display()
                    ),
                ));
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let file_name = path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{}: no file name", path.display()),
        )
    })?;
    let mut tmp_name = file_name.to_os_string();
    tmp_name.push(format!(".{}.tmp", std::process::id()));
    let tmp = parent.join(tmp_name);
    let _ = fs::remove_file(&tmp);
    let listener = UnixListener::bind(&tmp)?;
    let placed = fs::set_permissions(&tmp, fs::Permissions::from_mode(0o600))
        .and_then(|()| fs::rename(&tmp, path));
    if let Err(e) = placed {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    Ok(listener)
}

/// Serve `handler` on `listener` until `stop`: at most [`MAX_CONNECTIONS`] connections at once.
async fn serve_socket(
    listener: UnixListener,
    handler: Arc<dyn ControlHandler>,
    stop: tokio::sync::oneshot::Receiver<()>,
) {
    let listener = match listener
        .set_nonblocking(true)
        .and_then(|()| tokio::net::UnixListener::from_std(listener))
    {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(error = %e, "control socket: cannot serve");
            return;
        }
    };
    let serve = |conn| serve_connection(conn, Arc::clone(&handler));
    serve::accept_loop(listener, MAX_CONNECTIONS, serve, answer_busy, stop).await;
}

/// Tell a connection over the limit that the server is busy, and close it.
async fn answer_busy(mut conn: tokio::net::UnixStream) {
    let line = Response::err("server busy: too many connections").to_line();
    let _ = tokio::time::timeout(BUSY_WRITE_TIMEOUT, conn.write_all(line.as_bytes())).await;
}

/// Serve requests on one connection until EOF, an oversize line, a request not complete within
/// [`SERVER_READ_TIMEOUT`] or an answer not taken within it.
async fn serve_connection(stream: tokio::net::UnixStream, handler: Arc<dyn ControlHandler>) {
    let (reader, mut writer) = stream.into_split();
    let mut reader = tokio::io::BufReader::new(reader);
    loop {
        let mut buf = Vec::new();
        let limited = (&mut reader).take(MAX_REQUEST_BYTES as u64);
        let read = tokio::time::timeout(SERVER_READ_TIMEOUT, read_line(limited, &mut buf)).await;
        let n = match read {
            Ok(Ok(n)) => n,
            _ => return,
        };
        if n == 0 {
            return;
        }
        let complete = buf.last() == Some(&b'\n');
        let resp = if !complete && n >= MAX_REQUEST_BYTES {
            Response::err(format!("request longer than {MAX_REQUEST_BYTES} bytes"))
        } else {
            match String::from_utf8(buf) {
                Ok(line) if line.trim().is_empty() => continue,
                Ok(line) => {
                    let handler = Arc::clone(&handler);
                    serve::off_thread(move || dispatch(handler.as_ref(), &line))
                        .await
                        .unwrap_or_else(|| Response::err("internal error answering the request"))
                }
                Err(_) => Response::err("bad request: not UTF-8"),
            }
        };
        let line = resp.to_line();
        let wrote =
            tokio::time::timeout(SERVER_READ_TIMEOUT, writer.write_all(line.as_bytes())).await;
        if !matches!(wrote, Ok(Ok(()))) || !complete {
            return;
        }
    }
}

/// Read up to and including a newline from `r` into `buf`.
async fn read_line<R: tokio::io::AsyncBufRead + Unpin>(
    mut r: R,
    buf: &mut Vec<u8>,
) -> io::Result<usize> {
    r.read_until(b'\n', buf).await
}

/// Why a control request failed.
#[derive(Debug)]
pub enum ControlError {
    /// Could not connect, send or receive (including timeouts); carries the socket path.
    Io(PathBuf, io::Error),
    /// The answer was not a valid response.
    Protocol(String),
    /// The appliance answered with `"ok": false` and this error.
    Remote(String),
    /// The socket path could not be determined (e.g. an unreadable `--config` file).
    Config(String),
}

impl ControlError {
    /// Whether this is a timeout waiting on the server.
    pub fn is_timeout(&self) -> bool {
        matches!(self, ControlError::Io(_, e)
            if matches!(e.kind(), io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock))
    }
}

impl fmt::Display for ControlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ControlError::Io(path, e) if self.is_timeout() => {
                write!(
                    f,
                    "control socket {}: no answer in time ({e})",
                    path.display()
                )
            }
            ControlError::Io(path, e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
                ) =>
            {
                write!(
                    f,
                    "control socket {}: {e} (is vipmux running?)",
                    path.display()
                )
            }
            ControlError::Io(path, e) => write!(f, "control socket {}: {e}", path.display()),
            ControlError::Protocol(m) => write!(f, "bad answer from the appliance: {m}"),
            ControlError::Remote(m) => f.write_str(m),
            ControlError::Config(m) => write!(f, "cannot find the control socket: {m}"),
        }
    }
}

impl std::error::Error for ControlError {}

/// A connection to the control socket.
#[derive(Debug)]
pub struct ControlClient {
    path: PathBuf,
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl ControlClient {
    /// Connect to the socket at `path` with [`DEFAULT_CLIENT_TIMEOUT`].
    pub fn connect(path: &Path) -> Result<ControlClient, ControlError> {
        Self::connect_with_timeout(path, DEFAULT_CLIENT_TIMEOUT)
    }

    /// Connect to the socket at `path`; every later send and receive gives up after `timeout`.
    pub fn connect_with_timeout(
        path: &Path,
        timeout: Duration,
    ) -> Result<ControlClient, ControlError> {
        let io_err = |e| ControlError::Io(path.to_path_buf(), e);
        let stream = UnixStream::connect(path).map_err(io_err)?;
        stream.set_read_timeout(Some(timeout)).map_err(io_err)?;
        stream.set_write_timeout(Some(timeout)).map_err(io_err)?;
        let writer = stream.try_clone().map_err(io_err)?;
        Ok(ControlClient {
            path: path.to_path_buf(),
            reader: BufReader::new(stream),
            writer,
        })
    }

    /// Send `request` and return the answer's `data`, or the appliance's error as [`ControlError::Remote`].
    pub fn request(&mut self, request: &Request) -> Result<Value, ControlError> {
        let resp = self.request_raw(request)?;
        if resp.ok {
            Ok(resp.data.unwrap_or(Value::Null))
        } else {
            Err(ControlError::Remote(
                resp.error.unwrap_or_else(|| "unspecified error".into()),
            ))
        }
    }

    /// Send `request` and return the whole response, whether `ok` or not.
    pub fn request_raw(&mut self, request: &Request) -> Result<Response, ControlError> {
        let mut line =
            serde_json::to_string(request).map_err(|e| ControlError::Protocol(e.to_string()))?;
        line.push('\n');
        self.send_line(&line)
    }

    /// Send one raw line (a newline is added if missing) and read one response: for tests and tools.
    pub fn send_line(&mut self, line: &str) -> Result<Response, ControlError> {
        let io_err = |e| ControlError::Io(self.path.clone(), e);
        self.writer.write_all(line.as_bytes()).map_err(io_err)?;
        if !line.ends_with('\n') {
            self.writer.write_all(b"\n").map_err(io_err)?;
        }
        self.writer.flush().map_err(io_err)?;
        let mut buf = Vec::new();
        let n = (&mut self.reader)
            .take(MAX_RESPONSE_BYTES as u64)
            .read_until(b'\n', &mut buf)
            .map_err(|e| ControlError::Io(self.path.clone(), e))?;
        if n == 0 {
            return Err(ControlError::Protocol(
                "connection closed without an answer".into(),
            ));
        }
        let resp: Response =
            serde_json::from_slice(&buf).map_err(|e| ControlError::Protocol(e.to_string()))?;
        if resp.v != PROTOCOL_VERSION {
            return Err(ControlError::Protocol(format!(
                "protocol version {} (this client speaks {PROTOCOL_VERSION})",
                resp.v
            )));
        }
        Ok(resp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    struct Fixed;
    impl ControlHandler for Fixed {
        fn status(&self) -> Value {
            json!({"forwarding": true})
        }
        fn flows(&self, filter: &FlowFilter) -> Result<Value, String> {
            match filter.frontend.as_deref() {
                Some("nope") => Err("unknown frontend nope".into()),
                _ => Ok(json!({"flows": [], "limit": filter.limit})),
            }
        }
        fn diagnose(&self) -> Value {
            json!({"findings": []})
        }
        fn reload(&self, path: Option<PathBuf>) -> Result<String, String> {
            path.map(|p| format!("loaded {}", p.display()))
                .ok_or_else(|| "no path".into())
        }
        fn counters(&self) -> Value {
            json!({"received": 1})
        }
    }

    #[test]
    fn requests_parse_from_the_documented_forms() {
        let r: Request =
            serde_json::from_str(r#"{"cmd":"flows","frontend":"web","limit":5}"#).unwrap();
        assert_eq!(
            r,
            Request::Flows(FlowFilter {
                frontend: Some("web".into()),
                rule: None,
                limit: Some(5)
            })
        );
        let r: Request = serde_json::from_str(r#"{"cmd":"flows"}"#).unwrap();
        assert_eq!(r, Request::Flows(FlowFilter::default()));
        let r: Request = serde_json::from_str(r#"{"cmd":"reload"}"#).unwrap();
        assert_eq!(r, Request::Reload { path: None });
        let s = serde_json::to_string(&Request::Reload {
            path: Some("/a.toml".into()),
        })
        .unwrap();
        assert_eq!(s, r#"{"cmd":"reload","path":"/a.toml"}"#);
        assert_eq!(
            serde_json::to_string(&Request::Status).unwrap(),
            r#"{"cmd":"status"}"#
        );
    }

    #[test]
    fn parse_request_takes_a_raw_line() {
        assert_eq!(
            parse_request(b" {\"cmd\":\"diagnose\"}\n"),
            Ok(Request::Diagnose)
        );
        assert_eq!(
            parse_request(b"\xff"),
            Err("bad request: not UTF-8".to_string())
        );
        assert!(parse_request(b"{}")
            .unwrap_err()
            .starts_with("bad request: "));
    }

    #[test]
    fn dispatch_answers_and_rejects() {
        let h = Fixed;
        assert_eq!(
            dispatch(&h, r#"{"cmd":"status"}"#),
            Response::ok(json!({"forwarding": true}))
        );
        assert_eq!(
            dispatch(&h, r#"{"cmd":"counters"}"#).data,
            Some(json!({"received": 1}))
        );
        let e = dispatch(&h, r#"{"cmd":"flows","frontend":"nope"}"#);
        assert!(!e.ok && e.error.as_deref() == Some("unknown frontend nope"));
        let e = dispatch(&h, r#"{"cmd":"reload"}"#);
        assert_eq!(e.error.as_deref(), Some("no path"));
        for bad in [
            "",
            "{",
            "[]",
            r#"{"cmd":"explode"}"#,
            r#"{"cmd":"flows","limit":-1}"#,
            "\u{0}",
        ] {
            let r = dispatch(&h, bad);
            assert!(!r.ok, "{bad:?}");
            assert!(r.error.unwrap().starts_with("bad request"));
        }
    }

    #[test]
    fn response_lines_are_versioned_json() {
        let line = Response::err("boom").to_line();
        assert!(line.ends_with('\n'));
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(
            v,
            json!({"v": PROTOCOL_VERSION, "ok": false, "error": "boom"})
        );
        let v: Value = serde_json::from_str(&Response::ok(json!(3)).to_line()).unwrap();
        assert_eq!(v, json!({"v": PROTOCOL_VERSION, "ok": true, "data": 3}));
    }
}
