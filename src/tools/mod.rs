//! The tools this server offers, one file each.
//!
//! - `hello.rs`: [`HelloTool`], greets the signed-in user from their Graph profile.
//!
//! A tool takes the [`crate::auth::Caller`] and its clients and turns every failure into
//! an `isError` result; it never touches HTTP requests or tokens.

mod hello;

pub use hello::{Greeting, HelloTool};
