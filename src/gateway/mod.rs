//! `clawops gateway`: the process an Agent's Deployment runs, and the standalone assistant.
//! It loads its config, opens its state directory, answers on its Telegram channels through
//! the model, and serves health, metrics and the token-protected API on one port. This module
//! is start-up and wiring only: the [`Gateway`] the features share and [`run`], which starts
//! them; each feature (api, telegram, assistant, cron, alerts, heartbeat, mirror) is a module
//! below that owns its state.

pub mod alerts;
pub mod api;
pub mod assistant;
pub mod cron;
pub mod heartbeat;
pub mod listen;
pub mod load;
pub mod metrics;
pub mod mirror;
pub mod nodes;
pub mod prompts;
pub mod telegram;
pub mod tools;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};

use crate::crd::agent::ClusterAccess;
use crate::plan::gateway_config::GatewayConfig;
use crate::secrets::{self, SecretProblem};
use crate::util::state_dir::{StateDir, StateError};
use api::auth::TokenAuth;
use assistant::model;
use metrics::GatewayMetrics;
use telegram::TelegramChannel;

/// Where the config comes from.
pub enum ConfigSource {
    /// `gateway.json`, as the operator renders it.
    File(PathBuf),
    /// Agent/Channel/Cron YAML, rendered here; `agent` picks one of several.
    Manifests {
        files: Vec<String>,
        agent: Option<String>,
    },
}

pub struct GatewayOptions {
    pub source: ConfigSource,
    pub state_dir: PathBuf,
    /// Address to listen on; by default see [`listen::choose`].
    pub listen: Option<SocketAddr>,
    pub polling: telegram::Polling,
}

/// A secret read from the environment, or why it cannot be used (never the value).
pub fn env_secret(name: &str) -> Result<SecretString, String> {
    let value = std::env::var(name).map_err(|_| format!("{name} is not set"))?;
    // Secrets made with `kubectl create secret --from-file` usually end in a newline.
    let value = SecretString::from(value.trim().to_string());
    secrets::check_value(&value).map_err(|p| match p {
        SecretProblem::Empty => format!("{name} is empty"),
        _ => format!("{name} is a placeholder, not a real secret"),
    })?;
    Ok(value)
}

/// The running gateway's wiring, shared by its features: config, token, state directory,
/// metrics, assistant, channels, cluster client, and each feature's object typed by its module.
pub struct Gateway {
    pub config: GatewayConfig,
    pub auth: TokenAuth,
    pub state: StateDir,
    pub metrics: Arc<GatewayMetrics>,
    pub assistant: assistant::Assistant,
    pub started: Instant,
    /// Why the model is unusable, if it is.
    pub model_problem: Option<String>,
    /// Channels whose bot token is set; the others are disabled with a reason.
    pub channels: Vec<Arc<TelegramChannel>>,
    pub channel_problems: Vec<(String, String)>,
    pub channels_started: AtomicBool,
    /// Told when the gateway should stop so that its next start applies a restored backup.
    pub restart: tokio::sync::Notify,
    /// The cluster, when the gateway may read it (in a pod, or standalone with a kubeconfig).
    pub kube: Option<kube::Client>,
    /// What the patrol's gateway check counted last time.
    pub patrol_marks: cron::patrol::PatrolMarks,
    /// Where Cron runs are mirrored, in a cluster.
    pub cron_status: Option<cron::status::CronStatusWriter>,
    /// Where heartbeat news goes: the chat the agent last answered.
    pub last_chat: heartbeat::LastChat,
    /// Paired machines and their connections.
    pub nodes: nodes::Nodes,
    /// Questions to the owner waiting for a button press.
    pub prompts: prompts::Prompts,
    /// Every tool call of the assistant.
    pub tool_audit: tools::audit::ToolAudit,
    /// What the alerts told and cleared, for the Control UI.
    pub alerts: Arc<alerts::Board>,
}

impl Gateway {
    pub fn new(
        config: GatewayConfig,
        auth: TokenAuth,
        state: StateDir,
        retry: model::RetryPolicy,
        polling: telegram::Polling,
    ) -> Result<Self, StateError> {
        let metrics = Arc::new(GatewayMetrics::default());
        // One limit for chats, crons and heartbeat together (the GLM 429 lesson).
        let slots = Arc::new(tokio::sync::Semaphore::new(
            config.agent.max_concurrent.max(1) as usize,
        ));
        let retry = model::RetryPolicy {
            timeout: config
                .agent
                .model
                .timeout_seconds
                .map_or(retry.timeout, |s| Duration::from_secs(s.into())),
            ..retry
        };
        let client = model::ModelClient::new(&config.agent.model, slots, retry, metrics.clone());
        let model_problem = client.key_problem();
        let assistant = assistant::Assistant::new(config.agent.clone(), client, state.clone());
        let mut channels = Vec::new();
        let mut channel_problems = Vec::new();
        for c in &config.channels {
            match env_secret(&c.telegram.bot_token_env) {
                Ok(token) => channels.push(Arc::new(TelegramChannel::new(
                    c.clone(),
                    token.expose_secret(),
                    state.clone(),
                    polling,
                )?)),
                Err(why) => channel_problems.push((c.name.clone(), why)),
            }
        }
        let nodes = nodes::Nodes::new(state.clone());
        let state_for_audit = state.clone();
        Ok(Self {
            config,
            auth,
            state,
            metrics,
            assistant,
            started: Instant::now(),
            model_problem,
            channels,
            channel_problems,
            channels_started: AtomicBool::new(false),
            restart: tokio::sync::Notify::new(),
            kube: None,
            patrol_marks: cron::patrol::PatrolMarks::default(),
            cron_status: None,
            last_chat: heartbeat::LastChat::default(),
            nodes,
            prompts: prompts::Prompts::default(),
            tool_audit: tools::audit::ToolAudit::new(state_for_audit, tools::audit::FILE),
            alerts: Arc::default(),
        })
    }

    /// Gives the gateway its cluster: Cron status is mirrored and NodePairings decide which
    /// nodes are approved when it runs for an Agent.
    pub fn with_kube(mut self, client: kube::Client) -> Self {
        if let Some(k) = &self.config.kubernetes {
            self.cron_status = Some(cron::status::CronStatusWriter::new(
                client.clone(),
                &k.namespace,
            ));
            self.nodes.cluster = Some(nodes::cluster::ClusterPairings::new(
                client.clone(),
                &k.namespace,
                &k.agent,
            ));
        }
        self.kube = Some(client);
        self
    }

    /// Answers a chat message with the tools this Agent may use: `conversation` keys its
    /// history, `origin` is where approvals go and progress shows.
    pub async fn answer(
        self: &Arc<Self>,
        conversation: &str,
        text: &str,
        origin: assistant::turn::Origin,
    ) -> Result<String, assistant::model::ModelError> {
        let toolbox = tools::TurnTools::new(self.clone(), conversation, origin);
        self.assistant
            .reply_with(conversation, text, &toolbox)
            .await
    }

    /// Sends `text` to `to` (a chat id, or `<group>:topic:<id>` for a forum topic) through
    /// channel `channel`. Ok(false) when Telegram did not take it.
    pub async fn deliver(&self, channel: &str, to: &str, text: &str) -> Result<bool, String> {
        let channel = self.channel(channel)?;
        let target = telegram::Target::parse(to)?;
        Ok(channel.send(self, target, text).await)
    }

    /// Lines saying what is disabled and why, for the start-up log and `/health`.
    pub fn disabled(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(p) = &self.model_problem {
            out.push(format!(
                "model {} disabled: {p}",
                self.config.agent.model.primary
            ));
        }
        for (name, p) in &self.channel_problems {
            out.push(format!("channel {name} disabled: {p}"));
        }
        if !self.auth.configured() {
            out.push(format!(
                "API disabled: the gateway token is not set ({})",
                self.auth.source()
            ));
        }
        out
    }

    /// A channel by name, or by kind (`telegram`) when it is the only one of its kind.
    pub fn channel(&self, name: &str) -> Result<&Arc<TelegramChannel>, String> {
        if let Some(c) = self.channels.iter().find(|c| c.name == name) {
            return Ok(c);
        }
        if let Some((_, why)) = self.channel_problems.iter().find(|(n, _)| n == name) {
            return Err(format!("channel {name} is disabled: {why}"));
        }
        match (name, self.channels.as_slice()) {
            ("telegram", [only]) => Ok(only),
            _ => {
                let names: Vec<&str> = self
                    .config
                    .channels
                    .iter()
                    .map(|c| c.name.as_str())
                    .collect();
                Err(format!(
                    "no channel named {name}; this gateway has: {}",
                    names.join(", ")
                ))
            }
        }
    }
}

/// How long messages in hand may take after SIGTERM: inside a pod's default 30 s.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(25);

pub async fn run(opts: GatewayOptions) -> anyhow::Result<()> {
    let (config, standalone) = match &opts.source {
        ConfigSource::File(path) => (load::from_file(path)?, false),
        ConfigSource::Manifests { files, agent } => {
            (load::from_manifests(files, agent.as_deref())?, true)
        }
    };
    // A backup restored through the API last time is swapped in before anything reads state.
    if let Some(kept) = crate::backup::apply_pending(&opts.state_dir)? {
        tracing::warn!(state = %opts.state_dir.display(), kept = %kept.display(), "restored a backup; the state that was there is kept");
    }
    let state = StateDir::open(&opts.state_dir)?;
    let auth = api::auth::gateway_token(&config, &state, standalone)?;
    let in_cluster = config.kubernetes.is_some();
    let pod = listen::in_pod(
        in_cluster,
        std::env::var_os(listen::POD_ENV).is_some_and(|v| !v.is_empty()),
    );
    let listen = listen::choose(opts.listen, config.gateway.port, pod);
    let wants_kube = in_cluster || config.agent.cluster_access == ClusterAccess::Read;
    let mut gw = Gateway::new(
        config,
        auth,
        state,
        model::RetryPolicy::default(),
        opts.polling,
    )?;
    if wants_kube {
        match kube::Client::try_default().await {
            Ok(client) => gw = gw.with_kube(client),
            Err(e) => {
                tracing::warn!(error = %e, "no Kubernetes client: no cluster patrols, alerts or status mirroring")
            }
        }
    }
    let gw = Arc::new(gw);
    for line in gw.disabled() {
        tracing::warn!("{line}");
    }
    let (offered, off) = tools::offered(&gw);
    let names: Vec<&str> = offered.iter().map(|d| d.name).collect();
    tracing::info!(tools = ?names, off = ?off, "the assistant's tools");
    if !in_cluster && gw.kube.is_some() && !names.is_empty() {
        tracing::info!(
            "cluster reads (patrols, alerts, tools) use the local kubeconfig ($KUBECONFIG or ~/.kube/config) and its current context"
        );
    }
    let listener = tokio::net::TcpListener::bind(listen.addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", listen.addr))?;
    // Small frames go out at once: an invoke right after a node's result would otherwise wait
    // for the node's delayed ACK (40 ms per command).
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY not set");
        }
    });

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let pollers: Vec<_> = gw
        .channels
        .iter()
        .map(|c| tokio::spawn(c.clone().run(gw.clone(), stop_rx.clone())))
        .collect();
    gw.channels_started.store(true, Ordering::Relaxed);
    // Each feature decides whether it runs here; the handles are those to stop at shutdown.
    let heartbeat = heartbeat::start(&gw);
    let mirror = mirror::start(&gw);
    let alerts = alerts::start(&gw);
    let scheduler = cron::start(&gw);
    let pairings = nodes::cluster::start(&gw);
    // Before the node socket serves: a node the restore brings back must find its NodePairing.
    let restored = nodes::restored::adopt_at_start(&gw).await;
    tracing::info!(addr = %listen.addr, agent = %gw.config.agent.id, state = %gw.state.path().display(), "gateway serving");
    tracing::info!("{}", listen.why);

    // On SIGTERM the pollers stop fetching at once, while the HTTP side drains.
    let signal = futures::FutureExt::shared({
        let gw = gw.clone();
        async move {
            tokio::select! {
                _ = crate::util::shutdown_signal() => {}
                _ = gw.restart.notified() => {
                    tracing::warn!("stopping to apply a restored backup; it is applied at the next start");
                }
            }
        }
    });
    tokio::spawn({
        let (signal, gw) = (signal.clone(), gw.clone());
        async move {
            signal.await;
            let _ = stop_tx.send(true);
            // Nodes hear it as Clawdbot's gateway says it, and reconnect after the restart.
            gw.nodes
                .registry
                .close_all(nodes::handshake::CLOSE_RESTART, "service restart")
                .await;
        }
    });
    let base: Option<Arc<str>> = gw
        .config
        .gateway
        .control_ui
        .as_ref()
        .and_then(|c| c.base_path.as_deref())
        .map(Arc::from);
    let app = tower_layer::Layer::layer(
        &axum::middleware::from_fn_with_state(base, api::prefix::strip),
        api::http::router(gw.clone()),
    );
    axum::serve(
        listener,
        axum::ServiceExt::<axum::extract::Request>::into_make_service_with_connect_info::<
            SocketAddr,
        >(app),
    )
    .with_graceful_shutdown(signal)
    .await?;
    for task in [heartbeat, mirror, scheduler, alerts, pairings, restored]
        .into_iter()
        .flatten()
    {
        task.abort();
    }
    // Upgraded node sockets are not part of the HTTP drain: let them send their close first.
    let closing = tokio::time::Instant::now() + Duration::from_secs(2);
    while !gw.nodes.registry.list().is_empty() && tokio::time::Instant::now() < closing {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Messages in hand get the rest of a pod's 30 s grace period; whatever is unfinished then
    // is fetched again after the restart (the offset only covers handled messages).
    if tokio::time::timeout(SHUTDOWN_GRACE, futures::future::join_all(pollers))
        .await
        .is_err()
    {
        tracing::warn!(grace = ?SHUTDOWN_GRACE, "messages still in hand at shutdown; they are answered after the restart");
    }
    tracing::info!("stopped");
    Ok(())
}
