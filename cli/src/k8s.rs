//! `blast k8s`: the manifests that run one blast job as N shards on Kubernetes: a ConfigMap
//! with the scenario and an Indexed Job whose pods are the shards, started together.

use anyhow::bail;
use base64::Engine as _;
use blast_engine::redact;
use serde_json::{json, Value};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::args::Args;
use crate::plan::{Job, RunPlan};

/// Where the ConfigMap's scenario is mounted in each pod.
const SCENARIO_DIR: &str = "/etc/blast";
/// The lines around the shard's record in its pod log (`blast merge` reads between them).
pub const RECORD_BEGIN: &str = "==> blast record";
/// The line after the record.
pub const RECORD_END: &str = "<== blast record";

/// Prints Kubernetes manifests that run a blast job as shards (any run flags go with them).
#[derive(clap::Args, Debug)]
#[command(max_term_width = 100)]
#[command(after_help = "Example:\n  \
    blast k8s --profile burst --peak 20000 --shards 10 --host http://api.svc:8000 \\\n      \
    --image registry.example.com/blast:0.1 > blast.json && kubectl apply -f blast.json\n\n\
    Prints the manifests (exit 0), or one line and exit 2 for bad flags. See docs/distributed.md.")]
pub struct K8sArgs {
    /// Shards: pods of the Indexed Job, each running an even share of the load.
    #[arg(long, default_value_t = 2)]
    pub shards: usize,

    /// The blast image the pods run (built from the Dockerfile).
    #[arg(long, default_value = "blast:latest")]
    pub image: String,

    /// The namespace of the Job and its ConfigMap.
    #[arg(long, default_value = "default")]
    pub namespace: String,

    /// How long after printing the shards start, together: time to apply the manifests,
    /// schedule the pods and pull the image.
    #[arg(long, default_value = "60s", value_parser = blast_scenarios::parse_duration)]
    pub start_in: Duration,

    /// Whole CPUs per shard, requested and limited alike (so the kubelet's static CPU manager
    /// can give the pinned workers cores of their own); also the shard's worker threads.
    #[arg(long, default_value_t = 2)]
    pub cpus: u32,

    /// Memory per shard, requested and limited alike.
    #[arg(long, default_value = "1Gi")]
    pub memory: String,

    /// Name of the Job and the ConfigMap. Default: blast-SCENARIO.
    #[arg(long)]
    pub name: Option<String>,

    #[command(flatten)]
    pub run: Args,
}

/// Prints the manifests as one `v1 List` in JSON (which is also YAML), for `kubectl apply -f`.
pub fn run(args: &K8sArgs) -> anyhow::Result<()> {
    let raw: Vec<String> = std::env::args().skip(2).collect();
    let start_at = SystemTime::now() + args.start_in;
    let manifests = manifests(args, &raw, start_at)?;
    println!("{}", serde_json::to_string_pretty(&manifests)?);
    let name = manifests["items"]
        .as_array()
        .and_then(|items| items.last())
        .map_or("", |job| job["metadata"]["name"].as_str().unwrap_or(""));
    eprintln!(
        "blast k8s: {} shards start at {} ({} s from now): apply at once (kubectl apply -f FILE); see docs/distributed.md to collect the records of job {name}",
        args.shards,
        blast_report::utc_seconds(start_at),
        args.start_in.as_secs()
    );
    Ok(())
}

/// The ConfigMap (for a scenario) and the Job; `raw` is the command line after `blast k8s`.
pub fn manifests(args: &K8sArgs, raw: &[String], start_at: SystemTime) -> anyhow::Result<Value> {
    let mut run = args.run.clone();
    run.resolve_positionals();
    let run = &run;
    let plan = RunPlan::resolve(run)?;
    if args.shards == 0 {
        bail!("invalid --shards 0: at least one shard is needed");
    }
    if args.cpus == 0 {
        bail!("invalid --cpus 0: each shard needs at least one whole CPU");
    }
    if run.host.is_none() && run.url.is_none() {
        bail!("give the target as --host (or a URL): the shards run in the cluster, where blast's built-in reference target is of no use");
    }
    for (given, flag) in [
        (run.shard.is_some(), "--shard"),
        (run.start_at.is_some(), "--start-at"),
        (run.run_id.is_some(), "--run-id"),
        (run.out.json.is_some(), "--json"),
        (run.threads.is_some(), "--threads (set by --cpus)"),
        (run.web, "--web"),
    ] {
        if given {
            bail!("{flag} is set by blast k8s for each shard: leave it out");
        }
    }
    let (scenario, source) = match plan.job {
        Job::Scenario { name, source, .. } => (name, Some(source)),
        Job::Url { .. } => ("url".to_string(), None),
    };
    let name = args
        .name
        .clone()
        .unwrap_or_else(|| format!("blast-{scenario}"));
    if name.is_empty()
        || name.len() > 52
        || !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        bail!("invalid Job name {name:?}: use --name with lowercase letters, digits and '-', at most 52 characters");
    }
    let at = start_at
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let (mut blast_args, secrets) = without_secrets(pass_through(raw, source.is_some()));
    blast_args.extend([
        "--start-at".into(),
        at.to_string(),
        "--run-id".into(),
        format!("{name}-{at}"),
        "--threads".into(),
        args.cpus.to_string(),
        "--exit-code-on-error".into(),
        "0".into(),
        "-q".into(),
        "--json".into(),
        "/tmp/record.json".into(),
    ]);
    // The shard's number comes from the Job (0-based); its record goes to the pod log between
    // markers. A failed criterion (3) is judged again on the merged run, so it does not fail
    // the pod.
    let script = format!(
        "blast \"$@\" --shard $((JOB_COMPLETION_INDEX + 1))/{n}; code=$?; \
         echo '{RECORD_BEGIN}'; cat /tmp/record.json; echo '{RECORD_END}'; \
         [ $code -eq 0 ] || [ $code -eq 3 ]",
        n = args.shards
    );
    let mut command = vec![json!("/bin/sh"), json!("-c"), json!(script), json!("blast")];
    command.extend(blast_args.into_iter().map(Value::from));
    let labels = json!({"app.kubernetes.io/name": "blast", "blast/job": name});
    let resources = json!({"cpu": args.cpus.to_string(), "memory": args.memory});
    let mut container = json!({
        "name": "blast",
        "image": args.image,
        "command": command,
        "resources": {"requests": resources, "limits": resources},
    });
    let mut items = Vec::new();
    if !secrets.is_empty() {
        // Kubernetes expands the command's $(NAME) from the container's environment.
        container["envFrom"] = json!([{"secretRef": {"name": name}}]);
        let data: serde_json::Map<String, Value> = secrets
            .into_iter()
            .map(|(key, value)| {
                (
                    key,
                    base64::engine::general_purpose::STANDARD
                        .encode(value)
                        .into(),
                )
            })
            .collect();
        items.push(json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name, "namespace": args.namespace, "labels": labels},
            "type": "Opaque",
            "data": data,
        }));
    }
    let mut pod = json!({
        "restartPolicy": "Never",
        "containers": [],
        // Spread the shards over nodes: each brings its own NIC and cores.
        "affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{
            "weight": 100,
            "podAffinityTerm": {
                "topologyKey": "kubernetes.io/hostname",
                "labelSelector": {"matchLabels": {"blast/job": name}},
            },
        }]}},
    });
    if let Some(source) = source {
        container["volumeMounts"] =
            json!([{"name": "scenario", "mountPath": SCENARIO_DIR, "readOnly": true}]);
        pod["volumes"] = json!([{"name": "scenario", "configMap": {"name": name}}]);
        items.push(json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": args.namespace, "labels": labels},
            "data": {"scenario.toml": source},
        }));
    }
    pod["containers"] = json!([container]);
    items.push(json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": args.namespace, "labels": labels},
        "spec": {
            "completionMode": "Indexed",
            "completions": args.shards,
            "parallelism": args.shards,
            // A shard that fails is not run again late: the merge names it as missing.
            "backoffLimit": 0,
            "template": {"metadata": {"labels": labels}, "spec": pod},
        },
    }));
    Ok(json!({"apiVersion": "v1", "kind": "List", "items": items}))
}

/// The run flags to hand each shard: `raw` without blast k8s's own flags, and with the
/// scenario (`-f`, `--profile`) replaced by the ConfigMap's copy.
fn pass_through(raw: &[String], scenario: bool) -> Vec<String> {
    const OWN: [&str; 7] = [
        "--shards",
        "--image",
        "--namespace",
        "--start-in",
        "--cpus",
        "--memory",
        "--name",
    ];
    let mut out = Vec::new();
    let mut args = raw.iter();
    while let Some(arg) = args.next() {
        let flag = arg.split_once('=').map_or(arg.as_str(), |(f, _)| f);
        let takes_value = !arg.contains('=');
        if OWN.contains(&flag) || ["-f", "--file", "--profile"].contains(&flag) {
            if takes_value {
                args.next();
            }
            continue;
        }
        if arg.starts_with("-f") && arg.len() > 2 && !arg.starts_with("--") {
            continue; // -fFILE
        }
        out.push(arg.clone());
    }
    if scenario {
        out.extend(["-f".into(), format!("{SCENARIO_DIR}/scenario.toml")]);
    }
    out
}

/// `args` with every argument that holds a secret (what [`redact::arguments`] would hide)
/// replaced by `$(BLAST_SECRET_N)`, and the secrets by those names: they go to a Secret, so the
/// Job's spec, `kubectl describe` and the pods' arguments show none.
fn without_secrets(args: Vec<String>) -> (Vec<String>, Vec<(String, String)>) {
    let shown = redact::arguments(&args);
    let mut secrets = Vec::new();
    let args = args
        .into_iter()
        .zip(shown)
        .map(|(arg, shown)| {
            if arg == shown {
                return arg;
            }
            let key = format!("BLAST_SECRET_{}", secrets.len() + 1);
            let reference = format!("$({key})");
            secrets.push((key, arg));
            reference
        })
        .collect();
    (args, secrets)
}

/// The shard record in `text`: the whole text, or (for a pod log) what lies between the
/// record markers.
pub fn record_text(text: &str) -> &str {
    match (text.find(RECORD_BEGIN), text.rfind(RECORD_END)) {
        (Some(begin), Some(end)) if begin < end => &text[begin + RECORD_BEGIN.len()..end],
        _ => text,
    }
}
