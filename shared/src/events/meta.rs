//! The log's own tables: `events` (seq → encoded event) and `meta` (identity, schema
//! version, head), and how `meta` values are laid out.
//!
//! `meta` is a `&str → &[u8]` table:
//! - `schema_version`: u32 big-endian, [`SCHEMA_VERSION`];
//! - `suite`: one byte, the suite's `HeaderBytes` code (protocol.md section 3);
//! - `node_kind`: UTF-8, e.g. `broker`;
//! - `head`: last seq (u64 big-endian) ‖ its chain hash (32 bytes); absent while empty.
//!   One value, so the seq and the hash cannot be updated apart.

use redb::{ReadableTable, Table, TableDefinition};

use crate::events::envelope::ChainHash;
use crate::events::error::LogError;
use crate::events::identity::LogIdentity;
use crate::suite::Suite;

/// The layout version of the log's tables; bumped when `events` or `meta` change shape.
pub const SCHEMA_VERSION: u32 = 1;

/// seq → postcard encoding of the event.
pub(crate) const EVENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("events");
/// The log's identity and head.
pub(crate) const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

/// Names no projection may use.
pub(crate) const RESERVED_TABLES: [&str; 2] = ["events", "meta"];

const KEY_SCHEMA: &str = "schema_version";
const KEY_SUITE: &str = "suite";
const KEY_NODE_KIND: &str = "node_kind";
const KEY_HEAD: &str = "head";

fn get<T: ReadableTable<&'static str, &'static [u8]>>(
    table: &T,
    key: &'static str,
) -> Result<Option<Vec<u8>>, LogError> {
    Ok(table.get(key)?.map(|v| v.value().to_vec()))
}

/// The schema version and identity the file records, or `None` for a fresh file.
pub(crate) fn read_identity<T: ReadableTable<&'static str, &'static [u8]>>(
    table: &T,
) -> Result<Option<(u32, LogIdentity)>, LogError> {
    let Some(version) = get(table, KEY_SCHEMA)? else {
        return Ok(None);
    };
    let version = <[u8; 4]>::try_from(version.as_slice())
        .map(u32::from_be_bytes)
        .map_err(|_| LogError::Meta { key: KEY_SCHEMA })?;
    let suite = match get(table, KEY_SUITE)?.as_deref() {
        Some(&[code]) => Suite::from_code(code).map_err(|_| LogError::Meta { key: KEY_SUITE })?,
        _ => return Err(LogError::Meta { key: KEY_SUITE }),
    };
    let node_kind = get(table, KEY_NODE_KIND)?
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or(LogError::Meta { key: KEY_NODE_KIND })?;
    Ok(Some((version, LogIdentity { suite, node_kind })))
}

/// Records a fresh file's identity and [`SCHEMA_VERSION`].
pub(crate) fn write_identity(
    table: &mut Table<&'static str, &'static [u8]>,
    identity: &LogIdentity,
) -> Result<(), LogError> {
    table.insert(KEY_SCHEMA, SCHEMA_VERSION.to_be_bytes().as_slice())?;
    table.insert(KEY_SUITE, [identity.suite.code()].as_slice())?;
    table.insert(KEY_NODE_KIND, identity.node_kind.as_bytes())?;
    Ok(())
}

/// The last seq and its hash, or `None` for an empty log.
pub(crate) fn read_head<T: ReadableTable<&'static str, &'static [u8]>>(
    table: &T,
) -> Result<Option<(u64, ChainHash)>, LogError> {
    let Some(bytes) = get(table, KEY_HEAD)? else {
        return Ok(None);
    };
    let bad = || LogError::Meta { key: KEY_HEAD };
    let (seq, hash) = bytes.split_first_chunk::<8>().ok_or_else(bad)?;
    let hash = ChainHash::try_from(hash).map_err(|_| bad())?;
    Ok(Some((u64::from_be_bytes(*seq), hash)))
}

/// Moves the head to `seq` with hash `hash`.
pub(crate) fn write_head(
    table: &mut Table<&'static str, &'static [u8]>,
    seq: u64,
    hash: &ChainHash,
) -> Result<(), LogError> {
    let mut value = [0u8; 40];
    value[..8].copy_from_slice(&seq.to_be_bytes());
    value[8..].copy_from_slice(hash);
    table.insert(KEY_HEAD, value.as_slice())?;
    Ok(())
}
