//! From `provider/model` to where and how to call it: Z.AI's endpoints or any
//! OpenAI-compatible base URL.

use crate::crd::agent::ZaiEndpoint;
use crate::plan::gateway_config::ModelConfig;

/// One model to try.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// As configured, e.g. `zai/glm-4.7`.
    pub reference: String,
    /// Sent as `model`, e.g. `glm-4.7`.
    pub model: String,
    /// Ends before `/chat/completions`.
    pub base_url: String,
    /// GLM takes `thinking: {type: disabled}`; others do not know the field.
    pub is_zai: bool,
}

pub fn zai_base_url(endpoint: ZaiEndpoint) -> &'static str {
    match endpoint {
        ZaiEndpoint::Global => "https://api.z.ai/api/paas/v4",
        ZaiEndpoint::CodingGlobal => "https://api.z.ai/api/coding/paas/v4",
        ZaiEndpoint::Cn => "https://open.bigmodel.cn/api/paas/v4",
        ZaiEndpoint::CodingCn => "https://open.bigmodel.cn/api/coding/paas/v4",
    }
}

/// The primary, then the fallbacks, in order.
pub fn targets(cfg: &ModelConfig) -> Vec<Target> {
    std::iter::once(&cfg.primary)
        .chain(&cfg.fallbacks)
        .map(|reference| {
            let (provider, model) = reference.split_once('/').unwrap_or(("zai", reference));
            let is_zai = matches!(provider, "zai" | "z.ai" | "z-ai");
            let base_url = cfg.base_url.clone().unwrap_or_else(|| {
                zai_base_url(cfg.endpoint.unwrap_or(ZaiEndpoint::Global)).to_string()
            });
            Target {
                reference: reference.clone(),
                model: model.to_string(),
                base_url: base_url.trim_end_matches('/').to_string(),
                is_zai,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(primary: &str) -> ModelConfig {
        ModelConfig {
            primary: primary.into(),
            fallbacks: vec![],
            api_key_env: None,
            base_url: None,
            endpoint: None,
            thinking: false,
            timeout_seconds: None,
        }
    }

    #[test]
    fn zai_defaults_to_the_general_endpoint_and_endpoints_are_selectable() {
        let t = &targets(&cfg("zai/glm-4.7"))[0];
        assert_eq!(
            (t.model.as_str(), t.base_url.as_str(), t.is_zai),
            ("glm-4.7", "https://api.z.ai/api/paas/v4", true)
        );
        let mut c = cfg("z.ai/glm-4.6");
        c.endpoint = Some(ZaiEndpoint::CodingCn);
        assert_eq!(
            targets(&c)[0].base_url,
            "https://open.bigmodel.cn/api/coding/paas/v4"
        );
        assert!(targets(&c)[0].is_zai);
    }

    #[test]
    fn base_url_and_fallbacks() {
        let mut c = cfg("openai/gpt-4o-mini");
        c.base_url = Some("http://127.0.0.1:9000/v1/".into());
        c.fallbacks = vec!["zai/glm-4.5-flash".into()];
        let t = targets(&c);
        assert_eq!(t.len(), 2);
        assert_eq!(
            (t[0].base_url.as_str(), t[0].is_zai),
            ("http://127.0.0.1:9000/v1", false)
        );
        assert_eq!(t[1].model, "glm-4.5-flash");
    }
}
