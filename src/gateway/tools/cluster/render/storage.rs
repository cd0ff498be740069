//! PersistentVolumeClaims as text: phase, volume, capacity, access modes, storage class.

use std::fmt::Write;

use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::PersistentVolumeClaim;

use super::{Render, condition, created, heading, name_of};

/// kubectl's short access modes: `RWO,RWX`.
fn modes(p: &PersistentVolumeClaim) -> String {
    let from_status = p.status.as_ref().and_then(|s| s.access_modes.as_ref());
    let from_spec = p.spec.as_ref().and_then(|s| s.access_modes.as_ref());
    let short: Vec<&str> = from_status
        .or(from_spec)
        .into_iter()
        .flatten()
        .map(|m| match m.as_str() {
            "ReadWriteOnce" => "RWO",
            "ReadOnlyMany" => "ROX",
            "ReadWriteMany" => "RWX",
            "ReadWriteOncePod" => "RWOP",
            other => other,
        })
        .collect();
    if short.is_empty() {
        "-".into()
    } else {
        short.join(",")
    }
}

fn capacity(p: &PersistentVolumeClaim) -> &str {
    p.status
        .as_ref()
        .and_then(|s| s.capacity.as_ref())
        .and_then(|c| c.get("storage"))
        .map(|q| q.0.as_str())
        .unwrap_or("-")
}

fn phase(p: &PersistentVolumeClaim) -> &str {
    p.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("Pending")
}

impl Render for PersistentVolumeClaim {
    const HEADER: &'static str =
        "NAMESPACE/NAME  STATUS  VOLUME  CAPACITY  ACCESS-MODES  STORAGECLASS  AGE";

    fn row(&self, now: DateTime<Utc>) -> String {
        let spec = self.spec.clone().unwrap_or_default();
        format!(
            "{}  {}  {}  {}  {}  {}  {}",
            name_of(&self.metadata),
            phase(self),
            spec.volume_name.as_deref().unwrap_or("-"),
            capacity(self),
            modes(self),
            spec.storage_class_name.as_deref().unwrap_or("-"),
            created(now, &self.metadata)
        )
    }

    fn describe(&self, now: DateTime<Utc>) -> String {
        let mut out = heading("persistentvolumeclaim", &self.metadata, now);
        let spec = self.spec.clone().unwrap_or_default();
        let requested = spec
            .resources
            .as_ref()
            .and_then(|r| r.requests.as_ref())
            .and_then(|r| r.get("storage"))
            .map(|q| q.0.as_str())
            .unwrap_or("-");
        let _ = write!(
            out,
            "\nstatus: {}  volume: {}  storageClass: {}",
            phase(self),
            spec.volume_name.as_deref().unwrap_or("-"),
            spec.storage_class_name.as_deref().unwrap_or("-")
        );
        let _ = write!(
            out,
            "\nrequested: {requested}  capacity: {}  accessModes: {}  volumeMode: {}",
            capacity(self),
            modes(self),
            spec.volume_mode.as_deref().unwrap_or("Filesystem")
        );
        let conds: Vec<String> = self
            .status
            .iter()
            .flat_map(|s| s.conditions.iter().flatten())
            .map(|c| {
                condition(
                    &c.type_,
                    &c.status,
                    c.reason.as_deref(),
                    c.message.as_deref(),
                )
            })
            .collect();
        if !conds.is_empty() {
            let _ = write!(out, "\nconditions: {}", conds.join("; "));
        }
        out
    }
}
