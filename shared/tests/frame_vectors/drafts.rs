//! The vectors sent by the broker and the merchant, rebuilt the way their cores build
//! frames (`shared::node::Draft`, docs/adr/0006) and read against the same spec: so the
//! layouts of the vector files (which parts, which inners in which order) are the ones
//! the nodes send, not a copy that could drift from them.

use shared::node::Draft;
use shared::wire::{Frame, Part};

use super::spec::{InnerSpec, PartSpec, Spec, read};
use super::world::{Role, World};

/// The frame `Draft::seal` makes of `spec`, a frame of the broker or the merchant: its own
/// part first (signed, unsigned, or sealed with the IdProof and CustomerSecrets the spec
/// lists), then the parts it relays, taken from `earlier`.
pub fn sealed_by_draft(world: &World, spec: &Spec, earlier: &dyn Fn(&str) -> Frame) -> Frame {
    let (own, relayed) = spec.parts.split_first().expect("a frame has a part");
    let mut draft = Draft {
        to: world.uid(spec.recipient),
        header: spec.header,
        sealed: matches!(own, PartSpec::Sealed { .. }),
        unsigned: matches!(own, PartSpec::Clear { .. }),
        forwarded: relayed
            .iter()
            .map(|part| match part {
                PartSpec::Forwarded {
                    from, origin, part, ..
                } => Part::forwarded(*origin, earlier(from).parts[*part].clone()).expect("relay"),
                _ => panic!("{}: a node relays only forwarded parts", spec.name),
            })
            .collect(),
        body: Vec::new(),
        secrets: Vec::new(),
        id_proof: None,
        answers: None,
    };
    match own {
        PartSpec::Signed { body, .. } | PartSpec::Clear { body, .. } => {
            draft.body.clone_from(body);
        }
        PartSpec::Sealed { inners, .. } => {
            for inner in inners {
                match inner {
                    InnerSpec::Signed { body, .. } => draft.body.clone_from(body),
                    InnerSpec::IdProof => draft.id_proof = Some(world.account_id(spec.sender)),
                    InnerSpec::Secret { scrip_id, cs } => {
                        draft.secrets.push((*scrip_id, cs.clone()));
                    }
                    other => panic!("{}: a node's draft has no {other:?}", spec.name),
                }
            }
        }
        PartSpec::Forwarded { .. } => panic!("{}: a node's own part comes first", spec.name),
    }
    let sent = draft
        .seal(
            world.key(spec.sender),
            Some(world.key(spec.recipient).public()),
        )
        .unwrap_or_else(|e| panic!("{}: {e}", spec.name));
    let frame = Frame::decode(&sent.frame).expect("a sealed draft decodes");
    read(world, spec, &frame, earlier);
    frame
}

/// Whether `spec` is a frame a node core builds with a `Draft` (the broker's and the
/// merchant's; the wallet and the operator's tool build theirs otherwise).
pub fn built_by_draft(spec: &Spec) -> bool {
    matches!(spec.sender, Role::Broker | Role::Merchant)
}
