//! `clawdbot.json` to an Agent and a Channel: each key is taken out as it is mapped, so what is
//! left at the end is exactly what was not, and every such key is reported (unknown keys never
//! pass silently). Secret values (`botToken`, `auth.token`, the model key) go to the Secret, never
//! into the CRs.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::advice::advice;
use super::report::Report;

/// The Secret keys an import fills, as the example names them.
pub const BOT_TOKEN_KEY: &str = "telegram-bot-token";
pub const MODEL_KEY_KEY: &str = "zai-api-key";
pub const GATEWAY_TOKEN_KEY: &str = "gateway-token";
/// The Channel an import writes (Clawdbot has one Telegram channel per install).
pub const CHANNEL: &str = "telegram";

/// The Agent and Channel as JSON (checked against the CRD types by the caller), and the secret
/// values found.
#[derive(Debug, Default)]
pub struct Mapped {
    pub agent: Value,
    pub channel: Option<Value>,
    pub secrets: BTreeMap<&'static str, String>,
    /// `tools.exec` as NodePairing `exec` defaults.
    pub exec: Map<String, Value>,
    /// `cron.enabled: false`: the Crons are written suspended.
    pub crons_off: bool,
    /// The Agent's time zone, for Crons without their own.
    pub time_zone: Option<String>,
}

/// Removes and returns the value at `path`.
pub fn take(v: &mut Value, path: &[&str]) -> Option<Value> {
    let (last, parents) = path.split_last()?;
    let mut cur = v;
    for p in parents {
        cur = cur.get_mut(*p)?;
    }
    cur.as_object_mut()?.remove(*last)
}

fn take_str(v: &mut Value, path: &[&str]) -> Option<String> {
    match take(v, path)? {
        Value::String(s) => Some(s),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Leaf keys still in `v` (empty objects dropped), as dotted paths.
pub fn leftovers(v: &Value, prefix: &str, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                let path = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                match child {
                    Value::Object(c) if c.is_empty() => {}
                    Value::Object(_) => leftovers(child, &path, out),
                    _ => out.push(path),
                }
            }
        }
        _ if !prefix.is_empty() => out.push(prefix.to_string()),
        _ => {}
    }
}

/// `${VAR}` replaced from `env` in every string (as Clawdbot does before validation); `$${VAR}`
/// stays literal. Unset names are returned.
pub fn substitute(v: &mut Value, env: &BTreeMap<String, String>, missing: &mut Vec<String>) {
    match v {
        Value::String(s) if s.contains("${") => {
            let mut out = String::new();
            let mut rest = s.as_str();
            while let Some(at) = rest.find("${") {
                let escaped = at > 0 && rest.as_bytes()[at - 1] == b'$';
                let Some(end) = rest[at..].find('}') else {
                    break;
                };
                let name = &rest[at + 2..at + end];
                let valid = name
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_uppercase() || c == '_')
                    && name
                        .chars()
                        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
                if escaped {
                    out.push_str(&rest[..at - 1]);
                    out.push_str(&rest[at..at + end + 1]);
                } else if valid {
                    out.push_str(&rest[..at]);
                    match env.get(name).filter(|v| !v.is_empty()) {
                        Some(value) => out.push_str(value),
                        None => {
                            missing.push(name.to_string());
                            out.push_str(&rest[at..at + end + 1]);
                        }
                    }
                } else {
                    out.push_str(&rest[..at + end + 1]);
                }
                rest = &rest[at + end + 1..];
            }
            out.push_str(rest);
            *s = out;
        }
        Value::Array(a) => a.iter_mut().for_each(|x| substitute(x, env, missing)),
        Value::Object(m) => m.values_mut().for_each(|x| substitute(x, env, missing)),
        _ => {}
    }
}

/// `z.ai/…` and `z-ai/…` are Clawdbot's spellings of `zai/…`.
fn model_ref(r: &str) -> String {
    for alias in ["z.ai/", "z-ai/"] {
        if let Some(rest) = r.strip_prefix(alias) {
            return format!("zai/{rest}");
        }
    }
    r.to_string()
}

/// `model` as a string or `{primary, fallbacks}`.
fn model_of(v: Option<Value>) -> Option<(String, Vec<String>)> {
    match v? {
        Value::String(s) => Some((model_ref(&s), vec![])),
        Value::Object(mut m) => {
            let primary = m.remove("primary")?.as_str().map(model_ref)?;
            let fallbacks = m
                .remove("fallbacks")
                .and_then(|f| f.as_array().cloned())
                .unwrap_or_default()
                .iter()
                .filter_map(Value::as_str)
                .map(model_ref)
                .collect();
            Some((primary, fallbacks))
        }
        _ => None,
    }
}

/// A line `Name: …` (with or without markdown bold) of IDENTITY.md.
fn identity_field(text: &str, field: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let l = l.trim().trim_start_matches(['-', '*', ' ']);
        let l = l.replace("**", "");
        let (k, v) = l.split_once(':')?;
        (k.trim().eq_ignore_ascii_case(field) && !v.trim().is_empty()).then(|| v.trim().to_string())
    })
}

/// Reports every key left in `v` with the advice for it.
fn report_leftovers(v: &Value, prefix: &str, file: &str, report: &mut Report) {
    let mut rest = Vec::new();
    leftovers(v, prefix, &mut rest);
    for r in rest {
        let (needless, what) = advice(&r);
        if needless {
            report.not_needed(format!("{file}: {r}"), what);
        } else {
            report.not_carried(format!("{file}: {r}"), what);
        }
    }
}

/// Maps the config (already `${VAR}`-substituted). `name` is the Agent's name.
pub fn map(
    mut cfg: Value,
    file: &str,
    identity: Option<&(String, String)>,
    env: &BTreeMap<String, String>,
    name: &str,
    report: &mut Report,
) -> Mapped {
    let at = |key: &str| format!("{file}: {key}");
    let mut out = Mapped::default();
    let secrets_name = format!("{name}-secrets");

    // The default agent: `default: true`, else the first entry.
    let mut list = take(&mut cfg, &["agents", "list"])
        .and_then(|l| l.as_array().cloned())
        .unwrap_or_default();
    let default_at = list
        .iter()
        .position(|a| a.get("default").and_then(Value::as_bool) == Some(true))
        .unwrap_or(0);
    let mut me = if list.is_empty() {
        json!({})
    } else {
        list.remove(default_at)
    };
    for other in &list {
        let id = other.get("id").and_then(Value::as_str).unwrap_or("?");
        report.not_carried(
            at(&format!("agents.list[id={id}]")),
            "only the default agent is imported: import again with --name for another one, or write its Agent by hand",
        );
    }
    let agent_id = take_str(&mut me, &["id"]).unwrap_or_else(|| "main".into());
    take(&mut me, &["default"]);
    let mut ident = take(&mut me, &["identity"]).unwrap_or(json!({}));
    let persona = identity.map(|(_, t)| t.trim().to_string());
    let display = take_str(&mut ident, &["name"])
        .or_else(|| persona.as_deref().and_then(|p| identity_field(p, "name")))
        .unwrap_or_else(|| agent_id.clone());
    let emoji = take_str(&mut ident, &["emoji"])
        .or_else(|| persona.as_deref().and_then(|p| identity_field(p, "emoji")));
    for k in ["theme", "avatar"] {
        if take(&mut ident, &[k]).is_some() {
            report.not_needed(
                at(&format!("agents.list.identity.{k}")),
                "the persona carries the assistant's manner",
            );
        }
    }
    let mut identity_v = json!({ "name": display });
    if let Some(e) = emoji {
        identity_v["emoji"] = json!(e);
    }
    match persona {
        Some(p) if p.chars().count() > crate::crd::agent::PERSONA_MAX_CHARS as usize => {
            report.not_carried(
                identity.map_or_else(|| "IDENTITY.md".into(), |(f, _)| f.clone()),
                format!(
                    "{} characters, more than the {} a persona may have (it goes with every model call): shorten it and put it in spec.identity.persona",
                    p.chars().count(),
                    crate::crd::agent::PERSONA_MAX_CHARS
                ),
            );
        }
        Some(p) if !p.is_empty() => identity_v["persona"] = json!(p),
        _ => report.not_carried(
            "IDENTITY.md",
            "no IDENTITY.md in the workspace: the assistant has no persona; write one in spec.identity.persona",
        ),
    }

    // The model: the agent's own, else the defaults'.
    let own = model_of(take(&mut me, &["model"]));
    let defaults = model_of(take(&mut cfg, &["agents", "defaults", "model"]));
    let (primary, fallbacks) = own.or(defaults).unwrap_or_else(|| {
        report.not_carried(
            at("agents.defaults.model.primary"),
            "no model is configured: zai/glm-4.7 was written; change spec.model.primary if that is wrong",
        );
        ("zai/glm-4.7".into(), vec![])
    });
    let provider = primary.split('/').next().unwrap_or("").to_string();
    let mut model = json!({ "primary": primary });
    if !fallbacks.is_empty() {
        model["fallbacks"] = json!(fallbacks);
    }
    let base_url = take_str(&mut cfg, &["models", "providers", &provider, "baseUrl"]);
    let provider_key = take_str(&mut cfg, &["models", "providers", &provider, "apiKey"]);
    match (&base_url, provider.as_str()) {
        (Some(u), _) => model["baseUrl"] = json!(u),
        (None, "zai") => {
            // Clawdbot's built-in zai provider talks to the Coding Plan endpoint: the key works
            // only there.
            model["endpoint"] = json!("coding-global");
            report.not_needed(
                at("agents.defaults.model"),
                "Clawdbot's built-in zai provider uses the GLM Coding Plan endpoint: written as spec.model.endpoint: coding-global (use global for a pay-as-you-go key)",
            );
        }
        (None, other) => report.not_carried(
            at(&format!("models.providers.{other}.baseUrl")),
            format!("provider {other} needs spec.model.baseUrl (its OpenAI-compatible base URL)"),
        ),
    }
    let model_key = provider_key
        .or_else(|| take_str(&mut cfg, &["env", "ZAI_API_KEY"]))
        .or_else(|| take_str(&mut cfg, &["env", "vars", "ZAI_API_KEY"]))
        .or_else(|| env.get("ZAI_API_KEY").cloned())
        .or_else(|| env.get("Z_AI_API_KEY").cloned())
        .filter(|k| !k.is_empty());
    if let Some(k) = model_key {
        out.secrets.insert(MODEL_KEY_KEY, k);
    }
    model["apiKeySecretRef"] = json!({ "name": secrets_name, "key": MODEL_KEY_KEY });
    if let Some(t) = take_str(&mut cfg, &["agents", "defaults", "thinkingDefault"]) {
        model["thinking"] = json!(t != "off");
    }

    let mut spec = json!({ "identity": identity_v, "model": model });
    if let Some(n) =
        take(&mut cfg, &["agents", "defaults", "maxConcurrent"]).and_then(|n| n.as_u64())
    {
        spec["maxConcurrent"] = json!(n.clamp(1, 64));
    } else {
        report.not_needed(
            at("agents.defaults.maxConcurrent"),
            "not set: Clawdbot ran 4 model calls at once, clawops runs 1 (GLM plans allow little concurrency); raise spec.maxConcurrent if your plan allows",
        );
    }
    if let Some(every) = take_str(&mut cfg, &["agents", "defaults", "heartbeat", "every"]) {
        spec["heartbeat"] = json!({ "every": every });
    }
    if let Some(tz) = take_str(&mut cfg, &["agents", "defaults", "userTimezone"]) {
        out.time_zone = Some(tz.clone());
        spec["userTimezone"] = json!(tz);
    }
    if let Some(f) = take_str(&mut cfg, &["agents", "defaults", "timeFormat"]) {
        spec["timeFormat"] = json!(f);
    }

    // The gateway.
    let mut gateway = json!({});
    if let Some(p) = take(&mut cfg, &["gateway", "port"]).and_then(|p| p.as_u64())
        && p != 18789
    {
        gateway["port"] = json!(p);
    }
    let token = take_str(&mut cfg, &["gateway", "auth", "token"])
        .or_else(|| env.get("CLAWDBOT_GATEWAY_TOKEN").cloned())
        .filter(|t| !t.is_empty());
    match token {
        // The seed's lesson: an `.env` edit left CHANGE_ME. Carrying it would lock everyone out.
        Some(t) if crate::secrets::is_placeholder(&t) => report.placeholder(
            at("gateway.auth.token"),
            "the gateway token is a placeholder: not carried; the operator generates one (`kubectl get secret <name>-gateway-token`)",
        ),
        Some(t) => {
            out.secrets.insert(GATEWAY_TOKEN_KEY, t);
            gateway["authTokenSecretRef"] =
                json!({ "name": secrets_name, "key": GATEWAY_TOKEN_KEY });
        }
        None => {}
    }
    if let Some(p) = take(&mut cfg, &["gateway", "trustedProxies"]) {
        gateway["trustedProxies"] = p;
    }
    if let Some(b) = take_str(&mut cfg, &["gateway", "controlUi", "basePath"]) {
        gateway["controlUi"] = json!({ "basePath": b });
    }
    if take(&mut cfg, &["gateway", "controlUi", "enabled"]).and_then(|e| e.as_bool()) == Some(false)
    {
        report.not_carried(
            at("gateway.controlUi.enabled"),
            "the Control UI is always served (behind the token); keep the gateway unexposed if you do not want it reachable",
        );
    }
    if gateway.as_object().is_some_and(|g| !g.is_empty()) {
        spec["gateway"] = gateway;
    }

    // Telegram.
    let mut tg = take(&mut cfg, &["channels", "telegram"]).unwrap_or(Value::Null);
    if tg.is_object() {
        if take(&mut tg, &["enabled"]).and_then(|e| e.as_bool()) == Some(false) {
            report.not_carried(
                at("channels.telegram.enabled"),
                "Telegram was off: the Channel is written anyway; delete it if you do not want the bot to answer",
            );
        }
        let bot = take_str(&mut tg, &["botToken"])
            .or_else(|| env.get("TELEGRAM_BOT_TOKEN").cloned())
            .filter(|t| !t.is_empty());
        if let Some(b) = bot {
            out.secrets.insert(BOT_TOKEN_KEY, b);
        }
        let mut telegram = json!({
            "botTokenSecretRef": { "name": secrets_name, "key": BOT_TOKEN_KEY },
        });
        for k in ["dmPolicy", "groupPolicy"] {
            if let Some(v) = take_str(&mut tg, &[k]) {
                telegram[k] = json!(v);
            }
        }
        if let Some(a) = take(&mut tg, &["allowFrom"]).and_then(|a| a.as_array().cloned()) {
            let ids: Vec<String> = a
                .iter()
                .filter_map(|x| match x {
                    Value::String(s) => Some(s.clone()),
                    Value::Number(n) => Some(n.to_string()),
                    _ => None,
                })
                .collect();
            telegram["allowFrom"] = json!(ids);
        }
        if let Some(Value::Object(groups)) = take(&mut tg, &["groups"]) {
            let mut mapped = Map::new();
            for (id, mut g) in groups {
                let mut group = json!({});
                if let Some(m) = take(&mut g, &["requireMention"]) {
                    group["requireMention"] = m;
                }
                if let Some(a) = take(&mut g, &["allowFrom"]).and_then(|a| a.as_array().cloned()) {
                    let ids: Vec<String> = a
                        .iter()
                        .map(|x| x.as_str().map_or_else(|| x.to_string(), String::from))
                        .collect();
                    group["allowFrom"] = json!(ids);
                }
                let mut rest = Vec::new();
                leftovers(&g, "", &mut rest);
                for r in rest {
                    report.not_carried(
                        at(&format!("channels.telegram.groups.{id}.{r}")),
                        "per-group prompts, skills, tools and topics are not supported",
                    );
                }
                mapped.insert(id, group);
            }
            telegram["groups"] = Value::Object(mapped);
        }
        report_leftovers(&tg, "channels.telegram", file, report);
        out.channel = Some(super::resource(
            "Channel",
            CHANNEL,
            json!({ "agentRef": name, "telegram": telegram }),
        ));
    } else {
        report.not_carried(
            at("channels.telegram"),
            "no Telegram channel is configured: no Channel was written",
        );
    }

    if let Some(Value::Object(mut exec)) = take(&mut cfg, &["tools", "exec"]) {
        for (k, v) in exec.clone() {
            match k.as_str() {
                "security" | "ask" => {}
                "host" => {
                    exec.remove(&k);
                    if v != "node" {
                        report.not_needed(
                            at("tools.exec.host"),
                            "clawops runs commands on paired nodes only (never in the gateway's container)",
                        );
                    }
                }
                _ => {
                    exec.remove(&k);
                    report.not_carried(
                        at(&format!("tools.exec.{k}")),
                        "not supported: a node's policy is its exec settings (security, ask, askFallback, allowlist)",
                    );
                }
            }
        }
        out.exec = exec;
    }
    out.crons_off = take(&mut cfg, &["cron", "enabled"]).and_then(|e| e.as_bool()) == Some(false);
    // The env block's values were used for ${VAR} and the key above; they are never CR fields.
    take(&mut cfg, &["env"]);

    report_leftovers(&me, "agents.list", file, report);
    report_leftovers(&cfg, "", file, report);
    out.agent = super::resource("Agent", name, spec);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_are_substituted_as_clawdbot_does() {
        let env: BTreeMap<String, String> = [("TOKEN".to_string(), "t0k".to_string())]
            .into_iter()
            .collect();
        let mut v = json!({"a": "${TOKEN}", "b": ["x-${TOKEN}-y"], "c": "$${TOKEN}", "d": "${MISSING}", "e": "${lower}"});
        let mut missing = Vec::new();
        substitute(&mut v, &env, &mut missing);
        assert_eq!(v["a"], "t0k");
        assert_eq!(v["b"][0], "x-t0k-y");
        assert_eq!(v["c"], "${TOKEN}", "$$ keeps it literal");
        assert_eq!(v["d"], "${MISSING}");
        assert_eq!(v["e"], "${lower}", "only upper-case names are variables");
        assert_eq!(missing, ["MISSING"]);
    }

    #[test]
    fn what_is_left_is_listed_leaf_by_leaf() {
        let mut v =
            json!({"gateway": {"port": 1, "auth": {"token": "x"}}, "system": {"prompt": "p"}});
        take(&mut v, &["gateway", "auth", "token"]);
        let mut rest = Vec::new();
        leftovers(&v, "", &mut rest);
        assert_eq!(rest, ["gateway.port", "system.prompt"]);
    }

    #[test]
    fn identity_lines_are_read_with_or_without_bold() {
        let t = "# IDENTITY.md\n- **Name:** 聪明小虾\n- Emoji: 🦐\n";
        assert_eq!(identity_field(t, "name").as_deref(), Some("聪明小虾"));
        assert_eq!(identity_field(t, "emoji").as_deref(), Some("🦐"));
        assert_eq!(identity_field(t, "vibe"), None);
    }
}
