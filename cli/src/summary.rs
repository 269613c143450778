//! The human summary printed at the end of a run.

use blast_engine::{FailureClass, Io, Report, Schedule};
use blast_report::RunRecord;
use blast_report::{mean_rate, percent, seconds};
use blast_scenarios::ScenarioScript;
use hdrhistogram::Histogram;

/// Percentiles shown in the summary, as (label, quantile).
const PERCENTILES: [(&str, f64); 5] = [
    ("p50", 0.5),
    ("p90", 0.9),
    ("p99", 0.99),
    ("p99.9", 0.999),
    ("p99.99", 0.9999),
];

/// The width output to `stream` keeps to: a terminal's with one column to spare (a line that
/// fills the last column makes some terminals wrap), or no limit when it is piped, so that a
/// file or a log keeps whole names.
pub fn width_of(stream: &impl std::os::fd::AsFd) -> usize {
    terminal_size::terminal_size_of(stream).map_or(usize::MAX, |(w, _)| {
        usize::from(w.0).saturating_sub(1).max(40)
    })
}

/// `blast: warning: TEXT` on stderr, wrapped at its words to a terminal's width (continued
/// lines indented), or on one line when stderr is piped.
pub fn warn(text: &str) {
    let mut out = Text {
        out: String::new(),
        width: width_of(&std::io::stderr()),
    };
    out.wrap(
        "blast: warning: ",
        2,
        text.split(' ').map(str::to_string),
        " ",
    );
    eprint!("{}", out.out);
}
/// Where a field's text starts: two spaces and a 14-column label.
const INDENT: usize = 16;
/// Kinds of error listed in the summary; the rest are in `_failures.csv` and the JSON.
const TOP_ERRORS: usize = 8;

/// The summary's text, kept to a width: fields wrap at their parts, names are shortened.
struct Text {
    out: String,
    width: usize,
}

impl Text {
    /// A whole line, as it is.
    fn line(&mut self, line: &str) {
        self.out.push_str(line);
        self.out.push('\n');
    }

    /// `first` then `parts` joined by `sep`, wrapped so no line passes the width; wrapped
    /// lines start at `indent`.
    fn wrap(
        &mut self,
        first: &str,
        indent: usize,
        parts: impl IntoIterator<Item = String>,
        sep: &str,
    ) {
        let mut line = first.to_string();
        let mut empty = true;
        for part in parts {
            let len = |s: &str| s.chars().count();
            if !empty && len(&line) + len(sep) + len(&part) > self.width {
                self.line(&line);
                line = " ".repeat(indent);
                empty = true;
            }
            if !empty {
                line.push_str(sep);
            }
            line.push_str(&part);
            empty = false;
        }
        self.line(&line);
    }

    /// "  label         text", the text wrapped at its words under itself.
    fn field(&mut self, label: &str, text: &str) {
        let first = format!("  {label:<13} ");
        self.wrap(&first, INDENT, text.split(' ').map(str::to_string), " ");
    }
}

/// The protocol, connections opened and how they behaved, one short field each: HTTP/2's
/// streams and flow-control waits, reconnects and retries (never failures), connect time, TLS
/// handshakes, redirects followed.
fn connection_lines(out: &mut Text, report: &Report) {
    let c = &report.total.counters;
    let protocol = match report.streams {
        Some(s) if s.used() < s.asked => format!(
            "{}, {used} streams per connection (the server allows {used} of the {} asked)",
            report.protocol.as_str(),
            s.asked,
            used = s.used(),
        ),
        Some(s) => format!(
            "{}, up to {} stream(s) per connection",
            report.protocol.as_str(),
            s.used()
        ),
        None => report.protocol.as_str().to_string(),
    };
    out.field("protocol", &protocol);
    let io = match (&report.io, &report.io_fallback) {
        (Io::Uring, _) => "io_uring".to_string(),
        (_, Some(why)) => format!("epoll (io_uring refused: {why})"),
        _ => "epoll".to_string(),
    };
    out.field("socket I/O", &io);
    if c.flow_control_stalls > 0 {
        out.field(
            "flow control",
            &format!(
                "{} request bodies waited for window, {:.1} ms in all",
                c.flow_control_stalls,
                c.flow_control_stall_us as f64 / 1e3
            ),
        );
    }
    let connect = c
        .mean_connect()
        .map(|d| format!("; connect {:.2} ms avg", d.as_secs_f64() * 1e3))
        .unwrap_or_default();
    out.field(
        "connections",
        &format!(
            "{} opened, {} reconnects, {} retries{connect}",
            c.connections, c.reconnects, c.retries
        ),
    );
    if let Some(handshake) = c.mean_tls_handshake() {
        out.field(
            "tls",
            &format!(
                "{} handshakes ({} resumed), {:.2} ms avg",
                c.tls_handshakes,
                c.tls_resumed,
                handshake.as_secs_f64() * 1e3
            ),
        );
    }
    if c.redirects > 0 {
        out.field("redirects", &format!("{} followed", c.redirects));
    }
}

/// Renders the end-of-run summary in `width` columns: totals, per-name rows, errors, pools
/// and criteria.
pub fn render(
    report: &Report,
    label: &str,
    script: Option<&ScenarioScript>,
    record: &RunRecord,
    width: usize,
) -> String {
    let c = &report.total.counters;
    let mut out = Text {
        out: String::new(),
        width,
    };
    let secs = report.duration.as_secs_f64();
    let pin = if report.pinned {
        "pinned"
    } else {
        "not pinned"
    };
    let stopped = if report.interrupted {
        ", stopped early"
    } else {
        ""
    };
    out.wrap(
        "blast ",
        INDENT,
        [
            format!("{label}:"),
            format!("{},", load(&report.schedule)),
            format!("{secs:.2} s,"),
            format!(
                "{} thread{} ({pin}){stopped}{}",
                report.workers,
                if report.workers == 1 { "" } else { "s" },
                match (&record.shard, &record.merged) {
                    (Some(s), _) => format!(", shard {s}"),
                    (None, Some(m)) => format!(
                        ", merged from {} of {} shard{}",
                        m.shards.len(),
                        m.count,
                        if m.count == 1 { "" } else { "s" }
                    ),
                    (None, None) => String::new(),
                }
            ),
        ],
        " ",
    );
    if let (Some(at), Some(late)) = (&record.start_at, record.start_late_ms) {
        out.field(
            "start",
            &format!("--start-at {at}, started {late:.1} ms after it"),
        );
    }
    if let Some(why) = &report.incomplete {
        out.field(
            "INCOMPLETE",
            &format!("{why}; the run was cut short and misses that worker's last interval"),
        );
    }
    out.field(
        "requests",
        &format!(
            "{} ({:.1}/s), {} failed ({:.2}%), {} cancelled at stop",
            c.requests(),
            report.rps(),
            c.failed(),
            percent(c.failed(), c.requests()),
            c.cancelled
        ),
    );
    if c.failed() > 0 {
        let classes: Vec<String> = FailureClass::ALL
            .iter()
            .filter(|f| c.failures_of(**f) > 0)
            .map(|f| format!("{} {}", f.as_str(), c.failures_of(*f)))
            .collect();
        out.field("failures", &classes.join(", "));
    }
    let latency_label = match &report.schedule {
        Schedule::Closed { .. } => "latency",
        Schedule::Open { .. } => "latency (1)",
    };
    histogram_field(&mut out, latency_label, &report.total.latency_us);
    if let Some(service) = &report.total.service_us {
        histogram_field(&mut out, "service (2)", service);
    }
    if let Schedule::Open { rate, .. } = &report.schedule {
        let rate = mean_rate(rate, report.sending);
        out.field(
            "rate",
            &format!(
                "target {rate:.1}/s, achieved {:.1}/s ({:+.2}%), {} late sends (>{} ms behind schedule)",
                report.rps(),
                (report.rps() / rate - 1.0) * 100.0,
                c.late_sends,
                blast_engine::LATE_AFTER.as_millis()
            ),
        );
        out.field("slots", &slots_text(report.slots));
    }
    out.field(
        "transfer",
        &format!(
            "{} sent, {} received",
            bytes(c.bytes_sent),
            bytes(c.bytes_received)
        ),
    );
    connection_lines(&mut out, report);
    if record.phases.len() > 1 {
        let parts = record.phases.iter().map(|p| {
            let p99 = p
                .latency_ms
                .as_ref()
                .map_or("-".to_string(), |l| format!("{:.2} ms", l.p99));
            format!(
                "{} {}-{} s p99 {p99}",
                p.phase,
                seconds(p.start_s),
                seconds(p.end_s)
            )
        });
        out.wrap("  phases        ", INDENT, parts, ", ");
    }
    if let Schedule::Open { .. } = &report.schedule {
        out.line("  (1) from each request's intended start; (2) from the actual send");
    }
    if report.names.len() > 1 || c.skipped > 0 {
        names_table(&mut out, report);
    }
    errors_table(&mut out, record);
    if let Some(script) = script {
        for (name, p) in script.pool_counts() {
            out.field(
                "pool",
                &format!(
                    "{name}: {} added, {} handed out{}, {} repeats refused, {} left",
                    p.added,
                    p.taken,
                    if p.reuse { "" } else { " (each once)" },
                    p.repeated,
                    p.left
                ),
            );
        }
        for (n, why) in script.unset_skips() {
            out.field("skipped", &format!("{n} tasks: {why}"));
        }
    }
    let generator = &record.generator;
    // The evidence starts with the verdict: "generator-bound: ..." or "not generator-bound: ...".
    out.field("generator", &generator.evidence);
    for g in &record.growth {
        out.field("leak?", g);
    }
    let verdicts = &record.criteria;
    if !verdicts.is_empty() {
        out.line("criteria");
        let room = width.saturating_sub(8).max(20);
        let pad = verdicts
            .iter()
            .map(|v| v.criterion.chars().count())
            .max()
            .unwrap_or(0)
            .min(room);
        for v in verdicts {
            let mark = if v.pass { "PASS" } else { "FAIL" };
            let criterion = shorten(&v.criterion, room);
            let measured = format!(
                "measured {}{}",
                v.measured,
                blast_report::failing_text(&v.failing, record.duration_s)
            );
            let line = format!("  {mark}  {criterion:<pad$}  {measured}");
            if line.chars().count() <= width {
                out.line(&line);
            } else {
                out.line(&format!("  {mark}  {criterion}"));
                out.wrap("        ", 8, measured.split(' ').map(str::to_string), " ");
            }
        }
        let failed = verdicts.iter().filter(|v| !v.pass).count();
        if failed == 0 {
            out.line(&format!(
                "result: PASS (all {} criteria met)",
                verdicts.len()
            ));
        } else {
            out.line(&format!(
                "result: FAIL ({failed} of {} criteria failed)",
                verdicts.len()
            ));
        }
    }
    out.out
}

/// The errors that ended requests, most frequent first, as Locust's error report lists them:
/// occurrences, method and name, message.
fn errors_table(out: &mut Text, record: &RunRecord) {
    let rows = &record.failure_rows;
    if rows.is_empty() {
        return;
    }
    out.line("errors");
    for row in rows.iter().take(TOP_ERRORS) {
        let first = format!("  {:>9}  ", row.occurrences);
        let words = format!("{} {}: {}", row.method, row.name, row.error);
        out.wrap(&first, 13, words.split(' ').map(str::to_string), " ");
    }
    if rows.len() > TOP_ERRORS {
        out.line(&format!(
            "  ... {} more kinds of error in the failures CSV and the JSON record",
            rows.len() - TOP_ERRORS
        ));
    }
}

/// One row per request name, like Locust's final table. Below 100 columns p95 and max are
/// left to the CSV files; the name column takes what the numbers leave, and longer names are
/// shortened in the middle.
fn names_table(out: &mut Text, report: &Report) {
    let wide = out.width >= 100;
    let skipped = report.total.counters.skipped > 0;
    let mut heads = vec!["requests", "fails", "req/s", "p50"];
    if wide {
        heads.push("p95");
    }
    heads.push("p99");
    if wide {
        heads.push("max");
    }
    if skipped {
        heads.push("skipped");
    }
    // The indent, then nine columns (a space and eight) per number.
    let numbers = 2 + 9 * heads.len();
    let longest = report
        .names
        .iter()
        .map(|n| n.name.method.len() + 1 + n.name.name.chars().count())
        .max()
        .unwrap_or(4);
    let width = longest.clamp(4, out.width.saturating_sub(numbers + 1).max(12));
    let row = |name: &str, cells: Vec<String>| {
        let cells: String = cells.iter().map(|c| format!(" {c:>8}")).collect();
        format!("  {:<width$}{cells}", shorten(name, width))
    };
    out.line(&row("name", heads.iter().map(|h| h.to_string()).collect()));
    let secs = report.sending.as_secs_f64().max(1e-9);
    for n in &report.names {
        let c = &n.stats.counters;
        let h = &n.stats.latency_us;
        let q = |q: f64| {
            if h.is_empty() {
                "-".to_string()
            } else {
                ms(h.value_at_quantile(q))
            }
        };
        let mut cells = vec![
            c.requests().to_string(),
            c.failed().to_string(),
            format!("{:.1}", c.requests() as f64 / secs),
            q(0.5),
        ];
        if wide {
            cells.push(q(0.95));
        }
        cells.push(q(0.99));
        if wide {
            cells.push(if h.is_empty() {
                "-".to_string()
            } else {
                ms(h.max())
            });
        }
        if skipped {
            cells.push(c.skipped.to_string());
        }
        out.line(&row(&format!("{} {}", n.name.method, n.name.name), cells));
    }
}

/// `s` in at most `width` characters: the start and the end kept (the end of a URL tells
/// names apart), an ellipsis between.
pub fn shorten(s: &str, width: usize) -> String {
    let chars: Vec<char> = s.chars().collect();
    if chars.len() <= width {
        return s.to_string();
    }
    if width < 2 {
        return chars[..width].iter().collect();
    }
    let head = (width - 1) / 3;
    let tail = width - 1 - head;
    let mut out: String = chars[..head].iter().collect();
    out.push('…');
    out.extend(&chars[chars.len() - tail..]);
    out
}

/// "1 user", "64 users", "up to 1000 users", "2000 requests/s", "up to 5000 requests/s".
pub fn load(schedule: &Schedule) -> String {
    let (shape, unit) = match schedule {
        Schedule::Closed { users } => (users, "user"),
        Schedule::Open { rate, .. } => (rate, "requests/s"),
    };
    let (n, up_to) = match shape.stages.is_empty() {
        true => (shape.start, ""),
        false => (shape.peak(), "up to "),
    };
    let plural = if unit == "user" && n != 1.0 { "s" } else { "" };
    format!("{up_to}{n} {unit}{plural}")
}

/// A histogram's percentiles, max and mean as one field.
fn histogram_field(out: &mut Text, label: &str, h: &Histogram<u64>) {
    if h.is_empty() {
        out.field(label, "no responses");
        return;
    }
    let mut parts: Vec<String> = PERCENTILES
        .iter()
        .map(|(label, q)| format!("{label} {}", ms(h.value_at_quantile(*q))))
        .collect();
    parts.push(format!("max {}", ms(h.max())));
    parts.push(format!("mean {}", ms(h.mean() as u64)));
    out.wrap(&format!("  {label:<13} "), INDENT, parts, "  ");
}

/// Microseconds shown in the unit a reader expects: 0.412ms, 12.3ms, 1.20s.
pub fn ms(us: u64) -> String {
    let ms = us as f64 / 1000.0;
    if ms < 10.0 {
        format!("{ms:.3}ms")
    } else if ms < 1000.0 {
        format!("{ms:.1}ms")
    } else {
        format!("{:.2}s", ms / 1000.0)
    }
}

fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// The open model's slots: due, sent, missed, and why slots were missed when some were.
fn slots_text((scheduled, missed): (u64, u64)) -> String {
    let why = if missed > 0 {
        " (every connection busy until the end)"
    } else {
        ""
    };
    format!(
        "{scheduled} due, {} sent, {missed} missed{why}",
        scheduled - missed
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_and_times_read_naturally() {
        assert_eq!(load(&Schedule::users(1)), "1 user");
        assert_eq!(load(&Schedule::users(64)), "64 users");
    }

    #[test]
    fn slots_say_why_only_when_some_were_missed() {
        assert_eq!(slots_text((100, 0)), "100 due, 100 sent, 0 missed");
        assert_eq!(
            slots_text((100, 3)),
            "100 due, 97 sent, 3 missed (every connection busy until the end)"
        );
    }

    #[test]
    fn units_read_naturally() {
        assert_eq!(ms(412), "0.412ms");
        assert_eq!(ms(12_345), "12.3ms");
        assert_eq!(ms(1_200_000), "1.20s");
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(3 * 1024 * 1024), "3.0 MiB");
    }
}
