//! Merchants by name (docs/adr/0016), the merchant's side: its configured display name
//! registered at the broker (`MerchantProfile`, answered `Ack`) so that customers find it
//! with `peerscrip merchants`. Sans-IO like `register`: [`profile_request`] builds the
//! request, [`accept_profile`] checks the broker's answer under its pinned key (section 1)
//! before the daemon believes its name is listed.

use shared::wire::bodies::{AckBody, MerchantName, MerchantProfileX0};
use shared::wire::{DigestItem, Frame, Header, Label, WireError, request_digest, sign};
use shared::{KeyPair, PublicKey, TxId};

use super::broker_reply::{AnswerError, broker_answer, refusal};

/// The merchant's `MerchantProfile` in `tx`, and its request digest (what the `Ack`'s
/// `re` must name): `Signed(X0 = name)` in the clear, since the broker lists the name to
/// every registered peer anyway.
///
/// # Errors
/// A frame that could not be signed or encoded.
pub fn profile_request(
    keys: &KeyPair,
    name: &MerchantName,
    tx: TxId,
) -> Result<(Vec<u8>, Vec<u8>), WireError> {
    let header = Header::new(keys.suite(), Label::MerchantProfile, tx, keys.uid());
    let body = MerchantProfileX0 { name: name.clone() };
    let signed = sign(keys, &header, &body)?;
    let bytes = shared::wire::Body::to_bytes(&body);
    let digest = request_digest(
        &header,
        &[DigestItem {
            origin: None,
            body: &bytes,
        }],
    )?;
    Ok((Frame::new(header, vec![signed.into()]).encode()?, digest))
}

/// Checks the broker's answer to [`profile_request`] in `tx` with `digest`: its signed
/// `Ack` naming this request.
///
/// # Errors
/// [`AnswerError`]: refused (signed), asked to repeat later (unsigned: over a quota, a name
/// changed too recently, a log it could not write), or a reply that does not verify or
/// does not answer this request.
pub fn accept_profile(
    reply: &[u8],
    keys: &KeyPair,
    broker: &PublicKey,
    tx: TxId,
    digest: &[u8],
) -> Result<(), AnswerError> {
    let frame = broker_answer(reply, broker, tx)?;
    match frame.header.label {
        Label::Ack => {
            let ack = frame.part(0)?.verify_signed::<AckBody>(broker)?.body;
            if ack.re.sender != keys.uid()
                || ack.re.label != Label::MerchantProfile
                || ack.re.digest != digest
            {
                return Err(AnswerError::Mismatch("the Ack names another request"));
            }
            Ok(())
        }
        _ => Err(refusal(&frame, broker)?),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use shared::wire::bodies::{ErrorBody, MerchantProfileX0, Re};
    use shared::{ErrorCode, Suite, fixtures};

    use super::*;

    fn reply<B: shared::wire::Body>(broker: &KeyPair, request: &Header, body: &B) -> Vec<u8> {
        let header = Header::new(broker.suite(), B::LABEL, request.tx, broker.uid());
        Frame::new(header, vec![sign(broker, &header, body).unwrap().into()])
            .encode()
            .unwrap()
    }

    /// The request is the signed name in the clear; the broker's `Ack` naming it is
    /// accepted, and only that: not one of another tx, another digest or another signer;
    /// a signed refusal is the broker's code.
    #[test]
    fn the_request_is_the_signed_name_and_only_its_ack_is_believed() {
        let suite = Suite::Paper;
        let (broker, keys) = (fixtures::keypair(suite, 0), fixtures::keypair(suite, 1));
        let name = MerchantName::new("Green Tea House").unwrap();
        let tx = TxId::random();
        let (frame, digest) = profile_request(keys, &name, tx).unwrap();
        let sent = Frame::decode(&frame).unwrap();
        assert_eq!(sent.header.label, Label::MerchantProfile);
        let x0 = sent
            .part(0)
            .unwrap()
            .verify_signed::<MerchantProfileX0>(keys.public())
            .unwrap();
        assert_eq!(x0.body.name, name);

        let ack = AckBody {
            re: Re::new(&sent.header, digest.clone()),
            deadline: None,
        };
        let answer = reply(broker, &sent.header, &ack);
        accept_profile(&answer, keys, broker.public(), tx, &digest).unwrap();
        assert!(matches!(
            accept_profile(&answer, keys, broker.public(), TxId::random(), &digest),
            Err(AnswerError::Mismatch(_))
        ));
        assert!(matches!(
            accept_profile(&answer, keys, broker.public(), tx, &[0; 4]),
            Err(AnswerError::Mismatch(_))
        ));
        let forged = reply(keys, &sent.header, &ack);
        assert!(matches!(
            accept_profile(&forged, keys, broker.public(), tx, &digest),
            Err(AnswerError::Mismatch(_))
        ));
        let refused = ErrorBody::new(
            Re::new(&sent.header, digest.clone()),
            ErrorCode::UnknownPeer,
            "the sender is not a registered peer",
        );
        let answer = reply(broker, &sent.header, &refused);
        let refused = accept_profile(&answer, keys, broker.public(), tx, &digest);
        assert!(
            matches!(&refused, Err(AnswerError::Refused { code, message })
                if code == "UnknownPeer" && message == "the sender is not a registered peer"),
            "{refused:?}"
        );
    }
}
