//! Smoke test of the benchmark harness: `scripts/bench.sh --quick --no-criterion` against the
//! kernel and HAProxy peers (and vipmux once it serves), then checks that the CSVs exist and parse, the
//! README table and the plots exist — never the numbers (timing lives in the benchmarks, not in tests);
//! when the memif part runs, that its SYN flood with established traffic left a row and a table line.
//! The criterion part is skipped with `--no-criterion` (the test suite already runs that code); the
//! criterion-to-CSV converter is exercised on a synthetic criterion tree instead, and the README
//! table's report (`report.py`) on a synthetic dataplane.csv.
//! Also runs `scripts/bench/ab.sh` (interleaved memif runs of two builds) for one short round and
//! `scripts/bench/pipeline_ir.sh` (callgrind instructions per packet) on two small points.
//! Needs root and wrk, nginx, haproxy, python3-matplotlib, valgrind (scripts/setup.sh); skipped
//! otherwise, except where prerequisites are required (`tests/prereq`: under `CI=true`).

mod prereq;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A scratch directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    /// A fresh directory under the system temp dir, unique to this process and tag.
    fn new(tag: &str) -> Self {
        let p = std::env::temp_dir().join(format!("vipmux-bench-{}-{tag}", std::process::id()));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).expect("create temp dir");
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Repository root (where Cargo.toml is).
fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// True when the test must skip (not root, or a tool missing), printing why; a failure instead
/// where prerequisites are required ([`prereq`]).
fn skip(test: &str) -> bool {
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    let mut missing: Vec<&str> = ["wrk", "nginx", "haproxy", "nft", "curl", "ip"]
        .into_iter()
        .filter(|t| !have(t))
        .collect();
    let matplotlib = ["/usr/bin/python3", "python3"].iter().any(|py| {
        Command::new(py)
            .args(["-c", "import matplotlib"])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    });
    if !matplotlib {
        missing.push("python3-matplotlib");
    }
    let why = if !is_root {
        "needs root (network namespaces)".to_string()
    } else if !missing.is_empty() {
        format!("missing {} (run scripts/setup.sh)", missing.join(", "))
    } else {
        return false;
    };
    prereq::missing(test, &why)
}

/// Parses a CSV without quoting (the harness never quotes): header and rows, each row as wide as the header.
fn read_csv(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let text =
        fs::read_to_string(path).unwrap_or_else(|e| panic!("{} unreadable: {e}", path.display()));
    let mut lines = text.lines();
    let header: Vec<String> = lines
        .next()
        .unwrap_or_else(|| panic!("{} is empty", path.display()))
        .split(',')
        .map(str::to_string)
        .collect();
    let rows: Vec<Vec<String>> = lines
        .filter(|l| !l.is_empty())
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect();
    for r in &rows {
        assert_eq!(
            r.len(),
            header.len(),
            "{}: row {r:?} does not match header {header:?}",
            path.display()
        );
    }
    (header, rows)
}

/// Asserts a file exists and starts with the PNG signature.
fn assert_png(path: &Path) {
    let bytes = fs::read(path).unwrap_or_else(|e| panic!("{} missing: {e}", path.display()));
    assert!(
        bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
        "{} is not a PNG",
        path.display()
    );
}

#[test]
fn quick_run_writes_csv_table_and_plots() {
    if skip("quick_run_writes_csv_table_and_plots") {
        return;
    }
    let out = TempDir::new("out");
    // A synthetic data-plane result so the Mpps-vs-flows plot path runs too.
    fs::write(
        out.0.join("dataplane.csv"),
        "date,machine,config,flows,mpps\n\
         2026-01-01,m,af_packet,1,1.5\n2026-01-01,m,af_packet,1000,1.4\n2026-01-01,m,af_packet,1000000,1.1\n",
    )
    .expect("write dataplane.csv");
    // `timeout -s INT` bounds the run; the script's trap tears the namespaces down on SIGINT.
    let res = Command::new("timeout")
        .args(["-s", "INT", "280"])
        .arg(root().join("scripts/bench.sh"))
        .args(["--quick", "--no-criterion", "--out"])
        .arg(&out.0)
        // The binary this test run built, so the vipmux peer and the memif runs really happen.
        .env("VIPMUX_BIN", env!("CARGO_BIN_EXE_vipmux"))
        .current_dir(root())
        .output()
        .expect("run scripts/bench.sh");
    let log = String::from_utf8_lossy(&res.stderr);
    assert!(res.status.success(), "bench.sh failed: {log}");

    let (header, rows) = read_csv(&out.0.join("e2e.csv"));
    assert_eq!(
        header,
        ["date", "machine", "peer", "metric", "value", "unit"]
    );
    for r in &rows {
        r[4].parse::<f64>()
            .unwrap_or_else(|e| panic!("value of {r:?} is not a number: {e}"));
        assert!(
            r[1].contains("nproc=") && r[1].contains("kernel="),
            "machine info missing: {r:?}"
        );
        assert!(!r[0].is_empty(), "date missing: {r:?}");
    }
    for peer in ["kernel", "haproxy"] {
        for metric in [
            "rps_keepalive",
            "cps_close",
            "p99_keepalive",
            "p99_close",
            "machine_cpu_keepalive",
            "softirq_close",
        ] {
            assert!(
                rows.iter().any(|r| r[2] == peer && r[3] == metric),
                "e2e.csv lacks {peer}/{metric}: {rows:?}"
            );
        }
    }
    assert!(
        rows.iter()
            .any(|r| r[2] == "haproxy" && r[3] == "mux_cpu_keepalive"),
        "e2e.csv lacks haproxy process CPU"
    );
    assert!(
        rows.iter().any(|r| r[2] == "vipmux" && r[3] == "available"),
        "the vipmux peer left no trace"
    );
    let table = fs::read_to_string(out.0.join("README-table.md")).expect("README-table.md");
    assert!(table.contains("| kernel |") && table.contains("| haproxy |"));
    assert_png(&out.0.join("e2e.png"));
    assert_png(&out.0.join("dataplane.png"));
    if !log.contains("dataplane: skipped") {
        check_synflood_established(&out.0, &table);
    }
    // Nothing left behind: no namespace of this run remains.
    let ns = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip netns list");
    let prefix = format!("vb{}", res_pid_hint(&log));
    assert!(
        prefix == "vb" || !String::from_utf8_lossy(&ns.stdout).contains(&prefix),
        "namespaces {prefix}* remain"
    );
}

/// The memif part ran: dataplane.csv carries the SYN flood with established traffic (the flood split
/// columns, then the memif mode, at the end of the header, numbers that parse), the outbound SNAT rows
/// and the IPv6 NAT row without errors, and the README table the flood's line.
fn check_synflood_established(out: &Path, table: &str) {
    if std::env::var("DP_SYNFLOOD").as_deref() == Ok("0") {
        return;
    }
    let (header, rows) = read_csv(&out.join("dataplane.csv"));
    assert_eq!(
        header[..5],
        ["date", "machine", "config", "flows", "mpps"],
        "plot.py and report.py rely on the first columns"
    );
    let col = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("dataplane.csv lacks {name}: {header:?}"))
    };
    let mode = col("mode");
    let row = rows
        .iter()
        .find(|r| r[mode] == "synflood-established")
        .unwrap_or_else(|| panic!("no synflood-established row: {rows:?}"));
    for name in [
        "est_share_percent",
        "est_tx_mpps",
        "est_rx_mpps",
        "est_loss_percent",
        "est_errors",
        "syn_rx_mpps",
        "est_only_loss_percent",
    ] {
        row[col(name)]
            .parse::<f64>()
            .unwrap_or_else(|e| panic!("{name} of {row:?} is not a number: {e}"));
    }
    assert!(
        col("est_only_loss_percent") == header.len() - 9
            && col("busy_cycles_per_packet") == header.len() - 8
            && col("memif") == header.len() - 7
            && col("workers") == header.len() - 6
            && col("busy_cycles_per_worker") == header.len() - 5
            && col("handoff_percent") == header.len() - 4
            && col("busy_cycles_q1") == header.len() - 3
            && col("frames_per_busy_poll") == header.len() - 2
            && col("frame_bytes") == header.len() - 1,
        "the new columns come last: {header:?}"
    );
    // Every row says the frame size the generator sent: 64 bytes (DP_SIZE's default), and 78 for
    // IPv6, whose smallest TCP frame the generator raises it to.
    assert!(
        rows.iter().all(|r| {
            let want = if r[col("config")] == "vipmux-nat6" {
                "78"
            } else {
                "64"
            };
            r[col("frame_bytes")] == want
        }),
        "frame_bytes column: {rows:?}"
    );
    assert!(
        rows.iter()
            .all(|r| r[col("memif")] == "copy" || r[col("memif")] == "zero-copy"),
        "memif mode column: {rows:?}"
    );
    // vipmux's forwarding row carries its own busy-cycles count (worker runtime over the socket).
    let dut = col("dut");
    let vip = rows
        .iter()
        .find(|r| r[dut] == "vipmux" && r[mode] == "established")
        .unwrap_or_else(|| panic!("no vipmux established row: {rows:?}"));
    let busy: f64 = vip[col("busy_cycles_per_packet")]
        .parse()
        .unwrap_or_else(|e| panic!("busy cycles of {vip:?}: {e}"));
    assert!(busy > 0.0, "busy cycles {busy} in {vip:?}");
    // And the lower quartile of its quarter-second windows: a cost, and near the window's average
    // (not above twice it).
    let q1: f64 = vip[col("busy_cycles_q1")]
        .parse()
        .unwrap_or_else(|e| panic!("busy cycles q1 of {vip:?}: {e}"));
    assert!(
        q1 > 0.0 && q1 <= 2.0 * busy,
        "busy cycles q1 {q1} against {busy} in {vip:?}"
    );
    // And the frames one busy iteration received: at least one (a busy iteration found frames),
    // at most a burst (32) from each of the DUT's two ports (memif and the kernel exception port).
    let fpp: f64 = vip[col("frames_per_busy_poll")]
        .parse()
        .unwrap_or_else(|e| panic!("frames per busy poll of {vip:?}: {e}"));
    assert!(
        (1.0..=64.0).contains(&fpp),
        "frames per busy poll {fpp} in {vip:?}"
    );
    // The outbound SNAT points: both modes, each with its gate passed (no wrong SNAT).
    let config = col("config");
    for m in ["established", "syn"] {
        let row = rows
            .iter()
            .find(|r| r[config] == "vipmux-outbound" && r[mode] == m)
            .unwrap_or_else(|| panic!("no vipmux-outbound {m} row: {rows:?}"));
        assert_eq!(row[col("errors")], "0", "outbound {m}: {row:?}");
    }
    // The IPv6 NAT point (quick runs' default DP_RULES "nat nat6"): pktgen --family 6's gate passed.
    let nat6 =
        std::env::var("DP_RULES").map_or(true, |r| r.split_whitespace().any(|k| k == "nat6"));
    if nat6 {
        let row = rows
            .iter()
            .find(|r| r[config] == "vipmux-nat6" && r[mode] == "established")
            .unwrap_or_else(|| panic!("no vipmux-nat6 row: {rows:?}"));
        assert_eq!(row[col("errors")], "0", "nat6: {row:?}");
        assert!(
            table.contains("| vipmux-nat6 |"),
            "README-table.md lacks nat6"
        );
    }
    assert!(
        table.contains("M new flows/s while established flows lose"),
        "README-table.md lacks the SYN-flood line"
    );
    eprintln!("memif part ran: synflood-established row and table line checked");
}

/// The shell PID in the harness's namespace prefix (from its "prefix vbNNNN" log lines), or "".
fn res_pid_hint(log: &str) -> String {
    log.split("prefix vb")
        .nth(1)
        .map(|s| s.chars().take_while(char::is_ascii_digit).collect())
        .unwrap_or_default()
}

#[test]
fn criterion_csv_counts_burst32_packets() {
    let dir = TempDir::new("crit");
    let crit = dir.0.join("criterion");
    let put = |rel: &str, full_id: &str, median: f64| {
        let d = crit.join(rel).join("new");
        fs::create_dir_all(&d).expect("mkdir");
        fs::write(
            d.join("estimates.json"),
            format!("{{\"median\":{{\"point_estimate\":{median}}}}}"),
        )
        .expect("write estimates");
        fs::write(
            d.join("benchmark.json"),
            format!("{{\"full_id\":\"{full_id}\"}}"),
        )
        .expect("write benchmark");
    };
    put("nat/burst32", "nat/burst32", 640.0);
    put("parse", "parse", 12.5);
    let csv = dir.0.join("criterion.csv");
    let st = Command::new("python3")
        .arg(root().join("scripts/bench/criterion_csv.py"))
        .arg("--criterion-dir")
        .arg(&crit)
        .arg("--out")
        .arg(&csv)
        .args(["--date", "d", "--machine", "m"])
        .status();
    match st {
        Ok(s) => assert!(s.success(), "criterion_csv.py failed"),
        Err(e) => {
            prereq::missing(
                "criterion_csv_counts_burst32_packets",
                &format!("no python3 ({e})"),
            );
            return;
        }
    }
    let (header, rows) = read_csv(&csv);
    assert_eq!(
        header,
        [
            "date",
            "machine",
            "bench",
            "ns_per_iter_median",
            "packets_per_iter",
            "ns_per_packet",
            "mpps"
        ]
    );
    let burst = rows
        .iter()
        .find(|r| r[2] == "nat/burst32")
        .expect("burst row");
    assert_eq!(burst[4], "32");
    assert_eq!(burst[5].parse::<f64>().expect("ns/packet"), 20.0);
    assert_eq!(burst[6].parse::<f64>().expect("mpps"), 50.0);
    let plain = rows.iter().find(|r| r[2] == "parse").expect("plain row");
    assert_eq!(plain[4], "");
}

/// `scripts/bench/report.py` on a synthetic dataplane.csv: each vipmux / testpmd ratio is named by
/// its rule kind, and two-worker runs whose steered run is not the cheaper one (a worker sharing the
/// generator's core) give no hand-off cost, while a cheaper steered run gives one.
#[test]
fn report_names_each_ratio_and_derives_no_negative_handoff_cost() {
    let report = |steered_busy: &str| -> Option<String> {
        let dir = TempDir::new("report");
        let header = "date,machine,config,flows,mpps,dut,mode,busy_cycles_per_packet,\
                      busy_cycles_per_worker,handoff_percent";
        let rows = [
            "d,m,testpmd-macswap,1000,10,testpmd,established,100,,".to_string(),
            "d,m,vipmux-nat,1000,5,vipmux,established,200,,".to_string(),
            "d,m,vipmux-3tuple,1000,8,vipmux,established,180,,".to_string(),
            "d,m,vipmux-nat-2w-handoff,1000,1,vipmux,established-2w-handoff,300,300;300,50"
                .to_string(),
            format!(
                "d,m,vipmux-nat-2w-steered,1000,1,vipmux,established-2w-steered,{steered_busy},,0"
            ),
        ];
        fs::write(
            dir.0.join("dataplane.csv"),
            format!("{header}\n{}\n", rows.join("\n")),
        )
        .expect("write dataplane.csv");
        let st = Command::new("python3")
            .arg(root().join("scripts/bench/report.py"))
            .arg(&dir.0)
            .status();
        match st {
            Ok(s) => assert!(s.success(), "report.py failed"),
            Err(e) => {
                prereq::missing(
                    "report_names_each_ratio_and_derives_no_negative_handoff_cost",
                    &format!("no python3 ({e})"),
                );
                return None;
            }
        }
        Some(fs::read_to_string(dir.0.join("README-table.md")).expect("README-table.md"))
    };
    let Some(costlier) = report("400") else {
        return;
    };
    assert!(
        costlier.contains("vipmux-nat at 1,000 flows 0.50")
            && costlier.contains("vipmux-3tuple at 1,000 flows 0.80"),
        "ratios not named by kind: {costlier}"
    );
    assert!(
        costlier.contains("give no hand-off cost") && !costlier.contains("cycles more"),
        "a steered run costlier than the hand-off gave a cost: {costlier}"
    );
    // Steered at 250 against 300 with half the frames handed over: (300 - 250) / 0.5 = 100.
    let cheaper = report("250").expect("python3 ran once already");
    assert!(
        cheaper.contains("a handed-off packet costs about 100 cycles more"),
        "no hand-off cost from a cheaper steered run: {cheaper}"
    );
}

/// Whether `tool` is on the PATH.
fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// `scripts/bench/ab.sh` refuses a single build and one-second points; with two builds it runs
/// each in turn on memif and summarises each build's point (here the same binary twice: labels by
/// position keep them apart); with `--testpmd`, one build against testpmd, each point over
/// testpmd's.
#[test]
fn ab_script_interleaves_builds_and_summarises_each() {
    if skip("ab_script_interleaves_builds_and_summarises_each") {
        return;
    }
    let script = root().join("scripts/bench/ab.sh");
    let bin = env!("CARGO_BIN_EXE_vipmux");
    let one = Command::new(&script).arg(bin).output().expect("run ab.sh");
    assert_eq!(
        one.status.code(),
        Some(2),
        "one build must be refused: {one:?}"
    );
    // A point's window is its seconds less the first: one second is refused.
    let short = Command::new(&script)
        .args(["--secs", "1", bin, bin])
        .output()
        .expect("run ab.sh");
    assert_eq!(
        short.status.code(),
        Some(2),
        "--secs 1 must be refused: {short:?}"
    );
    // A frame size pktgen cannot build, or an offered rate that is not a count of packets per
    // second, is refused before any run.
    let bad_args = [
        ("--size", "63"),
        ("--size", "1519"),
        ("--size", "x"),
        ("--rate", "x"),
        ("--rate", "-1"),
        ("--rate", "1.5"),
    ];
    for (opt, value) in bad_args {
        let bad = Command::new(&script)
            .args([opt, value, bin, bin])
            .output()
            .expect("run ab.sh");
        assert_eq!(bad.status.code(), Some(2), "{opt} {value}: {bad:?}");
    }
    // One short round of ab.sh with `args`, bounded; its stdout, once it succeeded.
    let run_ab = |args: &[&str]| -> String {
        let res = Command::new("timeout")
            .args(["-s", "INT", "240"])
            .arg(&script)
            .args(["--rounds", "1", "--flows", "1000", "--secs", "2"])
            .args(args)
            .current_dir(root())
            .output()
            .expect("run ab.sh");
        let out = String::from_utf8_lossy(&res.stdout).into_owned();
        let err = String::from_utf8_lossy(&res.stderr);
        assert!(res.status.success(), "ab.sh {args:?} failed: {out}{err}");
        out
    };
    // The number that follows `after` in `line`.
    let number_after = |line: &str, after: &str| -> f64 {
        let rest = line.split(after).nth(1).unwrap_or_default();
        let cell = rest
            .split([' ', '|'])
            .find(|c| !c.is_empty())
            .unwrap_or_default();
        cell.parse().unwrap_or_else(|e| panic!("{line}: {e}"))
    };
    // At an offered rate of 1 Mpps (the generator's pace, far below either side's limit): every
    // build's highest rx rate stays at it.
    let out = run_ab(&["--rate", "1000000", bin, bin]);
    for label in ["1:vipmux", "2:vipmux"] {
        let run = out
            .lines()
            .find(|l| l.starts_with(&format!("round 1 {label} vipmux-nat 1000 flows: busy ")))
            .unwrap_or_else(|| panic!("no run of {label}: {out}"));
        // Each run says how full the DUT's bursts were (the generator's limit or the DUT's).
        let fpp = number_after(run, "Mpps, ");
        assert!(fpp > 0.0 && fpp <= 40.0, "frames per busy poll in {run}");
        assert!(run.contains(" frames per busy poll, errors 0"), "{run}");
        // And the frame size the generator reports it sent (the default).
        assert!(run.ends_with(", 64-byte frames"), "{run}");
        let row = out
            .lines()
            .find(|l| l.starts_with(&format!("| vipmux-nat 1000 | {label} | 1 | ")))
            .unwrap_or_else(|| panic!("no summary row for {label}: {out}"));
        let cells: Vec<&str> = row.trim_matches('|').split('|').map(str::trim).collect();
        let busy: f64 = cells[3].parse().unwrap_or_else(|e| panic!("{row}: {e}"));
        assert!(busy > 0.0, "{row}");
        let mpps: f64 = cells[6].parse().unwrap_or_else(|e| panic!("{row}: {e}"));
        assert!(
            mpps > 0.0 && mpps <= 1.05,
            "not at the 1 Mpps offered: {row}"
        );
        assert_eq!(cells[7], "0", "rewrite errors in {row}");
    }
    // With --testpmd one build is enough: testpmd runs first, and the build's point is divided
    // by testpmd's busy cycles of the same round. Here with 96-byte frames (a GUE packet's size
    // after encapsulation), which both DUTs receive and return.
    let out = run_ab(&["--testpmd", "--size", "96", bin]);
    let testpmd = out
        .lines()
        .find(|l| l.starts_with("round 1 0:testpmd testpmd-macswap 1000 flows: busy "))
        .unwrap_or_else(|| panic!("no testpmd run: {out}"));
    assert!(number_after(testpmd, "busy ") > 0.0, "{testpmd}");
    for line in out.lines().filter(|l| l.starts_with("round 1 ")) {
        assert!(line.ends_with(", 96-byte frames"), "{line}");
    }
    let ratio = out
        .lines()
        .find(|l| {
            l.starts_with("| vipmux-nat 1000 | 1:vipmux | 1 | ") && l.matches('|').count() == 6
        })
        .unwrap_or_else(|| panic!("no ratio row: {out}"));
    let cells: Vec<&str> = ratio.trim_matches('|').split('|').map(str::trim).collect();
    let lowest: f64 = cells[3].parse().unwrap_or_else(|e| panic!("{ratio}: {e}"));
    assert!(lowest > 0.0, "{ratio}");
}

/// `scripts/bench/pipeline_ir.sh` prints, for each point and build, the measured instructions
/// divided by the point's packets (its bursts times 32), and the total they come from.
#[test]
fn pipeline_ir_script_divides_by_the_points_packets() {
    if !have("valgrind")
        && prereq::missing(
            "pipeline_ir_script_divides_by_the_points_packets",
            "valgrind is missing (scripts/setup.sh installs it)",
        )
    {
        return;
    }
    // The example next to this test's own build (target/<profile>/examples), built if missing.
    let exe = std::env::current_exe().expect("test executable");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>");
    let example = profile_dir.join("examples/pipeline_ir");
    if !example.exists() {
        let st = Command::new("cargo")
            .args(["build", "--example", "pipeline_ir"])
            .current_dir(root())
            .status()
            .expect("cargo build --example pipeline_ir");
        assert!(st.success(), "building the pipeline_ir example failed");
    }
    let res = Command::new(root().join("scripts/bench/pipeline_ir.sh"))
        .arg(&example)
        .env("IR_POINTS", "est 100 10 nat;syn 10 nat;first 320 nat")
        .current_dir(root())
        .output()
        .expect("run pipeline_ir.sh");
    let out = String::from_utf8_lossy(&res.stdout);
    assert!(
        res.status.success(),
        "pipeline_ir.sh failed: {out}{}",
        String::from_utf8_lossy(&res.stderr)
    );
    for (point, packets) in [
        ("est 100 10 nat", 320.0),
        ("syn 10 nat", 320.0),
        ("first 320 nat", 320.0),
    ] {
        let line = out
            .lines()
            .find(|l| l.starts_with(point))
            .unwrap_or_else(|| panic!("no line for {point}: {out}"));
        let rest = line[point.len()..].trim();
        let (per, total) = rest
            .trim_end_matches(')')
            .split_once(" (")
            .unwrap_or_else(|| panic!("{line}: not `PER (TOTAL)`"));
        let per: f64 = per.parse().unwrap_or_else(|e| panic!("{line}: {e}"));
        let total: f64 = total.parse().unwrap_or_else(|e| panic!("{line}: {e}"));
        assert!(total > 0.0, "{line}");
        assert!(
            (per - total / packets).abs() < 0.1,
            "{line}: {per} != {total} / {packets}"
        );
    }
}
