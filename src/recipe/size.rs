//! Sizes and offsets as recipes write them: `256MiB`, `1GiB`, `4KB`, `2048s` (sectors),
//! `4096` (bytes), or `auto` where a field allows it.

/// Bytes in a sector: every offset and size in an image is a multiple of it.
pub const SECTOR: u64 = 512;

/// A size field's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SizeSpec {
    Auto,
    Fixed(u64),
}

/// Parses a byte count. The error text says what is accepted.
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit() && c != '_').unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let num = num.replace('_', "");
    let bad = || {
        format!(
            "cannot parse `{text}` as a size; write a number with a unit, e.g. `256MiB`, `2GiB`, `64s` (sectors) or `4096` (bytes)"
        )
    };
    if num.is_empty() {
        return Err(bad());
    }
    let n: u64 = num.parse().map_err(|_| bad())?;
    let mult: u64 = match unit.trim() {
        "" | "B" => 1,
        "s" => SECTOR,
        "K" | "KiB" => 1 << 10,
        "M" | "MiB" => 1 << 20,
        "G" | "GiB" => 1 << 30,
        "T" | "TiB" => 1 << 40,
        "kB" | "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        "TB" => 1_000_000_000_000,
        _ => return Err(bad()),
    };
    n.checked_mul(mult).ok_or_else(|| format!("size `{text}` is too large"))
}

/// Parses a size that may also be `auto`.
pub fn parse_size(text: &str) -> Result<SizeSpec, String> {
    if text.trim() == "auto" {
        Ok(SizeSpec::Auto)
    } else {
        parse_bytes(text)
            .map(SizeSpec::Fixed)
            .map_err(|e| format!("{e}, or `auto`"))
    }
}

/// Rounds `n` up to a multiple of `align` (which must be non-zero).
pub fn align_up(n: u64, align: u64) -> u64 {
    n.div_ceil(align) * align
}

/// How recipes may write a size or offset: text with a unit (`256MiB`, `64s`, `auto`) or
/// a plain number of bytes (`512`, as YAML reads it: an integer).
#[derive(schemars::JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)] // only its schema is used
pub enum SizeText {
    Text(String),
    Bytes(u64),
}

/// Deserializes an optional size field from text or a whole number of bytes, keeping
/// the text form the parser above reads.
pub fn de_size_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    struct V;
    impl<'de> serde::de::Visitor<'de> for V {
        type Value = Option<String>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a size such as `256MiB`, `64s` or `auto`, or a number of bytes")
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Self::Value, E> {
            u64::try_from(v)
                .map(|v| Some(v.to_string()))
                .map_err(|_| E::invalid_value(serde::de::Unexpected::Signed(v), &self))
        }
        fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(V)
        }
    }
    d.deserialize_option(V)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(parse_bytes("256MiB"), Ok(256 << 20));
        assert_eq!(parse_bytes("1GiB"), Ok(1 << 30));
        assert_eq!(parse_bytes("1G"), Ok(1 << 30));
        assert_eq!(parse_bytes("4KB"), Ok(4000));
        assert_eq!(parse_bytes("64s"), Ok(64 * 512));
        assert_eq!(parse_bytes("4096"), Ok(4096));
        assert_eq!(parse_bytes("1_000B"), Ok(1000));
        assert_eq!(parse_size("auto"), Ok(SizeSpec::Auto));
    }

    #[test]
    fn bad_sizes_say_what_works() {
        for bad in ["", "MiB", "12XB", "-1MiB", "1.5GiB", "99999999999999TiB"] {
            let err = parse_bytes(bad).unwrap_err();
            assert!(err.contains("size"), "{bad}: {err}");
        }
        assert!(parse_size("big").unwrap_err().contains("`auto`"));
    }

    #[test]
    fn alignment() {
        assert_eq!(align_up(0, 4096), 0);
        assert_eq!(align_up(1, 4096), 4096);
        assert_eq!(align_up(4096, 4096), 4096);
    }
}
