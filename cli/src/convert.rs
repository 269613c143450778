//! `blast convert`: a locustfile as a scenario file, and `-f locustfile.py`'s translation.

use anyhow::Context;
use std::path::{Path, PathBuf};

/// Prints the scenario file that runs a locustfile the way Locust would.
#[derive(clap::Args, Debug)]
#[command(max_term_width = 100)]
#[command(after_help = "Examples:\n  \
    blast convert locustfile.py -o scenario.toml   # then edit it and run blast -f scenario.toml\n  \
    blast convert --check locustfile.py            # only say what does and does not translate\n\n\
    blast -f locustfile.py runs a locustfile directly through the same translation. Exit 2 lists\n\
    every place that does not translate, as FILE:LINE:COL. See docs/from-locust.md.")]
pub struct ConvertArgs {
    /// The locustfile.
    pub locustfile: PathBuf,

    /// Write the scenario here instead of printing it.
    #[arg(short, long, value_name = "FILE")]
    pub out: Option<PathBuf>,

    /// Only check: print what would not translate (exit 2), or one line saying it all does.
    #[arg(long, conflicts_with = "out")]
    pub check: bool,

    /// Leave out the tasks that do not translate (each named) instead of refusing the file.
    #[arg(long)]
    pub lenient: bool,
}

/// Whether `path` names a locustfile (Python) rather than a scenario file.
pub fn is_locustfile(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "py")
}

/// The locustfile at `path`, translated; what was left out is in the translation's notes.
pub fn translate(path: &Path, lenient: bool) -> anyhow::Result<blast_locust::Translation> {
    let source =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let options = blast_locust::Options { lenient };
    let name = path.display().to_string();
    Ok(blast_locust::translate_with(&name, &source, options)?)
}

/// Prints the notes of a translation, one line each.
pub fn warn(path: &Path, notes: &[blast_locust::Note]) {
    for n in notes {
        eprintln!("blast: note: {}:{}: {}", path.display(), n.line, n.message);
    }
}

/// The name a translated scenario's own errors are reported under.
pub fn translated_name(path: &Path) -> String {
    format!("{} (as blast convert writes it)", path.display())
}

/// `blast convert`.
pub fn run(args: &ConvertArgs) -> anyhow::Result<()> {
    let t = translate(&args.locustfile, args.lenient)?;
    warn(&args.locustfile, &t.notes);
    // What translates must also be a scenario blast runs: check it as -f would.
    blast_scenarios::parse(&translated_name(&args.locustfile), &t.toml)?;
    if args.check {
        println!(
            "{}: everything translates ({} notes)",
            args.locustfile.display(),
            t.notes.len()
        );
        return Ok(());
    }
    match &args.out {
        Some(out) => std::fs::write(out, &t.toml)
            .with_context(|| format!("cannot write {}", out.display()))?,
        None => print!("{}", t.toml),
    }
    Ok(())
}
