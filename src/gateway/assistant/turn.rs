//! One chat turn with tools: model → tools → model, for a bounded number of rounds. The
//! assistant knows tools only through [`Toolbox`]: what they are, and a result text for a call
//! (errors included, as the model must read them); running, limiting and auditing them is the
//! toolbox's business.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use super::model::{Completion, Message, ModelClient, ModelError, ToolCall, ToolDef};

/// Told where a turn's tool calls stand: a short line naming the call under way.
pub type Progress = Arc<dyn Fn(&str) + Send + Sync>;

/// Where a turn comes from: the chat its approval questions go to, who shows its progress, and
/// the message it answers.
#[derive(Clone, Default)]
pub struct Origin {
    pub chat: Option<crate::gateway::prompts::Chat>,
    pub progress: Option<Progress>,
    /// The message being answered, the same when it is answered again after a restart (a
    /// Telegram message that was not yet confirmed): node commands it asks for carry keys made
    /// from it, so the node runs each once.
    pub message: Option<String>,
}

/// The result text of one call, whatever happened (a failure is a result the model reads).
pub type ToolFuture<'a> = Pin<Box<dyn Future<Output = String> + Send + 'a>>;

/// The tools of one turn.
pub trait Toolbox: Send + Sync {
    fn definitions(&self) -> Vec<ToolDef>;
    fn run<'a>(&'a self, call: &'a ToolCall) -> ToolFuture<'a>;
}

/// A turn without tools.
pub struct NoTools;

impl Toolbox for NoTools {
    fn definitions(&self) -> Vec<ToolDef> {
        Vec::new()
    }
    fn run<'a>(&'a self, call: &'a ToolCall) -> ToolFuture<'a> {
        let name = call.name().to_string();
        Box::pin(async move { format!("error: unknown tool `{name}`; no tools are offered") })
    }
}

/// Told to the model when its rounds are used up, so it answers with what it has.
pub const LAST_ROUND: &str = "You have used all tool rounds of this turn. Answer the user now with what the tool results show; say plainly what you could not find out. Do not call tools.";

/// How a turn ended.
#[derive(Debug, Clone, PartialEq)]
pub struct TurnAnswer {
    pub text: String,
    /// Tool calls made.
    pub calls: usize,
    /// Rounds of tool calls.
    pub rounds: u32,
}

/// Runs a turn over `messages` (system prompt, history, the user's message). At most
/// `max_rounds` rounds of tool calls; the calls of one round run together. A model still
/// asking for tools after the last round gets no more, and the user an honest answer.
pub async fn run(
    model: &ModelClient,
    mut messages: Vec<Message>,
    tools: &dyn Toolbox,
    max_rounds: u32,
    cjk: bool,
) -> Result<TurnAnswer, ModelError> {
    let defs = tools.definitions();
    let mut calls = 0;
    let mut rounds = 0;
    loop {
        let last = rounds >= max_rounds;
        if last && rounds > 0 {
            messages.push(Message::new("user", LAST_ROUND));
        }
        let offer: &[ToolDef] = if defs.is_empty() { &[] } else { &defs };
        let answer = model.complete_with(&messages, offer).await?;
        if answer.tool_calls.is_empty() {
            return Ok(TurnAnswer {
                text: finished(&answer, cjk),
                calls,
                rounds,
            });
        }
        if last || offer.is_empty() {
            tracing::warn!(
                rounds,
                "the model still asks for tools after its last round"
            );
            return Ok(TurnAnswer {
                text: stopped(&answer, rounds, cjk),
                calls,
                rounds,
            });
        }
        rounds += 1;
        calls += answer.tool_calls.len();
        messages.push(Message::calling(&answer));
        let results =
            futures::future::join_all(answer.tool_calls.iter().map(|c| tools.run(c))).await;
        for (call, result) in answer.tool_calls.iter().zip(results) {
            messages.push(Message::tool_result(&call.id, result));
        }
    }
}

/// The answer's text, with a note when the model's length limit cut it.
fn finished(answer: &Completion, cjk: bool) -> String {
    if !answer.truncated {
        return answer.text.clone();
    }
    let note = if cjk {
        "（回答太长，被模型的长度上限截断了。）"
    } else {
        "(The answer was cut off at the model's length limit.)"
    };
    format!("{}\n\n{note}", answer.text)
}

/// What the user gets when the model would not stop calling tools.
fn stopped(answer: &Completion, rounds: u32, cjk: bool) -> String {
    let note = if cjk {
        format!("⚠️ 我查了 {rounds} 轮工具还没查完，先停在这里。请把问题问得更具体一些再试。")
    } else {
        format!(
            "⚠️ I stopped after {rounds} rounds of tool calls without a full answer. Please ask something narrower."
        )
    };
    if answer.text.trim().is_empty() {
        note
    } else {
        format!("{}\n\n{note}", answer.text)
    }
}
