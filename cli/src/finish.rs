//! The end of every run, whether it was just run or merged from its shards: the criteria judged,
//! the record built and analysed, the summary printed, every output written, the exit decided.

use blast_engine::Report;
use blast_report::exact::ExactRun;
use blast_report::{RunInfo, RunRecord, Sample};
use blast_scenarios::{Criterion, ScenarioScript};
use std::io::Write;
use std::time::SystemTime;

use crate::outputs::Outputs;
use crate::plan::Console;
use crate::summary;

/// What a run ended with.
pub struct Ending<'a> {
    /// The engine's report (or the shards' replayed).
    pub report: &'a Report,
    /// The monitor's samples, one per interval.
    pub samples: &'a [Sample],
    /// What was run, by whom, where.
    pub info: &'a RunInfo,
    /// The summary's and the record's title.
    pub label: &'a str,
    /// The criteria to judge.
    pub criteria: &'a [Criterion],
    /// The scenario's script, for the summary's task lines.
    pub script: Option<&'a ScenarioScript>,
    /// When the run ended, for the failures' last-seen times.
    pub ended: SystemTime,
    /// The console's mode.
    pub console: Console,
    /// Prefix of the console's lines: `blast` or `blast merge`.
    pub program: &'a str,
    /// Exit code when requests failed and there are no criteria.
    pub exit_code_on_error: u8,
}

/// Judges, records, prints and writes the run; `amend` adds to the record what only its
/// caller knows (a shard's intervals, the shards merged), and `seen` is shown the record once
/// it is written (the web UI). Results are written even when they are incomplete; the error
/// then says so.
pub fn finish(
    end: Ending<'_>,
    outputs: &mut Outputs,
    amend: impl FnOnce(&mut RunRecord, &[blast_scenarios::Verdict]),
    seen: impl FnOnce(&RunRecord),
) -> Result<Verdict, Failure> {
    let report = end.report;
    let verdicts: Vec<_> = end.criteria.iter().map(|c| c.evaluate(report)).collect();
    let rows = outputs.failure_rows(report, end.ended);
    let mut record = RunRecord::new(report, end.info, end.label, &verdicts, rows, end.samples);
    blast_report::annotate(&mut record, end.samples);
    if let Some(log) = outputs.take_exact() {
        let criteria = verdicts.iter().map(|v| v.criterion.clone()).collect();
        record.exact = Some(ExactRun::new(report, end.info, criteria, log));
    }
    amend(&mut record, &verdicts);
    if end.console == Console::Quiet {
        // Quiet prints no summary, but a failed criterion is the answer a CI job waits for.
        for v in verdicts.iter().filter(|v| !v.pass) {
            eprintln!(
                "{}: FAIL {} (measured {})",
                end.program, v.criterion, v.measured
            );
        }
    } else {
        let width = summary::width_of(&std::io::stdout());
        print!(
            "{}",
            summary::render(report, end.label, end.script, &record, width)
        );
        let _ = std::io::stdout().flush();
    }
    let written = outputs.finish(report, &record);
    seen(&record);
    written.map_err(Failure::Run)?;
    if let Some(why) = &report.incomplete {
        return Err(Failure::Run(anyhow::anyhow!(
            "{why}: the run stopped early and the results written are incomplete"
        )));
    }
    Ok(Verdict::of(&verdicts, report, end.exit_code_on_error))
}

/// Why a run could not end normally; each maps to an exit code.
pub enum Failure {
    /// Bad flags or input: nothing was sent.
    Usage(anyhow::Error),
    /// The run could not happen, or its results could not be written.
    Run(anyhow::Error),
}

/// How a finished run ends.
pub enum Verdict {
    /// Every criterion held; without criteria, no request failed.
    Pass,
    /// At least one criterion failed.
    CriteriaFailed,
    /// No criteria, and requests failed: exit with this code (`--exit-code-on-error`).
    RequestsFailed(u8),
    /// Cut short by a second Ctrl-C; the results were still written.
    Aborted,
}

impl Verdict {
    /// How a run that ended ends: by its criteria, else by whether a request failed.
    pub fn of(
        verdicts: &[blast_scenarios::Verdict],
        report: &blast_engine::Report,
        exit_code_on_error: u8,
    ) -> Verdict {
        if !verdicts.is_empty() {
            match verdicts.iter().all(|v| v.pass) {
                true => Verdict::Pass,
                false => Verdict::CriteriaFailed,
            }
        } else if report.total.counters.failed() > 0 && exit_code_on_error != 0 {
            Verdict::RequestsFailed(exit_code_on_error)
        } else {
            Verdict::Pass
        }
    }
}
