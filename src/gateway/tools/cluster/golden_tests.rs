//! Golden renders: the fixture cluster (tests/fixtures/cluster-tools.yaml) rendered per kind,
//! list and descriptions, compared with tests/golden/tools/*.txt. Accept a change with
//! `UPDATE_GOLDEN=1 cargo test --lib golden_tests`.

use chrono::{DateTime, Utc};
use kube::api::DynamicObject;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::kind::Kind;
use super::render::events::{EventRow, newest};
use super::render::{More, Render, table, usage};

const FIXTURE: &str = include_str!("../../../../tests/fixtures/cluster-tools.yaml");

fn now() -> DateTime<Utc> {
    "2027-02-14T08:29:07Z".parse().unwrap()
}

/// The fixture's objects, as JSON.
pub fn fixture() -> Vec<Value> {
    serde_yaml::Deserializer::from_str(FIXTURE)
        .map(|d| serde::Deserialize::deserialize(d).expect("fixture document"))
        .collect()
}

fn of<K: DeserializeOwned>(kind: &str) -> Vec<K> {
    fixture()
        .into_iter()
        .filter(|o| o["kind"] == kind)
        .map(|o| serde_json::from_value(o).expect("fixture object"))
        .collect()
}

fn golden(name: &str, actual: &str) {
    let path = format!(
        "{}/tests/golden/tools/{name}.txt",
        env!("CARGO_MANIFEST_DIR")
    );
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).unwrap();
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        expected == actual,
        "{path} differs from the render:\n{actual}\nreview and run `UPDATE_GOLDEN=1 cargo test --lib golden_tests`"
    );
    // Whatever the fixture hides in env, commands, annotations or ConfigMap values stays hidden.
    assert!(
        !actual.contains("hunter2"),
        "{name} shows a secret value:\n{actual}"
    );
    // Nor is a Secret named, not even the one an Ingress takes its certificate from.
    assert!(
        !actual.contains("shop-tls"),
        "{name} names a Secret:\n{actual}"
    );
}

/// The list of every fixture object of the kind, then each one described.
fn render_kind<K: Render + DeserializeOwned>(kind: Kind) -> String {
    let items: Vec<K> = of(kind.camel());
    assert!(!items.is_empty(), "the fixture has no {}", kind.plural());
    let mut out = table(&items, More::No, now());
    for item in &items {
        out.push_str("\n\n");
        out.push_str(&item.describe(now()));
    }
    out.push('\n');
    out
}

#[test]
fn every_kind_renders_as_its_golden_file() {
    use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
    use k8s_openapi::api::batch::v1::{CronJob, Job};
    use k8s_openapi::api::core::v1::{
        ConfigMap, Event, Namespace, Node, PersistentVolumeClaim, Pod, Service,
    };
    use k8s_openapi::api::networking::v1::Ingress;
    for kind in Kind::ALL {
        let text = match kind {
            Kind::Pods => render_kind::<Pod>(kind),
            Kind::Deployments => render_kind::<Deployment>(kind),
            Kind::StatefulSets => render_kind::<StatefulSet>(kind),
            Kind::DaemonSets => render_kind::<DaemonSet>(kind),
            Kind::Jobs => render_kind::<Job>(kind),
            Kind::CronJobs => render_kind::<CronJob>(kind),
            Kind::Services => render_kind::<Service>(kind),
            Kind::Ingresses => render_kind::<Ingress>(kind),
            Kind::Nodes => render_kind::<Node>(kind),
            Kind::PersistentVolumeClaims => render_kind::<PersistentVolumeClaim>(kind),
            Kind::Events => render_kind::<Event>(kind),
            Kind::Namespaces => render_kind::<Namespace>(kind),
            Kind::ConfigMaps => render_kind::<ConfigMap>(kind),
        };
        golden(kind.plural(), &text);
    }
}

#[test]
fn events_newest_first_as_golden() {
    use k8s_openapi::api::core::v1::Event;
    let rows: Vec<EventRow> = of::<Event>("Event").iter().map(EventRow::from).collect();
    let text = format!(
        "{}\n\n{}\n",
        newest(rows.clone(), 50, now()),
        newest(rows, 2, now())
    );
    golden("events-newest", &text);
}

#[test]
fn usage_as_golden() {
    let rows = |kind| -> Vec<usage::Usage> {
        of::<DynamicObject>(kind)
            .iter()
            .map(super::usage::usage_of)
            .collect()
    };
    let mut nodes = rows("NodeMetrics");
    nodes[0].allocatable = Some((4000, 8148564 * 1024));
    let text = format!(
        "{}\n\n{}\n\n{}\n",
        usage::nodes(nodes),
        usage::pods(rows("PodMetrics"), 50),
        usage::pods(rows("PodMetrics"), 1)
    );
    golden("usage", &text);
}
