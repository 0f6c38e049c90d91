//! The log reader's integration tests, in one binary (one link, one start):
//! a module per area.

mod command_sessions;
mod fixtures;
mod parsers_proptest;
mod real_logs;
mod support;
mod time_zones;
mod unseen_logs;
