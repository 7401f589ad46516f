//! The HTTP/1.1 side of HTTP and HTTPS probes: building the request, parsing the status line.

use std::net::{IpAddr, SocketAddr};

/// The largest response head read while looking for the status line.
pub(crate) const MAX_STATUS_LINE: usize = 4096;

/// The request path made safe for a request line: a leading `/`, and bytes that are not
/// printable ASCII (or are spaces) percent-encoded.
pub(crate) fn sanitize_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len() + 1);
    if !path.starts_with('/') {
        out.push('/');
    }
    for b in path.bytes() {
        if b.is_ascii_graphic() {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The `Host` header value: the address (an IPv6 one in brackets), with the port unless it is
/// the scheme's default.
pub(crate) fn host_header(addr: IpAddr, port: u16, tls: bool) -> String {
    let default = if tls { 443 } else { 80 };
    match (addr, port == default) {
        (IpAddr::V4(a), true) => a.to_string(),
        (IpAddr::V6(a), true) => format!("[{a}]"),
        (_, false) => SocketAddr::new(addr, port).to_string(),
    }
}

/// The full GET request of a probe.
pub(crate) fn build_request(path: &str, host: &str) -> Vec<u8> {
    format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: vipmux-probe/{}\r\nAccept: */*\r\nConnection: close\r\n\r\n",
        sanitize_path(path),
        host,
        env!("CARGO_PKG_VERSION")
    )
    .into_bytes()
}

/// Result of looking at the bytes received so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StatusLine {
    /// A complete, valid status line with this code.
    Status(u16),
    /// No complete line yet; read more.
    Incomplete,
    /// Not an HTTP/1.x status line.
    Invalid,
}

/// Parses the status line at the start of `buf` (`HTTP/1.x NNN reason`).
pub(crate) fn parse_status_line(buf: &[u8]) -> StatusLine {
    const PREFIX: &[u8] = b"HTTP/1.";
    let check = buf.len().min(PREFIX.len());
    if buf[..check] != PREFIX[..check] {
        return StatusLine::Invalid;
    }
    let Some(end) = buf.iter().position(|&b| b == b'\n') else {
        return if buf.len() >= MAX_STATUS_LINE {
            StatusLine::Invalid
        } else {
            StatusLine::Incomplete
        };
    };
    let line = &buf[..end];
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    // "HTTP/1.x" SP 3DIGIT [SP reason]
    if line.len() < 12 || !line[7].is_ascii_digit() || line[8] != b' ' {
        return StatusLine::Invalid;
    }
    let code = &line[9..12];
    if !code.iter().all(u8::is_ascii_digit) || (line.len() > 12 && line[12] != b' ') {
        return StatusLine::Invalid;
    }
    let value = code
        .iter()
        .fold(0u16, |acc, d| acc * 10 + u16::from(d - b'0'));
    StatusLine::Status(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_has_path_host_and_close() {
        let req = String::from_utf8(build_request("/health", "10.0.0.1:8080")).unwrap();
        assert!(req.starts_with("GET /health HTTP/1.1\r\n"));
        assert!(req.contains("\r\nHost: 10.0.0.1:8080\r\n"));
        assert!(req.contains("\r\nConnection: close\r\n"));
        assert!(req.ends_with("\r\n\r\n"));
    }

    #[test]
    fn path_is_sanitized() {
        assert_eq!(sanitize_path(""), "/");
        assert_eq!(sanitize_path("health"), "/health");
        assert_eq!(sanitize_path("/a b\r\n"), "/a%20b%0D%0A");
        assert_eq!(sanitize_path("/é"), "/%C3%A9");
    }

    #[test]
    fn host_header_omits_default_port() {
        let a = IpAddr::from([10, 0, 0, 1]);
        assert_eq!(host_header(a, 80, false), "10.0.0.1");
        assert_eq!(host_header(a, 443, true), "10.0.0.1");
        assert_eq!(host_header(a, 443, false), "10.0.0.1:443");
        assert_eq!(host_header(a, 8443, true), "10.0.0.1:8443");
    }

    #[test]
    fn host_header_brackets_ipv6() {
        let a: IpAddr = "fd00:1::11".parse().unwrap();
        assert_eq!(host_header(a, 80, false), "[fd00:1::11]");
        assert_eq!(host_header(a, 8080, false), "[fd00:1::11]:8080");
    }

    #[test]
    fn status_lines() {
        use StatusLine::*;
        assert_eq!(parse_status_line(b"HTTP/1.1 200 OK\r\n"), Status(200));
        assert_eq!(parse_status_line(b"HTTP/1.0 503\r\n"), Status(503));
        assert_eq!(parse_status_line(b"HTTP/1.1 404 Not Found\n"), Status(404));
        assert_eq!(parse_status_line(b""), Incomplete);
        assert_eq!(parse_status_line(b"HTT"), Incomplete);
        assert_eq!(parse_status_line(b"HTTP/1.1 200 O"), Incomplete);
        assert_eq!(parse_status_line(b"SSH-2.0-OpenSSH\r\n"), Invalid);
        assert_eq!(parse_status_line(b"HTTP/1.1 20x OK\r\n"), Invalid);
        assert_eq!(parse_status_line(b"HTTP/1.1 2000 OK\r\n"), Invalid);
        assert_eq!(parse_status_line(b"HTTP/1.1 20\r\n"), Invalid);
        assert_eq!(parse_status_line(b"HTTP/2 200\r\n"), Invalid);
        assert_eq!(parse_status_line(&[b'H'; 10]), Invalid);
        let mut long = b"HTTP/1.1 200 ".to_vec();
        long.resize(MAX_STATUS_LINE, b'x');
        assert_eq!(parse_status_line(&long), Invalid);
    }
}
