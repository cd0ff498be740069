//! Crons in the gateway: running one (patrol, turn, delivery, record), the standalone scheduler
//! that fires them on time, and what a run leaves in the Cron's status.

pub mod occurrence;
pub mod outcome;
pub mod patrol;
pub mod run;
pub mod schedule;
pub mod status;
