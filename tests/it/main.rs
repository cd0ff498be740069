//! The integration tests, one binary: each file is a module, `support/` their shared fakes and
//! fixtures. `cargo test --test it <module>::` runs one file's tests.

mod alerts;
mod attacks;
mod backup;
mod backup_nodes;
mod backup_schedule;
mod chart;
mod cluster_tools;
mod crds;
mod cron;
mod e2e;
mod faults;
mod gateway_binary;
mod import;
mod layers;
mod mirror;
mod model;
mod nodes;
mod operator;
mod operator_binary;
mod operator_faults;
mod operator_scale;
mod patrol;
mod reconcile;
mod render;
mod secret_scan;
mod support;
mod telegram;
mod tools;
mod ui;
