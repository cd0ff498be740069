//! What a migrating user should do about each Clawdbot key an import leaves over: not needed
//! in clawops (and why), or not carried over (and what to do instead).

/// Why a key left over is not carried, or not needed: what a migrating user should do.
pub fn advice(key: &str) -> (bool, String) {
    let not_needed = |why: &str| (true, why.to_string());
    let todo = |what: &str| (false, what.to_string());
    let first = key.split('.').next().unwrap_or(key);
    match key {
        "gateway.mode" | "gateway.bind" => not_needed(
            "the operator runs the gateway (standalone it listens on loopback; --listen widens it)",
        ),
        "gateway.auth.mode" => not_needed("clawops always uses a token"),
        "gateway.auth.password" => todo(
            "clawops signs in with a token, not a password: use the gateway token (the Secret's gateway-token, or the generated one)",
        ),
        k if k.starts_with("gateway.tailscale") => todo(
            "set spec.gateway.expose.tailscale with an auth key Secret (manifests/examples/shrimp-tailscale.yaml)",
        ),
        k if k.starts_with("gateway.reload") => {
            not_needed("the operator rolls the gateway when its config changes")
        }
        k if k.starts_with("channels.telegram.stream")
            || k.starts_with("channels.telegram.draftChunk")
            || k.starts_with("channels.telegram.block") =>
        {
            not_needed("clawops sends each reply whole")
        }
        "channels.telegram.textChunkLimit" | "channels.telegram.chunkMode" => not_needed(
            "clawops splits replies at paragraphs, then lines, under Telegram's 4096-character limit",
        ),
        "channels.telegram.tokenFile" => todo(
            "put the file's content in the Secret under telegram-bot-token (--secrets-out writes it when the env file has TELEGRAM_BOT_TOKEN)",
        ),
        k if k.starts_with("channels.telegram.webhook") => {
            not_needed("clawops long-polls (no public webhook needed)")
        }
        k if k.starts_with("channels.telegram.accounts") => todo(
            "clawops has one bot per Channel: write one Channel per extra account (each with its own token Secret)",
        ),
        k if k.starts_with("channels.telegram.groupAllowFrom") => {
            todo("list the senders under each group's allowFrom in spec.telegram.groups")
        }
        k if k.starts_with("channels.") => {
            todo("only Telegram is supported: this channel is not carried over")
        }
        "cron.store" | "cron.maxConcurrentRuns" => {
            not_needed("each Cron is a Kubernetes CronJob (or a timer standalone)")
        }
        k if k.starts_with("agents.defaults.models") => todo(
            "per-model aliases and params are not supported; set spec.model.primary and fallbacks",
        ),
        "agents.defaults.workspace" => {
            not_needed("IDENTITY.md was read into spec.identity.persona")
        }
        k if k.starts_with("agents.defaults.sandbox") || k.contains(".sandbox") => not_needed(
            "clawops runs no sandboxed exec on the gateway: commands run on paired nodes under their policy",
        ),
        k if k.starts_with("agents.list") => todo(
            "only the default agent is imported: import again with --name for another one, or write its Agent by hand",
        ),
        k if k.starts_with("models.") => todo(
            "only the provider of the primary model is carried (spec.model.baseUrl); others need their own Agent",
        ),
        k if k.starts_with("tools.") => {
            todo("not supported: clawops offers the cluster tools and node exec (spec.tools)")
        }
        k if k.starts_with("meta.") || k.starts_with("wizard.") => {
            not_needed("Clawdbot's own bookkeeping")
        }
        _ if [
            "hooks",
            "browser",
            "discovery",
            "canvasHost",
            "plugins",
            "skills",
            "messages",
            "session",
            "logging",
            "ui",
            "commands",
            "bindings",
            "approvals",
        ]
        .contains(&first) =>
        {
            todo("not supported by clawops; nothing was imported from it")
        }
        _ => todo(
            "not a Clawdbot key (Clawdbot refuses the config too: Unrecognized key); nothing was imported from it",
        ),
    }
}
