//! A pinned worker thread registered with DPDK polls a net_ring queue fed by the test thread.

use vipmux::dpdk::{
    Burst, DpdkThread, Eal, HugepageStatus, Lcore, Mempool, Port, PortConfig, Profile, QueueId,
};

/// The profile, with `hugepages` from VIPMUX_TEST_HUGEPAGES (auto | on | off; default auto).
fn profile_text() -> String {
    let mode = std::env::var("VIPMUX_TEST_HUGEPAGES").unwrap_or_else(|_| "auto".into());
    format!("hugepages = {mode:?}\n{PROFILE}")
}

const PROFILE: &str = r#"
cores = [0]
[eal]
args = ["--no-pci", "--log-level=*:warning"]
[mempool]
mbufs = 4095
[[ports]]
name = "net_ring0"
vdev = "net_ring0"
"#;

const FRAMES: usize = 5_000;

#[test]
fn registered_worker_polls_a_queue() {
    let profile = Profile::parse(&profile_text(), "tests/dpdk_worker.rs").expect("profile");
    let plan = profile
        .eal_plan(&[], HugepageStatus::detect(), std::process::id())
        .expect("plan");
    let eal = Eal::init(&plan.args).expect("EAL init");
    let pool = Mempool::from_profile(eal, "worker_pool", &profile.mempool).expect("mempool");
    let port = Port::open(
        eal,
        "net_ring0",
        &PortConfig::from(&profile.ports[0]),
        &pool,
    )
    .expect("port");
    let core = core_affinity::get_core_ids()
        .and_then(|ids| ids.last().map(|c| c.id))
        .expect("a core");

    let rxq = port.rx_queue(QueueId(0)).expect("rx queue");
    let mut txq = port.tx_queue(QueueId(0)).expect("tx queue");
    let (lcore, received) = std::thread::scope(|s| {
        let worker = s.spawn(move || {
            let mut rxq = rxq;
            assert_eq!(Lcore::current(), None, "a plain thread has no lcore");
            let reg = DpdkThread::pin_and_register(eal, core).expect("register");
            assert_eq!(Lcore::current(), Some(reg.lcore()));
            let mut burst = Burst::new();
            let mut received = 0usize;
            while received < FRAMES {
                rxq.rx_burst(&mut burst);
                for m in burst.iter() {
                    assert_eq!(&m.data()[..6], &[0xff; 6]);
                    assert_eq!(&m.data()[14..22], &(received as u64).to_be_bytes());
                    received += 1;
                }
                burst.clear();
            }
            (reg.lcore(), received)
        });
        let mut burst = Burst::new();
        let mut seq = 0u64;
        while seq < FRAMES as u64 {
            while !burst.is_full() && seq < FRAMES as u64 {
                let mut m = pool.alloc().expect("mbuf");
                let f = m.append(64).expect("room");
                f.fill(0);
                f[..6].fill(0xff);
                f[12..14].copy_from_slice(&[0x88, 0xb5]);
                f[14..22].copy_from_slice(&seq.to_be_bytes());
                burst.push(m).expect("room");
                seq += 1;
            }
            // Keep what the ring refuses and retry: the worker drains it.
            txq.tx_burst_keep(&mut burst);
        }
        while !burst.is_empty() {
            txq.tx_burst_keep(&mut burst);
        }
        worker.join().expect("worker")
    });
    assert_eq!(received, FRAMES);
    assert!(lcore.0 > 0, "a registered thread gets a non-main lcore id");
    drop(txq);
    port.close().expect("close");
}
