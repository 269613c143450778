//! `blast merge`: one run from the `--json` records of its shards, every output written from
//! it by the pipeline that finishes a single run, and its criteria judged on the merged data.

use anyhow::anyhow;
use blast_report::merge::Shards;
use blast_report::RunRecord;
use blast_scenarios::Criterion;
use std::path::PathBuf;

use crate::args::OutputArgs;
use crate::finish::{finish, Ending, Failure, Verdict};
use crate::outputs::Outputs;
use crate::plan::Console;
use crate::summary;

/// Merges the --json records of a run's shards (`blast --shard I/N`) into one run, exactly.
#[derive(clap::Args, Debug)]
#[command(max_term_width = 100)]
pub struct MergeArgs {
    /// The shards' records, written by `blast --shard I/N --json FILE` (or pod logs of
    /// `blast k8s` shards, which hold the record between markers).
    #[arg(required = true)]
    pub records: Vec<PathBuf>,

    #[command(flatten)]
    pub out: OutputArgs,

    /// Exit code when a request failed and the run has no success criteria; 0 ignores them.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub exit_code_on_error: u8,

    /// Print no summary (a failed criterion is still reported).
    #[arg(short, long)]
    pub quiet: bool,
}

/// Reads, checks and merges the records, writes the outputs, says how the run ended.
pub fn run(args: &MergeArgs) -> Result<Verdict, Failure> {
    let mut records = Vec::new();
    for path in &args.records {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| Failure::Usage(anyhow!("cannot read {file}: {e}")))?;
        let record = RunRecord::from_json(crate::k8s::record_text(&text))
            .map_err(|e| Failure::Usage(anyhow!("{file} is not a blast run record ({e})")))?;
        records.push((file, record));
    }
    let usage = |e: String| Failure::Usage(anyhow!(e));
    let shards = Shards::new(records).map_err(usage)?;
    let from = shards.merged_from();
    let criteria = shards
        .criteria()
        .iter()
        .map(|c| Criterion::parse(c))
        .collect::<Result<Vec<_>, _>>()
        .map_err(usage)?;
    let names = shards.names();
    let started = shards.started_at();
    let mut outputs = Outputs::create(&args.out, &names, &shards.monitor_keys(), started)
        .map_err(Failure::Usage)?;
    let (report, samples) = shards
        .replay(&mut |s, sample| outputs.observe(s, sample, started + s.elapsed))
        .map_err(usage)?;
    outputs
        .take_warnings()
        .iter()
        .for_each(|w| summary::warn(w));
    let info = shards.info();
    let label = shards.label();
    let ending = Ending {
        report: &report,
        samples: &samples,
        info: &info,
        label: &label,
        criteria: &criteria,
        script: None,
        ended: started + report.duration,
        console: match args.quiet {
            true => Console::Quiet,
            false => Console::Summary,
        },
        program: "blast merge",
        exit_code_on_error: args.exit_code_on_error,
    };
    finish(
        ending,
        &mut outputs,
        |record, _| record.merged = Some(from),
        |_| (),
    )
}
