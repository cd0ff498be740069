//! The model behind the agent: provider endpoints, the HTTP client with its concurrency
//! limit and retries, and error classification.

pub mod client;
pub mod error;
pub mod provider;
pub mod tools;

pub use client::{Completion, Message, ModelClient, RetryPolicy};
pub use error::ModelError;
pub use tools::{FunctionCall, ToolCall, ToolDef};
