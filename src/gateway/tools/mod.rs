//! The assistant's tools: what the model may call during a turn, each with its time limit, its
//! result capped at a stated size, every call audited and counted.

pub mod cluster;
pub mod error;

pub use error::ToolError;
