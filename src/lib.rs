//! regmail: a domain registry's mail robot, as a library.
//!
//! Input: registrars' OpenPGP cleartext-signed template mails. Output: one
//! atomic transaction per mail in SQLite and a signed reply per mail. The
//! stages, in the order a mail passes them: [`intake`] (mail layer), [`auth`]
//! (signature; the only producer of a verified body), [`template`] (envelope,
//! object, typed specs), [`policy`] (registry rules), [`store`] (SQLite),
//! [`reply`] (signed answers and delivery); [`pipeline`] runs them for one
//! mail inside one database transaction; [`lifecycle`] applies what is due
//! over time (timer, holder answers, operator decisions) and sends the
//! notifications. [`app`] and [`cli`] are the program
//! on top; `ARCHITECTURE.md` draws the data flow.
pub mod app;
pub mod auth;
pub mod cli;
pub mod clock;
pub mod config;
pub mod ids;
pub mod intake;
pub mod lifecycle;
pub mod pipeline;
pub mod policy;
pub mod rejection;
pub mod reply;
pub mod store;
pub mod template;
pub mod whois;
pub mod zone;
