//! The metrics HTTP server: answers `GET /metrics` with the source's exposition, bounded in
//! connections, request size and time.

use std::io;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::super::serve::{self, ServerThread};
use super::encode::{render_text, MetricsSource};

/// Content type of the text exposition format served on `/metrics`.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Largest HTTP request head the server reads before answering 431.
pub const MAX_REQUEST_HEAD: usize = 8 * 1024;

/// How long a scrape connection has to send its whole request head, and again to take the answer.
pub const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// Most scrape connections served at the same time; more are answered 503 and closed.
pub const MAX_CONNECTIONS: usize = 256;

/// A running metrics HTTP server; dropping it stops the server.
pub struct MetricsServer {
    addr: SocketAddr,
    thread: ServerThread,
}

impl std::fmt::Debug for MetricsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsServer")
            .field("addr", &self.addr)
            .finish()
    }
}

impl MetricsServer {
    /// Listen on `addr` (e.g. "127.0.0.1:9469"; port 0 picks one) and serve `source` on a new
    /// thread: at most [`MAX_CONNECTIONS`] requests at once, each read and answered within
    /// [`IO_TIMEOUT`].
    pub fn start(
        addr: impl ToSocketAddrs,
        source: Arc<dyn MetricsSource>,
    ) -> io::Result<MetricsServer> {
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        listener.set_nonblocking(true)?;
        let thread =
            ServerThread::spawn("vipmux-metrics", move |stop| serve(listener, source, stop))?;
        Ok(MetricsServer { addr, thread })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stop the server and wait for its thread.
    pub fn shutdown(mut self) {
        self.thread.stop();
    }
}

async fn serve(
    listener: TcpListener,
    source: Arc<dyn MetricsSource>,
    stop: tokio::sync::oneshot::Receiver<()>,
) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(error = %e, "metrics: cannot serve");
            return;
        }
    };
    let handle = |conn| {
        let source = Arc::clone(&source);
        async move {
            if let Err(e) = handle(conn, source).await {
                tracing::debug!(error = %e, "metrics: request failed");
            }
        }
    };
    let busy = |mut conn: TcpStream| async move {
        let answer = respond(
            &mut conn,
            "503 Service Unavailable",
            "text/plain",
            b"busy\n",
            true,
        );
        let _ = tokio::time::timeout(IO_TIMEOUT, answer).await;
    };
    serve::accept_loop(listener, MAX_CONNECTIONS, handle, busy, stop).await;
}

/// Read a request head (bounded in size, whole within [`IO_TIMEOUT`]), answer it, close.
async fn handle(mut stream: TcpStream, source: Arc<dyn MetricsSource>) -> io::Result<()> {
    let head = match tokio::time::timeout(IO_TIMEOUT, read_head(&mut stream)).await {
        Ok(head) => head?,
        Err(_) => return Err(io::ErrorKind::TimedOut.into()),
    };
    let Some(head) = head else {
        let answer = respond(
            &mut stream,
            "431 Request Header Fields Too Large",
            "text/plain",
            b"request too large\n",
            true,
        );
        return within_timeout(answer).await;
    };
    let first = head.split(|&b| b == b'\n').next().unwrap_or(&[]);
    let first = String::from_utf8_lossy(first);
    let mut parts = first.trim_end().split(' ');
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    let with_body = method == "GET";
    let answer = async {
        match (method, path) {
            ("GET" | "HEAD", "/metrics") => {
                match serve::off_thread(move || render_text(source.as_ref())).await {
                    Some(text) => {
                        respond(
                            &mut stream,
                            "200 OK",
                            CONTENT_TYPE,
                            text.as_bytes(),
                            with_body,
                        )
                        .await
                    }
                    None => {
                        let body = b"metrics source failed\n";
                        respond(
                            &mut stream,
                            "500 Internal Server Error",
                            "text/plain",
                            body,
                            true,
                        )
                        .await
                    }
                }
            }
            ("GET" | "HEAD", _) => {
                let body = b"not found; try /metrics\n";
                respond(&mut stream, "404 Not Found", "text/plain", body, with_body).await
            }
            _ => {
                respond(
                    &mut stream,
                    "405 Method Not Allowed",
                    "text/plain",
                    b"method not allowed\n",
                    true,
                )
                .await
            }
        }
    };
    within_timeout(answer).await
}

/// The request head up to its blank line; `None` when it passes [`MAX_REQUEST_HEAD`] first.
async fn read_head(stream: &mut TcpStream) -> io::Result<Option<Vec<u8>>> {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    loop {
        if head.windows(4).any(|w| w == b"\r\n\r\n") || head.windows(2).any(|w| w == b"\n\n") {
            return Ok(Some(head));
        }
        if head.len() > MAX_REQUEST_HEAD {
            return Ok(None);
        }
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok((!head.is_empty()).then_some(head));
        }
        head.extend_from_slice(&buf[..n]);
    }
}

async fn within_timeout(
    answer: impl std::future::Future<Output = io::Result<()>>,
) -> io::Result<()> {
    match tokio::time::timeout(IO_TIMEOUT, answer).await {
        Ok(r) => r,
        Err(_) => Err(io::ErrorKind::TimedOut.into()),
    }
}

async fn respond(
    stream: &mut TcpStream,
    status: &str,
    ctype: &str,
    body: &[u8],
    with_body: bool,
) -> io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    if with_body {
        stream.write_all(body).await?;
    }
    stream.flush().await
}
