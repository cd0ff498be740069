//! The controllers: Agent (the gateway pipeline) and its members' status, with the apply
//! helpers and context they share.

pub mod agent;
pub mod apply;
pub mod context;
pub mod members;
