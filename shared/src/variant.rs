//! The name of an event kind's variant, for the reports of `peerscrip-ops` (`audit`,
//! `dispute`, `export`) and the daemons' live export:
//! its `Debug` form up to the first field. The broker's and the wallet's kinds have no name
//! method of their own (the merchant's does, `merchant::core::events::Kind::name`), and
//! their `Debug` form starts with exactly the variant's name.

use std::fmt::{self, Debug, Write as _};

/// `kind`'s variant, without its fields.
///
/// Called once per event by the audit (a million times on a large log): the formatting
/// stops at the first field (the writer refuses the rest), so a kind's bodies are never
/// rendered just to be cut off.
pub fn variant_name<T: Debug + ?Sized>(kind: &T) -> String {
    let mut name = UpToFields::default();
    // The `Err` is the writer stopping the formatting at the first field, not a failure.
    let _ = write!(name, "{kind:?}");
    name.0
}

/// A writer that keeps what is written up to the first field of a `Debug` form.
#[derive(Default)]
struct UpToFields(String);

impl fmt::Write for UpToFields {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        match s.find([' ', '{', '(']) {
            Some(end) => {
                self.0.push_str(&s[..end]);
                Err(fmt::Error)
            }
            None => {
                self.0.push_str(s);
                Ok(())
            }
        }
    }
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
        Nested(Box<Kind>),
    }

    #[test]
    fn the_variant_without_its_fields() {
        assert_eq!(variant_name(&Kind::Unit), "Unit");
        assert_eq!(variant_name(&Kind::Tuple(1)), "Tuple");
        assert_eq!(variant_name(&Kind::Struct { value: 1 }), "Struct");
        assert_eq!(variant_name(&Kind::Nested(Box::new(Kind::Unit))), "Nested");
        // The alternate form too, as the derive writes it.
        assert_eq!(
            variant_name(&format_args!("{:#?}", Kind::Struct { value: 1 })),
            "Struct"
        );
    }
}
