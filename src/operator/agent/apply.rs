//! Apply: write an Agent's planned objects in order, create the once-only ones, and prune what
//! the spec dropped.

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use kube::{Api, Client, Resource, ResourceExt};

use super::{Error, status};
use crate::consts::*;
use crate::operator::apply::{self, ApplyError, Change, Object, Plan};
use crate::operator::context::Context;
use crate::plan::build::{self, GatewayObjects, meta};
use crate::plan::resolve::Resolved;

/// Plans the writes into one namespace, choosing the API by the object's type.
struct Writer<'a> {
    client: &'a Client,
    ns: &'a str,
    plans: Vec<Plan>,
}

impl Writer<'_> {
    fn api<K: Object + Resource<Scope = NamespaceResourceScope>>(&self) -> Api<K> {
        Api::namespaced(self.client.clone(), self.ns)
    }
    fn apply<K: Object + Resource<Scope = NamespaceResourceScope>>(&mut self, obj: &K) {
        self.plans
            .push(apply::plan_apply(self.api(), obj.clone(), true));
    }
    fn create_once<K: Object + Resource<Scope = NamespaceResourceScope>>(&mut self, obj: &K) {
        self.plans
            .push(apply::plan_create_once(self.api(), obj.clone()));
    }
    /// Deletes this Agent's objects of kind `K` that are not in `keep`.
    fn prune<K: Object + Resource<Scope = NamespaceResourceScope>>(
        &mut self,
        selector: &str,
        keep: impl IntoIterator<Item = String>,
    ) {
        self.plans.push(apply::plan_prune(
            self.api::<K>(),
            selector.to_string(),
            keep.into_iter().collect(),
        ));
    }
}

/// Whether the ClusterRole that `clusterAccess: read` binds to exists. The chart owns it (so
/// uninstalling removes it); binding to a missing role would be refused by the API server.
pub async fn cluster_role_exists(client: &Client, name: &str) -> Result<bool, Error> {
    let found = Api::<ClusterRole>::all(client.clone())
        .get_metadata_opt(name)
        .await
        .map_err(|source| ApplyError {
            action: "reading",
            kind: "ClusterRole".into(),
            name: name.into(),
            source,
        })?;
    Ok(found.is_some())
}

/// The chart's ClusterRoles `agent` needs bound that do not exist.
pub async fn missing_cluster_roles(
    client: &Client,
    agent: &crate::crd::Agent,
) -> Result<Vec<&'static str>, Error> {
    let mut missing = Vec::new();
    if agent.spec.cluster_access != crate::crd::agent::ClusterAccess::Read {
        return Ok(missing);
    }
    let mut needed = vec![CLUSTER_READER_ROLE];
    if agent.spec.tools.pod_logs {
        needed.push(POD_LOG_READER_ROLE);
    }
    for role in needed {
        if !cluster_role_exists(client, role).await? {
            missing.push(role);
        }
    }
    Ok(missing)
}

/// Applies every object, creates the once-only ones, and prunes what the spec dropped. Without
/// `bind_reader` a wanted ClusterRoleBinding is left as it is (its role is missing).
pub async fn apply_all(
    ctx: &Context,
    resolved: &Resolved,
    o: &GatewayObjects,
    bind_reader: bool,
) -> Result<Vec<Change>, Error> {
    let agent = &*resolved.agent;
    let ns = agent.namespace().unwrap_or_default();
    let mut w = Writer {
        client: &ctx.client,
        ns: &ns,
        plans: Vec::new(),
    };

    if let Some(token) = &resolved.new_token {
        let secret = build::secrets::token_secret(agent, token);
        let create = apply::plan_create(w.api(), secret);
        w.plans.push(Box::pin(async move { Ok(vec![create]) }));
    }
    w.apply(&o.service_account);
    w.apply(&o.role);
    w.apply(&o.role_binding);
    let crbs = Api::<ClusterRoleBinding>::all(ctx.client.clone());
    for (wanted, name) in [
        (&o.cluster_role_binding, meta::cluster_binding_name(agent)),
        (&o.pod_log_binding, meta::pod_log_binding_name(agent)),
    ] {
        match wanted {
            Some(crb) if bind_reader => {
                w.plans
                    .push(apply::plan_apply(crbs.clone(), crb.clone(), true))
            }
            Some(_) => {}
            None => w
                .plans
                .push(apply::plan_delete_if_present(crbs.clone(), name)),
        }
    }
    w.apply(&o.cron_service_account);
    w.apply(&o.cron_role);
    w.apply(&o.cron_role_binding);
    w.apply(&o.config_map);
    if let Some(cm) = &o.tailscale_serve {
        w.apply(cm);
    }
    if let Some(s) = &o.tailscale_state {
        w.create_once(s);
    }
    // A claim's class and size cannot be changed in place (local-path cannot even grow one),
    // so it is created once; resize or replace it by hand.
    w.create_once(&o.pvc);
    // A Channel created just after its Agent would roll a new gateway a second time, so
    // without one only an existing gateway is changed.
    let create_gateway = !resolved.channels.is_empty();
    w.plans.push(apply::plan_apply(
        w.api(),
        o.deployment.clone(),
        create_gateway,
    ));
    w.apply(&o.service);
    if let Some(i) = &o.ingress {
        w.apply(i);
    }
    if let Some(np) = &o.network_policy {
        w.apply(np);
    }
    for cj in o.cron_jobs.iter().chain(&o.backup_cron_job) {
        w.apply(cj);
    }

    // Prune the kinds whose objects come and go with the spec: only when what is kept differs
    // from the last successful prune (or the operator has not pruned this Agent yet), since a
    // prune lists five kinds and only the spec makes objects of ours go.
    // The generated token survives every spec change; the Tailscale state goes with the sidecar.
    let mut secrets = names(&o.tailscale_state);
    secrets.push(meta::token_secret_name(agent));
    let keep = [
        names(o.cron_jobs.iter().chain(&o.backup_cron_job)),
        names(&o.ingress),
        names(&o.network_policy),
        names(std::iter::once(&o.config_map).chain(&o.tailscale_serve)),
        secrets,
    ];
    let key = agent.uid().unwrap_or_else(|| status::key(agent));
    let prune = ctx.pruned.lock().expect("prune lock").get(&key) != Some(&keep);
    if prune {
        let sel = meta::instance_selector(&agent.name_any());
        let [cron_jobs, ingresses, policies, config_maps, secrets] = keep.clone();
        w.prune::<CronJob>(&sel, cron_jobs);
        w.prune::<Ingress>(&sel, ingresses);
        w.prune::<NetworkPolicy>(&sel, policies);
        w.prune::<ConfigMap>(&sel, config_maps);
        w.prune::<Secret>(&sel, secrets);
    }
    let changes = apply::run(w.plans).await?;
    if prune {
        ctx.pruned.lock().expect("prune lock").insert(key, keep);
    }
    Ok(changes)
}

fn names<'a, K: Resource + 'a>(objects: impl IntoIterator<Item = &'a K>) -> Vec<String> {
    objects.into_iter().map(ResourceExt::name_any).collect()
}
