//! `peerscrip-ops nats-config`: the deployment's NATS server configuration, one user per
//! node, each confined to its own subjects (architecture.md "Transport").
//!
//! Why generated rather than a fixed file: the permissions name each node's UID (a
//! customer may read only `<prefix>.peer.<its uid>` and `_INBOX.<its uid>.>`), and a
//! nats-server configuration has no per-user subject templates outside JWT mode. The
//! generator takes the nodes' public keys, derives their UIDs the way the protocol does
//! (protocol.md section 1), and builds every subject with [`Subjects`], the one place
//! subjects are spelled.
//!
//! The rules, per role (every node may also publish and subscribe under its own inbox
//! prefix `_INBOX.<uid>.>`: replies to its requests arrive there, and `NatsBus`'s flush is
//! an echo through it):
//! - broker: subscribes only to the broker subject; publishes deliveries to peer subjects
//!   and replies to the requests it received (`allow_responses`);
//! - merchant M: subscribes to its own merchant and peer subjects and its inbox; publishes
//!   requests to the broker and deliveries to peer subjects (6.5 step 5), and replies;
//!   it cannot subscribe to the broker's subject;
//! - customer C: subscribes only to its peer subject and its inbox; publishes only requests
//!   to the broker and merchant subjects. It cannot reply, deliver, or listen to anyone
//!   else.
//!
//! With an [`ExportGrant`] (`--export-stream`), the broker and each merchant may also
//! export their own log live (`export_stream` of the daemons, `shared::daemon::export`):
//! publish to their own export subject `<prefix>.<node kind>.<uid>` only, and call the
//! three JetStream API subjects of that one stream the exporter needs (its info, its
//! creation, and its last message on a subject, to resume). The acknowledgements come back
//! on the node's inbox, which it may already read. Nobody else gets them.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use shared::bus::Subjects;
use shared::secret::SecretBytes;
use shared::{PublicKey, Suite, Uid};
use zeroize::Zeroizing;

use crate::keygen::write_new;

/// The part a node plays, which decides its permissions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The broker (one per deployment).
    Broker,
    /// A merchant.
    Merchant,
    /// A customer's wallet.
    Customer,
}

/// One NATS user: a node's name, role, UID and generated password.
pub struct NatsUser {
    /// The user name (also the credential file's name): `[a-z0-9_-]+`.
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// The node's UID, from its public key.
    pub uid: Uid,
    /// A random password (24 bytes, hex).
    pub password: Zeroizing<String>,
}

impl NatsUser {
    /// A user with a fresh random password. The name must be a plain token, since it is
    /// written into the server's configuration and is a file name.
    pub fn new(name: &str, role: Role, uid: Uid) -> anyhow::Result<NatsUser> {
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        {
            bail!("user name {name:?} must be lowercase letters, digits, '-' or '_'");
        }
        let password = Zeroizing::new(hex::encode(SecretBytes::random(24).expose()));
        Ok(NatsUser {
            name: name.to_owned(),
            role,
            uid,
            password,
        })
    }
}

/// What one user may publish and subscribe to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permissions {
    /// Subjects it may publish to.
    pub publish: Vec<String>,
    /// Subjects it may subscribe to.
    pub subscribe: Vec<String>,
    /// Whether it may reply to the requests it receives.
    pub allow_responses: bool,
}

/// The live export a deployment's nodes may do (see the module documentation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportGrant {
    /// The JetStream stream (`export_stream` of the daemons).
    pub stream: String,
    /// The export subject prefix (`export_subject_prefix`).
    pub subject_prefix: String,
}

impl ExportGrant {
    /// The grant for `stream` under `subject_prefix`, each checked by the rules the
    /// daemons check them by (a stream name JetStream takes, a prefix the bus takes), so
    /// that the configuration names what the daemons will use.
    pub fn new(stream: String, subject_prefix: String) -> anyhow::Result<ExportGrant> {
        if !shared::daemon::export::is_stream_name(&stream) {
            bail!(
                "{stream:?} is not a JetStream stream name (printable ASCII without \
                 whitespace, '.', '*', '>', '/', '\\')"
            );
        }
        let subject_prefix = Subjects::new(subject_prefix)?.prefix().to_owned();
        Ok(ExportGrant {
            stream,
            subject_prefix,
        })
    }

    /// What the node `uid` of `role` may publish to export its log: nothing for a
    /// customer.
    #[must_use]
    pub fn publish(&self, role: Role, uid: &Uid) -> Vec<String> {
        let kind = match role {
            Role::Broker => ::broker::node::NODE_KIND,
            Role::Merchant => ::merchant::node::NODE_KIND,
            Role::Customer => return Vec::new(),
        };
        let api = |call: &str| format!("$JS.API.STREAM.{call}.{}", self.stream);
        vec![
            shared::export::subject(&self.subject_prefix, kind, uid),
            api("INFO"),
            api("CREATE"),
            api("MSG.GET"),
        ]
    }
}

/// The permissions of `role` for the node `uid` (see the module documentation).
#[must_use]
pub fn permissions(subjects: &Subjects, role: Role, uid: &Uid) -> Permissions {
    let peers = format!("{}.peer.>", subjects.prefix());
    let inbox = format!("{}.>", subjects.inbox_prefix(uid));
    match role {
        Role::Broker => Permissions {
            publish: vec![peers, inbox.clone()],
            subscribe: vec![subjects.broker().to_string(), inbox],
            allow_responses: true,
        },
        Role::Merchant => Permissions {
            publish: vec![subjects.broker().to_string(), peers, inbox.clone()],
            subscribe: vec![
                subjects.merchant(uid).to_string(),
                subjects.peer(uid).to_string(),
                inbox,
            ],
            allow_responses: true,
        },
        Role::Customer => Permissions {
            publish: vec![
                subjects.broker().to_string(),
                format!("{}.merchant.*", subjects.prefix()),
                inbox.clone(),
            ],
            subscribe: vec![subjects.peer(uid).to_string(), inbox],
            allow_responses: false,
        },
    }
}

/// The nats-server configuration text granting each user its permissions. It holds the
/// passwords: write it readable by the server's user only.
#[must_use]
pub fn server_config(subjects: &Subjects, users: &[NatsUser]) -> String {
    server_config_with_export(subjects, users, None)
}

/// [`server_config`], the broker and the merchants also allowed their live export.
#[must_use]
pub fn server_config_with_export(
    subjects: &Subjects,
    users: &[NatsUser],
    export: Option<&ExportGrant>,
) -> String {
    let mut text = String::from(
        "# peerscrip: one NATS user per node, each confined to its own subjects.\n\
         # Generated by `peerscrip-ops nats-config`; regenerate rather than edit.\n\
         authorization {\n  users = [\n",
    );
    for user in users {
        let mut p = permissions(subjects, user.role, &user.uid);
        if let Some(grant) = export {
            p.publish.extend(grant.publish(user.role, &user.uid));
        }
        // Infallible: writing to a String.
        let _ = writeln!(
            text,
            "    {{ user: \"{}\", password: \"{}\", permissions: {{ publish: {{ allow: {} }}, \
             subscribe: {{ allow: {} }}, allow_responses: {} }} }}  # {:?} {}",
            user.name,
            user.password.as_str(),
            quoted(&p.publish),
            quoted(&p.subscribe),
            p.allow_responses,
            user.role,
            user.uid,
        );
    }
    text.push_str("  ]\n}\n");
    text
}

fn quoted(subjects: &[String]) -> String {
    let items: Vec<String> = subjects.iter().map(|s| format!("\"{s}\"")).collect();
    format!("[{}]", items.join(", "))
}

/// A `NAME=PATH` argument: a node's name and its public key file.
#[derive(Clone, Debug)]
pub struct Named {
    /// The node's name.
    pub name: String,
    /// Its public key PEM (`key.pub.pem` from `peerscrip-ops keygen`).
    pub key: PathBuf,
}

impl std::str::FromStr for Named {
    type Err = String;

    fn from_str(s: &str) -> Result<Named, String> {
        let (name, key) = s
            .split_once('=')
            .ok_or_else(|| format!("expected NAME=PUBLIC_KEY_PEM, got {s:?}"))?;
        Ok(Named {
            name: name.to_owned(),
            key: PathBuf::from(key),
        })
    }
}

/// What `nats-config` wrote.
#[derive(Debug)]
pub struct Written {
    /// The server configuration.
    pub config: PathBuf,
    /// One password file per user, in the order given.
    pub passwords: Vec<(String, PathBuf)>,
}

/// The server's side of TLS (README "Running on a network you do not trust"): its
/// certificate and key, and optionally the CA whose certificates it requires of every
/// client. With it the server refuses a client that does not speak TLS, so the NATS
/// passwords never cross the network in the clear.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerTls {
    /// The server's certificate (chain), PEM.
    pub cert: PathBuf,
    /// Its private key, PEM.
    pub key: PathBuf,
    /// The CA of the clients' certificates: with it every client must present one
    /// (`verify: true`).
    pub client_ca: Option<PathBuf>,
}

impl ServerTls {
    /// The files made absolute (nats-server resolves a relative path against its own
    /// working directory, not the configuration's), each checked readable, since a server
    /// that cannot read them does not start.
    pub fn new(cert: &Path, key: &Path, client_ca: Option<&Path>) -> anyhow::Result<ServerTls> {
        let absolute = |path: &Path| -> anyhow::Result<PathBuf> {
            fs::File::open(path).with_context(|| format!("reading {}", path.display()))?;
            let path = std::path::absolute(path)
                .with_context(|| format!("resolving {}", path.display()))?;
            if path.to_str().is_none_or(|p| p.contains(['"', '\\', '\n'])) {
                bail!(
                    "{} cannot be written into the server configuration (a quote, backslash, \
                     line break or non-UTF-8 byte in the path)",
                    path.display()
                );
            }
            Ok(path)
        };
        Ok(ServerTls {
            cert: absolute(cert)?,
            key: absolute(key)?,
            client_ca: client_ca.map(absolute).transpose()?,
        })
    }

    /// The server configuration's `tls {}` block.
    #[must_use]
    pub fn section(&self) -> String {
        let mut text = format!(
            "# TLS required of every client (README \"Running on a network you do not trust\").\n\
             tls {{\n  cert_file: \"{}\"\n  key_file: \"{}\"\n",
            self.cert.display(),
            self.key.display()
        );
        if let Some(ca) = &self.client_ca {
            // Infallible: writing to a String.
            let _ = writeln!(text, "  ca_file: \"{}\"\n  verify: true", ca.display());
        }
        text.push_str("}\n");
        text
    }
}

/// Reads the public keys, generates a password per node and writes `nats-server.conf` and
/// `credentials/<name>.password` into `out` (mode 0600; existing files are not overwritten).
pub fn write(
    out: &Path,
    subjects: &Subjects,
    suite: Suite,
    broker: &Path,
    merchants: &[Named],
    customers: &[Named],
    export: Option<&ExportGrant>,
) -> anyhow::Result<Written> {
    write_with_tls(
        out,
        subjects,
        suite,
        broker,
        (merchants, customers),
        export,
        None,
    )
}

/// [`write`], the server configuration also requiring TLS when `tls` is given.
pub fn write_with_tls(
    out: &Path,
    subjects: &Subjects,
    suite: Suite,
    broker: &Path,
    (merchants, customers): (&[Named], &[Named]),
    export: Option<&ExportGrant>,
    tls: Option<&ServerTls>,
) -> anyhow::Result<Written> {
    let mut users = vec![NatsUser::new(
        "broker",
        Role::Broker,
        uid_of(suite, broker)?,
    )?];
    for (role, named) in merchants
        .iter()
        .map(|n| (Role::Merchant, n))
        .chain(customers.iter().map(|n| (Role::Customer, n)))
    {
        users.push(NatsUser::new(
            &named.name,
            role,
            uid_of(suite, &named.key)?,
        )?);
    }
    for (i, user) in users.iter().enumerate() {
        if users[..i].iter().any(|u| u.name == user.name) {
            bail!("the name {:?} is given twice", user.name);
        }
    }
    let credentials = out.join("credentials");
    shared::private_dir::create_dir(&credentials)
        .with_context(|| format!("creating {}", credentials.display()))?;
    let config = out.join("nats-server.conf");
    let mut text = server_config_with_export(subjects, &users, export);
    if let Some(tls) = tls {
        text.push_str(&tls.section());
    }
    write_new(&config, text.as_bytes(), 0o600)?;
    let mut passwords = Vec::with_capacity(users.len());
    for user in &users {
        let path = credentials.join(format!("{}.password", user.name));
        write_new(&path, user.password.as_bytes(), 0o600)?;
        passwords.push((user.name.clone(), path));
    }
    Ok(Written { config, passwords })
}

fn uid_of(suite: Suite, path: &Path) -> anyhow::Result<Uid> {
    let pem = fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let key = PublicKey::from_pem(suite, &pem)
        .with_context(|| format!("{} is not a {suite} public key", path.display()))?;
    Ok(key.uid())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_role_gets_only_its_subjects() {
        let subjects = Subjects::default();
        let c = Uid([1; 16]);
        let customer = permissions(&subjects, Role::Customer, &c);
        assert_eq!(
            customer.subscribe,
            vec![subjects.peer(&c).to_string(), format!("_INBOX.{c}.>"),]
        );
        assert!(!customer.allow_responses);
        assert!(!customer.publish.iter().any(|s| s.contains(".peer.")));
        assert!(
            !customer
                .publish
                .iter()
                .any(|s| s.ends_with('>') && !s.starts_with("_INBOX."))
        );
        let m = Uid([2; 16]);
        let merchant = permissions(&subjects, Role::Merchant, &m);
        assert!(!merchant.subscribe.contains(&subjects.broker().to_string()));
        let broker = permissions(&subjects, Role::Broker, &Uid([3; 16]));
        assert_eq!(broker.subscribe[0], subjects.broker().to_string());
    }

    #[test]
    fn the_export_grant_names_one_stream_and_the_nodes_own_subject() {
        let grant = ExportGrant::new("AUDIT".into(), "peerscrip.events".into()).unwrap();
        let m = Uid([2; 16]);
        assert_eq!(
            grant.publish(Role::Merchant, &m),
            vec![
                format!("peerscrip.events.merchant.{m}"),
                "$JS.API.STREAM.INFO.AUDIT".to_owned(),
                "$JS.API.STREAM.CREATE.AUDIT".to_owned(),
                "$JS.API.STREAM.MSG.GET.AUDIT".to_owned(),
            ]
        );
        assert!(grant.publish(Role::Customer, &Uid([1; 16])).is_empty());
        let text = server_config_with_export(
            &Subjects::default(),
            &[NatsUser::new("m1", Role::Merchant, m).unwrap()],
            Some(&grant),
        );
        assert!(text.contains("\"$JS.API.STREAM.MSG.GET.AUDIT\""), "{text}");
        for bad in ["a.b", "has space", "all>", ""] {
            assert!(
                ExportGrant::new(bad.into(), "peerscrip.events".into()).is_err(),
                "{bad}"
            );
        }
        assert!(ExportGrant::new("AUDIT".into(), "bad prefix".into()).is_err());
    }

    #[test]
    fn the_tls_section_names_absolute_files_and_verifies_clients_only_with_a_ca() {
        let dir = tempfile::tempdir().unwrap();
        for f in ["server.pem", "server.key", "ca.pem"] {
            fs::write(dir.path().join(f), b"pem").unwrap();
        }
        let p = |f: &str| dir.path().join(f);
        let tls = ServerTls::new(&p("server.pem"), &p("server.key"), None).unwrap();
        let text = tls.section();
        assert!(
            text.contains(&format!("cert_file: \"{}\"", p("server.pem").display())),
            "{text}"
        );
        assert!(text.contains("key_file: "), "{text}");
        assert!(!text.contains("verify"), "{text}");
        let tls = ServerTls::new(&p("server.pem"), &p("server.key"), Some(&p("ca.pem"))).unwrap();
        assert!(tls.section().contains("verify: true"));
        let e = ServerTls::new(&p("missing.pem"), &p("server.key"), None).unwrap_err();
        assert!(format!("{e:#}").contains("missing.pem"), "{e:#}");
    }

    #[test]
    fn names_are_plain_tokens() {
        assert!(NatsUser::new("alice-1", Role::Customer, Uid([1; 16])).is_ok());
        for bad in ["", "Alice", "a b", "a\"b", "a/b"] {
            assert!(
                NatsUser::new(bad, Role::Customer, Uid([1; 16])).is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn passwords_are_fresh_and_in_the_config_only_once_each() {
        let subjects = Subjects::default();
        let a = NatsUser::new("a", Role::Customer, Uid([1; 16])).unwrap();
        let b = NatsUser::new("b", Role::Customer, Uid([2; 16])).unwrap();
        assert_ne!(a.password, b.password);
        assert_eq!(a.password.len(), 48);
        let text = server_config(&subjects, &[a, b]);
        assert_eq!(text.matches("password:").count(), 2);
    }
}
