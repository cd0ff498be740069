//! The gateway's HTTP side on its one port: the routes (`/healthz`, `/readyz`, `/health`,
//! `/metrics`, `/api/…`, the Control UI and the node WebSocket at `/`), what `/health` reports,
//! and the gateway token that guards `/api/…`.

pub mod auth;
pub mod health;
pub mod http;
pub mod nodes;
pub mod ui;
