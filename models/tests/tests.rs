//! The models' integration tests, in one binary: a module per area.

mod artifact;
mod cli;
mod edge;
mod real_logs;
