//! `--io`: io_uring where the kernel allows it, epoll where it does not. The refusal is a real
//! seccomp filter (`support/no_uring.c`, built with the system's C compiler), the way Docker's
//! default profile refuses io_uring.

use blast_target::{Config, Server};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn temp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("blast-io-{}-{name}", std::process::id()))
}

/// The seccomp wrapper, compiled once per test process.
fn no_uring() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/no_uring.c");
            let binary = temp("no_uring");
            let out = Command::new("cc")
                .args(["-O", "-o"])
                .arg(&binary)
                .arg(&source)
                .output()
                .expect("a C compiler (cc) is installed");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            binary
        })
        .clone()
}

/// Runs blast against `server` with `args`, under the seccomp filter when `refused`.
fn blast(server: &Server, args: &[&str], refused: bool, json: &Path) -> Output {
    let mut command = match refused {
        true => {
            let mut c = Command::new(no_uring());
            c.arg(env!("CARGO_BIN_EXE_blast"));
            c
        }
        false => Command::new(env!("CARGO_BIN_EXE_blast")),
    };
    command
        .arg(format!("http://{}/", server.addr()))
        .args(["-u", "4", "-t", "1s", "--no-pin", "--json"])
        .arg(json)
        .args(args)
        .output()
        .expect("blast runs")
}

/// Runs blast as [`blast`] does, which must succeed with requests and no failure; returns its
/// summary and record.
fn run(server: &Server, args: &[&str], refused: bool) -> (String, serde_json::Value) {
    let json = temp(&format!(
        "{}.json",
        args.join("") + if refused { "-refused" } else { "" }
    ));
    let out = blast(server, args, refused, &json);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    std::fs::remove_file(json).unwrap();
    assert!(record["requests"].as_u64().unwrap() > 0 && record["failures"] == 0);
    (String::from_utf8(out.stdout).unwrap(), record)
}

#[test]
fn auto_uses_io_uring_where_allowed_and_falls_back_to_epoll_where_refused() {
    let server = Server::start("127.0.0.1:0".parse().unwrap(), Config::default()).unwrap();
    let (summary, r) = run(&server, &[], false);
    assert_eq!(r["io"], "uring", "this machine allows io_uring");
    assert!(r.get("io_fallback").is_none());
    assert!(summary.contains("socket I/O    io_uring"), "{summary}");

    let (summary, r) = run(&server, &[], true);
    assert_eq!(r["io"], "epoll");
    assert!(
        r["io_fallback"].as_str().unwrap().contains("not permitted"),
        "{r}"
    );
    assert!(
        summary.contains("socket I/O    epoll (io_uring refused: Operation not permitted"),
        "{summary}"
    );
}

#[test]
fn io_uring_asked_for_where_refused_is_one_clear_error_and_epoll_needs_no_ring() {
    let server = Server::start("127.0.0.1:0".parse().unwrap(), Config::default()).unwrap();
    let json = temp("forced.json");
    let out = blast(&server, &["--io", "uring"], true, &json);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.trim(),
        "blast: error: io_uring is not available here (Operation not permitted (os error 1)): \
         use --io epoll, or auto to fall back"
    );
    let _ = std::fs::remove_file(&json);

    let (_, r) = run(&server, &["--io", "epoll"], true);
    assert_eq!(r["io"], "epoll");
    assert!(r.get("io_fallback").is_none(), "epoll was asked for");
}
