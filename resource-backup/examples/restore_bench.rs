//! Restores every object of a source cluster (read through the API at one
//! resourceVersion, as a backup would) into a target cluster with the restore engine,
//! and writes the same objects as manifests for `kubectl create -f`. Used by
//! `scripts/bench-restore-api`.
//!
//! ```text
//! restore_bench --source KUBECONFIG --target KUBECONFIG [--manifests DIR] [--concurrency N]
//! ```
//! The source is read into memory first (as a local backup would be at hand), so the
//! timed part is plan + apply, like `kubectl create -f` of local files.
//! Prints one JSON line: objects, read, plan and apply seconds, outcome counts.

use std::path::PathBuf;
use std::time::Instant;

use resource_backup::restore::{self, RestoreOptions};
use resource_backup::{
    BackupItem, Cluster, ClusterArgs, Error, Gvr, LiveSource, ObjectSource, ResourceType,
};
use serde_json::json;

/// The source, read once.
struct MemorySource {
    types: Vec<ResourceType>,
    items: std::collections::HashMap<Gvr, Vec<BackupItem>>,
}

impl ObjectSource for MemorySource {
    fn resource_types(&self) -> Vec<ResourceType> {
        self.types.clone()
    }

    async fn objects(&self, gvr: &Gvr) -> Result<Vec<BackupItem>, Error> {
        Ok(self.items.get(gvr).cloned().unwrap_or_default())
    }
}

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let connect = |path: Option<String>| {
        let kubeconfig = path.map(PathBuf::from);
        async move {
            Cluster::connect(&ClusterArgs {
                kubeconfig,
                context: None,
            })
            .await
        }
    };
    let source = connect(arg(&args, "--source")).await?;
    let target = connect(arg(&args, "--target")).await?;
    let concurrency = arg(&args, "--concurrency")
        .map(|c| c.parse())
        .transpose()?
        .unwrap_or(32);
    let reading = Instant::now();
    let api = LiveSource::new(&source).await?;
    let types = api.resource_types();
    let mut items = std::collections::HashMap::new();
    for t in &types {
        items.insert(t.gvr.clone(), api.objects(&t.gvr).await?);
    }
    let source = MemorySource { types, items };
    let read = reading.elapsed().as_secs_f64();
    let options = RestoreOptions {
        include_controller_owned: true,
        concurrency,
        ..RestoreOptions::default()
    };

    let started = Instant::now();
    let plan = restore::plan(&source, &target, &options).await?;
    let planned = started.elapsed().as_secs_f64();

    if let Some(dir) = arg(&args, "--manifests") {
        // The objects the restore creates, as kubectl would take them: CRDs in one file
        // (kubectl cannot map a new kind within the command that creates its CRD), the
        // rest in another.
        let (mut crds, mut rest) = (Vec::new(), Vec::new());
        for item in plan
            .items
            .iter()
            .filter(|i| i.action == restore::Action::Create)
        {
            let Some(object) = &item.object else { continue };
            if item.target.gvr.resource == "customresourcedefinitions" {
                crds.push(object.clone());
            } else {
                rest.push(object.clone());
            }
        }
        for (file, items) in [("crds.yaml", crds), ("objects.yaml", rest)] {
            // A multi-document stream (kubectl validates each object against the
            // server's OpenAPI; a `List` is no served type), each document JSON: YAML
            // 1.2 leaves `yes` unquoted, which kubectl's YAML 1.1 reads as a bool.
            let mut text = String::new();
            for item in &items {
                text.push_str("---\n");
                text.push_str(&serde_json::to_string(item)?);
                text.push('\n');
            }
            std::fs::write(PathBuf::from(&dir).join(file), text)?;
        }
    }

    let applying = Instant::now();
    let report = restore::apply(&plan, &target, &options, |_| {}).await?;
    let applied = applying.elapsed().as_secs_f64();
    for failed in report
        .outcomes
        .iter()
        .filter(|o| o.outcome == restore::Outcome::Failed)
        .take(5)
    {
        eprintln!("failed: {} {:?}", failed.target, failed.message);
    }
    println!(
        "{}",
        json!({
            "objects": plan.items.len(),
            "read_seconds": read,
            "plan_seconds": planned,
            "apply_seconds": applied,
            "total_seconds": planned + applied,
            "concurrency": concurrency,
            "summary": report.summary,
        })
    );
    Ok(())
}
