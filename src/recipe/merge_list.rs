//! A list field that appends to the parent recipe's list, or replaces it when written
//! with the YAML tag `!replace` (`packages: !replace [a, b]`).

use schemars::JsonSchema;
use serde::de::{self, Deserializer, EnumAccess, SeqAccess, VariantAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use std::fmt;
use std::marker::PhantomData;

/// The YAML tag that makes a list replace its parent's instead of appending.
pub const REPLACE_TAG: &str = "replace";

/// A list as written in one recipe file.
#[derive(Debug, Clone, PartialEq)]
pub struct MergeList<T> {
    pub items: Vec<T>,
    /// Written as `!replace [...]`.
    pub replace: bool,
}

impl<T> Default for MergeList<T> {
    fn default() -> Self {
        MergeList {
            items: Vec::new(),
            replace: false,
        }
    }
}

impl<T: Serialize> Serialize for MergeList<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // A resolved recipe has nothing left to replace: print the plain list.
        self.items.serialize(s)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for MergeList<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ListVisitor<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for ListVisitor<T> {
            type Value = MergeList<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list, or a list tagged !replace")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(MergeList { items, replace: false })
            }
            fn visit_enum<A: EnumAccess<'de>>(self, e: A) -> Result<Self::Value, A::Error> {
                let (tag, variant): (String, _) = e.variant()?;
                if tag != REPLACE_TAG {
                    return Err(de::Error::custom(format!(
                        "unknown tag `!{tag}`; the only list tag is `!{REPLACE_TAG}`"
                    )));
                }
                let items: Vec<T> = variant.newtype_variant()?;
                Ok(MergeList { items, replace: true })
            }
        }
        d.deserialize_any(ListVisitor(PhantomData))
    }
}

impl<T: JsonSchema> JsonSchema for MergeList<T> {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        format!("List_of_{}", T::schema_name()).into()
    }
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        <Vec<T>>::json_schema(generator)
    }
}
