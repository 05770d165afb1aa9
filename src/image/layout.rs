//! Where everything goes on the disk, computed as plain data before a byte is written:
//! partition starts and sizes, blob offsets, the total image size, and every overlap or
//! misfit found as a typed error naming the recipe field.

use crate::recipe::model::TableKind;
use crate::recipe::size::{SECTOR, SizeSpec, align_up};

/// Sectors a GPT reserves at each end: protective MBR + header + 32 sectors of entries
/// at the front, entries + backup header at the back.
pub const GPT_FRONT_SECTORS: u64 = 34;
pub const GPT_BACK_SECTORS: u64 = 33;

/// The largest disk imgbuild lays out (1 PiB): far beyond any SD card, USB stick or
/// cloud disk, and small enough that no sum of the sizes and offsets below it overflows.
pub const MAX_DISK: u64 = 1 << 50;

/// A partition whose size is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartRequest {
    pub name: String,
    pub size: u64,
    pub start: Option<u64>,
    pub alignment: u64,
}

/// A blob to place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobRequest {
    pub name: String,
    pub offset: u64,
    pub len: u64,
}

/// A placed range of bytes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Placed {
    pub name: String,
    pub start: u64,
    pub size: u64,
}

impl Placed {
    pub fn end(&self) -> u64 {
        self.start + self.size
    }
}

/// The computed layout.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Layout {
    pub size: u64,
    pub partitions: Vec<Placed>,
    pub blobs: Vec<Placed>,
}

/// What can be wrong with a layout. Each names the recipe objects involved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LayoutError {
    #[error("partition `{name}` starts at byte {start}, inside {what}; move it to {min} or later")]
    StartTooEarly {
        name: String,
        start: u64,
        what: String,
        min: u64,
    },
    #[error("partition `{name}` starts at byte {start}, not a multiple of its alignment {alignment}")]
    Misaligned { name: String, start: u64, alignment: u64 },
    #[error("blob `{blob}` (bytes {blob_start}..{blob_end}) overlaps {other} (bytes {other_start}..{other_end})")]
    BlobOverlap {
        blob: String,
        blob_start: u64,
        blob_end: u64,
        other: String,
        other_start: u64,
        other_end: u64,
    },
    #[error("the image is {size} bytes but its content needs {needed}; raise `image.size` or set it to `auto`")]
    ImageTooSmall { size: u64, needed: u64 },
    #[error("an MBR cannot address beyond 2 TiB; partition `{name}` ends at byte {end}; use `table: gpt`")]
    MbrLimit { name: String, end: u64 },
    #[error("image size {size} is not a multiple of 512 bytes")]
    OddImageSize { size: u64 },
    /// `field` is the recipe field (`image.partitions.root.size`); `name` the partition
    /// or blob it belongs to.
    #[error("{bytes} bytes is more than any disk imgbuild writes ({MAX_DISK} bytes, 1 PiB)")]
    TooLarge {
        field: String,
        name: Option<String>,
        bytes: u64,
    },
}

/// Refuses any size or offset beyond [`MAX_DISK`], so the arithmetic after it is exact.
fn check_bounds(image_size: SizeSpec, parts: &[PartRequest], blobs: &[BlobRequest]) -> Result<(), LayoutError> {
    let too_large = |field: String, name: Option<&String>, bytes: u64| {
        (bytes > MAX_DISK).then(|| LayoutError::TooLarge {
            field,
            name: name.cloned(),
            bytes,
        })
    };
    let mut found = Vec::new();
    if let SizeSpec::Fixed(s) = image_size {
        found.extend(too_large("image.size".into(), None, s));
    }
    for p in parts {
        found.extend(too_large(
            format!("image.partitions.{}.size", p.name),
            Some(&p.name),
            p.size,
        ));
        found.extend(too_large(
            format!("image.partitions.{}.start", p.name),
            Some(&p.name),
            p.start.unwrap_or(0),
        ));
        found.extend(too_large(
            format!("image.partitions.{}.alignment", p.name),
            Some(&p.name),
            p.alignment,
        ));
    }
    for b in blobs {
        found.extend(too_large(
            format!("image.blobs.{}.offset", b.name),
            Some(&b.name),
            b.offset,
        ));
        found.extend(too_large(format!("image.blobs.{}", b.name), Some(&b.name), b.len));
    }
    match found.into_iter().next() {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Computes the layout.
pub fn compute(
    table: TableKind,
    image_size: SizeSpec,
    alignment: u64,
    parts: &[PartRequest],
    blobs: &[BlobRequest],
) -> Result<Layout, LayoutError> {
    check_bounds(image_size, parts, blobs)?;
    if alignment > MAX_DISK {
        return Err(LayoutError::TooLarge {
            field: "image.alignment".into(),
            name: None,
            bytes: alignment,
        });
    }
    let (front, back) = match table {
        TableKind::Mbr => (SECTOR, 0),
        TableKind::Gpt => (GPT_FRONT_SECTORS * SECTOR, GPT_BACK_SECTORS * SECTOR),
    };
    let table_name = match table {
        TableKind::Mbr => "the MBR",
        TableKind::Gpt => "the GPT header and entries",
    };
    let mut placed: Vec<Placed> = Vec::new();
    let mut cursor = front;
    for p in parts {
        let start = match p.start {
            Some(s) => {
                if s < front {
                    return Err(LayoutError::StartTooEarly {
                        name: p.name.clone(),
                        start: s,
                        what: table_name.into(),
                        min: front,
                    });
                }
                if let Some(prev) = placed.last()
                    && s < prev.end()
                {
                    return Err(LayoutError::StartTooEarly {
                        name: p.name.clone(),
                        start: s,
                        what: format!("partition `{}` (bytes {}..{})", prev.name, prev.start, prev.end()),
                        min: align_up(prev.end(), p.alignment),
                    });
                }
                if s % p.alignment != 0 {
                    return Err(LayoutError::Misaligned {
                        name: p.name.clone(),
                        start: s,
                        alignment: p.alignment,
                    });
                }
                s
            }
            None => align_up(cursor.max(front), p.alignment),
        };
        let size = align_up(p.size, SECTOR);
        placed.push(Placed {
            name: p.name.clone(),
            start,
            size,
        });
        cursor = start + size;
    }
    let mut blob_placed: Vec<Placed> = Vec::new();
    let mut blob_end = 0;
    for b in blobs {
        let me = Placed {
            name: b.name.clone(),
            start: b.offset,
            size: b.len,
        };
        if me.start < front {
            return Err(LayoutError::BlobOverlap {
                blob: b.name.clone(),
                blob_start: me.start,
                blob_end: me.end(),
                other: table_name.into(),
                other_start: 0,
                other_end: front,
            });
        }
        for other in placed
            .iter()
            .map(|p| (format!("partition `{}`", p.name), p))
            .chain(blob_placed.iter().map(|p| (format!("blob `{}`", p.name), p)))
        {
            if me.start < other.1.end() && other.1.start < me.end() {
                return Err(LayoutError::BlobOverlap {
                    blob: b.name.clone(),
                    blob_start: me.start,
                    blob_end: me.end(),
                    other: other.0,
                    other_start: other.1.start,
                    other_end: other.1.end(),
                });
            }
        }
        blob_end = blob_end.max(me.end());
        blob_placed.push(me);
    }
    let content_end = cursor.max(blob_end);
    let needed = align_up(content_end + back, SECTOR);
    let size = match image_size {
        SizeSpec::Auto => align_up(content_end + back, alignment),
        SizeSpec::Fixed(s) => {
            if s % SECTOR != 0 {
                return Err(LayoutError::OddImageSize { size: s });
            }
            if s < needed {
                return Err(LayoutError::ImageTooSmall { size: s, needed });
            }
            s
        }
    };
    if back > 0 {
        // The backup GPT sits in the last sectors: a blob there would be overwritten.
        let tail = size - back;
        if let Some(b) = blob_placed.iter().find(|b| b.end() > tail) {
            return Err(LayoutError::BlobOverlap {
                blob: b.name.clone(),
                blob_start: b.start,
                blob_end: b.end(),
                other: "the backup GPT".into(),
                other_start: tail,
                other_end: size,
            });
        }
    }
    if table == TableKind::Mbr
        && let Some(p) = placed.iter().find(|p| p.end() > (u32::MAX as u64) * SECTOR)
    {
        return Err(LayoutError::MbrLimit {
            name: p.name.clone(),
            end: p.end(),
        });
    }
    Ok(Layout {
        size,
        partitions: placed,
        blobs: blob_placed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    const MIB: u64 = 1 << 20;

    fn part(name: &str, size: u64) -> PartRequest {
        PartRequest {
            name: name.into(),
            size,
            start: None,
            alignment: MIB,
        }
    }

    #[test]
    fn sizes_and_offsets_beyond_any_disk_are_refused_naming_the_field() {
        // Two partitions whose sum would wrap a u64, and a blob near 2^64.
        let half = u64::MAX / 2 + 1;
        let e = compute(
            TableKind::Gpt,
            SizeSpec::Auto,
            MIB,
            &[part("a", MIB), part("b", half)],
            &[],
        )
        .unwrap_err();
        assert_eq!(
            e,
            LayoutError::TooLarge {
                field: "image.partitions.b.size".into(),
                name: Some("b".into()),
                bytes: half
            }
        );
        let blob = BlobRequest {
            name: "spl".into(),
            offset: u64::MAX - 100,
            len: 512,
        };
        let e = compute(TableKind::Mbr, SizeSpec::Auto, MIB, &[part("a", MIB)], &[blob]).unwrap_err();
        assert!(
            matches!(e, LayoutError::TooLarge { ref field, .. } if field == "image.blobs.spl.offset"),
            "{e:?}"
        );
        let e = compute(TableKind::Mbr, SizeSpec::Fixed(MAX_DISK + 512), MIB, &[], &[]).unwrap_err();
        assert!(e.to_string().contains("more than any disk imgbuild writes"), "{e}");
        // The largest allowed values add up without overflow.
        let big = [part("a", MAX_DISK), part("b", MAX_DISK)];
        assert!(compute(TableKind::Gpt, SizeSpec::Auto, MIB, &big, &[]).is_ok());
    }

    #[test]
    fn mbr_partitions_follow_each_other_aligned() {
        let l = compute(
            TableKind::Mbr,
            SizeSpec::Auto,
            MIB,
            &[part("boot", 256 * MIB), part("root", 1000 * 1024 + 3)],
            &[],
        )
        .unwrap();
        assert_eq!(
            l.partitions[0],
            Placed {
                name: "boot".into(),
                start: MIB,
                size: 256 * MIB
            }
        );
        assert_eq!(l.partitions[1].start, 257 * MIB);
        assert_eq!(l.partitions[1].size, align_up(1000 * 1024 + 3, 512));
        assert_eq!(l.size, 258 * MIB);
    }

    #[test]
    fn gpt_reserves_the_backup_table() {
        let l = compute(TableKind::Gpt, SizeSpec::Auto, MIB, &[part("root", 10 * MIB)], &[]).unwrap();
        assert_eq!(l.partitions[0].start, MIB);
        assert_eq!(l.size, 12 * MIB, "11 MiB of content + 33 sectors rounds up to 12 MiB");
        let tight = compute(
            TableKind::Gpt,
            SizeSpec::Fixed(11 * MIB),
            MIB,
            &[part("root", 10 * MIB)],
            &[],
        );
        assert_eq!(
            tight,
            Err(LayoutError::ImageTooSmall {
                size: 11 * MIB,
                needed: 11 * MIB + 33 * 512
            })
        );
    }

    #[test]
    fn fixed_start_and_rockchip_blobs() {
        let mut root = part("root", 64 * MIB);
        root.start = Some(16 * MIB);
        let blobs = [
            BlobRequest {
                name: "idbloader".into(),
                offset: 64 * 512,
                len: 200 * 1024,
            },
            BlobRequest {
                name: "uboot".into(),
                offset: 16384 * 512,
                len: 1024 * 1024,
            },
        ];
        let l = compute(TableKind::Gpt, SizeSpec::Auto, MIB, &[root.clone()], &blobs).unwrap();
        assert_eq!(l.partitions[0].start, 16 * MIB);
        assert_eq!(l.blobs[1].start, 8 * MIB);
        root.start = Some(8 * MIB);
        let err = compute(TableKind::Gpt, SizeSpec::Auto, MIB, &[root], &blobs).unwrap_err();
        assert!(
            matches!(err, LayoutError::BlobOverlap { ref blob, .. } if blob == "uboot"),
            "{err}"
        );
    }

    #[test]
    fn overlapping_fixed_starts_are_refused() {
        let mut b = part("b", MIB);
        b.start = Some(MIB);
        let err = compute(TableKind::Mbr, SizeSpec::Auto, MIB, &[part("a", 4 * MIB), b], &[]).unwrap_err();
        assert!(err.to_string().contains("inside partition `a`"), "{err}");
    }

    #[test]
    fn blobs_may_not_touch_tables_or_each_other() {
        let overlap_table = [BlobRequest {
            name: "x".into(),
            offset: 1024,
            len: 512,
        }];
        let err = compute(TableKind::Gpt, SizeSpec::Auto, MIB, &[part("a", MIB)], &overlap_table).unwrap_err();
        assert!(err.to_string().contains("GPT header"), "{err}");
        let two = [
            BlobRequest {
                name: "x".into(),
                offset: 64 * 512,
                len: 4096,
            },
            BlobRequest {
                name: "y".into(),
                offset: 64 * 512 + 4095,
                len: 10,
            },
        ];
        let err = compute(TableKind::Mbr, SizeSpec::Auto, MIB, &[part("a", MIB)], &two).unwrap_err();
        assert!(err.to_string().contains("blob `x`"), "{err}");
    }

    #[test]
    fn misaligned_fixed_start() {
        let mut a = part("a", MIB);
        a.start = Some(3 * 512 * 1024);
        let err = compute(TableKind::Mbr, SizeSpec::Auto, MIB, &[a], &[]).unwrap_err();
        assert!(matches!(err, LayoutError::Misaligned { .. }));
    }
}
