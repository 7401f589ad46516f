//! The Debian package: `scripts/package.sh` builds it (from the test's own vipmux binary, so no
//! release build is needed here), `dpkg-deb --info/--contents` show the metadata and files,
//! `dpkg -x` extracts it into a temporary root, `systemd-analyze verify` accepts the unit, and the
//! extracted binary validates the shipped example configuration, prints its man page and
//! completions, and writes journal-style error lines.
//!
//! Then it is installed for real, in a private copy of this system: in a mount namespace of its
//! own (`unshare --mount`), an overlay whose lower layer is `/` and whose upper layer is a tmpfs
//! becomes the root of a `chroot`, where `dpkg -i` installs the package against the system's
//! package database (its dependencies must be installed, nothing is forced; the maintainer scripts
//! and triggers run), `vipmux check` validates the installed `/etc/vipmux/vipmux.toml`,
//! `systemd-analyze verify` accepts the installed unit at its real path, and `dpkg -r` / `dpkg -P`
//! remove it (the conffiles stay until the purge). The host's files and package database are not
//! touched: every write lands in the tmpfs, which goes with the namespace.
//!
//! Needs `dpkg-deb`, `dpkg-shlibdeps` (dpkg-dev) and `systemd-analyze` (systemd), installed by
//! scripts/setup.sh, and root for the install (mounts); fails without them (the install part
//! is skipped without root unless `CI=true`).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A command's output; panics when it cannot start.
fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e} (scripts/setup.sh installs it)"))
}

/// Panics with the output unless the command succeeded; its stdout.
fn ok(cmd: &mut Command) -> String {
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Builds the package into `dir` and extracts it: (deb, root).
fn package(dir: &Path) -> (PathBuf, PathBuf) {
    let repo = env!("CARGO_MANIFEST_DIR");
    let deb = ok(Command::new(format!("{repo}/scripts/package.sh"))
        .args(["--binary", env!("CARGO_BIN_EXE_vipmux"), "--out"])
        .arg(dir));
    let deb = PathBuf::from(deb.trim());
    let root = dir.join("root");
    ok(Command::new("dpkg").arg("-x").arg(&deb).arg(&root));
    (deb, root)
}

/// One package build (the slow part), then every check on it; the temporary directory goes
/// whatever happens.
#[test]
fn debian_package() {
    let dir = std::env::temp_dir().join(format!("vipmux-pkg-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let result = std::panic::catch_unwind(|| {
        let (deb, root) = package(&dir);
        package_metadata_and_contents(&deb);
        installed_unit_verifies(&root);
        installed_binary_checks_the_shipped_config(&root);
        errors_under_the_journal_carry_a_priority(&root);
        hugepage_setup_raises_and_never_lowers(&root);
        if !common::skip_unless_root("debian_package (dpkg -i in a private copy of the system)") {
            installs_in_a_private_copy_of_the_system(&deb, &dir);
        }
    });
    let _ = std::fs::remove_dir_all(&dir);
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

/// `dpkg-deb --info` and `--contents`: name, version, the dependencies of the DPDK linked into the
/// binary (EAL's libnuma; no `librte-*` package, DPDK being inside), files, conffiles.
fn package_metadata_and_contents(deb: &Path) {
    let info = ok(Command::new("dpkg-deb").arg("--info").arg(deb));
    for want in [
        "Package: vipmux",
        "Version: 0.1.0",
        "libnuma1",
        "conffiles",
        "postinst",
    ] {
        assert!(
            info.contains(want),
            "{want} missing in dpkg-deb --info:\n{info}"
        );
    }
    assert!(
        !info.contains("librte-"),
        "DPDK is linked into the binary, yet the package depends on its shared objects:\n{info}"
    );
    let contents = ok(Command::new("dpkg-deb").arg("--contents").arg(deb));
    for path in [
        "./usr/bin/vipmux",
        "./lib/systemd/system/vipmux.service",
        "./usr/lib/vipmux/setup-hugepages",
        "./etc/default/vipmux",
        "./etc/vipmux/vipmux.toml",
        "./etc/vipmux/dpdk-config/bare-metal-example.toml",
        "./usr/share/man/man1/vipmux.1.gz",
        "./usr/share/bash-completion/completions/vipmux",
        "./usr/share/zsh/vendor-completions/_vipmux",
        "./usr/share/fish/vendor_completions.d/vipmux.fish",
        "./usr/share/vipmux/dashboards/vipmux.json",
    ] {
        assert!(
            contents.lines().any(|l| l.ends_with(path)),
            "{path} missing in dpkg-deb --contents:\n{contents}"
        );
    }
    let conffiles = ok(Command::new("dpkg-deb")
        .args(["--info"])
        .arg(deb)
        .arg("conffiles"));
    for f in ["/etc/vipmux/vipmux.toml", "/etc/default/vipmux"] {
        assert!(
            conffiles.lines().any(|l| l == f),
            "{f} not a conffile:\n{conffiles}"
        );
    }
}

/// The unit has the service's settings and `systemd-analyze verify` accepts it.
fn installed_unit_verifies(root: &Path) {
    let unit = std::fs::read_to_string(root.join("lib/systemd/system/vipmux.service"))
        .expect("unit installed");
    for want in [
        "ExecReload=/bin/kill -HUP $MAINPID",
        "ExecStop=-/usr/bin/vipmux drain",
        "Restart=on-failure",
        "ExecStartPre=+/usr/lib/vipmux/setup-hugepages",
        "LimitMEMLOCK=infinity",
    ] {
        assert!(unit.contains(want), "{want} missing in the unit:\n{unit}");
    }
    // systemd-analyze checks that the commands exist: point them at the temporary root.
    let r = root.display().to_string();
    let local = unit
        .replace("/usr/bin/vipmux", &format!("{r}/usr/bin/vipmux"))
        .replace("/usr/lib/vipmux/", &format!("{r}/usr/lib/vipmux/"));
    let file = root.parent().expect("dir").join("vipmux.service");
    std::fs::write(&file, local).expect("write unit");
    let out = run(Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&file));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.trim().is_empty(),
        "systemd-analyze verify: {stderr}"
    );
}

/// The installed binary.
fn installed(root: &Path) -> Command {
    Command::new(root.join("usr/bin/vipmux"))
}

/// The installed binary validates `/etc/vipmux/vipmux.toml`, prints its man page and completions.
fn installed_binary_checks_the_shipped_config(root: &Path) {
    let summary = ok(installed(root)
        .arg("check")
        .arg(root.join("etc/vipmux/vipmux.toml")));
    assert!(summary.contains("outbound"), "check summary: {summary}");
    let man = ok(installed(root).arg("man"));
    assert!(
        man.contains(".TH vipmux 1") && man.contains("VIPMUX DRAIN"),
        "{man}"
    );
    let bash = ok(installed(root).args(["completions", "bash"]));
    assert!(bash.contains("complete -F _vipmux"), "{bash}");
}

/// With `JOURNAL_STREAM` set every error line starts with `<3>`; without it, none does.
fn errors_under_the_journal_carry_a_priority(root: &Path) {
    let out = run(installed(root)
        .args(["run", "--config", "/nonexistent/vipmux.toml"])
        .env("JOURNAL_STREAM", "8:1234"));
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.is_empty() && stderr.lines().all(|l| l.starts_with("<3>")),
        "{stderr}"
    );
    let out = run(installed(root).args(["run", "--config", "/nonexistent/vipmux.toml"]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("<3>"),
        "priority prefix outside the journal: {stderr}"
    );
}

/// The hugepage helper raises the reservation, never lowers it, and rejects a bad count.
fn hugepage_setup_raises_and_never_lowers(root: &Path) {
    let dir = root.parent().expect("dir");
    let file = dir.join("nr_hugepages");
    let setup = |have: &str, want: &str| -> (bool, String) {
        std::fs::write(&file, have).expect("write");
        let out = run(Command::new(root.join("usr/lib/vipmux/setup-hugepages"))
            .arg(want)
            .env("VIPMUX_NR_HUGEPAGES_FILE", &file));
        let now = std::fs::read_to_string(&file).expect("read");
        (out.status.success(), now.trim().to_string())
    };
    assert_eq!(setup("2\n", "8"), (true, "8".into()));
    assert_eq!(setup("16\n", "8"), (true, "16".into()));
    assert_eq!(setup("4\n", "0"), (true, "4".into()));
    assert!(!setup("4\n", "lots").0);
}

/// Run by `sh` in a private mount namespace with `$1` a scratch directory and `$2` the package:
/// installs, checks and removes it in an overlay copy of `/`, printing one `ok STEP` line per
/// step that passed (`set -e`: the first failure ends it).
const INSTALL: &str = r#"
set -eu
dir=$1; deb=$2
mkdir -p "$dir/layers" "$dir/merged"
mount -t tmpfs vipmux-pkg "$dir/layers"
mkdir "$dir/layers/upper" "$dir/layers/work"
mount -t overlay vipmux-pkg -o "lowerdir=/,upperdir=$dir/layers/upper,workdir=$dir/layers/work" "$dir/merged"
root=$dir/merged
mount -t proc proc "$root/proc"
mount --bind /dev "$root/dev"
mount -t tmpfs vipmux-run "$root/run"
cp "$deb" "$root/run/vipmux.deb"
in_root() { chroot "$root" "$@"; }
! in_root dpkg -s vipmux >/dev/null 2>&1
echo "ok not installed before"
in_root dpkg -i /run/vipmux.deb
in_root dpkg -s vipmux | grep -qx 'Status: install ok installed'
echo "ok dpkg -i"
in_root vipmux check /etc/vipmux/vipmux.toml
echo "ok vipmux check"
verify=$(in_root systemd-analyze verify --man=no /lib/systemd/system/vipmux.service 2>&1)
[ -z "$verify" ] || { echo "systemd-analyze verify: $verify"; exit 1; }
echo "ok systemd-analyze verify"
in_root dpkg -r vipmux
[ ! -e "$root/usr/bin/vipmux" ] && [ -e "$root/etc/vipmux/vipmux.toml" ]
echo "ok dpkg -r keeps the conffiles"
in_root dpkg -P vipmux
[ ! -e "$root/etc/vipmux/vipmux.toml" ]
echo "ok dpkg -P"
"#;

/// `dpkg -i` in an overlay copy of the system (see the module doc); every step must pass.
fn installs_in_a_private_copy_of_the_system(deb: &Path, dir: &Path) {
    let scratch = dir.join("install");
    let out = run(Command::new("unshare")
        .args([
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            INSTALL,
            "sh",
        ])
        .arg(&scratch)
        .arg(deb));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let steps: Vec<&str> = stdout.lines().filter(|l| l.starts_with("ok ")).collect();
    assert!(
        out.status.success() && steps.len() == 6,
        "install in a private copy of the system failed after {steps:?}:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("/etc/vipmux/vipmux.toml: OK"),
        "vipmux check in the installed system: {stdout}"
    );
}
