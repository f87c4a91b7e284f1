//! build → encode → decode → open/verify, for each kind of part.

use super::Parties;
use crate::amount::Amount;
use crate::suite::Suite;
use crate::wire::bodies::{
    BrokerScripTopUpX0, ChangeBrokerScripX4, ExchangeAuthorizationRequestX3, PurchaseInitiatedX0,
    RegistrationRequestX0, VendorScripRequestX1, VendorScripRequestX2,
};
use crate::wire::{
    Body, DigestItem, Frame, Header, Label, Undertaking, digest_of_verified, id_proof,
    public_key_inner, request_digest, seal, secret_inner, sign,
};
use crate::{Nonce, Pan};

#[test]
fn signed_part_round_trip() {
    for suite in Suite::ALL {
        let p = Parties::new(suite);
        let header = p.header(Label::PurchaseInitiated, p.c);
        let body = PurchaseInitiatedX0 {
            merchant: p.m.uid(),
            value: Amount::from_minor(750),
        };
        let frame = Frame::new(header, vec![sign(p.c, &header, &body).unwrap().into()]);
        let got = Frame::decode(&frame.encode().unwrap()).unwrap();
        assert_eq!(got, frame);

        let v = got
            .part(0)
            .unwrap()
            .verify_signed::<PurchaseInitiatedX0>(p.c.public())
            .unwrap();
        assert_eq!(v.body, body);
        assert_eq!(v.evidence.header, header);
        assert!(!v.evidence.forwarded);
        assert_eq!(v.evidence.body, body.to_bytes());
        assert_eq!(v.evidence.signer, p.c.uid());
        assert_eq!(v.evidence.verify(p.c.public()), Ok(()));
        assert_eq!(
            digest_of_verified(&header, &[&v.evidence]).unwrap(),
            request_digest(
                &header,
                &[DigestItem {
                    origin: None,
                    body: &v.evidence.body
                }]
            )
            .unwrap()
        );
    }
}

/// A sealed part holding one inner of every kind: Signed, IdProof, PublicKey, Secret.
#[test]
fn sealed_part_with_every_inner_kind_round_trip() {
    for suite in Suite::ALL {
        let p = Parties::new(suite);
        let header = p.header(Label::BrokerScripTopUp, p.c);
        let body = BrokerScripTopUpX0 {
            scrip: p.scrip.clone(),
            cs_hash: p.cs.cs_hash(suite),
            new_value: Amount::from_minor(2000),
            nonce: Nonce([9; 16]),
        };
        let part = seal(
            &header,
            p.b.public(),
            &[
                id_proof(p.c, &header, &p.id_c).unwrap(),
                sign(p.c, &header, &body).unwrap().into(),
                public_key_inner(p.c.public()),
                secret_inner(p.scrip.id(), &p.cs),
            ],
        )
        .unwrap();
        let frame = Frame::new(header, vec![part]);
        let got = Frame::decode(&frame.encode().unwrap()).unwrap();
        assert_eq!(got, frame);

        let opened = got.part(0).unwrap().open_sealed(p.b).unwrap();
        assert_eq!(opened.header(), &header);
        assert!(!opened.forwarded());
        assert_eq!(opened.inners().len(), 4);
        let v = opened.signed::<BrokerScripTopUpX0>(p.c.public()).unwrap();
        assert_eq!(v.body, body);
        assert_eq!(opened.verify_id_proof(p.c.public(), &p.id_c), Ok(()));
        let key = opened.public_key().unwrap();
        assert_eq!(&key, p.c.public());
        assert_eq!(key.uid(), header.sender);
        let cs = opened.secret(v.body.scrip.id(), &v.body.cs_hash).unwrap();
        assert_eq!(cs, p.cs);
        // Nothing secret shows in the opened part's Debug.
        let shown = format!("{opened:?}");
        assert!(!shown.contains(&format!("{:?}", p.cs.expose())));
    }
}

/// 6.0: the broker verifies the signed inner with the key the same part carries, whose
/// UID must be the frame's sender.
#[test]
fn registration_round_trip() {
    for suite in Suite::ALL {
        let p = Parties::new(suite);
        let header = p.header(Label::RegistrationRequest, p.c);
        let body = RegistrationRequestX0 {
            pan: Pan::new("GR1601101250000000012300695"),
        };
        let part = seal(
            &header,
            p.b.public(),
            &[
                sign(p.c, &header, &body).unwrap().into(),
                id_proof(p.c, &header, &p.id_c).unwrap(),
                public_key_inner(p.c.public()),
            ],
        )
        .unwrap();
        let frame = Frame::decode(&Frame::new(header, vec![part]).encode().unwrap()).unwrap();
        let opened = frame.part(0).unwrap().open_sealed(p.b).unwrap();
        let key = opened.public_key().unwrap();
        assert_eq!(key.uid(), frame.header.sender);
        assert_eq!(
            opened.signed::<RegistrationRequestX0>(&key).unwrap().body,
            body
        );
        assert_eq!(opened.verify_id_proof(&key, &p.id_c), Ok(()));
    }
}

/// 6.2 steps 2 to 5: C seals a part for B and one for M; M relays B's part unchanged
/// beside its own; B verifies the forwarded part against C's origin header, and returns
/// M's signed undertaking to C, who verifies it against the header M signed it under.
#[test]
fn forwarded_part_round_trip() {
    for suite in Suite::ALL {
        let p = Parties::new(suite);
        let w = Amount::from_minor(300);

        // Step 2, C → M.
        let h2 = p.header(Label::VendorScripRequest, p.c);
        let x1 = VendorScripRequestX1 {
            scrip: p.scrip.clone(),
            cs_hash: p.cs.cs_hash(suite),
            value: w,
        };
        let for_b = seal(
            &h2,
            p.b.public(),
            &[
                id_proof(p.c, &h2, &p.id_c).unwrap(),
                sign(p.c, &h2, &x1).unwrap().into(),
                secret_inner(p.scrip.id(), &p.cs),
            ],
        )
        .unwrap();
        let x2 = VendorScripRequestX2 { value: w };
        let for_m = seal(&h2, p.m.public(), &[sign(p.c, &h2, &x2).unwrap().into()]).unwrap();
        let step2 = Frame::decode(&Frame::new(h2, vec![for_b, for_m]).encode().unwrap()).unwrap();

        // M reads its part; it cannot read the broker's.
        let m_x2 = step2.part(1).unwrap().open_sealed(p.m).unwrap();
        assert_eq!(
            m_x2.signed::<VendorScripRequestX2>(p.c.public())
                .unwrap()
                .body,
            x2
        );
        assert!(step2.part(0).unwrap().open_sealed(p.m).is_err());

        // Step 3, M → B.
        let h3 = p.header(Label::ExchangeAuthorizationRequest, p.m);
        let x3 = ExchangeAuthorizationRequestX3 {
            value: w,
            customer: p.c.uid(),
        };
        let own = seal(
            &h3,
            p.b.public(),
            &[
                id_proof(p.m, &h3, &p.id_m).unwrap(),
                sign(p.m, &h3, &x3).unwrap().into(),
            ],
        )
        .unwrap();
        let step3 = Frame::new(h3, vec![own, step2.forward(0).unwrap()]);
        let step3 = Frame::decode(&step3.encode().unwrap()).unwrap();

        // B opens both.
        let m_part = step3.part(0).unwrap().open_sealed(p.b).unwrap();
        assert_eq!(m_part.verify_id_proof(p.m.public(), &p.id_m), Ok(()));
        let m_x3 = m_part
            .signed::<ExchangeAuthorizationRequestX3>(p.m.public())
            .unwrap();
        assert_eq!(m_x3.body, x3);

        let fwd = step3.part(1).unwrap();
        assert!(fwd.forwarded);
        assert_eq!(fwd.header, &h2);
        let c_part = fwd.open_sealed(p.b).unwrap();
        assert!(c_part.forwarded());
        assert_eq!(c_part.verify_id_proof(p.c.public(), &p.id_c), Ok(()));
        let c_x1 = c_part.signed::<VendorScripRequestX1>(p.c.public()).unwrap();
        assert_eq!(c_x1.body, x1);
        assert_eq!(c_x1.evidence.header, h2);
        assert!(c_x1.evidence.forwarded);
        assert_eq!(
            c_part.secret(c_x1.body.scrip.id(), &c_x1.body.cs_hash),
            Ok(p.cs.clone())
        );

        // The digest of step 3 hashes the forwarded body with its origin header.
        let digest = digest_of_verified(&h3, &[&m_x3.evidence, &c_x1.evidence]).unwrap();
        let expected = suite.hash(&[
            b"peerscrip/v1/req",
            h3.to_bytes().as_bytes(),
            &u32::try_from(m_x3.evidence.body.len())
                .unwrap()
                .to_be_bytes(),
            &m_x3.evidence.body,
            h2.to_bytes().as_bytes(),
            &u32::try_from(c_x1.evidence.body.len())
                .unwrap()
                .to_be_bytes(),
            &c_x1.evidence.body,
        ]);
        assert_eq!(digest, expected);

        // Step 5: C verifies M's undertaking, carried by B.
        let x4 = ChangeBrokerScripX4 {
            outcome: crate::wire::Decision::Ok,
            change: None,
            undertaking: Some(Undertaking::from(&m_x3.evidence)),
        };
        let undertaking = x4
            .undertaking
            .as_ref()
            .expect("an OK carries the undertaking");
        let rebuilt = Header::new(suite, Label::ExchangeAuthorizationRequest, p.tx, p.m.uid());
        assert_eq!(
            undertaking.verify::<ExchangeAuthorizationRequestX3>(&rebuilt, p.m.public()),
            Ok(x3.clone())
        );
        // Under any other header (here: another tx) it does not verify.
        let other_tx = Header {
            tx: crate::TxId([0; 16]),
            ..rebuilt
        };
        assert_eq!(
            undertaking.verify::<ExchangeAuthorizationRequestX3>(&other_tx, p.m.public()),
            Err(crate::wire::WireError::BadSignature)
        );
    }
}
