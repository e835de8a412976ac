//! Durable state for the management plane: the [`Store`] trait and its SQLite implementation.

pub mod crypt;
