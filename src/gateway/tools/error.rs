//! What a tool call can end with other than a result. Every one goes back to the model as an
//! error result it can read (and to the audit log as the outcome), never as a failed turn.

/// A tool call that gave no result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ToolError {
    /// The model named a tool that is not offered.
    #[error("unknown tool `{0}`; use one of the tools offered")]
    Unknown(String),
    /// The arguments are missing, malformed or out of range: which and why.
    #[error("bad arguments: {0}")]
    BadArguments(String),
    /// Not allowed, whatever the model asks (a Secret, a node's policy, the owner's no).
    #[error("refused: {0}")]
    Refused(String),
    /// The tool ran and failed (the API server or the node said so).
    #[error("failed: {0}")]
    Failed(String),
    #[error("timed out after {0} s")]
    TimedOut(u64),
}

impl ToolError {
    /// Every value of [`ToolError::outcome`], and `ok`.
    pub const OUTCOMES: &[&str] = &[
        "ok",
        "unknown",
        "bad-arguments",
        "refused",
        "failed",
        "timed-out",
    ];

    /// The outcome label of the audit log and `/metrics`.
    pub fn outcome(&self) -> &'static str {
        match self {
            ToolError::Unknown(_) => "unknown",
            ToolError::BadArguments(_) => "bad-arguments",
            ToolError::Refused(_) => "refused",
            ToolError::Failed(_) => "failed",
            ToolError::TimedOut(_) => "timed-out",
        }
    }
}
