//! The API side of the cluster tools: what a read was (verb, resource, namespace, name), so that
//! whatever the API server answers becomes a result the model can act on: a refusal names the
//! RBAC rule the gateway lacks, a 404 the object that is not there.

use crate::consts::CLUSTER_READER_ROLE;
use crate::gateway::tools::ToolError;

/// One read, described for its error messages.
#[derive(Clone, Copy, Debug)]
pub struct Read<'a> {
    /// `get` or `list`.
    pub verb: &'static str,
    /// As in an RBAC rule: `pods`, `pods/log`, `nodes.metrics.k8s.io`.
    pub resource: &'a str,
    /// One object of the resource in words: `pod`.
    pub singular: &'a str,
    pub namespace: Option<&'a str>,
    pub name: Option<&'a str>,
}

impl Read<'_> {
    fn place(&self) -> String {
        match self.namespace {
            Some(ns) => format!(" in namespace {ns}"),
            None => String::new(),
        }
    }

    /// What the API server's answer means for the model.
    pub fn error(&self, e: kube::Error) -> ToolError {
        let kube::Error::Api(s) = e else {
            return ToolError::Failed(format!("the API server could not be reached: {e}"));
        };
        let message = s.message.trim();
        match s.code {
            403 => ToolError::Failed(format!(
                "the gateway's ServiceAccount may not {} {}{} (RBAC: {message}; the read-only view is the {CLUSTER_READER_ROLE} ClusterRole)",
                self.verb,
                self.resource,
                match self.namespace {
                    Some(ns) => format!(" in namespace {ns}"),
                    None => " cluster-wide".into(),
                },
            )),
            404 => match self.name {
                Some(name) => {
                    ToolError::Failed(format!("no {} {name}{}", self.singular, self.place()))
                }
                None => ToolError::Failed(format!(
                    "{} is not served by this cluster ({message})",
                    self.resource
                )),
            },
            // The request was well formed but not what the API server takes (a label selector
            // it cannot parse, a container the pod does not have): the model can fix it.
            400 => ToolError::BadArguments(format!("the API server refused it: {message}")),
            code => ToolError::Failed(format!("the API server answered {code}: {message}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(code: u16, message: &str) -> kube::Error {
        kube::Error::Api(
            kube::core::Status::failure(message, "x")
                .with_code(code)
                .boxed(),
        )
    }

    const PODS: Read = Read {
        verb: "list",
        resource: "pods",
        singular: "pod",
        namespace: Some("prod"),
        name: None,
    };

    #[test]
    fn answers_become_results_the_model_can_act_on() {
        let ToolError::Failed(m) =
            PODS.error(api(403, "pods is forbidden: User \"sa\" cannot list"))
        else {
            panic!()
        };
        assert!(
            m.starts_with("the gateway's ServiceAccount may not list pods in namespace prod (RBAC: pods is forbidden"),
            "{m}"
        );
        let get = Read {
            verb: "get",
            name: Some("web"),
            ..PODS
        };
        assert_eq!(
            get.error(api(404, "pods \"web\" not found")),
            ToolError::Failed("no pod web in namespace prod".into())
        );
        let nodes = Read {
            namespace: None,
            resource: "nodes",
            ..PODS
        };
        let ToolError::Failed(m) = nodes.error(api(403, "forbidden")) else {
            panic!()
        };
        assert!(m.contains("may not list nodes cluster-wide"), "{m}");
        assert!(matches!(
            PODS.error(api(400, "unable to parse requirement")),
            ToolError::BadArguments(m) if m.contains("unable to parse requirement")
        ));
        assert_eq!(
            PODS.error(api(500, "etcd timeout")),
            ToolError::Failed("the API server answered 500: etcd timeout".into())
        );
    }
}
