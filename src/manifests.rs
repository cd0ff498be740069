//! Reads CR and Secret YAML (multi-document files) into typed objects, for `render` and the
//! standalone gateway. Errors name the file, the document and the field.

use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use serde::Deserialize;

use crate::crd::{Agent, Channel, Cron, NodePairing};

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("reading {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: document {doc}: {message}")]
    Parse {
        path: String,
        doc: usize,
        message: String,
    },
    #[error(
        "{path}: document {doc}: kind {kind} (apiVersion {api_version}) is not one of Agent, Channel, Cron, NodePairing (clawops.dev/v1alpha1) or Secret (v1)"
    )]
    UnknownKind {
        path: String,
        doc: usize,
        kind: String,
        api_version: String,
    },
}

/// The objects found in one or more files.
#[derive(Debug, Default, Clone)]
pub struct Manifests {
    pub agents: Vec<Agent>,
    pub channels: Vec<Channel>,
    pub crons: Vec<Cron>,
    pub node_pairings: Vec<NodePairing>,
    pub secrets: Vec<Secret>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TypeMeta {
    #[serde(default)]
    api_version: String,
    #[serde(default)]
    kind: String,
}

impl Manifests {
    pub fn from_files(paths: &[String], namespace: &str) -> Result<Self, ManifestError> {
        let mut m = Self::default();
        for path in paths {
            let text = std::fs::read_to_string(path).map_err(|source| ManifestError::Read {
                path: path.clone(),
                source,
            })?;
            m.add_yaml(path, &text, namespace)?;
        }
        Ok(m)
    }

    /// Adds every document of `text`; objects without a namespace get `namespace`.
    pub fn add_yaml(
        &mut self,
        path: &str,
        text: &str,
        namespace: &str,
    ) -> Result<(), ManifestError> {
        for (i, doc) in serde_yaml::Deserializer::from_str(text).enumerate() {
            let doc_no = i + 1;
            let parse = |message: String| ManifestError::Parse {
                path: path.into(),
                doc: doc_no,
                message,
            };
            let value = serde_yaml::Value::deserialize(doc).map_err(|e| parse(e.to_string()))?;
            if value.is_null() {
                continue;
            }
            let tm: TypeMeta =
                serde_yaml::from_value(value.clone()).map_err(|e| parse(e.to_string()))?;
            fn typed<T: serde::de::DeserializeOwned + ResourceExt>(
                value: serde_yaml::Value,
                ns: &str,
                parse: impl Fn(String) -> ManifestError,
            ) -> Result<T, ManifestError> {
                // A Secret's values never appear in an error, even a misspelt one.
                let secret =
                    value.get("kind").and_then(serde_yaml::Value::as_str) == Some("Secret");
                let mut obj: T = serde_path_to_error::deserialize(value).map_err(|e| {
                    let path = e.path().to_string();
                    if secret {
                        parse(format!("{path}: invalid value (not shown, it may be secret); Secret data values must be strings"))
                    } else {
                        parse(format!("{path}: {}", e.into_inner()))
                    }
                })?;
                if obj.namespace().is_none() {
                    obj.meta_mut().namespace = Some(ns.to_string());
                }
                Ok(obj)
            }
            match (tm.api_version.as_str(), tm.kind.as_str()) {
                ("clawops.dev/v1alpha1", "Agent") => {
                    self.agents.push(typed(value, namespace, parse)?)
                }
                ("clawops.dev/v1alpha1", "Channel") => {
                    self.channels.push(typed(value, namespace, parse)?)
                }
                ("clawops.dev/v1alpha1", "Cron") => {
                    self.crons.push(typed(value, namespace, parse)?)
                }
                ("clawops.dev/v1alpha1", "NodePairing") => {
                    self.node_pairings.push(typed(value, namespace, parse)?)
                }
                ("v1", "Secret") => self.secrets.push(typed(value, namespace, parse)?),
                _ => {
                    return Err(ManifestError::UnknownKind {
                        path: path.into(),
                        doc: doc_no,
                        kind: tm.kind,
                        api_version: tm.api_version,
                    });
                }
            }
        }
        Ok(())
    }
}
