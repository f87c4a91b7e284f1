//! Tests of the event log on real redb files: appends and their atomicity, reopen and
//! replay, tampering detection, identity and locking, and the zero-sum property.

mod append;
mod deferred;
mod fixture;
mod group;
mod open;
mod props;
mod replica;
mod tamper;
