//! Cluster profiles: what makes two testenv clusters differ like two distributions — the
//! Kubernetes version reported, which API versions are served, and the default
//! StorageClass.

use serde_json::{Value, json};

/// A kind of cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// Profile name (`newer`, `older`).
    pub name: &'static str,
    /// `gitVersion` served at `/version`.
    pub git_version: &'static str,
    /// Beta versions served besides every GA version: (group, version, resources).
    pub extra_versions: &'static [(&'static str, &'static str, &'static [&'static str])],
    /// Groups not served at all (too new for this cluster).
    pub hidden_groups: &'static [&'static str],
    /// Resources not served at all: (group, resource).
    pub hidden_resources: &'static [(&'static str, &'static str)],
    /// Name of the default StorageClass created at start.
    pub default_storage_class: &'static str,
    /// Its provisioner.
    pub provisioner: &'static str,
}

/// A recent cluster (Kubernetes 1.34): GA APIs only, a CSI default
/// StorageClass.
pub const NEWER: Profile = Profile {
    name: "newer",
    git_version: "v1.34.1-testenv",
    extra_versions: &[],
    hidden_groups: &[],
    hidden_resources: &[],
    default_storage_class: "gp3",
    provisioner: "ebs.csi.aws.com",
};

/// An older cluster (like 1.24): serves `policy/v1beta1` PodDisruptionBudgets and
/// `batch/v1beta1` CronJobs besides their v1, lacks the APIs that went GA later, and
/// names its default StorageClass `standard`.
pub const OLDER: Profile = Profile {
    name: "older",
    git_version: "v1.24.17-testenv",
    extra_versions: &[
        ("policy", "v1beta1", &["poddisruptionbudgets"]),
        ("batch", "v1beta1", &["cronjobs"]),
    ],
    hidden_groups: &["resource.k8s.io", "storagemigration.k8s.io"],
    hidden_resources: &[
        (
            "admissionregistration.k8s.io",
            "validatingadmissionpolicies",
        ),
        (
            "admissionregistration.k8s.io",
            "validatingadmissionpolicybindings",
        ),
        ("admissionregistration.k8s.io", "mutatingadmissionpolicies"),
        (
            "admissionregistration.k8s.io",
            "mutatingadmissionpolicybindings",
        ),
        ("networking.k8s.io", "servicecidrs"),
        ("networking.k8s.io", "ipaddresses"),
        ("storage.k8s.io", "volumeattributesclasses"),
        ("coordination.k8s.io", "leasecandidates"),
        ("certificates.k8s.io", "clustertrustbundles"),
    ],
    default_storage_class: "standard",
    provisioner: "kubernetes.io/no-provisioner",
};

/// Every profile.
pub const PROFILES: &[&Profile] = &[&NEWER, &OLDER];

impl Profile {
    /// The profile called `name`.
    pub fn by_name(name: &str) -> Option<&'static Profile> {
        PROFILES.iter().copied().find(|p| p.name == name)
    }

    /// The `/version` document.
    pub fn version_info(&self) -> Value {
        let core = self
            .git_version
            .split('-')
            .next()
            .unwrap_or(self.git_version);
        let mut parts = core.trim_start_matches('v').split('.');
        let major = parts.next().unwrap_or("1");
        let minor = parts.next().unwrap_or("0");
        json!({
            "major": major,
            "minor": minor,
            "gitVersion": self.git_version,
            "gitCommit": "0000000000000000000000000000000000000000",
            "gitTreeState": "clean",
            "buildDate": "2025-01-01T00:00:00Z",
            "goVersion": "go1.23.0",
            "compiler": "gc",
            "platform": "linux/amd64",
        })
    }

    /// Whether (group, resource) is served at all.
    pub fn serves(&self, group: &str, resource: &str) -> bool {
        !self.hidden_groups.contains(&group)
            && !self
                .hidden_resources
                .iter()
                .any(|(g, r)| *g == group && *r == resource)
    }

    /// The default StorageClass object.
    pub fn storage_class(&self) -> Value {
        json!({
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": {
                "name": self.default_storage_class,
                "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
            },
            "provisioner": self.provisioner,
            "reclaimPolicy": "Delete",
            "volumeBindingMode": "WaitForFirstConsumer",
        })
    }
}
