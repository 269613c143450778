//! A cgroup v2 read each interval (`--monitor-cgroup`): CPU against its quota, memory against
//! its limit, block I/O and processes, the figures `docker stats` shows for a container, from
//! the same files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Where cgroup v2 is mounted: its own mount on a unified system, `unified/` beside v1's.
const ROOTS: [&str; 2] = ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"];

/// One cgroup v2 directory and what it read last time.
#[derive(Debug)]
pub struct Cgroup {
    dir: PathBuf,
    /// The values reported under `PREFIX.…`.
    prefix: String,
    /// CPU µs, bytes read, bytes written, and when.
    last: Option<(u64, u64, u64, Instant)>,
}

impl Cgroup {
    /// The cgroup at `path`: a directory, or a path under the cgroup v2 mount
    /// (`system.slice/docker-ID.scope`). An error says why it is not one.
    pub fn open(path: &Path, prefix: &str) -> Result<Cgroup, String> {
        let candidates: Vec<PathBuf> = if path.is_absolute() {
            vec![path.to_path_buf()]
        } else {
            ROOTS.iter().map(|r| Path::new(r).join(path)).collect()
        };
        let dir = candidates
            .into_iter()
            .find(|d| d.join("cgroup.procs").exists() && d.join("cpu.stat").exists())
            .ok_or_else(|| {
                format!(
                    "{}: not a cgroup v2 directory (it needs cgroup.procs and cpu.stat; v2 is mounted at /sys/fs/cgroup, or /sys/fs/cgroup/unified beside v1)",
                    path.display()
                )
            })?;
        Ok(Cgroup {
            dir,
            prefix: prefix.to_string(),
            last: None,
        })
    }

    /// The names of the values `sample` reports.
    pub fn keys(&self) -> Vec<String> {
        [
            "cpu_pct",
            "cpu_limit_cores",
            "mem_mb",
            "mem_limit_mb",
            "io_read_mb_s",
            "io_write_mb_s",
            "processes",
        ]
        .map(|k| format!("{}.{k}", self.prefix))
        .to_vec()
    }

    /// One sample; values that cannot be read are left out.
    pub fn sample(&mut self) -> BTreeMap<String, f64> {
        let now = Instant::now();
        let read = |file: &str| std::fs::read_to_string(self.dir.join(file)).ok();
        let key = |k: &str| format!("{}.{k}", self.prefix);
        let mut out = BTreeMap::new();
        let usage = read("cpu.stat").and_then(|s| field(&s, "usage_usec"));
        let (rbytes, wbytes) = read("io.stat").map_or((0, 0), |s| io_bytes(&s));
        if let (Some(usage), Some((before, r0, w0, at))) = (usage, self.last) {
            let wall = now.duration_since(at).as_secs_f64().max(1e-3);
            out.insert(
                key("cpu_pct"),
                usage.saturating_sub(before) as f64 / 1e6 / wall * 100.0,
            );
            let mb_s = |now: u64, then: u64| now.saturating_sub(then) as f64 / 1e6 / wall;
            out.insert(key("io_read_mb_s"), mb_s(rbytes, r0));
            out.insert(key("io_write_mb_s"), mb_s(wbytes, w0));
        }
        if let Some(usage) = usage {
            self.last = Some((usage, rbytes, wbytes, now));
        }
        out.extend(
            read("cpu.max")
                .and_then(|s| cpu_limit(&s))
                .map(|c| (key("cpu_limit_cores"), c)),
        );
        let mb = |s: String| s.trim().parse::<f64>().ok().map(|b| b / 1048576.0);
        out.extend(
            read("memory.current")
                .and_then(mb)
                .map(|v| (key("mem_mb"), v)),
        );
        out.extend(
            read("memory.max")
                .and_then(mb)
                .map(|v| (key("mem_limit_mb"), v)),
        );
        let processes = read("cgroup.procs").map(|s| s.lines().count() as f64);
        out.extend(processes.map(|n| (key("processes"), n)));
        out
    }
}

/// `name N` from a flat-keyed file such as `cpu.stat`.
fn field(text: &str, name: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == name).then(|| v.trim().parse().ok())?
    })
}

/// Cores allowed by `cpu.max` (`QUOTA PERIOD`, or `max PERIOD` for no limit).
fn cpu_limit(text: &str) -> Option<f64> {
    let mut parts = text.split_whitespace();
    let quota: f64 = parts.next()?.parse().ok()?;
    let period: f64 = parts.next()?.parse().ok()?;
    (period > 0.0).then(|| quota / period)
}

/// Bytes read and written, summed over the devices of `io.stat`.
fn io_bytes(text: &str) -> (u64, u64) {
    let mut total = (0, 0);
    for word in text.split_whitespace() {
        if let Some(n) = word
            .strip_prefix("rbytes=")
            .and_then(|n| n.parse::<u64>().ok())
        {
            total.0 += n;
        } else if let Some(n) = word
            .strip_prefix("wbytes=")
            .and_then(|n| n.parse::<u64>().ok())
        {
            total.1 += n;
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroup_files_are_read_as_docker_stats_shows_them() {
        let dir = std::env::temp_dir().join(format!("blast-cgroup-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let write = |f: &str, s: &str| std::fs::write(dir.join(f), s).unwrap();
        write("cgroup.procs", "10\n11\n12\n");
        write(
            "cpu.stat",
            "usage_usec 1000000\nuser_usec 600000\nsystem_usec 400000\n",
        );
        write("cpu.max", "200000 100000\n");
        write("memory.current", "104857600\n");
        write("memory.max", "max\n");
        write("io.stat", "8:0 rbytes=1000000 wbytes=0 rios=1 wios=0\n8:16 rbytes=0 wbytes=3000000 rios=0 wios=3\n");
        let mut cgroup = Cgroup::open(&dir, "api").unwrap();
        let first = cgroup.sample();
        assert_eq!(first.get("api.cpu_limit_cores"), Some(&2.0));
        assert_eq!(first.get("api.mem_mb"), Some(&100.0));
        assert_eq!(first.get("api.mem_limit_mb"), None, "no limit: max");
        assert_eq!(first.get("api.processes"), Some(&3.0));
        assert_eq!(first.get("api.cpu_pct"), None, "a rate needs two readings");
        // 1.5 CPU-seconds and 2 MB read later.
        write("cpu.stat", "usage_usec 2500000\n");
        write(
            "io.stat",
            "8:0 rbytes=3000000 wbytes=0\n8:16 rbytes=0 wbytes=3000000\n",
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
        let second = cgroup.sample();
        let cpu = second["api.cpu_pct"];
        // 1.5 s of CPU in a little over 0.2 s of wall time: several cores' worth.
        assert!(cpu > 300.0 && cpu < 750.0, "{cpu}");
        assert!(second["api.io_read_mb_s"] > 1.0 && second["api.io_write_mb_s"] == 0.0);
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(Cgroup::open(Path::new("no/such/group"), "x")
            .unwrap_err()
            .contains("not a cgroup v2 directory"));
    }

    #[test]
    #[ignore = "needs root and a cgroup v2 hierarchy it may write (as CI's machine has): run with --ignored"]
    fn a_cgroup_this_test_creates_counts_its_busy_process() {
        // A real cgroup v2, where the machine lets this process make one (root, v2 mounted).
        let root = ROOTS
            .iter()
            .map(Path::new)
            .find(|r| r.join("cgroup.procs").exists())
            .expect("no cgroup v2 hierarchy mounted");
        let dir = root.join(format!("blast-test-{}", std::process::id()));
        std::fs::create_dir(&dir)
            .unwrap_or_else(|e| panic!("cannot create a cgroup under {}: {e}", root.display()));
        let mut child = std::process::Command::new("sh")
            .args(["-c", "while :; do :; done"])
            .spawn()
            .unwrap();
        let moved = std::fs::write(dir.join("cgroup.procs"), child.id().to_string());
        let mut cgroup = Cgroup::open(&dir, "test").unwrap();
        cgroup.sample();
        std::thread::sleep(std::time::Duration::from_millis(500));
        let second = cgroup.sample();
        child.kill().unwrap();
        child.wait().unwrap();
        // Back to the parent so the directory can go.
        let _ = std::fs::write(root.join("cgroup.procs"), child.id().to_string());
        std::thread::sleep(std::time::Duration::from_millis(100));
        let _ = std::fs::remove_dir(&dir);
        moved.expect("cannot move a process into a cgroup here");
        let cpu = second["test.cpu_pct"];
        // A spinning shell uses a core, give or take what the machine lets it have.
        assert!(cpu > 20.0 && cpu < 130.0, "{cpu}");
    }
}
