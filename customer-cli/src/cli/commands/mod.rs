//! One file per command group of `peerscrip`.

pub mod balance;
pub mod broker_scrip;
pub mod completions;
pub mod history;
pub mod init;
pub mod merchants;
pub mod register;
pub mod renew;
pub mod shop;
pub mod status;
pub mod vendor_scrip;
