//! Applying a plan: wave by wave, many objects in flight per wave, CRDs waited for until
//! Established, ownerReferences relinked to the owners' uids in the target (looked up
//! live, so a re-run after an interruption relinks correctly), retries on transient
//! failures, and an outcome per object.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::options::RestoreOptions;
use super::plan::{Action, ObjectRef, OwnerIndex, PlannedObject, RestorePlan, decide};
use super::request::{TargetTypes, get, object_path, send};
use crate::Error;
use crate::cluster::Cluster;

/// What happened to one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Created.
    Created,
    /// Updated in place.
    Updated,
    /// Deleted and created again.
    Recreated,
    /// Left alone (unchanged, excluded by a rule, in conflict, or a dry run).
    Skipped,
    /// Exists and differs; the policy is `none`.
    Conflict,
    /// Failed (see the message).
    Failed,
}

/// One object's outcome.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectOutcome {
    /// The object in the target.
    pub target: ObjectRef,
    /// Its wave.
    pub wave: u32,
    /// What happened.
    pub outcome: Outcome,
    /// Why, or what went wrong.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Its uid in the target, once it exists there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
}

/// Counts by outcome.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportSummary {
    /// Created.
    pub created: usize,
    /// Updated.
    pub updated: usize,
    /// Recreated.
    pub recreated: usize,
    /// Skipped.
    pub skipped: usize,
    /// In conflict.
    pub conflict: usize,
    /// Failed.
    pub failed: usize,
}

/// The result of applying a plan.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RestoreReport {
    /// The target API server.
    pub server: String,
    /// Nothing was written.
    pub dry_run: bool,
    /// When it started (RFC 3339).
    pub started: String,
    /// Wall time in seconds.
    pub elapsed_seconds: f64,
    /// Counts.
    pub summary: ReportSummary,
    /// Every object, in wave order.
    pub outcomes: Vec<ObjectOutcome>,
}

impl RestoreReport {
    /// Whether every object was restored or left alone on purpose.
    pub fn succeeded(&self) -> bool {
        self.summary.failed == 0 && self.summary.conflict == 0
    }
}

/// Shared state of one apply.
struct Run<'a> {
    cluster: &'a Cluster,
    options: &'a RestoreOptions,
    owners: OwnerIndex,
    types: tokio::sync::RwLock<TargetTypes>,
    /// Target uids learned in this run, by place.
    uids: Mutex<HashMap<ObjectRef, String>>,
}

/// Applies `plan` to `cluster`. `progress` is called with every object's outcome as
/// it is known. With `options.dry_run` nothing is written and every object is
/// reported skipped with what would have been done.
pub async fn apply<F>(
    plan: &RestorePlan,
    cluster: &Cluster,
    options: &RestoreOptions,
    progress: F,
) -> Result<RestoreReport, Error>
where
    F: Fn(&ObjectOutcome) + Send + Sync,
{
    let started = chrono::Utc::now().to_rfc3339();
    let clock = Instant::now();
    let mut outcomes = Vec::with_capacity(plan.items.len());
    if options.dry_run {
        for item in &plan.items {
            let outcome = ObjectOutcome {
                target: item.target.clone(),
                wave: item.wave,
                outcome: Outcome::Skipped,
                message: Some(format!("dry run: {:?}", item.action).to_lowercase()),
                uid: None,
            };
            progress(&outcome);
            outcomes.push(outcome);
        }
        return Ok(report(plan, true, started, clock, outcomes));
    }
    let run = Run {
        cluster,
        options,
        owners: OwnerIndex::new(&plan.items),
        types: tokio::sync::RwLock::new(TargetTypes::discover(cluster).await?),
        uids: Mutex::new(HashMap::new()),
    };
    let concurrency = options.concurrency.clamp(1, 1024);
    let mut start = 0;
    while start < plan.items.len() {
        let wave = plan.items[start].wave;
        let end = plan.items[start..]
            .iter()
            .position(|i| i.wave != wave)
            .map_or(plan.items.len(), |p| start + p);
        let items = &plan.items[start..end];
        // A plain loop over FuturesUnordered (no closures): the future stays Send for
        // callers that spawn it.
        let mut pending = items.iter();
        let mut in_flight = futures::stream::FuturesUnordered::new();
        let mut crds = Vec::new();
        loop {
            while in_flight.len() < concurrency {
                let Some(item) = pending.next() else { break };
                in_flight.push(run.restore(item));
            }
            let Some(outcome) = in_flight.next().await else {
                break;
            };
            if outcome.target.gvr.group == "apiextensions.k8s.io"
                && outcome.target.gvr.resource == "customresourcedefinitions"
                && matches!(
                    outcome.outcome,
                    Outcome::Created | Outcome::Updated | Outcome::Recreated | Outcome::Skipped
                )
                && outcome.uid.is_some()
            {
                crds.push(outcome.target.clone());
            }
            progress(&outcome);
            outcomes.push(outcome);
        }
        drop(in_flight);
        if !crds.is_empty() {
            run.wait_established(&crds).await?;
        }
        start = end;
    }
    Ok(report(plan, false, started, clock, outcomes))
}

fn report(
    plan: &RestorePlan,
    dry_run: bool,
    started: String,
    clock: Instant,
    mut outcomes: Vec<ObjectOutcome>,
) -> RestoreReport {
    let mut summary = ReportSummary::default();
    for o in &outcomes {
        match o.outcome {
            Outcome::Created => summary.created += 1,
            Outcome::Updated => summary.updated += 1,
            Outcome::Recreated => summary.recreated += 1,
            Outcome::Skipped => summary.skipped += 1,
            Outcome::Conflict => summary.conflict += 1,
            Outcome::Failed => summary.failed += 1,
        }
    }
    outcomes.sort_by(|a, b| (a.wave, &a.target).cmp(&(b.wave, &b.target)));
    RestoreReport {
        server: plan.server.clone(),
        dry_run,
        started,
        elapsed_seconds: clock.elapsed().as_secs_f64(),
        summary,
        outcomes,
    }
}

fn uid_of(object: &Value) -> Option<String> {
    object
        .get("metadata")?
        .get("uid")?
        .as_str()
        .map(str::to_string)
}

const CONFLICT_RETRIES: usize = 5;

impl Run<'_> {
    async fn restore(&self, item: &PlannedObject) -> ObjectOutcome {
        let done = |outcome: Outcome, message: Option<String>, uid: Option<String>| ObjectOutcome {
            target: item.target.clone(),
            wave: item.wave,
            outcome,
            message,
            uid,
        };
        let Some(object) = &item.object else {
            return match item.action {
                Action::Error => done(Outcome::Failed, item.reason.clone(), None),
                _ => done(Outcome::Skipped, item.reason.clone(), None),
            };
        };
        if item.action == Action::Error {
            return done(Outcome::Failed, item.reason.clone(), None);
        }
        match self.restore_object(item, object.clone()).await {
            Ok((outcome, message, uid)) => {
                if let Some(uid) = &uid {
                    self.uids
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(item.target.clone(), uid.clone());
                }
                done(outcome, message, uid)
            }
            Err(e) => done(Outcome::Failed, Some(e.to_string()), None),
        }
    }

    async fn restore_object(
        &self,
        item: &PlannedObject,
        mut desired: Value,
    ) -> Result<(Outcome, Option<String>, Option<String>), Error> {
        let target = &item.target;
        {
            let types = self.types.read().await;
            if !types.serves(&target.gvr.group, &target.gvr.version, &target.gvr.resource) {
                return Err(Error::Invalid(format!(
                    "the target does not serve {}",
                    target.gvr
                )));
            }
        }
        let mut notes = self.relink(item, &mut desired).await?;
        let status = if self.options.restore_status {
            desired.get("status").cloned()
        } else {
            None
        };
        let ns = target.namespace.as_deref();
        let path = object_path(&target.gvr, ns, &target.name);
        // Planned creates go straight to a POST; anything else (or a create that finds
        // the object there, as a re-run does) is decided against the live object.
        if item.action == Action::Create {
            match self.create(item, &desired, status.as_ref()).await {
                Ok(uid) => return Ok((Outcome::Created, join(notes), uid)),
                Err(e) if e.api_code() == Some(409) => {}
                Err(e) => return Err(e),
            }
        }
        for _ in 0..CONFLICT_RETRIES {
            let live = get(self.cluster, &target.gvr, ns, &target.name).await?;
            let decision = decide(item, &desired, live.as_ref(), self.options);
            let live_uid = live.as_ref().and_then(uid_of);
            match decision.action {
                Action::Create => match self.create(item, &desired, status.as_ref()).await {
                    Ok(uid) => return Ok((Outcome::Created, join(notes), uid)),
                    Err(e) if e.api_code() == Some(409) => continue,
                    Err(e) => return Err(e),
                },
                Action::Skip => return Ok((Outcome::Skipped, Some("unchanged".into()), live_uid)),
                Action::Conflict => {
                    notes.insert(
                        0,
                        "exists in the target and differs (--existing none)".into(),
                    );
                    return Ok((Outcome::Conflict, join(notes), live_uid));
                }
                Action::Update => {
                    let Some(write) = decision.write else {
                        return Err(Error::Invalid("update without an object".into()));
                    };
                    match send(self.cluster, http::Method::PUT, &path, Some(&write)).await {
                        Ok(written) => {
                            if let Some(status) = &status {
                                self.write_status(&path, written.clone(), status).await?;
                            }
                            return Ok((Outcome::Updated, join(notes), uid_of(&written)));
                        }
                        Err(e) if e.api_code() == Some(409) => continue,
                        Err(e) => return Err(e),
                    }
                }
                Action::Recreate => {
                    self.delete_and_wait(&path, live_uid.as_deref()).await?;
                    match self.create(item, &desired, status.as_ref()).await {
                        Ok(uid) => return Ok((Outcome::Recreated, join(notes), uid)),
                        Err(e) if e.api_code() == Some(409) => continue,
                        Err(e) => return Err(e),
                    }
                }
                Action::Error => {
                    return Err(Error::Invalid(
                        decision.reason.unwrap_or_else(|| "cannot restore".into()),
                    ));
                }
            }
        }
        Err(Error::Invalid(format!(
            "{target}: changed concurrently {CONFLICT_RETRIES} times"
        )))
    }

    /// POSTs the object (and its status where asked); the new uid.
    async fn create(
        &self,
        item: &PlannedObject,
        desired: &Value,
        status: Option<&Value>,
    ) -> Result<Option<String>, Error> {
        let target = &item.target;
        let collection = target.gvr.collection_path(target.namespace.as_deref());
        let created = send(self.cluster, http::Method::POST, &collection, Some(desired)).await?;
        if let Some(status) = status {
            let path = object_path(&target.gvr, target.namespace.as_deref(), &target.name);
            self.write_status(&path, created.clone(), status).await?;
        }
        Ok(uid_of(&created))
    }

    /// PUTs `status` through the status subresource (types without one took it with
    /// the object).
    async fn write_status(
        &self,
        path: &str,
        mut object: Value,
        status: &Value,
    ) -> Result<(), Error> {
        if object.get("status") == Some(status) {
            return Ok(());
        }
        object["status"] = status.clone();
        match send(
            self.cluster,
            http::Method::PUT,
            &format!("{path}/status"),
            Some(&object),
        )
        .await
        {
            Ok(_) => Ok(()),
            Err(e) if matches!(e.api_code(), Some(404 | 405)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Deletes (orphaning dependents) and waits until the object is gone.
    async fn delete_and_wait(&self, path: &str, uid: Option<&str>) -> Result<(), Error> {
        let mut options =
            json!({"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Orphan"});
        if let Some(uid) = uid {
            options["preconditions"] = json!({"uid": uid});
        }
        match send(self.cluster, http::Method::DELETE, path, Some(&options)).await {
            Ok(_) => {}
            Err(e) if matches!(e.api_code(), Some(404 | 409)) => {}
            Err(e) => return Err(e),
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match send(self.cluster, http::Method::GET, path, None).await {
                Err(e) if e.api_code() == Some(404) => return Ok(()),
                Err(e) => return Err(e),
                Ok(live) if uid.is_some() && uid_of(&live).as_deref() != uid => return Ok(()),
                Ok(_) if Instant::now() > deadline => {
                    return Err(Error::Invalid(format!(
                        "{path}: still there 60 s after delete (finalizers?)"
                    )));
                }
                Ok(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    /// Points every ownerReference at its owner's uid in the target: learned in this
    /// run, or looked up live. References to owners that do not exist in the target are
    /// dropped (the garbage collector would delete the object otherwise).
    async fn relink(
        &self,
        item: &PlannedObject,
        desired: &mut Value,
    ) -> Result<Vec<String>, Error> {
        let mut notes = Vec::new();
        let Some(refs) = desired
            .get("metadata")
            .and_then(|m| m.get("ownerReferences"))
            .and_then(Value::as_array)
            .cloned()
        else {
            return Ok(notes);
        };
        let mut kept = Vec::with_capacity(refs.len());
        for mut r in refs {
            let place = {
                let types = self.types.read().await;
                self.owners.owner_place(&r, &item.target, &types)
            };
            let Some(place) = place else {
                notes.push(format!(
                    "ownerReference to {} {} dropped: its type is not served",
                    r.get("kind").and_then(Value::as_str).unwrap_or("?"),
                    r.get("name").and_then(Value::as_str).unwrap_or("?")
                ));
                continue;
            };
            let known = self
                .uids
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(&place)
                .cloned();
            let uid = match known {
                Some(uid) => Some(uid),
                None => get(
                    self.cluster,
                    &place.gvr,
                    place.namespace.as_deref(),
                    &place.name,
                )
                .await?
                .as_ref()
                .and_then(uid_of),
            };
            match uid {
                Some(uid) => {
                    r["uid"] = json!(uid);
                    kept.push(r);
                }
                None => notes.push(format!(
                    "ownerReference to {place} dropped: the owner is not in the target"
                )),
            }
        }
        if let Some(meta) = desired.get_mut("metadata").and_then(Value::as_object_mut) {
            if kept.is_empty() {
                meta.remove("ownerReferences");
            } else {
                meta.insert("ownerReferences".into(), Value::Array(kept));
            }
        }
        Ok(notes)
    }

    /// Waits until the CRDs are Established, then refreshes discovery.
    async fn wait_established(&self, crds: &[ObjectRef]) -> Result<(), Error> {
        let deadline =
            Instant::now() + Duration::from_secs(self.options.crd_timeout_seconds.max(1));
        for crd in crds {
            loop {
                // A failed poll is not the restore's end: the custom resources report
                // their own failures if the type never gets served.
                let live = match get(self.cluster, &crd.gvr, None, &crd.name).await {
                    Ok(live) => live,
                    Err(error) => {
                        tracing::warn!(crd = %crd.name, %error, "reading the CRD failed");
                        None
                    }
                };
                let established = live
                    .as_ref()
                    .and_then(|l| l.pointer("/status/conditions"))
                    .and_then(Value::as_array)
                    .is_some_and(|cs| {
                        cs.iter().any(|c| {
                            c.get("type").and_then(Value::as_str) == Some("Established")
                                && c.get("status").and_then(Value::as_str) == Some("True")
                        })
                    });
                if established {
                    break;
                }
                if Instant::now() > deadline {
                    tracing::warn!(crd = %crd.name, "CRD not Established in time");
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        let refreshed = TargetTypes::discover(self.cluster).await?;
        *self.types.write().await = refreshed;
        Ok(())
    }
}

fn join(notes: Vec<String>) -> Option<String> {
    if notes.is_empty() {
        None
    } else {
        Some(notes.join("; "))
    }
}
