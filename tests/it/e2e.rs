//! End-to-end against the cluster in KUBECONFIG (`make e2e`). Ignored by default: the tests
//! apply the CRDs, start `clawops operator` for a fresh namespace, apply the example, and
//! check objects, conditions, the broken/fixed Secret journey and cleanup.

use crate::support;

use std::process::{Child, Command};
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret, Service};
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::api::rbac::v1::ClusterRoleBinding;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::{Api, Client, ResourceExt};
use serde_json::json;

use clawops::crd::{Agent, Channel, Cron};

const TIMEOUT: Duration = Duration::from_secs(60);

async fn wait<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

struct Operator(Child);
impl Drop for Operator {
    fn drop(&mut self) {
        let _ = self.0.kill();
    }
}

fn condition(agent: &Agent, type_: &str) -> Option<(String, String)> {
    let c = agent
        .status
        .as_ref()?
        .common
        .conditions
        .iter()
        .find(|c| c.type_ == type_)?;
    Some((c.status.clone(), c.message.clone()))
}

fn config_hash(d: &Deployment) -> String {
    d.spec
        .as_ref()
        .unwrap()
        .template
        .metadata
        .as_ref()
        .unwrap()
        .annotations
        .as_ref()
        .unwrap()["clawops.dev/config-hash"]
        .clone()
}

#[tokio::test]
#[ignore = "needs a cluster in KUBECONFIG (make e2e)"]
async fn example_agent_lifecycle_on_a_real_cluster() {
    let client = Client::try_default()
        .await
        .expect("KUBECONFIG points at a cluster");
    let ssa = PatchParams::apply("clawops-e2e").force();
    let crds = Api::<CustomResourceDefinition>::all(client.clone());
    for crd in clawops::crd::all() {
        crds.patch(&crd.name_any(), &ssa, &Patch::Apply(&crd))
            .await
            .expect("apply CRD");
    }
    for crd in clawops::crd::all() {
        let name = crd.name_any();
        wait("CRD established", || {
            let crds = crds.clone();
            let name = name.clone();
            async move {
                let c = crds.get(&name).await.ok()?;
                c.status?
                    .conditions?
                    .iter()
                    .any(|c| c.type_ == "Established" && c.status == "True")
                    .then_some(())
            }
        })
        .await;
    }

    let ns = format!("clawops-e2e-{}", std::process::id());
    let namespaces = Api::<Namespace>::all(client.clone());
    namespaces
        .patch(
            &ns,
            &ssa,
            &Patch::Apply(
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
            ),
        )
        .await
        .unwrap();
    let _operator = Operator(
        Command::new(env!("CARGO_BIN_EXE_clawops"))
            .args(["operator", "--namespace", &ns, "--listen", "127.0.0.1:0"])
            .spawn()
            .expect("start the operator"),
    );

    let m = support::example("shrimp.yaml");
    let secrets = Api::<Secret>::namespaced(client.clone(), &ns);
    for s in &m.secrets {
        secrets
            .patch(&s.name_any(), &ssa, &Patch::Apply(s))
            .await
            .unwrap();
    }
    let agents = Api::<Agent>::namespaced(client.clone(), &ns);
    let crons = Api::<Cron>::namespaced(client.clone(), &ns);
    for a in &m.agents {
        agents
            .patch(&a.name_any(), &ssa, &Patch::Apply(a))
            .await
            .unwrap();
    }
    for c in &m.channels {
        Api::<Channel>::namespaced(client.clone(), &ns)
            .patch(&c.name_any(), &ssa, &Patch::Apply(c))
            .await
            .unwrap();
    }
    for c in &m.crons {
        crons
            .patch(&c.name_any(), &ssa, &Patch::Apply(c))
            .await
            .unwrap();
    }

    let deployments = Api::<Deployment>::namespaced(client.clone(), &ns);
    let deployment = wait("gateway Deployment", || async {
        deployments.get_opt("shrimp-gateway").await.ok().flatten()
    })
    .await;
    for (what, found) in [
        (
            "ConfigMap",
            Api::<ConfigMap>::namespaced(client.clone(), &ns)
                .get_opt("shrimp-gateway-config")
                .await
                .unwrap()
                .is_some(),
        ),
        (
            "Service",
            Api::<Service>::namespaced(client.clone(), &ns)
                .get_opt("shrimp-gateway")
                .await
                .unwrap()
                .is_some(),
        ),
        (
            "Ingress",
            Api::<Ingress>::namespaced(client.clone(), &ns)
                .get_opt("shrimp-gateway")
                .await
                .unwrap()
                .is_some(),
        ),
        (
            "token Secret",
            secrets
                .get_opt("shrimp-gateway-token")
                .await
                .unwrap()
                .is_some(),
        ),
    ] {
        assert!(found, "{what} missing");
    }
    let jobs = Api::<CronJob>::namespaced(client.clone(), &ns);
    wait("both CronJobs", || async {
        (jobs.list(&Default::default()).await.ok()?.items.len() == 2).then_some(())
    })
    .await;
    wait("SecretsResolved=True", || async {
        (condition(&agents.get("shrimp").await.ok()?, "SecretsResolved")?.0 == "True").then_some(())
    })
    .await;

    // Break a Secret: the Agent says which key, the Deployment stays as it was.
    let hash = config_hash(&deployment);
    secrets
        .patch(
            "shrimp-secrets",
            &PatchParams::default(),
            &Patch::Merge(json!({"stringData": {"zai-api-key": "CHANGE_ME"}})),
        )
        .await
        .unwrap();
    let (_, message) = wait("SecretsResolved=False", || async {
        condition(&agents.get("shrimp").await.ok()?, "SecretsResolved").filter(|c| c.0 == "False")
    })
    .await;
    assert!(
        message.contains("zai-api-key") && !message.contains("CHANGE_ME\""),
        "{message}"
    );
    assert_eq!(
        config_hash(&deployments.get("shrimp-gateway").await.unwrap()),
        hash
    );

    // Fix it: Ready for secrets within seconds, and the pod rolls.
    secrets
        .patch(
            "shrimp-secrets",
            &PatchParams::default(),
            &Patch::Merge(json!({"stringData": {"zai-api-key": "9a8b7c6d5e4f.RealKeyAfterFix"}})),
        )
        .await
        .unwrap();
    wait("SecretsResolved=True after the fix", || async {
        (condition(&agents.get("shrimp").await.ok()?, "SecretsResolved")?.0 == "True").then_some(())
    })
    .await;
    wait("the pod template to roll", || async {
        (config_hash(&deployments.get("shrimp-gateway").await.ok()?) != hash).then_some(())
    })
    .await;

    // Removing a Cron removes its CronJob.
    crons
        .delete("evening-patrol", &DeleteParams::default())
        .await
        .unwrap();
    wait("evening CronJob gone", || async {
        jobs.get_opt("shrimp-evening-patrol")
            .await
            .ok()?
            .is_none()
            .then_some(())
    })
    .await;

    // Deleting the Agent removes everything, the cluster-scoped binding included.
    agents
        .delete("shrimp", &DeleteParams::default())
        .await
        .unwrap();
    let crbs = Api::<ClusterRoleBinding>::all(client.clone());
    let crb = format!("clawops-{ns}-shrimp-reader");
    wait("Agent gone", || async {
        agents.get_opt("shrimp").await.ok()?.is_none().then_some(())
    })
    .await;
    wait("ClusterRoleBinding gone", || async {
        crbs.get_opt(&crb).await.ok()?.is_none().then_some(())
    })
    .await;
    wait("Deployment garbage-collected", || async {
        deployments
            .get_opt("shrimp-gateway")
            .await
            .ok()?
            .is_none()
            .then_some(())
    })
    .await;

    namespaces
        .delete(&ns, &DeleteParams::default())
        .await
        .unwrap();
}
