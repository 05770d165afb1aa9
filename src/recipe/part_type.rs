//! Partition type names a recipe may use, and what each means in an MBR or a GPT.

use super::model::{FsKind, TableKind};
use uuid::Uuid;

/// A partition's type as the table stores it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(untagged)]
pub enum PartType {
    /// An MBR system ID byte.
    Mbr(u8),
    /// A GPT partition type GUID.
    Gpt(Uuid),
}

impl std::fmt::Display for PartType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PartType::Mbr(b) => write!(f, "0x{b:02x}"),
            PartType::Gpt(g) => write!(f, "{}", g.hyphenated().to_string().to_uppercase()),
        }
    }
}

const GPT_LINUX: &str = "0FC63DAF-8483-4772-8E79-3D69D8477DE4";
const GPT_BASIC_DATA: &str = "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7";
pub const GPT_ESP: &str = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B";
pub const GPT_BIOS_BOOT: &str = "21686148-6449-6E6F-744E-656564454649";
const GPT_SWAP: &str = "0657FD6D-A4AB-43C4-84E5-0933C84B4F4F";
const GPT_ROOT_ARM64: &str = "B921B045-1DF0-41C3-AF44-4C6F280D3FAE";
const GPT_ROOT_ARM: &str = "69DAD710-2CE4-4E3C-B16C-21A1D49ABED3";
pub const GPT_ROOT_X86_64: &str = "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709";

/// Names a recipe may use; each with its MBR byte and GPT GUID (if it has one there).
const NAMES: &[(&str, Option<u8>, Option<&str>)] = &[
    ("fat32-lba", Some(0x0c), Some(GPT_BASIC_DATA)),
    ("fat32", Some(0x0b), Some(GPT_BASIC_DATA)),
    ("fat16", Some(0x0e), Some(GPT_BASIC_DATA)),
    ("linux", Some(0x83), Some(GPT_LINUX)),
    ("linux-swap", Some(0x82), Some(GPT_SWAP)),
    ("esp", Some(0xef), Some(GPT_ESP)),
    ("bios-boot", None, Some(GPT_BIOS_BOOT)),
    ("root-arm64", None, Some(GPT_ROOT_ARM64)),
    ("root-arm", None, Some(GPT_ROOT_ARM)),
    ("root-x86-64", None, Some(GPT_ROOT_X86_64)),
];

/// The type a partition gets when the recipe names none.
pub fn default_name(fs: FsKind) -> &'static str {
    match fs {
        FsKind::Vfat => "fat32-lba",
        FsKind::Ext4 | FsKind::Raw | FsKind::None => "linux",
    }
}

/// Resolves a type name, raw MBR byte (`0x0c`) or GUID for the given table.
pub fn resolve(text: &str, table: TableKind) -> Result<PartType, String> {
    let t = text.trim();
    if let Some(&(name, mbr, gpt)) = NAMES.iter().find(|(n, _, _)| n.eq_ignore_ascii_case(t)) {
        return match table {
            TableKind::Mbr => mbr
                .map(PartType::Mbr)
                .ok_or_else(|| format!("type `{name}` exists only in GPT; use `table: gpt` or an MBR type")),
            TableKind::Gpt => Ok(PartType::Gpt(
                Uuid::parse_str(gpt.unwrap_or(GPT_LINUX)).unwrap_or_default(),
            )),
        };
    }
    let hex = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X"));
    if let Some(hex) = hex {
        let byte = u8::from_str_radix(hex, 16).map_err(|_| format!("`{t}` is not an MBR type byte (0x00-0xff)"))?;
        return match table {
            TableKind::Mbr => Ok(PartType::Mbr(byte)),
            TableKind::Gpt => Err(format!(
                "`{t}` is an MBR type byte but the table is GPT; use a type name or a GPT type GUID"
            )),
        };
    }
    if let Ok(guid) = Uuid::parse_str(t) {
        return match table {
            TableKind::Gpt => Ok(PartType::Gpt(guid)),
            TableKind::Mbr => Err(format!(
                "`{t}` is a GPT type GUID but the table is MBR; use a type name or an MBR byte such as `0x83`"
            )),
        };
    }
    let names: Vec<&str> = NAMES.iter().map(|(n, _, _)| *n).collect();
    let hint = super::error::did_you_mean(t, names.iter().copied())
        .map(|b| format!("did you mean `{b}`? "))
        .unwrap_or_default();
    Err(format!(
        "unknown partition type `{t}`; {hint}use one of {}, an MBR byte such as `0x83`, or a GPT type GUID",
        names.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_per_table() {
        assert_eq!(resolve("fat32-lba", TableKind::Mbr), Ok(PartType::Mbr(0x0c)));
        assert_eq!(resolve("linux", TableKind::Mbr), Ok(PartType::Mbr(0x83)));
        assert_eq!(resolve("esp", TableKind::Gpt).unwrap().to_string(), GPT_ESP);
        assert_eq!(resolve("0x0C", TableKind::Mbr), Ok(PartType::Mbr(0x0c)));
        assert_eq!(
            resolve(GPT_BIOS_BOOT, TableKind::Gpt).unwrap().to_string(),
            GPT_BIOS_BOOT
        );
    }

    #[test]
    fn wrong_table_or_name_is_explained() {
        assert!(
            resolve("bios-boot", TableKind::Mbr)
                .unwrap_err()
                .contains("only in GPT")
        );
        assert!(resolve("0x83", TableKind::Gpt).unwrap_err().contains("table is GPT"));
        assert!(
            resolve("lnux", TableKind::Mbr)
                .unwrap_err()
                .contains("did you mean `linux`?")
        );
        assert!(resolve("0xzz", TableKind::Mbr).is_err());
    }
}
