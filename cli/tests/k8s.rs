//! `blast k8s`: manifests Kubernetes' own types accept, and pods whose logs `blast merge` reads.

use blast_target::{Config, Server};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use std::path::Path;
use std::process::{Command, Output};

fn blast(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_blast"))
        .args(args)
        .output()
        .expect("blast runs")
}

/// The ConfigMap and the Job of `blast k8s ARGS`.
fn manifests(args: &[&str]) -> (Option<ConfigMap>, Job) {
    let (config, job, _) = all_manifests(args);
    (config, job)
}

/// The ConfigMap, the Job and the Secret of `blast k8s ARGS`.
fn all_manifests(args: &[&str]) -> (Option<ConfigMap>, Job, Option<Secret>) {
    let mut all = vec!["k8s"];
    all.extend(args);
    let out = blast(&all);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (&list["apiVersion"], &list["kind"]),
        (&"v1".into(), &"List".into())
    );
    let mut items = list["items"].as_array().unwrap().clone();
    let job: Job = serde_json::from_value(items.pop().unwrap()).unwrap();
    let take = |items: &mut Vec<serde_json::Value>, kind: &str| {
        let at = items.iter().position(|i| i["kind"] == kind)?;
        Some(items.remove(at))
    };
    let config = take(&mut items, "ConfigMap").map(|c| serde_json::from_value(c).unwrap());
    let secret = take(&mut items, "Secret").map(|c| serde_json::from_value(c).unwrap());
    assert!(items.is_empty(), "{items:?}");
    (config, job, secret)
}

#[test]
fn the_manifests_are_a_config_map_and_an_indexed_job_kubernetes_reads() {
    let (config, job) = manifests(&[
        "--profile",
        "burst",
        "--peak",
        "20000",
        "--shards",
        "10",
        "--host",
        "http://api.load.svc:8000",
        "--image",
        "registry.example/blast:0.1",
        "--namespace",
        "load",
        "--start-in",
        "60s",
    ]);
    let config = config.expect("a scenario goes in a ConfigMap");
    let profile = blast(&["--print-profile", "burst"]);
    assert_eq!(
        config.data.unwrap()["scenario.toml"],
        String::from_utf8(profile.stdout).unwrap()
    );
    assert_eq!(job.metadata.namespace.as_deref(), Some("load"));
    let spec = job.spec.unwrap();
    assert_eq!(spec.completion_mode.as_deref(), Some("Indexed"));
    assert_eq!((spec.completions, spec.parallelism), (Some(10), Some(10)));
    assert_eq!(spec.backoff_limit, Some(0));
    let pod = spec.template.spec.unwrap();
    assert_eq!(pod.restart_policy.as_deref(), Some("Never"));
    let c = &pod.containers[0];
    assert_eq!(c.image.as_deref(), Some("registry.example/blast:0.1"));
    // Whole CPUs, requests equal to limits: the static CPU manager's exclusive cores.
    let r = c.resources.as_ref().unwrap();
    assert_eq!(r.requests, r.limits);
    assert_eq!(r.limits.as_ref().unwrap()["cpu"], Quantity("2".into()));
    let command = c.command.as_ref().unwrap().join(" ");
    for part in [
        "$((JOB_COMPLETION_INDEX + 1))/10",
        "--peak 20000",
        "--host http://api.load.svc:8000",
        "-f /etc/blast/scenario.toml",
        "--start-at ",
        "--run-id blast-burst-",
        "--threads 2",
        "--json /tmp/record.json",
    ] {
        assert!(command.contains(part), "{part} missing from {command}");
    }
    assert!(!command.contains("--profile"), "{command}");
    assert!(!command.contains("--shards"), "{command}");
    let mount = &c.volume_mounts.as_ref().unwrap()[0];
    assert_eq!(mount.mount_path, "/etc/blast");
    let volume = &pod.volumes.unwrap()[0];
    assert_eq!(
        volume.config_map.as_ref().unwrap().name,
        config.metadata.name.unwrap()
    );
}

#[test]
fn flags_blast_k8s_sets_itself_are_refused() {
    for (args, says) in [
        (vec!["--profile", "burst"], "--host"),
        (
            vec!["--profile", "burst", "--host", "http://x", "--shard", "1/2"],
            "--shard is set by blast k8s",
        ),
        (
            vec!["--profile", "burst", "--host", "http://x", "--shards", "0"],
            "--shards 0",
        ),
    ] {
        let mut all = vec!["k8s"];
        all.extend(args);
        let out = blast(&all);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains(says), "{says}: {err}");
    }
}

#[test]
fn the_jobs_pods_run_as_shards_whose_logs_merge() {
    let (config, api) = blast_p43::Eucora::serve_in(Config::default());
    let server = Server::start("127.0.0.1:0".parse().unwrap(), config).unwrap();
    let (config, job, secret) = all_manifests(&[
        "--profile",
        "cab",
        "-H",
        "X-Api-Key: S3CRET",
        "--host",
        &server.url(),
        "-u",
        "6",
        "-r",
        "60",
        "-t",
        "2s",
        "--shards",
        "2",
        "--cpus",
        "1",
        "--start-in",
        "2s",
    ]);
    let dir = std::env::temp_dir().join(format!("blast-k8s-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // The ConfigMap, mounted here instead of /etc/blast.
    let scenario = dir.join("scenario.toml");
    std::fs::write(&scenario, &config.unwrap().data.unwrap()["scenario.toml"]).unwrap();
    let pod = job.spec.unwrap().template.spec.unwrap();
    let container = &pod.containers[0];
    let command = container.command.clone().unwrap();
    // The header is in a Secret the container takes its environment from, not in its spec.
    let spec = serde_json::to_string(&pod).unwrap();
    assert!(!spec.contains("S3CRET"), "{spec}");
    let secret = secret.expect("a Secret for the header");
    assert_eq!(
        container.env_from.as_ref().unwrap()[0]
            .secret_ref
            .as_ref()
            .unwrap()
            .name,
        secret.metadata.name.clone().unwrap()
    );
    let env: Vec<(String, String)> = (secret.data.unwrap().into_iter())
        .map(|(k, v)| (k, String::from_utf8(v.0).unwrap()))
        .collect();
    assert_eq!(env, [("BLAST_SECRET_1".into(), "X-Api-Key: S3CRET".into())]);
    // What the kubelet does with $(NAME) in a command.
    let expand = |arg: &String| {
        env.iter()
            .fold(arg.clone(), |a, (k, v)| a.replace(&format!("$({k})"), v))
    };
    let bin = Path::new(env!("CARGO_BIN_EXE_blast")).parent().unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let pods: Vec<_> = (0..2)
        .map(|index| {
            let record = dir.join(format!("record{index}.json"));
            let local = |s: &String| {
                expand(s)
                    .replace("/etc/blast/scenario.toml", scenario.to_str().unwrap())
                    .replace("/tmp/record.json", record.to_str().unwrap())
            };
            Command::new(&command[0])
                .args(command[1..].iter().map(local))
                .env("JOB_COMPLETION_INDEX", index.to_string())
                .env("PATH", &path)
                .output()
                .unwrap()
        })
        .collect();
    let mut logs = Vec::new();
    for (i, pod) in pods.iter().enumerate() {
        assert!(
            pod.status.success(),
            "{}",
            String::from_utf8_lossy(&pod.stderr)
        );
        let log = dir.join(format!("pod{i}.log"));
        std::fs::write(&log, &pod.stdout).unwrap();
        logs.push(log.to_str().unwrap().to_string());
    }
    let merged = dir.join("merged.json");
    let mut args = vec!["merge", "-q", "--json", merged.to_str().unwrap()];
    args.extend(logs.iter().map(String::as_str));
    let out = blast(&args);
    assert!(
        matches!(out.status.code(), Some(0 | 3)),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&merged).unwrap()).unwrap();
    assert_eq!(v["merged"]["shards"], serde_json::json!([1, 2]));
    assert_eq!(v["users"], 6.0);
    let integrity = api.integrity();
    assert_eq!(integrity["second_decisions_refused"], 0);
    assert_eq!(v["requests"].as_u64().unwrap(), server.served());
    std::fs::remove_dir_all(dir).unwrap();
}
