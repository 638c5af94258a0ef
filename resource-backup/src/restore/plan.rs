//! Planning a restore: read the source type by type, filter, normalize, map
//! namespaces, convert versions, transform, order into waves, and compare with the
//! live objects of the target.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::convert;
use super::diff::{equivalent, keep_node_ports, merge_over, yaml_diff};
use super::normalize::{self, MAX_DEPTH, SKIPPED_TYPES, depth_exceeds, owner_references};
use super::options::{ExistingPolicy, LabelSelector, Patterns, RestoreOptions};
use super::request::{TargetTypes, list_all, valid_path_segment};
use super::transform::{CompiledTransforms, Identity, resource_matches};
use crate::Error;
use crate::cluster::Cluster;
use crate::model::{Gvr, ObjectSource, ResourceType};

/// Most objects one plan holds; a larger (or hostile) source is refused.
pub const MAX_OBJECTS: usize = 2_000_000;
/// Most resource types one source may declare.
pub const MAX_TYPES: usize = 20_000;

/// One object's place: type (at a version), namespace and name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ObjectRef {
    /// Type and version.
    pub gvr: Gvr,
    /// Kind.
    pub kind: String,
    /// Namespace (`None`: cluster-scoped).
    pub namespace: Option<String>,
    /// Name.
    pub name: String,
}

impl std::fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} {ns}/{}", self.gvr.group_resource(), self.name),
            None => write!(f, "{} {}", self.gvr.group_resource(), self.name),
        }
    }
}

/// What the restore does with one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Not in the target: create it.
    Create,
    /// In the target and different: merge the backup's fields over it (`--existing update`).
    Update,
    /// In the target and different: delete and create it (`--existing recreate`).
    Recreate,
    /// Left alone: unchanged, or excluded by a default rule (see `reason`).
    Skip,
    /// In the target and different, and the policy is `none`.
    Conflict,
    /// Cannot be restored (see `reason`).
    Error,
}

/// One object of the plan.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlannedObject {
    /// Where it was in the backup.
    pub source: ObjectRef,
    /// Where it goes in the target (after namespace mapping and version conversion).
    pub target: ObjectRef,
    /// Its uid in the backup (dependents' ownerReferences name it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_uid: Option<String>,
    /// Wave: every object of a wave is written before the next wave starts.
    pub wave: u32,
    /// What to do.
    pub action: Action,
    /// Why it is skipped, in conflict or in error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Conversions, transforms, mappings and relinks applied.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// Unified YAML diff live -> restored, for Update, Recreate and Conflict.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
    /// The object as it will be written (ownerReferences are relinked again when
    /// applied). `None` for skipped-by-rule and error items.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<Value>,
}

/// Counts by action.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanSummary {
    /// Objects to create.
    pub create: usize,
    /// Objects to update.
    pub update: usize,
    /// Objects to recreate.
    pub recreate: usize,
    /// Objects left alone.
    pub skip: usize,
    /// Objects in conflict.
    pub conflict: usize,
    /// Objects that cannot be restored.
    pub error: usize,
}

/// A restore plan: every selected object with its action, in wave order.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RestorePlan {
    /// The target API server.
    pub server: String,
    /// The objects, sorted by wave.
    pub items: Vec<PlannedObject>,
    /// Counts.
    pub summary: PlanSummary,
    /// Objects the filters left out.
    pub filtered_out: usize,
    /// Types left out whole, with why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped_types: Vec<String>,
    /// Things the user should know (unreadable target types, …).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl RestorePlan {
    /// Recounts the summary from the items.
    pub fn recount(&mut self) {
        let mut summary = PlanSummary::default();
        for item in &self.items {
            match item.action {
                Action::Create => summary.create += 1,
                Action::Update => summary.update += 1,
                Action::Recreate => summary.recreate += 1,
                Action::Skip => summary.skip += 1,
                Action::Conflict => summary.conflict += 1,
                Action::Error => summary.error += 1,
            }
        }
        self.summary = summary;
    }
}

/// Compiled filters.
struct Filters {
    include_ns: Patterns,
    exclude_ns: Patterns,
    names: Patterns,
    labels: Option<LabelSelector>,
}

impl Filters {
    fn new(options: &RestoreOptions) -> Result<Filters, Error> {
        Ok(Filters {
            include_ns: Patterns::new("namespace", &options.include_namespaces)?,
            exclude_ns: Patterns::new("namespace", &options.exclude_namespaces)?,
            names: Patterns::new("name", &options.names)?,
            labels: options
                .label_selector
                .as_deref()
                .map(LabelSelector::parse)
                .transpose()?,
        })
    }

    fn namespace_selected(&self, namespace: &str) -> bool {
        self.include_ns.matches(namespace) != Some(false)
            && self.exclude_ns.matches(namespace) != Some(true)
    }
}

/// Whether a type is restored at all, and why not.
fn type_selected(t: &ResourceType, options: &RestoreOptions) -> Result<(), String> {
    let (group, resource, kind) = (&t.gvr.group, &t.gvr.resource, &t.kind);
    let named = |list: &[String]| {
        list.iter()
            .any(|e| e != "*" && resource_matches(e, group, resource, kind))
    };
    if options
        .exclude_resources
        .iter()
        .any(|e| resource_matches(e, group, resource, kind))
    {
        return Err(format!(
            "{} excluded by --exclude-resources",
            t.gvr.group_resource()
        ));
    }
    if !options.include_resources.is_empty()
        && !options
            .include_resources
            .iter()
            .any(|e| resource_matches(e, group, resource, kind))
    {
        return Err(format!(
            "{} not in --include-resources",
            t.gvr.group_resource()
        ));
    }
    if let Some((_, _, why)) = SKIPPED_TYPES
        .iter()
        .find(|(g, r, _)| g == group && r == resource)
        && !named(&options.include_resources)
    {
        return Err(format!("{}: {why}", t.gvr.group_resource()));
    }
    let follows_namespaces =
        group.is_empty() && (resource == "namespaces" || resource == "persistentvolumes");
    if !t.namespaced && !options.include_cluster_scoped && !follows_namespaces {
        return Err(format!("{} is cluster-scoped", t.gvr.group_resource()));
    }
    Ok(())
}

/// Kind order of the waves: CRDs, namespaces, cluster configuration, PVs, PVCs, RBAC,
/// service accounts, secrets, config maps, quotas, everything else, workloads, their
/// children, pods; admission webhooks last (so they cannot refuse the restore).
pub(crate) fn kind_rank(group: &str, resource: &str) -> u32 {
    match (group, resource) {
        ("apiextensions.k8s.io", "customresourcedefinitions") => 0,
        ("", "namespaces") => 1,
        ("storage.k8s.io", "storageclasses" | "csidrivers")
        | ("scheduling.k8s.io", "priorityclasses")
        | ("node.k8s.io", "runtimeclasses") => 2,
        ("", "persistentvolumes") => 3,
        ("", "persistentvolumeclaims") => 4,
        ("rbac.authorization.k8s.io", "clusterroles" | "roles") => 5,
        ("rbac.authorization.k8s.io", "clusterrolebindings" | "rolebindings") => 6,
        ("", "serviceaccounts") => 7,
        ("", "secrets") => 8,
        ("", "configmaps") => 9,
        ("", "limitranges" | "resourcequotas") => 10,
        ("apps", "deployments" | "statefulsets" | "daemonsets")
        | ("batch", "cronjobs")
        | ("", "replicationcontrollers") => 12,
        ("apps", "replicasets") | ("batch", "jobs") => 13,
        ("", "pods") => 14,
        ("apiregistration.k8s.io", "apiservices") => 15,
        ("admissionregistration.k8s.io", _) => 16,
        _ => 11,
    }
}

fn is_namespaced_target(types: &TargetTypes, item: &PlannedObject) -> bool {
    types
        .get(&item.target.gvr.group, &item.target.gvr.resource)
        .map(|t| t.namespaced)
        .unwrap_or(item.target.namespace.is_some())
}

/// Plans a restore of `source` into `cluster`.
pub async fn plan<S: ObjectSource>(
    source: &S,
    cluster: &Cluster,
    options: &RestoreOptions,
) -> Result<RestorePlan, Error> {
    let filters = Filters::new(options)?;
    let transforms = options.transforms.compile()?;
    for (from, to) in &options.namespace_mapping {
        if !valid_path_segment(from) || !valid_path_segment(to) {
            return Err(Error::Invalid(format!(
                "namespace mapping {from:?} -> {to:?}: not a namespace name"
            )));
        }
    }
    let mut target_types = TargetTypes::discover(cluster).await?;
    let mut plan = RestorePlan {
        server: cluster.server().to_string(),
        items: Vec::new(),
        summary: PlanSummary::default(),
        filtered_out: 0,
        skipped_types: Vec::new(),
        warnings: Vec::new(),
    };

    // Read the source, type by type: CRDs first, so the versions they will serve are
    // known before their custom resources are converted.
    let mut types = source.resource_types();
    if types.len() > MAX_TYPES {
        return Err(Error::Invalid(format!(
            "the source declares {} resource types (at most {MAX_TYPES})",
            types.len()
        )));
    }
    // A source may hold a type at several versions (the same objects each time): read
    // it once, at a version the target serves if any, else the preferred or newest.
    types.sort_by_key(|t| {
        (
            t.gvr.group.clone(),
            t.gvr.resource.clone(),
            std::cmp::Reverse((
                target_types.serves(&t.gvr.group, &t.gvr.version, &t.gvr.resource),
                t.preferred,
                crate::cluster::version_order(&t.gvr.version),
            )),
        )
    });
    let mut seen = HashSet::new();
    types.retain(|t| {
        let first = seen.insert((t.gvr.group.clone(), t.gvr.resource.clone()));
        if !first {
            plan.skipped_types.push(format!(
                "{}: the same objects are read at another version",
                t.gvr
            ));
        }
        first
    });
    types.sort_by_key(|t| (kind_rank(&t.gvr.group, &t.gvr.resource) != 0, t.gvr.clone()));
    let mut source_namespaces: HashMap<String, Value> = HashMap::new();
    let mut total = 0usize;
    for t in &types {
        if let Err(why) = type_selected(t, options) {
            plan.skipped_types.push(why);
            continue;
        }
        let objects = source.objects(&t.gvr).await?;
        total = total.saturating_add(objects.len());
        if total > MAX_OBJECTS {
            return Err(Error::Invalid(format!(
                "the source holds more than {MAX_OBJECTS} objects"
            )));
        }
        for item in objects {
            if item.gvr != t.gvr {
                plan.warnings.push(format!(
                    "source listed {} {} under {}; taken as {}",
                    item.gvr, item.name, t.gvr, t.gvr
                ));
            }
            let prepared = prepare(
                t,
                item,
                options,
                &filters,
                &transforms,
                &target_types,
                &mut source_namespaces,
            );
            match prepared {
                Prepared::Filtered => plan.filtered_out += 1,
                Prepared::Item(planned) => {
                    if planned.target.gvr.group == "apiextensions.k8s.io"
                        && planned.target.gvr.resource == "customresourcedefinitions"
                        && let Some(object) = &planned.object
                    {
                        target_types.add_crd(object);
                    }
                    plan.items.push(*planned);
                }
            }
        }
    }

    add_missing_namespaces(&mut plan, cluster, &target_types, &source_namespaces).await?;
    assign_waves(&mut plan.items);

    // Compare with the live target.
    let live = LiveIndex::load(cluster, &plan.items, &target_types, &mut plan.warnings).await;
    let owners = OwnerIndex::new(&plan.items);
    for i in 0..plan.items.len() {
        let (relinked, notes) = match &plan.items[i].object {
            Some(object) => {
                let mut object = object.clone();
                let notes =
                    owners.relink_from_live(&mut object, &plan.items[i], &live, &target_types);
                (Some(object), notes)
            }
            None => (None, Vec::new()),
        };
        let item = &mut plan.items[i];
        let Some(desired) = relinked else {
            continue;
        };
        item.notes.extend(notes);
        let existing = live.get(&item.target);
        let decision = decide(item, &desired, existing, options);
        item.action = decision.action;
        item.diff = decision.diff;
        if decision.reason.is_some() {
            item.reason = decision.reason;
        }
        item.object = Some(desired);
    }
    plan.items.sort_by(|a, b| {
        (
            a.wave,
            &a.target.gvr.group,
            &a.target.gvr.resource,
            &a.target.namespace,
            &a.target.name,
        )
            .cmp(&(
                b.wave,
                &b.target.gvr.group,
                &b.target.gvr.resource,
                &b.target.namespace,
                &b.target.name,
            ))
    });
    plan.recount();
    Ok(plan)
}

enum Prepared {
    Filtered,
    Item(Box<PlannedObject>),
}

fn error_item(source: ObjectRef, source_uid: Option<String>, reason: String) -> Prepared {
    Prepared::Item(Box::new(PlannedObject {
        target: source.clone(),
        source,
        source_uid,
        wave: 0,
        action: Action::Error,
        reason: Some(reason),
        notes: Vec::new(),
        diff: None,
        object: None,
    }))
}

/// Filters, normalizes, maps, converts and transforms one object.
#[allow(clippy::too_many_arguments)]
fn prepare(
    t: &ResourceType,
    item: crate::model::BackupItem,
    options: &RestoreOptions,
    filters: &Filters,
    transforms: &CompiledTransforms,
    target_types: &TargetTypes,
    source_namespaces: &mut HashMap<String, Value>,
) -> Prepared {
    let (group, resource) = (t.gvr.group.as_str(), t.gvr.resource.as_str());
    let namespace = if t.namespaced {
        item.namespace.clone()
    } else {
        None
    };
    let source = ObjectRef {
        gvr: t.gvr.clone(),
        kind: t.kind.clone(),
        namespace: namespace.clone(),
        name: item.name.clone(),
    };
    if depth_exceeds(&item.object, MAX_DEPTH) || !item.object.is_object() {
        return error_item(
            source,
            None,
            format!("not an object, or nested deeper than {MAX_DEPTH} levels"),
        );
    }
    let source_uid = item
        .object
        .get("metadata")
        .and_then(|m| m.get("uid"))
        .and_then(Value::as_str)
        .map(str::to_string);
    if !valid_path_segment(&item.name)
        || namespace
            .as_deref()
            .is_some_and(|ns| !valid_path_segment(ns))
    {
        return error_item(source, source_uid, "invalid name or namespace".into());
    }
    if t.namespaced && namespace.is_none() {
        return error_item(
            source,
            source_uid,
            "namespaced object without a namespace".into(),
        );
    }
    let is_namespace = group.is_empty() && resource == "namespaces";
    if is_namespace {
        source_namespaces.insert(item.name.clone(), item.object.clone());
    }

    // Filters, on the object as it was backed up.
    let ns_for_filter = if is_namespace {
        Some(item.name.as_str())
    } else {
        namespace.as_deref()
    };
    if let Some(ns) = ns_for_filter
        && !filters.namespace_selected(ns)
    {
        return Prepared::Filtered;
    }
    if group.is_empty()
        && resource == "persistentvolumes"
        && let Some(ns) = item
            .object
            .get("spec")
            .and_then(|s| s.get("claimRef"))
            .and_then(|c| c.get("namespace"))
            .and_then(Value::as_str)
        && !filters.namespace_selected(ns)
    {
        return Prepared::Filtered;
    }
    let follows_namespaces = is_namespace || (group.is_empty() && resource == "persistentvolumes");
    if !t.namespaced && !options.include_cluster_scoped && !follows_namespaces {
        return Prepared::Filtered;
    }
    if filters.names.matches(&item.name) == Some(false) {
        return Prepared::Filtered;
    }
    if let Some(selector) = &filters.labels
        && !selector.matches(&item.object)
    {
        return Prepared::Filtered;
    }
    let mut object = item.object;
    if let Some(why) = normalize::default_skip(group, resource, &object, options) {
        return Prepared::Item(Box::new(PlannedObject {
            target: source.clone(),
            source,
            source_uid,
            wave: 0,
            action: Action::Skip,
            reason: Some(why),
            notes: Vec::new(),
            diff: None,
            object: None,
        }));
    }

    // Normalize, then map namespaces.
    if object.get("metadata").is_none_or(|m| !m.is_object()) {
        object["metadata"] = json!({});
    }
    object["apiVersion"] = json!(t.gvr.api_version());
    object["kind"] = json!(t.kind);
    normalize::strip_server_fields(group, resource, &mut object, options);
    let mut notes = Vec::new();
    let mut name = item.name.clone();
    let target_namespace = namespace
        .as_deref()
        .map(|ns| options.map_namespace(ns).to_string());
    if is_namespace {
        let mapped = options.map_namespace(&item.name).to_string();
        if mapped != item.name {
            notes.push(format!("namespace {} -> {mapped}", item.name));
            name = mapped;
        }
        if let Some(labels) = object
            .get_mut("metadata")
            .and_then(|m| m.get_mut("labels"))
            .and_then(Value::as_object_mut)
            && labels.contains_key("kubernetes.io/metadata.name")
        {
            labels.insert("kubernetes.io/metadata.name".into(), json!(name));
        }
    }
    if let (Some(from), Some(to)) = (&namespace, &target_namespace)
        && from != to
    {
        notes.push(format!("namespace {from} -> {to}"));
    }
    map_namespace_references(group, resource, &mut object, options, &mut notes);

    // Versions.
    let custom = target_types.is_custom(group, resource);
    let converted = convert::to_served(
        group,
        &t.gvr.version,
        resource,
        custom,
        &mut object,
        &|g, v| target_types.serves(g, v, resource),
        &|g| target_types.versions(g, resource),
    );
    let (target_group, target_version) = match converted {
        Ok(None) => (t.gvr.group.clone(), t.gvr.version.clone()),
        Ok(Some(c)) => {
            notes.push(c.note);
            (c.group, c.version)
        }
        Err(why) => return error_item(source, source_uid, why),
    };

    // Transforms.
    let id = Identity {
        group: &target_group,
        resource,
        kind: &t.kind,
        source_namespace: namespace.as_deref(),
        namespace: target_namespace.as_deref(),
        name: &name,
    };
    match transforms.apply(&id, &mut object) {
        Ok(applied) => notes.extend(applied),
        Err(why) => return error_item(source, source_uid, why),
    }
    if depth_exceeds(&object, MAX_DEPTH) || !object.is_object() {
        return error_item(
            source,
            source_uid,
            "a transform made the object invalid".into(),
        );
    }
    // Identity is the plan's: the (mapped) namespace and name win over the body.
    let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) else {
        return error_item(source, source_uid, "a transform removed metadata".into());
    };
    metadata.insert("name".into(), json!(name));
    match &target_namespace {
        Some(ns) => {
            metadata.insert("namespace".into(), json!(ns));
        }
        None => {
            metadata.remove("namespace");
        }
    }
    let kind = target_types
        .get(&target_group, resource)
        .map(|t| t.kind.clone())
        .unwrap_or_else(|| t.kind.clone());
    Prepared::Item(Box::new(PlannedObject {
        source,
        target: ObjectRef {
            gvr: Gvr::new(&target_group, &target_version, resource),
            kind,
            namespace: target_namespace,
            name,
        },
        source_uid,
        wave: 0,
        action: Action::Create,
        reason: None,
        notes,
        diff: None,
        object: Some(object),
    }))
}

/// RoleBinding subjects, PV claimRefs and the Services of webhooks, APIServices and CRD
/// conversion webhooks follow the namespace mapping.
fn map_namespace_references(
    group: &str,
    resource: &str,
    object: &mut Value,
    options: &RestoreOptions,
    notes: &mut Vec<String>,
) {
    if options.namespace_mapping.is_empty() {
        return;
    }
    let map = |slot: Option<&mut Value>, what: &str, notes: &mut Vec<String>| {
        if let Some(slot) = slot
            && let Some(ns) = slot.as_str()
            && let Some(to) = options.namespace_mapping.get(ns)
        {
            notes.push(format!("{what} namespace {ns} -> {to}"));
            *slot = json!(to);
        }
    };
    match (group, resource) {
        ("rbac.authorization.k8s.io", "rolebindings" | "clusterrolebindings") => {
            if let Some(subjects) = object.get_mut("subjects").and_then(Value::as_array_mut) {
                for subject in subjects {
                    map(subject.get_mut("namespace"), "subject", notes);
                }
            }
        }
        ("", "persistentvolumes") => {
            map(
                object
                    .get_mut("spec")
                    .and_then(|s| s.get_mut("claimRef"))
                    .and_then(|c| c.get_mut("namespace")),
                "claimRef",
                notes,
            );
        }
        (
            "admissionregistration.k8s.io",
            "validatingwebhookconfigurations" | "mutatingwebhookconfigurations",
        ) => {
            if let Some(webhooks) = object.get_mut("webhooks").and_then(Value::as_array_mut) {
                for webhook in webhooks {
                    map(
                        webhook.pointer_mut("/clientConfig/service/namespace"),
                        "webhook service",
                        notes,
                    );
                }
            }
        }
        ("apiregistration.k8s.io", "apiservices") => {
            map(
                object.pointer_mut("/spec/service/namespace"),
                "service",
                notes,
            );
        }
        ("apiextensions.k8s.io", "customresourcedefinitions") => {
            map(
                object.pointer_mut("/spec/conversion/webhook/clientConfig/service/namespace"),
                "conversion webhook service",
                notes,
            );
        }
        _ => {}
    }
}

/// Namespaces that restored objects live in but that neither exist in the target nor
/// are restored get created (from the backup's Namespace object when it has one).
async fn add_missing_namespaces(
    plan: &mut RestorePlan,
    cluster: &Cluster,
    types: &TargetTypes,
    source_namespaces: &HashMap<String, Value>,
) -> Result<(), Error> {
    let planned: HashSet<String> = plan
        .items
        .iter()
        .filter(|i| {
            i.target.gvr.group.is_empty()
                && i.target.gvr.resource == "namespaces"
                && i.object.is_some()
        })
        .map(|i| i.target.name.clone())
        .collect();
    let mut needed: BTreeMap<String, String> = BTreeMap::new();
    for item in &plan.items {
        if item.object.is_none() || !is_namespaced_target(types, item) {
            continue;
        }
        if let (Some(target), Some(source)) = (&item.target.namespace, &item.source.namespace)
            && !planned.contains(target)
        {
            needed
                .entry(target.clone())
                .or_insert_with(|| source.clone());
        }
    }
    if needed.is_empty() {
        return Ok(());
    }
    let gvr = Gvr::new("", "v1", "namespaces");
    let existing: HashSet<String> = match list_all(cluster, &gvr).await {
        Ok(items) => items
            .iter()
            .filter_map(|o| o.get("metadata")?.get("name")?.as_str().map(str::to_string))
            .collect(),
        Err(e) => {
            plan.warnings.push(format!("cannot list namespaces: {e}"));
            HashSet::new()
        }
    };
    for (target, source) in needed {
        if existing.contains(&target) {
            continue;
        }
        let mut object =
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": target}});
        if let Some(backed_up) = source_namespaces.get(&source)
            && let Some(labels) = backed_up.get("metadata").and_then(|m| m.get("labels"))
        {
            object["metadata"]["labels"] = labels.clone();
            if let Some(l) = object["metadata"]["labels"].as_object_mut()
                && l.contains_key("kubernetes.io/metadata.name")
            {
                l.insert("kubernetes.io/metadata.name".into(), json!(target));
            }
        }
        let r = ObjectRef {
            gvr: gvr.clone(),
            kind: "Namespace".into(),
            namespace: None,
            name: target.clone(),
        };
        plan.items.push(PlannedObject {
            source: ObjectRef {
                name: source.clone(),
                ..r.clone()
            },
            target: r,
            source_uid: None,
            wave: 0,
            action: Action::Create,
            reason: None,
            notes: vec![format!("created because restored objects live in {target}")],
            diff: None,
            object: Some(object),
        });
    }
    Ok(())
}

/// Waves: the kind's rank, and after every owner in the plan.
fn assign_waves(items: &mut [PlannedObject]) {
    let by_uid: HashMap<&str, usize> = items
        .iter()
        .enumerate()
        .filter_map(|(i, item)| Some((item.source_uid.as_deref()?, i)))
        .collect();
    let owners: Vec<Vec<usize>> = items
        .iter()
        .map(|item| {
            item.object
                .as_ref()
                .and_then(owner_references)
                .map(|refs| {
                    refs.iter()
                        .filter_map(|r| by_uid.get(r.get("uid")?.as_str()?).copied())
                        .collect()
                })
                .unwrap_or_default()
        })
        .collect();
    let mut wave: Vec<Option<u32>> = vec![None; items.len()];
    // Iterative depth-first walk; an owner cycle (hostile input) is cut where found.
    for start in 0..items.len() {
        if wave[start].is_some() {
            continue;
        }
        let mut on_stack = HashSet::new();
        let mut stack = vec![(start, false)];
        while let Some((i, expanded)) = stack.pop() {
            if wave[i].is_some() {
                continue;
            }
            if expanded {
                on_stack.remove(&i);
                let t = &items[i].target.gvr;
                let mut w = kind_rank(&t.group, &t.resource);
                for &o in &owners[i] {
                    if let Some(ow) = wave[o] {
                        w = w.max(ow.saturating_add(1));
                    }
                }
                wave[i] = Some(w.min(10_000));
                continue;
            }
            on_stack.insert(i);
            stack.push((i, true));
            for &o in &owners[i] {
                if wave[o].is_none() && !on_stack.contains(&o) {
                    stack.push((o, false));
                }
            }
        }
    }
    for (item, w) in items.iter_mut().zip(wave) {
        item.wave = w.unwrap_or(0);
    }
}

/// Live objects of the target, by place.
pub(crate) struct LiveIndex {
    objects: HashMap<(String, String, Option<String>, String), Value>,
}

impl LiveIndex {
    async fn load(
        cluster: &Cluster,
        items: &[PlannedObject],
        types: &TargetTypes,
        warnings: &mut Vec<String>,
    ) -> LiveIndex {
        let mut gvrs: BTreeSet<Gvr> = items
            .iter()
            .filter(|i| i.object.is_some())
            .map(|i| i.target.gvr.clone())
            .collect();
        // Owners outside the plan are looked up among these too.
        for item in items {
            if let Some(refs) = item.object.as_ref().and_then(owner_references) {
                for r in refs {
                    if let (Some(api_version), Some(kind)) = (
                        r.get("apiVersion").and_then(Value::as_str),
                        r.get("kind").and_then(Value::as_str),
                    ) && let Some(t) = types.by_kind(api_version, kind)
                    {
                        gvrs.insert(t.gvr.clone());
                    }
                }
            }
        }
        let mut objects = HashMap::new();
        // A few lists in flight, without closures (the future stays Send).
        let mut pending = gvrs.into_iter().filter(|g| {
            types.serves(&g.group, &g.version, &g.resource)
                && !types.is_pending(&g.group, &g.resource)
        });
        let mut in_flight = futures::stream::FuturesUnordered::new();
        loop {
            while in_flight.len() < 8 {
                let Some(gvr) = pending.next() else { break };
                in_flight.push(list_tagged(cluster, gvr));
            }
            let Some((gvr, result)) = futures::StreamExt::next(&mut in_flight).await else {
                break;
            };
            match result {
                Ok(list) => {
                    for object in list {
                        let meta = object.get("metadata");
                        let name = meta.and_then(|m| m.get("name")).and_then(Value::as_str);
                        let ns = meta
                            .and_then(|m| m.get("namespace"))
                            .and_then(Value::as_str)
                            .map(str::to_string);
                        if let Some(name) = name {
                            objects.insert(
                                (
                                    gvr.group.clone(),
                                    gvr.resource.clone(),
                                    ns,
                                    name.to_string(),
                                ),
                                object,
                            );
                        }
                    }
                }
                Err(e) => warnings.push(format!("cannot list {gvr} in the target: {e}")),
            }
        }
        LiveIndex { objects }
    }

    fn get(&self, r: &ObjectRef) -> Option<&Value> {
        self.objects.get(&(
            r.gvr.group.clone(),
            r.gvr.resource.clone(),
            r.namespace.clone(),
            r.name.clone(),
        ))
    }
}

async fn list_tagged(cluster: &Cluster, gvr: Gvr) -> (Gvr, Result<Vec<Value>, Error>) {
    let result = list_all(cluster, &gvr).await;
    (gvr, result)
}

/// Where every planned object's owners go: source uid -> target place.
#[derive(Debug, Clone, Default)]
pub(crate) struct OwnerIndex {
    by_uid: HashMap<String, ObjectRef>,
}

impl OwnerIndex {
    pub(crate) fn new(items: &[PlannedObject]) -> OwnerIndex {
        OwnerIndex {
            by_uid: items
                .iter()
                .filter(|i| i.object.is_some())
                .filter_map(|i| Some((i.source_uid.clone()?, i.target.clone())))
                .collect(),
        }
    }

    /// Where an ownerReference's owner is in the target: a planned object (by its
    /// backup uid), else the object of that kind and name in the dependent's namespace.
    pub(crate) fn owner_place(
        &self,
        reference: &Value,
        dependent: &ObjectRef,
        types: &TargetTypes,
    ) -> Option<ObjectRef> {
        if let Some(place) = reference
            .get("uid")
            .and_then(Value::as_str)
            .and_then(|uid| self.by_uid.get(uid))
        {
            return Some(place.clone());
        }
        let api_version = reference.get("apiVersion")?.as_str()?;
        let kind = reference.get("kind")?.as_str()?;
        let name = reference.get("name")?.as_str()?;
        if !valid_path_segment(name) {
            return None;
        }
        let t = types.by_kind(api_version, kind)?;
        Some(ObjectRef {
            gvr: t.gvr.clone(),
            kind: t.kind.clone(),
            namespace: if t.namespaced {
                dependent.namespace.clone()
            } else {
                None
            },
            name: name.to_string(),
        })
    }

    /// Points ownerReferences at the owners' uids in the live target where they exist
    /// (owners still to be created are relinked when applied).
    fn relink_from_live(
        &self,
        object: &mut Value,
        item: &PlannedObject,
        live: &LiveIndex,
        types: &TargetTypes,
    ) -> Vec<String> {
        let mut notes = Vec::new();
        let Some(refs) = object
            .get_mut("metadata")
            .and_then(|m| m.get_mut("ownerReferences"))
            .and_then(Value::as_array_mut)
        else {
            return notes;
        };
        for r in refs.iter_mut() {
            let Some(place) = self.owner_place(r, &item.target, types) else {
                continue;
            };
            let planned = r
                .get("uid")
                .and_then(Value::as_str)
                .is_some_and(|uid| self.by_uid.contains_key(uid));
            if let Some(uid) = live
                .get(&place)
                .and_then(|o| o.get("metadata")?.get("uid")?.as_str())
            {
                r["uid"] = json!(uid);
            } else if planned {
                notes.push(format!(
                    "owner {place} is restored first; its new uid is linked then"
                ));
            }
        }
        notes
    }
}

/// The decision for one object against the live one.
pub(crate) struct Decision {
    pub action: Action,
    pub diff: Option<String>,
    pub reason: Option<String>,
    /// For Update: the object to write (live merged with desired), with the live
    /// resourceVersion.
    pub write: Option<Value>,
}

/// Whether deleting this type deletes what it holds (then never recreate it).
fn never_recreate(group: &str, resource: &str) -> bool {
    (group.is_empty() && resource == "namespaces")
        || (group == "apiextensions.k8s.io" && resource == "customresourcedefinitions")
}

/// Compares `desired` with the live object and decides per the policy.
pub(crate) fn decide(
    item: &PlannedObject,
    desired: &Value,
    live: Option<&Value>,
    options: &RestoreOptions,
) -> Decision {
    let Some(live) = live else {
        return Decision {
            action: Action::Create,
            diff: None,
            reason: None,
            write: None,
        };
    };
    let (group, resource) = (
        item.target.gvr.group.as_str(),
        item.target.gvr.resource.as_str(),
    );
    let mut desired = desired.clone();
    if group.is_empty() && resource == "services" && !options.preserve_node_ports {
        keep_node_ports(live, &mut desired);
    }
    let mut live_normal = live.clone();
    normalize::strip_server_fields(group, resource, &mut live_normal, options);
    // Lists are compared whole; an apiVersion that reads differently is the same object.
    live_normal["apiVersion"] = desired["apiVersion"].clone();
    // Compared as normalized on both sides: node ports kept from the live object above
    // must not count as a change.
    let mut merged_normal = merge_over(&live_normal, &desired);
    normalize::strip_server_fields(group, resource, &mut merged_normal, options);
    if equivalent(&live_normal, &merged_normal) {
        return Decision {
            action: Action::Skip,
            diff: None,
            reason: Some("unchanged".into()),
            write: None,
        };
    }
    let mut write = merge_over(live, &desired);
    write["apiVersion"] = desired["apiVersion"].clone();
    match options.existing {
        ExistingPolicy::None => Decision {
            action: Action::Conflict,
            diff: Some(yaml_diff(&live_normal, &merged_normal)),
            reason: Some("exists in the target and differs (--existing none)".into()),
            write: None,
        },
        ExistingPolicy::Recreate if !never_recreate(group, resource) => {
            let mut recreated = desired.clone();
            normalize::strip_server_fields(group, resource, &mut recreated, options);
            Decision {
                action: Action::Recreate,
                diff: Some(yaml_diff(&live_normal, &recreated)),
                reason: None,
                write: None,
            }
        }
        ExistingPolicy::Update | ExistingPolicy::Recreate => Decision {
            action: Action::Update,
            diff: Some(yaml_diff(&live_normal, &merged_normal)),
            reason: None,
            write: Some(write),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(
        group: &str,
        resource: &str,
        name: &str,
        uid: &str,
        owner: Option<&str>,
    ) -> PlannedObject {
        let r = ObjectRef {
            gvr: Gvr::new(group, "v1", resource),
            kind: String::new(),
            namespace: Some("ns".into()),
            name: name.into(),
        };
        let mut object = json!({"metadata": {"name": name, "uid": uid}});
        if let Some(owner) = owner {
            object["metadata"]["ownerReferences"] =
                json!([{"uid": owner, "kind": "X", "name": "o", "apiVersion": "v1"}]);
        }
        PlannedObject {
            source: r.clone(),
            target: r,
            source_uid: Some(uid.into()),
            wave: 0,
            action: Action::Create,
            reason: None,
            notes: Vec::new(),
            diff: None,
            object: Some(object),
        }
    }

    #[test]
    fn owners_come_before_dependents_and_cycles_end() {
        let mut items = vec![
            item("", "pods", "p", "3", Some("2")),
            item("apps", "replicasets", "rs", "2", Some("1")),
            item("example.com", "widgets", "w", "1", None),
            item("", "configmaps", "c", "4", None),
            // A cycle (hostile input).
            item("", "configmaps", "x", "5", Some("6")),
            item("", "configmaps", "y", "6", Some("5")),
        ];
        assign_waves(&mut items);
        let waves: Vec<u32> = items.iter().map(|i| i.wave).collect();
        assert_eq!(waves[2], 11);
        assert_eq!(waves[1], 13);
        assert_eq!(waves[0], 14);
        assert_eq!(waves[3], 9);
        assert!(waves[4] >= 9 && waves[5] >= 9);
        // A custom resource owning a deployment-ranked object pushes it later.
        let mut items = vec![
            item("example.com", "widgets", "w", "1", Some("2")),
            item("apps", "deployments", "d", "2", None),
        ];
        assign_waves(&mut items);
        assert_eq!((items[0].wave, items[1].wave), (13, 12));
    }

    #[test]
    fn decisions() {
        let planned = item("", "configmaps", "c", "1", None);
        let options = RestoreOptions::default();
        let desired = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1"}});
        assert_eq!(
            decide(&planned, &desired, None, &options).action,
            Action::Create
        );
        let live = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "uid": "x", "resourceVersion": "7", "labels": {}}, "data": {"a": "1"}});
        assert_eq!(
            decide(&planned, &desired, Some(&live), &options).action,
            Action::Skip
        );
        let changed = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "uid": "x", "resourceVersion": "7"}, "data": {"a": "2"}});
        let d = decide(&planned, &desired, Some(&changed), &options);
        assert_eq!(d.action, Action::Conflict);
        assert!(d.diff.unwrap().contains("+  a: '1'"));
        let update = RestoreOptions {
            existing: ExistingPolicy::Update,
            ..Default::default()
        };
        let d = decide(&planned, &desired, Some(&changed), &update);
        assert_eq!(d.action, Action::Update);
        let write = d.write.unwrap();
        assert_eq!(write["metadata"]["resourceVersion"], "7");
        assert_eq!(write["data"]["a"], "1");
        let recreate = RestoreOptions {
            existing: ExistingPolicy::Recreate,
            ..Default::default()
        };
        assert_eq!(
            decide(&planned, &desired, Some(&changed), &recreate).action,
            Action::Recreate
        );
    }
}
