//! The customer wallet (protocol.md section 6): buys, spends, tops up, withdraws and renews
//! scrip.
//!
//! Nothing is built here yet: the wallet core and the `peerscrip` command arrive with
//! issues 4 and 5 (see ARCHITECTURE.md, "What is next").
