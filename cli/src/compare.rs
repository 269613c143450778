//! `blast compare`: is the new build slower than the last one, beyond the runs' noise?

use anyhow::{anyhow, bail, Context};
use blast_report::compare::{compare, Gate, Options, Run};
use blast_report::RunRecord;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Compares the --json records of base runs with those of new runs.
#[derive(clap::Args, Debug)]
#[command(
    max_term_width = 100,
    after_help = "Flags go before the records. Example:\n  blast compare --fail-on 'p99>+10%' --fail-on 'rps<-5%' main-1.json main-2.json -- pr-1.json pr-2.json\n\nExit codes: 0 no gate crossed, 4 a gate crossed, 2 bad input."
)]
pub struct CompareArgs {
    /// The base runs' records (`blast --json`); the shards of a run are merged first.
    #[arg(required = true, value_name = "BASE.json")]
    pub base: Vec<PathBuf>,

    /// After `--`: the new runs' records.
    #[arg(last = true, required = true, value_name = "NEW.json")]
    pub new: Vec<PathBuf>,

    /// The smallest change called faster or slower, in % of the base value (failure rates:
    /// this share of the base rate, and at least 0.1 point).
    #[arg(long, value_name = "PCT", default_value = "5%", value_parser = percent)]
    pub min_effect: f64,

    /// Exit 4 when a judged change crosses this, e.g. 'p99>+10%', 'rps<-5%', 'failures>+1pp';
    /// repeatable; every row (the whole run and each request) is checked.
    #[arg(long, value_name = "GATE", value_parser = Gate::parse)]
    pub fail_on: Vec<Gate>,

    /// Print a Markdown table instead of the terminal table.
    #[arg(long, conflicts_with = "json")]
    pub markdown: bool,

    /// Print the comparison as JSON instead of the terminal table.
    #[arg(long)]
    pub json: bool,

    /// Write an HTML page with the table, the latency distributions and the timelines.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,

    /// Bootstrap resamples.
    #[arg(long, value_name = "N", default_value_t = 2000, value_parser = clap::value_parser!(u64).range(100..=1_000_000))]
    pub resamples: u64,

    /// Compare runs of different scenarios or URLs anyway.
    #[arg(long)]
    pub force: bool,
}

fn percent(text: &str) -> Result<f64, String> {
    let number = text.strip_suffix('%').unwrap_or(text);
    match number.trim().parse::<f64>() {
        Ok(v) if (0.0..1000.0).contains(&v) => Ok(v),
        _ => Err(format!("{text:?} is not a percentage such as 5%")),
    }
}

/// Compares, prints, writes the page; `Ok(true)` when a gate was crossed.
pub fn run(args: &CompareArgs) -> anyhow::Result<bool> {
    // Everything after `--` is a record: a flag there is a flag put in the wrong place.
    if let Some(flag) = args
        .new
        .iter()
        .find(|p| p.to_string_lossy().starts_with('-') && !p.exists())
    {
        bail!("{} comes after `--`, where only the new runs' records go: put flags before the records (blast compare [FLAGS] BASE.json... -- NEW.json...)", flag.display());
    }
    let base = runs(&args.base)?;
    let new = runs(&args.new)?;
    let options = Options {
        min_effect_pct: args.min_effect,
        resamples: args.resamples as usize,
    };
    let comparison = compare(&base, &new, &options, args.force).map_err(|e| anyhow!(e))?;
    print!(
        "{}",
        match (args.markdown, args.json) {
            (true, _) => comparison.markdown(),
            (_, true) => comparison.to_json(),
            _ => comparison.text(),
        }
    );
    if let Some(path) = &args.html {
        blast_report::create_parent(path)?;
        std::fs::write(path, comparison.html())
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    let crossed: Vec<String> = args
        .fail_on
        .iter()
        .flat_map(|g| g.crossed(&comparison))
        .collect();
    for line in &crossed {
        eprintln!("blast compare: FAIL {line}");
    }
    Ok(!crossed.is_empty())
}

/// The runs the records make: a sharded run's records (same run id) merged into one.
fn runs(paths: &[PathBuf]) -> anyhow::Result<Vec<Run>> {
    let mut groups: BTreeMap<String, Vec<(String, RunRecord)>> = BTreeMap::new();
    let mut order = Vec::new();
    for (i, path) in paths.iter().enumerate() {
        let record = read(path)?;
        // An unsharded run is a run of its own, whatever its id.
        let key = match &record.shard {
            Some(_) => format!("shards of {}", record.run_id),
            None => format!("{i}"),
        };
        if !groups.contains_key(&key) {
            order.push(key.clone());
        }
        groups
            .entry(key)
            .or_default()
            .push((path.display().to_string(), record));
    }
    order
        .into_iter()
        .map(|key| {
            let records = groups.remove(&key).expect("listed");
            let file = records
                .iter()
                .map(|(f, _)| f.as_str())
                .collect::<Vec<_>>()
                .join("+");
            // Most of its errors name the files already (a record without exact data, say).
            Run::read(file.clone(), records).map_err(|e| match e.contains(&file) {
                true => anyhow!(e),
                false => anyhow!("{file}: {e}"),
            })
        })
        .collect()
}

fn read(path: &Path) -> anyhow::Result<RunRecord> {
    let file = path.display();
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {file}"))?;
    RunRecord::from_json(crate::k8s::record_text(&text))
        .map_err(|e| anyhow!("{file} is not a blast run record ({e})"))
}
