//! A merchant (protocol.md sections 4 and 6): issues and locally validates its own
//! VendorScrip and sells from its catalogue.
//!
//! Nothing is built here yet: the sans-IO core and the actor shell arrive with issue 4
//! (see ARCHITECTURE.md, "What is next").
