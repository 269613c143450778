//! `blast report`: the runs found as a trend (each against the previous run of its scenario),
//! and the P4.3 results report from their JSON records.

use anyhow::{bail, Context};
use blast_report::compare::{history, Options};
use blast_report::RunRecord;
use std::path::{Path, PathBuf};

/// Lists runs' --json records as a trend, each against the previous run of its scenario, and
/// writes the P4.3 results report from them.
#[derive(clap::Args, Debug)]
#[command(max_term_width = 100)]
pub struct ReportArgs {
    /// Run records written by `blast --json` (files or folders). Default: results/*.json.
    pub runs: Vec<PathBuf>,

    /// The report to write; its charts go into a folder beside it.
    #[arg(
        short = 'o',
        long,
        default_value = "reports/P4-LOAD-TESTING-RESULTS.md"
    )]
    pub out: PathBuf,
}

/// Reads the records, writes the report and its charts, prints where.
pub fn run(args: &ReportArgs) -> anyhow::Result<()> {
    let inputs = if args.runs.is_empty() {
        vec![PathBuf::from("results")]
    } else {
        args.runs.clone()
    };
    // Files found in a folder may be anything JSON (a stray config, another tool's output):
    // those are skipped with a warning. A file named on the command line must be a record.
    let mut files = Vec::new();
    for input in &inputs {
        if input.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(input)
                .with_context(|| format!("cannot read {}", input.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "json"))
                .collect();
            found.sort();
            files.extend(found.into_iter().map(|f| (f, false)));
        } else {
            files.push((input.clone(), true));
        }
    }
    let mut runs = Vec::new();
    for (file, named) in &files {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read {}", file.display()))?;
        match RunRecord::from_json(&text) {
            Ok(run) => runs.push((file.display().to_string(), run)),
            Err(_) if !named => eprintln!(
                "blast report: warning: skipping {}: not a blast run record (blast --json)",
                file.display()
            ),
            Err(e) => bail!(
                "{} is not a blast run record (blast --json): {e}",
                file.display()
            ),
        }
    }
    if runs.is_empty() {
        bail!(
            "no run records found in {}: write them with blast --json results/NAME.json",
            inputs[0].display()
        );
    }
    let stem = args.out.file_stem().unwrap_or_default().to_string_lossy();
    let charts_name = format!("{stem}-charts");
    print!("{}", history(runs.clone(), &Options::default()));
    let runs: Vec<RunRecord> = runs.into_iter().map(|(_, r)| r).collect();
    let (markdown, charts) = blast_p43::results::render(&runs, &charts_name);
    let dir = args
        .out
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let charts_dir = dir.join(&charts_name);
    std::fs::create_dir_all(&charts_dir)
        .with_context(|| format!("cannot create folder {}", charts_dir.display()))?;
    for (name, svg) in &charts {
        std::fs::write(charts_dir.join(name), svg)
            .with_context(|| format!("cannot write {}", charts_dir.join(name).display()))?;
    }
    std::fs::write(&args.out, markdown)
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    println!(
        "wrote {} from {} run(s), with {} charts in {}",
        args.out.display(),
        runs.len(),
        charts.len(),
        charts_dir.display()
    );
    Ok(())
}
