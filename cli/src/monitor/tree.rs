//! A monitored process and all its descendants, found anew at every sample: servers such as
//! gunicorn, uWSGI, PostgreSQL, nginx or php-fpm do their work in child processes, which
//! restart, so watching the PID alone watches an idle master.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Instant;

use super::{open_files, TICKS_PER_SECOND};

/// What one `/proc/PID/stat` line says about a process.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ProcStat {
    pub pid: u32,
    pub ppid: u32,
    /// utime + stime, in clock ticks.
    pub ticks: u64,
    pub threads: u64,
    /// When it started, in clock ticks after boot: tells a reused PID from the old process.
    pub started: u64,
}

/// Parses a `/proc/PID/stat` line.
pub fn parse_stat(text: &str) -> Option<ProcStat> {
    let pid = text.split_whitespace().next()?.parse().ok()?;
    // The command name may hold spaces and parentheses; fields are counted after its end.
    let after = &text[text.rfind(')')? + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    let num = |i: usize| f.get(i)?.parse::<u64>().ok();
    Some(ProcStat {
        pid,
        ppid: num(1)? as u32,
        ticks: num(11)? + num(12)?,
        threads: num(17)?,
        started: num(19)?,
    })
}

/// Every process on the machine, as far as it can be read.
fn all_processes() -> Vec<ProcStat> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
        .filter_map(|text| parse_stat(&text))
        .collect()
}

/// `root` and its descendants among `procs` (empty when `root` is gone).
pub fn descendants(procs: &[ProcStat], root: u32) -> Vec<ProcStat> {
    let mut children: HashMap<u32, Vec<&ProcStat>> = HashMap::new();
    for p in procs {
        children.entry(p.ppid).or_default().push(p);
    }
    let mut tree: Vec<ProcStat> = procs.iter().filter(|p| p.pid == root).copied().collect();
    let mut i = 0;
    while i < tree.len() {
        let pid = tree[i].pid;
        tree.extend(children.get(&pid).into_iter().flatten().map(|p| **p));
        i += 1;
    }
    tree
}

/// CPU ticks the tree used since the last reading: processes seen before count their
/// increase, new ones (a restarted worker) all they used. Processes that ended in between
/// take their last interval's CPU with them.
pub fn ticks_since(tree: &[ProcStat], last: &HashMap<u32, (u64, u64)>) -> u64 {
    tree.iter()
        .map(|p| match last.get(&p.pid) {
            Some(&(started, ticks)) if started == p.started => p.ticks.saturating_sub(ticks),
            _ => p.ticks,
        })
        .sum()
}

/// The monitored tree, read between samples.
pub struct ProcessTree {
    root: u32,
    /// Per PID at the last sample: its start time and CPU ticks.
    last: HashMap<u32, (u64, u64)>,
    last_at: Option<Instant>,
}

impl ProcessTree {
    /// Watches `root` and whatever descends from it.
    pub fn new(root: u32) -> ProcessTree {
        ProcessTree {
            root,
            last: HashMap::new(),
            last_at: None,
        }
    }

    /// The names of the values `sample` reports.
    pub fn keys(&self) -> Vec<String> {
        [
            "cpu_pct",
            "cpu_cores",
            "rss_mb",
            "threads",
            "processes",
            "fds",
        ]
        .map(|k| format!("pid{}.{k}", self.root))
        .to_vec()
    }

    /// One sample of the whole tree: CPU % since the last sample (of one core, so it can
    /// exceed 100), RSS summed, threads, processes and open files.
    pub fn sample(&mut self) -> BTreeMap<String, f64> {
        let now = Instant::now();
        let tree = descendants(&all_processes(), self.root);
        let mut out = BTreeMap::new();
        if tree.is_empty() {
            return out;
        }
        let key = |k: &str| format!("pid{}.{k}", self.root);
        if let Some(at) = self.last_at {
            let wall = now.duration_since(at).as_secs_f64().max(1e-3);
            let cpu = ticks_since(&tree, &self.last) as f64 / TICKS_PER_SECOND;
            out.insert(key("cpu_pct"), cpu / wall * 100.0);
        }
        let dirs: Vec<_> = tree
            .iter()
            .map(|p| Path::new("/proc").join(p.pid.to_string()))
            .collect();
        let rss: f64 = dirs.iter().filter_map(|d| super::status(d).0).sum();
        let fds: f64 = dirs.iter().filter_map(|d| open_files(d)).sum();
        out.insert(key("rss_mb"), rss);
        out.insert(
            key("threads"),
            tree.iter().map(|p| p.threads).sum::<u64>() as f64,
        );
        out.insert(key("processes"), tree.len() as f64);
        // The cores the server may use: its CPU % is judged against them.
        let root = Path::new("/proc")
            .join(self.root.to_string())
            .join("status");
        let cores = std::fs::read_to_string(root).ok().and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
                .map(cpu_count)
        });
        out.extend(cores.map(|n| (key("cpu_cores"), n as f64)));
        out.insert(key("fds"), fds);
        self.last = tree.iter().map(|p| (p.pid, (p.started, p.ticks))).collect();
        self.last_at = Some(now);
        out
    }
}

/// CPUs in a list such as `0-3,8,10-11`.
pub fn cpu_count(list: &str) -> usize {
    list.trim()
        .split(',')
        .filter(|r| !r.is_empty())
        .map(|r| match r.split_once('-') {
            Some((a, b)) => match (a.parse::<usize>(), b.parse::<usize>()) {
                (Ok(a), Ok(b)) if b >= a => b - a + 1,
                _ => 0,
            },
            None => usize::from(r.parse::<usize>().is_ok()),
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_count_ranges_and_singles() {
        assert_eq!(cpu_count("0-3,8,10-11\n"), 7);
        assert_eq!(cpu_count("0"), 1);
        assert_eq!(cpu_count(""), 0);
    }

    fn proc(pid: u32, ppid: u32, ticks: u64, started: u64) -> ProcStat {
        ProcStat {
            pid,
            ppid,
            ticks,
            threads: 2,
            started,
        }
    }

    #[test]
    fn stat_lines_parse_even_with_odd_command_names() {
        let line = "4242 (gunicorn: worker (app)) S 4200 4200 4200 0 -1 4194560 1 0 0 0 150 50 0 0 20 0 3 0 98765 0 0";
        let p = parse_stat(line).unwrap();
        assert_eq!(
            (p.pid, p.ppid, p.ticks, p.threads, p.started),
            (4242, 4200, 200, 3, 98765)
        );
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn the_tree_holds_every_descendant_and_nothing_else() {
        let procs = [
            proc(1, 0, 0, 1),
            proc(10, 1, 5, 2),  // the master
            proc(11, 10, 7, 3), // workers
            proc(12, 10, 9, 4),
            proc(13, 12, 1, 5), // a worker's child
            proc(20, 1, 50, 6), // another program
        ];
        let mut pids: Vec<u32> = descendants(&procs, 10).iter().map(|p| p.pid).collect();
        pids.sort();
        assert_eq!(pids, [10, 11, 12, 13]);
        assert!(descendants(&procs, 99).is_empty());
    }

    #[test]
    fn cpu_counts_increases_and_whole_new_processes() {
        let last: HashMap<u32, (u64, u64)> = [(10, (2, 5)), (11, (3, 100)), (12, (4, 40))].into();
        let now = [
            proc(10, 1, 6, 2),     // +1
            proc(11, 10, 130, 3),  // +30
            proc(12, 10, 15, 99),  // PID reused by a restarted worker: all 15
            proc(14, 10, 20, 100), // new: all 20
        ];
        assert_eq!(ticks_since(&now, &last), 66);
    }

    #[test]
    fn a_forking_parent_is_watched_with_its_children() {
        // A master that only waits, and two busy workers: as gunicorn's master and workers.
        let mut child = std::process::Command::new("sh")
            .args(["-c", "(while :; do :; done) & (while :; do :; done) & wait"])
            .spawn()
            .unwrap();
        let root = child.id();
        // The shell starts its children right away; give it a moment, without depending on it.
        let mut tree = ProcessTree::new(root);
        let mut processes = 0.0;
        for _ in 0..100 {
            processes = tree
                .sample()
                .get(&format!("pid{root}.processes"))
                .copied()
                .unwrap_or(0.0);
            if processes >= 3.0 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        // The CPU of the interval from here: all of it the workers'.
        std::thread::sleep(std::time::Duration::from_millis(500));
        let sample = tree.sample();
        // The workers first, so none outlives the test.
        for p in descendants(&all_processes(), root)
            .iter()
            .filter(|p| p.pid != root)
        {
            let _ = std::process::Command::new("kill")
                .arg(p.pid.to_string())
                .status();
        }
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(processes, 3.0, "{sample:?}");
        assert!(sample[&format!("pid{root}.rss_mb")] > 0.0, "{sample:?}");
        // Two spinning workers, whatever share of the cores a busy machine lets them have;
        // the waiting master alone would show about none.
        assert!(sample[&format!("pid{root}.cpu_pct")] > 30.0, "{sample:?}");
        assert_eq!(sample[&format!("pid{root}.threads")], 3.0, "{sample:?}");
    }
}
