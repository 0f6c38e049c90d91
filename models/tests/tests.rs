//! The models' integration tests, in one binary: a module per artifact.

mod artifact;
mod edge;
