//! net_af_packet on a veth whose peer lives in a network namespace made by the test: frames sent
//! by the port are seen in the namespace, frames sent from the namespace (raw AF_PACKET socket
//! in a python3 helper) are received by the port. Namespace, veth and helper are removed by a
//! guard even when the test fails. Needs root.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

mod dpdk_profiles;

use vipmux::dpdk::{Burst, Eal, HugepageStatus, Mempool, Port, PortConfig, Profile, QueueId};

const FRAMES: u32 = 200;
const TO_NS: [u8; 2] = [0x88, 0xb5];
const FROM_NS: [u8; 2] = [0x88, 0xb6];

/// The helper run inside the namespace: receives FRAMES frames of type 0x88b5 (checking every
/// byte), then on "go" sends FRAMES frames of type 0x88b6.
const HELPER: &str = r#"
import select, socket, struct, sys, time
ifname, n = sys.argv[1], int(sys.argv[2])
def payload(seq): return bytes((seq * 7 + i) & 0xff for i in range(100))
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
s.bind((ifname, 0))
print("ready", flush=True)
seen, deadline = set(), time.monotonic() + 30
while len(seen) < n:
    r, _, _ = select.select([s], [], [], max(0.0, deadline - time.monotonic()))
    if not r:
        print("timeout after %d frames" % len(seen), flush=True); sys.exit(1)
    f, addr = s.recvfrom(4096)
    if addr[2] == socket.PACKET_OUTGOING or f[12:14] != b"\x88\xb5":
        continue
    seq = struct.unpack("!I", f[14:18])[0]
    if f[18:118] != payload(seq):
        print("bad payload in frame %d" % seq, flush=True); sys.exit(1)
    seen.add(seq)
print("got %d" % len(seen), flush=True)
sys.stdin.readline()
for seq in range(n):
    s.send(b"\xff" * 6 + b"\x02\x00\x00\x00\x00\x02" + b"\x88\xb6" + struct.pack("!I", seq) + payload(seq))
print("sent", flush=True)
"#;

fn payload(seq: u32) -> Vec<u8> {
    (0..100u32)
        .map(|i| (seq.wrapping_mul(7).wrapping_add(i) & 0xff) as u8)
        .collect()
}

fn run(cmd: &[&str]) {
    let out = Command::new(cmd[0])
        .args(&cmd[1..])
        .output()
        .expect("spawn");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Owns the namespace, the veth pair and the helper; removes them on drop.
struct Topology {
    ns: String,
    host_if: String,
    peer_if: String,
    helper: Option<Child>,
}

impl Topology {
    fn new() -> Topology {
        let pid = std::process::id();
        let t = Topology {
            ns: format!("vmx-afp-{pid}"),
            host_if: format!("vmxa{pid}"),
            peer_if: format!("vmxb{pid}"),
            helper: None,
        };
        run(&["ip", "netns", "add", &t.ns]);
        run(&[
            "ip", "link", "add", &t.host_if, "type", "veth", "peer", "name", &t.peer_if, "netns",
            &t.ns,
        ]);
        run(&["ip", "link", "set", &t.host_if, "up"]);
        run(&["ip", "-n", &t.ns, "link", "set", &t.peer_if, "up"]);
        t
    }

    fn spawn_helper(&mut self) -> (ChildStdin, BufReader<ChildStdout>) {
        let mut child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.ns,
                "python3",
                "-c",
                HELPER,
                &self.peer_if,
                &FRAMES.to_string(),
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn helper");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = BufReader::new(child.stdout.take().expect("stdout"));
        self.helper = Some(child);
        (stdin, stdout)
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        if let Some(mut child) = self.helper.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = Command::new("ip")
            .args(["link", "del", &self.host_if])
            .output();
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).output();
    }
}

fn line(out: &mut BufReader<ChildStdout>) -> String {
    let mut l = String::new();
    out.read_line(&mut l).expect("helper output");
    l.trim().to_owned()
}

#[test]
fn af_packet_frames_cross_both_ways() {
    let mut topo = Topology::new();
    let text = dpdk_profiles::af_packet(&dpdk_profiles::hugepages_mode(), &topo.host_if);
    let profile = Profile::parse(&text, "tests/dpdk_af_packet.rs").expect("profile");
    let plan = profile
        .eal_plan(&[], HugepageStatus::detect(), std::process::id())
        .expect("plan");
    let eal = Eal::init(&plan.args).expect("EAL init");
    let pool = Mempool::from_profile(eal, "afp_pool", &profile.mempool).expect("mempool");
    let port = Port::open(
        eal,
        "net_af_packet0",
        &PortConfig::from(&profile.ports[0]),
        &pool,
    )
    .expect("port");
    let mut rxq = port.rx_queue(QueueId(0)).expect("rx queue");
    let mut txq = port.tx_queue(QueueId(0)).expect("tx queue");

    let (mut to_helper, mut from_helper) = topo.spawn_helper();
    assert_eq!(line(&mut from_helper), "ready");

    // Port -> namespace.
    let mac = port.mac_addr().expect("mac").0;
    let mut burst = Burst::new();
    let mut seq = 0u32;
    while seq < FRAMES {
        while !burst.is_full() && seq < FRAMES {
            let mut m = pool.alloc().expect("mbuf");
            let f = m.append(118).expect("room");
            f[..6].fill(0xff);
            f[6..12].copy_from_slice(&mac);
            f[12..14].copy_from_slice(&TO_NS);
            f[14..18].copy_from_slice(&seq.to_be_bytes());
            f[18..].copy_from_slice(&payload(seq));
            burst.push(m).expect("room");
            seq += 1;
        }
        txq.tx_burst_keep(&mut burst);
    }
    while !burst.is_empty() {
        txq.tx_burst_keep(&mut burst);
    }
    assert_eq!(line(&mut from_helper), format!("got {FRAMES}"));

    // Namespace -> port.
    writeln!(to_helper, "go").expect("signal helper");
    let mut seen = vec![false; FRAMES as usize];
    let mut count = 0;
    let give_up = Instant::now() + Duration::from_secs(30);
    while count < FRAMES {
        assert!(
            Instant::now() < give_up,
            "only {count} of {FRAMES} frames from the namespace arrived"
        );
        rxq.rx_burst(&mut burst);
        for m in burst.iter() {
            let d = m.data();
            if d.len() < 118 || d[12..14] != FROM_NS {
                continue;
            }
            let s = u32::from_be_bytes([d[14], d[15], d[16], d[17]]);
            assert!(s < FRAMES, "unexpected sequence {s}");
            assert_eq!(&d[18..118], payload(s).as_slice(), "frame {s} differs");
            if !seen[s as usize] {
                seen[s as usize] = true;
                count += 1;
            }
        }
        burst.clear();
    }
    assert_eq!(line(&mut from_helper), "sent");
    let stats = port.stats().expect("stats");
    assert!(stats.opackets >= u64::from(FRAMES));
    assert!(stats.ipackets >= u64::from(FRAMES));
    drop((rxq, txq));
    port.close().expect("close");
}
