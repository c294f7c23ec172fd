//! regmail: a domain registry's mail robot, as a library.
pub mod app;
pub mod auth;
pub mod cli;
pub mod clock;
pub mod config;
pub mod intake;
pub mod pipeline;
pub mod policy;
pub mod rejection;
pub mod reply;
pub mod store;
pub mod template;
