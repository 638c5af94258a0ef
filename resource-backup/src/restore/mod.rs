//! Restore: plan first, then apply. [`plan`] reads an [`ObjectSource`](crate::ObjectSource)
//! type by type, filters, strips what the server owns, maps namespaces, converts API
//! versions to ones the target serves, applies transforms, orders the objects into
//! dependency waves and compares each with the live target: create, update, recreate,
//! skip, conflict or error, with a YAML diff. [`apply`] writes a plan wave by wave with
//! many objects in flight, waits for CRDs, relinks ownerReferences to the owners' uids
//! in the target, and reports an outcome per object. Re-running converges: objects
//! already restored are skipped, owners are looked up live.
//!
//! See docs/restore.md for the options and the transforms file.

mod apply;
mod convert;
mod diff;
pub mod normalize;
mod options;
mod plan;
pub mod record;
mod request;
mod transform;

pub use apply::{ObjectOutcome, Outcome, ReportSummary, RestoreReport, apply};
pub use options::{ExistingPolicy, LabelSelector, RestoreOptions};
pub use plan::{
    Action, MAX_OBJECTS, MAX_TYPES, ObjectRef, PlanSummary, PlannedObject, RestorePlan, plan,
};
pub use transform::{Rule, Selector, Transforms};
