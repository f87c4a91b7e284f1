//! What one vector is made of, before any randomness: a frame's header and the layout of
//! its parts with their exact bodies (docs/protocol.md section 3 and appendix A). A
//! [`Spec`] is rendered into a frame (signed, sealed: random) and a frame, stored or
//! fresh, is read back against its spec: every part opened with the fixture key of its
//! recipient and every signature verified with the fixture key of its signer.

use serde_json::Value;
use shared::wire::{
    DigestItem, Frame, Header, Inner, Label, LabelKind, Part, id_proof, id_proof_message,
    public_key_inner, request_digest, seal, secret_inner, sig_input, sign_bytes, verify_signature,
};
use shared::{CustomerSecret, PanSecret, ScripId, Suite};

use super::world::{Role, World};

/// One inner of a sealed part (docs/protocol.md section 3), in order.
#[derive(Clone, Debug)]
pub enum InnerSpec {
    /// `Sign_K(X)` by the part's signer: the type name of `X`, its postcard bytes and its
    /// field values (serde's JSON form of the typed struct).
    Signed {
        ty: &'static str,
        body: Vec<u8>,
        value: Value,
    },
    /// `SignOnly_K(ID)` of the signer's account.
    IdProof,
    /// The signer's public key (6.0).
    PublicKey,
    /// A CustomerSecret beside the body that holds its `cs_hash`.
    Secret {
        scrip_id: ScripId,
        cs: CustomerSecret,
    },
    /// The PANSecret of an account the operator opens (docs/adr/0010).
    PanSecret { secret: &'static str },
}

/// One part of a frame (docs/protocol.md section 3).
#[derive(Clone, Debug)]
pub enum PartSpec {
    /// A body signed in the clear by the sender (as [`InnerSpec::Signed`]).
    Signed {
        ty: &'static str,
        body: Vec<u8>,
        value: Value,
    },
    /// An unsigned body (the broker's `Ack` of 6.3, docs/adr/0008).
    Clear {
        ty: &'static str,
        body: Vec<u8>,
        value: Value,
    },
    /// A part sealed to `to`, its inners signed by the sender.
    Sealed { to: Role, inners: Vec<InnerSpec> },
    /// Part `part` of the earlier vector `from`, relayed unchanged with its header.
    Forwarded {
        from: String,
        origin: Header,
        signer: Role,
        part: usize,
        to: Role,
        inners: Vec<InnerSpec>,
    },
}

/// A signed body of another party carried inside a body (the merchant's undertaking in
/// `ChangeBrokerScrip`, 6.2 step 5 and 6.5 step 6).
#[derive(Clone, Debug)]
pub struct Embedded {
    /// Who signed it.
    pub signer: Role,
    /// The header it was signed under.
    pub header: Header,
    /// The body as signed.
    pub body: Vec<u8>,
    /// The signature.
    pub sig: Vec<u8>,
}

/// One vector: a frame's header and parts.
#[derive(Clone, Debug)]
pub struct Spec {
    /// Unique name in its file.
    pub name: String,
    /// Where in docs/protocol.md the message is, and how it travels.
    pub step: &'static str,
    /// The sender.
    pub sender: Role,
    /// Who reads it.
    pub recipient: Role,
    /// The frame header.
    pub header: Header,
    /// The parts, in order.
    pub parts: Vec<PartSpec>,
    /// A signed body carried inside a body, if any.
    pub embedded: Option<Embedded>,
}

/// A sealed part as its reader sees it: a part sealed by the sender, or one it relays.
#[derive(Clone, Debug)]
pub struct SealedRef<'a> {
    /// Where in the frame, for messages: "part i (…)".
    pub at: String,
    /// Its inners.
    pub inners: &'a [InnerSpec],
    /// The header its inners are bound to: the frame's, or the origin's if forwarded.
    pub header: Header,
    /// Who signed its inners (and proves its account with an IdProof).
    pub signer: Role,
    /// Who can open it.
    pub reader: Role,
    /// Whether it is relayed from an earlier frame.
    pub forwarded: bool,
}

/// A signed (or clear) body as the vector file lists it.
#[derive(Clone, Debug)]
pub struct BodyRef<'a> {
    /// Where in the frame.
    pub at: String,
    /// Its type name.
    pub ty: &'static str,
    /// Its signer, `None` for a clear body.
    pub signer: Option<Role>,
    /// The header it is signed under: the frame's, or the origin's if forwarded.
    pub header: Header,
    /// Whether it came in a forwarded part (the digest then includes its origin header).
    pub forwarded: bool,
    /// Who can read it: `None` for anyone (in the clear).
    pub reader: Option<Role>,
    /// The postcard bytes.
    pub body: &'a [u8],
    /// Its field values.
    pub value: &'a Value,
}

impl Spec {
    /// Part `i` as its reader sees it, if it is sealed (by the sender, or relayed).
    pub fn sealed(&self, i: usize) -> Option<SealedRef<'_>> {
        match &self.parts[i] {
            PartSpec::Sealed { to, inners } => Some(SealedRef {
                at: format!("part {i} (sealed to {})", to.name()),
                inners,
                header: self.header,
                signer: self.sender,
                reader: *to,
                forwarded: false,
            }),
            PartSpec::Forwarded {
                from,
                origin,
                signer,
                to,
                inners,
                ..
            } => Some(SealedRef {
                at: format!("part {i} (forwarded from {from}, sealed to {})", to.name()),
                inners,
                header: *origin,
                signer: *signer,
                reader: *to,
                forwarded: true,
            }),
            PartSpec::Signed { .. } | PartSpec::Clear { .. } => None,
        }
    }

    /// Every body of the frame, in frame order.
    pub fn bodies(&self) -> Vec<BodyRef<'_>> {
        let mut out = Vec::new();
        for (i, part) in self.parts.iter().enumerate() {
            match part {
                PartSpec::Signed { ty, body, value } | PartSpec::Clear { ty, body, value } => {
                    out.push(BodyRef {
                        at: format!("part {i}"),
                        ty,
                        signer: matches!(part, PartSpec::Signed { .. }).then_some(self.sender),
                        header: self.header,
                        forwarded: false,
                        reader: None,
                        body,
                        value,
                    });
                }
                PartSpec::Sealed { .. } | PartSpec::Forwarded { .. } => {
                    let sealed = self.sealed(i).expect("a sealed part");
                    out.extend(
                        signed_inners(sealed.inners).map(|(j, ty, body, value)| BodyRef {
                            at: format!("{}, inner {j}", sealed.at),
                            ty,
                            signer: Some(sealed.signer),
                            header: sealed.header,
                            forwarded: sealed.forwarded,
                            reader: Some(sealed.reader),
                            body,
                            value,
                        }),
                    );
                }
            }
        }
        out
    }

    /// The request digest the recipient computes (docs/protocol.md section 7): over the
    /// bodies it can read, in frame order, a forwarded one with its origin header. `None`
    /// for a frame no one answers by digest (a reply, or a delivery other than 6.5 step 2).
    pub fn digest(&self) -> Option<Vec<u8>> {
        let answered = matches!(self.header.label.kind(), LabelKind::Request { .. })
            || self.header.label == Label::VendorTopUpAuthorization;
        if !answered {
            return None;
        }
        let bodies = self.bodies();
        let items: Vec<DigestItem<'_>> = bodies
            .iter()
            .filter(|b| b.signer.is_some() && b.reader.is_none_or(|r| r == self.recipient))
            .map(|b| DigestItem {
                origin: b.forwarded.then_some(&b.header),
                body: b.body,
            })
            .collect();
        Some(request_digest(&self.header, &items).expect("a vector's digest"))
    }

    /// Signs and seals the spec into a frame; a forwarded part is taken from `earlier`,
    /// the frames already rendered.
    pub fn render(&self, world: &World, earlier: &dyn Fn(&str) -> Frame) -> Frame {
        let me = world.key(self.sender);
        let parts = self
            .parts
            .iter()
            .map(|part| match part {
                PartSpec::Signed { body, .. } => sign_bytes(me, &self.header, body.clone())
                    .expect("signing a vector body")
                    .into(),
                PartSpec::Clear { body, .. } => Part::Clear { body: body.clone() },
                PartSpec::Sealed { to, inners } => {
                    let inners: Vec<Inner> = inners
                        .iter()
                        .map(|i| render_inner(world, self.sender, &self.header, i))
                        .collect();
                    seal(&self.header, world.key(*to).public(), &inners).expect("sealing")
                }
                PartSpec::Forwarded {
                    from, origin, part, ..
                } => {
                    let source = earlier(from);
                    Part::forwarded(*origin, source.parts[*part].clone()).expect("forwarding")
                }
            })
            .collect();
        Frame::new(self.header, parts)
    }
}

fn signed_inners(
    inners: &[InnerSpec],
) -> impl Iterator<Item = (usize, &'static str, &[u8], &Value)> {
    inners
        .iter()
        .enumerate()
        .filter_map(|(j, inner)| match inner {
            InnerSpec::Signed { ty, body, value } => Some((j, *ty, body.as_slice(), value)),
            _ => None,
        })
}

fn render_inner(world: &World, signer: Role, header: &Header, inner: &InnerSpec) -> Inner {
    let key = world.key(signer);
    match inner {
        InnerSpec::Signed { body, .. } => sign_bytes(key, header, body.clone())
            .expect("signing a vector body")
            .into(),
        InnerSpec::IdProof => id_proof(key, header, &world.account_id(signer)).expect("an IdProof"),
        InnerSpec::PublicKey => public_key_inner(key.public()),
        InnerSpec::Secret { scrip_id, cs } => secret_inner(*scrip_id, cs),
        InnerSpec::PanSecret { secret } => Inner::PanSecret {
            secret: PanSecret::new(secret),
        },
    }
}

/// A signature read from a frame: where, and the bytes.
#[derive(Clone, Debug)]
pub struct ReadSig {
    /// Where in the frame (as [`BodyRef::at`]).
    pub at: String,
    /// The signature.
    pub sig: Vec<u8>,
}

/// What reading a frame against its spec found: every body signature and IdProof, in
/// frame order.
#[derive(Clone, Debug, Default)]
pub struct Read {
    /// The signature of each signed body.
    pub sigs: Vec<ReadSig>,
    /// Each IdProof: where, and its signature.
    pub id_proofs: Vec<ReadSig>,
}

/// Reads `frame` against `spec`: the header and layout must be the spec's; every sealed
/// part opens with its recipient's fixture key and holds exactly the spec's inners; every
/// body is byte for byte the spec's and its signature verifies under the header it was
/// made under; every IdProof verifies for the signer's account ID; a forwarded part is
/// the earlier vector's part, unchanged. In the paper suite (PKCS#1 v1.5, deterministic)
/// every signature also equals a fresh one. Panics, naming the vector, on any difference.
pub fn read(world: &World, spec: &Spec, frame: &Frame, earlier: &dyn Fn(&str) -> Frame) -> Read {
    let name = &spec.name;
    assert_eq!(frame.header, spec.header, "{name}: header");
    frame
        .check()
        .unwrap_or_else(|e| panic!("{name}: frame check: {e}"));
    assert_eq!(
        frame.parts.len(),
        spec.parts.len(),
        "{name}: number of parts"
    );
    let mut read = Read::default();
    for (i, part) in spec.parts.iter().enumerate() {
        let stored = &frame.parts[i];
        let at = |j: usize, to: Role| format!("part {i} (sealed to {}), inner {j}", to.name());
        match part {
            PartSpec::Signed { body, .. } => {
                let Part::Signed { body: got, sig } = stored else {
                    panic!("{name}: part {i} is not Signed");
                };
                assert_eq!(hex::encode(got), hex::encode(body), "{name}: part {i} body");
                check_sig(world, spec.sender, &spec.header, body, sig, name);
                read.sigs.push(ReadSig {
                    at: format!("part {i}"),
                    sig: sig.clone(),
                });
            }
            PartSpec::Clear { body, .. } => {
                let Part::Clear { body: got } = stored else {
                    panic!("{name}: part {i} is not Clear");
                };
                assert_eq!(hex::encode(got), hex::encode(body), "{name}: part {i} body");
            }
            PartSpec::Sealed { to, inners } => {
                let found = read_sealed(world, frame, i, *to, spec.sender, inners, name);
                for (j, sig, proof) in found {
                    let entry = ReadSig {
                        at: at(j, *to),
                        sig,
                    };
                    if proof {
                        read.id_proofs.push(entry);
                    } else {
                        read.sigs.push(entry);
                    }
                }
            }
            PartSpec::Forwarded {
                from,
                origin,
                signer,
                part,
                to,
                inners,
            } => {
                let source = earlier(from);
                let expected =
                    Part::forwarded(*origin, source.parts[*part].clone()).expect("forwarding");
                assert_eq!(
                    stored, &expected,
                    "{name}: part {i} is {from}'s part {part}"
                );
                let found = read_sealed(world, frame, i, *to, *signer, inners, name);
                for (j, sig, proof) in found {
                    let entry = ReadSig {
                        at: format!(
                            "part {i} (forwarded from {from}, sealed to {}), inner {j}",
                            to.name()
                        ),
                        sig,
                    };
                    if proof {
                        read.id_proofs.push(entry);
                    } else {
                        read.sigs.push(entry);
                    }
                }
            }
        }
    }
    if let Some(e) = &spec.embedded {
        check_sig(world, e.signer, &e.header, &e.body, &e.sig, name);
    }
    read
}

/// Opens part `index` of `frame` with `to`'s key and checks its inners against `inners`,
/// signed by `signer` under the part's header. Returns each signature: (inner index,
/// signature, whether it is an IdProof).
fn read_sealed(
    world: &World,
    frame: &Frame,
    index: usize,
    to: Role,
    signer: Role,
    inners: &[InnerSpec],
    name: &str,
) -> Vec<(usize, Vec<u8>, bool)> {
    let part = frame.part(index).expect("a part");
    let Part::Sealed { to: uid, .. } = part.part else {
        panic!("{name}: part {index} is not Sealed");
    };
    assert_eq!(*uid, world.uid(to), "{name}: part {index} recipient");
    let opened = part
        .open_sealed(world.key(to))
        .unwrap_or_else(|e| panic!("{name}: part {index} does not open: {e}"));
    let header = opened.header();
    let got = opened.inners();
    assert_eq!(got.len(), inners.len(), "{name}: part {index} inner count");
    let mut sigs = Vec::new();
    for (j, (spec, inner)) in inners.iter().zip(got).enumerate() {
        let what = format!("{name}: part {index} inner {j}");
        match (spec, inner) {
            (InnerSpec::Signed { body, .. }, Inner::Signed { body: b, sig }) => {
                assert_eq!(hex::encode(b), hex::encode(body), "{what} body");
                check_sig(world, signer, header, body, sig, &what);
                sigs.push((j, sig.clone(), false));
            }
            (InnerSpec::IdProof, Inner::IdProof { sig }) => {
                let key = world.key(signer);
                let message = id_proof_message(header, &world.account_id(signer));
                key.public()
                    .verify(&message, sig)
                    .unwrap_or_else(|e| panic!("{what}: IdProof: {e}"));
                if header.suite == Suite::Paper {
                    let fresh = id_proof(key, header, &world.account_id(signer)).expect("IdProof");
                    assert_eq!(&fresh, inner, "{what}: paper IdProof is deterministic");
                }
                sigs.push((j, sig.clone(), true));
            }
            (InnerSpec::PublicKey, Inner::PublicKey { spki_der }) => {
                assert_eq!(spki_der, world.key(signer).public().spki_der(), "{what}");
            }
            (InnerSpec::Secret { scrip_id, cs }, Inner::Secret { .. }) => {
                assert_eq!(inner, &secret_inner(*scrip_id, cs), "{what}");
            }
            (InnerSpec::PanSecret { secret }, Inner::PanSecret { secret: got }) => {
                assert_eq!(got.expose(), secret.as_bytes(), "{what}");
            }
            (spec, inner) => panic!("{what}: expected {spec:?}, found {}", inner.kind_name()),
        }
    }
    sigs
}

/// `sig` verifies over `SigInput(header, body)` with `signer`'s key; in the paper suite it
/// is also the one signature PKCS#1 v1.5 gives.
fn check_sig(world: &World, signer: Role, header: &Header, body: &[u8], sig: &[u8], what: &str) {
    let key = world.key(signer);
    verify_signature(header, body, sig, key.public())
        .unwrap_or_else(|e| panic!("{what}: signature: {e}"));
    if header.suite == Suite::Paper {
        let fresh = key
            .sign(&sig_input(header, body).expect("SigInput"))
            .expect("signing");
        assert_eq!(
            hex::encode(&fresh),
            hex::encode(sig),
            "{what}: paper signature"
        );
    }
}
