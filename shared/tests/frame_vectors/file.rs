//! The vector files `docs/vectors/frames-<suite>.json`: their JSON shape, and how a
//! vector's entry is described from its spec and a frame read against it. The format is
//! documented for other implementations in docs/vectors/README.md.

use serde::{Deserialize, Serialize};
use shared::Suite;
use shared::wire::{Frame, Header, LabelKind, id_proof_message, sig_input};

use super::spec::{InnerSpec, Read, Spec};
use super::world::{Role, World, account};

/// One file: the world's keys and accounts, then every vector.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VectorFile {
    /// What the file is, and how to regenerate it.
    pub about: Vec<String>,
    /// `paper` or `modern`.
    pub suite: String,
    /// Each party's fixture key.
    pub keys: Vec<KeyEntry>,
    /// The bank accounts whose `ID` the IdProofs prove.
    pub accounts: Vec<AccountEntry>,
    /// The producers' root keys (fixtures), from which every scrip's certificate and
    /// CustomerSecret derive (docs/protocol.md section 4).
    pub root_keys: Vec<RootKeyEntry>,
    /// The vectors, in order; a forwarded part names the earlier vector it came from.
    pub vectors: Vec<Vector>,
}

/// A party's key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyEntry {
    /// broker, merchant, customer or operator.
    pub role: String,
    /// The PKCS#8 PEM (public test key: its private half is public too).
    pub pem: String,
    /// Its UID (docs/protocol.md section 1).
    pub uid: String,
}

/// A bank account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountEntry {
    /// Whose.
    pub role: String,
    /// The PAN.
    pub pan: String,
    /// The PANSecret, as text.
    pub pan_secret: String,
    /// `ID = H(PANSecret ‖ H(PANSecret) ‖ PAN)`, hex.
    pub id: String,
}

/// A producer's root key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootKeyEntry {
    /// broker or merchant.
    pub producer: String,
    /// 32 bytes, hex.
    pub root_key: String,
}

/// One frame.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vector {
    /// Unique in the file.
    pub name: String,
    /// The label's name.
    pub label: String,
    /// The label's code.
    pub code: u8,
    /// request (and its reply label), reply or delivery, as the label table says.
    pub kind: String,
    /// Where in docs/protocol.md, and how it travels.
    pub step: String,
    /// The sender's role.
    pub sender: String,
    /// The role that opens and verifies it.
    pub recipient: String,
    /// `HeaderBytes` of the frame.
    pub header_bytes: String,
    /// Every body in frame order.
    pub bodies: Vec<BodyEntry>,
    /// Every IdProof in frame order.
    pub id_proofs: Vec<IdProofEntry>,
    /// A signed body of another party carried inside a body (`ChangeBrokerScrip`).
    pub embedded: Option<EmbeddedEntry>,
    /// The request digest the recipient computes (section 7), for requests and 6.5 step 2.
    pub digest: Option<String>,
    /// The complete frame, postcard, hex.
    pub frame: String,
}

/// One body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BodyEntry {
    /// Where in the frame.
    pub at: String,
    /// The Rust type of the body (its fields: docs/protocol.md appendix A).
    #[serde(rename = "type")]
    pub ty: String,
    /// Its signer's role; `null` for the unsigned `Ack`.
    pub signer: Option<String>,
    /// `HeaderBytes` it is signed under: the frame's, or the origin's if forwarded.
    pub header_bytes: String,
    /// The postcard body.
    pub body: String,
    /// The body's field values, as serde's JSON form of the typed struct.
    pub value: serde_json::Value,
    /// `SigInput` (section 3); `null` for the unsigned `Ack`.
    pub sig_input: Option<String>,
    /// The signature found in the frame (reproducible in the paper suite only).
    pub sig: Option<String>,
}

/// One IdProof.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdProofEntry {
    /// Where in the frame.
    pub at: String,
    /// Whose account.
    pub prover: String,
    /// `H("peerscrip/id" ‖ ID ‖ tx ‖ label)`, the message the signature scheme signs.
    pub message: String,
    /// The signature found in the frame (reproducible in the paper suite only).
    pub sig: String,
}

/// A signed body carried inside another body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmbeddedEntry {
    /// Its signer's role.
    pub signer: String,
    /// `HeaderBytes` it was signed under.
    pub header_bytes: String,
    /// The body.
    pub body: String,
    /// Its `SigInput`.
    pub sig_input: String,
    /// The signature, as carried.
    pub sig: String,
}

/// The text at the top of each file.
const ABOUT: [&str; 4] = [
    "Known-answer frames of every peerscrip label, docs/protocol.md appendix A; the format \
     and how to check yourself against it: docs/vectors/README.md.",
    "Checked by shared/tests/frame_vectors (cargo test -p shared --test frame_vectors); \
     regenerate with PEERSCRIP_WRITE_VECTORS=1 cargo test -p shared --test frame_vectors.",
    "The private keys are shared/testdata/keys/*.pem: public test keys, never use them.",
    "All binary values are lowercase hex.",
];

impl VectorFile {
    /// The file of `world`'s suite with these vectors.
    pub fn new(world: &World, vectors: Vec<Vector>) -> VectorFile {
        let suite = world.suite;
        VectorFile {
            about: ABOUT.iter().map(|s| (*s).to_owned()).collect(),
            suite: suite.name().to_owned(),
            keys: Role::ALL
                .iter()
                .map(|r| KeyEntry {
                    role: r.name().to_owned(),
                    pem: format!("shared/testdata/keys/{}-{}.pem", suite.name(), r.index()),
                    uid: world.uid(*r).to_string(),
                })
                .collect(),
            accounts: [Role::Customer, Role::Merchant]
                .iter()
                .map(|r| {
                    let (pan, secret) = account(*r);
                    AccountEntry {
                        role: r.name().to_owned(),
                        pan: pan.to_owned(),
                        pan_secret: secret.to_owned(),
                        id: hex::encode(world.account_id(*r).expose()),
                    }
                })
                .collect(),
            root_keys: [(Role::Broker, 0), (Role::Merchant, 1)]
                .iter()
                .map(|(r, n)| RootKeyEntry {
                    producer: r.name().to_owned(),
                    root_key: hex::encode(shared::fixtures::root_key(*n).expose()),
                })
                .collect(),
            vectors,
        }
    }
}

/// The entry of `spec`, whose `frame` was read against it with `read`.
pub fn describe(world: &World, spec: &Spec, frame: &Frame, read: &Read) -> Vector {
    let header = spec.header;
    let sig_at = |at: &str| {
        read.sigs
            .iter()
            .find(|s| s.at == at)
            .map(|s| hex::encode(&s.sig))
    };
    let bodies = spec
        .bodies()
        .into_iter()
        .map(|b| BodyEntry {
            sig: sig_at(&b.at),
            ty: b.ty.to_owned(),
            signer: b.signer.map(|r| r.name().to_owned()),
            header_bytes: hex::encode(b.header.to_bytes().as_bytes()),
            body: hex::encode(b.body),
            value: b.value.clone(),
            sig_input: b
                .signer
                .map(|_| hex::encode(sig_input(&b.header, b.body).expect("SigInput"))),
            at: b.at,
        })
        .collect();
    let id_proofs = id_proof_sites(spec)
        .into_iter()
        .map(|(at, header, prover)| IdProofEntry {
            sig: read
                .id_proofs
                .iter()
                .find(|p| p.at == at)
                .map(|p| hex::encode(&p.sig))
                .unwrap_or_else(|| panic!("{}: no IdProof read at {at}", spec.name)),
            message: hex::encode(id_proof_message(&header, &world.account_id(prover))),
            prover: prover.name().to_owned(),
            at,
        })
        .collect();
    Vector {
        name: spec.name.clone(),
        label: header.label.name().to_owned(),
        code: header.label.code(),
        kind: match header.label.kind() {
            LabelKind::Request { reply } => format!("request, answered by {reply}"),
            LabelKind::Reply => "reply".to_owned(),
            LabelKind::Delivery => "delivery".to_owned(),
        },
        step: spec.step.to_owned(),
        sender: spec.sender.name().to_owned(),
        recipient: spec.recipient.name().to_owned(),
        header_bytes: hex::encode(header.to_bytes().as_bytes()),
        bodies,
        id_proofs,
        embedded: spec.embedded.as_ref().map(|e| EmbeddedEntry {
            signer: e.signer.name().to_owned(),
            header_bytes: hex::encode(e.header.to_bytes().as_bytes()),
            body: hex::encode(&e.body),
            sig_input: hex::encode(sig_input(&e.header, &e.body).expect("SigInput")),
            sig: hex::encode(&e.sig),
        }),
        digest: spec.digest().map(hex::encode),
        frame: hex::encode(frame.encode().expect("a vector frame encodes")),
    }
}

/// Where the IdProofs of `spec` are: (place, the header they are bound to, whose account).
fn id_proof_sites(spec: &Spec) -> Vec<(String, Header, Role)> {
    let mut out = Vec::new();
    for sealed in (0..spec.parts.len()).filter_map(|i| spec.sealed(i)) {
        for (j, inner) in sealed.inners.iter().enumerate() {
            if matches!(inner, InnerSpec::IdProof) {
                out.push((
                    format!("{}, inner {j}", sealed.at),
                    sealed.header,
                    sealed.signer,
                ));
            }
        }
    }
    out
}

/// The suite named in a file.
pub fn suite_of(name: &str) -> Suite {
    match name {
        "paper" => Suite::Paper,
        "modern" => Suite::Modern,
        other => panic!("unknown suite {other:?} in a vector file"),
    }
}
