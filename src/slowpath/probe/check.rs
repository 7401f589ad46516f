//! Running one probe against one member: connect, optional TLS, optional HTTP exchange.

use super::http::{self, StatusLine};
use super::{ProbeProtocol, ProbeReason, ProbeSpec};
use rustls::pki_types::ServerName;
use std::io;
use std::net::{IpAddr, SocketAddr};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_rustls::TlsConnector;

/// Probes `addr` once as `spec` says, from `source` if given; bounded by `spec.timeout()`.
pub(crate) async fn probe_once(
    addr: IpAddr,
    spec: &ProbeSpec,
    source: Option<IpAddr>,
    tls: &TlsConnector,
) -> ProbeReason {
    match tokio::time::timeout(spec.timeout(), probe_inner(addr, spec, source, tls)).await {
        Ok(reason) => reason,
        Err(_) => ProbeReason::Timeout,
    }
}

async fn probe_inner(
    addr: IpAddr,
    spec: &ProbeSpec,
    source: Option<IpAddr>,
    tls: &TlsConnector,
) -> ProbeReason {
    let stream = match connect(addr, spec.port, source).await {
        Ok(s) => s,
        Err(e) => return connect_error(&e),
    };
    match spec.protocol {
        ProbeProtocol::Tcp => {
            // Handshake completed: success. Dropping the stream closes it with a FIN.
            ProbeReason::Ok
        }
        ProbeProtocol::Http => {
            let host = http::host_header(addr, spec.port, false);
            http_exchange(stream, &spec.request_path, &host).await
        }
        ProbeProtocol::Https => {
            let name = ServerName::IpAddress(addr.into());
            let stream = match tls.connect(name, stream).await {
                Ok(s) => s,
                Err(e) => return ProbeReason::TlsError(e.to_string()),
            };
            let host = http::host_header(addr, spec.port, true);
            http_exchange(stream, &spec.request_path, &host).await
        }
    }
}

/// Connects to `addr:port` (IPv4 or IPv6), from `source` when it is of the same family.
async fn connect(addr: IpAddr, port: u16, source: Option<IpAddr>) -> io::Result<TcpStream> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if let Some(src) = source.filter(|s| s.is_ipv4() == addr.is_ipv4()) {
        // Probes to many members share the source address; let the ephemeral port of a probe
        // still in TIME_WAIT be reused for another destination.
        socket.set_reuseaddr(true)?;
        socket.bind(SocketAddr::new(src, 0))?;
    }
    let stream = socket.connect(SocketAddr::new(addr, port)).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

fn connect_error(e: &io::Error) -> ProbeReason {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => ProbeReason::Refused,
        io::ErrorKind::TimedOut => ProbeReason::Timeout,
        _ => ProbeReason::ConnectError(e.to_string()),
    }
}

fn io_error(e: &io::Error) -> ProbeReason {
    match e.kind() {
        io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe => ProbeReason::Reset,
        io::ErrorKind::TimedOut => ProbeReason::Timeout,
        _ => ProbeReason::ConnectError(e.to_string()),
    }
}

/// Sends the GET and reads until the status line is complete.
async fn http_exchange<S>(mut stream: S, path: &str, host: &str) -> ProbeReason
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let request = http::build_request(path, host);
    if let Err(e) = stream.write_all(&request).await {
        return io_error(&e);
    }
    if let Err(e) = stream.flush().await {
        return io_error(&e);
    }
    let mut buf = vec![0u8; http::MAX_STATUS_LINE];
    let mut len = 0;
    loop {
        let n = match stream.read(&mut buf[len..]).await {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => 0,
            Err(e) => return io_error(&e),
        };
        if n == 0 {
            return ProbeReason::BadResponse;
        }
        len += n;
        match http::parse_status_line(&buf[..len]) {
            StatusLine::Status(200) => return ProbeReason::Ok,
            StatusLine::Status(code) => return ProbeReason::HttpStatus(code),
            StatusLine::Invalid => return ProbeReason::BadResponse,
            StatusLine::Incomplete if len == buf.len() => return ProbeReason::BadResponse,
            StatusLine::Incomplete => {}
        }
    }
}

/// Connects once over TCP to each `(address, port, source)` of `targets`, all at once, each
/// bounded by `timeout`, and closes at once: the outcome of each, in order. A check run on
/// demand (by `diagnose`, to see whether anything listens on a rule's backend port), not a probe.
pub fn tcp_reachability(
    targets: &[(IpAddr, u16, Option<IpAddr>)],
    timeout: std::time::Duration,
) -> Vec<ProbeReason> {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return vec![ProbeReason::ConnectError(e.to_string()); targets.len()],
    };
    runtime.block_on(async {
        let tasks: Vec<_> = targets
            .iter()
            .map(|&(addr, port, source)| {
                tokio::spawn(async move {
                    match tokio::time::timeout(timeout, connect(addr, port, source)).await {
                        Ok(Ok(_)) => ProbeReason::Ok,
                        Ok(Err(e)) => connect_error(&e),
                        Err(_) => ProbeReason::Timeout,
                    }
                })
            })
            .collect();
        let mut out = Vec::with_capacity(tasks.len());
        for t in tasks {
            out.push(
                t.await
                    .unwrap_or_else(|e| ProbeReason::ConnectError(e.to_string())),
            );
        }
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reachability_tells_open_from_refused() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let open = listener.local_addr().unwrap().port();
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let lo = IpAddr::from(std::net::Ipv4Addr::LOCALHOST);
        let got = tcp_reachability(
            &[(lo, open, None), (lo, closed, Some(lo))],
            std::time::Duration::from_secs(5),
        );
        assert_eq!(got, vec![ProbeReason::Ok, ProbeReason::Refused]);
    }

    #[test]
    fn reachability_over_ipv6_ignores_an_ipv4_source() {
        let Ok(listener) = std::net::TcpListener::bind("[::1]:0") else {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "no IPv6 loopback"
            );
            return;
        };
        let open = listener.local_addr().unwrap().port();
        let lo6 = IpAddr::from(std::net::Ipv6Addr::LOCALHOST);
        let lo4 = IpAddr::from(std::net::Ipv4Addr::LOCALHOST);
        let got = tcp_reachability(
            &[(lo6, open, Some(lo4)), (lo6, open, Some(lo6))],
            std::time::Duration::from_secs(5),
        );
        assert_eq!(got, vec![ProbeReason::Ok, ProbeReason::Ok]);
    }
}
