//! The name of an event kind's variant, for the reports of `audit`, `dispute` and `export`:
//! its `Debug` form up to the first field. The broker's and the wallet's kinds have no name
//! method of their own (the merchant's does, `merchant::core::events::Kind::name`), and
//! their `Debug` form starts with exactly the variant's name.

use std::fmt::Debug;

/// `kind`'s variant, without its fields.
pub fn variant_name<T: Debug + ?Sized>(kind: &T) -> String {
    format!("{kind:?}")
        .split([' ', '{', '('])
        .next()
        .unwrap_or_default()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::variant_name;

    #[derive(Debug)]
    #[allow(dead_code)]
    enum Kind {
        Unit,
        Tuple(u8),
        Struct { value: u8 },
    }

    #[test]
    fn the_variant_without_its_fields() {
        assert_eq!(variant_name(&Kind::Unit), "Unit");
        assert_eq!(variant_name(&Kind::Tuple(1)), "Tuple");
        assert_eq!(variant_name(&Kind::Struct { value: 1 }), "Struct");
    }
}
