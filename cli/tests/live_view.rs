//! The live view in a real terminal: tmux panes of 80×24 and 120×40 are captured while a
//! run redraws in them, and after it ends.

use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// A tmux server of the test's own (`-L`), so no user session is touched; killed on drop.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn run(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .args(["-L", &self.socket])
            .args(args)
            .output()
            .expect("tmux runs")
    }

    /// The pane's history and screen, wrapped lines joined, trailing blanks cut.
    fn capture(&self) -> Vec<String> {
        let out = self.run(&["capture-pane", "-p", "-J", "-S", "-", "-t", "blast"]);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| l.trim_end().to_string())
            .collect()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        self.run(&["kill-server"]);
    }
}

/// A live frame's first line: the progress bar and clock.
fn is_progress(line: &str) -> bool {
    line.starts_with('[') && line.contains(" left")
}

/// Checks one capture: no line wider than the pane (a wrapped line would break the redraw),
/// at most one frame, and its lines in order.
fn check(lines: &[String], width: usize) -> Result<(), String> {
    if let Some(long) = lines.iter().find(|l| l.chars().count() > width) {
        return Err(format!(
            "a line of {} columns: {long:?}",
            long.chars().count()
        ));
    }
    let frames: Vec<usize> = (0..lines.len())
        .filter(|&i| is_progress(&lines[i]))
        .collect();
    match frames[..] {
        [] => Ok(()),
        [at] => {
            let next = lines.get(at + 1).map_or("", String::as_str);
            let third = lines.get(at + 2).map_or("", String::as_str);
            if next.starts_with("users ") && third.starts_with("failures ") {
                Ok(())
            } else {
                Err(format!("a torn frame: {:#?}", &lines[at..]))
            }
        }
        _ => Err(format!("{} frames stacked", frames.len())),
    }
}

#[test]
#[ignore = "needs tmux: .ci/run installs it and runs the ignored tests"]
fn the_live_view_redraws_cleanly_in_80x24_and_120x40() {
    assert!(
        Command::new("tmux").arg("-V").output().is_ok(),
        "tmux is not installed (.ci/run installs it)"
    );
    let command = format!(
        "{} --profile connectors -t 10s -u 40 -r 40 --no-pin; sleep 60",
        env!("CARGO_BIN_EXE_blast")
    );
    let panes: Vec<(Tmux, usize)> = [(80, 24), (120, 40)]
        .into_iter()
        .map(|(width, height)| {
            let tmux = Tmux {
                socket: format!("blast-test-{}-{width}", std::process::id()),
            };
            let (w, h) = (width.to_string(), height.to_string());
            let out = tmux.run(&[
                "new-session",
                "-d",
                "-s",
                "blast",
                "-x",
                &w,
                "-y",
                &h,
                &command,
            ]);
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            (tmux, width)
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut frames_seen = [0; 2];
    let mut finished = [false; 2];
    while !finished.iter().all(|&f| f) {
        assert!(Instant::now() < deadline, "the runs did not end");
        std::thread::sleep(Duration::from_millis(700));
        for (i, (tmux, width)) in panes.iter().enumerate() {
            if finished[i] {
                continue;
            }
            let lines = tmux.capture();
            if let Err(e) = check(&lines, *width) {
                panic!("{width} columns: {e}\n{}", lines.join("\n"));
            }
            frames_seen[i] += usize::from(lines.iter().any(|l| is_progress(l)));
            if lines.iter().any(|l| l.starts_with("result: ")) {
                finished[i] = true;
                // The summary replaced the last frame, and it fits the pane with a column to
                // spare (80 columns included).
                assert!(
                    !lines.iter().any(|l| is_progress(l)),
                    "{}",
                    lines.join("\n")
                );
                let summary = lines.iter().skip_while(|l| !l.starts_with("blast "));
                let widest = summary.map(|l| l.chars().count()).max().unwrap_or(0);
                assert!(
                    widest < *width,
                    "a summary line of {widest} columns:\n{}",
                    lines.join("\n")
                );
            }
        }
    }
    assert!(
        frames_seen.iter().all(|&n| n >= 3),
        "frames seen: {frames_seen:?}"
    );
}
