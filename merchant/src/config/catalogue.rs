//! The merchant's catalogue file: TOML, one `[[item]]` table per item with its
//! `id`, `name` and `price`, the unit price as a decimal string such as `"12.34"` (never
//! a float: money is `Amount`, minor units). It builds the validated
//! `core::catalogue::Catalogue` (protocol.md section 6.3), so the same rules hold as for a
//! catalogue built in code: unique non-empty ids, non-empty names, prices above zero.
//! `ops/deploy/catalogue.toml` is the example.

use std::path::Path;

use serde::Deserialize;
use shared::Amount;
use shared::daemon::config::{ConfigError, read_toml};

use crate::core::catalogue::{Catalogue, Item};

/// The file's layout.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogueFile {
    item: Vec<ItemFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ItemFile {
    id: String,
    name: String,
    price: String,
}

/// Reads the catalogue file at `path`.
///
/// # Errors
/// An unreadable or malformed file, a price that is not a decimal amount (naming the item
/// and the field), or a catalogue rule broken (naming the item).
pub fn load(path: &Path) -> Result<Catalogue, ConfigError> {
    let file: CatalogueFile = read_toml(path)?;
    parse_items(path, file)
}

/// Parses the catalogue from TOML `text` (read from `path`, for the messages).
///
/// # Errors
/// As [`load`].
pub fn parse(path: &Path, text: &str) -> Result<Catalogue, ConfigError> {
    let file: CatalogueFile = toml::from_str(text).map_err(|e| ConfigError::Parse {
        path: path.to_owned(),
        message: e.to_string().trim_end().to_owned(),
    })?;
    parse_items(path, file)
}

fn parse_items(path: &Path, file: CatalogueFile) -> Result<Catalogue, ConfigError> {
    let mut items = Vec::with_capacity(file.item.len());
    for (index, item) in file.item.into_iter().enumerate() {
        let price: Amount = item.price.parse().map_err(|e| {
            ConfigError::invalid(
                format!("{}: item[{index}] ({:?}).price", path.display(), item.id),
                format!("{e}"),
            )
        })?;
        items.push(Item::new(item.id, item.name, price));
    }
    Catalogue::new(items)
        .map_err(|e| ConfigError::invalid(format!("{}: item", path.display()), e.to_string()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::path::PathBuf;

    use super::*;

    fn path() -> PathBuf {
        PathBuf::from("catalogue.toml")
    }

    #[test]
    fn prices_are_decimal_strings_parsed_to_minor_units() {
        let c = parse(
            &path(),
            r#"
            [[item]]
            id = "tea"
            name = "Green tea, 100 g"
            price = "4.50"

            [[item]]
            id = "pot"
            name = "Tea pot"
            price = "25"
            "#,
        )
        .unwrap();
        assert_eq!(c.get("tea").unwrap().unit_price, Amount::from_minor(450));
        assert_eq!(c.get("pot").unwrap().unit_price, Amount::from_minor(2_500));
    }

    #[test]
    fn a_bad_price_names_the_item_and_field() {
        let e = parse(
            &path(),
            "[[item]]\nid = \"tea\"\nname = \"Tea\"\nprice = \"4.505\"\n",
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("catalogue.toml: item[0] (\"tea\").price:"),
            "{e}"
        );
        let e = parse(
            &path(),
            "[[item]]\nid = \"tea\"\nname = \"Tea\"\nprice = 4.5\n",
        )
        .unwrap_err();
        assert!(e.to_string().contains("price"), "{e}");
    }

    #[test]
    fn catalogue_rules_hold_for_a_file() {
        let e = parse(
            &path(),
            "[[item]]\nid = \"tea\"\nname = \"Tea\"\nprice = \"1\"\n\
             [[item]]\nid = \"tea\"\nname = \"More tea\"\nprice = \"2\"\n",
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "catalogue.toml: item: duplicate item id \"tea\""
        );
        let e = parse(
            &path(),
            "[[item]]\nid = \"tea\"\nname = \"Tea\"\nprice = \"0.00\"\n",
        )
        .unwrap_err();
        assert!(e.to_string().contains("zero unit price"), "{e}");
    }

    #[test]
    fn the_example_catalogue_of_the_deployment_loads() {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../ops/deploy/catalogue.toml");
        let c = load(&path).unwrap();
        assert!(c.items().count() >= 2);
    }
}
