//! Service cluster IP and node port allocation. Like kube-apiserver's allocators, a
//! requested IP or port must be in range and free, and is otherwise refused as a
//! duplicate; unset ones are assigned.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::Mutex;

use serde_json::{Value, json};

use super::status::Cause;

/// The service CIDR, 10.96.0.0/12 as kubeadm's default.
const SERVICE_NET: u32 = u32::from_be_bytes([10, 96, 0, 0]);
const SERVICE_NET_SIZE: u32 = 1 << 20;
/// The `kubernetes` Service's IP: the first of the range.
pub const KUBERNETES_SERVICE_IP: &str = "10.96.0.1";
/// The node port range, kube-apiserver's default.
pub const NODE_PORTS: std::ops::RangeInclusive<u16> = 30000..=32767;

#[derive(Debug, Default)]
struct Allocations {
    /// IP -> owning service (`ns/name`).
    ips: HashMap<u32, String>,
    /// Node port -> owning service.
    ports: HashMap<u16, String>,
    next_ip: u32,
    next_port: u16,
}

/// Allocates cluster IPs and node ports; shared by every request.
#[derive(Debug, Default)]
pub struct Allocator {
    state: Mutex<Allocations>,
}

fn parse_ip(text: &str) -> Option<u32> {
    text.parse::<Ipv4Addr>().ok().map(u32::from)
}

fn in_range(ip: u32) -> bool {
    ip.wrapping_sub(SERVICE_NET) < SERVICE_NET_SIZE
}

/// The node ports a Service asks for (0 when unset), with their JSON paths.
fn requested_ports(service: &Value) -> Vec<(usize, u16)> {
    service
        .get("spec")
        .and_then(|s| s.get("ports"))
        .and_then(Value::as_array)
        .map(|ports| {
            ports
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    let port = p.get("nodePort").and_then(Value::as_u64).unwrap_or(0);
                    (i, u16::try_from(port).unwrap_or(u16::MAX))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn service_type(service: &Value) -> &str {
    service
        .get("spec")
        .and_then(|s| s.get("type"))
        .and_then(Value::as_str)
        .unwrap_or("ClusterIP")
}

impl Allocator {
    fn lock(&self) -> std::sync::MutexGuard<'_, Allocations> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Records what an existing Service holds (at startup).
    pub fn record(&self, owner: &str, service: &Value) {
        let mut state = self.lock();
        if let Some(ip) = service
            .get("spec")
            .and_then(|s| s.get("clusterIP"))
            .and_then(Value::as_str)
            .and_then(parse_ip)
        {
            state.ips.insert(ip, owner.to_string());
        }
        for (_, port) in requested_ports(service) {
            if port != 0 {
                state.ports.insert(port, owner.to_string());
            }
        }
    }

    /// Releases everything `owner` holds.
    pub fn release(&self, owner: &str) {
        let mut state = self.lock();
        state.ips.retain(|_, o| o != owner);
        state.ports.retain(|_, o| o != owner);
    }

    /// Assigns (or checks) the cluster IP and node ports of `service`, owned by `owner`
    /// (`ns/name`). On failure nothing stays allocated.
    pub fn allocate(&self, owner: &str, service: &mut Value) -> Result<(), Vec<Cause>> {
        let mut state = self.lock();
        let kind = service_type(service).to_string();
        let mut causes = Vec::new();
        let mut taken_ip = None;
        let mut taken_ports = Vec::new();

        if kind != "ExternalName" {
            let requested = service
                .get("spec")
                .and_then(|s| s.get("clusterIP"))
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            if requested == "None" {
                // Headless.
            } else if requested.is_empty() {
                match next_free_ip(&mut state) {
                    Some(ip) => taken_ip = Some(ip),
                    None => causes.push(Cause::invalid(
                        "spec.clusterIPs",
                        &Value::Null,
                        "failed to allocate IP: range is full",
                    )),
                }
            } else {
                match parse_ip(&requested) {
                    None => causes.push(Cause::invalid(
                        "spec.clusterIPs[0]",
                        &json!(requested),
                        "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
                    )),
                    Some(ip) if !in_range(ip) => causes.push(Cause::invalid(
                        "spec.clusterIPs",
                        &json!([requested]),
                        "failed to allocate IP 10.96.0.0/12: provided IP is not in the valid range. The range of valid IPs is 10.96.0.0/12",
                    )),
                    Some(ip) => match state.ips.get(&ip) {
                        Some(holder) if holder != owner => causes.push(Cause::invalid(
                            "spec.clusterIPs",
                            &json!([requested]),
                            format!("failed to allocate IP {requested}: provided IP is already allocated"),
                        )),
                        _ => taken_ip = Some(ip),
                    },
                }
            }
        }

        if matches!(kind.as_str(), "NodePort" | "LoadBalancer") {
            for (index, port) in requested_ports(service) {
                let field = format!("spec.ports[{index}].nodePort");
                if port == 0 {
                    match next_free_port(&mut state, &taken_ports) {
                        Some(port) => taken_ports.push((index, port)),
                        None => causes.push(Cause::invalid(
                            field,
                            &json!(0),
                            "failed to allocate a nodePort: range is full",
                        )),
                    }
                } else if !NODE_PORTS.contains(&port) {
                    causes.push(Cause::invalid(
                        field,
                        &json!(port),
                        "provided port is not in the valid range. The range of valid ports is 30000-32767",
                    ));
                } else if state.ports.get(&port).is_some_and(|holder| holder != owner)
                    || taken_ports.iter().any(|(_, p)| *p == port)
                {
                    causes.push(Cause::invalid(
                        field,
                        &json!(port),
                        "provided port is already allocated",
                    ));
                } else {
                    taken_ports.push((index, port));
                }
            }
        }

        if !causes.is_empty() {
            return Err(causes);
        }
        // Commit: the owner's previous allocations are replaced by these.
        state.ips.retain(|_, o| o != owner);
        state.ports.retain(|_, o| o != owner);
        if let Some(spec) = service.get_mut("spec").and_then(Value::as_object_mut) {
            if let Some(ip) = taken_ip {
                let text = Ipv4Addr::from(ip).to_string();
                state.ips.insert(ip, owner.to_string());
                spec.insert("clusterIP".into(), json!(text));
                spec.insert("clusterIPs".into(), json!([text]));
                spec.entry("ipFamilies").or_insert(json!(["IPv4"]));
                spec.entry("ipFamilyPolicy").or_insert(json!("SingleStack"));
            } else if spec.get("clusterIP").and_then(Value::as_str) == Some("None") {
                spec.insert("clusterIPs".into(), json!(["None"]));
            }
            if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
                for (index, port) in &taken_ports {
                    state.ports.insert(*port, owner.to_string());
                    if let Some(entry) = ports.get_mut(*index).and_then(Value::as_object_mut) {
                        entry.insert("nodePort".into(), json!(port));
                    }
                }
            }
        }
        Ok(())
    }
}

fn next_free_ip(state: &mut Allocations) -> Option<u32> {
    // Skip .0 (network) and .1 (the kubernetes Service, reserved).
    for _ in 0..SERVICE_NET_SIZE {
        let offset = 2 + state.next_ip % (SERVICE_NET_SIZE - 3);
        state.next_ip = state.next_ip.wrapping_add(1);
        let ip = SERVICE_NET + offset;
        if !state.ips.contains_key(&ip) {
            return Some(ip);
        }
    }
    None
}

fn next_free_port(state: &mut Allocations, pending: &[(usize, u16)]) -> Option<u16> {
    let size = NODE_PORTS.end() - NODE_PORTS.start() + 1;
    for _ in 0..size {
        let port = NODE_PORTS.start() + state.next_port % size;
        state.next_port = state.next_port.wrapping_add(1);
        if !state.ports.contains_key(&port) && !pending.iter().any(|(_, p)| *p == port) {
            return Some(port);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_are_refused() {
        let allocator = Allocator::default();
        let mut a = json!({"spec": {"type": "NodePort", "ports": [{"port": 80}]}});
        allocator.allocate("ns/a", &mut a).unwrap();
        let ip = a["spec"]["clusterIP"].as_str().unwrap().to_string();
        let port = a["spec"]["ports"][0]["nodePort"].as_u64().unwrap();
        assert!(NODE_PORTS.contains(&(port as u16)));
        let mut b = json!({"spec": {"clusterIP": ip, "type": "NodePort", "ports": [{"port": 80, "nodePort": port}]}});
        let causes = allocator.allocate("ns/b", &mut b).unwrap_err();
        assert_eq!(causes.len(), 2, "{causes:?}");
        allocator.release("ns/a");
        allocator.allocate("ns/b", &mut b).unwrap();
        let mut outside = json!({"spec": {"clusterIP": "192.168.0.1", "ports": [{"port": 80}]}});
        assert!(allocator.allocate("ns/c", &mut outside).is_err());
    }
}
