//! Health prober against real TCP, HTTP and HTTPS servers on loopback addresses.
//!
//! Every wait is on an event (a health change on the prober's channel, or a request seen by a
//! test server) with a bounded `recv_timeout`; nothing sleeps to synchronise.

use crossbeam::channel::{self, Receiver, RecvTimeoutError, Sender};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use std::io::{Read, Write};
use std::net::{
    IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, SocketAddrV4, TcpListener, TcpStream,
};
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use vipmux::slowpath::probe::{
    HealthChange, HealthState, ProbeReason, ProbeSpec, ProbeTarget, Prober, ProberOptions,
};

/// Upper bound on any single wait for an event.
const WAIT: Duration = Duration::from_secs(15);

/// What a test server does with each connection.
#[derive(Clone)]
enum Mode {
    /// Accept and close at once (a TCP listener).
    Accept,
    /// Answer an HTTP request with the current status.
    Http(Arc<AtomicU16>),
    /// Answer an HTTPS request with the current status.
    Https(Arc<AtomicU16>, Arc<rustls::ServerConfig>),
    /// Accept and never answer (connections held until the server stops).
    Silent,
    /// Write these bytes at once and close.
    Banner(&'static [u8]),
}

/// A connection a test server saw: the client's address and, for HTTP(S), the request head.
#[derive(Debug)]
struct Seen {
    peer: IpAddr,
    request: Option<String>,
}

/// A server thread on one loopback address; stopped (port closed) by `stop` or on drop.
struct Server {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    seen: Receiver<Seen>,
}

impl Server {
    fn start(ip: impl Into<IpAddr>, mode: Mode) -> Server {
        let listener = TcpListener::bind(SocketAddr::new(ip.into(), 0)).expect("bind test server");
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, seen) = channel::unbounded();
        let flag = stop.clone();
        let thread = std::thread::spawn(move || serve(listener, mode, flag, tx));
        Server {
            addr,
            stop,
            thread: Some(thread),
            seen,
        }
    }

    fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Closes the listening socket and joins the thread.
    fn stop(&mut self) {
        if let Some(t) = self.thread.take() {
            self.stop.store(true, Ordering::SeqCst);
            // Wake the blocking accept; the thread sees the flag and drops the listener.
            let _ = TcpStream::connect(self.addr);
            t.join().expect("server thread");
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

fn serve(listener: TcpListener, mode: Mode, stop: Arc<AtomicBool>, seen: Sender<Seen>) {
    let mut held = Vec::new();
    for conn in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let Ok(mut conn) = conn else { continue };
        let Ok(peer) = conn.peer_addr().map(|a| a.ip()) else {
            continue;
        };
        conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        conn.set_write_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        match &mode {
            Mode::Accept => {
                let _ = seen.send(Seen {
                    peer,
                    request: None,
                });
            }
            Mode::Silent => {
                let _ = seen.send(Seen {
                    peer,
                    request: None,
                });
                held.push(conn);
            }
            Mode::Banner(bytes) => {
                let _ = conn.write_all(bytes);
                let _ = conn.shutdown(Shutdown::Write);
            }
            Mode::Http(status) => {
                let request = read_head(&mut conn);
                let _ = conn.write_all(&response(status.load(Ordering::SeqCst)));
                let _ = seen.send(Seen { peer, request });
            }
            Mode::Https(status, config) => {
                let Ok(tls) = rustls::ServerConnection::new(config.clone()) else {
                    continue;
                };
                let mut stream = rustls::StreamOwned::new(tls, conn);
                let request = read_head(&mut stream);
                if request.is_some() {
                    let _ = stream.write_all(&response(status.load(Ordering::SeqCst)));
                    stream.conn.send_close_notify();
                    let _ = stream.flush();
                }
                let _ = seen.send(Seen { peer, request });
            }
        }
    }
}

fn read_head(r: &mut impl Read) -> Option<String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        match r.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        if buf.len() > 16 * 1024 {
            return None;
        }
    }
    String::from_utf8(buf).ok()
}

fn response(status: u16) -> Vec<u8> {
    format!("HTTP/1.1 {status} Test\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        .into_bytes()
}

fn tls_server_config() -> Arc<rustls::ServerConfig> {
    let ck = rcgen::generate_simple_self_signed(vec!["backend.test".to_string()])
        .expect("self-signed certificate");
    let cert = ck.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(ck.key_pair.serialize_der()));
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![cert], key)
    .expect("server config");
    Arc::new(config)
}

fn lo(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 0, last)
}

/// A port on `ip` where nothing listens (bound, then released).
fn closed_port(ip: Ipv4Addr) -> u16 {
    let l = TcpListener::bind(SocketAddrV4::new(ip, 0)).unwrap();
    l.local_addr().unwrap().port()
}

/// Health changes of a prober, read per target without losing other targets' changes.
struct Changes {
    rx: Receiver<HealthChange>,
    pending: Vec<HealthChange>,
}

impl Changes {
    fn of(prober: &vipmux::slowpath::probe::ProberHandle) -> Changes {
        Changes {
            rx: prober.changes(),
            pending: Vec::new(),
        }
    }

    /// The next health change of target `id`, waiting at most `WAIT`.
    fn next(&mut self, id: u32) -> HealthChange {
        if let Some(i) = self.pending.iter().position(|c| c.id == id) {
            return self.pending.remove(i);
        }
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(c) if c.id == id => return c,
                Ok(c) => self.pending.push(c),
                Err(RecvTimeoutError::Timeout) => panic!("no health change for target {id}"),
                Err(RecvTimeoutError::Disconnected) => panic!("prober channel closed"),
            }
        }
    }
}

/// The first health change of the only target of interest.
fn next_change(prober: &vipmux::slowpath::probe::ProberHandle, id: u32) -> HealthChange {
    Changes::of(prober).next(id)
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

#[test]
fn tcp_up_when_listening() {
    let server = Server::start(lo(1), Mode::Accept);
    let spec = ProbeSpec::tcp(server.port(), secs(1.0), 2);
    let prober = Prober::spawn(vec![ProbeTarget::new(7, lo(1), spec)], None).unwrap();
    let c = next_change(&prober, 7);
    assert!(c.up);
    assert_eq!(c.previous, HealthState::Unknown);
    assert_eq!(c.reason, ProbeReason::Ok);
    assert_eq!(
        c.consecutive, 1,
        "first success marks up whatever the threshold"
    );
    let st = prober.status(7).unwrap();
    assert_eq!(st.state, HealthState::Up);
    assert_eq!(st.last_reason, Some(ProbeReason::Ok));
    assert!(st.last_probe.is_some() && st.last_change.is_some());
    assert!(st.probes >= 1);
    prober.shutdown();
}

#[test]
fn tcp_down_when_refused() {
    let port = closed_port(lo(2));
    let spec = ProbeSpec::tcp(port, secs(1.0), 1);
    let prober = Prober::spawn(vec![ProbeTarget::new(1, lo(2), spec)], None).unwrap();
    let c = next_change(&prober, 1);
    assert!(!c.up);
    assert_eq!(c.reason, ProbeReason::Refused);
    assert_eq!(prober.state(1), Some(HealthState::Down));
    prober.shutdown();
}

#[test]
fn http_200_is_up_and_request_is_well_formed() {
    let status = Arc::new(AtomicU16::new(200));
    let server = Server::start(lo(3), Mode::Http(status));
    let spec = ProbeSpec::http(server.port(), "/health", secs(1.0), 1);
    let prober = Prober::spawn(vec![ProbeTarget::new(3, lo(3), spec)], None).unwrap();
    let c = next_change(&prober, 3);
    assert!(c.up);
    assert_eq!(c.reason, ProbeReason::Ok);
    let seen = server.seen.recv_timeout(WAIT).expect("request seen");
    let req = seen.request.expect("request head");
    assert!(req.starts_with("GET /health HTTP/1.1\r\n"), "{req}");
    assert!(
        req.contains(&format!("\r\nHost: 127.0.0.3:{}\r\n", server.port())),
        "{req}"
    );
    assert!(req.contains("\r\nConnection: close\r\n"), "{req}");
    prober.shutdown();
}

#[test]
fn http_503_is_down_at_once() {
    let status = Arc::new(AtomicU16::new(503));
    let server = Server::start(lo(4), Mode::Http(status));
    let spec = ProbeSpec::http(server.port(), "/", secs(1.0), 1);
    let prober = Prober::spawn(vec![ProbeTarget::new(4, lo(4), spec)], None).unwrap();
    let c = next_change(&prober, 4);
    assert!(!c.up);
    assert_eq!(c.reason, ProbeReason::HttpStatus(503));
    assert_eq!(c.consecutive, 1);
    let st = prober.status(4).unwrap();
    assert_eq!(st.last_reason, Some(ProbeReason::HttpStatus(503)));
    prober.shutdown();
}

#[test]
fn http_silent_server_times_out() {
    let server = Server::start(lo(5), Mode::Silent);
    let spec = ProbeSpec::http(server.port(), "/", secs(0.2), 1);
    let prober = Prober::spawn(vec![ProbeTarget::new(5, lo(5), spec)], None).unwrap();
    let c = next_change(&prober, 5);
    assert!(!c.up);
    assert_eq!(c.reason, ProbeReason::Timeout);
    // The connection was accepted: this is a timeout waiting for the answer, not for the SYN.
    server.seen.recv_timeout(WAIT).expect("connection accepted");
    prober.shutdown();
}

#[test]
fn http_non_http_answer_is_bad_response() {
    let server = Server::start(lo(6), Mode::Banner(b"SSH-2.0-OpenSSH_9.6\r\n"));
    let spec = ProbeSpec::http(server.port(), "/", secs(1.0), 1);
    let prober = Prober::spawn(vec![ProbeTarget::new(6, lo(6), spec)], None).unwrap();
    let c = next_change(&prober, 6);
    assert!(!c.up);
    assert_eq!(c.reason, ProbeReason::BadResponse);
    prober.shutdown();
}

#[test]
fn https_self_signed_is_up() {
    let status = Arc::new(AtomicU16::new(200));
    let server = Server::start(lo(7), Mode::Https(status, tls_server_config()));
    let spec = ProbeSpec::https(server.port(), "/probe", secs(1.0), 1);
    let prober = Prober::spawn(vec![ProbeTarget::new(8, lo(7), spec)], None).unwrap();
    let c = next_change(&prober, 8);
    assert_eq!(c.reason, ProbeReason::Ok);
    assert!(c.up);
    let seen = server.seen.recv_timeout(WAIT).expect("request seen");
    let req = seen.request.expect("request decrypted by the server");
    assert!(req.starts_with("GET /probe HTTP/1.1\r\n"), "{req}");
    prober.shutdown();
}

#[test]
fn https_over_ipv6_is_up_with_a_bracketed_host() {
    let status = Arc::new(AtomicU16::new(200));
    let server = Server::start(
        Ipv6Addr::LOCALHOST,
        Mode::Https(status, tls_server_config()),
    );
    let spec = ProbeSpec::https(server.port(), "/probe", secs(1.0), 1);
    let prober = Prober::spawn(vec![ProbeTarget::new(9, Ipv6Addr::LOCALHOST, spec)], None).unwrap();
    let c = next_change(&prober, 9);
    assert_eq!(c.reason, ProbeReason::Ok);
    assert!(c.up);
    let seen = server.seen.recv_timeout(WAIT).expect("request seen");
    let req = seen.request.expect("request decrypted by the server");
    let host = format!("\r\nHost: [::1]:{}\r\n", server.port());
    assert!(
        req.starts_with("GET /probe HTTP/1.1\r\n") && req.contains(&host),
        "{req}"
    );
    prober.shutdown();
}

#[test]
fn https_status_503_over_tls_is_down() {
    let status = Arc::new(AtomicU16::new(503));
    let server = Server::start(lo(7), Mode::Https(status, tls_server_config()));
    let spec = ProbeSpec::https(server.port(), "/", secs(1.0), 1);
    let prober = Prober::spawn(vec![ProbeTarget::new(9, lo(7), spec)], None).unwrap();
    let c = next_change(&prober, 9);
    assert_eq!(c.reason, ProbeReason::HttpStatus(503));
    prober.shutdown();
}

#[test]
fn https_to_plain_server_is_tls_error() {
    let server = Server::start(lo(8), Mode::Banner(b"HTTP/1.1 200 OK\r\n\r\n"));
    let spec = ProbeSpec::https(server.port(), "/", secs(1.0), 1);
    let prober = Prober::spawn(vec![ProbeTarget::new(10, lo(8), spec)], None).unwrap();
    let c = next_change(&prober, 10);
    assert!(!c.up);
    assert!(
        matches!(c.reason, ProbeReason::TlsError(_)),
        "got {:?}",
        c.reason
    );
    prober.shutdown();
}

#[test]
fn threshold_three_counts_successes_but_not_an_http_status() {
    let status = Arc::new(AtomicU16::new(200));
    let server = Server::start(lo(9), Mode::Http(status.clone()));
    let spec = ProbeSpec::http(server.port(), "/", secs(0.4), 3);
    let prober = Prober::spawn(vec![ProbeTarget::new(11, lo(9), spec)], None).unwrap();
    let mut changes = Changes::of(&prober);

    let up = changes.next(11);
    assert!(up.up);
    assert_eq!(up.consecutive, 1);

    // An HTTP status other than 200 marks the member down at once, whatever the threshold.
    status.store(503, Ordering::SeqCst);
    let down = changes.next(11);
    assert!(!down.up, "the first change after 503 must be down");
    assert_eq!(down.previous, HealthState::Up);
    assert_eq!(down.consecutive, 1);
    assert_eq!(down.reason, ProbeReason::HttpStatus(503));

    status.store(200, Ordering::SeqCst);
    let back = changes.next(11);
    assert!(back.up);
    assert_eq!(back.previous, HealthState::Down);
    assert_eq!(
        back.consecutive, 3,
        "down -> up also needs threshold successes"
    );
    prober.shutdown();
}

#[test]
fn unknown_to_down_needs_threshold_failures() {
    let port = closed_port(lo(10));
    let spec = ProbeSpec::tcp(port, secs(0.1), 3);
    let prober = Prober::spawn(vec![ProbeTarget::new(12, lo(10), spec)], None).unwrap();
    let c = next_change(&prober, 12);
    assert!(!c.up);
    assert_eq!(c.previous, HealthState::Unknown);
    assert_eq!(c.consecutive, 3);
    prober.shutdown();
}

#[test]
fn server_going_away_flips_and_emits_change() {
    let mut server = Server::start(lo(11), Mode::Accept);
    let spec = ProbeSpec::tcp(server.port(), secs(0.5), 1);
    let prober = Prober::spawn(vec![ProbeTarget::new(13, lo(11), spec)], None).unwrap();
    let mut changes = Changes::of(&prober);
    assert!(changes.next(13).up);
    server.stop();
    let c = changes.next(13);
    assert!(!c.up);
    assert_eq!(c.reason, ProbeReason::Refused);
    assert_eq!(prober.state(13), Some(HealthState::Down));
    prober.shutdown();
}

#[test]
fn probes_originate_from_the_source_address() {
    let server = Server::start(lo(12), Mode::Accept);
    let spec = ProbeSpec::tcp(server.port(), secs(1.0), 1);
    let source = lo(99);
    let prober = Prober::spawn(
        vec![ProbeTarget::new(14, lo(12), spec)],
        Some(source.into()),
    )
    .unwrap();
    assert!(next_change(&prober, 14).up);
    let seen = server.seen.recv_timeout(WAIT).expect("connection seen");
    assert_eq!(seen.peer, IpAddr::from(source));
    prober.shutdown();
}

#[test]
fn a_target_leaves_from_its_own_source_else_the_default() {
    let own = Server::start(lo(16), Mode::Accept);
    let default = Server::start(lo(17), Mode::Accept);
    let spec_own = ProbeSpec::tcp(own.port(), secs(1.0), 1);
    let spec_default = ProbeSpec::tcp(default.port(), secs(1.0), 1);
    let prober = Prober::spawn(
        vec![
            ProbeTarget::new(1, lo(16), spec_own.clone()).with_source(Some(lo(98))),
            ProbeTarget::new(2, lo(17), spec_default),
        ],
        Some(lo(99).into()),
    )
    .unwrap();
    let seen = own.seen.recv_timeout(WAIT).expect("connection seen");
    assert_eq!(seen.peer, IpAddr::from(lo(98)), "the target's own source");
    let seen = default.seen.recv_timeout(WAIT).expect("connection seen");
    assert_eq!(
        seen.peer,
        IpAddr::from(lo(99)),
        "the prober's default source"
    );
    // A reload moving the target to another source restarts it from there, state kept.
    let report = prober
        .update_targets(vec![
            ProbeTarget::new(1, lo(16), spec_own).with_source(Some(lo(97)))
        ])
        .unwrap();
    assert_eq!(report.retimed, vec![1]);
    let deadline = Instant::now() + WAIT;
    loop {
        let seen = own.seen.recv_timeout(WAIT).expect("connection seen");
        if seen.peer == IpAddr::from(lo(97)) {
            break;
        }
        assert_eq!(
            seen.peer,
            IpAddr::from(lo(98)),
            "only the old source before the new one"
        );
        assert!(Instant::now() < deadline, "no probe from the new source");
    }
    prober.shutdown();
}

#[test]
fn update_targets_keeps_state_of_targets_that_stay() {
    let a = Server::start(lo(13), Mode::Accept);
    let b = Server::start(lo(14), Mode::Accept);
    let spec_a = ProbeSpec::tcp(a.port(), secs(1.0), 1);
    let spec_b = ProbeSpec::tcp(b.port(), secs(1.0), 1);
    let prober = Prober::spawn(
        vec![
            ProbeTarget::new(1, lo(13), spec_a.clone()),
            ProbeTarget::new(2, lo(14), spec_b.clone()),
            ProbeTarget::new(3, lo(14), spec_b.clone()),
        ],
        None,
    )
    .unwrap();
    let mut changes = Changes::of(&prober);
    for id in [1, 2, 3] {
        assert!(changes.next(id).up);
    }
    let before = prober.status(1).unwrap();

    let mut slower_b = spec_b.clone();
    slower_b.interval = secs(1.5);
    let report = prober
        .update_targets(vec![
            ProbeTarget::new(1, lo(13), spec_a.clone()), // identical: kept
            ProbeTarget::new(2, lo(14), slower_b),       // new interval: retimed, state kept
            ProbeTarget::new(3, lo(13), spec_a.clone()), // new address: reset
            ProbeTarget::new(4, lo(13), spec_a.clone()), // new
            ProbeTarget::new(4, lo(14), spec_b.clone()), // duplicate id: ignored
        ])
        .unwrap();
    assert_eq!(report.kept, vec![1]);
    assert_eq!(report.retimed, vec![2]);
    assert_eq!(report.reset, vec![3]);
    assert_eq!(report.added, vec![4]);
    assert_eq!(report.duplicates, vec![4]);
    assert!(report.removed.is_empty());

    let after = prober.status(1).unwrap();
    assert_eq!(after.state, HealthState::Up);
    assert_eq!(after.last_change, before.last_change);
    assert!(after.probes >= before.probes);
    assert_eq!(prober.state(2), Some(HealthState::Up));
    let three = prober.status(3).unwrap();
    assert_eq!(three.addr, lo(13));
    // Reset targets start over: their next change comes from Unknown.
    let c3 = changes.next(3);
    assert_eq!(c3.previous, HealthState::Unknown);
    assert!(c3.up);
    let c4 = changes.next(4);
    assert!(c4.up);

    let report = prober
        .update_targets(vec![ProbeTarget::new(1, lo(13), spec_a)])
        .unwrap();
    assert_eq!(report.removed, vec![2, 3, 4]);
    assert_eq!(report.kept, vec![1]);
    let ids: Vec<u32> = prober.snapshot().iter().map(|s| s.id).collect();
    assert_eq!(ids, vec![1]);
    prober.shutdown();
}

#[test]
fn two_thousand_targets_complete_a_round_on_one_thread() {
    const N: u32 = 2000;
    let servers: Vec<Server> = (20..24)
        .map(|i| Server::start(lo(i), Mode::Accept))
        .collect();
    let targets: Vec<ProbeTarget> = (0..N)
        .map(|id| {
            let s = &servers[(id % 4) as usize];
            ProbeTarget::new(id, s.addr.ip(), ProbeSpec::tcp(s.port(), secs(1.0), 1))
        })
        .collect();
    let prober = Prober::spawn_with(
        targets,
        ProberOptions {
            source_addr: None,
            max_in_flight: 256,
        },
    )
    .unwrap();
    let changes = prober.changes();
    let mut up = vec![false; N as usize];
    let mut count = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    while count < N {
        let left = deadline.saturating_duration_since(Instant::now());
        let c = changes
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("only {count} of {N} targets came up"));
        assert!(c.up, "target {} went down: {}", c.id, c.reason);
        if !up[c.id as usize] {
            up[c.id as usize] = true;
            count += 1;
        }
    }
    let snap = prober.snapshot();
    assert_eq!(snap.len(), N as usize);
    assert!(snap
        .iter()
        .all(|s| s.state == HealthState::Up && s.probes >= 1));
    prober.shutdown();
}

#[test]
fn shutdown_joins_and_drop_is_clean() {
    let server = Server::start(lo(15), Mode::Accept);
    let spec = ProbeSpec::tcp(server.port(), secs(1.0), 1);
    let prober = Prober::spawn(vec![ProbeTarget::new(1, lo(15), spec.clone())], None).unwrap();
    let changes = prober.changes();
    prober.shutdown();
    // After shutdown the sending side is gone: the channel reports disconnection once drained.
    let deadline = Instant::now() + WAIT;
    loop {
        match changes.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(_) => continue,
            Err(RecvTimeoutError::Disconnected) => break,
            Err(RecvTimeoutError::Timeout) => panic!("channel not closed after shutdown"),
        }
    }
    // Dropping a handle also stops its thread.
    let prober = Prober::spawn(vec![ProbeTarget::new(1, lo(15), spec)], None).unwrap();
    drop(prober);
}
