//! The protections the demo shows working, each a step that asserts what it shows
//! (protocol.md sections 4 and 7): the exact `ErrorCode` of the refusal, and that the nodes' logs
//! and balances did not change (a refusal changes nothing, protocol.md section 6; a repeat
//! appends no event, section 7). A check that does not hold fails the demo.
//!
//! - [`spent_scrip`]: a VendorScrip already spent in 6.3, presented again in a new tx:
//!   `Spent` (section 4: a removed scrip id never validates again);
//! - [`wrong_secret`]: the live VendorScrip with a CustomerSecret that is not its own:
//!   `BadCustomerSecret` (section 4);
//! - [`exceeds_scrip`]: an order whose price × quantity is more than the VendorScrip
//!   holds: `ExceedsScrip` (section 6.3 step 3);
//! - [`replayed`]: a completed 6.6 request delivered again: the broker's stored reply, byte
//!   for byte, and no new event (section 7);
//! - [`expired`]: an expired BrokerScrip cashed in before its renewal: `Expired`
//!   (section 4: refused everywhere but renewal).
//!
//! The wallet refuses to build the first three requests itself (it never presents a scrip
//! it no longer holds, a secret it was not given, or an order above its scrip), so they are
//! built here from the same public wire API the wallet uses, signed with the customer's
//! key and sealed to the merchant: what a faulty or hostile client would send. The last
//! two go through the wallet. The running nodes are inspected between batches through
//! their actors (`shared::runtime::Call`), never by stopping them.

use anyhow::Context as _;
use broker::core::State as BrokerState;
use broker::node::BrokerNode;
use customer_cli::WalletError;
use customer_cli::client::ClientError;
use merchant::core::state::Tables;
use merchant::shell::Shelled;
use shared::bus::Bus as _;
use shared::node::unsigned_error_in;
use shared::runtime::Call;
use shared::wire::bodies::{ErrorBody, OrderId, OrderInfo, PurchaseRequestX1};
use shared::wire::{Frame, Header, Label, seal, secret_inner, sign};
use shared::{Amount, CustomerSecret, ErrorCode, KeyPair, PublicKey, Scrip, TxId};
use tokio::sync::oneshot;

use super::checks::Check;
use customer_cli::cli::output::relative;

use super::setup::{TIMEOUT, World, clock};
use super::steps::{Kind, Step};

/// A node's state and the length of its log, read between two batches.
#[derive(Debug, Clone, PartialEq, Eq)]
struct View<S> {
    state: S,
    events: u64,
}

impl<S: PartialEq> View<S> {
    /// "`who`'s log (n events) and `what` unchanged", held when `after` equals `self`.
    fn unchanged(&self, after: &View<S>, who: &str, what: &str) -> Check {
        let (before_n, after_n) = (self.events, after.events);
        Check::that(
            format!("{who}'s log ({before_n} events) and {what} unchanged"),
            self == after,
            || {
                if before_n == after_n {
                    format!("its {what} changed")
                } else {
                    format!("its log went from {before_n} to {after_n} events")
                }
            },
        )
    }
}

/// The running broker's state and log length.
async fn broker_view(w: &World) -> anyhow::Result<View<BrokerState>> {
    let (tx, rx) = oneshot::channel();
    w.broker
        .addr
        .do_send(Call(Box::new(move |node: &mut BrokerNode, _now| {
            let _ = tx.send(node.log().len().map(|events| View {
                state: node.state().clone(),
                events,
            }));
        })));
    Ok(rx.await.context("the broker's actor has stopped")??)
}

/// The running merchant `m`'s tables and log length.
async fn merchant_view(w: &World, m: usize) -> anyhow::Result<View<Tables>> {
    let (tx, rx) = oneshot::channel();
    w.merchants[m]
        .running
        .addr
        .do_send(Call(Box::new(move |s: &mut Shelled, _now| {
            let _ = tx.send(s.node.log().len().map(|events| View {
                state: s.node.state().tables.clone(),
                events,
            }));
        })));
    Ok(rx
        .await
        .with_context(|| format!("the {}'s actor has stopped", w.merchants[m].name))??)
}

/// What a node answered a request, as the demo reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// An `Error` (section 3), signed or, for a frame the node could not verify, not: its
    /// code (`None` if this build does not know the
    /// number) and message.
    Refused {
        /// The code.
        code: Option<ErrorCode>,
        /// The code's number.
        number: u16,
        /// The node's message (never a secret).
        message: String,
    },
    /// Any other reply: the request was accepted.
    Accepted(Label),
    /// Not a reply of that node (undecodable, or not signed by it).
    Unreadable(String),
}

impl Answer {
    /// Reads `reply`, which must be signed by `signer`.
    #[must_use]
    pub fn read(reply: &[u8], signer: &PublicKey) -> Answer {
        let frame = match Frame::decode(reply) {
            Ok(f) => f,
            Err(e) => return Answer::Unreadable(format!("it does not decode: {e}")),
        };
        if frame.header.label != Label::Error {
            return Answer::Accepted(frame.header.label);
        }
        // Unsigned: a refusal of a frame the node could not verify (protocol.md section
        // 3), which costs the node no signature.
        if let Some(body) = unsigned_error_in(&frame, signer.uid(), frame.header.tx) {
            return Answer::Refused {
                code: body.error_code(),
                number: body.code,
                message: body.message,
            };
        }
        match frame
            .part(0)
            .and_then(|p| p.verify_signed::<ErrorBody>(signer))
        {
            Ok(verified) => Answer::Refused {
                code: verified.body.error_code(),
                number: verified.body.code,
                message: verified.body.message,
            },
            Err(e) => Answer::Unreadable(format!("its Error is not signed by the node: {e}")),
        }
    }

    /// The line a person reads: "`node` refused it: Spent (message)".
    #[must_use]
    pub fn describe(&self, node: &str) -> String {
        match self {
            Answer::Refused {
                code,
                number,
                message,
            } => {
                let name = code.map_or_else(|| format!("code {number}"), |c| c.name().to_owned());
                format!("the {node} refused it: {name} ({message})")
            }
            Answer::Accepted(label) => format!("the {node} accepted it ({label:?})"),
            Answer::Unreadable(why) => format!("the {node}'s answer is unreadable: {why}"),
        }
    }

    /// The check "refused with `expected`": held only for a signed `Error` with exactly
    /// that code.
    #[must_use]
    pub fn refused_with(&self, expected: ErrorCode) -> Check {
        let name = format!("refused with {}", expected.name());
        match self {
            Answer::Refused { code, .. } if *code == Some(expected) => Check::new(name, Ok(())),
            Answer::Refused { code, number, .. } => Check::new(
                name,
                Err(format!(
                    "it was refused with {}",
                    code.map_or_else(|| format!("code {number}"), |c| c.name().to_owned())
                )),
            ),
            Answer::Accepted(label) => Check::new(name, Err(format!("it was accepted: {label:?}"))),
            Answer::Unreadable(why) => Check::new(name, Err(why.clone())),
        }
    }
}

/// 6.3 step 2 as a client would send it: `Sealed(to M){ Signed(X1 = scrip, H(cs), order),
/// Secret(cs) }` under a new tx, signed by `customer`.
fn purchase_request(
    customer: &KeyPair,
    merchant: &PublicKey,
    scrip: &Scrip,
    cs: &CustomerSecret,
    order: OrderInfo,
) -> anyhow::Result<Vec<u8>> {
    let suite = customer.suite();
    let header = Header::new(
        suite,
        Label::PurchaseRequest,
        TxId::random(),
        customer.uid(),
    );
    let body = PurchaseRequestX1 {
        scrip: scrip.clone(),
        cs_hash: cs.cs_hash(suite),
        order,
    };
    let part = seal(
        &header,
        merchant,
        &[
            sign(customer, &header, &body)?.into(),
            secret_inner(scrip.id(), cs),
        ],
    )?;
    Ok(Frame::new(header, vec![part]).encode()?)
}

/// An order of `quantity` × the tea shop's green tea at its catalogue price.
fn tea(quantity: u64) -> OrderInfo {
    OrderInfo {
        item_id: "tea".into(),
        name: "Green tea, 100 g".into(),
        unit_price: Amount::from_minor(450),
        quantity,
        order_id: OrderId::random(),
    }
}

/// Sends `frame` from customer `c` to merchant `m` and checks it is refused with
/// `expected`, and that neither the merchant's nor the broker's log or state changed.
async fn refused_at_merchant(
    w: &World,
    m: usize,
    frame: Vec<u8>,
    expected: ErrorCode,
) -> anyhow::Result<(String, Vec<Check>)> {
    let merchant = &w.merchants[m];
    let (broker_before, merchant_before) = (broker_view(w).await?, merchant_view(w, m).await?);
    let reply = w
        .bus
        .request(
            &w.subjects.merchant(&merchant.keys.uid()),
            frame.into(),
            TIMEOUT,
        )
        .await
        .with_context(|| format!("no answer from the {}", merchant.name))?;
    let (broker_after, merchant_after) = (broker_view(w).await?, merchant_view(w, m).await?);
    let answer = Answer::read(&reply, merchant.keys.public());
    let checks = vec![
        answer.refused_with(expected),
        merchant_before.unchanged(&merchant_after, &format!("the {}", merchant.name), "tables"),
        broker_before.unchanged(&broker_after, "the broker", "balances"),
    ];
    Ok((answer.describe(merchant.name), checks))
}

fn refusal(id: &'static str, title: &'static str, code: ErrorCode) -> Step {
    Step {
        id,
        title,
        kind: Kind::Refusal(code),
        lines: Vec::new(),
        checks: Vec::new(),
    }
}

/// Customer `c` presents `spent`, a VendorScrip of merchant `m` already spent, with its own
/// CustomerSecret `cs`, in a new tx.
///
/// # Errors
/// No answer from the merchant, or a node that could not be inspected.
pub async fn spent_scrip(
    w: &World,
    c: usize,
    m: usize,
    spent: &Scrip,
    cs: &CustomerSecret,
) -> anyhow::Result<Step> {
    let (cust, merchant) = (&w.customers[c], &w.merchants[m]);
    let frame = purchase_request(&cust.keys, merchant.keys.public(), spent, cs, tea(1))?;
    let (answer, checks) = refused_at_merchant(w, m, frame, ErrorCode::Spent).await?;
    let mut step = refusal(
        "6.3-spent",
        "Refused: a spent VendorScrip presented again (section 4)",
        ErrorCode::Spent,
    );
    step.lines = vec![
        format!(
            "{} presents her {} VendorScrip {}, spent in 6.3, again in a new tx, with its \
             own CustomerSecret, for 1 × Green tea, 100 g",
            cust.name,
            merchant.name,
            spent.value()
        ),
        answer,
    ];
    step.checks = checks;
    Ok(step)
}

/// Customer `c` presents the VendorScrip it holds of merchant `m` with a CustomerSecret
/// that is not its own.
///
/// # Errors
/// `c` holds no VendorScrip of `m`, no answer from the merchant, or a node that could not
/// be inspected.
pub async fn wrong_secret(w: &World, c: usize, m: usize) -> anyhow::Result<Step> {
    let (cust, merchant) = (&w.customers[c], &w.merchants[m]);
    let held = cust
        .wallet
        .scrip(merchant.keys.uid())
        .with_context(|| format!("{} holds no {} VendorScrip", cust.name, merchant.name))?;
    let guessed = CustomerSecret::from_bytes(b"a CustomerSecret that is not this scrip's");
    let frame = purchase_request(
        &cust.keys,
        merchant.keys.public(),
        &held.scrip,
        &guessed,
        tea(1),
    )?;
    let (answer, checks) = refused_at_merchant(w, m, frame, ErrorCode::BadCustomerSecret).await?;
    let mut step = refusal(
        "6.3-secret",
        "Refused: a VendorScrip with a wrong CustomerSecret (section 4)",
        ErrorCode::BadCustomerSecret,
    );
    step.lines = vec![
        format!(
            "{}'s live {} VendorScrip {} is presented under her key with a CustomerSecret \
             that is not its own (a guess, as by someone who copied the scrip), for 1 × Green \
             tea, 100 g",
            cust.name,
            merchant.name,
            held.scrip.value()
        ),
        answer,
    ];
    step.checks = checks;
    Ok(step)
}

/// Customer `c` orders more from merchant `m` than the VendorScrip it holds is worth,
/// with the right CustomerSecret.
///
/// # Errors
/// `c` holds no VendorScrip of `m` or cannot open its secret, no answer from the
/// merchant, or a node that could not be inspected.
pub async fn exceeds_scrip(w: &World, c: usize, m: usize) -> anyhow::Result<Step> {
    let (cust, merchant) = (&w.customers[c], &w.merchants[m]);
    let uid = merchant.keys.uid();
    let held = cust
        .wallet
        .scrip(uid)
        .with_context(|| format!("{} holds no {} VendorScrip", cust.name, merchant.name))?;
    let cs = cust
        .wallet
        .customer_secret(uid)
        .context("opening the VendorScrip's CustomerSecret")?;
    let order = tea(2);
    let total = order.total()?;
    let frame = purchase_request(&cust.keys, merchant.keys.public(), &held.scrip, &cs, order)?;
    let (answer, checks) = refused_at_merchant(w, m, frame, ErrorCode::ExceedsScrip).await?;
    let mut step = refusal(
        "6.3-exceeds",
        "Refused: an order costing more than the VendorScrip holds (section 6.3)",
        ErrorCode::ExceedsScrip,
    );
    step.lines = vec![
        format!(
            "{} orders 2 × Green tea, 100 g at 4.50 ({total}) from the {} with her VendorScrip \
             {} and its own CustomerSecret",
            cust.name,
            merchant.name,
            held.scrip.value()
        ),
        answer,
    ];
    step.checks = checks;
    Ok(step)
}

/// The 6.6 request of customer `c` (`request`, already answered with `reply`) reaches the
/// broker again: it must answer with the same bytes and append nothing, and the wallet
/// must discard the repeated reply.
///
/// # Errors
/// No answer from the broker, or a node that could not be inspected.
pub async fn replayed(
    w: &mut World,
    c: usize,
    request: Vec<u8>,
    reply: &[u8],
) -> anyhow::Result<Step> {
    let before = broker_view(w).await?;
    let again = w
        .bus
        .request(&w.subjects.broker(), request.into(), TIMEOUT)
        .await
        .context("no answer from the broker to the repeated request")?;
    let after = broker_view(w).await?;
    let cust = &mut w.customers[c];
    let wallet_before = (cust.wallet.state().clone(), cust.wallet.log().len()?);
    let fed = cust.wallet.handle_reply(&again, clock());
    let wallet_after = (cust.wallet.state().clone(), cust.wallet.log().len()?);
    let bank = after.state.bank_balance(&cust.pan);
    let checks = vec![
        Check::that(
            "the broker answered with its stored reply, byte for byte",
            again.as_ref() == reply,
            || "the reply differs from the first one".to_owned(),
        ),
        before.unchanged(&after, "the broker", "balances"),
        Check::that(
            format!(
                "{}'s wallet discarded the repeated reply and is unchanged",
                cust.name
            ),
            matches!(fed, Err(WalletError::NoPendingRequest { .. }))
                && wallet_before == wallet_after,
            || match &fed {
                Ok(_) => "the wallet took it as a new outcome".to_owned(),
                Err(e) => format!("the wallet answered: {e}"),
            },
        ),
    ];
    Ok(Step {
        id: "7-replay",
        title: "A repeated request gets the stored reply and appends no event (section 7)",
        kind: Kind::Repeat,
        lines: vec![
            format!(
                "{}'s 6.6 request reaches the broker a second time (a retry after a lost \
                 reply, or a replay)",
                cust.name
            ),
            format!(
                "the broker answered with the reply it stored ({} bytes) and did not credit \
                 {}'s bank account again: it holds {bank}",
                again.len(),
                cust.name
            ),
        ],
        checks,
    })
}

/// Customer `c`, whose BrokerScrip has expired, tries to cash it in (6.6) before renewing
/// it: the broker refuses `Expired`, the wallet records the refusal and gives the request
/// up, and keeps the scrip for its renewal.
///
/// # Errors
/// `c` holds no BrokerScrip, no answer from the broker, or a wallet or node failure.
pub async fn expired(w: &mut World, c: usize) -> anyhow::Result<Step> {
    let before = broker_view(w).await?;
    let cust = &mut w.customers[c];
    let held = cust
        .wallet
        .broker_scrip()
        .map(|b| (b.scrip.id(), b.scrip.value(), b.scrip.body.expires))
        .with_context(|| format!("{} holds no BrokerScrip", cust.name))?;
    let out = cust.wallet.withdraw_broker_scrip(clock())?;
    let (tx, label) = (out.tx, out.label);
    let result = w.client.send(&mut cust.wallet, out, clock()).await;
    let (answer, refused) = match result {
        Ok(_) => (Answer::Accepted(Label::BrokerScripWithdrawResponse), false),
        Err(ClientError::Wallet(WalletError::Refused {
            error_code,
            code,
            message,
            ..
        })) => (
            Answer::Refused {
                code: error_code,
                number: code,
                message,
            },
            true,
        ),
        Err(e) => {
            return Err(anyhow::Error::from(e).context("6.6 with an expired BrokerScrip"));
        }
    };
    if refused {
        cust.wallet.abandon(tx, label, clock())?;
    }
    let after = broker_view(w).await?;
    let cust = &w.customers[c];
    let still = cust
        .wallet
        .broker_scrip()
        .map(|b| (b.scrip.id(), b.scrip.value(), b.scrip.body.expires));
    let checks = vec![
        answer.refused_with(ErrorCode::Expired),
        before.unchanged(&after, "the broker", "balances"),
        Check::that(
            format!("{} still holds the same BrokerScrip", cust.name),
            still == Some(held),
            || "the wallet's BrokerScrip changed".to_owned(),
        ),
    ];
    Ok(Step {
        id: "6.8-expired",
        title: "Refused: an expired BrokerScrip cashed in before its renewal (section 4)",
        kind: Kind::Refusal(ErrorCode::Expired),
        lines: vec![
            format!(
                "{} tries to cash in his BrokerScrip {}, expired at {} (the clock is at {}: {})",
                cust.name,
                held.1,
                shared::UnixSecs::new(held.2).utc(),
                clock().utc(),
                relative(shared::UnixSecs::new(held.2), clock())
            ),
            answer.describe("broker"),
            format!(
                "{} gives the refused request up and keeps the scrip to renew it",
                cust.name
            ),
        ],
        checks,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use shared::wire::bodies::Re;
    use shared::{Suite, fixtures};

    fn error_reply(signer: &KeyPair, code: ErrorCode) -> Vec<u8> {
        let header = Header::new(signer.suite(), Label::Error, TxId([3; 16]), signer.uid());
        let body = ErrorBody::new(
            Re {
                sender: fixtures::keypair(Suite::Paper, 0).uid(),
                label: Label::PurchaseRequest,
                digest: vec![1; 32],
            },
            code,
            "scrip is not live",
        );
        Frame::new(header, vec![sign(signer, &header, &body).unwrap().into()])
            .encode()
            .unwrap()
    }

    #[test]
    fn the_expected_code_signed_by_the_node_holds() {
        let node = fixtures::keypair(Suite::Paper, 2);
        let answer = Answer::read(&error_reply(node, ErrorCode::Spent), node.public());
        assert_eq!(
            answer.describe("tea shop"),
            "the tea shop refused it: Spent (scrip is not live)"
        );
        assert_eq!(
            answer.refused_with(ErrorCode::Spent),
            Check::new("refused with Spent", Ok(()))
        );
    }

    #[test]
    fn another_code_fails_the_check_naming_both() {
        let node = fixtures::keypair(Suite::Paper, 2);
        let answer = Answer::read(&error_reply(node, ErrorCode::BadFrame), node.public());
        assert_eq!(
            answer.refused_with(ErrorCode::Spent),
            Check::new(
                "refused with Spent",
                Err("it was refused with BadFrame".to_owned())
            )
        );
    }

    #[test]
    fn an_error_signed_by_another_key_or_garbage_fails_the_check() {
        let node = fixtures::keypair(Suite::Paper, 2);
        let other = fixtures::keypair(Suite::Paper, 3);
        let answer = Answer::read(&error_reply(other, ErrorCode::Spent), node.public());
        assert!(matches!(answer, Answer::Unreadable(_)), "{answer:?}");
        assert!(!answer.refused_with(ErrorCode::Spent).held);
        let answer = Answer::read(b"\x00garbage", node.public());
        assert!(matches!(answer, Answer::Unreadable(_)), "{answer:?}");
        assert!(!answer.refused_with(ErrorCode::Spent).held);
    }

    #[test]
    fn an_accepted_request_fails_the_refusal_check() {
        let answer = Answer::Accepted(Label::PurchaseResponse);
        let check = answer.refused_with(ErrorCode::Spent);
        assert!(!check.held);
        assert_eq!(
            check.detail.as_deref(),
            Some("it was accepted: PurchaseResponse")
        );
    }

    #[test]
    fn a_view_that_changed_names_what_changed() {
        let before = View {
            state: 1,
            events: 10,
        };
        assert!(
            before
                .unchanged(&before.clone(), "the broker", "balances")
                .held
        );
        let grown = View {
            state: 1,
            events: 11,
        };
        assert_eq!(
            before
                .unchanged(&grown, "the broker", "balances")
                .detail
                .as_deref(),
            Some("its log went from 10 to 11 events")
        );
        let changed = View {
            state: 2,
            events: 10,
        };
        assert_eq!(
            before
                .unchanged(&changed, "the broker", "balances")
                .detail
                .as_deref(),
            Some("its balances changed")
        );
    }
}
