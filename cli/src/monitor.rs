//! Samples taken once per interval: blast's own worker threads (CPU) and memory, the host's
//! CPU, a monitored process tree (`--monitor-pid`), a cgroup (`--monitor-cgroup`), a Docker
//! container (`--monitor-container`), PostgreSQL (`--monitor-postgres`) and commands
//! (`--monitor-cmd NAME=COMMAND`). Each source is checked once before the run (bad input is an
//! error then); during the run a sample that cannot be read is left out, never an error:
//! monitoring must not stop a run. Sources that wait on a socket or a command are read on
//! threads of their own, so the interval's sample never waits for them.

mod cgroup;
#[cfg(feature = "docker")]
mod container;
#[cfg(feature = "postgres")]
mod postgres;
mod tree;

use blast_report::Sample;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Clock ticks per second in `/proc/*/stat` (Linux's USER_HZ, 100 on every architecture).
const TICKS_PER_SECOND: f64 = 100.0;

/// A `--monitor-cmd` value: a name and the shell command whose output is the number.
#[derive(Clone, Debug, serde::Serialize)]
pub struct MonitorCommand {
    /// Name in the outputs.
    pub name: String,
    /// Run with `sh -c`.
    pub command: String,
}

/// Parses `NAME=COMMAND`.
pub fn parse_command(text: &str) -> Result<MonitorCommand, String> {
    match text.split_once('=') {
        Some((name, command)) if !name.trim().is_empty() && !command.trim().is_empty() => {
            Ok(MonitorCommand {
                name: name.trim().to_string(),
                command: command.to_string(),
            })
        }
        _ => Err(format!(
            "invalid --monitor-cmd {text:?}: expected NAME=COMMAND, e.g. db_conns='psql -tAc \"select count(*) from pg_stat_activity\"'"
        )),
    }
}

/// CPU ticks seen last time for one process or thread.
struct Ticks {
    dir: PathBuf,
    last: Option<(u64, Instant)>,
}

impl Ticks {
    fn new(dir: PathBuf) -> Ticks {
        Ticks { dir, last: None }
    }

    /// CPU seconds used and wall seconds passed since the previous call (`None` on the first
    /// call, or when the file cannot be read).
    fn since_last(&mut self) -> Option<(f64, f64)> {
        let now = Instant::now();
        let ticks = stat_ticks(&self.dir.join("stat"))?;
        let used = self.last.map(|(before, at)| {
            let cpu = ticks.saturating_sub(before) as f64 / TICKS_PER_SECOND;
            (cpu, now.duration_since(at).as_secs_f64())
        });
        self.last = Some((ticks, now));
        used
    }

    /// CPU use since the previous call, in % of one core.
    fn cpu_pct(&mut self) -> Option<f64> {
        self.since_last()
            .map(|(cpu, wall)| cpu / wall.max(1e-3) * 100.0)
    }
}

/// utime + stime from a `/proc/.../stat` file.
fn stat_ticks(path: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    // The command name may hold spaces; fields are counted after its closing parenthesis.
    let after = &text[text.rfind(')')? + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// RSS in MB and threads from `/proc/.../status`.
fn status(dir: &Path) -> (Option<f64>, Option<f64>) {
    let Ok(text) = std::fs::read_to_string(dir.join("status")) else {
        return (None, None);
    };
    let field = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
    };
    (field("VmRSS:").map(|kb| kb / 1024.0), field("Threads:"))
}

fn open_files(dir: &Path) -> Option<f64> {
    Some(std::fs::read_dir(dir.join("fd")).ok()?.count() as f64)
}

/// Time a thread has waited on a run queue so far, in ns (`schedstat`'s second field).
fn run_queue_ns(dir: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(dir.join("schedstat")).ok()?;
    text.split_whitespace().nth(1)?.parse().ok()
}

/// The host's CPU: how busy it was, and its steal time (CPU given to other guests by the
/// hypervisor), read between calls.
#[derive(Default)]
struct HostCpu {
    /// Busy, steal and total ticks at the previous call.
    last: Option<(u64, u64, u64)>,
}

impl HostCpu {
    /// Since the previous call: busy and steal, each in % of all CPU time (`None` on the
    /// first call).
    fn pct(&mut self) -> Option<(f64, f64)> {
        let text = std::fs::read_to_string("/proc/stat").ok()?;
        let fields: Vec<u64> = text
            .lines()
            .next()?
            .split_whitespace()
            .skip(1)
            .take(8)
            .filter_map(|v| v.parse().ok())
            .collect();
        let total = fields.iter().sum::<u64>();
        // idle and iowait are the time nobody used.
        let busy = total - fields.get(3)? - fields.get(4)?;
        let steal = *fields.get(7)?;
        let before = self.last.replace((busy, steal, total))?;
        let spent = total.saturating_sub(before.2).max(1) as f64;
        let pct = |now: u64, then: u64| now.saturating_sub(then) as f64 * 100.0 / spent;
        Some((pct(busy, before.0), pct(steal, before.1)))
    }
}

/// CPU time of blast's worker threads, read between calls.
#[derive(Default)]
pub struct WorkerCpu {
    threads: Vec<Ticks>,
    /// Each worker's run-queue wait at the previous call, in ns.
    waits: Vec<Option<u64>>,
}

impl WorkerCpu {
    /// Finds the worker threads on the first call, which only takes their baseline; `true`
    /// once they are known.
    fn known(&mut self) -> bool {
        if self.threads.is_empty() {
            self.threads = worker_threads();
            return false;
        }
        true
    }

    /// CPU seconds all workers used since the previous call (0 on the first).
    pub fn seconds_since_last(&mut self) -> f64 {
        if !self.known() {
            return 0.0;
        }
        self.threads
            .iter_mut()
            .filter_map(|t| t.since_last().map(|(cpu, _)| cpu))
            .sum()
    }

    /// The longest any worker waited for a CPU while runnable since the previous call, in ms
    /// (`None` on the first call, or where `schedstat` cannot be read).
    fn longest_wait_ms(&mut self) -> Option<f64> {
        let now: Vec<Option<u64>> = self.threads.iter().map(|t| run_queue_ns(&t.dir)).collect();
        let before = std::mem::replace(&mut self.waits, now);
        before
            .iter()
            .zip(&self.waits)
            .filter_map(|(b, n)| Some(n.as_ref()?.saturating_sub(*b.as_ref()?) as f64 / 1e6))
            .reduce(f64::max)
    }

    /// The busiest worker's CPU since the previous call, in % of one core (`None` on the
    /// first call).
    fn busiest_pct(&mut self) -> Option<f64> {
        if !self.known() {
            return None;
        }
        self.threads
            .iter_mut()
            .filter_map(Ticks::cpu_pct)
            .reduce(f64::max)
    }
}

/// What to watch besides blast itself, as the flags say.
#[derive(Clone, Default, serde::Serialize)]
pub struct Sources {
    /// `--monitor-pid`.
    pub pid: Option<u32>,
    /// `--monitor-cgroup`.
    pub cgroup: Option<PathBuf>,
    /// `--monitor-container`.
    pub container: Option<String>,
    /// `--monitor-postgres`.
    pub postgres: Option<String>,
    /// `--monitor-cmd`.
    pub commands: Vec<MonitorCommand>,
}

/// Values a background thread read last, by name.
type Latest = Arc<Mutex<BTreeMap<String, f64>>>;

pub struct Monitor {
    workers: WorkerCpu,
    host: HostCpu,
    pid: Option<tree::ProcessTree>,
    cgroup: Option<cgroup::Cgroup>,
    /// Sources read on threads of their own, with the names of their values.
    background: Vec<(Vec<String>, Latest)>,
    warned: bool,
    warned_stall: bool,
    /// Warnings not shown yet: the run loop prints them between live frames.
    warnings: Vec<String>,
}

/// Reads `read` every `every` on a thread of its own; the latest values wait in the result.
/// The thread ends once the monitor is gone (the web UI makes one per run).
fn in_background(
    every: Duration,
    mut read: impl FnMut() -> BTreeMap<String, f64> + Send + 'static,
) -> Latest {
    let latest = Latest::default();
    let slot = Arc::downgrade(&latest);
    std::thread::spawn(move || loop {
        let values = read();
        let Some(slot) = slot.upgrade() else {
            return;
        };
        *slot.lock().unwrap_or_else(|p| p.into_inner()) = values;
        drop(slot);
        std::thread::sleep(every);
    });
    latest
}

impl Monitor {
    /// Checks each source once and starts watching them; an error names the flag and why.
    pub fn start(sources: &Sources, every: Duration) -> Result<Monitor, String> {
        if let Some(pid) = sources.pid {
            if !Path::new(&format!("/proc/{pid}")).exists() {
                return Err(format!("--monitor-pid {pid}: no such process"));
            }
        }
        let cgroup = (sources.cgroup.as_ref())
            .map(|path| cgroup::Cgroup::open(path, "cgroup"))
            .transpose()
            .map_err(|e| format!("--monitor-cgroup {e}"))?;
        let mut background = Vec::new();
        if let Some(name) = &sources.container {
            #[cfg(feature = "docker")]
            {
                let mut c = container::Container::open(name, container::socket())
                    .map_err(|e| format!("--monitor-container {name}: {e}"))?;
                let keys = container::KEYS.map(String::from).to_vec();
                background.push((keys, in_background(every, move || c.sample())));
            }
            #[cfg(not(feature = "docker"))]
            return Err(format!(
                "--monitor-container {name}: this blast was built without the docker feature"
            ));
        }
        if let Some(url) = &sources.postgres {
            #[cfg(feature = "postgres")]
            {
                let mut pg = postgres::Postgres::open(url)
                    .map_err(|e| format!("--monitor-postgres: {e}"))?;
                let keys = postgres::KEYS.map(String::from).to_vec();
                background.push((keys, in_background(every, move || pg.sample())));
            }
            #[cfg(not(feature = "postgres"))]
            {
                let _ = url;
                return Err(
                    "--monitor-postgres: this blast was built without the postgres feature".into(),
                );
            }
        }
        for c in &sources.commands {
            let (name, command) = (c.name.clone(), c.command.clone());
            let read = move || {
                run_command(&command)
                    .map(|v| (name.clone(), v))
                    .into_iter()
                    .collect()
            };
            background.push((vec![c.name.clone()], in_background(every, read)));
        }
        Ok(Monitor {
            workers: WorkerCpu::default(),
            host: HostCpu::default(),
            pid: sources.pid.map(tree::ProcessTree::new),
            cgroup,
            background,
            warned: false,
            warned_stall: false,
            warnings: Vec::new(),
        })
    }

    pub fn keys(&self) -> Vec<String> {
        let mut keys = vec![
            "blast.rss_mb".to_string(),
            "blast.fds".to_string(),
            "host.cpu_pct".to_string(),
        ];
        if let Some(tree) = &self.pid {
            keys.extend(tree.keys());
        }
        if let Some(cgroup) = &self.cgroup {
            keys.extend(cgroup.keys());
        }
        keys.extend(self.background.iter().flat_map(|(k, _)| k.iter().cloned()));
        keys
    }

    /// The warnings of the samples taken since the last call (each kind once per run).
    pub fn take_warnings(&mut self) -> Vec<String> {
        std::mem::take(&mut self.warnings)
    }

    /// One sample, given the interval's largest event-loop lag.
    pub fn sample(&mut self, loop_lag_us: u64) -> Sample {
        // Threads found now only get their baseline: CPU shows from the next interval.
        let worker_cpu_pct = self.workers.busiest_pct();
        let run_queue_ms = self.workers.longest_wait_ms();
        let mut monitor = BTreeMap::new();
        let me = Path::new("/proc/self");
        let (rss, _) = status(me);
        monitor.extend(rss.map(|v| ("blast.rss_mb".to_string(), v)));
        monitor.extend(open_files(me).map(|v| ("blast.fds".to_string(), v)));
        let host = self.host.pct();
        monitor.extend(host.map(|(busy, _)| ("host.cpu_pct".to_string(), busy)));
        if let Some(tree) = &mut self.pid {
            monitor.extend(tree.sample());
        }
        if let Some(cgroup) = &mut self.cgroup {
            monitor.extend(cgroup.sample());
        }
        for (_, latest) in &self.background {
            let values = latest.lock().unwrap_or_else(|p| p.into_inner()).clone();
            monitor.extend(values);
        }
        let sample = Sample {
            worker_cpu_pct,
            loop_lag_ms: loop_lag_us as f64 / 1000.0,
            run_queue_ms,
            steal_pct: host.map(|(_, steal)| steal),
            monitor,
        };
        // Saturation needs a CPU reading, so the start-up interval (none yet) never warns.
        if sample.saturated() && !std::mem::replace(&mut self.warned, true) {
            self.warnings.push(format!(
                "the generator is saturated (busiest worker at {:.0}% CPU, event loop {:.1} ms late): results may show blast's limit, not the target's",
                sample.worker_cpu_pct.unwrap_or_default(),
                sample.loop_lag_ms
            ));
        }
        if sample.stalled() && !std::mem::replace(&mut self.warned_stall, true) {
            self.warnings.push(format!(
                "the generator stalled ({}): latencies of this interval include blast's own pause",
                sample.stall_cause()
            ));
        }
        sample
    }
}

/// The `/proc` folders of blast's worker threads (named `blast-worker-N`).
fn worker_threads() -> Vec<Ticks> {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    tasks
        .filter_map(|t| t.ok().map(|t| t.path()))
        .filter(|dir| {
            std::fs::read_to_string(dir.join("comm")).is_ok_and(|c| c.starts_with("blast-worker"))
        })
        .map(|dir| {
            let mut ticks = Ticks::new(dir);
            // The first reading is the baseline for the next interval.
            ticks.cpu_pct();
            ticks
        })
        .collect()
}

/// Runs `command` with `sh -c` and reads the first number it prints.
fn run_command(command: &str) -> Option<f64> {
    let out = std::process::Command::new("sh")
        .args(["-c", command])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout)
        .split(|c: char| c.is_whitespace() || c == ',')
        .find_map(|w| w.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_parse_and_report_their_first_number() {
        let c = parse_command("db_conns=echo 'count: 42'").unwrap();
        assert_eq!(c.name, "db_conns");
        assert_eq!(run_command("echo 'conns 42 of 100'"), Some(42.0));
        assert_eq!(run_command("echo none"), None);
        assert!(parse_command("no-equals").is_err());
        assert!(parse_command("=cmd").is_err());
    }

    #[test]
    fn this_process_can_be_sampled() {
        let me = Path::new("/proc/self");
        assert!(run_queue_ns(me).is_some());
        let mut host = HostCpu::default();
        assert_eq!(host.pct(), None);
        let percent = |p: f64| (0.0..=100.0).contains(&p);
        assert!(host
            .pct()
            .is_some_and(|(busy, steal)| percent(busy) && percent(steal)));
        assert!(stat_ticks(&me.join("stat")).is_some());
        let (rss, threads) = status(me);
        assert!(rss.unwrap() > 0.0 && threads.unwrap() >= 1.0);
        assert!(open_files(me).unwrap() >= 3.0);
    }
}
