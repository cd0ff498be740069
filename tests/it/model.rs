//! The model client and agent turn against a fake OpenAI-compatible server over real HTTP:
//! retries, quota errors, fallbacks, thinking, timeouts, Retry-After and the concurrency limit.

use std::sync::Arc;
use std::time::Duration;

use crate::support::fake_llm::{Answer, FakeLlm};
use clawops::crd::agent::{ClusterAccess, TimeFormat};
use clawops::gateway::assistant::model::{ModelClient, ModelError, RetryPolicy};
use clawops::gateway::assistant::{self, Assistant};
use clawops::gateway::metrics::GatewayMetrics;
use clawops::plan::gateway_config::{AgentConfig, HeartbeatConfig, ModelConfig};
use clawops::util::state_dir::StateDir;

fn agent_config(fake: &FakeLlm, fallbacks: &[&str], max_concurrent: u32) -> AgentConfig {
    AgentConfig {
        id: "shrimp".into(),
        name: "聪明小虾".into(),
        emoji: Some("🦐".into()),
        persona: Some("你是聪明小虾，说中文。".into()),
        model: ModelConfig {
            primary: "zai/glm-4.7".into(),
            fallbacks: fallbacks.iter().map(|s| s.to_string()).collect(),
            api_key_env: None,
            base_url: Some(fake.base_url()),
            endpoint: None,
            thinking: false,
            timeout_seconds: None,
        },
        max_concurrent,
        heartbeat: HeartbeatConfig { every: "0m".into() },
        user_timezone: "Asia/Shanghai".into(),
        time_format: TimeFormat::H24,
        cluster_access: ClusterAccess::None,
        alerts: None,
        tools: Default::default(),
    }
}

fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        base: Duration::from_millis(5),
        cap: Duration::from_millis(20),
        timeout: Duration::from_secs(5),
        ..Default::default()
    }
}

fn agent_with(cfg: AgentConfig, retry: RetryPolicy) -> (Assistant, Arc<GatewayMetrics>) {
    let metrics = Arc::new(GatewayMetrics::default());
    let slots = Arc::new(tokio::sync::Semaphore::new(cfg.max_concurrent as usize));
    let client = ModelClient::new(&cfg.model, slots, retry, metrics.clone());
    let dir = std::env::temp_dir().join(format!(
        "clawops-model-{}-{}",
        std::process::id(),
        rand::random::<u32>()
    ));
    (
        Assistant::new(cfg, client, StateDir::open(dir).unwrap()),
        metrics,
    )
}

#[tokio::test]
async fn a_reply_carries_the_persona_and_glm_thinking_is_off() {
    let fake = FakeLlm::start().await;
    let (agent, _) = agent_with(agent_config(&fake, &[], 1), fast_retries());
    let reply = agent.reply("chat-1", "集群怎么样？").await.unwrap();
    assert_eq!(reply, "[你是聪明小虾，说中文。] 集群怎么样？");
    let seen = fake.seen();
    assert_eq!(seen.len(), 1);
    let body = &seen[0].body;
    assert_eq!(body["model"], "glm-4.7");
    assert_eq!(body["thinking"]["type"], "disabled");
    assert_eq!(body["stream"], false);
    assert_eq!(
        body["messages"][0]["role"], "system",
        "system, never developer"
    );
    assert!(
        body["messages"][0]["content"]
            .as_str()
            .unwrap()
            .contains("Asia/Shanghai")
    );

    // History: the next turn carries the previous exchange.
    agent.reply("chat-1", "还有呢？").await.unwrap();
    let second = &fake.seen()[1].body["messages"];
    assert_eq!(
        second.as_array().unwrap().len(),
        4,
        "system, user, assistant, user"
    );
    assert_eq!(second[1]["content"], "集群怎么样？");
}

#[tokio::test]
async fn busy_429_1302_is_retried_then_answered() {
    let fake = FakeLlm::start().await;
    fake.script(
        "glm-4.7",
        [
            Answer::glm(429, "1302", "High concurrency usage"),
            Answer::glm(429, "1305", "overloaded"),
        ],
    );
    let (agent, metrics) = agent_with(agent_config(&fake, &[], 1), fast_retries());
    assert!(agent.reply("c", "hi").await.is_ok());
    assert_eq!(fake.seen().len(), 3);
    let text = metrics.render();
    assert!(
        text.contains("clawops_gateway_llm_retries_total 2"),
        "{text}"
    );
    assert!(
        text.contains("clawops_gateway_llm_rate_limited_total 2"),
        "{text}"
    );
}

#[tokio::test]
async fn quota_1308_is_not_retried_and_told_plainly() {
    let fake = FakeLlm::start().await;
    fake.script(
        "glm-4.7",
        [Answer::glm(
            429,
            "1308",
            "Usage limit reached for 5 hour. Your limit will reset at 2026-11-21 18:00:00",
        )],
    );
    let (agent, metrics) = agent_with(agent_config(&fake, &[], 1), fast_retries());
    let err = agent.reply("c", "hi").await.unwrap_err();
    assert!(
        matches!(err, ModelError::Quota { ref code, .. } if code == "1308"),
        "{err:?}"
    );
    assert_eq!(fake.seen().len(), 1, "quota errors are not retried");
    let notice = assistant::explain(&err, assistant::speaks_cjk(&agent.config));
    assert!(
        notice.contains("1308") && notice.contains("18:00") && notice.contains("额度"),
        "{notice}"
    );
    assert!(
        metrics
            .render()
            .contains("clawops_gateway_llm_failures_total 1")
    );
}

#[tokio::test]
async fn server_errors_exhaust_retries_then_the_fallback_answers() {
    let fake = FakeLlm::start().await;
    fake.script(
        "glm-4.7",
        (0..3).map(|_| Answer::glm(500, "500", "internal error")),
    );
    fake.script("glm-4.5-flash", [Answer::Text("fallback here".into())]);
    let (agent, _) = agent_with(
        agent_config(&fake, &["zai/glm-4.5-flash"], 1),
        fast_retries(),
    );
    assert_eq!(agent.reply("c", "hi").await.unwrap(), "fallback here");
    let models: Vec<String> = fake
        .seen()
        .iter()
        .map(|s| s.body["model"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(models, ["glm-4.7", "glm-4.7", "glm-4.7", "glm-4.5-flash"]);
}

#[tokio::test]
async fn a_slow_answer_times_out_and_is_retried() {
    let fake = FakeLlm::start().await;
    fake.script(
        "glm-4.7",
        [Answer::Slow(Duration::from_secs(3), Box::new(Answer::Echo))],
    );
    let retry = RetryPolicy {
        timeout: Duration::from_millis(300),
        ..fast_retries()
    };
    let (agent, _) = agent_with(agent_config(&fake, &[], 1), retry);
    assert!(agent.reply("c", "hi").await.is_ok());
    assert_eq!(fake.seen().len(), 2);
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let fake = FakeLlm::start().await;
    fake.script(
        "glm-4.7",
        [Answer::Error {
            status: 429,
            code: "1302",
            message: "busy",
            retry_after: Some(1),
        }],
    );
    let (agent, _) = agent_with(agent_config(&fake, &[], 1), fast_retries());
    agent.reply("c", "hi").await.unwrap();
    let seen = fake.seen();
    let gap = seen[1].at.duration_since(seen[0].at);
    assert!(
        gap >= Duration::from_millis(950),
        "waited {gap:?}, not the 1 s the server asked for"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_concurrent_limits_calls_in_flight() {
    let fake = FakeLlm::start().await;
    fake.script(
        "glm-4.7",
        (0..4).map(|_| Answer::Slow(Duration::from_millis(100), Box::new(Answer::Echo))),
    );
    let (agent, _) = agent_with(agent_config(&fake, &[], 1), fast_retries());
    let agent = Arc::new(agent);
    let turns: Vec<_> = (0..4)
        .map(|i| {
            let a = agent.clone();
            tokio::spawn(async move { a.reply(&format!("chat-{i}"), "hi").await })
        })
        .collect();
    for t in turns {
        assert!(
            t.await.unwrap().is_ok(),
            "every turn is answered, none dropped"
        );
    }
    assert_eq!(fake.peak(), 1, "maxConcurrent 1 means one call at a time");
}

#[tokio::test]
async fn a_heartbeat_is_a_one_off_turn_whose_acknowledgement_is_not_delivered() {
    use clawops::gateway::heartbeat;
    let fake = FakeLlm::start().await;
    fake.script(
        "glm-4.7",
        [
            Answer::Text("HEARTBEAT_OK".into()),
            Answer::Text("⚠️ 节点 k3s-2 磁盘快满了".into()),
        ],
    );
    let (agent, _) = agent_with(agent_config(&fake, &[], 1), fast_retries());
    let quiet = agent.one_off(heartbeat::PROMPT).await.unwrap();
    assert_eq!(heartbeat::deliverable(&quiet), None);
    let news = agent.one_off(heartbeat::PROMPT).await.unwrap();
    assert_eq!(
        heartbeat::deliverable(&news).as_deref(),
        Some("⚠️ 节点 k3s-2 磁盘快满了")
    );
    let seen = fake.seen();
    let beat = &seen.last().unwrap().body["messages"];
    assert_eq!(
        beat.as_array().unwrap().len(),
        2,
        "no chat history in a heartbeat"
    );
    assert!(
        beat[1]["content"]
            .as_str()
            .unwrap()
            .contains("HEARTBEAT_OK")
    );
}
