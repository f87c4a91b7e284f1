//! The broker (protocol.md sections 1 and 5): the gateway to the bank, issuer of
//! BrokerScrip and the decision point of every three-party transaction.
//!
//! Nothing is built here yet: the sans-IO core and the actor shell arrive with issue 4
//! (see ARCHITECTURE.md, "What is next").
