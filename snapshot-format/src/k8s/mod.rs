//! Kubernetes storage encoding: the `k8s\0` protobuf envelope, JSON, `/registry` keys and
//! encryption at rest.
